// SPDX-License-Identifier: Apache-2.0
// The warp interpreter: runs one block's warps of 32 lanes over the decoded instructions.
// Divergence: lanes at one (call depth, function, pc) run together; the deepest then lowest pc
// runs first, so groups meet again where their paths join (see docs/ptx.md). Calls, barriers
// and special registers live here; arithmetic in exec_alu.c, memory in exec_mem.c.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ptx/lanes.h"

/* ---- special registers ---- */

static uint64_t sreg_value(struct exec_ctx *c, struct warp *w, int sreg, int lane)
{
        const struct ptx_launch *l = c->L->l;
        switch (sreg) {
        case SREG_TID_X:
        case SREG_TID_Y:
        case SREG_TID_Z:
                return w->tid[sreg - SREG_TID_X][lane];
        case SREG_NTID_X:
        case SREG_NTID_Y:
        case SREG_NTID_Z:
                return l->block[sreg - SREG_NTID_X];
        case SREG_CTAID_X:
        case SREG_CTAID_Y:
        case SREG_CTAID_Z:
                return c->ctaid[sreg - SREG_CTAID_X];
        case SREG_NCTAID_X:
        case SREG_NCTAID_Y:
        case SREG_NCTAID_Z:
                return l->grid[sreg - SREG_NCTAID_X];
        case SREG_LANEID:
                return (uint64_t)lane;
        case SREG_WARPID:
                return w->id;
        case SREG_NWARPID:
                return c->L->nwarps;
        case SREG_SMID:
        case SREG_GRIDID:
                return 0;
        case SREG_NSMID:
                return 1;
        case SREG_LANEMASK_EQ:
                return 1u << lane;
        case SREG_LANEMASK_LT:
                return (1u << lane) - 1;
        case SREG_LANEMASK_LE:
                return lane == 31 ? FULL : (2u << lane) - 1;
        case SREG_LANEMASK_GT:
                return lane == 31 ? 0 : ~((2u << lane) - 1);
        case SREG_LANEMASK_GE:
                return ~((1u << lane) - 1);
        case SREG_CLOCK:
        case SREG_CLOCK64:
                /* deterministic: the worker's issued instructions, as cycles */
                return c->warp_insns * 4;
        case SREG_GLOBALTIMER:
        case SREG_GLOBALTIMER_LO: {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        }
        case SREG_TOTALSMEM:
                return c->L->total_smem;
        case SREG_DYNSMEM:
                return l->dynamic_shared;
        default:
                return 0;
        }
}

/* Choose the next group: the deepest lanes, then the lowest (function, pc). */
HOT static bool warp_pick(struct warp *w)
{
        uint32_t run = w->live & ~w->waiting;
        uint64_t best = UINT64_MAX, stop = UINT64_MAX;
        uint32_t mask = 0;
        if (!run) {
                w->cur_mask = 0;
                return false;
        }
        for (int i = 0; i < WARP; i++) {
                uint64_t k = (run >> i & 1) ? w->key[i] : UINT64_MAX;
                best = k < best ? k : best;
        }
        for (int i = 0; i < WARP; i++) {
                uint64_t k = (run >> i & 1) ? w->key[i] : UINT64_MAX;
                mask |= (uint32_t)(k == best) << i;
                if (k != best && (k >> 32) == (best >> 32) && k < stop)
                        stop = k;
        }
        w->cur_mask = mask;
        w->cur_pc = KEY_PC(best);
        w->cur_fn = KEY_FN(best);
        w->cur_depth = KEY_DEPTH(best);
        w->stop = stop == UINT64_MAX ? UINT32_MAX : KEY_PC(stop);
        return true;
}

/* Record lanes of mask as being at pc of the current function and depth. */
static void warp_park(struct warp *w, uint32_t mask, uint32_t pc)
{
        uint64_t k = lane_key(w->cur_depth, w->cur_fn, pc);
        for (int i = 0; i < WARP; i++) {
                if (mask >> i & 1)
                        w->key[i] = k;
        }
}

int exec_check_budget(struct exec_ctx *c)
{
        struct exec_launch *L = c->L;
        uint64_t delta = c->warp_insns - c->reported;
        c->reported = c->warp_insns;
        uint64_t total = atomic_fetch_add(&L->work, delta) + delta;
        c->next_check = c->warp_insns + 16384;
        if (L->l->work_budget && total > L->l->work_budget)
                return PTX_ETIMEOUT;
        if (L->l->cancel && *L->l->cancel)
                return PTX_ECANCELED;
        int other = atomic_load(&L->fault);
        return other ? other : 0;
}

