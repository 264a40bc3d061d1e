// SPDX-License-Identifier: Apache-2.0
// The manager: placement, durable state and engine processes kept in agreement. Startup restores
// the layouts from the database and reconciles them with the engines that are still running;
// a watcher thread marks the vGPUs of engines that die as faulted.
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/engine_proc.h"
#include "backend/cuda/nvml.h"
#include "manager/manager.h"
#include "manager/migdev.h"
#include "manager/state.h"
#include "vgpu/errors.h"

#define ENGINE_START_MS  10000
#define ENGINE_STOP_MS   5000
#define ENGINE_STATUS_MS 2000
#define ENGINE_BUSY_MS   120000 /* an engine in the middle of a suspend or a move, at restart */

static pid_t find_engine(struct manager *m, const char *uuid);

static const char *const state_names[] = {"creating", "running", "destroying", "faulted",
                                          "suspended"};
#define N_STATES (sizeof(state_names) / sizeof(state_names[0]))

const char *manager_state_name(enum mgr_vgpu_state s)
{
        return (unsigned)s < N_STATES ? state_names[s] : "unknown";
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void random_uuid(char out[37])
{
        uint8_t b[16];

        if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
                /* getrandom on Linux >= 3.17 does not fail for 16 bytes; be safe anyway. */
                for (size_t i = 0; i < sizeof(b); i++)
                        b[i] = (uint8_t)(rand() ^ (int)(now_ms() >> i));
        }
        b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
        b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                 b[13], b[14], b[15]);
}

static bool uuid_valid(const char *s)
{
        if (strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;

                if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
                        return false;
        }
        return true;
}

static void utc_now(char *buf, size_t len)
{
        time_t t = time(NULL);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void engine_path(const struct manager *m, const char *uuid, const char *ext, char *buf,
                        size_t len)
{
        snprintf(buf, len, "%s/engines/%s.%s", m->state_dir, uuid, ext);
}

void manager_lock(struct manager *m)
{
        pthread_mutex_lock(&m->lock);
}

void manager_unlock(struct manager *m)
{
        pthread_mutex_unlock(&m->lock);
}

struct mgr_gpu *manager_gpu_locked(struct manager *m, const char *id)
{
        char *end;
        unsigned long idx;

        if (!id || !*id)
                return NULL;
        for (size_t i = 0; i < m->n_gpus; i++) {
                if (strcasecmp(m->gpus[i].uuid, id) == 0)
                        return &m->gpus[i];
        }
        if (!isdigit((unsigned char)id[0]))
                return NULL;
        idx = strtoul(id, &end, 10);
        if (*end || idx >= m->n_gpus)
                return NULL;
        return &m->gpus[idx];
}

struct mgr_vgpu *manager_vgpu_locked(struct manager *m, const char *uuid)
{
        for (size_t i = 0; uuid && i < m->n_vgpus; i++) {
                if (strcasecmp(m->vgpus[i].uuid, uuid) == 0)
                        return &m->vgpus[i];
        }
        return NULL;
}

static void vgpu_row(const struct mgr_vgpu *v, struct state_vgpu *row)
{
        *row = (struct state_vgpu){
                .handle = v->handle,
                .gpu = v->gpu,
                .type_id = v->type->id,
                .placement = v->place.placement,
                .gi = v->place.gi,
                .owner_uid = v->owner_uid,
                .engine_pid = v->engine_pid,
        };
        snprintf(row->uuid, sizeof(row->uuid), "%s", v->uuid);
        snprintf(row->state, sizeof(row->state), "%s", manager_state_name(v->state));
        snprintf(row->created_at, sizeof(row->created_at), "%s", v->created_at);
        if (v->device_address != layout_device_address(v->gpu, v->place.fb_offset))
                row->device_address = v->device_address;
}

/* Commit v's row (and its implicit GPU instance) as one transaction. */
/*
 * Where v's last suspend wrote its image, kept beside the default one (UUID.where): a fresh
 * engine restores from there when the one that suspended it is gone.
 */
static void where_path(const struct manager *m, const struct mgr_vgpu *v, char *buf, size_t len)
{
        snprintf(buf, len, "%s/images/%s.where", m->state_dir, v->uuid);
}

static void image_note(const struct manager *m, const struct mgr_vgpu *v, const char *image)
{
        char where[4200], tmp[4300];
        int fd;

        where_path(m, v, where, sizeof(where));
        snprintf(tmp, sizeof(tmp), "%s.tmp", where);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || write(fd, image, strlen(image)) != (ssize_t)strlen(image) || fsync(fd) < 0 ||
            rename(tmp, where) < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: cannot note where its image is (%s)", v->uuid,
                         strerror(errno));
        if (fd >= 0)
                close(fd);
        unlink(tmp);
}

/* The image a fresh engine restores v from: the noted one, or the default. */
static void image_of(const struct manager *m, const struct mgr_vgpu *v, char *buf, size_t len)
{
        char where[4200];
        ssize_t n = -1;
        int fd;

        where_path(m, v, where, sizeof(where));
        fd = open(where, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
                n = read(fd, buf, len - 1);
                close(fd);
        }
        if (n > 1 && buf[0] == '/')
                buf[n] = '\0';
        else
                manager_image_path(m, v, buf, len);
}

static void image_forget(const struct manager *m, const struct mgr_vgpu *v)
{
        char where[4200];

        where_path(m, v, where, sizeof(where));
        unlink(where);
}

static int persist_vgpu(struct manager *m, const struct mgr_vgpu *v, const struct layout_gi *gi)
{
        struct state_vgpu row;
        int r;

        vgpu_row(v, &row);
        r = state_begin(m->db);
        if (r < 0)
                return VGPU_ESTATE;
        if (gi) {
                struct state_gi g = {.gpu = v->gpu,
                                     .id = gi->id,
                                     .profile = gi->profile->id,
                                     .start = gi->start,
                                     .implicit = gi->implicit};

                r = state_put_gi(m->db, &g);
        }
        if (r == 0)
                r = state_put_vgpu(m->db, &row);
        if (r == 0)
                r = state_commit(m->db);
        if (r < 0) {
                state_rollback(m->db);
                return VGPU_ESTATE;
        }
        return 0;
}

/* Remove v's row, and its GPU instance's row when that was implicit, in one transaction. */
static int unpersist_vgpu(struct manager *m, const struct mgr_vgpu *v, bool implicit_gi)
{
        int r = state_begin(m->db);

        if (r == 0)
                r = state_del_vgpu(m->db, v->uuid);
        if (r == 0 && implicit_gi)
                r = state_del_gi(m->db, v->gpu, v->place.gi);
        if (r == 0)
                r = state_commit(m->db);
        if (r < 0) {
                state_rollback(m->db);
                return VGPU_ESTATE;
        }
        return 0;
}

/* The SMs a vGPU presents: its GPU instance's for MIG, else the whole GPU's (time-sliced). */
static uint32_t vgpu_sm_count(const struct manager *m, const struct mgr_vgpu *v)
{
        const struct mgr_gpu *g = &m->gpus[v->gpu];
        const struct layout_gi *gi = v->place.gi ? layout_find_gi(&g->layout, v->place.gi) : NULL;

        if (!gi)
                return g->model->sm_count;
        if (gi->profile->sm_count)
                return gi->profile->sm_count;
        return g->model->sm_count * gi->profile->compute_slices / g->model->mig_compute_slices;
}

/*
 * Time-sliced vGPUs share their GPU (or GPU instance) by its scheduler; MIG-backed ones not. On
 * the cuda backend the engines time their launches with events (docs/scheduling.md).
 */
static bool gated(const struct manager *m, const struct mgr_vgpu *v)
{
        (void)m;
        return v->type->cls == CATALOG_TIME_SLICED;
}

static void sched_attach(struct manager *m, const struct mgr_vgpu *v)
{
        const struct mgr_gpu *g = &m->gpus[v->gpu];
        const struct layout_gi *gi = v->place.gi ? layout_find_gi(&g->layout, v->place.gi) : NULL;
        uint32_t slots = gi ? catalog_max_in_gi(g->model, gi->profile, v->type)
                            : catalog_max_equal(g->model, v->type);
        char path[256];
        int r;

        if (!m->sched || !gated(m, v) || m->no_engines)
                return;
        engine_path(m, v->uuid, "sched", path, sizeof(path));
        r = scheduler_attach(m->sched, v->gpu, v->place.gi, v->handle, path, slots ? slots : 1,
                             strcmp(m->backend, "cuda") == 0);
        if (r < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: not scheduled (%s): it runs ungated", v->uuid,
                         strerror(-r));
}

static void sched_detach(struct manager *m, const struct mgr_vgpu *v)
{
        if (m->sched)
                scheduler_detach(m->sched, v->gpu, v->handle);
}

