// SPDX-License-Identifier: Apache-2.0
// Decoders of the arithmetic families: integer and float arithmetic (half precision widened),
// logic, shifts, bit operations, comparisons and selects, moves, conversions.
#include <errno.h>
#include <string.h>

#include "ptx/decode.h"

/*
 * Half-precision arithmetic (.f16, .bf16 and the packed .f16x2, .bf16x2): each half is widened
 * (to f32, exact; to f64 for fma), computed, and rounded back once. f32 holds the exact result of
 * a half add, sub or mul before its single rounding (24 >= 2 * 11 + 2 bits), so this is exact.
 */
int dec_half(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops, int op, unsigned nsrc, unsigned t)
{
        bool x2 = t == T_F16X2 || t == T_BF16X2;
        unsigned ht = (t == T_F16 || t == T_F16X2) ? T_F16 : T_BF16;
        unsigned wt = op == OP_FFMA ? T_F64 : T_F32;
        unsigned nh = x2 ? 2 : 1;
        uint32_t s[3], halves[3][2], res[2];
        struct dstfix fx;

        TRY(dec_need_ops(f, oc, nops, nsrc + 1));
        TRY(dec_check_rest(f, oc, m));
        for (unsigned i = 0; i < nsrc; i++) {
                TRY(dec_src(f, &ops[i + 1], x2 ? T_U32 : T_U16, &s[i]));
                if (!x2) {
                        halves[i][0] = s[i];
                        continue;
                }
                halves[i][0] = fn_reg_alloc(f->fn, T_U16);
                halves[i][1] = fn_reg_alloc(f->fn, T_U16);
                struct ptx_insn *in = dec_emit(f, OP_UNPACK, T_U16);
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
                        TRY(dec_emit_cvt(f, w[i], wt, halves[i][h], ht, 0));
                }
                struct ptx_insn *in = dec_emit(f, op, (int)wt);
                if (!in)
                        return -ENOMEM;
                in->o[0] = r;
                for (unsigned i = 0; i < nsrc; i++)
                        in->o[1 + i] = w[i];
                in->sub = RND_RN;
                if (m->sat)
                        in->flags |= F_SAT;
                TRY(dec_emit_cvt(f, res[h], ht, r, wt, m->rnd == RND_RZ ? RND_RZ : RND_RN));
        }
        uint32_t d = OPND_NONE;
        TRY(dec_dst(f, &ops[0], x2 ? T_U32 : T_U16, &d, &fx));
        struct ptx_insn *in = dec_emit(f, x2 ? OP_PACK : OP_MOV, T_U16);
        if (!in)
                return -ENOMEM;
        in->o[0] = d;
        in->o[1] = res[0];
        if (x2) {
                in->o[2] = res[1];
                in->vec = 2;
        }
        return dec_dst_finish(f, &fx);
}

int dec_arith(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
              unsigned nops)
{
        const char *b = oc->base;
        unsigned t = T_NONE;
        int op = -1;
        unsigned nsrc = 2;
        struct ptx_insn *in;

        TRY(dec_one_type(f, oc, m, &t));
        if (dec_is_f16ish(t)) {
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
                return dec_unsupported(f, oc);
        }
        if (t == T_PRED || t == T_B128)
                return dec_unsupported(f, oc);
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
                        return dec_unsupported(f, oc);
                }
                if (m->cc || dec_take(m, ".cc"))
                        return dec_unsupported(f, oc);
        }
        if (op < 0)
                return dec_unsupported(f, oc);
        if (fl && (op == OP_DIV || op == OP_REM || op == OP_ADDSAT))
                return dec_unsupported(f, oc);
        if (!fl && (op == OP_FFMA || op == OP_COPYSIGN))
                return dec_unsupported(f, oc);
        TRY(dec_check_rest(f, oc, m));
        if (op == OP_MULWIDE || op == OP_MADWIDE) {
                /* the destination (and mad's addend) are twice as wide */
                unsigned wt = type_is_signed(t) ? t + 1 : dec_uint_of_width(type_size(t) * 2);
                if (type_size(t) > 4)
                        return dec_unsupported(f, oc);
                uint32_t d = OPND_NONE, s[3];
                struct dstfix fx;
                TRY(dec_need_ops(f, oc, nops, nsrc + 1));
                TRY(dec_src(f, &ops[1], t, &s[0]));
                TRY(dec_src(f, &ops[2], t, &s[1]));
                if (nsrc == 3)
                        TRY(dec_src(f, &ops[3], wt, &s[2]));
                TRY(dec_dst(f, &ops[0], wt, &d, &fx));
                in = dec_emit(f, op, (int)t);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = s[0];
                in->o[2] = s[1];
                in->o[3] = nsrc == 3 ? s[2] : OPND_NONE;
                return dec_dst_finish(f, &fx);
        }
        if (op == OP_ADDC || op == OP_SUBC || m->cc) {
                if (op == OP_ADD)
                        op = OP_ADDC;
                else if (op == OP_SUB)
                        op = OP_SUBC;
                else if (op != OP_ADDC && op != OP_SUBC)
                        return dec_unsupported(f, oc);
        }
        TRY(dec_simple(f, oc, ops, nops, op, t, nsrc, &in));
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

