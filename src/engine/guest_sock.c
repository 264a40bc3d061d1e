// SPDX-License-Identifier: Apache-2.0
// A local guest's socket once it is attached (guest_sock.h): host memory shared by JSON lines with
// fds, and the JSON lines guests are answered with.
#include "engine/guest_sock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

/* One line from a guest: host_map (taking the next fd it sent) or host_unmap. */
static void guest_line(struct guest_sock *gs, struct session *s, const char *uuid, const char *line)
{
        json_t *msg = json_loads(line, 0, NULL);
        const char *op = NULL;
        json_int_t id = -1, size = 0;
        int r = -EINVAL, fd = -1;

        if (msg && json_unpack(msg, "{s:s, s:I, s?I}", "op", &op, "id", &id, "size", &size) == 0 &&
            id >= 0) {
                if (strcmp(op, "host_map") == 0 && gs->n_fds > 0 && size > 0) {
                        fd = gs->fds[0];
                        memmove(gs->fds, gs->fds + 1, --gs->n_fds * sizeof(int));
                        r = session_host_map(s, (uint64_t)id, fd, (uint64_t)size);
                } else if (strcmp(op, "host_unmap") == 0) {
                        r = session_host_unmap(s, (uint64_t)id);
                }
        }
        if (r < 0)
                vgpu_log(VGPU_LOG_WARN,
                         "vGPU %s: guest %d: refused host memory message (%s): %.80s", uuid,
                         (int)session_pid(s), strerror(-r), line);
        json_decref(msg);
        if (fd >= 0)
                close(fd);
}

int guest_sock_read(struct guest_sock *gs, int fd, struct session *s, const char *uuid)
{
        char cbuf[CMSG_SPACE(8 * sizeof(int))];
        struct iovec iov = {.iov_base = gs->buf + gs->len,
                            .iov_len = sizeof(gs->buf) - 1 - gs->len};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf,
                            .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *cm;
        char *line, *nl;
        ssize_t n;

        if (iov.iov_len == 0)
                return -1;
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n <= 0)
                return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                size_t k;

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                for (k = 0; k < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
                        int got;

                        memcpy(&got, CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
                        if (gs->n_fds < sizeof(gs->fds) / sizeof(gs->fds[0]))
                                gs->fds[gs->n_fds++] = got;
                        else
                                close(got);
                }
        }
        gs->len += (size_t)n;
        gs->buf[gs->len] = '\0';
        line = gs->buf;
        while ((nl = strchr(line, '\n'))) {
                *nl = '\0';
                guest_line(gs, s, uuid, line);
                line = nl + 1;
        }
        gs->len -= (size_t)(line - gs->buf);
        memmove(gs->buf, line, gs->len);
        return 0;
}

void guest_sock_clear(struct guest_sock *gs)
{
        for (unsigned k = 0; k < gs->n_fds; k++)
                close(gs->fds[k]);
        gs->n_fds = 0;
}

int guest_sock_send(int sock, json_t *msg, int fd)
{
        char *text = json_dumps(msg, JSON_COMPACT);
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n;

        json_decref(msg);
        if (!text)
                return -ENOMEM;
        iov = (struct iovec){.iov_base = text, .iov_len = strlen(text) + 1};
        text[iov.iov_len - 1] = '\n';
        if (fd >= 0) {
                struct cmsghdr *cm;

                mh.msg_control = cbuf;
                mh.msg_controllen = sizeof(cbuf);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        }
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        free(text);
        return n < 0 ? -errno : 0;
}