static int start_engine(struct manager *m, struct mgr_vgpu *v, char *err, size_t len)
{
        char control[256], log[256], guest[256], sched[256];
        struct engine_spec spec = {
                .engine_path = m->engine_path,
                .backend = m->backend,
                .uuid = v->uuid,
                .type = v->type->name,
                .control = control,
                .guest_socket = guest,
                .model = m->gpus[v->gpu].model->id,
                .sm_count = vgpu_sm_count(m, v),
                .owner_uid = v->owner_uid,
                .log_path = log,
                .gpu_index = v->gpu,
                .device_address = v->device_address,
                .fb_size = v->fb_bytes,
                .fb_offset = v->place.fb_offset,
        };
        int r;

        if (m->no_engines) {
                v->engine_pid = 0;
                return 0;
        }
        if (m->real_gpus) {
                /* a real GPU's engine opens its device by UUID: a MIG device for MIG */
                const struct mgr_gpu *g = &m->gpus[v->gpu];

                spec.gpu_uuid = g->uuid;
                if (g->mig_hw) {
                        spec.gpu_uuid = v->place.gi ? migdev_uuid(g, v->place.gi) : NULL;
                        spec.cuda_visible = spec.gpu_uuid;
                        /* a MIG device has less memory than its profile's nominal size */
                        spec.fb_fit = true;
                        if (!spec.gpu_uuid) {
                                snprintf(err, len,
                                         "GPU instance %u of GPU %u has no MIG device (no "
                                         "compute instance)",
                                         v->place.gi, v->gpu);
                                return VGPU_EMIG_DEVICE;
                        }
                }
        }
        engine_path(m, v->uuid, "sock", control, sizeof(control));
        engine_path(m, v->uuid, "log", log, sizeof(log));
        engine_path(m, v->uuid, "guest", guest, sizeof(guest));
        engine_path(m, v->uuid, "sched", sched, sizeof(sched));
        sched_detach(m, v);
        if (gated(m, v) && scheduler_page_create(sched) == 0)
                spec.sched_path = sched;
        r = engine_spawn(&spec, ENGINE_START_MS, &v->engine_pid, err, len);
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR, "vGPU %s: engine did not start: %s", v->uuid, err);
                return VGPU_EENGINE;
        }
        if (spec.fb_fit) {
                /* what the engine took, which is the vGPU's framebuffer from now on */
                json_t *st = NULL;

                if (engine_status(control, ENGINE_STATUS_MS, &st) == 0 &&
                    json_integer_value(json_object_get(st, "fb_size")) > 0)
                        v->fb_bytes = (uint64_t)json_integer_value(json_object_get(st, "fb_size"));
                json_decref(st);
        }
        return 0;
}

/* Stop an engine and remove its socket and log: nothing of a destroyed vGPU stays behind. */
/* Remove an engine's socket, log, guest socket and scheduler page. */
static void remove_engine_files(struct manager *m, const char *uuid)
{
        static const char *const kinds[] = {"sock", "log", "guest", "sched"};
        char path[256];

        if (m->no_engines)
                return;
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
                engine_path(m, uuid, kinds[i], path, sizeof(path));
                unlink(path);
        }
}

static void stop_engine(struct manager *m, const char *uuid, pid_t pid)
{
        char path[256];

        if (m->no_engines)
                return;
        engine_path(m, uuid, "sock", path, sizeof(path));
        engine_stop(path, pid, ENGINE_STOP_MS);
        remove_engine_files(m, uuid);
}

static struct mgr_vgpu *vgpu_append(struct manager *m)
{
        if (m->n_vgpus == m->cap_vgpus) {
                size_t cap = m->cap_vgpus ? m->cap_vgpus * 2 : 16;
                struct mgr_vgpu *nv = realloc(m->vgpus, cap * sizeof(*nv));

                if (!nv)
                        return NULL;
                m->vgpus = nv;
                m->cap_vgpus = cap;
        }
        return &m->vgpus[m->n_vgpus++];
}

static void vgpu_remove(struct manager *m, struct mgr_vgpu *v)
{
        size_t i = (size_t)(v - m->vgpus);

        memmove(&m->vgpus[i], &m->vgpus[i + 1], (m->n_vgpus - i - 1) * sizeof(*v));
        m->n_vgpus--;
}

/*
 * A device address for a new vGPU at fb_offset of GPU gpu: the one they give, unless a vGPU that
 * moved there from another GPU holds it (addresses are the vGPU's for life); then the same
 * offset in a spare window above the GPUs' (layout.h: 96 windows of 1 TiB, 16 GPUs at most).
 */
#define VA_WINDOWS_PER_ALIAS 16u
#define VA_ALIASES           5u

static bool address_taken(const struct manager *m, uint64_t a, uint64_t size)
{
        for (size_t i = 0; i < m->n_vgpus; i++) {
                const struct mgr_vgpu *o = &m->vgpus[i];

                if (a < o->device_address + o->fb_bytes && o->device_address < a + size)
                        return true;
        }
        return false;
}

static uint64_t free_address(const struct manager *m, uint32_t gpu, uint64_t off, uint64_t size)
{
        for (uint32_t k = 0; k <= VA_ALIASES; k++) {
                uint64_t a = layout_device_address(gpu + k * VA_WINDOWS_PER_ALIAS, off);

                if (!address_taken(m, a, size))
                        return a;
        }
        return layout_device_address(gpu, off); /* not reached with 16 GPUs at most */
}

/*
 * A MIG-backed vGPU on a real GPU in MIG mode, with no GPU instance asked for: an empty one of
 * its profile that exists and has a MIG device, or (--mig-admin) one made for it through NVML
 * where the layout would put it, implicit (destroyed with the vGPU; *ret_made says its ID).
 * req->gi says which.
 */
static int real_gi_for(struct manager *m, struct mgr_gpu *g, const struct vgpu_type *t,
                       struct layout_req *req, uint32_t *ret_made, char *err, size_t len)
{
        const struct mig_profile *p = catalog_find_profile(g->model, t->mig_profile);
        struct layout_vgpu out;
        uint32_t id;
        int r;

        if (!p)
                return VGPU_EUNKNOWN_PROFILE;
        for (size_t i = 0; i < g->layout.n_gis; i++) {
                struct layout_req one = {.gi = g->layout.gis[i].id, .placement = req->placement};

                if (g->layout.gis[i].profile == p && migdev_uuid(g, one.gi) &&
                    layout_check(&g->layout, t, &one, &out) == 0) {
                        req->gi = one.gi;
                        return 0;
                }
        }
        if (!m->mig_admin) {
                snprintf(err, len,
                         "GPU %u has no free %s GPU instance with a compute instance for %s; "
                         "an operator creates one (nvidia-smi mig -i %u -cgi %u -C), or starts "
                         "vgpud with --mig-admin to let it",
                         g->index, p->name, t->name, g->index, p->id);
                return VGPU_EMIG_ADMIN;
        }
        r = layout_check(&g->layout, t, req, &out);
        if (r < 0)
                return r;
        if (r == 0) {
                snprintf(err, len, "GPU instance %u of GPU %u has no compute instance", out.gi,
                         g->index);
                return VGPU_EMIG_DEVICE;
        }
        r = migdev_gi_create_locked(m, g, p, out.placement, &id, err, len);
        if (r < 0)
                return r;
        for (size_t i = 0; i < g->layout.n_gis; i++) {
                if (g->layout.gis[i].id == id)
                        g->layout.gis[i].implicit = true;
        }
        req->gi = id;
        *ret_made = id;
        return 0;
}

/* Give back a GPU instance made for a vGPU that was not made after all (its words logged). */
static void real_gi_unmake(struct manager *m, struct mgr_gpu *g, uint32_t gi, bool layout_done)
{
        char why[256];

        if (gi && migdev_gi_destroy_locked(m, g, gi, layout_done, why, sizeof(why)) < 0)
                vgpu_log(VGPU_LOG_WARN, "GPU %u: GPU instance %u stays: %s", g->index, gi, why);
}

