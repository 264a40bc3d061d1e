// SPDX-License-Identifier: Apache-2.0
// vgpud's scheduler threads. Each run queue (a GPU, or a GPU instance with time-sliced vGPUs) has
// a thread that, slice after slice, asks the policy (core/sched.c) who runs, grants that vGPU's
// engine a slice through its page, waits until the engine yields (slice used up, or no more
// work), and charges what it used. Idle turns (equal and fixed share) last as long in wall time
// as a busy slice of the same length took lately, so that unused time is really not given away.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/chan.h"
#include "common/log.h"
#include "common/schedpage.h"
#include "manager/scheduler.h"

#define MAX_RQS      9            /* the whole GPU and up to 8 GPU instances */
#define POLL_MS      1            /* how often an idle best-effort queue looks for work */
#define SETTLE_NS    200000ull    /* how long a yielding engine has to ask again */
#define STALE_NS     200000000ull /* an unused grant is taken back after this */
#define THROTTLE     20           /* a throttled vGPU's slices are 1/THROTTLE long */
#define MIN_SLICE_NS 50000ull
#define UTIL_WINDOW  250000000ull /* util_pct over about this much clock */
#define BEAT_NS      50000000ull  /* the longest a queue goes without beating its pages */

/* A gated vGPU: its page and counters. Freed by whoever drops the last reference. */
struct sent {
        uint32_t handle;
        struct vgpu_sched_page *page;
        int refs;
        bool gone;
        bool throttled; /* licensing: a minimal share */
        bool lazy;      /* gate only when there is something to share (a GPU's costly gate) */
        uint64_t slices, overruns;
        /* util: charged and clock at the start of the current window */
        uint64_t win_charged, win_clock, last_charged, last_clock;
        double util_pct;
        uint64_t windows; /* whole windows measured */
};

struct srq {
        struct scheduler *s;
        uint32_t gpu, gi;
        bool used, thread_started, stop;
        pthread_t thread;
        struct sched_rq rq;
        struct sent *ents[SCHED_MAX]; /* parallel to rq.e by id */
        double wall_per_ns;           /* recent wall ns per accounted ns of busy slices */
};

struct sgpu {
        enum sched_policy policy;
        uint32_t slice_ms;
        struct srq rqs[MAX_RQS];
};

struct scheduler {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        size_t n_gpus;
        struct sgpu *gpus;
};

static void put_ent(struct sent *e)
{
        if (--e->refs > 0)
                return;
        munmap(e->page, VGPU_SCHED_SIZE);
        free(e);
}

static struct sent *ent_of(struct srq *q, uint32_t id)
{
        for (size_t i = 0; i < SCHED_MAX; i++) {
                if (q->ents[i] && q->ents[i]->handle == id)
                        return q->ents[i];
        }
        return NULL;
}

static int index_of(const struct sched_rq *rq, uint32_t id)
{
        for (size_t i = 0; i < rq->n; i++) {
                if (rq->e[i].id == id)
                        return (int)i;
        }
        return -1;
}

/* Whether process pid lives (one vgpud may not signal still counts as alive). */
static bool alive(int32_t pid)
{
        return pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH);
}

/*
 * What a page counts (busy: launches running; else: sessions waiting for a grant): the shared
 * count, and those of the slots whose process lives. A process that died between raising its
 * count and lowering it does not make the vGPU look busy for ever.
 */
static uint32_t page_count(const struct vgpu_sched_page *p, bool busy)
{
        uint32_t n = __atomic_load_n(busy ? &p->busy : &p->waiting, __ATOMIC_ACQUIRE);

        for (size_t i = 0; i < VGPU_SCHED_SLOTS; i++) {
                const struct vgpu_sched_slot *sl = &p->slots[i];
                uint32_t c = __atomic_load_n(busy ? &sl->busy : &sl->waiting, __ATOMIC_ACQUIRE);

                if (c && alive(__atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE)))
                        n += c;
        }
        return n;
}

/*
 * Gating is needed only when there is something to share: a lazy vGPU (the cuda backend's, whose
 * gate times every launch on the GPU) alone on its GPU under best effort runs ungated.
 */
