// SPDX-License-Identifier: Apache-2.0
// mig_guest: a guest that runs a long computation in its vGPU and checks its own results, for
// the suspend, resume and migration tests and benchmark (docs/migration.md). It fills --mib MiB
// of framebuffer with a known pattern, then for --seconds (or --iters) launches a kernel that
// steps every element of a small array through a sequence that depends on the step number (a
// lost, repeated or reordered step shows), synchronising after each. It checks the array against
// the host's model every 64 steps and at the end, and the pattern at the end.
//
// Output: "step_ms_max=X steps=N" (the longest step: what a pause cost this guest) and PASS, or
// FAIL with the first difference. --retry-timeouts: a call that fails with CUDA_ERROR_TIMEOUT
// (VGPU_SUSPEND_TIMEOUT_MS ran out while the vGPU was suspended) is counted and retried.
// --until FILE: run until FILE exists (and at least --seconds). --ready FILE: created once the
// pattern is in place. --idle: a mostly idle guest: each step is
// only a cuCtxSynchronize after 5 ms asleep (its data stays put; the longest step is the pause).
// --memcpy-mib N: no vGPU; print the host's memcpy bandwidth over N MiB ("memcpy_gbps=X", best of
// 5), the benchmark's baseline.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cuda.h>

#define N_ELEMS 65536u
#define THREADS 256u
#define MUL     1664525u
#define ADD     1013904223u

static const char ptx[] = ".version 8.0\n"
                          ".target sm_80\n"
                          ".address_size 64\n"
                          ".visible .entry step(.param .u64 p, .param .u32 n, .param .u32 k)\n"
                          "{\n"
                          "  .reg .pred %p<2>;\n"
                          "  .reg .b32 %r<10>;\n"
                          "  .reg .b64 %rd<5>;\n"
                          "  ld.param.u64 %rd1, [p];\n"
                          "  ld.param.u32 %r1, [n];\n"
                          "  ld.param.u32 %r2, [k];\n"
                          "  mov.u32 %r3, %ctaid.x;\n"
                          "  mov.u32 %r4, %ntid.x;\n"
                          "  mov.u32 %r5, %tid.x;\n"
                          "  mad.lo.s32 %r6, %r3, %r4, %r5;\n"
                          "  setp.ge.u32 %p1, %r6, %r1;\n"
                          "  @%p1 bra DONE;\n"
                          "  cvta.to.global.u64 %rd2, %rd1;\n"
                          "  mul.wide.u32 %rd3, %r6, 4;\n"
                          "  add.s64 %rd4, %rd2, %rd3;\n"
                          "  ld.global.u32 %r7, [%rd4];\n"
                          "  mul.lo.s32 %r8, %r7, 1664525;\n"
                          "  xor.b32 %r9, %r2, 1013904223;\n"
                          "  add.s32 %r8, %r8, %r9;\n"
                          "  st.global.u32 [%rd4], %r8;\n"
                          "DONE:\n"
                          "  ret;\n"
                          "}\n";

static long timeouts;
static int retry_timeouts;

static double now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, CUresult r)
{
        const char *name = NULL;

        cuGetErrorName(r, &name);
        printf("FAIL: %s: %s\n", what, name ? name : "?");
        exit(1);
}

