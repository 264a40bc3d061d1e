// SPDX-License-Identifier: Apache-2.0
// Streams, events, copies, fills and page-locked host memory. Work runs on the calling thread
// when it is queued (a legal schedule of an in-order stream), and an event's time is the moment it
// was recorded; but an event is not complete until something waits for it or it has been found
// not ready once (see struct lane), so that callers meet CUDA_ERROR_NOT_READY as on a GPU. Copies
// and fills touch only device memory the stream's device can reach (vmm_reachable): anything else
// is CUDA_ERROR_INVALID_VALUE.
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fake_cuda.h"

/*
 * The order in which a stream's events complete: the n-th event recorded on it is complete once
 * done >= n. Something that waits (an event or stream synchronize, a copy to pageable memory)
 * raises done; so does a query that found the event not ready (the GPU finishes meanwhile).
 * Completion follows stream order, as on a GPU: an event recorded before a complete one is
 * complete. A stream has one (freed when neither it nor an event recorded on it is left); the
 * NULL stream of each device's context has a fixed one.
 */
struct lane {
        struct lane *next;        /* all lanes, under event_lock */
        const struct fc_ctx *ctx; /* whose work */
        uint64_t queued, done;    /* events recorded on it; how many of them are complete */
        unsigned refs;            /* the stream, and each event last recorded on it */
        bool fixed;               /* a NULL stream's: never freed */
};

struct stream {
        unsigned flags;
        struct lane *lane;
};

struct event {
        unsigned flags;
        bool recorded;
        uint64_t ns;       /* CLOCK_MONOTONIC at the last record */
        struct lane *lane; /* where it was last recorded, and its place there */
        uint64_t seq;
};

struct host_range {
        uintptr_t p;
        size_t len;
};

static pthread_mutex_t event_lock = PTHREAD_MUTEX_INITIALIZER; /* lanes and events */
static struct lane *lanes;
static struct lane null_lanes[FC_MAX_DEVICES];
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

/* Drop a reference to l (NULL: none); the last one of a stream's frees it. */
static void lane_put_locked(struct lane *l)
{
        if (!l || l->fixed || --l->refs > 0)
                return;
        for (struct lane **pp = &lanes; *pp; pp = &(*pp)->next) {
                if (*pp == l) {
                        *pp = l->next;
                        break;
                }
        }
        free(l);
}

/* Everything recorded on l up to its seq-th event is complete. */
static void lane_finish_locked(struct lane *l, uint64_t seq)
{
        if (l->done < seq)
                l->done = seq;
}

/* Everything recorded in ctx is complete (its NULL stream waits for all its streams). */
static void ctx_finish_locked(const struct fc_ctx *ctx)
{
        for (struct lane *l = lanes; l; l = l->next) {
                if (l->ctx == ctx)
                        l->done = l->queued;
        }
        null_lanes[ctx->dev->ordinal].done = null_lanes[ctx->dev->ordinal].queued;
}

/* The lane of stream s of ctx (as stream_ctx found them). */
static struct lane *lane_of_locked(CUstream s, const struct fc_ctx *ctx)
{
        struct lane *l;

        if (s && s != CU_STREAM_LEGACY && s != CU_STREAM_PER_THREAD)
                return ((struct stream *)(void *)s)->lane;
        l = &null_lanes[ctx->dev->ordinal];
        l->fixed = true;
        l->ctx = ctx;
        return l;
}

static bool event_complete_locked(const struct event *e)
{
        return !e->recorded || e->seq <= e->lane->done;
}

