// SPDX-License-Identifier: Apache-2.0
// Suspend and resume inside an engine (suspend.h): the framebuffer to an image and back.
#include "engine/suspend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/wptrack.h"

int vdev_pause(struct session *const *s, size_t n)
{
        uint64_t deadline = chan_now_ns() + session_pause_limit_ns();
        int r = 0;

        /* all channels say "suspended" first, so that no guest starts a call meanwhile */
        for (size_t i = 0; i < n; i++)
                session_mark_suspended(s[i], true);
        for (size_t i = 0; i < n; i++) {
                int e = session_pause(s[i], deadline);

                if (e < 0 && r == 0)
                        r = e;
        }
        return r;
}

void vdev_unpause(struct session *const *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                session_unpause(s[i]);
}

int fb_read(void *ctx, uint64_t addr, void *buf, uint64_t len)
{
        struct fbio *io = ctx;
        int r = io->d->ops->copy_dtoh(io->q, buf, addr, len);

        return r < 0 ? r : io->d->ops->queue_sync(io->q);
}

int fb_write(void *ctx, uint64_t addr, const void *data, uint64_t len)
{
        struct fbio *io = ctx;
        int r = io->d->ops->copy_htod(io->q, addr, data, len);

        return r < 0 ? r : io->d->ops->queue_sync(io->q);
}

/* The sim's framebuffer is a sparse memfd: pages never written are holes, and read as zeros. */
static uint64_t fb_seek(struct vgpu_dev *d, uint64_t addr, uint64_t end, int whence)
{
        off_t o = lseek(d->fb.fd, (off_t)(addr - d->fb.device_address), whence);

        if (o < 0)
                return whence == SEEK_DATA && errno == ENXIO ? end : addr;
        addr = d->fb.device_address + (uint64_t)o;
        return addr < end ? addr : end;
}

uint64_t fb_next_data(void *ctx, uint64_t addr, uint64_t end)
{
        return fb_seek(((struct fbio *)ctx)->d, addr, end, SEEK_DATA);
}

uint64_t fb_next_hole(void *ctx, uint64_t addr, uint64_t end)
{
        return fb_seek(((struct fbio *)ctx)->d, addr, end, SEEK_HOLE);
}

int vdev_save(struct vgpu_dev *d, const struct snap_meta *meta, int fd, int level,
              const uint8_t *const *ses, const size_t *ses_len, size_t n_ses,
              struct snap_stats *stats, char *err, size_t len)
{
        struct fbio io = {.d = d};
        struct snap_source src = {.ctx = &io,
                                  .read = fb_read,
                                  .sessions = ses,
                                  .session_len = ses_len,
                                  .n_sessions = n_ses};
        struct fbmem_block *b = NULL;
        size_t n;
        int r;

        if (!d->fb.size) {
                snprintf(err, len, "the vGPU is suspended: it has no framebuffer to save");
                return -EALREADY;
        }
        if (d->fb.fd >= 0) {
                src.next_data = fb_next_data;
                src.next_hole = fb_next_hole;
        }
        r = d->ops->queue_new(d->bdev, &io.q);
        if (r < 0) {
                snprintf(err, len, "no queue for the copy: %s", strerror(-r));
                return r;
        }
        /* sessions are parked: the allocator cannot change under us, but a copy is simplest */
        pthread_rwlock_rdlock(&d->mem.lock);
        n = d->mem.n;
        b = malloc((n ? n : 1) * sizeof(*b));
        if (b)
                memcpy(b, d->mem.blocks, n * sizeof(*b));
        pthread_rwlock_unlock(&d->mem.lock);
        if (!b) {
                d->ops->queue_free(io.q);
                snprintf(err, len, "out of memory");
                return -ENOMEM;
        }
        r = snap_write(fd, meta, b, n, &src, level, stats, err, len);
        free(b);
        d->ops->queue_free(io.q);
        return r;
}

void vdev_release(struct vgpu_dev *d)
{
        d->ops->fb_release(d->bdev, &d->fb);
        d->fb.size = 0;
}

