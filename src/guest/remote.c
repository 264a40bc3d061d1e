// SPDX-License-Identifier: Apache-2.0
// A vGPU of a vgpud on another machine (docs/remote.md): the device gets a channel of its own in
// this process, which the rest of the guest driver uses as it would an engine's, and a link
// (common/link.h) mirrors it to the engine's over an authenticated TCP connection. Two threads:
// "up" sends what the program queued (with the staged data its copies and module loads read)
// and the host functions it released; "down" applies what the engine did, and when the vGPU
// moves to another vgpud, re-attaches there and hands over the channel.
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/link.h"
#include "common/migwire.h"
#include "guest/guest.h"

#define LINK_POLL_MS        200
#define LINK_WAIT_MS        20
#define LINK_CONNECT_MS     10000
#define LINK_REATTACH_TRIES 20
#define LINK_SPIN_NS        20000

struct glink {
        struct gdev *d;
        char addr[256];
        char uuid[40];
        uint8_t secret[MW_SECRET_MAX];
        size_t slen;
        struct mw_conn c;
        pthread_mutex_t lock; /* the connection's sending side and sent: up, and a re-attach */
        uint64_t sent;        /* ring position sent up to */
        uint32_t reached[VGPU_HOST_SLOTS], released[VGPU_HOST_SLOTS]; /* per slot, counts */
        int peer_sock; /* the other end of d->sock: closed when the link ends */
        pthread_t up, down;
        volatile int stop;
        uint8_t *rbuf, *ubuf;
};

static void wake_guests(struct vgpu_chan_ctl *ctl)
{
        __atomic_add_fetch(&ctl->done_futex, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&ctl->done_futex);
}

/* Queue a message: what one pass of the up thread sends goes out together (mw_flush). */
static int queue_msg(struct mw_conn *c, uint32_t kind, uint64_t a, uint64_t b, const void *p,
                     uint32_t len, const void *p2, uint32_t len2)
{
        struct link_hdr h = {.kind = kind, .len = len + len2, .a = a, .b = b};
        int r = mw_write(c, &h, sizeof(h));

        if (r == 0 && len)
                r = mw_write(c, p, len);
        if (r == 0 && len2)
                r = mw_write(c, p2, len2);
        return r;
}

/* A message in a frame of its own (the re-attach's channel copy is read frame by frame). */
static int send_msg(struct mw_conn *c, uint32_t kind, uint64_t a, uint64_t b, const void *p,
                    uint32_t len, const void *p2, uint32_t len2)
{
        int r = queue_msg(c, kind, a, b, p, len, p2, len2);

        return r == 0 ? mw_flush(c) : r;
}

static int send_stage(struct glink *l, uint64_t off, uint64_t len)
{
        const struct chan_view *v = &l->d->v;
        int r = 0;

        if (off > v->stage_size || len > v->stage_size - off)
                return 0; /* the engine refuses the command itself */
        for (uint64_t o = 0; r == 0 && o < len; o += LINK_MAX) {
                uint32_t k = (uint32_t)(len - o < LINK_MAX ? len - o : LINK_MAX);

                r = queue_msg(&l->c, LINK_STAGE, off + o, 0, v->stage + off + o, k, NULL, 0);
        }
        return r;
}

/* Connect to addr, prove the secret, send req; the engine's hello (ok) in *ret. */
static int open_link(struct glink *l, const char *addr, json_t *req, struct mw_conn *c,
                     json_t **ret)
{
        char err[512];
        json_t *info = NULL;
        int fd, r;

        fd = mw_connect(addr, LINK_CONNECT_MS, err, sizeof(err));
        if (fd < 0) {
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: %s", l->uuid, err);
                json_decref(req);
                return fd;
        }
        r = mw_auth_client(c, fd, l->secret, l->slen, LINK_CONNECT_MS, err, sizeof(err));
        if (r < 0) {
                close(fd);
        } else {
                r = mw_send_json(c, req, err, sizeof(err));
                if (r == 0)
                        r = mw_recv_json(c, &info, err, sizeof(err));
                if (r == 0 && !json_is_true(json_object_get(info, "ok"))) {
                        const char *why = json_string_value(json_object_get(info, "error"));

                        snprintf(err, sizeof(err), "%s refused: %s", addr, why ? why : "?");
                        r = -EACCES;
                }
                if (r < 0)
                        mw_close(c);
        }
        json_decref(req);
        if (r < 0) {
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: %s", l->uuid, err);
                json_decref(info);
                return r;
        }
        c->timeout_ms = LINK_CONNECT_MS;
        *ret = info;
        return 0;
}

/* ---- up: what the program queued ------------------------------------------------------------ */

