/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The data-plane protocol between a guest (libcuda.so.1) and its vGPU's engine: the shared-memory
 * channel's layout, the fixed message header, and every request and reply payload. The op list is
 * src/common/calls.def; everything here is plain data, validated by the receiver before use.
 */
#ifndef VGPU_COMMON_PROTO_H
#define VGPU_COMMON_PROTO_H

#include <stdint.h>

#define VGPU_PROTO_VERSION 4
#define VGPU_STR_(x)       #x
#define VGPU_STR(x)        VGPU_STR_(x)
#define VGPU_CHAN_MAGIC    0x55504776u /* "vGPU" */
#define VGPU_MSG_MAGIC     0x56u       /* "V" */

/* Channel geometry (bytes). The ring size is a power of two. */
#define VGPU_RING_SIZE    (1u << 20)
#define VGPU_REPLY_SIZE   (64u << 10)
#define VGPU_STAGE_SIZE   (32u << 20)
#define VGPU_STAGE_CHUNKS 8 /* the staging area is used as this many chunks in turn */
#define VGPU_EVENT_SLOTS  4096
#define VGPU_HOST_SLOTS   256 /* host functions pending at once */
#define VGPU_STREAMS      64  /* stream slots: each an in-order queue of its own in the engine */

/* Limits checked on both sides. */
#define VGPU_MAX_PARAMS      256
#define VGPU_MAX_PARAM_BYTES 32764 /* as CUDA 12.1+ allows for kernel parameters */
#define VGPU_MAX_NAME        1024

enum vgpu_call_flags {
        VGPU_CALL_SYNC = 1,
        VGPU_CALL_ASYNC = 2,
        VGPU_CALL_VAR = 4,
};

/* The ops: VGPU_OP_<NAME> = number, from calls.def. 0 is the ring's padding record. */
enum vgpu_op {
        VGPU_OP_PAD = 0,
#define X(NAME, name, num, req, rep, flags) VGPU_OP_##NAME = num,
#include "common/calls.def"
#undef X
        VGPU_OP_COUNT
};

/*
 * Every record in the command ring starts with this header; records are 16-byte aligned. stream
 * is the slot (< VGPU_STREAMS) of an asynchronous command's stream: commands of one slot run in
 * order, commands of different slots in any order (docs/dataplane.md). Synchronous calls ignore
 * it: they run when the engine takes them.
 */
struct vgpu_msg {
        uint8_t magic;  /* VGPU_MSG_MAGIC */
        uint8_t stream; /* the stream slot of an asynchronous command */
        uint16_t op;    /* enum vgpu_op */
        uint32_t len;   /* payload bytes after the header */
        uint64_t seq;   /* the guest's sequence number, 1, 2, ..., increasing */
};

/* ---- the shared channel ------------------------------------------------------------------- */

/* Page 0 of the channel: its layout, written by the engine before it hands the channel over. */
struct vgpu_chan_hdr {
        uint32_t magic;   /* VGPU_CHAN_MAGIC */
        uint32_t version; /* VGPU_PROTO_VERSION */
        uint64_t size;    /* bytes of the whole mapping */
        uint64_t ctl_off;
        uint64_t ring_off, ring_size;
        uint64_t reply_off, reply_size;
        uint64_t stage_off, stage_size;
        uint64_t events_off;
        uint32_t n_events;
        uint32_t pad;
};

/* The counters both sides touch, each on its own cache line. */
struct vgpu_chan_ctl {
        _Alignas(64) uint64_t head;      /* guest: bytes pushed into the ring, ever */
        _Alignas(64) uint64_t tail;      /* engine: bytes consumed from the ring, ever */
        uint32_t engine_sleeping;        /* engine: 1 while it sleeps on head_futex */
        uint32_t head_futex;             /* guest bumps it (and wakes) after a push */
        _Alignas(64) uint64_t done_seq;  /* engine: every command up to this seq is finished */
        uint32_t guest_sleeping;         /* guest: how many of its threads sleep on done_futex */
        uint32_t done_futex;             /* engine bumps it (and wakes) after finishing one */
        _Alignas(64) uint64_t reply_seq; /* the seq the reply area answers */
        int32_t reply_result;            /* CUresult of that synchronous call */
        uint32_t reply_len;              /* bytes of reply payload */
        uint32_t engine_dead;            /* engine: the channel is closed (corrupt ring, exit) */
        uint32_t suspended; /* engine: 1 while the vGPU is suspended (a futex: 0 wakes guests) */
        uint32_t pushing;   /* guest: 1 from its look at suspended until its push is done */
        /*
         * Host functions (HOST_WAIT): the guest sets a slot to 0 when it queues one; the engine
         * sets 2 once the work before it in its stream is done; the guest sets 1 once the
         * function has run, and the stream goes on.
         */
        _Alignas(64) uint32_t host_release[VGPU_HOST_SLOTS];
        /* engine: per stream slot, the seq of the last command of that slot finished */
        _Alignas(64) uint64_t stream_done[VGPU_STREAMS];
        /*
         * engine: the vGPU moved to another engine (docs/migration.md). Set while suspended: the
         * guest's next call re-attaches at moved_to (a Unix socket path) with moved_token, which
         * names its session there, and copies this channel into the one it gets.
         */
        _Alignas(64) uint32_t moved;
        uint8_t moved_token[16];
        char moved_to[108];
};

