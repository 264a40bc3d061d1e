/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NVML ABI the stand-in libnvidia-ml implements: status codes, constants, the structs it fills
 * and the entry points it exports, in the order and with the types of NVIDIA's NVML API reference
 * (docs.nvidia.com/deploy/nvml-api/: "Device Structs", "Event Handling Methods" and "Multi
 * Instance GPU Management"; nvml.h of API version 12). Written from the reference, in vgpu's
 * naming; each struct names the NVML type it lays out, field for field, so that nvml_int.h's own
 * declarations can be checked against it. Handles are opaque pointers.
 */
#ifndef VGPU_TESTS_FAKEGPU_NVML_ABI_H
#define VGPU_TESTS_FAKEGPU_NVML_ABI_H

/* nvmlReturn_t (a C enum, passed as int). */
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
        NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22,
        NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
        NVML_ERROR_FREQ_NOT_SUPPORTED = 24,
        NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
        NVML_ERROR_DEPRECATED = 26,
        NVML_ERROR_NOT_READY = 27,
        NVML_ERROR_GPU_NOT_FOUND = 28,
        NVML_ERROR_INVALID_STATE = 29,
        NVML_ERROR_UNKNOWN = 999,
};

#define NVML_TEMPERATURE_GPU         0 /* nvmlTemperatureSensors_t */
#define NVML_DEVICE_MIG_DISABLE      0
#define NVML_DEVICE_MIG_ENABLE       1
#define NVML_EVENT_TYPE_XID_CRITICAL 0x0000000000000008ULL /* nvmlEventTypeXidCriticalError */
#define NVML_DEVICE_NAME_V2_SIZE     96                    /* NVML_DEVICE_NAME_V2_BUFFER_SIZE */
#define NVML_DEVICE_UUID_V2_SIZE     96                    /* NVML_DEVICE_UUID_V2_BUFFER_SIZE */
#define NVML_PCI_BUS_ID_SIZE         32                    /* NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE */
#define NVML_PCI_BUS_ID_LEGACY_SIZE  16          /* NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE */
#define NVML_INSTANCE_ID_ANY         0xFFFFFFFFu /* nvmlEventData_t's gi/ci when not attributed */

/*
 * GPU instance profiles (NVML_GPU_INSTANCE_PROFILE_*): indices, not the profile ids that the
 * driver gives them. 0x0..0x9 as in API version 12; the drivers of 2024-25 add 0xA..0x10 (the
 * _GFX, _NO_ME and _ALL_ME variants), so an index below 0x11 is a profile a GPU may lack (NOT
 * SUPPORTED) and one at or above it is invalid (INVALID_ARGUMENT).
 */
#define NVML_GPU_INSTANCE_PROFILE_1_SLICE      0x0
#define NVML_GPU_INSTANCE_PROFILE_2_SLICE      0x1
#define NVML_GPU_INSTANCE_PROFILE_3_SLICE      0x2
#define NVML_GPU_INSTANCE_PROFILE_4_SLICE      0x3
#define NVML_GPU_INSTANCE_PROFILE_7_SLICE      0x4
#define NVML_GPU_INSTANCE_PROFILE_8_SLICE      0x5
#define NVML_GPU_INSTANCE_PROFILE_6_SLICE      0x6
#define NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1 0x7
#define NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1 0x8
#define NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2 0x9
#define NVML_GPU_INSTANCE_PROFILE_COUNT        0x11

/* Compute instance profiles (NVML_COMPUTE_INSTANCE_PROFILE_*) and engine profiles. */
#define NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE       0x0
#define NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE       0x1
#define NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE       0x2
#define NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE       0x3
#define NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE       0x4
#define NVML_COMPUTE_INSTANCE_PROFILE_8_SLICE       0x5
#define NVML_COMPUTE_INSTANCE_PROFILE_6_SLICE       0x6
#define NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE_REV1  0x7
#define NVML_COMPUTE_INSTANCE_PROFILE_COUNT         0x8
#define NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED 0x0
#define NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_COUNT  0x1

