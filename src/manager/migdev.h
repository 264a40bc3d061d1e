/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MIG on real GPUs (the cuda backend, docs/cuda.md "MIG"): a GPU that NVML reports in MIG mode
 * gets the GPU instances that exist on it as its layout's, and each one's MIG device (its first
 * compute instance) is where the engines of its vGPUs run. vgpud creates or destroys GPU
 * instances through NVML only when its operator allowed it (--mig-admin); it never changes a
 * GPU's MIG mode. Functions named _locked expect the manager's lock held.
 */
#ifndef VGPU_MANAGER_MIGDEV_H
#define VGPU_MANAGER_MIGDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/nvml.h"

struct manager;
struct mgr_gpu;
struct mig_profile;

/*
 * migdev_discover - for each GPU of m matched to one of NVML's (found, n; by UUID): note its
 * NVML index; when it is in MIG mode, set its layout to MIG mode and give it the GPU instances
 * that exist, with their IDs, profiles and placements, and note their MIG devices. A GPU
 * instance the catalog has no profile for, or that NVML cannot place, is left out with a
 * warning. Only for an empty layout (at startup, before the state is restored). 0, or a
 * negative code with the reason logged.
 */
int migdev_discover(struct manager *m, const struct vgpu_nvml_gpu *found, size_t n);

/*
 * vgpud's ID of the GPU instance NVML numbers nvml_id, and back. NVML gives the instance that
 * spans a whole GPU (7g) ID 0, which means "none" in vgpud's layouts, state and API: vgpud's IDs
 * on a real GPU are NVML's plus one (each instance's JSON also shows NVML's, nvml_id).
 */
static inline uint32_t migdev_gi_of_nvml(unsigned nvml_id)
{
        return (uint32_t)nvml_id + 1;
}

static inline unsigned migdev_nvml_of_gi(uint32_t gi)
{
        return (unsigned)(gi - 1);
}

/* migdev_uuid - the MIG device ("MIG-...") vGPUs of GPU instance gi of g run on; NULL: none. */
const char *migdev_uuid(const struct mgr_gpu *g, uint32_t gi);

/*
 * migdev_gi_create_locked - create a GPU instance of profile p at memory slice start of real GPU
 * g, with one compute instance spanning it, through NVML, and add it to g's layout under the ID
 * NVML gave it (migdev_gi_of_nvml); *ret_id is that ID. Needs --mig-admin (VGPU_EMIG_ADMIN) and MIG
 * mode (VGPU_EMIG_OFF). The layout's rules are checked first (their codes); NVML's refusal is
 * VGPU_ENVML with NVML's words in err. 0 or a negative code; nothing changed on failure.
 */
int migdev_gi_create_locked(struct manager *m, struct mgr_gpu *g, const struct mig_profile *p,
                            uint32_t start, uint32_t *ret_id, char *err, size_t len);

/*
 * migdev_gi_destroy_locked - destroy GPU instance gi of real GPU g (no vGPU may be in it) with
 * its compute instances through NVML, and take it out of g's layout. Codes as
 * migdev_gi_create_locked, and VGPU_ENO_GI, VGPU_EGI_BUSY. layout_done: the layout has let it go
 * already (an implicit GPU instance, gone with its vGPU); only NVML is asked.
 */
int migdev_gi_destroy_locked(struct manager *m, struct mgr_gpu *g, uint32_t gi, bool keep_layout,
                             char *err, size_t len);

#endif
