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

#endif
