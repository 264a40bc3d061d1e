// SPDX-License-Identifier: Apache-2.0
// One vGPU's license over time, against an in-process server whose clock the test moves: no pool
// (unlicensed grace), a lease, renewals at 15% of the time left, a server outage ridden out on the
// lease (offline grace), expiry then degradation, restoration at once when the server is back, a
// lease released behind the holder's back, a vgpud restart getting its lease back, licensing off.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "license/license_holder.h"
#include "test_server.h"

#define T0 TS_T0

struct run {
        struct test_server *s;
        struct license_client *c;
        struct license_holder h;
        struct license_holder_config cfg;
        struct grace_status st;
        int64_t next;
};

/* Move both clocks to t and tick. */
static void tick(struct run *r, int64_t t)
{
        ts_set_clock(r->s, t);
        license_holder_tick(&r->h, r->c, &r->cfg, t, &r->st, &r->next);
}

static void test_holder_lifecycle(void **state)
{
        struct test_server s = {0};
        struct run r = {.s = &s,
                        .cfg = {.grace = {.enabled = true, .unlicensed_grace = 600},
                                .renew_fraction = 0.15,
                                .retry_interval = 30}};
        struct license_lease_row row;
        struct license_pool p;
        char text[96], old_id[LEASE_ID_MAX];

        (void)state;
        ts_start(&s, "holder", 1000);
        r.c = ts_client(&s, &s, false);
        license_holder_init(&r.h, "vgpu-h", T0);
        /* No pool: unlicensed, full speed for the grace period; retried every 30 s. */
        tick(&r, T0);
        assert_int_equal(r.st.state, GRACE_UNLICENSED);
        assert_int_equal(r.h.last_error, -ENOENT);
        assert_true(r.h.reachable);
        assert_int_equal(r.next, T0 + 30);
        assert_int_equal(license_holder_status_text(&r.h, &r.st, text, sizeof(text)), 0);
        assert_string_equal(text, "Unlicensed (Unrestricted)");
        assert_int_equal(license_holder_metric(&r.st), 0);
        /* A pool appears: licensed; renewal due after 15% of the lease. */
        ts_add_pool(&s, 1);
        tick(&r, T0 + 30);
        assert_int_equal(r.st.state, GRACE_LICENSED);
        assert_int_equal(r.h.lease.expires, T0 + 1030);
        assert_int_equal(r.next, T0 + 180);
        assert_int_equal(license_holder_metric(&r.st), 1);
        assert_int_equal(license_holder_status_text(&r.h, &r.st, text, sizeof(text)), 0);
        assert_int_equal(strncmp(text, "Licensed (Expiry: 2026-11-25 ", 29), 0);
        /* Ticking before the renewal time contacts nobody. */
        tick(&r, T0 + 100);
        assert_int_equal(r.h.lease.expires, T0 + 1030);
        tick(&r, T0 + 180);
        assert_int_equal(r.h.lease.expires, T0 + 1180);
        assert_int_equal(r.next, T0 + 330);
        /* The server goes away: the lease holds (offline grace), renewals retried closer in. */
        ts_unserve(&s);
        tick(&r, T0 + 330);
        assert_int_equal(r.st.state, GRACE_LICENSED);
        assert_true(r.st.offline);
        assert_false(r.h.reachable);
        assert_int_equal(r.next, T0 + 330 + (1180 - 330) * 15 / 100);
        /* It expires while the server is still away: unlicensed from the expiry, then degraded. */
        tick(&r, T0 + 1180);
        assert_int_equal(r.st.state, GRACE_UNLICENSED);
        assert_int_equal(r.st.since, T0 + 1180);
        tick(&r, T0 + 1780);
        assert_int_equal(r.st.state, GRACE_DEGRADED);
        assert_int_equal(license_holder_status_text(&r.h, &r.st, text, sizeof(text)), 0);
        assert_string_equal(text, "Unlicensed (Restricted)");
        /* The server is back: the next try licenses the vGPU at once (its old seat expired). */
        ts_serve(&s);
        license_client_free(r.c);
        r.c = ts_client(&s, &s, false);
        tick(&r, T0 + 1810);
        assert_int_equal(r.st.state, GRACE_LICENSED);
        assert_false(r.st.offline);
        /* The admin releases the lease behind its back: the renewal is refused, a new one taken. */
        snprintf(old_id, sizeof(old_id), "%s", r.h.lease.id);
        assert_int_equal(license_store_release(s.store, old_id, T0 + 1900), 0);
        tick(&r, r.next);
        assert_int_equal(r.st.state, GRACE_LICENSED);
        assert_string_not_equal(r.h.lease.id, old_id);
        /* A restarted vgpud (a fresh holder for the same vGPU) gets the same lease back. */
        struct license_holder again;
        struct grace_status st2;
        int64_t next2;

        license_holder_init(&again, "vgpu-h", r.next);
        license_holder_tick(&again, r.c, &r.cfg, r.next, &st2, &next2);
        assert_int_equal(st2.state, GRACE_LICENSED);
        assert_string_equal(again.lease.id, r.h.lease.id);
        /* Detach: the seat is free at once. */
        assert_int_equal(license_holder_release(&r.h, r.c), 0);
        assert_false(r.h.held);
        assert_int_equal(license_store_lease_get(s.store, again.lease.id, &row), 0);
        assert_true(row.released > 0);
        assert_int_equal(license_store_pool_get(s.store, "main", r.next, &p), 0);
        assert_int_equal(p.leased, 0);
        license_client_free(r.c);
        ts_stop(&s);
}

static void test_holder_disabled(void **state)
{
        struct license_holder_config cfg = {.grace = {.enabled = false}};
        struct license_holder h;
        struct grace_status st;
        int64_t next;
        char text[64];

        (void)state;
        license_holder_init(&h, "vgpu-d", T0);
        license_holder_tick(&h, NULL, &cfg, T0 + 100000, &st, &next);
        assert_int_equal(st.state, GRACE_DISABLED);
        assert_true(next == GRACE_NEVER);
        assert_int_equal(license_holder_status_text(&h, &st, text, sizeof(text)), 0);
        assert_string_equal(text, "Not Required");
        assert_int_equal(license_holder_release(&h, NULL), 0);
        /* Licensing on but no server configured: grace, then degraded. */
        cfg.grace = (struct grace_config){.enabled = true, .unlicensed_grace = -1};
        license_holder_tick(&h, NULL, &cfg, T0 + 60, &st, &next);
        assert_int_equal(st.state, GRACE_UNLICENSED);
        assert_int_equal(next, T0 + 20 * 60);
        license_holder_tick(&h, NULL, &cfg, T0 + 20 * 60, &st, &next);
        assert_int_equal(st.state, GRACE_DEGRADED);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_holder_lifecycle),
                cmocka_unit_test(test_holder_disabled),
        };

        return cmocka_run_group_tests(tests, ts_tmp_setup, ts_tmp_teardown);
}
