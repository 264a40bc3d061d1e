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
#include "test_server.h"

#define T0 TS_T0

static void test_lifecycle(void **state)
{
        struct test_server s = {0};
        struct license_client *c;
        struct lease a, b, a2, x;
        char text[96];

        (void)state;
        ts_start(&s, "life", 1000);
        assert_int_equal(licensed_init(s.srv_dir, "testhost"), -EEXIST);
        ts_add_pool(&s, 1);
        c = ts_client(&s, &s, false);
        assert_int_equal(license_client_request(c, "vgpu-a", T0, &a), 0);
        assert_int_equal(a.expires, T0 + 1000);
        assert_string_equal(a.host, "node-1");
        assert_int_equal(lease_status_text(&a, text, sizeof(text)), 0);
        assert_int_equal(license_client_request(c, "vgpu-b", T0, &b), -ENOSPC);
        /* Renewal at 15% of the time left moves the expiry on. */
        ts_set_clock(&s, T0 + 150);
        assert_int_equal(lease_renew_at(&a, T0, 0.15, 5), T0 + 150);
        assert_int_equal(license_client_renew(c, &a, T0 + 150, &a2), 0);
        assert_string_equal(a2.id, a.id);
        assert_int_equal(a2.expires, T0 + 1150);
        /* Expired under the test clock: renewal refused, the seat goes to another vGPU. */
        ts_set_clock(&s, T0 + 1150);
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
        ts_stop(&s);
}

static void test_forged_server_and_tls(void **state)
{
        struct test_server s = {0}, evil = {0};
        struct license_client *c;
        struct lease l;
        int r;

        (void)state;
        ts_start(&s, "real", 1000);
        ts_start(&evil, "evil", 1000);
        ts_add_pool(&s, 2);
        ts_add_pool(&evil, 2);
        /* A server with another key (a forger, or a misconfigured client): found by the check,
         * and its leases fail.
         */
        int64_t server_time = 0;

        c = ts_client(&s, &s, false);
        assert_int_equal(license_client_check(c, &server_time), 0);
        assert_int_equal(server_time, T0);
        license_client_free(c);
        c = ts_client(&evil, &s, false);
        assert_int_equal(license_client_check(c, &server_time), -EKEYREJECTED);
        assert_int_equal(license_client_request(c, "vgpu-a", T0, &l), -EKEYREJECTED);
        license_client_free(c);
        /* TLS with the server's certificate as CA works; with another server's it is refused. */
        c = ts_client(&s, &s, true);
        assert_int_equal(license_client_request(c, "vgpu-t", T0, &l), 0);
        assert_int_equal(license_client_release(c, &l), 0);
        license_client_free(c);
        c = ts_client(&s, &evil, true);
        r = license_client_request(c, "vgpu-t", T0, &l);
        assert_int_equal(r, -EKEYREJECTED);
        license_client_free(c);
        /* Over TCP a lease needs the client token. */
        s.api.client_token = "another-secret";
        c = ts_client(&s, &s, true);
        assert_int_equal(license_client_request(c, "vgpu-t", T0, &l), -EPERM);
        license_client_free(c);
        s.api.client_token = TS_CLIENT_TOKEN;
        ts_stop(&evil);
        /* An unreachable server is told apart from a refusal. */
        c = ts_client(&s, &s, false);
        ts_stop(&s);
        r = license_client_request(c, "vgpu-a", T0, &l);
        assert_true(license_client_unreachable(r));
        assert_false(license_client_unreachable(-ENOSPC));
        license_client_free(c);
}

/* Admin token over TLS: the bearer header reaches the handler. */
static void test_admin_token_over_tls(void **state)
{
        struct test_server s = {0};
        char ca[160];
        int status;
        json_t *doc = NULL;

        (void)state;
        ts_start(&s, "admin", 1000);
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
        ts_stop(&s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lifecycle),
                cmocka_unit_test(test_forged_server_and_tls),
                cmocka_unit_test(test_admin_token_over_tls),
        };

        return cmocka_run_group_tests(tests, ts_tmp_setup, ts_tmp_teardown);
}
