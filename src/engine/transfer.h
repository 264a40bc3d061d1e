/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A vGPU's move to another engine, of another vgpud (docs/migration.md): the framebuffer's
 * contents (in pre-copy rounds while the guests run, then the rest with them paused), the
 * allocator's blocks and the sessions (session_image.c) over an authenticated connection
 * (common/migwire.h), in images of engine/snapshot.h, and the two-step end: the target says it is
 * ready, the source tells its guests where to go and commits.
 */
#ifndef VGPU_ENGINE_TRANSFER_H
#define VGPU_ENGINE_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/migwire.h"
#include "engine/session.h"
#include "engine/snapshot.h"
#include "engine/suspend.h"

/* What a transfer did, on the source. */
struct transfer_stats {
        unsigned rounds;        /* pre-copy rounds while the guests ran */
        uint64_t live_bytes;    /* framebuffer bytes sent while they ran */
        uint64_t stopped_bytes; /* and while they were paused */
        uint64_t stun_ns;       /* how long they were paused */
        uint64_t wire_bytes;    /* bytes on the connection */
};

/*
 * A session's bytes (session_export's) with their head checked (session_image_peek), for an
 * engine whose sessions run in worker processes (worker.h): a worker imports them.
 */
struct transfer_blob {
        uint8_t *p;
        size_t len;
        struct session_image_head head;
};

/*
 * transfer_send - send d (its n sessions s, all running) over c: with precopy, rounds while the
 * sessions run; then they pause, and their state and the rest go. When the target is ready,
 * each session's guest is told to re-attach where the target said (its guest socket), the
 * target is told to commit, and 0 is returned: d's framebuffer is the caller's to release, its
 * sessions stay parked until their guests left. Otherwise a negative errno with err set, the
 * sessions run again, and d is as it was.
 */
int transfer_send(struct vgpu_dev *d, struct session *const *s, size_t n,
                  const struct snap_meta *meta, bool precopy, struct mw_conn *c,
                  struct transfer_stats *st, char *err, size_t len);

/*
 * Sessions that transfer_send cannot reach directly (in worker processes, worker.h): peers
 * pauses, unpauses and tracks them as for a move (struct vdev_peers: their writes marked in d's
 * allocator before each round and once more after their export, whose marks are the modules'
 * variables), export gives their bytes once paused (0 and *ret_n malloc'd blobs in blob and
 * blen, at most max; or a negative errno with err set and nothing kept), and moved tells each
 * guest, at the point of no return, to re-attach at to (a local guest, its Unix socket) or at
 * tcp (a remote guest, "HOST:PORT"; NULL: none).
 */
struct transfer_peers {
        const struct vdev_peers *vp;
        int (*export)(void *ctx, uint8_t **blob, size_t *blen, size_t max, size_t *ret_n, char *err,
                      size_t len);
        void (*moved)(void *ctx, const char *to, const char *tcp);
        const char *tcp;
};

/* transfer_send_peers - transfer_send with peers (NULL: none) besides the sessions s. */
int transfer_send_peers(struct vgpu_dev *d, struct session *const *s, size_t n,
                        const struct transfer_peers *peers, const struct snap_meta *meta,
                        bool precopy, struct mw_conn *c, struct transfer_stats *st, char *err,
                        size_t len);

/*
 * transfer_recv - receive a vGPU (meta) into d, whose framebuffer is reserved and allocator
 * empty, over c; guest_socket is where its guests re-attach. Returns 0 once the source
 * committed, with *ret (malloc'd, *ret_n sessions, none started); or a negative errno with err
 * set and d empty again (the source keeps the vGPU).
 */
int transfer_recv(struct vgpu_dev *d, const struct snap_meta *meta, const char *guest_socket,
                  struct mw_conn *c, struct session ***ret, size_t *ret_n, char *err, size_t len);

/*
 * transfer_restore - a suspended vGPU's image (fd) into d, whose framebuffer is reserved and
 * allocator empty, in an engine that is not the one that suspended it: its blocks, its guests'
 * sessions (none started: their guests re-attach) and its data. 0 and *ret (malloc'd, *ret_n
 * sessions), or a negative errno with err set and d empty again.
 */
int transfer_restore(struct vgpu_dev *d, const struct snap_meta *meta, int fd,
                     struct session ***ret, size_t *ret_n, char *err, size_t len);

/*
 * transfer_recv_bytes - transfer_recv for an engine whose sessions run in workers: the sessions'
 * bytes (their heads checked, their ids distinct) instead of the sessions; blocks of sessions it
 * did not get are freed. 0 and *ret (*ret_n of them; transfer_blobs_free), or a negative errno
 * with err set, as transfer_recv.
 */
int transfer_recv_bytes(struct vgpu_dev *d, const struct snap_meta *meta, const char *guest_socket,
                        struct mw_conn *c, struct transfer_blob **ret, size_t *ret_n, char *err,
                        size_t len);

/*
 * transfer_restore_bytes - transfer_restore for an engine whose sessions run in workers: the
 * sessions' bytes instead of the sessions (their heads checked, their ids distinct), the rest as
 * transfer_restore; blocks of sessions the image does not hold are freed. 0 and *ret (*ret_n of
 * them; transfer_blobs_free), or a negative errno with err set and d empty again.
 */
int transfer_restore_bytes(struct vgpu_dev *d, const struct snap_meta *meta, int fd,
                           struct transfer_blob **ret, size_t *ret_n, char *err, size_t len);

/* transfer_blobs_free - free b and the n sessions' bytes it holds; NULL does nothing. */
void transfer_blobs_free(struct transfer_blob *b, size_t n);

#endif
