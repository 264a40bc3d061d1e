// SPDX-License-Identifier: Apache-2.0
// The NVML loader: it fails cleanly, with a reason, when there is no library or the library is not
// NVML; it reads GPUs, MIG devices, telemetry and Xid events right from a stand-in NVML
// (fake_nvml.c); and where a real driver is present, what it reports is sane. Never skips.
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backend/cuda/nvml.h"

#ifndef FAKE_NVML_PATH
#error "FAKE_NVML_PATH must name the stand-in NVML library"
#endif

/* Every call that needs NVML open says -ENODEV, and writes none of its outputs. */
static void assert_not_open(void)
{
        struct vgpu_nvml_gpu gpu = {.index = 1234};
        struct vgpu_nvml_sample s = {.temp_c = -77};
        unsigned idx = 99;
        unsigned long long xid = 99;
        size_t n = 42;

        assert_int_equal(vgpu_nvml_gpus(&gpu, 1, &n), -ENODEV);
        assert_int_equal(n, 42);
        assert_int_equal(gpu.index, 1234);
        assert_true(strlen(vgpu_nvml_strerror()) > 0);
        assert_int_equal(vgpu_nvml_sample(0, &s), -ENODEV);
        assert_int_equal(s.temp_c, -77);
        assert_int_equal(vgpu_nvml_xid_watch(0), -ENODEV);
        assert_int_equal(vgpu_nvml_xid_poll(0, &idx, &xid), -ENODEV);
        assert_int_equal(idx, 99);
        assert_int_equal(xid, 99);
}

