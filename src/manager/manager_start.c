// SPDX-License-Identifier: Apache-2.0
// The manager's startup and lifetime: manager_new sets up the GPUs, restores the layouts from the
// database and reconciles them with the engines that are still running; a watcher thread marks
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

static pid_t find_engine(struct manager *m, const char *uuid);

/* ---- startup: GPUs, restore, reconcile ---------------------------------------------------- */

struct restore {
        struct manager *m;
        int err;
        size_t n_rows;
        struct state_vgpu *rows;
        /* rows of real GPUs' GPU instances that are gone (removed once read) */
        size_t n_stale;
        struct state_gi stale[64];
        /* real GPUs: the UUID the state gave each index, as it was before this start */
        size_t n_old;
        struct state_gpu *old;
        /* real GPUs' GPU-instance rows, when the state is renumbered (remap_state) */
        size_t n_gis;
        struct state_gi *gis;
        /* rows of real GPUs' GPU instances whose GPU has another index now (moved_to) */
        size_t n_moved;
        struct state_gi moved[64];
        uint32_t moved_to[64];
};

static int collect_gpu_row(void *ctx, const struct state_gpu *row)
{
        struct restore *rs = ctx;
        struct state_gpu *n = realloc(rs->old, (rs->n_old + 1) * sizeof(*n));

        if (!n) {
                rs->err = -ENOMEM;
                return 1;
        }
        rs->old = n;
        rs->old[rs->n_old++] = *row;
        return 0;
}

/*
 * Where a row the state put at GPU index gpu belongs now: the index of the GPU with the UUID the
 * state gave that index (a real GPU keeps its index unless GPUs went away), or -1 when NVML no
 * longer lists it, with that UUID in *ret_uuid (if not NULL). The sim's GPUs: gpu as it is.
 */
static int gpu_now(const struct restore *rs, uint32_t gpu, const char **ret_uuid)
{
        const struct manager *m = rs->m;

        if (ret_uuid)
                *ret_uuid = "?";
        if (!m->real_gpus)
                return (int)gpu;
        for (size_t i = 0; i < rs->n_old; i++) {
                if (rs->old[i].index != gpu)
                        continue;
                if (ret_uuid)
                        *ret_uuid = rs->old[i].uuid;
                for (size_t j = 0; j < m->n_gpus; j++) {
                        if (strcasecmp(rs->old[i].uuid, m->gpus[j].uuid) == 0)
                                return (int)j;
                }
                return -1;
        }
        return gpu < m->n_gpus ? (int)gpu : -1;
}

/*
 * The order of real GPUs (order[i]: the found GPU that gets index i): each keeps the index the
 * state gave it, so that NVML's order, which it does not promise across reboots, changes
 * nothing; GPUs new to the state take the indices left, in NVML's order.
 */
static int stable_order(const struct restore *rs, const struct manager_config *cfg, size_t *order)
{
        size_t n = cfg->n_sim_gpus;
        bool *placed = calloc(2 * n + 1, sizeof(*placed)), *taken = placed + n;

        if (!placed)
                return -ENOMEM;
        for (size_t i = 0; i < rs->n_old; i++) {
                uint32_t at = rs->old[i].index;

                for (size_t j = 0; at < n && !taken[at] && j < n; j++) {
                        if (!placed[j] && strcasecmp(cfg->gpu_uuids[j], rs->old[i].uuid) == 0) {
                                order[at] = j;
                                placed[j] = taken[at] = true;
                        }
                }
        }
        for (size_t at = 0, j = 0; at < n; at++) {
                if (taken[at])
                        continue;
                while (placed[j])
                        j++;
                order[at] = j;
                placed[j] = true;
        }
        free(placed);
        return 0;
}

