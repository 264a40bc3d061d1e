// SPDX-License-Identifier: Apache-2.0
// The cuda backend: a vGPU on a real NVIDIA GPU through the CUDA driver API. The engine holds the
// GPU's primary context; the vGPU's framebuffer is reserved at creation with the virtual memory
// management calls (an address range at the vGPU's fixed device address, physical memory created
// in chunks, mapped, read-write access), so device pointers are real device addresses and the
// range can be mapped again at the same place later. Each guest session gets a stream; kernels,
// fills and device copies are queued on it, copies to and from the staging area complete before
// they return. The first kernel fault loses the context for good: every later call fails with
// it, and the vGPU must be restarted (docs/cuda.md). Modules and launches: cuda_module.c.
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_drv.h"
#include "backend/cuda/cuda_int.h"
#include "common/log.h"
#include "ptx/ptx.h"

#define FB_CHUNK (UINT64_C(1) << 30) /* physical memory is created in pieces of this size */

struct cuda_fb {
        size_t n_chunks;
        CUmemGenericAllocationHandle *chunks;
        uint64_t reserved; /* bytes of address range reserved */
};

/* The context is current on the calling thread (engine threads use one GPU each). */
void cuda_make_current(struct backend_dev *d)
{
        static __thread CUcontext current;

        if (current != d->ctx && cu.ctx_set_current(d->ctx) == CUDA_SUCCESS)
                current = d->ctx;
}

/* A driver result as a backend code; a kernel fault is remembered as the context's end. */
int cuda_result(struct backend_dev *d, CUresult r)
{
        int e = cuda_code(r);

        if (backend_is_fault(e) && !d->lost) {
                __atomic_store_n(&d->lost, e, __ATOMIC_RELEASE);
                vgpu_log(VGPU_LOG_ERROR,
                         "GPU context lost: %s; every later call of this vGPU fails",
                         cuda_errstr(r));
        }
        return e;
}

int cuda_lost(struct backend_dev *d)
{
        return __atomic_load_n(&d->lost, __ATOMIC_ACQUIRE);
}

/* The PCI device id of a GPU, from sysfs (the driver API does not say it). */
static uint32_t pci_device_id(const char *bus_id)
{
        char path[128], buf[16] = "";
        unsigned v = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", bus_id);
        f = fopen(path, "r");
        if (!f)
                return 0;
        if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%x", &v) != 1)
                v = 0;
        fclose(f);
        return v;
}

static int cuda_gpus(struct backend_gpu *ret, size_t max, size_t *ret_n, char *err, size_t err_len)
{
        int n = 0, r;

        r = cuda_drv_load(err, err_len);
        if (r < 0)
                return r;
        if (cu.device_count(&n) != CUDA_SUCCESS)
                n = 0;
        *ret_n = 0;
        for (int i = 0; i < n && *ret_n < max; i++) {
                struct backend_gpu *g = &ret[*ret_n];
                char bus[24] = "";
                CUuuid u;
                CUdevice d;
                size_t mem = 0;
                int sm = 0;

                memset(g, 0, sizeof(*g));
                if (cu.device_get(&d, i) != CUDA_SUCCESS ||
                    cu.device_name(g->name, (int)sizeof(g->name), d) != CUDA_SUCCESS ||
                    cu.device_total_mem(&mem, d) != CUDA_SUCCESS)
                        continue;
                cu.device_attr(&sm, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d);
                cu.device_attr(&g->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d);
                cu.device_attr(&g->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d);
                g->sm_count = (uint32_t)sm;
                g->mem_total = mem;
                if (cu.device_uuid(&u, d) == CUDA_SUCCESS) {
                        const unsigned char *b = (const unsigned char *)u.bytes;

                        /* a MIG device (CUDA_VISIBLE_DEVICES=MIG-...) has a MIG UUID */
                        snprintf(g->uuid, sizeof(g->uuid),
                                 "%s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                                 "%02x%02x%02x%02x%02x%02x",
                                 strstr(g->name, " MIG ") ? "MIG" : "GPU", b[0], b[1], b[2], b[3],
                                 b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                                 b[14], b[15]);
                }
                if (cu.device_pci_bus_id(bus, (int)sizeof(bus), d) == CUDA_SUCCESS) {
                        /* "0000:41:00.0", as nvidia-smi writes it with an 8-digit domain */
                        snprintf(g->bus_id, sizeof(g->bus_id), "0000%s", bus);
                        g->pci_device_id = pci_device_id(bus);
                }
                (*ret_n)++;
        }
        if (*ret_n == 0) {
                snprintf(err, err_len, "the NVIDIA driver sees no GPU");
                return -ENODEV;
        }
        return 0;
}