int manager_create_locked(struct manager *m, const struct mgr_create *c, struct mgr_vgpu **ret,
                          char *err, size_t len)
{
        struct mgr_gpu *g = c->gpu;
        struct mgr_vgpu v = {0}, *slot;
        const struct layout_gi *gi;
        struct layout_gi gi_copy;
        struct layout_req req = c->req;
        uint32_t made_gi = 0;
        bool implicit = false;
        int r;

        err[0] = '\0';
        if (c->uuid) {
                if (!uuid_valid(c->uuid))
                        return -EINVAL;
                if (manager_vgpu_locked(m, c->uuid))
                        return VGPU_EEXIST;
                snprintf(v.uuid, sizeof(v.uuid), "%s", c->uuid);
                for (char *p = v.uuid; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
        } else {
                random_uuid(v.uuid);
        }
        v.handle = m->next_handle;
        if (g->mig_hw && c->type->cls == CATALOG_MIG && req.gi == 0) {
                r = real_gi_for(m, g, c->type, &req, &made_gi, err, len);
                if (r < 0)
                        return r;
        }
        r = layout_create(&g->layout, c->type, &req, v.handle, &v.place);
        if (r < 0) {
                real_gi_unmake(m, g, made_gi, false);
                return r;
        }
        v.gpu = g->index;
        v.type = c->type;
        v.owner_uid = c->owner_uid;
        v.device_address = free_address(m, g->index, v.place.fb_offset, v.place.fb_size);
        v.fb_bytes = v.place.fb_size;
        v.state = MGR_CREATING;
        utc_now(v.created_at, sizeof(v.created_at));
        gi = v.place.gi ? layout_find_gi(&g->layout, v.place.gi) : NULL;
        if (gi && gi->implicit) {
                gi_copy = *gi;
                implicit = true;
        }
        /* Committed as "creating" first: a crash from here on leaves a row that says half-made. */
        r = persist_vgpu(m, &v, implicit ? &gi_copy : NULL);
        if (r < 0)
                goto err_layout;
        r = start_engine(m, &v, err, len);
        if (r < 0)
                goto err_row;
        v.state = MGR_RUNNING;
        r = persist_vgpu(m, &v, NULL);
        if (r < 0)
                goto err_engine;
        slot = vgpu_append(m);
        if (!slot) {
                r = -ENOMEM;
                goto err_engine;
        }
        *slot = v;
        sched_attach(m, slot);
        m->next_handle++;
        *ret = slot;
        vgpu_log(VGPU_LOG_INFO, "created vGPU %s (%s) on GPU %u at 0x%" PRIx64, v.uuid,
                 v.type->name, g->index, v.device_address);
        return 0;

err_engine:
        stop_engine(m, v.uuid, v.engine_pid);
err_row:
        remove_engine_files(m, v.uuid); /* what a start that failed left (its log, its page) */
        unpersist_vgpu(m, &v, implicit);
err_layout:
        layout_destroy(&g->layout, v.handle);
        real_gi_unmake(m, g, made_gi, true);
        return r;
}

void manager_control_socket(const struct manager *m, const struct mgr_vgpu *v, char *buf,
                            size_t len)
{
        engine_path(m, v->uuid, "sock", buf, len);
}

void manager_guest_socket(const struct manager *m, const struct mgr_vgpu *v, char *buf, size_t len)
{
        engine_path(m, v->uuid, "guest", buf, len);
}

int manager_restart_locked(struct manager *m, struct mgr_vgpu *v, char *err, size_t len)
{
        int r;

        err[0] = '\0';
        if (v->busy)
                return VGPU_EBUSY;
        if (v->state == MGR_RUNNING && engine_alive(v->engine_pid))
                return VGPU_EGPU_BUSY;
        if (v->state != MGR_RUNNING && v->state != MGR_FAILED)
                return VGPU_EGPU_BUSY;
        r = start_engine(m, v, err, len);
        v->state = r < 0 ? MGR_FAILED : MGR_RUNNING;
        if (r == 0)
                sched_attach(m, v);
        if (persist_vgpu(m, v, NULL) < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v->uuid);
        if (r == 0)
                vgpu_log(VGPU_LOG_INFO, "vGPU %s restarted: engine %d", v->uuid,
                         (int)v->engine_pid);
        return r;
}

int manager_vgpu_usage_locked(struct manager *m, const struct mgr_vgpu *v, int *ret_guests,
                              int64_t *ret_fb_used)
{
        char control[256];
        json_t *st;

        *ret_guests = 0;
        *ret_fb_used = -1;
        /* a busy engine answers once its suspend or move is done: not asked meanwhile */
        if ((v->state != MGR_RUNNING && v->state != MGR_SUSPENDED) || m->no_engines || v->busy)
                return 0;
        engine_path(m, v->uuid, "sock", control, sizeof(control));
        if (engine_status(control, ENGINE_STATUS_MS, &st) < 0)
                return 0;
        *ret_guests = (int)json_integer_value(json_object_get(st, "guests"));
        if (json_is_integer(json_object_get(st, "fb_used")))
                *ret_fb_used = json_integer_value(json_object_get(st, "fb_used"));
        json_decref(st);
        return *ret_guests;
}

int manager_destroy_locked(struct manager *m, struct mgr_vgpu *v, bool force)
{
        struct mgr_gpu *g = &m->gpus[v->gpu];
        const struct layout_gi *gi = v->place.gi ? layout_find_gi(&g->layout, v->place.gi) : NULL;
        bool implicit = gi && gi->implicit;
        char img[4096];
        int r;

        int guests;
        int64_t used;

        if (v->busy)
                return VGPU_EBUSY;
        if (!force && manager_vgpu_usage_locked(m, v, &guests, &used) > 0)
                return VGPU_EGUESTS;
        v->state = MGR_DESTROYING;
        r = persist_vgpu(m, v, NULL);
        if (r < 0) {
                v->state = MGR_RUNNING;
                return r;
        }
        sched_detach(m, v);
        stop_engine(m, v->uuid, v->engine_pid);
        r = unpersist_vgpu(m, v, implicit);
        if (r < 0)
                return r; /* the row says "destroying": the next start finishes the job */
        layout_destroy(&g->layout, v->handle);
        if (implicit && g->mig_hw)
                real_gi_unmake(m, g, v->place.gi, true);
        manager_image_path(m, v, img, sizeof(img));
        unlink(img); /* a suspended vGPU's image goes with it */
        image_forget(m, v);
        vgpu_log(VGPU_LOG_INFO, "destroyed vGPU %s", v->uuid);
        vgpu_remove(m, v);
        return 0;
}

static int persist_gpu(struct manager *m, const struct mgr_gpu *g)
{
        struct state_gpu row = {.index = g->index};
        int r;

        snprintf(row.uuid, sizeof(row.uuid), "%s", g->uuid);
        snprintf(row.model, sizeof(row.model), "%s", g->model->id);
        snprintf(row.mode, sizeof(row.mode), "%s", layout_mode_name(g->layout.mode));
        snprintf(row.pci_bus_id, sizeof(row.pci_bus_id), "%s", g->pci_bus_id);
        r = state_begin(m->db);
        if (r == 0)
                r = state_put_gpu(m->db, &row);
        if (r == 0)
                r = state_commit(m->db);
        if (r < 0) {
                state_rollback(m->db);
                return VGPU_ESTATE;
        }
        return 0;
}

int manager_set_mode_locked(struct manager *m, struct mgr_gpu *g, enum layout_mode mode)
{
        enum sched_policy p;
        uint32_t ms;
        uint64_t clock, idle;

        /* A real GPU's MIG mode is the hardware's, and vgpud never changes it. */
        if (m->real_gpus && (mode == LAYOUT_MIG) != g->mig_hw)
                return mode == LAYOUT_MIG ? VGPU_EMIG_OFF : VGPU_EMODE;

        /* Fixed share needs equal sizes: the policy changes first (vgpuctl sched). */
        scheduler_get(m->sched, g->index, &p, &ms, &clock, &idle);
        if (mode == LAYOUT_HETEROGENEOUS && p == SCHED_FIXED_SHARE)
                return VGPU_ESCHED_MIX;
        enum layout_mode old = g->layout.mode;
        int r = layout_set_mode(&g->layout, mode);

        if (r < 0 || old == mode)
                return r;
        r = persist_gpu(m, g);
        if (r < 0)
                g->layout.mode = old;
        return r;
}

int manager_gi_create_locked(struct manager *m, struct mgr_gpu *g, const struct mig_profile *p,
                             int64_t start, struct layout_gi *ret, char *err, size_t len)
{
        struct layout_gi gi;
        struct state_gi row;
        int r;

        err[0] = '\0';
        if (m->real_gpus) {
                /* on the hardware, through NVML; found there again at the next start */
                uint32_t id;

                if (start < 0) {
                        /* where the layout would put it (on a copy: NVML first) */
                        struct layout where = g->layout;
                        struct layout_gi got;

                        r = layout_gi_create(&where, p, start, 0, &got);
                        if (r < 0)
                                return r;
                        start = got.start;
                }
                r = migdev_gi_create_locked(m, g, p, (uint32_t)start, &id, err, len);
                if (r == 0)
                        *ret = *layout_find_gi(&g->layout, id);
                return r;
        }
        r = layout_gi_create(&g->layout, p, start, 0, &gi);
        if (r < 0)
                return r;
        row = (struct state_gi){.gpu = g->index, .id = gi.id, .profile = p->id, .start = gi.start};
        r = state_begin(m->db);
        if (r == 0)
                r = state_put_gi(m->db, &row);
        if (r == 0)
                r = state_commit(m->db);
        if (r < 0) {
                state_rollback(m->db);
                layout_gi_destroy(&g->layout, gi.id);
                return VGPU_ESTATE;
        }
        *ret = gi;
        return 0;
}

int manager_gi_destroy_locked(struct manager *m, struct mgr_gpu *g, uint32_t id, char *err,
                              size_t len)
{
        const struct layout_gi *gi = layout_find_gi(&g->layout, id);
        struct layout_gi saved;
        int r;

        err[0] = '\0';
        if (m->real_gpus && gi)
                return migdev_gi_destroy_locked(m, g, id, false, err, len);
        if (!gi)
                return VGPU_ENO_GI;
        saved = *gi;
        r = layout_gi_destroy(&g->layout, id);
        if (r < 0)
                return r;
        r = state_begin(m->db);
        if (r == 0)
                r = state_del_gi(m->db, g->index, id);
        if (r == 0)
                r = state_commit(m->db);
        if (r < 0) {
                state_rollback(m->db);
                layout_gi_create(&g->layout, saved.profile, saved.start, saved.id, NULL);
                return VGPU_ESTATE;
        }
        return 0;
}

/* ---- startup: GPUs, restore, reconcile ---------------------------------------------------- */

struct restore {
        struct manager *m;
        int err;
        size_t n_rows;
        struct state_vgpu *rows;
        /* rows of real GPUs' GPU instances that are gone (removed once read) */
        size_t n_stale;
        struct state_gi stale[64];
};

static int restore_gpu_row(void *ctx, const struct state_gpu *row)
{
        struct restore *rs = ctx;
        struct manager *m = rs->m;
        enum layout_mode mode;

        if (row->index >= m->n_gpus)
                return 0; /* a GPU no longer configured; checked against vGPUs below */
        struct mgr_gpu *g = &m->gpus[row->index];
        if (strcmp(row->model, g->model->id) != 0) {
                /* The configuration changed this GPU's model; only allowed while it is unused. */
                vgpu_log(VGPU_LOG_WARN, "GPU %u was %s in the state, now %s", row->index,
                         row->model, g->model->id);
                return 0;
        }
        /* A real GPU keeps the UUID its driver gives it; a simulated one the one it was given. */
        if (!m->real_gpus)
                snprintf(g->uuid, sizeof(g->uuid), "%s", row->uuid);
        if (layout_mode_parse(row->mode, &mode) == 0 && layout_set_mode(&g->layout, mode) < 0) {
                vgpu_log(VGPU_LOG_ERROR, "state: GPU %u: mode %s not possible for %s", row->index,
                         row->mode, g->model->id);
                rs->err = VGPU_EMODE;
                return 1;
        }
        return 0;
}

static int restore_gi_row(void *ctx, const struct state_gi *row)
{
        struct restore *rs = ctx;
        struct manager *m = rs->m;
        struct mgr_gpu *g;
        int r;

        if (row->gpu >= m->n_gpus) {
                vgpu_log(VGPU_LOG_ERROR,
                         "state: GPU instance %u is on GPU %u, which is not "
                         "configured",
                         row->id, row->gpu);
                rs->err = -ENODEV;
                return 1;
        }
        g = &m->gpus[row->gpu];
        if (m->real_gpus) {
                /* the hardware's GPU instances are in the layout: a row only says "implicit" */
                const struct layout_gi *have = layout_find_gi(&g->layout, row->id);

                if (have && have->profile->id == row->profile && have->start == row->start) {
                        if (row->implicit && m->mig_admin)
                                g->layout.gis[have - g->layout.gis].implicit = true;
                } else if (rs->n_stale < sizeof(rs->stale) / sizeof(rs->stale[0])) {
                        rs->stale[rs->n_stale++] = *row;
                }
                return 0;
        }
        r = layout_gi_create(&g->layout, catalog_find_profile(g->model, row->profile), row->start,
                             row->id, NULL);
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR, "state: GPU instance %u (profile %u at %u) on GPU %u: %s",
                         row->id, row->profile, row->start, row->gpu, vgpu_strerror(r));
                rs->err = r;
                return 1;
        }
        if (row->implicit) {
                for (size_t i = 0; i < g->layout.n_gis; i++) {
                        if (g->layout.gis[i].id == row->id)
                                g->layout.gis[i].implicit = true;
                }
        }
        return 0;
}

