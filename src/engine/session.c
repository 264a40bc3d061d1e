// SPDX-License-Identifier: Apache-2.0
// A guest's session in its engine: the command loop over the shared ring, which sorts the guest's
// asynchronous commands into one in-order queue per stream slot and runs whichever stream can go
// on, and one handler per op of calls.def. Every handle, pointer, size and offset from the guest
// is checked before use; device memory is reached only inside the allocations of the context
// that asks.
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

static int handle_split(uint64_t h, enum obj_kind kind, uint32_t n, uint32_t *ret_idx,
                        uint32_t *ret_gen)
{
        uint32_t idx = (uint32_t)h;

        if ((h >> 56) != kind || idx >= n)
                return -EBADF;
        *ret_idx = idx;
        *ret_gen = (uint32_t)(h >> 32) & 0xffffff;
        return 0;
}

static struct sctx *get_ctx(struct session *s, uint64_t h, uint32_t *ret_idx)
{
        uint32_t idx, gen;

        if (handle_split(h, OBJ_CTX, 64, &idx, &gen) < 0 || !s->ctxs[idx].live ||
            (s->ctxs[idx].gen & 0xffffff) != gen)
                return NULL;
        *ret_idx = idx;
        return &s->ctxs[idx];
}

static struct smod *get_mod(struct session *s, uint64_t h, uint32_t ctx, uint32_t *ret_idx)
{
        uint32_t idx, gen;

