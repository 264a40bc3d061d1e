// SPDX-License-Identifier: Apache-2.0
// Lane arithmetic of the executor: integer, float and conversion operations, comparisons, and the
// warp-wide shuffles, votes and matches. Each works on all 32 lanes of a register at once and
// commits the active ones.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ptx/fpu.h"
#include "ptx/lanes.h"

/* One lane of an f32 operation with its modifiers (rounding, .ftz, .sat, .approx). */
static float f32_lane(const struct ptx_insn *in, float a, float b, float c)
{
        bool ftz = in->flags & F_FTZ;
        int rnd = in->sub;
        float r;
        if (ftz) {
                a = flush32(a);
                b = flush32(b);
                c = flush32(c);
        }
        switch (in->op) {
        case OP_ADD:
                r = rnd == RND_RN ? a + b : fpu_binop_f32(0, a, b, rnd);
                break;
        case OP_SUB:
                r = rnd == RND_RN ? a - b : fpu_binop_f32(1, a, b, rnd);
                break;
        case OP_MUL:
                r = rnd == RND_RN ? a * b : fpu_binop_f32(2, a, b, rnd);
                break;
        case OP_FDIV:
                r = rnd == RND_RN ? a / b : fpu_binop_f32(3, a, b, rnd);
                break;
        case OP_FFMA:
                r = rnd == RND_RN ? fmaf(a, b, c) : fpu_fma_f32(a, b, c, rnd);
                break;
        case OP_MIN:
                r = fmin_ptx(a, b);
                break;
        case OP_MAX:
                r = fmax_ptx(a, b);
                break;
        case OP_ABS:
                r = fabsf(a);
                break;
        case OP_NEG:
                r = -a;
                break;
        case OP_COPYSIGN:
                r = copysignf(b, a);
                break;
        case OP_RCP:
                r = (in->flags & F_APPROX) || rnd == RND_RN ? 1.0f / a
                                                            : fpu_binop_f32(3, 1.0f, a, rnd);
                break;
        case OP_SQRT:
                r = (in->flags & F_APPROX) || rnd == RND_RN ? sqrtf(a) : fpu_sqrt_f32(a, rnd);
                break;
        case OP_RSQRT:
                r = (float)(1.0 / sqrt((double)a));
                break;
        case OP_EX2:
                r = exp2f(a);
                break;
        case OP_LG2:
                r = log2f(a);
                break;
        case OP_SIN:
                r = sinf(a);
                break;
        case OP_COS:
                r = cosf(a);
                break;
        case OP_TANH:
                r = tanhf(a);
                break;
        default:
                r = NAN;
                break;
        }
        if (in->flags & F_SAT)
                r = isnan(r) ? 0.0f : r < 0.0f ? 0.0f : r > 1.0f ? 1.0f : r;
        if (ftz)
                r = flush32(r);
        return r;
}

static double f64_lane(const struct ptx_insn *in, double a, double b, double c)
{
        int rnd = in->sub;
        switch (in->op) {
        case OP_ADD:
                return rnd == RND_RN ? a + b : fpu_binop_f64(0, a, b, rnd);
        case OP_SUB:
                return rnd == RND_RN ? a - b : fpu_binop_f64(1, a, b, rnd);
        case OP_MUL:
                return rnd == RND_RN ? a * b : fpu_binop_f64(2, a, b, rnd);
        case OP_FDIV:
                return rnd == RND_RN ? a / b : fpu_binop_f64(3, a, b, rnd);
        case OP_FFMA:
                return rnd == RND_RN ? fma(a, b, c) : fpu_fma_f64(a, b, c, rnd);
        case OP_MIN:
                return dmin_ptx(a, b);
        case OP_MAX:
                return dmax_ptx(a, b);
        case OP_ABS:
                return fabs(a);
        case OP_NEG:
                return -a;
        case OP_COPYSIGN:
                return copysign(b, a);
        case OP_RCP:
                return (in->flags & F_APPROX) || rnd == RND_RN ? 1.0 / a
                                                               : fpu_binop_f64(3, 1.0, a, rnd);
        case OP_SQRT:
                return rnd == RND_RN || (in->flags & F_APPROX) ? sqrt(a) : fpu_sqrt_f64(a, rnd);
        case OP_RSQRT:
                return 1.0 / sqrt(a);
        case OP_EX2:
                return exp2(a);
        case OP_LG2:
                return log2(a);
        case OP_SIN:
                return sin(a);
        case OP_COS:
                return cos(a);
        case OP_TANH:
                return tanh(a);
        default:
                return NAN;
        }
}

