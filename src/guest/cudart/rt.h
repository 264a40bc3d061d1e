/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu's CUDA runtime (libcudart.so.13) internals: the devices' primary contexts as the runtime
 * holds them, the calling thread's current device and last error, and the registry of what
 * nvcc's generated host code registers (fatbinaries, kernels, variables), loaded per device.
 * The runtime calls nothing but the CUDA driver API (cuda.h), through libcuda.so.1.
 */
#ifndef VGPU_GUEST_CUDART_RT_H
#define VGPU_GUEST_CUDART_RT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "common/log.h"

#define RT_MAX_DEVICES 16

/* One device as the runtime holds it. */
struct rt_device {
        CUcontext ctx; /* the retained primary context; NULL before first use and after a reset */
        unsigned gen;  /* bumped whenever ctx is (re)made: handles loaded under older gens are stale
                        */
};

/* rt_lock guards rt_devices and the registry (rt_module.c); never held across a user callback. */
extern pthread_mutex_t rt_lock;
extern struct rt_device rt_devices[RT_MAX_DEVICES];
extern int rt_ndevices;

/* ---- rt_device.c ----------------------------------------------------------------------------- */
/* rt_init - initialise the driver once (cuInit) and count devices; no context. cudaError_t. */
cudaError_t rt_init(void);

/*
 * rt_enter - the prologue of every call that needs a context: the driver is initialised and the
 * calling thread has a current context: the one it made current with the driver API, else the
 * primary context of its current device (cudaSetDevice; device 0 by default), retained on first
 * use. *ret_dev: that device. Returns cudaSuccess or the error, already recorded as the last one.
 */
cudaError_t rt_enter(int *ret_dev);

/*
 * rt_primary_locked - the primary context of device d, retained if the runtime holds none (a fresh
 * one loads every registered fatbinary when CUDA_MODULE_LOADING=EAGER). *ret_gen: its generation.
 * The caller holds rt_lock. CUresult.
 */
CUresult rt_primary_locked(int d, CUcontext *ret_ctx, unsigned *ret_gen);

/* ---- rt_error.c ------------------------------------------------------------------------------ */
/* rt_error - the one place a CUresult becomes a cudaError_t (the numbers agree where both exist).
 */
cudaError_t rt_error(CUresult r);

/*
 * rt_ret - record err as the calling thread's last error (not cudaSuccess, nor cudaErrorNotReady,
 * which only reports that work is pending) and return it.
 */
cudaError_t rt_ret(cudaError_t err);

/* rt_cu - rt_ret(rt_error(r)): a driver call's result as the runtime returns it. */
static inline cudaError_t rt_cu(CUresult r)
{
        return rt_ret(rt_error(r));
}

/* rt_unsupported - log name at debug level; cudaErrorNotSupported, recorded. (Generated stubs.) */
int rt_unsupported(const char *name);

/* ---- rt_module.c ----------------------------------------------------------------------------- */
/*
 * rt_func_get - the CUfunction of a registered kernel (its host stub's address, or the
 * cudaKernel_t __cudaGetKernel handed out when is_kernel) on device d, loading its module into
 * d's primary context first if needed. cudaErrorInvalidDeviceFunction when not registered.
 * Not recorded as the last error.
 */
cudaError_t rt_func_get(const void *func, bool is_kernel, int d, CUfunction *ret);

/*
 * rt_var_get - the device address and size of a registered variable (its host shadow's address)
 * on device d, loading its module first if needed. cudaErrorInvalidSymbol when not registered.
 */
cudaError_t rt_var_get(const void *symbol, int d, CUdeviceptr *ret_addr, size_t *ret_size);

/* rt_load_all_locked - load every registered fatbinary into d's context ctx (eager loading). */
void rt_load_all_locked(int d, CUcontext ctx, unsigned gen);

/* rt_eager - whether CUDA_MODULE_LOADING=EAGER (read once at rt_init). */
extern bool rt_eager;

/* ---- entry points nvcc's generated host code calls (crt/host_runtime.h declares them in C++) - */
void **__cudaRegisterFatBinary(void *fatCubin);
void __cudaRegisterFatBinaryEnd(void **fatCubinHandle);
void __cudaUnregisterFatBinary(void **fatCubinHandle);
void __cudaRegisterFunction(void **fatCubinHandle, const char *hostFun, char *deviceFun,
                            const char *deviceName, int thread_limit, uint3 *tid, uint3 *bid,
                            dim3 *bDim, dim3 *gDim, int *wSize);
