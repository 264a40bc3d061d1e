// SPDX-License-Identifier: Apache-2.0
// gpus.json for the stand-in NVML (tests/fakegpu/README.md): reading and checking it into a
// struct fake_cfg, the stamp that tells a changed file, and the MIG calls' changes to it, made
// under flock(<dir>/gpus.lock) and written to a temporary file renamed over the old one.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_nvml.h"

/* Where a parse failed, and why; the first failure wins. */
struct parse {
        char *why;
        size_t why_len;
        bool failed;
};

static void parse_fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void parse_fail(struct parse *p, const char *fmt, ...)
{
        va_list ap;

        if (p->failed)
                return;
        p->failed = true;
        va_start(ap, fmt);
        vsnprintf(p->why, p->why_len, fmt, ap);
        va_end(ap);
}

/* An unsigned integer member in [0, max]; a missing one reads def unless it is required. */
static unsigned long long parse_uint(struct parse *p, const json_t *o, const char *where,
                                     const char *key, bool required, unsigned long long def,
                                     unsigned long long max)
{
        const json_t *v = json_object_get(o, key);

        if (!v && !required)
                return def;
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (unsigned long long)json_integer_value(v) > max) {
                parse_fail(p, "%s: \"%s\" must be an integer from 0 to %llu", where, key, max);
                return def;
        }
        return (unsigned long long)json_integer_value(v);
}

/* A string member that fits in len bytes with its NUL. */
static void parse_str(struct parse *p, const json_t *o, const char *where, const char *key,
                      char *buf, size_t len)
{
        const char *s = json_string_value(json_object_get(o, key));

        if (!s || strlen(s) >= len) {
                parse_fail(p, "%s: \"%s\" must be a string of fewer than %zu bytes", where, key,
                           len);
                return;
        }
        memcpy(buf, s, strlen(s) + 1);
}

static void parse_profile(struct parse *p, const json_t *o, const char *where,
                          struct fake_profile *prof)
{
        const json_t *pl = json_object_get(o, "placements");
        size_t i;
        const json_t *v;

        prof->index = (unsigned)parse_uint(p, o, where, "profile", true, 0,
                                           NVML_GPU_INSTANCE_PROFILE_COUNT - 1);
        prof->id = (unsigned)parse_uint(p, o, where, "id", true, 0, UINT_MAX);
        prof->slices = (unsigned)parse_uint(p, o, where, "slices", true, 1, FAKE_MAX_SLICES);
        prof->mem_mib = parse_uint(p, o, where, "mem_mib", true, 0, 1ULL << 40);
        prof->sms = (unsigned)parse_uint(p, o, where, "sms", true, 0, 1U << 16);
        prof->count = (unsigned)parse_uint(p, o, where, "count", true, 0, FAKE_MAX_GI);
        if (prof->slices == 0)
                parse_fail(p, "%s: \"slices\" must be at least 1", where);
        if (!json_is_array(pl) || json_array_size(pl) > FAKE_MAX_PLACEMENTS) {
                parse_fail(p, "%s: \"placements\" must be an array of at most %d [start, size]",
                           where, FAKE_MAX_PLACEMENTS);
                return;
        }
        json_array_foreach(pl, i, v)
        {
                json_t *s = json_array_get(v, 0), *z = json_array_get(v, 1);
                json_int_t start = json_integer_value(s), size = json_integer_value(z);

                if (json_array_size(v) != 2 || !json_is_integer(s) || !json_is_integer(z) ||
                    start < 0 || size < 1 || start + size > FAKE_MAX_SLICES) {
                        parse_fail(p, "%s: placement %zu must be [start, size] within %d slices",
                                   where, i, FAKE_MAX_SLICES);
                        return;
                }
                prof->placements[i].start = (unsigned)start;
                prof->placements[i].size = (unsigned)size;
        }
        prof->n_placements = (unsigned)json_array_size(pl);
}

static void parse_ci(struct parse *p, const json_t *o, const char *where,
                     const struct fake_profile *prof, struct fake_gi *gi)
{
        struct fake_ci *ci = &gi->ci[gi->n_ci];

        ci->id = (unsigned)parse_uint(p, o, where, "id", true, 0, FAKE_MAX_CI_ID - 1);
        ci->slices = (unsigned)parse_uint(p, o, where, "slices", true, 1, prof->slices);
        /* By default its share of its GPU instance's SMs. */
        ci->sms = (unsigned)parse_uint(p, o, where, "sms", false,
                                       prof->sms * ci->slices / prof->slices, 1U << 16);
        parse_str(p, o, where, "uuid", ci->uuid, sizeof(ci->uuid));
        if (ci->slices == 0)
                parse_fail(p, "%s: \"slices\" must be at least 1", where);
        if (fake_ci_find(gi, ci->id))
                parse_fail(p, "%s: compute instance id %u appears twice", where, ci->id);
        gi->n_ci++;
}