/*
 * Every allocation the engine has must be in the image, as it was: the image was written by this
 * engine, and nothing is allocated while the vGPU is suspended. The image may hold more: blocks
 * of guests that exited meanwhile, whose data is not restored (restore_write skips it).
 */
static int same_blocks(void *ctx, const struct snap_meta *meta, const struct fbmem_block *b,
                       size_t n)
{
        struct fbio *io = ctx;
        struct fbmem *m = &io->d->mem;
        size_t j = 0;
        int r = 0;

        (void)meta;
        pthread_rwlock_rdlock(&m->lock);
        for (size_t i = 0; r == 0 && i < m->n; i++) {
                while (j < n && b[j].base < m->blocks[i].base)
                        j++;
                if (j == n || b[j].base != m->blocks[i].base || b[j].size != m->blocks[i].size ||
                    b[j].owner != m->blocks[i].owner)
                        r = -ESTALE;
        }
        pthread_rwlock_unlock(&m->lock);
        return r;
}

/* Contents go back only into allocations the engine still has. */
static int restore_write(void *ctx, uint64_t addr, const void *data, uint64_t len)
{
        struct fbio *io = ctx;
        struct fbmem *m = &io->d->mem;
        bool live = false;

        pthread_rwlock_rdlock(&m->lock);
        for (size_t i = 0; i < m->n && !live; i++)
                live = addr >= m->blocks[i].base && addr - m->blocks[i].base < m->blocks[i].size;
        pthread_rwlock_unlock(&m->lock);
        return live ? fb_write(ctx, addr, data, len) : 0;
}

int vdev_restore(struct vgpu_dev *d, const struct snap_meta *meta, const struct backend_fb_req *req,
                 int fd, struct snap_stats *stats, char *err, size_t len)
{
        struct fbio io = {.d = d};
        struct snap_sink sink = {.ctx = &io, .blocks = same_blocks, .write = restore_write};
        struct backend_fb fb;
        int r;

        if (d->fb.size) {
                snprintf(err, len, "the vGPU is not suspended");
                return -EALREADY;
        }
        r = d->ops->fb_reserve(d->bdev, req, &fb);
        if (r < 0) {
                snprintf(err, len, "cannot reserve the framebuffer on GPU %u: %s", req->gpu_index,
                         r == -ENOMEM ? "not enough free memory" : strerror(-r));
                return r;
        }
        d->fb = fb;
        r = d->ops->queue_new(d->bdev, &io.q);
        if (r < 0) {
                snprintf(err, len, "no queue for the copy: %s", strerror(-r));
                vdev_release(d);
                return r;
        }
        r = snap_read(fd, meta, &sink, stats, err, len);
        d->ops->queue_free(io.q);
        if (r == -ESTALE && !strstr(err, "not of this one"))
                snprintf(err, len,
                         "the image's allocations are not this vGPU's (it was written before "
                         "they changed, or by another engine)");
        if (r < 0)
                vdev_release(d);
        return r;
}

/* ---- moving between places (GPUs) ------------------------------------------------------- */

#define MOVE_PIECE      (UINT64_C(64) << 20) /* bytes per copy command */
#define MOVE_MAX_ROUNDS 6
#define MOVE_ENOUGH     (UINT64_C(8) << 20) /* a round this small: stop and copy the rest */
#define MOVE_MAX_FDS    256

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Copy the data of blocks b (n) from d's framebuffer to nfb (same layout, other address). */
static int copy_blocks(struct vgpu_dev *d, struct backend_queue *q, const struct backend_fb *nfb,
                       const struct fbmem_block *b, size_t n, uint64_t *ret_bytes)
{
        struct fbio io = {.d = d};
        uint64_t delta = nfb->device_address - d->fb.device_address, bytes = 0;

        for (size_t i = 0; i < n; i++) {
                uint64_t a = b[i].base, end = b[i].base + b[i].size;

                while (a < end) {
                        uint64_t run_end = end;
                        int r;

                        if (d->fb.fd >= 0) {
                                a = fb_next_data(&io, a, end);
                                if (a >= end)
                                        break;
                                run_end = fb_next_hole(&io, a, end);
                                if (run_end <= a)
                                        run_end = end;
                        }
                        for (; a < run_end;) {
                                uint64_t k = run_end - a < MOVE_PIECE ? run_end - a : MOVE_PIECE;

                                /* the sim's new pages, made in bulk rather than fault by fault */
                                if (nfb->host)
                                        madvise((uint8_t *)nfb->host + (a - d->fb.device_address),
                                                k, MADV_POPULATE_WRITE);
                                r = d->ops->copy_dtod(q, a + delta, a, k);
                                if (r < 0)
                                        return r;
                                bytes += k;
                                a += k;
                        }
                }
        }
        *ret_bytes += bytes;
        return d->ops->queue_sync(q);
}

