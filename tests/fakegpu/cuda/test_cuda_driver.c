// SPDX-License-Identifier: Apache-2.0
// The stand-in driver's own rules, where vgpu's cuda backend does not reach them: what the library
// exports and says before cuInit, reservations, mappings, access, export, host registration,
// events, handles, modules and launches, called through cuda_drv.c's table of entry points.
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backend/cuda/cuda_drv.h"
#include "test_cuda.h"

#ifndef FAKE_CUDA_PATH
#error "FAKE_CUDA_PATH must name the stand-in driver"
#endif

/* What the library exports, and what it says before cuInit. */
void test_exports(void **state)
{
        void *h = dlopen(FAKE_CUDA_PATH, RTLD_NOW | RTLD_LOCAL);
        CUresult (*count)(int *);
        CUresult (*name)(CUresult, const char **);
        CUresult (*version)(int *);
        const char *s = NULL;
        int n = -1, v = 0;

        (void)state;
        assert_non_null(h);
#define CHECK_SYMBOL(field, symbol) assert_non_null(dlsym(h, #symbol));
        CUDA_DRV_CALLS(CHECK_SYMBOL)
#undef CHECK_SYMBOL
        /* not vgpu's guest driver, and the interpreter inside stays private */
        assert_null(dlsym(h, "vgpu_guest_driver"));
        assert_null(dlsym(h, "ptx_launch"));
        *(void **)&count = dlsym(h, "cuDeviceGetCount");
        *(void **)&name = dlsym(h, "cuGetErrorName");
        *(void **)&version = dlsym(h, "cuDriverGetVersion");
        assert_int_equal(count(&n), CUDA_ERROR_NOT_INITIALIZED);
        assert_int_equal(n, -1);
        assert_int_equal(name(CUDA_ERROR_ILLEGAL_ADDRESS, &s), CUDA_SUCCESS);
        assert_string_equal(s, "CUDA_ERROR_ILLEGAL_ADDRESS");
        assert_int_equal(version(&v), CUDA_SUCCESS);
        assert_int_equal(v, 12090);
        dlclose(h);
}

