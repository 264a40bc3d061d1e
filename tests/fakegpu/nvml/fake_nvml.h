/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stand-in libnvidia-ml's insides, shared by its modules: the GPUs as gpus.json describes them
 * (fake_nvml_config.c), the process's one state with its lock and the handle tables
 * (fake_nvml.c), memory accounting (fake_nvml_mem.c); the NVML entry points live in
 * fake_nvml_device.c, fake_nvml_mig.c and fake_nvml_event.c. Not installed, not used by vgpu.
 */
#ifndef VGPU_TESTS_FAKEGPU_FAKE_NVML_H
#define VGPU_TESTS_FAKEGPU_FAKE_NVML_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include <jansson.h>

#include "nvml_abi.h"

#define FAKE_MAX_GPUS       16
#define FAKE_MAX_PROFILES   NVML_GPU_INSTANCE_PROFILE_COUNT
#define FAKE_MAX_PLACEMENTS 16
#define FAKE_MAX_GI         16 /* GPU instances one GPU may hold */
#define FAKE_MAX_GI_ID      32 /* GPU instance ids are 0 .. FAKE_MAX_GI_ID - 1 */
#define FAKE_MAX_CI_ID      8  /* compute instance ids are 0 .. 7, at most 8 per GPU instance */
#define FAKE_MAX_SLICES     32 /* memory slices a placement may name */

struct fake_placement {
        unsigned start, size; /* memory slices */
};

/* One of gi_profiles. */
struct fake_profile {
        unsigned index;  /* NVML_GPU_INSTANCE_PROFILE_* */
        unsigned id;     /* the driver's profile id */
        unsigned slices; /* compute slices */
        unsigned count;  /* instances the GPU can hold at most */
        unsigned sms;
        unsigned long long mem_mib;
        unsigned n_placements;
        struct fake_placement placements[FAKE_MAX_PLACEMENTS];
};

/* One compute instance: one MIG device. */
struct fake_ci {
        unsigned id, slices, sms;
        char uuid[NVML_DEVICE_UUID_V2_SIZE]; /* "MIG-..." */
};

/* One GPU instance, with its compute instances in gpus.json's order (ascending ids). */
struct fake_gi {
        unsigned id;
        unsigned profile; /* index into its GPU's profiles[] */
        struct fake_placement placement;
        unsigned n_ci;
        struct fake_ci ci[FAKE_MAX_CI_ID];
};

struct fake_gpu {
        char name[NVML_DEVICE_NAME_V2_SIZE];
        char uuid[NVML_DEVICE_UUID_V2_SIZE];
        char bus_id[NVML_PCI_BUS_ID_SIZE];
        unsigned domain, bus, device; /* parsed from bus_id */
        unsigned pci_device_id;       /* 0x2330, without the vendor */
        unsigned sms;
        unsigned long long mem_mib;
        bool mig_capable; /* it has gi_profiles */
        bool mig_mode;
        bool accessible; /* false: nvmlDeviceGetHandleByIndex_v2 says NO_PERMISSION */
        unsigned n_profiles;
        struct fake_profile profiles[FAKE_MAX_PROFILES];
        unsigned n_gi; /* GPU instances; counted only in MIG mode */
        struct fake_gi gi[FAKE_MAX_GI];
};

/* gpus.json, parsed. */
struct fake_cfg {
        unsigned n_gpus;
        struct fake_gpu gpus[FAKE_MAX_GPUS];
};

/* What identifies one version of gpus.json: a rewrite renames a new file over it. */
struct fake_stamp {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
};

/*
 * The process's one NVML. lock guards everything here and every NVML call runs under it; only
 * nvmlEventSetWait_v2 lets go of it while it sleeps.
 */
struct fake_state {
        pthread_mutex_t lock;
        unsigned refs;   /* nvmlInit_v2 calls not yet shut down */
        bool privileged; /* root, or the MIG capabilities: $VGPU_FAKE_NVML_PRIVILEGED is not 0 */
        char dir[PATH_MAX / 2];
        char json_path[PATH_MAX];
        json_t *doc; /* gpus.json as read, edited by the MIG calls before they write it */
        struct fake_cfg *cfg;
        struct fake_stamp stamp;
        struct nvml_event_set *sets; /* every live event set, for checking handles */
};

extern struct fake_state fake;

/* What a handle refers to, in fake.cfg: valid until the lock is dropped or gpus.json re-read. */
struct fake_ref {
        unsigned gpu_index;
        struct fake_gpu *gpu;
        struct fake_gi *gi; /* NULL for a GPU handle */
        struct fake_ci *ci; /* NULL for a GPU or a GPU instance handle */
};

/*
 * fake_enter - begin an NVML call: take the lock and re-read gpus.json if it changed. Returns
 * NVML_SUCCESS with the lock held, or NVML_ERROR_UNINITIALIZED without it.
 */
