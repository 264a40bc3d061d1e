// SPDX-License-Identifier: Apache-2.0
// The stand-in driver's configuration: $VGPU_FAKE_GPU/gpus.json (tests/fakegpu/README.md) read
// into CUDA devices, whole GPUs not in MIG mode and the compute instances of GPUs in MIG mode, in
// file order, then chosen and ordered by CUDA_VISIBLE_DEVICES within the MIG user guide's limits
// on how many MIG devices one process enumerates.
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "fake_cuda.h"

#define MIB (UINT64_C(1) << 20)

/*
 * The MIG user guide ("CUDA Device Enumeration"): from CUDA 12/R570 (driver version 12080) one
 * compute instance per GPU instance, at most 64 MIG devices in all, beside GPUs not in MIG mode;
 * before, one MIG device in all, and then no GPU that is not in MIG mode.
 */
#define MIG_PER_GI_VERSION 12080
#define MAX_MIG_DEVICES    64

/* A device found in gpus.json, before CUDA_VISIBLE_DEVICES picks. */
struct found {
        struct fc_dev dev;
        char uuid[96]; /* as written: "GPU-..." or "MIG-..." */
        bool mig;
};

struct parse {
        struct found *all;
        int n;
        int dflt[FC_MAX_DEVICES]; /* what CUDA enumerates without CUDA_VISIBLE_DEVICES */
        int n_dflt;
        char *why;
        size_t why_len;
};

static int fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parse *p, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(p->why, p->why_len, fmt, ap);
        va_end(ap);
        return -1;
}

