/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpud's GET /metrics: the Prometheus text exposition format (0.0.4) of plain per-GPU and per-vGPU
 * figures, under dcgm-exporter's metric and label names so that its dashboards and alerts work as
 * they are, plus vgpu's own scheduler figures under a vgpu_ prefix. Takes plain data, not the
 * manager's structures; does no I/O, takes no lock.
 */
#ifndef VGPU_MANAGER_METRICS_H
#define VGPU_MANAGER_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* One vGPU. Strings belong to the caller; NULL reads as "". */
struct metrics_vgpu {
        const char *uuid, *type;    /* vGPU UUID, type name ("H100-20C") */
        uint32_t id;                /* vgpu_id label: its ID on the GPU */
        uint64_t fb_total, fb_used; /* bytes; fb_used UINT64_MAX = unknown (omit the sample) */
        /* Accounted GPU time share over the last interval, 0..100; <0 unknown. */
        double util_pct;
        uint64_t xid_errors; /* faults so far */
        /* DCGM_FI_DEV_VGPU_LICENSE_STATUS: 0 unlicensed, 1 licensed; -1 unknown (omitted). */
        int license_status;
        uint64_t sched_slices, sched_overruns, sched_charged_ns; /* scheduler counters */
        const char *state; /* "running", "faulted", ...; NULL omits vgpu_state */
};

/* One physical GPU and its vGPUs. Strings as above; a NULL hostname omits the Hostname label. */
struct metrics_gpu {
        uint32_t index; /* gpu label; device is "nvidia<index>" */
        const char *uuid, *model_name, *pci_bus_id, *hostname_or_null;
        uint64_t fb_total, fb_used; /* bytes; fb_used UINT64_MAX = unknown */
        double util_pct;            /* 0..100; <0 unknown */
        int temp_c;                 /* degrees C; <0 unknown */
        unsigned power_mw;          /* 0 unknown */
        uint64_t xid_errors;
        const char *sched_policy; /* policy label of vgpu_sched_timeslice_seconds */
        uint32_t sched_slice_ms;
        size_t n_vgpus;
        const struct metrics_vgpu *vgpus;
};

/*
 * metrics_render - the whole exposition text of N_GPUS GPUS (malloc'd, NUL-terminated; the caller
 * frees it). Every family that has a sample gets "# HELP" and "# TYPE" once, then all its samples;
 * unknown figures are left out, never written as NaN. Label values are escaped (\\, \", \n) and
 * bytes that are not UTF-8 become U+FFFD, so no input makes the text unparsable. Series:
 *
 *   DCGM_FI_DEV_GPU_TEMP, _POWER_USAGE (W)                             per GPU
 *   DCGM_FI_DEV_GPU_UTIL (%), _FB_FREE, _FB_USED, _FB_TOTAL (MiB),
 *   _XID_ERRORS                                                        per GPU and per vGPU
 *   DCGM_FI_DEV_VGPU_LICENSE_STATUS                                    per vGPU
 *   vgpu_sched_timeslice_seconds{policy}                               per GPU
 *   vgpu_sched_slices_total, _overruns_total, _charged_seconds_total,
 *   vgpu_state{state} (1)                                              per vGPU
 *
 * Every series carries dcgm-exporter's labels gpu, UUID, pci_bus_id, device ("nvidia<index>"),
 * modelName and Hostname; a vGPU's add vgpu_uuid, vgpu_type and vgpu_id. A GPU-wide sample has no
 * vgpu_uuid label, so `DCGM_FI_DEV_FB_USED{vgpu_uuid=""}` selects the GPUs alone.
 * Returns NULL when memory runs out.
 */
char *metrics_render(const struct metrics_gpu *gpus, size_t n_gpus);

#endif
