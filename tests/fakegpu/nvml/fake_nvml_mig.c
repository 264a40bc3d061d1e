// SPDX-License-Identifier: Apache-2.0
// The stand-in NVML's MIG management: GPU instance profiles and placements from gi_profiles,
// GPU instances and compute instances listed, created and destroyed. Each change is made to
// gpus.json under its file lock (fake_txn_*), so other processes, the CUDA stand-in among them,
// see it. New GPU instances take the smallest free id from 1 (0 for one over the whole GPU),
// compute instances from 0.
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/export.h"
#include "fake_nvml.h"

/* The compute slices of each NVML_COMPUTE_INSTANCE_PROFILE_*; 0 for one never offered. */
static const unsigned ci_profile_slices[NVML_COMPUTE_INSTANCE_PROFILE_COUNT] = {
        [NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE] = 1, [NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE] = 2,
        [NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE] = 3, [NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE] = 4,
        [NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE] = 7, [NVML_COMPUTE_INSTANCE_PROFILE_8_SLICE] = 8,
        [NVML_COMPUTE_INSTANCE_PROFILE_6_SLICE] = 6,
};

void fake_profile_engines(const struct fake_profile *prof, struct fake_engines *ret)
{
        /* About an H100's: a copy engine, a decoder and a JPEG engine per slice, the OFA whole. */
        ret->copy = prof->slices;
        ret->decoder = prof->slices;
        ret->encoder = 0;
        ret->jpeg = prof->slices;
        ret->ofa = prof->slices >= 7 ? 1 : 0;
}

/* The memory slices a placement covers, one bit each. */
static unsigned long long slice_mask(const struct fake_placement *p)
{
        return ((1ULL << p->size) - 1) << p->start;
}

/* The memory slices the GPU's instances occupy. */
static unsigned long long gpu_occupied(const struct fake_gpu *gpu)
{
        unsigned long long m = 0;

        for (unsigned i = 0; i < gpu->n_gi; i++)
                m |= slice_mask(&gpu->gi[i].placement);
        return m;
}

static unsigned gi_count_of(const struct fake_gpu *gpu, const struct fake_profile *prof)
{
        unsigned n = 0;

        for (unsigned i = 0; i < gpu->n_gi; i++)
                n += &gpu->profiles[gpu->gi[i].profile] == prof;
        return n;
}

/*
 * How many more instances of prof fit: free placements taken in gpus.json's order, each where it
 * overlaps none taken before, up to what is left of the profile's count.
 */
static unsigned gi_remaining(const struct fake_gpu *gpu, const struct fake_profile *prof)
{
        unsigned long long used = gpu_occupied(gpu);
        unsigned existing = gi_count_of(gpu, prof), n = 0;

        if (existing >= prof->count)
                return 0;
        for (unsigned i = 0; i < prof->n_placements; i++) {
                unsigned long long m = slice_mask(&prof->placements[i]);

                if (!(used & m)) {
                        used |= m;
                        n++;
                }
        }
        return n < prof->count - existing ? n : prof->count - existing;
}

/*
 * Begin a call about the GPU instance profiles of a GPU, one the reference marks "Requires
 * privileged user": NVML_SUCCESS with the lock held, *ref and *ret_prof (the profile with id
 * profile_id) filled; or a status without the lock. NOT_SUPPORTED for a GPU without MIG, or out
 * of MIG mode unless any_mode; then NO_PERMISSION for a caller without the privilege.
 */
static int profile_enter(struct nvml_device *device, unsigned profile_id, bool any_mode,
                         struct fake_ref *ref, const struct fake_profile **ret_prof)
{
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = fake_dev_ref(device, ref);
        if (r == NVML_SUCCESS && ref->ci)
                r = NVML_ERROR_INVALID_ARGUMENT;
        else if (r == NVML_SUCCESS &&
                 (!ref->gpu->mig_capable || (!any_mode && !ref->gpu->mig_mode)))
                r = NVML_ERROR_NOT_SUPPORTED;
        if (r == NVML_SUCCESS)
                r = fake_privileged();
        if (r == NVML_SUCCESS) {
                *ret_prof = fake_profile_by_id(ref->gpu, profile_id);
                if (!*ret_prof)
                        r = NVML_ERROR_INVALID_ARGUMENT;
        }
        return r == NVML_SUCCESS ? r : fake_leave(r);
}

