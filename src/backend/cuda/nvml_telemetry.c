// SPDX-License-Identifier: Apache-2.0
// What NVML says about a GPU while it runs: telemetry samples (memory, utilisation, temperature,
// power) and Xid events, watched on a process-wide event set.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/nvml.h"
#include "backend/cuda/nvml_int.h"
#include "common/log.h"

int vgpu_nvml_sample(unsigned index, struct vgpu_nvml_sample *ret)
{
        struct vgpu_nvml_sample s = {0};
        struct nvml_device *dev;
        struct nvml_memory mem;
        struct nvml_utilization util;
        unsigned temp, power;
        int err, r;

        err = vgpu_nvml_ready();
        if (err < 0)
                return err;
        r = vgpu_nvml_proc.fns.nvmlDeviceGetHandleByIndex_v2(index, &dev);
        /* An index past the end is "no such GPU", whatever NVML calls it. */
        if (r == NVML_ERROR_INVALID_ARGUMENT)
                r = NVML_ERROR_NOT_FOUND;
        err = vgpu_nvml_check(r, "nvmlDeviceGetHandleByIndex_v2");
        if (err < 0)
                return err;
        /* in MIG mode a GPU's memory is for privileged callers: it reads 0 */
        r = vgpu_nvml_proc.fns.nvmlDeviceGetMemoryInfo(dev, &mem);
        if (r == NVML_SUCCESS) {
                s.mem_used = mem.used;
                s.mem_total = mem.total;
        } else if (r != NVML_ERROR_NO_PERMISSION) {
                return vgpu_nvml_check(r, "nvmlDeviceGetMemoryInfo");
        }

        /* Utilisation is not supported in MIG mode, power on some boards: those read 0. */
        r = vgpu_nvml_proc.fns.nvmlDeviceGetUtilizationRates(dev, &util);
        if (r == NVML_SUCCESS) {
                s.gpu_util = util.gpu;
                s.mem_util = util.memory;
        } else if (r != NVML_ERROR_NOT_SUPPORTED) {
                return vgpu_nvml_check(r, "nvmlDeviceGetUtilizationRates");
        }
        r = vgpu_nvml_proc.fns.nvmlDeviceGetTemperature(dev, NVML_TEMPERATURE_GPU, &temp);
        if (r == NVML_SUCCESS)
                s.temp_c = (int)temp;
        else if (r != NVML_ERROR_NOT_SUPPORTED)
                return vgpu_nvml_check(r, "nvmlDeviceGetTemperature");
        r = vgpu_nvml_proc.fns.nvmlDeviceGetPowerUsage(dev, &power);
        if (r == NVML_SUCCESS)
                s.power_mw = power;
        else if (r != NVML_ERROR_NOT_SUPPORTED)
                return vgpu_nvml_check(r, "nvmlDeviceGetPowerUsage");
        *ret = s;
        return 0;
}

