// SPDX-License-Identifier: Apache-2.0
// vgpu's cuda backend (backend_cuda_ops) on the stand-in driver, libfakecuda.so, with a gpus.json
// in a temp dir: GPU discovery with MIG devices and CUDA_VISIBLE_DEVICES, framebuffers at fixed
// addresses, copies and fills, a framebuffer shared with another process (fb_export/fb_import),
// modules and launches, memory that runs out at the GPU's size across processes, and kernel
// faults that end the process's contexts and leave an Xid line; the driver's own rules, where the
// backend does not reach them, are in test_cuda_driver.c. Processes that need a fresh driver are
// this program again (--child MODE ...). The last test faults the process for good.
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_drv.h"
#include "ptx/ptx.h"
#include "test_cuda.h"

#ifndef FAKE_CUDA_PATH
#error "FAKE_CUDA_PATH must name the stand-in driver"
#endif

#define FB0_ADDR UINT64_C(0x7e0000000000)
#define FB0_SIZE (GIB + 4 * MIB) /* two chunks: 1 GiB and 4 MiB */
#define KID_ADDR UINT64_C(0x7e2000000000)
#define NO_ID    "4294967295"

#define H100_UUID "GPU-5e1f0c1e-0000-4000-8000-000000000001"
#define A100_UUID "GPU-5e1f0c1e-0000-4000-8000-000000000002"
#define MIG11     "MIG-7a0e2f1b-0000-4000-8000-000000000011"
#define MIG12     "MIG-7a0e2f1b-0000-4000-8000-000000000012"
#define MIG21     "MIG-7a0e2f1b-0000-4000-8000-000000000021"

/* GPU 0 an H100, GPU 1 a 64 MiB A100 (for running out), GPU 2 an H100 in MIG mode: a 2g.20gb
 * instance with two compute instances and a 1g.10gb one, two CUDA devices (a driver of R570 or
 * later enumerates one compute instance per GPU instance, the first). */
static const char gpus_json[] =
        "{\"driver_version\": 12090, \"gpus\": ["
        "{\"name\": \"NVIDIA H100 80GB HBM3\", \"uuid\": \"" H100_UUID "\", "
        "\"bus_id\": \"00000000:41:00.0\", \"pci_device_id\": 9008, \"mem_mib\": 81559, "
        "\"sms\": 132, \"cc\": [9, 0], \"mig_mode\": false},"
        "{\"name\": \"NVIDIA A100-SXM4-40GB\", \"uuid\": \"" A100_UUID "\", "
        "\"bus_id\": \"00000000:C1:00.0\", \"pci_device_id\": 8368, \"mem_mib\": 64, "
        "\"sms\": 108, \"cc\": [8, 0]},"
        "{\"name\": \"NVIDIA H100 80GB HBM3\", \"uuid\": "
        "\"GPU-5e1f0c1e-0000-4000-8000-000000000003\", "
        "\"bus_id\": \"00000000:42:00.0\", \"pci_device_id\": 9008, \"mem_mib\": 81559, "
        "\"sms\": 132, \"cc\": [9, 0], \"mig_mode\": true, \"gi_profiles\": ["
        "{\"profile\": 0, \"id\": 19, \"slices\": 1, \"mem_mib\": 9856, \"sms\": 16, \"count\": 7, "
        "\"placements\": [[0, 1], [1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1]]},"
        "{\"profile\": 1, \"id\": 14, \"slices\": 2, \"mem_mib\": 19968, \"sms\": 32, \"count\": "
        "3, "
        "\"placements\": [[0, 2], [2, 2], [4, 2]]}],"
        "\"gpu_instances\": ["
        "{\"id\": 1, \"profile_id\": 14, \"start\": 0, \"size\": 2, \"compute_instances\": ["
        "{\"id\": 0, \"slices\": 1, \"sms\": 16, \"uuid\": \"" MIG11 "\"},"
        "{\"id\": 1, \"slices\": 1, \"uuid\": \"" MIG12 "\"}]},"
        "{\"id\": 2, \"profile_id\": 19, \"start\": 2, \"size\": 1, \"compute_instances\": ["
        "{\"id\": 0, \"slices\": 1, \"sms\": 16, \"uuid\": \"" MIG21 "\"}]}]}]}";

