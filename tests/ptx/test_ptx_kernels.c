// SPDX-License-Identifier: Apache-2.0
// The PTX interpreter on real nvcc output: kernels.cu compiled at build time to a compressed
// fatbin, an uncompressed one and plain PTX, each kernel run on random inputs and checked against
// a C reference. Exits 77 when the build had no nvcc.
#include <errno.h>
#include <fenv.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devmem.h"
#include "ptx/ptx.h"

#ifdef PTX_KERNEL_DIR

enum { IMG_FATBIN, IMG_FATBIN_NC, IMG_PTX, IMG_LINEINFO, IMG_DEBUG, IMG_SM90, IMG_FASTMATH, NIMG };
static const char *const img_names[NIMG] = {
        "kernels.fatbin",    "kernels_nc.fatbin", "kernels.ptx",         "kernels_lineinfo.fatbin",
        "kernels_debug.ptx", "kernels_sm90.ptx",  "kernels_fastmath.ptx"};

static struct ptx_module *mods[NIMG];
static struct ptx_pool *pool;
static struct devmem dm;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd32(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (uint32_t)(rng >> 16);
}

static float rndf(void)
{
        return (float)(rnd32() % 20001) / 1000.0f - 10.0f;
}

static void *read_file(const char *name, size_t *ret_len)
{
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", PTX_KERNEL_DIR, name);
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        void *buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        *ret_len = (size_t)n;
        return buf;
}

static int setup(void **state)
{
        (void)state;
        for (int i = 0; i < NIMG; i++) {
                size_t len;
                char err[PTX_ERRMSG_SIZE];
                void *img = read_file(img_names[i], &len);
                if (!img)
                        return -1;
                int r = ptx_module_load(img, len, &mods[i], err, sizeof(err));
                free(img);
                if (r) {
                        fprintf(stderr, "%s: %s\n", img_names[i], err);
                        return -1;
                }
        }
        if (ptx_pool_new(2, &pool))
                return -1;
        return devmem_init(&dm, 64u << 20);
}

static int teardown(void **state)
{
        (void)state;
        for (int i = 0; i < NIMG; i++)
                ptx_module_free(mods[i]);
        ptx_pool_free(pool);
        devmem_fini(&dm);
        return 0;
}

/* Parameter buffer built from the kernel's own layout. */
struct params {
        uint8_t buf[256];
        const struct ptx_kernel *k;
        unsigned next;
};

static void params_init(struct params *p, const struct ptx_kernel *k)
{
        memset(p, 0, sizeof(*p));
        p->k = k;
}

static void param(struct params *p, const void *v, size_t n)
{
        size_t off, size;
        assert_int_equal(ptx_kernel_param_info(p->k, p->next++, &off, &size), 0);
        assert_int_equal(size, n);
        memcpy(p->buf + off, v, n);
}

static void param_u64(struct params *p, uint64_t v)
{
        param(p, &v, 8);
}

static void param_i32(struct params *p, int32_t v)
{
        param(p, &v, 4);
}

/* When set, every test runs its kernels from this image instead of the one it names. */
static int img_override = -1;

static const struct ptx_kernel *kernel(int img, const char *name)
{
        const struct ptx_kernel *k = NULL;
        if (img_override >= 0)
                img = img_override;
        assert_int_equal(ptx_module_get_kernel(mods[img], name, &k), 0);
        return k;
}

static int launch(const struct ptx_kernel *k, struct params *p, uint32_t gx, uint32_t gy,
                  uint32_t bx, uint32_t by, uint32_t dyn, struct ptx_launch_stats *st)
{
        struct ptx_launch l = {
                .kernel = k,
                .grid = {gx, gy, 1},
                .block = {bx, by, 1},
                .dynamic_shared = dyn,
                .params = p->buf,
                .params_size = sizeof(p->buf),
                .mem = devmem_map,
                .mem_ctx = &dm,
                .pool = pool,
        };
        assert_int_equal(p->next, ptx_kernel_param_count(k));
        return ptx_launch(&l, st);
}

static uint64_t upload(const void *src, size_t n)
{
        uint64_t a = devmem_alloc(&dm, n);
        assert_true(a != 0);
        memcpy(devmem_ptr(&dm, a), src, n);
        return a;
}

static void reset_mem(void)
{
        dm.used = 0;
}

static void test_param_layout(void **state)
{
        (void)state;
        for (int img = 0; img < NIMG; img++) {
                const struct ptx_kernel *k = kernel(img, "saxpy");
                size_t off, size;
                assert_int_equal(ptx_kernel_param_count(k), 4);
                static const size_t offs[] = {0, 4, 8, 16}, sizes[] = {4, 4, 8, 8};
                for (unsigned i = 0; i < 4; i++) {
                        assert_int_equal(ptx_kernel_param_info(k, i, &off, &size), 0);
                        assert_int_equal(off, offs[i]);
                        assert_int_equal(size, sizes[i]);
                }
                assert_int_equal(ptx_kernel_param_info(k, 4, &off, &size), -EINVAL);
                assert_int_equal(ptx_kernel_param_size(k), 24);
                assert_true(ptx_module_kernel_count(mods[img]) >= 16);
        }
}

static void test_vec_add(void **state)
{
        (void)state;
        for (int img = 0; img < NIMG; img++) {
                enum { N = 10007 };
                static float a[N], b[N];
                reset_mem();
                for (int i = 0; i < N; i++) {
                        a[i] = rndf();
                        b[i] = rndf();
                }
                uint64_t da = upload(a, sizeof(a)), db = upload(b, sizeof(b));
                uint64_t dc = devmem_alloc(&dm, sizeof(a));
                struct params p;
                params_init(&p, kernel(img, "vec_add"));
                param_u64(&p, da);
                param_u64(&p, db);
                param_u64(&p, dc);
                param_i32(&p, N);
                assert_int_equal(launch(p.k, &p, (N + 255) / 256, 1, 256, 1, 0, NULL), 0);
                const float *c = devmem_ptr(&dm, dc);
                for (int i = 0; i < N; i++)
                        assert_true(c[i] == a[i] + b[i]);
        }
}

