// SPDX-License-Identifier: Apache-2.0
// The harness of the guest driver-API tests: counting and printing checks, the final summary, and
// device/context/module setup shared by the test programs.
#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int passed;
static int failed;

const char *check_name(CUresult res)
{
        // A few buffers in turn, so that one printf can name several unknown codes.
        static _Thread_local char buf[4][32];
        static _Thread_local unsigned next;
        const char *name = NULL;
        char *b;

        if (cuGetErrorName(res, &name) == CUDA_SUCCESS && name)
                return name;
        b = buf[next++ % 4];
        snprintf(b, sizeof(buf[0]), "CUresult %d", (int)res);
        return b;
}

/*
 * Known gaps: VGPU_KNOWN_GAPS lists (';'-separated) parts of check descriptions that a platform
 * is known to fail, each documented where the list is set. Such a check still runs and prints
 * "GAP" instead of "FAIL"; if it passes, it prints "FIXED" and counts as a failure, so that the
 * list never hides a check that works.
 */
static int gaps;

static bool known_gap(const char *msg)
{
        const char *list = getenv("VGPU_KNOWN_GAPS");
        char buf[1024], *save = NULL;

        if (!list || !*list)
                return false;
        snprintf(buf, sizeof(buf), "%s", list);
        for (char *g = strtok_r(buf, ";", &save); g; g = strtok_r(NULL, ";", &save)) {
                if (*g && strstr(msg, g))
                        return true;
        }
        return false;
}

static bool report(bool ok, const char *msg)
{
        bool gap = known_gap(msg);

        if (ok && gap) {
                printf("FIXED %s (a known gap passes: take it off VGPU_KNOWN_GAPS)\n", msg);
                failed++;
        } else if (ok) {
                printf("ok   %s\n", msg);
                passed++;
        } else if (gap) {
                printf("GAP  %s (known gap of this platform)\n", msg);
                gaps++;
        } else {
                printf("FAIL %s\n", msg);
                failed++;
        }
        fflush(stdout);
        return ok;
}

bool check_res(const char *what, CUresult got, CUresult want)
{
        char msg[1024];

        if (got == want)
                snprintf(msg, sizeof(msg), "%s == %s", what, check_name(want));
        else
                snprintf(msg, sizeof(msg), "%s: got %s, want %s", what, check_name(got),
                         check_name(want));
        return report(got == want, msg);
}

bool check_res2(const char *what, CUresult got, CUresult a, CUresult b)
{
        bool ok = got == a || got == b;
        char msg[1024];

        if (ok)
                snprintf(msg, sizeof(msg), "%s == %s", what, check_name(got));
        else
                snprintf(msg, sizeof(msg), "%s: got %s, want %s or %s", what, check_name(got),
                         check_name(a), check_name(b));
        return report(ok, msg);
}

bool check_true(bool ok, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return report(ok, msg);
}

void check_skip(const char *fmt, ...)
{
        va_list ap;

        printf("skip ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

void check_note(const char *fmt, ...)
{
        va_list ap;

        printf("#    ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

void check_counts(int *ret_passed, int *ret_failed)
{
        *ret_passed = passed;
        *ret_failed = failed;
}

void check_add(int p, int f)
{
        passed += p;
        failed += f;
}

int check_done(void)
{
        if (gaps)
                printf("%d known gap(s) of this platform (VGPU_KNOWN_GAPS)\n", gaps);
        printf("%d passed, %d failed\n", passed, failed);
        fflush(stdout);
        return failed ? 1 : 0;
}

bool check_setup(CUdevice *ret_dev, CUcontext *ret_ctx)
{
        const char *env = getenv("VGPU_TEST_DEVICE");
        int ordinal = env ? atoi(env) : 0;
        char name[128];
        CUdevice dev;
        CUcontext ctx;

        if (!CK(cuInit(0)))
                return false;
        if (!CK(cuDeviceGet(&dev, ordinal)))
                return false;
        if (cuDeviceGetName(name, (int)sizeof(name), dev) == CUDA_SUCCESS)
                check_note("device %d: %s", ordinal, name);
        if (!CK(cuDevicePrimaryCtxRetain(&ctx, dev)))
                return false;
        if (!CK(cuCtxSetCurrent(ctx)))
                return false;
        *ret_dev = dev;
        *ret_ctx = ctx;
        return true;
}

void check_teardown(CUdevice dev)
{
        CK(cuCtxSetCurrent(NULL));
        CK(cuDevicePrimaryCtxRelease(dev));
}

bool check_load_kernels(CUmodule *ret_mod)
{
        return CK(cuModuleLoadData(ret_mod, guest_kernels_fatbin));
}

bool check_function(CUmodule mod, const char *name, CUfunction *ret_f)
{
        CUresult res = cuModuleGetFunction(ret_f, mod, name);
        char what[160];

        snprintf(what, sizeof(what), "cuModuleGetFunction(\"%s\")", name);
        if (res != CUDA_SUCCESS)
                *ret_f = NULL;
        return check_res(what, res, CUDA_SUCCESS);
}

bool check_wait_until(bool (*pred)(void *arg), void *arg, int ms)
{
        struct timespec one = {0, 1000000};

        for (int i = 0; i < ms; i++) {
                if (pred(arg))
                        return true;
                nanosleep(&one, NULL);
        }
        return pred(arg);
}
