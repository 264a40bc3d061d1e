/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stand-in CUDA driver's private interface between its files: the devices read from
 * $VGPU_FAKE_GPU/gpus.json, the process state every entry point checks first (initialised, not a
 * forked child, no sticky kernel fault), the handle registry, and the device memory the copies and
 * kernels may reach. Device addresses are host addresses of this process: a mapped VMM range is a
 * memfd mapped at its device address, a module's variables live in an anonymous mapping.
 */
#ifndef VGPU_TESTS_FAKEGPU_CUDA_FAKE_CUDA_H
#define VGPU_TESTS_FAKEGPU_CUDA_FAKE_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda.h>

#include "common/export.h"
#include "ptx/ptx.h"

#define FC_MAX_DEVICES 64
#define FC_GRANULARITY (UINT64_C(2) << 20) /* cuMemGetAllocationGranularity, both kinds */
#define FC_NO_ID       4294967295u         /* NVML's "any" gi/ci id: not a MIG device */

struct fc_dev;

/* A device's primary context: one per device for the life of the process. */
struct fc_ctx {
        struct fc_dev *dev;
        int refs; /* cuDevicePrimaryCtxRetain minus release; under ctx_lock */
};

/* One CUDA device: a whole GPU, or a MIG device (a compute instance). */
struct fc_dev {
        int ordinal;    /* CUdevice */
        char name[256]; /* "NVIDIA H100 80GB HBM3", "... MIG 1g.10gb" */
        unsigned char uuid[16];
        char bus_id[32]; /* the GPU's, as gpus.json says: "00000000:41:00.0" */
        unsigned pci_domain, pci_bus, pci_device, pci_device_id;
        uint64_t total; /* bytes of memory */
        int sms, cc_major, cc_minor;
        unsigned nvml_index;   /* position of its GPU in gpus.json */
        unsigned gi_id, ci_id; /* FC_NO_ID unless a MIG device */
        char key[48];          /* memory accounting: "gpu0", "gpu2-gi1" */
        uint64_t charged;      /* bytes this process created on it; under acct_lock */
        struct fc_ctx ctx;
};

/* The configuration read at cuInit. */
struct fc_config {
        char dir[4096];     /* $VGPU_FAKE_GPU */
        int driver_version; /* cuDriverGetVersion */
        int n_devs;
        struct fc_dev devs[FC_MAX_DEVICES];
};

/* -- fake_cuda_config.c ------------------------------------------------------------------- */

/*
 * config_load - read dir/gpus.json and build the CUDA devices, in order, as the README says
 * (restricted by visible, the value of CUDA_VISIBLE_DEVICES, or NULL). 0, or -1 with the reason
 * in why. *ret is filled either way (no devices on failure).
 */
int config_load(const char *dir, const char *visible, struct fc_config *ret, char *why,
                size_t why_len);

/* -- fake_cuda_device.c -------------------------------------------------------------------- */

/* The configuration; valid once fc_ready() said CUDA_SUCCESS. Never changes after cuInit. */
extern struct fc_config fc;

/*
 * fc_ready - CUDA_SUCCESS when the driver may be used: cuInit succeeded in this process (not in a
 * parent it was forked from). fc_check - the same, and no kernel fault has ended the process's
 * contexts (else that fault's CUresult).
 */
CUresult fc_ready(void);
CUresult fc_check(void);

/* fc_sticky - the kernel fault that ended every context of the process, or CUDA_SUCCESS. */
CUresult fc_sticky(void);

/* fc_fault - record a kernel fault on dev: the sticky error, and its Xid line. Thread-safe. */
void fc_fault(struct fc_dev *dev, CUresult r, unsigned xid);

/* fc_device - the device of ordinal, or NULL. */
struct fc_dev *fc_device(CUdevice ordinal);

/*
 * fc_current - the calling thread's current context if it is active (retained), else NULL. The
 * result stays valid (contexts are never freed).
 */
struct fc_ctx *fc_current(void);