static int restore_gpu_row(void *ctx, const struct state_gpu *row)
{
        struct restore *rs = ctx;
        struct manager *m = rs->m;
        enum layout_mode mode;

        /* a real GPU's row is its UUID's, wherever that GPU is now (or gone: nothing to do) */
        int now = gpu_now(rs, row->index, NULL);

        if (now < 0 || (uint32_t)now >= m->n_gpus)
                return 0; /* a GPU no longer configured; checked against vGPUs below */
        struct mgr_gpu *g = &m->gpus[now];
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
        int now = gpu_now(rs, row->gpu, NULL);
        struct mgr_gpu *g;
        int r;

        if (m->real_gpus) {
                /* the hardware's GPU instances are in the layout: a row only says "implicit" */
                const struct layout_gi *have =
                        now >= 0 ? layout_find_gi(&m->gpus[now].layout, row->id) : NULL;

                if (!have || have->profile->id != row->profile || have->start != row->start) {
                        /* the instance is gone, or its GPU (NVML no longer lists it) */
                        if (rs->n_stale < sizeof(rs->stale) / sizeof(rs->stale[0]))
                                rs->stale[rs->n_stale++] = *row;
                        return 0;
                }
                g = &m->gpus[now];
                if (row->implicit && m->mig_admin)
                        g->layout.gis[have - g->layout.gis].implicit = true;
                if ((uint32_t)now != row->gpu &&
                    rs->n_moved < sizeof(rs->moved) / sizeof(rs->moved[0])) {
                        /* its GPU has another index now: the row is rewritten there */
                        rs->moved[rs->n_moved] = *row;
                        rs->moved_to[rs->n_moved++] = (uint32_t)now;
                }
                return 0;
        }
        if (row->gpu >= m->n_gpus) {
                vgpu_log(VGPU_LOG_ERROR,
                         "state: GPU instance %u is on GPU %u, which is not "
                         "configured",
                         row->id, row->gpu);
                rs->err = -ENODEV;
                return 1;
        }
        g = &m->gpus[row->gpu];
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
                manager_stop_engine(m, v.uuid, find_engine(m, v.uuid));
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
                manager_stop_engine(m, v.uuid, find_engine(m, v.uuid));
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
                manager_stop_engine(m, v.uuid, v.engine_pid);
                r = manager_unpersist_vgpu(m, &v, implicit);
                layout_destroy(&g->layout, v.handle);
                if (implicit && g->mig_hw)
                        manager_real_gi_unmake(m, g, v.place.gi, true);
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
                                manager_stop_engine(m, v.uuid, find_engine(m, v.uuid));
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
                        v.engine_pid = find_engine(m, v.uuid);
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
                        v.engine_pid = find_engine(m, v.uuid);
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
        manager_stop_engine(m, uuid, pid);
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

static int collect_gi_row(void *ctx, const struct state_gi *row)
{
        struct restore *rs = ctx;
        struct state_gi *n = realloc(rs->gis, (rs->n_gis + 1) * sizeof(*n));

        if (!n) {
                rs->err = -ENOMEM;
                return 1;
        }
        rs->gis = n;
        rs->gis[rs->n_gis++] = *row;
        return 0;
}

/* The device address a vGPU row's placement gave it on the GPU it was on (row->gpu), or 0. */
static uint64_t derived_address(const struct manager *m, const struct state_vgpu *row, int now)
{
        struct layout scratch = m->gpus[now].layout; /* its GPU instances, no vGPUs yet */
        const struct vgpu_type *t = catalog_type_by_id(m->gpus[now].model, row->type_id);
        struct layout_req req = {.gi = row->gi, .placement = row->placement};
        struct layout_vgpu out;

        if (!t || layout_check(&scratch, t, &req, &out) != 0)
                return 0;
        return layout_device_address(row->gpu, out.fb_offset);
}

/*
 * Real GPUs whose numbers changed (a GPU gone, its number taken): the state is renumbered by
 * UUID in one transaction before anything else is restored, so that a start killed halfway
 * finds either the old numbering or the new, whole: vGPU rows (a vGPU keeps its device
 * address), GPU-instance rows, scheduler settings, and the GPU rows themselves. vGPUs of GPUs
 * gone are deleted here (the caller checked --forget-gone-gpus); their engines are stopped once
 * it is committed. Then rs->old is the new numbering. 0 or a negative code, the state unchanged.
 */
static int remap_state(struct restore *rs)
{
        struct manager *m = rs->m;
        char(*sched)[48] = NULL;
        bool change = false;
        int r;

        for (size_t i = 0; i < m->n_gpus; i++)
                change |= m->gpus[i].state_index != (int)i;
        for (size_t i = 0; i < rs->n_rows; i++)
                change |= gpu_now(rs, rs->rows[i].gpu, NULL) != (int)rs->rows[i].gpu;
        if (!change)
                return 0;
        r = state_each_gi(m->db, collect_gi_row, rs);
        if (r < 0 || rs->err)
                return rs->err ? rs->err : r;
        /* each GPU's scheduler setting, read under its old number before any is written */
        sched = calloc(m->n_gpus + 1, sizeof(*sched));
        if (!sched)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_gpus; i++) {
                char key[32];

                snprintf(key, sizeof(key), "sched.gpu.%d", m->gpus[i].state_index);
                if (m->gpus[i].state_index < 0 ||
                    state_get_meta(m->db, key, sched[i], sizeof(sched[i])) < 0)
                        snprintf(sched[i], sizeof(sched[i]), "%s", "");
        }
        r = state_begin(m->db);
        for (size_t i = 0; r == 0 && i < rs->n_rows; i++) {
                struct state_vgpu row = rs->rows[i];
                int now = gpu_now(rs, row.gpu, NULL);

                if (now == (int)row.gpu)
                        continue;
                if (now < 0) {
                        r = state_del_vgpu(m->db, row.uuid);
                        continue;
                }
                if (!row.device_address)
                        row.device_address = derived_address(m, &row, now);
                row.gpu = (uint32_t)now;
                r = state_put_vgpu(m->db, &row);
        }
        /* instance rows: all that move or go are deleted first, then the movers put back */
        for (size_t i = 0; r == 0 && i < rs->n_gis; i++) {
                if (gpu_now(rs, rs->gis[i].gpu, NULL) != (int)rs->gis[i].gpu)
                        r = state_del_gi(m->db, rs->gis[i].gpu, rs->gis[i].id);
        }
        for (size_t i = 0; r == 0 && i < rs->n_gis; i++) {
                struct state_gi gi = rs->gis[i];
                int now = gpu_now(rs, gi.gpu, NULL);

                if (now < 0 || now == (int)gi.gpu)
                        continue;
                gi.gpu = (uint32_t)now;
                r = state_put_gi(m->db, &gi);
        }
        for (size_t i = 0; r == 0 && i < m->n_gpus; i++) {
                const struct mgr_gpu *g = &m->gpus[i];
                struct state_gpu row = {.index = g->index};
                char key[32], old[48];

                if (g->state_index == (int)i)
                        continue;
                /* its own setting, or none: not the one a gone GPU left at this number */
                snprintf(key, sizeof(key), "sched.gpu.%zu", i);
                if (sched[i][0])
                        r = state_put_meta(m->db, key, sched[i]);
                else if (state_get_meta(m->db, key, old, sizeof(old)) == 0)
                        r = state_put_meta(m->db, key, "best-effort 0");
                snprintf(row.uuid, sizeof(row.uuid), "%s", g->uuid);
                snprintf(row.model, sizeof(row.model), "%s", g->model->id);
                snprintf(row.mode, sizeof(row.mode), "%s", layout_mode_name(g->layout.mode));
                snprintf(row.pci_bus_id, sizeof(row.pci_bus_id), "%s", g->pci_bus_id);
                if (r == 0)
                        r = state_put_gpu(m->db, &row);
        }
        if (r == 0)
                r = state_commit(m->db);
        free(sched);
        if (r < 0) {
                state_rollback(m->db);
                return VGPU_ESTATE;
        }
        for (size_t i = 0; i < rs->n_rows; i++) {
                if (gpu_now(rs, rs->rows[i].gpu, NULL) < 0)
                        manager_stop_engine(m, rs->rows[i].uuid, find_engine(m, rs->rows[i].uuid));
        }
        /* from here on, the state's numbering is this start's */
        rs->n_old = 0;
        rs->n_rows = 0;
        rs->n_gis = 0;
        for (size_t i = 0; i < m->n_gpus; i++)
                m->gpus[i].state_index = (int)i;
        r = state_each_gpu(m->db, collect_gpu_row, rs);
        if (r == 0 && !rs->err)
                r = state_each_vgpu(m->db, collect_vgpu_row, rs);
        return rs->err ? rs->err : r;
}

