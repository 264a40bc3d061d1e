// SPDX-License-Identifier: Apache-2.0
// A session's migration image (engine/session_image.c) on the sim: a guest drives a session
// through its channel (contexts made and destroyed, a PTX module with a variable, a function, a
// launch, a stream held by a host function with a command queued behind it), the session is
// paused and exported, and a second device whose allocator holds the same blocks imports it: the
// old handles work, forged ones do not, the variable is where it was. Then hostile images: every
// truncation is refused with a message, and flipped bytes never crash (ASan and LSan watch).
//
// VGPU_SESSION_IMAGE_SEEDS=dir also writes the images of a few sessions into dir, as seeds for
// tests/fuzz/fuzz_session_image.c (whose allocator holds the blocks these place variables in).
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/chan.h"
#include "common/log.h"
#include "engine/session.h"
#include "ptx/ptx.h" /* PTX_E* codes */

/* as in tests/fuzz/fuzz_session_image.c */
#define FB_SIZE (64u << 20)
#define FB_ADDR UINT64_C(0x300000000000)
#define SID     1
#define TOKEN   40    /* offset of the token in an image */
#define OUT_OFF 4096u /* where copies to the host land in the staging area */

/* g += v; *out = g */
static const char ptx[] = ".version 8.0\n"
                          ".target sm_75\n"
                          ".address_size 64\n"
                          ".visible .global .align 4 .u32 g = 42;\n"
                          ".visible .entry add(.param .u64 out, .param .u32 v)\n"
                          "{\n"
                          ".reg .b32 %r<4>;\n"
                          ".reg .b64 %rd<4>;\n"
                          "ld.param.u64 %rd1, [out];\n"
                          "ld.param.u32 %r1, [v];\n"
                          "mov.u64 %rd2, g;\n"
                          "ld.global.u32 %r2, [%rd2];\n"
                          "add.u32 %r3, %r2, %r1;\n"
                          "st.global.u32 [%rd2], %r3;\n"
                          "st.global.u32 [%rd1], %r3;\n"
                          "ret;\n"
                          "}\n";

/* ---- a device, and a guest on a session's channel ---------------------------------------- */

static void dev_up(struct vgpu_dev *d)
{
        struct backend_fb_req req = {
                .vgpu_uuid = "test-image", .device_address = FB_ADDR, .size = FB_SIZE};
        struct backend_dev_req dreq = {.sim_workers = 1};

        memset(d, 0, sizeof(*d));
        d->ops = &backend_sim_ops;
        assert_int_equal(d->ops->dev_open(&dreq, &d->bdev, NULL, 0), 0);
        assert_int_equal(d->ops->fb_reserve(d->bdev, &req, &d->fb), 0);
        fbmem_init(&d->mem, d->fb.device_address, d->fb.size);
}

static void dev_down(struct vgpu_dev *d)
{
        fbmem_destroy(&d->mem);
        d->ops->fb_release(d->bdev, &d->fb);
        d->ops->dev_close(d->bdev);
}

struct guest {
        struct chan_view v;
        uint64_t seq;
};

static void guest_attach(struct guest *g, struct session *s)
{
        void *base =
                mmap(NULL, chan_total_size(), PROT_READ | PROT_WRITE, MAP_SHARED, session_fd(s), 0);

        assert_true(base != MAP_FAILED);
        assert_int_equal(chan_open(base, chan_total_size(), &g->v), 0);
}

static void guest_detach(struct guest *g)
{
        munmap(g->v.base, g->v.size);
}

static void push(struct guest *g, uint16_t op, uint32_t stream, const void *a, uint32_t alen,
                 const void *b, uint32_t blen)
{
        struct vgpu_chan_ctl *ctl = g->v.ctl;

        assert_int_equal(chan_push_on(&g->v, op, stream, ++g->seq, a, alen, b, blen), 0);
        __atomic_add_fetch(&ctl->head_futex, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&ctl->head_futex);
}

