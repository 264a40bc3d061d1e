// SPDX-License-Identifier: Apache-2.0
// The instruction decoder: one parsed PTX statement (mnemonic, modifiers, operands) becomes one
// or a few executor instructions. Operand width mismatches, special registers and symbol
// addresses are lowered here into explicit moves, so the executor's operations stay simple.
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ptx/parse.h"

/* Modifiers of one mnemonic, classified. */
struct mods {
        int types[4];
        unsigned ntypes;
        int rnd;
        int cmp;
        int space;
        unsigned vec;
        bool ftz, sat, approx, full, wide, cc, to, nc;
        const char *other[MAX_MODS];
        bool used[MAX_MODS];
        unsigned nother;
};

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
                else if (strcmp(w, ".sat") == 0 || strcmp(w, ".satfinite") == 0)
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
static bool take(struct mods *m, const char *w)
{
        for (unsigned i = 0; i < m->nother; i++) {
                if (!m->used[i] && strcmp(m->other[i], w) == 0) {
                        m->used[i] = true;
                        return true;
                }
        }
        return false;
}

static int check_rest(struct fctx *f, const struct opcode *oc, struct mods *m)
{
        for (unsigned i = 0; i < m->nother; i++) {
                if (!m->used[i])
                        return fctx_error(f, PTX_EUNSUPPORTED, "unknown instruction '%s%s'",
                                          oc->base, m->other[i]);
        }
        return 0;
}

static int unsupported(struct fctx *f, const struct opcode *oc)
{
        char full[600];
        size_t n = (size_t)snprintf(full, sizeof(full), "%s", oc->base);
        for (unsigned i = 0; i < oc->nmods && n < sizeof(full); i++)
                n += (size_t)snprintf(full + n, sizeof(full) - n, "%s", oc->mods[i]);
        return fctx_error(f, PTX_EUNSUPPORTED, "unsupported instruction '%s'", full);
}

/* ---- operand lowering ---- */

static struct ptx_insn *emit(struct fctx *f, int op, int t)
{
        struct ptx_insn *in = fn_emit(f->fn);
        if (in) {
                in->op = (uint8_t)op;
                in->t = (uint8_t)t;
                in->line = f->line;
        }
        return in;
}

static unsigned uint_of_width(unsigned w)
{
        return w == 1 ? T_U8 : w == 2 ? T_U16 : w == 4 ? T_U32 : w == 8 ? T_U64 : T_NONE;
}

static struct ptx_var *find_var(struct fctx *f, const char *name)
{
        struct sym *s = sym_find(f->vars, name);
        return s ? &f->mod->vars[s->off] : NULL;
}

/* Emit OP_ADDR for a symbol (variable, local, kernel param) into a fresh register of type. */
static int sym_address(struct fctx *f, const char *name, int64_t disp, unsigned type, uint32_t *ret)
{
        struct ptx_var *v = find_var(f, name);
        struct sym *s = sym_find(&f->syms, name);
        int space;
        int64_t off;

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
        struct ptx_insn *in = emit(f, OP_ADDR, (int)type);
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
static int src(struct fctx *f, const struct opnd *o, unsigned t, uint32_t *ret)
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
                        struct ptx_insn *in = emit(f, OP_CVT, (int)uint_of_width(type_size(t)));
                        if (tmp == OPND_NONE || !in)
                                return -ENOMEM;
                        in->t2 = (uint8_t)uint_of_width(type_size(o->type));
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
                struct ptx_insn *in = emit(f, OP_SREG, (int)t);
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
                return sym_address(f, o->sym, 0, t, ret);
        default:
                return fctx_error(f, PTX_EPARSE, "bad source operand");
        }
        if (t == T_PRED)
                bits = bits != 0;
        *ret = fn_const(f->fn, t, bits);
        return *ret == OPND_NONE ? -ENOMEM : 0;
}

/* Destination of type t. A register wider than t is written through a temporary and extended
 * afterwards (the caller calls dst_finish). */
struct dstfix {
        uint32_t tmp, reg;
        unsigned t, regt;
        bool active;
};

static int dst(struct fctx *f, const struct opnd *o, unsigned t, uint32_t *ret, struct dstfix *fx)
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

static int dst_finish(struct fctx *f, const struct dstfix *fx)
{
        if (!fx->active)
                return 0;
        unsigned dt = type_is_signed(fx->t) ? T_S8 + (uint_of_width(type_size(fx->regt)) - T_U8)
                                            : uint_of_width(type_size(fx->regt));
        unsigned st = type_is_signed(fx->t) ? fx->t : uint_of_width(type_size(fx->t));
        struct ptx_insn *in = emit(f, OP_CVT, (int)dt);
        if (!in)
                return -ENOMEM;
        in->t2 = (uint8_t)st;
        in->o[0] = fx->reg;
        in->o[1] = fx->tmp;
        return 0;
}

/* ---- per-instruction decoders ---- */

#define TRY(x)                                                                                     \
        do {                                                                                       \
                int r_ = (x);                                                                      \
                if (r_)                                                                            \
                        return r_;                                                                 \
        } while (0)

static int need_ops(struct fctx *f, const struct opcode *oc, unsigned nops, unsigned want)
{
        if (nops != want)
                return fctx_error(f, PTX_EPARSE, "'%s' takes %u operands, found %u", oc->base, want,
                                  nops);
        return 0;
}

/* d = op(a[, b[, c]]) with every operand of type t. */
static int simple(struct fctx *f, const struct opcode *oc, struct opnd *ops, unsigned nops, int op,
                  unsigned t, unsigned nsrc, struct ptx_insn **ret_in)
{
        uint32_t d = OPND_NONE, s[3];
        struct dstfix fx;
        TRY(need_ops(f, oc, nops, nsrc + 1));
        for (unsigned i = 0; i < nsrc; i++)
                TRY(src(f, &ops[i + 1], t, &s[i]));
        TRY(dst(f, &ops[0], t, &d, &fx));
        struct ptx_insn *in = emit(f, op, (int)t);
        if (!in)
                return -ENOMEM;
        in->o[0] = d;
        for (unsigned i = 0; i < nsrc; i++)
                in->o[i + 1] = s[i];
        if (ret_in)
                *ret_in = in;
        unsigned idx = (unsigned)(in - f->fn->insns);
        TRY(dst_finish(f, &fx));
        if (ret_in)
                *ret_in = &f->fn->insns[idx];
        return 0;
}

static int one_type(struct fctx *f, const struct opcode *oc, const struct mods *m, unsigned *t)
{
        if (m->ntypes != 1)
                return fctx_error(f, PTX_EPARSE, "'%s' needs one type", oc->base);
        *t = (unsigned)m->types[0];
        return 0;
}

static int is_f16ish(unsigned t)
{
        return t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2;
}

/* Emit a conversion d = a from type st to dt with rounding rnd. */
static int emit_cvt(struct fctx *f, uint32_t d, unsigned dt, uint32_t a, unsigned st, int rnd)
{
        struct ptx_insn *in = emit(f, OP_CVT, (int)dt);
        if (!in)
                return -ENOMEM;
        in->t2 = (uint8_t)st;
        in->sub = (uint8_t)rnd;
        in->o[0] = d;
        in->o[1] = a;
        return 0;
}

