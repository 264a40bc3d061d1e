// SPDX-License-Identifier: Apache-2.0
// vgpud's scheduler threads (src/manager/scheduler.c) against a stand-in engine that plays the
// engine's side of the scheduler's page (common/schedpage.h) the way engine/session_gate.c does:
//  - a busy vGPU moved back and forth between two GPUs (detach from one, attach to the other,
//    the same page, as a migration does) keeps getting slices: the old GPU's thread must not end
//    its last grant on the page after the new GPU's thread granted one (it once did, and both
//    waited for each other forever);
//  - attaching a vGPU that is attached elsewhere moves it: one thread grants it, not two;
//  - a page left mid-grant by a vgpud that died is taken over cleanly;
//  - pages vgpud cannot drive are refused; a new page is a new file;
//  - each grant stores its own grant word (an engine that read the last one does not sleep
//    through the next);
//  - a throttled vGPU's idle time keeps the heartbeat fresh and does not hold up a detach;
//  - the counts of a process that died with them raised (schedpage.h's slots) do not count.
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
#include <sys/wait.h>
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
        /* a launch per grant: 0 = the whole slice at once; else this much accounted time,
         * taking as long in wall time */
        uint64_t launch_ns;
        uint32_t grant_values[2]; /* the last two grant words it ran under */
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
                e->grant_values[0] = e->grant_values[1];
                e->grant_values[1] = __atomic_load_n(&p->grant, __ATOMIC_ACQUIRE);
                if (e->launch_ns)
                        usleep((useconds_t)(e->launch_ns / 1000));
                __atomic_add_fetch(&p->launches, 1, __ATOMIC_RELEASE);
                __atomic_add_fetch(&p->slice_used_ns,
                                   e->launch_ns ? e->launch_ns
                                                : __atomic_load_n(&p->slice_ns, __ATOMIC_ACQUIRE),
                                   __ATOMIC_ACQ_REL);
                uint64_t old = __atomic_load_n(&p->yield_seq, __ATOMIC_ACQUIRE);

                while (old < seq &&
                       !__atomic_compare_exchange_n(&p->yield_seq, &old, seq, false,
                                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                        ;
                if (old < seq) {
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

/* A page vgpud cannot drive (short: it would fault; not a scheduler page) is refused. */
static void test_attach_refuses_bad_pages(void **state)
{
        struct scheduler *s;
        char path[256];
        struct vgpu_sched_page bad = {.magic = VGPU_SCHED_MAGIC, .version = VGPU_SCHED_VERSION + 1};
        char buf[VGPU_SCHED_SIZE] = {0};
        int fd;

        (void)state;
        assert_int_equal(scheduler_new(1, &s), 0);
        page_path(3, path, sizeof(path));
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); /* 0 bytes: a crash's */
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(scheduler_attach(s, 0, 0, 3, path, 4, false), -EPROTO);
        fd = open(path, O_RDWR | O_TRUNC | O_CLOEXEC);
        memcpy(buf, &bad, sizeof(bad));
        assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
        close(fd);
        assert_int_equal(scheduler_attach(s, 0, 0, 3, path, 4, false), -EPROTO);
        assert_int_equal(scheduler_page_create(path), 0);
        assert_int_equal(scheduler_attach(s, 0, 0, 3, path, 4, false), 0);
        scheduler_free(s);
}

/* A new page is a new file: what a dead engine's worker still writes to the old one is lost. */
static void test_page_create_replaces(void **state)
{
        char path[256], tmp[300];
        struct vgpu_sched_page *old, *now;
        int fd;

        (void)state;
        page_path(4, path, sizeof(path));
        assert_int_equal(scheduler_page_create(path), 0);
        fd = open(path, O_RDWR | O_CLOEXEC);
        old = mmap(NULL, VGPU_SCHED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        assert_true(old != MAP_FAILED);
        assert_int_equal(scheduler_page_create(path), 0);
        old->waiting = 0xffffffffu; /* a late decrement below zero */
        old->busy = 1;
        fd = open(path, O_RDWR | O_CLOEXEC);
        now = mmap(NULL, VGPU_SCHED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        assert_true(now != MAP_FAILED);
        assert_int_equal(now->magic, VGPU_SCHED_MAGIC);
        assert_int_equal(now->waiting, 0);
        assert_int_equal(now->busy, 0);
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        assert_int_equal(access(tmp, F_OK), -1); /* nothing left beside it */
        munmap(old, VGPU_SCHED_SIZE);
        munmap(now, VGPU_SCHED_SIZE);
}

/* Two grants in a row store different grant words: a waiter that read one wakes for the next. */
static void test_grant_words_differ(void **state)
{
        struct scheduler *s;
        struct engine a = {0};

        (void)state;
        assert_int_equal(scheduler_new(1, &s), 0);
        engine_start(&a, 5);
        assert_int_equal(attach(s, 0, 5), 0);
        assert_true(progresses(&a, 10));
        scheduler_free(s); /* the engine runs freely: its last two grants stay as they were */
        assert_int_not_equal(a.grant_values[0], 0);
        assert_int_not_equal(a.grant_values[1], 0);
        assert_int_not_equal(a.grant_values[0], a.grant_values[1]);
        engine_stop(&a);
}

/*
 * A throttled vGPU alone on its GPU: the GPU idles 19 times as long as it ran. Meanwhile the
 * page's heartbeat stays fresh (a second without one and the engine runs ungated, throttle and
 * all), and a detach does not wait for the idle time to pass.
 */
static void test_throttled_idle_beats(void **state)
{
        struct scheduler *s;
        struct engine a = {.launch_ns = 60000000ull}; /* 60 ms: 1.14 s of idle after each */
        uint64_t worst = 0, until, t0;

        (void)state;
        assert_int_equal(scheduler_new(1, &s), 0);
        engine_start(&a, 6);
        assert_int_equal(attach(s, 0, 6), 0);
        scheduler_throttle(s, 0, 6, true);
        assert_true(progresses(&a, 2));
        until = chan_now_ns() + 2500000000ull;
        while (chan_now_ns() < until) {
                uint64_t age =
                        chan_now_ns() - __atomic_load_n(&a.p->heartbeat_ns, __ATOMIC_ACQUIRE);

                worst = age > worst ? age : worst;
                assert_int_equal(__atomic_load_n(&a.p->gated, __ATOMIC_ACQUIRE), 1);
                usleep(5000);
        }
        if (worst >= 900000000ull)
                fail_msg("the heartbeat went %llu ms stale during the throttled vGPU's idle time",
                         (unsigned long long)(worst / 1000000));
        t0 = chan_now_ns();
        scheduler_detach(s, 0, 6);
        t0 = chan_now_ns() - t0;
        if (t0 >= 900000000ull)
                fail_msg("the detach waited %llu ms", (unsigned long long)(t0 / 1000000));
        scheduler_free(s);
        engine_stop(&a);
}

/* A process that has ended, its pid reaped: for counts that outlived it. */
static int32_t dead_pid(void)
{
        pid_t pid = fork();

        if (pid == 0)
                _exit(0);
        assert_true(pid > 0);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        return (int32_t)pid;
}

/*
 * The counts of a process that died between raising and lowering them (a worker killed
 * mid-launch) do not count: its vGPU's grant is taken back, and a bystander runs on. While the
 * process lives they count.
 */
static void test_dead_process_counts(void **state)
{
        struct scheduler *s;
        struct engine b = {0};
        struct vgpu_sched_page *a;
        char path[256];
        uint64_t until;
        int fd;

        (void)state;
        page_path(8, path, sizeof(path));
        assert_int_equal(scheduler_page_create(path), 0);
        fd = open(path, O_RDWR | O_CLOEXEC);
        a = mmap(NULL, VGPU_SCHED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        assert_true(a != MAP_FAILED);
        engine_start(&b, 2);
        assert_int_equal(scheduler_new(1, &s), 0);
        assert_int_equal(attach(s, 0, 2), 0);
        assert_int_equal(scheduler_attach(s, 0, 0, 8, path, 4, false), 0);
        assert_true(progresses(&b, 3));
        /* a live process of A's waits: A gets a grant (and, with nobody to use it, keeps it) */
        a->slots[5].pid = (int32_t)getpid();
        __atomic_store_n(&a->slots[5].waiting, 1, __ATOMIC_RELEASE);
        until = chan_now_ns() + WAIT_NS;
        while (!__atomic_load_n(&a->grant, __ATOMIC_ACQUIRE) && chan_now_ns() < until)
                usleep(200);
        assert_int_not_equal(__atomic_load_n(&a->grant, __ATOMIC_ACQUIRE), 0);
        /* it dies with its counts raised, a launch running: they stop counting */
        __atomic_store_n(&a->slots[5].busy, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&a->slots[5].pid, dead_pid(), __ATOMIC_RELEASE);
        if (!progresses(&b, 20))
                fail_msg("the bystander gets no slice while A's dead process's counts stand: "
                         "A's grant %u, grant_seq %llu, yield_seq %llu",
                         a->grant, (unsigned long long)a->grant_seq,
                         (unsigned long long)a->yield_seq);
        assert_int_equal(__atomic_load_n(&a->grant, __ATOMIC_ACQUIRE), 0);
        scheduler_free(s);
        engine_stop(&b);
        munmap(a, VGPU_SCHED_SIZE);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_move_back_and_forth),
                cmocka_unit_test(test_attach_twice_moves),
                cmocka_unit_test(test_takeover_of_a_dead_grant),
                cmocka_unit_test(test_attach_refuses_bad_pages),
                cmocka_unit_test(test_page_create_replaces),
                cmocka_unit_test(test_grant_words_differ),
                cmocka_unit_test(test_throttled_idle_beats),
                cmocka_unit_test(test_dead_process_counts),
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