static bool releases_due(struct glink *l)
{
        const struct vgpu_chan_ctl *ctl = l->d->v.ctl;

        for (uint32_t i = 0; i < VGPU_HOST_SLOTS; i++) {
                if (__atomic_load_n(&l->reached[i], __ATOMIC_ACQUIRE) != l->released[i] &&
                    __atomic_load_n(&ctl->host_release[i], __ATOMIC_ACQUIRE) == VGPU_HOST_RELEASED)
                        return true;
        }
        return false;
}

static int send_up(struct glink *l)
{
        struct chan_view *v = &l->d->v;
        struct vgpu_msg m;
        int r = 0, k;

        for (uint32_t i = 0; r == 0 && i < VGPU_HOST_SLOTS; i++) {
                uint32_t reached = __atomic_load_n(&l->reached[i], __ATOMIC_ACQUIRE);

                if (reached != l->released[i] &&
                    __atomic_load_n(&v->ctl->host_release[i], __ATOMIC_ACQUIRE) ==
                            VGPU_HOST_RELEASED) {
                        l->released[i] = reached;
                        r = queue_msg(&l->c, LINK_RELEASE, i, 0, NULL, 0, NULL, 0);
                }
        }
        while (r == 0 && (k = chan_pop_at(v, &l->sent, &m, l->ubuf, (uint32_t)v->ring_size)) == 1) {
                if (m.op == VGPU_OP_COPY_HTOD && m.len == sizeof(struct vgpu_req_copy)) {
                        const struct vgpu_req_copy *q = (const void *)l->ubuf;

                        r = send_stage(l, q->src, q->len);
                } else if (m.op == VGPU_OP_MODULE_LOAD &&
                           m.len == sizeof(struct vgpu_req_module_load)) {
                        const struct vgpu_req_module_load *q = (const void *)l->ubuf;

                        r = send_stage(l, q->stage_off, q->len);
                }
                if (r == 0)
                        r = queue_msg(&l->c, LINK_CMD, 0, 0, &m, sizeof(m), l->ubuf, m.len);
        }
        if (r == 0)
                r = mw_flush(&l->c);
        return r < 0 ? r : k < 0 ? -EPROTO : 0;
}

static void *up_main(void *arg)
{
        struct glink *l = arg;
        struct vgpu_chan_ctl *ctl = l->d->v.ctl;
        int r = 0;

        while (r == 0 && !l->stop) {
                uint32_t val = __atomic_load_n(&ctl->head_futex, __ATOMIC_SEQ_CST);

                /* a moment's spin first: the program's next call is often that close */
                for (uint64_t until = chan_now_ns() + LINK_SPIN_NS;
                     __atomic_load_n(&ctl->head, __ATOMIC_ACQUIRE) == l->sent &&
                     chan_now_ns() < until;)
                        __builtin_ia32_pause();
                if (__atomic_load_n(&ctl->head, __ATOMIC_ACQUIRE) == l->sent && !releases_due(l))
                        chan_futex_wait(&ctl->head_futex, val, LINK_WAIT_MS);
                pthread_mutex_lock(&l->lock);
                r = send_up(l);
                pthread_mutex_unlock(&l->lock);
        }
        return NULL;
}

/* ---- down: what the engine did ----------------------------------------------------------------
 */

static int reattach(struct glink *l, const uint8_t *p, uint32_t len);

