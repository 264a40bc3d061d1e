// SPDX-License-Identifier: Apache-2.0
// The stand-in driver's process state and devices: cuInit (the configuration, once per process),
// the checks every entry point makes first, the sticky kernel fault that ends every context of the
// process, device queries and attributes, and primary contexts.
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_cuda.h"

struct fc_config fc;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int init_state;      /* 0: cuInit not called yet, 1: ready, -1: it failed */
static CUresult init_error; /* what a failed cuInit returned */
static int forked;          /* this process is a child forked after cuInit */
static CUresult sticky;     /* the first kernel fault, for every call after it */

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread struct fc_ctx *current;

void fc_say(const char *fmt, ...)
{
        char line[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        fprintf(stderr, "fake libcuda: %s\n", line);
}

static void on_fork_child(void)
{
        forked = 1;
}

CUresult fc_ready(void)
{
        static int told;

        if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != 1)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (forked) {
                if (!__atomic_exchange_n(&told, 1, __ATOMIC_RELAXED))
                        fc_say("a child forked after cuInit cannot use the driver (as with "
                               "NVIDIA's)");
                return CUDA_ERROR_NOT_INITIALIZED;
        }
        return CUDA_SUCCESS;
}

CUresult fc_sticky(void)
{
        return __atomic_load_n(&sticky, __ATOMIC_ACQUIRE);
}

CUresult fc_check(void)
{
        CUresult r = fc_ready();

        return r != CUDA_SUCCESS ? r : fc_sticky();
}

