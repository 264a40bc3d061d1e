// SPDX-License-Identifier: Apache-2.0
// Launches: checks a launch's configuration, lays out shared memory and frames, and spreads the
// grid's blocks over a pool of worker threads, which take blocks in order from a shared counter.
// The first fault stops the launch; its details and the work counters go back to the caller.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/export.h"
#include "ptx/exec.h"

/* Dynamic shared memory is bounded like a large GPU's (228 KiB on H100), with room to spare. */
#define DYN_SHARED_MAX (1u << 20)

struct ptx_pool {
        pthread_t *threads;
        unsigned n;
        pthread_mutex_t lock;
        pthread_cond_t work_cv;
        pthread_cond_t done_cv;
        pthread_mutex_t launch_lock; /* one launch at a time */
        struct exec_launch *job;
        unsigned job_workers;
        uint64_t job_gen;
        unsigned running;
        bool stop;
};

static int ctx_init(struct exec_ctx *c, struct exec_launch *L)
{
        memset(c, 0, sizeof(*c));
        c->L = L;
        c->cache[0].base = c->cache[1].base = UINT64_MAX;
        c->next_check = 16384;
        c->warps = calloc(MAX_WARPS, sizeof(*c->warps));
        if (!c->warps)
                return -ENOMEM;
        if (L->shared_size) {
                c->shared = aligned_alloc(64, (L->shared_size + 63) & ~63ull);
                if (!c->shared)
                        return -ENOMEM;
        }
        for (uint32_t wi = 0; wi < L->nwarps; wi++) {
                uint8_t *f = aligned_alloc(64, L->frame_size);
                if (!f)
                        return -ENOMEM;
                memset(f, 0, L->frame_size);
                c->warps[wi].frames[0] = f;
                c->warps[wi].nframes = 1;
                /* thread indices are the same in every block: compute them once */
                uint32_t bx = L->l->block[0], by = L->l->block[1];
                for (uint32_t i = 0; i < WARP; i++) {
                        uint32_t t = wi * WARP + i;
                        c->warps[wi].tid[0][i] = t % bx;
                        c->warps[wi].tid[1][i] = (t / bx) % by;
                        c->warps[wi].tid[2][i] = t / (bx * by);
                }
        }
        return 0;
}

static void record_fault(struct exec_launch *L, struct exec_ctx *c, int r)
{
        pthread_mutex_lock(&L->lock);
        if (!atomic_load(&L->fault)) {
                struct ptx_launch_stats *s = &L->fault_info;
                const struct warp *w = &c->warps[c->fault_warp];
                int code = c->fault ? c->fault : r;
                s->fault_addr = c->fault_addr;
                s->fault_line = c->fault_line;
                for (int k = 0; k < 3; k++) {
                        s->fault_block[k] = c->ctaid[k];
                        s->fault_thread[k] = w->tid[k][c->fault_lane & 31];
                }
                atomic_store(&L->fault, code);
        }
        pthread_mutex_unlock(&L->lock);
}

/* Run blocks from the shared counter until none is left or the launch faulted. */
static void run_blocks(struct exec_launch *L)
{
        struct exec_ctx c;
        int r = ctx_init(&c, L);
        if (r) {
                c.fault = r;
                record_fault(L, &c, r);
        }
        while (!r && !atomic_load(&L->fault)) {
                uint64_t b = atomic_fetch_add(&L->next_block, 1);
                if (b >= L->nblocks)
                        break;
                /* The budget and cancellation hold between blocks too: a grid of many short
                 * blocks has no backward branch where the executor would check them. */
                r = exec_check_budget(&c);
                if (!r)
                        r = exec_block(&c, b);
                if (r)
                        record_fault(L, &c, r);
        }
        pthread_mutex_lock(&L->lock);
        L->warp_insns += c.warp_insns;
        L->thread_insns += c.thread_insns;
        pthread_mutex_unlock(&L->lock);
        exec_ctx_free(&c);
}

static void *pool_main(void *arg)
{
        struct ptx_pool *p = arg;
        uint64_t seen = 0;
        unsigned index = 0;

        pthread_mutex_lock(&p->lock);
        /* this thread's index: its position in the array */
        for (unsigned i = 0; i < p->n; i++) {
                if (pthread_equal(p->threads[i], pthread_self()))
                        index = i;
        }
        for (;;) {
                while (!p->stop && p->job_gen == seen)
                        pthread_cond_wait(&p->work_cv, &p->lock);
                if (p->stop)
                        break;
                seen = p->job_gen;
                if (index >= p->job_workers)
                        continue;
                struct exec_launch *L = p->job;
                pthread_mutex_unlock(&p->lock);
                run_blocks(L);
                pthread_mutex_lock(&p->lock);
                if (--p->running == 0)
                        pthread_cond_broadcast(&p->done_cv);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

VGPU_EXPORT int ptx_pool_new(unsigned workers, struct ptx_pool **ret_pool)
{
        struct ptx_pool *p;
        if (workers < 1 || workers > 256 || !ret_pool)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->threads = calloc(workers, sizeof(*p->threads));
        if (!p->threads)
                goto err_free;
        pthread_mutex_init(&p->lock, NULL);
        pthread_mutex_init(&p->launch_lock, NULL);
        pthread_cond_init(&p->work_cv, NULL);
        pthread_cond_init(&p->done_cv, NULL);
        /* hold the lock while starting so every worker sees the whole thread array */
        pthread_mutex_lock(&p->lock);
        for (unsigned i = 0; i < workers; i++) {
                if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0) {
                        p->stop = true;
                        pthread_cond_broadcast(&p->work_cv);
                        pthread_mutex_unlock(&p->lock);
                        for (unsigned j = 0; j < i; j++)
                                pthread_join(p->threads[j], NULL);
                        goto err_sync;
                }
                p->n++;
        }
        pthread_mutex_unlock(&p->lock);
        *ret_pool = p;
        return 0;

err_sync:
        pthread_cond_destroy(&p->work_cv);
        pthread_cond_destroy(&p->done_cv);
        pthread_mutex_destroy(&p->lock);
        pthread_mutex_destroy(&p->launch_lock);
        free(p->threads);
err_free:
        free(p);
        return -ENOMEM;
}

VGPU_EXPORT void ptx_pool_free(struct ptx_pool *p)
{
        if (!p)
                return;
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->n; i++)
                pthread_join(p->threads[i], NULL);
        pthread_cond_destroy(&p->work_cv);
        pthread_cond_destroy(&p->done_cv);
        pthread_mutex_destroy(&p->lock);
        pthread_mutex_destroy(&p->launch_lock);
        free(p->threads);
        free(p);
}