const char ptx_text[] =
        ".version 7.0\n.target sm_70\n.address_size 64\n"
        ".global .align 4 .u32 counter = 5;\n"
        ".visible .entry add_n(.param .u64 p, .param .u32 n, .param .u32 v)\n{\n"
        "  .reg .u32 %r<8>;\n  .reg .u64 %rd<4>;\n  .reg .pred %p1;\n"
        "  ld.param.u64 %rd1, [p];\n  ld.param.u32 %r1, [n];\n  ld.param.u32 %r6, [v];\n"
        "  mov.u32 %r2, %ctaid.x;\n  mov.u32 %r3, %ntid.x;\n  mov.u32 %r4, %tid.x;\n"
        "  mad.lo.u32 %r5, %r2, %r3, %r4;\n  setp.ge.u32 %p1, %r5, %r1;\n  @%p1 bra DONE;\n"
        "  mul.wide.u32 %rd2, %r5, 4;\n  add.u64 %rd3, %rd1, %rd2;\n"
        "  ld.global.u32 %r7, [%rd3];\n  add.u32 %r7, %r7, %r6;\n  st.global.u32 [%rd3], %r7;\n"
        "DONE:\n  ret;\n}\n"
        ".visible .entry bump()\n{\n  .reg .u32 %r1;\n"
        "  ld.global.u32 %r1, [counter];\n  add.u32 %r1, %r1, 1;\n"
        "  st.global.u32 [counter], %r1;\n  ret;\n}\n"
        ".visible .entry staged(.param .u64 p)\n.maxntid 256, 1, 1\n{\n"
        "  .shared .align 4 .b8 buf[1024];\n  .reg .u32 %r<6>;\n  .reg .u64 %rd<4>;\n"
        "  mov.u32 %r1, %tid.x;\n  shl.b32 %r2, %r1, 2;\n  mov.u32 %r3, buf;\n"
        "  add.u32 %r3, %r3, %r2;\n  st.shared.u32 [%r3], %r1;\n  bar.sync 0;\n"
        "  ld.shared.u32 %r4, [%r3];\n  ld.param.u64 %rd1, [p];\n"
        "  mul.wide.u32 %rd2, %r1, 4;\n  add.u64 %rd3, %rd1, %rd2;\n"
        "  st.global.u32 [%rd3], %r4;\n  ret;\n}\n"
        ".visible .entry peek(.param .u64 p, .param .u64 out)\n{\n"
        "  .reg .u32 %r1;\n  .reg .u64 %rd<3>;\n"
        "  ld.param.u64 %rd1, [p];\n  ld.param.u64 %rd2, [out];\n"
        "  ld.global.u32 %r1, [%rd1];\n  st.global.u32 [%rd2], %r1;\n  ret;\n}\n"
        ".visible .entry boom()\n{\n  trap;\n  ret;\n}\n"
        /* dynamic shared memory: thread t stores t at word 16000 + t (past 48 KiB) and back */
        ".extern .shared .align 4 .b8 dyn[];\n"
        ".visible .entry deep(.param .u64 p)\n{\n"
        "  .reg .u32 %r<6>;\n  .reg .u64 %rd<4>;\n"
        "  mov.u32 %r1, %tid.x;\n  add.u32 %r2, %r1, 16000;\n  shl.b32 %r2, %r2, 2;\n"
        "  mov.u32 %r3, dyn;\n  add.u32 %r3, %r3, %r2;\n  st.shared.u32 [%r3], %r1;\n"
        "  bar.sync 0;\n  ld.shared.u32 %r4, [%r3];\n  ld.param.u64 %rd1, [p];\n"
        "  mul.wide.u32 %rd2, %r1, 4;\n  add.u64 %rd3, %rd1, %rd2;\n"
        "  st.global.u32 [%rd3], %r4;\n  ret;\n}\n";

static char dir[256];
static const struct backend_ops *ops = &backend_cuda_ops;

/* -- helpers --------------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

/* The file's text (static), or "" if it cannot be read. */
static const char *read_text(const char *path)
{
        static char buf[8192];
        FILE *f = fopen(path, "r");
        size_t n = 0;

        buf[0] = '\0';
        if (f) {
                n = fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
        }
        buf[n] = '\0';
        return buf;
}

/* The bytes <dir>/mem/<key>.<pid> holds, or -1 when there is no such file. */
static long long mem_file(const char *key, long pid)
{
        char path[512];
        const char *t;

        snprintf(path, sizeof(path), "%s/mem/%s.%ld", dir, key, pid);
        if (access(path, F_OK) != 0)
                return -1;
        t = read_text(path);
        return strtoll(t, NULL, 10);
}

static bool xid_has(const char *line)
{
        char path[512];

        snprintf(path, sizeof(path), "%s/xid", dir);
        return strstr(read_text(path), line) != NULL;
}

/*
 * Run this program as --child with args, CUDA_VISIBLE_DEVICES=visible (NULL: unset), without
 * VGPU_FAKE_GPU if unset_dir; fds become its 10, 11, ... Its exit status, or -1.
 */
static int run_child(const char *const *args, const char *visible, bool unset_dir, const int *fds,
                     size_t n_fds)
{
        const char *argv[16] = {"/proc/self/exe", "--child"};
        pid_t pid;
        int st = 0;
        size_t n = 2;

        for (; *args && n < 15; args++)
                argv[n++] = *args;
        argv[n] = NULL;
        /* the environment is set here, not between fork and exec (where malloc is not safe) */
        if (visible)
                setenv("CUDA_VISIBLE_DEVICES", visible, 1);
        if (unset_dir)
                unsetenv("VGPU_FAKE_GPU");
        pid = fork();
        if (pid == 0) {
                int high[8];

                /* out of the way first, so that no dup2 overwrites a descriptor still to move */
                for (size_t i = 0; i < n_fds && i < 8; i++)
                        high[i] = fcntl(fds[i], F_DUPFD, 100);
                for (size_t i = 0; i < n_fds && i < 8; i++) {
                        if (high[i] < 0 || dup2(high[i], 10 + (int)i) < 0)
                                _exit(126);
                }
                execv("/proc/self/exe", (char *const *)argv);
                _exit(127);
        }
        unsetenv("CUDA_VISIBLE_DEVICES");
        setenv("VGPU_FAKE_GPU", dir, 1);
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
                return -1;
        return WEXITSTATUS(st);
}