static int setup_gpus_with(struct restore *rs, const struct manager_config *cfg,
                           const struct vgpu_nvml_gpu *nvml_found, size_t n_found, size_t *order)
{
        struct manager *m = rs->m;
        int r;

        m->real_gpus = cfg->gpu_uuids != NULL;
        m->gpus = calloc(cfg->n_sim_gpus, sizeof(*m->gpus));
        if (!m->gpus)
                return -ENOMEM;
        m->n_gpus = cfg->n_sim_gpus;
        for (size_t i = 0; i < cfg->n_sim_gpus; i++)
                order[i] = i;
        if (m->real_gpus) {
                /* state from before vgpud's GPU instance IDs were NVML's + 1 (migdev.h) */
                r = state_real_gi_ids(m->db);
                if (r == 0)
                        r = state_each_gpu(m->db, collect_gpu_row, rs);
                if (r == 0 && !rs->err)
                        r = stable_order(rs, cfg, order);
                if (r < 0 || rs->err)
                        return rs->err ? rs->err : r;
        }
        for (size_t i = 0; i < cfg->n_sim_gpus; i++) {
                struct mgr_gpu *g = &m->gpus[i];
                size_t j = order[i]; /* the configured (found) GPU at index i */
                char u[37];

                g->index = (uint32_t)i;
                g->nvml_index = -1;
                g->model = catalog_find_model(cfg->sim_gpus[j]);
                if (!g->model) {
                        vgpu_log(VGPU_LOG_ERROR,
                                 "unknown GPU model '%s' (`vgpuctl models` "
                                 "lists them)",
                                 cfg->sim_gpus[j]);
                        return VGPU_EUNKNOWN_MODEL;
                }
                manager_random_uuid(u);
                snprintf(g->uuid, sizeof(g->uuid), "GPU-%s", u);
                snprintf(g->pci_bus_id, sizeof(g->pci_bus_id), "00000000:%02X:00.0",
                         (unsigned)(0x17 + i));
                if (cfg->gpu_uuids && cfg->gpu_uuids[j] && cfg->gpu_uuids[j][0])
                        snprintf(g->uuid, sizeof(g->uuid), "%s", cfg->gpu_uuids[j]);
                if (cfg->gpu_bus_ids && cfg->gpu_bus_ids[j] && cfg->gpu_bus_ids[j][0])
                        snprintf(g->pci_bus_id, sizeof(g->pci_bus_id), "%s", cfg->gpu_bus_ids[j]);
                layout_init(&g->layout, g->model);
                g->state_index = m->real_gpus ? -1 : (int)i;
                for (size_t k = 0; m->real_gpus && k < rs->n_old; k++) {
                        if (strcasecmp(rs->old[k].uuid, g->uuid) == 0)
                                g->state_index = (int)rs->old[k].index;
                }
                if (g->state_index >= 0 && g->state_index != (int)i)
                        vgpu_log(VGPU_LOG_WARN, "GPU %s was GPU %d; it is GPU %zu now", g->uuid,
                                 g->state_index, i);
        }
        /* vGPUs on a GPU NVML no longer lists: removed only when the operator says so */
        r = state_each_vgpu(m->db, collect_vgpu_row, rs);
        if (r < 0 || rs->err)
                return rs->err ? rs->err : r;
        size_t gone = 0;

        for (size_t i = 0; m->real_gpus && i < rs->n_rows; i++) {
                const char *was = NULL;

                if (gpu_now(rs, rs->rows[i].gpu, &was) >= 0)
                        continue;
                vgpu_log(VGPU_LOG_ERROR, "vGPU %s is on GPU %s, which NVML does not list now%s",
                         rs->rows[i].uuid, was,
                         cfg->forget_gone_gpus ? "; vgpud removes it (--forget-gone-gpus)" : "");
                gone++;
        }
        if (gone && !cfg->forget_gone_gpus) {
                vgpu_log(VGPU_LOG_ERROR,
                         "vgpud does not start without those GPUs: bring them back, or start it "
                         "with --forget-gone-gpus to remove their %zu vGPU(s)",
                         gone);
                return -ENODEV;
        }
        r = state_each_gpu(m->db, restore_gpu_row, rs);
        if (r < 0 || rs->err)
                return rs->err ? rs->err : r;
        if (m->real_gpus) {
                r = migdev_discover(m, nvml_found, n_found);
                if (r == 0)
                        r = remap_state(rs);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < m->n_gpus; i++) {
                r = manager_persist_gpu(m, &m->gpus[i]);
                if (r < 0)
                        return r;
        }
        r = state_each_gi(m->db, restore_gi_row, rs);
        if (r < 0 || rs->err)
                return rs->err ? rs->err : r;
        for (size_t i = 0; i < rs->n_stale; i++) {
                vgpu_log(VGPU_LOG_WARN, "GPU %u: GPU instance %u that vgpud made is gone",
                         rs->stale[i].gpu, rs->stale[i].id);
                if (state_begin(m->db) < 0 ||
                    state_del_gi(m->db, rs->stale[i].gpu, rs->stale[i].id) < 0 ||
                    state_commit(m->db) < 0)
                        state_rollback(m->db);
        }
        /* instances of GPUs whose index changed: their rows move with them, in one go */
        if (rs->n_moved) {
                r = state_begin(m->db);
                for (size_t i = 0; r == 0 && i < rs->n_moved; i++)
                        r = state_del_gi(m->db, rs->moved[i].gpu, rs->moved[i].id);
                for (size_t i = 0; r == 0 && i < rs->n_moved; i++) {
                        struct state_gi there = rs->moved[i];

                        there.gpu = rs->moved_to[i];
                        r = state_put_gi(m->db, &there);
                }
                if (r == 0)
                        r = state_commit(m->db);
                if (r < 0) {
                        state_rollback(m->db);
                        return VGPU_ESTATE;
                }
        }
        for (size_t i = 0; r == 0 && !rs->err && i < rs->n_rows; i++) {
                struct state_vgpu row = rs->rows[i];
                const char *was = NULL;
                int now = gpu_now(rs, row.gpu, &was);
                struct mgr_vgpu *v;

                if (now < 0) {
                        /* its GPU is gone, and its framebuffer with it (--forget-gone-gpus) */
                        struct mgr_vgpu lost = {0};

                        snprintf(lost.uuid, sizeof(lost.uuid), "%s", row.uuid);
                        lost.gpu = row.gpu;
                        lost.place.gi = row.gi;
                        manager_stop_engine(m, lost.uuid, find_engine(m, lost.uuid));
                        r = manager_unpersist_vgpu(m, &lost, false);
                        continue;
                }
                if ((uint32_t)now == row.gpu) {
                        r = restore_vgpu(m, &row);
                        continue;
                }
                /* its GPU has another index now: restored there, and its row rewritten */
                row.gpu = (uint32_t)now;
                r = restore_vgpu(m, &row);
                v = r == 0 ? manager_vgpu_locked(m, row.uuid) : NULL;
                if (v) {
                        const struct layout_gi *gi =
                                v->place.gi ? layout_find_gi(&m->gpus[v->gpu].layout, v->place.gi)
                                            : NULL;

                        r = manager_persist_vgpu(m, v, gi && gi->implicit ? gi : NULL);
                }
        }
        if (r < 0 || rs->err)
                return rs->err ? rs->err : r;
        stop_strays(m);
        return 0;
}

static int setup_gpus(struct manager *m, const struct manager_config *cfg,
                      const struct vgpu_nvml_gpu *nvml_found, size_t n_found)
{
        struct restore rs = {.m = m};
        size_t *order = calloc(cfg->n_sim_gpus + 1, sizeof(*order));
        int r = order ? setup_gpus_with(&rs, cfg, nvml_found, n_found, order) : -ENOMEM;

        free(order);
        free(rs.rows);
        free(rs.old);
        free(rs.gis);
        return r;
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
