// SPDX-License-Identifier: Apache-2.0
// Guest test: contexts. Primary context retain/release/reset/state; cuCtxCreate/Destroy/Push/Pop/
// Get/SetCurrent/Synchronize/GetDevice/GetApiVersion/Get/SetLimit; current context per thread;
// calls that need a current context fail with CUDA_ERROR_INVALID_CONTEXT without one.
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

struct thread_arg {
        CUcontext primary;
        CUcontext seen;
        CUresult get;
        CUresult set;
        CUresult alloc;
        CUresult free;
};

// A new thread starts with no current context; setting one there does not change main's.
static void *thread_main(void *p)
{
        struct thread_arg *a = p;
        CUdeviceptr d = 0;

        a->seen = (CUcontext)(uintptr_t)1;
        a->get = cuCtxGetCurrent(&a->seen);
        a->set = cuCtxSetCurrent(a->primary);
        a->alloc = cuMemAlloc(&d, 4096);
        a->free = a->alloc == CUDA_SUCCESS ? cuMemFree(d) : CUDA_ERROR_UNKNOWN;
        return NULL;
}

static void test_limits(void)
{
        size_t v = 0;

        CK(cuCtxGetLimit(&v, CU_LIMIT_STACK_SIZE));
        check_true(v > 0, "CU_LIMIT_STACK_SIZE = %zu > 0", v);
        CK(cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 4096));
        v = 0;
        CK(cuCtxGetLimit(&v, CU_LIMIT_STACK_SIZE));
        check_true(v >= 4096, "CU_LIMIT_STACK_SIZE after setting 4096 = %zu >= 4096", v);
        v = 0;
        CK(cuCtxGetLimit(&v, CU_LIMIT_PRINTF_FIFO_SIZE));
        check_true(v > 0, "CU_LIMIT_PRINTF_FIFO_SIZE = %zu > 0", v);
        v = 0;
        CK(cuCtxGetLimit(&v, CU_LIMIT_MALLOC_HEAP_SIZE));
        check_true(v > 0, "CU_LIMIT_MALLOC_HEAP_SIZE = %zu > 0", v);
        CK(cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 16u << 20));
        v = 0;
        CK(cuCtxGetLimit(&v, CU_LIMIT_MALLOC_HEAP_SIZE));
        check_true(v >= (16u << 20), "CU_LIMIT_MALLOC_HEAP_SIZE after setting 16 MiB = %zu", v);
        CK_ONE_OF(cuCtxGetLimit(&v, (CUlimit)0x7fff), CUDA_ERROR_UNSUPPORTED_LIMIT,
                  CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuCtxGetLimit(NULL, CU_LIMIT_STACK_SIZE), CUDA_ERROR_INVALID_VALUE);
}

