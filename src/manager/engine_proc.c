// SPDX-License-Identifier: Apache-2.0
// Starting, querying and stopping vgpu-engine processes: fork+exec in a new session with a
// readiness pipe, a one-line JSON exchange on the control socket, and stop with escalation.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/engine_proc.h"

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The last non-empty line of the engine's log: what it said before it failed. */
static void last_words(const char *log_path, char *err, size_t len)
{
        char buf[4096];
        ssize_t n = 0;
        int fd = open(log_path, O_RDONLY | O_CLOEXEC);

        snprintf(err, len, "the engine exited without a word (log: %s)", log_path);
        if (fd < 0)
                return;
        off_t end = lseek(fd, 0, SEEK_END);
        off_t from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
        if (from >= 0)
                n = pread(fd, buf, sizeof(buf) - 1, from);
        close(fd);
        if (n <= 0)
                return;
        buf[n] = '\0';
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                buf[--n] = '\0';
        char *line = strrchr(buf, '\n');
        snprintf(err, len, "%s", line ? line + 1 : buf);
}

bool engine_alive(pid_t pid)
{
        char path[64], buf[512];
        ssize_t n;
        int fd;

        if (pid <= 0 || kill(pid, 0) < 0)
                return false;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        /* "pid (comm) S ...": a zombie has exited. */
        char *paren = strrchr(buf, ')');
        return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static void reap(pid_t pid)
{
        int status;

        if (pid <= 0)
                return; /* waitpid(0) would take any child's */
        while (waitpid(pid, &status, WNOHANG) < 0 && errno == EINTR)
                ;
}

/*
 * A copy of this process's environment with CUDA_VISIBLE_DEVICES=visible in place of its own:
 * one allocation holding the array and the new entry (free it whole).
 */
static int env_with(const char *visible, char ***ret)
{
        static const char key[] = "CUDA_VISIBLE_DEVICES=";
        size_t n = 0, k = 0, len = sizeof(key) + strlen(visible);
        char **env, *entry;

        while (environ[n])
                n++;
        env = malloc((n + 2) * sizeof(*env) + len);
        if (!env)
                return -ENOMEM;
        entry = (char *)(env + n + 2);
        snprintf(entry, len, "%s%s", key, visible);
        for (size_t i = 0; i < n; i++) {
                if (strncmp(environ[i], key, sizeof(key) - 1) != 0)
                        env[k++] = environ[i];
        }
        env[k++] = entry;
        env[k] = NULL;
        *ret = env;
        return 0;
}

int engine_spawn(const struct engine_spec *spec, int timeout_ms, pid_t *ret_pid, char *err,
                 size_t len)
{
        char a_gpu[16], a_addr[32], a_size[32], a_off[32], a_sm[16], a_uid[32];
        /* clang-format off */
        char *argv[] = {(char *)spec->engine_path, "--backend", (char *)spec->backend,
                        "--uuid", (char *)spec->uuid, "--type", (char *)spec->type,
                        "--gpu-index", a_gpu, "--device-address", a_addr, "--fb-size", a_size,
                        "--fb-offset", a_off, "--control", (char *)spec->control,
                        "--guest-socket", (char *)spec->guest_socket, "--model",
                        (char *)spec->model, "--sm-count", a_sm, "--owner-uid", a_uid,
                        "--ready-fd", "3", NULL, NULL, NULL, NULL, NULL, NULL};
        /* clang-format on */
        size_t spare = sizeof(argv) / sizeof(argv[0]) - 6; /* the first of five spare slots */
        char **envp = environ, **own = NULL;
        int pipefd[2], logfd;
        int64_t deadline = now_ms() + timeout_ms;
        char line[64] = "";
        size_t got = 0;
        pid_t pid;

        if (spec->sched_path) {
                argv[spare++] = "--sched";
                argv[spare++] = (char *)spec->sched_path;
        }
        if (spec->gpu_uuid) {
                argv[spare++] = "--gpu-uuid";
                argv[spare++] = (char *)spec->gpu_uuid;
        }
        if (spec->fb_fit)
                argv[spare++] = "--fb-fit";
        if (spec->cuda_visible) {
                /* Made before fork: the child of a threaded vgpud only calls exec. */
                int r = env_with(spec->cuda_visible, &own);

                if (r < 0) {
                        snprintf(err, len, "environment: %s", strerror(-r));
                        return r;
                }
                envp = own;
        }
        snprintf(a_gpu, sizeof(a_gpu), "%" PRIu32, spec->gpu_index);
        snprintf(a_addr, sizeof(a_addr), "0x%" PRIx64, spec->device_address);
        snprintf(a_size, sizeof(a_size), "%" PRIu64, spec->fb_size);
        snprintf(a_off, sizeof(a_off), "%" PRIu64, spec->fb_offset);
        snprintf(a_sm, sizeof(a_sm), "%" PRIu32, spec->sm_count);
        snprintf(a_uid, sizeof(a_uid), "%" PRId64, spec->owner_uid);
        logfd = open(spec->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (logfd < 0) {
                int r = -errno;

                free(own);
                snprintf(err, len, "engine log %s: %s", spec->log_path, strerror(-r));
                return r;
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                int r = -errno;

                free(own);
                close(logfd);
                snprintf(err, len, "pipe: %s", strerror(-r));
                return r;
        }
        pid = fork();
        if (pid < 0) {
                int r = -errno;

                free(own);
                close(logfd);
                close(pipefd[0]);
                close(pipefd[1]);
                snprintf(err, len, "fork: %s", strerror(-r));
                return r;
        }
        if (pid == 0) {
                /* The child: its own session, so vgpud's end does not end it. */
                int devnull = open("/dev/null", O_RDONLY);
                sigset_t none;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                setsid();
                if (devnull >= 0)
                        dup2(devnull, 0);
                dup2(logfd, 1);
                dup2(logfd, 2);
                dup2(pipefd[1], 3);
                close_range(4, ~0u, 0);
                execve(spec->engine_path, argv, envp);
                dprintf(2, "vgpu-engine: cannot run %s: %s\n", spec->engine_path, strerror(errno));
                _exit(127);
        }
        free(own);
        close(logfd);
        close(pipefd[1]);
        while (got < sizeof(line) - 1 && !memchr(line, '\n', got)) {
                int left = (int)(deadline - now_ms());
                struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
                ssize_t n;

                if (left <= 0 || poll(&p, 1, left) <= 0)
                        break;
                n = read(pipefd[0], line + got, sizeof(line) - 1 - got);
                if (n <= 0)
                        break;
                got += (size_t)n;
                line[got] = '\0';
        }
        close(pipefd[0]);
        if (strncmp(line, "READY ", 6) != 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                last_words(spec->log_path, err, len);
                return got ? -EPROTO : -ECHILD;
        }
        *ret_pid = pid;
        return 0;
}

/* Connect to control and exchange one line: send req, read the reply. */
/* One request, one reply line: 0 and *ret (any JSON object, ok or not), or a negative errno. */
static int exchange_any(const char *control, const char *req, int pass_fd, int timeout_ms,
                        json_t **ret)
{
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {.iov_base = (void *)req, .iov_len = strlen(req)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int64_t deadline = now_ms() + timeout_ms;
        char buf[4096];
        size_t got = 0;
        json_t *reply;
        int fd, r;

        if (strlen(control) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, control);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (pass_fd >= 0) {
                struct cmsghdr *cm;

                mh.msg_control = cbuf;
                mh.msg_controllen = sizeof(cbuf);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            sendmsg(fd, &mh, MSG_NOSIGNAL) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
                int left = (int)(deadline - now_ms());
                struct pollfd p = {.fd = fd, .events = POLLIN};
                ssize_t n;

                if (left <= 0 || poll(&p, 1, left) <= 0) {
                        close(fd);
                        return -ETIMEDOUT;
                }
                n = read(fd, buf + got, sizeof(buf) - 1 - got);
                if (n <= 0)
                        break;
                got += (size_t)n;
        }
        close(fd);
        buf[got] = '\0';
        reply = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
        if (!json_is_object(reply)) {
                json_decref(reply);
                return -EPROTO;
        }
        *ret = reply;
        return 0;
}

static int exchange(const char *control, const char *req, int timeout_ms, json_t **ret)
{
        json_t *reply;
        int r = exchange_any(control, req, -1, timeout_ms, &reply);

        if (r < 0)
                return r;
        if (!json_is_true(json_object_get(reply, "ok"))) {
                json_decref(reply);
                return -EPROTO;
        }
        *ret = reply;
        return 0;
}

int engine_request(const char *control, json_t *req, int timeout_ms, json_t **ret, char *err,
                   size_t len)
{
        return engine_request_fd(control, req, -1, timeout_ms, ret, err, len);
}

int engine_request_fd(const char *control, json_t *req, int fd, int timeout_ms, json_t **ret,
                      char *err, size_t len)
{
        char *line = json_dumps(req, JSON_COMPACT);
        char *nl = line ? malloc(strlen(line) + 2) : NULL;
        json_t *reply = NULL;
        int r;

        err[0] = '\0';
        if (!nl) {
                free(line);
                snprintf(err, len, "out of memory");
                return -ENOMEM;
        }
        sprintf(nl, "%s\n", line);
        free(line);
        r = exchange_any(control, nl, fd, timeout_ms, &reply);
        free(nl);
        if (r < 0) {
                snprintf(err, len, "the engine did not answer: %s", strerror(-r));
                return r;
        }
        if (!json_is_true(json_object_get(reply, "ok"))) {
                const char *e = json_string_value(json_object_get(reply, "error"));

                snprintf(err, len, "%s", e ? e : "the engine refused without saying why");
                json_decref(reply);
                return -EIO;
        }
        *ret = reply;
        return 0;
}

int engine_status(const char *control, int timeout_ms, json_t **ret)
{
        json_t *st;
        int r = exchange(control, "{\"op\":\"status\"}\n", timeout_ms, &st);

        if (r < 0)
                return r;
        if (!json_is_string(json_object_get(st, "uuid")) ||
            !json_is_integer(json_object_get(st, "pid")) ||
            !json_is_integer(json_object_get(st, "fb_size"))) {
                json_decref(st);
                return -EPROTO;
        }
        *ret = st;
        return 0;
}

int engine_find(const char *dir,
                void (*fn)(void *ctx, pid_t pid, const char *uuid, const char *control), void *ctx)
{
        size_t dlen = strlen(dir);
        struct dirent *de;
        DIR *proc = opendir("/proc");
        int n = 0;

        if (!proc)
                return 0;
        while ((de = readdir(proc))) {
                char path[64], buf[4096];
                const char *uuid = NULL, *control = NULL, *base;
                ssize_t len;
                pid_t pid;
                int fd;

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                pid = (pid_t)atoi(de->d_name);
                snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                len = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                if (len <= 0)
                        continue;
                buf[len] = '\0';
                base = strrchr(buf, '/');
                if (strcmp(base ? base + 1 : buf, "vgpu-engine") != 0)
                        continue;
                /* argv is NUL-separated: walk it for --uuid and --control values. */
                for (char *a = buf + strlen(buf) + 1; a < buf + len; a += strlen(a) + 1) {
                        char *next = a + strlen(a) + 1;

                        if (next >= buf + len)
                                break;
                        if (strcmp(a, "--uuid") == 0)
                                uuid = next;
                        else if (strcmp(a, "--control") == 0)
                                control = next;
                }
                if (!uuid || !control || strncmp(control, dir, dlen) != 0 || control[dlen] != '/' ||
                    !engine_alive(pid))
                        continue;
                fn(ctx, pid, uuid, control);
                n++;
        }
        closedir(proc);
        return n;
}

void engine_reap(pid_t pid)
{
        reap(pid);
}

int engine_stop(const char *control, pid_t pid, int timeout_ms)
{
        int64_t deadline = now_ms() + timeout_ms;
        json_t *reply = NULL;
        bool termed = false, killed = false;

        if (exchange(control, "{\"op\":\"stop\"}\n", timeout_ms / 2, &reply) == 0)
                json_decref(reply);
        else if (pid > 0 && kill(pid, SIGTERM) == 0)
                termed = true;
        while (pid > 0 && engine_alive(pid)) {
                reap(pid);
                if (!engine_alive(pid))
                        break;
                if (now_ms() > deadline) {
                        if (killed) {
                                vgpu_log(VGPU_LOG_ERROR, "engine %d survives SIGKILL", (int)pid);
                                return -ETIMEDOUT;
                        }
                        vgpu_log(VGPU_LOG_WARN, "engine %d did not stop in %d ms; killing it",
                                 (int)pid, timeout_ms);
                        kill(pid, SIGKILL);
                        killed = true;
                        deadline = now_ms() + 5000;
                } else if (!termed && now_ms() > deadline - timeout_ms / 2) {
                        kill(pid, SIGTERM);
                        termed = true;
                }
                usleep(2000);
        }
        reap(pid);
        return 0;
}
