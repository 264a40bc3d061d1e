// SPDX-License-Identifier: Apache-2.0
// The engine's end of a guest's link over TCP (link.h). Everything the guest sends is checked as
// a guest's channel is: offsets and lengths inside the staging area, records that fit the ring,
// slots in range; a message that is not is the end of the link.
#include "engine/link.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define LINK_POLL_MS 200
#define LINK_WAIT_MS 20
#define LINK_SPIN_NS 20000

/* A copy-back the guest waits for: staging bytes a DTOH wrote, or an event's time. */
struct pend {
        uint16_t op;
        uint8_t slot;
        uint64_t seq;
        uint64_t off, len; /* DTOH: staging range; EVENT_RECORD: off = event slot */
};

struct link {
        struct session *s;
        struct chan_view *v;
        struct mw_conn c;
        pthread_mutex_t send_lock;
        pthread_t down, up;
        bool up_started, down_started;
        volatile int stop;
        int notify_fd;
        pthread_mutex_t plock;
        struct pend *pend;
        size_t n_pend, cap_pend;
        uint32_t queued_gen[VGPU_HOST_SLOTS]; /* HOST_WAITs pushed per slot */
        uint32_t sent_gen[VGPU_HOST_SLOTS];   /* and reported reached */
        uint8_t *buf;                         /* the down thread's frame */
        /* link_moved: the up thread reports the last of the session, then where it went */
        pthread_cond_t moved_cond;
        int moved; /* 1: to tell, 2: told (or cannot be) */
        uint8_t moved_msg[16 + 256];
        uint32_t moved_len;
};

static void wake_engine(struct vgpu_chan_ctl *ctl)
{
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&ctl->engine_sleeping, __ATOMIC_SEQ_CST)) {
                __atomic_add_fetch(&ctl->head_futex, 1, __ATOMIC_SEQ_CST);
                chan_futex_wake(&ctl->head_futex);
        }
}

static int send_msg(struct link *l, uint32_t kind, uint64_t a, uint64_t b, const void *p,
                    uint32_t len, const void *p2, uint32_t len2)
{
        struct link_hdr h = {.kind = kind, .len = len + len2, .a = a, .b = b};
        int r;

        /* queued: a report's messages go out together, at flush() */
        pthread_mutex_lock(&l->send_lock);
        r = mw_write(&l->c, &h, sizeof(h));
        if (r == 0 && len)
                r = mw_write(&l->c, p, len);
        if (r == 0 && len2)
                r = mw_write(&l->c, p2, len2);
        pthread_mutex_unlock(&l->send_lock);
        return r;
}

static int flush(struct link *l)
{
        int r;

        pthread_mutex_lock(&l->send_lock);
        r = mw_flush(&l->c);
        pthread_mutex_unlock(&l->send_lock);
        return r;
}

static void ended(struct link *l)
{
        if (!__atomic_exchange_n(&l->stop, 1, __ATOMIC_SEQ_CST))
                (void)!write(l->notify_fd, "x", 1);
}

/* ---- from the guest ----------------------------------------------------------------------- */

/* Note what the guest will want back once cmd ran (see ran()). */
static void on_ran(void *ctx, const struct vgpu_msg *m, const void *req)
{
        struct link *l = ctx;
        struct pend p = {.op = m->op, .slot = m->stream, .seq = m->seq};

        if (m->op == VGPU_OP_COPY_DTOH && m->len == sizeof(struct vgpu_req_copy)) {
                const struct vgpu_req_copy *q = req;

                p.off = q->dst;
                p.len = q->len;
        } else if (m->op == VGPU_OP_EVENT_RECORD && m->len == sizeof(struct vgpu_req_event)) {
                p.off = ((const struct vgpu_req_event *)req)->slot;
        } else {
                return;
        }
        pthread_mutex_lock(&l->plock);
        if (l->n_pend == l->cap_pend) {
                size_t cap = l->cap_pend ? l->cap_pend * 2 : 64;
                struct pend *np = realloc(l->pend, cap * sizeof(*np));

                if (!np) {
                        pthread_mutex_unlock(&l->plock);
                        ended(l); /* cannot keep the guest's copies right: end the link */
                        return;
                }
                l->pend = np;
                l->cap_pend = cap;
        }
        l->pend[l->n_pend++] = p;
        pthread_mutex_unlock(&l->plock);
}

