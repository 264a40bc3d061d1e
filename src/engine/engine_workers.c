// SPDX-License-Identifier: Apache-2.0
// The engine's worker processes (docs/cuda.md): one per guest, each running its guest's session
// on the framebuffer's memory, exported to it. Starting and reaping them, serving their
// allocation requests, and asking all of them at once (pause, map, export) for a suspend or move.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <jansson.h>

#include "common/log.h"
#include "engine/vgpu_engine.h"

/*
 * Ask every worker to do op (with fds for WORKER_MAP) and wait for all their answers, serving
 * their allocation requests meanwhile (a worker finishing its guest's queued commands before it
 * parks may allocate). A worker that went away meanwhile has nothing left to do. 0, or the
 * first error a worker answered, or -ETIMEDOUT. res (if not NULL): each guest slot's own result
 * (0 for a slot with no worker, or one that went away; -ETIMEDOUT for one that did not answer).
 */
static int workers_ask(struct engine *e, struct worker_msg *m, size_t len, const int *fds, size_t n,
                       int *res)
{
        bool pending[ENGINE_MAX_GUESTS] = {false};
        uint64_t deadline = chan_now_ns() + (uint64_t)WORKER_WAIT_MS * 1000000;
        int r = 0, left = 0;

        m->seq = worker_next_seq();
        for (int i = 0; res && i < ENGINE_MAX_GUESTS; i++)
                res[i] = 0;
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

                if ((int64_t)(deadline - chan_now_ns()) <= 0) {
                        for (int i = 0; res && i < ENGINE_MAX_GUESTS; i++)
                                res[i] = pending[i] ? -ETIMEDOUT : res[i];
                        return -ETIMEDOUT;
                }
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
                                if (engine_worker_request(e, &e->guests[i]) == 0)
                                        continue;
                                got = 0; /* its allocation socket hung up: it is gone */
                        } else {
                                got = recv(e->guests[i].ctl, &ans, sizeof(ans), MSG_DONTWAIT);
                                if (got < 0 && (errno == EAGAIN || errno == EINTR))
                                        continue;
                                if (got == (ssize_t)sizeof(ans) && ans.seq != m->seq)
                                        continue; /* an earlier request's answer, come late */
                        }
                        pending[i] = false;
                        left--;
                        if (got == (ssize_t)sizeof(ans) && ans.r < 0) {
                                r = r ? r : ans.r;
                                if (res)
                                        res[i] = ans.r;
                        }
                }
        }
        return r;
}

int engine_workers_do(struct engine *e, uint32_t op, uint64_t a, const int *fds, size_t n)
{
        struct worker_msg m = {.op = op, .a = a};

        return workers_ask(e, &m, sizeof(m), fds, n, NULL);
}

/*
 * The sessions of an engine with workers, as bytes (the workers parked): each worker's
 * (worker_export; each such slot marked exported), and those of sessions whose guests have not
 * re-attached since they moved or were restored here (their tokens unchanged). A session whose
 * modules' variables the backend placed (-ENOTSUP) is left out when for_suspend (it stays in its
 * worker: a resume by this engine finds it; a restore elsewhere does not), and fails a move.
 * 0, or a negative errno with err set and nothing kept.
 */
