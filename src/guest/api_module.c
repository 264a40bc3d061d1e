// SPDX-License-Identifier: Apache-2.0
// Modules, libraries, kernels and launches. A module image is measured here (a pointer has no
// size), staged to the engine and loaded there; a function's parameter layout comes back with it,
// so kernelParams can be packed into the launch's parameter buffer without another round trip.
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"

#define FATBIN_MAGIC      0xba55ed50u
#define FATBIN_WRAP_MAGIC 0x466243b1u
#define IMAGE_MAX         (512u << 20)

/* How many bytes a module image spans, from its own headers; 0 when unknown. */
static size_t image_size(const void *image, const void **ret_start)
{
        const uint8_t *p = image;
        uint32_t magic;

        memcpy(&magic, p, 4);
        *ret_start = image;
        if (magic == FATBIN_WRAP_MAGIC) {
                /* nvcc's wrapper: { magic, version, const void *fatbin, ... } */
                const void *inner;

                memcpy(&inner, p + 8, sizeof(inner));
                if (!inner)
                        return 0;
                return image_size(inner, ret_start);
        }
        if (magic == FATBIN_MAGIC) {
                uint16_t hdr;
                uint64_t body;

                memcpy(&hdr, p + 6, 2);
                memcpy(&body, p + 8, 8);
                if (hdr < 16 || body > IMAGE_MAX)
                        return 0;
                return hdr + body;
        }
        if (magic == 0x464c457fu) { /* ELF: as far as its section and program header tables */
                uint64_t shoff, phoff, end;
                uint16_t shentsize, shnum, phentsize, phnum;

                memcpy(&phoff, p + 32, 8);
                memcpy(&shoff, p + 40, 8);
                memcpy(&phentsize, p + 54, 2);
                memcpy(&phnum, p + 56, 2);
                memcpy(&shentsize, p + 58, 2);
                memcpy(&shnum, p + 60, 2);
                end = shoff + (uint64_t)shentsize * shnum;
                if (phoff + (uint64_t)phentsize * phnum > end)
                        end = phoff + (uint64_t)phentsize * phnum;
                return end > IMAGE_MAX ? 0 : end;
        }
        /* PTX text: NUL-terminated. */
        return strnlen((const char *)p, IMAGE_MAX) + 1;
}

static CUresult load_image(struct gctx *c, const void *image, size_t len, struct gmodule **ret)
{
        struct gdev *d = c->dev;
        struct vgpu_req_module_load q;
        struct vgpu_rep_module_load rep = {0};
        struct gmodule *m;
        CUresult r;

        if (!len || len > d->v.stage_size)
                return CUDA_ERROR_INVALID_IMAGE;
        m = guest_alloc(sizeof(*m));
        if (!m)
                return CUDA_ERROR_OUT_OF_MEMORY;
        /* The whole staging area: wait for all work that may still use it. */
        pthread_mutex_lock(&d->lock);
        r = CUDA_SUCCESS;
        for (unsigned i = 0; i < VGPU_STAGE_CHUNKS && r == CUDA_SUCCESS; i++)
                r = guest_wait_slot(d, d->stage_slot[i], d->stage_seq[i]);
        if (r == CUDA_SUCCESS)
                memcpy(d->v.stage, image, len);
        pthread_mutex_unlock(&d->lock);
        q = (struct vgpu_req_module_load){.ctx = c->handle, .stage_off = 0, .len = len};
        if (r == CUDA_SUCCESS)
                r = guest_call(d, VGPU_OP_MODULE_LOAD, &q, sizeof(q), NULL, 0, &rep, sizeof(rep));
        if (r != CUDA_SUCCESS) {
                rep.log[sizeof(rep.log) - 1] = '\0';
                if (rep.log[0])
                        vgpu_log(VGPU_LOG_WARN, "module load: %s", rep.log);
                guest_unalloc(m);
                return r;
        }
        m->magic = MAGIC_MODULE;
        m->ctx = c;
        m->handle = rep.module;
        *ret = m;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleLoadData(CUmodule *module, const void *image)
{
        struct gctx *c;
        struct gmodule *m;
        const void *start;
        size_t len;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (!module || !image)
                return CUDA_ERROR_INVALID_VALUE;
        len = image_size(image, &start);
        r = load_image(c, start, len, &m);
        if (r == CUDA_SUCCESS)
                *module = (CUmodule)m;
        return r;
}

CUresult CUDAAPI cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
                                    CUjit_option *options, void **optionValues)
{
        (void)numOptions, (void)options, (void)optionValues;
        return cuModuleLoadData(module, image);
}

