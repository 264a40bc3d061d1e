// SPDX-License-Identifier: Apache-2.0
// A vGPU's move to another vgpud's engine (transfer.h). On the connection, after vgpud's offer:
//   source: {"round": i} and an image of the blocks written since the last round (pre-copy), ...
//   source: {"final": 1, "sessions": [bytes, ...]}, the sessions' bytes, then an image of every
//           block (with the data of those written since the last round, or of all)
//   target: {"ready": 1, "guest_socket": PATH} or {"error": WHY}
//   source: {"commit": 1} (its guests now re-attach at PATH) or {"abort": WHY}
// Either side may send {"abort": WHY} (source) or {"error": WHY} (target) instead of its next
// message. Nothing is final before the commit: until then the source's sessions can go on.
#include "engine/transfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "common/log.h"
#include "engine/wptrack.h"

#define XFER_MAX_ROUNDS 6
#define XFER_ENOUGH     (UINT64_C(8) << 20) /* a round this small: stop and send the rest */
#define XFER_READY_MS   120000              /* the target loads the guests' modules meanwhile */
#define XFER_SESSIONS   64                  /* at most, as an engine's guests */
#define XFER_SES_BYTES  (UINT64_C(1) << 30) /* the sessions' bytes, in all */

static int io_write(void *ctx, const void *p, size_t len)
{
        return mw_write(ctx, p, len);
}

static int io_read(void *ctx, void *p, size_t len)
{
        return mw_read(ctx, p, len);
}

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the source --------------------------------------------------------------------------- */

/*
 * The framebuffer, but only the data of the blocks in want (sorted), and of the pages bits says
 * were written (wptrack.h); all: everything.
 */
struct xsrc {
        struct fbio io;
        bool all;
        const struct fbmem_block *want;
        size_t n_want;
        const uint64_t *bits;
        uint64_t pbase; /* the device address of bit 0 */
        bool sparse;
};

static bool block_wanted(const struct xsrc *x, uint64_t addr)
{
        size_t lo = 0, hi = x->n_want;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;

                if (addr < x->want[mid].base)
                        hi = mid;
                else if (addr - x->want[mid].base >= x->want[mid].size)
                        lo = mid + 1;
                else
                        return true;
        }
        return false;
}

static bool page_wanted(const struct xsrc *x, uint64_t addr)
{
        return x->bits && wptrack_dirty(x->bits, (size_t)((addr - x->pbase) / WPTRACK_PAGE));
}

static uint64_t next_page(uint64_t a)
{
        return (a & ~(uint64_t)(WPTRACK_PAGE - 1)) + WPTRACK_PAGE;
}

static int xsrc_read(void *ctx, uint64_t addr, void *buf, uint64_t len)
{
        return fb_read(&((struct xsrc *)ctx)->io, addr, buf, len);
}

/* Each call is inside one block: a wanted block is all data (but its holes). */
static uint64_t xsrc_next_data(void *ctx, uint64_t addr, uint64_t end)
{
        struct xsrc *x = ctx;

        if (x->all || block_wanted(x, addr))
                return x->sparse ? fb_next_data(&x->io, addr, end) : addr;
        for (uint64_t a = addr; a < end; a = next_page(a)) {
                if (page_wanted(x, a))
                        return a;
        }
        return end;
}

static uint64_t xsrc_next_hole(void *ctx, uint64_t addr, uint64_t end)
{
        struct xsrc *x = ctx;

        if (x->all || block_wanted(x, addr))
                return x->sparse ? fb_next_hole(&x->io, addr, end) : end;
        for (uint64_t a = addr; a < end; a = next_page(a)) {
                if (!page_wanted(x, a))
                        return a;
        }
        return end;
}

/* An image of blocks b (n), with the data x selects, onto the connection. */
static int send_image(struct xsrc *x, const struct snap_meta *meta, const struct fbmem_block *b,
                      size_t n, struct mw_conn *c, uint64_t *ret_bytes, char *err, size_t len)
{
        struct snap_source src = {.ctx = x,
                                  .read = xsrc_read,
                                  .next_data = xsrc_next_data,
                                  .next_hole = xsrc_next_hole};
        struct snap_io io = {.ctx = c, .write = io_write, .stream = true};
        struct snap_stats st = {0};
        int r;

        r = snap_write_io(&io, meta, b, n, &src, 0, &st, err, len);
        if (r == 0 && mw_flush(c) < 0) {
                snprintf(err, len, "%s", c->tx_err);
                r = -EPIPE;
        }
        if (r < 0 && c->tx_err[0] && !strstr(err, c->tx_err))
                snprintf(err, len, "%s", c->tx_err);
        *ret_bytes += st.data_bytes;
        return r;
}

