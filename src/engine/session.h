/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A session: one attached guest process of a vGPU. It owns the shared channel with the guest, a
 * thread that executes the guest's commands in order, and the guest's contexts, modules and
 * functions (handles the guest cannot forge: index, kind and generation are all checked).
 */
#ifndef VGPU_ENGINE_SESSION_H
#define VGPU_ENGINE_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend/backend.h"
#include "common/chan.h"
#include "common/schedpage.h"
#include "engine/fbmem.h"

/* What every session of one engine shares: the vGPU's GPU, framebuffer and its allocator. */
struct vgpu_dev {
        const struct backend_ops *ops;
        struct backend_dev *bdev;
        struct backend_fb fb;
        struct fbmem mem;
        /*
         * A worker (one process per guest, docs/cuda.md) allocates through its main engine,
         * which holds the allocator of the whole framebuffer: requests go over alloc_fd, and mem
         * mirrors this guest's own blocks, for the checks.
         */
        bool remote_alloc;
        int alloc_fd;
        pthread_mutex_t alloc_lock;
        /* vgpud's scheduler: grants time slices through this page (NULL: never gated) */
        struct vgpu_sched_page *sched;
        uint32_t sched_slot; /* this process's counts in the page: slots[sched_slot - 1]; 0: none */
        uint32_t sm_count;   /* for the sim's accounted time of a launch */
        /* pre-copy migration runs: sessions mark what they write in mem (fbmem_mark) */
        int track_writes;
};

/*
 * vdev_sched_map - map vgpud's scheduler page for this vGPU (common/schedpage.h) at path into
 * dev->sched, and take a slot of it for this process's counts. 0, or a negative errno (-EPROTO:
 * too small, or not such a page); dev->sched is then untouched.
 */
int vdev_sched_map(struct vgpu_dev *dev, const char *path);

/* vdev_sched_busy - count a launch that starts (+1) or ends (-1) in the page: vgpud sees it run. */
void vdev_sched_busy(struct vgpu_dev *dev, int delta);

/*
 * vdev_sched_forget - the counts of process pid (a worker that is gone, however it ended) stop
 * counting, and its slot is free again. The engine calls it once it has reaped the worker.
 */
void vdev_sched_forget(struct vgpu_dev *dev, pid_t pid);

/* A worker's request to its main engine's allocator: one SOCK_SEQPACKET message each way. */
enum vgpu_alloc_op {
        VGPU_ALLOC_ALLOC = 1,  /* a: size, b: owner -> a: base */
        VGPU_ALLOC_FREE,       /* a: base, b: owner */
        VGPU_ALLOC_FREE_OWNER, /* a: owner, b: mask (the session's bits are the main's to check) */
        VGPU_ALLOC_INFO,       /* -> a: free bytes */
};

struct vgpu_alloc_msg {
        uint32_t op;
        int32_t r; /* in the reply: 0 or a negative errno */
        uint64_t a, b;
};

struct session;

/*
 * session_new - set up a session for a guest (pid, uid) on dev: create and lay out its channel
 * (a memfd the guest maps; *ret_fd is it, to pass to the guest) and start its thread.
 * Returns 0 and *ret, or a negative errno.
 */
int session_new(struct vgpu_dev *dev, uint32_t id, pid_t pid, uid_t uid, struct session **ret,
                int *ret_fd);

/*
 * session_start - start the thread of a session built without one (session_import): its guest
 * re-attached. 0 or a negative errno.
 */
int session_start(struct session *s);

/*
 * session_free - stop the session's thread (the command it is running finishes first) and free
 * everything the guest had: contexts, modules, device memory. NULL does nothing.
 */
void session_free(struct session *s);

/* At most this many host blocks per session, each at most SESSION_HOST_MAX bytes. */
#define SESSION_HOST_BLOCKS 4096
#define SESSION_HOST_MAX    (UINT64_C(1) << 40)

/*
 * session_host_map - map host memory the guest shares (fd, size bytes) as block id; the
 * session's copies may then name it. From the engine's main thread. 0, -EINVAL (bad size or
 * fd), -EEXIST (id taken), -ENOSPC, or an mmap errno. The fd stays the caller's.
 */
