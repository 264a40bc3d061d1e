// SPDX-License-Identifier: Apache-2.0
// The cuda backend of a build made without the CUDA toolkit's headers: it knows no GPU, and says
// why, so that `--backend cuda` fails clearly instead of being unknown.
#include <errno.h>
#include <stdio.h>

#include "backend/backend.h"

static void why(char *err, size_t err_len)
{
        if (err_len)
                snprintf(err, err_len,
                         "this build has no cuda backend (the CUDA toolkit's cuda.h was not "
                         "found when it was built)");
}

static int none_gpus(struct backend_gpu *ret, size_t max, size_t *ret_n, char *err, size_t err_len)
{
        (void)ret, (void)max;
        *ret_n = 0;
        why(err, err_len);
        return -ENODEV;
}

static int none_dev_open(const struct backend_dev_req *req, struct backend_dev **ret, char *err,
                         size_t err_len)
{
        (void)req, (void)ret;
        why(err, err_len);
        return -ENODEV;
}

const struct backend_ops backend_cuda_ops = {
        .name = "cuda",
        .gpus = none_gpus,
        .dev_open = none_dev_open,
};
