// SPDX-License-Identifier: Apache-2.0
/*
 * The catalog's constant tables: GPU models, their MIG GPU instance profiles and vGPU for Compute
 * types, from public NVIDIA documentation (docs/catalog.md cites every table; 0 = not public).
 * Type IDs are vgpu's own, append-only: model base (index * 0x100 + 0x100) plus a running number.
 */
#include "core/catalog.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/*
 * MIG GPU instance profile, in `nvidia-smi mig -lgip` / `-lgipp` order of columns:
 * ID, name, compute slices, memory slices (placement size), instances total, valid start slices
 * (bit i = start slice i), memory MiB (the GiB column * 1024), SMs, CE, DEC, ENC, JPEG, OFA.
 */
#define MIGP(id_, name_, g_, mem_, max_, mask_, mib_, sm_, ce_, dec_, enc_, jpeg_, ofa_)           \
        {                                                                                          \
                .id = (id_), .name = (name_), .compute_slices = (g_), .mem_slices = (mem_),        \
                .max_instances = (max_), .placement_mask = (mask_), .mem_mib = (mib_),             \
                .sm_count = (sm_), .ce = (ce_), .dec = (dec_), .enc = (enc_), .jpeg = (jpeg_),     \
                .ofa = (ofa_), .p2p = false                                                        \
        }

/* Time-sliced type: max per GPU in equal-size and in mixed-size mode (0: not in mixed size). */
#define TS(id_, name_, fb_, eq_, mx_)                                                              \
        {                                                                                          \
                .id = (id_), .name = (name_), .cls = CATALOG_TIME_SLICED, .fb_gib = (fb_),         \
                .max_equal = (eq_), .max_mixed = (mx_), .mig_profile = 0, .media_ext = false       \
        }

/* MIG-backed type: max per GPU and the GPU instance profile ID it occupies whole. */
#define MIGT(id_, name_, fb_, max_, gip_, me_)                                                     \
        {                                                                                          \
                .id = (id_), .name = (name_), .cls = CATALOG_MIG, .fb_gib = (fb_),                 \
                .max_equal = (max_), .max_mixed = 0, .mig_profile = (gip_), .media_ext = (me_)     \
        }

/* Placement masks of the 8-memory-slice GA100/GH100 layout ({starts}:size from -lgipp). */
#define START_0_TO_6 0x7fu /* {0,1,2,3,4,5,6} */
#define START_EVEN4  0x55u /* {0,2,4,6} */
#define START_EVEN3  0x15u /* {0,2,4} */
#define START_0_4    0x11u /* {0,4} */
#define START_0      0x01u /* {0} */

/* --- H100 80GB PCIe ------------------------------------------------------------------------- */

static const struct mig_profile h100_pcie_mig[] = {
        MIGP(19, "1g.10gb", 1, 1, 7, START_0_TO_6, 9984, 14, 1, 1, 0, 1, 0),
        MIGP(20, "1g.10gb+me", 1, 1, 1, START_0_TO_6, 9984, 14, 1, 1, 0, 1, 1),
        MIGP(15, "1g.20gb", 1, 2, 4, START_EVEN4, 20096, 14, 1, 1, 0, 1, 0),
        MIGP(14, "2g.20gb", 2, 2, 3, START_EVEN3, 20096, 30, 2, 2, 0, 2, 0),
        MIGP(9, "3g.40gb", 3, 4, 2, START_0_4, 40448, 46, 3, 3, 0, 3, 0),
        MIGP(5, "4g.40gb", 4, 4, 1, START_0, 40448, 62, 4, 4, 0, 4, 0),
        MIGP(0, "7g.80gb", 7, 8, 1, START_0, 81152, 114, 8, 7, 0, 7, 1),
};

