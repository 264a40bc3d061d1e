// SPDX-License-Identifier: Apache-2.0
// The warp interpreter: runs one block's warps of 32 lanes over the decoded instructions. Each
// instruction works on all lanes in a loop the compiler can vectorise, then commits the lanes
// that are active. Divergence: lanes at one (call depth, function, pc) run together; the deepest
// then lowest pc runs first, so groups meet again where their paths join (see docs/ptx.md).
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ptx/exec.h"
#include "ptx/fpu.h"

#define FULL 0xffffffffu

/*
 * The hot functions are built twice, for baseline x86-64 and for x86-64-v3 (AVX2, FMA, POPCNT),
 * and the loader picks one for the CPU: fmaf and popcount are then single instructions and the
 * lane loops are 256 bits wide. Not under the sanitizers, whose runtimes dislike ifuncs.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
        !defined(__SANITIZE_ADDRESS__)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif

/* ---- faults ---- */

static int fault(struct exec_ctx *c, struct warp *w, int code, uint64_t addr, int lane,
                 const struct ptx_insn *in)
{
        if (!c->fault) {
                c->fault = code;
                c->fault_addr = addr;
                c->fault_lane = lane < 0 ? 0 : (uint32_t)lane;
                c->fault_warp = w ? w->id : 0;
                c->fault_line = in ? in->line : 0;
        }
        return code;
}

/* ---- memory ---- */

static inline uint8_t *frame_regs(const struct exec_launch *L, uint8_t *frame)
{
        (void)L;
        return frame + FRAME_HDR;
}

static inline uint8_t *frame_param(const struct exec_launch *L, uint8_t *frame, int lane)
{
        return frame + FRAME_HDR + L->mod->max_frame + (size_t)lane * L->mod->max_param;
}

static inline uint8_t *frame_local(const struct exec_launch *L, uint8_t *frame)
{
        return frame + FRAME_HDR + L->mod->max_frame + (size_t)WARP * L->mod->max_param;
}

/* Global memory: the cached regions, the module's own variables, then the callback. */
static uint8_t *global_ptr(struct exec_ctx *c, uint64_t addr, unsigned size)
{
        struct exec_launch *L = c->L;
        for (int i = 0; i < 2; i++) {
                struct ptx_mem_region *r = &c->cache[i];
                if (addr >= r->base && addr - r->base <= r->size &&
                    r->size - (addr - r->base) >= size)
                        return (uint8_t *)r->host + (addr - r->base);
        }
        if (L->globals && addr >= L->globals_base && addr - L->globals_base <= L->globals_size &&
            L->globals_size - (addr - L->globals_base) >= size)
                return L->globals + (addr - L->globals_base);
        if (!L->l->mem)
                return NULL;
        struct ptx_mem_region r = {0};
        if (L->l->mem(L->l->mem_ctx, addr, size, &r) != 0 || !r.host)
                return NULL;
        /* trust but verify: the region must contain the access */
        if (addr < r.base || addr - r.base > r.size || r.size - (addr - r.base) < size)
                return NULL;
        c->cache[c->cache_next] = r;
        c->cache_next ^= 1;
        return (uint8_t *)r.host + (addr - r.base);
}

static uint8_t *local_ptr(struct exec_ctx *c, struct warp *w, int lane, uint64_t addr,
                          unsigned size)
{
        uint64_t ml = c->L->mod->max_local;
        if (!ml)
                return NULL;
        uint64_t depth = addr / ml, off = addr % ml;
        if (depth >= w->nframes || off + size > ml)
                return NULL;
        return frame_local(c->L, w->frames[depth]) + (size_t)lane * ml + off;
}

