// SPDX-License-Identifier: Apache-2.0
// The stand-in NVML's events: critical Xid errors, read from the lines the CUDA stand-in (or a
// test) appends to <dir>/xid, "<gpu-index> <gi-id> <ci-id> <xid>\n". An event set reports, to one
// waiter each, the lines for a GPU that were appended after that GPU was registered in it (for an
// unprivileged caller, of a GPU in MIG mode only those of no GPU instance).
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/export.h"
#include "fake_nvml.h"

#define POLL_MS         15 /* how often a waiter looks at <dir>/xid */
#define SUPPORTED_TYPES NVML_EVENT_TYPE_XID_CRITICAL
#define LINE_MAX_LEN    128 /* a longer line is not one of ours: it is skipped */

struct nvml_event_set {
        struct nvml_event_set *next;             /* in fake.sets */
        off_t cursor;                            /* the next byte of <dir>/xid to look at */
        bool any;                                /* a GPU is registered */
        unsigned long long types[FAKE_MAX_GPUS]; /* registered per GPU; 0: none */
        off_t since[FAKE_MAX_GPUS];              /* where <dir>/xid ended at registration */
};

/* Whether set is a live event set of ours. */
static bool set_valid_locked(const struct nvml_event_set *set)
{
        for (const struct nvml_event_set *s = fake.sets; s; s = s->next) {
                if (s == set)
                        return true;
        }
        return false;
}

static void xid_path(char *buf, size_t len)
{
        snprintf(buf, len, "%s/xid", fake.dir);
}