/*
 * Half-precision arithmetic (.f16, .bf16 and the packed .f16x2, .bf16x2): each half is widened
 * (to f32, exact; to f64 for fma), computed, and rounded back once. f32 holds the exact result of
 * a half add, sub or mul before its single rounding (24 >= 2 * 11 + 2 bits), so this is exact.
 */
static int dec_half(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                    unsigned nops, int op, unsigned nsrc, unsigned t)
{
        bool x2 = t == T_F16X2 || t == T_BF16X2;
        unsigned ht = (t == T_F16 || t == T_F16X2) ? T_F16 : T_BF16;
        unsigned wt = op == OP_FFMA ? T_F64 : T_F32;
        unsigned nh = x2 ? 2 : 1;
        uint32_t s[3], halves[3][2], res[2];
        struct dstfix fx;

        TRY(need_ops(f, oc, nops, nsrc + 1));
        TRY(check_rest(f, oc, m));
        for (unsigned i = 0; i < nsrc; i++) {
                TRY(src(f, &ops[i + 1], x2 ? T_U32 : T_U16, &s[i]));
                if (!x2) {
                        halves[i][0] = s[i];
                        continue;
                }
                halves[i][0] = fn_reg_alloc(f->fn, T_U16);
                halves[i][1] = fn_reg_alloc(f->fn, T_U16);
                struct ptx_insn *in = emit(f, OP_UNPACK, T_U16);
                if (!in || halves[i][0] == OPND_NONE || halves[i][1] == OPND_NONE)
                        return -ENOMEM;
                in->o[0] = halves[i][0];
                in->o[1] = halves[i][1];
                in->o[4] = s[i];
                in->vec = 2;
        }
        for (unsigned h = 0; h < nh; h++) {
                uint32_t w[3], r = fn_reg_alloc(f->fn, wt);
                res[h] = fn_reg_alloc(f->fn, T_U16);
                if (r == OPND_NONE || res[h] == OPND_NONE)
                        return -ENOMEM;
                for (unsigned i = 0; i < nsrc; i++) {
                        w[i] = fn_reg_alloc(f->fn, wt);
                        if (w[i] == OPND_NONE)
                                return -ENOMEM;
                        TRY(emit_cvt(f, w[i], wt, halves[i][h], ht, 0));
                }
                struct ptx_insn *in = emit(f, op, (int)wt);
                if (!in)
                        return -ENOMEM;
                in->o[0] = r;
                for (unsigned i = 0; i < nsrc; i++)
                        in->o[1 + i] = w[i];
                in->sub = RND_RN;
                if (m->sat)
                        in->flags |= F_SAT;
                TRY(emit_cvt(f, res[h], ht, r, wt, m->rnd == RND_RZ ? RND_RZ : RND_RN));
        }
        uint32_t d = OPND_NONE;
        TRY(dst(f, &ops[0], x2 ? T_U32 : T_U16, &d, &fx));
        struct ptx_insn *in = emit(f, x2 ? OP_PACK : OP_MOV, T_U16);
        if (!in)
                return -ENOMEM;
        in->o[0] = d;
        in->o[1] = res[0];
        if (x2) {
                in->o[2] = res[1];
                in->vec = 2;
        }
        return dst_finish(f, &fx);
}

static int dec_arith(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                     unsigned nops)
{
        const char *b = oc->base;
        unsigned t = T_NONE;
        int op = -1;
        unsigned nsrc = 2;
        struct ptx_insn *in;

        TRY(one_type(f, oc, m, &t));
        if (is_f16ish(t)) {
                static const struct {
                        const char *n;
                        int op;
                        unsigned nsrc;
                } hops[] = {{"add", OP_ADD, 2},  {"sub", OP_SUB, 2}, {"mul", OP_MUL, 2},
                            {"fma", OP_FFMA, 3}, {"min", OP_MIN, 2}, {"max", OP_MAX, 2},
                            {"neg", OP_NEG, 1},  {"abs", OP_ABS, 1}};
                m->ftz = false; /* halves have no subnormal flushing to do in f32 */
                for (size_t i = 0; i < sizeof(hops) / sizeof(hops[0]); i++) {
                        if (strcmp(b, hops[i].n) == 0)
                                return dec_half(f, oc, m, ops, nops, hops[i].op, hops[i].nsrc, t);
                }
                return unsupported(f, oc);
        }
        if (t == T_PRED || t == T_B128)
                return unsupported(f, oc);
        bool fl = type_is_float(t);
        if (strcmp(b, "add") == 0)
                op = m->sat && !fl ? OP_ADDSAT : OP_ADD;
        else if (strcmp(b, "sub") == 0)
                op = m->sat && !fl ? OP_SUBSAT : OP_SUB;
        else if (strcmp(b, "addc") == 0)
                op = OP_ADDC;
        else if (strcmp(b, "subc") == 0)
                op = OP_SUBC;
        else if (strcmp(b, "min") == 0)
                op = OP_MIN;
        else if (strcmp(b, "max") == 0)
                op = OP_MAX;
        else if (strcmp(b, "div") == 0)
                op = fl ? OP_FDIV : OP_DIV;
        else if (strcmp(b, "rem") == 0)
                op = OP_REM;
        else if (strcmp(b, "abs") == 0)
                op = OP_ABS, nsrc = 1;
        else if (strcmp(b, "neg") == 0)
                op = OP_NEG, nsrc = 1;
        else if (strcmp(b, "copysign") == 0)
                op = OP_COPYSIGN;
        else if (strcmp(b, "mul") == 0 || strcmp(b, "mad") == 0 || strcmp(b, "fma") == 0) {
                bool mad = b[0] != 'm' || b[1] == 'a';
                nsrc = mad ? 3 : 2;
                if (fl) {
                        op = mad ? OP_FFMA : OP_MUL;
                } else if (m->cmp == CMP_HI) {
                        op = mad ? OP_MADHI : OP_MULHI;
                } else if (m->wide) {
                        op = mad ? OP_MADWIDE : OP_MULWIDE;
                } else if (m->cmp == CMP_LO) {
                        op = mad ? OP_MAD : OP_MUL;
                } else {
                        return unsupported(f, oc);
                }
                if (m->cc || take(m, ".cc"))
                        return unsupported(f, oc);
        }
        if (op < 0)
                return unsupported(f, oc);
        if (fl && (op == OP_DIV || op == OP_REM || op == OP_ADDSAT))
                return unsupported(f, oc);
        if (!fl && (op == OP_FFMA || op == OP_COPYSIGN))
                return unsupported(f, oc);
        TRY(check_rest(f, oc, m));
        if (op == OP_MULWIDE || op == OP_MADWIDE) {
                /* the destination (and mad's addend) are twice as wide */
                unsigned wt = type_is_signed(t) ? t + 1 : uint_of_width(type_size(t) * 2);
                if (type_size(t) > 4)
                        return unsupported(f, oc);
                uint32_t d = OPND_NONE, s[3];
                struct dstfix fx;
                TRY(need_ops(f, oc, nops, nsrc + 1));
                TRY(src(f, &ops[1], t, &s[0]));
                TRY(src(f, &ops[2], t, &s[1]));
                if (nsrc == 3)
                        TRY(src(f, &ops[3], wt, &s[2]));
                TRY(dst(f, &ops[0], wt, &d, &fx));
                in = emit(f, op, (int)t);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = s[0];
                in->o[2] = s[1];
                in->o[3] = nsrc == 3 ? s[2] : OPND_NONE;
                return dst_finish(f, &fx);
        }
        if (op == OP_ADDC || op == OP_SUBC || m->cc) {
                if (op == OP_ADD)
                        op = OP_ADDC;
                else if (op == OP_SUB)
                        op = OP_SUBC;
                else if (op != OP_ADDC && op != OP_SUBC)
                        return unsupported(f, oc);
        }
        TRY(simple(f, oc, ops, nops, op, t, nsrc, &in));
        if (op == OP_MULHI) {
                /* mul.hi runs as mad.hi with a zero addend */
                in->o[3] = fn_const(f->fn, t, 0);
                if (in->o[3] == OPND_NONE)
                        return -ENOMEM;
        }
        if (strcmp(b, "addc") == 0 || strcmp(b, "subc") == 0)
                in->flags |= F_CIN;
        if (m->cc)
                in->flags |= F_CC;
        in->sub = (uint8_t)(m->rnd ? m->rnd : RND_RN);
        if (m->ftz)
                in->flags |= F_FTZ;
        if (m->sat && fl)
                in->flags |= F_SAT;
        if (m->approx)
                in->flags |= F_APPROX;
        if (op == OP_ABS || op == OP_NEG || op == OP_MIN || op == OP_MAX || op == OP_COPYSIGN)
                in->sub = RND_RN;
        return 0;
}

