// SPDX-License-Identifier: Apache-2.0
// Streams and events. Each stream's commands carry its slot, one of the engine's in-order queues;
// the engine runs different slots in any order. What CUDA orders across streams the guest says
// with STREAM_WAIT commands: the legacy stream's barriers with blocking streams, and
// cuStreamWaitEvent. A stream or event is "done" when its slot's completion counter passed the
// sequence number of its last command — no round trip.
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"

/* The per-thread default stream of each context a thread used: a blocking stream of its own. */
struct ptds {
        struct ptds *next;
        struct gctx *ctx;
        struct gstream *st;
};

static _Thread_local struct ptds *ptds_list;

static struct gstream *ptds_get(struct gctx *c)
{
        struct ptds *p;

        for (p = ptds_list; p; p = p->next) {
                if (p->ctx == c)
                        return p->st;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->st = guest_alloc(sizeof(*p->st));
        if (!p->st) {
                free(p);
                return NULL;
        }
        p->st->magic = MAGIC_STREAM;
        p->st->ctx = c;
        p->ctx = c;
        p->next = ptds_list;
        ptds_list = p;
        return p->st;
}

struct gstream *guest_stream_of(struct gctx *c, struct gstream *st)
{
        return st ? st : &c->legacy;
}

/* The stream's slot, taken at its first command: a free one, else the least shared. */
static uint32_t stream_slot_locked(struct gdev *d, struct gstream *st)
{
        uint32_t best = 0;

        if (st->has_slot)
                return st->slot;
        for (uint32_t i = 1; i < VGPU_STREAMS; i++) {
                if (d->slot_refs[i] < d->slot_refs[best])
                        best = i;
        }
        d->slot_refs[best]++;
        st->slot = best;
        st->has_slot = true;
        return best;
}

void guest_stream_release(struct gdev *d, struct gstream *st)
{
        if (st->has_slot && d->slot_refs[st->slot])
                d->slot_refs[st->slot]--;
        st->has_slot = false;
}

static bool blocking(const struct gctx *c, const struct gstream *st)
{
        return st != &c->legacy && !(st->flags & CU_STREAM_NON_BLOCKING);
}

static void note_locked(struct gctx *c, struct gstream *st, uint64_t seq)
{
        __atomic_store_n(&st->last_seq, seq, __ATOMIC_RELEASE);
        __atomic_store_n(&c->slot_last[st->slot], seq, __ATOMIC_RELEASE);
        if (blocking(c, st)) {
                c->blocking_last[st->slot] = seq;
                c->blocking_seq = seq;
        }
}

/*
 * The legacy stream's rules: its work waits for all earlier work of the context's blocking
 * streams, and a blocking stream's work waits for the legacy stream's earlier work. Non-blocking
 * streams wait for nobody. What already finished, or runs in the same slot anyway, needs no wait.
 */
static uint32_t legacy_deps_locked(struct gctx *c, struct gstream *st, struct vgpu_stream_dep *dep)
{
        struct gdev *d = c->dev;
        uint32_t n = 0;

        if (st == &c->legacy && c->blocking_seq > c->legacy_waited_all) {
                /* only when a blocking stream queued something since the last look */
                c->legacy_waited_all = c->blocking_seq;
                for (uint32_t i = 0; i < VGPU_STREAMS; i++) {
                        uint64_t last = c->blocking_last[i];

                        if (last <= c->legacy_waited[i])
                                continue;
                        c->legacy_waited[i] = last;
                        if (i != st->slot && !guest_slot_done(d, i, last))
                                dep[n++] = (struct vgpu_stream_dep){.slot = i, .seq = last};
                }
        } else if (blocking(c, st) && c->legacy.last_seq > st->waited_null) {
                st->waited_null = c->legacy.last_seq;
                if (c->legacy.slot != st->slot &&
                    !guest_slot_done(d, c->legacy.slot, c->legacy.last_seq))
                        dep[n++] = (struct vgpu_stream_dep){.slot = c->legacy.slot,
                                                            .seq = c->legacy.last_seq};
        }
        return n;
}

/* Queue a STREAM_WAIT on st for n deps. */
static CUresult push_wait_locked(struct gctx *c, struct gstream *st,
                                 const struct vgpu_stream_dep *dep, uint32_t n)
{
        struct vgpu_req_stream_wait q = {.ctx = c->handle, .n = n};
        uint64_t seq;
        CUresult r = guest_push_locked(c->dev, VGPU_OP_STREAM_WAIT, st->slot, &q, sizeof(q), dep,
                                       n * (uint32_t)sizeof(*dep), &seq);

        if (r == CUDA_SUCCESS)
                note_locked(c, st, seq);
        return r;
}

CUresult guest_push_stream_locked(struct gctx *c, struct gstream *st, uint16_t op, const void *req,
                                  uint32_t req_len, const void *tail, uint32_t tail_len,
                                  uint64_t *ret_seq)
{
        struct vgpu_stream_dep dep[VGPU_STREAMS];
        uint32_t n;
        uint64_t seq;
        CUresult r;

        st = guest_stream_of(c, st);
        stream_slot_locked(c->dev, st);
        n = legacy_deps_locked(c, st, dep);
        if (n && (r = push_wait_locked(c, st, dep, n)) != CUDA_SUCCESS)
                return r;
        r = guest_push_locked(c->dev, op, st->slot, req, req_len, tail, tail_len, &seq);
        if (r != CUDA_SUCCESS)
                return r;
        note_locked(c, st, seq);
        *ret_seq = seq;
        return CUDA_SUCCESS;
}

CUresult guest_wait_stream(struct gctx *c, struct gstream *st)
{
        st = guest_stream_of(c, st);
        if (!st->has_slot)
                return CUDA_SUCCESS;
        return guest_wait_slot(c->dev, st->slot, __atomic_load_n(&st->last_seq, __ATOMIC_ACQUIRE));
}

bool guest_stream_done(struct gctx *c, struct gstream *st)
{
        st = guest_stream_of(c, st);
        return !st->has_slot ||
               guest_slot_done(c->dev, st->slot, __atomic_load_n(&st->last_seq, __ATOMIC_ACQUIRE));
}

CUresult guest_wait_ctx(struct gctx *c)
{
        for (uint32_t i = 0; i < VGPU_STREAMS; i++) {
                uint64_t last = __atomic_load_n(&c->slot_last[i], __ATOMIC_ACQUIRE);
                CUresult r = last ? guest_wait_slot(c->dev, i, last) : CUDA_SUCCESS;

                if (r != CUDA_SUCCESS)
                        return r;
        }
        return CUDA_SUCCESS;
}

static bool stream_valid(const struct gstream *s)
{
        return s && s->magic == MAGIC_STREAM && s->ctx->magic == MAGIC_CTX;
}

CUresult guest_stream_get(CUstream s, struct gctx **ret_ctx, struct gstream **ret_stream)
{
        struct gstream *st = (struct gstream *)s;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        /* The legacy stream is the context's; the per-thread one the thread's, per context. */
        if (!s || s == CU_STREAM_LEGACY) {
                *ret_stream = NULL;
                return guest_ctx_get(NULL, ret_ctx);
        }
        if (s == CU_STREAM_PER_THREAD) {
                struct gctx *c;
                CUresult r = guest_ctx_get(NULL, &c);

                if (r != CUDA_SUCCESS)
                        return r;
                *ret_stream = ptds_get(c);
                *ret_ctx = c;
                return *ret_stream ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
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
        /* Work already queued still completes; the handle dies now, its slot goes back. */
        pthread_mutex_lock(&s->ctx->dev->lock);
        guest_stream_release(s->ctx->dev, s);
        pthread_mutex_unlock(&s->ctx->dev->lock);
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
        return guest_stream_done(c, s) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult CUDAAPI cuStreamSynchronize(CUstream hStream)
{
        struct gctx *c;
        struct gstream *s;
        CUresult r = guest_stream_get(hStream, &c, &s);

        if (r != CUDA_SUCCESS)
                return r;
        r = guest_wait_stream(c, s);
        /* Errors of the stream's asynchronous work surface here. */
        return r != CUDA_SUCCESS ? r : guest_stream_sync(c, s);
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
 * Host functions. cuLaunchHostFunc queues a HOST_WAIT command on its stream and returns. When
 * the work before it in that stream is done, the engine marks its slot VGPU_HOST_REACHED and
 * holds that stream; the device's host-function thread runs the function and releases the slot.
 * So the function runs after the work before it, and nothing after it in its stream starts
 * before it returns, as on a GPU; other streams go on. The thread takes whichever queued
 * function is reached first.
 */
static struct host_job *host_reached_locked(struct gdev *d)
{
        struct host_job **pp;

        for (pp = &d->host_head; *pp; pp = &(*pp)->next) {
                struct host_job *j = *pp;

                if (__atomic_load_n(&d->v.ctl->host_release[j->slot], __ATOMIC_ACQUIRE) !=
                    VGPU_HOST_REACHED)
                        continue;
                *pp = j->next;
                if (d->host_tail == j) {
                        d->host_tail = NULL;
                        for (struct host_job *t = d->host_head; t; t = t->next)
                                d->host_tail = t;
                }
                return j;
        }
        return NULL;
}

static void *host_thread(void *arg)
{
        struct gdev *d = arg;

        for (;;) {
                struct host_job *j;
                uint32_t val;

                pthread_mutex_lock(&d->host_lock);
                while (!d->host_head)
                        pthread_cond_wait(&d->host_cond, &d->host_lock);
                j = host_reached_locked(d);
                pthread_mutex_unlock(&d->host_lock);
                if (!j) {
                        struct vgpu_chan_ctl *ctl = d->v.ctl;

                        if (guest_engine_gone(d))
                                return NULL;
                        /* The engine bumps done_futex when it reaches one, if we sleep: say so
                         * first, then look again. */
                        val = __atomic_load_n(&ctl->done_futex, __ATOMIC_SEQ_CST);
                        __atomic_add_fetch(&ctl->guest_sleeping, 1, __ATOMIC_SEQ_CST);
                        pthread_mutex_lock(&d->host_lock);
                        j = host_reached_locked(d);
                        pthread_mutex_unlock(&d->host_lock);
                        if (!j)
                                chan_futex_wait(&ctl->done_futex, val, 100);
                        __atomic_sub_fetch(&ctl->guest_sleeping, 1, __ATOMIC_SEQ_CST);
                        if (!j)
                                continue;
                }
                j->run(j);
                /* a re-attach copying the channel meanwhile does not lose it */
                pthread_mutex_lock(&d->release_lock);
                __atomic_store_n(&d->v.ctl->host_release[j->slot], VGPU_HOST_RELEASED,
                                 __ATOMIC_RELEASE);
                pthread_mutex_unlock(&d->release_lock);
                guest_wake_engine(d);
                guest_wait_slot(d, j->sslot, j->seq);
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
        __atomic_store_n(&d->v.ctl->host_release[slot], VGPU_HOST_QUEUED, __ATOMIC_RELEASE);
        q.slot = (uint32_t)slot;
        pthread_mutex_lock(&d->lock);
        r = guest_push_stream_locked(c, st, VGPU_OP_HOST_WAIT, &q, sizeof(q), NULL, 0, &j->seq);
        j->sslot = guest_stream_of(c, st)->slot;
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

/* An event is reached when its record's stream slot finished it (never recorded: at once). */
static bool event_done(struct gevent *e)
{
        return guest_slot_done(e->ctx->dev, e->stream, __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE));
}

static CUresult event_wait(struct gevent *e)
{
        return guest_wait_slot(e->ctx->dev, e->stream, __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE));
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
        r = guest_push_stream_locked(c, s, VGPU_OP_EVENT_RECORD, &q, sizeof(q), NULL, 0, &seq);
        if (r == CUDA_SUCCESS) {
                c->dev->v.events[e->slot].seq = seq;
                e->stream = guest_stream_of(c, s)->slot;
                __atomic_store_n(&e->seq, seq, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&c->dev->lock);
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
        return event_done(e) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult CUDAAPI cuEventSynchronize(CUevent hEvent)
{
        struct gevent *e = (struct gevent *)hEvent;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!event_valid(e))
                return CUDA_ERROR_INVALID_HANDLE;
        return event_wait(e);
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
        if (!event_done(a) || !event_done(b))
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
        event_wait(e);
        e->ctx->dev->event_used[e->slot] = 0;
        e->magic = MAGIC_DEAD;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
        struct gevent *e = (struct gevent *)hEvent;
        struct gstream *s, *st;
        struct gctx *c;
        uint64_t seq;
        CUresult r = guest_stream_get(hStream, &c, &s);

        if (r != CUDA_SUCCESS)
                return r;
        if (!event_valid(e) || Flags > 1)
                return CUDA_ERROR_INVALID_HANDLE;
        /* An event of another vGPU is waited for here. */
        if (e->ctx->dev != c->dev)
                return event_wait(e);
        /* The stream's later work waits in the engine for the event's stream to reach it. */
        pthread_mutex_lock(&c->dev->lock);
        seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
        st = guest_stream_of(c, s);
        if (seq && !guest_slot_done(c->dev, e->stream, seq) &&
            !(st->has_slot && st->slot == e->stream)) {
                struct vgpu_req_stream_wait q = {.ctx = c->handle, .n = 1};
                struct vgpu_stream_dep dep = {.slot = e->stream, .seq = seq};
                uint64_t wseq;

                r = guest_push_stream_locked(c, s, VGPU_OP_STREAM_WAIT, &q, sizeof(q), &dep,
                                             sizeof(dep), &wseq);
        }
        pthread_mutex_unlock(&c->dev->lock);
        return r;
}
