// SPDX-License-Identifier: Apache-2.0
// The control API: routing, request validation, JSON views of GPUs, GPU instances and vGPUs, and
// the table that maps error codes to HTTP statuses and to messages that say what to do.
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/catalog_json.h"
#include "manager/api.h"
#include "manager/licensing.h"
#include "backend/cuda/nvml.h"
#include "manager/metrics.h"
#include "manager/migdev.h"
#include "manager/migrate_peer.h"
#include "vgpu/errors.h"

#define MAX_SEGS 8

/* ---- responses ---------------------------------------------------------------------------- */

static void reply(struct http_response *resp, int status, json_t *body)
{
        resp->status = status;
        resp->json = body;
}

static void fail(struct http_response *resp, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void fail(struct http_response *resp, int status, const char *code, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        json_decref(resp->json);
        reply(resp, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
}

/* The one map from an error code to an HTTP status. */
static int status_of(int err)
{
        switch (err) {
        case -EINVAL:
                return 400;
        case -EACCES:
        case -EPERM:
        case VGPU_EMIG_ADMIN:
                return 403;
        case VGPU_ENO_VGPU:
        case VGPU_ENO_GI:
        case -ENOENT:
        case -ENODEV:
                return 404;
        case VGPU_ETYPE_MIX:
        case VGPU_ESCHED_MIX:
        case VGPU_EPLACEMENT_BUSY:
        case VGPU_EGPU_BUSY:
        case VGPU_EGI_BUSY:
        case VGPU_EEXIST:
        case VGPU_EGUESTS:
        case VGPU_ESUSPENDED:
        case VGPU_ENOT_SUSPENDED:
        case VGPU_ENOT_RUNNING:
        case VGPU_ESAME_GPU:
        case VGPU_EBUSY:
        case VGPU_EMIG_OFF:
        case VGPU_EMIG_DEVICE:
                return 409;
        case VGPU_EPEER:
        case VGPU_ENVML:
                return 502;
        case VGPU_EUNKNOWN_MODEL:
        case VGPU_EUNKNOWN_TYPE:
        case VGPU_ETYPE_MODEL:
        case VGPU_EMODE:
        case VGPU_EMAX_INSTANCES:
        case VGPU_ENO_SPACE:
        case VGPU_EPLACEMENT:
        case VGPU_ENO_MIG:
        case VGPU_EGI_PROFILE:
        case VGPU_EUNKNOWN_PROFILE:
                return 422;
        case VGPU_EENGINE:
                return 503;
        default:
                return 500;
        }
}

static void fail_code(struct http_response *resp, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void fail_code(struct http_response *resp, int err, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fail(resp, status_of(err), vgpu_error_name(err), "%s", msg);
}

/* ---- JSON views --------------------------------------------------------------------------- */

static json_t *gi_json(const struct manager *m, const struct mgr_gpu *g, const struct layout_gi *gi)
{
        json_t *vgpus = json_array();

        for (size_t i = 0; i < m->n_vgpus; i++) {
                if (m->vgpus[i].gpu == g->index && m->vgpus[i].place.gi == gi->id)
                        json_array_append_new(vgpus, json_string(m->vgpus[i].uuid));
        }
        json_t *o =
                json_pack("{s:i, s:i, s:i, s:s, s:i, s:i, s:b, s:o}", "id", (int)gi->id, "gpu",
                          (int)g->index, "profile_id", (int)gi->profile->id, "profile",
                          gi->profile->name, "start", (int)gi->start, "size",
                          (int)gi->profile->mem_slices, "implicit", gi->implicit, "vgpus", vgpus);

        /* a real GPU's: the MIG device its vGPUs run on (null: it has no compute instance) */
        if (o && g->mig_hw) {
                const char *dev = migdev_uuid(g, gi->id);

                json_object_set_new(o, "mig_device", dev ? json_string(dev) : json_null());
        }
        return o;
}

static json_t *gpu_json(const struct manager *m, const struct mgr_gpu *g)
{
        uint64_t total = catalog_model_fb_bytes(g->model), used = layout_fb_used(&g->layout);
        json_t *vgpus = json_array(), *gis = json_array();

        for (size_t i = 0; i < m->n_vgpus; i++) {
                if (m->vgpus[i].gpu == g->index)
                        json_array_append_new(vgpus, json_string(m->vgpus[i].uuid));
        }
        for (size_t i = 0; i < g->layout.n_gis; i++)
                json_array_append_new(gis, gi_json(m, g, &g->layout.gis[i]));
        return json_pack(
                "{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "id", (int)g->index,
                "uuid", g->uuid, "model", g->model->id, "name", g->model->name, "pci_bus_id",
                g->pci_bus_id, "backend", m->backend, "mode", layout_mode_name(g->layout.mode),
                "fb_total_mib", (json_int_t)(total / CATALOG_MIB), "fb_used_mib",
                (json_int_t)(used / CATALOG_MIB), "fb_free_mib",
                (json_int_t)((total - used) / CATALOG_MIB), "vgpus", vgpus, "gpu_instances", gis);
}

static json_t *vgpu_json(const struct manager *m, const struct mgr_vgpu *v, int guests,
                         int64_t fb_used)
{
        const struct mgr_gpu *g = &m->gpus[v->gpu];
        char guest[256];
        json_t *o;

        manager_guest_socket(m, v, guest, sizeof(guest));
        o = json_pack("{s:s, s:i, s:s, s:s, s:i, s:s, s:i, s:o, s:I, s:I, s:I, s:I, s:I, s:s, "
                      "s:i, s:i, s:s}",
                      "uuid", v->uuid, "gpu", (int)v->gpu, "gpu_uuid", g->uuid, "type",
                      v->type->name, "type_id", (int)v->type->id, "class",
                      v->type->cls == CATALOG_MIG ? "mig-backed" : "time-sliced", "placement",
                      (int)v->place.placement, "gpu_instance",
                      v->place.gi ? json_integer(v->place.gi) : json_null(), "device_address",
                      (json_int_t)v->device_address, "fb_offset", (json_int_t)v->place.fb_offset,
                      "fb_size", (json_int_t)v->fb_bytes, "fb_mib",
                      (json_int_t)(v->fb_bytes / CATALOG_MIB), "owner_uid",
                      (json_int_t)v->owner_uid, "state", manager_state_name(v->state), "engine_pid",
                      (int)v->engine_pid, "guests", guests, "created_at", v->created_at);
        if (o) {
                struct sched_stats st;
                char lic[96] = "Not Required (licensing off)";
                int metric = -1;

                if (m->lic && licensing_status(m->lic, v->uuid, lic, sizeof(lic), &metric) < 0)
                        snprintf(lic, sizeof(lic), "N/A (no guest attached)");
                json_object_set_new(o, "license_status", json_string(lic));
                json_object_set_new(o, "licensed",
                                    metric < 0 ? json_null() : json_boolean(metric == 1));

                if (m->sched && scheduler_stats(m->sched, v->gpu, v->handle, &st) == 0)
                        json_object_set_new(o, "scheduler",
                                            json_pack("{s:I, s:I, s:I, s:I, s:I, s:f}", "slices",
                                                      (json_int_t)st.slices, "overruns",
                                                      (json_int_t)st.overruns, "charged_ns",
                                                      (json_int_t)st.charged_ns, "idle_ns",
                                                      (json_int_t)st.idle_ns, "clock_ns",
                                                      (json_int_t)st.clock_ns, "util_pct",
                                                      st.util_pct));
                json_object_set_new(o, "guest_socket", json_string(guest));
                json_object_set_new(o, "busy", json_boolean(v->busy));
                json_object_set_new(o, "fb_used_mib",
                                    fb_used >= 0 ? json_integer(fb_used / (int64_t)CATALOG_MIB)
                                                 : json_null());
        }
        return o;
}

/* ---- request parsing ---------------------------------------------------------------------- */

/* Parse the body as a JSON object whose keys are all in allowed (NULL-terminated). */
static json_t *body_object(const struct http_request *req, struct http_response *resp,
                           const char *const *allowed)
{
        json_error_t err;
        json_t *o;
        const char *key;
        json_t *val;

        if (!req->body_len) {
                fail(resp, 400, "BAD_REQUEST", "a JSON object body is required");
                return NULL;
        }
        o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
        if (!o) {
                fail(resp, 400, "BAD_REQUEST", "malformed JSON at line %d column %d: %s", err.line,
                     err.column, err.text);
                return NULL;
        }
        if (!json_is_object(o)) {
                json_decref(o);
                fail(resp, 400, "BAD_REQUEST", "the body must be a JSON object");
                return NULL;
        }
        json_object_foreach(o, key, val)
        {
                bool ok = false;

                for (const char *const *a = allowed; *a && !ok; a++)
                        ok = strcmp(*a, key) == 0;
                if (!ok) {
                        fail(resp, 400, "BAD_REQUEST", "unknown field '%s'", key);
                        json_decref(o);
                        return NULL;
                }
        }
        return o;
}

/* An optional non-negative integer field in [0, max]; -1 when absent. False after a reply. */
static bool opt_uint(json_t *o, const char *key, int64_t max, int64_t *ret,
                     struct http_response *resp)
{
        json_t *v = json_object_get(o, key);

        *ret = -1;
        if (!v || json_is_null(v))
                return true;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
                fail(resp, 400, "BAD_REQUEST", "'%s' must be an integer from 0 to %" PRId64, key,
                     max);
                return false;
        }
        *ret = json_integer_value(v);
        return true;
}

static bool is_admin(const struct api *api, const struct http_request *req)
{
        return req->have_cred && http_peer_in_group(req->uid, req->gid, api->admin_gid);
}

/* A GPU named by a path segment, a query value or a JSON value (index or UUID). */
static struct mgr_gpu *find_gpu(struct api *api, const char *id, struct http_response *resp)
{
        struct mgr_gpu *g = manager_gpu_locked(api->mgr, id);

        if (!g)
                fail(resp, 404, "NOT_FOUND", "no GPU '%s'; `vgpuctl gpus` lists them (0 to %zu)",
                     id ? id : "", api->mgr->n_gpus - 1);
        return g;
}

/* ---- handlers ----------------------------------------------------------------------------- */

static void get_gpus(struct api *api, struct http_response *resp)
{
        json_t *arr = json_array();

        for (size_t i = 0; i < api->mgr->n_gpus; i++)
                json_array_append_new(arr, gpu_json(api->mgr, &api->mgr->gpus[i]));
        reply(resp, 200, json_pack("{s:o}", "gpus", arr));
}

static void put_mode(struct api *api, const struct http_request *req, struct mgr_gpu *g,
                     struct http_response *resp)
{
        static const char *const fields[] = {"mode", NULL};
        json_t *o = body_object(req, resp, fields);
        enum layout_mode mode;
        const char *name;
        int r;

        if (!o)
                return;
        name = json_string_value(json_object_get(o, "mode"));
        if (!name || layout_mode_parse(name, &mode) < 0) {
                fail(resp, 400, "BAD_REQUEST",
                     "'mode' must be \"homogeneous\", \"heterogeneous\" or \"mig\"");
        } else if ((r = manager_set_mode_locked(api->mgr, g, mode)) < 0) {
                if (r == VGPU_EMIG_OFF)
                        fail_code(resp, r,
                                  "MIG mode is off on GPU %u, and vgpud never turns it on; an "
                                  "operator does (nvidia-smi -i %u -mig 1, which resets the "
                                  "GPU), then restarts vgpud",
                                  g->index, g->index);
                else if (r == VGPU_EMODE && g->mig_hw)
                        fail_code(resp, r,
                                  "GPU %u is in MIG mode, and vgpud never turns it off; "
                                  "time-sliced vGPUs go into its GPU instances",
                                  g->index);
                else if (r == VGPU_EGPU_BUSY)
                        fail_code(resp, r,
                                  "GPU %u still has vGPUs or GPU instances; destroy them "
                                  "before changing its mode",
                                  g->index);
                else if (r == VGPU_ENO_MIG)
                        fail_code(resp, r, "GPU %u (%s) does not support MIG", g->index,
                                  g->model->id);
                else if (r == VGPU_EMODE)
                        fail_code(resp, r, "GPU %u (%s) has no type that allows mixed sizes",
                                  g->index, g->model->id);
                else if (r == VGPU_ESCHED_MIX)
                        fail_code(resp, r,
                                  "GPU %u's scheduler is fixed share, which needs one size; "
                                  "change it first (vgpuctl sched --gpu %u --policy equal-share)",
                                  g->index, g->index);
                else
                        fail_code(resp, r, "cannot change the mode of GPU %u: %s", g->index,
                                  vgpu_strerror(r));
        } else {
                reply(resp, 200, gpu_json(api->mgr, g));
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

static json_t *sched_json_full(struct manager *m, const struct mgr_gpu *g)
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

static void put_sched(struct api *api, const struct http_request *req, struct mgr_gpu *g,
                      struct http_response *resp)
{
        static const char *const fields[] = {"policy", "timeslice_ms", NULL};
        json_t *o = body_object(req, resp, fields);
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
                fail(resp, 400, "BAD_REQUEST",
                     "'policy' must be \"best-effort\", \"equal-share\" or \"fixed-share\"");
        } else if (jm && (!json_is_integer(jm) || json_integer_value(jm) < 0 ||
                          json_integer_value(jm) > 100000)) {
                fail(resp, 400, "BAD_REQUEST",
                     "'timeslice_ms' must be 1..30 (larger values are capped at 30), or 0 for "
                     "the default of the GPU's types");
        } else if ((r = manager_sched_set_locked(api->mgr, g, p,
                                                 jm ? (uint32_t)json_integer_value(jm) : ms)) < 0) {
                if (r == VGPU_ESCHED_MIX)
                        fail_code(resp, r,
                                  "GPU %u is in heterogeneous mode (mixed sizes): fixed share "
                                  "needs one size; use best-effort or equal-share",
                                  g->index);
                else
                        fail_code(resp, r, "cannot set GPU %u's scheduler: %s", g->index,
                                  vgpu_strerror(r));
        } else {
                reply(resp, 200, sched_json_full(api->mgr, g));
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

static void get_types(struct api *api, const struct http_request *req, struct http_response *resp)
{
        const char *gid = req->query(req, "gpu");
        const char *creatable = req->query(req, "creatable");
        bool only = false;
        struct mgr_gpu *g;
        json_t *arr;

        if (creatable && strcmp(creatable, "1") != 0 && strcmp(creatable, "0") != 0) {
                fail(resp, 400, "BAD_REQUEST", "'creatable' must be 0 or 1");
                return;
        }
        only = creatable && creatable[0] == '1';
        g = find_gpu(api, gid ? gid : "0", resp);
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
        reply(resp, 200,
              json_pack("{s:i, s:s, s:s, s:o}", "gpu", (int)g->index, "model", g->model->id, "mode",
                        layout_mode_name(g->layout.mode), "types", arr));
}

static void get_profiles(struct api *api, struct mgr_gpu *g, struct http_response *resp)
{
        json_t *arr = json_array();
        struct layout l = g->layout;

        /* Free counts are those of MIG mode, which the GPU may not be in yet. */
        if (l.mode != LAYOUT_MIG && l.n_vgpus == 0)
                layout_set_mode(&l, LAYOUT_MIG);
        for (size_t i = 0; i < g->model->n_mig_profiles; i++)
                json_array_append_new(arr, catalog_profile_json(&l, &g->model->mig_profiles[i]));
        (void)api;
        reply(resp, 200, json_pack("{s:i, s:o}", "gpu", (int)g->index, "profiles", arr));
}

static void gi_refused(struct http_response *resp, int r, const struct mgr_gpu *g,
                       const char *profile, int64_t start, const char *why)
{
        switch (r) {
        case VGPU_EMIG_ADMIN:
                fail_code(resp, r,
                          "GPU %u is a real GPU: vgpud creates GPU instances on it only when "
                          "started with --mig-admin (or an operator runs nvidia-smi mig -cgi, "
                          "and vgpud finds the instance when it starts)",
                          g->index);
                break;
        case VGPU_EMIG_OFF:
                fail_code(resp, r,
                          "MIG mode is off on GPU %u; turning it on is an operator's step "
                          "(nvidia-smi -i %u -mig 1, which resets the GPU), then restart vgpud",
                          g->index, g->index);
                break;
        case VGPU_ENVML:
                fail_code(resp, r, "%s", why[0] ? why : vgpu_strerror(r));
                break;
        case VGPU_EMODE:
                fail_code(resp, r,
                          "GPU %u is in %s mode; switch it to MIG with `vgpuctl mode "
                          "--gpu %u mig`",
                          g->index, layout_mode_name(g->layout.mode), g->index);
                break;
        case VGPU_EPLACEMENT:
                fail_code(resp, r,
                          "start slice %" PRId64 " is not a valid placement for %s; "
                          "`vgpuctl mig -lgipp` lists them",
                          start, profile);
                break;
        case VGPU_EPLACEMENT_BUSY:
                fail_code(resp, r,
                          "start slice %" PRId64 " for %s overlaps an existing GPU "
                          "instance",
                          start, profile);
                break;
        case VGPU_EMAX_INSTANCES:
                fail_code(resp, r, "GPU %u already has the most %s instances it can", g->index,
                          profile);
                break;
        case VGPU_ENO_SPACE:
                fail_code(resp, r,
                          "no room for a %s instance on GPU %u; destroy a GPU instance "
                          "first",
                          profile, g->index);
                break;
        default:
                fail_code(resp, r, "cannot create a %s instance on GPU %u: %s", profile, g->index,
                          vgpu_strerror(r));
        }
}

static void post_gi(struct api *api, const struct http_request *req, struct mgr_gpu *g,
                    struct http_response *resp)
{
        static const char *const fields[] = {"profile", "start", NULL};
        json_t *o = body_object(req, resp, fields), *pv;
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
                fail(resp, 400, "BAD_REQUEST",
                     "'profile' is required: a profile name (\"3g.40gb\") or ID (9)");
                goto out;
        }
        if (!opt_uint(o, "start", 31, &start, resp))
                goto out;
        if (!p) {
                if (!g->model->mig_mem_slices)
                        fail_code(resp, VGPU_ENO_MIG, "GPU %u (%s) does not support MIG", g->index,
                                  g->model->id);
                else
                        fail_code(resp, VGPU_EUNKNOWN_PROFILE,
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
        reply(resp, 201, gi_json(api->mgr, g, layout_find_gi(&g->layout, gi.id)));
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

static void gi_one(struct api *api, const struct http_request *req, struct mgr_gpu *g,
                   const char *id, struct http_response *resp)
{
        const struct layout_gi *gi;
        char why[512];
        uint32_t n;
        int r;

        if (!parse_gi_id(id, &n) || !(gi = layout_find_gi(&g->layout, n))) {
                fail_code(resp, VGPU_ENO_GI,
                          "GPU %u has no GPU instance '%s'; `vgpuctl mig "
                          "-lgi` lists them",
                          g->index, id);
                return;
        }
        if (strcmp(req->method, "GET") == 0) {
                reply(resp, 200, gi_json(api->mgr, g, gi));
                return;
        }
        r = manager_gi_destroy_locked(api->mgr, g, n, why, sizeof(why));
        if (r == VGPU_EMIG_ADMIN)
                fail_code(resp, r,
                          "GPU %u is a real GPU: vgpud destroys GPU instances on it only when "
                          "started with --mig-admin",
                          g->index);
        else if (r == VGPU_ENVML)
                fail_code(resp, r, "%s", why);
        else if (r == VGPU_EGI_BUSY)
                fail_code(resp, r, "GPU instance %u still holds vGPUs; destroy them first", n);
        else if (r < 0)
                fail_code(resp, r, "cannot destroy GPU instance %u: %s", n, vgpu_strerror(r));
        else
                reply(resp, 204, NULL);
}

static void create_refused(struct http_response *resp, int r, const struct mgr_gpu *g,
                           const struct vgpu_type *t, const struct layout_req *lr,
                           const char *engine_err)
{
        const char *tn = t->name;
        unsigned gi = g->index;

        switch (r) {
        case VGPU_EMODE:
                if (t->cls == CATALOG_MIG)
                        fail_code(resp, r,
                                  "%s is MIG-backed and GPU %u is in %s mode; switch it "
                                  "with `vgpuctl mode --gpu %u mig` while it is empty",
                                  tn, gi, layout_mode_name(g->layout.mode), gi);
                else
                        fail_code(resp, r, "%s is not available in %s mode on GPU %u", tn,
                                  layout_mode_name(g->layout.mode), gi);
                break;
        case VGPU_ETYPE_MIX:
                if (g->layout.mode == LAYOUT_MIG)
                        fail_code(resp, r,
                                  "GPU instance %u holds vGPUs of another type; one "
                                  "type per GPU instance",
                                  lr->gi);
                else
                        fail_code(resp, r,
                                  "GPU %u is in homogeneous mode and holds %s vGPUs; "
                                  "create %s, or empty the GPU and switch it to heterogeneous "
                                  "mode",
                                  gi, g->layout.vgpus[0].type->name, g->layout.vgpus[0].type->name);
                break;
        case VGPU_EMAX_INSTANCES:
                fail_code(resp, r, "GPU %u%s already holds the most %s vGPUs it can", gi,
                          lr->gi ? " (or that GPU instance)" : "", tn);
                break;
        case VGPU_ENO_SPACE:
                fail_code(resp, r,
                          "no free framebuffer placement for %s on GPU %u; destroy a "
                          "vGPU or use another GPU",
                          tn, gi);
                break;
        case VGPU_EPLACEMENT:
                fail_code(resp, r,
                          "placement %" PRId64 " is not valid for %s on GPU %u; "
                          "`vgpuctl types -c --gpu %u --json` lists the free ones",
                          lr->placement, tn, gi, gi);
                break;
        case VGPU_EPLACEMENT_BUSY:
                fail_code(resp, r,
                          "placement %" PRId64 " for %s on GPU %u overlaps a vGPU or "
                          "GPU instance",
                          lr->placement, tn, gi);
                break;
        case VGPU_ENO_GI:
                if (lr->gi)
                        fail_code(resp, r, "GPU %u has no GPU instance %u", gi, lr->gi);
                else
                        fail(resp, 422, "VGPU_ENO_GI",
                             "GPU %u has no GPU instance to hold %s; create one with "
                             "`vgpuctl mig --gpu %u -cgi PROFILE`",
                             gi, tn, gi);
                break;
        case VGPU_EGI_BUSY:
                fail_code(resp, r, "GPU instance %u already holds %s", lr->gi,
                          t->cls == CATALOG_MIG ? "a vGPU" : "a MIG-backed vGPU");
                break;
        case VGPU_EGI_PROFILE:
                fail_code(resp, r, "%s does not fit GPU instance %u's profile", tn, lr->gi);
                break;
        case VGPU_EEXIST:
                fail_code(resp, r, "a vGPU with that UUID already exists");
                break;
        case -EINVAL:
                fail(resp, 400, "BAD_REQUEST",
                     "'uuid' must be a UUID like "
                     "0b6d4f3e-2c1a-4f5e-9d8c-7b6a5f4e3d2c");
                break;
        case VGPU_EENGINE:
                fail_code(resp, r, "the vGPU's engine did not start: %s", engine_err);
                break;
        case VGPU_EMIG_ADMIN:
        case VGPU_EMIG_DEVICE:
        case VGPU_ENVML:
                fail_code(resp, r, "%s", engine_err[0] ? engine_err : vgpu_strerror(r));
                break;
        default:
                fail_code(resp, r, "cannot create %s on GPU %u: %s", tn, gi, vgpu_strerror(r));
        }
}

static void post_vgpu(struct api *api, const struct http_request *req, struct http_response *resp)
{
        static const char *const fields[] = {"gpu",  "type",      "placement", "gpu_instance",
                                             "uuid", "owner_uid", NULL};
        json_t *o = body_object(req, resp, fields), *gv, *tv, *uv;
        struct mgr_create c = {0};
        struct mgr_vgpu *v;
        char gid[80] = "0", err[256];
        int64_t placement, gi, owner;
        int r;

        if (!o)
                return;
        gv = json_object_get(o, "gpu");
        tv = json_object_get(o, "type");
        uv = json_object_get(o, "uuid");
        if (json_is_integer(gv) && json_integer_value(gv) >= 0)
                snprintf(gid, sizeof(gid), "%" JSON_INTEGER_FORMAT, json_integer_value(gv));
        else if (json_is_string(gv) && json_string_length(gv) < sizeof(gid))
                snprintf(gid, sizeof(gid), "%s", json_string_value(gv));
        else if (gv) {
                fail(resp, 400, "BAD_REQUEST", "'gpu' must be a GPU index or UUID");
                goto out;
        }
        if (!json_is_string(tv)) {
                fail(resp, 400, "BAD_REQUEST",
                     "'type' is required: a vGPU type name such as "
                     "\"H100-20C\"");
                goto out;
        }
        if (uv && !json_is_string(uv)) {
                fail(resp, 400, "BAD_REQUEST", "'uuid' must be a string");
                goto out;
        }
        if (!opt_uint(o, "placement", INT32_MAX, &placement, resp) ||
            !opt_uint(o, "gpu_instance", UINT32_MAX, &gi, resp) ||
            !opt_uint(o, "owner_uid", (int64_t)UINT32_MAX - 1, &owner, resp))
                goto out;
        c.gpu = find_gpu(api, gid, resp);
        if (!c.gpu)
                goto out;
        c.type = catalog_find_type(c.gpu->model, json_string_value(tv));
        if (!c.type) {
                fail_code(resp, VGPU_EUNKNOWN_TYPE,
                          "GPU %u (%s) has no vGPU type '%s'; "
                          "`vgpuctl types --gpu %u` lists them",
                          c.gpu->index, c.gpu->model->id, json_string_value(tv), c.gpu->index);
                goto out;
        }
        c.req = (struct layout_req){.gi = gi > 0 ? (uint32_t)gi : 0, .placement = placement};
        c.uuid = uv ? json_string_value(uv) : NULL;
        c.owner_uid = owner >= 0 ? owner : (int64_t)req->uid;
        r = manager_create_locked(api->mgr, &c, &v, err, sizeof(err));
        if (r < 0) {
                create_refused(resp, r, c.gpu, c.type, &c.req, err);
                goto out;
        }
        reply(resp, 201, vgpu_json(api->mgr, v, 0, 0));
out:
        json_decref(o);
}

/* A vGPU with what its engine says now: guests attached and framebuffer in use. */
static json_t *vgpu_json_live(struct api *api, const struct mgr_vgpu *v)
{
        int64_t used;
        int guests;

        manager_vgpu_usage_locked(api->mgr, v, &guests, &used);
        return vgpu_json(api->mgr, v, guests, used);
}

static void get_vgpus(struct api *api, const struct http_request *req, struct http_response *resp)
{
        const char *gid = req->query(req, "gpu");
        struct mgr_gpu *g = NULL;
        json_t *arr;

        if (gid && !(g = find_gpu(api, gid, resp)))
                return;
        arr = json_array();
        for (size_t i = 0; i < api->mgr->n_vgpus; i++) {
                struct mgr_vgpu *v = &api->mgr->vgpus[i];

                if (!g || v->gpu == g->index)
                        json_array_append_new(arr, vgpu_json_live(api, v));
        }
        reply(resp, 200, json_pack("{s:o}", "vgpus", arr));
}

static void vgpu_one(struct api *api, const struct http_request *req, const char *uuid,
                     struct http_response *resp)
{
        struct mgr_vgpu *v = manager_vgpu_locked(api->mgr, uuid);
        const char *force = req->query(req, "force");
        int r;

        if (!v) {
                fail_code(resp, VGPU_ENO_VGPU, "no vGPU '%s'; `vgpuctl list` shows them", uuid);
                return;
        }
        if (strcmp(req->method, "GET") == 0) {
                reply(resp, 200, vgpu_json_live(api, v));
                return;
        }
        if (force && strcmp(force, "1") != 0 && strcmp(force, "0") != 0) {
                fail(resp, 400, "BAD_REQUEST", "'force' must be 0 or 1");
                return;
        }
        r = manager_destroy_locked(api->mgr, v, force && force[0] == '1');
        if (r == VGPU_EGUESTS)
                fail_code(resp, r,
                          "vGPU %s has guests attached; stop them, or destroy with "
                          "--force",
                          uuid);
        else if (r < 0)
                fail_code(resp, r, "cannot destroy vGPU %s: %s", uuid, vgpu_strerror(r));
        else
                reply(resp, 204, NULL);
}

static void vgpu_restart(struct api *api, const char *uuid, struct http_response *resp)
{
        struct mgr_vgpu *v = manager_vgpu_locked(api->mgr, uuid);
        char err[256];
        int r;

        if (!v) {
                fail_code(resp, VGPU_ENO_VGPU, "no vGPU '%s'; `vgpuctl list` shows them", uuid);
                return;
        }
        r = manager_restart_locked(api->mgr, v, err, sizeof(err));
        if (r == VGPU_EGPU_BUSY)
                fail(resp, 409, "VGPU_EGPU_BUSY", "vGPU %s is %s; only a faulted vGPU restarts",
                     uuid, manager_state_name(v->state));
        else if (r < 0)
                fail_code(resp, r, "vGPU %s did not restart: %s", uuid, err);
        else
                reply(resp, 200, vgpu_json(api->mgr, v, 0, 0));
}

/* POST /v1/vgpus/UUID/migrate {"to": "HOST:PORT", "precopy"?}: to another vgpud. */
static void migrate_away(struct api *api, struct mgr_vgpu *v, const char *uuid, const char *to,
                         bool precopy, struct http_response *resp)
{
        json_t *info = NULL;
        char err[512] = "";
        int r = migrate_to_locked(api->peer, v, to, precopy, &info, err, sizeof(err));

        if (r == -ENOTSUP)
                fail(resp, 400, "NO_MIGRATE_SECRET", "%s", err);
        else if (r == VGPU_EBUSY || r == VGPU_ESUSPENDED || r == VGPU_ENOT_RUNNING)
                fail(resp, 409, vgpu_error_name(r), "vGPU %s: %s", uuid, vgpu_strerror(r));
        else if (r < 0)
                fail_code(resp, r, "vGPU %s did not move to %s: %s (it runs on here)", uuid, to,
                          err[0] ? err : vgpu_strerror(r));
        else
                reply(resp, 200,
                      json_pack("{s:s, s:s, s:s, s:o}", "uuid", uuid, "state", "moved", "to", to,
                                "transfer", info));
}

/*
 * POST /v1/vgpus/UUID/suspend {"path"?}, /resume {"gpu"?}, /migrate {"gpu"} (docs/api.md,
 * docs/migration.md). The reply is the vGPU, with what the engine measured under "transfer".
 */
static void vgpu_move(struct api *api, const struct http_request *req, const char *uuid,
                      const char *action, struct http_response *resp)
{
        static const char *const fields[] = {"path", "gpu", "to", "precopy", NULL};
        struct mgr_vgpu *v = manager_vgpu_locked(api->mgr, uuid);
        struct mgr_gpu *g = NULL;
        json_t *o = NULL, *info = NULL, *jp, *jg;
        const char *path = NULL;
        char err[512], gid[32];
        int r;

        if (!v) {
                fail_code(resp, VGPU_ENO_VGPU, "no vGPU '%s'; `vgpuctl list` shows them", uuid);
                return;
        }
        if (req->body_len && !(o = body_object(req, resp, fields)))
                return;
        jp = json_object_get(o, "path");
        if (json_object_get(o, "precopy") &&
            (strcmp(action, "migrate") != 0 || !json_is_boolean(json_object_get(o, "precopy")))) {
                fail(resp, 400, "BAD_REQUEST", "'precopy' (migrate only) must be true or false");
                goto out;
        }
        jg = json_object_get(o, "gpu");
        if (json_object_get(o, "to")) {
                const char *to = json_string_value(json_object_get(o, "to"));

                if (strcmp(action, "migrate") != 0 || !to || !*to || strlen(to) > 255 || jg || jp) {
                        fail(resp, 400, "BAD_REQUEST",
                             "'to' (migrate only, without 'gpu') must be \"HOST:PORT\" of "
                             "another vgpud's --migrate-listen");
                        goto out;
                }
                migrate_away(api, v, uuid, to, json_is_true(json_object_get(o, "precopy")), resp);
                goto out;
        }
        if (jp && (strcmp(action, "suspend") != 0 || !json_is_string(jp) ||
                   json_string_value(jp)[0] != '/' || strlen(json_string_value(jp)) > 3000)) {
                fail(resp, 400, "BAD_REQUEST", "'path' (suspend only) must be an absolute path");
                goto out;
        }
        if (jg && strcmp(action, "suspend") == 0) {
                fail(resp, 400, "BAD_REQUEST", "'gpu' is for resume and migrate");
                goto out;
        }
        if (jg && json_is_integer(jg))
                snprintf(gid, sizeof(gid), "%" JSON_INTEGER_FORMAT, json_integer_value(jg));
        else if (jg && json_is_string(jg))
                snprintf(gid, sizeof(gid), "%s", json_string_value(jg));
        else if (jg) {
                fail(resp, 400, "BAD_REQUEST", "'gpu' must be a GPU index or UUID");
                goto out;
        }
        if (jg && !(g = find_gpu(api, gid, resp)))
                goto out;
        if (strcmp(action, "migrate") == 0 && !g) {
                fail(resp, 400, "BAD_REQUEST", "migrate needs {\"gpu\": ID}");
                goto out;
        }
        path = jp ? json_string_value(jp) : NULL;
        if (strcmp(action, "suspend") == 0)
                r = manager_suspend_locked(api->mgr, v, path, &info, err, sizeof(err));
        else if (strcmp(action, "resume") == 0)
                r = manager_resume_locked(api->mgr, v, g, &info, err, sizeof(err));
        else
                r = manager_migrate_gpu_locked(api->mgr, v, g,
                                               json_is_true(json_object_get(o, "precopy")), &info,
                                               err, sizeof(err));
        /* the lock was let go while the engine worked: the vGPU's entry may have moved */
        v = manager_vgpu_locked(api->mgr, uuid);
        if (!v) {
                fail_code(resp, VGPU_ENO_VGPU, "vGPU %s went away", uuid);
                goto out;
        }
        if (r == VGPU_EENGINE)
                fail(resp, 409, "VGPU_EENGINE", "vGPU %s: %s", uuid, err);
        else if (r == VGPU_ESUSPENDED || r == VGPU_ENOT_SUSPENDED || r == VGPU_ENOT_RUNNING ||
                 r == VGPU_ESAME_GPU || r == VGPU_EBUSY)
                fail(resp, 409, vgpu_error_name(r), "vGPU %s is %s: %s", uuid,
                     manager_state_name(v->state), vgpu_strerror(r));
        else if (r == VGPU_ETYPE_MODEL)
                fail_code(resp, r,
                          "cannot %s vGPU %s to GPU %u (%s): it has no time-sliced type with at "
                          "least %u GiB and a compute capability of at least %u.%u",
                          action, uuid, g->index, g->model->id, (unsigned)(v->fb_bytes >> 30),
                          api->mgr->gpus[v->gpu].model->cc_major,
                          api->mgr->gpus[v->gpu].model->cc_minor);
        else if (r < 0)
                fail_code(resp, r, "cannot %s vGPU %s: %s", action, uuid,
                          err[0] ? err : vgpu_strerror(r));
        else {
                json_t *body = vgpu_json(api->mgr, v, 0, 0);

                json_object_set_new(body, "transfer", info);
                info = NULL;
                reply(resp, 200, body);
        }
out:
        json_decref(info);
        json_decref(o);
}

/* ---- routing ------------------------------------------------------------------------------ */

static size_t split(char *path, char **segs)
{
        char *save = NULL, *s = strtok_r(path, "/", &save);
        size_t n = 0;

        for (; s && n < MAX_SEGS; s = strtok_r(NULL, "/", &save))
                segs[n++] = s;
        return s ? MAX_SEGS + 1 : n; /* one segment too many */
}

static bool method_is(const struct http_request *req, const char *allowed,
                      struct http_response *resp)
{
        char list[32];

        snprintf(list, sizeof(list), ",%s,", allowed);
        char want[16];
        snprintf(want, sizeof(want), ",%s,", req->method);
        if (strstr(list, want))
                return true;
        fail(resp, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s; use %s", req->method,
             req->path, allowed);
        return false;
}

/* GET /metrics: Prometheus text in DCGM exporter's names (metrics.c), from what vgpud knows. */
static void get_metrics(struct api *api, struct http_response *resp)
{
        struct manager *m = api->mgr;
        struct metrics_gpu *gpus = calloc(m->n_gpus ? m->n_gpus : 1, sizeof(*gpus));
        struct metrics_vgpu *vgpus = calloc(m->n_vgpus ? m->n_vgpus : 1, sizeof(*vgpus));
        char host[256] = "";
        size_t nv = 0;

        if (!gpus || !vgpus) {
                free(gpus);
                free(vgpus);
                fail(resp, 500, "INTERNAL", "out of memory");
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
                fail(resp, 500, "INTERNAL", "out of memory");
        free(gpus);
        free(vgpus);
}

void api_metrics(void *ctx, const struct http_request *req, struct http_response *resp)
{
        struct api *api = ctx;

        if (strcmp(req->path, "/metrics") != 0) {
                fail(resp, 404, "NOT_FOUND", "only /metrics is served here");
                return;
        }
        if (!method_is(req, "GET", resp))
                return;
        manager_lock(api->mgr);
        get_metrics(api, resp);
        manager_unlock(api->mgr);
}

static void route(struct api *api, const struct http_request *req, struct http_response *resp)
{
        char path[512];
        char *seg[MAX_SEGS];
        size_t n;
        struct mgr_gpu *g;

        if (strlen(req->path) >= sizeof(path)) {
                fail(resp, 404, "NOT_FOUND", "no such resource");
                return;
        }
        snprintf(path, sizeof(path), "%s", req->path);
        if (strcmp(path, "/metrics") == 0) {
                if (method_is(req, "GET", resp))
                        get_metrics(api, resp);
                return;
        }
        n = split(path, seg);
        if (n < 2 || n > MAX_SEGS || strcmp(seg[0], "v1") != 0) {
                fail(resp, 404, "NOT_FOUND",
                     "no resource %s; the API lives under /v1/ "
                     "(docs/api.md)",
                     req->path);
                return;
        }
        if (strcmp(req->method, "GET") != 0 && !is_admin(api, req)) {
                fail(resp, 403, "FORBIDDEN",
                     "changing vgpu needs root or the admin group "
                     "(uid %d is neither)",
                     req->have_cred ? (int)req->uid : -1);
                return;
        }
        if (n == 2 && strcmp(seg[1], "health") == 0) {
                if (method_is(req, "GET", resp))
                        reply(resp, 200,
                              json_pack("{s:s, s:s, s:s}", "status", "ok", "version", api->version,
                                        "backend", api->mgr->backend));
        } else if (n == 2 && strcmp(seg[1], "gpus") == 0) {
                if (method_is(req, "GET", resp))
                        get_gpus(api, resp);
        } else if (n >= 3 && strcmp(seg[1], "gpus") == 0) {
                if (!(g = find_gpu(api, seg[2], resp)))
                        return;
                if (n == 3) {
                        if (method_is(req, "GET", resp))
                                reply(resp, 200, gpu_json(api->mgr, g));
                } else if (n == 4 && strcmp(seg[3], "mode") == 0) {
                        if (method_is(req, "PUT", resp))
                                put_mode(api, req, g, resp);
                } else if (n == 4 && strcmp(seg[3], "scheduler") == 0) {
                        if (!method_is(req, "GET,PUT", resp))
                                return;
                        if (strcmp(req->method, "PUT") == 0)
                                put_sched(api, req, g, resp);
                        else
                                reply(resp, 200, sched_json_full(api->mgr, g));
                } else if (n == 4 && strcmp(seg[3], "gpu-instance-profiles") == 0) {
                        if (method_is(req, "GET", resp))
                                get_profiles(api, g, resp);
                } else if (n == 4 && strcmp(seg[3], "gpu-instances") == 0) {
                        if (!method_is(req, "GET,POST", resp))
                                return;
                        if (strcmp(req->method, "POST") == 0) {
                                post_gi(api, req, g, resp);
                        } else {
                                json_t *arr = json_array();

                                for (size_t i = 0; i < g->layout.n_gis; i++)
                                        json_array_append_new(
                                                arr, gi_json(api->mgr, g, &g->layout.gis[i]));
                                reply(resp, 200, json_pack("{s:o}", "gpu_instances", arr));
                        }
                } else if (n == 5 && strcmp(seg[3], "gpu-instances") == 0) {
                        if (method_is(req, "GET,DELETE", resp))
                                gi_one(api, req, g, seg[4], resp);
                } else {
                        fail(resp, 404, "NOT_FOUND", "no resource %s", req->path);
                }
        } else if (n == 2 && strcmp(seg[1], "types") == 0) {
                if (method_is(req, "GET", resp))
                        get_types(api, req, resp);
        } else if (n == 2 && strcmp(seg[1], "vgpus") == 0) {
                if (!method_is(req, "GET,POST", resp))
                        return;
                if (strcmp(req->method, "POST") == 0)
                        post_vgpu(api, req, resp);
                else
                        get_vgpus(api, req, resp);
        } else if (n == 3 && strcmp(seg[1], "vgpus") == 0) {
                if (method_is(req, "GET,DELETE", resp))
                        vgpu_one(api, req, seg[2], resp);
        } else if (n == 4 && strcmp(seg[1], "vgpus") == 0 && strcmp(seg[3], "restart") == 0) {
                if (method_is(req, "POST", resp))
                        vgpu_restart(api, seg[2], resp);
        } else if (n == 4 && strcmp(seg[1], "vgpus") == 0 &&
                   (strcmp(seg[3], "suspend") == 0 || strcmp(seg[3], "resume") == 0 ||
                    strcmp(seg[3], "migrate") == 0)) {
                if (method_is(req, "POST", resp))
                        vgpu_move(api, req, seg[2], seg[3], resp);
        } else {
                fail(resp, 404, "NOT_FOUND", "no resource %s (docs/api.md lists them)", req->path);
        }
}

void api_handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
        struct api *api = ctx;

        manager_lock(api->mgr);
        route(api, req, resp);
        manager_unlock(api->mgr);
}
