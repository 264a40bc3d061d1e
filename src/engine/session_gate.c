// SPDX-License-Identifier: Apache-2.0
// A session's side of the scheduler's gate (common/schedpage.h, docs/scheduling.md): it waits for
// its vGPU's turn before a launch, charges the GPU time the launch used, and gives the turn back
// when its slice is used up, when it runs out of work, or when it parks.
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "engine/session.h"
#include "engine/session_int.h"

/* ---- the scheduler's gate (common/schedpage.h) -------------------------------------------- */

/*
 * A slot of the page's for this process's counts: the one it holds already, or a free one, or
 * one whose process is gone (its counts start again at 0). 1 + its index, or 0 when all are
 * taken: the process then counts in the page's shared counts.
 */
static uint32_t slot_claim(struct vgpu_sched_page *p)
{
        int32_t me = (int32_t)getpid();

        for (uint32_t i = 0; i < VGPU_SCHED_SLOTS; i++) {
                if (__atomic_load_n(&p->slots[i].pid, __ATOMIC_ACQUIRE) == me)
                        return i + 1;
        }
        for (uint32_t i = 0; i < VGPU_SCHED_SLOTS; i++) {
                struct vgpu_sched_slot *sl = &p->slots[i];
                int32_t pid = __atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE);

                if (pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH))
                        continue;
                if (!__atomic_compare_exchange_n(&sl->pid, &pid, me, false, __ATOMIC_ACQ_REL,
                                                 __ATOMIC_ACQUIRE))
                        continue;
                __atomic_store_n(&sl->waiting, 0, __ATOMIC_RELEASE);
                __atomic_store_n(&sl->busy, 0, __ATOMIC_RELEASE);
                return i + 1;
        }
        return 0;
}

/* This process's waiting (or busy) count in the page. */
static uint32_t *count_of(struct vgpu_dev *dev, bool busy)
{
        struct vgpu_sched_page *p = dev->sched;

        if (dev->sched_slot) {
                struct vgpu_sched_slot *sl = &p->slots[dev->sched_slot - 1];

                return busy ? &sl->busy : &sl->waiting;
        }
        return busy ? &p->busy : &p->waiting;
}

/* Sessions waiting for a grant, in every process of the vGPU's. */
static uint32_t waiting_all(const struct vgpu_sched_page *p)
{
        uint32_t n = __atomic_load_n(&p->waiting, __ATOMIC_ACQUIRE);

        for (size_t i = 0; i < VGPU_SCHED_SLOTS; i++)
                n += __atomic_load_n(&p->slots[i].waiting, __ATOMIC_ACQUIRE);
        return n;
}

int vdev_sched_map(struct vgpu_dev *dev, const char *path)
{
        struct vgpu_sched_page *p;
        int r = vgpu_sched_page_map(path, &p);

        if (r < 0)
                return r;
        dev->sched = p;
        dev->sched_slot = slot_claim(p);
        return 0;
}

void vdev_sched_busy(struct vgpu_dev *dev, int delta)
{
        if (dev->sched)
                __atomic_add_fetch(count_of(dev, true), (uint32_t)delta, __ATOMIC_ACQ_REL);
}

void vdev_sched_forget(struct vgpu_dev *dev, pid_t pid)
{
        struct vgpu_sched_page *p = dev->sched;

        for (size_t i = 0; p && pid > 0 && i < VGPU_SCHED_SLOTS; i++) {
                struct vgpu_sched_slot *sl = &p->slots[i];

                if (__atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE) != pid)
                        continue;
                __atomic_store_n(&sl->waiting, 0, __ATOMIC_RELEASE);
                __atomic_store_n(&sl->busy, 0, __ATOMIC_RELEASE);
                __atomic_store_n(&sl->pid, 0, __ATOMIC_RELEASE);
        }
}

/* vgpud's scheduler is there: gating on, and it beat within the last second. */
static bool gated(const struct vgpu_sched_page *p)
{
        uint64_t beat = __atomic_load_n(&p->heartbeat_ns, __ATOMIC_ACQUIRE);

        return __atomic_load_n(&p->gated, __ATOMIC_ACQUIRE) && chan_now_ns() - beat < 1000000000ull;
}

static bool granted(const struct vgpu_sched_page *p)
{
        return __atomic_load_n(&p->grant, __ATOMIC_ACQUIRE) &&
               __atomic_load_n(&p->grant_seq, __ATOMIC_ACQUIRE) !=
                       __atomic_load_n(&p->yield_seq, __ATOMIC_ACQUIRE);
}

