// SPDX-License-Identifier: Apache-2.0
// rt_streams: chunks copied in, transformed and copied out on several streams at once from pinned
// memory, a join through events and cudaStreamWaitEvent, a host function at the end, and the
// time between events, through the CUDA runtime API and <<<>>>.
// Flags: --streams 4 --chunks 8 --chunk 4096 (ints), --device N.
#include <atomic>

#include "rt_common.h"

__global__ void transform(int *p, int n, int k)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n)
                p[i] = p[i] * 3 + k;
}

static std::atomic<int> host_done{0};

static void CUDART_CB mark_done(void *arg)
{
        host_done = *(int *)arg;
}

int main(int argc, char **argv)
{
        int ns = (int)rt_ex_flag(argc, argv, "--streams", 4);
        int chunks = (int)rt_ex_flag(argc, argv, "--chunks", 8);
        int chunk = (int)rt_ex_flag(argc, argv, "--chunk", 4096);
        int *h, *d, bad = 0, token = 4242;
        cudaEvent_t start, stop, *done;
        cudaStream_t *s;

        if (ns <= 0 || ns > 64 || chunks <= 0 || chunk <= 0) {
                printf("FAIL bad flags\n");
                return 1;
        }
        rt_ex_open("rt_streams", argc, argv);
        size_t total = (size_t)chunks * chunk;
        s = (cudaStream_t *)calloc(ns, sizeof(*s));
        done = (cudaEvent_t *)calloc(ns, sizeof(*done));
        RT(cudaMallocHost(&h, total * sizeof(int)));
        RT(cudaMalloc(&d, total * sizeof(int)));
        for (size_t i = 0; i < total; i++)
                h[i] = (int)i;
        for (int i = 0; i < ns; i++) {
                RT(cudaStreamCreateWithFlags(&s[i], cudaStreamNonBlocking));
                RT(cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming));
        }
        RT(cudaEventCreate(&start));
        RT(cudaEventCreate(&stop));
        RT(cudaEventRecord(start, s[0]));
        for (int i = 1; i < ns; i++)
                RT(cudaStreamWaitEvent(s[i], start, 0)); // fork
        for (int c = 0; c < chunks; c++) {
                cudaStream_t st = s[c % ns];
                int *hp = h + (size_t)c * chunk, *dp = d + (size_t)c * chunk;

                RT(cudaMemcpyAsync(dp, hp, chunk * sizeof(int), cudaMemcpyHostToDevice, st));
                transform<<<(chunk + 255) / 256, 256, 0, st>>>(dp, chunk, c);
                RT(cudaGetLastError());
                RT(cudaMemcpyAsync(hp, dp, chunk * sizeof(int), cudaMemcpyDeviceToHost, st));
        }
        for (int i = 1; i < ns; i++) { // join
                RT(cudaEventRecord(done[i], s[i]));
                RT(cudaStreamWaitEvent(s[0], done[i], 0));
        }
        RT(cudaEventRecord(stop, s[0]));
        RT(cudaLaunchHostFunc(s[0], mark_done, &token));
        RT(cudaStreamSynchronize(s[0]));
        float ms = 0;
        RT(cudaEventElapsedTime(&ms, start, stop));
        for (size_t i = 0; i < total; i++) {
                int want = (int)i * 3 + (int)(i / chunk);
                if (h[i] != want && bad++ < 5)
                        printf("  h[%zu] = %d, want %d\n", i, h[i], want);
        }
        if (host_done != token && bad++ < 5)
                printf("  the host function did not run before the stream finished\n");
        for (int i = 0; i < ns; i++) {
                RT(cudaStreamDestroy(s[i]));
                RT(cudaEventDestroy(done[i]));
        }
        RT(cudaEventDestroy(start));
        RT(cudaEventDestroy(stop));
        RT(cudaFree(d));
        RT(cudaFreeHost(h));
        free(s);
        free(done);
        if (bad) {
                printf("FAIL rt_streams: %d wrong\n", bad);
                return 1;
        }
        printf("PASS rt_streams: %d chunks of %d ints on %d streams in %.3f ms\n", chunks, chunk,
               ns, ms);
        return 0;
}
