// SPDX-License-Identifier: Apache-2.0
// Benchmark of the PTX interpreter: saxpy, a block reduction with shared memory and barriers, and
// a tiled matmul, run on one worker thread (per-core figures) and compared with a plain C loop
// doing the same work in the same run. Prints a table, then BENCH lines (DESIGN.md).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devmem.h"
#include "ptx/ptx.h"

#ifdef PTX_BENCH_KERNELS

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The C baselines get the same treatment as the interpreter's hot loops: an x86-64-v3 clone. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
        !defined(__SANITIZE_ADDRESS__)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif

HOT static void c_saxpy(int n, float a, const float *x, float *y)
{
        for (int i = 0; i < n; i++)
                y[i] = fmaf(a, x[i], y[i]);
}

HOT static void c_reduce(int n, const int *in, int *out)
{
        for (int b = 0; b < n / 256; b++) {
                int s = 0;
                for (int i = 0; i < 256; i++)
                        s += in[b * 256 + i];
                out[b] = s;
        }
}

HOT static void c_matmul(int n, const float *A, const float *B, float *C)
{
        for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                        float acc = 0;
                        for (int k = 0; k < n; k++)
                                acc = fmaf(A[i * n + k], B[k * n + j], acc);
                        C[i * n + j] = acc;
                }
        }
}

static struct devmem dm;
static struct ptx_module *mod;
static volatile float sink;

struct result {
        const char *name;
        double sim_s;    /* best time of the interpreter */
        double c_s;      /* best time of the C loop */
        uint64_t tinsns; /* thread-instructions of one run */
        uint64_t winsns; /* warp-instructions of one run */
};

static int run(const char *kname, const void *params, size_t psize, uint32_t gx, uint32_t gy,
               uint32_t bx, uint32_t by, struct ptx_launch_stats *st)
{
        const struct ptx_kernel *k;
        if (ptx_module_get_kernel(mod, kname, &k))
                return -1;
        struct ptx_launch l = {.kernel = k,
                               .grid = {gx, gy, 1},
                               .block = {bx, by, 1},
                               .params = params,
                               .params_size = psize,
                               .mem = devmem_map,
                               .mem_ctx = &dm};
        return ptx_launch(&l, st);
}

/* Best of reps timings of the interpreter and of the C loop. */
#define REPS 5

static int bench_saxpy(struct result *res)
{
        enum { N = 1 << 20 };
        dm.used = 0;
        uint64_t dx = devmem_alloc(&dm, N * 4), dy = devmem_alloc(&dm, N * 4);
        float *x = devmem_ptr(&dm, dx), *y = devmem_ptr(&dm, dy);
        for (int i = 0; i < N; i++) {
                x[i] = (float)(i % 100);
                y[i] = 1.0f;
        }
        struct __attribute__((packed)) {
                int32_t n;
                float a;
                uint64_t x, y;
        } p = {N, 0.5f, dx, dy};
        res->name = "saxpy";
        res->sim_s = res->c_s = 1e9;
        for (int r = 0; r < REPS; r++) {
                struct ptx_launch_stats st;
                double t0 = now();
                if (run("saxpy", &p, sizeof(p), N / 256, 1, 256, 1, &st))
                        return -1;
                double t1 = now();
                res->sim_s = fmin(res->sim_s, t1 - t0);
                res->tinsns = st.thread_insns;
                res->winsns = st.warp_insns;
                t0 = now();
                c_saxpy(N, 0.5f, x, y);
                sink = y[N / 2];
                t1 = now();
                res->c_s = fmin(res->c_s, t1 - t0);
        }
        return 0;
}

static int bench_reduce(struct result *res)
{
        enum { N = 1 << 20 };
        dm.used = 0;
        uint64_t din = devmem_alloc(&dm, N * 4), dout = devmem_alloc(&dm, N / 256 * 4);
        int *in = devmem_ptr(&dm, din), *out = devmem_ptr(&dm, dout);
        for (int i = 0; i < N; i++)
                in[i] = i % 7;
        struct __attribute__((packed)) {
                uint64_t in, out;
                int32_t n;
        } p = {din, dout, N};
        res->name = "block_reduce";
        res->sim_s = res->c_s = 1e9;
        for (int r = 0; r < REPS; r++) {
                struct ptx_launch_stats st;
                double t0 = now();
                if (run("block_reduce", &p, sizeof(p), N / 256, 1, 256, 1, &st))
                        return -1;
                double t1 = now();
                res->sim_s = fmin(res->sim_s, t1 - t0);
                res->tinsns = st.thread_insns;
                res->winsns = st.warp_insns;
                t0 = now();
                c_reduce(N, in, out);
                sink = (float)out[3];
                t1 = now();
                res->c_s = fmin(res->c_s, t1 - t0);
        }
        return 0;
}