int dec_logic(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
              unsigned nops)
{
        const char *b = oc->base;
        unsigned t = T_NONE;
        TRY(dec_one_type(f, oc, m, &t));
        TRY(dec_check_rest(f, oc, m));
        if (t == T_PRED) {
                int op = strcmp(b, "and") == 0   ? OP_PAND
                         : strcmp(b, "or") == 0  ? OP_POR
                         : strcmp(b, "xor") == 0 ? OP_PXOR
                         : strcmp(b, "not") == 0 ? OP_PNOT
                                                 : -1;
                if (op < 0)
                        return dec_unsupported(f, oc);
                unsigned nsrc = op == OP_PNOT ? 1 : 2;
                struct ptx_insn *in;
                TRY(dec_simple(f, oc, ops, nops, op, T_PRED, nsrc, &in));
                /* negated sources: !%p in and/or */
                if (ops[1].neg || (nsrc == 2 && ops[2].neg))
                        in->sub =
                                (uint8_t)((ops[1].neg ? 1 : 0) | (nsrc == 2 && ops[2].neg ? 2 : 0));
                return 0;
        }
        if (type_size(t) < 2 || type_is_float(t))
                return dec_unsupported(f, oc);
        t = dec_uint_of_width(type_size(t));
        if (strcmp(b, "and") == 0)
                return dec_simple(f, oc, ops, nops, OP_AND, t, 2, NULL);
        if (strcmp(b, "or") == 0)
                return dec_simple(f, oc, ops, nops, OP_OR, t, 2, NULL);
        if (strcmp(b, "xor") == 0)
                return dec_simple(f, oc, ops, nops, OP_XOR, t, 2, NULL);
        if (strcmp(b, "not") == 0)
                return dec_simple(f, oc, ops, nops, OP_NOT, t, 1, NULL);
        if (strcmp(b, "cnot") == 0)
                return dec_simple(f, oc, ops, nops, OP_CNOT, t, 1, NULL);
        return dec_unsupported(f, oc);
}

int dec_shift(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
              unsigned nops)
{
        unsigned t = T_NONE;
        uint32_t d = OPND_NONE, a = OPND_NONE, s = OPND_NONE;
        struct dstfix fx;
        TRY(dec_one_type(f, oc, m, &t));
        TRY(dec_check_rest(f, oc, m));
        TRY(dec_need_ops(f, oc, nops, 3));
        if (type_size(t) < 2 || type_is_float(t) || t == T_PRED)
                return dec_unsupported(f, oc);
        if (t >= T_B8 && t <= T_B64)
                t = dec_uint_of_width(type_size(t));
        TRY(dec_src(f, &ops[1], t, &a));
        TRY(dec_src(f, &ops[2], T_U32, &s));
        TRY(dec_dst(f, &ops[0], t, &d, &fx));
        struct ptx_insn *in = dec_emit(f, oc->base[2] == 'l' ? OP_SHL : OP_SHR, (int)t);
        if (!in)
                return -ENOMEM;
        in->o[0] = d;
        in->o[1] = a;
        in->o[2] = s;
        return dec_dst_finish(f, &fx);
}

