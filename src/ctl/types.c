// SPDX-License-Identifier: Apache-2.0
// `vgpuctl models` and `vgpuctl types --model M`: the catalog as an operator reads it, in the
// layouts of `nvidia-smi vgpu -s -v` and `nvidia-smi mig -lgip` / `-lgipp`, or as JSON.
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/catalog.h"
#include "core/layout.h"
#include "ctl/ctl.h"
#include "ctl/out.h"

/* The box of `nvidia-smi mig -lgip`: inner width between "| " and " |". */
#define LGIP_INNER 77

static void lgip_rule(char c)
{
        putchar('+');
        for (int i = 0; i < LGIP_INNER + 2; i++)
                putchar(c);
        puts("+");
}

static void lgip_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void lgip_line(const char *fmt, ...)
{
        char buf[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        printf("| %-*s |\n", LGIP_INNER, buf);
}

static double profile_mem_gib(const struct gpu_model *m, const struct mig_profile *p)
{
        if (p->mem_mib)
                return p->mem_mib / 1024.0;
        return (double)(catalog_mem_slice_bytes(m) * p->mem_slices) / (double)CATALOG_GIB;
}

static void placements_text(const struct gpu_model *m, const struct mig_profile *p, char *buf,
                            size_t len)
{
        size_t off = 0;
        bool first = true;

        off += (size_t)snprintf(buf + off, len - off, "{");
        for (uint32_t s = 0; s < m->mig_mem_slices && off < len; s++) {
                if (!(p->placement_mask & (1u << s)))
                        continue;
                off += (size_t)snprintf(buf + off, len - off, first ? "%u" : ",%u", s);
                first = false;
        }
        if (off < len)
                snprintf(buf + off, len - off, "}:%u", p->mem_slices);
}

static void print_type(const struct gpu_model *m, const struct vgpu_type *t)
{
        uint32_t max = catalog_max_equal(m, t);

        out_kv(4, "vGPU Type ID", "0x%" PRIx32, t->id);
        out_kv(8, "Name", "NVIDIA %s", t->name);
        out_kv(8, "Class", "Compute");
        out_kv(8, "Mode", "%s", t->cls == CATALOG_MIG ? "MIG-backed" : "Time-sliced");
        if (t->cls == CATALOG_MIG)
                out_kv(8, "GPU Instance Profile ID", "%" PRIu32, t->mig_profile);
        else
                out_kv(8, "GPU Instance Profile ID", "N/A");
        if (max != t->max_equal)
                out_kv(8, "Max Instances",
                       "%" PRIu32 " (documented %" PRIu32 "; capped by framebuffer)", max,
                       t->max_equal);
        else
                out_kv(8, "Max Instances", "%" PRIu32, max);
        if (t->cls == CATALOG_TIME_SLICED) {
                if (t->max_mixed)
                        out_kv(8, "Max Instances Mixed Size", "%" PRIu32, t->max_mixed);
                else
                        out_kv(8, "Max Instances Mixed Size", "N/A");
                if (catalog_het_size(m, t))
                        out_kv(8, "Placement Size", "%" PRIu32, catalog_het_size(m, t));
        }
        out_kv(8, "Max Instances Per VM", "1");
        out_kv(8, "FB Memory", "%" PRIu64 " MiB", catalog_type_fb_bytes(t) / CATALOG_MIB);
        out_kv(8, "License", "NVIDIA AI Enterprise");
}

/* One line of the -lgip box; every line goes through here so the columns always line up. */
static void lgip_cols(const char *gpu, const char *name, const char *id, const char *inst,
                      const char *mem, const char *p2p, const char *sm, const char *dec,
                      const char *enc)
{
        lgip_line("%3s   %-16s %-5s %-11s %-10s %-6s %-5s %-5s %s", gpu, name, id, inst, mem, p2p,
                  sm, dec, enc);
}

static void print_lgip(const struct gpu_model *m, const struct layout *l)
{
        puts("");
        lgip_rule('-');
        lgip_line("GPU instance profiles:");
        lgip_cols("GPU", "Name", "ID", "Instances", "Memory", "P2P", "SM", "DEC", "ENC");
        lgip_cols("", "", "", "Free/Total", "GiB", "", "CE", "JPEG", "OFA");
        lgip_rule('=');
        for (size_t i = 0; i < m->n_mig_profiles; i++) {
                const struct mig_profile *p = &m->mig_profiles[i];
                char name[32], id[16], inst[32], mem[32], sm[16], dec[8], enc[8], ce[8], jpeg[8],
                        ofa[8];

                snprintf(name, sizeof(name), "MIG %s", p->name);
                snprintf(id, sizeof(id), "%u", p->id);
                snprintf(inst, sizeof(inst), "%u/%u", layout_gi_free_count(l, p), p->max_instances);
                snprintf(mem, sizeof(mem), "%.2f", profile_mem_gib(m, p));
                if (p->sm_count)
                        snprintf(sm, sizeof(sm), "%u", p->sm_count);
                else
                        snprintf(sm, sizeof(sm), "N/A");
                snprintf(dec, sizeof(dec), "%u", p->dec);
                snprintf(enc, sizeof(enc), "%u", p->enc);
                snprintf(ce, sizeof(ce), "%u", p->ce);
                snprintf(jpeg, sizeof(jpeg), "%u", p->jpeg);
                snprintf(ofa, sizeof(ofa), "%u", p->ofa);
                lgip_cols("0", name, id, inst, mem, p->p2p ? "Yes" : "No", sm, dec, enc);
                lgip_cols("", "", "", "", "", "", ce, jpeg, ofa);
                lgip_rule('-');
        }
}

static void print_lgipp(const struct gpu_model *m)
{
        char buf[64];

        puts("");
        for (size_t i = 0; i < m->n_mig_profiles; i++) {
                placements_text(m, &m->mig_profiles[i], buf, sizeof(buf));
                printf("GPU  0 Profile ID %2u Placements: %s\n", m->mig_profiles[i].id, buf);
        }
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

static json_t *model_json(const struct gpu_model *m)
{
        char pci[8], cc[16];
        json_t *o;

        snprintf(pci, sizeof(pci), "0x%04x", m->pci_device_id);
        snprintf(cc, sizeof(cc), "%u.%u", m->cc_major, m->cc_minor);
        o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:s, s:i}", "id", m->id, "name", m->name,
                      "arch", m->arch, "type_prefix", m->type_prefix, "fb_mib",
                      (json_int_t)(catalog_model_fb_bytes(m) / CATALOG_MIB), "sm_count",
                      (int)m->sm_count, "compute_capability", cc, "mmio_gib", (int)m->mmio_gib);
        json_object_set_new(o, "pci_device_id", m->pci_device_id ? json_string(pci) : json_null());
        if (m->mig_mem_slices)
                json_object_set_new(o, "mig",
                                    json_pack("{s:i, s:i}", "memory_slices", (int)m->mig_mem_slices,
                                              "compute_slices", (int)m->mig_compute_slices));
        else
                json_object_set_new(o, "mig", json_null());
        json_object_set_new(o, "heterogeneous_slots", json_integer(catalog_het_slots(m)));
        json_object_set_new(o, "source", json_string(m->source));
        return o;
}

