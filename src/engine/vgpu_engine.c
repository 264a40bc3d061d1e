// SPDX-License-Identifier: Apache-2.0
// vgpu-engine: one process per vGPU. It reserves the vGPU's framebuffer through the backend at
// the vGPU's fixed device address, holds it for the vGPU's life, and answers vgpud on a control
// socket (newline-delimited JSON: status, stop). It outlives a vgpud restart; vgpud re-adopts it.
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "backend/backend.h"
#include "common/log.h"
#include "common/schedpage.h"
#include "core/catalog.h"
#include "engine/guest_sock.h"
#include "engine/link.h"
#include "engine/session.h"
#include "engine/suspend.h"
#include "engine/transfer.h"
#include "engine/worker.h"
#include "ptx/ptx.h"

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

static bool slot_used(const struct engine_guest *g)
{
        return g->s || g->worker > 0 || g->wait.p;
}

static int listen_control(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A socket left by an engine that died is stale: nobody answers on it. */
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                close(fd);
                return -EADDRINUSE;
        }
        unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

static void reply(int fd, json_t *msg)
{
        char *s = json_dumps(msg, JSON_COMPACT);
        size_t len;

        json_decref(msg);
        if (!s)
                return;
        len = strlen(s);
        s[len] = '\n'; /* json_dumps leaves room for the NUL; replace it */
        if (send(fd, s, len + 1, MSG_NOSIGNAL) < 0)
                vgpu_log(VGPU_LOG_DEBUG, "reply: %s", strerror(errno));
        free(s);
}

static int guest_count(const struct engine *e)
{
        int n = 0;

        for (int i = 0; i < ENGINE_MAX_GUESTS; i++)
                n += slot_used(&e->guests[i]) &&
                     !(e->guests[i].worker > 0 && e->guests[i].gsock < 0);
        return n;
}

static json_t *status_json(struct engine *e)
{
        json_t *o = json_pack(
                "{s:b, s:s, s:i, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:i}", "ok", 1, "uuid", e->uuid,
                "pid", (int)getpid(), "type", e->type, "gpu_index", (int)e->gpu_index, "backend",
                e->ops->name, "device_address", (json_int_t)e->dev.fb.device_address, "fb_size",
                (json_int_t)e->dev.fb.size, "fb_offset", (json_int_t)e->dev.fb.phys_offset,
                "fb_resident", (json_int_t)e->ops->fb_resident(&e->dev.fb), "guests",
                guest_count(e));

        if (o) {
                json_object_set_new(o, "state",
                                    json_string(e->moved       ? "moved"
                                                : e->suspended ? "suspended"
                                                               : "running"));
                json_object_set_new(o, "arrived", json_boolean(e->arrived));
                if (e->gpu_uuid) /* the device it runs on (a MIG device for MIG-backed vGPUs) */
                        json_object_set_new(o, "gpu_uuid", json_string(e->gpu_uuid));
                {
                        int waiting = 0; /* sessions that moved here, their guests not yet */

                        for (int i = 0; i < ENGINE_MAX_GUESTS; i++)
                                waiting += (e->guests[i].s && !session_started(e->guests[i].s)) ||
                                           e->guests[i].wait.p;
                        json_object_set_new(o, "guests_waiting", json_integer(waiting));
                }
                /* while suspended: what the framebuffer is when it is back */
                json_object_set_new(o, "fb_size", json_integer((json_int_t)e->fb_req.size));
                json_object_set_new(o, "fb_offset",
                                    json_integer((json_int_t)e->fb_req.phys_offset));
        }
        if (o && e->suspended && e->image[0])
                json_object_set_new(o, "image", json_string(e->image));
        /* Allocated by guests (the allocator's view, before the first guest: none). */
        if (o && e->dev.mem.size)
                json_object_set_new(o, "fb_used",
                                    json_integer((json_int_t)(e->dev.mem.size -
                                                              fbmem_free_bytes(&e->dev.mem))));
        return o;
}

/* ---- suspend, resume, move (docs/migration.md) --------------------------------------------- */

static int worker_request(struct engine *e, struct engine_guest *g);

/*
 * Ask every worker to do op (with fds for WORKER_MAP) and wait for all their answers, serving
 * their allocation requests meanwhile (a worker finishing its guest's queued commands before it
 * parks may allocate). A worker that went away meanwhile has nothing left to do. 0, or the
 * first error a worker answered, or -ETIMEDOUT.
 */
static int workers_ask(struct engine *e, const struct worker_msg *m, size_t len, const int *fds,
                       size_t n)
{
        bool pending[ENGINE_MAX_GUESTS] = {false};
        uint64_t deadline = chan_now_ns() + (uint64_t)WORKER_WAIT_MS * 1000000;
        int r = 0, left = 0;

        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                struct engine_guest *g = &e->guests[i];

                if (g->worker > 0 && g->ctl >= 0 &&
                    worker_send(g->ctl, m, len, fds, m->op == WORKER_MAP ? n : 0) == 0) {
                        pending[i] = true;
                        left++;
                }
        }
        while (left > 0) {
                struct pollfd pfd[2 * ENGINE_MAX_GUESTS];
                int idx[2 * ENGINE_MAX_GUESTS], np = 0;
                int64_t ms = (int64_t)(deadline - chan_now_ns()) / 1000000;

                if ((int64_t)(deadline - chan_now_ns()) <= 0)
                        return -ETIMEDOUT;
                for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                        if (!pending[i])
                                continue;
                        idx[np] = i;
                        pfd[np++] = (struct pollfd){.fd = e->guests[i].ctl, .events = POLLIN};
                        idx[np] = -1 - i;
                        pfd[np++] = (struct pollfd){.fd = e->guests[i].fd, .events = POLLIN};
                }
                if (poll(pfd, (nfds_t)np, (int)(ms > 1000 ? 1000 : ms + 1)) < 0 && errno != EINTR)
                        return -errno;
                for (int k = 0; k < np; k++) {
                        int i = idx[k] >= 0 ? idx[k] : -1 - idx[k];
                        struct worker_msg ans;
                        ssize_t got;

                        if (!pfd[k].revents || !pending[i])
                                continue;
                        if (idx[k] < 0) {
                                if (worker_request(e, &e->guests[i]) == 0)
                                        continue;
                                got = 0; /* its allocation socket hung up: it is gone */
                        } else {
                                got = recv(e->guests[i].ctl, &ans, sizeof(ans), MSG_DONTWAIT);
                                if (got < 0 && (errno == EAGAIN || errno == EINTR))
                                        continue;
                        }
                        pending[i] = false;
                        left--;
                        if (got == (ssize_t)sizeof(ans) && ans.r < 0 && r == 0)
                                r = ans.r;
                }
        }
        return r;
}

static int workers_do(struct engine *e, uint32_t op, uint64_t a, const int *fds, size_t n)
{
        struct worker_msg m = {.op = op, .a = a};

        return workers_ask(e, &m, sizeof(m), fds, n);
}

static size_t engine_sessions(struct engine *e, struct session **ret)
{
        size_t n = 0;

        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                if (e->guests[i].s)
                        ret[n++] = e->guests[i].s;
        }
        return n;
}

static struct snap_meta engine_meta(const struct engine *e)
{
        struct snap_meta m = {.device_address = e->fb_req.device_address,
                              .fb_size = e->fb_req.size};

        snprintf(m.uuid, sizeof(m.uuid), "%s", e->uuid);
        snprintf(m.type, sizeof(m.type), "%s", e->type);
        return m;
}