/* Wait until *p reaches want (the engine moves it), for at most 5 s. */
static void wait_for(const uint64_t *p, uint64_t want)
{
        uint64_t until = chan_now_ns() + UINT64_C(5000000000);

        while (__atomic_load_n(p, __ATOMIC_ACQUIRE) < want) {
                assert_true(chan_now_ns() < until);
                usleep(100);
        }
}

/* Wait until the engine reached the host function of slot 0 (its stream is held). */
static void wait_host_reached(struct guest *g)
{
        uint64_t until = chan_now_ns() + UINT64_C(5000000000);

        while (__atomic_load_n(&g->v.ctl->host_release[0], __ATOMIC_ACQUIRE) != VGPU_HOST_REACHED) {
                assert_true(chan_now_ns() < until);
                usleep(100);
        }
}

/* A synchronous call: its result, its reply copied to rep (rep_len bytes at most). */
static int call(struct guest *g, uint16_t op, const void *req, uint32_t len, void *rep,
                uint32_t rep_len)
{
        struct vgpu_chan_ctl *ctl = g->v.ctl;

        push(g, op, 0, req, len, NULL, 0);
        wait_for(&ctl->reply_seq, g->seq);
        assert_true(ctl->reply_seq == g->seq);
        if (rep)
                memcpy(rep, g->v.reply, rep_len);
        return ctl->reply_result;
}

static uint64_t ctx_create(struct guest *g)
{
        struct vgpu_req_ctx_create q = {0};
        struct vgpu_rep_handle r;

        assert_int_equal(call(g, VGPU_OP_CTX_CREATE, &q, sizeof(q), &r, sizeof(r)), 0);
        return r.handle;
}

static int ctx_op(struct guest *g, uint16_t op, uint64_t ctx)
{
        struct vgpu_req_ctx q = {.ctx = ctx};

        return call(g, op, &q, sizeof(q), NULL, 0);
}

static int sym(struct guest *g, uint16_t op, uint64_t ctx, uint64_t mod, const char *name,
               void *rep, uint32_t rep_len)
{
        static struct vgpu_req_module_sym q;

        memset(&q, 0, sizeof(q));
        q.ctx = ctx;
        q.module = mod;
        snprintf(q.name, sizeof(q.name), "%s", name);
        return call(g, op, &q, sizeof(q), rep, rep_len);
}

/* Launch add(out, v) on stream 0 and wait for the context: its result. */
static int launch(struct guest *g, uint64_t ctx, uint64_t func, uint64_t out, uint32_t v)
{
        struct vgpu_req_launch q = {
                .ctx = ctx, .func = func, .grid = {1, 1, 1}, .block = {1, 1, 1}, .params_size = 16};
        uint8_t params[16] = {0};

        memcpy(params, &out, 8);
        memcpy(params + 8, &v, 4);
        push(g, VGPU_OP_LAUNCH, 0, &q, sizeof(q), params, sizeof(params));
        return ctx_op(g, VGPU_OP_CTX_SYNC, ctx);
}

/* Read a u32 of device memory through the session (a copy to the staging area). */
static int read32(struct guest *g, uint64_t ctx, uint64_t addr, uint32_t *ret)
{
        struct vgpu_req_copy q = {.ctx = ctx, .dst = OUT_OFF, .src = addr, .len = 4};
        int e;

        push(g, VGPU_OP_COPY_DTOH, 0, &q, sizeof(q), NULL, 0);
        e = ctx_op(g, VGPU_OP_CTX_SYNC, ctx);
        memcpy(ret, g->v.stage + OUT_OFF, 4);
        return e;
}

/* ---- a session to move ------------------------------------------------------------------- */

