// SPDX-License-Identifier: Apache-2.0
// An engine's worker processes (worker.h): the start of one, with the guest's fd, its sockets to
// the engine and the framebuffer's memory at fixed fds (and a remote guest's connection state as
// the first message on its control socket), and the worker's own main.
#include "engine/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "engine/guest_sock.h"
#include "engine/link.h"
#include "engine/session.h"

/* ---- the engine's side ---------------------------------------------------------------------- */

int worker_send(int sock, const void *msg, size_t len, const int *fds, size_t n)
{
        char cbuf[CMSG_SPACE(sizeof(int) * WORKER_MAX_FB_FDS)] = {0};
        struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        if (n > WORKER_MAX_FB_FDS)
                return -E2BIG;
        if (n && fds) {
                struct cmsghdr *cm;

                mh.msg_control = cbuf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
        }
        return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -EIO;
}

int worker_spawn(const struct worker_spec *w, int guest_fd, const struct mw_conn *remote,
                 pid_t *ret_pid, int *ret_alloc, int *ret_ctl)
{
        char gpu[16], addr[24], size[24], sid[16], gpid[16], guid[16], nfds[16], sms[16];
        int sp[2], cp[2], r;
        pid_t pid;

        if (w->n_fb_fds > WORKER_MAX_FB_FDS)
                return -E2BIG;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cp) < 0) {
                r = -errno;
                goto err_sp;
        }
        if (remote) {
                /* queued before the worker exists: it reads this first */
                struct worker_conn m = {.op = WORKER_CONN,
                                        .server = mw_conn_is_server(remote),
                                        .tx_seq = remote->tx_seq,
                                        .rx_seq = remote->rx_seq};

                memcpy(m.key, remote->key, sizeof(m.key));
                r = worker_send(cp[0], &m, sizeof(m), NULL, 0);
                OPENSSL_cleanse(&m, sizeof(m));
                if (r < 0)
                        goto err_cp;
        }
        snprintf(gpu, sizeof(gpu), "%u", w->gpu_index);
        snprintf(addr, sizeof(addr), "%" PRIu64, w->device_address);
        snprintf(size, sizeof(size), "%" PRIu64, w->fb_size);
        snprintf(sid, sizeof(sid), "%u", w->session);
        snprintf(gpid, sizeof(gpid), "%d", (int)w->guest_pid);
        snprintf(guid, sizeof(guid), "%d", (int)w->guest_uid);
        snprintf(nfds, sizeof(nfds), "%zu", w->n_fb_fds);
        snprintf(sms, sizeof(sms), "%u", w->sm_count);
        char *const argv[] = {"vgpu-engine",
                              "--worker",
                              "--backend",
                              (char *)w->backend,
                              "--uuid",
                              (char *)w->uuid,
                              "--gpu-index",
                              gpu,
                              "--device-address",
                              addr,
                              "--fb-size",
                              size,
                              "--session",
                              sid,
                              "--guest-pid",
                              gpid,
                              "--guest-uid",
                              guid,
                              "--fb-fds",
                              nfds,
                              "--hello",
                              (char *)w->hello,
                              "--sm-count",
                              sms,
                              "--sched",
                              (char *)(w->sched ? w->sched : ""),
                              "--gpu-uuid",
                              (char *)(w->gpu_uuid ? w->gpu_uuid : ""),
                              "--remote",
                              remote ? "1" : "0",
                              NULL};

        pid = fork();
        if (pid == 0) {
                /* Only async-signal-safe calls from here to exec: fds above the targets first. */
                int hg = fcntl(guest_fd, F_DUPFD_CLOEXEC, 1024),
                    hs = fcntl(sp[1], F_DUPFD_CLOEXEC, 1024),
                    hc = fcntl(cp[1], F_DUPFD_CLOEXEC, 1024);
                int hf[WORKER_MAX_FB_FDS];

                /* A worker does not outlive its engine (it would hold the framebuffer). */
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() == 1)
                        _exit(127);
                for (size_t k = 0; k < w->n_fb_fds; k++)
                        hf[k] = fcntl(w->fb_fds[k], F_DUPFD_CLOEXEC, 1024);
                if (hg < 0 || hs < 0 || hc < 0 || dup2(hg, WORKER_GUEST_FD) < 0 ||
                    dup2(hs, WORKER_ALLOC_FD) < 0 || dup2(hc, WORKER_CTL_FD) < 0)
                        _exit(127);
                for (size_t k = 0; k < w->n_fb_fds; k++) {
                        if (hf[k] < 0 || dup2(hf[k], WORKER_FB_FD + (int)k) < 0)
                                _exit(127);
                }
                execv(w->self, argv);
                _exit(127);
        }
        if (pid < 0) {
                r = -errno;
                goto err_cp;
        }
        close(sp[1]);
        close(cp[1]);
        *ret_pid = pid;
        *ret_alloc = sp[0];
        *ret_ctl = cp[0];
        return 0;