static void test_saxpy(void **state)
{
        (void)state;
        enum { N = 100003 };
        static float x[N], y[N];
        reset_mem();
        for (int i = 0; i < N; i++) {
                x[i] = rndf();
                y[i] = rndf();
        }
        float a = 2.5f;
        uint64_t dx = upload(x, sizeof(x)), dy = upload(y, sizeof(y));
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "saxpy"));
        param_i32(&p, N);
        param(&p, &a, 4);
        param_u64(&p, dx);
        param_u64(&p, dy);
        assert_int_equal(launch(p.k, &p, 48, 1, 128, 1, 0, NULL), 0);
        const float *r = devmem_ptr(&dm, dy);
        for (int i = 0; i < N; i++) /* fused, or not in a -G build */
                assert_true(r[i] == fmaf(a, x[i], y[i]) || r[i] == a * x[i] + y[i]);
}

static void test_block_reduce(void **state)
{
        (void)state;
        enum { N = 5000, B = (N + 255) / 256 };
        static int in[N];
        reset_mem();
        for (int i = 0; i < N; i++)
                in[i] = (int)(rnd32() % 2001) - 1000;
        uint64_t din = upload(in, sizeof(in)), dout = devmem_alloc(&dm, B * 4);
        struct params p;
        struct ptx_launch_stats s1, s2;
        params_init(&p, kernel(IMG_FATBIN, "block_reduce"));
        param_u64(&p, din);
        param_u64(&p, dout);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, B, 1, 256, 1, 0, &s1), 0);
        const int *out = devmem_ptr(&dm, dout);
        for (int b = 0; b < B; b++) {
                int sum = 0;
                for (int i = b * 256; i < N && i < (b + 1) * 256; i++)
                        sum += in[i];
                assert_int_equal(out[b], sum);
        }
        /* the work count is deterministic: same with one worker and on the caller's thread */
        struct ptx_launch l = {.kernel = p.k,
                               .grid = {B, 1, 1},
                               .block = {256, 1, 1},
                               .params = p.buf,
                               .params_size = sizeof(p.buf),
                               .mem = devmem_map,
                               .mem_ctx = &dm,
                               .pool = NULL};
        assert_int_equal(ptx_launch(&l, &s2), 0);
        assert_true(s1.warp_insns > 0);
        assert_int_equal(s1.warp_insns, s2.warp_insns);
        assert_int_equal(s1.thread_insns, s2.thread_insns);
        l.pool = pool;
        l.workers = 1;
        assert_int_equal(ptx_launch(&l, &s2), 0);
        assert_int_equal(s1.warp_insns, s2.warp_insns);
        /* the same grid as three slices of blocks: same results, same work in total */
        memset(devmem_ptr(&dm, dout), 0, B * 4);
        uint64_t work = 0;
        uint64_t cuts[4] = {0, 5, 6, B};
        for (int sl = 0; sl < 3; sl++) {
                l.first_block = cuts[sl];
                l.block_count = cuts[sl + 1] - cuts[sl];
                assert_int_equal(ptx_launch(&l, &s2), 0);
                work += s2.warp_insns;
        }
        assert_int_equal(work, s1.warp_insns);
        for (int b = 0; b < B; b++) {
                int sum = 0;
                for (int i = b * 256; i < N && i < (b + 1) * 256; i++)
                        sum += in[i];
                assert_int_equal(out[b], sum);
        }
        l.first_block = B;
        l.block_count = 1;
        assert_int_equal(ptx_launch(&l, NULL), PTX_ELAUNCH);
        l.first_block = 1;
        l.block_count = 0;
        assert_int_equal(ptx_launch(&l, NULL), PTX_ELAUNCH);
}

static void test_warp_reduce(void **state)
{
        (void)state;
        enum { N = 4099 };
        static float in[N];
        reset_mem();
        double sum = 0;
        for (int i = 0; i < N; i++) {
                in[i] = (float)((int)(rnd32() % 201) - 100);
                sum += in[i];
        }
        float zero = 0;
        uint64_t din = upload(in, sizeof(in)), dout = upload(&zero, 4);
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "warp_reduce"));
        param_u64(&p, din);
        param_u64(&p, dout);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, (N + 127) / 128, 1, 128, 1, 0, NULL), 0);
        assert_true(*(float *)devmem_ptr(&dm, dout) == (float)sum);
}

static void test_warp_vote(void **state)
{
        (void)state;
        enum { N = 512 };
        static int in[N];
        reset_mem();
        for (int i = 0; i < N; i++)
                in[i] = (int)(rnd32() % 301) - 100;
        for (int i = 64; i < 96; i++)
                in[i] = 1 + i; /* one warp all positive */
        uint64_t din = upload(in, sizeof(in));
        uint64_t db = devmem_alloc(&dm, N / 32 * 4), df = devmem_alloc(&dm, N / 32 * 4);
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "warp_vote"));
        param_u64(&p, din);
        param_u64(&p, db);
        param_u64(&p, df);
        assert_int_equal(launch(p.k, &p, N / 64, 1, 64, 1, 0, NULL), 0);
        const unsigned *ballots = devmem_ptr(&dm, db);
        const int *flags = devmem_ptr(&dm, df);
        for (int w = 0; w < N / 32; w++) {
                unsigned b = 0;
                int any = 0;
                for (int l = 0; l < 32; l++) {
                        b |= (unsigned)(in[w * 32 + l] > 0) << l;
                        any |= in[w * 32 + l] > 100;
                }
                assert_int_equal(ballots[w], b);
                int want = (b == 0xffffffffu) | (any << 1) | (__builtin_popcount(b) << 2);
                assert_int_equal(flags[w], want);
        }
}

static void test_matmul(void **state)
{
        (void)state;
        enum { N = 64 };
        static float A[N * N], B[N * N], C[N * N];
        reset_mem();
        for (int i = 0; i < N * N; i++) {
                A[i] = rndf();
                B[i] = rndf();
        }
        uint64_t da = upload(A, sizeof(A)), db = upload(B, sizeof(B));
        uint64_t dc = devmem_alloc(&dm, sizeof(C));
        struct params p;
        params_init(&p, kernel(IMG_FATBIN_NC, "matmul_tiled"));
        param_u64(&p, da);
        param_u64(&p, db);
        param_u64(&p, dc);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, N / 16, N / 16, 16, 16, 0, NULL), 0);
        const float *c = devmem_ptr(&dm, dc);
        for (int r = 0; r < N; r++) {
                for (int col = 0; col < N; col++) {
                        float acc = 0;
                        for (int k = 0; k < N; k++)
                                acc = fmaf(A[r * N + k], B[k * N + col], acc);
                        assert_true(fabsf(c[r * N + col] - acc) <= 1e-3f * (1 + fabsf(acc)));
                }
        }
}

