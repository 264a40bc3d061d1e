// SPDX-License-Identifier: Apache-2.0
// The scheduling core: policy names, RmPVMRL and slice rules; then the run queue, driven slice by
// slice with synthetic demand (who has work, how much of its slice it uses, random overruns), with
// each vGPU's share of the accounted clock checked against what its policy promises.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/sched.h"

#define MS SCHED_NS_PER_MS

/* Synthetic demand, by vGPU id (< 64). */
struct demand {
        uint64_t busy;         /* bit id: the vGPU has work */
        unsigned use_pct[64];  /* a busy slice uses this % of the slice... */
        unsigned over_pct[64]; /* ...plus a random 0..this % more (an overrun) */
        uint64_t rng;
};

static void demand_init(struct demand *d, uint64_t busy)
{
        memset(d, 0, sizeof(*d));
        d->busy = busy;
        for (size_t i = 0; i < 64; i++)
                d->use_pct[i] = 100;
        d->rng = 0x9e3779b97f4a7c15ull;
}

static uint64_t rng_next(uint64_t *s)
{
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * 0x2545f4914f6cdd1dull;
}

/* Run slices slices; count each id's busy picks in picks (may be NULL). */
static void run(struct sched_rq *rq, struct demand *d, int slices, uint64_t *picks)
{
        for (int s = 0; s < slices; s++) {
                uint64_t used = 0;
                int i;

                for (size_t k = 0; k < rq->n; k++)
                        rq->e[k].has_work = (d->busy >> rq->e[k].id) & 1;
                i = sched_pick(rq);
                if (i >= 0) {
                        uint32_t id = rq->e[i].id;

                        assert_true(rq->e[i].has_work);
                        used = rq->slice_ns * d->use_pct[id] / 100;
                        if (d->over_pct[id])
                                used += rng_next(&d->rng) %
                                        (rq->slice_ns * d->over_pct[id] / 100 + 1);
                        if (picks)
                                picks[id]++;
                }
                sched_charge(rq, i, used);
        }
}

static const struct sched_entity *ent(const struct sched_rq *rq, uint32_t id)
{
        int i = sched_rq_find(rq, id);

        assert_true(i >= 0);
        return &rq->e[i];
}

/* id's share of the clock since snapshot was (a copy of rq) taken; snapshot NULL: since init. */
static double share_since(const struct sched_rq *rq, const struct sched_rq *snap, uint32_t id)
{
        uint64_t c0 = snap ? snap->clock_ns : 0;
        uint64_t u0 = 0;

        if (snap && sched_rq_find(snap, id) >= 0)
                u0 = ent(snap, id)->charged_ns;
        assert_true(rq->clock_ns > c0);
        return (double)(ent(rq, id)->charged_ns - u0) / (double)(rq->clock_ns - c0);
}

static double share(const struct sched_rq *rq, uint32_t id)
{
        return share_since(rq, NULL, id);
}

static void assert_near(double v, double want, double tol)
{
        if (v < want - tol || v > want + tol)
                fail_msg("%f is not within %f of %f", v, tol, want);
}

static void add_ids(struct sched_rq *rq, uint32_t first, uint32_t count, uint32_t share_slots)
{
        for (uint32_t id = first; id < first + count; id++)
                assert_int_equal(sched_rq_add(rq, id, share_slots), 0);
}

