// SPDX-License-Identifier: Apache-2.0
// Each kernel's static shared memory on hand-written PTX: what a kernel reports is what it
// reaches (its own .shared declarations, the module-scope ones it or its callees name), not the
// module's total, and kernels sharing a module's layout still compute right.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

static struct ptx_module *must_load(const char *text)
{
        struct ptx_module *mod = NULL;
        char err[PTX_ERRMSG_SIZE];
        int r = ptx_module_load(text, strlen(text), &mod, err, sizeof(err));
        if (r)
                fail_msg("load: %s (%s)", err, ptx_strerror(r));
        return mod;
}

/* Static shared bytes kernel name reports, through both ways of asking. */
static size_t static_shared(struct ptx_module *mod, const char *name)
{
        const struct ptx_kernel *k;
        struct ptx_kernel_attrs a;
        assert_int_equal(ptx_module_get_kernel(mod, name, &k), 0);
        assert_int_equal(ptx_kernel_get_attrs(k, &a), 0);
        assert_int_equal(a.static_shared, ptx_kernel_static_shared(k));
        return a.static_shared;
}

/* Run kernel name of mod, one block of block threads, dyn bytes of dynamic shared memory, with
 * a fresh zeroed output buffer of 256 words as its one parameter; returns the buffer. */
static const uint32_t *run(struct ptx_module *mod, const char *name, uint32_t block, uint32_t dyn)
{
        const struct ptx_kernel *k;
        assert_int_equal(ptx_module_get_kernel(mod, name, &k), 0);
        dm.used = 0;
        uint64_t out = devmem_alloc(&dm, 1024);
        memset(devmem_ptr(&dm, out), 0, 1024);
        struct ptx_launch l = {.kernel = k,
                               .grid = {1, 1, 1},
                               .block = {block, 1, 1},
                               .dynamic_shared = dyn,
                               .params = &out,
                               .params_size = 8,
                               .mem = devmem_map,
                               .mem_ctx = &dm};
        struct ptx_launch_stats st;
        int r = ptx_launch(&l, &st);
        if (r)
                fail_msg("%s: %s (line %u)", name, ptx_strerror(r), st.fault_line);
        return devmem_ptr(&dm, out);
}

/* Registers and the output address of thread %r1 (in %rd3) every kernel below starts with. */
#define PROLOGUE                                                                                   \
        "\t.reg .b32 %r<16>;\n\t.reg .b64 %rd<16>;\n\t.reg .pred %p<2>;\n"                         \
        "\tld.param.u64 %rd1, [out];\n\tmov.u32 %r1, %tid.x;\n"                                    \
        "\tmul.wide.u32 %rd2, %r1, 4;\n\tadd.u64 %rd3, %rd1, %rd2;\n"