/* What a guest holds of its session, and the allocator's blocks and data on the old device. */
struct moved {
        uint8_t *img;
        size_t len;
        struct fbmem_block *blocks;
        long n_blocks;
        uint8_t **data;
        struct guest g; /* its seq goes on on the new side */
        uint64_t ctx, ctx_old[3];
        uint64_t mod, func, gaddr, out;
        uint64_t wait_seq, memset_seq; /* the host function's wait and what queues behind it */
};

enum shape {
        SHAPE_FULL,      /* a module, a function, a stream held by a host function */
        SHAPE_TWO_MODS,  /* two modules, nothing queued */
        SHAPE_CTXS_ONLY, /* contexts, nothing loaded */
};

static void load(struct guest *g, uint64_t ctx, uint64_t *ret_mod)
{
        struct vgpu_req_module_load q = {.ctx = ctx, .stage_off = 0, .len = sizeof(ptx) - 1};
        struct vgpu_rep_module_load r;

        memcpy(g->v.stage, ptx, sizeof(ptx) - 1);
        assert_int_equal(call(g, VGPU_OP_MODULE_LOAD, &q, sizeof(q), &r, sizeof(r)), 0);
        *ret_mod = r.module;
}

/*
 * Run a session of shape on a fresh device, pause and export it, keep its blocks and their data,
 * and give the device back: the framebuffer's range is free for the new one.
 */
static void build(enum shape shape, struct moved *m)
{
        struct vgpu_dev dev;
        struct session *s;
        int fd;

        memset(m, 0, sizeof(*m));
        dev_up(&dev);
        assert_int_equal(session_new(&dev, SID, getpid(), getuid(), &s, &fd), 0);
        guest_attach(&m->g, s);

        /* slot 0: made, destroyed, made again (generation 2, live) */
        m->ctx_old[0] = ctx_create(&m->g);
        assert_int_equal(ctx_op(&m->g, VGPU_OP_CTX_DESTROY, m->ctx_old[0]), 0);
        m->ctx = ctx_create(&m->g);
        /* slot 1: made and destroyed twice (generation 2, dead) */
        m->ctx_old[1] = ctx_create(&m->g);
        assert_int_equal(ctx_op(&m->g, VGPU_OP_CTX_DESTROY, m->ctx_old[1]), 0);
        m->ctx_old[2] = ctx_create(&m->g);
        assert_int_equal(ctx_op(&m->g, VGPU_OP_CTX_DESTROY, m->ctx_old[2]), 0);
        assert_true((uint32_t)m->ctx == 0 && (uint32_t)m->ctx_old[2] == 1);
        assert_true(m->ctx != m->ctx_old[0] && m->ctx_old[1] != m->ctx_old[2]);

        if (shape != SHAPE_CTXS_ONLY) {
                struct vgpu_req_mem_alloc qa = {.ctx = m->ctx, .size = 4096};
                struct vgpu_rep_mem_alloc ra;
                struct vgpu_rep_function rf;
                uint64_t mod2;
                uint32_t v;

                /* modules first: their variables land at FB_ADDR + k * 256 */
                load(&m->g, m->ctx, &m->mod);
                if (shape == SHAPE_TWO_MODS)
                        load(&m->g, m->ctx, &mod2);
                assert_int_equal(
                        sym(&m->g, VGPU_OP_MODULE_FUNCTION, m->ctx, m->mod, "add", &rf, sizeof(rf)),
                        0);
                m->func = rf.func;
                assert_int_equal(rf.n_params, 2);
                assert_int_equal(
                        sym(&m->g, VGPU_OP_MODULE_GLOBAL, m->ctx, m->mod, "g", &ra, sizeof(ra)), 0);
                m->gaddr = ra.dptr;
                assert_int_equal(m->gaddr, FB_ADDR);
                assert_int_equal(call(&m->g, VGPU_OP_MEM_ALLOC, &qa, sizeof(qa), &ra, sizeof(ra)),
                                 0);
                m->out = ra.dptr;
                assert_int_equal(launch(&m->g, m->ctx, m->func, m->out, 1), 0);
                assert_int_equal(read32(&m->g, m->ctx, m->out, &v), 0);
                assert_int_equal(v, 43);
        }
        if (shape == SHAPE_FULL) {
                struct vgpu_req_event qw = {.ctx = m->ctx, .slot = 0};
                struct vgpu_req_memset qm = {.ctx = m->ctx,
                                             .dst = m->out + 16,
                                             .width = 1,
                                             .height = 1,
                                             .value = 7,
                                             .elem_size = 4};

                /* stream 1 waits for a host function the guest never runs here; a memset
                 * queues behind it and moves with the session */
                m->g.v.ctl->host_release[0] = VGPU_HOST_QUEUED;
                push(&m->g, VGPU_OP_HOST_WAIT, 1, &qw, sizeof(qw), NULL, 0);
                m->wait_seq = m->g.seq;
                push(&m->g, VGPU_OP_MEMSET, 1, &qm, sizeof(qm), NULL, 0);
                m->memset_seq = m->g.seq;
                wait_host_reached(&m->g);
        }
        assert_int_equal(session_pause(s, chan_now_ns() + 10000000000ull), 0);
        assert_int_equal(session_export(s, &m->img, &m->len), 0);

        /* the allocator and the framebuffer's data, as the migration's rounds carry them (the
         * sim maps the framebuffer at its device address) */
        m->n_blocks = fbmem_take_dirty(&dev.mem, true, &m->blocks);
        assert_true(m->n_blocks >= 0);
        m->data = calloc((size_t)m->n_blocks + 1, sizeof(*m->data));
        assert_non_null(m->data);
        for (long i = 0; i < m->n_blocks; i++) {
                m->data[i] = malloc(m->blocks[i].size);
                assert_non_null(m->data[i]);
                memcpy(m->data[i], (void *)(uintptr_t)m->blocks[i].base, m->blocks[i].size);
        }
        guest_detach(&m->g);
        session_free(s);
        dev_down(&dev);
}