static json_t *op_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *op_error(const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static json_t *op_done(const struct snap_stats *st, uint64_t t0)
{
        return json_pack("{s:b, s:I, s:I, s:f}", "ok", 1, "data_bytes", (json_int_t)st->data_bytes,
                         "image_bytes", (json_int_t)st->stored_bytes, "seconds",
                         (double)(chan_now_ns() - t0) / 1e9);
}

/*
 * The sessions of an engine with workers, as bytes (the workers parked): each worker's
 * (worker_export; each such slot marked exported), and those of sessions whose guests have not
 * re-attached since they moved or were restored here (their tokens unchanged). A session whose
 * modules' variables the backend placed (-ENOTSUP) is left out when for_suspend (it stays in its
 * worker: a resume by this engine finds it; a restore elsewhere does not), and fails a move.
 * 0, or a negative errno with err set and nothing kept.
 */
static int workers_export(struct engine *e, uint8_t **blob, size_t *blen, size_t *ret_n,
                          bool for_suspend, char *err, size_t errlen)
{
        size_t n = 0;
        int r = 0;

        for (int i = 0; r == 0 && i < ENGINE_MAX_GUESTS; i++) {
                struct engine_guest *g = &e->guests[i];

                g->exported = false;
                if (g->wait.p) {
                        blob[n] = malloc(g->wait.len);
                        r = blob[n] ? 0 : -ENOMEM;
                        if (r == 0)
                                memcpy(blob[n], g->wait.p, g->wait.len);
                        blen[n] = g->wait.len;
                } else if (g->worker > 0 && g->ctl >= 0 && g->gsock >= 0) {
                        r = worker_export(g->ctl, WORKER_WAIT_MS, &blob[n], &blen[n]);
                        if (r == -EIO)
                                continue; /* the worker is gone, and its session with it */
                        if (r == -ENOTSUP && for_suspend) {
                                vgpu_log(VGPU_LOG_WARN,
                                         "vGPU %s: guest %d's session stays out of the image (its "
                                         "modules' variables were placed by the backend): only "
                                         "this engine can resume it",
                                         e->uuid, (int)g->guest_pid);
                                r = 0;
                                continue;
                        }
                        g->exported = r == 0;
                } else {
                        continue; /* no session, or its guest left and its worker is ending */
                }
                if (r < 0)
                        snprintf(err, errlen, "%s %d: %s",
                                 g->remote ? "the remote guest of session" : "guest",
                                 g->remote ? (int)g->sid : (int)g->guest_pid,
                                 r == -ENOTSUP  ? "its modules' variables were placed by the "
                                                  "backend and cannot move"
                                 : r == -EPROTO ? "its worker's answer broke the rules"
                                                : strerror(-r));
                else
                        n++;
        }
        if (r < 0) {
                for (size_t k = 0; k < n; k++)
                        free(blob[k]);
                return r;
        }
        *ret_n = n;
        return 0;
}

/* Suspend to path: write the image beside it and rename it into place once whole. */
static json_t *do_suspend(struct engine *e, const char *path, int level)
{
        struct session *ss[ENGINE_MAX_GUESTS];
        size_t n = engine_sessions(e, ss), n_blob = 0;
        uint8_t *blob[ENGINE_MAX_GUESTS] = {0};
        size_t blen[ENGINE_MAX_GUESTS] = {0};
        struct snap_meta meta = engine_meta(e);
        struct snap_stats st = {0};
        uint64_t t0 = chan_now_ns();
        char tmp[4200], err[512] = "";
        bool anonymous = false;
        int fd, r;

        if (path[0] != '/' || strlen(path) >= sizeof(e->image))
                return op_error("suspend: the image path must be absolute");
        if (lstat(path, &(struct stat){0}) == 0)
                return op_error("suspend: %s: a file of that name exists (the vGPU runs on)", path);
        /*
         * The image has no name until it is whole (O_TMPFILE): an engine that dies while writing
         * leaves nothing behind. Where the file system cannot, a temporary name beside it.
         */
        snprintf(tmp, sizeof(tmp), "%s", path);
        {
                char *slash = strrchr(tmp, '/');

                if (slash == tmp)
                        slash[1] = '\0';
                else
                        *slash = '\0';
        }
        fd = open(tmp, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd >= 0) {
                anonymous = true;
        } else if (errno == EOPNOTSUPP || errno == EISDIR) {
                snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid());
                fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        }
        if (fd < 0)
                return op_error("suspend: cannot create the image in %s: %s", tmp, strerror(errno));
        vdev_pause(ss, n);
        r = e->isolate ? workers_do(e, WORKER_PAUSE, 0, NULL, 0) : 0;
        if (r < 0)
                snprintf(err, sizeof(err), "a worker did not stop: %s", strerror(-r));
        /*
         * The guests' sessions go into the image too (a worker's from its worker, worker_export),
         * and each guest's channel learns where it re-attaches, and with which token, should this
         * engine be gone when the vGPU is resumed (docs/migration.md).
         */
        if (r == 0 && e->isolate)
                r = workers_export(e, blob, blen, &n_blob, true, err, sizeof(err));
        for (size_t i = 0; r == 0 && !e->isolate && i < n; i++) {
                r = session_export(ss[i], &blob[i], &blen[i]);
                if (r < 0)
                        snprintf(err, sizeof(err), "guest %d: %s", (int)session_pid(ss[i]),
                                 r == -ENOTSUP ? "its modules' variables cannot be saved"
                                               : strerror(-r));
                else
                        n_blob++;
        }
        if (r == 0)
                r = vdev_save(&e->dev, &meta, fd, level, (const uint8_t *const *)blob, blen, n_blob,
                              &st, err, sizeof(err));
        for (size_t i = 0; i < n_blob; i++) {
                if (r == 0 && !e->isolate)
                        session_note_home(ss[i], e->guest_path);
                free(blob[i]);
        }
        for (int i = 0; r == 0 && e->isolate && i < ENGINE_MAX_GUESTS; i++) {
                /* where its guest re-attaches, with the token of the image's session */
                if (e->guests[i].exported && e->guests[i].ctl >= 0)
                        worker_call(e->guests[i].ctl, WORKER_HOME, 0, WORKER_WAIT_MS);
        }
        if (r == 0 && fsync(fd) < 0) {
                r = -errno;
                snprintf(err, sizeof(err), "writing the image: %s", strerror(errno));
        }
        /* link, not rename: an image never replaces a file that is there */
        if (r == 0) {
                char self[64];

                snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
                if ((anonymous ? linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW)
                               : link(tmp, path)) < 0) {
                        r = -errno;
                        snprintf(err, sizeof(err), "%s: %s", path,
                                 errno == EEXIST ? "a file of that name exists" : strerror(errno));
                }
        }
        if (close(fd) < 0 && r == 0) {
                r = -errno;
                snprintf(err, sizeof(err), "writing the image: %s", strerror(errno));
                unlink(path);
        }
        if (!anonymous)
                unlink(tmp);
        if (r < 0) {
                if (e->isolate)
                        workers_do(e, WORKER_UNPAUSE, 0, NULL, 0);
                vdev_unpause(ss, n);
                return op_error("suspend: %s (the vGPU runs on)", err);
        }
        if (e->isolate) {
                /* the workers' mappings and the fds for new ones hold the memory too */
                workers_do(e, WORKER_RELEASE, 0, NULL, 0);
                for (size_t k = 0; k < e->n_fb_fds; k++)
                        close(e->fb_fds[k]);
                e->n_fb_fds = 0;
        }
        vdev_release(&e->dev);
        e->suspended = true;
        snprintf(e->image, sizeof(e->image), "%s", path);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: suspended to %s (%llu bytes of data, %llu in the image)",
                 e->uuid, path, (unsigned long long)st.data_bytes,
                 (unsigned long long)st.stored_bytes);
        return op_done(&st, t0);
}

/* The framebuffer request for a place (GPU, offset); the address and size never change. */
static int place_of(struct engine *e, json_t *req, struct backend_fb_req *ret, const char **why)
{
        json_t *g = json_object_get(req, "gpu_index"), *o = json_object_get(req, "fb_offset");

        *ret = e->fb_req;
        if ((g &&
             (!json_is_integer(g) || json_integer_value(g) < 0 || json_integer_value(g) > 1023)) ||
            (o && (!json_is_integer(o) || json_integer_value(o) < 0))) {
                *why = "gpu_index and fb_offset must be non-negative integers";
                return -EINVAL;
        }
        if (g)
                ret->gpu_index = (uint32_t)json_integer_value(g);
        if (o)
                ret->phys_offset = (uint64_t)json_integer_value(o);
        /* A device of the backend holds one GPU; the sim's devices are all alike. */
        if (ret->gpu_index != e->gpu_index && strcmp(e->ops->name, "sim") != 0) {
                *why = "moving a vGPU to another GPU is not supported on this backend yet";
                return -ENOTSUP;
        }
        return 0;
}

static void placed(struct engine *e, const struct backend_fb_req *req)
{
        e->fb_req = *req;
        e->gpu_index = req->gpu_index;
}

/*
 * The framebuffer is new (resume, move): export it for the workers, have them map it (the
 * old mapping, if any, goes first) and go on. A worker that cannot has its guest cut off.
 */
static void workers_map(struct engine *e)
{
        size_t n = 0;
        int r;

        for (size_t k = 0; k < e->n_fb_fds; k++)
                close(e->fb_fds[k]);
        e->n_fb_fds = 0;
        r = e->ops->fb_export(e->dev.bdev, &e->dev.fb, e->fb_fds, WORKER_MAX_FB_FDS, &n);
        if (r == 0) {
                e->n_fb_fds = n;
                workers_do(e, WORKER_RELEASE, 0, NULL, 0);
                r = workers_do(e, WORKER_MAP, e->gpu_index, e->fb_fds, n);
        }
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR,
                         "vGPU %s: workers cannot map the framebuffer (%s): their "
                         "guests are cut off",
                         e->uuid, strerror(-r));
                for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                        if (e->guests[i].worker > 0)
                                kill(e->guests[i].worker, SIGKILL);
                }
        }
}

