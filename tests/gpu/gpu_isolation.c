// SPDX-License-Identifier: Apache-2.0
// A guest program for the isolation checks of tests/gpu/run_isolation.sh, on any backend:
//   fixed BASE SIZE  every allocation lies in the vGPU's framebuffer [BASE, BASE+SIZE); filling it
//                    ends in CUDA_ERROR_OUT_OF_MEMORY near SIZE, and freeing gives it all back
//   hold             allocates, fills, prints "PTR 0x..." and waits for a line on stdin; then
//                    checks its data and that a kernel still runs (another vGPU faulted meanwhile)
//   poke PTR         from another vGPU: a copy from PTR is refused, a kernel reading PTR faults,
//                    and the context stays failed
// Exit 0 when everything is as expected; every deviation is printed.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>

#define MIB (UINT64_C(1) << 20)

/* copy n words: dst[i] = src[i]; written by hand so that this program needs no nvcc */
static const char ptx[] = ".version 7.0\n"
                          ".target sm_70\n"
                          ".address_size 64\n"
                          ".visible .entry copy_words(.param .u64 dst, .param .u64 src, .param "
                          ".u32 n)\n"
                          "{\n"
                          "  .reg .u32 %r<6>;\n"
                          "  .reg .u64 %rd<8>;\n"
                          "  .reg .pred %p1;\n"
                          "  ld.param.u64 %rd1, [dst];\n"
                          "  ld.param.u64 %rd2, [src];\n"
                          "  ld.param.u32 %r1, [n];\n"
                          "  mov.u32 %r2, %ctaid.x;\n"
                          "  mov.u32 %r3, %ntid.x;\n"
                          "  mov.u32 %r4, %tid.x;\n"
                          "  mad.lo.u32 %r5, %r2, %r3, %r4;\n"
                          "  setp.ge.u32 %p1, %r5, %r1;\n"
                          "  @%p1 bra DONE;\n"
                          "  mul.wide.u32 %rd3, %r5, 4;\n"
                          "  add.u64 %rd4, %rd2, %rd3;\n"
                          "  add.u64 %rd5, %rd1, %rd3;\n"
                          "  ld.global.u32 %r2, [%rd4];\n"
                          "  st.global.u32 [%rd5], %r2;\n"
                          "DONE:\n"
                          "  ret;\n"
                          "}\n";

static int failures;

static void expect(int ok, const char *what)
{
        printf("%s: %s\n", ok ? "ok" : "FAIL", what);
        if (!ok)
                failures++;
}

static const char *name(CUresult r)
{
        const char *s = "?";

        cuGetErrorName(r, &s);
        return s;
}