/* Host pointer for an access of size bytes at addr in space by lane, or NULL after a fault. */
static uint8_t *mem_lane(struct exec_ctx *c, struct warp *w, int lane, int space, uint64_t addr,
                         unsigned size, bool write, const struct ptx_insn *in)
{
        uint8_t *p = NULL;
        if (size > 1 && (addr & (size - 1))) {
                fault(c, w, PTX_EMISALIGNED, addr, lane, in);
                return NULL;
        }
        if (space == SP_GENERIC) {
                if (addr - PTX_SHARED_WINDOW < PTX_WINDOW_SIZE) {
                        space = SP_SHARED;
                        addr -= PTX_SHARED_WINDOW;
                } else if (addr - PTX_LOCAL_WINDOW < PTX_WINDOW_SIZE) {
                        space = SP_LOCAL;
                        addr -= PTX_LOCAL_WINDOW;
                } else if (addr - PTX_PARAM_WINDOW < PTX_WINDOW_SIZE) {
                        space = SP_KPARAM;
                        addr -= PTX_PARAM_WINDOW;
                } else {
                        space = SP_GLOBAL;
                }
        }
        switch (space) {
        case SP_SHARED:
                if (addr <= c->L->shared_size && c->L->shared_size - addr >= size)
                        p = c->shared + addr;
                break;
        case SP_LOCAL:
                p = local_ptr(c, w, lane, addr, size);
                break;
        case SP_KPARAM:
                if (!write && addr <= c->L->kfn->kparam_bytes &&
                    c->L->kfn->kparam_bytes - addr >= size)
                        p = (uint8_t *)c->L->params + addr;
                break;
        default:
                p = global_ptr(c, addr, size);
                break;
        }
        if (!p)
                fault(c, w, PTX_EILLEGAL_ADDRESS, addr, lane, in);
        return p;
}

/* ---- lane loops ---- */

#define PTR(o) ((o)&OPND_CONST ? consts + ((o) & ~OPND_CONST) : regs + (o))

#define COMMIT(T)                                                                                  \
        do {                                                                                       \
                T *D_ = (T *)(regs + in->o[0]);                                                    \
                if (m == FULL)                                                                     \
                        memcpy(D_, R_, sizeof(R_));                                                \
                else                                                                               \
                        for (int i = 0; i < WARP; i++)                                             \
                                if (m >> i & 1)                                                    \
                                        D_[i] = R_[i];                                             \
        } while (0)

#define UN(T, EXPR)                                                                                \
        {                                                                                          \
                const T *A_ = (const T *)PTR(in->o[1]);                                            \
                T R_[WARP];                                                                        \
                for (int i = 0; i < WARP; i++) {                                                   \
                        T a = A_[i];                                                               \
                        R_[i] = (T)(EXPR);                                                         \
                }                                                                                  \
                COMMIT(T);                                                                         \
        }                                                                                          \
        break

#define BIN(T, EXPR)                                                                               \
        {                                                                                          \
                const T *A_ = (const T *)PTR(in->o[1]), *B_ = (const T *)PTR(in->o[2]);            \
                T R_[WARP];                                                                        \
                for (int i = 0; i < WARP; i++) {                                                   \
                        T a = A_[i], b = B_[i];                                                    \
                        R_[i] = (T)(EXPR);                                                         \
                }                                                                                  \
                COMMIT(T);                                                                         \
        }                                                                                          \
        break

#define TRI(T, EXPR)                                                                               \
        {                                                                                          \
                const T *A_ = (const T *)PTR(in->o[1]), *B_ = (const T *)PTR(in->o[2]);            \
                const T *C_ = (const T *)PTR(in->o[3]);                                            \
                T R_[WARP];                                                                        \
                for (int i = 0; i < WARP; i++) {                                                   \
                        T a = A_[i], b = B_[i], cc = C_[i];                                        \
                        R_[i] = (T)(EXPR);                                                         \
                }                                                                                  \
                COMMIT(T);                                                                         \
        }                                                                                          \
        break

/* Integer cases by width; U: unsigned arithmetic (wraps), S: signed semantics. */
#define UCASES(M, EXPR)                                                                            \
        case T_B16:                                                                                \
        case T_U16:                                                                                \
        case T_S16:                                                                                \
                M(uint16_t, EXPR);                                                                 \
        case T_B32:                                                                                \
        case T_U32:                                                                                \
        case T_S32:                                                                                \
                M(uint32_t, EXPR);                                                                 \
        case T_B64:                                                                                \
        case T_U64:                                                                                \
        case T_S64:                                                                                \
                M(uint64_t, EXPR)

