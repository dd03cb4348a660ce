/*
 * cuda_loss.cu: fused cross-entropy (core/layers.h): one block per row
 * computes the row's log-sum-exp (in one online pass) and loss; a one-block
 * kernel sums the rows' losses in a fixed order; the backward overwrites
 * the logits with their gradient, scale (softmax - onehot), so the (M, V)
 * matrix exists once: in fp32, or in bf16 precision in bf16 (as the head's
 * product writes it). A training step in bf16 does both at once
 * (crossentropy_train, at the end of the file): each row read once into
 * shared memory, its loss and gradient computed from there.
 */
#include "cuda_kernels.cuh"

#include <math.h>

#include "cuda_check.cuh"

enum { LOSS_THREADS = 256, SUM_THREADS = 1024 };

/* Block-wide sum over `threads` threads (tree order fixed). */
static __device__ double block_sum(double x, double *shared, int threads) {
    shared[threadIdx.x] = x;
    __syncthreads();
    for (int half = threads / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    double result = shared[0];
    __syncthreads();
    return result;
}

/* lse_r = log sum_c exp(logits_rc); row_loss_r = lse_r - logits[r][target_r],
 * or 0 without a target. One block per row, one pass over it: each thread
 * keeps an online (max m, sum s of exp(x - m)) of its columns, rescaling s
 * when m grows; the threads' pairs are combined in double in a fixed tree:
 * (m, s) + (m', s') = (M, s e^(m - M) + s' e^(m' - M)), M = max(m, m'). */
static __device__ __forceinline__ void online_add(float *m, float *sum, float x) {
    if (x > *m) {
        *sum = *sum * expf(*m - x) + 1.0f; /* expf(-inf) = 0 for the first column */
        *m = x;
    } else {
        *sum += expf(x - *m);
    }
}

template <typename T>
static __global__ void crossentropy_row_kernel(double *row_loss, double *lse, const T *logits,
                                               const int *targets, int V) {
    __shared__ float max_shared[LOSS_THREADS];
    __shared__ double sum_shared[LOSS_THREADS];
    size_t r = blockIdx.x;
    const T *row = logits + r * V;
    float m = -INFINITY, sum = 0.0f;
    if (sizeof(T) == 2 && V % 4 == 0) {
        /* bf16 rows 8-byte aligned: four logits a load, in two independent
         * (max, sum) pairs (the even and the odd columns) merged after */
        const uint2 *words = (const uint2 *)row;
        float m_odd = -INFINITY, sum_odd = 0.0f;
        for (int q = threadIdx.x; q < V / 4; q += LOSS_THREADS) {
            float x[4];
            bf16x4_to_floats(x, words[q]);
            online_add(&m, &sum, x[0]);
            online_add(&m_odd, &sum_odd, x[1]);
            online_add(&m, &sum, x[2]);
            online_add(&m_odd, &sum_odd, x[3]);
        }
        float top = fmaxf(m, m_odd);
        if (top > -INFINITY) {
            sum = (m > -INFINITY ? sum * expf(m - top) : 0.0f) +
                  (m_odd > -INFINITY ? sum_odd * expf(m_odd - top) : 0.0f);
            m = top;
        }
    } else {
        for (int c = threadIdx.x; c < V; c += LOSS_THREADS) online_add(&m, &sum, as_float(row[c]));
    }
    max_shared[threadIdx.x] = m;
    sum_shared[threadIdx.x] = sum;
    __syncthreads();
    for (int half = LOSS_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            float m1 = max_shared[threadIdx.x], m2 = max_shared[threadIdx.x + half];
            float top = fmaxf(m1, m2);
            double s1 = m1 == -INFINITY ? 0.0 : sum_shared[threadIdx.x] * exp((double)(m1 - top));
            double s2 = m2 == -INFINITY ? 0.0 : sum_shared[threadIdx.x + half] * exp((double)(m2 - top));
            max_shared[threadIdx.x] = top;
            sum_shared[threadIdx.x] = s1 + s2;
        }
        __syncthreads();
    }
    if (threadIdx.x != 0) return;
    double row_lse = max_shared[0] + log(sum_shared[0]);
    lse[r] = row_lse;
    int target = targets[r];
    row_loss[r] = target >= 0 ? row_lse - as_float(row[target]) : 0.0;
}

/* *total = sum of row_loss (M), each thread's rows then a fixed tree. */
static __global__ void sum_rows_kernel(double *total, const double *row_loss, int M) {
    __shared__ double shared[SUM_THREADS];
    double sum = 0;
    for (int r = threadIdx.x; r < M; r += SUM_THREADS) sum += row_loss[r];
    sum = block_sum(sum, shared, SUM_THREADS);
    if (threadIdx.x == 0) *total = sum;
}

