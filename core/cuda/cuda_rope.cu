/*
 * cuda_rope.cu: rotary position embedding, half-split form (core/layers.h).
 *
 * The cosines and sines are computed once per forward pass for each set of
 * positions (tokens, and each iteration's latents) in double, exactly as
 * the CPU computes them, then rounded to float; the rotation kernels read
 * the tables.
 */
#include "cuda_kernels.cuh"

#include "cuda_check.cuh"

/* cos_t[i][m] = cos(pos[i] base^(-2m/dh)), sin_t likewise; (n, dh/2). */
static __global__ void rope_table_kernel(float *cos_t, float *sin_t, const int *pos, int n,
                                         int dh, double base) {
    int half = dh / 2;
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)n * half) return;
    int i = (int)(e / half), m = (int)(e % half);
    double freq = pow(base, -2.0 * m / dh);
    double angle = 1.0 * (double)pos[i] * freq;
    cos_t[e] = (float)cos(angle);
    sin_t[e] = (float)sin(angle);
}

int rope_table(float *cos_t, float *sin_t, const int *pos, int n, int dh, double base,
               cudaStream_t stream) {
    size_t count = (size_t)n * (dh / 2);
    if (count == 0) return 0;
    rope_table_kernel<<<cuda_blocks(count), CUDA_THREADS, 0, stream>>>(cos_t, sin_t, pos, n, dh,
                                                                      base);
    return cuda_launched("rope_table_kernel");
}

/* One thread per (b, i, part (q or k), head, m): rotates the pair
 * (x1[m], x2[m]) of that head by +angle (sign 1) or -angle (sign -1). */
static __global__ void rope_apply_kernel(float *qkv, const float *cos_t, const float *sin_t,
                                         int B, int n, int H, int dh, int sign) {
    int half = dh / 2, D = H * dh;
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t count = (size_t)B * n * 2 * H * half;
    if (e >= count) return;
    int m = (int)(e % half);
    size_t rest = e / half;
    int h = (int)(rest % H);
    rest /= H;
    int part = (int)(rest % 2);
    size_t row = rest / 2; /* b * n + i */
    int i = (int)(row % n);
    float c = cos_t[(size_t)i * half + m], s = sin_t[(size_t)i * half + m];
    if (sign < 0) s = -s;
    float *x1 = qkv + row * 3 * D + (size_t)part * D + (size_t)h * dh + m, *x2 = x1 + half;
    rope_rotate(x1, x2, *x1, *x2, c, s);
}

int rope_apply(float *qkv, const float *cos_t, const float *sin_t, int B, int n, int H,
               int dh, int sign, cudaStream_t stream) {
    size_t count = (size_t)B * n * 2 * H * (dh / 2);
    if (count == 0) return 0;
    rope_apply_kernel<<<cuda_blocks(count), CUDA_THREADS, 0, stream>>>(qkv, cos_t, sin_t, B, n,
                                                                      H, dh, sign);
    return cuda_launched("rope_apply_kernel");
}

/* One thread per (b, i, column pair of the 3 D): q and k pairs rotated by
 * -angle (the backward of rope_apply), v copied; all rounded to bf16. */
static __global__ void rope_backward_bf16_kernel(__nv_bfloat16 *out, const float *dqkv,
                                                 const float *cos_t, const float *sin_t,
                                                 int B, int n, int H, int dh) {
    int half = dh / 2, D = H * dh;
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t count = (size_t)B * n * 3 * H * half;
    if (e >= count) return;
    int m = (int)(e % half);
    size_t rest = e / half;
    int h = (int)(rest % H);
    rest /= H;
    int part = (int)(rest % 3);
    size_t row = rest / 3; /* b * n + i */
    int i = (int)(row % n);
    size_t at = row * 3 * D + (size_t)part * D + (size_t)h * dh + m;
    float a = dqkv[at], b = dqkv[at + half];
    if (part < 2)
        rope_rotate(&a, &b, a, b, cos_t[(size_t)i * half + m], -sin_t[(size_t)i * half + m]);
    out[at] = __float2bfloat16_rn(a);
    out[at + half] = __float2bfloat16_rn(b);
}

int rope_backward_bf16(__nv_bfloat16 *out, const float *dqkv, const float *cos_t,
                       const float *sin_t, int B, int n, int H, int dh, cudaStream_t stream) {
    size_t count = (size_t)B * n * 3 * H * (dh / 2);
    if (count == 0) return 0;
    rope_backward_bf16_kernel<<<cuda_blocks(count), CUDA_THREADS, 0, stream>>>(
        out, dqkv, cos_t, sin_t, B, n, H, dh);
    return cuda_launched("rope_backward_bf16_kernel");
}
