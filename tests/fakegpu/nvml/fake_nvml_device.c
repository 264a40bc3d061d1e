// SPDX-License-Identifier: Apache-2.0
// The stand-in NVML's devices: the GPUs of gpus.json in its order, and in MIG mode one MIG device
// per compute instance, numbered densely in gpus.json's order of GPU instances and compute
// instances. Identity, PCI, memory (from <dir>/mem), telemetry (fixed, plausible) and the MIG
// device queries. Queries of a whole GPU on a MIG device handle are NOT_SUPPORTED.
#include <stdio.h>
#include <string.h>

#include "common/export.h"
#include "fake_nvml.h"

#define FAKE_TEMP_C   38    /* an idle data-centre GPU */
#define FAKE_POWER_MW 72000 /* likewise */
#define NVIDIA_VENDOR 0x10de
#define MIB           (1024ULL * 1024)

/*
 * Begin a call about device: NVML_SUCCESS with the lock held and *ref filled, or a status with
 * the lock dropped. A MIG device handle gets if_mig unless that is NVML_SUCCESS; out is the
 * output pointer, which must not be NULL.
 */
static int dev_enter(struct nvml_device *device, const void *out, int if_mig, struct fake_ref *ref)
{
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = out ? fake_dev_ref(device, ref) : NVML_ERROR_INVALID_ARGUMENT;
        if (r == NVML_SUCCESS && ref->ci && if_mig != NVML_SUCCESS)
                r = if_mig;
        if (r != NVML_SUCCESS)
                return fake_leave(r);
        return NVML_SUCCESS;
}

VGPU_EXPORT int nvmlDeviceGetCount_v2(unsigned *count)
{
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        *count = fake.cfg->n_gpus;
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned index, struct nvml_device **device)
{
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        if (!device || index >= fake.cfg->n_gpus)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        /* Counted by nvmlDeviceGetCount_v2 all the same, as the reference warns. */
        if (!fake.cfg->gpus[index].accessible)
                return fake_leave(NVML_ERROR_NO_PERMISSION);
        *device = fake_gpu_handle(index);
        return fake_leave(NVML_SUCCESS);
}

/* The index nvmlDeviceGetMigDeviceHandleByIndex gives MIG device ref: dense, gpus.json order. */
static unsigned mig_index(const struct fake_ref *ref)
{
        unsigned n = 0;

        for (unsigned i = 0; i < ref->gpu->n_gi && &ref->gpu->gi[i] != ref->gi; i++)
                n += ref->gpu->gi[i].n_ci;
        return n + (unsigned)(ref->ci - ref->gi->ci);
}

/* A MIG device's index is its index under its GPU, as the reference says. */
VGPU_EXPORT int nvmlDeviceGetIndex(struct nvml_device *device, unsigned *index)
{
        struct fake_ref ref;
        int r = dev_enter(device, index, NVML_SUCCESS, &ref);

        if (r != NVML_SUCCESS)
                return r;
        *index = ref.ci ? mig_index(&ref) : ref.gpu_index;
        return fake_leave(NVML_SUCCESS);
}

/*
 * A MIG device's name, as NVML gives it: the GPU's, then "MIG", the compute instance's slices
 * when it has fewer than its GPU instance ("1c."), the GPU instance's slices and its memory in
 * GiB rounded up: "NVIDIA H100 80GB HBM3 MIG 1g.10gb".
 */
static void mig_name(const struct fake_ref *ref, char *buf, size_t len)
{
        const struct fake_profile *prof = &ref->gpu->profiles[ref->gi->profile];
        unsigned long long gb = (prof->mem_mib + 1023) / 1024;

        if (ref->ci->slices < prof->slices)
                snprintf(buf, len, "%s MIG %uc.%ug.%llugb", ref->gpu->name, ref->ci->slices,
                         prof->slices, gb);
        else
                snprintf(buf, len, "%s MIG %ug.%llugb", ref->gpu->name, prof->slices, gb);
}

VGPU_EXPORT int nvmlDeviceGetName(struct nvml_device *device, char *name, unsigned length)
{
        char buf[2 * NVML_DEVICE_NAME_V2_SIZE]; /* the GPU's name and then some */
        struct fake_ref ref;
        int r = dev_enter(device, name, NVML_SUCCESS, &ref);

        if (r != NVML_SUCCESS)
                return r;
        if (ref.ci)
                mig_name(&ref, buf, sizeof(buf));
        else
                snprintf(buf, sizeof(buf), "%s", ref.gpu->name);
        return fake_leave(fake_copy_str(buf, name, length));
}

VGPU_EXPORT int nvmlDeviceGetUUID(struct nvml_device *device, char *uuid, unsigned length)
{
        struct fake_ref ref;
        int r = dev_enter(device, uuid, NVML_SUCCESS, &ref);

        if (r != NVML_SUCCESS)
                return r;
        return fake_leave(fake_copy_str(ref.ci ? ref.ci->uuid : ref.gpu->uuid, uuid, length));
}