/* The driver's rules where the backend does not reach them, through cuda_drv.c's table. */
void test_driver_rules(void **state)
{
        CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                    .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 1}};
        CUmemAccessDesc rw = {.location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 1},
                              .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
        CUmemGenericAllocationHandle h, big;
        CUdeviceptr a = 0, b = 0;
        CUcontext ctx;
        CUstream s;
        CUevent e1, e2, e3;
        CUcontext ctx0;
        CUuuid u;
        char err[256], bus[32], word[8] = "abcdefg", back[8] = "";
        const char *str = NULL;
        size_t gran = 0, free_b = 0, total = 0;
        int v = 0, fd = -1, junk = 0;
        float ms = -1;
        void *host;

        (void)state;
        assert_int_equal(cuda_drv_load(err, sizeof(err)), 0);
        assert_int_equal(cu.driver_version(&v), CUDA_SUCCESS);
        assert_int_equal(v, 12090);
        assert_int_equal(cu.get_error_name(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, &str),
                         CUDA_SUCCESS);
        assert_string_equal(str, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED");
        assert_int_equal(cu.get_error_name((CUresult)12345, &str), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.get_error_string(CUDA_ERROR_MISALIGNED_ADDRESS, &str), CUDA_SUCCESS);
        assert_true(strlen(str) > 0);
        /* devices */
        assert_int_equal(cu.device_pci_bus_id(bus, (int)sizeof(bus), 1), CUDA_SUCCESS);
        assert_string_equal(bus, "0000:C1:00.0");
        assert_int_equal(cu.device_uuid(&u, 3), CUDA_SUCCESS);
        assert_int_equal((unsigned char)u.bytes[0], 0x7a);
        assert_int_equal((unsigned char)u.bytes[15], 0x21);
        assert_int_equal(cu.device_attr(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0), CUDA_SUCCESS);
        assert_int_equal(v, 32);
        assert_int_equal(cu.device_attr(&v, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 0), 0);
        assert_int_equal(v, 1024);
        assert_int_equal(cu.device_attr(&v, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 0), 0);
        assert_int_equal(v, 49152);
        assert_int_equal(cu.device_attr(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 3), 0);
        assert_int_equal(v, 16);
        assert_int_equal(cu.device_attr(&v, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_WIDTH, 0), 0);
        assert_int_equal(v, 0);
        assert_int_equal(cu.device_attr(&v, CU_DEVICE_ATTRIBUTE_MAX, 0), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.device_attr(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 4),
                         CUDA_ERROR_INVALID_DEVICE);
        /* no context is current on this thread yet */
        assert_int_equal(cu.mem_get_info(&free_b, &total), CUDA_ERROR_INVALID_CONTEXT);
        assert_int_equal(cu.stream_create(&s, 0), CUDA_ERROR_INVALID_CONTEXT);
        assert_int_equal(cu.primary_retain(&ctx, 1), CUDA_SUCCESS);
        assert_int_equal(cu.ctx_set_current(ctx), CUDA_SUCCESS);
        assert_int_equal(cu.mem_get_info(&free_b, &total), CUDA_SUCCESS);
        assert_int_equal(free_b, 64 * MIB);
        assert_int_equal(total, 64 * MIB);

        /* reservations: a fixed address when free, elsewhere (aligned) when not */
        assert_int_equal(cu.mem_granularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM), 0);
        assert_int_equal(gran, 2 * MIB);
        assert_int_equal(cu.mem_address_reserve(&a, 4 * MIB, 0, FB1_ADDR, 0), CUDA_SUCCESS);
        assert_int_equal(a, FB1_ADDR);
        assert_int_equal(cu.mem_address_reserve(&b, 4 * MIB, 0, FB1_ADDR + 2 * MIB, 0),
                         CUDA_SUCCESS);
        assert_true(b != FB1_ADDR + 2 * MIB && b % (2 * MIB) == 0);
        assert_int_equal(cu.mem_address_free(b, 4 * MIB), CUDA_SUCCESS);
        assert_int_equal(cu.mem_address_free(b, 4 * MIB), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_address_reserve(&b, 3 * MIB, 0, 0, 0), CUDA_ERROR_INVALID_VALUE);
        /* the hint is a multiple of the host page size, the alignment a power of two */
        assert_int_equal(cu.mem_address_reserve(&b, 4 * MIB, 0, FB1_ADDR + 64 * MIB + 8, 0),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_address_reserve(&b, 4 * MIB, 3 * MIB, 0, 0),
                         CUDA_ERROR_INVALID_VALUE);

        /* physical memory: counted, whole-handle mappings, export only if asked for */
        assert_int_equal(cu.mem_create(&h, MIB, &prop, 0), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_create(&big, 66 * MIB, &prop, 0), CUDA_ERROR_OUT_OF_MEMORY);
        assert_int_equal(cu.mem_create(&h, 2 * MIB, &prop, 0), CUDA_SUCCESS);
        assert_int_equal(cu.mem_get_info(&free_b, &total), CUDA_SUCCESS);
        assert_int_equal(free_b, 62 * MIB);
        assert_int_equal(cu.mem_export(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_map(a, 2 * MIB, 2 * MIB, h, 0), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_map(a, 4 * MIB, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_map(a + 4 * MIB, 2 * MIB, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_map(a + 2 * MIB, 2 * MIB, 0, h, 0), CUDA_SUCCESS);
        assert_int_equal(cu.mem_map(a + 2 * MIB, 2 * MIB, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
        /* mapped memory is unreachable until access is set, over mapped memory only */
        assert_int_equal(cu.stream_create(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
        assert_int_equal(cu.memcpy_htod_async(a + 2 * MIB, word, 8, s), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_set_access(a, 4 * MIB, &rw, 1), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_set_access(a + 2 * MIB, 2 * MIB, &rw, 1), CUDA_SUCCESS);
        assert_int_equal(cu.memcpy_htod_async(a + 2 * MIB, word, 8, s), CUDA_SUCCESS);
        assert_int_equal(cu.memcpy_dtoh_async(back, a + 2 * MIB, 8, s), CUDA_SUCCESS);
        assert_memory_equal(back, word, 8);
        assert_int_equal(cu.memcpy_htod_async(a + 4 * MIB - 4, word, 8, s),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.memcpy_htod_async(a, word, 8, s), CUDA_ERROR_INVALID_VALUE);
        /* the memory lives until it is both released and unmapped */
        assert_int_equal(cu.mem_address_free(a, 4 * MIB), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_release(h), CUDA_SUCCESS);
        assert_int_equal(cu.mem_release(h), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_get_info(&free_b, &total), CUDA_SUCCESS);
        assert_int_equal(free_b, 62 * MIB);
        assert_int_equal(cu.memcpy_dtoh_async(back, a + 2 * MIB, 8, s), CUDA_SUCCESS);
        assert_int_equal(cu.mem_unmap(a + 2 * MIB, 4 * MIB), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_unmap(a + 2 * MIB, 2 * MIB), CUDA_SUCCESS);
        assert_int_equal(cu.mem_get_info(&free_b, &total), CUDA_SUCCESS);
        assert_int_equal(free_b, 64 * MIB);
        assert_int_equal(cu.memcpy_dtoh_async(back, a + 2 * MIB, 8, s), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.mem_address_free(a, 4 * MIB), CUDA_SUCCESS);

        /* page-locked host memory */
        host = aligned_alloc(4096, 3 * 4096);
        assert_non_null(host);
        assert_int_equal(cu.host_register(host, 8192, CU_MEMHOSTREGISTER_PORTABLE), 0);
        assert_int_equal(cu.host_register((char *)host + 4096, 8192, 0),
                         CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
        assert_int_equal(cu.host_unregister((char *)host + 1),
                         CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
        assert_int_equal(cu.host_unregister(host), CUDA_SUCCESS);
        assert_int_equal(cu.host_unregister(host), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
        assert_int_equal(cu.host_register(NULL, 8192, 0), CUDA_ERROR_INVALID_VALUE);
        free(host);

        /* events: time only between two recorded, complete ones */
        assert_int_equal(cu.event_create(&e1, CU_EVENT_DEFAULT), CUDA_SUCCESS);
        assert_int_equal(cu.event_create(&e2, CU_EVENT_DEFAULT), CUDA_SUCCESS);
        assert_int_equal(cu.event_create(&e3, CU_EVENT_DISABLE_TIMING), CUDA_SUCCESS);
        assert_int_equal(cu.event_elapsed(&ms, e1, e2), CUDA_ERROR_INVALID_HANDLE);
        assert_int_equal(cu.event_query(e1), CUDA_SUCCESS); /* nothing captured yet */
        assert_int_equal(cu.event_record(e1, s), CUDA_SUCCESS);
        assert_int_equal(cu.event_record(e2, s), CUDA_SUCCESS);
        assert_int_equal(cu.event_record(e3, s), CUDA_SUCCESS);
        /* recorded is not complete: not ready until waited for or found not ready once */
        assert_int_equal(cu.event_elapsed(&ms, e1, e2), CUDA_ERROR_NOT_READY);
        assert_int_equal(cu.event_query(e2), CUDA_ERROR_NOT_READY);
        assert_int_equal(cu.event_query(e2), CUDA_SUCCESS);
        assert_int_equal(cu.event_query(e1), CUDA_SUCCESS); /* before e2 on its stream */
        assert_int_equal(cu.event_elapsed(&ms, e1, e2), CUDA_SUCCESS);
        assert_true(ms >= 0 && ms < 1000);
        assert_int_equal(cu.event_sync(e3), CUDA_SUCCESS);
        assert_int_equal(cu.event_elapsed(&ms, e1, e3), CUDA_ERROR_INVALID_HANDLE);
        assert_int_equal(cu.event_record(e2, s), CUDA_SUCCESS);
        assert_int_equal(cu.event_elapsed(&ms, e1, e2), CUDA_ERROR_NOT_READY);
        assert_int_equal(cu.stream_sync(s), CUDA_SUCCESS);
        assert_int_equal(cu.event_elapsed(&ms, e1, e2), CUDA_SUCCESS);
        /* the event and the stream of one context */
        assert_int_equal(cu.primary_retain(&ctx0, 0), CUDA_SUCCESS);
        assert_int_equal(cu.ctx_set_current(ctx0), CUDA_SUCCESS);
        assert_int_equal(cu.event_record(e1, NULL), CUDA_ERROR_INVALID_HANDLE);
        assert_int_equal(cu.event_record(e1, s), CUDA_SUCCESS); /* s is of e1's context */
        assert_int_equal(cu.ctx_set_current(ctx), CUDA_SUCCESS);
        assert_int_equal(cu.primary_release(0), CUDA_SUCCESS);
        assert_int_equal(cu.event_destroy(e3), CUDA_SUCCESS);
        assert_int_equal(cu.event_destroy(e1), CUDA_SUCCESS);
        assert_int_equal(cu.event_destroy(e1), CUDA_ERROR_INVALID_HANDLE);
        assert_int_equal(cu.event_elapsed(&ms, e1, e2), CUDA_ERROR_INVALID_HANDLE);
        assert_int_equal(cu.event_destroy(e2), CUDA_SUCCESS);
        /* a made-up handle is refused, not followed */
        assert_int_equal(cu.stream_sync((CUstream)(void *)&junk), CUDA_ERROR_INVALID_HANDLE);
        assert_int_equal(cu.stream_destroy((CUstream)(void *)&junk), CUDA_ERROR_INVALID_HANDLE);
        assert_int_equal(cu.stream_destroy(s), CUDA_SUCCESS);
        assert_int_equal(cu.primary_release(1), CUDA_SUCCESS);
        assert_int_equal(cu.primary_release(1), CUDA_ERROR_INVALID_CONTEXT);
        /* the thread's context is released: nothing works through it */
        assert_int_equal(cu.mem_get_info(&free_b, &total), CUDA_ERROR_INVALID_CONTEXT);
        assert_int_equal(cu.ctx_set_current(NULL), CUDA_SUCCESS);
}

/* ptx_text in a fatbinary of one uncompressed PTX entry (sm_70), as nvcc lays it out. */
static size_t make_fatbin(uint8_t *out, size_t max)
{
        size_t text = (strlen(ptx_text) + 1), body = 64 + text;
        uint32_t magic = 0xba55ed50u, ehdr = 64, arch = 70;
        uint16_t version = 1, hdr = 16, kind = 1;
        uint64_t body64 = body, psize = text;

        assert_true(16 + body <= max);
        memset(out, 0, 16 + body);
        memcpy(out, &magic, 4);
        memcpy(out + 4, &version, 2);
        memcpy(out + 6, &hdr, 2);
        memcpy(out + 8, &body64, 8);
        memcpy(out + 16, &kind, 2);
        memcpy(out + 16 + 4, &ehdr, 4);
        memcpy(out + 16 + 8, &psize, 8);
        memcpy(out + 16 + 28, &arch, 4);
        memcpy(out + 16 + 64, ptx_text, text);
        return 16 + body;
}

/* Images through the driver: a fatbinary, nvcc's wrapper of one, a cubin with the JIT log. */
void test_driver_images(void **state)
{
        static uint8_t fatbin[4096];
        static const uint8_t elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
        struct {
                uint32_t magic, version;
                const void *data, *unused;
        } wrapper = {0x466243b1u, 1, fatbin, NULL};
        CUjit_option opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
        char log[256] = "";
        void *vals[2] = {log, (void *)(uintptr_t)sizeof(log)};
        CUcontext ctx;
        CUmodule mod;
        CUfunction f;

        (void)state;
        make_fatbin(fatbin, sizeof(fatbin));
        assert_int_equal(cu.primary_retain(&ctx, 1), CUDA_SUCCESS);
        assert_int_equal(cu.ctx_set_current(ctx), CUDA_SUCCESS);
        assert_int_equal(cu.module_load_data_ex(&mod, fatbin, 0, NULL, NULL), CUDA_SUCCESS);
        assert_int_equal(cu.module_get_function(&f, mod, "staged"), CUDA_SUCCESS);
        assert_int_equal(cu.module_unload(mod), CUDA_SUCCESS);
        assert_int_equal(cu.module_load_data_ex(&mod, &wrapper, 0, NULL, NULL), CUDA_SUCCESS);
        assert_int_equal(cu.module_get_function(&f, mod, "add_n"), CUDA_SUCCESS);
        assert_int_equal(cu.module_unload(mod), CUDA_SUCCESS);
        assert_int_equal(cu.module_load_data_ex(&mod, elf, 2, opts, vals),
                         CUDA_ERROR_NO_BINARY_FOR_GPU);
        assert_non_null(strstr(log, "cubin"));
        assert_int_equal((uintptr_t)vals[1], strlen(log) + 1); /* how much it wrote */
        assert_int_equal(cu.module_load_data_ex(&mod, "", 0, NULL, NULL), CUDA_ERROR_INVALID_PTX);
        assert_int_equal(cu.module_load_data_ex(NULL, ptx_text, 0, NULL, NULL),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.primary_release(1), CUDA_SUCCESS);
        assert_int_equal(cu.ctx_set_current(NULL), CUDA_SUCCESS);
}

/* Modules through the driver: launches with `extra`, parameter info, variables. */
void test_driver_modules(void **state)
{
        CUcontext ctx;
        CUmodule mod;
        CUfunction add, bump, staged, f;
        CUevent ev;
        CUdeviceptr g = 0;
        size_t off = 0, size = 0;
        uint32_t val = 0;
        struct {
                uint64_t p;
                uint32_t n, v;
        } buf;
        size_t buf_size = sizeof(buf);
        void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &buf, CU_LAUNCH_PARAM_BUFFER_SIZE,
                         &buf_size, CU_LAUNCH_PARAM_END};
        void *p0 = &g;
        uint32_t n = 1, v = 1;
        void *args[] = {p0, &n, &v};
        int a = 0;

        (void)state;
        assert_int_equal(cu.primary_retain(&ctx, 1), CUDA_SUCCESS);
        assert_int_equal(cu.ctx_set_current(ctx), CUDA_SUCCESS);
        assert_int_equal(cu.module_load_data_ex(&mod, ptx_text, 0, NULL, NULL), CUDA_SUCCESS);
        assert_int_equal(cu.module_get_function(&add, mod, "add_n"), CUDA_SUCCESS);
        assert_int_equal(cu.module_get_function(&bump, mod, "bump"), CUDA_SUCCESS);
        assert_int_equal(cu.module_get_function(&staged, mod, "staged"), CUDA_SUCCESS);
        assert_int_equal(cu.module_get_function(&f, mod, "nope"), CUDA_ERROR_NOT_FOUND);
        assert_int_equal(cu.func_get_param_info(add, 1, &off, &size), CUDA_SUCCESS);
        assert_int_equal(off, 8);
        assert_int_equal(size, 4);
        assert_int_equal(cu.func_get_param_info(add, 3, &off, &size), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.func_get_attribute(&a, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, staged),
                         CUDA_SUCCESS);
        assert_int_equal(a, 256);
        assert_int_equal(cu.func_get_attribute(&a, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, staged),
                         CUDA_SUCCESS);
        assert_int_equal(a, 1024);
        assert_int_equal(cu.func_get_param_info(add, 1, NULL, &size), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.func_get_param_info(add, 2, &off, NULL), CUDA_SUCCESS);
        assert_int_equal(off, 12);
        assert_int_equal(cu.module_get_global(NULL, NULL, mod, "counter"),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.module_get_global(&g, NULL, mod, "nope"), CUDA_ERROR_NOT_FOUND);
        assert_int_equal(cu.module_get_global(NULL, &size, mod, "counter"), CUDA_SUCCESS);
        assert_int_equal(cu.module_get_global(&g, &size, mod, "counter"), CUDA_SUCCESS);
        assert_int_equal(size, 4);
        /* a copy to pageable memory returns done, and so is the work queued before it */
        assert_int_equal(cu.event_create(&ev, CU_EVENT_DEFAULT), CUDA_SUCCESS);
        assert_int_equal(cu.event_record(ev, NULL), CUDA_SUCCESS);
        assert_int_equal(cu.memcpy_dtoh_async(&val, g, 4, NULL), CUDA_SUCCESS);
        assert_int_equal(val, 5);
        assert_int_equal(cu.event_query(ev), CUDA_SUCCESS);
        assert_int_equal(cu.event_destroy(ev), CUDA_SUCCESS);
        /* the parameter buffer whole, through extra */
        buf.p = g;
        buf.n = 1;
        buf.v = 10;
        assert_int_equal(cu.launch_kernel(add, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, extra),
                         CUDA_SUCCESS);
        assert_int_equal(cu.launch_kernel(bump, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL),
                         CUDA_SUCCESS);
        assert_int_equal(cu.launch_kernel(add, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL),
                         CUDA_SUCCESS);
        assert_int_equal(cu.stream_sync(NULL), CUDA_SUCCESS);
        assert_int_equal(cu.memcpy_dtoh_async(&val, g, 4, NULL), CUDA_SUCCESS);
        assert_int_equal(val, 5 + 10 + 1 + 1);
        /* launches that cannot be */
        assert_int_equal(cu.launch_kernel(add, 1, 1, 1, 32, 1, 1, 0, NULL, args, extra),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.launch_kernel(add, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.launch_kernel(add, 1, 1, 1, 1025, 1, 1, 0, NULL, args, NULL),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.launch_kernel(staged, 1, 1, 1, 512, 1, 1, 0, NULL, args, NULL),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.launch_kernel(add, 1, 1, 1, 32, 1, 1, 48 * 1024 + 4, NULL, args, NULL),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.launch_kernel(add, 0, 1, 1, 32, 1, 1, 0, NULL, args, NULL),
                         CUDA_ERROR_INVALID_VALUE);
        /* more than 48 KiB of dynamic shared memory once the kernel opts in, to the device's limit
         */
        assert_int_equal(
                cu.func_get_attribute(&a, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, staged),
                CUDA_SUCCESS);
        assert_int_equal(a, 48 * 1024 - 1024);
        assert_int_equal(cu.func_set_attribute(staged,
                                               CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                               232448 - 1024 + 1),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(
                cu.func_set_attribute(staged, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, -1),
                CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.func_set_attribute(staged, CU_FUNC_ATTRIBUTE_NUM_REGS, 16),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.func_set_attribute(add, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                               64 * 1024),
                         CUDA_SUCCESS);
        assert_int_equal(
                cu.func_get_attribute(&a, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, add),
                CUDA_SUCCESS);
        assert_int_equal(a, 64 * 1024);
        assert_int_equal(cu.launch_kernel(add, 1, 1, 1, 32, 1, 1, 64 * 1024, NULL, args, NULL),
                         CUDA_SUCCESS);
        assert_int_equal(cu.launch_kernel(add, 1, 1, 1, 32, 1, 1, 64 * 1024 + 4, NULL, args, NULL),
                         CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.stream_sync(NULL), CUDA_SUCCESS);
        /* gone with its module: functions and variables */
        assert_int_equal(cu.module_unload(mod), CUDA_SUCCESS);
        assert_int_equal(cu.module_unload(mod), CUDA_ERROR_INVALID_HANDLE);
        assert_int_equal(cu.launch_kernel(bump, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL),
                         CUDA_ERROR_INVALID_HANDLE);
        assert_int_equal(cu.memcpy_dtoh_async(&val, g, 4, NULL), CUDA_ERROR_INVALID_VALUE);
        assert_int_equal(cu.primary_release(1), CUDA_SUCCESS);
        assert_int_equal(cu.ctx_set_current(NULL), CUDA_SUCCESS);
}