int fake_enter(void);

/* fake_leave - end an NVML call begun with fake_enter: drop the lock, return r. */
int fake_leave(int r);

/*
 * fake_reload_locked - re-read gpus.json when its stamp changed, or always when force. On failure
 * the last good reading stays. Returns NVML_SUCCESS or NVML_ERROR_UNKNOWN.
 */
int fake_reload_locked(bool force);

/* The handles: fixed tables, so a handle stays a valid pointer for the life of the process. */
struct nvml_device *fake_gpu_handle(unsigned gpu);
struct nvml_device *fake_mig_handle(unsigned gpu, unsigned gi_id, unsigned ci_id);
struct nvml_gpu_instance *fake_gi_handle(unsigned gpu, unsigned gi_id);
struct nvml_compute_instance *fake_ci_handle(unsigned gpu, unsigned gi_id, unsigned ci_id);

/*
 * fake_dev_ref, fake_gi_ref, fake_ci_ref - what a handle refers to now, under the lock.
 * NVML_SUCCESS, or NVML_ERROR_INVALID_ARGUMENT for NULL, a pointer that is not one of ours, or
 * an instance that no longer exists (or a GPU no longer in gpus.json). *ret untouched then.
 */
int fake_dev_ref(const struct nvml_device *dev, struct fake_ref *ret);
int fake_gi_ref(const struct nvml_gpu_instance *gi, struct fake_ref *ret);
int fake_ci_ref(const struct nvml_compute_instance *ci, struct fake_ref *ret);

/*
 * fake_privileged - NVML_SUCCESS when this process may make the calls NVML's reference marks
 * "Requires privileged user" (and see a GPU in MIG mode whole), else NVML_ERROR_NO_PERMISSION.
 */
int fake_privileged(void);

/* fake_copy_str - copy s into buf of len bytes: NVML_ERROR_INSUFFICIENT_SIZE if it won't fit. */
int fake_copy_str(const char *s, char *buf, unsigned len);

/*
 * fake_cfg_read - read and check the gpus.json at path. Returns 0 with the document, its parse
 * and the file's stamp (the caller owns the first two), or -1 with the reason in why.
 */
int fake_cfg_read(const char *path, json_t **ret_doc, struct fake_cfg **ret_cfg,
                  struct fake_stamp *ret_stamp, char *why, size_t why_len);

/* fake_stamp_get - the stamp of the file at path now; -1 when it cannot be stat'd. */
int fake_stamp_get(const char *path, struct fake_stamp *ret);
bool fake_stamp_equal(const struct fake_stamp *a, const struct fake_stamp *b);

/* Lookups in one GPU's parse; NULL when absent. */
struct fake_gi *fake_gi_find(struct fake_gpu *gpu, unsigned id);
struct fake_ci *fake_ci_find(struct fake_gi *gi, unsigned id);
const struct fake_profile *fake_profile_by_id(const struct fake_gpu *gpu, unsigned id);

/*
 * A change to gpus.json, under the lock: fake_txn_begin takes flock(<dir>/gpus.lock) and re-reads
 * gpus.json, so that the change applies to what other processes wrote; the caller then checks
 * and edits fake.doc (fake_doc_*); fake_txn_commit writes it to a temporary file renamed over
 * gpus.json and re-reads it; fake_txn_end lets the file lock go. Both return an NVML status;
 * on failure fake.doc is re-read at the next call.
 */
int fake_txn_begin(int *ret_lock_fd);
int fake_txn_commit(void);
void fake_txn_end(int lock_fd);

/* Edits of fake.doc, GPU gpu (an index), keeping gpu_instances and compute_instances by id. */
int fake_doc_add_gi(unsigned gpu, unsigned id, unsigned profile_id,
                    const struct fake_placement *placement);
int fake_doc_del_gi(unsigned gpu, unsigned id);
int fake_doc_add_ci(unsigned gpu, unsigned gi_id, const struct fake_ci *ci);
int fake_doc_del_ci(unsigned gpu, unsigned gi_id, unsigned ci_id);

/* The engines a GPU instance of profile prof has (gpus.json does not say; these are plausible). */
struct fake_engines {
        unsigned copy, decoder, encoder, jpeg, ofa;
};

void fake_profile_engines(const struct fake_profile *prof, struct fake_engines *ret);

/* fake_event_sets_free_locked - free every event set; nvmlShutdown's last call does. */
void fake_event_sets_free_locked(void);

/*
 * fake_mem_used - device memory that live processes hold, from <dir>/mem: on GPU gpu's GPU
 * instance gi_id, or on the whole GPU (its own files and all its GPU instances') when gi_id is
 * negative. Bytes.
 */
unsigned long long fake_mem_used(unsigned gpu, int gi_id);

#endif
