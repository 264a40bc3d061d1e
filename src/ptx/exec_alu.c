// SPDX-License-Identifier: Apache-2.0
// Integer lanes of the executor: arithmetic (with .hi, .wide, carries, saturation), logic,
// shifts, bit-field and byte operations, and the warp-wide shuffles, votes and matches. Each
// works on all 32 lanes of a register at once and commits the active ones.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ptx/lanes.h"

#define SHIFTOP(T, EXPR)                                                                           \
        {                                                                                          \
                const T *A_ = (const T *)PTR(in->o[1]);                                            \
                const uint32_t *B_ = (const uint32_t *)PTR(in->o[2]);                              \
                T R_[WARP] __attribute__((aligned(32)));                                           \
                for (int i = 0; i < WARP; i++) {                                                   \
                        T a = A_[i];                                                               \
                        uint32_t b = B_[i];                                                        \
                        R_[i] = (T)(EXPR);                                                         \
                }                                                                                  \
                COMMIT(T);                                                                         \
        }                                                                                          \
        break

#define UNX(TD, TS, EXPR)                                                                          \
        {                                                                                          \
                const TS *A_ = (const TS *)PTR(in->o[1]);                                          \
                TD R_[WARP] __attribute__((aligned(32)));                                          \
                for (int i = 0; i < WARP; i++) {                                                   \
                        TS a = A_[i];                                                              \
                        R_[i] = (TD)(EXPR);                                                        \
                }                                                                                  \
                COMMIT(TD);                                                                        \
        }                                                                                          \
        break

#define WIDE(TD, TS, EXPR)                                                                         \
        {                                                                                          \
                const TS *A_ = (const TS *)PTR(in->o[1]), *B_ = (const TS *)PTR(in->o[2]);         \
                const TD *C_ = in->o[3] != OPND_NONE ? (const TD *)PTR(in->o[3]) : NULL;           \
                TD R_[WARP] __attribute__((aligned(32)));                                          \
                for (int i = 0; i < WARP; i++) {                                                   \
                        TD a = A_[i], b = B_[i], cc = C_ ? C_[i] : 0;                              \
                        R_[i] = (TD)(EXPR);                                                        \
                }                                                                                  \
                COMMIT(TD);                                                                        \
        }                                                                                          \
        break

static uint64_t bfe_lane(uint64_t a, uint32_t pos, uint32_t len, unsigned bits, bool sgn)
{
        pos &= 0xff;
        len &= 0xff;
        unsigned msb = bits - 1;
        uint64_t sbit = 0;
        if (sgn) {
                unsigned top = len == 0 ? 0 : (pos + len - 1 > msb ? msb : pos + len - 1);
                sbit = len == 0 ? 0 : (a >> top) & 1;
        }
        uint64_t d = 0;
        for (unsigned i = 0; i < bits; i++) {
                uint64_t bit = (i < len && pos + i <= msb) ? (a >> (pos + i)) & 1 : sbit;
                d |= bit << i;
        }
        return d;
}

static uint64_t bfi_lane(uint64_t f, uint64_t b, uint32_t pos, uint32_t len, unsigned bits)
{
        pos &= 0xff;
        len &= 0xff;
        uint64_t d = b;
        for (unsigned i = 0; i < len && pos + i < bits; i++) {
                d &= ~(1ull << (pos + i));
                d |= ((f >> i) & 1) << (pos + i);
        }
        return bits == 32 ? (uint32_t)d : d;
}

static uint32_t prmt_lane(uint32_t a, uint32_t b, uint32_t c)
{
        uint64_t v = (uint64_t)b << 32 | a;
        uint32_t d = 0;
        for (int k = 0; k < 4; k++) {
                uint32_t sel = (c >> (4 * k)) & 0xf;
                uint32_t byte = (uint32_t)(v >> (8 * (sel & 7))) & 0xff;
                if (sel & 8)
                        byte = (byte & 0x80) ? 0xff : 0;
                d |= byte << (8 * k);
        }
        return d;
}

