/*
 * cuda_adamw.cu: the AdamW update, the global gradient norm and the clip
 * scaling (core/adamw.h, core/train.c), over the contiguous parameter
 * buffer.
 *
 * The update rounds exactly as core/adamw.c does when compiled as C11 on
 * x86-64 (no fused multiply-adds; the denominator sqrt(v) c2 + eps in
 * double): the explicit _rn intrinsics keep nvcc from contracting
 * products into FMAs, so the GPU step is bit-identical to the CPU step.
 */
#include "cuda_kernels.cuh"

#include <math.h>

#include "cuda_check.cuh"

/* One element: finds its tensor (binary search over the end offsets) for
 * the decay flag, then the update of core/adamw.c. */
static __global__ void adamw_kernel(float *params, __nv_bfloat16 *params16, float *m, float *v,
                                    const float *grads,
                                    const size_t *tensor_end, const int *tensor_decay,
                                    int n_tensors, size_t n, float b1, float b2, float eps,
                                    float step_size, float inv_sqrt_correction2, float decay) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int lo = 0, hi = n_tensors - 1; /* first tensor whose end > i */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (tensor_end[mid] > i) hi = mid; else lo = mid + 1;
    }
    float tensor_factor = tensor_decay[lo] ? decay : 1.0f;
    float g = grads[i];
    float one_minus_b1 = __fsub_rn(1.0f, b1), one_minus_b2 = __fsub_rn(1.0f, b2);
    float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(one_minus_b1, g));
    float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(one_minus_b2, g), g));
    m[i] = mi;
    v[i] = vi;
    float denom = (float)__dadd_rn(__dmul_rn(__dsqrt_rn((double)vi), (double)inv_sqrt_correction2),
                                   (double)eps);
    float p = __fsub_rn(__fmul_rn(params[i], tensor_factor),
                        __fdiv_rn(__fmul_rn(step_size, mi), denom));
    params[i] = p;
    if (params16) params16[i] = __float2bfloat16_rn(p);
}

int adamw_update(float *params, __nv_bfloat16 *params16, float *m, float *v, const float *grads,
                 const size_t *tensor_end,
                 const int *tensor_decay, int n_tensors, size_t n, float b1, float b2,
                 float eps, float step_size, float inv_sqrt_correction2, float decay,
                 cudaStream_t stream) {
    if (n == 0) return 0;
    adamw_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, stream>>>(params, params16, m, v, grads,
                                                              tensor_end,
                                                              tensor_decay, n_tensors, n, b1, b2,
                                                              eps, step_size,
                                                              inv_sqrt_correction2, decay);
    return cuda_launched("adamw_kernel");
}

/* partial[block] = sum of g^2 over block's contiguous slice (double),
 * a fixed tree inside the block. */
static __global__ void sum_squares_kernel(double *partial, const float *grads, size_t n) {
    __shared__ double shared[CUDA_THREADS];
    size_t per_block = (n + NORM_BLOCKS - 1) / NORM_BLOCKS;
    size_t begin = (size_t)blockIdx.x * per_block, end = begin + per_block < n ? begin + per_block : n;
    double sum = 0;
    for (size_t i = begin + threadIdx.x; i < end; i += CUDA_THREADS)
        sum += (double)grads[i] * grads[i];
    shared[threadIdx.x] = sum;
    __syncthreads();
    for (int half = CUDA_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = shared[0];
}

/* *total = sum of the NORM_BLOCKS partials in order. */
static __global__ void sum_partials_kernel(double *total, const double *partial) {
    double sum = 0;
    for (int b = 0; b < NORM_BLOCKS; b++) sum += partial[b];
    *total = sum;
}

int grad_sum_squares(double *sum_sq, double *partial, const float *grads, size_t n,
                     cudaStream_t stream) {
    sum_squares_kernel<<<NORM_BLOCKS, CUDA_THREADS, 0, stream>>>(partial, grads, n);
    if (cuda_launched("sum_squares_kernel")) return -1;
    sum_partials_kernel<<<1, 1, 0, stream>>>(sum_sq, partial);
    return cuda_launched("sum_partials_kernel");
}

/* x *= scale, rounded as the CPU's vec_scale. */
static __global__ void scale_kernel(float *x, float scale, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = __fmul_rn(x[i], scale);
}

int vector_scale(float *x, float scale, size_t n, cudaStream_t stream) {
    if (n == 0) return 0;
    scale_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, stream>>>(x, scale, n);
    return cuda_launched("scale_kernel");
}