static void moved_free(struct moved *m)
{
        for (long i = 0; i < m->n_blocks; i++)
                free(m->data[i]);
        free(m->data);
        free(m->blocks);
        free(m->img);
}

/* The new device's allocator holds the old one's blocks (again, after an import took them). */
static void place_blocks(struct vgpu_dev *d, const struct moved *m)
{
        for (long i = 0; i < m->n_blocks; i++) {
                int e = fbmem_alloc_at(&d->mem, m->blocks[i].base, m->blocks[i].size,
                                       m->blocks[i].owner);

                assert_true(e == 0 || e == -EEXIST);
        }
}

static void write_data(const struct moved *m)
{
        for (long i = 0; i < m->n_blocks; i++)
                memcpy((void *)(uintptr_t)m->blocks[i].base, m->data[i], m->blocks[i].size);
}

/* Import bytes [0, len) of img from a buffer of exactly that size (ASan sees an overread). */
static int import_copy(struct vgpu_dev *d, const uint8_t *img, size_t len, struct session **ret,
                       char *err, size_t errlen)
{
        uint8_t *p = malloc(len ? len : 1);
        int e;

        assert_non_null(p);
        memcpy(p, img, len);
        memset(err, 'X', errlen);
        e = session_import(d, p, len, ret, err, errlen);
        free(p);
        return e;
}