/* The 32 hex digits of a "GPU-..." or "MIG-..." UUID, lower case; -EINVAL if it has not 32. */
static int uuid_hex(const char *u, char out[33])
{
        size_t n = 0;

        if (strncmp(u, "GPU-", 4) == 0 || strncmp(u, "MIG-", 4) == 0)
                u += 4;
        for (; *u && n < 33; u++) {
                if (*u == '-')
                        continue;
                if (!isxdigit((unsigned char)*u))
                        return -EINVAL;
                out[n++] = (char)tolower((unsigned char)*u);
        }
        if (n != 32 || *u)
                return -EINVAL;
        out[32] = '\0';
        return 0;
}

/* The driver's index of the device with UUID uuid, among those it enumerates. */
static int device_by_uuid(const char *uuid, int n, int *ret, char *err, size_t err_len)
{
        char want[33], have[33];

        if (uuid_hex(uuid, want) < 0) {
                snprintf(err, err_len, "'%s' is not a GPU or MIG device UUID", uuid);
                return -EINVAL;
        }
        for (int i = 0; i < n; i++) {
                CUdevice d;
                CUuuid u;

                if (cu.device_get(&d, i) != CUDA_SUCCESS || cu.device_uuid(&u, d) != CUDA_SUCCESS)
                        continue;
                for (int k = 0; k < 16; k++)
                        snprintf(have + 2 * k, 3, "%02x", (unsigned char)u.bytes[k]);
                if (strcmp(want, have) == 0) {
                        *ret = i;
                        return 0;
                }
        }
        snprintf(err, err_len, "the driver shows no device %s (of %d; CUDA_VISIBLE_DEVICES=%s)",
                 uuid, n, getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "");
        return -ENODEV;
}

static int cuda_dev_open(const struct backend_dev_req *req, struct backend_dev **ret, char *err,
                         size_t err_len)
{
        struct backend_dev *d;
        int n = 0, vmm = 0, r, ordinal = (int)req->gpu_index;
        CUresult cr;

        r = cuda_drv_load(err, err_len);
        if (r < 0)
                return r;
        if (cu.device_count(&n) != CUDA_SUCCESS)
                n = 0;
        if (req->gpu_uuid && req->gpu_uuid[0]) {
                r = device_by_uuid(req->gpu_uuid, n, &ordinal, err, err_len);
                if (r < 0)
                        return r;
        } else if (req->gpu_index >= (uint32_t)n) {
                snprintf(err, err_len, "no GPU %u (the driver sees %d)", req->gpu_index, n);
                return -ENODEV;
        }
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        cr = cu.device_get(&d->dev, ordinal);
        if (cr == CUDA_SUCCESS)
                cr = cu.device_attr(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
                                    d->dev);
        if (cr == CUDA_SUCCESS && !vmm) {
                snprintf(err, err_len, "GPU %u does not support virtual memory management",
                         req->gpu_index);
                free(d);
                return -ENODEV;
        }
        if (cr == CUDA_SUCCESS)
                cr = cu.primary_retain(&d->ctx, d->dev);
        if (cr != CUDA_SUCCESS) {
                snprintf(err, err_len, "GPU %u: %s", req->gpu_index, cuda_errstr(cr));
                free(d);
                return cuda_code(cr) == -ENOMEM ? -ENOMEM : -ENODEV;
        }
        cuda_make_current(d);
        *ret = d;
        return 0;
}

static void cuda_dev_close(struct backend_dev *d)
{
        if (!d)
                return;
        cu.primary_release(d->dev);
        free(d);
}

static void fb_unwind(struct backend_fb_req const *req, struct cuda_fb *f, size_t mapped)
{
        for (size_t i = 0; i < f->n_chunks; i++) {
                uint64_t off = i * FB_CHUNK;

                if (i < mapped)
                        cu.mem_unmap(
                                req->device_address + off,
                                (size_t)(req->size - off < FB_CHUNK ? req->size - off : FB_CHUNK));
                cu.mem_release(f->chunks[i]);
        }
        if (f->reserved)
                cu.mem_address_free(req->device_address, f->reserved);
        free(f->chunks);
        free(f);
}

static int fb_map(struct backend_dev *d, const struct backend_fb_req *req, struct cuda_fb *f,
                  struct backend_fb *ret);

