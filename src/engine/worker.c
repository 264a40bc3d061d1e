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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

#define BLOB_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static int write_all(int fd, const void *p, size_t len)
{
        for (size_t off = 0; off < len;) {
                ssize_t k = write(fd, (const uint8_t *)p + off, len - off);

                if (k < 0 && errno != EINTR)
                        return -errno;
                if (k > 0)
                        off += (size_t)k;
        }
        return 0;
}

/* A sealed memfd that holds len bytes at p, then more bytes at q: its fd, or -errno. */
static int blob_memfd(const void *p, size_t len, const void *q, size_t more)
{
        int fd = memfd_create("vgpu-session", MFD_CLOEXEC | MFD_ALLOW_SEALING), r;

        if (fd < 0)
                return -errno;
        r = write_all(fd, p, len);
        if (r == 0 && more)
                r = write_all(fd, q, more);
        if (r == 0 && fcntl(fd, F_ADD_SEALS, BLOB_SEALS | F_SEAL_SEAL) < 0)
                r = -errno;
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

/*
 * The bytes of a memfd from the other side: sealed (nobody changes them while, or after, they
 * are read), exactly want bytes, at most WORKER_BLOB_MAX. 0 and *ret (malloc'd), or -EPROTO,
 * -ENOMEM, -EIO.
 */
static int blob_take(int fd, uint64_t want, uint64_t max, uint8_t **ret)
{
        int seals = fcntl(fd, F_GET_SEALS);
        struct stat st;
        uint8_t *p;

        if (seals < 0 || (seals & BLOB_SEALS) != BLOB_SEALS || fstat(fd, &st) < 0 ||
            !S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size != want || want > max)
                return -EPROTO;
        p = malloc((size_t)want);
        if (!p)
                return -ENOMEM;
        for (size_t off = 0; off < want;) {
                ssize_t k = pread(fd, p + off, (size_t)want - off, (off_t)off);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        free(p);
                        return -EIO;
                }
                off += (size_t)k;
        }
        *ret = p;
        return 0;
}

/*
 * One message of exactly sizeof(*m) bytes on sock, with at most one fd (*ret_fd, or -1): 0,
 * -EAGAIN (nothing yet, with MSG_DONTWAIT), -EPROTO (another size, or more fds) or -EIO.
 */
static int recv_msg_fd(int sock, struct worker_msg *m, int flags, int *ret_fd)
{
        char cbuf[CMSG_SPACE(sizeof(int) * 4)];
        struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf,
                            .msg_controllen = sizeof(cbuf)};
        ssize_t got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
        int fd = -1, r = 0;

        if (got < 0)
                return errno == EAGAIN || errno == EINTR ? -EAGAIN : -EIO;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                for (size_t j = 0; j < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); j++) {
                        int k;

                        memcpy(&k, CMSG_DATA(cm) + j * sizeof(int), sizeof(int));
                        if (fd < 0) {
                                fd = k;
                        } else {
                                close(k);
                                r = -EPROTO;
                        }
                }
        }
        if (got == 0)
                r = -EIO;
        else if (got != (ssize_t)sizeof(*m) || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)))
                r = r ? r : -EPROTO;
        if (r < 0 && fd >= 0) {
                close(fd);
                fd = -1;
        }
        *ret_fd = fd;
        return r;
}

uint64_t worker_next_seq(void)
{
        static uint64_t seq;

        return __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
}

/*
 * Wait until deadline (chan_now_ns) for ctl to have a message: 0, -ETIMEDOUT, or -errno.
 */
static int wait_readable(int ctl, uint64_t deadline)
{
        struct pollfd pfd = {.fd = ctl, .events = POLLIN};

        for (;;) {
                int64_t left = (int64_t)(deadline - chan_now_ns());
                int r;

                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&pfd, 1, (int)(left / 1000000) + 1);
                if (r > 0)
                        return 0;
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
}

