// SPDX-License-Identifier: Apache-2.0
// Test kernels for the PTX interpreter: compiled by nvcc at build time, run by test_ptx_kernels.c
// on the interpreter and checked against C references. extern "C" keeps the entry names plain.
#include <stdint.h>

extern "C" __global__ void vec_add(const float *a, const float *b, float *c, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n)
                c[i] = a[i] + b[i];
}

extern "C" __global__ void saxpy(int n, float a, const float *x, float *y)
{
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
                y[i] = a * x[i] + y[i];
}

// Block sum with a static shared array and barriers; blockDim.x must be 256.
extern "C" __global__ void block_reduce(const int *in, int *out, int n)
{
        __shared__ int s[256];
        int t = threadIdx.x;
        int i = blockIdx.x * blockDim.x + t;
        s[t] = i < n ? in[i] : 0;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w >>= 1) {
                if (t < w)
                        s[t] += s[t + w];
                __syncthreads();
        }
        if (t == 0)
                out[blockIdx.x] = s[0];
}

// Sum with warp shuffles, one atomicAdd per warp.
extern "C" __global__ void warp_reduce(const float *in, float *out, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        float v = i < n ? in[i] : 0.0f;
        for (int o = 16; o > 0; o >>= 1)
                v += __shfl_down_sync(0xffffffffu, v, o);
        if ((threadIdx.x & 31) == 0)
                atomicAdd(out, v);
}

// Vote and ballot: per warp, count of positive values and the ballot mask.
extern "C" __global__ void warp_vote(const int *in, unsigned *ballots, int *flags)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        int v = in[i];
        unsigned b = __ballot_sync(0xffffffffu, v > 0);
        int all = __all_sync(0xffffffffu, v > 0);
        int any = __any_sync(0xffffffffu, v > 100);
        if ((threadIdx.x & 31) == 0) {
                ballots[i / 32] = b;
                flags[i / 32] = all | (any << 1) | (__popc(b) << 2);
        }
}

#define TILE 16
// C = A * B, square n x n, n a multiple of TILE.
extern "C" __global__ void matmul_tiled(const float *A, const float *B, float *C, int n)
{
        __shared__ float ta[TILE][TILE];
        __shared__ float tb[TILE][TILE];
        int row = blockIdx.y * TILE + threadIdx.y;
        int col = blockIdx.x * TILE + threadIdx.x;
        float acc = 0.0f;
        for (int k = 0; k < n; k += TILE) {
                ta[threadIdx.y][threadIdx.x] = A[row * n + k + threadIdx.x];
                tb[threadIdx.y][threadIdx.x] = B[(k + threadIdx.y) * n + col];
                __syncthreads();
                for (int j = 0; j < TILE; j++)
                        acc += ta[threadIdx.y][j] * tb[j][threadIdx.x];
                __syncthreads();
        }
        C[row * n + col] = acc;
}

// Histogram of bytes into 256 bins: shared atomics, then global atomics.
extern "C" __global__ void histogram(const unsigned char *data, int n, unsigned *bins)
{
        __shared__ unsigned local[256];
        for (int b = threadIdx.x; b < 256; b += blockDim.x)
                local[b] = 0;
        __syncthreads();
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
                atomicAdd(&local[data[i]], 1u);
        __syncthreads();
        for (int b = threadIdx.x; b < 256; b += blockDim.x)
                if (local[b])
                        atomicAdd(&bins[b], local[b]);
}

// Heavy divergence: a data-dependent loop (Collatz steps) with branches inside.
extern "C" __global__ void collatz(const unsigned *in, unsigned *steps, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n)
                return;
        unsigned long long x = in[i];
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
        steps[i] = s;
}

// A recursive device function the compiler cannot turn into a loop.
__device__ __noinline__ int fib(int n)
{
        if (n < 2)
                return n;
        return fib(n - 1) + fib(n - 2);
}

