// SPDX-License-Identifier: Apache-2.0
// The PTX interpreter on hand-written PTX and containers: parse errors name the line and the
// instruction, parameter layout, the fatbin reader on good and broken images, warp semantics
// (divergence, shuffles, votes, barrier reductions), and faults that end a launch with an error.
#include <errno.h>
#include <fenv.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include "devmem.h"
#include "ptx/ptx.h"

#define HDR ".version 9.0\n.target sm_75\n.address_size 64\n"

static struct devmem dm;

static int setup(void **state)
{
        (void)state;
        return devmem_init(&dm, 1u << 20);
}

static int teardown(void **state)
{
        (void)state;
        devmem_fini(&dm);
        return 0;
}

static int load(const char *text, struct ptx_module **mod, char *err)
{
        return ptx_module_load(text, strlen(text), mod, err, PTX_ERRMSG_SIZE);
}

static struct ptx_module *must_load(const char *text)
{
        struct ptx_module *mod = NULL;
        char err[PTX_ERRMSG_SIZE];
        int r = load(text, &mod, err);
        if (r)
                fail_msg("load: %s (%s)", err, ptx_strerror(r));
        return mod;
}

/* Launch kernel k of mod with one 64-bit pointer parameter (the output buffer). */
static int run1(struct ptx_module *mod, const char *name, uint64_t out, uint32_t grid,
                uint32_t block, uint64_t budget, struct ptx_launch_stats *st)
{
        const struct ptx_kernel *k;
        assert_int_equal(ptx_module_get_kernel(mod, name, &k), 0);
        struct ptx_launch l = {.kernel = k,
                               .grid = {grid, 1, 1},
                               .block = {block, 1, 1},
                               .params = &out,
                               .params_size = 8,
                               .mem = devmem_map,
                               .mem_ctx = &dm,
                               .work_budget = budget};
        return ptx_launch(&l, st);
}

static void test_unknown_instruction(void **state)
{
        (void)state;
        static const char text[] = HDR ".visible .entry k()\n{\n"
                                       "\t.reg .b32 %r<3>;\n"
                                       "\tfrobnicate.b32 %r1, %r2;\n"
                                       "\tret;\n}\n";
        struct ptx_module *mod = NULL;
        char err[PTX_ERRMSG_SIZE];
        assert_int_equal(load(text, &mod, err), PTX_EUNSUPPORTED);
        assert_null(mod);
        assert_non_null(strstr(err, "line 7"));
        assert_non_null(strstr(err, "frobnicate"));
}

static void test_parse_errors(void **state)
{
        (void)state;
        static const char *const bad[] = {
                HDR ".visible .entry k()\n{\n.reg .b32 %r<2>;\nadd.s32 %r1, %r0, 1\nret;\n}\n",
                HDR ".visible .entry k()\n{\nbra.uni $nowhere;\n}\n",
                HDR ".visible .entry k()\n{\n.reg .b32 %r<2>;\nadd.s32 %r1, %r9, 1;\n}\n",
                HDR ".visible .entry k(\n",
                ".target sm_75\n",
                HDR ".visible .entry k()\n{\n.reg .b32 %r<2>;\nadd.s32 %r1, %r0;\n}\n",
                HDR ".visible .entry k()\n{\ncall.uni missing, ();\nret;\n}\n",
                "",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct ptx_module *mod = NULL;
                char err[PTX_ERRMSG_SIZE] = "";
                int r = ptx_module_load(bad[i], strlen(bad[i]) + 1, &mod, err, sizeof(err));
                if (r == 0)
                        fail_msg("case %zu loaded", i);
                assert_null(mod);
                assert_true(err[0] != 0);
        }
}

static void test_param_layout(void **state)
{
        (void)state;
        static const char text[] =
                HDR ".visible .entry k(.param .u8 a, .param .u64 .ptr .global .align 1 b,\n"
                    "    .param .align 16 .b8 c[20], .param .u32 d, .param .f64 e)\n{\nret;\n}\n";
        struct ptx_module *mod = must_load(text);
        const struct ptx_kernel *k = ptx_module_kernel_at(mod, 0);
        assert_non_null(k);
        assert_null(ptx_module_kernel_at(mod, 1));
        assert_string_equal(ptx_kernel_name(k), "k");
        static const size_t offs[] = {0, 8, 16, 36, 40}, sizes[] = {1, 8, 20, 4, 8};
        assert_int_equal(ptx_kernel_param_count(k), 5);
        for (unsigned i = 0; i < 5; i++) {
                size_t off, size;
                assert_int_equal(ptx_kernel_param_info(k, i, &off, &size), 0);
                assert_int_equal(off, offs[i]);
                assert_int_equal(size, sizes[i]);
        }
        assert_int_equal(ptx_kernel_param_size(k), 48);
        ptx_module_free(mod);
        ptx_module_free(NULL);
}

/* A fatbin holding the given entries: kind, payload, flags. */
static size_t make_fatbin(uint8_t *buf, const uint16_t *kinds, const void *const *payloads,
                          const size_t *lens, const uint64_t *flags, const uint64_t *raw, int n)
{
        size_t off = 16;
        for (int i = 0; i < n; i++) {
                uint8_t *e = buf + off;
                size_t padded = (lens[i] + 7) & ~(size_t)7;
                memset(e, 0, 64 + padded);
                memcpy(e, &kinds[i], 2);
                uint16_t v = 0x101;
                memcpy(e + 2, &v, 2);
                uint32_t hs = 64;
                memcpy(e + 4, &hs, 4);
                uint64_t ps = padded;
                memcpy(e + 8, &ps, 8);
                uint32_t arch = 75;
                memcpy(e + 28, &arch, 4);
                memcpy(e + 40, &flags[i], 8);
                memcpy(e + 56, &raw[i], 8);
                memcpy(e + 64, payloads[i], lens[i]);
                off += 64 + padded;
        }
        uint32_t magic = 0xba55ed50u;
        uint16_t ver = 1, hs = 16;
        uint64_t body = off - 16;
        memcpy(buf, &magic, 4);
        memcpy(buf + 4, &ver, 2);
        memcpy(buf + 6, &hs, 2);
        memcpy(buf + 8, &body, 8);
        return off;
}