template <typename T>
static int launch_crossentropy_forward(double *loss_sum, double *row_loss, double *lse,
                                       const T *logits, const int *targets, int M, int V,
                                       cudaStream_t stream) {
    if (M == 0) return cuda_status(cudaMemsetAsync(loss_sum, 0, sizeof(double), stream),
                                   "crossentropy_forward: cudaMemsetAsync");
    crossentropy_row_kernel<T><<<(unsigned)M, LOSS_THREADS, 0, stream>>>(row_loss, lse, logits,
                                                                         targets, V);
    if (cuda_launched("crossentropy_row_kernel")) return -1;
    sum_rows_kernel<<<1, SUM_THREADS, 0, stream>>>(loss_sum, row_loss, M);
    return cuda_launched("sum_rows_kernel");
}

int crossentropy_forward(double *loss_sum, double *row_loss, double *lse, const float *logits,
                         const int *targets, int M, int V, cudaStream_t stream) {
    return launch_crossentropy_forward(loss_sum, row_loss, lse, logits, targets, M, V, stream);
}

int crossentropy_forward(double *loss_sum, double *row_loss, double *lse,
                         const __nv_bfloat16 *logits, const int *targets, int M, int V,
                         cudaStream_t stream) {
    return launch_crossentropy_forward(loss_sum, row_loss, lse, logits, targets, M, V, stream);
}

/* The gradient of one logit: scale (exp(x - lse) - [c == target]), or 0
 * without a target. */
static __device__ __forceinline__ float logit_gradient(float x, double lse, int c, int target,
                                                       float scale) {
    if (target < 0) return 0.0f;
    float grad = scale * expf((float)(x - lse));
    return c == target ? grad - scale : grad;
}

/* In place, one block per row: logits_r (fp32 or bf16) becomes its
 * logit_gradient, rounded as it is stored. */
template <typename T>
static __global__ void crossentropy_backward_kernel(T *logits, const double *lse,
                                                    const int *targets, int V, float scale) {
    size_t r = blockIdx.x;
    T *row = logits + r * V;
    int target = targets[r];
    double row_lse = lse[r];
    for (int c = threadIdx.x; c < V; c += LOSS_THREADS)
        store_as(row + c, logit_gradient(as_float(row[c]), row_lse, c, target, scale));
}

/* The same on bf16 logits four at a time (V % 4 == 0: rows 8-byte aligned). */
static __global__ void crossentropy_backward_bf16x4_kernel(__nv_bfloat16 *logits,
                                                           const double *lse, const int *targets,
                                                           int V, float scale) {
    size_t r = blockIdx.x;
    uint2 *row = (uint2 *)(logits + r * V);
    int target = targets[r];
    double row_lse = lse[r];
    for (int q = threadIdx.x; q < V / 4; q += LOSS_THREADS) {
        float x[4];
        bf16x4_to_floats(x, row[q]);
        for (int i = 0; i < 4; i++) x[i] = logit_gradient(x[i], row_lse, 4 * q + i, target, scale);
        row[q] = floats_to_bf16x4(x);
    }
}

int crossentropy_backward(float *logits, const double *lse, const int *targets, int M, int V,
                          float scale, cudaStream_t stream) {
    if (M == 0) return 0;
    crossentropy_backward_kernel<float><<<(unsigned)M, LOSS_THREADS, 0, stream>>>(
        logits, lse, targets, V, scale);
    return cuda_launched("crossentropy_backward_kernel");
}

int crossentropy_backward(__nv_bfloat16 *logits, const double *lse, const int *targets, int M,
                          int V, float scale, cudaStream_t stream) {
    if (M == 0) return 0;
    if (V % 4 == 0) {
        crossentropy_backward_bf16x4_kernel<<<(unsigned)M, LOSS_THREADS, 0, stream>>>(
            logits, lse, targets, V, scale);
        return cuda_launched("crossentropy_backward_bf16x4_kernel");
    }
    crossentropy_backward_kernel<__nv_bfloat16><<<(unsigned)M, LOSS_THREADS, 0, stream>>>(
        logits, lse, targets, V, scale);
    return cuda_launched("crossentropy_backward_kernel");
}

/* ---- training: forward and backward in one pass ---------------------- */

enum { TRAIN_THREADS = 512 };

