// SPDX-License-Identifier: Apache-2.0
// Guest test: device and host memory. cuMemAlloc/Free/GetInfo (free falls by at least the
// allocation; more than the total is CUDA_ERROR_OUT_OF_MEMORY), AllocPitch, GetAddressRange,
// page-locked host memory (AllocHost, HostAlloc, HostRegister), every cuMemcpy* flavour including
// 2D, async and peer (with two devices), and cuMemset D8/D16/D32, 2D and async.
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024u * 1024u)

static void pattern(unsigned char *p, size_t n, unsigned seed)
{
        for (size_t i = 0; i < n; i++)
                p[i] = (unsigned char)((i * 131u + seed * 7u + (i >> 8)) & 0xff);
}

static void test_alloc(CUdevice dev)
{
        size_t free0 = 0;
        size_t free1 = 0;
        size_t free2 = 0;
        size_t total = 0;
        size_t devmem = 0;
        CUdeviceptr d = 0;
        CUdeviceptr small = 0;
        CUdeviceptr base = 0;
        size_t size = 0;

        CK(cuDeviceTotalMem(&devmem, dev));
        CK(cuMemGetInfo(&free0, &total));
        check_true(total > 0 && total <= devmem, "cuMemGetInfo total %zu in (0, %zu]", total,
                   devmem);
        check_true(free0 <= total, "cuMemGetInfo free %zu <= total %zu", free0, total);

        if (CK(cuMemAlloc(&d, 64 * MiB))) {
                check_true(d != 0 && d % 256 == 0, "cuMemAlloc pointer 0x%llx is 256-byte aligned",
                           (unsigned long long)d);
                CK(cuMemGetInfo(&free1, &total));
                check_true(free1 + 64 * MiB <= free0,
                           "free memory fell by at least 64 MiB (%zu -> %zu)", free0, free1);
                base = 0;
                size = 0;
                CK(cuMemGetAddressRange(&base, &size, d + 12345));
                check_true(base == d && size >= 64 * MiB,
                           "cuMemGetAddressRange(inner pointer) = 0x%llx + %zu",
                           (unsigned long long)base, size);
                CK(cuMemGetAddressRange(NULL, &size, d + 64 * MiB - 1));
                CK(cuMemGetAddressRange(&base, NULL, d));
        }
        CK_RES(cuMemAlloc(&small, 0), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuMemAlloc(NULL, 16), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuMemAlloc(&small, total + 64 * MiB), CUDA_ERROR_OUT_OF_MEMORY);
        CK_RES(cuMemAlloc(&small, (size_t)1 << 62), CUDA_ERROR_OUT_OF_MEMORY);
        // Running out is not sticky.
        if (CK(cuMemAlloc(&small, 4096)))
                CK(cuMemFree(small));

        // Many small allocations are distinct and do not overlap.
        CUdeviceptr many[64];
        bool ok = true;
        for (int i = 0; i < 64; i++) {
                if (cuMemAlloc(&many[i], 1000 + (size_t)i) != CUDA_SUCCESS) {
                        ok = false;
                        many[i] = 0;
                }
        }
        for (int i = 0; i < 64 && ok; i++) {
                for (int j = 0; j < 64; j++) {
                        if (i != j && many[i] < many[j] + 1000 + (size_t)j &&
                            many[j] < many[i] + 1000 + (size_t)i)
                                ok = false;
                }
        }
        check_true(ok, "64 small allocations succeed and do not overlap");
        for (int i = 0; i < 64; i++) {
                if (many[i])
                        cuMemFree(many[i]);
        }

        if (d) {
                // Measured right around the free: the small allocations above may keep pages.
                CK(cuMemGetInfo(&free1, &total));
                CK(cuMemFree(d));
                CK(cuMemGetInfo(&free2, &total));
                check_true(free2 >= free1 + 64 * MiB, "freeing 64 MiB gives it back (%zu -> %zu)",
                           free1, free2);
        }

        CUdeviceptr pp = 0;
        size_t pitch = 0;
        if (CK(cuMemAllocPitch(&pp, &pitch, 1000, 37, 4))) {
                check_true(pitch >= 1000 && pitch % 4 == 0,
                           "cuMemAllocPitch(1000 x 37) pitch %zu >= 1000", pitch);
                CK(cuMemGetAddressRange(&base, &size, pp));
                check_true(base == pp && size >= pitch * 37,
                           "pitched allocation covers pitch * height (%zu >= %zu)", size,
                           pitch * 37);
                CK(cuMemFree(pp));
        }
}

