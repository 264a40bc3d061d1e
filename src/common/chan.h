/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared-memory channel between a guest and its engine (layout in proto.h): laying it out,
 * mapping a view of it with every offset checked, the command ring's push and pop, and the
 * process-shared futex waits both sides sleep on.
 */
#ifndef VGPU_COMMON_CHAN_H
#define VGPU_COMMON_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/proto.h"

/* Records in the ring are aligned to this; a header always fits before the ring's end. */
#define CHAN_ALIGN 16u

struct chan_view {
        void *base;
        uint64_t size;
        struct vgpu_chan_hdr *hdr;
        struct vgpu_chan_ctl *ctl;
        uint8_t *ring;
        uint64_t ring_size;
        uint8_t *reply;
        uint64_t reply_size;
        uint8_t *stage;
        uint64_t stage_size;
        struct vgpu_event_slot *events;
        uint32_t n_events;
};

/* chan_total_size - bytes a channel with the default geometry takes. */
uint64_t chan_total_size(void);

/* chan_layout - write a fresh channel's header into base (size bytes, zeroed) and fill *ret. */
void chan_layout(void *base, uint64_t size, struct chan_view *ret);

/*
 * chan_open - check the header of a mapped channel (magic, version, every region inside size,
 * alignments) and fill *ret. Returns 0 or -EPROTO.
 */
int chan_open(void *base, uint64_t size, struct chan_view *ret);

/*
 * chan_push_on - the guest appends one record (op, stream slot, seq, payload a then b) to the
 * ring. Returns 0, or -EAGAIN when the ring lacks room (the caller waits for the engine),
 * -EMSGSIZE when the record could never fit, -EINVAL for a slot out of range. Single
 * producer: the caller serialises pushes.
 */
int chan_push_on(struct chan_view *v, uint16_t op, uint32_t stream, uint64_t seq, const void *a,
                 uint32_t alen, const void *b, uint32_t blen);

/* chan_push - chan_push_on with stream slot 0. */
int chan_push(struct chan_view *v, uint16_t op, uint64_t seq, const void *a, uint32_t alen,
              const void *b, uint32_t blen);

/*
 * chan_pop - the engine takes the next record: copies its header to *ret_msg and its payload into
 * buf (cap bytes; records longer are an error) and advances the tail. Returns 1 for a record, 0
 * when the ring is empty, -EPROTO when the guest's ring is corrupt (the channel must be closed).
 * Padding records are skipped inside. Copying first means nothing the guest writes later can
 * change what the engine validated.
 */
int chan_pop(struct chan_view *v, struct vgpu_msg *ret_msg, void *buf, uint32_t cap);

/*
 * chan_pop_at - chan_pop from the ring position *at (advanced past the record) instead of the
 * tail, which stays: a guest's link over TCP (guest/remote.c) sends what the guest queued and
 * moves the tail when the engine took it.
 */
int chan_pop_at(struct chan_view *v, uint64_t *at, struct vgpu_msg *ret_msg, void *buf,
                uint32_t cap);

/* Futexes on shared memory (not private: they work across processes). */
int chan_futex_wait(uint32_t *addr, uint32_t val, int timeout_ms);
void chan_futex_wake(uint32_t *addr);

/* chan_now_ns - CLOCK_MONOTONIC in nanoseconds. */
uint64_t chan_now_ns(void);

#endif