        if (handle_split(h, OBJ_MOD, s->n_mods, &idx, &gen) < 0 || !s->mods[idx].live ||
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
static int slot_in(void **table, uint32_t *n, size_t elem)
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

static int dev_alloc(struct vgpu_dev *d, uint64_t size, uint64_t owner, uint64_t *ret_base)
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

static int dev_free(struct vgpu_dev *d, uint64_t base, uint64_t owner)
{
        struct vgpu_alloc_msg m = {.op = VGPU_ALLOC_FREE, .a = base, .b = owner};
        int r = fbmem_free(&d->mem, base, owner);

        if (r == 0 && d->remote_alloc)
                alloc_rpc(d, &m);
        return r;
}

static void dev_free_owner(struct vgpu_dev *d, uint64_t want, uint64_t mask)
{
        struct vgpu_alloc_msg m = {.op = VGPU_ALLOC_FREE_OWNER, .a = want, .b = mask};

        fbmem_free_owner(&d->mem, want, mask);
        if (d->remote_alloc)
                alloc_rpc(d, &m);
}

static uint64_t dev_free_bytes(struct vgpu_dev *d)
{
        struct vgpu_alloc_msg m = {.op = VGPU_ALLOC_INFO};

        if (!d->remote_alloc || alloc_rpc(d, &m) < 0)
                return fbmem_free_bytes(&d->mem);
        return m.a;
}

/* ---- suspend ------------------------------------------------------------------------------ */

static bool pausing(const struct session *s)
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
static void gate_release(struct session *s);

static int queues_sync(struct session *s);

static void park(struct session *s)
{
        int r = queues_sync(s);

        gate_release(s); /* a parked vGPU gives its turn back at once */
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

/* ---- the scheduler's gate (common/schedpage.h) -------------------------------------------- */

int vdev_sched_map(struct vgpu_dev *dev, const char *path)
{
        int fd = open(path, O_RDWR | O_CLOEXEC);
        struct stat st;
        void *p;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || st.st_size < VGPU_SCHED_SIZE) {
                close(fd);
                return -EINVAL;
        }
        p = mmap(NULL, VGPU_SCHED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED)
                return -errno;
        if (((struct vgpu_sched_page *)p)->magic != VGPU_SCHED_MAGIC ||
            ((struct vgpu_sched_page *)p)->version != VGPU_SCHED_VERSION) {
                munmap(p, VGPU_SCHED_SIZE);
                return -EPROTO;
        }
        dev->sched = p;
        return 0;
}

/* vgpud's scheduler is there: gating on, and it beat within the last second. */
static bool gated(const struct vgpu_sched_page *p)
{
        uint64_t beat = __atomic_load_n(&p->heartbeat_ns, __ATOMIC_ACQUIRE);

        return __atomic_load_n(&p->gated, __ATOMIC_ACQUIRE) && chan_now_ns() - beat < 1000000000ull;
}

static bool granted(const struct vgpu_sched_page *p)
{
        return __atomic_load_n(&p->grant, __ATOMIC_ACQUIRE) &&
               __atomic_load_n(&p->grant_seq, __ATOMIC_ACQUIRE) !=
                       __atomic_load_n(&p->yield_seq, __ATOMIC_ACQUIRE);
}

/* End the current grant: the scheduler picks the next vGPU. */
static void gate_yield(struct vgpu_sched_page *p)
{
        uint64_t seq = __atomic_load_n(&p->grant_seq, __ATOMIC_ACQUIRE);

        if (!__atomic_load_n(&p->grant, __ATOMIC_ACQUIRE) ||
            __atomic_exchange_n(&p->yield_seq, seq, __ATOMIC_ACQ_REL) == seq)
                return;
        __atomic_add_fetch(&p->yielded, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&p->yielded);
}

/* Before new GPU work: wait for a slice of this vGPU's (when a scheduler runs). */
static void gate_enter(struct session *s)
{
        struct vgpu_sched_page *p = s->dev->sched;

        if (!p)
                return;
        while (gated(p) && !granted(p) && !s->stop) {
                uint32_t g = __atomic_load_n(&p->grant, __ATOMIC_ACQUIRE);

                if (pausing(s))
                        return; /* queued before the suspend: it runs, ungated, before parking */
                __atomic_add_fetch(&p->waiting, 1, __ATOMIC_SEQ_CST);
                chan_futex_wake(&p->waiting);
                if (!granted(p))
                        chan_futex_wait(&p->grant, g, 50);
                __atomic_sub_fetch(&p->waiting, 1, __ATOMIC_SEQ_CST);
        }
}

/*
 * On a GPU, work queued in a slice runs after it was queued: before the turn passes, let it
 * finish and charge it, so that the next vGPU gets the GPU to itself.
 */
static void gate_drain(struct session *s)
{
        struct vgpu_sched_page *p = s->dev->sched;
        uint64_t ns;

        if (!p || !s->dev->ops->queue_gpu_time)
                return;
        ns = 0;
        for (uint32_t i = 0; i < VGPU_STREAMS; i++) {
                if (s->streams[i].q)
                        ns += s->dev->ops->queue_gpu_time(s->streams[i].q, true);
        }
        __atomic_add_fetch(&p->charged_ns, ns, __ATOMIC_RELEASE);
        __atomic_add_fetch(&p->slice_used_ns, ns, __ATOMIC_ACQ_REL);
}

/* After GPU work: charge what it used; a used-up slice ends the grant. */
static void gate_charge(struct session *s, uint64_t work)
{
        struct vgpu_sched_page *p = s->dev->sched;
        uint64_t ns, used;

        if (!p || !gated(p))
                return;
        /* the sim's accounted time (common/schedpage.h), or what the GPU measured */
        if (s->dev->ops->queue_gpu_time)
                ns = s->dev->ops->queue_gpu_time(s->q, false);
        else
                ns = s->dev->sm_count
                             ? work * 1000000000ull /
                                       ((uint64_t)s->dev->sm_count * VGPU_SIM_WARP_INSNS_PER_SM_S)
                             : 0;
        __atomic_add_fetch(&p->charged_ns, ns, __ATOMIC_RELEASE);
        __atomic_add_fetch(&p->launches, 1, __ATOMIC_RELEASE);
        if (!granted(p))
                return;
        used = __atomic_add_fetch(&p->slice_used_ns, ns, __ATOMIC_ACQ_REL);
        if (used >= __atomic_load_n(&p->slice_ns, __ATOMIC_ACQUIRE)) {
                gate_drain(s);
                gate_yield(p);
        }
}

/* The session ran out of work: a grant nobody else waits for goes back at once. */
static void gate_idle(struct session *s)
{
        struct vgpu_sched_page *p = s->dev->sched;

        if (p && granted(p) && !__atomic_load_n(&p->waiting, __ATOMIC_ACQUIRE)) {
                gate_drain(s);
                gate_yield(p);
        }
}

/* ---- write tracking (pre-copy migration) ---------------------------------------------------- */

/* After a write to [addr, addr + len) is done: while a migration copies, it is copied again. */
static int wrote(struct session *s, int r, uint64_t addr, uint64_t len)
{
        if (r >= 0 && __atomic_load_n(&s->dev->track_writes, __ATOMIC_ACQUIRE))
                fbmem_mark(&s->dev->mem, addr, len);
        return r;
}

/* Give back a grant this session holds (it parks): the scheduler need not wait it out. */
static void gate_release(struct session *s)
{
        struct vgpu_sched_page *p = s->dev->sched;

        if (p && granted(p)) {
                gate_drain(s);
                gate_yield(p);
        }
}

/* ---- handlers ----------------------------------------------------------------------------- */

/* Resolve the context a request names; *ret fails the call with the right code. */
#define WITH_CTX(s, h, idx, c)                                                                     \
        struct sctx *c;                                                                            \
        uint32_t idx;                                                                              \
        if (!((c) = get_ctx((s), (h), &(idx))))                                                    \
                return -EBADF;                                                                     \
        if ((c)->sticky)                                                                           \
        return (c)->sticky

/*
 * Whether [addr, addr+len) lies in one allocation of context ctx: a block of the allocator, or a
 * module variable the backend placed outside it (one the guest looked up).
 */
static bool region_ok(struct session *s, uint32_t ctx, uint64_t addr, uint64_t len)
{
        struct fbmem_block b;

        if (fbmem_find(&s->dev->mem, addr, len, owner_of(s, ctx), &b) == 0)
                return true;
        for (uint32_t i = 0; i < s->n_mods; i++) {
                const struct smod *m = &s->mods[i];

                if (!m->live || m->ctx != ctx)
                        continue;
                for (uint32_t v = 0; v < m->n_vars; v++) {
                        if (addr >= m->vars[v].base && len <= m->vars[v].size &&
                            addr - m->vars[v].base <= m->vars[v].size - len)
                                return true;
                }
        }
        return false;
}

/* Wait for the device work of every stream; the first error. */
static int queues_sync(struct session *s)
{
        int r = 0;

        for (uint32_t i = 0; i < VGPU_STREAMS; i++) {
                int e = s->streams[i].q ? s->dev->ops->queue_sync(s->streams[i].q) : 0;

                if (e < 0 && !r)
                        r = e;
        }
        return r;
}

/* Note an error of device work (r < 0) in c: deferred, and sticky for a fault. */
static void note_sync_error(struct sctx *c, int r)
{
        if (r < 0 && c && !c->sticky && !c->deferred)
                c->deferred = r;
        if (r < 0 && c && backend_is_fault(r))
                c->sticky = r;
}

/* Let the running stream's device work finish (an event, a host function's turn). */
static void drain_stream(struct session *s, struct sctx *c)
{
        note_sync_error(c, s->dev->ops->queue_sync(s->q));
}

/* Let all device work finish before memory it may use goes away; a fault poisons the context. */
static void drain(struct session *s, struct sctx *c)
{
        note_sync_error(c, queues_sync(s));
}

static int op_nop(struct session *s, const void *req, uint32_t len, void *rep, uint32_t *rep_len)
{
        (void)s, (void)req, (void)len, (void)rep, (void)rep_len;
        return 0;
}

static int op_ctx_create(struct session *s, const void *req, uint32_t len, void *rep,
                         uint32_t *rep_len)
{
        struct vgpu_rep_handle *r = rep;

        (void)req, (void)len;
        for (uint32_t i = 0; i < 64; i++) {
                if (s->ctxs[i].live)
                        continue;
                s->ctxs[i].gen++;
                s->ctxs[i].live = true;
                s->ctxs[i].sticky = 0;
                s->ctxs[i].deferred = 0;
                r->handle = handle_of(OBJ_CTX, s->ctxs[i].gen, i);
                *rep_len = sizeof(*r);
                return 0;
        }
        return -ENOMEM;
}

static void free_module(struct session *s, uint32_t idx)
{
        struct smod *m = &s->mods[idx];

        for (uint32_t f = 0; f < s->n_funcs; f++) {
                if (s->funcs[f].live && s->funcs[f].mod == idx) {
                        s->funcs[f].live = false;
                        free(s->funcs[f].name);
                        s->funcs[f].name = NULL;
                }
        }
        s->dev->ops->module_free(m->mod);
        if (m->ga)
                free(m->ga->allocs);
        free(m->ga);
        free(m->image);
        m->image = NULL;
        free(m->vars);
        m->mod = NULL;
        m->ga = NULL;
        m->vars = NULL;
        m->n_vars = 0;
        m->live = false;
}

static void free_ctx(struct session *s, uint32_t idx)
{
        drain(s, NULL);
        for (uint32_t i = 0; i < s->n_mods; i++) {
                if (s->mods[i].live && s->mods[i].ctx == idx)
                        free_module(s, i);
        }
        dev_free_owner(s->dev, owner_of(s, idx), ~UINT64_C(0));
        s->ctxs[idx].live = false;
}

static int op_ctx_destroy(struct session *s, const void *req, uint32_t len, void *rep,
                          uint32_t *rep_len)
{
        const struct vgpu_req_ctx *q = req;
        uint32_t idx;

        (void)len, (void)rep, (void)rep_len;
        if (!get_ctx(s, q->ctx, &idx))
                return -EBADF;
        free_ctx(s, idx);
        return 0;
}

static int op_ctx_sync(struct session *s, const void *req, uint32_t len, void *rep,
                       uint32_t *rep_len)
{
        const struct vgpu_req_ctx *q = req;
        struct sctx *c;
        uint32_t idx;
        int r;

        (void)len, (void)rep, (void)rep_len;
        if (!(c = get_ctx(s, q->ctx, &idx)))
                return -EBADF;
        /* The guest waited for the context's streams; their device work finishes here. */
        drain(s, c);
        r = c->sticky ? c->sticky : c->deferred;
        if (!r)
                r = s->deferred;
        c->deferred = 0;
        s->deferred = 0;
        return r;
}

static int op_error_query(struct session *s, const void *req, uint32_t len, void *rep,
                          uint32_t *rep_len)
{
        return op_ctx_sync(s, req, len, rep, rep_len);
}

/* cuStreamSynchronize: the guest waited for the stream; its device work and the errors. */
static int op_stream_sync(struct session *s, const void *req, uint32_t len, void *rep,
                          uint32_t *rep_len)
{
        const struct vgpu_req_event *q = req;
        struct sctx *c;
        uint32_t idx;
        int r;

        (void)len, (void)rep, (void)rep_len;
        if (!(c = get_ctx(s, q->ctx, &idx)))
                return -EBADF;
        if (q->slot >= VGPU_STREAMS)
                return -EINVAL;
        if (s->streams[q->slot].q)
                note_sync_error(c, s->dev->ops->queue_sync(s->streams[q->slot].q));
        r = c->sticky ? c->sticky : c->deferred;
        if (!r)
                r = s->deferred;
        c->deferred = 0;
        s->deferred = 0;
        return r;
}

static int op_mem_alloc(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_mem_alloc *q = req;
        struct vgpu_rep_mem_alloc *r = rep;
        uint64_t base;
        int e;

        (void)len;
        WITH_CTX(s, q->ctx, idx, c);
        e = dev_alloc(s->dev, q->size, owner_of(s, idx), &base);
        if (e < 0)
                return e;
        r->dptr = base;
        r->size = q->size;
        *rep_len = sizeof(*r);
        return 0;
}

static int op_mem_free(struct session *s, const void *req, uint32_t len, void *rep,
                       uint32_t *rep_len)
{
        const struct vgpu_req_mem_free *q = req;
        struct sctx *c;
        uint32_t idx;

        (void)len, (void)rep, (void)rep_len;
        if (!(c = get_ctx(s, q->ctx, &idx)))
                return -EBADF;
        drain(s, c);
        return dev_free(s->dev, q->dptr, owner_of(s, idx));
}

static int op_mem_info(struct session *s, const void *req, uint32_t len, void *rep,
                       uint32_t *rep_len)
{
        const struct vgpu_req_ctx *q = req;
        struct vgpu_rep_mem_info *r = rep;
        uint32_t idx;

        (void)len;
        if (!get_ctx(s, q->ctx, &idx))
                return -EBADF;
        r->free = dev_free_bytes(s->dev);
        r->total = s->dev->fb.size;
        *rep_len = sizeof(*r);
        return 0;
}

static int op_mem_range(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_mem_free *q = req;
        struct vgpu_rep_mem_alloc *r = rep;
        struct fbmem_block b;
        uint32_t idx;

        (void)len;
        if (!get_ctx(s, q->ctx, &idx))
                return -EBADF;
        if (fbmem_find(&s->dev->mem, q->dptr, 0, owner_of(s, idx), &b) < 0)
                return -EFAULT;
        r->dptr = b.base;
        r->size = b.size;
        *rep_len = sizeof(*r);
        return 0;
}

static bool stage_ok(const struct session *s, uint64_t off, uint64_t len)
{
        return off <= s->v.stage_size && len <= s->v.stage_size - off;
}

static int op_copy_htod(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_copy *q = req;

        (void)len, (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!stage_ok(s, q->src, q->len) || !region_ok(s, idx, q->dst, q->len))
                return -EFAULT;
        return wrote(s, s->dev->ops->copy_htod(s->q, q->dst, s->v.stage + q->src, q->len), q->dst,
                     q->len);
}

static int op_copy_dtoh(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_copy *q = req;

        (void)len, (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!stage_ok(s, q->dst, q->len) || !region_ok(s, idx, q->src, q->len))
                return -EFAULT;
        return s->dev->ops->copy_dtoh(s->q, s->v.stage + q->dst, q->src, q->len);
}

static int op_copy_dtod(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_copy *q = req;

        (void)len, (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!region_ok(s, idx, q->src, q->len) || !region_ok(s, idx, q->dst, q->len))
                return -EFAULT;
        return wrote(s, s->dev->ops->copy_dtod(s->q, q->dst, q->src, q->len), q->dst, q->len);
}

static int op_memset(struct session *s, const void *req, uint32_t len, void *rep, uint32_t *rep_len)
{
        const struct vgpu_req_memset *q = req;
        uint64_t row, span;

        (void)len, (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (q->elem_size != 1 && q->elem_size != 2 && q->elem_size != 4)
                return -EINVAL;
        if (!q->width || !q->height)
                return 0;
        if (q->width > UINT64_MAX / q->elem_size)
                return -EINVAL;
        row = q->width * q->elem_size;
        if (q->height > 1 && (q->pitch < row || q->height - 1 > (UINT64_MAX - row) / q->pitch))
                return -EINVAL;
        span = (q->height - 1) * q->pitch + row;
        if (!region_ok(s, idx, q->dst, span))
                return -EFAULT;
        return wrote(s,
                     s->dev->ops->memset(s->q, q->dst, q->height > 1 ? q->pitch : row, q->value,
                                         q->elem_size, q->width, q->height),
                     q->dst, span);
}

/*
 * A module's allocations: noted in order, so that a migration can place them again where they
 * were (replay: the allocator's blocks came with the image; each must be there, the context's,
 * of the size the load asks for).
 */
int session_galloc_alloc(void *ctx, uint64_t size, uint64_t *ret_addr)
{
        struct galloc *g = ctx;
        struct backend_region *a;
        struct fbmem_block b;
        uint64_t addr;
        int e;

        if (g->replay) {
                if (g->next >= g->n_allocs)
                        return -EPROTO;
                addr = g->allocs[g->next].base;
                if (g->allocs[g->next].size != size ||
                    fbmem_find(&g->s->dev->mem, addr, size, g->owner, &b) < 0 || b.base != addr)
                        return -EPROTO;
                g->next++;
                *ret_addr = addr;
                return 0;
        }
        if (g->n_allocs >= MAX_OBJS)
                return -ENOMEM;
        a = realloc(g->allocs, (g->n_allocs + 1) * sizeof(*a));
        if (!a)
                return -ENOMEM;
        g->allocs = a;
        e = dev_alloc(g->s->dev, size, g->owner, &addr);
        if (e < 0)
                return e;
        a[g->n_allocs++] = (struct backend_region){.base = addr, .size = size};
        *ret_addr = addr;
        return 0;
}

void session_galloc_free(void *ctx, uint64_t addr)
{
        struct galloc *g = ctx;

        for (uint32_t i = 0; i < g->n_allocs; i++) {
                if (g->allocs[i].base == addr) {
                        g->allocs[i] = g->allocs[--g->n_allocs];
                        break;
                }
        }
        if (!g->replay)
                dev_free(g->s->dev, addr, g->owner);
}

static int op_module_load(struct session *s, const void *req, uint32_t len, void *rep,
                          uint32_t *rep_len)
{
        const struct vgpu_req_module_load *q = req;
        struct vgpu_rep_module_load *r = rep;
        struct backend_allocator alloc;
        struct backend_module *mod;
        struct galloc *ga;
        struct smod *m;
        uint64_t globals = 0;
        void *image;
        int e, slot;

        (void)len;
        WITH_CTX(s, q->ctx, idx, c);
        *rep_len = sizeof(*r);
        if (!stage_ok(s, q->stage_off, q->len) || q->len == 0)
                return -EINVAL;
        slot = slot_in((void **)&s->mods, &s->n_mods, sizeof(*s->mods));
        if (slot < 0)
                return slot;
        ga = malloc(sizeof(*ga));
        /* A private copy: the guest cannot change the image while it is parsed. */
        image = malloc(q->len);
        if (!ga || !image) {
                free(ga);
                free(image);
                return -ENOMEM;
        }
        memcpy(image, s->v.stage + q->stage_off, q->len);
        *ga = (struct galloc){.s = s, .owner = owner_of(s, idx)};
        alloc = (struct backend_allocator){
                .alloc = session_galloc_alloc, .free = session_galloc_free, .ctx = ga};
        e = s->dev->ops->module_load(s->dev->bdev, image, q->len, &alloc, &mod, &globals, r->log,
                                     sizeof(r->log));
        if (e < 0) {
                free(image);
                free(ga->allocs);
                free(ga);
                return e;
        }
        m = &s->mods[slot];
        m->gen++;
        m->live = true;
        m->ctx = idx;
        m->mod = mod;
        m->ga = ga;
        m->image = image; /* kept for a migration */
        m->image_len = q->len;
        r->module = handle_of(OBJ_MOD, m->gen, (uint32_t)slot);
        r->log[0] = '\0';
        return 0;
}

static int op_module_unload(struct session *s, const void *req, uint32_t len, void *rep,
                            uint32_t *rep_len)
{
        const struct vgpu_req_module *q = req;
        uint32_t cidx, midx;

        (void)len, (void)rep, (void)rep_len;
        if (!get_ctx(s, q->ctx, &cidx) || !get_mod(s, q->module, cidx, &midx))
                return -EBADF;
        drain(s, &s->ctxs[cidx]);
        free_module(s, midx);
        return 0;
}

static int op_module_function(struct session *s, const void *req, uint32_t len, void *rep,
                              uint32_t *rep_len)
{
        const struct vgpu_req_module_sym *q = req;
        struct vgpu_rep_function *r = rep;
        struct backend_func_info info;
        struct backend_func *k;
        struct smod *m;
        uint32_t midx;
        int e, slot;

        (void)len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!(m = get_mod(s, q->module, idx, &midx)))
                return -EBADF;
        if (!memchr(q->name, '\0', sizeof(q->name)))
                return -EINVAL;
        e = s->dev->ops->module_function(m->mod, q->name, &k);
        if (e < 0)
                return e;
        s->dev->ops->func_info(k, &info);
        if (info.n_params > VGPU_MAX_PARAMS || info.param_size > VGPU_MAX_PARAM_BYTES)
                return -E2BIG;
        for (uint32_t i = 0; i < info.n_params; i++) {
                uint32_t off, size;

                if (s->dev->ops->func_param(k, i, &off, &size) < 0 || off > info.param_size ||
                    size > info.param_size - off)
                        return -EPROTO;
                r->params[i] = (struct vgpu_param_info){off, size};
        }
        slot = slot_in((void **)&s->funcs, &s->n_funcs, sizeof(*s->funcs));
        if (slot < 0)
                return slot;
        s->funcs[slot].name = strdup(q->name);
        if (!s->funcs[slot].name)
                return -ENOMEM;
        s->funcs[slot].gen++;
        s->funcs[slot].live = true;
        s->funcs[slot].mod = midx;
        s->funcs[slot].k = k;
        s->funcs[slot].info = info;
        r->func = handle_of(OBJ_FUNC, s->funcs[slot].gen, (uint32_t)slot);
        r->n_params = info.n_params;
        r->param_size = info.param_size;
        r->static_shared = info.static_shared;
        r->max_threads = info.max_threads; /* 1024, or less by __launch_bounds__ */
        *rep_len = (uint32_t)(offsetof(struct vgpu_rep_function, params) +
                              info.n_params * sizeof(struct vgpu_param_info));
        return 0;
}

/* Remember a variable the backend placed outside the allocator, so copies may reach it. */
static int note_var(struct smod *m, uint64_t addr, uint64_t size)
{
        struct backend_region *v;

        for (uint32_t i = 0; i < m->n_vars; i++) {
                if (m->vars[i].base == addr && m->vars[i].size == size)
                        return 0;
        }
        if (m->n_vars >= MAX_OBJS)
                return -ENOMEM;
        v = realloc(m->vars, (m->n_vars + 1) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        v[m->n_vars++] = (struct backend_region){.base = addr, .size = size};
        m->vars = v;
        return 0;
}

static int op_module_global(struct session *s, const void *req, uint32_t len, void *rep,
                            uint32_t *rep_len)
{
        const struct vgpu_req_module_sym *q = req;
        struct vgpu_rep_mem_alloc *r = rep;
        struct fbmem_block b;
        struct smod *m;
        uint64_t addr, size;
        uint32_t midx;
        int e;

        (void)len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!(m = get_mod(s, q->module, idx, &midx)))
                return -EBADF;
        if (!memchr(q->name, '\0', sizeof(q->name)))
                return -EINVAL;
        e = s->dev->ops->module_global(m->mod, q->name, &addr, &size);
        if (e < 0)
                return e;
        if (size && fbmem_find(&s->dev->mem, addr, size, owner_of(s, idx), &b) < 0) {
                e = note_var(m, addr, size);
                if (e < 0)
                        return e;
        }
        r->dptr = addr;
        r->size = size;
        *rep_len = sizeof(*r);
        return 0;
}

struct mem_ctx {
        struct session *s;
        uint64_t owner;
};

/* The launch's view of memory: only the allocations of the launching context. */
static int launch_mem(void *ctx, uint64_t addr, uint64_t len, struct backend_region *ret)
{
        struct mem_ctx *mc = ctx;
        struct fbmem_block b;

        if (fbmem_find(&mc->s->dev->mem, addr, len, mc->owner, &b) < 0)
                return -EFAULT;
        *ret = (struct backend_region){.base = b.base, .size = b.size};
        return 0;
}

static int op_launch(struct session *s, const void *req, uint32_t len, void *rep, uint32_t *rep_len)
{
        const struct vgpu_req_launch *q = req;
        struct backend_launch_stats st = {0};
        struct backend_launch l;
        struct mem_ctx mc;
        struct sfunc *f;
        uint32_t fidx, gen;
        int e;

        (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (handle_split(q->func, OBJ_FUNC, s->n_funcs, &fidx, &gen) < 0 || !s->funcs[fidx].live ||
            (s->funcs[fidx].gen & 0xffffff) != gen || s->mods[s->funcs[fidx].mod].ctx != idx)
                return -EBADF;
        f = &s->funcs[fidx];
        if (q->params_size != len - sizeof(*q) || q->params_size < f->info.param_size)
                return -EINVAL;
        mc = (struct mem_ctx){.s = s, .owner = owner_of(s, idx)};
        l = (struct backend_launch){
                .grid = {q->grid[0], q->grid[1], q->grid[2]},
                .block = {q->block[0], q->block[1], q->block[2]},
                .shared = q->shared,
                .params = q + 1,
                .params_size = q->params_size,
                .find = launch_mem,
                .find_ctx = &mc,
                .cancel = &s->cancel,
        };
        gate_enter(s);
        if (s->dev->sched)
                __atomic_add_fetch(&s->dev->sched->busy, 1, __ATOMIC_ACQ_REL);
        e = s->dev->ops->launch(s->q, f->k, &l, &st);
        if (s->dev->sched)
                __atomic_sub_fetch(&s->dev->sched->busy, 1, __ATOMIC_ACQ_REL);
        s->work += st.work;
        /* a kernel may have written any memory of its context (a fault included) */
        if (__atomic_load_n(&s->dev->track_writes, __ATOMIC_ACQUIRE))
                fbmem_mark_owner(&s->dev->mem, mc.owner);
        gate_charge(s, st.work);
        if (backend_is_fault(e)) {
                /* A fault in the kernel poisons the context, as on a GPU. */
                c->sticky = e;
                vgpu_log(VGPU_LOG_WARN, "guest %d: kernel %s faulted: %s (address 0x%llx, line %u)",
                         (int)s->pid, s->dev->ops->func_name(f->k), ptx_strerror(e),
                         (unsigned long long)st.fault_addr, st.fault_line);
        }
        return e;
}

static int op_event_record(struct session *s, const void *req, uint32_t len, void *rep,
                           uint32_t *rep_len)
{
        const struct vgpu_req_event *q = req;
        uint32_t idx;

        (void)len, (void)rep, (void)rep_len;
        if (!get_ctx(s, q->ctx, &idx))
                return -EBADF;
        if (q->slot >= s->v.n_events)
                return -EINVAL;
        /* The event completes when the work queued before it in its stream has. */
        drain_stream(s, get_ctx(s, q->ctx, &idx));
        __atomic_store_n(&s->v.events[q->slot].time_ns, chan_now_ns(), __ATOMIC_RELEASE);
        return 0;
}

/*
 * The shared host block id covering [off, off+len), held locked in *ret (unlock with
 * host_put). The guest announces a block on its socket just before its first use, so a block not
 * yet known is waited for, briefly.
 */
unsigned session_host_wait_ms = 2000;

static int host_get(struct session *s, uint64_t id, uint64_t off, uint64_t len, uint8_t **ret)
{
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)(session_host_wait_ms % 1000) * 1000000;
        until.tv_sec += session_host_wait_ms / 1000 + until.tv_nsec / 1000000000;
        until.tv_nsec %= 1000000000;
        pthread_mutex_lock(&s->host_lock);
        for (;;) {
                for (uint32_t i = 0; i < s->n_hosts; i++) {
                        const struct shost *h = &s->hosts[i];

                        if (h->id != id)
                                continue;
                        if (off > h->size || len > h->size - off) {
                                pthread_mutex_unlock(&s->host_lock);
                                return -EFAULT;
                        }
                        *ret = h->p + off;
                        return 0;
                }
                if (s->stop || pthread_cond_timedwait(&s->host_cond, &s->host_lock, &until))
                        break;
        }
        pthread_mutex_unlock(&s->host_lock);
        return -EBADF;
}

static void host_put(struct session *s)
{
        pthread_mutex_unlock(&s->host_lock);
}

/* A copy between device memory and a shared host block, either way. */
static int copy_host(struct session *s, const struct vgpu_req_copy_host *q, bool to_device)
{
        uint8_t *p;
        int e;

        WITH_CTX(s, q->ctx, idx, c);
        if (!region_ok(s, idx, q->dptr, q->len))
                return -EFAULT;
        e = host_get(s, q->host, q->off, q->len, &p);
        if (e < 0)
                return e;
        e = to_device ? wrote(s, s->dev->ops->copy_htod(s->q, q->dptr, p, q->len), q->dptr, q->len)
                      : s->dev->ops->copy_dtoh(s->q, p, q->dptr, q->len);
        host_put(s);
        return e;
}

static int op_copy_htod_host(struct session *s, const void *req, uint32_t len, void *rep,
                             uint32_t *rep_len)
{
        (void)len, (void)rep, (void)rep_len;
        return copy_host(s, req, true);
}

static int op_copy_dtoh_host(struct session *s, const void *req, uint32_t len, void *rep,
                             uint32_t *rep_len)
{
        (void)len, (void)rep, (void)rep_len;
        return copy_host(s, req, false);
}

int session_host_map(struct session *s, uint64_t id, int fd, uint64_t size)
{
        struct stat st;
        struct shost *nh;
        void *p;

        /* It must not shrink under the mapping: the engine would die of SIGBUS. */
        if (!size || size > SESSION_HOST_MAX || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            (uint64_t)st.st_size < size || fcntl(fd, F_GET_SEALS) < 0 ||
            !(fcntl(fd, F_GET_SEALS) & F_SEAL_SHRINK))
                return -EINVAL;
        pthread_mutex_lock(&s->host_lock);
        for (uint32_t i = 0; i < s->n_hosts; i++) {
                if (s->hosts[i].id == id) {
                        pthread_mutex_unlock(&s->host_lock);
                        return -EEXIST;
                }
        }
        if (s->n_hosts >= SESSION_HOST_BLOCKS) {
                pthread_mutex_unlock(&s->host_lock);
                return -ENOSPC;
        }
        pthread_mutex_unlock(&s->host_lock);
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        pthread_mutex_lock(&s->host_lock);
        nh = realloc(s->hosts, (s->n_hosts + 1) * sizeof(*nh));
        if (!nh) {
                pthread_mutex_unlock(&s->host_lock);
                munmap(p, size);
                return -ENOMEM;
        }
        s->hosts = nh;
        nh[s->n_hosts] = (struct shost){.id = id, .p = p, .size = size};
        /* Page-locked for the GPU where the backend can; plain copies work either way. */
        nh[s->n_hosts].registered = s->dev->ops->host_register(s->dev->bdev, p, size) == 0;
        s->n_hosts++;
        pthread_cond_broadcast(&s->host_cond);
        pthread_mutex_unlock(&s->host_lock);
        return 0;
}

static void host_release(struct session *s, struct shost *h)
{
        if (h->registered)
                s->dev->ops->host_unregister(s->dev->bdev, h->p);
        munmap(h->p, h->size);
}

int session_host_unmap(struct session *s, uint64_t id)
{
        pthread_mutex_lock(&s->host_lock);
        for (uint32_t i = 0; i < s->n_hosts; i++) {
                if (s->hosts[i].id == id) {
                        struct shost h = s->hosts[i];

                        s->hosts[i] = s->hosts[--s->n_hosts];
                        pthread_mutex_unlock(&s->host_lock);
                        host_release(s, &h);
                        return 0;
                }
        }
        pthread_mutex_unlock(&s->host_lock);
        return -ENOENT;
}

/*
 * A host function's place in its stream. The stream stops there (stream_ready): once the work
 * before it is done, the engine marks the slot VGPU_HOST_REACHED; the guest runs the function
 * and marks it VGPU_HOST_RELEASED, and only then does this command run, and its stream go on.
 * Other streams run meanwhile.
 */
static int op_host_wait(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_event *q = req;

        (void)s, (void)len, (void)rep, (void)rep_len;
        return q->slot < VGPU_HOST_SLOTS ? 0 : -EINVAL;
}

/*
 * A stream's wait for others (cross-stream events, the legacy stream's barriers): it runs once
 * every dependency's slot finished its commands up to the dependency's seq (stream_ready). On a
 * GPU a finished command may still be running on the device: the awaited streams' device work
 * completes first.
 */
static int op_stream_wait(struct session *s, const void *req, uint32_t len, void *rep,
                          uint32_t *rep_len)
{
        const struct vgpu_req_stream_wait *q = req;
        const struct vgpu_stream_dep *dep = (const void *)(q + 1);
        int r = 0;

        (void)rep, (void)rep_len;
        if (q->n > VGPU_STREAMS || len != sizeof(*q) + q->n * sizeof(*dep))
                return -EINVAL;
        for (uint32_t i = 0; i < q->n; i++) {
                if (dep[i].slot >= VGPU_STREAMS)
                        return -EINVAL;
        }
        for (uint32_t i = 0; i < q->n; i++) {
                struct backend_queue *dq = s->streams[dep[i].slot].q;
                int e = dq && dq != s->q ? s->dev->ops->queue_sync(dq) : 0;

                if (e < 0 && !r)
                        r = e;
        }
        return r;
}

typedef int (*op_fn)(struct session *s, const void *req, uint32_t len, void *rep,
                     uint32_t *rep_len);

static const op_fn handlers[VGPU_OP_COUNT] = {
#define X(NAME, name, num, req, rep, flags) [num] = op_##name,
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
                c = get_ctx(s, h, &idx);
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
                        drain_stream(s, get_ctx(s, q->ctx, &idx));
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
                    s->stop || pausing(s) || host_released(s))
                        return;
                __builtin_ia32_pause();
        }
        /* Idle past the spin: a grant nobody else waits for goes back (best effort's
         * work conservation); a guest between two launches keeps it. */
        gate_idle(s);
        val = __atomic_load_n(&ctl->head_futex, __ATOMIC_SEQ_CST);
        __atomic_store_n(&ctl->engine_sleeping, 1, __ATOMIC_SEQ_CST);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if ((!take_more || __atomic_load_n(&ctl->head, __ATOMIC_ACQUIRE) == ctl->tail) &&
            !s->stop && !pausing(s) && !host_released(s))
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

                if (pausing(s) && chan_now_ns() - s->pause_ns > DRAIN_NS) {
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
                if (more && pausing(s) && guest_pushing(s)) {
                        __builtin_ia32_pause(); /* a call on its way in: take it first */
                        continue;
                }
                if (pausing(s)) {
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
        pthread_cond_init(&s->pause_cond, NULL);
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
                        free_ctx(s, i);
        }
        dev_free_owner(s->dev, (uint64_t)s->id << 32, ~UINT64_C(0) << 32);
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
                host_release(s, &s->hosts[i]);
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

void session_pause(struct session *s)
{
        struct vgpu_chan_ctl *ctl = s->v.ctl;

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
        while (s->started && !s->parked && !s->exited)
                pthread_cond_wait(&s->pause_cond, &s->pause_lock);
        pthread_mutex_unlock(&s->pause_lock);
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