/* Float operations: a fast loop for the plain round-to-nearest forms, else lane by lane. */
HOT void exec_float(const struct ptx_insn *in, uint8_t *regs, const uint8_t *consts, uint32_t m)
{
        bool plain = in->sub == RND_RN && !(in->flags & (F_FTZ | F_SAT));
        if (in->t == T_F32) {
                if (plain) {
                        switch (in->op) {
                        case OP_ADD:
                                BIN(float, a + b);
                        case OP_SUB:
                                BIN(float, a - b);
                        case OP_MUL:
                                BIN(float, a *b);
                        case OP_FFMA:
                                TRI(float, fmaf(a, b, cc));
                        case OP_NEG:
                                UN(float, -a);
                        case OP_ABS:
                                UN(float, fabsf(a));
                        default:
                                break;
                        }
                        if (in->op == OP_ADD || in->op == OP_SUB || in->op == OP_MUL ||
                            in->op == OP_FFMA || in->op == OP_NEG || in->op == OP_ABS)
                                return;
                }
                const float *A = (const float *)PTR(in->o[1]);
                const float *B = in->o[2] != OPND_NONE ? (const float *)PTR(in->o[2]) : A;
                const float *C = in->o[3] != OPND_NONE ? (const float *)PTR(in->o[3]) : A;
                float R_[WARP] __attribute__((aligned(32)));
                for (int i = 0; i < WARP; i++)
                        R_[i] = (m >> i & 1) ? f32_lane(in, A[i], B[i], C[i]) : 0.0f;
                COMMIT(float);
                return;
        }
        if (plain) {
                switch (in->op) {
                case OP_ADD:
                        BIN(double, a + b);
                case OP_SUB:
                        BIN(double, a - b);
                case OP_MUL:
                        BIN(double, a *b);
                case OP_FFMA:
                        TRI(double, fma(a, b, cc));
                default:
                        break;
                }
                if (in->op == OP_ADD || in->op == OP_SUB || in->op == OP_MUL || in->op == OP_FFMA)
                        return;
        }
        const double *A = (const double *)PTR(in->o[1]);
        const double *B = in->o[2] != OPND_NONE ? (const double *)PTR(in->o[2]) : A;
        const double *C = in->o[3] != OPND_NONE ? (const double *)PTR(in->o[3]) : A;
        double R_[WARP] __attribute__((aligned(32)));
        for (int i = 0; i < WARP; i++)
                R_[i] = (m >> i & 1) ? f64_lane(in, A[i], B[i], C[i]) : 0.0;
        COMMIT(double);
}

/* ---- comparisons ---- */

static inline bool cmp_f(int cmp, double a, double b)
{
        bool un = isnan(a) || isnan(b);
        switch (cmp) {
        case CMP_EQ:
                return !un && a == b;
        case CMP_NE:
                return !un && a != b;
        case CMP_LT:
                return !un && a < b;
        case CMP_LE:
                return !un && a <= b;
        case CMP_GT:
                return !un && a > b;
        case CMP_GE:
                return !un && a >= b;
        case CMP_EQU:
                return un || a == b;
        case CMP_NEU:
                return un || a != b;
        case CMP_LTU:
                return un || a < b;
        case CMP_LEU:
                return un || a <= b;
        case CMP_GTU:
                return un || a > b;
        case CMP_GEU:
                return un || a >= b;
        case CMP_NUM:
                return !un;
        case CMP_NAN:
                return un;
        default:
                return false;
        }
}

