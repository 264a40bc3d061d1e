/* SPDX-License-Identifier: Apache-2.0 */
/* vgpuctl's commands: each takes the command's own argv (argv[0] = command name) and global opts.
 */
#ifndef VGPU_CTL_CTL_H
#define VGPU_CTL_CTL_H

#include <stdbool.h>

struct ctl_opts {
        const char *socket; /* vgpud's control socket */
        bool json;          /* --json: the API's JSON instead of text */
};

/* Each returns the process exit status: 0, or 1 after printing one line on stderr. */
int ctl_types(int argc, char **argv, const struct ctl_opts *opts);
int ctl_models(int argc, char **argv, const struct ctl_opts *opts);

#endif
