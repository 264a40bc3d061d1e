/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A local guest's socket once it is attached (docs/dataplane.md): the JSON lines it sends there to
 * share host memory with its session, with their fds, and the JSON lines (with an fd) the engine
 * and its workers answer guests with. Used by the engine and by its worker processes alike.
 */
#ifndef VGPU_ENGINE_GUEST_SOCK_H
#define VGPU_ENGINE_GUEST_SOCK_H

#include <jansson.h>

#include "engine/session.h"

/* What a guest sent after hello, not yet a whole line, and the fds that came with it. */
struct guest_sock {
        char buf[1024];
        size_t len;
        int fds[8];
        unsigned n_fds;
};

/*
 * guest_sock_read - read what the guest of session s sent on fd (non-blocking) and act on each
 * whole line: {"op":"host_map","id":N,"size":S} with the memory's fd attached, or
 * {"op":"host_unmap","id":N}. No reply: the guest's next copy that names the block waits for it
 * (session.c). A malformed line is logged (uuid: the vGPU's, for the log) and changes nothing.
 * Returns 0, or -1 when the guest hung up or sent more than a line's room: it must go.
 */
int guest_sock_read(struct guest_sock *gs, int fd, struct session *s, const char *uuid);

/* guest_sock_clear - close the fds gs holds that no line took yet. */
void guest_sock_clear(struct guest_sock *gs);

/*
 * guest_sock_send - msg (stolen) as one JSON line on sock, with fd attached when fd >= 0 (not
 * taken). 0 or a negative errno.
 */
int guest_sock_send(int sock, json_t *msg, int fd);

#endif
