// SPDX-License-Identifier: Apache-2.0
// Guest test: streams and events. Stream flags and priorities, query and synchronize,
// cuStreamWaitEvent across streams, cuLaunchHostFunc ordering, the legacy default stream's
// implicit synchronisation, streams that a held stream must not hold, destroying a busy stream;
// events: record, query, synchronize, elapsed time and its error cases. Host functions that block
// until released ("gates") make the NOT_READY states deterministic.
#include "check.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

// A host function that blocks its stream until the test opens it (or 20 s pass: longer than any
// check_wait_until, so that a check that waits for the gated stream cannot race its timeout).
struct gate {
        atomic_int open;
        atomic_int entered;
};

static void CUDA_CB gate_fn(void *p)
{
        struct gate *g = p;
        struct timespec one = {0, 1000000};

        atomic_store(&g->entered, 1);
        for (int i = 0; i < 20000 && !atomic_load(&g->open); i++)
                nanosleep(&one, NULL);
}

static void gate_reset(struct gate *g)
{
        atomic_store(&g->open, 0);
        atomic_store(&g->entered, 0);
}

static void gate_open(struct gate *g)
{
        atomic_store(&g->open, 1);
}

// Host functions record what they saw, in the order they ran.
struct trace {
        atomic_int seq;
        int order[128];
        uint32_t seen[128];
        volatile uint32_t *watch;
};

struct trace_call {
        struct trace *t;
        int slot;
};

static void CUDA_CB trace_fn(void *p)
{
        struct trace_call *c = p;

        c->t->order[c->slot] = atomic_fetch_add(&c->t->seq, 1);
        c->t->seen[c->slot] = c->t->watch ? *c->t->watch : 0;
}

static bool null_stream_idle(void *arg)
{
        (void)arg;
        return cuStreamQuery(NULL) == CUDA_SUCCESS;
}

static bool flag_set(void *arg)
{
        return atomic_load((atomic_int *)arg) != 0;
}

static void CUDA_CB set_flag_fn(void *p)
{
        atomic_store((atomic_int *)p, 1);
}

static uint32_t read_u32(CUdeviceptr d)
{
        uint32_t v = 0xffffffffu;

        cuMemcpyDtoH(&v, d, sizeof(v));
        return v;
}

static void test_stream_create(void)
{
        int least = 99;
        int greatest = 99;
        int prio = 99;
        unsigned flags = 99;
        CUstream s;

        CK(cuCtxGetStreamPriorityRange(&least, &greatest));
        check_true(greatest <= least, "stream priority range: least %d, greatest %d", least,
                   greatest);
        if (CK(cuStreamCreate(&s, CU_STREAM_DEFAULT))) {
                CK(cuStreamGetFlags(s, &flags));
                check_true(flags == CU_STREAM_DEFAULT, "CU_STREAM_DEFAULT stream flags = %u",
                           flags);
                CK(cuStreamQuery(s));
                CK(cuStreamSynchronize(s));
                CK(cuStreamDestroy(s));
        }
        if (CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING))) {
                CK(cuStreamGetFlags(s, &flags));
                check_true(flags == CU_STREAM_NON_BLOCKING,
                           "CU_STREAM_NON_BLOCKING stream flags = %u", flags);
                CK(cuStreamDestroy(s));
        }
        if (CK(cuStreamCreateWithPriority(&s, CU_STREAM_NON_BLOCKING, greatest))) {
                CK(cuStreamGetPriority(s, &prio));
                check_true(prio == greatest, "stream priority = %d (want %d)", prio, greatest);
                CK(cuStreamDestroy(s));
        }
        // Out-of-range priorities are clamped to the range.
        if (CK(cuStreamCreateWithPriority(&s, 0, greatest - 100))) {
                CK(cuStreamGetPriority(s, &prio));
                check_true(prio == greatest, "priority below the range is clamped to %d (got %d)",
                           greatest, prio);
                CK(cuStreamDestroy(s));
        }
        if (CK(cuStreamCreateWithPriority(&s, 0, least + 100))) {
                CK(cuStreamGetPriority(s, &prio));
                check_true(prio == least, "priority above the range is clamped to %d (got %d)",
                           least, prio);
                CK(cuStreamDestroy(s));
        }
        CK_RES(cuStreamCreate(NULL, 0), CUDA_ERROR_INVALID_VALUE);
        CK(cuStreamQuery(NULL));
        CK(cuStreamSynchronize(NULL));
}