static int apply(struct glink *l, const struct link_hdr *h, const uint8_t *p)
{
        struct chan_view *v = &l->d->v;
        struct vgpu_chan_ctl *ctl = v->ctl;

        switch (h->kind) {
        case LINK_ACK:
                if (h->a < ctl->tail || h->a > __atomic_load_n(&ctl->head, __ATOMIC_ACQUIRE))
                        return -EPROTO;
                __atomic_store_n(&ctl->tail, h->a, __ATOMIC_RELEASE);
                wake_guests(ctl); /* room in the ring */
                return 0;
        case LINK_DONE: {
                uint64_t done, sd[VGPU_STREAMS];

                if (h->len != sizeof(done) + sizeof(sd))
                        return -EPROTO;
                memcpy(&done, p, sizeof(done));
                memcpy(sd, p + sizeof(done), sizeof(sd));
                for (unsigned i = 0; i < VGPU_STREAMS; i++)
                        __atomic_store_n(&ctl->stream_done[i], sd[i], __ATOMIC_RELEASE);
                __atomic_store_n(&ctl->done_seq, done, __ATOMIC_RELEASE);
                wake_guests(ctl);
                return 0;
        }
        case LINK_STAGE:
                if (h->a > v->stage_size || h->len > v->stage_size - h->a)
                        return -EPROTO;
                memcpy(v->stage + h->a, p, h->len);
                return 0;
        case LINK_EVENT: {
                struct vgpu_event_slot e;

                if (h->a >= v->n_events || h->len != sizeof(e))
                        return -EPROTO;
                memcpy(&e, p, sizeof(e));
                __atomic_store_n(&v->events[h->a].time_ns, e.time_ns, __ATOMIC_RELEASE);
                return 0;
        }
        case LINK_REPLY:
                if (h->len > v->reply_size)
                        return -EPROTO;
                memcpy(v->reply, p, h->len);
                ctl->reply_len = h->len;
                ctl->reply_result = (int32_t)(uint32_t)h->b;
                __atomic_store_n(&ctl->reply_seq, h->a, __ATOMIC_RELEASE);
                wake_guests(ctl);
                return 0;
        case LINK_REACHED:
                if (h->a >= VGPU_HOST_SLOTS || h->len)
                        return -EPROTO;
                __atomic_store_n(&ctl->host_release[h->a], VGPU_HOST_REACHED, __ATOMIC_RELEASE);
                __atomic_add_fetch(&l->reached[h->a], 1, __ATOMIC_SEQ_CST);
                wake_guests(ctl);
                return 0;
        case LINK_FLAGS:
                __atomic_store_n(&ctl->suspended, h->a ? 1u : 0u, __ATOMIC_SEQ_CST);
                if (!h->a)
                        chan_futex_wake(&ctl->suspended);
                if (h->b)
                        return -ECONNRESET; /* the engine closed the channel */
                return 0;
        case LINK_MOVED:
                return reattach(l, p, h->len);
        default:
                return -EPROTO;
        }
}

static void *down_main(void *arg)
{
        struct glink *l = arg;
        struct vgpu_chan_ctl *ctl = l->d->v.ctl;
        int r = 0;

        while (r == 0 && !l->stop) {
                struct pollfd pfd = {.fd = l->c.fd, .events = POLLIN};
                struct link_hdr h;

                if (l->c.rlen == l->c.roff && poll(&pfd, 1, LINK_POLL_MS) == 0)
                        continue;
                /* messages, one after the other, in the stream of DATA frames */
                r = mw_read(&l->c, &h, sizeof(h));
                if (r > 0 && h.len > LINK_MAX)
                        r = -EPROTO;
                if (r > 0 && h.len)
                        r = mw_read(&l->c, l->rbuf, h.len);
                if (r > 0)
                        r = apply(l, &h, l->rbuf);
                if (r < 0 && r != -ECONNRESET)
                        vgpu_log(VGPU_LOG_WARN, "vGPU %s: the link to its engine broke: %s",
                                 l->uuid, r == -EPROTO ? "protocol error" : l->c.err);
        }
        /* the engine is gone: every wait of the program ends */
        l->stop = 1;
        __atomic_store_n(&ctl->engine_dead, 1, __ATOMIC_SEQ_CST);
        close(l->peer_sock);
        wake_guests(ctl);
        chan_futex_wake(&ctl->suspended);
        return NULL;
}

/*
 * The vGPU moved (p: its token, then the new vgpud's guest address): connect there, hand over
 * the channel as it is (what the program queued after the pause is in its ring), and go on with
 * the new engine. Until its first report says otherwise the channel stays suspended.
 */
