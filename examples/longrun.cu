// SPDX-License-Identifier: Apache-2.0
// Kernel of the longrun example: every thread iterates a 32-bit LCG `iters` times from its global
// index. The work is pure ALU, so run time scales with iters; the host checks the result by jumping
// the LCG ahead in O(log iters).

extern "C" __global__ void lcg_spin(unsigned *out, unsigned long long iters)
{
        unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
        unsigned x = i;
        for (unsigned long long k = 0; k < iters; k++)
                x = x * 1664525u + 1013904223u;
        out[i] = x;
}
