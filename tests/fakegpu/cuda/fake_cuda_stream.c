// SPDX-License-Identifier: Apache-2.0
// Streams, events, copies, fills and page-locked host memory. Work runs on the calling thread
// when it is queued (a legal schedule of an in-order stream), so a stream is always idle and an
// event's time is the moment it was recorded. Copies and fills touch only device memory the
// stream's device can reach (vmm_reachable): anything else is CUDA_ERROR_INVALID_VALUE.
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fake_cuda.h"

struct stream {
        unsigned flags;
};

struct event {
        unsigned flags;
        bool recorded;
        uint64_t ns; /* CLOCK_MONOTONIC at the last record */
};

struct host_range {
        uintptr_t p;
        size_t len;
};

static pthread_mutex_t event_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static struct host_range *hosts;
static size_t n_hosts, cap_hosts;

CUresult stream_ctx(CUstream s, struct fc_ctx **ret)
{
        const void *owner;

        if (!s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD) {
                *ret = fc_current();
                return *ret ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
        }
        if (!handle_is(s, FC_STREAM, &owner))
                return CUDA_ERROR_INVALID_HANDLE;
        if (!fc_ctx_active(owner))
                return CUDA_ERROR_INVALID_CONTEXT;
        *ret = (struct fc_ctx *)(uintptr_t)owner;
        return CUDA_SUCCESS;
}

void stream_drop_ctx(struct fc_ctx *ctx)
{
        void *batch[256];
        size_t n;

        while ((n = handle_take(FC_STREAM, ctx, batch, 256)) > 0) {
                for (size_t i = 0; i < n; i++)
                        free(batch[i]);
        }
        while ((n = handle_take(FC_EVENT, ctx, batch, 256)) > 0) {
                for (size_t i = 0; i < n; i++)
                        free(batch[i]);
        }
}

VGPU_EXPORT CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
        struct fc_ctx *ctx;
        struct stream *s;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!phStream || (Flags & ~(unsigned)CU_STREAM_NON_BLOCKING))
                return CUDA_ERROR_INVALID_VALUE;
        ctx = fc_current();
        if (!ctx)
                return CUDA_ERROR_INVALID_CONTEXT;
        s = calloc(1, sizeof(*s));
        if (!s)
                return CUDA_ERROR_OUT_OF_MEMORY;
        s->flags = Flags;
        if (handle_add(s, FC_STREAM, ctx) < 0) {
                free(s);
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        *phStream = (CUstream)(void *)s;
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuStreamDestroy_v2(CUstream hStream)
{
        CUresult r = fc_ready();

        if (r != CUDA_SUCCESS)
                return r;
        if (!handle_del(hStream, FC_STREAM))
                return CUDA_ERROR_INVALID_HANDLE;
        free(hStream);
        return fc_sticky();
}

VGPU_EXPORT CUresult cuStreamSynchronize(CUstream hStream)
{
        struct fc_ctx *ctx;
        CUresult r = fc_check(); /* a kernel fault shows here */

        return r != CUDA_SUCCESS ? r : stream_ctx(hStream, &ctx);
}

/* The checks every copy and fill makes; *ret_dev the device of the stream's context. */
static CUresult work_begin(CUstream s, struct fc_dev **ret_dev)
{
        struct fc_ctx *ctx;
        CUresult r = fc_check();

        if (r == CUDA_SUCCESS)
                r = stream_ctx(s, &ctx);
        if (r == CUDA_SUCCESS)
                *ret_dev = ctx->dev;
        return r;
}

VGPU_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost,
                                          size_t ByteCount, CUstream hStream)
{
        struct fc_dev *dev;
        CUresult r = work_begin(hStream, &dev);

        if (r != CUDA_SUCCESS || ByteCount == 0)
                return r;
        if (!srcHost)
                return CUDA_ERROR_INVALID_VALUE;
        vmm_use_begin();
        if (vmm_reachable(dev, dstDevice, ByteCount))
                memcpy((void *)(uintptr_t)dstDevice, srcHost, ByteCount);
        else
                r = CUDA_ERROR_INVALID_VALUE;
        vmm_use_end();
        return r;
}

