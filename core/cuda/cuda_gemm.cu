/*
 * cuda_gemm.cu: row-major matrix products through cuBLAS, in fp32, TF32 or
 * bf16 (cuda_engine.h's CudaPrecision).
 *
 * cuBLAS is column-major. A row-major (m, n) matrix with leading dimension
 * ldc is the column-major (n, m) matrix C^T with the same leading
 * dimension, and C^T = op(B)^T op(A)^T: so the row-major product is one
 * cuBLAS call with the operands swapped, each keeping its own transpose
 * flag.
 *
 * bf16: both operands are first rounded to bf16 (round to nearest even)
 * into packed copies in gc->work, then multiplied on the tensor cores with
 * fp32 accumulation into the fp32 C. The parameters, activations, gradients
 * and optimizer stay fp32: only the inputs of the products are rounded.
 */
#include <cuda_bf16.h>

#include "cuda_check.cuh"
#include "cuda_engine.h"
#include "cuda_kernels.cuh"

/* out (rows, cols) packed = bf16(in (rows, cols) with leading dimension ld). */
__global__ static void pack_bf16_kernel(__nv_bfloat16 *out, const float *in, int rows, int cols,
                                        int ld) {
    size_t count = (size_t)rows * cols;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
        size_t r = i / cols, c = i % cols;
        out[i] = __float2bfloat16_rn(in[r * ld + c]);
    }
}

/* Same for a packed input (ld == cols), four values per thread. */
__global__ static void pack_bf16_vec4_kernel(__nv_bfloat162 *out, const float4 *in,
                                             size_t count4) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count4; i += stride) {
        float4 v = in[i];
        out[2 * i] = __floats2bfloat162_rn(v.x, v.y);
        out[2 * i + 1] = __floats2bfloat162_rn(v.z, v.w);
    }
}

static int pack_bf16(__nv_bfloat16 *out, const float *in, int rows, int cols, int ld,
                     cudaStream_t stream) {
    if (rows == 0 || cols == 0) return 0;
    size_t count = (size_t)rows * cols;
    int threads = 256;
    if (ld == cols && count % 4 == 0 && ((size_t)in % 16) == 0) {
        size_t count4 = count / 4;
        int blocks = (int)((count4 + threads - 1) / threads);
        if (blocks > 8192) blocks = 8192;
        pack_bf16_vec4_kernel<<<blocks, threads, 0, stream>>>((__nv_bfloat162 *)out,
                                                              (const float4 *)in, count4);
    } else {
        int blocks = (int)((count + threads - 1) / threads);
        if (blocks > 8192) blocks = 8192;
        pack_bf16_kernel<<<blocks, threads, 0, stream>>>(out, in, rows, cols, ld);
    }
    return cuda_status(cudaGetLastError(), "pack_bf16");
}

int round_bf16(__nv_bfloat16 *out, const float *in, size_t count, cudaStream_t stream) {
    /* rows of at most 2^30 values (pack_bf16 takes int sizes), four at a
     * time but for the last few */
    const size_t row = (size_t)1 << 30;
    for (size_t done = 0; done < count;) {
        size_t left = count - done, part = left < row ? left : row;
        if (part > 4) part -= part % 4;
        if (pack_bf16(out + done, in + done, 1, (int)part, (int)part, stream)) return -1;
        done += part;
    }
    return 0;
}

/* Bytes of a packed bf16 (rows, cols) copy, rounded up to 256 so the next
 * copy starts aligned for the tensor cores. */
static size_t packed_bytes(int rows, int cols) {
    size_t bytes = (size_t)rows * cols * sizeof(__nv_bfloat16);
    return (bytes + 255) / 256 * 256;
}

/* Grows *buffer (*capacity bytes) to at least bytes, plus a quarter when
 * `spare`, waiting for the stream first (the old buffer may still be read);
 * its contents are lost. */
static int grow_buffer(void **buffer, size_t *capacity, size_t bytes, int spare,
                       cudaStream_t stream, const char *what) {
    if (bytes <= *capacity) return 0;
    if (cuda_status(cudaStreamSynchronize(stream), what)) return -1;
    cudaFree(*buffer);
    *buffer = NULL;
    *capacity = 0;
    size_t grown = spare ? bytes + bytes / 4 : bytes;
    if (cuda_status(cudaMalloc(buffer, grown), what)) return -1;
    *capacity = grown;
    return 0;
}

/* Grows gc->work to at least bytes. */
static int work_reserve(GemmContext *gc, size_t bytes) {
    return grow_buffer(&gc->work, &gc->work_bytes, bytes, 1, gc->stream, "gemm work buffer");
}

void *gemm_work(GemmContext *gc, size_t bytes) {
    return work_reserve(gc, bytes) ? NULL : gc->work;
}

void gemm_context_free(GemmContext *gc) {
    profile_free(gc->profile);
    gc->profile = NULL;
    cudaFree(gc->keep);
    gc->keep = NULL;
    gc->keep_bytes = 0;
    cudaFree(gc->work);
    gc->work = NULL;
    gc->work_bytes = 0;
}

/* C = alpha op(A) op(B) + beta C from bf16 operands, C of type c_type
 * (fp32 or bf16), fp32 accumulation. */
