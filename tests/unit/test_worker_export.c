// SPDX-License-Identifier: Apache-2.0
// worker_export (engine/worker.c): the engine's side of a worker's session export. A worker is
// trusted less than its engine: the bytes come only in a memfd sealed against writes and
// resizing, exactly as long as the answer says, one fd, the op asked; anything else is refused
// (-EPROTO) and every fd that came along is closed; a late answer to an earlier request is
// dropped, not taken for this one (worker_call too). This test plays the worker on a socketpair.
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/worker.h"

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static int memfd_with(const void *p, size_t len, int seals)
{
        int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, p, len), (ssize_t)len);
        if (seals)
                assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
        return fd;
}

/* The worker's answer, queued before the engine asks; then worker_export's result. */
static int ask(const struct worker_msg *ans, const int *fds, size_t n, uint8_t **ret,
               size_t *ret_len)
{
        int sp[2], r;
        struct worker_msg a = ans ? *ans : (struct worker_msg){0};

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        a.seq = worker_next_seq() + 1; /* the number worker_export's request takes */
        if (ans)
                assert_int_equal(worker_send(sp[1], &a, sizeof(a), fds, n), 0);
        else
                close(sp[1]); /* the worker is gone */
        r = worker_export(sp[0], 100, ret, ret_len);
        close(sp[0]);
        if (ans)
                close(sp[1]);
        return r;
}

static void test_good(void **state)
{
        static const char bytes[] = "VSES and the rest of a session";
        struct worker_msg ans = {.op = WORKER_EXPORT, .a = sizeof(bytes)};
        int fd = memfd_with(bytes, sizeof(bytes), SEALS | F_SEAL_SEAL);
        uint8_t *p = NULL;
        size_t len = 0;

        (void)state;
        assert_int_equal(ask(&ans, &fd, 1, &p, &len), 0);
        assert_int_equal(len, sizeof(bytes));
        assert_memory_equal(p, bytes, sizeof(bytes));
        free(p);
        close(fd);
}

static void test_refused(void **state)
{
        static const char bytes[] = "a session";
        uint8_t *p = (uint8_t *)"untouched";
        size_t len = 7;
        int fd, two[2], pfd[2];

        (void)state;
        /* not sealed: the worker could change the bytes while, or after, they are read */
        fd = memfd_with(bytes, sizeof(bytes), 0);
        assert_int_equal(ask(&(struct worker_msg){.op = WORKER_EXPORT, .a = sizeof(bytes)}, &fd, 1,
                             &p, &len),
                         -EPROTO);
        close(fd);
        /* sealed against writes only: it could still shrink */
        fd = memfd_with(bytes, sizeof(bytes), F_SEAL_WRITE);
        assert_int_equal(ask(&(struct worker_msg){.op = WORKER_EXPORT, .a = sizeof(bytes)}, &fd, 1,
                             &p, &len),
                         -EPROTO);
        close(fd);
        /* another length than it holds, either way */
        fd = memfd_with(bytes, sizeof(bytes), SEALS);
        assert_int_equal(ask(&(struct worker_msg){.op = WORKER_EXPORT, .a = sizeof(bytes) + 1}, &fd,
                             1, &p, &len),
                         -EPROTO);
        assert_int_equal(ask(&(struct worker_msg){.op = WORKER_EXPORT, .a = 1}, &fd, 1, &p, &len),
                         -EPROTO);
        assert_int_equal(
                ask(&(struct worker_msg){.op = WORKER_EXPORT, .a = UINT64_MAX}, &fd, 1, &p, &len),
                -EPROTO);
        /* no fd; two fds; another op; a positive r */
        assert_int_equal(ask(&(struct worker_msg){.op = WORKER_EXPORT, .a = sizeof(bytes)}, NULL, 0,
                             &p, &len),
                         -EPROTO);
        two[0] = fd;
        two[1] = fd;
        assert_int_equal(ask(&(struct worker_msg){.op = WORKER_EXPORT, .a = sizeof(bytes)}, two, 2,
                             &p, &len),
                         -EPROTO);
        assert_int_equal(
                ask(&(struct worker_msg){.op = WORKER_DIRTY, .a = sizeof(bytes)}, &fd, 1, &p, &len),
                -EPROTO);
        assert_int_equal(ask(&(struct worker_msg){.op = WORKER_EXPORT, .r = 5, .a = sizeof(bytes)},
                             &fd, 1, &p, &len),
                         -EPROTO);
        close(fd);
        /* a pipe is not a file of bytes */
        assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
        assert_int_equal(
                ask(&(struct worker_msg){.op = WORKER_EXPORT, .a = 0}, &pfd[0], 1, &p, &len),
                -EPROTO);
        close(pfd[0]);
        close(pfd[1]);
        /* the worker's own refusal (session_export's), and only an errno */
        assert_int_equal(
                ask(&(struct worker_msg){.op = WORKER_EXPORT, .r = -ENOTSUP}, NULL, 0, &p, &len),
                -ENOTSUP);
        assert_int_equal(
                ask(&(struct worker_msg){.op = WORKER_EXPORT, .r = -100000}, NULL, 0, &p, &len),
                -EPROTO);
        /* gone */
        assert_int_equal(ask(NULL, NULL, 0, &p, &len), -EIO);
        /* nothing changed the outputs */
        assert_string_equal((const char *)p, "untouched");
        assert_int_equal(len, 7);
}

