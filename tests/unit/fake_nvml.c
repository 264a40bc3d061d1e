// SPDX-License-Identifier: Apache-2.0
// A stand-in libnvidia-ml for test_nvml, loaded through $VGPU_NVML_LIB: two GPUs, an H100 without
// MIG and an A100 in MIG mode with two MIG devices in non-adjacent slots, one Xid event, and
// failures chosen by environment variables (FAKE_NVML_INIT_FAIL, FAKE_NVML_LOST, FAKE_NVML_MANY).
// Written from NVIDIA's NVML API reference, independently of the loader's own declarations.
#include <stdlib.h>
#include <string.h>

#include "common/export.h"

enum {
        SUCCESS = 0,
        ERROR_UNINITIALIZED = 1,
        ERROR_INVALID_ARGUMENT = 2,
        ERROR_NOT_SUPPORTED = 3,
        ERROR_NOT_FOUND = 6,
        ERROR_INSUFFICIENT_SIZE = 7,
        ERROR_DRIVER_NOT_LOADED = 9,
        ERROR_TIMEOUT = 10,
        ERROR_GPU_IS_LOST = 15,
};

#define XID_EVENT 0x8ULL
#define MIB       (1024ULL * 1024)
#define N_SLOTS   10

struct fake_dev {
        const char *name, *uuid, *bus_id;
        unsigned pci_id; /* device << 16 | vendor */
        unsigned long long mem_total, mem_used;
        int mig_mode;
        struct fake_dev *parent;
        unsigned index, gi, ci, gi_slices, ci_slices, sms;
};

struct pci_info {
        char legacy[16];
        unsigned domain, bus, device, pci_device_id, subsys;
        char bus_id[32];
};

struct event_data {
        struct fake_dev *device;
        unsigned long long type, data;
        unsigned gi, ci;
};

struct attributes {
        unsigned sms, ce, dec, enc, jpeg, ofa, gi_slices, ci_slices;
        unsigned long long mem_mib;
};

static struct fake_dev gpus[2] = {
        {.name = "NVIDIA H100 80GB HBM3",
         .uuid = "GPU-11111111-2222-3333-4444-555555555555",
         .bus_id = "00000000:41:00.0",
         .pci_id = 0x233010de,
         .mem_total = 81559 * MIB,
         .mem_used = 1024 * MIB,
         .index = 0},
        {.name = "NVIDIA A100-SXM4-40GB",
         .uuid = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
         .bus_id = "00000000:C1:00.0",
         .pci_id = 0x20b010de,
         .mem_total = 40960 * MIB,
         .mem_used = 0,
         .mig_mode = 1,
         .index = 1},
};

static struct fake_dev migs[N_SLOTS];
static int inits, shutdowns, sets_live, registered;
static int set_token;

/* GPU 1's MIG devices: slots 0 and 2 hold one each (a 3g and a 1g); FAKE_NVML_MANY fills all. */
static struct fake_dev *mig_at(unsigned slot)
{
        struct fake_dev *m;

        if (slot >= N_SLOTS)
                return NULL;
        if (!getenv("FAKE_NVML_MANY") && slot != 0 && slot != 2)
                return NULL;
        m = &migs[slot];
        m->parent = &gpus[1];
        m->index = slot;
        m->gi = slot == 0 ? 1 : 5 + slot;
        m->ci = 0;
        m->gi_slices = slot == 0 ? 3 : 1;
        m->ci_slices = m->gi_slices;
        m->sms = 14 * m->gi_slices;
        m->mem_total = (slot == 0 ? 20096 : 4864) * MIB;
        m->uuid = slot == 0 ? "MIG-00000000-0000-0000-0000-000000000001"
                            : "MIG-00000000-0000-0000-0000-000000000002";
        return m;
}

static int copy_str(const char *s, char *buf, unsigned len)
{
        if (strlen(s) + 1 > len)
                return ERROR_INSUFFICIENT_SIZE;
        memcpy(buf, s, strlen(s) + 1);
        return SUCCESS;
}

