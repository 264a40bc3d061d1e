// SPDX-License-Identifier: Apache-2.0
// rt_saxpy: y = a*x + y through the CUDA runtime API and <<<>>>, checked against a CPU reference.
// Flags: --n N (elements, default 65536), --device N. Prints PASS or FAIL; exit status 0 or 1.
#include <cmath>

#include "rt_common.h"

__global__ void saxpy(int n, float a, const float *__restrict__ x, float *__restrict__ y)
{
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
                y[i] = a * x[i] + y[i];
}

int main(int argc, char **argv)
{
        long long n = rt_ex_flag(argc, argv, "--n", 1 << 16);
        float a = 2.5f, *x, *y, *out, *dx, *dy;
        unsigned seed = 12345;
        int bad = 0;

        if (n <= 0 || n > (1LL << 30)) {
                printf("FAIL --n %lld: out of range\n", n);
                return 1;
        }
        rt_ex_open("rt_saxpy", argc, argv);
        size_t bytes = (size_t)n * sizeof(float);
        x = (float *)malloc(bytes);
        y = (float *)malloc(bytes);
        out = (float *)malloc(bytes);
        for (long long i = 0; i < n; i++) {
                x[i] = (float)(rt_ex_rand(&seed) % 2001) / 1000.0f - 1.0f;
                y[i] = (float)(rt_ex_rand(&seed) % 2001) / 1000.0f - 1.0f;
        }
        RT(cudaMalloc(&dx, bytes));
        RT(cudaMalloc(&dy, bytes));
        RT(cudaMemcpy(dx, x, bytes, cudaMemcpyHostToDevice));
        RT(cudaMemcpy(dy, y, bytes, cudaMemcpyHostToDevice));
        int threads = 256, blocks = (int)((n + threads - 1) / threads);
        if (blocks > 1024)
                blocks = 1024;
        saxpy<<<blocks, threads>>>((int)n, a, dx, dy);
        RT(cudaGetLastError());
        RT(cudaDeviceSynchronize());
        RT(cudaMemcpy(out, dy, bytes, cudaMemcpyDeviceToHost));
        for (long long i = 0; i < n; i++)
                if (fabsf(out[i] - fmaf(a, x[i], y[i])) > 1e-5f && bad++ < 5)
                        printf("  y[%lld] = %f, want %f\n", i, out[i], fmaf(a, x[i], y[i]));
        RT(cudaFree(dx));
        RT(cudaFree(dy));
        free(x);
        free(y);
        free(out);
        if (bad) {
                printf("FAIL rt_saxpy: %d of %lld elements wrong\n", bad, n);
                return 1;
        }
        printf("PASS rt_saxpy: %lld elements\n", n);
        return 0;
}
