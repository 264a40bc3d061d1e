// SPDX-License-Identifier: Apache-2.0
// longrun: a long-running kernel for scheduling demos. It calibrates the iteration count with
// short launches, then runs one kernel of about --seconds S (default 2) and checks every thread's
// result. Flags: --seconds S, --iters N (skip calibration), --launches L (split the run into L
// back-to-back kernels, default 1), --blocks B (2), --threads T (64), --device N.
#include "common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern const unsigned char longrun_fatbin[];

#define LCG_A 1664525u
#define LCG_C 1013904223u

// The LCG x -> A x + C applied n times, as one affine map (a, c), by repeated squaring.
static uint32_t lcg_jump(uint32_t x, unsigned long long n)
{
        uint32_t a = 1;
        uint32_t c = 0;
        uint32_t pa = LCG_A;
        uint32_t pc = LCG_C;

        while (n) {
                if (n & 1) {
                        a = a * pa;
                        c = c * pa + pc;
                }
                pc = pc * pa + pc;
                pa = pa * pa;
                n >>= 1;
        }
        return a * x + c;
}

static double run(CUfunction f, CUdeviceptr out, unsigned long long iters, unsigned blocks,
                  unsigned threads)
{
        void *params[] = {&out, &iters};
        double t0 = ex_now();

        CU(cuLaunchKernel(f, blocks, 1, 1, threads, 1, 1, 0, NULL, params, NULL));
        CU(cuCtxSynchronize());
        return ex_now() - t0;
}

int main(int argc, char **argv)
{
        double seconds = ex_flag_double(argc, argv, "--seconds", 2.0);
        long long iters_l = ex_flag_long(argc, argv, "--iters", 0);
        long long launches_l = ex_flag_long(argc, argv, "--launches", 1);
        long long blocks_l = ex_flag_long(argc, argv, "--blocks", 2);
        long long threads_l = ex_flag_long(argc, argv, "--threads", 64);
        unsigned long long iters;
        CUdevice dev;
        CUmodule mod;
        CUfunction f;
        CUdeviceptr dout;
        int bad = 0;

        if (!(seconds > 0.0 && seconds <= 86400.0))
                ex_fail("--seconds %g: out of range", seconds);
        if (iters_l < 0 || launches_l < 1 || launches_l > 1000000 || blocks_l < 1 ||
            blocks_l > 65535 || threads_l < 1 || threads_l > 1024)
                ex_fail("--iters/--launches/--blocks/--threads out of range");
        unsigned blocks = (unsigned)blocks_l;
        unsigned threads = (unsigned)threads_l;
        size_t n = (size_t)blocks * threads;

        ex_open("longrun", argc, argv, &dev);
        mod = ex_load(longrun_fatbin);
        f = ex_function(mod, "lcg_spin");
        CU(cuMemAlloc(&dout, n * sizeof(uint32_t)));

        if (iters_l > 0) {
                iters = (unsigned long long)iters_l;
        } else {
                // Double the count until one launch takes >= 50 ms, then scale to the target.
                unsigned long long probe = 256;
                double t = run(f, dout, probe, blocks, threads);
                while (t < 0.05 && probe < (1ULL << 40)) {
                        probe *= 2;
                        t = run(f, dout, probe, blocks, threads);
                }
                double per_launch = seconds / (double)launches_l;
                double scaled = (double)probe * per_launch / (t > 1e-6 ? t : 1e-6);
                iters = scaled < 1.0 ? 1 : (unsigned long long)scaled;
                printf("longrun: calibrated %.3g iterations/s per thread\n", (double)probe / t);
        }
        printf("longrun: %lld launch(es) of %u x %u threads, %llu iterations each\n", launches_l,
               blocks, threads, iters);

        double t0 = ex_now();
        void *params[] = {&dout, &iters};
        for (long long l = 0; l < launches_l; l++)
                CU(cuLaunchKernel(f, blocks, 1, 1, threads, 1, 1, 0, NULL, params, NULL));
        CU(cuCtxSynchronize());
        double elapsed = ex_now() - t0;

        uint32_t *h = malloc(n * sizeof(uint32_t));
        if (!h)
                ex_fail("out of host memory");
        CU(cuMemcpyDtoH(h, dout, n * sizeof(uint32_t)));
        for (size_t i = 0; i < n; i++) {
                uint32_t want = lcg_jump((uint32_t)i, iters);
                if (h[i] != want) {
                        if (bad < 5)
                                printf("mismatch at %zu: got 0x%08x, want 0x%08x\n", i, h[i], want);
                        bad++;
                }
        }
        free(h);
        CU(cuMemFree(dout));
        CU(cuModuleUnload(mod));
        ex_close(dev);
        if (bad)
                ex_fail("longrun: %d of %zu threads wrong", bad, n);
        printf("PASS longrun: %.2f s\n", elapsed);
        return 0;
}
