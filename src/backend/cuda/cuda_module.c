// SPDX-License-Identifier: Apache-2.0
// The cuda backend's modules and launches: a guest's image is checked before the driver sees it
// (the driver trusts the sizes inside), kernels' parameter layouts come from the driver, and a
// launch passes the guest's parameter buffer as it is, timed by events while its vGPU is gated.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_drv.h"
#include "backend/cuda/cuda_int.h"
#include "common/log.h"
#include "ptx/ptx.h"

#define MAX_PARAMS 4097 /* more than the wire allows: such a kernel is refused */
#define NAME_MAX_  256

struct cuda_func {
        struct cuda_func *next;
        CUfunction f;
        struct backend_func_info info;
        uint32_t *off; /* offset and size of each parameter, in pairs */
        /*
         * The dynamic shared memory its launches may use (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_
         * SIZE_BYTES), raised by the launch that needs more: the guest driver enforces the opt-in
         * (cuFuncSetAttribute), the real driver refuses more than 48 KiB without one.
         */
        uint32_t max_dynamic;
        char name[NAME_MAX_];
};

struct backend_module {
        struct backend_dev *d;
        CUmodule mod;
        struct cuda_func *funcs;
};

static uint32_t rd32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, 4);
        return v;
}

static uint64_t rd64(const uint8_t *p)
{
        uint64_t v;

        memcpy(&v, p, 8);
        return v;
}

/*
 * The driver trusts the sizes inside an image; a guest's image is checked first so that they
 * stay inside the bytes it sent. A fatbinary's containers and entries, a cubin's headers and
 * sections; anything else is PTX text, which the copy NUL-terminates. *ret_off: where the
 * image the driver gets starts (past nvcc's wrapper).
 */
static int image_check(const uint8_t *p, size_t n, size_t *ret_off)
{
        *ret_off = 0;
        if (n >= 16 && rd32(p) == 0x466243b1u) {
                /* nvcc's wrapper with the fatbinary right behind it */
                if (n >= 40 && rd32(p + 24) == 0xba55ed50u)
                        *ret_off = 24;
                else if (n >= 32 && rd32(p + 16) == 0xba55ed50u)
                        *ret_off = 16;
                else
                        return PTX_EFORMAT;
                p += *ret_off;
                n -= *ret_off;
        }
        if (n >= 16 && rd32(p) == 0xba55ed50u) {
                size_t off = 0;

                while (off + 16 <= n && rd32(p + off) == 0xba55ed50u) {
                        uint16_t hdr;
                        uint64_t body;
                        const uint8_t *e, *end;

                        memcpy(&hdr, p + off + 6, 2);
                        body = rd64(p + off + 8);
                        if (hdr < 16 || hdr > n - off || body > n - off - hdr)
                                return PTX_EFORMAT;
                        e = p + off + hdr;
                        end = e + body;
                        while ((size_t)(end - e) >= 64) {
                                uint32_t ehdr = rd32(e + 4);
                                uint64_t psize = rd64(e + 8);

                                if (ehdr < 64 || ehdr > (size_t)(end - e) ||
                                    psize > (size_t)(end - e) - ehdr)
                                        return PTX_EFORMAT;
                                e += ehdr + psize;
                        }
                        off += hdr + body;
                }
                return 0;
        }
        if (n >= 64 && memcmp(p,
                              "\x7f"
                              "ELF",
                              4) == 0) {
                uint64_t shoff = rd64(p + 40), phoff = rd64(p + 32);
                uint16_t shentsize, shnum, phentsize, phnum;

                if (p[4] != 2) /* ELFCLASS64 */
                        return PTX_EFORMAT;
                memcpy(&phentsize, p + 54, 2);
                memcpy(&phnum, p + 56, 2);
                memcpy(&shentsize, p + 58, 2);
                memcpy(&shnum, p + 60, 2);
                if ((shnum &&
                     (shentsize < 64 || shoff > n || (uint64_t)shnum * shentsize > n - shoff)) ||
                    (phnum &&
                     (phentsize < 56 || phoff > n || (uint64_t)phnum * phentsize > n - phoff)))
                        return PTX_EFORMAT;
                for (uint16_t i = 0; i < shnum; i++) {
                        const uint8_t *sh = p + shoff + (uint64_t)i * shentsize;
                        uint32_t type = rd32(sh + 4);
                        uint64_t off = rd64(sh + 24), size = rd64(sh + 32);

                        if (type != 8 /* SHT_NOBITS */ && (off > n || size > n - off))
                                return PTX_EFORMAT;
                }
                for (uint16_t i = 0; i < phnum; i++) {
                        const uint8_t *ph = p + phoff + (uint64_t)i * phentsize;
                        uint64_t off = rd64(ph + 8), size = rd64(ph + 32);

                        if (off > n || size > n - off)
                                return PTX_EFORMAT;
                }
                return 0;
        }
        return 0; /* PTX text */
}