__device__ __noinline__ int ackermann_like(int m, int n, int *depth)
{
        *depth += 1;
        if (m == 0)
                return n + 1;
        if (n == 0)
                return ackermann_like(m - 1, 1, depth);
        return ackermann_like(m - 1, ackermann_like(m, n - 1, depth), depth);
}

extern "C" __global__ void recursive(const int *in, int *out, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n)
                return;
        int depth = 0;
        int a = ackermann_like(in[i] & 1, in[i] & 3, &depth);
        out[i] = fib(in[i] % 16) * 1000 + a * 10 + (depth & 7);
}

// Float edge cases: each thread computes several results from a pair of inputs.
extern "C" __global__ void fp_edge(const float *a, const float *b, float *outf, const double *da,
                                   double *outd, int *outi, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n)
                return;
        float x = a[i], y = b[i];
        outf[8 * i + 0] = x + y;
        outf[8 * i + 1] = x * y;
        outf[8 * i + 2] = x / y;
        outf[8 * i + 3] = fminf(x, y);
        outf[8 * i + 4] = fmaxf(x, y);
        outf[8 * i + 5] = fmaf(x, y, 1.0f);
        outf[8 * i + 6] = __fadd_rz(x, y);
        outf[8 * i + 7] = sqrtf(fabsf(x));
        double d = da[i];
        outd[4 * i + 0] = d * 3.0 + (double)x;
        outd[4 * i + 1] = d / (double)y;
        outd[4 * i + 2] = sqrt(fabs(d));
        outd[4 * i + 3] = (double)(float)d;
        outi[4 * i + 0] = (int)x;
        outi[4 * i + 1] = __float2int_rn(y);
        outi[4 * i + 2] = (int)(unsigned)(long long)d;
        outi[4 * i + 3] = isnan(x) | (isinf(y) << 1) | (signbit(x) << 2);
}

// 64-bit pointer arithmetic: strided gather through 64-bit offsets and pointer differences.
extern "C" __global__ void ptr64(const long long *base, long long *out, long long stride, int n)
{
        long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n)
                return;
        const long long *p = base + ((i * stride) % n);
        const long long *q = base + n - 1 - i;
        out[i] = *p * 3 - *q + (long long)(p - q) + ((unsigned long long)*p >> 7) +
                 __mul64hi(*p, stride) + (*q % 1000003);
}

// Dynamic shared memory: reverse each block's chunk through extern shared.
extern "C" __global__ void dyn_reverse(const int *in, int *out, int n)
{
        extern __shared__ int buf[];
        int t = threadIdx.x;
        int base = blockIdx.x * blockDim.x;
        if (base + t < n)
                buf[t] = in[base + t];
        __syncthreads();
        int r = blockDim.x - 1 - t;
        if (base + r < n && base + t < n)
                out[base + t] = buf[r];
}

__constant__ float coeffs[4] = {1.5f, -2.0f, 0.25f, 3.0f};
__device__ int counter = 0;
__device__ int table[8] = {1, 2, 3, 5, 8, 13, 21, 34};

// Module globals and constants: a polynomial with __constant__ coefficients, a global counter.
extern "C" __global__ void globals(const float *x, float *y, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n)
                return;
        float v = x[i];
        y[i] = ((coeffs[3] * v + coeffs[2]) * v + coeffs[1]) * v + coeffs[0] + table[i & 7];
        atomicAdd(&counter, 1);
}

// Integer bit ops: popc, clz, brev, bfe, prmt-like byte permutes, mul.hi, min/max.
extern "C" __global__ void intops(const unsigned *a, const unsigned *b, unsigned *out, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n)
                return;
        unsigned x = a[i], y = b[i];
        out[8 * i + 0] = __popc(x) + __clz(y);
        out[8 * i + 1] = __brev(x);
        out[8 * i + 2] = (x >> (y & 31)) | (x << (32 - (y & 31)));
        out[8 * i + 3] = __umulhi(x, y);
        out[8 * i + 4] = __byte_perm(x, y, 0x5140);
        out[8 * i + 5] = min(x, y) ^ (unsigned)max((int)x, (int)y);
        out[8 * i + 6] = (x >> 5) & 0x3ff;
        out[8 * i + 7] = y ? x / y + x % y : 0;
}

