// SPDX-License-Identifier: Apache-2.0
// The HTTP client against a scripted server (a child process on a Unix socket): the request it
// sends, the framings it reads (Content-Length, chunked, end of stream, interim 1xx, 204), and the
// bad replies it must refuse with an error instead of crashing.
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/http_client.h"

struct server {
        char dir[64];
        char path[96];
        int lfd;
        int req_pipe; /* the parent's end: the request bytes the server read */
        pid_t pid;
};

/* Read one request (head and Content-Length body) from fd into buf; returns its length. */
static size_t read_request(int fd, char *buf, size_t cap)
{
        size_t len = 0;

        while (len + 1 < cap) {
                ssize_t n = read(fd, buf + len, cap - 1 - len);
                const char *end;

                if (n <= 0)
                        break;
                len += (size_t)n;
                buf[len] = '\0';
                end = strstr(buf, "\r\n\r\n");
                if (end) {
                        const char *cl = strstr(buf, "Content-Length: ");
                        size_t want =
                                (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 16, NULL, 10) : 0);

                        if (len >= want)
                                break;
                }
        }
        buf[len] = '\0';
        return len;
}

/*
 * Start a server that answers one connection with the NULL-terminated pieces (written 20 ms
 * apart), then closes; hold_ms > 0 keeps it silent that long first.
 */
static void server_start(struct server *s, int hold_ms, const char *const *pieces)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int p[2];

        snprintf(s->dir, sizeof(s->dir), "/tmp/vgpu-http-XXXXXX");
        assert_non_null(mkdtemp(s->dir));
        snprintf(s->path, sizeof(s->path), "%s/s.sock", s->dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
        s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_true(s->lfd >= 0);
        assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(s->lfd, 4), 0);
        assert_int_equal(pipe(p), 0);
        s->pid = fork();
        assert_true(s->pid >= 0);
        if (s->pid == 0) {
                char req[65536];
                int c = accept(s->lfd, NULL, NULL);
                size_t n;

                close(p[0]);
                if (c < 0)
                        _exit(1);
                n = read_request(c, req, sizeof(req));
                if (write(p[1], req, n) != (ssize_t)n)
                        _exit(1);
                close(p[1]);
                if (hold_ms)
                        usleep((useconds_t)hold_ms * 1000);
                for (size_t i = 0; pieces && pieces[i]; i++) {
                        if (write(c, pieces[i], strlen(pieces[i])) < 0)
                                break;
                        usleep(20000);
                }
                close(c);
                _exit(0);
        }
        close(p[1]);
        s->req_pipe = p[0];
}

/* Stop the server; the request it read goes to req (NUL-terminated) when req is not NULL. */
static void server_stop(struct server *s, char *req, size_t cap)
{
        size_t len = 0;
        ssize_t n;
        int status;

        kill(s->pid, SIGTERM);
        waitpid(s->pid, &status, 0);
        while (req && len + 1 < cap && (n = read(s->req_pipe, req + len, cap - 1 - len)) > 0)
                len += (size_t)n;
        if (req)
                req[len] = '\0';
        close(s->req_pipe);
        close(s->lfd);
        unlink(s->path);
        rmdir(s->dir);
}

/* One exchange against a server answering with pieces; returns http_request's result. */
static int exchange(const char *method, const char *path, json_t *body, int timeout_ms, int hold_ms,
                    const char *const *pieces, int *ret_status, json_t **ret_body, char *req,
                    size_t cap)
{
        struct server s;
        struct http_target t;
        int r;

        server_start(&s, hold_ms, pieces);
        t = (struct http_target){
                .kind = HTTP_TARGET_UNIX, .path = s.path, .timeout_ms = timeout_ms};
        r = http_request(&t, method, path, body, ret_status, ret_body);
        server_stop(&s, req, cap);
        return r;
}

/* The result of answering a GET with one reply; status and body through the pointers. */
static int answer(const char *reply, int *status, json_t **body)
{
        const char *pieces[] = {reply, NULL};

        return exchange("GET", "/v1/x", NULL, 5000, 0, pieces, status, body, NULL, 0);
}

static void test_request_bytes(void **state)
{
        const char *pieces[] = {"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                                "Content-Length: 11\r\n\r\n{\"id\": 42}\n",
                                NULL};
        json_t *body = json_pack("{s:s, s:i}", "type", "H100-20C", "gpu", 0), *doc = NULL;
        char req[4096];
        int status = 0;

        (void)state;
        assert_int_equal(exchange("POST", "/v1/vgpus", body, 5000, 0, pieces, &status, &doc, req,
                                  sizeof(req)),
                         0);
        assert_int_equal(status, 201);
        assert_int_equal(json_integer_value(json_object_get(doc, "id")), 42);
        assert_non_null(strstr(req, "POST /v1/vgpus HTTP/1.1\r\n"));
        assert_non_null(strstr(req, "\r\nHost: localhost\r\n"));
        assert_non_null(strstr(req, "\r\nConnection: close\r\n"));
        assert_non_null(strstr(req, "\r\nContent-Type: application/json\r\n"));
        assert_non_null(strstr(req, "\r\nContent-Length: 27\r\n"));
        assert_non_null(strstr(req, "\r\n\r\n{\"type\":\"H100-20C\",\"gpu\":0}"));
        json_decref(body);
        json_decref(doc);
}

static void test_chunked_and_interim(void **state)
{
        /* A 100 Continue first; chunks with an extension, split mid-line; a trailer. */
        const char *pieces[] = {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Enc",
                                "oding: chunked\r\n\r\n6;ext=1\r\n{\"a\":",
                                " \r\nA\r\n[1,2,3,4]}\r\n0\r\nX-Trailer: y\r\n\r\n", NULL};
        json_t *doc = NULL;
        int status = 0;

        (void)state;
        assert_int_equal(exchange("GET", "/v1/x", NULL, 5000, 0, pieces, &status, &doc, NULL, 0),
                         0);
        assert_int_equal(status, 200);
        assert_int_equal(json_array_size(json_object_get(doc, "a")), 4);
        json_decref(doc);
}

static void test_read_to_eof_and_empty(void **state)
{
        json_t *doc = NULL;
        int status = 0;

        (void)state;
        assert_int_equal(answer("HTTP/1.0 200 OK\r\n\r\n{\"eof\": true}", &status, &doc), 0);
        assert_true(json_is_true(json_object_get(doc, "eof")));
        json_decref(doc);
        doc = (json_t *)1;
        assert_int_equal(answer("HTTP/1.1 204 No Content\r\n\r\n", &status, &doc), 0);
        assert_int_equal(status, 204);
        assert_null(doc);
        doc = (json_t *)1;
        assert_int_equal(answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &status, &doc), 0);
        assert_null(doc);
        /* Any JSON value parses; the caller checks its shape. */
        assert_int_equal(answer("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnull", &status, &doc),
                         0);
        assert_true(json_is_null(doc));
        json_decref(doc);
        /* Not JSON and saying so: the status counts, the body is dropped. */
        doc = (json_t *)1;
        assert_int_equal(answer("HTTP/1.1 413 Too Big\r\nContent-Type: text/html\r\n"
                                "Content-Length: 6\r\n\r\n<html>",
                                &status, &doc),
                         0);
        assert_int_equal(status, 413);
        assert_null(doc);
}

