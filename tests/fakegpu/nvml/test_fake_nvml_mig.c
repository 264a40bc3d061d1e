// SPDX-License-Identifier: Apache-2.0
// The stand-in NVML's MIG management, through dlsym and through vgpu's loader (vgpu_nvml_gi_create
// and _destroy): GPU instance profiles, placements and capacity; GPU and compute instances
// created, refused, listed and destroyed; the change seen by another process through gpus.json.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "test_fake_nvml.h"

void test_mig_profiles(void **state)
{
        struct fixture *fx = *state;
        struct nvml_gpu_instance_profile_info info;
        struct nvml_gpu_instance_placement pl[8];
        unsigned n = 0;

        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceProfileInfo(
                                 fx->dev[1], NVML_GPU_INSTANCE_PROFILE_1_SLICE, &info),
                         NVML_SUCCESS);
        assert_int_equal(info.id, 19);
        assert_int_equal(info.slice_count, 1);
        assert_int_equal(info.instance_count, 7);
        assert_int_equal(info.multiprocessor_count, 16);
        assert_int_equal(info.memory_size_mb, 9856);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceProfileInfo(
                                 fx->dev[1], NVML_GPU_INSTANCE_PROFILE_7_SLICE, &info),
                         NVML_SUCCESS);
        assert_int_equal(info.id, 0);
        assert_int_equal(info.slice_count, 7);
        /* Not offered on this GPU; not a profile at all; MIG off; no MIG. */
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceProfileInfo(
                                 fx->dev[1], NVML_GPU_INSTANCE_PROFILE_3_SLICE, &info),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceProfileInfo(
                                 fx->dev[1], NVML_GPU_INSTANCE_PROFILE_COUNT, &info),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceProfileInfo(fx->dev[0], 0, &info),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceProfileInfo(fx->dev[2], 0, &info),
                         NVML_ERROR_NOT_SUPPORTED);

        assert_int_equal(
                fx_api.nvmlDeviceGetGpuInstancePossiblePlacements_v2(fx->dev[1], 14, NULL, &n),
                NVML_SUCCESS);
        assert_int_equal(n, 3);
        assert_int_equal(
                fx_api.nvmlDeviceGetGpuInstancePossiblePlacements_v2(fx->dev[1], 14, pl, &n),
                NVML_SUCCESS);
        assert_int_equal(pl[1].start, 2);
        assert_int_equal(pl[1].size, 2);
        assert_int_equal(
                fx_api.nvmlDeviceGetGpuInstancePossiblePlacements_v2(fx->dev[0], 19, pl, &n),
                NVML_SUCCESS);
        assert_int_equal(n, 7);
        assert_int_equal(
                fx_api.nvmlDeviceGetGpuInstancePossiblePlacements_v2(fx->dev[1], 77, pl, &n),
                NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(
                fx_api.nvmlDeviceGetGpuInstancePossiblePlacements_v2(fx->dev[2], 19, pl, &n),
                NVML_ERROR_NOT_SUPPORTED);

        /* Slice 0 (GI 1) and 4-5 (GI 5) are taken. */
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceRemainingCapacity(fx->dev[1], 19, &n),
                         NVML_SUCCESS);
        assert_int_equal(n, 4);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceRemainingCapacity(fx->dev[1], 14, &n),
                         NVML_SUCCESS);
        assert_int_equal(n, 1);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceRemainingCapacity(fx->dev[1], 0, &n),
                         NVML_SUCCESS);
        assert_int_equal(n, 0);
}

/* Create a GPU instance of profile_id at [start, size] on dev. */
static int create_gi(struct nvml_device *dev, unsigned profile_id, unsigned start, unsigned size,
                     struct nvml_gpu_instance **gi)
{
        struct nvml_gpu_instance_placement p = {.start = start, .size = size};

        return fx_api.nvmlDeviceCreateGpuInstanceWithPlacement(dev, profile_id, &p, gi);
}

