/*
 * cuda_pointwise.cu: the elementwise kernels: embedding gather and its
 * scatter-add, SwiGLU forward and backward, and vector arithmetic.
 */
#include "cuda_kernels.cuh"

#include <math.h>

#include "cuda_check.cuh"

/* x[r][k] = table[tokens[r]][k] */
static __global__ void embedding_forward_kernel(float *x, const int *tokens, const float *table,
                                                int M, int d) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)M * d) return;
    size_t r = e / d, k = e % d;
    x[e] = table[(size_t)tokens[r] * d + k];
}

int embedding_forward(float *x, const int *tokens, const float *table, int M, int d,
                      cudaStream_t stream) {
    size_t count = (size_t)M * d;
    if (count == 0) return 0;
    embedding_forward_kernel<<<cuda_blocks(count), CUDA_THREADS, 0, stream>>>(x, tokens, table,
                                                                             M, d);
    return cuda_launched("embedding_forward_kernel");
}

/* Block (present token p, column block): dtable[v][k] += dx[r][k] for the
 * rows r of token v, in row order, as the CPU adds them. */
static __global__ void embedding_backward_kernel(float *dtable, const float *dx,
                                                 const int *present, const int *token_start,
                                                 const int *rows_by_token,
                                                 const int *present_count, int d) {
    int p = blockIdx.x, k = blockIdx.y * blockDim.x + threadIdx.x;
    if (p >= *present_count || k >= d) return;
    float *out = dtable + (size_t)present[p] * d + k;
    float sum = *out;
    for (int at = token_start[p]; at < token_start[p + 1]; at++)
        sum += dx[(size_t)rows_by_token[at] * d + k];
    *out = sum;
}

int embedding_backward(float *dtable, const float *dx, const int *present,
                       const int *token_start, const int *rows_by_token,
                       const int *present_count, int max_present, int d, cudaStream_t stream) {
    if (max_present == 0) return 0;
    dim3 grid((unsigned)max_present, cuda_blocks((size_t)d));
    embedding_backward_kernel<<<grid, CUDA_THREADS, 0, stream>>>(
        dtable, dx, present, token_start, rows_by_token, present_count, d);
    return cuda_launched("embedding_backward_kernel");
}

/* The grid of a row-wise kernel over (M, F): x covers the F columns, y
 * the rows (each block of y strides over rows by gridDim.y), so no thread
 * divides its index. */
static dim3 row_grid(int M, int F) {
    unsigned rows = (unsigned)(M < 65535 ? M : 65535);
    return dim3((unsigned)((F + CUDA_THREADS - 1) / CUDA_THREADS), rows);
}

/* SwiGLU of one column, m = silu(a) c, silu(a) = a s, s = sigmoid(a); and
 * its gradient given g = dm: da = g c s (1 + a (1 - s)), dc = g a s. Every
 * kernel below computes them through these two, so the fp32 and bf16
 * kernels round alike. */
static __device__ __forceinline__ float swiglu_value(float a, float c) {
    float s = 1.0f / (1.0f + expf(-a));
    return a * s * c;
}

static __device__ __forceinline__ void swiglu_gradient(float g, float a, float c, float *da,
                                                       float *dc) {
    float s = 1.0f / (1.0f + expf(-a));
    *da = g * c * s * (1.0f + a * (1.0f - s));
    *dc = g * (a * s);
}

/* m = swiglu_value(a, c) per column; ac rows are [a | c] (fp32, or bf16
 * as the bf16 product writes them). */
template <typename T, typename In>
static __global__ void swiglu_forward_kernel(T *m, const In *ac, int M, int F) {
    int f = blockIdx.x * blockDim.x + threadIdx.x;
    if (f >= F) return;
    for (size_t r = blockIdx.y; r < (size_t)M; r += gridDim.y)
        store_as(m + r * F + f, swiglu_value(as_float(ac[r * 2 * F + f]),
                                             as_float(ac[r * 2 * F + F + f])));
}