#define CMPLOOP(T, X)                                                                              \
        {                                                                                          \
                const T *A_ = (const T *)PTR(in->o[o1]), *B_ = (const T *)PTR(in->o[o1 + 1]);      \
                switch (in->sub) {                                                                 \
                case CMP_EQ:                                                                       \
                        for (int i = 0; i < WARP; i++)                                             \
                                bits |= (uint32_t)(A_[i] == B_[i]) << i;                           \
                        break;                                                                     \
                case CMP_NE:                                                                       \
                        for (int i = 0; i < WARP; i++)                                             \
                                bits |= (uint32_t)(A_[i] != B_[i]) << i;                           \
                        break;                                                                     \
                case CMP_LT:                                                                       \
                case CMP_LO:                                                                       \
                        for (int i = 0; i < WARP; i++)                                             \
                                bits |= (uint32_t)(A_[i] < B_[i]) << i;                            \
                        break;                                                                     \
                case CMP_LE:                                                                       \
                case CMP_LS:                                                                       \
                        for (int i = 0; i < WARP; i++)                                             \
                                bits |= (uint32_t)(A_[i] <= B_[i]) << i;                           \
                        break;                                                                     \
                case CMP_GT:                                                                       \
                case CMP_HI:                                                                       \
                        for (int i = 0; i < WARP; i++)                                             \
                                bits |= (uint32_t)(A_[i] > B_[i]) << i;                            \
                        break;                                                                     \
                default:                                                                           \
                        for (int i = 0; i < WARP; i++)                                             \
                                bits |= (uint32_t)(A_[i] >= B_[i]) << i;                           \
                        break;                                                                     \
                }                                                                                  \
        }                                                                                          \
        break

/* The comparison of operands o[o1] and o[o1 + 1] for all lanes, as a mask. */
HOT uint32_t exec_compare(const struct ptx_insn *in, unsigned o1, const uint8_t *regs,
                          const uint8_t *consts)
{
        uint32_t bits = 0;
        switch (in->t) {
        case T_F32: {
                const float *A = (const float *)PTR(in->o[o1]);
                const float *B = (const float *)PTR(in->o[o1 + 1]);
                bool ftz = in->flags & F_FTZ;
                for (int i = 0; i < WARP; i++) {
                        float a = ftz ? flush32(A[i]) : A[i], b = ftz ? flush32(B[i]) : B[i];
                        bits |= (uint32_t)cmp_f(in->sub, a, b) << i;
                }
                break;
        }
        case T_F64: {
                const double *A = (const double *)PTR(in->o[o1]);
                const double *B = (const double *)PTR(in->o[o1 + 1]);
                for (int i = 0; i < WARP; i++)
                        bits |= (uint32_t)cmp_f(in->sub, A[i], B[i]) << i;
                break;
        }
                SUCASES(CMPLOOP, 0);
        default:
                break;
        }
        return bits;
}

static double float_of(unsigned t, uint64_t bits)
{
        switch (t) {
        case T_F16:
                return fpu_f16_to_f32((uint16_t)bits);
        case T_BF16:
                return fpu_bf16_to_f32((uint16_t)bits);
        case T_F32: {
                uint32_t b = (uint32_t)bits;
                float f;
                memcpy(&f, &b, 4);
                return f;
        }
        default: {
                double d;
                memcpy(&d, &bits, 8);
                return d;
        }
        }
}

static uint64_t sat_int(double v, unsigned t)
{
        unsigned w = type_size(t);
        if (isnan(v))
                return 0;
        if (type_is_signed(t)) {
                double lo = -ldexp(1.0, (int)(8 * w - 1)), hi = ldexp(1.0, (int)(8 * w - 1));
                if (v < lo)
                        return (uint64_t)(1ull << (8 * w - 1));
                if (v >= hi)
                        return w == 8 ? (uint64_t)INT64_MAX : (1ull << (8 * w - 1)) - 1;
                return (uint64_t)(int64_t)v;
        }
        if (v <= 0)
                return 0;
        if (v >= ldexp(1.0, (int)(8 * w)))
                return w == 8 ? UINT64_MAX : (1ull << (8 * w)) - 1;
        return (uint64_t)v;
}