static void workers_remap(struct engine *e)
{
        workers_map(e);
        workers_do(e, WORKER_UNPAUSE, 0, NULL, 0);
}

/* ---- a move's peers: the workers (suspend.h, struct vdev_peers) ---- */

struct move_peers {
        struct engine *e;
        uint32_t gpu; /* where the framebuffer goes */
};

static int peers_pause(void *ctx)
{
        return workers_do(((struct move_peers *)ctx)->e, WORKER_PAUSE, 0, NULL, 0);
}

static void peers_unpause(void *ctx)
{
        workers_do(((struct move_peers *)ctx)->e, WORKER_UNPAUSE, 0, NULL, 0);
}

static void peers_track(void *ctx, bool on)
{
        workers_do(((struct move_peers *)ctx)->e, WORKER_TRACK, on, NULL, 0);
}

/* What each worker wrote since last asked goes into the allocator's marks. */
static void peers_collect(void *ctx)
{
        struct engine *e = ((struct move_peers *)ctx)->e;
        size_t cap = sizeof(struct worker_msg) + WORKER_DIRTY_MAX * sizeof(uint64_t);
        uint8_t *buf = malloc(cap);

        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                struct engine_guest *g = &e->guests[i];
                struct worker_msg m = {.op = WORKER_DIRTY};
                struct pollfd p = {.fd = g->ctl, .events = POLLIN};
                ssize_t got = -1;

                if (g->worker <= 0 || g->ctl < 0)
                        continue;
                if (buf && send(g->ctl, &m, sizeof(m), MSG_NOSIGNAL) == (ssize_t)sizeof(m) &&
                    poll(&p, 1, 5000) == 1)
                        got = recv(g->ctl, buf, cap, 0);
                memcpy(&m, buf ? buf : (uint8_t *)&m, sizeof(m));
                if (got >= (ssize_t)sizeof(m) && m.r >= 0 &&
                    (size_t)got == sizeof(m) + (size_t)m.r * sizeof(uint64_t)) {
                        for (int32_t j = 0; j < m.r; j++) {
                                uint64_t base;

                                memcpy(&base, buf + sizeof(m) + (size_t)j * sizeof(base),
                                       sizeof(base));
                                fbmem_mark(&e->dev.mem, base, 1);
                        }
                } else {
                        /* no list: count everything as written */
                        fbmem_mark(&e->dev.mem, e->dev.mem.base, e->dev.mem.size);
                }
        }
        free(buf);
}

static void peers_switched(void *ctx)
{
        struct move_peers *mp = ctx;

        mp->e->gpu_index = mp->gpu;
        workers_map(mp->e);
}

/* A move to another vgpud (transfer.h, struct transfer_peers): the workers' sessions go too. */
static int peers_export(void *ctx, uint8_t **blob, size_t *blen, size_t max, size_t *ret_n,
                        char *err, size_t len)
{
        if (max < ENGINE_MAX_GUESTS) {
                snprintf(err, len, "too many guests");
                return -E2BIG;
        }
        return workers_export(((struct move_peers *)ctx)->e, blob, blen, ret_n, false, err, len);
}

/* Each worker's guest learns where to re-attach: "SOCKET\0HOST:PORT\0" after the message. */
static void peers_moved(void *ctx, const char *to, const char *tcp)
{
        struct engine *e = ((struct move_peers *)ctx)->e;
        _Alignas(struct worker_msg) uint8_t buf[sizeof(struct worker_msg) + WORKER_MOVED_MAX];
        size_t lt = strlen(to) + 1, lc = strlen(tcp ? tcp : "") + 1;
        struct worker_msg m = {.op = WORKER_MOVED, .a = lt + lc};
        int r;

        if (lt + lc > WORKER_MOVED_MAX) {
                vgpu_log(VGPU_LOG_ERROR, "vGPU %s: where its guests go is too long to tell them",
                         e->uuid);
                return;
        }
        memcpy(buf, &m, sizeof(m));
        memcpy(buf + sizeof(m), to, lt);
        memcpy(buf + sizeof(m) + lt, tcp ? tcp : "", lc);
        r = workers_ask(e, (const struct worker_msg *)(const void *)buf, sizeof(m) + lt + lc, NULL,
                        0);
        if (r < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: a worker did not tell its guest it moved: %s",
                         e->uuid, strerror(-r));
}

static json_t *do_resume(struct engine *e, const char *path, json_t *req)
{
        struct session *ss[ENGINE_MAX_GUESTS];
        size_t n = engine_sessions(e, ss);
        struct snap_meta meta = engine_meta(e);
        struct snap_stats st = {0};
        struct backend_fb_req fr;
        const char *why = NULL;
        uint64_t t0 = chan_now_ns();
        char err[512] = "";
        int fd, r;

        if (!e->suspended)
                return op_error("resume: the vGPU is not suspended");
        if (place_of(e, req, &fr, &why) < 0)
                return op_error("resume: %s", why);
        if (!path)
                path = e->image;
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return op_error("resume: cannot open the image %s: %s (the vGPU stays suspended)",
                                path, strerror(errno));
        r = vdev_restore(&e->dev, &meta, &fr, fd, &st, err, sizeof(err));
        close(fd);
        if (r < 0)
                return op_error("resume: %s: %s (the vGPU stays suspended)", path, err);
        placed(e, &fr);
        e->suspended = false;
        e->image[0] = '\0';
        if (e->isolate)
                workers_remap(e);
        vdev_unpause(ss, n);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: resumed from %s on GPU %u", e->uuid, path, e->gpu_index);
        return op_done(&st, t0);
}

/*
 * Move the running vGPU to another place (GPU, offset): its framebuffer is copied there (with
 * pre-copy while the guests run, when asked) and takes over the device address.
 */
static json_t *do_move(struct engine *e, json_t *req)
{
        struct session *ss[ENGINE_MAX_GUESTS];
        size_t n = engine_sessions(e, ss);
        struct backend_fb_req fr;
        struct move_stats st;
        const char *why = NULL;
        uint64_t t0 = chan_now_ns();
        bool precopy = json_is_true(json_object_get(req, "precopy"));
        struct move_peers mp;
        const struct vdev_peers peers = {.ctx = &mp,
                                         .pause = peers_pause,
                                         .unpause = peers_unpause,
                                         .track = peers_track,
                                         .collect = peers_collect,
                                         .switched = peers_switched};
        char err[512] = "";
        int r;

        if (e->suspended)
                return op_error("move: the vGPU is suspended (resume it with --gpu instead)");
        if (place_of(e, req, &fr, &why) < 0)
                return op_error("move: %s", why);
        mp = (struct move_peers){.e = e, .gpu = fr.gpu_index};
        r = vdev_move(&e->dev, ss, n, &e->fb_req, &fr, precopy, e->isolate ? &peers : NULL, &st,
                      err, sizeof(err));
        if (r < 0 && !e->dev.fb.size) {
                vgpu_log(VGPU_LOG_ERROR, "vGPU %s: move failed and lost the framebuffer: %s",
                         e->uuid, err);
                return op_error("move: %s", err);
        }
        if (r < 0)
                return op_error("move: %s (the vGPU runs on where it was)", err);
        placed(e, &fr);
        vgpu_log(VGPU_LOG_INFO,
                 "vGPU %s: moved to GPU %u offset %llu (%s: %u rounds, %llu bytes live, %llu "
                 "stopped, paused %.1f ms)",
                 e->uuid, e->gpu_index, (unsigned long long)e->fb_req.phys_offset,
                 precopy ? "pre-copy" : "stop and copy", st.rounds,
                 (unsigned long long)st.live_bytes, (unsigned long long)st.stopped_bytes,
                 (double)st.stun_ns / 1e6);
        return json_pack("{s:b, s:s, s:i, s:I, s:I, s:I, s:f, s:f}", "ok", 1, "mode",
                         precopy ? "precopy" : "stop-and-copy", "rounds", (int)st.rounds,
                         "data_bytes", (json_int_t)(st.live_bytes + st.stopped_bytes), "live_bytes",
                         (json_int_t)st.live_bytes, "stopped_bytes", (json_int_t)st.stopped_bytes,
                         "stun_ms", (double)st.stun_ns / 1e6, "seconds",
                         (double)(chan_now_ns() - t0) / 1e9);
}

static json_t *suspend_op(struct engine *e, const char *op, json_t *req)
{
        json_t *p = json_object_get(req, "path"), *lv = json_object_get(req, "level");
        int level = 1;

        if (p && !json_is_string(p))
                return op_error("%s: path must be a string", op);
        if (lv &&
            (!json_is_integer(lv) || json_integer_value(lv) < -7 || json_integer_value(lv) > 19))
                return op_error("%s: level must be an integer from -7 to 19", op);
        if (lv)
                level = (int)json_integer_value(lv);
        if (strcmp(op, "suspend") == 0) {
                if (e->suspended)
                        return op_error("suspend: the vGPU is already suspended");
                if (!p)
                        return op_error("suspend: which path? (\"path\")");
                return do_suspend(e, json_string_value(p), level);
        }
        if (strcmp(op, "resume") == 0)
                return do_resume(e, p ? json_string_value(p) : NULL, req);
        return do_move(e, req);
}