static void test_copies(void)
{
        const size_t n = 1 * MiB;
        unsigned char *h = malloc(n);
        unsigned char *g = malloc(n);
        unsigned char *w = malloc(n);
        CUdeviceptr a = 0;
        CUdeviceptr b = 0;

        if (!h || !g || !w || !CK(cuMemAlloc(&a, n)) || !CK(cuMemAlloc(&b, n)))
                goto out;
        pattern(h, n, 1);

        CK(cuMemcpyHtoD(a, h, n));
        memset(g, 0, n);
        CK(cuMemcpyDtoH(g, a, n));
        check_true(memcmp(g, h, n) == 0, "cuMemcpyHtoD then cuMemcpyDtoH round-trips 1 MiB");

        // Unaligned offsets and odd sizes.
        pattern(w, 4093, 2);
        CK(cuMemcpyHtoD(a + 3, w, 4093));
        CK(cuMemcpyDtoH(g, a, 8192));
        memcpy(h + 3, w, 4093);
        check_true(memcmp(g, h, 8192) == 0, "cuMemcpyHtoD at offset 3, 4093 bytes");

        CK(cuMemcpyHtoD(b, h, n));
        CK(cuMemcpyDtoD(b + 7, a + 5, 10001));
        CK(cuMemcpyDtoH(g, b, n));
        memmove(h + 7, h + 5, 10001); // b held h; bytes 7.. now come from a + 5 (= h + 5)
        check_true(memcmp(g, h, n) == 0, "cuMemcpyDtoD between offsets 5 and 7, 10001 bytes");

        // cuMemcpy with unified addressing: device to device.
        CK(cuMemcpyHtoD(a, h, n));
        CK(cuMemsetD8(b, 0, n));
        CK(cuMemcpy(b, a, n));
        CK(cuMemcpyDtoH(g, b, n));
        check_true(memcmp(g, h, n) == 0, "cuMemcpy (unified) device to device");

        // 2D: host rows of 100 bytes at pitch 128 into a pitched device buffer, and back.
        CUdeviceptr pp = 0;
        size_t pitch = 0;
        if (CK(cuMemAllocPitch(&pp, &pitch, 256, 32, 4))) {
                unsigned char src[128 * 24];
                unsigned char back[160 * 24];
                pattern(src, sizeof(src), 3);
                CK(cuMemsetD8(pp, 0xee, pitch * 32));
                CUDA_MEMCPY2D c = {0};
                c.srcMemoryType = CU_MEMORYTYPE_HOST;
                c.srcHost = src;
                c.srcPitch = 128;
                c.srcXInBytes = 4;
                c.srcY = 1;
                c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
                c.dstDevice = pp;
                c.dstPitch = pitch;
                c.dstXInBytes = 8;
                c.dstY = 2;
                c.WidthInBytes = 100;
                c.Height = 20;
                CK(cuMemcpy2D(&c));

                CUDA_MEMCPY2D r = {0};
                r.srcMemoryType = CU_MEMORYTYPE_DEVICE;
                r.srcDevice = pp;
                r.srcPitch = pitch;
                r.dstMemoryType = CU_MEMORYTYPE_HOST;
                r.dstHost = back;
                r.dstPitch = 160;
                r.WidthInBytes = 120;
                r.Height = 24;
                memset(back, 0, sizeof(back));
                CK(cuMemcpy2D(&r));
                bool ok = true;
                for (int y = 0; y < 24; y++) {
                        for (int x = 0; x < 120; x++) {
                                unsigned char want = 0xee;
                                if (y >= 2 && y < 22 && x >= 8 && x < 108)
                                        want = src[(size_t)(y - 2 + 1) * 128 + (x - 8 + 4)];
                                if (back[(size_t)y * 160 + x] != want)
                                        ok = false;
                        }
                }
                check_true(ok, "cuMemcpy2D host->device->host with offsets and pitches");

                // 2D device to device into a linear buffer (pitch = width).
                CUDA_MEMCPY2D dd = {0};
                dd.srcMemoryType = CU_MEMORYTYPE_DEVICE;
                dd.srcDevice = pp;
                dd.srcPitch = pitch;
                dd.srcXInBytes = 8;
                dd.srcY = 2;
                dd.dstMemoryType = CU_MEMORYTYPE_DEVICE;
                dd.dstDevice = b;
                dd.dstPitch = 100;
                dd.WidthInBytes = 100;
                dd.Height = 20;
                CK(cuMemcpy2D(&dd));
                CK(cuMemcpyDtoH(g, b, 2000));
                ok = true;
                for (int y = 0; y < 20; y++) {
                        if (memcmp(g + (size_t)y * 100, src + (size_t)(y + 1) * 128 + 4, 100))
                                ok = false;
                }
                check_true(ok, "cuMemcpy2D device->device, pitched to linear");
                CK(cuMemFree(pp));
        }
out:
        if (a)
                cuMemFree(a);
        if (b)
                cuMemFree(b);
        free(h);
        free(g);
        free(w);
}

