// SPDX-License-Identifier: Apache-2.0
// The NVML loader: dlopen("libnvidia-ml.so.1") once per process (reference-counted), its errors,
// and the listing of the GPUs and their MIG devices, with every NVML status checked. The ABI is
// in nvml_int.h; making GPU instances is nvml_mig_admin.c's, telemetry and Xid events are
// nvml_telemetry.c's.
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/nvml.h"
#include "backend/cuda/nvml_int.h"
#include "common/log.h"

struct nvml_process vgpu_nvml_proc = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* This thread's last failure, for vgpu_nvml_strerror. */
static _Thread_local char nvml_last_err[256];

void vgpu_nvml_set_err(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(nvml_last_err, sizeof(nvml_last_err), fmt, ap);
        va_end(ap);
        vgpu_log(VGPU_LOG_DEBUG, "nvml: %s", nvml_last_err);
}

/* The errno that stands for an NVML status. */
static int nvml_errno(int r)
{
        switch (r) {
        case NVML_ERROR_INVALID_ARGUMENT:
        case NVML_ERROR_ARGUMENT_VERSION_MISMATCH:
                return -EINVAL;
        case NVML_ERROR_NOT_SUPPORTED:
                return -EOPNOTSUPP;
        case NVML_ERROR_NO_PERMISSION:
                return -EPERM;
        case NVML_ERROR_NOT_FOUND:
                return -ENOENT;
        case NVML_ERROR_INSUFFICIENT_SIZE:
                return -ENOBUFS;
        case NVML_ERROR_UNINITIALIZED:
        case NVML_ERROR_DRIVER_NOT_LOADED:
        case NVML_ERROR_LIBRARY_NOT_FOUND:
        case NVML_ERROR_FUNCTION_NOT_FOUND:
        case NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        case NVML_ERROR_GPU_NOT_FOUND:
                return -ENODEV;
        case NVML_ERROR_TIMEOUT:
                return -ETIMEDOUT;
        case NVML_ERROR_IN_USE:
        case NVML_ERROR_NOT_READY:
                return -EBUSY;
        case NVML_ERROR_MEMORY:
        case NVML_ERROR_INSUFFICIENT_RESOURCES:
                return -ENOMEM;
        case NVML_ERROR_NO_DATA:
                return -ENODATA;
        case NVML_ERROR_INVALID_STATE:
                return -EPERM;
        default: /* GPU lost, reset required, IRQ, inforom, unknown: the device is in trouble */
                return -EIO;
        }
}

/* Check an NVML status: 0 on success, else record "call: NVML's words" and return its errno. */
int vgpu_nvml_check(int r, const char *call)
{
        const char *text = NULL;

        if (r == NVML_SUCCESS)
                return 0;
        if (vgpu_nvml_proc.fns.nvmlErrorString)
                text = vgpu_nvml_proc.fns.nvmlErrorString(r);
        if (text)
                vgpu_nvml_set_err("%s: %s", call, text);
        else
                vgpu_nvml_set_err("%s: NVML error %d", call, r);
        return nvml_errno(r);
}

/* 0 when NVML is open; -ENODEV, with the reason recorded, when not. */
int vgpu_nvml_ready(void)
{
        unsigned refs;

        pthread_mutex_lock(&vgpu_nvml_proc.lock);
        refs = vgpu_nvml_proc.refs;
        pthread_mutex_unlock(&vgpu_nvml_proc.lock);
        if (refs == 0) {
                vgpu_nvml_set_err("NVML is not open");
                return -ENODEV;
        }
        return 0;
}

/* Resolve every entry point into *f; -ENODEV with the loader's message when a required one lacks.
 */