VGPU_EXPORT int nvmlDeviceGetPciInfo_v3(struct nvml_device *device, struct nvml_pci_info *pci)
{
        struct fake_ref ref;
        int r = dev_enter(device, pci, NVML_ERROR_NOT_SUPPORTED, &ref);

        if (r != NVML_SUCCESS)
                return r;
        memset(pci, 0, sizeof(*pci));
        snprintf(pci->bus_id_legacy, sizeof(pci->bus_id_legacy), "%04X:%02X:%02X.0",
                 ref.gpu->domain & 0xffff, ref.gpu->bus & 0xff, ref.gpu->device & 0xff);
        pci->domain = ref.gpu->domain;
        pci->bus = ref.gpu->bus;
        pci->device = ref.gpu->device;
        pci->pci_device_id = ref.gpu->pci_device_id << 16 | NVIDIA_VENDOR;
        pci->pci_subsystem_id = ref.gpu->pci_device_id << 16 | NVIDIA_VENDOR;
        snprintf(pci->bus_id, sizeof(pci->bus_id), "%s", ref.gpu->bus_id);
        return fake_leave(NVML_SUCCESS);
}

/*
 * A GPU's memory is its mem_mib and what live processes hold on it and all its GPU instances; a
 * MIG device's is its GPU instance's, shared by that instance's compute instances. A GPU in MIG
 * mode gives its aggregate to privileged callers only (NO_PERMISSION otherwise).
 */
VGPU_EXPORT int nvmlDeviceGetMemoryInfo(struct nvml_device *device, struct nvml_memory *memory)
{
        struct fake_ref ref;
        unsigned long long total, used;
        int r = dev_enter(device, memory, NVML_SUCCESS, &ref);

        if (r != NVML_SUCCESS)
                return r;
        if (ref.ci) {
                total = ref.gpu->profiles[ref.gi->profile].mem_mib * MIB;
                used = fake_mem_used(ref.gpu_index, (int)ref.gi->id);
        } else if (ref.gpu->mig_mode && fake_privileged() != NVML_SUCCESS) {
                /* in MIG mode a GPU's aggregate is for privileged callers only */
                return fake_leave(NVML_ERROR_NO_PERMISSION);
        } else {
                total = ref.gpu->mem_mib * MIB;
                used = fake_mem_used(ref.gpu_index, -1);
        }
        memory->total = total;
        memory->used = used < total ? used : total;
        memory->free = total - memory->used;
        return fake_leave(NVML_SUCCESS);
}

/* Nothing here measures utilisation: 0. In MIG mode NVML does not report it at all. */
VGPU_EXPORT int nvmlDeviceGetUtilizationRates(struct nvml_device *device,
                                              struct nvml_utilization *util)
{
        struct fake_ref ref;
        int r = dev_enter(device, util, NVML_ERROR_NOT_SUPPORTED, &ref);

