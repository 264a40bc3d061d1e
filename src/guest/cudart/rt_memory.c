// SPDX-License-Identifier: Apache-2.0
// Memory for the runtime: device and pinned host allocations, copies of every kind (direction
// from the caller, or from the pointers themselves with cudaMemcpyDefault: unified addressing),
// 2D copies and fills, module variables by symbol, and pointer attributes.
#include <stdint.h>
#include <string.h>

#include "guest/cudart/rt.h"

#define DPTR(p) ((CUdeviceptr)(uintptr_t)(p))

/* The current device, or the error (recorded): every memory call starts here. */
#define ENTER(d)                                                                                   \
        int d;                                                                                     \
        do {                                                                                       \
                cudaError_t enter_err_ = rt_enter(&d);                                             \
                if (enter_err_ != cudaSuccess)                                                     \
                        return enter_err_;                                                         \
        } while (0)

cudaError_t cudaMalloc(void **devPtr, size_t size)
{
        CUdeviceptr p;
        cudaError_t e;
        ENTER(d);

        (void)d;
        if (!devPtr)
                return rt_ret(cudaErrorInvalidValue);
        if (!size) {
                *devPtr = NULL;
                return cudaSuccess;
        }
        e = rt_cu(cuMemAlloc(&p, size));
        if (e == cudaSuccess)
                *devPtr = (void *)(uintptr_t)p;
        return e;
}

cudaError_t cudaFree(void *devPtr)
{
        ENTER(d);

        (void)d;
        /* cudaFree(NULL) is the idiom that makes the context: done by ENTER. */
        if (!devPtr)
                return cudaSuccess;
        return rt_cu(cuMemFree(DPTR(devPtr)));
}

cudaError_t cudaMallocPitch(void **devPtr, size_t *pitch, size_t width, size_t height)
{
        CUdeviceptr p;
        size_t pp;
        cudaError_t e;
        ENTER(d);

        (void)d;
        if (!devPtr || !pitch)
                return rt_ret(cudaErrorInvalidValue);
        if (!width || !height) {
                *devPtr = NULL;
                *pitch = 0;
                return cudaSuccess;
        }
        e = rt_cu(cuMemAllocPitch(&p, &pp, width, height, 16));
        if (e == cudaSuccess) {
                *devPtr = (void *)(uintptr_t)p;
                *pitch = pp;
        }
        return e;
}

cudaError_t cudaMallocHost(void **ptr, size_t size)
{
        ENTER(d);

        (void)d;
        if (!ptr)
                return rt_ret(cudaErrorInvalidValue);
        return rt_cu(cuMemAllocHost(ptr, size));
}

cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags)
{
        ENTER(d);

        (void)d;
        if (!pHost)
                return rt_ret(cudaErrorInvalidValue);
        /* cudaHostAlloc* flags are the driver's CU_MEMHOSTALLOC_* bits. */
        return rt_cu(cuMemHostAlloc(pHost, size, flags));
}

cudaError_t cudaFreeHost(void *ptr)
{
        ENTER(d);

        (void)d;
        if (!ptr)
                return cudaSuccess;
        return rt_cu(cuMemFreeHost(ptr));
}

cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuMemHostRegister(ptr, size, flags));
}

cudaError_t cudaHostUnregister(void *ptr)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuMemHostUnregister(ptr));
}

cudaError_t cudaHostGetFlags(unsigned int *pFlags, void *pHost)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuMemHostGetFlags(pFlags, pHost));
}

cudaError_t cudaHostGetDevicePointer(void **pDevice, void *pHost, unsigned int flags)
{
        unsigned f;
        ENTER(d);

        (void)d;
        if (!pDevice || flags)
                return rt_ret(cudaErrorInvalidValue);
        /* Unified addressing: pinned host memory has the same address on the device. */
        if (cuMemHostGetFlags(&f, pHost) != CUDA_SUCCESS)
                return rt_ret(cudaErrorInvalidValue);
        *pDevice = pHost;
        return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free, size_t *total)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuMemGetInfo(free, total));
}

/* ---- copies ---------------------------------------------------------------------------------- */
static bool is_device(const void *p)
{
        unsigned type = 0;

        return cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, DPTR(p)) ==
                       CUDA_SUCCESS &&
               type == CU_MEMORYTYPE_DEVICE;
}

/* cudaMemcpyDefault resolved from the pointers (unified addressing). */
static enum cudaMemcpyKind resolve(enum cudaMemcpyKind kind, const void *dst, const void *src)
{
        if (kind != cudaMemcpyDefault)
                return kind;
        if (is_device(dst))
                return is_device(src) ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice;
        return is_device(src) ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost;
}

