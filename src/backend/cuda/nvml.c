// SPDX-License-Identifier: Apache-2.0
// The NVML loader: dlopen("libnvidia-ml.so.1") once per process (reference-counted), the NVML ABI
// vgpu uses declared here from NVIDIA's API reference rather than its header, and the queries the
// cuda backend needs (GPUs, MIG devices, telemetry, Xid events) with every NVML status checked.
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/nvml.h"
#include "common/log.h"

#define NVML_DEFAULT_LIB "libnvidia-ml.so.1"
#define NVML_MAX_WATCHED 64 /* GPUs one process may watch for Xid events */

/*
 * The NVML ABI, as the NVML API reference gives it. nvmlReturn_t and the other enums are C enums,
 * passed as int; nvmlDevice_t and nvmlEventSet_t are opaque pointers.
 */
enum {
        NVML_SUCCESS = 0,
        NVML_ERROR_UNINITIALIZED = 1,
        NVML_ERROR_INVALID_ARGUMENT = 2,
        NVML_ERROR_NOT_SUPPORTED = 3,
        NVML_ERROR_NO_PERMISSION = 4,
        NVML_ERROR_ALREADY_INITIALIZED = 5,
        NVML_ERROR_NOT_FOUND = 6,
        NVML_ERROR_INSUFFICIENT_SIZE = 7,
        NVML_ERROR_INSUFFICIENT_POWER = 8,
        NVML_ERROR_DRIVER_NOT_LOADED = 9,
        NVML_ERROR_TIMEOUT = 10,
        NVML_ERROR_IRQ_ISSUE = 11,
        NVML_ERROR_LIBRARY_NOT_FOUND = 12,
        NVML_ERROR_FUNCTION_NOT_FOUND = 13,
        NVML_ERROR_CORRUPTED_INFOROM = 14,
        NVML_ERROR_GPU_IS_LOST = 15,
        NVML_ERROR_RESET_REQUIRED = 16,
        NVML_ERROR_OPERATING_SYSTEM = 17,
        NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
        NVML_ERROR_IN_USE = 19,
        NVML_ERROR_MEMORY = 20,
        NVML_ERROR_NO_DATA = 21,
        NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
        NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
        NVML_ERROR_NOT_READY = 27,
        NVML_ERROR_GPU_NOT_FOUND = 28,
        NVML_ERROR_INVALID_STATE = 29,
};

#define NVML_TEMPERATURE_GPU         0                     /* nvmlTemperatureSensors_t */
#define NVML_DEVICE_MIG_ENABLE       1                     /* nvmlDeviceGetMigMode's currentMode */
#define NVML_EVENT_TYPE_XID_CRITICAL 0x0000000000000008ULL /* nvmlEventTypeXidCriticalError */
#define NVML_DEVICE_NAME_V2_SIZE     96
#define NVML_DEVICE_UUID_V2_SIZE     96
#define NVML_PCI_BUS_ID_SIZE         32
#define NVML_PCI_BUS_ID_LEGACY_SIZE  16

struct nvml_device;    /* nvmlDevice_t points at one */
struct nvml_event_set; /* nvmlEventSet_t points at one */

struct nvml_memory { /* nvmlMemory_t */
        unsigned long long total, free, used;
};

struct nvml_utilization { /* nvmlUtilization_t */
        unsigned gpu, memory;
};

struct nvml_pci_info { /* nvmlPciInfo_t, as nvmlDeviceGetPciInfo_v3 fills it */
        char bus_id_legacy[NVML_PCI_BUS_ID_LEGACY_SIZE];
        unsigned domain, bus, device;
        unsigned pci_device_id; /* device id << 16 | vendor id */
        unsigned pci_subsystem_id;
        char bus_id[NVML_PCI_BUS_ID_SIZE];
};

struct nvml_device_attributes { /* nvmlDeviceAttributes_t */
        unsigned multiprocessor_count;
        unsigned shared_copy_engine_count, shared_decoder_count, shared_encoder_count;
        unsigned shared_jpeg_count, shared_ofa_count;
        unsigned gpu_instance_slice_count, compute_instance_slice_count;
        unsigned long long memory_size_mb;
};

/* MIG management (nvmlGpuInstance_t and nvmlComputeInstance_t point at these) */
struct nvml_gpu_instance;
struct nvml_compute_instance;

struct nvml_gi_placement { /* nvmlGpuInstancePlacement_t */
        unsigned start, size;
};

