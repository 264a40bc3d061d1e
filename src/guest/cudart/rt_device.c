// SPDX-License-Identifier: Apache-2.0
// Devices for the runtime: driver initialisation, the per-thread current device, the primary
// contexts the runtime retains (one per device, as NVIDIA's runtime does), and the device queries
// (properties filled field by field from cuDeviceGetAttribute, so they are whatever the vGPU is).
#include <stdlib.h>
#include <string.h>

#include "guest/cudart/rt.h"

pthread_mutex_t rt_lock = PTHREAD_MUTEX_INITIALIZER;
struct rt_device rt_devices[RT_MAX_DEVICES];
int rt_ndevices;
bool rt_eager;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static cudaError_t init_error = cudaErrorInitializationError;

/* The device cudaSetDevice chose for this thread; -1: none yet (device 0). */
static __thread int tl_device = -1;

static void do_init(void)
{
        const char *mode = getenv("CUDA_MODULE_LOADING");
        CUresult r;
        int n = 0;

        vgpu_log_init("libcudart(vgpu)");
        rt_eager = mode && strcmp(mode, "EAGER") == 0;
        r = cuInit(0);
        if (r == CUDA_SUCCESS)
                r = cuDeviceGetCount(&n);
        if (r != CUDA_SUCCESS) {
                vgpu_log(VGPU_LOG_DEBUG, "cuInit: error %d", (int)r);
                init_error =
                        r == CUDA_ERROR_NO_DEVICE ? cudaErrorNoDevice : cudaErrorInsufficientDriver;
                return;
        }
        rt_ndevices = n > RT_MAX_DEVICES ? RT_MAX_DEVICES : n;
        init_error = rt_ndevices ? cudaSuccess : cudaErrorNoDevice;
}

cudaError_t rt_init(void)
{
        pthread_once(&init_once, do_init);
        return init_error;
}

CUresult rt_primary_locked(int d, CUcontext *ret_ctx, unsigned *ret_gen)
{
        struct rt_device *dev = &rt_devices[d];
        CUcontext ctx;
        CUresult r;

        if (d < 0 || d >= rt_ndevices)
                return CUDA_ERROR_INVALID_DEVICE;
        if (!dev->ctx) {
                r = cuDevicePrimaryCtxRetain(&ctx, d);
                if (r != CUDA_SUCCESS)
                        return r;
                dev->ctx = ctx;
                dev->gen++;
                if (rt_eager)
                        rt_load_all_locked(d, ctx, dev->gen);
        }
        *ret_ctx = dev->ctx;
        *ret_gen = dev->gen;
        return CUDA_SUCCESS;
}

/* Make device d's primary context current on this thread. */
static cudaError_t bind(int d)
{
        CUcontext ctx;
        unsigned gen;
        CUresult r;

        pthread_mutex_lock(&rt_lock);
        r = rt_primary_locked(d, &ctx, &gen);
        pthread_mutex_unlock(&rt_lock);
        if (r == CUDA_SUCCESS)
                r = cuCtxSetCurrent(ctx);
        return rt_error(r);
}

cudaError_t rt_enter(int *ret_dev)
{
        cudaError_t e = rt_init();
        CUdevice d;

        if (e != cudaSuccess)
                return rt_ret(e);
        /* A live current context (ours, or one made current with the driver API) is used as is. */
        if (cuCtxGetDevice(&d) == CUDA_SUCCESS && (tl_device < 0 || d == tl_device)) {
                *ret_dev = d;
                return cudaSuccess;
        }
        d = tl_device < 0 ? 0 : tl_device;
        e = bind(d);
        if (e != cudaSuccess)
                return rt_ret(e);
        *ret_dev = d;
        return cudaSuccess;
}

/* ---- device management ----------------------------------------------------------------------- */
cudaError_t cudaGetDeviceCount(int *count)
{
        cudaError_t e;

        if (!count)
                return rt_ret(cudaErrorInvalidValue);
        e = rt_init();
        *count = e == cudaSuccess ? rt_ndevices : 0;
        return rt_ret(e);
}

cudaError_t cudaSetDevice(int device)
{
        cudaError_t e = rt_init();

        if (e != cudaSuccess)
                return rt_ret(e);
        if (device < 0 || device >= rt_ndevices)
                return rt_ret(cudaErrorInvalidDevice);
        /* As NVIDIA's runtime since CUDA 12: the device's primary context is made current now. */
        e = bind(device);
        if (e == cudaSuccess)
                tl_device = device;
        return rt_ret(e);
}

