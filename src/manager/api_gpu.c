// SPDX-License-Identifier: Apache-2.0
// The control API's GPU-level handlers: the GPUs, each GPU's mode and scheduling policy, the vGPU
// types it offers and where they fit, and its MIG profiles and GPU instances.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/catalog_json.h"
#include "manager/api_int.h"
#include "vgpu/errors.h"

void api_get_gpus(struct api *api, struct http_response *resp)
{
        json_t *arr = json_array();

        for (size_t i = 0; i < api->mgr->n_gpus; i++)
                json_array_append_new(arr, api_gpu_json(api->mgr, &api->mgr->gpus[i]));
        api_reply(resp, 200, json_pack("{s:o}", "gpus", arr));
}

void api_put_mode(struct api *api, const struct http_request *req, struct mgr_gpu *g,
                  struct http_response *resp)
{
        static const char *const fields[] = {"mode", NULL};
        json_t *o = api_body_object(req, resp, fields);
        enum layout_mode mode;
        const char *name;
        int r;

        if (!o)
                return;
        name = json_string_value(json_object_get(o, "mode"));
        if (!name || layout_mode_parse(name, &mode) < 0) {
                api_fail(resp, 400, "BAD_REQUEST",
                         "'mode' must be \"homogeneous\", \"heterogeneous\" or \"mig\"");
        } else if ((r = manager_set_mode_locked(api->mgr, g, mode)) < 0) {
                if (r == VGPU_EMIG_OFF)
                        api_fail_code(resp, r,
                                      "MIG mode is off on GPU %u, and vgpud never turns it on; an "
                                      "operator does (nvidia-smi -i %u -mig 1, which resets the "
                                      "GPU), then restarts vgpud",
                                      g->index, g->index);
                else if (r == VGPU_EMODE && g->mig_hw)
                        api_fail_code(resp, r,
                                      "GPU %u is in MIG mode, and vgpud never turns it off; "
                                      "time-sliced vGPUs go into its GPU instances",
                                      g->index);
                else if (r == VGPU_EGPU_BUSY)
                        api_fail_code(resp, r,
                                      "GPU %u still has vGPUs or GPU instances; destroy them "
                                      "before changing its mode",
                                      g->index);
                else if (r == VGPU_ENO_MIG)
                        api_fail_code(resp, r, "GPU %u (%s) does not support MIG", g->index,
                                      g->model->id);
                else if (r == VGPU_EMODE)
                        api_fail_code(resp, r, "GPU %u (%s) has no type that allows mixed sizes",
                                      g->index, g->model->id);
                else if (r == VGPU_ESCHED_MIX)
                        api_fail_code(
                                resp, r,
                                "GPU %u's scheduler is fixed share, which needs one size; "
                                "change it first (vgpuctl sched --gpu %u --policy equal-share)",
                                g->index, g->index);
                else
                        api_fail_code(resp, r, "cannot change the mode of GPU %u: %s", g->index,
                                      vgpu_strerror(r));
        } else {
                api_reply(resp, 200, api_gpu_json(api->mgr, g));
        }
        json_decref(o);
}

static json_t *sched_json(struct manager *m, const struct mgr_gpu *g)
{
        enum sched_policy p;
        uint32_t ms;
        uint64_t clock, idle;

        scheduler_get(m->sched, g->index, &p, &ms, &clock, &idle);
        return json_pack("{s:i, s:s, s:i, s:I, s:I}", "gpu", (int)g->index, "policy",
                         sched_policy_name(p), "timeslice_ms", (int)ms, "clock_ns",
                         (json_int_t)clock, "idle_ns", (json_int_t)idle);
}

json_t *api_sched_json_full(struct manager *m, const struct mgr_gpu *g)
{
        json_t *o = sched_json(m, g);
        enum sched_policy p;
        uint32_t ms;
        uint64_t clock, idle;
        char hex[16];

        scheduler_get(m->sched, g->index, &p, &ms, &clock, &idle);
        snprintf(hex, sizeof(hex), "0x%08x", sched_rmpvmrl_encode(p, ms));
        json_object_set_new(o, "rmpvmrl", json_string(hex));
        return o;
}

void api_put_sched(struct api *api, const struct http_request *req, struct mgr_gpu *g,
                   struct http_response *resp)
{
        static const char *const fields[] = {"policy", "timeslice_ms", NULL};
        json_t *o = api_body_object(req, resp, fields);
        enum sched_policy p, cur;
        uint32_t ms = 0, cur_ms;
        uint64_t clock, idle;
        json_t *jp, *jm;
        int r;

