// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for vgpu-licensed's request handlers: an input is "C\nMETHOD\nPATH\nBODY", where
// C picks the caller (C % 5 = 0: anonymous over TLS, 1: the server's user on the socket, 2: the
// admin token, 3: a wrong token, 4: the client token), routed through license_api_handle on a store
// in /dev/shm with one pool. Every request must get a well-formed response (status 200-599, a JSON
// object or no body).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/log.h"
#include "license/lease.h"
#include "license/license_api.h"
#include "license/license_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct license_api api = {.version = "fuzz",
                                 .admin_token = "fuzz-admin",
                                 .client_token = "fuzz-client",
                                 .lease_length = 1,
                                 .renew_fraction = 0.15};

struct fuzz_req {
        struct http_request req;
        const char *query;
        const char *auth;
};

static const char *fuzz_query(const struct http_request *req, const char *key)
{
        const struct fuzz_req *fr = (const struct fuzz_req *)req;
        static char val[256];
        size_t klen = strlen(key);

        for (const char *p = fr->query; p && *p;) {
                const char *amp = strchr(p, '&');
                size_t len = amp ? (size_t)(amp - p) : strlen(p);

                if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
                        snprintf(val, sizeof(val), "%.*s", (int)(len - klen - 1), p + klen + 1);
                        return val;
                }
                p = amp ? amp + 1 : NULL;
        }
        return NULL;
}

static const char *fuzz_header(const struct http_request *req, const char *name)
{
        const struct fuzz_req *fr = (const struct fuzz_req *)req;

        return strcasecmp(name, "Authorization") == 0 ? fr->auth : NULL;
}

static void setup(void)
{
        static char dir[] = "/dev/shm/vgpu-fuzz-license-XXXXXX";
        static struct lease_key *key;
        struct license_store *store;
        struct license_pool p = {.name = "main", .feature = "vgpu-compute", .seats = 4};
        char path[128];

        vgpu_log_set_level(VGPU_LOG_ERROR);
        if (!mkdtemp(dir) || lease_key_generate(&key) < 0)
                abort();
        snprintf(path, sizeof(path), "%s/licensed.db", dir);
        if (license_store_open(path, &store) < 0)
                abort();
        license_store_pool_create(store, &p, 1);
        api.store = store;
        api.key = key;
        api.admin_uid = getuid();
        lease_key_public_b64(key, api.public_key, sizeof(api.public_key));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const auths[] = {NULL, NULL, "Bearer fuzz-admin", "Bearer nope",
                                            "Bearer fuzz-client"};
        struct http_response resp = {0};
        struct fuzz_req fr = {0};
        char *buf, *method, *path, *body, *nl, *q;
        unsigned who;

        if (!api.store)
                setup();
        if (size < 2)
                return 0;
        who = data[0] % 5u;
        buf = malloc(size);
        if (!buf)
                return 0;
        memcpy(buf, data + 1, size - 1);
        buf[size - 1] = '\0';
        method = buf[0] == '\n' ? buf + 1 : buf;
        nl = strchr(method, '\n');
        path = nl ? (*nl = '\0', nl + 1) : (char *)"/v1/health";
        nl = strchr(path, '\n');
        body = nl ? (*nl = '\0', nl + 1) : (char *)"";
        q = strchr(path, '?');
        if (q)
                *q++ = '\0';
        fr.req = (struct http_request){.method = method,
                                       .path = path,
                                       .body = body,
                                       .body_len = strlen(body),
                                       .have_cred = who == 1,
                                       .tls = who != 1,
                                       .uid = getuid(),
                                       .query = fuzz_query,
                                       .header = fuzz_header};
        fr.query = q;
        fr.auth = auths[who];
        license_api_handle(&api, &fr.req, &resp);
        if (resp.status < 200 || resp.status > 599)
                abort();
        if (resp.json && !json_is_object(resp.json))
                abort();
        if (!resp.json && resp.status != 204)
                abort();
        json_decref(resp.json);
        free(resp.text);
        free(buf);
        return 0;
}
