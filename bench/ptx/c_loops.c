// SPDX-License-Identifier: Apache-2.0
// The C baselines of the PTX benchmark: the same work as the kernels, as plain C loops. Built
// twice: as is, with the project's flags (plain_*: a * x + y as a C programmer writes it), and
// vectorised (c_loops_vec.c: -O3, x86-64-v3 clone, fused multiply-adds like the kernels).
#include <math.h>

#include "c_loops.h"

#ifndef C_LOOPS_PREFIX
#define C_LOOPS_PREFIX(name) plain_##name
#define HOT
#define MADD(a, b, c) ((a) * (b) + (c))
#else
#define MADD(a, b, c) fmaf(a, b, c)
#endif

HOT void C_LOOPS_PREFIX(saxpy)(int n, float a, const float *x, float *y)
{
        for (int i = 0; i < n; i++)
                y[i] = MADD(a, x[i], y[i]);
}

HOT void C_LOOPS_PREFIX(reduce)(int n, const int *in, int *out)
{
        for (int b = 0; b < n / 256; b++) {
                int s = 0;
                for (int i = 0; i < 256; i++)
                        s += in[b * 256 + i];
                out[b] = s;
        }
}

HOT void C_LOOPS_PREFIX(matmul)(int n, const float *A, const float *B, float *C)
{
        for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                        float acc = 0;
                        for (int k = 0; k < n; k++)
                                acc = MADD(A[i * n + k], B[k * n + j], acc);
                        C[i * n + j] = acc;
                }
        }
}
