// SPDX-License-Identifier: Apache-2.0
// `vgpuctl license`: the license server's state (status, pools, leases), creating a pool, and
// checking a lease token offline with the server's public key. It talks to vgpu-licensed, over
// its Unix socket or https:// with the server's certificate, not to vgpud.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http_client.h"
#include "common/http_tls.h"
#include "ctl/ctl.h"
#include "ctl/out.h"
#include "license/lease.h"

#define LICENSE_SOCKET_DEFAULT "/run/vgpu/licensed.sock"

/* Where the license server is, and the admin token when one was given. */
struct lic_opts {
        struct http_target target;
        char host[256];
        char token[256];
        const char *where; /* for messages */
        bool json;
};

static void license_usage(FILE *f)
{
        fputs("usage: vgpuctl license [--server SOCKET | --url https://HOST:PORT --ca CERT]\n"
              "                       [--token-file FILE] COMMAND\n"
              "  status                     the server, its time and its seats\n"
              "  pools                      license pools: feature, seats, leased, expiry\n"
              "  leases [--all]             active leases (--all: also released, expired); admin\n"
              "  pool-create NAME FEATURE SEATS [--expires UNIX_TIME]   admin\n"
              "  verify --key PUB [--vgpu UUID] [--now UNIX_TIME] TOKEN\n"
              "                             check a lease offline with the server's public key\n"
              "server: --server, else $VGPU_LICENSE_SOCKET, else " LICENSE_SOCKET_DEFAULT "\n"
              "admin: the server's user over its socket, or --token-file (the server's "
              "admin-token)\n"
              "over --url, pools and status need --token-file too: client-token or admin-token\n",
              f);
}

/* Copy text from the server with control characters replaced. */
static const char *clean(const char *in, char *out, size_t len)
{
        size_t o = 0;

        for (; in && *in && o + 1 < len; in++)
                out[o++] = ((unsigned char)*in < 0x20 || *in == 0x7f) ? '?' : *in;
        out[o] = '\0';
        return out;
}

static int parse_url(const char *url, struct lic_opts *lo)
{
        const char *h, *colon;
        char *end;
        unsigned long port = 443;
        size_t hlen;

        if (strncmp(url, "https://", 8) != 0)
                return out_error("license: --url wants https://HOST:PORT");
        h = url + 8;
        if (*h == '[') {
                const char *rb = strchr(h, ']');

                if (!rb)
                        return out_error("license: bad IPv6 address in --url");
                hlen = (size_t)(rb - h - 1);
                h++;
                colon = rb[1] == ':' ? rb + 1 : NULL;
        } else {
                colon = strchr(h, ':');
                hlen = colon ? (size_t)(colon - h) : strcspn(h, "/");
        }
        if (!hlen || hlen >= sizeof(lo->host))
                return out_error("license: no host in --url");
        memcpy(lo->host, h, hlen);
        lo->host[hlen] = '\0';
        if (colon) {
                port = strtoul(colon + 1, &end, 10);
                if (end == colon + 1 || (*end && *end != '/') || !port || port > 65535)
                        return out_error("license: bad port in --url");
        }
        lo->target.kind = HTTP_TARGET_TLS;
        lo->target.host = lo->host;
        lo->target.port = (unsigned short)port;
        lo->target.tls = &http_tls_openssl;
        return 0;
}

static int read_token(const char *path, struct lic_opts *lo)
{
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return out_error("license: cannot read the token file %s: %s", path,
                                 strerror(errno));
        n = fread(lo->token, 1, sizeof(lo->token) - 1, f);
        fclose(f);
        lo->token[n] = '\0';
        lo->token[strcspn(lo->token, "\r\n")] = '\0';
        if (!*lo->token)
                return out_error("license: the token file %s is empty", path);
        lo->target.bearer = lo->token;
        return 0;
}

