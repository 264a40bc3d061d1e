// SPDX-License-Identifier: Apache-2.0
// The vGPU image format (engine/snapshot.h): a round trip over a fake framebuffer with holes and
// data, then hostile images: every single-byte change of a small image, every truncation, and
// trailing bytes are refused (or, for a byte the format ignores, read back the same); a header of
// another vGPU is -ESTALE; blocks that overlap or leave the framebuffer are refused.
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

#include "engine/snapshot.h"

#define FB_ADDR UINT64_C(0x200000000000)
#define FB_SIZE (UINT64_C(32) << 20)

/* A framebuffer in host memory; "written" pages are the data, the rest are holes. */
struct fake_fb {
        uint8_t *mem;
        uint64_t written_lo, written_hi; /* one run of data, the rest holes */
};

static int fb_read(void *ctx, uint64_t addr, void *buf, uint64_t len)
{
        struct fake_fb *f = ctx;

        memcpy(buf, f->mem + (addr - FB_ADDR), len);
        return 0;
}

static uint64_t fb_next_data(void *ctx, uint64_t addr, uint64_t end)
{
        struct fake_fb *f = ctx;
        uint64_t lo = FB_ADDR + f->written_lo, hi = FB_ADDR + f->written_hi;

        if (addr >= hi)
                return end;
        return addr < lo ? (lo < end ? lo : end) : addr;
}

static uint64_t fb_next_hole(void *ctx, uint64_t addr, uint64_t end)
{
        struct fake_fb *f = ctx;
        uint64_t hi = FB_ADDR + f->written_hi;

        return addr < hi && hi < end ? hi : end;
}

struct sink_state {
        uint8_t *mem;
        size_t n_blocks;
        uint64_t written;
        size_t n_sessions;
        size_t session_len[4];
        uint8_t session_first[4];
        uint64_t written_at_session; /* data written before the last session came */
};

static int sink_session(void *ctx, const void *p, size_t len)
{
        struct sink_state *s = ctx;

        assert_true(s->n_sessions < 4);
        s->session_len[s->n_sessions] = len;
        s->session_first[s->n_sessions] = *(const uint8_t *)p;
        s->n_sessions++;
        s->written_at_session = s->written;
        return 0;
}

static int sink_blocks(void *ctx, const struct snap_meta *meta, const struct fbmem_block *b,
                       size_t n)
{
        struct sink_state *s = ctx;

        (void)meta, (void)b;
        s->n_blocks = n;
        return 0;
}

static int sink_write(void *ctx, uint64_t addr, const void *data, uint64_t len)
{
        struct sink_state *s = ctx;

        assert_true(addr >= FB_ADDR && addr + len <= FB_ADDR + FB_SIZE);
        memcpy(s->mem + (addr - FB_ADDR), data, len);
        s->written += len;
        return 0;
}

static struct snap_meta meta(void)
{
        struct snap_meta m = {.device_address = FB_ADDR, .fb_size = FB_SIZE};

        snprintf(m.uuid, sizeof(m.uuid), "%s", "0d3c2a4e-1111-4222-8333-444455556666");
        snprintf(m.type, sizeof(m.type), "%s", "H100-20C");
        return m;
}

/* Write an image of blocks b (n) over f into a memfd; returns its bytes (caller frees). */
static int level = 1; /* zstd; 0: stored records */

static const uint8_t *const *img_sessions; /* the next image's sessions (test_sessions) */
static const size_t *img_session_len;
static size_t img_n_sessions;

static uint8_t *image(struct fake_fb *f, const struct fbmem_block *b, size_t n, size_t *ret_len)
{
        struct snap_source src = {.ctx = f,
                                  .read = fb_read,
                                  .next_data = fb_next_data,
                                  .next_hole = fb_next_hole,
                                  .sessions = img_sessions,
                                  .session_len = img_session_len,
                                  .n_sessions = img_n_sessions};
        struct snap_meta m = meta();
        struct snap_stats st;
        char err[256];
        int fd = memfd_create("img", 0);
        off_t len;
        uint8_t *buf;

        assert_true(fd >= 0);
        assert_int_equal(snap_write(fd, &m, b, n, &src, level, &st, err, sizeof(err)), 0);
        len = lseek(fd, 0, SEEK_END);
        assert_int_equal((uint64_t)len, st.stored_bytes);
        buf = malloc((size_t)len);
        assert_non_null(buf);
        assert_int_equal(pread(fd, buf, (size_t)len, 0), len);
        close(fd);
        *ret_len = (size_t)len;
        return buf;
}