static const char tiny[] = HDR ".visible .entry tiny(.param .u64 p)\n{\n.reg .b64 %rd<3>;\n"
                               ".reg .b32 %r<2>;\nld.param.u64 %rd1, [p];\n"
                               "mov.u32 %r1, 42;\nst.global.u32 [%rd1], %r1;\nret;\n}\n";

static void test_fatbin(void **state)
{
        (void)state;
        static uint8_t buf[8192], zbuf[4096];
        struct ptx_module *mod;
        char err[PTX_ERRMSG_SIZE];
        size_t zlen = ZSTD_compress(zbuf, sizeof(zbuf), tiny, sizeof(tiny) - 1, 3);
        assert_false(ZSTD_isError(zlen));
        static const char elf[] = "\x7f"
                                  "ELF fake cubin";
        {
                /* plain PTX next to a cubin */
                uint16_t kinds[] = {2, 1};
                const void *pl[] = {elf, tiny};
                size_t lens[] = {sizeof(elf), sizeof(tiny)};
                uint64_t flags[] = {0x11, 0x11}, raw[] = {0, 0};
                size_t n = make_fatbin(buf, kinds, pl, lens, flags, raw, 2);
                assert_int_equal(ptx_module_load(buf, n, &mod, err, sizeof(err)), 0);
                assert_int_equal(ptx_module_kernel_count(mod), 1);
                ptx_module_free(mod);
                /* every truncation is refused cleanly */
                for (size_t cut = 0; cut < n; cut += 7) {
                        int r = ptx_module_load(buf, cut, &mod, err, sizeof(err));
                        assert_true(r != 0);
                }
        }
        {
                /* zstd-compressed PTX, behind nvcc's wrapper */
                uint16_t kinds[] = {1};
                const void *pl[] = {zbuf};
                size_t lens[] = {zlen};
                uint64_t flags[] = {0x8011}, raw[] = {sizeof(tiny) - 1};
                size_t n = make_fatbin(buf + 24, kinds, pl, lens, flags, raw, 1);
                uint32_t wrap[6] = {0x466243b1u, 1, 0, 0, 0, 0};
                memcpy(buf, wrap, 24);
                assert_int_equal(ptx_module_load(buf, n + 24, &mod, err, sizeof(err)), 0);
                ptx_module_free(mod);
                char *text;
                size_t len;
                assert_int_equal(ptx_fatbin_find_ptx(buf + 24, n, &text, &len), 0);
                assert_int_equal(len, sizeof(tiny) - 1);
                assert_memory_equal(text, tiny, len);
                free(text);
                /* a corrupt frame */
                buf[24 + 16 + 64 + 6] ^= 0xff;
                buf[24 + 16 + 64 + 12] ^= 0xff;
                assert_int_equal(ptx_module_load(buf, n + 24, &mod, err, sizeof(err)),
                                 PTX_EDECOMPRESS);
        }
        {
                /* no PTX at all */
                uint16_t kinds[] = {2};
                const void *pl[] = {elf};
                size_t lens[] = {sizeof(elf)};
                uint64_t flags[] = {0x11}, raw[] = {0};
                size_t n = make_fatbin(buf, kinds, pl, lens, flags, raw, 1);
                assert_int_equal(ptx_module_load(buf, n, &mod, err, sizeof(err)), PTX_ENOPTX);
                assert_non_null(strstr(err, "rebuild with PTX"));
                assert_int_equal(ptx_module_load(elf, sizeof(elf), &mod, err, sizeof(err)),
                                 PTX_ENOPTX);
        }
}

/* Divergence and reconvergence: odd and even lanes take different paths and loop different
 * numbers of times, then meet for a shuffle; a vote, ballot and match over the result. */
static const char warp_text[] = HDR ".visible .entry warp(.param .u64 out)\n{\n"
                                    ".reg .pred %p<4>;\n.reg .b32 %r<20>;\n.reg .b64 %rd<4>;\n"
                                    "ld.param.u64 %rd1, [out];\n"
                                    "mov.u32 %r1, %tid.x;\n"
                                    "and.b32 %r2, %r1, 1;\n"
                                    "setp.eq.s32 %p1, %r2, 0;\n"
                                    "mov.u32 %r3, 0;\n"
                                    "@%p1 bra $EVEN;\n"
                                    "mov.u32 %r4, 0;\n"
                                    "$ODD_LOOP:\n"
                                    "add.s32 %r3, %r3, %r4;\n"
                                    "add.s32 %r4, %r4, 1;\n"
                                    "setp.lt.u32 %p2, %r4, %r1;\n"
                                    "@%p2 bra $ODD_LOOP;\n"
                                    "bra.uni $JOIN;\n"
                                    "$EVEN:\n"
                                    "mul.lo.s32 %r3, %r1, 100;\n"
                                    "$JOIN:\n"
                                    "shfl.sync.idx.b32 %r5, %r3, 3, 31, -1;\n"
                                    "shfl.sync.bfly.b32 %r6|%p3, %r1, 1, 31, -1;\n"
                                    "vote.sync.ballot.b32 %r7, %p1, -1;\n"
                                    "and.b32 %r8, %r1, 3;\n"
                                    "match.any.sync.b32 %r9, %r8, -1;\n"
                                    "activemask.b32 %r10;\n"
                                    "bar.red.popc.u32 %r11, 0, %p1;\n"
                                    "mul.wide.u32 %rd2, %r1, 32;\n"
                                    "add.s64 %rd3, %rd1, %rd2;\n"
                                    "st.global.v4.u32 [%rd3], {%r3, %r5, %r6, %r7};\n"
                                    "st.global.v4.u32 [%rd3+16], {%r9, %r10, %r11, %r8};\n"
                                    "ret;\n}\n";

