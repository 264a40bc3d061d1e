// SPDX-License-Identifier: Apache-2.0
// Benchmark of vgpu-licensed's request path: lease grants per second (each a durable SQLite
// transaction, fsync'd) and renewals, against a GET /v1/health baseline measured in the same run on
// the same in-process server and Unix socket; the same GET over TCP+TLS (a handshake per request);
// and offline lease verification per second.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/http_tls.h"
#include "common/log.h"
#include "license/lease.h"
#include "license/license_api.h"
#include "license/license_store.h"
#include "license/licensed_init.h"

#define THREADS 4

static struct http_target target = {.kind = HTTP_TARGET_UNIX, .timeout_ms = 30000};
static struct http_target tls_target = {.kind = HTTP_TARGET_TLS,
                                        .host = "127.0.0.1",
                                        .tls = &http_tls_openssl,
                                        .timeout_ms = 30000};
static char lease_ids[THREADS][4096][LEASE_ID_MAX];

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum op { OP_GET, OP_GRANT, OP_RENEW, OP_TLS_GET };

struct worker {
        int idx, n;
        enum op op;
        int errors;
};

static void *work(void *arg)
{
        struct worker *w = arg;

        for (int i = 0; i < w->n; i++) {
                char path[128];
                json_t *body = NULL, *doc = NULL;
                int status = 0, r;

                if (w->op == OP_GET || w->op == OP_TLS_GET) {
                        r = http_request(w->op == OP_GET ? &target : &tls_target, "GET",
                                         "/v1/health", NULL, &status, &doc);
                } else if (w->op == OP_GRANT) {
                        char uuid[64];

                        snprintf(uuid, sizeof(uuid), "bench-%d-%d", w->idx, i);
                        body = json_pack("{s:s, s:s, s:s}", "feature", "vgpu-compute", "vgpu_uuid",
                                         uuid, "host", "bench");
                        r = http_request(&target, "POST", "/v1/leases", body, &status, &doc);
                        if (r == 0 && status == 201)
                                snprintf(lease_ids[w->idx][i], LEASE_ID_MAX, "%s",
                                         json_string_value(json_object_get(doc, "id")));
                } else {
                        snprintf(path, sizeof(path), "/v1/leases/%s/renew", lease_ids[w->idx][i]);
                        r = http_request(&target, "POST", path, NULL, &status, &doc);
                }
                if (r < 0 || status < 200 || status > 201)
                        w->errors++;
                json_decref(body);
                json_decref(doc);
        }
        return NULL;
}

static char *slurp(const char *dir, const char *file)
{
        char path[256], *buf = calloc(1, 65536);
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        f = fopen(path, "re");
        if (!f || !buf || fread(buf, 1, 65535, f) == 0)
                exit(1);
        fclose(f);
        return buf;
}

/* n requests of op spread over THREADS clients; returns requests per second. */
static double run(enum op op, int n, const char *name)
{
        struct worker w[THREADS];
        pthread_t th[THREADS];
        double t0, dt;
        int errors = 0;

        t0 = now_s();
        for (int i = 0; i < THREADS; i++) {
                w[i] = (struct worker){.idx = i, .n = n / THREADS, .op = op};
                pthread_create(&th[i], NULL, work, &w[i]);
        }
        for (int i = 0; i < THREADS; i++) {
                pthread_join(th[i], NULL);
                errors += w[i].errors;
        }
        dt = now_s() - t0;
        if (errors) {
                fprintf(stderr, "bench_license: %d of %d %s requests failed\n", errors, n, name);
                exit(1);
        }
        printf("%-34s %8d %10.3f s %12.0f /s\n", name, n, dt, n / dt);
        return n / dt;
}

static double verify_rate(struct lease_key *key)
{
        struct lease l = {.issued = 1795600000, .expires = 1795600000 + 604800}, got;
        int n = 20000;
        double t0;

        snprintf(l.id, sizeof(l.id), "0b6d4f3e-1111-4222-8333-444455556666");
        snprintf(l.feature, sizeof(l.feature), "vgpu-compute");
        snprintf(l.vgpu_uuid, sizeof(l.vgpu_uuid), "9f1c0c1e-aaaa-4bbb-8ccc-dddddddddddd");
        snprintf(l.host, sizeof(l.host), "bench");
        if (lease_sign(key, &l) < 0)
                exit(1);
        t0 = now_s();
        for (int i = 0; i < n; i++) {
                if (lease_verify(key, l.token, &got) < 0)
                        exit(1);
        }
        return n / (now_s() - t0);
}

