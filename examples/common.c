// SPDX-License-Identifier: Apache-2.0
// Shared helpers of the example programs: error checking, device/context setup, module loading,
// command-line flags and a monotonic clock. Only cu* calls reach the driver.
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ex_check(CUresult res, const char *what, const char *file, int line)
{
        const char *name = NULL;
        const char *str = NULL;

        if (res == CUDA_SUCCESS)
                return;
        if (cuGetErrorName(res, &name) != CUDA_SUCCESS || !name)
                name = "unknown CUresult";
        if (cuGetErrorString(res, &str) != CUDA_SUCCESS || !str)
                str = "";
        printf("FAIL %s: %s (%d: %s) at %s:%d\n", what, name, (int)res, str, file, line);
        fflush(stdout);
        exit(1);
}

void ex_fail(const char *fmt, ...)
{
        va_list ap;

        printf("FAIL ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
        exit(1);
}

static const char *flag_value(int argc, char **argv, const char *name)
{
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], name) != 0)
                        continue;
                if (i + 1 >= argc)
                        ex_fail("%s needs a value", name);
                return argv[i + 1];
        }
        return NULL;
}

long long ex_flag_long(int argc, char **argv, const char *name, long long def)
{
        const char *v = flag_value(argc, argv, name);
        char *end;
        long long x;

        if (!v)
                return def;
        errno = 0;
        x = strtoll(v, &end, 0);
        if (errno || end == v || *end)
                ex_fail("%s: not an integer: %s", name, v);
        return x;
}

double ex_flag_double(int argc, char **argv, const char *name, double def)
{
        const char *v = flag_value(argc, argv, name);
        char *end;
        double x;

        if (!v)
                return def;
        errno = 0;
        x = strtod(v, &end);
        if (errno || end == v || *end)
                ex_fail("%s: not a number: %s", name, v);
        return x;
}

CUcontext ex_open(const char *prog, int argc, char **argv, CUdevice *ret_dev)
{
        long long ordinal = ex_flag_long(argc, argv, "--device", 0);
        int count = 0;
        int major = 0;
        int minor = 0;
        char name[256];
        CUdevice dev;
        CUcontext ctx;

        CU(cuInit(0));
        CU(cuDeviceGetCount(&count));
        if (ordinal < 0 || ordinal >= count)
                ex_fail("--device %lld: %d device(s) present", ordinal, count);
        CU(cuDeviceGet(&dev, (int)ordinal));
        CU(cuDeviceGetName(name, (int)sizeof(name), dev));
        CU(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
        CU(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
        CU(cuDevicePrimaryCtxRetain(&ctx, dev));
        CU(cuCtxSetCurrent(ctx));
        printf("%s: device %lld: %s (compute capability %d.%d)\n", prog, ordinal, name, major,
               minor);
        *ret_dev = dev;
        return ctx;
}

void ex_close(CUdevice dev)
{
        CU(cuCtxSetCurrent(NULL));
        CU(cuDevicePrimaryCtxRelease(dev));
}

CUmodule ex_load(const unsigned char *image)
{
        CUmodule mod;

        CU(cuModuleLoadData(&mod, image));
        return mod;
}

CUfunction ex_function(CUmodule mod, const char *name)
{
        CUfunction f;
        CUresult res = cuModuleGetFunction(&f, mod, name);

        if (res != CUDA_SUCCESS)
                ex_check(res, name, __FILE__, __LINE__);
        return f;
}

double ex_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

unsigned ex_rand(unsigned *state)
{
        unsigned x = *state;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *state = x;
        return x;
}
