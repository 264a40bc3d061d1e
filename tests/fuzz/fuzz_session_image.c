// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for session_import (engine/session_image.c): an input is a session's bytes as
// a migration's peer sends them, a trust boundary. The import must build the session or refuse
// it with a message, never crash, leak or touch memory outside its vGPU's framebuffer (ASan
// watches). A session it builds is exported, started, paused once its queued commands ran or
// wait, and freed; what it exported imports again and exports the same bytes. The head that an
// engine with workers reads first (session_image_peek) agrees with what the import built.
//
// The allocator holds blocks of session 1, context 0 at FB_ADDR + k * 256, where the seeds
// (tests/unit/test_session_image.c, VGPU_SESSION_IMAGE_SEEDS=dir) placed their modules'
// variables, so that a module's variables can be placed again. A freed session takes its blocks
// with it: they are made again before each input.
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "engine/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* as in test_session_image.c, which writes the seeds */
#define FB_SIZE  (64u << 20)
#define FB_ADDR  UINT64_C(0x300000000000)
#define N_BLOCKS 8
#define BLOCK    256u
#define OWNER    (UINT64_C(1) << 32) /* session 1, context 0 */
#define TOKEN    40                  /* offset of the token in the image: export makes a new one */

static struct vgpu_dev dev;
static bool ready;

static void setup(void)
{
        struct backend_fb_req req = {
                .vgpu_uuid = "fuzz-image", .device_address = FB_ADDR, .size = FB_SIZE};
        /* A queued launch may have a huge grid: it ends with PTX_ETIMEOUT instead. */
        struct backend_dev_req dreq = {.sim_workers = 1, .sim_work_budget = 200000};

        vgpu_log_set_level(VGPU_LOG_ERROR);
        session_host_wait_ms = 0; /* no host block is ever announced here */
        dev.ops = &backend_sim_ops;
        if (dev.ops->dev_open(&dreq, &dev.bdev, NULL, 0) < 0 ||
            dev.ops->fb_reserve(dev.bdev, &req, &dev.fb) < 0)
                abort();
        fbmem_init(&dev.mem, dev.fb.device_address, dev.fb.size);
        ready = true;
}

/* The blocks a module's variables may be placed in again: made anew where a session took them. */
static void make_blocks(void)
{
        for (uint32_t k = 0; k < N_BLOCKS; k++) {
                uint64_t base = FB_ADDR + k * BLOCK;
                struct fbmem_block b;

                if (fbmem_find(&dev.mem, base, BLOCK, OWNER, &b) == 0 && b.base == base)
                        continue;
                if (fbmem_alloc_at(&dev.mem, base, BLOCK, OWNER) < 0)
                        abort(); /* something else took the range: the harness is broken */
        }
}

/* Its bytes again: the same but for the new token (export makes one), next_slot (taken modulo the
 * stream count) and the order of queued commands (by stream slot here). */
static void export_again(struct session *s, size_t size, uint8_t **ret, size_t *ret_len)
{
        if (session_export(s, ret, ret_len) < 0 || *ret_len != size)
                abort();
}

/* What an import of exported bytes exports is those bytes: nothing the import accepts is lost or
 * changed on the way (the token aside). */
static void check_fixed_point(const uint8_t *img, size_t len)
{
        struct session *s = NULL;
        char err[256];
        uint8_t *out;
        size_t n;

        make_blocks();
        if (session_import(&dev, img, len, &s, err, sizeof(err)) < 0)
                abort();
        export_again(s, len, &out, &n);
        if (memcmp(out, img, TOKEN) != 0 ||
            memcmp(out + TOKEN + 16, img + TOKEN + 16, len - TOKEN - 16) != 0)
                abort();
        free(out);
        session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct session *s = NULL;
        struct session_image_head head;
        char err[256];
        uint8_t *img;
        size_t len;
        int e, peeked;

        if (!ready)
                setup();
        make_blocks();
        memset(err, 'X', sizeof(err));
        /* the head an engine with workers reads (session_image_peek) agrees with the import */
        peeked = session_image_peek(data, size, &head);
        if (peeked != 0 && peeked != -EBADMSG)
                abort();
        e = session_import(&dev, data, size, &s, err, sizeof(err));
        if (e == 0 && (peeked < 0 || head.id != session_id(s) || !session_token_is(s, head.token)))
                abort();
        if (e < 0) {
                /* refused, with a message */
                if (!memchr(err, '\0', sizeof(err)) || err[0] == '\0' || err[0] == 'X')
                        abort();
                return 0;
        }
        if (!s)
                abort();
        export_again(s, size, &img, &len);
        /* its queued commands run against what the import built */
        if (session_start(s) == 0)
                session_pause(s, chan_now_ns() + 10000000000ull);
        session_free(s);
        check_fixed_point(img, len);
        free(img);
        return 0;
}