static void parse_gi(struct parse *p, const json_t *o, const char *where, struct fake_gpu *gpu)
{
        struct fake_gi *gi = &gpu->gi[gpu->n_gi];
        const struct fake_profile *prof;
        const json_t *cis = json_object_get(o, "compute_instances");
        char at[160];
        size_t i;
        const json_t *v;

        gi->id = (unsigned)parse_uint(p, o, where, "id", true, 0, FAKE_MAX_GI_ID - 1);
        gi->placement.start =
                (unsigned)parse_uint(p, o, where, "start", true, 0, FAKE_MAX_SLICES - 1);
        gi->placement.size = (unsigned)parse_uint(p, o, where, "size", true, 1,
                                                  FAKE_MAX_SLICES - gi->placement.start);
        prof = fake_profile_by_id(
                gpu, (unsigned)parse_uint(p, o, where, "profile_id", true, 0, UINT_MAX));
        if (p->failed)
                return;
        if (!prof) {
                parse_fail(p, "%s: \"profile_id\" names none of gi_profiles", where);
                return;
        }
        if (fake_gi_find(gpu, gi->id)) {
                parse_fail(p, "%s: GPU instance id %u appears twice", where, gi->id);
                return;
        }
        gi->profile = (unsigned)(prof - gpu->profiles);
        gi->n_ci = 0;
        if (cis && (!json_is_array(cis) || json_array_size(cis) > FAKE_MAX_CI_ID)) {
                parse_fail(p, "%s: \"compute_instances\" must be an array of at most %d", where,
                           FAKE_MAX_CI_ID);
                return;
        }
        json_array_foreach(cis, i, v)
        {
                snprintf(at, sizeof(at), "%s compute instance %zu", where, i);
                parse_ci(p, v, at, prof, gi);
        }
        gpu->n_gi++;
}

static void parse_gpu(struct parse *p, const json_t *o, unsigned index, struct fake_gpu *gpu)
{
        const json_t *profs = json_object_get(o, "gi_profiles");
        const json_t *gis = json_object_get(o, "gpu_instances");
        const json_t *mig = json_object_get(o, "mig_mode");
        const json_t *accessible = json_object_get(o, "accessible");
        char where[32], at[96];
        unsigned function;
        int end = 0;
        size_t i;
        const json_t *v;

        snprintf(where, sizeof(where), "gpus[%u]", index);
        if (!json_is_object(o)) {
                parse_fail(p, "%s must be an object", where);
                return;
        }
        parse_str(p, o, where, "name", gpu->name, sizeof(gpu->name));
        parse_str(p, o, where, "uuid", gpu->uuid, sizeof(gpu->uuid));
        parse_str(p, o, where, "bus_id", gpu->bus_id, sizeof(gpu->bus_id));
        gpu->pci_device_id = (unsigned)parse_uint(p, o, where, "pci_device_id", true, 0, 0xffff);
        gpu->mem_mib = parse_uint(p, o, where, "mem_mib", true, 0, 1ULL << 40);
        gpu->sms = (unsigned)parse_uint(p, o, where, "sms", false, 0, 1U << 16);
        if (mig && !json_is_boolean(mig))
                parse_fail(p, "%s: \"mig_mode\" must be true or false", where);
        gpu->mig_mode = json_is_true(mig);
        if (accessible && !json_is_boolean(accessible))
                parse_fail(p, "%s: \"accessible\" must be true or false", where);
        gpu->accessible = !json_is_false(accessible);
        if (!p->failed && (sscanf(gpu->bus_id, "%x:%x:%x.%x%n", &gpu->domain, &gpu->bus,
                                  &gpu->device, &function, &end) != 4 ||
                           gpu->bus_id[end] != '\0'))
                parse_fail(p, "%s: \"bus_id\" must read domain:bus:device.function", where);

        if (profs && (!json_is_array(profs) || json_array_size(profs) > FAKE_MAX_PROFILES)) {
                parse_fail(p, "%s: \"gi_profiles\" must be an array of at most %d", where,
                           FAKE_MAX_PROFILES);
                return;
        }
        json_array_foreach(profs, i, v)
        {
                struct fake_profile *prof = &gpu->profiles[i];

                snprintf(at, sizeof(at), "%s gi_profiles[%zu]", where, i);
                parse_profile(p, v, at, prof);
                for (unsigned k = 0; k < i && !p->failed; k++) {
                        if (gpu->profiles[k].index == prof->index ||
                            gpu->profiles[k].id == prof->id)
                                parse_fail(p, "%s: profile %u or id %u appears twice", at,
                                           prof->index, prof->id);
                }
                gpu->n_profiles = (unsigned)i + 1;
        }
        gpu->mig_capable = gpu->n_profiles > 0;

        /* GPU instances exist only in MIG mode; listed otherwise, they are left out. */
        if (gis && (!json_is_array(gis) || json_array_size(gis) > FAKE_MAX_GI)) {
                parse_fail(p, "%s: \"gpu_instances\" must be an array of at most %d", where,
                           FAKE_MAX_GI);
                return;
        }
        if (!gpu->mig_mode)
                return;
        json_array_foreach(gis, i, v)
        {
                snprintf(at, sizeof(at), "%s gpu_instances[%zu]", where, i);
                parse_gi(p, v, at, gpu);
        }
}