static const struct vgpu_type h100_pcie_types[] = {
        TS(0x100, "H100-80C", 80, 1, 1),
        TS(0x101, "H100-40C", 40, 2, 2),
        TS(0x102, "H100-20C", 20, 4, 4),
        TS(0x103, "H100-16C", 16, 6, 4), /* 6 as published; 6 x 16 > 80, the code caps it */
        TS(0x104, "H100-10C", 10, 8, 8),
        TS(0x105, "H100-8C", 8, 10, 8),
        TS(0x106, "H100-5C", 5, 16, 16),
        TS(0x107, "H100-4C", 4, 20, 16),
        MIGT(0x108, "H100-7-80C", 80, 1, 0, false),
        MIGT(0x109, "H100-4-40C", 40, 1, 5, false),
        MIGT(0x10a, "H100-3-40C", 40, 2, 9, false),
        MIGT(0x10b, "H100-2-20C", 20, 3, 14, false),
        MIGT(0x10c, "H100-1-20C", 20, 4, 15, false),
        MIGT(0x10d, "H100-1-10C", 10, 7, 19, false),
        MIGT(0x10e, "H100-1-10CME", 10, 1, 20, true),
};

/* --- H100 SXM5 80GB (same MIG layout and type numbers, more SMs) ---------------------------- */

static const struct mig_profile h100_sxm_mig[] = {
        MIGP(19, "1g.10gb", 1, 1, 7, START_0_TO_6, 9984, 16, 1, 1, 0, 1, 0),
        MIGP(20, "1g.10gb+me", 1, 1, 1, START_0_TO_6, 9984, 16, 1, 1, 0, 1, 1),
        MIGP(15, "1g.20gb", 1, 2, 4, START_EVEN4, 20096, 26, 1, 1, 0, 1, 0),
        MIGP(14, "2g.20gb", 2, 2, 3, START_EVEN3, 20096, 32, 2, 2, 0, 2, 0),
        MIGP(9, "3g.40gb", 3, 4, 2, START_0_4, 40448, 60, 3, 3, 0, 3, 0),
        MIGP(5, "4g.40gb", 4, 4, 1, START_0, 40448, 64, 4, 4, 0, 4, 0),
        MIGP(0, "7g.80gb", 7, 8, 1, START_0, 81152, 132, 8, 7, 0, 7, 1),
};

static const struct vgpu_type h100_sxm_types[] = {
        TS(0x200, "H100XM-80C", 80, 1, 1),
        TS(0x201, "H100XM-40C", 40, 2, 2),
        TS(0x202, "H100XM-20C", 20, 4, 4),
        TS(0x203, "H100XM-16C", 16, 6, 4), /* as published, see H100-16C */
        TS(0x204, "H100XM-10C", 10, 8, 8),
        TS(0x205, "H100XM-8C", 8, 10, 8),
        TS(0x206, "H100XM-5C", 5, 16, 16),
        TS(0x207, "H100XM-4C", 4, 20, 16),
        MIGT(0x208, "H100XM-7-80C", 80, 1, 0, false),
        MIGT(0x209, "H100XM-4-40C", 40, 1, 5, false),
        MIGT(0x20a, "H100XM-3-40C", 40, 2, 9, false),
        MIGT(0x20b, "H100XM-2-20C", 20, 3, 14, false),
        MIGT(0x20c, "H100XM-1-20C", 20, 4, 15, false),
        MIGT(0x20d, "H100XM-1-10C", 10, 7, 19, false),
        MIGT(0x20e, "H100XM-1-10CME", 10, 1, 20, true),
};

/* --- H200 NVL (H200 PCIe 141GB): -lgip memory and SM columns not public ----------------------- */

static const struct mig_profile h200_nvl_mig[] = {
        MIGP(19, "1g.18gb", 1, 1, 7, START_0_TO_6, 0, 0, 1, 1, 0, 1, 0),
        MIGP(20, "1g.18gb+me", 1, 1, 1, START_0_TO_6, 0, 0, 1, 1, 0, 1, 1),
        MIGP(15, "1g.35gb", 1, 2, 4, START_EVEN4, 0, 0, 1, 1, 0, 1, 0),
        MIGP(14, "2g.35gb", 2, 2, 3, START_EVEN3, 0, 0, 2, 2, 0, 2, 0),
        MIGP(9, "3g.71gb", 3, 4, 2, START_0_4, 0, 0, 3, 3, 0, 3, 0),
        MIGP(5, "4g.71gb", 4, 4, 1, START_0, 0, 0, 4, 4, 0, 4, 0),
        MIGP(0, "7g.141gb", 7, 8, 1, START_0, 0, 0, 8, 7, 0, 7, 1),
};

