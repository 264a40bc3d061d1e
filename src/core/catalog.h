/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The catalog: physical GPU models vgpu knows, their MIG GPU instance profiles and their vGPU
 * types, as constant tables (catalog_data.c, sources in docs/catalog.md). Pure data and lookups, no
 * I/O.
 */
#ifndef VGPU_CORE_CATALOG_H
#define VGPU_CORE_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CATALOG_MIB (UINT64_C(1) << 20)
#define CATALOG_GIB (UINT64_C(1) << 30)

/* The largest numbers any model in the table may use; unit tests hold the data to them. */
#define CATALOG_MAX_MEM_SLICES    8
#define CATALOG_MAX_VGPUS_PER_GPU 64

enum catalog_class {
        CATALOG_TIME_SLICED = 0, /* shares the whole GPU in time: H100-20C */
        CATALOG_MIG = 1,         /* owns one whole GPU instance: H100-2-20C */
};

/*
 * A MIG GPU instance profile as `nvidia-smi mig -lgip` lists it. A GPU instance of this profile
 * occupies mem_slices consecutive memory slices starting at one of the starts in placement_mask
 * (bit i set: start slice i is valid), as `nvidia-smi mig -lgipp` prints {starts}:size.
 */
struct mig_profile {
        uint32_t id;                     /* GPU instance profile ID: 19 for 1g.10gb on H100 */
        const char *name;                /* "1g.10gb", "1g.10gb+me" */
        uint32_t compute_slices;         /* the "g" in the name */
        uint32_t mem_slices;             /* placement size in memory slices */
        uint32_t max_instances;          /* per GPU, the Instances Total column */
        uint32_t placement_mask;         /* valid start memory slices */
        uint32_t mem_mib;                /* memory as -lgip reports it, MiB (0 = not public) */
        uint32_t sm_count;               /* SMs of the instance (0 = not public) */
        uint8_t ce, dec, enc, jpeg, ofa; /* copy engines and media units (-lgip second row) */
        bool p2p;                        /* the P2P column */
};

/*
 * A vGPU type. Time-sliced types also serve as time-sliced MIG-backed vGPUs: placed inside a GPU
 * instance whose memory holds them (docs/catalog.md, "time-sliced MIG-backed").
 */
struct vgpu_type {
        uint32_t id;      /* vgpu's own stable type ID (not NVIDIA's; never reused) */
        const char *name; /* as the product names it, without "NVIDIA ": "H100-20C" */
        enum catalog_class cls;
        uint32_t fb_gib;      /* framebuffer in GiB as the type's name states it */
        uint32_t max_equal;   /* time-sliced: max per GPU in equal-size mode; MIG: max per GPU */
        uint32_t max_mixed;   /* time-sliced: max per GPU in mixed-size mode (0 = not allowed) */
        uint32_t mig_profile; /* MIG: the GPU instance profile ID it occupies whole */
        bool media_ext;       /* "ME" types: with the media extensions */
};

/* A physical GPU model. */
struct gpu_model {
        const char *id;          /* the stable CLI name: "H100-80GB" */
        const char *name;        /* the marketing name: "NVIDIA H100 80GB PCIe" */
        const char *type_prefix; /* what type names start with: "H100", "H100XM" */
        const char *arch;        /* "Hopper", "Ampere", "Ada Lovelace" */
        uint16_t pci_device_id;  /* PCI device ID (0 = not known) */
        uint32_t fb_gib;         /* physical framebuffer as vGPU sizing uses it, GiB */
        uint32_t sm_count;
        uint32_t cc_major, cc_minor; /* compute capability */
        uint32_t mmio_gib;           /* MMIO space the GPU needs (0 = not public) */
        uint32_t mig_mem_slices;     /* 0: no MIG */
        uint32_t mig_compute_slices;
        const struct mig_profile *mig_profiles;
        size_t n_mig_profiles;
        const struct vgpu_type *types;
        size_t n_types;
        const char *source; /* where the figures come from (a short citation) */
};

/* catalog_models - the table of models; *ret_n receives its length. Never fails. */
const struct gpu_model *catalog_models(size_t *ret_n);