static int frame_ensure(struct exec_ctx *c, struct warp *w, unsigned depth)
{
        if ((uint64_t)(depth + 1) * c->L->frame_size > WARP_STACK_MAX)
                return PTX_ESTACK;
        while (w->nframes <= depth) {
                uint8_t *f = aligned_alloc(64, c->L->frame_size);
                if (!f)
                        return -ENOMEM;
                memset(f, 0, c->L->frame_size);
                w->frames[w->nframes++] = f;
        }
        return 0;
}

static uint64_t window_of(int space)
{
        switch (space) {
        case SP_SHARED:
                return PTX_SHARED_WINDOW;
        case SP_LOCAL:
                return PTX_LOCAL_WINDOW;
        case SP_KPARAM:
                return PTX_PARAM_WINDOW;
        default:
                return 0;
        }
}

/* Run the warp until none of its lanes can run (exited or waiting at a barrier). */
/* Add the counts kept in locals to the worker's, and pass r on. */
static inline int flush_ret(struct exec_ctx *c, uint64_t nw, uint64_t nt, int r)
{
        c->warp_insns += nw;
        c->thread_insns += nt;
        return r;
}

HOT static int warp_run(struct exec_ctx *c, struct warp *w)
{
        struct exec_launch *L = c->L;
        const struct ptx_module *mod = L->mod;
        uint64_t nw = 0, nt = 0, entry = c->warp_insns;

resched:
        /* the counters live in locals between groups: one store per group, not per instruction */
        c->warp_insns += nw;
        c->thread_insns += nt;
        nw = nt = 0;
        if (!w->cur_mask && !warp_pick(w))
                return 0;
        {
                const struct ptx_func *fn = &mod->funcs[w->cur_fn];
                const struct ptx_insn *insns = fn->insns;
                const uint8_t *consts = fn->consts;
                uint8_t *frame = w->frames[w->cur_depth];
                uint8_t *regs = frame_regs(L, frame);
                uint32_t pc = w->cur_pc, mask = w->cur_mask, stop = w->stop;
                int r;

                for (;;) {
                        if (pc == stop) {
                                /* other lanes wait here: merge with them */
                                warp_park(w, mask, pc);
                                w->cur_mask = 0;
                                goto resched;
                        }
                        const struct ptx_insn *in = &insns[pc];
                        uint32_t m = mask;
                        if (in->guard != OPND_NONE) {
                                uint32_t p;
                                memcpy(&p, regs + in->guard, 4);
                                m &= (in->flags & F_GUARDN) ? ~p : p;
                        }
                        nw++;
                        nt += (unsigned)__builtin_popcount(m);
                        if (!m) {
                                pc++;
                                continue;
                        }
                        switch (in->op) {
                        case OP_NOP:
                        case OP_WARPSYNC:
                                break;
                        case OP_ADD:
                                /* the commonest operations, inline: no call, no second switch */
                                if (in->t == T_S32 || in->t == T_U32) {
                                        BIN(uint32_t, a + b);
                                }
                                if (in->t == T_S64 || in->t == T_U64) {
                                        BIN(uint64_t, a + b);
                                }
                                if (type_is_float(in->t)) {
                                        exec_float(in, regs, consts, m);
                                        break;
                                }
                                exec_int(c, w, in, regs, consts, m);
                                break;
                        case OP_MAD:
                                if (in->t == T_S32 || in->t == T_U32) {
                                        TRI(uint32_t, a * b + cc);
                                }
                                exec_int(c, w, in, regs, consts, m);
                                break;
                        case OP_MOV:
                                if (in->t == T_U32) {
                                        UN(uint32_t, a);
                                }
                                if (in->t == T_U64) {
                                        UN(uint64_t, a);
                                }
                                exec_int(c, w, in, regs, consts, m);
                                break;
                        case OP_AND:
                                if (type_size(in->t) == 4) {
                                        BIN(uint32_t, a & b);
                                }
                                exec_int(c, w, in, regs, consts, m);
                                break;
                        case OP_SHL:
                                if (type_size(in->t) == 4) {
                                        const uint32_t *A_ = (const uint32_t *)PTR(in->o[1]);
                                        const uint32_t *B_ = (const uint32_t *)PTR(in->o[2]);
                                        uint32_t R_[WARP] __attribute__((aligned(32)));
                                        for (int i = 0; i < WARP; i++)
                                                R_[i] = B_[i] >= 32 ? 0 : A_[i] << B_[i];
                                        COMMIT(uint32_t);
                                        break;
                                }
                                exec_int(c, w, in, regs, consts, m);
                                break;
                        case OP_SUB:
                        case OP_MUL:
                        case OP_MIN:
                        case OP_MAX:
                        case OP_ABS:
                        case OP_NEG:
                                if (type_is_float(in->t)) {
                                        exec_float(in, regs, consts, m);
                                        break;
                                }
                                exec_int(c, w, in, regs, consts, m);
                                break;
                        case OP_FFMA:
                                if (in->t == T_F32 && in->sub == RND_RN &&
                                    !(in->flags & (F_FTZ | F_SAT))) {
                                        TRI(float, fmaf(a, b, cc));
                                }
                                exec_float(in, regs, consts, m);
                                break;
                        case OP_MULWIDE:
                                if (in->t == T_S32) {
                                        const int32_t *A_ = (const int32_t *)PTR(in->o[1]);
                                        const int32_t *B_ = (const int32_t *)PTR(in->o[2]);
                                        int64_t R_[WARP] __attribute__((aligned(32)));
                                        for (int i = 0; i < WARP; i++)
                                                R_[i] = (int64_t)A_[i] * B_[i];
                                        COMMIT(int64_t);
                                        break;
                                }
                                exec_int(c, w, in, regs, consts, m);
                                break;
                        case OP_FDIV:
                        case OP_RCP:
                        case OP_SQRT:
                        case OP_RSQRT:
                        case OP_EX2:
                        case OP_LG2:
                        case OP_SIN:
                        case OP_COS:
                        case OP_TANH:
                        case OP_COPYSIGN:
                                exec_float(in, regs, consts, m);
                                break;
                        case OP_MULHI:
                        case OP_MADHI:
                        case OP_SAD:
                        case OP_BFIND:
                        case OP_FNS:
                        case OP_DP4A:
                        case OP_MUL24:
                        case OP_MADWIDE:
                        case OP_DIV:
                        case OP_REM:
                        case OP_OR:
                        case OP_XOR:
                        case OP_NOT:
                        case OP_CNOT:
                        case OP_SHR:
                        case OP_POPC:
                        case OP_CLZ:
                        case OP_BREV:
                        case OP_BFE:
                        case OP_BFI:
                        case OP_PRMT:
                        case OP_SHF:
                        case OP_LOP3:
                        case OP_ADDSAT:
                        case OP_SUBSAT:
                        case OP_ADDC:
                        case OP_SUBC:
                                exec_int(c, w, in, regs, consts, m);
                                break;
                        case OP_TESTP: {
                                uint32_t bits = 0;
                                for (int i = 0; i < WARP; i++) {
                                        double v = in->t == T_F32
                                                           ? ((const float *)PTR(in->o[1]))[i]
                                                           : ((const double *)PTR(in->o[1]))[i];
                                        int cl = fpclassify(v);
                                        if (in->t == T_F32) {
                                                float fv = (float)v;
                                                cl = fpclassify(fv);
                                        }
                                        bool ok;
                                        switch (in->sub) {
                                        case 0:
                                                ok = cl != FP_NAN && cl != FP_INFINITE;
                                                break;
                                        case 1:
                                                ok = cl == FP_INFINITE;
                                                break;
                                        case 2:
                                                ok = cl != FP_NAN;
                                                break;
                                        case 3:
                                                ok = cl == FP_NAN;
                                                break;
                                        case 4:
                                                ok = cl == FP_NORMAL;
                                                break;
                                        default:
                                                ok = cl == FP_SUBNORMAL;
                                                break;
                                        }
                                        bits |= (uint32_t)ok << i;
                                }
                                pwrite(regs, in->o[0], bits, m);
                                break;
                        }
                        case OP_SETP: {
                                uint32_t bits = exec_compare(in, 2, regs, consts);
                                uint32_t p = bits, q = ~bits;
                                if (in->sub2) {
                                        uint32_t cp = pread(regs, consts, in->o[4]) ^
                                                      (in->vec ? FULL : 0);
                                        switch (in->sub2) {
                                        case 1:
                                                p &= cp, q &= cp;
                                                break;
                                        case 2:
                                                p |= cp, q |= cp;
                                                break;
                                        default:
                                                p ^= cp, q ^= cp;
                                                break;
                                        }
                                }
                                pwrite(regs, in->o[0], p, m);
                                if (in->o[1] != OPND_NONE)
                                        pwrite(regs, in->o[1], q, m);
                                break;
                        }
                        case OP_SET: {
                                uint32_t bits = exec_compare(in, 1, regs, consts);
                                uint32_t R_[WARP] __attribute__((aligned(32)));
                                for (int i = 0; i < WARP; i++)
                                        R_[i] = (bits >> i & 1)
                                                        ? (in->t2 == T_F32 ? 0x3f800000u : FULL)
                                                        : 0;
                                COMMIT(uint32_t);
                                break;
                        }
                        case OP_SELP: {
                                uint32_t pv = pread(regs, consts, in->o[3]) ^ (in->vec ? FULL : 0);
                                switch (in->t) {
                                case T_U16:
                                        BIN(uint16_t, (pv >> i & 1) ? a : b);
                                case T_U32:
                                        BIN(uint32_t, (pv >> i & 1) ? a : b);
                                default:
                                        BIN(uint64_t, (pv >> i & 1) ? a : b);
                                }
                                break;
                        }
                        case OP_SLCT: {
                                const uint32_t *C_ = (const uint32_t *)PTR(in->o[3]);
                                uint32_t sel = 0;
                                for (int i = 0; i < WARP; i++) {
                                        bool ge;
                                        if (in->t2 == T_F32) {
                                                float f;
                                                memcpy(&f, &C_[i], 4);
                                                if (in->flags & F_FTZ)
                                                        f = flush32(f);
                                                ge = f >= 0.0f;
                                        } else {
                                                ge = (int32_t)C_[i] >= 0;
                                        }
                                        sel |= (uint32_t)ge << i;
                                }
                                switch (in->t) {
                                case T_U16:
                                        BIN(uint16_t, (sel >> i & 1) ? a : b);
                                case T_U32:
                                        BIN(uint32_t, (sel >> i & 1) ? a : b);
                                default:
                                        BIN(uint64_t, (sel >> i & 1) ? a : b);
                                }
                                break;
                        }
                        case OP_PAND:
                        case OP_POR:
                        case OP_PXOR:
                        case OP_PNOT:
                        case OP_PMOV: {
                                uint32_t a =
                                        pread(regs, consts, in->o[1]) ^ ((in->sub & 1) ? FULL : 0);
                                uint32_t b = in->o[2] != OPND_NONE
                                                     ? pread(regs, consts, in->o[2]) ^
                                                               ((in->sub & 2) ? FULL : 0)
                                                     : 0;
                                uint32_t d = in->op == OP_PAND   ? a & b
                                             : in->op == OP_POR  ? a | b
                                             : in->op == OP_PXOR ? a ^ b
                                             : in->op == OP_PNOT ? ~a
                                                                 : a;
                                pwrite(regs, in->o[0], d, m);
                                break;
                        }
                        case OP_CVT:
                                exec_cvt(in, regs, consts, m);
                                break;
                        case OP_SREG: {
                                c->warp_insns += nw; /* %clock reads the count */
                                c->thread_insns += nt;
                                nw = nt = 0;
                                int sr = (int)in->imm;
                                bool per_lane = sr <= SREG_TID_Z || sr == SREG_LANEID ||
                                                (sr >= SREG_LANEMASK_EQ && sr <= SREG_LANEMASK_GE);
                                if (in->t == T_U32 && sr <= SREG_TID_Z) {
                                        const uint32_t *A_ = w->tid[sr - SREG_TID_X];
                                        uint32_t R_[WARP] __attribute__((aligned(32)));
                                        memcpy(R_, A_, sizeof(R_));
                                        COMMIT(uint32_t);
                                        break;
                                }
                                unsigned wd = type_size(in->t);
                                if (!per_lane) {
                                        broadcast(regs + in->o[0], wd, sreg_value(c, w, sr, 0), m);
                                        break;
                                }
                                for (int i = 0; i < WARP; i++) {
                                        if (m >> i & 1)
                                                wr_bits(regs + in->o[0] + (size_t)i * wd, wd,
                                                        sreg_value(c, w, sr, i));
                                }
                                break;
                        }
                        case OP_ADDR: {
                                uint64_t v;
                                switch (in->t2) {
                                case SP_GLOBAL:
                                case SP_CONST:
                                        v = L->globals_base + (uint64_t)in->imm;
                                        break;
                                case SP_SHARED:
                                        v = in->imm < 0 ? L->dyn_base : (uint64_t)in->imm;
                                        break;
                                case SP_LOCAL:
                                        v = (uint64_t)w->cur_depth * mod->max_local +
                                            (uint64_t)in->imm;
                                        break;
                                default:
                                        v = (uint64_t)in->imm;
                                        break;
                                }
                                broadcast(regs + in->o[0], type_size(in->t), v, m);
                                break;
                        }
                        case OP_CVTA_TO:
                        case OP_CVTA_FROM: {
                                uint64_t win = window_of(in->t2);
                                if (in->op == OP_CVTA_TO)
                                        win = 0 - win;
                                if (in->t == T_U32) {
                                        UN(uint32_t, a + (uint32_t)win);
                                }
                                UN(uint64_t, a + win);
                        }
                        case OP_ISSPACEP: {
                                const uint64_t *A = (const uint64_t *)PTR(in->o[1]);
                                uint32_t bits = 0;
                                for (int i = 0; i < WARP; i++) {
                                        uint64_t a = A[i];
                                        bool sh = a - PTX_SHARED_WINDOW < PTX_WINDOW_SIZE;
                                        bool lo = a - PTX_LOCAL_WINDOW < PTX_WINDOW_SIZE;
                                        bool pa = a - PTX_PARAM_WINDOW < PTX_WINDOW_SIZE;
                                        bool ok = in->t2 == SP_SHARED   ? sh
                                                  : in->t2 == SP_LOCAL  ? lo
                                                  : in->t2 == SP_KPARAM ? pa
                                                                        : !sh && !lo && !pa;
                                        bits |= (uint32_t)ok << i;
                                }
                                pwrite(regs, in->o[0], bits, m);
                                break;
                        }
                        case OP_PACK: {
                                unsigned ew = type_size(in->t), dw = ew * in->vec;
                                for (int i = 0; i < WARP; i++) {
                                        if (!(m >> i & 1))
                                                continue;
                                        uint64_t v = 0;
                                        for (unsigned e = 0; e < in->vec; e++)
                                                v |= rd_bits(PTR(in->o[1 + e]) + (size_t)i * ew, ew)
                                                     << (8 * ew * e);
                                        wr_bits(regs + in->o[0] + (size_t)i * dw, dw, v);
                                }
                                break;
                        }
                        case OP_UNPACK: {
                                unsigned ew = type_size(in->t), sw = ew * in->vec;
                                uint64_t vals[WARP];
                                for (int i = 0; i < WARP; i++)
                                        vals[i] = rd_bits(PTR(in->o[4]) + (size_t)i * sw, sw);
                                for (int i = 0; i < WARP; i++) {
                                        if (!(m >> i & 1))
                                                continue;
                                        for (unsigned e = 0; e < in->vec; e++)
                                                wr_bits(regs + in->o[e] + (size_t)i * ew, ew,
                                                        vals[i] >> (8 * ew * e));
                                }
                                break;
                        }
                        case OP_LD:
                                r = exec_ld(c, w, in, regs, consts, m);
                                if (r)
                                        return flush_ret(c, nw, nt, r);
                                break;
                        case OP_ST:
                                r = exec_st(c, w, in, regs, consts, m);
                                if (r)
                                        return flush_ret(c, nw, nt, r);
                                break;
                        case OP_ATOM:
                                r = exec_atom(c, w, in, regs, consts, m);
                                if (r)
                                        return flush_ret(c, nw, nt, r);
                                break;
                        case OP_LD_KPARAM: {
                                unsigned sz = type_size(in->t), rw = in->regw;
                                for (unsigned v = 0; v < in->vec; v++) {
                                        uint64_t val = rd_bits(L->params + in->imm + v * sz, sz);
                                        if (in->flags & F_SIGNX)
                                                val = (uint64_t)sext(val, sz);
                                        broadcast(regs + in->o[v], rw, val, m);
                                }
                                break;
                        }
                        case OP_LD_FPARAM:
                        case OP_ST_FPARAM: {
                                unsigned sz = type_size(in->t), rw = in->regw;
                                for (int i = 0; i < WARP; i++) {
                                        if (!(m >> i & 1))
                                                continue;
                                        uint8_t *p = frame_param(L, frame, i) + in->imm;
                                        for (unsigned v = 0; v < in->vec; v++) {
                                                if (in->op == OP_LD_FPARAM) {
                                                        uint64_t val = rd_bits(p + v * sz, sz);
                                                        if (in->flags & F_SIGNX)
                                                                val = (uint64_t)sext(val, sz);
                                                        wr_bits(regs + in->o[v] + (size_t)i * rw,
                                                                rw, val);
                                                } else {
                                                        wr_bits(p + v * sz, sz,
                                                                rd_bits(PTR(in->o[v]) +
                                                                                (size_t)i * rw,
                                                                        rw));
                                                }
                                        }
                                }
                                break;
                        }
                        case OP_SHFL:
                        case OP_VOTE:
                        case OP_MATCH:
                        case OP_ACTIVEMASK:
                        case OP_REDUX:
                        case OP_ELECT:
                                exec_warpop(in, regs, consts, m);
                                break;
                        case OP_BRA: {
                                uint32_t tgt = (uint32_t)in->imm;
                                /* a warp that loops long gives the others a turn, so that a warp
                                 * spinning on a flag another warp sets still finishes */
                                bool yield = tgt <= pc && c->warp_insns + nw - entry >= YIELD_INSNS;
                                if (tgt <= pc && c->warp_insns + nw >= c->next_check) {
                                        c->warp_insns += nw;
                                        c->thread_insns += nt;
                                        nw = nt = 0;
                                        r = exec_check_budget(c);
                                        if (r)
                                                return flush_ret(c, nw, nt,
                                                                 exec_fault(c, w, r, 0, -1, in));
                                }
                                if (m == mask) {
                                        pc = tgt;
                                        if (tgt > stop || yield) {
                                                warp_park(w, mask, pc);
                                                w->cur_mask = 0;
                                                if (yield)
                                                        return flush_ret(c, nw, nt, 0);
                                                goto resched;
                                        }
                                        continue;
                                }
                                warp_park(w, m, tgt);
                                warp_park(w, mask & ~m, pc + 1);
                                w->cur_mask = 0;
                                if (yield)
                                        return flush_ret(c, nw, nt, 0);
                                goto resched;
                        }
                        case OP_EXIT:
                        exit_lanes:
                                w->live &= ~m;
                                mask &= ~m;
                                if (!mask) {
                                        w->cur_mask = 0;
                                        goto resched;
                                }
                                break;
                        case OP_RET: {
                                if (w->cur_depth == 0)
                                        goto exit_lanes;
                                const uint32_t *ret_pc = (const uint32_t *)frame;
                                const uint32_t *ret_fn = ret_pc + WARP;
                                const uint32_t *call_ix = ret_pc + 2 * WARP;
                                uint8_t *caller = w->frames[w->cur_depth - 1];
                                for (int i = 0; i < WARP; i++) {
                                        if (!(m >> i & 1))
                                                continue;
                                        const struct ptx_call *cl = &mod->calls[call_ix[i]];
                                        for (unsigned k = 0; k < cl->nret; k++)
                                                memcpy(frame_param(L, caller, i) + cl->ret_dst[k],
                                                       frame_param(L, frame, i) +
                                                               fn->rets[k].offset,
                                                       fn->rets[k].size < cl->ret_size[k]
                                                               ? fn->rets[k].size
                                                               : cl->ret_size[k]);
                                        w->key[i] = lane_key(w->cur_depth - 1, ret_fn[i],
                                                             ret_pc[i] + 1);
                                }
                                warp_park(w, mask & ~m, pc + 1);
                                w->cur_mask = 0;
                                goto resched;
                        }
                        case OP_CALL: {
                                const struct ptx_call *cl = &mod->calls[in->imm];
                                if (cl->builtin == BUILTIN_ASSERTFAIL)
                                        return flush_ret(c, nw, nt,
                                                         exec_fault(c, w, PTX_ETRAP, 0,
                                                                    __builtin_ctz(m), in));
                                if (cl->builtin == BUILTIN_VPRINTF) {
                                        /* each lane prints, in lane order; the result is the
                                         * number of arguments, as CUDA's printf returns */
                                        for (int i = 0; i < WARP; i++) {
                                                if (!(m >> i & 1))
                                                        continue;
                                                uint64_t a[2] = {0, 0};
                                                for (unsigned k = 0; k < 2 && k < cl->nargs; k++)
                                                        memcpy(&a[k],
                                                               frame_param(L, frame, i) +
                                                                       cl->arg_src[k],
                                                               cl->arg_size[k] < 8 ? cl->arg_size[k]
                                                                                   : 8);
                                                int np = exec_vprintf(c, w, i, a[0], a[1], in);
                                                if (np < 0)
                                                        return flush_ret(c, nw, nt, c->fault);
                                                if (cl->nret && cl->ret_size[0] >= 4)
                                                        memcpy(frame_param(L, frame, i) +
                                                                       cl->ret_dst[0],
                                                               &np, 4);
                                        }
                                        break;
                                }
                                unsigned d = w->cur_depth + 1;
                                if (c->warp_insns + nw >= c->next_check) {
                                        c->warp_insns += nw;
                                        c->thread_insns += nt;
                                        nw = nt = 0;
                                        r = exec_check_budget(c);
                                        if (r)
                                                return flush_ret(c, nw, nt,
                                                                 exec_fault(c, w, r, 0, -1, in));
                                }
                                if (d >= MAX_DEPTH)
                                        return flush_ret(c, nw, nt,
                                                         exec_fault(c, w, PTX_ESTACK, 0,
                                                                    __builtin_ctz(m), in));
                                r = frame_ensure(c, w, d);
                                if (r)
                                        return flush_ret(
                                                c, nw, nt,
                                                exec_fault(c, w, r, 0, __builtin_ctz(m), in));
                                frame = w->frames[w->cur_depth]; /* stable: frames never move */
                                uint8_t *nf = w->frames[d];
                                uint32_t *ret_pc = (uint32_t *)nf;
                                const uint64_t *target =
                                        cl->indirect != OPND_NONE
                                                ? (const uint64_t *)(regs + cl->indirect)
                                                : NULL;
                                /* each lane's callee: the call's, or the function its register
                                 * points to, checked against the call's shape */
                                uint32_t callees[WARP];
                                for (int i = 0; i < WARP; i++) {
                                        if (!(m >> i & 1))
                                                continue;
                                        uint32_t fi = cl->callee;
                                        if (target) {
                                                uint64_t off = target[i] - PTX_FUNC_BASE;
                                                fi = (uint32_t)(off / 16);
                                                if (off % 16 || off / 16 >= mod->nfuncs ||
                                                    !mod->funcs[fi].defined ||
                                                    mod->funcs[fi].is_entry ||
                                                    mod->funcs[fi].nparams != cl->nargs ||
                                                    mod->funcs[fi].nrets != cl->nret)
                                                        return flush_ret(
                                                                c, nw, nt,
                                                                exec_fault(c, w,
                                                                           PTX_EILLEGAL_ADDRESS,
                                                                           target[i], i, in));
                                        }
                                        callees[i] = fi;
                                }
                                for (int i = 0; i < WARP; i++) {
                                        if (!(m >> i & 1))
                                                continue;
                                        const struct ptx_func *callee = &mod->funcs[callees[i]];
                                        for (unsigned k = 0; k < cl->nargs; k++)
                                                memcpy(frame_param(L, nf, i) +
                                                               callee->params[k].offset,
                                                       frame_param(L, frame, i) + cl->arg_src[k],
                                                       cl->arg_size[k] < callee->params[k].size
                                                               ? cl->arg_size[k]
                                                               : callee->params[k].size);
                                        ret_pc[i] = pc;
                                        ret_pc[WARP + i] = w->cur_fn;
                                        ret_pc[2 * WARP + i] = (uint32_t)in->imm;
                                        w->key[i] = lane_key(d, callees[i], 0);
                                }
                                warp_park(w, mask & ~m, pc + 1);
                                w->cur_mask = 0;
                                goto resched;
                        }
                        case OP_BAR: {
                                const uint32_t *ID = (const uint32_t *)PTR(in->o[1]);
                                int lane = __builtin_ctz(m);
                                uint32_t id = ID[lane];
                                if (id >= NUM_BARRIERS)
                                        return flush_ret(
                                                c, nw, nt,
                                                exec_fault(c, w, PTX_EILLEGAL_INSN, 0, lane, in));
                                uint32_t cnt = in->o[2] != OPND_NONE
                                                       ? ((const uint32_t *)PTR(in->o[2]))[lane]
                                                       : 0;
                                c->bar_count[id] += (uint32_t)__builtin_popcount(m);
                                c->bar_expect[id] = cnt;
                                if (in->sub) {
                                        c->bar_is_red[id] = true;
                                        uint32_t pv = (pread(regs, consts, in->o[3]) ^
                                                       (in->vec ? FULL : 0)) &
                                                      m;
                                        c->bar_red[id][0] += (uint32_t)__builtin_popcount(pv);
                                        if (pv != m)
                                                c->bar_red[id][1] = 0;
                                        if (pv)
                                                c->bar_red[id][2] = 1;
                                }
                                if (in->sub2) /* bar.arrive: count, do not wait */
                                        break;
                                w->waiting |= m;
                                for (int i = 0; i < WARP; i++) {
                                        if (m >> i & 1)
                                                w->bar[i] = (uint8_t)id;
                                }
                                warp_park(w, m, pc);
                                warp_park(w, mask & ~m, pc + 1);
                                w->cur_mask = 0;
                                goto resched;
                        }
                        case OP_TRAP:
                                return flush_ret(
                                        c, nw, nt,
                                        exec_fault(c, w, PTX_ETRAP, 0, __builtin_ctz(m), in));
                        default:
                                return flush_ret(c, nw, nt,
                                                 exec_fault(c, w, PTX_EILLEGAL_INSN, 0,
                                                            __builtin_ctz(m), in));
                        }
                        pc++;
                }
        }
}