/*
 * Published mixed-size maxima are 1, 2, 4, 5, 8, 10, 16, 20, 32. 5, 10 and 20 do not divide the
 * 32 slots of vgpu's mixed-size model, so those types get the next lower divisor (4, 8, 16).
 */
static const struct vgpu_type h200_nvl_types[] = {
        TS(0x300, "H200-141C", 141, 1, 1),
        TS(0x301, "H200-70C", 70, 2, 2),
        TS(0x302, "H200-35C", 35, 4, 4),
        TS(0x303, "H200-28C", 28, 5, 4),
        TS(0x304, "H200-17C", 17, 8, 8),
        TS(0x305, "H200-14C", 14, 10, 8),
        TS(0x306, "H200-8C", 8, 16, 16),
        TS(0x307, "H200-7C", 7, 20, 16),
        TS(0x308, "H200-4C", 4, 32, 32),
        MIGT(0x309, "H200-7-141C", 141, 1, 0, false),
        MIGT(0x30a, "H200-4-71C", 71, 1, 5, false),
        MIGT(0x30b, "H200-3-71C", 71, 2, 9, false),
        MIGT(0x30c, "H200-2-35C", 35, 3, 14, false),
        MIGT(0x30d, "H200-1-35C", 35, 4, 15, false),
        MIGT(0x30e, "H200-1-18C", 18, 7, 19, false),
        MIGT(0x30f, "H200-1-18CME", 18, 1, 20, true),
};

/* --- A100 PCIe 80GB --------------------------------------------------------------------------- */

static const struct mig_profile a100_80gb_mig[] = {
        MIGP(19, "1g.10gb", 1, 1, 7, START_0_TO_6, 9728, 14, 1, 0, 0, 0, 0),
        MIGP(20, "1g.10gb+me", 1, 1, 1, START_0_TO_6, 9728, 14, 1, 1, 0, 1, 1),
        MIGP(15, "1g.20gb", 1, 2, 4, START_EVEN4, 19968, 14, 1, 1, 0, 0, 0),
        MIGP(14, "2g.20gb", 2, 2, 3, START_EVEN3, 19968, 28, 2, 1, 0, 0, 0),
        MIGP(9, "3g.40gb", 3, 4, 2, START_0_4, 40192, 42, 3, 2, 0, 0, 0),
        MIGP(5, "4g.40gb", 4, 4, 1, START_0, 40192, 56, 4, 2, 0, 0, 0),
        MIGP(0, "7g.80gb", 7, 8, 1, START_0, 80896, 98, 7, 5, 0, 1, 1),
};

static const struct vgpu_type a100_80gb_types[] = {
        TS(0x400, "A100D-80C", 80, 1, 1),
        TS(0x401, "A100D-40C", 40, 2, 2),
        TS(0x402, "A100D-20C", 20, 4, 4),
        TS(0x403, "A100D-16C", 16, 5, 4),
        TS(0x404, "A100D-10C", 10, 8, 8),
        TS(0x405, "A100D-8C", 8, 10, 8),
        TS(0x406, "A100D-4C", 4, 20, 16),
        MIGT(0x407, "A100D-7-80C", 80, 1, 0, false),
        MIGT(0x408, "A100D-4-40C", 40, 1, 5, false),
        MIGT(0x409, "A100D-3-40C", 40, 2, 9, false),
        MIGT(0x40a, "A100D-2-20C", 20, 3, 14, false),
        MIGT(0x40b, "A100D-1-20C", 20, 4, 15, false),
        MIGT(0x40c, "A100D-1-10C", 10, 7, 19, false),
        MIGT(0x40d, "A100D-1-10CME", 10, 1, 20, true),
};

/* --- A100 PCIe 40GB --------------------------------------------------------------------------- */

