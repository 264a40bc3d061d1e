/* SPDX-License-Identifier: Apache-2.0 */
/*
 * license_holder: one vGPU's license as vgpud keeps it while a guest is attached. Each tick it
 * requests a lease when it has none, renews the one it holds when due (at a fraction of the time
 * left), keeps it through server outages until it expires (offline grace), and runs the grace state
 * machine (grace.h), saying whether the vGPU runs at full speed or degraded and when to tick again.
 * The caller passes the time in and owns the struct; one thread at a time.
 */
#ifndef VGPU_LICENSE_LICENSE_HOLDER_H
#define VGPU_LICENSE_LICENSE_HOLDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "license/grace.h"
#include "license/lease.h"
#include "license/license_client.h"

struct license_holder_config {
        struct grace_config grace; /* enabled false: licensing off, nothing is requested */
        double renew_fraction;     /* renew after this fraction of the time left; <= 0: 0.15 */
        int64_t retry_interval;    /* seconds between tries after a refusal or outage; <= 0: 30 */
};

struct license_holder {
        char vgpu_uuid[LEASE_NAME_MAX];
        struct grace grace;
        struct lease lease; /* valid while held */
        bool held;
        bool reachable;   /* the last contact with the server got an answer */
        int last_error;   /* of the last contact: 0 or a negative errno (license_client.h) */
        int64_t next_try; /* when the server is due to be contacted */
};

/* license_holder_init - start holding for vgpu_uuid, whose guest attached at now (no lease yet). */
void license_holder_init(struct license_holder *h, const char *vgpu_uuid, int64_t now);

/*
 * license_holder_tick - contact the server through c when due (c may be NULL with licensing off),
 * then fill *ret with the vGPU's state and *ret_next with when to tick again at the latest (the
 * next contact, or the next change of state). A lease the server refuses to renew (expired,
 * released, unknown) is dropped and a new one requested at once; a renewal that fails for any other
 * reason keeps the lease until it expires.
 */
void license_holder_tick(struct license_holder *h, struct license_client *c,
                         const struct license_holder_config *cfg, int64_t now,
                         struct grace_status *ret, int64_t *ret_next);

/*
 * license_holder_release - return the lease (guest detached); the holder then holds none. Returns
 * 0 (also when none was held) or the error of license_client_release (the lease then simply
 * expires on the server).
 */
int license_holder_release(struct license_holder *h, struct license_client *c);

/*
 * license_holder_status_text - the "License Status" of `nvidia-smi vgpu -q` for st:
 * "Licensed (Expiry: YYYY-M-D hh:mm:ss GMT)", "Unlicensed (Unrestricted)" within the grace period,
 * "Unlicensed (Restricted)" when degraded, "Not Required" with licensing off. Returns 0 or -ENOSPC.
 */
int license_holder_status_text(const struct license_holder *h, const struct grace_status *st,
                               char *buf, size_t len);

/* license_holder_metric - DCGM_FI_DEV_VGPU_LICENSE_STATUS for st: 1 licensed, 0 not. */
int license_holder_metric(const struct grace_status *st);

#endif
