// SPDX-License-Identifier: Apache-2.0
// vgpu-licensed's routes: parse and check each request strictly (unknown fields are errors), call
// the store, and build the JSON reply. Error codes map to HTTP statuses in status_of() only.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "license/license_api.h"

#define API_MAX_SEGS 6

int license_clock_now(const char *clock_file, int64_t *ret)
{
        char buf[64], *end;
        long long v;
        size_t n;
        FILE *f;

        if (!clock_file) {
                *ret = (int64_t)time(NULL);
                return 0;
        }
        f = fopen(clock_file, "re");
        if (!f)
                return -EIO;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        v = strtoll(buf, &end, 10);
        if (end == buf || v < 0 || (*end && *end != '\n' && *end != ' '))
                return -EIO;
        *ret = (int64_t)v;
        return 0;
}

/* The one map from error codes to HTTP statuses. */
static int status_of(const char *code)
{
        static const struct {
                const char *code;
                int status;
        } map[] = {
                {"BAD_REQUEST", 400},        {"UNAUTHORIZED", 401},   {"FORBIDDEN", 403},
                {"NOT_FOUND", 404},          {"NO_SUCH_LEASE", 404},  {"NO_SUCH_POOL", 404},
                {"METHOD_NOT_ALLOWED", 405}, {"NO_SEATS", 409},       {"POOL_EXISTS", 409},
                {"LEASE_EXPIRED", 410},      {"LEASE_RELEASED", 410}, {"NO_POOL", 422},
                {"INTERNAL", 500},
        };

        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
                if (strcmp(map[i].code, code) == 0)
                        return map[i].status;
        }
        return 500;
}

static void fail(struct http_response *resp, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void fail(struct http_response *resp, const char *code, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /* Messages quote what the client sent: keep them printable ASCII (and valid UTF-8). */
        for (char *c = msg; *c; c++) {
                if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
                        *c = '?';
        }
        json_decref(resp->json);
        resp->status = status_of(code);
        resp->json = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
}

static void reply(struct http_response *resp, int status, json_t *body)
{
        if (!body) {
                fail(resp, "INTERNAL", "out of memory");
                return;
        }
        resp->status = status;
        resp->json = body;
}

static void fail_store(struct http_response *resp, int err)
{
        vgpu_log(VGPU_LOG_ERROR, "license store: %s", strerror(-err));
        fail(resp, "INTERNAL",
             "the license database could not be read or written (%s); see the "
             "server's log",
             strerror(-err));
}

static json_t *time_json(int64_t t)
{
        char buf[64];
        time_t tt = (time_t)t;
        struct tm tm;

        if (!t || !gmtime_r(&tt, &tm))
                return json_null();
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return json_string(buf);
}

static json_t *pool_json(const struct license_pool *p, int64_t now)
{
        int64_t free_seats = p->seats > p->leased ? p->seats - p->leased : 0;
        bool expired = p->expires && p->expires <= now;

        return json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:b}", "name", p->name,
                         "feature", p->feature, "seats", (json_int_t)p->seats, "leased",
                         (json_int_t)p->leased, "free", (json_int_t)(expired ? 0 : free_seats),
                         "expires", p->expires ? json_integer(p->expires) : json_null(),
                         "expires_at", time_json(p->expires), "created_at", time_json(p->created),
                         "expired", expired);
}

static const char *row_state(const struct license_lease_row *l, int64_t now)
{
        if (l->released)
                return "released";
        return l->expires > now ? "active" : "expired";
}

static json_t *row_json(const struct license_lease_row *l, int64_t now)
{
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:I, s:o, s:s, s:o, s:I}", "id",
                         l->id, "pool", l->pool, "feature", l->feature, "vgpu_uuid", l->vgpu_uuid,
                         "host", l->host, "issued", (json_int_t)l->issued, "issued_at",
                         time_json(l->issued), "expires", (json_int_t)l->expires, "expires_at",
                         time_json(l->expires), "state", row_state(l, now), "released_at",
                         time_json(l->released), "renewals", (json_int_t)l->renewals);
}

