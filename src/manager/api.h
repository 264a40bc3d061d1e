/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpud's control API (docs/api.md): routes HTTP requests to the manager, validates every field
 * of every request, and turns results and error codes into statuses and JSON — the one place
 * where a VGPU_E* code becomes an HTTP status.
 */
#ifndef VGPU_MANAGER_API_H
#define VGPU_MANAGER_API_H

#include <sys/types.h>

#include "common/http_server.h"
#include "manager/manager.h"

struct api {
        struct manager *mgr;
        gid_t admin_gid; /* mutating calls need root or this group */
        const char *version;
        struct migrate_peer *peer; /* migration between vgpuds; NULL: no --migrate-secret */
};

/*
 * api_handle - answer one request (an http_handler_fn; ctx is a struct api). Takes the manager's
 * lock. Never fails: every outcome is a response.
 */
void api_handle(void *ctx, const struct http_request *req, struct http_response *resp);

/* api_metrics - the handler of vgpud's optional metrics-only TCP listener: GET /metrics. */
void api_metrics(void *ctx, const struct http_request *req, struct http_response *resp);

#endif