static int dec_logic(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                     unsigned nops)
{
        const char *b = oc->base;
        unsigned t = T_NONE;
        TRY(one_type(f, oc, m, &t));
        TRY(check_rest(f, oc, m));
        if (t == T_PRED) {
                int op = strcmp(b, "and") == 0   ? OP_PAND
                         : strcmp(b, "or") == 0  ? OP_POR
                         : strcmp(b, "xor") == 0 ? OP_PXOR
                         : strcmp(b, "not") == 0 ? OP_PNOT
                                                 : -1;
                if (op < 0)
                        return unsupported(f, oc);
                unsigned nsrc = op == OP_PNOT ? 1 : 2;
                struct ptx_insn *in;
                TRY(simple(f, oc, ops, nops, op, T_PRED, nsrc, &in));
                /* negated sources: !%p in and/or */
                if (ops[1].neg || (nsrc == 2 && ops[2].neg))
                        in->sub =
                                (uint8_t)((ops[1].neg ? 1 : 0) | (nsrc == 2 && ops[2].neg ? 2 : 0));
                return 0;
        }
        if (type_size(t) < 2 || type_is_float(t))
                return unsupported(f, oc);
        t = uint_of_width(type_size(t));
        if (strcmp(b, "and") == 0)
                return simple(f, oc, ops, nops, OP_AND, t, 2, NULL);
        if (strcmp(b, "or") == 0)
                return simple(f, oc, ops, nops, OP_OR, t, 2, NULL);
        if (strcmp(b, "xor") == 0)
                return simple(f, oc, ops, nops, OP_XOR, t, 2, NULL);
        if (strcmp(b, "not") == 0)
                return simple(f, oc, ops, nops, OP_NOT, t, 1, NULL);
        if (strcmp(b, "cnot") == 0)
                return simple(f, oc, ops, nops, OP_CNOT, t, 1, NULL);
        return unsupported(f, oc);
}

static int dec_shift(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                     unsigned nops)
{
        unsigned t = T_NONE;
        uint32_t d = OPND_NONE, a = OPND_NONE, s = OPND_NONE;
        struct dstfix fx;
        TRY(one_type(f, oc, m, &t));
        TRY(check_rest(f, oc, m));
        TRY(need_ops(f, oc, nops, 3));
        if (type_size(t) < 2 || type_is_float(t) || t == T_PRED)
                return unsupported(f, oc);
        if (t >= T_B8 && t <= T_B64)
                t = uint_of_width(type_size(t));
        TRY(src(f, &ops[1], t, &a));
        TRY(src(f, &ops[2], T_U32, &s));
        TRY(dst(f, &ops[0], t, &d, &fx));
        struct ptx_insn *in = emit(f, oc->base[2] == 'l' ? OP_SHL : OP_SHR, (int)t);
        if (!in)
                return -ENOMEM;
        in->o[0] = d;
        in->o[1] = a;
        in->o[2] = s;
        return dst_finish(f, &fx);
}

/* popc, clz, brev, bfe, bfi, prmt, shf, lop3, bfind-free bit operations */
static int dec_bits(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                    unsigned nops)
{
        const char *b = oc->base;
        unsigned t = T_NONE;
        uint32_t d = OPND_NONE, s[4];
        struct dstfix fx;
        struct ptx_insn *in;

        TRY(one_type(f, oc, m, &t));
        if (type_size(t) != 4 && type_size(t) != 8)
                return unsupported(f, oc);
        if (strcmp(b, "popc") == 0 || strcmp(b, "clz") == 0) {
                TRY(check_rest(f, oc, m));
                TRY(need_ops(f, oc, nops, 2));
                TRY(src(f, &ops[1], uint_of_width(type_size(t)), &s[0]));
                TRY(dst(f, &ops[0], T_U32, &d, &fx));
                in = emit(f, b[0] == 'p' ? OP_POPC : OP_CLZ, (int)uint_of_width(type_size(t)));
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = s[0];
                return dst_finish(f, &fx);
        }
        if (strcmp(b, "brev") == 0) {
                TRY(check_rest(f, oc, m));
                return simple(f, oc, ops, nops, OP_BREV, uint_of_width(type_size(t)), 1, NULL);
        }
        if (strcmp(b, "bfe") == 0) {
                TRY(check_rest(f, oc, m));
                TRY(need_ops(f, oc, nops, 4));
                TRY(src(f, &ops[1], t, &s[0]));
                TRY(src(f, &ops[2], T_U32, &s[1]));
                TRY(src(f, &ops[3], T_U32, &s[2]));
                TRY(dst(f, &ops[0], t, &d, &fx));
                in = emit(f, OP_BFE, (int)t);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = s[0];
                in->o[2] = s[1];
                in->o[3] = s[2];
                return dst_finish(f, &fx);
        }
        if (strcmp(b, "bfi") == 0) {
                TRY(check_rest(f, oc, m));
                TRY(need_ops(f, oc, nops, 5));
                t = uint_of_width(type_size(t));
                TRY(src(f, &ops[1], t, &s[0]));
                TRY(src(f, &ops[2], t, &s[1]));
                TRY(src(f, &ops[3], T_U32, &s[2]));
                TRY(src(f, &ops[4], T_U32, &s[3]));
                TRY(dst(f, &ops[0], t, &d, &fx));
                in = emit(f, OP_BFI, (int)t);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = s[0];
                in->o[2] = s[1];
                in->o[3] = s[2];
                in->o[4] = s[3];
                return dst_finish(f, &fx);
        }
        if (strcmp(b, "prmt") == 0) {
                if (type_size(t) != 4 || m->nother > 0)
                        return unsupported(f, oc); /* the .f4e/.b4e/... modes */
                return simple(f, oc, ops, nops, OP_PRMT, T_U32, 3, NULL);
        }
        if (strcmp(b, "shf") == 0) {
                bool left = take(m, ".l");
                bool right = !left && take(m, ".r");
                bool wrap = take(m, ".wrap");
                bool clamp = !wrap && take(m, ".clamp");
                if ((!left && !right) || (!wrap && !clamp) || type_size(t) != 4)
                        return unsupported(f, oc);
                TRY(check_rest(f, oc, m));
                TRY(simple(f, oc, ops, nops, OP_SHF, T_U32, 3, &in));
                in->sub = (uint8_t)((left ? 1 : 0) | (wrap ? 2 : 0));
                return 0;
        }
        if (strcmp(b, "bfind") == 0) {
                bool shiftamt = take(m, ".shiftamt");
                uint32_t a = OPND_NONE;
                TRY(check_rest(f, oc, m));
                TRY(need_ops(f, oc, nops, 2));
                if (t >= T_B8 && t <= T_B64)
                        return unsupported(f, oc);
                TRY(src(f, &ops[1], t, &a));
                TRY(dst(f, &ops[0], T_U32, &d, &fx));
                in = emit(f, OP_BFIND, (int)t);
                if (!in)
                        return -ENOMEM;
                in->sub = shiftamt ? 1 : 0;
                in->o[0] = d;
                in->o[1] = a;
                return dst_finish(f, &fx);
        }
        if (strcmp(b, "fns") == 0) {
                uint32_t a = OPND_NONE, bb = OPND_NONE, c = OPND_NONE;
                TRY(check_rest(f, oc, m));
                TRY(need_ops(f, oc, nops, 4));
                if (type_size(t) != 4)
                        return unsupported(f, oc);
                TRY(src(f, &ops[1], T_U32, &a));
                TRY(src(f, &ops[2], T_U32, &bb));
                TRY(src(f, &ops[3], T_S32, &c));
                TRY(dst(f, &ops[0], T_U32, &d, &fx));
                in = emit(f, OP_FNS, T_U32);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = a;
                in->o[2] = bb;
                in->o[3] = c;
                return dst_finish(f, &fx);
        }
        if (strcmp(b, "lop3") == 0) {
                TRY(check_rest(f, oc, m));
                if (nops != 5 || ops[4].kind != OK_INT || type_size(t) != 4)
                        return unsupported(f, oc);
                TRY(simple(f, oc, ops, 4, OP_LOP3, T_U32, 3, &in));
                in->imm = ops[4].ival & 0xff;
                return 0;
        }
        return unsupported(f, oc);
}

