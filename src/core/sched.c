// SPDX-License-Identifier: Apache-2.0
// The scheduling core: policy names and RmPVMRL, time slice rules, and the run queue's pick and
// charge in virtual time. An entity's vtime grows by its turns' time over its share: the time
// itself under best effort and equal share (equal shares need no normalising), the time times
// share_slots under fixed share, where the empty slots are one ghost entity with what is left.
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "core/sched.h"

// The whole GPU in the fixed-point units of the ghost's share.
#define SHARE_ONE (1ull << 20)
// Past this the virtual times are moved down, long before they could overflow.
#define VTIME_REBASE (1ull << 62)

static const char *const policy_names[] = {
        [SCHED_BEST_EFFORT] = "best-effort",
        [SCHED_EQUAL_SHARE] = "equal-share",
        [SCHED_FIXED_SHARE] = "fixed-share",
};

static const struct {
        const char *name;
        enum sched_policy policy;
} policy_aliases[] = {
        {"best-effort", SCHED_BEST_EFFORT}, {"equal-share", SCHED_EQUAL_SHARE},
        {"fixed-share", SCHED_FIXED_SHARE}, {"equal", SCHED_EQUAL_SHARE},
        {"fixed", SCHED_FIXED_SHARE},
};

static const uint32_t rmpvmrl_codes[] = {
        [SCHED_BEST_EFFORT] = SCHED_RMPVMRL_BEST_EFFORT,
        [SCHED_EQUAL_SHARE] = SCHED_RMPVMRL_EQUAL_SHARE,
        [SCHED_FIXED_SHARE] = SCHED_RMPVMRL_FIXED_SHARE,
};

static bool policy_valid(enum sched_policy p)
{
        return (unsigned)p < sizeof(policy_names) / sizeof(policy_names[0]);
}

const char *sched_policy_name(enum sched_policy p)
{
        return policy_valid(p) ? policy_names[p] : "unknown";
}

// Whether s spells canon (lower case, '-'), ignoring case and taking '_' for '-'.
static bool name_matches(const char *s, const char *canon)
{
        for (;; s++, canon++) {
                int c = *s == '_' ? '-' : tolower((unsigned char)*s);

                if (c != *canon)
                        return false;
                if (!c)
                        return true;
        }
}

int sched_policy_parse(const char *s, enum sched_policy *ret)
{
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(policy_aliases) / sizeof(policy_aliases[0]); i++) {
                if (name_matches(s, policy_aliases[i].name)) {
                        *ret = policy_aliases[i].policy;
                        return 0;
                }
        }
        return -EINVAL;
}

static uint32_t slice_cap(uint32_t ms)
{
        return ms > SCHED_SLICE_MAX_MS ? SCHED_SLICE_MAX_MS : ms;
}

int sched_rmpvmrl_decode(uint32_t v, enum sched_policy *ret_policy, uint32_t *ret_slice_ms)
{
        uint32_t code = v & SCHED_RMPVMRL_POLICY_MASK;
        enum sched_policy p;

        // Frequency and averaging factor (adaptive round robin) live in the other bits; reading
        // such a value as a plain slice would be wrong, so it is refused.
        if (v & ~(SCHED_RMPVMRL_POLICY_MASK | SCHED_RMPVMRL_SLICE_MASK))
                return -EINVAL;
        if (code == SCHED_RMPVMRL_BEST_EFFORT)
                p = SCHED_BEST_EFFORT;
        else if (code == SCHED_RMPVMRL_EQUAL_SHARE)
                p = SCHED_EQUAL_SHARE;
        else if (code == SCHED_RMPVMRL_FIXED_SHARE)
                p = SCHED_FIXED_SHARE;
        else
                return -EINVAL;
        *ret_policy = p;
        *ret_slice_ms = slice_cap((v & SCHED_RMPVMRL_SLICE_MASK) >> SCHED_RMPVMRL_SLICE_SHIFT);
        return 0;
}

uint32_t sched_rmpvmrl_encode(enum sched_policy p, uint32_t slice_ms)
{
        if (!policy_valid(p))
                return UINT32_MAX;
        return rmpvmrl_codes[p] | slice_cap(slice_ms) << SCHED_RMPVMRL_SLICE_SHIFT;
}

