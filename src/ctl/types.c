// SPDX-License-Identifier: Apache-2.0
// `vgpuctl models`, `vgpuctl types --model M` (the catalog, no daemon) and `vgpuctl types [-s|-c]`
// (what vgpud supports or can create now), in the layouts of `nvidia-smi vgpu -s -v` and
// `nvidia-smi mig -lgip` / `-lgipp`, or as JSON.
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/catalog.h"
#include "core/catalog_json.h"
#include "core/layout.h"
#include "ctl/api.h"
#include "ctl/ctl.h"
#include "ctl/mig_out.h"
#include "ctl/out.h"

static double profile_mem_gib(const struct gpu_model *m, const struct mig_profile *p)
{
        if (p->mem_mib)
                return p->mem_mib / 1024.0;
        return (double)(catalog_mem_slice_bytes(m) * p->mem_slices) / (double)CATALOG_GIB;
}

/* The creatable placements of a type vgpud lists: "0, 1" or "GI 1:0" (inside GPU instance 1). */
static int placements_text(json_t *placements, char *buf, size_t len)
{
        size_t off = 0, i;
        json_t *p;

        buf[0] = '\0';
        json_array_foreach(placements, i, p)
        {
                json_t *gi = NULL;
                json_int_t pl = -1;

                if (json_unpack(p, "{s:o, s:I}", "gpu_instance", &gi, "placement", &pl) < 0 ||
                    pl < 0 || !(json_is_null(gi) || json_is_integer(gi)))
                        return api_bad_reply("vGPU type object", "a bad entry in 'placements'");
                if (off + 32 >= len) {
                        snprintf(buf + off, len - off, ", ...");
                        break;
                }
                if (json_is_integer(gi))
                        off += (size_t)snprintf(buf + off, len - off,
                                                "%sGI %" JSON_INTEGER_FORMAT
                                                ":%" JSON_INTEGER_FORMAT,
                                                i ? ", " : "", json_integer_value(gi), pl);
                else
                        off += (size_t)snprintf(buf + off, len - off, "%s%" JSON_INTEGER_FORMAT,
                                                i ? ", " : "", pl);
        }
        return 0;
}

/* One type in the layout of `nvidia-smi vgpu -s -v`, from the catalog or from vgpud. */
static int print_type(const struct api_type *t)
{
        bool mig = strcmp(t->cls, "mig-backed") == 0;
        char where[512];

        if (t->placements && placements_text(t->placements, where, sizeof(where)))
                return 1;
        out_kv(4, "vGPU Type ID", "0x%llx", (unsigned long long)t->id);
        out_kv(8, "Name", "NVIDIA %s", t->name);
        out_kv(8, "Class", "Compute");
        out_kv(8, "Mode", "%s", mig ? "MIG-backed" : "Time-sliced");
        if (t->gi_profile >= 0)
                out_kv(8, "GPU Instance Profile ID", "%" JSON_INTEGER_FORMAT, t->gi_profile);
        else
                out_kv(8, "GPU Instance Profile ID", "N/A");
        if (t->max_instances != t->max_documented)
                out_kv(8, "Max Instances",
                       "%" JSON_INTEGER_FORMAT " (documented %" JSON_INTEGER_FORMAT
                       "; capped by framebuffer)",
                       t->max_instances, t->max_documented);
        else
                out_kv(8, "Max Instances", "%" JSON_INTEGER_FORMAT, t->max_instances);
        if (!mig) {
                if (t->max_mixed > 0)
                        out_kv(8, "Max Instances Mixed Size", "%" JSON_INTEGER_FORMAT,
                               t->max_mixed);
                else
                        out_kv(8, "Max Instances Mixed Size", "N/A");
                if (t->placement_size > 0)
                        out_kv(8, "Placement Size", "%" JSON_INTEGER_FORMAT, t->placement_size);
        }
        out_kv(8, "Max Instances Per VM", "1");
        out_kv(8, "FB Memory", "%" JSON_INTEGER_FORMAT " MiB", t->fb_mib);
        out_kv(8, "License", "NVIDIA AI Enterprise");
        if (t->creatable >= 0)
                out_kv(8, "Creatable", "%s", t->creatable ? "Yes" : "No");
        if (t->placements && json_array_size(t->placements))
                out_kv(8, "Creatable Placements", "%s", where);
        return 0;
}

/* Time-sliced MIG-backed: how many vGPUs of each time-sliced type one instance of a profile holds.
 */
