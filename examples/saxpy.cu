// SPDX-License-Identifier: Apache-2.0
// Kernel of the saxpy example: y = a * x + y over n floats, grid-stride loop.
// extern "C" keeps the entry name plain for cuModuleGetFunction.

extern "C" __global__ void saxpy(int n, float a, const float *__restrict__ x, float *__restrict__ y)
{
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
                y[i] = a * x[i] + y[i];
}
