/*
 * cuda_attention_tiles.cuh: the pieces that the mma.sync attention kernels
 * (cuda_attention_mma.cu) and the wgmma ones (cuda_attention_wgmma.cu)
 * share: bf16 pairs in registers, a warp's A fragments of 16 rows of a
 * packed head, and the stores of a warp's 16 x DH result (rotated back by
 * RoPE for dq and dk). Fragment layouts: cuda_attention_mma.cu's comment.
 */
#ifndef SPIRAL_CUDA_ATTENTION_TILES_CUH
#define SPIRAL_CUDA_ATTENTION_TILES_CUH

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>

#include "cuda_check.cuh"

/* Rows of a block's tile (4 warps of 16) and its threads. */
enum { MMA_ROWS = 64, MMA_THREADS = 128 };

static const float LN2 = 0.6931471805599453f;

/* Two floats as one bf16x2 register (lo in the low half). */
static __device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&v;
}

/* The A fragment (16 x 16) of two side-by-side C tiles (16 x 8 each),
 * rounded to bf16: how probabilities and dS feed the next product. */
static __device__ __forceinline__ void c_pair_to_a(uint32_t a[4], const float left[4],
                                                   const float right[4]) {
    a[0] = pack_bf16x2(left[0], left[1]);
    a[1] = pack_bf16x2(left[2], left[3]);
    a[2] = pack_bf16x2(right[0], right[1]);
    a[3] = pack_bf16x2(right[2], right[3]);
}

/* The 32-bit word at p (two bf16; p 4-byte aligned). */
static __device__ __forceinline__ uint32_t load_word(const __nv_bfloat16 *p) {
    return *(const uint32_t *)p;
}

/* The A fragments (DH / 16 steps of k) of the warp's 16 rows [first,
 * first + 16) of one head's packed (n, DH) array: this thread's rows are
 * first + g and first + g + 8; rows beyond n are zero. */
template <int DH>
static __device__ void load_a_fragments(uint32_t frag[DH / 16][4], const __nv_bfloat16 *head,
                                        int first, int n) {
    int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4, r0 = first + g, r1 = r0 + 8;
#pragma unroll
    for (int kk = 0; kk < DH / 16; kk++)
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int c = kk * 16 + half * 8 + 2 * t;
            frag[kk][2 * half] = r0 < n ? load_word(head + (size_t)r0 * DH + c) : 0u;
            frag[kk][2 * half + 1] = r1 < n ? load_word(head + (size_t)r1 * DH + c) : 0u;
        }
}

/* Two adjacent floats stored as T (float, or bf16 rounded to nearest). */
static __device__ __forceinline__ void store_pair(float *p, float a, float b) {
    *(float2 *)p = make_float2(a, b);
}
static __device__ __forceinline__ void store_pair(__nv_bfloat16 *p, float a, float b) {
    *(__nv_bfloat162 *)p = __floats2bfloat162_rn(a, b);
}

/* Writes a warp's (16 x DH) result, rows r0 and r0 + 8, times the row
 * factors f0, f1, to dst (row stride `stride`), columns < dh, as T. */
template <int DH, typename T>
static __device__ void store_rows(T *dst, const float acc[DH / 8][4], int r0, int n,
                                  size_t stride, int dh, float f0, float f1) {
    int t = threadIdx.x % 4;
#pragma unroll
    for (int j = 0; j < DH / 8; j++) {
        int c = j * 8 + 2 * t;
        if (c >= dh) continue;
        if (r0 < n) store_pair(dst + (size_t)r0 * stride + c, acc[j][0] * f0, acc[j][1] * f0);
        if (r0 + 8 < n)
            store_pair(dst + (size_t)(r0 + 8) * stride + c, acc[j][2] * f1, acc[j][3] * f1);
    }
}

/* Writes a warp's (16 x DH) gradient of a rotated head (dq or dk), rows
 * r0 and r0 + 8, rotated back (rope_apply's sign -1, the same arithmetic)
 * and rounded to bf16 (rope_rotate with -sin): column m pairs with m + DH/2, which this thread
 * holds in tile j + DH/16 (dh == DH, so that the pairing is known at
 * compile time and acc stays in registers); cos_t, sin_t (n, DH/2). */
