/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The inside of a session (engine/session.h), shared by session.c, which runs it, its handlers
 * (session_ops.c, session_mem.c), its side of the scheduler's gate (session_gate.c), and
 * session_image.c, which writes it into a migration's stream and builds it again on the other
 * side. Nothing else includes this.
 */
#ifndef VGPU_ENGINE_SESSION_INT_H
#define VGPU_ENGINE_SESSION_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/session.h"

#define MAX_OBJS 4096
#define MSG_CAP  (sizeof(struct vgpu_req_launch) + VGPU_MAX_PARAM_BYTES + 64)
/* Commands taken from the ring but not run yet (streams held by host functions or waits): at
 * most this many, and bytes, per session; past that the rest waits in the ring. */
#define QUEUED_MAX       65536u
#define QUEUED_BYTES_MAX (16u << 20)

_Static_assert(VGPU_STREAMS == 64, "a stream slot is a bit of a uint64_t");

enum obj_kind { OBJ_CTX = 1, OBJ_MOD = 2, OBJ_FUNC = 3 };

struct sctx {
        uint32_t gen;
        bool live;
        int sticky;   /* a kernel fault: every later call of the context fails with it */
        int deferred; /* the first error of an asynchronous call, reported at the next sync */
};

/* Where a module's variables come from: the allocations of its context. */
struct galloc {
        struct session *s;
        uint64_t owner;
        /* what the module's load took, in order (a migration places them again: replay) */
        struct backend_region *allocs;
        uint32_t n_allocs;
        bool replay; /* session_image.c: hand out allocs[next...] instead */
        uint32_t next;
};

struct smod {
        uint32_t gen;
        bool live;
        uint32_t ctx;
        struct backend_module *mod;
        struct galloc *ga;
        void *image; /* what the guest loaded (a migration loads it again) */
        uint64_t image_len;
        /* variables the guest asked for, outside the allocator's blocks (cuda places them) */
        struct backend_region *vars;
        uint32_t n_vars;
};

struct sfunc {
        uint32_t gen;
        bool live;
        uint32_t mod;
        const struct backend_func *k;
        struct backend_func_info info;
        char *name; /* for a migration */
};

/* A block of host memory the guest shared (its cuMemAllocHost memory), mapped here too. */
struct shost {
        uint64_t id;
        uint8_t *p;
        uint64_t size;
        bool registered; /* with the backend, for direct DMA */
};

/* An asynchronous command taken from the ring, waiting in its stream's queue. */
struct scmd {
        struct scmd *next;
        struct vgpu_msg m;
        _Alignas(8) uint8_t req[]; /* m.len bytes */
};

/* A stream slot: its commands in order, and its backend queue (a CUDA stream on a GPU). */
struct sstream {
        struct scmd *head, *tail;
        struct backend_queue *q; /* NULL until first used; slot 0's is made with the session */
};

struct profile;

struct session {
        struct vgpu_dev *dev;
        struct backend_queue *q; /* the queue of the stream whose command runs now */
        struct sstream streams[VGPU_STREAMS];
        uint64_t active;   /* slots with queued commands */
        uint64_t last_seq; /* the last seq taken from the ring */
        uint32_t n_queued; /* commands in the streams' queues */
        uint64_t queued_bytes;
        unsigned next_slot; /* where the round-robin over runnable streams goes on */
        bool stage_registered;
        uint32_t id;
        pid_t pid;
        uid_t uid;
        int fd;
        struct chan_view v;
        pthread_t thread;
        volatile int stop;
        volatile int cancel; /* read by a running launch: stop it soon */
        struct sctx ctxs[64];
        struct smod *mods;
        struct sfunc *funcs;
        uint32_t n_mods, n_funcs;
        int deferred;  /* async errors of calls that named no valid context */
        uint64_t work; /* the backend's deterministic work units, for accounting */
        /* host blocks: added and removed by the engine's main thread, used by this session's */
        pthread_mutex_t host_lock;
        pthread_cond_t host_cond;
        struct shost *hosts;
        uint32_t n_hosts;
        /* suspend (session_pause): the thread parks at a clean point until pause is cleared */
        pthread_mutex_t pause_lock;
        pthread_cond_t pause_cond;
        volatile int pause;
        uint64_t pause_ns; /* when the pause was asked for */
        bool parked, exited;
        bool started; /* its thread runs (a session built by a migration waits for its guest) */
        /* a guest over TCP (engine/link.c): told of each command that ran */
        void (*ran)(void *ctx, const struct vgpu_msg *m, const void *req);
        void *ran_ctx;
        uint8_t token[16];    /* names it to its guest when it re-attaches after a migration */
        struct profile *prof; /* VGPU_ENGINE_PROFILE */
};

/*
 * session_create - a session as session_new makes it, but without its thread (session_start
 * starts it). The module loader's allocator: session_galloc_alloc and session_galloc_free.
 */
