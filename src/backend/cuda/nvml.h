/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVML for the cuda backend, loaded with dlopen at run time and never linked, so every binary runs
 * on a machine without a driver: the physical GPUs and their MIG devices, telemetry, Xid events.
 * vgpu only reads here; it never changes a GPU's MIG mode or layout.
 */
#ifndef VGPU_BACKEND_CUDA_NVML_H
#define VGPU_BACKEND_CUDA_NVML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VGPU_NVML_MAX_MIG 8

/* One MIG device: a GPU instance with one of its compute instances. */
struct vgpu_nvml_mig {
        unsigned gi_id, ci_id;
        unsigned profile_slices; /* slices of its GPU instance (1, 2, 3, 4, 7) if known, else 0 */
        unsigned ci_slices;      /* slices of its compute instance if known, else 0 */
        unsigned sm_count;       /* streaming multiprocessors if known, else 0 */
        uint64_t mem_total;      /* bytes */
        char uuid[96];           /* "MIG-..." */
        /* its GPU instance's profile ID (`nvidia-smi mig -lgip`'s) and placement in memory
         * slices; placed false when this NVML cannot say (then those three are 0) */
        bool placed;
        unsigned gi_profile_id;
        unsigned start, size;
};

struct vgpu_nvml_gpu {
        unsigned index;         /* NVML's index, the one vgpu_nvml_sample and xid_watch take */
        char name[96];          /* e.g. "NVIDIA H100 80GB HBM3" */
        char uuid[96];          /* "GPU-..." */
        uint32_t pci_device_id; /* the PCI device id, 0x2330 for H100 SXM5 */
        char bus_id[32];        /* "00000000:41:00.0" */
        uint64_t mem_total;     /* bytes */
        bool mig_enabled;       /* current MIG mode (not the pending one) */
        unsigned n_mig;         /* MIG devices that exist now; at most VGPU_NVML_MAX_MIG */
        struct vgpu_nvml_mig mig[VGPU_NVML_MAX_MIG];
        /*
         * The GPU instances that exist now, with or without compute instances (at most
         * VGPU_NVML_MAX_MIG); gi_listed false when this NVML cannot list them (then only those
         * with a MIG device are known, from mig[]).
         */
        bool gi_listed;
        unsigned n_gi;
        struct vgpu_nvml_gi {
                unsigned id, profile_id; /* profile_id: `nvidia-smi mig -lgip`'s ID */
                unsigned start, size;    /* placement, in memory slices */
        } gi[VGPU_NVML_MAX_MIG];
};

/* One sample of a GPU's telemetry. A reading the GPU does not support reads 0. */
struct vgpu_nvml_sample {
        unsigned gpu_util, mem_util;  /* percent over NVML's last sample period */
        uint64_t mem_used, mem_total; /* bytes */
        int temp_c;
        unsigned power_mw;
};

/* One Xid event. gi_id/ci_id are NVML's "any" sentinel unless MIG is on and it can attribute. */
struct vgpu_nvml_xid {
        unsigned gpu_index;
        unsigned gi_id, ci_id;
        unsigned long long xid;
};

/*
 * vgpu_nvml_open - load libnvidia-ml.so.1 (or the path in $VGPU_NVML_LIB) and initialise NVML.
 * Reference-counted: each success needs one vgpu_nvml_close. Returns 0, or -ENODEV with the
 * reason (the loader's or NVML's message) in err, which may be NULL. Thread-safe.
 */
int vgpu_nvml_open(char *err, size_t err_len);

/*
 * vgpu_nvml_close - drop one reference; the last shuts NVML down, frees the Xid event set and
 * unloads the library. No other vgpu_nvml_ call may be in flight then. Does nothing when NVML
 * is not open.
 */
void vgpu_nvml_close(void);

/*
 * vgpu_nvml_gpus - describe up to max GPUs, in NVML's order, with their MIG devices (at most
 * VGPU_NVML_MAX_MIG each; more are left out). A GPU this process may not open, or that NVML
 * fails to describe, is left out (the latter with a warning logged); each keeps NVML's index.
 * Sets *ret_n to how many were written. Returns 0;
 * -ENODEV when NVML is not open; another negative errno when NVML fails (vgpu_nvml_strerror
 * says why). ret and *ret_n are untouched on failure.
 */
int vgpu_nvml_gpus(struct vgpu_nvml_gpu *ret, size_t max, size_t *ret_n);

/*
 * vgpu_nvml_sample - the telemetry of GPU index now. Returns 0, -ENODEV when NVML is not open,
 * -ENOENT for no such GPU, or another negative errno; *ret untouched on failure.
 */
int vgpu_nvml_sample(unsigned index, struct vgpu_nvml_sample *ret);

/*
 * vgpu_nvml_xid_watch - have GPU index's critical Xid errors reported by vgpu_nvml_xid_poll.
 * Watching a GPU twice is harmless. Returns 0, -ENODEV when NVML is not open, -ENOENT for no
 * such GPU, -EOPNOTSUPP when the GPU does not report Xid events, or another negative errno.
 */
int vgpu_nvml_xid_watch(unsigned index);

/*
 * vgpu_nvml_xid_wait - wait up to timeout_ms for an Xid event on a watched GPU. Returns 1 with
 * the event in *ret, 0 when none came (timeout), -ENODEV when NVML is not open, -EINVAL when no
 * GPU is watched, or another negative errno; *ret written only when it returns 1. Several
 * threads may wait at once; each event goes to one of them.
 */
int vgpu_nvml_xid_wait(unsigned timeout_ms, struct vgpu_nvml_xid *ret);

/* vgpu_nvml_xid_poll - vgpu_nvml_xid_wait for callers that need only the GPU and the Xid. */
int vgpu_nvml_xid_poll(unsigned timeout_ms, unsigned *ret_index, unsigned long long *ret_xid);

/*
 * vgpu_nvml_gi_create - create a GPU instance of profile profile_id (NVML's ID, as `nvidia-smi mig
 * -lgip` shows it) at memory slice start of GPU index, and in it one compute instance that spans
 * it: one new MIG device, described in *ret. This changes the GPU's MIG layout: vgpud calls it
 * only when its operator allowed that (--mig-admin). When the compute instance cannot be made,
 * the GPU instance is destroyed again. Returns 0; -ENODEV when NVML is not open, -EOPNOTSUPP
 * when this NVML or GPU has no MIG management, -EPERM when the caller lacks the privilege,
 * -ENOMEM when the placement is taken or out of resources, -EINVAL for a profile or placement
 * the GPU does not offer (NVML offers none while MIG mode is off: that too), or another negative
 * errno; *ret untouched on failure.
 */
int vgpu_nvml_gi_create(unsigned index, unsigned profile_id, unsigned start,
                        struct vgpu_nvml_mig *ret);

/*
 * vgpu_nvml_gi_destroy - destroy GPU instance gi_id of GPU index with its compute instances.
 * Returns 0; -ENOENT for no such GPU instance, -EBUSY when a process uses it, or another negative
 * errno as vgpu_nvml_gi_create.
 */
int vgpu_nvml_gi_destroy(unsigned index, unsigned gi_id);

/*
 * vgpu_nvml_strerror - for logs, the text of this thread's latest failed vgpu_nvml_ call, in
 * NVML's own words where NVML failed ("nvmlDeviceGetMemoryInfo: GPU is lost"); "" before any.
 * The string is this thread's and changes with its next failure.
 */
const char *vgpu_nvml_strerror(void);

#endif
