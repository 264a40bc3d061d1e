/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpud's durable state: SQLite in WAL mode in the state directory. GPUs, GPU instances and vGPUs
 * as rows; the caller groups statements into one transaction per change (state_begin/commit) and
 * commits before it acknowledges anything.
 */
#ifndef VGPU_MANAGER_STATE_H
#define VGPU_MANAGER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct state;

struct state_gpu {
        uint32_t index;
        char uuid[64];
        char model[32];
        char mode[16];
        char pci_bus_id[32];
};

struct state_gi {
        uint32_t gpu;
        uint32_t id;
        uint32_t profile;
        uint32_t start;
        bool implicit;
};

struct state_vgpu {
        char uuid[40];
        uint32_t handle; /* the placement layer's ID for it */
        uint32_t gpu;
        uint32_t type_id;
        uint32_t placement;
        uint32_t gi;
        int64_t owner_uid;
        char state[16]; /* creating, running, destroying, faulted, suspended */
        int64_t engine_pid;
        char created_at[32];
        uint64_t device_address; /* 0: the one its GPU and placement give (never moved) */
};

/*
 * state_open - open (creating if needed) DIR/vgpud.db in WAL mode with its schema. Takes an
 * exclusive lock on DIR/vgpud.lock so that two vgpuds never share a state directory (-EBUSY).
 * Returns 0 and *ret, or a negative errno; the error text goes to the log.
 */
int state_open(const char *dir, struct state **ret);

/* state_close - close the database and release the lock. NULL does nothing. */
void state_close(struct state *s);

/* Transactions: every change the manager acknowledges is inside one. Return 0 or -EIO. */
int state_begin(struct state *s);
int state_commit(struct state *s);
void state_rollback(struct state *s);

/* Row writers (insert or replace) and deleters. Return 0 or -EIO. */
int state_put_gpu(struct state *s, const struct state_gpu *g);
int state_put_gi(struct state *s, const struct state_gi *gi);
/* Small settings by key (the scheduler's per GPU): put inside a transaction; get: 0, -ENOENT. */
int state_put_meta(struct state *s, const char *key, const char *value);
int state_get_meta(struct state *s, const char *key, char *ret, size_t len);
int state_del_gi(struct state *s, uint32_t gpu, uint32_t id);
int state_put_vgpu(struct state *s, const struct state_vgpu *v);
int state_del_vgpu(struct state *s, const char *uuid);

/*
 * state_real_gi_ids - once per state (noted as meta "gi_ids"): the GPU instance IDs of a state
 * written when vgpud numbered a real GPU's instances as NVML does become NVML's + 1, as vgpud
 * numbers them now (migdev.h), in gpu_instances and in vgpus. Call only with real GPUs. 0 or
 * -EIO, nothing changed.
 */
int state_real_gi_ids(struct state *s);

/*
 * Readers: call fn for each row, in key order, until it returns non-zero (which is returned).
 * Return 0, fn's value, or -EIO.
 */
int state_each_gpu(struct state *s, int (*fn)(void *ctx, const struct state_gpu *g), void *ctx);
int state_each_gi(struct state *s, int (*fn)(void *ctx, const struct state_gi *gi), void *ctx);
int state_each_vgpu(struct state *s, int (*fn)(void *ctx, const struct state_vgpu *v), void *ctx);

#endif