/*
 * Copy what was written since the last round: with write protection (*wp: the sim, no workers),
 * the pages written; else (or once it gave up: then everything once) the blocks the allocator's
 * marks name.
 */
static int copy_dirty(struct vgpu_dev *d, struct backend_queue *q, const struct backend_fb *nfb,
                      bool all, bool *wp, uint64_t *ret_bytes)
{
        uint64_t delta = nfb->device_address - d->fb.device_address, *bits = NULL;
        struct fbmem_block *b;
        size_t pages, run = 0;
        long n;
        int r;

        if (*wp && !all) {
                r = wptrack_take(&bits, &pages);
                if (r == -EOVERFLOW) {
                        *wp = false; /* the marks were not kept: everything goes once more */
                        wptrack_stop();
                        all = true;
                } else if (r < 0) {
                        return r;
                }
        }
        n = fbmem_take_dirty(&d->mem, all, &b);
        if (n < 0) {
                free(bits);
                return (int)n;
        }
        if (!bits) {
                r = copy_blocks(d, q, nfb, b, (size_t)n, ret_bytes);
                free(b);
                return r;
        }
        free(b);
        r = 0;
        for (size_t i = 0; r == 0 && i <= pages; i++) {
                bool dirty = i < pages && wptrack_dirty(bits, i);

                if (dirty && (i == 0 || !wptrack_dirty(bits, i - 1)))
                        run = i;
                if (!dirty && i > 0 && wptrack_dirty(bits, i - 1)) {
                        uint64_t a = d->fb.device_address + run * WPTRACK_PAGE;
                        uint64_t k = (i - run) * WPTRACK_PAGE;

                        r = d->ops->copy_dtod(q, a + delta, a, k);
                        *ret_bytes += k;
                }
        }
        free(bits);
        return r < 0 ? r : d->ops->queue_sync(q);
}

/* The sim's new framebuffer: its pages made, in bulk, where the old one has data. */
static void prefault(struct vgpu_dev *d, const struct backend_fb *nfb)
{
        struct fbio io = {.d = d};
        struct fbmem_block *b;
        long n;

        pthread_rwlock_rdlock(&d->mem.lock);
        n = (long)d->mem.n;
        b = malloc((n ? (size_t)n : 1) * sizeof(*b));
        if (b)
                memcpy(b, d->mem.blocks, (size_t)n * sizeof(*b));
        pthread_rwlock_unlock(&d->mem.lock);
        for (long i = 0; b && i < n; i++) {
                uint64_t a = b[i].base, end = b[i].base + b[i].size;

                while (a < end && d->fb.fd >= 0) {
                        uint64_t run_end;

                        a = fb_next_data(&io, a, end);
                        if (a >= end)
                                break;
                        run_end = fb_next_hole(&io, a, end);
                        if (run_end <= a)
                                run_end = end;
                        madvise((uint8_t *)nfb->host + (a - d->fb.device_address), run_end - a,
                                MADV_POPULATE_WRITE);
                        a = run_end;
                }
        }
        free(b);
}