void __cudaRegisterVar(void **fatCubinHandle, char *hostVar, char *deviceAddress,
                       const char *deviceName, int ext, size_t size, int constant, int global);
void __cudaRegisterManagedVar(void **fatCubinHandle, void **hostVarPtrAddress, char *deviceAddress,
                              const char *deviceName, int ext, size_t size, int constant,
                              int global);
char __cudaInitModule(void **fatCubinHandle);
unsigned __cudaPushCallConfiguration(dim3 gridDim, dim3 blockDim, size_t sharedMem,
                                     struct CUstream_st *stream);
cudaError_t __cudaPopCallConfiguration(dim3 *gridDim, dim3 *blockDim, size_t *sharedMem,
                                       void *stream);
cudaError_t __cudaGetKernel(cudaKernel_t *kernel, const void *hostFun);
cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 gridDim, dim3 blockDim, void **args,
                               size_t sharedMem, cudaStream_t stream);
cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 gridDim, dim3 blockDim, void **args,
                                    size_t sharedMem, cudaStream_t stream);

/* The per-thread-default-stream twins (cuda_runtime_api.h declares them only under
 * CUDA_API_PER_THREAD_DEFAULT_STREAM): a NULL stream means cudaStreamPerThread. */
cudaError_t cudaLaunchKernel_ptsz(const void *func, dim3 gridDim, dim3 blockDim, void **args,
                                  size_t sharedMem, cudaStream_t stream);
cudaError_t cudaLaunchKernelExC_ptsz(const cudaLaunchConfig_t *config, const void *func,
                                     void **args);
cudaError_t cudaMemcpyAsync_ptsz(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                                 cudaStream_t stream);
cudaError_t cudaMemcpy_ptds(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpy2D_ptds(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpy2DAsync_ptsz(void *dst, size_t dpitch, const void *src, size_t spitch,
                                   size_t width, size_t height, enum cudaMemcpyKind kind,
                                   cudaStream_t stream);
cudaError_t cudaMemset_ptds(void *devPtr, int value, size_t count);
cudaError_t cudaMemsetAsync_ptsz(void *devPtr, int value, size_t count, cudaStream_t stream);
cudaError_t cudaMemset2D_ptds(void *devPtr, size_t pitch, int value, size_t width, size_t height);
cudaError_t cudaMemset2DAsync_ptsz(void *devPtr, size_t pitch, int value, size_t width,
                                   size_t height, cudaStream_t stream);
cudaError_t cudaMemcpyToSymbol_ptds(const void *symbol, const void *src, size_t count,
                                    size_t offset, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyFromSymbol_ptds(void *dst, const void *symbol, size_t count, size_t offset,
                                      enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyToSymbolAsync_ptsz(const void *symbol, const void *src, size_t count,
                                         size_t offset, enum cudaMemcpyKind kind,
                                         cudaStream_t stream);
cudaError_t cudaMemcpyFromSymbolAsync_ptsz(void *dst, const void *symbol, size_t count,
                                           size_t offset, enum cudaMemcpyKind kind,
                                           cudaStream_t stream);
cudaError_t cudaEventRecordWithFlags_ptsz(cudaEvent_t event, cudaStream_t stream,
                                          unsigned int flags);
cudaError_t cudaStreamGetFlags_ptsz(cudaStream_t hStream, unsigned int *flags);
cudaError_t cudaStreamGetPriority_ptsz(cudaStream_t hStream, int *priority);
cudaError_t cudaStreamGetDevice_ptsz(cudaStream_t hStream, int *device);
cudaError_t cudaStreamSynchronize_ptsz(cudaStream_t stream);
cudaError_t cudaStreamQuery_ptsz(cudaStream_t stream);
cudaError_t cudaEventRecord_ptsz(cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaStreamWaitEvent_ptsz(cudaStream_t stream, cudaEvent_t event, unsigned int flags);
cudaError_t cudaLaunchHostFunc_ptsz(cudaStream_t stream, cudaHostFn_t fn, void *userData);
cudaError_t cudaStreamAddCallback_ptsz(cudaStream_t stream, cudaStreamCallback_t callback,
                                       void *userData, unsigned int flags);

#endif
