// SPDX-License-Identifier: Apache-2.0
// Streams, events, host functions and kernels through the runtime API: stream order, events and
// elapsed time, cross-stream waits, cudaStreamAddCallback/cudaLaunchHostFunc in order with the
// stream's work, kernel attributes, occupancy, cudaFuncSetAttribute, cudaLaunchKernelEx,
// templates and launches with dynamic shared memory.
#include <atomic>

#include "rt_check.h"

__global__ void add(int *p, int n, int v)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n)
                p[i] += v;
}

template <typename T> __global__ void scale(T *p, int n, T f)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n)
                p[i] *= f;
}

// Reverses each block's slice through dynamic shared memory.
__global__ void reverse_block(int *p)
{
        extern __shared__ int buf[];
        int t = threadIdx.x, base = blockIdx.x * blockDim.x;
        buf[t] = p[base + t];
        __syncthreads();
        p[base + t] = buf[blockDim.x - 1 - t];
}

// The same through the top of a larger dynamic shared buffer: words off.. (past 48 KiB).
__global__ void reverse_deep(int *p, int off)
{
        extern __shared__ int buf[];
        int t = threadIdx.x, base = blockIdx.x * blockDim.x;
        buf[off + t] = p[base + t];
        __syncthreads();
        p[base + t] = buf[off + blockDim.x - 1 - t];
}

struct host_log {
        std::atomic<int> next{0};
        int order[8];
        int seen_value = -1;
        int *pinned = nullptr;
        cudaError_t status = cudaErrorUnknown;
};

static host_log hl;

static void CUDART_CB host_fn(void *arg)
{
        hl.order[hl.next++] = (int)(long)arg;
        if ((long)arg == 1)
                hl.seen_value = hl.pinned[0]; // the copy queued before it has landed
}

static void CUDART_CB callback(cudaStream_t, cudaError_t status, void *arg)
{
        hl.status = status;
        hl.order[hl.next++] = (int)(long)arg;
}

