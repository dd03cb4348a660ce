/*
 * cblas.h (tests/cuda/ref): the two CBLAS calls base/matmul.c makes, for
 * building the CPU reference engine on a machine without OpenBLAS headers
 * (the GPU machine). ref_cblas.c implements them with plain loops; the CPU
 * engine's results are then the same products, summed in another order.
 */
#ifndef SPIRAL_TEST_REF_CBLAS_H
#define SPIRAL_TEST_REF_CBLAS_H

enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m,
                 int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc);
void cblas_dgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m,
                 int n, int k, double alpha, const double *a, int lda, const double *b, int ldb,
                 double beta, double *c, int ldc);

#endif