template <typename T, typename In>
static int launch_swiglu_forward(T *m, const In *ac, int M, int F, cudaStream_t stream) {
    if ((size_t)M * F == 0) return 0;
    swiglu_forward_kernel<T, In><<<row_grid(M, F), CUDA_THREADS, 0, stream>>>(m, ac, M, F);
    return cuda_launched("swiglu_forward_kernel");
}

int swiglu_forward(float *m, const float *ac, int M, int F, cudaStream_t stream) {
    return launch_swiglu_forward(m, ac, M, F, stream);
}

/* da, dc = swiglu_gradient(dm, a, c) per column, written [da | dc]. */
template <typename T, typename G, typename In>
static __global__ void swiglu_backward_kernel(T *dac, const G *dm, const In *ac, int M, int F) {
    int f = blockIdx.x * blockDim.x + threadIdx.x;
    if (f >= F) return;
    for (size_t r = blockIdx.y; r < (size_t)M; r += gridDim.y) {
        float da, dc;
        swiglu_gradient(as_float(dm[r * F + f]), as_float(ac[r * 2 * F + f]),
                        as_float(ac[r * 2 * F + F + f]), &da, &dc);
        store_as(dac + r * 2 * F + f, da);
        store_as(dac + r * 2 * F + F + f, dc);
    }
}

template <typename T, typename G, typename In>
static int launch_swiglu_backward(T *dac, const G *dm, const In *ac, int M, int F,
                                  cudaStream_t stream) {
    if ((size_t)M * F == 0) return 0;
    swiglu_backward_kernel<T, G, In><<<row_grid(M, F), CUDA_THREADS, 0, stream>>>(dac, dm, ac,
                                                                                  M, F);
    return cuda_launched("swiglu_backward_kernel");
}

int swiglu_backward(float *dac, const float *dm, const float *ac, int M, int F,
                    cudaStream_t stream) {
    return launch_swiglu_backward(dac, dm, ac, M, F, stream);
}

/* The grid of the W-column bf16 kernels: x covers the F / W column groups,
 * y strides over rows (at most 8192 blocks of rows, so that a block has
 * more than one row's work at large M). */
static dim3 wide_grid(int M, int F, int W) {
    unsigned rows = (unsigned)(M < 8192 ? M : 8192);
    return dim3((unsigned)((F / W + CUDA_THREADS - 1) / CUDA_THREADS), rows);
}

/* swiglu_forward_kernel in bf16, W columns a thread (F % W == 0). */
template <int W>
static __global__ void swiglu_forward_bf16_wide_kernel(__nv_bfloat16 *m, const __nv_bfloat16 *ac,
                                                       int M, int F) {
    int f = W * (blockIdx.x * blockDim.x + threadIdx.x);
    if (f >= F) return;
    for (size_t r = blockIdx.y; r < (size_t)M; r += gridDim.y) {
        float a[W], c[W], out[W];
        load_values<W>(a, ac + r * 2 * F + f);
        load_values<W>(c, ac + r * 2 * F + F + f);
#pragma unroll
        for (int k = 0; k < W; k++) out[k] = swiglu_value(a[k], c[k]);
        store_values<W>(m + r * F + f, out);
    }
}

/* swiglu_backward_kernel in bf16 (dm too), W columns a thread. */
template <int W>
static __global__ void swiglu_backward_bf16_wide_kernel(__nv_bfloat16 *dac,
                                                        const __nv_bfloat16 *dm,
                                                        const __nv_bfloat16 *ac, int M, int F) {
    int f = W * (blockIdx.x * blockDim.x + threadIdx.x);
    if (f >= F) return;
    for (size_t r = blockIdx.y; r < (size_t)M; r += gridDim.y) {
        float g[W], a[W], c[W], da[W], dc[W];
        load_values<W>(g, dm + r * F + f);
        load_values<W>(a, ac + r * 2 * F + f);
        load_values<W>(c, ac + r * 2 * F + F + f);
#pragma unroll
        for (int k = 0; k < W; k++) swiglu_gradient(g[k], a[k], c[k], &da[k], &dc[k]);
        store_values<W>(dac + r * 2 * F + f, da);
        store_values<W>(dac + r * 2 * F + F + f, dc);
    }
}

