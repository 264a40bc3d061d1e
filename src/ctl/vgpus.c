// SPDX-License-Identifier: Apache-2.0
// vGPUs through vgpud: `create`, `destroy`, `list` (the boxed table of `nvidia-smi vgpu`) and
// `query` (the report of `nvidia-smi vgpu -q`). A vGPU's short "vGPU ID" is the first 8 hex
// digits of its UUID.
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/api.h"
#include "ctl/ctl.h"
#include "ctl/out.h"

/* Widths of the three columns of the `nvidia-smi vgpu` table, between the bars. */
#define COL1 33
#define COL2 30
#define COL3 12

/* A non-negative decimal option value up to max; prints the error and returns 1 otherwise. */
static int parse_count(const char *cmd, const char *opt, const char *s, long long max,
                       long long *ret)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (!*s || *end || errno || v < 0 || v > max || s[0] == '-' || s[0] == '+' || s[0] == ' ')
                return out_error("%s: %s takes a number from 0 to %lld, not '%s'", cmd, opt, max,
                                 s);
        *ret = v;
        return 0;
}

/* doc's "vgpus" array with every vGPU checked; NULL after printing the error. */
static json_t *checked_vgpus(json_t *doc)
{
        json_t *list = api_array(doc, "vgpus", "vGPU list"), *o;
        struct api_vgpu v;
        size_t i;

        if (!list)
                return NULL;
        json_array_foreach(list, i, o)
        {
                if (api_vgpu_read(o, &v))
                        return NULL;
        }
        return list;
}

/* doc's "gpus" array with every GPU checked; NULL after printing the error. */
static json_t *checked_gpus(json_t *doc)
{
        json_t *list = api_array(doc, "gpus", "GPU list"), *o;
        struct api_gpu g;
        size_t i;

        if (!list)
                return NULL;
        json_array_foreach(list, i, o)
        {
                if (api_gpu_read(o, &g))
                        return NULL;
        }
        return list;
}

