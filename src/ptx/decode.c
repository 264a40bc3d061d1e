// SPDX-License-Identifier: Apache-2.0
// The instruction decoder: one parsed PTX statement (mnemonic, modifiers, operands) becomes one
// or a few executor instructions. This file classifies modifiers, lowers operands (width
// mismatches, special registers and symbol addresses become explicit moves, so the executor's
// operations stay simple) and dispatches to the families in decode_alu.c and decode_mem.c.
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ptx/decode.h"

static const char *const ignored_mods[] = {
        ".uni",
        ".sync",
        ".aligned",
        ".ca",
        ".cg",
        ".cs",
        ".lu",
        ".cv",
        ".wb",
        ".wt",
        ".cta",
        ".gpu",
        ".sys",
        ".cluster",
        ".relaxed",
        ".acquire",
        ".release",
        ".acq_rel",
        ".sc",
        ".weak",
        ".volatile",
        ".noftz",
        ".mmio",
        ".L1::evict_last",
        ".L1::evict_first",
        ".L1::no_allocate",
        ".L1::evict_normal",
        ".L1::evict_unchanged",
        ".L2::64B",
        ".L2::128B",
        ".L2::256B",
        ".L2::evict_last",
        ".L2::evict_first",
        ".L2::evict_normal",
        ".L2::cache_hint",
};

static void mods_scan(const struct opcode *oc, struct mods *m)
{
        static const char *const rnds[] = {"",     ".rn",  ".rz",  ".rm",  ".rp",
                                           ".rni", ".rzi", ".rmi", ".rpi", ".rna"};
        static const char *const cmps[] = {".eq",  ".ne",  ".lt",  ".le",  ".gt",  ".ge",
                                           ".lo",  ".ls",  ".hi",  ".hs",  ".equ", ".neu",
                                           ".ltu", ".leu", ".gtu", ".geu", ".num", ".nan"};
        static const struct {
                const char *n;
                int sp;
        } spaces[] = {{".global", SP_GLOBAL},  {".shared", SP_SHARED}, {".shared::cta", SP_SHARED},
                      {".local", SP_LOCAL},    {".const", SP_CONST},   {".param", SP_PARAM},
                      {".generic", SP_GENERIC}};

        memset(m, 0, sizeof(*m));
        m->cmp = -1;
        m->space = -1;
        for (unsigned i = 0; i < oc->nmods; i++) {
                const char *w = oc->mods[i];
                bool done = false;
                static const char *const types[] = {
                        "",     ".pred", ".b8",  ".b16", ".b32",   ".b64",    ".u8",
                        ".u16", ".u32",  ".u64", ".s8",  ".s16",   ".s32",    ".s64",
                        ".f16", ".bf16", ".f32", ".f64", ".f16x2", ".bf16x2", ".b128"};
                for (int t = 1; t < (int)(sizeof(types) / sizeof(types[0])) && !done; t++) {
                        if (strcmp(w, types[t]) == 0 && m->ntypes < 4) {
                                m->types[m->ntypes++] = t;
                                done = true;
                        }
                }
                for (int r = 1; r < (int)(sizeof(rnds) / sizeof(rnds[0])) && !done; r++) {
                        if (strcmp(w, rnds[r]) == 0) {
                                m->rnd = r;
                                done = true;
                        }
                }
                for (int c = 0; c < (int)(sizeof(cmps) / sizeof(cmps[0])) && !done; c++) {
                        if (strcmp(w, cmps[c]) == 0) {
                                m->cmp = c;
                                done = true;
                        }
                }
                for (size_t s = 0; s < sizeof(spaces) / sizeof(spaces[0]) && !done; s++) {
                        if (strcmp(w, spaces[s].n) == 0) {
                                m->space = spaces[s].sp;
                                done = true;
                        }
                }
                if (done)
                        continue;
                if (strcmp(w, ".v2") == 0)
                        m->vec = 2;
                else if (strcmp(w, ".v4") == 0)
                        m->vec = 4;
                else if (strcmp(w, ".ftz") == 0)
                        m->ftz = true;
                else if (strcmp(w, ".sat") == 0) /* .satfinite is not this: unsupported */
                        m->sat = true;
                else if (strcmp(w, ".approx") == 0)
                        m->approx = true;
                else if (strcmp(w, ".full") == 0)
                        m->full = true;
                else if (strcmp(w, ".wide") == 0)
                        m->wide = true;
                else if (strcmp(w, ".cc") == 0)
                        m->cc = true;
                else if (strcmp(w, ".to") == 0)
                        m->to = true;
                else if (strcmp(w, ".nc") == 0)
                        m->nc = true;
                else {
                        bool ign = false;
                        for (size_t k = 0; k < sizeof(ignored_mods) / sizeof(ignored_mods[0]); k++)
                                ign |= strcmp(w, ignored_mods[k]) == 0;
                        if (!ign)
                                m->other[m->nother++] = w;
                }
        }
}

