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

#include "common/log.h"
#include "engine/link.h"
#include "engine/vgpu_engine.h"
#include "ptx/ptx.h"

bool engine_slot_used(const struct engine_guest *g)
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

int engine_guest_count(const struct engine *e)
{
        int n = 0;

        for (int i = 0; i < ENGINE_MAX_GUESTS; i++)
                n += engine_slot_used(&e->guests[i]) &&
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
                engine_guest_count(e));

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
                reply(fd, engine_suspend_op(e, op, req));
        } else if (strcmp(op, "restore") == 0) {
                reply(fd, engine_restore(e, json_string_value(json_object_get(req, "path"))));
        } else if (strcmp(op, "migrate_out") == 0 || strcmp(op, "migrate_in") == 0 ||
                   strcmp(op, "guest_tcp") == 0) {
                int conn = c->passed;

                c->passed = -1;
                reply(fd, engine_migrate_op(e, op, req, conn));
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
json_t *engine_hello_json(const struct engine *e)
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
int engine_lost_code(struct engine *e)
{
        return e->ops->dev_lost ? e->ops->dev_lost(e->dev.bdev) : 0;
}

bool engine_any_guest(const struct engine *e)
{
        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                if (engine_slot_used(&e->guests[i]))
                        return true;
        }
        return false;
}

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

        if (engine_unhex(tok, token, sizeof(token)) == 0)
                slot = engine_waiting_slot(e, token);
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

                r = engine_worker_start(e, &e->guests[slot], fd, cred, NULL, &b);
                if (r < 0) {
                        guest_sock_send(fd, json_pack("{s:b, s:s}", "ok", 0, "error", strerror(-r)),
                                        -1);
                        return -1;
                }
                free(b.p);
                return 0;
        }
        if (guest_sock_send(fd, engine_hello_json(e), session_fd(e->guests[slot].s)) < 0)
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

/*
 * A guest connects: it must be the vGPU's owner (or root), and say hello. It gets the vGPU's
 * description and its channel. The socket then stays open: its hang-up means the guest is gone.
 */
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
                if (!engine_slot_used(&e->guests[i]))
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
        if (engine_lost_code(e)) {
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
                r = engine_worker_start(e, &e->guests[slot], fd, &cred, NULL, NULL);
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
        if (guest_sock_send(fd, engine_hello_json(e), chan_fd) < 0) {
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
                        pfd[n++] = (struct pollfd){
                                .fd = engine_slot_used(&e->guests[i]) ? e->guests[i].fd : -1,
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
                        if (!engine_slot_used(&e->guests[i]) ||
                            !pfd[i + 3 + ENGINE_MAX_CLIENTS].revents)
                                continue;
                        if (e->guests[i].worker > 0) {
                                if (engine_worker_request(e, &e->guests[i]) < 0)
                                        engine_worker_gone(e, &e->guests[i]);
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
                if (engine_lost_code(e) && !engine_any_guest(e)) {
                        vgpu_log(VGPU_LOG_ERROR, "vGPU %s: GPU context lost (%s); engine exits",
                                 e->uuid, ptx_strerror(engine_lost_code(e)));
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
        /*
         * SIGTERM and SIGINT come through the signal fd, for a clean stop: blocked before the
         * backend starts its threads, which inherit the mask (else they take the default action).
         */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
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
                        engine_worker_gone(&e, &e.guests[i]);
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