static bool needs_gate(const struct srq *q, const struct sent *e)
{
        return !e->lazy || q->rq.n > 1 || q->rq.policy != SCHED_BEST_EFFORT || e->throttled;
}

static void beat(struct srq *q)
{
        uint64_t now = chan_now_ns();

        for (size_t i = 0; i < SCHED_MAX; i++) {
                struct sent *e = q->ents[i];

                if (!e)
                        continue;
                __atomic_store_n(&e->page->heartbeat_ns, now, __ATOMIC_RELEASE);
                if (__atomic_load_n(&e->page->gated, __ATOMIC_ACQUIRE) != needs_gate(q, e)) {
                        __atomic_store_n(&e->page->gated, needs_gate(q, e), __ATOMIC_RELEASE);
                        chan_futex_wake(&e->page->grant);
                }
        }
}

/* Refresh the vGPUs' share of the clock once a window's worth of clock has passed. */
static void account(struct srq *q)
{
        for (size_t i = 0; i < q->rq.n; i++) {
                struct sent *e = ent_of(q, q->rq.e[i].id);
                uint64_t dc;

                if (!e)
                        continue;
                e->last_charged = q->rq.e[i].charged_ns;
                e->last_clock = q->rq.clock_ns;
                dc = e->last_clock - e->win_clock;
                if (!e->windows && dc)
                        /* until a whole window has passed, what there is of the first */
                        e->util_pct =
                                100.0 * (double)(e->last_charged - e->win_charged) / (double)dc;
                if (dc >= UTIL_WINDOW) {
                        e->windows++;
                        e->util_pct =
                                100.0 * (double)(e->last_charged - e->win_charged) / (double)dc;
                        e->win_charged = e->last_charged;
                        e->win_clock = e->last_clock;
                }
        }
}

static void sleep_ns(uint64_t ns)
{
        struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
                              .tv_nsec = (long)(ns % 1000000000ull)};

        nanosleep(&ts, NULL);
}

/*
 * Let ns of wall time pass (an idle turn), beating q's pages at least every BEAT_NS so that its
 * engines do not take vgpud for gone; ends early when q stops. Locked; sleeps unlocked.
 */
static void idle_sleep(struct srq *q, uint64_t ns)
{
        uint64_t end = chan_now_ns() + ns;

        for (;;) {
                uint64_t now = chan_now_ns();

                if (now >= end || __atomic_load_n(&q->stop, __ATOMIC_ACQUIRE))
                        return;
                pthread_mutex_unlock(&q->s->lock);
                sleep_ns(end - now < BEAT_NS ? end - now : BEAT_NS);
                pthread_mutex_lock(&q->s->lock);
                beat(q);
        }
}

/*
 * Grant e one slice and wait until its engine gives it back; what it used. Unlocked. The grant
 * ends on the page even when e was detached meanwhile: scheduler_detach waits for that before
 * it lets the page go, so that a queue the vGPU moved to never has its grant ended by this one.
 */
static uint64_t run_slice(struct srq *q, struct sent *e, uint64_t slice_ns)
{
        struct vgpu_sched_page *p = e->page;
        uint64_t seq = __atomic_load_n(&p->grant_seq, __ATOMIC_ACQUIRE) + 1;

        __atomic_store_n(&p->slice_ns, slice_ns, __ATOMIC_RELEASE);
        __atomic_store_n(&p->slice_used_ns, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&p->grant_seq, seq, __ATOMIC_RELEASE);
        /* a value of this grant's: an engine that read the last one does not sleep through it */
        __atomic_store_n(&p->grant, (uint32_t)seq ? (uint32_t)seq : 1u, __ATOMIC_SEQ_CST);
        chan_futex_wake(&p->grant);
        uint64_t launches = __atomic_load_n(&p->launches, __ATOMIC_ACQUIRE);
        uint64_t changed = chan_now_ns();

        for (;;) {
                /* yielded before yield_seq: a yield between the two wakes the wait below */
                uint32_t y = __atomic_load_n(&p->yielded, __ATOMIC_ACQUIRE);
                uint64_t l;
                bool gone;

                if (__atomic_load_n(&p->yield_seq, __ATOMIC_ACQUIRE) == seq)
                        break;

                pthread_mutex_lock(&q->s->lock); /* q's entries change under it */
                beat(q);
                gone = e->gone;
                pthread_mutex_unlock(&q->s->lock);
                if (__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE) || gone)
                        break;
                chan_futex_wait(&p->yielded, y, 50);
                l = __atomic_load_n(&p->launches, __ATOMIC_ACQUIRE);
                if (l != launches) {
                        launches = l;
                        changed = chan_now_ns();
                }
                /* A grant nobody uses (its guest went away meanwhile) is taken back. */
                if (chan_now_ns() - changed > STALE_NS && !page_count(p, false) &&
                    !page_count(p, true))
                        break;
        }
        __atomic_store_n(&p->grant, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&p->yield_seq, seq, __ATOMIC_RELEASE);
        return __atomic_load_n(&p->slice_used_ns, __ATOMIC_ACQUIRE);
}