// Approximate math (the fast intrinsics nvcc lowers to ex2/lg2/sin/cos/rcp/rsqrt.approx), read
// through the read-only cache (ld.global.nc), and half/bfloat16 conversions.
#include <cuda_fp16.h>
#include <cuda_bf16.h>
extern "C" __global__ void approx_math(const float *__restrict__ x, float *__restrict__ out, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n)
                return;
        float v = __ldg(&x[i]);
        out[10 * i + 0] = __expf(v);
        out[10 * i + 1] = __logf(fabsf(v) + 1.0f);
        out[10 * i + 2] = __sinf(v);
        out[10 * i + 3] = __cosf(v);
        out[10 * i + 4] = __frcp_rn(v);
        out[10 * i + 5] = rsqrtf(fabsf(v) + 1.0f);
        out[10 * i + 6] = tanhf(v);
        out[10 * i + 7] = __half2float(__float2half(v));
        out[10 * i + 8] = __bfloat162float(__float2bfloat16(v));
        out[10 * i + 9] = __fdividef(v, 3.0f);
}

struct pair {
        int a;
        long long b;
        float c[3];
};

// A struct passed by value, a local array indexed at run time (local memory), more atomics
// (CAS, max, min, exch, inc), __syncthreads_count/and/or, clock64 and the global timer.
extern "C" __global__ void misc(struct pair p, const int *in, int *out, int *atom, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        int local[16];
        for (int k = 0; k < 16; k++)
                local[k] = in[(i + k) % n] * (k + p.a);
        int v = i < n ? in[i] : 0;
        int sel = local[(v & 15)];
        int cnt = __syncthreads_count(v > 0);
        int all = __syncthreads_and(v > -1000);
        int any = __syncthreads_or(v > 900);
        long long t0 = clock64();
        unsigned long long g = 0;
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g));
        atomicMax(&atom[0], v);
        atomicMin(&atom[1], v);
        atomicAdd((unsigned long long *)&atom[2], (unsigned long long)(v & 0xff));
        atomicInc((unsigned *)&atom[4], 1000000u);
        int old = atomicCAS(&atom[5], 0, i + 1);
        atomicExch(&atom[6], 7);
        atomicOr(&atom[7], 1 << (i & 31));
        if (i < n)
                out[i] = sel + cnt * 3 + all * 5 + any * 7 + (int)(p.b % 1000) +
                         (int)p.c[i % 3] + (old == 0 ? 1 : 0) * 0 + (clock64() >= t0) +
                         (g > 0);
}

// Half-precision arithmetic: scalar and packed (half2) add, mul, fma, min/max, neg.
extern "C" __global__ void half_math(const __half *a, const __half *b, __half *out, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n / 2)
                return;
        __half x = a[i], y = b[i];
        out[8 * i + 0] = __hadd(x, y);
        out[8 * i + 1] = __hmul(x, y);
        out[8 * i + 2] = __hfma(x, y, __float2half(0.5f));
        out[8 * i + 3] = __hmax(x, y);
        out[8 * i + 4] = __hneg(__hsub(x, y));
        __half2 p = __halves2half2(x, y), q = __halves2half2(y, x);
        __half2 r = __hfma2(p, q, p);
        out[8 * i + 5] = __low2half(r);
        out[8 * i + 6] = __high2half(r);
        out[8 * i + 7] = __hmin(x, y);
}