static int collect_vgpu_row(void *ctx, const struct state_vgpu *row)
{
        struct restore *rs = ctx;
        struct state_vgpu *nr = realloc(rs->rows, (rs->n_rows + 1) * sizeof(*nr));

        if (!nr) {
                rs->err = -ENOMEM;
                return 1;
        }
        rs->rows = nr;
        rs->rows[rs->n_rows++] = *row;
        return 0;
}

static enum mgr_vgpu_state parse_state(const char *s)
{
        for (unsigned i = 0; i < N_STATES; i++) {
                if (strcmp(s, state_names[i]) == 0)
                        return (enum mgr_vgpu_state)i;
        }
        return MGR_FAILED;
}

/*
 * A move the engine finished while vgpud was stopping, before vgpud wrote it down: the engine's
 * GPU and offset (its status) win. v's place there is found among the types it may take on
 * that GPU and the placements that start at that offset.
 */
static void follow_engine(struct manager *m, struct mgr_vgpu *v, json_t *st)
{
        json_int_t eg = json_integer_value(json_object_get(st, "gpu_index"));
        uint64_t eo = (uint64_t)json_integer_value(json_object_get(st, "fb_offset"));
        const struct gpu_model *from = m->gpus[v->gpu].model;
        struct mgr_gpu *g;
        const struct vgpu_type *t = NULL;

        if (eg == (json_int_t)v->gpu && eo == v->place.fb_offset)
                return;
        if (eg < 0 || (size_t)eg >= m->n_gpus) {
                vgpu_log(VGPU_LOG_ERROR, "vGPU %s: its engine says GPU %lld, which is not here",
                         v->uuid, (long long)eg);
                return;
        }
        g = &m->gpus[eg];
        for (uint64_t min = v->fb_bytes;; min = catalog_type_fb_bytes(t) + 1) {
                t = manager_target_type(from, v->type, g->model, min);
                if (!t)
                        break;
                for (int64_t p = 0; p < 256; p++) {
                        struct layout_req req = {.gi = 0, .placement = p};
                        struct layout_vgpu out;

                        if (layout_check(&g->layout, t, &req, &out) != 0 || out.fb_offset != eo)
                                continue;
                        layout_destroy(&m->gpus[v->gpu].layout, v->handle);
                        if (layout_create(&g->layout, t, &req, v->handle, &v->place) < 0)
                                break;
                        vgpu_log(VGPU_LOG_WARN,
                                 "vGPU %s: its engine moved to GPU %lld before vgpud stopped; "
                                 "vgpud follows (%s)",
                                 v->uuid, (long long)eg, t->name);
                        v->gpu = g->index;
                        v->type = t;
                        return;
                }
                if (from == g->model)
                        break;
        }
        vgpu_log(VGPU_LOG_ERROR,
                 "vGPU %s: its engine is on GPU %lld at offset %llu, where vgpud cannot place it",
                 v->uuid, (long long)eg, (unsigned long long)eo);
}

