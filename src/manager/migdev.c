// SPDX-License-Identifier: Apache-2.0
// MIG on real GPUs: the GPU instances NVML reports become the layout's, with the MIG device each
// runs its vGPUs on; with --mig-admin, GPU instances are made and destroyed through NVML.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/migdev.h"
#include "vgpu/errors.h"

const char *migdev_uuid(const struct mgr_gpu *g, uint32_t gi)
{
        const struct mgr_migdev *best = NULL;

        /* several compute instances: the lowest ID runs the GPU instance's vGPUs */
        for (size_t i = 0; i < g->n_migdevs; i++) {
                if (g->migdevs[i].gi == gi && (!best || g->migdevs[i].ci < best->ci))
                        best = &g->migdevs[i];
        }
        return best ? best->uuid : NULL;
}

static void note_migdev(struct mgr_gpu *g, const struct vgpu_nvml_mig *mig)
{
        struct mgr_migdev *d;

        if (g->n_migdevs == sizeof(g->migdevs) / sizeof(g->migdevs[0]))
                return;
        d = &g->migdevs[g->n_migdevs++];
        d->gi = migdev_gi_of_nvml(mig->gi_id);
        d->ci = mig->ci_id;
        snprintf(d->uuid, sizeof(d->uuid), "%s", mig->uuid);
}

static void forget_migdevs(struct mgr_gpu *g, uint32_t gi)
{
        size_t k = 0;

        for (size_t i = 0; i < g->n_migdevs; i++) {
                if (g->migdevs[i].gi != gi)
                        g->migdevs[k++] = g->migdevs[i];
        }
        g->n_migdevs = k;
}

/* Put one GPU instance NVML reports (NVML's id, profile, start) into g's layout. */
static void discover_gi(struct mgr_gpu *g, unsigned nvml_id, unsigned profile_id, unsigned start)
{
        uint32_t id = migdev_gi_of_nvml(nvml_id);
        const struct mig_profile *p;
        int r;

        if (layout_find_gi(&g->layout, id))
                return; /* another compute instance of one already placed */
        p = catalog_find_profile(g->model, profile_id);
        if (!p) {
                vgpu_log(VGPU_LOG_WARN,
                         "GPU %u: GPU instance %u (NVML's %u) has profile %u, which %s has not "
                         "in the catalog; vgpud leaves it out",
                         g->index, id, nvml_id, profile_id, g->model->id);
                return;
        }
        r = layout_gi_create(&g->layout, p, start, id, NULL);
        if (r < 0) {
                vgpu_log(VGPU_LOG_WARN,
                         "GPU %u: GPU instance %u (NVML's %u: %s at slice %u) does not fit the "
                         "catalog's rules (%s); vgpud leaves it out",
                         g->index, id, nvml_id, p->name, start, vgpu_strerror(r));
                return;
        }
        vgpu_log(VGPU_LOG_INFO, "GPU %u: GPU instance %u (NVML's %u), %s at slice %u", g->index, id,
                 nvml_id, p->name, start);
}

/* The GPU instances and MIG devices of g, a GPU in MIG mode, as NVML lists them (ng). */
static void discover_gis(struct mgr_gpu *g, const struct vgpu_nvml_gpu *ng)
{
        for (unsigned j = 0; j < ng->n_gi; j++)
                discover_gi(g, ng->gi[j].id, ng->gi[j].profile_id, ng->gi[j].start);
        for (unsigned j = 0; j < ng->n_mig; j++) {
                const struct vgpu_nvml_mig *mig = &ng->mig[j];

                /* an NVML that cannot list instances: those with a MIG device, where placed */
                if (!ng->gi_listed && mig->placed)
                        discover_gi(g, mig->gi_id, mig->gi_profile_id, mig->start);
                else if (!ng->gi_listed)
                        vgpu_log(VGPU_LOG_WARN,
                                 "GPU %u: NVML does not say where its GPU instance %u is; "
                                 "vgpud leaves it out",
                                 g->index, mig->gi_id);
                if (layout_find_gi(&g->layout, migdev_gi_of_nvml(mig->gi_id))) {
                        note_migdev(g, mig);
                        vgpu_log(VGPU_LOG_INFO,
                                 "GPU %u: GPU instance %u runs its vGPUs on MIG device %s",
                                 g->index, migdev_gi_of_nvml(mig->gi_id), mig->uuid);
                }
        }
}