static void test_warp_semantics(void **state)
{
        (void)state;
        struct ptx_module *mod = must_load(warp_text);
        dm.used = 0;
        uint64_t out = devmem_alloc(&dm, 64 * 32);
        assert_int_equal(run1(mod, "warp", out, 1, 64, 0, NULL), 0);
        const uint32_t *o = devmem_ptr(&dm, out);
        for (uint32_t t = 0; t < 64; t++) {
                const uint32_t *r = o + t * 8;
                uint32_t want3 = (t & 1) ? (t - 1) * t / 2 : t * 100;
                if (t & 1 && t == 1)
                        want3 = 0;
                assert_int_equal(r[0], want3);
                uint32_t l3 = (t & ~31u) + 3;
                assert_int_equal(r[1], (l3 - 1) * l3 / 2); /* lane 3 is odd */
                assert_int_equal(r[2], t ^ 1);
                assert_int_equal(r[3], 0x55555555u);
                uint32_t m = 0;
                for (uint32_t l = 0; l < 32; l++)
                        m |= (uint32_t)((l & 3) == (t & 3)) << l;
                assert_int_equal(r[4], m);
                assert_int_equal(r[5], 0xffffffffu);
                assert_int_equal(r[6], 32); /* even threads of the block */
        }
        ptx_module_free(mod);
}

static const char fault_text[] =
        HDR ".visible .entry trapper(.param .u64 out)\n{\ntrap;\nret;\n}\n"
            ".visible .entry spin(.param .u64 out)\n{\n$L:\nbra.uni $L;\n}\n"
            ".visible .entry nullw(.param .u64 out)\n{\n.reg .b64 %rd<2>;\n.reg .b32 %r<2>;\n"
            "mov.u64 %rd1, 0;\nst.global.u32 [%rd1], %r1;\nret;\n}\n"
            ".func (.param .b32 r) down(.param .b32 n)\n{\n.reg .b32 %r<4>;\n"
            "ld.param.b32 %r1, [n];\nadd.s32 %r2, %r1, 1;\n"
            "{\n.param .b32 p0;\nst.param.b32 [p0], %r2;\n.param .b32 r0;\n"
            "call.uni (r0), down, (p0);\nld.param.b32 %r3, [r0];\n}\n"
            "st.param.b32 [r], %r3;\nret;\n}\n"
            ".visible .entry deep(.param .u64 out)\n{\n.reg .b32 %r<3>;\nmov.u32 %r1, 0;\n"
            "{\n.param .b32 p0;\nst.param.b32 [p0], %r1;\n.param .b32 r0;\n"
            "call.uni (r0), down, (p0);\nld.param.b32 %r2, [r0];\n}\nret;\n}\n"
            ".visible .entry localoob(.param .u64 out)\n{\n.local .align 4 .b8 buf[16];\n"
            ".reg .b64 %rd<3>;\n.reg .b32 %r<2>;\nmov.u64 %rd1, buf;\n"
            "ld.local.u32 %r1, [%rd1+4096];\nret;\n}\n"
            ".visible .entry sharedoob(.param .u64 out)\n{\n.reg .b32 %r<3>;\n"
            "mov.u32 %r1, 100000;\nld.shared.u32 %r2, [%r1];\nret;\n}\n"
            ".visible .entry badcall(.param .u64 out)\n{\n.reg .b64 %rd<2>;\n.reg .b32 %r<3>;\n"
            "mov.u64 %rd1, 12345;\nmov.u32 %r1, 1;\n"
            "{\n.param .b32 p0;\nst.param.b32 [p0], %r1;\n.param .b32 r0;\n"
            "proto : .callprototype (.param .b32 _) _ (.param .b32 _);\n"
            "call (r0), %rd1, (p0), proto;\nld.param.b32 %r2, [r0];\n}\nret;\n}\n"
            ".visible .entry badbar(.param .u64 out)\n{\n.reg .b32 %r<2>;\n.reg .pred %p<2>;\n"
            "mov.u32 %r1, %tid.x;\nsetp.eq.u32 %p1, %r1, 0;\n@%p1 bra $SKIP;\n"
            "bar.sync 1, 64;\n$SKIP:\nbar.sync 0;\nret;\n}\n";

static void test_faults(void **state)
{
        (void)state;
        struct ptx_module *mod = must_load(fault_text);
        struct ptx_launch_stats st;
        assert_int_equal(run1(mod, "trapper", 0, 2, 32, 0, &st), PTX_ETRAP);
        assert_int_equal(st.fault_line, 6);
        assert_int_equal(run1(mod, "spin", 0, 4, 64, 100000, &st), PTX_ETIMEOUT);
        assert_true(st.warp_insns >= 100000);
        assert_int_equal(run1(mod, "nullw", 0, 1, 32, 0, &st), PTX_EILLEGAL_ADDRESS);
        assert_int_equal(st.fault_addr, 0);
        assert_int_equal(run1(mod, "deep", 0, 1, 32, 0, &st), PTX_ESTACK);
        assert_int_equal(run1(mod, "localoob", 0, 1, 32, 0, &st), PTX_EILLEGAL_ADDRESS);
        assert_int_equal(run1(mod, "sharedoob", 0, 1, 32, 0, &st), PTX_EILLEGAL_ADDRESS);
        assert_int_equal(run1(mod, "badbar", 0, 1, 64, 0, &st), PTX_ETIMEOUT);
        assert_int_equal(run1(mod, "badcall", 0, 1, 32, 0, &st), PTX_EILLEGAL_ADDRESS);
        assert_int_equal(st.fault_addr, 12345);

        /* a canceled launch stops */
        const struct ptx_kernel *k;
        volatile int cancel = 1;
        uint64_t out = 0;
        assert_int_equal(ptx_module_get_kernel(mod, "spin", &k), 0);
        struct ptx_launch l = {.kernel = k,
                               .grid = {1, 1, 1},
                               .block = {32, 1, 1},
                               .params = &out,
                               .params_size = 8,
                               .cancel = &cancel};
        assert_int_equal(ptx_launch(&l, NULL), PTX_ECANCELED);

        /* launch configurations a GPU refuses */
        l.cancel = NULL;
        l.block[0] = 0;
        assert_int_equal(ptx_launch(&l, NULL), PTX_ELAUNCH);
        l.block[0] = 2048;
        assert_int_equal(ptx_launch(&l, NULL), PTX_ELAUNCH);
        l.block[0] = 32;
        l.params_size = 4;
        assert_int_equal(ptx_launch(&l, NULL), PTX_ELAUNCH);
        l.params_size = 8;
        l.grid[1] = 0;
        assert_int_equal(ptx_launch(&l, NULL), PTX_ELAUNCH);
        assert_int_equal(ptx_launch(NULL, NULL), PTX_ELAUNCH);
        ptx_module_free(mod);
}

