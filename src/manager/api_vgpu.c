// SPDX-License-Identifier: Apache-2.0
// The control API's vGPU handlers: create, list, show and destroy vGPUs, restart a faulted one,
// suspend, resume and migrate them (to another GPU or another vgpud), and the JSON view of a vGPU
// with its license and scheduler figures.
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "manager/api_int.h"
#include "manager/licensing.h"
#include "manager/migrate_peer.h"
#include "vgpu/errors.h"

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

static void create_refused(struct http_response *resp, int r, const struct mgr_gpu *g,
                           const struct vgpu_type *t, const struct layout_req *lr,
                           const char *engine_err)
{
        const char *tn = t->name;
        unsigned gi = g->index;

        switch (r) {
        case VGPU_EMODE:
                if (t->cls == CATALOG_MIG)
                        api_fail_code(resp, r,
                                      "%s is MIG-backed and GPU %u is in %s mode; switch it "
                                      "with `vgpuctl mode --gpu %u mig` while it is empty",
                                      tn, gi, layout_mode_name(g->layout.mode), gi);
                else
                        api_fail_code(resp, r, "%s is not available in %s mode on GPU %u", tn,
                                      layout_mode_name(g->layout.mode), gi);
                break;
        case VGPU_ETYPE_MIX:
                if (g->layout.mode == LAYOUT_MIG)
                        api_fail_code(resp, r,
                                      "GPU instance %u holds vGPUs of another type; one "
                                      "type per GPU instance",
                                      lr->gi);
                else
                        api_fail_code(resp, r,
                                      "GPU %u is in homogeneous mode and holds %s vGPUs; "
                                      "create %s, or empty the GPU and switch it to heterogeneous "
                                      "mode",
                                      gi, g->layout.vgpus[0].type->name,
                                      g->layout.vgpus[0].type->name);
                break;
        case VGPU_EMAX_INSTANCES:
                api_fail_code(resp, r, "GPU %u%s already holds the most %s vGPUs it can", gi,
                              lr->gi ? " (or that GPU instance)" : "", tn);
                break;
        case VGPU_ENO_SPACE:
                api_fail_code(resp, r,
                              "no free framebuffer placement for %s on GPU %u; destroy a "
                              "vGPU or use another GPU",
                              tn, gi);
                break;
        case VGPU_EPLACEMENT:
                api_fail_code(resp, r,
                              "placement %" PRId64 " is not valid for %s on GPU %u; "
                              "`vgpuctl types -c --gpu %u --json` lists the free ones",
                              lr->placement, tn, gi, gi);
                break;
        case VGPU_EPLACEMENT_BUSY:
                api_fail_code(resp, r,
                              "placement %" PRId64 " for %s on GPU %u overlaps a vGPU or "
                              "GPU instance",
                              lr->placement, tn, gi);
                break;
        case VGPU_ENO_GI:
                if (lr->gi)
                        api_fail_code(resp, r, "GPU %u has no GPU instance %u", gi, lr->gi);
                else
                        api_fail(resp, 422, "VGPU_ENO_GI",
                                 "GPU %u has no GPU instance to hold %s; create one with "
                                 "`vgpuctl mig --gpu %u -cgi PROFILE`",
                                 gi, tn, gi);
                break;
        case VGPU_EGI_BUSY:
                api_fail_code(resp, r, "GPU instance %u already holds %s", lr->gi,
                              t->cls == CATALOG_MIG ? "a vGPU" : "a MIG-backed vGPU");
                break;
        case VGPU_EGI_PROFILE:
                api_fail_code(resp, r, "%s does not fit GPU instance %u's profile", tn, lr->gi);
                break;
        case VGPU_EEXIST:
                api_fail_code(resp, r, "a vGPU with that UUID already exists");
                break;
        case -EINVAL:
                api_fail(resp, 400, "BAD_REQUEST",
                         "'uuid' must be a UUID like "
                         "0b6d4f3e-2c1a-4f5e-9d8c-7b6a5f4e3d2c");
                break;
        case VGPU_EENGINE:
                api_fail_code(resp, r, "the vGPU's engine did not start: %s", engine_err);
                break;
        case VGPU_EMIG_ADMIN:
        case VGPU_EMIG_DEVICE:
        case VGPU_ENVML:
                api_fail_code(resp, r, "%s", engine_err[0] ? engine_err : vgpu_strerror(r));
                break;
        default:
                api_fail_code(resp, r, "cannot create %s on GPU %u: %s", tn, gi, vgpu_strerror(r));
        }
}

