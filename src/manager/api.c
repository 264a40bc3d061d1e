// SPDX-License-Identifier: Apache-2.0
// The control API's core: the table that maps error codes to HTTP statuses and to messages that
// say what to do, JSON views of GPUs and GPU instances, request validation, and routing. The
// handlers live in api_gpu.c, api_vgpu.c and api_metrics.c (api_int.h).
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "manager/api_int.h"
#include "manager/migdev.h"
#include "vgpu/errors.h"

#define MAX_SEGS 8

/* ---- responses ---------------------------------------------------------------------------- */

void api_reply(struct http_response *resp, int status, json_t *body)
{
        resp->status = status;
        resp->json = body;
}

void api_fail(struct http_response *resp, int status, const char *code, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        json_decref(resp->json);
        api_reply(resp, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
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

void api_fail_code(struct http_response *resp, int err, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        api_fail(resp, status_of(err), vgpu_error_name(err), "%s", msg);
}

/* ---- JSON views --------------------------------------------------------------------------- */

json_t *api_gi_json(const struct manager *m, const struct mgr_gpu *g, const struct layout_gi *gi)
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
                /* NVML's (nvidia-smi's) ID of it: vgpud's is one more (migdev.h) */
                json_object_set_new(o, "nvml_id", json_integer(migdev_nvml_of_gi(gi->id)));
        }
        return o;
}

json_t *api_gpu_json(const struct manager *m, const struct mgr_gpu *g)
{
        uint64_t total = catalog_model_fb_bytes(g->model), used = layout_fb_used(&g->layout);
        json_t *vgpus = json_array(), *gis = json_array();

        for (size_t i = 0; i < m->n_vgpus; i++) {
                if (m->vgpus[i].gpu == g->index)
                        json_array_append_new(vgpus, json_string(m->vgpus[i].uuid));
        }
        for (size_t i = 0; i < g->layout.n_gis; i++)
                json_array_append_new(gis, api_gi_json(m, g, &g->layout.gis[i]));
        return json_pack(
                "{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "id", (int)g->index,
                "uuid", g->uuid, "model", g->model->id, "name", g->model->name, "pci_bus_id",
                g->pci_bus_id, "backend", m->backend, "mode", layout_mode_name(g->layout.mode),
                "fb_total_mib", (json_int_t)(total / CATALOG_MIB), "fb_used_mib",
                (json_int_t)(used / CATALOG_MIB), "fb_free_mib",
                (json_int_t)((total - used) / CATALOG_MIB), "vgpus", vgpus, "gpu_instances", gis);
}

/* ---- request parsing ---------------------------------------------------------------------- */

/* Parse the body as a JSON object whose keys are all in allowed (NULL-terminated). */
json_t *api_body_object(const struct http_request *req, struct http_response *resp,
                        const char *const *allowed)
{
        json_error_t err;
        json_t *o;
        const char *key;
        json_t *val;

        if (!req->body_len) {
                api_fail(resp, 400, "BAD_REQUEST", "a JSON object body is required");
                return NULL;
        }
        o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
        if (!o) {
                api_fail(resp, 400, "BAD_REQUEST", "malformed JSON at line %d column %d: %s",
                         err.line, err.column, err.text);
                return NULL;
        }
        if (!json_is_object(o)) {
                json_decref(o);
                api_fail(resp, 400, "BAD_REQUEST", "the body must be a JSON object");
                return NULL;
        }
        json_object_foreach(o, key, val)
        {
                bool ok = false;

                for (const char *const *a = allowed; *a && !ok; a++)
                        ok = strcmp(*a, key) == 0;
                if (!ok) {
                        api_fail(resp, 400, "BAD_REQUEST", "unknown field '%s'", key);
                        json_decref(o);
                        return NULL;
                }
        }
        return o;
}

