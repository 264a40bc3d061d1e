// SPDX-License-Identifier: Apache-2.0
// Decoders of memory, synchronisation and control: loads and stores in every state space
// (parameters included), atomics, cvta and isspacep, barriers, warp operations, branches.
#include <errno.h>
#include <string.h>

#include "ptx/decode.h"

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
        struct ptx_var *v;
        TRY(dec_find_var(f, o->sym, &v));
        if (v && v->space == SP_SHARED && !v->is_extern && space == SP_SHARED) {
                tmpl->o[4] = OPND_NONE;
                tmpl->imm = (int64_t)v->offset + o->ival;
                return 0;
        }
        uint32_t r = OPND_NONE;
        TRY(dec_sym_address(f, o->sym, 0, T_U64, &r));
        tmpl->o[4] = r;
        tmpl->sub2 = 8;
        return 0;
}

int dec_ldst(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops)
{
        bool ld = oc->base[0] == 'l';
        unsigned t = T_NONE;
        struct ptx_insn tmpl;

        TRY(dec_one_type(f, oc, m, &t));
        TRY(dec_check_rest(f, oc, m));
        TRY(dec_need_ops(f, oc, nops, 2));
        if (t == T_F16X2 || t == T_BF16X2)
                t = T_B32; /* packed halves move as 32-bit values */
        if (t == T_PRED || t == T_B128)
                return dec_unsupported(f, oc);
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
                        return dec_unsupported(f, oc);
                if (addr->ival < 0 || (uint64_t)addr->ival + type_size(t) * vec > s->size)
                        return fctx_error(f, PTX_EPARSE, "access outside parameter '%s'",
                                          addr->sym);
                tmpl.op = s->kind == SYM_KPARAM ? OP_LD_KPARAM : ld ? OP_LD_FPARAM : OP_ST_FPARAM;
                tmpl.imm = (int64_t)s->off + addr->ival;
        } else if (space == SP_PARAM) {
                if (!addr->addr_reg || !f->fn->is_entry || !ld)
                        return dec_unsupported(f, oc);
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
                        regs[i] = fn_reg_alloc(f->fn, dec_uint_of_width(w));
                        if (regs[i] == OPND_NONE)
                                return -ENOMEM;
                } else if (!ld && (e->kind == OK_INT || e->kind == OK_F32 || e->kind == OK_F64)) {
                        w = type_size(t) < 2 ? 2 : type_size(t);
                        unsigned ct = type_is_float(t) ? t : dec_uint_of_width(w);
                        TRY(dec_src(f, e, ct, &regs[i]));
                } else {
                        return fctx_error(f, PTX_EPARSE, "bad %s operand", ld ? "load" : "store");
                }
                if (regw && w != regw)
                        return dec_unsupported(f, oc);
                regw = w;
        }
        struct ptx_insn *in = dec_emit(f, tmpl.op, (int)t);
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
                if (dec_take(m, names[i]))
                        return i;
        }
        return -1;
}