/* Run a call; with --retry-timeouts, again while it times out. */
#define CALL(expr)                                                                                 \
        do {                                                                                       \
                CUresult r_;                                                                       \
                while ((r_ = (expr)) == CUDA_ERROR_TIMEOUT && retry_timeouts) {                    \
                        timeouts++;                                                                \
                        usleep(10000);                                                             \
                }                                                                                  \
                if (r_ != CUDA_SUCCESS)                                                            \
                        die(#expr, r_);                                                            \
        } while (0)

static uint32_t pattern(size_t i)
{
        return (uint32_t)(i * 2654435761u) ^ 0x5a5aa5a5u;
}

static const char *flag(int argc, char **argv, const char *name)
{
        for (int i = 1; i + 1 < argc; i++) {
                if (strcmp(argv[i], name) == 0)
                        return argv[i + 1];
        }
        return NULL;
}

static int check_array(CUdeviceptr d, const uint32_t *model, uint32_t *buf, long step)
{
        CALL(cuMemcpyDtoH(buf, d, N_ELEMS * 4));
        for (uint32_t i = 0; i < N_ELEMS; i++) {
                if (buf[i] != model[i]) {
                        printf("FAIL: after step %ld, element %u is 0x%08x, not 0x%08x\n", step, i,
                               buf[i], model[i]);
                        return 1;
                }
        }
        return 0;
}

static int memcpy_baseline(size_t bytes)
{
        uint8_t *a = malloc(bytes), *b = malloc(bytes);
        double best = 1e30;

        if (!a || !b || !bytes) {
                printf("FAIL: no memory for the baseline\n");
                return 1;
        }
        memset(a, 0x5a, bytes);
        memset(b, 0xa5, bytes); /* both touched: no page faults in the timing */
        for (int i = 0; i < 5; i++) {
                double t0 = now();

                memcpy(b, a, bytes);
                if (now() - t0 < best)
                        best = now() - t0;
        }
        printf("memcpy_gbps=%.3f (%u)\n", (double)bytes / best / 1e9, b[bytes / 2]);
        free(a);
        free(b);
        return 0;
}

int main(int argc, char **argv)
{
        const char *s;
        size_t mib = (s = flag(argc, argv, "--mib")) ? strtoull(s, NULL, 10) : 16;
        double seconds = (s = flag(argc, argv, "--seconds")) ? atof(s) : 5.0;
        long iters = (s = flag(argc, argv, "--iters")) ? atol(s) : 0;
        const char *ready = flag(argc, argv, "--ready");
        const char *until = flag(argc, argv, "--until");
        size_t words = mib * 262144u, chunk = 1u << 22;
        uint32_t *model = malloc(N_ELEMS * 4), *buf = malloc(N_ELEMS * 4);
        uint32_t *host = malloc(chunk * 4);
        CUdevice dev;
        CUcontext ctx;
        CUmodule mod;
        CUfunction fn;
        CUdeviceptr arr, big = 0;
        double start, max_step = 0;
        long step = 0;
        int idle = 0;

        for (int i = 1; i < argc; i++)
                retry_timeouts |= strcmp(argv[i], "--retry-timeouts") == 0;
        for (int i = 1; i < argc; i++)
                idle |= strcmp(argv[i], "--idle") == 0;
        if ((s = flag(argc, argv, "--memcpy-mib"))) {
                free(model);
                free(buf);
                free(host);
                return memcpy_baseline(strtoull(s, NULL, 10) << 20);
        }
        if (!model || !buf || !host) {
                printf("FAIL: out of memory\n");
                return 1;
        }
        CALL(cuInit(0));
        CALL(cuDeviceGet(&dev, 0));
        CALL(cuCtxCreate(&ctx, NULL, 0, dev));
        CALL(cuModuleLoadData(&mod, ptx));
        CALL(cuModuleGetFunction(&fn, mod, "step"));
        CALL(cuMemAlloc(&arr, N_ELEMS * 4));
        for (uint32_t i = 0; i < N_ELEMS; i++)
                model[i] = i;
        CALL(cuMemcpyHtoD(arr, model, N_ELEMS * 4));
        if (words) {
                CALL(cuMemAlloc(&big, words * 4));
                for (size_t off = 0; off < words; off += chunk) {
                        size_t n = words - off < chunk ? words - off : chunk;

                        for (size_t i = 0; i < n; i++)
                                host[i] = pattern(off + i);
                        CALL(cuMemcpyHtoD(big + off * 4, host, n * 4));
                }
        }
        if (ready) {
                FILE *f = fopen(ready, "w");

                if (f)
                        fclose(f);
        }
        start = now();
        while (iters ? step < iters
                     : now() - start < seconds || (until && access(until, F_OK) != 0)) {
                uint32_t n = N_ELEMS, k = (uint32_t)step;
                void *params[] = {&arr, &n, &k};
                double t0, dt;

                if (idle) {
                        usleep(5000);
                        t0 = now();
                        CALL(cuCtxSynchronize());
                        dt = now() - t0;
                        max_step = dt > max_step ? dt : max_step;
                        step++;
                        continue;
                }
                t0 = now();
                CALL(cuLaunchKernel(fn, N_ELEMS / THREADS, 1, 1, THREADS, 1, 1, 0, NULL, params,
                                    NULL));
                CALL(cuCtxSynchronize());
                dt = now() - t0;
                if (dt > max_step)
                        max_step = dt;
                for (uint32_t i = 0; i < N_ELEMS; i++)
                        model[i] = model[i] * MUL + (k ^ ADD);
                step++;
                if (step % 64 == 0 && check_array(arr, model, buf, step))
                        return 1;
        }
        if (check_array(arr, model, buf, step))
                return 1;
        for (size_t off = 0; off < words; off += chunk) {
                size_t n = words - off < chunk ? words - off : chunk;

                CALL(cuMemcpyDtoH(host, big + off * 4, n * 4));
                for (size_t i = 0; i < n; i++) {
                        if (host[i] != pattern(off + i)) {
                                printf("FAIL: pattern word %zu is 0x%08x, not 0x%08x\n", off + i,
                                       host[i], pattern(off + i));
                                return 1;
                        }
                }
        }
        printf("step_ms_max=%.3f steps=%ld timeouts=%ld\n", max_step * 1e3, step, timeouts);
        printf("PASS\n");
        CALL(cuCtxDestroy(ctx));
        free(model);
        free(buf);
        free(host);
        return 0;
}