int main()
{
        const int n = 2048;
        int *d = NULL, *h = NULL;
        cudaStream_t s1, s2, snb;
        cudaEvent_t e1, e2, timing;
        bool ok;

        RT_OK(cudaMallocHost(&h, n * sizeof(int)));
        RT_OK(cudaMalloc(&d, n * sizeof(int)));
        RT_OK(cudaStreamCreate(&s1));
        RT_OK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
        int lo = 0, hi = 0;
        RT_OK(cudaDeviceGetStreamPriorityRange(&lo, &hi));
        RT_OK(cudaStreamCreateWithPriority(&snb, cudaStreamNonBlocking, hi));
        unsigned flags = 0;
        int prio = 1;
        RT_OK(cudaStreamGetFlags(s2, &flags));
        RT_OK(cudaStreamGetPriority(snb, &prio));
        rt_check(flags == cudaStreamNonBlocking && prio == hi, "stream flags %u, priority %d",
                 flags, prio);
        RT_OK(cudaEventCreate(&e1));
        RT_OK(cudaEventCreate(&e2));
        RT_OK(cudaEventCreateWithFlags(&timing, cudaEventDisableTiming));

        // Stream order: memset, then three kernels, then the copy back.
        RT_OK(cudaMemsetAsync(d, 0, n * sizeof(int), s1));
        RT_OK(cudaEventRecord(e1, s1));
        add<<<n / 256, 256, 0, s1>>>(d, n, 1);
        add<<<n / 256, 256, 0, s1>>>(d, n, 2);
        scale<int><<<n / 256, 256, 0, s1>>>(d, n, 10);
        RT_OK(cudaGetLastError());
        RT_OK(cudaEventRecord(e2, s1));
        // s2 waits for s1's kernels, then adds 5.
        RT_OK(cudaStreamWaitEvent(s2, e2, 0));
        add<<<n / 256, 256, 0, s2>>>(d, n, 5);
        RT_OK(cudaEventRecord(timing, s2));
        RT_OK(cudaMemcpyAsync(h, d, n * sizeof(int), cudaMemcpyDeviceToHost, s2));
        RT_OK(cudaStreamSynchronize(s2));
        ok = true;
        for (int i = 0; i < n; i++)
                ok = ok && h[i] == 35;
        rt_check(ok, "stream order and a cross-stream wait: %d (want 35)", h[0]);
        RT_OK(cudaEventSynchronize(e2));
        RT_OK(cudaEventQuery(e2));
        RT_OK(cudaStreamQuery(s1));
        float ms = -1;
        RT_OK(cudaEventElapsedTime(&ms, e1, e2));
        rt_check(ms >= 0, "elapsed time between events: %.3f ms", ms);
        RT_ERR(cudaEventElapsedTime(&ms, e1, timing), cudaErrorInvalidResourceHandle);
        (void)cudaGetLastError();

        // Host functions run in stream order.
        hl.pinned = h;
        h[0] = -1;
        RT_OK(cudaMemsetAsync(d, 0, sizeof(int), s1));
        add<<<1, 1, 0, s1>>>(d, 1, 99);
        RT_OK(cudaMemcpyAsync(h, d, sizeof(int), cudaMemcpyDeviceToHost, s1));
        RT_OK(cudaLaunchHostFunc(s1, host_fn, (void *)1L));
        RT_OK(cudaStreamAddCallback(s1, callback, (void *)2L, 0));
        RT_OK(cudaLaunchHostFunc(s1, host_fn, (void *)3L));
        RT_OK(cudaStreamSynchronize(s1));
        rt_check(hl.next == 3 && hl.order[0] == 1 && hl.order[1] == 2 && hl.order[2] == 3,
                 "host function, callback, host function ran in order (%d ran)", hl.next.load());
        rt_check(hl.seen_value == 99, "the host function saw the copy queued before it (%d)",
                 hl.seen_value);
        rt_check(hl.status == cudaSuccess, "the callback's status is cudaSuccess (%s)",
                 cudaGetErrorName(hl.status));

        // Kernel attributes, occupancy, dynamic shared memory.
        cudaFuncAttributes fa;
        RT_OK(cudaFuncGetAttributes(&fa, add));
        rt_check(fa.maxThreadsPerBlock > 0 && fa.maxThreadsPerBlock <= 1024,
                 "cudaFuncGetAttributes: maxThreadsPerBlock %d, %d registers, ptx %d",
                 fa.maxThreadsPerBlock, fa.numRegs, fa.ptxVersion);
        RT_ERR(cudaFuncGetAttributes(&fa, (const void *)main), cudaErrorInvalidDeviceFunction);
        (void)cudaGetLastError();
        int blocks = 0, min_grid = 0, block = 0;
        RT_OK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, add, 256, 0));
        rt_check(blocks >= 1 && blocks <= 32, "occupancy: %d blocks of 256 per SM", blocks);
        RT_OK(cudaOccupancyMaxPotentialBlockSize(&min_grid, &block, add, 0, 0));
        rt_check(block >= 32 && block <= 1024 && min_grid >= 1,
                 "cudaOccupancyMaxPotentialBlockSize: block %d, grid %d", block, min_grid);
        size_t dyn = 0;
        RT_OK(cudaOccupancyAvailableDynamicSMemPerBlock(&dyn, reverse_block, 2, 256));
        rt_check(dyn >= 48 * 1024, "dynamic shared memory available per block: %zu", dyn);
        RT_OK(cudaFuncSetAttribute(reverse_block, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   64 * 1024));
        RT_OK(cudaFuncGetAttributes(&fa, reverse_block));
        rt_check(fa.maxDynamicSharedSizeBytes == 64 * 1024,
                 "cudaFuncSetAttribute: max dynamic shared memory %d",
                 fa.maxDynamicSharedSizeBytes);
        for (int i = 0; i < n; i++)
                h[i] = i;
        RT_OK(cudaMemcpy(d, h, n * sizeof(int), cudaMemcpyHostToDevice));
        reverse_block<<<n / 256, 256, 256 * sizeof(int)>>>(d);
        RT_OK(cudaGetLastError());
        RT_OK(cudaMemcpy(h, d, n * sizeof(int), cudaMemcpyDeviceToHost));
        ok = true;
        for (int i = 0; i < n; i++)
                ok = ok && h[i] == (i / 256) * 256 + 255 - i % 256;
        rt_check(ok, "a launch with dynamic shared memory");
        // More than 48 KiB needs the kernel's opt-in, as on a GPU; then the whole 64 KiB is there.
        const int deep = 64 * 1024, off = deep / (int)sizeof(int) - 256;
        reverse_deep<<<n / 256, 256, deep>>>(d, off);
        RT_ERR(cudaGetLastError(), cudaErrorInvalidValue);
        RT_OK(cudaFuncSetAttribute(reverse_deep, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   deep));
        reverse_deep<<<n / 256, 256, deep>>>(d, off);
        RT_OK(cudaGetLastError());
        RT_OK(cudaMemcpy(h, d, n * sizeof(int), cudaMemcpyDeviceToHost));
        ok = true;
        for (int i = 0; i < n; i++)
                ok = ok && h[i] == i;
        rt_check(ok, "a launch with 64 KiB of dynamic shared memory after the opt-in");

        // cudaLaunchKernelEx (C++ wrapper over cudaLaunchKernelExC) and cudaLaunchKernel.
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = dim3(n / 128);
        cfg.blockDim = dim3(128);
        cfg.stream = s1;
        RT_OK(cudaMemset(d, 0, n * sizeof(int)));
        RT_OK(cudaLaunchKernelEx(&cfg, add, d, n, 4));
        int nn = n, v = 3;
        void *args[] = {&d, &nn, &v};
        RT_OK(cudaLaunchKernel((const void *)add, dim3(n / 128), dim3(128), args, 0, s1));
        RT_OK(cudaStreamSynchronize(s1));
        RT_OK(cudaMemcpy(h, d, n * sizeof(int), cudaMemcpyDeviceToHost));
        rt_check(h[0] == 7 && h[n - 1] == 7, "cudaLaunchKernelEx and cudaLaunchKernel (%d)", h[0]);
        // float template instance
        float *df = NULL, hf[4] = {1, 2, 3, 4};
        RT_OK(cudaMalloc(&df, sizeof(hf)));
        RT_OK(cudaMemcpy(df, hf, sizeof(hf), cudaMemcpyHostToDevice));
        scale<float><<<1, 4>>>(df, 4, 0.5f);
        RT_OK(cudaMemcpy(hf, df, sizeof(hf), cudaMemcpyDeviceToHost));
        rt_check(hf[0] == 0.5f && hf[3] == 2.0f, "a second instance of a template kernel");

        RT_OK(cudaEventDestroy(e1));
        RT_OK(cudaEventDestroy(e2));
        RT_OK(cudaEventDestroy(timing));
        RT_OK(cudaStreamDestroy(s1));
        RT_OK(cudaStreamDestroy(s2));
        RT_OK(cudaStreamDestroy(snb));
        RT_OK(cudaFree(d));
        RT_OK(cudaFree(df));
        RT_OK(cudaFreeHost(h));
        return rt_done("test_rt_streams");
}
