// SPDX-License-Identifier: Apache-2.0
// The manager: placement, durable state and engine processes kept in agreement. This file holds
// the vGPU table, creation, destruction and restart, GPU modes and GPU instances, and the helpers
// the others share (manager_int.h): state rows, engines, the scheduler. The GPUs and the state at
// startup are in manager_restore.c, saved vGPUs and the watchers in manager_start.c, suspend,
// resume and migration in manager_move.c.
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/engine_proc.h"
#include "manager/manager.h"
#include "manager/manager_int.h"
#include "manager/migdev.h"
#include "manager/state.h"
#include "vgpu/errors.h"

#define ENGINE_START_MS 10000
#define ENGINE_STOP_MS  5000

static const char *const state_names[] = {"creating", "running", "destroying", "faulted",
                                          "suspended"};
#define N_STATES (sizeof(state_names) / sizeof(state_names[0]))

const char *manager_state_name(enum mgr_vgpu_state s)
{
        return (unsigned)s < N_STATES ? state_names[s] : "unknown";
}

enum mgr_vgpu_state manager_state_parse(const char *s)
{
        for (unsigned i = 0; i < N_STATES; i++) {
                if (strcmp(s, state_names[i]) == 0)
                        return (enum mgr_vgpu_state)i;
        }
        return MGR_FAILED;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void manager_random_uuid(char out[37])
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

bool manager_uuid_valid(const char *s)
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

void manager_utc_now(char *buf, size_t len)
{
        time_t t = time(NULL);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void manager_engine_path(const struct manager *m, const char *uuid, const char *ext, char *buf,
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
int manager_persist_vgpu(struct manager *m, const struct mgr_vgpu *v, const struct layout_gi *gi)
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
int manager_unpersist_vgpu(struct manager *m, const struct mgr_vgpu *v, bool implicit_gi)
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

void manager_sched_attach(struct manager *m, const struct mgr_vgpu *v)
{
        const struct mgr_gpu *g = &m->gpus[v->gpu];
        const struct layout_gi *gi = v->place.gi ? layout_find_gi(&g->layout, v->place.gi) : NULL;
        uint32_t slots = gi ? catalog_max_in_gi(g->model, gi->profile, v->type)
                            : catalog_max_equal(g->model, v->type);
        char path[256];
        int r;

        if (!m->sched || !gated(m, v) || m->no_engines)
                return;
        manager_engine_path(m, v->uuid, "sched", path, sizeof(path));
        r = scheduler_attach(m->sched, v->gpu, v->place.gi, v->handle, path, slots ? slots : 1,
                             strcmp(m->backend, "cuda") == 0);
        if (r < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: not scheduled (%s): it runs ungated", v->uuid,
                         strerror(-r));
}

void manager_sched_detach(struct manager *m, const struct mgr_vgpu *v)
{
        if (m->sched)
                scheduler_detach(m->sched, v->gpu, v->handle);
}

int manager_start_engine(struct manager *m, struct mgr_vgpu *v, char *err, size_t len)
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
                /*
                 * A real GPU's engine opens its device by UUID (a MIG device for MIG), and sees
                 * only it: drivers before R570 show CUDA no whole GPU beside a GPU in MIG mode.
                 */
                const struct mgr_gpu *g = &m->gpus[v->gpu];

                spec.gpu_uuid = g->uuid;
                spec.cuda_visible = spec.gpu_uuid;
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
        manager_engine_path(m, v->uuid, "sock", control, sizeof(control));
        manager_engine_path(m, v->uuid, "log", log, sizeof(log));
        manager_engine_path(m, v->uuid, "guest", guest, sizeof(guest));
        manager_engine_path(m, v->uuid, "sched", sched, sizeof(sched));
        manager_sched_detach(m, v);
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

/* Remove an engine's socket, log, guest socket and scheduler page. */
static void remove_engine_files(struct manager *m, const char *uuid)
{
        static const char *const kinds[] = {"sock", "log", "guest", "sched"};
        char path[256];

        if (m->no_engines)
                return;
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
                manager_engine_path(m, uuid, kinds[i], path, sizeof(path));
                unlink(path);
        }
}

/* Stop an engine and remove its socket and log: nothing of a destroyed vGPU stays behind. */
void manager_stop_engine(struct manager *m, const char *uuid, pid_t pid)
{
        char path[256];

        if (m->no_engines)
                return;
        manager_engine_path(m, uuid, "sock", path, sizeof(path));
        engine_stop(path, pid, ENGINE_STOP_MS);
        remove_engine_files(m, uuid);
}

struct mgr_vgpu *manager_vgpu_append(struct manager *m)
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

void manager_vgpu_remove(struct manager *m, struct mgr_vgpu *v)
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

bool manager_address_taken(const struct manager *m, uint64_t a, uint64_t size)
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

                if (!manager_address_taken(m, a, size))
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
void manager_real_gi_unmake(struct manager *m, struct mgr_gpu *g, uint32_t gi, bool layout_done)
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
                if (!manager_uuid_valid(c->uuid))
                        return -EINVAL;
                if (manager_vgpu_locked(m, c->uuid))
                        return VGPU_EEXIST;
                snprintf(v.uuid, sizeof(v.uuid), "%s", c->uuid);
                for (char *p = v.uuid; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
        } else {
                manager_random_uuid(v.uuid);
        }
        v.handle = m->next_handle;
        if (g->mig_hw && c->type->cls == CATALOG_MIG && req.gi == 0) {
                r = real_gi_for(m, g, c->type, &req, &made_gi, err, len);
                if (r < 0)
                        return r;
        }
        r = layout_create(&g->layout, c->type, &req, v.handle, &v.place);
        if (r < 0) {
                manager_real_gi_unmake(m, g, made_gi, false);
                return r;
        }
        v.gpu = g->index;
        v.type = c->type;
        v.owner_uid = c->owner_uid;
        v.device_address = free_address(m, g->index, v.place.fb_offset, v.place.fb_size);
        v.fb_bytes = v.place.fb_size;
        v.state = MGR_CREATING;
        manager_utc_now(v.created_at, sizeof(v.created_at));
        gi = v.place.gi ? layout_find_gi(&g->layout, v.place.gi) : NULL;
        if (gi && gi->implicit) {
                gi_copy = *gi;
                implicit = true;
        }
        /* Committed as "creating" first: a crash from here on leaves a row that says half-made. */
        r = manager_persist_vgpu(m, &v, implicit ? &gi_copy : NULL);
        if (r < 0)
                goto err_layout;
        r = manager_start_engine(m, &v, err, len);
        if (r < 0)
                goto err_row;
        v.state = MGR_RUNNING;
        r = manager_persist_vgpu(m, &v, NULL);
        if (r < 0)
                goto err_engine;
        slot = manager_vgpu_append(m);
        if (!slot) {
                r = -ENOMEM;
                goto err_engine;
        }
        *slot = v;
        manager_sched_attach(m, slot);
        m->next_handle++;
        *ret = slot;
        vgpu_log(VGPU_LOG_INFO, "created vGPU %s (%s) on GPU %u at 0x%" PRIx64, v.uuid,
                 v.type->name, g->index, v.device_address);
        return 0;

err_engine:
        manager_stop_engine(m, v.uuid, v.engine_pid);
err_row:
        remove_engine_files(m, v.uuid); /* what a start that failed left (its log, its page) */
        manager_unpersist_vgpu(m, &v, implicit);
err_layout:
        layout_destroy(&g->layout, v.handle);
        manager_real_gi_unmake(m, g, made_gi, true);
        return r;
}

void manager_control_socket(const struct manager *m, const struct mgr_vgpu *v, char *buf,
                            size_t len)
{
        manager_engine_path(m, v->uuid, "sock", buf, len);
}

void manager_guest_socket(const struct manager *m, const struct mgr_vgpu *v, char *buf, size_t len)
{
        manager_engine_path(m, v->uuid, "guest", buf, len);
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
        r = manager_start_engine(m, v, err, len);
        v->state = r < 0 ? MGR_FAILED : MGR_RUNNING;
        if (r == 0)
                manager_sched_attach(m, v);
        if (manager_persist_vgpu(m, v, NULL) < 0)
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
        manager_engine_path(m, v->uuid, "sock", control, sizeof(control));
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
        r = manager_persist_vgpu(m, v, NULL);
        if (r < 0) {
                v->state = MGR_RUNNING;
                return r;
        }
        manager_sched_detach(m, v);
        manager_stop_engine(m, v->uuid, v->engine_pid);
        r = manager_unpersist_vgpu(m, v, implicit);
        if (r < 0)
                return r; /* the row says "destroying": the next start finishes the job */
        layout_destroy(&g->layout, v->handle);
        if (implicit && g->mig_hw)
                manager_real_gi_unmake(m, g, v->place.gi, true);
        manager_image_path(m, v, img, sizeof(img));
        unlink(img); /* a suspended vGPU's image goes with it */
        manager_image_forget(m, v);
        vgpu_log(VGPU_LOG_INFO, "destroyed vGPU %s", v->uuid);
        manager_vgpu_remove(m, v);
        return 0;
}

int manager_persist_gpu(struct manager *m, const struct mgr_gpu *g)
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
        r = manager_persist_gpu(m, g);
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