/* popc, clz, brev, bfe, bfi, prmt, shf, lop3, bfind-free bit operations */
int dec_bits(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops)
{
        const char *b = oc->base;
        unsigned t = T_NONE;
        uint32_t d = OPND_NONE, s[4];
        struct dstfix fx;
        struct ptx_insn *in;

        TRY(dec_one_type(f, oc, m, &t));
        if (type_size(t) != 4 && type_size(t) != 8)
                return dec_unsupported(f, oc);
        if (strcmp(b, "popc") == 0 || strcmp(b, "clz") == 0) {
                TRY(dec_check_rest(f, oc, m));
                TRY(dec_need_ops(f, oc, nops, 2));
                TRY(dec_src(f, &ops[1], dec_uint_of_width(type_size(t)), &s[0]));
                TRY(dec_dst(f, &ops[0], T_U32, &d, &fx));
                in = dec_emit(f, b[0] == 'p' ? OP_POPC : OP_CLZ,
                              (int)dec_uint_of_width(type_size(t)));
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = s[0];
                return dec_dst_finish(f, &fx);
        }
        if (strcmp(b, "brev") == 0) {
                TRY(dec_check_rest(f, oc, m));
                return dec_simple(f, oc, ops, nops, OP_BREV, dec_uint_of_width(type_size(t)), 1,
                                  NULL);
        }
        if (strcmp(b, "bfe") == 0) {
                TRY(dec_check_rest(f, oc, m));
                TRY(dec_need_ops(f, oc, nops, 4));
                TRY(dec_src(f, &ops[1], t, &s[0]));
                TRY(dec_src(f, &ops[2], T_U32, &s[1]));
                TRY(dec_src(f, &ops[3], T_U32, &s[2]));
                TRY(dec_dst(f, &ops[0], t, &d, &fx));
                in = dec_emit(f, OP_BFE, (int)t);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = s[0];
                in->o[2] = s[1];
                in->o[3] = s[2];
                return dec_dst_finish(f, &fx);
        }
        if (strcmp(b, "bfi") == 0) {
                TRY(dec_check_rest(f, oc, m));
                TRY(dec_need_ops(f, oc, nops, 5));
                t = dec_uint_of_width(type_size(t));
                TRY(dec_src(f, &ops[1], t, &s[0]));
                TRY(dec_src(f, &ops[2], t, &s[1]));
                TRY(dec_src(f, &ops[3], T_U32, &s[2]));
                TRY(dec_src(f, &ops[4], T_U32, &s[3]));
                TRY(dec_dst(f, &ops[0], t, &d, &fx));
                in = dec_emit(f, OP_BFI, (int)t);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = s[0];
                in->o[2] = s[1];
                in->o[3] = s[2];
                in->o[4] = s[3];
                return dec_dst_finish(f, &fx);
        }
        if (strcmp(b, "prmt") == 0) {
                if (type_size(t) != 4 || m->nother > 0)
                        return dec_unsupported(f, oc); /* the .f4e/.b4e/... modes */
                return dec_simple(f, oc, ops, nops, OP_PRMT, T_U32, 3, NULL);
        }
        if (strcmp(b, "shf") == 0) {
                bool left = dec_take(m, ".l");
                bool right = !left && dec_take(m, ".r");
                bool wrap = dec_take(m, ".wrap");
                bool clamp = !wrap && dec_take(m, ".clamp");
                if ((!left && !right) || (!wrap && !clamp) || type_size(t) != 4)
                        return dec_unsupported(f, oc);
                TRY(dec_check_rest(f, oc, m));
                TRY(dec_simple(f, oc, ops, nops, OP_SHF, T_U32, 3, &in));
                in->sub = (uint8_t)((left ? 1 : 0) | (wrap ? 2 : 0));
                return 0;
        }
        if (strcmp(b, "bfind") == 0) {
                bool shiftamt = dec_take(m, ".shiftamt");
                uint32_t a = OPND_NONE;
                TRY(dec_check_rest(f, oc, m));
                TRY(dec_need_ops(f, oc, nops, 2));
                if (t >= T_B8 && t <= T_B64)
                        return dec_unsupported(f, oc);
                TRY(dec_src(f, &ops[1], t, &a));
                TRY(dec_dst(f, &ops[0], T_U32, &d, &fx));
                in = dec_emit(f, OP_BFIND, (int)t);
                if (!in)
                        return -ENOMEM;
                in->sub = shiftamt ? 1 : 0;
                in->o[0] = d;
                in->o[1] = a;
                return dec_dst_finish(f, &fx);
        }
        if (strcmp(b, "fns") == 0) {
                uint32_t a = OPND_NONE, bb = OPND_NONE, c = OPND_NONE;
                TRY(dec_check_rest(f, oc, m));
                TRY(dec_need_ops(f, oc, nops, 4));
                if (type_size(t) != 4)
                        return dec_unsupported(f, oc);
                TRY(dec_src(f, &ops[1], T_U32, &a));
                TRY(dec_src(f, &ops[2], T_U32, &bb));
                TRY(dec_src(f, &ops[3], T_S32, &c));
                TRY(dec_dst(f, &ops[0], T_U32, &d, &fx));
                in = dec_emit(f, OP_FNS, T_U32);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = a;
                in->o[2] = bb;
                in->o[3] = c;
                return dec_dst_finish(f, &fx);
        }
        if (strcmp(b, "lop3") == 0) {
                TRY(dec_check_rest(f, oc, m));
                if (nops != 5 || ops[4].kind != OK_INT || type_size(t) != 4)
                        return dec_unsupported(f, oc);
                TRY(dec_simple(f, oc, ops, 4, OP_LOP3, T_U32, 3, &in));
                in->imm = ops[4].ival & 0xff;
                return 0;
        }
        return dec_unsupported(f, oc);
}

