// SPDX-License-Identifier: Apache-2.0
// The sim backend's execution: a worker pool that runs kernels through the PTX interpreter, and
// copies and fills on the framebuffer's host mapping (which sits at the device address, so a
// device pointer is a host pointer in the engine). Work runs when it is queued: queues are
// always idle.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sim/sim.h"
#include "ptx/ptx.h"

struct backend_dev {
        struct ptx_pool *pool;
        unsigned workers;
        uint64_t work_budget;
};

struct backend_queue {
        struct backend_dev *d;
};

struct backend_module {
        struct ptx_module *mod;
        uint64_t globals;
        struct backend_allocator alloc;
};

static void *host(uint64_t dptr)
{
        return (void *)(uintptr_t)dptr;
}

static int sim_dev_open(const struct backend_dev_req *req, struct backend_dev **ret, char *err,
                        size_t err_len)
{
        struct backend_dev *d = calloc(1, sizeof(*d));
        int r;

        if (!d)
                return -ENOMEM;
        d->workers = req->sim_workers >= 1 && req->sim_workers <= 64 ? req->sim_workers : 2;
        d->work_budget = req->sim_work_budget;
        r = ptx_pool_new(d->workers, &d->pool);
        if (r < 0) {
                if (err_len)
                        snprintf(err, err_len, "worker pool: %s", ptx_strerror(r));
                free(d);
                return r;
        }
        *ret = d;
        return 0;
}

static void sim_dev_close(struct backend_dev *d)
{
        if (!d)
                return;
        ptx_pool_free(d->pool);
        free(d);
}

static int sim_host_register(struct backend_dev *d, void *p, size_t len)
{
        (void)d, (void)p, (void)len;
        return 0;
}

static void sim_host_unregister(struct backend_dev *d, void *p)
{
        (void)d, (void)p;
}

static int sim_queue_new(struct backend_dev *d, struct backend_queue **ret)
{
        struct backend_queue *q = calloc(1, sizeof(*q));

        if (!q)
                return -ENOMEM;
        q->d = d;
        *ret = q;
        return 0;
}

static void sim_queue_free(struct backend_queue *q)
{
        free(q);
}

static int sim_queue_sync(struct backend_queue *q)
{
        (void)q;
        return 0;
}

static int sim_copy_htod(struct backend_queue *q, uint64_t dst, const void *src, uint64_t len)
{
        (void)q;
        memcpy(host(dst), src, len);
        return 0;
}

static int sim_copy_dtoh(struct backend_queue *q, void *dst, uint64_t src, uint64_t len)
{
        (void)q;
        memcpy(dst, host(src), len);
        return 0;
}

static int sim_copy_dtod(struct backend_queue *q, uint64_t dst, uint64_t src, uint64_t len)
{
        (void)q;
        memmove(host(dst), host(src), len);
        return 0;
}

static int sim_memset(struct backend_queue *q, uint64_t dst, uint64_t pitch, uint32_t value,
                      uint32_t elem_size, uint64_t width, uint64_t height)
{
        (void)q;
        for (uint64_t y = 0; y < height; y++) {
                uint8_t *p = host(dst + y * pitch);

                if (elem_size == 1) {
                        memset(p, (int)(value & 0xff), width);
                } else if (elem_size == 2) {
                        uint16_t v16 = (uint16_t)value;

                        for (uint64_t i = 0; i < width; i++)
                                memcpy(p + 2 * i, &v16, 2);
                } else {
                        for (uint64_t i = 0; i < width; i++)
                                memcpy(p + 4 * i, &value, 4);
                }
        }
        return 0;
}

static int sim_module_load(struct backend_dev *d, const void *image, size_t len,
                           const struct backend_allocator *alloc, struct backend_module **ret,
                           uint64_t *ret_globals, char *log, size_t log_len)
{
        struct backend_module *m;
        uint64_t globals = 0;
        size_t gsize;
        int e;

        (void)d;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        e = ptx_module_load(image, len, &m->mod, log, log_len);
        if (e < 0) {
                free(m);
                return e;
        }
        gsize = ptx_module_globals_size(m->mod);
        if (gsize) {
                e = alloc->alloc(alloc->ctx, gsize, &globals);
                if (e == 0) {
                        memcpy(host(globals), ptx_module_globals_image(m->mod), gsize);
                        e = ptx_module_bind_globals(m->mod, globals);
                        if (e < 0)
                                alloc->free(alloc->ctx, globals);
                }
                if (e < 0) {
                        ptx_module_free(m->mod);
                        free(m);
                        return e;
                }
        }
        m->globals = globals;
        m->alloc = *alloc;
        *ret = m;
        *ret_globals = globals;
        return 0;
}

