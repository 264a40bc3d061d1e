/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An engine's worker processes (docs/dataplane.md, "Worker processes"; docs/cuda.md): each runs one
 * guest's session, a local guest's or a remote one's (docs/remote.md), in `vgpu-engine --worker`.
 * This module owns the protocol between the engine and a worker, a worker's start, and the
 * worker's own main. The engine keeps the allocator and the guests' slots (vgpu_engine.c).
 */
#ifndef VGPU_ENGINE_WORKER_H
#define VGPU_ENGINE_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/migwire.h"
#include "engine/fbmem.h"

/*
 * A worker's fds: the guest's (its Unix socket, or a remote guest's TCP connection), the
 * allocation socket to the engine (struct vgpu_alloc_msg, session.h), the control socket (the
 * engine's requests, struct worker_msg), then the framebuffer's memory.
 */
#define WORKER_GUEST_FD   3
#define WORKER_ALLOC_FD   4
#define WORKER_CTL_FD     5
#define WORKER_FB_FD      6
#define WORKER_MAX_FB_FDS 250 /* at most what one SCM_RIGHTS message carries (253) */

/* The engine's requests to its workers (suspend, resume, move), on their control sockets. */
enum worker_op {
        WORKER_PAUSE = 1, /* park the session (session_pause) */
        WORKER_UNPAUSE,
        WORKER_RELEASE, /* unmap the framebuffer */
        WORKER_MAP,     /* map the framebuffer whose fds come along: a = GPU index */
        WORKER_TRACK,   /* a = 1: mark what the session writes (pre-copy), 0: stop */
        WORKER_DIRTY,   /* answer: r = n, then the n bases of blocks written since last asked */
        WORKER_CONN,    /* a remote guest's connection: struct worker_conn (the first message) */
        WORKER_EXPORT,  /* the parked session's bytes (session_export): answer r = 0, a = their
                         * length, with a sealed memfd that holds them (worker_export) */
        WORKER_HOME,    /* session_note_home at the worker's --home (after a suspend's image) */
        WORKER_MOVED,   /* the vGPU moved to another vgpud: the message goes on with where its
                         * guest re-attaches, "SOCKET\0HOST:PORT\0" (a = their length; HOST:PORT
                         * empty: no TCP listener), session_mark_moved (a remote guest:
                         * link_moved) */
        WORKER_IMPORT,  /* a session's bytes to import: a = their length, with a sealed memfd
                         * that holds them and then the session's blocks in the engine's
                         * allocator (base, size, owner: 3 x u64 each), for the worker's mirror
                         * (the first message, after a remote guest's WORKER_CONN) */
};

/* The longest WORKER_MOVED places. */
#define WORKER_MOVED_MAX 512

/* A session's bytes between an engine and its worker, at most (session_image.c's limit). */
#define WORKER_BLOB_MAX (UINT64_C(1) << 30)

/* Bases in one WORKER_DIRTY answer; more: -E2BIG, and everything counts as written. */
#define WORKER_DIRTY_MAX 8000

struct worker_msg {
        uint32_t op;
        int32_t r; /* in the answer: 0 or a negative errno */
        uint64_t a;
        /*
         * The request's number (worker_next_seq), echoed in its answer: an answer that comes
         * after the engine stopped waiting for it is told apart from the next request's, and
         * dropped (it once was taken for the next one's, and a move skipped its final copy).
         */
        uint64_t seq;
};

/* worker_next_seq - a new request number, never 0, for struct worker_msg's seq. */
uint64_t worker_next_seq(void);

/*
 * What a remote guest's worker needs, besides the connection's fd (WORKER_GUEST_FD), to take the
 * connection over (mw_conn_restore): the first message on its control socket, never on its
 * command line or in its environment, where other users could read the key.
 */
struct worker_conn {
        uint32_t op; /* WORKER_CONN */
        uint32_t server;
        uint64_t tx_seq, rx_seq;
        uint8_t key[32];
};