int cuda_module_load(struct backend_dev *d, const void *image, size_t len,
                     const struct backend_allocator *alloc, struct backend_module **ret,
                     uint64_t *ret_globals, char *log, size_t log_len)
{
        struct backend_module *m;
        CUjit_option opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
        void *vals[2];
        uint8_t *copy;
        size_t off;
        CUresult cr;
        int e;

        (void)alloc;
        if (cuda_lost(d))
                return cuda_lost(d);
        e = image_check(image, len, &off);
        if (e < 0) {
                snprintf(log, log_len, "the image's headers point outside its %zu bytes", len);
                return e;
        }
        m = calloc(1, sizeof(*m));
        copy = malloc(len - off + 1);
        if (!m || !copy) {
                free(m);
                free(copy);
                return -ENOMEM;
        }
        memcpy(copy, (const uint8_t *)image + off, len - off);
        copy[len - off] = '\0';
        if (log_len)
                log[0] = '\0';
        vals[0] = log;
        vals[1] = (void *)(uintptr_t)log_len;
        cuda_make_current(d);
        cr = cu.module_load_data_ex(&m->mod, copy, log_len ? 2 : 0, opts, vals);
        free(copy);
        if (cr != CUDA_SUCCESS) {
                if (log_len && !log[0])
                        snprintf(log, log_len, "the driver refused the image: %s", cuda_errstr(cr));
                free(m);
                return cuda_result(d, cr);
        }
        m->d = d;
        *ret = m;
        *ret_globals = 0; /* the driver places a module's variables itself */
        return 0;
}

void cuda_module_free(struct backend_module *m)
{
        if (!m)
                return;
        while (m->funcs) {
                struct cuda_func *f = m->funcs;

                m->funcs = f->next;
                free(f->off);
                free(f);
        }
        cuda_make_current(m->d);
        cu.module_unload(m->mod);
        free(m);
}

static int func_attr(CUfunction f, CUfunction_attribute a)
{
        int v = 0;

        return cu.func_get_attribute(&v, a, f) == CUDA_SUCCESS ? v : 0;
}

