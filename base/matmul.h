/*
 * matmul.h: the one place that calls BLAS.
 *
 * C (m, n) = alpha * op(A) op(B) + beta * C, row-major, op = transpose or
 * not. Calls cblas_sgemm when real is float, cblas_dgemm when double.
 */
#ifndef SPIRAL_MATMUL_H
#define SPIRAL_MATMUL_H

#include "real.h"

/* One BLAS call on the calling thread. */
void matmul(int transpose_a, int transpose_b, int m, int n, int k,
            real alpha, const real *a, int lda, const real *b, int ldb,
            real beta, real *c, int ldc);

/* The same product on the thread pool (parallel.h): one BLAS call per
 * block of 128 rows of C (or of 128 columns, when C has fewer than 256 rows
 * and more columns than rows). The blocks depend on the shape only, so the
 * result is the same for any thread count. */
void matmul_parallel(int transpose_a, int transpose_b, int m, int n, int k,
                     real alpha, const real *a, int lda, const real *b, int ldb,
                     real beta, real *c, int ldc);

/* One product C (m, n) = alpha op(A) op(B) + beta C, as matmul's arguments. */
typedef struct {
    int transpose_a, transpose_b, m, n, k;
    real alpha;
    const real *a;
    int lda;
    const real *b;
    int ldb;
    real beta;
    real *c;
    int ldc;
} MatmulSpec;

/* Independent products (no C overlaps another's A, B or C) on the pool in
 * one parallel_for: the blocks of all of them, each cut as matmul_parallel
 * cuts it, so the results are the same as count calls of matmul_parallel
 * with one synchronization instead of count. Empty products are skipped. */
void matmul_parallel_many(const MatmulSpec *products, int count);

#endif
