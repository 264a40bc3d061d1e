// SPDX-License-Identifier: Apache-2.0
// GPU benchmark: one driver-API program that run.sh runs twice, natively (NVIDIA's libcuda.so.1)
// and remoted (vgpu's guest driver, LD_LIBRARY_PATH=build/lib), to compare null-kernel launch
// cost, launch-to-completion latency, pinned HtoD/DtoH bandwidth and a tiled SGEMM. Prints a
// table, then `BENCH gpu_<label>_<metric> <value> <unit>`; exits 77 when there is no GPU.
#include <cuda.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TILE        16
#define MAX_METRICS 64
#define MAX_REPS    50000

// The kernels of kernels.cu, as a fatbinary with PTX (cuda_embed.cmake).
extern const unsigned char gpu_kernels_fatbin[];

#define CK(call) check((call), #call, __LINE__)

struct opts {
        const char *label;
        const char *json;
        int quick;
        int matmul_n;
        int launches;     // null kernels in the rate run
        int latency_reps; // launch + synchronize round trips
        int matmul_warm;  // untimed runs before the timed ones
        int matmul_runs;  // timed runs
        double copy_s;    // time to spend on each copy size and direction
        size_t copy_max;  // the largest copy
};

struct metric {
        char name[48];
        double value;
        const char *unit;
};

static struct metric metrics[MAX_METRICS];
static int n_metrics;

static void check(CUresult res, const char *what, int line)
{
        const char *name = NULL;

        if (res == CUDA_SUCCESS)
                return;
        if (cuGetErrorName(res, &name) != CUDA_SUCCESS || !name)
                name = "unknown CUresult";
        printf("FAIL %s: %s (%d) at line %d\n", what, name, (int)res, line);
        fflush(stdout);
        exit(1);
}