/* ---- migration to another vgpud (docs/migration.md) -------------------------------------- */

static int lost_code(struct engine *e);
static bool any_guest(const struct engine *e);
static json_t *hello_json(const struct engine *e);
static int worker_start(struct engine *e, struct engine_guest *g, int gfd, const struct ucred *cred,
                        const struct mw_conn *remote, const struct transfer_blob *import);

static int hexval(char ch)
{
        return ch >= '0' && ch <= '9'   ? ch - '0'
               : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
               : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                        : -1;
}

/* n bytes from 2n hex digits. 0 or -1. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
        if (!s || strlen(s) != 2 * n)
                return -1;
        for (size_t i = 0; i < n; i++) {
                int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return -1;
                out[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
}

/*
 * The connection vgpud authenticated and passed along (fd), as it left it: the session key and
 * both sequence numbers are in the request.
 */
static int conn_of(json_t *req, int fd, struct mw_conn *c)
{
        json_t *tx = json_object_get(req, "tx_seq"), *rx = json_object_get(req, "rx_seq");
        json_t *server = json_object_get(req, "server"); /* which end it is */
        uint8_t key[32];

        *c = (struct mw_conn){.fd = -1};
        if (fd < 0 || unhex(json_string_value(json_object_get(req, "key")), key, 32) < 0 ||
            !json_is_integer(tx) || !json_is_integer(rx) || json_integer_value(tx) < 0 ||
            json_integer_value(rx) < 0 || !json_is_boolean(server))
                return -1;
        return mw_conn_restore(c, fd, key, (uint64_t)json_integer_value(tx),
                               (uint64_t)json_integer_value(rx), json_is_true(server));
}

static bool any_waiting(const struct engine *e)
{
        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                if ((e->guests[i].s && !session_started(e->guests[i].s)) || e->guests[i].wait.p)
                        return true;
        }
        return false;
}

/*
 * The slot of the session that token names, waiting for its guest (an engine's own session, or
 * with workers, its bytes): its index, or -1.
 */
static int waiting_slot(const struct engine *e, const uint8_t token[16])
{
        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                const struct engine_guest *g = &e->guests[i];

                if (g->s && session_token_is(g->s, token))
                        return i;
                if (g->wait.p && CRYPTO_memcmp(g->wait.head.token, token, 16) == 0)
                        return i;
        }
        return -1;
}

static json_t *do_migrate_out(struct engine *e, json_t *req, struct mw_conn *c)
{
        struct session *ss[ENGINE_MAX_GUESTS];
        size_t n = engine_sessions(e, ss);
        struct snap_meta meta = engine_meta(e);
        struct transfer_stats st;
        uint64_t t0 = chan_now_ns();
        char err[512] = "";
        int r;

        if (e->suspended)
                return op_error("migrate: the vGPU is suspended: resume it first");
        if (lost_code(e))
                return op_error("migrate: the vGPU's GPU context was lost");
        if (any_waiting(e))
                return op_error("migrate: guests have not re-attached since the vGPU last moved "
                                "here; try again once they made a call");
        bool precopy = json_is_true(json_object_get(req, "precopy"));

        const char *guest_tcp = json_string_value(json_object_get(req, "guest_tcp"));

        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                if ((e->guests[i].link || e->guests[i].remote) && !guest_tcp)
                        return op_error("migrate: it has a remote guest, and the target takes "
                                        "none (vgpud --guest-listen there)");
        }
        if (e->isolate) {
                /* the workers' sessions go too, each exported by its worker once parked */
                struct move_peers mp = {.e = e, .gpu = e->gpu_index};
                const struct vdev_peers vp = {.ctx = &mp,
                                              .pause = peers_pause,
                                              .unpause = peers_unpause,
                                              .track = peers_track,
                                              .collect = peers_collect,
                                              .switched = peers_switched};
                const struct transfer_peers tp = {
                        .vp = &vp, .export = peers_export, .moved = peers_moved, .tcp = guest_tcp};

                r = transfer_send_peers(&e->dev, ss, n, &tp, &meta, precopy, c, &st, err,
                                        sizeof(err));
                if (r < 0)
                        return op_error("migrate: %s (the vGPU runs on here)", err);
                n = (size_t)guest_count(e);
                /* the workers' mappings and the fds for new ones hold the memory too */
                workers_do(e, WORKER_RELEASE, 0, NULL, 0);
                for (size_t k = 0; k < e->n_fb_fds; k++)
                        close(e->fb_fds[k]);
                e->n_fb_fds = 0;
        } else {
                r = transfer_send(&e->dev, ss, n, &meta, precopy, c, &st, err, sizeof(err));
                if (r < 0)
                        return op_error("migrate: %s (the vGPU runs on here)", err);
        }
        /* remote guests follow over TCP, to the target's guest listener */
        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                uint8_t token[16];

                if (!e->guests[i].link)
                        continue;
                session_token(e->guests[i].s, token);
                link_moved(e->guests[i].link, token, guest_tcp);
        }
        vdev_release(&e->dev);
        e->moved = true;
        vgpu_log(VGPU_LOG_INFO,
                 "vGPU %s: moved to another vgpud (%u rounds, %llu bytes live, %llu stopped, "
                 "%.1f ms pause)",
                 e->uuid, st.rounds, (unsigned long long)st.live_bytes,
                 (unsigned long long)st.stopped_bytes, (double)st.stun_ns / 1e6);
        return json_pack("{s:b, s:s, s:i, s:I, s:I, s:I, s:I, s:f, s:f, s:i}", "ok", 1, "mode",
                         precopy ? "precopy" : "stop-and-copy", "rounds", (int)st.rounds,
                         "data_bytes", (json_int_t)(st.live_bytes + st.stopped_bytes), "live_bytes",
                         (json_int_t)st.live_bytes, "stopped_bytes", (json_int_t)st.stopped_bytes,
                         "wire_bytes", (json_int_t)st.wire_bytes, "stun_ms",
                         (double)st.stun_ns / 1e6, "seconds", (double)(chan_now_ns() - t0) / 1e9,
                         "guests", (int)n);
}

/* Sessions that came without their guests (a move, a restore): they wait in free slots. */
static void adopt_sessions(struct engine *e, struct session **ses, size_t n)
{
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                while (k < ENGINE_MAX_GUESTS && slot_used(&e->guests[k]))
                        k++;
                if (k == ENGINE_MAX_GUESTS) {
                        session_free(ses[i]); /* cannot happen: as many slots as the source */
                        continue;
                }
                e->guests[k].s = ses[i];
                e->guests[k].fd = -1; /* until its guest re-attaches */
                e->guests[k].guest_pid = session_pid(ses[i]);
                if (session_id(ses[i]) > e->next_session)
                        e->next_session = session_id(ses[i]);
        }
}

/*
 * The same for an engine with workers: the sessions' bytes wait in free slots until their guests
 * re-attach, each then in a worker of its own that imports them (guest_reattach, do_guest_tcp).
 */
static void adopt_blobs(struct engine *e, struct transfer_blob *b, size_t n)
{
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                while (k < ENGINE_MAX_GUESTS && slot_used(&e->guests[k]))
                        k++;
                if (k == ENGINE_MAX_GUESTS) {
                        free(b[i].p); /* cannot happen: as many slots as the source */
                        continue;
                }
                e->guests[k].wait = b[i];
                e->guests[k].sid = b[i].head.id;
                e->guests[k].guest_pid = b[i].head.pid;
                if (b[i].head.id > e->next_session)
                        e->next_session = b[i].head.id;
        }
        free(b);
}

/*
 * A suspended vGPU whose engine went (it died, or the host restarted): this fresh engine reads
 * the image, sessions and all (docs/migration.md); the guests that are still there re-attach.
 */
static json_t *do_restore(struct engine *e, const char *path)
{
        struct snap_meta meta = engine_meta(e);
        struct session **ses = NULL;
        uint64_t t0 = chan_now_ns();
        char err[512] = "";
        size_t n = 0;
        int fd, r;

        if (!path || path[0] != '/')
                return op_error("restore: which image? (an absolute \"path\")");
        if (e->suspended || any_guest(e) || e->dev.mem.n)
                return op_error("restore: this engine is in use: only a fresh one restores");
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return op_error("restore: cannot open the image %s: %s", path, strerror(errno));
        if (e->isolate) {
                struct transfer_blob *b = NULL;

                r = transfer_restore_bytes(&e->dev, &meta, fd, &b, &n, err, sizeof(err));
                if (r == 0)
                        adopt_blobs(e, b, n);
        } else {
                r = transfer_restore(&e->dev, &meta, fd, &ses, &n, err, sizeof(err));
                if (r == 0)
                        adopt_sessions(e, ses, n);
                free(ses);
        }
        close(fd);
        if (r < 0)
                return op_error("restore: %s: %s", path, err);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: restored from %s with %zu guests' sessions", e->uuid,
                 path, n);
        return json_pack("{s:b, s:i, s:f}", "ok", 1, "guests", (int)n, "seconds",
                         (double)(chan_now_ns() - t0) / 1e9);
}