int cuda_module_function(struct backend_module *m, const char *name, struct backend_func **ret)
{
        struct cuda_func *f;
        CUresult cr;

        if (cuda_lost(m->d))
                return cuda_lost(m->d);
        if (strlen(name) >= NAME_MAX_)
                return -EINVAL;
        for (f = m->funcs; f; f = f->next) {
                if (strcmp(f->name, name) == 0) {
                        *ret = (struct backend_func *)f;
                        return 0;
                }
        }
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        cuda_make_current(m->d);
        cr = cu.module_get_function(&f->f, m->mod, name);
        if (cr != CUDA_SUCCESS) {
                free(f);
                return cr == CUDA_ERROR_NOT_FOUND ? PTX_ENOTFOUND : cuda_result(m->d, cr);
        }
        snprintf(f->name, sizeof(f->name), "%s", name);
        /* The parameter layout, as the driver read it from the image. */
        for (uint32_t i = 0; i < MAX_PARAMS; i++) {
                size_t off = 0, size = 0;
                uint32_t *no;

                if (cu.func_get_param_info(f->f, i, &off, &size) != CUDA_SUCCESS)
                        break;
                no = realloc(f->off, 2 * (i + 1) * sizeof(*no));
                if (!no || off > UINT32_MAX || size > UINT32_MAX) {
                        free(no ? no : f->off);
                        free(f);
                        return -ENOMEM;
                }
                f->off = no;
                f->info.n_params = i + 1;
                if (off + size > f->info.param_size)
                        f->info.param_size = (uint32_t)(off + size);
                no[2 * i] = (uint32_t)off;
                no[2 * i + 1] = (uint32_t)size;
        }
        f->info.static_shared = (uint32_t)func_attr(f->f, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES);
        f->info.max_threads = (uint32_t)func_attr(f->f, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
        f->max_dynamic = (uint32_t)func_attr(f->f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
        f->next = m->funcs;
        m->funcs = f;
        *ret = (struct backend_func *)f;
        return 0;
}

int cuda_module_global(struct backend_module *m, const char *name, uint64_t *ret_addr,
                       uint64_t *ret_size)
{
        CUdeviceptr p = 0;
        size_t size = 0;
        CUresult cr;

        if (cuda_lost(m->d))
                return cuda_lost(m->d);
        cuda_make_current(m->d);
        cr = cu.module_get_global(&p, &size, m->mod, name);
        if (cr != CUDA_SUCCESS)
                return cr == CUDA_ERROR_NOT_FOUND ? PTX_ENOTFOUND : cuda_result(m->d, cr);
        *ret_addr = p;
        *ret_size = size;
        return 0;
}

static const struct cuda_func *func_of(const struct backend_func *f)
{
        return (const struct cuda_func *)(const void *)f;
}

void cuda_func_info(const struct backend_func *f, struct backend_func_info *ret)
{
        *ret = func_of(f)->info;
}

int cuda_func_param(const struct backend_func *f, uint32_t i, uint32_t *ret_off, uint32_t *ret_size)
{
        const struct cuda_func *cf = func_of(f);

        if (i >= cf->info.n_params)
                return -ENOENT;
        *ret_off = cf->off[2 * i];
        *ret_size = cf->off[2 * i + 1];
        return 0;
}

const char *cuda_func_name(const struct backend_func *f)
{
        return func_of(f)->name;
}

/*
 * Let f's launches use shared bytes of dynamic shared memory, once more than it may. The function
 * is the session's own, and only its thread launches it: the write is not racing.
 */
static int dynamic_shared(struct backend_dev *d, const struct cuda_func *cf, uint32_t shared)
{
        CUresult cr;

        if (shared <= cf->max_dynamic)
                return 0;
        cr = cu.func_set_attribute(cf->f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                   (int)shared);
        if (cr != CUDA_SUCCESS)
                return cuda_result(d, cr);
        ((struct cuda_func *)(uintptr_t)cf)->max_dynamic = shared;
        return 0;
}

int cuda_launch(struct backend_queue *q, const struct backend_func *f,
                const struct backend_launch *l, struct backend_launch_stats *ret_stats)
{
        const struct cuda_func *cf = func_of(f);
        void *args[MAX_PARAMS];
        int e;

        *ret_stats = (struct backend_launch_stats){0};
        if (cuda_lost(q->d))
                return cuda_lost(q->d);
        /* Pointers into the guest's buffer at each parameter's offset: the driver's fast path. */
        for (uint32_t i = 0; i < cf->info.n_params; i++)
                args[i] = (uint8_t *)(uintptr_t)l->params + cf->off[2 * i];
        cuda_make_current(q->d);
        e = l->shared > INT32_MAX ? -EINVAL : dynamic_shared(q->d, cf, l->shared);
        if (e)
                return e;
        if (q->timing) {
                unsigned i;

                if (q->tail - q->head == TIMED)
                        q->carry += cuda_collect(q, true);
                i = q->tail % TIMED;
                cu.event_record(q->start[i], q->stream);
                e = cuda_result(q->d,
                                cu.launch_kernel(cf->f, l->grid[0], l->grid[1], l->grid[2],
                                                 l->block[0], l->block[1], l->block[2], l->shared,
                                                 q->stream, cf->info.n_params ? args : NULL, NULL));
                cu.event_record(q->end[i], q->stream);
                q->tail++;
                return e;
        }
        return cuda_result(q->d,
                           cu.launch_kernel(cf->f, l->grid[0], l->grid[1], l->grid[2], l->block[0],
                                            l->block[1], l->block[2], l->shared, q->stream,
                                            cf->info.n_params ? args : NULL, NULL));
}
