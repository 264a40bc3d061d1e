// SPDX-License-Identifier: Apache-2.0
// Guest test: initialisation, versions, error names and strings, device enumeration, names,
// memory size, attributes, UUID and PCI bus id, checked against what a real NVIDIA GPU guarantees.
// One line per check, then "N passed, M failed"; exit 1 if any failed.
#include "check.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

struct attr_min {
        CUdevice_attribute attr;
        const char *name;
        long long min;
        long long max;
};

#define A(x, lo, hi)                                                                               \
        {                                                                                          \
                CU_DEVICE_ATTRIBUTE_##x, #x, lo, hi                                                \
        }

// Bounds every CUDA GPU of compute capability >= 7.5 meets (CUDA C++ Programming Guide, "Compute
// Capabilities": technical specifications per compute capability).
static const struct attr_min attr_bounds[] = {
        A(MAX_THREADS_PER_BLOCK, 1024, 1024),
        A(MAX_BLOCK_DIM_X, 1024, 1024),
        A(MAX_BLOCK_DIM_Y, 1024, 1024),
        A(MAX_BLOCK_DIM_Z, 64, 64),
        A(MAX_GRID_DIM_X, 2147483647LL, 2147483647LL),
        A(MAX_GRID_DIM_Y, 65535, 65535),
        A(MAX_GRID_DIM_Z, 65535, 65535),
        A(MAX_SHARED_MEMORY_PER_BLOCK, 49152, 49152),
        A(TOTAL_CONSTANT_MEMORY, 65536, 65536),
        A(WARP_SIZE, 32, 32),
        A(MAX_PITCH, 1, 2147483647LL),
        A(MAX_REGISTERS_PER_BLOCK, 65536, 65536),
        A(MULTIPROCESSOR_COUNT, 1, 100000),
        A(KERNEL_EXEC_TIMEOUT, 0, 1),
        A(INTEGRATED, 0, 0),
        A(CAN_MAP_HOST_MEMORY, 1, 1),
        A(COMPUTE_MODE, 0, 3),
        A(CONCURRENT_KERNELS, 1, 1),
        A(ECC_ENABLED, 0, 1),
        A(PCI_BUS_ID, 0, 255),
        A(PCI_DEVICE_ID, 0, 31),
        A(PCI_DOMAIN_ID, 0, 0x7fffffff),
        A(ASYNC_ENGINE_COUNT, 1, 64),
        A(UNIFIED_ADDRESSING, 1, 1),
        A(L2_CACHE_SIZE, 1, 1LL << 31),
        A(MAX_THREADS_PER_MULTIPROCESSOR, 1024, 2048),
        A(COMPUTE_CAPABILITY_MAJOR, 7, 99),
        A(COMPUTE_CAPABILITY_MINOR, 0, 9),
        A(MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 65536, 1LL << 31),
        A(MAX_REGISTERS_PER_MULTIPROCESSOR, 65536, 65536),
        A(MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 49152, 1LL << 31),
        A(MAX_BLOCKS_PER_MULTIPROCESSOR, 16, 64),
        A(GLOBAL_MEMORY_BUS_WIDTH, 1, 1 << 16),
};

