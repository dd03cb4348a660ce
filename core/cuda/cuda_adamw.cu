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
#include <stdint.h>

#include "cuda_check.cuh"

/* The update of core/adamw.c for one element i, whose tensor decays by
 * tensor_factor (1 or the decay). */
static __device__ __forceinline__ void adamw_element(float *p, float *m, float *v, float g,
                                                     float tensor_factor, float b1, float b2,
                                                     float eps, float step_size,
                                                     float inv_sqrt_correction2) {
    float one_minus_b1 = __fsub_rn(1.0f, b1), one_minus_b2 = __fsub_rn(1.0f, b2);
    float mi = __fadd_rn(__fmul_rn(b1, *m), __fmul_rn(one_minus_b1, g));
    float vi = __fadd_rn(__fmul_rn(b2, *v), __fmul_rn(__fmul_rn(one_minus_b2, g), g));
    *m = mi;
    *v = vi;
    float denom = (float)__dadd_rn(__dmul_rn(__dsqrt_rn((double)vi), (double)inv_sqrt_correction2),
                                   (double)eps);
    *p = __fsub_rn(__fmul_rn(*p, tensor_factor), __fdiv_rn(__fmul_rn(step_size, mi), denom));
}

/* Elements 4 t .. 4 t + 3 of thread t: finds the first one's tensor
 * (binary search over the end offsets) for the decay flag, steps on to
 * the next tensor where one ends, and updates each as core/adamw.c; four
 * at a time through float4 where the buffers allow (vec4), else one by
 * one. */
static __global__ void adamw_kernel(float *params, __nv_bfloat16 *params16, float *m, float *v,
                                    const float *grads,
                                    const size_t *tensor_end, const int *tensor_decay,
                                    int n_tensors, size_t n, float b1, float b2, float eps,
                                    float step_size, float inv_sqrt_correction2, float decay,
                                    int vec4) {
    size_t i0 = 4 * ((size_t)blockIdx.x * blockDim.x + threadIdx.x);
    if (i0 >= n) return;
    int lo = 0, hi = n_tensors - 1; /* first tensor whose end > i0 */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (tensor_end[mid] > i0) hi = mid; else lo = mid + 1;
    }
    if (vec4 && i0 + 4 <= n) {
        float4 p4 = *(float4 *)(params + i0), m4 = *(float4 *)(m + i0);
        float4 v4 = *(float4 *)(v + i0), g4 = *(const float4 *)(grads + i0);
        float pv[4] = {p4.x, p4.y, p4.z, p4.w}, mv[4] = {m4.x, m4.y, m4.z, m4.w};
        float vv[4] = {v4.x, v4.y, v4.z, v4.w}, gv[4] = {g4.x, g4.y, g4.z, g4.w};
#pragma unroll
        for (int c = 0; c < 4; c++) {
            while (lo < n_tensors - 1 && tensor_end[lo] <= i0 + c) lo++;
            adamw_element(&pv[c], &mv[c], &vv[c], gv[c], tensor_decay[lo] ? decay : 1.0f, b1, b2,
                          eps, step_size, inv_sqrt_correction2);
        }
        *(float4 *)(params + i0) = make_float4(pv[0], pv[1], pv[2], pv[3]);
        *(float4 *)(m + i0) = make_float4(mv[0], mv[1], mv[2], mv[3]);
        *(float4 *)(v + i0) = make_float4(vv[0], vv[1], vv[2], vv[3]);
        if (params16) *(uint2 *)(params16 + i0) = floats_to_bf16x4(pv);
        return;
    }
    for (size_t i = i0; i < n && i < i0 + 4; i++) {
        while (lo < n_tensors - 1 && tensor_end[lo] <= i) lo++;
        adamw_element(&params[i], &m[i], &v[i], grads[i], tensor_decay[lo] ? decay : 1.0f, b1,
                      b2, eps, step_size, inv_sqrt_correction2);
        if (params16) params16[i] = __float2bfloat16_rn(params[i]);
    }
}

int adamw_update(float *params, __nv_bfloat16 *params16, float *m, float *v, const float *grads,
                 const size_t *tensor_end,
                 const int *tensor_decay, int n_tensors, size_t n, float b1, float b2,
                 float eps, float step_size, float inv_sqrt_correction2, float decay,
                 cudaStream_t stream) {
    if (n == 0) return 0;
    uintptr_t bits = (uintptr_t)params | (uintptr_t)m | (uintptr_t)v | (uintptr_t)grads;
    int vec4 = bits % 16 == 0 && (uintptr_t)params16 % 8 == 0;
    adamw_kernel<<<cuda_blocks((n + 3) / 4), CUDA_THREADS, 0, stream>>>(
        params, params16, m, v, grads, tensor_end, tensor_decay, n_tensors, n, b1, b2, eps,
        step_size, inv_sqrt_correction2, decay, vec4);
    return cuda_launched("adamw_kernel");
}

/* partial[block] = sum of g^2 over block's contiguous slice (double),
 * each thread's elements in order, then a fixed tree inside the block;
 * four floats a load where the slice is 16-byte aligned (vec4). */
static __global__ void sum_squares_kernel(double *partial, const float *grads, size_t n,
                                          int vec4) {
    __shared__ double shared[CUDA_THREADS];
    size_t per_block = (n + NORM_BLOCKS - 1) / NORM_BLOCKS;
    if (vec4) per_block = (per_block + 3) / 4 * 4;
    size_t begin = (size_t)blockIdx.x * per_block;
    size_t end = begin + per_block < n ? begin + per_block : n;
    double sum = 0;
    if (vec4) {
        /* four loads in flight before their squares are summed: the
         * loads, not the sums, bound this kernel */
        enum { STRIDE = 4 * CUDA_THREADS };
        size_t i = begin + 4 * threadIdx.x;
        for (; i + 3 * STRIDE + 4 <= end; i += 4 * STRIDE) {
            float4 q[4];
            for (int u = 0; u < 4; u++) q[u] = *(const float4 *)(grads + i + u * STRIDE);
            for (int u = 0; u < 4; u++) {
                sum += (double)q[u].x * q[u].x;
                sum += (double)q[u].y * q[u].y;
                sum += (double)q[u].z * q[u].z;
                sum += (double)q[u].w * q[u].w;
            }
        }
        for (; i + 4 <= end; i += STRIDE) {
            float4 q = *(const float4 *)(grads + i);
            sum += (double)q.x * q.x;
            sum += (double)q.y * q.y;
            sum += (double)q.z * q.z;
            sum += (double)q.w * q.w;
        }
        for (; i < end; i++) sum += (double)grads[i] * grads[i]; /* the tail, one thread */
    } else {
        for (size_t i = begin + threadIdx.x; i < end; i += CUDA_THREADS)
            sum += (double)grads[i] * grads[i];
    }
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
    sum_squares_kernel<<<NORM_BLOCKS, CUDA_THREADS, 0, stream>>>(partial, grads, n,
                                                                 (uintptr_t)grads % 16 == 0);
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
