/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest driver's internals: the vGPUs a process attached (one CUdevice each), their shared
 * channels to the engines, and the objects behind CUcontext, CUstream, CUevent, CUmodule,
 * CUfunction. Every handle a program passes in is checked (magic and owner) before use.
 */
#ifndef VGPU_GUEST_GUEST_H
#define VGPU_GUEST_GUEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <cuda.h>
#include <jansson.h>

#include "common/chan.h"
#include "common/log.h"

#define GUEST_MAX_DEVICES 16
#define GUEST_CTX_STACK   32

enum guest_magic {
        MAGIC_CTX = 0x43747856,    /* "VxtC" */
        MAGIC_STREAM = 0x53747256, /* "VrtS" */
        MAGIC_EVENT = 0x45767456,
        MAGIC_MODULE = 0x4d6f6456,
        MAGIC_FUNC = 0x46756e56,
        MAGIC_LIBRARY = 0x4c696256,
        MAGIC_KERNEL = 0x4b726e56,
        MAGIC_DEAD = 0x44656164,
};

/* One attached vGPU: a CUdevice. */
struct gdev {
        int ordinal;
        char uuid[40];
        char name[128];
        char type[64];
        char model[32];
        char pci_bus_id[32];
        uint64_t fb_size;
        uint64_t device_address;
        int sm_count;
        int cc_major, cc_minor;
        int gpu_index;
        int sock; /* kept open: the engine sees us go when it closes */
        struct chan_view v;
        pthread_mutex_t lock;         /* serialises the ring and the staging area */
        pthread_mutex_t call_lock;    /* one synchronous call in flight (the reply area) */
        pthread_mutex_t host_lock;    /* the host-function queue and slots; never held with lock */
        pthread_mutex_t move_lock;    /* one re-attach at a time (guest_reattach) */
        pthread_mutex_t release_lock; /* a host function's release vs a re-attach's copy */
        uint64_t home_try_ns;         /* the last look for a fresh engine (await_home) */
        uint64_t home_gone_ns;        /* since when its socket is not there at all */
        uint64_t seq;                 /* last seq pushed */
        uint64_t stage_seq[VGPU_STAGE_CHUNKS];  /* the command that last used each chunk */
        uint32_t stage_slot[VGPU_STAGE_CHUNKS]; /* and its stream slot */
        uint32_t slot_refs[VGPU_STREAMS];       /* streams using each slot (under lock) */
        unsigned stage_next;
        uint8_t event_used[VGPU_EVENT_SLOTS];
        uint8_t host_used[VGPU_HOST_SLOTS];
        struct host_job *host_head, *host_tail; /* host functions waiting for their turn */
        pthread_cond_t host_cond;
        bool host_thread;
        struct glink *remote; /* over TCP (guest/remote.c): no host blocks shared */
        struct gctx *primary;
        int primary_refs;
        unsigned primary_flags;
        bool dead;
};

/* A host function queued on a stream: run by the device's host-function thread. */
struct host_job {
        struct host_job *next;
        void (*run)(struct host_job *job);
        CUhostFn fn;
        CUstreamCallback cb;
        CUstream stream;
        void *user;
        uint32_t slot;  /* its host_release slot */
        uint32_t sslot; /* its stream's slot */
        uint64_t seq;   /* its HOST_WAIT command */
};

/*
 * A stream. Its commands go to the engine tagged with its slot (one of VGPU_STREAMS in-order
 * queues, taken at its first command; streams share slots when more are live). Blocking streams
 * and the legacy stream order themselves against each other with STREAM_WAIT commands
 * (guest_push_stream_locked). Fields under the device's lock.
 */
struct gstream {
        uint32_t magic;
        struct gctx *ctx;
        unsigned flags;
        int priority;
        bool has_slot;
        uint32_t slot;
        uint64_t last_seq;    /* its last command */
        uint64_t waited_null; /* a blocking stream: the legacy stream's command it waited for */
};

struct gctx {
        uint32_t magic;
        struct gdev *dev;
        uint64_t handle;
        bool primary;
        unsigned flags;
        size_t limits[CU_LIMIT_MAX];
        int sticky; /* CUresult of a fault seen by this context */
        /* Under the device's lock: */
        struct gstream legacy;                /* the legacy NULL stream */
        uint64_t legacy_waited[VGPU_STREAMS]; /* blocking work it waited for, per slot */
        uint64_t slot_last[VGPU_STREAMS];     /* this context's last command per slot */
        uint64_t blocking_last[VGPU_STREAMS]; /* its blocking streams' last, per slot */
        uint64_t blocking_seq;                /* the latest of blocking_last */
        uint64_t legacy_waited_all;           /* blocking_seq when the legacy stream looked */
};

