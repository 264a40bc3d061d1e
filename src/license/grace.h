/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grace: the licensing state of one vGPU as pure logic, for vgpud's scheduler. From the time, the
 * lease held (if any) and whether the server answers, it says whether the vGPU is licensed,
 * unlicensed within its grace period (full speed), or degraded (a minimal share), and when that
 * next changes by itself. No clock, no I/O: the caller passes the time in.
 */
#ifndef VGPU_LICENSE_GRACE_H
#define VGPU_LICENSE_GRACE_H

#include <stdbool.h>
#include <stdint.h>

/* The product's default: 20 minutes of full capability without a license (product-facts.md). */
#define GRACE_DEFAULT_UNLICENSED_S (20 * 60)

/* "No change is scheduled" for grace_status.until. */
#define GRACE_NEVER INT64_MAX

enum grace_state {
        GRACE_DISABLED = 0, /* licensing switched off (development): full speed, always */
        GRACE_LICENSED,     /* a valid lease is held: full speed */
        GRACE_UNLICENSED,   /* no valid lease, within the grace period: full speed */
        GRACE_DEGRADED,     /* no valid lease, grace period over: minimal share */
};

struct grace_config {
        bool enabled;             /* false: always GRACE_DISABLED */
        int64_t unlicensed_grace; /* seconds of full speed without a lease; < 0: default */
};

/* The per-vGPU memory of the machine: start with grace_init. Owned by the caller. */
struct grace {
        int64_t unlicensed_since; /* when the vGPU last became unlicensed; -1 while licensed */
        int64_t last_expiry;      /* expiry of the last lease seen, 0 when none */
};

/* One observation. */
struct grace_input {
        int64_t now;           /* Unix seconds */
        int64_t lease_expires; /* expiry of the verified lease held, 0 when none */
        bool server_reachable; /* the last contact with the server succeeded */
};

struct grace_status {
        enum grace_state state;
        bool offline;  /* GRACE_LICENSED while the server does not answer (offline grace) */
        int64_t since; /* when the vGPU became unlicensed (GRACE_UNLICENSED/DEGRADED), else 0 */
        int64_t until; /* when the state changes by itself if nothing else does, or GRACE_NEVER */
};

/*
 * grace_init - start the machine for a vGPU whose guest attached at now, with no lease yet: the
 * unlicensed grace period is counted from now.
 */
void grace_init(struct grace *g, int64_t now);

/*
 * grace_step - advance g with one observation and say where the vGPU stands. A lease is valid while
 * in->now < in->lease_expires; when it lapses (even with the server unreachable: the offline grace
 * is the rest of the lease) the unlicensed grace period starts at the lease's expiry. Obtaining a
 * lease restores GRACE_LICENSED at once. Time going backwards is treated as no time passing.
 * Fills *ret; never fails.
 */
void grace_step(struct grace *g, const struct grace_config *cfg, const struct grace_input *in,
                struct grace_status *ret);

/* grace_state_name - "disabled", "licensed", "unlicensed", "degraded" (for JSON and metrics). */
const char *grace_state_name(enum grace_state s);

#endif