static int send_msg(struct mw_conn *c, json_t *o, char *err, size_t len)
{
        int r = o ? mw_send_json(c, o, err, len) : -ENOMEM;

        json_decref(o);
        return r;
}

/* A copy of the allocator's blocks. */
static long all_blocks(struct vgpu_dev *d, struct fbmem_block **ret)
{
        struct fbmem_block *b;
        size_t n;

        pthread_rwlock_rdlock(&d->mem.lock);
        n = d->mem.n;
        b = malloc((n ? n : 1) * sizeof(*b));
        if (b)
                memcpy(b, d->mem.blocks, n * sizeof(*b));
        pthread_rwlock_unlock(&d->mem.lock);
        *ret = b;
        return b ? (long)n : -ENOMEM;
}

/*
 * What was written since the last round: with write protection (the sim, wp), the pages written
 * (x->bits), and with marks, the blocks the allocator's marks name too; without, or when it gave
 * up, every block the marks name (a kernel marks all of its context's). Fills x (its want and
 * bits the caller frees).
 */
static int written(struct vgpu_dev *d, bool *wp, bool marks, struct xsrc *x)
{
        struct fbmem_block *b = NULL;
        size_t pages;
        long n;
        int r;

        if (*wp) {
                r = wptrack_take((uint64_t **)&x->bits, &pages);
                if (r == 0) {
                        x->pbase = d->fb.device_address;
                        n = fbmem_take_dirty(&d->mem, false, &b);
                        if (n < 0)
                                return -ENOMEM;
                        if (!marks) {
                                free(b); /* the marks are for the fallback only */
                                b = NULL;
                                n = 0;
                        }
                        x->want = b;
                        x->n_want = (size_t)n;
                        return 0;
                }
                if (r != -EOVERFLOW)
                        return r;
                vgpu_log(VGPU_LOG_INFO, "write tracking gave up: copying what kernels could write");
                *wp = false;
                wptrack_stop();
        }
        n = fbmem_take_dirty(&d->mem, false, &b);
        if (n < 0)
                return -ENOMEM;
        x->want = b;
        x->n_want = (size_t)n;
        return 0;
}

/* Pre-copy: send what was written since the last round, while the guests run. */
static int precopy_rounds(struct vgpu_dev *d, struct backend_queue *q, const struct snap_meta *meta,
                          bool *wp, const struct vdev_peers *vp, struct mw_conn *c,
                          struct transfer_stats *st, char *err, size_t len)
{
        struct fbmem_block *all = NULL;
        long n_all, n;
        int r = 0;

        __atomic_store_n(&d->track_writes, 1, __ATOMIC_RELEASE);
        if (*wp && wptrack_start(d->fb.host, d->fb.size) < 0)
                *wp = false;
        n = fbmem_take_dirty(&d->mem, true, &all); /* clears the marks: round 0 sends all */
        free(all);
        if (n < 0)
                return -ENOMEM;
        for (unsigned round = 0; r == 0 && round < XFER_MAX_ROUNDS; round++) {
                struct xsrc x = {.io = {.d = d, .q = q}, .sparse = d->fb.fd >= 0, .all = !round};
                uint64_t before = st->live_bytes;

                if (vp && round)
                        vp->collect(vp->ctx); /* what the peers wrote, into d's marks */
                n_all = all_blocks(d, &all);
                if (n_all < 0)
                        return -ENOMEM;
                r = round ? written(d, wp, false, &x) : 0;
                if (r == 0)
                        r = send_msg(c, json_pack("{s:I}", "round", (json_int_t)round), err, len);
                if (r == 0)
                        r = send_image(&x, meta, all, (size_t)n_all, c, &st->live_bytes, err, len);
                free(all);
                free((void *)x.want);
                free((void *)x.bits);
                st->rounds++;
                if (round && st->live_bytes - before < XFER_ENOUGH)
                        break;
        }
        return r;
}