static void test_bad_replies(void **state)
{
        static const struct {
                const char *reply;
                int err;
        } cases[] = {
                {"", -EPROTO},
                {"garbage\r\n\r\n", -EPROTO},
                {"HTTP/1.1 2000 OK\r\n\r\n", -EPROTO},
                {"HTTP/1.1 099 Low\r\n\r\n", -EPROTO},
                {"HTTP/2 200 OK\r\n\r\n", -EPROTO},
                {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", -EPROTO},
                {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", -EPROTO},
                {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}", -EPROTO},
                {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", -EMSGSIZE},
                {"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", -EPROTO},
                {"HTTP/1.1 200 OK\r\nBad Header: 1\r\n\r\n", -EPROTO},
                {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", -EPROTO},
                {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", -EPROTO},
                {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
                 -EPROTO},
                {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", -EPROTO},
                {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n",
                 -EMSGSIZE},
                {"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1,", -EPROTO},
                {"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"a\":1, \"a\":2}", -EPROTO},
                {"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\"\xff\"\n", -EPROTO},
                {"HTTP/1.1 101 Switching\r\n\r\n", -EPROTO},
                {"HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n", -EPROTO},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                json_t *doc = (json_t *)1;
                int status = -7;
                int r = answer(cases[i].reply, &status, &doc);

                if (r != cases[i].err)
                        fail_msg("case %zu: got %d, want %d", i, r, cases[i].err);
                /* Outputs untouched on failure. */
                assert_int_equal(status, -7);
                assert_ptr_equal(doc, (json_t *)1);
        }
}

static void test_timeout(void **state)
{
        const char *pieces[] = {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", NULL};
        json_t *doc = NULL;
        int status = 0;

        (void)state;
        assert_int_equal(exchange("GET", "/v1/x", NULL, 200, 1000, pieces, &status, &doc, NULL, 0),
                         -ETIMEDOUT);
}

static void test_connect_errors(void **state)
{
        char dir[] = "/tmp/vgpu-http-XXXXXX", path[96];
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char longpath[200];
        json_t *doc = NULL;
        int status = 0, fd;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/none.sock", dir);
        assert_int_equal(http_call(path, "GET", "/v1/health", NULL, &status, &doc), -ENOENT);
        /* A socket file nobody listens on. */
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(http_call(path, "GET", "/v1/health", NULL, &status, &doc), -ECONNREFUSED);
        close(fd);
        unlink(path);
        rmdir(dir);
        memset(longpath, 'a', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = '\0';
        assert_int_equal(http_call(longpath, "GET", "/v1/health", NULL, &status, &doc),
                         -ENAMETOOLONG);
        assert_int_equal(http_call("", "GET", "/v1/health", NULL, &status, &doc), -EINVAL);
        assert_int_equal(http_call("/x", "GET", "v1/health", NULL, &status, &doc), -EINVAL);
        assert_int_equal(http_call("/x", "GET", "/v1/a b", NULL, &status, &doc), -EINVAL);
        assert_int_equal(http_call("/x", "GE T", "/v1/health", NULL, &status, &doc), -EINVAL);
        assert_int_equal(http_call("/x", "GET", "/v1/\r\nX: y", NULL, &status, &doc), -EINVAL);
        assert_int_equal(status, 0);
        assert_null(doc);
}

static void test_escape(void **state)
{
        char buf[32];

        (void)state;
        assert_int_equal(http_escape("GPU-1a_b.c~", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "GPU-1a_b.c~");
        assert_int_equal(http_escape("a/b?c d&", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "a%2Fb%3Fc%20d%26");
        assert_int_equal(http_escape("0123456789abcdef", buf, 16), -ENOSPC);
        assert_string_equal(buf, "");
        assert_int_equal(http_escape("aaaaaaaaaaaaa/", buf, 16), -ENOSPC);
        assert_int_equal(http_escape("aaaaaaaaaaaa/", buf, 16), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_bytes),
                cmocka_unit_test(test_chunked_and_interim),
                cmocka_unit_test(test_read_to_eof_and_empty),
                cmocka_unit_test(test_bad_replies),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_connect_errors),
                cmocka_unit_test(test_escape),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