int dec_atom(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops)
{
        bool red = oc->base[0] == 'r';
        unsigned t = T_NONE;
        int aop = atom_op(m);
        TRY(dec_one_type(f, oc, m, &t));
        TRY(dec_check_rest(f, oc, m));
        if (aop < 0 || m->vec || (type_size(t) != 4 && type_size(t) != 8) || t == T_PRED)
                return dec_unsupported(f, oc);
        if (type_is_float(t) && aop != ATOM_ADD && aop != ATOM_EXCH && aop != ATOM_MIN &&
            aop != ATOM_MAX)
                return dec_unsupported(f, oc);
        if ((aop == ATOM_INC || aop == ATOM_DEC) && t != T_U32)
                return dec_unsupported(f, oc);
        unsigned nsrc = aop == ATOM_CAS ? 2 : 1;
        TRY(dec_need_ops(f, oc, nops, (red ? 1 : 2) + nsrc));
        int space = m->space < 0 ? SP_GENERIC : m->space;
        if (space != SP_GENERIC && space != SP_GLOBAL && space != SP_SHARED)
                return dec_unsupported(f, oc);
        struct ptx_insn tmpl;
        memset(&tmpl, 0, sizeof(tmpl));
        for (int i = 0; i < 5; i++)
                tmpl.o[i] = OPND_NONE;
        unsigned base = red ? 0 : 1;
        TRY(mem_address(f, &tmpl, &ops[base], space));
        unsigned vt = (t >= T_B8 && t <= T_B64) ? dec_uint_of_width(type_size(t)) : t;
        TRY(dec_src(f, &ops[base + 1], vt, &tmpl.o[1]));
        if (nsrc == 2)
                TRY(dec_src(f, &ops[base + 2], vt, &tmpl.o[2]));
        struct dstfix fx = {0};
        if (!red)
                TRY(dec_dst(f, &ops[0], vt, &tmpl.o[0], &fx));
        struct ptx_insn *in = dec_emit(f, OP_ATOM, (int)vt);
        if (!in)
                return -ENOMEM;
        uint32_t line = in->line;
        *in = tmpl;
        in->op = OP_ATOM;
        in->t = (uint8_t)vt;
        in->t2 = (uint8_t)space;
        in->sub = (uint8_t)aop;
        in->line = line;
        return dec_dst_finish(f, &fx);
}

int dec_cvta(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops)
{
        unsigned t = T_NONE;
        TRY(dec_one_type(f, oc, m, &t));
        TRY(dec_check_rest(f, oc, m));
        if (m->space < 0 || (type_size(t) != 4 && type_size(t) != 8))
                return dec_unsupported(f, oc);
        struct ptx_insn *in;
        TRY(dec_simple(f, oc, ops, nops, m->to ? OP_CVTA_TO : OP_CVTA_FROM,
                       dec_uint_of_width(type_size(t)), 1, &in));
        in->t2 = (uint8_t)(m->space == SP_PARAM ? SP_KPARAM : m->space);
        return 0;
}

int dec_isspacep(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                 unsigned nops)
{
        uint32_t p = OPND_NONE, a = OPND_NONE;
        struct dstfix fx;
        TRY(dec_check_rest(f, oc, m));
        TRY(dec_need_ops(f, oc, nops, 2));
        if (m->space < 0)
                return dec_unsupported(f, oc);
        TRY(dec_src(f, &ops[1], T_U64, &a));
        TRY(dec_dst(f, &ops[0], T_PRED, &p, &fx));
        struct ptx_insn *in = dec_emit(f, OP_ISSPACEP, T_U64);
        if (!in)
                return -ENOMEM;
        in->t2 = (uint8_t)(m->space == SP_PARAM ? SP_KPARAM : m->space);
        in->o[0] = p;
        in->o[1] = a;
        return 0;
}

int dec_bar(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
            unsigned nops)
{
        uint32_t id = OPND_NONE, cnt = OPND_NONE, d = OPND_NONE, pr = OPND_NONE;
        struct dstfix fx = {0};
        int red = 0;
        bool arrive = dec_take(m, ".arrive");
        if (strcmp(oc->base, "bar") == 0 && dec_take(m, ".warp")) {
                TRY(dec_check_rest(f, oc, m));
                struct ptx_insn *in = dec_emit(f, OP_WARPSYNC, T_U32);
                return in ? 0 : -ENOMEM;
        }
        if (dec_take(m, ".red")) {
                if (dec_take(m, ".popc"))
                        red = 1;
                else if (dec_take(m, ".and"))
                        red = 2;
                else if (dec_take(m, ".or"))
                        red = 3;
                else
                        return dec_unsupported(f, oc);
        }
        TRY(dec_check_rest(f, oc, m));
        unsigned first = red ? 1 : 0;
        if (nops < first + 1 || nops > first + 3)
                return fctx_error(f, PTX_EPARSE, "bar: wrong operand count");
        TRY(dec_src(f, &ops[first], T_U32, &id));
        if (red) {
                if (nops == first + 3)
                        TRY(dec_src(f, &ops[first + 1], T_U32, &cnt));
                TRY(dec_src(f, &ops[nops - 1], T_PRED, &pr));
                TRY(dec_dst(f, &ops[0], red == 1 ? T_U32 : T_PRED, &d, &fx));
        } else if (nops == 2) {
                TRY(dec_src(f, &ops[1], T_U32, &cnt));
        }
        struct ptx_insn *in = dec_emit(f, OP_BAR, T_U32);
        if (!in)
                return -ENOMEM;
        in->sub = (uint8_t)red;
        in->sub2 = arrive ? 1 : 0;
        in->vec = red && ops[nops - 1].neg ? 1 : 0;
        in->o[0] = d;
        in->o[1] = id;
        in->o[2] = cnt;
        in->o[3] = pr;
        return dec_dst_finish(f, &fx);
}

