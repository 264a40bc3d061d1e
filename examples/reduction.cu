// SPDX-License-Identifier: Apache-2.0
// Kernel of the reduction example: each block sums its grid-stride share of n ints into a 64-bit
// partial with warp shuffles, then one warp combines the per-warp sums from shared memory.
// Run twice: over the input (one partial per block), then over the partials with one block.

__device__ static long long warp_sum(long long v)
{
        for (int o = 16; o > 0; o >>= 1)
                v += __shfl_down_sync(0xffffffffu, v, o);
        return v;
}

template <typename T>
__device__ static void block_sum(const T *__restrict__ in, long long *__restrict__ out, int n)
{
        __shared__ long long warps[32];
        long long v = 0;
        int lane = threadIdx.x & 31;
        int warp = threadIdx.x >> 5;

        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
                v += in[i];
        v = warp_sum(v);
        if (lane == 0)
                warps[warp] = v;
        __syncthreads();
        if (warp == 0) {
                int nwarps = (blockDim.x + 31) >> 5;
                v = lane < nwarps ? warps[lane] : 0;
                v = warp_sum(v);
                if (lane == 0)
                        out[blockIdx.x] = v;
        }
}

// blockDim.x must be a multiple of 32, at most 1024.
extern "C" __global__ void reduce_int(const int *__restrict__ in, long long *__restrict__ out,
                                      int n)
{
        block_sum(in, out, n);
}

extern "C" __global__ void reduce_ll(const long long *__restrict__ in, long long *__restrict__ out,
                                     int n)
{
        block_sum(in, out, n);
}
