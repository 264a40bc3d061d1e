// SPDX-License-Identifier: Apache-2.0
// Streams and events. The engine runs a guest's commands in the order they were queued, so every
// stream's order (and every cross-stream wait) holds; a stream or event is "done" when the
// engine's completion counter passed the sequence number of its last command — no round trip.
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"

static bool stream_valid(const struct gstream *s)
{
        return s && s->magic == MAGIC_STREAM && s->ctx->magic == MAGIC_CTX;
}

CUresult guest_stream_get(CUstream s, struct gctx **ret_ctx, struct gstream **ret_stream)
{
        struct gstream *st = (struct gstream *)s;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        /* The legacy and per-thread default streams are the context's own order. */
        if (!s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD) {
                *ret_stream = NULL;
                return guest_ctx_get(NULL, ret_ctx);
        }
        if (!stream_valid(st))
                return CUDA_ERROR_INVALID_HANDLE;
        *ret_ctx = st->ctx;
        *ret_stream = st;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
        struct gstream *s;
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (!phStream || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING))
                return CUDA_ERROR_INVALID_VALUE;
        s = guest_alloc(sizeof(*s));
        if (!s)
                return CUDA_ERROR_OUT_OF_MEMORY;
        s->magic = MAGIC_STREAM;
        s->ctx = c;
        s->flags = flags;
        /* Clamped to the range cuCtxGetStreamPriorityRange reports, as the driver does. */
        s->priority = priority > 0 ? 0 : priority < -5 ? -5 : priority;
        *phStream = (CUstream)s;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
        return cuStreamCreateWithPriority(phStream, Flags, 0);
}

CUresult CUDAAPI cuStreamDestroy(CUstream hStream)
{
        struct gstream *s = (struct gstream *)hStream;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!stream_valid(s))
                return CUDA_ERROR_INVALID_HANDLE;
        /* Work already queued still completes; the handle dies now. */
        s->magic = MAGIC_DEAD;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamQuery(CUstream hStream)
{
        struct gctx *c;
        struct gstream *s;
        CUresult r = guest_stream_get(hStream, &c, &s);

        if (r != CUDA_SUCCESS)
                return r;
        if (c->sticky)
                return (CUresult)c->sticky;
        return guest_done(c->dev, s ? s->last_seq : c->last_seq) ? CUDA_SUCCESS
                                                                 : CUDA_ERROR_NOT_READY;
}

CUresult CUDAAPI cuStreamSynchronize(CUstream hStream)
{
        struct gctx *c;
        struct gstream *s;
        CUresult r = guest_stream_get(hStream, &c, &s);

        if (r != CUDA_SUCCESS)
                return r;
        r = guest_wait(c->dev, s ? s->last_seq : c->last_seq);
        /* Errors of the stream's asynchronous work surface here. */
        return r != CUDA_SUCCESS ? r : guest_ctx_sync(c);
}

