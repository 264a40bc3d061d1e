/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scheduler's page: one small file per vGPU (STATE/engines/UUID.sched) that vgpud and the
 * vGPU's engine (and its workers) map shared. vgpud's scheduler grants the engine time slices
 * through it; the engine starts new GPU work only inside a grant, charges what the work used in
 * accounted time, and yields when the slice is used up or it has nothing more to do. Being a file,
 * it survives a vgpud restart with the engine.
 */
#ifndef VGPU_COMMON_SCHEDPAGE_H
#define VGPU_COMMON_SCHEDPAGE_H

#include <stdint.h>

#define VGPU_SCHED_MAGIC   0x76736368u /* "vsch" */
#define VGPU_SCHED_VERSION 1
#define VGPU_SCHED_SIZE    4096
#define VGPU_SCHED_SLOTS   128 /* processes with counts of their own (struct vgpu_sched_slot) */

/*
 * The sim's GPU time: a launch of W warp-instructions on a vGPU with S SMs takes
 * W / (S * VGPU_SIM_WARP_INSNS_PER_SM_S) seconds of accounted time. Far slower than a real GPU
 * (about the interpreter's own speed on one core), so that a slice of a few milliseconds is a
 * few milliseconds of interpreter work too.
 */
#define VGPU_SIM_WARP_INSNS_PER_SM_S 1000000ull

struct vgpu_sched_page {
        uint32_t magic, version;
        /* written by vgpud */
        uint32_t gated;        /* 0: no scheduler: the engine runs freely */
        uint32_t grant;        /* futex: nonzero while the engine holds a slice; each grant
                                * stores a value of its own (its grant_seq's low bits, never 0),
                                * so that a waiter that read the last one wakes */
        uint64_t grant_seq;    /* which grant: increases with each */
        uint64_t slice_ns;     /* the grant's length, accounted time */
        uint64_t heartbeat_ns; /* CLOCK_MONOTONIC of the scheduler's last round: a stale one
                                * (vgpud gone for over a second) lets the engine run freely */
        /* written by the engine (and its workers: atomics) */
        uint32_t waiting;       /* futex: sessions waiting for a grant (work pending) */
        uint32_t yielded;       /* futex: bumped when the engine ends its grant */
        uint64_t yield_seq;     /* the grant_seq it yielded */
        uint64_t slice_used_ns; /* accounted time used in the current grant */
        uint64_t charged_ns;    /* accounted time used in all, monotonic */
        uint64_t launches;      /* launches run under the scheduler */
        uint32_t busy;          /* launches running now */
        uint32_t reserved;
        /*
         * Per process (the engine, each of its workers): its own waiting and busy counts, so that
         * a process that dies between raising and lowering one does not leave the vGPU looking
         * busy for ever (vgpud counts only the slots of live processes). A process without a
         * slot (all taken) counts in waiting and busy above, as engines before slots did;
         * vgpud adds both.
         */
        struct vgpu_sched_slot {
                int32_t pid;      /* whose counts these are; 0: free */
                uint32_t waiting; /* its sessions waiting for a grant */
                uint32_t busy;    /* its launches running now */
                uint32_t pad;
        } slots[VGPU_SCHED_SLOTS];
};

_Static_assert(sizeof(struct vgpu_sched_page) <= VGPU_SCHED_SIZE, "one page");

/*
 * vgpu_sched_page_map - map the page at path shared (munmap VGPU_SCHED_SIZE bytes when done). 0,
 * -EPROTO (shorter than a page, or not a scheduler page of this version), or -errno.
 */
int vgpu_sched_page_map(const char *path, struct vgpu_sched_page **ret);

#endif