cudaError_t cudaInitDevice(int device, unsigned int deviceFlags, unsigned int flags)
{
        cudaError_t e = rt_init();
        CUcontext ctx;
        unsigned gen;
        CUresult r;

        if (e != cudaSuccess)
                return rt_ret(e);
        if (device < 0 || device >= rt_ndevices)
                return rt_ret(cudaErrorInvalidDevice);
        if (flags)
                return rt_ret(cudaErrorInvalidValue);
        if (deviceFlags)
                (void)cuDevicePrimaryCtxSetFlags(device, deviceFlags);
        pthread_mutex_lock(&rt_lock);
        r = rt_primary_locked(device, &ctx, &gen);
        pthread_mutex_unlock(&rt_lock);
        return rt_cu(r);
}

cudaError_t cudaGetDevice(int *device)
{
        cudaError_t e = rt_init();
        CUdevice d;

        if (!device)
                return rt_ret(cudaErrorInvalidValue);
        if (e != cudaSuccess)
                return rt_ret(e);
        if (tl_device >= 0)
                *device = tl_device;
        else if (cuCtxGetDevice(&d) == CUDA_SUCCESS)
                *device = d;
        else
                *device = 0;
        return cudaSuccess;
}

cudaError_t cudaSetDeviceFlags(unsigned int flags)
{
        int d;
        cudaError_t e = rt_enter(&d);

        if (e != cudaSuccess)
                return e;
        /* cudaDeviceMapHost (always on with unified addressing) is not a context flag. */
        return rt_cu(cuDevicePrimaryCtxSetFlags(d, flags & ~(unsigned)cudaDeviceMapHost));
}

cudaError_t cudaGetDeviceFlags(unsigned int *flags)
{
        int d, active;
        unsigned f;
        cudaError_t e = rt_enter(&d);

        if (e != cudaSuccess)
                return e;
        if (!flags)
                return rt_ret(cudaErrorInvalidValue);
        e = rt_cu(cuDevicePrimaryCtxGetState(d, &f, &active));
        if (e == cudaSuccess)
                *flags = f | cudaDeviceMapHost;
        return e;
}

cudaError_t cudaDeviceSynchronize(void)
{
        int d;
        cudaError_t e = rt_enter(&d);

        if (e != cudaSuccess)
                return e;
        return rt_cu(cuCtxSynchronize());
}

cudaError_t cudaDeviceReset(void)
{
        int d;
        cudaError_t e = rt_enter(&d);
        CUcontext cur = NULL;

        if (e != cudaSuccess)
                return e;
        /* Destroys the primary context with everything in it; the next call makes a fresh one. */
        (void)cuCtxSynchronize();
        pthread_mutex_lock(&rt_lock);
        if (rt_devices[d].ctx) {
                if (cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur == rt_devices[d].ctx)
                        (void)cuCtxSetCurrent(NULL);
                (void)cuDevicePrimaryCtxReset(d);
                rt_devices[d].ctx = NULL;
                rt_devices[d].gen++;
        }
        pthread_mutex_unlock(&rt_lock);
        return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
        cudaError_t e = rt_init();

        if (e != cudaSuccess)
                return rt_ret(e);
        if (!value)
                return rt_ret(cudaErrorInvalidValue);
        if (device < 0 || device >= rt_ndevices)
                return rt_ret(cudaErrorInvalidDevice);
        /* The runtime's attribute numbers are the driver's. */
        return rt_cu(cuDeviceGetAttribute(value, (CUdevice_attribute)attr, device));
}

