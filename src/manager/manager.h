/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manager: vgpud's model of its physical GPUs and vGPUs. It keeps placement (one layout per
 * GPU), the state database and the engine processes in agreement: every change is decided by the
 * layout, committed to the database, and carried out on the engines before it is acknowledged.
 * One lock guards it all; functions named _locked expect it held.
 */
#ifndef VGPU_MANAGER_MANAGER_H
#define VGPU_MANAGER_MANAGER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "core/catalog.h"
#include "core/layout.h"
#include "core/sched.h"
#include "manager/scheduler.h"

enum mgr_vgpu_state {
        MGR_CREATING,
        MGR_RUNNING,
        MGR_DESTROYING,
        MGR_FAILED,    /* "faulted": its engine died; `vgpuctl restart` brings it back */
        MGR_SUSPENDED, /* its framebuffer is in an image; its engine keeps the guests waiting */
};

struct mgr_gpu {
        uint32_t index;
        char uuid[64];
        char pci_bus_id[32];
        const struct gpu_model *model;
        struct layout layout;
        int nvml_index;  /* the same GPU in NVML (matched by UUID); -1: none */
        int state_index; /* the index the state knew it by (a real GPU, by UUID); -1: new */
        /* a real GPU in MIG mode: its GPU instances are the hardware's, each run on its MIG
         * device (migdev.h) */
        bool mig_hw;
        size_t n_migdevs;
        struct mgr_migdev {
                uint32_t gi, ci;
                char uuid[96];
        } migdevs[CATALOG_MAX_MEM_SLICES];
        uint64_t xid_errors; /* Xid events NVML reported for it since vgpud started */
        unsigned long long last_xid;
};

struct mgr_vgpu {
        char uuid[40];
        uint32_t handle; /* its ID in the GPU's layout */
        uint32_t gpu;
        const struct vgpu_type *type;
        struct layout_vgpu place;
        uint64_t device_address;
        uint64_t fb_bytes; /* its framebuffer, fixed for life (a move may give it a bigger type) */
        bool busy; /* its engine is suspending, resuming or moving it (vgpud's lock let go) */
        int64_t owner_uid;
        enum mgr_vgpu_state state;
        pid_t engine_pid;
        char created_at[32];
        uint32_t xid_errors; /* its engine died or faulted, since vgpud started */
};

struct manager_config {
        const char *state_dir;
        const char *backend;         /* "sim" or "cuda" */
        const char *const *sim_gpus; /* model ids, one per GPU (sim: simulated; cuda: found) */
        size_t n_sim_gpus;
        /* cuda: each GPU's own UUID and PCI bus id, one per model id; NULL: made up (sim) */
        const char *const *gpu_uuids;
        const char *const *gpu_bus_ids;
        const char *engine_path; /* the vgpu-engine binary */
        bool no_engines;         /* run no engine processes (the API fuzz target only) */
        int64_t rmpvmrl; /* the product's RmPVMRL value for every GPU's scheduler; -1: none */
        bool mig_admin;  /* cuda: vgpud may create and destroy GPU instances (never MIG mode) */
        /* cuda: a GPU NVML no longer lists takes its vGPUs with it (else vgpud does not start) */
        bool forget_gone_gpus;
};

struct manager {
        pthread_mutex_t lock;
        char *state_dir;
        char *backend;
        char *engine_path;
        struct state *db;
        size_t n_gpus;
        struct mgr_gpu *gpus;
        size_t n_vgpus;
        size_t cap_vgpus;
        struct mgr_vgpu *vgpus;
        uint32_t next_handle;
        pthread_t monitor;
        bool monitor_started;
        bool stop;
        bool no_engines;
        bool real_gpus; /* GPUs found by the backend, not configured */
        struct scheduler *sched;
        bool nvml;      /* NVML is loaded: real GPUs' telemetry (the cuda backend) */
        bool mig_admin; /* manager_config.mig_admin */
        pthread_t xid_thread;
        bool xid_started;
        struct licensing *lic; /* vgpud's license holders; NULL: licensing off */
};

