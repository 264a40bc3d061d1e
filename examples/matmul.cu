// SPDX-License-Identifier: Apache-2.0
// Kernel of the matmul example: C = A * B for row-major n x n floats, tiled through shared memory
// (TILE x TILE blocks); any n, edges padded with zeros.
#define TILE 16

extern "C" __global__ void matmul_tiled(const float *__restrict__ A, const float *__restrict__ B,
                                        float *__restrict__ C, int n)
{
        __shared__ float ta[TILE][TILE];
        __shared__ float tb[TILE][TILE + 1];
        int row = blockIdx.y * TILE + threadIdx.y;
        int col = blockIdx.x * TILE + threadIdx.x;
        float acc = 0.0f;

        for (int k = 0; k < n; k += TILE) {
                int ka = k + threadIdx.x;
                int kb = k + threadIdx.y;
                ta[threadIdx.y][threadIdx.x] = (row < n && ka < n) ? A[row * n + ka] : 0.0f;
                tb[threadIdx.y][threadIdx.x] = (kb < n && col < n) ? B[kb * n + col] : 0.0f;
                __syncthreads();
                for (int j = 0; j < TILE; j++)
                        acc += ta[threadIdx.y][j] * tb[j][threadIdx.x];
                __syncthreads();
        }
        if (row < n && col < n)
                C[row * n + col] = acc;
}
