// SPDX-License-Identifier: Apache-2.0
// Errors of the runtime: the one conversion from CUresult, each thread's last error, and the
// names (from the toolkit's header, generated) and descriptions (vgpu's own words) of the codes.
#include <stdlib.h>

#include "guest/cudart/rt.h"

/* The generated table (gen_cudart_stubs.py): every cudaError_t value and its name, sorted. */
struct rt_error_name {
        int value;
        const char *name;
};
extern const struct rt_error_name rt_error_names[];
extern const size_t rt_n_error_names;

static __thread cudaError_t tl_last = cudaSuccess;

static const struct rt_error_name *find(int value)
{
        size_t lo = 0, hi = rt_n_error_names;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (rt_error_names[mid].value == value)
                        return &rt_error_names[mid];
                if (rt_error_names[mid].value < value)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

cudaError_t rt_error(CUresult r)
{
        /*
         * Since CUDA 10 the runtime's codes carry the driver's numbers wherever both name the same
         * condition (1 invalid value, 2 out of memory, 100 no device, 400 invalid handle, 700
         * illegal address, 719 launch failure, 801 not supported...). The driver's few codes
         * without a runtime twin are mapped by meaning.
         */
        switch (r) {
        case CUDA_SUCCESS:
                return cudaSuccess;
        case CUDA_ERROR_NOT_INITIALIZED:
                return cudaErrorInitializationError;
        case CUDA_ERROR_DEINITIALIZED:
                return cudaErrorCudartUnloading;
        case CUDA_ERROR_INVALID_CONTEXT:
        case CUDA_ERROR_CONTEXT_IS_DESTROYED:
                return cudaErrorDeviceUninitialized;
        case CUDA_ERROR_NOT_FOUND:
                return cudaErrorSymbolNotFound;
        default:
                return find((int)r) ? (cudaError_t)r : cudaErrorUnknown;
        }
}

cudaError_t rt_ret(cudaError_t err)
{
        if (err != cudaSuccess && err != cudaErrorNotReady)
                tl_last = err;
        return err;
}

int rt_unsupported(const char *name)
{
        vgpu_log(VGPU_LOG_DEBUG, "%s is not supported by vgpu's CUDA runtime", name);
        return (int)rt_ret(cudaErrorNotSupported);
}

cudaError_t cudaGetLastError(void)
{
        cudaError_t e = tl_last;

        tl_last = cudaSuccess;
        return e;
}

cudaError_t cudaPeekAtLastError(void)
{
        return tl_last;
}

const char *cudaGetErrorName(cudaError_t error)
{
        const struct rt_error_name *n = find((int)error);

        return n ? n->name : "unrecognized error code";
}

/* vgpu's descriptions of the codes programs meet most; any other reads as its name. */
static const struct {
        cudaError_t err;
        const char *text;
} descriptions[] = {
        {cudaSuccess, "no error"},
        {cudaErrorInvalidValue, "an argument is out of range or invalid"},
        {cudaErrorMemoryAllocation, "out of memory"},
        {cudaErrorInitializationError, "the CUDA driver could not be initialised"},
        {cudaErrorCudartUnloading, "the CUDA runtime is shutting down"},
        {cudaErrorInvalidConfiguration,
         "invalid launch configuration (grid, block or shared memory)"},
        {cudaErrorInvalidPitchValue, "invalid pitch"},
        {cudaErrorInvalidSymbol, "the symbol is not a registered device variable"},
        {cudaErrorInvalidDevicePointer, "invalid device pointer"},
        {cudaErrorInvalidMemcpyDirection, "invalid copy direction"},
        {cudaErrorInsufficientDriver, "no usable CUDA driver (is a vGPU attached? VGPU_UUID)"},
        {cudaErrorInvalidDeviceFunction, "the function is not a registered kernel"},
        {cudaErrorNoDevice, "no CUDA device is available (no vGPU attached)"},
        {cudaErrorInvalidDevice, "invalid device ordinal"},
        {cudaErrorDeviceUninitialized, "the context is not valid (destroyed or never made)"},
        {cudaErrorInvalidKernelImage, "the kernel image is invalid"},
        {cudaErrorNoKernelImageForDevice, "no kernel image (PTX or SASS) fits this device"},
        {cudaErrorInvalidResourceHandle, "invalid stream, event or other handle"},
        {cudaErrorSymbolNotFound, "named symbol not found in the module"},
        {cudaErrorNotReady, "work is still pending"},
        {cudaErrorIllegalAddress, "a kernel accessed an illegal address"},
        {cudaErrorLaunchOutOfResources, "too many resources requested for the launch"},
        {cudaErrorLaunchTimeout, "the kernel ran past its time limit"},
        {cudaErrorAssert, "a device-side assert failed"},
        {cudaErrorIllegalInstruction, "a kernel executed an illegal instruction"},
        {cudaErrorMisalignedAddress, "a kernel accessed a misaligned address"},
        {cudaErrorLaunchFailure, "the kernel failed (trap or exception)"},
        {cudaErrorNotSupported, "not supported by vgpu's CUDA runtime or this device"},
        {cudaErrorUnknown, "unknown error"},
};

const char *cudaGetErrorString(cudaError_t error)
{
        for (size_t i = 0; i < sizeof(descriptions) / sizeof(descriptions[0]); i++)
                if (descriptions[i].err == error)
                        return descriptions[i].text;
        return cudaGetErrorName(error);
}
