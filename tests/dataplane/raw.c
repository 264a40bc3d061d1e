// SPDX-License-Identifier: Apache-2.0
// The raw test guest: hello, channel mapping and synchronous calls, without libcuda.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "raw.h"

int raw_attach(const char *path, struct raw *r)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        static const char msg[] = "{\"hello\":1,\"version\":" VGPU_STR(VGPU_PROTO_VERSION) "}\n";
        char buf[4096], cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf,
                            .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *cm;
        int fd = -1;
        void *base;

        memset(r, 0, sizeof(*r));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        r->sock = socket(AF_UNIX, SOCK_STREAM, 0);
        if (r->sock < 0 || connect(r->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            send(r->sock, msg, sizeof(msg) - 1, 0) < 0 || recvmsg(r->sock, &mh, 0) <= 0)
                return -errno;
        for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                memcpy(&fd, CMSG_DATA(cm), sizeof(int));
        if (fd < 0)
                return -EACCES;
        base = mmap(NULL, chan_total_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (base == MAP_FAILED || chan_open(base, chan_total_size(), &r->v) < 0)
                return -EPROTO;
        return 0;
}

int raw_call(struct raw *r, uint16_t op, const void *req, uint32_t len, const void *tail,
             uint32_t tail_len, void *rep, uint32_t rep_cap)
{
        struct vgpu_chan_ctl *ctl = r->v.ctl;
        uint64_t seq = ++r->seq;

        if (chan_push(&r->v, op, seq, req, len, tail, tail_len) < 0)
                return -EMSGSIZE;
        __atomic_add_fetch(&ctl->head_futex, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&ctl->head_futex);
        for (int i = 0; __atomic_load_n(&ctl->done_seq, __ATOMIC_ACQUIRE) < seq; i++) {
                if (__atomic_load_n(&ctl->engine_dead, __ATOMIC_ACQUIRE) || i > 200000)
                        return -EPIPE;
                usleep(50);
        }
        if (ctl->reply_seq != seq)
                return 0; /* an asynchronous call: no reply of its own */
        if (rep)
                memcpy(rep, r->v.reply, ctl->reply_len < rep_cap ? ctl->reply_len : rep_cap);
        return ctl->reply_result;
}

void raw_close(struct raw *r)
{
        munmap(r->v.base, r->v.size);
        close(r->sock);
}