#define SUCASES(M, EXPR)                                                                           \
        case T_B16:                                                                                \
        case T_U16:                                                                                \
                M(uint16_t, EXPR);                                                                 \
        case T_S16:                                                                                \
                M(int16_t, EXPR);                                                                  \
        case T_B32:                                                                                \
        case T_U32:                                                                                \
                M(uint32_t, EXPR);                                                                 \
        case T_S32:                                                                                \
                M(int32_t, EXPR);                                                                  \
        case T_B64:                                                                                \
        case T_U64:                                                                                \
                M(uint64_t, EXPR);                                                                 \
        case T_S64:                                                                                \
                M(int64_t, EXPR)

static inline float flush32(float v)
{
        return fpclassify(v) == FP_SUBNORMAL ? copysignf(0.0f, v) : v;
}

static float fmin_ptx(float a, float b)
{
        if (isnan(a))
                return b;
        if (isnan(b))
                return a;
        if (a == b)
                return signbit(a) ? a : b;
        return a < b ? a : b;
}

static float fmax_ptx(float a, float b)
{
        if (isnan(a))
                return b;
        if (isnan(b))
                return a;
        if (a == b)
                return signbit(a) ? b : a;
        return a > b ? a : b;
}

static double dmin_ptx(double a, double b)
{
        if (isnan(a))
                return b;
        if (isnan(b))
                return a;
        if (a == b)
                return signbit(a) ? a : b;
        return a < b ? a : b;
}

