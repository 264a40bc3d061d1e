// SPDX-License-Identifier: Apache-2.0
// Guest test: modules, libraries and launches. cuModuleLoad (from a file), LoadData (fatbinary and
// PTX text), LoadDataEx, LoadFatBinary, GetFunction, GetGlobal, Unload; cuLibraryLoadData/
// GetKernel/Unload, cuKernelGetFunction, cuKernelGetParamInfo; cuFuncGetAttribute and
// cuFuncGetParamInfo; cuLaunchKernel with kernelParams and with `extra`, cuLaunchKernelEx, 3D
// grids, dynamic shared memory; occupancy queries.
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mixed_s {
        int a;
        float b[3];
};

// The parameters of kernels.cu's mixed_params, in the order and at the offsets the ABI gives.
static const struct {
        size_t offset;
        size_t size;
} mixed_layout[] = {{0, 1}, {2, 2}, {4, 4}, {8, 8}, {16, 8}, {24, 16}, {40, 8}, {48, 4}};
#define MIXED_NPARAMS 8

static uint32_t f2u(float f)
{
        uint32_t u;

        memcpy(&u, &f, sizeof(u));
        return u;
}

// Launch `add_one` over n ints of d (which hold 0..n-1) and check that each became i + 1.
static bool run_add_one(CUfunction f, CUdeviceptr d, int n, const char *how)
{
        int *h = malloc((size_t)n * sizeof(int));
        bool ok = h != NULL;

        for (int i = 0; ok && i < n; i++)
                h[i] = i;
        ok = ok && CK(cuMemcpyHtoD(d, h, (size_t)n * sizeof(int)));
        void *params[] = {&d, &n};
        ok = ok && CK(cuLaunchKernel(f, (unsigned)(n + 127) / 128, 1, 1, 128, 1, 1, 0, NULL, params,
                                     NULL));
        ok = ok && CK(cuMemcpyDtoH(h, d, (size_t)n * sizeof(int)));
        bool right = ok;
        for (int i = 0; right && i < n; i++)
                right = h[i] == i + 1;
        check_true(right, "add_one ran correctly (%s)", how);
        free(h);
        return right;
}

static void check_mixed_out(const unsigned long long *out, const char *how)
{
        bool ok = (long long)out[0] == -5 && (long long)out[1] == -1234 &&
                  (long long)out[2] == 123456789 && out[4] == 77 && out[5] == f2u(1.5f) &&
                  out[6] == f2u(-2.25f) && out[7] == f2u(1e30f) &&
                  (long long)out[8] == -1234567890123LL && out[9] == f2u(3.75f);
        double d = 0;
        memcpy(&d, &out[3], sizeof(d));
        ok = ok && d == 6.02214076e23;
        check_true(ok, "mixed_params received every value (%s)", how);
}

