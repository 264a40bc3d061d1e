/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine process's state (struct engine: its guests, clients and framebuffer) and what its
 * parts share: vgpu_engine.c (sockets, guests, main), engine_workers.c (worker processes),
 * engine_suspend.c (suspend, resume, move) and engine_migrate.c (moves between vgpuds).
 */
#ifndef VGPU_ENGINE_VGPU_ENGINE_H
#define VGPU_ENGINE_VGPU_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <jansson.h>

#include "backend/backend.h"
#include "core/catalog.h"
#include "engine/guest_sock.h"
#include "engine/session.h"
#include "engine/snapshot.h"
#include "engine/suspend.h"
#include "engine/transfer.h"
#include "engine/worker.h"

#define ENGINE_MAX_CLIENTS 16
#define ENGINE_MAX_GUESTS  64
#define ENGINE_LINE_MAX    4096
#define ENGINE_EXIT_LOST   3 /* serve's result when the GPU context was lost */
#define WORKER_WAIT_MS     120000

struct engine_client {
        int fd;
        int passed; /* an fd that came with the request (a migration's connection), or -1 */
        size_t len;
        char buf[ENGINE_LINE_MAX];
};

/* An attached guest: its socket (watched for hang-up) and its session. */
struct engine_guest {
        int fd; /* the guest's socket; for a worker, the socket of its allocation requests */
        struct session *s;
        /* a worker process runs this guest's session (e->isolate); gsock: the guest's socket,
         * watched for its hang-up only (-1 once it hung up: the worker is finishing) */
        pid_t worker;
        int gsock;
        int ctl; /* a worker's: the engine's requests (struct worker_msg) and their answers */
        uint32_t sid;
        pid_t guest_pid;
        struct guest_sock in; /* what a local guest sent after hello (engine's sessions) */
        /* a guest over TCP (engine/link.c); fd is then the end of a pipe the link writes to when
         * it ends, notify its other end */
        struct link *link;
        int notify;
        bool remote; /* over TCP: served by a link, here (link) or in its worker */
        /* a session that moved or was restored here, in an engine with workers: its bytes, until
         * its guest re-attaches (with wait.head.token) and a worker imports them */
        struct transfer_blob wait;
        bool exported; /* its worker's session is in the image being written (do_suspend) */
};

struct engine {
        const struct backend_ops *ops;
        struct vgpu_dev dev;
        const char *uuid;
        const char *type;
        const char *control;
        const char *guest_path;
        const struct gpu_model *model;
        uint32_t gpu_index;
        const char *gpu_uuid; /* cuda: the device (GPU or MIG device) by UUID; NULL: by index */
        uint64_t sm_count;
        uint64_t owner_uid;
        int listen_fd;
        int guest_fd;
        int sig_fd;
        uint32_t next_session;
        struct engine_client clients[ENGINE_MAX_CLIENTS];
        struct engine_guest guests[ENGINE_MAX_GUESTS];
        bool stopping;
        /* one worker process per guest (docs/cuda.md): the framebuffer's memory, exported */
        bool isolate;
        int fb_fds[WORKER_MAX_FB_FDS];
        size_t n_fb_fds;
        char self[4096];
        const char *sched_path;
        /* the framebuffer as reserved (its GPU and offset change when the vGPU moves) */
        struct backend_fb_req fb_req;
        bool suspended;   /* the framebuffer is released; the sessions are parked */
        bool moved;       /* moved to another vgpud: vgpud stops the engine */
        bool arrived;     /* moved here from another vgpud (migrate_in committed) */
        char image[4096]; /* where the last suspend wrote the image */
};

/* The workers as a move's peers (suspend.h, transfer.h): callbacks whose ctx is this struct. */
struct engine_peers {
        struct engine *e;
        uint32_t gpu; /* where the framebuffer goes */
        struct vdev_peers vp;
        struct transfer_peers tp; /* tp.vp points at vp: never copy a filled one */
};

/* ---- vgpu_engine.c ---- */