/* take - consume an expected opcode-specific modifier. */
bool dec_take(struct mods *m, const char *w)
{
        for (unsigned i = 0; i < m->nother; i++) {
                if (!m->used[i] && strcmp(m->other[i], w) == 0) {
                        m->used[i] = true;
                        return true;
                }
        }
        return false;
}

int dec_check_rest(struct fctx *f, const struct opcode *oc, struct mods *m)
{
        for (unsigned i = 0; i < m->nother; i++) {
                if (!m->used[i])
                        return fctx_error(f, PTX_EUNSUPPORTED, "unknown instruction '%s%s'",
                                          oc->base, m->other[i]);
        }
        return 0;
}

int dec_unsupported(struct fctx *f, const struct opcode *oc)
{
        char full[600];
        size_t n = (size_t)snprintf(full, sizeof(full), "%s", oc->base);
        for (unsigned i = 0; i < oc->nmods && n < sizeof(full); i++)
                n += (size_t)snprintf(full + n, sizeof(full) - n, "%s", oc->mods[i]);
        return fctx_error(f, PTX_EUNSUPPORTED, "unsupported instruction '%s'", full);
}

/* ---- operand lowering ---- */

struct ptx_insn *dec_emit(struct fctx *f, int op, int t)
{
        struct ptx_insn *in = fn_emit(f->fn);
        if (in) {
                in->op = (uint8_t)op;
                in->t = (uint8_t)t;
                in->line = f->line;
        }
        return in;
}

unsigned dec_uint_of_width(unsigned w)
{
        return w == 1 ? T_U8 : w == 2 ? T_U16 : w == 4 ? T_U32 : w == 8 ? T_U64 : T_NONE;
}

int dec_find_var(struct fctx *f, const char *name, struct ptx_var **ret)
{
        struct sym *s = sym_find(&f->lvars, name);
        if (!s)
                s = sym_find(f->vars, name);
        *ret = NULL;
        if (!s)
                return 0;
        TRY(fctx_use_var(f, s->off));
        *ret = &f->mod->vars[s->off];
        return 0;
}

/* Emit OP_ADDR for a symbol (variable, local, kernel param) into a fresh register of type. */
int dec_sym_address(struct fctx *f, const char *name, int64_t disp, unsigned type, uint32_t *ret)
{
        struct ptx_var *v;
        struct sym *s = sym_find(&f->syms, name);
        int space;
        int64_t off;

        TRY(dec_find_var(f, name, &v));
        if (v) {
                space = v->space;
                off = v->is_extern ? (int64_t)f->mod->shared_bytes : (int64_t)v->offset;
                if (v->is_extern)
                        space = SP_SHARED, off = -1; /* resolved at launch: after static */
        } else if (s && s->kind == SYM_LOCAL) {
                space = SP_LOCAL;
                off = s->off;
        } else if (s && s->kind == SYM_KPARAM) {
                space = SP_KPARAM;
                off = s->off;
        } else if (f->funcs && sym_find(f->funcs, name) && type_size(type) == 8) {
                /* a function's address: a constant */
                *ret = fn_const(f->fn, type, PTX_FUNC_BASE + 16ull * sym_find(f->funcs, name)->off);
                return *ret == OPND_NONE ? -ENOMEM : 0;
        } else {
                return fctx_error(f, PTX_EPARSE, "unknown symbol '%s'", name);
        }
        uint32_t d = fn_reg_alloc(f->fn, type);
        struct ptx_insn *in = dec_emit(f, OP_ADDR, (int)type);
        if (d == OPND_NONE || !in)
                return -ENOMEM;
        in->t2 = (uint8_t)space;
        in->o[0] = d;
        in->imm = off;
        in->o[1] = (uint32_t)disp; /* added at run time (extern shared needs it separate) */
        *ret = d;
        return 0;
}

