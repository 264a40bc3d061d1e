// SPDX-License-Identifier: Apache-2.0
// cuInit, versions, error strings, cuGetProcAddress, and the device queries: what a program sees
// of its vGPU. Total memory is the vGPU's framebuffer; the SM count is the vGPU's (its GPU
// instance's for MIG-backed types); the rest follows the physical GPU's compute capability.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"

/* The driver API version this library implements (CUDA 13.0). */
#define GUEST_DRIVER_VERSION 13000

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CUresult init_result = CUDA_ERROR_NOT_INITIALIZED;

static void do_init(void)
{
        init_result = guest_attach_all();
}

CUresult guest_ensure_init(void)
{
        return init_result == CUDA_SUCCESS ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

int guest_unsupported_name(const char *name);
int guest_unsupported_name(const char *name)
{
        return (int)guest_unsupported(name);
}

CUresult CUDAAPI cuInit(unsigned int flags)
{
        if (flags != 0)
                return CUDA_ERROR_INVALID_VALUE;
        pthread_once(&init_once, do_init);
        return init_result;
}

CUresult CUDAAPI cuDriverGetVersion(int *version)
{
        if (!version)
                return CUDA_ERROR_INVALID_VALUE;
        *version = GUEST_DRIVER_VERSION;
        return CUDA_SUCCESS;
}

/* Names and strings for the CUresult values programs meet; the rest get a generic text. */
static const struct {
        CUresult r;
        const char *name;
        const char *text;
} results[] = {
#define R(code, text)                                                                              \
        {                                                                                          \
                code, #code, text                                                                  \
        }
        R(CUDA_SUCCESS, "no error"),
        R(CUDA_ERROR_INVALID_VALUE, "invalid argument"),
        R(CUDA_ERROR_OUT_OF_MEMORY, "out of memory"),
        R(CUDA_ERROR_NOT_INITIALIZED, "initialization error"),
        R(CUDA_ERROR_DEINITIALIZED, "driver shutting down"),
        R(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected"),
        R(CUDA_ERROR_INVALID_DEVICE, "invalid device ordinal"),
        R(CUDA_ERROR_DEVICE_UNAVAILABLE, "CUDA-capable device(s) is/are busy or unavailable"),
        R(CUDA_ERROR_INVALID_IMAGE, "device kernel image is invalid"),
        R(CUDA_ERROR_INVALID_CONTEXT, "invalid device context"),
        R(CUDA_ERROR_CONTEXT_ALREADY_CURRENT, "context already current"),
        R(CUDA_ERROR_NO_BINARY_FOR_GPU, "no kernel image is available for execution on the device"),
        R(CUDA_ERROR_INVALID_PTX, "a PTX JIT compilation failed"),
        R(CUDA_ERROR_INVALID_SOURCE, "device kernel image is invalid"),
        R(CUDA_ERROR_FILE_NOT_FOUND, "file not found"),
        R(CUDA_ERROR_INVALID_HANDLE, "invalid resource handle"),
        R(CUDA_ERROR_NOT_FOUND, "named symbol not found"),
        R(CUDA_ERROR_NOT_READY, "device not ready"),
        R(CUDA_ERROR_ILLEGAL_ADDRESS, "an illegal memory access was encountered"),
        R(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "too many resources requested for launch"),
        R(CUDA_ERROR_LAUNCH_TIMEOUT, "the launch timed out and was terminated"),
        R(CUDA_ERROR_ASSERT, "device-side assert triggered"),
        R(CUDA_ERROR_ILLEGAL_INSTRUCTION, "an illegal instruction was encountered"),
        R(CUDA_ERROR_MISALIGNED_ADDRESS, "misaligned address"),
        R(CUDA_ERROR_LAUNCH_FAILED, "unspecified launch failure"),
        R(CUDA_ERROR_NOT_SUPPORTED, "operation not supported"),
        R(CUDA_ERROR_NOT_PERMITTED, "operation not permitted"),
        R(CUDA_ERROR_PEER_ACCESS_UNSUPPORTED,
          "peer access is not supported between these two devices"),
        R(CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, "peer access is already enabled"),
        R(CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, "peer access has not been enabled"),
        R(CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, "primary context active"),
        R(CUDA_ERROR_CONTEXT_IS_DESTROYED, "context is destroyed"),
        R(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED,
          "part or all of the requested memory range is already mapped"),
        R(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED,
          "pointer does not correspond to a registered memory region"),
        R(CUDA_ERROR_UNKNOWN, "unknown error"),
#undef R
};

CUresult CUDAAPI cuGetErrorName(CUresult error, const char **str)
{
        if (!str)
                return CUDA_ERROR_INVALID_VALUE;
        for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
                if (results[i].r == error) {
                        *str = results[i].name;
                        return CUDA_SUCCESS;
                }
        }
        *str = NULL;
        return CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuGetErrorString(CUresult error, const char **str)
{
        if (!str)
                return CUDA_ERROR_INVALID_VALUE;
        for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
                if (results[i].r == error) {
                        *str = results[i].text;
                        return CUDA_SUCCESS;
                }
        }
        *str = NULL;
        return CUDA_ERROR_INVALID_VALUE;
}

/* ---- cuGetProcAddress --------------------------------------------------------------------- */

struct guest_proc {
        const char *name;
        void *fn;
};
extern const struct guest_proc guest_procs[];
extern const size_t guest_nprocs;

static void *find_proc(const char *name)
{
        for (size_t i = 0; i < guest_nprocs; i++) {
                if (strcmp(guest_procs[i].name, name) == 0)
                        return guest_procs[i].fn;
        }
        return NULL;
}

/*
 * The newest ABI version of symbol: NAME_v4 .. NAME_v2, then NAME; with per-thread default
 * stream semantics asked for, the _ptds / _ptsz variant of that when there is one.
 */
static void *resolve(const char *symbol, cuuint64_t flags)
{
        static const char *const vers[] = {"_v4", "_v3", "_v2", ""};
        char name[256];

        for (size_t i = 0; i < sizeof(vers) / sizeof(vers[0]); i++) {
                void *fn;

                if (snprintf(name, sizeof(name), "%s%s", symbol, vers[i]) >= (int)sizeof(name))
                        return NULL;
                fn = find_proc(name);
                if (!fn)
                        continue;
                if (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) {
                        char ptds[272];
                        void *p;

                        snprintf(ptds, sizeof(ptds), "%s_ptds", name);
                        if ((p = find_proc(ptds)))
                                return p;
                        snprintf(ptds, sizeof(ptds), "%s_ptsz", name);
                        if ((p = find_proc(ptds)))
                                return p;
                }
                return fn;
        }
        return NULL;
}

CUresult CUDAAPI cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                  CUdriverProcAddressQueryResult *status)
{
        void *fn;

        if (!symbol || !pfn)
                return CUDA_ERROR_INVALID_VALUE;
        (void)cudaVersion;
        fn = resolve(symbol, flags);
        *pfn = fn;
        if (status)
                *status = fn ? CU_GET_PROC_ADDRESS_SUCCESS : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        return fn ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

/* ---- devices ------------------------------------------------------------------------------ */

#define WITH_DEV(dev, d)                                                                           \
        struct gdev *d;                                                                            \
        if (guest_ensure_init() != CUDA_SUCCESS)                                                   \
                return CUDA_ERROR_NOT_INITIALIZED;                                                 \
        if (!((d) = guest_dev(dev)))                                                               \
        return CUDA_ERROR_INVALID_DEVICE

CUresult CUDAAPI cuDeviceGet(CUdevice *device, int ordinal)
{
        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!device)
                return CUDA_ERROR_INVALID_VALUE;
        if (!guest_dev(ordinal))
                return CUDA_ERROR_INVALID_DEVICE;
        *device = ordinal;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetCount(int *count)
{
        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!count)
                return CUDA_ERROR_INVALID_VALUE;
        *count = guest_ndevs;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetName(char *name, int len, CUdevice dev)
{
        WITH_DEV(dev, d);
        if (!name || len <= 0)
                return CUDA_ERROR_INVALID_VALUE;
        snprintf(name, (size_t)len, "%s", d->name);
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceTotalMem(size_t *bytes, CUdevice dev)
{
        WITH_DEV(dev, d);
        if (!bytes)
                return CUDA_ERROR_INVALID_VALUE;
        *bytes = d->fb_size;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
        unsigned v[16];

        WITH_DEV(dev, d);
        if (!uuid)
                return CUDA_ERROR_INVALID_VALUE;
        if (sscanf(d->uuid, "%2x%2x%2x%2x-%2x%2x-%2x%2x-%2x%2x-%2x%2x%2x%2x%2x%2x", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12],
                   &v[13], &v[14], &v[15]) != 16)
                return CUDA_ERROR_UNKNOWN;
        for (int i = 0; i < 16; i++)
                uuid->bytes[i] = (char)v[i];
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
        WITH_DEV(dev, d);
        if (!pciBusId || len <= 0)
                return CUDA_ERROR_INVALID_VALUE;
        snprintf(pciBusId, (size_t)len, "%s", d->pci_bus_id);
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId)
{
        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!dev || !pciBusId)
                return CUDA_ERROR_INVALID_VALUE;
        for (int i = 0; i < guest_ndevs; i++) {
                if (strcasecmp(guest_devs[i]->pci_bus_id, pciBusId) == 0) {
                        *dev = i;
                        return CUDA_SUCCESS;
                }
        }
        return CUDA_ERROR_INVALID_DEVICE;
}