/* engine_slot_used - whether a guest slot holds a session, a worker or a waiting session. */
bool engine_slot_used(const struct engine_guest *g);

/* engine_guest_count - the guests attached (a worker whose guest hung up does not count). */
int engine_guest_count(const struct engine *e);

/* engine_hello_json - the vGPU as the guest driver describes it to programs. */
json_t *engine_hello_json(const struct engine *e);

/* engine_lost_code - the kernel fault that lost the GPU context (docs/cuda.md), or 0. */
int engine_lost_code(struct engine *e);

/* engine_any_guest - whether any slot is used. */
bool engine_any_guest(const struct engine *e);

/* ---- engine_workers.c: one worker process per guest (docs/cuda.md) ---- */

/*
 * engine_workers_do - ask every worker to do op (worker.h), serving their allocation requests
 * meanwhile. 0, the first error a worker answered, or -ETIMEDOUT.
 */
int engine_workers_do(struct engine *e, uint32_t op, uint64_t a, const int *fds, size_t n);

/*
 * engine_workers_export - the sessions of an engine with workers as bytes, the workers parked
 * (blob[i] malloc'd, *ret_n of them). for_suspend leaves out, with a warning, a session whose
 * module variables the backend placed; a move fails on it. 0, or -errno with err set.
 */
int engine_workers_export(struct engine *e, uint8_t **blob, size_t *blen, size_t *ret_n,
                          bool for_suspend, char *err, size_t errlen);

/* engine_workers_remap - the framebuffer is new: the workers map it and go on. */
void engine_workers_remap(struct engine *e);

/* engine_peers_init - ret as the peers of a move to GPU gpu (tcp: where remote guests go). */
void engine_peers_init(struct engine_peers *ret, struct engine *e, uint32_t gpu, const char *tcp);

/*
 * engine_worker_start - start the worker that runs a guest's session in g: gfd is the guest's
 * socket (or remote's connection), import a session to take over, or NULL. 0 or -errno.
 */
int engine_worker_start(struct engine *e, struct engine_guest *g, int gfd, const struct ucred *cred,
                        const struct mw_conn *remote, const struct transfer_blob *import);

/* engine_worker_gone - a worker ended: reap it, free its guest's memory, clear g. */
void engine_worker_gone(struct engine *e, struct engine_guest *g);

/* engine_worker_request - serve one allocation request of g's worker. -1 when it is gone. */
int engine_worker_request(struct engine *e, struct engine_guest *g);

/* ---- engine_suspend.c: suspend, resume, move (docs/migration.md) ---- */

/* engine_sessions - the engine's own sessions into ret (ENGINE_MAX_GUESTS); their number. */
size_t engine_sessions(struct engine *e, struct session **ret);

/* engine_meta - the vGPU's identity as a snapshot records it. */
struct snap_meta engine_meta(const struct engine *e);

/* engine_op_error - the reply {"ok": false, "error": ...} of a failed operation. */
json_t *engine_op_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* engine_op_done - the reply of a finished suspend or resume, timed from t0. */
json_t *engine_op_done(const struct snap_stats *st, uint64_t t0);

/* engine_suspend_op - vgpud's "suspend", "resume" or "move" request (op): the reply. */
json_t *engine_suspend_op(struct engine *e, const char *op, json_t *req);

/* ---- engine_migrate.c: moves between vgpuds, restores, remote guests ---- */

/* engine_unhex - n bytes from 2n hex digits. 0 or -1. */
int engine_unhex(const char *s, uint8_t *out, size_t n);

/* engine_waiting_slot - the slot of the session token names, waiting for its guest, or -1. */
int engine_waiting_slot(const struct engine *e, const uint8_t token[16]);

/* engine_restore - vgpud's "restore": a fresh engine takes a suspended vGPU's image. */
json_t *engine_restore(struct engine *e, const char *path);

/*
 * engine_migrate_op - "migrate_out", "migrate_in" or "guest_tcp" with the connection fd that
 * came with it (taken, closed when done): the reply.
 */
json_t *engine_migrate_op(struct engine *e, const char *op, json_t *req, int fd);

#endif