static cudaError_t copy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                        bool async, cudaStream_t stream)
{
        CUresult r;
        ENTER(d);

        (void)d;
        if (!count)
                return cudaSuccess;
        if (!dst || !src)
                return rt_ret(cudaErrorInvalidValue);
        switch (resolve(kind, dst, src)) {
        case cudaMemcpyHostToHost:
                /* In stream order, as a copy between two pinned buffers would be. */
                if (async && stream)
                        r = cuStreamSynchronize((CUstream)stream);
                else if (!async)
                        r = cuStreamSynchronize(NULL);
                else
                        r = CUDA_SUCCESS;
                if (r == CUDA_SUCCESS)
                        memmove(dst, src, count);
                break;
        case cudaMemcpyHostToDevice:
                r = async ? cuMemcpyHtoDAsync(DPTR(dst), src, count, (CUstream)stream)
                          : cuMemcpyHtoD(DPTR(dst), src, count);
                break;
        case cudaMemcpyDeviceToHost:
                r = async ? cuMemcpyDtoHAsync(dst, DPTR(src), count, (CUstream)stream)
                          : cuMemcpyDtoH(dst, DPTR(src), count);
                break;
        case cudaMemcpyDeviceToDevice:
                /* cuMemcpy also covers two devices of this process (through the host). */
                r = async ? cuMemcpyAsync(DPTR(dst), DPTR(src), count, (CUstream)stream)
                          : cuMemcpy(DPTR(dst), DPTR(src), count);
                break;
        default:
                return rt_ret(cudaErrorInvalidMemcpyDirection);
        }
        return rt_cu(r);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
        return copy(dst, src, count, kind, false, NULL);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream)
{
        return copy(dst, src, count, kind, true, stream);
}

cudaError_t cudaMemcpyAsync_ptsz(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                                 cudaStream_t stream)
{
        return copy(dst, src, count, kind, true, stream ? stream : cudaStreamPerThread);
}

cudaError_t cudaMemcpyPeer(void *dst, int dstDevice, const void *src, int srcDevice, size_t count)
{
        CUcontext dc, sc;
        unsigned gen;
        CUresult r;
        ENTER(d);

        (void)d;
        if (dstDevice < 0 || dstDevice >= rt_ndevices || srcDevice < 0 || srcDevice >= rt_ndevices)
                return rt_ret(cudaErrorInvalidDevice);
        pthread_mutex_lock(&rt_lock);
        r = rt_primary_locked(dstDevice, &dc, &gen);
        if (r == CUDA_SUCCESS)
                r = rt_primary_locked(srcDevice, &sc, &gen);
        pthread_mutex_unlock(&rt_lock);
        if (r == CUDA_SUCCESS)
                r = cuMemcpyPeer(DPTR(dst), dc, DPTR(src), sc, count);
        return rt_cu(r);
}

static void memory_type(enum cudaMemcpyKind kind, bool dst, CUmemorytype *ret)
{
        switch (kind) {
        case cudaMemcpyHostToHost:
                *ret = CU_MEMORYTYPE_HOST;
                break;
        case cudaMemcpyHostToDevice:
                *ret = dst ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
                break;
        case cudaMemcpyDeviceToHost:
                *ret = dst ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
                break;
        case cudaMemcpyDeviceToDevice:
                *ret = CU_MEMORYTYPE_DEVICE;
                break;
        default:
                *ret = CU_MEMORYTYPE_UNIFIED;
        }
}

static cudaError_t copy_2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                           size_t height, enum cudaMemcpyKind kind, bool async, cudaStream_t stream)
{
        CUDA_MEMCPY2D p = {0};
        ENTER(d);

        (void)d;
        if ((unsigned)kind > cudaMemcpyDefault)
                return rt_ret(cudaErrorInvalidMemcpyDirection);
        if (!width || !height)
                return cudaSuccess;
        if (width > dpitch || width > spitch)
                return rt_ret(cudaErrorInvalidPitchValue);
        kind = resolve(kind, dst, src);
        memory_type(kind, false, &p.srcMemoryType);
        memory_type(kind, true, &p.dstMemoryType);
        if (p.srcMemoryType == CU_MEMORYTYPE_HOST)
                p.srcHost = src;
        else
                p.srcDevice = DPTR(src);
        if (p.dstMemoryType == CU_MEMORYTYPE_HOST)
                p.dstHost = dst;
        else
                p.dstDevice = DPTR(dst);
        p.srcPitch = spitch;
        p.dstPitch = dpitch;
        p.WidthInBytes = width;
        p.Height = height;
        if (kind == cudaMemcpyHostToHost) {
                /* The driver copies host to host too, but in the caller's stream order here. */
                CUresult r = cuStreamSynchronize(async ? (CUstream)stream : NULL);

                if (r != CUDA_SUCCESS)
                        return rt_cu(r);
                for (size_t row = 0; row < height; row++)
                        memmove((char *)dst + row * dpitch, (const char *)src + row * spitch,
                                width);
                return cudaSuccess;
        }
        return rt_cu(async ? cuMemcpy2DAsync(&p, (CUstream)stream) : cuMemcpy2D(&p));
}