CUresult CUDAAPI cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin)
{
        return cuModuleLoadData(module, fatCubin);
}

CUresult CUDAAPI cuModuleLoad(CUmodule *module, const char *fname)
{
        struct gctx *c;
        struct gmodule *m;
        FILE *f;
        long len;
        void *buf;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (!module || !fname)
                return CUDA_ERROR_INVALID_VALUE;
        f = fopen(fname, "rb");
        if (!f)
                return CUDA_ERROR_FILE_NOT_FOUND;
        if (fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) <= 0 || len > (long)IMAGE_MAX ||
            fseek(f, 0, SEEK_SET) < 0) {
                fclose(f);
                return CUDA_ERROR_INVALID_IMAGE;
        }
        buf = malloc((size_t)len + 1);
        if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
                free(buf);
                fclose(f);
                return CUDA_ERROR_FILE_NOT_FOUND;
        }
        fclose(f);
        ((char *)buf)[len] = '\0';
        r = load_image(c, buf, (size_t)len + 1, &m);
        free(buf);
        if (r == CUDA_SUCCESS)
                *module = (CUmodule)m;
        return r;
}

static bool module_valid(const struct gmodule *m)
{
        return m && m->magic == MAGIC_MODULE && m->ctx->magic == MAGIC_CTX;
}

/* Module variables outside the framebuffer range, as cuModuleGetGlobal found them. */
struct gvar {
        struct gdev *dev;
        const struct gmodule *mod;
        uint64_t base, size;
};

static struct gvar *vars;
static size_t n_vars;
static pthread_mutex_t vars_lock = PTHREAD_MUTEX_INITIALIZER;

static void var_add(const struct gmodule *m, uint64_t base, uint64_t size)
{
        struct gdev *d = m->ctx->dev;
        struct gvar *nv;

        if (!size || (base >= d->device_address && base - d->device_address < d->fb_size))
                return;
        pthread_mutex_lock(&vars_lock);
        for (size_t i = 0; i < n_vars; i++) {
                if (vars[i].mod == m && vars[i].base == base) {
                        pthread_mutex_unlock(&vars_lock);
                        return;
                }
        }
        nv = realloc(vars, (n_vars + 1) * sizeof(*nv));
        if (nv) {
                vars = nv;
                vars[n_vars++] = (struct gvar){.dev = d, .mod = m, .base = base, .size = size};
        }
        pthread_mutex_unlock(&vars_lock);
}

static void var_drop(const struct gmodule *m)
{
        pthread_mutex_lock(&vars_lock);
        for (size_t i = n_vars; i-- > 0;) {
                if (vars[i].mod == m)
                        vars[i] = vars[--n_vars];
        }
        pthread_mutex_unlock(&vars_lock);
}

bool guest_var_range(const struct gdev *d, CUdeviceptr p, size_t len)
{
        bool in = false;

        pthread_mutex_lock(&vars_lock);
        for (size_t i = 0; i < n_vars && !in; i++) {
                in = vars[i].dev == d && p >= vars[i].base && len <= vars[i].size &&
                     p - vars[i].base <= vars[i].size - len;
        }
        pthread_mutex_unlock(&vars_lock);
        return in;
}

struct gdev *guest_var_device(CUdeviceptr p)
{
        struct gdev *d = NULL;

        pthread_mutex_lock(&vars_lock);
        for (size_t i = 0; i < n_vars && !d; i++) {
                if (p >= vars[i].base && p - vars[i].base < vars[i].size)
                        d = vars[i].dev;
        }
        pthread_mutex_unlock(&vars_lock);
        return d;
}