VGPU_EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                                          CUstream hStream)
{
        struct fc_dev *dev;
        CUresult r = work_begin(hStream, &dev);

        if (r != CUDA_SUCCESS || ByteCount == 0)
                return r;
        if (!dstHost)
                return CUDA_ERROR_INVALID_VALUE;
        vmm_use_begin();
        if (vmm_reachable(dev, srcDevice, ByteCount))
                memcpy(dstHost, (const void *)(uintptr_t)srcDevice, ByteCount);
        else
                r = CUDA_ERROR_INVALID_VALUE;
        vmm_use_end();
        return r;
}

VGPU_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                                          size_t ByteCount, CUstream hStream)
{
        struct fc_dev *dev;
        CUresult r = work_begin(hStream, &dev);

        if (r != CUDA_SUCCESS || ByteCount == 0)
                return r;
        vmm_use_begin();
        if (vmm_reachable(dev, dstDevice, ByteCount) && vmm_reachable(dev, srcDevice, ByteCount))
                memmove((void *)(uintptr_t)dstDevice, (const void *)(uintptr_t)srcDevice,
                        ByteCount);
        else
                r = CUDA_ERROR_INVALID_VALUE;
        vmm_use_end();
        return r;
}

/* Height rows of width elements of size es, pitch bytes apart, set to value. */
static CUresult memset_2d(CUdeviceptr dst, size_t pitch, uint32_t value, size_t es, size_t width,
                          size_t height, CUstream s)
{
        struct fc_dev *dev;
        size_t row;
        uint64_t span;
        CUresult r = work_begin(s, &dev);

        if (r != CUDA_SUCCESS || width == 0 || height == 0)
                return r;
        if (width > SIZE_MAX / es)
                return CUDA_ERROR_INVALID_VALUE;
        row = width * es;
        if (dst % es || (height > 1 && (pitch < row || pitch % es)) ||
            (height > 1 && pitch > (UINT64_MAX - row) / (height - 1)))
                return CUDA_ERROR_INVALID_VALUE;
        span = (uint64_t)(height - 1) * pitch + row;
        vmm_use_begin();
        if (!vmm_reachable(dev, dst, span)) {
                r = CUDA_ERROR_INVALID_VALUE;
        } else {
                for (size_t y = 0; y < height; y++) {
                        uint8_t *p = (uint8_t *)(uintptr_t)(dst + y * pitch);

                        if (es == 1) {
                                memset(p, (int)(value & 0xff), row);
                        } else if (es == 2) {
                                uint16_t v = (uint16_t)value;

                                for (size_t i = 0; i < width; i++)
                                        memcpy(p + 2 * i, &v, 2);
                        } else {
                                for (size_t i = 0; i < width; i++)
                                        memcpy(p + 4 * i, &value, 4);
                        }
                }
        }
        vmm_use_end();
        return r;
}

VGPU_EXPORT CUresult cuMemsetD2D8Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc,
                                       size_t Width, size_t Height, CUstream hStream)
{
        return memset_2d(dstDevice, dstPitch, uc, 1, Width, Height, hStream);
}

VGPU_EXPORT CUresult cuMemsetD2D16Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us,
                                        size_t Width, size_t Height, CUstream hStream)
{
        return memset_2d(dstDevice, dstPitch, us, 2, Width, Height, hStream);
}

VGPU_EXPORT CUresult cuMemsetD2D32Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui,
                                        size_t Width, size_t Height, CUstream hStream)
{
        return memset_2d(dstDevice, dstPitch, ui, 4, Width, Height, hStream);
}

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

VGPU_EXPORT CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
        const unsigned known =
                CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
        struct fc_ctx *ctx;
        struct event *e;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!phEvent || (Flags & ~known) ||
            ((Flags & CU_EVENT_INTERPROCESS) && !(Flags & CU_EVENT_DISABLE_TIMING)))
                return CUDA_ERROR_INVALID_VALUE;
        ctx = fc_current();
        if (!ctx)
                return CUDA_ERROR_INVALID_CONTEXT;
        e = calloc(1, sizeof(*e));
        if (!e)
                return CUDA_ERROR_OUT_OF_MEMORY;
        e->flags = Flags;
        if (handle_add(e, FC_EVENT, ctx) < 0) {
                free(e);
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        *phEvent = (CUevent)(void *)e;
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
{
        struct event *e = (struct event *)(void *)hEvent;
        struct fc_ctx *ctx;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!handle_is(e, FC_EVENT, NULL))
                return CUDA_ERROR_INVALID_HANDLE;
        r = stream_ctx(hStream, &ctx);
        if (r != CUDA_SUCCESS)
                return r;
        pthread_mutex_lock(&event_lock);
        e->recorded = true;
        e->ns = now_ns();
        pthread_mutex_unlock(&event_lock);
        return CUDA_SUCCESS;
}

