// SPDX-License-Identifier: Apache-2.0
// Suspend and resume inside an engine (suspend.h): the framebuffer to an image and back.
#include "engine/suspend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void vdev_pause(struct session *const *s, size_t n)
{
        /* all channels say "suspended" first, so that no guest starts a call meanwhile */
        for (size_t i = 0; i < n; i++)
                session_mark_suspended(s[i], true);
        for (size_t i = 0; i < n; i++)
                session_pause(s[i]);
}

void vdev_unpause(struct session *const *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                session_unpause(s[i]);
}

/* The framebuffer as the image writer and reader reach it: through a queue of the backend. */
struct fbio {
        struct vgpu_dev *d;
        struct backend_queue *q;
};

static int fb_read(void *ctx, uint64_t addr, void *buf, uint64_t len)
{
        struct fbio *io = ctx;
        int r = io->d->ops->copy_dtoh(io->q, buf, addr, len);

        return r < 0 ? r : io->d->ops->queue_sync(io->q);
}

static int fb_write(void *ctx, uint64_t addr, const void *data, uint64_t len)
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

static uint64_t fb_next_data(void *ctx, uint64_t addr, uint64_t end)
{
        return fb_seek(((struct fbio *)ctx)->d, addr, end, SEEK_DATA);
}

static uint64_t fb_next_hole(void *ctx, uint64_t addr, uint64_t end)
{
        return fb_seek(((struct fbio *)ctx)->d, addr, end, SEEK_HOLE);
}

int vdev_save(struct vgpu_dev *d, const struct snap_meta *meta, int fd, int level,
              struct snap_stats *stats, char *err, size_t len)
{
        struct fbio io = {.d = d};
        struct snap_source src = {.ctx = &io, .read = fb_read};
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

/* The image's allocations must be exactly the allocator's: it was written by this engine. */
static int same_blocks(void *ctx, const struct snap_meta *meta, const struct fbmem_block *b,
                       size_t n)
{
        struct fbio *io = ctx;
        struct fbmem *m = &io->d->mem;
        int r = 0;

        (void)meta;
        pthread_rwlock_rdlock(&m->lock);
        if (n != m->n)
                r = -ESTALE;
        for (size_t i = 0; r == 0 && i < n; i++) {
                if (b[i].base != m->blocks[i].base || b[i].size != m->blocks[i].size ||
                    b[i].owner != m->blocks[i].owner)
                        r = -ESTALE;
        }
        pthread_rwlock_unlock(&m->lock);
        return r;
}

int vdev_restore(struct vgpu_dev *d, const struct snap_meta *meta, const struct backend_fb_req *req,
                 int fd, struct snap_stats *stats, char *err, size_t len)
{
        struct fbio io = {.d = d};
        struct snap_sink sink = {.ctx = &io, .blocks = same_blocks, .write = fb_write};
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
