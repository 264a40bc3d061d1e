/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpud's scheduler: for each physical GPU (and each GPU instance holding time-sliced vGPUs) a
 * thread that grants the vGPUs' engines time slices through their scheduler pages
 * (common/schedpage.h), by the GPU's policy (core/sched.h), and accounts what each used.
 * MIG-backed vGPUs own their GPU instance and are not gated.
 */
#ifndef VGPU_MANAGER_SCHEDULER_H
#define VGPU_MANAGER_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sched.h"

struct scheduler;

/* A vGPU's counters. Times are accounted GPU time. */
struct sched_stats {
        uint64_t slices;     /* grants it got */
        uint64_t overruns;   /* grants it used beyond the slice */
        uint64_t charged_ns; /* what it used */
        uint64_t idle_ns;    /* turns it had no work for (equal and fixed share) */
        uint64_t clock_ns;   /* the run queue's clock: busy and idle turns */
        double util_pct;     /* its share of the clock over its last quarter second; 0..100 */
};

int scheduler_new(size_t n_gpus, struct scheduler **ret);

/* scheduler_free - stop every thread and ungate every engine (they run freely without vgpud). */
void scheduler_free(struct scheduler *s);

/* scheduler_page_create - create (or reset) a vGPU's scheduler page file at path. 0 or -errno. */
int scheduler_page_create(const char *path);

/*
 * scheduler_attach - gate vGPU handle (on gpu, in GPU instance gi, 0 = the whole GPU) through
 * its page at path; share_slots is its type's max instances there (fixed share). lazy: gate it
 * only while there is something to share (another vGPU, a policy other than best effort, a
 * throttle): the cuda backend's gate times every launch. 0 or -errno.
 */
int scheduler_attach(struct scheduler *s, uint32_t gpu, uint32_t gi, uint32_t handle,
                     const char *path, uint32_t share_slots, bool lazy);

/* scheduler_detach - stop gating it (its engine runs freely, or is going away). */
void scheduler_detach(struct scheduler *s, uint32_t gpu, uint32_t handle);

/*
 * scheduler_set - a GPU's policy and time slice (ms, 1..30 after sched_slice_ms_check), for all
 * its run queues; fixed share is refused (-EINVAL) when mixed. Takes effect at the next slice.
 */
int scheduler_set(struct scheduler *s, uint32_t gpu, enum sched_policy p, uint32_t slice_ms,
                  bool mixed);

/* scheduler_get - a GPU's policy and slice, and its whole-GPU run queue's clock and idle time. */
void scheduler_get(struct scheduler *s, uint32_t gpu, enum sched_policy *ret_policy,
                   uint32_t *ret_slice_ms, uint64_t *ret_clock_ns, uint64_t *ret_idle_ns);

/*
 * scheduler_throttle - give vGPU handle only a minimal share (licensing: unlicensed past its
 * grace period): its slices shrink to 1/20, and when nobody else has work the GPU idles 19 times
 * as long after each, so it gets at most about 5 % of the GPU. off restores it.
 */
void scheduler_throttle(struct scheduler *s, uint32_t gpu, uint32_t handle, bool on);

/* scheduler_stats - a vGPU's counters; -ENOENT when it is not gated. */
int scheduler_stats(struct scheduler *s, uint32_t gpu, uint32_t handle, struct sched_stats *ret);

#endif
