/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Suspend and resume of a vGPU inside its engine (docs/migration.md): its sessions stop at a
 * clean point, the framebuffer's allocated contents go into an image (engine/snapshot.h) and the
 * framebuffer is released; resume reserves a framebuffer again (on the same or another GPU, at
 * the same device address), reads the image back into it and lets the sessions go on. The
 * guests' objects (contexts, modules, streams) stay in the engine process meanwhile.
 */
#ifndef VGPU_ENGINE_SUSPEND_H
#define VGPU_ENGINE_SUSPEND_H

#include <stddef.h>

#include "backend/backend.h"
#include "engine/session.h"
#include "engine/snapshot.h"

/* The framebuffer as the image writer and reader reach it: through a queue of the backend. */
struct fbio {
        struct vgpu_dev *d;
        struct backend_queue *q;
};

/*
 * snap_source and snap_sink functions over a struct fbio: fb_read and fb_write copy (and wait),
 * fb_next_data and fb_next_hole find the sim's holes (only where d->fb.fd >= 0).
 */
int fb_read(void *ctx, uint64_t addr, void *buf, uint64_t len);
int fb_write(void *ctx, uint64_t addr, const void *data, uint64_t len);
uint64_t fb_next_data(void *ctx, uint64_t addr, uint64_t end);
uint64_t fb_next_hole(void *ctx, uint64_t addr, uint64_t end);

/*
 * vdev_pause - stop every session of d at a clean point (session_pause). 0, or -ETIMEDOUT when
 * one did not stop within session_pause_limit_ns(). vdev_unpause undoes it (in both cases).
 */
int vdev_pause(struct session *const *s, size_t n);
void vdev_unpause(struct session *const *s, size_t n);

/*
 * vdev_save - write d's image to fd (its sessions paused by the caller), at zstd level, with the
 * n_ses sessions' bytes (session_export). Returns 0 or a negative errno with err set; nothing of
 * d changes.
 */
int vdev_save(struct vgpu_dev *d, const struct snap_meta *meta, int fd, int level,
              const uint8_t *const *ses, const size_t *ses_len, size_t n_ses,
              struct snap_stats *stats, char *err, size_t len);

/* vdev_release - release d's framebuffer (after vdev_save): d is suspended. */
void vdev_release(struct vgpu_dev *d);

/*
 * vdev_restore - reserve d's framebuffer as req says and fill it from the image in fd, which
 * must be of this vGPU (meta) with exactly d's allocations. 0, or a negative errno with err set
 * and d still suspended (no framebuffer).
 */
int vdev_restore(struct vgpu_dev *d, const struct snap_meta *meta, const struct backend_fb_req *req,
                 int fd, struct snap_stats *stats, char *err, size_t len);

/*
 * Sessions a move cannot reach directly (in worker processes): peers (NULL: none) pauses and
 * unpauses them with the others, turns their write tracking on and off, before each copy
 * round marks in d's allocator what they wrote (fbmem_mark), and maps the new framebuffer in
 * them once it took the device address (before they go on).
 */
struct vdev_peers {
        void *ctx;
        int (*pause)(void *ctx);
        void (*unpause)(void *ctx);
        void (*track)(void *ctx, bool on);
        void (*collect)(void *ctx);
        void (*switched)(void *ctx); /* d->fb is the new framebuffer: map it there too */
};

/* What a move did. */
struct move_stats {
        unsigned rounds;        /* copy rounds while the guests ran (pre-copy) */
        uint64_t live_bytes;    /* copied while the guests ran */
        uint64_t stopped_bytes; /* copied while they were paused */
        uint64_t stun_ns;       /* how long they were paused */
};

/*
 * vdev_move - move d's framebuffer from old's place to req's (GPU and offset; the device address
 * stays), with its n sessions: a framebuffer is reserved there (at a spare address first), the
 * allocated contents are copied into it (with precopy, in rounds while the sessions run, each
 * round copying what was written since the last, then the rest with them paused; without, all
 * of it paused), then the new framebuffer takes the device address. 0, or a negative errno with
 * err set and d where it was, running.
 */
int vdev_move(struct vgpu_dev *d, struct session *const *s, size_t n,
              const struct backend_fb_req *old, const struct backend_fb_req *req, bool precopy,
              const struct vdev_peers *peers, struct move_stats *st, char *err, size_t len);

#endif
