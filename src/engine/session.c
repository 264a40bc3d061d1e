// SPDX-License-Identifier: Apache-2.0
// A guest's session in its engine: the command loop over the shared ring, which sorts the guest's
// asynchronous commands into one in-order queue per stream slot and runs whichever stream can go
// on, with the handlers of calls.def (session_ops.c, session_mem.c); the session's handles, its
// allocator and its suspend. Every handle from the guest is checked before use.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/session.h"
#include "engine/session_int.h"
#include "ptx/ptx.h" /* PTX_E* codes */

#define SPIN_NS 50000 /* poll the ring this long before sleeping */

pid_t session_pid(const struct session *s)
{
        return s->pid;
}

/* ---- handles ------------------------------------------------------------------------------ */

int session_handle_split(uint64_t h, enum obj_kind kind, uint32_t n, uint32_t *ret_idx,
                         uint32_t *ret_gen)
{
        uint32_t idx = (uint32_t)h;

        if ((h >> 56) != kind || idx >= n)
                return -EBADF;
        *ret_idx = idx;
        *ret_gen = (uint32_t)(h >> 32) & 0xffffff;
        return 0;
}

struct sctx *session_get_ctx(struct session *s, uint64_t h, uint32_t *ret_idx)
{
        uint32_t idx, gen;

        if (session_handle_split(h, OBJ_CTX, 64, &idx, &gen) < 0 || !s->ctxs[idx].live ||
            (s->ctxs[idx].gen & 0xffffff) != gen)
                return NULL;
        *ret_idx = idx;
        return &s->ctxs[idx];
}

struct smod *session_get_mod(struct session *s, uint64_t h, uint32_t ctx, uint32_t *ret_idx)
{
        uint32_t idx, gen;

        if (session_handle_split(h, OBJ_MOD, s->n_mods, &idx, &gen) < 0 || !s->mods[idx].live ||
            (s->mods[idx].gen & 0xffffff) != gen || s->mods[idx].ctx != ctx)
                return NULL;
        *ret_idx = idx;
        return &s->mods[idx];
}

/* slot_in reads an entry's live flag right after its generation, in both tables. */
_Static_assert(offsetof(struct smod, live) == sizeof(uint32_t) &&
                       offsetof(struct sfunc, live) == sizeof(uint32_t),
               "live follows gen");

/* A free slot in a growing table of objects (modules, functions), or -ENOMEM. */
int session_slot_in(void **table, uint32_t *n, size_t elem)
{
        uint8_t *t = *table;

        for (uint32_t i = 0; i < *n; i++) {
                if (!*(bool *)(t + i * elem + sizeof(uint32_t)))
                        return (int)i;
        }
        if (*n >= MAX_OBJS)
                return -ENOMEM;
        t = realloc(t, (*n + 1) * elem);
        if (!t)
                return -ENOMEM;
        memset(t + *n * elem, 0, elem);
        *table = t;
        return (int)(*n)++;
}

/* ---- the allocator: this engine's, or the main engine's for a worker --------------------------
 */

static int alloc_rpc(struct vgpu_dev *d, struct vgpu_alloc_msg *m)
{
        ssize_t n;

        pthread_mutex_lock(&d->alloc_lock);
        n = send(d->alloc_fd, m, sizeof(*m), MSG_NOSIGNAL);
        if (n == (ssize_t)sizeof(*m))
                n = recv(d->alloc_fd, m, sizeof(*m), 0);
        pthread_mutex_unlock(&d->alloc_lock);
        return n == (ssize_t)sizeof(*m) ? m->r : -EPIPE;
}

int session_dev_alloc(struct vgpu_dev *d, uint64_t size, uint64_t owner, uint64_t *ret_base)
{
        struct vgpu_alloc_msg m = {.op = VGPU_ALLOC_ALLOC, .a = size, .b = owner};
        int r;

        if (!d->remote_alloc)
                return fbmem_alloc(&d->mem, size, owner, ret_base);
        r = alloc_rpc(d, &m);
        if (r < 0)
                return r;
        r = fbmem_alloc_at(&d->mem, m.a, size, owner);
        if (r < 0) {
                /* The main engine placed it where this mirror cannot: give it back. */
                struct vgpu_alloc_msg f = {.op = VGPU_ALLOC_FREE, .a = m.a, .b = owner};

                alloc_rpc(d, &f);
                return -EPROTO;
        }
        *ret_base = m.a;
        return 0;
}