static int nvml_load_fns(void *dl, struct nvml_fns *f, char *why, size_t why_len)
{
        int ret = 0;

        /* The cast from dlsym's void * is the one POSIX guarantees for function symbols. */
#define NVML_LOAD(fn, required)                                                                    \
        do {                                                                                       \
                f->fn = (__typeof__(f->fn))dlsym(dl, #fn);                                         \
                if (!f->fn && (required) && ret == 0) {                                            \
                        const char *e = dlerror();                                                 \
                        snprintf(why, why_len, "%s", e ? e : "undefined symbol: " #fn);            \
                        ret = -ENODEV;                                                             \
                }                                                                                  \
        } while (0)
        NVML_LOAD(nvmlInit_v2, true);
        NVML_LOAD(nvmlShutdown, true);
        NVML_LOAD(nvmlErrorString, true);
        NVML_LOAD(nvmlDeviceGetCount_v2, true);
        NVML_LOAD(nvmlDeviceGetHandleByIndex_v2, true);
        NVML_LOAD(nvmlDeviceGetIndex, true);
        NVML_LOAD(nvmlDeviceGetName, true);
        NVML_LOAD(nvmlDeviceGetUUID, true);
        NVML_LOAD(nvmlDeviceGetPciInfo_v3, true);
        NVML_LOAD(nvmlDeviceGetMemoryInfo, true);
        NVML_LOAD(nvmlDeviceGetUtilizationRates, true);
        NVML_LOAD(nvmlDeviceGetTemperature, true);
        NVML_LOAD(nvmlDeviceGetPowerUsage, true);
        NVML_LOAD(nvmlDeviceGetMigMode, false);
        NVML_LOAD(nvmlDeviceGetMaxMigDeviceCount, false);
        NVML_LOAD(nvmlDeviceGetMigDeviceHandleByIndex, false);
        NVML_LOAD(nvmlDeviceGetGpuInstanceId, false);
        NVML_LOAD(nvmlDeviceGetComputeInstanceId, false);
        NVML_LOAD(nvmlDeviceGetAttributes_v2, false);
        NVML_LOAD(nvmlDeviceGetGpuInstanceById, false);
        NVML_LOAD(nvmlGpuInstanceGetInfo, false);
        NVML_LOAD(nvmlDeviceGetGpuInstanceProfileInfo, false);
        NVML_LOAD(nvmlDeviceCreateGpuInstanceWithPlacement, false);
        NVML_LOAD(nvmlDeviceGetGpuInstancePossiblePlacements_v2, false);
        NVML_LOAD(nvmlGpuInstanceDestroy, false);
        NVML_LOAD(nvmlDeviceGetGpuInstances, false);
        NVML_LOAD(nvmlGpuInstanceGetComputeInstanceProfileInfo, false);
        NVML_LOAD(nvmlGpuInstanceCreateComputeInstance, false);
        NVML_LOAD(nvmlGpuInstanceGetComputeInstances, false);
        NVML_LOAD(nvmlComputeInstanceDestroy, false);
        NVML_LOAD(nvmlEventSetCreate, false);
        NVML_LOAD(nvmlEventSetFree, false);
        NVML_LOAD(nvmlDeviceGetSupportedEventTypes, false);
        NVML_LOAD(nvmlDeviceRegisterEvents, false);
        NVML_LOAD(nvmlEventSetWait_v2, false);
#undef NVML_LOAD
        return ret;
}

int vgpu_nvml_open(char *err, size_t err_len)
{
        char why[sizeof(nvml_last_err)];
        const char *path = secure_getenv("VGPU_NVML_LIB");
        struct nvml_fns fns = {0};
        void *dl;
        int r;

        if (!path || !*path)
                path = NVML_DEFAULT_LIB;
        pthread_mutex_lock(&vgpu_nvml_proc.lock);
        if (vgpu_nvml_proc.refs > 0) {
                vgpu_nvml_proc.refs++;
                pthread_mutex_unlock(&vgpu_nvml_proc.lock);
                return 0;
        }
        dlerror();
        dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                const char *e = dlerror();

                snprintf(why, sizeof(why), "%s", e ? e : path);
                goto err_dlopen;
        }
        if (nvml_load_fns(dl, &fns, why, sizeof(why)) < 0)
                goto err_syms;
        r = fns.nvmlInit_v2();
        if (r != NVML_SUCCESS) {
                const char *text = fns.nvmlErrorString(r);

                snprintf(why, sizeof(why), "nvmlInit_v2: %s", text ? text : "NVML error");
                goto err_syms;
        }
        vgpu_nvml_proc.dl = dl;
        vgpu_nvml_proc.fns = fns;
        vgpu_nvml_proc.refs = 1;
        pthread_mutex_unlock(&vgpu_nvml_proc.lock);
        vgpu_log(VGPU_LOG_DEBUG, "nvml: loaded %s", path);
        return 0;

err_syms:
        dlclose(dl);
err_dlopen:
        pthread_mutex_unlock(&vgpu_nvml_proc.lock);
        vgpu_nvml_set_err("%s", why);
        if (err && err_len > 0)
                snprintf(err, err_len, "%s", why);
        return -ENODEV;
}

void vgpu_nvml_close(void)
{
        pthread_mutex_lock(&vgpu_nvml_proc.lock);
        if (vgpu_nvml_proc.refs == 0 || --vgpu_nvml_proc.refs > 0) {
                pthread_mutex_unlock(&vgpu_nvml_proc.lock);
                return;
        }
        /* Nothing to do about a failure here but say so: the process is letting NVML go. */
        if (vgpu_nvml_proc.events)
                NVML_CALL(nvmlEventSetFree, vgpu_nvml_proc.events);
        NVML_CALL(nvmlShutdown);
        dlclose(vgpu_nvml_proc.dl);
        vgpu_nvml_proc.dl = NULL;
        vgpu_nvml_proc.events = NULL;
        vgpu_nvml_proc.n_watched = 0;
        memset(&vgpu_nvml_proc.fns, 0, sizeof(vgpu_nvml_proc.fns));
        pthread_mutex_unlock(&vgpu_nvml_proc.lock);
}

/* A string NVML wrote into buf, NUL-terminated whatever it did. */
static int nvml_get_string(int (*fn)(struct nvml_device *, char *, unsigned),
                           struct nvml_device *dev, char *buf, size_t len, const char *call)
{
        int ret = vgpu_nvml_check(fn(dev, buf, (unsigned)len), call);

        buf[len - 1] = '\0';
        return ret;
}

/* Where m's GPU instance sits on parent, and its profile; left unplaced when NVML cannot say. */
static int nvml_mig_place(struct nvml_device *parent, struct vgpu_nvml_mig *m)
{
        struct nvml_gpu_instance *gi;
        struct nvml_gi_info info;
        int r;

        if (!parent || !vgpu_nvml_proc.fns.nvmlDeviceGetGpuInstanceById ||
            !vgpu_nvml_proc.fns.nvmlGpuInstanceGetInfo)
                return 0;
        r = vgpu_nvml_proc.fns.nvmlDeviceGetGpuInstanceById(parent, m->gi_id, &gi);
        if (r == NVML_ERROR_NOT_SUPPORTED || r == NVML_ERROR_NO_PERMISSION)
                return 0;
        r = vgpu_nvml_check(r, "nvmlDeviceGetGpuInstanceById");
        if (r == 0)
                r = NVML_CALL(nvmlGpuInstanceGetInfo, gi, &info);
        if (r < 0)
                return r;
        m->placed = true;
        m->gi_profile_id = info.profile_id;
        m->start = info.placement.start;
        m->size = info.placement.size;
        return 0;
}

/* Fill *m from one MIG device handle of GPU parent (NULL: placement not asked). */
static int nvml_mig_fill(struct nvml_device *parent, struct nvml_device *dev,
                         struct vgpu_nvml_mig *m)
{
        struct nvml_memory mem;
        struct nvml_device_attributes attr;
        int ret, r;

        ret = NVML_CALL(nvmlDeviceGetGpuInstanceId, dev, &m->gi_id);
        if (ret == 0)
                ret = NVML_CALL(nvmlDeviceGetComputeInstanceId, dev, &m->ci_id);
        if (ret == 0)
                ret = nvml_get_string(vgpu_nvml_proc.fns.nvmlDeviceGetUUID, dev, m->uuid,
                                      sizeof(m->uuid), "nvmlDeviceGetUUID");
        if (ret == 0)
                ret = NVML_CALL(nvmlDeviceGetMemoryInfo, dev, &mem);
        if (ret < 0)
                return ret;
        m->mem_total = mem.total;
        ret = nvml_mig_place(parent, m);
        if (ret < 0 || !vgpu_nvml_proc.fns.nvmlDeviceGetAttributes_v2)
                return ret;
        /* The slice counts are a nicety; a driver that will not tell leaves them 0. */
        r = vgpu_nvml_proc.fns.nvmlDeviceGetAttributes_v2(dev, &attr);
        if (r == NVML_ERROR_NOT_SUPPORTED || r == NVML_ERROR_NO_PERMISSION)
                return 0;
        ret = vgpu_nvml_check(r, "nvmlDeviceGetAttributes_v2");
        if (ret < 0)
                return ret;
        m->profile_slices = attr.gpu_instance_slice_count;
        m->ci_slices = attr.compute_instance_slice_count;
        m->sm_count = attr.multiprocessor_count;
        return 0;
}

/* The MIG devices of a GPU in MIG mode, in NVML's index order. */
int vgpu_nvml_migs_fill(struct nvml_device *dev, struct vgpu_nvml_gpu *g)
{
        unsigned max;
        int ret;

        if (!vgpu_nvml_proc.fns.nvmlDeviceGetMaxMigDeviceCount ||
            !vgpu_nvml_proc.fns.nvmlDeviceGetMigDeviceHandleByIndex ||
            !vgpu_nvml_proc.fns.nvmlDeviceGetGpuInstanceId ||
            !vgpu_nvml_proc.fns.nvmlDeviceGetComputeInstanceId)
                return 0;
        ret = NVML_CALL(nvmlDeviceGetMaxMigDeviceCount, dev, &max);
        if (ret < 0)
                return ret;
        for (unsigned i = 0; i < max; i++) {
                struct nvml_device *mig;
                int r = vgpu_nvml_proc.fns.nvmlDeviceGetMigDeviceHandleByIndex(dev, i, &mig);

                /* A slot with no compute instance in it: the indices are not dense. */
                if (r == NVML_ERROR_NOT_FOUND)
                        continue;
                ret = vgpu_nvml_check(r, "nvmlDeviceGetMigDeviceHandleByIndex");
                if (ret < 0)
                        return ret;
                if (g->n_mig == VGPU_NVML_MAX_MIG) {
                        vgpu_log(VGPU_LOG_DEBUG, "nvml: GPU %u: more than %d MIG devices", g->index,
                                 VGPU_NVML_MAX_MIG);
                        break;
                }
                ret = nvml_mig_fill(dev, mig, &g->mig[g->n_mig]);
                if (ret < 0)
                        return ret;
                g->n_mig++;
        }
        return 0;
}

/*
 * The GPU instances of a GPU in MIG mode, those without compute instances too: each profile's
 * (nvmlDeviceGetGpuInstances), with its placement. An NVML that cannot list them leaves
 * gi_listed false.
 */
static int nvml_gis_fill(struct nvml_device *dev, struct vgpu_nvml_gpu *g)
{
        if (!vgpu_nvml_proc.fns.nvmlDeviceGetGpuInstanceProfileInfo ||
            !vgpu_nvml_proc.fns.nvmlDeviceGetGpuInstances ||
            !vgpu_nvml_proc.fns.nvmlGpuInstanceGetInfo)
                return 0;
        for (unsigned p = 0; p < NVML_GI_PROFILE_COUNT; p++) {
                /* NVML writes up to the profile's instance count, whatever n says */
                struct nvml_gpu_instance *gis[NVML_MAX_LISTED];
                struct nvml_gi_profile_info pi;
                unsigned n = NVML_MAX_LISTED;
                int ret, r;

                if (vgpu_nvml_proc.fns.nvmlDeviceGetGpuInstanceProfileInfo(dev, p, &pi) !=
                    NVML_SUCCESS)
                        continue; /* a profile index this GPU does not have */
                if (pi.instance_count > NVML_MAX_LISTED) {
                        vgpu_nvml_set_err(
                                "GPU instance profile %u: %u instances, more than vgpu lists",
                                pi.id, pi.instance_count);
                        return -E2BIG;
                }
                r = vgpu_nvml_proc.fns.nvmlDeviceGetGpuInstances(dev, pi.id, gis, &n);
                if (r == NVML_ERROR_NO_PERMISSION || r == NVML_ERROR_NOT_SUPPORTED) {
                        /* a privileged query: an unprivileged caller knows only MIG devices */
                        g->n_gi = 0;
                        return 0;
                }
                ret = vgpu_nvml_check(r, "nvmlDeviceGetGpuInstances");
                for (unsigned i = 0; ret == 0 && i < n && i < VGPU_NVML_MAX_MIG; i++) {
                        struct nvml_gi_info info;

                        ret = NVML_CALL(nvmlGpuInstanceGetInfo, gis[i], &info);
                        if (ret == 0 && g->n_gi < VGPU_NVML_MAX_MIG)
                                g->gi[g->n_gi++] = (struct vgpu_nvml_gi){
                                        .id = info.id,
                                        .profile_id = info.profile_id,
                                        .start = info.placement.start,
                                        .size = info.placement.size,
                                };
                }
                if (ret < 0)
                        return ret;
        }
        g->gi_listed = true;
        return 0;
}

static int nvml_gpu_fill(unsigned index, struct vgpu_nvml_gpu *g)
{
        struct nvml_device *dev;
        struct nvml_pci_info pci;
        struct nvml_memory mem;
        unsigned cur, pending;
        int ret, r;

        memset(g, 0, sizeof(*g));
        g->index = index;
        ret = NVML_CALL(nvmlDeviceGetHandleByIndex_v2, index, &dev);
        if (ret == 0)
                ret = nvml_get_string(vgpu_nvml_proc.fns.nvmlDeviceGetName, dev, g->name,
                                      sizeof(g->name), "nvmlDeviceGetName");
        if (ret == 0)
                ret = nvml_get_string(vgpu_nvml_proc.fns.nvmlDeviceGetUUID, dev, g->uuid,
                                      sizeof(g->uuid), "nvmlDeviceGetUUID");
        if (ret == 0)
                ret = NVML_CALL(nvmlDeviceGetPciInfo_v3, dev, &pci);
        if (ret == 0) {
                /* a GPU in MIG mode tells its memory to privileged callers only: unknown (0) */
                r = vgpu_nvml_proc.fns.nvmlDeviceGetMemoryInfo(dev, &mem);
                if (r == NVML_ERROR_NO_PERMISSION)
                        mem = (struct nvml_memory){0};
                else
                        ret = vgpu_nvml_check(r, "nvmlDeviceGetMemoryInfo");
        }
        if (ret < 0)
                return ret;
        g->pci_device_id = pci.pci_device_id >> 16;
        pci.bus_id[sizeof(pci.bus_id) - 1] = '\0';
        snprintf(g->bus_id, sizeof(g->bus_id), "%s", pci.bus_id);
        g->mem_total = mem.total;

        if (!vgpu_nvml_proc.fns.nvmlDeviceGetMigMode)
                return 0;
        r = vgpu_nvml_proc.fns.nvmlDeviceGetMigMode(dev, &cur, &pending);
        if (r == NVML_ERROR_NOT_SUPPORTED) /* a GPU without MIG */
                return 0;
        ret = vgpu_nvml_check(r, "nvmlDeviceGetMigMode");
        if (ret < 0)
                return ret;
        g->mig_enabled = cur == NVML_DEVICE_MIG_ENABLE;
        if (!g->mig_enabled)
                return 0;
        ret = vgpu_nvml_migs_fill(dev, g);
        return ret < 0 ? ret : nvml_gis_fill(dev, g);
}

int vgpu_nvml_gpus(struct vgpu_nvml_gpu *ret, size_t max, size_t *ret_n)
{
        struct vgpu_nvml_gpu *gpus = NULL;
        unsigned count;
        size_t n;
        int err;

        err = vgpu_nvml_ready();
        if (err < 0)
                return err;
        err = NVML_CALL(nvmlDeviceGetCount_v2, &count);
        if (err < 0)
                return err;
        n = count < max ? count : max;
        /* Built aside so that a GPU failing halfway leaves the caller's array as it was. */
        if (n > 0) {
                gpus = calloc(n, sizeof(*gpus));
                if (!gpus) {
                        vgpu_nvml_set_err("out of memory");
                        return -ENOMEM;
                }
        }
        /*
         * A GPU this process may not open (NVML counts it), or that fails (lost, in a bad
         * state), is left out: the others keep their NVML indices (index). vgpud then finds
         * it missing.
         */
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                struct nvml_device *dev;

                if (vgpu_nvml_proc.fns.nvmlDeviceGetHandleByIndex_v2((unsigned)i, &dev) ==
                    NVML_ERROR_NO_PERMISSION)
                        continue;
                err = nvml_gpu_fill((unsigned)i, &gpus[k]);
                if (err == -ENOMEM) {
                        free(gpus);
                        return err;
                }
                if (err < 0) {
                        vgpu_log(VGPU_LOG_WARN, "NVML: GPU %zu left out: %s", i, nvml_last_err);
                        continue;
                }
                k++;
        }
        if (k > 0)
                memcpy(ret, gpus, k * sizeof(*gpus));
        free(gpus);
        *ret_n = k;
        return 0;
}

const char *vgpu_nvml_strerror(void)
{
        return nvml_last_err;
}
