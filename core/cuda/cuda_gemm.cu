/*
 * cuda_gemm.cu: row-major matrix products through cuBLAS.
 *
 * cuBLAS is column-major. A row-major (m, n) matrix with leading dimension
 * ldc is the column-major (n, m) matrix C^T with the same leading
 * dimension, and C^T = op(B)^T op(A)^T: so the row-major product is one
 * cuBLAS call with the operands swapped, each keeping its own transpose
 * flag.
 */
#include "cuda_kernels.cuh"

#include "cuda_check.cuh"

int gemm(cublasHandle_t handle, int tf32, int transpose_a, int transpose_b, int m, int n,
         int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta,
         float *c, int ldc) {
    if (m == 0 || n == 0) return 0;
    cublasOperation_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasComputeType_t compute = tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    CUDA_CHECK(cublasGemmEx(handle, op_b, op_a, n, m, k, &alpha, b, CUDA_R_32F, ldb, a,
                            CUDA_R_32F, lda, &beta, c, CUDA_R_32F, ldc, compute,
                            CUBLAS_GEMM_DEFAULT));
    return 0;
}