/* Conversions and bit operations nvcc rarely emits for the test kernels. */
static const char misc_text[] =
        HDR ".visible .entry misc(.param .u64 out)\n{\n"
            ".reg .b16 %rs<4>;\n.reg .b32 %r<20>;\n.reg .f32 %f<6>;\n.reg .b64 %rd<4>;\n"
            ".reg .pred %p<3>;\n.reg .f64 %fd<3>;\n"
            "ld.param.u64 %rd1, [out];\n"
            "mov.f32 %f1, 0f3FC00000;\n" /* 1.5 */
            "cvt.rn.f16.f32 %rs1, %f1;\n"
            "cvt.f32.f16 %f2, %rs1;\n"
            "cvt.rn.bf16.f32 %rs2, %f1;\n"
            "cvt.u32.u16 %r1, %rs1;\n"
            "cvt.u32.u16 %r2, %rs2;\n"
            "mov.b32 %r3, 0xF0000000;\n"
            "bfe.s32 %r4, %r3, 24, 8;\n"
            "bfe.u32 %r5, %r3, 28, 8;\n"
            "prmt.b32 %r6, %r3, 0x11223344, 0x8765;\n"
            "cvt.sat.u8.s32 %r7, %r4;\n"
            "mov.b32 %r8, -5;\n"
            "cvt.sat.u8.s32 %r9, %r8;\n"
            "mov.f32 %f3, 0f4B000000;\n" /* 2^23 */
            "cvt.rmi.s32.f32 %r10, %f3;\n"
            "mov.f32 %f4, 0fBFC00000;\n" /* -1.5 */
            "cvt.rni.s32.f32 %r11, %f4;\n"
            "cvt.rpi.s32.f32 %r12, %f4;\n"
            "ex2.approx.ftz.f32 %f5, %f1;\n"
            "mov.b32 %r13, %f5;\n"
            "mov.f64 %fd1, 0d4000000000000000;\n" /* 2.0 */
            "sqrt.rn.f64 %fd2, %fd1;\n"
            "mov.b64 {%r14, %r15}, %fd2;\n"
            "testp.notanumber.f32 %p1, %f1;\n"
            "selp.b32 %r16, 1, 0, %p1;\n"
            "lop3.b32 %r17, %r3, %r8, %r5, 0x96;\n"
            "setp.gt.and.s32 %p2, %r8, -10, %p1;\n"
            "selp.b32 %r18, 7, 9, %p2;\n"
            "st.global.v4.u32 [%rd1], {%r1, %r2, %r4, %r5};\n"
            "st.global.v4.u32 [%rd1+16], {%r6, %r7, %r9, %r10};\n"
            "st.global.v4.u32 [%rd1+32], {%r11, %r12, %r13, %r14};\n"
            "st.global.v4.u32 [%rd1+48], {%r15, %r16, %r17, %r18};\n"
            "mov.b32 %r19, %f2;\n"
            "st.global.u32 [%rd1+64], %r19;\n"
            "cvt.rn.f16x2.f32 %r19, %f1, %f4;\n"
            "st.global.f16x2 [%rd1+68], %r19;\n"
            "ret;\n}\n";

static void test_misc_ops(void **state)
{
        (void)state;
        struct ptx_module *mod = must_load(misc_text);
        dm.used = 0;
        uint64_t out = devmem_alloc(&dm, 128);
        assert_int_equal(run1(mod, "misc", out, 1, 1, 0, NULL), 0);
        const uint32_t *o = devmem_ptr(&dm, out);
        assert_int_equal(o[0], 0x3e00);      /* 1.5 as half */
        assert_int_equal(o[1], 0x3fc0);      /* 1.5 as bfloat16 */
        assert_int_equal(o[2], 0xfffffff0u); /* bfe.s32 sign-extends */
        assert_int_equal(o[3], 0xf);
        /* prmt 0x8765: bytes of {b=0x11223344, a=0xF0000000}: 5->0x33, 6->0x22, 7->0x11,
         * 8 -> byte 0 of a (0x00) sign-replicated -> 0x00 */
        assert_int_equal(o[4], 0x00112233u);
        assert_int_equal(o[5], 0); /* -16 saturates to 0 */
        assert_int_equal(o[6], 0);
        assert_int_equal(o[7], 8388608);
        assert_int_equal((int32_t)o[8], -2); /* rni: -1.5 -> -2 (ties to even) */
        assert_int_equal((int32_t)o[9], -1); /* rpi */
        float e;
        memcpy(&e, &o[10], 4);
        assert_true(e > 2.8284f && e < 2.8285f); /* 2^1.5 */
        double s;
        uint32_t sb[2] = {o[11], o[12]};
        memcpy(&s, sb, 8);
        assert_true(s == 1.4142135623730951);
        assert_int_equal(o[13], 0);
        assert_int_equal(o[14], 0xF0000000u ^ 0xfffffffbu ^ 0xfu);
        assert_int_equal(o[15], 9);           /* -5 > -10 and false */
        assert_int_equal(o[16], 0x3fc00000u); /* half back to float */
        assert_int_equal(o[17], 0x3e00be00u); /* {1.5, -1.5} as half2 */
        ptx_module_free(mod);
}

