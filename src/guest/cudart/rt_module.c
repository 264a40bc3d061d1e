// SPDX-License-Identifier: Apache-2.0
// What nvcc's generated host code registers: fatbinaries, kernels (by their host stubs'
// addresses) and module variables (by their host shadows'), loaded into each device's primary
// context when first used (CUDA_MODULE_LOADING=LAZY, the default: a whole fatbinary at a time)
// or when the context is made (EAGER); and the launches, call configurations, kernel attributes
// and occupancy queries that work on registered kernels.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest/cudart/rt.h"

#define HASH_BUCKETS 256
#define CONFIG_STACK 16

/* A registered fatbinary. nvcc's code holds &fb->image as its handle (void **). */
struct rt_fatbin {
        const void *image; /* first: the handle points here */
        struct rt_fatbin *next;
        CUmodule mod[RT_MAX_DEVICES];
        unsigned gen[RT_MAX_DEVICES]; /* rt_devices[d].gen when mod[d] was loaded; 0: never */
};

/* A registered kernel; its address is the cudaKernel_t handed out. */
struct rt_func {
        struct rt_func *next;  /* chain in funcs[], by host stub */
        struct rt_func *knext; /* chain in kernels[], by its own address (cudaKernel_t) */
        const void *host;      /* the host stub's address */
        const char *name;      /* the device entry's name, owned by the program */
        struct rt_fatbin *fb;
        CUfunction fn[RT_MAX_DEVICES];
        unsigned gen[RT_MAX_DEVICES];
        int max_dynamic_shared; /* cudaFuncSetAttribute; -1: not set */
        int carveout;           /* -1: not set */
};

/* A registered module variable. */
struct rt_var {
        struct rt_var *next;
        const void *host; /* the host shadow's address (managed: the pointer nvcc reads) */
        const char *name;
        size_t size;
        struct rt_fatbin *fb;
        void **managed; /* __managed__: where the host-side pointer to the variable goes */
        CUdeviceptr addr[RT_MAX_DEVICES];
        unsigned gen[RT_MAX_DEVICES];
};

static struct rt_fatbin *fatbins;
static struct rt_func *funcs[HASH_BUCKETS];
static struct rt_func *kernels[HASH_BUCKETS];
static struct rt_var *vars[HASH_BUCKETS];

static unsigned hash(const void *p)
{
        uintptr_t v = (uintptr_t)p;

        return (unsigned)((v >> 4) ^ (v >> 12)) % HASH_BUCKETS;
}

static struct rt_fatbin *fatbin_of(void **handle)
{
        return (struct rt_fatbin *)handle;
}

/* ---- loading --------------------------------------------------------------------------------- */
/* The module of fb in device d's primary context, loading it first if needed. rt_lock held. */
static CUresult module_locked(struct rt_fatbin *fb, int d, CUmodule *ret)
{
        CUcontext ctx, prev;
        unsigned gen;
        CUmodule m;
        CUresult r = rt_primary_locked(d, &ctx, &gen);

        if (r != CUDA_SUCCESS)
                return r;
        if (fb->gen[d] == gen && fb->mod[d]) {
                *ret = fb->mod[d];
                return CUDA_SUCCESS;
        }
        r = cuCtxPushCurrent(ctx);
        if (r != CUDA_SUCCESS)
                return r;
        r = cuModuleLoadData(&m, fb->image);
        (void)cuCtxPopCurrent(&prev);
        if (r != CUDA_SUCCESS) {
                vgpu_log(VGPU_LOG_DEBUG, "loading a fatbinary on device %d: error %d", d, (int)r);
                return r;
        }
        fb->mod[d] = m;
        fb->gen[d] = gen;
        *ret = m;
        return CUDA_SUCCESS;
}

void rt_load_all_locked(int d, CUcontext ctx, unsigned gen)
{
        (void)ctx, (void)gen;
        for (struct rt_fatbin *fb = fatbins; fb; fb = fb->next) {
                CUmodule m;

                /* A failure here shows when the program uses one of the fatbinary's kernels. */
                (void)module_locked(fb, d, &m);
        }
}

static struct rt_func *func_find_locked(const void *host)
{
        for (struct rt_func *f = funcs[hash(host)]; f; f = f->next)
                if (f->host == host)
                        return f;
        return NULL;
}

