// SPDX-License-Identifier: Apache-2.0
// `vgpuctl mig`: MIG GPU instances through vgpud, with the options and layouts of `nvidia-smi mig`
// (-lgip, -lgipp, -lgi, -cgi, -dgi).
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/catalog.h"
#include "ctl/api.h"
#include "ctl/ctl.h"
#include "ctl/mig_out.h"
#include "ctl/out.h"

/* Most profiles one GPU lists, and most GPU instances listed at once. */
#define MIG_MAX_ROWS 64

enum mig_action { MIG_NONE, MIG_LGIP, MIG_LGIPP, MIG_LGI, MIG_CGI, MIG_DGI };

/*
 * MiB of one memory slice of the GPU's model, for profiles whose memory is not published: > 0,
 * -1 when not known, -2 after printing an error.
 */
static double slice_mib(const struct ctl_opts *opts, const char *gpu_esc)
{
        char path[API_ID_MAX + 32];
        json_t *doc = NULL;
        struct api_gpu g;
        const struct gpu_model *m;
        double mib = -1;

        snprintf(path, sizeof(path), "/v1/gpus/%s", gpu_esc);
        if (api_get(opts, path, &doc))
                return -2;
        if (api_gpu_read(doc, &g) == 0) {
                m = catalog_find_model(g.model);
                if (m && m->mig_mem_slices)
                        mib = (double)catalog_mem_slice_bytes(m) / (double)CATALOG_MIB;
        } else {
                mib = -2;
        }
        json_decref(doc);
        return mib;
}

static int list_profiles(const struct ctl_opts *opts, const char *gpu_esc, bool placements)
{
        struct mig_out_profile rows[MIG_MAX_ROWS];
        char path[API_ID_MAX + 48];
        json_t *doc = NULL, *list, *o;
        json_int_t gpu;
        double slice = 0;
        size_t i, n = 0;
        int r = 1;

        snprintf(path, sizeof(path), "/v1/gpus/%s/gpu-instance-profiles", gpu_esc);
        if (api_get(opts, path, &doc))
                return 1;
        list = api_array(doc, "profiles", "GPU instance profile list");
        if (!list)
                goto out;
        if (json_unpack(doc, "{s:I}", "gpu", &gpu) < 0 || gpu < 0 || gpu > 0xffff) {
                api_bad_reply("GPU instance profile list", "'gpu' is not an index");
                goto out;
        }
        if (json_array_size(list) > MIG_MAX_ROWS) {
                api_bad_reply("GPU instance profile list", "too many profiles");
                goto out;
        }
        json_array_foreach(list, i, o)
        {
                struct api_profile p;
                uint64_t starts = 0;
                size_t k;
                json_t *s;

                if (api_profile_read(o, &p))
                        goto out;
                json_array_foreach(p.starts, k, s)
                {
                        starts |= (uint64_t)1 << json_integer_value(s);
                }
                /* Memory not published: slices times the slice size, as the catalog does. */
                if (!p.memory_mib && !slice)
                        slice = slice_mib(opts, gpu_esc);
                if (slice < -1)
                        goto out;
                rows[n++] = (struct mig_out_profile){
                        .gpu = (unsigned)gpu,
                        .id = (unsigned)p.id,
                        .name = p.name,
                        .free = (unsigned)p.instances_free,
                        .total = (unsigned)p.instances_total,
                        .mem_gib = p.memory_mib ? (double)p.memory_mib / 1024.0
                                   : slice > 0  ? slice * (double)p.memory_slices / 1024.0
                                                : -1,
                        .p2p = p.p2p,
                        .sm = (unsigned)p.sm_count,
                        .ce = (unsigned)p.ce,
                        .dec = (unsigned)p.dec,
                        .enc = (unsigned)p.enc,
                        .jpeg = (unsigned)p.jpeg,
                        .ofa = (unsigned)p.ofa,
                        .starts = starts,
                        .size = (unsigned)p.memory_slices,
                };
        }
        if (opts->json) {
                r = out_json(json_incref(doc));
                goto out;
        }
        if (placements)
                mig_out_lgipp(rows, n);
        else
                mig_out_lgip(rows, n);
        r = 0;
out:
        json_decref(doc);
        return r;
}

