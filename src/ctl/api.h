/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpuctl's side of the control API (docs/api.md): one call to vgpud with its errors turned into
 * one line on stderr, and checked views of the API's objects (GPU, GPU instance, vGPU, type, GPU
 * instance profile). A view borrows its strings from the JSON document it was read from.
 */
#ifndef VGPU_CTL_API_H
#define VGPU_CTL_API_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ctl/ctl.h"

/* Longest user-given ID (GPU index or UUID, vGPU UUID) put into a path, after escaping. */
#define API_ID_MAX 128

struct api_gpu {
        json_int_t id;
        const char *uuid, *model, *name, *pci_bus_id, *backend, *mode;
        json_int_t fb_total_mib, fb_used_mib, fb_free_mib;
        json_t *vgpus;         /* array of vGPU UUID strings */
        json_t *gpu_instances; /* array of GPU instance objects */
};

struct api_gi {
        json_int_t id, gpu, profile_id, start, size;
        const char *profile; /* "3g.40gb" */
        bool implicit;
        json_t *vgpus;
};

struct api_vgpu {
        const char *uuid, *gpu_uuid, *type, *cls, *state, *created_at;
        json_int_t gpu, type_id, fb_mib, owner_uid, guests;
        json_int_t placement;    /* -1: null */
        json_int_t gpu_instance; /* -1: null (not MIG) */
        json_int_t engine_pid;   /* -1: null */
        json_int_t fb_used_mib;  /* -1: not reported */
        double util_pct;         /* -1: not scheduled (no "scheduler" object) */
        const char *license;     /* "License Status" text; NULL: not reported */
};

struct api_type {
        json_int_t id, fb_mib, max_instances, max_documented;
        json_int_t max_mixed;      /* -1: absent (MIG-backed) */
        json_int_t placement_size; /* -1: absent; 0: no mixed size */
        json_int_t gi_profile;     /* -1: null (time-sliced) */
        const char *name, *cls;
        bool media_ext;
        int creatable;      /* -1: absent (the catalog), else 0/1 */
        json_t *placements; /* array of {gpu_instance, placement}, or NULL */
};

struct api_profile {
        json_int_t id, compute_slices, memory_slices, instances_total, instances_free;
        json_int_t memory_mib, sm_count, ce, dec, enc, jpeg, ofa;
        const char *name;
        bool p2p;
        json_t *starts; /* placements.starts: array of start slices */
};

/*
 * api_call - send method path (body may be NULL; not stolen) to vgpud at opts->socket. On a 2xx
 * reply sets *ret_doc to its body (NULL when empty; the caller decrefs) and returns 0. Otherwise
 * prints one line on stderr (the server's error message, or why vgpud could not be reached or
 * answered badly) and returns 1, the exit status; *ret_doc untouched.
 */
int api_call(const struct ctl_opts *opts, const char *method, const char *path, json_t *body,
             json_t **ret_doc);

/*
 * api_get - api_call for a GET whose reply must be a JSON object; the same returns. On a reply
 * that is not an object, prints why and returns 1.
 */
int api_get(const struct ctl_opts *opts, const char *path, json_t **ret_doc);

/*
 * api_gpu_read / api_gi_read / api_vgpu_read / api_type_read / api_profile_read - check that o is
 * the API object of that kind (members present, of the right JSON types, in range, strings free
 * of control characters) and fill *ret with a view that borrows from o. Return 0, or print one
 * line on stderr saying what vgpud sent wrong and return 1 (*ret untouched).
 */
int api_gpu_read(json_t *o, struct api_gpu *ret);
int api_gi_read(json_t *o, struct api_gi *ret);
int api_vgpu_read(json_t *o, struct api_vgpu *ret);
int api_type_read(json_t *o, struct api_type *ret);
int api_profile_read(json_t *o, struct api_profile *ret);

/*
 * api_array - the array member key of doc (what names the document in errors). Returns it
 * (borrowed), or prints one line and returns NULL when doc lacks it.
 */
json_t *api_array(json_t *doc, const char *key, const char *what);

/*
 * api_escape_id - percent-encode a user-given ID for a path or query into buf (API_ID_MAX bytes).
 * Returns 0, or prints one line ("what is too long") and returns 1.
 */
int api_escape_id(const char *id, const char *what, char *buf);

/*
 * api_id_json - an ID for a request body: a JSON integer when id is all digits (a GPU index, a
 * profile ID), else a string. Returns a new reference, or NULL when out of memory.
 */
json_t *api_id_json(const char *id);

/* api_bad_reply - print "vgpud sent a malformed WHAT: DETAIL" on stderr. Returns 1. */
int api_bad_reply(const char *what, const char *detail);

#endif