static void test_histogram(void **state)
{
        (void)state;
        enum { N = 100000 };
        static unsigned char data[N];
        unsigned want[256] = {0};
        reset_mem();
        for (int i = 0; i < N; i++) {
                data[i] = (unsigned char)(rnd32() % 97 + (i % 3) * 50);
                want[data[i]]++;
        }
        uint64_t dd = upload(data, sizeof(data));
        unsigned zero[256] = {0};
        uint64_t dbins = upload(zero, sizeof(zero));
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "histogram"));
        param_u64(&p, dd);
        param_i32(&p, N);
        param_u64(&p, dbins);
        assert_int_equal(launch(p.k, &p, 16, 1, 192, 1, 0, NULL), 0);
        assert_memory_equal(devmem_ptr(&dm, dbins), want, sizeof(want));
}

static unsigned collatz_ref(unsigned v)
{
        unsigned long long x = v;
        unsigned s = 0;
        while (x != 1 && s < 1000) {
                if (x & 1)
                        x = 3 * x + 1;
                else
                        x >>= 1;
                s++;
                if ((s & 7) == 3 && (x % 5) == 0)
                        s += 2;
        }
        return s;
}

static void test_collatz(void **state)
{
        (void)state;
        enum { N = 3000 };
        static unsigned in[N];
        reset_mem();
        for (int i = 0; i < N; i++)
                in[i] = rnd32() % 100000 + 1;
        uint64_t din = upload(in, sizeof(in)), dout = devmem_alloc(&dm, sizeof(in));
        struct params p;
        params_init(&p, kernel(IMG_PTX, "collatz"));
        param_u64(&p, din);
        param_u64(&p, dout);
        param_i32(&p, N);
        struct ptx_launch_stats s1, s2;
        assert_int_equal(launch(p.k, &p, (N + 95) / 96, 1, 96, 1, 0, &s1), 0);
        const unsigned *out = devmem_ptr(&dm, dout);
        for (int i = 0; i < N; i++)
                assert_int_equal(out[i], collatz_ref(in[i]));
        /* divergent work counts the same on one worker as on two */
        struct ptx_launch l = {.kernel = p.k,
                               .grid = {(N + 95) / 96, 1, 1},
                               .block = {96, 1, 1},
                               .params = p.buf,
                               .params_size = sizeof(p.buf),
                               .mem = devmem_map,
                               .mem_ctx = &dm};
        assert_int_equal(ptx_launch(&l, &s2), 0);
        assert_int_equal(s1.warp_insns, s2.warp_insns);
        assert_int_equal(s1.thread_insns, s2.thread_insns);
        assert_true(s1.thread_insns < s1.warp_insns * 32); /* lanes really diverged */
}

static int fib_ref(int n)
{
        return n < 2 ? n : fib_ref(n - 1) + fib_ref(n - 2);
}

static int ack_ref(int m, int n, int *depth)
{
        *depth += 1;
        if (m == 0)
                return n + 1;
        if (n == 0)
                return ack_ref(m - 1, 1, depth);
        return ack_ref(m - 1, ack_ref(m, n - 1, depth), depth);
}

static void test_recursive(void **state)
{
        (void)state;
        enum { N = 200 };
        static int in[N];
        for (int img = 0; img < NIMG; img++) {
                reset_mem();
                for (int i = 0; i < N; i++)
                        in[i] = (int)(rnd32() % 64);
                uint64_t din = upload(in, sizeof(in)), dout = devmem_alloc(&dm, sizeof(in));
                struct params p;
                params_init(&p, kernel(img, "recursive"));
                param_u64(&p, din);
                param_u64(&p, dout);
                param_i32(&p, N);
                assert_int_equal(launch(p.k, &p, (N + 63) / 64, 1, 64, 1, 0, NULL), 0);
                const int *out = devmem_ptr(&dm, dout);
                for (int i = 0; i < N; i++) {
                        int depth = 0;
                        int a = ack_ref(in[i] & 1, in[i] & 3, &depth);
                        assert_int_equal(out[i], fib_ref(in[i] % 16) * 1000 + a * 10 + (depth & 7));
                }
        }
}

/* PTX's float-to-int conversions saturate and turn NaN into 0. */
static int32_t f2i_sat(double v)
{
        if (isnan(v))
                return 0;
        if (v >= 2147483647.0)
                return INT32_MAX;
        if (v <= -2147483648.0)
                return INT32_MIN;
        return (int32_t)v;
}

static int64_t d2l_sat(double v)
{
        if (isnan(v))
                return 0;
        if (v >= 9223372036854775807.0)
                return INT64_MAX;
        if (v <= -9223372036854775808.0)
                return INT64_MIN;
        return (int64_t)v;
}

static bool same_f(float a, float b)
{
        return (isnan(a) && isnan(b)) || memcmp(&a, &b, 4) == 0;
}

static bool same_d(double a, double b)
{
        return (isnan(a) && isnan(b)) || memcmp(&a, &b, 8) == 0;
}

