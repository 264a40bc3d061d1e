// SPDX-License-Identifier: Apache-2.0
// The licensing state machine of one vGPU: licensed while a lease is valid, then a grace period of
// full speed, then degraded until a lease is obtained again. Pure logic over the times given.
#include "license/grace.h"

void grace_init(struct grace *g, int64_t now)
{
        g->unlicensed_since = now;
        g->last_expiry = 0;
}

void grace_step(struct grace *g, const struct grace_config *cfg, const struct grace_input *in,
                struct grace_status *ret)
{
        int64_t grace =
                cfg->unlicensed_grace < 0 ? GRACE_DEFAULT_UNLICENSED_S : cfg->unlicensed_grace;
        struct grace_status st = {.state = GRACE_DISABLED, .until = GRACE_NEVER};
        int64_t end;

        if (!cfg->enabled) {
                *ret = st;
                return;
        }
        if (in->lease_expires > in->now) {
                g->unlicensed_since = -1;
                g->last_expiry = in->lease_expires;
                st.state = GRACE_LICENSED;
                st.offline = !in->server_reachable;
                st.until = in->lease_expires;
                *ret = st;
                return;
        }
        if (g->unlicensed_since < 0) {
                /* The lease lapsed: the grace period runs from its expiry, not from when we looked
                 * (a vgpud that was stopped meanwhile must not hand out a fresh grace period).
                 */
                g->unlicensed_since =
                        g->last_expiry > 0 && g->last_expiry <= in->now ? g->last_expiry : in->now;
        }
        if (in->lease_expires > g->last_expiry)
                g->last_expiry = in->lease_expires;
        st.since = g->unlicensed_since;
        end = g->unlicensed_since > GRACE_NEVER - grace ? GRACE_NEVER : g->unlicensed_since + grace;
        if (in->now < end) {
                st.state = GRACE_UNLICENSED;
                st.until = end;
        } else {
                st.state = GRACE_DEGRADED;
        }
        *ret = st;
}

const char *grace_state_name(enum grace_state s)
{
        switch (s) {
        case GRACE_DISABLED:
                return "disabled";
        case GRACE_LICENSED:
                return "licensed";
        case GRACE_UNLICENSED:
                return "unlicensed";
        case GRACE_DEGRADED:
                return "degraded";
        }
        return "unknown";
}