struct gevent {
        uint32_t magic;
        struct gctx *ctx;
        unsigned flags;
        uint32_t slot;   /* its time slot in the channel */
        uint32_t stream; /* the stream slot of its last record */
        uint64_t seq;    /* 0: never recorded */
};

struct gmodule {
        uint32_t magic;
        struct gctx *ctx;
        uint64_t handle;
};

struct gfunc {
        uint32_t magic;
        struct gmodule *mod;
        uint64_t handle;
        uint32_t n_params;
        uint32_t param_size;
        uint32_t static_shared;
        uint32_t max_threads;
        uint32_t max_dynamic_shared; /* cuFuncSetAttribute */
        struct vgpu_param_info *params;
        char name[256];
};

/* ---- the process's state ------------------------------------------------------------------ */

extern struct gdev *guest_devs[GUEST_MAX_DEVICES];
extern int guest_ndevs;

/* guest_ensure_init - CUDA_SUCCESS once cuInit succeeded, else CUDA_ERROR_NOT_INITIALIZED. */
CUresult guest_ensure_init(void);

/* guest_dev - the device of an ordinal, or NULL. */
struct gdev *guest_dev(CUdevice d);

/* guest_current - the calling thread's current context, or NULL. */
struct gctx *guest_current(void);
void guest_set_current(struct gctx *c);

/*
 * guest_ctx_get - the context to use for a call: ctx if given and valid, else the current one.
 * Returns CUDA_SUCCESS and *ret, or INVALID_CONTEXT.
 */
CUresult guest_ctx_get(CUcontext ctx, struct gctx **ret);

/* guest_stream_ctx - the context of a stream (NULL: the current context's default stream). */
CUresult guest_stream_get(CUstream s, struct gctx **ret_ctx, struct gstream **ret_stream);

/* ---- calls to the engine (conn.c) ---------------------------------------------------------- */

/*
 * guest_var_range - whether [p, p+len) lies in a module variable of device d that the guest
 * looked up and that lies outside the vGPU's framebuffer range (on a real GPU the driver places
 * module variables itself). Such pointers are device memory too.
 */
bool guest_var_range(const struct gdev *d, CUdeviceptr p, size_t len);

/* guest_var_device - the device whose looked-up module variable holds p (as above); NULL: none. */
struct gdev *guest_var_device(CUdeviceptr p);

/*
 * guest_reattach - d's vGPU moved to another engine (its channel says so): connect there, copy
 * the channel into the one it gives (same geometry, mapped at the same address) and go on. Any
 * thread may call it, with or without d->lock. Returns true when d works again (now, or another
 * thread did it), false when the move failed (d is dead).
 */
bool guest_reattach(struct gdev *d);

/*
 * guest_engine_gone - whether d's engine is gone (it hung up, or closed the channel); a vGPU
 * that moved re-attaches here first (and is gone only when that fails).
 */
bool guest_engine_gone(struct gdev *d);

/*
 * guest_dev_setup - fill a new device from its engine's hello (info) and its socket; guest_dev_add
 * reserves its device range in this process and makes it the next CUdevice (0 or -E2BIG).
 */
void guest_dev_setup(struct gdev *d, json_t *info, int sock, const char *pci_bus_id);

/*
 * guest_range_clash - whether the vGPU of a hello (info) has device addresses of one this process
 * attached already (possible with a vGPU that moved in from another vgpud); says so.
 */
bool guest_range_clash(json_t *info);
int guest_dev_add(struct gdev *d);

/*
 * guest_attach_remote - attach vGPU uuid of the vgpud at addr ("HOST:PORT", its --guest-listen)
 * over TCP, proving the secret in the file secret_path (docs/remote.md). 0 or a negative errno.
 */
int guest_attach_remote(const char *addr, const char *secret_path, const char *uuid);

/* guest_host_reannounce - share d's host blocks again with its (new) engine (api_mem.c). */
void guest_host_reannounce(struct gdev *d);

/* guest_result - the one place an engine or local error code becomes a CUresult. */
CUresult guest_result(int err);

/*
 * guest_call - a synchronous call: push op with req (and tail), wait for its completion, copy
 * up to rep_cap bytes of the reply into rep. Returns the call's CUresult. Takes dev->lock.
 */
CUresult guest_call(struct gdev *d, uint16_t op, const void *req, uint32_t req_len,
                    const void *tail, uint32_t tail_len, void *rep, uint32_t rep_cap);

/*
 * guest_push_locked - queue a command on stream slot `stream`; *ret_seq is its sequence number.
 * The caller holds dev->lock. Returns CUDA_SUCCESS or an error when the engine is gone.
 */