void fc_fault(struct fc_dev *dev, CUresult r, unsigned xid)
{
        CUresult none = CUDA_SUCCESS;

        /* The first fault is the one every later call reports. */
        __atomic_compare_exchange_n(&sticky, &none, r, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        acct_xid(dev, xid);
}

struct fc_dev *fc_device(CUdevice ordinal)
{
        return ordinal >= 0 && ordinal < fc.n_devs ? &fc.devs[ordinal] : NULL;
}

static bool is_ctx(const struct fc_ctx *ctx)
{
        for (int i = 0; i < fc.n_devs; i++) {
                if (ctx == &fc.devs[i].ctx)
                        return true;
        }
        return false;
}

bool fc_ctx_active(const struct fc_ctx *ctx)
{
        bool on;

        if (!ctx || !is_ctx(ctx))
                return false;
        pthread_mutex_lock(&ctx_lock);
        on = ctx->refs > 0;
        pthread_mutex_unlock(&ctx_lock);
        return on;
}

struct fc_ctx *fc_current(void)
{
        return fc_ctx_active(current) ? current : NULL;
}

VGPU_EXPORT CUresult cuInit(unsigned int Flags)
{
        static char why[512];
        const char *dir = getenv("VGPU_FAKE_GPU");
        CUresult r;

        if (Flags != 0)
                return CUDA_ERROR_INVALID_VALUE;
        if (forked)
                return fc_ready();
        pthread_mutex_lock(&init_lock);
        if (init_state == 0) {
                init_error = CUDA_ERROR_NO_DEVICE;
                if (!dir || !dir[0]) {
                        fc_say("VGPU_FAKE_GPU is not set: there is no GPU");
                } else if (config_load(dir, getenv("CUDA_VISIBLE_DEVICES"), &fc, why, sizeof(why)) <
                           0) {
                        fc_say("%s: there is no GPU", why);
                } else if (fc.n_devs == 0) {
                        fc_say("%s/gpus.json shows no CUDA device (CUDA_VISIBLE_DEVICES=%s)", dir,
                               getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES")
                                                              : "");
                } else if (pthread_atfork(NULL, NULL, on_fork_child) != 0) {
                        init_error = CUDA_ERROR_OPERATING_SYSTEM;
                } else {
                        init_error = CUDA_SUCCESS;
                }
                __atomic_store_n(&init_state, init_error == CUDA_SUCCESS ? 1 : -1,
                                 __ATOMIC_RELEASE);
        }
        r = init_error;
        pthread_mutex_unlock(&init_lock);
        return r;
}

VGPU_EXPORT CUresult cuDriverGetVersion(int *driverVersion)
{
        const char *dir = getenv("VGPU_FAKE_GPU");
        struct fc_config *c;
        char why[256];

        if (!driverVersion)
                return CUDA_ERROR_INVALID_VALUE;
        if (fc_ready() == CUDA_SUCCESS) {
                *driverVersion = fc.driver_version;
                return CUDA_SUCCESS;
        }
        /* Before cuInit, as NVIDIA's: the configured version, if it can be read. */
        *driverVersion = 13000;
        c = malloc(sizeof(*c));
        if (c && dir && config_load(dir, NULL, c, why, sizeof(why)) == 0)
                *driverVersion = c->driver_version;
        free(c);
        return CUDA_SUCCESS;
}

/* Device queries work after a kernel fault too: they need no context. */
static CUresult get_dev(CUdevice d, struct fc_dev **ret)
{
        CUresult r = fc_ready();

        if (r != CUDA_SUCCESS)
                return r;
        *ret = fc_device(d);
        return *ret ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

VGPU_EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
        CUresult r = fc_ready();

        if (r != CUDA_SUCCESS)
                return r;
        if (!device)
                return CUDA_ERROR_INVALID_VALUE;
        if (!fc_device(ordinal))
                return CUDA_ERROR_INVALID_DEVICE;
        *device = ordinal;
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuDeviceGetCount(int *count)
{
        CUresult r = fc_ready();

        if (r != CUDA_SUCCESS)
                return r;
        if (!count)
                return CUDA_ERROR_INVALID_VALUE;
        *count = fc.n_devs;
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
        struct fc_dev *d;
        CUresult r = get_dev(dev, &d);

        if (r != CUDA_SUCCESS)
                return r;
        if (!name || len <= 0)
                return CUDA_ERROR_INVALID_VALUE;
        snprintf(name, (size_t)len, "%s", d->name);
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
        struct fc_dev *d;
        CUresult r = get_dev(dev, &d);

        if (r != CUDA_SUCCESS)
                return r;
        if (!bytes)
                return CUDA_ERROR_INVALID_VALUE;
        *bytes = (size_t)d->total;
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
        struct fc_dev *d;
        CUresult r = get_dev(dev, &d);

        if (r != CUDA_SUCCESS)
                return r;
        if (!uuid)
                return CUDA_ERROR_INVALID_VALUE;
        memcpy(uuid->bytes, d->uuid, sizeof(uuid->bytes));
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
        struct fc_dev *d;
        CUresult r = get_dev(dev, &d);

        if (r != CUDA_SUCCESS)
                return r;
        if (!pciBusId || len <= 0)
                return CUDA_ERROR_INVALID_VALUE;
        /* The driver's form has a 4-digit domain: "0000:41:00.0". */
        snprintf(pciBusId, (size_t)len, "%04X:%02X:%02X.0", d->pci_domain & 0xffff, d->pci_bus,
                 d->pci_device);
        return CUDA_SUCCESS;
}

/* An H100-like device; what depends on the configuration comes from it. */
static int attribute(const struct fc_dev *d, CUdevice_attribute a)
{
        switch (a) {
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X:
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y:
                return 1024;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z:
                return 64;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR:
                return 32;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X:
        case CU_DEVICE_ATTRIBUTE_MAX_PITCH:
                return 2147483647;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y:
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z:
                return 65535;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK:
                return 49152;
        case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY:
                return 65536;
        case CU_DEVICE_ATTRIBUTE_WARP_SIZE:
                return 32;
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK:
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR:
                return 65536;
        case CU_DEVICE_ATTRIBUTE_CLOCK_RATE:
                return 1980000; /* kHz */
        case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE:
                return 2619000; /* kHz */
        case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH:
                return 5120;
        case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE:
                return 50 << 20;
        case CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE:
                return 30 << 20;
        case CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT:
        case CU_DEVICE_ATTRIBUTE_SURFACE_ALIGNMENT:
                return 512;
        case CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT:
                return 32;
        case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
                return d->sms;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
                return d->cc_major;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
                return d->cc_minor;
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR:
                return 2048;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR:
                return 233472;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN:
                return 232448;
        case CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK:
                return 1024;
        case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT:
                return 3;
        case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID:
                return (int)d->pci_domain;
        case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID:
                return (int)d->pci_bus;
        case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID:
                return (int)d->pci_device;
        case CU_DEVICE_ATTRIBUTE_GPU_PCI_DEVICE_ID:
                return (int)(d->pci_device_id << 16 | 0x10de);
        case CU_DEVICE_ATTRIBUTE_SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO:
                return 2;
        case CU_DEVICE_ATTRIBUTE_MEM_SYNC_DOMAIN_COUNT:
                return d->cc_major >= 9 ? 4 : 1;
        case CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES:
                return CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
        case CU_DEVICE_ATTRIBUTE_NUMA_ID:
        case CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID:
                return -1;
        case CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH:
                return d->cc_major >= 9;
        case CU_DEVICE_ATTRIBUTE_GPU_OVERLAP:
        case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY:
        case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS:
        case CU_DEVICE_ATTRIBUTE_ECC_ENABLED:
        case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
        case CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED:
        case CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED:
        case CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED:
        case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY:
        case CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS:
        case CU_DEVICE_ATTRIBUTE_COMPUTE_PREEMPTION_SUPPORTED:
        case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH:
        case CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED:
        case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
        case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED:
        case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED:
        case CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED:
        case CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS:
        case CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_WAIT_VALUE_NOR:
                return 1;
        default:
                return 0; /* texture limits, Windows, NUMA, interop: nothing the stand-in has */
        }
}

VGPU_EXPORT CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
        struct fc_dev *d;
        CUresult r = get_dev(dev, &d);

        if (r != CUDA_SUCCESS)
                return r;
        if (!pi || (int)attrib < 1 || attrib >= CU_DEVICE_ATTRIBUTE_MAX)
                return CUDA_ERROR_INVALID_VALUE;
        *pi = attribute(d, attrib);
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
        struct fc_dev *d;
        CUresult r = fc_check(); /* after a fault no context can be made */

        if (r != CUDA_SUCCESS)
                return r;
        if (!pctx)
                return CUDA_ERROR_INVALID_VALUE;
        d = fc_device(dev);
        if (!d)
                return CUDA_ERROR_INVALID_DEVICE;
        pthread_mutex_lock(&ctx_lock);
        d->ctx.refs++;
        pthread_mutex_unlock(&ctx_lock);
        *pctx = (CUcontext)(void *)&d->ctx;
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
        struct fc_dev *d;
        bool last = false;
        CUresult r = fc_ready();

        if (r != CUDA_SUCCESS)
                return r;
        d = fc_device(dev);
        if (!d)
                return CUDA_ERROR_INVALID_DEVICE;
        pthread_mutex_lock(&ctx_lock);
        if (d->ctx.refs == 0)
                r = CUDA_ERROR_INVALID_CONTEXT;
        else
                last = --d->ctx.refs == 0;
        pthread_mutex_unlock(&ctx_lock);
        if (last) {
                /* The context's resources go with it, as on a GPU. */
                stream_drop_ctx(&d->ctx);
                module_drop_ctx(&d->ctx);
        }
        return r != CUDA_SUCCESS ? r : fc_sticky();
}

VGPU_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx)
{
        struct fc_ctx *c = (struct fc_ctx *)(void *)ctx;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (c && !is_ctx(c))
                return CUDA_ERROR_INVALID_CONTEXT;
        current = c;
        return CUDA_SUCCESS;
}
