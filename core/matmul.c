/*
 * matmul.c: GEMM through OpenBLAS's CBLAS interface (see matmul.h).
 */
#include "matmul.h"

#include <cblas.h>

#include "parallel.h"

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

/* Rows (or columns) of C per block. The blocks depend only on the shape,
 * never on the thread count: OpenBLAS picks its kernels by shape, so the
 * same blocks give the same bits on any number of threads. */
#define MATMUL_BLOCK 128

typedef struct {
    int transpose_a, transpose_b, m, n, k;
    real alpha, beta;
    const real *a, *b;
    int lda, ldb, ldc;
    real *c;
    int split_rows;      /* 1: blocks of C's rows; 0: of its columns */
} MatmulJob;

/* Block `part` of C: rows [r0, r1) take op(A)'s rows r0..r1; columns
 * [c0, c1) take op(B)'s columns c0..c1. */
static void matmul_block(void *ctx, int part, int thread) {
    const MatmulJob *j = ctx;
    size_t begin, end;
    if (j->split_rows) {
        begin = (size_t)part * MATMUL_BLOCK;
        end = begin + MATMUL_BLOCK < (size_t)j->m ? begin + MATMUL_BLOCK : (size_t)j->m;
        const real *a = j->transpose_a ? j->a + begin : j->a + begin * (size_t)j->lda;
        matmul(j->transpose_a, j->transpose_b, (int)(end - begin), j->n, j->k, j->alpha, a,
               j->lda, j->b, j->ldb, j->beta, j->c + begin * (size_t)j->ldc, j->ldc);
    } else {
        begin = (size_t)part * MATMUL_BLOCK;
        end = begin + MATMUL_BLOCK < (size_t)j->n ? begin + MATMUL_BLOCK : (size_t)j->n;
        const real *b = j->transpose_b ? j->b + begin * (size_t)j->ldb : j->b + begin;
        matmul(j->transpose_a, j->transpose_b, j->m, (int)(end - begin), j->k, j->alpha, j->a,
               j->lda, b, j->ldb, j->beta, j->c + begin, j->ldc);
    }
}

void matmul_parallel(int transpose_a, int transpose_b, int m, int n, int k,
                     real alpha, const real *a, int lda, const real *b, int ldb,
                     real beta, real *c, int ldc) {
    if (m == 0 || n == 0) return;
    MatmulJob job = {transpose_a, transpose_b, m, n, k, alpha, beta, a, b,
                     lda, ldb, ldc, c, 1};
    job.split_rows = m >= n || m >= 2 * MATMUL_BLOCK;
    int split = job.split_rows ? m : n;
    int parts = (split + MATMUL_BLOCK - 1) / MATMUL_BLOCK;
    if (parts <= 1) {
        matmul(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    parallel_for(parts, matmul_block, &job);
}