CUresult CUDAAPI cuStreamGetFlags(CUstream hStream, unsigned int *flags)
{
        struct gctx *c;
        struct gstream *s;
        CUresult r = guest_stream_get(hStream, &c, &s);

        if (r != CUDA_SUCCESS)
                return r;
        if (!flags)
                return CUDA_ERROR_INVALID_VALUE;
        *flags = s ? s->flags : 0;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetPriority(CUstream hStream, int *priority)
{
        struct gctx *c;
        struct gstream *s;
        CUresult r = guest_stream_get(hStream, &c, &s);

        if (r != CUDA_SUCCESS)
                return r;
        if (!priority)
                return CUDA_ERROR_INVALID_VALUE;
        *priority = s ? s->priority : 0;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetCtx(CUstream hStream, CUcontext *pctx)
{
        struct gctx *c;
        struct gstream *s;
        CUresult r = guest_stream_get(hStream, &c, &s);

        if (r != CUDA_SUCCESS)
                return r;
        if (!pctx)
                return CUDA_ERROR_INVALID_VALUE;
        *pctx = (CUcontext)c;
        return CUDA_SUCCESS;
}

/*
 * Host functions. cuLaunchHostFunc queues a HOST_WAIT command and returns; the device's
 * host-function thread waits until everything before that command is finished (the engine then
 * waits at it), runs the function, and releases the engine. So the function runs after the work
 * before it, and nothing after it starts before it returns, as on a GPU.
 */
static void *host_thread(void *arg)
{
        struct gdev *d = arg;

        for (;;) {
                struct host_job *j;

                pthread_mutex_lock(&d->host_lock);
                while (!d->host_head)
                        pthread_cond_wait(&d->host_cond, &d->host_lock);
                j = d->host_head;
                d->host_head = j->next;
                if (!d->host_head)
                        d->host_tail = NULL;
                pthread_mutex_unlock(&d->host_lock);

                guest_wait(d, j->seq - 1);
                j->run(j);
                __atomic_store_n(&d->v.ctl->host_release[j->slot], 1, __ATOMIC_RELEASE);
                chan_futex_wake(&d->v.ctl->host_release[j->slot]);
                guest_wait(d, j->seq);
                pthread_mutex_lock(&d->host_lock);
                d->host_used[j->slot] = 0;
                pthread_cond_broadcast(&d->host_cond);
                pthread_mutex_unlock(&d->host_lock);
                free(j);
        }
        return NULL;
}

static void run_hostfn(struct host_job *j)
{
        j->fn(j->user);
}

static void run_callback(struct host_job *j)
{
        j->cb(j->stream, CUDA_SUCCESS, j->user);
}

static CUresult queue_host_job(struct gctx *c, struct gstream *st, struct host_job *j)
{
        struct gdev *d = c->dev;
        struct vgpu_req_event q = {.ctx = c->handle};
        int slot = -1;
        CUresult r;

        pthread_mutex_lock(&d->host_lock);
        if (!d->host_thread) {
                pthread_t th;

                if (pthread_create(&th, NULL, host_thread, d) != 0) {
                        pthread_mutex_unlock(&d->host_lock);
                        free(j);
                        return CUDA_ERROR_OUT_OF_MEMORY;
                }
                pthread_detach(th);
                d->host_thread = true;
        }
        while (slot < 0) {
                for (int i = 0; i < VGPU_HOST_SLOTS && slot < 0; i++) {
                        if (!d->host_used[i])
                                slot = i;
                }
                if (slot < 0)
                        pthread_cond_wait(&d->host_cond, &d->host_lock);
        }
        d->host_used[slot] = 1;
        __atomic_store_n(&d->v.ctl->host_release[slot], 0, __ATOMIC_RELEASE);
        q.slot = (uint32_t)slot;
        pthread_mutex_lock(&d->lock);
        r = guest_push_locked(d, VGPU_OP_HOST_WAIT, &q, sizeof(q), NULL, 0, &j->seq);
        pthread_mutex_unlock(&d->lock);
        if (r != CUDA_SUCCESS) {
                d->host_used[slot] = 0;
                pthread_mutex_unlock(&d->host_lock);
                free(j);
                return r;
        }
        j->slot = (uint32_t)slot;
        if (d->host_tail)
                d->host_tail->next = j;
        else
                d->host_head = j;
        d->host_tail = j;
        /* Noted before the job is handed over: the host thread frees it once it has run. */
        guest_note_seq(c, st, j->seq);
        pthread_cond_broadcast(&d->host_cond);
        pthread_mutex_unlock(&d->host_lock);
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
        struct host_job *j;
        struct gctx *c;
        struct gstream *s;
        CUresult r = guest_stream_get(hStream, &c, &s);

        if (r != CUDA_SUCCESS)
                return r;
        if (!fn)
                return CUDA_ERROR_INVALID_VALUE;
        j = calloc(1, sizeof(*j));
        if (!j)
                return CUDA_ERROR_OUT_OF_MEMORY;
        *j = (struct host_job){.run = run_hostfn, .fn = fn, .user = userData};
        return queue_host_job(c, s, j);
}

CUresult CUDAAPI cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
                                     unsigned int flags)
{
        struct host_job *j;
        struct gctx *c;
        struct gstream *s;
        CUresult r = guest_stream_get(hStream, &c, &s);

        if (r != CUDA_SUCCESS)
                return r;
        if (!callback || flags)
                return CUDA_ERROR_INVALID_VALUE;
        j = calloc(1, sizeof(*j));
        if (!j)
                return CUDA_ERROR_OUT_OF_MEMORY;
        *j = (struct host_job){
                .run = run_callback, .cb = callback, .stream = hStream, .user = userData};
        return queue_host_job(c, s, j);
}

/* ---- events ------------------------------------------------------------------------------- */

static bool event_valid(const struct gevent *e)
{
        return e && e->magic == MAGIC_EVENT && e->ctx->magic == MAGIC_CTX;
}

CUresult CUDAAPI cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
        struct gevent *e;
        struct gctx *c;
        struct gdev *d;
        CUresult r = guest_ctx_get(NULL, &c);
        int slot = -1;

        if (r != CUDA_SUCCESS)
                return r;
        if (!phEvent || (Flags & ~(unsigned)(CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING |
                                             CU_EVENT_INTERPROCESS)))
                return CUDA_ERROR_INVALID_VALUE;
        d = c->dev;
        pthread_mutex_lock(&d->lock);
        for (int i = 0; i < (int)d->v.n_events && slot < 0; i++) {
                if (!d->event_used[i]) {
                        d->event_used[i] = 1;
                        slot = i;
                }
        }
        pthread_mutex_unlock(&d->lock);
        if (slot < 0)
                return CUDA_ERROR_OUT_OF_MEMORY;
        e = guest_alloc(sizeof(*e));
        if (!e) {
                d->event_used[slot] = 0;
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        e->magic = MAGIC_EVENT;
        e->ctx = c;
        e->flags = Flags;
        e->slot = (uint32_t)slot;
        *phEvent = (CUevent)e;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventRecord(CUevent hEvent, CUstream hStream)
{
        struct gevent *e = (struct gevent *)hEvent;
        struct vgpu_req_event q;
        struct gctx *c;
        struct gstream *s;
        uint64_t seq;
        CUresult r = guest_stream_get(hStream, &c, &s);

        if (r != CUDA_SUCCESS)
                return r;
        if (!event_valid(e))
                return CUDA_ERROR_INVALID_HANDLE;
        if (e->ctx != c)
                return CUDA_ERROR_INVALID_CONTEXT;
        q = (struct vgpu_req_event){.ctx = c->handle, .slot = e->slot};
        pthread_mutex_lock(&c->dev->lock);
        r = guest_push_locked(c->dev, VGPU_OP_EVENT_RECORD, &q, sizeof(q), NULL, 0, &seq);
        if (r == CUDA_SUCCESS)
                c->dev->v.events[e->slot].seq = seq;
        pthread_mutex_unlock(&c->dev->lock);
        if (r == CUDA_SUCCESS) {
                e->seq = seq;
                guest_note_seq(c, s, seq);
        }
        return r;
}

CUresult CUDAAPI cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
{
        (void)flags;
        return cuEventRecord(hEvent, hStream);
}

CUresult CUDAAPI cuEventQuery(CUevent hEvent)
{
        struct gevent *e = (struct gevent *)hEvent;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!event_valid(e))
                return CUDA_ERROR_INVALID_HANDLE;
        return guest_done(e->ctx->dev, e->seq) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult CUDAAPI cuEventSynchronize(CUevent hEvent)
{
        struct gevent *e = (struct gevent *)hEvent;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!event_valid(e))
                return CUDA_ERROR_INVALID_HANDLE;
        return guest_wait(e->ctx->dev, e->seq);
}

CUresult CUDAAPI cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
        struct gevent *a = (struct gevent *)hStart, *b = (struct gevent *)hEnd;
        uint64_t ta, tb;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!pMilliseconds)
                return CUDA_ERROR_INVALID_VALUE;
        if (!event_valid(a) || !event_valid(b))
                return CUDA_ERROR_INVALID_HANDLE;
        if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING || !a->seq || !b->seq)
                return CUDA_ERROR_INVALID_HANDLE;
        if (!guest_done(a->ctx->dev, a->seq) || !guest_done(b->ctx->dev, b->seq))
                return CUDA_ERROR_NOT_READY;
        ta = __atomic_load_n(&a->ctx->dev->v.events[a->slot].time_ns, __ATOMIC_ACQUIRE);
        tb = __atomic_load_n(&b->ctx->dev->v.events[b->slot].time_ns, __ATOMIC_ACQUIRE);
        *pMilliseconds = (float)((double)((int64_t)(tb - ta)) / 1e6);
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventDestroy(CUevent hEvent)
{
        struct gevent *e = (struct gevent *)hEvent;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!event_valid(e))
                return CUDA_ERROR_INVALID_HANDLE;
        /* The slot may still be written by a pending record: free it once that is done. */
        guest_wait(e->ctx->dev, e->seq);
        e->ctx->dev->event_used[e->slot] = 0;
        e->magic = MAGIC_DEAD;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
        struct gevent *e = (struct gevent *)hEvent;
        struct gctx *c;
        struct gstream *s;
        CUresult r = guest_stream_get(hStream, &c, &s);

        if (r != CUDA_SUCCESS)
                return r;
        if (!event_valid(e) || Flags > 1)
                return CUDA_ERROR_INVALID_HANDLE;
        /* One in-order queue per guest: the event's work precedes anything queued after now.
         * An event of another vGPU is waited for here. */
        if (e->ctx->dev != c->dev)
                return guest_wait(e->ctx->dev, e->seq);
        return CUDA_SUCCESS;
}
