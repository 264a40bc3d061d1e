// SPDX-License-Identifier: Apache-2.0
// A guest's session in its engine: the command loop over the shared ring, and one handler per op
// of calls.def. Every handle, pointer, size and offset from the guest is checked before use;
// device memory is reached only inside the allocations of the context that asks.
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/session.h"
#include "ptx/ptx.h"

#define SPIN_NS  50000 /* poll the ring this long before sleeping */
#define MAX_OBJS 4096
#define MSG_CAP  (sizeof(struct vgpu_req_launch) + VGPU_MAX_PARAM_BYTES + 64)

enum obj_kind { OBJ_CTX = 1, OBJ_MOD = 2, OBJ_FUNC = 3 };

struct sctx {
        uint32_t gen;
        bool live;
        int sticky;   /* a kernel fault: every later call of the context fails with it */
        int deferred; /* the first error of an asynchronous call, reported at the next sync */
};

struct smod {
        uint32_t gen;
        bool live;
        uint32_t ctx;
        struct ptx_module *mod;
        uint64_t globals; /* device address of its variables, 0 if none */
};

struct sfunc {
        uint32_t gen;
        bool live;
        uint32_t mod;
        const struct ptx_kernel *k;
};

struct session {
        struct vgpu_dev *dev;
        uint32_t id;
        pid_t pid;
        uid_t uid;
        int fd;
        struct chan_view v;
        pthread_t thread;
        volatile int stop;
        volatile int cancel; /* read by a running launch: stop it soon */
        struct sctx ctxs[64];
        struct smod *mods;
        struct sfunc *funcs;
        uint32_t n_mods, n_funcs;
        int deferred; /* async errors of calls that named no valid context */
        uint64_t warp_insns;
};

pid_t session_pid(const struct session *s)
{
        return s->pid;
}

/* ---- handles ------------------------------------------------------------------------------ */

static uint64_t handle_of(enum obj_kind kind, uint32_t gen, uint32_t idx)
{
        return ((uint64_t)kind << 56) | ((uint64_t)(gen & 0xffffff) << 32) | idx;
}

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

static uint64_t owner_of(const struct session *s, uint32_t ctx)
{
        return ((uint64_t)s->id << 32) | ctx;
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

/* ---- handlers ----------------------------------------------------------------------------- */

/* Resolve the context a request names; *ret fails the call with the right code. */
#define WITH_CTX(s, h, idx, c)                                                                     \
        struct sctx *c;                                                                            \
        uint32_t idx;                                                                              \
        if (!((c) = get_ctx((s), (h), &(idx))))                                                    \
                return -EBADF;                                                                     \
        if ((c)->sticky)                                                                           \
        return (c)->sticky

static void *host_of(const struct session *s, uint64_t dptr)
{
        return (uint8_t *)s->dev->fb.host + (dptr - s->dev->fb.device_address);
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
                if (s->funcs[f].live && s->funcs[f].mod == idx)
                        s->funcs[f].live = false;
        }
        if (m->globals)
                fbmem_free(&s->dev->mem, m->globals, owner_of(s, m->ctx));
        ptx_module_free(m->mod);
        m->mod = NULL;
        m->live = false;
}