static void test_policy_names(void **state)
{
        static const char *const ok[][2] = {
                {"best-effort", "0"}, {"best_effort", "0"}, {"BEST_EFFORT", "0"},
                {"Best-Effort", "0"}, {"equal-share", "1"}, {"EQUAL_SHARE", "1"},
                {"equal", "1"},       {"Equal", "1"},       {"fixed-share", "2"},
                {"fixed_share", "2"}, {"fixed", "2"},       {"FIXED", "2"},
        };
        static const char *const bad[] = {"",       "best",        "best effort", "equal-shares",
                                          "fixed-", "equal share", "round-robin", "0"};
        enum sched_policy p;

        (void)state;
        assert_string_equal(sched_policy_name(SCHED_BEST_EFFORT), "best-effort");
        assert_string_equal(sched_policy_name(SCHED_EQUAL_SHARE), "equal-share");
        assert_string_equal(sched_policy_name(SCHED_FIXED_SHARE), "fixed-share");
        assert_string_equal(sched_policy_name((enum sched_policy)3), "unknown");
        assert_string_equal(sched_policy_name((enum sched_policy) - 1), "unknown");
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                p = (enum sched_policy)77;
                assert_int_equal(sched_policy_parse(ok[i][0], &p), 0);
                assert_int_equal(p, ok[i][1][0] - '0');
        }
        for (int q = SCHED_BEST_EFFORT; q <= SCHED_FIXED_SHARE; q++) {
                assert_int_equal(sched_policy_parse(sched_policy_name(q), &p), 0);
                assert_int_equal(p, q);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                p = (enum sched_policy)77;
                assert_int_equal(sched_policy_parse(bad[i], &p), -EINVAL);
                assert_int_equal(p, 77);
        }
        assert_int_equal(sched_policy_parse(NULL, &p), -EINVAL);
}

static void test_rmpvmrl(void **state)
{
        static const uint32_t bad[] = {
                0x00000002, 0x00000010, 0x00000012, 0x000000ff, /* unknown policy byte */
                0x00000101, 0x0000ff00, 0x00008011,             /* bits 8-15 */
                0x01000001, 0x80000000, 0x3c3c0011,             /* bits 24-31: ARR form */
                0x00030002, 0xffffffff,
        };
        enum sched_policy p;
        uint32_t ms;

        (void)state;
        /* The product's documented examples. */
        assert_int_equal(sched_rmpvmrl_decode(0x00030001, &p, &ms), 0);
        assert_int_equal(p, SCHED_EQUAL_SHARE);
        assert_int_equal(ms, 3);
        assert_int_equal(sched_rmpvmrl_decode(0x00180011, &p, &ms), 0);
        assert_int_equal(p, SCHED_FIXED_SHARE);
        assert_int_equal(ms, 24);
        assert_int_equal(sched_rmpvmrl_decode(0x00000000, &p, &ms), 0);
        assert_int_equal(p, SCHED_BEST_EFFORT);
        assert_int_equal(ms, 0);
        assert_int_equal(sched_rmpvmrl_decode(0x00000011, &p, &ms), 0);
        assert_int_equal(p, SCHED_FIXED_SHARE);
        assert_int_equal(ms, 0); /* the default */
        /* Slices above 30 ms are capped. */
        assert_int_equal(sched_rmpvmrl_decode(0x001e0001, &p, &ms), 0);
        assert_int_equal(ms, 30);
        assert_int_equal(sched_rmpvmrl_decode(0x001f0001, &p, &ms), 0);
        assert_int_equal(ms, 30);
        assert_int_equal(sched_rmpvmrl_decode(0x00ff0011, &p, &ms), 0);
        assert_int_equal(ms, 30);
        /* Refusals leave the outputs alone. */
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                p = (enum sched_policy)77;
                ms = 777;
                assert_int_equal(sched_rmpvmrl_decode(bad[i], &p, &ms), -EINVAL);
                assert_int_equal(p, 77);
                assert_int_equal(ms, 777);
        }
        /* Encoding. */
        assert_int_equal(sched_rmpvmrl_encode(SCHED_EQUAL_SHARE, 3), 0x00030001);
        assert_int_equal(sched_rmpvmrl_encode(SCHED_FIXED_SHARE, 24), 0x00180011);
        assert_int_equal(sched_rmpvmrl_encode(SCHED_BEST_EFFORT, 0), 0x00000000);
        assert_int_equal(sched_rmpvmrl_encode(SCHED_EQUAL_SHARE, 45), 0x001e0001);
        assert_int_equal(sched_rmpvmrl_encode((enum sched_policy)9, 2), UINT32_MAX);
        assert_int_equal(sched_rmpvmrl_decode(UINT32_MAX, &p, &ms), -EINVAL);
        /* Round trips over every policy and slice. */
        for (int q = SCHED_BEST_EFFORT; q <= SCHED_FIXED_SHARE; q++) {
                for (uint32_t s = 0; s <= 40; s++) {
                        uint32_t v = sched_rmpvmrl_encode(q, s);

                        assert_int_equal(sched_rmpvmrl_decode(v, &p, &ms), 0);
                        assert_int_equal(p, q);
                        assert_int_equal(ms, s > 30 ? 30 : s);
                        assert_int_equal(sched_rmpvmrl_encode(p, ms), v);
                }
        }
}