/*
 * catalog_find_model - look a model up by its id ("H100-80GB"), case-insensitively.
 * Returns the model or NULL.
 */
const struct gpu_model *catalog_find_model(const char *id);

/*
 * catalog_generic_model - the generic model of a GPU the catalog does not know: fb_gib rounded
 * down to a multiple of 8 (at least 8), types of 1/1, 1/2, 1/4 and 1/8 of it ("GEN48-12C"), no
 * MIG. Its id ("GENERIC-48GB-8.9-142SM") is found again by catalog_find_model. NULL when the
 * figures are out of range or too many distinct generic models exist. Valid for the process's
 * life; thread-safe.
 */
const struct gpu_model *catalog_generic_model(uint32_t fb_gib, uint32_t cc_major, uint32_t cc_minor,
                                              uint32_t sm_count);

/* catalog_parse_generic - the generic model an id names, or NULL. */
const struct gpu_model *catalog_parse_generic(const char *id);

/*
 * catalog_match_model - the model of a physical GPU as a driver names it: by PCI device id
 * (0 if unknown), else by the driver's name ("NVIDIA H100 80GB HBM3" is the SXM5 board).
 * Returns the model or NULL when the GPU is not in the catalog.
 */
const struct gpu_model *catalog_match_model(uint32_t pci_device_id, const char *name);

/*
 * catalog_find_type - look a type up in a model by name, with or without the "NVIDIA " prefix
 * ("H100-20C", "NVIDIA H100-20C"), case-insensitively. Returns the type or NULL.
 */
const struct vgpu_type *catalog_find_type(const struct gpu_model *m, const char *name);

/* catalog_type_by_id - the type with this vgpu type ID in model m, or NULL. */
const struct vgpu_type *catalog_type_by_id(const struct gpu_model *m, uint32_t id);

/* catalog_find_profile - the MIG profile by ID, or NULL (also when m has no MIG). */
const struct mig_profile *catalog_find_profile(const struct gpu_model *m, uint32_t id);

/* catalog_find_profile_name - by name: "3g.40gb", "MIG 3g.40gb" or the ID as a string; or NULL. */
const struct mig_profile *catalog_find_profile_name(const struct gpu_model *m, const char *name);

/* catalog_type_fb_bytes - a type's framebuffer in bytes. */
uint64_t catalog_type_fb_bytes(const struct vgpu_type *t);

/* catalog_model_fb_bytes - a model's framebuffer in bytes. */
uint64_t catalog_model_fb_bytes(const struct gpu_model *m);

/*
 * catalog_het_slots - the number of equal slots heterogeneous (mixed-size) placement divides the
 * GPU into: the largest max_mixed of any time-sliced type. 0 when no type allows mixed size.
 */
uint32_t catalog_het_slots(const struct gpu_model *m);

/*
 * catalog_het_size - how many heterogeneous slots a time-sliced type occupies (its placement
 * size): het_slots / max_mixed. 0 when the type does not allow mixed size.
 */
uint32_t catalog_het_size(const struct gpu_model *m, const struct vgpu_type *t);

/*
 * catalog_max_equal - the number of vGPUs of type t one GPU holds in equal-size mode: the
 * documented maximum, capped by what the framebuffer holds without over-commit.
 */
uint32_t catalog_max_equal(const struct gpu_model *m, const struct vgpu_type *t);

/* catalog_mem_slice_bytes - the size of one MIG memory slice in bytes (0 without MIG). */
uint64_t catalog_mem_slice_bytes(const struct gpu_model *m);

/*
 * catalog_max_in_gi - how many time-sliced vGPUs of type t one GPU instance of profile p holds
 * (time-sliced MIG-backed); 0 when t is not time-sliced or does not fit.
 */
uint32_t catalog_max_in_gi(const struct gpu_model *m, const struct mig_profile *p,
                           const struct vgpu_type *t);

/* catalog_class_name - "time-sliced" or "MIG-backed". */
const char *catalog_class_name(enum catalog_class cls);

#endif
