// SPDX-License-Identifier: Apache-2.0
// The channel's mechanics: layout, checked views, a single-producer single-consumer byte ring of
// 16-byte-aligned records, and futex waits. Both sides use acquire/release atomics on the
// counters; neither trusts what the other wrote without checking it.
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/chan.h"

#define PAGE 4096u

_Static_assert(sizeof(struct vgpu_chan_ctl) <= PAGE, "the counters fit their page");

static uint64_t align_up(uint64_t v, uint64_t a)
{
        return (v + a - 1) & ~(a - 1);
}

uint64_t chan_total_size(void)
{
        uint64_t off = PAGE * 2; /* header, then the counters */

        off += VGPU_RING_SIZE;
        off += VGPU_REPLY_SIZE;
        off += VGPU_STAGE_SIZE;
        off += align_up((uint64_t)VGPU_EVENT_SLOTS * sizeof(struct vgpu_event_slot), PAGE);
        return off;
}

static void fill_view(void *base, uint64_t size, struct chan_view *v)
{
        struct vgpu_chan_hdr *h = base;
        uint8_t *b = base;

        *v = (struct chan_view){
                .base = base,
                .size = size,
                .hdr = h,
                .ctl = (struct vgpu_chan_ctl *)(b + h->ctl_off),
                .ring = b + h->ring_off,
                .ring_size = h->ring_size,
                .reply = b + h->reply_off,
                .reply_size = h->reply_size,
                .stage = b + h->stage_off,
                .stage_size = h->stage_size,
                .events = (struct vgpu_event_slot *)(b + h->events_off),
                .n_events = h->n_events,
        };
}

void chan_layout(void *base, uint64_t size, struct chan_view *ret)
{
        struct vgpu_chan_hdr *h = base;
        uint64_t off = PAGE;

        h->magic = VGPU_CHAN_MAGIC;
        h->version = VGPU_PROTO_VERSION;
        h->size = size;
        h->ctl_off = off;
        off += PAGE;
        h->ring_off = off;
        h->ring_size = VGPU_RING_SIZE;
        off += VGPU_RING_SIZE;
        h->reply_off = off;
        h->reply_size = VGPU_REPLY_SIZE;
        off += VGPU_REPLY_SIZE;
        h->stage_off = off;
        h->stage_size = VGPU_STAGE_SIZE;
        off += VGPU_STAGE_SIZE;
        h->events_off = off;
        h->n_events = VGPU_EVENT_SLOTS;
        fill_view(base, size, ret);
}

static bool region_ok(uint64_t off, uint64_t len, uint64_t size, uint64_t align)
{
        return off % align == 0 && off <= size && len <= size - off;
}

int chan_open(void *base, uint64_t size, struct chan_view *ret)
{
        const struct vgpu_chan_hdr *h = base;

        if (size < PAGE || h->magic != VGPU_CHAN_MAGIC || h->version != VGPU_PROTO_VERSION ||
            h->size != size || !region_ok(h->ctl_off, PAGE, size, PAGE) ||
            !region_ok(h->ring_off, h->ring_size, size, PAGE) || h->ring_size < PAGE ||
            (h->ring_size & (h->ring_size - 1)) ||
            !region_ok(h->reply_off, h->reply_size, size, 64) ||
            h->reply_size < sizeof(struct vgpu_rep_function) ||
            !region_ok(h->stage_off, h->stage_size, size, PAGE) || h->n_events > (1u << 20) ||
            !region_ok(h->events_off, (uint64_t)h->n_events * sizeof(struct vgpu_event_slot), size,
                       16))
                return -EPROTO;
        fill_view(base, size, ret);
        return 0;
}

_Static_assert(sizeof(struct vgpu_msg) == CHAN_ALIGN, "a header fits before the ring's end");

int chan_push(struct chan_view *v, uint16_t op, uint64_t seq, const void *a, uint32_t alen,
              const void *b, uint32_t blen)
{
        return chan_push_on(v, op, 0, seq, a, alen, b, blen);
}