/* Check root into cfg: 0, or -1 with the reason. */
static int cfg_parse(const json_t *root, struct fake_cfg *cfg, char *why, size_t why_len)
{
        struct parse p = {.why = why, .why_len = why_len};
        const json_t *gpus = json_object_get(root, "gpus");
        size_t i;
        const json_t *v;

        memset(cfg, 0, sizeof(*cfg));
        if (!json_is_array(gpus) || json_array_size(gpus) > FAKE_MAX_GPUS) {
                parse_fail(&p, "\"gpus\" must be an array of at most %d GPUs", FAKE_MAX_GPUS);
                return -1;
        }
        json_array_foreach(gpus, i, v)
        {
                parse_gpu(&p, v, (unsigned)i, &cfg->gpus[i]);
                if (p.failed)
                        return -1;
                cfg->n_gpus = (unsigned)i + 1;
        }
        return 0;
}

int fake_cfg_read(const char *path, json_t **ret_doc, struct fake_cfg **ret_cfg,
                  struct fake_stamp *ret_stamp, char *why, size_t why_len)
{
        struct fake_cfg *cfg;
        json_error_t jerr;
        struct stat st;
        json_t *doc;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                snprintf(why, why_len, "%s: %s", path, strerror(errno));
                return -1;
        }
        /* The stamp of the very file read, so that a rename after this is seen next time. */
        if (fstat(fd, &st) < 0) {
                snprintf(why, why_len, "%s: %s", path, strerror(errno));
                goto err_fd;
        }
        doc = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc) {
                snprintf(why, why_len, "%s:%d: %s", path, jerr.line, jerr.text);
                goto err_fd;
        }
        cfg = malloc(sizeof(*cfg));
        if (!cfg) {
                snprintf(why, why_len, "out of memory");
                goto err_doc;
        }
        if (cfg_parse(doc, cfg, why, why_len) < 0)
                goto err_cfg;
        close(fd);
        ret_stamp->dev = st.st_dev;
        ret_stamp->ino = st.st_ino;
        ret_stamp->size = st.st_size;
        ret_stamp->mtime = st.st_mtim;
        *ret_doc = doc;
        *ret_cfg = cfg;
        return 0;

err_cfg:
        free(cfg);
err_doc:
        json_decref(doc);
err_fd:
        close(fd);
        return -1;
}

int fake_stamp_get(const char *path, struct fake_stamp *ret)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return -1;
        ret->dev = st.st_dev;
        ret->ino = st.st_ino;
        ret->size = st.st_size;
        ret->mtime = st.st_mtim;
        return 0;
}