/* Push one of the guest's records into the session's ring, as its guest would. */
static int push(struct link *l, const struct vgpu_msg *m, const void *req)
{
        struct vgpu_chan_ctl *ctl = l->v->ctl;
        int r;

        if (m->op == VGPU_OP_HOST_WAIT && m->len == sizeof(struct vgpu_req_event)) {
                uint32_t slot = ((const struct vgpu_req_event *)req)->slot;

                if (slot < VGPU_HOST_SLOTS) {
                        __atomic_store_n(&ctl->host_release[slot], VGPU_HOST_QUEUED,
                                         __ATOMIC_RELEASE);
                        __atomic_add_fetch(&l->queued_gen[slot], 1, __ATOMIC_SEQ_CST);
                }
        }
        /* the suspend handshake of a guest's push (guest/conn.c) */
        for (;;) {
                __atomic_store_n(&ctl->pushing, 1, __ATOMIC_SEQ_CST);
                if (!__atomic_load_n(&ctl->suspended, __ATOMIC_SEQ_CST))
                        break;
                __atomic_store_n(&ctl->pushing, 0, __ATOMIC_SEQ_CST);
                if (l->stop)
                        return -ECANCELED;
                chan_futex_wait(&ctl->suspended, 1, 50);
        }
        while ((r = chan_push_on(l->v, m->op, m->stream, m->seq, req, m->len, NULL, 0)) ==
               -EAGAIN) {
                if (l->stop) {
                        __atomic_store_n(&ctl->pushing, 0, __ATOMIC_SEQ_CST);
                        return -ECANCELED;
                }
                chan_futex_wait(&ctl->done_futex,
                                __atomic_load_n(&ctl->done_futex, __ATOMIC_SEQ_CST), 1);
        }
        __atomic_store_n(&ctl->pushing, 0, __ATOMIC_SEQ_CST);
        wake_engine(ctl);
        return r;
}

static int from_guest(struct link *l, const struct link_hdr *h, const uint8_t *p)
{
        struct vgpu_chan_ctl *ctl = l->v->ctl;
        struct vgpu_msg m;

        switch (h->kind) {
        case LINK_STAGE:
                if (h->a > l->v->stage_size || h->len > l->v->stage_size - h->a)
                        return -EPROTO;
                memcpy(l->v->stage + h->a, p, h->len);
                return 0;
        case LINK_CMD:
                if (h->len < sizeof(m))
                        return -EPROTO;
                memcpy(&m, p, sizeof(m));
                if (m.magic != VGPU_MSG_MAGIC || m.len != h->len - sizeof(m) ||
                    m.stream >= VGPU_STREAMS || m.op == VGPU_OP_PAD)
                        return -EPROTO;
                return push(l, &m, p + sizeof(m));
        case LINK_RELEASE:
                if (h->a >= VGPU_HOST_SLOTS || h->len)
                        return -EPROTO;
                __atomic_store_n(&ctl->host_release[h->a], VGPU_HOST_RELEASED, __ATOMIC_RELEASE);
                wake_engine(ctl);
                return 0;
        default:
                return -EPROTO;
        }
}

static void *down_main(void *arg)
{
        struct link *l = arg;

        while (!l->stop) {
                struct pollfd pfd = {.fd = l->c.fd, .events = POLLIN};
                struct link_hdr h;
                int r;

                /* a guest may stay quiet for as long as it likes */
                if (l->c.rlen == l->c.roff && poll(&pfd, 1, LINK_POLL_MS) == 0)
                        continue;
                /* messages, one after the other, in the stream of DATA frames */
                r = mw_read(&l->c, &h, sizeof(h));
                if (r > 0 && h.len > LINK_MAX)
                        r = -EPROTO;
                if (r > 0 && h.len)
                        r = mw_read(&l->c, l->buf, h.len);
                if (r > 0)
                        r = from_guest(l, &h, l->buf);
                if (r < 0) {
                        if (r != -ECONNRESET && r != -ECANCELED)
                                vgpu_log(VGPU_LOG_WARN, "remote guest: %s",
                                         r == -EPROTO ? "broke the link's protocol" : l->c.err);
                        break;
                }
        }
        ended(l);
        return NULL;
}

/* ---- to the guest ------------------------------------------------------------------------- */

struct seen {
        uint64_t tail, done, reply_seq;
        uint64_t stream_done[VGPU_STREAMS];
        uint32_t suspended, dead;
};