void test_mig_lifecycle(void **state)
{
        struct fixture *fx = *state;
        struct nvml_gpu_instance *gi = NULL, *other, *list[8];
        struct nvml_compute_instance *ci = NULL, *cis[8];
        struct nvml_gpu_instance_info gi_info;
        struct nvml_compute_instance_profile_info ci_prof;
        struct nvml_compute_instance_info ci_info;
        struct vgpu_nvml_gpu gpus[3];
        const struct vgpu_nvml_mig *m;
        unsigned n = 0;
        size_t ngpus;

        /* Refused: overlapping GI 1, not a placement of the profile, the 7g, MIG off. */
        assert_int_equal(create_gi(fx->dev[1], 19, 0, 1, &gi), NVML_ERROR_INSUFFICIENT_RESOURCES);
        assert_int_equal(create_gi(fx->dev[1], 19, 0, 2, &gi), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(create_gi(fx->dev[1], 19, 7, 1, &gi), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(create_gi(fx->dev[1], 0, 0, 8, &gi), NVML_ERROR_INSUFFICIENT_RESOURCES);
        assert_int_equal(create_gi(fx->dev[0], 19, 1, 1, &gi), NVML_ERROR_NOT_SUPPORTED);
        assert_null(gi);

        /* A 2g at slices 2-3: the smallest free id, 2, and no compute instance yet. */
        assert_int_equal(create_gi(fx->dev[1], 14, 2, 2, &gi), NVML_SUCCESS);
        assert_int_equal(fx_api.nvmlGpuInstanceGetInfo(gi, &gi_info), NVML_SUCCESS);
        assert_ptr_equal(gi_info.device, fx->dev[1]);
        assert_int_equal(gi_info.id, 2);
        assert_int_equal(gi_info.profile_id, 14);
        assert_int_equal(gi_info.placement.start, 2);
        assert_int_equal(gi_info.placement.size, 2);
        assert_int_equal(create_gi(fx->dev[1], 19, 3, 1, &other),
                         NVML_ERROR_INSUFFICIENT_RESOURCES);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceRemainingCapacity(fx->dev[1], 19, &n),
                         NVML_SUCCESS);
        assert_int_equal(n, 2);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstances(fx->dev[1], 14, list, &n), NVML_SUCCESS);
        assert_int_equal(n, 2);
        assert_ptr_equal(list[0], gi);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceById(fx->dev[1], 2, &other), NVML_SUCCESS);
        assert_ptr_equal(other, gi);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceById(fx->dev[1], 3, &other),
                         NVML_ERROR_NOT_FOUND);
        assert_int_equal(vgpu_nvml_gpus(gpus, 3, &ngpus), 0);
        assert_int_equal(gpus[1].n_mig, 3);

        /* Its compute instance profiles: 1 and 2 slices, not 7; only the shared engines. */
        assert_int_equal(fx_api.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                                 gi, NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE,
                                 NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &ci_prof),
                         NVML_SUCCESS);
        assert_int_equal(ci_prof.id, NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE);
        assert_int_equal(ci_prof.slice_count, 1);
        assert_int_equal(ci_prof.instance_count, 2);
        assert_int_equal(ci_prof.multiprocessor_count, 16);
        assert_int_equal(fx_api.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                                 gi, NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE, 0, &ci_prof),
                         NVML_SUCCESS);
        assert_int_equal(ci_prof.slice_count, 2);
        assert_int_equal(ci_prof.instance_count, 1);
        assert_int_equal(ci_prof.multiprocessor_count, 32);
        assert_int_equal(fx_api.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                                 gi, NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE, 0, &ci_prof),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(fx_api.nvmlGpuInstanceGetComputeInstanceProfileInfo(gi, 0, 1, &ci_prof),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(fx_api.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                                 gi, NVML_COMPUTE_INSTANCE_PROFILE_COUNT, 0, &ci_prof),
                         NVML_ERROR_INVALID_ARGUMENT);

        /* One compute instance over the whole GPU instance: a new MIG device. */
        assert_int_equal(fx_api.nvmlGpuInstanceCreateComputeInstance(
                                 gi, NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE, &ci),
                         NVML_SUCCESS);
        assert_int_equal(fx_api.nvmlComputeInstanceGetInfo_v2(ci, &ci_info), NVML_SUCCESS);
        assert_ptr_equal(ci_info.device, fx->dev[1]);
        assert_ptr_equal(ci_info.gpu_instance, gi);
        assert_int_equal(ci_info.id, 0);
        assert_int_equal(ci_info.profile_id, NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE);
        assert_int_equal(ci_info.placement.start, 0);
        assert_int_equal(ci_info.placement.size, 2);
        assert_int_equal(fx_api.nvmlGpuInstanceCreateComputeInstance(gi, 0, cis),
                         NVML_ERROR_INSUFFICIENT_RESOURCES);
        assert_int_equal(fx_api.nvmlGpuInstanceGetComputeInstanceRemainingCapacity(gi, 0, &n),
                         NVML_SUCCESS);
        assert_int_equal(n, 0);
        assert_int_equal(fx_api.nvmlGpuInstanceGetComputeInstances(gi, 1, cis, &n), NVML_SUCCESS);
        assert_int_equal(n, 1);
        assert_ptr_equal(cis[0], ci);
        assert_int_equal(fx_api.nvmlGpuInstanceGetComputeInstanceById(gi, 0, cis), NVML_SUCCESS);
        assert_ptr_equal(cis[0], ci);
        assert_int_equal(vgpu_nvml_gpus(gpus, 3, &ngpus), 0);
        assert_int_equal(gpus[1].n_mig, 4);
        assert_int_equal(gpus[1].mig[1].gi_id, 2); /* in id order, between GI 1 and GI 5 */
        m = fx_find_mig(&gpus[1], 2, 0);
        assert_int_equal(strlen(m->uuid), 40);
        assert_memory_equal(m->uuid, "MIG-", 4);
        assert_string_not_equal(m->uuid, MIG5_0);
        assert_int_equal(m->profile_slices, 2);
        assert_int_equal(m->ci_slices, 2);
        assert_int_equal(m->sm_count, 32);
        assert_int_equal(m->mem_total, 19968 * MIB);

        /* In use: a GPU instance with a compute instance; memory a live process holds. */
        assert_int_equal(fx_api.nvmlGpuInstanceDestroy(gi), NVML_ERROR_IN_USE);
        fx_write_mem(fx, "gpu1-gi2", getpid(), 4096);
        assert_int_equal(fx_api.nvmlComputeInstanceDestroy(ci), NVML_ERROR_IN_USE);
        fx_remove_mem(fx, "gpu1-gi2", getpid());
        fx_write_mem(fx, "gpu1-gi2", fx_dead_pid(), 4096);
        assert_int_equal(fx_api.nvmlComputeInstanceDestroy(ci), NVML_SUCCESS);
        assert_int_equal(fx_api.nvmlComputeInstanceGetInfo_v2(ci, &ci_info),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(fx_api.nvmlComputeInstanceDestroy(ci), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(fx_api.nvmlGpuInstanceGetComputeInstances(gi, 1, cis, &n), NVML_SUCCESS);
        assert_int_equal(n, 0);
        assert_int_equal(fx_api.nvmlGpuInstanceDestroy(gi), NVML_SUCCESS);
        assert_int_equal(fx_api.nvmlGpuInstanceGetInfo(gi, &gi_info), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(fx_api.nvmlGpuInstanceDestroy(gi), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceById(fx->dev[1], 2, &other),
                         NVML_ERROR_NOT_FOUND);
        assert_int_equal(fx_api.nvmlGpuInstanceGetInfo((struct nvml_gpu_instance *)&n, &gi_info),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(vgpu_nvml_gpus(gpus, 3, &ngpus), 0);
        assert_int_equal(gpus[1].n_mig, 3);

        /* The GPU instances that were there still are, with their compute instances. */
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceById(fx->dev[1], 5, &other), NVML_SUCCESS);
        assert_int_equal(fx_api.nvmlGpuInstanceGetComputeInstances(other, 0, cis, &n),
                         NVML_SUCCESS);
        assert_int_equal(n, 2);
        assert_int_equal(fx_api.nvmlComputeInstanceGetInfo_v2(cis[1], &ci_info), NVML_SUCCESS);
        assert_int_equal(ci_info.id, 1);
        assert_int_equal(ci_info.placement.start, 1);
}

/* What vgpud does with --mig-admin, through vgpu's loader: make and destroy GPU instances. */
void test_mig_loader(void **state)
{
        struct fixture *fx = *state;
        struct vgpu_nvml_gpu gpus[3];
        struct vgpu_nvml_mig m = {.gi_id = 99};
        const struct vgpu_nvml_mig *five;
        size_t n;

        /* The instances that exist, placed. */
        assert_int_equal(vgpu_nvml_gpus(gpus, 3, &n), 0);
        assert_true(gpus[1].mig[0].placed);
        assert_int_equal(gpus[1].mig[0].gi_profile_id, 19);
        assert_int_equal(gpus[1].mig[0].start, 0);
        assert_int_equal(gpus[1].mig[0].size, 1);
        five = fx_find_mig(&gpus[1], 5, 1);
        assert_true(five->placed);
        assert_int_equal(five->gi_profile_id, 14);
        assert_int_equal(five->start, 4);
        assert_int_equal(five->size, 2);

        /* Taken, not a placement, not a profile, MIG off: refused, nothing written. */
        assert_int_equal(vgpu_nvml_gi_create(1, 19, 0, &m), -ENOMEM);
        assert_int_equal(vgpu_nvml_gi_create(1, 0, 0, &m), -ENOMEM);
        assert_int_equal(vgpu_nvml_gi_create(1, 19, 7, &m), -EINVAL);
        assert_int_equal(vgpu_nvml_gi_create(1, 77, 0, &m), -EINVAL);
        assert_true(vgpu_nvml_gi_create(0, 19, 1, &m) < 0);
        assert_int_equal(m.gi_id, 99);

        /* A 2g at slices 2-3 with a compute instance over all of it. */
        assert_int_equal(vgpu_nvml_gi_create(1, 14, 2, &m), 0);
        assert_int_equal(m.gi_id, 2);
        assert_int_equal(m.ci_id, 0);
        assert_int_equal(m.profile_slices, 2);
        assert_int_equal(m.ci_slices, 2);
        assert_int_equal(m.sm_count, 32);
        assert_int_equal(m.mem_total, 19968 * MIB);
        assert_true(m.placed);
        assert_int_equal(m.gi_profile_id, 14);
        assert_int_equal(m.start, 2);
        assert_int_equal(m.size, 2);
        assert_memory_equal(m.uuid, "MIG-", 4);
        assert_int_equal(vgpu_nvml_gi_create(1, 19, 3, &m), -ENOMEM);

        /* Busy while a live process holds memory on it; then gone, with its compute instance. */
        fx_write_mem(fx, "gpu1-gi2", getpid(), GIB);
        assert_int_equal(vgpu_nvml_gi_destroy(1, 2), -EBUSY);
        fx_remove_mem(fx, "gpu1-gi2", getpid());
        assert_int_equal(vgpu_nvml_gi_destroy(1, 2), 0);
        assert_int_equal(vgpu_nvml_gi_destroy(1, 2), -ENOENT);
        assert_int_equal(vgpu_nvml_gpus(gpus, 3, &n), 0);
        assert_int_equal(gpus[1].n_mig, 3);
        /* GPU instance 5 and its two compute instances go together. */
        assert_int_equal(vgpu_nvml_gi_destroy(1, 5), 0);
        assert_int_equal(vgpu_nvml_gpus(gpus, 3, &n), 0);
        assert_int_equal(gpus[1].n_mig, 1);
        assert_int_equal(gpus[1].mig[0].gi_id, 1);

        /* The whole GPU's instance is GPU instance 0, as drivers number it. */
        assert_int_equal(vgpu_nvml_gi_destroy(1, 1), 0);
        assert_int_equal(vgpu_nvml_gi_create(1, 0, 0, &m), 0);
        assert_int_equal(m.gi_id, 0);
        assert_int_equal(m.size, 8);
        assert_int_equal(m.sm_count, 132);
        assert_int_equal(vgpu_nvml_gpus(gpus, 3, &n), 0);
        assert_int_equal(gpus[1].n_gi, 1);
        assert_int_equal(gpus[1].gi[0].id, 0);
        assert_int_equal(vgpu_nvml_gi_destroy(1, 0), 0);
}

/* The GPU instance and compute instance ids gpus.json lists on GPU 1, as "1:0 5:0 5:1 ". */
static void json_instances(const char *dir, char *buf, size_t len)
{
        char path[128];
        json_t *root, *gis, *gi, *cis, *ci;
        size_t i, k, off = 0;

        snprintf(path, sizeof(path), "%s/gpus.json", dir);
        root = json_load_file(path, 0, NULL);
        assert_non_null(root);
        buf[0] = '\0';
        gis = json_object_get(json_array_get(json_object_get(root, "gpus"), 1), "gpu_instances");
        json_array_foreach(gis, i, gi)
        {
                cis = json_object_get(gi, "compute_instances");
                json_array_foreach(cis, k, ci)
                {
                        off += (size_t)snprintf(buf + off, len - off, "%lld:%lld ",
                                                json_integer_value(json_object_get(gi, "id")),
                                                json_integer_value(json_object_get(ci, "id")));
                        assert_true(off < len);
                }
        }
        json_decref(root);
}

/* In a child: create a 1g at slice 1 with one compute instance; 0, or the failing step. */
static int child_create(struct nvml_device *dev)
{
        struct nvml_gpu_instance *gi;
        struct nvml_compute_instance *ci;

        if (create_gi(dev, 19, 1, 1, &gi) != NVML_SUCCESS)
                return 1;
        if (fx_api.nvmlGpuInstanceCreateComputeInstance(gi, 0, &ci) != NVML_SUCCESS)
                return 2;
        return 0;
}

void test_mig_other_process(void **state)
{
        struct fixture *fx = *state;
        struct nvml_gpu_instance *gi;
        struct nvml_compute_instance *ci;
        struct vgpu_nvml_gpu gpus[3];
        char ids[128];
        int st, go[2];
        unsigned n;
        size_t ngpus;
        pid_t pid;

        /* A child creates; this process, whose reading is older, sees it. */
        json_instances(fx->dir, ids, sizeof(ids));
        assert_string_equal(ids, "1:0 5:0 5:1 ");
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_create(fx->dev[1]));
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        json_instances(fx->dir, ids, sizeof(ids));
        assert_string_equal(ids, "1:0 2:0 5:0 5:1 ");
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceById(fx->dev[1], 2, &gi), NVML_SUCCESS);
        assert_int_equal(vgpu_nvml_gpus(gpus, 3, &ngpus), 0);
        assert_int_equal(gpus[1].n_mig, 4);
        assert_int_equal(fx_find_mig(&gpus[1], 2, 0)->ci_slices, 1);

        /* This process destroys; a child that read gpus.json before sees it gone. */
        assert_int_equal(pipe(go), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct nvml_gpu_instance *g;
                char c;

                if (fx_api.nvmlDeviceGetGpuInstanceById(fx->dev[1], 2, &g) != NVML_SUCCESS)
                        _exit(1);
                if (read(go[0], &c, 1) != 1)
                        _exit(2);
                _exit(fx_api.nvmlDeviceGetGpuInstanceById(fx->dev[1], 2, &g) == NVML_ERROR_NOT_FOUND
                              ? 0
                              : 3);
        }
        assert_int_equal(fx_api.nvmlGpuInstanceGetComputeInstances(gi, 0, &ci, &n), NVML_SUCCESS);
        assert_int_equal(n, 1);
        assert_int_equal(fx_api.nvmlComputeInstanceDestroy(ci), NVML_SUCCESS);
        assert_int_equal(fx_api.nvmlGpuInstanceDestroy(gi), NVML_SUCCESS);
        assert_int_equal(write(go[1], "x", 1), 1);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        close(go[0]);
        close(go[1]);
        json_instances(fx->dir, ids, sizeof(ids));
        assert_string_equal(ids, "1:0 5:0 5:1 ");
}
