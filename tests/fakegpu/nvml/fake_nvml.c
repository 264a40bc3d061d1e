// SPDX-License-Identifier: Apache-2.0
// The stand-in NVML's one state: nvmlInit_v2 and nvmlShutdown (reference-counted, as NVML's
// are), the lock every call runs under, re-reading gpus.json when it changed, the handle tables
// and their checks, and nvmlErrorString. What the handles mean is in fake_nvml_device.c and
// fake_nvml_mig.c.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/export.h"
#include "fake_nvml.h"

struct fake_state fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

/*
 * Handles are addresses in fixed tables, one entry per GPU, per (GPU, GPU instance id) and per
 * (GPU, GPU instance id, compute instance id): a handle never dangles, and a destroyed instance's
 * handle is told apart by looking its ids up in gpus.json. An instance created again with the
 * same ids gets the same handle, as NVML may reuse handles.
 */
struct nvml_device {
        unsigned char unused;
};

struct nvml_gpu_instance {
        unsigned char unused;
};

struct nvml_compute_instance {
        unsigned char unused;
};

static struct nvml_device gpu_handles[FAKE_MAX_GPUS];
static struct nvml_device mig_handles[FAKE_MAX_GPUS][FAKE_MAX_GI_ID][FAKE_MAX_CI_ID];
static struct nvml_gpu_instance gi_handles[FAKE_MAX_GPUS][FAKE_MAX_GI_ID];
static struct nvml_compute_instance ci_handles[FAKE_MAX_GPUS][FAKE_MAX_GI_ID][FAKE_MAX_CI_ID];

#define N_GI_SLOTS (FAKE_MAX_GPUS * FAKE_MAX_GI_ID)
#define N_CI_SLOTS (FAKE_MAX_GPUS * FAKE_MAX_GI_ID * FAKE_MAX_CI_ID)

/* Say why initialisation failed, once per process, as the README asks. */
static void init_say(const char *why)
{
        static bool said;

        if (said)
                return;
        said = true;
        fprintf(stderr, "fakenvml: %s\n", why);
}

VGPU_EXPORT int nvmlInit_v2(void)
{
        const char *dir = getenv("VGPU_FAKE_GPU");
        const char *priv = getenv("VGPU_FAKE_NVML_PRIVILEGED");
        char why[512];
        int ret = NVML_SUCCESS;

        pthread_mutex_lock(&fake.lock);
        if (fake.refs > 0) {
                fake.refs++;
                goto out;
        }
        if (!dir || !*dir) {
                init_say("VGPU_FAKE_GPU is not set");
                ret = NVML_ERROR_DRIVER_NOT_LOADED;
                goto out;
        }
        if (strlen(dir) >= sizeof(fake.dir)) {
                init_say("VGPU_FAKE_GPU names too long a path");
                ret = NVML_ERROR_DRIVER_NOT_LOADED;
                goto out;
        }
        snprintf(fake.dir, sizeof(fake.dir), "%s", dir);
        snprintf(fake.json_path, sizeof(fake.json_path), "%s/gpus.json", dir);
        if (fake_cfg_read(fake.json_path, &fake.doc, &fake.cfg, &fake.stamp, why, sizeof(why)) <
            0) {
                init_say(why);
                ret = NVML_ERROR_DRIVER_NOT_LOADED;
                goto out;
        }
        /* Root by default, as vgpud runs; "0" is a user without the MIG capabilities. */
        fake.privileged = !priv || strcmp(priv, "0") != 0;
        fake.refs = 1;
out:
        pthread_mutex_unlock(&fake.lock);
        return ret;
}

VGPU_EXPORT int nvmlShutdown(void)
{
        pthread_mutex_lock(&fake.lock);
        if (fake.refs == 0) {
                pthread_mutex_unlock(&fake.lock);
                return NVML_ERROR_UNINITIALIZED;
        }
        if (--fake.refs == 0) {
                fake_event_sets_free_locked();
                json_decref(fake.doc);
                free(fake.cfg);
                fake.doc = NULL;
                fake.cfg = NULL;
                memset(&fake.stamp, 0, sizeof(fake.stamp));
        }
        pthread_mutex_unlock(&fake.lock);
        return NVML_SUCCESS;
}

/* In NVML's words where NVML has them. */
VGPU_EXPORT const char *nvmlErrorString(int result)
{
        switch (result) {
        case NVML_SUCCESS:
                return "Success";
        case NVML_ERROR_UNINITIALIZED:
                return "Uninitialized";
        case NVML_ERROR_INVALID_ARGUMENT:
                return "Invalid Argument";
        case NVML_ERROR_NOT_SUPPORTED:
                return "Not Supported";
        case NVML_ERROR_NO_PERMISSION:
                return "Insufficient Permissions";
        case NVML_ERROR_ALREADY_INITIALIZED:
                return "Already Initialized";
        case NVML_ERROR_NOT_FOUND:
                return "Not Found";
        case NVML_ERROR_INSUFFICIENT_SIZE:
                return "Insufficient Size";
        case NVML_ERROR_DRIVER_NOT_LOADED:
                return "Driver Not Loaded";
        case NVML_ERROR_TIMEOUT:
                return "Timeout";
        case NVML_ERROR_GPU_IS_LOST:
                return "GPU is lost";
        case NVML_ERROR_IN_USE:
                return "In use by another client";
        case NVML_ERROR_MEMORY:
                return "Insufficient Memory";
        case NVML_ERROR_INSUFFICIENT_RESOURCES:
                return "Insufficient Resources";
        case NVML_ERROR_INVALID_STATE:
                return "Invalid State";
        case NVML_ERROR_UNKNOWN:
                return "Unknown Error";
        default:
                return "Unknown Error";
        }
}