int swiglu_forward_bf16(__nv_bfloat16 *m, const __nv_bfloat16 *ac, int M, int F,
                        cudaStream_t stream) {
    if ((size_t)M * F == 0) return 0;
    if (F % 4 == 0) {
        swiglu_forward_bf16_wide_kernel<4><<<wide_grid(M, F, 4), CUDA_THREADS, 0, stream>>>(
            m, ac, M, F);
        return cuda_launched("swiglu_forward_bf16_wide_kernel");
    }
    if (F % 2 == 0) {
        swiglu_forward_bf16_wide_kernel<2><<<wide_grid(M, F, 2), CUDA_THREADS, 0, stream>>>(
            m, ac, M, F);
        return cuda_launched("swiglu_forward_bf16_wide_kernel");
    }
    return launch_swiglu_forward(m, ac, M, F, stream);
}

int swiglu_backward_bf16(__nv_bfloat16 *dac, const __nv_bfloat16 *dm, const __nv_bfloat16 *ac,
                         int M, int F, cudaStream_t stream) {
    if ((size_t)M * F == 0) return 0;
    if (F % 4 == 0) {
        swiglu_backward_bf16_wide_kernel<4><<<wide_grid(M, F, 4), CUDA_THREADS, 0, stream>>>(
            dac, dm, ac, M, F);
        return cuda_launched("swiglu_backward_bf16_wide_kernel");
    }
    if (F % 2 == 0) {
        swiglu_backward_bf16_wide_kernel<2><<<wide_grid(M, F, 2), CUDA_THREADS, 0, stream>>>(
            dac, dm, ac, M, F);
        return cuda_launched("swiglu_backward_bf16_wide_kernel");
    }
    return launch_swiglu_backward(dac, dm, ac, M, F, stream);
}

/* y op= x for the four vector operations. */
enum { OP_ADD, OP_SUB, OP_NEGATE, OP_NAN };

static __global__ void vector_kernel(float *y, const float *a, const float *b, size_t count,
                                     int op) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= count) return;
    switch (op) {
    case OP_ADD: y[e] += a[e]; break;
    case OP_SUB: y[e] = a[e] - b[e]; break;
    case OP_NEGATE: y[e] = -a[e]; break;
    default: y[e] = __int_as_float(0x7fc07fc0); break; /* NaN as a float and as two bf16 */
    }
}

static int vector_op(float *y, const float *a, const float *b, size_t count, int op,
                     cudaStream_t stream) {
    if (count == 0) return 0;
    vector_kernel<<<cuda_blocks(count), CUDA_THREADS, 0, stream>>>(y, a, b, count, op);
    return cuda_launched("vector_kernel");
}

int vector_add(float *y, const float *x, size_t count, cudaStream_t stream) {
    return vector_op(y, x, NULL, count, OP_ADD, stream);
}
int vector_sub(float *y, const float *a, const float *b, size_t count, cudaStream_t stream) {
    return vector_op(y, a, b, count, OP_SUB, stream);
}
int vector_negate(float *y, const float *x, size_t count, cudaStream_t stream) {
    return vector_op(y, x, NULL, count, OP_NEGATE, stream);
}
int vector_fill_nan(float *x, size_t count, cudaStream_t stream) {
    return vector_op(x, NULL, NULL, count, OP_NAN, stream);
}

/* y_r[k] = a_r[k] + b_r[k] where flag[r]; one block per row (rows whose
 * flag is 0 return at once), its threads along the row. */
static __global__ void rows_add_where_kernel(float *y, const float *a, const float *b,
                                             const int *flag, int d) {
    size_t row = blockIdx.x;
    if (!flag[row]) return;
    size_t at = row * d;
    for (int k = threadIdx.x; k < d; k += blockDim.x) y[at + k] = a[at + k] + b[at + k];
}

int rows_add_where(float *y, const float *a, const float *b, const int *flag, size_t rows, int d,
                   cudaStream_t stream) {
    if (rows == 0 || d == 0) return 0;
    rows_add_where_kernel<<<(unsigned)rows, 128, 0, stream>>>(y, a, b, flag, d);
    return cuda_launched("rows_add_where_kernel");
}
