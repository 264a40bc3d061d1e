// SPDX-License-Identifier: Apache-2.0
// Making and destroying MIG GPU instances through NVML (vgpud --mig-admin): each with one compute
// instance that spans it, found again as its MIG device; destroyed with its compute instances.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/nvml.h"
#include "backend/cuda/nvml_int.h"
#include "common/log.h"

/* 0 when this NVML can make and destroy instances; -EOPNOTSUPP, recorded, when not. */
static int nvml_mig_admin_ready(void)
{
        if (!vgpu_nvml_proc.fns.nvmlDeviceGetGpuInstanceById ||
            !vgpu_nvml_proc.fns.nvmlGpuInstanceGetInfo ||
            !vgpu_nvml_proc.fns.nvmlDeviceGetGpuInstanceProfileInfo ||
            !vgpu_nvml_proc.fns.nvmlDeviceCreateGpuInstanceWithPlacement ||
            !vgpu_nvml_proc.fns.nvmlDeviceGetGpuInstancePossiblePlacements_v2 ||
            !vgpu_nvml_proc.fns.nvmlGpuInstanceDestroy ||
            !vgpu_nvml_proc.fns.nvmlGpuInstanceGetComputeInstanceProfileInfo ||
            !vgpu_nvml_proc.fns.nvmlGpuInstanceCreateComputeInstance ||
            !vgpu_nvml_proc.fns.nvmlGpuInstanceGetComputeInstances ||
            !vgpu_nvml_proc.fns.nvmlComputeInstanceDestroy ||
            !vgpu_nvml_proc.fns.nvmlDeviceGetMaxMigDeviceCount ||
            !vgpu_nvml_proc.fns.nvmlDeviceGetMigDeviceHandleByIndex) {
                vgpu_nvml_set_err("this NVML cannot create or destroy MIG instances");
                return -EOPNOTSUPP;
        }
        return 0;
}

/* GPU index, for a MIG change: NVML open and able to make and destroy instances. */
static int nvml_admin_device(unsigned index, struct nvml_device **ret)
{
        int err = vgpu_nvml_ready();

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

                if (vgpu_nvml_proc.fns.nvmlDeviceGetGpuInstanceProfileInfo(dev, p, &info) !=
                    NVML_SUCCESS)
                        continue; /* a profile index this GPU does not have */
                if (info.id == profile_id) {
                        *ret_slices = info.slice_count;
                        return 0;
                }
        }
        vgpu_nvml_set_err("GPU instance profile %u: not offered by this GPU", profile_id);
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
                vgpu_nvml_set_err("GPU instance profile %u cannot start at memory slice %u",
                                  profile_id, where->start);
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

                if (vgpu_nvml_proc.fns.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                            gi, p, NVML_CI_ENGINE_PROFILE_SHARED, &info) != NVML_SUCCESS ||
                    info.slice_count != slices)
                        continue;
                return NVML_CALL(nvmlGpuInstanceCreateComputeInstance, gi, info.id, &ci);
        }
        vgpu_nvml_set_err("no compute instance profile spans a GPU instance of %u slices", slices);
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
                vgpu_nvml_proc.fns.nvmlGpuInstanceDestroy(gi);
                return err;
        }
        if (err == 0)
                err = nvml_ci_create_whole(gi, slices);
        g = err == 0 ? calloc(1, sizeof(*g)) : NULL;
        if (err == 0 && !g)
                err = -ENOMEM;
        if (err == 0)
                err = vgpu_nvml_migs_fill(dev, g);
        for (unsigned i = 0; err == 0 && g && i < g->n_mig; i++) {
                if (g->mig[i].gi_id == info.id) {
                        *ret = g->mig[i];
                        free(g);
                        return 0;
                }
        }
        if (err == 0) {
                vgpu_nvml_set_err("GPU instance %u was made, but NVML lists no MIG device in it",
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

                if (vgpu_nvml_proc.fns.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                            gi, p, NVML_CI_ENGINE_PROFILE_SHARED, &info) != NVML_SUCCESS)
                        continue;
                if (info.instance_count > NVML_GI_MAX_COMPUTE_INSTANCES) {
                        vgpu_nvml_set_err(
                                "compute instance profile %u: %u instances, more than vgpu "
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