static void test_gated(CUdeviceptr d)
{
        struct gate g;
        CUstream s1 = NULL;
        CUstream s2 = NULL;
        CUevent before = NULL;
        CUevent after = NULL;
        CUmodule mod = NULL;
        CUfunction add_one = NULL;
        int n = 0;
        void *params[] = {&d, &n};
        float ms = -1;

        gate_reset(&g);
        if (!CK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING)) ||
            !CK(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING)) ||
            !CK(cuEventCreate(&before, CU_EVENT_DEFAULT)) ||
            !CK(cuEventCreate(&after, CU_EVENT_DEFAULT)))
                goto out;

        // Load and launch add_one once before any gate closes: with lazy loading, a kernel's
        // first launch may wait for the context to go idle, which a closed gate would prevent.
        if (!check_load_kernels(&mod) || !check_function(mod, "add_one", &add_one) ||
            !CK(cuLaunchKernel(add_one, 1, 1, 1, 32, 1, 1, 0, s2, params, NULL)) ||
            !CK(cuStreamSynchronize(s2)))
                goto out;
        n = 1;

        // s1: [before] [gate] [memset d = 7] [after]; s2 waits for `after`, then d += 1.
        CK(cuEventRecord(before, s1));
        CK(cuLaunchHostFunc(s1, gate_fn, &g));
        CK(cuMemsetD32Async(d, 7, 1, s1));
        CK(cuEventRecord(after, s1));
        CK(cuStreamWaitEvent(s2, after, 0));
        CK(cuLaunchKernel(add_one, 1, 1, 1, 32, 1, 1, 0, s2, params, NULL));
        CK_RES(cuStreamQuery(s1), CUDA_ERROR_NOT_READY);
        CK_RES(cuEventQuery(after), CUDA_ERROR_NOT_READY);
        CK_RES(cuStreamQuery(s2), CUDA_ERROR_NOT_READY);
        CK_RES(cuEventElapsedTime(&ms, before, after), CUDA_ERROR_NOT_READY);

        gate_open(&g);
        CK(cuStreamSynchronize(s2));
        check_true(atomic_load(&g.entered) == 1, "the gate host function ran");
        CK(cuEventQuery(after));
        CK(cuStreamQuery(s1));
        uint32_t v = read_u32(d);
        check_true(v == 8, "cuStreamWaitEvent ordered s2's kernel after s1's memset (d = %u)", v);
        ms = -1;
        CK(cuEventElapsedTime(&ms, before, after));
        check_true(ms >= 0.0f, "elapsed time across the gate = %.3f ms >= 0", (double)ms);
out:
        gate_open(&g);
        if (s1)
                CK(cuStreamSynchronize(s1));
        if (mod)
                CK(cuModuleUnload(mod));
        if (s1)
                CK(cuStreamDestroy(s1));
        if (s2)
                CK(cuStreamDestroy(s2));
        if (before)
                CK(cuEventDestroy(before));
        if (after)
                CK(cuEventDestroy(after));
}