static void test_errors_strings(void)
{
        static const struct {
                CUresult res;
                const char *name;
        } names[] = {
                {CUDA_SUCCESS, "CUDA_SUCCESS"},
                {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE"},
                {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY"},
                {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED"},
                {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE"},
                {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT"},
                {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE"},
                {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND"},
                {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY"},
                {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS"},
                {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED"},
                {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED"},
                {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN"},
        };
        const char *s;

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                s = NULL;
                CUresult r = cuGetErrorName(names[i].res, &s);
                check_true(r == CUDA_SUCCESS && s && strcmp(s, names[i].name) == 0,
                           "cuGetErrorName(%d) = \"%s\" (want \"%s\")", (int)names[i].res,
                           s ? s : "(null)", names[i].name);
                s = NULL;
                r = cuGetErrorString(names[i].res, &s);
                check_true(r == CUDA_SUCCESS && s && s[0], "cuGetErrorString(%s) = \"%s\"",
                           names[i].name, s ? s : "(null)");
        }
        s = "x";
        CK_RES(cuGetErrorName((CUresult)98765, &s), CUDA_ERROR_INVALID_VALUE);
        check_true(s == NULL, "cuGetErrorName(unknown code) sets *pStr to NULL");
        s = "x";
        CK_RES(cuGetErrorString((CUresult)98765, &s), CUDA_ERROR_INVALID_VALUE);
        check_true(s == NULL, "cuGetErrorString(unknown code) sets *pStr to NULL");
}

// "[domain]:[bus]:[device].[function]", all hexadecimal; returns the parsed fields.
static bool parse_bus_id(const char *s, unsigned *dom, unsigned *bus, unsigned *devn, unsigned *fn)
{
        size_t nd = strspn(s, "0123456789abcdefABCDEF");

        if (nd < 4 || nd > 8 || s[nd] != ':')
                return false;
        for (size_t i = nd + 1; i < nd + 3; i++) {
                if (!isxdigit((unsigned char)s[i]))
                        return false;
        }
        if (s[nd + 3] != ':' || !isxdigit((unsigned char)s[nd + 4]) ||
            !isxdigit((unsigned char)s[nd + 5]) || s[nd + 6] != '.' ||
            !isxdigit((unsigned char)s[nd + 7]) || s[nd + 8] != '\0')
                return false;
        return sscanf(s, "%x:%x:%x.%x", dom, bus, devn, fn) == 4;
}

static void test_one_device(CUdevice dev, int ordinal)
{
        char name[256];
        size_t mem = 0;
        int v;

        memset(name, 0, sizeof(name));
        CK(cuDeviceGetName(name, (int)sizeof(name), dev));
        check_true(name[0] != '\0' && memchr(name, '\0', sizeof(name)) != NULL,
                   "device %d name \"%s\" is non-empty and terminated", ordinal, name);
        CK(cuDeviceTotalMem(&mem, dev));
        check_true(mem > 0, "device %d total memory %zu bytes > 0", ordinal, mem);

        for (size_t i = 0; i < sizeof(attr_bounds) / sizeof(attr_bounds[0]); i++) {
                const struct attr_min *a = &attr_bounds[i];
                v = -1;
                CUresult r = cuDeviceGetAttribute(&v, a->attr, dev);
                check_true(r == CUDA_SUCCESS && v >= a->min && v <= a->max,
                           "device %d attribute %s = %d (%s), want %lld..%lld", ordinal, a->name, v,
                           check_name(r), a->min, a->max);
        }
        int major = 0;
        int minor = 0;
        cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
        cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
        check_true(major * 10 + minor >= 75, "device %d compute capability %d.%d >= 7.5", ordinal,
                   major, minor);

        CK_RES(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX, dev), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuDeviceGetAttribute(&v, (CUdevice_attribute)-5, dev), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuDeviceGetAttribute(NULL, CU_DEVICE_ATTRIBUTE_WARP_SIZE, dev),
               CUDA_ERROR_INVALID_VALUE);

        CUuuid uuid;
        memset(&uuid, 0, sizeof(uuid));
        CK(cuDeviceGetUuid(&uuid, dev));
        bool nonzero = false;
        for (size_t i = 0; i < sizeof(uuid.bytes); i++)
                nonzero |= uuid.bytes[i] != 0;
        check_true(nonzero, "device %d UUID is not all zeros", ordinal);

        char bus[64];
        unsigned dom = 0;
        unsigned b = 0;
        unsigned d = 0;
        unsigned fn = 0;
        memset(bus, 0, sizeof(bus));
        CK(cuDeviceGetPCIBusId(bus, (int)sizeof(bus), dev));
        bool parsed = parse_bus_id(bus, &dom, &b, &d, &fn);
        check_true(parsed, "device %d PCI bus id \"%s\" has the form domain:bus:device.function",
                   ordinal, bus);
        if (parsed) {
                int adom = -1;
                int abus = -1;
                int adev = -1;
                cuDeviceGetAttribute(&adom, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, dev);
                cuDeviceGetAttribute(&abus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, dev);
                cuDeviceGetAttribute(&adev, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, dev);
                check_true((int)dom == adom && (int)b == abus && (int)d == adev,
                           "device %d PCI bus id matches the PCI attributes (%x:%x:%x)", ordinal,
                           adom, abus, adev);
        }
}

int main(void)
{
        int count = -1;
        int version = 0;
        CUdevice dev;

        // Before cuInit every call that needs the driver returns CUDA_ERROR_NOT_INITIALIZED.
        CK_RES(cuDeviceGetCount(&count), CUDA_ERROR_NOT_INITIALIZED);
        CK_RES(cuDeviceGet(&dev, 0), CUDA_ERROR_NOT_INITIALIZED);

        if (!CK(cuInit(0)))
                return check_done();
        CK(cuInit(0));

        CK(cuDriverGetVersion(&version));
        check_true(version >= 3020 && version % 10 == 0,
                   "cuDriverGetVersion = %d (1000 * major + 10 * minor)", version);
        CK_RES(cuDriverGetVersion(NULL), CUDA_ERROR_INVALID_VALUE);

        test_errors_strings();

        CK(cuDeviceGetCount(&count));
        check_true(count >= 1, "cuDeviceGetCount = %d >= 1", count);
        CK_RES(cuDeviceGetCount(NULL), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuDeviceGet(&dev, count), CUDA_ERROR_INVALID_DEVICE);
        CK_RES(cuDeviceGet(&dev, -1), CUDA_ERROR_INVALID_DEVICE);
        CK_RES(cuDeviceGet(NULL, 0), CUDA_ERROR_INVALID_VALUE);

        CUuuid first;
        memset(&first, 0, sizeof(first));
        for (int i = 0; i < count && i < 16; i++) {
                if (!CK(cuDeviceGet(&dev, i)))
                        continue;
                test_one_device(dev, i);
                CUuuid u;
                if (cuDeviceGetUuid(&u, dev) != CUDA_SUCCESS)
                        continue;
                if (i == 0)
                        first = u;
                else
                        check_true(memcmp(&u, &first, sizeof(u)) != 0,
                                   "device %d UUID differs from device 0's", i);
        }

        // An ordinal past the end is no device.
        CUdevice bad = (CUdevice)count;
        char name[64];
        size_t mem;
        int v;
        CK_RES(cuDeviceGetName(name, (int)sizeof(name), bad), CUDA_ERROR_INVALID_DEVICE);
        CK_RES(cuDeviceTotalMem(&mem, bad), CUDA_ERROR_INVALID_DEVICE);
        CK_RES(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, bad),
               CUDA_ERROR_INVALID_DEVICE);
        return check_done();
}