/* Wait for the target's answer to the final part: its guest socket, or why not. */
static int await_ready(struct mw_conn *c, char *to, size_t to_len, char *err, size_t len)
{
        json_t *m = NULL;
        const char *gs, *why;
        int saved = c->timeout_ms, r;

        c->timeout_ms = XFER_READY_MS;
        r = mw_recv_json(c, &m, err, len);
        c->timeout_ms = saved;
        if (r < 0)
                return r;
        gs = json_string_value(json_object_get(m, "guest_socket"));
        why = json_string_value(json_object_get(m, "error"));
        if (!json_is_true(json_object_get(m, "ready")) || !gs || !*gs || strlen(gs) >= to_len) {
                snprintf(err, len, "the target refused the vGPU: %s",
                         why ? why : "malformed answer");
                json_decref(m);
                return -EREMOTEIO;
        }
        snprintf(to, to_len, "%s", gs);
        json_decref(m);
        return 0;
}

int transfer_send(struct vgpu_dev *d, struct session *const *s, size_t n,
                  const struct snap_meta *meta, bool precopy, struct mw_conn *c,
                  struct transfer_stats *st, char *err, size_t len)
{
        return transfer_send_peers(d, s, n, NULL, meta, precopy, c, st, err, len);
}

int transfer_send_peers(struct vgpu_dev *d, struct session *const *s, size_t n,
                        const struct transfer_peers *peers, const struct snap_meta *meta,
                        bool precopy, struct mw_conn *c, struct transfer_stats *st, char *err,
                        size_t len)
{
        struct backend_queue *q = NULL;
        struct fbmem_block *all = NULL, *marks = NULL;
        struct xsrc x = {.io = {.d = d}, .sparse = d->fb.fd >= 0, .all = !precopy};
        const struct vdev_peers *vp = peers ? peers->vp : NULL;
        /* the sim's framebuffer is this process's memory: write protection tracks pages (the
         * engine's own sessions' writes: a peer's are its worker's, tracked there) */
        bool wp = precopy && !peers && d->fb.host && d->fb.fd >= 0 && !getenv("VGPU_MOVE_NO_WP");
        uint8_t *blob[XFER_SESSIONS] = {0};
        size_t blen[XFER_SESSIONS] = {0};
        size_t n_blob = 0;
        bool peers_paused = false;
        long n_all = 0;
        char to[108];
        json_t *lens;
        uint64_t t0 = 0;
        bool paused = false;
        int r;

        *st = (struct transfer_stats){0};
        if (n > XFER_SESSIONS) {
                snprintf(err, len, "too many guests");
                return -E2BIG;
        }
        r = d->ops->queue_new(d->bdev, &q);
        if (r < 0) {
                snprintf(err, len, "no queue for the copy: %s", strerror(-r));
                return r;
        }
        x.io.q = q;
        if (precopy && vp)
                vp->track(vp->ctx, true);
        if (precopy) {
                r = precopy_rounds(d, q, meta, &wp, vp, c, st, err, len);
        } else {
                /* the blocks alone first, while the guests run: the target makes their pages */
                struct xsrc plan = {.io = {.d = d, .q = q}};
                uint64_t none = 0;

                n_all = all_blocks(d, &all);
                r = n_all < 0 ? -ENOMEM : send_msg(c, json_pack("{s:i}", "round", 0), err, len);
                if (r == 0)
                        r = send_image(&plan, meta, all, (size_t)n_all, c, &none, err, len);
                free(all);
                all = NULL;
        }
        if (r == 0) {
                t0 = now_ns();
                paused = true;
                r = vdev_pause(s, n);
                if (r < 0)
                        snprintf(err, len, "a guest's command did not end within %g s",
                                 (double)session_pause_limit_ns() / 1e9);
                /* with pages tracked, the marks from here on are the modules' variables */
                if (wp && fbmem_take_dirty(&d->mem, false, &marks) >= 0) {
                        free(marks);
                        marks = NULL;
                }
                if (vp && r == 0) {
                        r = vp->pause(vp->ctx);
                        peers_paused = true;
                        if (r == -ETIMEDOUT)
                                snprintf(err, len, "a guest's command did not end within %g s",
                                         (double)session_pause_limit_ns() / 1e9);
                        else if (r < 0)
                                snprintf(err, len, "a worker did not stop: %s", strerror(-r));
                }
                for (size_t i = 0; r == 0 && i < n; i++) {
                        r = session_export(s[i], &blob[i], &blen[i]);
                        if (r < 0)
                                snprintf(err, len, "guest %d: %s", (int)session_pid(s[i]),
                                         r == -ENOTSUP ? "its modules' variables were placed by "
                                                         "the backend and cannot move"
                                                       : strerror(-r));
                        else
                                n_blob++;
                }
                if (r == 0 && peers) {
                        size_t k = 0;

                        r = peers->export(peers->vp->ctx, blob + n_blob, blen + n_blob,
                                          XFER_SESSIONS - n_blob, &k, err, len);
                        if (r == 0)
                                n_blob += k;
                        /* the marks of their export (modules' variables) and of their last
                         * writes */
                        if (r == 0 && precopy)
                                vp->collect(vp->ctx);
                }
        }
        if (r == 0) {
                n_all = all_blocks(d, &all);
                r = n_all < 0 ? -ENOMEM : precopy ? written(d, &wp, true, &x) : 0;
                if (r < 0)
                        snprintf(err, len, "out of memory");
        }
        if (r == 0) {
                lens = json_array();
                for (size_t i = 0; i < n_blob; i++)
                        json_array_append_new(lens, json_integer((json_int_t)blen[i]));
                r = send_msg(c, json_pack("{s:b, s:o}", "final", 1, "sessions", lens), err, len);
                for (size_t i = 0; r == 0 && i < n_blob; i++) {
                        if (mw_write(c, blob[i], blen[i]) < 0) {
                                snprintf(err, len, "%s", c->tx_err);
                                r = -EPIPE;
                        }
                }
        }
        if (r == 0)
                r = send_image(&x, meta, all, (size_t)n_all, c, &st->stopped_bytes, err, len);
        if (precopy)
                wptrack_stop();
        if (precopy && vp)
                vp->track(vp->ctx, false);
        if (r == 0)
                r = await_ready(c, to, sizeof(to), err, len);
        if (r == 0) {
                /* the point of no return: the guests go there, the target keeps the vGPU */
                for (size_t i = 0; i < n; i++)
                        session_mark_moved(s[i], to);
                if (peers)
                        peers->moved(vp->ctx, to, peers->tcp);
                r = send_msg(c, json_pack("{s:b}", "commit", 1), err, len);
                if (r < 0)
                        vgpu_log(VGPU_LOG_WARN,
                                 "vGPU %s: the commit may not have reached the target: %s",
                                 meta->uuid, err);
                r = 0;
        } else {
                char why[512];

                snprintf(why, sizeof(why), "%s", err);
                send_msg(c, json_pack("{s:s}", "abort", why), why, sizeof(why));
        }
        __atomic_store_n(&d->track_writes, 0, __ATOMIC_RELEASE);
        if (paused) {
                st->stun_ns = now_ns() - t0;
                if (r < 0)
                        vdev_unpause(s, n);
        }
        if (peers_paused && r < 0)
                vp->unpause(vp->ctx);
        st->wire_bytes = c->bytes_tx;
        for (size_t i = 0; i < n_blob; i++)
                free(blob[i]);
        free(all);
        free((void *)x.want);
        free((void *)x.bits);
        d->ops->queue_free(q);
        return r;
}