static const char module_text[] =
        HDR ".shared .align 4 .b8 sa[256];\n"
            ".shared .align 8 .b8 sb[1024];\n"
            ".shared .align 16 .b8 sc[64];\n"
            ".shared .align 4 .b8 unused[4096];\n"
            ".shared .align 1 .b8 s3[3];\n"
            ".shared .align 8 .b8 s8[8];\n"
            ".extern .shared .align 16 .b8 dyn[];\n"
            /* helper(x): x + 1, through sc[tid % 16] (blocks of at most 16 threads) */
            ".func (.param .b32 res) helper(.param .b32 x)\n{\n"
            "\t.reg .b32 %r<8>;\n"
            "\tld.param.b32 %r1, [x];\n\tmov.u32 %r2, %tid.x;\n\tand.b32 %r2, %r2, 15;\n"
            "\tshl.b32 %r2, %r2, 2;\n\tmov.u32 %r3, sc;\n\tadd.u32 %r3, %r3, %r2;\n"
            "\tst.shared.u32 [%r3], %r1;\n\tld.shared.u32 %r4, [%r3];\n\tadd.u32 %r4, %r4, 1;\n"
            "\tst.param.b32 [res], %r4;\n\tret;\n}\n"
            /* helper2(x): helper(2 x) */
            ".func (.param .b32 res) helper2(.param .b32 x)\n{\n"
            "\t.reg .b32 %r<4>;\n"
            "\tld.param.b32 %r1, [x];\n\tshl.b32 %r1, %r1, 1;\n"
            "\t{\n\t.param .b32 p0;\n\tst.param.b32 [p0], %r1;\n\t.param .b32 r0;\n"
            "\tcall.uni (r0), helper, (p0);\n\tld.param.b32 %r2, [r0];\n\t}\n"
            "\tst.param.b32 [res], %r2;\n\tret;\n}\n"
            /* ka: out[t] = 2 (t ^ 1), through sa */
            ".visible .entry ka(.param .u64 out)\n{\n" PROLOGUE
            "\tshl.b32 %r2, %r1, 1;\n\tshl.b32 %r3, %r1, 2;\n\tmov.u32 %r4, sa;\n"
            "\tadd.u32 %r5, %r4, %r3;\n\tst.shared.u32 [%r5], %r2;\n\tbar.sync 0;\n"
            "\txor.b32 %r6, %r1, 1;\n\tshl.b32 %r6, %r6, 2;\n\tadd.u32 %r6, %r4, %r6;\n"
            "\tld.shared.u32 %r7, [%r6];\n\tst.global.u32 [%rd3], %r7;\n\tret;\n}\n"
            /* kb: out[t] = 3 (t ^ 1) + 100 (t ^ 1), through sb (generic addresses) and dyn */
            ".visible .entry kb(.param .u64 out)\n{\n" PROLOGUE
            "\tmul.lo.u32 %r2, %r1, 3;\n\tmul.lo.u32 %r3, %r1, 100;\n"
            "\tmov.u64 %rd4, sb;\n\tcvta.shared.u64 %rd4, %rd4;\n\tadd.u64 %rd5, %rd4, %rd2;\n"
            "\tst.u32 [%rd5], %r2;\n"
            "\tshl.b32 %r4, %r1, 2;\n\tmov.u32 %r5, dyn;\n\tadd.u32 %r6, %r5, %r4;\n"
            "\tst.shared.u32 [%r6], %r3;\n\tbar.sync 0;\n"
            "\txor.b32 %r7, %r1, 1;\n\tmul.wide.u32 %rd6, %r7, 4;\n\tadd.u64 %rd7, %rd4, %rd6;\n"
            "\tld.u32 %r8, [%rd7];\n\tshl.b32 %r9, %r7, 2;\n\tadd.u32 %r9, %r5, %r9;\n"
            "\tld.shared.u32 %r10, [%r9];\n\tadd.u32 %r11, %r8, %r10;\n"
            "\tst.global.u32 [%rd3], %r11;\n\tret;\n}\n"
            /* kc: out[t] = helper(7 t) = 7 t + 1 */
            ".visible .entry kc(.param .u64 out)\n{\n" PROLOGUE "\tmul.lo.u32 %r2, %r1, 7;\n"
            "\t{\n\t.param .b32 p0;\n\tst.param.b32 [p0], %r2;\n\t.param .b32 r0;\n"
            "\tcall.uni (r0), helper, (p0);\n\tld.param.b32 %r3, [r0];\n\t}\n"
            "\tst.global.u32 [%rd3], %r3;\n\tret;\n}\n"
            /* kh: out[t] = helper2(t) = 2 t + 1 (sc reached through two calls) */
            ".visible .entry kh(.param .u64 out)\n{\n" PROLOGUE
            "\t{\n\t.param .b32 p0;\n\tst.param.b32 [p0], %r1;\n\t.param .b32 r0;\n"
            "\tcall.uni (r0), helper2, (p0);\n\tld.param.b32 %r3, [r0];\n\t}\n"
            "\tst.global.u32 [%rd3], %r3;\n\tret;\n}\n"
            /* kd: its own own[32] and sa; out[t] = own[t ^ 1] + sa[31 - t] + own[2],
             * out[32 + t] = %total_smem_size */
            ".visible .entry kd(.param .u64 out)\n{\n"
            "\t.shared .align 4 .b32 own[32];\n" PROLOGUE
            "\tadd.u32 %r2, %r1, 10;\n\tshl.b32 %r3, %r1, 2;\n\tmov.u32 %r4, own;\n"
            "\tadd.u32 %r5, %r4, %r3;\n\tst.shared.u32 [%r5], %r2;\n"
            "\tmul.lo.u32 %r6, %r1, 1000;\n\tmov.u32 %r7, sa;\n\tadd.u32 %r8, %r7, %r3;\n"
            "\tst.shared.u32 [%r8], %r6;\n\tbar.sync 0;\n"
            "\txor.b32 %r9, %r1, 1;\n\tshl.b32 %r9, %r9, 2;\n\tadd.u32 %r9, %r4, %r9;\n"
            "\tld.shared.u32 %r10, [%r9];\n"
            "\tsub.u32 %r11, 31, %r1;\n\tshl.b32 %r11, %r11, 2;\n\tadd.u32 %r11, %r7, %r11;\n"
            "\tld.shared.u32 %r12, [%r11];\n\tld.shared.u32 %r13, [own+8];\n"
            "\tadd.u32 %r10, %r10, %r12;\n\tadd.u32 %r10, %r10, %r13;\n"
            "\tst.global.u32 [%rd3], %r10;\n"
            "\tmov.u32 %r14, %total_smem_size;\n\tst.global.u32 [%rd3+128], %r14;\n\tret;\n}\n"
            /* ke: no shared memory; out[t] = t */
            ".visible .entry ke(.param .u64 out)\n{\n" PROLOGUE
            "\tst.global.u32 [%rd3], %r1;\n\tret;\n}\n"
            /* kg: s3 and s8 (3 bytes, then 8 aligned to 8: 16); out[t] = s3[2] + low word of s8 */
            ".visible .entry kg(.param .u64 out)\n{\n" PROLOGUE
            "\tsetp.ne.u32 %p1, %r1, 0;\n\tmov.u32 %r2, 7;\n\tmov.u64 %rd4, 0x0102030405060708;\n"
            "\t@!%p1 st.shared.u8 [s3+2], %r2;\n\t@!%p1 st.shared.u64 [s8], %rd4;\n"
            "\tbar.sync 0;\n"
            "\tld.shared.u8 %r3, [s3+2];\n\tld.shared.u32 %r4, [s8];\n\tadd.u32 %r5, %r3, %r4;\n"
            "\tst.global.u32 [%rd3], %r5;\n\tret;\n}\n";