int chan_push_on(struct chan_view *v, uint16_t op, uint32_t stream, uint64_t seq, const void *a,
                 uint32_t alen, const void *b, uint32_t blen)
{
        uint64_t need = align_up(sizeof(struct vgpu_msg) + (uint64_t)alen + blen, CHAN_ALIGN);
        uint64_t head = v->ctl->head;
        uint64_t tail = __atomic_load_n(&v->ctl->tail, __ATOMIC_ACQUIRE);
        uint64_t pos = head & (v->ring_size - 1);
        uint64_t to_end = v->ring_size - pos;
        uint64_t pad = need > to_end ? to_end : 0;
        struct vgpu_msg *m;

        if (stream >= VGPU_STREAMS)
                return -EINVAL;
        if (need > v->ring_size / 2)
                return -EMSGSIZE;
        if (head - tail + pad + need > v->ring_size)
                return -EAGAIN;
        if (pad) {
                m = (struct vgpu_msg *)(v->ring + pos);
                *m = (struct vgpu_msg){.magic = VGPU_MSG_MAGIC,
                                       .op = VGPU_OP_PAD,
                                       .len = (uint32_t)(pad - sizeof(*m))};
                head += pad;
                pos = 0;
        }
        m = (struct vgpu_msg *)(v->ring + pos);
        *m = (struct vgpu_msg){.magic = VGPU_MSG_MAGIC,
                               .stream = (uint8_t)stream,
                               .op = op,
                               .len = alen + blen,
                               .seq = seq};
        if (alen)
                memcpy(m + 1, a, alen);
        if (blen)
                memcpy((uint8_t *)(m + 1) + alen, b, blen);
        __atomic_store_n(&v->ctl->head, head + need, __ATOMIC_RELEASE);
        return 0;
}

int chan_pop(struct chan_view *v, struct vgpu_msg *ret_msg, void *buf, uint32_t cap)
{
        uint64_t pos = v->ctl->tail;
        int r = chan_pop_at(v, &pos, ret_msg, buf, cap);

        if (r >= 0)
                __atomic_store_n(&v->ctl->tail, pos, __ATOMIC_RELEASE);
        return r;
}

int chan_pop_at(struct chan_view *v, uint64_t *at, struct vgpu_msg *ret_msg, void *buf,
                uint32_t cap)
{
        for (;;) {
                uint64_t tail = *at;
                uint64_t head = __atomic_load_n(&v->ctl->head, __ATOMIC_ACQUIRE);
                uint64_t pos = tail & (v->ring_size - 1);
                uint64_t avail = head - tail, rec;
                struct vgpu_msg m;

                if (avail == 0)
                        return 0;
                if (avail > v->ring_size || avail < sizeof(m) || avail % CHAN_ALIGN)
                        return -EPROTO;
                memcpy(&m, v->ring + pos, sizeof(m));
                rec = align_up(sizeof(m) + (uint64_t)m.len, CHAN_ALIGN);
                if (m.magic != VGPU_MSG_MAGIC || rec > avail || rec > v->ring_size - pos)
                        return -EPROTO;
                if (m.op == VGPU_OP_PAD) {
                        if (rec != v->ring_size - pos)
                                return -EPROTO;
                        *at = tail + rec;
                        continue;
                }
                if (m.len > cap)
                        return -EPROTO;
                memcpy(buf, v->ring + pos + sizeof(m), m.len);
                *ret_msg = m;
                *at = tail + rec;
                return 1;
        }
}

int chan_futex_wait(uint32_t *addr, uint32_t val, int timeout_ms)
{
        struct timespec ts = {.tv_sec = timeout_ms / 1000,
                              .tv_nsec = (long)(timeout_ms % 1000) * 1000000};
        long r = syscall(SYS_futex, addr, FUTEX_WAIT, val, timeout_ms >= 0 ? &ts : NULL, NULL, 0);

        return r < 0 ? -errno : 0;
}

void chan_futex_wake(uint32_t *addr)
{
        syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

uint64_t chan_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