/* Send the copy-backs whose commands completed by what *now says. */
static int send_pending(struct link *l, const struct seen *now)
{
        int r = 0;

        pthread_mutex_lock(&l->plock);
        for (size_t i = 0; r == 0 && i < l->n_pend;) {
                struct pend p = l->pend[i];

                if (p.seq > now->done && p.seq > now->stream_done[p.slot]) {
                        i++;
                        continue;
                }
                l->pend[i] = l->pend[--l->n_pend];
                if (p.op == VGPU_OP_EVENT_RECORD) {
                        r = send_msg(l, LINK_EVENT, p.off, 0, &l->v->events[p.off],
                                     sizeof(struct vgpu_event_slot), NULL, 0);
                        continue;
                }
                for (uint64_t o = 0; r == 0 && o < p.len; o += LINK_MAX) {
                        uint32_t k = (uint32_t)(p.len - o < LINK_MAX ? p.len - o : LINK_MAX);

                        r = send_msg(l, LINK_STAGE, p.off + o, 0, l->v->stage + p.off + o, k, NULL,
                                     0);
                }
        }
        pthread_mutex_unlock(&l->plock);
        return r;
}

static void look(const struct vgpu_chan_ctl *ctl, struct seen *s)
{
        s->tail = __atomic_load_n(&ctl->tail, __ATOMIC_ACQUIRE);
        s->done = __atomic_load_n(&ctl->done_seq, __ATOMIC_ACQUIRE);
        for (unsigned i = 0; i < VGPU_STREAMS; i++)
                s->stream_done[i] = __atomic_load_n(&ctl->stream_done[i], __ATOMIC_ACQUIRE);
        s->reply_seq = __atomic_load_n(&ctl->reply_seq, __ATOMIC_ACQUIRE);
        s->suspended = __atomic_load_n(&ctl->suspended, __ATOMIC_ACQUIRE);
        s->dead = __atomic_load_n(&ctl->engine_dead, __ATOMIC_ACQUIRE);
}

static int report(struct link *l, struct seen *last, bool all)
{
        const struct vgpu_chan_ctl *ctl = l->v->ctl;
        struct seen now;
        int r;

        look(ctl, &now);
        /* data first, then the counters that say it is there */
        r = send_pending(l, &now);
        if (r == 0 && (all || now.reply_seq != last->reply_seq)) {
                uint32_t n = ctl->reply_len;

                r = send_msg(l, LINK_REPLY, now.reply_seq, (uint64_t)(uint32_t)ctl->reply_result,
                             l->v->reply, n <= l->v->reply_size ? n : 0, NULL, 0);
        }
        for (uint32_t i = 0; r == 0 && i < VGPU_HOST_SLOTS; i++) {
                uint32_t q = __atomic_load_n(&l->queued_gen[i], __ATOMIC_ACQUIRE);

                if (q != l->sent_gen[i] &&
                    __atomic_load_n(&ctl->host_release[i], __ATOMIC_ACQUIRE) == VGPU_HOST_REACHED) {
                        l->sent_gen[i] = q;
                        r = send_msg(l, LINK_REACHED, i, 0, NULL, 0, NULL, 0);
                }
        }
        if (r == 0 && (all || now.tail != last->tail))
                r = send_msg(l, LINK_ACK, now.tail, 0, NULL, 0, NULL, 0);
        if (r == 0 && (all || now.done != last->done ||
                       memcmp(now.stream_done, last->stream_done, sizeof(now.stream_done))))
                r = send_msg(l, LINK_DONE, 0, 0, &now.done, sizeof(now.done), now.stream_done,
                             sizeof(now.stream_done));
        if (r == 0 && (all || now.suspended != last->suspended || now.dead != last->dead))
                r = send_msg(l, LINK_FLAGS, now.suspended, now.dead, NULL, 0, NULL, 0);
        if (r == 0)
                r = flush(l);
        *last = now;
        return r;
}

static void *up_main(void *arg)
{
        struct link *l = arg;
        struct vgpu_chan_ctl *ctl = l->v->ctl;
        struct seen last = {0};
        int r = report(l, &last, true);

        while (r == 0 && !l->stop && !last.dead) {
                uint32_t val = __atomic_load_n(&ctl->done_futex, __ATOMIC_SEQ_CST);
                struct seen now;

                /* a moment's spin first: a reply is often that close */
                for (uint64_t until = chan_now_ns() + LINK_SPIN_NS;;) {
                        look(ctl, &now);
                        if (memcmp(&now, &last, sizeof(now)) || chan_now_ns() > until)
                                break;
                        __builtin_ia32_pause();
                }
                if (!memcmp(&now, &last, sizeof(now)) &&
                    __atomic_load_n(&l->moved, __ATOMIC_ACQUIRE) != 1)
                        chan_futex_wait(&ctl->done_futex, val, LINK_WAIT_MS);
                r = report(l, &last, false);
                if (r == 0 && __atomic_load_n(&l->moved, __ATOMIC_ACQUIRE) == 1) {
                        /* the session is parked: that report was its last word here */
                        r = send_msg(l, LINK_MOVED, 0, 0, l->moved_msg, l->moved_len, NULL, 0);
                        if (r == 0)
                                r = flush(l);
                        break;
                }
        }
        pthread_mutex_lock(&l->plock);
        l->moved = 2;
        pthread_cond_broadcast(&l->moved_cond);
        pthread_mutex_unlock(&l->plock);
        ended(l);
        return NULL;
}