struct nvml_device;           /* nvmlDevice_t points at one: a GPU or a MIG device */
struct nvml_gpu_instance;     /* nvmlGpuInstance_t */
struct nvml_compute_instance; /* nvmlComputeInstance_t */
struct nvml_event_set;        /* nvmlEventSet_t */

struct nvml_memory { /* nvmlMemory_t (v1) */
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

struct nvml_event_data { /* nvmlEventData_t */
        struct nvml_device *device;
        unsigned long long event_type;
        unsigned long long event_data; /* the Xid, for an Xid event */
        unsigned gpu_instance_id, compute_instance_id;
};

struct nvml_gpu_instance_placement { /* nvmlGpuInstancePlacement_t: memory slices */
        unsigned start, size;
};

struct nvml_gpu_instance_profile_info { /* nvmlGpuInstanceProfileInfo_t (v1, no version field) */
        unsigned id;                    /* the profile id, as nvidia-smi mig -lgip shows it */
        unsigned is_p2p_supported;
        unsigned slice_count;    /* compute slices */
        unsigned instance_count; /* how many such instances the GPU can hold */
        unsigned multiprocessor_count;
        unsigned copy_engine_count, decoder_count, encoder_count, jpeg_count, ofa_count;
        unsigned long long memory_size_mb; /* MiB */
};

struct nvml_gpu_instance_info {     /* nvmlGpuInstanceInfo_t */
        struct nvml_device *device; /* the parent GPU */
        unsigned id;
        unsigned profile_id;
        struct nvml_gpu_instance_placement placement;
};

struct nvml_compute_instance_placement { /* nvmlComputeInstancePlacement_t: compute slices */
        unsigned start, size;
};

struct nvml_compute_instance_profile_info { /* nvmlComputeInstanceProfileInfo_t (v1) */
        unsigned id;
        unsigned slice_count;
        unsigned instance_count;
        unsigned multiprocessor_count;
        unsigned shared_copy_engine_count, shared_decoder_count, shared_encoder_count;
        unsigned shared_jpeg_count, shared_ofa_count;
};

struct nvml_compute_instance_info { /* nvmlComputeInstanceInfo_t */
        struct nvml_device *device; /* the parent GPU, not the MIG device */
        struct nvml_gpu_instance *gpu_instance;
        unsigned id;
        unsigned profile_id;
        struct nvml_compute_instance_placement placement; /* within the GPU instance */
};

/* Initialisation and errors. */
int nvmlInit_v2(void);
int nvmlShutdown(void);
const char *nvmlErrorString(int result);

/* Devices: GPUs, and MIG devices (the handles nvmlDeviceGetMigDeviceHandleByIndex gives). */
int nvmlDeviceGetCount_v2(unsigned *count);
int nvmlDeviceGetHandleByIndex_v2(unsigned index, struct nvml_device **device);
int nvmlDeviceGetIndex(struct nvml_device *device, unsigned *index);
int nvmlDeviceGetName(struct nvml_device *device, char *name, unsigned length);
int nvmlDeviceGetUUID(struct nvml_device *device, char *uuid, unsigned length);
int nvmlDeviceGetPciInfo_v3(struct nvml_device *device, struct nvml_pci_info *pci);
int nvmlDeviceGetMemoryInfo(struct nvml_device *device, struct nvml_memory *memory);
int nvmlDeviceGetUtilizationRates(struct nvml_device *device, struct nvml_utilization *util);
int nvmlDeviceGetTemperature(struct nvml_device *device, int sensor, unsigned *temp);
int nvmlDeviceGetPowerUsage(struct nvml_device *device, unsigned *power_mw);
int nvmlDeviceGetMigMode(struct nvml_device *device, unsigned *current_mode,
                         unsigned *pending_mode);
int nvmlDeviceGetMaxMigDeviceCount(struct nvml_device *device, unsigned *count);
int nvmlDeviceGetMigDeviceHandleByIndex(struct nvml_device *device, unsigned index,
                                        struct nvml_device **mig_device);
int nvmlDeviceGetDeviceHandleFromMigDeviceHandle(struct nvml_device *mig_device,
                                                 struct nvml_device **device);
int nvmlDeviceIsMigDeviceHandle(struct nvml_device *device, unsigned *is_mig);
int nvmlDeviceGetGpuInstanceId(struct nvml_device *device, unsigned *id);
int nvmlDeviceGetComputeInstanceId(struct nvml_device *device, unsigned *id);
int nvmlDeviceGetAttributes_v2(struct nvml_device *device, struct nvml_device_attributes *attr);

/* Events. */
int nvmlEventSetCreate(struct nvml_event_set **set);
int nvmlEventSetFree(struct nvml_event_set *set);
int nvmlDeviceGetSupportedEventTypes(struct nvml_device *device, unsigned long long *types);
int nvmlDeviceRegisterEvents(struct nvml_device *device, unsigned long long types,
                             struct nvml_event_set *set);
int nvmlEventSetWait_v2(struct nvml_event_set *set, struct nvml_event_data *data,
                        unsigned timeout_ms);

/* MIG management: GPU instances. profile is an index, profile_id the driver's id for it. */
int nvmlDeviceGetGpuInstanceProfileInfo(struct nvml_device *device, unsigned profile,
                                        struct nvml_gpu_instance_profile_info *info);
int nvmlDeviceGetGpuInstancePossiblePlacements_v2(struct nvml_device *device, unsigned profile_id,
                                                  struct nvml_gpu_instance_placement *placements,
                                                  unsigned *count);
int nvmlDeviceGetGpuInstanceRemainingCapacity(struct nvml_device *device, unsigned profile_id,
                                              unsigned *count);
int nvmlDeviceCreateGpuInstanceWithPlacement(struct nvml_device *device, unsigned profile_id,
                                             const struct nvml_gpu_instance_placement *placement,
                                             struct nvml_gpu_instance **gpu_instance);
int nvmlGpuInstanceDestroy(struct nvml_gpu_instance *gpu_instance);
int nvmlDeviceGetGpuInstances(struct nvml_device *device, unsigned profile_id,
                              struct nvml_gpu_instance **gpu_instances, unsigned *count);
int nvmlDeviceGetGpuInstanceById(struct nvml_device *device, unsigned id,
                                 struct nvml_gpu_instance **gpu_instance);
int nvmlGpuInstanceGetInfo(struct nvml_gpu_instance *gpu_instance,
                           struct nvml_gpu_instance_info *info);

/* MIG management: compute instances. */
int nvmlGpuInstanceGetComputeInstanceProfileInfo(struct nvml_gpu_instance *gpu_instance,
                                                 unsigned profile, unsigned eng_profile,
                                                 struct nvml_compute_instance_profile_info *info);
int nvmlGpuInstanceGetComputeInstanceRemainingCapacity(struct nvml_gpu_instance *gpu_instance,
                                                       unsigned profile_id, unsigned *count);
int nvmlGpuInstanceCreateComputeInstance(struct nvml_gpu_instance *gpu_instance,
                                         unsigned profile_id,
                                         struct nvml_compute_instance **compute_instance);
int nvmlComputeInstanceDestroy(struct nvml_compute_instance *compute_instance);
int nvmlGpuInstanceGetComputeInstances(struct nvml_gpu_instance *gpu_instance, unsigned profile_id,
                                       struct nvml_compute_instance **compute_instances,
                                       unsigned *count);
int nvmlGpuInstanceGetComputeInstanceById(struct nvml_gpu_instance *gpu_instance, unsigned id,
                                          struct nvml_compute_instance **compute_instance);
int nvmlComputeInstanceGetInfo_v2(struct nvml_compute_instance *compute_instance,
                                  struct nvml_compute_instance_info *info);

#endif
