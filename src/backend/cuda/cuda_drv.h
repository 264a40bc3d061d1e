/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVIDIA's CUDA driver, loaded at run time with dlopen (never linked: every vgpu binary runs on a
 * machine without a driver). The cuda backend and vgpud's GPU discovery call it through `cu`.
 */
#ifndef VGPU_BACKEND_CUDA_CUDA_DRV_H
#define VGPU_BACKEND_CUDA_CUDA_DRV_H

#include <stddef.h>

#include <cuda.h>

/* X(field, symbol): the driver entry points used, by their exported (versioned) names. */
#define CUDA_DRV_CALLS(X)                                                                          \
        X(init, cuInit)                                                                            \
        X(driver_version, cuDriverGetVersion)                                                      \
        X(get_error_name, cuGetErrorName)                                                          \
        X(get_error_string, cuGetErrorString)                                                      \
        X(device_get, cuDeviceGet)                                                                 \
        X(device_count, cuDeviceGetCount)                                                          \
        X(device_name, cuDeviceGetName)                                                            \
        X(device_total_mem, cuDeviceTotalMem_v2)                                                   \
        X(device_attr, cuDeviceGetAttribute)                                                       \
        X(device_uuid, cuDeviceGetUuid_v2)                                                         \
        X(device_pci_bus_id, cuDeviceGetPCIBusId)                                                  \
        X(primary_retain, cuDevicePrimaryCtxRetain)                                                \
        X(primary_release, cuDevicePrimaryCtxRelease_v2)                                           \
        X(ctx_set_current, cuCtxSetCurrent)                                                        \
        X(mem_get_info, cuMemGetInfo_v2)                                                           \
        X(mem_granularity, cuMemGetAllocationGranularity)                                          \
        X(mem_address_reserve, cuMemAddressReserve)                                                \
        X(mem_address_free, cuMemAddressFree)                                                      \
        X(mem_create, cuMemCreate)                                                                 \
        X(mem_release, cuMemRelease)                                                               \
        X(mem_map, cuMemMap)                                                                       \
        X(mem_unmap, cuMemUnmap)                                                                   \
        X(mem_set_access, cuMemSetAccess)                                                          \
        X(mem_export, cuMemExportToShareableHandle)                                                \
        X(mem_import, cuMemImportFromShareableHandle)                                              \
        X(host_register, cuMemHostRegister_v2)                                                     \
        X(host_unregister, cuMemHostUnregister)                                                    \
        X(stream_create, cuStreamCreate)                                                           \
        X(stream_destroy, cuStreamDestroy_v2)                                                      \
        X(stream_sync, cuStreamSynchronize)                                                        \
        X(memcpy_htod_async, cuMemcpyHtoDAsync_v2)                                                 \
        X(memcpy_dtoh_async, cuMemcpyDtoHAsync_v2)                                                 \
        X(memcpy_dtod_async, cuMemcpyDtoDAsync_v2)                                                 \
        X(memset_d2d8_async, cuMemsetD2D8Async)                                                    \
        X(memset_d2d16_async, cuMemsetD2D16Async)                                                  \
        X(memset_d2d32_async, cuMemsetD2D32Async)                                                  \
        X(module_load_data_ex, cuModuleLoadDataEx)                                                 \
        X(module_unload, cuModuleUnload)                                                           \
        X(module_get_function, cuModuleGetFunction)                                                \
        X(module_get_global, cuModuleGetGlobal_v2)                                                 \
        X(func_get_attribute, cuFuncGetAttribute)                                                  \
        X(func_set_attribute, cuFuncSetAttribute)                                                  \
        X(func_get_param_info, cuFuncGetParamInfo)                                                 \
        X(launch_kernel, cuLaunchKernel)                                                           \
        X(event_create, cuEventCreate)                                                             \
        X(event_record, cuEventRecord)                                                             \
        X(event_query, cuEventQuery)                                                               \
        X(event_sync, cuEventSynchronize)                                                          \
        X(event_elapsed, cuEventElapsedTime_v2)                                                    \
        X(event_destroy, cuEventDestroy_v2)

struct cuda_drv {
#define CUDA_DRV_FIELD(field, symbol) __typeof__(&symbol) field;
        CUDA_DRV_CALLS(CUDA_DRV_FIELD)
#undef CUDA_DRV_FIELD
};

/* The loaded driver; valid after cuda_drv_load returned 0. */
extern struct cuda_drv cu;

/*
 * cuda_drv_load - load the driver (VGPU_CUDA_DRIVER names its path; else libcuda.so.1, skipping
 * vgpu's own guest driver should the loader find that first) and cuInit it, once per process.
 * 0, or -ENODEV with the reason ("no NVIDIA driver: ...") in err. Thread-safe.
 */
int cuda_drv_load(char *err, size_t err_len);

/* cuda_code - a CUresult as the backend's codes: a negative errno or a PTX_E* code. */
int cuda_code(CUresult r);

/* cuda_errstr - the driver's name of a CUresult ("CUDA_ERROR_ILLEGAL_ADDRESS"), never NULL. */
const char *cuda_errstr(CUresult r);

#endif