static void test_fp_edge(void **state)
{
        (void)state;
        enum { N = 96 };
        static const float special[] = {
                0.0f,    -0.0f,    INFINITY, -INFINITY, NAN,  1e-40f, -1e-45f, 1.17549435e-38f,
                3.4e38f, -3.4e38f, 1.0f,     -1.5f,     2.5f, 0.5f,   1e10f,   -7e9f,
                3.0f};
        static float a[N], b[N];
        static double da[N];
        const int ns = (int)(sizeof(special) / sizeof(special[0]));
        reset_mem();
        for (int i = 0; i < N; i++) {
                a[i] = i < ns ? special[i] : i < 2 * ns ? special[rnd32() % ns] : rndf() * 1e3f;
                b[i] = special[rnd32() % ns];
                if (i % 5 == 0)
                        b[i] = rndf();
                da[i] = i % 7 == 0 ? (double)special[i % ns] : (double)rndf() * 1e5 + 0.1;
        }
        uint64_t pa = upload(a, sizeof(a)), pb = upload(b, sizeof(b)), pd = upload(da, sizeof(da));
        uint64_t of = devmem_alloc(&dm, N * 8 * 4), od = devmem_alloc(&dm, N * 4 * 8);
        uint64_t oi = devmem_alloc(&dm, N * 4 * 4);
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "fp_edge"));
        param_u64(&p, pa);
        param_u64(&p, pb);
        param_u64(&p, of);
        param_u64(&p, pd);
        param_u64(&p, od);
        param_u64(&p, oi);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, 2, 1, 64, 1, 0, NULL), 0);
        const float *rf = devmem_ptr(&dm, of);
        const double *rd = devmem_ptr(&dm, od);
        const int *ri = devmem_ptr(&dm, oi);
        for (int i = 0; i < N; i++) {
                float x = a[i], y = b[i];
                float wf[8] = {x + y,       x * y,          x / y,
                               fminf(x, y), fmaxf(x, y),    fmaf(x, y, 1.0f),
                               0,           sqrtf(fabsf(x))};
                volatile float vx = x, vy = y;
                fesetround(FE_TOWARDZERO);
                volatile float rz = vx + vy;
                fesetround(FE_TONEAREST);
                wf[6] = rz;
                for (int k = 0; k < 8; k++) {
                        if (!same_f(rf[8 * i + k], wf[k]))
                                fail_msg("fp_edge[%d].f%d: x=%a y=%a got %a want %a", i, k, x, y,
                                         rf[8 * i + k], wf[k]);
                }
                double d = da[i];
                double wd[4] = {fma(d, 3.0, (double)x), d / (double)y, sqrt(fabs(d)),
                                (double)(float)d};
                for (int k = 0; k < 4; k++) {
                        if (k == 0 && same_d(rd[4 * i], d * 3.0 + (double)x))
                                continue; /* not contracted into an fma (-G) */
                        if (!same_d(rd[4 * i + k], wd[k]))
                                fail_msg("fp_edge[%d].d%d: got %a want %a", i, k, rd[4 * i + k],
                                         wd[k]);
                }
                int wi[4] = {f2i_sat(x), f2i_sat(nearbyint(y)), (int)(unsigned)d2l_sat(d),
                             (isnan(x) ? 1 : 0) | (isinf(y) ? 2 : 0) | (signbit(x) ? 4 : 0)};
                for (int k = 0; k < 4; k++) {
                        if (ri[4 * i + k] != wi[k])
                                fail_msg("fp_edge[%d].i%d: x=%a y=%a d=%a got %d want %d", i, k, x,
                                         y, d, ri[4 * i + k], wi[k]);
                }
        }
}

static void test_ptr64(void **state)
{
        (void)state;
        enum { N = 1000 };
        static long long base[N];
        reset_mem();
        for (int i = 0; i < N; i++)
                base[i] = ((long long)rnd32() << 31) ^ rnd32() ^
                          (i % 3 ? 0 : (long long)(~0ull << 40));
        long long stride = 7919;
        uint64_t db = upload(base, sizeof(base)), dout = devmem_alloc(&dm, sizeof(base));
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "ptr64"));
        param_u64(&p, db);
        param_u64(&p, dout);
        param(&p, &stride, 8);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, (N + 127) / 128, 1, 128, 1, 0, NULL), 0);
        const long long *out = devmem_ptr(&dm, dout);
        for (long long i = 0; i < N; i++) {
                const long long *pp = base + ((i * stride) % N);
                const long long *q = base + N - 1 - i;
                long long hi = (long long)(((__int128)*pp * stride) >> 64);
                long long want =
                        (long long)((unsigned long long)*pp * 3 - (unsigned long long)*q +
                                    (unsigned long long)(pp - q) + ((unsigned long long)*pp >> 7) +
                                    (unsigned long long)hi + (unsigned long long)(*q % 1000003));
                assert_int_equal(out[i], want);
        }
}

static void test_dyn_shared(void **state)
{
        (void)state;
        enum { N = 1000, BS = 128 };
        static int in[N];
        reset_mem();
        for (int i = 0; i < N; i++)
                in[i] = (int)rnd32();
        uint64_t din = upload(in, sizeof(in)), dout = devmem_alloc(&dm, sizeof(in));
        memset(devmem_ptr(&dm, dout), 0, sizeof(in));
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "dyn_reverse"));
        param_u64(&p, din);
        param_u64(&p, dout);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, (N + BS - 1) / BS, 1, BS, 1, BS * 4, NULL), 0);
        const int *out = devmem_ptr(&dm, dout);
        for (int i = 0; i < N; i++) {
                int b = i / BS * BS, t = i % BS, r = BS - 1 - t;
                int want = (b + r < N) ? in[b + r] : 0;
                assert_int_equal(out[i], want);
        }
        /* without the dynamic shared memory the kernel faults instead of crashing */
        assert_int_equal(launch(p.k, &p, 1, 1, BS, 1, 0, NULL), PTX_EILLEGAL_ADDRESS);
}

static void test_globals(void **state)
{
        (void)state;
        enum { N = 777 };
        static float x[N];
        reset_mem();
        for (int i = 0; i < N; i++)
                x[i] = rndf();
        uint64_t dx = upload(x, sizeof(x)), dy = devmem_alloc(&dm, sizeof(x));
        struct ptx_module *mod = mods[IMG_FATBIN];
        uint64_t addr;
        size_t size;
        void *host;
        assert_int_equal(ptx_module_global(mod, "counter", &addr, &size, &host), 0);
        assert_int_equal(size, 4);
        memset(host, 0, 4);
        float *coeffs;
        assert_int_equal(ptx_module_global(mod, "coeffs", &addr, &size, (void **)&coeffs), 0);
        assert_int_equal(size, 16);
        assert_true(coeffs[0] == 1.5f && coeffs[3] == 3.0f);
        assert_int_equal(ptx_module_global(mod, "nope", &addr, &size, &host), PTX_ENOTFOUND);
        coeffs[1] = -1.0f; /* as cudaMemcpyToSymbol would */
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "globals"));
        param_u64(&p, dx);
        param_u64(&p, dy);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, (N + 255) / 256, 1, 256, 1, 0, NULL), 0);
        static const int table[8] = {1, 2, 3, 5, 8, 13, 21, 34};
        const float *y = devmem_ptr(&dm, dy);
        for (int i = 0; i < N; i++) {
                float v = x[i];
                float want =
                        fmaf(fmaf(fmaf(3.0f, v, 0.25f), v, -1.0f), v, 1.5f) + (float)table[i & 7];
                if (fabsf(y[i] - want) > 1e-3f * (1 + fabsf(want)))
                        fail_msg("globals[%d]: got %g want %g", i, y[i], want);
        }
        assert_true(ptx_module_global(mod, "counter", &addr, &size, &host) == 0);
        assert_int_equal(*(int *)host, N);
        coeffs[1] = -2.0f;
}