int session_dev_free(struct vgpu_dev *d, uint64_t base, uint64_t owner)
{
        struct vgpu_alloc_msg m = {.op = VGPU_ALLOC_FREE, .a = base, .b = owner};
        int r = fbmem_free(&d->mem, base, owner);

        if (r == 0 && d->remote_alloc)
                alloc_rpc(d, &m);
        return r;
}

void session_dev_free_owner(struct vgpu_dev *d, uint64_t want, uint64_t mask)
{
        struct vgpu_alloc_msg m = {.op = VGPU_ALLOC_FREE_OWNER, .a = want, .b = mask};

        fbmem_free_owner(&d->mem, want, mask);
        if (d->remote_alloc)
                alloc_rpc(d, &m);
}

uint64_t session_dev_free_bytes(struct vgpu_dev *d)
{
        struct vgpu_alloc_msg m = {.op = VGPU_ALLOC_INFO};

        if (!d->remote_alloc || alloc_rpc(d, &m) < 0)
                return fbmem_free_bytes(&d->mem);
        return m.a;
}

/* ---- suspend ------------------------------------------------------------------------------ */

bool session_pausing(const struct session *s)
{
        return __atomic_load_n(&s->pause, __ATOMIC_ACQUIRE);
}

/*
 * Whether the guest is between its look at "suspended" and the end of its push: then its command
 * is one from before the suspend, to be run first. A guest that stays there longer than
 * PUSH_GRACE_NS (stopped, or hostile) is not waited for: its command then waits in the ring.
 */
#define PUSH_GRACE_NS 100000000ull
/*
 * How long a pausing session goes on running what its guest queued before the suspend: a few
 * commands finish, a deep queue (hundreds of kernels) is cut at a command boundary, so that the
 * pause stays short (docs/migration.md).
 */
#define DRAIN_NS 100000000ull

static bool guest_pushing(struct session *s)
{
        return __atomic_load_n(&s->v.ctl->pushing, __ATOMIC_SEQ_CST) &&
               chan_now_ns() - s->pause_ns < PUSH_GRACE_NS;
}

/*
 * A clean point: the device work queued so far completes, then the thread waits until the
 * session is resumed (or stopped). Called only by the session's own thread, between commands or
 * in a wait that has not touched the device yet.
 */
static void park(struct session *s)
{
        int r = session_queues_sync(s);

        session_gate_release(s); /* a parked vGPU gives its turn back at once */
        if (r < 0 && !s->deferred)
                s->deferred = r;
        pthread_mutex_lock(&s->pause_lock);
        s->parked = true;
        pthread_cond_broadcast(&s->pause_cond);
        while (s->pause && !s->stop)
                pthread_cond_wait(&s->pause_cond, &s->pause_lock);
        s->parked = false;
        pthread_mutex_unlock(&s->pause_lock);
}

typedef int (*op_fn)(struct session *s, const void *req, uint32_t len, void *rep,
                     uint32_t *rep_len);

static const op_fn handlers[VGPU_OP_COUNT] = {
#define X(NAME, name, num, req, rep, flags) [num] = session_op_##name,
#include "common/calls.def"
#undef X
};

/* ---- the loop ----------------------------------------------------------------------------- */

/*
 * VGPU_ENGINE_PROFILE=1: at the session's end, log where its thread's time went, per op (calls,
 * mean time in the handler) and waiting for work. For finding the engine's own overhead.
 */
struct profile {
        uint64_t calls[VGPU_OP_COUNT], ns[VGPU_OP_COUNT];
        uint64_t start, waiting;
};