/* sad, mul24, mad24, dp4a, dp2a: integer operations with operands of their own shapes. */
static int dec_intmisc(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                       unsigned nops)
{
        const char *b = oc->base;
        struct ptx_insn *in;
        unsigned t = T_NONE;
        if (strcmp(b, "sad") == 0) {
                TRY(one_type(f, oc, m, &t));
                TRY(check_rest(f, oc, m));
                if (!type_is_int(t) || type_size(t) < 2 || (t >= T_B8 && t <= T_B64))
                        return unsupported(f, oc);
                return simple(f, oc, ops, nops, OP_SAD, t, 3, NULL);
        }
        if (strcmp(b, "mul24") == 0 || strcmp(b, "mad24") == 0) {
                bool mad = b[1] == 'a';
                TRY(one_type(f, oc, m, &t));
                TRY(check_rest(f, oc, m));
                if ((t != T_U32 && t != T_S32) || (m->cmp != CMP_LO && m->cmp != CMP_HI) || m->sat)
                        return unsupported(f, oc);
                TRY(simple(f, oc, ops, nops, OP_MUL24, t, mad ? 3 : 2, &in));
                in->sub = m->cmp == CMP_HI ? 1 : 0;
                return 0;
        }
        if (strcmp(b, "dp4a") == 0 || strcmp(b, "dp2a") == 0) {
                int half = 0;
                if (b[2] == '2') {
                        half = m->cmp == CMP_LO ? 1 : m->cmp == CMP_HI ? 2 : 0;
                        if (!half)
                                return unsupported(f, oc);
                }
                TRY(check_rest(f, oc, m));
                if (m->ntypes != 2)
                        return unsupported(f, oc);
                unsigned at = (unsigned)m->types[0], bt = (unsigned)m->types[1];
                if ((at != T_U32 && at != T_S32) || (bt != T_U32 && bt != T_S32))
                        return unsupported(f, oc);
                TRY(simple(f, oc, ops, nops, OP_DP4A, at, 3, &in));
                in->t2 = (uint8_t)bt;
                in->sub = (uint8_t)half;
                return 0;
        }
        return unsupported(f, oc);
}

static int dec_fmath(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                     unsigned nops)
{
        static const struct {
                const char *n;
                int op;
        } ops1[] = {{"rcp", OP_RCP}, {"sqrt", OP_SQRT}, {"rsqrt", OP_RSQRT}, {"ex2", OP_EX2},
                    {"lg2", OP_LG2}, {"sin", OP_SIN},   {"cos", OP_COS},     {"tanh", OP_TANH}};
        unsigned t = T_NONE;
        int op = -1;
        TRY(one_type(f, oc, m, &t));
        if (t != T_F32 && t != T_F64)
                return unsupported(f, oc);
        for (size_t i = 0; i < sizeof(ops1) / sizeof(ops1[0]); i++) {
                if (strcmp(oc->base, ops1[i].n) == 0)
                        op = ops1[i].op;
        }
        if (op < 0)
                return unsupported(f, oc);
        take(m, ".ftz");
        TRY(check_rest(f, oc, m));
        struct ptx_insn *in;
        TRY(simple(f, oc, ops, nops, op, t, 1, &in));
        in->sub = (uint8_t)(m->rnd ? m->rnd : RND_RN);
        if (m->approx)
                in->flags |= F_APPROX;
        if (m->ftz)
                in->flags |= F_FTZ;
        return 0;
}

static int dec_setp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                    unsigned nops)
{
        unsigned t = T_NONE;
        uint32_t p = OPND_NONE, q = OPND_NONE, a = OPND_NONE, b = OPND_NONE, c = OPND_NONE;
        int bop = 0;
        struct dstfix fx;

        TRY(one_type(f, oc, m, &t));
        if (m->cmp < 0 || t == T_PRED || is_f16ish(t))
                return unsupported(f, oc);
        if (take(m, ".and"))
                bop = 1;
        else if (take(m, ".or"))
                bop = 2;
        else if (take(m, ".xor"))
                bop = 3;
        TRY(check_rest(f, oc, m));
        if (nops != (bop ? 4u : 3u))
                return fctx_error(f, PTX_EPARSE, "setp: wrong operand count");
        if (type_is_float(t) ? m->cmp >= CMP_LO && m->cmp <= CMP_HS : m->cmp >= CMP_EQU)
                return unsupported(f, oc);
        /* bit types compare as unsigned */
        if (t >= T_B8 && t <= T_B64)
                t = uint_of_width(type_size(t));
        TRY(src(f, &ops[1], t, &a));
        TRY(src(f, &ops[2], t, &b));
        if (bop)
                TRY(src(f, &ops[3], T_PRED, &c));
        TRY(dst(f, &ops[0], T_PRED, &p, &fx));
        if (ops[0].reg2 != OPND_NONE) {
                if (ops[0].type2 != T_PRED)
                        return fctx_error(f, PTX_EPARSE, "setp: second destination");
                q = ops[0].reg2;
        }
        struct ptx_insn *in = emit(f, OP_SETP, (int)t);
        if (!in)
                return -ENOMEM;
        in->sub = (uint8_t)m->cmp;
        in->sub2 = (uint8_t)bop;
        in->vec = bop && ops[3].neg ? 1 : 0;
        in->o[0] = p;
        in->o[1] = q;
        in->o[2] = a;
        in->o[3] = b;
        in->o[4] = c;
        if (m->ftz)
                in->flags |= F_FTZ;
        return 0;
}

