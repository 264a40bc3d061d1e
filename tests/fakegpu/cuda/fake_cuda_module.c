// SPDX-License-Identifier: Apache-2.0
// Modules and launches on vgpu's PTX interpreter: an image (fatbinary with PTX, PTX text; a
// cubin has nothing the interpreter can run) becomes a ptx_module whose variables live in memory
// of the stand-in's own, reachable by copies and kernels of the module's device. A launch runs
// to completion on a pool of worker threads before cuLaunchKernel returns; a kernel fault is the
// process's sticky error from then on, and an Xid line.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fake_cuda.h"

struct fc_func {
        struct fc_module *mod;
        const struct ptx_kernel *k;
        /* CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES once set (else 48 KiB less static) */
        unsigned max_dynamic;
        bool max_dynamic_set;
};

#define FC_SHARED_DEFAULT 49152u  /* per block, without opting in */
#define FC_SHARED_OPTIN   232448u /* CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN */

struct fc_module {
        struct fc_ctx *ctx;
        struct ptx_module *pm;
        unsigned n_funcs;
        struct fc_func *funcs;
        void *globals; /* the module's variables, globals_len bytes mapped; NULL if none */
        size_t globals_len;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ptx_pool *pool;
static bool pool_tried;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t rd32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
        return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

struct jit_log {
        char *buf;    /* CU_JIT_ERROR_LOG_BUFFER */
        size_t len;   /* CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES */
        void **len_v; /* where the size option's value is, to say how much was written */
};

static void log_write(struct jit_log *log, const char *text)
{
        if (!log->buf || !log->len)
                return;
        snprintf(log->buf, log->len, "%s", text);
        if (log->len_v)
                *log->len_v = (void *)(uintptr_t)(strlen(log->buf) + 1);
}

/*
 * The image the interpreter reads, and its size, which the driver API does not pass: a
 * fatbinary's from its header (nvcc's wrapper points to one), PTX text's from its NUL.
 */
static CUresult image_of(const void *image, const uint8_t **ret, size_t *ret_size,
                         struct jit_log *log)
{
        const uint8_t *p = image;

