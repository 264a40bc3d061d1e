// SPDX-License-Identifier: Apache-2.0
// vgpuctl: the command-line client of vgpu. Parses the global options, then hands the rest of the
// command line to the command's handler.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ctl/ctl.h"
#include "ctl/out.h"

static const struct {
        const char *name;
        int (*run)(int argc, char **argv, const struct ctl_opts *opts);
        const char *help;
} commands[] = {
        {"models", ctl_models, "list the physical GPU models vgpu knows (no daemon)"},
        {"types", ctl_types,
         "vGPU types: vgpud's [-s|-c] [--gpu ID], or the catalog's (--model M [--mig])"},
        {"gpus", ctl_gpus, "list the physical GPUs vgpud manages [ID]"},
        {"mode", ctl_mode, "show or set a GPU's mode: [--gpu ID] [homogeneous|heterogeneous|mig]"},
        {"sched", ctl_sched,
         "show or set the scheduler: [--gpu ID] [--policy P] [--timeslice-ms N]"},
        {"util", ctl_util, "vGPU utilization, as `nvidia-smi vgpu -u` [-l SECONDS]"},
        {"create", ctl_create,
         "create a vGPU: [--gpu ID] --type NAME [--placement P] [--gpu-instance GI] [--uuid U] "
         "[--owner UID]"},
        {"destroy", ctl_destroy, "destroy vGPUs: UUID... [--force]"},
        {"restart", ctl_restart, "restart a faulted vGPU's engine: UUID"},
        {"suspend", ctl_suspend, "suspend a vGPU to an image: UUID [--to FILE]"},
        {"resume", ctl_resume, "resume a suspended vGPU: UUID [--gpu ID]"},
        {"migrate", ctl_migrate, "move a running vGPU to another GPU: UUID --gpu ID [--precopy]"},
        {"list", ctl_list, "the GPUs and their vGPUs, as `nvidia-smi vgpu` [--gpu ID]"},
        {"query", ctl_query, "vGPU details, as `nvidia-smi vgpu -q` [UUID]"},
        {"mig", ctl_mig,
         "GPU instances: [--gpu ID] -lgip | -lgipp | -lgi | -cgi PROFILE [--start S] | -dgi ID"},
        {"license", ctl_license, "the license server: status | pools | leases | verify (--help)"},
};

static void usage(FILE *f)
{
        fputs("usage: vgpuctl [--socket PATH] [--json] COMMAND [ARGS]\n\n"
              "vgpud's socket: --socket PATH, else $VGPU_SOCKET, else /run/vgpu/vgpud.sock\n\n"
              "commands:\n",
              f);
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

/* --json is global, but scripts also put it after the command: take it out of the command's
 * arguments (up to a "--") so no command has to know it. Returns the new argc.
 */
static int take_json(int argc, char **argv, int from, struct ctl_opts *opts)
{
        int o = from;

        for (int i = from; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0) {
                        while (i < argc)
                                argv[o++] = argv[i++];
                        break;
                }
                if (strcmp(argv[i], "--json") == 0)
                        opts->json = true;
                else
                        argv[o++] = argv[i];
        }
        argv[o] = NULL;
        return o;
}

int main(int argc, char **argv)
{
        struct ctl_opts opts = {.socket = getenv("VGPU_SOCKET"), .json = false};
        int i = 1;

        vgpu_log_init("vgpuctl");
        if (!opts.socket || !*opts.socket)
                opts.socket = "/run/vgpu/vgpud.sock";
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (strcmp(argv[i], "--json") == 0) {
                        opts.json = true;
                } else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
                        opts.socket = argv[++i];
                } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        usage(stdout);
                        return 0;
                } else {
                        return out_error("unknown option '%s'; `vgpuctl --help` lists them",
                                         argv[i]);
                }
        }
        if (i >= argc) {
                usage(stderr);
                return 1;
        }
        for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
                if (strcmp(argv[i], commands[c].name) == 0) {
                        argc = take_json(argc, argv, i + 1, &opts);
                        return commands[c].run(argc - i, argv + i, &opts);
                }
        }
        return out_error("unknown command '%s'; `vgpuctl --help` lists the commands", argv[i]);
}