int migdev_discover(struct manager *m, const struct vgpu_nvml_gpu *found, size_t n)
{
        for (size_t i = 0; i < m->n_gpus; i++) {
                struct mgr_gpu *g = &m->gpus[i];

                g->nvml_index = -1;
                g->mig_hw = false;
                g->n_migdevs = 0;
                for (size_t k = 0; k < n; k++) {
                        if (strcasecmp(found[k].uuid, g->uuid) != 0)
                                continue;
                        g->nvml_index = (int)found[k].index;
                        if (!found[k].mig_enabled)
                                break;
                        if (layout_set_mode(&g->layout, LAYOUT_MIG) < 0) {
                                vgpu_log(VGPU_LOG_ERROR,
                                         "GPU %u (%s) is in MIG mode, which vgpud's catalog does "
                                         "not know for %s",
                                         g->index, g->uuid, g->model->id);
                                return VGPU_ENO_MIG;
                        }
                        g->mig_hw = true;
                        discover_gis(g, &found[k]);
                        break;
                }
                /* MIG needs the hardware in MIG mode (and NVML to see it): not a stored mode */
                if (!g->mig_hw && g->layout.mode == LAYOUT_MIG) {
                        vgpu_log(VGPU_LOG_WARN,
                                 "GPU %u was in MIG mode; %s, so it is in homogeneous mode now",
                                 g->index,
                                 g->nvml_index < 0 ? "NVML does not show it"
                                                   : "MIG mode is off on it now");
                        layout_set_mode(&g->layout, LAYOUT_HOMOGENEOUS);
                }
        }
        return 0;
}

/* NVML's refusal (r, a negative errno) as VGPU_ENVML, with NVML's words in err. */
static int nvml_refused(int r, const char *what, char *err, size_t len)
{
        snprintf(err, len, "%s: %s (%s)", what, vgpu_nvml_strerror(), strerror(-r));
        vgpu_log(VGPU_LOG_ERROR, "%s", err);
        return VGPU_ENVML;
}

static int may_change(const struct manager *m, const struct mgr_gpu *g)
{
        if (!m->mig_admin)
                return VGPU_EMIG_ADMIN;
        if (!g->mig_hw)
                return VGPU_EMIG_OFF;
        if (g->nvml_index < 0)
                return VGPU_ENVML;
        return 0;
}

int migdev_gi_create_locked(struct manager *m, struct mgr_gpu *g, const struct mig_profile *p,
                            uint32_t start, uint32_t *ret_id, char *err, size_t len)
{
        struct vgpu_nvml_mig mig;
        struct layout check = g->layout;
        char what[128];
        int r = may_change(m, g);

        err[0] = '\0';
        if (r < 0)
                return r;
        /* The catalog's rules first, on a copy: NVML is asked only for what vgpud allows. */
        r = layout_gi_create(&check, p, start, 0, NULL);
        if (r < 0)
                return r;
        snprintf(what, sizeof(what), "GPU %u: creating a %s GPU instance at slice %u", g->index,
                 p->name, start);
        r = vgpu_nvml_gi_create((unsigned)g->nvml_index, p->id, start, &mig);
        if (r < 0)
                return nvml_refused(r, what, err, len);
        r = layout_gi_create(&g->layout, p, start, migdev_gi_of_nvml(mig.gi_id), NULL);
        if (r < 0) {
                /* NVML numbered it as one vgpud has: give it back, say why */
                snprintf(err, len, "%s: NVML gave it ID %u, which vgpud holds already", what,
                         mig.gi_id);
                vgpu_nvml_gi_destroy((unsigned)g->nvml_index, mig.gi_id);
                return VGPU_ENVML;
        }
        note_migdev(g, &mig);
        vgpu_log(VGPU_LOG_INFO,
                 "GPU %u: created GPU instance %u (NVML's %u: %s at slice %u), MIG device %s",
                 g->index, migdev_gi_of_nvml(mig.gi_id), mig.gi_id, p->name, start, mig.uuid);
        *ret_id = migdev_gi_of_nvml(mig.gi_id);
        return 0;
}

int migdev_gi_destroy_locked(struct manager *m, struct mgr_gpu *g, uint32_t gi, bool layout_done,
                             char *err, size_t len)
{
        char what[96];
        int r = may_change(m, g);

        err[0] = '\0';
        if (r < 0)
                return r;
        if (gi == 0)
                return VGPU_ENO_GI; /* "none": vgpud's IDs start at 1 (migdev_gi_of_nvml) */
        if (!layout_done) {
                struct layout check = g->layout;

                r = layout_gi_destroy(&check, gi);
                if (r < 0)
                        return r;
        }
        snprintf(what, sizeof(what), "GPU %u: destroying GPU instance %u", g->index, gi);
        r = vgpu_nvml_gi_destroy((unsigned)g->nvml_index, migdev_nvml_of_gi(gi));
        if (r < 0)
                return nvml_refused(r, what, err, len);
        if (!layout_done)
                layout_gi_destroy(&g->layout, gi);
        forget_migdevs(g, gi);
        vgpu_log(VGPU_LOG_INFO, "GPU %u: destroyed GPU instance %u", g->index, gi);
        return 0;
}
