/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The time-sliced vGPU scheduler's pure core: the three policies (best effort, equal share, fixed
 * share), their names and the product's RmPVMRL registry DWORD, time slice rules, and struct
 * sched_rq, one run queue that decides who runs the next slice and accounts what it used. No I/O,
 * no threads, no clocks: the caller (vgpud's scheduler) owns the lock and the timing.
 */
#ifndef VGPU_CORE_SCHED_H
#define VGPU_CORE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A physical GPU's (or a GPU instance's) policy for its time-sliced vGPUs. */
enum sched_policy {
        SCHED_BEST_EFFORT = 0, /* round robin over vGPUs with work; work-conserving (default) */
        SCHED_EQUAL_SHARE = 1, /* 1/N of the GPU each, N = vGPUs on it, busy or not */
        SCHED_FIXED_SHARE = 2, /* 1/(max instances of its type) each, however many run */
};

#define SCHED_SLICE_MIN_MS 1u
#define SCHED_SLICE_MAX_MS 30u
#define SCHED_NS_PER_MS    1000000ull

/* sched_policy_name - "best-effort", "equal-share" or "fixed-share"; "unknown" for another p. */
const char *sched_policy_name(enum sched_policy p);

/*
 * sched_policy_parse - the policy named s: the names sched_policy_name gives, case-insensitively
 * and with '_' for '-' ("best_effort", "BEST_EFFORT", "EQUAL_SHARE"), or "equal", "fixed".
 * Returns 0 and sets *ret, or -EINVAL (s NULL or no such name; *ret untouched).
 */
int sched_policy_parse(const char *s, enum sched_policy *ret);

/*
 * RmPVMRL, the product's registry DWORD: bits 0-7 the policy (0x00 best effort, 0x01 equal share,
 * 0x11 fixed share), bits 16-23 the time slice in ms (0: the default; above 30: 30). The
 * product's adaptive round robin form (scheduling frequency and averaging factor in the other
 * bits, e.g. 0x3c3c0011) is not modelled: such a value is refused rather than misread.
 */
#define SCHED_RMPVMRL_POLICY_MASK 0x000000ffu
#define SCHED_RMPVMRL_SLICE_SHIFT 16
#define SCHED_RMPVMRL_SLICE_MASK  0x00ff0000u
#define SCHED_RMPVMRL_BEST_EFFORT 0x00u
#define SCHED_RMPVMRL_EQUAL_SHARE 0x01u
#define SCHED_RMPVMRL_FIXED_SHARE 0x11u

/*
 * sched_rmpvmrl_decode - split an RmPVMRL value into its policy and time slice in ms (0: the
 * default for the type, see sched_default_slice_ms; above 30 capped to 30). Returns 0, or -EINVAL
 * for an unknown policy byte or any bit set outside bits 0-7 and 16-23; outputs untouched then.
 */
int sched_rmpvmrl_decode(uint32_t v, enum sched_policy *ret_policy, uint32_t *ret_slice_ms);

/*
 * sched_rmpvmrl_encode - the RmPVMRL value for policy p and slice_ms (0: the default; above 30
 * capped to 30). An unknown p gives UINT32_MAX, which sched_rmpvmrl_decode refuses.
 */
uint32_t sched_rmpvmrl_encode(enum sched_policy p, uint32_t slice_ms);

/*
 * sched_default_slice_ms - the default time slice in ms for a type allowing type_max_instances
 * vGPUs per GPU: 2 up to 8, 1 above.
 */
uint32_t sched_default_slice_ms(uint32_t type_max_instances);

/*
 * sched_slice_ms_check - validate a requested time slice: 1..30 ms is kept, above 30 is capped to
 * 30. Returns 0 and sets *ret_ms, or -EINVAL for 0 (*ret_ms untouched).
 */
int sched_slice_ms_check(uint32_t ms, uint32_t *ret_ms);

/*
 * One run queue: the vGPUs sharing one GPU (or one GPU instance). Times are nanoseconds of
 * *accounted* GPU time, never wall time: the caller charges what each slice really used.
 *
 * Fairness is kept in virtual time: each entity's vtime grows by the time its turns took divided
 * by its share, and sched_pick gives the slice to the eligible entity with the least vtime. An
 * overrun is charged in full and pushes the entity's vtime ahead, so it waits longer; a vGPU that
 * was not eligible (best effort: no work) is lifted to the current virtual time when it comes back,
 * so it never gets a catch-up burst. Under fixed share the slots no vGPU fills form one "ghost"
 * entity with the remaining share, whose turns are idle.
 */
#define SCHED_MAX 64

struct sched_entity {
        uint32_t id;          /* the caller's handle, unique in the queue */
        uint32_t share_slots; /* fixed share: max instances of its type (its share is 1/this) */
        bool has_work;        /* set by the caller before each sched_pick */
        uint64_t charged_ns;  /* accounted time it used */
        uint64_t idle_ns;     /* time charged to its turns while it had no work (equal/fixed) */
        uint64_t turns;       /* slices it was picked for, busy or idle */
        uint64_t vtime;       /* virtual time: turn time / share; only differences matter */
};

/* sched_pick's turn owner when the slice belongs to no entity. */
#define SCHED_TURN_NONE  (-1) /* nobody: best effort with no work, or no pick pending */
#define SCHED_TURN_GHOST (-2) /* fixed share: an empty slot */

struct sched_rq {
        enum sched_policy policy;
        uint64_t slice_ns;
        size_t n;
        struct sched_entity e[SCHED_MAX];
        uint64_t clock_ns; /* accounted GPU time elapsed: busy slices and idle slices */
        uint64_t idle_ns;  /* of which the GPU idled (nobody's work) */
        uint64_t empty_ns; /* of idle_ns, fixed share turns of empty slots */
        /* private to sched.c */
        uint64_t vnow;        /* virtual time of the last pick; never decreases but on rebase */
        uint64_t ghost_vtime; /* the empty slots' virtual time (fixed share) */
        int turn;             /* the pending turn's owner: an index or SCHED_TURN_* */
        enum sched_policy turn_policy; /* the policy the pending turn was picked under */
        uint64_t turn_slice_ns;        /* and its slice */
        bool relevel; /* the policy changed: start everyone level at the next pick */
};

/*
 * sched_rq_init - an empty run queue with policy p (an unknown one: best effort) and slice_ns
 * per slice (0: the 2 ms default). rq is the caller's; nothing to free.
 */
void sched_rq_init(struct sched_rq *rq, enum sched_policy p, uint64_t slice_ns);

/*
 * sched_rq_add - add vGPU id with share_slots (its type's max instances on this GPU, >= 1). It
 * starts level with the others at the current virtual time: no catch-up burst, no debt. It takes
 * the next index (rq->n before the call); the others' indices do not move. Returns 0, or -EINVAL
 * (share_slots 0), -EEXIST (id present), -ENOSPC (SCHED_MAX entities); rq unchanged on failure.
 */
int sched_rq_add(struct sched_rq *rq, uint32_t id, uint32_t share_slots);

/*
 * sched_rq_remove - remove vGPU id; the others' shares grow to fill its place at once. Entities
 * after it move down one index (an index from a pending sched_pick is adjusted inside rq; a
 * caller holding one must look it up again with sched_rq_find). If it owned the pending turn,
 * the turn is dropped: charge it with -1. Returns 0 or -ENOENT.
 */
int sched_rq_remove(struct sched_rq *rq, uint32_t id);

/* sched_rq_find - the index of vGPU id, or -ENOENT. */
int sched_rq_find(const struct sched_rq *rq, uint32_t id);

/*
 * sched_rq_set_policy - change the policy and slice (slice_ns > 0; the caller applies the 1..30 ms
 * rule with sched_slice_ms_check). mixed_sizes says the vGPUs on this GPU have mixed framebuffer
 * sizes, which allows only best effort and equal share. Takes effect at the next sched_pick (a
 * pending turn is charged as it was picked); a new policy starts every entity level there.
 * Returns 0, or -EINVAL (unknown p, slice_ns 0, fixed share with mixed sizes); rq unchanged then.
 */
int sched_rq_set_policy(struct sched_rq *rq, enum sched_policy p, uint64_t slice_ns,
                        bool mixed_sizes);

/*
 * sched_pick - who runs the next slice: the index into rq->e, or -1 when the slice is idle (best
 * effort: nobody has work; equal share: the chosen vGPU has no work; fixed share: its turn
 * belongs to an empty slot, or to a vGPU with no work). Reads each entity's has_work. Charge the
 * slice with one sched_charge; a pick left uncharged passes no turn (the next pick decides afresh).
 */
int sched_pick(struct sched_rq *rq);

/*
 * sched_charge - account the slice of the last pick: index as sched_pick returned (-1, or an index
 * out of range: idle), used_ns the accounted time it used. A busy slice is charged used_ns in
 * full, even past the slice (an overrun: the entity then waits longer, which is how fairness
 * survives overruns). Under best effort a slice that ended early (no more work) costs only what
 * it used; under equal and fixed share the rest of the turn is idle: clock_ns still advances by
 * the slice, the rest counts as GPU idle and as the entity's idle_ns. An idle slice advances
 * clock_ns and idle_ns by slice_ns, charged to the turn's owner (its idle_ns, or empty_ns).
 */
void sched_charge(struct sched_rq *rq, int index, uint64_t used_ns);

#endif