/* A vGPU another vgpud offers to move here (migrate_peer.c). */
struct mgr_incoming {
        const char *uuid;
        const struct gpu_model *from; /* its GPU's model there */
        const struct vgpu_type *type; /* its type there */
        uint64_t fb_bytes;
        uint64_t device_address;
        int64_t owner_uid;
};

/*
 * manager_incoming_locked - place an incoming vGPU (same UUID, device address and framebuffer
 * size) on the first GPU with a type for it (manager_target_type) and room, and start its engine;
 * it stays "creating" and busy until manager_incoming_end_locked commits it (running) or drops
 * it. manager_moved_away_locked - v (busy) moved to another vgpud: it goes from here.
 */
int manager_incoming_locked(struct manager *m, const struct mgr_incoming *in, struct mgr_vgpu **ret,
                            char *err, size_t len);
void manager_incoming_end_locked(struct manager *m, struct mgr_vgpu *v, bool commit);
int manager_moved_away_locked(struct manager *m, struct mgr_vgpu *v);

/*
 * manager_control_socket - the control socket of v's engine (for migrate_peer.c's requests).
 */
void manager_control_socket(const struct manager *m, const struct mgr_vgpu *v, char *buf,
                            size_t len);

/* A creation request: what the client asked for, already parsed. */
struct mgr_create {
        struct mgr_gpu *gpu;
        const struct vgpu_type *type;
        struct layout_req req;
        const char *uuid; /* NULL: a new random one */
        int64_t owner_uid;
};

/*
 * manager_new - open the state in cfg->state_dir, set up the GPUs, restore GPU instances and
 * vGPUs, re-adopt engines that still run, restart those that should run, remove what was
 * half-made, and start watching the engines. Returns 0 and *ret, or a negative code with the
 * reason logged.
 */
int manager_new(const struct manager_config *cfg, struct manager **ret);

/* manager_free - stop watching and close the state. Engines keep running. NULL does nothing. */
void manager_free(struct manager *m);

void manager_lock(struct manager *m);
void manager_unlock(struct manager *m);

/* Lookups: a GPU by index ("0") or UUID, a vGPU by UUID (case-insensitive). NULL if none. */
struct mgr_gpu *manager_gpu_locked(struct manager *m, const char *id);
struct mgr_vgpu *manager_vgpu_locked(struct manager *m, const char *uuid);

/*
 * manager_create_locked - create a vGPU: place it, commit it, start its engine (which reserves
 * the framebuffer), commit it as running. Returns 0 and *ret (valid until the next change), or a
 * negative code (layout codes, VGPU_EEXIST, -EINVAL for a malformed UUID, VGPU_EENGINE with the
 * engine's words in err, VGPU_ESTATE); nothing is left behind on failure.
 */
int manager_create_locked(struct manager *m, const struct mgr_create *c, struct mgr_vgpu **ret,
                          char *err, size_t len);

/*
 * manager_destroy_locked - destroy v: refused with VGPU_EGUESTS while guests are attached unless
 * force. Stops the engine, which releases the framebuffer. Returns 0 or a negative code.
 */
int manager_destroy_locked(struct manager *m, struct mgr_vgpu *v, bool force);

/* manager_set_mode_locked - change a GPU's mode (layout rules), persistently. */
int manager_set_mode_locked(struct manager *m, struct mgr_gpu *g, enum layout_mode mode);

/*
 * GPU instances, persistently (layout rules). On a real GPU they are the hardware's, made and
 * destroyed through NVML (migdev.h: --mig-admin only); err then says why NVML refused. start -1:
 * where the layout puts it.
 */
int manager_gi_create_locked(struct manager *m, struct mgr_gpu *g, const struct mig_profile *p,
                             int64_t start, struct layout_gi *ret, char *err, size_t len);