static void sim_module_free(struct backend_module *m)
{
        if (!m)
                return;
        if (m->globals)
                m->alloc.free(m->alloc.ctx, m->globals);
        ptx_module_free(m->mod);
        free(m);
}

static const struct ptx_kernel *kernel_of(const struct backend_func *f)
{
        return (const struct ptx_kernel *)(const void *)f;
}

static int sim_module_function(struct backend_module *m, const char *name,
                               struct backend_func **ret)
{
        const struct ptx_kernel *k;
        int e = ptx_module_get_kernel(m->mod, name, &k);

        if (e < 0)
                return e;
        *ret = (struct backend_func *)(uintptr_t)(const void *)k;
        return 0;
}

static int sim_module_global(struct backend_module *m, const char *name, uint64_t *ret_addr,
                             uint64_t *ret_size)
{
        size_t size;
        void *h;
        int e = ptx_module_global(m->mod, name, ret_addr, &size, &h);

        if (e == 0)
                *ret_size = size;
        return e;
}

static void sim_func_info(const struct backend_func *f, struct backend_func_info *ret)
{
        const struct ptx_kernel *k = kernel_of(f);
        struct ptx_kernel_attrs a;

        ptx_kernel_get_attrs(k, &a);
        *ret = (struct backend_func_info){
                .n_params = (uint32_t)ptx_kernel_param_count(k),
                .param_size = (uint32_t)ptx_kernel_param_size(k),
                .static_shared = (uint32_t)ptx_kernel_static_shared(k),
                .max_threads = a.max_threads,
        };
}

static int sim_func_param(const struct backend_func *f, uint32_t i, uint32_t *ret_off,
                          uint32_t *ret_size)
{
        const struct ptx_kernel *k = kernel_of(f);
        size_t off, size;

        if (i >= ptx_kernel_param_count(k))
                return -ENOENT;
        ptx_kernel_param_info(k, i, &off, &size);
        *ret_off = (uint32_t)off;
        *ret_size = (uint32_t)size;
        return 0;
}

static const char *sim_func_name(const struct backend_func *f)
{
        return ptx_kernel_name(kernel_of(f));
}

struct sim_view {
        backend_find_fn find;
        void *ctx;
};

static int sim_mem(void *ctx, uint64_t addr, uint64_t len, struct ptx_mem_region *ret)
{
        struct sim_view *v = ctx;
        struct backend_region r;
        int e = v->find(v->ctx, addr, len, &r);

        if (e < 0)
                return e;
        *ret = (struct ptx_mem_region){.base = r.base, .size = r.size, .host = host(r.base)};
        return 0;
}

static int sim_launch(struct backend_queue *q, const struct backend_func *f,
                      const struct backend_launch *l, struct backend_launch_stats *ret_stats)
{
        struct ptx_launch_stats st = {0};
        struct sim_view v = {.find = l->find, .ctx = l->find_ctx};
        struct ptx_launch pl = {
                .kernel = kernel_of(f),
                .grid = {l->grid[0], l->grid[1], l->grid[2]},
                .block = {l->block[0], l->block[1], l->block[2]},
                .dynamic_shared = l->shared,
                .params = l->params,
                .params_size = l->params_size,
                .mem = l->find ? sim_mem : NULL,
                .mem_ctx = &v,
                .pool = q->d->pool,
                .workers = q->d->workers,
                .work_budget = q->d->work_budget,
                .cancel = l->cancel,
        };
        int e = ptx_launch(&pl, &st);

        *ret_stats = (struct backend_launch_stats){
                .work = st.warp_insns, .fault_addr = st.fault_addr, .fault_line = st.fault_line};
        return e;
}

const struct backend_ops backend_sim_ops = {
        .name = "sim",
        .dev_open = sim_dev_open,
        .dev_close = sim_dev_close,
        .fb_reserve = sim_fb_reserve,
        .fb_release = sim_fb_release,
        .fb_resident = sim_fb_resident,
        .fb_remap = sim_fb_remap,
        .fb_export = sim_fb_export,
        .fb_import = sim_fb_import,
        .host_register = sim_host_register,
        .host_unregister = sim_host_unregister,
        .queue_new = sim_queue_new,
        .queue_free = sim_queue_free,
        .queue_sync = sim_queue_sync,
        .copy_htod = sim_copy_htod,
        .copy_dtoh = sim_copy_dtoh,
        .copy_dtod = sim_copy_dtod,
        .memset = sim_memset,
        .module_load = sim_module_load,
        .module_free = sim_module_free,
        .module_function = sim_module_function,
        .module_global = sim_module_global,
        .func_info = sim_func_info,
        .func_param = sim_func_param,
        .func_name = sim_func_name,
        .launch = sim_launch,
};
