// SPDX-License-Identifier: Apache-2.0
// A session's handlers of contexts, modules, launches, events and streams (calls.def): each
// checks the guest's handles, sizes and offsets before use, and a launch reaches only the
// allocations of the context that launches.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "engine/session.h"
#include "engine/session_int.h"
#include "ptx/ptx.h" /* PTX_E* codes */

/*
 * Whether [addr, addr+len) lies in one allocation of context ctx: a block of the allocator, or a
 * module variable the backend placed outside it (one the guest looked up).
 */
bool session_region_ok(struct session *s, uint32_t ctx, uint64_t addr, uint64_t len)
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
int session_queues_sync(struct session *s)
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
void session_drain_stream(struct session *s, struct sctx *c)
{
        note_sync_error(c, s->dev->ops->queue_sync(s->q));
}

/* Let all device work finish before memory it may use goes away; a fault poisons the context. */
void session_drain(struct session *s, struct sctx *c)
{
        note_sync_error(c, session_queues_sync(s));
}

int session_op_nop(struct session *s, const void *req, uint32_t len, void *rep, uint32_t *rep_len)
{
        (void)s, (void)req, (void)len, (void)rep, (void)rep_len;
        return 0;
}

int session_op_ctx_create(struct session *s, const void *req, uint32_t len, void *rep,
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

void session_free_ctx(struct session *s, uint32_t idx)
{
        session_drain(s, NULL);
        for (uint32_t i = 0; i < s->n_mods; i++) {
                if (s->mods[i].live && s->mods[i].ctx == idx)
                        free_module(s, i);
        }
        session_dev_free_owner(s->dev, owner_of(s, idx), ~UINT64_C(0));
        s->ctxs[idx].live = false;
}

int session_op_ctx_destroy(struct session *s, const void *req, uint32_t len, void *rep,
                           uint32_t *rep_len)
{
        const struct vgpu_req_ctx *q = req;
        uint32_t idx;

        (void)len, (void)rep, (void)rep_len;
        if (!session_get_ctx(s, q->ctx, &idx))
                return -EBADF;
        session_free_ctx(s, idx);
        return 0;
}

int session_op_ctx_sync(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_ctx *q = req;
        struct sctx *c;
        uint32_t idx;
        int r;

        (void)len, (void)rep, (void)rep_len;
        if (!(c = session_get_ctx(s, q->ctx, &idx)))
                return -EBADF;
        /* The guest waited for the context's streams; their device work finishes here. */
        session_drain(s, c);
        r = c->sticky ? c->sticky : c->deferred;
        if (!r)
                r = s->deferred;
        c->deferred = 0;
        s->deferred = 0;
        return r;
}

int session_op_error_query(struct session *s, const void *req, uint32_t len, void *rep,
                           uint32_t *rep_len)
{
        return session_op_ctx_sync(s, req, len, rep, rep_len);
}

/* cuStreamSynchronize: the guest waited for the stream; its device work and the errors. */
int session_op_stream_sync(struct session *s, const void *req, uint32_t len, void *rep,
                           uint32_t *rep_len)
{
        const struct vgpu_req_event *q = req;
        struct sctx *c;
        uint32_t idx;
        int r;

        (void)len, (void)rep, (void)rep_len;
        if (!(c = session_get_ctx(s, q->ctx, &idx)))
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
        e = session_dev_alloc(g->s->dev, size, g->owner, &addr);
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
                session_dev_free(g->s->dev, addr, g->owner);
}

int session_op_module_load(struct session *s, const void *req, uint32_t len, void *rep,
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
        if (!session_stage_ok(s, q->stage_off, q->len) || q->len == 0)
                return -EINVAL;
        slot = session_slot_in((void **)&s->mods, &s->n_mods, sizeof(*s->mods));
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

int session_op_module_unload(struct session *s, const void *req, uint32_t len, void *rep,
                             uint32_t *rep_len)
{
        const struct vgpu_req_module *q = req;
        uint32_t cidx, midx;

        (void)len, (void)rep, (void)rep_len;
        if (!session_get_ctx(s, q->ctx, &cidx) || !session_get_mod(s, q->module, cidx, &midx))
                return -EBADF;
        session_drain(s, &s->ctxs[cidx]);
        free_module(s, midx);
        return 0;
}

int session_op_module_function(struct session *s, const void *req, uint32_t len, void *rep,
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
        if (!(m = session_get_mod(s, q->module, idx, &midx)))
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
        slot = session_slot_in((void **)&s->funcs, &s->n_funcs, sizeof(*s->funcs));
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

int session_op_module_global(struct session *s, const void *req, uint32_t len, void *rep,
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
        if (!(m = session_get_mod(s, q->module, idx, &midx)))
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

int session_op_launch(struct session *s, const void *req, uint32_t len, void *rep,
                      uint32_t *rep_len)
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
        if (session_handle_split(q->func, OBJ_FUNC, s->n_funcs, &fidx, &gen) < 0 ||
            !s->funcs[fidx].live || (s->funcs[fidx].gen & 0xffffff) != gen ||
            s->mods[s->funcs[fidx].mod].ctx != idx)
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
        session_gate_enter(s);
        vdev_sched_busy(s->dev, 1);
        e = s->dev->ops->launch(s->q, f->k, &l, &st);
        vdev_sched_busy(s->dev, -1);
        s->work += st.work;
        /* a kernel may have written any memory of its context (a fault included) */
        if (__atomic_load_n(&s->dev->track_writes, __ATOMIC_ACQUIRE))
                fbmem_mark_owner(&s->dev->mem, mc.owner);
        session_gate_charge(s, st.work);
        if (backend_is_fault(e)) {
                /* A fault in the kernel poisons the context, as on a GPU. */
                c->sticky = e;
                vgpu_log(VGPU_LOG_WARN, "guest %d: kernel %s faulted: %s (address 0x%llx, line %u)",
                         (int)s->pid, s->dev->ops->func_name(f->k), ptx_strerror(e),
                         (unsigned long long)st.fault_addr, st.fault_line);
        }
        return e;
}

int session_op_event_record(struct session *s, const void *req, uint32_t len, void *rep,
                            uint32_t *rep_len)
{
        const struct vgpu_req_event *q = req;
        uint32_t idx;

        (void)len, (void)rep, (void)rep_len;
        if (!session_get_ctx(s, q->ctx, &idx))
                return -EBADF;
        if (q->slot >= s->v.n_events)
                return -EINVAL;
        /* The event completes when the work queued before it in its stream has. */
        session_drain_stream(s, session_get_ctx(s, q->ctx, &idx));
        __atomic_store_n(&s->v.events[q->slot].time_ns, chan_now_ns(), __ATOMIC_RELEASE);
        return 0;
}

/*
 * A host function's place in its stream. The stream stops there (stream_ready): once the work
 * before it is done, the engine marks the slot VGPU_HOST_REACHED; the guest runs the function
 * and marks it VGPU_HOST_RELEASED, and only then does this command run, and its stream go on.
 * Other streams run meanwhile.
 */
int session_op_host_wait(struct session *s, const void *req, uint32_t len, void *rep,
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
int session_op_stream_wait(struct session *s, const void *req, uint32_t len, void *rep,
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