#define CHECK(call)                                                                                \
        do {                                                                                       \
                CUresult r_ = (call);                                                              \
                if (r_ != CUDA_SUCCESS) {                                                          \
                        printf("FAIL: %s: %s\n", #call, name(r_));                                 \
                        return 1;                                                                  \
                }                                                                                  \
        } while (0)

static CUfunction copy_fn;

static int setup(CUcontext *ctx)
{
        CUmodule mod;
        CUdevice dev;

        CHECK(cuInit(0));
        CHECK(cuDeviceGet(&dev, 0));
        CHECK(cuCtxCreate(ctx, NULL, 0, dev));
        CHECK(cuModuleLoadData(&mod, ptx));
        CHECK(cuModuleGetFunction(&copy_fn, mod, "copy_words"));
        return 0;
}

static CUresult copy_words(CUdeviceptr dst, CUdeviceptr src, unsigned n)
{
        void *args[] = {&dst, &src, &n};
        CUresult r = cuLaunchKernel(copy_fn, (n + 127) / 128, 1, 1, 128, 1, 1, 0, NULL, args, NULL);

        return r != CUDA_SUCCESS ? r : cuCtxSynchronize();
}

static int mode_fixed(uint64_t base, uint64_t size)
{
        static CUdeviceptr p[4096];
        uint64_t total = 0;
        size_t n = 0;
        CUresult r = CUDA_SUCCESS;
        CUdeviceptr again;
        size_t free_b = 0, total_b = 0;

        CHECK(cuMemGetInfo(&free_b, &total_b));
        expect(total_b == size, "cuMemGetInfo's total is the vGPU's framebuffer");
        while (n < 4096) {
                r = cuMemAlloc(&p[n], 256 * MIB);
                if (r != CUDA_SUCCESS)
                        break;
                if (p[n] < base || p[n] + 256 * MIB > base + size) {
                        printf("FAIL: allocation 0x%llx outside [0x%" PRIx64 ", 0x%" PRIx64 ")\n",
                               (unsigned long long)p[n], base, base + size);
                        failures++;
                }
                total += 256 * MIB;
                n++;
        }
        printf("allocated %" PRIu64 " MiB of %" PRIu64 " MiB before %s\n", total / MIB, size / MIB,
               name(r));
        expect(r == CUDA_ERROR_OUT_OF_MEMORY, "filling the framebuffer ends in out of memory");
        expect(total <= size && total + 512 * MIB >= size,
               "out of memory comes at the vGPU's size, not the GPU's");
        for (size_t i = 0; i < n; i++)
                CHECK(cuMemFree(p[i]));
        CHECK(cuMemAlloc(&again, size / 2));
        expect(again >= base && again + size / 2 <= base + size,
               "after freeing, half the framebuffer is one allocation again");
        CHECK(cuMemFree(again));
        return 0;
}

static int mode_hold(void)
{
        const unsigned n = (unsigned)(MIB / 4);
        uint32_t *h = malloc(MIB), *back = malloc(MIB);
        CUdeviceptr a, b;
        char line[64];

        if (!h || !back)
                return 1;
        for (unsigned i = 0; i < n; i++)
                h[i] = 0xa5a50000u ^ i;
        CHECK(cuMemAlloc(&a, MIB));
        CHECK(cuMemAlloc(&b, MIB));
        CHECK(cuMemcpyHtoD(a, h, MIB));
        printf("PTR 0x%llx\n", (unsigned long long)a);
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin))
                return 1;
        CHECK(copy_words(b, a, n));
        CHECK(cuMemcpyDtoH(back, b, MIB));
        expect(memcmp(h, back, MIB) == 0,
               "this vGPU's data and kernels are intact after the other vGPU's fault");
        free(h);
        free(back);
        return 0;
}

static int mode_poke(CUdeviceptr victim)
{
        uint32_t word = 0;
        CUdeviceptr mine;
        CUresult r;

        CHECK(cuMemAlloc(&mine, MIB));
        r = cuMemcpyDtoH(&word, victim, sizeof(word));
        printf("copy from the other vGPU's pointer: %s\n", name(r));
        expect(r == CUDA_ERROR_INVALID_VALUE, "a copy from another vGPU's memory is refused");
        r = copy_words(mine, victim, 1024);
        printf("kernel reading the other vGPU's pointer: %s\n", name(r));
        expect(r == CUDA_ERROR_ILLEGAL_ADDRESS, "a kernel reading another vGPU's memory faults");
        r = cuMemcpyDtoH(&word, mine, sizeof(word));
        expect(r == CUDA_ERROR_ILLEGAL_ADDRESS, "the faulted context stays failed");
        return 0;
}

int main(int argc, char **argv)
{
        CUcontext ctx;

        if (setup(&ctx))
                return 1;
        if (argc == 4 && strcmp(argv[1], "fixed") == 0) {
                if (mode_fixed(strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 0)))
                        return 1;
        } else if (argc == 2 && strcmp(argv[1], "hold") == 0) {
                if (mode_hold())
                        return 1;
        } else if (argc == 3 && strcmp(argv[1], "poke") == 0) {
                if (mode_poke(strtoull(argv[2], NULL, 0)))
                        return 1;
        } else {
                fprintf(stderr, "usage: gpu_isolation fixed BASE SIZE | hold | poke PTR\n");
                return 2;
        }
        printf("%s\n", failures ? "FAILED" : "PASSED");
        return failures ? 1 : 0;
}