/* An integer member in [lo, hi]; def when absent and def_ok. */
static int get_int(struct parse *p, json_t *o, const char *what, const char *key, long long lo,
                   long long hi, bool def_ok, long long def, long long *ret)
{
        json_t *v = json_object_get(o, key);

        if (!v && def_ok) {
                *ret = def;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
                return fail(p, "%s: \"%s\" must be an integer from %lld to %lld", what, key, lo,
                            hi);
        *ret = json_integer_value(v);
        return 0;
}

static int get_str(struct parse *p, json_t *o, const char *what, const char *key, const char **ret)
{
        json_t *v = json_object_get(o, key);

        if (!json_is_string(v) || !json_string_value(v)[0])
                return fail(p, "%s: \"%s\" must be a non-empty string", what, key);
        *ret = json_string_value(v);
        return 0;
}

/* "GPU-5e1f0c1e-0000-4000-8000-000000000001": the 32 hex digits after the prefix, dashes aside. */
static int parse_uuid(const char *s, const char *prefix, unsigned char out[16])
{
        size_t n = 0;

        if (strncmp(s, prefix, strlen(prefix)) != 0)
                return -1;
        for (s += strlen(prefix); *s; s++) {
                int v;

                if (*s == '-')
                        continue;
                if (!isxdigit((unsigned char)*s) || n == 32)
                        return -1;
                v = isdigit((unsigned char)*s) ? *s - '0' : tolower((unsigned char)*s) - 'a' + 10;
                out[n / 2] = (unsigned char)(n % 2 ? out[n / 2] | v : v << 4);
                n++;
        }
        return n == 32 ? 0 : -1;
}

static struct found *next(struct parse *p, const char *what)
{
        if (p->n == FC_MAX_DEVICES) {
                fail(p, "%s: more than %d CUDA devices", what, FC_MAX_DEVICES);
                return NULL;
        }
        memset(&p->all[p->n], 0, sizeof(p->all[p->n]));
        return &p->all[p->n++];
}

/* The profile of gi_profiles whose "id" is id, or NULL. */
static json_t *profile_of(json_t *gpu, long long id)
{
        size_t i;
        json_t *prof;

        json_array_foreach(json_object_get(gpu, "gi_profiles"), i, prof)
        {
                json_t *v = json_object_get(prof, "id");

                if (json_is_integer(v) && json_integer_value(v) == id)
                        return prof;
        }
        return NULL;
}

/* The MIG devices of one GPU instance of a GPU in MIG mode. */
static int add_instance(struct parse *p, const struct fc_dev *gpu, json_t *jgpu, json_t *gi,
                        const char *what)
{
        long long gi_id = 0, prof_id = 0, slices = 0, mem_mib = 0, prof_sms = 0;
        json_t *prof, *cis, *ci;
        char w[160];
        size_t i;

        if (!json_is_object(gi))
                return fail(p, "%s must be an object", what);
        if (get_int(p, gi, what, "id", 0, 4294967294ll, false, 0, &gi_id) ||
            get_int(p, gi, what, "profile_id", 0, 4294967294ll, false, 0, &prof_id))
                return -1;
        prof = profile_of(jgpu, prof_id);
        if (!prof)
                return fail(p, "%s: no gi_profiles entry has \"id\" %lld", what, prof_id);
        snprintf(w, sizeof(w), "%.100s's profile", what);
        if (get_int(p, prof, w, "slices", 1, 64, false, 0, &slices) ||
            get_int(p, prof, w, "mem_mib", 1, INT64_MAX / (long long)MIB, false, 0, &mem_mib) ||
            get_int(p, prof, w, "sms", 0, 100000, true, 0, &prof_sms))
                return -1;
        cis = json_object_get(gi, "compute_instances");
        if (cis && !json_is_array(cis))
                return fail(p, "%s: \"compute_instances\" must be an array", what);
        json_array_foreach(cis, i, ci)
        {
                long long ci_id = 0, ci_slices = 0, sms = 0;
                const char *uuid = NULL;
                struct found *f;

                snprintf(w, sizeof(w), "%.100s.compute_instances[%zu]", what, i);
                if (!json_is_object(ci))
                        return fail(p, "%s must be an object", w);
                if (get_int(p, ci, w, "id", 0, 4294967294ll, false, 0, &ci_id) ||
                    get_int(p, ci, w, "slices", 1, slices, true, slices, &ci_slices) ||
                    get_int(p, ci, w, "sms", 1, 100000, true, prof_sms * ci_slices / slices,
                            &sms) ||
                    get_str(p, ci, w, "uuid", &uuid))
                        return -1;
                if (sms < 1)
                        return fail(p, "%s: no \"sms\" (nor its profile's)", w);
                f = next(p, w);
                if (!f)
                        return -1;
                f->dev = *gpu;
                f->mig = true;
                snprintf(f->uuid, sizeof(f->uuid), "%s", uuid);
                if (parse_uuid(uuid, "MIG-", f->dev.uuid) < 0)
                        return fail(p, "%s: \"uuid\" must be MIG- and 32 hex digits", w);
                /* nvidia-smi's profile names: "1g.10gb", or "1c.2g.20gb" for a smaller CI */
                char cpart[24] = "";

                if (ci_slices < slices)
                        snprintf(cpart, sizeof(cpart), "%lldc.", ci_slices);
                snprintf(f->dev.name, sizeof(f->dev.name), "%.200s MIG %s%lldg.%lldgb", gpu->name,
                         cpart, slices, (mem_mib + 1023) / 1024);
                f->dev.total = (uint64_t)mem_mib * MIB;
                f->dev.sms = (int)sms;
                f->dev.gi_id = (unsigned)gi_id;
                f->dev.ci_id = (unsigned)ci_id;
                snprintf(f->dev.key, sizeof(f->dev.key), "gpu%u-gi%u", gpu->nvml_index,
                         (unsigned)gi_id);
        }
        return 0;
}

static int add_gpu(struct parse *p, json_t *g, unsigned index)
{
        long long mem_mib = 0, sms = 0, pci_id = 0, major, minor;
        const char *name = NULL, *uuid = NULL, *bus = NULL;
        json_t *cc, *mig, *gis, *gi, *accessible;
        struct fc_dev d = {.gi_id = FC_NO_ID, .ci_id = FC_NO_ID, .nvml_index = index};
        unsigned fn;
        char what[64], w[160];
        size_t i;

        snprintf(what, sizeof(what), "gpus[%u]", index);
        if (!json_is_object(g))
                return fail(p, "%s must be an object", what);
        if (get_str(p, g, what, "name", &name) || get_str(p, g, what, "uuid", &uuid) ||
            get_str(p, g, what, "bus_id", &bus) ||
            get_int(p, g, what, "mem_mib", 1, INT64_MAX / (long long)MIB, false, 0, &mem_mib) ||
            get_int(p, g, what, "sms", 1, 100000, false, 0, &sms) ||
            get_int(p, g, what, "pci_device_id", 0, 0xffff, true, 0, &pci_id))
                return -1;
        snprintf(d.name, sizeof(d.name), "%s", name);
        if (parse_uuid(uuid, "GPU-", d.uuid) < 0)
                return fail(p, "%s: \"uuid\" must be GPU- and 32 hex digits", what);
        if (sscanf(bus, "%x:%x:%x.%x", &d.pci_domain, &d.pci_bus, &d.pci_device, &fn) != 4)
                return fail(p, "%s: \"bus_id\" must look like 00000000:41:00.0", what);
        snprintf(d.bus_id, sizeof(d.bus_id), "%s", bus);
        cc = json_object_get(g, "cc");
        if (!json_is_array(cc) || json_array_size(cc) != 2 ||
            !json_is_integer(json_array_get(cc, 0)) || !json_is_integer(json_array_get(cc, 1)))
                return fail(p, "%s: \"cc\" must be [major, minor]", what);
        major = json_integer_value(json_array_get(cc, 0));
        minor = json_integer_value(json_array_get(cc, 1));
        if (major < 1 || major > 99 || minor < 0 || minor > 9)
                return fail(p, "%s: \"cc\" is not a compute capability", what);
        d.cc_major = (int)major;
        d.cc_minor = (int)minor;
        d.pci_device_id = (unsigned)pci_id;
        d.total = (uint64_t)mem_mib * MIB;
        d.sms = (int)sms;
        snprintf(d.key, sizeof(d.key), "gpu%u", index);
        mig = json_object_get(g, "mig_mode");
        if (mig && !json_is_boolean(mig))
                return fail(p, "%s: \"mig_mode\" must be true or false", what);
        accessible = json_object_get(g, "accessible");
        if (accessible && !json_is_boolean(accessible))
                return fail(p, "%s: \"accessible\" must be true or false", what);
        if (json_is_false(accessible))
                return 0; /* a GPU this process may not open is no device of it */
        if (!json_is_true(mig)) {
                struct found *f = next(p, what);

                if (!f)
                        return -1;
                f->dev = d;
                snprintf(f->uuid, sizeof(f->uuid), "%s", uuid);
                return 0;
        }
        gis = json_object_get(g, "gpu_instances");
        if (gis && !json_is_array(gis))
                return fail(p, "%s: \"gpu_instances\" must be an array", what);
        json_array_foreach(gis, i, gi)
        {
                snprintf(w, sizeof(w), "%.60s.gpu_instances[%zu]", what, i);
                if (add_instance(p, &d, g, gi, w) < 0)
                        return -1;
        }
        return 0;
}

/* Whether found devices a and b are compute instances of one GPU instance. */
static bool same_gi(const struct found *a, const struct found *b)
{
        return a->mig && b->mig && a->dev.nvml_index == b->dev.nvml_index &&
               a->dev.gi_id == b->dev.gi_id;
}

/*
 * Whether CUDA enumerates p->all[i] beside the n devices of picked (indices into p->all): a MIG
 * device only while the driver's limits allow (MIG_PER_GI_VERSION). GPUs not in MIG mode are
 * taken here and dropped at the end by drop_whole_gpus where the driver says so.
 */
static bool admit(const struct parse *p, int version, const int *picked, int n, int i)
{
        int migs = 0;

        if (!p->all[i].mig)
                return true;
        for (int k = 0; k < n; k++) {
                if (!p->all[picked[k]].mig)
                        continue;
                migs++;
                if (same_gi(&p->all[picked[k]], &p->all[i]))
                        return false;
        }
        return version >= MIG_PER_GI_VERSION ? migs < MAX_MIG_DEVICES : migs == 0;
}

/* Before R570, a MIG device enumerated hides every GPU not in MIG mode: drop those. */
static int drop_whole_gpus(const struct parse *p, int version, int *picked, int n)
{
        bool any_mig = false;
        int k = 0;

        for (int i = 0; i < n; i++)
                any_mig |= p->all[picked[i]].mig;
        if (version >= MIG_PER_GI_VERSION || !any_mig)
                return n;
        for (int i = 0; i < n; i++) {
                if (p->all[picked[i]].mig)
                        picked[k++] = picked[i];
        }
        return k;
}

/* The device one CUDA_VISIBLE_DEVICES entry names, or -1. An index is one of p->dflt's. */
static int pick(const struct parse *p, const char *e)
{
        char *end;
        int hit = -1;

        if (isdigit((unsigned char)e[0])) {
                long v = strtol(e, &end, 10);

                return *end == '\0' && v < p->n_dflt ? p->dflt[v] : -1;
        }
        if (strncmp(e, "GPU-", 4) != 0 && strncmp(e, "MIG-", 4) != 0)
                return -1;
        for (int i = 0; i < p->n; i++) {
                if (p->all[i].mig != (e[0] == 'M') ||
                    strncasecmp(p->all[i].uuid, e, strlen(e)) != 0)
                        continue;
                if (hit >= 0)
                        return -1; /* not unique */
                hit = i;
        }
        return hit;
}

/*
 * The devices CUDA enumerates: without CUDA_VISIBLE_DEVICES, those of gpus.json in its order as
 * far as the driver's MIG limits allow (the first compute instance of each GPU instance); with
 * it, the devices it names, in its order, up to the first that is none, leaving out a MIG device
 * past the limits (CUDA "will pick one from the list").
 */
static void choose(struct parse *p, int version, const char *visible, struct fc_config *c)
{
        char buf[4096], *save = NULL, *tok;
        bool used[FC_MAX_DEVICES] = {false};
        int picked[FC_MAX_DEVICES], n = 0;

        for (int i = 0; i < p->n; i++) {
                if (admit(p, version, p->dflt, p->n_dflt, i))
                        p->dflt[p->n_dflt++] = i;
        }
        p->n_dflt = drop_whole_gpus(p, version, p->dflt, p->n_dflt);
        if (!visible) {
                for (int k = 0; k < p->n_dflt; k++)
                        c->devs[c->n_devs++] = p->all[p->dflt[k]].dev;
                return;
        }
        snprintf(buf, sizeof(buf), "%s", visible);
        for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *e = tok + strspn(tok, " \t");
                size_t len = strlen(e);
                int i;

                while (len && (e[len - 1] == ' ' || e[len - 1] == '\t'))
                        e[--len] = '\0';
                i = pick(p, e);
                if (i < 0 || used[i])
                        break;
                used[i] = true;
                if (admit(p, version, picked, n, i))
                        picked[n++] = i;
        }
        n = drop_whole_gpus(p, version, picked, n);
        for (int k = 0; k < n; k++)
                c->devs[c->n_devs++] = p->all[picked[k]].dev;
}