static void test_silent(void **state)
{
        uint8_t *p = NULL;
        size_t len = 0;
        int sp[2];

        (void)state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        assert_int_equal(worker_export(sp[0], 20, &p, &len), -ETIMEDOUT);
        close(sp[0]);
        close(sp[1]);
}

/*
 * Answers to earlier requests that came after the engine stopped waiting for them (a worker slow
 * to answer a WORKER_DIRTY, an EXPORT timed out) are dropped, their fds closed: the answer taken
 * is the one to this request.
 */
static void test_late_answers(void **state)
{
        static const char bytes[] = "the session asked for now";
        static const char old[] = "an earlier export";
        int sp[2], fd, stale_fd, r;
        uint64_t seq;
        uint8_t *p = NULL;
        size_t len = 0;
        struct {
                struct worker_msg m;
                uint64_t bases[3];
        } dirty = {.m = {.op = WORKER_DIRTY, .r = 3}, .bases = {1, 2, 3}};

        (void)state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        seq = worker_next_seq();
        dirty.m.seq = seq - 1 ? seq - 1 : 1; /* an earlier request's */
        assert_int_equal(worker_send(sp[1], &dirty, sizeof(dirty), NULL, 0), 0);
        stale_fd = memfd_with(old, sizeof(old), SEALS);
        assert_int_equal(
                worker_send(sp[1],
                            &(struct worker_msg){.op = WORKER_EXPORT, .a = sizeof(old), .seq = seq},
                            sizeof(struct worker_msg), &stale_fd, 1),
                0);
        close(stale_fd);
        fd = memfd_with(bytes, sizeof(bytes), SEALS);
        assert_int_equal(worker_send(sp[1],
                                     &(struct worker_msg){.op = WORKER_EXPORT,
                                                          .a = sizeof(bytes),
                                                          .seq = seq + 1},
                                     sizeof(struct worker_msg), &fd, 1),
                         0);
        close(fd);
        r = worker_export(sp[0], 1000, &p, &len);
        assert_int_equal(r, 0);
        assert_int_equal(len, sizeof(bytes));
        assert_memory_equal(p, bytes, sizeof(bytes));
        free(p);
        /* and a worker_call past an answer that is not its own */
        assert_int_equal(worker_send(sp[1],
                                     &(struct worker_msg){.op = WORKER_PAUSE, .seq = seq + 1},
                                     sizeof(struct worker_msg), NULL, 0),
                         0);
        assert_int_equal(
                worker_send(sp[1],
                            &(struct worker_msg){.op = WORKER_HOME, .r = -ENOENT, .seq = seq + 2},
                            sizeof(struct worker_msg), NULL, 0),
                0);
        assert_int_equal(worker_call(sp[0], WORKER_HOME, 0, 1000), -ENOENT);
        /* only a late answer, then nothing: the call times out rather than take it */
        assert_int_equal(worker_send(sp[1], &(struct worker_msg){.op = WORKER_HOME, .seq = seq + 1},
                                     sizeof(struct worker_msg), NULL, 0),
                         0);
        assert_int_equal(worker_call(sp[0], WORKER_HOME, 0, 100), -ETIMEDOUT);
        close(sp[0]);
        close(sp[1]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_silent),
                cmocka_unit_test(test_late_answers),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