int manager_gi_destroy_locked(struct manager *m, struct mgr_gpu *g, uint32_t gi, char *err,
                              size_t len);

/* manager_guest_socket - where guests of v attach (DIR/engines/UUID.guest). */
void manager_guest_socket(const struct manager *m, const struct mgr_vgpu *v, char *buf, size_t len);

/*
 * manager_restart_locked - start a faulted vGPU's engine again (a fresh framebuffer at the same
 * placement and address). VGPU_EGPU_BUSY when its engine runs; VGPU_EENGINE with the engine's
 * words in err when it does not start.
 */
int manager_restart_locked(struct manager *m, struct mgr_vgpu *v, char *err, size_t len);

/*
 * manager_vgpu_usage_locked - what v's engine reports: guests attached (*ret_guests, also the
 * return value) and framebuffer bytes allocated (*ret_fb_used, -1 when unknown).
 */
int manager_vgpu_usage_locked(struct manager *m, const struct mgr_vgpu *v, int *ret_guests,
                              int64_t *ret_fb_used);

/*
 * manager_sched_set_locked - a GPU's scheduling policy and time slice (ms; 0 = the default of its
 * types), persistently. -EINVAL for fixed share with mixed sizes (heterogeneous mode) or a slice
 * of 0 after clamping; VGPU_ESTATE.
 */
int manager_sched_set_locked(struct manager *m, struct mgr_gpu *g, enum sched_policy p,
                             uint32_t slice_ms);

/*
 * The next three let go of the manager's lock while the engine works (seconds for many GiB),
 * with v marked busy: other calls on v get VGPU_EBUSY meanwhile, and v's entry may have moved in
 * the table when they return: callers look it up again by its UUID.
 *
 * manager_suspend_locked - suspend running vGPU v to the image at path (NULL: its default,
 * manager_image_path). The engine stops its guests at a clean point, writes the image and
 * releases the framebuffer's memory; v keeps its place in the layout. Returns 0 and *ret (what
 * the engine measured; caller decrefs), VGPU_ESUSPENDED, VGPU_ENOT_RUNNING, or VGPU_EENGINE
 * with the engine's words in err (then v runs on, unchanged).
 */
int manager_suspend_locked(struct manager *m, struct mgr_vgpu *v, const char *path, json_t **ret,
                           char *err, size_t len);

/*
 * manager_resume_locked - bring suspended v back, on GPU g (NULL or its own: where it was; else
 * placed anew there). Returns 0 and *ret, VGPU_ENOT_SUSPENDED, a layout code, or VGPU_EENGINE
 * with the reason in err (then v stays suspended, intact).
 */
int manager_resume_locked(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g, json_t **ret,
                          char *err, size_t len);

/*
 * manager_migrate_gpu_locked - move running v to GPU g; the guests see a pause, which
 * precopy (copying while they run, then what they wrote meanwhile) keeps short.
 * A suspended v is resumed there. Returns 0 and *ret, VGPU_ESAME_GPU, VGPU_ENOT_RUNNING, a
 * layout code, or VGPU_EENGINE with the reason in err (then v runs on where it was).
 */
int manager_migrate_gpu_locked(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g,
                               bool precopy, json_t **ret, char *err, size_t len);

/*
 * manager_target_type - a type a vGPU of type t on a GPU of model from can take on a GPU of
 * model to, with at least min_bytes of framebuffer: t itself on the same model; else the
 * smallest time-sliced type of to with that much, when to's compute capability is at least
 * from's. NULL when there is none.
 */
const struct vgpu_type *manager_target_type(const struct gpu_model *from, const struct vgpu_type *t,
                                            const struct gpu_model *to, uint64_t min_bytes);

/* manager_image_path - where v's image goes when suspend names no path. */
void manager_image_path(const struct manager *m, const struct mgr_vgpu *v, char *buf, size_t len);

/* manager_state_name - "creating", "running", "destroying", "faulted", "suspended". */
const char *manager_state_name(enum mgr_vgpu_state s);

#endif