/* ---- the target --------------------------------------------------------------------------- */

struct xdst {
        struct fbio io;
        bool final;
        /* the final part's sessions, built once the allocator holds their blocks */
        uint8_t *blob;
        size_t blen[XFER_SESSIONS];
        size_t n;
        struct session **ses;
        /* or, for an engine whose sessions run in workers (worker.h), their bytes, checked */
        struct transfer_blob *blobs;
        size_t n_kept;
        char *err;
        size_t err_len;
};

void transfer_blobs_free(struct transfer_blob *b, size_t n)
{
        for (size_t i = 0; b && i < n; i++)
                free(b[i].p);
        free(b);
}

/* A session's bytes kept for its worker: its head checked, its id not another's. */
static int keep_blob(struct xdst *x, const void *p, size_t len)
{
        struct transfer_blob *b;

        if (x->n_kept >= XFER_SESSIONS)
                return -E2BIG;
        b = &x->blobs[x->n_kept];
        if (session_image_peek(p, len, &b->head) < 0) {
                snprintf(x->err, x->err_len, "a session's image is malformed");
                return -EBADMSG;
        }
        for (size_t k = 0; k < x->n_kept; k++) {
                if (x->blobs[k].head.id == b->head.id) {
                        snprintf(x->err, x->err_len, "two sessions with id %u", b->head.id);
                        return -EBADMSG;
                }
        }
        b->p = malloc(len);
        if (!b->p) {
                snprintf(x->err, x->err_len, "out of memory");
                return -ENOMEM;
        }
        memcpy(b->p, p, len);
        b->len = len;
        x->n_kept++;
        return 0;
}