static int launch_check(const struct ptx_launch *l)
{
        if (!l || !l->kernel)
                return PTX_ELAUNCH;
        const struct ptx_func *fn = &l->kernel->mod->funcs[l->kernel->func];
        uint64_t threads = (uint64_t)l->block[0] * l->block[1] * l->block[2];
        if (!l->grid[0] || !l->grid[1] || !l->grid[2] || l->grid[1] > 65535 || l->grid[2] > 65535 ||
            l->grid[0] > 0x7fffffffu)
                return PTX_ELAUNCH;
        if (!threads || threads > 1024 || l->block[0] > 1024 || l->block[1] > 1024 ||
            l->block[2] > 64)
                return PTX_ELAUNCH;
        if (l->dynamic_shared > DYN_SHARED_MAX)
                return PTX_ELAUNCH;
        if (fn->kparam_bytes && (!l->params || l->params_size < fn->kparam_bytes))
                return PTX_ELAUNCH;
        if (fn->maxntid && threads > fn->maxntid)
                return PTX_ELAUNCH;
        if (fn->reqntid[0] && (l->block[0] != fn->reqntid[0] || l->block[1] != fn->reqntid[1] ||
                               l->block[2] != fn->reqntid[2]))
                return PTX_ELAUNCH;
        return 0;
}

VGPU_EXPORT int ptx_launch(const struct ptx_launch *l, struct ptx_launch_stats *ret_stats)
{
        int r = launch_check(l);
        if (r)
                return r;
        const struct ptx_module *mod = l->kernel->mod;
        struct exec_launch L;
        memset(&L, 0, sizeof(L));
        L.l = l;
        L.mod = mod;
        L.kfn_index = l->kernel->func;
        L.kfn = &mod->funcs[L.kfn_index];
        L.params = l->params;
        L.nthreads = l->block[0] * l->block[1] * l->block[2];
        L.nwarps = (L.nthreads + WARP - 1) / WARP;
        L.nblocks = (uint64_t)l->grid[0] * l->grid[1] * l->grid[2];
        if (l->block_count) {
                if (l->first_block >= L.nblocks || l->block_count > L.nblocks - l->first_block)
                        return PTX_ELAUNCH;
                L.nblocks = l->first_block + l->block_count;
        } else if (l->first_block) {
                return PTX_ELAUNCH;
        }
        /* the kernel's variables keep their module offsets: the block's memory runs to the end
         * of the last of them, though the kernel is charged only what they take (link.c) */
        L.dyn_base = (L.kfn->shared_extent + 15) & ~15ull;
        L.shared_size = L.dyn_base + l->dynamic_shared;
        L.total_smem = L.kfn->static_shared + l->dynamic_shared;
        L.frame_size = FRAME_HDR + mod->max_frame + (size_t)WARP * mod->max_param +
                       (size_t)WARP * mod->max_local;
        if (L.frame_size > FRAME_MAX)
                return PTX_ELAUNCH; /* the kernel needs more registers than the sim allows */
        L.globals_base = mod->globals_base;
        L.globals = mod->globals;
        L.globals_size = mod->globals_size;
        atomic_init(&L.next_block, l->first_block);
        atomic_init(&L.fault, 0);
        atomic_init(&L.work, 0);
        pthread_mutex_init(&L.lock, NULL);

        struct ptx_pool *p = l->pool;
        if (!p) {
                run_blocks(&L);
        } else {
                unsigned n = l->workers && l->workers < p->n ? l->workers : p->n;
                if ((uint64_t)n > L.nblocks - l->first_block)
                        n = (unsigned)(L.nblocks - l->first_block);
                pthread_mutex_lock(&p->launch_lock);
                pthread_mutex_lock(&p->lock);
                p->job = &L;
                p->job_workers = n;
                p->running = n;
                p->job_gen++;
                pthread_cond_broadcast(&p->work_cv);
                while (p->running)
                        pthread_cond_wait(&p->done_cv, &p->lock);
                p->job = NULL;
                pthread_mutex_unlock(&p->lock);
                pthread_mutex_unlock(&p->launch_lock);
        }
        r = atomic_load(&L.fault);
        if (ret_stats) {
                *ret_stats = L.fault_info;
                if (!r)
                        memset(ret_stats, 0, sizeof(*ret_stats));
                ret_stats->warp_insns = L.warp_insns;
                ret_stats->thread_insns = L.thread_insns;
        }
        pthread_mutex_destroy(&L.lock);
        return r;
}
