// SPDX-License-Identifier: Apache-2.0
// Loads NVIDIA's libcuda.so.1 with dlopen, resolves the entry points the backend uses, and runs
// cuInit, once per process. vgpu's own guest driver is also named libcuda.so.1; a process whose
// library path finds that one first (an engine started from a guest's shell, say) must not load
// it, or the engine would become a guest of itself: the guest driver exports vgpu_guest_driver,
// and a library that does is passed over for the driver's usual places.
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_drv.h"
#include "common/log.h"
#include "ptx/ptx.h"

struct cuda_drv cu;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static int load_result = 1; /* 1: not tried yet */
static char load_error[256];

static const char *const driver_paths[] = {
        "libcuda.so.1",
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/usr/lib64/libcuda.so.1",
        "/usr/local/nvidia/lib64/libcuda.so.1",
        "/usr/lib/wsl/lib/libcuda.so.1",
        "/usr/lib/aarch64-linux-gnu/libcuda.so.1",
};

static void *open_driver(char *why, size_t why_len)
{
        const char *env = getenv("VGPU_CUDA_DRIVER");
        bool own = false;

        why[0] = '\0';
        for (size_t i = 0; i < sizeof(driver_paths) / sizeof(driver_paths[0]); i++) {
                const char *path = env && *env ? env : driver_paths[i];
                void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

                if (!h) {
                        if (!why[0] || env)
                                snprintf(why, why_len, "%s", dlerror());
                } else if (dlsym(h, "vgpu_guest_driver")) {
                        own = true;
                        dlclose(h);
                } else {
                        return h;
                }
                if (env && *env)
                        break;
        }
        if (own)
                snprintf(why, why_len,
                         "only vgpu's guest driver was found as libcuda.so.1 (set "
                         "VGPU_CUDA_DRIVER to the path of NVIDIA's)");
        return NULL;
}

static int load_locked(void)
{
        void *h;
        int v = 0;
        CUresult r;

        h = open_driver(load_error, sizeof(load_error));
        if (!h)
                return -ENODEV;
#define CUDA_DRV_RESOLVE(field, symbol)                                                            \
        cu.field = (__typeof__(cu.field))dlsym(h, #symbol);                                        \
        if (!cu.field) {                                                                           \
                snprintf(load_error, sizeof(load_error),                                           \
                         "the driver lacks %s (it is older than vgpu needs)", #symbol);            \
                dlclose(h);                                                                        \
                return -ENODEV;                                                                    \
        }
        CUDA_DRV_CALLS(CUDA_DRV_RESOLVE)
#undef CUDA_DRV_RESOLVE
        r = cu.init(0);
        /*
         * No device is not no driver: GPUs in MIG mode without compute instances show no CUDA
         * device, and NVML still lists them (vgpud then serves them, and the driver's calls say
         * "no device" as they should).
         */
        if (r == CUDA_ERROR_NO_DEVICE)
                vgpu_log(VGPU_LOG_DEBUG, "cuInit: the driver shows no CUDA device");
        else if (r != CUDA_SUCCESS) {
                snprintf(load_error, sizeof(load_error), "cuInit: %s", cuda_errstr(r));
                memset(&cu, 0, sizeof(cu));
                dlclose(h);
                return -ENODEV;
        }
        cu.driver_version(&v);
        if (v < 12040) {
                snprintf(load_error, sizeof(load_error),
                         "the driver supports CUDA %d.%d; vgpu needs 12.4 or newer", v / 1000,
                         v % 1000 / 10);
                memset(&cu, 0, sizeof(cu));
                dlclose(h);
                return -ENODEV;
        }
        /* The library stays loaded for the life of the process. */
        return 0;
}

int cuda_drv_load(char *err, size_t err_len)
{
        int r;

        pthread_mutex_lock(&load_lock);
        if (load_result == 1)
                load_result = load_locked();
        r = load_result;
        pthread_mutex_unlock(&load_lock);
        if (r < 0 && err && err_len)
                snprintf(err, err_len, "no NVIDIA driver: %s", load_error);
        return r;
}

const char *cuda_errstr(CUresult r)
{
        const char *s = NULL;

        if (cu.get_error_name && cu.get_error_name(r, &s) == CUDA_SUCCESS && s)
                return s;
        return "CUDA_ERROR_UNKNOWN";
}

int cuda_code(CUresult r)
{
        switch (r) {
        case CUDA_SUCCESS:
                return 0;
        case CUDA_ERROR_INVALID_VALUE:
                return -EINVAL;
        case CUDA_ERROR_OUT_OF_MEMORY:
                return -ENOMEM;
        case CUDA_ERROR_INVALID_HANDLE:
        case CUDA_ERROR_INVALID_CONTEXT:
                return -EBADF;
        case CUDA_ERROR_NOT_SUPPORTED:
                return -ENOTSUP;
        case CUDA_ERROR_NO_DEVICE:
        case CUDA_ERROR_INVALID_DEVICE:
                return -ENODEV;
        case CUDA_ERROR_INVALID_IMAGE:
        case CUDA_ERROR_INVALID_SOURCE:
                return PTX_EFORMAT;
        case CUDA_ERROR_NO_BINARY_FOR_GPU:
                return PTX_ENOPTX;
        case CUDA_ERROR_INVALID_PTX:
        case CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
        case CUDA_ERROR_JIT_COMPILATION_DISABLED:
                return PTX_EPARSE;
        case CUDA_ERROR_NOT_FOUND:
                return PTX_ENOTFOUND;
        case CUDA_ERROR_ILLEGAL_ADDRESS:
                return PTX_EILLEGAL_ADDRESS;
        case CUDA_ERROR_MISALIGNED_ADDRESS:
                return PTX_EMISALIGNED;
        case CUDA_ERROR_ASSERT:
        case CUDA_ERROR_LAUNCH_FAILED:
        case CUDA_ERROR_HARDWARE_STACK_ERROR:
        case CUDA_ERROR_INVALID_PC:
        case CUDA_ERROR_INVALID_ADDRESS_SPACE:
                return PTX_ETRAP;
        case CUDA_ERROR_LAUNCH_TIMEOUT:
                return PTX_ETIMEOUT;
        case CUDA_ERROR_ILLEGAL_INSTRUCTION:
                return PTX_EILLEGAL_INSN;
        case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES:
                return PTX_ELAUNCH;
        default:
                return -EIO;
        }
}