static void test_bound_globals(void **state)
{
        (void)state;
        /* the engine's way: variables in the framebuffer, reached through the callback */
        size_t len;
        void *img = read_file("kernels.ptx", &len);
        struct ptx_module *mod;
        assert_non_null(img);
        assert_int_equal(ptx_module_load(img, len, &mod, NULL, 0), 0);
        free(img);
        reset_mem();
        size_t gs = ptx_module_globals_size(mod);
        uint64_t gbase = devmem_alloc(&dm, gs);
        memcpy(devmem_ptr(&dm, gbase), ptx_module_globals_image(mod), gs);
        assert_int_equal(ptx_module_bind_globals(mod, gbase), 0);
        uint64_t caddr;
        size_t size;
        void *host = (void *)1;
        assert_int_equal(ptx_module_global(mod, "counter", &caddr, &size, &host), 0);
        assert_null(host);
        assert_true(caddr >= gbase && caddr < gbase + gs);
        *(int *)devmem_ptr(&dm, caddr) = 100;
        enum { N = 64 };
        float x[N] = {0};
        uint64_t dx = upload(x, sizeof(x)), dy = devmem_alloc(&dm, sizeof(x));
        const struct ptx_kernel *k;
        assert_int_equal(ptx_module_get_kernel(mod, "globals", &k), 0);
        struct params p;
        params_init(&p, k);
        param_u64(&p, dx);
        param_u64(&p, dy);
        param_i32(&p, N);
        assert_int_equal(launch(k, &p, 1, 1, N, 1, 0, NULL), 0);
        assert_int_equal(*(int *)devmem_ptr(&dm, caddr), 100 + N);
        assert_true(*(float *)devmem_ptr(&dm, dy) == 1.5f + 1.0f);
        ptx_module_free(mod);
}

static unsigned byte_perm(unsigned x, unsigned y, unsigned s)
{
        uint64_t v = (uint64_t)y << 32 | x;
        unsigned d = 0;
        for (int k = 0; k < 4; k++)
                d |= (unsigned)((v >> (8 * ((s >> (4 * k)) & 7))) & 0xff) << (8 * k);
        return d;
}

static unsigned brev32(unsigned x)
{
        unsigned r = 0;
        for (int i = 0; i < 32; i++)
                r |= ((x >> i) & 1u) << (31 - i);
        return r;
}

static void test_intops(void **state)
{
        (void)state;
        enum { N = 300 };
        static unsigned a[N], b[N];
        reset_mem();
        for (int i = 0; i < N; i++) {
                a[i] = rnd32() ^ (rnd32() << 16);
                b[i] = i % 10 == 0 ? 0 : i % 10 == 1 ? 0xffffffffu : rnd32() >> (i % 20);
        }
        uint64_t pa = upload(a, sizeof(a)), pb = upload(b, sizeof(b));
        uint64_t po = devmem_alloc(&dm, N * 8 * 4);
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "intops"));
        param_u64(&p, pa);
        param_u64(&p, pb);
        param_u64(&p, po);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, 3, 1, 128, 1, 0, NULL), 0);
        const unsigned *o = devmem_ptr(&dm, po);
        for (int i = 0; i < N; i++) {
                unsigned x = a[i], y = b[i], sh = y & 31;
                unsigned w[8] = {
                        (unsigned)__builtin_popcount(x) + (unsigned)(y ? __builtin_clz(y) : 32),
                        brev32(x),
                        sh ? (x >> sh) | (x << (32 - sh)) : x,
                        (unsigned)(((uint64_t)x * y) >> 32),
                        byte_perm(x, y, 0x5140),
                        (x < y ? x : y) ^ (unsigned)((int)x > (int)y ? (int)x : (int)y),
                        (x >> 5) & 0x3ff,
                        y ? x / y + x % y : 0,
                };
                for (int k = 0; k < 8; k++) {
                        if (o[8 * i + k] != w[k])
                                fail_msg("intops[%d].%d: x=%#x y=%#x got %#x want %#x", i, k, x, y,
                                         o[8 * i + k], w[k]);
                }
        }
}

/* value has at most bits significant bits */
static bool fits_bits(float v, int bits)
{
        if (v == 0 || isinf(v) || isnan(v))
                return true;
        int e;
        float m = frexpf(v, &e);
        float scaled = ldexpf(m, bits);
        return scaled == truncf(scaled);
}

static void test_approx_math(void **state)
{
        (void)state;
        enum { N = 500 };
        static float x[N];
        reset_mem();
        for (int i = 0; i < N; i++)
                x[i] = rndf() * (i % 3 ? 1.0f : 0.01f);
        uint64_t dx = upload(x, sizeof(x)), dout = devmem_alloc(&dm, N * 10 * 4);
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "approx_math"));
        param_u64(&p, dx);
        param_u64(&p, dout);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, (N + 127) / 128, 1, 128, 1, 0, NULL), 0);
        const float *o = devmem_ptr(&dm, dout);
        for (int i = 0; i < N; i++) {
                float v = x[i];
                const float *r = o + 10 * i;
                if (v == 0)
                        continue;
                struct {
                        float got, want, tol;
                } c[] = {
                        {r[0], expf(v), 1e-5f * expf(v)},
                        {r[1], logf(fabsf(v) + 1.0f), 1e-5f},
                        {r[2], sinf(v), 2e-6f},
                        {r[3], cosf(v), 2e-6f},
                        {r[4], 1.0f / v, 0},
                        {r[5], 1.0f / sqrtf(fabsf(v) + 1.0f), 1e-6f},
                        {r[6], tanhf(v), 1e-6f},
                        {r[7], v, fmaxf(fabsf(v) * 0x1p-11f, 0x1p-25f)}, /* subnormal halves */
                        {r[8], v, fabsf(v) * 0x1p-8f},
                        {r[9], v / 3.0f, fabsf(v) * 1e-6f},
                };
                for (unsigned k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
                        if (!(fabsf(c[k].got - c[k].want) <= c[k].tol))
                                fail_msg("approx[%d].%u: v=%a got %a want %a", i, k, v, c[k].got,
                                         c[k].want);
                }
                assert_true(fits_bits(r[7], 11));
                assert_true(fits_bits(r[8], 8));
        }
}

struct pair {
        int a;
        long long b;
        float c[3];
};