static void test_missing_library(void **state)
{
        char err[256] = "";

        (void)state;
        setenv("VGPU_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);
        assert_int_equal(vgpu_nvml_open(err, sizeof(err)), -ENODEV);
        assert_non_null(strstr(err, "/nonexistent/libnvidia-ml.so.1"));
        assert_non_null(strstr(err, "cannot open shared object file"));
        assert_string_equal(vgpu_nvml_strerror(), err);
        assert_not_open();
        vgpu_nvml_close(); /* nothing open: does nothing */
        assert_not_open();

        /* A short buffer, or none, still fails cleanly. */
        assert_int_equal(vgpu_nvml_open(err, 8), -ENODEV);
        assert_int_equal(strlen(err), 7);
        assert_int_equal(vgpu_nvml_open(NULL, 0), -ENODEV);
        unsetenv("VGPU_NVML_LIB");
}

static void test_not_nvml(void **state)
{
        char err[256] = "";

        (void)state;
        setenv("VGPU_NVML_LIB", "libc.so.6", 1);
        assert_int_equal(vgpu_nvml_open(err, sizeof(err)), -ENODEV);
        assert_non_null(strstr(err, "nvmlInit_v2"));
        assert_not_open();
        unsetenv("VGPU_NVML_LIB");
}

static void test_init_fails(void **state)
{
        char err[256] = "";

        (void)state;
        setenv("VGPU_NVML_LIB", FAKE_NVML_PATH, 1);
        setenv("FAKE_NVML_INIT_FAIL", "1", 1);
        assert_int_equal(vgpu_nvml_open(err, sizeof(err)), -ENODEV);
        assert_string_equal(err, "nvmlInit_v2: Driver Not Loaded");
        assert_not_open();
        unsetenv("FAKE_NVML_INIT_FAIL");
        unsetenv("VGPU_NVML_LIB");
}

/* The stand-in's counters; it stays loaded while the test holds dl, so they survive close. */
struct fake {
        void *dl;
        int (*inits)(void);
        int (*shutdowns)(void);
        int (*sets_live)(void);
};

static int fake_setup(void **state)
{
        static struct fake f;

        f.dl = dlopen(FAKE_NVML_PATH, RTLD_NOW | RTLD_LOCAL);
        if (!f.dl)
                return -1;
        f.inits = (int (*)(void))dlsym(f.dl, "fake_nvml_inits");
        f.shutdowns = (int (*)(void))dlsym(f.dl, "fake_nvml_shutdowns");
        f.sets_live = (int (*)(void))dlsym(f.dl, "fake_nvml_sets_live");
        if (!f.inits || !f.shutdowns || !f.sets_live)
                return -1;
        setenv("VGPU_NVML_LIB", FAKE_NVML_PATH, 1);
        *state = &f;
        return 0;
}

static int fake_teardown(void **state)
{
        struct fake *f = *state;

        unsetenv("VGPU_NVML_LIB");
        dlclose(f->dl);
        return 0;
}

static void test_fake_gpus(void **state)
{
        struct fake *f = *state;
        struct vgpu_nvml_gpu gpus[4];
        struct vgpu_nvml_sample s;
        char err[256] = "";
        size_t n = 0;
        int inits = f->inits(), shutdowns = f->shutdowns();

        assert_int_equal(vgpu_nvml_open(err, sizeof(err)), 0);
        assert_int_equal(vgpu_nvml_open(NULL, 0), 0); /* a second reference */
        assert_int_equal(f->inits(), inits + 1);

        assert_int_equal(vgpu_nvml_gpus(gpus, 4, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(gpus[0].index, 0);
        assert_string_equal(gpus[0].name, "NVIDIA H100 80GB HBM3");
        assert_string_equal(gpus[0].uuid, "GPU-11111111-2222-3333-4444-555555555555");
        assert_int_equal(gpus[0].pci_device_id, 0x2330);
        assert_string_equal(gpus[0].bus_id, "00000000:41:00.0");
        assert_int_equal(gpus[0].mem_total, 81559ULL << 20);
        assert_false(gpus[0].mig_enabled);
        assert_int_equal(gpus[0].n_mig, 0);

        assert_int_equal(gpus[1].index, 1);
        assert_int_equal(gpus[1].pci_device_id, 0x20b0);
        assert_true(gpus[1].mig_enabled);
        assert_int_equal(gpus[1].n_mig, 2); /* slots 0 and 2; slot 1 is empty */
        assert_int_equal(gpus[1].mig[0].gi_id, 1);
        assert_int_equal(gpus[1].mig[0].ci_id, 0);
        assert_int_equal(gpus[1].mig[0].profile_slices, 3);
        assert_int_equal(gpus[1].mig[0].ci_slices, 3);
        assert_int_equal(gpus[1].mig[0].sm_count, 42);
        assert_int_equal(gpus[1].mig[0].mem_total, 20096ULL << 20);
        assert_string_equal(gpus[1].mig[0].uuid, "MIG-00000000-0000-0000-0000-000000000001");
        assert_int_equal(gpus[1].mig[1].gi_id, 7);
        assert_int_equal(gpus[1].mig[1].profile_slices, 1);
        assert_int_equal(gpus[1].mig[1].mem_total, 4864ULL << 20);

        /* Room for one: one written, the rest of the array untouched. */
        memset(gpus, 0xa5, sizeof(gpus));
        assert_int_equal(vgpu_nvml_gpus(gpus, 1, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(gpus[1].index, 0xa5a5a5a5);
        assert_int_equal(vgpu_nvml_gpus(NULL, 0, &n), 0);
        assert_int_equal(n, 0);

        assert_int_equal(vgpu_nvml_sample(0, &s), 0);
        assert_int_equal(s.gpu_util, 42);
        assert_int_equal(s.mem_util, 7);
        assert_int_equal(s.mem_used, 1024ULL << 20);
        assert_int_equal(s.mem_total, 81559ULL << 20);
        assert_int_equal(s.temp_c, 30);
        assert_int_equal(s.power_mw, 70000);
        /* In MIG mode utilisation is not supported: it reads 0, the rest is there. */
        assert_int_equal(vgpu_nvml_sample(1, &s), 0);
        assert_int_equal(s.gpu_util, 0);
        assert_int_equal(s.temp_c, 31);
        s.temp_c = -77;
        assert_int_equal(vgpu_nvml_sample(2, &s), -ENOENT);
        assert_int_equal(s.temp_c, -77);
        assert_non_null(strstr(vgpu_nvml_strerror(), "nvmlDeviceGetHandleByIndex_v2"));

        vgpu_nvml_close();
        assert_int_equal(f->shutdowns(), shutdowns); /* one reference left */
        vgpu_nvml_close();
        assert_int_equal(f->shutdowns(), shutdowns + 1);
        assert_not_open();
        vgpu_nvml_close(); /* one too many: does nothing */
        assert_int_equal(f->shutdowns(), shutdowns + 1);
}

static void test_fake_failures(void **state)
{
        struct fake *f = *state;
        struct vgpu_nvml_gpu gpus[2];
        size_t n = 42;
        int shutdowns = f->shutdowns();

        assert_int_equal(vgpu_nvml_open(NULL, 0), 0);

        /* GPU 1 lost halfway: left out (NVML's words logged), GPU 0 listed, nothing past it. */
        setenv("FAKE_NVML_LOST", "1", 1);
        memset(gpus, 0x5a, sizeof(gpus));
        assert_int_equal(vgpu_nvml_gpus(gpus, 2, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(gpus[0].index, 0);
        assert_int_equal(gpus[1].index, 0x5a5a5a5a);
        assert_string_equal(vgpu_nvml_strerror(), "nvmlDeviceGetMemoryInfo: GPU is lost");
        unsetenv("FAKE_NVML_LOST");

        /* More MIG devices than fit: the first VGPU_NVML_MAX_MIG, no overflow. */
        setenv("FAKE_NVML_MANY", "1", 1);
        assert_int_equal(vgpu_nvml_gpus(gpus, 2, &n), 0);
        assert_int_equal(gpus[1].n_mig, VGPU_NVML_MAX_MIG);
        assert_int_equal(gpus[1].mig[VGPU_NVML_MAX_MIG - 1].gi_id, 5 + VGPU_NVML_MAX_MIG - 1);
        unsetenv("FAKE_NVML_MANY");

        vgpu_nvml_close();
        assert_int_equal(f->shutdowns(), shutdowns + 1);
}

static void test_fake_xid(void **state)
{
        struct fake *f = *state;
        struct vgpu_nvml_xid ev = {0};
        unsigned idx = 99;
        unsigned long long xid = 99;
        int shutdowns = f->shutdowns();

        assert_int_equal(vgpu_nvml_open(NULL, 0), 0);
        assert_int_equal(vgpu_nvml_xid_poll(0, &idx, &xid), -EINVAL); /* nothing watched */
        assert_int_equal(vgpu_nvml_xid_watch(7), -ENOENT);
        assert_int_equal(vgpu_nvml_xid_watch(1), 0);
        assert_int_equal(vgpu_nvml_xid_watch(1), 0); /* twice is harmless */
        assert_int_equal(vgpu_nvml_xid_watch(0), 0);
        assert_int_equal(f->sets_live(), 1);

        assert_int_equal(vgpu_nvml_xid_wait(10, &ev), 1);
        assert_int_equal(ev.gpu_index, 1);
        assert_int_equal(ev.xid, 79);
        assert_int_equal(ev.gi_id, 5);
        assert_int_equal(ev.ci_id, 0);
        assert_int_equal(vgpu_nvml_xid_poll(10, &idx, &xid), 0); /* timeout */
        assert_int_equal(idx, 99);
        assert_int_equal(xid, 99);

        vgpu_nvml_close();
        assert_int_equal(f->sets_live(), 0); /* the event set went with the last close */
        assert_int_equal(f->shutdowns(), shutdowns + 1);
}

/* The real library: absent here, so the no-driver path; on a GPU machine, a sane list. */
static void test_real_nvml(void **state)
{
        struct vgpu_nvml_gpu gpus[16];
        struct vgpu_nvml_sample s;
        char err[256] = "";
        size_t n = 0;
        int ret;

        (void)state;
        unsetenv("VGPU_NVML_LIB");
        ret = vgpu_nvml_open(err, sizeof(err));
        if (ret < 0) {
                assert_int_equal(ret, -ENODEV);
                assert_true(strlen(err) > 0);
                print_message("no NVML here (%s): checked the no-driver path\n", err);
                assert_not_open();
                return;
        }
        assert_int_equal(vgpu_nvml_gpus(gpus, 16, &n), 0);
        assert_true(n > 0);
        for (size_t i = 0; i < n; i++) {
                const struct vgpu_nvml_gpu *g = &gpus[i];

                print_message("GPU %u: %s %s pci 0x%04x %s %llu MiB mig %d (%u devices)\n",
                              g->index, g->name, g->uuid, (unsigned)g->pci_device_id, g->bus_id,
                              (unsigned long long)(g->mem_total >> 20), g->mig_enabled, g->n_mig);
                assert_int_equal(g->index, i);
                assert_true(strlen(g->name) > 0);
                assert_memory_equal(g->uuid, "GPU-", 4);
                assert_true(strlen(g->bus_id) >= 12);
                assert_true(g->pci_device_id != 0 && g->pci_device_id <= 0xffff);
                assert_true(g->mem_total >= (1ULL << 30));
                assert_true(g->n_mig <= VGPU_NVML_MAX_MIG);
                if (!g->mig_enabled)
                        assert_int_equal(g->n_mig, 0);
                for (unsigned m = 0; m < g->n_mig; m++) {
                        assert_memory_equal(g->mig[m].uuid, "MIG-", 4);
                        assert_true(g->mig[m].mem_total > 0);
                        assert_true(g->mig[m].mem_total <= g->mem_total);
                }
                assert_int_equal(vgpu_nvml_sample(g->index, &s), 0);
                print_message("  util %u%% mem %u%% used %llu MiB temp %d C power %u mW\n",
                              s.gpu_util, s.mem_util, (unsigned long long)(s.mem_used >> 20),
                              s.temp_c, s.power_mw);
                assert_true(s.gpu_util <= 100 && s.mem_util <= 100);
                assert_true(s.mem_used <= s.mem_total);
                assert_true(s.temp_c > 0 && s.temp_c < 130);
        }
        ret = vgpu_nvml_xid_watch(0);
        assert_true(ret == 0 || ret == -EOPNOTSUPP || ret == -EPERM);
        if (ret == 0) {
                struct vgpu_nvml_xid ev;

                ret = vgpu_nvml_xid_wait(10, &ev);
                assert_true(ret == 0 || ret == 1);
        }
        vgpu_nvml_close();
        assert_not_open();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_missing_library),
                cmocka_unit_test(test_not_nvml),
                cmocka_unit_test(test_init_fails),
                cmocka_unit_test_setup_teardown(test_fake_gpus, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_fake_failures, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_fake_xid, fake_setup, fake_teardown),
                cmocka_unit_test(test_real_nvml),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