static void assert_refused(int e, const char *err, size_t errlen)
{
        assert_true(e < 0);
        assert_non_null(memchr(err, '\0', errlen));
        assert_true(err[0] != '\0' && err[0] != 'X');
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
        struct vgpu_dev dev;
        struct vgpu_rep_mem_alloc ra;
        struct vgpu_rep_function rf;
        struct fbmem_block b;
        struct session *s;
        struct moved m;
        uint8_t tok[16];
        char err[256];
        uint32_t v;

        (void)state;
        build(SHAPE_FULL, &m);
        dev_up(&dev);
        place_blocks(&dev, &m);
        assert_int_equal(import_copy(&dev, m.img, m.len, &s, err, sizeof(err)), 0);
        write_data(&m); /* the last round: what the guest made of its variables */

        /* the token the guest re-attaches with names it, until it started */
        memcpy(tok, m.img + TOKEN, sizeof(tok));
        assert_true(session_token_is(s, tok));
        tok[3] ^= 1;
        assert_false(session_token_is(s, tok));
        assert_int_equal(session_id(s), SID);
        assert_false(session_started(s));

        /* the variable's address is a block of its context */
        assert_int_equal(fbmem_find(&dev.mem, m.gaddr, 4, ((uint64_t)SID << 32) | 0, &b), 0);
        assert_int_equal(b.base, m.gaddr);
        assert_int_equal(fbmem_find(&dev.mem, m.gaddr, 4, ((uint64_t)SID << 32) | 1, &b), -EFAULT);

        /* a fresh channel here (a real guest copies its old one in); its seq goes on */
        assert_int_equal(session_start(s), 0);
        guest_attach(&m.g, s);

        /* the stream held by the host function goes on once the guest ran it */
        wait_host_reached(&m.g);
        __atomic_store_n(&m.g.v.ctl->host_release[0], VGPU_HOST_RELEASED, __ATOMIC_RELEASE);
        __atomic_add_fetch(&m.g.v.ctl->head_futex, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&m.g.v.ctl->head_futex);
        wait_for(&m.g.v.ctl->stream_done[1], m.memset_seq);
        assert_int_equal(read32(&m.g, m.ctx, m.out + 16, &v), 0);
        assert_int_equal(v, 7);

        /* the old handles: the function runs on the variable it had (43 + 5) */
        assert_int_equal(launch(&m.g, m.ctx, m.func, m.out, 5), 0);
        assert_int_equal(read32(&m.g, m.ctx, m.out, &v), 0);
        assert_int_equal(v, 48);
        assert_int_equal(read32(&m.g, m.ctx, m.gaddr, &v), 0);
        assert_int_equal(v, 48);
        assert_int_equal(sym(&m.g, VGPU_OP_MODULE_GLOBAL, m.ctx, m.mod, "g", &ra, sizeof(ra)), 0);
        assert_int_equal(ra.dptr, m.gaddr);
        assert_int_equal(sym(&m.g, VGPU_OP_MODULE_FUNCTION, m.ctx, m.mod, "add", &rf, sizeof(rf)),
                         0);

        /* forged and stale handles are refused */
        for (int i = 0; i < 3; i++) {
                assert_int_equal(ctx_op(&m.g, VGPU_OP_CTX_SYNC, m.ctx_old[i]), -EBADF);
                assert_int_equal(
                        sym(&m.g, VGPU_OP_MODULE_GLOBAL, m.ctx_old[i], m.mod, "g", &ra, sizeof(ra)),
                        -EBADF);
        }
        assert_int_equal(ctx_op(&m.g, VGPU_OP_CTX_SYNC, m.ctx + (UINT64_C(1) << 32)), -EBADF);
        assert_int_equal(sym(&m.g, VGPU_OP_MODULE_GLOBAL, m.ctx, m.mod + (UINT64_C(1) << 32), "g",
                             &ra, sizeof(ra)),
                         -EBADF);
        assert_int_equal(sym(&m.g, VGPU_OP_MODULE_GLOBAL, m.ctx, m.mod + 1, "g", &ra, sizeof(ra)),
                         -EBADF);
        /* a function's handle: another generation, another index, a module's kind */
        assert_int_equal(launch(&m.g, m.ctx, m.func + (UINT64_C(1) << 32), m.out, 1), -EBADF);
        assert_int_equal(launch(&m.g, m.ctx, m.func + 2, m.out, 1), -EBADF);
        assert_int_equal(launch(&m.g, m.ctx, m.mod, m.out, 1), -EBADF);
        assert_int_equal(read32(&m.g, m.ctx, m.gaddr, &v), 0);
        assert_int_equal(v, 48); /* none of them ran */
        assert_int_equal(ctx_op(&m.g, VGPU_OP_CTX_SYNC, m.ctx), 0);

        guest_detach(&m.g);
        session_free(s);
        dev_down(&dev);
        moved_free(&m);
}

