// SPDX-License-Identifier: Apache-2.0
// Streams, events and host functions for the runtime: a cudaStream_t is the driver's CUstream and
// a cudaEvent_t its CUevent (the runtime adds no state), so work queued by either API interleaves
// in one order. Stream callbacks get the runtime's error code through a small trampoline.
#include <stdlib.h>

#include "guest/cudart/rt.h"

#define ENTER(d)                                                                                   \
        int d;                                                                                     \
        do {                                                                                       \
                cudaError_t enter_err_ = rt_enter(&d);                                             \
                if (enter_err_ != cudaSuccess)                                                     \
                        return enter_err_;                                                         \
        } while (0)

cudaError_t cudaStreamCreateWithPriority(cudaStream_t *pStream, unsigned int flags, int priority)
{
        CUstream s;
        cudaError_t e;
        ENTER(d);

        (void)d;
        if (!pStream)
                return rt_ret(cudaErrorInvalidValue);
        /* cudaStreamNonBlocking is CU_STREAM_NON_BLOCKING. */
        e = rt_cu(cuStreamCreateWithPriority(&s, flags, priority));
        if (e == cudaSuccess)
                *pStream = (cudaStream_t)s;
        return e;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream, unsigned int flags)
{
        return cudaStreamCreateWithPriority(pStream, flags, 0);
}

cudaError_t cudaStreamCreate(cudaStream_t *pStream)
{
        return cudaStreamCreateWithPriority(pStream, cudaStreamDefault, 0);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
        ENTER(d);

        (void)d;
        if (!stream || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
                return rt_ret(cudaErrorInvalidResourceHandle);
        return rt_cu(cuStreamDestroy((CUstream)stream));
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuStreamSynchronize((CUstream)stream));
}

cudaError_t cudaStreamQuery(cudaStream_t stream)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuStreamQuery((CUstream)stream));
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuStreamWaitEvent((CUstream)stream, (CUevent)event, flags));
}

cudaError_t cudaStreamGetFlags(cudaStream_t hStream, unsigned int *flags)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuStreamGetFlags((CUstream)hStream, flags));
}

cudaError_t cudaStreamGetPriority(cudaStream_t hStream, int *priority)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuStreamGetPriority((CUstream)hStream, priority));
}

cudaError_t cudaStreamGetDevice(cudaStream_t hStream, int *device)
{
        CUcontext ctx, prev;
        CUdevice dev;
        CUresult r;
        ENTER(d);

        if (!device)
                return rt_ret(cudaErrorInvalidValue);
        if (!hStream || hStream == cudaStreamLegacy || hStream == cudaStreamPerThread) {
                *device = d;
                return cudaSuccess;
        }
        r = cuStreamGetCtx((CUstream)hStream, &ctx);
        if (r == CUDA_SUCCESS)
                r = cuCtxPushCurrent(ctx);
        if (r == CUDA_SUCCESS) {
                r = cuCtxGetDevice(&dev);
                (void)cuCtxPopCurrent(&prev);
                if (r == CUDA_SUCCESS)
                        *device = dev;
        }
        return rt_cu(r);
}

/* ---- host functions -------------------------------------------------------------------------- */
struct callback {
        cudaStreamCallback_t fn;
        void *user;
};

/* Runs on the driver's host-function thread: the callback sees the runtime's stream and code. */
static void CUDA_CB run_callback(CUstream stream, CUresult status, void *arg)
{
        struct callback cb = *(struct callback *)arg;

        free(arg);
        cb.fn((cudaStream_t)stream, rt_error(status), cb.user);
}