/* An optional non-negative integer field in [0, max]; -1 when absent. False after a reply. */
bool api_opt_uint(json_t *o, const char *key, int64_t max, int64_t *ret, struct http_response *resp)
{
        json_t *v = json_object_get(o, key);

        *ret = -1;
        if (!v || json_is_null(v))
                return true;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
                api_fail(resp, 400, "BAD_REQUEST", "'%s' must be an integer from 0 to %" PRId64,
                         key, max);
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
struct mgr_gpu *api_find_gpu(struct api *api, const char *id, struct http_response *resp)
{
        struct mgr_gpu *g = manager_gpu_locked(api->mgr, id);

        if (!g)
                api_fail(resp, 404, "NOT_FOUND",
                         "no GPU '%s'; `vgpuctl gpus` lists them (0 to %zu)", id ? id : "",
                         api->mgr->n_gpus - 1);
        return g;
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

bool api_method_is(const struct http_request *req, const char *allowed, struct http_response *resp)
{
        char list[32];

        snprintf(list, sizeof(list), ",%s,", allowed);
        char want[16];
        snprintf(want, sizeof(want), ",%s,", req->method);
        if (strstr(list, want))
                return true;
        api_fail(resp, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s; use %s", req->method,
                 req->path, allowed);
        return false;
}

static void route(struct api *api, const struct http_request *req, struct http_response *resp)
{
        char path[512];
        char *seg[MAX_SEGS];
        size_t n;
        struct mgr_gpu *g;

        if (strlen(req->path) >= sizeof(path)) {
                api_fail(resp, 404, "NOT_FOUND", "no such resource");
                return;
        }
        snprintf(path, sizeof(path), "%s", req->path);
        if (strcmp(path, "/metrics") == 0) {
                if (api_method_is(req, "GET", resp))
                        api_get_metrics(api, resp);
                return;
        }
        n = split(path, seg);
        if (n < 2 || n > MAX_SEGS || strcmp(seg[0], "v1") != 0) {
                api_fail(resp, 404, "NOT_FOUND",
                         "no resource %s; the API lives under /v1/ "
                         "(docs/api.md)",
                         req->path);
                return;
        }
        if (strcmp(req->method, "GET") != 0 && !is_admin(api, req)) {
                api_fail(resp, 403, "FORBIDDEN",
                         "changing vgpu needs root or the admin group "
                         "(uid %d is neither)",
                         req->have_cred ? (int)req->uid : -1);
                return;
        }
        if (n == 2 && strcmp(seg[1], "health") == 0) {
                if (api_method_is(req, "GET", resp))
                        api_reply(resp, 200,
                                  json_pack("{s:s, s:s, s:s}", "status", "ok", "version",
                                            api->version, "backend", api->mgr->backend));
        } else if (n == 2 && strcmp(seg[1], "gpus") == 0) {
                if (api_method_is(req, "GET", resp))
                        api_get_gpus(api, resp);
        } else if (n >= 3 && strcmp(seg[1], "gpus") == 0) {
                if (!(g = api_find_gpu(api, seg[2], resp)))
                        return;
                if (n == 3) {
                        if (api_method_is(req, "GET", resp))
                                api_reply(resp, 200, api_gpu_json(api->mgr, g));
                } else if (n == 4 && strcmp(seg[3], "mode") == 0) {
                        if (api_method_is(req, "PUT", resp))
                                api_put_mode(api, req, g, resp);
                } else if (n == 4 && strcmp(seg[3], "scheduler") == 0) {
                        if (!api_method_is(req, "GET,PUT", resp))
                                return;
                        if (strcmp(req->method, "PUT") == 0)
                                api_put_sched(api, req, g, resp);
                        else
                                api_reply(resp, 200, api_sched_json_full(api->mgr, g));
                } else if (n == 4 && strcmp(seg[3], "gpu-instance-profiles") == 0) {
                        if (api_method_is(req, "GET", resp))
                                api_get_profiles(api, g, resp);
                } else if (n == 4 && strcmp(seg[3], "gpu-instances") == 0) {
                        if (!api_method_is(req, "GET,POST", resp))
                                return;
                        if (strcmp(req->method, "POST") == 0) {
                                api_post_gi(api, req, g, resp);
                        } else {
                                json_t *arr = json_array();

                                for (size_t i = 0; i < g->layout.n_gis; i++)
                                        json_array_append_new(
                                                arr, api_gi_json(api->mgr, g, &g->layout.gis[i]));
                                api_reply(resp, 200, json_pack("{s:o}", "gpu_instances", arr));
                        }
                } else if (n == 5 && strcmp(seg[3], "gpu-instances") == 0) {
                        if (api_method_is(req, "GET,DELETE", resp))
                                api_gi_one(api, req, g, seg[4], resp);
                } else {
                        api_fail(resp, 404, "NOT_FOUND", "no resource %s", req->path);
                }
        } else if (n == 2 && strcmp(seg[1], "types") == 0) {
                if (api_method_is(req, "GET", resp))
                        api_get_types(api, req, resp);
        } else if (n == 2 && strcmp(seg[1], "vgpus") == 0) {
                if (!api_method_is(req, "GET,POST", resp))
                        return;
                if (strcmp(req->method, "POST") == 0)
                        api_post_vgpu(api, req, resp);
                else
                        api_get_vgpus(api, req, resp);
        } else if (n == 3 && strcmp(seg[1], "vgpus") == 0) {
                if (api_method_is(req, "GET,DELETE", resp))
                        api_vgpu_one(api, req, seg[2], resp);
        } else if (n == 4 && strcmp(seg[1], "vgpus") == 0 && strcmp(seg[3], "restart") == 0) {
                if (api_method_is(req, "POST", resp))
                        api_vgpu_restart(api, seg[2], resp);
        } else if (n == 4 && strcmp(seg[1], "vgpus") == 0 &&
                   (strcmp(seg[3], "suspend") == 0 || strcmp(seg[3], "resume") == 0 ||
                    strcmp(seg[3], "migrate") == 0)) {
                if (api_method_is(req, "POST", resp))
                        api_vgpu_move(api, req, seg[2], seg[3], resp);
        } else {
                api_fail(resp, 404, "NOT_FOUND", "no resource %s (docs/api.md lists them)",
                         req->path);
        }
}

void api_handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
        struct api *api = ctx;

        manager_lock(api->mgr);
        route(api, req, resp);
        manager_unlock(api->mgr);
}