static void test_slices(void **state)
{
        uint32_t ms;

        (void)state;
        assert_int_equal(sched_default_slice_ms(1), 2);
        assert_int_equal(sched_default_slice_ms(4), 2); /* H100-20C: 4 per GPU */
        assert_int_equal(sched_default_slice_ms(8), 2);
        assert_int_equal(sched_default_slice_ms(9), 1);
        assert_int_equal(sched_default_slice_ms(20), 1);
        assert_int_equal(sched_default_slice_ms(32), 1);
        ms = 777;
        assert_int_equal(sched_slice_ms_check(0, &ms), -EINVAL);
        assert_int_equal(ms, 777);
        assert_int_equal(sched_slice_ms_check(1, &ms), 0);
        assert_int_equal(ms, 1);
        assert_int_equal(sched_slice_ms_check(17, &ms), 0);
        assert_int_equal(ms, 17);
        assert_int_equal(sched_slice_ms_check(30, &ms), 0);
        assert_int_equal(ms, 30);
        assert_int_equal(sched_slice_ms_check(31, &ms), 0);
        assert_int_equal(ms, 30);
        assert_int_equal(sched_slice_ms_check(UINT32_MAX, &ms), 0);
        assert_int_equal(ms, 30);
}

static void test_set_policy_refused(void **state)
{
        static struct sched_rq rq, before;
        struct demand d;

        (void)state;
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        add_ids(&rq, 1, 3, 4);
        demand_init(&d, 0x2);
        run(&rq, &d, 10, NULL);
        memcpy(&before, &rq, sizeof(rq));
        /* Mixed framebuffer sizes: fixed share is refused, and nothing changes. */
        assert_int_equal(sched_rq_set_policy(&rq, SCHED_FIXED_SHARE, 2 * MS, true), -EINVAL);
        assert_memory_equal(&rq, &before, sizeof(rq));
        assert_int_equal(sched_rq_set_policy(&rq, (enum sched_policy)3, 2 * MS, false), -EINVAL);
        assert_int_equal(sched_rq_set_policy(&rq, SCHED_BEST_EFFORT, 0, false), -EINVAL);
        assert_memory_equal(&rq, &before, sizeof(rq));
        /* Best effort and equal share are fine with mixed sizes; fixed share without them. */
        assert_int_equal(sched_rq_set_policy(&rq, SCHED_BEST_EFFORT, 3 * MS, true), 0);
        assert_int_equal(rq.policy, SCHED_BEST_EFFORT);
        assert_int_equal(rq.slice_ns, 3 * MS);
        assert_int_equal(sched_rq_set_policy(&rq, SCHED_EQUAL_SHARE, 1 * MS, true), 0);
        assert_int_equal(rq.policy, SCHED_EQUAL_SHARE);
        assert_int_equal(sched_rq_set_policy(&rq, SCHED_FIXED_SHARE, 2 * MS, false), 0);
        assert_int_equal(rq.policy, SCHED_FIXED_SHARE);
        /* init: an unknown policy is best effort, slice 0 the 2 ms default. */
        sched_rq_init(&rq, (enum sched_policy)9, 0);
        assert_int_equal(rq.policy, SCHED_BEST_EFFORT);
        assert_int_equal(rq.slice_ns, 2 * MS);
}

