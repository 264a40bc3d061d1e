// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the engine's side of the guest channel: an input is bytes for the staging
// area then a sequence of commands, pushed into a real session's ring as a hostile guest would.
// The session must answer or close the channel, never crash, and never touch memory outside its
// vGPU's framebuffer (ASan watches). A session that closed its channel is replaced.
//
// Input: u16 staging length S, S bytes of staging, then records of u16 op, u16 length, payload.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/chan.h"
#include "common/log.h"
#include "engine/session.h"
#include "ptx/ptx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FB_SIZE (64u << 20)
#define FB_ADDR UINT64_C(0x300000000000)

static struct vgpu_dev dev;
static struct session *sess;
static struct chan_view view;
static uint64_t seq;

static void open_session(void)
{
        static uint32_t id;
        void *base;
        int fd;

        if (session_new(&dev, ++id, getpid(), 0, &sess, &fd) < 0)
                abort();
        base = mmap(NULL, chan_total_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED || chan_open(base, chan_total_size(), &view) < 0)
                abort();
        seq = 0;
}

static void close_session(void)
{
        munmap(view.base, view.size);
        session_free(sess);
        sess = NULL;
}

static void teardown(void)
{
        if (sess)
                close_session();
}

static void setup(void)
{
        struct backend_fb_req req = {
                .vgpu_uuid = "fuzz", .device_address = FB_ADDR, .size = FB_SIZE};
        /* A fuzzed grid may be huge: kernels end with PTX_ETIMEOUT instead of running for ages. */
        struct backend_dev_req dreq = {.sim_workers = 1, .sim_work_budget = 200000};

        vgpu_log_set_level(VGPU_LOG_ERROR);
        session_host_wait_ms = 0; /* no host block is ever announced here */
        dev.ops = &backend_sim_ops;
        if (dev.ops->dev_open(&dreq, &dev.bdev, NULL, 0) < 0 ||
            dev.ops->fb_reserve(dev.bdev, &req, &dev.fb) < 0)
                abort();
        fbmem_init(&dev.mem, dev.fb.device_address, dev.fb.size);
        open_session();
        atexit(teardown); /* joins the session's thread, which holds buffers of its own */
}

/* Push one record and wait until the session finished it or closed the channel. */
static void run(uint16_t op, uint32_t stream, const uint8_t *p, uint16_t len)
{
        struct vgpu_chan_ctl *ctl = view.ctl;

        if (chan_push_on(&view, op, stream, ++seq, p, len, NULL, 0) < 0)
                return;
        __atomic_add_fetch(&ctl->head_futex, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&ctl->head_futex);
        while (__atomic_load_n(&ctl->done_seq, __ATOMIC_ACQUIRE) < seq &&
               !__atomic_load_n(&ctl->engine_dead, __ATOMIC_ACQUIRE)) {
                uint32_t val = __atomic_load_n(&ctl->done_futex, __ATOMIC_SEQ_CST);

                __atomic_add_fetch(&ctl->guest_sleeping, 1, __ATOMIC_SEQ_CST);
                if (__atomic_load_n(&ctl->done_seq, __ATOMIC_ACQUIRE) < seq)
                        chan_futex_wait(&ctl->done_futex, val, 10);
                __atomic_sub_fetch(&ctl->guest_sleeping, 1, __ATOMIC_SEQ_CST);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        size_t off = 2;
        uint16_t slen;

        if (!sess)
                setup();
        if (size < 2)
                return 0;
        memcpy(&slen, data, 2);
        if (slen > size - 2)
                slen = (uint16_t)(size - 2);
        memcpy(view.stage, data + 2, slen);
        off += slen;
        while (off + 4 <= size && !view.ctl->engine_dead) {
                uint16_t op, len;

                memcpy(&op, data + off, 2);
                memcpy(&len, data + off + 2, 2);
                off += 4;
                if (len > size - off)
                        len = (uint16_t)(size - off);
                /* The op's high byte picks the stream slot. Host waits would wait for a
                 * release nobody gives: skip them. */
                if ((op & 0xff) != VGPU_OP_HOST_WAIT)
                        run(op & 0xff, (op >> 8) % VGPU_STREAMS, data + off, len);
                off += len;
        }
        /* Each input starts from a fresh guest: the last one's objects and memory go. */
        close_session();
        open_session();
        return 0;
}
