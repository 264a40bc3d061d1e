// SPDX-License-Identifier: Apache-2.0
// vgpuctl sched: show or set a GPU's scheduler, in the spirit of `nvidia-smi vgpu -ss` and
// `nvidia-smi vgpu set-scheduler-state`; vgpuctl util: per-vGPU utilization, as `nvidia-smi vgpu
// -u` prints it, once per second.
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sched.h"
#include "ctl/api.h"
#include "ctl/ctl.h"
#include "ctl/out.h"

static const char *policy_title(const char *name)
{
        if (strcmp(name, "equal-share") == 0)
                return "Equal Share";
        if (strcmp(name, "fixed-share") == 0)
                return "Fixed Share";
        return "Best Effort";
}

static void print_sched(json_t *o, const char *bus_id)
{
        const char *policy = json_string_value(json_object_get(o, "policy"));
        const char *rm = json_string_value(json_object_get(o, "rmpvmrl"));

        printf("GPU %s\n", bus_id ? bus_id : "?");
        out_kv(4, "Scheduler Policy", "%s", policy_title(policy ? policy : ""));
        if (json_integer_value(json_object_get(o, "timeslice_ms")) > 0)
                out_kv(4, "Scheduler Timeslice", "%" JSON_INTEGER_FORMAT " ms",
                       json_integer_value(json_object_get(o, "timeslice_ms")));
        else /* no scheduled vGPU yet: the default of the types to come */
                out_kv(4, "Scheduler Timeslice",
                       "Default (2 ms, or 1 ms for types of more "
                       "than 8 per GPU)");
        out_kv(4, "RmPVMRL", "%s", rm ? rm : "?");
}

/* The GPUs to act on: one (--gpu) or all; each as [id, bus id]. */
static json_t *gpu_ids(const struct ctl_opts *opts, const char *id)
{
        json_t *doc = NULL, *list, *out = json_array(), *o;
        size_t i;

        if (api_get(opts, "/v1/gpus", &doc) || !(list = api_array(doc, "gpus", "GPU list"))) {
                json_decref(doc);
                json_decref(out);
                return NULL;
        }
        json_array_foreach(list, i, o)
        {
                struct api_gpu g;
                char idbuf[24];

                if (api_gpu_read(o, &g))
                        continue;
                snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT, g.id);
                if (!id || strcmp(id, idbuf) == 0 || strcasecmp(id, g.uuid) == 0)
                        json_array_append_new(out, json_pack("[s, s]", idbuf, g.pci_bus_id));
        }
        json_decref(doc);
        if (id && json_array_size(out) == 0) {
                json_decref(out);
                out_error("sched: no GPU '%s' (vgpuctl gpus lists them)", id);
                return NULL;
        }
        return out;
}