VGPU_EXPORT int nvmlDeviceGetGpuInstanceProfileInfo(struct nvml_device *device, unsigned profile,
                                                    struct nvml_gpu_instance_profile_info *info)
{
        const struct fake_profile *prof = NULL;
        struct fake_engines eng;
        struct fake_ref ref;
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = fake_dev_ref(device, &ref);
        if (r == NVML_SUCCESS && (ref.ci || !info || profile >= NVML_GPU_INSTANCE_PROFILE_COUNT))
                r = NVML_ERROR_INVALID_ARGUMENT;
        else if (r == NVML_SUCCESS && !ref.gpu->mig_mode)
                r = NVML_ERROR_NOT_SUPPORTED;
        for (unsigned i = 0; r == NVML_SUCCESS && i < ref.gpu->n_profiles; i++) {
                if (ref.gpu->profiles[i].index == profile)
                        prof = &ref.gpu->profiles[i];
        }
        if (r == NVML_SUCCESS && !prof)
                r = NVML_ERROR_NOT_SUPPORTED;
        if (r != NVML_SUCCESS)
                return fake_leave(r);
        fake_profile_engines(prof, &eng);
        memset(info, 0, sizeof(*info));
        info->id = prof->id;
        info->is_p2p_supported = 0;
        info->slice_count = prof->slices;
        info->instance_count = prof->count;
        info->multiprocessor_count = prof->sms;
        info->copy_engine_count = eng.copy;
        info->decoder_count = eng.decoder;
        info->encoder_count = eng.encoder;
        info->jpeg_count = eng.jpeg;
        info->ofa_count = eng.ofa;
        info->memory_size_mb = prof->mem_mib;
        return fake_leave(NVML_SUCCESS);
}