/* A round's table says what the data is of; only the final one is the allocator's. */
static int xdst_blocks(void *ctx, const struct snap_meta *meta, const struct fbmem_block *b,
                       size_t n)
{
        struct xdst *x = ctx;
        struct vgpu_dev *d = x->io.d;
        size_t off = 0;
        int r = 0;

        (void)meta;
        if (!x->final) {
                /* a round: make the pages of the blocks it names (the sim), before the pause */
                for (size_t i = 0; d->fb.host && i < n; i++) {
                        uint64_t o = b[i].base - d->fb.device_address;
                        uint64_t lo = o & ~(uint64_t)4095;
                        uint64_t hi = (o + b[i].size + 4095) & ~(uint64_t)4095;

                        if (b[i].base >= d->fb.device_address && hi <= d->fb.size)
                                madvise((uint8_t *)d->fb.host + lo, hi - lo, MADV_POPULATE_WRITE);
                }
                return 0;
        }
        for (size_t i = 0; r == 0 && i < n; i++)
                r = fbmem_alloc_at(&d->mem, b[i].base, b[i].size, b[i].owner);
        if (r < 0) {
                snprintf(x->err, x->err_len, "the image's allocations do not fit the framebuffer");
                return -EBADMSG;
        }
        for (size_t i = 0; r == 0 && x->blobs && i < x->n; i++) {
                r = keep_blob(x, x->blob + off, x->blen[i]);
                off += x->blen[i];
        }
        for (size_t i = 0; r == 0 && !x->blobs && i < x->n; i++) {
                r = session_import(d, x->blob + off, x->blen[i], &x->ses[i], x->err, x->err_len);
                off += x->blen[i];
                /* a session's id tags its blocks: two of one id would share them */
                for (size_t k = 0; r == 0 && k < i; k++) {
                        if (session_id(x->ses[k]) == session_id(x->ses[i])) {
                                snprintf(x->err, x->err_len, "two sessions with id %u",
                                         session_id(x->ses[i]));
                                r = -EBADMSG;
                        }
                }
        }
        return r;
}

static int xdst_write(void *ctx, uint64_t addr, const void *data, uint64_t len)
{
        struct xdst *x = ctx;
        const struct backend_fb *fb = &x->io.d->fb;

        if (addr < fb->device_address || addr - fb->device_address > fb->size ||
            len > fb->size - (addr - fb->device_address))
                return -EFAULT;
        return fb_write(&x->io, addr, data, len);
}

static void drop_sessions(struct vgpu_dev *d, struct session **ses, size_t n)
{
        for (size_t i = 0; ses && i < n; i++)
                session_free(ses[i]);
        fbmem_free_owner(&d->mem, 0, 0); /* every block */
}

/* The final part: the sessions' bytes (lens, checked), then the image that places them. */
static int recv_final(struct xdst *x, json_t *lens, struct mw_conn *c, const struct snap_meta *meta,
                      char *err, size_t len)
{
        struct snap_io io = {.ctx = c, .read = io_read, .stream = true};
        uint64_t total = 0;
        json_t *v;
        size_t i;
        int r;

        if (!json_is_array(lens) || json_array_size(lens) > XFER_SESSIONS) {
                snprintf(err, len, "the source's final part is malformed");
                return -EBADMSG;
        }
        json_array_foreach(lens, i, v)
        {
                if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
                    (uint64_t)json_integer_value(v) > XFER_SES_BYTES - total) {
                        snprintf(err, len, "the source's sessions are too large or malformed");
                        return -EBADMSG;
                }
                x->blen[i] = (size_t)json_integer_value(v);
                total += x->blen[i];
        }
        x->n = json_array_size(lens);
        x->blob = malloc(total ? total : 1);
        x->ses = calloc(x->n ? x->n : 1, sizeof(*x->ses));
        if (!x->blob || !x->ses) {
                snprintf(err, len, "out of memory for the sessions");
                return -ENOMEM;
        }
        if (total && mw_read(c, x->blob, total) < 0) {
                snprintf(err, len, "%s", c->err);
                return -EPIPE;
        }
        x->final = true;
        x->err = err;
        x->err_len = len;
        r = snap_read_io(&io, meta,
                         &(struct snap_sink){.ctx = x, .blocks = xdst_blocks, .write = xdst_write},
                         NULL, err, len);
        if (r < 0 && c->err[0] && r != -EBADMSG && r != -ESTALE)
                snprintf(err, len, "%s", c->err);
        return r;
}