static void *rq_main(void *arg)
{
        struct srq *q = arg;
        struct scheduler *s = q->s;
        bool settle = false; /* a slice just ended */

        pthread_mutex_lock(&s->lock);
        while (!q->stop) {
                struct sent *e = NULL;
                uint64_t slice_ns = q->rq.slice_ns, used, t0, idle_wall;
                int idx;

                beat(q);
                if (q->rq.n == 0) {
                        pthread_mutex_unlock(&s->lock);
                        sleep_ns(POLL_MS * 1000000ull);
                        pthread_mutex_lock(&s->lock);
                        continue;
                }
                /*
                 * An engine that just yielded a used-up slice is a few microseconds from asking
                 * again: give the queue that long to show its work before calling it idle.
                 */
                for (uint64_t until = chan_now_ns() + SETTLE_NS;;) {
                        bool any = false;

                        for (size_t i = 0; i < q->rq.n; i++) {
                                struct sent *x = ent_of(q, q->rq.e[i].id);

                                q->rq.e[i].has_work = x && page_count(x->page, false) > 0;
                                any = any || q->rq.e[i].has_work;
                        }
                        if (any || chan_now_ns() >= until || !settle)
                                break;
                        pthread_mutex_unlock(&s->lock);
                        sched_yield();
                        pthread_mutex_lock(&s->lock);
                }
                settle = false;
                idx = sched_pick(&q->rq);
                if (idx >= 0 && q->rq.e[idx].has_work)
                        e = ent_of(q, q->rq.e[idx].id);
                if (!e) {
                        bool anyone = false;

                        for (size_t i = 0; i < q->rq.n; i++)
                                anyone = anyone || q->rq.e[i].has_work;
                        if (q->rq.policy == SCHED_BEST_EFFORT || !anyone) {
                                /* Nobody to run: the GPU idles, and no turn passes. */
                                pthread_mutex_unlock(&s->lock);
                                sleep_ns(POLL_MS * 1000000ull);
                                pthread_mutex_lock(&s->lock);
                                continue;
                        }
                        /* An idle turn: as long as a busy slice takes, then charged as idle. */
                        idle_sleep(q, (uint64_t)((double)slice_ns * q->wall_per_ns));
                        sched_charge(&q->rq, idx, 0);
                        account(q);
                        continue;
                }
                e->refs++;
                if (e->throttled)
                        slice_ns = slice_ns / THROTTLE > MIN_SLICE_NS ? slice_ns / THROTTLE
                                                                      : MIN_SLICE_NS;
                pthread_mutex_unlock(&s->lock);
                t0 = chan_now_ns();
                used = run_slice(q, e, slice_ns);
                t0 = chan_now_ns() - t0;
                pthread_mutex_lock(&s->lock);
                idle_wall = 0;
                if (!e->gone && (idx = index_of(&q->rq, e->handle)) >= 0) {
                        bool others = false;

                        /* who has work now (the flags of the pick are a slice old) */
                        for (size_t i = 0; i < q->rq.n; i++) {
                                struct sent *x = (int)i != idx ? ent_of(q, q->rq.e[i].id) : NULL;

                                others = others || (x && (page_count(x->page, false) ||
                                                          page_count(x->page, true)));
                        }
                        sched_charge(&q->rq, idx, used);
                        if (e->throttled) {
                                /* Its turns count THROTTLE times: the others run that much
                                 * more often (the policy's virtual time, core/sched.h). */
                                uint64_t d = used * (THROTTLE - 1);

                                if (q->rq.policy == SCHED_FIXED_SHARE)
                                        d *= q->rq.e[idx].share_slots;
                                q->rq.e[idx].vtime += d;
                        }
                        if (e->throttled && !others) {
                                /* Nobody else to run: the GPU idles rather than serve it. */
                                uint64_t idle = used * (THROTTLE - 1);

                                q->rq.clock_ns += idle;
                                q->rq.idle_ns += idle;
                                idle_wall = (uint64_t)((double)idle * q->wall_per_ns);
                        }
                        e->slices++;
                        e->overruns += used > slice_ns;
                        if (used > slice_ns / 4)
                                q->wall_per_ns =
                                        0.8 * q->wall_per_ns + 0.2 * (double)t0 / (double)used;
                        if (q->wall_per_ns > 100.0)
                                q->wall_per_ns = 100.0;
                        account(q);
                }
                put_ent(e);
                pthread_cond_broadcast(&s->cond); /* a detach may wait for e's slice to end */
                /* a throttled vGPU's idle time, with e let go: a detach need not wait it out */
                idle_sleep(q, idle_wall);
                settle = true;
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

int scheduler_new(size_t n_gpus, struct scheduler **ret)
{
        struct scheduler *s = calloc(1, sizeof(*s));

        if (!s || !(s->gpus = calloc(n_gpus ? n_gpus : 1, sizeof(*s->gpus)))) {
                free(s);
                return -ENOMEM;
        }
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        s->n_gpus = n_gpus;
        for (size_t g = 0; g < n_gpus; g++) {
                s->gpus[g].policy = SCHED_BEST_EFFORT;
                s->gpus[g].slice_ms = 0; /* the types' default, until set */
        }
        *ret = s;
        return 0;
}

void scheduler_free(struct scheduler *s)
{
        if (!s)
                return;
        pthread_mutex_lock(&s->lock);
        for (size_t g = 0; g < s->n_gpus; g++) {
                for (size_t r = 0; r < MAX_RQS; r++)
                        __atomic_store_n(&s->gpus[g].rqs[r].stop, true, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&s->lock);
        for (size_t g = 0; g < s->n_gpus; g++) {
                for (size_t r = 0; r < MAX_RQS; r++) {
                        struct srq *q = &s->gpus[g].rqs[r];

                        if (q->thread_started)
                                pthread_join(q->thread, NULL);
                        for (size_t i = 0; i < SCHED_MAX; i++) {
                                if (!q->ents[i])
                                        continue;
                                /* Without vgpud the engines run freely. */
                                __atomic_store_n(&q->ents[i]->page->gated, 0, __ATOMIC_RELEASE);
                                __atomic_store_n(&q->ents[i]->page->grant, 0, __ATOMIC_RELEASE);
                                chan_futex_wake(&q->ents[i]->page->grant);
                                put_ent(q->ents[i]);
                        }
                }
        }
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s->gpus);
        free(s);
}

int scheduler_page_create(const char *path)
{
        struct vgpu_sched_page page = {.magic = VGPU_SCHED_MAGIC, .version = VGPU_SCHED_VERSION};
        char buf[VGPU_SCHED_SIZE] = {0}, tmp[4096];
        int fd, r = 0;

        /*
         * A new file, renamed into place whole: whoever still maps the old one (a dead engine's
         * worker on its way out) keeps writing there, and a crash leaves no short page behind.
         */
        if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        memcpy(buf, &page, sizeof(page));
        if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
                r = -EIO;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

static uint64_t slice_ns_of(const struct sgpu *g, uint32_t share_slots)
{
        uint32_t ms = g->slice_ms ? g->slice_ms : sched_default_slice_ms(share_slots);

        return (uint64_t)ms * 1000000ull;
}

static struct srq *rq_for(struct sgpu *g, uint32_t gi, bool create)
{
        struct srq *free_q = NULL;

        for (size_t r = 0; r < MAX_RQS; r++) {
                if (g->rqs[r].used && g->rqs[r].gi == gi)
                        return &g->rqs[r];
                if (!g->rqs[r].used && !g->rqs[r].thread_started && !free_q)
                        free_q = &g->rqs[r];
        }
        return create ? free_q : NULL;
}

/*
 * Take entry i off q and ungate its page. A slice of it that q's thread runs now ends first
 * (run_slice sees it gone at once): only then is the page free for the queue it goes to next.
 * Locked; waits unlocked.
 */
static void drop_locked(struct scheduler *s, struct srq *q, size_t i)
{
        struct sent *e = q->ents[i];

        q->ents[i] = NULL;
        sched_rq_remove(&q->rq, e->handle);
        e->gone = true;
        chan_futex_wake(&e->page->yielded);
        while (e->refs > 1)
                pthread_cond_wait(&s->cond, &s->lock);
        __atomic_store_n(&e->page->gated, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&e->page->grant, 0, __ATOMIC_RELEASE);
        chan_futex_wake(&e->page->grant);
        put_ent(e);
}

/* Where vGPU handle is gated now, on any GPU: its queue and slot; false when nowhere. Locked. */
static bool find_locked(struct scheduler *s, uint32_t handle, struct srq **ret_q, size_t *ret_i)
{
        for (size_t g = 0; g < s->n_gpus; g++) {
                for (size_t r = 0; r < MAX_RQS; r++) {
                        struct srq *q = &s->gpus[g].rqs[r];

                        for (size_t i = 0; q->used && i < SCHED_MAX; i++) {
                                if (q->ents[i] && q->ents[i]->handle == handle) {
                                        *ret_q = q;
                                        *ret_i = i;
                                        return true;
                                }
                        }
                }
        }
        return false;
}

int scheduler_attach(struct scheduler *s, uint32_t gpu, uint32_t gi, uint32_t handle,
                     const char *path, uint32_t share_slots, bool lazy)
{
        struct vgpu_sched_page *p;
        struct sent *e;
        struct srq *q, *oq;
        size_t oi;
        int slot = -1, r;

        if (gpu >= s->n_gpus)
                return -ENODEV;
        r = vgpu_sched_page_map(path, &p);
        if (r < 0)
                return r;
        e = calloc(1, sizeof(*e));
        if (!e) {
                munmap(p, VGPU_SCHED_SIZE);
                return -ENOMEM;
        }
        *e = (struct sent){.handle = handle, .page = p, .refs = 1, .lazy = lazy};
        pthread_mutex_lock(&s->lock);
        /* one queue grants a vGPU's page, never two: attached elsewhere, it moves here */
        while (find_locked(s, handle, &oq, &oi))
                drop_locked(s, oq, oi);
        /* a grant a vgpud that died left on the page (no scheduler ends it now) is over */
        if (__atomic_load_n(&e->page->grant, __ATOMIC_ACQUIRE)) {
                __atomic_store_n(&e->page->grant, 0, __ATOMIC_SEQ_CST);
                __atomic_store_n(&e->page->yield_seq,
                                 __atomic_load_n(&e->page->grant_seq, __ATOMIC_ACQUIRE),
                                 __ATOMIC_RELEASE);
        }
        q = rq_for(&s->gpus[gpu], gi, true);
        if (q && !q->used) {
                q->used = true;
                q->s = s;
                q->gpu = gpu;
                q->gi = gi;
                q->wall_per_ns = 1.0;
                sched_rq_init(&q->rq, s->gpus[gpu].policy, slice_ns_of(&s->gpus[gpu], share_slots));
        }
        for (int i = 0; q && i < SCHED_MAX && slot < 0; i++) {
                if (!q->ents[i])
                        slot = i;
        }
        r = !q || slot < 0 ? -ENOSPC : sched_rq_add(&q->rq, handle, share_slots);
        if (r == 0 && !s->gpus[gpu].slice_ms)
                q->rq.slice_ns = slice_ns_of(&s->gpus[gpu], share_slots);
        if (r == 0 && !q->thread_started) {
                r = -pthread_create(&q->thread, NULL, rq_main, q);
                q->thread_started = r == 0;
                if (r < 0)
                        sched_rq_remove(&q->rq, handle);
        }
        if (r == 0) {
                q->ents[slot] = e;
                e->win_clock = e->last_clock = q->rq.clock_ns;
                __atomic_store_n(&e->page->heartbeat_ns, chan_now_ns(), __ATOMIC_RELEASE);
                beat(q);
        }
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                put_ent(e);
        return r;
}

void scheduler_detach(struct scheduler *s, uint32_t gpu, uint32_t handle)
{
        pthread_mutex_lock(&s->lock);
        for (size_t r = 0; gpu < s->n_gpus && r < MAX_RQS; r++) {
                struct srq *q = &s->gpus[gpu].rqs[r];

                for (size_t i = 0; q->used && i < SCHED_MAX; i++) {
                        if (q->ents[i] && q->ents[i]->handle == handle)
                                drop_locked(s, q, i);
                }
        }
        pthread_mutex_unlock(&s->lock);
}

int scheduler_set(struct scheduler *s, uint32_t gpu, enum sched_policy p, uint32_t slice_ms,
                  bool mixed)
{
        uint32_t ms = 0;
        int r = 0;

        if (gpu >= s->n_gpus)
                return -ENODEV;
        if (slice_ms && sched_slice_ms_check(slice_ms, &ms) < 0)
                return -EINVAL;
        if (p == SCHED_FIXED_SHARE && mixed)
                return -EINVAL;
        pthread_mutex_lock(&s->lock);
        s->gpus[gpu].policy = p;
        s->gpus[gpu].slice_ms = ms;
        for (size_t i = 0; i < MAX_RQS; i++) {
                struct srq *q = &s->gpus[gpu].rqs[i];
                uint32_t slots = q->rq.n ? q->rq.e[0].share_slots : 1;

                if (q->used && r == 0)
                        r = sched_rq_set_policy(&q->rq, p, slice_ns_of(&s->gpus[gpu], slots),
                                                mixed);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

void scheduler_get(struct scheduler *s, uint32_t gpu, enum sched_policy *ret_policy,
                   uint32_t *ret_slice_ms, uint64_t *ret_clock_ns, uint64_t *ret_idle_ns)
{
        struct srq *q;

        *ret_policy = SCHED_BEST_EFFORT;
        *ret_slice_ms = 0;
        *ret_clock_ns = *ret_idle_ns = 0;
        if (gpu >= s->n_gpus)
                return;
        pthread_mutex_lock(&s->lock);
        *ret_policy = s->gpus[gpu].policy;
        *ret_slice_ms = s->gpus[gpu].slice_ms;
        q = rq_for(&s->gpus[gpu], 0, false);
        if (q) {
                *ret_clock_ns = q->rq.clock_ns;
                *ret_idle_ns = q->rq.idle_ns;
                if (!*ret_slice_ms)
                        *ret_slice_ms = (uint32_t)(q->rq.slice_ns / 1000000ull);
        }
        pthread_mutex_unlock(&s->lock);
}

void scheduler_throttle(struct scheduler *s, uint32_t gpu, uint32_t handle, bool on)
{
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; gpu < s->n_gpus && i < MAX_RQS; i++) {
                struct srq *q = &s->gpus[gpu].rqs[i];
                struct sent *e = q->used ? ent_of(q, handle) : NULL;

                if (e)
                        e->throttled = on;
        }
        pthread_mutex_unlock(&s->lock);
}

int scheduler_stats(struct scheduler *s, uint32_t gpu, uint32_t handle, struct sched_stats *ret)
{
        int r = -ENOENT;

        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; gpu < s->n_gpus && i < MAX_RQS && r < 0; i++) {
                struct srq *q = &s->gpus[gpu].rqs[i];
                struct sent *e = q->used ? ent_of(q, handle) : NULL;
                int idx = e ? index_of(&q->rq, handle) : -1;

                if (idx < 0)
                        continue;
                *ret = (struct sched_stats){.slices = e->slices,
                                            .overruns = e->overruns,
                                            .charged_ns = q->rq.e[idx].charged_ns,
                                            .idle_ns = q->rq.e[idx].idle_ns,
                                            .clock_ns = q->rq.clock_ns,
                                            .util_pct = e->util_pct};
                r = 0;
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}