static void test_modules(CUdeviceptr scratch)
{
        CUmodule m_fat = NULL;
        CUmodule m_ptx = NULL;
        CUmodule m_ex = NULL;
        CUmodule m_fb = NULL;
        CUmodule m_file = NULL;
        CUmodule m_bad = NULL;
        CUfunction f = NULL;
        CUdeviceptr g = 0;
        size_t bytes = 0;

        CK(cuModuleLoadData(&m_fat, guest_kernels_fatbin));
        CK_RES(cuModuleGetFunction(&f, m_fat, "no_such_kernel"), CUDA_ERROR_NOT_FOUND);
        CK_RES(cuModuleGetGlobal(&g, &bytes, m_fat, "no_such_global"), CUDA_ERROR_NOT_FOUND);
        if (CK(cuModuleGetGlobal(&g, &bytes, m_fat, "g_data")))
                check_true(g != 0 && bytes == 16, "g_data is 16 bytes at 0x%llx (got %zu)",
                           (unsigned long long)g, bytes);
        CUdeviceptr c = 0;
        if (CK(cuModuleGetGlobal(&c, &bytes, m_fat, "c_data")))
                check_true(c != 0 && bytes == 32, "c_data is 32 bytes (got %zu)", bytes);
        CK(cuModuleGetGlobal(&c, NULL, m_fat, "c_data"));

        // Globals are device memory: write them, run a kernel that reads and bumps them.
        if (g && c && check_function(m_fat, "read_globals", &f)) {
                int gv[4] = {10, 20, 30, 40};
                int cv[8] = {1, 2, 3, 4, 5, 6, 7, 8};
                int out[8] = {0};
                int n = 8;
                CK(cuMemcpyHtoD(g, gv, sizeof(gv)));
                CK(cuMemcpyHtoD(c, cv, sizeof(cv)));
                void *params[] = {&scratch, &n};
                CK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
                CK(cuMemcpyDtoH(out, scratch, sizeof(out)));
                bool ok = true;
                for (int i = 0; i < 8; i++)
                        ok &= out[i] == gv[i % 4] + cv[i];
                check_true(ok, "a kernel reads __device__ and __constant__ globals");
                CK(cuMemcpyDtoH(gv, g, sizeof(gv)));
                check_true(gv[0] == 11 && gv[3] == 41, "a kernel writes a __device__ global");
        }

        // PTX text, with and without JIT options.
        if (CK(cuModuleLoadData(&m_ptx, guest_kernels_ptx)) && check_function(m_ptx, "add_one", &f))
                run_add_one(f, scratch, 300, "module from PTX text");
        char log[4096];
        char info[4096];
        log[0] = info[0] = '\0';
        CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                               CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES};
        void *vals[] = {log, (void *)(uintptr_t)sizeof(log), info, (void *)(uintptr_t)sizeof(info)};
        if (CK(cuModuleLoadDataEx(&m_ex, guest_kernels_ptx, 4, opts, vals)) &&
            check_function(m_ex, "add_one", &f))
                run_add_one(f, scratch, 300, "module from cuModuleLoadDataEx(PTX, log options)");
        if (m_ex)
                CK(cuModuleUnload(m_ex));
        m_ex = NULL;
        if (CK(cuModuleLoadDataEx(&m_ex, guest_kernels_fatbin, 0, NULL, NULL)) &&
            check_function(m_ex, "add_one", &f))
                run_add_one(f, scratch, 300, "module from cuModuleLoadDataEx(fatbin)");
        if (CK(cuModuleLoadFatBinary(&m_fb, guest_kernels_fatbin)) &&
            check_function(m_fb, "add_one", &f))
                run_add_one(f, scratch, 300, "module from cuModuleLoadFatBinary");

        // Each module has its own globals.
        CUdeviceptr g2 = 0;
        if (m_fb && CK(cuModuleGetGlobal(&g2, &bytes, m_fb, "g_data")))
                check_true(g2 != 0 && g2 != g, "two loaded modules have distinct globals");

        // cuModuleLoad from a file.
        char dir[] = "/tmp/vgpu-guest-test-XXXXXX";
        if (check_true(mkdtemp(dir) != NULL, "mkdtemp")) {
                char path[256];
                snprintf(path, sizeof(path), "%s/kernels.fatbin", dir);
                FILE *fp = fopen(path, "wb");
                bool wrote = fp && fwrite(guest_kernels_fatbin, 1, guest_kernels_fatbin_size, fp) ==
                                           guest_kernels_fatbin_size;
                if (fp)
                        wrote = (fclose(fp) == 0) && wrote;
                check_true(wrote, "wrote %s", path);
                if (CK(cuModuleLoad(&m_file, path)) && check_function(m_file, "add_one", &f))
                        run_add_one(f, scratch, 300, "module from cuModuleLoad(file)");
                snprintf(path, sizeof(path), "%s/kernels.ptx", dir);
                fp = fopen(path, "wb");
                wrote = fp && fwrite(guest_kernels_ptx, 1, guest_kernels_ptx_size - 1, fp) ==
                                      guest_kernels_ptx_size - 1;
                if (fp)
                        wrote = (fclose(fp) == 0) && wrote;
                CUmodule m_pfile = NULL;
                if (wrote && CK(cuModuleLoad(&m_pfile, path)))
                        CK(cuModuleUnload(m_pfile));
                unlink(path);
                snprintf(path, sizeof(path), "%s/kernels.fatbin", dir);
                unlink(path);
                snprintf(path, sizeof(path), "%s/missing.fatbin", dir);
                CK_RES(cuModuleLoad(&m_bad, path), CUDA_ERROR_FILE_NOT_FOUND);
                rmdir(dir);
        }

        // Not a module at all: NUL-terminated text that is not PTX.
        static const char junk[] = "this is not a CUDA module\n";
        CUresult r = cuModuleLoadData(&m_bad, junk);
        check_true(r == CUDA_ERROR_INVALID_PTX || r == CUDA_ERROR_INVALID_IMAGE ||
                           r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION,
                   "cuModuleLoadData(junk) fails as invalid PTX/image (%s)", check_name(r));

        if (m_fat)
                CK(cuModuleUnload(m_fat));
        if (m_ptx)
                CK(cuModuleUnload(m_ptx));
        if (m_ex)
                CK(cuModuleUnload(m_ex));
        if (m_fb)
                CK(cuModuleUnload(m_fb));
        if (m_file)
                CK(cuModuleUnload(m_file));
}