cudaError_t cudaMemcpy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                         size_t height, enum cudaMemcpyKind kind)
{
        return copy_2d(dst, dpitch, src, spitch, width, height, kind, false, NULL);
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, enum cudaMemcpyKind kind,
                              cudaStream_t stream)
{
        return copy_2d(dst, dpitch, src, spitch, width, height, kind, true, stream);
}

/* ---- fills ----------------------------------------------------------------------------------- */
cudaError_t cudaMemset(void *devPtr, int value, size_t count)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuMemsetD8(DPTR(devPtr), (unsigned char)value, count));
}

cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count, cudaStream_t stream)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuMemsetD8Async(DPTR(devPtr), (unsigned char)value, count, (CUstream)stream));
}

cudaError_t cudaMemset2D(void *devPtr, size_t pitch, int value, size_t width, size_t height)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuMemsetD2D8(DPTR(devPtr), pitch, (unsigned char)value, width, height));
}

cudaError_t cudaMemset2DAsync(void *devPtr, size_t pitch, int value, size_t width, size_t height,
                              cudaStream_t stream)
{
        ENTER(d);

        (void)d;
        return rt_cu(cuMemsetD2D8Async(DPTR(devPtr), pitch, (unsigned char)value, width, height,
                                       (CUstream)stream));
}

/* ---- module variables by symbol -------------------------------------------------------------- */
/* A registered variable's device address at offset, for count bytes; error recorded. */
static cudaError_t symbol_at(const void *symbol, size_t count, size_t offset, CUdeviceptr *ret)
{
        CUdeviceptr base;
        size_t size;
        cudaError_t e;
        ENTER(d);

        e = rt_var_get(symbol, d, &base, &size);
        if (e != cudaSuccess)
                return rt_ret(e);
        if (offset > size || count > size - offset)
                return rt_ret(cudaErrorInvalidValue);
        *ret = base + offset;
        return cudaSuccess;
}

static cudaError_t to_symbol(const void *symbol, const void *src, size_t count, size_t offset,
                             enum cudaMemcpyKind kind, bool async, cudaStream_t stream)
{
        CUdeviceptr p = 0;
        cudaError_t e;

        if (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToDevice &&
            kind != cudaMemcpyDefault)
                return rt_ret(cudaErrorInvalidMemcpyDirection);
        e = symbol_at(symbol, count, offset, &p);
        if (e != cudaSuccess)
                return e;
        return copy((void *)(uintptr_t)p, src, count, kind, async, stream);
}

static cudaError_t from_symbol(void *dst, const void *symbol, size_t count, size_t offset,
                               enum cudaMemcpyKind kind, bool async, cudaStream_t stream)
{
        CUdeviceptr p = 0;
        cudaError_t e;

        if (kind != cudaMemcpyDeviceToHost && kind != cudaMemcpyDeviceToDevice &&
            kind != cudaMemcpyDefault)
                return rt_ret(cudaErrorInvalidMemcpyDirection);
        e = symbol_at(symbol, count, offset, &p);
        if (e != cudaSuccess)
                return e;
        return copy(dst, (const void *)(uintptr_t)p, count, kind, async, stream);
}

cudaError_t cudaMemcpyToSymbol(const void *symbol, const void *src, size_t count, size_t offset,
                               enum cudaMemcpyKind kind)
{
        return to_symbol(symbol, src, count, offset, kind, false, NULL);
}

cudaError_t cudaMemcpyFromSymbol(void *dst, const void *symbol, size_t count, size_t offset,
                                 enum cudaMemcpyKind kind)
{
        return from_symbol(dst, symbol, count, offset, kind, false, NULL);
}

cudaError_t cudaMemcpyToSymbolAsync(const void *symbol, const void *src, size_t count,
                                    size_t offset, enum cudaMemcpyKind kind, cudaStream_t stream)
{
        return to_symbol(symbol, src, count, offset, kind, true, stream);
}

cudaError_t cudaMemcpyFromSymbolAsync(void *dst, const void *symbol, size_t count, size_t offset,
                                      enum cudaMemcpyKind kind, cudaStream_t stream)
{
        return from_symbol(dst, symbol, count, offset, kind, true, stream);
}

cudaError_t cudaGetSymbolAddress(void **devPtr, const void *symbol)
{
        CUdeviceptr p = 0;
        cudaError_t e;

        if (!devPtr)
                return rt_ret(cudaErrorInvalidValue);
        e = symbol_at(symbol, 0, 0, &p);
        if (e == cudaSuccess)
                *devPtr = (void *)(uintptr_t)p;
        return e;
}