int fake_reload_locked(bool force)
{
        struct fake_stamp now;
        struct fake_cfg *cfg;
        json_t *doc;
        char why[512];

        if (!force && fake_stamp_get(fake.json_path, &now) == 0 &&
            fake_stamp_equal(&now, &fake.stamp))
                return NVML_SUCCESS;
        /* Half-written by a test that does not rename, say: keep the last good one, try again. */
        if (fake_cfg_read(fake.json_path, &doc, &cfg, &now, why, sizeof(why)) < 0)
                return NVML_ERROR_UNKNOWN;
        json_decref(fake.doc);
        free(fake.cfg);
        fake.doc = doc;
        fake.cfg = cfg;
        fake.stamp = now;
        return NVML_SUCCESS;
}

int fake_enter(void)
{
        pthread_mutex_lock(&fake.lock);
        if (fake.refs == 0) {
                pthread_mutex_unlock(&fake.lock);
                return NVML_ERROR_UNINITIALIZED;
        }
        fake_reload_locked(false);
        return NVML_SUCCESS;
}

int fake_leave(int r)
{
        pthread_mutex_unlock(&fake.lock);
        return r;
}

struct nvml_device *fake_gpu_handle(unsigned gpu)
{
        return &gpu_handles[gpu];
}

struct nvml_device *fake_mig_handle(unsigned gpu, unsigned gi_id, unsigned ci_id)
{
        return &mig_handles[gpu][gi_id][ci_id];
}

struct nvml_gpu_instance *fake_gi_handle(unsigned gpu, unsigned gi_id)
{
        return &gi_handles[gpu][gi_id];
}

struct nvml_compute_instance *fake_ci_handle(unsigned gpu, unsigned gi_id, unsigned ci_id)
{
        return &ci_handles[gpu][gi_id][ci_id];
}

/* The slot that p is in a table of n one-byte entries at base; false if p is not one of them. */
static bool slot_of(const void *p, const void *base, size_t n, size_t *ret)
{
        uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;

        if (!p || a < b || a - b >= n)
                return false;
        *ret = a - b;
        return true;
}

/* What GPU gpu, its GPU instance gi_id and its compute instance ci_id (-1: none) are now. */
static int ref_of(size_t gpu, long gi_id, long ci_id, struct fake_ref *ret)
{
        struct fake_ref r = {.gpu_index = (unsigned)gpu};

        if (gpu >= fake.cfg->n_gpus)
                return NVML_ERROR_INVALID_ARGUMENT;
        r.gpu = &fake.cfg->gpus[gpu];
        if (gi_id >= 0) {
                r.gi = fake_gi_find(r.gpu, (unsigned)gi_id);
                if (!r.gi)
                        return NVML_ERROR_INVALID_ARGUMENT;
        }
        if (ci_id >= 0) {
                r.ci = fake_ci_find(r.gi, (unsigned)ci_id);
                if (!r.ci)
                        return NVML_ERROR_INVALID_ARGUMENT;
        }
        *ret = r;
        return NVML_SUCCESS;
}

/* The one-byte table entries make a slot number the entry's offset in its table. */
_Static_assert(sizeof(struct nvml_device) == 1 && sizeof(struct nvml_gpu_instance) == 1 &&
                       sizeof(struct nvml_compute_instance) == 1,
               "handle table entries are one byte");

int fake_dev_ref(const struct nvml_device *dev, struct fake_ref *ret)
{
        size_t s;

        if (slot_of(dev, gpu_handles, FAKE_MAX_GPUS, &s))
                return ref_of(s, -1, -1, ret);
        if (slot_of(dev, mig_handles, N_CI_SLOTS, &s))
                return ref_of(s / (FAKE_MAX_GI_ID * FAKE_MAX_CI_ID),
                              (long)(s / FAKE_MAX_CI_ID % FAKE_MAX_GI_ID),
                              (long)(s % FAKE_MAX_CI_ID), ret);
        return NVML_ERROR_INVALID_ARGUMENT;
}

int fake_gi_ref(const struct nvml_gpu_instance *gi, struct fake_ref *ret)
{
        size_t s;

        if (slot_of(gi, gi_handles, N_GI_SLOTS, &s))
                return ref_of(s / FAKE_MAX_GI_ID, (long)(s % FAKE_MAX_GI_ID), -1, ret);
        return NVML_ERROR_INVALID_ARGUMENT;
}

int fake_ci_ref(const struct nvml_compute_instance *ci, struct fake_ref *ret)
{
        size_t s;

        if (slot_of(ci, ci_handles, N_CI_SLOTS, &s))
                return ref_of(s / (FAKE_MAX_GI_ID * FAKE_MAX_CI_ID),
                              (long)(s / FAKE_MAX_CI_ID % FAKE_MAX_GI_ID),
                              (long)(s % FAKE_MAX_CI_ID), ret);
        return NVML_ERROR_INVALID_ARGUMENT;
}

int fake_privileged(void)
{
        return fake.privileged ? NVML_SUCCESS : NVML_ERROR_NO_PERMISSION;
}

int fake_copy_str(const char *s, char *buf, unsigned len)
{
        size_t n = strlen(s) + 1;

        if (!buf)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (n > len)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        memcpy(buf, s, n);
        return NVML_SUCCESS;
}
