/* SPDX-License-Identifier: Apache-2.0 */
/*
 * license_api: vgpu-licensed's HTTP/JSON API (docs/licensing.md), as one http_server handler over
 * a license_store: pools (create is for the admin), leases (request, renew, release: over TCP
 * with the client token; listing is for the admin), health. Errors are {"error": {"code",
 * "message"}}; HTTP statuses are decided in this module only.
 */
#ifndef VGPU_LICENSE_LICENSE_API_H
#define VGPU_LICENSE_LICENSE_API_H

#include <stdint.h>
#include <sys/types.h>

#include "common/http_server.h"
#include "license/lease.h"
#include "license/license_store.h"

/* Defaults of vgpu-licensed: a lease lasts 7 days (the product's typical offline grace), and its
 * holder renews after 15% of the time left.
 */
#define LICENSE_DEFAULT_LEASE_S        (7 * 24 * 3600)
#define LICENSE_DEFAULT_RENEW_FRACTION 0.15

/* What the handler works with; the caller owns everything and keeps it alive while serving. */
struct license_api {
        struct license_store *store;
        const struct lease_key *key; /* the signing key (private) */
        const char *version;
        const char *admin_token;  /* Bearer token of the admin; NULL: none accepted */
        const char *client_token; /* Bearer token for leases over TCP; NULL: not needed */
        uid_t admin_uid;          /* a Unix-socket peer with this uid, or root, is admin too */
        int64_t lease_length;     /* seconds */
        double renew_fraction;    /* told to clients: renew after this fraction of the time left */
        const char *clock_file;   /* test-only: the time is read from this file (see below) */
        char public_key[64];      /* the signing key's public half, base64url (for /v1/health) */
};

/*
 * license_api_handle - the http_handler_fn of vgpu-licensed: ctx is a struct license_api. Answers
 * every request with a status and a JSON body (or 204); never aborts on input.
 */
void license_api_handle(void *ctx, const struct http_request *req, struct http_response *resp);

/*
 * license_clock_now - the server's time in Unix seconds: time(NULL), or with clock_file (for
 * tests only) the decimal integer held in that file, read at each call. Returns 0 and *ret, or
 * -EIO when the file cannot be read or holds no number.
 */
int license_clock_now(const char *clock_file, int64_t *ret);

#endif
