// SPDX-License-Identifier: Apache-2.0
// The lease client: one HTTP request per call (common/http_client), the server's error codes
// turned into errnos, and every lease verified with the server's public key before it is used.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/http_client.h"
#include "common/http_tls.h"
#include "common/log.h"
#include "license/license_client.h"

#define LICENSE_CLIENT_TIMEOUT_MS 10000

struct license_client {
        struct http_target target;
        char *socket_path, *host, *ca_file, *token;
        struct lease_key *key;
        char feature[LEASE_NAME_MAX];
        char client_host[LEASE_NAME_MAX];
};

void license_client_free(struct license_client *c)
{
        if (!c)
                return;
        lease_key_free(c->key);
        free(c->socket_path);
        free(c->host);
        free(c->ca_file);
        free(c->token);
        free(c);
}

int license_client_new(const struct license_client_config *cfg, struct license_client **ret)
{
        const char *feature = cfg->feature ? cfg->feature : LICENSE_DEFAULT_FEATURE;
        struct license_client *c;
        char host[256];
        int r;

        if (!cfg->public_key_file || !lease_name_valid(feature) ||
            (!cfg->socket_path && (!cfg->host || !cfg->port || !cfg->ca_file)))
                return -EINVAL;
        if (cfg->client_host) {
                snprintf(host, sizeof(host), "%s", cfg->client_host);
        } else if (gethostname(host, sizeof(host)) < 0) {
                snprintf(host, sizeof(host), "localhost");
        }
        host[sizeof(host) - 1] = '\0';
        if (!lease_name_valid(host))
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        snprintf(c->feature, sizeof(c->feature), "%s", feature);
        memcpy(c->client_host, host, strlen(host) + 1); /* lease_name_valid: it fits */
        c->target.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : LICENSE_CLIENT_TIMEOUT_MS;
        if (cfg->socket_path) {
                c->target.kind = HTTP_TARGET_UNIX;
                c->socket_path = strdup(cfg->socket_path);
                c->target.path = c->socket_path;
                r = c->socket_path ? 0 : -ENOMEM;
        } else {
                c->target.kind = HTTP_TARGET_TLS;
                c->host = strdup(cfg->host);
                c->ca_file = strdup(cfg->ca_file);
                c->target.host = c->host;
                c->target.port = cfg->port;
                c->target.ca_file = c->ca_file;
                c->target.tls = &http_tls_openssl;
                r = c->host && c->ca_file ? 0 : -ENOMEM;
                if (r == 0 && cfg->client_token) {
                        c->token = strdup(cfg->client_token);
                        c->target.bearer = c->token;
                        r = c->token ? 0 : -ENOMEM;
                }
        }
        if (r == 0)
                r = lease_key_load(cfg->public_key_file, false, &c->key);
        if (r < 0) {
                license_client_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

bool license_client_unreachable(int err)
{
        switch (err) {
        case -ECONNREFUSED: /* also no socket at all: call() turns that -ENOENT into this */
        case -ECONNRESET:
        case -ECONNABORTED:
        case -ETIMEDOUT:
        case -EHOSTUNREACH:
        case -ENETUNREACH:
        case -EPIPE:
        case -EACCES:
                return true;
        default:
                return false;
        }
}

/* The server's refusal as an errno. */
static int refusal(int status, json_t *doc)
{
        static const struct {
                const char *code;
                int err;
        } map[] = {
                {"NO_SEATS", -ENOSPC},       {"NO_POOL", -ENOENT},
                {"NO_SUCH_LEASE", -ENOENT},  {"LEASE_EXPIRED", -EKEYEXPIRED},
                {"LEASE_RELEASED", -ESTALE}, {"BAD_REQUEST", -EINVAL},
                {"UNAUTHORIZED", -EPERM},    {"FORBIDDEN", -EPERM},
        };
        const char *code = NULL, *msg = NULL;

        json_unpack(doc, "{s:{s?s, s?s}}", "error", "code", &code, "message", &msg);
        vgpu_log(VGPU_LOG_DEBUG, "license: server refused (HTTP %d): %s: %s", status,
                 code ? code : "?", msg ? msg : "?");
        for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++) {
                if (strcmp(code, map[i].code) == 0)
                        return map[i].err;
        }
        return -EPROTO;
}

/* One call; a transport error that reads like a refusal (-ENOENT: no socket) becomes
 * -ECONNREFUSED, so callers can tell "no server" from "no pool".
 */
static int call(struct license_client *c, const char *method, const char *path, json_t *body,
                int *ret_status, json_t **ret_doc)
{
        int r = http_request(&c->target, method, path, body, ret_status, ret_doc);

        if (r == -ENOENT)
                r = -ECONNREFUSED;
        if (r < 0)
                vgpu_log(VGPU_LOG_DEBUG, "license: %s %s: %s", method, path, strerror(-r));
        return r;
}

int license_client_verify(const struct license_client *c, const char *token, const char *vgpu_uuid,
                          int64_t now, struct lease *ret)
{
        struct lease l;
        int r = lease_verify(c->key, token, &l);

        if (r < 0)
                return r;
        if (strcmp(l.feature, c->feature) != 0)
                return -EKEYREJECTED;
        r = lease_check(&l, vgpu_uuid, now);
        if (r < 0)
                return r;
        *ret = l;
        return 0;
}

/* A lease reply: verify its token and that it is what was asked for. */
static int take_lease(struct license_client *c, json_t *doc, const char *vgpu_uuid, const char *id,
                      int64_t now, struct lease *ret)
{
        const char *token = json_string_value(json_object_get(doc, "token"));
        struct lease l;
        int r;

        if (!token)
                return -EBADMSG;
        r = license_client_verify(c, token, vgpu_uuid, now, &l);
        if (r == -ENOTUNIQ)
                r = -EKEYREJECTED;
        if (r < 0)
                return r;
        if (strcmp(l.host, c->client_host) != 0 || (id && strcmp(l.id, id) != 0))
                return -EKEYREJECTED;
        *ret = l;
        return 0;
}

int license_client_request(struct license_client *c, const char *vgpu_uuid, int64_t now,
                           struct lease *ret)
{
        json_t *body, *doc = NULL;
        int status, r;

        if (!lease_name_valid(vgpu_uuid))
                return -EINVAL;
        body = json_pack("{s:s, s:s, s:s}", "feature", c->feature, "vgpu_uuid", vgpu_uuid, "host",
                         c->client_host);
        if (!body)
                return -ENOMEM;
        r = call(c, "POST", "/v1/leases", body, &status, &doc);
        json_decref(body);
        if (r < 0)
                return r;
        if (status == 200 || status == 201)
                r = take_lease(c, doc, vgpu_uuid, NULL, now, ret);
        else
                r = refusal(status, doc);
        json_decref(doc);
        return r;
}

int license_client_renew(struct license_client *c, const struct lease *held, int64_t now,
                         struct lease *ret)
{
        char path[128];
        json_t *doc = NULL;
        int status, r;

        snprintf(path, sizeof(path), "/v1/leases/%s/renew", held->id);
        r = call(c, "POST", path, NULL, &status, &doc);
        if (r < 0)
                return r;
        if (status == 200)
                r = take_lease(c, doc, held->vgpu_uuid, held->id, now, ret);
        else
                r = refusal(status, doc);
        json_decref(doc);
        return r;
}

int license_client_check(struct license_client *c, int64_t *ret_server_time)
{
        char mine[64];
        const char *theirs = NULL;
        json_int_t t = -1;
        json_t *doc = NULL;
        int status, r;

        r = lease_key_public_b64(c->key, mine, sizeof(mine));
        if (r < 0)
                return r;
        r = call(c, "GET", "/v1/health", NULL, &status, &doc);
        if (r < 0)
                return r;
        if (status != 200)
                r = refusal(status, doc);
        else if (json_unpack(doc, "{s:s, s:I}", "public_key", &theirs, "time", &t) < 0 || t < 0)
                r = -EBADMSG;
        else if (strcmp(theirs, mine) != 0)
                r = -EKEYREJECTED;
        else
                *ret_server_time = (int64_t)t;
        json_decref(doc);
        return r;
}

int license_client_release(struct license_client *c, const struct lease *held)
{
        char path[128];
        json_t *doc = NULL;
        int status, r;

        snprintf(path, sizeof(path), "/v1/leases/%s", held->id);
        r = call(c, "DELETE", path, NULL, &status, &doc);
        if (r < 0)
                return r;
        if (status == 204 || status == 200)
                r = 0;
        else
                r = refusal(status, doc) == -ENOENT ? 0 : -EPROTO;
        json_decref(doc);
        return r;
}