static void test_round_trip(void **state)
{
        struct fake_fb f = {
                .mem = calloc(1, FB_SIZE), .written_lo = 1 << 20, .written_hi = 9 << 20};
        struct fbmem_block b[] = {
                {FB_ADDR, 4096, 1, 0},                               /* all hole */
                {FB_ADDR + (1 << 20), 6 << 20, 2, 0},                /* all data, over a chunk */
                {FB_ADDR + (8 << 20), 4 << 20, (1ull << 32) | 3, 0}, /* half data, half hole */
        };
        struct sink_state s = {.mem = calloc(1, FB_SIZE)};
        struct snap_sink sink = {.ctx = &s, .blocks = sink_blocks, .write = sink_write};
        struct snap_meta want = meta();
        struct snap_stats st;
        char err[256];
        size_t len;
        uint8_t *img;

        (void)state;
        for (uint64_t i = f.written_lo; i < f.written_hi; i++)
                f.mem[i] = (uint8_t)(i * 2654435761u >> 13);
        img = image(&f, b, 3, &len);
        assert_int_equal(snap_read_mem(img, len, &want, &sink, &st, err, sizeof(err)), 0);
        assert_int_equal(s.n_blocks, 3);
        /* only what was written is stored: 6 MiB + 1 MiB */
        assert_int_equal(s.written, 7u << 20);
        assert_int_equal(st.data_bytes, 7u << 20);
        /* data outside every block (7..8 MiB) is nobody's: not kept */
        memset(f.mem + (7 << 20), 0, 1 << 20);
        assert_memory_equal(s.mem, f.mem, FB_SIZE);
        assert_true(len < (level ? 8u << 20 : 8u << 20 | 65536));

        /* an image of another vGPU */
        snprintf(want.uuid, sizeof(want.uuid), "%s", "ffffffff-1111-4222-8333-444455556666");
        assert_int_equal(snap_read_mem(img, len, &want, NULL, NULL, err, sizeof(err)), -ESTALE);
        assert_non_null(strstr(err, "not of this one"));
        free(img);
        free(f.mem);
        free(s.mem);
}

/* Every byte of a small image flipped, every prefix: refused, never a crash or a wrong write. */
static void test_hostile(void **state)
{
        struct fake_fb f = {.mem = calloc(1, FB_SIZE), .written_lo = 0, .written_hi = 8192};
        struct fbmem_block b[] = {{FB_ADDR, 8192, 7, 0}, {FB_ADDR + 65536, 256, 8, 0}};
        struct snap_meta want = meta();
        size_t len, accepted = 0;
        char err[256];
        uint8_t *img, *bad;

        (void)state;
        for (int i = 0; i < 8192; i++)
                f.mem[i] = (uint8_t)(i * 7);
        img = image(&f, b, 2, &len);
        if (getenv("VGPU_SNAPSHOT_SEED")) {
                /* the fuzz target's seed (tests/fuzz/corpus/fuzz_snapshot/) */
                char name[4096];
                FILE *seed;

                snprintf(name, sizeof(name), "%s-level%d.img", getenv("VGPU_SNAPSHOT_SEED"), level);
                seed = fopen(name, "wb");

                assert_non_null(seed);
                assert_int_equal(fwrite(img, 1, len, seed), len);
                fclose(seed);
        }
        bad = malloc(len + 1);
        for (size_t i = 0; i < len; i++) {
                struct sink_state s = {.mem = calloc(1, FB_SIZE)};
                struct snap_sink sink = {.ctx = &s, .blocks = sink_blocks, .write = sink_write};
                int r;

                memcpy(bad, img, len);
                bad[i] ^= 0x41;
                r = snap_read_mem(bad, len, &want, &sink, NULL, err, sizeof(err));
                if (r == 0) {
                        /* the few bytes nobody checks (created_ns is under the CRC, so none) */
                        accepted++;
                        assert_memory_equal(s.mem, f.mem, 8192);
                } else {
                        assert_true(r == -EBADMSG || r == -ESTALE);
                        assert_true(err[0] != '\0');
                }
                free(s.mem);
        }
        assert_int_equal(accepted, 0);
        for (size_t cut = 0; cut < len; cut++)
                assert_int_equal(snap_read_mem(img, cut, &want, NULL, NULL, err, sizeof(err)),
                                 -EBADMSG);
        memcpy(bad, img, len);
        bad[len] = 0;
        assert_int_equal(snap_read_mem(bad, len + 1, &want, NULL, NULL, err, sizeof(err)),
                         -EBADMSG);
        assert_non_null(strstr(err, "after its end"));
        free(bad);
        free(img);
        free(f.mem);
}

