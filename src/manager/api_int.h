/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control API's internals, shared by its files: api.c (responses, JSON views, request parsing,
 * routing), api_gpu.c (GPUs, GPU instances), api_vgpu.c (vGPUs) and api_metrics.c (GET /metrics).
 * Other modules use api.h. The handlers, the JSON views and api_find_gpu expect the manager's lock
 * held; a handler never fails: every outcome, an error included, is a status and a body in resp.
 */
#ifndef VGPU_MANAGER_API_INT_H
#define VGPU_MANAGER_API_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "manager/api.h"

/* api_reply - set resp's status and JSON body (body is stolen; NULL: no body). */
void api_reply(struct http_response *resp, int status, json_t *body);

/*
 * api_fail - answer status with {"error": {"code": code, "message": the message fmt formats, cut
 * at 511 bytes}}, releasing any body resp held.
 */
void api_fail(struct http_response *resp, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/*
 * api_fail_code - api_fail for err (a VGPU_E* code or a negative errno): the status from the one
 * map of error codes to HTTP statuses, and err's name (vgpu_error_name) as the code.
 */
void api_fail_code(struct http_response *resp, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/*
 * api_gi_json - GPU instance gi of GPU g, with the vGPUs in it (and on a real GPU its MIG device),
 * as a new JSON object; NULL: no memory.
 */
json_t *api_gi_json(const struct manager *m, const struct mgr_gpu *g, const struct layout_gi *gi);

/* api_gpu_json - GPU g (model, mode, framebuffer, vGPUs, GPU instances) as a new JSON object. */
json_t *api_gpu_json(const struct manager *m, const struct mgr_gpu *g);

/*
 * api_body_object - req's body as a JSON object whose keys are all in allowed (NULL-terminated);
 * the caller owns it. NULL after a 400 in resp: no body, bad JSON, not an object, an unknown key.
 */
json_t *api_body_object(const struct http_request *req, struct http_response *resp,
                        const char *const *allowed);

/*
 * api_opt_uint - o's optional integer field key, in [0, max], into *ret: -1 when it is absent or
 * null. False after a 400 in resp (and *ret -1).
 */
bool api_opt_uint(json_t *o, const char *key, int64_t max, int64_t *ret,
                  struct http_response *resp);

/* api_find_gpu - the GPU id names (index or UUID; NULL names none), or NULL after a 404 in resp. */
struct mgr_gpu *api_find_gpu(struct api *api, const char *id, struct http_response *resp);

/* api_method_is - whether req's method is in allowed ("GET,PUT"); false after a 405 in resp. */
bool api_method_is(const struct http_request *req, const char *allowed, struct http_response *resp);

/* api_get_gpus - GET /v1/gpus: every GPU. */
void api_get_gpus(struct api *api, struct http_response *resp);

/* api_put_mode - PUT /v1/gpus/ID/mode {"mode"}: change GPU g's mode; the reply is the GPU. */
void api_put_mode(struct api *api, const struct http_request *req, struct mgr_gpu *g,
                  struct http_response *resp);

/*
 * api_sched_json_full - GPU g's scheduler (policy, time slice, clocks and the RmPVMRL value that
 * says the same) as a new JSON object.
 */
json_t *api_sched_json_full(struct manager *m, const struct mgr_gpu *g);

/* api_put_sched - PUT /v1/gpus/ID/scheduler {"policy"?, "timeslice_ms"?}; replies the scheduler. */
void api_put_sched(struct api *api, const struct http_request *req, struct mgr_gpu *g,
                   struct http_response *resp);

/*
 * api_get_types - GET /v1/types?gpu=ID&creatable=0|1: the vGPU types of GPU ID (default 0), each
 * with whether one can be created now and where.
 */
void api_get_types(struct api *api, const struct http_request *req, struct http_response *resp);

/* api_get_profiles - GET /v1/gpus/ID/gpu-instance-profiles: g's profiles, free counts as in MIG. */
void api_get_profiles(struct api *api, struct mgr_gpu *g, struct http_response *resp);

/* api_post_gi - POST /v1/gpus/ID/gpu-instances {"profile", "start"?}: 201 and the new instance. */
void api_post_gi(struct api *api, const struct http_request *req, struct mgr_gpu *g,
                 struct http_response *resp);

/* api_gi_one - GET or DELETE /v1/gpus/ID/gpu-instances/GI: g's GPU instance id (a path segment). */
void api_gi_one(struct api *api, const struct http_request *req, struct mgr_gpu *g, const char *id,
                struct http_response *resp);

/*
 * api_post_vgpu - POST /v1/vgpus {"type", "gpu"?, "placement"?, "gpu_instance"?, "uuid"?,
 * "owner_uid"?}: 201 and the new vGPU.
 */
void api_post_vgpu(struct api *api, const struct http_request *req, struct http_response *resp);

/* api_get_vgpus - GET /v1/vgpus?gpu=ID: the vGPUs (of GPU ID), with what their engines say now. */
void api_get_vgpus(struct api *api, const struct http_request *req, struct http_response *resp);

/* api_vgpu_one - GET or DELETE (?force=0|1) /v1/vgpus/UUID. */
void api_vgpu_one(struct api *api, const struct http_request *req, const char *uuid,
                  struct http_response *resp);

/* api_vgpu_restart - POST /v1/vgpus/UUID/restart: start a faulted vGPU's engine again. */
void api_vgpu_restart(struct api *api, const char *uuid, struct http_response *resp);

/*
 * api_vgpu_move - POST /v1/vgpus/UUID/ACTION, action "suspend", "resume" or "migrate" (to a GPU
 * or another vgpud). The manager's lock is let go while the engine works, and taken back.
 */
void api_vgpu_move(struct api *api, const struct http_request *req, const char *uuid,
                   const char *action, struct http_response *resp);

/* api_get_metrics - GET /metrics: the GPUs and vGPUs in Prometheus text; 500: no memory. */
void api_get_metrics(struct api *api, struct http_response *resp);

#endif