static uint64_t brev64(uint64_t x)
{
        x = ((x >> 1) & 0x5555555555555555ull) | ((x & 0x5555555555555555ull) << 1);
        x = ((x >> 2) & 0x3333333333333333ull) | ((x & 0x3333333333333333ull) << 2);
        x = ((x >> 4) & 0x0f0f0f0f0f0f0f0full) | ((x & 0x0f0f0f0f0f0f0f0full) << 4);
        return __builtin_bswap64(x);
}

/* Integer operations other than loads, stores and control. */
HOT void exec_int(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in, uint8_t *regs,
                  const uint8_t *consts, uint32_t m)
{
        (void)c;
        switch (in->op) {
        case OP_MOV:
                switch (in->t) {
                case T_U16:
                        UN(uint16_t, a);
                case T_U32:
                        UN(uint32_t, a);
                default:
                        UN(uint64_t, a);
                }
                break;
        case OP_ADD:
                switch (in->t) {
                        UCASES(BIN, a + b);
                }
                break;
        case OP_SUB:
                switch (in->t) {
                        UCASES(BIN, a - b);
                }
                break;
        case OP_MUL:
                switch (in->t) {
                case T_U16:
                case T_S16:
                case T_B16:
                        BIN(uint16_t, (uint32_t)a * b);
                case T_U32:
                case T_S32:
                case T_B32:
                        BIN(uint32_t, a * b);
                default:
                        BIN(uint64_t, a * b);
                }
                break;
        case OP_MAD:
                switch (in->t) {
                case T_U16:
                case T_S16:
                case T_B16:
                        TRI(uint16_t, (uint32_t)a * b + cc);
                case T_U32:
                case T_S32:
                case T_B32:
                        TRI(uint32_t, a * b + cc);
                default:
                        TRI(uint64_t, a * b + cc);
                }
                break;
        case OP_MULHI:
        case OP_MADHI: {
                bool mad = in->op == OP_MADHI;
                switch (in->t) {
                case T_U16:
                        TRI(uint16_t, (((uint32_t)a * b) >> 16) + (mad ? cc : 0));
                case T_S16:
                        TRI(int16_t, (((int32_t)a * b) >> 16) + (mad ? cc : 0));
                case T_U32:
                        TRI(uint32_t, (((uint64_t)a * b) >> 32) + (mad ? cc : 0));
                case T_S32:
                        TRI(uint32_t,
                            (uint32_t)(((int64_t)(int32_t)a * (int32_t)b) >> 32) + (mad ? cc : 0));
                case T_U64:
                        TRI(uint64_t,
                            (uint64_t)(((unsigned __int128)a * b) >> 64) + (mad ? cc : 0));
                default:
                        TRI(uint64_t,
                            (uint64_t)(((__int128)(int64_t)a * (int64_t)b) >> 64) + (mad ? cc : 0));
                }
                break;
        }
        case OP_MULWIDE:
        case OP_MADWIDE:
                switch (in->t) {
                case T_U16:
                        WIDE(uint32_t, uint16_t, a * b + cc);
                case T_S16:
                        WIDE(int32_t, int16_t, a * b + cc);
                case T_U32:
                        WIDE(uint64_t, uint32_t, a * b + cc);
                default:
                        WIDE(uint64_t, int32_t, (uint64_t)((int64_t)(int32_t)a * (int32_t)b) + cc);
                }
                break;
        case OP_DIV:
                switch (in->t) {
                case T_U16:
                        BIN(uint16_t, b ? a / b : 0xffff);
                case T_U32:
                        BIN(uint32_t, b ? a / b : 0xffffffffu);
                case T_U64:
                        BIN(uint64_t, b ? a / b : UINT64_MAX);
                case T_S16:
                        BIN(int16_t, b == 0 ? -1 : b == -1 ? (int16_t)(0u - (uint16_t)a) : a / b);
                case T_S32:
                        BIN(int32_t, b == 0 ? -1 : b == -1 ? (int32_t)(0u - (uint32_t)a) : a / b);
                default:
                        BIN(int64_t, b == 0 ? -1 : b == -1 ? (int64_t)(0ull - (uint64_t)a) : a / b);
                }
                break;
        case OP_REM:
                switch (in->t) {
                case T_U16:
                        BIN(uint16_t, b ? a % b : a);
                case T_U32:
                        BIN(uint32_t, b ? a % b : a);
                case T_U64:
                        BIN(uint64_t, b ? a % b : a);
                case T_S16:
                        BIN(int16_t, b == 0 ? a : b == -1 ? 0 : a % b);
                case T_S32:
                        BIN(int32_t, b == 0 ? a : b == -1 ? 0 : a % b);
                default:
                        BIN(int64_t, b == 0 ? a : b == -1 ? 0 : a % b);
                }
                break;
        case OP_ABS:
                switch (in->t) {
                case T_S16:
                        UN(int16_t, a < 0 ? (int16_t)(0u - (uint16_t)a) : a);
                case T_S32:
                        UN(int32_t, a < 0 ? (int32_t)(0u - (uint32_t)a) : a);
                default:
                        UN(int64_t, a < 0 ? (int64_t)(0ull - (uint64_t)a) : a);
                }
                break;
        case OP_NEG:
                switch (in->t) {
                case T_S16:
                case T_U16:
                case T_B16:
                        UN(uint16_t, 0u - a);
                case T_S32:
                case T_U32:
                case T_B32:
                        UN(uint32_t, 0u - a);
                default:
                        UN(uint64_t, 0ull - a);
                }
                break;
        case OP_MIN:
                switch (in->t) {
                        SUCASES(BIN, a < b ? a : b);
                }
                break;
        case OP_MAX:
                switch (in->t) {
                        SUCASES(BIN, a > b ? a : b);
                }
                break;
        case OP_AND:
                switch (in->t) {
                        UCASES(BIN, a & b);
                }
                break;
        case OP_OR:
                switch (in->t) {
                        UCASES(BIN, a | b);
                }
                break;
        case OP_XOR:
                switch (in->t) {
                        UCASES(BIN, a ^ b);
                }
                break;
        case OP_NOT:
                switch (in->t) {
                        UCASES(UN, ~a);
                }
                break;
        case OP_CNOT:
                switch (in->t) {
                        UCASES(UN, a == 0);
                }
                break;
        case OP_SHL:
                switch (in->t) {
                case T_U16:
                case T_S16:
                        SHIFTOP(uint16_t, b >= 16 ? 0 : (uint32_t)a << b);
                case T_U32:
                case T_S32:
                        SHIFTOP(uint32_t, b >= 32 ? 0 : a << b);
                default:
                        SHIFTOP(uint64_t, b >= 64 ? 0 : a << b);
                }
                break;
        case OP_SHR:
                switch (in->t) {
                case T_U16:
                        SHIFTOP(uint16_t, b >= 16 ? 0 : a >> b);
                case T_U32:
                        SHIFTOP(uint32_t, b >= 32 ? 0 : a >> b);
                case T_U64:
                        SHIFTOP(uint64_t, b >= 64 ? 0 : a >> b);
                case T_S16:
                        SHIFTOP(int16_t, a >> (b >= 15 ? 15 : b));
                case T_S32:
                        SHIFTOP(int32_t, a >> (b >= 31 ? 31 : b));
                default:
                        SHIFTOP(int64_t, a >> (b >= 63 ? 63 : b));
                }
                break;
        case OP_POPC:
                if (in->t == T_U32) {
                        UNX(uint32_t, uint32_t, __builtin_popcount(a));
                }
                UNX(uint32_t, uint64_t, __builtin_popcountll(a));
        case OP_CLZ:
                if (in->t == T_U32) {
                        UNX(uint32_t, uint32_t, a ? __builtin_clz(a) : 32);
                }
                UNX(uint32_t, uint64_t, a ? __builtin_clzll(a) : 64);
        case OP_BREV:
                if (in->t == T_U32) {
                        UN(uint32_t, brev64(a) >> 32);
                }
                UN(uint64_t, brev64(a));
        case OP_BFE:
                switch (in->t) {
                case T_U32:
                case T_S32:
                        TRI(uint32_t, bfe_lane(a, b, cc, 32, in->t == T_S32));
                default: {
                        const uint64_t *A_ = (const uint64_t *)PTR(in->o[1]);
                        const uint32_t *B_ = (const uint32_t *)PTR(in->o[2]);
                        const uint32_t *C_ = (const uint32_t *)PTR(in->o[3]);
                        uint64_t R_[WARP] __attribute__((aligned(32)));
                        for (int i = 0; i < WARP; i++)
                                R_[i] = bfe_lane(A_[i], B_[i], C_[i], 64, in->t == T_S64);
                        COMMIT(uint64_t);
                        break;
                }
                }
                break;
        case OP_BFI: {
                const uint32_t *P_ = (const uint32_t *)PTR(in->o[3]);
                const uint32_t *L_ = (const uint32_t *)PTR(in->o[4]);
                if (in->t == T_U32) {
                        const uint32_t *A_ = (const uint32_t *)PTR(in->o[1]);
                        const uint32_t *B_ = (const uint32_t *)PTR(in->o[2]);
                        uint32_t R_[WARP] __attribute__((aligned(32)));
                        for (int i = 0; i < WARP; i++)
                                R_[i] = (uint32_t)bfi_lane(A_[i], B_[i], P_[i], L_[i], 32);
                        COMMIT(uint32_t);
                } else {
                        const uint64_t *A_ = (const uint64_t *)PTR(in->o[1]);
                        const uint64_t *B_ = (const uint64_t *)PTR(in->o[2]);
                        uint64_t R_[WARP] __attribute__((aligned(32)));
                        for (int i = 0; i < WARP; i++)
                                R_[i] = bfi_lane(A_[i], B_[i], P_[i], L_[i], 64);
                        COMMIT(uint64_t);
                }
                break;
        }
        case OP_PRMT:
                TRI(uint32_t, prmt_lane(a, b, cc));
        case OP_SHF: {
                bool left = in->sub & 1, wrap = in->sub & 2;
                const uint32_t *A_ = (const uint32_t *)PTR(in->o[1]);
                const uint32_t *B_ = (const uint32_t *)PTR(in->o[2]);
                const uint32_t *C_ = (const uint32_t *)PTR(in->o[3]);
                uint32_t R_[WARP] __attribute__((aligned(32)));
                for (int i = 0; i < WARP; i++) {
                        uint32_t n = wrap ? C_[i] & 31 : (C_[i] > 32 ? 32 : C_[i]);
                        uint64_t v = (uint64_t)B_[i] << 32 | A_[i];
                        R_[i] = left ? (uint32_t)((v << n) >> 32) : (uint32_t)(v >> n);
                }
                COMMIT(uint32_t);
                break;
        }
        case OP_LOP3: {
                uint32_t lut = (uint32_t)in->imm;
                const uint32_t *A_ = (const uint32_t *)PTR(in->o[1]);
                const uint32_t *B_ = (const uint32_t *)PTR(in->o[2]);
                const uint32_t *C_ = (const uint32_t *)PTR(in->o[3]);
                uint32_t R_[WARP] __attribute__((aligned(32)));
                for (int i = 0; i < WARP; i++) {
                        uint32_t a = A_[i], b = B_[i], cc = C_[i], r = 0;
                        for (int k = 0; k < 8; k++) {
                                if (lut >> k & 1)
                                        r |= (k & 4 ? a : ~a) & (k & 2 ? b : ~b) &
                                             (k & 1 ? cc : ~cc);
                        }
                        R_[i] = r;
                }
                COMMIT(uint32_t);
                break;
        }
        case OP_SAD:
                switch (in->t) {
                case T_U16:
                        TRI(uint16_t, cc + (a < b ? b - a : a - b));
                case T_S16:
                        TRI(int16_t, (uint16_t)cc + (uint16_t)(a < b ? (uint16_t)b - (uint16_t)a
                                                                     : (uint16_t)a - (uint16_t)b));
                case T_U32:
                        TRI(uint32_t, cc + (a < b ? b - a : a - b));
                case T_S32:
                        TRI(int32_t, (uint32_t)cc + (a < b ? (uint32_t)b - (uint32_t)a
                                                           : (uint32_t)a - (uint32_t)b));
                case T_U64:
                        TRI(uint64_t, cc + (a < b ? b - a : a - b));
                default:
                        TRI(int64_t, (uint64_t)cc + (a < b ? (uint64_t)b - (uint64_t)a
                                                           : (uint64_t)a - (uint64_t)b));
                }
                break;
        case OP_BFIND: {
                bool shiftamt = in->sub == 1, sgn = type_is_signed(in->t);
                unsigned bits = type_size(in->t) * 8;
                uint32_t R_[WARP] __attribute__((aligned(32)));
                for (int i = 0; i < WARP; i++) {
                        uint64_t a = bits == 32 ? ((const uint32_t *)PTR(in->o[1]))[i]
                                                : ((const uint64_t *)PTR(in->o[1]))[i];
                        if (sgn && (a >> (bits - 1)) & 1)
                                a = ~a & (bits == 32 ? 0xffffffffull : ~0ull);
                        uint32_t pos = a ? 63u - (uint32_t)__builtin_clzll(a) : FULL;
                        R_[i] = pos == FULL ? FULL : shiftamt ? bits - 1 - pos : pos;
                }
                COMMIT(uint32_t);
                break;
        }
        case OP_FNS: {
                const uint32_t *A_ = (const uint32_t *)PTR(in->o[1]);
                const uint32_t *B_ = (const uint32_t *)PTR(in->o[2]);
                const int32_t *C_ = (const int32_t *)PTR(in->o[3]);
                uint32_t R_[WARP] __attribute__((aligned(32)));
                for (int i = 0; i < WARP; i++) {
                        uint32_t mask = A_[i], base = B_[i] & 31, d = FULL;
                        int32_t off = C_[i];
                        if (off == 0) {
                                d = (mask >> base & 1) ? base : FULL;
                        } else {
                                int64_t count = (off < 0 ? -(int64_t)off : off) - 1;
                                int inc = off > 0 ? 1 : -1;
                                for (int pos = (int)base; pos >= 0 && pos < 32; pos += inc) {
                                        if (mask >> pos & 1) {
                                                if (count == 0) {
                                                        d = (uint32_t)pos;
                                                        break;
                                                }
                                                count--;
                                        }
                                }
                        }
                        R_[i] = d;
                }
                COMMIT(uint32_t);
                break;
        }
        case OP_DP4A: {
                bool sa = type_is_signed(in->t), sb = type_is_signed(in->t2);
                const uint32_t *A_ = (const uint32_t *)PTR(in->o[1]);
                const uint32_t *B_ = (const uint32_t *)PTR(in->o[2]);
                const uint32_t *C_ = (const uint32_t *)PTR(in->o[3]);
                uint32_t R_[WARP] __attribute__((aligned(32)));
                for (int i = 0; i < WARP; i++) {
                        uint32_t d = C_[i];
                        for (int k = 0; k < 4; k++) {
                                uint32_t bb = (B_[i] >> (8 * k)) & 0xff;
                                int32_t vb = sb ? (int32_t)(int8_t)bb : (int32_t)bb;
                                if (in->sub && (k < 2) != (in->sub == 1))
                                        continue; /* dp2a uses half of b */
                                int32_t va;
                                if (in->sub) {
                                        uint32_t ah = (A_[i] >> (16 * (k & 1))) & 0xffff;
                                        va = sa ? (int32_t)(int16_t)ah : (int32_t)ah;
                                } else {
                                        uint32_t ab = (A_[i] >> (8 * k)) & 0xff;
                                        va = sa ? (int32_t)(int8_t)ab : (int32_t)ab;
                                }
                                d += (uint32_t)((int64_t)va * vb);
                        }
                        R_[i] = d;
                }
                COMMIT(uint32_t);
                break;
        }
        case OP_MUL24: {
                bool sgn = in->t == T_S32, hi = in->sub == 1;
                const uint32_t *A_ = (const uint32_t *)PTR(in->o[1]);
                const uint32_t *B_ = (const uint32_t *)PTR(in->o[2]);
                const uint32_t *C_ = in->o[3] != OPND_NONE ? (const uint32_t *)PTR(in->o[3]) : NULL;
                uint32_t R_[WARP] __attribute__((aligned(32)));
                for (int i = 0; i < WARP; i++) {
                        int64_t a = sgn ? (int64_t)((int32_t)(A_[i] << 8) >> 8) : A_[i] & 0xffffff;
                        int64_t b = sgn ? (int64_t)((int32_t)(B_[i] << 8) >> 8) : B_[i] & 0xffffff;
                        uint64_t t = (uint64_t)(a * b);
                        R_[i] = (uint32_t)(hi ? t >> 16 : t) + (C_ ? C_[i] : 0);
                }
                COMMIT(uint32_t);
                break;
        }
        case OP_ADDSAT:
        case OP_SUBSAT: {
                bool sub = in->op == OP_SUBSAT;
                BIN(int32_t,
                    (int32_t)((int64_t)a + (sub ? -(int64_t)b : (int64_t)b) > INT32_MAX ? INT32_MAX
                              : (int64_t)a + (sub ? -(int64_t)b : (int64_t)b) < INT32_MIN
                                      ? INT32_MIN
                                      : (int64_t)a + (sub ? -(int64_t)b : (int64_t)b)));
        }
        case OP_ADDC:
        case OP_SUBC: {
                bool sub = in->op == OP_SUBC, cin = in->flags & F_CIN, cout = in->flags & F_CC;
                uint32_t carry = 0;
                if (type_size(in->t) == 4) {
                        const uint32_t *A_ = (const uint32_t *)PTR(in->o[1]);
                        const uint32_t *B_ = (const uint32_t *)PTR(in->o[2]);
                        uint32_t R_[WARP] __attribute__((aligned(32)));
                        for (int i = 0; i < WARP; i++) {
                                uint64_t ci = cin ? (w->carry >> i & 1) : 0;
                                uint64_t r = sub ? (uint64_t)A_[i] - B_[i] - ci
                                                 : (uint64_t)A_[i] + B_[i] + ci;
                                R_[i] = (uint32_t)r;
                                carry |= (uint32_t)((r >> 32) & 1) << i;
                        }
                        COMMIT(uint32_t);
                } else {
                        const uint64_t *A_ = (const uint64_t *)PTR(in->o[1]);
                        const uint64_t *B_ = (const uint64_t *)PTR(in->o[2]);
                        uint64_t R_[WARP] __attribute__((aligned(32)));
                        for (int i = 0; i < WARP; i++) {
                                unsigned __int128 ci = cin ? (w->carry >> i & 1) : 0;
                                unsigned __int128 r = sub ? (unsigned __int128)A_[i] - B_[i] - ci
                                                          : (unsigned __int128)A_[i] + B_[i] + ci;
                                R_[i] = (uint64_t)r;
                                carry |= (uint32_t)((r >> 64) & 1) << i;
                        }
                        COMMIT(uint64_t);
                }
                if (cout)
                        w->carry = (w->carry & ~m) | (carry & m);
                break;
        }
        default:
                break;
        }
}