int main(int argc, char **argv)
{
        char dir[] = "/tmp/vgpu-bench-license-XXXXXX", path[128], sock[128], cmd[160];
        char srv_dir[128], ca[192], *cert, *tkey;
        int n = argc > 1 ? atoi(argv[1]) : 2000;
        struct license_pool pool = {.name = "bench", .feature = "vgpu-compute", .seats = 1000000};
        struct license_api api = {.version = "bench", .lease_length = 3600, .renew_fraction = 0.15};
        struct license_store *store;
        struct lease_key *key;
        struct http_server *srv;
        double get, grant, renew, verify, tls_get;

        vgpu_log_init("bench_license");
        if (n < THREADS || n / THREADS > 4096)
                n = 2000;
        if (!mkdtemp(dir) || lease_key_generate(&key) < 0)
                return 1;
        snprintf(path, sizeof(path), "%s/licensed.db", dir);
        snprintf(sock, sizeof(sock), "%s/licensed.sock", dir);
        snprintf(srv_dir, sizeof(srv_dir), "%s/srv", dir);
        snprintf(ca, sizeof(ca), "%s/%s", srv_dir, LICENSED_TLS_CERT);
        if (licensed_init(srv_dir, "localhost") < 0)
                return 1;
        cert = slurp(srv_dir, LICENSED_TLS_CERT);
        tkey = slurp(srv_dir, LICENSED_TLS_KEY);
        if (license_store_open(path, &store) < 0 ||
            license_store_pool_create(store, &pool, (int64_t)time(NULL)) < 0)
                return 1;
        api.store = store;
        api.key = key;
        api.admin_uid = getuid();
        lease_key_public_b64(key, api.public_key, sizeof(api.public_key));
        if (http_server_new(&(struct http_server_config){.unix_path = sock,
                                                         .unix_mode = 0600,
                                                         .unix_gid = (gid_t)-1,
                                                         .tcp_addr = "127.0.0.1",
                                                         .tls_cert_pem = cert,
                                                         .tls_key_pem = tkey},
                            license_api_handle, &api, &srv) < 0)
                return 1;
        target.path = sock;
        tls_target.port = http_server_tcp_port(srv);
        tls_target.ca_file = ca;
        printf("vgpu-licensed request path, %d clients on a Unix socket, state in %s\n", THREADS,
               dir);
        printf("%-34s %8s %12s %14s\n", "operation", "requests", "time", "rate");
        get = run(OP_GET, n, "GET /v1/health (baseline)");
        grant = run(OP_GRANT, n, "POST /v1/leases (grant, fsync'd)");
        renew = run(OP_RENEW, n, "POST /v1/leases/ID/renew");
        tls_get = run(OP_TLS_GET, n / 4, "GET /v1/health over TLS (handshake)");
        verify = verify_rate(key);
        printf("%-34s %8d %10s %14.0f /s\n", "lease_verify (offline, 1 core)", 20000, "", verify);
        printf("BENCH license_get_per_s %.0f req/s\n", get);
        printf("BENCH license_grant_per_s %.0f req/s\n", grant);
        printf("BENCH license_renew_per_s %.0f req/s\n", renew);
        printf("BENCH license_grant_vs_get_ratio %.3f x\n", grant / get);
        printf("BENCH license_renew_vs_get_ratio %.3f x\n", renew / get);
        printf("BENCH license_tls_get_per_s %.0f req/s\n", tls_get);
        printf("BENCH license_tls_get_vs_get_ratio %.3f x\n", tls_get / get);
        printf("BENCH license_verify_per_s %.0f ops/s\n", verify);
        http_server_free(srv);
        license_store_close(store);
        lease_key_free(key);
        free(cert);
        free(tkey);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : 1;
}