/*
 * Blocks of sessions the image does not hold (a suspend by an engine with workers leaves out a
 * session it cannot save, which only that engine resumes; a worker whose guest had just left was
 * still ending) have nobody to free them here: they go.
 */
static void drop_orphans(struct vgpu_dev *d, const struct transfer_blob *b, size_t n)
{
        for (;;) {
                uint32_t orphan = 0;

                pthread_rwlock_rdlock(&d->mem.lock);
                for (size_t i = 0; i < d->mem.n && !orphan; i++) {
                        uint32_t sid = (uint32_t)(d->mem.blocks[i].owner >> 32);
                        bool known = sid == 0; /* (blocks of no session stay) */

                        for (size_t k = 0; k < n && !known; k++)
                                known = b[k].head.id == sid;
                        if (!known)
                                orphan = sid;
                }
                pthread_rwlock_unlock(&d->mem.lock);
                if (!orphan)
                        return;
                vgpu_log(VGPU_LOG_INFO, "the image holds no session %u: its blocks go", orphan);
                fbmem_free_owner(&d->mem, (uint64_t)orphan << 32, ~UINT64_C(0) << 32);
        }
}

static int recv_all(struct xdst *xp, const struct snap_meta *meta, const char *guest_socket,
                    struct mw_conn *c, char *err, size_t len)
{
        struct xdst x = *xp;
        struct vgpu_dev *d = x.io.d;
        struct snap_io io = {.ctx = c, .read = io_read, .stream = true};
        json_t *m = NULL;
        int r;

        r = d->ops->queue_new(d->bdev, &x.io.q);
        if (r < 0) {
                snprintf(err, len, "no queue for the copy: %s", strerror(-r));
                return r;
        }
        for (;;) {
                const char *why;

                r = mw_recv_json(c, &m, err, len);
                if (r < 0)
                        break;
                why = json_string_value(json_object_get(m, "abort"));
                if (why) {
                        snprintf(err, len, "the source gave up: %s", why);
                        r = -ECANCELED;
                        break;
                }
                if (json_is_integer(json_object_get(m, "round"))) {
                        r = snap_read_io(&io, meta,
                                         &(struct snap_sink){.ctx = &x,
                                                             .blocks = xdst_blocks,
                                                             .write = xdst_write},
                                         NULL, err, len);
                        if (r < 0)
                                break;
                        json_decref(m);
                        m = NULL;
                        continue;
                }
                if (json_is_true(json_object_get(m, "final"))) {
                        r = recv_final(&x, json_object_get(m, "sessions"), c, meta, err, len);
                        break;
                }
                snprintf(err, len, "the source sent something unexpected");
                r = -EBADMSG;
                break;
        }
        json_decref(m);
        m = NULL;
        d->ops->queue_free(x.io.q);
        if (r == 0) {
                r = send_msg(c, json_pack("{s:b, s:s}", "ready", 1, "guest_socket", guest_socket),
                             err, len);
                if (r == 0)
                        r = mw_recv_json(c, &m, err, len);
                if (r == 0 && !json_is_true(json_object_get(m, "commit"))) {
                        const char *why = json_string_value(json_object_get(m, "abort"));

                        snprintf(err, len, "the source gave up: %s", why ? why : "no commit");
                        r = -ECANCELED;
                }
                json_decref(m);
        } else {
                char why[512];

                snprintf(why, sizeof(why), "%s", err);
                send_msg(c, json_pack("{s:s}", "error", why), why, sizeof(why));
        }
        if (r < 0) {
                drop_sessions(d, x.ses, x.ses ? x.n : 0);
                free(x.ses);
                x.ses = NULL;
        }
        free(x.blob);
        x.blob = NULL;
        *xp = x;
        return r;
}

