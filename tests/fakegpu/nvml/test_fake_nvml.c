// SPDX-License-Identifier: Apache-2.0
// The stand-in NVML (libfakenvml.so), through vgpu's own loader (backend/cuda/nvml.h) where the
// loader has the call and through dlsym where it does not: failing to initialise, GPUs with and
// without MIG, MIG devices and their attributes, memory in use from <dir>/mem, gpus.json read
// again, Xid events. The MIG management calls are tested in test_fake_nvml_mig.c.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_fake_nvml.h"

#ifndef FAKE_NVML_LIB
#error "FAKE_NVML_LIB must name libfakenvml.so"
#endif

#define ANY     NVML_INSTANCE_ID_ANY
#define PROFILE "\"gi_profiles\": [" P_1G "," P_2G "," P_7G "]"
#define P_1G                                                                                       \
        "{\"profile\": 0, \"id\": 19, \"slices\": 1, \"mem_mib\": 9856, \"sms\": 16, \"count\": "  \
        "7, \"placements\": [[0,1],[1,1],[2,1],[3,1],[4,1],[5,1],[6,1]]}"
#define P_2G                                                                                       \
        "{\"profile\": 1, \"id\": 14, \"slices\": 2, \"mem_mib\": 19968, \"sms\": 32, \"count\": " \
        "3, \"placements\": [[0,2],[2,2],[4,2]]}"
#define P_7G                                                                                       \
        "{\"profile\": 4, \"id\": 0, \"slices\": 7, \"mem_mib\": 80896, \"sms\": 132, \"count\": " \
        "1, \"placements\": [[0,8]]}"

struct fake_api fx_api;

/*
 * GPU 0: an H100 that can do MIG, out of MIG mode. GPU 1: an H100 in MIG mode with GPU instance 1
 * (1g at slice 0, one compute instance) and 5 (2g at slices 4-5, two 1-slice compute instances).
 * GPU 2: an L4, which cannot do MIG.
 */
static const char gpus_json[] =
        "{\"driver_version\": 13000, \"gpus\": ["
        "{\"name\": \"" H100 "\", \"uuid\": \"GPU-5e1f0c1e-0000-4000-8000-000000000000\", "
        "\"bus_id\": \"00000000:41:00.0\", \"pci_device_id\": 9008, \"mem_mib\": 81559, "
        "\"sms\": 132, \"cc\": [9, 0], \"mig_mode\": false, " PROFILE "},"
        "{\"name\": \"" H100 "\", \"uuid\": \"GPU-5e1f0c1e-0000-4000-8000-000000000001\", "
        "\"bus_id\": \"00000000:C1:00.0\", \"pci_device_id\": 9008, \"mem_mib\": 81559, "
        "\"sms\": 132, \"cc\": [9, 0], \"mig_mode\": true, " PROFILE ", \"gpu_instances\": ["
        "{\"id\": 1, \"profile_id\": 19, \"start\": 0, \"size\": 1, \"compute_instances\": ["
        "{\"id\": 0, \"slices\": 1, \"sms\": 16, \"uuid\": \"" MIG1_0 "\"}]},"
        "{\"id\": 5, \"profile_id\": 14, \"start\": 4, \"size\": 2, \"compute_instances\": ["
        "{\"id\": 0, \"slices\": 1, \"sms\": 16, \"uuid\": \"" MIG5_0 "\"},"
        "{\"id\": 1, \"slices\": 1, \"sms\": 16, \"uuid\": \"" MIG5_1 "\"}]}]},"
        "{\"name\": \"NVIDIA L4\", \"uuid\": \"GPU-5e1f0c1e-0000-4000-8000-000000000002\", "
        "\"bus_id\": \"00000000:82:00.0\", \"pci_device_id\": 10168, \"mem_mib\": 23034, "
        "\"sms\": 58, \"cc\": [8, 9]}]}\n";