static struct backend_dev *open_dev(unsigned index, const char *uuid)
{
        struct backend_dev_req req = {.gpu_index = index, .gpu_uuid = uuid};
        struct backend_dev *d = NULL;
        char err[256] = "";
        int r = ops->dev_open(&req, &d, err, sizeof(err));

        if (r < 0)
                fprintf(stderr, "dev_open %u: %d %s\n", index, r, err);
        return r == 0 ? d : NULL;
}

static int reserve(struct backend_dev *d, uint64_t addr, uint64_t size, struct backend_fb *fb)
{
        struct backend_fb_req req = {.vgpu_uuid = "test", .device_address = addr, .size = size};

        return ops->fb_reserve(d, &req, fb);
}

static struct backend_func *function(struct backend_module *m, const char *name)
{
        struct backend_func *f = NULL;

        assert_int_equal(ops->module_function(m, name, &f), 0);
        return f;
}

static int launch(struct backend_queue *q, const struct backend_func *f, uint32_t grid,
                  uint32_t block, const void *params, size_t size)
{
        struct backend_launch_stats st;
        struct backend_launch l = {.grid = {grid, 1, 1},
                                   .block = {block, 1, 1},
                                   .params = params,
                                   .params_size = size};

        return ops->launch(q, f, &l, &st);
}

/* The same with shared bytes of dynamic shared memory. */
static int launch_shared(struct backend_queue *q, const struct backend_func *f, uint32_t block,
                         const void *params, size_t size, uint32_t shared)
{
        struct backend_launch_stats st;
        struct backend_launch l = {.grid = {1, 1, 1},
                                   .block = {block, 1, 1},
                                   .params = params,
                                   .params_size = size,
                                   .shared = shared};

        return ops->launch(q, f, &l, &st);
}

static int no_alloc(void *ctx, uint64_t size, uint64_t *ret)
{
        (void)ctx, (void)size, (void)ret;
        return -ENOMEM;
}

static void no_free(void *ctx, uint64_t addr)
{
        (void)ctx, (void)addr;
}

static const struct backend_allocator alloc = {.alloc = no_alloc, .free = no_free};

static int load(struct backend_dev *d, const void *image, size_t len, struct backend_module **m,
                char *log, size_t log_len)
{
        uint64_t globals = 1;
        int r = ops->module_load(d, image, len, &alloc, m, &globals, log, log_len);

        if (r == 0)
                assert_int_equal(globals, 0); /* the driver places them */
        return r;
}

/* -- child processes (--child MODE ...): exit 0 when every check holds ---------------------- */

static int bad;

#define EXPECT(c)                                                                                  \
        do {                                                                                       \
                if (!(c)) {                                                                        \
                        fprintf(stderr, "child %d, line %d: %s\n", (int)getpid(), __LINE__, #c);   \
                        bad = 1;                                                                   \
                }                                                                                  \
        } while (0)

/* gpus EXPECTED: the UUIDs gpus() lists, comma-separated; "-" for none (-ENODEV). */
static int child_gpus(const char *want)
{
        struct backend_gpu g[8];
        char err[256] = "", got[1024] = "";
        size_t n = 0;
        int r = ops->gpus(g, 8, &n, err, sizeof(err));

        if (strcmp(want, "-") == 0) {
                EXPECT(r == -ENODEV);
                EXPECT(strstr(err, "no NVIDIA driver") || strstr(err, "sees no GPU"));
                return bad;
        }
        EXPECT(r == 0);
        for (size_t i = 0; r == 0 && i < n; i++)
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? "," : "",
                         g[i].uuid);
        if (strcmp(got, want) != 0)
                fprintf(stderr, "child: devices %s, want %s\n", got, want);
        EXPECT(strcmp(got, want) == 0);
        /* a device opens by its UUID whatever its number */
        if (r == 0 && n > 0) {
                struct backend_dev *d = open_dev(99, g[n - 1].uuid);

                EXPECT(d != NULL);
                ops->dev_close(d);
        }
        return bad;
}

/* import ADDR SIZE N: map the framebuffer of fds 10.. at ADDR; check the parent's data. */
static int child_import(uint64_t addr, uint64_t size, size_t n)
{
        int fds[8];
        struct backend_dev *d = open_dev(0, NULL);
        struct backend_fb_req req = {.device_address = addr, .size = size};
        struct backend_fb fb, again;
        struct backend_queue *q = NULL;
        char buf[32] = "";
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

        if (!d || n > 8)
                return 1;
        for (size_t i = 0; i < n; i++)
                fds[i] = 10 + (int)i;
        /* not memory of the driver's */
        EXPECT(ops->fb_import(d, &req, &devnull, 1, &fb) < 0);
        EXPECT(ops->fb_import(d, &req, fds, n, &fb) == 0);
        EXPECT(ops->fb_import(d, &req, fds, n, &again) == -EEXIST);
        EXPECT(ops->queue_new(d, &q) == 0);
        EXPECT(ops->copy_dtoh(q, buf, addr + GIB - 8, 16) == 0);
        EXPECT(memcmp(buf, "parent's bytes!", 16) == 0);
        EXPECT(ops->copy_htod(q, addr + 100, "child was here", 15) == 0);
        /* imported memory is the parent's, not counted again */
        EXPECT(mem_file("gpu0", (long)getpid()) == -1);
        ops->queue_free(q);
        ops->fb_release(d, &fb);
        ops->dev_close(d);
        close(devnull);
        return bad;
}