/*
 * Per compute capability: SM resources as the CUDA C++ Programming Guide's table of technical
 * specifications per compute capability lists them (threads and blocks per SM, shared memory per
 * SM and per block with the opt-in); the L2 size is a typical part's.
 */
struct arch_limits {
        int threads_per_sm, blocks_per_sm, smem_per_sm, smem_optin, l2;
};

static struct arch_limits arch_of(const struct gdev *d)
{
        int cc = d->cc_major * 10 + d->cc_minor;

        if (cc >= 120) /* consumer and workstation Blackwell */
                return (struct arch_limits){1536, 32, 102400, 101376, 96 << 20};
        if (cc >= 90) /* Hopper, data-center Blackwell */
                return (struct arch_limits){2048, 32, 233472, 232448, 50 << 20};
        if (cc == 80 || cc == 87)
                return (struct arch_limits){2048, cc == 80 ? 32 : 16, 167936, 166912, 40 << 20};
        if (cc >= 86) /* 8.6: 16 blocks per SM, 8.9: 24 */
                return (struct arch_limits){1536, cc == 86 ? 16 : 24, 102400, 101376, 48 << 20};
        if (cc == 70 || cc == 72)
                return (struct arch_limits){2048, 32, 98304, 98304, 6 << 20};
        return (struct arch_limits){1024, 16, 65536, 65536, 6 << 20};
}

