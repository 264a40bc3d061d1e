/* SPDX-License-Identifier: Apache-2.0 */
/* vgpuctl's commands: each takes the command's own argv (argv[0] = command name) and global opts.
 */
#ifndef VGPU_CTL_CTL_H
#define VGPU_CTL_CTL_H

#include <stdbool.h>

struct ctl_opts {
        const char *socket;           /* vgpud's control socket */
        bool json;                    /* --json: the API's JSON instead of text */
        const char *unreachable_hint; /* added to "cannot reach vgpud" errors, or NULL */
};

/*
 * Each returns the process exit status: 0, or 1 after printing one line on stderr. With
 * opts->json, a command that talks to vgpud prints the API's JSON document instead of text.
 */
/* models: the catalog's GPU models (no daemon). */
int ctl_models(int argc, char **argv, const struct ctl_opts *opts);
/* types --model M [--mig]: the catalog; types [-s|-c] [--gpu ID] [--mig]: vgpud's view. */
int ctl_types(int argc, char **argv, const struct ctl_opts *opts);
/* gpus [ID]: the physical GPUs vgpud manages. */
int ctl_gpus(int argc, char **argv, const struct ctl_opts *opts);
/* mode [--gpu ID] [homogeneous|heterogeneous|mig]: show, or set, a GPU's vGPU mode. */
int ctl_mode(int argc, char **argv, const struct ctl_opts *opts);
int ctl_sched(int argc, char **argv, const struct ctl_opts *opts);
int ctl_util(int argc, char **argv, const struct ctl_opts *opts);
/* create [--gpu ID] --type NAME [--placement P] [--gpu-instance GI] [--uuid U] [--owner UID]. */
int ctl_create(int argc, char **argv, const struct ctl_opts *opts);
/* destroy UUID... [--force]. */
int ctl_destroy(int argc, char **argv, const struct ctl_opts *opts);
int ctl_restart(int argc, char **argv, const struct ctl_opts *opts);
/* suspend UUID [--to FILE]; resume UUID [--gpu ID]; migrate UUID --gpu ID (docs/migration.md). */
int ctl_suspend(int argc, char **argv, const struct ctl_opts *opts);
int ctl_resume(int argc, char **argv, const struct ctl_opts *opts);
int ctl_migrate(int argc, char **argv, const struct ctl_opts *opts);
/* list [--gpu ID]: the `nvidia-smi vgpu` table. */
int ctl_list(int argc, char **argv, const struct ctl_opts *opts);
/* query [UUID]: the `nvidia-smi vgpu -q` report. */
int ctl_query(int argc, char **argv, const struct ctl_opts *opts);
/* mig [--gpu ID] -lgip|-lgipp|-lgi|-cgi PROFILE[,..] [--start S]|-dgi ID: GPU instances. */
int ctl_mig(int argc, char **argv, const struct ctl_opts *opts);
/* license [--server S|--url U --ca C] status|pools|leases|pool-create|verify: vgpu-licensed. */
int ctl_license(int argc, char **argv, const struct ctl_opts *opts);

#endif