        if (!o)
                return;
        scheduler_get(api->mgr->sched, g->index, &cur, &cur_ms, &clock, &idle);
        p = cur;
        ms = cur_ms;
        jp = json_object_get(o, "policy");
        jm = json_object_get(o, "timeslice_ms");
        if (jp && (!json_is_string(jp) || sched_policy_parse(json_string_value(jp), &p) < 0)) {
                api_fail(resp, 400, "BAD_REQUEST",
                         "'policy' must be \"best-effort\", \"equal-share\" or \"fixed-share\"");
        } else if (jm && (!json_is_integer(jm) || json_integer_value(jm) < 0 ||
                          json_integer_value(jm) > 100000)) {
                api_fail(resp, 400, "BAD_REQUEST",
                         "'timeslice_ms' must be 1..30 (larger values are capped at 30), or 0 for "
                         "the default of the GPU's types");
        } else if ((r = manager_sched_set_locked(api->mgr, g, p,
                                                 jm ? (uint32_t)json_integer_value(jm) : ms)) < 0) {
                if (r == VGPU_ESCHED_MIX)
                        api_fail_code(resp, r,
                                      "GPU %u is in heterogeneous mode (mixed sizes): fixed share "
                                      "needs one size; use best-effort or equal-share",
                                      g->index);
                else
                        api_fail_code(resp, r, "cannot set GPU %u's scheduler: %s", g->index,
                                      vgpu_strerror(r));
        } else {
                api_reply(resp, 200, api_sched_json_full(api->mgr, g));
        }
        json_decref(o);
}

static json_t *placements_json(const struct mgr_gpu *g, const struct vgpu_type *t)
{
        struct layout_slot slots[CATALOG_MAX_VGPUS_PER_GPU * 2];
        size_t n = layout_slots(&g->layout, t, slots, sizeof(slots) / sizeof(slots[0]));
        json_t *arr = json_array();

        for (size_t i = 0; i < n && i < sizeof(slots) / sizeof(slots[0]); i++)
                json_array_append_new(
                        arr, json_pack("{s:o, s:i}", "gpu_instance",
                                       slots[i].gi ? json_integer(slots[i].gi) : json_null(),
                                       "placement", (int)slots[i].placement));
        return arr;
}

void api_get_types(struct api *api, const struct http_request *req, struct http_response *resp)
{
        const char *gid = req->query(req, "gpu");
        const char *creatable = req->query(req, "creatable");
        bool only = false;
        struct mgr_gpu *g;
        json_t *arr;

        if (creatable && strcmp(creatable, "1") != 0 && strcmp(creatable, "0") != 0) {
                api_fail(resp, 400, "BAD_REQUEST", "'creatable' must be 0 or 1");
                return;
        }
        only = creatable && creatable[0] == '1';
        g = api_find_gpu(api, gid ? gid : "0", resp);
        if (!g)
                return;
        arr = json_array();
        for (size_t i = 0; i < g->model->n_types; i++) {
                const struct vgpu_type *t = &g->model->types[i];
                bool can = layout_creatable(&g->layout, t);
                json_t *o;

                if (only && !can)
                        continue;
                o = catalog_type_json(g->model, t);
                json_object_set_new(o, "creatable", json_boolean(can));
                json_object_set_new(o, "placements", placements_json(g, t));
                json_array_append_new(arr, o);
        }
        api_reply(resp, 200,
                  json_pack("{s:i, s:s, s:s, s:o}", "gpu", (int)g->index, "model", g->model->id,
                            "mode", layout_mode_name(g->layout.mode), "types", arr));
}

void api_get_profiles(struct api *api, struct mgr_gpu *g, struct http_response *resp)
{
        json_t *arr = json_array();
        struct layout l = g->layout;

        /* Free counts are those of MIG mode, which the GPU may not be in yet. */
        if (l.mode != LAYOUT_MIG && l.n_vgpus == 0)
                layout_set_mode(&l, LAYOUT_MIG);
        for (size_t i = 0; i < g->model->n_mig_profiles; i++)
                json_array_append_new(arr, catalog_profile_json(&l, &g->model->mig_profiles[i]));
        (void)api;
        api_reply(resp, 200, json_pack("{s:i, s:o}", "gpu", (int)g->index, "profiles", arr));
}

