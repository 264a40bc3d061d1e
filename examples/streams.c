// SPDX-License-Identifier: Apache-2.0
// streams: a multi-stream pipeline. The input is cut into chunks; each chunk goes HtoD, through a
// kernel, and DtoH on one of several streams (round robin, pinned host memory, all async). A last
// stream waits (cuStreamWaitEvent) for every work stream, then checksums the whole output on the
// device; events time the pipeline. Output and checksum are checked against a CPU reference.
// Flags: --streams S (4), --chunks C (8), --chunk N elements (4096), --rounds R (8), --device N.
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char streams_fatbin[];

#define MAX_STREAMS 32

int main(int argc, char **argv)
{
        long long ns_l = ex_flag_long(argc, argv, "--streams", 4);
        long long nc_l = ex_flag_long(argc, argv, "--chunks", 8);
        long long chunk_l = ex_flag_long(argc, argv, "--chunk", 4096);
        long long rounds_l = ex_flag_long(argc, argv, "--rounds", 8);
        CUstream streams[MAX_STREAMS];
        CUevent done[MAX_STREAMS];
        CUstream final;
        CUevent start;
        CUevent stop;
        CUdevice dev;
        CUmodule mod;
        CUfunction f_transform;
        CUfunction f_checksum;
        CUdeviceptr din;
        CUdeviceptr dout;
        CUdeviceptr dsum;
        float *hin;
        float *hout;
        unsigned *hsum;
        unsigned seed = 99;
        int bad = 0;

        if (ns_l < 1 || ns_l > MAX_STREAMS)
                ex_fail("--streams %lld: out of range (1..%d)", ns_l, MAX_STREAMS);
        if (nc_l < 1 || nc_l > 4096 || chunk_l < 1 || chunk_l > (1 << 24) ||
            nc_l * chunk_l > (1LL << 28))
                ex_fail("--chunks/--chunk out of range");
        if (rounds_l < 0 || rounds_l > 1000000)
                ex_fail("--rounds %lld: out of range", rounds_l);
        int ns = (int)ns_l;
        int nc = (int)nc_l;
        int chunk = (int)chunk_l;
        int rounds = (int)rounds_l;
        int total = nc * chunk;
        size_t cbytes = (size_t)chunk * sizeof(float);
        size_t bytes = (size_t)total * sizeof(float);

        ex_open("streams", argc, argv, &dev);
        mod = ex_load(streams_fatbin);
        f_transform = ex_function(mod, "transform");
        f_checksum = ex_function(mod, "checksum");

        // Pinned host buffers: async copies from pageable memory would not overlap.
        CU(cuMemAllocHost((void **)&hin, bytes));
        CU(cuMemAllocHost((void **)&hout, bytes));
        CU(cuMemAllocHost((void **)&hsum, sizeof(unsigned)));
        for (int i = 0; i < total; i++)
                hin[i] = (float)(ex_rand(&seed) % 20001) / 100.0f - 100.0f;
        memset(hout, 0, bytes);
        *hsum = 0;

        CU(cuMemAlloc(&din, bytes));
        CU(cuMemAlloc(&dout, bytes));
        CU(cuMemAlloc(&dsum, sizeof(unsigned)));
        CU(cuStreamCreate(&final, CU_STREAM_NON_BLOCKING));
        CU(cuEventCreate(&start, CU_EVENT_DEFAULT));
        CU(cuEventCreate(&stop, CU_EVENT_DEFAULT));
        for (int s = 0; s < ns; s++) {
                CU(cuStreamCreate(&streams[s], CU_STREAM_NON_BLOCKING));
                CU(cuEventCreate(&done[s], CU_EVENT_DISABLE_TIMING));
        }

        // Fork: every work stream starts after `start`, recorded on the final stream.
        CU(cuMemsetD32Async(dsum, 0, 1, final));
        CU(cuEventRecord(start, final));
        for (int s = 0; s < ns; s++)
                CU(cuStreamWaitEvent(streams[s], start, 0));

        unsigned threads = 256;
        unsigned blocks = (unsigned)((chunk + (int)threads - 1) / (int)threads);
        for (int c = 0; c < nc; c++) {
                CUstream st = streams[c % ns];
                size_t off = (size_t)c * cbytes;
                CUdeviceptr cin = din + off;
                CUdeviceptr cout = dout + off;
                void *params[] = {&cin, &cout, &chunk, &rounds};

                CU(cuMemcpyHtoDAsync(cin, (char *)hin + off, cbytes, st));
                CU(cuLaunchKernel(f_transform, blocks, 1, 1, threads, 1, 1, 0, st, params, NULL));
                CU(cuMemcpyDtoHAsync((char *)hout + off, cout, cbytes, st));
        }

        // Join: the final stream waits for every work stream, then checksums all of dout.
        for (int s = 0; s < ns; s++) {
                CU(cuEventRecord(done[s], streams[s]));
                CU(cuStreamWaitEvent(final, done[s], 0));
        }
        unsigned cblocks = 32;
        void *cparams[] = {&dout, &total, &dsum};
        CU(cuLaunchKernel(f_checksum, cblocks, 1, 1, threads, 1, 1, 0, final, cparams, NULL));
        CU(cuMemcpyDtoHAsync(hsum, dsum, sizeof(unsigned), final));
        CU(cuEventRecord(stop, final));
        CU(cuEventSynchronize(stop));

        float ms = -1.0f;
        CU(cuEventElapsedTime(&ms, start, stop));
        // The final stream's completion implies every work stream's, since it waited on them.
        for (int s = 0; s < ns; s++) {
                CUresult q = cuStreamQuery(streams[s]);
                if (q != CUDA_SUCCESS)
                        ex_check(q, "cuStreamQuery(work stream) after the join", __FILE__,
                                 __LINE__);
        }

        unsigned want_sum = 0;
        for (int i = 0; i < total; i++) {
                float x = hin[i];
                for (int r = 0; r < rounds; r++)
                        x = fmaf(x, 0.5f, 1.0f);
                unsigned bits;
                memcpy(&bits, &x, sizeof(bits));
                want_sum += bits;
                if (hout[i] != x) {
                        if (bad < 5)
                                printf("mismatch at %d: got %.9g, want %.9g\n", i, hout[i], x);
                        bad++;
                }
        }
        unsigned got_sum = *hsum;

        for (int s = 0; s < ns; s++) {
                CU(cuEventDestroy(done[s]));
                CU(cuStreamDestroy(streams[s]));
        }
        CU(cuEventDestroy(start));
        CU(cuEventDestroy(stop));
        CU(cuStreamDestroy(final));
        CU(cuMemFree(din));
        CU(cuMemFree(dout));
        CU(cuMemFree(dsum));
        CU(cuMemFreeHost(hin));
        CU(cuMemFreeHost(hout));
        CU(cuMemFreeHost(hsum));
        CU(cuModuleUnload(mod));
        ex_close(dev);

        if (bad)
                ex_fail("streams: %d of %d elements wrong", bad, total);
        if (got_sum != want_sum)
                ex_fail("streams: checksum 0x%08x, want 0x%08x", got_sum, want_sum);
        if (!(ms >= 0.0f))
                ex_fail("streams: elapsed time %g ms", (double)ms);
        printf("PASS streams: %d streams, %d chunks of %d, %.3f ms\n", ns, nc, chunk, (double)ms);
        return 0;
}