static int gemm_bf16_into(GemmContext *gc, int transpose_a, int transpose_b, int m, int n, int k,
                          float alpha, const __nv_bfloat16 *a16, int a_cols,
                          const __nv_bfloat16 *b16, int b_cols, float beta, void *c,
                          cudaDataType_t c_type, int ldc) {
    if (m == 0 || n == 0) return 0;
    cublasOperation_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    profile_begin(gc->profile, PROFILE_GEMM, gc->stream);
    CUDA_CHECK(cublasGemmEx(gc->handle, op_b, op_a, n, m, k, &alpha, b16, CUDA_R_16BF, b_cols,
                            a16, CUDA_R_16BF, a_cols, &beta, c, c_type, ldc, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
    profile_end(gc->profile, gc->stream);
    return 0;
}

int gemm_bf16(GemmContext *gc, int transpose_a, int transpose_b, int m, int n, int k,
              float alpha, const __nv_bfloat16 *a16, int a_cols, const __nv_bfloat16 *b16,
              int b_cols, float beta, float *c, int ldc) {
    return gemm_bf16_into(gc, transpose_a, transpose_b, m, n, k, alpha, a16, a_cols, b16, b_cols,
                          beta, c, CUDA_R_32F, ldc);
}

int gemm_bf16_out16(GemmContext *gc, int transpose_a, int transpose_b, int m, int n, int k,
                    const __nv_bfloat16 *a16, int a_cols, const __nv_bfloat16 *b16, int b_cols,
                    __nv_bfloat16 *c16, int ldc) {
    return gemm_bf16_into(gc, transpose_a, transpose_b, m, n, k, 1.0f, a16, a_cols, b16, b_cols,
                          0.0f, c16, CUDA_R_16BF, ldc);
}

int gemm(GemmContext *gc, int transpose_a, int transpose_b, int m, int n, int k, float alpha,
         const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    if (m == 0 || n == 0) return 0;
    if (gc->precision != CUDA_BF16 || k == 0) {
        cublasOperation_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
        cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
        cublasComputeType_t compute =
            gc->precision == CUDA_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
        profile_begin(gc->profile, PROFILE_GEMM, gc->stream);
        CUDA_CHECK(cublasGemmEx(gc->handle, op_b, op_a, n, m, k, &alpha, b, CUDA_R_32F, ldb, a,
                                CUDA_R_32F, lda, &beta, c, CUDA_R_32F, ldc, compute,
                                CUBLAS_GEMM_DEFAULT));
        profile_end(gc->profile, gc->stream);
        return 0;
    }
    /* the stored shapes: A is (m, k), or (k, m) when transposed; B likewise */
    int a_rows = transpose_a ? k : m, a_cols = transpose_a ? m : k;
    int b_rows = transpose_b ? n : k, b_cols = transpose_b ? k : n;
    size_t a_bytes = packed_bytes(a_rows, a_cols);
    if (work_reserve(gc, a_bytes + packed_bytes(b_rows, b_cols))) return -1;
    __nv_bfloat16 *a16 = (__nv_bfloat16 *)gc->work;
    __nv_bfloat16 *b16 = (__nv_bfloat16 *)((char *)gc->work + a_bytes);
    profile_begin(gc->profile, PROFILE_PACK, gc->stream);
    if (pack_bf16(a16, a, a_rows, a_cols, lda, gc->stream) ||
        pack_bf16(b16, b, b_rows, b_cols, ldb, gc->stream))
        return -1;
    profile_end(gc->profile, gc->stream);
    return gemm_bf16(gc, transpose_a, transpose_b, m, n, k, alpha, a16, a_cols, b16,
                            b_cols, beta, c, ldc);
}

__nv_bfloat16 *gemm_keep(GemmContext *gc, size_t count) {
    if (grow_buffer(&gc->keep, &gc->keep_bytes, count * sizeof(__nv_bfloat16), 0, gc->stream,
                    "gemm keep buffer"))
        return NULL;
    return (__nv_bfloat16 *)gc->keep;
}

int linear_backward_rounded(GemmContext *gc, int M, int out, int in,
                            const __nv_bfloat16 *dy16, const __nv_bfloat16 *w16,
                            const __nv_bfloat16 *x16, float *dx, float beta_dx, float *dw) {
    if (M == 0) return 0;
    /* dx (M, in) = beta dx + dy (M, out) W (out, in); dW (out, in) += dy^T x */
    return gemm_bf16(gc, 0, 0, M, in, out, 1.0f, dy16, out, w16, in, beta_dx, dx, in) ||
           gemm_bf16(gc, 1, 0, out, in, M, 1.0f, dy16, out, x16, in, 1.0f, dw, in);
}

int linear_backward_rounded_out16(GemmContext *gc, int M, int out, int in,
                                  const __nv_bfloat16 *dy16, const __nv_bfloat16 *w16,
                                  const __nv_bfloat16 *x16, __nv_bfloat16 *dx16, float *dw) {
    if (M == 0) return 0;
    return gemm_bf16_out16(gc, 0, 0, M, in, out, dy16, out, w16, in, dx16, in) ||
           gemm_bf16(gc, 1, 0, out, in, M, 1.0f, dy16, out, x16, in, 1.0f, dw, in);
}

const __nv_bfloat16 *keep_bf16(GemmContext *gc, const float *x, size_t count) {
    __nv_bfloat16 *x16 = gemm_keep(gc, count);
    if (!x16) return NULL;
    profile_begin(gc->profile, PROFILE_PACK, gc->stream);
    if (round_bf16(x16, x, count, gc->stream)) return NULL;
    profile_end(gc->profile, gc->stream);
    return x16;
}

int linear_backward(GemmContext *gc, int M, int out, int in, const float *dy, const float *w,
                    const float *x, float *dx, float beta_dx, float *dw) {
    return gemm(gc, 0, 0, M, in, out, 1.0f, dy, out, w, in, beta_dx, dx, in) ||
           gemm(gc, 1, 0, out, in, M, 1.0f, dy, out, x, in, 1.0f, dw, in);
}