/* oom ADDR: the parent holds 40 of GPU 1's 64 MiB; exit holding 24 MiB. */
static int child_oom(uint64_t addr)
{
        /* static: what it holds at exit is still reachable (no leak for LeakSanitizer) */
        static struct backend_dev *d;
        static struct backend_fb fb, more;
        size_t free_b = 1, total = 0;

        d = open_dev(1, NULL);
        if (!d)
                return 1;
        EXPECT(reserve(d, addr, 40 * MIB, &fb) == -ENOMEM);
        EXPECT(reserve(d, addr, 24 * MIB, &fb) == 0);
        EXPECT(reserve(d, addr + 64 * MIB, 2 * MIB, &more) == -ENOMEM);
        EXPECT(cu.mem_get_info(&free_b, &total) == CUDA_SUCCESS);
        EXPECT(free_b == 0 && total == 64 * MIB);
        EXPECT(mem_file("gpu1", (long)getpid()) == (long long)(24 * MIB));
        return bad; /* exits holding it: a dead process's memory is free again */
}

/* fault ORDINAL KIND: a kernel fault (illegal, misaligned, trap) on a device, seen at the sync. */
static int child_fault(unsigned ordinal, const char *kind)
{
        static struct backend_dev *d; /* static: lost with the context, kept to the end */
        static struct backend_module *m;
        static struct backend_queue *q;
        static struct backend_fb fb;
        struct {
                uint64_t p, out;
        } args = {KID_ADDR, KID_ADDR + 64};
        int want = PTX_EILLEGAL_ADDRESS, r;
        char log[256];

        d = open_dev(ordinal, NULL);
        if (!d)
                return 1;
        EXPECT(reserve(d, KID_ADDR, 2 * MIB, &fb) == 0);
        EXPECT(ops->queue_new(d, &q) == 0);
        EXPECT(load(d, ptx_text, sizeof(ptx_text), &m, log, sizeof(log)) == 0);
        if (bad)
                return bad;
        if (strcmp(kind, "illegal") == 0) {
                args.p = KID_ADDR + 2 * MIB; /* just past the framebuffer */
                r = launch(q, function(m, "peek"), 1, 1, &args, sizeof(args));
        } else if (strcmp(kind, "misaligned") == 0) {
                args.p = KID_ADDR + 2;
                want = PTX_EMISALIGNED;
                r = launch(q, function(m, "peek"), 1, 1, &args, sizeof(args));
        } else {
                want = PTX_ETRAP; /* CUDA_ERROR_LAUNCH_FAILED */
                r = launch(q, function(m, "boom"), 1, 32, NULL, 0);
        }
        EXPECT(r == 0); /* asynchronous: the fault shows at the sync */
        EXPECT(ops->queue_sync(q) == want);
        EXPECT(ops->dev_lost(d) == want);
        EXPECT(ops->copy_htod(q, KID_ADDR, "x", 1) == want);
        return bad;
}

static int child_main(int argc, char **argv)
{
        if (argc == 4 && strcmp(argv[2], "gpus") == 0)
                return child_gpus(argv[3]);
        if (argc == 6 && strcmp(argv[2], "import") == 0)
                return child_import(strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
                                    strtoul(argv[5], NULL, 0));
        if (argc == 4 && strcmp(argv[2], "oom") == 0)
                return child_oom(strtoull(argv[3], NULL, 0));
        if (argc == 5 && strcmp(argv[2], "fault") == 0)
                return child_fault((unsigned)atoi(argv[3]), argv[4]);
        fprintf(stderr, "bad --child arguments\n");
        return 2;
}

/* -- tests, in order: the last one faults the process ---------------------------------------- */

static struct backend_dev *dev0;
static struct backend_fb fb0;
static struct backend_queue *q0;
static struct backend_module *mod0;

static void test_gpus(void **state)
{
        struct backend_gpu g[8];
        char err[256] = "";
        size_t n = 0;

        (void)state;
        assert_int_equal(ops->gpus(g, 8, &n, err, sizeof(err)), 0);
        assert_int_equal(n, 4);
        assert_string_equal(g[0].name, "NVIDIA H100 80GB HBM3");
        assert_string_equal(g[0].uuid, H100_UUID);
        assert_string_equal(g[0].bus_id, "00000000:41:00.0");
        assert_int_equal(g[0].mem_total, 81559 * MIB);
        assert_int_equal(g[0].sm_count, 132);
        assert_int_equal(g[0].cc_major, 9);
        assert_int_equal(g[0].cc_minor, 0);
        assert_string_equal(g[1].uuid, A100_UUID);
        assert_string_equal(g[1].bus_id, "00000000:C1:00.0");
        assert_int_equal(g[1].mem_total, 64 * MIB);
        assert_int_equal(g[1].sm_count, 108);
        assert_int_equal(g[1].cc_major, 8);
        /* MIG devices: their instance's memory, their own SMs and UUID, their GPU's bus */
        assert_string_equal(g[2].name, "NVIDIA H100 80GB HBM3 MIG 1c.2g.20gb");
        assert_string_equal(g[2].uuid, MIG11);
        assert_string_equal(g[2].bus_id, "00000000:42:00.0");
        assert_int_equal(g[2].mem_total, 19968 * MIB);
        assert_int_equal(g[2].sm_count, 16);
        /* MIG12, GPU instance 1's second compute instance, only when named (below) */
        assert_string_equal(g[3].name, "NVIDIA H100 80GB HBM3 MIG 1g.10gb");
        assert_string_equal(g[3].uuid, MIG21);
        assert_int_equal(g[3].mem_total, 9856 * MIB);
}