/*
 * End the current grant: the scheduler picks the next vGPU. yield_seq only rises: a thread that
 * read an older grant's number and was then held up must not undo a later grant's yield.
 */
static void gate_yield(struct vgpu_sched_page *p)
{
        uint64_t seq = __atomic_load_n(&p->grant_seq, __ATOMIC_ACQUIRE);
        uint64_t old = __atomic_load_n(&p->yield_seq, __ATOMIC_ACQUIRE);

        if (!__atomic_load_n(&p->grant, __ATOMIC_ACQUIRE))
                return;
        do {
                if (old >= seq)
                        return;
        } while (!__atomic_compare_exchange_n(&p->yield_seq, &old, seq, false, __ATOMIC_ACQ_REL,
                                              __ATOMIC_ACQUIRE));
        __atomic_add_fetch(&p->yielded, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&p->yielded);
}

/* Before new GPU work: wait for a slice of this vGPU's (when a scheduler runs). */
void session_gate_enter(struct session *s)
{
        struct vgpu_sched_page *p = s->dev->sched;

        if (!p)
                return;
        while (gated(p) && !granted(p) && !s->stop) {
                uint32_t g = __atomic_load_n(&p->grant, __ATOMIC_ACQUIRE);

                if (session_pausing(s))
                        return; /* queued before the suspend: it runs, ungated, before parking */
                __atomic_add_fetch(count_of(s->dev, false), 1, __ATOMIC_SEQ_CST);
                chan_futex_wake(&p->waiting);
                if (!granted(p))
                        chan_futex_wait(&p->grant, g, 50);
                __atomic_sub_fetch(count_of(s->dev, false), 1, __ATOMIC_SEQ_CST);
        }
}

/*
 * On a GPU, work queued in a slice runs after it was queued: before the turn passes, let it
 * finish and charge it, so that the next vGPU gets the GPU to itself.
 */
static void gate_drain(struct session *s)
{
        struct vgpu_sched_page *p = s->dev->sched;
        uint64_t ns;

        if (!p || !s->dev->ops->queue_gpu_time)
                return;
        ns = 0;
        for (uint32_t i = 0; i < VGPU_STREAMS; i++) {
                if (s->streams[i].q)
                        ns += s->dev->ops->queue_gpu_time(s->streams[i].q, true);
        }
        __atomic_add_fetch(&p->charged_ns, ns, __ATOMIC_RELEASE);
        __atomic_add_fetch(&p->slice_used_ns, ns, __ATOMIC_ACQ_REL);
}

/* After GPU work: charge what it used; a used-up slice ends the grant. */
void session_gate_charge(struct session *s, uint64_t work)
{
        struct vgpu_sched_page *p = s->dev->sched;
        uint64_t ns, used;

        if (!p || !gated(p))
                return;
        /* the sim's accounted time (common/schedpage.h), or what the GPU measured */
        if (s->dev->ops->queue_gpu_time)
                ns = s->dev->ops->queue_gpu_time(s->q, false);
        else
                ns = s->dev->sm_count
                             ? work * 1000000000ull /
                                       ((uint64_t)s->dev->sm_count * VGPU_SIM_WARP_INSNS_PER_SM_S)
                             : 0;
        __atomic_add_fetch(&p->charged_ns, ns, __ATOMIC_RELEASE);
        __atomic_add_fetch(&p->launches, 1, __ATOMIC_RELEASE);
        if (!granted(p))
                return;
        used = __atomic_add_fetch(&p->slice_used_ns, ns, __ATOMIC_ACQ_REL);
        if (used >= __atomic_load_n(&p->slice_ns, __ATOMIC_ACQUIRE)) {
                gate_drain(s);
                gate_yield(p);
        }
}

/* The session ran out of work: a grant nobody else waits for goes back at once. */
void session_gate_idle(struct session *s)
{
        struct vgpu_sched_page *p = s->dev->sched;

        if (p && granted(p) && !waiting_all(p)) {
                gate_drain(s);
                gate_yield(p);
        }
}

/* Give back a grant this session holds (it parks): the scheduler need not wait it out. */
void session_gate_release(struct session *s)
{
        struct vgpu_sched_page *p = s->dev->sched;

        if (p && granted(p)) {
                gate_drain(s);
                gate_yield(p);
        }
}
