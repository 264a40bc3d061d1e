/* SPDX-License-Identifier: Apache-2.0 */
/*
 * license_client: the client side of vgpu-licensed, for vgpud. It requests, renews and releases
 * leases over the server's Unix socket or TCP+TLS, and verifies every lease it receives offline
 * with the server's public key before handing it over. With lease.h (lease_renew_at,
 * lease_status_text) and grace.h (the grace/degradation state machine) it is all vgpud needs:
 *
 *   on guest attach:  grace_init(&g, now); license_client_request(c, uuid, now, &lease)
 *   each tick:        if (held && now >= renew_at) license_client_renew(...), on failure keep
 *                     the lease (offline grace) and renew_at = lease_renew_at(&lease, now, f, 5);
 *                     grace_step(&g, &cfg, &(struct grace_input){now, held ? lease.expires : 0,
 *                     reachable}, &st) -> full speed or a minimal share, and when to look again
 *   on guest detach:  license_client_release(c, &lease)
 *
 * A client is used by one thread at a time; it keeps no connection open between calls.
 */
#ifndef VGPU_LICENSE_LICENSE_CLIENT_H
#define VGPU_LICENSE_LICENSE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "license/lease.h"

/* The feature vgpu's leases name unless configured otherwise. */
#define LICENSE_DEFAULT_FEATURE "vgpu-compute"

struct license_client_config {
        const char *socket_path;     /* the server's Unix socket; NULL: TCP+TLS below */
        const char *host;            /* TCP+TLS: the server's name or address, */
        unsigned short port;         /* its port, */
        const char *ca_file;         /* the PEM file its certificate must verify against, */
        const char *client_token;    /* and the server's client-token (NULL: none sent) */
        const char *public_key_file; /* the server's lease-signing.pub (required) */
        const char *feature;         /* NULL: LICENSE_DEFAULT_FEATURE */
        const char *client_host;     /* this host's name in leases; NULL: gethostname() */
        int timeout_ms;              /* per request; <= 0: 10 s */
};

struct license_client;

/*
 * license_client_new - check cfg and load the server's public key. Copies what it needs from cfg.
 * Returns 0 and *ret, or -EINVAL (no server, bad feature or host name), the errors of
 * lease_key_load, or -ENOMEM.
 */
int license_client_new(const struct license_client_config *cfg, struct license_client **ret);

/* license_client_free - free c (held leases are not released). NULL does nothing. */
void license_client_free(struct license_client *c);

/*
 * license_client_request - ask for a lease of the configured feature for vgpu_uuid at now (the
 * caller's clock, used to check the lease). A vGPU that holds a lease already gets it back.
 * Returns 0 and *ret (verified: signature, feature, vGPU, host, not expired at now), or
 * -ENOSPC (no free seat), -ENOENT (the server has no pool of the feature), -EKEYREJECTED (the
 * lease does not verify with the public key: a forged reply or the wrong key), -EBADMSG (the
 * reply is not a lease), -EKEYEXPIRED (expired on arrival: clocks apart), -EINVAL (bad
 * vgpu_uuid or refused as a bad request), -EPERM (over TCP without the right client token), a
 * transport error of http_request (see license_client_unreachable), or -EPROTO (any other
 * refusal). *ret untouched on failure.
 */
int license_client_request(struct license_client *c, const char *vgpu_uuid, int64_t now,
                           struct lease *ret);

/*
 * license_client_renew - renew held at now. Returns 0 and *ret (verified as above, same lease
 * ID), or -EKEYEXPIRED (it expired: its seat is gone; request a new one), -ESTALE (it was
 * released), -ENOENT (the server does not know it), or the other errors of request.
 */
int license_client_renew(struct license_client *c, const struct lease *held, int64_t now,
                         struct lease *ret);

/*
 * license_client_release - return held. Returns 0 (also when the server had let it expire or
 * forgotten it), a transport error, or -EPROTO.
 */
int license_client_release(struct license_client *c, const struct lease *held);

/*
 * license_client_verify - verify a token offline as request does (signature with the server's
 * key, the configured feature, vgpu_uuid, valid at now). Returns 0 and *ret, or the errors of
 * lease_verify and lease_check, or -EKEYREJECTED for another feature.
 */
int license_client_verify(const struct license_client *c, const char *token, const char *vgpu_uuid,
                          int64_t now, struct lease *ret);

/*
 * license_client_check - ask the server for its health and check that it signs with the key this
 * client trusts (a misconfiguration found at start rather than at the first lease). Returns 0 and
 * the server's clock in *ret_server_time (to warn about skew), or -EKEYREJECTED (another key),
 * -EBADMSG (not vgpu-licensed's health reply), a transport error, or -EPROTO.
 */
int license_client_check(struct license_client *c, int64_t *ret_server_time);

/*
 * license_client_unreachable - whether err (from the calls above) means the server could not be
 * reached or did not answer, as opposed to an answer; feeds grace_input.server_reachable.
 */
bool license_client_unreachable(int err);

#endif