static void print_in_gi(const struct gpu_model *m)
{
        puts("");
        puts("Time-sliced vGPUs per GPU instance:");
        for (size_t i = 0; i < m->n_mig_profiles; i++) {
                const struct mig_profile *p = &m->mig_profiles[i];
                bool any = false;

                printf("  %-12s", p->name);
                for (size_t j = 0; j < m->n_types; j++) {
                        uint32_t n = catalog_max_in_gi(m, p, &m->types[j]);

                        if (!n)
                                continue;
                        printf("%s%s x%u", any ? ", " : " ", m->types[j].name, n);
                        any = true;
                }
                puts(any ? "" : " none");
        }
}

static int unknown_model(const char *id)
{
        size_t n;
        const struct gpu_model *models = catalog_models(&n);
        char list[512] = "";
        size_t off = 0;

        for (size_t i = 0; i < n && off < sizeof(list); i++)
                off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
                                        models[i].id);
        return out_error("unknown GPU model '%s'; known models: %s", id, list);
}

/* The catalog's profiles as rows of the -lgip box, Free/Total as on an idle GPU in MIG mode. */
static void print_mig_tables(const struct gpu_model *m, const struct layout *l)
{
        struct mig_out_profile rows[16];
        size_t n = 0;

        for (size_t i = 0; i < m->n_mig_profiles && n < sizeof(rows) / sizeof(rows[0]); i++) {
                const struct mig_profile *p = &m->mig_profiles[i];

                rows[n++] = (struct mig_out_profile){
                        .gpu = 0,
                        .id = p->id,
                        .name = p->name,
                        .free = layout_gi_free_count(l, p),
                        .total = p->max_instances,
                        .mem_gib = profile_mem_gib(m, p),
                        .p2p = p->p2p,
                        .sm = p->sm_count,
                        .ce = p->ce,
                        .dec = p->dec,
                        .enc = p->enc,
                        .jpeg = p->jpeg,
                        .ofa = p->ofa,
                        .starts = p->placement_mask,
                        .size = p->mem_slices,
                };
        }
        mig_out_lgip(rows, n);
        mig_out_lgipp(rows, n);
}

/* `types --model M [--mig]`: the catalog, no daemon. */
static int types_catalog(const char *model_id, bool mig, bool json)
{
        const struct gpu_model *m;
        struct layout l;

        m = catalog_find_model(model_id);
        if (!m)
                return unknown_model(model_id);
        if (mig && !m->mig_mem_slices)
                return out_error("%s does not support MIG; run without --mig for its types", m->id);

        /* A MIG-mode layout with nothing on it gives the Free/Total counts of an idle GPU. */
        layout_init(&l, m);
        if (m->mig_mem_slices)
                layout_set_mode(&l, LAYOUT_MIG);

        if (json) {
                json_t *types = json_array(), *profiles = json_array();

                for (size_t i = 0; i < m->n_types; i++) {
                        if (!mig || m->types[i].cls == CATALOG_MIG)
                                json_array_append_new(types, catalog_type_json(m, &m->types[i]));
                }
                for (size_t i = 0; i < m->n_mig_profiles; i++)
                        json_array_append_new(profiles,
                                              catalog_profile_json(&l, &m->mig_profiles[i]));
                return out_json(json_pack("{s:o, s:o, s:o}", "model", catalog_model_json(m),
                                          "types", types, "mig_profiles", profiles));
        }

        printf("GPU model %s: %s (%" PRIu32 " GiB, %" PRIu32 " SMs)\n", m->id, m->name, m->fb_gib,
               m->sm_count);
        for (size_t i = 0; i < m->n_types; i++) {
                json_t *o;
                struct api_type t;
                int r;

                if (mig && m->types[i].cls != CATALOG_MIG)
                        continue;
                /* One printer for the catalog and vgpud: go through the API's type object. */
                o = catalog_type_json(m, &m->types[i]);
                r = api_type_read(o, &t) || print_type(&t);
                json_decref(o);
                if (r)
                        return 1;
        }
        if (mig) {
                print_mig_tables(m, &l);
                print_in_gi(m);
        }
        return 0;
}