/* A granted or renewed lease: its fields, when to renew, and the signed token. */
static json_t *lease_json(const struct license_api *api, const struct lease *l, int64_t now)
{
        return json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:I, s:o, s:I, s:s}", "id", l->id,
                         "feature", l->feature, "vgpu_uuid", l->vgpu_uuid, "host", l->host,
                         "issued", (json_int_t)l->issued, "issued_at", time_json(l->issued),
                         "expires", (json_int_t)l->expires, "expires_at", time_json(l->expires),
                         "renew_after", (json_int_t)lease_renew_at(l, now, api->renew_fraction, 1),
                         "token", l->token);
}

/* The request body as a JSON object with only the fields listed; NULL after failing resp. */
static json_t *body_object(const struct http_request *req, struct http_response *resp,
                           const char *const *fields, bool empty_ok)
{
        json_error_t jerr;
        const char *key;
        json_t *o, *v;

        if (req->body_len == 0 && empty_ok)
                return json_object();
        if (req->body_len == 0) {
                fail(resp, "BAD_REQUEST", "a JSON object body is required");
                return NULL;
        }
        o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!o) {
                fail(resp, "BAD_REQUEST", "the body is not valid JSON: %s (line %d, column %d)",
                     jerr.text, jerr.line, jerr.column);
                return NULL;
        }
        if (!json_is_object(o)) {
                json_decref(o);
                fail(resp, "BAD_REQUEST", "the body must be a JSON object");
                return NULL;
        }
        json_object_foreach(o, key, v)
        {
                size_t i = 0;

                while (fields[i] && strcmp(fields[i], key) != 0)
                        i++;
                if (!fields[i]) {
                        fail(resp, "BAD_REQUEST", "unknown field '%.64s'", key);
                        json_decref(o);
                        return NULL;
                }
        }
        return o;
}

/* A required name member (feature, host, ...); false after failing resp. */
static bool name_member(json_t *o, const char *key, struct http_response *resp, const char **ret)
{
        json_t *v = json_object_get(o, key);

        if (!v) {
                fail(resp, "BAD_REQUEST", "'%s' is required", key);
                return false;
        }
        if (!json_is_string(v) || !lease_name_valid(json_string_value(v))) {
                fail(resp, "BAD_REQUEST",
                     "'%s' must be a string of 1 to %d printable ASCII characters", key,
                     LEASE_NAME_MAX - 1);
                return false;
        }
        *ret = json_string_value(v);
        return true;
}

/* Whether the Authorization header is "Bearer <token>" (compared in constant time). */
static bool bearer_is(const char *auth, const char *token)
{
        size_t want = token ? strlen(token) : 0;

        return auth && token && strncmp(auth, "Bearer ", 7) == 0 && strlen(auth + 7) == want &&
               CRYPTO_memcmp(auth + 7, token, want) == 0;
}

static bool is_admin(const struct license_api *api, const struct http_request *req,
                     struct http_response *resp)
{
        const char *auth = req->header ? req->header(req, "Authorization") : NULL;

        if (auth) {
                if (bearer_is(auth, api->admin_token))
                        return true;
                fail(resp, "FORBIDDEN", "the admin token is not valid");
                return false;
        }
        if (req->have_cred && (req->uid == 0 || req->uid == api->admin_uid))
                return true;
        fail(resp, "UNAUTHORIZED",
             "this needs the admin token (Authorization: Bearer TOKEN, from "
             "the server's admin-token file) or the server's user");
        return false;
}

/*
 * Leases (request, renew, release, look up) and pool listings: open on the Unix socket (its mode
 * decides who reaches it); over TCP they need the client token (or the admin token) when the
 * server has one.
 */
static bool is_client(const struct license_api *api, const struct http_request *req,
                      struct http_response *resp)
{
        const char *auth = req->header ? req->header(req, "Authorization") : NULL;

