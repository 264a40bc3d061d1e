// SPDX-License-Identifier: Apache-2.0
// Benchmark of the PTX interpreter: saxpy, a block reduction with shared memory and barriers, and
// a tiled matmul, run on one worker thread (per-core figures) and compared in the same run with
// C loops doing the same work, built with the project's flags and vectorised (c_loops.c).
// Prints a table, then BENCH lines (DESIGN.md). An argument runs one kernel only (profiling).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "c_loops.h"
#include "devmem.h"
#include "ptx/ptx.h"

#ifdef PTX_BENCH_KERNELS

#ifndef PTX_BENCH_BUILD
#define PTX_BENCH_BUILD "unknown"
#endif
#define REPS 5

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct devmem dm;
static struct ptx_module *mod;

struct result {
        const char *name;
        double sim_s;    /* best time of the interpreter */
        double plain_s;  /* best time of the C loop built with the project's flags */
        double vec_s;    /* best time of the vectorised C loop */
        uint64_t tinsns; /* thread-instructions of one launch */
};

/* One benchmark: the launch and the two C loops over the same data. */
struct bench {
        const char *name;
        uint32_t grid[2], block[2];
        const void *params;
        size_t psize;
        void (*setup)(void);
        void (*plain)(void);
        void (*vec)(void);
};

enum { SAXPY_N = 1 << 20, REDUCE_N = 1 << 20, MM_N = 256 };

static uint64_t d0, d1, d2;
static struct __attribute__((packed)) {
        int32_t n;
        float a;
        uint64_t x, y;
} saxpy_p;
static struct __attribute__((packed)) {
        uint64_t in, out;
        int32_t n;
} reduce_p;
static struct __attribute__((packed)) {
        uint64_t a, b, c;
        int32_t n;
} mm_p;

static void saxpy_setup(void)
{
        dm.used = 0;
        d0 = devmem_alloc(&dm, SAXPY_N * 4);
        d1 = devmem_alloc(&dm, SAXPY_N * 4);
        float *x = devmem_ptr(&dm, d0), *y = devmem_ptr(&dm, d1);
        for (int i = 0; i < SAXPY_N; i++) {
                x[i] = (float)(i % 100);
                y[i] = 1.0f;
        }
        saxpy_p.n = SAXPY_N;
        saxpy_p.a = 0.5f;
        saxpy_p.x = d0;
        saxpy_p.y = d1;
}

static void saxpy_plain(void)
{
        plain_saxpy(SAXPY_N, 0.5f, devmem_ptr(&dm, d0), devmem_ptr(&dm, d1));
}

static void saxpy_vec(void)
{
        vec_saxpy(SAXPY_N, 0.5f, devmem_ptr(&dm, d0), devmem_ptr(&dm, d1));
}

static void reduce_setup(void)
{
        dm.used = 0;
        d0 = devmem_alloc(&dm, REDUCE_N * 4);
        d1 = devmem_alloc(&dm, REDUCE_N / 256 * 4);
        int *in = devmem_ptr(&dm, d0);
        for (int i = 0; i < REDUCE_N; i++)
                in[i] = i % 7;
        reduce_p.in = d0;
        reduce_p.out = d1;
        reduce_p.n = REDUCE_N;
}

static void reduce_plain(void)
{
        plain_reduce(REDUCE_N, devmem_ptr(&dm, d0), devmem_ptr(&dm, d1));
}

static void reduce_vec(void)
{
        vec_reduce(REDUCE_N, devmem_ptr(&dm, d0), devmem_ptr(&dm, d1));
}

static void mm_setup(void)
{
        dm.used = 0;
        d0 = devmem_alloc(&dm, MM_N * MM_N * 4);
        d1 = devmem_alloc(&dm, MM_N * MM_N * 4);
        d2 = devmem_alloc(&dm, MM_N * MM_N * 4);
        float *A = devmem_ptr(&dm, d0), *B = devmem_ptr(&dm, d1);
        for (int i = 0; i < MM_N * MM_N; i++) {
                A[i] = (float)(i % 13) * 0.25f;
                B[i] = (float)(i % 7) * 0.5f;
        }
        mm_p.a = d0;
        mm_p.b = d1;
        mm_p.c = d2;
        mm_p.n = MM_N;
}

static void mm_plain(void)
{
        plain_matmul(MM_N, devmem_ptr(&dm, d0), devmem_ptr(&dm, d1), devmem_ptr(&dm, d2));
}

static void mm_vec(void)
{
        vec_matmul(MM_N, devmem_ptr(&dm, d0), devmem_ptr(&dm, d1), devmem_ptr(&dm, d2));
}