/* Every shape imports back, on a device holding its blocks; and is written out as seeds. */
static void test_shapes(void **state)
{
        static const char *const names[] = {"full", "two_modules", "contexts_only"};
        const char *dir = getenv("VGPU_SESSION_IMAGE_SEEDS");

        (void)state;
        for (int shape = SHAPE_FULL; shape <= SHAPE_CTXS_ONLY; shape++) {
                struct vgpu_dev dev;
                struct session *s;
                struct moved m;
                char err[256];

                build((enum shape)shape, &m);
                dev_up(&dev);
                place_blocks(&dev, &m);
                assert_int_equal(import_copy(&dev, m.img, m.len, &s, err, sizeof(err)), 0);
                session_free(s);
                if (dir) {
                        char path[4096];
                        FILE *f;

                        snprintf(path, sizeof(path), "%s/%s", dir, names[shape]);
                        f = fopen(path, "wb");
                        assert_non_null(f);
                        assert_int_equal(fwrite(m.img, 1, m.len, f), m.len);
                        assert_int_equal(fclose(f), 0);
                }
                dev_down(&dev);
                moved_free(&m);
        }
}

/* Every truncation is refused with a message; nothing leaks (LSan at exit). */
static void test_truncations(void **state)
{
        struct vgpu_dev dev;
        struct session *s;
        struct moved m;
        char err[256];

        (void)state;
        build(SHAPE_FULL, &m);
        dev_up(&dev);
        for (size_t len = 0; len < m.len; len++) {
                place_blocks(&dev, &m);
                s = NULL;
                assert_refused(import_copy(&dev, m.img, len, &s, err, sizeof(err)), err,
                               sizeof(err));
                assert_null(s);
        }
        /* one byte too many, too */
        {
                uint8_t *p = malloc(m.len + 1);

                assert_non_null(p);
                memcpy(p, m.img, m.len);
                p[m.len] = 0;
                place_blocks(&dev, &m);
                assert_refused(import_copy(&dev, p, m.len + 1, &s, err, sizeof(err)), err,
                               sizeof(err));
                free(p);
        }
        dev_down(&dev);
        moved_free(&m);
}

/*
 * The head an engine with workers reads to route a token (session_image_peek): what the import
 * builds; refused when cut short or not a session's.
 */
static void test_peek(void **state)
{
        struct session_image_head h;
        struct vgpu_dev dev;
        struct session *s = NULL;
        struct moved m;
        char err[256];

        (void)state;
        build(SHAPE_FULL, &m);
        dev_up(&dev);
        assert_int_equal(session_image_peek(m.img, m.len, &h), 0);
        place_blocks(&dev, &m);
        assert_int_equal(import_copy(&dev, m.img, m.len, &s, err, sizeof(err)), 0);
        assert_int_equal(h.id, session_id(s));
        assert_true(session_token_is(s, h.token));
        session_free(s);
        for (size_t len = 0; len < 56; len++) {
                h.id = 77;
                assert_int_equal(session_image_peek(m.img, len, &h), -EBADMSG);
                assert_int_equal(h.id, 77); /* untouched */
        }
        {
                uint8_t *p = malloc(m.len);

                assert_non_null(p);
                memcpy(p, m.img, m.len);
                p[0] ^= 1; /* the magic */
                assert_int_equal(session_image_peek(p, m.len, &h), -EBADMSG);
                memcpy(p, m.img, m.len);
                memset(p + 8, 0, 4); /* id 0 */
                assert_int_equal(session_image_peek(p, m.len, &h), -EBADMSG);
                free(p);
        }
        dev_down(&dev);
        moved_free(&m);
}