/* One block per row (blockDim.x threads, a multiple of 32): the row is
 * copied into shared memory (cp.async), then max m, sum s = sum_c 2^((x_c
 * - m) log2 e) (each thread's share in float, the warps' in double in a
 * fixed order), lse = m + ln s, row_loss = lse - x_target, and the row
 * written back as scale (2^((x_c - lse) log2 e) - [c == target]) in bf16;
 * rows without a target: loss 0, gradient 0. */
static __global__ void __launch_bounds__(TRAIN_THREADS)
    crossentropy_train_kernel(double *row_loss, double *lse, __nv_bfloat16 *logits,
                              const int *targets, int V, float scale) {
    extern __shared__ __align__(16) __nv_bfloat16 cached[]; /* (V) this row */
    __shared__ float warp_max[TRAIN_THREADS / 32];
    __shared__ double warp_total[TRAIN_THREADS / 32];
    size_t r = blockIdx.x;
    __nv_bfloat16 *row = logits + r * V;
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    int chunks = V / 8, words = V / 4;
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) async_copy16(cached + 8 * c, row + 8 * c, 16);
    async_commit();
    async_wait<0>();
    __syncthreads();
    const uint2 *cached4 = (const uint2 *)cached;
    float m = -INFINITY, x[4];
    for (int q = threadIdx.x; q < words; q += blockDim.x) {
        bf16x4_to_floats(x, cached4[q]);
        m = fmaxf(m, fmaxf(fmaxf(x[0], x[1]), fmaxf(x[2], x[3])));
    }
    for (int offset = 16; offset > 0; offset /= 2)
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
    if (lane == 0) warp_max[warp] = m;
    __syncthreads();
    for (int w = 0; w < warps; w++) m = fmaxf(m, warp_max[w]);
    float shift = -m * LOG2E, sum = 0.0f;
    for (int q = threadIdx.x; q < words; q += blockDim.x) {
        bf16x4_to_floats(x, cached4[q]);
        for (int i = 0; i < 4; i++) sum += exp2_fast(fmaf(x[i], LOG2E, shift));
    }
    sum = warp_sum(sum);
    if (lane == 0) warp_total[warp] = sum;
    __syncthreads();
    double total = 0;
    for (int w = 0; w < warps; w++) total += warp_total[w];
    double row_lse = m + log(total);
    int target = targets[r];
    if (threadIdx.x == 0) {
        lse[r] = row_lse;
        row_loss[r] = target >= 0 ? row_lse - __bfloat162float(cached[target]) : 0.0;
    }
    float lse_shift = (float)(-row_lse * LOG2E);
    uint2 *out = (uint2 *)row;
    for (int q = threadIdx.x; q < words; q += blockDim.x) {
        bf16x4_to_floats(x, cached4[q]);
        float g[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (target >= 0)
            for (int i = 0; i < 4; i++) {
                g[i] = scale * exp2_fast(fmaf(x[i], LOG2E, lse_shift));
                if (4 * q + i == target) g[i] -= scale;
            }
        out[q] = floats_to_bf16x4(g);
    }
}

int crossentropy_train_supports(int V) {
    return V > 0 && V % 8 == 0 && V <= CROSSENTROPY_TRAIN_MAX_V;
}

int crossentropy_train(double *loss_sum, double *row_loss, double *lse, __nv_bfloat16 *logits,
                       const int *targets, int M, int V, float scale, cudaStream_t stream) {
    if (!crossentropy_train_supports(V))
        return cuda_status(cudaErrorInvalidValue, "crossentropy_train: V not a multiple of 8 "
                                                  "or too large");
    if (M == 0) return cuda_status(cudaMemsetAsync(loss_sum, 0, sizeof(double), stream),
                                   "crossentropy_train: cudaMemsetAsync");
    size_t smem = (size_t)V * sizeof(__nv_bfloat16);
    if (cuda_allow_smem((const void *)crossentropy_train_kernel, smem,
                        "crossentropy_train: cudaFuncSetAttribute"))
        return -1;
    int words = V / 4, threads = (words + 31) / 32 * 32;
    if (threads > TRAIN_THREADS) threads = TRAIN_THREADS;
    crossentropy_train_kernel<<<(unsigned)M, threads, smem, stream>>>(row_loss, lse, logits,
                                                                      targets, V, scale);
    if (cuda_launched("crossentropy_train_kernel")) return -1;
    sum_rows_kernel<<<1, SUM_THREADS, 0, stream>>>(loss_sum, row_loss, M);
    return cuda_launched("sum_rows_kernel");
}