/* fc_ctx_active - whether ctx is a context of this process that is retained now. */
bool fc_ctx_active(const struct fc_ctx *ctx);

/* fc_say - one line on stderr, prefixed "fake libcuda: " (how the stand-in explains itself). */
void fc_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* -- fake_cuda_handles.c ------------------------------------------------------------------- */

enum fc_kind {
        FC_STREAM = 1,
        FC_EVENT,
        FC_MODULE,
        FC_FUNCTION,
        FC_ALLOC,
};

/*
 * The registry of live handles, so that a stale or made-up handle is refused instead of
 * dereferenced. handle_add - register p of kind, owned by owner (a context or module); 0 or
 * -ENOMEM. handle_is - whether p is live and of kind (and *ret_owner its owner, if not NULL).
 * handle_del - forget p if it is of kind; whether it was. handle_take - remove and return up to max
 * handles of kind owned by owner. Each takes the registry's own lock.
 */
int handle_add(const void *p, enum fc_kind kind, const void *owner);
bool handle_is(const void *p, enum fc_kind kind, const void **ret_owner);
bool handle_del(const void *p, enum fc_kind kind);
size_t handle_take(enum fc_kind kind, const void *owner, void **ret, size_t max);

/* -- fake_cuda_account.c ------------------------------------------------------------------- */

/*
 * acct_charge - count bytes more created by this process on dev (the README's <dir>/mem files):
 * 0, -ENOMEM when the device's memory in use by live processes would pass its total, or another
 * negative errno (the file could not be written). acct_uncharge - count them freed.
 */
int acct_charge(struct fc_dev *dev, uint64_t bytes);
void acct_uncharge(struct fc_dev *dev, uint64_t bytes);

/* acct_used - bytes in use on dev by every live process. */
uint64_t acct_used(struct fc_dev *dev);

/* acct_xid - append dev's Xid line for a fault to <dir>/xid. */
void acct_xid(const struct fc_dev *dev, unsigned xid);

/* -- fake_cuda_vmm.c ----------------------------------------------------------------------- */

/*
 * Device memory in use: copies and kernels hold vmm_use_begin() (shared) while they touch it;
 * whatever takes memory away (unmap, access removed, module unload) waits for them.
 */
void vmm_use_begin(void);
void vmm_use_end(void);
void vmm_change_begin(void);
void vmm_change_end(void);

/*
 * vmm_reachable - whether every byte of [addr, addr + len) is device memory that dev can reach
 * now: mapped with read-write access for it, or a module variable of its context. Call inside
 * vmm_use_begin/end.
 */
bool vmm_reachable(const struct fc_dev *dev, uint64_t addr, uint64_t len);

/*
 * vmm_region - the whole contiguous reachable region of dev around [addr, addr + len), as a
 * kernel's memory callback wants it; 0 or -EFAULT. Inside vmm_use_begin/end.
 */
int vmm_region(const struct fc_dev *dev, uint64_t addr, uint64_t len, struct ptx_mem_region *ret);

/*
 * vmm_var_add - make [base, base + size) (a module's variables) device memory of dev; 0 or
 * -ENOMEM. vmm_var_del - take it away again (inside vmm_change_begin/end).
 */
int vmm_var_add(const struct fc_dev *dev, uint64_t base, uint64_t size);
void vmm_var_del(uint64_t base);

/* -- fake_cuda_module.c -------------------------------------------------------------------- */

/* module_drop_ctx - unload every module of ctx (its last release). */
void module_drop_ctx(struct fc_ctx *ctx);

/* -- fake_cuda_stream.c -------------------------------------------------------------------- */

/*
 * stream_ctx - the context a stream argument names: a stream of this process, or the NULL /
 * legacy / per-thread stream of the current context. CUDA_SUCCESS and *ret, or an error.
 */
CUresult stream_ctx(CUstream s, struct fc_ctx **ret);

/* stream_drop_ctx - destroy every stream and event of ctx (its last release). */
void stream_drop_ctx(struct fc_ctx *ctx);

#endif