/* Release the lanes waiting at barrier id, writing bar.red results. */
static void barrier_release(struct exec_ctx *c, uint32_t id)
{
        const struct ptx_module *mod = c->L->mod;
        for (uint32_t wi = 0; wi < c->L->nwarps; wi++) {
                struct warp *w = &c->warps[wi];
                uint32_t wm = 0;
                if (!w->waiting)
                        continue;
                for (int i = 0; i < WARP; i++)
                        wm |= (uint32_t)(w->bar[i] == id) << i;
                wm &= w->waiting;
                if (!wm)
                        continue;
                for (int i = 0; i < WARP; i++) {
                        if (!(wm >> i & 1))
                                continue;
                        uint64_t k = w->key[i];
                        if (c->bar_is_red[id]) {
                                const struct ptx_insn *in = &mod->funcs[KEY_FN(k)].insns[KEY_PC(k)];
                                uint8_t *regs = frame_regs(c->L, w->frames[KEY_DEPTH(k)]);
                                if (in->sub == 1) {
                                        uint32_t v = c->bar_red[id][0];
                                        memcpy(regs + in->o[0] + (size_t)i * 4, &v, 4);
                                } else if (in->sub) {
                                        uint32_t v = in->sub == 2 ? c->bar_red[id][1]
                                                                  : c->bar_red[id][2];
                                        pwrite(regs, in->o[0], v ? FULL : 0, 1u << i);
                                }
                        }
                        w->key[i] = k + 1;
                }
                w->waiting &= ~wm;
        }
        c->bar_count[id] = 0;
        c->bar_expect[id] = 0;
        c->bar_is_red[id] = false;
        c->bar_red[id][0] = 0;
        c->bar_red[id][1] = 1;
        c->bar_red[id][2] = 0;
}