static int dec_set(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                   unsigned nops)
{
        uint32_t d = OPND_NONE, a = OPND_NONE, b = OPND_NONE;
        struct dstfix fx;
        if (m->ntypes != 2 || m->cmp < 0 || m->nother)
                return unsupported(f, oc);
        unsigned dt = (unsigned)m->types[0], st = (unsigned)m->types[1];
        if ((dt != T_U32 && dt != T_S32 && dt != T_F32) || is_f16ish(st) || st == T_PRED)
                return unsupported(f, oc);
        if (st >= T_B8 && st <= T_B64)
                st = uint_of_width(type_size(st));
        TRY(need_ops(f, oc, nops, 3));
        TRY(src(f, &ops[1], st, &a));
        TRY(src(f, &ops[2], st, &b));
        TRY(dst(f, &ops[0], dt, &d, &fx));
        struct ptx_insn *in = emit(f, OP_SET, (int)st);
        if (!in)
                return -ENOMEM;
        in->t2 = (uint8_t)dt;
        in->sub = (uint8_t)m->cmp;
        in->o[0] = d;
        in->o[1] = a;
        in->o[2] = b;
        return dst_finish(f, &fx);
}

static int dec_selp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                    unsigned nops)
{
        unsigned t = T_NONE;
        uint32_t d = OPND_NONE, a = OPND_NONE, b = OPND_NONE, c = OPND_NONE;
        struct dstfix fx;
        if (strcmp(oc->base, "slct") == 0) {
                if (m->ntypes != 2 || (m->types[1] != T_S32 && m->types[1] != T_F32))
                        return unsupported(f, oc);
                t = (unsigned)m->types[0];
                if (type_size(t) < 2 || t == T_PRED || is_f16ish(t))
                        return unsupported(f, oc);
                TRY(check_rest(f, oc, m));
                TRY(need_ops(f, oc, nops, 4));
                TRY(src(f, &ops[1], t, &a));
                TRY(src(f, &ops[2], t, &b));
                TRY(src(f, &ops[3], (unsigned)m->types[1], &c));
                TRY(dst(f, &ops[0], t, &d, &fx));
                struct ptx_insn *in = emit(f, OP_SLCT, (int)uint_of_width(type_size(t)));
                if (!in)
                        return -ENOMEM;
                in->t2 = (uint8_t)m->types[1];
                in->o[0] = d;
                in->o[1] = a;
                in->o[2] = b;
                in->o[3] = c;
                if (m->ftz)
                        in->flags |= F_FTZ;
                return dst_finish(f, &fx);
        }
        TRY(one_type(f, oc, m, &t));
        TRY(check_rest(f, oc, m));
        if (type_size(t) < 2 || t == T_PRED || t == T_B128)
                return unsupported(f, oc);
        TRY(need_ops(f, oc, nops, 4));
        unsigned ut = uint_of_width(type_size(t));
        TRY(src(f, &ops[1], t, &a));
        TRY(src(f, &ops[2], t, &b));
        TRY(src(f, &ops[3], T_PRED, &c));
        TRY(dst(f, &ops[0], t, &d, &fx));
        struct ptx_insn *in = emit(f, OP_SELP, (int)ut);
        if (!in)
                return -ENOMEM;
        in->o[0] = d;
        in->o[1] = a;
        in->o[2] = b;
        in->o[3] = c;
        in->vec = ops[3].neg ? 1 : 0;
        return dst_finish(f, &fx);
}

static int dec_mov(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                   unsigned nops)
{
        unsigned t = T_NONE;
        TRY(one_type(f, oc, m, &t));
        TRY(check_rest(f, oc, m));
        TRY(need_ops(f, oc, nops, 2));
        if (t == T_B128)
                return unsupported(f, oc);
        if (t == T_PRED) {
                struct ptx_insn *in;
                TRY(simple(f, oc, ops, nops, OP_PMOV, T_PRED, 1, &in));
                in->sub = ops[1].neg ? 1 : 0;
                return 0;
        }
        unsigned w = type_size(t);
        unsigned ut = uint_of_width(w);
        if (ops[1].kind == OK_VEC || ops[0].kind == OK_VEC) {
                /* pack {a, b} into d, or unpack d into {a, b} */
                bool pack = ops[1].kind == OK_VEC;
                const struct opnd *v = pack ? &ops[1] : &ops[0];
                if (v->nvec < 2 || w % v->nvec || (pack && ops[0].kind != OK_REG) ||
                    (!pack && ops[1].kind != OK_REG))
                        return unsupported(f, oc);
                unsigned et = uint_of_width(w / v->nvec);
                if (et == T_NONE || et == T_U8)
                        return unsupported(f, oc);
                struct ptx_insn *in;
                uint32_t el[4] = {OPND_NONE, OPND_NONE, OPND_NONE, OPND_NONE};
                if (v->nvec > 4)
                        return unsupported(f, oc);
                for (unsigned i = 0; i < v->nvec; i++) {
                        if (v->visimm[i]) {
                                if (!pack)
                                        return fctx_error(f, PTX_EPARSE,
                                                          "a number as a destination");
                                el[i] = fn_const(f->fn, et, (uint64_t)v->vimm[i]);
                                if (el[i] == OPND_NONE)
                                        return -ENOMEM;
                        } else if (v->vsink[i]) {
                                if (pack)
                                        return fctx_error(f, PTX_EPARSE, "'_' in a source");
                                el[i] = fn_reg_alloc(f->fn, et);
                        } else if (type_size(v->vtype[i]) != type_size(et)) {
                                return fctx_error(f, PTX_EPARSE, "mov: vector element width");
                        } else {
                                el[i] = v->vec[i];
                        }
                }
                if (pack) {
                        uint32_t d = OPND_NONE;
                        struct dstfix fx;
                        TRY(dst(f, &ops[0], ut, &d, &fx));
                        in = emit(f, OP_PACK, (int)et);
                        if (!in)
                                return -ENOMEM;
                        in->o[0] = d;
                        for (unsigned i = 0; i < v->nvec; i++)
                                in->o[1 + i] = el[i];
                        in->vec = v->nvec;
                        return dst_finish(f, &fx);
                }
                uint32_t a = OPND_NONE;
                TRY(src(f, &ops[1], ut, &a));
                in = emit(f, OP_UNPACK, (int)et);
                if (!in)
                        return -ENOMEM;
                for (unsigned i = 0; i < v->nvec; i++)
                        in->o[i] = el[i];
                in->o[4] = a;
                in->vec = v->nvec;
                return 0;
        }
        if (ops[1].kind == OK_SREG) {
                uint32_t d = OPND_NONE;
                struct dstfix fx;
                TRY(dst(f, &ops[0], ut, &d, &fx));
                struct ptx_insn *in = emit(f, OP_SREG, (int)ut);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->imm = ops[1].reg;
                return dst_finish(f, &fx);
        }
        struct ptx_insn *in;
        return simple(f, oc, ops, nops, OP_MOV, ut, 1, &in);
}

