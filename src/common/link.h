/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A guest's channel over TCP (docs/remote.md): the guest driver keeps a channel of its own
 * (guest/remote.c), the engine the session's (engine/link.c), and a link mirrors them over an
 * authenticated connection (common/migwire.h) in MW_DATA frames, one message each: a link_hdr
 * and len bytes. The two rings hold the same records at the same positions (the engine's side
 * pushes what the guest queued, in order), so a position means the same on both sides.
 */
#ifndef VGPU_COMMON_LINK_H
#define VGPU_COMMON_LINK_H

#include <stdint.h>

#include "common/migwire.h"

enum link_kind {
        /* guest to engine */
        LINK_CMD = 1, /* a record of the ring: struct vgpu_msg, then its request */
        LINK_STAGE,   /* both ways: a = offset in the staging area; the bytes there */
        LINK_RELEASE, /* a = a host-function slot the guest released */
        LINK_CHAN,    /* re-attaching: a = offset in the channel; its bytes */
        LINK_READY,   /* re-attaching: the whole channel was sent */
        /* engine to guest */
        LINK_ACK = 16, /* a = the ring's tail: the engine took everything before it */
        LINK_DONE,     /* done_seq, then stream_done[VGPU_STREAMS] */
        LINK_REPLY,    /* a = reply_seq, b = result; the reply's bytes */
        LINK_EVENT,    /* a = event slot; its struct vgpu_event_slot */
        LINK_REACHED,  /* a = a host-function slot the engine reached */
        LINK_FLAGS,    /* a = suspended, b = engine_dead */
        LINK_MOVED,    /* 16 bytes of token, then "HOST:PORT" of the vGPU's new vgpud */
};

struct link_hdr {
        uint32_t kind;
        uint32_t len; /* bytes after the header */
        uint64_t a, b;
};

/* The most a message carries after its header. */
#define LINK_MAX (MW_FRAME_MAX - (uint32_t)sizeof(struct link_hdr))

#endif