static int attribute(const struct gdev *d, CUdevice_attribute a, int *ret)
{
        struct arch_limits al = arch_of(d);
        unsigned dom = 0, bus = 0, devn = 0, fn = 0;

        sscanf(d->pci_bus_id, "%x:%x:%x.%x", &dom, &bus, &devn, &fn);
        switch (a) {
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
                *ret = 1024;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X:
                *ret = 1024;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y:
                *ret = 1024;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z:
                *ret = 64;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X:
                *ret = 2147483647;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y:
                *ret = 65535;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z:
                *ret = 65535;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK:
                *ret = 49152;
                break;
        case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY:
                *ret = 65536;
                break;
        case CU_DEVICE_ATTRIBUTE_WARP_SIZE:
                *ret = 32;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_PITCH:
                *ret = 2147483647;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK:
                *ret = 65536;
                break;
        case CU_DEVICE_ATTRIBUTE_CLOCK_RATE:
                *ret = 1755000;
                break;
        case CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT:
                *ret = 512;
                break;
        case CU_DEVICE_ATTRIBUTE_GPU_OVERLAP:
                *ret = 1;
                break;
        case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
                *ret = d->sm_count;
                break;
        case CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT:
                *ret = 0;
                break;
        case CU_DEVICE_ATTRIBUTE_INTEGRATED:
                *ret = 0;
                break;
        case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY:
                *ret = 1;
                break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_MODE:
                *ret = CU_COMPUTEMODE_DEFAULT;
                break;
        case CU_DEVICE_ATTRIBUTE_SURFACE_ALIGNMENT:
                *ret = 512;
                break;
        case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS:
                *ret = 1;
                break;
        case CU_DEVICE_ATTRIBUTE_ECC_ENABLED:
                *ret = 1;
                break;
        case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID:
                *ret = (int)bus;
                break;
        case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID:
                *ret = (int)devn;
                break;
        case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID:
                *ret = (int)dom;
                break;
        case CU_DEVICE_ATTRIBUTE_TCC_DRIVER:
                *ret = 0;
                break;
        case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE:
                *ret = 1593000;
                break;
        case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH:
                *ret = 5120;
                break;
        case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE:
                *ret = al.l2;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR:
                *ret = al.threads_per_sm;
                break;
        case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT:
                *ret = 2;
                break;
        case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
                *ret = 1;
                break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
                *ret = d->cc_major;
                break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
                *ret = d->cc_minor;
                break;
        case CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED:
                *ret = 1;
                break;
        case CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED:
                *ret = 1;
                break;
        case CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED:
                *ret = 1;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR:
                *ret = al.smem_per_sm;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR:
                *ret = 65536;
                break;
        case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY:
                *ret = 0;
                break;
        case CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD:
                *ret = 0;
                break;
        case CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD_GROUP_ID:
                *ret = d->ordinal;
                break;
        case CU_DEVICE_ATTRIBUTE_SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO:
                *ret = d->cc_major == 8 && d->cc_minor != 0 ? 64 : 2;
                break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_PREEMPTION_SUPPORTED:
                *ret = 1;
                break;
        case CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM:
                *ret = 0;
                break;
        case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH:
                *ret = 0;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN:
                *ret = al.smem_optin;
                break;
        case CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED:
                *ret = 1;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR:
                *ret = al.blocks_per_sm;
                break;
        case CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK:
                *ret = 1024;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE:
                *ret = al.l2 * 3 / 4;
                break;
        case CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE:
                *ret = 134213632;
                break;
        default:
                if ((int)a <= 0 || a >= CU_DEVICE_ATTRIBUTE_MAX)
                        return -1;
                /* A feature the vGPU does not offer (textures, VMM, IPC, clusters...). */
                *ret = 0;
        }
        return 0;
}