static void test_host_func_order(CUdeviceptr d)
{
        static struct trace t;
        static struct trace_call calls[128];
        uint32_t *pinned = NULL;
        CUstream s = NULL;
        CUmodule mod = NULL;
        CUfunction add_one = NULL;

        if (!CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING)) ||
            !CK(cuMemAllocHost((void **)&pinned, 4)) || !check_load_kernels(&mod) ||
            !check_function(mod, "add_one", &add_one))
                goto out;
        memset(&t, 0, sizeof(t));
        atomic_store(&t.seq, 0);
        t.watch = pinned;
        *pinned = 0;
        for (int i = 0; i < 128; i++)
                calls[i] = (struct trace_call){&t, i};

        // A host function sees the effects of the copies before it in its stream.
        int n = 1;
        void *params[] = {&d, &n};
        CK(cuMemsetD32Async(d, 0x1234, 1, s));
        CK(cuMemcpyDtoHAsync(pinned, d, 4, s));
        CK(cuLaunchHostFunc(s, trace_fn, &calls[0]));
        CK(cuLaunchKernel(add_one, 1, 1, 1, 32, 1, 1, 0, s, params, NULL));
        CK(cuMemcpyDtoHAsync(pinned, d, 4, s));
        CK(cuLaunchHostFunc(s, trace_fn, &calls[1]));
        for (int i = 2; i < 128; i++)
                CK(cuLaunchHostFunc(s, trace_fn, &calls[i]));
        CK(cuStreamSynchronize(s));
        check_true(t.seen[0] == 0x1234 && t.seen[1] == 0x1235,
                   "host functions see preceding work in their stream (0x%x, 0x%x)", t.seen[0],
                   t.seen[1]);
        bool ordered = atomic_load(&t.seq) == 128;
        for (int i = 0; i < 128; i++)
                ordered &= t.order[i] == i;
        check_true(ordered, "128 host functions on one stream ran once each, in order");

        // The NULL stream takes host functions too.
        atomic_int flag = 0;
        CK(cuLaunchHostFunc(NULL, set_flag_fn, &flag));
        CK(cuStreamSynchronize(NULL));
        check_true(atomic_load(&flag) == 1, "a host function on the NULL stream ran");
        CK_RES(cuLaunchHostFunc(s, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
out:
        if (mod)
                CK(cuModuleUnload(mod));
        if (pinned)
                CK(cuMemFreeHost(pinned));
        if (s)
                CK(cuStreamDestroy(s));
}

static void test_legacy_stream(CUdeviceptr d)
{
        struct gate g;
        CUstream blocking = NULL;
        CUstream nonblocking = NULL;

        // Work on the legacy NULL stream waits for blocking streams...
        gate_reset(&g);
        if (CK(cuStreamCreate(&blocking, CU_STREAM_DEFAULT))) {
                CK(cuLaunchHostFunc(blocking, gate_fn, &g));
                CK(cuMemsetD32Async(d, 5, 1, NULL));
                CK_RES(cuStreamQuery(NULL), CUDA_ERROR_NOT_READY);
                gate_open(&g);
                CK(cuCtxSynchronize());
                check_true(read_u32(d) == 5, "the NULL stream's memset ran after the gate");
                CK(cuStreamDestroy(blocking));
        }
        // ...but not for non-blocking ones.
        gate_reset(&g);
        if (CK(cuStreamCreate(&nonblocking, CU_STREAM_NON_BLOCKING))) {
                CK(cuLaunchHostFunc(nonblocking, gate_fn, &g));
                CK(cuMemsetD32Async(d, 6, 1, NULL));
                bool done = check_wait_until(null_stream_idle, NULL, 10000);
                CK_RES(cuStreamQuery(nonblocking), CUDA_ERROR_NOT_READY);
                gate_open(&g);
                check_true(done, "the NULL stream does not wait for a CU_STREAM_NON_BLOCKING "
                                 "stream");
                CK(cuStreamSynchronize(nonblocking));
                CK(cuStreamDestroy(nonblocking));
        }
}

static bool stream_idle(void *arg)
{
        return cuStreamQuery((CUstream)arg) == CUDA_SUCCESS;
}

// Streams run independently: a held stream holds exactly what must wait for it.
static void test_stream_independence(void)
{
        struct gate g;
        CUstream nb1 = NULL, nb2 = NULL, blk = NULL, blk2 = NULL;
        CUevent e = NULL;
        CUdeviceptr b = 0;

        if (!CK(cuMemAlloc(&b, 64)) || !CK(cuStreamCreate(&nb1, CU_STREAM_NON_BLOCKING)) ||
            !CK(cuStreamCreate(&nb2, CU_STREAM_NON_BLOCKING)) ||
            !CK(cuStreamCreate(&blk, CU_STREAM_DEFAULT)) ||
            !CK(cuStreamCreate(&blk2, CU_STREAM_DEFAULT)) ||
            !CK(cuEventCreate(&e, CU_EVENT_DISABLE_TIMING)))
                goto out;

        // A held non-blocking stream holds no other stream.
        gate_reset(&g);
        CK(cuLaunchHostFunc(nb1, gate_fn, &g));
        CK(cuMemsetD32Async(b, 1, 1, nb1));
        CK(cuMemsetD32Async(b + 4, 2, 1, nb2));
        check_true(check_wait_until(stream_idle, nb2, 10000),
                   "a held non-blocking stream does not hold another non-blocking stream");
        CK(cuStreamSynchronize(nb2));
        CK(cuMemsetD32Async(b + 8, 3, 1, blk));
        CK(cuStreamSynchronize(blk));
        CK(cuMemsetD32Async(b + 12, 4, 1, NULL));
        CK(cuStreamSynchronize(NULL));
        CK_RES(cuStreamQuery(nb1), CUDA_ERROR_NOT_READY);
        check_true(read_u32(b + 4) == 2 && read_u32(b + 8) == 3 && read_u32(b + 12) == 4,
                   "other streams' work ran while a non-blocking stream was held");
        gate_open(&g);
        CK(cuStreamSynchronize(nb1));
        check_true(read_u32(b) == 1, "the held stream went on once released");

        // A held blocking stream holds the NULL stream (and what waits for it), not the others.
        gate_reset(&g);
        CK(cuLaunchHostFunc(blk, gate_fn, &g));
        CK(cuMemsetD32Async(b + 16, 5, 1, NULL));
        CK(cuMemsetD32Async(b + 20, 6, 1, nb2));
        CK(cuMemsetD32Async(b + 24, 7, 1, blk2));
        check_true(check_wait_until(stream_idle, nb2, 10000),
                   "a held blocking stream does not hold a non-blocking stream");
        CK(cuStreamSynchronize(nb2));
        CK_RES(cuStreamQuery(NULL), CUDA_ERROR_NOT_READY);
        CK_RES(cuStreamQuery(blk2), CUDA_ERROR_NOT_READY);
        gate_open(&g);
        CK(cuCtxSynchronize());
        check_true(read_u32(b + 16) == 5 && read_u32(b + 20) == 6 && read_u32(b + 24) == 7,
                   "the NULL stream and a later blocking stream ran once the blocking stream was "
                   "released");

        // cuStreamWaitEvent across streams; cuStreamQuery(NULL) does not see a non-blocking
        // stream's held work.
        gate_reset(&g);
        CK(cuLaunchHostFunc(nb1, gate_fn, &g));
        CK(cuMemsetD32Async(b + 28, 8, 1, nb1));
        CK(cuEventRecord(e, nb1));
        CK(cuStreamWaitEvent(nb2, e, 0));
        CK(cuMemsetD32Async(b + 28, 9, 1, nb2));
        CK(cuMemsetD32Async(b + 32, 10, 1, NULL));
        check_true(check_wait_until(null_stream_idle, NULL, 10000),
                   "cuStreamQuery(NULL) does not see a non-blocking stream's held work");
        CK_RES(cuEventQuery(e), CUDA_ERROR_NOT_READY);
        CK_RES(cuStreamQuery(nb2), CUDA_ERROR_NOT_READY);
        gate_open(&g);
        CK(cuStreamSynchronize(nb2));
        CK(cuEventQuery(e));
        check_true(read_u32(b + 28) == 9 && read_u32(b + 32) == 10,
                   "cuStreamWaitEvent orders a stream after another stream's event");

        // The per-thread default stream is a blocking stream of its own.
        gate_reset(&g);
        CK(cuLaunchHostFunc(CU_STREAM_PER_THREAD, gate_fn, &g));
        CK(cuMemsetD32Async(b + 36, 11, 1, nb2));
        CK(cuStreamSynchronize(nb2));
        CK_RES(cuStreamQuery(CU_STREAM_PER_THREAD), CUDA_ERROR_NOT_READY);
        CK(cuMemsetD32Async(b + 40, 12, 1, NULL));
        CK_RES(cuStreamQuery(NULL), CUDA_ERROR_NOT_READY);
        gate_open(&g);
        CK(cuCtxSynchronize());
        check_true(read_u32(b + 36) == 11 && read_u32(b + 40) == 12,
                   "the NULL stream waits for the per-thread stream, a non-blocking one does not");
out:
        if (e)
                CK(cuEventDestroy(e));
        if (nb1)
                CK(cuStreamDestroy(nb1));
        if (nb2)
                CK(cuStreamDestroy(nb2));
        if (blk)
                CK(cuStreamDestroy(blk));
        if (blk2)
                CK(cuStreamDestroy(blk2));
        if (b)
                CK(cuMemFree(b));
}

static void test_destroy_busy(CUdeviceptr d)
{
        struct gate g;
        atomic_int flag = 0;
        CUstream s = NULL;

        gate_reset(&g);
        if (!CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING)))
                return;
        CK(cuMemsetD32Async(d, 1, 1, s));
        CK(cuLaunchHostFunc(s, gate_fn, &g));
        CK(cuMemsetD32Async(d, 9, 1, s));
        CK(cuLaunchHostFunc(s, set_flag_fn, &flag));
        CK(cuStreamDestroy(s));
        gate_open(&g);
        bool ran = check_wait_until(flag_set, &flag, 30000);
        check_true(ran, "work queued before cuStreamDestroy still runs");
        CK(cuCtxSynchronize());
        check_true(read_u32(d) == 9, "a destroyed stream's last memset took effect");
}