VGPU_EXPORT int fake_nvml_inits(void);
VGPU_EXPORT int fake_nvml_shutdowns(void);
VGPU_EXPORT int fake_nvml_sets_live(void);
VGPU_EXPORT int nvmlInit_v2(void);
VGPU_EXPORT int nvmlShutdown(void);
VGPU_EXPORT const char *nvmlErrorString(int r);
VGPU_EXPORT int nvmlDeviceGetCount_v2(unsigned *count);
VGPU_EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned index, struct fake_dev **dev);
VGPU_EXPORT int nvmlDeviceGetIndex(struct fake_dev *dev, unsigned *index);
VGPU_EXPORT int nvmlDeviceGetName(struct fake_dev *dev, char *buf, unsigned len);
VGPU_EXPORT int nvmlDeviceGetUUID(struct fake_dev *dev, char *buf, unsigned len);
VGPU_EXPORT int nvmlDeviceGetPciInfo_v3(struct fake_dev *dev, struct pci_info *pci);
VGPU_EXPORT int nvmlDeviceGetMemoryInfo(struct fake_dev *dev, unsigned long long mem[3]);
VGPU_EXPORT int nvmlDeviceGetUtilizationRates(struct fake_dev *dev, unsigned util[2]);
VGPU_EXPORT int nvmlDeviceGetTemperature(struct fake_dev *dev, int sensor, unsigned *temp);
VGPU_EXPORT int nvmlDeviceGetPowerUsage(struct fake_dev *dev, unsigned *mw);
VGPU_EXPORT int nvmlDeviceGetMigMode(struct fake_dev *dev, unsigned *cur, unsigned *pending);
VGPU_EXPORT int nvmlDeviceGetMaxMigDeviceCount(struct fake_dev *dev, unsigned *count);
VGPU_EXPORT int nvmlDeviceGetMigDeviceHandleByIndex(struct fake_dev *dev, unsigned index,
                                                    struct fake_dev **mig);
VGPU_EXPORT int nvmlDeviceGetGpuInstanceId(struct fake_dev *dev, unsigned *id);
VGPU_EXPORT int nvmlDeviceGetComputeInstanceId(struct fake_dev *dev, unsigned *id);
VGPU_EXPORT int nvmlDeviceGetAttributes_v2(struct fake_dev *dev, struct attributes *attr);
VGPU_EXPORT int nvmlEventSetCreate(void **set);
VGPU_EXPORT int nvmlEventSetFree(const void *set);
VGPU_EXPORT int nvmlDeviceGetSupportedEventTypes(struct fake_dev *dev, unsigned long long *types);
VGPU_EXPORT int nvmlDeviceRegisterEvents(struct fake_dev *dev, unsigned long long types,
                                         const void *set);
VGPU_EXPORT int nvmlEventSetWait_v2(const void *set, struct event_data *data, unsigned timeout_ms);

int fake_nvml_inits(void)
{
        return inits;
}

int fake_nvml_shutdowns(void)
{
        return shutdowns;
}

int fake_nvml_sets_live(void)
{
        return sets_live;
}

int nvmlInit_v2(void)
{
        if (getenv("FAKE_NVML_INIT_FAIL"))
                return ERROR_DRIVER_NOT_LOADED;
        inits++;
        return SUCCESS;
}

int nvmlShutdown(void)
{
        shutdowns++;
        return SUCCESS;
}

const char *nvmlErrorString(int r)
{
        switch (r) {
        case SUCCESS:
                return "Success";
        case ERROR_INVALID_ARGUMENT:
                return "Invalid Argument";
        case ERROR_NOT_SUPPORTED:
                return "Not Supported";
        case ERROR_NOT_FOUND:
                return "Not Found";
        case ERROR_DRIVER_NOT_LOADED:
                return "Driver Not Loaded";
        case ERROR_GPU_IS_LOST:
                return "GPU is lost";
        default:
                return "Unknown Error";
        }
}

int nvmlDeviceGetCount_v2(unsigned *count)
{
        *count = 2;
        return SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned index, struct fake_dev **dev)
{
        if (index >= 2)
                return ERROR_INVALID_ARGUMENT;
        *dev = &gpus[index];
        return SUCCESS;
}

int nvmlDeviceGetIndex(struct fake_dev *dev, unsigned *index)
{
        *index = dev->index;
        return SUCCESS;
}

int nvmlDeviceGetName(struct fake_dev *dev, char *buf, unsigned len)
{
        return copy_str(dev->parent ? dev->parent->name : dev->name, buf, len);
}

int nvmlDeviceGetUUID(struct fake_dev *dev, char *buf, unsigned len)
{
        return copy_str(dev->uuid, buf, len);
}

int nvmlDeviceGetPciInfo_v3(struct fake_dev *dev, struct pci_info *pci)
{
        memset(pci, 0, sizeof(*pci));
        pci->pci_device_id = dev->pci_id;
        pci->subsys = 0x16c110de;
        return copy_str(dev->bus_id, pci->bus_id, sizeof(pci->bus_id));
}