        /* the binary magics have no zero byte: PTX shorter than four bytes stops at its NUL */
        if (p[0] && p[1] && p[2] && p[3] && rd32(p) == 0x466243b1u) {
                uintptr_t data; /* { int magic; int version; const void *data; ... } */

                memcpy(&data, p + 8, sizeof(data));
                p = (const uint8_t *)data;
                if (!p || rd32(p) != 0xba55ed50u) {
                        log_write(log, "the fatbinary wrapper points to no fatbinary");
                        return CUDA_ERROR_INVALID_IMAGE;
                }
        }
        if (p[0] && p[1] && p[2] && p[3] && rd32(p) == 0xba55ed50u) {
                uint16_t hdr = (uint16_t)(p[6] | p[7] << 8);
                uint64_t body = rd64(p + 8);

                if (hdr < 16 || body > SIZE_MAX - hdr) {
                        log_write(log, "the fatbinary's header is not valid");
                        return CUDA_ERROR_INVALID_IMAGE;
                }
                *ret = p;
                *ret_size = (size_t)(hdr + body);
                return CUDA_SUCCESS;
        }
        if (p[0] == 0x7f && p[1] == 'E' && p[2] == 'L' && p[3] == 'F') {
                log_write(log, "fake libcuda: a cubin carries machine code only, and the "
                               "stand-in runs PTX (build with -gencode ...,code=compute_XX)");
                return CUDA_ERROR_NO_BINARY_FOR_GPU;
        }
        *ret = p;
        *ret_size = strlen((const char *)p) + 1;
        return CUDA_SUCCESS;
}

static CUresult load_error(int e)
{
        switch (e) {
        case PTX_ENOPTX:
                return CUDA_ERROR_NO_BINARY_FOR_GPU;
        case PTX_EPARSE:
        case PTX_EUNSUPPORTED:
                return CUDA_ERROR_INVALID_PTX;
        case -ENOMEM:
                return CUDA_ERROR_OUT_OF_MEMORY;
        case -EINVAL:
                return CUDA_ERROR_INVALID_VALUE;
        default:
                return CUDA_ERROR_INVALID_IMAGE;
        }
}

/* Place the module's variables in memory of their own, device memory of ctx's device. */
static int bind_globals(struct fc_module *m)
{
        size_t size = ptx_module_globals_size(m->pm);
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        void *g;
        int e;

        if (size == 0)
                return 0;
        m->globals_len = (size + page - 1) / page * page;
        g = mmap(NULL, m->globals_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (g == MAP_FAILED)
                return -ENOMEM;
        memcpy(g, ptx_module_globals_image(m->pm), size);
        e = ptx_module_bind_globals(m->pm, (uint64_t)(uintptr_t)g);
        if (e == 0)
                e = vmm_var_add(m->ctx->dev, (uint64_t)(uintptr_t)g, size);
        if (e < 0) {
                munmap(g, m->globals_len);
                return e;
        }
        m->globals = g;
        return 0;
}

static void module_free(struct fc_module *m)
{
        vmm_change_begin(); /* no launch of it runs */
        for (unsigned i = 0; i < m->n_funcs; i++)
                handle_del(&m->funcs[i], FC_FUNCTION);
        if (m->globals) {
                vmm_var_del((uint64_t)(uintptr_t)m->globals);
                munmap(m->globals, m->globals_len);
        }
        vmm_change_end();
        ptx_module_free(m->pm);
        free(m->funcs);
        free(m);
}

void module_drop_ctx(struct fc_ctx *ctx)
{
        void *batch[64];
        size_t n;

        while ((n = handle_take(FC_MODULE, ctx, batch, 64)) > 0) {
                for (size_t i = 0; i < n; i++)
                        module_free(batch[i]);
        }
}

VGPU_EXPORT CUresult cuModuleLoadDataEx(CUmodule *module, const void *image,
                                        unsigned int numOptions, CUjit_option *options,
                                        void **optionValues)
{
        struct jit_log log = {0};
        char msg[PTX_ERRMSG_SIZE + 64], errmsg[PTX_ERRMSG_SIZE] = "";
        struct fc_module *m;
        struct fc_ctx *ctx;
        const uint8_t *p;
        size_t size;
        int e;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!module || !image || (numOptions && (!options || !optionValues)))
                return CUDA_ERROR_INVALID_VALUE;
        ctx = fc_current();
        if (!ctx)
                return CUDA_ERROR_INVALID_CONTEXT;
        for (unsigned i = 0; i < numOptions; i++) {
                if (options[i] == CU_JIT_ERROR_LOG_BUFFER)
                        log.buf = optionValues[i];
                else if (options[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
                        log.len = (size_t)(uintptr_t)optionValues[i], log.len_v = &optionValues[i];
                else if ((int)options[i] < 0 || options[i] >= CU_JIT_NUM_OPTIONS)
                        return CUDA_ERROR_INVALID_VALUE;
        }
        r = image_of(image, &p, &size, &log);
        if (r != CUDA_SUCCESS)
                return r;
        m = calloc(1, sizeof(*m));
        if (!m)
                return CUDA_ERROR_OUT_OF_MEMORY;
        m->ctx = ctx;
        e = ptx_module_load(p, size, &m->pm, errmsg, sizeof(errmsg));
        if (e < 0) {
                snprintf(msg, sizeof(msg), "fake libcuda (vgpu's PTX interpreter): %s", errmsg);
                log_write(&log, msg);
                free(m);
                return load_error(e);
        }
        m->n_funcs = ptx_module_kernel_count(m->pm);
        m->funcs = calloc(m->n_funcs ? m->n_funcs : 1, sizeof(*m->funcs));
        e = m->funcs ? bind_globals(m) : -ENOMEM;
        for (unsigned i = 0; i < m->n_funcs && e == 0; i++) {
                m->funcs[i] = (struct fc_func){.mod = m, .k = ptx_module_kernel_at(m->pm, i)};
                e = handle_add(&m->funcs[i], FC_FUNCTION, m);
        }
        if (e == 0)
                e = handle_add(m, FC_MODULE, ctx);
        if (e < 0) {
                if (!m->funcs) {
                        ptx_module_free(m->pm);
                        free(m);
                } else {
                        module_free(m);
                }
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        log_write(&log, "");
        *module = (CUmodule)(void *)m;
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuModuleUnload(CUmodule hmod)
{
        CUresult r = fc_ready();

        if (r != CUDA_SUCCESS)
                return r;
        if (!handle_del(hmod, FC_MODULE))
                return CUDA_ERROR_INVALID_HANDLE;
        module_free((struct fc_module *)(void *)hmod);
        return fc_sticky();
}

VGPU_EXPORT CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
        struct fc_module *m = (struct fc_module *)(void *)hmod;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!hfunc || !name)
                return CUDA_ERROR_INVALID_VALUE;
        if (!handle_is(m, FC_MODULE, NULL))
                return CUDA_ERROR_INVALID_HANDLE;
        for (unsigned i = 0; i < m->n_funcs; i++) {
                if (strcmp(ptx_kernel_name(m->funcs[i].k), name) == 0) {
                        *hfunc = (CUfunction)(void *)&m->funcs[i];
                        return CUDA_SUCCESS;
                }
        }
        return CUDA_ERROR_NOT_FOUND;
}

VGPU_EXPORT CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod,
                                          const char *name)
{
        struct fc_module *m = (struct fc_module *)(void *)hmod;
        uint64_t addr;
        size_t size;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!name || (!dptr && !bytes)) /* one of the two may be NULL, not both */
                return CUDA_ERROR_INVALID_VALUE;
        if (!handle_is(m, FC_MODULE, NULL))
                return CUDA_ERROR_INVALID_HANDLE;
        if (ptx_module_global(m->pm, name, &addr, &size, NULL) < 0)
                return CUDA_ERROR_NOT_FOUND;
        if (dptr)
                *dptr = (CUdeviceptr)addr;
        if (bytes)
                *bytes = size;
        return CUDA_SUCCESS;
}

static struct fc_func *func_of(CUfunction f)
{
        struct fc_func *fn = (struct fc_func *)(void *)f;

