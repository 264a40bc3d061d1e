// SPDX-License-Identifier: Apache-2.0
// The checks of the runtime-API test programs (tests/cudart/): each check prints PASS or FAIL
// with what it saw; rt_done() prints the tally and gives the exit status (0: all passed). Header
// only, so each program is one nvcc command. The programs hold on a real GPU with NVIDIA's
// runtime as well as in a vGPU with vgpu's.
#ifndef VGPU_TESTS_CUDART_RT_CHECK_H
#define VGPU_TESTS_CUDART_RT_CHECK_H

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <cuda_runtime.h>

static int rt_passed, rt_failed;

__attribute__((format(printf, 2, 3))) static inline bool rt_check(bool ok, const char *fmt, ...)
{
        va_list ap;

        printf("%s ", ok ? "PASS" : "FAIL");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
        if (ok)
                rt_passed++;
        else
                rt_failed++;
        return ok;
}

// A runtime call that must succeed; the error's name is printed when it does not.
#define RT_OK(call)                                                                                \
        do {                                                                                       \
                cudaError_t got_ = (call);                                                         \
                rt_check(got_ == cudaSuccess, "%s -> %s", #call, cudaGetErrorName(got_));          \
        } while (0)

// A runtime call that must return the given error.
#define RT_ERR(call, want)                                                                         \
        do {                                                                                       \
                cudaError_t got_ = (call);                                                         \
                rt_check(got_ == (want), "%s -> %s (want %s)", #call, cudaGetErrorName(got_),      \
                         cudaGetErrorName(want));                                                  \
        } while (0)

// Whether an environment variable names a number; its value in *ret.
static inline bool rt_env_num(const char *name, unsigned long long *ret)
{
        const char *s = getenv(name);
        char *end;

        if (!s || !*s)
                return false;
        *ret = strtoull(s, &end, 0);
        return *end == '\0';
}

static inline int rt_done(const char *prog)
{
        printf("%s: %d passed, %d failed\n", prog, rt_passed, rt_failed);
        printf("%s\n", rt_failed ? "FAIL" : "PASS");
        return rt_failed ? 1 : 0;
}

#endif