int dec_warp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops)
{
        const char *b = oc->base;
        struct ptx_insn *in;
        struct dstfix fx = {0};
        if (strcmp(b, "shfl") == 0) {
                int mode = dec_take(m, ".up")     ? 0
                           : dec_take(m, ".down") ? 1
                           : dec_take(m, ".bfly") ? 2
                           : dec_take(m, ".idx")  ? 3
                                                  : -1;
                unsigned t = T_NONE;
                TRY(dec_one_type(f, oc, m, &t));
                TRY(dec_check_rest(f, oc, m));
                if (mode < 0 || type_size(t) != 4 || (nops != 5 && nops != 4))
                        return dec_unsupported(f, oc);
                uint32_t d = OPND_NONE, a = OPND_NONE, bb = OPND_NONE, c = OPND_NONE;
                TRY(dec_src(f, &ops[1], T_U32, &a));
                TRY(dec_src(f, &ops[2], T_U32, &bb));
                TRY(dec_src(f, &ops[3], T_U32, &c));
                TRY(dec_dst(f, &ops[0], T_U32, &d, &fx));
                in = dec_emit(f, OP_SHFL, T_U32);
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
                int mode = dec_take(m, ".all")      ? 0
                           : dec_take(m, ".any")    ? 1
                           : uni                    ? 2
                           : dec_take(m, ".ballot") ? 3
                                                    : -1;
                unsigned t = T_NONE;
                TRY(dec_one_type(f, oc, m, &t));
                TRY(dec_check_rest(f, oc, m));
                if (mode < 0 || (mode == 3 ? type_size(t) != 4 : t != T_PRED) ||
                    (nops != 2 && nops != 3))
                        return dec_unsupported(f, oc);
                uint32_t d = OPND_NONE, p = OPND_NONE;
                TRY(dec_src(f, &ops[1], T_PRED, &p));
                TRY(dec_dst(f, &ops[0], mode == 3 ? T_U32 : T_PRED, &d, &fx));
                in = dec_emit(f, OP_VOTE, T_U32);
                if (!in)
                        return -ENOMEM;
                in->sub = (uint8_t)mode;
                in->vec = ops[1].neg ? 1 : 0;
                in->o[0] = d;
                in->o[1] = p;
                return dec_dst_finish(f, &fx);
        }
        if (strcmp(b, "match") == 0) {
                int mode = dec_take(m, ".any") ? 0 : dec_take(m, ".all") ? 1 : -1;
                unsigned t = T_NONE;
                TRY(dec_one_type(f, oc, m, &t));
                TRY(dec_check_rest(f, oc, m));
                if (mode < 0 || (type_size(t) != 4 && type_size(t) != 8) ||
                    (nops != 2 && nops != 3))
                        return dec_unsupported(f, oc);
                uint32_t d = OPND_NONE, a = OPND_NONE;
                TRY(dec_src(f, &ops[1], dec_uint_of_width(type_size(t)), &a));
                TRY(dec_dst(f, &ops[0], T_U32, &d, &fx));
                in = dec_emit(f, OP_MATCH, (int)dec_uint_of_width(type_size(t)));
                if (!in)
                        return -ENOMEM;
                in->sub = (uint8_t)mode;
                in->o[0] = d;
                in->o[1] = ops[0].reg2;
                in->o[2] = a;
                return dec_dst_finish(f, &fx);
        }
        if (strcmp(b, "redux") == 0) {
                static const char *const names[] = {".add", ".min", ".max", ".and", ".or", ".xor"};
                static const int aops[] = {ATOM_ADD, ATOM_MIN, ATOM_MAX,
                                           ATOM_AND, ATOM_OR,  ATOM_XOR};
                int aop = -1;
                unsigned t = T_NONE;
                for (int i = 0; i < 6 && aop < 0; i++) {
                        if (dec_take(m, names[i]))
                                aop = aops[i];
                }
                TRY(dec_one_type(f, oc, m, &t));
                TRY(dec_check_rest(f, oc, m));
                if (aop < 0 || type_size(t) != 4 || type_is_float(t) || (nops != 2 && nops != 3))
                        return dec_unsupported(f, oc);
                unsigned vt = t >= T_B8 && t <= T_B64 ? T_U32 : t;
                uint32_t d = OPND_NONE, a = OPND_NONE;
                TRY(dec_src(f, &ops[1], vt, &a));
                TRY(dec_dst(f, &ops[0], vt, &d, &fx));
                in = dec_emit(f, OP_REDUX, (int)vt);
                if (!in)
                        return -ENOMEM;
                in->sub = (uint8_t)aop;
                in->o[0] = d;
                in->o[1] = a;
                return dec_dst_finish(f, &fx);
        }
        if (strcmp(b, "elect") == 0) {
                uint32_t d = OPND_NONE;
                TRY(dec_check_rest(f, oc, m));
                if (nops != 2 && nops != 1)
                        return dec_unsupported(f, oc);
                if (ops[0].kind == OK_SINK) {
                        d = fn_reg_alloc(f->fn, T_U32);
                        if (d == OPND_NONE)
                                return -ENOMEM;
                } else {
                        TRY(dec_dst(f, &ops[0], T_U32, &d, &fx));
                }
                if (ops[0].reg2 != OPND_NONE && ops[0].type2 != T_PRED)
                        return dec_unsupported(f, oc);
                in = dec_emit(f, OP_ELECT, T_U32);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                in->o[1] = ops[0].reg2;
                return ops[0].kind == OK_SINK ? 0 : dec_dst_finish(f, &fx);
        }
        if (strcmp(b, "activemask") == 0) {
                uint32_t d = OPND_NONE;
                TRY(dec_check_rest(f, oc, m));
                TRY(dec_need_ops(f, oc, nops, 1));
                TRY(dec_dst(f, &ops[0], T_U32, &d, &fx));
                in = dec_emit(f, OP_ACTIVEMASK, T_U32);
                if (!in)
                        return -ENOMEM;
                in->o[0] = d;
                return dec_dst_finish(f, &fx);
        }
        return dec_unsupported(f, oc);
}

int dec_control(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                unsigned nops)
{
        const char *b = oc->base;
        struct ptx_insn *in;
        TRY(dec_check_rest(f, oc, m));
        if (strcmp(b, "bra") == 0) {
                if (nops != 1 || ops[0].kind != OK_SYM)
                        return fctx_error(f, PTX_EPARSE, "bra needs a label");
                in = dec_emit(f, OP_BRA, T_NONE);
        } else if (strcmp(b, "ret") == 0) {
                in = dec_emit(f, OP_RET, T_NONE);
        } else if (strcmp(b, "exit") == 0) {
                in = dec_emit(f, OP_EXIT, T_NONE);
        } else if (strcmp(b, "trap") == 0) {
                in = dec_emit(f, OP_TRAP, T_NONE);
        } else {
                /* membar, fence, brkpt, nanosleep, pmevent, prefetch: no effect on the sim */
                in = dec_emit(f, OP_NOP, T_NONE);
        }
        return in ? 0 : -ENOMEM;
}