static int dec_cvt(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                   unsigned nops)
{
        uint32_t d = OPND_NONE, a = OPND_NONE;
        struct dstfix fx;
        if (m->ntypes != 2 || m->nother)
                return unsupported(f, oc);
        unsigned dt = (unsigned)m->types[0], st = (unsigned)m->types[1];
        if ((dt == T_F16X2 || dt == T_BF16X2) && st == T_F32 && nops == 3) {
                /* cvt.rn.f16x2.f32 d, a, b: a to the upper half, b to the lower */
                unsigned ht = dt == T_F16X2 ? T_F16 : T_BF16;
                uint32_t sa, sb, lo = fn_reg_alloc(f->fn, T_U16), hi = fn_reg_alloc(f->fn, T_U16);
                if (lo == OPND_NONE || hi == OPND_NONE)
                        return -ENOMEM;
                TRY(src(f, &ops[1], T_F32, &sa));
                TRY(src(f, &ops[2], T_F32, &sb));
                int rnd = m->rnd == RND_RZ ? RND_RZ : RND_RN;
                TRY(emit_cvt(f, hi, ht, sa, T_F32, rnd));
                TRY(emit_cvt(f, lo, ht, sb, T_F32, rnd));
                TRY(dst(f, &ops[0], T_U32, &d, &fx));
                struct ptx_insn *in = emit(f, OP_PACK, T_U16);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = lo;
                in->o[2] = hi;
                in->vec = 2;
                return dst_finish(f, &fx);
        }
        if (dt == T_PRED || st == T_PRED || dt == T_F16X2 || dt == T_BF16X2 || st == T_F16X2 ||
            st == T_BF16X2 || dt == T_B128 || st == T_B128)
                return unsupported(f, oc);
        TRY(need_ops(f, oc, nops, 2));
        /* the register operands may be wider than the types (cvt.u8.u32 into a .b16/.b32) */
        unsigned dreg = ops[0].kind == OK_REG ? ops[0].type : dt;
        unsigned sreg = ops[1].kind == OK_REG ? ops[1].type : st;
        if (ops[1].kind == OK_REG && type_size(sreg) > type_size(st) && !type_is_float(st)) {
                a = ops[1].reg;
                st = type_is_signed(st) ? st : uint_of_width(type_size(st));
        } else {
                TRY(src(f, &ops[1], st, &a));
                sreg = st;
        }
        TRY(dst(f, &ops[0], dt, &d, &fx));
        (void)dreg;
        struct ptx_insn *in = emit(f, OP_CVT, (int)dt);
        if (!in)
                return -ENOMEM;
        in->t2 = (uint8_t)st;
        in->sub = (uint8_t)m->rnd;
        in->o[0] = d;
        in->o[1] = a;
        /* vec carries the source register's width when it is wider than the source type */
        in->regw = (uint8_t)(type_size(sreg) > type_size(st) ? type_size(sreg) : 0);
        if (m->ftz)
                in->flags |= F_FTZ;
        if (m->sat)
                in->flags |= F_SAT;
        return dst_finish(f, &fx);
}

/* Address operand of a memory instruction: a register base (o[4]) and a displacement. */
static int mem_address(struct fctx *f, struct ptx_insn *tmpl, const struct opnd *o, int space)
{
        if (o->kind != OK_ADDR) {
                if (o->kind == OK_REG || o->kind == OK_SYM) {
                        /* atom/ld written without brackets is not PTX */
                        return fctx_error(f, PTX_EPARSE, "expected an address in [ ]");
                }
                return fctx_error(f, PTX_EPARSE, "expected an address");
        }
        tmpl->imm = o->ival;
        if (o->addr_reg) {
                if (o->type != T_B32 && o->type != T_U32 && o->type != T_S32 && o->type != T_B64 &&
                    o->type != T_U64 && o->type != T_S64)
                        return fctx_error(f, PTX_EPARSE, "address register of a wrong type");
                tmpl->o[4] = o->reg;
                tmpl->sub2 = (uint8_t)type_size(o->type);
                return 0;
        }
        if (!o->sym[0]) {
                tmpl->o[4] = OPND_NONE;
                return 0;
        }
        struct ptx_var *v = find_var(f, o->sym);
        if (v && v->space == SP_SHARED && !v->is_extern && space == SP_SHARED) {
                tmpl->o[4] = OPND_NONE;
                tmpl->imm = (int64_t)v->offset + o->ival;
                return 0;
        }
        uint32_t r = OPND_NONE;
        TRY(sym_address(f, o->sym, 0, T_U64, &r));
        tmpl->o[4] = r;
        tmpl->sub2 = 8;
        return 0;
}

static int dec_ldst(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                    unsigned nops)
{
        bool ld = oc->base[0] == 'l';
        unsigned t = T_NONE;
        struct ptx_insn tmpl;

        TRY(one_type(f, oc, m, &t));
        TRY(check_rest(f, oc, m));
        TRY(need_ops(f, oc, nops, 2));
        if (t == T_F16X2 || t == T_BF16X2)
                t = T_B32; /* packed halves move as 32-bit values */
        if (t == T_PRED || t == T_B128)
                return unsupported(f, oc);
        int space = m->space < 0 ? SP_GENERIC : m->space;
        unsigned vec = m->vec ? m->vec : 1;
        const struct opnd *val = ld ? &ops[0] : &ops[1];
        const struct opnd *addr = ld ? &ops[1] : &ops[0];
        memset(&tmpl, 0, sizeof(tmpl));
        for (int i = 0; i < 5; i++)
                tmpl.o[i] = OPND_NONE;

        /* parameter space: kernel parameters are one buffer, function parameters per lane */
        if (space == SP_PARAM && addr->kind == OK_ADDR && !addr->addr_reg && addr->sym[0]) {
                struct sym *s = sym_find(&f->syms, addr->sym);
                if (!s || (s->kind != SYM_KPARAM && s->kind != SYM_FPARAM))
                        return fctx_error(f, PTX_EPARSE, "unknown parameter '%s'", addr->sym);
                if (s->kind == SYM_KPARAM && !ld)
                        return unsupported(f, oc);
                if (addr->ival < 0 || (uint64_t)addr->ival + type_size(t) * vec > s->size)
                        return fctx_error(f, PTX_EPARSE, "access outside parameter '%s'",
                                          addr->sym);
                tmpl.op = s->kind == SYM_KPARAM ? OP_LD_KPARAM : ld ? OP_LD_FPARAM : OP_ST_FPARAM;
                tmpl.imm = (int64_t)s->off + addr->ival;
        } else if (space == SP_PARAM) {
                if (!addr->addr_reg || !f->fn->is_entry || !ld)
                        return unsupported(f, oc);
                tmpl.op = OP_LD;
                TRY(mem_address(f, &tmpl, addr, space));
                tmpl.t2 = SP_KPARAM;
        } else {
                tmpl.op = ld ? OP_LD : OP_ST;
                TRY(mem_address(f, &tmpl, addr, space));
                tmpl.t2 = (uint8_t)space;
        }
        tmpl.t = (uint8_t)t;
        tmpl.vec = (uint8_t)vec;
        if (type_is_signed(t))
                tmpl.flags |= F_SIGNX;

        /* value registers: one, or a vector; each may be wider than t (ld.u8 into .b16) */
        uint32_t regs[4];
        unsigned regw = 0;
        for (unsigned i = 0; i < vec; i++) {
                const struct opnd *e = val;
                struct opnd tmp;
                if (vec > 1) {
                        if (val->kind != OK_VEC || val->nvec != vec)
                                return fctx_error(f, PTX_EPARSE, "expected a %u-vector", vec);
                        memset(&tmp, 0, sizeof(tmp));
                        if (val->vsink[i]) {
                                tmp.kind = OK_SINK;
                        } else if (val->visimm[i]) {
                                tmp.kind = OK_INT;
                                tmp.ival = val->vimm[i];
                        } else {
                                tmp.kind = OK_REG;
                                tmp.reg = val->vec[i];
                                tmp.type = val->vtype[i];
                        }
                        e = &tmp;
                }
                unsigned w;
                if (e->kind == OK_REG) {
                        w = type_size(e->type);
                        if (e->type == T_PRED || w < type_size(t))
                                return fctx_error(f, PTX_EPARSE, "register too narrow for '%s'",
                                                  oc->base);
                        regs[i] = e->reg;
                } else if (e->kind == OK_SINK && ld) {
                        w = type_size(t) < 2 ? 2 : type_size(t);
                        regs[i] = fn_reg_alloc(f->fn, uint_of_width(w));
                        if (regs[i] == OPND_NONE)
                                return -ENOMEM;
                } else if (!ld && (e->kind == OK_INT || e->kind == OK_F32 || e->kind == OK_F64)) {
                        w = type_size(t) < 2 ? 2 : type_size(t);
                        unsigned ct = type_is_float(t) ? t : uint_of_width(w);
                        TRY(src(f, e, ct, &regs[i]));
                } else {
                        return fctx_error(f, PTX_EPARSE, "bad %s operand", ld ? "load" : "store");
                }
                if (regw && w != regw)
                        return unsupported(f, oc);
                regw = w;
        }
        struct ptx_insn *in = emit(f, tmpl.op, (int)t);
        if (!in)
                return -ENOMEM;
        uint32_t line = in->line;
        *in = tmpl;
        in->line = line;
        in->regw = (uint8_t)regw;
        for (unsigned i = 0; i < vec; i++)
                in->o[i] = regs[i];
        return 0;
}