int session_host_map(struct session *s, uint64_t id, int fd, uint64_t size);

/* How long a copy naming a host block not (yet) mapped waits for it; 2000 ms. */
extern unsigned session_host_wait_ms;

/* session_host_unmap - forget block id (a copy using it finishes first). 0 or -ENOENT. */
int session_host_unmap(struct session *s, uint64_t id);

/* How long a pause waits for a command in flight to end, by default (VGPU_ENGINE_PAUSE_MS). */
#define SESSION_PAUSE_MS 60000

/*
 * session_pause - stop s at a clean point (docs/migration.md): the guest's channel says
 * "suspended", so that its new calls wait; the commands it queued before (or was pushing) run,
 * for up to 100 ms (a deeper queue is cut at a command boundary and goes on after the resume),
 * without waiting for a scheduler grant (a wait for a host function is a clean point), the
 * device work completes, and the thread takes no more commands until session_unpause. Returns
 * 0 once the thread is parked (or has ended), or -ETIMEDOUT when it is not by deadline_ns
 * (chan_now_ns; a kernel that runs on): the caller then gives up and calls session_unpause.
 */
int session_pause(struct session *s, uint64_t deadline_ns);

/* session_pause_limit_ns - how long a pause may wait: VGPU_ENGINE_PAUSE_MS, or the default. */
uint64_t session_pause_limit_ns(void);

/* session_unpause - let s run again and tell its guest. */
void session_unpause(struct session *s);

/* session_mark_suspended - what s's guest sees of the vGPU: suspended or not. */
void session_mark_suspended(struct session *s, bool on);

/*
 * Migration to another engine (docs/migration.md, session_image.c).
 * session_export - s (parked) as bytes, with a fresh token that will name it to its guest;
 * *ret is malloc'd. Marks its modules' variables written (the load on the other side writes
 * their initial values). 0, -ENOTSUP (variables a backend placed itself), or -ENOMEM.
 * session_import - build the session of such bytes on dev (whose allocator already holds its
 * blocks), its modules loaded and their variables placed where they were, without its thread:
 * session_start once its guest re-attached. 0 and *ret, or a negative errno and err.
 * session_mark_moved - tell s's guest (its vGPU is suspended) to re-attach at the Unix socket
 * to with s's token. session_token_is - whether token names s (and s waits for its guest).
 */
int session_export(struct session *s, uint8_t **ret, size_t *ret_len);
int session_import(struct vgpu_dev *dev, const void *p, size_t len, struct session **ret, char *err,
                   size_t errlen);
void session_mark_moved(struct session *s, const char *to);
/*
 * session_image_peek - the head of a session's bytes (session_export's) without building the
 * session: its id, guest and token, read through the same checks as session_import (which still
 * checks the rest). For an engine whose sessions run in worker processes (worker.h): it routes a
 * token to the session's worker. 0 and *ret, or -EBADMSG.
 */
struct session_image_head {
        uint32_t id;
        pid_t pid;
        uid_t uid;
        uint8_t token[16];
};
int session_image_peek(const void *p, size_t len, struct session_image_head *ret);
/*
 * session_note_home - what session_mark_moved says, without saying it moved: where (to) and with
 * s's token its guest re-attaches should its engine be gone while the vGPU is suspended.
 */
void session_note_home(struct session *s, const char *to);
bool session_token_is(const struct session *s, const uint8_t token[16]);
uint32_t session_id(const struct session *s);
int session_fd(const struct session *s); /* its channel's memfd, for its guest */
void session_token(const struct session *s, uint8_t token[16]); /* the last export's */

/*
 * For a guest over TCP (engine/link.c): the session's channel, and ran, called on the session's
 * thread after each command that succeeded, before its completion shows in the channel. Set
 * before the session starts (or while it is parked).
 */
struct chan_view *session_view(struct session *s);
void session_set_ran(struct session *s,
                     void (*ran)(void *ctx, const struct vgpu_msg *m, const void *req), void *ctx);
bool session_started(const struct session *s);

/* session_pid - the guest process of s. */
pid_t session_pid(const struct session *s);

#endif