/* Put one saved vGPU back into its layout and the table, and bring its engine in line. */
static int restore_vgpu(struct manager *m, const struct state_vgpu *row)
{
        struct mgr_gpu *g;
        struct mgr_vgpu v = {0}, *slot;
        struct layout_req req;
        const struct layout_gi *gi;
        char control[256], err[256];
        json_t *st = NULL;
        int r;

        if (row->gpu >= m->n_gpus) {
                vgpu_log(VGPU_LOG_ERROR,
                         "state: vGPU %s is on GPU %u, which is not configured "
                         "(check --sim-gpus)",
                         row->uuid, row->gpu);
                return -ENODEV;
        }
        g = &m->gpus[row->gpu];
        v.type = catalog_type_by_id(g->model, row->type_id);
        if (!v.type) {
                vgpu_log(VGPU_LOG_ERROR, "state: vGPU %s has type %u, which %s does not have",
                         row->uuid, row->type_id, g->model->id);
                return VGPU_EUNKNOWN_TYPE;
        }
        req = (struct layout_req){.gi = row->gi, .placement = row->placement};
        if (m->real_gpus && row->gi && !layout_find_gi(&g->layout, row->gi)) {
                /* GPU instances do not outlive a reboot of the host, nor an operator's change */
                vgpu_log(VGPU_LOG_ERROR,
                         "vGPU %s was in GPU instance %u of GPU %u, which is gone; vgpud removes "
                         "it",
                         row->uuid, row->gi, row->gpu);
                snprintf(v.uuid, sizeof(v.uuid), "%s", row->uuid);
                stop_engine(m, v.uuid, find_engine(m, v.uuid));
                return unpersist_vgpu(m, &v, false);
        }
        r = layout_create(&g->layout, v.type, &req, row->handle, &v.place);
        if (r < 0 && m->real_gpus) {
                /* the hardware changed while vgpud was stopped (MIG mode turned on or off,
                 * which resets the GPU and ends its engines): the vGPU cannot be there now */
                vgpu_log(VGPU_LOG_ERROR,
                         "vGPU %s (%s) does not fit GPU %u as it is now (%s, %s mode); vgpud "
                         "removes it",
                         row->uuid, v.type->name, row->gpu, vgpu_strerror(r),
                         layout_mode_name(g->layout.mode));
                snprintf(v.uuid, sizeof(v.uuid), "%s", row->uuid);
                stop_engine(m, v.uuid, find_engine(m, v.uuid));
                return unpersist_vgpu(m, &v, false);
        }
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR, "state: vGPU %s (%s) cannot be placed back: %s", row->uuid,
                         v.type->name, vgpu_strerror(r));
                return r;
        }
        snprintf(v.uuid, sizeof(v.uuid), "%s", row->uuid);
        snprintf(v.created_at, sizeof(v.created_at), "%s", row->created_at);
        v.handle = row->handle;
        v.gpu = row->gpu;
        v.owner_uid = row->owner_uid;
        v.engine_pid = (pid_t)row->engine_pid;
        v.state = parse_state(row->state);
        v.device_address = row->device_address ? row->device_address
                                               : layout_device_address(g->index, v.place.fb_offset);
        v.fb_bytes = v.place.fb_size; /* a live engine says better, below */
        if (v.handle >= m->next_handle)
                m->next_handle = v.handle + 1;
        engine_path(m, v.uuid, "sock", control, sizeof(control));

        if (v.state == MGR_CREATING && find_engine(m, v.uuid)) {
                /* a vGPU moving here from another vgpud: its engine knows whether it came */
                r = engine_status(control, ENGINE_BUSY_MS, &st);
                if (r == 0 && json_is_true(json_object_get(st, "arrived"))) {
                        vgpu_log(VGPU_LOG_INFO, "vGPU %s moved here while vgpud was stopped",
                                 v.uuid);
                        v.state = MGR_RUNNING;
                }
                json_decref(st);
                st = NULL;
        }
        if (v.state == MGR_CREATING || v.state == MGR_DESTROYING) {
                /* Half-made or half-destroyed: never acknowledged as existing; take it away. */
                gi = v.place.gi ? layout_find_gi(&g->layout, v.place.gi) : NULL;
                bool implicit = gi && gi->implicit;

                vgpu_log(VGPU_LOG_WARN, "vGPU %s was %s when vgpud stopped; removing it", v.uuid,
                         row->state);
                /* Its engine may still be starting, without a socket: find it by its uuid. */
                v.engine_pid = find_engine(m, v.uuid);
                stop_engine(m, v.uuid, v.engine_pid);
                r = unpersist_vgpu(m, &v, implicit);
                layout_destroy(&g->layout, v.handle);
                if (implicit && g->mig_hw)
                        real_gi_unmake(m, g, v.place.gi, true);
                return r;
        }
        if (v.state == MGR_RUNNING || v.state == MGR_SUSPENDED) {
                r = engine_status(control, ENGINE_STATUS_MS, &st);
                if (r == -ETIMEDOUT && find_engine(m, v.uuid)) {
                        /* alive but busy: in the middle of a suspend or a move, which takes long */
                        vgpu_log(VGPU_LOG_INFO, "vGPU %s: its engine is busy; waiting for it",
                                 v.uuid);
                        r = engine_status(control, ENGINE_BUSY_MS, &st);
                }
                if (r == 0 &&
                    strcasecmp(json_string_value(json_object_get(st, "uuid")), v.uuid) == 0) {
                        const char *es = json_string_value(json_object_get(st, "state"));

                        if (es && strcmp(es, "moved") == 0) {
                                /* it moved to another vgpud while this one was stopped */
                                vgpu_log(VGPU_LOG_INFO,
                                         "vGPU %s moved to another vgpud while vgpud was "
                                         "stopped; removing it here",
                                         v.uuid);
                                json_decref(st);
                                stop_engine(m, v.uuid, find_engine(m, v.uuid));
                                r = unpersist_vgpu(m, &v, false);
                                layout_destroy(&g->layout, v.handle);
                                return r;
                        }
                        /* the engine knows best whether a suspend or resume went through */
                        v.state = es && strcmp(es, "suspended") == 0 ? MGR_SUSPENDED : MGR_RUNNING;
                        v.engine_pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
                        if (json_integer_value(json_object_get(st, "fb_size")) > 0)
                                v.fb_bytes = (uint64_t)json_integer_value(
                                        json_object_get(st, "fb_size"));
                        follow_engine(m, &v, st);
                        vgpu_log(VGPU_LOG_INFO, "vGPU %s: re-adopted engine %d", v.uuid,
                                 (int)v.engine_pid);
                } else if (v.state == MGR_SUSPENDED) {
                        char img[4096];

                        /* its image holds it, sessions and all: a resume restores it */
                        v.engine_pid = find_engine(m, v.uuid);
                        if (v.engine_pid)
                                stop_engine(m, v.uuid, v.engine_pid);
                        v.engine_pid = 0;
                        image_of(m, &v, img, sizeof(img));
                        if (access(img, R_OK) == 0) {
                                vgpu_log(VGPU_LOG_WARN,
                                         "vGPU %s: suspended, and its engine is gone: `vgpuctl "
                                         "resume %s` restores it from %s",
                                         v.uuid, v.uuid, img);
                        } else {
                                vgpu_log(VGPU_LOG_WARN,
                                         "vGPU %s: suspended, its engine is gone and %s is not "
                                         "there: faulted (vgpuctl restart %s)",
                                         v.uuid, img, v.uuid);
                                v.state = MGR_FAILED;
                        }
                } else {
                        /* An engine that does not answer is stopped before a new one starts. */
                        v.engine_pid = find_engine(m, v.uuid);
                        if (v.engine_pid)
                                stop_engine(m, v.uuid, v.engine_pid);
                        if (start_engine(m, &v, err, sizeof(err)) == 0)
                                vgpu_log(VGPU_LOG_WARN, "vGPU %s: engine was gone; restarted as %d",
                                         v.uuid, (int)v.engine_pid);
                        else
                                v.state = MGR_FAILED;
                }
                json_decref(st);
                if (persist_vgpu(m, &v, NULL) < 0)
                        vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v.uuid);
        }
        slot = vgpu_append(m);
        if (!slot)
                return -ENOMEM;
        *slot = v;
        if (slot->state == MGR_RUNNING || slot->state == MGR_SUSPENDED)
                sched_attach(m, slot);
        return 0;
}

struct engine_match {
        const char *uuid;
        pid_t pid;
};

static void match_engine(void *ctx, pid_t pid, const char *uuid, const char *control)
{
        struct engine_match *em = ctx;

        (void)control;
        if (strcasecmp(uuid, em->uuid) == 0)
                em->pid = pid;
}

/* The live engine of vGPU uuid started by this state directory, or 0. */
static pid_t find_engine(struct manager *m, const char *uuid)
{
        char dir[4096];
        struct engine_match em = {.uuid = uuid};

        snprintf(dir, sizeof(dir), "%s/engines", m->state_dir);
        engine_find(dir, match_engine, &em);
        return em.pid;
}

static void stop_stray(void *ctx, pid_t pid, const char *uuid, const char *control)
{
        struct manager *m = ctx;

        (void)control;
        if (manager_vgpu_locked(m, uuid))
                return;
        vgpu_log(VGPU_LOG_WARN, "stopping stray engine %d of unknown vGPU %s", (int)pid, uuid);
        stop_engine(m, uuid, pid);
}

/*
 * Engines whose vGPU is not in the state (left by a crash mid-create) are stopped, and sockets and
 * logs nobody owns are removed.
 */
static void stop_strays(struct manager *m)
{
        char dir[4096];
        struct dirent *de;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/engines", m->state_dir);
        engine_find(dir, stop_stray, m);
        d = opendir(dir);
        if (!d)
                return;
        while ((de = readdir(d))) {
                char uuid[40], path[4096 + 2 + sizeof(de->d_name)];

                if (strlen(de->d_name) < 37 || de->d_name[36] != '.')
                        continue;
                snprintf(uuid, sizeof(uuid), "%.36s", de->d_name);
                if (manager_vgpu_locked(m, uuid))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                unlink(path);
        }
        closedir(d);
}

static int setup_gpus(struct manager *m, const struct manager_config *cfg,
                      const struct vgpu_nvml_gpu *nvml_found, size_t n_found)
{
        struct restore rs = {.m = m};
        int r;

        m->real_gpus = cfg->gpu_uuids != NULL;
        m->gpus = calloc(cfg->n_sim_gpus, sizeof(*m->gpus));
        if (!m->gpus)
                return -ENOMEM;
        m->n_gpus = cfg->n_sim_gpus;
        for (size_t i = 0; i < cfg->n_sim_gpus; i++) {
                struct mgr_gpu *g = &m->gpus[i];
                char u[37];

                g->index = (uint32_t)i;
                g->nvml_index = -1;
                g->model = catalog_find_model(cfg->sim_gpus[i]);
                if (!g->model) {
                        vgpu_log(VGPU_LOG_ERROR,
                                 "unknown GPU model '%s' (`vgpuctl models` "
                                 "lists them)",
                                 cfg->sim_gpus[i]);
                        return VGPU_EUNKNOWN_MODEL;
                }
                random_uuid(u);
                snprintf(g->uuid, sizeof(g->uuid), "GPU-%s", u);
                snprintf(g->pci_bus_id, sizeof(g->pci_bus_id), "00000000:%02X:00.0",
                         (unsigned)(0x17 + i));
                if (cfg->gpu_uuids && cfg->gpu_uuids[i] && cfg->gpu_uuids[i][0])
                        snprintf(g->uuid, sizeof(g->uuid), "%s", cfg->gpu_uuids[i]);
                if (cfg->gpu_bus_ids && cfg->gpu_bus_ids[i] && cfg->gpu_bus_ids[i][0])
                        snprintf(g->pci_bus_id, sizeof(g->pci_bus_id), "%s", cfg->gpu_bus_ids[i]);
                layout_init(&g->layout, g->model);
        }
        r = state_each_gpu(m->db, restore_gpu_row, &rs);
        if (r < 0 || rs.err)
                return rs.err ? rs.err : r;
        if (m->real_gpus) {
                r = migdev_discover(m, nvml_found, n_found);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < m->n_gpus; i++) {
                r = persist_gpu(m, &m->gpus[i]);
                if (r < 0)
                        return r;
        }
        r = state_each_gi(m->db, restore_gi_row, &rs);
        if (r < 0 || rs.err)
                return rs.err ? rs.err : r;
        for (size_t i = 0; i < rs.n_stale; i++) {
                vgpu_log(VGPU_LOG_WARN, "GPU %u: GPU instance %u that vgpud made is gone",
                         rs.stale[i].gpu, rs.stale[i].id);
                if (state_begin(m->db) < 0 ||
                    state_del_gi(m->db, rs.stale[i].gpu, rs.stale[i].id) < 0 ||
                    state_commit(m->db) < 0)
                        state_rollback(m->db);
        }
        r = state_each_vgpu(m->db, collect_vgpu_row, &rs);
        for (size_t i = 0; r == 0 && !rs.err && i < rs.n_rows; i++)
                r = restore_vgpu(m, &rs.rows[i]);
        free(rs.rows);
        if (r < 0 || rs.err)
                return rs.err ? rs.err : r;
        stop_strays(m);
        return 0;
}