/* Import a changed copy: refused with a message, or a session that is freed again. */
static void try_changed(struct vgpu_dev *dev, const struct moved *m, uint8_t *p, int *ret_ok)
{
        struct session *s = NULL;
        char err[256];
        int e;

        place_blocks(dev, m);
        e = import_copy(dev, p, m->len, &s, err, sizeof(err));
        if (e == 0) {
                assert_non_null(s);
                session_free(s);
                (*ret_ok)++;
        } else {
                assert_refused(e, err, sizeof(err));
        }
}

/*
 * Each byte of the header and the context table flipped (all bits, then the lowest), and random
 * changes of random bytes after it: never a crash. Some still import (a context's error codes, a
 * generation): those sessions are freed.
 */
static void test_flips(void **state)
{
        const size_t head = 4 * 6 + 8 * 2 + 16 + 64 * 16 + 4; /* through the module count */
        struct vgpu_dev dev;
        struct moved m;
        uint8_t *p;
        int ok = 0, tries = 0;
        unsigned seed = 12345;

        (void)state;
        build(SHAPE_FULL, &m);
        assert_true(m.len > head);
        p = malloc(m.len);
        assert_non_null(p);
        dev_up(&dev);
        for (size_t i = 0; i < head; i++) {
                static const uint8_t masks[] = {0xff, 0x01};

                for (size_t k = 0; k < sizeof(masks); k++) {
                        memcpy(p, m.img, m.len);
                        p[i] ^= masks[k];
                        try_changed(&dev, &m, p, &ok);
                        tries++;
                }
        }
        for (int i = 0; i < 3000; i++) {
                size_t at = head + (size_t)rand_r(&seed) % (m.len - head);
                uint8_t x = (uint8_t)(1 + rand_r(&seed) % 255);

                memcpy(p, m.img, m.len);
                p[at] ^= x;
                if (rand_r(&seed) % 4 == 0) /* sometimes two bytes */
                        p[head + (size_t)rand_r(&seed) % (m.len - head)] ^= x;
                try_changed(&dev, &m, p, &ok);
                tries++;
        }
        print_message("%d of %d changed images imported\n", ok, tries);
        assert_true(ok < tries);
        free(p);
        dev_down(&dev);
        moved_free(&m);
}

/* Import a copy of m's image with n bytes at off replaced; a session it builds is freed. */
static int import_patched(struct vgpu_dev *d, const struct moved *m, size_t off, const void *v,
                          size_t n, char *err, size_t errlen)
{
        struct session *s = NULL;
        uint8_t *p = malloc(m->len);
        int e;

        assert_non_null(p);
        assert_true(off + n <= m->len);
        memcpy(p, m->img, m->len);
        memcpy(p + off, v, n);
        place_blocks(d, m);
        e = import_copy(d, p, m->len, &s, err, errlen);
        if (e == 0)
                session_free(s);
        else
                assert_refused(e, err, errlen);
        free(p);
        return e;
}

/*
 * Fields the origin never writes so are refused: error codes of the wrong sign or kind, a queued
 * command's sequence number 0, past the last taken, or out of order in its stream; and a module
 * whose variable's block is not in the new allocator (refused, nothing leaks).
 */