static void test_add_remove(void **state)
{
        static struct sched_rq rq;

        (void)state;
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        assert_int_equal(sched_rq_add(&rq, 1, 0), -EINVAL);
        add_ids(&rq, 100, SCHED_MAX, 4);
        assert_int_equal(rq.n, SCHED_MAX);
        assert_int_equal(sched_rq_add(&rq, 100 + SCHED_MAX, 4), -ENOSPC);
        assert_int_equal(sched_rq_add(&rq, 105, 4), -EEXIST);
        assert_int_equal(sched_rq_remove(&rq, 99), -ENOENT);
        assert_int_equal(sched_rq_find(&rq, 99), -ENOENT);
        assert_int_equal(sched_rq_find(&rq, 111), 11);
        assert_int_equal(sched_rq_remove(&rq, 110), 0);
        assert_int_equal(rq.n, SCHED_MAX - 1);
        assert_int_equal(sched_rq_find(&rq, 110), -ENOENT);
        assert_int_equal(sched_rq_find(&rq, 111), 10); /* the ones after it move down */
        assert_int_equal(sched_rq_find(&rq, 109), 9);
        assert_int_equal(sched_rq_remove(&rq, 110), -ENOENT);
        assert_int_equal(sched_rq_add(&rq, 110, 4), 0);
        assert_int_equal(sched_rq_find(&rq, 110), SCHED_MAX - 1);
}

static void test_equal_share_four_busy(void **state)
{
        static struct sched_rq rq;
        uint64_t picks[64] = {0};
        struct demand d;

        (void)state;
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        add_ids(&rq, 1, 4, 4);
        demand_init(&d, 0x1e);
        run(&rq, &d, 10000, picks);
        assert_int_equal(rq.clock_ns, 10000 * 2 * MS);
        assert_int_equal(rq.idle_ns, 0);
        for (uint32_t id = 1; id <= 4; id++) {
                assert_near(share(&rq, id), 0.25, 0.01);
                assert_int_equal(picks[id], 2500);
                assert_int_equal(ent(&rq, id)->idle_ns, 0);
        }
}

/* 1 busy vGPU (id 1) and 3 idle ones (ids 2-4), under each policy. */
static void test_one_busy_three_idle(void **state)
{
        static struct sched_rq rq;
        struct demand d;

        (void)state;
        demand_init(&d, 0x2);

        /* Best effort: work-conserving, the busy one gets the GPU. */
        sched_rq_init(&rq, SCHED_BEST_EFFORT, 2 * MS);
        add_ids(&rq, 1, 4, 4);
        run(&rq, &d, 10000, NULL);
        assert_true(share(&rq, 1) >= 0.99);
        assert_int_equal(rq.idle_ns, 0);

        /* Equal share: a quarter each; the idle ones' turns are GPU idle time. */
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        add_ids(&rq, 1, 4, 4);
        run(&rq, &d, 10000, NULL);
        assert_near(share(&rq, 1), 0.25, 0.01);
        assert_near((double)rq.idle_ns / (double)rq.clock_ns, 0.75, 0.01);
        for (uint32_t id = 2; id <= 4; id++) {
                assert_int_equal(ent(&rq, id)->charged_ns, 0);
                assert_near((double)ent(&rq, id)->idle_ns / (double)rq.clock_ns, 0.25, 0.01);
        }
        assert_int_equal(rq.empty_ns, 0);

        /* Fixed share, H100-20C (4 per GPU), 4 vGPUs: a quarter each. */
        sched_rq_init(&rq, SCHED_FIXED_SHARE, 2 * MS);
        add_ids(&rq, 1, 4, 4);
        run(&rq, &d, 10000, NULL);
        assert_near(share(&rq, 1), 0.25, 0.01);
        assert_near((double)rq.idle_ns / (double)rq.clock_ns, 0.75, 0.01);
        assert_int_equal(rq.empty_ns, 0);

        /* Fixed share with only the busy vGPU: still a quarter; 3 empty slots idle the GPU. */
        sched_rq_init(&rq, SCHED_FIXED_SHARE, 2 * MS);
        add_ids(&rq, 1, 1, 4);
        run(&rq, &d, 10000, NULL);
        assert_near(share(&rq, 1), 0.25, 0.01);
        assert_near((double)rq.empty_ns / (double)rq.clock_ns, 0.75, 0.01);
        assert_int_equal(rq.idle_ns, rq.empty_ns);
        assert_int_equal(ent(&rq, 1)->idle_ns, 0);

        /* Equal share with only the busy vGPU: all of it (1/N, N = 1). */
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        add_ids(&rq, 1, 1, 4);
        run(&rq, &d, 1000, NULL);
        assert_true(share(&rq, 1) >= 0.99);
}

