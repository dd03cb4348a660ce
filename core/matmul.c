/*
 * matmul.c: GEMM through OpenBLAS's CBLAS interface (see matmul.h).
 */
#include "matmul.h"

#include <cblas.h>

void matmul(int transpose_a, int transpose_b, int m, int n, int k,
            real alpha, const real *a, int lda, const real *b, int ldb,
            real beta, real *c, int ldc) {
    if (m == 0 || n == 0) return;
    enum CBLAS_TRANSPOSE ta = transpose_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = transpose_b ? CblasTrans : CblasNoTrans;
#ifdef SPIRAL_DOUBLE
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}