struct nvml_gi_info { /* nvmlGpuInstanceInfo_t */
        struct nvml_device *device;
        unsigned id, profile_id;
        struct nvml_gi_placement placement;
};

struct nvml_gi_profile_info { /* nvmlGpuInstanceProfileInfo_t (the unversioned one) */
        unsigned id, is_p2p_supported, slice_count, instance_count, multiprocessor_count;
        unsigned copy_engine_count, decoder_count, encoder_count, jpeg_count, ofa_count;
        unsigned long long memory_size_mb;
};

struct nvml_ci_profile_info { /* nvmlComputeInstanceProfileInfo_t (the unversioned one) */
        unsigned id, slice_count, instance_count, multiprocessor_count;
        unsigned shared_copy_engine_count, shared_decoder_count, shared_encoder_count;
        unsigned shared_jpeg_count, shared_ofa_count;
};

/* Profile indices tried (0 .. this - 1): NVML has fewer, and refuses those it has not. */
#define NVML_GI_PROFILE_COUNT         24
#define NVML_CI_PROFILE_COUNT         8
#define NVML_CI_ENGINE_PROFILE_SHARED 0
#define NVML_GI_MAX_COMPUTE_INSTANCES 8
#define NVML_MAX_LISTED               32 /* GPU instances of one profile NVML may list */
#define NVML_GI_MAX_PLACEMENTS        16

struct nvml_event_data { /* nvmlEventData_t */
        struct nvml_device *device;
        unsigned long long event_type;
        unsigned long long event_data; /* the Xid, for an Xid event */
        unsigned gpu_instance_id, compute_instance_id;
};

/*
 * The entry points, typed, named after the symbols they are loaded from so that a log names the
 * NVML call. Those marked optional are absent from older drivers; code checks them for NULL.
 */
struct nvml_fns {
        int (*nvmlInit_v2)(void);
        int (*nvmlShutdown)(void);
        const char *(*nvmlErrorString)(int result);
        int (*nvmlDeviceGetCount_v2)(unsigned *count);
        int (*nvmlDeviceGetHandleByIndex_v2)(unsigned index, struct nvml_device **dev);
        int (*nvmlDeviceGetIndex)(struct nvml_device *dev, unsigned *index);
        int (*nvmlDeviceGetName)(struct nvml_device *dev, char *name, unsigned len);
        int (*nvmlDeviceGetUUID)(struct nvml_device *dev, char *uuid, unsigned len);
        int (*nvmlDeviceGetPciInfo_v3)(struct nvml_device *dev, struct nvml_pci_info *pci);
        int (*nvmlDeviceGetMemoryInfo)(struct nvml_device *dev, struct nvml_memory *mem);
        int (*nvmlDeviceGetUtilizationRates)(struct nvml_device *dev, struct nvml_utilization *u);
        int (*nvmlDeviceGetTemperature)(struct nvml_device *dev, int sensor, unsigned *temp);
        int (*nvmlDeviceGetPowerUsage)(struct nvml_device *dev, unsigned *mw);
        /* optional: MIG (r450 and later) */
        int (*nvmlDeviceGetMigMode)(struct nvml_device *dev, unsigned *current, unsigned *pending);
        int (*nvmlDeviceGetMaxMigDeviceCount)(struct nvml_device *dev, unsigned *count);
        int (*nvmlDeviceGetMigDeviceHandleByIndex)(struct nvml_device *dev, unsigned index,
                                                   struct nvml_device **mig);
        int (*nvmlDeviceGetGpuInstanceId)(struct nvml_device *mig, unsigned *id);
        int (*nvmlDeviceGetComputeInstanceId)(struct nvml_device *mig, unsigned *id);
        int (*nvmlDeviceGetAttributes_v2)(struct nvml_device *dev,
                                          struct nvml_device_attributes *attr);
        /* optional: GPU instances, read (placements) and made (vgpud --mig-admin) */
        int (*nvmlDeviceGetGpuInstanceById)(struct nvml_device *dev, unsigned id,
                                            struct nvml_gpu_instance **gi);
        int (*nvmlGpuInstanceGetInfo)(struct nvml_gpu_instance *gi, struct nvml_gi_info *info);
        int (*nvmlDeviceGetGpuInstanceProfileInfo)(struct nvml_device *dev, unsigned profile,
                                                   struct nvml_gi_profile_info *info);
        int (*nvmlDeviceCreateGpuInstanceWithPlacement)(struct nvml_device *dev,
                                                        unsigned profile_id,
                                                        const struct nvml_gi_placement *placement,
                                                        struct nvml_gpu_instance **gi);
        int (*nvmlDeviceGetGpuInstancePossiblePlacements_v2)(struct nvml_device *dev,
                                                             unsigned profile_id,
                                                             struct nvml_gi_placement *placements,
                                                             unsigned *count);
        int (*nvmlGpuInstanceDestroy)(struct nvml_gpu_instance *gi);
        int (*nvmlDeviceGetGpuInstances)(struct nvml_device *dev, unsigned profile_id,
                                         struct nvml_gpu_instance **gis, unsigned *count);
        int (*nvmlGpuInstanceGetComputeInstanceProfileInfo)(struct nvml_gpu_instance *gi,
                                                            unsigned profile, unsigned eng_profile,
                                                            struct nvml_ci_profile_info *info);
        int (*nvmlGpuInstanceCreateComputeInstance)(struct nvml_gpu_instance *gi,
                                                    unsigned profile_id,
                                                    struct nvml_compute_instance **ci);
        int (*nvmlGpuInstanceGetComputeInstances)(struct nvml_gpu_instance *gi, unsigned profile_id,
                                                  struct nvml_compute_instance **cis,
                                                  unsigned *count);
        int (*nvmlComputeInstanceDestroy)(struct nvml_compute_instance *ci);
        /* optional: events */
        int (*nvmlEventSetCreate)(struct nvml_event_set **set);
        int (*nvmlEventSetFree)(struct nvml_event_set *set);
        int (*nvmlDeviceGetSupportedEventTypes)(struct nvml_device *dev, unsigned long long *types);
        int (*nvmlDeviceRegisterEvents)(struct nvml_device *dev, unsigned long long types,
                                        struct nvml_event_set *set);
        int (*nvmlEventSetWait_v2)(struct nvml_event_set *set, struct nvml_event_data *data,
                                   unsigned timeout_ms);
};