static void test_fixed_share_two_of_eight(void **state)
{
        static struct sched_rq rq;
        struct demand d;

        (void)state;
        /* Two busy vGPUs of a type with 8 per GPU: 1/8 each, 3/4 of the time in empty slots. */
        sched_rq_init(&rq, SCHED_FIXED_SHARE, 2 * MS);
        add_ids(&rq, 1, 2, 8);
        demand_init(&d, 0x6);
        run(&rq, &d, 16000, NULL);
        assert_near(share(&rq, 1), 0.125, 0.01);
        assert_near(share(&rq, 2), 0.125, 0.01);
        assert_near((double)rq.empty_ns / (double)rq.clock_ns, 0.75, 0.01);
}

static void test_idle_and_underuse(void **state)
{
        static struct sched_rq rq;
        struct demand d;

        (void)state;
        /* Best effort with nobody busy: idle slices of slice_ns, whatever used_ns says. */
        sched_rq_init(&rq, SCHED_BEST_EFFORT, 2 * MS);
        add_ids(&rq, 1, 2, 4);
        rq.e[0].has_work = rq.e[1].has_work = false;
        assert_int_equal(sched_pick(&rq), -1);
        sched_charge(&rq, -1, 12345);
        assert_int_equal(rq.clock_ns, 2 * MS);
        assert_int_equal(rq.idle_ns, 2 * MS);
        assert_int_equal(rq.e[0].idle_ns + rq.e[1].idle_ns, 0);

        /* An uncharged pick passes no turn: equal share with nobody busy picks the same owner
         * again, and only the charge moves the clock and the turn on. */
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        add_ids(&rq, 1, 2, 4);
        assert_int_equal(sched_pick(&rq), -1);
        assert_int_equal(sched_pick(&rq), -1);
        assert_int_equal(rq.clock_ns, 0);
        sched_charge(&rq, -1, 0);
        assert_int_equal(rq.e[0].idle_ns, 2 * MS);
        rq.e[1].has_work = true;
        assert_int_equal(sched_pick(&rq), 1);

        /* Two busy vGPUs that each use half their slice. Best effort: no idle time. */
        demand_init(&d, 0x6);
        d.use_pct[1] = d.use_pct[2] = 50;
        sched_rq_init(&rq, SCHED_BEST_EFFORT, 2 * MS);
        add_ids(&rq, 1, 2, 4);
        run(&rq, &d, 1000, NULL);
        assert_int_equal(rq.clock_ns, 1000 * 1 * MS);
        assert_int_equal(rq.idle_ns, 0);
        assert_near(share(&rq, 1), 0.5, 0.01);

        /* Equal share: the rest of each turn is idle, and the vGPU's idle time. */
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        add_ids(&rq, 1, 2, 4);
        run(&rq, &d, 1000, NULL);
        assert_int_equal(rq.clock_ns, 1000 * 2 * MS);
        assert_int_equal(rq.idle_ns, 1000 * 1 * MS);
        assert_near(share(&rq, 1), 0.25, 0.01);
        assert_int_equal(ent(&rq, 1)->idle_ns, 500 * 1 * MS);
        assert_int_equal(ent(&rq, 2)->idle_ns, 500 * 1 * MS);
}