static void test_misc(void **state)
{
        (void)state;
        enum { N = 256 };
        static int in[N];
        reset_mem();
        for (int i = 0; i < N; i++)
                in[i] = (int)(rnd32() % 2001) - 1000;
        int atom0[8] = {INT32_MIN, INT32_MAX, 0, 0, 0, 0, 0, 0};
        uint64_t din = upload(in, sizeof(in)), dout = devmem_alloc(&dm, sizeof(in));
        uint64_t datom = upload(atom0, sizeof(atom0));
        struct pair pr = {3, 123456789012ll, {1.5f, 2.5f, -3.5f}};
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "misc"));
        param(&p, &pr, sizeof(pr));
        param_u64(&p, din);
        param_u64(&p, dout);
        param_u64(&p, datom);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, 2, 1, 128, 1, 0, NULL), 0);
        const int *out = devmem_ptr(&dm, dout);
        const int *at = devmem_ptr(&dm, datom);
        int vmax = INT32_MIN, vmin = INT32_MAX;
        unsigned long long sum = 0;
        for (int i = 0; i < N; i++) {
                vmax = in[i] > vmax ? in[i] : vmax;
                vmin = in[i] < vmin ? in[i] : vmin;
                sum += (unsigned long long)(in[i] & 0xff);
        }
        for (int i = 0; i < N; i++) {
                int b = i / 128, cnt = 0, any = 0, all = 1;
                for (int t = b * 128; t < (b + 1) * 128; t++) {
                        cnt += in[t] > 0;
                        any |= in[t] > 900;
                        all &= in[t] > -1000;
                }
                int k = in[i] & 15;
                int sel = in[(i + k) % N] * (k + pr.a);
                int want = sel + cnt * 3 + all * 5 + any * 7 + (int)(pr.b % 1000) +
                           (int)pr.c[i % 3] + 1 + 1;
                if (out[i] != want)
                        fail_msg("misc[%d]: got %d want %d", i, out[i], want);
        }
        assert_int_equal(at[0], vmax);
        assert_int_equal(at[1], vmin);
        unsigned long long got_sum;
        memcpy(&got_sum, &at[2], 8);
        assert_int_equal(got_sum, sum);
        assert_int_equal(at[4], N);
        assert_true(at[5] >= 1 && at[5] <= N);
        assert_int_equal(at[6], 7);
        assert_int_equal((unsigned)at[7], 0xffffffffu);
}

/* Reference half precision, independent of the interpreter's: decode exactly, and round by
 * comparing the two neighbouring halves. */
static float half_to_float(uint16_t h)
{
        int e = (h >> 10) & 31, mant = h & 1023;
        float v = e == 0    ? ldexpf((float)mant, -24)
                  : e == 31 ? (mant ? NAN : INFINITY)
                            : ldexpf((float)(mant | 1024), e - 25);
        return (h & 0x8000) ? -v : v;
}

static uint16_t float_to_half(double v)
{
        uint16_t sign = signbit(v) ? 0x8000 : 0;
        double a = fabs(v);
        if (isnan(v))
                return 0x7e00;
        uint16_t lo = 0;
        /* the largest half magnitude not above a (binary search over the ordered encodings) */
        uint16_t l = 0, r = 0x7c00;
        while (l < r) {
                uint16_t mid = (uint16_t)((l + r + 1) / 2);
                if (half_to_float(mid) <= a)
                        l = mid;
                else
                        r = (uint16_t)(mid - 1);
        }
        lo = l;
        if (lo == 0x7c00)
                return sign | 0x7c00;
        double dl = half_to_float(lo), dh = lo == 0x7bff ? 65536.0 : half_to_float(lo + 1);
        uint16_t pick = (a - dl < dh - a)   ? lo
                        : (a - dl > dh - a) ? lo + 1
                        : (lo & 1)          ? lo + 1
                                            : lo;
        return sign | pick;
}

static void test_half_math(void **state)
{
        (void)state;
        enum { N = 400 };
        static uint16_t a[N / 2], b[N / 2];
        reset_mem();
        for (int i = 0; i < N / 2; i++) {
                a[i] = float_to_half(rndf() * (i % 4 ? 1.0f : 1000.0f));
                b[i] = float_to_half(rndf() / (i % 3 ? 1.0f : 64.0f));
        }
        uint64_t da = upload(a, sizeof(a)), db = upload(b, sizeof(b));
        uint64_t dout = devmem_alloc(&dm, N / 2 * 8 * 2);
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "half_math"));
        param_u64(&p, da);
        param_u64(&p, db);
        param_u64(&p, dout);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, 2, 1, 128, 1, 0, NULL), 0);
        const uint16_t *o = devmem_ptr(&dm, dout);
        for (int i = 0; i < N / 2; i++) {
                double x = half_to_float(a[i]), y = half_to_float(b[i]);
                uint16_t w[8] = {
                        float_to_half(x + y),
                        float_to_half(x * y),
                        float_to_half(x * y + 0.5),
                        float_to_half(x > y ? x : y),
                        float_to_half(-half_to_float(float_to_half(x - y))),
                        float_to_half(x * y + x),
                        float_to_half(y * x + y),
                        float_to_half(x < y ? x : y),
                };
                for (int k = 0; k < 8; k++) {
                        if (o[8 * i + k] != w[k])
                                fail_msg("half[%d].%d: x=%g y=%g got %#x want %#x", i, k, x, y,
                                         o[8 * i + k], w[k]);
                }
        }
}

static uint32_t fns_ref(uint32_t mask, uint32_t base, int offset)
{
        if (offset == 0)
                return (mask >> base & 1) ? base : 0xffffffffu;
        int count = (offset < 0 ? -offset : offset) - 1, inc = offset > 0 ? 1 : -1;
        for (int pos = (int)base; pos >= 0 && pos < 32; pos += inc) {
                if (mask >> pos & 1) {
                        if (count == 0)
                                return (uint32_t)pos;
                        count--;
                }
        }
        return 0xffffffffu;
}

static uint32_t dp_ref(uint32_t a, uint32_t b, uint32_t c, bool sgn, int half)
{
        uint32_t d = c;
        for (int k = 0; k < (half ? 2 : 4); k++) {
                int bk = half == 2 ? k + 2 : k;
                uint32_t bb = (b >> (8 * bk)) & 0xff;
                int64_t vb = sgn ? (int8_t)bb : (int64_t)bb, va;
                if (half) {
                        uint32_t ah = (a >> (16 * k)) & 0xffff;
                        va = sgn ? (int16_t)ah : (int64_t)ah;
                } else {
                        uint32_t ab = (a >> (8 * k)) & 0xff;
                        va = sgn ? (int8_t)ab : (int64_t)ab;
                }
                d += (uint32_t)(va * vb);
        }
        return d;
}