/*
 * The process's one NVML. lock guards refs, dl, fns' writes, events and watched; fns is written
 * only by the first open and the last close, so other calls read it without the lock.
 */
static struct {
        pthread_mutex_t lock;
        unsigned refs;
        void *dl;
        struct nvml_fns fns;
        struct nvml_event_set *events; /* created by the first xid_watch */
        struct {
                struct nvml_device *dev;
                unsigned index;
        } watched[NVML_MAX_WATCHED];
        unsigned n_watched;
} nvml = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* This thread's last failure, for vgpu_nvml_strerror. */
static _Thread_local char nvml_last_err[256];

static void nvml_set_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void nvml_set_err(const char *fmt, ...)
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
static int nvml_check(int r, const char *call)
{
        const char *text = NULL;

        if (r == NVML_SUCCESS)
                return 0;
        if (nvml.fns.nvmlErrorString)
                text = nvml.fns.nvmlErrorString(r);
        if (text)
                nvml_set_err("%s: %s", call, text);
        else
                nvml_set_err("%s: NVML error %d", call, r);
        return nvml_errno(r);
}

/* NVML_CALL(fn, args...) - call the loaded NVML function fn and check what it returns. */
#define NVML_CALL(fn, ...) nvml_check(nvml.fns.fn(__VA_ARGS__), #fn)

