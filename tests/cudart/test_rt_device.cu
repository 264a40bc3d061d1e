// SPDX-License-Identifier: Apache-2.0
// Devices through the runtime API: count, current device per thread, every property against the
// attribute it comes from, the vGPU's own figures (VGPU_EXPECT_FB_BYTES, VGPU_EXPECT_DEVICES,
// set by tests/cudart/run.sh; on a real GPU only the consistency checks run), versions, memory
// info, pointer attributes, synchronize and reset.
#include <pthread.h>

#include "rt_check.h"

__global__ void set_value(int *p, int v)
{
        *p = v;
}

static void *other_thread(void *arg)
{
        int *dev = (int *)arg;

        // A new thread starts on device 0, whatever another thread chose.
        if (cudaGetDevice(dev) != cudaSuccess)
                *dev = -1;
        return NULL;
}

int main()
{
        int n = 0, dev = -1, v = 0, rt = 0, drv = 0;
        unsigned long long want;
        cudaDeviceProp p;

        RT_OK(cudaGetDeviceCount(&n));
        rt_check(n >= 1, "at least one device (%d)", n);
        if (rt_env_num("VGPU_EXPECT_DEVICES", &want))
                rt_check(n == (int)want, "device count %d = vGPUs attached %llu", n, want);
        RT_OK(cudaGetDevice(&dev));
        rt_check(dev == 0, "the default device is 0 (%d)", dev);
        RT_ERR(cudaSetDevice(n), cudaErrorInvalidDevice);
        RT_ERR(cudaGetLastError(), cudaErrorInvalidDevice);
        RT_OK(cudaGetLastError());
        RT_OK(cudaSetDevice(n - 1));
        RT_OK(cudaGetDevice(&dev));
        rt_check(dev == n - 1, "cudaSetDevice(%d) is what cudaGetDevice says (%d)", n - 1, dev);
        {
                pthread_t t;
                int other = -1;

                pthread_create(&t, NULL, other_thread, &other);
                pthread_join(t, NULL);
                rt_check(other == 0, "another thread's current device is 0 (%d)", other);
        }
        RT_OK(cudaSetDevice(0));

        RT_OK(cudaGetDeviceProperties(&p, 0));
        printf("device 0: %s, cc %d.%d, %d SMs, %zu bytes\n", p.name, p.major, p.minor,
               p.multiProcessorCount, p.totalGlobalMem);
        rt_check(p.name[0] != '\0', "the device has a name");
        if (rt_env_num("VGPU_EXPECT_FB_BYTES", &want))
                rt_check(p.totalGlobalMem == want,
                         "totalGlobalMem %zu = the vGPU's framebuffer %llu", p.totalGlobalMem,
                         want);
        rt_check(p.totalGlobalMem > 0, "totalGlobalMem is set");
        struct {
                const char *what;
                long long prop;
                cudaDeviceAttr attr;
        } pairs[] = {
                {"major", p.major, cudaDevAttrComputeCapabilityMajor},
                {"minor", p.minor, cudaDevAttrComputeCapabilityMinor},
                {"multiProcessorCount", p.multiProcessorCount, cudaDevAttrMultiProcessorCount},
                {"warpSize", p.warpSize, cudaDevAttrWarpSize},
                {"maxThreadsPerBlock", p.maxThreadsPerBlock, cudaDevAttrMaxThreadsPerBlock},
                {"maxThreadsDim[0]", p.maxThreadsDim[0], cudaDevAttrMaxBlockDimX},
                {"maxThreadsDim[2]", p.maxThreadsDim[2], cudaDevAttrMaxBlockDimZ},
                {"maxGridSize[0]", p.maxGridSize[0], cudaDevAttrMaxGridDimX},
                {"maxGridSize[1]", p.maxGridSize[1], cudaDevAttrMaxGridDimY},
                {"sharedMemPerBlock", (long long)p.sharedMemPerBlock,
                 cudaDevAttrMaxSharedMemoryPerBlock},
                {"sharedMemPerBlockOptin", (long long)p.sharedMemPerBlockOptin,
                 cudaDevAttrMaxSharedMemoryPerBlockOptin},
                {"sharedMemPerMultiprocessor", (long long)p.sharedMemPerMultiprocessor,
                 cudaDevAttrMaxSharedMemoryPerMultiprocessor},
                {"regsPerBlock", p.regsPerBlock, cudaDevAttrMaxRegistersPerBlock},
                {"totalConstMem", (long long)p.totalConstMem, cudaDevAttrTotalConstantMemory},
                {"l2CacheSize", p.l2CacheSize, cudaDevAttrL2CacheSize},
                {"maxThreadsPerMultiProcessor", p.maxThreadsPerMultiProcessor,
                 cudaDevAttrMaxThreadsPerMultiProcessor},
                {"maxBlocksPerMultiProcessor", p.maxBlocksPerMultiProcessor,
                 cudaDevAttrMaxBlocksPerMultiprocessor},
                {"pciBusID", p.pciBusID, cudaDevAttrPciBusId},
                {"pciDomainID", p.pciDomainID, cudaDevAttrPciDomainId},
                {"unifiedAddressing", p.unifiedAddressing, cudaDevAttrUnifiedAddressing},
                {"memoryBusWidth", p.memoryBusWidth, cudaDevAttrGlobalMemoryBusWidth},
                {"asyncEngineCount", p.asyncEngineCount, cudaDevAttrAsyncEngineCount},
                {"concurrentKernels", p.concurrentKernels, cudaDevAttrConcurrentKernels},
                {"managedMemory", p.managedMemory, cudaDevAttrManagedMemory},
        };
        int mismatches = 0;
        for (auto &pr : pairs) {
                if (cudaDeviceGetAttribute(&v, pr.attr, 0) != cudaSuccess || v != pr.prop) {
                        printf("  %s: property %lld, attribute %d\n", pr.what, pr.prop, v);
                        mismatches++;
                }
        }
        rt_check(mismatches == 0, "%zu properties equal their attributes (%d differ)",
                 sizeof(pairs) / sizeof(pairs[0]), mismatches);
        rt_check(p.warpSize == 32, "warpSize 32 (%d)", p.warpSize);
        rt_check(p.major >= 7, "compute capability %d.%d is at least 7.0", p.major, p.minor);
        rt_check(p.maxThreadsPerBlock == 1024, "maxThreadsPerBlock 1024 (%d)",
                 p.maxThreadsPerBlock);
        rt_check(p.unifiedAddressing == 1, "unified addressing");
        RT_ERR(cudaGetDeviceProperties(&p, n), cudaErrorInvalidDevice);
        RT_ERR(cudaDeviceGetAttribute(&v, cudaDevAttrWarpSize, -1), cudaErrorInvalidDevice);
        (void)cudaGetLastError();

        RT_OK(cudaRuntimeGetVersion(&rt));
        RT_OK(cudaDriverGetVersion(&drv));
        rt_check(rt >= 13000 && drv >= rt, "runtime version %d, driver version %d >= it", rt, drv);

        // A driver entry point through the runtime, called directly.
        void *fn = NULL;
        cudaDriverEntryPointQueryResult qr = cudaDriverEntryPointSymbolNotFound;
        RT_OK(cudaGetDriverEntryPointByVersion("cuDriverGetVersion", &fn, 13000, cudaEnableDefault,
                                               &qr));
        int via = 0;
        if (fn && qr == cudaDriverEntryPointSuccess)
                ((int (*)(int *))fn)(&via);
        rt_check(via == drv, "cuDriverGetVersion through cudaGetDriverEntryPointByVersion: %d",
                 via);

        size_t free_b = 0, total_b = 0;
        RT_OK(cudaMemGetInfo(&free_b, &total_b));
        RT_OK(cudaGetDeviceProperties(&p, 0));
        rt_check(total_b == p.totalGlobalMem && free_b <= total_b && free_b > 0,
                 "cudaMemGetInfo: %zu free of %zu = totalGlobalMem", free_b, total_b);

        int *d = NULL, h = 0;
        cudaPointerAttributes pa;
        RT_OK(cudaMalloc(&d, sizeof(int)));
        RT_OK(cudaPointerGetAttributes(&pa, d));
        rt_check(pa.type == cudaMemoryTypeDevice && pa.device == 0 && pa.devicePointer == d,
                 "cudaPointerGetAttributes: device memory on device 0");
        RT_OK(cudaPointerGetAttributes(&pa, &h));
        rt_check(pa.type == cudaMemoryTypeUnregistered, "a stack address is unregistered (%d)",
                 (int)pa.type);
        int *pinned = NULL;
        RT_OK(cudaMallocHost(&pinned, 4096));
        RT_OK(cudaPointerGetAttributes(&pa, pinned));
        rt_check(pa.type == cudaMemoryTypeHost && pa.hostPointer == pinned,
                 "cudaPointerGetAttributes: pinned host memory");
        RT_OK(cudaFreeHost(pinned));

        set_value<<<1, 1>>>(d, 42);
        RT_OK(cudaGetLastError());
        RT_OK(cudaDeviceSynchronize());
        RT_OK(cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost));
        rt_check(h == 42, "a kernel ran (%d)", h);

        // Reset: the context goes with its memory; the next call makes a fresh one that works.
        RT_OK(cudaDeviceReset());
        RT_OK(cudaMalloc(&d, sizeof(int)));
        set_value<<<1, 1>>>(d, 7);
        RT_OK(cudaDeviceSynchronize());
        h = 0;
        RT_OK(cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost));
        rt_check(h == 7, "after cudaDeviceReset the kernel is loaded again and runs (%d)", h);
        RT_OK(cudaFree(d));
        RT_OK(cudaDeviceSynchronize());
        return rt_done("test_rt_device");
}