/* `types [-s|-c] [--gpu ID] [--mig]`: what vgpud says GPU ID supports, or can create now. */
static int types_daemon(const struct ctl_opts *opts, const char *gpu, bool creatable, bool mig)
{
        char id[API_ID_MAX], path[API_ID_MAX + 64];
        json_t *doc = NULL, *gdoc = NULL, *types, *o;
        struct api_gpu g;
        json_int_t gidx;
        size_t i, shown = 0;
        int r = 1;

        if (api_escape_id(gpu, "the GPU ID", id))
                return 1;
        snprintf(path, sizeof(path), "/v1/types?gpu=%s%s", id, creatable ? "&creatable=1" : "");
        if (api_get(opts, path, &doc))
                return 1;
        types = api_array(doc, "types", "types document");
        if (!types)
                goto out;
        if (json_unpack(doc, "{s:I}", "gpu", &gidx) < 0 || gidx < 0) {
                api_bad_reply("types document", "'gpu' is not an index");
                goto out;
        }
        /* Check every type before printing anything. */
        json_array_foreach(types, i, o)
        {
                struct api_type t;

                if (api_type_read(o, &t))
                        goto out;
        }
        if (opts->json) {
                r = out_json(json_incref(doc));
                goto out;
        }
        snprintf(path, sizeof(path), "/v1/gpus/%" JSON_INTEGER_FORMAT, gidx);
        if (api_get(opts, path, &gdoc) || api_gpu_read(gdoc, &g))
                goto out;
        printf("GPU %s\n", g.pci_bus_id);
        json_array_foreach(types, i, o)
        {
                struct api_type t;

                api_type_read(o, &t);
                if (mig && strcmp(t.cls, "mig-backed") != 0)
                        continue;
                if (print_type(&t))
                        goto out;
                shown++;
        }
        if (!shown)
                printf("    %s\n", creatable ? "No vGPU type can be created now" : "No vGPU types");
        r = 0;
out:
        json_decref(gdoc);
        json_decref(doc);
        return r;
}

int ctl_types(int argc, char **argv, const struct ctl_opts *opts)
{
        static const char usage[] = "usage: vgpuctl types [-s|-c] [--gpu ID] [--mig] [--json]\n"
                                    "       vgpuctl types --model MODEL [--mig] [--json]";
        static const struct option longopts[] = {
                {"model", required_argument, NULL, 'm'}, {"gpu", required_argument, NULL, 'G'},
                {"supported", no_argument, NULL, 's'},   {"creatable", no_argument, NULL, 'c'},
                {"mig", no_argument, NULL, 'g'},         {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
        };
        const char *model_id = NULL, *gpu = NULL;
        bool mig = false, json = opts->json, sflag = false, cflag = false;
        struct ctl_opts o = *opts;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "m:G:i:scgjh", longopts, NULL)) != -1) {
                switch (c) {
                case 'm':
                        model_id = optarg;
                        break;
                case 'G':
                case 'i':
                        gpu = optarg;
                        break;
                case 's':
                        sflag = true;
                        break;
                case 'c':
                        cflag = true;
                        break;
                case 'g':
                        mig = true;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        puts(usage);
                        return 0;
                default:
                        return out_bad_option("types", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return out_error("types: unexpected argument '%s'", argv[optind]);
        if (sflag && cflag)
                return out_error("types: give -s (supported) or -c (creatable now), not both");
        if (model_id && (gpu || sflag || cflag))
                return out_error("types: --model reads the catalog; -s, -c and --gpu ask vgpud: "
                                 "give one or the other");
        if (model_id)
                return types_catalog(model_id, mig, json);
        o.json = json;
        o.unreachable_hint = "or give --model MODEL to read the catalog without vgpud";
        return types_daemon(&o, gpu ? gpu : "0", cflag, mig);
}

int ctl_models(int argc, char **argv, const struct ctl_opts *opts)
{
        size_t n;
        const struct gpu_model *models = catalog_models(&n);

        (void)argv;
        if (argc > 1 && strcmp(argv[1], "--json") != 0)
                return out_error("models: unexpected argument '%s'", argv[1]);
        if (opts->json || argc > 1) {
                json_t *arr = json_array();

                for (size_t i = 0; i < n; i++)
                        json_array_append_new(arr, catalog_model_json(&models[i]));
                return out_json(json_pack("{s:o}", "models", arr));
        }
        printf("%-16s %-32s %8s %5s %6s %5s\n", "MODEL", "NAME", "FB", "SMs", "MIG", "TYPES");
        for (size_t i = 0; i < n; i++) {
                const struct gpu_model *m = &models[i];
                char fb[16];

                snprintf(fb, sizeof(fb), "%u GiB", m->fb_gib);
                printf("%-16s %-32s %8s %5u %6s %5zu\n", m->id, m->name, fb, m->sm_count,
                       m->mig_mem_slices ? "yes" : "no", m->n_types);
        }
        return 0;
}