/* As the current reference says, the placements are those of the profile in either MIG mode. */
VGPU_EXPORT int
nvmlDeviceGetGpuInstancePossiblePlacements_v2(struct nvml_device *device, unsigned profile_id,
                                              struct nvml_gpu_instance_placement *placements,
                                              unsigned *count)
{
        const struct fake_profile *prof;
        struct fake_ref ref;
        int r = profile_enter(device, profile_id, true, &ref, &prof);

        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        for (unsigned i = 0; placements && i < prof->n_placements; i++) {
                placements[i].start = prof->placements[i].start;
                placements[i].size = prof->placements[i].size;
        }
        *count = prof->n_placements;
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int nvmlDeviceGetGpuInstanceRemainingCapacity(struct nvml_device *device,
                                                          unsigned profile_id, unsigned *count)
{
        const struct fake_profile *prof;
        struct fake_ref ref;
        int r = profile_enter(device, profile_id, false, &ref, &prof);

        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        *count = gi_remaining(ref.gpu, prof);
        return fake_leave(NVML_SUCCESS);
}

/* Whether p is exactly one of prof's placements. */
static bool placement_offered(const struct fake_profile *prof, const struct fake_placement *p)
{
        for (unsigned i = 0; i < prof->n_placements; i++) {
                if (prof->placements[i].start == p->start && prof->placements[i].size == p->size)
                        return true;
        }
        return false;
}

/* The memory slices of the GPU: the end of its profiles' furthest placement (8 on an H100). */
static unsigned gpu_slices(const struct fake_gpu *gpu)
{
        unsigned n = 0;

        for (unsigned i = 0; i < gpu->n_profiles; i++) {
                const struct fake_profile *p = &gpu->profiles[i];

                for (unsigned k = 0; k < p->n_placements; k++) {
                        if (p->placements[k].start + p->placements[k].size > n)
                                n = p->placements[k].start + p->placements[k].size;
                }
        }
        return n;
}

/*
 * A placement that is none of the profile's is INVALID_ARGUMENT; one that overlaps a GPU
 * instance, or a profile at its count, is INSUFFICIENT_RESOURCES, as the reference has it. An
 * instance over every memory slice gets id 0, as nvidia-smi shows drivers number the 7g.80gb
 * one; the others the smallest free id from 1.
 */
VGPU_EXPORT int
nvmlDeviceCreateGpuInstanceWithPlacement(struct nvml_device *device, unsigned profile_id,
                                         const struct nvml_gpu_instance_placement *placement,
                                         struct nvml_gpu_instance **gpu_instance)
{
        const struct fake_profile *prof;
        struct fake_placement want;
        struct fake_ref ref;
        unsigned id = 1;
        int lock_fd, r;

        r = profile_enter(device, profile_id, false, &ref, &prof);
        if (r != NVML_SUCCESS)
                return r;
        if (!placement || !gpu_instance)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        want.start = placement->start;
        want.size = placement->size;
        r = fake_txn_begin(&lock_fd);
        if (r != NVML_SUCCESS)
                return fake_leave(r);
        /* gpus.json was read again: look again at what other processes may have changed. */
        r = fake_dev_ref(device, &ref);
        if (r == NVML_SUCCESS && !ref.gpu->mig_mode)
                r = NVML_ERROR_NOT_SUPPORTED;
        if (r == NVML_SUCCESS) {
                prof = fake_profile_by_id(ref.gpu, profile_id);
                if (!prof || !placement_offered(prof, &want))
                        r = NVML_ERROR_INVALID_ARGUMENT;
        }
        if (r == NVML_SUCCESS &&
            ((gpu_occupied(ref.gpu) & slice_mask(&want)) ||
             gi_count_of(ref.gpu, prof) >= prof->count || ref.gpu->n_gi >= FAKE_MAX_GI))
                r = NVML_ERROR_INSUFFICIENT_RESOURCES;
        if (r == NVML_SUCCESS && want.start == 0 && want.size == gpu_slices(ref.gpu))
                id = 0;
        while (r == NVML_SUCCESS && id < FAKE_MAX_GI_ID && fake_gi_find(ref.gpu, id))
                id++;
        if (r == NVML_SUCCESS && id == FAKE_MAX_GI_ID)
                r = NVML_ERROR_INSUFFICIENT_RESOURCES;
        if (r == NVML_SUCCESS)
                r = fake_doc_add_gi(ref.gpu_index, id, profile_id, &want);
        if (r == NVML_SUCCESS)
                r = fake_txn_commit();
        fake_txn_end(lock_fd);
        if (r == NVML_SUCCESS)
                *gpu_instance = fake_gi_handle(ref.gpu_index, id);
        return fake_leave(r);
}

/*
 * IN_USE while it has compute instances or a live process holds memory on it (both, in the
 * reference's words, make it "in use").
 */
VGPU_EXPORT int nvmlGpuInstanceDestroy(struct nvml_gpu_instance *gpu_instance)
{
        struct fake_ref ref;
        int lock_fd, r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = fake_txn_begin(&lock_fd);
        if (r != NVML_SUCCESS)
                return fake_leave(r);
        r = fake_gi_ref(gpu_instance, &ref);
        if (r == NVML_SUCCESS)
                r = fake_privileged();
        if (r == NVML_SUCCESS &&
            (ref.gi->n_ci > 0 || fake_mem_used(ref.gpu_index, (int)ref.gi->id)))
                r = NVML_ERROR_IN_USE;
        if (r == NVML_SUCCESS)
                r = fake_doc_del_gi(ref.gpu_index, ref.gi->id);
        if (r == NVML_SUCCESS)
                r = fake_txn_commit();
        fake_txn_end(lock_fd);
        return fake_leave(r);
}

VGPU_EXPORT int nvmlDeviceGetGpuInstances(struct nvml_device *device, unsigned profile_id,
                                          struct nvml_gpu_instance **gpu_instances, unsigned *count)
{
        const struct fake_profile *prof;
        struct fake_ref ref;
        unsigned n = 0;
        int r = profile_enter(device, profile_id, false, &ref, &prof);

        if (r != NVML_SUCCESS)
                return r;
        if (!gpu_instances || !count)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        /* The caller's array holds the profile's instance count, as the reference requires. */
        for (unsigned i = 0; i < ref.gpu->n_gi && n < prof->count; i++) {
                if (&ref.gpu->profiles[ref.gpu->gi[i].profile] == prof)
                        gpu_instances[n++] = fake_gi_handle(ref.gpu_index, ref.gpu->gi[i].id);
        }
        *count = n;
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int nvmlDeviceGetGpuInstanceById(struct nvml_device *device, unsigned id,
                                             struct nvml_gpu_instance **gpu_instance)
{
        struct fake_ref ref;
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = fake_dev_ref(device, &ref);
        if (r == NVML_SUCCESS && (ref.ci || !gpu_instance))
                r = NVML_ERROR_INVALID_ARGUMENT;
        else if (r == NVML_SUCCESS && !ref.gpu->mig_mode)
                r = NVML_ERROR_NOT_SUPPORTED;
        else if (r == NVML_SUCCESS)
                r = fake_privileged();
        if (r == NVML_SUCCESS && !fake_gi_find(ref.gpu, id))
                r = NVML_ERROR_NOT_FOUND;
        if (r == NVML_SUCCESS)
                *gpu_instance = fake_gi_handle(ref.gpu_index, id);
        return fake_leave(r);
}

VGPU_EXPORT int nvmlGpuInstanceGetInfo(struct nvml_gpu_instance *gpu_instance,
                                       struct nvml_gpu_instance_info *info)
{
        struct fake_ref ref;
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = info ? fake_gi_ref(gpu_instance, &ref) : NVML_ERROR_INVALID_ARGUMENT;
        if (r != NVML_SUCCESS)
                return fake_leave(r);
        memset(info, 0, sizeof(*info));
        info->device = fake_gpu_handle(ref.gpu_index);
        info->id = ref.gi->id;
        info->profile_id = ref.gpu->profiles[ref.gi->profile].id;
        info->placement.start = ref.gi->placement.start;
        info->placement.size = ref.gi->placement.size;
        return fake_leave(NVML_SUCCESS);
}

/*
 * Begin a call about a GPU instance's compute instance profile (an index, which is also the
 * profile's id): NVML_SUCCESS with the lock held, *ref and *ret_slices filled. INVALID_ARGUMENT
 * for an invalid profile, NOT_SUPPORTED for one larger than the GPU instance, then, for a call
 * that needs the privilege (privileged), NO_PERMISSION for a caller without it.
 */
static int ci_profile_enter(struct nvml_gpu_instance *gpu_instance, unsigned profile,
                            bool privileged, const void *out, struct fake_ref *ref,
                            unsigned *ret_slices)
{
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = out ? fake_gi_ref(gpu_instance, ref) : NVML_ERROR_INVALID_ARGUMENT;
        if (r == NVML_SUCCESS && profile >= NVML_COMPUTE_INSTANCE_PROFILE_COUNT)
                r = NVML_ERROR_INVALID_ARGUMENT;
        if (r == NVML_SUCCESS) {
                *ret_slices = ci_profile_slices[profile];
                if (*ret_slices == 0 || *ret_slices > ref->gpu->profiles[ref->gi->profile].slices)
                        r = NVML_ERROR_NOT_SUPPORTED;
        }
        if (r == NVML_SUCCESS && privileged)
                r = fake_privileged();
        return r == NVML_SUCCESS ? r : fake_leave(r);
}

/* The compute slices a GPU instance's compute instances use. */
static unsigned gi_slices_used(const struct fake_gi *gi)
{
        unsigned n = 0;

        for (unsigned i = 0; i < gi->n_ci; i++)
                n += gi->ci[i].slices;
        return n;
}

/*
 * Every profile no larger than the GPU instance is offered, as many times as it fits in it, with
 * its share of the instance's SMs and the instance's engines shared.
 */
VGPU_EXPORT int
nvmlGpuInstanceGetComputeInstanceProfileInfo(struct nvml_gpu_instance *gpu_instance,
                                             unsigned profile, unsigned eng_profile,
                                             struct nvml_compute_instance_profile_info *info)
{
        const struct fake_profile *prof;
        struct fake_engines eng;
        struct fake_ref ref;
        unsigned slices = 0;
        int r = ci_profile_enter(gpu_instance, profile, false, info, &ref, &slices);

        if (r != NVML_SUCCESS)
                return r;
        if (eng_profile != NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        prof = &ref.gpu->profiles[ref.gi->profile];
        fake_profile_engines(prof, &eng);
        memset(info, 0, sizeof(*info));
        info->id = profile;
        info->slice_count = slices;
        info->instance_count = prof->slices / slices;
        info->multiprocessor_count = prof->sms * slices / prof->slices;
        info->shared_copy_engine_count = eng.copy;
        info->shared_decoder_count = eng.decoder;
        info->shared_encoder_count = eng.encoder;
        info->shared_jpeg_count = eng.jpeg;
        info->shared_ofa_count = eng.ofa;
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int
nvmlGpuInstanceGetComputeInstanceRemainingCapacity(struct nvml_gpu_instance *gpu_instance,
                                                   unsigned profile_id, unsigned *count)
{
        struct fake_ref ref;
        unsigned slices = 0;
        int r = ci_profile_enter(gpu_instance, profile_id, true, count, &ref, &slices);

        if (r != NVML_SUCCESS)
                return r;
        *count = (ref.gpu->profiles[ref.gi->profile].slices - gi_slices_used(ref.gi)) / slices;
        return fake_leave(NVML_SUCCESS);
}

/* A fresh "MIG-xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (a version 4 UUID). */
static int mig_uuid(char *buf, size_t len)
{
        unsigned char b[16];

        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
                return NVML_ERROR_UNKNOWN;
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
        snprintf(buf, len,
                 "MIG-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                 b[14], b[15]);
        return NVML_SUCCESS;
}

VGPU_EXPORT int
nvmlGpuInstanceCreateComputeInstance(struct nvml_gpu_instance *gpu_instance, unsigned profile_id,
                                     struct nvml_compute_instance **compute_instance)
{
        const struct fake_profile *prof = NULL;
        struct fake_ci ci = {0};
        struct fake_ref ref;
        unsigned slices = 0, gi_id = 0;
        int lock_fd, r;

        r = ci_profile_enter(gpu_instance, profile_id, true, compute_instance, &ref, &slices);
        if (r != NVML_SUCCESS)
                return r;
        r = fake_txn_begin(&lock_fd);
        if (r != NVML_SUCCESS)
                return fake_leave(r);
        r = fake_gi_ref(gpu_instance, &ref);
        if (r == NVML_SUCCESS) {
                gi_id = ref.gi->id; /* ref is stale once gpus.json is read again */
                prof = &ref.gpu->profiles[ref.gi->profile];
                if (gi_slices_used(ref.gi) + slices > prof->slices)
                        r = NVML_ERROR_INSUFFICIENT_RESOURCES;
        }
        while (r == NVML_SUCCESS && ci.id < FAKE_MAX_CI_ID && fake_ci_find(ref.gi, ci.id))
                ci.id++;
        if (r == NVML_SUCCESS && ci.id == FAKE_MAX_CI_ID)
                r = NVML_ERROR_INSUFFICIENT_RESOURCES;
        if (r == NVML_SUCCESS) {
                ci.slices = slices;
                ci.sms = prof->sms * slices / prof->slices;
                r = mig_uuid(ci.uuid, sizeof(ci.uuid));
        }
        if (r == NVML_SUCCESS)
                r = fake_doc_add_ci(ref.gpu_index, gi_id, &ci);
        if (r == NVML_SUCCESS)
                r = fake_txn_commit();
        fake_txn_end(lock_fd);
        if (r == NVML_SUCCESS)
                *compute_instance = fake_ci_handle(ref.gpu_index, gi_id, ci.id);
        return fake_leave(r);
}

/*
 * IN_USE while a live process holds memory on its GPU instance: the <dir>/mem files are kept
 * per GPU instance, so that is as near as the stand-in can tell "a process on this compute
 * instance".
 */
VGPU_EXPORT int nvmlComputeInstanceDestroy(struct nvml_compute_instance *compute_instance)
{
        struct fake_ref ref;
        int lock_fd, r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = fake_txn_begin(&lock_fd);
        if (r != NVML_SUCCESS)
                return fake_leave(r);
        r = fake_ci_ref(compute_instance, &ref);
        if (r == NVML_SUCCESS)
                r = fake_privileged();
        if (r == NVML_SUCCESS && fake_mem_used(ref.gpu_index, (int)ref.gi->id))
                r = NVML_ERROR_IN_USE;
        if (r == NVML_SUCCESS)
                r = fake_doc_del_ci(ref.gpu_index, ref.gi->id, ref.ci->id);
        if (r == NVML_SUCCESS)
                r = fake_txn_commit();
        fake_txn_end(lock_fd);
        return fake_leave(r);
}

VGPU_EXPORT int nvmlGpuInstanceGetComputeInstances(struct nvml_gpu_instance *gpu_instance,
                                                   unsigned profile_id,
                                                   struct nvml_compute_instance **compute_instances,
                                                   unsigned *count)
{
        struct fake_ref ref;
        unsigned slices = 0, n = 0;
        int r = ci_profile_enter(gpu_instance, profile_id, true, count, &ref, &slices);

        if (r != NVML_SUCCESS)
                return r;
        if (!compute_instances)
                return fake_leave(NVML_ERROR_INVALID_ARGUMENT);
        for (unsigned i = 0; i < ref.gi->n_ci; i++) {
                if (ref.gi->ci[i].slices == slices)
                        compute_instances[n++] =
                                fake_ci_handle(ref.gpu_index, ref.gi->id, ref.gi->ci[i].id);
        }
        *count = n;
        return fake_leave(NVML_SUCCESS);
}

VGPU_EXPORT int
nvmlGpuInstanceGetComputeInstanceById(struct nvml_gpu_instance *gpu_instance, unsigned id,
                                      struct nvml_compute_instance **compute_instance)
{
        struct fake_ref ref;
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = compute_instance ? fake_gi_ref(gpu_instance, &ref) : NVML_ERROR_INVALID_ARGUMENT;
        if (r == NVML_SUCCESS)
                r = fake_privileged();
        if (r == NVML_SUCCESS && !fake_ci_find(ref.gi, id))
                r = NVML_ERROR_NOT_FOUND;
        if (r == NVML_SUCCESS)
                *compute_instance = fake_ci_handle(ref.gpu_index, ref.gi->id, id);
        return fake_leave(r);
}

/*
 * Compute instances sit in their GPU instance's compute slices one after another in id order:
 * gpus.json does not record where, and nothing but this report depends on it.
 */
VGPU_EXPORT int nvmlComputeInstanceGetInfo_v2(struct nvml_compute_instance *compute_instance,
                                              struct nvml_compute_instance_info *info)
{
        struct fake_ref ref;
        unsigned start = 0;
        int r = fake_enter();

        if (r != NVML_SUCCESS)
                return r;
        r = info ? fake_ci_ref(compute_instance, &ref) : NVML_ERROR_INVALID_ARGUMENT;
        if (r != NVML_SUCCESS)
                return fake_leave(r);
        for (const struct fake_ci *c = ref.gi->ci; c < ref.ci; c++)
                start += c->slices;
        memset(info, 0, sizeof(*info));
        info->device = fake_gpu_handle(ref.gpu_index);
        info->gpu_instance = fake_gi_handle(ref.gpu_index, ref.gi->id);
        info->id = ref.ci->id;
        for (unsigned p = 0; p < NVML_COMPUTE_INSTANCE_PROFILE_COUNT; p++) {
                if (ci_profile_slices[p] == ref.ci->slices) {
                        info->profile_id = p;
                        break;
                }
        }
        info->placement.start = start;
        info->placement.size = ref.ci->slices;
        return fake_leave(NVML_SUCCESS);
}