int nvmlDeviceGetMemoryInfo(struct fake_dev *dev, unsigned long long mem[3])
{
        if (dev == &gpus[1] && getenv("FAKE_NVML_LOST"))
                return ERROR_GPU_IS_LOST;
        mem[0] = dev->mem_total;
        mem[1] = dev->mem_total - dev->mem_used;
        mem[2] = dev->mem_used;
        return SUCCESS;
}

int nvmlDeviceGetUtilizationRates(struct fake_dev *dev, unsigned util[2])
{
        if (dev->mig_mode)
                return ERROR_NOT_SUPPORTED;
        util[0] = 42;
        util[1] = 7;
        return SUCCESS;
}

int nvmlDeviceGetTemperature(struct fake_dev *dev, int sensor, unsigned *temp)
{
        if (sensor != 0)
                return ERROR_INVALID_ARGUMENT;
        *temp = 30 + dev->index;
        return SUCCESS;
}

int nvmlDeviceGetPowerUsage(struct fake_dev *dev, unsigned *mw)
{
        *mw = 70000 + dev->index;
        return SUCCESS;
}

int nvmlDeviceGetMigMode(struct fake_dev *dev, unsigned *cur, unsigned *pending)
{
        *cur = (unsigned)dev->mig_mode;
        *pending = (unsigned)dev->mig_mode;
        return SUCCESS;
}

int nvmlDeviceGetMaxMigDeviceCount(struct fake_dev *dev, unsigned *count)
{
        *count = dev->mig_mode ? N_SLOTS : 0;
        return SUCCESS;
}

int nvmlDeviceGetMigDeviceHandleByIndex(struct fake_dev *dev, unsigned index, struct fake_dev **mig)
{
        struct fake_dev *m = dev->mig_mode ? mig_at(index) : NULL;

        if (!m)
                return ERROR_NOT_FOUND;
        *mig = m;
        return SUCCESS;
}

int nvmlDeviceGetGpuInstanceId(struct fake_dev *dev, unsigned *id)
{
        if (!dev->parent)
                return ERROR_INVALID_ARGUMENT;
        *id = dev->gi;
        return SUCCESS;
}

int nvmlDeviceGetComputeInstanceId(struct fake_dev *dev, unsigned *id)
{
        if (!dev->parent)
                return ERROR_INVALID_ARGUMENT;
        *id = dev->ci;
        return SUCCESS;
}

int nvmlDeviceGetAttributes_v2(struct fake_dev *dev, struct attributes *attr)
{
        if (!dev->parent)
                return ERROR_NOT_SUPPORTED;
        memset(attr, 0, sizeof(*attr));
        attr->sms = dev->sms;
        attr->gi_slices = dev->gi_slices;
        attr->ci_slices = dev->ci_slices;
        attr->mem_mib = dev->mem_total / MIB;
        return SUCCESS;
}

int nvmlEventSetCreate(void **set)
{
        sets_live++;
        *set = &set_token;
        return SUCCESS;
}

int nvmlEventSetFree(const void *set)
{
        if (set != &set_token)
                return ERROR_INVALID_ARGUMENT;
        sets_live--;
        return SUCCESS;
}

int nvmlDeviceGetSupportedEventTypes(struct fake_dev *dev, unsigned long long *types)
{
        (void)dev;
        *types = 0x1 | 0x2 | 0x4 | XID_EVENT;
        return SUCCESS;
}

int nvmlDeviceRegisterEvents(struct fake_dev *dev, unsigned long long types, const void *set)
{
        (void)dev;
        if (set != &set_token || types != XID_EVENT)
                return ERROR_INVALID_ARGUMENT;
        registered++;
        return SUCCESS;
}

/* One Xid 79 on GPU 1's GPU instance 5 once anything is registered, then only timeouts. */
int nvmlEventSetWait_v2(const void *set, struct event_data *data, unsigned timeout_ms)
{
        static int delivered;

        (void)timeout_ms;
        if (set != &set_token)
                return ERROR_INVALID_ARGUMENT;
        if (registered == 0 || delivered)
                return ERROR_TIMEOUT;
        delivered = 1;
        data->device = &gpus[1];
        data->type = XID_EVENT;
        data->data = 79;
        data->gi = 5;
        data->ci = 0;
        return SUCCESS;
}