        return handle_is(fn, FC_FUNCTION, NULL) ? fn : NULL;
}

/* The dynamic shared memory a launch of fn may use: 48 KiB less its static, until set. */
static unsigned func_max_dynamic(const struct fc_func *fn)
{
        size_t st = ptx_kernel_static_shared(fn->k);

        if (fn->max_dynamic_set)
                return fn->max_dynamic;
        return st < FC_SHARED_DEFAULT ? FC_SHARED_DEFAULT - (unsigned)st : 0;
}

/*
 * Only CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES changes anything: a kernel opts in to more
 * than 48 KiB of dynamic shared memory, up to the device's opt-in limit less its static shared
 * memory. The preferred carveout is taken and ignored; other attributes cannot be set.
 */
VGPU_EXPORT CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
        struct fc_func *fn;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        fn = func_of(hfunc);
        if (!fn)
                return CUDA_ERROR_INVALID_HANDLE;
        switch (attrib) {
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
                if (value < 0 ||
                    (uint64_t)value + ptx_kernel_static_shared(fn->k) > FC_SHARED_OPTIN)
                        return CUDA_ERROR_INVALID_VALUE;
                fn->max_dynamic = (unsigned)value;
                fn->max_dynamic_set = true;
                return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
                return value < -1 || value > 100 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
        default:
                return CUDA_ERROR_INVALID_VALUE;
        }
}