/* The watcher: an engine that died is an Xid-like event; restart it, a few times at most. */
static void *monitor_main(void *arg)
{
        struct manager *m = arg;

        for (;;) {
                manager_lock(m);
                if (m->stop) {
                        manager_unlock(m);
                        return NULL;
                }
                for (size_t i = 0; i < m->n_vgpus; i++) {
                        struct mgr_vgpu *v = &m->vgpus[i];

                        if ((v->state != MGR_RUNNING && v->state != MGR_SUSPENDED) ||
                            (v->state == MGR_SUSPENDED && !v->engine_pid) ||
                            engine_alive(v->engine_pid))
                                continue;
                        engine_reap(v->engine_pid);
                        if (v->state == MGR_SUSPENDED) {
                                /* its image holds it, sessions and all: a resume restores it */
                                vgpu_log(VGPU_LOG_WARN,
                                         "vGPU %s: engine %d exited while suspended; `vgpuctl "
                                         "resume %s` brings it back from its image",
                                         v->uuid, (int)v->engine_pid, v->uuid);
                                v->engine_pid = 0;
                                v->xid_errors++;
                                continue;
                        }
                        /* As a GPU fault: the vGPU is marked faulted and reported; an operator
                         * (or a vgpud restart) brings it back with `vgpuctl restart`. */
                        vgpu_log(VGPU_LOG_ERROR,
                                 "Xid: vGPU %s: engine %d exited; the vGPU is faulted and its "
                                 "framebuffer contents are lost (vgpuctl restart %s)",
                                 v->uuid, (int)v->engine_pid, v->uuid);
                        v->state = MGR_FAILED;
                        v->engine_pid = 0;
                        v->xid_errors++;
                        sched_detach(m, v);
                        persist_vgpu(m, v, NULL);
                }
                manager_unlock(m);
                usleep(200 * 1000);
        }
}

static int sched_persist(struct manager *m, uint32_t gpu, enum sched_policy p, uint32_t slice_ms)
{
        char key[32], value[48];
        int r;

        snprintf(key, sizeof(key), "sched.gpu.%u", gpu);
        snprintf(value, sizeof(value), "%s %u", sched_policy_name(p), slice_ms);
        r = state_begin(m->db);
        if (r == 0)
                r = state_put_meta(m->db, key, value);
        if (r == 0)
                r = state_commit(m->db);
        if (r < 0) {
                state_rollback(m->db);
                return VGPU_ESTATE;
        }
        return 0;
}

int manager_sched_set_locked(struct manager *m, struct mgr_gpu *g, enum sched_policy p,
                             uint32_t slice_ms)
{
        enum sched_policy old_p;
        uint32_t old_ms, ms = 0;
        uint64_t clock, idle;
        bool mixed = g->layout.mode == LAYOUT_HETEROGENEOUS;
        int r;

        if (slice_ms && sched_slice_ms_check(slice_ms, &ms) < 0)
                return -EINVAL;
        if (p == SCHED_FIXED_SHARE && mixed)
                return VGPU_ESCHED_MIX;
        scheduler_get(m->sched, g->index, &old_p, &old_ms, &clock, &idle);
        r = scheduler_set(m->sched, g->index, p, ms, mixed);
        if (r == 0)
                r = sched_persist(m, g->index, p, ms);
        if (r < 0)
                scheduler_set(m->sched, g->index, old_p, old_ms, mixed);
        return r;
}

/* Each GPU's policy as it was, or as vgpud's RmPVMRL value says (which is then stored). */
static int sched_restore(struct manager *m, int64_t rmpvmrl)
{
        for (size_t i = 0; i < m->n_gpus; i++) {
                struct mgr_gpu *g = &m->gpus[i];
                enum sched_policy p = SCHED_BEST_EFFORT;
                char key[32], value[48], name[32] = "";
                unsigned ms = 0;
                uint32_t ums = 0;
                int r;

                if (rmpvmrl >= 0) {
                        if (sched_rmpvmrl_decode((uint32_t)rmpvmrl, &p, &ums) < 0)
                                return -EINVAL;
                        r = manager_sched_set_locked(m, g, p, ums);
                        if (r < 0) {
                                vgpu_log(VGPU_LOG_ERROR, "GPU %zu: RmPVMRL 0x%" PRIx64 ": %s", i,
                                         rmpvmrl,
                                         r == -EINVAL ? "fixed share needs equal-size vGPUs"
                                                      : "cannot store it");
                                return r;
                        }
                        continue;
                }
                snprintf(key, sizeof(key), "sched.gpu.%zu", i);
                if (state_get_meta(m->db, key, value, sizeof(value)) < 0)
                        continue;
                if (sscanf(value, "%31s %u", name, &ms) != 2 || sched_policy_parse(name, &p) < 0 ||
                    scheduler_set(m->sched, g->index, p, ms,
                                  g->layout.mode == LAYOUT_HETEROGENEOUS) < 0)
                        vgpu_log(VGPU_LOG_WARN,
                                 "GPU %zu: stored scheduler '%s' not usable; "
                                 "best effort",
                                 i, value);
        }
        return 0;
}

/* NVML's Xid events, counted per GPU (DCGM_FI_DEV_XID_ERRORS) and logged. */
static void *xid_main(void *arg)
{
        struct manager *m = arg;

        for (;;) {
                unsigned idx = 0;
                unsigned long long xid = 0;
                int r = vgpu_nvml_xid_poll(200, &idx, &xid);

                manager_lock(m);
                if (m->stop) {
                        manager_unlock(m);
                        return NULL;
                }
                for (size_t i = 0; r == 1 && i < m->n_gpus; i++) {
                        struct mgr_gpu *g = &m->gpus[i];

                        if (g->nvml_index != (int)idx)
                                continue;
                        g->xid_errors++;
                        g->last_xid = xid;
                        vgpu_log(VGPU_LOG_ERROR, "Xid %llu on GPU %u (%s)", xid, g->index, g->uuid);
                }
                manager_unlock(m);
                if (r < 0)
                        usleep(200 * 1000);
        }
}

#define VGPU_MAX_NVML_GPUS 64

/* Watch the GPUs matched to NVML's (migdev_discover) for Xid events. */
static void nvml_setup(struct manager *m)
{
        bool watching = false;

        for (size_t i = 0; i < m->n_gpus; i++) {
                if (m->gpus[i].nvml_index >= 0 &&
                    vgpu_nvml_xid_watch((unsigned)m->gpus[i].nvml_index) == 0)
                        watching = true;
        }
        if (watching && pthread_create(&m->xid_thread, NULL, xid_main, m) == 0)
                m->xid_started = true;
}