int config_load(const char *dir, const char *visible, struct fc_config *ret, char *why,
                size_t why_len)
{
        struct parse p = {.why = why, .why_len = why_len};
        char path[4200];
        json_error_t jerr;
        json_t *root, *gpus, *g;
        long long version = 0;
        size_t i;
        int r = -1;

        memset(ret, 0, sizeof(*ret));
        snprintf(ret->dir, sizeof(ret->dir), "%s", dir);
        snprintf(path, sizeof(path), "%s/gpus.json", dir);
        root = json_load_file(path, 0, &jerr);
        if (!root) {
                snprintf(why, why_len, "%s: %s", path, jerr.text);
                return -1;
        }
        p.all = calloc(FC_MAX_DEVICES, sizeof(*p.all));
        if (!p.all) {
                snprintf(why, why_len, "out of memory");
                goto out;
        }
        gpus = json_object_get(root, "gpus");
        if (!json_is_object(root) || !json_is_array(gpus)) {
                fail(&p, "%s: no \"gpus\" array", path);
                goto out;
        }
        if (get_int(&p, root, path, "driver_version", 1000, 1000000, true, 13000, &version))
                goto out;
        ret->driver_version = (int)version;
        json_array_foreach(gpus, i, g)
        {
                if (add_gpu(&p, g, (unsigned)i) < 0)
                        goto out;
        }
        choose(&p, ret->driver_version, visible, ret);
        for (int k = 0; k < ret->n_devs; k++) {
                ret->devs[k].ordinal = k;
                ret->devs[k].ctx.dev = &ret->devs[k];
        }
        r = 0;
out:
        free(p.all);
        json_decref(root);
        return r;
}
