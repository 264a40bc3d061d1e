/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine's end of a guest's link over TCP (common/link.h, docs/remote.md): two threads per
 * guest, one pushing what the guest queued into the session's ring, one sending back what the
 * session did (completions, replies, copied data, event times, host functions reached, the
 * suspended flag), in that order.
 */
#ifndef VGPU_ENGINE_LINK_H
#define VGPU_ENGINE_LINK_H

#include <stdint.h>

#include "common/link.h"
#include "engine/session.h"

struct link;

/*
 * link_start - serve s's guest over c (the link takes it over). notify_fd is written one byte
 * when the guest went or broke the protocol: then link_free, and the session goes. 0 or -errno.
 */
int link_start(struct session *s, struct mw_conn *c, int notify_fd, struct link **ret);

/* link_moved - tell the guest its vGPU moved to addr ("HOST:PORT"), where token names it. */
void link_moved(struct link *l, const uint8_t token[16], const char *addr);

/* link_free - stop both threads and close the connection. NULL does nothing. */
void link_free(struct link *l);

/*
 * link_receive_channel - the re-attach of a guest that moved here: read its channel (LINK_CHAN
 * messages up to LINK_READY) into s's (not started), over c. 0 or a negative errno, err set.
 */
int link_receive_channel(struct session *s, struct mw_conn *c, char *err, size_t len);

#endif