static void test_hostile_fields(void **state)
{
        /* the header: 6 u32, 2 u64, the token; then per context gen, live, sticky, deferred */
        const size_t deferred = 20, last_seq = 24, ctx0 = 56, ctx1 = 56 + 16;
        const int32_t fault = PTX_EILLEGAL_ADDRESS, einval = -EINVAL, one = 1;
        const uint32_t two = 2;
        struct vgpu_dev dev;
        struct session *s;
        struct moved m;
        char err[256];
        size_t q0, q1; /* the queued host function's wait and the memset behind it */
        uint64_t seq;

        (void)state;
        build(SHAPE_FULL, &m);
        dev_up(&dev);
        assert_int_equal(import_patched(&dev, &m, 0, m.img, 4, err, sizeof(err)), 0);

        assert_int_equal(import_patched(&dev, &m, deferred, &one, 4, err, sizeof(err)), -EBADMSG);
        assert_int_equal(import_patched(&dev, &m, deferred, &einval, 4, err, sizeof(err)), 0);
        assert_int_equal(import_patched(&dev, &m, ctx0 + 8, &one, 4, err, sizeof(err)), -EBADMSG);
        assert_int_equal(import_patched(&dev, &m, ctx0 + 8, &einval, 4, err, sizeof(err)),
                         -EBADMSG);
        assert_int_equal(import_patched(&dev, &m, ctx0 + 8, &fault, 4, err, sizeof(err)), 0);
        assert_int_equal(import_patched(&dev, &m, ctx0 + 12, &one, 4, err, sizeof(err)), -EBADMSG);
        assert_int_equal(import_patched(&dev, &m, ctx0 + 12, &einval, 4, err, sizeof(err)), 0);
        assert_int_equal(import_patched(&dev, &m, ctx1 + 4, &two, 4, err, sizeof(err)), -EBADMSG);

        /* the queue closes the image: count, (header, request) twice, next_slot, magic */
        q1 = m.len - 8 - (sizeof(struct vgpu_msg) + sizeof(struct vgpu_req_memset));
        q0 = q1 - (sizeof(struct vgpu_msg) + sizeof(struct vgpu_req_event));
        memcpy(&seq, m.img + q0 + offsetof(struct vgpu_msg, seq), 8);
        assert_int_equal(seq, m.wait_seq);
        memcpy(&seq, m.img + last_seq, 8);
        assert_int_equal(seq, m.memset_seq);
        seq = 0;
        assert_int_equal(import_patched(&dev, &m, q0 + offsetof(struct vgpu_msg, seq), &seq, 8, err,
                                        sizeof(err)),
                         -EBADMSG);
        seq = m.memset_seq + 1;
        assert_int_equal(import_patched(&dev, &m, q1 + offsetof(struct vgpu_msg, seq), &seq, 8, err,
                                        sizeof(err)),
                         -EBADMSG);
        seq = m.wait_seq; /* the memset as old as the wait before it */
        assert_int_equal(import_patched(&dev, &m, q1 + offsetof(struct vgpu_msg, seq), &seq, 8, err,
                                        sizeof(err)),
                         -EBADMSG);
        assert_non_null(strstr(err, "order"));

        /* the allocator lacks the variable's block: the module does not load here */
        for (long i = 0; i < m.n_blocks; i++) {
                if (m.blocks[i].base == m.gaddr)
                        continue;
                assert_int_equal(fbmem_alloc_at(&dev.mem, m.blocks[i].base, m.blocks[i].size,
                                                m.blocks[i].owner),
                                 0);
        }
        assert_refused(import_copy(&dev, m.img, m.len, &s, err, sizeof(err)), err, sizeof(err));
        assert_non_null(strstr(err, "does not load here"));
        /* nor when it is another context's */
        assert_int_equal(fbmem_alloc_at(&dev.mem, m.gaddr, 256, ((uint64_t)SID << 32) | 1), 0);
        place_blocks(&dev, &m);
        assert_refused(import_copy(&dev, m.img, m.len, &s, err, sizeof(err)), err, sizeof(err));
        assert_non_null(strstr(err, "does not load here"));
        fbmem_free_owner(&dev.mem, 0, 0);

        dev_down(&dev);
        moved_free(&m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_shapes),
                cmocka_unit_test(test_truncations),    cmocka_unit_test(test_flips),
                cmocka_unit_test(test_hostile_fields), cmocka_unit_test(test_peek),
        };

        vgpu_log_set_level(VGPU_LOG_ERROR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