static void test_intrin(void **state)
{
        (void)state;
        enum { N = 256 };
        static unsigned a[N], b[N];
        reset_mem();
        for (int i = 0; i < N; i++) {
                a[i] = rnd32() ^ (rnd32() << 17);
                b[i] = i % 9 == 0 ? 0 : rnd32() ^ (rnd32() << 15);
        }
        uint64_t pa = upload(a, sizeof(a)), pb = upload(b, sizeof(b));
        uint64_t po = devmem_alloc(&dm, N * 8 * 4);
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "intrin"));
        param_u64(&p, pa);
        param_u64(&p, pb);
        param_u64(&p, po);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, 2, 1, 128, 1, 0, NULL), 0);
        const unsigned *o = devmem_ptr(&dm, po);
        for (int i = 0; i < N; i++) {
                uint32_t x = a[i], y = b[i];
                int sx = (int)x, sy = (int)y;
                uint32_t sad = 7u + (uint32_t)(sx < sy ? (int64_t)sy - sx : (int64_t)sx - sy);
                sad += 1u + (x < y ? y - x : x - y);
                uint64_t y20 = (uint64_t)y << 20, xy = (uint64_t)x << 32 | y;
                uint64_t fv = (uint64_t)y << 32 | x;
                uint32_t n = (uint32_t)i & 31, nc = (uint32_t)i > 32 ? 32 : (uint32_t)i;
                int64_t m24 = (int64_t)((int32_t)(x << 8) >> 8) * ((int32_t)(y << 8) >> 8);
                uint32_t want[8] = {
                        sad,
                        fns_ref(x, y & 31, (int)(y % 5) - 2),
                        dp_ref(x, y, 5, true, 0) + dp_ref(x, y, 3, false, 0),
                        dp_ref(x, y, 1, true, 1) + dp_ref(x, y, 2, false, 2),
                        (uint32_t)(x ? __builtin_ctz(x) + 1 : 0) +
                                (uint32_t)(y20 ? __builtin_ctzll(y20) + 1 : 0),
                        (uint32_t)(xy ? __builtin_clzll(xy) : 64) +
                                (uint32_t)__builtin_popcountll(x * 3ull),
                        (uint32_t)((fv << n) >> 32) ^ (uint32_t)(fv >> nc),
                        (uint32_t)m24 + (uint32_t)((uint64_t)(x & 0xffffff) * (y & 0xffffff)),
                };
                for (int k = 0; k < 8; k++) {
                        if (o[8 * i + k] != want[k])
                                fail_msg("intrin[%d].%d: x=%#x y=%#x got %#x want %#x", i, k, x, y,
                                         o[8 * i + k], want[k]);
                }
        }
}

static void test_assert_fail(void **state)
{
        (void)state;
        reset_mem();
        uint64_t dp = devmem_alloc(&dm, 64 * 4);
        struct params p;
        struct ptx_launch_stats st;
        params_init(&p, kernel(IMG_FATBIN, "assert_fail"));
        param_u64(&p, dp);
        param_i32(&p, -1);
        assert_int_equal(launch(p.k, &p, 2, 1, 32, 1, 0, NULL), 0);
        params_init(&p, kernel(IMG_FATBIN, "assert_fail"));
        param_u64(&p, dp);
        param_i32(&p, 37);
        assert_int_equal(launch(p.k, &p, 2, 1, 32, 1, 0, &st), PTX_ETRAP);
        assert_int_equal(st.fault_block[0], 1);
        assert_int_equal(st.fault_thread[0], 5);
}

static void test_fptr(void **state)
{
        (void)state;
        enum { N = 500 };
        static int in[N];
        for (int img = 0; img < NIMG; img++) {
                reset_mem();
                for (int i = 0; i < N; i++)
                        in[i] = (int)(rnd32() % 10000);
                uint64_t din = upload(in, sizeof(in)), dout = devmem_alloc(&dm, sizeof(in));
                struct params p;
                params_init(&p, kernel(img, "fptr"));
                param_u64(&p, din);
                param_u64(&p, dout);
                param_i32(&p, N);
                assert_int_equal(launch(p.k, &p, (N + 127) / 128, 1, 128, 1, 0, NULL), 0);
                const int *out = devmem_ptr(&dm, dout);
                for (int i = 0; i < N; i++) {
                        int v = in[i], k = (unsigned)v % 3;
                        int r = k == 0 ? v + i : k == 1 ? v * i : v - i;
                        switch (v & 7) {
                        case 0:
                                r += 11;
                                break;
                        case 1:
                                r += 23;
                                break;
                        case 2:
                                r *= 3;
                                break;
                        case 3:
                                r -= 7;
                                break;
                        case 4:
                                r ^= 5;
                                break;
                        case 5:
                                r += 101;
                                break;
                        case 6:
                                r = (int)((unsigned)r << 1);
                                break;
                        default:
                                break;
                        }
                        assert_int_equal(out[i], r);
                }
        }
}

static char printed[8192];
static size_t nprinted;

static void capture(void *ctx, const char *text, size_t len)
{
        (void)ctx;
        /* one worker runs this launch: no lock needed */
        if (nprinted + len < sizeof(printed)) {
                memcpy(printed + nprinted, text, len);
                nprinted += len;
        }
}

static void test_printf(void **state)
{
        (void)state;
        const struct ptx_kernel *k = kernel(IMG_FATBIN, "printer");
        int32_t n = 5;
        struct ptx_launch l = {.kernel = k,
                               .grid = {1, 1, 1},
                               .block = {8, 1, 1},
                               .params = &n,
                               .params_size = 4,
                               .mem = devmem_map,
                               .mem_ctx = &dm,
                               .print = capture};
        nprinted = 0;
        assert_int_equal(ptx_launch(&l, NULL), 0);
        printed[nprinted] = 0;
        char want[2048];
        size_t w = 0;
        for (int i = 0; i < n; i++)
                w += (size_t)snprintf(want + w, sizeof(want) - w, "t%d %5.2f %s %c %lld %x %-3u|\n",
                                      i, 1.5 * i, i & 1 ? "odd" : "even", 'A' + i,
                                      (long long)i << 40, i * 255, (unsigned)i);
        assert_string_equal(printed, want);
        /* without a callback the output is dropped */
        l.print = NULL;
        assert_int_equal(ptx_launch(&l, NULL), 0);
}