static int cuda_fb_export(struct backend_dev *d, const struct backend_fb *fb, int *fds, size_t max,
                          size_t *ret_n)
{
        const struct cuda_fb *f = fb->priv;

        if (!f || f->n_chunks > max)
                return -EINVAL;
        cuda_make_current(d);
        for (size_t i = 0; i < f->n_chunks; i++) {
                int fd = -1;
                CUresult cr = cu.mem_export(&fd, f->chunks[i],
                                            CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);

                if (cr != CUDA_SUCCESS) {
                        while (i-- > 0)
                                close(fds[i]);
                        return cuda_code(cr);
                }
                fds[i] = fd;
        }
        *ret_n = f->n_chunks;
        return 0;
}

static int cuda_fb_import(struct backend_dev *d, const struct backend_fb_req *req, const int *fds,
                          size_t n, struct backend_fb *ret)
{
        struct cuda_fb *f;
        size_t gran = 0;
        CUmemAllocationProp prop = {
                .type = CU_MEM_ALLOCATION_TYPE_PINNED,
                .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = (int)d->dev},
        };

        cuda_make_current(d);
        if (cu.mem_granularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS ||
            !gran || req->size == 0 || req->size % gran || req->device_address % gran ||
            n != (req->size + FB_CHUNK - 1) / FB_CHUNK)
                return -EINVAL;
        f = calloc(1, sizeof(*f));
        if (!f || !(f->chunks = calloc(n, sizeof(*f->chunks)))) {
                free(f);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                CUresult cr = cu.mem_import(&f->chunks[i], (void *)(uintptr_t)fds[i],
                                            CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);

                if (cr != CUDA_SUCCESS) {
                        fb_unwind(req, f, 0);
                        return cuda_code(cr);
                }
                f->n_chunks = i + 1;
        }
        return fb_map(d, req, f, ret);
}

/*
 * The size a fitting reservation takes: want, or what the device has free less the headroom
 * (VGPU_CUDA_FB_HEADROOM_MIB, 1024 unless set) for the contexts of the engine's workers, rounded
 * down to gran. 0 when nothing is left.
 */
static uint64_t fit_size(uint64_t want, size_t gran)
{
        const char *env = getenv("VGPU_CUDA_FB_HEADROOM_MIB");
        uint64_t headroom = (uint64_t)(env ? strtoull(env, NULL, 10) : 1024) << 20;
        size_t free = 0, total = 0;
        uint64_t have;

        if (cu.mem_get_info(&free, &total) != CUDA_SUCCESS || free <= headroom)
                return 0;
        have = (free - headroom) / gran * gran;
        return have < want ? have : want;
}

static int cuda_fb_reserve(struct backend_dev *d, const struct backend_fb_req *want,
                           struct backend_fb *ret)
{
        struct backend_fb_req fitted = *want, *req = &fitted;
        /* Exportable as file descriptors: an engine's per-guest workers map the same memory. */
        CUmemAllocationProp prop = {
                .type = CU_MEM_ALLOCATION_TYPE_PINNED,
                .requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR,
                .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = (int)d->dev},
        };
        struct cuda_fb *f;
        size_t gran = 0, n;
        CUresult cr;

        cuda_make_current(d);
        if (cu.mem_granularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS ||
            !gran || req->size == 0 || req->size % gran || req->device_address % gran)
                return -EINVAL;
        if (req->fit) {
                fitted.size = fit_size(want->size, gran);
                if (!fitted.size)
                        return -ENOMEM;
                if (fitted.size < want->size)
                        vgpu_log(VGPU_LOG_INFO,
                                 "framebuffer: %" PRIu64 " MiB of %" PRIu64
                                 " MiB (what the device has free)",
                                 fitted.size >> 20, want->size >> 20);
        }
        n = (size_t)((req->size + FB_CHUNK - 1) / FB_CHUNK);
        f = calloc(1, sizeof(*f));
        if (!f || !(f->chunks = calloc(n, sizeof(*f->chunks)))) {
                free(f);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                uint64_t off = i * FB_CHUNK;
                size_t len = (size_t)(req->size - off < FB_CHUNK ? req->size - off : FB_CHUNK);

                cr = cu.mem_create(&f->chunks[i], len, &prop, 0);
                if (cr != CUDA_SUCCESS) {
                        fb_unwind(req, f, 0);
                        return cuda_code(cr);
                }
                f->n_chunks = i + 1;
        }
        return fb_map(d, req, f, ret);
}

/*
 * Reserve req's address range and map f's chunks there, read-write for this GPU; on failure
 * everything of f is released.
 */
static int fb_map(struct backend_dev *d, const struct backend_fb_req *req, struct cuda_fb *f,
                  struct backend_fb *ret)
{
        CUmemAccessDesc access = {
                .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = (int)d->dev},
                .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
        CUdeviceptr got = 0;
        CUresult cr;