VGPU_EXPORT int nvmlEventSetCreate(struct nvml_event_set **set)
{
        struct nvml_event_set *s;
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        if (!set)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        s = calloc(1, sizeof(*s));
        if (!s)
                return fake_leave(NVML_ERROR_MEMORY);
        s->next = fake.sets;
        fake.sets = s;
        *set = s;
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int nvmlEventSetFree(struct nvml_event_set *set)
{
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        for (struct nvml_event_set **p = &fake.sets; *p; p = &(*p)->next) {
                if (*p == set) {
                        *p = set->next;
                        free(set);
                        return fake_leave(NVML_SUCCESS);
                }
        }
        return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
}

void fake_event_sets_free_locked(void)
{
        while (fake.sets) {
                struct nvml_event_set *s = fake.sets;

                fake.sets = s->next;
                free(s);
        }
}

/* Xid events are reported for GPUs, not for MIG devices (they carry the instance ids). */
VGPU_EXPORT int nvmlDeviceGetSupportedEventTypes(struct nvml_device *device,
                                                 unsigned long long *types)
{
        struct fake_ref ref;
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = types ? fake_dev_ref(device, &ref) : NVML_ERROR_INVALID_ARGUMENT;
        if (r == NVML_SUCCESS && ref.ci)
                r = NVML_ERROR_NOT_SUPPORTED;
        if (r == NVML_SUCCESS)
                *types = SUPPORTED_TYPES;
        return fake_leave(r);
}

VGPU_EXPORT int nvmlDeviceRegisterEvents(struct nvml_device *device, unsigned long long types,
                                         struct nvml_event_set *set)
{
        char path[sizeof(fake.dir) + 8];
        struct fake_ref ref;
        struct stat st;
        off_t end = 0;
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = fake_dev_ref(device, &ref);
        if (r == NVML_SUCCESS && (types == 0 || !set_valid_locked(set)))
                r = NVML_ERROR_INVALID_ARGUMENT;
        else if (r == NVML_SUCCESS && (ref.ci || (types & ~SUPPORTED_TYPES)))
                r = NVML_ERROR_NOT_SUPPORTED;
        if (r != NVML_SUCCESS)
                return fake_leave(r);
        xid_path(path, sizeof(path));
        if (stat(path, &st) == 0)
                end = st.st_size;
        else if (errno != ENOENT)
                return fake_leave(NVML_ERROR_UNKNOWN);
        /* Registered again, a GPU keeps the lines since it was first registered. */
        if (!set->types[ref.gpu_index])
                set->since[ref.gpu_index] = end;
        set->types[ref.gpu_index] |= types;
        if (!set->any)
                set->cursor = end;
        set->any = true;
        return fake_leave(NVML_SUCCESS);
}

/* Line (NUL-terminated, no newline) starting at off, if the set reports it, into *data. */
static bool xid_line_event(const struct nvml_event_set *set, const char *line, off_t off,
                           struct nvml_event_data *data)
{
        unsigned gpu, gi, ci;
        unsigned long long xid;
        int end = 0;

        if (sscanf(line, "%u %u %u %llu%n", &gpu, &gi, &ci, &xid, &end) != 4 || line[end] != '\0')
                return false;
        if (gpu >= fake.cfg->n_gpus || !(set->types[gpu] & NVML_EVENT_TYPE_XID_CRITICAL) ||
            off < set->since[gpu])
                return false;
        /* In MIG mode an unprivileged caller hears only of what affects the whole GPU. */
        if (fake.cfg->gpus[gpu].mig_mode && gi != NVML_INSTANCE_ID_ANY &&
            fake_privileged() != NVML_SUCCESS)
                return false;
        memset(data, 0, sizeof(*data));
        data->device = fake_gpu_handle(gpu);
        data->event_type = NVML_EVENT_TYPE_XID_CRITICAL;
        data->event_data = xid;
        data->gpu_instance_id = gi;
        data->compute_instance_id = ci;
        return true;
}

/*
 * Read <dir>/xid from the set's cursor to the last complete line, moving the cursor past each
 * line looked at: NVML_SUCCESS with the first event the set reports, NVML_ERROR_TIMEOUT when
 * there is none yet.
 */
static int xid_scan_locked(struct nvml_event_set *set, struct nvml_event_data *data)
{
        char path[sizeof(fake.dir) + 8], buf[4096];
        struct stat st;
        int fd, r = NVML_ERROR_TIMEOUT;

        xid_path(path, sizeof(path));
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? NVML_ERROR_TIMEOUT : NVML_ERROR_UNKNOWN;
        /* A file cut short was started again: everything in it is new. */
        if (fstat(fd, &st) == 0 && st.st_size < set->cursor) {
                set->cursor = 0;
                memset(set->since, 0, sizeof(set->since));
        }
        while (r == NVML_ERROR_TIMEOUT) {
                ssize_t n = pread(fd, buf, sizeof(buf) - 1, set->cursor);
                char *line = buf, *nl;

                if (n <= 0)
                        break;
                buf[n] = '\0';
                while (r == NVML_ERROR_TIMEOUT &&
                       (nl = memchr(line, '\n', (size_t)(buf + n - line)))) {
                        off_t off = set->cursor;

                        *nl = '\0';
                        set->cursor += nl + 1 - line;
                        if (nl - line < LINE_MAX_LEN && xid_line_event(set, line, off, data))
                                r = NVML_SUCCESS;
                        line = nl + 1;
                }
                /* A full buffer without a newline: a line too long to be ours, skip it. */
                if (line == buf && n == (ssize_t)sizeof(buf) - 1)
                        set->cursor += n;
                else if (line == buf)
                        break; /* the rest is a line still being written */
        }
        close(fd);
        return r;
}

static long long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The lock is let go between looks, so other calls, and other waiters, go on meanwhile. */
VGPU_EXPORT int nvmlEventSetWait_v2(struct nvml_event_set *set, struct nvml_event_data *data,
                                    unsigned timeout_ms)
{
        long long deadline = now_ms() + timeout_ms;

        for (;;) {
                struct timespec nap = {0};
                long long left;
                int r = fake_enter();

                if (r != NVML_SUCCESS)
                        return r;
                if (!data || !set_valid_locked(set))
                        return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
                r = xid_scan_locked(set, data);
                if (r != NVML_ERROR_TIMEOUT)
                        return fake_leave(r);
                fake_leave(r);
                left = deadline - now_ms();
                if (left <= 0)
                        return NVML_ERROR_TIMEOUT;
                nap.tv_nsec = (left < POLL_MS ? left : POLL_MS) * 1000000L;
                nanosleep(&nap, NULL);
        }
}