/* Random overruns of up to 3x the slice, and the heavier ones on the later vGPUs. */
static void test_overruns(void **state)
{
        static const enum sched_policy pols[] = {SCHED_BEST_EFFORT, SCHED_EQUAL_SHARE,
                                                 SCHED_FIXED_SHARE};
        static struct sched_rq rq;

        (void)state;
        for (size_t k = 0; k < 3; k++) {
                uint64_t picks[64] = {0};
                struct demand d;

                sched_rq_init(&rq, pols[k], 2 * MS);
                add_ids(&rq, 1, 4, 4);
                demand_init(&d, 0x1e);
                for (uint32_t id = 1; id <= 4; id++)
                        d.over_pct[id] = 200 * (id - 1) / 3; /* 0, 66, 133, 200 % */
                run(&rq, &d, 100000, picks);
                for (uint32_t id = 1; id <= 4; id++)
                        assert_near(share(&rq, id), 0.25, 0.01);
                /* Fair in time, so the vGPU whose slices run ~2x long gets ~half the turns. */
                assert_true(picks[4] * 10 < picks[1] * 6);
                assert_true(picks[4] * 10 > picks[1] * 4);
        }

        /* Every vGPU overrunning at random, eight of them, equal share. */
        {
                struct demand d;

                sched_rq_init(&rq, SCHED_EQUAL_SHARE, 1 * MS);
                add_ids(&rq, 1, 8, 8);
                demand_init(&d, 0x1fe);
                for (uint32_t id = 1; id <= 8; id++)
                        d.over_pct[id] = 200;
                run(&rq, &d, 200000, NULL);
                for (uint32_t id = 1; id <= 8; id++)
                        assert_near(share(&rq, id), 0.125, 0.01);
        }

        /* Fixed share with empty slots and overruns: the empty slots keep their share too. */
        {
                struct demand d;

                sched_rq_init(&rq, SCHED_FIXED_SHARE, 2 * MS);
                add_ids(&rq, 1, 2, 4);
                demand_init(&d, 0x6);
                d.over_pct[2] = 200;
                run(&rq, &d, 100000, NULL);
                assert_near(share(&rq, 1), 0.25, 0.01);
                assert_near(share(&rq, 2), 0.25, 0.01);
                assert_near((double)rq.empty_ns / (double)rq.clock_ns, 0.5, 0.01);
        }
}

static void test_policy_change(void **state)
{
        static struct sched_rq rq, snap;
        struct demand d;

        (void)state;
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        add_ids(&rq, 1, 2, 4);
        rq.e[0].has_work = true;
        rq.e[1].has_work = false;
        assert_int_equal(sched_pick(&rq), 0);
        sched_charge(&rq, 0, 2 * MS);
        /* Equal share: the next turn is the idle vGPU's. */
        assert_int_equal(sched_pick(&rq), -1);
        assert_int_equal(sched_rq_set_policy(&rq, SCHED_BEST_EFFORT, 2 * MS, false), 0);
        assert_int_equal(rq.policy, SCHED_BEST_EFFORT);
        /* The pending turn is charged as it was picked: the idle vGPU's, under equal share. */
        sched_charge(&rq, -1, 0);
        assert_int_equal(rq.e[1].idle_ns, 2 * MS);
        assert_int_equal(rq.idle_ns, 2 * MS);
        /* From the next pick on, best effort: the busy one runs, no more idle turns. */
        assert_int_equal(sched_pick(&rq), 0);
        sched_charge(&rq, 0, 2 * MS);
        demand_init(&d, 0x2);
        memcpy(&snap, &rq, sizeof(rq));
        run(&rq, &d, 1000, NULL);
        assert_true(share_since(&rq, &snap, 1) >= 0.99);
        assert_int_equal(rq.idle_ns, snap.idle_ns);

        /* Mid-run to fixed share (4 per GPU) with both busy: a quarter each, half empty. */
        d.busy = 0x6;
        run(&rq, &d, 1000, NULL);
        assert_int_equal(sched_rq_set_policy(&rq, SCHED_FIXED_SHARE, 2 * MS, false), 0);
        memcpy(&snap, &rq, sizeof(rq));
        run(&rq, &d, 4000, NULL);
        assert_near(share_since(&rq, &snap, 1), 0.25, 0.01);
        assert_near(share_since(&rq, &snap, 2), 0.25, 0.01);
        assert_near((double)(rq.empty_ns - snap.empty_ns) / (double)(rq.clock_ns - snap.clock_ns),
                    0.5, 0.01);

        /* A turn picked under equal share and charged after the change to best effort is
         * accounted as equal share: the half it left is idle, on the clock. */
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        add_ids(&rq, 1, 1, 4);
        rq.e[0].has_work = true;
        assert_int_equal(sched_pick(&rq), 0);
        assert_int_equal(sched_rq_set_policy(&rq, SCHED_BEST_EFFORT, 2 * MS, false), 0);
        sched_charge(&rq, 0, 1 * MS);
        assert_int_equal(rq.clock_ns, 2 * MS);
        assert_int_equal(rq.e[0].idle_ns, 1 * MS);
        assert_int_equal(sched_pick(&rq), 0);
        sched_charge(&rq, 0, 1 * MS);
        assert_int_equal(rq.clock_ns, 3 * MS);
        assert_int_equal(rq.e[0].idle_ns, 1 * MS);

        /* Fixed share of a type with 16 per GPU to equal share: a fixed-share turn costs 16x
         * the virtual time; the change starts both level, so they alternate at once. */
        for (int pre = 0; pre < 16; pre++) {
                uint64_t picks[64] = {0};

                sched_rq_init(&rq, SCHED_FIXED_SHARE, 2 * MS);
                add_ids(&rq, 1, 2, 16);
                demand_init(&d, 0x6);
                run(&rq, &d, 1000 + pre, NULL);
                assert_int_equal(sched_rq_set_policy(&rq, SCHED_EQUAL_SHARE, 2 * MS, false), 0);
                run(&rq, &d, 8, picks);
                assert_int_equal(picks[1], 4);
                assert_int_equal(picks[2], 4);
        }

        /* A slice change alone applies from the next pick and keeps the policy. */
        assert_int_equal(sched_rq_set_policy(&rq, SCHED_EQUAL_SHARE, 10 * MS, false), 0);
        memcpy(&snap, &rq, sizeof(rq));
        run(&rq, &d, 400, NULL);
        assert_int_equal(rq.policy, SCHED_EQUAL_SHARE);
        assert_int_equal(rq.clock_ns - snap.clock_ns, 400 * 10 * MS);
        assert_near(share_since(&rq, &snap, 1), 0.5, 0.01);
}