/* One lane of cvt: source bits of type st, result bits of type dt. */
static uint64_t cvt_lane(const struct ptx_insn *in, uint64_t s)
{
        unsigned dt = in->t, st = in->t2;
        int rnd = in->sub;
        bool sat = in->flags & F_SAT;
        if (!type_is_float(st) && !type_is_float(dt)) {
                unsigned sw = type_size(st), dw = type_size(dt);
                int64_t sv = type_is_signed(st)
                                     ? sext(s, sw)
                                     : (int64_t)(s & (sw == 8 ? ~0ull : (1ull << 8 * sw) - 1));
                if (sat) {
                        /* clamp into the destination's range */
                        bool neg = type_is_signed(st) && sv < 0;
                        if (type_is_signed(dt)) {
                                int64_t hi =
                                        dw == 8 ? INT64_MAX : (int64_t)((1ull << (8 * dw - 1)) - 1);
                                int64_t lo = dw == 8 ? INT64_MIN : -(int64_t)(1ull << (8 * dw - 1));
                                if (!type_is_signed(st) && (uint64_t)sv > (uint64_t)hi)
                                        return (uint64_t)hi;
                                if (type_is_signed(st) && sv > hi)
                                        return (uint64_t)hi;
                                if (neg && sv < lo)
                                        return (uint64_t)lo;
                        } else {
                                uint64_t hi = dw == 8 ? UINT64_MAX : (1ull << (8 * dw)) - 1;
                                if (neg)
                                        return 0;
                                if ((uint64_t)sv > hi)
                                        return hi;
                        }
                }
                return (uint64_t)sv;
        }
        if (!type_is_float(dt)) {
                double v = float_of(st, s);
                if ((in->flags & F_FTZ) && st == T_F32 && fpclassify(v) == FP_SUBNORMAL)
                        v = 0;
                v = fpu_round_int(v, rnd ? rnd : RND_RZI);
                return sat_int(v, dt);
        }
        double v;
        float f;
        if (!type_is_float(st)) {
                unsigned sw = type_size(st);
                uint64_t iv = type_is_signed(st) ? (uint64_t)sext(s, sw)
                                                 : (sw == 8 ? s : s & ((1ull << 8 * sw) - 1));
                int r = rnd ? rnd : RND_RN;
                bool sg = type_is_signed(st);
                if (r == RND_RN) /* the FPU's own mode: no switching */
                        v = dt == T_F64 ? (sg ? (double)(int64_t)iv : (double)iv)
                                        : (double)(sg ? (float)(int64_t)iv : (float)iv);
                else if (dt == T_F64)
                        v = fpu_int_to_f64(iv, sg, r);
                else
                        v = fpu_int_to_f32(iv, sg, r);
        } else {
                v = float_of(st, s);
                if ((in->flags & F_FTZ) && st == T_F32 && fpclassify(v) == FP_SUBNORMAL)
                        v = copysign(0.0, v);
                if (rnd >= RND_RNI && rnd <= RND_RPI)
                        v = fpu_round_int(v, rnd);
        }
        if (sat)
                v = isnan(v) ? 0.0 : v < 0 ? 0.0 : v > 1 ? 1.0 : v;
        switch (dt) {
        case T_F64:
                memcpy(&s, &v, 8);
                return s;
        case T_F32: {
                uint32_t b;
                f = st == T_F64 && rnd && rnd < RND_RNI ? fpu_f64_to_f32(v, rnd) : (float)v;
                if ((in->flags & F_FTZ))
                        f = flush32(f);
                memcpy(&b, &f, 4);
                return b;
        }
        case T_F16:
                return fpu_to_f16(v, rnd == RND_RZ);
        default:
                return fpu_f32_to_bf16((float)v, rnd == RND_RZ);
        }
}