static json_t *do_migrate_in(struct engine *e, struct mw_conn *c)
{
        struct snap_meta meta = engine_meta(e);
        struct session **ses = NULL;
        uint64_t t0 = chan_now_ns();
        char err[512] = "";
        size_t n = 0;
        int r;

        if (e->suspended || any_guest(e) || e->dev.mem.n)
                return op_error("migrate: this vGPU is in use: it cannot take another's state");
        if (e->isolate) {
                /* each session in a worker of its own, once its guest re-attaches */
                struct transfer_blob *b = NULL;

                r = transfer_recv_bytes(&e->dev, &meta, e->guest_path, c, &b, &n, err, sizeof(err));
                if (r == 0)
                        adopt_blobs(e, b, n);
        } else {
                r = transfer_recv(&e->dev, &meta, e->guest_path, c, &ses, &n, err, sizeof(err));
                if (r == 0)
                        adopt_sessions(e, ses, n);
                free(ses);
        }
        if (r < 0)
                return op_error("migrate: %s", err);
        e->arrived = true;
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: moved here from another vgpud with %zu guests", e->uuid,
                 n);
        return json_pack("{s:b, s:i, s:f}", "ok", 1, "guests", (int)n, "seconds",
                         (double)(chan_now_ns() - t0) / 1e9);
}

/*
 * A guest over TCP (docs/remote.md), its connection passed by vgpud: a new session, or (with a
 * token) the session of a guest whose vGPU moved here, whose channel comes first. The engine
 * says hello on the connection; then a link serves it.
 */
static json_t *do_guest_tcp(struct engine *e, json_t *req, struct mw_conn *c)
{
        const char *tok = json_string_value(json_object_get(req, "token"));
        struct link *link = NULL;
        struct session *s = NULL;
        uint8_t token[16];
        char err[256] = "";
        int slot = -1, pfd[2], chan_fd, r;

        if (e->moved || e->suspended || lost_code(e))
                return op_error("guest: the vGPU is %s", e->moved       ? "moving away"
                                                         : e->suspended ? "suspended"
                                                                        : "lost");
        if (tok) {
                slot = unhex(tok, token, 16) == 0 ? waiting_slot(e, token) : -1;
        } else {
                for (int i = 0; i < ENGINE_MAX_GUESTS && slot < 0; i++) {
                        if (!slot_used(&e->guests[i]))
                                slot = i;
                }
        }
        if (slot < 0)
                return op_error(tok ? "guest: no session of this vGPU waits for that token"
                                    : "guest: too many guests attached to this vGPU");
        if (e->isolate) {
                /* its own worker, as a local guest's: it says hello and runs the link */
                struct ucred cred = {.pid = 0, .uid = (uid_t)e->owner_uid};
                struct transfer_blob b = e->guests[slot].wait;

                /* with a token: the worker imports the session and takes its channel */
                r = worker_start(e, &e->guests[slot], c->fd, &cred, c, tok ? &b : NULL);
                if (r < 0)
                        return op_error("guest: cannot start its worker: %s", strerror(-r));
                free(b.p);
                /* the engine keeps the socket to see the guest go, and never uses it */
                c->fd = -1;
                return json_pack("{s:b}", "ok", 1);
        }
        if (tok) {
                s = e->guests[slot].s;
        } else {
                r = session_new(&e->dev, ++e->next_session, 0, (uid_t)e->owner_uid, &s, &chan_fd);
                if (r < 0)
                        return op_error("guest: %s", strerror(-r));
        }
        {
                json_t *hello = hello_json(e);

                r = mw_send_json(c, hello, err, sizeof(err));
                json_decref(hello);
        }
        if (r == 0 && tok)
                r = link_receive_channel(s, c, err, sizeof(err));
        if (r == 0 && pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0) {
                r = -errno;
                snprintf(err, sizeof(err), "%s", strerror(errno));
        }
        if (r == 0) {
                r = link_start(s, c, pfd[1], &link);
                *c = (struct mw_conn){.fd = -1}; /* the link's now */
                if (r < 0) {
                        close(pfd[0]);
                        close(pfd[1]);
                        snprintf(err, sizeof(err), "%s", strerror(-r));
                }
        }
        if (r == 0 && tok)
                r = session_start(s); /* after the link: it sees every command run */
        if (r < 0) {
                if (link) {
                        link_free(link);
                        close(pfd[0]);
                        close(pfd[1]);
                }
                if (!tok)
                        session_free(s);
                return op_error("guest: %s", err[0] ? err : strerror(-r));
        }
        e->guests[slot].s = s;
        e->guests[slot].fd = pfd[0];
        e->guests[slot].notify = pfd[1];
        e->guests[slot].link = link;
        e->guests[slot].remote = true;
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: remote guest %s", e->uuid,
                 tok ? "re-attached after the move" : "attached");
        return json_pack("{s:b}", "ok", 1);
}

static json_t *migrate_op(struct engine *e, const char *op, json_t *req, int fd)
{
        struct mw_conn c;
        json_t *r;

        if (conn_of(req, fd, &c) < 0) {
                if (fd >= 0)
                        close(fd);
                return op_error("%s: needs the connection (an fd) with key, tx_seq and rx_seq", op);
        }
        if (strcmp(op, "guest_tcp") == 0)
                r = do_guest_tcp(e, req, &c);
        else if (e->moved)
                r = op_error("migrate: the vGPU moved away");
        else if (strcmp(op, "migrate_out") == 0)
                r = do_migrate_out(e, req, &c);
        else
                r = do_migrate_in(e, &c);
        mw_close(&c);
        return r;
}

/* One request line from vgpud. Anything malformed gets an error reply, never a crash. */
static void handle_line(struct engine *e, struct engine_client *c, const char *line)
{
        int fd = c->fd;
        json_error_t err;
        json_t *req = json_loads(line, 0, &err);
        const char *op = NULL;

        if (!req || json_unpack(req, "{s:s}", "op", &op) != 0) {
                reply(fd, json_pack("{s:b, s:s}", "ok", 0, "error",
                                    "bad request: expected {\"op\": \"status\"|\"stop\"|"
                                    "\"suspend\"|\"resume\"|\"move\"|\"migrate_out\"|"
                                    "\"migrate_in\"}"));
        } else if (strcmp(op, "status") == 0) {
                reply(fd, status_json(e));
        } else if (strcmp(op, "stop") == 0) {
                reply(fd, json_pack("{s:b}", "ok", 1));
                e->stopping = true;
        } else if (strcmp(op, "suspend") == 0 || strcmp(op, "resume") == 0 ||
                   strcmp(op, "move") == 0) {
                reply(fd, suspend_op(e, op, req));
        } else if (strcmp(op, "restore") == 0) {
                reply(fd, do_restore(e, json_string_value(json_object_get(req, "path"))));
        } else if (strcmp(op, "migrate_out") == 0 || strcmp(op, "migrate_in") == 0 ||
                   strcmp(op, "guest_tcp") == 0) {
                int conn = c->passed;

                c->passed = -1;
                reply(fd, migrate_op(e, op, req, conn));
        } else {
                reply(fd, json_pack("{s:b, s:s}", "ok", 0, "error", "unknown op"));
        }
        json_decref(req);
}

static void client_drop(struct engine_client *c)
{
        close(c->fd);
        if (c->passed >= 0)
                close(c->passed);
        *c = (struct engine_client){.fd = -1, .passed = -1};
}

static void client_read(struct engine *e, struct engine_client *c)
{
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {.iov_base = c->buf + c->len, .iov_len = sizeof(c->buf) - 1 - c->len};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf,
                            .msg_controllen = sizeof(cbuf)};
        ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
        char *nl;

        if (n <= 0) {
                client_drop(c);
                return;
        }
        /* a migration's connection comes with its request (one at a time) */
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                int fd;

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
                    cm->cmsg_len < CMSG_LEN(sizeof(int)))
                        continue;
                memcpy(&fd, CMSG_DATA(cm), sizeof(int));
                if (c->passed >= 0)
                        close(c->passed);
                c->passed = fd;
        }
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
        while ((nl = memchr(c->buf, '\n', c->len))) {
                *nl = '\0';
                handle_line(e, c, c->buf);
                c->len -= (size_t)(nl + 1 - c->buf);
                memmove(c->buf, nl + 1, c->len);
        }
        if (c->fd >= 0 && c->len == sizeof(c->buf) - 1)
                client_drop(c); /* a line longer than any request */
}