/* sad, mul24, mad24, dp4a, dp2a: integer operations with operands of their own shapes. */
int dec_intmisc(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                unsigned nops)
{
        const char *b = oc->base;
        struct ptx_insn *in;
        unsigned t = T_NONE;
        if (strcmp(b, "sad") == 0) {
                TRY(dec_one_type(f, oc, m, &t));
                TRY(dec_check_rest(f, oc, m));
                if (!type_is_int(t) || type_size(t) < 2 || (t >= T_B8 && t <= T_B64))
                        return dec_unsupported(f, oc);
                return dec_simple(f, oc, ops, nops, OP_SAD, t, 3, NULL);
        }
        if (strcmp(b, "mul24") == 0 || strcmp(b, "mad24") == 0) {
                bool mad = b[1] == 'a';
                TRY(dec_one_type(f, oc, m, &t));
                TRY(dec_check_rest(f, oc, m));
                if ((t != T_U32 && t != T_S32) || (m->cmp != CMP_LO && m->cmp != CMP_HI) || m->sat)
                        return dec_unsupported(f, oc);
                TRY(dec_simple(f, oc, ops, nops, OP_MUL24, t, mad ? 3 : 2, &in));
                in->sub = m->cmp == CMP_HI ? 1 : 0;
                return 0;
        }
        if (strcmp(b, "dp4a") == 0 || strcmp(b, "dp2a") == 0) {
                int half = 0;
                if (b[2] == '2') {
                        half = m->cmp == CMP_LO ? 1 : m->cmp == CMP_HI ? 2 : 0;
                        if (!half)
                                return dec_unsupported(f, oc);
                }
                TRY(dec_check_rest(f, oc, m));
                if (m->ntypes != 2)
                        return dec_unsupported(f, oc);
                unsigned at = (unsigned)m->types[0], bt = (unsigned)m->types[1];
                if ((at != T_U32 && at != T_S32) || (bt != T_U32 && bt != T_S32))
                        return dec_unsupported(f, oc);
                TRY(dec_simple(f, oc, ops, nops, OP_DP4A, at, 3, &in));
                in->t2 = (uint8_t)bt;
                in->sub = (uint8_t)half;
                return 0;
        }
        return dec_unsupported(f, oc);
}

int dec_fmath(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
              unsigned nops)
{
        static const struct {
                const char *n;
                int op;
        } ops1[] = {{"rcp", OP_RCP}, {"sqrt", OP_SQRT}, {"rsqrt", OP_RSQRT}, {"ex2", OP_EX2},
                    {"lg2", OP_LG2}, {"sin", OP_SIN},   {"cos", OP_COS},     {"tanh", OP_TANH}};
        unsigned t = T_NONE;
        int op = -1;
        TRY(dec_one_type(f, oc, m, &t));
        if (t != T_F32 && t != T_F64)
                return dec_unsupported(f, oc);
        for (size_t i = 0; i < sizeof(ops1) / sizeof(ops1[0]); i++) {
                if (strcmp(oc->base, ops1[i].n) == 0)
                        op = ops1[i].op;
        }
        if (op < 0)
                return dec_unsupported(f, oc);
        dec_take(m, ".ftz");
        TRY(dec_check_rest(f, oc, m));
        struct ptx_insn *in;
        TRY(dec_simple(f, oc, ops, nops, op, t, 1, &in));
        in->sub = (uint8_t)(m->rnd ? m->rnd : RND_RN);
        if (m->approx)
                in->flags |= F_APPROX;
        if (m->ftz)
                in->flags |= F_FTZ;
        return 0;
}

/*
 * setp on halves: widen to f32 (exact, so comparisons keep their result) and compare there. The
 * packed x2 form writes the low halves' result to p and the high halves' to q.
 */
