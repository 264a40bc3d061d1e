// SPDX-License-Identifier: Apache-2.0
// The grace/degradation state machine under a clock the test moves: unlicensed grace then
// degradation, a lease restoring full speed at once, offline grace until the lease expires, the
// grace period counted from expiry (not from when it was noticed), and licensing switched off.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "license/grace.h"

/* A controllable clock and the inputs vgpud would feed. */
struct sim {
        struct grace g;
        struct grace_config cfg;
        int64_t now;
        int64_t lease_expires;
        bool reachable;
};

static struct grace_status step(struct sim *s)
{
        struct grace_input in = {
                .now = s->now, .lease_expires = s->lease_expires, .server_reachable = s->reachable};
        struct grace_status st;

        grace_step(&s->g, &s->cfg, &in, &st);
        return st;
}

static void test_unlicensed_then_degraded(void **state)
{
        struct sim s = {.cfg = {.enabled = true, .unlicensed_grace = -1}, .now = 1000};
        struct grace_status st;

        (void)state;
        grace_init(&s.g, s.now);
        st = step(&s);
        assert_int_equal(st.state, GRACE_UNLICENSED);
        assert_int_equal(st.since, 1000);
        assert_int_equal(st.until, 1000 + 20 * 60);
        s.now += 20 * 60 - 1;
        assert_int_equal(step(&s).state, GRACE_UNLICENSED);
        s.now += 1;
        st = step(&s);
        assert_int_equal(st.state, GRACE_DEGRADED);
        assert_true(st.until == GRACE_NEVER);
        s.now += 86400;
        assert_int_equal(step(&s).state, GRACE_DEGRADED);
        /* A lease restores full speed at once, until its expiry. */
        s.lease_expires = s.now + 3600;
        s.reachable = true;
        st = step(&s);
        assert_int_equal(st.state, GRACE_LICENSED);
        assert_false(st.offline);
        assert_int_equal(st.until, s.lease_expires);
}

static void test_offline_grace(void **state)
{
        struct sim s = {.cfg = {.enabled = true, .unlicensed_grace = 600}, .now = 5000};
        struct grace_status st;

        (void)state;
        grace_init(&s.g, s.now);
        s.lease_expires = s.now + 7 * 86400;
        s.reachable = true;
        assert_int_equal(step(&s).state, GRACE_LICENSED);
        /* The server goes away: the lease holds until it expires. */
        s.reachable = false;
        s.now += 6 * 86400;
        st = step(&s);
        assert_int_equal(st.state, GRACE_LICENSED);
        assert_true(st.offline);
        /* Expired: the unlicensed grace runs from the expiry... */
        s.now = s.lease_expires;
        st = step(&s);
        assert_int_equal(st.state, GRACE_UNLICENSED);
        assert_int_equal(st.since, s.lease_expires);
        assert_int_equal(st.until, s.lease_expires + 600);
        /* ...even when first noticed late (vgpud was stopped meanwhile). */
        struct sim late = s;

        grace_init(&late.g, 5000);
        late.now = 5000;
        step(&late); /* licensed */
        late.now = late.lease_expires + 900;
        assert_int_equal(step(&late).state, GRACE_DEGRADED);
        s.now += 600;
        assert_int_equal(step(&s).state, GRACE_DEGRADED);
        /* The server is back and a lease obtained: licensed again, and a later lapse starts a new
         * grace period from that lease's expiry.
         */
        s.reachable = true;
        s.lease_expires = s.now + 100;
        assert_int_equal(step(&s).state, GRACE_LICENSED);
        s.now += 100;
        st = step(&s);
        assert_int_equal(st.state, GRACE_UNLICENSED);
        assert_int_equal(st.since, s.lease_expires);
}

static void test_clock_backwards_and_disabled(void **state)
{
        struct sim s = {.cfg = {.enabled = true, .unlicensed_grace = 60}, .now = 10000};
        struct grace_status st;

        (void)state;
        grace_init(&s.g, s.now);
        s.now = 9000; /* the clock stepped back: still within grace, never a new one */
        st = step(&s);
        assert_int_equal(st.state, GRACE_UNLICENSED);
        assert_int_equal(st.since, 10000);
        s.now = 10060;
        assert_int_equal(step(&s).state, GRACE_DEGRADED);
        s.cfg.enabled = false;
        st = step(&s);
        assert_int_equal(st.state, GRACE_DISABLED);
        assert_true(st.until == GRACE_NEVER);
        /* Zero grace: degraded at once without a lease. */
        s.cfg = (struct grace_config){.enabled = true, .unlicensed_grace = 0};
        grace_init(&s.g, s.now);
        assert_int_equal(step(&s).state, GRACE_DEGRADED);
        assert_string_equal(grace_state_name(GRACE_DEGRADED), "degraded");
        assert_string_equal(grace_state_name(GRACE_LICENSED), "licensed");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unlicensed_then_degraded),
                cmocka_unit_test(test_offline_grace),
                cmocka_unit_test(test_clock_backwards_and_disabled),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