/* The vGPU as the guest driver describes it to programs. */
static json_t *hello_json(const struct engine *e)
{
        char name[96];

        snprintf(name, sizeof(name), "NVIDIA %s", e->type);
        return json_pack("{s:b, s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:i, s:i, s:i, s:I}", "ok",
                         1, "version", VGPU_PROTO_VERSION, "uuid", e->uuid, "type", e->type, "name",
                         name, "model", e->model->id, "fb_size", (json_int_t)e->dev.fb.size,
                         "device_address", (json_int_t)e->dev.fb.device_address, "sm_count",
                         (int)e->sm_count, "cc_major", (int)e->model->cc_major, "cc_minor",
                         (int)e->model->cc_minor, "gpu_index", (int)e->gpu_index, "channel_size",
                         (json_int_t)chan_total_size());
}

/* The kernel fault that lost the GPU context (every guest's: see docs/cuda.md), or 0. */
static int lost_code(struct engine *e)
{
        return e->ops->dev_lost ? e->ops->dev_lost(e->dev.bdev) : 0;
}

static bool any_guest(const struct engine *e)
{
        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                if (slot_used(&e->guests[i]))
                        return true;
        }
        return false;
}

/*
 * Start the worker process that runs a guest's session (e->isolate, worker.h): gfd is the guest's
 * socket, or with remote, a remote guest's connection, which the worker takes over (the engine
 * keeps gfd only to see its guest hang up). The worker answers the guest's hello itself. 0 or
 * -errno.
 */
static int worker_start(struct engine *e, struct engine_guest *g, int gfd, const struct ucred *cred,
                        const struct mw_conn *remote, const struct transfer_blob *import)
{
        json_t *hello = hello_json(e);
        char *hello_text = json_dumps(hello, JSON_COMPACT);
        struct worker_spec w = {.self = e->self,
                                .backend = e->ops->name,
                                .uuid = e->uuid,
                                .hello = hello_text,
                                .sched = e->sched_path,
                                .gpu_uuid = e->gpu_uuid,
                                .gpu_index = e->gpu_index,
                                .session = import ? import->head.id : ++e->next_session,
                                .sm_count = e->dev.sm_count,
                                .device_address = e->dev.fb.device_address,
                                .fb_size = e->dev.fb.size,
                                .guest_pid = cred->pid,
                                .guest_uid = cred->uid,
                                .fb_fds = e->fb_fds,
                                .n_fb_fds = e->n_fb_fds,
                                .home = e->guest_path,
                                .import = import ? import->p : NULL,
                                .import_len = import ? import->len : 0,
                                .import_mem = &e->dev.mem};
        int alloc, ctl, r;
        pid_t pid;

        json_decref(hello);
        if (!hello_text)
                return -ENOMEM;
        r = worker_spawn(&w, gfd, remote, &pid, &alloc, &ctl);
        free(hello_text);
        if (r < 0)
                return r;
        /* The guest counts as attached until its socket hangs up, not until its worker ends. */
        *g = (struct engine_guest){.fd = alloc,
                                   .worker = pid,
                                   .gsock = gfd,
                                   .ctl = ctl,
                                   .sid = w.session,
                                   .guest_pid = cred->pid,
                                   .remote = remote != NULL};
        if (import)
                vgpu_log(VGPU_LOG_INFO,
                         "vGPU %s: %s guest %d re-attaches to its session %u, worker %d", e->uuid,
                         remote ? "remote" : "local", (int)cred->pid, w.session, (int)pid);
        else if (remote)
                vgpu_log(VGPU_LOG_INFO, "vGPU %s: remote guest attached, worker %d", e->uuid,
                         (int)pid);
        else
                vgpu_log(VGPU_LOG_INFO, "vGPU %s: guest %d (uid %d) attached, worker %d", e->uuid,
                         (int)cred->pid, (int)cred->uid, (int)pid);
        return 0;
}

/* A worker ended (its guest left, or it died): its guest's memory goes back. */
static void worker_gone(struct engine *e, struct engine_guest *g)
{
        char who[32];
        int status = 0;

        close(g->fd);
        if (g->gsock >= 0)
                close(g->gsock);
        if (g->ctl >= 0)
                close(g->ctl);
        waitpid(g->worker, &status, 0);
        fbmem_free_owner(&e->dev.mem, (uint64_t)g->sid << 32, ~UINT64_C(0) << 32);
        if (g->remote)
                snprintf(who, sizeof(who), "remote guest");
        else
                snprintf(who, sizeof(who), "guest %d", (int)g->guest_pid);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: %s detached (worker %d %s %d)", e->uuid, who,
                 (int)g->worker, WIFSIGNALED(status) ? "killed by signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        *g = (struct engine_guest){.fd = -1, .gsock = -1, .ctl = -1};
}

/*
 * A worker's allocation request: it may act only on its own session's blocks. Returns -1 when
 * the worker is gone.
 */
static int worker_request(struct engine *e, struct engine_guest *g)
{
        struct vgpu_alloc_msg m;
        uint64_t mine = (uint64_t)g->sid << 32, hi = ~UINT64_C(0) << 32;
        ssize_t n = recv(g->fd, &m, sizeof(m), MSG_DONTWAIT);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n != (ssize_t)sizeof(m))
                return -1;
        switch (m.op) {
        case VGPU_ALLOC_ALLOC:
                m.r = (m.b & hi) != mine ? -EPERM : fbmem_alloc(&e->dev.mem, m.a, m.b, &m.a);
                break;
        case VGPU_ALLOC_FREE:
                m.r = (m.b & hi) != mine ? -EPERM : fbmem_free(&e->dev.mem, m.a, m.b);
                break;
        case VGPU_ALLOC_FREE_OWNER:
                m.r = (m.a & hi) != mine || (m.b & hi) != hi ? -EPERM : 0;
                if (m.r == 0)
                        fbmem_free_owner(&e->dev.mem, m.a, m.b);
                break;
        case VGPU_ALLOC_INFO:
                m.a = fbmem_free_bytes(&e->dev.mem);
                m.r = 0;
                break;
        default:
                m.r = -EPROTO;
        }
        return send(g->fd, &m, sizeof(m), MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? 0 : -1;
}

/*
 * A guest connects: it must be the vGPU's owner (or root), and say hello. It gets the vGPU's
 * description and its channel. The socket then stays open: its hang-up means the guest is gone.
 */
/*
 * A guest of a vGPU that moved here (docs/migration.md): it names its session by the token the
 * old engine gave it, gets the session's new channel, copies its old channel into it, and says
 * "ready"; then the session runs. Its process must be the session's (same uid, and same pid
 * unless it comes through another pid namespace). 0, or -1 with the guest told why.
 */
static int guest_reattach(struct engine *e, int fd, const struct ucred *cred, const char *tok)
{
        uint8_t token[16];
        char line[64];
        ssize_t n;
        int slot = -1, r;

        if (unhex(tok, token, sizeof(token)) == 0)
                slot = waiting_slot(e, token);
        if (slot < 0 || (cred->uid != 0 && cred->uid != e->owner_uid)) {
                guest_sock_send(fd,
                                json_pack("{s:b, s:s}", "ok", 0, "error",
                                          "no session of this vGPU waits for this process"),
                                -1);
                return -1;
        }
        if (e->isolate && (e->suspended || e->moved)) {
                /* no framebuffer to hand a worker: it waits for the resume, as a new guest */
                guest_sock_send(fd,
                                json_pack("{s:b, s:s}", "ok", 0, "error",
                                          e->suspended ? "the vGPU is suspended: re-attach after "
                                                         "it is resumed"
                                                       : "the vGPU moved on"),
                                -1);
                return -1;
        }
        if (e->isolate) {
                /* the worker that imports its session takes the re-attach from here */
                struct transfer_blob b = e->guests[slot].wait;

                r = worker_start(e, &e->guests[slot], fd, cred, NULL, &b);
                if (r < 0) {
                        guest_sock_send(fd, json_pack("{s:b, s:s}", "ok", 0, "error", strerror(-r)),
                                        -1);
                        return -1;
                }
                free(b.p);
                return 0;
        }
        if (guest_sock_send(fd, hello_json(e), session_fd(e->guests[slot].s)) < 0)
                return -1;
        /* the guest copies its channel (the staging area too) meanwhile: tens of MiB */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){.tv_sec = 10},
                   sizeof(struct timeval));
        n = recv(fd, line, sizeof(line) - 1, 0);
        line[n > 0 ? n : 0] = '\0';
        if (n <= 0 || !strstr(line, "\"ready\"")) {
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: guest %d did not finish re-attaching", e->uuid,
                         (int)cred->pid);
                return -1;
        }
        r = session_start(e->guests[slot].s);
        if (r < 0) {
                guest_sock_send(fd, json_pack("{s:b, s:s}", "ok", 0, "error", strerror(-r)), -1);
                return -1;
        }
        guest_sock_send(fd, json_pack("{s:b}", "ok", 1), -1);
        e->guests[slot].fd = fd;
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: guest %d re-attached after the move", e->uuid,
                 (int)cred->pid);
        return 0;
}