/* Address spaces and the rarer instructions: generic pointers into shared and local memory,
 * isspacep, red, shared CAS, slct, match.all, vote.uni, carries, saturation, ldu, fences. */
static const char spaces_text[] =
        HDR ".visible .entry spaces(.param .u64 out)\n{\n"
            ".shared .align 8 .b8 sm[64];\n"
            ".local .align 8 .b8 lm[16];\n"
            ".reg .pred %p<6>;\n.reg .b32 %r<30>;\n.reg .b64 %rd<12>;\n.reg .f32 %f<4>;\n"
            "ld.param.u64 %rd1, [out];\n"
            "mov.u32 %r1, %tid.x;\n"
            "mov.u64 %rd2, sm;\n"
            "cvta.shared.u64 %rd3, %rd2;\n" /* generic pointer to sm */
            "mul.wide.u32 %rd4, %r1, 4;\n"
            "add.s64 %rd5, %rd3, %rd4;\n"
            "st.u32 [%rd5], %r1;\n" /* generic store lands in shared */
            "bar.sync 0;\n"
            "xor.b32 %r2, %r1, 1;\n"
            "mul.wide.u32 %rd6, %r2, 4;\n"
            "add.s64 %rd7, %rd2, %rd6;\n"
            "ld.shared.u32 %r3, [%rd7];\n" /* the neighbour's value */
            "isspacep.shared %p1, %rd5;\n"
            "isspacep.global %p2, %rd1;\n"
            "mov.u64 %rd8, lm;\n"
            "cvta.local.u64 %rd9, %rd8;\n"
            "isspacep.local %p3, %rd9;\n"
            "st.u32 [%rd9+4], %r1;\n" /* generic store lands in local */
            "ld.local.u32 %r4, [%rd8+4];\n"
            "selp.b32 %r5, 1, 0, %p1;\n"
            "selp.b32 %r6, 2, 0, %p2;\n"
            "selp.b32 %r7, 4, 0, %p3;\n"
            "or.b32 %r5, %r5, %r6;\n"
            "or.b32 %r5, %r5, %r7;\n"
            "red.global.add.u32 [%rd1+1024], 1;\n"
            "red.shared.max.s32 [sm+60], %r1;\n"
            "atom.shared.cas.b32 %r8, [sm+56], 0, 77;\n"
            "bar.sync 0;\n"
            "ld.shared.u32 %r9, [sm+60];\n"
            "ld.shared.u32 %r10, [sm+56];\n"
            "sub.s32 %r11, %r1, 2;\n"
            "slct.s32.s32 %r12, 100, 200, %r11;\n"
            "and.b32 %r13, %r1, 0;\n"
            "match.all.sync.b32 %r14|%p4, %r13, -1;\n"
            "vote.sync.uni.pred %p5, %p1, -1;\n"
            "selp.b32 %r15, 1, 0, %p5;\n"
            "mov.b32 %r16, 0xffffffff;\n"
            "add.cc.u32 %r17, %r16, %r1;\n" /* carries for lanes > 0 */
            "addc.u32 %r18, 0, 0;\n"
            "mov.b32 %r19, 0x7ffffff0;\n"
            "add.sat.s32 %r20, %r19, %r1;\n"
            "mov.f32 %f1, 0f3F400000;\n"   /* 0.75 */
            "add.sat.f32 %f2, %f1, %f1;\n" /* 1.5 saturates to 1.0 */
            "mov.b32 %r21, %f2;\n"
            "membar.gl;\nfence.sc.cta;\n"
            "ldu.global.u32 %r22, [%rd1+1024];\n"
            "mul.wide.u32 %rd10, %r1, 64;\n"
            "add.s64 %rd11, %rd1, %rd10;\n"
            "st.global.v4.u32 [%rd11], {%r3, %r4, %r5, %r9};\n"
            "st.global.v4.u32 [%rd11+16], {%r10, %r12, %r14, %r15};\n"
            "st.global.v4.u32 [%rd11+32], {%r17, %r18, %r20, %r21};\n"
            "ret;\n}\n";

static void test_spaces(void **state)
{
        (void)state;
        struct ptx_module *mod = must_load(spaces_text);
        dm.used = 0;
        uint64_t out = devmem_alloc(&dm, 2048);
        memset(devmem_ptr(&dm, out), 0, 2048);
        assert_int_equal(run1(mod, "spaces", out, 1, 8, 0, NULL), 0);
        const uint32_t *o = devmem_ptr(&dm, out);
        for (uint32_t t = 0; t < 8; t++) {
                const uint32_t *r = o + t * 16;
                assert_int_equal(r[0], t ^ 1);
                assert_int_equal(r[1], t);
                assert_int_equal(r[2], 7);
                assert_int_equal(r[3], 7);  /* red.max of the tids */
                assert_int_equal(r[4], 77); /* the CAS found 0 once */
                assert_int_equal(r[5], t >= 2 ? 100 : 200);
                assert_int_equal(r[6], 0xffu);     /* match.all: all equal */
                assert_int_equal(r[7], 1);         /* vote.uni */
                assert_int_equal(r[8], t - 1);     /* 0xffffffff + t wraps */
                assert_int_equal(r[9], t ? 1 : 0); /* the carry */
                assert_int_equal(r[10], 0x7ffffff0u + t);
                assert_int_equal(r[11], 0x3f800000u);
        }
        assert_int_equal(o[256], 8); /* red.global.add */
        ptx_module_free(mod);
}

