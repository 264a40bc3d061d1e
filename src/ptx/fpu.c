// SPDX-License-Identifier: Apache-2.0
// Scalar floating point for the rare paths of the executor: PTX rounding modifiers other than
// round-to-nearest (this file is compiled with -frounding-math, so the compiler keeps each
// operation between the fesetround calls), integer conversions, half and bfloat16 conversions.
#include <fenv.h>
#include <math.h>
#include <string.h>

#include "ptx/fpu.h"
#include "ptx/internal.h"

static int fe_mode(int rnd)
{
        switch (rnd) {
        case RND_RZ:
        case RND_RZI:
                return FE_TOWARDZERO;
        case RND_RM:
        case RND_RMI:
                return FE_DOWNWARD;
        case RND_RP:
        case RND_RPI:
                return FE_UPWARD;
        default:
                return FE_TONEAREST;
        }
}

float fpu_binop_f32(int op, float a, float b, int rnd)
{
        int old = fegetround();
        volatile float r;
        fesetround(fe_mode(rnd));
        switch (op) {
        case 0:
                r = a + b;
                break;
        case 1:
                r = a - b;
                break;
        case 2:
                r = a * b;
                break;
        default:
                r = a / b;
                break;
        }
        fesetround(old);
        return r;
}

double fpu_binop_f64(int op, double a, double b, int rnd)
{
        int old = fegetround();
        volatile double r;
        fesetround(fe_mode(rnd));
        switch (op) {
        case 0:
                r = a + b;
                break;
        case 1:
                r = a - b;
                break;
        case 2:
                r = a * b;
                break;
        default:
                r = a / b;
                break;
        }
        fesetround(old);
        return r;
}

float fpu_fma_f32(float a, float b, float c, int rnd)
{
        int old = fegetround();
        fesetround(fe_mode(rnd));
        volatile float r = fmaf(a, b, c);
        fesetround(old);
        return r;
}

double fpu_fma_f64(double a, double b, double c, int rnd)
{
        int old = fegetround();
        fesetround(fe_mode(rnd));
        volatile double r = fma(a, b, c);
        fesetround(old);
        return r;
}

float fpu_sqrt_f32(float a, int rnd)
{
        int old = fegetround();
        fesetround(fe_mode(rnd));
        volatile float r = sqrtf(a);
        fesetround(old);
        return r;
}

double fpu_sqrt_f64(double a, int rnd)
{
        int old = fegetround();
        fesetround(fe_mode(rnd));
        volatile double r = sqrt(a);
        fesetround(old);
        return r;
}

double fpu_round_int(double v, int rnd)
{
        switch (rnd) {
        case RND_RZI:
        case RND_RZ:
                return trunc(v);
        case RND_RMI:
        case RND_RM:
                return floor(v);
        case RND_RPI:
        case RND_RP:
                return ceil(v);
        case RND_RNA:
                return round(v);
        default:
                return nearbyint(v); /* the default mode: ties to even */
        }
}

float fpu_f64_to_f32(double v, int rnd)
{
        int old = fegetround();
        fesetround(fe_mode(rnd));
        volatile float r = (float)v;
        fesetround(old);
        return r;
}

float fpu_int_to_f32(uint64_t v, int sgn, int rnd)
{
        int old = fegetround();
        fesetround(fe_mode(rnd));
        volatile float r = sgn ? (float)(int64_t)v : (float)v;
        fesetround(old);
        return r;
}

double fpu_int_to_f64(uint64_t v, int sgn, int rnd)
{
        int old = fegetround();
        fesetround(fe_mode(rnd));
        volatile double r = sgn ? (double)(int64_t)v : (double)v;
        fesetround(old);
        return r;
}

uint16_t fpu_to_f16(double v, int rz)
{
        uint16_t sign = signbit(v) ? 0x8000u : 0;
        if (isnan(v))
                return (uint16_t)(sign | 0x7e00u);
        double a = fabs(v);
        if (isinf(v))
                return (uint16_t)(sign | 0x7c00u);
        /* the spacing of halves around a: 2^-24 below 2^-14, else 2^(exponent - 10) */
        int e;
        frexp(a, &e); /* a = m * 2^e, 0.5 <= m < 1 */
        int qexp = e - 1 - 10;
        if (qexp < -24)
                qexp = -24;
        double q = ldexp(a, -qexp); /* exact: a power-of-two scaling */
        q = rz ? trunc(q) : nearbyint(q);
        double r = ldexp(q, qexp);
        if (r >= 65520.0 || (rz && r > 65504.0))
                return (uint16_t)(sign | (rz ? 0x7bffu : 0x7c00u));
        if (r == 0)
                return sign;
        if (r < ldexp(1.0, -14))
                return (uint16_t)(sign | (uint16_t)ldexp(r, 24));
        frexp(r, &e);
        uint32_t hexp = (uint32_t)(e - 1 + 15);
        uint32_t mant = (uint32_t)(ldexp(r, -(e - 1) + 10)) - 1024u;
        return (uint16_t)(sign | hexp << 10 | mant);
}

float fpu_f16_to_f32(uint16_t h)
{
        uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
        uint32_t exp = (h >> 10) & 0x1fu;
        uint32_t mant = h & 0x3ffu;
        uint32_t x;
        if (exp == 0x1f) {
                x = sign | 0x7f800000u | (mant << 13);
        } else if (exp == 0) {
                if (!mant) {
                        x = sign;
                } else {
                        float f = ldexpf((float)mant, -24);
                        memcpy(&x, &f, 4);
                        x |= sign;
                }
        } else {
                x = sign | ((exp + 112u) << 23) | (mant << 13);
        }
        float f;
        memcpy(&f, &x, 4);
        return f;
}

uint16_t fpu_f32_to_bf16(float v, int rz)
{
        uint32_t x;
        memcpy(&x, &v, 4);
        if ((x & 0x7fffffffu) > 0x7f800000u)
                return (uint16_t)((x >> 16) | 0x40u);
        if (!rz)
                x += 0x7fffu + ((x >> 16) & 1u);
        return (uint16_t)(x >> 16);
}

float fpu_bf16_to_f32(uint16_t h)
{
        uint32_t x = (uint32_t)h << 16;
        float f;
        memcpy(&f, &x, 4);
        return f;
}