static void profile_report(const struct session *s, const struct profile *p)
{
        uint64_t total = chan_now_ns() - p->start, busy = 0;

        for (int op = 0; op < VGPU_OP_COUNT; op++) {
                if (!p->calls[op])
                        continue;
                busy += p->ns[op];
                vgpu_log(VGPU_LOG_WARN, "profile guest %d: op %s: %llu calls, %.3f us each",
                         (int)s->pid, vgpu_call_info(op) ? vgpu_call_info(op)->name : "?",
                         (unsigned long long)p->calls[op],
                         (double)p->ns[op] / (double)p->calls[op] / 1e3);
        }
        vgpu_log(VGPU_LOG_WARN,
                 "profile guest %d: %.3f s in all: %.3f s in handlers, %.3f s waiting, %.3f s in "
                 "the loop itself",
                 (int)s->pid, (double)total / 1e9, (double)busy / 1e9, (double)p->waiting / 1e9,
                 (double)(total - busy - p->waiting) / 1e9);
}

/* Wake the guest's threads that sleep for a completion (they announced it). */
static void wake_guest(struct session *s)
{
        struct vgpu_chan_ctl *ctl = s->v.ctl;

        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&ctl->guest_sleeping, __ATOMIC_SEQ_CST)) {
                __atomic_add_fetch(&ctl->done_futex, 1, __ATOMIC_SEQ_CST);
                chan_futex_wake(&ctl->done_futex);
        }
}

/* done_seq: every command before the oldest one still queued (or all taken) is finished. */
static void update_done(struct session *s)
{
        uint64_t done = s->last_seq;

        for (uint64_t a = s->active; a; a &= a - 1) {
                const struct scmd *h = s->streams[__builtin_ctzll(a)].head;

                if (h->m.seq - 1 < done)
                        done = h->m.seq - 1;
        }
        __atomic_store_n(&s->v.ctl->done_seq, done, __ATOMIC_RELEASE);
}

static void finish(struct session *s, const struct vgpu_msg *m, const struct vgpu_call_info *ci,
                   int r, const void *rep, uint32_t rep_len)
{
        struct vgpu_chan_ctl *ctl = s->v.ctl;

        /* Unknown ops get an error reply too: a guest may be waiting for one. */
        if (!ci || (ci->flags & VGPU_CALL_SYNC)) {
                memcpy(s->v.reply, rep, rep_len);
                ctl->reply_len = rep_len;
                ctl->reply_result = r;
                __atomic_store_n(&ctl->reply_seq, m->seq, __ATOMIC_RELEASE);
        } else if (m->stream < VGPU_STREAMS) {
                __atomic_store_n(&ctl->stream_done[m->stream], m->seq, __ATOMIC_RELEASE);
        }
        update_done(s);
        wake_guest(s);
}

static void record_async_error(struct session *s, const void *req, uint32_t len, int r)
{
        struct sctx *c = NULL;
        uint32_t idx;
        uint64_t h;

        if (len >= sizeof(h)) {
                memcpy(&h, req, sizeof(h));
                c = session_get_ctx(s, h, &idx);
        }
        if (c && !c->deferred && !c->sticky)
                c->deferred = r;
        else if (!c && !s->deferred)
                s->deferred = r;
}

/* Validate and run one command (req holds its m->len bytes), then publish its completion. */
static void run_cmd(struct session *s, const struct vgpu_msg *m, const void *req, uint8_t *rep)
{
        const struct vgpu_call_info *ci = vgpu_call_info(m->op);
        uint32_t rep_len = 0;
        int r;

        if (!ci || m->len < ci->req_size ||
            (!(ci->flags & VGPU_CALL_VAR) && m->len != ci->req_size)) {
                r = -EPROTO;
        } else {
                uint64_t t0 = s->prof ? chan_now_ns() : 0;

                memset(rep, 0, ci->rep_size);
                r = handlers[m->op](s, req, m->len, rep, &rep_len);
                if (s->prof) {
                        s->prof->calls[m->op]++;
                        s->prof->ns[m->op] += chan_now_ns() - t0;
                }
        }
        if (r < 0 && ci && !(ci->flags & VGPU_CALL_SYNC))
                record_async_error(s, req, m->len, r);
        if (r == 0 && s->ran)
                s->ran(s->ran_ctx, m, req); /* before its completion shows */
        finish(s, m, ci, r, rep, rep_len);
}