static void guest_accept(struct engine *e)
{
        int fd = accept4(e->guest_fd, NULL, NULL, SOCK_CLOEXEC);
        struct ucred cred;
        socklen_t clen = sizeof(cred);
        /* The guest says hello right after it connects: a slow one is dropped, not waited for. */
        struct timeval tv = {.tv_sec = 1};
        char line[256];
        ssize_t n;
        int slot = -1, chan_fd, r;
        json_t *hello;

        if (fd < 0)
                return;
        for (int i = 0; i < ENGINE_MAX_GUESTS && slot < 0; i++) {
                if (!slot_used(&e->guests[i]))
                        slot = i;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
            (cred.uid != 0 && cred.uid != e->owner_uid)) {
                guest_sock_send(fd,
                                json_pack("{s:b, s:s}", "ok", 0, "error",
                                          "this vGPU belongs to another user"),
                                -1);
                close(fd);
                return;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        n = recv(fd, line, sizeof(line) - 1, 0);
        line[n > 0 ? n : 0] = '\0';
        hello = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
        if (!hello || json_integer_value(json_object_get(hello, "version")) != VGPU_PROTO_VERSION) {
                json_decref(hello);
                guest_sock_send(fd,
                                json_pack("{s:b, s:s, s:i}", "ok", 0, "error",
                                          "protocol version mismatch: update the guest driver",
                                          "version", VGPU_PROTO_VERSION),
                                -1);
                close(fd);
                return;
        }
        if (json_is_string(json_object_get(hello, "reattach"))) {
                /* its session is here already: no new slot */
                if (guest_reattach(e, fd, &cred,
                                   json_string_value(json_object_get(hello, "reattach"))) < 0)
                        close(fd);
                json_decref(hello);
                return;
        }
        json_decref(hello);
        if (slot < 0) {
                guest_sock_send(fd,
                                json_pack("{s:b, s:s}", "ok", 0, "error",
                                          "too many guests attached to this vGPU"),
                                -1);
                close(fd);
                return;
        }
        if (e->moved) {
                guest_sock_send(fd,
                                json_pack("{s:b, s:s}", "ok", 0, "error",
                                          "the vGPU moved to another vgpud: attach there"),
                                -1);
                close(fd);
                return;
        }
        if (lost_code(e)) {
                guest_sock_send(fd,
                                json_pack("{s:b, s:s}", "ok", 0, "error",
                                          "the vGPU's GPU context was lost to a kernel fault; it "
                                          "restarts once its guests are gone"),
                                -1);
                close(fd);
                return;
        }
        if (e->suspended) {
                guest_sock_send(fd,
                                json_pack("{s:b, s:s}", "ok", 0, "error",
                                          "the vGPU is suspended: attach after it is resumed"),
                                -1);
                close(fd);
                return;
        }
        if (e->isolate) {
                r = worker_start(e, &e->guests[slot], fd, &cred, NULL, NULL);
                if (r < 0) {
                        guest_sock_send(fd, json_pack("{s:b, s:s}", "ok", 0, "error", strerror(-r)),
                                        -1);
                        close(fd);
                }
                return;
        }
        r = session_new(&e->dev, ++e->next_session, cred.pid, cred.uid, &e->guests[slot].s,
                        &chan_fd);
        if (r < 0) {
                guest_sock_send(fd, json_pack("{s:b, s:s}", "ok", 0, "error", strerror(-r)), -1);
                close(fd);
                return;
        }
        if (guest_sock_send(fd, hello_json(e), chan_fd) < 0) {
                session_free(e->guests[slot].s);
                e->guests[slot].s = NULL;
                close(fd);
                return;
        }
        e->guests[slot].fd = fd;
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: guest %d (uid %d) attached", e->uuid, (int)cred.pid,
                 (int)cred.uid);
}

static void guest_gone(struct engine *e, int i)
{
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: %s %d detached", e->uuid,
                 e->guests[i].link ? "remote guest" : "guest", (int)session_pid(e->guests[i].s));
        if (e->guests[i].link) {
                link_free(e->guests[i].link);
                close(e->guests[i].notify);
        }
        session_free(e->guests[i].s);
        close(e->guests[i].fd);
        guest_sock_clear(&e->guests[i].in);
        e->guests[i] = (struct engine_guest){.fd = -1, .gsock = -1, .ctl = -1};
}