/* 0 when NVML is open; -ENODEV, with the reason recorded, when not. */
static int nvml_ready(void)
{
        unsigned refs;

        pthread_mutex_lock(&nvml.lock);
        refs = nvml.refs;
        pthread_mutex_unlock(&nvml.lock);
        if (refs == 0) {
                nvml_set_err("NVML is not open");
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
        pthread_mutex_lock(&nvml.lock);
        if (nvml.refs > 0) {
                nvml.refs++;
                pthread_mutex_unlock(&nvml.lock);
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
        nvml.dl = dl;
        nvml.fns = fns;
        nvml.refs = 1;
        pthread_mutex_unlock(&nvml.lock);
        vgpu_log(VGPU_LOG_DEBUG, "nvml: loaded %s", path);
        return 0;

err_syms:
        dlclose(dl);
err_dlopen:
        pthread_mutex_unlock(&nvml.lock);
        nvml_set_err("%s", why);
        if (err && err_len > 0)
                snprintf(err, err_len, "%s", why);
        return -ENODEV;
}

void vgpu_nvml_close(void)
{
        pthread_mutex_lock(&nvml.lock);
        if (nvml.refs == 0 || --nvml.refs > 0) {
                pthread_mutex_unlock(&nvml.lock);
                return;
        }
        /* Nothing to do about a failure here but say so: the process is letting NVML go. */
        if (nvml.events)
                NVML_CALL(nvmlEventSetFree, nvml.events);
        NVML_CALL(nvmlShutdown);
        dlclose(nvml.dl);
        nvml.dl = NULL;
        nvml.events = NULL;
        nvml.n_watched = 0;
        memset(&nvml.fns, 0, sizeof(nvml.fns));
        pthread_mutex_unlock(&nvml.lock);
}

/* A string NVML wrote into buf, NUL-terminated whatever it did. */
static int nvml_get_string(int (*fn)(struct nvml_device *, char *, unsigned),
                           struct nvml_device *dev, char *buf, size_t len, const char *call)
{
        int ret = nvml_check(fn(dev, buf, (unsigned)len), call);

        buf[len - 1] = '\0';
        return ret;
}

/* Where m's GPU instance sits on parent, and its profile; left unplaced when NVML cannot say. */
static int nvml_mig_place(struct nvml_device *parent, struct vgpu_nvml_mig *m)
{
        struct nvml_gpu_instance *gi;
        struct nvml_gi_info info;
        int r;

        if (!parent || !nvml.fns.nvmlDeviceGetGpuInstanceById || !nvml.fns.nvmlGpuInstanceGetInfo)
                return 0;
        r = nvml.fns.nvmlDeviceGetGpuInstanceById(parent, m->gi_id, &gi);
        if (r == NVML_ERROR_NOT_SUPPORTED || r == NVML_ERROR_NO_PERMISSION)
                return 0;
        r = nvml_check(r, "nvmlDeviceGetGpuInstanceById");
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
                ret = nvml_get_string(nvml.fns.nvmlDeviceGetUUID, dev, m->uuid, sizeof(m->uuid),
                                      "nvmlDeviceGetUUID");
        if (ret == 0)
                ret = NVML_CALL(nvmlDeviceGetMemoryInfo, dev, &mem);
        if (ret < 0)
                return ret;
        m->mem_total = mem.total;
        ret = nvml_mig_place(parent, m);
        if (ret < 0 || !nvml.fns.nvmlDeviceGetAttributes_v2)
                return ret;
        /* The slice counts are a nicety; a driver that will not tell leaves them 0. */
        r = nvml.fns.nvmlDeviceGetAttributes_v2(dev, &attr);
        if (r == NVML_ERROR_NOT_SUPPORTED || r == NVML_ERROR_NO_PERMISSION)
                return 0;
        ret = nvml_check(r, "nvmlDeviceGetAttributes_v2");
        if (ret < 0)
                return ret;
        m->profile_slices = attr.gpu_instance_slice_count;
        m->ci_slices = attr.compute_instance_slice_count;
        m->sm_count = attr.multiprocessor_count;
        return 0;
}

/* The MIG devices of a GPU in MIG mode, in NVML's index order. */
static int nvml_migs_fill(struct nvml_device *dev, struct vgpu_nvml_gpu *g)
{
        unsigned max;
        int ret;

        if (!nvml.fns.nvmlDeviceGetMaxMigDeviceCount ||
            !nvml.fns.nvmlDeviceGetMigDeviceHandleByIndex || !nvml.fns.nvmlDeviceGetGpuInstanceId ||
            !nvml.fns.nvmlDeviceGetComputeInstanceId)
                return 0;
        ret = NVML_CALL(nvmlDeviceGetMaxMigDeviceCount, dev, &max);
        if (ret < 0)
                return ret;
        for (unsigned i = 0; i < max; i++) {
                struct nvml_device *mig;
                int r = nvml.fns.nvmlDeviceGetMigDeviceHandleByIndex(dev, i, &mig);

                /* A slot with no compute instance in it: the indices are not dense. */
                if (r == NVML_ERROR_NOT_FOUND)
                        continue;
                ret = nvml_check(r, "nvmlDeviceGetMigDeviceHandleByIndex");
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
        if (!nvml.fns.nvmlDeviceGetGpuInstanceProfileInfo || !nvml.fns.nvmlDeviceGetGpuInstances ||
            !nvml.fns.nvmlGpuInstanceGetInfo)
                return 0;
        for (unsigned p = 0; p < NVML_GI_PROFILE_COUNT; p++) {
                /* NVML writes up to the profile's instance count, whatever n says */
                struct nvml_gpu_instance *gis[NVML_MAX_LISTED];
                struct nvml_gi_profile_info pi;
                unsigned n = NVML_MAX_LISTED;
                int ret, r;

                if (nvml.fns.nvmlDeviceGetGpuInstanceProfileInfo(dev, p, &pi) != NVML_SUCCESS)
                        continue; /* a profile index this GPU does not have */
                if (pi.instance_count > NVML_MAX_LISTED) {
                        nvml_set_err("GPU instance profile %u: %u instances, more than vgpu lists",
                                     pi.id, pi.instance_count);
                        return -E2BIG;
                }
                r = nvml.fns.nvmlDeviceGetGpuInstances(dev, pi.id, gis, &n);
                if (r == NVML_ERROR_NO_PERMISSION || r == NVML_ERROR_NOT_SUPPORTED) {
                        /* a privileged query: an unprivileged caller knows only MIG devices */
                        g->n_gi = 0;
                        return 0;
                }
                ret = nvml_check(r, "nvmlDeviceGetGpuInstances");
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
                ret = nvml_get_string(nvml.fns.nvmlDeviceGetName, dev, g->name, sizeof(g->name),
                                      "nvmlDeviceGetName");
        if (ret == 0)
                ret = nvml_get_string(nvml.fns.nvmlDeviceGetUUID, dev, g->uuid, sizeof(g->uuid),
                                      "nvmlDeviceGetUUID");
        if (ret == 0)
                ret = NVML_CALL(nvmlDeviceGetPciInfo_v3, dev, &pci);
        if (ret == 0) {
                /* a GPU in MIG mode tells its memory to privileged callers only: unknown (0) */
                r = nvml.fns.nvmlDeviceGetMemoryInfo(dev, &mem);
                if (r == NVML_ERROR_NO_PERMISSION)
                        mem = (struct nvml_memory){0};
                else
                        ret = nvml_check(r, "nvmlDeviceGetMemoryInfo");
        }
        if (ret < 0)
                return ret;
        g->pci_device_id = pci.pci_device_id >> 16;
        pci.bus_id[sizeof(pci.bus_id) - 1] = '\0';
        snprintf(g->bus_id, sizeof(g->bus_id), "%s", pci.bus_id);
        g->mem_total = mem.total;

        if (!nvml.fns.nvmlDeviceGetMigMode)
                return 0;
        r = nvml.fns.nvmlDeviceGetMigMode(dev, &cur, &pending);
        if (r == NVML_ERROR_NOT_SUPPORTED) /* a GPU without MIG */
                return 0;
        ret = nvml_check(r, "nvmlDeviceGetMigMode");
        if (ret < 0)
                return ret;
        g->mig_enabled = cur == NVML_DEVICE_MIG_ENABLE;
        if (!g->mig_enabled)
                return 0;
        ret = nvml_migs_fill(dev, g);
        return ret < 0 ? ret : nvml_gis_fill(dev, g);
}

int vgpu_nvml_gpus(struct vgpu_nvml_gpu *ret, size_t max, size_t *ret_n)
{
        struct vgpu_nvml_gpu *gpus = NULL;
        unsigned count;
        size_t n;
        int err;

        err = nvml_ready();
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
                        nvml_set_err("out of memory");
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

                if (nvml.fns.nvmlDeviceGetHandleByIndex_v2((unsigned)i, &dev) ==
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

/* 0 when this NVML can make and destroy instances; -EOPNOTSUPP, recorded, when not. */
static int nvml_mig_admin_ready(void)
{
        if (!nvml.fns.nvmlDeviceGetGpuInstanceById || !nvml.fns.nvmlGpuInstanceGetInfo ||
            !nvml.fns.nvmlDeviceGetGpuInstanceProfileInfo ||
            !nvml.fns.nvmlDeviceCreateGpuInstanceWithPlacement ||
            !nvml.fns.nvmlDeviceGetGpuInstancePossiblePlacements_v2 ||
            !nvml.fns.nvmlGpuInstanceDestroy ||
            !nvml.fns.nvmlGpuInstanceGetComputeInstanceProfileInfo ||
            !nvml.fns.nvmlGpuInstanceCreateComputeInstance ||
            !nvml.fns.nvmlGpuInstanceGetComputeInstances || !nvml.fns.nvmlComputeInstanceDestroy ||
            !nvml.fns.nvmlDeviceGetMaxMigDeviceCount ||
            !nvml.fns.nvmlDeviceGetMigDeviceHandleByIndex) {
                nvml_set_err("this NVML cannot create or destroy MIG instances");
                return -EOPNOTSUPP;
        }
        return 0;
}

/* GPU index, for a MIG change: NVML open and able to make and destroy instances. */
static int nvml_admin_device(unsigned index, struct nvml_device **ret)
{
        int err = nvml_ready();

        if (err == 0)
                err = nvml_mig_admin_ready();
        return err < 0 ? err : NVML_CALL(nvmlDeviceGetHandleByIndex_v2, index, ret);
}

/* The slices of GPU instance profile profile_id on dev (from its profile table). */
static int nvml_gi_profile_slices(struct nvml_device *dev, unsigned profile_id,
                                  unsigned *ret_slices)
{
        for (unsigned p = 0; p < NVML_GI_PROFILE_COUNT; p++) {
                struct nvml_gi_profile_info info;

                if (nvml.fns.nvmlDeviceGetGpuInstanceProfileInfo(dev, p, &info) != NVML_SUCCESS)
                        continue; /* a profile index this GPU does not have */
                if (info.id == profile_id) {
                        *ret_slices = info.slice_count;
                        return 0;
                }
        }
        nvml_set_err("GPU instance profile %u: not offered by this GPU", profile_id);
        return -EINVAL;
}

/* The placement of profile profile_id that starts at where->start: its size too. */
static int nvml_gi_placement(struct nvml_device *dev, unsigned profile_id,
                             struct nvml_gi_placement *where)
{
        struct nvml_gi_placement all[NVML_GI_MAX_PLACEMENTS];
        unsigned n = NVML_GI_MAX_PLACEMENTS;
        int err =
                NVML_CALL(nvmlDeviceGetGpuInstancePossiblePlacements_v2, dev, profile_id, all, &n);

        for (unsigned i = 0; err == 0 && i < n && i < NVML_GI_MAX_PLACEMENTS; i++) {
                if (all[i].start == where->start) {
                        where->size = all[i].size;
                        return 0;
                }
        }
        if (err == 0) {
                nvml_set_err("GPU instance profile %u cannot start at memory slice %u", profile_id,
                             where->start);
                err = -EINVAL;
        }
        return err;
}

/* A compute instance on gi that takes all of its slices slices. */
static int nvml_ci_create_whole(struct nvml_gpu_instance *gi, unsigned slices)
{
        struct nvml_compute_instance *ci;

        for (unsigned p = 0; p < NVML_CI_PROFILE_COUNT; p++) {
                struct nvml_ci_profile_info info;

                if (nvml.fns.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                            gi, p, NVML_CI_ENGINE_PROFILE_SHARED, &info) != NVML_SUCCESS ||
                    info.slice_count != slices)
                        continue;
                return NVML_CALL(nvmlGpuInstanceCreateComputeInstance, gi, info.id, &ci);
        }
        nvml_set_err("no compute instance profile spans a GPU instance of %u slices", slices);
        return -EINVAL;
}

int vgpu_nvml_gi_create(unsigned index, unsigned profile_id, unsigned start,
                        struct vgpu_nvml_mig *ret)
{
        struct nvml_gi_placement where = {.start = start};
        struct nvml_gpu_instance *gi;
        struct nvml_gi_info info;
        struct nvml_device *dev;
        struct vgpu_nvml_gpu *g;
        unsigned slices = 0;
        int err;

        err = nvml_admin_device(index, &dev);
        if (err == 0)
                err = nvml_gi_profile_slices(dev, profile_id, &slices);
        if (err < 0)
                return err;
        err = nvml_gi_placement(dev, profile_id, &where);
        if (err < 0)
                return err;
        err = NVML_CALL(nvmlDeviceCreateGpuInstanceWithPlacement, dev, profile_id, &where, &gi);
        if (err < 0)
                return err;
        err = NVML_CALL(nvmlGpuInstanceGetInfo, gi, &info);
        if (err < 0) {
                /* without its ID: give it back by its handle (nothing was made in it yet) */
                nvml.fns.nvmlGpuInstanceDestroy(gi);
                return err;
        }
        if (err == 0)
                err = nvml_ci_create_whole(gi, slices);
        g = err == 0 ? calloc(1, sizeof(*g)) : NULL;
        if (err == 0 && !g)
                err = -ENOMEM;
        if (err == 0)
                err = nvml_migs_fill(dev, g);
        for (unsigned i = 0; err == 0 && g && i < g->n_mig; i++) {
                if (g->mig[i].gi_id == info.id) {
                        *ret = g->mig[i];
                        free(g);
                        return 0;
                }
        }
        if (err == 0) {
                nvml_set_err("GPU instance %u was made, but NVML lists no MIG device in it",
                             info.id);
                err = -EIO;
        }
        free(g);
        /* Leave the layout as it was: whatever was made goes again (its own error is logged). */
        vgpu_nvml_gi_destroy(index, info.id);
        return err;
}

int vgpu_nvml_gi_destroy(unsigned index, unsigned gi_id)
{
        struct nvml_compute_instance *cis[NVML_GI_MAX_COMPUTE_INSTANCES];
        struct nvml_gpu_instance *gi;
        struct nvml_device *dev;
        int err;

        err = nvml_admin_device(index, &dev);
        if (err == 0)
                err = NVML_CALL(nvmlDeviceGetGpuInstanceById, dev, gi_id, &gi);
        if (err < 0)
                return err;
        for (unsigned p = 0; p < NVML_CI_PROFILE_COUNT; p++) {
                struct nvml_ci_profile_info info;
                unsigned n = NVML_GI_MAX_COMPUTE_INSTANCES;

                if (nvml.fns.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                            gi, p, NVML_CI_ENGINE_PROFILE_SHARED, &info) != NVML_SUCCESS)
                        continue;
                if (info.instance_count > NVML_GI_MAX_COMPUTE_INSTANCES) {
                        nvml_set_err("compute instance profile %u: %u instances, more than vgpu "
                                     "lists",
                                     info.id, info.instance_count);
                        return -E2BIG;
                }
                err = NVML_CALL(nvmlGpuInstanceGetComputeInstances, gi, info.id, cis, &n);
                for (unsigned i = 0; err == 0 && i < n && i < NVML_GI_MAX_COMPUTE_INSTANCES; i++)
                        err = NVML_CALL(nvmlComputeInstanceDestroy, cis[i]);
                if (err < 0)
                        return err;
        }
        return NVML_CALL(nvmlGpuInstanceDestroy, gi);
}

int vgpu_nvml_sample(unsigned index, struct vgpu_nvml_sample *ret)
{
        struct vgpu_nvml_sample s = {0};
        struct nvml_device *dev;
        struct nvml_memory mem;
        struct nvml_utilization util;
        unsigned temp, power;
        int err, r;

        err = nvml_ready();
        if (err < 0)
                return err;
        r = nvml.fns.nvmlDeviceGetHandleByIndex_v2(index, &dev);
        /* An index past the end is "no such GPU", whatever NVML calls it. */
        if (r == NVML_ERROR_INVALID_ARGUMENT)
                r = NVML_ERROR_NOT_FOUND;
        err = nvml_check(r, "nvmlDeviceGetHandleByIndex_v2");
        if (err < 0)
                return err;
        /* in MIG mode a GPU's memory is for privileged callers: it reads 0 */
        r = nvml.fns.nvmlDeviceGetMemoryInfo(dev, &mem);
        if (r == NVML_SUCCESS) {
                s.mem_used = mem.used;
                s.mem_total = mem.total;
        } else if (r != NVML_ERROR_NO_PERMISSION) {
                return nvml_check(r, "nvmlDeviceGetMemoryInfo");
        }

        /* Utilisation is not supported in MIG mode, power on some boards: those read 0. */
        r = nvml.fns.nvmlDeviceGetUtilizationRates(dev, &util);
        if (r == NVML_SUCCESS) {
                s.gpu_util = util.gpu;
                s.mem_util = util.memory;
        } else if (r != NVML_ERROR_NOT_SUPPORTED) {
                return nvml_check(r, "nvmlDeviceGetUtilizationRates");
        }
        r = nvml.fns.nvmlDeviceGetTemperature(dev, NVML_TEMPERATURE_GPU, &temp);
        if (r == NVML_SUCCESS)
                s.temp_c = (int)temp;
        else if (r != NVML_ERROR_NOT_SUPPORTED)
                return nvml_check(r, "nvmlDeviceGetTemperature");
        r = nvml.fns.nvmlDeviceGetPowerUsage(dev, &power);
        if (r == NVML_SUCCESS)
                s.power_mw = power;
        else if (r != NVML_ERROR_NOT_SUPPORTED)
                return nvml_check(r, "nvmlDeviceGetPowerUsage");
        *ret = s;
        return 0;
}

int vgpu_nvml_xid_watch(unsigned index)
{
        const struct nvml_fns *f = &nvml.fns;
        struct nvml_device *dev;
        unsigned long long types;
        int err, r;

        err = nvml_ready();
        if (err < 0)
                return err;
        if (!f->nvmlEventSetCreate || !f->nvmlEventSetFree || !f->nvmlDeviceRegisterEvents ||
            !f->nvmlDeviceGetSupportedEventTypes || !f->nvmlEventSetWait_v2) {
                nvml_set_err("this NVML has no event API");
                return -EOPNOTSUPP;
        }
        r = f->nvmlDeviceGetHandleByIndex_v2(index, &dev);
        if (r == NVML_ERROR_INVALID_ARGUMENT)
                r = NVML_ERROR_NOT_FOUND;
        err = nvml_check(r, "nvmlDeviceGetHandleByIndex_v2");
        if (err == 0)
                err = NVML_CALL(nvmlDeviceGetSupportedEventTypes, dev, &types);
        if (err < 0)
                return err;
        if (!(types & NVML_EVENT_TYPE_XID_CRITICAL)) {
                nvml_set_err("GPU %u does not report Xid events", index);
                return -EOPNOTSUPP;
        }

        pthread_mutex_lock(&nvml.lock);
        for (unsigned i = 0; i < nvml.n_watched; i++) {
                if (nvml.watched[i].dev == dev)
                        goto out;
        }
        if (nvml.n_watched == NVML_MAX_WATCHED) {
                nvml_set_err("more than %d GPUs watched", NVML_MAX_WATCHED);
                err = -ENOSPC;
                goto out;
        }
        if (!nvml.events) {
                err = NVML_CALL(nvmlEventSetCreate, &nvml.events);
                if (err < 0) {
                        nvml.events = NULL;
                        goto out;
                }
        }
        err = NVML_CALL(nvmlDeviceRegisterEvents, dev, NVML_EVENT_TYPE_XID_CRITICAL, nvml.events);
        if (err < 0)
                goto out;
        nvml.watched[nvml.n_watched].dev = dev;
        nvml.watched[nvml.n_watched].index = index;
        nvml.n_watched++;
out:
        pthread_mutex_unlock(&nvml.lock);
        return err;
}

int vgpu_nvml_xid_wait(unsigned timeout_ms, struct vgpu_nvml_xid *ret)
{
        struct nvml_event_set *set;
        struct nvml_event_data data = {0};
        unsigned index = 0;
        bool found = false;
        int err, r;

        err = nvml_ready();
        if (err < 0)
                return err;
        pthread_mutex_lock(&nvml.lock);
        set = nvml.events;
        pthread_mutex_unlock(&nvml.lock);
        if (!set) {
                nvml_set_err("no GPU is watched for Xid events");
                return -EINVAL;
        }
        r = nvml.fns.nvmlEventSetWait_v2(set, &data, timeout_ms);
        if (r == NVML_ERROR_TIMEOUT)
                return 0;
        err = nvml_check(r, "nvmlEventSetWait_v2");
        if (err < 0)
                return err;
        /* Only Xid events are registered; anything else is not one to report. */
        if (!(data.event_type & NVML_EVENT_TYPE_XID_CRITICAL))
                return 0;

        pthread_mutex_lock(&nvml.lock);
        for (unsigned i = 0; i < nvml.n_watched && !found; i++) {
                if (nvml.watched[i].dev == data.device) {
                        index = nvml.watched[i].index;
                        found = true;
                }
        }
        pthread_mutex_unlock(&nvml.lock);
        if (!found) {
                err = NVML_CALL(nvmlDeviceGetIndex, data.device, &index);
                if (err < 0)
                        return err;
        }
        ret->gpu_index = index;
        ret->gi_id = data.gpu_instance_id;
        ret->ci_id = data.compute_instance_id;
        ret->xid = data.event_data;
        return 1;
}

int vgpu_nvml_xid_poll(unsigned timeout_ms, unsigned *ret_index, unsigned long long *ret_xid)
{
        struct vgpu_nvml_xid ev;
        int ret = vgpu_nvml_xid_wait(timeout_ms, &ev);

        if (ret == 1) {
                *ret_index = ev.gpu_index;
                *ret_xid = ev.xid;
        }
        return ret;
}

const char *vgpu_nvml_strerror(void)
{
        return nvml_last_err;
}