        if (!req->tls || !api->client_token || bearer_is(auth, api->client_token) ||
            bearer_is(auth, api->admin_token))
                return true;
        if (auth)
                fail(resp, "FORBIDDEN", "the client token is not valid");
        else
                fail(resp, "UNAUTHORIZED",
                     "over TCP this needs the client token (Authorization: Bearer TOKEN, from "
                     "the server's client-token file)");
        return false;
}

static void get_health(struct license_api *api, int64_t now, struct http_response *resp)
{
        reply(resp, 200,
              json_pack("{s:s, s:s, s:I, s:o, s:s, s:I, s:f}", "status", "ok", "version",
                        api->version, "time", (json_int_t)now, "time_at", time_json(now),
                        "public_key", api->public_key, "lease_seconds",
                        (json_int_t)api->lease_length, "renew_fraction", api->renew_fraction));
}

static int add_pool(void *ctx, const struct license_pool *p)
{
        json_t **arr = ctx;

        return json_array_append_new(arr[0], pool_json(p, json_integer_value(arr[1]))) ? -ENOMEM
                                                                                       : 0;
}

static void get_pools(struct license_api *api, int64_t now, struct http_response *resp)
{
        json_t *ctx[2] = {json_array(), json_integer(now)};
        int r = ctx[0] && ctx[1] ? license_store_each_pool(api->store, now, add_pool, ctx)
                                 : -ENOMEM;

        json_decref(ctx[1]);
        if (r < 0) {
                json_decref(ctx[0]);
                fail_store(resp, r);
                return;
        }
        reply(resp, 200, json_pack("{s:o}", "pools", ctx[0]));
}

static void post_pool(struct license_api *api, const struct http_request *req, int64_t now,
                      struct http_response *resp)
{
        static const char *const fields[] = {"name", "feature", "seats", "expires", NULL};
        struct license_pool p = {0};
        const char *name, *feature;
        json_t *o, *seats, *exp;
        int r;

        if (!is_admin(api, req, resp))
                return;
        o = body_object(req, resp, fields, false);
        if (!o)
                return;
        if (!name_member(o, "name", resp, &name) || !name_member(o, "feature", resp, &feature))
                goto out;
        seats = json_object_get(o, "seats");
        exp = json_object_get(o, "expires");
        if (!json_is_integer(seats) || json_integer_value(seats) < 0 ||
            json_integer_value(seats) > 1000000000) {
                fail(resp, "BAD_REQUEST", "'seats' must be an integer from 0 to 1000000000");
                goto out;
        }
        if (exp && !json_is_null(exp) &&
            (!json_is_integer(exp) || json_integer_value(exp) <= now ||
             json_integer_value(exp) >= ((json_int_t)1 << 40))) {
                fail(resp, "BAD_REQUEST",
                     "'expires' must be null or a Unix time in the future (now is %lld)",
                     (long long)now);
                goto out;
        }
        snprintf(p.name, sizeof(p.name), "%s", name);
        snprintf(p.feature, sizeof(p.feature), "%s", feature);
        p.seats = json_integer_value(seats);
        p.expires = json_is_integer(exp) ? json_integer_value(exp) : 0;
        r = license_store_pool_create(api->store, &p, now);
        if (r == -EEXIST) {
                fail(resp, "POOL_EXISTS", "a pool named '%s' exists already", p.name);
        } else if (r < 0) {
                fail_store(resp, r);
        } else {
                r = license_store_pool_get(api->store, p.name, now, &p);
                if (r < 0)
                        fail_store(resp, r);
                else
                        reply(resp, 201, pool_json(&p, now));
        }
out:
        json_decref(o);
}

struct lease_walk {
        json_t *arr;
        int64_t now;
};

static int add_lease(void *ctx, const struct license_lease_row *l)
{
        struct lease_walk *w = ctx;

        return json_array_append_new(w->arr, row_json(l, w->now)) ? -ENOMEM : 0;
}

