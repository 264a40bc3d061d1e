// SPDX-License-Identifier: Apache-2.0
// `vgpuctl gpus` and `vgpuctl mode`: the physical GPUs vgpud manages, and their vGPU mode
// (homogeneous, heterogeneous, MIG).
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl/api.h"
#include "ctl/ctl.h"
#include "ctl/out.h"

static void gpu_header(void)
{
        printf("%-3s  %-16s  %-14s  %-13s  %-17s  %5s  %4s  %s\n", "GPU", "Bus-Id", "Model", "Mode",
               "FB Used/Total", "vGPUs", "GIs", "UUID");
}

static void gpu_row(const struct api_gpu *g)
{
        char fb[48];

        snprintf(fb, sizeof(fb), "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT " MiB",
                 g->fb_used_mib, g->fb_total_mib);
        printf("%3" JSON_INTEGER_FORMAT "  %-16s  %-14s  %-13s  %-17s  %5zu  %4zu  %s\n", g->id,
               g->pci_bus_id, g->model, g->mode, fb, json_array_size(g->vgpus),
               json_array_size(g->gpu_instances), g->uuid);
}

/*
 * Fetch GPU id (NULL: every GPU) and check it. *ret_doc receives what vgpud sent, *ret_list a new
 * reference to the array of GPU objects (of one element when id is given). Returns 0 or 1.
 */
static int fetch_gpus(const struct ctl_opts *opts, const char *id, json_t **ret_doc,
                      json_t **ret_list)
{
        char esc[API_ID_MAX], path[API_ID_MAX + 32];
        json_t *doc = NULL, *list, *o;
        size_t i;

        if (id) {
                if (api_escape_id(id, "the GPU ID", esc))
                        return 1;
                snprintf(path, sizeof(path), "/v1/gpus/%s", esc);
        } else {
                snprintf(path, sizeof(path), "/v1/gpus");
        }
        if (api_get(opts, path, &doc))
                return 1;
        if (id) {
                list = json_pack("[O]", doc);
        } else {
                list = api_array(doc, "gpus", "GPU list");
                if (!list) {
                        json_decref(doc);
                        return 1;
                }
                json_incref(list);
        }
        json_array_foreach(list, i, o)
        {
                struct api_gpu g;

                if (api_gpu_read(o, &g)) {
                        json_decref(list);
                        json_decref(doc);
                        return 1;
                }
        }
        *ret_doc = doc;
        *ret_list = list;
        return 0;
}

int ctl_gpus(int argc, char **argv, const struct ctl_opts *opts)
{
        static const struct option longopts[] = {
                {"gpu", required_argument, NULL, 'i'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        const char *id = NULL;
        json_t *doc, *list, *o;
        size_t i;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "i:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'i':
                        id = optarg;
                        break;
                case 'h':
                        puts("usage: vgpuctl [--json] gpus [ID]");
                        return 0;
                default:
                        return out_bad_option("gpus", argv[optind - 1]);
                }
        }
        if (optind < argc && !id)
                id = argv[optind++];
        if (optind < argc)
                return out_error("gpus: unexpected argument '%s'", argv[optind]);
        if (fetch_gpus(opts, id, &doc, &list))
                return 1;
        if (opts->json) {
                json_decref(list);
                return out_json(doc);
        }
        if (json_array_size(list) == 0) {
                puts("No GPUs are managed by vgpud");
        } else {
                gpu_header();
                json_array_foreach(list, i, o)
                {
                        struct api_gpu g;

                        api_gpu_read(o, &g);
                        gpu_row(&g);
                }
        }
        json_decref(list);
        json_decref(doc);
        return 0;
}

int ctl_mode(int argc, char **argv, const struct ctl_opts *opts)
{
        static const char usage[] = "usage: vgpuctl [--json] mode [--gpu ID] "
                                    "[homogeneous|heterogeneous|mig]";
        static const struct option longopts[] = {
                {"gpu", required_argument, NULL, 'i'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        const char *id = NULL, *mode = NULL;
        char esc[API_ID_MAX], path[API_ID_MAX + 32];
        json_t *doc = NULL, *list, *body, *o;
        struct api_gpu g;
        size_t i;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "i:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'i':
                        id = optarg;
                        break;
                case 'h':
                        puts(usage);
                        return 0;
                default:
                        return out_bad_option("mode", argv[optind - 1]);
                }
        }
        if (optind < argc)
                mode = argv[optind++];
        if (optind < argc)
                return out_error("mode: unexpected argument '%s'", argv[optind]);

        if (!mode) {
                /* No mode given: show each GPU's. */
                if (fetch_gpus(opts, id, &doc, &list))
                        return 1;
                if (opts->json) {
                        json_decref(list);
                        return out_json(doc);
                }
                json_array_foreach(list, i, o)
                {
                        api_gpu_read(o, &g);
                        printf("GPU %" JSON_INTEGER_FORMAT " (%s): %s\n", g.id, g.pci_bus_id,
                               g.mode);
                }
                json_decref(list);
                json_decref(doc);
                return 0;
        }
        /* A mode change on every GPU at once is rarely what anyone means: ask for the GPU. */
        if (!id)
                return out_error("mode: give --gpu ID to change a GPU's mode to %s", mode);
        if (api_escape_id(id, "the GPU ID", esc))
                return 1;
        snprintf(path, sizeof(path), "/v1/gpus/%s/mode", esc);
        body = json_pack("{s:s}", "mode", mode);
        if (!body)
                return out_error("mode: out of memory");
        c = api_call(opts, "PUT", path, body, &doc);
        json_decref(body);
        if (c)
                return 1;
        if (!json_is_object(doc)) {
                json_decref(doc);
                return api_bad_reply("GPU object", "not a JSON object");
        }
        if (api_gpu_read(doc, &g)) {
                json_decref(doc);
                return 1;
        }
        if (opts->json)
                return out_json(doc);
        printf("GPU %" JSON_INTEGER_FORMAT " (%s) is now in %s mode\n", g.id, g.pci_bus_id, g.mode);
        json_decref(doc);
        return 0;
}
