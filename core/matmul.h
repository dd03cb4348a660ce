/*
 * matmul.h: the one place that calls BLAS.
 *
 * C (m, n) = alpha * op(A) op(B) + beta * C, row-major, op = transpose or
 * not. Calls cblas_sgemm when real is float, cblas_dgemm when double.
 */
#ifndef SPIRAL_MATMUL_H
#define SPIRAL_MATMUL_H

#include "real.h"

void matmul(int transpose_a, int transpose_b, int m, int n, int k,
            real alpha, const real *a, int lda, const real *b, int ldb,
            real beta, real *c, int ldc);

#endif