static void test_events(CUdeviceptr d)
{
        CUevent e1 = NULL;
        CUevent e2 = NULL;
        CUevent e3 = NULL;
        CUevent notime = NULL;
        CUevent blocking = NULL;
        CUstream s = NULL;
        float ms = -1;
        float ms2 = -1;

        if (!CK(cuEventCreate(&e1, CU_EVENT_DEFAULT)) ||
            !CK(cuEventCreate(&e2, CU_EVENT_DEFAULT)) ||
            !CK(cuEventCreate(&e3, CU_EVENT_DEFAULT)) ||
            !CK(cuEventCreate(&notime, CU_EVENT_DISABLE_TIMING)) ||
            !CK(cuEventCreate(&blocking, CU_EVENT_BLOCKING_SYNC)) ||
            !CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING)))
                goto out;
        CK_RES(cuEventCreate(NULL, 0), CUDA_ERROR_INVALID_VALUE);

        // Never recorded: complete, but no time.
        CK(cuEventQuery(e1));
        CK(cuEventSynchronize(e1));
        CK_RES(cuEventElapsedTime(&ms, e1, e2), CUDA_ERROR_INVALID_HANDLE);

        CK(cuEventRecord(e1, s));
        CK(cuMemsetD32Async(d, 3, 1 << 16, s));
        CK(cuEventRecord(e2, s));
        CK(cuMemsetD32Async(d, 4, 1 << 16, s));
        CK(cuEventRecord(e3, s));
        CK(cuEventRecord(notime, s));
        CK(cuEventRecord(blocking, s));
        CK(cuEventSynchronize(blocking));
        CK(cuEventQuery(e3));
        CK(cuEventQuery(notime));
        CK(cuEventElapsedTime(&ms, e1, e2));
        CK(cuEventElapsedTime(&ms2, e1, e3));
        check_true(ms >= 0.0f && ms2 >= ms, "elapsed times e1->e2 %.4f ms <= e1->e3 %.4f ms",
                   (double)ms, (double)ms2);
        CK_RES(cuEventElapsedTime(&ms, e1, notime), CUDA_ERROR_INVALID_HANDLE);
        CK_RES(cuEventElapsedTime(&ms, notime, e3), CUDA_ERROR_INVALID_HANDLE);
        CK_RES(cuEventElapsedTime(NULL, e1, e3), CUDA_ERROR_INVALID_VALUE);

        // Recording on the NULL stream; re-recording replaces the captured work.
        CK(cuEventRecord(e1, NULL));
        CK(cuEventSynchronize(e1));
        CK(cuEventRecord(e1, NULL));
        CK(cuEventRecord(e2, NULL));
        CK(cuEventSynchronize(e2));
        CK(cuEventElapsedTime(&ms, e1, e2));
        check_true(ms >= 0.0f, "elapsed time between NULL-stream events %.4f ms >= 0", (double)ms);
