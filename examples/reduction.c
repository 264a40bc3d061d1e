// SPDX-License-Identifier: Apache-2.0
// reduction: the sum of n ints by block reduction with warp shuffles (two launches: per-block
// partials, then one block over the partials), checked against a CPU sum.
// Flags: --n N (default 65536), --blocks B (default 64), --device N. Prints PASS or FAIL.
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

extern const unsigned char reduction_fatbin[];

int main(int argc, char **argv)
{
        long long nl = ex_flag_long(argc, argv, "--n", 1 << 16);
        long long bl = ex_flag_long(argc, argv, "--blocks", 64);
        unsigned seed = 4242;
        unsigned threads = 256;
        long long want = 0;
        long long got = -1;
        CUdevice dev;
        CUdeviceptr din;
        CUdeviceptr dpart;
        CUdeviceptr dsum;
        CUmodule mod;
        CUfunction f_int;
        CUfunction f_ll;
        int n;
        int blocks;

        if (nl <= 0 || nl > (1LL << 30))
                ex_fail("--n %lld: out of range", nl);
        if (bl <= 0 || bl > 65535)
                ex_fail("--blocks %lld: out of range (1..65535)", bl);
        n = (int)nl;
        blocks = (int)bl;
        int *h = malloc((size_t)n * sizeof(int));
        if (!h)
                ex_fail("out of host memory");
        for (int i = 0; i < n; i++) {
                h[i] = (int)(ex_rand(&seed) % 2001) - 1000;
                want += h[i];
        }

        ex_open("reduction", argc, argv, &dev);
        mod = ex_load(reduction_fatbin);
        f_int = ex_function(mod, "reduce_int");
        f_ll = ex_function(mod, "reduce_ll");
        CU(cuMemAlloc(&din, (size_t)n * sizeof(int)));
        CU(cuMemAlloc(&dpart, (size_t)blocks * sizeof(long long)));
        CU(cuMemAlloc(&dsum, sizeof(long long)));
        CU(cuMemcpyHtoD(din, h, (size_t)n * sizeof(int)));

        void *p1[] = {&din, &dpart, &n};
        CU(cuLaunchKernel(f_int, (unsigned)blocks, 1, 1, threads, 1, 1, 0, NULL, p1, NULL));
        void *p2[] = {&dpart, &dsum, &blocks};
        CU(cuLaunchKernel(f_ll, 1, 1, 1, threads, 1, 1, 0, NULL, p2, NULL));
        CU(cuMemcpyDtoH(&got, dsum, sizeof(got)));

        CU(cuMemFree(din));
        CU(cuMemFree(dpart));
        CU(cuMemFree(dsum));
        CU(cuModuleUnload(mod));
        ex_close(dev);
        free(h);
        if (got != want)
                ex_fail("reduction: sum of %d ints: got %lld, want %lld", n, got, want);
        printf("PASS reduction: sum of %d ints = %lld\n", n, got);
        return 0;
}