/* Every event is complete: the work before it ran when it was queued. */
VGPU_EXPORT CUresult cuEventQuery(CUevent hEvent)
{
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        return handle_is(hEvent, FC_EVENT, NULL) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

VGPU_EXPORT CUresult cuEventSynchronize(CUevent hEvent)
{
        return cuEventQuery(hEvent);
}

VGPU_EXPORT CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
        const struct event *a = (const struct event *)(void *)hStart;
        const struct event *b = (const struct event *)(void *)hEnd;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!pMilliseconds)
                return CUDA_ERROR_INVALID_VALUE;
        if (!handle_is(a, FC_EVENT, NULL) || !handle_is(b, FC_EVENT, NULL))
                return CUDA_ERROR_INVALID_HANDLE;
        pthread_mutex_lock(&event_lock);
        /* both recorded, both timing */
        if (!a->recorded || !b->recorded || ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING))
                r = CUDA_ERROR_INVALID_HANDLE;
        else
                *pMilliseconds = (float)(((double)b->ns - (double)a->ns) / 1e6);
        pthread_mutex_unlock(&event_lock);
        return r;
}

VGPU_EXPORT CUresult cuEventDestroy_v2(CUevent hEvent)
{
        CUresult r = fc_ready();

        if (r != CUDA_SUCCESS)
                return r;
        if (!handle_del(hEvent, FC_EVENT))
                return CUDA_ERROR_INVALID_HANDLE;
        free(hEvent);
        return fc_sticky();
}

/* Whether every page of [p, p + len) is mapped in this process. */
static bool host_mapped(uintptr_t p, size_t len)
{
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t start = p & ~(page - 1), end = p + len;
        unsigned char vec[256];

        for (uintptr_t cur = start; cur < end; cur += 256 * page) {
                size_t n = end - cur < 256 * page ? (size_t)(end - cur) : (size_t)(256 * page);

                if (mincore((void *)cur, n, vec) < 0)
                        return false;
        }
        return true;
}

VGPU_EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
        const unsigned known = CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP |
                               CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY;
        uintptr_t a = (uintptr_t)p;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!fc_current())
                return CUDA_ERROR_INVALID_CONTEXT;
        if (!p || bytesize == 0 || a + bytesize < a || (Flags & ~known) ||
            !host_mapped(a, bytesize))
                return CUDA_ERROR_INVALID_VALUE;
        pthread_mutex_lock(&host_lock);
        for (size_t i = 0; i < n_hosts && r == CUDA_SUCCESS; i++) {
                if (a < hosts[i].p + hosts[i].len && hosts[i].p < a + bytesize)
                        r = CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
        }
        if (r == CUDA_SUCCESS && n_hosts == cap_hosts) {
                size_t cap = cap_hosts ? cap_hosts * 2 : 16;
                struct host_range *nh = realloc(hosts, cap * sizeof(*nh));

                if (nh) {
                        hosts = nh;
                        cap_hosts = cap;
                } else {
                        r = CUDA_ERROR_OUT_OF_MEMORY;
                }
        }
        if (r == CUDA_SUCCESS)
                hosts[n_hosts++] = (struct host_range){.p = a, .len = bytesize};
        pthread_mutex_unlock(&host_lock);
        return r;
}

VGPU_EXPORT CUresult cuMemHostUnregister(void *p)
{
        CUresult r = fc_ready();
        size_t i;

        if (r != CUDA_SUCCESS)
                return r;
        if (!p)
                return CUDA_ERROR_INVALID_VALUE;
        pthread_mutex_lock(&host_lock);
        for (i = 0; i < n_hosts && hosts[i].p != (uintptr_t)p; i++)
                ;
        if (i == n_hosts)
                r = CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
        else
                hosts[i] = hosts[--n_hosts];
        pthread_mutex_unlock(&host_lock);
        return r != CUDA_SUCCESS ? r : fc_sticky();
}