/* What a worker is started with (none of it secret: it goes on the command line). */
struct worker_spec {
        const char *self; /* the engine's own binary */
        const char *backend, *uuid;
        const char *hello;    /* the vGPU's description, as the guest gets it (JSON) */
        const char *sched;    /* vgpud's scheduler page, or NULL */
        const char *gpu_uuid; /* the device by UUID, or NULL: by gpu_index */
        uint32_t gpu_index, session, sm_count;
        uint64_t device_address, fb_size;
        pid_t guest_pid; /* 0 for a remote guest */
        uid_t guest_uid;
        const int *fb_fds; /* the framebuffer's memory (backend fb_export) */
        size_t n_fb_fds;
        const char *home; /* the engine's guest socket (session_note_home), or NULL */
        /* a session that moved or was restored (session_export's bytes): the worker imports it
         * instead of making one, and its guest re-attaches with the session's token */
        const void *import;
        size_t import_len;
        struct fbmem *import_mem; /* the engine's allocator: the session's blocks go along */
};

/*
 * worker_spawn - start the worker that runs one guest's session, as w says. guest_fd is the
 * guest's Unix socket, or, when remote is given, the remote guest's TCP connection, whose state
 * (key, sequence numbers, side) goes to the worker over its control socket; the worker says
 * hello to its guest itself. Neither guest_fd nor remote is taken, and nothing is sent on them.
 * The worker ends with its engine (PR_SET_PDEATHSIG). Returns 0 with the worker's pid and the
 * engine's ends of its allocation socket (*ret_alloc) and control socket (*ret_ctl), or -errno.
 */
int worker_spawn(const struct worker_spec *w, int guest_fd, const struct mw_conn *remote,
                 pid_t *ret_pid, int *ret_alloc, int *ret_ctl);

/*
 * worker_send - one message (len bytes) on a SOCK_SEQPACKET socket, with n fds (none when fds is
 * NULL; at most WORKER_MAX_FB_FDS). 0, -E2BIG or -EIO.
 */
int worker_send(int sock, const void *msg, size_t len, const int *fds, size_t n);

/*
 * worker_export - ask the worker on control socket ctl (its session parked: WORKER_PAUSE) for its
 * session's bytes, and wait up to timeout_ms. They come in a memfd, which must be sealed against
 * writes and resizing and hold exactly what the answer says (at most WORKER_BLOB_MAX): a worker
 * is trusted less than its engine. 0 and *ret (malloc'd, *ret_len bytes, parsed by nobody here);
 * the worker's negative errno (-ENOTSUP: session_export's); -EPROTO for an answer that breaks
 * those rules; -ETIMEDOUT; or -EIO when the worker is gone.
 */
int worker_export(int ctl, int timeout_ms, uint8_t **ret, size_t *ret_len);

/*
 * worker_call - one request (op, a; no fds) to the worker on control socket ctl, whose session is
 * parked (it makes no allocation requests meanwhile), and its answer, waited for up to
 * timeout_ms: the worker's r, -ETIMEDOUT, or -EIO when it is gone.
 */
int worker_call(int ctl, uint32_t op, uint64_t a, int timeout_ms);

/*
 * worker_main - `vgpu-engine --worker ...`: the worker process (started by worker_spawn). It maps
 * the framebuffer at the vGPU's address, makes the session, says hello to its guest (with the
 * channel; a remote guest's over its connection, served by a link from then on), answers the
 * engine's requests, and runs until the guest goes or it is told to stop (SIGTERM). A fault that
 * ends its GPU context ends only this guest's work. Returns the process's exit status.
 */
int worker_main(int argc, char **argv);

/*
 * worker_parse_u64 - a command-line number (decimal, or 0x hex) of the engine or a worker into
 * *ret: 0, or -EINVAL for anything else (empty, negative, trailing bytes, out of range).
 */
int worker_parse_u64(const char *s, uint64_t *ret);

#endif
