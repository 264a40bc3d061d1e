// SPDX-License-Identifier: Apache-2.0
// vgpud's scheduler threads (src/manager/scheduler.c) against a stand-in engine that plays the
// engine's side of the scheduler's page (common/schedpage.h) the way engine/session_gate.c does:
//  - a busy vGPU moved back and forth between two GPUs (detach from one, attach to the other,
//    the same page, as a migration does) keeps getting slices: the old GPU's thread must not end
//    its last grant on the page after the new GPU's thread granted one (it once did, and both
//    waited for each other forever);
//  - attaching a vGPU that is attached elsewhere moves it: one thread grants it, not two;
//  - a page left mid-grant by a vgpud that died is taken over cleanly.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/chan.h"
#include "common/schedpage.h"
#include "manager/scheduler.h"

#define WAIT_NS 10000000000ull /* a stall this long is a deadlock, not a slow machine */

struct engine {
        struct vgpu_sched_page *p;
        pthread_t thread;
        bool stop;
        uint64_t slices; /* grants it used (atomic) */
};

static bool granted(const struct vgpu_sched_page *p)
{
        return __atomic_load_n(&p->grant, __ATOMIC_ACQUIRE) &&
               __atomic_load_n(&p->grant_seq, __ATOMIC_ACQUIRE) !=
                       __atomic_load_n(&p->yield_seq, __ATOMIC_ACQUIRE);
}

/* Always busy: waits for a grant, uses the whole slice at once, yields, asks again. */
static void *engine_main(void *arg)
{
        struct engine *e = arg;
        struct vgpu_sched_page *p = e->p;

        while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
                uint32_t g = __atomic_load_n(&p->grant, __ATOMIC_ACQUIRE);
                uint64_t seq;

                if (!__atomic_load_n(&p->gated, __ATOMIC_ACQUIRE)) {
                        usleep(100); /* ungated: it would run freely; nothing to count */
                        continue;
                }
                if (!granted(p)) {
                        __atomic_add_fetch(&p->waiting, 1, __ATOMIC_SEQ_CST);
                        chan_futex_wake(&p->waiting);
                        if (!granted(p))
                                chan_futex_wait(&p->grant, g, 50);
                        __atomic_sub_fetch(&p->waiting, 1, __ATOMIC_SEQ_CST);
                        continue;
                }
                seq = __atomic_load_n(&p->grant_seq, __ATOMIC_ACQUIRE);
                __atomic_add_fetch(&p->launches, 1, __ATOMIC_RELEASE);
                __atomic_add_fetch(&p->slice_used_ns,
                                   __atomic_load_n(&p->slice_ns, __ATOMIC_ACQUIRE),
                                   __ATOMIC_ACQ_REL);
                if (__atomic_exchange_n(&p->yield_seq, seq, __ATOMIC_ACQ_REL) != seq) {
                        __atomic_add_fetch(&p->yielded, 1, __ATOMIC_SEQ_CST);
                        chan_futex_wake(&p->yielded);
                        __atomic_add_fetch(&e->slices, 1, __ATOMIC_RELEASE);
                }
        }
        return NULL;
}

static char dir[] = "/tmp/test-scheduler-XXXXXX";

static void page_path(uint32_t handle, char *buf, size_t len)
{
        snprintf(buf, len, "%s/%u.sched", dir, handle);
}