static void gi_refused(struct http_response *resp, int r, const struct mgr_gpu *g,
                       const char *profile, int64_t start, const char *why)
{
        switch (r) {
        case VGPU_EMIG_ADMIN:
                api_fail_code(resp, r,
                              "GPU %u is a real GPU: vgpud creates GPU instances on it only when "
                              "started with --mig-admin (or an operator runs nvidia-smi mig -cgi, "
                              "and vgpud finds the instance when it starts)",
                              g->index);
                break;
        case VGPU_EMIG_OFF:
                api_fail_code(resp, r,
                              "MIG mode is off on GPU %u; turning it on is an operator's step "
                              "(nvidia-smi -i %u -mig 1, which resets the GPU), then restart vgpud",
                              g->index, g->index);
                break;
        case VGPU_ENVML:
                api_fail_code(resp, r, "%s", why[0] ? why : vgpu_strerror(r));
                break;
        case VGPU_EMODE:
                api_fail_code(resp, r,
                              "GPU %u is in %s mode; switch it to MIG with `vgpuctl mode "
                              "--gpu %u mig`",
                              g->index, layout_mode_name(g->layout.mode), g->index);
                break;
        case VGPU_EPLACEMENT:
                api_fail_code(resp, r,
                              "start slice %" PRId64 " is not a valid placement for %s; "
                              "`vgpuctl mig -lgipp` lists them",
                              start, profile);
                break;
        case VGPU_EPLACEMENT_BUSY:
                api_fail_code(resp, r,
                              "start slice %" PRId64 " for %s overlaps an existing GPU "
                              "instance",
                              start, profile);
                break;
        case VGPU_EMAX_INSTANCES:
                api_fail_code(resp, r, "GPU %u already has the most %s instances it can", g->index,
                              profile);
                break;
        case VGPU_ENO_SPACE:
                api_fail_code(resp, r,
                              "no room for a %s instance on GPU %u; destroy a GPU instance "
                              "first",
                              profile, g->index);
                break;
        default:
                api_fail_code(resp, r, "cannot create a %s instance on GPU %u: %s", profile,
                              g->index, vgpu_strerror(r));
        }
}

void api_post_gi(struct api *api, const struct http_request *req, struct mgr_gpu *g,
                 struct http_response *resp)
{
        static const char *const fields[] = {"profile", "start", NULL};
        json_t *o = api_body_object(req, resp, fields), *pv;
        const struct mig_profile *p = NULL;
        struct layout_gi gi;
        char pname[32], why[512];
        int64_t start;
        int r;

        if (!o)
                return;
        pv = json_object_get(o, "profile");
        if (json_is_string(pv)) {
                p = catalog_find_profile_name(g->model, json_string_value(pv));
        } else if (json_is_integer(pv) && json_integer_value(pv) >= 0 &&
                   json_integer_value(pv) <= UINT32_MAX) {
                p = catalog_find_profile(g->model, (uint32_t)json_integer_value(pv));
        } else {
                api_fail(resp, 400, "BAD_REQUEST",
                         "'profile' is required: a profile name (\"3g.40gb\") or ID (9)");
                goto out;
        }
        if (!api_opt_uint(o, "start", 31, &start, resp))
                goto out;
        if (!p) {
                if (!g->model->mig_mem_slices)
                        api_fail_code(resp, VGPU_ENO_MIG, "GPU %u (%s) does not support MIG",
                                      g->index, g->model->id);
                else
                        api_fail_code(resp, VGPU_EUNKNOWN_PROFILE,
                                      "%s has no GPU instance profile "
                                      "%s; `vgpuctl mig -lgip` lists them",
                                      g->model->id,
                                      json_is_string(pv) ? json_string_value(pv) : "with that ID");
                goto out;
        }
        snprintf(pname, sizeof(pname), "%s", p->name);
        r = manager_gi_create_locked(api->mgr, g, p, start, &gi, why, sizeof(why));
        if (r < 0) {
                gi_refused(resp, r, g, pname, start, why);
                goto out;
        }
        api_reply(resp, 201, api_gi_json(api->mgr, g, layout_find_gi(&g->layout, gi.id)));
out:
        json_decref(o);
}

static bool parse_gi_id(const char *s, uint32_t *ret)
{
        char *end;
        unsigned long v;

        if (!s || !*s || *s == '-' || *s == '+')
                return false;
        v = strtoul(s, &end, 10);
        if (*end || v == 0 || v > UINT32_MAX)
                return false;
        *ret = (uint32_t)v;
        return true;
}

void api_gi_one(struct api *api, const struct http_request *req, struct mgr_gpu *g, const char *id,
                struct http_response *resp)
{
        const struct layout_gi *gi;
        char why[512];
        uint32_t n;
        int r;

        if (!parse_gi_id(id, &n) || !(gi = layout_find_gi(&g->layout, n))) {
                api_fail_code(resp, VGPU_ENO_GI,
                              "GPU %u has no GPU instance '%s'; `vgpuctl mig "
                              "-lgi` lists them",
                              g->index, id);
                return;
        }
        if (strcmp(req->method, "GET") == 0) {
                api_reply(resp, 200, api_gi_json(api->mgr, g, gi));
                return;
        }
        r = manager_gi_destroy_locked(api->mgr, g, n, why, sizeof(why));
        if (r == VGPU_EMIG_ADMIN)
                api_fail_code(resp, r,
                              "GPU %u is a real GPU: vgpud destroys GPU instances on it only when "
                              "started with --mig-admin",
                              g->index);
        else if (r == VGPU_ENVML)
                api_fail_code(resp, r, "%s", why);
        else if (r == VGPU_EGI_BUSY)
                api_fail_code(resp, r, "GPU instance %u still holds vGPUs; destroy them first", n);
        else if (r < 0)
                api_fail_code(resp, r, "cannot destroy GPU instance %u: %s", n, vgpu_strerror(r));
        else
                api_reply(resp, 204, NULL);
}