int session_create(struct vgpu_dev *dev, uint32_t id, pid_t pid, uid_t uid, struct session **ret);
int session_galloc_alloc(void *ctx, uint64_t size, uint64_t *ret_addr);
void session_galloc_free(void *ctx, uint64_t addr);

static inline uint64_t owner_of(const struct session *s, uint32_t ctx)
{
        return ((uint64_t)s->id << 32) | ctx;
}

static inline uint64_t handle_of(enum obj_kind kind, uint32_t gen, uint32_t idx)
{
        return ((uint64_t)kind << 56) | ((uint64_t)(gen & 0xffffff) << 32) | idx;
}

/* Resolve the context a request names; *ret fails the call with the right code. */
/* Resolve the context a request names; *ret fails the call with the right code. */
#define WITH_CTX(s, h, idx, c)                                                                     \
        struct sctx *c;                                                                            \
        uint32_t idx;                                                                              \
        if (!((c) = session_get_ctx((s), (h), &(idx))))                                            \
                return -EBADF;                                                                     \
        if ((c)->sticky)                                                                           \
        return (c)->sticky

/* ---- session.c: handles, the allocator, suspend ---- */

/* session_handle_split - a handle's index and generation if it is of kind and below n. 0 or -1. */
int session_handle_split(uint64_t h, enum obj_kind kind, uint32_t n, uint32_t *ret_idx,
                         uint32_t *ret_gen);

/* session_get_ctx - the live context handle h names (*ret_idx its index), or NULL. */
struct sctx *session_get_ctx(struct session *s, uint64_t h, uint32_t *ret_idx);

/* session_get_mod - the live module of context ctx that h names, or NULL. */
struct smod *session_get_mod(struct session *s, uint64_t h, uint32_t ctx, uint32_t *ret_idx);

/* session_slot_in - a free slot of a growing table of elem-byte entries: its index or -errno. */
int session_slot_in(void **table, uint32_t *n, size_t elem);

/* session_dev_alloc - allocate size bytes of the framebuffer for owner (a worker: by its
 * engine). 0 and *ret_base, or -errno. */
int session_dev_alloc(struct vgpu_dev *d, uint64_t size, uint64_t owner, uint64_t *ret_base);

/* session_dev_free - free owner's block at base. 0 or -errno. */
int session_dev_free(struct vgpu_dev *d, uint64_t base, uint64_t owner);

/* session_dev_free_owner - free every block whose owner & mask == want. */
void session_dev_free_owner(struct vgpu_dev *d, uint64_t want, uint64_t mask);

/* session_dev_free_bytes - the framebuffer's free bytes (a worker: its engine's count). */
uint64_t session_dev_free_bytes(struct vgpu_dev *d);

/* session_pausing - whether a suspend asked this session to park. */
bool session_pausing(const struct session *s);

/* ---- session_gate.c: the scheduler's gate ---- */

/* session_gate_enter - wait for the vGPU's turn before a launch (when gated). */
void session_gate_enter(struct session *s);

/* session_gate_charge - charge a launch's GPU time (work: the sim's units); a used-up slice
 * ends the turn. */
void session_gate_charge(struct session *s, uint64_t work);

/* session_gate_idle - out of work: a turn nobody else waits for goes back at once. */
void session_gate_idle(struct session *s);

/* session_gate_release - give back a turn this session holds (it parks). */
void session_gate_release(struct session *s);

/* ---- session_ops.c: contexts, modules, launches, events, streams ---- */

/* session_region_ok - whether [addr, addr+len) lies in one allocation of context ctx (a block
 * of the allocator, or a module variable the backend placed). */
bool session_region_ok(struct session *s, uint32_t ctx, uint64_t addr, uint64_t len);

/* session_queues_sync - wait for the device work of every stream; the first error. */
int session_queues_sync(struct session *s);

/* session_drain_stream - let the running stream's device work finish; errors noted in c. */
void session_drain_stream(struct session *s, struct sctx *c);

/* session_drain - let all device work finish; a fault poisons c. */
void session_drain(struct session *s, struct sctx *c);

/* session_free_ctx - destroy context idx: its modules, its memory. */
void session_free_ctx(struct session *s, uint32_t idx);

/* ---- session_mem.c: memory, copies, shared host blocks ---- */

/* session_stage_ok - whether [off, off+len) lies in the channel's staging area. */
bool session_stage_ok(const struct session *s, uint64_t off, uint64_t len);

/* session_host_release - unmap (and unregister) a host block. */
void session_host_release(struct session *s, struct shost *h);

/* The handlers, one per op of calls.def (session_ops.c, session_mem.c): 0 or a negative code. */
#define X(NAME, name, num, req, rep, flags)                                                        \
        int session_op_##name(struct session *s, const void *req, uint32_t len, void *rep,         \
                              uint32_t *rep_len);
#include "common/calls.def"
#undef X

#endif
