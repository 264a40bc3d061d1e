// SPDX-License-Identifier: Apache-2.0
// GET /metrics, on the control socket and on vgpud's optional metrics-only listener: the
// manager's GPUs and vGPUs, with the scheduler's, licensing's and NVML's figures, gathered as
// plain data for metrics.c to render.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cuda/nvml.h"
#include "manager/api_int.h"
#include "manager/licensing.h"
#include "manager/metrics.h"

/* GET /metrics: Prometheus text in DCGM exporter's names (metrics.c), from what vgpud knows. */
void api_get_metrics(struct api *api, struct http_response *resp)
{
        struct manager *m = api->mgr;
        struct metrics_gpu *gpus = calloc(m->n_gpus ? m->n_gpus : 1, sizeof(*gpus));
        struct metrics_vgpu *vgpus = calloc(m->n_vgpus ? m->n_vgpus : 1, sizeof(*vgpus));
        char host[256] = "";
        size_t nv = 0;

        if (!gpus || !vgpus) {
                free(gpus);
                free(vgpus);
                api_fail(resp, 500, "INTERNAL", "out of memory");
                return;
        }
        gethostname(host, sizeof(host) - 1);
        for (size_t i = 0; i < m->n_gpus; i++) {
                const struct mgr_gpu *g = &m->gpus[i];
                struct metrics_gpu *mg = &gpus[i];
                enum sched_policy p;
                uint32_t ms;
                uint64_t clock, idle, used = 0;
                double util = -1;
                struct vgpu_nvml_sample ns;

                scheduler_get(m->sched, g->index, &p, &ms, &clock, &idle);
                *mg = (struct metrics_gpu){.index = g->index,
                                           .uuid = g->uuid,
                                           .model_name = g->model->name,
                                           .pci_bus_id = g->pci_bus_id,
                                           .hostname_or_null = host[0] ? host : NULL,
                                           .fb_total = catalog_model_fb_bytes(g->model),
                                           .temp_c = -1,
                                           .sched_policy = sched_policy_name(p),
                                           .sched_slice_ms = ms,
                                           .vgpus = &vgpus[nv]};
                for (size_t k = 0; k < m->n_vgpus; k++) {
                        const struct mgr_vgpu *v = &m->vgpus[k];
                        struct metrics_vgpu *mv;
                        struct sched_stats st;
                        int64_t fb_used;
                        int guests;

                        if (v->gpu != g->index)
                                continue;
                        mv = &vgpus[nv++];
                        mg->n_vgpus++;
                        manager_vgpu_usage_locked(m, v, &guests, &fb_used);
                        *mv = (struct metrics_vgpu){.uuid = v->uuid,
                                                    .type = v->type->name,
                                                    .id = v->handle,
                                                    .fb_total = v->fb_bytes,
                                                    .fb_used = fb_used >= 0 ? (uint64_t)fb_used
                                                                            : UINT64_MAX,
                                                    .util_pct = -1,
                                                    .xid_errors = v->xid_errors,
                                                    .license_status = -1,
                                                    .state = manager_state_name(v->state)};
                        if (m->lic) {
                                char text[96];

                                licensing_status(m->lic, v->uuid, text, sizeof(text),
                                                 &mv->license_status);
                        }
                        if (scheduler_stats(m->sched, v->gpu, v->handle, &st) == 0) {
                                mv->util_pct = st.util_pct;
                                mv->sched_slices = st.slices;
                                mv->sched_overruns = st.overruns;
                                mv->sched_charged_ns = st.charged_ns;
                                util = (util < 0 ? 0 : util) + st.util_pct;
                        }
                        used += v->place.fb_size;
                        mg->xid_errors += v->xid_errors;
                }
                mg->fb_used = used;
                mg->util_pct = util > 100.0 ? 100.0 : util;
                /* A real GPU's own figures, from NVML (the cuda backend). */
                mg->xid_errors += g->xid_errors;
                if (m->nvml && g->nvml_index >= 0 &&
                    vgpu_nvml_sample((unsigned)g->nvml_index, &ns) == 0) {
                        mg->util_pct = ns.gpu_util;
                        mg->temp_c = ns.temp_c;
                        mg->power_mw = ns.power_mw;
                }
        }
        resp->status = 200;
        resp->text = metrics_render(gpus, m->n_gpus);
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        if (!resp->text)
                api_fail(resp, 500, "INTERNAL", "out of memory");
        free(gpus);
        free(vgpus);
}

void api_metrics(void *ctx, const struct http_request *req, struct http_response *resp)
{
        struct api *api = ctx;

        if (strcmp(req->path, "/metrics") != 0) {
                api_fail(resp, 404, "NOT_FOUND", "only /metrics is served here");
                return;
        }
        if (!api_method_is(req, "GET", resp))
                return;
        manager_lock(api->mgr);
        api_get_metrics(api, resp);
        manager_unlock(api->mgr);
}