/* One attribute of device d; 0 when the driver has none. */
static int attr(int d, int a)
{
        int v = 0;

        if (cuDeviceGetAttribute(&v, (CUdevice_attribute)a, d) != CUDA_SUCCESS)
                v = 0;
        return v;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device)
{
        cudaError_t e = rt_init();
        size_t total = 0;
        CUuuid uuid;
        int d = device;

        if (e != cudaSuccess)
                return rt_ret(e);
        if (!p)
                return rt_ret(cudaErrorInvalidValue);
        if (device < 0 || device >= rt_ndevices)
                return rt_ret(cudaErrorInvalidDevice);
        memset(p, 0, sizeof(*p));
        if (cuDeviceGetName(p->name, sizeof(p->name), d) != CUDA_SUCCESS ||
            cuDeviceTotalMem(&total, d) != CUDA_SUCCESS)
                return rt_ret(cudaErrorInvalidDevice);
        if (cuDeviceGetUuid(&uuid, d) == CUDA_SUCCESS)
                memcpy(p->uuid.bytes, uuid.bytes, sizeof(p->uuid.bytes));
        p->totalGlobalMem = total;
        p->sharedMemPerBlock = (size_t)attr(d, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK);
        p->regsPerBlock = attr(d, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK);
        p->warpSize = attr(d, CU_DEVICE_ATTRIBUTE_WARP_SIZE);
        p->memPitch = (size_t)attr(d, CU_DEVICE_ATTRIBUTE_MAX_PITCH);
        p->maxThreadsPerBlock = attr(d, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
        p->maxThreadsDim[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X);
        p->maxThreadsDim[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y);
        p->maxThreadsDim[2] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z);
        p->maxGridSize[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X);
        p->maxGridSize[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y);
        p->maxGridSize[2] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z);
        p->totalConstMem = (size_t)attr(d, CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY);
        p->major = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        p->minor = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        p->textureAlignment = (size_t)attr(d, CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT);
        p->texturePitchAlignment = (size_t)attr(d, CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT);
        p->multiProcessorCount = attr(d, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        p->integrated = attr(d, CU_DEVICE_ATTRIBUTE_INTEGRATED);
        p->canMapHostMemory = attr(d, CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY);
        p->maxTexture1D = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_WIDTH);
        p->maxTexture1DMipmap = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_MIPMAPPED_WIDTH);
        p->maxTexture2D[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_WIDTH);
        p->maxTexture2D[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_HEIGHT);
        p->maxTexture2DMipmap[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_MIPMAPPED_WIDTH);
        p->maxTexture2DMipmap[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_MIPMAPPED_HEIGHT);
        p->maxTexture2DLinear[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_WIDTH);
        p->maxTexture2DLinear[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_HEIGHT);
        p->maxTexture2DLinear[2] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_PITCH);
        p->maxTexture2DGather[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_GATHER_WIDTH);
        p->maxTexture2DGather[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_GATHER_HEIGHT);
        p->maxTexture3D[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_WIDTH);
        p->maxTexture3D[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_HEIGHT);
        p->maxTexture3D[2] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_DEPTH);
        p->maxTexture3DAlt[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_WIDTH_ALTERNATE);
        p->maxTexture3DAlt[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_HEIGHT_ALTERNATE);
        p->maxTexture3DAlt[2] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_DEPTH_ALTERNATE);
        p->maxTextureCubemap = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_WIDTH);
        p->maxTexture1DLayered[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LAYERED_WIDTH);
        p->maxTexture1DLayered[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LAYERED_LAYERS);
        p->maxTexture2DLayered[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_WIDTH);
        p->maxTexture2DLayered[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_HEIGHT);
        p->maxTexture2DLayered[2] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_LAYERS);
        p->maxTextureCubemapLayered[0] =
                attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_LAYERED_WIDTH);
        p->maxTextureCubemapLayered[1] =
                attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_LAYERED_LAYERS);
        p->maxSurface1D = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_WIDTH);
        p->maxSurface2D[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_WIDTH);
        p->maxSurface2D[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_HEIGHT);
        p->maxSurface3D[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_WIDTH);
        p->maxSurface3D[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_HEIGHT);
        p->maxSurface3D[2] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_DEPTH);
        p->maxSurface1DLayered[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_LAYERED_WIDTH);
        p->maxSurface1DLayered[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_LAYERED_LAYERS);
        p->maxSurface2DLayered[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_WIDTH);
        p->maxSurface2DLayered[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_HEIGHT);
        p->maxSurface2DLayered[2] = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_LAYERS);
        p->maxSurfaceCubemap = attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_WIDTH);
        p->maxSurfaceCubemapLayered[0] =
                attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_LAYERED_WIDTH);
        p->maxSurfaceCubemapLayered[1] =
                attr(d, CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_LAYERED_LAYERS);
        p->surfaceAlignment = (size_t)attr(d, CU_DEVICE_ATTRIBUTE_SURFACE_ALIGNMENT);
        p->concurrentKernels = attr(d, CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS);
        p->ECCEnabled = attr(d, CU_DEVICE_ATTRIBUTE_ECC_ENABLED);
        p->pciBusID = attr(d, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID);
        p->pciDeviceID = attr(d, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID);
        p->pciDomainID = attr(d, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID);
        p->tccDriver = attr(d, CU_DEVICE_ATTRIBUTE_TCC_DRIVER);
        p->asyncEngineCount = attr(d, CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT);
        p->unifiedAddressing = attr(d, CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING);
        p->memoryBusWidth = attr(d, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
        p->l2CacheSize = attr(d, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
        p->persistingL2CacheMaxSize = attr(d, CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE);
        p->maxThreadsPerMultiProcessor =
                attr(d, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR);
        p->streamPrioritiesSupported = attr(d, CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED);
        p->globalL1CacheSupported = attr(d, CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED);
        p->localL1CacheSupported = attr(d, CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED);
        p->sharedMemPerMultiprocessor =
                (size_t)attr(d, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR);
        p->regsPerMultiprocessor = attr(d, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR);
        p->managedMemory = attr(d, CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY);
        p->isMultiGpuBoard = attr(d, CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD);
        p->multiGpuBoardGroupID = attr(d, CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD_GROUP_ID);
        p->hostNativeAtomicSupported = attr(d, CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED);
        p->pageableMemoryAccess = attr(d, CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS);
        p->concurrentManagedAccess = attr(d, CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS);
        p->computePreemptionSupported = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_PREEMPTION_SUPPORTED);
        p->canUseHostPointerForRegisteredMem =
                attr(d, CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM);
        p->cooperativeLaunch = attr(d, CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH);
        p->sharedMemPerBlockOptin =
                (size_t)attr(d, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
        p->pageableMemoryAccessUsesHostPageTables =
                attr(d, CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES);
        p->directManagedMemAccessFromHost =
                attr(d, CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST);
        p->maxBlocksPerMultiProcessor = attr(d, CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR);
        p->accessPolicyMaxWindowSize = attr(d, CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE);
        p->reservedSharedMemPerBlock =
                (size_t)attr(d, CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK);
        p->hostRegisterSupported = attr(d, CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED);
        p->sparseCudaArraySupported = attr(d, CU_DEVICE_ATTRIBUTE_SPARSE_CUDA_ARRAY_SUPPORTED);
        p->hostRegisterReadOnlySupported =
                attr(d, CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED);
        p->timelineSemaphoreInteropSupported =
                attr(d, CU_DEVICE_ATTRIBUTE_TIMELINE_SEMAPHORE_INTEROP_SUPPORTED);
        p->memoryPoolsSupported = attr(d, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED);
        p->gpuDirectRDMASupported = attr(d, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED);
        p->gpuDirectRDMAFlushWritesOptions =
                (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_FLUSH_WRITES_OPTIONS);
        p->gpuDirectRDMAWritesOrdering =
                attr(d, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WRITES_ORDERING);
        p->memoryPoolSupportedHandleTypes =
                (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES);
        p->deferredMappingCudaArraySupported =
                attr(d, CU_DEVICE_ATTRIBUTE_DEFERRED_MAPPING_CUDA_ARRAY_SUPPORTED);
        p->ipcEventSupported = attr(d, CU_DEVICE_ATTRIBUTE_IPC_EVENT_SUPPORTED);
        p->clusterLaunch = attr(d, CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH);
        p->unifiedFunctionPointers = attr(d, CU_DEVICE_ATTRIBUTE_UNIFIED_FUNCTION_POINTERS);
        p->deviceNumaConfig = attr(d, CU_DEVICE_ATTRIBUTE_NUMA_CONFIG);
        p->deviceNumaId = attr(d, CU_DEVICE_ATTRIBUTE_NUMA_ID);
        p->mpsEnabled = attr(d, CU_DEVICE_ATTRIBUTE_MPS_ENABLED);
        p->hostNumaId = attr(d, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID);
        p->gpuPciDeviceID = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_GPU_PCI_DEVICE_ID);
        p->gpuPciSubsystemID = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_GPU_PCI_SUBSYSTEM_ID);
        p->hostNumaMultinodeIpcSupported =
                attr(d, CU_DEVICE_ATTRIBUTE_HOST_NUMA_MULTINODE_IPC_SUPPORTED);
        return cudaSuccess;
}