static void test_launch_bounds(void **state)
{
        (void)state;
        static const char text[] = HDR ".visible .entry lb(.param .u64 out)\n.maxntid 64, 1, 1\n"
                                       "{\n.reg .b32 %r<5>;\nret;\n}\n"
                                       ".visible .entry rq(.param .u64 out) .reqntid 32, 2\n"
                                       "{\nret;\n}\n";
        struct ptx_module *mod = must_load(text);
        const struct ptx_kernel *k;
        struct ptx_kernel_attrs a;
        assert_int_equal(ptx_module_get_kernel(mod, "lb", &k), 0);
        assert_int_equal(ptx_kernel_get_attrs(k, &a), 0);
        assert_int_equal(a.max_threads, 64);
        assert_int_equal(a.num_regs, 5);
        assert_int_equal(a.param_bytes, 8);
        assert_int_equal(a.ptx_version, 90);
        assert_int_equal(a.sm, 75);
        dm.used = 0;
        assert_int_equal(run1(mod, "lb", 0, 1, 64, 0, NULL), 0);
        assert_int_equal(run1(mod, "lb", 0, 1, 65, 0, NULL), PTX_ELAUNCH);
        assert_int_equal(ptx_module_get_kernel(mod, "rq", &k), 0);
        assert_int_equal(ptx_kernel_get_attrs(k, &a), 0);
        assert_int_equal(a.max_threads, 64);
        assert_int_equal(run1(mod, "rq", 0, 1, 64, 0, NULL), PTX_ELAUNCH); /* 64 x 1, not 32 x 2 */
        uint64_t out = 0;
        struct ptx_launch l = {.kernel = k,
                               .grid = {1, 1, 1},
                               .block = {32, 2, 1},
                               .params = &out,
                               .params_size = 8};
        assert_int_equal(ptx_launch(&l, NULL), 0);
        ptx_module_free(mod);
}

/* Three separate regions (more than the two-region cache), each behind the callback. */
static uint32_t region_buf[3][256];
static _Atomic int region_calls;

static int three_regions(void *ctx, uint64_t addr, uint64_t len, struct ptx_mem_region *ret)
{
        (void)ctx;
        region_calls++;
        for (int r = 0; r < 3; r++) {
                uint64_t base = 0x100000000ull * (uint64_t)(r + 1);
                if (addr >= base && addr - base <= sizeof(region_buf[r]) &&
                    sizeof(region_buf[r]) - (addr - base) >= len) {
                        ret->base = base;
                        ret->size = sizeof(region_buf[r]);
                        ret->host = region_buf[r];
                        return 0;
                }
        }
        return -1;
}

static const char add3_text[] =
        HDR ".visible .entry add3(.param .u64 a, .param .u64 b, .param .u64 c)\n{\n"
            ".reg .b32 %r<5>;\n.reg .b64 %rd<8>;\n"
            "ld.param.u64 %rd1, [a];\nld.param.u64 %rd2, [b];\nld.param.u64 %rd3, [c];\n"
            "mov.u32 %r1, %tid.x;\nmul.wide.u32 %rd4, %r1, 4;\n"
            "add.s64 %rd5, %rd1, %rd4;\nadd.s64 %rd6, %rd2, %rd4;\nadd.s64 %rd7, %rd3, %rd4;\n"
            "ld.global.u32 %r2, [%rd5];\nld.global.u32 %r3, [%rd6];\n"
            "add.s32 %r4, %r2, %r3;\nst.global.u32 [%rd7], %r4;\nret;\n}\n";

static void *launch_thread(void *arg)
{
        for (int r = 0; r < 20; r++) {
                if (ptx_launch(arg, NULL) != 0)
                        return arg;
        }
        return NULL;
}

static void test_regions_and_pool(void **state)
{
        (void)state;
        struct ptx_module *mod = must_load(add3_text);
        const struct ptx_kernel *k;
        struct ptx_pool *pool;
        assert_int_equal(ptx_module_get_kernel(mod, "add3", &k), 0);
        assert_int_equal(ptx_pool_new(3, &pool), 0);
        for (int i = 0; i < 256; i++) {
                region_buf[0][i] = (uint32_t)i;
                region_buf[1][i] = (uint32_t)(1000 * i);
                region_buf[2][i] = 0;
        }
        uint64_t params[3] = {0x100000000ull, 0x200000000ull, 0x300000000ull};
        struct ptx_launch l = {.kernel = k,
                               .grid = {1, 1, 1},
                               .block = {256, 1, 1},
                               .params = params,
                               .params_size = sizeof(params),
                               .mem = three_regions,
                               .pool = pool,
                               .workers = 8};
        assert_int_equal(ptx_launch(&l, NULL), 0);
        for (int i = 0; i < 256; i++)
                assert_int_equal(region_buf[2][i], (uint32_t)(1001 * i));
        assert_true(region_calls >= 3);
        /* one past the end of the third region faults */
        params[2] = 0x300000000ull + 4;
        assert_int_equal(ptx_launch(&l, NULL), PTX_EILLEGAL_ADDRESS);
        /* launches from several threads share the pool, one after another */
        params[2] = 0x300000000ull;
        memset(region_buf[2], 0, sizeof(region_buf[2]));
        pthread_t th[3];
        for (int t = 0; t < 3; t++)
                assert_int_equal(pthread_create(&th[t], NULL, launch_thread, &l), 0);
        for (int t = 0; t < 3; t++) {
                void *res;
                pthread_join(th[t], &res);
                assert_null(res);
        }
        for (int i = 0; i < 256; i++)
                assert_int_equal(region_buf[2][i], (uint32_t)(1001 * i));
        ptx_pool_free(pool);
        ptx_module_free(mod);
}

/* Warp 0 spins on a shared flag that warp 1 sets after a loop of its own: warps take turns. */
static const char spin_text[] =
        HDR ".visible .entry spinwait(.param .u64 out)\n{\n"
            ".shared .align 4 .b8 flag[4];\n"
            ".reg .pred %p<4>;\n.reg .b32 %r<5>;\n.reg .b64 %rd<4>;\n"
            "mov.u32 %r1, %tid.x;\n"
            "setp.lt.u32 %p1, %r1, 32;\n"
            "@%p1 bra $WAIT;\n"
            "mov.u32 %r2, 0;\n"
            "$LOOP:\nadd.s32 %r2, %r2, 1;\nsetp.lt.u32 %p2, %r2, 100;\n@%p2 bra $LOOP;\n"
            "st.volatile.shared.u32 [flag], %r2;\n"
            "bra.uni $DONE;\n"
            "$WAIT:\nld.volatile.shared.u32 %r3, [flag];\nsetp.eq.u32 %p3, %r3, 0;\n"
            "@%p3 bra $WAIT;\n"
            "ld.param.u64 %rd1, [out];\nmul.wide.u32 %rd2, %r1, 4;\nadd.s64 %rd3, %rd1, %rd2;\n"
            "st.global.u32 [%rd3], %r3;\n"
            "$DONE:\nret;\n}\n";

