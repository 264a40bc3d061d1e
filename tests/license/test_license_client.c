// SPDX-License-Identifier: Apache-2.0
// The lease client against a real server in this process (http_server + license_api on a temporary
// Unix socket and TCP+TLS port, secrets from licensed_init, a test clock file): request, renew,
// release, seats running out, expiry under the test clock, a server with another key (its leases
// are refused as forged), TLS with the right and the wrong certificate, and an unreachable server.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/http_tls.h"
#include "license/grace.h"
#include "license/license_api.h"
#include "license/license_client.h"
#include "license/license_store.h"
#include "license/licensed_init.h"

#define T0 1795600000

struct server {
        char dir[64], sock[96], clock[96], srv_dir[96];
        struct license_store *store;
        struct lease_key *key;
        struct license_api api;
        struct http_server *http;
        char *cert, *tkey;
};

static char tmp[] = "/tmp/vgpu-lclient-XXXXXX";

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf = calloc(1, 65536);

        assert_non_null(f);
        assert_non_null(buf);
        assert_true(fread(buf, 1, 65535, f) > 0);
        fclose(f);
        return buf;
}

static void set_clock(struct server *s, int64_t t)
{
        FILE *f = fopen(s->clock, "we");

        assert_non_null(f);
        fprintf(f, "%lld\n", (long long)t);
        fclose(f);
}

static void server_start(struct server *s, const char *name, int64_t lease_len)
{
        char path[160];

        snprintf(s->dir, sizeof(s->dir), "%s/%s", tmp, name);
        snprintf(s->srv_dir, sizeof(s->srv_dir), "%s/srv", s->dir);
        snprintf(s->sock, sizeof(s->sock), "%s/l.sock", s->dir);
        snprintf(s->clock, sizeof(s->clock), "%s/clock", s->dir);
        assert_int_equal(mkdir(s->dir, 0700), 0);
        assert_int_equal(licensed_init(s->srv_dir, "testhost"), 0);
        assert_int_equal(licensed_init(s->srv_dir, "testhost"), -EEXIST);
        set_clock(s, T0);
        snprintf(path, sizeof(path), "%s/%s", s->srv_dir, LICENSED_SIGNING_KEY);
        assert_int_equal(lease_key_load(path, true, &s->key), 0);
        snprintf(path, sizeof(path), "%s/%s", s->srv_dir, LICENSED_DB);
        assert_int_equal(license_store_open(path, &s->store), 0);
        snprintf(path, sizeof(path), "%s/%s", s->srv_dir, LICENSED_TLS_CERT);
        s->cert = slurp(path);
        snprintf(path, sizeof(path), "%s/%s", s->srv_dir, LICENSED_TLS_KEY);
        s->tkey = slurp(path);
        s->api = (struct license_api){.store = s->store,
                                      .key = s->key,
                                      .version = "test",
                                      .admin_uid = getuid(),
                                      .lease_length = lease_len,
                                      .renew_fraction = 0.15,
                                      .clock_file = s->clock};
        assert_int_equal(lease_key_public_b64(s->key, s->api.public_key, sizeof(s->api.public_key)),
                         0);
        assert_int_equal(http_server_new(&(struct http_server_config){.unix_path = s->sock,
                                                                      .unix_mode = 0600,
                                                                      .unix_gid = (gid_t)-1,
                                                                      .tcp_addr = "127.0.0.1",
                                                                      .tcp_port = 0,
                                                                      .tls_cert_pem = s->cert,
                                                                      .tls_key_pem = s->tkey},
                                         license_api_handle, &s->api, &s->http),
                         0);
        assert_true(http_server_tcp_port(s->http) > 0);
}

static void server_stop(struct server *s)
{
        http_server_free(s->http);
        license_store_close(s->store);
        lease_key_free(s->key);
        free(s->cert);
        free(s->tkey);
}

static void add_pool(struct server *s, int seats)
{
        struct license_pool p = {.seats = seats};

        snprintf(p.name, sizeof(p.name), "main");
        snprintf(p.feature, sizeof(p.feature), LICENSE_DEFAULT_FEATURE);
        assert_int_equal(license_store_pool_create(s->store, &p, T0), 0);
}

static struct license_client *client_of(struct server *s, const struct server *key_of, bool tls)
{
        struct license_client *c;
        char pub[160], ca[160];

        snprintf(pub, sizeof(pub), "%s/%s", key_of->srv_dir, LICENSED_SIGNING_PUB);
        snprintf(ca, sizeof(ca), "%s/%s", key_of->srv_dir, LICENSED_TLS_CERT);
        struct license_client_config cfg = {.socket_path = tls ? NULL : s->sock,
                                            .host = "localhost",
                                            .port = http_server_tcp_port(s->http),
                                            .ca_file = ca,
                                            .public_key_file = pub,
                                            .client_host = "node-1",
                                            .timeout_ms = 5000};
        assert_int_equal(license_client_new(&cfg, &c), 0);
        return c;
}

static int setup(void **state)
{
        (void)state;
        return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
        char cmd[128];

        (void)state;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        return system(cmd) == 0 ? 0 : -1;
}