int main(void)
{
        CUcontext cur = (CUcontext)(uintptr_t)1;
        CUcontext primary = NULL;
        CUcontext primary2 = NULL;
        CUcontext c1 = NULL;
        CUcontext popped = NULL;
        CUdevice dev;
        CUdevice got_dev = -1;
        CUdeviceptr d = 0;
        unsigned flags = 99;
        unsigned api = 0;
        int active = -1;

        if (!CK(cuInit(0)) || !CK(cuDeviceGet(&dev, 0)))
                return check_done();

        // No context yet: current is NULL; context-bound calls fail.
        CK(cuCtxGetCurrent(&cur));
        check_true(cur == NULL, "no context is current on a fresh thread");
        CK_RES(cuCtxGetCurrent(NULL), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
        CK_RES(cuCtxGetDevice(&got_dev), CUDA_ERROR_INVALID_CONTEXT);
        CK_RES(cuMemAlloc(&d, 4096), CUDA_ERROR_INVALID_CONTEXT);
        CK_RES(cuCtxPopCurrent(&popped), CUDA_ERROR_INVALID_CONTEXT);

        // Primary context: inactive until retained; retain does not make it current.
        CK(cuDevicePrimaryCtxGetState(dev, &flags, &active));
        check_true(active == 0, "primary context inactive before the first retain (active=%d)",
                   active);
        CK(cuDevicePrimaryCtxRetain(&primary, dev));
        check_true(primary != NULL, "cuDevicePrimaryCtxRetain returns a context");
        CK(cuDevicePrimaryCtxGetState(dev, &flags, &active));
        check_true(active == 1, "primary context active after retain (active=%d)", active);
        CK(cuDevicePrimaryCtxRetain(&primary2, dev));
        check_true(primary2 == primary, "a second retain returns the same context");
        CK(cuCtxGetCurrent(&cur));
        check_true(cur == NULL, "retain does not make the primary context current");

        CK(cuCtxSetCurrent(primary));
        CK(cuCtxGetCurrent(&cur));
        check_true(cur == primary, "cuCtxSetCurrent(primary) makes it current");
        CK(cuCtxGetDevice(&got_dev));
        check_true(got_dev == dev, "cuCtxGetDevice = %d (want %d)", (int)got_dev, (int)dev);
        CK(cuCtxGetApiVersion(primary, &api));
        check_true(api >= 3020, "cuCtxGetApiVersion(primary) = %u >= 3020", api);
        CK(cuCtxSynchronize());
        test_limits();

        // A created context is pushed and current; popping returns to the one below it.
        if (CK(cuCtxCreate(&c1, NULL, 0, dev))) {
                check_true(c1 != NULL && c1 != primary,
                           "cuCtxCreate returns a context distinct from the primary one");
                CK(cuCtxGetCurrent(&cur));
                check_true(cur == c1, "cuCtxCreate makes the new context current");
                api = 0;
                CK(cuCtxGetApiVersion(c1, &api));
                check_true(api >= 3020, "cuCtxGetApiVersion(created) = %u >= 3020", api);
                CK(cuMemAlloc(&d, 1 << 20));
                CK(cuMemsetD8(d, 0x5a, 1 << 20));
                CK(cuCtxSynchronize());
                CK(cuMemFree(d));
                CK(cuCtxPopCurrent(&popped));
                check_true(popped == c1, "cuCtxPopCurrent returns the created context");
                CK(cuCtxGetCurrent(&cur));
                check_true(cur == primary, "after the pop the primary context is current again");
                CK(cuCtxPushCurrent(c1));
                CK(cuCtxGetCurrent(&cur));
                check_true(cur == c1, "cuCtxPushCurrent makes the pushed context current");
                got_dev = -1;
                CK(cuCtxGetDevice(&got_dev));
                check_true(got_dev == dev, "cuCtxGetDevice in the created context = %d",
                           (int)got_dev);
                // Destroying the current context pops it.
                CK(cuCtxDestroy(c1));
                CK(cuCtxGetCurrent(&cur));
                check_true(cur == primary, "cuCtxDestroy of the current context pops it");
        }
        CK_ONE_OF(cuCtxPushCurrent(NULL), CUDA_ERROR_INVALID_VALUE, CUDA_ERROR_INVALID_CONTEXT);

        // Current contexts are per thread.
        struct thread_arg ta = {.primary = primary};
        pthread_t th;
        check_true(pthread_create(&th, NULL, thread_main, &ta) == 0, "pthread_create");
        pthread_join(th, NULL);
        check_true(ta.get == CUDA_SUCCESS && ta.seen == NULL,
                   "a new thread has no current context (%s)", check_name(ta.get));
        check_true(ta.set == CUDA_SUCCESS && ta.alloc == CUDA_SUCCESS && ta.free == CUDA_SUCCESS,
                   "another thread can use the primary context (%s, %s, %s)", check_name(ta.set),
                   check_name(ta.alloc), check_name(ta.free));
        CK(cuCtxGetCurrent(&cur));
        check_true(cur == primary, "the main thread's current context is unchanged");

        // cuCtxSetCurrent(NULL) pops; an empty stack has nothing to pop.
        CK(cuCtxSetCurrent(NULL));
        CK(cuCtxGetCurrent(&cur));
        check_true(cur == NULL, "cuCtxSetCurrent(NULL) leaves no context current");

        // Reset: allocations go, the context is usable again after retain.
        CK(cuCtxSetCurrent(primary));
        CK(cuMemAlloc(&d, 1 << 20));
        CK(cuCtxSetCurrent(NULL));
        CK(cuDevicePrimaryCtxReset(dev));
        CK(cuDevicePrimaryCtxRetain(&primary2, dev));
        CK(cuCtxSetCurrent(primary2));
        CK(cuMemAlloc(&d, 1 << 20));
        CK(cuMemsetD32(d, 7, 1 << 18));
        CK(cuCtxSynchronize());
        CK(cuMemFree(d));
        CK(cuCtxSetCurrent(NULL));

        // Release every retain: the primary context is inactive again.
        CK(cuDevicePrimaryCtxRelease(dev));
        CK(cuDevicePrimaryCtxGetState(dev, &flags, &active));
        if (active != 0) {
                // The reset above may or may not have dropped the earlier retains.
                CK(cuDevicePrimaryCtxRelease(dev));
                CK(cuDevicePrimaryCtxRelease(dev));
                CK(cuDevicePrimaryCtxGetState(dev, &flags, &active));
        }
        check_true(active == 0, "primary context inactive after the last release (active=%d)",
                   active);
        CK_RES(cuDevicePrimaryCtxGetState(dev, NULL, &active), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuDevicePrimaryCtxRetain(&primary, 9999), CUDA_ERROR_INVALID_DEVICE);
        return check_done();
}
