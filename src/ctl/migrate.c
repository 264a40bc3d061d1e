// SPDX-License-Identifier: Apache-2.0
// vgpuctl suspend, resume, migrate (docs/migration.md).
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl/api.h"
#include "ctl/ctl.h"
#include "ctl/out.h"

/* What the engine measured: "1.2 GiB of data in a 40 MiB image, 0.84 s". */
static void print_transfer(const json_t *doc)
{
        const json_t *t = json_object_get(doc, "transfer");
        double data = (double)json_integer_value(json_object_get(t, "data_bytes"));
        double img = (double)json_integer_value(json_object_get(t, "image_bytes"));
        double secs = json_number_value(json_object_get(t, "seconds"));

        if (!t)
                return;
        if (json_object_get(t, "stun_ms"))
                printf("  %.1f MiB of framebuffer data copied (%s, %" JSON_INTEGER_FORMAT
                       " rounds) in %.1f ms; guests paused %.1f ms\n",
                       data / 1048576.0, json_string_value(json_object_get(t, "mode")),
                       json_integer_value(json_object_get(t, "rounds")), secs * 1e3,
                       json_number_value(json_object_get(t, "stun_ms")));
        else
                printf("  %.1f MiB of framebuffer data (%.1f MiB stored) in %.1f ms\n",
                       data / 1048576.0, img / 1048576.0, secs * 1e3);
}

static int post(const struct ctl_opts *opts, const char *uuid, const char *action, json_t *body,
                const char *done)
{
        char esc[API_ID_MAX], path[API_ID_MAX + 32];
        json_t *doc = NULL;

        if (api_escape_id(uuid, "the vGPU UUID", esc)) {
                json_decref(body);
                return 1;
        }
        snprintf(path, sizeof(path), "/v1/vgpus/%s/%s", esc, action);
        if (api_call(opts, "POST", path, body, &doc)) {
                json_decref(body);
                return 1;
        }
        json_decref(body);
        if (opts->json)
                return out_json(doc);
        if (json_is_string(json_object_get(doc, "to"))) {
                /* to another vgpud: it is there now, not here */
                printf("%s vGPU %s to the vgpud at %s\n", done, uuid,
                       json_string_value(json_object_get(doc, "to")));
                print_transfer(doc);
                json_decref(doc);
                return 0;
        }
        printf("%s vGPU %s: now %s on GPU %" JSON_INTEGER_FORMAT " as %s\n", done, uuid,
               json_string_value(json_object_get(doc, "state")),
               json_integer_value(json_object_get(doc, "gpu")),
               json_string_value(json_object_get(doc, "type")));
        if (json_object_get(json_object_get(doc, "transfer"), "image"))
                printf("  image: %s\n", json_string_value(json_object_get(
                                                json_object_get(doc, "transfer"), "image")));
        print_transfer(doc);
        json_decref(doc);
        return 0;
}

/* UUID plus one option taking a value (--to or --gpu); the rest is an error. */
static int parse(int argc, char **argv, const char *opt, const char **ret_uuid,
                 const char **ret_val, const char *usage)
{
        *ret_uuid = NULL;
        *ret_val = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], opt) == 0 && i + 1 < argc) {
                        *ret_val = argv[++i];
                } else if (argv[i][0] != '-' && !*ret_uuid) {
                        *ret_uuid = argv[i];
                } else {
                        out_error("usage: %s", usage);
                        return 1;
                }
        }
        if (!*ret_uuid)
                return out_error("usage: %s", usage);
        return 0;
}

int ctl_suspend(int argc, char **argv, const struct ctl_opts *opts)
{
        const char *uuid, *to;
        json_t *body = NULL;

        if (parse(argc, argv, "--to", &uuid, &to, "vgpuctl suspend UUID [--to /ABSOLUTE/FILE]"))
                return 1;
        if (to && to[0] != '/')
                return out_error("--to needs an absolute path (vgpud writes the file)");
        if (to)
                body = json_pack("{s:s}", "path", to);
        return post(opts, uuid, "suspend", body, "Suspended");
}

static json_t *gpu_body(const char *gpu)
{
        char *end;
        long idx = strtol(gpu, &end, 10);

        if (*gpu && !*end && idx >= 0)
                return json_pack("{s:i}", "gpu", (int)idx);
        return json_pack("{s:s}", "gpu", gpu);
}

int ctl_resume(int argc, char **argv, const struct ctl_opts *opts)
{
        const char *uuid, *gpu;

        if (parse(argc, argv, "--gpu", &uuid, &gpu, "vgpuctl resume UUID [--gpu ID]"))
                return 1;
        return post(opts, uuid, "resume", gpu ? gpu_body(gpu) : NULL, "Resumed");
}

int ctl_migrate(int argc, char **argv, const struct ctl_opts *opts)
{
        const char *uuid = NULL, *gpu = NULL, *to = NULL;
        const char *usage = "vgpuctl migrate UUID --gpu ID|--to HOST:PORT [--precopy]";
        bool precopy = false;
        json_t *body;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--gpu") == 0 && i + 1 < argc)
                        gpu = argv[++i];
                else if (strcmp(argv[i], "--precopy") == 0)
                        precopy = true;
                else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
                        to = argv[++i];
                else if (argv[i][0] != '-' && !uuid)
                        uuid = argv[i];
                else
                        return out_error("usage: %s", usage);
        }
        if (!uuid || (!gpu && !to) || (gpu && to))
                return out_error("usage: %s", usage);
        body = to ? json_pack("{s:s}", "to", to) : gpu_body(gpu);
        if (precopy)
                json_object_set_new(body, "precopy", json_true());
        return post(opts, uuid, "migrate", body, "Migrated");
}
