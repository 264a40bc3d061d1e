// SPDX-License-Identifier: Apache-2.0
// A license server inside a test process, for the client and holder tests: everything the daemon
// does but the signals, on files under one temporary directory.
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

#include "license/licensed_init.h"
#include "test_server.h"

static char tmp[] = "/tmp/vgpu-ltest-XXXXXX";

int ts_tmp_setup(void **state)
{
        (void)state;
        return mkdtemp(tmp) ? 0 : -1;
}

int ts_tmp_teardown(void **state)
{
        char cmd[128];

        (void)state;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        return system(cmd) == 0 ? 0 : -1;
}

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

void ts_set_clock(struct test_server *s, int64_t t)
{
        FILE *f = fopen(s->clock, "we");

        assert_non_null(f);
        fprintf(f, "%lld\n", (long long)t);
        fclose(f);
}

void ts_serve(struct test_server *s)
{
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

void ts_unserve(struct test_server *s)
{
        http_server_free(s->http);
        s->http = NULL;
}

void ts_start(struct test_server *s, const char *name, int64_t lease_len)
{
        char path[192];

        snprintf(s->dir, sizeof(s->dir), "%s/%s", tmp, name);
        snprintf(s->srv_dir, sizeof(s->srv_dir), "%s/srv", s->dir);
        snprintf(s->sock, sizeof(s->sock), "%s/l.sock", s->dir);
        snprintf(s->clock, sizeof(s->clock), "%s/clock", s->dir);
        assert_int_equal(mkdir(s->dir, 0700), 0);
        assert_int_equal(licensed_init(s->srv_dir, "testhost"), 0);
        ts_set_clock(s, TS_T0);
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
                                      .client_token = TS_CLIENT_TOKEN,
                                      .lease_length = lease_len,
                                      .renew_fraction = 0.15,
                                      .clock_file = s->clock};
        assert_int_equal(lease_key_public_b64(s->key, s->api.public_key, sizeof(s->api.public_key)),
                         0);
        ts_serve(s);
}

void ts_stop(struct test_server *s)
{
        ts_unserve(s);
        license_store_close(s->store);
        lease_key_free(s->key);
        free(s->cert);
        free(s->tkey);
}

void ts_add_pool(struct test_server *s, int seats)
{
        struct license_pool p = {.seats = seats};

        snprintf(p.name, sizeof(p.name), "main");
        snprintf(p.feature, sizeof(p.feature), LICENSE_DEFAULT_FEATURE);
        assert_int_equal(license_store_pool_create(s->store, &p, TS_T0), 0);
}

struct license_client *ts_client(struct test_server *s, const struct test_server *key_of, bool tls)
{
        struct license_client *c;
        char pub[192], ca[192];

        snprintf(pub, sizeof(pub), "%s/%s", key_of->srv_dir, LICENSED_SIGNING_PUB);
        snprintf(ca, sizeof(ca), "%s/%s", key_of->srv_dir, LICENSED_TLS_CERT);
        struct license_client_config cfg = {.socket_path = tls ? NULL : s->sock,
                                            .host = "localhost",
                                            .port = s->http ? http_server_tcp_port(s->http) : 1,
                                            .ca_file = ca,
                                            .public_key_file = pub,
                                            .client_token = TS_CLIENT_TOKEN,
                                            .client_host = "node-1",
                                            .timeout_ms = 5000};
        assert_int_equal(license_client_new(&cfg, &c), 0);
        return c;
}
