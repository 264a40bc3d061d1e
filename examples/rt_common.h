// SPDX-License-Identifier: Apache-2.0
// Shared helpers of the runtime-API examples (rt_*.cu): cudaError_t checking (print the error's
// name and exit 1), flags, a deterministic generator. Header only: each example is one nvcc
// command (`nvcc -cudart shared`), and runs on vgpu's libcudart.so.13 or NVIDIA's alike.
#ifndef VGPU_EXAMPLES_RT_COMMON_H
#define VGPU_EXAMPLES_RT_COMMON_H

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <cuda_runtime.h>

// RT(call): run a runtime call; on failure print "FAIL <call>: <error name>" and exit 1.
#define RT(call) rt_ex_check((call), #call, __LINE__)

static inline void rt_ex_check(cudaError_t e, const char *what, int line)
{
        if (e == cudaSuccess)
                return;
        printf("FAIL %s (line %d): %s: %s\n", what, line, cudaGetErrorName(e),
               cudaGetErrorString(e));
        exit(1);
}

// The value of "--name N" in argv, or def.
static inline long long rt_ex_flag(int argc, char **argv, const char *name, long long def)
{
        for (int i = 1; i + 1 < argc; i++)
                if (strcmp(argv[i], name) == 0)
                        return strtoll(argv[i + 1], NULL, 0);
        return def;
}

// Pick the device (--device N, default 0) and print one line naming the program and it.
static inline void rt_ex_open(const char *prog, int argc, char **argv)
{
        int dev = (int)rt_ex_flag(argc, argv, "--device", 0);
        cudaDeviceProp p;

        RT(cudaSetDevice(dev));
        RT(cudaGetDeviceProperties(&p, dev));
        printf("%s: device %d: %s (cc %d.%d, %d SMs, %zu MiB)\n", prog, dev, p.name, p.major,
               p.minor, p.multiProcessorCount, p.totalGlobalMem >> 20);
}

// xorshift32; state must be non-zero.
static inline unsigned rt_ex_rand(unsigned *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 17;
        *s ^= *s << 5;
        return *s;
}

#endif