static json_t *type_json(const struct gpu_model *m, const struct vgpu_type *t)
{
        json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:i, s:i}", "id", (int)t->id, "name", t->name,
                              "class", t->cls == CATALOG_MIG ? "mig-backed" : "time-sliced",
                              "fb_mib", (json_int_t)(catalog_type_fb_bytes(t) / CATALOG_MIB),
                              "max_instances", (int)catalog_max_equal(m, t),
                              "max_instances_documented", (int)t->max_equal);

        if (t->cls == CATALOG_TIME_SLICED) {
                json_object_set_new(o, "max_instances_mixed", json_integer(t->max_mixed));
                json_object_set_new(o, "placement_size", json_integer(catalog_het_size(m, t)));
                json_object_set_new(o, "gpu_instance_profile_id", json_null());
        } else {
                json_object_set_new(o, "gpu_instance_profile_id", json_integer(t->mig_profile));
        }
        json_object_set_new(o, "media_extensions", json_boolean(t->media_ext));
        return o;
}

static json_t *profile_json(const struct gpu_model *m, const struct layout *l,
                            const struct mig_profile *p)
{
        json_t *starts = json_array(), *ts = json_array();
        json_t *o;

        for (uint32_t s = 0; s < m->mig_mem_slices; s++) {
                if (p->placement_mask & (1u << s))
                        json_array_append_new(starts, json_integer(s));
        }
        for (size_t j = 0; j < m->n_types; j++) {
                uint32_t n = catalog_max_in_gi(m, p, &m->types[j]);

                if (n)
                        json_array_append_new(ts, json_pack("{s:s, s:i}", "type", m->types[j].name,
                                                            "per_instance", (int)n));
        }
        o = json_pack("{s:i, s:s, s:i, s:i, s:i, s:i, s:I, s:i, s:{s:o, s:i}, s:i, s:i, s:i, s:i, "
                      "s:i, s:b, s:o}",
                      "id", (int)p->id, "name", p->name, "compute_slices", (int)p->compute_slices,
                      "memory_slices", (int)p->mem_slices, "instances_total", (int)p->max_instances,
                      "instances_free", (int)layout_gi_free_count(l, p), "memory_mib",
                      (json_int_t)p->mem_mib, "sm_count", (int)p->sm_count, "placements", "starts",
                      starts, "size", (int)p->mem_slices, "ce", p->ce, "dec", p->dec, "enc", p->enc,
                      "jpeg", p->jpeg, "ofa", p->ofa, "p2p", p->p2p, "time_sliced_types", ts);
        return o;
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

int ctl_types(int argc, char **argv, const struct ctl_opts *opts)
{
        static const struct option longopts[] = {
                {"model", required_argument, NULL, 'm'},
                {"mig", no_argument, NULL, 'g'},
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        const char *model_id = NULL;
        bool mig = false, json = opts->json;
        const struct gpu_model *m;
        struct layout l;
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "m:gjh", longopts, NULL)) != -1) {
                switch (c) {
                case 'm':
                        model_id = optarg;
                        break;
                case 'g':
                        mig = true;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        puts("usage: vgpuctl types --model MODEL [--mig] [--json]");
                        return 0;
                default:
                        return out_error("usage: vgpuctl types --model MODEL [--mig] [--json]");
                }
        }
        if (optind < argc)
                return out_error("types: unexpected argument '%s'", argv[optind]);
        if (!model_id)
                return out_error("types: give --model MODEL (see `vgpuctl models`)");
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
                                json_array_append_new(types, type_json(m, &m->types[i]));
                }
                for (size_t i = 0; i < m->n_mig_profiles; i++)
                        json_array_append_new(profiles, profile_json(m, &l, &m->mig_profiles[i]));
                return out_json(json_pack("{s:o, s:o, s:o}", "model", model_json(m), "types", types,
                                          "mig_profiles", profiles));
        }

        printf("GPU model %s: %s (%" PRIu32 " GiB, %" PRIu32 " SMs)\n", m->id, m->name, m->fb_gib,
               m->sm_count);
        for (size_t i = 0; i < m->n_types; i++) {
                if (!mig || m->types[i].cls == CATALOG_MIG)
                        print_type(m, &m->types[i]);
        }
        if (mig) {
                print_lgip(m, &l);
                print_lgipp(m);
                print_in_gi(m);
        }
        return 0;
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
                        json_array_append_new(arr, model_json(&models[i]));
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