int manager_new(const struct manager_config *cfg, struct manager **ret)
{
        static struct vgpu_nvml_gpu found[VGPU_MAX_NVML_GPUS];
        size_t n_found = 0;
        char path[4096];
        struct manager *m;
        int r;

        if (cfg->n_sim_gpus == 0)
                return -EINVAL;
        /* Control sockets live in DIR/engines; a Unix socket path has 108 bytes at most. */
        if (strlen(cfg->state_dir) + sizeof("/engines/") + 36 + sizeof(".sock") >
            sizeof(((struct sockaddr_un *)0)->sun_path)) {
                vgpu_log(VGPU_LOG_ERROR, "state directory path too long for engine sockets: %s",
                         cfg->state_dir);
                return -ENAMETOOLONG;
        }
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        pthread_mutex_init(&m->lock, NULL);
        m->next_handle = 1;
        m->state_dir = strdup(cfg->state_dir);
        m->backend = strdup(cfg->backend);
        m->engine_path = strdup(cfg->engine_path);
        if (!m->state_dir || !m->backend || !m->engine_path) {
                r = -ENOMEM;
                goto err;
        }
        snprintf(path, sizeof(path), "%s/engines", cfg->state_dir);
        /* Guests of any uid reach their engines' sockets in DIR/engines (the engine admits
         * only the vGPU's owner), so both directories are searchable by all. */
        if ((mkdir(cfg->state_dir, 0755) < 0 && errno != EEXIST) ||
            (mkdir(path, 0755) < 0 && errno != EEXIST)) {
                r = -errno;
                vgpu_log(VGPU_LOG_ERROR, "%s: %s", path, strerror(errno));
                goto err;
        }
        /* Engines are found again by the control paths on their command lines: use one form. */
        char *real = realpath(cfg->state_dir, NULL);
        if (!real) {
                r = -errno;
                goto err;
        }
        free(m->state_dir);
        m->state_dir = real;
        if (strlen(real) + sizeof("/engines/") + 36 + sizeof(".sock") >
            sizeof(((struct sockaddr_un *)0)->sun_path)) {
                vgpu_log(VGPU_LOG_ERROR, "state directory path too long for engine sockets: %s",
                         real);
                r = -ENAMETOOLONG;
                goto err;
        }
        r = state_open(m->state_dir, &m->db);
        if (r < 0)
                goto err;
        m->no_engines = cfg->no_engines;
        m->mig_admin = cfg->mig_admin;
        r = scheduler_new(cfg->n_sim_gpus, &m->sched);
        if (r < 0)
                goto err;
        if (strcmp(cfg->backend, "cuda") == 0) {
                /* NVML first: the GPUs' MIG instances are part of their layouts */
                char why[256] = "";

                m->nvml = vgpu_nvml_open(why, sizeof(why)) == 0;
                if (!m->nvml)
                        vgpu_log(VGPU_LOG_WARN, "no GPU telemetry in /metrics, no MIG: %s", why);
                else if (vgpu_nvml_gpus(found, sizeof(found) / sizeof(found[0]), &n_found) < 0)
                        vgpu_log(VGPU_LOG_WARN, "NVML does not list the GPUs: %s",
                                 vgpu_nvml_strerror());
        }
        r = setup_gpus(m, cfg, found, n_found);
        if (r < 0)
                goto err;
        r = sched_restore(m, cfg->rmpvmrl);
        if (r < 0)
                goto err;
        if (m->nvml)
                nvml_setup(m);
        if (m->no_engines) {
                *ret = m;
                return 0;
        }
        r = pthread_create(&m->monitor, NULL, monitor_main, m);
        if (r) {
                r = -r;
                goto err;
        }
        m->monitor_started = true;
        *ret = m;
        return 0;
err:
        manager_free(m);
        return r;
}

void manager_free(struct manager *m)
{
        if (!m)
                return;
        if (m->monitor_started) {
                manager_lock(m);
                m->stop = true;
                manager_unlock(m);
                pthread_join(m->monitor, NULL);
        }
        if (m->xid_started) {
                manager_lock(m);
                m->stop = true;
                manager_unlock(m);
                pthread_join(m->xid_thread, NULL);
        }
        scheduler_free(m->sched);
        if (m->nvml)
                vgpu_nvml_close();
        state_close(m->db);
        pthread_mutex_destroy(&m->lock);
        free(m->gpus);
        free(m->vgpus);
        free(m->state_dir);
        free(m->backend);
        free(m->engine_path);
        free(m);
}

/* ---- suspend, resume, migration between GPUs (docs/migration.md) -------------------------- */

#define ENGINE_SUSPEND_MS 600000 /* writing or reading an image of many GiB takes a while */

void manager_image_path(const struct manager *m, const struct mgr_vgpu *v, char *buf, size_t len)
{
        snprintf(buf, len, "%s/images/%s.img", m->state_dir, v->uuid);
}

/*
 * Ask *vp's engine to do req, with the manager's lock let go meanwhile and the vGPU marked busy
 * (an image of many GiB takes seconds). *vp is looked up again afterwards: the table may have
 * grown. An engine that died meanwhile (the watcher marked the vGPU faulted) is VGPU_EENGINE.
 */
static int engine_op(struct manager *m, struct mgr_vgpu **vp, json_t *req, json_t **ret, char *err,
                     size_t len)
{
        struct mgr_vgpu *v = *vp;
        char control[256], uuid[40];
        int r;

        engine_path(m, v->uuid, "sock", control, sizeof(control));
        snprintf(uuid, sizeof(uuid), "%s", v->uuid);
        v->busy = true;
        manager_unlock(m);
        r = engine_request(control, req, ENGINE_SUSPEND_MS, ret, err, len);
        manager_lock(m);
        json_decref(req);
        *vp = v = manager_vgpu_locked(m, uuid); /* a busy vGPU is never destroyed */
        v->busy = false;
        if (r == 0 && v->state == MGR_FAILED) {
                json_decref(*ret);
                snprintf(err, len, "its engine died");
                r = -EIO;
        }
        return r < 0 ? VGPU_EENGINE : 0;
}

int manager_suspend_locked(struct manager *m, struct mgr_vgpu *v, const char *path, json_t **ret,
                           char *err, size_t len)
{
        char def[4096], dir[4096];
        int r;

        err[0] = '\0';
        if (v->busy)
                return VGPU_EBUSY;
        if (v->state == MGR_SUSPENDED)
                return VGPU_ESUSPENDED;
        if (v->state != MGR_RUNNING || m->no_engines)
                return VGPU_ENOT_RUNNING;
        if (!path) {
                snprintf(dir, sizeof(dir), "%s/images", m->state_dir);
                if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                        snprintf(err, len, "%s: %s", dir, strerror(errno));
                        return -errno;
                }
                manager_image_path(m, v, def, sizeof(def));
                unlink(def); /* an old image of this vGPU: the new one replaces it */
                path = def;
        }
        r = engine_op(m, &v, json_pack("{s:s, s:s}", "op", "suspend", "path", path), ret, err, len);
        if (r < 0)
                return r;
        v->state = MGR_SUSPENDED;
        if (persist_vgpu(m, v, NULL) < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v->uuid);
        image_note(m, v, path);
        json_object_set_new(*ret, "image", json_string(path));
        vgpu_log(VGPU_LOG_INFO, "vGPU %s suspended to %s", v->uuid, path);
        return 0;
}

/*
 * Place v on GPU g for a move: its handle and device address stay; the layout decides the
 * offset. 0 and *ret, or the layout's code.
 */
static int place_on(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g,
                    const struct vgpu_type **ret_type, struct layout_vgpu *ret)
{
        const struct gpu_model *from = m->gpus[v->gpu].model;
        const struct vgpu_type *t = NULL;
        int r = VGPU_ETYPE_MODEL;

        /* the smallest type that fits and the layout takes: one that fits, then a bigger one */
        for (uint64_t min = v->fb_bytes;; min = catalog_type_fb_bytes(t) + 1) {
                t = manager_target_type(from, v->type, g->model, min);
                if (!t)
                        return r;
                r = layout_create(&g->layout, t, &LAYOUT_REQ_ANY, v->handle, ret);
                if (r == 0) {
                        *ret_type = t;
                        return 0;
                }
                if (from == g->model)
                        return r;
        }
}

const struct vgpu_type *manager_target_type(const struct gpu_model *from, const struct vgpu_type *t,
                                            const struct gpu_model *to, uint64_t min_bytes)
{
        const struct vgpu_type *best = NULL;

        if (from == to)
                return catalog_type_fb_bytes(t) >= min_bytes ? t : NULL;
        /* the guests' code (PTX, or binaries for the source) runs on an equal or newer GPU */
        if (t->cls != CATALOG_TIME_SLICED ||
            to->cc_major * 10 + to->cc_minor < from->cc_major * 10 + from->cc_minor)
                return NULL;
        for (size_t i = 0; i < to->n_types; i++) {
                const struct vgpu_type *c = &to->types[i];

                if (c->cls == t->cls && c->media_ext == t->media_ext &&
                    catalog_type_fb_bytes(c) >= min_bytes && (!best || c->fb_gib < best->fb_gib))
                        best = c;
        }
        return best;
}

/* v now lives at place p of GPU g: the old place goes, the scheduler follows, the row too. */
static void moved(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g,
                  const struct vgpu_type *t, const struct layout_vgpu *p)
{
        sched_detach(m, v);
        layout_destroy(&m->gpus[v->gpu].layout, v->handle);
        if (t != v->type)
                vgpu_log(VGPU_LOG_INFO, "vGPU %s: %s on %s becomes %s on %s", v->uuid,
                         v->type->name, m->gpus[v->gpu].model->id, t->name, g->model->id);
        v->gpu = g->index;
        v->type = t;
        v->place = *p;
        sched_attach(m, v);
}

static json_t *place_req(const char *op, const struct mgr_gpu *g, const struct layout_vgpu *p)
{
        return json_pack("{s:s, s:i, s:I}", "op", op, "gpu_index", (int)g->index, "fb_offset",
                         (json_int_t)p->fb_offset);
}