static void test_func_info(CUmodule mod)
{
        CUfunction f;
        int v;

        if (check_function(mod, "add_one", &f)) {
                v = -1;
                CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
                check_true(v >= 32 && v <= 1024, "add_one MAX_THREADS_PER_BLOCK = %d", v);
                v = -1;
                CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_NUM_REGS, f));
                check_true(v >= 1 && v <= 255, "add_one NUM_REGS = %d", v);
                v = -1;
                CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_PTX_VERSION, f));
                check_true(v >= 75, "add_one PTX_VERSION = %d >= 75", v);
                v = -1;
                CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_BINARY_VERSION, f));
                check_true(v >= 75, "add_one BINARY_VERSION = %d >= 75", v);
                v = -1;
                CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, f));
                check_true(v >= 0, "add_one LOCAL_SIZE_BYTES = %d", v);
                v = -1;
                CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, f));
                check_true(v == 0, "add_one SHARED_SIZE_BYTES = %d (no shared memory)", v);
                CK_RES(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX, f), CUDA_ERROR_INVALID_VALUE);
                CK_RES(cuFuncGetAttribute(NULL, CU_FUNC_ATTRIBUTE_NUM_REGS, f),
                       CUDA_ERROR_INVALID_VALUE);
                /* the opt-in past 48 KiB: up to the device's limit; read-only ones refused */
                int optin = 0;
                CUdevice dev;

                CK(cuCtxGetDevice(&dev));
                CK(cuDeviceGetAttribute(
                        &optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, dev));
                check_true(optin >= 48 * 1024, "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = %d", optin);
                CK_RES(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                          optin + 1),
                       CUDA_ERROR_INVALID_VALUE);
                CK(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, optin));
                v = -1;
                CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f));
                check_true(v == optin, "MAX_DYNAMIC_SHARED_SIZE_BYTES after the opt-in = %d", v);
                CK(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                      48 * 1024));
                CK_RES(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_NUM_REGS, 16),
                       CUDA_ERROR_INVALID_VALUE);
                CK_RES(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT,
                                          101),
                       CUDA_ERROR_INVALID_VALUE);
                CK(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT, 50));
        }
        if (check_function(mod, "bounded", &f)) {
                v = -1;
                CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
                check_true(v >= 32 && v <= 128,
                           "__launch_bounds__(128): MAX_THREADS_PER_BLOCK = %d", v);
        }
        if (check_function(mod, "reverse_static", &f)) {
                v = -1;
                CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, f));
                check_true(v >= 1024, "reverse_static SHARED_SIZE_BYTES = %d >= 1024", v);
        }
        if (check_function(mod, "mixed_params", &f)) {
                for (size_t i = 0; i < MIXED_NPARAMS; i++) {
                        size_t off = 999;
                        size_t size = 999;
                        CUresult r = cuFuncGetParamInfo(f, i, &off, &size);
                        check_true(r == CUDA_SUCCESS && off == mixed_layout[i].offset &&
                                           size == mixed_layout[i].size,
                                   "cuFuncGetParamInfo(mixed_params, %zu) = offset %zu size %zu "
                                   "(%s), want %zu, %zu",
                                   i, off, size, check_name(r), mixed_layout[i].offset,
                                   mixed_layout[i].size);
                }
                size_t off = 0;
                CK(cuFuncGetParamInfo(f, 3, &off, NULL));
                CK_RES(cuFuncGetParamInfo(f, MIXED_NPARAMS, &off, NULL), CUDA_ERROR_INVALID_VALUE);
        }
}