static int atom_op(struct mods *m)
{
        static const char *const names[] = {".add", ".min",  ".max", ".and", ".or",
                                            ".xor", ".exch", ".cas", ".inc", ".dec"};
        for (int i = 0; i < 10; i++) {
                if (take(m, names[i]))
                        return i;
        }
        return -1;
}

static int dec_atom(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                    unsigned nops)
{
        bool red = oc->base[0] == 'r';
        unsigned t = T_NONE;
        int aop = atom_op(m);
        TRY(one_type(f, oc, m, &t));
        TRY(check_rest(f, oc, m));
        if (aop < 0 || m->vec || (type_size(t) != 4 && type_size(t) != 8) || t == T_PRED)
                return unsupported(f, oc);
        if (type_is_float(t) && aop != ATOM_ADD && aop != ATOM_EXCH && aop != ATOM_MIN &&
            aop != ATOM_MAX)
                return unsupported(f, oc);
        if ((aop == ATOM_INC || aop == ATOM_DEC) && t != T_U32)
                return unsupported(f, oc);
        unsigned nsrc = aop == ATOM_CAS ? 2 : 1;
        TRY(need_ops(f, oc, nops, (red ? 1 : 2) + nsrc));
        int space = m->space < 0 ? SP_GENERIC : m->space;
        if (space != SP_GENERIC && space != SP_GLOBAL && space != SP_SHARED)
                return unsupported(f, oc);
        struct ptx_insn tmpl;
        memset(&tmpl, 0, sizeof(tmpl));
        for (int i = 0; i < 5; i++)
                tmpl.o[i] = OPND_NONE;
        unsigned base = red ? 0 : 1;
        TRY(mem_address(f, &tmpl, &ops[base], space));
        unsigned vt = (t >= T_B8 && t <= T_B64) ? uint_of_width(type_size(t)) : t;
        TRY(src(f, &ops[base + 1], vt, &tmpl.o[1]));
        if (nsrc == 2)
                TRY(src(f, &ops[base + 2], vt, &tmpl.o[2]));
        struct dstfix fx = {0};
        if (!red)
                TRY(dst(f, &ops[0], vt, &tmpl.o[0], &fx));
        struct ptx_insn *in = emit(f, OP_ATOM, (int)vt);
        if (!in)
                return -ENOMEM;
        uint32_t line = in->line;
        *in = tmpl;
        in->op = OP_ATOM;
        in->t = (uint8_t)vt;
        in->t2 = (uint8_t)space;
        in->sub = (uint8_t)aop;
        in->line = line;
        return dst_finish(f, &fx);
}

static int dec_cvta(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                    unsigned nops)
{
        unsigned t = T_NONE;
        TRY(one_type(f, oc, m, &t));
        TRY(check_rest(f, oc, m));
        if (m->space < 0 || (type_size(t) != 4 && type_size(t) != 8))
                return unsupported(f, oc);
        struct ptx_insn *in;
        TRY(simple(f, oc, ops, nops, m->to ? OP_CVTA_TO : OP_CVTA_FROM, uint_of_width(type_size(t)),
                   1, &in));
        in->t2 = (uint8_t)(m->space == SP_PARAM ? SP_KPARAM : m->space);
        return 0;
}

static int dec_isspacep(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                        unsigned nops)
{
        uint32_t p = OPND_NONE, a = OPND_NONE;
        struct dstfix fx;
        TRY(check_rest(f, oc, m));
        TRY(need_ops(f, oc, nops, 2));
        if (m->space < 0)
                return unsupported(f, oc);
        TRY(src(f, &ops[1], T_U64, &a));
        TRY(dst(f, &ops[0], T_PRED, &p, &fx));
        struct ptx_insn *in = emit(f, OP_ISSPACEP, T_U64);
        if (!in)
                return -ENOMEM;
        in->t2 = (uint8_t)(m->space == SP_PARAM ? SP_KPARAM : m->space);
        in->o[0] = p;
        in->o[1] = a;
        return 0;
}

static int dec_bar(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                   unsigned nops)
{
        uint32_t id = OPND_NONE, cnt = OPND_NONE, d = OPND_NONE, pr = OPND_NONE;
        struct dstfix fx = {0};
        int red = 0;
        bool arrive = take(m, ".arrive");
        if (strcmp(oc->base, "bar") == 0 && take(m, ".warp")) {
                TRY(check_rest(f, oc, m));
                struct ptx_insn *in = emit(f, OP_WARPSYNC, T_U32);
                return in ? 0 : -ENOMEM;
        }
        if (take(m, ".red")) {
                if (take(m, ".popc"))
                        red = 1;
                else if (take(m, ".and"))
                        red = 2;
                else if (take(m, ".or"))
                        red = 3;
                else
                        return unsupported(f, oc);
        }
        TRY(check_rest(f, oc, m));
        unsigned first = red ? 1 : 0;
        if (nops < first + 1 || nops > first + 3)
                return fctx_error(f, PTX_EPARSE, "bar: wrong operand count");
        TRY(src(f, &ops[first], T_U32, &id));
        if (red) {
                if (nops == first + 3)
                        TRY(src(f, &ops[first + 1], T_U32, &cnt));
                TRY(src(f, &ops[nops - 1], T_PRED, &pr));
                TRY(dst(f, &ops[0], red == 1 ? T_U32 : T_PRED, &d, &fx));
        } else if (nops == 2) {
                TRY(src(f, &ops[1], T_U32, &cnt));
        }
        struct ptx_insn *in = emit(f, OP_BAR, T_U32);
        if (!in)
                return -ENOMEM;
        in->sub = (uint8_t)red;
        in->sub2 = arrive ? 1 : 0;
        in->vec = red && ops[nops - 1].neg ? 1 : 0;
        in->o[0] = d;
        in->o[1] = id;
        in->o[2] = cnt;
        in->o[3] = pr;
        return dst_finish(f, &fx);
}