static int bench_matmul(struct result *res)
{
        enum { N = 256 };
        dm.used = 0;
        uint64_t da = devmem_alloc(&dm, N * N * 4), db = devmem_alloc(&dm, N * N * 4);
        uint64_t dc = devmem_alloc(&dm, N * N * 4);
        float *A = devmem_ptr(&dm, da), *B = devmem_ptr(&dm, db), *C = devmem_ptr(&dm, dc);
        for (int i = 0; i < N * N; i++) {
                A[i] = (float)(i % 13) * 0.25f;
                B[i] = (float)(i % 7) * 0.5f;
        }
        struct __attribute__((packed)) {
                uint64_t a, b, c;
                int32_t n;
        } p = {da, db, dc, N};
        res->name = "matmul_tiled";
        res->sim_s = res->c_s = 1e9;
        for (int r = 0; r < 3; r++) {
                struct ptx_launch_stats st;
                double t0 = now();
                if (run("matmul_tiled", &p, sizeof(p), N / 16, N / 16, 16, 16, &st))
                        return -1;
                double t1 = now();
                res->sim_s = fmin(res->sim_s, t1 - t0);
                res->tinsns = st.thread_insns;
                res->winsns = st.warp_insns;
                t0 = now();
                c_matmul(N, A, B, C);
                sink = C[5];
                t1 = now();
                res->c_s = fmin(res->c_s, t1 - t0);
        }
        return 0;
}

int main(int argc, char **argv)
{
        FILE *f = fopen(PTX_BENCH_KERNELS, "rb");
        if (!f) {
                printf("SKIP: %s is missing\n", PTX_BENCH_KERNELS);
                return 77;
        }
        static char text[1 << 20];
        size_t len = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        char err[PTX_ERRMSG_SIZE];
        if (ptx_module_load(text, len, &mod, err, sizeof(err))) {
                fprintf(stderr, "bench_ptx: %s\n", err);
                return 1;
        }
        if (devmem_init(&dm, 64u << 20)) {
                ptx_module_free(mod);
                return 1;
        }
        struct result res[3];
        int (*const fns[3])(struct result *) = {bench_saxpy, bench_reduce, bench_matmul};
        for (int i = 0; i < 3; i++) {
                static const char *const names[3] = {"saxpy", "block_reduce", "matmul_tiled"};
                /* an optional argument runs one kernel only (for profiling) */
                if (argc > 1 && strcmp(argv[1], names[i]) != 0) {
                        memset(&res[i], 0, sizeof(res[i]));
                        res[i].name = names[i];
                        res[i].sim_s = res[i].c_s = 1;
                        continue;
                }
                if (fns[i](&res[i])) {
                        fprintf(stderr, "bench_ptx: launch failed\n");
                        return 1;
                }
        }
        printf("%-14s %12s %12s %14s %12s %10s\n", "kernel", "sim ms", "C loop ms", "thread-insns",
               "Minsn/s/core", "sim/C");
        for (int i = 0; i < 3; i++) {
                printf("%-14s %12.3f %12.3f %14llu %12.1f %10.1f\n", res[i].name,
                       res[i].sim_s * 1e3, res[i].c_s * 1e3, (unsigned long long)res[i].tinsns,
                       (double)res[i].tinsns / res[i].sim_s / 1e6, res[i].sim_s / res[i].c_s);
        }
        for (int i = 0; i < 3; i++) {
                printf("BENCH ptx_%s_thread_insns_per_s %.1f Minsn/s\n", res[i].name,
                       (double)res[i].tinsns / res[i].sim_s / 1e6);
                printf("BENCH ptx_%s_vs_c_ratio %.2f x\n", res[i].name, res[i].sim_s / res[i].c_s);
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