int ctl_sched(int argc, char **argv, const struct ctl_opts *opts)
{
        static const char usage[] =
                "usage: vgpuctl sched [--gpu ID] [--policy best-effort|equal-share|fixed-share]\n"
                "                     [--timeslice-ms N]\n"
                "Shows each GPU's scheduler, or sets it (on every GPU unless --gpu is given).\n"
                "N is 1..30 ms (larger values are capped at 30); 0 restores the default of the\n"
                "GPU's types (2 ms for types with at most 8 vGPUs per GPU, else 1 ms).";
        static const struct option longopts[] = {
                {"gpu", required_argument, NULL, 'i'},
                {"policy", required_argument, NULL, 'p'},
                {"timeslice-ms", required_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        const char *id = NULL, *policy = NULL;
        long slice = -1;
        json_t *ids, *all = json_array(), *pair;
        enum sched_policy p;
        size_t i;
        int c, rc = 0;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "i:p:t:h", longopts, NULL)) != -1) {
                char *end;

                switch (c) {
                case 'i':
                        id = optarg;
                        break;
                case 'p':
                        policy = optarg;
                        if (sched_policy_parse(policy, &p) < 0) {
                                json_decref(all);
                                return out_error("sched: --policy '%s': use best-effort, "
                                                 "equal-share or fixed-share",
                                                 policy);
                        }
                        break;
                case 't':
                        slice = strtol(optarg, &end, 10);
                        if (*end || optarg[0] == '\0' || slice < 0 || slice > 100000) {
                                json_decref(all);
                                return out_error("sched: --timeslice-ms '%s': a number of "
                                                 "milliseconds, 1..30 (0: the default)",
                                                 optarg);
                        }
                        break;
                case 'h':
                        json_decref(all);
                        puts(usage);
                        return 0;
                default:
                        json_decref(all);
                        return out_bad_option("sched", argv[optind - 1]);
                }
        }
        if (optind < argc) {
                json_decref(all);
                return out_error("sched: unexpected argument '%s'", argv[optind]);
        }
        ids = gpu_ids(opts, id);
        if (!ids) {
                json_decref(all);
                return 1;
        }
        json_array_foreach(ids, i, pair)
        {
                const char *gid = json_string_value(json_array_get(pair, 0));
                char path[64];
                json_t *doc = NULL, *body = NULL;

                snprintf(path, sizeof(path), "/v1/gpus/%s/scheduler", gid);
                if (policy || slice >= 0) {
                        body = json_object();
                        if (policy)
                                json_object_set_new(body, "policy",
                                                    json_string(sched_policy_name(p)));
                        if (slice >= 0)
                                json_object_set_new(body, "timeslice_ms", json_integer(slice));
                        c = api_call(opts, "PUT", path, body, &doc);
                        json_decref(body);
                } else {
                        c = api_get(opts, path, &doc);
                }
                if (c || !json_is_object(doc)) {
                        json_decref(doc);
                        rc = 1;
                        continue;
                }
                if (opts->json)
                        json_array_append(all, doc);
                else
                        print_sched(doc, json_string_value(json_array_get(pair, 1)));
                json_decref(doc);
        }
        json_decref(ids);
        if (opts->json)
                return out_json(json_pack("{s:o}", "schedulers", all)) || rc;
        json_decref(all);
        return rc;
}

int ctl_util(int argc, char **argv, const struct ctl_opts *opts)
{
        static const char usage[] =
                "usage: vgpuctl util [-l SECONDS]\n"
                "Per-vGPU utilization, as `nvidia-smi vgpu -u` prints it: sm is the vGPU's share\n"
                "of its GPU's accounted time over the last second; mem, enc and dec are 0 (not\n"
                "measured). With -l, once per second for that many seconds (0: until stopped).";
        long loops = 1;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt(argc, argv, "l:h")) != -1) {
                char *end;

                if (c == 'h') {
                        puts(usage);
                        return 0;
                }
                if (c != 'l')
                        return out_bad_option("util", argv[optind - 1]);
                loops = strtol(optarg, &end, 10);
                if (*end || loops < 0 || loops > 1000000)
                        return out_error("util: -l '%s': a number of seconds", optarg);
        }
        for (long n = 0; loops == 0 || n < loops; n++) {
                json_t *doc = NULL, *list, *o;
                size_t i;

                if (n)
                        sleep(1);
                if (api_get(opts, "/v1/vgpus", &doc) ||
                    !(list = api_array(doc, "vgpus", "vGPU list"))) {
                        json_decref(doc);
                        return 1;
                }
                if (opts->json) {
                        out_json(doc);
                        continue;
                }
                if (n % 20 == 0)
                        printf("# gpu        vgpu    sm   mem   enc   dec\n"
                               "# Idx          Id     %%     %%     %%     %%\n");
                json_array_foreach(list, i, o)
                {
                        json_t *s = json_object_get(o, "scheduler");
                        double util = s ? json_number_value(json_object_get(s, "util_pct")) : -1;
                        char sm[8];

                        if (util >= 0)
                                snprintf(sm, sizeof(sm), "%3.0f", util);
                        else
                                snprintf(sm, sizeof(sm), "  -");
                        printf("%5" JSON_INTEGER_FORMAT " %11" JSON_INTEGER_FORMAT
                               "   %s     0     0     0\n",
                               json_integer_value(json_object_get(o, "gpu")),
                               json_integer_value(json_object_get(o, "placement")), sm);
                }
                fflush(stdout);
                json_decref(doc);
        }
        return 0;
}