static bool all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
        for (size_t i = 0; i < n; i++) {
                if (p[i] != v)
                        return false;
        }
        return true;
}

static void test_memset(void)
{
        const size_t n = 64 * 1024;
        unsigned char *g = malloc(n);
        CUdeviceptr d = 0;

        if (!g || !CK(cuMemAlloc(&d, n)))
                goto out;
        CK(cuMemsetD8(d, 0, n));
        CK(cuMemsetD8(d + 1, 0xab, 1000));
        CK(cuMemcpyDtoH(g, d, 2048));
        check_true(g[0] == 0 && all_bytes(g + 1, 1000, 0xab) && all_bytes(g + 1001, 1047, 0),
                   "cuMemsetD8 at offset 1 sets exactly 1000 bytes");

        CK(cuMemsetD16(d + 2, 0xbeef, 500));
        CK(cuMemcpyDtoH(g, d, 2048));
        bool ok = g[0] == 0 && g[1] == 0xab;
        for (int i = 0; i < 500; i++) {
                uint16_t v;
                memcpy(&v, g + 2 + 2 * i, 2);
                ok &= v == 0xbeef;
        }
        ok &= g[1002] == 0;
        check_true(ok, "cuMemsetD16 sets 500 16-bit words");

        CK(cuMemsetD32(d + 4096, 0xdeadbeefu, 1024));
        CK(cuMemcpyDtoH(g, d + 4092, 4104));
        ok = true;
        for (int i = 0; i < 1024; i++) {
                uint32_t v;
                memcpy(&v, g + 4 + 4 * i, 4);
                ok &= v == 0xdeadbeefu;
        }
        ok &= all_bytes(g, 4, 0) && all_bytes(g + 4100, 4, 0);
        check_true(ok, "cuMemsetD32 sets 1024 32-bit words and nothing around them");

        CUdeviceptr pp = 0;
        size_t pitch = 0;
        if (CK(cuMemAllocPitch(&pp, &pitch, 64, 8, 4))) {
                unsigned char *row = malloc(pitch * 8);
                CK(cuMemsetD8(pp, 0x11, pitch * 8));
                CK(cuMemsetD2D8(pp, pitch, 0x22, 50, 5));
                CK(cuMemcpyDtoH(row, pp, pitch * 8));
                ok = true;
                for (size_t y = 0; y < 8; y++) {
                        for (size_t x = 0; x < 64; x++)
                                ok &= row[y * pitch + x] == ((y < 5 && x < 50) ? 0x22 : 0x11);
                }
                check_true(ok, "cuMemsetD2D8 sets a 50 x 5 byte rectangle");
                CK(cuMemsetD2D16(pp, pitch, 0x3344, 10, 3));
                CK(cuMemsetD2D32(pp + 32, pitch, 0x55667788u, 4, 2));
                CK(cuMemcpyDtoH(row, pp, pitch * 8));
                ok = true;
                for (size_t y = 0; y < 3; y++) {
                        for (size_t x = 0; x < 10; x++) {
                                uint16_t v;
                                memcpy(&v, row + y * pitch + 2 * x, 2);
                                ok &= v == 0x3344;
                        }
                }
                for (size_t y = 0; y < 2; y++) {
                        for (size_t x = 0; x < 4; x++) {
                                uint32_t v;
                                memcpy(&v, row + y * pitch + 32 + 4 * x, 4);
                                ok &= v == 0x55667788u;
                        }
                }
                ok &= row[2 * pitch + 32] == 0x22 && row[5 * pitch] == 0x11;
                check_true(ok, "cuMemsetD2D16 and cuMemsetD2D32 set their rectangles");
                free(row);
                CK(cuMemFree(pp));
        }
out:
        if (d)
                cuMemFree(d);
        free(g);
}