CUresult CUDAAPI cuModuleUnload(CUmodule hmod)
{
        struct gmodule *m = (struct gmodule *)hmod;
        struct vgpu_req_module q;
        CUresult r;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!module_valid(m))
                return CUDA_ERROR_INVALID_HANDLE;
        guest_wait_ctx(m->ctx);
        q = (struct vgpu_req_module){.ctx = m->ctx->handle, .module = m->handle};
        r = guest_call(m->ctx->dev, VGPU_OP_MODULE_UNLOAD, &q, sizeof(q), NULL, 0, NULL, 0);
        var_drop(m);
        m->magic = MAGIC_DEAD;
        return r;
}

static CUresult get_function(struct gmodule *m, const char *name, struct gfunc **ret)
{
        struct vgpu_req_module_sym *q;
        struct vgpu_rep_function *rep;
        struct gfunc *f;
        CUresult r;

        if (strlen(name) >= VGPU_MAX_NAME)
                return CUDA_ERROR_NOT_FOUND;
        q = calloc(1, sizeof(*q));
        rep = calloc(1, sizeof(*rep));
        f = guest_alloc(sizeof(*f));
        if (!q || !rep || !f) {
                r = CUDA_ERROR_OUT_OF_MEMORY;
                goto out;
        }
        q->ctx = m->ctx->handle;
        q->module = m->handle;
        snprintf(q->name, sizeof(q->name), "%s", name);
        r = guest_call(m->ctx->dev, VGPU_OP_MODULE_FUNCTION, q, sizeof(*q), NULL, 0, rep,
                       sizeof(*rep));
        if (r != CUDA_SUCCESS)
                goto out;
        if (rep->n_params > VGPU_MAX_PARAMS || rep->param_size > VGPU_MAX_PARAM_BYTES) {
                r = CUDA_ERROR_UNKNOWN;
                goto out;
        }
        f->params = calloc(rep->n_params + 1, sizeof(*f->params));
        if (!f->params) {
                r = CUDA_ERROR_OUT_OF_MEMORY;
                goto out;
        }
        for (uint32_t i = 0; i < rep->n_params; i++) {
                /* The engine's answer bounds what we copy from the program's pointers. */
                if (rep->params[i].offset > rep->param_size ||
                    rep->params[i].size > rep->param_size - rep->params[i].offset) {
                        free(f->params);
                        r = CUDA_ERROR_UNKNOWN;
                        goto out;
                }
                f->params[i] = rep->params[i];
        }
        f->magic = MAGIC_FUNC;
        f->mod = m;
        f->handle = rep->func;
        f->n_params = rep->n_params;
        f->param_size = rep->param_size;
        f->static_shared = rep->static_shared;
        f->max_threads = rep->max_threads;
        f->max_dynamic_shared = 48 * 1024 - rep->static_shared;
        snprintf(f->name, sizeof(f->name), "%s", name);
        *ret = f;
        f = NULL;
out:
        guest_unalloc(f);
        free(q);
        free(rep);
        return r;
}

CUresult CUDAAPI cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
        struct gmodule *m = (struct gmodule *)hmod;
        struct gfunc *f;
        CUresult r;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!hfunc || !name)
                return CUDA_ERROR_INVALID_VALUE;
        if (!module_valid(m))
                return CUDA_ERROR_INVALID_HANDLE;
        r = get_function(m, name, &f);
        if (r == CUDA_SUCCESS)
                *hfunc = (CUfunction)f;
        return r;
}

CUresult CUDAAPI cuModuleGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod,
                                   const char *name)
{
        struct gmodule *m = (struct gmodule *)hmod;
        struct vgpu_req_module_sym *q;
        struct vgpu_rep_mem_alloc rep = {0};
        CUresult r;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!name)
                return CUDA_ERROR_INVALID_VALUE;
        if (!module_valid(m))
                return CUDA_ERROR_INVALID_HANDLE;
        if (strlen(name) >= VGPU_MAX_NAME)
                return CUDA_ERROR_NOT_FOUND;
        q = calloc(1, sizeof(*q));
        if (!q)
                return CUDA_ERROR_OUT_OF_MEMORY;
        q->ctx = m->ctx->handle;
        q->module = m->handle;
        snprintf(q->name, sizeof(q->name), "%s", name);
        r = guest_call(m->ctx->dev, VGPU_OP_MODULE_GLOBAL, q, sizeof(*q), NULL, 0, &rep,
                       sizeof(rep));
        free(q);
        if (r == CUDA_SUCCESS) {
                var_add(m, rep.dptr, rep.size);
                if (dptr)
                        *dptr = rep.dptr;
                if (bytes)
                        *bytes = rep.size;
        }
        return r;
}