/* A vGPU added mid-run, or back from a long idle spell, runs ~1/N of the next slices: no burst. */
static void test_no_catch_up_burst(void **state)
{
        static const enum sched_policy pols[] = {SCHED_BEST_EFFORT, SCHED_EQUAL_SHARE};
        static struct sched_rq rq, snap;

        (void)state;
        for (size_t k = 0; k < 2; k++) {
                uint64_t picks[64] = {0};
                struct demand d;

                /* Added after 10,000 slices of three busy vGPUs. */
                sched_rq_init(&rq, pols[k], 2 * MS);
                add_ids(&rq, 1, 3, 4);
                demand_init(&d, 0x1e);
                d.over_pct[1] = 100;
                run(&rq, &d, 10000, NULL);
                assert_int_equal(sched_rq_add(&rq, 4, 4), 0);
                memcpy(&snap, &rq, sizeof(rq));
                run(&rq, &d, 8, picks);
                assert_true(picks[4] <= 3);
                run(&rq, &d, 92, picks);
                assert_true(picks[4] >= 20 && picks[4] <= 30);
                assert_near(share_since(&rq, &snap, 4), 0.25, 0.05);
        }

        /* Best effort: idle for 10,000 slices while three others ran, then busy. */
        {
                uint64_t picks[64] = {0};
                struct demand d;

                sched_rq_init(&rq, SCHED_BEST_EFFORT, 2 * MS);
                add_ids(&rq, 1, 4, 4);
                demand_init(&d, 0x0e);
                run(&rq, &d, 10000, NULL);
                assert_int_equal(ent(&rq, 4)->charged_ns, 0);
                d.busy = 0x1e;
                memcpy(&snap, &rq, sizeof(rq));
                run(&rq, &d, 8, picks);
                assert_true(picks[4] <= 3);
                run(&rq, &d, 92, picks);
                assert_true(picks[4] >= 24 && picks[4] <= 26);
                assert_near(share_since(&rq, &snap, 4), 0.25, 0.02);
        }
}

