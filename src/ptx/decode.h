/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The decoder's private interface: classified modifiers, the operand-lowering helpers of
 * decode.c, and the instruction families' decoders (decode_alu.c: arithmetic, logic, conversions;
 * decode_mem.c: memory, atomics, barriers, warp operations, control), which decode_insn calls.
 */
#ifndef VGPU_PTX_DECODE_H
#define VGPU_PTX_DECODE_H

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

/* Destination of type t. A register wider than t is written through a temporary and extended
 * afterwards (the caller calls dst_finish). */
struct dstfix {
        uint32_t tmp, reg;
        unsigned t, regt;
        bool active;
};

#define TRY(x)                                                                                     \
        do {                                                                                       \
                int r_ = (x);                                                                      \
                if (r_)                                                                            \
                        return r_;                                                                 \
        } while (0)

/* Modifier helpers: take an expected modifier; fail on any left; the "unsupported" error. */
bool dec_take(struct mods *m, const char *w);
int dec_check_rest(struct fctx *f, const struct opcode *oc, struct mods *m);
int dec_unsupported(struct fctx *f, const struct opcode *oc);

/*
 * Operand lowering (decode.c). dec_src gives an operand of type t (lowering width mismatches,
 * immediates, special registers and symbols), dec_dst a destination (through a temporary when the
 * register is wider; dec_dst_finish then extends into it), dec_simple decodes d = op(sources of
 * type t). All return 0, a PTX_E* code with a message, or -ENOMEM.
 */
struct ptx_insn *dec_emit(struct fctx *f, int op, int t);
/* dec_find_var: the variable called name in f's scope, or NULL, into *ret; naming a static
 * .shared one records that the function uses it (fctx_use_var). */
int dec_find_var(struct fctx *f, const char *name, struct ptx_var **ret);
unsigned dec_uint_of_width(unsigned w);
int dec_sym_address(struct fctx *f, const char *name, int64_t disp, unsigned type, uint32_t *ret);
int dec_src(struct fctx *f, const struct opnd *o, unsigned t, uint32_t *ret);
int dec_dst(struct fctx *f, const struct opnd *o, unsigned t, uint32_t *ret, struct dstfix *fx);
int dec_dst_finish(struct fctx *f, const struct dstfix *fx);
int dec_need_ops(struct fctx *f, const struct opcode *oc, unsigned nops, unsigned want);
int dec_simple(struct fctx *f, const struct opcode *oc, struct opnd *ops, unsigned nops, int op,
               unsigned t, unsigned nsrc, struct ptx_insn **ret_in);
int dec_one_type(struct fctx *f, const struct opcode *oc, const struct mods *m, unsigned *t);
int dec_is_f16ish(unsigned t);
int dec_emit_cvt(struct fctx *f, uint32_t d, unsigned dt, uint32_t a, unsigned st, int rnd);

/* The instruction families (decode_alu.c, decode_mem.c): same returns. */
int dec_half(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops, int op, unsigned nsrc, unsigned t);
int dec_arith(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
              unsigned nops);
int dec_logic(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
              unsigned nops);
int dec_shift(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
              unsigned nops);
int dec_bits(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops);
int dec_intmisc(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                unsigned nops);
int dec_fmath(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
              unsigned nops);
int dec_setp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops);
int dec_set(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
            unsigned nops);
int dec_selp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops);
int dec_mov(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
            unsigned nops);
int dec_cvt(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
            unsigned nops);
int dec_testp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
              unsigned nops);
int dec_ldst(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops);
int dec_atom(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops);
int dec_cvta(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops);
int dec_isspacep(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                 unsigned nops);
int dec_bar(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
            unsigned nops);
int dec_warp(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
             unsigned nops);
int dec_control(struct fctx *f, const struct opcode *oc, struct mods *m, struct opnd *ops,
                unsigned nops);

#endif
