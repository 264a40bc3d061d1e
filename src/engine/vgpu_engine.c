// SPDX-License-Identifier: Apache-2.0
// vgpu-engine: one process per vGPU. It reserves the vGPU's framebuffer through the backend at
// the vGPU's fixed device address, holds it for the vGPU's life, and answers vgpud on a control
// socket (newline-delimited JSON: status, stop). It outlives a vgpud restart; vgpud re-adopts it.
#include <errno.h>
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
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "backend/backend.h"
#include "common/log.h"

#define ENGINE_MAX_CLIENTS 16
#define ENGINE_LINE_MAX    4096

struct engine_client {
        int fd;
        size_t len;
        char buf[ENGINE_LINE_MAX];
};

struct engine {
        const struct backend_ops *ops;
        struct backend_fb fb;
        const char *uuid;
        const char *type;
        const char *control;
        uint32_t gpu_index;
        int listen_fd;
        int sig_fd;
        struct engine_client clients[ENGINE_MAX_CLIENTS];
        bool stopping;
};

static int parse_u64(const char *s, uint64_t *ret)
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

static json_t *status_json(const struct engine *e)
{
        return json_pack("{s:b, s:s, s:i, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:i}", "ok", 1, "uuid",
                         e->uuid, "pid", (int)getpid(), "type", e->type, "gpu_index",
                         (int)e->gpu_index, "backend", e->ops->name, "device_address",
                         (json_int_t)e->fb.device_address, "fb_size", (json_int_t)e->fb.size,
                         "fb_offset", (json_int_t)e->fb.phys_offset, "fb_resident",
                         (json_int_t)e->ops->fb_resident(&e->fb), "guests", 0);
}

/* One request line from vgpud. Anything malformed gets an error reply, never a crash. */
static void handle_line(struct engine *e, int fd, const char *line)
{
        json_error_t err;
        json_t *req = json_loads(line, 0, &err);
        const char *op = NULL;

        if (!req || json_unpack(req, "{s:s}", "op", &op) != 0) {
                reply(fd, json_pack("{s:b, s:s}", "ok", 0, "error",
                                    "bad request: expected {\"op\": \"status\"|\"stop\"}"));
        } else if (strcmp(op, "status") == 0) {
                reply(fd, status_json(e));
        } else if (strcmp(op, "stop") == 0) {
                reply(fd, json_pack("{s:b}", "ok", 1));
                e->stopping = true;
        } else {
                reply(fd, json_pack("{s:b, s:s}", "ok", 0, "error", "unknown op"));
        }
        json_decref(req);
}

static void client_read(struct engine *e, struct engine_client *c)
{
        ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
        char *nl;

        if (n <= 0) {
                close(c->fd);
                c->fd = -1;
                c->len = 0;
                return;
        }
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
        while ((nl = memchr(c->buf, '\n', c->len))) {
                *nl = '\0';
                handle_line(e, c->fd, c->buf);
                c->len -= (size_t)(nl + 1 - c->buf);
                memmove(c->buf, nl + 1, c->len);
        }
        if (c->len == sizeof(c->buf) - 1) {
                /* A line longer than any request: drop the client. */
                close(c->fd);
                c->fd = -1;
                c->len = 0;
        }
}

static int serve(struct engine *e)
{
        while (!e->stopping) {
                struct pollfd pfd[ENGINE_MAX_CLIENTS + 2];
                nfds_t n = 0;

                pfd[n++] = (struct pollfd){.fd = e->listen_fd, .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = e->sig_fd, .events = POLLIN};
                for (int i = 0; i < ENGINE_MAX_CLIENTS; i++)
                        pfd[n++] = (struct pollfd){.fd = e->clients[i].fd, .events = POLLIN};
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
                                e->clients[slot] = (struct engine_client){.fd = fd};
                }
                for (int i = 0; i < ENGINE_MAX_CLIENTS; i++) {
                        if (e->clients[i].fd >= 0 && pfd[i + 2].revents)
                                client_read(e, &e->clients[i]);
                }
        }
        return 0;
}

static void usage(FILE *f)
{
        fputs("usage: vgpu-engine --backend sim --uuid UUID --type NAME --gpu-index N\n"
              "                   --device-address A --fb-size BYTES --fb-offset BYTES\n"
              "                   --control PATH [--ready-fd FD]\n",
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
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        struct engine e = {.listen_fd = -1, .sig_fd = -1};
        struct backend_fb_req req = {0};
        uint64_t gpu = 0, ready_fd = UINT64_MAX;
        const char *backend = "sim";
        sigset_t mask;
        int c, r, idx = 0;

        vgpu_log_init("vgpu-engine");
        for (int i = 0; i < ENGINE_MAX_CLIENTS; i++)
                e.clients[i].fd = -1;
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
                        r = parse_u64(optarg, &gpu);
                        break;
                case 'a':
                        r = parse_u64(optarg, &req.device_address);
                        break;
                case 's':
                        r = parse_u64(optarg, &req.size);
                        break;
                case 'o':
                        r = parse_u64(optarg, &req.phys_offset);
                        break;
                case 'c':
                        e.control = optarg;
                        break;
                case 'r':
                        r = parse_u64(optarg, &ready_fd);
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
        if (!e.uuid || !e.type || !e.control || !req.size || gpu > UINT32_MAX) {
                usage(stderr);
                return 2;
        }
        e.ops = backend_find(backend);
        if (!e.ops) {
                vgpu_log(VGPU_LOG_ERROR, "unknown backend '%s' (known: sim)", backend);
                return 2;
        }
        e.gpu_index = (uint32_t)gpu;
        req.vgpu_uuid = e.uuid;
        req.gpu_index = e.gpu_index;
        r = e.ops->fb_reserve(&req, &e.fb);
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR,
                         "vGPU %s: cannot reserve %" PRIu64 " bytes at 0x%" PRIx64 ": %s", e.uuid,
                         req.size, req.device_address, strerror(-r));
                return 1;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        e.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
        e.listen_fd = listen_control(e.control);
        if (e.listen_fd < 0 || e.sig_fd < 0) {
                vgpu_log(VGPU_LOG_ERROR, "vGPU %s: control socket %s: %s", e.uuid, e.control,
                         strerror(e.listen_fd < 0 ? -e.listen_fd : errno));
                e.ops->fb_release(&e.fb);
                return 1;
        }
        if (ready_fd <= INT32_MAX) {
                char line[64];
                int len = snprintf(line, sizeof(line), "READY %d\n", (int)getpid());

                if (write((int)ready_fd, line, (size_t)len) != len)
                        vgpu_log(VGPU_LOG_WARN, "ready fd: %s", strerror(errno));
                close((int)ready_fd);
        }
        vgpu_log(VGPU_LOG_INFO, "vGPU %s (%s) holds %" PRIu64 " bytes at 0x%" PRIx64, e.uuid,
                 e.type, e.fb.size, e.fb.device_address);
        r = serve(&e);
        e.ops->fb_release(&e.fb);
        unlink(e.control);
        return r < 0 ? 1 : 0;
}