int transfer_recv(struct vgpu_dev *d, const struct snap_meta *meta, const char *guest_socket,
                  struct mw_conn *c, struct session ***ret, size_t *ret_n, char *err, size_t len)
{
        struct xdst x = {.io = {.d = d}};
        int r = recv_all(&x, meta, guest_socket, c, err, len);

        if (r < 0)
                return r;
        *ret = x.ses;
        *ret_n = x.n;
        return 0;
}

int transfer_recv_bytes(struct vgpu_dev *d, const struct snap_meta *meta, const char *guest_socket,
                        struct mw_conn *c, struct transfer_blob **ret, size_t *ret_n, char *err,
                        size_t len)
{
        struct xdst x = {.io = {.d = d}};
        int r;

        x.blobs = calloc(XFER_SESSIONS, sizeof(*x.blobs));
        if (!x.blobs) {
                snprintf(err, len, "out of memory");
                return -ENOMEM;
        }
        r = recv_all(&x, meta, guest_socket, c, err, len);
        free(x.ses); /* none: the workers import the sessions */
        if (r < 0) {
                transfer_blobs_free(x.blobs, x.n_kept);
                return r;
        }
        drop_orphans(d, x.blobs, x.n_kept); /* (a worker that was ending there had its blocks) */
        *ret = x.blobs;
        *ret_n = x.n_kept;
        return 0;
}

/* ---- a suspended vGPU whose engine is gone ------------------------------------------------ */

/* A session of the image: built now (the allocator holds the blocks), before the data. */
static int xdst_session(void *ctx, const void *p, size_t len)
{
        struct xdst *x = ctx;
        int r;

        if (x->n >= XFER_SESSIONS)
                return -E2BIG;
        if (x->blobs)
                return keep_blob(x, p, len);
        r = session_import(x->io.d, p, len, &x->ses[x->n], x->err, x->err_len);
        if (r < 0)
                return r;
        for (size_t k = 0; k < x->n; k++) {
                if (session_id(x->ses[k]) == session_id(x->ses[x->n])) {
                        session_free(x->ses[x->n]);
                        snprintf(x->err, x->err_len, "two sessions with id %u",
                                 session_id(x->ses[k]));
                        return -EBADMSG;
                }
        }
        x->n++;
        return 0;
}

static int restore(struct xdst *x, const struct snap_meta *meta, int fd, char *err, size_t len)
{
        struct vgpu_dev *d = x->io.d;
        struct snap_sink sink = {
                .ctx = x, .blocks = xdst_blocks, .write = xdst_write, .session = xdst_session};
        int r;

        r = d->ops->queue_new(d->bdev, &x->io.q);
        if (r < 0) {
                snprintf(err, len, "no queue for the copy: %s", strerror(-r));
                return r;
        }
        err[0] = '\0';
        r = snap_read(fd, meta, &sink, NULL, err, len);
        d->ops->queue_free(x->io.q);
        if (r < 0)
                drop_sessions(d, x->ses, x->n);
        return r;
}

int transfer_restore(struct vgpu_dev *d, const struct snap_meta *meta, int fd,
                     struct session ***ret, size_t *ret_n, char *err, size_t len)
{
        struct xdst x = {.io = {.d = d}, .final = true, .err = err, .err_len = len};
        int r;

        x.ses = calloc(XFER_SESSIONS, sizeof(*x.ses));
        if (!x.ses) {
                snprintf(err, len, "out of memory");
                return -ENOMEM;
        }
        r = restore(&x, meta, fd, err, len);
        if (r < 0) {
                free(x.ses);
                return r;
        }
        *ret = x.ses;
        *ret_n = x.n;
        return 0;
}

int transfer_restore_bytes(struct vgpu_dev *d, const struct snap_meta *meta, int fd,
                           struct transfer_blob **ret, size_t *ret_n, char *err, size_t len)
{
        struct xdst x = {.io = {.d = d}, .final = true, .err = err, .err_len = len};
        int r;

        x.blobs = calloc(XFER_SESSIONS, sizeof(*x.blobs));
        if (!x.blobs) {
                snprintf(err, len, "out of memory");
                return -ENOMEM;
        }
        r = restore(&x, meta, fd, err, len);
        if (r < 0) {
                transfer_blobs_free(x.blobs, x.n_kept);
                return r;
        }
        drop_orphans(d, x.blobs, x.n_kept);
        *ret = x.blobs;
        *ret_n = x.n_kept;
        return 0;
}