int exec_block(struct exec_ctx *c, uint64_t block)
{
        struct exec_launch *L = c->L;
        const struct ptx_launch *l = L->l;
        uint64_t gx = l->grid[0], gy = l->grid[1];

        c->ctaid[0] = (uint32_t)(block % gx);
        c->ctaid[1] = (uint32_t)((block / gx) % gy);
        c->ctaid[2] = (uint32_t)(block / (gx * gy));
        if (L->shared_size)
                memset(c->shared, 0, L->shared_size);
        for (int b = 0; b < NUM_BARRIERS; b++) {
                c->bar_count[b] = 0;
                c->bar_expect[b] = 0;
                c->bar_is_red[b] = false;
                c->bar_red[b][0] = 0;
                c->bar_red[b][1] = 1;
                c->bar_red[b][2] = 0;
        }
        for (uint32_t wi = 0; wi < L->nwarps; wi++) {
                struct warp *w = &c->warps[wi];
                uint32_t first = wi * WARP;
                uint32_t n = L->nthreads - first < WARP ? L->nthreads - first : WARP;
                w->id = wi;
                w->exists = n == WARP ? FULL : (1u << n) - 1;
                w->live = w->exists;
                w->waiting = 0;
                w->carry = 0;
                uint64_t k0 = lane_key(0, L->kfn_index, 0);
                for (int i = 0; i < WARP; i++)
                        w->key[i] = k0;
                w->cur_mask = w->live;
                w->cur_pc = 0;
                w->cur_fn = L->kfn_index;
                w->cur_depth = 0;
                w->stop = UINT32_MAX;
        }
        for (;;) {
                for (uint32_t wi = 0; wi < L->nwarps; wi++) {
                        struct warp *w = &c->warps[wi];
                        if (w->cur_mask || (w->live & ~w->waiting)) {
                                int r = warp_run(c, w);
                                if (r)
                                        return r;
                        }
                }
                uint32_t live = 0, waiting = 0;
                bool runnable = false;
                for (uint32_t wi = 0; wi < L->nwarps; wi++) {
                        const struct warp *w = &c->warps[wi];
                        live += (uint32_t)__builtin_popcount(w->live);
                        waiting += (uint32_t)__builtin_popcount(w->waiting);
                        runnable |= (w->live & ~w->waiting) != 0;
                }
                if (runnable)
                        continue; /* a warp yielded: another round */
                if (!waiting)
                        return 0;
                bool released = false;
                for (uint32_t id = 0; id < NUM_BARRIERS; id++) {
                        uint32_t expect = c->bar_expect[id] ? c->bar_expect[id] : live;
                        if (c->bar_count[id] && c->bar_count[id] >= expect) {
                                barrier_release(c, id);
                                released = true;
                        }
                }
                if (!released) {
                        /* every thread waits and no barrier can complete: a GPU would hang */
                        return exec_fault(c, NULL, PTX_ETIMEOUT, 0, -1, NULL);
                }
        }
}

void exec_ctx_free(struct exec_ctx *c)
{
        if (c->warps) {
                for (unsigned wi = 0; wi < MAX_WARPS; wi++) {
                        for (unsigned d = 0; d < c->warps[wi].nframes; d++)
                                free(c->warps[wi].frames[d]);
                }
        }
        free(c->warps);
        free(c->shared);
        c->warps = NULL;
        c->shared = NULL;
}
