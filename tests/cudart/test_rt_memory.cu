// SPDX-License-Identifier: Apache-2.0
// Memory through the runtime API: device, pitched and pinned allocations, cudaMemcpy of every
// kind (cudaMemcpyDefault included), 2D copies, fills, async copies, registered host memory, and
// module variables by symbol (__device__ and __constant__: copies both ways, addresses, sizes).
#include "rt_check.h"

__device__ int g_vals[8];
__constant__ float c_scale[4];

// out[i] = g_vals[i] * c_scale[i % 4]; then g_vals[i] += 1.
__global__ void use_symbols(float *out)
{
        int i = threadIdx.x;
        if (i < 8) {
                out[i] = g_vals[i] * c_scale[i % 4];
                g_vals[i] += 1;
        }
}

// Each row r of a pitched w x h array of ints gets r * 1000 + column.
__global__ void fill_rows(int *base, size_t pitch, int w, int h)
{
        int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y;
        if (x < w && y < h)
                ((int *)((char *)base + y * pitch))[x] = y * 1000 + x;
}

int main()
{
        const int n = 4096;
        int *h = (int *)malloc(n * sizeof(int)), *back = (int *)malloc(n * sizeof(int));
        int *d = NULL, *d2 = NULL;
        bool ok;

        for (int i = 0; i < n; i++)
                h[i] = i * 3 + 1;
        RT_OK(cudaMalloc(&d, n * sizeof(int)));
        RT_OK(cudaMalloc(&d2, n * sizeof(int)));
        RT_OK(cudaMemcpy(d, h, n * sizeof(int), cudaMemcpyHostToDevice));
        RT_OK(cudaMemcpy(d2, d, n * sizeof(int), cudaMemcpyDeviceToDevice));
        memset(back, 0, n * sizeof(int));
        RT_OK(cudaMemcpy(back, d2, n * sizeof(int), cudaMemcpyDeviceToHost));
        rt_check(memcmp(h, back, n * sizeof(int)) == 0, "H2D, D2D, D2H round trip");

        // cudaMemcpyDefault: the direction from the pointers themselves.
        for (int i = 0; i < n; i++)
                h[i] = n - i;
        RT_OK(cudaMemcpy(d, h, n * sizeof(int), cudaMemcpyDefault));
        RT_OK(cudaMemcpy(d2, d, n * sizeof(int), cudaMemcpyDefault));
        memset(back, 0, n * sizeof(int));
        RT_OK(cudaMemcpy(back, d2, n * sizeof(int), cudaMemcpyDefault));
        rt_check(memcmp(h, back, n * sizeof(int)) == 0, "cudaMemcpyDefault in all directions");
        int hh[4] = {1, 2, 3, 4}, hh2[4] = {0};
        RT_OK(cudaMemcpy(hh2, hh, sizeof(hh), cudaMemcpyHostToHost));
        rt_check(memcmp(hh, hh2, sizeof(hh)) == 0, "cudaMemcpyHostToHost");
        RT_ERR(cudaMemcpy(d, h, 4, (cudaMemcpyKind)42), cudaErrorInvalidMemcpyDirection);
        (void)cudaGetLastError();

        // Fills.
        RT_OK(cudaMemset(d, 0xab, n * sizeof(int)));
        RT_OK(cudaMemset(d, 0x01, 16));
        RT_OK(cudaMemcpy(back, d, n * sizeof(int), cudaMemcpyDeviceToHost));
        ok = back[0] == 0x01010101 && back[3] == 0x01010101 && back[4] == (int)0xabababab &&
             back[n - 1] == (int)0xabababab;
        rt_check(ok, "cudaMemset: %08x %08x", back[0], back[n - 1]);

        // Pitched memory and 2D copies.
        const int w = 100, rows = 6;
        int *pd = NULL;
        size_t pitch = 0;
        RT_OK(cudaMallocPitch((void **)&pd, &pitch, w * sizeof(int), rows));
        rt_check(pitch >= w * sizeof(int), "pitch %zu >= width %zu", pitch, w * sizeof(int));
        fill_rows<<<dim3(1, rows), 128>>>(pd, pitch, w, rows);
        RT_OK(cudaGetLastError());
        int *tight = (int *)calloc(w * rows, sizeof(int));
        RT_OK(cudaMemcpy2D(tight, w * sizeof(int), pd, pitch, w * sizeof(int), rows,
                           cudaMemcpyDeviceToHost));
        ok = true;
        for (int y = 0; y < rows; y++)
                for (int x = 0; x < w; x++)
                        ok = ok && tight[y * w + x] == y * 1000 + x;
        rt_check(ok, "a kernel writes pitched rows; cudaMemcpy2D brings them back");
        RT_OK(cudaMemset2D(pd, pitch, 0, w * sizeof(int), rows));
        for (int i = 0; i < w * rows; i++)
                tight[i] = -i;
        RT_OK(cudaMemcpy2D(pd, pitch, tight, w * sizeof(int), w * sizeof(int), rows,
                           cudaMemcpyHostToDevice));
        int *tight2 = (int *)calloc(w * rows, sizeof(int));
        RT_OK(cudaMemcpy2D(tight2, w * sizeof(int), pd, pitch, w * sizeof(int), rows,
                           cudaMemcpyDefault));
        rt_check(memcmp(tight, tight2, w * rows * sizeof(int)) == 0, "cudaMemcpy2D H2D and back");
        RT_ERR(cudaMemcpy2D(tight2, 4, pd, pitch, 8, 1, cudaMemcpyDeviceToHost),
               cudaErrorInvalidPitchValue);
        (void)cudaGetLastError();
        RT_OK(cudaFree(pd));

        // Pinned and registered host memory, async copies.
        int *pinned = NULL, *mapped = NULL;
        cudaStream_t s;
        RT_OK(cudaMallocHost(&pinned, n * sizeof(int)));
        RT_OK(cudaHostAlloc(&mapped, n * sizeof(int), cudaHostAllocPortable));
        RT_OK(cudaStreamCreate(&s));
        for (int i = 0; i < n; i++)
                pinned[i] = i ^ 0x5a5a;
        RT_OK(cudaMemcpyAsync(d, pinned, n * sizeof(int), cudaMemcpyHostToDevice, s));
        RT_OK(cudaMemsetAsync(d2, 0, n * sizeof(int), s));
        RT_OK(cudaMemcpyAsync(d2, d, n * sizeof(int), cudaMemcpyDeviceToDevice, s));
        RT_OK(cudaMemcpyAsync(mapped, d2, n * sizeof(int), cudaMemcpyDeviceToHost, s));
        RT_OK(cudaStreamSynchronize(s));
        rt_check(memcmp(pinned, mapped, n * sizeof(int)) == 0,
                 "async copies through pinned memory");
        unsigned flags = 0;
        RT_OK(cudaHostGetFlags(&flags, mapped));
        RT_OK(cudaFreeHost(mapped));
        RT_OK(cudaFreeHost(pinned));
        int *reg = (int *)aligned_alloc(4096, 65536);
        RT_OK(cudaHostRegister(reg, 65536, cudaHostRegisterDefault));
        for (int i = 0; i < 65536 / 4; i++)
                reg[i] = 7 * i;
        RT_OK(cudaMemcpyAsync(d, reg, n * sizeof(int), cudaMemcpyHostToDevice, s));
        RT_OK(cudaMemcpyAsync(back, d, n * sizeof(int), cudaMemcpyDeviceToHost, s));
        RT_OK(cudaStreamSynchronize(s));
        rt_check(back[n - 1] == 7 * (n - 1), "copies from registered host memory (%d)",
                 back[n - 1]);
        RT_OK(cudaHostUnregister(reg));
        free(reg);
        RT_OK(cudaStreamDestroy(s));

        // Module variables by symbol.
        int vals[8], vals_back[8];
        float scale[4] = {1.0f, 0.5f, 2.0f, -1.0f}, out[8];
        for (int i = 0; i < 8; i++)
                vals[i] = 10 * (i + 1);
        RT_OK(cudaMemcpyToSymbol(g_vals, vals, sizeof(vals)));
        RT_OK(cudaMemcpyToSymbol(c_scale, scale, 2 * sizeof(float)));
        RT_OK(cudaMemcpyToSymbol(c_scale, scale + 2, 2 * sizeof(float), 2 * sizeof(float)));
        float *dout = NULL;
        RT_OK(cudaMalloc(&dout, sizeof(out)));
        use_symbols<<<1, 8>>>(dout);
        RT_OK(cudaGetLastError());
        RT_OK(cudaMemcpy(out, dout, sizeof(out), cudaMemcpyDeviceToHost));
        ok = true;
        for (int i = 0; i < 8; i++)
                ok = ok && out[i] == vals[i] * scale[i % 4];
        rt_check(ok, "a kernel reads __device__ and __constant__ data set by cudaMemcpyToSymbol");
        RT_OK(cudaMemcpyFromSymbol(vals_back, g_vals, sizeof(vals_back)));
        ok = true;
        for (int i = 0; i < 8; i++)
                ok = ok && vals_back[i] == vals[i] + 1;
        rt_check(ok, "cudaMemcpyFromSymbol sees the kernel's writes");
        int two[2];
        RT_OK(cudaMemcpyFromSymbol(two, g_vals, sizeof(two), 6 * sizeof(int)));
        rt_check(two[0] == vals[6] + 1 && two[1] == vals[7] + 1,
                 "cudaMemcpyFromSymbol at an offset");
        void *addr = NULL;
        size_t size = 0;
        RT_OK(cudaGetSymbolAddress(&addr, g_vals));
        RT_OK(cudaGetSymbolSize(&size, g_vals));
        rt_check(addr != NULL && size == sizeof(vals), "cudaGetSymbolAddress/Size (%zu bytes)",
                 size);
        RT_OK(cudaMemcpy(vals_back, addr, sizeof(vals_back), cudaMemcpyDeviceToHost));
        rt_check(vals_back[0] == vals[0] + 1, "the symbol's address is device memory");
        RT_OK(cudaMemcpyToSymbol(g_vals, d, 4 * sizeof(int), 0, cudaMemcpyDeviceToDevice));
        cudaStream_t s2;
        RT_OK(cudaStreamCreate(&s2));
        RT_OK(cudaMemcpyToSymbolAsync(g_vals, vals, sizeof(int), 4 * sizeof(int),
                                      cudaMemcpyHostToDevice, s2));
        RT_OK(cudaMemcpyFromSymbolAsync(vals_back, g_vals, sizeof(vals_back), 0,
                                        cudaMemcpyDeviceToHost, s2));
        RT_OK(cudaStreamSynchronize(s2));
        RT_OK(cudaStreamDestroy(s2));
        rt_check(vals_back[0] == back[0] && vals_back[4] == vals[0],
                 "symbol copies device-to-device and async");
        RT_ERR(cudaMemcpyToSymbol(g_vals, vals, sizeof(vals) + 4), cudaErrorInvalidValue);
        RT_ERR(cudaMemcpyToSymbol(h, vals, 4), cudaErrorInvalidSymbol);
        (void)cudaGetLastError();

        cudaChannelFormatDesc cd = cudaCreateChannelDesc<float2>();
        rt_check(cd.x == 32 && cd.y == 32 && cd.z == 0 && cd.f == cudaChannelFormatKindFloat,
                 "cudaCreateChannelDesc<float2>: %d %d %d %d kind %d", cd.x, cd.y, cd.z, cd.w,
                 (int)cd.f);

        RT_OK(cudaFree(dout));
        RT_OK(cudaFree(d));
        RT_OK(cudaFree(d2));
        RT_OK(cudaFree(NULL));
        free(h);
        free(back);
        free(tight);
        free(tight2);
        return rt_done("test_rt_memory");
}
