// SPDX-License-Identifier: Apache-2.0
// rt_matmul: C = A*B for n x n floats with 16x16 shared-memory tiles, through the CUDA runtime
// API and <<<>>>, checked against a CPU reference. Flags: --n N (default 64), --device N.
#include <cmath>

#include "rt_common.h"

#define TILE 16

__global__ void matmul(const float *a, const float *b, float *c, int n)
{
        __shared__ float ta[TILE][TILE], tb[TILE][TILE];
        int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
        float sum = 0;

        for (int t = 0; t < (n + TILE - 1) / TILE; t++) {
                int ac = t * TILE + threadIdx.x, br = t * TILE + threadIdx.y;
                ta[threadIdx.y][threadIdx.x] = row < n && ac < n ? a[row * n + ac] : 0;
                tb[threadIdx.y][threadIdx.x] = br < n && col < n ? b[br * n + col] : 0;
                __syncthreads();
                for (int k = 0; k < TILE; k++)
                        sum += ta[threadIdx.y][k] * tb[k][threadIdx.x];
                __syncthreads();
        }
        if (row < n && col < n)
                c[row * n + col] = sum;
}

int main(int argc, char **argv)
{
        int n = (int)rt_ex_flag(argc, argv, "--n", 64), bad = 0;
        unsigned seed = 777;
        float *a, *b, *c, *da, *db, *dc;

        if (n <= 0 || n > 4096) {
                printf("FAIL --n %d: out of range\n", n);
                return 1;
        }
        rt_ex_open("rt_matmul", argc, argv);
        size_t bytes = (size_t)n * n * sizeof(float);
        a = (float *)malloc(bytes);
        b = (float *)malloc(bytes);
        c = (float *)malloc(bytes);
        for (int i = 0; i < n * n; i++) {
                a[i] = (float)(rt_ex_rand(&seed) % 17) - 8.0f;
                b[i] = (float)(rt_ex_rand(&seed) % 13) - 6.0f;
        }
        RT(cudaMalloc(&da, bytes));
        RT(cudaMalloc(&db, bytes));
        RT(cudaMalloc(&dc, bytes));
        RT(cudaMemcpy(da, a, bytes, cudaMemcpyHostToDevice));
        RT(cudaMemcpy(db, b, bytes, cudaMemcpyHostToDevice));
        dim3 block(TILE, TILE), grid((n + TILE - 1) / TILE, (n + TILE - 1) / TILE);
        matmul<<<grid, block>>>(da, db, dc, n);
        RT(cudaGetLastError());
        RT(cudaMemcpy(c, dc, bytes, cudaMemcpyDeviceToHost));
        // Small integers: every product and sum is exact in float.
        for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                        float want = 0;
                        for (int k = 0; k < n; k++)
                                want += a[i * n + k] * b[k * n + j];
                        if (c[i * n + j] != want && bad++ < 5)
                                printf("  C[%d][%d] = %f, want %f\n", i, j, c[i * n + j], want);
                }
        }
        RT(cudaFree(da));
        RT(cudaFree(db));
        RT(cudaFree(dc));
        free(a);
        free(b);
        free(c);
        if (bad) {
                printf("FAIL rt_matmul: %d of %d elements wrong\n", bad, n * n);
                return 1;
        }
        printf("PASS rt_matmul: %dx%d\n", n, n);
        return 0;
}