int worker_call(int ctl, uint32_t op, uint64_t a, int timeout_ms)
{
        struct worker_msg m = {.op = op, .a = a, .seq = worker_next_seq()};
        uint64_t deadline = chan_now_ns() + (uint64_t)timeout_ms * 1000000;

        if (worker_send(ctl, &m, sizeof(m), NULL, 0) < 0)
                return -EIO;
        for (;;) {
                struct worker_msg ans = {0};
                int r = wait_readable(ctl, deadline);
                ssize_t got;

                if (r < 0)
                        return r;
                got = recv(ctl, &ans, sizeof(ans), MSG_DONTWAIT);
                if (got < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (got != (ssize_t)sizeof(ans)) /* a longer one comes cut to this size */
                        return -EIO;
                if (ans.seq != m.seq)
                        continue; /* an earlier request's answer, come late */
                return ans.op != op ? -EPROTO : ans.r > 0 || ans.r < -4095 ? -EPROTO : ans.r;
        }
}

int worker_export(int ctl, int timeout_ms, uint8_t **ret, size_t *ret_len)
{
        struct worker_msg m = {.op = WORKER_EXPORT, .seq = worker_next_seq()};
        uint64_t seq = m.seq, deadline = chan_now_ns() + (uint64_t)timeout_ms * 1000000;
        uint8_t *p = NULL;
        int fd = -1, r;

        if (worker_send(ctl, &m, sizeof(m), NULL, 0) < 0)
                return -EIO;
        for (;;) {
                r = wait_readable(ctl, deadline);
                if (r < 0)
                        return r;
                m = (struct worker_msg){0};
                fd = -1;
                r = recv_msg_fd(ctl, &m, MSG_DONTWAIT, &fd);
                if (r == -EAGAIN)
                        continue;
                if (r == -EIO || m.seq == seq)
                        break;
                if (fd >= 0)
                        close(fd); /* an earlier request's answer, come late */
        }
        if (r == 0 && m.op != WORKER_EXPORT)
                r = -EPROTO;
        if (r == 0 && m.r < 0) {
                /* only an errno: a worker does not make up other codes */
                r = m.r >= -4095 ? m.r : -EPROTO;
        } else if (r == 0) {
                r = fd < 0 || m.r != 0 ? -EPROTO : blob_take(fd, m.a, WORKER_BLOB_MAX, &p);
        }
        if (fd >= 0)
                close(fd);
        if (r < 0)
                return r;
        *ret = p;
        *ret_len = (size_t)m.a;
        return 0;
}

/* The blocks of session sid in the engine's allocator m: base, size, owner each (malloc'd). */
static int import_blocks(struct fbmem *m, uint32_t sid, uint64_t **ret, size_t *ret_n)
{
        uint64_t *b;
        size_t n = 0;

        if (!m) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        pthread_rwlock_rdlock(&m->lock);
        b = malloc((m->n ? m->n : 1) * 3 * sizeof(uint64_t));
        for (size_t i = 0; b && i < m->n; i++) {
                if (m->blocks[i].owner >> 32 != sid)
                        continue;
                b[3 * n] = m->blocks[i].base;
                b[3 * n + 1] = m->blocks[i].size;
                b[3 * n + 2] = m->blocks[i].owner;
                n++;
        }
        pthread_rwlock_unlock(&m->lock);
        if (!b)
                return -ENOMEM;
        *ret = b;
        *ret_n = n;
        return 0;
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
        if (w->import) {
                /* the session's bytes, in a sealed memfd: queued too, after the connection */
                struct worker_msg m = {.op = WORKER_IMPORT, .a = w->import_len};
                uint64_t *blocks = NULL;
                size_t nb = 0;
                int bfd;

                r = import_blocks(w->import_mem, w->session, &blocks, &nb);
                bfd = r < 0 ? r
                            : blob_memfd(w->import, w->import_len, blocks,
                                         nb * 3 * sizeof(uint64_t));
                free(blocks);
                if (bfd < 0) {
                        r = bfd;
                        goto err_cp;
                }
                r = worker_send(cp[0], &m, sizeof(m), &bfd, 1);
                close(bfd);
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
                              "--import",
                              w->import ? "1" : "0",
                              "--home",
                              (char *)(w->home ? w->home : ""),
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
static int worker_ctl(struct vgpu_dev *dev, struct session *s, struct backend_fb_req *req,
                      const char *home, struct link *link)
{
        char cbuf[CMSG_SPACE(sizeof(int) * WORKER_MAX_FB_FDS)];
        struct worker_msg m;
        char more[WORKER_MOVED_MAX + 1];
        struct iovec iov[2] = {{.iov_base = &m, .iov_len = sizeof(m)},
                               {.iov_base = more, .iov_len = sizeof(more)}};
        struct msghdr mh = {.msg_iov = iov,
                            .msg_iovlen = 2,
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
        /* only WORKER_MOVED has more: its places, as it says (a) */
        if (got < (ssize_t)sizeof(m) ||
            (got > (ssize_t)sizeof(m) &&
             (m.op != WORKER_MOVED || (uint64_t)got != sizeof(m) + m.a))) {
                for (size_t k = 0; k < n; k++)
                        close(fds[k]);
                return -1;
        }
        m.r = 0;
        switch (m.op) {
        case WORKER_PAUSE:
                m.r = session_pause(s, chan_now_ns() + session_pause_limit_ns());
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
        case WORKER_EXPORT: {
                uint8_t *p = NULL;
                size_t len = 0;
                int bfd;

                for (size_t j = 0; j < n; j++)
                        close(fds[j]);
                m.r = session_export(s, &p, &len);
                bfd = m.r == 0 ? blob_memfd(p, len, NULL, 0) : -1;
                free(p);
                if (m.r == 0 && bfd < 0)
                        m.r = bfd;
                m.a = m.r == 0 ? len : 0;
                got = worker_send(WORKER_CTL_FD, &m, sizeof(m), bfd >= 0 ? &bfd : NULL,
                                  bfd >= 0 ? 1 : 0);
                if (bfd >= 0)
                        close(bfd);
                return got == 0 ? 0 : -1;
        }
        case WORKER_MOVED: {
                size_t k = (size_t)got - sizeof(m);
                const char *tcp = memchr(more, '\0', k);

                if (k < 3 || more[k - 1] != '\0' || !tcp || tcp == more) {
                        m.r = -EINVAL;
                        break;
                }
                tcp++;
                session_mark_moved(s, more);
                if (link && *tcp) {
                        uint8_t token[16];

                        session_token(s, token);
                        link_moved(link, token, tcp);
                }
                break;
        }
        case WORKER_HOME:
                if (home && *home)
                        session_note_home(s, home);
                else
                        m.r = -EINVAL;
                break;
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

int worker_parse_u64(const char *s, uint64_t *ret)
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

/*
 * A session to import (--import): its bytes, in the sealed memfd the engine queued on the control
 * socket before it started this worker. 0 and *ret (malloc'd, *ret_len), or a negative errno.
 */
static int take_import(uint8_t **ret, size_t *ret_len, size_t *ret_blocks)
{
        struct worker_msg m;
        struct stat st;
        int fd = -1, r = recv_msg_fd(WORKER_CTL_FD, &m, 0, &fd);

        if (r == 0 && (m.op != WORKER_IMPORT || fd < 0 || m.a == 0 || m.a > WORKER_BLOB_MAX ||
                       fstat(fd, &st) < 0 || (uint64_t)st.st_size < m.a ||
                       ((uint64_t)st.st_size - m.a) % (3 * sizeof(uint64_t))))
                r = -EPROTO;
        if (r == 0)
                r = blob_take(fd, (uint64_t)st.st_size, 2 * WORKER_BLOB_MAX, ret);
        if (fd >= 0)
                close(fd);
        if (r == 0) {
                *ret_len = (size_t)m.a;
                *ret_blocks = ((size_t)st.st_size - (size_t)m.a) / (3 * sizeof(uint64_t));
        }
        return r;
}

/*
 * A local guest re-attaches to its imported session (as the engine's guest_reattach): it gets
 * the session's channel, copies its old one into it and says "ready"; then the session runs.
 */
static int reattach_local(struct session *s, json_t *hello)
{
        struct timeval tv = {.tv_sec = 10};
        char line[64];
        ssize_t n;
        int r;

        if (guest_sock_send(WORKER_GUEST_FD, hello, session_fd(s)) < 0)
                return -EPIPE;
        /* the guest copies its channel (the staging area too) meanwhile: tens of MiB */
        setsockopt(WORKER_GUEST_FD, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        n = recv(WORKER_GUEST_FD, line, sizeof(line) - 1, 0);
        line[n > 0 ? n : 0] = '\0';
        tv.tv_sec = 0;
        setsockopt(WORKER_GUEST_FD, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (n <= 0 || !strstr(line, "\"ready\""))
                return -EPROTO;
        r = session_start(s);
        if (r < 0) {
                guest_sock_send(WORKER_GUEST_FD,
                                json_pack("{s:b, s:s}", "ok", 0, "error", strerror(-r)), -1);
                return r;
        }
        return guest_sock_send(WORKER_GUEST_FD, json_pack("{s:b}", "ok", 1), -1) < 0 ? -EPIPE : 0;
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
        uint64_t remote = 0, import = 0;
        const char *sched = NULL, *home = NULL;
        uint8_t *blob = NULL;
        size_t blob_len = 0, n_blocks = 0;
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
                        r = worker_parse_u64(v, &gpu);
                else if (strcmp(k, "--device-address") == 0)
                        r = worker_parse_u64(v, &addr);
                else if (strcmp(k, "--fb-size") == 0)
                        r = worker_parse_u64(v, &size);
                else if (strcmp(k, "--session") == 0)
                        r = worker_parse_u64(v, &sid);
                else if (strcmp(k, "--guest-pid") == 0)
                        r = worker_parse_u64(v, &gpid);
                else if (strcmp(k, "--guest-uid") == 0)
                        r = worker_parse_u64(v, &guid);
                else if (strcmp(k, "--fb-fds") == 0)
                        r = worker_parse_u64(v, &nfds);
                else if (strcmp(k, "--sm-count") == 0)
                        r = worker_parse_u64(v, &sms);
                else if (strcmp(k, "--remote") == 0)
                        r = worker_parse_u64(v, &remote);
                else if (strcmp(k, "--import") == 0)
                        r = worker_parse_u64(v, &import);
                else if (strcmp(k, "--home") == 0)
                        home = v;
                else if (strcmp(k, "--sched") == 0)
                        sched = v;
                else if (strcmp(k, "--gpu-uuid") == 0)
                        dreq.gpu_uuid = v;
                else
                        r = -EINVAL;
        }
        dev.ops = backend_find(backend);
        if (r < 0 || !dev.ops || !uuid || !hello || !size || nfds > WORKER_MAX_FB_FDS ||
            gpu > UINT32_MAX || sid > UINT32_MAX || remote > 1 || import > 1) {
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
        if (import) {
                r = take_import(&blob, &blob_len, &n_blocks);
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "vGPU %s: worker: no session to import: %s", uuid,
                                 strerror(-r));
                        mw_close(&conn);
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
                free(blob);
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
        if (import) {
                /* a session that moved or was restored: its guest re-attaches (its token led the
                 * engine here), its channel copied into the session's new one */
                why[0] = '\0';
                /* the mirror of the allocator: the session's blocks, as the engine has them */
                for (size_t k = 0; r == 0 && k < n_blocks; k++) {
                        uint64_t b[3];

                        memcpy(b, blob + blob_len + k * sizeof(b), sizeof(b));
                        r = b[2] >> 32 != sid ? -EPROTO
                                              : fbmem_alloc_at(&dev.mem, b[0], b[1], b[2]);
                }
                if (r == 0)
                        r = session_import(&dev, blob, blob_len, &s, why, sizeof(why));
                if (r == 0 && session_id(s) != sid)
                        r = -EPROTO; /* its blocks are tagged with the id the engine checked */
                free(blob);
                blob = NULL;
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "vGPU %s: worker: session not imported: %s", uuid,
                                 why[0] ? why : strerror(-r));
                        tell_guest(remote ? &conn : NULL,
                                   json_pack("{s:b, s:s}", "ok", 0, "error",
                                             "the session could not be rebuilt here"),
                                   -1);
                } else if (!remote) {
                        r = reattach_local(s, json_loads(hello, 0, NULL));
                } else {
                        char err[256] = "";

                        r = tell_guest(&conn, json_loads(hello, 0, NULL), -1);
                        if (r == 0)
                                r = link_receive_channel(s, &conn, err, sizeof(err));
                        if (r < 0 && err[0])
                                vgpu_log(VGPU_LOG_WARN, "vGPU %s: worker: %s", uuid, err);
                }
        } else {
                r = session_new(&dev, (uint32_t)sid, (pid_t)gpid, (uid_t)guid, &s, &chan_fd);
                if (r == 0 &&
                    tell_guest(remote ? &conn : NULL, json_loads(hello, 0, NULL), chan_fd) < 0)
                        r = -EPIPE;
                else if (r < 0)
                        tell_guest(remote ? &conn : NULL,
                                   json_pack("{s:b, s:s}", "ok", 0, "error", strerror(-r)), -1);
        }
        /* a remote guest: a link serves its channel over the connection (docs/remote.md) */
        if (r == 0 && remote && pipe2(notify, O_CLOEXEC | O_NONBLOCK) < 0)
                r = -errno;
        if (r == 0 && remote) {
                r = link_start(s, &conn, notify[1], &link);
                conn = (struct mw_conn){.fd = -1}; /* the link's now */
        }
        if (r == 0 && remote && import)
                r = session_start(s); /* after the link: it sees every command run */
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
                if (pfd[2].revents && worker_ctl(&dev, s, &req, home, link) < 0)
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