/* ---- functions ---------------------------------------------------------------------------- */

static bool func_valid(const struct gfunc *f)
{
        return f && f->magic == MAGIC_FUNC && module_valid(f->mod);
}

CUresult CUDAAPI cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
        struct gfunc *f = (struct gfunc *)hfunc;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!pi)
                return CUDA_ERROR_INVALID_VALUE;
        if (!func_valid(f))
                return CUDA_ERROR_INVALID_HANDLE;
        switch (attrib) {
        case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
                *pi = (int)f->max_threads;
                break;
        case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES:
                *pi = (int)f->static_shared;
                break;
        case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES:
                *pi = 0;
                break;
        case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES:
                *pi = 0;
                break;
        case CU_FUNC_ATTRIBUTE_NUM_REGS:
                *pi = 32;
                break;
        case CU_FUNC_ATTRIBUTE_PTX_VERSION:
        case CU_FUNC_ATTRIBUTE_BINARY_VERSION:
                *pi = f->mod->ctx->dev->cc_major * 10 + f->mod->ctx->dev->cc_minor;
                break;
        case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA:
                *pi = 0;
                break;
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
                *pi = (int)f->max_dynamic_shared;
                break;
        case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
                *pi = -1;
                break;
        default:
                if ((int)attrib < 0 || attrib >= CU_FUNC_ATTRIBUTE_MAX)
                        return CUDA_ERROR_INVALID_VALUE;
                *pi = 0;
                break;
        }
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
        struct gfunc *f = (struct gfunc *)hfunc;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!func_valid(f))
                return CUDA_ERROR_INVALID_HANDLE;
        switch (attrib) {
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: {
                /* static and dynamic together: at most the device's opt-in limit per block */
                int optin = 0;

                if (cuDeviceGetAttribute(&optin,
                                         CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                                         f->mod->ctx->dev->ordinal) != CUDA_SUCCESS ||
                    value < 0 || (uint64_t)value + f->static_shared > (uint64_t)optin)
                        return CUDA_ERROR_INVALID_VALUE;
                f->max_dynamic_shared = (uint32_t)value;
                return CUDA_SUCCESS;
        }
        case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
                return value < -1 || value > 100 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
        case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES:
        case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES:
        case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES:
        case CU_FUNC_ATTRIBUTE_NUM_REGS:
        case CU_FUNC_ATTRIBUTE_PTX_VERSION:
        case CU_FUNC_ATTRIBUTE_BINARY_VERSION:
        case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA:
        case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET:
                return CUDA_ERROR_INVALID_VALUE; /* read-only, as on a GPU */
        default:
                /* clusters and scheduling preferences: taken, and without effect here */
                return (int)attrib < 0 || attrib >= CU_FUNC_ATTRIBUTE_MAX ? CUDA_ERROR_INVALID_VALUE
                                                                          : CUDA_SUCCESS;
        }
}

CUresult CUDAAPI cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config)
{
        (void)config;
        return func_valid((struct gfunc *)hfunc) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult CUDAAPI cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset,
                                    size_t *paramSize)
{
        struct gfunc *f = (struct gfunc *)func;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!func_valid(f))
                return CUDA_ERROR_INVALID_HANDLE;
        if (paramIndex >= f->n_params)
                return CUDA_ERROR_INVALID_VALUE;
        if (paramOffset)
                *paramOffset = f->params[paramIndex].offset;
        if (paramSize)
                *paramSize = f->params[paramIndex].size;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncGetName(const char **name, CUfunction hfunc)
{
        struct gfunc *f = (struct gfunc *)hfunc;

        if (!name)
                return CUDA_ERROR_INVALID_VALUE;
        if (!func_valid(f))
                return CUDA_ERROR_INVALID_HANDLE;
        *name = f->name;
        return CUDA_SUCCESS;
}