static int dec_setp_half(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                         unsigned nops, unsigned t)
{
        bool x2 = t == T_F16X2 || t == T_BF16X2;
        unsigned ht = (t == T_F16 || t == T_F16X2) ? T_F16 : T_BF16;
        uint32_t s[2], halves[2][2];
        struct dstfix fx;

        TRY(dec_check_rest(f, oc, m));
        if (nops != 3 || (x2 && ops[0].reg2 == OPND_NONE) ||
            (ops[0].reg2 != OPND_NONE && ops[0].type2 != T_PRED))
                return dec_unsupported(f, oc);
        for (unsigned i = 0; i < 2; i++) {
                TRY(dec_src(f, &ops[1 + i], x2 ? T_U32 : T_U16, &s[i]));
                halves[i][0] = s[i];
                if (!x2)
                        continue;
                halves[i][0] = fn_reg_alloc(f->fn, T_U16);
                halves[i][1] = fn_reg_alloc(f->fn, T_U16);
                struct ptx_insn *in = dec_emit(f, OP_UNPACK, T_U16);
                if (!in || halves[i][0] == OPND_NONE || halves[i][1] == OPND_NONE)
                        return -ENOMEM;
                in->o[0] = halves[i][0];
                in->o[1] = halves[i][1];
                in->o[4] = s[i];
                in->vec = 2;
        }
        uint32_t dsts[2];
        TRY(dec_dst(f, &ops[0], T_PRED, &dsts[0], &fx));
        dsts[1] = ops[0].reg2;
        for (unsigned h = 0; h < (x2 ? 2u : 1u); h++) {
                uint32_t w0 = fn_reg_alloc(f->fn, T_F32), w1 = fn_reg_alloc(f->fn, T_F32);
                if (w0 == OPND_NONE || w1 == OPND_NONE)
                        return -ENOMEM;
                TRY(dec_emit_cvt(f, w0, T_F32, halves[0][h], ht, 0));
                TRY(dec_emit_cvt(f, w1, T_F32, halves[1][h], ht, 0));
                struct ptx_insn *in = dec_emit(f, OP_SETP, T_F32);
                if (!in)
                        return -ENOMEM;
                in->sub = (uint8_t)m->cmp;
                in->o[0] = dsts[h];
                in->o[1] = x2 ? OPND_NONE : ops[0].reg2;
                in->o[2] = w0;
                in->o[3] = w1;
        }
        return 0;
}