/* Blocks that overlap, are unaligned or leave the framebuffer never make it into an image. */
static void test_bad_blocks(void **state)
{
        struct fake_fb f = {.mem = calloc(1, FB_SIZE)};
        const struct fbmem_block cases[][2] = {
                {{FB_ADDR, 4096, 1, 0}, {FB_ADDR + 2048, 4096, 2, 0}},        /* overlap */
                {{FB_ADDR + 4096, 4096, 1, 0}, {FB_ADDR, 256, 2, 0}},         /* unsorted */
                {{FB_ADDR + 100, 256, 1, 0}, {FB_ADDR + 4096, 256, 2, 0}},    /* unaligned */
                {{FB_ADDR, 256, 1, 0}, {FB_ADDR + FB_SIZE - 256, 512, 2, 0}}, /* past the end */
                {{FB_ADDR - 4096, 256, 1, 0}, {FB_ADDR, 256, 2, 0}},          /* before the start */
        };
        struct snap_meta want = meta();
        char err[256];

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                size_t len;
                uint8_t *img = image(&f, cases[i], 2, &len);

                assert_int_equal(snap_read_mem(img, len, &want, NULL, NULL, err, sizeof(err)),
                                 -EBADMSG);
                assert_non_null(strstr(err, "allocation"));
                free(img);
        }
        free(f.mem);
}

static void test_crc(void **state)
{
        (void)state;
        /* the standard check value of CRC-32C */
        assert_int_equal(snap_crc32c(0, "123456789", 9), 0xe3069283);
        /* in pieces, and over lengths that are not a multiple of 8 */
        assert_int_equal(snap_crc32c(snap_crc32c(0, "1234", 4), "56789", 5), 0xe3069283);
}

/* Version 2: the guests' sessions ride along, before the data, each checked by its CRC. */
static void test_sessions(void **state)
{
        static uint8_t s1[100], s2[5000];
        const uint8_t *ses[] = {s1, s2};
        const size_t lens[] = {sizeof(s1), sizeof(s2)};
        struct fake_fb f = {.mem = calloc(1, FB_SIZE), .written_lo = 0, .written_hi = 8192};
        struct fbmem_block b[] = {{FB_ADDR, 8192, 7, 0}};
        struct sink_state s = {.mem = calloc(1, FB_SIZE)};
        struct snap_sink sink = {
                .ctx = &s, .blocks = sink_blocks, .write = sink_write, .session = sink_session};
        struct snap_meta want = meta();
        char err[256];
        size_t len, at;
        uint8_t *img;

        (void)state;
        memset(s1, 0x11, sizeof(s1));
        memset(s2, 0x22, sizeof(s2));
        memset(f.mem, 0x5a, 8192);
        img_sessions = ses;
        img_session_len = lens;
        img_n_sessions = 2;
        img = image(&f, b, 1, &len);
        img_n_sessions = 0;
        assert_int_equal(snap_read_mem(img, len, &want, &sink, NULL, err, sizeof(err)), 0);
        assert_int_equal(s.n_sessions, 2);
        assert_int_equal(s.session_len[0], sizeof(s1));
        assert_int_equal(s.session_len[1], sizeof(s2));
        assert_int_equal(s.session_first[0], 0x11);
        assert_int_equal(s.session_first[1], 0x22);
        assert_int_equal(s.written_at_session, 0); /* before any data */
        assert_memory_equal(s.mem, f.mem, 8192);
        if (getenv("VGPU_SNAPSHOT_SEEDS")) {
                /* a seed of fuzz_snapshot: an image with sessions */
                char path[4096];
                FILE *out;

                snprintf(path, sizeof(path), "%s/sessions_v2", getenv("VGPU_SNAPSHOT_SEEDS"));
                out = fopen(path, "wb");
                assert_non_null(out);
                assert_int_equal(fwrite(img, 1, len, out), len);
                fclose(out);
        }
        /* a byte of a session changed: refused */
        at = (size_t)((uint8_t *)memmem(img, len, s2, 64) - img) + 100;
        img[at] ^= 1;
        assert_int_equal(snap_read_mem(img, len, &want, NULL, NULL, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "session"));
        free(img);
        free(f.mem);
        free(s.mem);
}

static int zstd_records(void **state)
{
        (void)state;
        level = 1;
        return 0;
}

static int stored_records(void **state)
{
        (void)state;
        level = 0;
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crc),
                cmocka_unit_test_setup(test_round_trip, zstd_records),
                cmocka_unit_test_setup(test_hostile, zstd_records),
                cmocka_unit_test_setup(test_bad_blocks, zstd_records),
                cmocka_unit_test_setup(test_round_trip, stored_records),
                cmocka_unit_test_setup(test_hostile, stored_records),
                cmocka_unit_test_setup(test_sessions, zstd_records),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