bool fake_stamp_equal(const struct fake_stamp *a, const struct fake_stamp *b)
{
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
               a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

struct fake_gi *fake_gi_find(struct fake_gpu *gpu, unsigned id)
{
        for (unsigned i = 0; i < gpu->n_gi; i++) {
                if (gpu->gi[i].id == id)
                        return &gpu->gi[i];
        }
        return NULL;
}

struct fake_ci *fake_ci_find(struct fake_gi *gi, unsigned id)
{
        for (unsigned i = 0; i < gi->n_ci; i++) {
                if (gi->ci[i].id == id)
                        return &gi->ci[i];
        }
        return NULL;
}

const struct fake_profile *fake_profile_by_id(const struct fake_gpu *gpu, unsigned id)
{
        for (unsigned i = 0; i < gpu->n_profiles; i++) {
                if (gpu->profiles[i].id == id)
                        return &gpu->profiles[i];
        }
        return NULL;
}

int fake_txn_begin(int *ret_lock_fd)
{
        char path[sizeof(fake.dir) + 16];
        int fd, r;

        snprintf(path, sizeof(path), "%s/gpus.lock", fake.dir);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
                return errno == EACCES || errno == EPERM || errno == EROFS
                               ? NVML_ERROR_NO_PERMISSION
                               : NVML_ERROR_UNKNOWN;
        while (flock(fd, LOCK_EX) < 0) {
                if (errno != EINTR) {
                        close(fd);
                        return NVML_ERROR_UNKNOWN;
                }
        }
        r = fake_reload_locked(true);
        if (r != NVML_SUCCESS) {
                close(fd);
                return r;
        }
        *ret_lock_fd = fd;
        return NVML_SUCCESS;
}

int fake_txn_commit(void)
{
        char tmp[sizeof(fake.dir) + 48];
        int fd, ok;

        snprintf(tmp, sizeof(tmp), "%s/.gpus.json.%ld.tmp", fake.dir, (long)getpid());
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                goto err;
        ok = json_dumpfd(fake.doc, fd, JSON_INDENT(2)) == 0 && write(fd, "\n", 1) == 1 &&
             fsync(fd) == 0;
        if (close(fd) < 0 || !ok || rename(tmp, fake.json_path) < 0) {
                unlink(tmp);
                goto err;
        }
        return fake_reload_locked(true);

err:
        /* fake.doc holds a change that is not in the file: read the file again next time. */
        memset(&fake.stamp, 0, sizeof(fake.stamp));
        return NVML_ERROR_UNKNOWN;
}

void fake_txn_end(int lock_fd)
{
        flock(lock_fd, LOCK_UN);
        close(lock_fd);
}

/* The value of member "id" of an array element, or -1. */
static json_int_t doc_id(const json_t *o)
{
        const json_t *v = json_object_get(o, "id");

        return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* Member key of o, an array, created empty if absent; NULL if it is something else. */
static json_t *doc_array(json_t *o, const char *key)
{
        json_t *a = json_object_get(o, key);

        if (!a) {
                a = json_array();
                if (!a || json_object_set_new(o, key, a) < 0)
                        return NULL;
        }
        return json_is_array(a) ? a : NULL;
}

/* Insert item (a reference is stolen) into array a before the first element with a larger id. */
static int doc_insert_by_id(json_t *a, json_t *item, unsigned id)
{
        size_t i;

        if (!item)
                return NVML_ERROR_MEMORY;
        for (i = 0; i < json_array_size(a); i++) {
                if (doc_id(json_array_get(a, i)) > (json_int_t)id)
                        break;
        }
        return json_array_insert_new(a, i, item) == 0 ? NVML_SUCCESS : NVML_ERROR_MEMORY;
}

/* Remove the element with id from array a. */
static int doc_remove_by_id(json_t *a, unsigned id)
{
        for (size_t i = 0; i < json_array_size(a); i++) {
                if (doc_id(json_array_get(a, i)) == (json_int_t)id)
                        return json_array_remove(a, i) == 0 ? NVML_SUCCESS : NVML_ERROR_UNKNOWN;
        }
        return NVML_ERROR_NOT_FOUND;
}

/* GPU gpu's gpu_instances array in fake.doc. */
static json_t *doc_gis(unsigned gpu)
{
        json_t *g = json_array_get(json_object_get(fake.doc, "gpus"), gpu);

        return g ? doc_array(g, "gpu_instances") : NULL;
}

/* GPU instance gi_id's compute_instances array in fake.doc. */
static json_t *doc_cis(unsigned gpu, unsigned gi_id)
{
        json_t *gis = doc_gis(gpu);

        for (size_t i = 0; i < json_array_size(gis); i++) {
                json_t *gi = json_array_get(gis, i);

                if (doc_id(gi) == (json_int_t)gi_id)
                        return doc_array(gi, "compute_instances");
        }
        return NULL;
}

int fake_doc_add_gi(unsigned gpu, unsigned id, unsigned profile_id,
                    const struct fake_placement *placement)
{
        json_t *gis = doc_gis(gpu);

        if (!gis)
                return NVML_ERROR_UNKNOWN;
        return doc_insert_by_id(gis,
                                json_pack("{s:i, s:I, s:i, s:i, s:[]}", "id", (int)id, "profile_id",
                                          (json_int_t)profile_id, "start", (int)placement->start,
                                          "size", (int)placement->size, "compute_instances"),
                                id);
}

int fake_doc_del_gi(unsigned gpu, unsigned id)
{
        json_t *gis = doc_gis(gpu);

        return gis ? doc_remove_by_id(gis, id) : NVML_ERROR_UNKNOWN;
}

int fake_doc_add_ci(unsigned gpu, unsigned gi_id, const struct fake_ci *ci)
{
        json_t *cis = doc_cis(gpu, gi_id);

        if (!cis)
                return NVML_ERROR_UNKNOWN;
        return doc_insert_by_id(cis,
                                json_pack("{s:i, s:i, s:i, s:s}", "id", (int)ci->id, "slices",
                                          (int)ci->slices, "sms", (int)ci->sms, "uuid", ci->uuid),
                                ci->id);
}

int fake_doc_del_ci(unsigned gpu, unsigned gi_id, unsigned ci_id)
{
        json_t *cis = doc_cis(gpu, gi_id);

        return cis ? doc_remove_by_id(cis, ci_id) : NVML_ERROR_UNKNOWN;
}