/* Best of several timings of fn, after one untimed run that warms the caches. */
static double best_of(void (*fn)(void), int reps)
{
        double best = 1e9;
        fn();
        for (int r = 0; r < reps; r++) {
                double t0 = now();
                fn();
                double t1 = now();
                best = fmin(best, t1 - t0);
        }
        return best;
}

static int run_bench(const struct bench *b, struct result *res)
{
        const struct ptx_kernel *k;
        if (ptx_module_get_kernel(mod, b->name, &k))
                return -1;
        b->setup();
        res->name = b->name;
        res->sim_s = 1e9;
        for (int r = 0; r < REPS; r++) {
                struct ptx_launch l = {.kernel = k,
                                       .grid = {b->grid[0], b->grid[1], 1},
                                       .block = {b->block[0], b->block[1], 1},
                                       .params = b->params,
                                       .params_size = b->psize,
                                       .mem = devmem_map,
                                       .mem_ctx = &dm};
                struct ptx_launch_stats st;
                double t0 = now();
                if (ptx_launch(&l, &st))
                        return -1;
                double t1 = now();
                res->sim_s = fmin(res->sim_s, t1 - t0);
                res->tinsns = st.thread_insns;
        }
        res->plain_s = best_of(b->plain, REPS);
        res->vec_s = best_of(b->vec, REPS);
        return 0;
}

int main(int argc, char **argv)
{
        const struct bench benches[] = {
                {"saxpy",
                 {SAXPY_N / 256, 1},
                 {256, 1},
                 &saxpy_p,
                 sizeof(saxpy_p),
                 saxpy_setup,
                 saxpy_plain,
                 saxpy_vec},
                {"block_reduce",
                 {REDUCE_N / 256, 1},
                 {256, 1},
                 &reduce_p,
                 sizeof(reduce_p),
                 reduce_setup,
                 reduce_plain,
                 reduce_vec},
                {"matmul_tiled",
                 {MM_N / 16, MM_N / 16},
                 {16, 16},
                 &mm_p,
                 sizeof(mm_p),
                 mm_setup,
                 mm_plain,
                 mm_vec},
        };
        enum { NB = sizeof(benches) / sizeof(benches[0]) };
        struct result res[NB];
        static char text[1 << 20];
        char err[PTX_ERRMSG_SIZE];

        FILE *f = fopen(PTX_BENCH_KERNELS, "rb");
        if (!f) {
                printf("SKIP: %s is missing\n", PTX_BENCH_KERNELS);
                return 77;
        }
        size_t len = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        if (ptx_module_load(text, len, &mod, err, sizeof(err))) {
                fprintf(stderr, "bench_ptx: %s\n", err);
                return 1;
        }
        if (devmem_init(&dm, 64u << 20)) {
                ptx_module_free(mod);
                return 1;
        }
        unsigned n = 0;
        for (unsigned i = 0; i < NB; i++) {
                if (argc > 1 && strcmp(argv[1], benches[i].name) != 0)
                        continue;
                if (run_bench(&benches[i], &res[n])) {
                        fprintf(stderr, "bench_ptx: %s failed\n", benches[i].name);
                        return 1;
                }
                n++;
        }
        printf("one worker thread; C = the same loop built with the project's flags (%s build), "
               "C-vec = built -O3 for AVX2/FMA\n",
               PTX_BENCH_BUILD);
        printf("%-13s %9s %9s %9s %13s %12s %8s %9s\n", "kernel", "sim ms", "C ms", "C-vec ms",
               "thread-insns", "Minsn/s/core", "sim/C", "sim/C-vec");
        for (unsigned i = 0; i < n; i++) {
                printf("%-13s %9.3f %9.3f %9.3f %13llu %12.1f %8.1f %9.1f\n", res[i].name,
                       res[i].sim_s * 1e3, res[i].plain_s * 1e3, res[i].vec_s * 1e3,
                       (unsigned long long)res[i].tinsns,
                       (double)res[i].tinsns / res[i].sim_s / 1e6, res[i].sim_s / res[i].plain_s,
                       res[i].sim_s / res[i].vec_s);
        }
        for (unsigned i = 0; i < n; i++) {
                printf("BENCH ptx_%s_thread_insns_per_s %.1f Minsn/s\n", res[i].name,
                       (double)res[i].tinsns / res[i].sim_s / 1e6);
                printf("BENCH ptx_%s_vs_c_ratio %.2f x\n", res[i].name,
                       res[i].sim_s / res[i].plain_s);
                printf("BENCH ptx_%s_vs_c_vec_ratio %.2f x\n", res[i].name,
                       res[i].sim_s / res[i].vec_s);
        }
        ptx_module_free(mod);
        devmem_fini(&dm);
        return 0;
}

#else

int main(void)
{
        printf("SKIP: nvcc was not found when this was built; the benchmark kernels need it\n");
        return 77;
}

#endif