/* A cudaKernel_t this runtime handed out, found without reading through an unknown pointer. */
static struct rt_func *kernel_find_locked(const void *kernel)
{
        for (struct rt_func *f = kernels[hash(kernel)]; f; f = f->knext)
                if (f == kernel)
                        return f;
        return NULL;
}

static struct rt_var *var_find_locked(const void *host)
{
        for (struct rt_var *v = vars[hash(host)]; v; v = v->next)
                if (v->host == host)
                        return v;
        return NULL;
}

static CUresult func_resolve_locked(struct rt_func *f, int d, CUfunction *ret)
{
        CUmodule m;
        CUfunction fn;
        CUresult r = module_locked(f->fb, d, &m);

        if (r != CUDA_SUCCESS)
                return r;
        if (f->gen[d] == f->fb->gen[d] && f->fn[d]) {
                *ret = f->fn[d];
                return CUDA_SUCCESS;
        }
        r = cuModuleGetFunction(&fn, m, f->name);
        if (r != CUDA_SUCCESS)
                return r;
        /* Attributes set before the kernel was loaded on this device apply now. */
        if (f->max_dynamic_shared >= 0)
                (void)cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                         f->max_dynamic_shared);
        if (f->carveout >= 0)
                (void)cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT,
                                         f->carveout);
        f->fn[d] = fn;
        f->gen[d] = f->fb->gen[d];
        *ret = fn;
        return CUDA_SUCCESS;
}

cudaError_t rt_func_get(const void *func, bool is_kernel, int d, CUfunction *ret)
{
        struct rt_func *f;
        CUresult r;

        pthread_mutex_lock(&rt_lock);
        if (is_kernel)
                f = func ? kernel_find_locked(func) : NULL;
        else
                f = func ? func_find_locked(func) : NULL;
        if (!f) {
                pthread_mutex_unlock(&rt_lock);
                return cudaErrorInvalidDeviceFunction;
        }
        r = func_resolve_locked(f, d, ret);
        pthread_mutex_unlock(&rt_lock);
        return rt_error(r);
}

static CUresult var_resolve_locked(struct rt_var *v, int d)
{
        CUmodule m;
        CUdeviceptr p;
        size_t size;
        CUresult r = module_locked(v->fb, d, &m);

        if (r != CUDA_SUCCESS)
                return r;
        if (v->gen[d] == v->fb->gen[d] && v->addr[d])
                return CUDA_SUCCESS;
        r = cuModuleGetGlobal(&p, &size, m, v->name);
        if (r != CUDA_SUCCESS)
                return r;
        v->addr[d] = p;
        v->gen[d] = v->fb->gen[d];
        return CUDA_SUCCESS;
}

cudaError_t rt_var_get(const void *symbol, int d, CUdeviceptr *ret_addr, size_t *ret_size)
{
        struct rt_var *v;
        CUresult r;

        pthread_mutex_lock(&rt_lock);
        v = symbol ? var_find_locked(symbol) : NULL;
        if (!v) {
                pthread_mutex_unlock(&rt_lock);
                return cudaErrorInvalidSymbol;
        }
        r = var_resolve_locked(v, d);
        if (r == CUDA_SUCCESS) {
                *ret_addr = v->addr[d];
                *ret_size = v->size;
        }
        pthread_mutex_unlock(&rt_lock);
        return rt_error(r);
}

/* ---- registration (nvcc's constructors and atexit handlers) ---------------------------------- */
void **__cudaRegisterFatBinary(void *fatCubin)
{
        struct rt_fatbin *fb = calloc(1, sizeof(*fb));

        /* Out of memory this early: nothing of the program's kernels can work; say so at launch. */
        if (!fb)
                return NULL;
        fb->image = fatCubin;
        pthread_mutex_lock(&rt_lock);
        fb->next = fatbins;
        fatbins = fb;
        pthread_mutex_unlock(&rt_lock);
        return (void **)fb;
}

void __cudaRegisterFatBinaryEnd(void **fatCubinHandle)
{
        struct rt_fatbin *fb = fatbin_of(fatCubinHandle);

        if (!fb || !rt_eager)
                return;
        /* Eager loading: a fatbinary registered after a context was made (dlopen) loads now. */
        pthread_mutex_lock(&rt_lock);
        for (int d = 0; d < rt_ndevices; d++) {
                CUmodule m;

                if (rt_devices[d].ctx)
                        (void)module_locked(fb, d, &m);
        }
        pthread_mutex_unlock(&rt_lock);
}

