/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Migration between vgpuds (docs/migration.md): the listener that takes vGPUs other vgpuds move
 * here, and the source side of `vgpuctl migrate UUID --to HOST:PORT`. Both ends prove they hold
 * the same secret (common/migwire.h); then vgpud offers the vGPU, the target places it, and the
 * two engines move it over the same connection (engine/transfer.h).
 */
#ifndef VGPU_MANAGER_MIGRATE_PEER_H
#define VGPU_MANAGER_MIGRATE_PEER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "manager/manager.h"

struct migrate_peer;

/*
 * migrate_peer_new - load the secret (secret_path, mw_secret_load's checks) and, when listen
 * ("ADDR:PORT") is given, start taking migrations there. 0 and *ret, or a negative errno with
 * err set.
 */
int migrate_peer_new(struct manager *m, const char *listen, const char *secret_path, bool guests,
                     struct migrate_peer **ret, char *err, size_t len);

/*
 * With guests, the listener takes remote guests instead (docs/remote.md): {"op": "attach"} for a
 * vGPU here, {"op": "reattach"} after one moved here; the vGPU's engine takes the connection.
 * migrate_peer_set_guest_port - the port of this vgpud's guest listener, which the migration
 * listener tells sources (their remote guests follow there).
 */
void migrate_peer_set_guest_port(struct migrate_peer *p, int port);

/* migrate_peer_port - the TCP port it listens on (for ":0"), or 0. */
int migrate_peer_port(const struct migrate_peer *p);

/* migrate_peer_free - stop listening (migrations under way finish first). NULL does nothing. */
void migrate_peer_free(struct migrate_peer *p);

/*
 * migrate_to_locked - move v to the vgpud at to ("HOST:PORT"), with pre-copy when asked. The
 * manager's lock is let go meanwhile (v is busy). 0 once v lives there (it is gone from here;
 * *ret says what the engine measured), or a code with err set and v running here as before:
 * VGPU_EPEER (the peer failed or refused), VGPU_EBUSY, VGPU_ENOT_RUNNING, VGPU_ESUSPENDED, or
 * -ENOTSUP (no secret: vgpud was started without --migrate-secret).
 */
int migrate_to_locked(struct migrate_peer *p, struct mgr_vgpu *v, const char *to, bool precopy,
                      json_t **ret, char *err, size_t len);

#endif