err_cp:
        close(cp[0]);
        close(cp[1]);
err_sp:
        close(sp[0]);
        close(sp[1]);
        return r;
}

/* ---- the worker ----------------------------------------------------------------------------- */

/*
 * One of the engine's requests: one message, one answer. -1 when the engine is gone (the worker
 * ends).
 */
static int worker_ctl(struct vgpu_dev *dev, struct session *s, struct backend_fb_req *req)
{
        char cbuf[CMSG_SPACE(sizeof(int) * WORKER_MAX_FB_FDS)];
        struct worker_msg m;
        struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf,
                            .msg_controllen = sizeof(cbuf)};
        int fds[WORKER_MAX_FB_FDS];
        size_t n = 0;
        ssize_t got = recvmsg(WORKER_CTL_FD, &mh, MSG_CMSG_CLOEXEC);

        if (got < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        for (struct cmsghdr *cm = got > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm;
             cm = CMSG_NXTHDR(&mh, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                        for (size_t j = 0; j < k; j++) {
                                int fd;

                                memcpy(&fd, CMSG_DATA(cm) + j * sizeof(int), sizeof(int));
                                if (n < WORKER_MAX_FB_FDS)
                                        fds[n++] = fd;
                                else
                                        close(fd);
                        }
                }
        }
        if (got != (ssize_t)sizeof(m)) {
                for (size_t k = 0; k < n; k++)
                        close(fds[k]);
                return -1;
        }
        m.r = 0;
        switch (m.op) {
        case WORKER_PAUSE:
                session_pause(s);
                break;
        case WORKER_UNPAUSE:
                session_unpause(s);
                break;
        case WORKER_RELEASE:
                if (dev->fb.size)
                        dev->ops->fb_release(dev->bdev, &dev->fb);
                dev->fb.size = 0;
                break;
        case WORKER_TRACK:
                if (m.a) {
                        struct fbmem_block *b;
                        long k = fbmem_take_dirty(&dev->mem, false, &b); /* from now on */

                        if (k >= 0)
                                free(b);
                }
                __atomic_store_n(&dev->track_writes, m.a ? 1 : 0, __ATOMIC_RELEASE);
                break;
        case WORKER_DIRTY: {
                struct fbmem_block *b;
                long k = fbmem_take_dirty(&dev->mem, false, &b);
                uint64_t *out;

                for (size_t j = 0; j < n; j++)
                        close(fds[j]);
                if (k < 0 || k > WORKER_DIRTY_MAX) {
                        m.r = k < 0 ? (int32_t)k : -E2BIG;
                        if (k >= 0)
                                free(b);
                        return send(WORKER_CTL_FD, &m, sizeof(m), MSG_NOSIGNAL) ==
                                               (ssize_t)sizeof(m)
                                       ? 0
                                       : -1;
                }
                out = malloc(sizeof(m) + (size_t)k * sizeof(uint64_t));
                if (!out) {
                        free(b);
                        m.r = -ENOMEM;
                        return send(WORKER_CTL_FD, &m, sizeof(m), MSG_NOSIGNAL) ==
                                               (ssize_t)sizeof(m)
                                       ? 0
                                       : -1;
                }
                m.r = (int32_t)k;
                memcpy(out, &m, sizeof(m));
                for (long j = 0; j < k; j++)
                        memcpy((uint8_t *)out + sizeof(m) + (size_t)j * sizeof(uint64_t),
                               &b[j].base, sizeof(uint64_t));
                free(b);
                got = send(WORKER_CTL_FD, out, sizeof(m) + (size_t)k * sizeof(uint64_t),
                           MSG_NOSIGNAL);
                free(out);
                return got > 0 ? 0 : -1;
        }
        case WORKER_MAP:
                if (dev->fb.size || m.a > UINT32_MAX) {
                        m.r = -EINVAL;
                        break;
                }
                req->gpu_index = (uint32_t)m.a;
                m.r = dev->ops->fb_import(dev->bdev, req, fds, n, &dev->fb);
                break;
        default:
                m.r = -EPROTO;
        }
        for (size_t k = 0; k < n; k++)
                close(fds[k]);
        return send(WORKER_CTL_FD, &m, sizeof(m), MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? 0 : -1;
}

static int arg_u64(const char *s, uint64_t *ret)
{
        char *end;
        unsigned long long v;

        if (!s || !*s || *s == '-')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

/*
 * A remote guest's connection: its fd is WORKER_GUEST_FD, the rest the engine queued on the
 * control socket before it started this worker. 0 or a negative errno.
 */
static int take_conn(struct mw_conn *c)
{
        struct worker_conn m;
        ssize_t got = recv(WORKER_CTL_FD, &m, sizeof(m), 0);
        int r = -EPROTO;

        if (got == (ssize_t)sizeof(m) && m.op == WORKER_CONN)
                r = mw_conn_restore(c, WORKER_GUEST_FD, m.key, m.tx_seq, m.rx_seq, m.server != 0);
        OPENSSL_cleanse(&m, sizeof(m));
        return r;
}

/* To the guest: msg (stolen), with its channel for a local guest (a remote one keeps its own). */
static int tell_guest(struct mw_conn *remote, json_t *msg, int chan_fd)
{
        char err[256];
        int r;

        if (!remote)
                return guest_sock_send(WORKER_GUEST_FD, msg, chan_fd);
        r = msg ? mw_send_json(remote, msg, err, sizeof(err)) : -ENOMEM;
        json_decref(msg);
        return r;
}

int worker_main(int argc, char **argv)
{
        const char *backend = NULL, *uuid = NULL, *hello = NULL;
        uint64_t gpu = 0, addr = 0, size = 0, sid = 0, gpid = 0, guid = 0, nfds = 0, sms = 0;
        uint64_t remote = 0;
        const char *sched = NULL;
        struct backend_fb_req req = {0};
        struct backend_dev_req dreq = {.sim_workers = 2};
        struct vgpu_dev dev = {.remote_alloc = true, .alloc_fd = WORKER_ALLOC_FD};
        struct guest_sock gs = {0};
        struct session *s = NULL;
        struct mw_conn conn = {.fd = -1};
        struct link *link = NULL;
        int fds[WORKER_MAX_FB_FDS], chan_fd, sig_fd, r = 0;
        int notify[2] = {-1, -1};
        char why[256] = "";
        sigset_t mask;

        for (int i = 2; i + 1 < argc && r == 0; i += 2) {
                const char *k = argv[i], *v = argv[i + 1];

                if (strcmp(k, "--backend") == 0)
                        backend = v;
                else if (strcmp(k, "--uuid") == 0)
                        uuid = v;
                else if (strcmp(k, "--hello") == 0)
                        hello = v;
                else if (strcmp(k, "--gpu-index") == 0)
                        r = arg_u64(v, &gpu);
                else if (strcmp(k, "--device-address") == 0)
                        r = arg_u64(v, &addr);
                else if (strcmp(k, "--fb-size") == 0)
                        r = arg_u64(v, &size);
                else if (strcmp(k, "--session") == 0)
                        r = arg_u64(v, &sid);
                else if (strcmp(k, "--guest-pid") == 0)
                        r = arg_u64(v, &gpid);
                else if (strcmp(k, "--guest-uid") == 0)
                        r = arg_u64(v, &guid);
                else if (strcmp(k, "--fb-fds") == 0)
                        r = arg_u64(v, &nfds);
                else if (strcmp(k, "--sm-count") == 0)
                        r = arg_u64(v, &sms);
                else if (strcmp(k, "--remote") == 0)
                        r = arg_u64(v, &remote);
                else if (strcmp(k, "--sched") == 0)
                        sched = v;
                else if (strcmp(k, "--gpu-uuid") == 0)
                        dreq.gpu_uuid = v;
                else
                        r = -EINVAL;
        }
        dev.ops = backend_find(backend);
        if (r < 0 || !dev.ops || !uuid || !hello || !size || nfds > WORKER_MAX_FB_FDS ||
            gpu > UINT32_MAX || sid > UINT32_MAX || remote > 1) {
                vgpu_log(VGPU_LOG_ERROR, "--worker: bad arguments");
                return 2;
        }
        if (remote) {
                r = take_conn(&conn);
                if (r < 0) {
                        /* the engine closes the connection once this worker is gone */
                        vgpu_log(VGPU_LOG_ERROR, "vGPU %s: worker: no connection state: %s", uuid,
                                 strerror(-r));
                        return 2;
                }
        }
        for (uint64_t k = 0; k < nfds; k++)
                fds[k] = WORKER_FB_FD + (int)k;
        dreq.gpu_index = (uint32_t)gpu;
        if (getenv("VGPU_SIM_WORKERS"))
                dreq.sim_workers = (unsigned)atoi(getenv("VGPU_SIM_WORKERS"));
        req = (struct backend_fb_req){.vgpu_uuid = uuid,
                                      .gpu_index = (uint32_t)gpu,
                                      .device_address = addr,
                                      .size = size};
        r = dev.ops->dev_open(&dreq, &dev.bdev, why, sizeof(why));
        if (r == 0) {
                r = dev.ops->fb_import(dev.bdev, &req, fds, (size_t)nfds, &dev.fb);
                if (r < 0)
                        dev.ops->dev_close(dev.bdev);
        }
        for (uint64_t k = 0; k < nfds; k++)
                close(fds[k]);
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR, "vGPU %s: worker: %s", uuid, why[0] ? why : strerror(-r));
                tell_guest(remote ? &conn : NULL,
                           json_pack("{s:b, s:s}", "ok", 0, "error", "the engine's worker failed"),
                           -1);
                mw_close(&conn);
                return 1;
        }
        fbmem_init(&dev.mem, addr, size);
        pthread_mutex_init(&dev.alloc_lock, NULL);
        dev.sm_count = (uint32_t)sms;
        if (sched && *sched) {
                r = vdev_sched_map(&dev, sched);
                if (r < 0)
                        vgpu_log(VGPU_LOG_WARN, "vGPU %s: worker: scheduler page %s: %s; ungated",
                                 uuid, sched, strerror(-r));
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
        r = session_new(&dev, (uint32_t)sid, (pid_t)gpid, (uid_t)guid, &s, &chan_fd);
        if (r == 0 && tell_guest(remote ? &conn : NULL, json_loads(hello, 0, NULL), chan_fd) < 0)
                r = -EPIPE;
        else if (r < 0)
                tell_guest(remote ? &conn : NULL,
                           json_pack("{s:b, s:s}", "ok", 0, "error", strerror(-r)), -1);
        /* a remote guest: a link serves its channel over the connection (docs/remote.md) */
        if (r == 0 && remote && pipe2(notify, O_CLOEXEC | O_NONBLOCK) < 0)
                r = -errno;
        if (r == 0 && remote) {
                r = link_start(s, &conn, notify[1], &link);
                conn = (struct mw_conn){.fd = -1}; /* the link's now */
        }
        if (r < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: worker: %s guest not served: %s", uuid,
                         remote ? "remote" : "local", strerror(-r));
        while (r == 0) {
                /* the guest's socket, or the link's word that it ended */
                struct pollfd pfd[3] = {
                        {.fd = remote ? notify[0] : WORKER_GUEST_FD, .events = POLLIN},
                        {.fd = sig_fd, .events = POLLIN},
                        {.fd = WORKER_CTL_FD, .events = POLLIN}};

                if (poll(pfd, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[1].revents ||
                    (pfd[0].revents &&
                     (remote || guest_sock_read(&gs, WORKER_GUEST_FD, s, uuid) < 0)))
                        break;
                if (pfd[2].revents && worker_ctl(&dev, s, &req) < 0)
                        break;
        }
        link_free(link);
        session_free(s);
        mw_close(&conn);
        for (int k = 0; k < 2; k++) {
                if (notify[k] >= 0)
                        close(notify[k]);
        }
        guest_sock_clear(&gs);
        fbmem_destroy(&dev.mem);
        dev.ops->fb_release(dev.bdev, &dev.fb);
        dev.ops->dev_close(dev.bdev);
        return r < 0 ? 1 : 0;
}
