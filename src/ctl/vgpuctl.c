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
        {"models", ctl_models, "list the physical GPU models vgpu knows"},
        {"types", ctl_types, "list a model's vGPU types and MIG profiles (--model M [--mig])"},
};

static void usage(FILE *f)
{
        fputs("usage: vgpuctl [--socket PATH] [--json] COMMAND [ARGS]\n\ncommands:\n", f);
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
        struct ctl_opts opts = {.socket = getenv("VGPU_SOCKET"), .json = false};
        int i = 1;

        vgpu_log_init("vgpuctl");
        if (!opts.socket)
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
                if (strcmp(argv[i], commands[c].name) == 0)
                        return commands[c].run(argc - i, argv + i, &opts);
        }
        return out_error("unknown command '%s'; `vgpuctl --help` lists the commands", argv[i]);
}