static bool same_class(unsigned a, unsigned b)
{
        return type_size(a) == type_size(b);
}

/* Source operand of type t: a register of the type's width, a constant, or a lowered move. */
int dec_src(struct fctx *f, const struct opnd *o, unsigned t, uint32_t *ret)
{
        uint64_t bits;
        switch (o->kind) {
        case OK_REG:
                if (t == T_PRED || o->type == T_PRED) {
                        if (t != o->type)
                                return fctx_error(f, PTX_EPARSE, "predicate operand mismatch");
                        *ret = o->reg;
                        return 0;
                }
                if (same_class(o->type, t)) {
                        *ret = o->reg;
                        return 0;
                }
                {
                        /* a register wider or narrower than the operation: convert its bits */
                        uint32_t tmp = fn_reg_alloc(f->fn, t);
                        struct ptx_insn *in =
                                dec_emit(f, OP_CVT, (int)dec_uint_of_width(type_size(t)));
                        if (tmp == OPND_NONE || !in)
                                return -ENOMEM;
                        in->t2 = (uint8_t)dec_uint_of_width(type_size(o->type));
                        in->o[0] = tmp;
                        in->o[1] = o->reg;
                        *ret = tmp;
                        return 0;
                }
        case OK_INT:
                if (t == T_F32) {
                        float v = (float)o->ival;
                        uint32_t b = OPND_NONE;
                        memcpy(&b, &v, 4);
                        bits = b;
                } else if (t == T_F64) {
                        double v = (double)o->ival;
                        memcpy(&bits, &v, 8);
                } else {
                        bits = (uint64_t)o->ival;
                }
                break;
        case OK_F32:
                if (t == T_F64) {
                        uint32_t b = (uint32_t)o->bits;
                        float v;
                        memcpy(&v, &b, 4);
                        double dv = v;
                        memcpy(&bits, &dv, 8);
                } else {
                        bits = o->bits;
                }
                break;
        case OK_F64:
                if (t == T_F32) {
                        double dv;
                        memcpy(&dv, &o->bits, 8);
                        float v = (float)dv;
                        uint32_t b = OPND_NONE;
                        memcpy(&b, &v, 4);
                        bits = b;
                } else {
                        bits = o->bits;
                }
                break;
        case OK_SREG: {
                uint32_t tmp = fn_reg_alloc(f->fn, t);
                struct ptx_insn *in = dec_emit(f, OP_SREG, (int)t);
                if (tmp == OPND_NONE || !in)
                        return -ENOMEM;
                in->o[0] = tmp;
                in->imm = o->reg;
                *ret = tmp;
                return 0;
        }
        case OK_SYM:
                if (t == T_PRED || type_size(t) < 4)
                        return fctx_error(f, PTX_EPARSE, "symbol '%s' as a narrow operand", o->sym);
                return dec_sym_address(f, o->sym, 0, t, ret);
        default:
                return fctx_error(f, PTX_EPARSE, "bad source operand");
        }
        if (t == T_PRED)
                bits = bits != 0;
        *ret = fn_const(f->fn, t, bits);
        return *ret == OPND_NONE ? -ENOMEM : 0;
}

int dec_dst(struct fctx *f, const struct opnd *o, unsigned t, uint32_t *ret, struct dstfix *fx)
{
        memset(fx, 0, sizeof(*fx));
        if (o->kind == OK_SINK) {
                *ret = fn_reg_alloc(f->fn, t);
                return *ret == OPND_NONE ? -ENOMEM : 0;
        }
        if (o->kind != OK_REG)
                return fctx_error(f, PTX_EPARSE, "destination is not a register");
        if ((t == T_PRED) != (o->type == T_PRED))
                return fctx_error(f, PTX_EPARSE, "predicate destination mismatch");
        if (t == T_PRED || same_class(o->type, t)) {
                *ret = o->reg;
                return 0;
        }
        fx->tmp = fn_reg_alloc(f->fn, t);
        if (fx->tmp == OPND_NONE)
                return -ENOMEM;
        fx->reg = o->reg;
        fx->t = t;
        fx->regt = o->type;
        fx->active = true;
        *ret = fx->tmp;
        return 0;
}