static void test_remove_redistributes(void **state)
{
        static struct sched_rq rq, snap;
        struct demand d;
        int i;

        (void)state;
        /* Equal share: 4 -> 3 vGPUs, a third each from then on. */
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        add_ids(&rq, 1, 4, 4);
        demand_init(&d, 0x1e);
        d.over_pct[3] = 100;
        run(&rq, &d, 4000, NULL);
        assert_int_equal(sched_rq_remove(&rq, 2), 0);
        memcpy(&snap, &rq, sizeof(rq));
        run(&rq, &d, 6000, NULL);
        assert_near(share_since(&rq, &snap, 1), 1.0 / 3, 0.01);
        assert_near(share_since(&rq, &snap, 3), 1.0 / 3, 0.01);
        assert_near(share_since(&rq, &snap, 4), 1.0 / 3, 0.01);

        /* Best effort likewise. */
        sched_rq_init(&rq, SCHED_BEST_EFFORT, 2 * MS);
        add_ids(&rq, 1, 4, 4);
        run(&rq, &d, 4000, NULL);
        assert_int_equal(sched_rq_remove(&rq, 1), 0);
        memcpy(&snap, &rq, sizeof(rq));
        run(&rq, &d, 6000, NULL);
        assert_near(share_since(&rq, &snap, 2), 1.0 / 3, 0.01);
        assert_near(share_since(&rq, &snap, 4), 1.0 / 3, 0.01);

        /* Fixed share does not redistribute: the freed slot is an empty one. */
        sched_rq_init(&rq, SCHED_FIXED_SHARE, 2 * MS);
        add_ids(&rq, 1, 4, 4);
        run(&rq, &d, 4000, NULL);
        assert_int_equal(sched_rq_remove(&rq, 2), 0);
        memcpy(&snap, &rq, sizeof(rq));
        run(&rq, &d, 6000, NULL);
        assert_near(share_since(&rq, &snap, 1), 0.25, 0.01);
        assert_near(share_since(&rq, &snap, 3), 0.25, 0.01);
        assert_near((double)(rq.empty_ns - snap.empty_ns) / (double)(rq.clock_ns - snap.clock_ns),
                    0.25, 0.01);

        /* Removing the owner of a pending turn drops the turn: charged as idle. */
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        add_ids(&rq, 1, 3, 4);
        for (size_t k = 0; k < rq.n; k++)
                rq.e[k].has_work = true;
        i = sched_pick(&rq);
        assert_int_equal(i, 0);
        assert_int_equal(sched_rq_remove(&rq, 1), 0);
        sched_charge(&rq, -1, 0);
        assert_int_equal(rq.clock_ns, 2 * MS);
        assert_int_equal(rq.idle_ns, 2 * MS);
        assert_int_equal(rq.e[0].idle_ns + rq.e[1].idle_ns, 0);
        run(&rq, &d, 1000, NULL);
        assert_near(share(&rq, 3), 0.5, 0.01);
}

/* Virtual times near overflow are moved down without changing who is ahead. */
static void test_vtime_rebase(void **state)
{
        static struct sched_rq rq;
        struct demand d;

        (void)state;
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, 2 * MS);
        add_ids(&rq, 1, 2, 4);
        rq.vnow = (1ull << 62) + 5;
        rq.e[0].vtime = rq.vnow + 3 * MS;
        rq.e[1].vtime = rq.vnow;
        rq.e[0].has_work = rq.e[1].has_work = true;
        assert_int_equal(sched_pick(&rq), 1);
        assert_true(rq.vnow < (1ull << 62));
        assert_int_equal(rq.e[0].vtime - rq.e[1].vtime, 3 * MS);
        sched_charge(&rq, 1, 2 * MS);
        demand_init(&d, 0x6);
        run(&rq, &d, 1000, NULL);
        assert_near(share(&rq, 1), 0.5, 0.01);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy_names),
                cmocka_unit_test(test_rmpvmrl),
                cmocka_unit_test(test_slices),
                cmocka_unit_test(test_set_policy_refused),
                cmocka_unit_test(test_add_remove),
                cmocka_unit_test(test_equal_share_four_busy),
                cmocka_unit_test(test_one_busy_three_idle),
                cmocka_unit_test(test_fixed_share_two_of_eight),
                cmocka_unit_test(test_idle_and_underuse),
                cmocka_unit_test(test_overruns),
                cmocka_unit_test(test_policy_change),
                cmocka_unit_test(test_no_catch_up_burst),
                cmocka_unit_test(test_remove_redistributes),
                cmocka_unit_test(test_vtime_rebase),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