static void test_half_cmp(void **state)
{
        (void)state;
        enum { N = 300 };
        static uint16_t a[N], b[N];
        reset_mem();
        for (int i = 0; i < N; i++) {
                a[i] = float_to_half(rndf());
                b[i] = i % 5 == 0 ? a[i] : float_to_half(rndf());
        }
        a[7] = 0x7e00; /* NaN */
        b[9] = 0x7e00;
        uint64_t da = upload(a, sizeof(a)), db = upload(b, sizeof(b));
        uint64_t dout = devmem_alloc(&dm, N * 4);
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "half_cmp"));
        param_u64(&p, da);
        param_u64(&p, db);
        param_u64(&p, dout);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, 3, 1, 128, 1, 0, NULL), 0);
        const int *o = devmem_ptr(&dm, dout);
        for (int i = 0; i < N; i++) {
                float x = half_to_float(a[i]), y = half_to_float(b[i]);
                int want = (x < y) + 2 * (x >= y) + 4 * (x == y) + 8 * (x > y && y > x) +
                           16 * (isnan(x) ? 1 : 0) + 32 * (x == x && y == y);
                if (o[i] != want)
                        fail_msg("half_cmp[%d]: x=%g y=%g got %d want %d", i, x, y, o[i], want);
        }
}

static void test_cg_templates(void **state)
{
        (void)state;
        enum { N = 3000 };
        static int vi[N];
        static float vf[N];
        double want_i = 0, want_f = 0;
        reset_mem();
        for (int i = 0; i < N; i++) {
                vi[i] = (int)(rnd32() % 201) - 100;
                vf[i] = (float)((int)(rnd32() % 41) - 20) * 0.5f;
                want_i += (double)(vi[i] * vi[i]);
                want_f += (double)(vf[i] * vf[i]);
        }
        uint64_t di = upload(vi, sizeof(vi)), df = upload(vf, sizeof(vf));
        double zero[2] = {0, 0};
        uint64_t dout = upload(zero, sizeof(zero));
        struct params p;
        params_init(&p, kernel(IMG_FATBIN, "_Z11sum_squaresIiEvPKT_Pdi"));
        param_u64(&p, di);
        param_u64(&p, dout);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, (N + 255) / 256, 1, 256, 1, 0, NULL), 0);
        params_init(&p, kernel(IMG_FATBIN, "_Z11sum_squaresIfEvPKT_Pdi"));
        param_u64(&p, df);
        param_u64(&p, dout + 8);
        param_i32(&p, N);
        assert_int_equal(launch(p.k, &p, (N + 127) / 128, 1, 128, 1, 0, NULL), 0);
        const double *o = devmem_ptr(&dm, dout);
        /* sums of small integers and quarters: exact in any order */
        assert_true(o[0] == want_i);
        assert_true(o[1] == want_f);
}

/* The single-image tests again on the -lineinfo, -G (unoptimised debug), sm_90 and fast-math
 * builds. */
static void test_other_builds(void **state)
{
        static void (*const tests[])(void **) = {
                test_saxpy,  test_block_reduce, test_warp_reduce,  test_warp_vote,
                test_matmul, test_histogram,    test_collatz,      test_fp_edge,
                test_ptr64,  test_dyn_shared,   test_intops,       test_approx_math,
                test_misc,   test_half_math,    test_intrin,       test_half_cmp,
                test_printf, test_assert_fail,  test_cg_templates,
        };
        /* fast math changes float results: only the tests whose results stay exact */
        static void (*const exact[])(void **) = {
                test_saxpy,   test_block_reduce, test_warp_vote,   test_histogram,
                test_collatz, test_ptr64,        test_dyn_shared,  test_intops,
                test_intrin,  test_printf,       test_assert_fail,
        };
        for (int img = IMG_LINEINFO; img <= IMG_SM90; img++) {
                img_override = img;
                for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
                        tests[i](state);
        }
        img_override = IMG_FASTMATH;
        for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
                exact[i](state);
        img_override = -1;
}

static void test_cubin_refused(void **state)
{
        (void)state;
        size_t len;
        void *img = read_file("kernels.cubin", &len);
        struct ptx_module *mod = NULL;
        char err[PTX_ERRMSG_SIZE];
        assert_non_null(img);
        assert_int_equal(ptx_module_load(img, len, &mod, err, sizeof(err)), PTX_ENOPTX);
        assert_null(mod);
        assert_non_null(strstr(err, "rebuild with PTX"));
        free(img);
}

static void test_fault_out_of_bounds(void **state)
{
        (void)state;
        /* vec_add with n larger than the buffers: the reads leave the framebuffer */
        struct params p;
        reset_mem();
        params_init(&p, kernel(IMG_FATBIN, "vec_add"));
        param_u64(&p, DEVMEM_BASE + dm.size - 1024);
        param_u64(&p, DEVMEM_BASE);
        param_u64(&p, DEVMEM_BASE);
        param_i32(&p, 4096);
        struct ptx_launch_stats st;
        assert_int_equal(launch(p.k, &p, 16, 1, 256, 1, 0, &st), PTX_EILLEGAL_ADDRESS);
        assert_true(st.fault_addr >= DEVMEM_BASE + dm.size);
        assert_true(st.fault_line > 0);
        /* misaligned pointer */
        params_init(&p, kernel(IMG_FATBIN, "vec_add"));
        param_u64(&p, DEVMEM_BASE + 2);
        param_u64(&p, DEVMEM_BASE);
        param_u64(&p, DEVMEM_BASE);
        param_i32(&p, 32);
        assert_int_equal(launch(p.k, &p, 1, 1, 32, 1, 0, NULL), PTX_EMISALIGNED);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_param_layout),  cmocka_unit_test(test_vec_add),
                cmocka_unit_test(test_saxpy),         cmocka_unit_test(test_block_reduce),
                cmocka_unit_test(test_warp_reduce),   cmocka_unit_test(test_warp_vote),
                cmocka_unit_test(test_matmul),        cmocka_unit_test(test_histogram),
                cmocka_unit_test(test_collatz),       cmocka_unit_test(test_recursive),
                cmocka_unit_test(test_fp_edge),       cmocka_unit_test(test_ptr64),
                cmocka_unit_test(test_dyn_shared),    cmocka_unit_test(test_globals),
                cmocka_unit_test(test_bound_globals), cmocka_unit_test(test_intops),
                cmocka_unit_test(test_approx_math),   cmocka_unit_test(test_misc),
                cmocka_unit_test(test_half_math),     cmocka_unit_test(test_intrin),
                cmocka_unit_test(test_assert_fail),   cmocka_unit_test(test_fptr),
                cmocka_unit_test(test_printf),        cmocka_unit_test(test_half_cmp),
                cmocka_unit_test(test_cg_templates),  cmocka_unit_test(test_other_builds),
                cmocka_unit_test(test_cubin_refused), cmocka_unit_test(test_fault_out_of_bounds),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

#else

int main(void)
{
        printf("SKIP: nvcc was not found when this was built; the CUDA test kernels need it\n");
        return 77;
}

#endif