int dec_dst_finish(struct fctx *f, const struct dstfix *fx)
{
        if (!fx->active)
                return 0;
        unsigned dt = type_is_signed(fx->t) ? T_S8 + (dec_uint_of_width(type_size(fx->regt)) - T_U8)
                                            : dec_uint_of_width(type_size(fx->regt));
        unsigned st = type_is_signed(fx->t) ? fx->t : dec_uint_of_width(type_size(fx->t));
        struct ptx_insn *in = dec_emit(f, OP_CVT, (int)dt);
        if (!in)
                return -ENOMEM;
        in->t2 = (uint8_t)st;
        in->o[0] = fx->reg;
        in->o[1] = fx->tmp;
        return 0;
}

/* ---- per-instruction decoders ---- */

int dec_need_ops(struct fctx *f, const struct opcode *oc, unsigned nops, unsigned want)
{
        if (nops != want)
                return fctx_error(f, PTX_EPARSE, "'%s' takes %u operands, found %u", oc->base, want,
                                  nops);
        return 0;
}

/* d = op(a[, b[, c]]) with every operand of type t. */
int dec_simple(struct fctx *f, const struct opcode *oc, struct opnd *ops, unsigned nops, int op,
               unsigned t, unsigned nsrc, struct ptx_insn **ret_in)
{
        uint32_t d = OPND_NONE, s[3];
        struct dstfix fx;
        TRY(dec_need_ops(f, oc, nops, nsrc + 1));
        for (unsigned i = 0; i < nsrc; i++)
                TRY(dec_src(f, &ops[i + 1], t, &s[i]));
        TRY(dec_dst(f, &ops[0], t, &d, &fx));
        struct ptx_insn *in = dec_emit(f, op, (int)t);
        if (!in)
                return -ENOMEM;
        in->o[0] = d;
        for (unsigned i = 0; i < nsrc; i++)
                in->o[i + 1] = s[i];
        if (ret_in)
                *ret_in = in;
        unsigned idx = (unsigned)(in - f->fn->insns);
        TRY(dec_dst_finish(f, &fx));
        if (ret_in)
                *ret_in = &f->fn->insns[idx];
        return 0;
}

int dec_one_type(struct fctx *f, const struct opcode *oc, const struct mods *m, unsigned *t)
{
        if (m->ntypes != 1)
                return fctx_error(f, PTX_EPARSE, "'%s' needs one type", oc->base);
        *t = (unsigned)m->types[0];
        return 0;
}

int dec_is_f16ish(unsigned t)
{
        return t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2;
}

/* Emit a conversion d = a from type st to dt with rounding rnd. */
int dec_emit_cvt(struct fctx *f, uint32_t d, unsigned dt, uint32_t a, unsigned st, int rnd)
{
        struct ptx_insn *in = dec_emit(f, OP_CVT, (int)dt);
        if (!in)
                return -ENOMEM;
        in->t2 = (uint8_t)st;
        in->sub = (uint8_t)rnd;
        in->o[0] = d;
        in->o[1] = a;
        return 0;
}

