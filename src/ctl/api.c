// SPDX-License-Identifier: Apache-2.0
// vgpuctl's calls to vgpud: transport and HTTP errors become one line on stderr, and every object
// vgpud sends is checked (json_unpack formats, ranges, printable strings) before anything prints.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/http_client.h"
#include "ctl/api.h"
#include "ctl/out.h"

int api_bad_reply(const char *what, const char *detail)
{
        return out_error("vgpud sent a malformed %s: %s", what, detail);
}

/* Copy text with control characters (a hostile server's escape sequences) replaced. */
static void sanitize(const char *in, char *out, size_t len)
{
        size_t o = 0;

        for (; *in && o + 1 < len; in++)
                out[o++] = ((unsigned char)*in < 0x20 || *in == 0x7f) ? '?' : *in;
        out[o] = '\0';
}

static int transport_error(const struct ctl_opts *opts, int err)
{
        switch (err) {
        case -ENOENT:
        case -ECONNREFUSED:
        case -ENOTSOCK:
                return out_error("cannot reach vgpud at %s: %s (is vgpud running? --socket PATH "
                                 "or VGPU_SOCKET selects another socket%s%s)",
                                 opts->socket, strerror(-err), opts->unreachable_hint ? "; " : "",
                                 opts->unreachable_hint ? opts->unreachable_hint : "");
        case -EACCES:
        case -EPERM:
                return out_error("cannot reach vgpud at %s: %s (its socket is open to root and "
                                 "vgpud's socket group)",
                                 opts->socket, strerror(-err));
        case -ENAMETOOLONG:
                return out_error("cannot reach vgpud at %s: the socket path is too long",
                                 opts->socket);
        case -ETIMEDOUT:
                return out_error("vgpud at %s did not answer within %d s", opts->socket,
                                 HTTP_TIMEOUT_MS / 1000);
        case -EPROTO:
                return out_error("vgpud at %s sent a malformed HTTP response (VGPU_LOG=debug "
                                 "says more)",
                                 opts->socket);
        case -EMSGSIZE:
                return out_error("vgpud at %s sent a response larger than vgpuctl accepts",
                                 opts->socket);
        default:
                return out_error("talking to vgpud at %s: %s", opts->socket, strerror(-err));
        }
}

/* The one line for an HTTP error reply: the server's message when it sent the API's error body. */
static int http_error(const char *method, const char *path, int status, json_t *doc)
{
        const char *msg = NULL, *code = NULL;
        char clean[1024];

        if (doc)
                json_unpack(doc, "{s:{s?s, s?s}}", "error", "message", &msg, "code", &code);
        if (msg && *msg) {
                sanitize(msg, clean, sizeof(clean));
                return out_error("%s", clean);
        }
        if (code && *code) {
                sanitize(code, clean, sizeof(clean));
                return out_error("vgpud refused %s %s: HTTP %d %s", method, path, status, clean);
        }
        return out_error("vgpud answered %s %s with HTTP %d and no error message", method, path,
                         status);
}

int api_call(const struct ctl_opts *opts, const char *method, const char *path, json_t *body,
             json_t **ret_doc)
{
        json_t *doc = NULL;
        int status = 0, r;

        r = http_call(opts->socket, method, path, body, &status, &doc);
        if (r < 0)
                return transport_error(opts, r);
        if (status < 200 || status > 299) {
                r = http_error(method, path, status, doc);
                json_decref(doc);
                return r;
        }
        *ret_doc = doc;
        return 0;
}

int api_get(const struct ctl_opts *opts, const char *path, json_t **ret_doc)
{
        json_t *doc = NULL;

        if (api_call(opts, "GET", path, NULL, &doc))
                return 1;
        if (!json_is_object(doc)) {
                json_decref(doc);
                return out_error("vgpud sent no JSON object for GET %s", path);
        }
        *ret_doc = doc;
        return 0;
}

json_t *api_array(json_t *doc, const char *key, const char *what)
{
        json_t *a = json_object_get(doc, key);
        char detail[128];

        if (!json_is_array(a)) {
                snprintf(detail, sizeof(detail), "'%s' is missing or not an array", key);
                api_bad_reply(what, detail);
                return NULL;
        }
        return a;
}

int api_escape_id(const char *id, const char *what, char *buf)
{
        if (!*id)
                return out_error("%s is empty", what);
        if (http_escape(id, buf, API_ID_MAX) < 0)
                return out_error("%s is too long", what);
        return 0;
}

json_t *api_id_json(const char *id)
{
        size_t n = strspn(id, "0123456789");
        long long v = 0;

        if (n > 0 && n < 10 && id[n] == '\0') {
                for (size_t i = 0; i < n; i++)
                        v = v * 10 + (id[i] - '0');
                return json_integer(v);
        }
        return json_string(id);
}

