// SPDX-License-Identifier: Apache-2.0
// Data-plane benchmark, run as a guest of a vGPU (LD_LIBRARY_PATH=build/lib, VGPU_SOCKET,
// VGPU_UUID): the null synchronous call's round trip, the added cost of an asynchronous launch,
// and host-to-device / device-to-host bandwidth from 4 KiB to 1 GiB. Each against a baseline
// measured in the same run: a direct in-process call, and plain memcpy of the same size.
#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CK(x)                                                                                      \
        do {                                                                                       \
                CUresult r_ = (x);                                                                 \
                if (r_ != CUDA_SUCCESS) {                                                          \
                        const char *s_ = "?";                                                      \
                        cuGetErrorName(r_, &s_);                                                   \
                        fprintf(stderr, "bench: %s: %s\n", #x, s_);                                \
                        exit(1);                                                                   \
                }                                                                                  \
        } while (0)

static const char empty_ptx[] = ".version 8.0\n.target sm_75\n.address_size 64\n"
                                ".visible .entry empty()\n{\n\tret;\n}\n";

static double now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

/* The baseline of a call: an indirect call that the compiler cannot remove. */
static CUresult __attribute__((noinline)) direct(volatile int *p)
{
        (*p)++;
        return CUDA_SUCCESS;
}

int main(int argc, char **argv)
{
        static double lat[20000];
        CUresult (*volatile fn)(volatile int *) = direct;
        volatile int sink = 0;
        size_t max_bytes = (size_t)1 << 30;
        CUcontext ctx;
        CUdevice dev;
        CUmodule mod;
        CUfunction empty;
        CUdeviceptr d;
        double t0, base_ns, p50, push_ns, total_ns;
        int n = 20000, launches = 4000; /* launches that fit the command ring */
        char *h, *h2;

        if (argc > 1)
                max_bytes = (size_t)strtoull(argv[1], NULL, 0);
        CK(cuInit(0));
        CK(cuDeviceGet(&dev, 0));
        CK(cuCtxCreate(&ctx, NULL, 0, dev));
        CK(cuModuleLoadData(&mod, empty_ptx));
        CK(cuModuleGetFunction(&empty, mod, "empty"));

        /* Null synchronous call: cuCtxSynchronize with nothing queued is one round trip. */
        for (int i = 0; i < 2000; i++)
                CK(cuCtxSynchronize());
        for (int i = 0; i < n; i++) {
                t0 = now_ns();
                CK(cuCtxSynchronize());
                lat[i] = now_ns() - t0;
        }
        qsort(lat, (size_t)n, sizeof(lat[0]), cmp);
        p50 = lat[n / 2];
        t0 = now_ns();
        for (int i = 0; i < n; i++)
                fn(&sink);
        base_ns = (now_ns() - t0) / n;

        /* Asynchronous launches: what the caller pays per call, and the rate including execution.
         */
        t0 = now_ns();
        for (int i = 0; i < launches; i++)
                CK(cuLaunchKernel(empty, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
        push_ns = (now_ns() - t0) / launches;
        CK(cuCtxSynchronize());
        total_ns = (now_ns() - t0) / launches;

        printf("%-34s %12s %12s\n", "call", "ns", "baseline ns");
        printf("%-34s %12.0f %12.1f\n", "null sync call, p50", p50, base_ns);
        printf("%-34s %12.0f %12s\n", "null sync call, p99", lat[n * 99 / 100], "");
        printf("%-34s %12.0f %12.1f\n", "async launch, caller's cost", push_ns, base_ns);
        printf("%-34s %12.0f %12s\n", "async launch, with execution", total_ns, "");

        CK(cuMemAlloc(&d, max_bytes));
        h = malloc(max_bytes);
        h2 = malloc(max_bytes);
        if (!h || !h2)
                return 1;
        memset(h, 1, max_bytes);
        memset(h2, 2, max_bytes);
        printf("\n%-12s %14s %14s %14s %8s %8s\n", "size", "HtoD GB/s", "DtoH GB/s", "memcpy GB/s",
               "HtoD x", "DtoH x");
        for (size_t sz = 4096; sz <= max_bytes; sz *= 4) {
                int reps = sz < (1u << 20) ? 200 : sz < (64u << 20) ? 20 : 3;
                double th, td, tm;

                CK(cuMemcpyHtoD(d, h, sz));
                CK(cuMemcpyDtoH(h2, d, sz));
                t0 = now_ns();
                for (int i = 0; i < reps; i++)
                        CK(cuMemcpyHtoD(d, h, sz));
                th = (now_ns() - t0) / reps;
                t0 = now_ns();
                for (int i = 0; i < reps; i++)
                        CK(cuMemcpyDtoH(h2, d, sz));
                td = (now_ns() - t0) / reps;
                t0 = now_ns();
                for (int i = 0; i < reps; i++) {
                        memcpy(h2, h, sz);
                        __asm__ volatile("" ::"r"(h2) : "memory");
                }
                tm = (now_ns() - t0) / reps;
                printf("%-12zu %14.2f %14.2f %14.2f %8.2f %8.2f\n", sz, sz / th, sz / td, sz / tm,
                       tm / th, tm / td);
                if (sz == (64u << 20) || sz * 4 > max_bytes) {
                        printf("BENCH copy_htod_%zuMiB_ratio %.2f x\n", sz >> 20, tm / th);
                        printf("BENCH copy_dtoh_%zuMiB_ratio %.2f x\n", sz >> 20, tm / td);
                }
        }

        /*
         * The same from cuMemAllocHost memory, which the guest shares with the engine: one copy,
         * by the engine, straight between the guest's pages and the framebuffer.
         */
        {
                void *p1 = NULL, *p2 = NULL;

                CK(cuMemAllocHost(&p1, max_bytes));
                CK(cuMemAllocHost(&p2, max_bytes));
                memset(p1, 3, max_bytes);
                memset(p2, 4, max_bytes);
                printf("\n%-12s %14s %14s %14s %8s %8s\n", "pinned size", "HtoD GB/s", "DtoH GB/s",
                       "memcpy GB/s", "HtoD x", "DtoH x");
                for (size_t sz = 4096; sz <= max_bytes; sz *= 4) {
                        int reps = sz < (1u << 20) ? 200 : sz < (64u << 20) ? 20 : 3;
                        double th, td, tm;

                        /* once each way first: the engine's first touch of the pages maps them */
                        CK(cuMemcpyHtoD(d, p1, sz));
                        CK(cuMemcpyDtoH(p2, d, sz));
                        t0 = now_ns();
                        for (int i = 0; i < reps; i++)
                                CK(cuMemcpyHtoD(d, p1, sz));
                        th = (now_ns() - t0) / reps;
                        t0 = now_ns();
                        for (int i = 0; i < reps; i++)
                                CK(cuMemcpyDtoH(p2, d, sz));
                        td = (now_ns() - t0) / reps;
                        t0 = now_ns();
                        for (int i = 0; i < reps; i++) {
                                memcpy(p2, p1, sz);
                                __asm__ volatile("" ::"r"(p2) : "memory");
                        }
                        tm = (now_ns() - t0) / reps;
                        printf("%-12zu %14.2f %14.2f %14.2f %8.2f %8.2f\n", sz, sz / th, sz / td,
                               sz / tm, tm / th, tm / td);
                        if (sz == (64u << 20) || sz * 4 > max_bytes) {
                                printf("BENCH copy_pinned_htod_%zuMiB_ratio %.2f x\n", sz >> 20,
                                       tm / th);
                                printf("BENCH copy_pinned_dtoh_%zuMiB_ratio %.2f x\n", sz >> 20,
                                       tm / td);
                        }
                }
                CK(cuMemFreeHost(p1));
                CK(cuMemFreeHost(p2));
        }
        printf("BENCH null_sync_call_p50 %.2f us\n", p50 / 1e3);
        printf("BENCH null_sync_call_p50_ratio %.0f x\n", p50 / base_ns);
        printf("BENCH async_launch_added_cost %.3f us\n", (push_ns - base_ns) / 1e3);
        printf("BENCH async_launch_rate %.0f launches/s\n", 1e9 / total_ns);
        CK(cuMemFree(d));
        CK(cuCtxDestroy(ctx));
        free(h);
        free(h2);
        return 0;
}