/* CUDA_VISIBLE_DEVICES is read at cuInit: each case is a process of its own. */
static void test_visible_devices(void **state)
{
        const char *gpus[] = {"gpus", NULL, NULL};

        (void)state;
        gpus[1] = MIG21 "," A100_UUID "," H100_UUID;
        assert_int_equal(run_child(gpus,
                                   MIG21 ", 1, GPU-5e1f0c1e-0000-4000-8000-000000000001 ,"
                                         "bogus,0",
                                   false, NULL, 0),
                         0);
        gpus[1] = MIG11 "," H100_UUID;
        assert_int_equal(run_child(gpus, " 2 , 0", false, NULL, 0), 0);
        /* a prefix names a device only when it is unique; enumeration stops at one that is not */
        gpus[1] = A100_UUID;
        assert_int_equal(
                run_child(gpus, "1,GPU-5e1f0c1e-0000-4000-8000-00000000000,0", false, NULL, 0), 0);
        gpus[1] = MIG12;
        assert_int_equal(
                run_child(gpus, "MIG-7a0e2f1b-0000-4000-8000-000000000012", false, NULL, 0), 0);
        /* one compute instance of a GPU instance: the first named; the others are passed over */
        gpus[1] = MIG12 "," MIG21;
        assert_int_equal(run_child(gpus, MIG12 "," MIG11 "," MIG21, false, NULL, 0), 0);
        gpus[1] = "-";
        /* a GPU in MIG mode is no CUDA device; an empty list shows nothing; 4 is past the end */
        assert_int_equal(
                run_child(gpus, "GPU-5e1f0c1e-0000-4000-8000-000000000003", false, NULL, 0), 0);
        assert_int_equal(run_child(gpus, "", false, NULL, 0), 0);
        assert_int_equal(run_child(gpus, "4,0", false, NULL, 0), 0);
        assert_int_equal(run_child(gpus, "MIG-7a0e2f1b", false, NULL, 0), 0);
        /* no configuration: no GPU */
        assert_int_equal(run_child(gpus, NULL, true, NULL, 0), 0);
}

/*
 * Before R570 (driver version 12080) a process enumerates one MIG device in all, and no GPU that
 * is not in MIG mode beside it (the MIG user guide, "CUDA Device Enumeration").
 */
static void test_visible_devices_before_r570(void **state)
{
        const char *gpus[] = {"gpus", NULL, NULL};
        char old[600], path[700];
        char *json = strdup(gpus_json);

        (void)state;
        assert_non_null(json);
        memcpy(strstr(json, "12090"), "12060", 5);
        snprintf(old, sizeof(old), "%s/r560", dir);
        assert_int_equal(mkdir(old, 0755), 0);
        snprintf(path, sizeof(path), "%s/gpus.json", old);
        write_file(path, json);
        free(json);
        setenv("VGPU_FAKE_GPU", old, 1); /* run_child sets it back */
        gpus[1] = MIG11;
        assert_int_equal(run_child(gpus, NULL, false, NULL, 0), 0);
        setenv("VGPU_FAKE_GPU", old, 1);
        gpus[1] = MIG21;
        assert_int_equal(run_child(gpus, H100_UUID "," MIG21 "," MIG11, false, NULL, 0), 0);
        setenv("VGPU_FAKE_GPU", old, 1);
        gpus[1] = H100_UUID "," A100_UUID;
        assert_int_equal(run_child(gpus, H100_UUID "," A100_UUID, false, NULL, 0), 0);
}

