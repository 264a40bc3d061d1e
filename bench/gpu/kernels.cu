// SPDX-License-Identifier: Apache-2.0
// Kernels of the GPU benchmark, compiled by nvcc at build time into a fatbinary (PTX embedded) and
// linked into bench_gpu: an empty kernel for launch cost, and a shared-memory tiled SGEMM.
#define TILE 16

extern "C" __global__ void null_kernel(void)
{
}

// C = A * B for row-major n x n floats, TILE x TILE blocks; any n, edges padded with zeros.
extern "C" __global__ void sgemm_tiled(const float *__restrict__ A, const float *__restrict__ B,
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
