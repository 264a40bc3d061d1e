// SPDX-License-Identifier: Apache-2.0
// One vGPU's lease over time: request, renew on the renewal policy of lease.h, ride out outages on
// the lease held, and feed the grace state machine.
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "license/license_holder.h"

#define HOLDER_DEFAULT_RETRY 30

void license_holder_init(struct license_holder *h, const char *vgpu_uuid, int64_t now)
{
        memset(h, 0, sizeof(*h));
        snprintf(h->vgpu_uuid, sizeof(h->vgpu_uuid), "%s", vgpu_uuid);
        grace_init(&h->grace, now);
        h->reachable = true;
        h->next_try = now;
}

static double fraction_of(const struct license_holder_config *cfg)
{
        return cfg->renew_fraction > 0 ? cfg->renew_fraction : 0.15;
}

static int64_t retry_of(const struct license_holder_config *cfg)
{
        return cfg->retry_interval > 0 ? cfg->retry_interval : HOLDER_DEFAULT_RETRY;
}

static void request(struct license_holder *h, struct license_client *c,
                    const struct license_holder_config *cfg, int64_t now)
{
        struct lease l;
        int r = license_client_request(c, h->vgpu_uuid, now, &l);

        h->last_error = r;
        h->reachable = !license_client_unreachable(r);
        if (r == 0) {
                h->lease = l;
                h->held = true;
                h->next_try = lease_renew_at(&l, now, fraction_of(cfg), retry_of(cfg));
        } else {
                h->next_try = now + retry_of(cfg);
        }
}

static void renew(struct license_holder *h, struct license_client *c,
                  const struct license_holder_config *cfg, int64_t now)
{
        struct lease l;
        int r = license_client_renew(c, &h->lease, now, &l);

        h->last_error = r;
        h->reachable = !license_client_unreachable(r);
        if (r == 0) {
                h->lease = l;
                h->next_try = lease_renew_at(&l, now, fraction_of(cfg), retry_of(cfg));
        } else if (r == -EKEYEXPIRED || r == -ESTALE || r == -ENOENT) {
                /* The server no longer counts this lease: what we hold is worthless to it. */
                h->held = false;
                request(h, c, cfg, now);
        } else {
                h->next_try = lease_renew_at(&h->lease, now, fraction_of(cfg), retry_of(cfg));
        }
}

void license_holder_tick(struct license_holder *h, struct license_client *c,
                         const struct license_holder_config *cfg, int64_t now,
                         struct grace_status *ret, int64_t *ret_next)
{
        struct grace_input in = {.now = now};
        struct grace_status st;

        if (cfg->grace.enabled && c) {
                if (h->held && now >= h->lease.expires)
                        h->held = false; /* lapsed: offline grace over */
                if (now >= h->next_try) {
                        if (h->held)
                                renew(h, c, cfg, now);
                        else
                                request(h, c, cfg, now);
                }
        }
        in.lease_expires = h->held ? h->lease.expires : 0;
        in.server_reachable = h->reachable;
        grace_step(&h->grace, &cfg->grace, &in, &st);
        *ret = st;
        if (!cfg->grace.enabled || !c)
                *ret_next = st.until;
        else
                *ret_next = st.until < h->next_try ? st.until : h->next_try;
}

int license_holder_release(struct license_holder *h, struct license_client *c)
{
        int r = 0;

        if (h->held && c)
                r = license_client_release(c, &h->lease);
        h->held = false;
        return r;
}

int license_holder_status_text(const struct license_holder *h, const struct grace_status *st,
                               char *buf, size_t len)
{
        int n;

        switch (st->state) {
        case GRACE_LICENSED:
                return lease_status_text(&h->lease, buf, len);
        case GRACE_UNLICENSED:
                n = snprintf(buf, len, "Unlicensed (Unrestricted)");
                break;
        case GRACE_DEGRADED:
                n = snprintf(buf, len, "Unlicensed (Restricted)");
                break;
        default:
                n = snprintf(buf, len, "Not Required");
                break;
        }
        return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int license_holder_metric(const struct grace_status *st)
{
        return st->state == GRACE_LICENSED;
}