static void test_per_kernel_size(void **state)
{
        (void)state;
        struct ptx_module *mod = must_load(module_text);
        assert_int_equal(static_shared(mod, "ka"), 256);
        assert_int_equal(static_shared(mod, "kb"), 1024); /* extern dyn[] is not static */
        assert_int_equal(static_shared(mod, "kc"), 64);   /* through helper */
        assert_int_equal(static_shared(mod, "kh"), 64);   /* through helper2, then helper */
        assert_int_equal(static_shared(mod, "kd"), 256 + 128);
        assert_int_equal(static_shared(mod, "ke"), 0);
        assert_int_equal(static_shared(mod, "kg"), 16);
        ptx_module_free(mod);
}

static void test_kernels_compute(void **state)
{
        (void)state;
        struct ptx_module *mod = must_load(module_text);
        const uint32_t *o = run(mod, "ka", 64, 0);
        for (uint32_t t = 0; t < 64; t++)
                assert_int_equal(o[t], 2 * (t ^ 1));
        o = run(mod, "kb", 256, 1024);
        for (uint32_t t = 0; t < 256; t++)
                assert_int_equal(o[t], 103 * (t ^ 1));
        o = run(mod, "kc", 16, 0);
        for (uint32_t t = 0; t < 16; t++)
                assert_int_equal(o[t], 7 * t + 1);
        o = run(mod, "kh", 16, 0);
        for (uint32_t t = 0; t < 16; t++)
                assert_int_equal(o[t], 2 * t + 1);
        o = run(mod, "kd", 32, 32);
        for (uint32_t t = 0; t < 32; t++) {
                assert_int_equal(o[t], (t ^ 1) + 10 + (31 - t) * 1000 + 12);
                assert_int_equal(o[32 + t], 256 + 128 + 32); /* the kernel's, not the module's */
        }
        o = run(mod, "ke", 32, 0);
        for (uint32_t t = 0; t < 32; t++)
                assert_int_equal(o[t], t);
        o = run(mod, "kg", 40, 0);
        for (uint32_t t = 0; t < 40; t++)
                assert_int_equal(o[t], 7 + 0x05060708u);
        ptx_module_free(mod);
}

