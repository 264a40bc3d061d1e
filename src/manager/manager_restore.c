// SPDX-License-Identifier: Apache-2.0
// The manager's GPUs at startup: each GPU's number (a real GPU keeps the one the state gave it,
// found by UUID), its mode and GPU instances from the state, the state renumbered in one
// transaction when GPUs went away, and then each saved vGPU put back (manager_start.c).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/cuda/nvml.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/manager_int.h"
#include "manager/migdev.h"
#include "manager/state.h"
#include "vgpu/errors.h"

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
                        manager_stop_engine(m, rs->rows[i].uuid,
                                            manager_find_engine(m, rs->rows[i].uuid));
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
                        manager_stop_engine(m, lost.uuid, manager_find_engine(m, lost.uuid));
                        r = manager_unpersist_vgpu(m, &lost, false);
                        continue;
                }
                if ((uint32_t)now == row.gpu) {
                        r = manager_restore_vgpu(m, &row);
                        continue;
                }
                /* its GPU has another index now: restored there, and its row rewritten */
                row.gpu = (uint32_t)now;
                r = manager_restore_vgpu(m, &row);
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
        manager_stop_strays(m);
        return 0;
}

int manager_setup_gpus(struct manager *m, const struct manager_config *cfg,
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