static void test_spin_wait(void **state)
{
        (void)state;
        struct ptx_module *mod = must_load(spin_text);
        dm.used = 0;
        uint64_t out = devmem_alloc(&dm, 32 * 4);
        struct ptx_launch_stats st1, st2;
        assert_int_equal(run1(mod, "spinwait", out, 2, 64, 10000000, &st1), 0);
        const uint32_t *o = devmem_ptr(&dm, out);
        for (int i = 0; i < 32; i++)
                assert_int_equal(o[i], 100);
        /* the turns are taken at fixed instruction counts: the work is the same every time */
        assert_int_equal(run1(mod, "spinwait", out, 2, 64, 10000000, &st2), 0);
        assert_int_equal(st1.warp_insns, st2.warp_insns);
        ptx_module_free(mod);
}

/* cvt with every rounding modifier, against the C library under the same rounding mode. */
static const char cvt_text[] =
        HDR ".visible .entry cvts(.param .u64 in, .param .u64 out)\n{\n"
            ".reg .b32 %r<16>;\n.reg .f32 %f<12>;\n.reg .f64 %fd<2>;\n.reg .b64 %rd<6>;\n"
            ".reg .b16 %rs<3>;\n"
            "ld.param.u64 %rd1, [in];\nld.param.u64 %rd2, [out];\n"
            "mov.u32 %r1, %tid.x;\nmul.wide.u32 %rd3, %r1, 8;\nadd.s64 %rd4, %rd1, %rd3;\n"
            "ld.global.f64 %fd1, [%rd4];\n"
            "cvt.rn.f32.f64 %f1, %fd1;\ncvt.rz.f32.f64 %f2, %fd1;\n"
            "cvt.rm.f32.f64 %f3, %fd1;\ncvt.rp.f32.f64 %f4, %fd1;\n"
            "cvt.rni.s32.f64 %r2, %fd1;\ncvt.rzi.s32.f64 %r3, %fd1;\n"
            "cvt.rmi.s32.f64 %r4, %fd1;\ncvt.rpi.s32.f64 %r5, %fd1;\n"
            "cvt.rni.f32.f32 %f5, %f1;\ncvt.sat.f32.f32 %f6, %f1;\n"
            "cvt.rzi.u32.f64 %r6, %fd1;\n"
            "cvt.rz.f32.s32 %f7, %r3;\ncvt.rn.f32.s32 %f8, %r3;\n"
            "cvt.rn.f16.f32 %rs1, %f1;\ncvt.rz.f16.f32 %rs2, %f1;\n"
            "cvt.u32.u16 %r7, %rs1;\ncvt.u32.u16 %r8, %rs2;\n"
            "mov.b32 %r9, %f1;\nmov.b32 %r10, %f2;\nmov.b32 %r11, %f3;\nmov.b32 %r12, %f4;\n"
            "mov.b32 %r13, %f5;\nmov.b32 %r14, %f6;\nmov.b32 %r15, %f7;\n"
            "mul.wide.u32 %rd3, %r1, 64;\nadd.s64 %rd5, %rd2, %rd3;\n"
            "st.global.v4.u32 [%rd5], {%r9, %r10, %r11, %r12};\n"
            "st.global.v4.u32 [%rd5+16], {%r2, %r3, %r4, %r5};\n"
            "st.global.v4.u32 [%rd5+32], {%r13, %r14, %r6, %r15};\n"
            "mov.b32 %r9, %f8;\n"
            "st.global.v4.u32 [%rd5+48], {%r7, %r8, %r9, %r1};\n"
            "ret;\n}\n";

static uint32_t f32_bits(float f)
{
        uint32_t b;
        memcpy(&b, &f, 4);
        return b;
}

static float narrow(double v, int mode)
{
        volatile double vv = v;
        fesetround(mode);
        volatile float r = (float)vv;
        fesetround(FE_TONEAREST);
        return r;
}

static int32_t sat32(double v)
{
        return isnan(v)             ? 0
               : v >= 2147483647.0  ? INT32_MAX
               : v <= -2147483648.0 ? INT32_MIN
                                    : (int32_t)v;
}

