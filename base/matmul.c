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

/* Whether a product is cut into blocks of C's rows (else of its columns),
 * and how many blocks. */
static int split_rows(const MatmulSpec *p) { return p->m >= p->n || p->m >= 2 * MATMUL_BLOCK; }

static int block_count(const MatmulSpec *p) {
    if (p->m == 0 || p->n == 0) return 0; /* an empty product has no blocks */
    int split = split_rows(p) ? p->m : p->n;
    return (split + MATMUL_BLOCK - 1) / MATMUL_BLOCK;
}

typedef struct {
    const MatmulSpec *products;
    int count;
} MatmulJob;

/* Global block `task`, counted across the products in order: rows [r0, r1)
 * of C take op(A)'s rows r0..r1; columns [c0, c1) take op(B)'s columns. */
static void matmul_block(void *ctx, int task, int thread) {
    const MatmulJob *job = ctx;
    int i = 0;
    while (task >= block_count(&job->products[i])) task -= block_count(&job->products[i++]);
    const MatmulSpec *p = &job->products[i];
    size_t begin = (size_t)task * MATMUL_BLOCK, end;
    if (split_rows(p)) {
        end = begin + MATMUL_BLOCK < (size_t)p->m ? begin + MATMUL_BLOCK : (size_t)p->m;
        const real *a = p->transpose_a ? p->a + begin : p->a + begin * (size_t)p->lda;
        matmul(p->transpose_a, p->transpose_b, (int)(end - begin), p->n, p->k, p->alpha, a,
               p->lda, p->b, p->ldb, p->beta, p->c + begin * (size_t)p->ldc, p->ldc);
    } else {
        end = begin + MATMUL_BLOCK < (size_t)p->n ? begin + MATMUL_BLOCK : (size_t)p->n;
        const real *b = p->transpose_b ? p->b + begin * (size_t)p->ldb : p->b + begin;
        matmul(p->transpose_a, p->transpose_b, p->m, (int)(end - begin), p->k, p->alpha, p->a,
               p->lda, b, p->ldb, p->beta, p->c + begin, p->ldc);
    }
}

/* A matrix product's floating-point operations per unit of pool work
 * (parallel.h). */
#define FLOPS_PER_WORK 8.0

void matmul_parallel_many(const MatmulSpec *products, int count) {
    int tasks = 0;
    double flops = 0;
    for (int i = 0; i < count; i++) {
        tasks += block_count(&products[i]);
        flops += 2.0 * products[i].m * products[i].n * products[i].k;
    }
    MatmulJob job = {products, count};
    parallel_for_work(tasks, matmul_block, &job, flops / FLOPS_PER_WORK);
}

void matmul_parallel(int transpose_a, int transpose_b, int m, int n, int k,
                     real alpha, const real *a, int lda, const real *b, int ldb,
                     real beta, real *c, int ldc) {
    MatmulSpec product = {transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc};
    matmul_parallel_many(&product, 1);
}