/* ---- libraries and kernels: context-independent; loaded into the current context on use ---- */

struct glibrary {
        uint32_t magic;
        void *image;
        size_t len;
        struct gmodule *mod; /* loaded into the context current when first needed */
};

struct gkernel {
        uint32_t magic;
        struct glibrary *lib;
        struct gfunc *func;
        char name[256];
};

CUresult CUDAAPI cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
                                   void **jitOptionsValues, unsigned int numJitOptions,
                                   CUlibraryOption *libraryOptions, void **libraryOptionValues,
                                   unsigned int numLibraryOptions)
{
        struct glibrary *l;
        struct gctx *c;
        const void *start;
        CUresult r = guest_ctx_get(NULL, &c);

        (void)jitOptions, (void)jitOptionsValues, (void)numJitOptions, (void)libraryOptions;
        (void)libraryOptionValues, (void)numLibraryOptions;
        if (r == CUDA_ERROR_INVALID_CONTEXT) {
                /* Libraries need no current context: device 0's primary context holds it. */
                CUcontext pc;

                r = cuDevicePrimaryCtxRetain(&pc, 0);
                c = (struct gctx *)pc;
        }
        if (r != CUDA_SUCCESS)
                return r;
        if (!library || !code)
                return CUDA_ERROR_INVALID_VALUE;
        l = guest_alloc(sizeof(*l));
        if (!l)
                return CUDA_ERROR_OUT_OF_MEMORY;
        l->len = image_size(code, &start);
        l->image = l->len ? malloc(l->len) : NULL;
        if (!l->image) {
                guest_unalloc(l);
                return CUDA_ERROR_INVALID_IMAGE;
        }
        memcpy(l->image, start, l->len);
        r = load_image(c, l->image, l->len, &l->mod);
        if (r != CUDA_SUCCESS) {
                free(l->image);
                guest_unalloc(l);
                return r;
        }
        l->magic = MAGIC_LIBRARY;
        *library = (CUlibrary)l;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLibraryUnload(CUlibrary library)
{
        struct glibrary *l = (struct glibrary *)library;

        if (!l || l->magic != MAGIC_LIBRARY)
                return CUDA_ERROR_INVALID_HANDLE;
        cuModuleUnload((CUmodule)l->mod);
        l->magic = MAGIC_DEAD;
        free(l->image);
        l->image = NULL;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name)
{
        struct glibrary *l = (struct glibrary *)library;
        struct gkernel *k;
        CUresult r;

        if (!pKernel || !name)
                return CUDA_ERROR_INVALID_VALUE;
        if (!l || l->magic != MAGIC_LIBRARY)
                return CUDA_ERROR_INVALID_HANDLE;
        k = guest_alloc(sizeof(*k));
        if (!k)
                return CUDA_ERROR_OUT_OF_MEMORY;
        r = get_function(l->mod, name, &k->func);
        if (r != CUDA_SUCCESS) {
                guest_unalloc(k);
                return r;
        }
        k->magic = MAGIC_KERNEL;
        k->lib = l;
        snprintf(k->name, sizeof(k->name), "%s", name);
        *pKernel = (CUkernel)k;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLibraryGetModule(CUmodule *pMod, CUlibrary library)
{
        struct glibrary *l = (struct glibrary *)library;

        if (!pMod)
                return CUDA_ERROR_INVALID_VALUE;
        if (!l || l->magic != MAGIC_LIBRARY)
                return CUDA_ERROR_INVALID_HANDLE;
        *pMod = (CUmodule)l->mod;
        return CUDA_SUCCESS;
}

static struct gfunc *kernel_func(CUkernel kernel)
{
        struct gkernel *k = (struct gkernel *)kernel;

        return k && k->magic == MAGIC_KERNEL && k->lib->magic == MAGIC_LIBRARY ? k->func : NULL;
}

CUresult CUDAAPI cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
        struct gfunc *f = kernel_func(kernel);

        if (!pFunc)
                return CUDA_ERROR_INVALID_VALUE;
        if (!f)
                return CUDA_ERROR_INVALID_HANDLE;
        *pFunc = (CUfunction)f;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset,
                                      size_t *paramSize)
{
        struct gfunc *f = kernel_func(kernel);

        if (!f)
                return CUDA_ERROR_INVALID_HANDLE;
        return cuFuncGetParamInfo((CUfunction)f, paramIndex, paramOffset, paramSize);
}

CUresult CUDAAPI cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel,
                                      CUdevice dev)
{
        struct gfunc *f = kernel_func(kernel);

        (void)dev;
        if (!f)
                return CUDA_ERROR_INVALID_HANDLE;
        return cuFuncGetAttribute(pi, attrib, (CUfunction)f);
}