cudaError_t cudaDeviceGetLimit(size_t *pValue, enum cudaLimit limit)
{
        int d;
        cudaError_t e = rt_enter(&d);

        if (e != cudaSuccess)
                return e;
        /* The runtime's limits are the driver's, number for number. */
        return rt_cu(cuCtxGetLimit(pValue, (CUlimit)limit));
}

cudaError_t cudaDeviceSetLimit(enum cudaLimit limit, size_t value)
{
        int d;
        cudaError_t e = rt_enter(&d);

        if (e != cudaSuccess)
                return e;
        return rt_cu(cuCtxSetLimit((CUlimit)limit, value));
}

cudaError_t cudaDeviceGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
        int d;
        cudaError_t e = rt_enter(&d);

        if (e != cudaSuccess)
                return e;
        return rt_cu(cuCtxGetStreamPriorityRange(leastPriority, greatestPriority));
}

cudaError_t cudaDeviceGetCacheConfig(enum cudaFuncCache *pCacheConfig)
{
        if (!pCacheConfig)
                return rt_ret(cudaErrorInvalidValue);
        *pCacheConfig = cudaFuncCachePreferNone;
        return cudaSuccess;
}

cudaError_t cudaDeviceSetCacheConfig(enum cudaFuncCache cacheConfig)
{
        /* A hint; the vGPU has one shared-memory configuration. */
        (void)cacheConfig;
        return cudaSuccess;
}

