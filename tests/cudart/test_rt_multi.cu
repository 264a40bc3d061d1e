// SPDX-License-Identifier: Apache-2.0
// Several devices through the runtime API (in vgpu: two vGPUs attached to one process): each
// thread has its own current device, memory and kernels per device, copies between devices
// (cudaMemcpyPeer, and cudaMemcpyDefault between two devices' pointers), pointer attributes
// that name the device. Exits 77 (skipped) with fewer than two devices.
#include <thread>

#include "rt_check.h"

__global__ void iota(int *p, int n, int base)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n)
                p[i] = base + i;
}

__global__ void twice(int *p, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n)
                p[i] *= 2;
}

int main()
{
        const int n = 1024;
        int count = 0;
        int *d[2] = {NULL, NULL};
        int results[2] = {-1, -1};

        RT_OK(cudaGetDeviceCount(&count));
        if (count < 2) {
                printf("SKIP: %d device(s); this test needs two\n", count);
                return 77;
        }
        // One thread per device, each with its own current device, at the same time.
        std::thread t[2];
        for (int dev = 0; dev < 2; dev++) {
                t[dev] = std::thread([dev, &d, &results]() {
                        int cur = -1, *h = (int *)malloc(n * sizeof(int));
                        bool ok = cudaSetDevice(dev) == cudaSuccess &&
                                  cudaMalloc(&d[dev], n * sizeof(int)) == cudaSuccess;
                        iota<<<n / 128, 128>>>(d[dev], n, dev * 100000);
                        ok = ok && cudaGetLastError() == cudaSuccess &&
                             cudaMemcpy(h, d[dev], n * sizeof(int), cudaMemcpyDeviceToHost) ==
                                     cudaSuccess &&
                             cudaGetDevice(&cur) == cudaSuccess && cur == dev;
                        for (int i = 0; ok && i < n; i++)
                                ok = h[i] == dev * 100000 + i;
                        results[dev] = ok;
                        free(h);
                });
        }
        for (auto &th : t)
                th.join();
        rt_check(results[0] == 1, "device 0 ran its kernel in its thread");
        rt_check(results[1] == 1, "device 1 ran its kernel in its thread");
        int cur = -1;
        RT_OK(cudaGetDevice(&cur));
        rt_check(cur == 0, "the main thread is still on device 0 (%d)", cur);

        cudaPointerAttributes pa;
        RT_OK(cudaPointerGetAttributes(&pa, d[1]));
        rt_check(pa.type == cudaMemoryTypeDevice && pa.device == 1,
                 "a device-1 pointer says device 1 (%d)", pa.device);
        rt_check(d[0] != d[1], "the two devices' allocations differ");

        // Device 1's data to device 0 and back, doubled on device 0 in between.
        int *h = (int *)malloc(n * sizeof(int));
        RT_OK(cudaMemcpyPeer(d[0], 0, d[1], 1, n * sizeof(int)));
        RT_OK(cudaSetDevice(0));
        twice<<<n / 128, 128>>>(d[0], n);
        RT_OK(cudaGetLastError());
        RT_OK(cudaDeviceSynchronize());
        RT_OK(cudaMemcpy(d[1], d[0], n * sizeof(int), cudaMemcpyDefault));
        RT_OK(cudaSetDevice(1));
        RT_OK(cudaMemcpy(h, d[1], n * sizeof(int), cudaMemcpyDeviceToHost));
        bool ok = true;
        for (int i = 0; i < n; i++)
                ok = ok && h[i] == 2 * (100000 + i);
        rt_check(ok, "cudaMemcpyPeer and cudaMemcpyDefault between devices: %d", h[1]);

        // Each device has its own module: the same kernel runs on device 1 from the main thread.
        twice<<<n / 128, 128>>>(d[1], n);
        RT_OK(cudaDeviceSynchronize());
        RT_OK(cudaMemcpy(h, d[1], n * sizeof(int), cudaMemcpyDeviceToHost));
        rt_check(h[3] == 4 * (100000 + 3), "device 1 from the main thread (%d)", h[3]);
        size_t free_b, total_b[2];
        RT_OK(cudaMemGetInfo(&free_b, &total_b[1]));
        RT_OK(cudaFree(d[1]));
        RT_OK(cudaSetDevice(0));
        RT_OK(cudaMemGetInfo(&free_b, &total_b[0]));
        RT_OK(cudaFree(d[0]));
        cudaDeviceProp p0, p1;
        RT_OK(cudaGetDeviceProperties(&p0, 0));
        RT_OK(cudaGetDeviceProperties(&p1, 1));
        rt_check(total_b[0] == p0.totalGlobalMem && total_b[1] == p1.totalGlobalMem,
                 "cudaMemGetInfo is per device");
        free(h);
        return rt_done("test_rt_multi");
}