static int transport_error(const struct lic_opts *lo, int err)
{
        switch (err) {
        case -ENOENT:
        case -ECONNREFUSED:
                return out_error("cannot reach the license server at %s: %s (is vgpu-licensed "
                                 "running? --server or --url selects another)",
                                 lo->where, strerror(-err));
        case -EKEYREJECTED:
                return out_error("the license server at %s has a certificate that does not verify "
                                 "with the --ca file (or does not name that host)",
                                 lo->where);
        case -EBADF:
                return out_error("license: the --ca file cannot be read or holds no certificate");
        case -ETIMEDOUT:
                return out_error("the license server at %s did not answer in time", lo->where);
        default:
                return out_error("talking to the license server at %s: %s", lo->where,
                                 strerror(-err));
        }
}

/* One call; 2xx sets *ret_doc and returns 0, else prints one line and returns 1. */
static int lic_call(const struct lic_opts *lo, const char *method, const char *path, json_t *body,
                    json_t **ret_doc)
{
        json_t *doc = NULL;
        const char *msg = NULL;
        char buf[1024];
        int status, r;

        r = http_request(&lo->target, method, path, body, &status, &doc);
        if (r < 0)
                return transport_error(lo, r);
        if (status < 200 || status > 299) {
                if (doc)
                        json_unpack(doc, "{s:{s?s}}", "error", "message", &msg);
                r = msg ? out_error("%s", clean(msg, buf, sizeof(buf)))
                        : out_error("the license server answered %s %s with HTTP %d", method, path,
                                    status);
                json_decref(doc);
                return r;
        }
        if (!json_is_object(doc)) {
                json_decref(doc);
                return out_error("the license server sent a malformed reply to %s %s", method,
                                 path);
        }
        *ret_doc = doc;
        return 0;
}

static const char *str_of(json_t *o, const char *key, char *buf, size_t len)
{
        return clean(json_string_value(json_object_get(o, key)), buf, len);
}

static long long int_of(json_t *o, const char *key)
{
        return (long long)json_integer_value(json_object_get(o, key));
}

static void when(long long t, char *buf, size_t len)
{
        if (!t || lease_format_time(t, buf, len) < 0)
                snprintf(buf, len, "never");
}

static int lic_status(const struct lic_opts *lo)
{
        json_t *health = NULL, *pools = NULL, *p;
        long long seats = 0, leased = 0;
        char a[256], b[64];
        size_t i;

        if (lic_call(lo, "GET", "/v1/health", NULL, &health))
                return 1;
        if (lic_call(lo, "GET", "/v1/pools", NULL, &pools)) {
                json_decref(health);
                return 1;
        }
        if (lo->json)
                return out_json(json_pack("{s:o, s:o}", "health", health, "pools", pools));
        json_array_foreach(json_object_get(pools, "pools"), i, p)
        {
                if (!json_is_true(json_object_get(p, "expired"))) {
                        seats += int_of(p, "seats");
                        leased += int_of(p, "leased");
                }
        }
        out_kv(0, "License Server", "%s", lo->where);
        out_kv(0, "Status", "%s", str_of(health, "status", a, sizeof(a)));
        out_kv(0, "Version", "%s", str_of(health, "version", a, sizeof(a)));
        when(int_of(health, "time"), b, sizeof(b));
        out_kv(0, "Server Time", "%s", b);
        out_kv(0, "Lease Length", "%lld s", int_of(health, "lease_seconds"));
        out_kv(0, "Renewal", "after %.0f%% of the time left",
               json_number_value(json_object_get(health, "renew_fraction")) * 100);
        out_kv(0, "Lease Signing Key", "%s", str_of(health, "public_key", a, sizeof(a)));
        out_kv(0, "Pools", "%zu", json_array_size(json_object_get(pools, "pools")));
        out_kv(4, "Seats", "%lld", seats);
        out_kv(4, "Leased", "%lld", leased);
        out_kv(4, "Free", "%lld", seats > leased ? seats - leased : 0);
        json_decref(health);
        json_decref(pools);
        return 0;
}