VGPU_EXPORT CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
        struct ptx_kernel_attrs a;
        struct fc_func *fn;
        const struct fc_dev *dev;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!pi || (int)attrib < 0 || attrib >= CU_FUNC_ATTRIBUTE_MAX)
                return CUDA_ERROR_INVALID_VALUE;
        fn = func_of(hfunc);
        if (!fn)
                return CUDA_ERROR_INVALID_HANDLE;
        ptx_kernel_get_attrs(fn->k, &a);
        dev = fn->mod->ctx->dev;
        switch (attrib) {
        case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
                *pi = (int)a.max_threads;
                break;
        case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES:
                *pi = (int)ptx_kernel_static_shared(fn->k);
                break;
        case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES:
                *pi = (int)a.local_bytes;
                break;
        case CU_FUNC_ATTRIBUTE_NUM_REGS:
                *pi = a.num_regs < 255 ? (int)a.num_regs : 255;
                break;
        case CU_FUNC_ATTRIBUTE_PTX_VERSION:
                *pi = (int)a.ptx_version;
                break;
        case CU_FUNC_ATTRIBUTE_BINARY_VERSION:
                *pi = dev->cc_major * 10 + dev->cc_minor;
                break;
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
                *pi = (int)func_max_dynamic(fn);
                break;
        case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
                *pi = -1;
                break;
        default:
                *pi = 0; /* constant bank size, caching, clusters: nothing to say */
                break;
        }
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset,
                                        size_t *paramSize)
{
        struct fc_func *fn;
        size_t off, size;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!paramOffset) /* only the size may be left out */
                return CUDA_ERROR_INVALID_VALUE;
        fn = func_of(func);
        if (!fn)
                return CUDA_ERROR_INVALID_HANDLE;
        if (paramIndex >= ptx_kernel_param_count(fn->k) ||
            ptx_kernel_param_info(fn->k, (unsigned)paramIndex, &off, &size) < 0)
                return CUDA_ERROR_INVALID_VALUE;
        *paramOffset = off;
        if (paramSize)
                *paramSize = size;
        return CUDA_SUCCESS;
}

static struct ptx_pool *get_pool(void)
{
        pthread_mutex_lock(&pool_lock);
        if (!pool_tried) {
                const char *w = getenv("VGPU_FAKE_GPU_WORKERS");
                long n = w && *w ? strtol(w, NULL, 10) : 2;

                pool_tried = true;
                if (n < 1 || n > 64)
                        n = 2;
                if (ptx_pool_new((unsigned)n, &pool) < 0)
                        pool = NULL; /* blocks then run on the launching thread */
        }
        pthread_mutex_unlock(&pool_lock);
        return pool;
}

static int launch_mem(void *ctx, uint64_t addr, uint64_t len, struct ptx_mem_region *ret)
{
        return vmm_region(ctx, addr, len, ret);
}

/* Device printf: to stdout, one call's text at a time. */
static void launch_print(void *ctx, const char *text, size_t len)
{
        (void)ctx;
        pthread_mutex_lock(&print_lock);
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        pthread_mutex_unlock(&print_lock);
}

/* The parameter buffer from kernelParams (a pointer to each value) or extra (one buffer). */
static CUresult params_of(const struct ptx_kernel *k, void **kernelParams, void **extra,
                          uint8_t **ret)
{
        size_t size = ptx_kernel_param_size(k), n = ptx_kernel_param_count(k);
        const void *buf = NULL;
        const size_t *buf_size = NULL;
        uint8_t *p;

        if (kernelParams && extra)
                return CUDA_ERROR_INVALID_VALUE;
        for (size_t i = 0; extra && extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
                if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
                        buf = extra[i + 1];
                else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE)
                        buf_size = extra[i + 1];
                else
                        return CUDA_ERROR_INVALID_VALUE;
        }
        if (n && !kernelParams && (!buf || !buf_size))
                return CUDA_ERROR_INVALID_VALUE;
        if (buf && (!buf_size || *buf_size < size))
                return CUDA_ERROR_INVALID_VALUE;
        p = calloc(1, size ? size : 1);
        if (!p)
                return CUDA_ERROR_OUT_OF_MEMORY;
        if (buf) {
                memcpy(p, buf, size);
        } else {
                for (size_t i = 0; i < n; i++) {
                        size_t off, len;

                        ptx_kernel_param_info(k, (unsigned)i, &off, &len);
                        if (!kernelParams[i]) {
                                free(p);
                                return CUDA_ERROR_INVALID_VALUE;
                        }
                        memcpy(p + off, kernelParams[i], len);
                }
        }
        *ret = p;
        return CUDA_SUCCESS;
}

