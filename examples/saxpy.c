// SPDX-License-Identifier: Apache-2.0
// saxpy: y = a*x + y on the device through the CUDA driver API, checked against a CPU reference.
// Flags: --n N (elements, default 65536), --device N. Prints PASS or FAIL; exit status 0 or 1.
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

extern const unsigned char saxpy_fatbin[];

int main(int argc, char **argv)
{
        long long n = ex_flag_long(argc, argv, "--n", 1 << 16);
        float a = 2.5f;
        unsigned seed = 12345;
        CUdevice dev;
        CUdeviceptr dx;
        CUdeviceptr dy;
        CUmodule mod;
        CUfunction f;
        float *x;
        float *y;
        float *out;
        int ni;
        int bad = 0;

        if (n <= 0 || n > (1LL << 30))
                ex_fail("--n %lld: out of range", n);
        ni = (int)n;
        ex_open("saxpy", argc, argv, &dev);
        mod = ex_load(saxpy_fatbin);
        f = ex_function(mod, "saxpy");

        x = malloc((size_t)n * sizeof(float));
        y = malloc((size_t)n * sizeof(float));
        out = malloc((size_t)n * sizeof(float));
        if (!x || !y || !out)
                ex_fail("out of host memory");
        for (int i = 0; i < ni; i++) {
                x[i] = (float)(ex_rand(&seed) % 2001) / 1000.0f - 1.0f;
                y[i] = (float)(ex_rand(&seed) % 2001) / 1000.0f - 1.0f;
        }

        CU(cuMemAlloc(&dx, (size_t)n * sizeof(float)));
        CU(cuMemAlloc(&dy, (size_t)n * sizeof(float)));
        CU(cuMemcpyHtoD(dx, x, (size_t)n * sizeof(float)));
        CU(cuMemcpyHtoD(dy, y, (size_t)n * sizeof(float)));

        unsigned threads = 256;
        unsigned blocks = (unsigned)((n + threads - 1) / threads);
        if (blocks > 1024)
                blocks = 1024;
        void *params[] = {&ni, &a, &dx, &dy};
        CU(cuLaunchKernel(f, blocks, 1, 1, threads, 1, 1, 0, NULL, params, NULL));
        CU(cuCtxSynchronize());
        CU(cuMemcpyDtoH(out, dy, (size_t)n * sizeof(float)));

        for (int i = 0; i < ni; i++) {
                float want = fmaf(a, x[i], y[i]);
                if (fabsf(out[i] - want) > 1e-5f * (1.0f + fabsf(want))) {
                        if (bad < 5)
                                printf("mismatch at %d: got %.8g, want %.8g\n", i, out[i], want);
                        bad++;
                }
        }

        CU(cuMemFree(dx));
        CU(cuMemFree(dy));
        CU(cuModuleUnload(mod));
        ex_close(dev);
        free(x);
        free(y);
        free(out);
        if (bad)
                ex_fail("saxpy: %d of %lld elements wrong", bad, n);
        printf("PASS saxpy: %lld elements\n", n);
        return 0;
}