/* A slot's backend queue, made on its first use (the session's first queue if that fails). */
static struct backend_queue *stream_queue(struct session *s, uint32_t slot)
{
        struct sstream *st = &s->streams[slot];

        if (!st->q && s->dev->ops->queue_new(s->dev->bdev, &st->q) < 0)
                return s->streams[0].q;
        return st->q;
}

/* Whether slot finished every command up to seq: none of those still waits in its queue. */
static bool slot_reached(const struct session *s, uint32_t slot, uint64_t seq)
{
        const struct scmd *h = s->streams[slot].head;

        return !h || h->m.seq > seq;
}

/*
 * Whether a command at the head of its stream may run now. A host function's wait holds its
 * stream until the guest released it (and, when first reached, tells the guest to run the
 * function); a stream wait holds it until what it waits for is finished. Only earlier commands of
 * other slots count as dependencies, so a guest cannot make a stream wait for itself, nor a
 * cycle; a malformed one runs (and fails) at once.
 */
static bool stream_ready(struct session *s, uint32_t slot, const struct vgpu_msg *m,
                         const void *req)
{
        if (m->op == VGPU_OP_HOST_WAIT && m->len == sizeof(struct vgpu_req_event)) {
                const struct vgpu_req_event *q = req;
                uint32_t *flag, want = VGPU_HOST_QUEUED, idx;

                if (q->slot >= VGPU_HOST_SLOTS)
                        return true;
                flag = &s->v.ctl->host_release[q->slot];
                switch (__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
                case VGPU_HOST_RELEASED:
                        return true;
                case VGPU_HOST_QUEUED:
                        /* The work before it is done once its device work is: the guest may
                         * run the function now. */
                        s->q = stream_queue(s, slot);
                        session_drain_stream(s, session_get_ctx(s, q->ctx, &idx));
                        if (__atomic_compare_exchange_n(flag, &want, VGPU_HOST_REACHED, false,
                                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                                wake_guest(s);
                        return __atomic_load_n(flag, __ATOMIC_ACQUIRE) == VGPU_HOST_RELEASED;
                default:
                        return false;
                }
        }
        if (m->op == VGPU_OP_STREAM_WAIT && m->len >= sizeof(struct vgpu_req_stream_wait)) {
                const struct vgpu_req_stream_wait *q = req;
                const struct vgpu_stream_dep *dep = (const void *)(q + 1);

                if (q->n > VGPU_STREAMS || m->len != sizeof(*q) + q->n * sizeof(*dep))
                        return true;
                for (uint32_t i = 0; i < q->n; i++) {
                        if (dep[i].slot < VGPU_STREAMS && dep[i].slot != slot &&
                            dep[i].seq < m->seq && !slot_reached(s, dep[i].slot, dep[i].seq))
                                return false;
                }
        }
        return true;
}

/* Whether a host function the engine holds a stream for was released meanwhile. */
static bool host_released(const struct session *s)
{
        for (uint64_t a = s->active; a; a &= a - 1) {
                const struct scmd *h = s->streams[__builtin_ctzll(a)].head;
                const struct vgpu_req_event *q = (const void *)h->req;

                if (h->m.op == VGPU_OP_HOST_WAIT && h->m.len == sizeof(*q) &&
                    q->slot < VGPU_HOST_SLOTS &&
                    __atomic_load_n(&s->v.ctl->host_release[q->slot], __ATOMIC_ACQUIRE) ==
                            VGPU_HOST_RELEASED)
                        return true;
        }
        return false;
}

/* Room to take more commands from the ring. */
static bool can_take(const struct session *s)
{
        return s->n_queued < QUEUED_MAX && s->queued_bytes < QUEUED_BYTES_MAX;
}

/*
 * A command taken from the ring: a synchronous call runs now (it waits for no stream: the guest
 * waited for what it needs first); an asynchronous one runs now when its stream has nothing
 * queued and may go on, else it joins its stream's queue. Returns 0, or -ENOMEM.
 */
static int take(struct session *s, const struct vgpu_msg *m, const uint8_t *req, uint8_t *rep)
{
        const struct vgpu_call_info *ci = vgpu_call_info(m->op);
        struct sstream *st;
        struct scmd *c;

        if (!ci || (ci->flags & VGPU_CALL_SYNC)) {
                run_cmd(s, m, req, rep);
                return 0;
        }
        if (m->stream >= VGPU_STREAMS) {
                record_async_error(s, req, m->len, -EPROTO);
                finish(s, m, ci, -EPROTO, rep, 0);
                return 0;
        }
        st = &s->streams[m->stream];
        if (!st->head && stream_ready(s, m->stream, m, req)) {
                s->q = stream_queue(s, m->stream);
                run_cmd(s, m, req, rep);
                return 0;
        }
        c = malloc(sizeof(*c) + m->len);
        if (!c)
                return -ENOMEM;
        c->next = NULL;
        c->m = *m;
        memcpy(c->req, req, m->len);
        if (st->tail)
                st->tail->next = c;
        else
                st->head = c;
        st->tail = c;
        s->active |= UINT64_C(1) << m->stream;
        s->n_queued++;
        s->queued_bytes += m->len;
        return 0;
}

/* Run the head of one stream that may go on, round-robin over the streams. Whether one ran. */
static bool run_one(struct session *s, uint8_t *rep)
{
        for (uint32_t i = 0; s->active && i < VGPU_STREAMS; i++) {
                uint32_t slot = (s->next_slot + i) % VGPU_STREAMS;
                struct sstream *st = &s->streams[slot];
                struct scmd *c = st->head;

                if (!c || !stream_ready(s, slot, &c->m, c->req))
                        continue;
                st->head = c->next;
                if (!st->head) {
                        st->tail = NULL;
                        s->active &= ~(UINT64_C(1) << slot);
                }
                s->n_queued--;
                s->queued_bytes -= c->m.len;
                s->q = stream_queue(s, slot);
                run_cmd(s, &c->m, c->req, rep);
                free(c);
                s->next_slot = slot + 1;
                return true;
        }
        return false;
}

/* Wait until the guest pushes more (when there is room to take it) or releases a held stream,
 * spinning briefly first; returns when stop or pause is set too. */
static void wait_for_work(struct session *s, bool take_more)
{
        struct vgpu_chan_ctl *ctl = s->v.ctl;
        uint64_t until = chan_now_ns() + SPIN_NS;
        uint32_t val;

        while (chan_now_ns() < until) {
                if ((take_more && __atomic_load_n(&ctl->head, __ATOMIC_ACQUIRE) != ctl->tail) ||
                    s->stop || session_pausing(s) || host_released(s))
                        return;
                __builtin_ia32_pause();
        }
        /* Idle past the spin: a grant nobody else waits for goes back (best effort's
         * work conservation); a guest between two launches keeps it. */
        session_gate_idle(s);
        val = __atomic_load_n(&ctl->head_futex, __ATOMIC_SEQ_CST);
        __atomic_store_n(&ctl->engine_sleeping, 1, __ATOMIC_SEQ_CST);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if ((!take_more || __atomic_load_n(&ctl->head, __ATOMIC_ACQUIRE) == ctl->tail) &&
            !s->stop && !session_pausing(s) && !host_released(s))
                chan_futex_wait(&ctl->head_futex, val, 200);
        __atomic_store_n(&ctl->engine_sleeping, 0, __ATOMIC_SEQ_CST);
}

/*
 * The session's thread: take commands from the ring into their streams and run whichever stream
 * may go on. A stream held by a host function or a wait holds only itself. A pause parks once
 * nothing can go on: every command queued before it finished or is held.
 */
static void *session_main(void *arg)
{
        struct session *s = arg;
        uint8_t *buf = malloc(MSG_CAP);
        uint8_t *rep = malloc(s->v.reply_size);

        if (getenv("VGPU_ENGINE_PROFILE"))
                s->prof = calloc(1, sizeof(*s->prof));
        if (s->prof)
                s->prof->start = chan_now_ns();

        while (buf && rep && !s->stop) {
                bool more = can_take(s);
                struct vgpu_msg m;
                int r;

                if (session_pausing(s) && chan_now_ns() - s->pause_ns > DRAIN_NS) {
                        /* a deep queue: the rest waits, in order, for the resume */
                        park(s);
                        continue;
                }
                r = more ? chan_pop(&s->v, &m, buf, MSG_CAP) : 0;
                if (r > 0 && m.seq <= s->last_seq)
                        r = -EPROTO; /* sequence numbers only grow */
                if (r < 0) {
                        vgpu_log(VGPU_LOG_WARN,
                                 "guest %d: corrupt command ring; closing its channel",
                                 (int)s->pid);
                        break;
                }
                if (r > 0) {
                        s->last_seq = m.seq;
                        if (take(s, &m, buf, rep) < 0) {
                                vgpu_log(VGPU_LOG_WARN,
                                         "guest %d: out of memory for its queued commands; "
                                         "closing its channel",
                                         (int)s->pid);
                                break;
                        }
                        /* between two new commands, a queued stream goes on too */
                        run_one(s, rep);
                        continue;
                }
                if (run_one(s, rep))
                        continue;
                if (more && session_pausing(s) && guest_pushing(s)) {
                        __builtin_ia32_pause(); /* a call on its way in: take it first */
                        continue;
                }
                if (session_pausing(s)) {
                        /* what the guest queued before the suspend is done or held: a clean
                         * point */
                        park(s);
                        continue;
                }
                {
                        uint64_t t0 = s->prof ? chan_now_ns() : 0;

                        wait_for_work(s, more);
                        if (s->prof)
                                s->prof->waiting += chan_now_ns() - t0;
                }
        }
        /* a guest gone mid-slice: the grant goes back now, unless the vGPU's others use it */
        session_gate_idle(s);
        __atomic_store_n(&s->v.ctl->engine_dead, 1, __ATOMIC_RELEASE);
        __atomic_add_fetch(&s->v.ctl->done_futex, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&s->v.ctl->done_futex);
        pthread_mutex_lock(&s->pause_lock);
        s->exited = true;
        pthread_cond_broadcast(&s->pause_cond);
        pthread_mutex_unlock(&s->pause_lock);
        if (s->prof)
                profile_report(s, s->prof);
        free(buf);
        free(rep);
        return NULL;
}

int session_new(struct vgpu_dev *dev, uint32_t id, pid_t pid, uid_t uid, struct session **ret,
                int *ret_fd)
{
        struct session *s;
        int r = session_create(dev, id, pid, uid, &s);

        if (r < 0)
                return r;
        r = session_start(s);
        if (r < 0) {
                session_free(s);
                return r;
        }
        *ret = s;
        *ret_fd = s->fd;
        return 0;
}

int session_start(struct session *s)
{
        struct vgpu_chan_ctl *ctl = s->v.ctl;
        int r;

        /* a session a migration built: its guest copied its old channel in, which says
         * "suspended, moved"; now it runs here (unless this engine paused it meanwhile) */
        __atomic_store_n(&ctl->moved, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&ctl->engine_dead, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&ctl->suspended, s->pause ? 1u : 0u, __ATOMIC_SEQ_CST);
        s->parked = false;
        r = -pthread_create(&s->thread, NULL, session_main, s);
        if (r < 0) {
                s->parked = true;
                return r;
        }
        s->started = true;
        chan_futex_wake(&ctl->suspended);
        return 0;
}

int session_create(struct vgpu_dev *dev, uint32_t id, pid_t pid, uid_t uid, struct session **ret)
{
        uint64_t size = chan_total_size();
        struct session *s = calloc(1, sizeof(*s));
        void *base;
        int r;

        if (!s)
                return -ENOMEM;
        s->dev = dev;
        s->id = id;
        {
                pthread_condattr_t ca;

                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                pthread_cond_init(&s->host_cond, &ca);
                pthread_condattr_destroy(&ca);
        }
        pthread_mutex_init(&s->host_lock, NULL);
        pthread_mutex_init(&s->pause_lock, NULL);
        {
                pthread_condattr_t ca;

                /* session_pause's deadline is on CLOCK_MONOTONIC (chan_now_ns) */
                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                pthread_cond_init(&s->pause_cond, &ca);
                pthread_condattr_destroy(&ca);
        }
        s->pid = pid;
        s->uid = uid;
        s->fd = memfd_create("vgpu-channel", MFD_CLOEXEC);
        if (s->fd < 0) {
                r = -errno;
                goto err_free;
        }
        if (ftruncate(s->fd, (off_t)size) < 0) {
                r = -errno;
                goto err_close;
        }
        base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
        if (base == MAP_FAILED) {
                r = -errno;
                goto err_close;
        }
        chan_layout(base, size, &s->v);
        r = dev->ops->queue_new(dev->bdev, &s->streams[0].q);
        if (r < 0)
                goto err_unmap;
        s->q = s->streams[0].q;
        /* Copies go through the staging area: let the GPU reach it directly where it can. */
        s->stage_registered =
                dev->ops->host_register(dev->bdev, s->v.stage, (size_t)s->v.stage_size) == 0;
        s->parked = true; /* no thread yet: nothing to stop */
        *ret = s;
        return 0;

err_unmap:
        munmap(base, size);
err_close:
        close(s->fd);
err_free:
        free(s);
        return r;
}

void session_free(struct session *s)
{
        if (!s)
                return;
        s->stop = 1;
        s->cancel = 1;
        pthread_mutex_lock(&s->host_lock);
        pthread_cond_broadcast(&s->host_cond);
        pthread_mutex_unlock(&s->host_lock);
        pthread_mutex_lock(&s->pause_lock);
        pthread_cond_broadcast(&s->pause_cond);
        pthread_mutex_unlock(&s->pause_lock);
        __atomic_add_fetch(&s->v.ctl->head_futex, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&s->v.ctl->head_futex);
        if (s->started)
                pthread_join(s->thread, NULL);
        for (uint32_t i = 0; i < 64; i++) {
                if (s->ctxs[i].live)
                        session_free_ctx(s, i);
        }
        session_dev_free_owner(s->dev, (uint64_t)s->id << 32, ~UINT64_C(0) << 32);
        for (uint32_t i = 0; i < VGPU_STREAMS; i++) {
                struct scmd *c = s->streams[i].head;

                while (c) {
                        struct scmd *next = c->next;

                        free(c);
                        c = next;
                }
                s->dev->ops->queue_free(s->streams[i].q);
        }
        free(s->prof);
        if (s->stage_registered)
                s->dev->ops->host_unregister(s->dev->bdev, s->v.stage);
        for (uint32_t i = 0; i < s->n_hosts; i++)
                session_host_release(s, &s->hosts[i]);
        free(s->hosts);
        pthread_cond_destroy(&s->host_cond);
        pthread_mutex_destroy(&s->host_lock);
        pthread_cond_destroy(&s->pause_cond);
        pthread_mutex_destroy(&s->pause_lock);
        free(s->mods);
        for (uint32_t i = 0; i < s->n_funcs; i++)
                free(s->funcs[i].name);
        free(s->funcs);
        munmap(s->v.base, s->v.size);
        close(s->fd);
        free(s);
}

uint64_t session_pause_limit_ns(void)
{
        static uint64_t ns;
        uint64_t v = __atomic_load_n(&ns, __ATOMIC_RELAXED);

        if (!v) {
                const char *env = getenv("VGPU_ENGINE_PAUSE_MS");
                long ms = env ? atol(env) : 0;

                v = (uint64_t)(ms > 0 ? ms : SESSION_PAUSE_MS) * 1000000ull;
                __atomic_store_n(&ns, v, __ATOMIC_RELAXED);
        }
        return v;
}

int session_pause(struct session *s, uint64_t deadline_ns)
{
        struct vgpu_chan_ctl *ctl = s->v.ctl;
        int r = 0;

        pthread_mutex_lock(&s->pause_lock);
        __atomic_store_n(&ctl->suspended, 1, __ATOMIC_SEQ_CST);
        s->pause_ns = chan_now_ns();
        __atomic_store_n(&s->pause, 1, __ATOMIC_SEQ_CST);
        /* wherever the thread waits, it wakes to park */
        __atomic_add_fetch(&ctl->head_futex, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&ctl->head_futex);
        if (s->dev->sched)
                chan_futex_wake(&s->dev->sched->grant);
        for (uint32_t i = 0; i < VGPU_HOST_SLOTS; i++)
                chan_futex_wake(&ctl->host_release[i]);
        while (s->started && !s->parked && !s->exited) {
                uint64_t now = chan_now_ns();
                struct timespec ts;

                if (now >= deadline_ns) {
                        r = -ETIMEDOUT; /* a command that does not end: still asked to park */
                        break;
                }
                ts.tv_sec = (time_t)(deadline_ns / 1000000000ull);
                ts.tv_nsec = (long)(deadline_ns % 1000000000ull);
                pthread_cond_timedwait(&s->pause_cond, &s->pause_lock, &ts);
        }
        pthread_mutex_unlock(&s->pause_lock);
        return r;
}

void session_unpause(struct session *s)
{
        struct vgpu_chan_ctl *ctl = s->v.ctl;

        /* where to find the vGPU again was for while it is suspended (session_note_home) */
        ctl->moved_to[0] = '\0';
        pthread_mutex_lock(&s->pause_lock);
        __atomic_store_n(&s->pause, 0, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&s->pause_cond);
        pthread_mutex_unlock(&s->pause_lock);
        __atomic_store_n(&ctl->suspended, 0, __ATOMIC_RELEASE);
        chan_futex_wake(&ctl->suspended);
}

void session_mark_moved(struct session *s, const char *to)
{
        struct vgpu_chan_ctl *ctl = s->v.ctl;

        memcpy(ctl->moved_token, s->token, sizeof(ctl->moved_token));
        snprintf(ctl->moved_to, sizeof(ctl->moved_to), "%s", to);
        __atomic_store_n(&ctl->moved, 1, __ATOMIC_SEQ_CST);
        /* guests waiting for the resume look again */
        chan_futex_wake(&ctl->suspended);
}

void session_note_home(struct session *s, const char *to)
{
        struct vgpu_chan_ctl *ctl = s->v.ctl;

        memcpy(ctl->moved_token, s->token, sizeof(ctl->moved_token));
        snprintf(ctl->moved_to, sizeof(ctl->moved_to), "%s", to);
}

bool session_token_is(const struct session *s, const uint8_t token[16])
{
        uint8_t d = 0;

        for (size_t i = 0; i < sizeof(s->token); i++)
                d |= (uint8_t)(s->token[i] ^ token[i]);
        return d == 0 && !s->started;
}

struct chan_view *session_view(struct session *s)
{
        return &s->v;
}

void session_set_ran(struct session *s,
                     void (*ran)(void *ctx, const struct vgpu_msg *m, const void *req), void *ctx)
{
        s->ran_ctx = ctx;
        s->ran = ran;
}

void session_token(const struct session *s, uint8_t token[16])
{
        memcpy(token, s->token, sizeof(s->token));
}

int session_fd(const struct session *s)
{
        return s->fd;
}

uint32_t session_id(const struct session *s)
{
        return s->id;
}

bool session_started(const struct session *s)
{
        return s->started;
}

void session_mark_suspended(struct session *s, bool on)
{
        __atomic_store_n(&s->v.ctl->suspended, on ? 1u : 0u, __ATOMIC_SEQ_CST);
        if (!on)
                chan_futex_wake(&s->v.ctl->suspended);
}