static int dec_warp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                    unsigned nops)
{
        const char *b = oc->base;
        struct ptx_insn *in;
        struct dstfix fx = {0};
        if (strcmp(b, "shfl") == 0) {
                int mode = take(m, ".up")     ? 0
                           : take(m, ".down") ? 1
                           : take(m, ".bfly") ? 2
                           : take(m, ".idx")  ? 3
                                              : -1;
                unsigned t = T_NONE;
                TRY(one_type(f, oc, m, &t));
                TRY(check_rest(f, oc, m));
                if (mode < 0 || type_size(t) != 4 || (nops != 5 && nops != 4))
                        return unsupported(f, oc);
                uint32_t d = OPND_NONE, a = OPND_NONE, bb = OPND_NONE, c = OPND_NONE;
                TRY(src(f, &ops[1], T_U32, &a));
                TRY(src(f, &ops[2], T_U32, &bb));
                TRY(src(f, &ops[3], T_U32, &c));
                TRY(dst(f, &ops[0], T_U32, &d, &fx));
                in = emit(f, OP_SHFL, T_U32);
                if (!in)
                        return -ENOMEM;
                in->sub = (uint8_t)mode;
                in->o[0] = d;
                in->o[1] = ops[0].reg2;
                in->o[2] = a;
                in->o[3] = bb;
                in->o[4] = c;
                return 0;
        }
        if (strcmp(b, "vote") == 0) {
                /* .uni is also a branch hint, ignored elsewhere: look for it by name */
                bool uni = false;
                for (unsigned i = 0; i < oc->nmods; i++)
                        uni |= strcmp(oc->mods[i], ".uni") == 0;
                int mode = take(m, ".all")      ? 0
                           : take(m, ".any")    ? 1
                           : uni                ? 2
                           : take(m, ".ballot") ? 3
                                                : -1;
                unsigned t = T_NONE;
                TRY(one_type(f, oc, m, &t));
                TRY(check_rest(f, oc, m));
                if (mode < 0 || (mode == 3 ? type_size(t) != 4 : t != T_PRED) ||
                    (nops != 2 && nops != 3))
                        return unsupported(f, oc);
                uint32_t d = OPND_NONE, p = OPND_NONE;
                TRY(src(f, &ops[1], T_PRED, &p));
                TRY(dst(f, &ops[0], mode == 3 ? T_U32 : T_PRED, &d, &fx));
                in = emit(f, OP_VOTE, T_U32);
                if (!in)
                        return -ENOMEM;
                in->sub = (uint8_t)mode;
                in->vec = ops[1].neg ? 1 : 0;
                in->o[0] = d;
                in->o[1] = p;
                return dst_finish(f, &fx);
        }
        if (strcmp(b, "match") == 0) {
                int mode = take(m, ".any") ? 0 : take(m, ".all") ? 1 : -1;
                unsigned t = T_NONE;
                TRY(one_type(f, oc, m, &t));
                TRY(check_rest(f, oc, m));
                if (mode < 0 || (type_size(t) != 4 && type_size(t) != 8) ||
                    (nops != 2 && nops != 3))
                        return unsupported(f, oc);
                uint32_t d = OPND_NONE, a = OPND_NONE;
                TRY(src(f, &ops[1], uint_of_width(type_size(t)), &a));
                TRY(dst(f, &ops[0], T_U32, &d, &fx));
                in = emit(f, OP_MATCH, (int)uint_of_width(type_size(t)));
                if (!in)
                        return -ENOMEM;
                in->sub = (uint8_t)mode;
                in->o[0] = d;
                in->o[1] = ops[0].reg2;
                in->o[2] = a;
                return dst_finish(f, &fx);
        }
        if (strcmp(b, "activemask") == 0) {
                uint32_t d = OPND_NONE;
                TRY(check_rest(f, oc, m));
                TRY(need_ops(f, oc, nops, 1));
                TRY(dst(f, &ops[0], T_U32, &d, &fx));
                in = emit(f, OP_ACTIVEMASK, T_U32);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                return dst_finish(f, &fx);
        }
        return unsupported(f, oc);
}

static int dec_testp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                     unsigned nops)
{
        static const char *const modes[] = {".finite",     ".infinite", ".number",
                                            ".notanumber", ".normal",   ".subnormal"};
        int mode = -1;
        unsigned t = T_NONE;
        uint32_t p = OPND_NONE, a = OPND_NONE;
        struct dstfix fx;
        for (int i = 0; i < 6 && mode < 0; i++) {
                if (take(m, modes[i]))
                        mode = i;
        }
        TRY(one_type(f, oc, m, &t));
        TRY(check_rest(f, oc, m));
        TRY(need_ops(f, oc, nops, 2));
        if (mode < 0 || (t != T_F32 && t != T_F64))
                return unsupported(f, oc);
        TRY(src(f, &ops[1], t, &a));
        TRY(dst(f, &ops[0], T_PRED, &p, &fx));
        struct ptx_insn *in = emit(f, OP_TESTP, (int)t);
        if (!in)
                return -ENOMEM;
        in->sub = (uint8_t)mode;
        in->o[0] = p;
        in->o[1] = a;
        return 0;
}

static int dec_control(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                       unsigned nops)
{
        const char *b = oc->base;
        struct ptx_insn *in;
        TRY(check_rest(f, oc, m));
        if (strcmp(b, "bra") == 0) {
                if (nops != 1 || ops[0].kind != OK_SYM)
                        return fctx_error(f, PTX_EPARSE, "bra needs a label");
                in = emit(f, OP_BRA, T_NONE);
        } else if (strcmp(b, "ret") == 0) {
                in = emit(f, OP_RET, T_NONE);
        } else if (strcmp(b, "exit") == 0) {
                in = emit(f, OP_EXIT, T_NONE);
        } else if (strcmp(b, "trap") == 0) {
                in = emit(f, OP_TRAP, T_NONE);
        } else {
                /* membar, fence, brkpt, nanosleep, pmevent, prefetch: no effect on the sim */
                in = emit(f, OP_NOP, T_NONE);
        }
        return in ? 0 : -ENOMEM;
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
                        struct ptx_insn *in = emit(f, OP_NOP, T_NONE);
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
                   strcmp(b, "activemask") == 0) {
                r = dec_warp(f, oc, &m, ops, nops);
        } else if (strcmp(b, "testp") == 0) {
                r = dec_testp(f, oc, &m, ops, nops);
        } else if (strcmp(b, "bra") == 0 || strcmp(b, "ret") == 0 || strcmp(b, "exit") == 0 ||
                   strcmp(b, "trap") == 0) {
                r = dec_control(f, oc, &m, ops, nops);
        } else {
                r = unsupported(f, oc);
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