static void test_cvt_rounding(void **state)
{
        (void)state;
        enum { N = 64 };
        double in[N];
        static const double special[] = {
                0.5,       1.5,          2.5,           -0.5,        -1.5,     -2.5,      1e300,
                -1e300,    3e9,          -3e9,          1e-320,      0.0,      -0.0,      0.1,
                1.0 / 3.0, 16777217.0,   16777219.0,    NAN,         INFINITY, -INFINITY, 65519.0,
                65520.0,   2147483647.5, -2147483648.5, 4294967296.0};
        const int ns = (int)(sizeof(special) / sizeof(special[0]));
        uint64_t x = 12345;
        for (int i = 0; i < N; i++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                in[i] = i < ns ? special[i]
                               : ((double)(int64_t)(x >> 11) / 9007199254740992.0) * 1e6;
        }
        struct ptx_module *mod = must_load(cvt_text);
        dm.used = 0;
        uint64_t din = devmem_alloc(&dm, sizeof(in)), dout = devmem_alloc(&dm, N * 64);
        memcpy(devmem_ptr(&dm, din), in, sizeof(in));
        const struct ptx_kernel *k;
        assert_int_equal(ptx_module_get_kernel(mod, "cvts", &k), 0);
        uint64_t params[2] = {din, dout};
        struct ptx_launch l = {.kernel = k,
                               .grid = {1, 1, 1},
                               .block = {N, 1, 1},
                               .params = params,
                               .params_size = sizeof(params),
                               .mem = devmem_map,
                               .mem_ctx = &dm};
        assert_int_equal(ptx_launch(&l, NULL), 0);
        const uint32_t *o = devmem_ptr(&dm, dout);
        for (int i = 0; i < N; i++) {
                double v = in[i];
                const uint32_t *r = o + 16 * i;
                float rn = narrow(v, FE_TONEAREST);
                int32_t rz = sat32(trunc(v));
                uint32_t want[15] = {
                        f32_bits(rn),
                        f32_bits(narrow(v, FE_TOWARDZERO)),
                        f32_bits(narrow(v, FE_DOWNWARD)),
                        f32_bits(narrow(v, FE_UPWARD)),
                        (uint32_t)sat32(nearbyint(v)),
                        (uint32_t)rz,
                        (uint32_t)sat32(floor(v)),
                        (uint32_t)sat32(ceil(v)),
                        f32_bits(nearbyintf(rn)),
                        f32_bits(isnan(rn) ? 0.0f
                                 : rn < 0  ? 0.0f
                                 : rn > 1  ? 1.0f
                                           : rn),
                        isnan(v) || v <= 0  ? 0u
                        : v >= 4294967295.0 ? 0xffffffffu
                                            : (uint32_t)v,
                        0, /* cvt.rz.f32.s32: checked below */
                        0,
                        0,
                        f32_bits((float)rz),
                };
                volatile int32_t vz = rz;
                fesetround(FE_TOWARDZERO);
                volatile float fz = (float)vz;
                fesetround(FE_TONEAREST);
                want[11] = f32_bits(fz);
                for (int j = 0; j < 11; j++) {
                        if (isnan(v) && (j < 4 || j == 8) && (r[j] & 0x7fffffffu) > 0x7f800000u)
                                continue; /* any NaN */
                        if (r[j] != want[j])
                                fail_msg("cvt[%d] %a: result %d got %#x want %#x", i, v, j, r[j],
                                         want[j]);
                }
                assert_int_equal(r[11], want[11]);
                assert_int_equal(r[14], want[14]);
                /* halves: rn is within half an ulp, rz never larger in magnitude */
                uint32_t hrn = r[12], hrz = r[13];
                if (!isnan(rn)) {
                        assert_true((hrz & 0x7fff) <= (hrn & 0x7fff) || (hrn & 0x7fff) == 0x7c00 ||
                                    (hrz & 0x7fff) - (hrn & 0x7fff) == 0);
                        assert_true((hrn & 0x7fff) - (hrz & 0x7fff) <= 1 ||
                                    (hrn & 0x7fff) == 0x7c00);
                }
        }
        ptx_module_free(mod);
}

/* sm_80/sm_90 warp operations: redux.sync over all lanes and over the even ones, elect.sync. */
static const char redux_text[] =
        HDR ".visible .entry redux(.param .u64 out)\n{\n"
            ".reg .pred %p<4>;\n.reg .b32 %r<10>;\n.reg .b64 %rd<4>;\n"
            "ld.param.u64 %rd1, [out];\nmov.u32 %r1, %tid.x;\n"
            "mov.u32 %r5, 0;\nmov.u32 %r6, 0;\nmov.u32 %r7, 0;\n"
            "redux.sync.add.u32 %r2, %r1, -1;\nredux.sync.max.s32 %r3, %r1, -1;\n"
            "and.b32 %r4, %r1, 1;\nsetp.eq.u32 %p1, %r4, 1;\n@%p1 bra $SKIP;\n"
            "redux.sync.or.b32 %r5, %r1, 0x55555555;\n"
            "elect.sync %r6|%p2, 0x55555555;\nselp.u32 %r7, 1, 0, %p2;\n"
            "$SKIP:\n"
            "mul.wide.u32 %rd2, %r1, 32;\nadd.s64 %rd3, %rd1, %rd2;\n"
            "st.global.v4.u32 [%rd3], {%r2, %r3, %r5, %r6};\nst.global.u32 [%rd3+16], %r7;\n"
            "ret;\n}\n";

static void test_redux_elect(void **state)
{
        (void)state;
        struct ptx_module *mod = must_load(redux_text);
        dm.used = 0;
        uint64_t out = devmem_alloc(&dm, 32 * 32);
        assert_int_equal(run1(mod, "redux", out, 1, 32, 0, NULL), 0);
        const uint32_t *o = devmem_ptr(&dm, out);
        for (uint32_t t = 0; t < 32; t++) {
                const uint32_t *r = o + t * 8;
                assert_int_equal(r[0], 496);
                assert_int_equal(r[1], 31);
                assert_int_equal(r[2], t & 1 ? 0 : 30);
                assert_int_equal(r[3], 0);
                assert_int_equal(r[4], t == 0 ? 1 : 0);
        }
        ptx_module_free(mod);
}

static void test_strerror(void **state)
{
        (void)state;
        assert_non_null(strstr(ptx_strerror(PTX_ENOPTX), "rebuild with PTX"));
        assert_non_null(ptx_strerror(-ENOMEM));
        assert_non_null(ptx_strerror(PTX_ETIMEOUT));
        struct ptx_pool *pool;
        assert_int_equal(ptx_pool_new(0, &pool), -EINVAL);
        assert_int_equal(ptx_pool_new(3, &pool), 0);
        ptx_pool_free(pool);
        ptx_pool_free(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unknown_instruction),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_param_layout),
                cmocka_unit_test(test_fatbin),
                cmocka_unit_test(test_warp_semantics),
                cmocka_unit_test(test_faults),
                cmocka_unit_test(test_misc_ops),
                cmocka_unit_test(test_spaces),
                cmocka_unit_test(test_launch_bounds),
                cmocka_unit_test(test_regions_and_pool),
                cmocka_unit_test(test_spin_wait),
                cmocka_unit_test(test_cvt_rounding),
                cmocka_unit_test(test_redux_elect),
                cmocka_unit_test(test_strerror),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