/* A spare address range of size bytes in this process, for the new framebuffer meanwhile. */
static uint64_t spare_range(uint64_t size)
{
        void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

        if (p == MAP_FAILED)
                return 0;
        munmap(p, size);
        return (uint64_t)(uintptr_t)p;
}

static void close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
}

/*
 * The switch by remapping: the old framebuffer moves aside, the new one into its address, each
 * a move of page tables. On success *nfb is the old one (for the caller to release); on failure
 * the old is back in place and *nfb is the new, or, when neither can take the address (something
 * else was mapped there meanwhile), the old is released and d->fb is lost (size 0), as in
 * vdev_move's other switch: d->fb must never claim an address its memory is not at.
 */
static int switch_remap(struct vgpu_dev *d, struct backend_fb *nfb, char *err, size_t len)
{
        struct backend_fb old = d->fb;
        uint64_t aside = spare_range(old.size), addr = old.device_address;
        int r = aside ? d->ops->fb_remap(d->bdev, &old, aside) : -ENOMEM;

        if (r == 0) {
                r = d->ops->fb_remap(d->bdev, nfb, addr);
                if (r < 0 && d->ops->fb_remap(d->bdev, &old, addr) < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "move: the framebuffer cannot go back to 0x%llx",
                                 (unsigned long long)addr);
                        d->ops->fb_release(d->bdev, &old);
                        d->fb = (struct backend_fb){.fd = -1};
                        snprintf(err, len, "mapping either framebuffer failed: %s", strerror(-r));
                        return r;
                }
        }
        if (r < 0) {
                snprintf(err, len, "mapping the new framebuffer: %s", strerror(-r));
                return r;
        }
        d->fb = *nfb;
        d->fb.phys_offset = nfb->phys_offset;
        *nfb = old;
        return 0;
}

