// SPDX-License-Identifier: Apache-2.0
// Float lanes of the executor: f32 and f64 arithmetic with PTX's rounding, .ftz and .sat
// modifiers and approximate functions, comparisons (setp/set) for every type, and cvt between
// all integer and float types, with fast vectorised paths for the common forms.
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