static void test_fb(void **state)
{
        static uint8_t pat[64 * 1024], back[64 * 1024];
        uint8_t rows[3 * 64];
        uint16_t h16[9];
        uint32_t w32[8];
        struct backend_fb other;
        void *host;

        (void)state;
        for (size_t i = 0; i < sizeof(pat); i++)
                pat[i] = (uint8_t)(i * 7 + 3);
        dev0 = open_dev(0, NULL);
        assert_non_null(dev0);
        assert_int_equal(reserve(dev0, FB0_ADDR, FB0_SIZE, &fb0), 0);
        assert_int_equal(fb0.device_address, FB0_ADDR);
        assert_int_equal(ops->fb_resident(&fb0), FB0_SIZE);
        assert_int_equal(mem_file("gpu0", (long)getpid()), (long long)FB0_SIZE);
        /* a taken range, whole or in part */
        assert_int_equal(reserve(dev0, FB0_ADDR, 2 * MIB, &other), -EEXIST);
        assert_int_equal(reserve(dev0, FB0_ADDR + GIB, 2 * MIB, &other), -EEXIST);
        assert_int_equal(reserve(dev0, FB0_ADDR - 2 * MIB, 4 * MIB, &other), -EEXIST);
        assert_int_equal(mem_file("gpu0", (long)getpid()), (long long)FB0_SIZE);
        assert_int_equal(ops->queue_new(dev0, &q0), 0);
        /* across the two chunks */
        assert_int_equal(ops->copy_htod(q0, FB0_ADDR + GIB - 32 * 1024, pat, sizeof(pat)), 0);
        assert_int_equal(ops->copy_dtoh(q0, back, FB0_ADDR + GIB - 32 * 1024, sizeof(back)), 0);
        assert_memory_equal(back, pat, sizeof(pat));
        /* outside the framebuffer: refused, and nothing lost */
        assert_int_equal(ops->copy_htod(q0, FB0_ADDR + FB0_SIZE - 8, pat, 16), -EINVAL);
        assert_int_equal(ops->copy_dtoh(q0, back, 0x10000, 8), -EINVAL);
        assert_int_equal(ops->copy_dtod(q0, FB0_ADDR, FB0_ADDR + FB0_SIZE, 8), -EINVAL);
        assert_int_equal(ops->dev_lost(dev0), 0);
        /* fills of 1, 2 and 4 bytes, with a pitch */
        assert_int_equal(ops->memset(q0, FB0_ADDR, 0, 0, 1, sizeof(rows), 1), 0);
        assert_int_equal(ops->memset(q0, FB0_ADDR, 64, 0xab, 1, 10, 3), 0);
        assert_int_equal(ops->copy_dtoh(q0, rows, FB0_ADDR, sizeof(rows)), 0);
        for (size_t i = 0; i < sizeof(rows); i++)
                assert_int_equal(rows[i], i % 64 < 10 ? 0xab : 0);
        assert_int_equal(ops->memset(q0, FB0_ADDR + 4096, 0, 0xbeef, 2, 8, 1), 0);
        assert_int_equal(ops->copy_dtoh(q0, h16, FB0_ADDR + 4096, sizeof(h16)), 0);
        for (size_t i = 0; i < 8; i++)
                assert_int_equal(h16[i], 0xbeef);
        assert_int_equal(ops->memset(q0, FB0_ADDR + 8192, 16, 0xdeadbeef, 4, 2, 2), 0);
        assert_int_equal(ops->copy_dtoh(q0, w32, FB0_ADDR + 8192, sizeof(w32)), 0);
        assert_int_equal(w32[0], 0xdeadbeef);
        assert_int_equal(w32[1], 0xdeadbeef);
        assert_int_equal(w32[4], 0xdeadbeef);
        assert_int_equal(w32[5], 0xdeadbeef);
        assert_int_equal(ops->memset(q0, FB0_ADDR + FB0_SIZE - 4, 0, 1, 4, 2, 1), -EINVAL);
        /* a device copy, then the queue */
        assert_int_equal(
                ops->copy_dtod(q0, FB0_ADDR + 12288, FB0_ADDR + GIB - 32 * 1024, sizeof(pat)), 0);
        assert_int_equal(ops->queue_sync(q0), 0);
        assert_int_equal(ops->copy_dtoh(q0, back, FB0_ADDR + 12288, sizeof(back)), 0);
        assert_memory_equal(back, pat, sizeof(pat));
        /* page-locked host memory, once */
        host = aligned_alloc(4096, 8192);
        assert_non_null(host);
        assert_int_equal(ops->host_register(dev0, host, 8192), 0);
        assert_true(ops->host_register(dev0, host, 4096) < 0);
        ops->host_unregister(dev0, host);
        assert_int_equal(ops->host_register(dev0, host, 8192), 0);
        ops->host_unregister(dev0, host);
        free(host);
        /* for test_export_import's child */
        assert_int_equal(ops->copy_htod(q0, FB0_ADDR + GIB - 8, "parent's bytes!", 16), 0);
}

/* An engine's worker: the same memory, mapped at the same address in another process. */
static void test_export_import(void **state)
{
        int fds[8];
        size_t n = 0;
        char a[32], s[32], k[8], back[16] = "";
        const char *args[] = {"import", a, s, k, NULL};

        (void)state;
        assert_non_null(dev0);
        assert_int_equal(ops->fb_export(dev0, &fb0, fds, 8, &n), 0);
        assert_int_equal(n, 2); /* 1 GiB chunks */
        snprintf(a, sizeof(a), "%" PRIu64, FB0_ADDR);
        snprintf(s, sizeof(s), "%" PRIu64, FB0_SIZE);
        snprintf(k, sizeof(k), "%zu", n);
        assert_int_equal(run_child(args, NULL, false, fds, n), 0);
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        assert_int_equal(ops->copy_dtoh(q0, back, FB0_ADDR + 100, 15), 0);
        assert_string_equal(back, "child was here");
        assert_int_equal(mem_file("gpu0", (long)getpid()), (long long)FB0_SIZE);
}