int engine_workers_export(struct engine *e, uint8_t **blob, size_t *blen, size_t *ret_n,
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

/*
 * The framebuffer is new (resume, move): export it for the workers, have them map it (the
 * old mapping, if any, goes first) and go on. A worker that cannot has its guest cut off.
 */
static void workers_map(struct engine *e)
{
        struct worker_msg m = {.op = WORKER_MAP, .a = e->gpu_index};
        int res[ENGINE_MAX_GUESTS] = {0};
        size_t n = 0;
        int r;

        for (size_t k = 0; k < e->n_fb_fds; k++)
                close(e->fb_fds[k]);
        e->n_fb_fds = 0;
        r = e->ops->fb_export(e->dev.bdev, &e->dev.fb, e->fb_fds, WORKER_MAX_FB_FDS, &n);
        if (r == 0) {
                e->n_fb_fds = n;
                engine_workers_do(e, WORKER_RELEASE, 0, NULL, 0);
                r = workers_ask(e, &m, sizeof(m), e->fb_fds, n, res);
        }
        for (int i = 0; r < 0 && i < ENGINE_MAX_GUESTS; i++) {
                struct engine_guest *g = &e->guests[i];

                /* no framebuffer for anyone, or none for this worker: its guest is cut off */
                if (g->worker <= 0 || (res[i] == 0 && e->n_fb_fds))
                        continue;
                vgpu_log(VGPU_LOG_ERROR,
                         "vGPU %s: the worker of guest %d cannot map the framebuffer (%s): its "
                         "guest is cut off",
                         e->uuid, (int)g->guest_pid, strerror(-(res[i] ? res[i] : r)));
                kill(g->worker, SIGKILL);
        }
}

void engine_workers_remap(struct engine *e)
{
        workers_map(e);
        engine_workers_do(e, WORKER_UNPAUSE, 0, NULL, 0);
}

/* ---- a move's peers: the workers (suspend.h, struct vdev_peers) ---- */

static int peers_pause(void *ctx)
{
        return engine_workers_do(((struct engine_peers *)ctx)->e, WORKER_PAUSE, 0, NULL, 0);
}

static void peers_unpause(void *ctx)
{
        engine_workers_do(((struct engine_peers *)ctx)->e, WORKER_UNPAUSE, 0, NULL, 0);
}

static void peers_track(void *ctx, bool on)
{
        engine_workers_do(((struct engine_peers *)ctx)->e, WORKER_TRACK, on, NULL, 0);
}

/* What each worker wrote since last asked goes into the allocator's marks. */
static void peers_collect(void *ctx)
{
        struct engine *e = ((struct engine_peers *)ctx)->e;
        size_t cap = sizeof(struct worker_msg) + WORKER_DIRTY_MAX * sizeof(uint64_t);
        uint8_t *buf = malloc(cap);

        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                struct engine_guest *g = &e->guests[i];
                struct worker_msg m = {.op = WORKER_DIRTY, .seq = worker_next_seq()};
                uint64_t seq = m.seq, deadline = chan_now_ns() + 5000000000ull;
                ssize_t got = -1;

                if (g->worker <= 0 || g->ctl < 0)
                        continue;
                if (buf && send(g->ctl, &m, sizeof(m), MSG_NOSIGNAL) == (ssize_t)sizeof(m)) {
                        /* its answer, not a late one to an earlier request */
                        for (;;) {
                                struct pollfd p = {.fd = g->ctl, .events = POLLIN};
                                int64_t left = (int64_t)(deadline - chan_now_ns());
                                struct worker_msg h;

                                got = -1;
                                if (left <= 0 || poll(&p, 1, (int)(left / 1000000) + 1) <= 0)
                                        break;
                                got = recv(g->ctl, buf, cap, MSG_DONTWAIT);
                                if (got < (ssize_t)sizeof(h))
                                        break;
                                memcpy(&h, buf, sizeof(h));
                                if (h.seq == seq)
                                        break;
                        }
                }
                memcpy(&m, buf && got >= (ssize_t)sizeof(m) ? buf : (uint8_t *)&m, sizeof(m));
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
        struct engine_peers *mp = ctx;

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
        return engine_workers_export(((struct engine_peers *)ctx)->e, blob, blen, ret_n, false, err,
                                     len);
}

/* Each worker's guest learns where to re-attach: "SOCKET\0HOST:PORT\0" after the message. */
static void peers_moved(void *ctx, const char *to, const char *tcp)
{
        struct engine *e = ((struct engine_peers *)ctx)->e;
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
        r = workers_ask(e, (struct worker_msg *)(void *)buf, sizeof(m) + lt + lc, NULL, 0, NULL);
        if (r < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: a worker did not tell its guest it moved: %s",
                         e->uuid, strerror(-r));
}

void engine_peers_init(struct engine_peers *ret, struct engine *e, uint32_t gpu, const char *tcp)
{
        *ret = (struct engine_peers){.e = e, .gpu = gpu};
        ret->vp = (struct vdev_peers){.ctx = ret,
                                      .pause = peers_pause,
                                      .unpause = peers_unpause,
                                      .track = peers_track,
                                      .collect = peers_collect,
                                      .switched = peers_switched};
        ret->tp = (struct transfer_peers){
                .vp = &ret->vp, .export = peers_export, .moved = peers_moved, .tcp = tcp};
}

/*
 * Start the worker process that runs a guest's session (e->isolate, worker.h): gfd is the guest's
 * socket, or with remote, a remote guest's connection, which the worker takes over (the engine
 * keeps gfd only to see its guest hang up). The worker answers the guest's hello itself. 0 or
 * -errno.
 */
int engine_worker_start(struct engine *e, struct engine_guest *g, int gfd, const struct ucred *cred,
                        const struct mw_conn *remote, const struct transfer_blob *import)
{
        json_t *hello = engine_hello_json(e);
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
void engine_worker_gone(struct engine *e, struct engine_guest *g)
{
        char who[32];
        int status = 0;

        close(g->fd);
        if (g->gsock >= 0)
                close(g->gsock);
        if (g->ctl >= 0)
                close(g->ctl);
        waitpid(g->worker, &status, 0);
        /* what it counted in the scheduler's page (a worker killed mid-launch left it raised) */
        vdev_sched_forget(&e->dev, g->worker);
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
int engine_worker_request(struct engine *e, struct engine_guest *g)
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