/* Write the lanes of mask m of a register of width w from a 32-byte aligned temporary. */
static inline void in_commit(uint8_t *d, const void *r, unsigned w, uint32_t m)
{
        if (m == FULL) {
                copy_lanes32(d, r, (size_t)w * WARP);
                return;
        }
        for (int i = 0; i < WARP; i++) {
                if (m >> i & 1)
                        memcpy(d + (size_t)i * w, (const uint8_t *)r + (size_t)i * w, w);
        }
}

HOT void exec_cvt(const struct ptx_insn *in, uint8_t *regs, const uint8_t *consts, uint32_t m)
{
        unsigned dt = in->t, st = in->t2;
        unsigned dw = type_size(dt), sw = in->regw ? in->regw : type_size(st);
        const uint8_t *A = PTR(in->o[1]);
        uint8_t *D = regs + in->o[0];

#define UN2(TD, TS)                                                                                \
        do {                                                                                       \
                const TS *A2_ = (const TS *)A;                                                     \
                TD R_[WARP] __attribute__((aligned(32)));                                          \
                for (int i = 0; i < WARP; i++)                                                     \
                        R_[i] = (TD)A2_[i];                                                        \
                in_commit(D, R_, sizeof(TD), m);                                                   \
                return;                                                                            \
        } while (0)
        /* the common integer widenings and narrowings, vectorised */
        if (!(in->flags & F_SAT) && !type_is_float(dt) && !type_is_float(st) && !in->regw) {
                if (dw == 8 && sw == 4) {
                        if (type_is_signed(st))
                                UN2(int64_t, int32_t);
                        else
                                UN2(uint64_t, uint32_t);
                }
                if (dw == 4 && sw == 8)
                        UN2(uint32_t, uint64_t);
                if (dw == 4 && sw == 2)
                        UN2(uint32_t, uint16_t);
                if (dw == 2 && sw == 4)
                        UN2(uint16_t, uint32_t);
        }
        /* int to float at round-to-nearest, and float to int toward zero (PTX saturates) */
        if (!(in->flags & (F_SAT | F_FTZ)) && !in->regw) {
                if (dt == T_F32 && st == T_S32 && (in->sub == RND_RN || !in->sub))
                        UN2(float, int32_t);
                if (dt == T_F32 && st == T_U32 && (in->sub == RND_RN || !in->sub))
                        UN2(float, uint32_t);
                if (dt == T_F64 && st == T_F32)
                        UN2(double, float);
                if (dt == T_S32 && st == T_F32 && in->sub == RND_RZI) {
                        const float *A2_ = (const float *)A;
                        int32_t R_[WARP] __attribute__((aligned(32)));
                        for (int i = 0; i < WARP; i++) {
                                float v = A2_[i];
                                R_[i] = v != v               ? 0
                                        : v >= 2147483648.0f ? INT32_MAX
                                        : v < -2147483648.0f ? INT32_MIN
                                                             : (int32_t)v;
                        }
                        in_commit(D, R_, 4, m);
                        return;
                }
        }
        uint8_t R_[WARP * 8] __attribute__((aligned(32)));
        for (int i = 0; i < WARP; i++) {
                if (m >> i & 1)
                        wr_bits(R_ + i * dw, dw, cvt_lane(in, rd_bits(A + (size_t)i * sw, sw)));
        }
        for (int i = 0; i < WARP; i++) {
                if (m >> i & 1)
                        memcpy(D + (size_t)i * dw, R_ + i * dw, dw);
        }
}

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
        default: { /* OP_ACTIVEMASK */
                uint32_t R_[WARP] __attribute__((aligned(32)));
                for (int i = 0; i < WARP; i++)
                        R_[i] = m;
                COMMIT(uint32_t);
                break;
        }
        }
}