// More integer intrinsics (sad, fns, dp4a/dp2a, bfind via __ffs/__clzll, funnel shifts), a device
// printf and an assert that holds; assert_fail's assert fails in one thread.
#include <cassert>
#include <cstdio>
extern "C" __global__ void intrin(const unsigned *a, const unsigned *b, unsigned *out, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n)
                return;
        unsigned x = a[i], y = b[i];
        assert(n > 0);
        if (i == 0)
                printf("intrin: n=%d x=%u\n", n, x);
        out[8 * i + 0] = __sad((int)x, (int)y, 7u) + __usad(x, y, 1u);
        out[8 * i + 1] = __fns(x, y & 31, (int)(y % 5) - 2);
        out[8 * i + 2] = (unsigned)__dp4a((int)x, (int)y, 5) + __dp4a(x, y, 3u);
        out[8 * i + 3] = (unsigned)__dp2a_lo((int)x, (int)y, 1) + __dp2a_hi(x, y, 2u);
        out[8 * i + 4] = (unsigned)__ffs((int)x) + (unsigned)__ffsll((long long)y << 20);
        out[8 * i + 5] = (unsigned)__clzll(((unsigned long long)x << 32) | y) + __popcll(x * 3ull);
        out[8 * i + 6] = __funnelshift_l(x, y, i) ^ __funnelshift_rc(x, y, i);
        out[8 * i + 7] = (unsigned)__mul24((int)x, (int)y) + __umul24(x, y);
}

extern "C" __global__ void assert_fail(int *p, int bad)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        assert(i != bad);
        p[i] = i;
}

// Function pointers: a table of device functions in a module variable, called through a
// register (an indirect call with a prototype), different callees in one warp; then a switch.
typedef int (*binop_t)(int, int);
__device__ __noinline__ int op_add(int a, int b)
{
        return a + b;
}
__device__ __noinline__ int op_mul(int a, int b)
{
        return a * b;
}
__device__ __noinline__ int op_sub(int a, int b)
{
        return a - b;
}
__device__ binop_t binops[3] = {op_add, op_mul, op_sub};

extern "C" __global__ void fptr(const int *in, int *out, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n)
                return;
        int v = in[i];
        binop_t f = binops[(unsigned)v % 3];
        int r = f(v, i);
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
                r <<= 1;
                break;
        default:
                break;
        }
        out[i] = r;
}

// Device printf with the common conversions; thread i prints one line.
extern "C" __global__ void printer(int n)
{
        int i = threadIdx.x;
        if (i < n)
                printf("t%d %5.2f %s %c %lld %x %-3u|\n", i, 1.5f * i, i & 1 ? "odd" : "even",
                       'A' + i, (long long)i << 40, i * 255, (unsigned)i);
}

// Half comparisons (setp.f16 and set.f16x2 in cuda_fp16's inline assembly).
extern "C" __global__ void half_cmp(const __half *a, const __half *b, int *out, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n)
                return;
        __half x = a[i], y = b[i];
        __half2 p = __halves2half2(x, y), q = __halves2half2(y, x);
        out[i] = __hlt(x, y) + 2 * __hge(x, y) + 4 * __heq(x, y) + 8 * __hbgt2(p, q) +
                 16 * __hisnan(x) + 32 * __hbeq2(p, p);
}

// Cooperative groups and templates: a block-wide reduction through thread_block and a 32-thread
// tile, a templated kernel instantiated for two types, atomicAdd on double.
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
namespace cg = cooperative_groups;

template <typename T> __device__ T square(T v)
{
        return v * v;
}

template <typename T> __global__ void sum_squares(const T *in, double *out, int n)
{
        cg::thread_block block = cg::this_thread_block();
        cg::thread_block_tile<32> tile = cg::tiled_partition<32>(block);
        __shared__ double partial[32];
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        double v = i < n ? (double)square(in[i]) : 0.0;
        v = cg::reduce(tile, v, cg::plus<double>());
        if (tile.thread_rank() == 0)
                partial[tile.meta_group_rank()] = v;
        block.sync();
        if (tile.meta_group_rank() == 0) {
                double w = tile.thread_rank() < tile.meta_group_size() ? partial[tile.thread_rank()]
                                                                        : 0.0;
                w = cg::reduce(tile, w, cg::plus<double>());
                if (tile.thread_rank() == 0)
                        atomicAdd(out, w);
        }
}

template __global__ void sum_squares<int>(const int *, double *, int);
template __global__ void sum_squares<float>(const float *, double *, int);