static const struct mig_profile a100_40gb_mig[] = {
        MIGP(19, "1g.5gb", 1, 1, 7, START_0_TO_6, 4864, 14, 1, 0, 0, 0, 0),
        MIGP(20, "1g.5gb+me", 1, 1, 1, START_0_TO_6, 4864, 14, 1, 1, 0, 1, 1),
        MIGP(15, "1g.10gb", 1, 2, 4, START_EVEN4, 9856, 14, 1, 1, 0, 0, 0),
        MIGP(14, "2g.10gb", 2, 2, 3, START_EVEN3, 9856, 28, 2, 1, 0, 0, 0),
        MIGP(9, "3g.20gb", 3, 4, 2, START_0_4, 19968, 42, 3, 2, 0, 0, 0),
        MIGP(5, "4g.20gb", 4, 4, 1, START_0, 19968, 56, 4, 2, 0, 0, 0),
        MIGP(0, "7g.40gb", 7, 8, 1, START_0, 40192, 98, 7, 5, 0, 1, 1),
};

static const struct vgpu_type a100_40gb_types[] = {
        TS(0x500, "A100-40C", 40, 1, 1),
        TS(0x501, "A100-20C", 20, 2, 2),
        TS(0x502, "A100-10C", 10, 4, 4),
        TS(0x503, "A100-8C", 8, 5, 4),
        TS(0x504, "A100-5C", 5, 8, 8),
        TS(0x505, "A100-4C", 4, 10, 8),
        MIGT(0x506, "A100-7-40C", 40, 1, 0, false),
        MIGT(0x507, "A100-4-20C", 20, 1, 5, false),
        MIGT(0x508, "A100-3-20C", 20, 2, 9, false),
        MIGT(0x509, "A100-2-10C", 10, 3, 14, false),
        MIGT(0x50a, "A100-1-10C", 10, 4, 15, false),
        MIGT(0x50b, "A100-1-5C", 5, 7, 19, false),
        MIGT(0x50c, "A100-1-5CME", 5, 1, 20, true),
};

/* --- Ada Lovelace: no MIG --------------------------------------------------------------------- */

static const struct vgpu_type l40s_types[] = {
        TS(0x600, "L40S-48C", 48, 1, 1), TS(0x601, "L40S-24C", 24, 2, 2),
        TS(0x602, "L40S-16C", 16, 3, 2), TS(0x603, "L40S-12C", 12, 4, 4),
        TS(0x604, "L40S-8C", 8, 6, 4),   TS(0x605, "L40S-6C", 6, 8, 8),
        TS(0x606, "L40S-4C", 4, 12, 8),
};

static const struct vgpu_type l40_types[] = {
        TS(0x700, "L40-48C", 48, 1, 1), TS(0x701, "L40-24C", 24, 2, 2),
        TS(0x702, "L40-16C", 16, 3, 2), TS(0x703, "L40-12C", 12, 4, 4),
        TS(0x704, "L40-8C", 8, 6, 4),   TS(0x705, "L40-6C", 6, 8, 8),
        TS(0x706, "L40-4C", 4, 12, 8),
};

static const struct vgpu_type l4_types[] = {
        TS(0x800, "L4-24C", 24, 1, 1), TS(0x801, "L4-12C", 12, 2, 2), TS(0x802, "L4-8C", 8, 3, 2),
        TS(0x803, "L4-6C", 6, 4, 4),   TS(0x804, "L4-4C", 4, 6, 4),
};

/* --- A30: 4 memory slices, 4 compute slices --------------------------------------------------- */

static const struct mig_profile a30_mig[] = {
        MIGP(14, "1g.6gb", 1, 1, 4, 0xfu, 5952, 14, 1, 1, 0, 0, 0),
        MIGP(21, "1g.6gb+me", 1, 1, 1, 0xfu, 5952, 14, 1, 1, 0, 1, 1),
        MIGP(5, "2g.12gb", 2, 2, 2, 0x5u, 11968, 28, 2, 2, 0, 0, 0),
        MIGP(6, "2g.12gb+me", 2, 2, 1, 0x5u, 11968, 28, 2, 2, 0, 1, 1),
        MIGP(0, "4g.24gb", 4, 4, 1, START_0, 24000, 56, 4, 4, 0, 1, 1),
};