cudaError_t cudaDeviceCanAccessPeer(int *canAccessPeer, int device, int peerDevice)
{
        cudaError_t e = rt_init();

        if (e != cudaSuccess)
                return rt_ret(e);
        return rt_cu(cuDeviceCanAccessPeer(canAccessPeer, device, peerDevice));
}

cudaError_t cudaDeviceGetPCIBusId(char *pciBusId, int len, int device)
{
        cudaError_t e = rt_init();

        if (e != cudaSuccess)
                return rt_ret(e);
        if (device < 0 || device >= rt_ndevices)
                return rt_ret(cudaErrorInvalidDevice);
        return rt_cu(cuDeviceGetPCIBusId(pciBusId, len, device));
}

cudaError_t cudaDeviceGetByPCIBusId(int *device, const char *pciBusId)
{
        cudaError_t e = rt_init();

        if (e != cudaSuccess)
                return rt_ret(e);
        return rt_cu(cuDeviceGetByPCIBusId(device, pciBusId));
}

cudaError_t cudaChooseDevice(int *device, const struct cudaDeviceProp *prop)
{
        cudaError_t e = rt_init();
        int best = 0, best_score = -1;

        if (e != cudaSuccess)
                return rt_ret(e);
        if (!device || !prop)
                return rt_ret(cudaErrorInvalidValue);
        /* The device whose compute capability comes closest to the one asked for. */
        for (int d = 0; d < rt_ndevices; d++) {
                int major = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
                int minor = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
                int score = major * 10 + minor >= prop->major * 10 + prop->minor ? 1000 : 0;

                score += major * 10 + minor;
                if (score > best_score) {
                        best = d;
                        best_score = score;
                }
        }
        *device = best;
        return cudaSuccess;
}

/* ---- versions -------------------------------------------------------------------------------- */
cudaError_t cudaRuntimeGetVersion(int *runtimeVersion)
{
        if (!runtimeVersion)
                return rt_ret(cudaErrorInvalidValue);
        *runtimeVersion = CUDART_VERSION;
        return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *driverVersion)
{
        if (!driverVersion)
                return rt_ret(cudaErrorInvalidValue);
        /* No driver at all reads as version 0, as with NVIDIA's runtime. */
        if (cuDriverGetVersion(driverVersion) != CUDA_SUCCESS)
                *driverVersion = 0;
        return cudaSuccess;
}

cudaError_t cudaGetDriverEntryPointByVersion(const char *symbol, void **funcPtr,
                                             unsigned int cudaVersion, unsigned long long flags,
                                             enum cudaDriverEntryPointQueryResult *driverStatus)
{
        CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        cudaError_t e = rt_init();

        if (e != cudaSuccess)
                return rt_ret(e);
        if (!symbol || !funcPtr)
                return rt_ret(cudaErrorInvalidValue);
        /* The query results and flags are the driver's, number for number. */
        e = rt_cu(cuGetProcAddress(symbol, funcPtr, (int)cudaVersion, flags, &status));
        if (driverStatus)
                *driverStatus = (enum cudaDriverEntryPointQueryResult)status;
        return e;
}

cudaError_t cudaGetDriverEntryPoint(const char *symbol, void **funcPtr, unsigned long long flags,
                                    enum cudaDriverEntryPointQueryResult *driverStatus)
{
        return cudaGetDriverEntryPointByVersion(symbol, funcPtr, CUDART_VERSION, flags,
                                                driverStatus);
}
