/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The executor's lane toolkit, shared by exec.c, exec_alu.c and exec_mem.c: operand pointers,
 * the 32-lane loop macros that compute into a temporary and commit the active lanes, frame
 * layout, and small helpers for bits, predicates and PTX's min/max.
 */
#ifndef VGPU_PTX_LANES_H
#define VGPU_PTX_LANES_H

#include <math.h>
#include <string.h>

#include "ptx/exec.h"

#define FULL 0xffffffffu

/*
 * The hot functions are built twice, for baseline x86-64 and for x86-64-v3 (AVX2, FMA, POPCNT),
 * and the loader picks one for the CPU: fmaf and popcount are then single instructions and the
 * lane loops are 256 bits wide. Not under the sanitizers, whose runtimes dislike ifuncs.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
        !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif

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

/* ---- lane loops ---- */

#define PTR(o) ((o)&OPND_CONST ? consts + ((o) & ~OPND_CONST) : regs + (o))

/*
 * copy_lanes32 - copy n bytes (a multiple of 32) in 32-byte vectors. A plain memcpy of a register
 * is expanded in 16-byte moves, whose loads stall on the 32-byte stores that produced them.
 */
typedef uint8_t lanes_v32 __attribute__((vector_size(32), may_alias, aligned(32)));

static inline void copy_lanes32(void *dst, const void *src, size_t n)
{
        for (size_t k = 0; k < n; k += 32)
                *(lanes_v32 *)((uint8_t *)dst + k) = *(const lanes_v32 *)((const uint8_t *)src + k);
}

#define COMMIT(T)                                                                                  \
        do {                                                                                       \
                T *D_ = (T *)(regs + in->o[0]);                                                    \
                if (m == FULL)                                                                     \
                        copy_lanes32(D_, R_, sizeof(R_));                                          \
                else                                                                               \
                        for (int i = 0; i < WARP; i++)                                             \
                                if (m >> i & 1)                                                    \
                                        D_[i] = R_[i];                                             \
        } while (0)

#define UN(T, EXPR)                                                                                \
        {                                                                                          \
                const T *A_ = (const T *)PTR(in->o[1]);                                            \
                T R_[WARP] __attribute__((aligned(32)));                                           \
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
                T R_[WARP] __attribute__((aligned(32)));                                           \
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
                T R_[WARP] __attribute__((aligned(32)));                                           \
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

static inline float fmin_ptx(float a, float b)
{
        if (isnan(a))
                return b;
        if (isnan(b))
                return a;
        if (a == b)
                return signbit(a) ? a : b;
        return a < b ? a : b;
}

static inline float fmax_ptx(float a, float b)
{
        if (isnan(a))
                return b;
        if (isnan(b))
                return a;
        if (a == b)
                return signbit(a) ? b : a;
        return a > b ? a : b;
}

static inline double dmin_ptx(double a, double b)
{
        if (isnan(a))
                return b;
        if (isnan(b))
                return a;
        if (a == b)
                return signbit(a) ? a : b;
        return a < b ? a : b;
}

static inline double dmax_ptx(double a, double b)
{
        if (isnan(a))
                return b;
        if (isnan(b))
                return a;
        if (a == b)
                return signbit(a) ? b : a;
        return a > b ? a : b;
}

/* ---- conversions ---- */

static inline uint64_t rd_bits(const uint8_t *p, unsigned w)
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

static inline void wr_bits(uint8_t *p, unsigned w, uint64_t v)
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

static inline int64_t sext(uint64_t v, unsigned w)
{
        unsigned sh = 64 - 8 * w;
        return sh >= 64 ? (int64_t)v : (int64_t)(v << sh) >> sh;
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

#endif