static int reattach(struct glink *l, const uint8_t *p, uint32_t len)
{
        struct chan_view *v = &l->d->v;
        uint64_t from = (uint64_t)((uint8_t *)v->ctl - (uint8_t *)v->base);
        uint64_t ring = (uint64_t)(v->ring - (uint8_t *)v->base);
        struct vgpu_chan_ctl ctl_copy;
        struct mw_conn nc;
        char addr[256], hex[33];
        json_t *info = NULL;
        uint64_t head;
        int r;

        if (len <= 16 || len - 16 >= sizeof(addr))
                return -EPROTO;
        memcpy(addr, p + 16, len - 16);
        addr[len - 16] = '\0';
        for (int i = 0; i < 16; i++)
                snprintf(hex + 2 * i, 3, "%02x", p[i]);
        pthread_mutex_lock(&l->lock);
        /* the new vgpud may still be taking the vGPU in: a few tries */
        for (int i = 0; i < LINK_REATTACH_TRIES; i++) {
                r = open_link(l, addr,
                              json_pack("{s:s, s:s, s:s, s:i}", "op", "reattach", "uuid", l->uuid,
                                        "token", hex, "version", VGPU_PROTO_VERSION),
                              &nc, &info);
                if (r == 0 || l->stop)
                        break;
                usleep(250000);
        }
        if (r == 0) {
                /* the ring up to here goes along; what comes after, as commands */
                head = __atomic_load_n(&v->ctl->head, __ATOMIC_ACQUIRE);
                memcpy(&ctl_copy, v->ctl, sizeof(ctl_copy));
                ctl_copy.head = head;
                ctl_copy.pushing = 0;
                r = send_msg(&nc, LINK_CHAN, from, 0, &ctl_copy, sizeof(ctl_copy), NULL, 0);
                for (uint64_t o = ring; r == 0 && o < v->size; o += LINK_MAX) {
                        uint32_t k = (uint32_t)(v->size - o < LINK_MAX ? v->size - o : LINK_MAX);

                        r = send_msg(&nc, LINK_CHAN, o, 0, (uint8_t *)v->base + o, k, NULL, 0);
                }
                if (r == 0)
                        r = send_msg(&nc, LINK_READY, 0, 0, NULL, 0, NULL, 0);
                if (r == 0) {
                        mw_close(&l->c);
                        l->c = nc;
                        l->sent = head;
                        l->d->gpu_index =
                                (int)json_integer_value(json_object_get(info, "gpu_index"));
                        snprintf(l->addr, sizeof(l->addr), "%s", addr);
                        vgpu_log(VGPU_LOG_INFO, "vGPU %s moved: re-attached at %s", l->uuid, addr);
                } else {
                        mw_close(&nc);
                }
        }
        pthread_mutex_unlock(&l->lock);
        json_decref(info);
        return r < 0 ? -ECONNRESET : 0;
}

/* ---- attaching ---------------------------------------------------------------------------- */

int guest_attach_remote(const char *addr, const char *secret_path, const char *uuid)
{
        struct glink *l = calloc(1, sizeof(*l));
        struct gdev *d = calloc(1, sizeof(*d));
        uint64_t size = chan_total_size();
        int sp[2] = {-1, -1};
        json_t *info = NULL;
        char err[512];
        void *base = MAP_FAILED;
        int r = -ENOMEM;

        if (!l || !d || !(l->rbuf = malloc(MW_FRAME_MAX)))
                goto fail;
        l->d = d;
        snprintf(l->addr, sizeof(l->addr), "%s", addr);
        snprintf(l->uuid, sizeof(l->uuid), "%s", uuid);
        pthread_mutex_init(&l->lock, NULL);
        r = mw_secret_load(secret_path ? secret_path : "", l->secret, sizeof(l->secret), &l->slen,
                           err, sizeof(err));
        if (r < 0) {
                vgpu_log(VGPU_LOG_WARN, "VGPU_REMOTE_SECRET: %s", err);
                goto fail;
        }
        r = open_link(l, addr,
                      json_pack("{s:s, s:s, s:i}", "op", "attach", "uuid", uuid, "version",
                                VGPU_PROTO_VERSION),
                      &l->c, &info);
        if (r < 0)
                goto fail;
        r = -EADDRINUSE;
        if (guest_range_clash(info))
                goto fail;
        r = -EPROTO;
        if ((uint64_t)json_integer_value(json_object_get(info, "channel_size")) != size ||
            json_integer_value(json_object_get(info, "version")) != VGPU_PROTO_VERSION) {
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: its engine speaks another protocol version",
                         uuid);
                goto fail;
        }
        base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED || !(l->ubuf = malloc(VGPU_RING_SIZE)) ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                goto fail;
        chan_layout(base, size, &d->v);
        /* the up thread sleeps on head_futex: the program always wakes it */
        d->v.ctl->engine_sleeping = 1;
        guest_dev_setup(d, info, sp[0], "00000000:00:00.0");
        d->remote = l;
        l->peer_sock = sp[1];
        r = -pthread_create(&l->up, NULL, up_main, l);
        if (r == 0) {
                r = -pthread_create(&l->down, NULL, down_main, l);
                if (r < 0) {
                        l->stop = 1;
                        pthread_join(l->up, NULL);
                }
        }
        if (r < 0)
                goto fail;
        pthread_detach(l->up);
        pthread_detach(l->down);
        json_decref(info);
        vgpu_log(VGPU_LOG_DEBUG, "vGPU %s attached over TCP at %s", uuid, addr);
        return guest_dev_add(d);
fail:
        vgpu_log(VGPU_LOG_WARN, "vGPU %s at %s: cannot attach over TCP: %s", uuid, addr,
                 strerror(-r));
        json_decref(info);
        if (base != MAP_FAILED)
                munmap(base, size);
        if (sp[0] >= 0) {
                close(sp[0]);
                close(sp[1]);
        }
        if (l) {
                if (l->c.fd > 0)
                        mw_close(&l->c);
                free(l->rbuf);
                free(l->ubuf);
        }
        free(l);
        free(d);
        return r;
}