static int lic_pools(const struct lic_opts *lo)
{
        json_t *doc = NULL, *p;
        char n[64], f[64], e[64];
        size_t i;

        if (lic_call(lo, "GET", "/v1/pools", NULL, &doc))
                return 1;
        if (lo->json)
                return out_json(doc);
        printf("%-20s  %-20s  %7s  %7s  %7s  %s\n", "Pool", "Feature", "Seats", "Leased", "Free",
               "Expires");
        json_array_foreach(json_object_get(doc, "pools"), i, p)
        {
                when(int_of(p, "expires"), e, sizeof(e));
                printf("%-20s  %-20s  %7lld  %7lld  %7lld  %s%s\n", str_of(p, "name", n, sizeof(n)),
                       str_of(p, "feature", f, sizeof(f)), int_of(p, "seats"), int_of(p, "leased"),
                       int_of(p, "free"), e,
                       json_is_true(json_object_get(p, "expired")) ? " (expired)" : "");
        }
        json_decref(doc);
        return 0;
}

static int lic_leases(const struct lic_opts *lo, bool all)
{
        json_t *doc = NULL, *l;
        char id[64], v[64], h[64], f[64], s[16], e[64];
        size_t i;

        if (lic_call(lo, "GET", all ? "/v1/leases?all=1" : "/v1/leases", NULL, &doc))
                return 1;
        if (lo->json)
                return out_json(doc);
        printf("%-36s  %-36s  %-16s  %-14s  %-24s  %s\n", "Lease ID", "vGPU UUID", "Host",
               "Feature", "Expires", "State");
        json_array_foreach(json_object_get(doc, "leases"), i, l)
        {
                when(int_of(l, "expires"), e, sizeof(e));
                printf("%-36s  %-36s  %-16s  %-14s  %-24s  %s\n", str_of(l, "id", id, sizeof(id)),
                       str_of(l, "vgpu_uuid", v, sizeof(v)), str_of(l, "host", h, sizeof(h)),
                       str_of(l, "feature", f, sizeof(f)), e, str_of(l, "state", s, sizeof(s)));
        }
        json_decref(doc);
        return 0;
}

static int lic_pool_create(const struct lic_opts *lo, int argc, char **argv)
{
        long long seats, expires = 0;
        json_t *body, *doc = NULL;
        char *end;
        int r;

        if (argc < 3)
                return out_error("license pool-create wants NAME FEATURE SEATS [--expires T]");
        seats = strtoll(argv[2], &end, 10);
        if (*end || end == argv[2] || seats < 0)
                return out_error("license pool-create: SEATS must be a number >= 0");
        if (argc == 5 && strcmp(argv[3], "--expires") == 0) {
                expires = strtoll(argv[4], &end, 10);
                if (*end || end == argv[4] || expires <= 0)
                        return out_error("license pool-create: --expires wants a Unix time");
        } else if (argc != 3) {
                return out_error("license pool-create wants NAME FEATURE SEATS [--expires T]");
        }
        body = json_pack("{s:s, s:s, s:I, s:o}", "name", argv[0], "feature", argv[1], "seats",
                         (json_int_t)seats, "expires",
                         expires ? json_integer(expires) : json_null());
        if (!body)
                return out_error("license pool-create: NAME and FEATURE must be UTF-8 text");
        r = lic_call(lo, "POST", "/v1/pools", body, &doc);
        json_decref(body);
        if (r)
                return r;
        if (lo->json)
                return out_json(doc);
        printf("created pool %s: %lld seats of %s\n", argv[0], seats, argv[1]);
        json_decref(doc);
        return 0;
}

