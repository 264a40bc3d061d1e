/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NVML loader's internals, shared by its files: nvml.c (loading, errors, listing the GPUs),
 * nvml_mig_admin.c (making and destroying GPU instances) and nvml_telemetry.c (samples, Xid
 * events). The NVML ABI is declared here from NVIDIA's API reference rather than its header.
 */
#ifndef VGPU_BACKEND_CUDA_NVML_INT_H
#define VGPU_BACKEND_CUDA_NVML_INT_H

#include <pthread.h>

#include "backend/cuda/nvml.h"

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
struct nvml_process {
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
};

extern struct nvml_process vgpu_nvml_proc;

/* vgpu_nvml_set_err - record this thread's last failure (vgpu_nvml_strerror), and log it. */
void vgpu_nvml_set_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* vgpu_nvml_check - 0 for NVML_SUCCESS, else record "call: NVML's words" and return its errno. */
int vgpu_nvml_check(int r, const char *call);

/* NVML_CALL(fn, args...) - call the loaded NVML function fn and check what it returns. */
#define NVML_CALL(fn, ...) vgpu_nvml_check(vgpu_nvml_proc.fns.fn(__VA_ARGS__), #fn)

/* vgpu_nvml_ready - 0 when NVML is open; -ENODEV, with the reason recorded, when not. */
int vgpu_nvml_ready(void);

/* vgpu_nvml_migs_fill - g's MIG devices (NVML device dev, in MIG mode). 0 or -errno, recorded. */
int vgpu_nvml_migs_fill(struct nvml_device *dev, struct vgpu_nvml_gpu *g);

#endif
