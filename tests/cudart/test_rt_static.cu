// SPDX-License-Identifier: Apache-2.0
// Built with nvcc's default static runtime (not -cudart shared): in a vGPU it must fail clearly
// (vgpu's libcuda refuses cuGetExportTable and says to rebuild with -cudart shared), not hang.
// Exits 0 when its calls succeed (a real GPU), 1 when they fail; run.sh checks the message.
#include <cstdio>

#include <cuda_runtime.h>

__global__ void nothing()
{
}

int main()
{
        int n = 0;
        void *p = NULL;
        cudaError_t e = cudaGetDeviceCount(&n);

        if (e == cudaSuccess)
                e = cudaMalloc(&p, 16);
        if (e == cudaSuccess) {
                nothing<<<1, 1>>>();
                e = cudaDeviceSynchronize();
        }
        printf("static runtime: %s\n", cudaGetErrorName(e));
        return e == cudaSuccess ? 0 : 1;
}
