// SPDX-License-Identifier: Apache-2.0
// The manager's startup and lifetime: manager_new sets up the GPUs (manager_restore.c), puts each
// saved vGPU back and reconciles it with its engine if that still runs; a watcher thread marks
// the vGPUs of engines that die as faulted, another counts NVML's Xid events. Also each GPU's
// scheduling policy, kept in the database.
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/engine_proc.h"
#include "backend/cuda/nvml.h"
#include "manager/manager.h"
#include "manager/manager_int.h"
#include "manager/migdev.h"
#include "manager/state.h"
#include "vgpu/errors.h"

#define ENGINE_BUSY_MS 120000 /* an engine in the middle of a suspend or a move, at restart */

/* ---- saved vGPUs and their engines ---------------------------------------------------------- */

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

        /* a real GPU's engine never leaves its device, and says the number vgpud gave it when
         * it started, which may have changed since (a GPU gone): only its offset counts */
        if (m->real_gpus)
                eg = (json_int_t)v->gpu;
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
int manager_restore_vgpu(struct manager *m, const struct state_vgpu *row)
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
                manager_stop_engine(m, v.uuid, manager_find_engine(m, v.uuid));
                return manager_unpersist_vgpu(m, &v, false);
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
                manager_stop_engine(m, v.uuid, manager_find_engine(m, v.uuid));
                return manager_unpersist_vgpu(m, &v, false);
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
        v.state = manager_state_parse(row->state);
        v.device_address = row->device_address ? row->device_address
                                               : layout_device_address(g->index, v.place.fb_offset);
        v.fb_bytes = v.place.fb_size; /* a live engine says better, below */
        if (v.handle >= m->next_handle)
                m->next_handle = v.handle + 1;
        manager_engine_path(m, v.uuid, "sock", control, sizeof(control));

        if (v.state == MGR_CREATING && manager_find_engine(m, v.uuid)) {
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
                v.engine_pid = manager_find_engine(m, v.uuid);
                manager_stop_engine(m, v.uuid, v.engine_pid);
                r = manager_unpersist_vgpu(m, &v, implicit);
                layout_destroy(&g->layout, v.handle);
                if (implicit && g->mig_hw)
                        manager_real_gi_unmake(m, g, v.place.gi, true);
                return r;
        }
        if (v.state == MGR_RUNNING || v.state == MGR_SUSPENDED) {
                r = engine_status(control, ENGINE_STATUS_MS, &st);
                if (r == -ETIMEDOUT && manager_find_engine(m, v.uuid)) {
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
                                manager_stop_engine(m, v.uuid, manager_find_engine(m, v.uuid));
                                r = manager_unpersist_vgpu(m, &v, false);
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
                        v.engine_pid = manager_find_engine(m, v.uuid);
                        if (v.engine_pid)
                                manager_stop_engine(m, v.uuid, v.engine_pid);
                        v.engine_pid = 0;
                        manager_image_of(m, &v, img, sizeof(img));
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
                        v.engine_pid = manager_find_engine(m, v.uuid);
                        if (v.engine_pid)
                                manager_stop_engine(m, v.uuid, v.engine_pid);
                        if (manager_start_engine(m, &v, err, sizeof(err)) == 0)
                                vgpu_log(VGPU_LOG_WARN, "vGPU %s: engine was gone; restarted as %d",
                                         v.uuid, (int)v.engine_pid);
                        else
                                v.state = MGR_FAILED;
                }
                json_decref(st);
                if (manager_persist_vgpu(m, &v, NULL) < 0)
                        vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v.uuid);
        }
        slot = manager_vgpu_append(m);
        if (!slot)
                return -ENOMEM;
        *slot = v;
        if (slot->state == MGR_RUNNING || slot->state == MGR_SUSPENDED)
                manager_sched_attach(m, slot);
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
pid_t manager_find_engine(struct manager *m, const char *uuid)
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
        manager_stop_engine(m, uuid, pid);
}

/*
 * Engines whose vGPU is not in the state (left by a crash mid-create) are stopped, and sockets and
 * logs nobody owns are removed.
 */
void manager_stop_strays(struct manager *m)
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
                        manager_sched_detach(m, v);
                        manager_persist_vgpu(m, v, NULL);
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
                /* a real GPU's setting is its own: under the index the state knew it by */
                if (g->state_index < 0) {
                        /* new here: a setting left at its index (a GPU gone) is not its own */
                        snprintf(key, sizeof(key), "sched.gpu.%zu", i);
                        if (state_get_meta(m->db, key, value, sizeof(value)) == 0) {
                                uint64_t clock, idle;

                                scheduler_get(m->sched, g->index, &p, &ums, &clock, &idle);
                                if (sched_persist(m, g->index, p, ums) < 0)
                                        return VGPU_ESTATE;
                        }
                        continue;
                }
                snprintf(key, sizeof(key), "sched.gpu.%d", g->state_index);
                if (state_get_meta(m->db, key, value, sizeof(value)) < 0)
                        continue;
                if (sscanf(value, "%31s %u", name, &ms) != 2 || sched_policy_parse(name, &p) < 0 ||
                    scheduler_set(m->sched, g->index, p, ms,
                                  g->layout.mode == LAYOUT_HETEROGENEOUS) < 0)
                        vgpu_log(VGPU_LOG_WARN,
                                 "GPU %zu: stored scheduler '%s' not usable; "
                                 "best effort",
                                 i, value);
                else if (g->state_index != (int)i && sched_persist(m, g->index, p, ms) < 0)
                        return VGPU_ESTATE; /* kept under its new index */
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
        r = manager_setup_gpus(m, cfg, found, n_found);
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