enum vgpu_host_state { VGPU_HOST_QUEUED = 0, VGPU_HOST_RELEASED = 1, VGPU_HOST_REACHED = 2 };

/* An event's slot: the engine writes when the stream reached it. */
struct vgpu_event_slot {
        uint64_t seq;     /* the EVENT_RECORD command's seq (guest-written) */
        uint64_t time_ns; /* engine: CLOCK_MONOTONIC when it was reached */
};

/* ---- payloads ----------------------------------------------------------------------------- */

struct vgpu_req_nop {
        uint64_t unused;
};

struct vgpu_req_ctx_create {
        uint32_t flags;
        uint32_t pad;
};

struct vgpu_req_ctx {
        uint64_t ctx;
};

struct vgpu_req_mem_alloc {
        uint64_t ctx;
        uint64_t size;
};

struct vgpu_req_mem_free {
        uint64_t ctx;
        uint64_t dptr;
};

/* Copies: HTOD reads src from the staging area at offset src; DTOH writes dst in staging. */
struct vgpu_req_copy {
        uint64_t ctx;
        uint64_t dst;
        uint64_t src;
        uint64_t len;
};

/* A 2D fill: height rows of width elements of elem_size (1, 2, 4) bytes, pitch bytes apart. */
struct vgpu_req_memset {
        uint64_t ctx;
        uint64_t dst;
        uint64_t pitch;
        uint64_t width;
        uint64_t height;
        uint32_t value;
        uint32_t elem_size;
};

/* The module image lies in the staging area at [stage_off, stage_off + len). */
struct vgpu_req_module_load {
        uint64_t ctx;
        uint64_t stage_off;
        uint64_t len;
};

struct vgpu_req_module {
        uint64_t ctx;
        uint64_t module;
};

struct vgpu_req_module_sym {
        uint64_t ctx;
        uint64_t module;
        char name[VGPU_MAX_NAME]; /* NUL-terminated */
};

/* A launch; params_size bytes of packed parameters follow the struct in the message. */
struct vgpu_req_launch {
        uint64_t ctx;
        uint64_t func;
        uint32_t grid[3];
        uint32_t block[3];
        uint32_t shared;
        uint32_t params_size;
};

/*
 * A copy between device memory and host memory the guest shared with the engine (its
 * cuMemAllocHost memory, mapped in the engine too: see "host memory" in docs/dataplane.md): no
 * staging, one command for the whole copy. host is the guest's id of the shared block, off the
 * offset in it.
 */
struct vgpu_req_copy_host {
        uint64_t ctx;
        uint64_t dptr;
        uint64_t host;
        uint64_t off;
        uint64_t len;
};

struct vgpu_req_event {
        uint64_t ctx;
        uint32_t slot;
        uint32_t pad;
};

/* A stream's wait: its later commands start once each dep's slot finished everything up to seq. */
struct vgpu_stream_dep {
        uint32_t slot;
        uint32_t pad;
        uint64_t seq;
};

/* STREAM_WAIT: n deps follow the struct in the message. */
struct vgpu_req_stream_wait {
        uint64_t ctx;
        uint32_t n;
        uint32_t pad;
};

struct vgpu_rep_none {
        uint64_t unused;
};

struct vgpu_rep_handle {
        uint64_t handle;
};

struct vgpu_rep_mem_alloc {
        uint64_t dptr;
        uint64_t size;
};

struct vgpu_rep_mem_info {
        uint64_t free;
        uint64_t total;
};

struct vgpu_rep_module_load {
        uint64_t module;
        char log[256]; /* on failure: what the loader said */
};

struct vgpu_param_info {
        uint32_t offset;
        uint32_t size;
};

struct vgpu_rep_function {
        uint64_t func;
        uint32_t n_params;
        uint32_t param_size;
        uint32_t static_shared;
        uint32_t max_threads;
        struct vgpu_param_info params[VGPU_MAX_PARAMS];
};

/* Sizes and flags per op, for validation on both sides. */
struct vgpu_call_info {
        const char *name;
        uint32_t req_size;
        uint32_t rep_size;
        uint32_t flags;
};

/* vgpu_call_info - the op's entry, or NULL for an op number nobody defined. */
const struct vgpu_call_info *vgpu_call_info(uint32_t op);

/* Hello, over the engine's guest socket (JSON lines): the guest sends
 * {"hello": 1, "version": 1}, the engine answers with the vGPU's description and passes the
 * channel's memfd with SCM_RIGHTS. */

#endif