int decode_insn(struct fctx *f, const struct opcode *oc, struct opnd *ops, unsigned nops,
                uint32_t guard, bool guard_neg)
{
        static const char *const arith[] = {"add", "sub", "mul", "mad", "fma",  "div",  "rem",
                                            "abs", "neg", "min", "max", "addc", "subc", "copysign"};
        static const char *const logic[] = {"and", "or", "xor", "not", "cnot"};
        static const char *const bits[] = {"popc", "clz", "brev", "bfe",   "bfi",
                                           "prmt", "shf", "lop3", "bfind", "fns"};
        static const char *const fmath[] = {"rcp", "sqrt", "rsqrt", "ex2",
                                            "lg2", "sin",  "cos",   "tanh"};
        static const char *const nops_[] = {"membar",  "fence",    "brkpt",    "nanosleep",
                                            "pmevent", "prefetch", "prefetchu"};
        const char *b = oc->base;
        struct mods m;
        unsigned before = f->fn->ninsns;
        int r = -1;

        mods_scan(oc, &m);
        for (size_t i = 0; i < sizeof(arith) / sizeof(arith[0]) && r < 0; i++) {
                if (strcmp(b, arith[i]) == 0)
                        r = dec_arith(f, oc, &m, ops, nops);
        }
        for (size_t i = 0; i < sizeof(logic) / sizeof(logic[0]) && r < 0; i++) {
                if (strcmp(b, logic[i]) == 0)
                        r = dec_logic(f, oc, &m, ops, nops);
        }
        for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]) && r < 0; i++) {
                if (strcmp(b, bits[i]) == 0)
                        r = dec_bits(f, oc, &m, ops, nops);
        }
        for (size_t i = 0; i < sizeof(fmath) / sizeof(fmath[0]) && r < 0; i++) {
                if (strcmp(b, fmath[i]) == 0)
                        r = dec_fmath(f, oc, &m, ops, nops);
        }
        for (size_t i = 0; i < sizeof(nops_) / sizeof(nops_[0]) && r < 0; i++) {
                if (strcmp(b, nops_[i]) == 0) {
                        struct ptx_insn *in = dec_emit(f, OP_NOP, T_NONE);
                        r = in ? 0 : -ENOMEM;
                }
        }
        if (r >= 0) {
                /* done */
        } else if (strcmp(b, "shl") == 0 || strcmp(b, "shr") == 0) {
                r = dec_shift(f, oc, &m, ops, nops);
        } else if (strcmp(b, "sad") == 0 || strcmp(b, "mul24") == 0 || strcmp(b, "mad24") == 0 ||
                   strcmp(b, "dp4a") == 0 || strcmp(b, "dp2a") == 0) {
                r = dec_intmisc(f, oc, &m, ops, nops);
        } else if (strcmp(b, "setp") == 0) {
                r = dec_setp(f, oc, &m, ops, nops);
        } else if (strcmp(b, "set") == 0) {
                r = dec_set(f, oc, &m, ops, nops);
        } else if (strcmp(b, "selp") == 0 || strcmp(b, "slct") == 0) {
                r = dec_selp(f, oc, &m, ops, nops);
        } else if (strcmp(b, "mov") == 0) {
                r = dec_mov(f, oc, &m, ops, nops);
        } else if (strcmp(b, "cvt") == 0) {
                r = dec_cvt(f, oc, &m, ops, nops);
        } else if (strcmp(b, "ld") == 0 || strcmp(b, "ldu") == 0 || strcmp(b, "st") == 0) {
                r = dec_ldst(f, oc, &m, ops, nops);
        } else if (strcmp(b, "atom") == 0 || strcmp(b, "red") == 0) {
                r = dec_atom(f, oc, &m, ops, nops);
        } else if (strcmp(b, "cvta") == 0) {
                r = dec_cvta(f, oc, &m, ops, nops);
        } else if (strcmp(b, "isspacep") == 0) {
                r = dec_isspacep(f, oc, &m, ops, nops);
        } else if (strcmp(b, "bar") == 0 || strcmp(b, "barrier") == 0) {
                r = dec_bar(f, oc, &m, ops, nops);
        } else if (strcmp(b, "shfl") == 0 || strcmp(b, "vote") == 0 || strcmp(b, "match") == 0 ||
                   strcmp(b, "activemask") == 0 || strcmp(b, "redux") == 0 ||
                   strcmp(b, "elect") == 0) {
                r = dec_warp(f, oc, &m, ops, nops);
        } else if (strcmp(b, "createpolicy") == 0) {
                /* an L2 cache policy for later loads' hints, which the sim ignores: 0 */
                uint32_t d = OPND_NONE;
                struct dstfix fx;
                r = nops >= 1 ? dec_dst(f, &ops[0], T_U64, &d, &fx) : dec_unsupported(f, oc);
                struct ptx_insn *in = r ? NULL : dec_emit(f, OP_MOV, T_U64);
                if (!r && !in)
                        r = -ENOMEM;
                if (!r) {
                        in->o[0] = d;
                        in->o[1] = fn_const(f->fn, T_U64, 0);
                        r = in->o[1] == OPND_NONE ? -ENOMEM : dec_dst_finish(f, &fx);
                }
        } else if (strcmp(b, "testp") == 0) {
                r = dec_testp(f, oc, &m, ops, nops);
        } else if (strcmp(b, "bra") == 0 || strcmp(b, "ret") == 0 || strcmp(b, "exit") == 0 ||
                   strcmp(b, "trap") == 0) {
                r = dec_control(f, oc, &m, ops, nops);
        } else {
                r = dec_unsupported(f, oc);
        }
        if (r)
                return r;
        /* the guard covers every instruction the statement became */
        for (unsigned i = before; i < f->fn->ninsns; i++) {
                f->fn->insns[i].guard = guard;
                if (guard_neg)
                        f->fn->insns[i].flags |= F_GUARDN;
                f->fn->insns[i].line = f->line;
        }
        return 0;
}
