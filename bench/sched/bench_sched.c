// SPDX-License-Identifier: Apache-2.0
// Model-only benchmark of the scheduling core (core/sched.c): N always-busy vGPUs under equal
// share with random per-slice overruns, in accounted time. It reports the fairness error after
// 10,000 slices against a plain round robin baseline fed the same demand in the same run, and what
// sched_pick + sched_charge cost per slice. No GPU, engine, thread or real slice is involved.
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "core/sched.h"

#define SLICES   10000
#define COST_RUN 2000000

static const uint32_t ns_list[] = {2, 4, 8, 16};
static const uint32_t ms_list[] = {1, 2, 10, 30};

static uint64_t rng_next(uint64_t *s)
{
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * 0x2545f4914f6cdd1dull;
}

// What vGPU i of n uses of a slice: the slice plus a random overrun of up to 2i/(n-1) slices, so
// the first never overruns and the last runs up to 3x the slice.
static uint64_t demand(uint64_t *rng, uint32_t i, uint32_t n, uint64_t slice)
{
        uint64_t max_over = slice * 2 * i / (n - 1);

        return slice + rng_next(rng) % (max_over + 1);
}

static double max_err_pct(const uint64_t *used, uint32_t n, uint64_t clock)
{
        double worst = 0;

        for (uint32_t i = 0; i < n; i++) {
                double err = (double)used[i] / (double)clock - 1.0 / n;

                if (err < 0)
                        err = -err;
                if (err > worst)
                        worst = err;
        }
        return 100 * worst;
}

// The run queue: max |share - 1/n| in percentage points after SLICES slices.
static double fairness_sched(uint32_t n, uint64_t slice)
{
        static struct sched_rq rq;
        uint64_t used[SCHED_MAX], rng = 0x9e3779b97f4a7c15ull;

        sched_rq_init(&rq, SCHED_EQUAL_SHARE, slice);
        for (uint32_t i = 0; i < n; i++) {
                sched_rq_add(&rq, i, n);
                rq.e[i].has_work = true;
        }
        for (int s = 0; s < SLICES; s++) {
                int i = sched_pick(&rq);

                sched_charge(&rq, i, i >= 0 ? demand(&rng, (uint32_t)i, n, slice) : 0);
        }
        for (uint32_t i = 0; i < n; i++)
                used[i] = rq.e[i].charged_ns;
        return max_err_pct(used, n, rq.clock_ns);
}

// The baseline: one slice per vGPU in turn, whatever it used.
static double fairness_rr(uint32_t n, uint64_t slice)
{
        uint64_t used[SCHED_MAX] = {0}, clock = 0, rng = 0x9e3779b97f4a7c15ull;

        for (int s = 0; s < SLICES; s++) {
                uint32_t i = (uint32_t)s % n;
                uint64_t u = demand(&rng, i, n, slice);

                used[i] += u;
                clock += u;
        }
        return max_err_pct(used, n, clock);
}

static double now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

// ns per sched_pick + sched_charge with n busy vGPUs; the demand is drawn beforehand.
static double cost_ns(uint32_t n)
{
        static struct sched_rq rq;
        static uint64_t draws[4096];
        uint64_t rng = 42, slice = 2 * SCHED_NS_PER_MS;
        double t0;

        for (size_t k = 0; k < 4096; k++)
                draws[k] = slice + rng_next(&rng) % (2 * slice + 1);
        sched_rq_init(&rq, SCHED_EQUAL_SHARE, slice);
        for (uint32_t i = 0; i < n; i++) {
                sched_rq_add(&rq, i, n);
                rq.e[i].has_work = true;
        }
        t0 = now_ns();
        for (int s = 0; s < COST_RUN; s++) {
                int i = sched_pick(&rq);

                sched_charge(&rq, i, draws[s & 4095]);
        }
        return (now_ns() - t0) / COST_RUN;
}

int main(void)
{
        double err[4][4], rr[4][4], cost[4], worst_ratio = 0;

        for (size_t a = 0; a < 4; a++) {
                for (size_t b = 0; b < 4; b++) {
                        uint64_t slice = ms_list[b] * SCHED_NS_PER_MS;

                        err[a][b] = fairness_sched(ns_list[a], slice);
                        rr[a][b] = fairness_rr(ns_list[a], slice);
                        if (err[a][b] / rr[a][b] > worst_ratio)
                                worst_ratio = err[a][b] / rr[a][b];
                }
                cost[a] = cost_ns(ns_list[a]);
        }

        printf("bench_sched: MODEL ONLY - core/sched.c in accounted time with synthetic demand; no "
               "GPU, engine or thread is involved, and no real slice runs.\n");
        printf("N busy vGPUs, equal share; vGPU i of N uses each slice plus a random overrun of up "
               "to 2i/(N-1) slices (the last up to 3x). Fairness error = max |share - 1/N| of "
               "the clock after %d slices, in percentage points; baseline = plain round robin on "
               "the same demand. Cost: sched_pick + sched_charge per slice, %d slices, %s "
               "build.\n\n",
               SLICES, COST_RUN,
#ifdef __OPTIMIZE__
               "optimised"
#else
               "unoptimised"
#endif
        );
        printf("%4s %6s %12s %14s %12s %12s %14s\n", "N", "slice", "err vtime", "err plain RR",
               "vtime/RR", "pick+charge", "cost/1ms slice");
        for (size_t a = 0; a < 4; a++) {
                for (size_t b = 0; b < 4; b++)
                        printf("%4u %4u ms %10.4f %% %12.4f %% %11.5f x %9.1f ns %12.5f %%\n",
                               ns_list[a], ms_list[b], err[a][b], rr[a][b], err[a][b] / rr[a][b],
                               cost[a], 100 * cost[a] / 1e6);
        }
        printf("\n");
        for (size_t a = 0; a < 4; a++) {
                for (size_t b = 0; b < 4; b++)
                        printf("BENCH sched_fairness_err_N%u_%ums %.4f pct\n", ns_list[a],
                               ms_list[b], err[a][b]);
        }
        for (size_t a = 0; a < 4; a++)
                printf("BENCH sched_pick_ns_N%u %.1f ns\n", ns_list[a], cost[a]);
        // The headline cost is the largest queue measured, the most a pick scans.
        printf("BENCH sched_pick_ns %.1f ns\n", cost[3]);
        printf("BENCH sched_fairness_err_vs_rr_ratio_max %.5f x\n", worst_ratio);
        return 0;
}
