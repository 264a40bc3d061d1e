// SPDX-License-Identifier: Apache-2.0
// matmul: C = A * B (n x n floats) with a shared-memory tiled kernel, checked against a CPU
// reference. Entries are small multiples of 1/4, so every partial sum is exact in float.
// Flags: --n N (default 64), --device N. Prints PASS or FAIL; exit status 0 or 1.
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define TILE 16

extern const unsigned char matmul_fatbin[];

int main(int argc, char **argv)
{
        long long nl = ex_flag_long(argc, argv, "--n", 64);
        unsigned seed = 777;
        CUdevice dev;
        CUdeviceptr da;
        CUdeviceptr db;
        CUdeviceptr dc;
        CUmodule mod;
        CUfunction f;
        int n;
        int bad = 0;

        if (nl <= 0 || nl > 8192)
                ex_fail("--n %lld: out of range (1..8192)", nl);
        n = (int)nl;
        size_t bytes = (size_t)n * (size_t)n * sizeof(float);
        float *a = malloc(bytes);
        float *b = malloc(bytes);
        float *c = malloc(bytes);
        if (!a || !b || !c)
                ex_fail("out of host memory");
        for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
                a[i] = (float)((int)(ex_rand(&seed) % 9) - 4) * 0.25f;
                b[i] = (float)((int)(ex_rand(&seed) % 9) - 4) * 0.25f;
        }

        ex_open("matmul", argc, argv, &dev);
        mod = ex_load(matmul_fatbin);
        f = ex_function(mod, "matmul_tiled");
        CU(cuMemAlloc(&da, bytes));
        CU(cuMemAlloc(&db, bytes));
        CU(cuMemAlloc(&dc, bytes));
        CU(cuMemcpyHtoD(da, a, bytes));
        CU(cuMemcpyHtoD(db, b, bytes));
        CU(cuMemsetD32(dc, 0, (size_t)n * (size_t)n));

        unsigned g = (unsigned)((n + TILE - 1) / TILE);
        void *params[] = {&da, &db, &dc, &n};
        CU(cuLaunchKernel(f, g, g, 1, TILE, TILE, 1, 0, NULL, params, NULL));
        CU(cuCtxSynchronize());
        CU(cuMemcpyDtoH(c, dc, bytes));

        for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                        double want = 0.0;
                        for (int k = 0; k < n; k++)
                                want += (double)a[(size_t)i * n + k] * b[(size_t)k * n + j];
                        double got = c[(size_t)i * n + j];
                        if (fabs(got - want) > 1e-3 * (1.0 + fabs(want))) {
                                if (bad < 5)
                                        printf("mismatch at (%d,%d): got %.6g, want %.6g\n", i, j,
                                               got, want);
                                bad++;
                        }
                }
        }

        CU(cuMemFree(da));
        CU(cuMemFree(db));
        CU(cuMemFree(dc));
        CU(cuModuleUnload(mod));
        ex_close(dev);
        free(a);
        free(b);
        free(c);
        if (bad)
                ex_fail("matmul: %d of %d entries wrong", bad, n * n);
        printf("PASS matmul: %d x %d\n", n, n);
        return 0;
}