static void test_modules(void **state)
{
        struct {
                uint64_t p;
                uint32_t n, v;
        } add = {FB0_ADDR + 2 * MIB, 1000, 3};
        uint64_t p = FB0_ADDR + 4 * MIB, gaddr = 0, gsize = 0;
        uint32_t words[1000], off = 0, size = 0, v = 0;
        static const uint8_t elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
        struct backend_func_info info;
        struct backend_func *f, *fs, *fb, *fd, *x;
        struct backend_module *m;
        char log[512] = "";

        (void)state;
        assert_non_null(dev0);
        assert_int_equal(load(dev0, ptx_text, sizeof(ptx_text), &mod0, log, sizeof(log)), 0);
        f = function(mod0, "add_n");
        ops->func_info(f, &info);
        assert_int_equal(info.n_params, 3);
        assert_int_equal(info.param_size, 16);
        assert_int_equal(info.max_threads, 1024);
        assert_int_equal(ops->func_param(f, 2, &off, &size), 0);
        assert_int_equal(off, 12);
        assert_int_equal(size, 4);
        assert_int_equal(ops->func_param(f, 3, &off, &size), -ENOENT);
        fs = function(mod0, "staged");
        ops->func_info(fs, &info);
        assert_int_equal(info.static_shared, 1024);
        assert_int_equal(info.max_threads, 256);
        assert_int_equal(ops->module_function(mod0, "nope", &x), PTX_ENOTFOUND);
        /* a module variable: outside the framebuffer, reachable by copies and kernels */
        assert_int_equal(ops->module_global(mod0, "counter", &gaddr, &gsize), 0);
        assert_int_equal(gsize, 4);
        assert_true(gaddr + 4 <= FB0_ADDR || gaddr >= FB0_ADDR + FB0_SIZE);
        assert_int_equal(ops->module_global(mod0, "nope", &gaddr, &gsize), PTX_ENOTFOUND);
        assert_int_equal(ops->module_global(mod0, "counter", &gaddr, &gsize), 0);
        assert_int_equal(ops->copy_dtoh(q0, &v, gaddr, 4), 0);
        assert_int_equal(v, 5);
        v = 7;
        assert_int_equal(ops->copy_htod(q0, gaddr, &v, 4), 0);
        fb = function(mod0, "bump");
        assert_int_equal(launch(q0, fb, 1, 1, NULL, 0), 0);
        assert_int_equal(ops->copy_dtoh(q0, &v, gaddr, 4), 0);
        assert_int_equal(v, 8);
        /* a grid over the framebuffer */
        for (uint32_t i = 0; i < 1000; i++)
                words[i] = i;
        assert_int_equal(ops->copy_htod(q0, add.p, words, sizeof(words)), 0);
        assert_int_equal(launch(q0, f, 4, 256, &add, sizeof(add)), 0);
        assert_int_equal(ops->queue_sync(q0), 0);
        assert_int_equal(ops->copy_dtoh(q0, words, add.p, sizeof(words)), 0);
        for (uint32_t i = 0; i < 1000; i++)
                assert_int_equal(words[i], i + 3);
        /* shared memory */
        assert_int_equal(launch(q0, fs, 1, 256, &p, sizeof(p)), 0);
        assert_int_equal(ops->copy_dtoh(q0, words, p, 256 * 4), 0);
        for (uint32_t i = 0; i < 256; i++)
                assert_int_equal(words[i], i);
        /*
         * Past 48 KiB of dynamic shared memory the driver wants the kernel's opt-in
         * (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES); the backend makes it, as the guest
         * driver has checked the guest's own.
         */
        fd = function(mod0, "deep");
        memset(words, 0xff, 256 * 4);
        assert_int_equal(ops->copy_htod(q0, p, words, 256 * 4), 0);
        assert_int_equal(launch_shared(q0, fd, 256, &p, sizeof(p), 64 * 1024), 0);
        assert_int_equal(ops->copy_dtoh(q0, words, p, 256 * 4), 0);
        for (uint32_t i = 0; i < 256; i++)
                assert_int_equal(words[i], i);
        assert_int_equal(launch_shared(q0, fd, 256, &p, sizeof(p), 100 * 1024), 0);
        /* past the device's opt-in limit (227 KiB on an H100): refused, nothing lost */
        assert_int_equal(launch_shared(q0, fd, 256, &p, sizeof(p), 228 * 1024), -EINVAL);
        assert_int_equal(ops->dev_lost(dev0), 0);
        /* bad configurations fail at once and lose nothing */
        assert_int_equal(launch(q0, fs, 1, 512, &p, sizeof(p)), -EINVAL);
        assert_int_equal(launch(q0, f, 1, 1025, &add, sizeof(add)), -EINVAL);
        assert_int_equal(ops->dev_lost(dev0), 0);
        /* GPU time, measured by events around each launch */
        assert_int_equal(ops->queue_gpu_time(q0, false), 0);
        assert_int_equal(launch(q0, f, 4, 256, &add, sizeof(add)), 0);
        assert_true(ops->queue_gpu_time(q0, true) > 0);
        /* images the stand-in cannot run, with the reason in the log */
        assert_int_equal(load(dev0, elf, sizeof(elf), &m, log, sizeof(log)), PTX_ENOPTX);
        assert_non_null(strstr(log, "cubin"));
        assert_int_equal(load(dev0, "this is no PTX", 15, &m, log, sizeof(log)), PTX_EPARSE);
        assert_true(strlen(log) > 0);
}