cudaError_t cudaStreamAddCallback(cudaStream_t stream, cudaStreamCallback_t callback,
                                  void *userData, unsigned int flags)
{
        struct callback *cb;
        cudaError_t e;
        ENTER(d);

        (void)d;
        if (!callback || flags)
                return rt_ret(cudaErrorInvalidValue);
        cb = malloc(sizeof(*cb));
        if (!cb)
                return rt_ret(cudaErrorMemoryAllocation);
        *cb = (struct callback){callback, userData};
        e = rt_cu(cuStreamAddCallback((CUstream)stream, run_callback, cb, 0));
        if (e != cudaSuccess)
                free(cb);
        return e;
}

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void *userData)
{
        ENTER(d);

        (void)d;
        if (!fn)
                return rt_ret(cudaErrorInvalidValue);
        return rt_cu(cuLaunchHostFunc((CUstream)stream, fn, userData));
}

/* ---- events ---------------------------------------------------------------------------------- */
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
        CUevent ev;
        cudaError_t e;
        ENTER(d);

        (void)d;
        if (!event)
                return rt_ret(cudaErrorInvalidValue);
        /* cudaEventBlockingSync, DisableTiming, Interprocess are the driver's CU_EVENT_* bits. */
        e = rt_cu(cuEventCreate(&ev, flags));
        if (e == cudaSuccess)
                *event = (cudaEvent_t)ev;
        return e;
}

cudaError_t cudaEventCreate(cudaEvent_t *event)
{
        return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuEventRecord((CUevent)event, (CUstream)stream));
}

cudaError_t cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream, unsigned int flags)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuEventRecordWithFlags((CUevent)event, (CUstream)stream, flags));
}

cudaError_t cudaEventQuery(cudaEvent_t event)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuEventQuery((CUevent)event));
}

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuEventSynchronize((CUevent)event));
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuEventElapsedTime(ms, (CUevent)start, (CUevent)end));
}

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuEventDestroy((CUevent)event));
}

/* ---- per-thread default stream entry points (nvcc --default-stream per-thread) --------------- */
cudaError_t cudaStreamSynchronize_ptsz(cudaStream_t stream)
{
        return cudaStreamSynchronize(stream ? stream : cudaStreamPerThread);
}

cudaError_t cudaStreamQuery_ptsz(cudaStream_t stream)
{
        return cudaStreamQuery(stream ? stream : cudaStreamPerThread);
}

cudaError_t cudaEventRecord_ptsz(cudaEvent_t event, cudaStream_t stream)
{
        return cudaEventRecord(event, stream ? stream : cudaStreamPerThread);
}

cudaError_t cudaStreamWaitEvent_ptsz(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
        return cudaStreamWaitEvent(stream ? stream : cudaStreamPerThread, event, flags);
}

cudaError_t cudaLaunchHostFunc_ptsz(cudaStream_t stream, cudaHostFn_t fn, void *userData)
{
        return cudaLaunchHostFunc(stream ? stream : cudaStreamPerThread, fn, userData);
}

cudaError_t cudaStreamAddCallback_ptsz(cudaStream_t stream, cudaStreamCallback_t callback,
                                       void *userData, unsigned int flags)
{
        return cudaStreamAddCallback(stream ? stream : cudaStreamPerThread, callback, userData,
                                     flags);
}

cudaError_t cudaEventRecordWithFlags_ptsz(cudaEvent_t event, cudaStream_t stream,
                                          unsigned int flags)
{
        return cudaEventRecordWithFlags(event, stream ? stream : cudaStreamPerThread, flags);
}

cudaError_t cudaStreamGetFlags_ptsz(cudaStream_t hStream, unsigned int *flags)
{
        return cudaStreamGetFlags(hStream ? hStream : cudaStreamPerThread, flags);
}

cudaError_t cudaStreamGetPriority_ptsz(cudaStream_t hStream, int *priority)
{
        return cudaStreamGetPriority(hStream ? hStream : cudaStreamPerThread, priority);
}

cudaError_t cudaStreamGetDevice_ptsz(cudaStream_t hStream, int *device)
{
        return cudaStreamGetDevice(hStream ? hStream : cudaStreamPerThread, device);
}