static void __attribute__((format(printf, 1, 2), noreturn)) fail(const char *fmt, ...)
{
        va_list ap;

        printf("FAIL ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
        exit(1);
}

static void __attribute__((noreturn)) skip(const char *why, CUresult res)
{
        const char *name = NULL;

        if (cuGetErrorName(res, &name) != CUDA_SUCCESS || !name)
                name = "unknown CUresult";
        printf("SKIP: %s (%s)\n", why, name);
        exit(77);
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a;
        double y = *(const double *)b;

        return x < y ? -1 : x > y;
}

// The value at fraction q (0..1) of n sorted samples; sorts them in place.
static double quantile(double *v, int n, double q)
{
        int i = (int)(q * (double)(n - 1) + 0.5);

        qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
        return v[i];
}

static double *samples_new(int n)
{
        double *v = malloc((size_t)n * sizeof(*v));

        if (!v)
                fail("out of host memory");
        return v;
}

static unsigned xorshift(unsigned *state)
{
        unsigned x = *state;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *state = x;
        return x;
}

// Record one key figure for the BENCH lines and the JSON file.
static void __attribute__((format(printf, 3, 4)))
metric_add(double value, const char *unit, const char *fmt, ...)
{
        struct metric *m;
        va_list ap;

        if (n_metrics == MAX_METRICS)
                fail("too many metrics");
        m = &metrics[n_metrics++];
        va_start(ap, fmt);
        vsnprintf(m->name, sizeof(m->name), fmt, ap);
        va_end(ap);
        m->value = value;
        m->unit = unit;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: bench_gpu [--label NAME] [--json FILE] [--quick] [--matmul-n N]\n"
                   "  --label NAME   prefix of the BENCH lines (gpu_NAME_...), [A-Za-z0-9_-]\n"
                   "  --json FILE    also write the results to FILE as JSON\n"
                   "  --quick        smaller counts and copies (a run of seconds)\n"
                   "  --matmul-n N   SGEMM size, N x N floats (default 2048)\n");
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
        *o = (struct opts){.label = "gpu", .matmul_n = 2048};
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (strcmp(a, "--help") == 0) {
                        usage(stdout);
                        exit(0);
                } else if (strcmp(a, "--quick") == 0) {
                        o->quick = 1;
                        continue;
                } else if (!v) {
                        usage(stderr);
                        exit(2);
                }
                if (strcmp(a, "--label") == 0) {
                        o->label = v;
                } else if (strcmp(a, "--json") == 0) {
                        o->json = v;
                } else if (strcmp(a, "--matmul-n") == 0) {
                        char *end;
                        long n;

                        errno = 0;
                        n = strtol(v, &end, 10);
                        if (errno || end == v || *end || n < 1 || n > 16384)
                                fail("--matmul-n %s: want an integer in 1..16384", v);
                        o->matmul_n = (int)n;
                } else {
                        usage(stderr);
                        exit(2);
                }
                i++;
        }
        if (!*o->label || strspn(o->label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789_-") != strlen(o->label))
                fail("--label %s: use letters, digits, '_' and '-'", o->label);
        o->launches = o->quick ? 2000 : 20000;
        o->latency_reps = o->quick ? 200 : 2000;
        o->matmul_warm = o->quick ? 1 : 2;
        o->matmul_runs = o->quick ? 3 : 10;
        o->copy_s = o->quick ? 0.02 : 0.2;
        o->copy_max = o->quick ? (size_t)256 << 20 : (size_t)1 << 30;
}

// Null-kernel launch rate: launches queued back to back on one stream, then one synchronize.
static void bench_launch_rate(const struct opts *o, CUfunction k, CUstream s)
{
        double t0, submit, total;

        for (int i = 0; i < 100; i++)
                CK(cuLaunchKernel(k, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
        CK(cuStreamSynchronize(s));
        t0 = now_s();
        for (int i = 0; i < o->launches; i++)
                CK(cuLaunchKernel(k, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
        submit = now_s() - t0;
        CK(cuStreamSynchronize(s));
        total = now_s() - t0;

        printf("null kernel, %d launches (1 block x 32 threads) on one stream, then a sync\n",
               o->launches);
        printf("  %-40s %14.0f launches/s\n", "rate", o->launches / total);
        printf("  %-40s %14.3f us\n", "per launch, with execution", total * 1e6 / o->launches);
        printf("  %-40s %14.3f us\n", "per launch, caller's cost", submit * 1e6 / o->launches);
        metric_add(o->launches / total, "launches/s", "gpu_%s_launch_rate", o->label);
        metric_add(total * 1e6 / o->launches, "us", "gpu_%s_launch_us", o->label);
        metric_add(submit * 1e6 / o->launches, "us", "gpu_%s_launch_submit_us", o->label);
}

// Launch-to-completion latency: one launch, then cuStreamSynchronize, timed one by one.
static void bench_latency(const struct opts *o, CUfunction k, CUstream s)
{
        double *lat = samples_new(o->latency_reps);
        double p50, p99;

        for (int i = 0; i < 50; i++) {
                CK(cuLaunchKernel(k, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
                CK(cuStreamSynchronize(s));
        }
        for (int i = 0; i < o->latency_reps; i++) {
                double t0 = now_s();

                CK(cuLaunchKernel(k, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
                CK(cuStreamSynchronize(s));
                lat[i] = now_s() - t0;
        }
        p50 = quantile(lat, o->latency_reps, 0.50) * 1e6;
        p99 = quantile(lat, o->latency_reps, 0.99) * 1e6;
        free(lat);

        printf("\nlaunch + cuStreamSynchronize, %d round trips\n", o->latency_reps);
        printf("  %-40s %14.2f us\n", "p50", p50);
        printf("  %-40s %14.2f us\n", "p99", p99);
        metric_add(p50, "us", "gpu_%s_latency_p50_us", o->label);
        metric_add(p99, "us", "gpu_%s_latency_p99_us", o->label);
}

// One synchronous copy of sz bytes: host to device when htod, else device to host.
static void copy_once(int htod, CUdeviceptr d, void *h, size_t sz)
{
        if (htod)
                CK(cuMemcpyHtoD(d, h, sz));
        else
                CK(cuMemcpyDtoH(h, d, sz));
}

// The median bandwidth in GB/s (1e9 bytes/s) of repeated synchronous copies of sz bytes: enough
// repetitions to fill o->copy_s, at least 3, each timed on its own.
static double copy_gbps(const struct opts *o, int htod, CUdeviceptr d, void *h, size_t sz)
{
        double t0 = now_s();
        double one, med;
        double *t;
        int reps;

        copy_once(htod, d, h, sz); // warm-up, and a first estimate of the time per copy
        one = now_s() - t0;
        reps = one > 0 ? (int)fmin(o->copy_s / one, MAX_REPS) : MAX_REPS;
        if (reps < 3)
                reps = 3;
        t = samples_new(reps);
        for (int i = 0; i < reps; i++) {
                t0 = now_s();
                copy_once(htod, d, h, sz);
                t[i] = now_s() - t0;
        }
        med = quantile(t, reps, 0.5);
        free(t);
        return (double)sz / med / 1e9;
}

static void size_name(size_t sz, char *buf, size_t len)
{
        if (sz >= (size_t)1 << 30)
                snprintf(buf, len, "%zuGiB", sz >> 30);
        else if (sz >= (size_t)1 << 20)
                snprintf(buf, len, "%zuMiB", sz >> 20);
        else
                snprintf(buf, len, "%zuKiB", sz >> 10);
}

// Pinned-memory bandwidth at the sizes of copy_sizes[] up to o->copy_max, both directions.
static void bench_bandwidth(const struct opts *o)
{
        static const size_t copy_sizes[] = {(size_t)4 << 10,  (size_t)64 << 10,  (size_t)1 << 20,
                                            (size_t)16 << 20, (size_t)256 << 20, (size_t)1 << 30};
        size_t max = 0;
        size_t free_b = 0;
        size_t total_b = 0;
        CUdeviceptr d;
        unsigned char *h;

        // Leave room for the matmul and the context: copies of at most half of what is free.
        CK(cuMemGetInfo(&free_b, &total_b));
        for (size_t i = 0; i < sizeof(copy_sizes) / sizeof(copy_sizes[0]); i++)
                if (copy_sizes[i] <= o->copy_max && (copy_sizes[i] <= free_b / 2 || i == 0))
                        max = copy_sizes[i];
        CK(cuMemAlloc(&d, max));
        CK(cuMemAllocHost((void **)&h, max));
        memset(h, 0x5a, max);

        printf("\npinned host memory, synchronous cuMemcpyHtoD / cuMemcpyDtoH, median of >= 3 "
               "copies\n");
        if (max < o->copy_max)
                printf("  (copies up to %zu bytes only: %zu MiB free on the device)\n", max,
                       free_b >> 20);
        printf("  %-12s %14s %14s\n", "size", "HtoD GB/s", "DtoH GB/s");
        for (size_t i = 0; i < sizeof(copy_sizes) / sizeof(copy_sizes[0]); i++) {
                size_t sz = copy_sizes[i];
                char name[16];
                double hd, dh;

                if (sz > max)
                        break;
                hd = copy_gbps(o, 1, d, h, sz);
                dh = copy_gbps(o, 0, d, h, sz);
                size_name(sz, name, sizeof(name));
                printf("  %-12s %14.2f %14.2f\n", name, hd, dh);
                metric_add(hd, "GB/s", "gpu_%s_htod_%s", o->label, name);
                metric_add(dh, "GB/s", "gpu_%s_dtoh_%s", o->label, name);
        }
        CK(cuMemFreeHost(h));
        CK(cuMemFree(d));
}

// Tiled SGEMM on n x n floats, timed launch + synchronize, then checked against the CPU at a few
// entries. Entries are small multiples of 1/4, so every partial sum is exact in float.
static void bench_matmul(const struct opts *o, CUfunction k, CUstream s)
{
        int n = o->matmul_n;
        size_t elems = (size_t)n * (size_t)n;
        size_t bytes = elems * sizeof(float);
        unsigned seed = 2024;
        unsigned grid = (unsigned)((n + TILE - 1) / TILE);
        void *params[4];
        CUdeviceptr da, db, dc;
        double *t = samples_new(o->matmul_runs);
        double med;
        float *a = malloc(bytes);
        float *b = malloc(bytes);
        float *c = malloc(bytes);
        int checked = 0;
        int bad = 0;

        if (!a || !b || !c)
                fail("out of host memory");
        for (size_t i = 0; i < elems; i++) {
                a[i] = (float)((int)(xorshift(&seed) % 9) - 4) * 0.25f;
                b[i] = (float)((int)(xorshift(&seed) % 9) - 4) * 0.25f;
        }
        CK(cuMemAlloc(&da, bytes));
        CK(cuMemAlloc(&db, bytes));
        CK(cuMemAlloc(&dc, bytes));
        CK(cuMemcpyHtoD(da, a, bytes));
        CK(cuMemcpyHtoD(db, b, bytes));
        // NaN everywhere, so an entry the kernel never wrote cannot pass the check.
        CK(cuMemsetD32(dc, 0x7fc00000u, elems));
        params[0] = &da;
        params[1] = &db;
        params[2] = &dc;
        params[3] = &n;

        for (int i = 0; i < o->matmul_warm + o->matmul_runs; i++) {
                double t0 = now_s();

                CK(cuLaunchKernel(k, grid, grid, 1, TILE, TILE, 1, 0, s, params, NULL));
                CK(cuStreamSynchronize(s));
                if (i >= o->matmul_warm)
                        t[i - o->matmul_warm] = now_s() - t0;
        }
        med = quantile(t, o->matmul_runs, 0.5);
        free(t);
        CK(cuMemcpyDtoH(c, dc, bytes));

        // The four corners, then entries spread by the generator.
        for (int e = 0; e < 68; e++) {
                int i = e < 4 ? (e & 1) * (n - 1) : (int)(xorshift(&seed) % (unsigned)n);
                int j = e < 4 ? (e >> 1) * (n - 1) : (int)(xorshift(&seed) % (unsigned)n);
                double want = 0.0;
                double got = c[(size_t)i * n + j];

                for (int q = 0; q < n; q++)
                        want += (double)a[(size_t)i * n + q] * b[(size_t)q * n + j];
                checked++;
                if (!(fabs(got - want) <= 1e-3 * (1.0 + fabs(want)))) {
                        if (bad < 5)
                                printf("  mismatch at C[%d][%d]: got %.6g, want %.6g\n", i, j, got,
                                       want);
                        bad++;
                }
        }
        CK(cuMemFree(da));
        CK(cuMemFree(db));
        CK(cuMemFree(dc));
        free(a);
        free(b);
        free(c);
        if (bad)
                fail("matmul: %d of %d checked entries wrong", bad, checked);

        printf("\nSGEMM %dx%d, 16x16 shared-memory tiles, median of %d runs after %d warm-up\n", n,
               n, o->matmul_runs, o->matmul_warm);
        printf("  %-40s %14.3f ms\n", "launch + sync", med * 1e3);
        printf("  %-40s %14.1f GFLOP/s\n", "throughput", 2.0 * n * n * n / med / 1e9);
        printf("  %-40s %14d entries OK\n", "checked against the CPU", checked);
        metric_add(med * 1e3, "ms", "gpu_%s_matmul_ms", o->label);
        metric_add(2.0 * n * n * n / med / 1e9, "GFLOP/s", "gpu_%s_matmul_gflops", o->label);
}

static void json_string(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fprintf(f, "\\%c", *s);
                else if ((unsigned char)*s < 0x20)
                        fprintf(f, "\\u%04x", (unsigned)(unsigned char)*s);
                else
                        fputc(*s, f);
        }
        fputc('"', f);
}

static void write_json(const struct opts *o, const char *device, const char *driver)
{
        FILE *f = fopen(o->json, "w");

        if (!f)
                fail("--json %s: %s", o->json, strerror(errno));
        fprintf(f, "{\"label\": ");
        json_string(f, o->label);
        fprintf(f, ", \"device\": ");
        json_string(f, device);
        fprintf(f, ", \"libcuda\": ");
        json_string(f, driver);
        fprintf(f, ", \"quick\": %s, \"matmul_n\": %d, \"metrics\": [", o->quick ? "true" : "false",
                o->matmul_n);
        for (int i = 0; i < n_metrics; i++) {
                fprintf(f, "%s\n  {\"name\": ", i ? "," : "");
                json_string(f, metrics[i].name);
                fprintf(f, ", \"value\": %.6g, \"unit\": ", metrics[i].value);
                json_string(f, metrics[i].unit);
                fprintf(f, "}");
        }
        fprintf(f, "\n]}\n");
        if (fclose(f) != 0)
                fail("--json %s: %s", o->json, strerror(errno));
}

int main(int argc, char **argv)
{
        struct opts o;
        char device[256];
        char driver_path[PATH_MAX];
        const char *driver = "?";
        Dl_info dli;
        int count = 0;
        int version = 0;
        CUresult res;
        CUdevice dev;
        CUcontext ctx;
        CUmodule mod;
        CUfunction null_k, sgemm_k;
        CUstream s;

        parse_opts(argc, argv, &o);
        setvbuf(stdout, NULL, _IOLBF, 0);
        // Which libcuda.so.1 the loader picked: the point of running this program twice.
        if (dladdr((void *)cuInit, &dli) && dli.dli_fname)
                driver = realpath(dli.dli_fname, driver_path) ? driver_path : dli.dli_fname;
        res = cuInit(0);
        if (res != CUDA_SUCCESS)
                skip("cuInit failed: no GPU, no driver, or no vGPU attached", res);
        res = cuDeviceGetCount(&count);
        if (res != CUDA_SUCCESS || count == 0)
                skip("no CUDA device", res);
        CK(cuDeviceGet(&dev, 0));
        CK(cuDeviceGetName(device, (int)sizeof(device), dev));
        CK(cuDriverGetVersion(&version));
        CK(cuDevicePrimaryCtxRetain(&ctx, dev));
        CK(cuCtxSetCurrent(ctx));
        CK(cuModuleLoadData(&mod, gpu_kernels_fatbin));
        CK(cuModuleGetFunction(&null_k, mod, "null_kernel"));
        CK(cuModuleGetFunction(&sgemm_k, mod, "sgemm_tiled"));
        CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));

        printf("bench_gpu [%s]: device 0: %s, driver API %d.%d%s\n", o.label, device,
               version / 1000, version % 1000 / 10, o.quick ? " (quick)" : "");
        printf("libcuda: %s\n\n", driver);
        bench_launch_rate(&o, null_k, s);
        bench_latency(&o, null_k, s);
        bench_bandwidth(&o);
        bench_matmul(&o, sgemm_k, s);

        CK(cuStreamDestroy(s));
        CK(cuModuleUnload(mod));
        CK(cuCtxSetCurrent(NULL));
        CK(cuDevicePrimaryCtxRelease(dev));

        printf("\n");
        for (int i = 0; i < n_metrics; i++)
                printf("BENCH %s %.6g %s\n", metrics[i].name, metrics[i].value, metrics[i].unit);
        if (o.json)
                write_json(&o, device, driver);
        return 0;
}