int ctl_create(int argc, char **argv, const struct ctl_opts *opts)
{
        static const char usage[] = "usage: vgpuctl [--json] create [--gpu ID] --type NAME "
                                    "[--placement P] [--gpu-instance GI] [--uuid U] "
                                    "[--owner UID]";
        static const struct option longopts[] = {
                {"gpu", required_argument, NULL, 'i'},
                {"type", required_argument, NULL, 't'},
                {"placement", required_argument, NULL, 'p'},
                {"gpu-instance", required_argument, NULL, 'g'},
                {"uuid", required_argument, NULL, 'u'},
                {"owner", required_argument, NULL, 'o'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        const char *gpu = NULL, *type = NULL, *uuid = NULL;
        long long placement = -1, gi = -1, owner = -1;
        json_t *body, *doc = NULL;
        struct api_vgpu v;
        int c, r;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "i:t:p:g:u:o:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'i':
                        gpu = optarg;
                        break;
                case 't':
                        type = optarg;
                        break;
                case 'p':
                        if (parse_count("create", "--placement", optarg, 1 << 20, &placement))
                                return 1;
                        break;
                case 'g':
                        if (parse_count("create", "--gpu-instance", optarg, 1 << 20, &gi))
                                return 1;
                        break;
                case 'u':
                        uuid = optarg;
                        break;
                case 'o':
                        if (parse_count("create", "--owner", optarg, 0xfffffffe, &owner))
                                return 1;
                        break;
                case 'h':
                        puts(usage);
                        return 0;
                default:
                        return out_bad_option("create", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return out_error("create: unexpected argument '%s'", argv[optind]);
        if (!type)
                return out_error("create: give --type NAME (`vgpuctl types -c` lists what "
                                 "can be created)");
        body = json_pack("{s:s}", "type", type);
        if (!body)
                return out_error("create: out of memory");
        if (gpu)
                json_object_set_new(body, "gpu", api_id_json(gpu));
        if (placement >= 0)
                json_object_set_new(body, "placement", json_integer(placement));
        if (gi >= 0)
                json_object_set_new(body, "gpu_instance", json_integer(gi));
        if (uuid)
                json_object_set_new(body, "uuid", json_string(uuid));
        if (owner >= 0)
                json_object_set_new(body, "owner_uid", json_integer(owner));
        r = api_call(opts, "POST", "/v1/vgpus", body, &doc);
        json_decref(body);
        if (r)
                return 1;
        if (!json_is_object(doc)) {
                json_decref(doc);
                return api_bad_reply("vGPU object", "not a JSON object");
        }
        if (api_vgpu_read(doc, &v)) {
                json_decref(doc);
                return 1;
        }
        if (opts->json)
                return out_json(doc);
        puts(v.uuid);
        json_decref(doc);
        return 0;
}

int ctl_destroy(int argc, char **argv, const struct ctl_opts *opts)
{
        static const char usage[] = "usage: vgpuctl destroy UUID... [--force]";
        static const struct option longopts[] = {
                {"force", no_argument, NULL, 'f'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        char esc[API_ID_MAX], path[API_ID_MAX + 32];
        bool force = false;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "fh", longopts, NULL)) != -1) {
                switch (c) {
                case 'f':
                        force = true;
                        break;
                case 'h':
                        puts(usage);
                        return 0;
                default:
                        return out_bad_option("destroy", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return out_error("destroy: give the UUID of the vGPU to destroy (`vgpuctl list` "
                                 "shows them)");
        for (; optind < argc; optind++) {
                json_t *doc = NULL;

                if (api_escape_id(argv[optind], "the vGPU UUID", esc))
                        return 1;
                snprintf(path, sizeof(path), "/v1/vgpus/%s%s", esc, force ? "?force=1" : "");
                if (api_call(opts, "DELETE", path, NULL, &doc))
                        return 1;
                json_decref(doc);
                /* 204 has no document: --json prints nothing. */
                if (!opts->json)
                        printf("Successfully destroyed vGPU %s\n", argv[optind]);
        }
        return 0;
}

/* "NVIDIA <type>" when it fits w columns, else the type alone. */
static const char *type_label(const char *type, char *buf, size_t len, size_t w)
{
        if (strlen(type) + 7 <= w)
                snprintf(buf, len, "NVIDIA %s", type);
        else
                snprintf(buf, len, "%s", type);
        return buf;
}

static void table_rule(char left, char fill, char right)
{
        char line[COL1 + COL2 + COL3 + 8];
        size_t o = 0;

        line[o++] = left;
        memset(line + o, fill, COL1);
        o += COL1;
        line[o++] = '+';
        memset(line + o, fill, COL2);
        o += COL2;
        line[o++] = '+';
        memset(line + o, fill, COL3);
        o += COL3;
        line[o++] = right;
        line[o] = '\0';
        puts(line);
}

static void table_row(const char *c1, const char *c2, const char *c3)
{
        printf("|%-*.*s|%-*.*s|%-*.*s|\n", COL1, COL1, c1, COL2, COL2, c2, COL3, COL3, c3);
}

/* A short string with no control characters. */
static bool short_printable(const char *s)
{
        for (size_t n = 0; s[n]; n++) {
                if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= 32)
                        return false;
        }
        return true;
}

/* The time, vgpud's version and backend (GET /v1/health): the table's banner or -q's header. */
static int print_banner(const struct ctl_opts *opts, bool boxed)
{
        const char *version = "?", *backend = "?";
        char now[64], line[128];
        json_t *doc = NULL;
        time_t t = time(NULL);
        struct tm tm;

        if (api_get(opts, "/v1/health", &doc))
                return 1;
        if (json_unpack(doc, "{s:s, s:s}", "version", &version, "backend", &backend) < 0 ||
            !short_printable(version) || !short_printable(backend)) {
                json_decref(doc);
                return api_bad_reply("health document", "no printable 'version' and 'backend'");
        }
        localtime_r(&t, &tm);
        strftime(now, sizeof(now), "%a %b %e %H:%M:%S %Y", &tm);
        if (boxed) {
                puts(now);
                putchar('+');
                for (int i = 0; i < COL1 + COL2 + COL3 + 2; i++)
                        putchar('-');
                puts("+");
                snprintf(line, sizeof(line), " VGPUD %-27s Backend: %s", version, backend);
                printf("|%-*s|\n", COL1 + COL2 + COL3 + 2, line);
        } else {
                out_kv(0, "Timestamp", "%s", now);
                out_kv(0, "vgpud Version", "%s", version);
                out_kv(0, "Backend", "%s", backend);
        }
        json_decref(doc);
        return 0;
}

/* A vGPU row: short ID and type; the engine (the vGPU's VMM-like process) stands for the VM. */
static void list_vgpu_row(const struct api_vgpu *v)
{
        char c1[128], c2[128], name[64], pid[24], state[48];

        snprintf(c1, sizeof(c1), "      %-10.8s  %-15s", v->uuid,
                 type_label(v->type, name, sizeof(name), 15));
        if (v->engine_pid >= 0)
                snprintf(pid, sizeof(pid), "%" JSON_INTEGER_FORMAT, v->engine_pid);
        else
                snprintf(pid, sizeof(pid), "N/A");
        snprintf(state, sizeof(state), "%s, %" JSON_INTEGER_FORMAT " guest%s", v->state, v->guests,
                 v->guests == 1 ? "" : "s");
        snprintf(c2, sizeof(c2), " %-9.9s %s", pid, state);
        table_row(c1, c2, "     N/A");
}

int ctl_list(int argc, char **argv, const struct ctl_opts *opts)
{
        static const struct option longopts[] = {
                {"gpu", required_argument, NULL, 'i'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        char esc[API_ID_MAX], path[API_ID_MAX + 32];
        const char *id = NULL;
        json_t *gdoc = NULL, *vdoc = NULL, *gpus, *vgpus, *go, *vo;
        size_t i, j;
        int c, r = 1;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "i:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'i':
                        id = optarg;
                        break;
                case 'h':
                        puts("usage: vgpuctl [--json] list [--gpu ID]");
                        return 0;
                default:
                        return out_bad_option("list", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return out_error("list: unexpected argument '%s'", argv[optind]);
        if (id && api_escape_id(id, "the GPU ID", esc))
                return 1;

        /* The GPUs first, so an unknown --gpu gets vgpud's 404 message. */
        if (id) {
                snprintf(path, sizeof(path), "/v1/gpus/%s", esc);
                if (api_get(opts, path, &go))
                        return 1;
                gdoc = json_pack("{s:[o]}", "gpus", go);
        } else if (api_get(opts, "/v1/gpus", &gdoc)) {
                return 1;
        }
        gpus = checked_gpus(gdoc);
        if (!gpus)
                goto out;
        if (id)
                snprintf(path, sizeof(path), "/v1/vgpus?gpu=%s", esc);
        else
                snprintf(path, sizeof(path), "/v1/vgpus");
        if (api_get(opts, path, &vdoc))
                goto out;
        vgpus = checked_vgpus(vdoc);
        if (!vgpus)
                goto out;
        if (opts->json) {
                r = out_json(json_incref(vdoc));
                goto out;
        }
        if (json_array_size(gpus) == 0) {
                puts("No supported devices in vGPU mode");
                r = 0;
                goto out;
        }
        if (print_banner(opts, true))
                goto out;
        table_rule('|', '-', '+');
        table_row(" GPU  Name", " Bus-Id", " GPU-Util");
        table_row("      vGPU ID     Name", " VM ID     VM Name", " vGPU-Util");
        table_rule('|', '=', '|');
        json_array_foreach(gpus, i, go)
        {
                struct api_gpu g;
                char c1[128], c2[128];

                api_gpu_read(go, &g);
                snprintf(c1, sizeof(c1), " %3" JSON_INTEGER_FORMAT "  %s", g.id, g.name);
                snprintf(c2, sizeof(c2), " %s", g.pci_bus_id);
                table_row(c1, c2, "   N/A");
                json_array_foreach(vgpus, j, vo)
                {
                        struct api_vgpu v;

                        api_vgpu_read(vo, &v);
                        if (v.gpu == g.id)
                                list_vgpu_row(&v);
                }
                table_rule('+', '-', '+');
        }
        r = 0;
out:
        json_decref(vdoc);
        json_decref(gdoc);
        return r;
}

/* One vGPU in the layout of `nvidia-smi vgpu -q`: the colon in column 38, sections by 4. */
static void query_vgpu(const struct api_vgpu *v)
{
        out_kv(4, "vGPU ID", "%.8s", v->uuid);
        out_kv(8, "vGPU Name", "NVIDIA %s", v->type);
        out_kv(8, "vGPU Type", "%" JSON_INTEGER_FORMAT, v->type_id);
        out_kv(8, "vGPU UUID", "%s", v->uuid);
        out_kv(8, "vGPU Class", "%s", v->cls);
        if (v->gpu_instance >= 0)
                out_kv(8, "GPU Instance ID", "%" JSON_INTEGER_FORMAT, v->gpu_instance);
        else
                out_kv(8, "GPU Instance ID", "N/A");
        if (v->placement >= 0)
                out_kv(8, "Placement ID", "%" JSON_INTEGER_FORMAT, v->placement);
        else
                out_kv(8, "Placement ID", "N/A");
        out_kv(8, "License Status", "%s", v->license ? v->license : "N/A");
        out_kv(8, "State", "%s", v->state);
        out_kv(8, "Owner UID", "%" JSON_INTEGER_FORMAT, v->owner_uid);
        if (v->engine_pid >= 0)
                out_kv(8, "Engine PID", "%" JSON_INTEGER_FORMAT, v->engine_pid);
        else
                out_kv(8, "Engine PID", "N/A");
        out_kv(8, "Guests Attached", "%" JSON_INTEGER_FORMAT, v->guests);
        out_kv(8, "Created", "%s", v->created_at);
        printf("        FB Memory Usage\n");
        out_kv(12, "Total", "%" JSON_INTEGER_FORMAT " MiB", v->fb_mib);
        /* vgpud will report guest allocations once guests attach; with none, none is used. */
        if (v->fb_used_mib >= 0 && v->fb_used_mib <= v->fb_mib) {
                out_kv(12, "Used", "%" JSON_INTEGER_FORMAT " MiB", v->fb_used_mib);
                out_kv(12, "Free", "%" JSON_INTEGER_FORMAT " MiB", v->fb_mib - v->fb_used_mib);
        } else if (v->guests == 0) {
                out_kv(12, "Used", "0 MiB");
                out_kv(12, "Free", "%" JSON_INTEGER_FORMAT " MiB", v->fb_mib);
        } else {
                out_kv(12, "Used", "N/A");
                out_kv(12, "Free", "N/A");
        }
        /* As nvidia-smi: the vGPU's share of its GPU; only its scheduler measures that. */
        printf("        Utilization\n");
        if (v->util_pct >= 0)
                out_kv(12, "Gpu", "%.0f %%", v->util_pct);
        else
                out_kv(12, "Gpu", "N/A");
        out_kv(12, "Memory", "N/A");
        out_kv(12, "Encoder", "N/A");
        out_kv(12, "Decoder", "N/A");
}

int ctl_query(int argc, char **argv, const struct ctl_opts *opts)
{
        static const struct option longopts[] = {
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        char esc[API_ID_MAX], path[API_ID_MAX + 32];
        const char *uuid = NULL;
        json_t *gdoc = NULL, *vdoc = NULL, *gpus, *vgpus, *go, *vo;
        size_t i, j;
        int c, r = 1;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (c) {
                case 'h':
                        puts("usage: vgpuctl [--json] query [UUID]");
                        return 0;
                default:
                        return out_bad_option("query", argv[optind - 1]);
                }
        }
        if (optind < argc)
                uuid = argv[optind++];
        if (optind < argc)
                return out_error("query: unexpected argument '%s'", argv[optind]);

        if (uuid) {
                struct api_vgpu v;

                if (api_escape_id(uuid, "the vGPU UUID", esc))
                        return 1;
                snprintf(path, sizeof(path), "/v1/vgpus/%s", esc);
                if (api_get(opts, path, &vo))
                        return 1;
                if (api_vgpu_read(vo, &v)) {
                        json_decref(vo);
                        return 1;
                }
                if (opts->json)
                        return out_json(vo);
                snprintf(path, sizeof(path), "/v1/gpus/%" JSON_INTEGER_FORMAT, v.gpu);
                vdoc = json_pack("{s:[o]}", "vgpus", vo);
                if (api_get(opts, path, &go))
                        goto out;
                gdoc = json_pack("{s:[o]}", "gpus", go);
        } else {
                if (api_get(opts, "/v1/gpus", &gdoc) || api_get(opts, "/v1/vgpus", &vdoc))
                        goto out;
        }
        gpus = checked_gpus(gdoc);
        vgpus = gpus ? checked_vgpus(vdoc) : NULL;
        if (!vgpus)
                goto out;
        if (opts->json) {
                r = out_json(json_incref(vdoc));
                goto out;
        }
        if (json_array_size(gpus) == 0) {
                puts("No supported devices in vGPU mode");
                r = 0;
                goto out;
        }
        puts("");
        if (print_banner(opts, false))
                goto out;
        json_array_foreach(gpus, i, go)
        {
                struct api_gpu g;

                api_gpu_read(go, &g);
                printf("\nGPU %s\n", g.pci_bus_id);
                /* Active vGPUs counts the GPU's, also when one UUID was asked for. */
                out_kv(4, "Active vGPUs", "%zu", json_array_size(g.vgpus));
                json_array_foreach(vgpus, j, vo)
                {
                        struct api_vgpu v;

                        api_vgpu_read(vo, &v);
                        if (v.gpu == g.id)
                                query_vgpu(&v);
                }
        }
        r = 0;
out:
        json_decref(vdoc);
        json_decref(gdoc);
        return r;
}

int ctl_restart(int argc, char **argv, const struct ctl_opts *opts)
{
        char esc[API_ID_MAX], path[API_ID_MAX + 32];
        json_t *doc = NULL;

        if (argc != 2 || argv[1][0] == '-')
                return out_error("usage: vgpuctl restart UUID (a faulted vGPU: `vgpuctl list` "
                                 "shows its state)");
        if (api_escape_id(argv[1], "the vGPU UUID", esc))
                return 1;
        snprintf(path, sizeof(path), "/v1/vgpus/%s/restart", esc);
        if (api_call(opts, "POST", path, NULL, &doc))
                return 1;
        if (opts->json)
                return out_json(doc);
        printf("Restarted vGPU %s: engine %" JSON_INTEGER_FORMAT "\n", argv[1],
               json_integer_value(json_object_get(doc, "engine_pid")));
        json_decref(doc);
        return 0;
}