/* A kernel fault: its CUresult and Xid (README: 31 for an MMU fault, else 13). */
static CUresult fault_of(int e, unsigned *ret_xid)
{
        *ret_xid = 13;
        switch (e) {
        case PTX_EILLEGAL_ADDRESS:
                *ret_xid = 31;
                return CUDA_ERROR_ILLEGAL_ADDRESS;
        case PTX_EMISALIGNED:
                return CUDA_ERROR_MISALIGNED_ADDRESS;
        case PTX_EILLEGAL_INSN:
                return CUDA_ERROR_ILLEGAL_INSTRUCTION;
        case PTX_ESTACK:
                return CUDA_ERROR_HARDWARE_STACK_ERROR;
        case PTX_ETIMEOUT:
                return CUDA_ERROR_LAUNCH_TIMEOUT;
        default:
                /* a trap, or assert(): the interpreter cannot tell them apart */
                return CUDA_ERROR_LAUNCH_FAILED;
        }
}

VGPU_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                    unsigned int gridDimZ, unsigned int blockDimX,
                                    unsigned int blockDimY, unsigned int blockDimZ,
                                    unsigned int sharedMemBytes, CUstream hStream,
                                    void **kernelParams, void **extra)
{
        struct ptx_launch_stats st = {0};
        struct ptx_kernel_attrs a;
        struct fc_func *fn;
        struct fc_ctx *ctx;
        struct fc_dev *dev;
        uint8_t *params = NULL;
        uint64_t threads = (uint64_t)blockDimX * blockDimY * blockDimZ;
        unsigned xid;
        int e;
        CUresult r = fc_check(), fault;

        if (r != CUDA_SUCCESS)
                return r;
        vmm_use_begin(); /* the module and the memory stay while it runs */
        fn = func_of(f);
        if (!fn) {
                r = CUDA_ERROR_INVALID_HANDLE;
                goto out;
        }
        r = stream_ctx(hStream, &ctx);
        if (r != CUDA_SUCCESS)
                goto out;
        if (fn->mod->ctx != ctx) {
                r = CUDA_ERROR_INVALID_HANDLE; /* a kernel of another context */
                goto out;
        }
        dev = ctx->dev;
        ptx_kernel_get_attrs(fn->k, &a);
        if (!gridDimX || !gridDimY || !gridDimZ || gridDimX > 2147483647u || gridDimY > 65535 ||
            gridDimZ > 65535 || !threads || threads > a.max_threads || blockDimX > 1024 ||
            blockDimY > 1024 || blockDimZ > 64 || sharedMemBytes > func_max_dynamic(fn)) {
                r = CUDA_ERROR_INVALID_VALUE;
                goto out;
        }
        r = params_of(fn->k, kernelParams, extra, &params);
        if (r != CUDA_SUCCESS)
                goto out;
        e = ptx_launch(
                &(struct ptx_launch){
                        .kernel = fn->k,
                        .grid = {gridDimX, gridDimY, gridDimZ},
                        .block = {blockDimX, blockDimY, blockDimZ},
                        .dynamic_shared = sharedMemBytes,
                        .params = params,
                        .params_size = ptx_kernel_param_size(fn->k),
                        .mem = launch_mem,
                        .mem_ctx = dev,
                        .pool = get_pool(),
                        .print = launch_print,
                },
                &st);
        free(params);
        if (e == PTX_ELAUNCH) {
                r = CUDA_ERROR_INVALID_VALUE; /* .reqntid and the like: the launch never ran */
        } else if (e == -ENOMEM) {
                r = CUDA_ERROR_OUT_OF_MEMORY;
        } else if (e < 0) {
                /* Asynchronous on a GPU: the launch succeeded, the fault shows at the sync. */
                fault = fault_of(e, &xid);
                fc_say("kernel %s on device %d: %s at 0x%llx (PTX line %u); every context of "
                       "process %ld is lost",
                       ptx_kernel_name(fn->k), dev->ordinal, ptx_strerror(e),
                       (unsigned long long)st.fault_addr, st.fault_line, (long)getpid());
                fc_fault(dev, fault, xid);
        }
out:
        vmm_use_end();
        return r;
}