/* ---- the link ----------------------------------------------------------------------------- */

int link_start(struct session *s, struct mw_conn *c, int notify_fd, struct link **ret)
{
        struct link *l = calloc(1, sizeof(*l));
        int r;

        if (!l || !(l->buf = malloc(MW_FRAME_MAX))) {
                free(l);
                mw_close(c);
                return -ENOMEM;
        }
        l->s = s;
        l->v = session_view(s);
        l->c = *c;
        l->notify_fd = notify_fd;
        pthread_mutex_init(&l->send_lock, NULL);
        pthread_mutex_init(&l->plock, NULL);
        pthread_cond_init(&l->moved_cond, NULL);
        /* the engine wakes this link's up thread at every completion */
        __atomic_add_fetch(&l->v->ctl->guest_sleeping, 1, __ATOMIC_SEQ_CST);
        session_set_ran(s, on_ran, l);
        r = -pthread_create(&l->up, NULL, up_main, l);
        l->up_started = r == 0;
        if (r == 0) {
                r = -pthread_create(&l->down, NULL, down_main, l);
                l->down_started = r == 0;
        }
        if (r < 0) {
                link_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

void link_moved(struct link *l, const uint8_t token[16], const char *addr)
{
        size_t n = strlen(addr);
        struct timespec until;

        if (!l || n > sizeof(l->moved_msg) - 16)
                return;
        memcpy(l->moved_msg, token, 16);
        memcpy(l->moved_msg + 16, addr, n);
        l->moved_len = (uint32_t)(16 + n);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        pthread_mutex_lock(&l->plock);
        if (!l->moved)
                __atomic_store_n(&l->moved, 1, __ATOMIC_RELEASE);
        chan_futex_wake(&l->v->ctl->done_futex);
        while (l->moved == 1 &&
               pthread_cond_timedwait(&l->moved_cond, &l->plock, &until) != ETIMEDOUT)
                ;
        if (l->moved != 2)
                vgpu_log(VGPU_LOG_WARN, "a remote guest was not told where its vGPU went");
        pthread_mutex_unlock(&l->plock);
}

void link_free(struct link *l)
{
        if (!l)
                return;
        l->stop = 1;
        chan_futex_wake(&l->v->ctl->done_futex);
        chan_futex_wake(&l->v->ctl->suspended);
        if (l->up_started)
                pthread_join(l->up, NULL);
        if (l->down_started)
                pthread_join(l->down, NULL);
        session_set_ran(l->s, NULL, NULL);
        __atomic_sub_fetch(&l->v->ctl->guest_sleeping, 1, __ATOMIC_SEQ_CST);
        mw_close(&l->c);
        pthread_mutex_destroy(&l->send_lock);
        pthread_mutex_destroy(&l->plock);
        pthread_cond_destroy(&l->moved_cond);
        free(l->pend);
        free(l->buf);
        free(l);
}

int link_receive_channel(struct session *s, struct mw_conn *c, char *err, size_t len)
{
        struct chan_view *v = session_view(s);
        uint64_t from = (uint64_t)((uint8_t *)v->ctl - (uint8_t *)v->base);
        uint8_t *buf = malloc(MW_FRAME_MAX);
        int r = buf ? 0 : -ENOMEM;

        while (r == 0) {
                struct link_hdr h;
                uint32_t type, n;

                r = mw_recv(c, &type, buf, MW_FRAME_MAX, &n, err, len);
                if (r < 0)
                        break;
                memcpy(&h, buf, n >= sizeof(h) ? sizeof(h) : 0);
                if (type != MW_DATA || n < sizeof(h) || h.len != n - sizeof(h) ||
                    (h.kind != LINK_CHAN && h.kind != LINK_READY) ||
                    (h.kind == LINK_CHAN &&
                     (h.a < from || h.a > v->size || h.len > v->size - h.a))) {
                        snprintf(err, len, "the guest's channel copy is malformed");
                        r = -EPROTO;
                        break;
                }
                if (h.kind == LINK_READY)
                        break;
                memcpy((uint8_t *)v->base + h.a, buf + sizeof(h), h.len);
        }
        free(buf);
        return r;
}