int vgpu_nvml_xid_watch(unsigned index)
{
        const struct nvml_fns *f = &vgpu_nvml_proc.fns;
        struct nvml_device *dev;
        unsigned long long types;
        int err, r;

        err = vgpu_nvml_ready();
        if (err < 0)
                return err;
        if (!f->nvmlEventSetCreate || !f->nvmlEventSetFree || !f->nvmlDeviceRegisterEvents ||
            !f->nvmlDeviceGetSupportedEventTypes || !f->nvmlEventSetWait_v2) {
                vgpu_nvml_set_err("this NVML has no event API");
                return -EOPNOTSUPP;
        }
        r = f->nvmlDeviceGetHandleByIndex_v2(index, &dev);
        if (r == NVML_ERROR_INVALID_ARGUMENT)
                r = NVML_ERROR_NOT_FOUND;
        err = vgpu_nvml_check(r, "nvmlDeviceGetHandleByIndex_v2");
        if (err == 0)
                err = NVML_CALL(nvmlDeviceGetSupportedEventTypes, dev, &types);
        if (err < 0)
                return err;
        if (!(types & NVML_EVENT_TYPE_XID_CRITICAL)) {
                vgpu_nvml_set_err("GPU %u does not report Xid events", index);
                return -EOPNOTSUPP;
        }

        pthread_mutex_lock(&vgpu_nvml_proc.lock);
        for (unsigned i = 0; i < vgpu_nvml_proc.n_watched; i++) {
                if (vgpu_nvml_proc.watched[i].dev == dev)
                        goto out;
        }
        if (vgpu_nvml_proc.n_watched == NVML_MAX_WATCHED) {
                vgpu_nvml_set_err("more than %d GPUs watched", NVML_MAX_WATCHED);
                err = -ENOSPC;
                goto out;
        }
        if (!vgpu_nvml_proc.events) {
                err = NVML_CALL(nvmlEventSetCreate, &vgpu_nvml_proc.events);
                if (err < 0) {
                        vgpu_nvml_proc.events = NULL;
                        goto out;
                }
        }
        err = NVML_CALL(nvmlDeviceRegisterEvents, dev, NVML_EVENT_TYPE_XID_CRITICAL,
                        vgpu_nvml_proc.events);
        if (err < 0)
                goto out;
        vgpu_nvml_proc.watched[vgpu_nvml_proc.n_watched].dev = dev;
        vgpu_nvml_proc.watched[vgpu_nvml_proc.n_watched].index = index;
        vgpu_nvml_proc.n_watched++;
out:
        pthread_mutex_unlock(&vgpu_nvml_proc.lock);
        return err;
}

int vgpu_nvml_xid_wait(unsigned timeout_ms, struct vgpu_nvml_xid *ret)
{
        struct nvml_event_set *set;
        struct nvml_event_data data = {0};
        unsigned index = 0;
        bool found = false;
        int err, r;

        err = vgpu_nvml_ready();
        if (err < 0)
                return err;
        pthread_mutex_lock(&vgpu_nvml_proc.lock);
        set = vgpu_nvml_proc.events;
        pthread_mutex_unlock(&vgpu_nvml_proc.lock);
        if (!set) {
                vgpu_nvml_set_err("no GPU is watched for Xid events");
                return -EINVAL;
        }
        r = vgpu_nvml_proc.fns.nvmlEventSetWait_v2(set, &data, timeout_ms);
        if (r == NVML_ERROR_TIMEOUT)
                return 0;
        err = vgpu_nvml_check(r, "nvmlEventSetWait_v2");
        if (err < 0)
                return err;
        /* Only Xid events are registered; anything else is not one to report. */
        if (!(data.event_type & NVML_EVENT_TYPE_XID_CRITICAL))
                return 0;

        pthread_mutex_lock(&vgpu_nvml_proc.lock);
        for (unsigned i = 0; i < vgpu_nvml_proc.n_watched && !found; i++) {
                if (vgpu_nvml_proc.watched[i].dev == data.device) {
                        index = vgpu_nvml_proc.watched[i].index;
                        found = true;
                }
        }
        pthread_mutex_unlock(&vgpu_nvml_proc.lock);
        if (!found) {
                err = NVML_CALL(nvmlDeviceGetIndex, data.device, &index);
                if (err < 0)
                        return err;
        }
        ret->gpu_index = index;
        ret->gi_id = data.gpu_instance_id;
        ret->ci_id = data.compute_instance_id;
        ret->xid = data.event_data;
        return 1;
}

int vgpu_nvml_xid_poll(unsigned timeout_ms, unsigned *ret_index, unsigned long long *ret_xid)
{
        struct vgpu_nvml_xid ev;
        int ret = vgpu_nvml_xid_wait(timeout_ms, &ev);

        if (ret == 1) {
                *ret_index = ev.gpu_index;
                *ret_xid = ev.xid;
        }
        return ret;
}
