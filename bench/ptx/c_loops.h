/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PTX benchmark's C baselines: plain_* built with the project's flags, vec_* built to be
 * vectorised. Each does the same work as the kernel of the same name.
 */
#ifndef VGPU_BENCH_PTX_C_LOOPS_H
#define VGPU_BENCH_PTX_C_LOOPS_H

/* saxpy - y = a * x + y over n elements (vec_: fused multiply-adds, as the kernel). */
void plain_saxpy(int n, float a, const float *x, float *y);
void vec_saxpy(int n, float a, const float *x, float *y);

/* reduce - out[b] = sum of in[256 b .. 256 b + 255]. */
void plain_reduce(int n, const int *in, int *out);
void vec_reduce(int n, const int *in, int *out);

/* matmul - C = A * B, n x n, row-major, in k order (vec_: fused multiply-adds). */
void plain_matmul(int n, const float *A, const float *B, float *C);
void vec_matmul(int n, const float *A, const float *B, float *C);

#endif