/* Function-scope .shared names belong to their function: two kernels may use the same one. */
static const char scoped_text[] =
        HDR ".shared .align 4 .b32 buf[1024];\n"
            /* k1: buf[8]; out[t] = buf[7 - t] = 8 - t */
            ".visible .entry k1(.param .u64 out)\n{\n"
            "\t.shared .align 4 .b32 buf[8];\n" PROLOGUE
            "\tadd.u32 %r2, %r1, 1;\n\tshl.b32 %r3, %r1, 2;\n\tmov.u32 %r4, buf;\n"
            "\tadd.u32 %r5, %r4, %r3;\n\tst.shared.u32 [%r5], %r2;\n\tbar.sync 0;\n"
            "\tsub.u32 %r6, 7, %r1;\n\tshl.b32 %r6, %r6, 2;\n\tadd.u32 %r6, %r4, %r6;\n"
            "\tld.shared.u32 %r7, [%r6];\n\tst.global.u32 [%rd3], %r7;\n\tret;\n}\n"
            /* k2: buf[64]; out[t] = buf[63 - t] = 5 (63 - t) */
            ".visible .entry k2(.param .u64 out)\n{\n"
            "\t.shared .align 8 .b32 buf[64];\n" PROLOGUE
            "\tmul.lo.u32 %r2, %r1, 5;\n\tshl.b32 %r3, %r1, 2;\n\tmov.u32 %r4, buf;\n"
            "\tadd.u32 %r5, %r4, %r3;\n\tst.shared.u32 [%r5], %r2;\n\tbar.sync 0;\n"
            "\tsub.u32 %r6, 63, %r1;\n\tshl.b32 %r6, %r6, 2;\n\tadd.u32 %r6, %r4, %r6;\n"
            "\tld.shared.u32 %r7, [%r6];\n\tst.global.u32 [%rd3], %r7;\n\tret;\n}\n"
            /* k3: the module's buf[1024]; out[t] = buf[255 - t] = 255 - t */
            ".visible .entry k3(.param .u64 out)\n{\n" PROLOGUE
            "\tshl.b32 %r3, %r1, 2;\n\tmov.u32 %r4, buf;\n"
            "\tadd.u32 %r5, %r4, %r3;\n\tst.shared.u32 [%r5], %r1;\n\tbar.sync 0;\n"
            "\tsub.u32 %r6, 255, %r1;\n\tshl.b32 %r6, %r6, 2;\n\tadd.u32 %r6, %r4, %r6;\n"
            "\tld.shared.u32 %r7, [%r6];\n\tst.global.u32 [%rd3], %r7;\n\tret;\n}\n";