int dec_setp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops)
{
        unsigned t = T_NONE;
        uint32_t p = OPND_NONE, q = OPND_NONE, a = OPND_NONE, b = OPND_NONE, c = OPND_NONE;
        int bop = 0;
        struct dstfix fx;

        TRY(dec_one_type(f, oc, m, &t));
        if (m->cmp >= 0 && dec_is_f16ish(t) && !(m->cmp >= CMP_LO && m->cmp <= CMP_HS))
                return dec_setp_half(f, oc, m, ops, nops, t);
        if (m->cmp < 0 || t == T_PRED || dec_is_f16ish(t))
                return dec_unsupported(f, oc);
        if (dec_take(m, ".and"))
                bop = 1;
        else if (dec_take(m, ".or"))
                bop = 2;
        else if (dec_take(m, ".xor"))
                bop = 3;
        TRY(dec_check_rest(f, oc, m));
        if (nops != (bop ? 4u : 3u))
                return fctx_error(f, PTX_EPARSE, "setp: wrong operand count");
        if (type_is_float(t) ? m->cmp >= CMP_LO && m->cmp <= CMP_HS : m->cmp >= CMP_EQU)
                return dec_unsupported(f, oc);
        /* bit types compare as unsigned */
        if (t >= T_B8 && t <= T_B64)
                t = dec_uint_of_width(type_size(t));
        TRY(dec_src(f, &ops[1], t, &a));
        TRY(dec_src(f, &ops[2], t, &b));
        if (bop)
                TRY(dec_src(f, &ops[3], T_PRED, &c));
        TRY(dec_dst(f, &ops[0], T_PRED, &p, &fx));
        if (ops[0].reg2 != OPND_NONE) {
                if (ops[0].type2 != T_PRED)
                        return fctx_error(f, PTX_EPARSE, "setp: second destination");
                q = ops[0].reg2;
        }
        struct ptx_insn *in = dec_emit(f, OP_SETP, (int)t);
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

/*
 * set on halves: per half, compare in f32 and select "true" (1.0 in a float destination's format,
 * all ones in an integer one) or 0; packed x2 sources give one 16-bit result per half.
 */
static int dec_set_half(struct fctx *f, const struct opcode *oc, struct opnd *ops, unsigned nops,
                        int cmp, unsigned dt, unsigned st)
{
        bool x2 = st == T_F16X2 || st == T_BF16X2;
        unsigned ht = (st == T_F16 || st == T_F16X2) ? T_F16 : T_BF16;
        unsigned dw = type_size(dt);
        uint32_t s[2], halves[2][2], res[2], d;
        struct dstfix fx;

        TRY(dec_need_ops(f, oc, nops, 3));
        if (dt == T_PRED || (x2 ? dw != 4 : (dw != 2 && dw != 4)))
                return dec_unsupported(f, oc);
        for (unsigned i = 0; i < 2; i++) {
                TRY(dec_src(f, &ops[1 + i], x2 ? T_U32 : T_U16, &s[i]));
                halves[i][0] = s[i];
                if (!x2)
                        continue;
                halves[i][0] = fn_reg_alloc(f->fn, T_U16);
                halves[i][1] = fn_reg_alloc(f->fn, T_U16);
                struct ptx_insn *in = dec_emit(f, OP_UNPACK, T_U16);
                if (!in || halves[i][0] == OPND_NONE || halves[i][1] == OPND_NONE)
                        return -ENOMEM;
                in->o[0] = halves[i][0];
                in->o[1] = halves[i][1];
                in->o[4] = s[i];
                in->vec = 2;
        }
        /* the "true" value of one result (a half's worth, or the whole scalar destination) */
        unsigned rt = x2 ? T_U16 : dec_uint_of_width(dw);
        uint64_t one = dt == T_F16 || dt == T_F16X2     ? 0x3c00u
                       : dt == T_BF16 || dt == T_BF16X2 ? 0x3f80u
                       : dt == T_F32                    ? 0x3f800000u
                                                        : (x2 ? 0xffffu : ~0ull);
        for (unsigned h = 0; h < (x2 ? 2u : 1u); h++) {
                uint32_t w0 = fn_reg_alloc(f->fn, T_F32), w1 = fn_reg_alloc(f->fn, T_F32);
                uint32_t p = fn_reg_alloc(f->fn, T_PRED);
                res[h] = fn_reg_alloc(f->fn, rt);
                if (w0 == OPND_NONE || w1 == OPND_NONE || p == OPND_NONE || res[h] == OPND_NONE)
                        return -ENOMEM;
                TRY(dec_emit_cvt(f, w0, T_F32, halves[0][h], ht, 0));
                TRY(dec_emit_cvt(f, w1, T_F32, halves[1][h], ht, 0));
                struct ptx_insn *in = dec_emit(f, OP_SETP, T_F32);
                if (!in)
                        return -ENOMEM;
                in->sub = (uint8_t)cmp;
                in->o[0] = p;
                in->o[2] = w0;
                in->o[3] = w1;
                uint32_t t1 = fn_const(f->fn, rt, one), t0 = fn_const(f->fn, rt, 0);
                in = dec_emit(f, OP_SELP, (int)rt);
                if (!in || t1 == OPND_NONE || t0 == OPND_NONE)
                        return -ENOMEM;
                in->o[0] = res[h];
                in->o[1] = t1;
                in->o[2] = t0;
                in->o[3] = p;
        }
        TRY(dec_dst(f, &ops[0], dec_uint_of_width(dw), &d, &fx));
        struct ptx_insn *in = dec_emit(f, x2 ? OP_PACK : OP_MOV, (int)(x2 ? T_U16 : rt));
        if (!in)
                return -ENOMEM;
        in->o[0] = d;
        in->o[1] = res[0];
        if (x2) {
                in->o[2] = res[1];
                in->vec = 2;
        }
        return dec_dst_finish(f, &fx);
}

int dec_set(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
            unsigned nops)
{
        uint32_t d = OPND_NONE, a = OPND_NONE, b = OPND_NONE;
        struct dstfix fx;
        if (m->ntypes != 2 || m->cmp < 0 || m->nother)
                return dec_unsupported(f, oc);
        unsigned dt = (unsigned)m->types[0], st = (unsigned)m->types[1];
        if (dec_is_f16ish(st) && !(m->cmp >= CMP_LO && m->cmp <= CMP_HS))
                return dec_set_half(f, oc, ops, nops, m->cmp, dt, st);
        if ((dt != T_U32 && dt != T_S32 && dt != T_F32) || dec_is_f16ish(st) || st == T_PRED)
                return dec_unsupported(f, oc);
        if (st >= T_B8 && st <= T_B64)
                st = dec_uint_of_width(type_size(st));
        TRY(dec_need_ops(f, oc, nops, 3));
        TRY(dec_src(f, &ops[1], st, &a));
        TRY(dec_src(f, &ops[2], st, &b));
        TRY(dec_dst(f, &ops[0], dt, &d, &fx));
        struct ptx_insn *in = dec_emit(f, OP_SET, (int)st);
        if (!in)
                return -ENOMEM;
        in->t2 = (uint8_t)dt;
        in->sub = (uint8_t)m->cmp;
        in->o[0] = d;
        in->o[1] = a;
        in->o[2] = b;
        return dec_dst_finish(f, &fx);
}

int dec_selp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops)
{
        unsigned t = T_NONE;
        uint32_t d = OPND_NONE, a = OPND_NONE, b = OPND_NONE, c = OPND_NONE;
        struct dstfix fx;
        if (strcmp(oc->base, "slct") == 0) {
                if (m->ntypes != 2 || (m->types[1] != T_S32 && m->types[1] != T_F32))
                        return dec_unsupported(f, oc);
                t = (unsigned)m->types[0];
                if (type_size(t) < 2 || t == T_PRED || dec_is_f16ish(t))
                        return dec_unsupported(f, oc);
                TRY(dec_check_rest(f, oc, m));
                TRY(dec_need_ops(f, oc, nops, 4));
                TRY(dec_src(f, &ops[1], t, &a));
                TRY(dec_src(f, &ops[2], t, &b));
                TRY(dec_src(f, &ops[3], (unsigned)m->types[1], &c));
                TRY(dec_dst(f, &ops[0], t, &d, &fx));
                struct ptx_insn *in = dec_emit(f, OP_SLCT, (int)dec_uint_of_width(type_size(t)));
                if (!in)
                        return -ENOMEM;
                in->t2 = (uint8_t)m->types[1];
                in->o[0] = d;
                in->o[1] = a;
                in->o[2] = b;
                in->o[3] = c;
                if (m->ftz)
                        in->flags |= F_FTZ;
                return dec_dst_finish(f, &fx);
        }
        TRY(dec_one_type(f, oc, m, &t));
        TRY(dec_check_rest(f, oc, m));
        if (type_size(t) < 2 || t == T_PRED || t == T_B128)
                return dec_unsupported(f, oc);
        TRY(dec_need_ops(f, oc, nops, 4));
        unsigned ut = dec_uint_of_width(type_size(t));
        TRY(dec_src(f, &ops[1], t, &a));
        TRY(dec_src(f, &ops[2], t, &b));
        TRY(dec_src(f, &ops[3], T_PRED, &c));
        TRY(dec_dst(f, &ops[0], t, &d, &fx));
        struct ptx_insn *in = dec_emit(f, OP_SELP, (int)ut);
        if (!in)
                return -ENOMEM;
        in->o[0] = d;
        in->o[1] = a;
        in->o[2] = b;
        in->o[3] = c;
        in->vec = ops[3].neg ? 1 : 0;
        return dec_dst_finish(f, &fx);
}