out:
        if (s)
                CK(cuStreamDestroy(s));
        if (e1)
                CK(cuEventDestroy(e1));
        if (e2)
                CK(cuEventDestroy(e2));
        if (e3)
                CK(cuEventDestroy(e3));
        if (notime)
                CK(cuEventDestroy(notime));
        if (blocking)
                CK(cuEventDestroy(blocking));
}

// Several streams at once, each filling its own buffer; the results must not mix.
static void test_many_streams(CUdeviceptr d)
{
        enum { NS = 4, N = 2048 };
        CUstream s[NS] = {0};
        CUmodule mod = NULL;
        CUfunction fill = NULL;
        static uint32_t back[NS * N];
        bool ok = true;

        if (!check_load_kernels(&mod) || !check_function(mod, "fill_u32", &fill))
                goto out;
        for (int i = 0; i < NS; i++) {
                if (!CK(cuStreamCreate(&s[i], CU_STREAM_NON_BLOCKING)))
                        goto out;
        }
        for (int round = 0; round < 3; round++) {
                for (int i = 0; i < NS; i++) {
                        CUdeviceptr p = d + (CUdeviceptr)i * N * 4;
                        unsigned v = (unsigned)(round * 100 + i + 1);
                        int n = N;
                        void *params[] = {&p, &v, &n};
                        if (cuLaunchKernel(fill, N / 256, 1, 1, 256, 1, 1, 0, s[i], params, NULL) !=
                            CUDA_SUCCESS)
                                ok = false;
                }
        }
        for (int i = 0; i < NS; i++)
                CK(cuStreamSynchronize(s[i]));
        CK(cuMemcpyDtoH(back, d, sizeof(back)));
        for (int i = 0; i < NS; i++) {
                for (int j = 0; j < N; j++)
                        ok &= back[i * N + j] == (unsigned)(200 + i + 1);
        }
        check_true(ok, "%d streams x 3 launches each: every buffer holds its stream's last value",
                   NS);
out:
        for (int i = 0; i < NS; i++) {
                if (s[i])
                        CK(cuStreamDestroy(s[i]));
        }
        if (mod)
                CK(cuModuleUnload(mod));
}

int main(void)
{
        CUdevice dev;
        CUcontext ctx;
        CUdeviceptr d = 0;

        if (!check_setup(&dev, &ctx))
                return check_done();
        if (CK(cuMemAlloc(&d, 1 << 20))) {
                test_stream_create();
                test_gated(d);
                test_host_func_order(d);
                test_legacy_stream(d);
                test_stream_independence();
                test_destroy_busy(d);
                test_events(d);
                test_many_streams(d);
                CK(cuMemFree(d));
        }
        check_teardown(dev);
        return check_done();
}
