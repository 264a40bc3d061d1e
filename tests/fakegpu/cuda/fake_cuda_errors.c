// SPDX-License-Identifier: Apache-2.0
// cuGetErrorName and cuGetErrorString: every CUresult of cuda.h by its enum name, with a sentence
// of the stand-in's own. They work before cuInit, as NVIDIA's do.
#include <stddef.h>

#include "fake_cuda.h"

#define FC_ERRORS(X)                                                                               \
        X(CUDA_SUCCESS, "no error")                                                                \
        X(CUDA_ERROR_INVALID_VALUE, "an argument is out of range or missing")                      \
        X(CUDA_ERROR_OUT_OF_MEMORY, "the device's memory is used up")                              \
        X(CUDA_ERROR_NOT_INITIALIZED, "the driver is not initialised (cuInit)")                    \
        X(CUDA_ERROR_DEINITIALIZED, "the driver is shutting down")                                 \
        X(CUDA_ERROR_PROFILER_DISABLED, "the profiler is disabled")                                \
        X(CUDA_ERROR_PROFILER_NOT_INITIALIZED, "the profiler is not initialised")                  \
        X(CUDA_ERROR_PROFILER_ALREADY_STARTED, "the profiler already runs")                        \
        X(CUDA_ERROR_PROFILER_ALREADY_STOPPED, "the profiler is already stopped")                  \
        X(CUDA_ERROR_STUB_LIBRARY, "this is a stub library, not a driver")                         \
        X(CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER, "the call needs a newer driver")                  \
        X(CUDA_ERROR_DEVICE_UNAVAILABLE, "the device cannot be used now")                          \
        X(CUDA_ERROR_NO_DEVICE, "no CUDA device is present")                                       \
        X(CUDA_ERROR_INVALID_DEVICE, "no such device")                                             \
        X(CUDA_ERROR_DEVICE_NOT_LICENSED, "the device has no license for this")                    \
        X(CUDA_ERROR_INVALID_IMAGE, "the module image is not valid")                               \
        X(CUDA_ERROR_INVALID_CONTEXT, "no valid context (is one current?)")                        \
        X(CUDA_ERROR_CONTEXT_ALREADY_CURRENT, "the context is already current")                    \
        X(CUDA_ERROR_MAP_FAILED, "mapping failed")                                                 \
        X(CUDA_ERROR_UNMAP_FAILED, "unmapping failed")                                             \
        X(CUDA_ERROR_ARRAY_IS_MAPPED, "the array is mapped")                                       \
        X(CUDA_ERROR_ALREADY_MAPPED, "the resource is already mapped")                             \
        X(CUDA_ERROR_NO_BINARY_FOR_GPU, "the image has no code this device can run")               \
        X(CUDA_ERROR_ALREADY_ACQUIRED, "the resource is already acquired")                         \
        X(CUDA_ERROR_NOT_MAPPED, "the resource is not mapped")                                     \
        X(CUDA_ERROR_NOT_MAPPED_AS_ARRAY, "the resource is not mapped as an array")                \
        X(CUDA_ERROR_NOT_MAPPED_AS_POINTER, "the resource is not mapped as a pointer")             \
        X(CUDA_ERROR_ECC_UNCORRECTABLE, "an uncorrectable ECC error")                              \
        X(CUDA_ERROR_UNSUPPORTED_LIMIT, "the limit is not supported")                              \
        X(CUDA_ERROR_CONTEXT_ALREADY_IN_USE, "the context is in use by another thread")            \
        X(CUDA_ERROR_PEER_ACCESS_UNSUPPORTED, "peer access is not supported")                      \
        X(CUDA_ERROR_INVALID_PTX, "the PTX could not be compiled")                                 \
        X(CUDA_ERROR_INVALID_GRAPHICS_CONTEXT, "the graphics context is not valid")                \
        X(CUDA_ERROR_NVLINK_UNCORRECTABLE, "an uncorrectable NVLink error")                        \
        X(CUDA_ERROR_JIT_COMPILER_NOT_FOUND, "no PTX JIT compiler")                                \
        X(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, "the PTX version is not supported")                  \
        X(CUDA_ERROR_JIT_COMPILATION_DISABLED, "PTX JIT compilation is disabled")                  \
        X(CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY, "the execution affinity is not supported")         \
        X(CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC, "device-side synchronisation is not supported")     \
        X(CUDA_ERROR_CONTAINED, "a contained error on the device")                                 \
        X(CUDA_ERROR_INVALID_SOURCE, "the kernel source is not valid")                             \
        X(CUDA_ERROR_FILE_NOT_FOUND, "file not found")                                             \
        X(CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND, "a shared object symbol is missing")          \
        X(CUDA_ERROR_SHARED_OBJECT_INIT_FAILED, "a shared object failed to initialise")            \
        X(CUDA_ERROR_OPERATING_SYSTEM, "an operating system call failed")                          \
        X(CUDA_ERROR_INVALID_HANDLE, "the handle is not valid")                                    \
        X(CUDA_ERROR_ILLEGAL_STATE, "the resource is in an illegal state")                         \
        X(CUDA_ERROR_LOSSY_QUERY, "the query would lose information")                              \
        X(CUDA_ERROR_NOT_FOUND, "no symbol of that name")                                          \
        X(CUDA_ERROR_NOT_READY, "the work has not finished yet")                                   \
        X(CUDA_ERROR_ILLEGAL_ADDRESS, "a kernel accessed an illegal address")                      \
        X(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "too many resources asked for the launch")           \
        X(CUDA_ERROR_LAUNCH_TIMEOUT, "the kernel ran too long")                                    \
        X(CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING, "incompatible texturing")                      \
        X(CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, "peer access is already enabled")                \
        X(CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, "peer access is not enabled")                        \
        X(CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, "the primary context is already active")              \
        X(CUDA_ERROR_CONTEXT_IS_DESTROYED, "the context has been destroyed")                       \
        X(CUDA_ERROR_ASSERT, "a device-side assertion failed")                                     \
        X(CUDA_ERROR_TOO_MANY_PEERS, "too many peers")                                             \
        X(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, "the host memory is already registered")      \
        X(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, "the host memory is not registered")              \
        X(CUDA_ERROR_HARDWARE_STACK_ERROR, "a kernel overran its call stack")                      \
        X(CUDA_ERROR_ILLEGAL_INSTRUCTION, "a kernel executed an illegal instruction")              \
        X(CUDA_ERROR_MISALIGNED_ADDRESS, "a kernel made a misaligned memory access")               \
        X(CUDA_ERROR_INVALID_ADDRESS_SPACE, "a kernel used the wrong address space")               \
        X(CUDA_ERROR_INVALID_PC, "a kernel's program counter went astray")                         \
        X(CUDA_ERROR_LAUNCH_FAILED, "a kernel failed (a trap, say)")                               \
        X(CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, "the cooperative launch is too large")          \
        X(CUDA_ERROR_TENSOR_MEMORY_LEAK, "a kernel left tensor memory allocated")                  \
        X(CUDA_ERROR_NOT_PERMITTED, "the operation is not permitted")                              \
        X(CUDA_ERROR_NOT_SUPPORTED, "the operation is not supported")                              \
        X(CUDA_ERROR_SYSTEM_NOT_READY, "the system is not ready")                                  \
        X(CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, "the driver and kernel module do not match")          \
        X(CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, "forward compatibility is not supported")     \
        X(CUDA_ERROR_MPS_CONNECTION_FAILED, "no connection to the MPS server")                     \
        X(CUDA_ERROR_MPS_RPC_FAILURE, "a call to the MPS server failed")                           \
        X(CUDA_ERROR_MPS_SERVER_NOT_READY, "the MPS server is not ready")                          \
        X(CUDA_ERROR_MPS_MAX_CLIENTS_REACHED, "the MPS server has its most clients")               \
        X(CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED, "the MPS server has its most connections")       \
        X(CUDA_ERROR_MPS_CLIENT_TERMINATED, "the MPS client was terminated")                       \
        X(CUDA_ERROR_CDP_NOT_SUPPORTED, "dynamic parallelism is not supported")                    \
        X(CUDA_ERROR_CDP_VERSION_MISMATCH, "dynamic parallelism versions do not match")            \
        X(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "not allowed while a stream is captured")         \
        X(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "the stream capture was invalidated")             \
        X(CUDA_ERROR_STREAM_CAPTURE_MERGE, "two captures would merge")                             \
        X(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, "the capture was not begun here")                   \
        X(CUDA_ERROR_STREAM_CAPTURE_UNJOINED, "a forked capture was not joined")                   \
        X(CUDA_ERROR_STREAM_CAPTURE_ISOLATION, "the capture would cross its isolation")            \
        X(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, "the legacy stream is in a capture")                 \
        X(CUDA_ERROR_CAPTURED_EVENT, "the event was recorded in a capture")                        \
        X(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, "the capture belongs to another thread")         \
        X(CUDA_ERROR_TIMEOUT, "the wait timed out")                                                \
        X(CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE, "the graph update was not possible")               \
        X(CUDA_ERROR_EXTERNAL_DEVICE, "an external device reported an error")                      \
        X(CUDA_ERROR_INVALID_CLUSTER_SIZE, "the cluster size is not valid")                        \
        X(CUDA_ERROR_FUNCTION_NOT_LOADED, "the function is not loaded")                            \
        X(CUDA_ERROR_INVALID_RESOURCE_TYPE, "the resource type is not valid")                      \
        X(CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION, "the resource configuration is not valid")    \
        X(CUDA_ERROR_KEY_ROTATION, "key rotation failed")                                          \
        X(CUDA_ERROR_UNKNOWN, "an unknown error")

static int lookup(CUresult r, const char **ret_name, const char **ret_text)
{
        switch (r) {
#define FC_ERROR_CASE(code, text)                                                                  \
        case code:                                                                                 \
                *ret_name = #code;                                                                 \
                *ret_text = text;                                                                  \
                return 0;
                FC_ERRORS(FC_ERROR_CASE)
#undef FC_ERROR_CASE
        default:
                return -1;
        }
}

VGPU_EXPORT CUresult cuGetErrorName(CUresult error, const char **pStr)
{
        const char *name, *text;

        if (!pStr)
                return CUDA_ERROR_INVALID_VALUE;
        if (lookup(error, &name, &text) < 0) {
                *pStr = NULL;
                return CUDA_ERROR_INVALID_VALUE;
        }
        *pStr = name;
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuGetErrorString(CUresult error, const char **pStr)
{
        const char *name, *text;

        if (!pStr)
                return CUDA_ERROR_INVALID_VALUE;
        if (lookup(error, &name, &text) < 0) {
                *pStr = NULL;
                return CUDA_ERROR_INVALID_VALUE;
        }
        *pStr = text;
        return CUDA_SUCCESS;
}