static int serve(struct engine *e)
{
        while (!e->stopping) {
                struct pollfd pfd[ENGINE_MAX_CLIENTS + 2 * ENGINE_MAX_GUESTS + 3];
                nfds_t n = 0;

                pfd[n++] = (struct pollfd){.fd = e->listen_fd, .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = e->sig_fd, .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = e->guest_fd, .events = POLLIN};
                for (int i = 0; i < ENGINE_MAX_CLIENTS; i++)
                        pfd[n++] = (struct pollfd){.fd = e->clients[i].fd, .events = POLLIN};
                for (int i = 0; i < ENGINE_MAX_GUESTS; i++)
                        pfd[n++] = (struct pollfd){.fd = slot_used(&e->guests[i]) ? e->guests[i].fd
                                                                                  : -1,
                                                   .events = POLLIN};
                for (int i = 0; i < ENGINE_MAX_GUESTS; i++)
                        pfd[n++] = (struct pollfd){
                                .fd = e->guests[i].worker > 0 ? e->guests[i].gsock : -1,
                                .events = POLLRDHUP};
                if (poll(pfd, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (pfd[1].revents)
                        return 0; /* SIGTERM or SIGINT */
                if (pfd[0].revents & POLLIN) {
                        int fd = accept4(e->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        int slot = -1;

                        for (int i = 0; fd >= 0 && i < ENGINE_MAX_CLIENTS && slot < 0; i++) {
                                if (e->clients[i].fd < 0)
                                        slot = i;
                        }
                        if (fd >= 0 && slot < 0)
                                close(fd);
                        else if (fd >= 0)
                                e->clients[slot] = (struct engine_client){.fd = fd, .passed = -1};
                }
                if (pfd[2].revents & POLLIN)
                        guest_accept(e);
                for (int i = 0; i < ENGINE_MAX_CLIENTS; i++) {
                        if (e->clients[i].fd >= 0 && pfd[i + 3].revents)
                                client_read(e, &e->clients[i]);
                }
                for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                        if (e->guests[i].worker > 0 && e->guests[i].gsock >= 0 &&
                            pfd[i + 3 + ENGINE_MAX_CLIENTS + ENGINE_MAX_GUESTS].revents) {
                                close(e->guests[i].gsock);
                                e->guests[i].gsock = -1;
                        }
                        if (!slot_used(&e->guests[i]) || !pfd[i + 3 + ENGINE_MAX_CLIENTS].revents)
                                continue;
                        if (e->guests[i].worker > 0) {
                                if (worker_request(e, &e->guests[i]) < 0)
                                        worker_gone(e, &e->guests[i]);
                                continue;
                        }
                        /* a remote guest's link ended */
                        if (e->guests[i].link) {
                                guest_gone(e, i);
                                continue;
                        }
                        /* After hello a guest only shares host memory; else it hung up. */
                        if (guest_sock_read(&e->guests[i].in, e->guests[i].fd, e->guests[i].s,
                                            e->uuid) < 0)
                                guest_gone(e, i);
                }
                /*
                 * A lost context cannot be used again in this process: once the guests that saw
                 * the fault are gone, the engine ends, vgpud marks the vGPU faulted, and
                 * `vgpuctl restart` (or a script) brings up a fresh engine.
                 */
                if (lost_code(e) && !any_guest(e)) {
                        vgpu_log(VGPU_LOG_ERROR, "vGPU %s: GPU context lost (%s); engine exits",
                                 e->uuid, ptx_strerror(lost_code(e)));
                        return ENGINE_EXIT_LOST;
                }
        }
        return 0;
}

static void usage(FILE *f)
{
        fputs("usage: vgpu-engine --backend sim --uuid UUID --type NAME --gpu-index N\n"
              "                   --device-address A --fb-size BYTES --fb-offset BYTES\n"
              "                   --control PATH --guest-socket PATH --model MODEL\n"
              "                   [--sm-count N] [--owner-uid UID] [--ready-fd FD]\n"
              "                   [--sched PATH] [--gpu-uuid GPU-...|MIG-...] [--fb-fit]\n",
              f);
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"backend", required_argument, NULL, 'b'},
                {"uuid", required_argument, NULL, 'u'},
                {"type", required_argument, NULL, 't'},
                {"gpu-index", required_argument, NULL, 'g'},
                {"device-address", required_argument, NULL, 'a'},
                {"fb-size", required_argument, NULL, 's'},
                {"fb-offset", required_argument, NULL, 'o'},
                {"control", required_argument, NULL, 'c'},
                {"ready-fd", required_argument, NULL, 'r'},
                {"guest-socket", required_argument, NULL, 'G'},
                {"model", required_argument, NULL, 'm'},
                {"sm-count", required_argument, NULL, 'n'},
                {"owner-uid", required_argument, NULL, 'O'},
                {"sched", required_argument, NULL, 'S'},
                {"gpu-uuid", required_argument, NULL, 'U'},
                {"fb-fit", no_argument, NULL, 'F'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        struct engine e = {.listen_fd = -1, .sig_fd = -1, .guest_fd = -1};
        const char *model = NULL, *sched = NULL;
        struct backend_fb_req req = {0};
        uint64_t gpu = 0, ready_fd = UINT64_MAX;
        const char *backend = "sim";
        sigset_t mask;
        int c, r, idx = 0;

        vgpu_log_init("vgpu-engine");
        if (argc > 1 && strcmp(argv[1], "--worker") == 0)
                return worker_main(argc, argv);
        for (int i = 0; i < ENGINE_MAX_CLIENTS; i++)
                e.clients[i] = (struct engine_client){.fd = -1, .passed = -1};
        for (int i = 0; i < ENGINE_MAX_GUESTS; i++)
                e.guests[i] = (struct engine_guest){.fd = -1, .gsock = -1, .ctl = -1};
        while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
                r = 0;
                switch (c) {
                case 'b':
                        backend = optarg;
                        break;
                case 'u':
                        e.uuid = optarg;
                        break;
                case 't':
                        e.type = optarg;
                        break;
                case 'g':
                        r = worker_parse_u64(optarg, &gpu);
                        break;
                case 'a':
                        r = worker_parse_u64(optarg, &req.device_address);
                        break;
                case 's':
                        r = worker_parse_u64(optarg, &req.size);
                        break;
                case 'o':
                        r = worker_parse_u64(optarg, &req.phys_offset);
                        break;
                case 'c':
                        e.control = optarg;
                        break;
                case 'r':
                        r = worker_parse_u64(optarg, &ready_fd);
                        break;
                case 'G':
                        e.guest_path = optarg;
                        break;
                case 'm':
                        model = optarg;
                        break;
                case 'n':
                        r = worker_parse_u64(optarg, &e.sm_count);
                        break;
                case 'S':
                        sched = optarg;
                        break;
                case 'U':
                        e.gpu_uuid = optarg[0] ? optarg : NULL;
                        break;
                case 'F':
                        req.fit = true;
                        break;
                case 'O':
                        r = worker_parse_u64(optarg, &e.owner_uid);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "--%s: not a number: '%s'", longopts[idx].name,
                                 optarg);
                        return 2;
                }
        }
        if (!e.uuid || !e.type || !e.control || !e.guest_path || !model || !req.size ||
            gpu > UINT32_MAX) {
                usage(stderr);
                return 2;
        }
        e.model = catalog_find_model(model);
        if (!e.model) {
                vgpu_log(VGPU_LOG_ERROR, "unknown GPU model '%s'", model);
                return 2;
        }
        if (!e.sm_count)
                e.sm_count = e.model->sm_count;
        e.ops = backend_find(backend);
        if (!e.ops) {
                vgpu_log(VGPU_LOG_ERROR, "unknown backend '%s' (known: sim, cuda)", backend);
                return 2;
        }
        e.gpu_index = (uint32_t)gpu;
        e.dev.ops = e.ops;
        {
                struct backend_dev_req dreq = {
                        .gpu_index = e.gpu_index, .gpu_uuid = e.gpu_uuid, .sim_workers = 2};
                char why[256] = "";

                if (getenv("VGPU_SIM_WORKERS"))
                        dreq.sim_workers = (unsigned)atoi(getenv("VGPU_SIM_WORKERS"));
                r = e.ops->dev_open(&dreq, &e.dev.bdev, why, sizeof(why));
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "vGPU %s: %s GPU %u: %s", e.uuid, e.ops->name,
                                 e.gpu_index, why[0] ? why : strerror(-r));
                        return 1;
                }
        }
        req.vgpu_uuid = e.uuid;
        req.gpu_index = e.gpu_index;
        r = e.ops->fb_reserve(e.dev.bdev, &req, &e.dev.fb);
        /* what it took (less than asked when fitted), the size from now on */
        req.fit = false;
        if (r == 0)
                req.size = e.dev.fb.size;
        e.fb_req = req;
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR,
                         "vGPU %s: cannot reserve %" PRIu64 " bytes at 0x%" PRIx64 ": %s", e.uuid,
                         req.size, req.device_address,
                         r == -ENOMEM ? "not enough free memory on the GPU" : strerror(-r));
                e.ops->dev_close(e.dev.bdev);
                return 1;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        e.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
        e.listen_fd = listen_control(e.control);
        e.guest_fd = listen_control(e.guest_path);
        if (e.listen_fd < 0 || e.guest_fd < 0 || e.sig_fd < 0) {
                vgpu_log(VGPU_LOG_ERROR, "vGPU %s: sockets %s, %s: %s", e.uuid, e.control,
                         e.guest_path,
                         strerror(e.listen_fd < 0  ? -e.listen_fd
                                  : e.guest_fd < 0 ? -e.guest_fd
                                                   : errno));
                e.ops->fb_release(e.dev.bdev, &e.dev.fb);
                e.ops->dev_close(e.dev.bdev);
                return 1;
        }
        /* Any user may connect; the engine admits only the vGPU's owner (and root). */
        chmod(e.guest_path, 0666);
        fbmem_init(&e.dev.mem, e.dev.fb.device_address, e.dev.fb.size);
        e.dev.sm_count = (uint32_t)e.sm_count;
        e.sched_path = sched;
        if (sched) {
                r = vdev_sched_map(&e.dev, sched);
                if (r < 0)
                        vgpu_log(VGPU_LOG_WARN, "vGPU %s: scheduler page %s: %s; running ungated",
                                 e.uuid, sched, strerror(-r));
        }
        /*
         * On a GPU a kernel fault ends every context of its process, so each guest runs in a
         * worker process of its own there; the sim confines faults itself and runs guests on
         * threads. VGPU_ENGINE_WORKERS=1/0 chooses either way.
         */
        e.isolate = strcmp(e.ops->name, "cuda") == 0;
        if (getenv("VGPU_ENGINE_WORKERS"))
                e.isolate = strcmp(getenv("VGPU_ENGINE_WORKERS"), "1") == 0;
        if (e.isolate) {
                ssize_t n = readlink("/proc/self/exe", e.self, sizeof(e.self) - 1);

                r = n > 0 ? e.ops->fb_export(e.dev.bdev, &e.dev.fb, e.fb_fds, WORKER_MAX_FB_FDS,
                                             &e.n_fb_fds)
                          : -errno;
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR,
                                 "vGPU %s: cannot share the framebuffer with "
                                 "workers: %s",
                                 e.uuid, strerror(-r));
                        e.ops->fb_release(e.dev.bdev, &e.dev.fb);
                        e.ops->dev_close(e.dev.bdev);
                        return 1;
                }
                e.self[n] = '\0';
        }
        if (ready_fd <= INT32_MAX) {
                char line[64];
                int len = snprintf(line, sizeof(line), "READY %d\n", (int)getpid());

                if (write((int)ready_fd, line, (size_t)len) != len)
                        vgpu_log(VGPU_LOG_WARN, "ready fd: %s", strerror(errno));
                close((int)ready_fd);
        }
        vgpu_log(VGPU_LOG_INFO, "vGPU %s (%s) holds %" PRIu64 " bytes at 0x%" PRIx64, e.uuid,
                 e.type, e.dev.fb.size, e.dev.fb.device_address);
        r = serve(&e);
        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                if (e.guests[i].worker > 0) {
                        kill(e.guests[i].worker, SIGTERM);
                        worker_gone(&e, &e.guests[i]);
                } else if (e.guests[i].s) {
                        guest_gone(&e, i);
                }
                free(e.guests[i].wait.p);
        }
        for (size_t k = 0; k < e.n_fb_fds; k++)
                close(e.fb_fds[k]);
        fbmem_destroy(&e.dev.mem);
        e.ops->fb_release(e.dev.bdev, &e.dev.fb);
        e.ops->dev_close(e.dev.bdev);
        unlink(e.control);
        unlink(e.guest_path);
        return r == ENGINE_EXIT_LOST ? ENGINE_EXIT_LOST : r < 0 ? 1 : 0;
}
