/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Placement: where vGPUs and MIG GPU instances sit on one physical GPU. A struct layout holds a
 * GPU's mode, its GPU instances and its vGPUs, decides which types are creatable at which
 * placement IDs, and keeps the rules: no over-commit, no overlap, max instances. Pure logic, no
 * I/O.
 */
#ifndef VGPU_CORE_LAYOUT_H
#define VGPU_CORE_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/catalog.h"

enum layout_mode {
        LAYOUT_HOMOGENEOUS = 0,   /* time-sliced, equal size: one type per GPU */
        LAYOUT_HETEROGENEOUS = 1, /* time-sliced, mixed sizes at placement IDs (slots) */
        LAYOUT_MIG = 2,           /* MIG: GPU instances, MIG-backed or time-sliced inside */
};

/* One vGPU on the GPU. Framebuffer offsets are bytes from the start of the GPU's framebuffer. */
struct layout_vgpu {
        uint32_t id; /* the caller's handle, unique on this layout */
        const struct vgpu_type *type;
        uint32_t placement; /* placement ID (meaning per mode: docs/placement.md) */
        uint32_t gi;        /* GPU instance ID it lives in; 0 when not MIG */
        uint64_t fb_offset;
        uint64_t fb_size;
};

/* One MIG GPU instance. IDs start at 1; 0 means "none". */
struct layout_gi {
        uint32_t id;
        const struct mig_profile *profile;
        uint32_t start; /* first memory slice */
        bool implicit;  /* made for one MIG-backed vGPU; destroyed with it */
};

/* Where a vGPU could go: a GPU instance (0 = none, or a new one for MIG-backed types) and an ID. */
struct layout_slot {
        uint32_t gi;
        uint32_t placement;
};

/* A creation request: 0 / -1 leave the choice to the layout. */
struct layout_req {
        uint32_t gi;       /* GPU instance to use; 0: any (or a new one for MIG-backed types) */
        int64_t placement; /* placement ID; -1: the best free one */
};

#define LAYOUT_REQ_ANY ((struct layout_req){.gi = 0, .placement = -1})

struct layout {
        const struct gpu_model *model;
        enum layout_mode mode;
        size_t n_vgpus;
        struct layout_vgpu vgpus[CATALOG_MAX_VGPUS_PER_GPU];
        size_t n_gis;
        struct layout_gi gis[CATALOG_MAX_MEM_SLICES];
};

/* layout_init - an empty layout of model m in homogeneous mode. */
void layout_init(struct layout *l, const struct gpu_model *m);

/*
 * layout_set_mode - change the GPU's mode. Only an empty GPU changes mode (VGPU_EGPU_BUSY);
 * MIG needs a MIG-capable model (VGPU_ENO_MIG); heterogeneous needs a type that allows mixed size
 * (VGPU_EMODE). Returns 0 or a negative code; l is unchanged on failure.
 */
int layout_set_mode(struct layout *l, enum layout_mode mode);

/*
 * layout_check - decide where a vGPU of type t would go for request req, without changing l.
 * On success fills *ret (id 0) and returns 0, or returns 1 when a MIG-backed vGPU would get a new
 * (implicit) GPU instance, whose start is ret->placement. Fails with a negative code naming the
 * rule that refuses it (VGPU_ETYPE_MODEL, VGPU_EMODE, VGPU_ETYPE_MIX, VGPU_EMAX_INSTANCES,
 * VGPU_ENO_SPACE, VGPU_EPLACEMENT, VGPU_EPLACEMENT_BUSY, VGPU_ENO_GI, VGPU_EGI_BUSY,
 * VGPU_EGI_PROFILE); *ret untouched then.
 */
int layout_check(const struct layout *l, const struct vgpu_type *t, const struct layout_req *req,
                 struct layout_vgpu *ret);

/*
 * layout_create - place a vGPU of type t with handle id (unique: VGPU_EEXIST) as layout_check
 * decides, creating its implicit GPU instance when needed. Fills *ret if ret is not NULL.
 * Returns 0 or a negative code; l is unchanged on failure.
 */