uint32_t sched_default_slice_ms(uint32_t type_max_instances)
{
        return type_max_instances <= 8 ? 2 : 1;
}

int sched_slice_ms_check(uint32_t ms, uint32_t *ret_ms)
{
        if (ms < SCHED_SLICE_MIN_MS)
                return -EINVAL;
        *ret_ms = slice_cap(ms);
        return 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
        return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

void sched_rq_init(struct sched_rq *rq, enum sched_policy p, uint64_t slice_ns)
{
        memset(rq, 0, sizeof(*rq));
        rq->policy = policy_valid(p) ? p : SCHED_BEST_EFFORT;
        rq->slice_ns = slice_ns ? slice_ns : 2 * SCHED_NS_PER_MS;
        rq->turn = SCHED_TURN_NONE;
        rq->turn_policy = rq->policy;
        rq->turn_slice_ns = rq->slice_ns;
}

int sched_rq_find(const struct sched_rq *rq, uint32_t id)
{
        for (size_t i = 0; i < rq->n; i++) {
                if (rq->e[i].id == id)
                        return (int)i;
        }
        return -ENOENT;
}

int sched_rq_add(struct sched_rq *rq, uint32_t id, uint32_t share_slots)
{
        struct sched_entity *e;

        if (!share_slots)
                return -EINVAL;
        if (sched_rq_find(rq, id) >= 0)
                return -EEXIST;
        if (rq->n >= SCHED_MAX)
                return -ENOSPC;
        e = &rq->e[rq->n];
        memset(e, 0, sizeof(*e));
        e->id = id;
        e->share_slots = share_slots;
        // Level with the least-served eligible entity: it neither owes time nor is owed any.
        e->vtime = rq->vnow;
        rq->n++;
        return 0;
}

int sched_rq_remove(struct sched_rq *rq, uint32_t id)
{
        int i = sched_rq_find(rq, id);

        if (i < 0)
                return i;
        memmove(&rq->e[i], &rq->e[i + 1], (rq->n - (size_t)i - 1) * sizeof(rq->e[0]));
        rq->n--;
        memset(&rq->e[rq->n], 0, sizeof(rq->e[0]));
        if (rq->turn == i)
                rq->turn = SCHED_TURN_NONE;
        else if (rq->turn > i)
                rq->turn--;
        return 0;
}

int sched_rq_set_policy(struct sched_rq *rq, enum sched_policy p, uint64_t slice_ns,
                        bool mixed_sizes)
{
        if (!policy_valid(p) || !slice_ns)
                return -EINVAL;
        // The product allows only best effort and equal share on a GPU with mixed sizes.
        if (p == SCHED_FIXED_SHARE && mixed_sizes)
                return -EINVAL;
        // Virtual times of different policies are in different units: start level.
        if (p != rq->policy)
                rq->relevel = true;
        rq->policy = p;
        rq->slice_ns = slice_ns;
        return 0;
}

// The virtual time a turn of ns costs e under policy p: ns over its share.
static uint64_t entity_vdelta(const struct sched_entity *e, enum sched_policy p, uint64_t ns)
{
        return p == SCHED_FIXED_SHARE ? sat_mul(ns, e->share_slots) : ns;
}

// The empty slots' share under fixed share, in SHARE_ONE units: what the vGPUs' shares leave.
// Rounding each 1/share_slots down loses under one unit per vGPU, so a remainder within that is
// rounding, not an empty slot. vGPUs whose shares add up to more than the GPU share it in
// proportion and leave nothing.
static uint64_t ghost_share(const struct sched_rq *rq)
{
        uint64_t taken = 0;

        for (size_t i = 0; i < rq->n; i++)
                taken += SHARE_ONE / rq->e[i].share_slots;
        if (taken + rq->n >= SHARE_ONE)
                return 0;
        return SHARE_ONE - taken;
}

// ns over the ghost's share (share / SHARE_ONE), without overflowing the product.
static uint64_t ghost_vdelta(uint64_t ns, uint64_t share)
{
        uint64_t q = ns / share, r = ns % share;

        return sat_add(sat_mul(q, SHARE_ONE), r * SHARE_ONE / share);
}

static void rq_level(struct sched_rq *rq)
{
        for (size_t i = 0; i < rq->n; i++)
                rq->e[i].vtime = 0;
        rq->ghost_vtime = 0;
        rq->vnow = 0;
        rq->relevel = false;
}

// Only differences of virtual times matter: move them all down by vnow, keeping every lead.
static void rq_rebase(struct sched_rq *rq)
{
        uint64_t base = rq->vnow;

        for (size_t i = 0; i < rq->n; i++)
                rq->e[i].vtime = rq->e[i].vtime > base ? rq->e[i].vtime - base : 0;
        rq->ghost_vtime = rq->ghost_vtime > base ? rq->ghost_vtime - base : 0;
        rq->vnow = 0;
}

int sched_pick(struct sched_rq *rq)
{
        int best = SCHED_TURN_NONE;
        uint64_t best_v = 0;

        if (rq->relevel)
                rq_level(rq);
        if (rq->vnow >= VTIME_REBASE)
                rq_rebase(rq);
        rq->turn_policy = rq->policy;
        rq->turn_slice_ns = rq->slice_ns;
        for (size_t i = 0; i < rq->n; i++) {
                struct sched_entity *e = &rq->e[i];

                // Equal and fixed share give a turn whether there is work or not.
                if (rq->policy == SCHED_BEST_EFFORT && !e->has_work)
                        continue;
                // Whoever fell behind while it could not run comes back level, not owed a burst.
                if (e->vtime < rq->vnow)
                        e->vtime = rq->vnow;
                // Ties go to the lowest index, which makes equal vtimes a plain round robin.
                if (best < 0 || e->vtime < best_v) {
                        best = (int)i;
                        best_v = e->vtime;
                }
        }
        if (rq->policy == SCHED_FIXED_SHARE && ghost_share(rq)) {
                if (rq->ghost_vtime < rq->vnow)
                        rq->ghost_vtime = rq->vnow;
                if (best < 0 || rq->ghost_vtime < best_v) {
                        best = SCHED_TURN_GHOST;
                        best_v = rq->ghost_vtime;
                }
        }
        rq->turn = best;
        if (best == SCHED_TURN_NONE)
                return -1;
        rq->vnow = best_v;
        if (best == SCHED_TURN_GHOST || !rq->e[best].has_work)
                return -1;
        return best;
}

void sched_charge(struct sched_rq *rq, int index, uint64_t used_ns)
{
        enum sched_policy p = rq->turn_policy;
        uint64_t slice = rq->turn_slice_ns;
        int owner = rq->turn;
        struct sched_entity *e;

        rq->turn = SCHED_TURN_NONE;
        if (index >= 0 && (size_t)index < rq->n) {
                uint64_t turn_ns = used_ns;

                e = &rq->e[index];
                e->turns++;
                e->charged_ns = sat_add(e->charged_ns, used_ns);
                // Equal and fixed share: the turn is the vGPU's whether it uses it or not; what
                // it leaves is idle GPU time, not given to anyone else.
                if (p != SCHED_BEST_EFFORT && used_ns < slice) {
                        uint64_t rest = slice - used_ns;

                        turn_ns = slice;
                        e->idle_ns = sat_add(e->idle_ns, rest);
                        rq->idle_ns = sat_add(rq->idle_ns, rest);
                }
                rq->clock_ns = sat_add(rq->clock_ns, turn_ns);
                e->vtime = sat_add(e->vtime, entity_vdelta(e, p, turn_ns));
                return;
        }
        rq->clock_ns = sat_add(rq->clock_ns, slice);
        rq->idle_ns = sat_add(rq->idle_ns, slice);
        if (owner == SCHED_TURN_GHOST) {
                uint64_t share = ghost_share(rq);

                rq->empty_ns = sat_add(rq->empty_ns, slice);
                if (share)
                        rq->ghost_vtime = sat_add(rq->ghost_vtime, ghost_vdelta(slice, share));
        } else if (owner >= 0 && (size_t)owner < rq->n) {
                e = &rq->e[owner];
                e->turns++;
                e->idle_ns = sat_add(e->idle_ns, slice);
                e->vtime = sat_add(e->vtime, entity_vdelta(e, p, slice));
        }
}