/* ---- launches ----------------------------------------------------------------------------- */

static CUresult launch(struct gfunc *f, const unsigned grid[3], const unsigned block[3],
                       unsigned shared, CUstream hs, void **kernelParams, void **extra)
{
        uint8_t params[VGPU_MAX_PARAM_BYTES];
        uint32_t psize = f->param_size;
        struct vgpu_req_launch q;
        struct gctx *c;
        struct gstream *st;
        uint64_t seq, threads;
        CUresult r = guest_stream_get(hs, &c, &st);

        if (r != CUDA_SUCCESS)
                return r;
        if (f->mod->ctx != c)
                return CUDA_ERROR_INVALID_HANDLE;
        threads = (uint64_t)block[0] * block[1] * block[2];
        if (!grid[0] || !grid[1] || !grid[2] || !threads || threads > f->max_threads ||
            block[0] > 1024 || block[1] > 1024 || block[2] > 64 || grid[0] > 2147483647u ||
            grid[1] > 65535 || grid[2] > 65535 || shared > f->max_dynamic_shared)
                return CUDA_ERROR_INVALID_VALUE;
        if (kernelParams && extra)
                return CUDA_ERROR_INVALID_VALUE;
        if (c->sticky)
                return (CUresult)c->sticky;
        memset(params, 0, psize);
        if (kernelParams) {
                for (uint32_t i = 0; i < f->n_params; i++) {
                        if (!kernelParams[i])
                                return CUDA_ERROR_INVALID_VALUE;
                        memcpy(params + f->params[i].offset, kernelParams[i], f->params[i].size);
                }
        } else if (extra) {
                void *buf = NULL;
                size_t bsize = 0;

                for (int i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
                        if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
                                buf = extra[i + 1];
                        else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && extra[i + 1])
                                bsize = *(size_t *)extra[i + 1];
                        else
                                return CUDA_ERROR_INVALID_VALUE;
                }
                if (!buf || bsize < psize)
                        return CUDA_ERROR_INVALID_VALUE;
                memcpy(params, buf, psize);
        } else if (f->n_params) {
                return CUDA_ERROR_INVALID_VALUE;
        }
        q = (struct vgpu_req_launch){.ctx = c->handle,
                                     .func = f->handle,
                                     .grid = {grid[0], grid[1], grid[2]},
                                     .block = {block[0], block[1], block[2]},
                                     .shared = shared,
                                     .params_size = psize};
        pthread_mutex_lock(&c->dev->lock);
        r = guest_push_stream_locked(c, st, VGPU_OP_LAUNCH, &q, sizeof(q), params, psize, &seq);
        pthread_mutex_unlock(&c->dev->lock);
        return r;
}

CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                unsigned int gridDimZ, unsigned int blockDimX,
                                unsigned int blockDimY, unsigned int blockDimZ,
                                unsigned int sharedMemBytes, CUstream hStream, void **kernelParams,
                                void **extra)
{
        const unsigned grid[3] = {gridDimX, gridDimY, gridDimZ};
        const unsigned block[3] = {blockDimX, blockDimY, blockDimZ};
        struct gfunc *fn = (struct gfunc *)f;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!func_valid(fn))
                return CUDA_ERROR_INVALID_HANDLE;
        return launch(fn, grid, block, sharedMemBytes, hStream, kernelParams, extra);
}