CUresult CUDAAPI cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
        WITH_DEV(dev, d);
        if (!pi || attribute(d, attrib, pi) < 0)
                return CUDA_ERROR_INVALID_VALUE;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
        WITH_DEV(dev, d);
        if (!major || !minor)
                return CUDA_ERROR_INVALID_VALUE;
        *major = d->cc_major;
        *minor = d->cc_minor;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev)
{
        WITH_DEV(dev, d);
        (void)d;
        if (!canAccessPeer || !guest_dev(peerDev))
                return CUDA_ERROR_INVALID_DEVICE;
        /* Peer copies between vGPUs go through the host; direct peer access is not offered. */
        *canAccessPeer = 0;
        return CUDA_SUCCESS;
}

/* Told once per process: NVIDIA's runtime asks for the private tables at its first call. */
static pthread_once_t export_table_once = PTHREAD_ONCE_INIT;

static void export_table_notice(void)
{
        fprintf(stderr, "vgpu: this program uses NVIDIA's CUDA runtime (linked statically, nvcc's "
                        "default, or NVIDIA's libcudart.so), which vgpu's guest driver does not "
                        "support; rebuild it with `nvcc -cudart shared` and run it with vgpu's "
                        "libcudart.so.13 first in LD_LIBRARY_PATH (docs/cudart.md)\n");
}

CUresult CUDAAPI cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
        /*
         * NVIDIA's runtime (static, or its libcudart.so) reaches the driver through these private,
         * integrity-checked tables; vgpu does not imitate them. Refusing makes such a program fail
         * at its first runtime call, with the message above, instead of misbehaving later.
         */
        (void)pExportTableId;
        pthread_once(&export_table_once, export_table_notice);
        if (ppExportTable)
                *ppExportTable = NULL;
        return CUDA_ERROR_NOT_SUPPORTED;
}
