/*
 * ref_cblas.c: row-major GEMM with plain loops (see cblas.h beside it).
 * C (m, n) = alpha op(A) op(B) + beta C; sums in double.
 */
#include "cblas.h"

#include <math.h>
#include <stdlib.h>

/* Element (i, p) of op(X) for a row-major X with leading dimension ld. */
#define OP_AT(x, transposed, ld, i, p) ((transposed) ? (x)[(size_t)(p) * (ld) + (i)] \
                                                     : (x)[(size_t)(i) * (ld) + (p)])

void cblas_dgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m,
                 int n, int k, double alpha, const double *a, int lda, const double *b, int ldb,
                 double beta, double *c, int ldc) {
    int tra = ta == CblasTrans, trb = tb == CblasTrans;
    double *row = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!row) abort();
    for (int i = 0; i < m; i++) {
        if (trb) {
            /* B^T: each element is a dot product of contiguous rows */
            for (int j = 0; j < n; j++) {
                double sum = 0;
                const double *bj = b + (size_t)j * ldb;
                for (int p = 0; p < k; p++) sum += OP_AT(a, tra, lda, i, p) * bj[p];
                row[j] = sum;
            }
        } else {
            for (int j = 0; j < n; j++) row[j] = 0;
            for (int p = 0; p < k; p++) {
                double aip = OP_AT(a, tra, lda, i, p);
                const double *bp = b + (size_t)p * ldb;
                for (int j = 0; j < n; j++) row[j] += aip * bp[j];
            }
        }
        double *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) ci[j] = alpha * row[j] + (beta == 0 ? 0 : beta * ci[j]);
    }
    free(row);
}

/* In float, each element summed over p in order with fused multiply-adds,
 * as a BLAS microkernel accumulates: the float CPU engine built on this
 * rounds like one built on OpenBLAS (not better, as a double sum would). */
void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m,
                 int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc) {
    int tra = ta == CblasTrans, trb = tb == CblasTrans;
    float *row = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!row) abort();
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) row[j] = 0;
        for (int p = 0; p < k; p++) {
            float aip = OP_AT(a, tra, lda, i, p);
            for (int j = 0; j < n; j++) row[j] = fmaf(aip, OP_AT(b, trb, ldb, p, j), row[j]);
        }
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) ci[j] = beta == 0 ? alpha * row[j] : alpha * row[j] + beta * ci[j];
    }
    free(row);
}

/* base/parallel.c keeps OpenBLAS single-threaded; plain loops have no
 * threads of their own. */
void openblas_set_num_threads(int num_threads) { (void)num_threads; }