static int lic_verify(int argc, char **argv, bool json)
{
        const char *key_path = NULL, *vgpu = NULL, *token = NULL;
        long long now = (long long)time(NULL);
        struct lease_key *key = NULL;
        struct lease l;
        char text[128], t[64];
        int r;

        for (int i = 0; i < argc; i++) {
                if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
                        key_path = argv[++i];
                else if (strcmp(argv[i], "--vgpu") == 0 && i + 1 < argc)
                        vgpu = argv[++i];
                else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc)
                        now = strtoll(argv[++i], NULL, 10);
                else if (argv[i][0] != '-' && !token)
                        token = argv[i];
                else
                        return out_bad_option("license verify", argv[i]);
        }
        if (!key_path || !token)
                return out_error("license verify wants --key PUBLIC_KEY_PEM and a TOKEN");
        r = lease_key_load(key_path, false, &key);
        if (r < 0)
                return out_error("license verify: %s: %s", key_path,
                                 r == -EKEYREJECTED ? "not an Ed25519 public key (PEM)"
                                                    : strerror(-r));
        r = lease_verify(key, token, &l);
        lease_key_free(key);
        if (r == -EBADMSG)
                return out_error("license verify: not a well-formed lease token");
        if (r == -EKEYREJECTED)
                return out_error("license verify: the signature does not verify: the lease is "
                                 "forged, altered, or from another server");
        if (r < 0)
                return out_error("license verify: %s", strerror(-r));
        r = lease_check(&l, vgpu, now);
        if (json) {
                out_json(json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b}", "id", l.id, "feature",
                                   l.feature, "vgpu_uuid", l.vgpu_uuid, "host", l.host, "issued",
                                   (json_int_t)l.issued, "expires", (json_int_t)l.expires, "valid",
                                   r == 0));
        } else {
                lease_status_text(r == 0 ? &l : NULL, text, sizeof(text));
                out_kv(0, "License Status", "%s", text);
                out_kv(4, "Lease ID", "%s", l.id);
                out_kv(4, "Feature", "%s", l.feature);
                out_kv(4, "vGPU UUID", "%s", l.vgpu_uuid);
                out_kv(4, "Host", "%s", l.host);
                lease_format_time(l.issued, t, sizeof(t));
                out_kv(4, "Signed", "%s", t);
                lease_format_time(l.expires, t, sizeof(t));
                out_kv(4, "Expiry", "%s", t);
        }
        if (r == -EKEYEXPIRED)
                return out_error("license verify: the lease expired");
        if (r == -ENOTUNIQ)
                return out_error("license verify: the lease is for another vGPU");
        if (r < 0)
                return out_error("license verify: the lease is not valid yet (clock skew)");
        return 0;
}

int ctl_license(int argc, char **argv, const struct ctl_opts *opts)
{
        struct lic_opts lo = {.json = opts->json};
        const char *server = getenv("VGPU_LICENSE_SOCKET"), *url = NULL, *ca = NULL;
        const char *token_file = NULL;
        int i = 1;

        if (!server || !*server)
                server = LICENSE_SOCKET_DEFAULT;
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
                        server = argv[++i];
                } else if (strcmp(argv[i], "--url") == 0 && i + 1 < argc) {
                        url = argv[++i];
                } else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
                        ca = argv[++i];
                } else if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc) {
                        token_file = argv[++i];
                } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        license_usage(stdout);
                        return 0;
                } else {
                        return out_bad_option("license", argv[i]);
                }
        }
        if (i >= argc) {
                license_usage(stderr);
                return 1;
        }
        if (strcmp(argv[i], "verify") == 0)
                return lic_verify(argc - i - 1, argv + i + 1, opts->json);
        lo.target.timeout_ms = HTTP_TIMEOUT_MS;
        if (url) {
                if (!ca)
                        return out_error("license: --url needs --ca CERT (the server's tls.crt "
                                         "or its CA)");
                if (parse_url(url, &lo))
                        return 1;
                lo.target.ca_file = ca;
                lo.where = url;
        } else {
                lo.target.kind = HTTP_TARGET_UNIX;
                lo.target.path = server;
                lo.where = server;
        }
        if (token_file && read_token(token_file, &lo))
                return 1;
        if (strcmp(argv[i], "status") == 0 && argc == i + 1)
                return lic_status(&lo);
        if (strcmp(argv[i], "pools") == 0 && argc == i + 1)
                return lic_pools(&lo);
        if (strcmp(argv[i], "leases") == 0 && argc == i + 1)
                return lic_leases(&lo, false);
        if (strcmp(argv[i], "leases") == 0 && argc == i + 2 && strcmp(argv[i + 1], "--all") == 0)
                return lic_leases(&lo, true);
        if (strcmp(argv[i], "pool-create") == 0)
                return lic_pool_create(&lo, argc - i - 1, argv + i + 1);
        return out_error("license: unknown command or arguments at '%s'; `vgpuctl license "
                         "--help` lists them",
                         argv[i]);
}