int layout_create(struct layout *l, const struct vgpu_type *t, const struct layout_req *req,
                  uint32_t id, struct layout_vgpu *ret);

/*
 * layout_destroy - remove the vGPU with handle id (VGPU_ENO_VGPU if none), and its GPU instance
 * when that was implicit. Returns 0 or a negative code.
 */
int layout_destroy(struct layout *l, uint32_t id);

/* layout_find - the vGPU with handle id, or NULL. The pointer is valid until l changes. */
const struct layout_vgpu *layout_find(const struct layout *l, uint32_t id);

/* layout_find_gi - the GPU instance with this ID, or NULL. Valid until l changes. */
const struct layout_gi *layout_find_gi(const struct layout *l, uint32_t gi);

/*
 * layout_slots - every placement at which a vGPU of type t can be created now, in order, up to
 * cap entries in ret (which may be NULL with cap 0). Returns the total count (which may exceed
 * cap), 0 when t is not creatable now.
 */
size_t layout_slots(const struct layout *l, const struct vgpu_type *t, struct layout_slot *ret,
                    size_t cap);

/* layout_creatable - whether at least one vGPU of type t can be created now. */
bool layout_creatable(const struct layout *l, const struct vgpu_type *t);

/*
 * layout_gi_create - create a GPU instance of profile p at start memory slice start (-1: the best
 * free start), with ID id (0: the lowest free ID; a restore passes the one it saved). MIG mode
 * only. Returns 0 and fills *ret (if not NULL), or VGPU_EMODE, VGPU_EPLACEMENT,
 * VGPU_EPLACEMENT_BUSY, VGPU_EMAX_INSTANCES, VGPU_ENO_SPACE, VGPU_EEXIST; l unchanged on failure.
 */
int layout_gi_create(struct layout *l, const struct mig_profile *p, int64_t start, uint32_t id,
                     struct layout_gi *ret);

/*
 * layout_gi_destroy - destroy an empty GPU instance (VGPU_ENO_GI if none, VGPU_EGI_BUSY if it
 * holds vGPUs). Returns 0 or a negative code.
 */
int layout_gi_destroy(struct layout *l, uint32_t gi);

/*
 * layout_gi_free_starts - bitmask of the start slices at which a GPU instance of profile p can be
 * created now (0 when none, or when not in MIG mode).
 */
uint32_t layout_gi_free_starts(const struct layout *l, const struct mig_profile *p);

/*
 * layout_gi_free_count - how many more GPU instances of profile p fit now, placed one after
 * another (the "Free" of `nvidia-smi mig -lgip`'s Free/Total).
 */
uint32_t layout_gi_free_count(const struct layout *l, const struct mig_profile *p);

/*
 * Device addresses: every physical GPU of a host has a 1 TiB window above LAYOUT_VA_BASE (32 TiB:
 * above the shadow memory of AddressSanitizer, below where mmap places things), and a
 * vGPU's framebuffer sits in it at its framebuffer offset. Windows never overlap, so a guest can
 * hold vGPUs of several GPUs, and the address survives suspend-resume and migration.
 */
#define LAYOUT_VA_BASE       UINT64_C(0x200000000000)
#define LAYOUT_VA_GPU_STRIDE UINT64_C(0x10000000000)

/* layout_device_address - the device address of fb_offset on physical GPU gpu_index. */
static inline uint64_t layout_device_address(uint32_t gpu_index, uint64_t fb_offset)
{
        return LAYOUT_VA_BASE + (uint64_t)gpu_index * LAYOUT_VA_GPU_STRIDE + fb_offset;
}

/* layout_fb_used - bytes of framebuffer held by vGPUs. */
uint64_t layout_fb_used(const struct layout *l);

/* layout_mode_name - "homogeneous", "heterogeneous", "mig". */
const char *layout_mode_name(enum layout_mode mode);

/* layout_mode_parse - the mode named s (also "equal-size", "mixed-size"); 0 or -EINVAL. */
int layout_mode_parse(const char *s, enum layout_mode *ret_mode);

#endif