static const struct vgpu_type a30_types[] = {
        TS(0x900, "A30-24C", 24, 1, 1),
        TS(0x901, "A30-12C", 12, 2, 2),
        TS(0x902, "A30-8C", 8, 3, 2),
        TS(0x903, "A30-6C", 6, 4, 4),
        TS(0x904, "A30-4C", 4, 6, 4),
        MIGT(0x905, "A30-4-24C", 24, 1, 0, false),
        MIGT(0x906, "A30-2-12C", 12, 2, 5, false),
        MIGT(0x907, "A30-2-12CME", 12, 1, 6, true),
        MIGT(0x908, "A30-1-6C", 6, 4, 14, false),
        MIGT(0x909, "A30-1-6CME", 6, 1, 21, true),
};

/* --- A10: no MIG ------------------------------------------------------------------------------ */

static const struct vgpu_type a10_types[] = {
        TS(0xa00, "A10-24C", 24, 1, 1), TS(0xa01, "A10-12C", 12, 2, 2),
        TS(0xa02, "A10-8C", 8, 3, 2),   TS(0xa03, "A10-6C", 6, 4, 4),
        TS(0xa04, "A10-4C", 4, 6, 4),
};

#define NVAIE6        "NVAIE 6 vGPU (C-Series) types"
#define NVAIE7_HOPPER "NVAIE 7.5 Hopper vGPU types"