static void test_lifecycle(void **state)
{
        struct server s = {0};
        struct license_client *c;
        struct lease a, b, a2, x;
        char text[96];

        (void)state;
        server_start(&s, "life", 1000);
        add_pool(&s, 1);
        c = client_of(&s, &s, false);
        assert_int_equal(license_client_request(c, "vgpu-a", T0, &a), 0);
        assert_int_equal(a.expires, T0 + 1000);
        assert_string_equal(a.host, "node-1");
        assert_int_equal(lease_status_text(&a, text, sizeof(text)), 0);
        assert_int_equal(license_client_request(c, "vgpu-b", T0, &b), -ENOSPC);
        /* Renewal at 15% of the time left moves the expiry on. */
        set_clock(&s, T0 + 150);
        assert_int_equal(lease_renew_at(&a, T0, 0.15, 5), T0 + 150);
        assert_int_equal(license_client_renew(c, &a, T0 + 150, &a2), 0);
        assert_string_equal(a2.id, a.id);
        assert_int_equal(a2.expires, T0 + 1150);
        /* Expired under the test clock: renewal refused, the seat goes to another vGPU. */
        set_clock(&s, T0 + 1150);
        assert_int_equal(license_client_renew(c, &a2, T0 + 1150, &x), -EKEYEXPIRED);
        assert_int_equal(license_client_request(c, "vgpu-b", T0 + 1150, &b), 0);
        assert_int_equal(license_client_release(c, &b), 0);
        assert_int_equal(license_client_release(c, &b), 0);
        assert_int_equal(license_client_renew(c, &b, T0 + 1150, &x), -ESTALE);
        assert_int_equal(license_client_request(c, "vgpu-c", T0 + 1150, &x), 0);
        /* A lease that arrives expired by the client's clock is refused. */
        assert_int_equal(license_client_request(c, "vgpu-c", T0 + 5000, &x), -EKEYEXPIRED);
        assert_int_equal(license_client_request(c, "bad\nname", T0, &x), -EINVAL);
        license_client_free(c);
        server_stop(&s);
}

static void test_forged_server_and_tls(void **state)
{
        struct server s = {0}, evil = {0};
        struct license_client *c;
        struct lease l;
        int r;

        (void)state;
        server_start(&s, "real", 1000);
        server_start(&evil, "evil", 1000);
        add_pool(&s, 2);
        add_pool(&evil, 2);
        /* A server with another key (a forger, or a misconfigured client): its leases fail. */
        c = client_of(&evil, &s, false);
        assert_int_equal(license_client_request(c, "vgpu-a", T0, &l), -EKEYREJECTED);
        license_client_free(c);
        /* TLS with the server's certificate as CA works; with another server's it is refused. */
        c = client_of(&s, &s, true);
        assert_int_equal(license_client_request(c, "vgpu-t", T0, &l), 0);
        assert_int_equal(license_client_release(c, &l), 0);
        license_client_free(c);
        c = client_of(&s, &evil, true);
        r = license_client_request(c, "vgpu-t", T0, &l);
        assert_int_equal(r, -EKEYREJECTED);
        license_client_free(c);
        server_stop(&evil);
        /* An unreachable server is told apart from a refusal. */
        c = client_of(&s, &s, false);
        server_stop(&s);
        r = license_client_request(c, "vgpu-a", T0, &l);
        assert_true(license_client_unreachable(r));
        assert_false(license_client_unreachable(-ENOSPC));
        license_client_free(c);
}

/* Admin token over TLS: the bearer header reaches the handler. */
static void test_admin_token_over_tls(void **state)
{
        struct server s = {0};
        char ca[160];
        int status;
        json_t *doc = NULL;

        (void)state;
        server_start(&s, "admin", 1000);
        s.api.admin_token = "sesame";
        snprintf(ca, sizeof(ca), "%s/%s", s.srv_dir, LICENSED_TLS_CERT);
        struct http_target t = {.kind = HTTP_TARGET_TLS,
                                .host = "127.0.0.1",
                                .port = http_server_tcp_port(s.http),
                                .ca_file = ca,
                                .tls = &http_tls_openssl,
                                .timeout_ms = 5000};
        assert_int_equal(http_request(&t, "GET", "/v1/leases", NULL, &status, &doc), 0);
        assert_int_equal(status, 401);
        json_decref(doc);
        t.bearer = "wrong";
        assert_int_equal(http_request(&t, "GET", "/v1/leases", NULL, &status, &doc), 0);
        assert_int_equal(status, 403);
        json_decref(doc);
        t.bearer = "sesame";
        assert_int_equal(http_request(&t, "GET", "/v1/leases", NULL, &status, &doc), 0);
        assert_int_equal(status, 200);
        assert_true(json_is_array(json_object_get(doc, "leases")));
        json_decref(doc);
        t.bearer = "bad token";
        assert_int_equal(http_request(&t, "GET", "/v1/leases", NULL, &status, &doc), -EINVAL);
        t.bearer = NULL;
        t.ca_file = "/nonexistent.pem";
        assert_int_equal(http_request(&t, "GET", "/v1/health", NULL, &status, &doc), -EBADF);
        server_stop(&s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lifecycle),
                cmocka_unit_test(test_forged_server_and_tls),
                cmocka_unit_test(test_admin_token_over_tls),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