static int list_instances(const struct ctl_opts *opts, const char *gpu_esc)
{
        struct mig_out_gi rows[MIG_MAX_ROWS];
        char path[API_ID_MAX + 48];
        json_t *doc = NULL, *list, *o;
        size_t i, n = 0;
        int r = 1;

        snprintf(path, sizeof(path), "/v1/gpus/%s/gpu-instances", gpu_esc);
        if (api_get(opts, path, &doc))
                return 1;
        list = api_array(doc, "gpu_instances", "GPU instance list");
        if (!list)
                goto out;
        if (json_array_size(list) > MIG_MAX_ROWS) {
                api_bad_reply("GPU instance list", "too many GPU instances");
                goto out;
        }
        json_array_foreach(list, i, o)
        {
                struct api_gi gi;

                if (api_gi_read(o, &gi))
                        goto out;
                rows[n++] = (struct mig_out_gi){
                        .gpu = (unsigned)gi.gpu,
                        .id = (unsigned)gi.id,
                        .profile_id = (unsigned)gi.profile_id,
                        .start = (unsigned)gi.start,
                        .size = (unsigned)gi.size,
                        .profile = gi.profile,
                };
        }
        if (opts->json) {
                r = out_json(json_incref(doc));
                goto out;
        }
        if (n)
                mig_out_lgi(rows, n);
        else
                puts("No GPU instances found");
        r = 0;
out:
        json_decref(doc);
        return r;
}

/* -cgi: one POST per profile of the comma-separated list, in order; stops at the first refusal.
 */
static int create_instances(const struct ctl_opts *opts, const char *gpu_esc, const char *profiles,
                            long long start)
{
        char path[API_ID_MAX + 48];
        char *copy = strdup(profiles), *save = NULL, *tok;
        json_t *made = json_array();
        size_t count = 0;
        int r = 0;

        if (!copy || !made) {
                free(copy);
                json_decref(made);
                return out_error("mig: out of memory");
        }
        for (const char *p = profiles; *p; p++)
                count += *p == ',';
        if (strspn(profiles, ", ") == strlen(profiles))
                r = out_error("mig: -cgi needs a profile: an ID (9), a name (3g.40gb) or a list");
        else if (start >= 0 && count)
                r = out_error("mig: --start places one GPU instance; give one profile with it");
        snprintf(path, sizeof(path), "/v1/gpus/%s/gpu-instances", gpu_esc);
        for (tok = strtok_r(copy, ",", &save); tok && !r; tok = strtok_r(NULL, ",", &save)) {
                json_t *body = json_pack("{s:o}", "profile", api_id_json(tok)), *doc = NULL;
                struct api_gi gi;

                if (!body) {
                        r = out_error("mig: out of memory");
                        break;
                }
                if (start >= 0)
                        json_object_set_new(body, "start", json_integer(start));
                r = api_call(opts, "POST", path, body, &doc);
                json_decref(body);
                if (r)
                        break;
                if (!json_is_object(doc) || api_gi_read(doc, &gi)) {
                        if (!json_is_object(doc))
                                api_bad_reply("GPU instance object", "not a JSON object");
                        json_decref(doc);
                        r = 1;
                        break;
                }
                if (!opts->json)
                        printf("Successfully created GPU instance ID %2" JSON_INTEGER_FORMAT
                               " on GPU %2" JSON_INTEGER_FORMAT
                               " using profile MIG %s (ID %2" JSON_INTEGER_FORMAT ")\n",
                               gi.id, gi.gpu, gi.profile, gi.profile_id);
                json_array_append_new(made, doc);
        }
        /* --json: the GPU instance object, or for a list those made (also before a refusal). */
        if (opts->json && json_array_size(made) == 1 && !count)
                out_json(json_incref(json_array_get(made, 0)));
        else if (opts->json && json_array_size(made))
                out_json(json_pack("{s:O}", "gpu_instances", made));
        json_decref(made);
        free(copy);
        return r;
}