CUresult guest_push_locked(struct gdev *d, uint16_t op, uint32_t stream, const void *req,
                           uint32_t req_len, const void *tail, uint32_t tail_len,
                           uint64_t *ret_seq);

/*
 * guest_push_stream_locked - queue a stream-ordered command of c on st (NULL: the legacy
 * stream), first the STREAM_WAIT the legacy stream's rules ask for, and note it as the stream's
 * and context's last command. The caller holds dev->lock. CUresult.
 */
CUresult guest_push_stream_locked(struct gctx *c, struct gstream *st, uint16_t op, const void *req,
                                  uint32_t req_len, const void *tail, uint32_t tail_len,
                                  uint64_t *ret_seq);

/* guest_stream_of - st, or c's legacy stream for NULL. */
struct gstream *guest_stream_of(struct gctx *c, struct gstream *st);

/* guest_wait_stream - wait for st's (NULL: legacy) last command. CUresult. */
CUresult guest_wait_stream(struct gctx *c, struct gstream *st);

/* guest_stream_done - whether st's (NULL: legacy) last command finished. */
bool guest_stream_done(struct gctx *c, struct gstream *st);

/* guest_wait_ctx - wait for the last command of every stream of c. CUresult. */
CUresult guest_wait_ctx(struct gctx *c);

/* guest_stream_release - a stream (or context) lets go of its slot. Under dev->lock. */
void guest_stream_release(struct gdev *d, struct gstream *st);

/* guest_wait - wait until every command up to seq is finished (all streams). CUresult. */
CUresult guest_wait(struct gdev *d, uint64_t seq);

/* guest_done - whether every command up to seq is finished (no waiting). */
bool guest_done(struct gdev *d, uint64_t seq);

/* guest_wait_slot - wait until stream slot finished its commands up to seq. CUresult. */
CUresult guest_wait_slot(struct gdev *d, uint32_t slot, uint64_t seq);

/* guest_slot_done - whether stream slot finished its commands up to seq (no waiting). */
bool guest_slot_done(struct gdev *d, uint32_t slot, uint64_t seq);

/* guest_wake_engine - wake the engine if it sleeps (after a host function's release). */
void guest_wake_engine(struct gdev *d);

/*
 * guest_wait_event - sleep until the engine finished something (or ms passed): for waits on
 * conditions other than one counter. val is done_futex read before the caller's check.
 */
void guest_wait_event(struct gdev *d, uint32_t val, int ms);

/*
 * guest_stage_chunk_locked - a staging chunk free for reuse (waits for the engine if needed):
 * its index and offset. The caller records the seq of the command using it in stage_seq.
 */
CUresult guest_stage_chunk_locked(struct gdev *d, unsigned *ret_idx, uint64_t *ret_off);

/* guest_stage_chunk_size - bytes in one staging chunk. */
uint64_t guest_stage_chunk_size(const struct gdev *d);

/* guest_attach_all - find and attach the vGPUs (cuInit). CUresult. */
CUresult guest_attach_all(void);

/*
 * guest_alloc - zeroed memory for an object behind a handle (context, stream, event, module,
 * function, library, kernel). Such objects belong to the driver for the process's life: a
 * destroyed handle is marked dead, not freed, so a stale handle fails its check instead of
 * touching freed memory; the registry keeps them all reachable. NULL when out of memory.
 */
void *guest_alloc(size_t size);

/* guest_unalloc - free an object guest_alloc made that never became a handle. NULL: nothing. */
void guest_unalloc(void *p);

/* guest_unsupported - log the name of an unimplemented call; CUDA_ERROR_NOT_SUPPORTED. */
CUresult guest_unsupported(const char *name);

/* ---- helpers shared by the API files ------------------------------------------------------- */

/* guest_copy_htod - copy len bytes from host src to device dst through staging. */
CUresult guest_copy_htod(struct gctx *c, CUdeviceptr dst, const void *src, size_t len, bool sync,
                         struct gstream *st);
/* guest_copy_dtoh - copy len bytes from device src to host dst (always waits). */
CUresult guest_copy_dtoh(struct gctx *c, void *dst, CUdeviceptr src, size_t len,
                         struct gstream *st);
/* guest_ctx_sync - wait for a context's work and collect its errors. */
CUresult guest_ctx_sync(struct gctx *c);
/* guest_stream_sync - after waiting for st (NULL: legacy): its device work, c's errors. */
CUresult guest_stream_sync(struct gctx *c, struct gstream *st);
/*
 * guest_device_of - the attached vGPU whose device memory holds p: its framebuffer range, or a
 * module variable the driver placed outside it (guest_var_device); NULL: host memory.
 */
struct gdev *guest_device_of(uint64_t p);

#endif