int vdev_move(struct vgpu_dev *d, struct session *const *s, size_t n,
              const struct backend_fb_req *old, const struct backend_fb_req *req, bool precopy,
              const struct vdev_peers *peers, struct move_stats *st, char *err, size_t len)
{
        struct backend_fb_req tmp = *req, back = *old;
        struct backend_fb nfb, fb;
        struct backend_queue *q;
        int nfds[MOVE_MAX_FDS], ofds[MOVE_MAX_FDS];
        size_t n_new = 0, n_old = 0;
        uint64_t t_stop, live = 0, stopped = 0;
        bool wp = false;   /* pages tracked by write protection */
        bool said = false; /* err says why already (the pause gave up) */
        int r;

        *st = (struct move_stats){0};
        if (!d->fb.size) {
                snprintf(err, len, "the vGPU is suspended");
                return -EALREADY;
        }
        tmp.device_address = spare_range(d->fb.size);
        if (!tmp.device_address) {
                snprintf(err, len, "no address space for the copy: %s", strerror(errno));
                return -ENOMEM;
        }
        r = d->ops->fb_reserve(d->bdev, &tmp, &nfb);
        if (r < 0) {
                snprintf(err, len, "cannot reserve the framebuffer on GPU %u: %s", req->gpu_index,
                         r == -ENOMEM ? "not enough free memory" : strerror(-r));
                return r;
        }
        r = d->ops->queue_new(d->bdev, &q);
        if (r < 0) {
                d->ops->fb_release(d->bdev, &nfb);
                snprintf(err, len, "no queue for the copy: %s", strerror(-r));
                return r;
        }
        if (!precopy && nfb.host)
                prefault(d, &nfb); /* the new memory is made before the guests stop */
        if (precopy) {
                /* round 0 copies everything; each next one what was written meanwhile */
                __atomic_store_n(&d->track_writes, 1, __ATOMIC_RELEASE);
                wp = !peers && d->fb.host && d->fb.fd >= 0 && !getenv("VGPU_MOVE_NO_WP") &&
                     wptrack_start(d->fb.host, d->fb.size) == 0;
                if (peers)
                        peers->track(peers->ctx, true);
                for (unsigned round = 0; r == 0 && round < MOVE_MAX_ROUNDS; round++) {
                        uint64_t before = live;

                        if (peers && round)
                                peers->collect(peers->ctx);
                        r = copy_dirty(d, q, &nfb, round == 0, &wp, &live);
                        st->rounds++;
                        if (round && live - before < MOVE_ENOUGH)
                                break;
                }
        }
        t_stop = now_ns();
        if (vdev_pause(s, n) < 0 && r == 0) {
                r = -ETIMEDOUT;
                said = true;
                snprintf(err, len, "a guest's command did not end within %g s",
                         (double)session_pause_limit_ns() / 1e9);
        }
        if (peers) {
                int e = peers->pause(peers->ctx);

                if (e < 0 && r == 0) {
                        r = e;
                        said = true;
                        if (e == -ETIMEDOUT)
                                snprintf(err, len, "a guest's command did not end within %g s",
                                         (double)session_pause_limit_ns() / 1e9);
                        else
                                snprintf(err, len, "a worker did not stop: %s", strerror(-e));
                }
                if (precopy)
                        peers->collect(peers->ctx);
        }
        if (r == 0)
                r = copy_dirty(d, q, &nfb, !precopy, &wp, &stopped);
        if (wp)
                wptrack_stop(); /* before the switch: the old mapping goes */
        __atomic_store_n(&d->track_writes, 0, __ATOMIC_RELEASE);
        if (peers && precopy)
                peers->track(peers->ctx, false);
        d->ops->queue_free(q);
        /* VGPU_MOVE_NO_REMAP=1: the path of a backend without fb_remap (cuda), for the tests */
        if (r == 0 && d->ops->fb_remap && !getenv("VGPU_MOVE_NO_REMAP")) {
                r = switch_remap(d, &nfb, err, len);
                if (r == 0 && peers)
                        peers->switched(peers->ctx);
                vdev_unpause(s, n);
                if (peers)
                        peers->unpause(peers->ctx);
                st->live_bytes = live;
                st->stopped_bytes = stopped;
                st->stun_ns = now_ns() - t_stop;
                /* the old memory (or, on failure, the new) is freed after the guests go on */
                d->ops->fb_release(d->bdev, &nfb);
                return r;
        }
        if (r == 0)
                r = d->ops->fb_export(d->bdev, &nfb, nfds, MOVE_MAX_FDS, &n_new);
        if (r == 0) {
                r = d->ops->fb_export(d->bdev, &d->fb, ofds, MOVE_MAX_FDS, &n_old);
                if (r < 0)
                        close_fds(nfds, n_new);
        }
        if (r < 0) {
                d->ops->fb_release(d->bdev, &nfb);
                vdev_unpause(s, n);
                if (peers)
                        peers->unpause(peers->ctx);
                if (!said)
                        snprintf(err, len, "copying the framebuffer: %s", strerror(-r));
                return r;
        }
        /* the switch: the new memory takes the device address; the old goes */
        tmp = *req;
        tmp.device_address = d->fb.device_address;
        d->ops->fb_release(d->bdev, &nfb);
        d->ops->fb_release(d->bdev, &d->fb);
        r = d->ops->fb_import(d->bdev, &tmp, nfds, n_new, &fb);
        if (r < 0) {
                snprintf(err, len, "mapping the new framebuffer: %s", strerror(-r));
                if (d->ops->fb_import(d->bdev, &back, ofds, n_old, &fb) < 0) {
                        /* nothing maps the address now: nothing the guests can do works */
                        fb = (struct backend_fb){.fd = -1};
                        snprintf(err, len, "mapping either framebuffer failed: %s", strerror(-r));
                }
        }
        d->fb = fb;
        close_fds(nfds, n_new);
        close_fds(ofds, n_old);
        if (r == 0 && peers)
                peers->switched(peers->ctx);
        vdev_unpause(s, n);
        if (peers)
                peers->unpause(peers->ctx);
        st->live_bytes = live;
        st->stopped_bytes = stopped;
        st->stun_ns = now_ns() - t_stop;
        return r;
}