static void engine_start(struct engine *e, uint32_t handle)
{
        char path[256];
        int fd;

        page_path(handle, path, sizeof(path));
        assert_int_equal(scheduler_page_create(path), 0);
        fd = open(path, O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        e->p = mmap(NULL, VGPU_SCHED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        assert_true(e->p != MAP_FAILED);
        assert_int_equal(pthread_create(&e->thread, NULL, engine_main, e), 0);
}

static void engine_stop(struct engine *e)
{
        __atomic_store_n(&e->stop, true, __ATOMIC_RELEASE);
        chan_futex_wake(&e->p->grant);
        pthread_join(e->thread, NULL);
        munmap(e->p, VGPU_SCHED_SIZE);
}

/* Whether the engine got at least n more slices within WAIT_NS. */
static bool progresses(struct engine *e, uint64_t n)
{
        uint64_t from = __atomic_load_n(&e->slices, __ATOMIC_ACQUIRE);
        uint64_t until = chan_now_ns() + WAIT_NS;

        while (__atomic_load_n(&e->slices, __ATOMIC_ACQUIRE) < from + n) {
                if (chan_now_ns() > until)
                        return false;
                usleep(200);
        }
        return true;
}

static int attach(struct scheduler *s, uint32_t gpu, uint32_t handle)
{
        char path[256];

        page_path(handle, path, sizeof(path));
        return scheduler_attach(s, gpu, 0, handle, path, 4, false);
}

static void test_move_back_and_forth(void **state)
{
        struct scheduler *s;
        struct engine a = {0}, b = {0};

        (void)state;
        assert_int_equal(scheduler_new(2, &s), 0);
        engine_start(&a, 1);
        engine_start(&b, 2);
        assert_int_equal(attach(s, 0, 1), 0);
        assert_int_equal(attach(s, 0, 2), 0); /* a bystander on GPU 0 */
        assert_true(progresses(&a, 3));
        for (int i = 0; i < 300; i++) {
                uint32_t from = (uint32_t)(i % 2), to = 1 - from;

                scheduler_detach(s, from, 1);
                assert_int_equal(attach(s, to, 1), 0);
                if (!progresses(&a, 2))
                        fail_msg("move %d (GPU %u to %u): the moved vGPU gets no slice: "
                                 "grant %u, grant_seq %llu, yield_seq %llu, waiting %u",
                                 i, from, to, a.p->grant, (unsigned long long)a.p->grant_seq,
                                 (unsigned long long)a.p->yield_seq, a.p->waiting);
                if (!progresses(&b, 1))
                        fail_msg("move %d: the bystander on GPU 0 gets no slice", i);
        }
        scheduler_free(s);
        /* without vgpud the engines run freely */
        assert_int_equal(a.p->gated, 0);
        assert_int_equal(b.p->gated, 0);
        engine_stop(&a);
        engine_stop(&b);
}

static void test_attach_twice_moves(void **state)
{
        struct scheduler *s;
        struct engine a = {0};
        struct sched_stats st;

        (void)state;
        assert_int_equal(scheduler_new(2, &s), 0);
        engine_start(&a, 7);
        assert_int_equal(attach(s, 0, 7), 0);
        assert_true(progresses(&a, 3));
        /* attached again, elsewhere, with no detach: it is GPU 1's alone now */
        assert_int_equal(attach(s, 1, 7), 0);
        assert_int_equal(scheduler_stats(s, 0, 7, &st), -ENOENT);
        assert_int_equal(scheduler_stats(s, 1, 7, &st), 0);
        for (int i = 0; i < 20; i++)
                assert_true(progresses(&a, 2));
        /* and again on the same GPU: still one entry, still served */
        assert_int_equal(attach(s, 1, 7), 0);
        assert_true(progresses(&a, 5));
        scheduler_detach(s, 1, 7);
        assert_int_equal(scheduler_stats(s, 1, 7, &st), -ENOENT);
        assert_int_equal(a.p->gated, 0);
        assert_int_equal(a.p->grant, 0);
        scheduler_free(s);
        engine_stop(&a);
}

static void test_takeover_of_a_dead_grant(void **state)
{
        struct scheduler *s;
        struct engine a = {0};
        char path[256];
        int fd;
        struct vgpu_sched_page *p;

        (void)state;
        /* the page as a vgpud killed mid-grant left it: granted, never ended */
        page_path(9, path, sizeof(path));
        assert_int_equal(scheduler_page_create(path), 0);
        fd = open(path, O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        p = mmap(NULL, VGPU_SCHED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        assert_true(p != MAP_FAILED);
        p->gated = 1;
        p->grant = 1;
        p->grant_seq = 41;
        p->yield_seq = 40;
        p->slice_used_ns = 123;
        assert_int_equal(scheduler_new(1, &s), 0);
        assert_int_equal(scheduler_attach(s, 0, 0, 9, path, 4, false), 0);
        /* taken back at once: no engine is told it holds a slice nobody granted */
        assert_false(granted(p) && p->grant_seq == 41);
        munmap(p, VGPU_SCHED_SIZE);
        /* and an engine on it is served */
        fd = open(path, O_RDWR | O_CLOEXEC);
        a.p = mmap(NULL, VGPU_SCHED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        assert_true(a.p != MAP_FAILED);
        assert_int_equal(pthread_create(&a.thread, NULL, engine_main, &a), 0);
        assert_true(progresses(&a, 5));
        scheduler_free(s);
        engine_stop(&a);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_move_back_and_forth),
                cmocka_unit_test(test_attach_twice_moves),
                cmocka_unit_test(test_takeover_of_a_dead_grant),
        };
        int r;

        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        r = cmocka_run_group_tests(tests, NULL, NULL);
        for (uint32_t h = 0; h < 10; h++) {
                char path[256];

                page_path(h, path, sizeof(path));
                unlink(path);
        }
        rmdir(dir);
        return r;
}