static double dmax_ptx(double a, double b)
{
        if (isnan(a))
                return b;
        if (isnan(b))
                return a;
        if (a == b)
                return signbit(a) ? b : a;
        return a > b ? a : b;
}

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
HOT static void exec_float(const struct ptx_insn *in, uint8_t *regs, const uint8_t *consts,
                           uint32_t m)
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
                float R_[WARP];
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
        double R_[WARP];
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
HOT static uint32_t compare(const struct ptx_insn *in, unsigned o1, const uint8_t *regs,
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

/* ---- conversions ---- */

static uint64_t rd_bits(const uint8_t *p, unsigned w)
{
        switch (w) {
        case 1:
                return *p;
        case 2: {
                uint16_t v;
                memcpy(&v, p, 2);
                return v;
        }
        case 4: {
                uint32_t v;
                memcpy(&v, p, 4);
                return v;
        }
        default: {
                uint64_t v;
                memcpy(&v, p, 8);
                return v;
        }
        }
}

static void wr_bits(uint8_t *p, unsigned w, uint64_t v)
{
        switch (w) {
        case 1:
                *p = (uint8_t)v;
                break;
        case 2: {
                uint16_t x = (uint16_t)v;
                memcpy(p, &x, 2);
                break;
        }
        case 4: {
                uint32_t x = (uint32_t)v;
                memcpy(p, &x, 4);
                break;
        }
        default:
                memcpy(p, &v, 8);
                break;
        }
}

static int64_t sext(uint64_t v, unsigned w)
{
        unsigned sh = 64 - 8 * w;
        return sh >= 64 ? (int64_t)v : (int64_t)(v << sh) >> sh;
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
                if (dt == T_F64)
                        v = fpu_int_to_f64(iv, type_is_signed(st), r);
                else
                        v = fpu_int_to_f32(iv, type_is_signed(st), r);
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

HOT static void exec_cvt(const struct ptx_insn *in, uint8_t *regs, const uint8_t *consts,
                         uint32_t m)
{
        unsigned dt = in->t, st = in->t2;
        unsigned dw = type_size(dt), sw = in->regw ? in->regw : type_size(st);
        const uint8_t *A = PTR(in->o[1]);
        uint8_t *D = regs + in->o[0];

#define UN2(TD, TS)                                                                                \
        do {                                                                                       \
                const TS *A2_ = (const TS *)A;                                                     \
                TD R2_[WARP], *D2_ = (TD *)D;                                                      \
                for (int i = 0; i < WARP; i++)                                                     \
                        R2_[i] = (TD)A2_[i];                                                       \
                for (int i = 0; i < WARP; i++)                                                     \
                        if (m >> i & 1)                                                            \
                                D2_[i] = R2_[i];                                                   \
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
        }
        uint8_t R_[WARP * 8];
        for (int i = 0; i < WARP; i++) {
                if (m >> i & 1)
                        wr_bits(R_ + i * dw, dw, cvt_lane(in, rd_bits(A + (size_t)i * sw, sw)));
        }
        for (int i = 0; i < WARP; i++) {
                if (m >> i & 1)
                        memcpy(D + (size_t)i * dw, R_ + i * dw, dw);
        }
}

/* ---- loads and stores ---- */

HOT static void lane_addresses(const struct ptx_insn *in, const uint8_t *regs,
                               const uint8_t *consts, uint64_t ad[WARP])
{
        if (in->o[4] == OPND_NONE) {
                for (int i = 0; i < WARP; i++)
                        ad[i] = (uint64_t)in->imm;
        } else if (in->sub2 == 4) {
                const uint32_t *A = (const uint32_t *)PTR(in->o[4]);
                for (int i = 0; i < WARP; i++)
                        ad[i] = (uint64_t)A[i] + (uint64_t)in->imm;
        } else {
                const uint64_t *A = (const uint64_t *)PTR(in->o[4]);
                for (int i = 0; i < WARP; i++)
                        ad[i] = A[i] + (uint64_t)in->imm;
        }
}

/* Host base for a whole-warp access when every active lane falls in one region, else NULL. */
static inline bool fits(const uint64_t ad[WARP], uint32_t m, uint64_t base, uint64_t size,
                        unsigned total)
{
        if (size < total)
                return false;
        uint64_t limit = size - total, amask = total - 1, bad = 0;
        if (m == FULL) {
                for (int i = 0; i < WARP; i++)
                        bad |= (uint64_t)(ad[i] - base > limit) | (ad[i] & amask);
        } else {
                for (int i = 0; i < WARP; i++) {
                        uint64_t a = (m >> i & 1) ? ad[i] : base;
                        bad |= (uint64_t)(a - base > limit) | (a & amask);
                }
        }
        return !bad;
}

HOT static uint8_t *fast_base(struct exec_ctx *c, int space, const uint64_t ad[WARP], uint32_t m,
                              unsigned total)
{
        if (total & (total - 1))
                return NULL;
        if (space == SP_SHARED)
                return fits(ad, m, 0, c->L->shared_size, total) ? c->shared : NULL;
        if (space != SP_GLOBAL && space != SP_GENERIC && space != SP_CONST)
                return NULL;
        for (int k = 0; k < 2; k++) {
                const struct ptx_mem_region *r = &c->cache[k];
                if ((r->base & (total - 1)) == 0 && fits(ad, m, r->base, r->size, total))
                        return (uint8_t *)r->host - r->base;
        }
        return NULL;
}

#define GATHER(T)                                                                                  \
        for (unsigned v = 0; v < vec; v++) {                                                       \
                T *D_ = (T *)(regs + in->o[v]);                                                    \
                if (m == FULL) {                                                                   \
                        for (int i = 0; i < WARP; i++)                                             \
                                memcpy(&D_[i], base + ad[i] + v * sizeof(T), sizeof(T));           \
                } else {                                                                           \
                        for (int i = 0; i < WARP; i++)                                             \
                                if (m >> i & 1)                                                    \
                                        memcpy(&D_[i], base + ad[i] + v * sizeof(T), sizeof(T));   \
                }                                                                                  \
        }                                                                                          \
        return 0

#define SCATTER(T)                                                                                 \
        for (unsigned v = 0; v < vec; v++) {                                                       \
                const T *S_ = (const T *)PTR(in->o[v]);                                            \
                for (int i = 0; i < WARP; i++)                                                     \
                        if (m >> i & 1)                                                            \
                                memcpy(base + ad[i] + v * sizeof(T), &S_[i], sizeof(T));           \
        }                                                                                          \
        return 0

HOT static int exec_ld(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in, uint8_t *regs,
                       const uint8_t *consts, uint32_t m)
{
        unsigned sz = type_size(in->t), vec = in->vec, rw = in->regw;
        uint64_t ad[WARP];
        lane_addresses(in, regs, consts, ad);
        if (sz == rw) {
                uint8_t *base = fast_base(c, in->t2, ad, m, sz * vec);
                if (base) {
                        switch (sz) {
                        case 1:
                                GATHER(uint8_t);
                        case 2:
                                GATHER(uint16_t);
                        case 4:
                                GATHER(uint32_t);
                        default:
                                GATHER(uint64_t);
                        }
                }
        }
        for (int i = 0; i < WARP; i++) {
                if (!(m >> i & 1))
                        continue;
                uint8_t *p = mem_lane(c, w, i, in->t2, ad[i], sz * vec, false, in);
                if (!p)
                        return c->fault;
                for (unsigned v = 0; v < vec; v++) {
                        uint64_t val = rd_bits(p + v * sz, sz);
                        if (in->flags & F_SIGNX)
                                val = (uint64_t)sext(val, sz);
                        wr_bits(regs + in->o[v] + (size_t)i * rw, rw, val);
                }
        }
        return 0;
}

HOT static int exec_st(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in, uint8_t *regs,
                       const uint8_t *consts, uint32_t m)
{
        unsigned sz = type_size(in->t), vec = in->vec, rw = in->regw;
        uint64_t ad[WARP];
        lane_addresses(in, regs, consts, ad);
        if (sz == rw && in->t2 != SP_CONST) {
                uint8_t *base = fast_base(c, in->t2, ad, m, sz * vec);
                if (base) {
                        switch (sz) {
                        case 1:
                                SCATTER(uint8_t);
                        case 2:
                                SCATTER(uint16_t);
                        case 4:
                                SCATTER(uint32_t);
                        default:
                                SCATTER(uint64_t);
                        }
                }
        }
        for (int i = 0; i < WARP; i++) {
                if (!(m >> i & 1))
                        continue;
                uint8_t *p = mem_lane(c, w, i, in->t2, ad[i], sz * vec, true, in);
                if (!p)
                        return c->fault;
                for (unsigned v = 0; v < vec; v++)
                        wr_bits(p + v * sz, sz, rd_bits(PTR(in->o[v]) + (size_t)i * rw, rw));
        }
        return 0;
}

/* ---- atomics ---- */

static uint64_t atom_apply(const struct ptx_insn *in, uint8_t *p, uint64_t b, uint64_t cv)
{
        unsigned t = in->t;
        int op = in->sub;
        if (type_size(t) == 4) {
                uint32_t *q = (uint32_t *)p;
                uint32_t x = (uint32_t)b, old, nv;
                switch (op) {
                case ATOM_ADD:
                        if (t != T_F32)
                                return __atomic_fetch_add(q, x, __ATOMIC_RELAXED);
                        break;
                case ATOM_AND:
                        return __atomic_fetch_and(q, x, __ATOMIC_RELAXED);
                case ATOM_OR:
                        return __atomic_fetch_or(q, x, __ATOMIC_RELAXED);
                case ATOM_XOR:
                        return __atomic_fetch_xor(q, x, __ATOMIC_RELAXED);
                case ATOM_EXCH:
                        return __atomic_exchange_n(q, x, __ATOMIC_RELAXED);
                case ATOM_CAS:
                        old = (uint32_t)b;
                        __atomic_compare_exchange_n(q, &old, (uint32_t)cv, false, __ATOMIC_RELAXED,
                                                    __ATOMIC_RELAXED);
                        return old;
                default:
                        break;
                }
                old = __atomic_load_n(q, __ATOMIC_RELAXED);
                do {
                        float fo, fx;
                        memcpy(&fo, &old, 4);
                        memcpy(&fx, &x, 4);
                        switch (op) {
                        case ATOM_ADD:
                                fo = fo + fx;
                                memcpy(&nv, &fo, 4);
                                break;
                        case ATOM_MIN:
                                if (t == T_F32) {
                                        fo = fmin_ptx(fo, fx);
                                        memcpy(&nv, &fo, 4);
                                } else {
                                        nv = t == T_S32 ? ((int32_t)old < (int32_t)x ? old : x)
                                                        : (old < x ? old : x);
                                }
                                break;
                        case ATOM_MAX:
                                if (t == T_F32) {
                                        fo = fmax_ptx(fo, fx);
                                        memcpy(&nv, &fo, 4);
                                } else {
                                        nv = t == T_S32 ? ((int32_t)old > (int32_t)x ? old : x)
                                                        : (old > x ? old : x);
                                }
                                break;
                        case ATOM_INC:
                                nv = old >= x ? 0 : old + 1;
                                break;
                        default: /* ATOM_DEC */
                                nv = (old == 0 || old > x) ? x : old - 1;
                                break;
                        }
                } while (!__atomic_compare_exchange_n(q, &old, nv, true, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED));
                return old;
        }
        uint64_t *q = (uint64_t *)p;
        uint64_t old, nv;
        switch (op) {
        case ATOM_ADD:
                if (t != T_F64)
                        return __atomic_fetch_add(q, b, __ATOMIC_RELAXED);
                break;
        case ATOM_AND:
                return __atomic_fetch_and(q, b, __ATOMIC_RELAXED);
        case ATOM_OR:
                return __atomic_fetch_or(q, b, __ATOMIC_RELAXED);
        case ATOM_XOR:
                return __atomic_fetch_xor(q, b, __ATOMIC_RELAXED);
        case ATOM_EXCH:
                return __atomic_exchange_n(q, b, __ATOMIC_RELAXED);
        case ATOM_CAS:
                old = b;
                __atomic_compare_exchange_n(q, &old, cv, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
                return old;
        default:
                break;
        }
        old = __atomic_load_n(q, __ATOMIC_RELAXED);
        do {
                double fo, fx;
                memcpy(&fo, &old, 8);
                memcpy(&fx, &b, 8);
                switch (op) {
                case ATOM_ADD:
                        fo = fo + fx;
                        memcpy(&nv, &fo, 8);
                        break;
                case ATOM_MIN:
                        if (t == T_F64) {
                                fo = dmin_ptx(fo, fx);
                                memcpy(&nv, &fo, 8);
                        } else {
                                nv = t == T_S64 ? ((int64_t)old < (int64_t)b ? old : b)
                                                : (old < b ? old : b);
                        }
                        break;
                default: /* ATOM_MAX */
                        if (t == T_F64) {
                                fo = dmax_ptx(fo, fx);
                                memcpy(&nv, &fo, 8);
                        } else {
                                nv = t == T_S64 ? ((int64_t)old > (int64_t)b ? old : b)
                                                : (old > b ? old : b);
                        }
                        break;
                }
        } while (!__atomic_compare_exchange_n(q, &old, nv, true, __ATOMIC_RELAXED,
                                              __ATOMIC_RELAXED));
        return old;
}

static int exec_atom(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in, uint8_t *regs,
                     const uint8_t *consts, uint32_t m)
{
        unsigned sz = type_size(in->t);
        uint64_t ad[WARP];
        lane_addresses(in, regs, consts, ad);
        for (int i = 0; i < WARP; i++) {
                if (!(m >> i & 1))
                        continue;
                uint8_t *p = mem_lane(c, w, i, in->t2, ad[i], sz, true, in);
                if (!p)
                        return c->fault;
                uint64_t b = rd_bits(PTR(in->o[1]) + (size_t)i * sz, sz);
                uint64_t cv =
                        in->o[2] != OPND_NONE ? rd_bits(PTR(in->o[2]) + (size_t)i * sz, sz) : 0;
                uint64_t old = atom_apply(in, p, b, cv);
                if (in->o[0] != OPND_NONE)
                        wr_bits(regs + in->o[0] + (size_t)i * sz, sz, old);
        }
        return 0;
}

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
                return c->L->shared_size;
        case SREG_DYNSMEM:
                return l->dynamic_shared;
        default:
                return 0;
        }
}

/* ---- the warp loop ---- */

/* Write one value into the active lanes of a register of width w. */
static inline void broadcast(uint8_t *dst, unsigned w, uint64_t v, uint32_t m)
{
#define BCAST(T)                                                                                   \
        {                                                                                          \
                T *D_ = (T *)dst;                                                                  \
                if (m == FULL) {                                                                   \
                        for (int i = 0; i < WARP; i++)                                             \
                                D_[i] = (T)v;                                                      \
                } else {                                                                           \
                        for (int i = 0; i < WARP; i++)                                             \
                                if (m >> i & 1)                                                    \
                                        D_[i] = (T)v;                                              \
                }                                                                                  \
        }                                                                                          \
        break
        switch (w) {
        case 1:
                BCAST(uint8_t);
        case 2:
                BCAST(uint16_t);
        case 4:
                BCAST(uint32_t);
        default:
                BCAST(uint64_t);
        }
#undef BCAST
}

static inline void pwrite(uint8_t *regs, uint32_t off, uint32_t bits, uint32_t m)
{
        uint32_t *p = (uint32_t *)(regs + off);
        *p = (*p & ~m) | (bits & m);
}

static inline uint32_t pread(const uint8_t *regs, const uint8_t *consts, uint32_t off)
{
        uint32_t v;
        memcpy(&v, PTR(off), 4);
        return v;
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

static int check_budget(struct exec_ctx *c)
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
        while (w->nframes <= depth) {
                uint8_t *f = aligned_alloc(64, c->L->frame_size);
                if (!f)
                        return -ENOMEM;
                memset(f, 0, c->L->frame_size);
                w->frames[w->nframes++] = f;
        }
        return 0;
}

#define SHIFTOP(T, EXPR)                                                                           \
        {                                                                                          \
                const T *A_ = (const T *)PTR(in->o[1]);                                            \
                const uint32_t *B_ = (const uint32_t *)PTR(in->o[2]);                              \
                T R_[WARP];                                                                        \
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
                TD R_[WARP];                                                                       \
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
                TD R_[WARP];                                                                       \
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
HOT static void exec_int(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in,
                         uint8_t *regs, const uint8_t *consts, uint32_t m)
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
                        uint64_t R_[WARP];
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
                        uint32_t R_[WARP];
                        for (int i = 0; i < WARP; i++)
                                R_[i] = (uint32_t)bfi_lane(A_[i], B_[i], P_[i], L_[i], 32);
                        COMMIT(uint32_t);
                } else {
                        const uint64_t *A_ = (const uint64_t *)PTR(in->o[1]);
                        const uint64_t *B_ = (const uint64_t *)PTR(in->o[2]);
                        uint64_t R_[WARP];
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
                uint32_t R_[WARP];
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
                uint32_t R_[WARP];
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
                        uint32_t R_[WARP];
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
                        uint64_t R_[WARP];
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

/* Warp-wide operations: shfl, vote, match, activemask. */
HOT static void exec_warpop(const struct ptx_insn *in, uint8_t *regs, const uint8_t *consts,
                            uint32_t m)
{
        switch (in->op) {
        case OP_SHFL: {
                const uint32_t *A = (const uint32_t *)PTR(in->o[2]);
                const uint32_t *B = (const uint32_t *)PTR(in->o[3]);
                const uint32_t *C = (const uint32_t *)PTR(in->o[4]);
                uint32_t R_[WARP], pbits = 0;
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
                uint32_t R_[WARP];
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
                uint32_t R_[WARP];
                for (int i = 0; i < WARP; i++)
                        R_[i] = m;
                COMMIT(uint32_t);
                break;
        }
        }
}

/* Run the warp until none of its lanes can run (exited or waiting at a barrier). */
HOT static int warp_run(struct exec_ctx *c, struct warp *w)
{
        struct exec_launch *L = c->L;
        const struct ptx_module *mod = L->mod;

resched:
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
                        c->warp_insns++;
                        c->thread_insns += (unsigned)__builtin_popcount(m);
                        if (!m) {
                                pc++;
                                continue;
                        }
                        switch (in->op) {
                        case OP_NOP:
                        case OP_WARPSYNC:
                                break;
                        case OP_MOV:
                        case OP_ADD:
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
                        case OP_MULWIDE:
                        case OP_MAD:
                        case OP_MADHI:
                        case OP_MADWIDE:
                        case OP_DIV:
                        case OP_REM:
                        case OP_AND:
                        case OP_OR:
                        case OP_XOR:
                        case OP_NOT:
                        case OP_CNOT:
                        case OP_SHL:
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
                                uint32_t bits = compare(in, 2, regs, consts);
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
                                uint32_t bits = compare(in, 1, regs, consts);
                                uint32_t R_[WARP];
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
                                int sr = (int)in->imm;
                                bool per_lane = sr <= SREG_TID_Z || sr == SREG_LANEID ||
                                                (sr >= SREG_LANEMASK_EQ && sr <= SREG_LANEMASK_GE);
                                if (in->t == T_U32 && sr <= SREG_TID_Z) {
                                        const uint32_t *A_ = w->tid[sr - SREG_TID_X];
                                        uint32_t R_[WARP];
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
                                        return r;
                                break;
                        case OP_ST:
                                r = exec_st(c, w, in, regs, consts, m);
                                if (r)
                                        return r;
                                break;
                        case OP_ATOM:
                                r = exec_atom(c, w, in, regs, consts, m);
                                if (r)
                                        return r;
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
                                exec_warpop(in, regs, consts, m);
                                break;
                        case OP_BRA: {
                                uint32_t tgt = (uint32_t)in->imm;
                                if (tgt <= pc && c->warp_insns >= c->next_check) {
                                        r = check_budget(c);
                                        if (r)
                                                return fault(c, w, r, 0, -1, in);
                                }
                                if (m == mask) {
                                        pc = tgt;
                                        if (tgt > stop) {
                                                warp_park(w, mask, pc);
                                                w->cur_mask = 0;
                                                goto resched;
                                        }
                                        continue;
                                }
                                warp_park(w, m, tgt);
                                warp_park(w, mask & ~m, pc + 1);
                                w->cur_mask = 0;
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
                                                       fn->rets[k].size);
                                        w->key[i] = lane_key(w->cur_depth - 1, ret_fn[i],
                                                             ret_pc[i] + 1);
                                }
                                warp_park(w, mask & ~m, pc + 1);
                                w->cur_mask = 0;
                                goto resched;
                        }
                        case OP_CALL: {
                                const struct ptx_call *cl = &mod->calls[in->imm];
                                const struct ptx_func *callee = &mod->funcs[cl->callee];
                                unsigned d = w->cur_depth + 1;
                                if (c->warp_insns >= c->next_check) {
                                        r = check_budget(c);
                                        if (r)
                                                return fault(c, w, r, 0, -1, in);
                                }
                                if (d >= MAX_DEPTH)
                                        return fault(c, w, PTX_ESTACK, 0, __builtin_ctz(m), in);
                                if (frame_ensure(c, w, d))
                                        return fault(c, w, -ENOMEM, 0, -1, in);
                                frame = w->frames[w->cur_depth]; /* stable: frames never move */
                                uint8_t *nf = w->frames[d];
                                uint32_t *ret_pc = (uint32_t *)nf;
                                for (int i = 0; i < WARP; i++) {
                                        if (!(m >> i & 1))
                                                continue;
                                        for (unsigned k = 0; k < cl->nargs; k++)
                                                memcpy(frame_param(L, nf, i) +
                                                               callee->params[k].offset,
                                                       frame_param(L, frame, i) + cl->arg_src[k],
                                                       cl->arg_size[k]);
                                        ret_pc[i] = pc;
                                        ret_pc[WARP + i] = w->cur_fn;
                                        ret_pc[2 * WARP + i] = (uint32_t)in->imm;
                                        w->key[i] = lane_key(d, cl->callee, 0);
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
                                        return fault(c, w, PTX_EILLEGAL_INSN, 0, lane, in);
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
                                return fault(c, w, PTX_ETRAP, 0, __builtin_ctz(m), in);
                        default:
                                return fault(c, w, PTX_EILLEGAL_INSN, 0, __builtin_ctz(m), in);
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
                for (uint32_t wi = 0; wi < L->nwarps; wi++) {
                        live += (uint32_t)__builtin_popcount(c->warps[wi].live);
                        waiting += (uint32_t)__builtin_popcount(c->warps[wi].waiting);
                }
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
                        return fault(c, NULL, PTX_ETIMEOUT, 0, -1, NULL);
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