static void get_leases(struct license_api *api, const struct http_request *req, int64_t now,
                       struct http_response *resp)
{
        const char *all = req->query ? req->query(req, "all") : NULL;
        struct lease_walk w = {.arr = json_array(), .now = now};
        int r;

        if (!is_admin(api, req, resp)) {
                json_decref(w.arr);
                return;
        }
        if (all && strcmp(all, "0") != 0 && strcmp(all, "1") != 0) {
                json_decref(w.arr);
                fail(resp, "BAD_REQUEST", "'all' must be 0 or 1");
                return;
        }
        r = w.arr ? license_store_each_lease(api->store, now, all && *all == '1', add_lease, &w)
                  : -ENOMEM;
        if (r < 0) {
                json_decref(w.arr);
                fail_store(resp, r);
                return;
        }
        reply(resp, 200, json_pack("{s:o}", "leases", w.arr));
}

static void post_lease(struct license_api *api, const struct http_request *req, int64_t now,
                       struct http_response *resp)
{
        static const char *const fields[] = {"feature", "vgpu_uuid", "host", NULL};
        const char *feature, *vgpu, *host;
        struct lease l;
        bool existing = false;
        json_t *o;
        int r;

        if (!is_client(api, req, resp))
                return;
        o = body_object(req, resp, fields, false);
        if (!o)
                return;
        if (!name_member(o, "feature", resp, &feature) ||
            !name_member(o, "vgpu_uuid", resp, &vgpu) || !name_member(o, "host", resp, &host))
                goto out;
        r = license_store_grant(api->store, api->key, feature, vgpu, host, now, api->lease_length,
                                &l, &existing);
        if (r == -ENOSPC)
                fail(resp, "NO_SEATS",
                     "every seat of feature '%s' is leased; release a lease, or add seats "
                     "(POST /v1/pools)",
                     feature);
        else if (r == -ENOENT)
                fail(resp, "NO_POOL", "no pool of this server has feature '%s', or they expired",
                     feature);
        else if (r < 0)
                fail_store(resp, r);
        else
                reply(resp, existing ? 200 : 201, lease_json(api, &l, now));
out:
        json_decref(o);
}

static void lease_refused(struct http_response *resp, int r, const char *id)
{
        if (r == -ENOENT)
                fail(resp, "NO_SUCH_LEASE", "no lease has ID '%s'", id);
        else if (r == -ESTALE)
                fail(resp, "LEASE_RELEASED", "lease %s was released; request a new lease", id);
        else if (r == -EKEYEXPIRED)
                fail(resp, "LEASE_EXPIRED",
                     "lease %s expired (or its pool did) and its seat is free; request a new "
                     "lease",
                     id);
        else
                fail_store(resp, r);
}

static bool id_ok(const char *id)
{
        size_t n = strlen(id);

        if (n == 0 || n >= LEASE_ID_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (!strchr("0123456789abcdefABCDEF-", id[i]))
                        return false;
        }
        return true;
}

static void lease_one(struct license_api *api, const struct http_request *req, const char *id,
                      const char *action, int64_t now, struct http_response *resp)
{
        static const char *const no_fields[] = {NULL};
        struct license_lease_row row;
        struct lease l;
        json_t *o;
        int r;

        if (!is_client(api, req, resp))
                return;
        if (!id_ok(id)) {
                fail(resp, "NO_SUCH_LEASE", "no lease has that ID (lease IDs are UUIDs)");
                return;
        }
        if (action) {
                if (strcmp(req->method, "POST") != 0) {
                        fail(resp, "METHOD_NOT_ALLOWED", "renew is POST");
                        return;
                }
                o = body_object(req, resp, no_fields, true);
                if (!o)
                        return;
                json_decref(o);
                r = license_store_renew(api->store, api->key, id, now, api->lease_length, &l);
                if (r < 0)
                        lease_refused(resp, r, id);
                else
                        reply(resp, 200, lease_json(api, &l, now));
                return;
        }
        if (strcmp(req->method, "DELETE") == 0) {
                r = license_store_release(api->store, id, now);
                if (r < 0) {
                        lease_refused(resp, r, id);
                } else {
                        resp->status = 204;
                        resp->json = NULL;
                }
                return;
        }
        if (strcmp(req->method, "GET") != 0) {
                fail(resp, "METHOD_NOT_ALLOWED", "a lease allows GET and DELETE");
                return;
        }
        r = license_store_lease_get(api->store, id, &row);
        if (r < 0)
                lease_refused(resp, r, id);
        else
                reply(resp, 200, row_json(&row, now));
}

