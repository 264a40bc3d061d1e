/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The executor's private interface between the warp interpreter (exec.c) and the launch driver
 * (launch.c): the state of a launch shared by workers, of one worker, and of one warp.
 */
#ifndef VGPU_PTX_EXEC_H
#define VGPU_PTX_EXEC_H

#include <stdatomic.h>
#include <pthread.h>

#include "ptx/internal.h"

#define MAX_WARPS    32  /* 1024 threads */
#define MAX_DEPTH    128 /* call depth */
#define NUM_BARRIERS 16
/* Warp-instructions a warp runs before a looping branch hands the turn to the block's next warp. */
#define YIELD_INSNS 8192
/* Memory a launch may take for register frames: per call depth of one warp, and per warp over
 * all depths. They bound what a hostile module can make the engine allocate. */
#define FRAME_MAX      (8u << 20)
#define WARP_STACK_MAX (64u << 20)
/* Frame header: per-lane return pc, return function and call index. */
#define FRAME_HDR 512

struct exec_launch {
        const struct ptx_launch *l;
        const struct ptx_module *mod;
        const struct ptx_func *kfn;
        unsigned kfn_index;
        const uint8_t *params;
        uint32_t nthreads, nwarps;
        uint64_t nblocks;     /* one past the last block (linear index) this launch runs */
        uint64_t shared_size; /* static + dynamic */
        uint64_t dyn_base;    /* offset of the dynamic shared memory */
        uint64_t total_smem;  /* the kernel's static shared + dynamic: %total_smem_size */
        size_t frame_size;    /* bytes of one call-depth frame of a warp */
        uint64_t globals_base;
        uint8_t *globals; /* module-owned storage, or NULL when bound */
        uint64_t globals_size;
        _Atomic uint64_t next_block;
        _Atomic int fault;
        _Atomic uint64_t work; /* warp-instructions so far (for the budget) */
        pthread_mutex_t lock;  /* guards the totals and fault details below */
        uint64_t warp_insns, thread_insns;
        struct ptx_launch_stats fault_info;
};

struct warp {
        uint32_t id;
        uint32_t exists;  /* lanes that are threads of the block */
        uint32_t live;    /* lanes not exited */
        uint32_t waiting; /* lanes waiting at a barrier */
        uint32_t carry;   /* carry flag per lane (add.cc) */
        /* per-lane position, authoritative for lanes outside the current group */
        uint64_t key[WARP]; /* lane_key(depth, function, pc): the smallest runs first */
        uint8_t bar[WARP];
        /* the current group: lanes at one (depth, function, pc) */
        uint32_t cur_mask;
        uint32_t cur_pc;
        uint32_t cur_fn;
        uint32_t cur_depth;
        uint32_t stop; /* smallest pc of other runnable lanes at this depth and function */
        uint32_t tid[3][WARP];
        uint8_t *frames[MAX_DEPTH];
        unsigned nframes;
};

/* A lane's position as one number: deeper call depth first, then lower function, then pc. */
static inline uint64_t lane_key(uint32_t depth, uint32_t fn, uint32_t pc)
{
        return (uint64_t)(0xffffu - depth) << 48 | (uint64_t)fn << 32 | pc;
}
#define KEY_PC(k)    ((uint32_t)(k))
#define KEY_FN(k)    ((uint32_t)((k) >> 32) & 0xffffu)
#define KEY_DEPTH(k) (0xffffu - (uint32_t)((k) >> 48))

struct exec_ctx {
        struct exec_launch *L;
        struct ptx_mem_region cache[2];
        unsigned cache_next;
        uint8_t *shared;
        uint64_t shared_cap;
        struct warp *warps;
        uint32_t ctaid[3];
        uint64_t warp_insns, thread_insns;
        uint64_t reported;   /* warp_insns already added to the launch's total */
        uint64_t next_check; /* warp_insns at which to check budget, cancel and faults */
        /* the first fault of this worker */
        int fault;
        uint64_t fault_addr;
        uint32_t fault_lane, fault_warp, fault_line;
        /* barrier state of the block */
        uint32_t bar_count[NUM_BARRIERS];
        uint32_t bar_expect[NUM_BARRIERS];
        bool bar_is_red[NUM_BARRIERS];
        uint32_t bar_red[NUM_BARRIERS][3]; /* popc, and, or accumulators */
};

/*
 * The executor's operations, one per family, each over the 32 lanes of mask m of the register
 * frame regs (constants from consts). Those that touch memory return 0 or a fault code recorded
 * in ctx by exec_fault.
 */
void exec_float(const struct ptx_insn *in, uint8_t *regs, const uint8_t *consts, uint32_t m);
void exec_int(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in, uint8_t *regs,
              const uint8_t *consts, uint32_t m);
void exec_cvt(const struct ptx_insn *in, uint8_t *regs, const uint8_t *consts, uint32_t m);
void exec_warpop(const struct ptx_insn *in, uint8_t *regs, const uint8_t *consts, uint32_t m);
/* exec_compare - the comparison of operands o[o1] and o[o1 + 1] for all lanes, as a mask. */
uint32_t exec_compare(const struct ptx_insn *in, unsigned o1, const uint8_t *regs,
                      const uint8_t *consts);
int exec_ld(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in, uint8_t *regs,
            const uint8_t *consts, uint32_t m);
int exec_st(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in, uint8_t *regs,
            const uint8_t *consts, uint32_t m);
int exec_atom(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in, uint8_t *regs,
              const uint8_t *consts, uint32_t m);

/*
 * exec_read - copy up to len bytes from the generic address addr as lane sees it into buf,
 * stopping after a NUL when stop_at_nul. Returns the bytes copied, or -1 after a fault.
 */
long exec_read(struct exec_ctx *c, struct warp *w, int lane, uint64_t addr, void *buf, size_t len,
               bool stop_at_nul, const struct ptx_insn *in);

/*
 * exec_vprintf - the device printf of lane: format fmt (a generic address) with the argument
 * buffer args (generic address, arguments at their natural alignment) and hand the text to the
 * launch's print callback. Returns the number of arguments, or -1 after a fault.
 */
int exec_vprintf(struct exec_ctx *c, struct warp *w, int lane, uint64_t fmt, uint64_t args,
                 const struct ptx_insn *in);

/* exec_fault - record the first fault of ctx (lane -1: none in particular); returns code. */
int exec_fault(struct exec_ctx *c, struct warp *w, int code, uint64_t addr, int lane,
               const struct ptx_insn *in);

/* exec_block - run one block (linear index) to completion on ctx. 0 or a PTX_E* fault. */
int exec_block(struct exec_ctx *ctx, uint64_t block);

/* exec_ctx_free - release the warps, frames and shared memory of a worker context. */
void exec_ctx_free(struct exec_ctx *ctx);

/*
 * exec_check_budget - report c's work to the launch and say whether it must stop: PTX_ETIMEOUT
 * past the work budget, PTX_ECANCELED when cancelled, another worker's fault; else 0.
 */
int exec_check_budget(struct exec_ctx *c);

#endif