void stream_drop_ctx(struct fc_ctx *ctx)
{
        void *batch[256];
        size_t n;

        pthread_mutex_lock(&event_lock);
        ctx_finish_locked(ctx);
        while ((n = handle_take(FC_STREAM, ctx, batch, 256)) > 0) {
                for (size_t i = 0; i < n; i++) {
                        lane_put_locked(((struct stream *)batch[i])->lane);
                        free(batch[i]);
                }
        }
        while ((n = handle_take(FC_EVENT, ctx, batch, 256)) > 0) {
                for (size_t i = 0; i < n; i++) {
                        lane_put_locked(((struct event *)batch[i])->lane);
                        free(batch[i]);
                }
        }
        pthread_mutex_unlock(&event_lock);
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
        if (s)
                s->lane = calloc(1, sizeof(*s->lane));
        if (!s || !s->lane) {
                free(s);
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        s->flags = Flags;
        *s->lane = (struct lane){.ctx = ctx, .refs = 1};
        if (handle_add(s, FC_STREAM, ctx) < 0) {
                free(s->lane);
                free(s);
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        pthread_mutex_lock(&event_lock);
        s->lane->next = lanes;
        lanes = s->lane;
        pthread_mutex_unlock(&event_lock);
        *phStream = (CUstream)(void *)s;
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuStreamDestroy_v2(CUstream hStream)
{
        struct stream *s;
        CUresult r = fc_ready();

        if (r != CUDA_SUCCESS)
                return r;
        if (!handle_del(hStream, FC_STREAM))
                return CUDA_ERROR_INVALID_HANDLE;
        /* its work finishes (a GPU's would, later); the lane stays while events name it */
        pthread_mutex_lock(&event_lock);
        s = (struct stream *)(void *)hStream;
        lane_finish_locked(s->lane, s->lane->queued);
        lane_put_locked(s->lane);
        pthread_mutex_unlock(&event_lock);
        free(s);
        return fc_sticky();
}

VGPU_EXPORT CUresult cuStreamSynchronize(CUstream hStream)
{
        struct fc_ctx *ctx;
        struct lane *l;
        CUresult r = fc_check(); /* a kernel fault shows here */

        if (r == CUDA_SUCCESS)
                r = stream_ctx(hStream, &ctx);
        if (r != CUDA_SUCCESS)
                return r;
        pthread_mutex_lock(&event_lock);
        l = lane_of_locked(hStream, ctx);
        if (l->fixed)
                ctx_finish_locked(ctx); /* the NULL stream: every stream of the context */
        else
                lane_finish_locked(l, l->queued);
        pthread_mutex_unlock(&event_lock);
        return CUDA_SUCCESS;
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

/* Whether [p, p + len) lies inside one range registered with cuMemHostRegister. */
static bool host_pinned(uintptr_t p, size_t len)
{
        bool in = false;

        pthread_mutex_lock(&host_lock);
        for (size_t i = 0; i < n_hosts && !in; i++)
                in = p >= hosts[i].p && p - hosts[i].p <= hosts[i].len &&
                     len <= hosts[i].len - (p - hosts[i].p);
        pthread_mutex_unlock(&host_lock);
        return in;
}

VGPU_EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                                          CUstream hStream)
{
        struct fc_ctx *ctx;
        CUresult r = fc_check();

        if (r == CUDA_SUCCESS)
                r = stream_ctx(hStream, &ctx);
        if (r != CUDA_SUCCESS || ByteCount == 0)
                return r;
        if (!dstHost)
                return CUDA_ERROR_INVALID_VALUE;
        vmm_use_begin();
        if (vmm_reachable(ctx->dev, srcDevice, ByteCount))
                memcpy(dstHost, (const void *)(uintptr_t)srcDevice, ByteCount);
        else
                r = CUDA_ERROR_INVALID_VALUE;
        vmm_use_end();
        /* To pageable memory it returns once the copy is done, and so the stream's work before */
        if (r == CUDA_SUCCESS && !host_pinned((uintptr_t)dstHost, ByteCount)) {
                struct lane *l;

                pthread_mutex_lock(&event_lock);
                l = lane_of_locked(hStream, ctx);
                lane_finish_locked(l, l->queued);
                pthread_mutex_unlock(&event_lock);
        }
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
        const void *owner;
        struct fc_ctx *ctx;
        struct lane *l;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!handle_is(e, FC_EVENT, &owner))
                return CUDA_ERROR_INVALID_HANDLE;
        r = stream_ctx(hStream, &ctx);
        if (r != CUDA_SUCCESS)
                return r;
        if (owner != ctx)
                return CUDA_ERROR_INVALID_HANDLE; /* the event and the stream of one context */
        pthread_mutex_lock(&event_lock);
        l = lane_of_locked(hStream, ctx);
        if (!l->fixed)
                l->refs++;
        lane_put_locked(e->lane);
        e->lane = l;
        e->seq = ++l->queued;
        e->recorded = true;
        e->ns = now_ns();
        pthread_mutex_unlock(&event_lock);
        return CUDA_SUCCESS;
}

/*
 * Complete when its work is done. Work runs when queued, but an event's completion is seen late:
 * a query that finds it not ready lets it (and what came before it on its stream) finish.
 */
VGPU_EXPORT CUresult cuEventQuery(CUevent hEvent)
{
        struct event *e = (struct event *)(void *)hEvent;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!handle_is(e, FC_EVENT, NULL))
                return CUDA_ERROR_INVALID_HANDLE;
        pthread_mutex_lock(&event_lock);
        if (!event_complete_locked(e)) {
                r = CUDA_ERROR_NOT_READY;
                lane_finish_locked(e->lane, e->seq);
        }
        pthread_mutex_unlock(&event_lock);
        return r;
}

VGPU_EXPORT CUresult cuEventSynchronize(CUevent hEvent)
{
        struct event *e = (struct event *)(void *)hEvent;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!handle_is(e, FC_EVENT, NULL))
                return CUDA_ERROR_INVALID_HANDLE;
        pthread_mutex_lock(&event_lock);
        if (e->recorded)
                lane_finish_locked(e->lane, e->seq);
        pthread_mutex_unlock(&event_lock);
        return CUDA_SUCCESS;
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
        /* both recorded, both timing, then both complete */
        if (!a->recorded || !b->recorded || ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING))
                r = CUDA_ERROR_INVALID_HANDLE;
        else if (!event_complete_locked(a) || !event_complete_locked(b))
                r = CUDA_ERROR_NOT_READY;
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
        pthread_mutex_lock(&event_lock);
        lane_put_locked(((struct event *)(void *)hEvent)->lane);
        pthread_mutex_unlock(&event_lock);
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