static void test_library(CUcontext ctx, CUdeviceptr scratch)
{
        CUlibrary lib = NULL;
        CUkernel k = NULL;
        CUkernel km = NULL;
        CUfunction f = NULL;
        CUcontext cur = NULL;

        // Libraries are context-independent: load and query with no current context.
        CK(cuCtxSetCurrent(NULL));
        if (!CK(cuLibraryLoadData(&lib, guest_kernels_fatbin, NULL, NULL, 0, NULL, NULL, 0))) {
                CK(cuCtxSetCurrent(ctx));
                return;
        }
        CK(cuLibraryGetKernel(&k, lib, "add_one"));
        CK_RES(cuLibraryGetKernel(&km, lib, "no_such_kernel"), CUDA_ERROR_NOT_FOUND);
        if (CK(cuLibraryGetKernel(&km, lib, "mixed_params"))) {
                bool ok = true;
                for (size_t i = 0; i < MIXED_NPARAMS; i++) {
                        size_t off = 999;
                        size_t size = 999;
                        ok &= cuKernelGetParamInfo(km, i, &off, &size) == CUDA_SUCCESS &&
                              off == mixed_layout[i].offset && size == mixed_layout[i].size;
                }
                check_true(ok, "cuKernelGetParamInfo(mixed_params) gives the ABI layout");
                size_t off;
                CK_RES(cuKernelGetParamInfo(km, MIXED_NPARAMS, &off, NULL),
                       CUDA_ERROR_INVALID_VALUE);
        }
        CK(cuCtxGetCurrent(&cur));
        check_true(cur == NULL, "library calls left no context current");
        CK(cuCtxSetCurrent(ctx));
        if (k && CK(cuKernelGetFunction(&f, k)))
                run_add_one(f, scratch, 500, "function from cuKernelGetFunction");
        CK(cuLibraryUnload(lib));
}