/* Memory runs out at the GPU's size, counted over every live process. */
static void test_out_of_memory(void **state)
{
        struct backend_dev *d1 = open_dev(1, NULL);
        struct backend_fb f1, f2, f3;
        char a[32];
        const char *args[] = {"oom", a, NULL};

        (void)state;
        assert_non_null(d1);
        assert_int_equal(reserve(d1, FB1_ADDR, 40 * MIB, &f1), 0);
        assert_int_equal(mem_file("gpu1", (long)getpid()), (long long)(40 * MIB));
        snprintf(a, sizeof(a), "%" PRIu64, KID_ADDR);
        assert_int_equal(run_child(args, NULL, false, NULL, 0), 0);
        /* the child exited holding 24 MiB: that is free again */
        assert_int_equal(reserve(d1, FB1_ADDR + 64 * MIB, 24 * MIB, &f2), 0);
        assert_int_equal(reserve(d1, FB1_ADDR + 128 * MIB, 2 * MIB, &f3), -ENOMEM);
        ops->fb_release(d1, &f2);
        ops->fb_release(d1, &f1);
        assert_int_equal(mem_file("gpu1", (long)getpid()), -1);
        ops->dev_close(d1);
}

/* Faults in other processes, on a MIG device and a whole GPU: each an Xid line. */
static void test_faults_elsewhere(void **state)
{
        const char *illegal[] = {"fault", "3", "illegal", NULL};
        const char *trap[] = {"fault", "1", "trap", NULL};
        const char *misaligned[] = {"fault", "0", "misaligned", NULL};

        (void)state;
        assert_int_equal(run_child(illegal, NULL, false, NULL, 0), 0);
        assert_true(xid_has("2 2 0 31\n"));
        assert_int_equal(run_child(trap, NULL, false, NULL, 0), 0);
        assert_true(xid_has("1 " NO_ID " " NO_ID " 13\n"));
        assert_int_equal(run_child(misaligned, MIG12, false, NULL, 0), 0);
        assert_true(xid_has("2 1 1 13\n"));
        /* this process runs on */
        assert_int_equal(ops->queue_sync(q0), 0);
        assert_int_equal(ops->dev_lost(dev0), 0);
}

/* Last: a kernel reading past the framebuffer ends every context of this process. */
static void test_fault(void **state)
{
        struct {
                uint64_t p, out;
        } args = {FB0_ADDR + FB0_SIZE, FB0_ADDR};
        int n = 0;

        (void)state;
        assert_non_null(mod0);
        assert_false(xid_has("0 " NO_ID " " NO_ID " 31\n"));
        assert_int_equal(launch(q0, function(mod0, "peek"), 1, 1, &args, sizeof(args)), 0);
        assert_int_equal(ops->queue_sync(q0), PTX_EILLEGAL_ADDRESS);
        assert_int_equal(ops->dev_lost(dev0), PTX_EILLEGAL_ADDRESS);
        assert_int_equal(ops->copy_htod(q0, FB0_ADDR, "x", 1), PTX_EILLEGAL_ADDRESS);
        assert_true(xid_has("0 " NO_ID " " NO_ID " 31\n"));
        /* no context can be made any more; the devices are still there */
        assert_null(open_dev(1, NULL));
        assert_int_equal(cu.device_count(&n), CUDA_SUCCESS);
        assert_int_equal(n, 4);
        /* everything is still given back */
        ops->module_free(mod0);
        ops->queue_free(q0);
        ops->fb_release(dev0, &fb0);
        ops->dev_close(dev0);
        assert_int_equal(mem_file("gpu0", (long)getpid()), -1);
}

static int setup(void **state)
{
        char path[512];

        (void)state;
        snprintf(dir, sizeof(dir), "%s/vgpu-fakecuda-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir))
                return -1;
        snprintf(path, sizeof(path), "%s/gpus.json", dir);
        write_file(path, gpus_json);
        setenv("VGPU_FAKE_GPU", dir, 1);
        setenv("VGPU_CUDA_DRIVER", FAKE_CUDA_PATH, 1);
        unsetenv("CUDA_VISIBLE_DEVICES");
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

static int teardown(void **state)
{
        (void)state;
        return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exports),
                cmocka_unit_test(test_gpus),
                cmocka_unit_test(test_visible_devices),
                cmocka_unit_test(test_visible_devices_before_r570),
                cmocka_unit_test(test_driver_rules),
                cmocka_unit_test(test_driver_modules),
                cmocka_unit_test(test_driver_images),
                cmocka_unit_test(test_fb),
                cmocka_unit_test(test_export_import),
                cmocka_unit_test(test_modules),
                cmocka_unit_test(test_out_of_memory),
                cmocka_unit_test(test_faults_elsewhere),
                cmocka_unit_test(test_fault),
        };

        if (argc >= 2 && strcmp(argv[1], "--child") == 0) {
                snprintf(dir, sizeof(dir), "%s",
                         getenv("VGPU_FAKE_GPU") ? getenv("VGPU_FAKE_GPU") : "");
                return child_main(argc, argv);
        }
        return cmocka_run_group_tests(tests, setup, teardown);
}