        /* The address is a hint to the driver: anything else means the range is taken. */
        cr = cu.mem_address_reserve(&got, (size_t)req->size, 0, req->device_address, 0);
        if (cr != CUDA_SUCCESS || got != req->device_address) {
                if (cr == CUDA_SUCCESS)
                        cu.mem_address_free(got, (size_t)req->size);
                fb_unwind(req, f, 0);
                return cr == CUDA_SUCCESS ? -EEXIST : cuda_code(cr);
        }
        f->reserved = req->size;
        for (size_t i = 0; i < f->n_chunks; i++) {
                uint64_t off = i * FB_CHUNK;
                size_t len = (size_t)(req->size - off < FB_CHUNK ? req->size - off : FB_CHUNK);

                cr = cu.mem_map(req->device_address + off, len, 0, f->chunks[i], 0);
                if (cr != CUDA_SUCCESS) {
                        fb_unwind(req, f, i);
                        return cuda_code(cr);
                }
        }
        cr = cu.mem_set_access(req->device_address, (size_t)req->size, &access, 1);
        if (cr != CUDA_SUCCESS) {
                fb_unwind(req, f, f->n_chunks);
                return cuda_code(cr);
        }
        *ret = (struct backend_fb){
                .device_address = req->device_address,
                .size = req->size,
                .phys_offset = req->phys_offset,
                .host = NULL,
                .fd = -1,
                .priv = f,
        };
        return 0;
}

static void cuda_fb_release(struct backend_dev *d, struct backend_fb *fb)
{
        struct backend_fb_req req = {.device_address = fb->device_address, .size = fb->size};
        struct cuda_fb *f = fb->priv;

        if (!f)
                return;
        cuda_make_current(d);
        fb_unwind(&req, f, f->n_chunks);
        fb->priv = NULL;
}

static uint64_t cuda_fb_resident(const struct backend_fb *fb)
{
        /* Physical memory backs the whole range from creation on. */
        return fb->priv ? fb->size : 0;
}

static int cuda_host_register(struct backend_dev *d, void *p, size_t len)
{
        cuda_make_current(d);
        return cuda_code(cu.host_register(p, len, CU_MEMHOSTREGISTER_PORTABLE));
}

static void cuda_host_unregister(struct backend_dev *d, void *p)
{
        cuda_make_current(d);
        cu.host_unregister(p);
}

static int cuda_queue_new(struct backend_dev *d, struct backend_queue **ret)
{
        struct backend_queue *q = calloc(1, sizeof(*q));
        CUresult cr;

        if (!q)
                return -ENOMEM;
        cuda_make_current(d);
        cr = cu.stream_create(&q->stream, CU_STREAM_NON_BLOCKING);
        if (cr != CUDA_SUCCESS) {
                free(q);
                return cuda_code(cr);
        }
        q->d = d;
        *ret = q;
        return 0;
}

static int cuda_queue_sync(struct backend_queue *q)
{
        if (cuda_lost(q->d))
                return cuda_lost(q->d);
        cuda_make_current(q->d);
        return cuda_result(q->d, cu.stream_sync(q->stream));
}

/* The GPU time of finished timed launches (drain: of all of them, waiting). */
uint64_t cuda_collect(struct backend_queue *q, bool drain)
{
        uint64_t ns = 0;

        while (q->head != q->tail) {
                unsigned i = q->head % TIMED;
                float ms = 0;

                if (drain ? cu.event_sync(q->end[i]) != CUDA_SUCCESS
                          : cu.event_query(q->end[i]) != CUDA_SUCCESS) {
                        if (drain)
                                q->head++; /* a lost context: nothing more to measure */
                        if (drain)
                                continue;
                        break;
                }
                if (cu.event_elapsed(&ms, q->start[i], q->end[i]) == CUDA_SUCCESS && ms > 0)
                        ns += (uint64_t)((double)ms * 1e6);
                q->head++;
        }
        return ns;
}