void api_post_vgpu(struct api *api, const struct http_request *req, struct http_response *resp)
{
        static const char *const fields[] = {"gpu",  "type",      "placement", "gpu_instance",
                                             "uuid", "owner_uid", NULL};
        json_t *o = api_body_object(req, resp, fields), *gv, *tv, *uv;
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
                api_fail(resp, 400, "BAD_REQUEST", "'gpu' must be a GPU index or UUID");
                goto out;
        }
        if (!json_is_string(tv)) {
                api_fail(resp, 400, "BAD_REQUEST",
                         "'type' is required: a vGPU type name such as "
                         "\"H100-20C\"");
                goto out;
        }
        if (uv && !json_is_string(uv)) {
                api_fail(resp, 400, "BAD_REQUEST", "'uuid' must be a string");
                goto out;
        }
        if (!api_opt_uint(o, "placement", INT32_MAX, &placement, resp) ||
            !api_opt_uint(o, "gpu_instance", UINT32_MAX, &gi, resp) ||
            !api_opt_uint(o, "owner_uid", (int64_t)UINT32_MAX - 1, &owner, resp))
                goto out;
        c.gpu = api_find_gpu(api, gid, resp);
        if (!c.gpu)
                goto out;
        c.type = catalog_find_type(c.gpu->model, json_string_value(tv));
        if (!c.type) {
                api_fail_code(resp, VGPU_EUNKNOWN_TYPE,
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
        api_reply(resp, 201, vgpu_json(api->mgr, v, 0, 0));
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

void api_get_vgpus(struct api *api, const struct http_request *req, struct http_response *resp)
{
        const char *gid = req->query(req, "gpu");
        struct mgr_gpu *g = NULL;
        json_t *arr;

        if (gid && !(g = api_find_gpu(api, gid, resp)))
                return;
        arr = json_array();
        for (size_t i = 0; i < api->mgr->n_vgpus; i++) {
                struct mgr_vgpu *v = &api->mgr->vgpus[i];

                if (!g || v->gpu == g->index)
                        json_array_append_new(arr, vgpu_json_live(api, v));
        }
        api_reply(resp, 200, json_pack("{s:o}", "vgpus", arr));
}

void api_vgpu_one(struct api *api, const struct http_request *req, const char *uuid,
                  struct http_response *resp)
{
        struct mgr_vgpu *v = manager_vgpu_locked(api->mgr, uuid);
        const char *force = req->query(req, "force");
        int r;

        if (!v) {
                api_fail_code(resp, VGPU_ENO_VGPU, "no vGPU '%s'; `vgpuctl list` shows them", uuid);
                return;
        }
        if (strcmp(req->method, "GET") == 0) {
                api_reply(resp, 200, vgpu_json_live(api, v));
                return;
        }
        if (force && strcmp(force, "1") != 0 && strcmp(force, "0") != 0) {
                api_fail(resp, 400, "BAD_REQUEST", "'force' must be 0 or 1");
                return;
        }
        r = manager_destroy_locked(api->mgr, v, force && force[0] == '1');
        if (r == VGPU_EGUESTS)
                api_fail_code(resp, r,
                              "vGPU %s has guests attached; stop them, or destroy with "
                              "--force",
                              uuid);
        else if (r < 0)
                api_fail_code(resp, r, "cannot destroy vGPU %s: %s", uuid, vgpu_strerror(r));
        else
                api_reply(resp, 204, NULL);
}

void api_vgpu_restart(struct api *api, const char *uuid, struct http_response *resp)
{
        struct mgr_vgpu *v = manager_vgpu_locked(api->mgr, uuid);
        char err[256];
        int r;

        if (!v) {
                api_fail_code(resp, VGPU_ENO_VGPU, "no vGPU '%s'; `vgpuctl list` shows them", uuid);
                return;
        }
        r = manager_restart_locked(api->mgr, v, err, sizeof(err));
        if (r == VGPU_EGPU_BUSY)
                api_fail(resp, 409, "VGPU_EGPU_BUSY", "vGPU %s is %s; only a faulted vGPU restarts",
                         uuid, manager_state_name(v->state));
        else if (r < 0)
                api_fail_code(resp, r, "vGPU %s did not restart: %s", uuid, err);
        else
                api_reply(resp, 200, vgpu_json(api->mgr, v, 0, 0));
}

/* POST /v1/vgpus/UUID/migrate {"to": "HOST:PORT", "precopy"?}: to another vgpud. */
static void migrate_away(struct api *api, struct mgr_vgpu *v, const char *uuid, const char *to,
                         bool precopy, struct http_response *resp)
{
        json_t *info = NULL;
        char err[512] = "";
        int r = migrate_to_locked(api->peer, v, to, precopy, &info, err, sizeof(err));

        if (r == -ENOTSUP)
                api_fail(resp, 400, "NO_MIGRATE_SECRET", "%s", err);
        else if (r == VGPU_EBUSY || r == VGPU_ESUSPENDED || r == VGPU_ENOT_RUNNING)
                api_fail(resp, 409, vgpu_error_name(r), "vGPU %s: %s", uuid, vgpu_strerror(r));
        else if (r < 0)
                api_fail_code(resp, r, "vGPU %s did not move to %s: %s (it runs on here)", uuid, to,
                              err[0] ? err : vgpu_strerror(r));
        else
                api_reply(resp, 200,
                          json_pack("{s:s, s:s, s:s, s:o}", "uuid", uuid, "state", "moved", "to",
                                    to, "transfer", info));
}

/*
 * POST /v1/vgpus/UUID/suspend {"path"?}, /resume {"gpu"?}, /migrate {"gpu"} (docs/api.md,
 * docs/migration.md). The reply is the vGPU, with what the engine measured under "transfer".
 */
void api_vgpu_move(struct api *api, const struct http_request *req, const char *uuid,
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
                api_fail_code(resp, VGPU_ENO_VGPU, "no vGPU '%s'; `vgpuctl list` shows them", uuid);
                return;
        }
        if (req->body_len && !(o = api_body_object(req, resp, fields)))
                return;
        jp = json_object_get(o, "path");
        if (json_object_get(o, "precopy") &&
            (strcmp(action, "migrate") != 0 || !json_is_boolean(json_object_get(o, "precopy")))) {
                api_fail(resp, 400, "BAD_REQUEST",
                         "'precopy' (migrate only) must be true or false");
                goto out;
        }
        jg = json_object_get(o, "gpu");
        if (json_object_get(o, "to")) {
                const char *to = json_string_value(json_object_get(o, "to"));

                if (strcmp(action, "migrate") != 0 || !to || !*to || strlen(to) > 255 || jg || jp) {
                        api_fail(resp, 400, "BAD_REQUEST",
                                 "'to' (migrate only, without 'gpu') must be \"HOST:PORT\" of "
                                 "another vgpud's --migrate-listen");
                        goto out;
                }
                migrate_away(api, v, uuid, to, json_is_true(json_object_get(o, "precopy")), resp);
                goto out;
        }
        if (jp && (strcmp(action, "suspend") != 0 || !json_is_string(jp) ||
                   json_string_value(jp)[0] != '/' || strlen(json_string_value(jp)) > 3000)) {
                api_fail(resp, 400, "BAD_REQUEST",
                         "'path' (suspend only) must be an absolute path");
                goto out;
        }
        if (jg && strcmp(action, "suspend") == 0) {
                api_fail(resp, 400, "BAD_REQUEST", "'gpu' is for resume and migrate");
                goto out;
        }
        if (jg && json_is_integer(jg))
                snprintf(gid, sizeof(gid), "%" JSON_INTEGER_FORMAT, json_integer_value(jg));
        else if (jg && json_is_string(jg))
                snprintf(gid, sizeof(gid), "%s", json_string_value(jg));
        else if (jg) {
                api_fail(resp, 400, "BAD_REQUEST", "'gpu' must be a GPU index or UUID");
                goto out;
        }
        if (jg && !(g = api_find_gpu(api, gid, resp)))
                goto out;
        if (strcmp(action, "migrate") == 0 && !g) {
                api_fail(resp, 400, "BAD_REQUEST", "migrate needs {\"gpu\": ID}");
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
                api_fail_code(resp, VGPU_ENO_VGPU, "vGPU %s went away", uuid);
                goto out;
        }
        if (r == VGPU_EENGINE)
                api_fail(resp, 409, "VGPU_EENGINE", "vGPU %s: %s", uuid, err);
        else if (r == VGPU_ESUSPENDED || r == VGPU_ENOT_SUSPENDED || r == VGPU_ENOT_RUNNING ||
                 r == VGPU_ESAME_GPU || r == VGPU_EBUSY)
                api_fail(resp, 409, vgpu_error_name(r), "vGPU %s is %s: %s", uuid,
                         manager_state_name(v->state), vgpu_strerror(r));
        else if (r == VGPU_ETYPE_MODEL)
                /* g: NULL for a resume where it was */
                api_fail_code(
                        resp, r,
                        "cannot %s vGPU %s to GPU %u (%s): it has no time-sliced type with at "
                        "least %u GiB and a compute capability of at least %u.%u",
                        action, uuid, g ? g->index : api->mgr->gpus[v->gpu].index,
                        (g ? g : &api->mgr->gpus[v->gpu])->model->id, (unsigned)(v->fb_bytes >> 30),
                        api->mgr->gpus[v->gpu].model->cc_major,
                        api->mgr->gpus[v->gpu].model->cc_minor);
        else if (r < 0)
                api_fail_code(resp, r, "cannot %s vGPU %s: %s", action, uuid,
                              err[0] ? err : vgpu_strerror(r));
        else {
                json_t *body = vgpu_json(api->mgr, v, 0, 0);

                json_object_set_new(body, "transfer", info);
                info = NULL;
                api_reply(resp, 200, body);
        }
out:
        json_decref(info);
        json_decref(o);
}
