/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_server: a license server inside a test process (http_server + license_api on a temporary
 * Unix socket and a TCP+TLS port, secrets from licensed_init, a test clock file), and clients of
 * it.
 */
#ifndef VGPU_TESTS_LICENSE_TEST_SERVER_H
#define VGPU_TESTS_LICENSE_TEST_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/http_server.h"
#include "license/license_api.h"
#include "license/license_client.h"
#include "license/license_store.h"

#define TS_T0           1795600000
#define TS_CLIENT_TOKEN "client-secret"

struct test_server {
        char dir[96], sock[128], clock[128], srv_dir[128];
        struct license_store *store;
        struct lease_key *key;
        struct license_api api;
        struct http_server *http;
        char *cert, *tkey;
};

/* ts_tmp_setup / ts_tmp_teardown - make and remove the temporary directory (cmocka group). */
int ts_tmp_setup(void **state);
int ts_tmp_teardown(void **state);

/* ts_start - init and start server name with the clock at TS_T0 (asserts on failure). */
void ts_start(struct test_server *s, const char *name, int64_t lease_len);

/* ts_serve / ts_unserve - start and stop answering (the state stays). */
void ts_serve(struct test_server *s);
void ts_unserve(struct test_server *s);

/* ts_stop - stop and free everything. */
void ts_stop(struct test_server *s);

void ts_set_clock(struct test_server *s, int64_t t);
void ts_add_pool(struct test_server *s, int seats);

/* ts_client - a client of server s that trusts key_of's key and certificate. */
struct license_client *ts_client(struct test_server *s, const struct test_server *key_of, bool tls);

#endif