CUresult CUDAAPI cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                                  void **extra)
{
        struct gfunc *fn = (struct gfunc *)f;
        unsigned grid[3], block[3];

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!config)
                return CUDA_ERROR_INVALID_VALUE;
        /* A CUkernel works here too. */
        if (!func_valid(fn) && !(fn = kernel_func((CUkernel)f)))
                return CUDA_ERROR_INVALID_HANDLE;
        for (unsigned i = 0; i < config->numAttrs; i++) {
                CUlaunchAttributeID id = config->attrs[i].id;

                if (id == CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION ||
                    id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE)
                        return guest_unsupported("cuLaunchKernelEx with clusters or cooperation");
        }
        grid[0] = config->gridDimX, grid[1] = config->gridDimY, grid[2] = config->gridDimZ;
        block[0] = config->blockDimX, block[1] = config->blockDimY, block[2] = config->blockDimZ;
        return launch(fn, grid, block, config->sharedMemBytes, config->hStream, kernelParams,
                      extra);
}

/* ---- occupancy ---------------------------------------------------------------------------- */

static int blocks_per_sm(const struct gfunc *f, int block, size_t dyn)
{
        struct gdev *d = f->mod->ctx->dev;
        int threads_sm = 2048, blocks_sm = 32, smem_sm = 233472, warps, n;
        size_t smem = f->static_shared + dyn;

        cuDeviceGetAttribute(&threads_sm, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR,
                             d->ordinal);
        cuDeviceGetAttribute(&blocks_sm, CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR,
                             d->ordinal);
        cuDeviceGetAttribute(&smem_sm, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR,
                             d->ordinal);
        if (block <= 0 || block > 1024)
                return 0;
        warps = (block + 31) / 32;
        n = threads_sm / (warps * 32);
        if (n > blocks_sm)
                n = blocks_sm;
        /* 32 registers per thread, 64 K registers per SM. */
        if (65536 / (warps * 32 * 32) < n)
                n = 65536 / (warps * 32 * 32);
        if (smem && (int)(smem_sm / (smem + 1024)) < n)
                n = (int)(smem_sm / (smem + 1024));
        return n;
}

CUresult CUDAAPI cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func,
                                                             int blockSize, size_t dynamicSMemSize)
{
        struct gfunc *f = (struct gfunc *)func;

        if (!numBlocks)
                return CUDA_ERROR_INVALID_VALUE;
        if (!func_valid(f))
                return CUDA_ERROR_INVALID_HANDLE;
        *numBlocks = blocks_per_sm(f, blockSize, dynamicSMemSize);
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
        int *numBlocks, CUfunction func, int blockSize, size_t dynamicSMemSize, unsigned int flags)
{
        (void)flags;
        return cuOccupancyMaxActiveBlocksPerMultiprocessor(numBlocks, func, blockSize,
                                                           dynamicSMemSize);
}

CUresult CUDAAPI cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func,
                                                  CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                  size_t dynamicSMemSize, int blockSizeLimit)
{
        struct gfunc *f = (struct gfunc *)func;
        int best = 0, best_block = 32, limit = blockSizeLimit > 0 ? blockSizeLimit : 1024;

        if (!minGridSize || !blockSize)
                return CUDA_ERROR_INVALID_VALUE;
        if (!func_valid(f))
                return CUDA_ERROR_INVALID_HANDLE;
        if (limit > (int)f->max_threads)
                limit = (int)f->max_threads;
        for (int b = 32; b <= limit; b += 32) {
                size_t dyn = blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(b)
                                                        : dynamicSMemSize;
                int occ = blocks_per_sm(f, b, dyn) * b;

                if (occ >= best) {
                        best = occ;
                        best_block = b;
                }
        }
        *blockSize = best_block;
        *minGridSize =
                f->mod->ctx->dev->sm_count *
                blocks_per_sm(f, best_block,
                              blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(best_block)
                                                         : dynamicSMemSize);
        return CUDA_SUCCESS;
}