static void test_function_scope(void **state)
{
        (void)state;
        struct ptx_module *mod = must_load(scoped_text);
        assert_int_equal(static_shared(mod, "k1"), 32);
        assert_int_equal(static_shared(mod, "k2"), 256);
        assert_int_equal(static_shared(mod, "k3"), 4096);
        const uint32_t *o = run(mod, "k1", 8, 0);
        for (uint32_t t = 0; t < 8; t++)
                assert_int_equal(o[t], 8 - t);
        o = run(mod, "k2", 64, 0);
        for (uint32_t t = 0; t < 64; t++)
                assert_int_equal(o[t], 5 * (63 - t));
        o = run(mod, "k3", 256, 0);
        for (uint32_t t = 0; t < 256; t++)
                assert_int_equal(o[t], 255 - t);
        ptx_module_free(mod);

        /* the same name twice in one function is an error */
        static const char twice[] = HDR ".visible .entry k()\n{\n"
                                        "\t.shared .b32 x[4];\n\t.shared .b32 x[8];\n\tret;\n}\n";
        struct ptx_module *bad = NULL;
        char err[PTX_ERRMSG_SIZE] = "";
        assert_int_equal(ptx_module_load(twice, strlen(twice), &bad, err, sizeof(err)), PTX_EPARSE);
        assert_null(bad);
        assert_non_null(strstr(err, "declared twice"));
}

/* A call through a pointer may reach any .func: the kernel is charged all their variables. */
static const char indirect_text[] =
        HDR ".shared .align 4 .b8 sx[16];\n"
            ".shared .align 4 .b8 sy[32];\n"
            ".shared .align 4 .b8 sz[64];\n"
            ".func (.param .b32 res) fa(.param .b32 x)\n{\n"
            "\t.reg .b32 %r<4>;\n\tld.param.b32 %r1, [x];\n\tst.shared.u32 [sx], %r1;\n"
            "\tld.shared.u32 %r2, [sx];\n\tadd.u32 %r2, %r2, 1;\n\tst.param.b32 [res], %r2;\n"
            "\tret;\n}\n"
            ".func (.param .b32 res) fb(.param .b32 x)\n{\n"
            "\t.reg .b32 %r<4>;\n\tld.param.b32 %r1, [x];\n\tst.shared.u32 [sy+28], %r1;\n"
            "\tld.shared.u32 %r2, [sy+28];\n\tadd.u32 %r2, %r2, 2;\n\tst.param.b32 [res], %r2;\n"
            "\tret;\n}\n"
            /* ki: out[t] = fb(t) = t + 2, called through a pointer */
            ".visible .entry ki(.param .u64 out)\n{\n" PROLOGUE "\tmov.u64 %rd4, fb;\n"
            "\t{\n\t.param .b32 p0;\n\tst.param.b32 [p0], %r1;\n\t.param .b32 r0;\n"
            "\tproto : .callprototype (.param .b32 _) _ (.param .b32 _);\n"
            "\tcall (r0), %rd4, (p0), proto;\n\tld.param.b32 %r2, [r0];\n\t}\n"
            "\tst.global.u32 [%rd3], %r2;\n\tret;\n}\n"
            /* kz: sz only */
            ".visible .entry kz(.param .u64 out)\n{\n" PROLOGUE
            "\tst.shared.u32 [sz+60], %r1;\n\tld.shared.u32 %r2, [sz+60];\n"
            "\tst.global.u32 [%rd3], %r2;\n\tret;\n}\n";

static void test_indirect_call(void **state)
{
        (void)state;
        struct ptx_module *mod = must_load(indirect_text);
        assert_int_equal(static_shared(mod, "ki"), 16 + 32);
        assert_int_equal(static_shared(mod, "kz"), 64);
        const uint32_t *o = run(mod, "ki", 1, 0);
        assert_int_equal(o[0], 2);
        o = run(mod, "kz", 1, 0);
        assert_int_equal(o[0], 0);
        ptx_module_free(mod);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_per_kernel_size),
                cmocka_unit_test(test_kernels_compute),
                cmocka_unit_test(test_function_scope),
                cmocka_unit_test(test_indirect_call),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