int dec_mov(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
            unsigned nops)
{
        unsigned t = T_NONE;
        TRY(dec_one_type(f, oc, m, &t));
        TRY(dec_check_rest(f, oc, m));
        TRY(dec_need_ops(f, oc, nops, 2));
        if (t == T_B128)
                return dec_unsupported(f, oc);
        if (t == T_PRED) {
                struct ptx_insn *in;
                TRY(dec_simple(f, oc, ops, nops, OP_PMOV, T_PRED, 1, &in));
                in->sub = ops[1].neg ? 1 : 0;
                return 0;
        }
        unsigned w = type_size(t);
        unsigned ut = dec_uint_of_width(w);
        if (ops[1].kind == OK_VEC || ops[0].kind == OK_VEC) {
                /* pack {a, b} into d, or unpack d into {a, b} */
                bool pack = ops[1].kind == OK_VEC;
                const struct opnd *v = pack ? &ops[1] : &ops[0];
                if (v->nvec < 2 || w % v->nvec || (pack && ops[0].kind != OK_REG) ||
                    (!pack && ops[1].kind != OK_REG))
                        return dec_unsupported(f, oc);
                unsigned et = dec_uint_of_width(w / v->nvec);
                if (et == T_NONE || et == T_U8)
                        return dec_unsupported(f, oc);
                struct ptx_insn *in;
                uint32_t el[4] = {OPND_NONE, OPND_NONE, OPND_NONE, OPND_NONE};
                if (v->nvec > 4)
                        return dec_unsupported(f, oc);
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
                        TRY(dec_dst(f, &ops[0], ut, &d, &fx));
                        in = dec_emit(f, OP_PACK, (int)et);
                        if (!in)
                                return -ENOMEM;
                        in->o[0] = d;
                        for (unsigned i = 0; i < v->nvec; i++)
                                in->o[1 + i] = el[i];
                        in->vec = v->nvec;
                        return dec_dst_finish(f, &fx);
                }
                uint32_t a = OPND_NONE;
                TRY(dec_src(f, &ops[1], ut, &a));
                in = dec_emit(f, OP_UNPACK, (int)et);
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
                TRY(dec_dst(f, &ops[0], ut, &d, &fx));
                struct ptx_insn *in = dec_emit(f, OP_SREG, (int)ut);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->imm = ops[1].reg;
                return dec_dst_finish(f, &fx);
        }
        struct ptx_insn *in;
        return dec_simple(f, oc, ops, nops, OP_MOV, ut, 1, &in);
}