/* Warp-wide operations: shfl, vote, match, activemask. */
HOT void exec_warpop(const struct ptx_insn *in, uint8_t *regs, const uint8_t *consts, uint32_t m)
{
        switch (in->op) {
        case OP_SHFL: {
                const uint32_t *A = (const uint32_t *)PTR(in->o[2]);
                const uint32_t *B = (const uint32_t *)PTR(in->o[3]);
                const uint32_t *C = (const uint32_t *)PTR(in->o[4]);
                uint32_t R_[WARP] __attribute__((aligned(32))), pbits = 0;
                for (int i = 0; i < WARP; i++) {
                        int b = (int)(B[i] & 31);
                        int seg = (int)((C[i] >> 8) & 31), clamp = (int)(C[i] & 31);
                        int maxl = (i & seg) | (clamp & ~seg), minl = i & seg;
                        int j;
                        bool ok;
                        switch (in->sub) {
                        case 0:
                                j = i - b;
                                ok = j >= maxl;
                                break;
                        case 1:
                                j = i + b;
                                ok = j <= maxl;
                                break;
                        case 2:
                                j = i ^ b;
                                ok = j <= maxl;
                                break;
                        default:
                                j = minl | (b & ~seg);
                                ok = j <= maxl;
                                break;
                        }
                        if (!ok || j < 0 || j > 31)
                                j = i;
                        R_[i] = A[j];
                        pbits |= (uint32_t)ok << i;
                }
                COMMIT(uint32_t);
                if (in->o[1] != OPND_NONE)
                        pwrite(regs, in->o[1], pbits, m);
                break;
        }
        case OP_VOTE: {
                uint32_t p = pread(regs, consts, in->o[1]) ^ (in->vec ? FULL : 0);
                uint32_t pv = p & m;
                if (in->sub == 3) {
                        uint32_t *D = (uint32_t *)(regs + in->o[0]);
                        for (int i = 0; i < WARP; i++)
                                if (m >> i & 1)
                                        D[i] = pv;
                        break;
                }
                bool r = in->sub == 0 ? pv == m : in->sub == 1 ? pv != 0 : (pv == 0 || pv == m);
                pwrite(regs, in->o[0], r ? FULL : 0, m);
                break;
        }
        case OP_MATCH: {
                uint32_t R_[WARP] __attribute__((aligned(32)));
                bool all = true;
                uint64_t first = 0;
                bool have = false;
                for (int i = 0; i < WARP; i++) {
                        uint64_t vi = in->t == T_U32 ? ((const uint32_t *)PTR(in->o[2]))[i]
                                                     : ((const uint64_t *)PTR(in->o[2]))[i];
                        uint32_t same = 0;
                        for (int j = 0; j < WARP; j++) {
                                if (!(m >> j & 1))
                                        continue;
                                uint64_t vj = in->t == T_U32 ? ((const uint32_t *)PTR(in->o[2]))[j]
                                                             : ((const uint64_t *)PTR(in->o[2]))[j];
                                same |= (uint32_t)(vi == vj) << j;
                        }
                        R_[i] = same;
                        if (m >> i & 1) {
                                if (have && vi != first)
                                        all = false;
                                first = vi;
                                have = true;
                        }
                }
                if (in->sub == 1) {
                        for (int i = 0; i < WARP; i++)
                                R_[i] = all ? m : 0;
                        if (in->o[1] != OPND_NONE)
                                pwrite(regs, in->o[1], all ? FULL : 0, m);
                }
                COMMIT(uint32_t);
                break;
        }
        case OP_REDUX: {
                const uint32_t *A = (const uint32_t *)PTR(in->o[1]);
                bool sgn = in->t == T_S32;
                uint32_t acc = 0;
                bool first = true;
                for (int i = 0; i < WARP; i++) {
                        if (!(m >> i & 1))
                                continue;
                        uint32_t v = A[i];
                        if (first) {
                                acc = v;
                                first = false;
                                continue;
                        }
                        switch (in->sub) {
                        case ATOM_ADD:
                                acc += v;
                                break;
                        case ATOM_MIN:
                                acc = sgn ? ((int32_t)v < (int32_t)acc ? v : acc)
                                          : (v < acc ? v : acc);
                                break;
                        case ATOM_MAX:
                                acc = sgn ? ((int32_t)v > (int32_t)acc ? v : acc)
                                          : (v > acc ? v : acc);
                                break;
                        case ATOM_AND:
                                acc &= v;
                                break;
                        case ATOM_OR:
                                acc |= v;
                                break;
                        default:
                                acc ^= v;
                                break;
                        }
                }
                uint32_t R_[WARP] __attribute__((aligned(32)));
                for (int i = 0; i < WARP; i++)
                        R_[i] = acc;
                COMMIT(uint32_t);
                break;
        }
        case OP_ELECT: {
                uint32_t leader = (uint32_t)__builtin_ctz(m);
                uint32_t R_[WARP] __attribute__((aligned(32)));
                for (int i = 0; i < WARP; i++)
                        R_[i] = leader;
                COMMIT(uint32_t);
                if (in->o[1] != OPND_NONE)
                        pwrite(regs, in->o[1], 1u << leader, m);
                break;
        }
        default: { /* OP_ACTIVEMASK */
                uint32_t R_[WARP] __attribute__((aligned(32)));
                for (int i = 0; i < WARP; i++)
                        R_[i] = m;
                COMMIT(uint32_t);
                break;
        }
        }
}
