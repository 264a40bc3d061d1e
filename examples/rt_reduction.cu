// SPDX-License-Identifier: Apache-2.0
// rt_reduction: the sum of n ints with warp shuffles and per-block partials, then a second launch
// over the partials, through the CUDA runtime API and <<<>>>; the block count comes from the
// occupancy calculator unless --blocks says. Flags: --n N (65536), --blocks N, --device N.
#include "rt_common.h"

__device__ static long long warp_sum(long long v)
{
        for (int o = 16; o > 0; o >>= 1)
                v += __shfl_down_sync(0xffffffffu, v, o);
        return v;
}

// Each block sums its grid-stride share of in[0..n) into out[blockIdx.x]. blockDim.x: 32..1024.
template <typename T> __global__ void reduce(const T *__restrict__ in, long long *out, int n)
{
        __shared__ long long warps[32];
        long long v = 0;
        int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
                v += in[i];
        v = warp_sum(v);
        if (lane == 0)
                warps[warp] = v;
        __syncthreads();
        if (warp == 0) {
                v = lane < (int)((blockDim.x + 31) >> 5) ? warps[lane] : 0;
                v = warp_sum(v);
                if (lane == 0)
                        out[blockIdx.x] = v;
        }
}

int main(int argc, char **argv)
{
        int n = (int)rt_ex_flag(argc, argv, "--n", 1 << 16);
        int blocks = (int)rt_ex_flag(argc, argv, "--blocks", 0), threads = 256, per_sm = 0;
        unsigned seed = 99;
        long long want = 0, got = 0, *dpart, *dsum;
        int *h, *din;

        if (n <= 0) {
                printf("FAIL --n %d: out of range\n", n);
                return 1;
        }
        rt_ex_open("rt_reduction", argc, argv);
        if (blocks <= 0) {
                RT(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, reduce<int>, threads, 0));
                blocks = per_sm > 0 ? per_sm * 4 : 64;
                if (blocks > 64)
                        blocks = 64;
        }
        h = (int *)malloc((size_t)n * sizeof(int));
        for (int i = 0; i < n; i++) {
                h[i] = (int)(rt_ex_rand(&seed) % 2000001) - 1000000;
                want += h[i];
        }
        RT(cudaMalloc(&din, (size_t)n * sizeof(int)));
        RT(cudaMalloc(&dpart, (size_t)blocks * sizeof(long long)));
        RT(cudaMalloc(&dsum, sizeof(long long)));
        RT(cudaMemcpy(din, h, (size_t)n * sizeof(int), cudaMemcpyHostToDevice));
        reduce<int><<<blocks, threads>>>(din, dpart, n);
        reduce<long long><<<1, 1024>>>(dpart, dsum, blocks);
        RT(cudaGetLastError());
        RT(cudaMemcpy(&got, dsum, sizeof(got), cudaMemcpyDeviceToHost));
        RT(cudaFree(din));
        RT(cudaFree(dpart));
        RT(cudaFree(dsum));
        free(h);
        if (got != want) {
                printf("FAIL rt_reduction: sum %lld, want %lld\n", got, want);
                return 1;
        }
        printf("PASS rt_reduction: %d ints over %d blocks, sum %lld\n", n, blocks, got);
        return 0;
}