int dec_cvt(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
            unsigned nops)
{
        uint32_t d = OPND_NONE, a = OPND_NONE;
        struct dstfix fx;
        if (m->ntypes != 2 || m->nother)
                return dec_unsupported(f, oc);
        unsigned dt = (unsigned)m->types[0], st = (unsigned)m->types[1];
        if ((dt == T_F16X2 || dt == T_BF16X2) && st == T_F32 && nops == 3) {
                /* cvt.rn.f16x2.f32 d, a, b: a to the upper half, b to the lower */
                unsigned ht = dt == T_F16X2 ? T_F16 : T_BF16;
                uint32_t sa, sb, lo = fn_reg_alloc(f->fn, T_U16), hi = fn_reg_alloc(f->fn, T_U16);
                if (lo == OPND_NONE || hi == OPND_NONE)
                        return -ENOMEM;
                TRY(dec_src(f, &ops[1], T_F32, &sa));
                TRY(dec_src(f, &ops[2], T_F32, &sb));
                int rnd = m->rnd == RND_RZ ? RND_RZ : RND_RN;
                TRY(dec_emit_cvt(f, hi, ht, sa, T_F32, rnd));
                TRY(dec_emit_cvt(f, lo, ht, sb, T_F32, rnd));
                TRY(dec_dst(f, &ops[0], T_U32, &d, &fx));
                struct ptx_insn *in = dec_emit(f, OP_PACK, T_U16);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = lo;
                in->o[2] = hi;
                in->vec = 2;
                return dec_dst_finish(f, &fx);
        }
        if (dt == T_PRED || st == T_PRED || dt == T_F16X2 || dt == T_BF16X2 || st == T_F16X2 ||
            st == T_BF16X2 || dt == T_B128 || st == T_B128)
                return dec_unsupported(f, oc);
        TRY(dec_need_ops(f, oc, nops, 2));
        /* the register operands may be wider than the types (cvt.u8.u32 into a .b16/.b32) */
        unsigned dreg = ops[0].kind == OK_REG ? ops[0].type : dt;
        unsigned sreg = ops[1].kind == OK_REG ? ops[1].type : st;
        if (ops[1].kind == OK_REG && type_size(sreg) > type_size(st) && !type_is_float(st)) {
                a = ops[1].reg;
                st = type_is_signed(st) ? st : dec_uint_of_width(type_size(st));
        } else {
                TRY(dec_src(f, &ops[1], st, &a));
                sreg = st;
        }
        TRY(dec_dst(f, &ops[0], dt, &d, &fx));
        (void)dreg;
        struct ptx_insn *in = dec_emit(f, OP_CVT, (int)dt);
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
        return dec_dst_finish(f, &fx);
}

int dec_testp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
              unsigned nops)
{
        static const char *const modes[] = {".finite",     ".infinite", ".number",
                                            ".notanumber", ".normal",   ".subnormal"};
        int mode = -1;
        unsigned t = T_NONE;
        uint32_t p = OPND_NONE, a = OPND_NONE;
        struct dstfix fx;
        for (int i = 0; i < 6 && mode < 0; i++) {
                if (dec_take(m, modes[i]))
                        mode = i;
        }
        TRY(dec_one_type(f, oc, m, &t));
        TRY(dec_check_rest(f, oc, m));
        TRY(dec_need_ops(f, oc, nops, 2));
        if (mode < 0 || (t != T_F32 && t != T_F64))
                return dec_unsupported(f, oc);
        TRY(dec_src(f, &ops[1], t, &a));
        TRY(dec_dst(f, &ops[0], T_PRED, &p, &fx));
        struct ptx_insn *in = dec_emit(f, OP_TESTP, (int)t);
        if (!in)
                return -ENOMEM;
        in->sub = (uint8_t)mode;
        in->o[0] = p;
        in->o[1] = a;
        return 0;
}