static const struct gpu_model models[] = {
        {
                .id = "H100-80GB",
                .name = "NVIDIA H100 80GB PCIe",
                .type_prefix = "H100",
                .arch = "Hopper",
                .pci_device_id = 0x2331,
                .fb_gib = 80,
                .sm_count = 114,
                .cc_major = 9,
                .cc_minor = 0,
                .mmio_gib = 256,
                .mig_mem_slices = 8,
                .mig_compute_slices = 7,
                .mig_profiles = h100_pcie_mig,
                .n_mig_profiles = COUNT(h100_pcie_mig),
                .types = h100_pcie_types,
                .n_types = COUNT(h100_pcie_types),
                .source = NVAIE7_HOPPER "; MIG user guide; -lgip on H100 PCIe (R570)",
        },
        {
                .id = "H100-SXM-80GB",
                .name = "NVIDIA H100 SXM5 80GB",
                .type_prefix = "H100XM",
                .arch = "Hopper",
                .pci_device_id = 0x2330,
                .fb_gib = 80,
                .sm_count = 132,
                .cc_major = 9,
                .cc_minor = 0,
                .mmio_gib = 256,
                .mig_mem_slices = 8,
                .mig_compute_slices = 7,
                .mig_profiles = h100_sxm_mig,
                .n_mig_profiles = COUNT(h100_sxm_mig),
                .types = h100_sxm_types,
                .n_types = COUNT(h100_sxm_types),
                .source = NVAIE7_HOPPER "; MIG user guide; -lgip on H100 SXM5 80GB",
        },
        {
                .id = "H200-141GB",
                .name = "NVIDIA H200 NVL",
                .type_prefix = "H200",
                .arch = "Hopper",
                .pci_device_id = 0x233b,
                .fb_gib = 141,
                .sm_count = 132,
                .cc_major = 9,
                .cc_minor = 0,
                .mmio_gib = 512,
                .mig_mem_slices = 8,
                .mig_compute_slices = 7,
                .mig_profiles = h200_nvl_mig,
                .n_mig_profiles = COUNT(h200_nvl_mig),
                .types = h200_nvl_types,
                .n_types = COUNT(h200_nvl_types),
                .source = NVAIE7_HOPPER " (H200 PCIe 141GB, H200 NVL); MIG user guide",
        },
        {
                .id = "A100-80GB",
                .name = "NVIDIA A100 80GB PCIe",
                .type_prefix = "A100D",
                .arch = "Ampere",
                .pci_device_id = 0x20b5,
                .fb_gib = 80,
                .sm_count = 108,
                .cc_major = 8,
                .cc_minor = 0,
                .mmio_gib = 256,
                .mig_mem_slices = 8,
                .mig_compute_slices = 7,
                .mig_profiles = a100_80gb_mig,
                .n_mig_profiles = COUNT(a100_80gb_mig),
                .types = a100_80gb_types,
                .n_types = COUNT(a100_80gb_types),
                .source = NVAIE6 " (Ampere); MIG user guide; -lgip on A100 80GB",
        },
        {
                .id = "A100-40GB",
                .name = "NVIDIA A100 40GB PCIe",
                .type_prefix = "A100",
                .arch = "Ampere",
                .pci_device_id = 0x20f1,
                .fb_gib = 40,
                .sm_count = 108,
                .cc_major = 8,
                .cc_minor = 0,
                .mmio_gib = 128,
                .mig_mem_slices = 8,
                .mig_compute_slices = 7,
                .mig_profiles = a100_40gb_mig,
                .n_mig_profiles = COUNT(a100_40gb_mig),
                .types = a100_40gb_types,
                .n_types = COUNT(a100_40gb_types),
                .source = NVAIE6 " (Ampere); MIG user guide; -lgip on A100 40GB",
        },
        {
                .id = "L40S",
                .name = "NVIDIA L40S",
                .type_prefix = "L40S",
                .arch = "Ada Lovelace",
                .pci_device_id = 0x26b9,
                .fb_gib = 48,
                .sm_count = 142,
                .cc_major = 8,
                .cc_minor = 9,
                .mmio_gib = 0, /* not in NVIDIA's MMIO table */
                .types = l40s_types,
                .n_types = COUNT(l40s_types),
                .source = NVAIE6 " (Ada Lovelace)",
        },
        {
                .id = "L40",
                .name = "NVIDIA L40",
                .type_prefix = "L40",
                .arch = "Ada Lovelace",
                .pci_device_id = 0x26b5,
                .fb_gib = 48,
                .sm_count = 142,
                .cc_major = 8,
                .cc_minor = 9,
                .mmio_gib = 128,
                .types = l40_types,
                .n_types = COUNT(l40_types),
                .source = NVAIE6 " (Ada Lovelace)",
        },
        {
                .id = "L4",
                .name = "NVIDIA L4",
                .type_prefix = "L4",
                .arch = "Ada Lovelace",
                .pci_device_id = 0x27b8,
                .fb_gib = 24,
                .sm_count = 58,
                .cc_major = 8,
                .cc_minor = 9,
                .mmio_gib = 64,
                .types = l4_types,
                .n_types = COUNT(l4_types),
                .source = NVAIE6 " (Ada Lovelace)",
        },
        {
                .id = "A30",
                .name = "NVIDIA A30",
                .type_prefix = "A30",
                .arch = "Ampere",
                .pci_device_id = 0x20b7,
                .fb_gib = 24,
                .sm_count = 56,
                .cc_major = 8,
                .cc_minor = 0,
                .mmio_gib = 64,
                .mig_mem_slices = 4,
                .mig_compute_slices = 4,
                .mig_profiles = a30_mig,
                .n_mig_profiles = COUNT(a30_mig),
                .types = a30_types,
                .n_types = COUNT(a30_types),
                .source = NVAIE6 " (Ampere); MIG user guide; -lgip on A30",
        },
        {
                .id = "A10",
                .name = "NVIDIA A10",
                .type_prefix = "A10",
                .arch = "Ampere",
                .pci_device_id = 0x2236,
                .fb_gib = 24,
                .sm_count = 72,
                .cc_major = 8,
                .cc_minor = 6,
                .mmio_gib = 64,
                .types = a10_types,
                .n_types = COUNT(a10_types),
                .source = NVAIE6 " (Ampere)",
        },
};

const struct gpu_model *catalog_models(size_t *ret_n)
{
        *ret_n = COUNT(models);
        return models;
}