static void free_ctx(struct session *s, uint32_t idx)
{
        for (uint32_t i = 0; i < s->n_mods; i++) {
                if (s->mods[i].live && s->mods[i].ctx == idx)
                        free_module(s, i);
        }
        fbmem_free_owner(&s->dev->mem, owner_of(s, idx), ~UINT64_C(0));
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
        /* Commands run in order: everything before this one is finished. */
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

static int op_mem_alloc(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_mem_alloc *q = req;
        struct vgpu_rep_mem_alloc *r = rep;
        uint64_t base;
        int e;

        (void)len;
        WITH_CTX(s, q->ctx, idx, c);
        e = fbmem_alloc(&s->dev->mem, q->size, owner_of(s, idx), &base);
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
        return fbmem_free(&s->dev->mem, q->dptr, owner_of(s, idx));
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
        r->free = fbmem_free_bytes(&s->dev->mem);
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
        struct fbmem_block b;

        (void)len, (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!stage_ok(s, q->src, q->len) ||
            fbmem_find(&s->dev->mem, q->dst, q->len, owner_of(s, idx), &b) < 0)
                return -EFAULT;
        memcpy(host_of(s, q->dst), s->v.stage + q->src, q->len);
        return 0;
}

static int op_copy_dtoh(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_copy *q = req;
        struct fbmem_block b;

        (void)len, (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!stage_ok(s, q->dst, q->len) ||
            fbmem_find(&s->dev->mem, q->src, q->len, owner_of(s, idx), &b) < 0)
                return -EFAULT;
        memcpy(s->v.stage + q->dst, host_of(s, q->src), q->len);
        return 0;
}

static int op_copy_dtod(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_copy *q = req;
        struct fbmem_block b;

        (void)len, (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (fbmem_find(&s->dev->mem, q->src, q->len, owner_of(s, idx), &b) < 0 ||
            fbmem_find(&s->dev->mem, q->dst, q->len, owner_of(s, idx), &b) < 0)
                return -EFAULT;
        memmove(host_of(s, q->dst), host_of(s, q->src), q->len);
        return 0;
}

static int op_memset(struct session *s, const void *req, uint32_t len, void *rep, uint32_t *rep_len)
{
        const struct vgpu_req_memset *q = req;
        struct fbmem_block b;
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
        if (fbmem_find(&s->dev->mem, q->dst, span, owner_of(s, idx), &b) < 0)
                return -EFAULT;
        for (uint64_t y = 0; y < q->height; y++) {
                uint8_t *p = host_of(s, q->dst + y * q->pitch);

                if (q->elem_size == 1) {
                        memset(p, (int)(q->value & 0xff), row);
                } else if (q->elem_size == 2) {
                        uint16_t v16 = (uint16_t)q->value;

                        for (uint64_t i = 0; i < q->width; i++)
                                memcpy(p + 2 * i, &v16, 2);
                } else {
                        for (uint64_t i = 0; i < q->width; i++)
                                memcpy(p + 4 * i, &q->value, 4);
                }
        }
        return 0;
}

static int op_module_load(struct session *s, const void *req, uint32_t len, void *rep,
                          uint32_t *rep_len)
{
        const struct vgpu_req_module_load *q = req;
        struct vgpu_rep_module_load *r = rep;
        struct ptx_module *mod;
        struct smod *m;
        uint64_t globals = 0;
        void *image;
        size_t gsize;
        int e, slot;

        (void)len;
        WITH_CTX(s, q->ctx, idx, c);
        *rep_len = sizeof(*r);
        if (!stage_ok(s, q->stage_off, q->len) || q->len == 0)
                return -EINVAL;
        /* A private copy: the guest cannot change the image while it is parsed. */
        image = malloc(q->len);
        if (!image)
                return -ENOMEM;
        memcpy(image, s->v.stage + q->stage_off, q->len);
        e = ptx_module_load(image, q->len, &mod, r->log, sizeof(r->log));
        free(image);
        if (e < 0)
                return e;
        gsize = ptx_module_globals_size(mod);
        if (gsize) {
                e = fbmem_alloc(&s->dev->mem, gsize, owner_of(s, idx), &globals);
                if (e == 0) {
                        memcpy(host_of(s, globals), ptx_module_globals_image(mod), gsize);
                        e = ptx_module_bind_globals(mod, globals);
                }
                if (e < 0) {
                        if (globals)
                                fbmem_free(&s->dev->mem, globals, owner_of(s, idx));
                        ptx_module_free(mod);
                        return e;
                }
        }
        slot = slot_in((void **)&s->mods, &s->n_mods, sizeof(*s->mods));
        if (slot < 0) {
                if (globals)
                        fbmem_free(&s->dev->mem, globals, owner_of(s, idx));
                ptx_module_free(mod);
                return slot;
        }
        m = &s->mods[slot];
        m->gen++;
        m->live = true;
        m->ctx = idx;
        m->mod = mod;
        m->globals = globals;
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
        free_module(s, midx);
        return 0;
}

static int op_module_function(struct session *s, const void *req, uint32_t len, void *rep,
                              uint32_t *rep_len)
{
        const struct vgpu_req_module_sym *q = req;
        struct vgpu_rep_function *r = rep;
        const struct ptx_kernel *k;
        struct smod *m;
        uint32_t midx, n;
        int e, slot;

        (void)len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!(m = get_mod(s, q->module, idx, &midx)))
                return -EBADF;
        if (!memchr(q->name, '\0', sizeof(q->name)))
                return -EINVAL;
        e = ptx_module_get_kernel(m->mod, q->name, &k);
        if (e < 0)
                return e;
        n = ptx_kernel_param_count(k);
        if (n > VGPU_MAX_PARAMS || ptx_kernel_param_size(k) > VGPU_MAX_PARAM_BYTES)
                return -E2BIG;
        slot = slot_in((void **)&s->funcs, &s->n_funcs, sizeof(*s->funcs));
        if (slot < 0)
                return slot;
        s->funcs[slot].gen++;
        s->funcs[slot].live = true;
        s->funcs[slot].mod = midx;
        s->funcs[slot].k = k;
        r->func = handle_of(OBJ_FUNC, s->funcs[slot].gen, (uint32_t)slot);
        r->n_params = n;
        r->param_size = (uint32_t)ptx_kernel_param_size(k);
        r->static_shared = (uint32_t)ptx_kernel_static_shared(k);
        {
                struct ptx_kernel_attrs a;

                ptx_kernel_get_attrs(k, &a);
                r->max_threads = a.max_threads; /* 1024, or less by __launch_bounds__ */
        }
        for (uint32_t i = 0; i < n; i++) {
                size_t off, size;

                ptx_kernel_param_info(k, i, &off, &size);
                r->params[i] = (struct vgpu_param_info){(uint32_t)off, (uint32_t)size};
        }
        *rep_len = (uint32_t)(offsetof(struct vgpu_rep_function, params) +
                              n * sizeof(struct vgpu_param_info));
        return 0;
}

static int op_module_global(struct session *s, const void *req, uint32_t len, void *rep,
                            uint32_t *rep_len)
{
        const struct vgpu_req_module_sym *q = req;
        struct vgpu_rep_mem_alloc *r = rep;
        struct smod *m;
        uint64_t addr;
        size_t size;
        void *host;
        uint32_t midx;
        int e;

        (void)len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!(m = get_mod(s, q->module, idx, &midx)))
                return -EBADF;
        if (!memchr(q->name, '\0', sizeof(q->name)))
                return -EINVAL;
        e = ptx_module_global(m->mod, q->name, &addr, &size, &host);
        if (e < 0)
                return e;
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
static int launch_mem(void *ctx, uint64_t addr, uint64_t len, struct ptx_mem_region *ret)
{
        struct mem_ctx *mc = ctx;
        struct fbmem_block b;

        if (fbmem_find(&mc->s->dev->mem, addr, len, mc->owner, &b) < 0)
                return -EFAULT;
        *ret = (struct ptx_mem_region){
                .base = b.base, .size = b.size, .host = host_of(mc->s, b.base)};
        return 0;
}

static int op_launch(struct session *s, const void *req, uint32_t len, void *rep, uint32_t *rep_len)
{
        const struct vgpu_req_launch *q = req;
        struct ptx_launch_stats st = {0};
        struct ptx_launch l;
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
        if (q->params_size != len - sizeof(*q) || q->params_size < ptx_kernel_param_size(f->k))
                return -EINVAL;
        mc = (struct mem_ctx){.s = s, .owner = owner_of(s, idx)};
        l = (struct ptx_launch){
                .kernel = f->k,
                .grid = {q->grid[0], q->grid[1], q->grid[2]},
                .block = {q->block[0], q->block[1], q->block[2]},
                .dynamic_shared = q->shared,
                .params = q + 1,
                .params_size = q->params_size,
                .mem = launch_mem,
                .mem_ctx = &mc,
                .pool = s->dev->pool,
                .workers = s->dev->workers,
                .work_budget = s->dev->work_budget,
                .cancel = &s->cancel,
        };
        e = ptx_launch(&l, &st);
        s->warp_insns += st.warp_insns;
        if (e < 0 && e != PTX_ELAUNCH && e != -EINVAL && e != -ENOMEM) {
                /* A fault in the kernel poisons the context, as on a GPU. */
                c->sticky = e;
                vgpu_log(VGPU_LOG_WARN, "guest %d: kernel %s faulted: %s (address 0x%llx, line %u)",
                         (int)s->pid, ptx_kernel_name(f->k), ptx_strerror(e),
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
        __atomic_store_n(&s->v.events[q->slot].time_ns, chan_now_ns(), __ATOMIC_RELEASE);
        return 0;
}

/*
 * A host function's place in the queue: everything after it waits until the guest, having run
 * the function, releases the slot. Waits in slices so that a stopping session is not held.
 */
static int op_host_wait(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_event *q = req;
        uint32_t *flag;

        (void)len, (void)rep, (void)rep_len;
        if (q->slot >= VGPU_HOST_SLOTS)
                return -EINVAL;
        flag = &s->v.ctl->host_release[q->slot];
        while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE) && !s->stop)
                chan_futex_wait(flag, 0, 100);
        return 0;
}

typedef int (*op_fn)(struct session *s, const void *req, uint32_t len, void *rep,
                     uint32_t *rep_len);

static const op_fn handlers[VGPU_OP_COUNT] = {
#define X(NAME, name, num, req, rep, flags) [num] = op_##name,
#include "common/calls.def"
#undef X
};

/* ---- the loop ----------------------------------------------------------------------------- */

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
        }
        __atomic_store_n(&ctl->done_seq, m->seq, __ATOMIC_RELEASE);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&ctl->guest_sleeping, __ATOMIC_SEQ_CST)) {
                __atomic_add_fetch(&ctl->done_futex, 1, __ATOMIC_SEQ_CST);
                chan_futex_wake(&ctl->done_futex);
        }
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

