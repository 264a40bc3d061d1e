// SPDX-License-Identifier: Apache-2.0
// Kernels of the streams example: a per-element transform applied to one chunk per launch, and an
// order-independent checksum (wrapping sum of the float bit patterns) over the whole output.

extern "C" __global__ void transform(const float *__restrict__ in, float *__restrict__ out, int n,
                                     int rounds)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= n)
                return;
        float x = in[i];
        for (int r = 0; r < rounds; r++)
                x = __fmaf_rn(x, 0.5f, 1.0f);
        out[i] = x;
}

extern "C" __global__ void checksum(const float *__restrict__ in, int n, unsigned *sum)
{
        unsigned v = 0;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
                v += __float_as_uint(in[i]);
        atomicAdd(sum, v);
}
