/* SPDX-License-Identifier: Apache-2.0 */
/*
 * license_store: vgpu-licensed's state in SQLite (WAL, synchronous=FULL): license pools (feature,
 * seats, expiry), leases, and the clients that held them. Each grant, renewal or release is one
 * IMMEDIATE transaction that counts the seats in use inside it, so seats are never over-issued,
 * even by several processes or connections at once, and a committed lease survives kill -9.
 * An expired lease stops counting against its pool at its expiry time.
 */
#ifndef VGPU_LICENSE_LICENSE_STORE_H
#define VGPU_LICENSE_LICENSE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "license/lease.h"

struct license_store;

/* A pool as stored, with its seats in use at the time asked. */
struct license_pool {
        char name[LEASE_NAME_MAX];
        char feature[LEASE_NAME_MAX];
        int64_t seats;   /* >= 0 */
        int64_t expires; /* Unix seconds; 0: never */
        int64_t created;
        int64_t leased; /* leases active now (listing only) */
};

/* A lease as stored (its token left out). */
struct license_lease_row {
        char id[LEASE_ID_MAX];
        char pool[LEASE_NAME_MAX];
        char feature[LEASE_NAME_MAX];
        char vgpu_uuid[LEASE_NAME_MAX];
        char host[LEASE_NAME_MAX];
        int64_t issued, expires;
        int64_t released; /* Unix seconds, or 0 while not released */
        int64_t renewals;
};

/*
 * license_store_open - open (creating) the database at path. One handle is used by one thread at a
 * time; several handles (threads, processes) may share one database. Returns 0 and *ret, or -EIO
 * (logged at debug) / -ENOMEM.
 */
int license_store_open(const char *path, struct license_store **ret);

/* license_store_close - close the handle. NULL does nothing. */
void license_store_close(struct license_store *s);

/*
 * license_store_pool_create - add pool p (name, feature valid per lease_name_valid; seats >= 0;
 * expires 0 or later than now), created at now. Returns 0, -EEXIST (a pool of that name),
 * -EINVAL, or -EIO.
 */
int license_store_pool_create(struct license_store *s, const struct license_pool *p, int64_t now);

/*
 * license_store_pool_get - pool name with its seats in use at now into *ret. Returns 0, -ENOENT
 * or -EIO.
 */
int license_store_pool_get(struct license_store *s, const char *name, int64_t now,
                           struct license_pool *ret);

/*
 * license_store_each_pool / license_store_each_lease - call fn for each pool (by creation), or
 * each lease (by issue time; all: also released and expired ones), as seen at now. fn returning
 * non-zero stops the walk with that value. Returns 0, fn's value, or -EIO.
 */
int license_store_each_pool(struct license_store *s, int64_t now,
                            int (*fn)(void *ctx, const struct license_pool *p), void *ctx);
int license_store_each_lease(struct license_store *s, int64_t now, bool all,
                             int (*fn)(void *ctx, const struct license_lease_row *l), void *ctx);

/*
 * license_store_grant - a lease of feature for the client (vgpu_uuid, host) at now, length
 * seconds long (cut at its pool's expiry), signed with key, committed before it returns. A client
 * that already holds an active lease of feature gets that lease back (*ret_existing true), so a
 * retried request never takes a second seat. Returns 0 and *ret, or -EINVAL (bad names),
 * -ENOENT (no pool has feature, or all of them expired), -ENOSPC (every seat is taken), -EIO.
 */
int license_store_grant(struct license_store *s, const struct lease_key *key, const char *feature,
                        const char *vgpu_uuid, const char *host, int64_t now, int64_t length,
                        struct lease *ret, bool *ret_existing);

/*
 * license_store_renew - extend lease id to now + length (cut at its pool's expiry) with a new
 * signature. Returns 0 and *ret, or -ENOENT (no such lease), -ESTALE (it was released),
 * -EKEYEXPIRED (it expired: its seat is free; request a new lease), -EIO.
 */
int license_store_renew(struct license_store *s, const struct lease_key *key, const char *id,
                        int64_t now, int64_t length, struct lease *ret);

/*
 * license_store_release - return lease id at now, freeing its seat. Releasing a released or
 * expired lease succeeds and changes nothing. Returns 0, -ENOENT or -EIO.
 */
int license_store_release(struct license_store *s, const char *id, int64_t now);

/*
 * license_store_lease_get - lease id as stored into *ret. Returns 0, -ENOENT or -EIO.
 */
int license_store_lease_get(struct license_store *s, const char *id, struct license_lease_row *ret);

#endif