void fx_write_file(const char *dir, const char *name, const char *text)
{
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

/* A memory accounting file: <dir>/mem/<key>.<pid> holding bytes. */
void fx_write_mem(const struct fixture *fx, const char *key, pid_t pid, unsigned long long n)
{
        char name[96], text[32];

        snprintf(name, sizeof(name), "mem/%s.%ld", key, (long)pid);
        snprintf(text, sizeof(text), "%llu", n);
        fx_write_file(fx->dir, name, text);
}

void fx_remove_mem(const struct fixture *fx, const char *key, pid_t pid)
{
        char path[160];

        snprintf(path, sizeof(path), "%s/mem/%s.%ld", fx->dir, key, (long)pid);
        assert_int_equal(unlink(path), 0);
}

/* One Xid line (or any text), appended with one write as the CUDA stand-in does. */
static void append_xid(const char *dir, const char *text)
{
        char path[128];
        int fd;

        snprintf(path, sizeof(path), "%s/xid", dir);
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

/* A pid that was a process and is no more. */
pid_t fx_dead_pid(void)
{
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0)
                _exit(0);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        return pid;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int setup(void **state)
{
        static struct fixture fx;
        char sub[96];

        memset(&fx, 0, sizeof(fx));
        snprintf(fx.dir, sizeof(fx.dir), "/tmp/fakenvml.XXXXXX");
        if (!mkdtemp(fx.dir))
                return -1;
        snprintf(sub, sizeof(sub), "%s/mem", fx.dir);
        if (mkdir(sub, 0755) < 0)
                return -1;
        fx_write_file(fx.dir, "gpus.json", gpus_json);
        setenv("VGPU_FAKE_GPU", fx.dir, 1);
        setenv("VGPU_NVML_LIB", FAKE_NVML_LIB, 1);
        fx.dl = dlopen(FAKE_NVML_LIB, RTLD_NOW | RTLD_LOCAL);
        if (!fx.dl)
                return -1;
#define API_LOAD(fn)                                                                               \
        fx_api.fn = (__typeof__(fx_api.fn))dlsym(fx.dl, #fn);                                      \
        if (!fx_api.fn)                                                                            \
                return -1;
        FAKE_API(API_LOAD)
#undef API_LOAD
        /* The test's own reference, beside the loader's, and the GPUs' handles. */
        if (fx_api.nvmlInit_v2() != NVML_SUCCESS || vgpu_nvml_open(NULL, 0) < 0)
                return -1;
        for (unsigned i = 0; i < 3; i++) {
                if (fx_api.nvmlDeviceGetHandleByIndex_v2(i, &fx.dev[i]) != NVML_SUCCESS)
                        return -1;
        }
        *state = &fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        vgpu_nvml_close();
        fx_api.nvmlShutdown();
        dlclose(fx->dl);
        unsetenv("VGPU_NVML_LIB");
        unsetenv("VGPU_FAKE_GPU");
        return nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_init_fails(void **state)
{
        char dir[] = "/tmp/fakenvml.XXXXXX", err[256] = "";
        void *dl = dlopen(FAKE_NVML_LIB, RTLD_NOW | RTLD_LOCAL);
        __typeof__(nvmlInit_v2) *init;
        __typeof__(nvmlShutdown) *fini;
        __typeof__(nvmlDeviceGetCount_v2) *count;
        unsigned n = 77;

        (void)state;
        assert_non_null(dl);
        init = (__typeof__(init))dlsym(dl, "nvmlInit_v2");
        fini = (__typeof__(fini))dlsym(dl, "nvmlShutdown");
        count = (__typeof__(count))dlsym(dl, "nvmlDeviceGetCount_v2");
        assert_true(init && fini && count);
        setenv("VGPU_NVML_LIB", FAKE_NVML_LIB, 1);

        /* No directory, no gpus.json, a malformed one: the driver is not loaded. */
        unsetenv("VGPU_FAKE_GPU");
        assert_int_equal(init(), NVML_ERROR_DRIVER_NOT_LOADED);
        assert_int_equal(vgpu_nvml_open(err, sizeof(err)), -ENODEV);
        assert_string_equal(err, "nvmlInit_v2: Driver Not Loaded");
        assert_non_null(mkdtemp(dir));
        setenv("VGPU_FAKE_GPU", dir, 1);
        assert_int_equal(init(), NVML_ERROR_DRIVER_NOT_LOADED);
        fx_write_file(dir, "gpus.json", "{\"gpus\": [{\"name\": 5}]}");
        assert_int_equal(init(), NVML_ERROR_DRIVER_NOT_LOADED);
        fx_write_file(dir, "gpus.json", "{\"gpus\": [");
        assert_int_equal(init(), NVML_ERROR_DRIVER_NOT_LOADED);
        assert_int_equal(count(&n), NVML_ERROR_UNINITIALIZED);
        assert_int_equal(n, 77);
        assert_int_equal(fini(), NVML_ERROR_UNINITIALIZED);

        /* A good one: initialised, reference-counted. */
        fx_write_file(dir, "gpus.json", gpus_json);
        assert_int_equal(init(), NVML_SUCCESS);
        assert_int_equal(init(), NVML_SUCCESS);
        assert_int_equal(count(&n), NVML_SUCCESS);
        assert_int_equal(n, 3);
        assert_int_equal(fini(), NVML_SUCCESS);
        assert_int_equal(count(&n), NVML_SUCCESS);
        assert_int_equal(fini(), NVML_SUCCESS);
        assert_int_equal(count(&n), NVML_ERROR_UNINITIALIZED);

        unsetenv("VGPU_FAKE_GPU");
        unsetenv("VGPU_NVML_LIB");
        dlclose(dl);
        assert_int_equal(nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

/* The MIG device of gpu with these ids, as the loader lists it; fails the test if absent. */
const struct vgpu_nvml_mig *fx_find_mig(const struct vgpu_nvml_gpu *gpu, unsigned gi, unsigned ci)
{
        for (unsigned i = 0; i < gpu->n_mig; i++) {
                if (gpu->mig[i].gi_id == gi && gpu->mig[i].ci_id == ci)
                        return &gpu->mig[i];
        }
        fail_msg("GPU %u has no MIG device %u/%u", gpu->index, gi, ci);
        return &gpu->mig[0]; /* not reached */
}

static void test_gpus(void **state)
{
        struct fixture *fx = *state;
        struct vgpu_nvml_gpu gpus[4];
        const struct vgpu_nvml_mig *m;
        struct nvml_device *mig, *parent;
        struct nvml_device_attributes attr;
        struct nvml_pci_info pci;
        char name[96];
        unsigned cur = 9, pending = 9, max, id, is_mig;
        size_t n = 0;

        assert_int_equal(vgpu_nvml_gpus(gpus, 4, &n), 0);
        assert_int_equal(n, 3);
        for (unsigned i = 0; i < 3; i++)
                assert_int_equal(gpus[i].index, i);
        assert_string_equal(gpus[0].name, H100);
        assert_string_equal(gpus[0].uuid, "GPU-5e1f0c1e-0000-4000-8000-000000000000");
        assert_int_equal(gpus[0].pci_device_id, 0x2330);
        assert_string_equal(gpus[0].bus_id, "00000000:41:00.0");
        assert_int_equal(gpus[0].mem_total, 81559 * MIB);
        assert_false(gpus[0].mig_enabled);
        assert_int_equal(gpus[0].n_mig, 0);
        assert_string_equal(gpus[2].name, "NVIDIA L4");
        assert_int_equal(gpus[2].pci_device_id, 0x27b8);
        assert_false(gpus[2].mig_enabled);

        /* GPU 1's MIG devices, one per compute instance, in gpus.json's order. */
        assert_true(gpus[1].mig_enabled);
        assert_int_equal(gpus[1].n_mig, 3);
        assert_int_equal(gpus[1].mig[0].gi_id, 1);
        assert_int_equal(gpus[1].mig[1].gi_id, 5);
        assert_int_equal(gpus[1].mig[2].gi_id, 5);
        m = fx_find_mig(&gpus[1], 1, 0);
        assert_string_equal(m->uuid, MIG1_0);
        assert_int_equal(m->profile_slices, 1);
        assert_int_equal(m->ci_slices, 1);
        assert_int_equal(m->sm_count, 16);
        assert_int_equal(m->mem_total, 9856 * MIB);
        m = fx_find_mig(&gpus[1], 5, 1);
        assert_string_equal(m->uuid, MIG5_1);
        assert_int_equal(m->profile_slices, 2);
        assert_int_equal(m->ci_slices, 1);
        assert_int_equal(m->sm_count, 16);
        assert_int_equal(m->mem_total, 19968 * MIB);

        /* What the loader does not show: MIG mode, names, the MIG calls on the wrong devices. */
        assert_int_equal(fx_api.nvmlDeviceGetMigMode(fx->dev[0], &cur, &pending), NVML_SUCCESS);
        assert_int_equal(cur, NVML_DEVICE_MIG_DISABLE);
        assert_int_equal(pending, NVML_DEVICE_MIG_DISABLE);
        assert_int_equal(fx_api.nvmlDeviceGetMigMode(fx->dev[2], &cur, &pending),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(fx_api.nvmlDeviceGetMaxMigDeviceCount(fx->dev[0], &max), NVML_SUCCESS);
        assert_int_equal(max, 0);
        assert_int_equal(fx_api.nvmlDeviceGetMaxMigDeviceCount(fx->dev[1], &max), NVML_SUCCESS);
        assert_int_equal(max, 7);
        assert_int_equal(fx_api.nvmlDeviceGetMigDeviceHandleByIndex(fx->dev[1], 3, &mig),
                         NVML_ERROR_NOT_FOUND);
        assert_int_equal(fx_api.nvmlDeviceGetMigDeviceHandleByIndex(fx->dev[1], 7, &mig),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(fx_api.nvmlDeviceGetMigDeviceHandleByIndex(fx->dev[2], 0, &mig),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(fx_api.nvmlDeviceGetGpuInstanceId(fx->dev[1], &id),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(fx_api.nvmlDeviceGetAttributes_v2(fx->dev[1], &attr),
                         NVML_ERROR_NOT_SUPPORTED);

        assert_int_equal(fx_api.nvmlDeviceGetMigDeviceHandleByIndex(fx->dev[1], 0, &mig),
                         NVML_SUCCESS);
        assert_int_equal(fx_api.nvmlDeviceGetName(mig, name, sizeof(name)), NVML_SUCCESS);
        assert_string_equal(name, H100 " MIG 1g.10gb");
        assert_int_equal(fx_api.nvmlDeviceGetName(mig, name, 8), NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(fx_api.nvmlDeviceIsMigDeviceHandle(mig, &is_mig), NVML_SUCCESS);
        assert_int_equal(is_mig, 1);
        assert_int_equal(fx_api.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig, &parent),
                         NVML_SUCCESS);
        assert_ptr_equal(parent, fx->dev[1]);
        assert_int_equal(fx_api.nvmlDeviceGetPciInfo_v3(mig, &pci), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(fx_api.nvmlDeviceGetMigDeviceHandleByIndex(fx->dev[1], 2, &mig),
                         NVML_SUCCESS);
        /* a MIG device's index is the one that gives its handle */
        assert_int_equal(fx_api.nvmlDeviceGetIndex(mig, &id), NVML_SUCCESS);
        assert_int_equal(id, 2);
        assert_int_equal(fx_api.nvmlDeviceGetIndex(fx->dev[2], &id), NVML_SUCCESS);
        assert_int_equal(id, 2);
        assert_int_equal(fx_api.nvmlDeviceGetName(mig, name, sizeof(name)), NVML_SUCCESS);
        assert_string_equal(name, H100 " MIG 1c.2g.20gb");
        assert_int_equal(fx_api.nvmlDeviceGetAttributes_v2(mig, &attr), NVML_SUCCESS);
        assert_int_equal(attr.memory_size_mb, 19968);
        assert_int_equal(attr.gpu_instance_slice_count, 2);

        assert_int_equal(fx_api.nvmlDeviceGetPciInfo_v3(fx->dev[1], &pci), NVML_SUCCESS);
        assert_int_equal(pci.pci_device_id, 0x233010de);
        assert_int_equal(pci.bus, 0xc1);
        assert_string_equal(pci.bus_id_legacy, "0000:C1:00.0");

        /* Not a handle of ours. */
        assert_int_equal(fx_api.nvmlDeviceGetName((struct nvml_device *)name, name, sizeof(name)),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(fx_api.nvmlDeviceGetName(NULL, name, sizeof(name)),
                         NVML_ERROR_INVALID_ARGUMENT);
}

static void test_memory(void **state)
{
        struct fixture *fx = *state;
        struct vgpu_nvml_sample s;
        struct nvml_memory mem;
        struct nvml_device *mig;
        pid_t me = getpid(), dead = fx_dead_pid();

        fx_write_mem(fx, "gpu0", me, GIB);
        fx_write_mem(fx, "gpu0", dead, 5 * GIB);
        fx_write_mem(fx, "gpu1-gi1", me, 2 * GIB);
        fx_write_mem(fx, "gpu1-gi5", me, 3 * GIB);
        fx_write_mem(fx, "gpu1-gi5", dead, 7 * GIB);
        fx_write_mem(fx, "gpu10", me, 11 * GIB); /* GPU 10, not GPU 1 */
        fx_write_file(fx->dir, "mem/gpu0.notapid", "13");

        assert_int_equal(vgpu_nvml_sample(0, &s), 0);
        assert_int_equal(s.mem_used, GIB);
        assert_int_equal(s.mem_total, 81559 * MIB);
        assert_int_equal(s.gpu_util, 0);
        assert_true(s.temp_c > 20 && s.temp_c < 90);
        assert_true(s.power_mw > 20000 && s.power_mw < 700000);
        /* A GPU in MIG mode: everything its GPU instances hold. */
        assert_int_equal(vgpu_nvml_sample(1, &s), 0);
        assert_int_equal(s.mem_used, 5 * GIB);
        assert_int_equal(s.gpu_util, 0);
        assert_int_equal(vgpu_nvml_sample(2, &s), 0);
        assert_int_equal(s.mem_used, 0);

        /* A MIG device: its GPU instance's. */
        assert_int_equal(fx_api.nvmlDeviceGetMigDeviceHandleByIndex(fx->dev[1], 1, &mig),
                         NVML_SUCCESS);
        assert_int_equal(fx_api.nvmlDeviceGetMemoryInfo(mig, &mem), NVML_SUCCESS);
        assert_int_equal(mem.total, 19968 * MIB);
        assert_int_equal(mem.used, 3 * GIB);
        assert_int_equal(mem.free, 19968 * MIB - 3 * GIB);

        fx_remove_mem(fx, "gpu0", me);
        assert_int_equal(vgpu_nvml_sample(0, &s), 0);
        assert_int_equal(s.mem_used, 0);
}

/* gpus.json rewritten by someone else is read again; a broken one leaves the last good one. */
static void test_reload(void **state)
{
        struct fixture *fx = *state;
        struct vgpu_nvml_gpu gpus[3];
        char path[128], tmp[128], *renamed;
        size_t n, len = strlen(gpus_json);

        renamed = malloc(len + 1);
        assert_non_null(renamed);
        memcpy(renamed, gpus_json, len + 1);
        memcpy(strstr(renamed, "NVIDIA L4"), "NVIDIA L2", 9);
        fx_write_file(fx->dir, "gpus.new", renamed);
        snprintf(tmp, sizeof(tmp), "%s/gpus.new", fx->dir);
        snprintf(path, sizeof(path), "%s/gpus.json", fx->dir);
        assert_int_equal(rename(tmp, path), 0);
        assert_int_equal(vgpu_nvml_gpus(gpus, 3, &n), 0);
        assert_string_equal(gpus[2].name, "NVIDIA L2");

        fx_write_file(fx->dir, "gpus.json", "{\"gpus\": [");
        assert_int_equal(vgpu_nvml_gpus(gpus, 3, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(gpus[2].name, "NVIDIA L2");
        fx_write_file(fx->dir, "gpus.json", gpus_json);
        assert_int_equal(vgpu_nvml_gpus(gpus, 3, &n), 0);
        assert_string_equal(gpus[2].name, "NVIDIA L4");
        free(renamed);
}

static void test_xid(void **state)
{
        struct fixture *fx = *state;
        struct vgpu_nvml_xid ev = {0};
        struct nvml_event_set *set;
        struct nvml_event_data data;
        struct nvml_device *mig;
        int st;
        pid_t pid;

        /* Before GPU 1 is registered: never reported. */
        append_xid(fx->dir, "1 1 0 31\n");
        assert_int_equal(vgpu_nvml_xid_watch(1), 0);
        assert_int_equal(vgpu_nvml_xid_wait(60, &ev), 0);

        append_xid(fx->dir, "1 5 1 13\n");
        assert_int_equal(vgpu_nvml_xid_wait(1000, &ev), 1);
        assert_int_equal(ev.gpu_index, 1);
        assert_int_equal(ev.gi_id, 5);
        assert_int_equal(ev.ci_id, 1);
        assert_int_equal(ev.xid, 13);

        /* GPU 0 is not watched, junk is no event, half a line waits for the rest. */
        append_xid(fx->dir, "0 4294967295 4294967295 31\ngarbage\n1 1 0");
        assert_int_equal(vgpu_nvml_xid_wait(60, &ev), 0);
        append_xid(fx->dir, " 43\n");
        assert_int_equal(vgpu_nvml_xid_wait(1000, &ev), 1);
        assert_int_equal(ev.gpu_index, 1);
        assert_int_equal(ev.gi_id, 1);
        assert_int_equal(ev.xid, 43);

        /* GPU 0 registered after a line of its own: that line is not reported, the next is. */
        append_xid(fx->dir, "0 4294967295 4294967295 13\n");
        assert_int_equal(vgpu_nvml_xid_watch(0), 0);
        append_xid(fx->dir, "0 4294967295 4294967295 31\n");
        assert_int_equal(vgpu_nvml_xid_wait(1000, &ev), 1);
        assert_int_equal(ev.gpu_index, 0);
        assert_int_equal(ev.gi_id, ANY);
        assert_int_equal(ev.ci_id, ANY);
        assert_int_equal(ev.xid, 31);

        /* Appended by another process while this one waits. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct timespec nap = {.tv_nsec = 150 * 1000000L};
                char path[128];
                int fd;

                nanosleep(&nap, NULL);
                snprintf(path, sizeof(path), "%s/xid", fx->dir);
                fd = open(path, O_WRONLY | O_APPEND);
                _exit(fd >= 0 && write(fd, "1 5 0 79\n", 9) == 9 ? 0 : 1);
        }
        assert_int_equal(vgpu_nvml_xid_wait(5000, &ev), 1);
        assert_int_equal(ev.gpu_index, 1);
        assert_int_equal(ev.gi_id, 5);
        assert_int_equal(ev.ci_id, 0);
        assert_int_equal(ev.xid, 79);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_int_equal(st, 0);
        assert_int_equal(vgpu_nvml_xid_wait(0, &ev), 0);

        /* The event calls' refusals. */
        assert_int_equal(fx_api.nvmlEventSetCreate(&set), NVML_SUCCESS);
        assert_int_equal(fx_api.nvmlDeviceRegisterEvents(fx->dev[1], 0, set),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(fx_api.nvmlDeviceRegisterEvents(fx->dev[1], 0x1, set),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(fx_api.nvmlDeviceGetMigDeviceHandleByIndex(fx->dev[1], 0, &mig),
                         NVML_SUCCESS);
        assert_int_equal(fx_api.nvmlDeviceRegisterEvents(mig, NVML_EVENT_TYPE_XID_CRITICAL, set),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(fx_api.nvmlEventSetWait_v2(set, &data, 0), NVML_ERROR_TIMEOUT);
        assert_int_equal(fx_api.nvmlEventSetFree(set), NVML_SUCCESS);
        assert_int_equal(fx_api.nvmlEventSetFree(set), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(fx_api.nvmlEventSetWait_v2(set, &data, 0), NVML_ERROR_INVALID_ARGUMENT);
}

/*
 * In a process without the MIG privileges (fork, then a fresh NVML with
 * VGPU_FAKE_NVML_PRIVILEGED=0): 0, or the number of the first check that failed.
 */
static int child_unprivileged(const struct fixture *fx)
{
        struct nvml_device *dev[3], *mig;
        struct nvml_gpu_instance *gi;
        struct nvml_gpu_instance_profile_info prof;
        struct nvml_gpu_instance_placement pl[8];
        struct nvml_event_set *set;
        struct nvml_event_data data;
        struct nvml_memory mem;
        unsigned n = 8, id;

        vgpu_nvml_close();
        fx_api.nvmlShutdown();
        setenv("VGPU_FAKE_NVML_PRIVILEGED", "0", 1);
        if (fx_api.nvmlInit_v2() != NVML_SUCCESS)
                return 1;
        for (unsigned i = 0; i < 3; i++) {
                if (fx_api.nvmlDeviceGetHandleByIndex_v2(i, &dev[i]) != NVML_SUCCESS)
                        return 2;
        }
        /* a GPU in MIG mode whole: not for this caller; a MIG device, or a GPU out of MIG mode */
        if (fx_api.nvmlDeviceGetMemoryInfo(dev[1], &mem) != NVML_ERROR_NO_PERMISSION)
                return 3;
        if (fx_api.nvmlDeviceGetMemoryInfo(dev[0], &mem) != NVML_SUCCESS)
                return 4;
        if (fx_api.nvmlDeviceGetMigDeviceHandleByIndex(dev[1], 0, &mig) != NVML_SUCCESS ||
            fx_api.nvmlDeviceGetMemoryInfo(mig, &mem) != NVML_SUCCESS ||
            fx_api.nvmlDeviceGetGpuInstanceId(mig, &id) != NVML_SUCCESS || id != 1)
                return 5;
        /* "Requires privileged user" */
        if (fx_api.nvmlDeviceGetGpuInstanceProfileInfo(dev[1], 0, &prof) != NVML_SUCCESS)
                return 6;
        if (fx_api.nvmlDeviceGetGpuInstanceById(dev[1], 1, &gi) != NVML_ERROR_NO_PERMISSION ||
            fx_api.nvmlDeviceGetGpuInstances(dev[1], 19, &gi, &n) != NVML_ERROR_NO_PERMISSION ||
            fx_api.nvmlDeviceGetGpuInstancePossiblePlacements_v2(dev[1], 19, pl, &n) !=
                    NVML_ERROR_NO_PERMISSION ||
            fx_api.nvmlDeviceGetGpuInstanceRemainingCapacity(dev[1], 19, &n) !=
                    NVML_ERROR_NO_PERMISSION)
                return 7;
        pl[0] = (struct nvml_gpu_instance_placement){.start = 1, .size = 1};
        if (fx_api.nvmlDeviceCreateGpuInstanceWithPlacement(dev[1], 19, pl, &gi) !=
            NVML_ERROR_NO_PERMISSION)
                return 8;
        /* Xid events of a GPU in MIG mode: only those of the whole GPU */
        if (fx_api.nvmlEventSetCreate(&set) != NVML_SUCCESS ||
            fx_api.nvmlDeviceRegisterEvents(dev[1], NVML_EVENT_TYPE_XID_CRITICAL, set) !=
                    NVML_SUCCESS)
                return 9;
        append_xid(fx->dir, "1 1 0 31\n1 4294967295 4294967295 48\n");
        if (fx_api.nvmlEventSetWait_v2(set, &data, 1000) != NVML_SUCCESS || data.event_data != 48 ||
            data.gpu_instance_id != ANY)
                return 10;
        if (fx_api.nvmlEventSetWait_v2(set, &data, 50) != NVML_ERROR_TIMEOUT)
                return 11;
        fx_api.nvmlEventSetFree(set);
        /*
         * vgpu's loader, unprivileged: every GPU listed, the one in MIG mode without its total
         * memory (unknown, 0) and without GPU instances (not listed), its MIG devices with theirs
         */
        {
                struct vgpu_nvml_gpu gpus[4];
                struct vgpu_nvml_sample smp;
                size_t k = 0;

                if (vgpu_nvml_open(NULL, 0) < 0 || vgpu_nvml_gpus(gpus, 4, &k) < 0 || k != 3)
                        return 12;
                if (gpus[1].mem_total != 0 || !gpus[1].mig_enabled || gpus[1].gi_listed ||
                    gpus[1].n_mig == 0 || gpus[1].mig[0].mem_total == 0 || gpus[0].mem_total == 0)
                        return 13;
                /* its telemetry without memory, the rest as usual */
                if (vgpu_nvml_sample(1, &smp) != 0 || smp.mem_total != 0 ||
                    vgpu_nvml_sample(0, &smp) != 0 || smp.mem_total == 0)
                        return 14;
                vgpu_nvml_close();
        }
        fx_api.nvmlShutdown();
        return 0;
}

static void test_privilege(void **state)
{
        struct fixture *fx = *state;
        const char *l4 = strstr(gpus_json, "\"NVIDIA L4\"") + strlen("\"NVIDIA L4\"");
        size_t len = strlen(gpus_json) + 32;
        struct nvml_device *dev;
        char *json = malloc(len);
        unsigned n = 0;
        int st;
        pid_t pid;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_unprivileged(fx));
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);

        /* A GPU this process may not talk to: counted, but no handle. */
        assert_non_null(json);
        snprintf(json, len, "%.*s, \"accessible\": false%s", (int)(l4 - gpus_json), gpus_json, l4);
        fx_write_file(fx->dir, "gpus.json", json);
        free(json);
        assert_int_equal(fx_api.nvmlDeviceGetCount_v2(&n), NVML_SUCCESS);
        assert_int_equal(n, 3);
        assert_int_equal(fx_api.nvmlDeviceGetHandleByIndex_v2(2, &dev), NVML_ERROR_NO_PERMISSION);
        assert_int_equal(fx_api.nvmlDeviceGetHandleByIndex_v2(1, &dev), NVML_SUCCESS);
        /* vgpu's loader leaves it out; the others keep NVML's indices */
        {
                struct vgpu_nvml_gpu gpus[4];
                size_t k = 0;

                assert_int_equal(vgpu_nvml_gpus(gpus, 4, &k), 0);
                assert_int_equal(k, 2);
                assert_int_equal(gpus[0].index, 0);
                assert_int_equal(gpus[1].index, 1);
        }
        fx_write_file(fx->dir, "gpus.json", gpus_json);
}

static void test_error_strings(void **state)
{
        static const int codes[] = {
                NVML_ERROR_UNINITIALIZED,
                NVML_ERROR_INVALID_ARGUMENT,
                NVML_ERROR_NOT_SUPPORTED,
                NVML_ERROR_NO_PERMISSION,
                NVML_ERROR_NOT_FOUND,
                NVML_ERROR_INSUFFICIENT_SIZE,
                NVML_ERROR_DRIVER_NOT_LOADED,
                NVML_ERROR_TIMEOUT,
                NVML_ERROR_IN_USE,
                NVML_ERROR_MEMORY,
                NVML_ERROR_INSUFFICIENT_RESOURCES,
        };

        (void)state;
        assert_string_equal(fx_api.nvmlErrorString(NVML_SUCCESS), "Success");
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
                const char *s = fx_api.nvmlErrorString(codes[i]);

                assert_non_null(s);
                assert_string_not_equal(s, "Unknown Error");
                for (size_t k = 0; k < i; k++)
                        assert_string_not_equal(s, fx_api.nvmlErrorString(codes[k]));
        }
        assert_string_equal(fx_api.nvmlErrorString(NVML_ERROR_UNKNOWN), "Unknown Error");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_init_fails),
                cmocka_unit_test_setup_teardown(test_gpus, setup, teardown),
                cmocka_unit_test_setup_teardown(test_memory, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mig_profiles, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mig_lifecycle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mig_loader, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mig_other_process, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
                cmocka_unit_test_setup_teardown(test_xid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_privilege, setup, teardown),
                cmocka_unit_test_setup_teardown(test_error_strings, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