static size_t split(char *path, char **segs)
{
        size_t n = 0;

        for (char *p = strtok(path, "/"); p; p = strtok(NULL, "/")) {
                if (n == API_MAX_SEGS)
                        return API_MAX_SEGS + 1;
                segs[n++] = p;
        }
        return n;
}

static bool method_is(const struct http_request *req, const char *allowed,
                      struct http_response *resp)
{
        size_t mlen = strlen(req->method);

        for (const char *p = allowed; *p;) {
                size_t n = strcspn(p, " ");

                if (n == mlen && n && strncmp(p, req->method, n) == 0)
                        return true;
                p += n;
                p += strspn(p, " ");
        }
        fail(resp, "METHOD_NOT_ALLOWED", "%.16s is not allowed here; allowed: %s", req->method,
             allowed);
        return false;
}

void license_api_handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
        struct license_api *api = ctx;
        char path[512], *segs[API_MAX_SEGS];
        int64_t now;
        size_t n;

        if (strlen(req->path) >= sizeof(path)) {
                fail(resp, "NOT_FOUND", "no such resource (path too long)");
                return;
        }
        if (license_clock_now(api->clock_file, &now) < 0) {
                fail(resp, "INTERNAL", "the server's test clock file cannot be read");
                return;
        }
        snprintf(path, sizeof(path), "%s", req->path);
        n = split(path, segs);
        if (n < 2 || strcmp(segs[0], "v1") != 0 || n > 4) {
                fail(resp, "NOT_FOUND", "no such resource; the API is under /v1/");
                return;
        }
        if (strcmp(segs[1], "health") == 0 && n == 2) {
                if (method_is(req, "GET", resp))
                        get_health(api, now, resp);
        } else if (strcmp(segs[1], "pools") == 0 && n == 2) {
                if (!method_is(req, "GET POST", resp))
                        return;
                if (strcmp(req->method, "GET") == 0) {
                        if (is_client(api, req, resp))
                                get_pools(api, now, resp);
                } else
                        post_pool(api, req, now, resp);
        } else if (strcmp(segs[1], "pools") == 0 && n == 3) {
                struct license_pool p;
                int r;

                if (!method_is(req, "GET", resp) || !is_client(api, req, resp))
                        return;
                r = license_store_pool_get(api->store, segs[2], now, &p);
                if (r == -ENOENT)
                        fail(resp, "NO_SUCH_POOL", "no pool is named '%.128s'", segs[2]);
                else if (r < 0)
                        fail_store(resp, r);
                else
                        reply(resp, 200, pool_json(&p, now));
        } else if (strcmp(segs[1], "leases") == 0 && n == 2) {
                if (!method_is(req, "GET POST", resp))
                        return;
                if (strcmp(req->method, "GET") == 0)
                        get_leases(api, req, now, resp);
                else
                        post_lease(api, req, now, resp);
        } else if (strcmp(segs[1], "leases") == 0 && n == 3) {
                lease_one(api, req, segs[2], NULL, now, resp);
        } else if (strcmp(segs[1], "leases") == 0 && n == 4 && strcmp(segs[3], "renew") == 0) {
                lease_one(api, req, segs[2], "renew", now, resp);
        } else {
                fail(resp, "NOT_FOUND", "no such resource");
        }
}