void __cudaUnregisterFatBinary(void **fatCubinHandle)
{
        struct rt_fatbin *fb = fatbin_of(fatCubinHandle), **pp;

        if (!fb)
                return;
        /*
         * At exit, or when a library with kernels is unloaded: forget its kernels and variables.
         * Its modules stay loaded until their context goes (the driver may be going away too).
         */
        pthread_mutex_lock(&rt_lock);
        /* A kernel sits in two tables under different hashes: unlink it from both, then free. */
        for (unsigned b = 0; b < HASH_BUCKETS; b++) {
                for (struct rt_func **fp = &funcs[b]; *fp;) {
                        if ((*fp)->fb == fb)
                                *fp = (*fp)->next;
                        else
                                fp = &(*fp)->next;
                }
        }
        for (unsigned b = 0; b < HASH_BUCKETS; b++) {
                for (struct rt_func **kp = &kernels[b]; *kp;) {
                        struct rt_func *f = *kp;

                        if (f->fb == fb) {
                                *kp = f->knext;
                                free(f);
                        } else {
                                kp = &f->knext;
                        }
                }
                for (struct rt_var **vp = &vars[b]; *vp;) {
                        struct rt_var *v = *vp;

                        if (v->fb == fb) {
                                *vp = v->next;
                                free(v);
                        } else {
                                vp = &v->next;
                        }
                }
        }
        for (pp = &fatbins; *pp; pp = &(*pp)->next) {
                if (*pp == fb) {
                        *pp = fb->next;
                        break;
                }
        }
        pthread_mutex_unlock(&rt_lock);
        free(fb);
}

void __cudaRegisterFunction(void **fatCubinHandle, const char *hostFun, char *deviceFun,
                            const char *deviceName, int thread_limit, uint3 *tid, uint3 *bid,
                            dim3 *bDim, dim3 *gDim, int *wSize)
{
        struct rt_fatbin *fb = fatbin_of(fatCubinHandle);
        struct rt_func *f;

        (void)deviceFun, (void)thread_limit, (void)tid, (void)bid, (void)bDim, (void)gDim,
                (void)wSize;
        if (!fb || !hostFun || !deviceName)
                return;
        f = calloc(1, sizeof(*f));
        if (!f)
                return; /* the kernel reads as unregistered: cudaErrorInvalidDeviceFunction */
        f->host = hostFun;
        f->name = deviceName;
        f->fb = fb;
        f->max_dynamic_shared = -1;
        f->carveout = -1;
        pthread_mutex_lock(&rt_lock);
        f->next = funcs[hash(hostFun)];
        funcs[hash(hostFun)] = f;
        f->knext = kernels[hash(f)];
        kernels[hash(f)] = f;
        pthread_mutex_unlock(&rt_lock);
}

static void var_register(struct rt_fatbin *fb, const void *host, const char *name, size_t size,
                         void **managed)
{
        struct rt_var *v;

        if (!fb || !host || !name)
                return;
        v = calloc(1, sizeof(*v));
        if (!v)
                return; /* the symbol reads as unregistered: cudaErrorInvalidSymbol */
        v->host = host;
        v->name = name;
        v->size = size;
        v->fb = fb;
        v->managed = managed;
        pthread_mutex_lock(&rt_lock);
        v->next = vars[hash(host)];
        vars[hash(host)] = v;
        pthread_mutex_unlock(&rt_lock);
}

void __cudaRegisterVar(void **fatCubinHandle, char *hostVar, char *deviceAddress,
                       const char *deviceName, int ext, size_t size, int constant, int global)
{
        (void)deviceAddress, (void)ext, (void)constant, (void)global;
        var_register(fatbin_of(fatCubinHandle), hostVar, deviceName, size, NULL);
}

void __cudaRegisterManagedVar(void **fatCubinHandle, void **hostVarPtrAddress, char *deviceAddress,
                              const char *deviceName, int ext, size_t size, int constant,
                              int global)
{
        (void)deviceAddress, (void)ext, (void)constant, (void)global;
        var_register(fatbin_of(fatCubinHandle), hostVarPtrAddress, deviceName, size,
                     hostVarPtrAddress);
}