cudaError_t cudaGetSymbolSize(size_t *size, const void *symbol)
{
        CUdeviceptr p;
        size_t n;
        cudaError_t e;
        ENTER(d);

        if (!size)
                return rt_ret(cudaErrorInvalidValue);
        e = rt_var_get(symbol, d, &p, &n);
        if (e == cudaSuccess)
                *size = n;
        return rt_ret(e);
}

/* ---- pointer attributes ---------------------------------------------------------------------- */
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes, const void *ptr)
{
        unsigned flags;
        int ordinal = 0;
        ENTER(d);

        if (!attributes)
                return rt_ret(cudaErrorInvalidValue);
        memset(attributes, 0, sizeof(*attributes));
        if (is_device(ptr)) {
                (void)cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                            DPTR(ptr));
                attributes->type = cudaMemoryTypeDevice;
                attributes->device = ordinal;
                attributes->devicePointer = (void *)ptr;
        } else if (ptr && cuMemHostGetFlags(&flags, (void *)ptr) == CUDA_SUCCESS) {
                /* Pinned or registered host memory: one address on host and device. */
                attributes->type = cudaMemoryTypeHost;
                attributes->device = d;
                attributes->devicePointer = (void *)ptr;
                attributes->hostPointer = (void *)ptr;
        } else {
                attributes->type = cudaMemoryTypeUnregistered;
                attributes->device = -2;
                attributes->hostPointer = (void *)ptr;
        }
        return cudaSuccess;
}

/* ---- per-thread default stream entry points (nvcc --default-stream per-thread) --------------- */
/* A NULL stream there means the calling thread's default stream. */
static cudaStream_t ptsz(cudaStream_t s)
{
        return s ? s : cudaStreamPerThread;
}

cudaError_t cudaMemcpy_ptds(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
        return copy(dst, src, count, kind, false, NULL);
}

cudaError_t cudaMemcpy2D_ptds(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, enum cudaMemcpyKind kind)
{
        return copy_2d(dst, dpitch, src, spitch, width, height, kind, false, NULL);
}

cudaError_t cudaMemcpy2DAsync_ptsz(void *dst, size_t dpitch, const void *src, size_t spitch,
                                   size_t width, size_t height, enum cudaMemcpyKind kind,
                                   cudaStream_t stream)
{
        return copy_2d(dst, dpitch, src, spitch, width, height, kind, true, ptsz(stream));
}

cudaError_t cudaMemset_ptds(void *devPtr, int value, size_t count)
{
        return cudaMemset(devPtr, value, count);
}

cudaError_t cudaMemsetAsync_ptsz(void *devPtr, int value, size_t count, cudaStream_t stream)
{
        return cudaMemsetAsync(devPtr, value, count, ptsz(stream));
}

cudaError_t cudaMemset2D_ptds(void *devPtr, size_t pitch, int value, size_t width, size_t height)
{
        return cudaMemset2D(devPtr, pitch, value, width, height);
}

cudaError_t cudaMemset2DAsync_ptsz(void *devPtr, size_t pitch, int value, size_t width,
                                   size_t height, cudaStream_t stream)
{
        return cudaMemset2DAsync(devPtr, pitch, value, width, height, ptsz(stream));
}

cudaError_t cudaMemcpyToSymbol_ptds(const void *symbol, const void *src, size_t count,
                                    size_t offset, enum cudaMemcpyKind kind)
{
        return to_symbol(symbol, src, count, offset, kind, false, NULL);
}

cudaError_t cudaMemcpyFromSymbol_ptds(void *dst, const void *symbol, size_t count, size_t offset,
                                      enum cudaMemcpyKind kind)
{
        return from_symbol(dst, symbol, count, offset, kind, false, NULL);
}

cudaError_t cudaMemcpyToSymbolAsync_ptsz(const void *symbol, const void *src, size_t count,
                                         size_t offset, enum cudaMemcpyKind kind,
                                         cudaStream_t stream)
{
        return to_symbol(symbol, src, count, offset, kind, true, ptsz(stream));
}

cudaError_t cudaMemcpyFromSymbolAsync_ptsz(void *dst, const void *symbol, size_t count,
                                           size_t offset, enum cudaMemcpyKind kind,
                                           cudaStream_t stream)
{
        return from_symbol(dst, symbol, count, offset, kind, true, ptsz(stream));
}

struct cudaChannelFormatDesc cudaCreateChannelDesc(int x, int y, int z, int w,
                                                   enum cudaChannelFormatKind f)
{
        /* A plain value (arrays and textures themselves are not supported). */
        return (struct cudaChannelFormatDesc){.x = x, .y = y, .z = z, .w = w, .f = f};
}