/* Whether every string (NULL: an absent optional member) is free of control characters. */
static bool strings_ok(int n, ...)
{
        va_list ap;
        bool ok = true;

        va_start(ap, n);
        for (int i = 0; i < n; i++) {
                const char *s = va_arg(ap, const char *);

                for (; s && *s; s++) {
                        if ((unsigned char)*s < 0x20 || *s == 0x7f)
                                ok = false;
                }
        }
        va_end(ap);
        return ok;
}

/* An integer member that may be null: -1 for null; false when it is neither, or negative. */
static bool int_or_null(json_t *v, json_int_t *ret)
{
        if (json_is_null(v)) {
                *ret = -1;
                return true;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return false;
        *ret = json_integer_value(v);
        return true;
}

static bool all_strings(json_t *a)
{
        size_t i;
        json_t *v;

        json_array_foreach(a, i, v)
        {
                if (!json_is_string(v) || !strings_ok(1, json_string_value(v)))
                        return false;
        }
        return true;
}

int api_gpu_read(json_t *o, struct api_gpu *ret)
{
        struct api_gpu g;
        json_error_t e;

        if (json_unpack_ex(o, &e, 0, "{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o}",
                           "id", &g.id, "uuid", &g.uuid, "model", &g.model, "name", &g.name,
                           "pci_bus_id", &g.pci_bus_id, "backend", &g.backend, "mode", &g.mode,
                           "fb_total_mib", &g.fb_total_mib, "fb_used_mib", &g.fb_used_mib,
                           "fb_free_mib", &g.fb_free_mib, "vgpus", &g.vgpus, "gpu_instances",
                           &g.gpu_instances) < 0)
                return api_bad_reply("GPU object", e.text);
        if (g.id < 0 || g.fb_total_mib < 0 || g.fb_used_mib < 0 || g.fb_free_mib < 0)
                return api_bad_reply("GPU object", "a negative number");
        if (!json_is_array(g.vgpus) || !all_strings(g.vgpus) || !json_is_array(g.gpu_instances))
                return api_bad_reply("GPU object", "'vgpus' or 'gpu_instances' is not a list");
        if (!strings_ok(6, g.uuid, g.model, g.name, g.pci_bus_id, g.backend, g.mode))
                return api_bad_reply("GPU object", "a string with control characters");
        *ret = g;
        return 0;
}

int api_gi_read(json_t *o, struct api_gi *ret)
{
        struct api_gi gi;
        json_error_t e;
        int implicit;

        if (json_unpack_ex(o, &e, 0, "{s:I, s:I, s:I, s:s, s:I, s:I, s:b, s:o}", "id", &gi.id,
                           "gpu", &gi.gpu, "profile_id", &gi.profile_id, "profile", &gi.profile,
                           "start", &gi.start, "size", &gi.size, "implicit", &implicit, "vgpus",
                           &gi.vgpus) < 0)
                return api_bad_reply("GPU instance object", e.text);
        if (gi.id < 0 || gi.gpu < 0 || gi.profile_id < 0 || gi.start < 0 || gi.size < 0)
                return api_bad_reply("GPU instance object", "a negative number");
        if (!json_is_array(gi.vgpus) || !all_strings(gi.vgpus) || !strings_ok(1, gi.profile))
                return api_bad_reply("GPU instance object", "a bad 'vgpus' or 'profile'");
        gi.implicit = implicit;
        *ret = gi;
        return 0;
}

int api_vgpu_read(json_t *o, struct api_vgpu *ret)
{
        struct api_vgpu v;
        json_t *placement, *gi, *pid, *used = NULL;
        json_error_t e;

        if (json_unpack_ex(o, &e, 0,
                           "{s:s, s:I, s:s, s:s, s:I, s:s, s:o, s:o, s:I, s:I, s:s, s:o, s:I, "
                           "s:s, s?o}",
                           "uuid", &v.uuid, "gpu", &v.gpu, "gpu_uuid", &v.gpu_uuid, "type", &v.type,
                           "type_id", &v.type_id, "class", &v.cls, "placement", &placement,
                           "gpu_instance", &gi, "fb_mib", &v.fb_mib, "owner_uid", &v.owner_uid,
                           "state", &v.state, "engine_pid", &pid, "guests", &v.guests, "created_at",
                           &v.created_at, "fb_used_mib", &used) < 0)
                return api_bad_reply("vGPU object", e.text);
        if (!int_or_null(placement, &v.placement) || !int_or_null(gi, &v.gpu_instance) ||
            !int_or_null(pid, &v.engine_pid))
                return api_bad_reply("vGPU object",
                                     "'placement', 'gpu_instance' or 'engine_pid' is not a "
                                     "non-negative integer or null");
        v.fb_used_mib = -1;
        v.util_pct = -1;
        v.license = json_string_value(json_object_get(o, "license_status"));
        if (v.license && !strings_ok(1, v.license))
                return api_bad_reply("vGPU object", "a string with control characters");
        if (json_is_object(json_object_get(o, "scheduler")) &&
            json_is_number(json_object_get(json_object_get(o, "scheduler"), "util_pct")))
                v.util_pct = json_number_value(
                        json_object_get(json_object_get(o, "scheduler"), "util_pct"));
        if (used && !int_or_null(used, &v.fb_used_mib))
                return api_bad_reply("vGPU object", "'fb_used_mib' is not an integer");
        if (v.gpu < 0 || v.type_id < 0 || v.fb_mib < 0 || v.owner_uid < 0 || v.guests < 0)
                return api_bad_reply("vGPU object", "a negative number");
        if (!strings_ok(6, v.uuid, v.gpu_uuid, v.type, v.cls, v.state, v.created_at))
                return api_bad_reply("vGPU object", "a string with control characters");
        *ret = v;
        return 0;
}

int api_type_read(json_t *o, struct api_type *ret)
{
        struct api_type t;
        json_t *gip = NULL, *mixed = NULL, *psize = NULL, *creatable = NULL;
        json_error_t e;
        int me;

        t.placements = NULL;
        if (json_unpack_ex(o, &e, 0, "{s:I, s:s, s:s, s:I, s:I, s:I, s:o, s:b, s?o, s?o, s?o, s?o}",
                           "id", &t.id, "name", &t.name, "class", &t.cls, "fb_mib", &t.fb_mib,
                           "max_instances", &t.max_instances, "max_instances_documented",
                           &t.max_documented, "gpu_instance_profile_id", &gip, "media_extensions",
                           &me, "max_instances_mixed", &mixed, "placement_size", &psize,
                           "creatable", &creatable, "placements", &t.placements) < 0)
                return api_bad_reply("vGPU type object", e.text);
        t.max_mixed = t.placement_size = -1;
        if (!int_or_null(gip, &t.gi_profile) || (mixed && !int_or_null(mixed, &t.max_mixed)) ||
            (psize && !int_or_null(psize, &t.placement_size)))
                return api_bad_reply("vGPU type object", "a count is not an integer");
        if (creatable && !json_is_boolean(creatable))
                return api_bad_reply("vGPU type object", "'creatable' is not a boolean");
        if (t.placements && !json_is_array(t.placements))
                return api_bad_reply("vGPU type object", "'placements' is not a list");
        if (t.id < 0 || t.fb_mib < 0 || t.max_instances < 0 || t.max_documented < 0)
                return api_bad_reply("vGPU type object", "a negative number");
        if (!strings_ok(2, t.name, t.cls))
                return api_bad_reply("vGPU type object", "a string with control characters");
        t.creatable = creatable ? json_is_true(creatable) : -1;
        t.media_ext = me;
        *ret = t;
        return 0;
}

int api_profile_read(json_t *o, struct api_profile *ret)
{
        struct api_profile p;
        json_error_t e;
        json_int_t size;
        int p2p;
        size_t i;
        json_t *v;

        if (json_unpack_ex(o, &e, 0,
                           "{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:o, s:I}, s:I, s:I, s:I, "
                           "s:I, s:I, s:b}",
                           "id", &p.id, "name", &p.name, "compute_slices", &p.compute_slices,
                           "memory_slices", &p.memory_slices, "instances_total", &p.instances_total,
                           "instances_free", &p.instances_free, "memory_mib", &p.memory_mib,
                           "sm_count", &p.sm_count, "placements", "starts", &p.starts, "size",
                           &size, "ce", &p.ce, "dec", &p.dec, "enc", &p.enc, "jpeg", &p.jpeg, "ofa",
                           &p.ofa, "p2p", &p2p) < 0)
                return api_bad_reply("GPU instance profile", e.text);
        if (!json_is_array(p.starts))
                return api_bad_reply("GPU instance profile", "'placements.starts' is not a list");
        json_array_foreach(p.starts, i, v)
        {
                if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 63)
                        return api_bad_reply("GPU instance profile", "a start is out of range");
        }
        if (p.id < 0 || p.memory_slices < 0 || p.instances_total < 0 || p.instances_free < 0 ||
            p.memory_mib < 0 || p.sm_count < 0 || p.ce < 0 || p.dec < 0 || p.enc < 0 ||
            p.jpeg < 0 || p.ofa < 0 || p.compute_slices < 0)
                return api_bad_reply("GPU instance profile", "a negative number");
        if (!strings_ok(1, p.name))
                return api_bad_reply("GPU instance profile", "a string with control characters");
        p.p2p = p2p;
        *ret = p;
        return 0;
}