static void test_host_memory(void)
{
        const size_t n = 256 * 1024;
        unsigned char *ph = NULL;
        unsigned char *ph2 = NULL;
        unsigned char *reg = NULL;
        unsigned char *g = malloc(n);
        CUdeviceptr d = 0;
        CUstream s = NULL;

        if (!g || !CK(cuMemAlloc(&d, n)) || !CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING)))
                goto out;
        if (CK(cuMemAllocHost((void **)&ph, n))) {
                pattern(ph, n, 5);
                CK(cuMemcpyHtoD(d, ph, n));
                CK(cuMemcpyDtoH(g, d, n));
                check_true(memcmp(g, ph, n) == 0, "copies from cuMemAllocHost memory");
        }
        if (CK(cuMemHostAlloc((void **)&ph2, n, CU_MEMHOSTALLOC_PORTABLE))) {
                memset(ph2, 0, n);
                CK(cuMemcpyDtoHAsync(ph2, d, n, s));
                CK(cuStreamSynchronize(s));
                check_true(ph && memcmp(ph2, ph, n) == 0,
                           "async copy into cuMemHostAlloc(PORTABLE) memory");
        }
        reg = aligned_alloc(4096, n);
        if (reg && CK(cuMemHostRegister(reg, n, 0))) {
                pattern(reg, n, 6);
                CK(cuMemcpyHtoDAsync(d, reg, n, s));
                memset(g, 0, n);
                CK(cuMemcpyDtoHAsync(ph2 ? ph2 : g, d, n, s));
                CK(cuStreamSynchronize(s));
                check_true(ph2 && memcmp(ph2, reg, n) == 0,
                           "async copies from cuMemHostRegister'd memory");
                CK_RES(cuMemHostRegister(reg, n, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
                CK(cuMemHostUnregister(reg));
                CK_RES(cuMemHostUnregister(reg), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
        }
        // Pageable memory works with the async calls too (they are synchronous for it).
        pattern(g, n, 7);
        CK(cuMemcpyHtoDAsync(d, g, n, s));
        CK(cuStreamSynchronize(s));
        if (ph) {
                CK(cuMemcpyDtoH(ph, d, n));
                check_true(memcmp(ph, g, n) == 0, "cuMemcpyHtoDAsync from pageable memory");
        }
out:
        if (ph)
                CK(cuMemFreeHost(ph));
        if (ph2)
                CK(cuMemFreeHost(ph2));
        free(reg);
        if (s)
                cuStreamDestroy(s);
        if (d)
                cuMemFree(d);
        free(g);
}

static void test_async(void)
{
        const size_t n = 128 * 1024;
        unsigned char *h = NULL;
        unsigned char *back = NULL;
        CUdeviceptr a = 0;
        CUdeviceptr b = 0;
        CUstream s = NULL;

        if (!CK(cuMemAllocHost((void **)&h, n)) || !CK(cuMemAllocHost((void **)&back, n)) ||
            !CK(cuMemAlloc(&a, n)) || !CK(cuMemAlloc(&b, n)) || !CK(cuStreamCreate(&s, 0)))
                goto out;
        pattern(h, n, 9);
        // One stream: everything below runs in order.
        CK(cuMemsetD8Async(b, 0x7f, n, s));
        CK(cuMemcpyHtoDAsync(a, h, n, s));
        CK(cuMemcpyDtoDAsync(b + 16, a, 1024, s));
        CK(cuMemsetD16Async(b + 2048, 0x1234, 8, s));
        CK(cuMemsetD32Async(b + 4096, 0xcafef00du, 8, s));
        CK(cuMemcpyAsync(b + 8192, a + 1, 100, s));
        CK(cuMemcpyDtoHAsync(back, b, n, s));
        CK(cuStreamSynchronize(s));
        bool ok = all_bytes(back, 16, 0x7f) && memcmp(back + 16, h, 1024) == 0 &&
                  all_bytes(back + 1040, 1008, 0x7f) && memcmp(back + 8192, h + 1, 100) == 0 &&
                  all_bytes(back + 8292, 100, 0x7f);
        for (int i = 0; i < 8; i++) {
                uint16_t v16;
                uint32_t v32;
                memcpy(&v16, back + 2048 + 2 * i, 2);
                memcpy(&v32, back + 4096 + 4 * i, 4);
                ok &= v16 == 0x1234 && v32 == 0xcafef00du;
        }
        check_true(ok, "async memset/memcpy sequence on one stream runs in order");

        // 2D async: a 16 x 4 rectangle from a (pitch 64) into b (pitch 32), and 2D memset async.
        CK(cuMemsetD2D32Async(b, 32, 0x01020304u, 8, 8, s));
        CUDA_MEMCPY2D c = {0};
        c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
        c.srcDevice = a;
        c.srcPitch = 64;
        c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
        c.dstDevice = b;
        c.dstPitch = 32;
        c.WidthInBytes = 16;
        c.Height = 4;
        CK(cuMemcpy2DAsync(&c, s));
        CK(cuMemsetD2D8Async(b + 8 * 32, 32, 0x99, 3, 2, s));
        CK(cuMemsetD2D16Async(b + 10 * 32, 32, 0xabcd, 2, 1, s));
        CK(cuMemcpyDtoHAsync(back, b, 512, s));
        CK(cuStreamSynchronize(s));
        ok = true;
        for (int y = 0; y < 8; y++) {
                for (int x = 0; x < 32; x++) {
                        unsigned char want = (unsigned char)(4 - (x & 3));
                        if (y < 4 && x < 16)
                                want = h[y * 64 + x];
                        ok &= back[y * 32 + x] == want;
                }
        }
        ok &= back[8 * 32] == 0x99 && back[9 * 32 + 2] == 0x99 &&
              back[8 * 32 + 3] == h[8 * 32 + 3 - 16];
        uint16_t v16;
        memcpy(&v16, back + 10 * 32 + 2, 2);
        ok &= v16 == 0xabcd;
        check_true(ok, "cuMemcpy2DAsync and cuMemsetD2D{8,16,32}Async");
out:
        if (s)
                cuStreamDestroy(s);
        if (a)
                cuMemFree(a);
        if (b)
                cuMemFree(b);
        if (h)
                cuMemFreeHost(h);
        if (back)
                cuMemFreeHost(back);
}

static void test_peer(CUcontext ctx0)
{
        int count = 0;
        CUdevice dev1;
        CUcontext ctx1 = NULL;
        CUdeviceptr a = 0;
        CUdeviceptr b = 0;
        const size_t n = 64 * 1024;
        unsigned char *h = malloc(n);
        unsigned char *g = malloc(n);

        CK(cuDeviceGetCount(&count));
        if (count < 2) {
                check_skip("peer copies: only %d device present", count);
                goto out;
        }
        if (!h || !g || !CK(cuDeviceGet(&dev1, 1)) || !CK(cuDevicePrimaryCtxRetain(&ctx1, dev1)))
                goto out;
        pattern(h, n, 11);
        CK(cuCtxSetCurrent(ctx0));
        CK(cuMemAlloc(&a, n));
        CK(cuMemcpyHtoD(a, h, n));
        CK(cuCtxSetCurrent(ctx1));
        CK(cuMemAlloc(&b, n));
        CK(cuMemsetD8(b, 0, n));
        CK(cuMemcpyPeer(b, ctx1, a, ctx0, n));
        CK(cuMemcpyDtoH(g, b, n));
        check_true(memcmp(g, h, n) == 0, "cuMemcpyPeer device 0 -> device 1");
        CK(cuCtxSetCurrent(ctx0));
        CK(cuMemsetD8(a, 0, n));
        CK(cuMemcpyPeerAsync(a, ctx0, b, ctx1, n, NULL));
        CK(cuCtxSynchronize());
        CK(cuMemcpyDtoH(g, a, n));
        check_true(memcmp(g, h, n) == 0, "cuMemcpyPeerAsync device 1 -> device 0");
        CK(cuMemFree(a));
        CK(cuCtxSetCurrent(ctx1));
        CK(cuMemFree(b));
        CK(cuCtxSetCurrent(ctx0));
        CK(cuDevicePrimaryCtxRelease(dev1));
out:
        free(h);
        free(g);
}

int main(void)
{
        CUdevice dev;
        CUcontext ctx;

        if (!check_setup(&dev, &ctx))
                return check_done();
        test_alloc(dev);
        test_copies();
        test_memset();
        test_host_memory();
        test_async();
        test_peer(ctx);
        check_teardown(dev);
        return check_done();
}