static int destroy_instance(const struct ctl_opts *opts, const char *gpu, const char *gpu_esc,
                            const char *id)
{
        char path[API_ID_MAX + 64], *end;
        json_t *doc = NULL;
        long v;

        v = strtol(id, &end, 10);
        if (!*id || *end || v < 0 || v > 0xffff || id[0] == '-' || id[0] == '+' || id[0] == ' ')
                return out_error("mig: -dgi takes a GPU instance ID (see `vgpuctl mig -lgi`), "
                                 "not '%s'",
                                 id);
        snprintf(path, sizeof(path), "/v1/gpus/%s/gpu-instances/%ld", gpu_esc, v);
        if (api_call(opts, "DELETE", path, NULL, &doc))
                return 1;
        json_decref(doc);
        if (!opts->json)
                printf("Successfully destroyed GPU instance ID %2ld from GPU %2s\n", v, gpu);
        return 0;
}

int ctl_mig(int argc, char **argv, const struct ctl_opts *opts)
{
        static const char usage[] =
                "usage: vgpuctl [--json] mig [--gpu ID] -lgip | -lgipp | -lgi | "
                "-cgi PROFILE[,PROFILE...] [--start S] | -dgi ID";
        static const struct option longopts[] = {
                {"lgip", no_argument, NULL, 'P'},
                {"lgipp", no_argument, NULL, 'Q'},
                {"lgi", no_argument, NULL, 'L'},
                {"cgi", required_argument, NULL, 'C'},
                {"dgi", required_argument, NULL, 'D'},
                {"gpu", required_argument, NULL, 'i'},
                {"start", required_argument, NULL, 's'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        enum mig_action action = MIG_NONE;
        const char *gpu = "0", *arg = NULL;
        char esc[API_ID_MAX], *end;
        long long start = -1;
        int c;

        optind = 1;
        opterr = 0;
        /* nvidia-smi's single-dash long options (-lgip): getopt_long_only. */
        while ((c = getopt_long_only(argc, argv, "i:h", longopts, NULL)) != -1) {
                enum mig_action a = MIG_NONE;

                switch (c) {
                case 'P':
                        a = MIG_LGIP;
                        break;
                case 'Q':
                        a = MIG_LGIPP;
                        break;
                case 'L':
                        a = MIG_LGI;
                        break;
                case 'C':
                        a = MIG_CGI;
                        arg = optarg;
                        break;
                case 'D':
                        a = MIG_DGI;
                        arg = optarg;
                        break;
                case 'i':
                        gpu = optarg;
                        break;
                case 's':
                        start = strtoll(optarg, &end, 10);
                        if (!*optarg || *end || start < 0 || start > 63)
                                return out_error("mig: --start takes a memory slice (0..7 on an "
                                                 "H100), not '%s'",
                                                 optarg);
                        break;
                case 'h':
                        puts(usage);
                        return 0;
                default:
                        return out_bad_option("mig", argv[optind - 1]);
                }
                if (a != MIG_NONE) {
                        if (action != MIG_NONE)
                                return out_error("mig: give one of -lgip, -lgipp, -lgi, -cgi, "
                                                 "-dgi");
                        action = a;
                }
        }
        if (optind < argc)
                return out_error("mig: unexpected argument '%s'", argv[optind]);
        if (action == MIG_NONE)
                return out_error("mig: give one of -lgip, -lgipp, -lgi, -cgi PROFILE, -dgi ID");
        if (start >= 0 && action != MIG_CGI)
                return out_error("mig: --start goes with -cgi");
        if (api_escape_id(gpu, "the GPU ID", esc))
                return 1;
        switch (action) {
        case MIG_LGIP:
                return list_profiles(opts, esc, false);
        case MIG_LGIPP:
                return list_profiles(opts, esc, true);
        case MIG_LGI:
                return list_instances(opts, esc);
        case MIG_CGI:
                return create_instances(opts, esc, arg, start);
        case MIG_DGI:
                return destroy_instance(opts, gpu, esc, arg);
        default:
                return 1;
        }
}