        if (r != NVML_SUCCESS)
                return r;
        if (ref.gpu->mig_mode)
                return fake_leave(NVML_ERROR_NOT_SUPPORTED);
        util->gpu = 0;
        util->memory = 0;
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int nvmlDeviceGetTemperature(struct nvml_device *device, int sensor, unsigned *temp)
{
        struct fake_ref ref;
        int r = dev_enter(device, temp, NVML_ERROR_NOT_SUPPORTED, &ref);

        if (r != NVML_SUCCESS)
                return r;
        if (sensor != NVML_TEMPERATURE_GPU)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        *temp = FAKE_TEMP_C;
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int nvmlDeviceGetPowerUsage(struct nvml_device *device, unsigned *power_mw)
{
        struct fake_ref ref;
        int r = dev_enter(device, power_mw, NVML_ERROR_NOT_SUPPORTED, &ref);

        if (r != NVML_SUCCESS)
                return r;
        *power_mw = FAKE_POWER_MW;
        return fake_leave(NVML_SUCCESS);
}

/* A GPU without gi_profiles does not support MIG; the others report mig_mode, never pending. */
VGPU_EXPORT int nvmlDeviceGetMigMode(struct nvml_device *device, unsigned *current_mode,
                                     unsigned *pending_mode)
{
        struct fake_ref ref;
        int r = dev_enter(device, current_mode, NVML_ERROR_NOT_SUPPORTED, &ref);

        if (r != NVML_SUCCESS)
                return r;
        if (!pending_mode)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        if (!ref.gpu->mig_capable)
                return fake_leave(NVML_ERROR_NOT_SUPPORTED);
        *current_mode = ref.gpu->mig_mode ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
        *pending_mode = *current_mode;
        return fake_leave(NVML_SUCCESS);
}

/*
 * The most MIG devices the GPU can have: its compute slices, the largest slices x count of its
 * profiles (7 on an H100), or more if gpus.json lists more. 0 out of MIG mode.
 */
static unsigned max_mig_devices(const struct fake_gpu *gpu)
{
        unsigned max = 0, n = 0;

        if (!gpu->mig_mode)
                return 0;
        for (unsigned i = 0; i < gpu->n_profiles; i++) {
                const struct fake_profile *p = &gpu->profiles[i];

                if (p->slices * p->count > max)
                        max = p->slices * p->count;
        }
        for (unsigned i = 0; i < gpu->n_gi; i++)
                n += gpu->gi[i].n_ci;
        return max > n ? max : n;
}

VGPU_EXPORT int nvmlDeviceGetMaxMigDeviceCount(struct nvml_device *device, unsigned *count)
{
        struct fake_ref ref;
        int r = dev_enter(device, count, NVML_ERROR_INVALID_ARGUMENT, &ref);

        if (r != NVML_SUCCESS)
                return r;
        *count = max_mig_devices(ref.gpu);
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int nvmlDeviceGetMigDeviceHandleByIndex(struct nvml_device *device, unsigned index,
                                                    struct nvml_device **mig_device)
{
        struct fake_ref ref;
        unsigned n = 0;
        int r = dev_enter(device, mig_device, NVML_ERROR_INVALID_ARGUMENT, &ref);

        if (r != NVML_SUCCESS)
                return r;
        if (!ref.gpu->mig_capable)
                return fake_leave(NVML_ERROR_NOT_SUPPORTED);
        if (index >= max_mig_devices(ref.gpu))
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        for (unsigned i = 0; i < ref.gpu->n_gi; i++) {
                const struct fake_gi *gi = &ref.gpu->gi[i];

                if (index < n + gi->n_ci) {
                        *mig_device = fake_mig_handle(ref.gpu_index, gi->id, gi->ci[index - n].id);
                        return fake_leave(NVML_SUCCESS);
                }
                n += gi->n_ci;
        }
        return fake_leave(NVML_ERROR_NOT_FOUND);
}

VGPU_EXPORT int nvmlDeviceGetDeviceHandleFromMigDeviceHandle(struct nvml_device *mig_device,
                                                             struct nvml_device **device)
{
        struct fake_ref ref;
        int r = dev_enter(mig_device, device, NVML_SUCCESS, &ref);

        if (r != NVML_SUCCESS)
                return r;
        if (!ref.ci)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        *device = fake_gpu_handle(ref.gpu_index);
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int nvmlDeviceIsMigDeviceHandle(struct nvml_device *device, unsigned *is_mig)
{
        struct fake_ref ref;
        int r = dev_enter(device, is_mig, NVML_SUCCESS, &ref);

        if (r != NVML_SUCCESS)
                return r;
        *is_mig = ref.ci != NULL;
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int nvmlDeviceGetGpuInstanceId(struct nvml_device *device, unsigned *id)
{
        struct fake_ref ref;
        int r = dev_enter(device, id, NVML_SUCCESS, &ref);

        if (r != NVML_SUCCESS)
                return r;
        if (!ref.ci)
                return fake_leave(NVML_ERROR_NOT_SUPPORTED);
        *id = ref.gi->id;
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int nvmlDeviceGetComputeInstanceId(struct nvml_device *device, unsigned *id)
{
        struct fake_ref ref;
        int r = dev_enter(device, id, NVML_SUCCESS, &ref);

        if (r != NVML_SUCCESS)
                return r;
        if (!ref.ci)
                return fake_leave(NVML_ERROR_NOT_SUPPORTED);
        *id = ref.ci->id;
        return fake_leave(NVML_SUCCESS);
}

/* NVML gives attributes of MIG devices only. */
VGPU_EXPORT int nvmlDeviceGetAttributes_v2(struct nvml_device *device,
                                           struct nvml_device_attributes *attr)
{
        const struct fake_profile *prof;
        struct fake_engines eng;
        struct fake_ref ref;
        int r = dev_enter(device, attr, NVML_SUCCESS, &ref);

        if (r != NVML_SUCCESS)
                return r;
        if (!ref.ci)
                return fake_leave(NVML_ERROR_NOT_SUPPORTED);
        prof = &ref.gpu->profiles[ref.gi->profile];
        fake_profile_engines(prof, &eng);
        memset(attr, 0, sizeof(*attr));
        attr->multiprocessor_count = ref.ci->sms;
        attr->shared_copy_engine_count = eng.copy;
        attr->shared_decoder_count = eng.decoder;
        attr->shared_encoder_count = eng.encoder;
        attr->shared_jpeg_count = eng.jpeg;
        attr->shared_ofa_count = eng.ofa;
        attr->gpu_instance_slice_count = prof->slices;
        attr->compute_instance_slice_count = ref.ci->slices;
        attr->memory_size_mb = prof->mem_mib;
        return fake_leave(NVML_SUCCESS);
}
