/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpud's licensing: while a vGPU has a guest attached, it holds a lease from the configured
 * vgpu-licensed (license/license_holder.h), renews it, and returns it when the last guest goes.
 * Without a lease the vGPU runs at full speed for the grace period, then the scheduler gives it
 * only a minimal share (scheduler_throttle) until a lease is obtained.
 */
#ifndef VGPU_MANAGER_LICENSING_H
#define VGPU_MANAGER_LICENSING_H

#include <stddef.h>
#include <stdint.h>

struct manager;
struct licensing;

struct licensing_config {
        const char *server;     /* the server's Unix socket path (has a '/'), or HOST:PORT (TLS) */
        const char *public_key; /* the server's lease-signing.pub */
        const char *ca_file;    /* TLS: the PEM its certificate verifies against */
        const char *token_file; /* TLS: a file holding the server's client token */
        const char *feature;    /* NULL: the default feature */
        int64_t grace_s;        /* seconds of full speed without a lease; < 0: 20 minutes */
};

/*
 * licensing_new - start holding leases for m's vGPUs (a thread). 0 and *ret, or a negative errno
 * with the reason in err (bad server address, unreadable key or token).
 */
int licensing_new(const struct licensing_config *cfg, struct manager *m, struct licensing **ret,
                  char *err, size_t err_len);

/* licensing_free - stop, and return every lease held. NULL does nothing. */
void licensing_free(struct licensing *l);

/*
 * licensing_status - a vGPU's "License Status" as `nvidia-smi vgpu -q` prints it and its
 * DCGM_FI_DEV_VGPU_LICENSE_STATUS (1/0); -ENOENT when it holds nothing (no guest attached).
 */
int licensing_status(struct licensing *l, const char *uuid, char *text, size_t len,
                     int *ret_metric);

#endif