/* Wait until the guest pushes more, spinning briefly first; returns when stop is set too. */
static void wait_for_work(struct session *s)
{
        struct vgpu_chan_ctl *ctl = s->v.ctl;
        uint64_t until = chan_now_ns() + SPIN_NS;
        uint32_t val;

        while (chan_now_ns() < until) {
                if (__atomic_load_n(&ctl->head, __ATOMIC_ACQUIRE) != ctl->tail || s->stop)
                        return;
                __builtin_ia32_pause();
        }
        val = __atomic_load_n(&ctl->head_futex, __ATOMIC_SEQ_CST);
        __atomic_store_n(&ctl->engine_sleeping, 1, __ATOMIC_SEQ_CST);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&ctl->head, __ATOMIC_ACQUIRE) == ctl->tail && !s->stop)
                chan_futex_wait(&ctl->head_futex, val, 200);
        __atomic_store_n(&ctl->engine_sleeping, 0, __ATOMIC_SEQ_CST);
}

static void *session_main(void *arg)
{
        struct session *s = arg;
        uint8_t *buf = malloc(MSG_CAP);
        uint8_t *rep = malloc(s->v.reply_size);

        while (buf && rep && !s->stop) {
                struct vgpu_msg m;
                const struct vgpu_call_info *ci;
                uint32_t rep_len = 0;
                int r = chan_pop(&s->v, &m, buf, MSG_CAP);

                if (r == 0) {
                        wait_for_work(s);
                        continue;
                }
                if (r < 0) {
                        vgpu_log(VGPU_LOG_WARN,
                                 "guest %d: corrupt command ring; closing its channel",
                                 (int)s->pid);
                        break;
                }
                ci = vgpu_call_info(m.op);
                if (!ci || m.len < ci->req_size ||
                    (!(ci->flags & VGPU_CALL_VAR) && m.len != ci->req_size)) {
                        r = -EPROTO;
                } else {
                        memset(rep, 0, ci->rep_size);
                        r = handlers[m.op](s, buf, m.len, rep, &rep_len);
                        if (r < 0 && !(ci->flags & VGPU_CALL_SYNC))
                                record_async_error(s, buf, m.len, r);
                }
                finish(s, &m, ci, r, rep, rep_len);
        }
        __atomic_store_n(&s->v.ctl->engine_dead, 1, __ATOMIC_RELEASE);
        __atomic_add_fetch(&s->v.ctl->done_futex, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&s->v.ctl->done_futex);
        free(buf);
        free(rep);
        return NULL;
}

int session_new(struct vgpu_dev *dev, uint32_t id, pid_t pid, uid_t uid, struct session **ret,
                int *ret_fd)
{
        uint64_t size = chan_total_size();
        struct session *s = calloc(1, sizeof(*s));
        void *base;
        int r;

        if (!s)
                return -ENOMEM;
        s->dev = dev;
        s->id = id;
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
        r = -pthread_create(&s->thread, NULL, session_main, s);
        if (r < 0)
                goto err_unmap;
        *ret = s;
        *ret_fd = s->fd;
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
        __atomic_add_fetch(&s->v.ctl->head_futex, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&s->v.ctl->head_futex);
        pthread_join(s->thread, NULL);
        for (uint32_t i = 0; i < 64; i++) {
                if (s->ctxs[i].live)
                        free_ctx(s, i);
        }
        fbmem_free_owner(&s->dev->mem, (uint64_t)s->id << 32, ~UINT64_C(0) << 32);
        free(s->mods);
        free(s->funcs);
        munmap(s->v.base, s->v.size);
        close(s->fd);
        free(s);
}