static uint64_t cuda_queue_gpu_time(struct backend_queue *q, bool drain)
{
        uint64_t ns;

        if (cuda_lost(q->d))
                return 0;
        cuda_make_current(q->d);
        if (!q->timing) {
                unsigned made = 0; /* events made, start[0], end[0], start[1], ... */

                /* after a failure to make them, tried again now and then */
                if (q->untimed && ++q->untimed_calls % 256 != 0)
                        return 0;
                while (made < 2 * TIMED &&
                       cu.event_create(made % 2 ? &q->end[made / 2] : &q->start[made / 2],
                                       CU_EVENT_DEFAULT) == CUDA_SUCCESS)
                        made++;
                if (made < 2 * TIMED) {
                        while (made--)
                                cu.event_destroy(made % 2 ? q->end[made / 2] : q->start[made / 2]);
                        if (!q->untimed)
                                vgpu_log(VGPU_LOG_WARN,
                                         "GPU time: cannot create events; this stream's launches "
                                         "are not charged to its vGPU until they can be");
                        q->untimed = true;
                        return 0;
                }
                q->timing = true;
                q->untimed = false;
                return 0;
        }
        ns = cuda_collect(q, drain) + q->carry;
        q->carry = 0;
        /* A slice must end near its length: keep only a few launches ahead of the measure. */
        while (q->tail - q->head > AHEAD) {
                unsigned i = q->head % TIMED;
                float ms = 0;

                if (cu.event_sync(q->end[i]) == CUDA_SUCCESS &&
                    cu.event_elapsed(&ms, q->start[i], q->end[i]) == CUDA_SUCCESS && ms > 0)
                        ns += (uint64_t)((double)ms * 1e6);
                q->head++;
        }
        return ns;
}

static void cuda_queue_free(struct backend_queue *q)
{
        if (!q)
                return;
        cuda_make_current(q->d);
        cu.stream_sync(q->stream);
        if (q->timing) {
                for (unsigned i = 0; i < TIMED; i++) {
                        cu.event_destroy(q->start[i]);
                        cu.event_destroy(q->end[i]);
                }
        }
        cu.stream_destroy(q->stream);
        free(q);
}

static int cuda_copy_htod(struct backend_queue *q, uint64_t dst, const void *src, uint64_t len)
{
        int e;

        if (cuda_lost(q->d))
                return cuda_lost(q->d);
        cuda_make_current(q->d);
        e = cuda_result(q->d, cu.memcpy_htod_async(dst, src, (size_t)len, q->stream));
        return e ? e : cuda_queue_sync(q);
}

static int cuda_copy_dtoh(struct backend_queue *q, void *dst, uint64_t src, uint64_t len)
{
        int e;

        if (cuda_lost(q->d))
                return cuda_lost(q->d);
        cuda_make_current(q->d);
        e = cuda_result(q->d, cu.memcpy_dtoh_async(dst, src, (size_t)len, q->stream));
        return e ? e : cuda_queue_sync(q);
}

static int cuda_copy_dtod(struct backend_queue *q, uint64_t dst, uint64_t src, uint64_t len)
{
        if (cuda_lost(q->d))
                return cuda_lost(q->d);
        cuda_make_current(q->d);
        return cuda_result(q->d, cu.memcpy_dtod_async(dst, src, (size_t)len, q->stream));
}

static int cuda_memset(struct backend_queue *q, uint64_t dst, uint64_t pitch, uint32_t value,
                       uint32_t elem_size, uint64_t width, uint64_t height)
{
        CUresult cr;

        if (cuda_lost(q->d))
                return cuda_lost(q->d);
        cuda_make_current(q->d);
        if (elem_size == 1)
                cr = cu.memset_d2d8_async(dst, (size_t)pitch, (unsigned char)value, (size_t)width,
                                          (size_t)height, q->stream);
        else if (elem_size == 2)
                cr = cu.memset_d2d16_async(dst, (size_t)pitch, (unsigned short)value, (size_t)width,
                                           (size_t)height, q->stream);
        else
                cr = cu.memset_d2d32_async(dst, (size_t)pitch, value, (size_t)width, (size_t)height,
                                           q->stream);
        return cuda_result(q->d, cr);
}

const struct backend_ops backend_cuda_ops = {
        .name = "cuda",
        .gpus = cuda_gpus,
        .dev_open = cuda_dev_open,
        .dev_close = cuda_dev_close,
        .dev_lost = cuda_lost,
        .fb_reserve = cuda_fb_reserve,
        .fb_release = cuda_fb_release,
        .fb_resident = cuda_fb_resident,
        .fb_export = cuda_fb_export,
        .fb_import = cuda_fb_import,
        .host_register = cuda_host_register,
        .host_unregister = cuda_host_unregister,
        .queue_new = cuda_queue_new,
        .queue_free = cuda_queue_free,
        .queue_sync = cuda_queue_sync,
        .queue_gpu_time = cuda_queue_gpu_time,
        .copy_htod = cuda_copy_htod,
        .copy_dtoh = cuda_copy_dtoh,
        .copy_dtod = cuda_copy_dtod,
        .memset = cuda_memset,
        .module_load = cuda_module_load,
        .module_free = cuda_module_free,
        .module_function = cuda_module_function,
        .module_global = cuda_module_global,
        .func_info = cuda_func_info,
        .func_param = cuda_func_param,
        .func_name = cuda_func_name,
        .launch = cuda_launch,
};