char __cudaInitModule(void **fatCubinHandle)
{
        struct rt_fatbin *fb = fatbin_of(fatCubinHandle);
        CUmodule m;
        CUresult r;
        int d;

        if (!fb || rt_enter(&d) != cudaSuccess)
                return 0;
        pthread_mutex_lock(&rt_lock);
        r = module_locked(fb, d, &m);
        /*
         * __managed__ variables: the guest driver has no managed memory, so the host-side pointer
         * is left as nvcc set it; kernels use the variable in device memory (docs/cudart.md).
         */
        pthread_mutex_unlock(&rt_lock);
        if (r != CUDA_SUCCESS)
                return 0;
        vgpu_log(VGPU_LOG_DEBUG, "__managed__ variables are not supported: host access fails");
        return 1;
}

/* ---- call configuration and launches --------------------------------------------------------- */
struct call_config {
        dim3 grid, block;
        size_t shared;
        struct CUstream_st *stream;
};

static __thread struct call_config tl_configs[CONFIG_STACK];
static __thread int tl_nconfigs;

unsigned __cudaPushCallConfiguration(dim3 gridDim, dim3 blockDim, size_t sharedMem,
                                     struct CUstream_st *stream)
{
        if (tl_nconfigs == CONFIG_STACK)
                return 1; /* the launch is skipped; nothing pops */
        tl_configs[tl_nconfigs++] = (struct call_config){gridDim, blockDim, sharedMem, stream};
        return 0;
}

cudaError_t __cudaPopCallConfiguration(dim3 *gridDim, dim3 *blockDim, size_t *sharedMem,
                                       void *stream)
{
        struct call_config *c;

        if (!tl_nconfigs)
                return cudaErrorMissingConfiguration;
        c = &tl_configs[--tl_nconfigs];
        *gridDim = c->grid;
        *blockDim = c->block;
        *sharedMem = c->shared;
        *(cudaStream_t *)stream = c->stream;
        return cudaSuccess;
}

/* A launch configuration the device can never run is refused before the driver sees it. */
static cudaError_t check_config(int d, dim3 grid, dim3 block)
{
        int max_threads = 1024, max_z = 64;

        (void)cuDeviceGetAttribute(&max_threads, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, d);
        (void)cuDeviceGetAttribute(&max_z, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, d);
        if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z)
                return cudaErrorInvalidConfiguration;
        if ((uint64_t)block.x * block.y * block.z > (uint64_t)max_threads ||
            block.x > (unsigned)max_threads || block.y > (unsigned)max_threads ||
            block.z > (unsigned)max_z || grid.y > 65535 || grid.z > 65535)
                return cudaErrorInvalidConfiguration;
        return cudaSuccess;
}

static cudaError_t launch(const void *func, bool is_kernel, dim3 grid, dim3 block, void **args,
                          size_t shared, cudaStream_t stream)
{
        CUfunction f;
        int d;
        cudaError_t e = rt_enter(&d);

        if (e != cudaSuccess)
                return e;
        e = rt_func_get(func, is_kernel, d, &f);
        if (e == cudaSuccess)
                e = check_config(d, grid, block);
        if (e != cudaSuccess)
                return rt_ret(e);
        return rt_cu(cuLaunchKernel(f, grid.x, grid.y, grid.z, block.x, block.y, block.z,
                                    (unsigned)shared, (CUstream)stream, args, NULL));
}

cudaError_t cudaLaunchKernel(const void *func, dim3 gridDim, dim3 blockDim, void **args,
                             size_t sharedMem, cudaStream_t stream)
{
        return launch(func, false, gridDim, blockDim, args, sharedMem, stream);
}

cudaError_t cudaLaunchKernel_ptsz(const void *func, dim3 gridDim, dim3 blockDim, void **args,
                                  size_t sharedMem, cudaStream_t stream)
{
        return launch(func, false, gridDim, blockDim, args, sharedMem,
                      stream ? stream : cudaStreamPerThread);
}

cudaError_t __cudaGetKernel(cudaKernel_t *kernel, const void *hostFun)
{
        struct rt_func *f;

        if (!kernel)
                return rt_ret(cudaErrorInvalidValue);
        pthread_mutex_lock(&rt_lock);
        f = hostFun ? func_find_locked(hostFun) : NULL;
        pthread_mutex_unlock(&rt_lock);
        if (!f)
                return rt_ret(cudaErrorInvalidDeviceFunction);
        *kernel = (cudaKernel_t)f;
        return cudaSuccess;
}

cudaError_t cudaGetKernel(cudaKernel_t *kernelPtr, const void *entryFuncAddr)
{
        return __cudaGetKernel(kernelPtr, entryFuncAddr);
}

cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 gridDim, dim3 blockDim, void **args,
                               size_t sharedMem, cudaStream_t stream)
{
        return launch(kernel, true, gridDim, blockDim, args, sharedMem, stream);
}

cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 gridDim, dim3 blockDim, void **args,
                                    size_t sharedMem, cudaStream_t stream)
{
        return launch(kernel, true, gridDim, blockDim, args, sharedMem,
                      stream ? stream : cudaStreamPerThread);
}

static cudaError_t launch_ex(const cudaLaunchConfig_t *config, const void *func, void **args,
                             cudaStream_t default_stream)
{
        CUlaunchConfig cfg;
        CUfunction f;
        int d;
        cudaError_t e;

        if (!config)
                return rt_ret(cudaErrorInvalidValue);
        e = rt_enter(&d);
        if (e != cudaSuccess)
                return e;
        /* A cudaKernel_t is accepted as well as a host stub, as NVIDIA's runtime does. */
        e = rt_func_get(func, false, d, &f);
        if (e == cudaErrorInvalidDeviceFunction)
                e = rt_func_get(func, true, d, &f);
        if (e == cudaSuccess)
                e = check_config(d, config->gridDim, config->blockDim);
        if (e != cudaSuccess)
                return rt_ret(e);
        cfg = (CUlaunchConfig){
                .gridDimX = config->gridDim.x,
                .gridDimY = config->gridDim.y,
                .gridDimZ = config->gridDim.z,
                .blockDimX = config->blockDim.x,
                .blockDimY = config->blockDim.y,
                .blockDimZ = config->blockDim.z,
                .sharedMemBytes = (unsigned)config->dynamicSmemBytes,
                .hStream = (CUstream)(config->stream ? config->stream : default_stream),
                /* cudaLaunchAttribute and CUlaunchAttribute share their layout and ids. */
                .attrs = (CUlaunchAttribute *)config->attrs,
                .numAttrs = config->numAttrs,
        };
        return rt_cu(cuLaunchKernelEx(&cfg, f, args, NULL));
}

cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t *config, const void *func, void **args)
{
        return launch_ex(config, func, args, NULL);
}

cudaError_t cudaLaunchKernelExC_ptsz(const cudaLaunchConfig_t *config, const void *func,
                                     void **args)
{
        return launch_ex(config, func, args, cudaStreamPerThread);
}

/* ---- kernel attributes and occupancy --------------------------------------------------------- */
cudaError_t cudaGetFuncBySymbol(cudaFunction_t *functionPtr, const void *symbolPtr)
{
        CUfunction f;
        int d;
        cudaError_t e = rt_enter(&d);

        if (e != cudaSuccess)
                return e;
        if (!functionPtr)
                return rt_ret(cudaErrorInvalidValue);
        e = rt_func_get(symbolPtr, false, d, &f);
        if (e == cudaSuccess)
                *functionPtr = (cudaFunction_t)f;
        return rt_ret(e);
}

/* The current device's CUfunction of a kernel given by host stub; error recorded. */
static cudaError_t func_here(const void *func, CUfunction *ret, int *ret_dev)
{
        int d;
        cudaError_t e = rt_enter(&d);

        if (e != cudaSuccess)
                return e;
        e = rt_func_get(func, false, d, ret);
        if (ret_dev)
                *ret_dev = d;
        return rt_ret(e);
}

static int fattr(CUfunction f, CUfunction_attribute a)
{
        int v = 0;

        if (cuFuncGetAttribute(&v, a, f) != CUDA_SUCCESS)
                v = 0;
        return v;
}

cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func)
{
        CUfunction f;
        cudaError_t e;

        if (!attr)
                return rt_ret(cudaErrorInvalidValue);
        e = func_here(func, &f, NULL);
        if (e != cudaSuccess)
                return e;
        memset(attr, 0, sizeof(*attr));
        attr->sharedSizeBytes = (size_t)fattr(f, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES);
        attr->constSizeBytes = (size_t)fattr(f, CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES);
        attr->localSizeBytes = (size_t)fattr(f, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES);
        attr->maxThreadsPerBlock = fattr(f, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
        attr->numRegs = fattr(f, CU_FUNC_ATTRIBUTE_NUM_REGS);
        attr->ptxVersion = fattr(f, CU_FUNC_ATTRIBUTE_PTX_VERSION);
        attr->binaryVersion = fattr(f, CU_FUNC_ATTRIBUTE_BINARY_VERSION);
        attr->cacheModeCA = fattr(f, CU_FUNC_ATTRIBUTE_CACHE_MODE_CA);
        attr->maxDynamicSharedSizeBytes = fattr(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
        attr->preferredShmemCarveout = fattr(f, CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT);
        attr->clusterDimMustBeSet = fattr(f, CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET);
        attr->requiredClusterWidth = fattr(f, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH);
        attr->requiredClusterHeight = fattr(f, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT);
        attr->requiredClusterDepth = fattr(f, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH);
        attr->clusterSchedulingPolicyPreference =
                fattr(f, CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE);
        attr->nonPortableClusterSizeAllowed =
                fattr(f, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED);
        return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value)
{
        struct rt_func *rf;
        CUfunction f;
        cudaError_t e = func_here(func, &f, NULL);

        if (e != cudaSuccess)
                return e;
        if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize &&
            attr != cudaFuncAttributePreferredSharedMemoryCarveout)
                return rt_ret(rt_unsupported("cudaFuncSetAttribute with this attribute"));
        e = rt_cu(cuFuncSetAttribute(f, (CUfunction_attribute)attr, value));
        if (e != cudaSuccess)
                return e;
        /* Remembered, so that the kernel loaded on another device (or after a reset) gets it. */
        pthread_mutex_lock(&rt_lock);
        rf = func_find_locked(func);
        if (rf && attr == cudaFuncAttributeMaxDynamicSharedMemorySize)
                rf->max_dynamic_shared = value;
        else if (rf)
                rf->carveout = value;
        pthread_mutex_unlock(&rt_lock);
        return cudaSuccess;
}

cudaError_t cudaFuncSetCacheConfig(const void *func, enum cudaFuncCache cacheConfig)
{
        CUfunction f;
        cudaError_t e = func_here(func, &f, NULL);

        (void)cacheConfig; /* a hint */
        return e;
}

cudaError_t cudaFuncGetName(const char **name, const void *func)
{
        struct rt_func *f;

        if (!name)
                return rt_ret(cudaErrorInvalidValue);
        pthread_mutex_lock(&rt_lock);
        f = func ? func_find_locked(func) : NULL;
        if (f)
                *name = f->name;
        pthread_mutex_unlock(&rt_lock);
        return f ? cudaSuccess : rt_ret(cudaErrorInvalidDeviceFunction);
}

cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, const void *func,
                                                                   int blockSize,
                                                                   size_t dynamicSMemSize,
                                                                   unsigned int flags)
{
        CUfunction f;
        cudaError_t e;

        if (!numBlocks || blockSize <= 0)
                return rt_ret(cudaErrorInvalidValue);
        e = func_here(func, &f, NULL);
        if (e != cudaSuccess)
                return e;
        return rt_cu(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, f, blockSize,
                                                                          dynamicSMemSize, flags));
}

cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, const void *func,
                                                          int blockSize, size_t dynamicSMemSize)
{
        return cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
                numBlocks, func, blockSize, dynamicSMemSize, cudaOccupancyDefault);
}

cudaError_t cudaOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, const void *func,
                                                      int numBlocks, int blockSize)
{
        int d, per_sm = 0, per_block = 0, reserved = 0, max_threads = 0;
        CUfunction f;
        size_t each;
        cudaError_t e;

        if (!dynamicSmemSize || numBlocks <= 0 || blockSize <= 0)
                return rt_ret(cudaErrorInvalidValue);
        e = func_here(func, &f, &d);
        if (e != cudaSuccess)
                return e;
        (void)cuDeviceGetAttribute(&per_sm,
                                   CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, d);
        (void)cuDeviceGetAttribute(&per_block,
                                   CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, d);
        (void)cuDeviceGetAttribute(&reserved, CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK,
                                   d);
        max_threads = fattr(f, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
        if (max_threads && blockSize > max_threads)
                return rt_ret(cudaErrorInvalidValue);
        /* What each of numBlocks resident blocks can have beyond its static shared memory. */
        each = (size_t)per_sm / (size_t)numBlocks;
        each = each > (size_t)reserved ? each - (size_t)reserved : 0;
        if (each > (size_t)per_block)
                each = (size_t)per_block;
        each = each > (size_t)fattr(f, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES)
                       ? each - (size_t)fattr(f, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES)
                       : 0;
        *dynamicSmemSize = each;
        return cudaSuccess;
}
