/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scalar floating-point helpers of the executor: directed rounding (fpu.c is compiled with
 * -frounding-math and switches the FPU rounding mode around each operation), conversions with
 * PTX's rounding modifiers and saturation, and IEEE half and bfloat16 conversions.
 */
#ifndef VGPU_PTX_FPU_H
#define VGPU_PTX_FPU_H

#include <stdint.h>

/* fpu_binop_f32/f64 - a op b (op: 0 add, 1 sub, 2 mul, 3 div) rounded per rnd (RND_*). */
float fpu_binop_f32(int op, float a, float b, int rnd);
double fpu_binop_f64(int op, double a, double b, int rnd);

/* fpu_fma_f32/f64 - a * b + c with one rounding per rnd. */
float fpu_fma_f32(float a, float b, float c, int rnd);
double fpu_fma_f64(double a, double b, double c, int rnd);

/* fpu_sqrt_f32/f64 - square root rounded per rnd. */
float fpu_sqrt_f32(float a, int rnd);
double fpu_sqrt_f64(double a, int rnd);

/* fpu_round_int - round to an integral value per an integer rounding (RND_RNI...) or RND_RN.. */
double fpu_round_int(double v, int rnd);

/* fpu_f64_to_f32 - narrow with rounding rnd (RND_RN, RZ, RM, RP). */
float fpu_f64_to_f32(double v, int rnd);

/* fpu_int_to_f32/f64 - convert a 64-bit integer (signed when sgn) with rounding rnd. */
float fpu_int_to_f32(uint64_t v, int sgn, int rnd);
double fpu_int_to_f64(uint64_t v, int sgn, int rnd);

/* IEEE binary16 and bfloat16 bits from/to float; to-half rounds once, from a double, to nearest
 * even (or toward zero when rz), with overflow to infinity; NaN stays NaN. */
uint16_t fpu_to_f16(double v, int rz);
float fpu_f16_to_f32(uint16_t h);
uint16_t fpu_f32_to_bf16(float v, int rz);
float fpu_bf16_to_f32(uint16_t h);

#endif