template <int DH>
static __device__ void store_rows_unrotated(__nv_bfloat16 *dst, const float acc[DH / 8][4], int r0,
                                            int n, size_t stride, const float *cos_t,
                                            const float *sin_t) {
    constexpr int HALF = DH / 2, PAIR = DH / 16;
    int t = threadIdx.x % 4;
#pragma unroll
    for (int j = 0; j < PAIR; j++)
#pragma unroll
        for (int e = 0; e < 4; e += 2) {
            int row = e < 2 ? r0 : r0 + 8, m = j * 8 + 2 * t;
            if (row >= n) continue;
            const float *c = cos_t + (size_t)row * HALF + m, *sn = sin_t + (size_t)row * HALF + m;
            float x1[2], x2[2]; /* columns m, m + 1 and m + HALF, m + HALF + 1 */
#pragma unroll
            for (int k = 0; k < 2; k++)
                rope_rotate(&x1[k], &x2[k], acc[j][e + k], acc[j + PAIR][e + k], c[k], -sn[k]);
            store_pair(dst + (size_t)row * stride + m, x1[0], x1[1]);
            store_pair(dst + (size_t)row * stride + m + HALF, x2[0], x2[1]);
        }
}

/* One key tile of the online softmax for a warp's 16 rows (this thread's
 * rows r0 and r0 + 8): s (16 x 8 N8 raw scores, C fragments, masked keys
 * -inf) becomes p = 2^(s scale2 - m scale2) with m the running row
 * maxima raised to the tile's; earlier sums l and outputs o shrink by
 * alpha = 2^((m_old - m_new) scale2) and l gains this thread's share of
 * the tile's sum (summed over the quad at the end). Key 0 is in every
 * row's first tile, so the maxima are finite; rows beyond n see only
 * masked keys after it and keep their maxima (alpha 1, p 0). */
template <int N8, int DH>
static __device__ __forceinline__ void softmax_rows(float s[N8][4], float &m0, float &m1,
                                                    float &l0, float &l1, float o[DH / 8][4],
                                                    float scale2) {
    float max0 = -INFINITY, max1 = -INFINITY;
#pragma unroll
    for (int j = 0; j < N8; j++) {
        max0 = fmaxf(max0, fmaxf(s[j][0], s[j][1]));
        max1 = fmaxf(max1, fmaxf(s[j][2], s[j][3]));
    }
#pragma unroll
    for (int offset = 1; offset < 4; offset *= 2) {
        max0 = fmaxf(max0, __shfl_xor_sync(0xffffffffu, max0, offset));
        max1 = fmaxf(max1, __shfl_xor_sync(0xffffffffu, max1, offset));
    }
    float new0 = fmaxf(m0, max0), new1 = fmaxf(m1, max1);
    float alpha0 = exp2_fast((m0 - new0) * scale2);
    float alpha1 = exp2_fast((m1 - new1) * scale2);
    m0 = new0;
    m1 = new1;
    float shift0 = -new0 * scale2, shift1 = -new1 * scale2, sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
    for (int j = 0; j < N8; j++) {
        s[j][0] = exp2_fast(fmaf(s[j][0], scale2, shift0));
        s[j][1] = exp2_fast(fmaf(s[j][1], scale2, shift0));
        s[j][2] = exp2_fast(fmaf(s[j][2], scale2, shift1));
        s[j][3] = exp2_fast(fmaf(s[j][3], scale2, shift1));
        sum0 += s[j][0] + s[j][1];
        sum1 += s[j][2] + s[j][3];
    }
    l0 = l0 * alpha0 + sum0;
    l1 = l1 * alpha1 + sum1;
#pragma unroll
    for (int j = 0; j < DH / 8; j++) {
        o[j][0] *= alpha0;
        o[j][1] *= alpha0;
        o[j][2] *= alpha1;
        o[j][3] *= alpha1;
    }
}

/* cuda_attention_wgmma.cu: the forward and backward kernels with wgmma
 * for heads packed to 64 columns, behind attention_mma_forward_heads and
 * attention_mma_backward_heads (same arguments as their launchers). */
int attention_wgmma_supports(int dh);
int attention_wgmma_forward(float *out, __nv_bfloat16 *out16, float *lse,
                            const __nv_bfloat16 *heads, int B, int n, int H, int dh,
                            cudaStream_t stream);
int attention_wgmma_backward(float *dqkv, const __nv_bfloat16 *heads,
                             const __nv_bfloat16 *dout16, const float *lse, const float *rowdot,
                             const float *cos_t, const float *sin_t, int B, int n, int H, int dh,
                             cudaStream_t stream);
int attention_wgmma_backward(__nv_bfloat16 *dqkv, const __nv_bfloat16 *heads,
                             const __nv_bfloat16 *dout16, const float *lse, const float *rowdot,
                             const float *cos_t, const float *sin_t, int B, int n, int H, int dh,
                             cudaStream_t stream);

#endif