/*
 * A suspended vGPU whose engine is gone: a fresh engine (on g, when given) restores it from its
 * image, the guests' sessions too; the guests that are still there re-attach (docs/migration.md).
 * On failure it stays suspended, without an engine.
 */
static int resume_fresh(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g, json_t **ret,
                        char *err, size_t len)
{
        const struct vgpu_type *nt;
        struct layout_vgpu np;
        char img[4096];
        int r;

        image_of(m, v, img, sizeof(img));
        if (access(img, R_OK) < 0) {
                snprintf(err, len, "its engine is gone and its image %s is not there", img);
                return VGPU_EENGINE;
        }
        if (g) {
                r = place_on(m, v, g, &nt, &np);
                if (r < 0)
                        return r;
                moved(m, v, g, nt, &np);
                sched_detach(m, v);
        }
        r = start_engine(m, v, err, len);
        if (r < 0)
                return r;
        r = engine_op(m, &v, json_pack("{s:s, s:s}", "op", "restore", "path", img), ret, err, len);
        if (r < 0) {
                stop_engine(m, v->uuid, v->engine_pid);
                v->engine_pid = 0;
                return r;
        }
        v->state = MGR_RUNNING;
        sched_attach(m, v);
        if (persist_vgpu(m, v, NULL) < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v->uuid);
        image_forget(m, v);
        manager_image_path(m, v, img, sizeof(img));
        unlink(img); /* the default image is spent; one the user named stays theirs */
        vgpu_log(VGPU_LOG_INFO, "vGPU %s restored from %s by a fresh engine on GPU %u", v->uuid,
                 img, v->gpu);
        return 0;
}

int manager_resume_locked(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g, json_t **ret,
                          char *err, size_t len)
{
        struct layout_vgpu np;
        const struct vgpu_type *nt = v->type;
        char img[4096];
        bool move = g && g->index != v->gpu;
        int r;

        err[0] = '\0';
        if (v->busy)
                return VGPU_EBUSY;
        if (v->state != MGR_SUSPENDED)
                return VGPU_ENOT_SUSPENDED;
        if (!m->no_engines && !engine_alive(v->engine_pid))
                return resume_fresh(m, v, move ? g : NULL, ret, err, len);
        if (!move) {
                g = &m->gpus[v->gpu];
                np = v->place;
        } else {
                r = place_on(m, v, g, &nt, &np);
                if (r < 0)
                        return r;
        }
        r = engine_op(m, &v, place_req("resume", g, &np), ret, err, len);
        if (r < 0) {
                if (move)
                        layout_destroy(&g->layout, v->handle);
                return r;
        }
        if (move)
                moved(m, v, g, nt, &np);
        v->state = MGR_RUNNING;
        if (persist_vgpu(m, v, NULL) < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v->uuid);
        manager_image_path(m, v, img, sizeof(img));
        unlink(img); /* the default image is spent; one the user named stays theirs */
        image_forget(m, v);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s resumed on GPU %u", v->uuid, v->gpu);
        return 0;
}

/* ---- migration between vgpuds (migrate_peer.c) ------------------------------------------- */

int manager_incoming_locked(struct manager *m, const struct mgr_incoming *in, struct mgr_vgpu **ret,
                            char *err, size_t len)
{
        struct mgr_vgpu v = {0}, *slot = NULL;
        int r = VGPU_ETYPE_MODEL;

        err[0] = '\0';
        if (!uuid_valid(in->uuid))
                return -EINVAL;
        if (manager_vgpu_locked(m, in->uuid))
                return VGPU_EEXIST;
        if (m->no_engines)
                return VGPU_ENOT_RUNNING;
        /* an address this vgpud could have given: in the GPUs' windows, 2 MiB aligned */
        if (in->fb_bytes == 0 || in->device_address % (UINT64_C(2) << 20) ||
            in->device_address < LAYOUT_VA_BASE ||
            in->device_address + in->fb_bytes < in->device_address ||
            in->device_address + in->fb_bytes >
                    layout_device_address((VA_ALIASES + 1) * VA_WINDOWS_PER_ALIAS, 0)) {
                snprintf(err, len,
                         "its device addresses 0x%" PRIx64 "..+%" PRIu64 " are not a vGPU's",
                         in->device_address, in->fb_bytes);
                return -EINVAL;
        }
        /*
         * Another vGPU here may have the same addresses (each vgpud gives them from its GPUs'
         * windows): that is allowed, their engines keep them apart; one process just cannot use
         * both (the guest driver refuses the second, docs/migration.md).
         */
        if (address_taken(m, in->device_address, in->fb_bytes))
                vgpu_log(VGPU_LOG_WARN,
                         "incoming vGPU %s shares device addresses with a vGPU here: a process "
                         "can use only one of them",
                         in->uuid);
        snprintf(v.uuid, sizeof(v.uuid), "%s", in->uuid);
        for (char *p = v.uuid; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        v.handle = m->next_handle;
        /* the first GPU with a type that holds its framebuffer, and room for it */
        for (size_t i = 0; i < m->n_gpus && !v.type; i++) {
                struct mgr_gpu *g = &m->gpus[i];
                const struct vgpu_type *t = NULL;

                for (uint64_t min = in->fb_bytes;; min = catalog_type_fb_bytes(t) + 1) {
                        t = manager_target_type(in->from, in->type, g->model, min);
                        if (!t)
                                break;
                        r = layout_create(&g->layout, t, &LAYOUT_REQ_ANY, v.handle, &v.place);
                        if (r == 0) {
                                v.type = t;
                                v.gpu = g->index;
                                break;
                        }
                        if (in->from == g->model)
                                break;
                }
        }
        if (!v.type) {
                snprintf(err, len,
                         "no GPU here has room for a time-sliced type with at least %" PRIu64
                         " MiB and compute capability %u.%u or newer",
                         in->fb_bytes >> 20, in->from->cc_major, in->from->cc_minor);
                return r < 0 ? r : VGPU_ETYPE_MODEL;
        }
        v.owner_uid = in->owner_uid;
        v.device_address = in->device_address;
        v.fb_bytes = in->fb_bytes;
        v.state = MGR_CREATING; /* a crash before the commit: the next start removes it */
        v.busy = true;
        utc_now(v.created_at, sizeof(v.created_at));
        r = persist_vgpu(m, &v, NULL);
        if (r == 0)
                r = start_engine(m, &v, err, len);
        if (r == 0 && !(slot = vgpu_append(m)))
                r = -ENOMEM;
        if (r < 0) {
                if (v.engine_pid)
                        stop_engine(m, v.uuid, v.engine_pid);
                unpersist_vgpu(m, &v, false);
                layout_destroy(&m->gpus[v.gpu].layout, v.handle);
                return r;
        }
        *slot = v;
        m->next_handle++;
        *ret = slot;
        vgpu_log(VGPU_LOG_INFO, "incoming vGPU %s (%s) on GPU %u at 0x%" PRIx64, v.uuid,
                 v.type->name, v.gpu, v.device_address);
        return 0;
}

void manager_incoming_end_locked(struct manager *m, struct mgr_vgpu *v, bool commit)
{
        v->busy = false;
        if (commit) {
                v->state = MGR_RUNNING;
                if (persist_vgpu(m, v, NULL) < 0)
                        vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v->uuid);
                sched_attach(m, v);
                vgpu_log(VGPU_LOG_INFO, "vGPU %s moved here from another vgpud", v->uuid);
                return;
        }
        stop_engine(m, v->uuid, v->engine_pid);
        unpersist_vgpu(m, v, false);
        layout_destroy(&m->gpus[v->gpu].layout, v->handle);
        vgpu_log(VGPU_LOG_INFO, "incoming vGPU %s dropped", v->uuid);
        vgpu_remove(m, v);
}

int manager_moved_away_locked(struct manager *m, struct mgr_vgpu *v)
{
        vgpu_log(VGPU_LOG_INFO, "vGPU %s moved to another vgpud", v->uuid);
        v->busy = false;
        return manager_destroy_locked(m, v, true);
}

int manager_migrate_gpu_locked(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g,
                               bool precopy, json_t **ret, char *err, size_t len)
{
        struct layout_vgpu np;
        const struct vgpu_type *nt = NULL;
        json_t *req;
        int r;

        err[0] = '\0';
        if (v->busy)
                return VGPU_EBUSY;
        if (v->state == MGR_SUSPENDED)
                return manager_resume_locked(m, v, g, ret, err, len);
        if (v->state != MGR_RUNNING || m->no_engines)
                return VGPU_ENOT_RUNNING;
        if (g->index == v->gpu)
                return VGPU_ESAME_GPU;
        r = place_on(m, v, g, &nt, &np);
        if (r < 0)
                return r;
        req = place_req("move", g, &np);
        json_object_set_new(req, "precopy", json_boolean(precopy));
        r = engine_op(m, &v, req, ret, err, len);
        if (r < 0) {
                layout_destroy(&g->layout, v->handle);
                return r;
        }
        moved(m, v, g, nt, &np);
        if (persist_vgpu(m, v, NULL) < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v->uuid);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s migrated to GPU %u", v->uuid, v->gpu);
        return 0;
}
