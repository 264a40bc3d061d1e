/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What test_fake_nvml.c (the fixture, devices, memory, events) and test_fake_nvml_mig.c (MIG
 * management) share: the stand-in's entry points by dlsym, the fixture's directory and GPUs
 * (described in test_fake_nvml.c's gpus.json), and the helpers that write its files.
 */
#ifndef VGPU_TESTS_FAKEGPU_TEST_FAKE_NVML_H
#define VGPU_TESTS_FAKEGPU_TEST_FAKE_NVML_H

#include <stdbool.h>
#include <sys/types.h>

#include "backend/cuda/nvml.h"
#include "nvml_abi.h"

#define GIB    (1ULL << 30)
#define MIB    (1ULL << 20)
#define H100   "NVIDIA H100 80GB HBM3"
#define MIG1_0 "MIG-7a0e2f1b-0000-4000-8000-000000000011"
#define MIG5_0 "MIG-7a0e2f1b-0000-4000-8000-000000000051"
#define MIG5_1 "MIG-7a0e2f1b-0000-4000-8000-000000000052"

/* The stand-in's entry points the tests call directly, typed from nvml_abi.h. */
#define FAKE_API(X)                                                                                \
        X(nvmlInit_v2)                                                                             \
        X(nvmlShutdown)                                                                            \
        X(nvmlErrorString)                                                                         \
        X(nvmlDeviceGetCount_v2)                                                                   \
        X(nvmlDeviceGetHandleByIndex_v2)                                                           \
        X(nvmlDeviceGetIndex)                                                                      \
        X(nvmlDeviceGetName)                                                                       \
        X(nvmlDeviceGetPciInfo_v3)                                                                 \
        X(nvmlDeviceGetMemoryInfo)                                                                 \
        X(nvmlDeviceGetMigMode)                                                                    \
        X(nvmlDeviceGetMaxMigDeviceCount)                                                          \
        X(nvmlDeviceGetMigDeviceHandleByIndex)                                                     \
        X(nvmlDeviceGetDeviceHandleFromMigDeviceHandle)                                            \
        X(nvmlDeviceIsMigDeviceHandle)                                                             \
        X(nvmlDeviceGetGpuInstanceId)                                                              \
        X(nvmlDeviceGetAttributes_v2)                                                              \
        X(nvmlDeviceRegisterEvents)                                                                \
        X(nvmlEventSetCreate)                                                                      \
        X(nvmlEventSetFree)                                                                        \
        X(nvmlEventSetWait_v2)                                                                     \
        X(nvmlDeviceGetGpuInstanceProfileInfo)                                                     \
        X(nvmlDeviceGetGpuInstancePossiblePlacements_v2)                                           \
        X(nvmlDeviceGetGpuInstanceRemainingCapacity)                                               \
        X(nvmlDeviceCreateGpuInstanceWithPlacement)                                                \
        X(nvmlGpuInstanceDestroy)                                                                  \
        X(nvmlDeviceGetGpuInstances)                                                               \
        X(nvmlDeviceGetGpuInstanceById)                                                            \
        X(nvmlGpuInstanceGetInfo)                                                                  \
        X(nvmlGpuInstanceGetComputeInstanceProfileInfo)                                            \
        X(nvmlGpuInstanceGetComputeInstanceRemainingCapacity)                                      \
        X(nvmlGpuInstanceCreateComputeInstance)                                                    \
        X(nvmlComputeInstanceDestroy)                                                              \
        X(nvmlGpuInstanceGetComputeInstances)                                                      \
        X(nvmlGpuInstanceGetComputeInstanceById)                                                   \
        X(nvmlComputeInstanceGetInfo_v2)

struct fake_api {
#define API_MEMBER(fn) __typeof__(fn) *fn;
        FAKE_API(API_MEMBER)
#undef API_MEMBER
};

/* Loaded by the fixture's setup, from the library it dlopens beside vgpu's loader. */
extern struct fake_api fx_api;

/*
 * A fixture: the test's VGPU_FAKE_GPU directory, the library as the test dlopen'd it, and GPU 0
 * (MIG capable, MIG off), GPU 1 (MIG mode: GPU instance 1 = 1g at slice 0 with compute instance
 * 0, 5 = 2g at slices 4-5 with 1-slice compute instances 0 and 1) and GPU 2 (no MIG).
 */
struct fixture {
        char dir[64];
        void *dl;
        struct nvml_device *dev[3];
};

/* fx_write_file - write text to <dir>/name; fails the test if it cannot. */
void fx_write_file(const char *dir, const char *name, const char *text);

/* fx_write_mem, fx_remove_mem - the memory accounting file <dir>/mem/<key>.<pid>. */
void fx_write_mem(const struct fixture *fx, const char *key, pid_t pid, unsigned long long n);
void fx_remove_mem(const struct fixture *fx, const char *key, pid_t pid);

/* fx_dead_pid - the pid of a process that has exited and been reaped. */
pid_t fx_dead_pid(void);

/* fx_find_mig - gpu's MIG device gi/ci as the loader lists it; fails the test if absent. */
const struct vgpu_nvml_mig *fx_find_mig(const struct vgpu_nvml_gpu *gpu, unsigned gi, unsigned ci);

/* The MIG management tests, in test_fake_nvml_mig.c. */
void test_mig_profiles(void **state);
void test_mig_lifecycle(void **state);
void test_mig_loader(void **state);
void test_mig_other_process(void **state);

#endif