static void test_launch(CUmodule mod, CUdeviceptr scratch)
{
        CUfunction f;
        unsigned long long out[10];

        if (check_function(mod, "mixed_params", &f)) {
                char c = -5;
                short s = -1234;
                int i = 123456789;
                double d = 6.02214076e23;
                struct mixed_s st = {77, {1.5f, -2.25f, 1e30f}};
                long long ll = -1234567890123LL;
                float fl = 3.75f;
                void *params[] = {&c, &s, &i, &d, &scratch, &st, &ll, &fl};

                CK(cuMemsetD8(scratch, 0, sizeof(out)));
                CK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
                CK(cuMemcpyDtoH(out, scratch, sizeof(out)));
                check_mixed_out(out, "kernelParams");

                // The same through one packed buffer laid out as cuFuncGetParamInfo says.
                _Alignas(16) unsigned char buf[64];
                size_t size = 52;
                memset(buf, 0, sizeof(buf));
                memcpy(buf + 0, &c, 1);
                memcpy(buf + 2, &s, 2);
                memcpy(buf + 4, &i, 4);
                memcpy(buf + 8, &d, 8);
                memcpy(buf + 16, &scratch, 8);
                memcpy(buf + 24, &st, 16);
                memcpy(buf + 40, &ll, 8);
                memcpy(buf + 48, &fl, 4);
                void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE,
                                 &size, CU_LAUNCH_PARAM_END};
                CK(cuMemsetD8(scratch, 0, sizeof(out)));
                CK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, extra));
                CK(cuMemcpyDtoH(out, scratch, sizeof(out)));
                check_mixed_out(out, "extra with CU_LAUNCH_PARAM_BUFFER_POINTER/SIZE");

                CK_RES(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, extra),
                       CUDA_ERROR_INVALID_VALUE);

                // cuLaunchKernelEx with no attributes.
                CUlaunchConfig cfg;
                memset(&cfg, 0, sizeof(cfg));
                cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
                cfg.blockDimX = 64;
                cfg.blockDimY = cfg.blockDimZ = 1;
                CK(cuMemsetD8(scratch, 0, sizeof(out)));
                CK(cuLaunchKernelEx(&cfg, f, params, NULL));
                CK(cuMemcpyDtoH(out, scratch, sizeof(out)));
                check_mixed_out(out, "cuLaunchKernelEx, kernelParams");
                CK(cuMemsetD8(scratch, 0, sizeof(out)));
                CK(cuLaunchKernelEx(&cfg, f, NULL, extra));
                CK(cuMemcpyDtoH(out, scratch, sizeof(out)));
                check_mixed_out(out, "cuLaunchKernelEx, extra");
        }

        // A 3D grid of 3D blocks covers every thread once.
        if (check_function(mod, "index3d", &f)) {
                const unsigned gx = 3, gy = 2, gz = 2, bx = 8, by = 3, bz = 2;
                const unsigned n = gx * gy * gz * bx * by * bz;
                unsigned got[3 * 2 * 2 * 8 * 3 * 2];
                CK(cuMemsetD32(scratch, 0, n));
                void *params[] = {&scratch};
                CK(cuLaunchKernel(f, gx, gy, gz, bx, by, bz, 0, NULL, params, NULL));
                CK(cuMemcpyDtoH(got, scratch, n * sizeof(unsigned)));
                bool ok = true;
                for (unsigned i = 0; i < n; i++)
                        ok &= got[i] == i + 1;
                check_true(ok, "3D grid (3,2,2) x block (8,3,2): every index written once");
        }

        // Dynamic shared memory, and the static array.
        CUfunction fs;
        if (check_function(mod, "reverse_dynamic", &f) &&
            check_function(mod, "reverse_static", &fs)) {
                int h[512];
                for (int i = 0; i < 512; i++)
                        h[i] = i * 3;
                CK(cuMemcpyHtoD(scratch, h, sizeof(h)));
                void *params[] = {&scratch};
                CK(cuLaunchKernel(f, 4, 1, 1, 128, 1, 1, 128 * sizeof(int), NULL, params, NULL));
                CK(cuMemcpyDtoH(h, scratch, sizeof(h)));
                bool ok = true;
                for (int i = 0; i < 512; i++)
                        ok &= h[i] == ((i / 128) * 128 + 127 - i % 128) * 3;
                check_true(ok, "dynamic shared memory (512 bytes per block) reverses each block");
                CK(cuLaunchKernel(fs, 2, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
                CK(cuMemcpyDtoH(h, scratch, sizeof(h)));
                ok = true;
                for (int i = 0; i < 512; i++) {
                        int j = (i / 256) * 256 + 255 - i % 256; // undo the static reverse
                        ok &= h[i] == ((j / 128) * 128 + 127 - j % 128) * 3;
                }
                check_true(ok, "static shared memory reverses each 256-thread block");
        }
}

static void test_occupancy(CUdevice dev, CUmodule mod)
{
        CUfunction f;
        int sms = 0;
        int max_threads_sm = 0;

        cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
        cuDeviceGetAttribute(&max_threads_sm, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR,
                             dev);
        if (check_function(mod, "add_one", &f)) {
                int nb = -1;
                CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&nb, f, 256, 0));
                check_true(nb >= 1 && nb * 256 <= max_threads_sm,
                           "occupancy of add_one at 256 threads: %d blocks per SM", nb);
                nb = -1;
                CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&nb, f, 1024, 0));
                check_true(nb >= 1 && nb * 1024 <= max_threads_sm,
                           "occupancy of add_one at 1024 threads: %d blocks per SM", nb);
                int min_grid = -1;
                int block = -1;
                CK(cuOccupancyMaxPotentialBlockSize(&min_grid, &block, f, NULL, 0, 0));
                check_true(block >= 32 && block <= 1024 && block % 32 == 0 && min_grid >= sms,
                           "cuOccupancyMaxPotentialBlockSize(add_one): block %d, min grid %d "
                           "(%d SMs)",
                           block, min_grid, sms);
                CK(cuOccupancyMaxPotentialBlockSize(&min_grid, &block, f, NULL, 0, 64));
                check_true(block >= 1 && block <= 64, "with blockSizeLimit 64: block %d", block);
        }
        if (check_function(mod, "bounded", &f)) {
                int min_grid = -1;
                int block = -1;
                CK(cuOccupancyMaxPotentialBlockSize(&min_grid, &block, f, NULL, 0, 0));
                check_true(block >= 32 && block <= 128 && min_grid >= 1,
                           "cuOccupancyMaxPotentialBlockSize(bounded): block %d <= 128", block);
        }
        if (check_function(mod, "reverse_dynamic", &f)) {
                int nb = -1;
                CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&nb, f, 128, 512));
                check_true(nb >= 1, "occupancy with 512 bytes dynamic shared memory: %d", nb);
        }
}

int main(void)
{
        CUdevice dev;
        CUcontext ctx;
        CUmodule mod = NULL;
        CUdeviceptr scratch = 0;

        if (!check_setup(&dev, &ctx))
                return check_done();
        if (!CK(cuMemAlloc(&scratch, 1 << 20)) || !check_load_kernels(&mod)) {
                check_teardown(dev);
                return check_done();
        }
        test_modules(scratch);
        test_func_info(mod);
        test_library(ctx, scratch);
        test_launch(mod, scratch);
        test_occupancy(dev, mod);
        CK(cuModuleUnload(mod));
        CK(cuMemFree(scratch));
        check_teardown(dev);
        return check_done();
}
