/*
 * cuda_attention_mma.cu: fused causal attention on the tensor cores (bf16
 * inputs, fp32 accumulation), forward and backward; the engine's attention
 * in bf16 precision (cuda_attention.cu is the fp32 one, used for fp32 and
 * TF32).
 *
 * The same algorithm as cuda_attention.cu (online softmax, saved
 * log-sum-exp, no n x n matrix in device memory, no atomics), with every
 * product a warp-level mma.sync m16n8k16: a block of 4 warps takes 64 rows
 * (queries for the forward and dq, keys for dk and dv) of one head of one
 * sequence, each warp 16 of them, and streams the other side through
 * shared memory in bf16 tiles converted from the fp32 activations on load.
 *
 * Fragment layout of m16n8k16 (lane = 4 g + t, g = lane / 4, t = lane % 4):
 *   A (16 x 16, rows x k): a0 = (g, 2t..2t+1), a1 = (g + 8, 2t..), a2 = (g,
 *     2t + 8..), a3 = (g + 8, 2t + 8..);
 *   B (16 x 8, k x cols): b0 = (2t..2t+1, g), b1 = (2t + 8.., g);
 *   C (16 x 8 fp32): c0, c1 = (g, 2t..2t+1), c2, c3 = (g + 8, 2t..).
 * Two C tiles side by side are exactly the A fragment of the next product
 * (P, dS), so probabilities never leave registers. A B operand whose k runs
 * along stored rows (V, dout, q or k as the right factor) comes from
 * ldmatrix .trans.
 *
 * Scores are scaled to base 2: s2 = q.k / sqrt(dh) log2(e), so p =
 * exp2(s2 - m2); the saved lse is natural (lse = m2 ln 2 + ln l), as the
 * fp32 kernels save it.
 *
 * Backward (FA2's equations, two kernels so that nothing is summed across
 * blocks): P_ij = exp(S_ij - lse_i), D_i = dout_i . out_i, dS_ij = P_ij
 * (dout_i . v_j - D_i) / sqrt(dh); dq_i = sum_j dS_ij k_j (per query tile),
 * dk_j = sum_i dS_ij q_i and dv_j = sum_i P_ij dout_i (per key tile).
 */
#include "cuda_kernels.cuh"

#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>

#include "cuda_check.cuh"

enum { MMA_ROWS = 64, MMA_THREADS = 128 };

static const float LOG2E = 1.4426950408889634f;
static const float LN2 = 0.6931471805599453f;

/* Two floats as one bf16x2 register (lo in the low half). */
static __device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&v;
}

/* The 32-bit word at p (two bf16; p 4-byte aligned). */
static __device__ __forceinline__ uint32_t load_word(const __nv_bfloat16 *p) {
    return *(const uint32_t *)p;
}

/* d (16 x 8) += a (16 x 16) b (16 x 8), bf16 inputs, fp32 accumulators. */
static __device__ __forceinline__ void mma_bf16(float d[4], const uint32_t a[4],
                                                uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Four 8 x 8 bf16 matrices loaded transposed; lane l gives the address of
 * row l % 8 of matrix l / 8. */
static __device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const __nv_bfloat16 *p) {
    uint32_t address = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}

/* Rows [row0, row0 + R) of one head's dh columns (starting at col, row
 * stride `stride` floats) into the bf16 tile (R, DH + 8), zeros beyond n
 * rows and dh columns. dh is even, so a pair is in or out as a whole. */
template <int DH, int R>
static __device__ void load_tile(__nv_bfloat16 *tile, const float *base, int row0, int n,
                                 size_t stride, int col, int dh) {
    constexpr int S = DH + 8, PAIRS = DH / 2;
    for (int e = threadIdx.x; e < R * PAIRS; e += blockDim.x) {
        int r = e / PAIRS, c = (e % PAIRS) * 2, row = row0 + r;
        float2 v = make_float2(0.0f, 0.0f);
        if (row < n && c < dh) v = *(const float2 *)(base + (size_t)row * stride + col + c);
        *(uint32_t *)(tile + r * S + c) = pack_bf16x2(v.x, v.y);
    }
}

/* The A fragments (DH / 16 steps of k) of the warp's 16 rows [first,
 * first + 16) of one head (row stride `stride`), read from global memory:
 * this thread's rows are first + g and first + g + 8. */
template <int DH>
static __device__ void load_a_fragments(uint32_t frag[DH / 16][4], const float *base, int first,
                                        int n, size_t stride, int col, int dh) {
    int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4, r0 = first + g;
    const float *row0 = base + (size_t)r0 * stride + col;
    const float *row1 = row0 + 8 * stride;
    bool in0 = r0 < n, in1 = r0 + 8 < n;
#pragma unroll
    for (int kk = 0; kk < DH / 16; kk++) {
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int c = kk * 16 + half * 8 + 2 * t;
            uint32_t w0 = 0, w1 = 0;
            if (c < dh) {
                if (in0) {
                    float2 v = *(const float2 *)(row0 + c);
                    w0 = pack_bf16x2(v.x, v.y);
                }
                if (in1) {
                    float2 v = *(const float2 *)(row1 + c);
                    w1 = pack_bf16x2(v.x, v.y);
                }
            }
            frag[kk][2 * half] = w0;
            frag[kk][2 * half + 1] = w1;
        }
    }
}

/* acc (16 x 8 N8 tiles) = a (16 x DH, fragments) times the transpose of the
 * shared tile's rows [0, 8 N8) (each DH long): acc[j] = a . tile_row^T. */
template <int DH, int N8>
static __device__ void product_rows(float acc[N8][4], const uint32_t a[DH / 16][4],
                                    const __nv_bfloat16 *tile) {
    constexpr int S = DH + 8;
    int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
#pragma unroll
    for (int j = 0; j < N8; j++) {
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
        const __nv_bfloat16 *row = tile + (j * 8 + g) * S + 2 * t;
#pragma unroll
        for (int kk = 0; kk < DH / 16; kk++)
            mma_bf16(acc[j], a[kk], load_word(row + kk * 16), load_word(row + kk * 16 + 8));
    }
}

/* out (16 x DH) += p (16 x 8 N8, C fragments, rounded to bf16) times the
 * shared tile's rows [0, 8 N8) (each DH long). */
template <int DH, int N8>
static __device__ void accumulate_rows(float out[DH / 8][4], const float p[N8][4],
                                       const __nv_bfloat16 *tile) {
    constexpr int S = DH + 8;
    int lane = threadIdx.x % 32;
    int row_in = (lane % 8) + ((lane / 8) % 2) * 8, col_in = (lane / 16) * 8;
#pragma unroll
    for (int kk = 0; kk < N8 / 2; kk++) {
        uint32_t a[4] = {pack_bf16x2(p[2 * kk][0], p[2 * kk][1]),
                         pack_bf16x2(p[2 * kk][2], p[2 * kk][3]),
                         pack_bf16x2(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                         pack_bf16x2(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
        for (int dn = 0; dn < DH / 16; dn++) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, tile + (kk * 16 + row_in) * S + dn * 16 + col_in);
            mma_bf16(out[2 * dn], a, b[0], b[1]);
            mma_bf16(out[2 * dn + 1], a, b[2], b[3]);
        }
    }
}

/* Writes a warp's (16 x DH) fp32 result, rows r0 and r0 + 8, times the
 * row factors f0, f1, to dst (row stride `stride`), columns < dh. */
template <int DH>
static __device__ void store_rows(float *dst, const float acc[DH / 8][4], int r0, int n,
                                  size_t stride, int dh, float f0, float f1) {
    int t = threadIdx.x % 4;
#pragma unroll
    for (int j = 0; j < DH / 8; j++) {
        int c = j * 8 + 2 * t;
        if (c >= dh) continue;
        if (r0 < n)
            *(float2 *)(dst + (size_t)r0 * stride + c) = make_float2(acc[j][0] * f0, acc[j][1] * f0);
        if (r0 + 8 < n)
            *(float2 *)(dst + (size_t)(r0 + 8) * stride + c) =
                make_float2(acc[j][2] * f1, acc[j][3] * f1);
    }
}

/* Forward. Grid (query tiles, B H), the longest (last) tiles first. */
template <int DH>
static __global__ void __launch_bounds__(MMA_THREADS)
    mma_forward_kernel(float *out, float *lse, const float *qkv, int n, int H, int dh,
                       float scale2) {
    constexpr int S = DH + 8, N8 = MMA_ROWS / 8;
    __shared__ __align__(16) __nv_bfloat16 ks[MMA_ROWS * S], vs[MMA_ROWS * S];
    int tile = gridDim.x - 1 - blockIdx.x, b = blockIdx.y / H, h = blockIdx.y % H, D = H * dh;
    size_t stride = 3 * (size_t)D;
    const float *base = qkv + (size_t)b * n * stride;
    int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    int first = tile * MMA_ROWS + warp * 16, r0 = first + g; /* this thread's rows: r0, r0 + 8 */
    uint32_t qf[DH / 16][4];
    load_a_fragments<DH>(qf, base, first, n, stride, h * dh, dh);
    float o[DH / 8][4];
#pragma unroll
    for (int j = 0; j < DH / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    for (int kt = 0; kt <= tile; kt++) {
        __syncthreads();
        load_tile<DH, MMA_ROWS>(ks, base, kt * MMA_ROWS, n, stride, D + h * dh, dh);
        load_tile<DH, MMA_ROWS>(vs, base, kt * MMA_ROWS, n, stride, 2 * D + h * dh, dh);
        __syncthreads();
        float s[N8][4];
        product_rows<DH, N8>(s, qf, ks);
        float max0 = -INFINITY, max1 = -INFINITY;
#pragma unroll
        for (int j = 0; j < N8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int key = kt * MMA_ROWS + j * 8 + 2 * t + (e & 1), row = e < 2 ? r0 : r0 + 8;
                float v = key <= row && key < n ? s[j][e] * scale2 : -INFINITY;
                s[j][e] = v;
                if (e < 2) max0 = fmaxf(max0, v); else max1 = fmaxf(max1, v);
            }
#pragma unroll
        for (int offset = 1; offset < 4; offset *= 2) {
            max0 = fmaxf(max0, __shfl_xor_sync(0xffffffffu, max0, offset));
            max1 = fmaxf(max1, __shfl_xor_sync(0xffffffffu, max1, offset));
        }
        /* key 0 is in every row's first tile, so the new maxima are finite */
        float new0 = fmaxf(m0, max0), new1 = fmaxf(m1, max1);
        float alpha0 = exp2f(m0 - new0), alpha1 = exp2f(m1 - new1);
        m0 = new0;
        m1 = new1;
        float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
        for (int j = 0; j < N8; j++) {
            s[j][0] = exp2f(s[j][0] - m0);
            s[j][1] = exp2f(s[j][1] - m0);
            s[j][2] = exp2f(s[j][2] - m1);
            s[j][3] = exp2f(s[j][3] - m1);
            sum0 += s[j][0] + s[j][1];
            sum1 += s[j][2] + s[j][3];
        }
        l0 = l0 * alpha0 + sum0; /* this thread's share; summed over the quad at the end */
        l1 = l1 * alpha1 + sum1;
#pragma unroll
        for (int j = 0; j < DH / 8; j++) {
            o[j][0] *= alpha0;
            o[j][1] *= alpha0;
            o[j][2] *= alpha1;
            o[j][3] *= alpha1;
        }
        accumulate_rows<DH, N8>(o, s, vs);
    }
#pragma unroll
    for (int offset = 1; offset < 4; offset *= 2) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, offset);
        l1 += __shfl_xor_sync(0xffffffffu, l1, offset);
    }
    store_rows<DH>(out + (size_t)b * n * D + h * dh, o, r0, n, (size_t)D, dh, 1.0f / l0,
                   1.0f / l1);
    if (t == 0) {
        float *row_lse = lse + ((size_t)b * H + h) * n;
        if (r0 < n) row_lse[r0] = m0 * LN2 + logf(l0);
        if (r0 + 8 < n) row_lse[r0 + 8] = m1 * LN2 + logf(l1);
    }
}

/* dq. Grid (query tiles, B H), the longest first. */
template <int DH>
static __global__ void __launch_bounds__(MMA_THREADS)
    mma_dq_kernel(float *dqkv, const float *dout, const float *qkv, const float *lse,
                  const float *rowdot, int n, int H, int dh, float scale2, float scale) {
    constexpr int S = DH + 8, N8 = MMA_ROWS / 8;
    __shared__ __align__(16) __nv_bfloat16 ks[MMA_ROWS * S], vs[MMA_ROWS * S];
    int tile = gridDim.x - 1 - blockIdx.x, b = blockIdx.y / H, h = blockIdx.y % H, D = H * dh;
    size_t stride = 3 * (size_t)D;
    const float *base = qkv + (size_t)b * n * stride;
    const float *gbase = dout + (size_t)b * n * D;
    int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    int first = tile * MMA_ROWS + warp * 16, r0 = first + g;
    uint32_t qf[DH / 16][4], gf[DH / 16][4];
    load_a_fragments<DH>(qf, base, first, n, stride, h * dh, dh);
    load_a_fragments<DH>(gf, gbase, first, n, (size_t)D, h * dh, dh);
    const float *row_lse = lse + ((size_t)b * H + h) * n, *row_dot = rowdot + ((size_t)b * H + h) * n;
    float lse0 = r0 < n ? row_lse[r0] * LOG2E : 0.0f, lse1 = r0 + 8 < n ? row_lse[r0 + 8] * LOG2E : 0.0f;
    float dot0 = r0 < n ? row_dot[r0] : 0.0f, dot1 = r0 + 8 < n ? row_dot[r0 + 8] : 0.0f;
    float dq[DH / 8][4];
#pragma unroll
    for (int j = 0; j < DH / 8; j++) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0.0f;
    for (int kt = 0; kt <= tile; kt++) {
        __syncthreads();
        load_tile<DH, MMA_ROWS>(ks, base, kt * MMA_ROWS, n, stride, D + h * dh, dh);
        load_tile<DH, MMA_ROWS>(vs, base, kt * MMA_ROWS, n, stride, 2 * D + h * dh, dh);
        __syncthreads();
        float s[N8][4], dp[N8][4];
        product_rows<DH, N8>(s, qf, ks);
        product_rows<DH, N8>(dp, gf, vs);
#pragma unroll
        for (int j = 0; j < N8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int key = kt * MMA_ROWS + j * 8 + 2 * t + (e & 1), row = e < 2 ? r0 : r0 + 8;
                float p = key <= row && key < n
                              ? exp2f(s[j][e] * scale2 - (e < 2 ? lse0 : lse1)) : 0.0f;
                s[j][e] = p * (dp[j][e] - (e < 2 ? dot0 : dot1)) * scale;
            }
        accumulate_rows<DH, N8>(dq, s, ks);
    }
    store_rows<DH>(dqkv + (size_t)b * n * stride + h * dh, dq, r0, n, stride, dh, 1.0f, 1.0f);
}

/* dk, dv. Grid (key tiles, B H), the longest (first) tiles first; queries
 * stream in tiles of QR rows. */
template <int DH, int QR>
static __global__ void __launch_bounds__(MMA_THREADS)
    mma_dkdv_kernel(float *dqkv, const float *dout, const float *qkv, const float *lse,
                    const float *rowdot, int n, int H, int dh, float scale2, float scale) {
    constexpr int S = DH + 8, N8 = QR / 8;
    __shared__ __align__(16) __nv_bfloat16 qs[QR * S], gs[QR * S];
    __shared__ float lse_s[QR], dot_s[QR];
    int tile = blockIdx.x, b = blockIdx.y / H, h = blockIdx.y % H, D = H * dh;
    size_t stride = 3 * (size_t)D;
    const float *base = qkv + (size_t)b * n * stride;
    const float *gbase = dout + (size_t)b * n * D;
    int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    int first = tile * MMA_ROWS + warp * 16, k0 = first + g; /* this thread's keys: k0, k0 + 8 */
    uint32_t kf[DH / 16][4], vf[DH / 16][4];
    load_a_fragments<DH>(kf, base, first, n, stride, D + h * dh, dh);
    load_a_fragments<DH>(vf, base, first, n, stride, 2 * D + h * dh, dh);
    float dk[DH / 8][4], dv[DH / 8][4];
#pragma unroll
    for (int j = 0; j < DH / 8; j++) {
        dk[j][0] = dk[j][1] = dk[j][2] = dk[j][3] = 0.0f;
        dv[j][0] = dv[j][1] = dv[j][2] = dv[j][3] = 0.0f;
    }
    const float *row_lse = lse + ((size_t)b * H + h) * n, *row_dot = rowdot + ((size_t)b * H + h) * n;
    int tiles = (n + QR - 1) / QR;
    for (int qt = tile * MMA_ROWS / QR; qt < tiles; qt++) {
        __syncthreads();
        load_tile<DH, QR>(qs, base, qt * QR, n, stride, h * dh, dh);
        load_tile<DH, QR>(gs, gbase, qt * QR, n, (size_t)D, h * dh, dh);
        for (int e = threadIdx.x; e < QR; e += blockDim.x) {
            int i = qt * QR + e;
            lse_s[e] = i < n ? row_lse[i] * LOG2E : 0.0f;
            dot_s[e] = i < n ? row_dot[i] : 0.0f;
        }
        __syncthreads();
        /* transposed scores: rows are this warp's keys, columns the queries */
        float st[N8][4], dpt[N8][4];
        product_rows<DH, N8>(st, kf, qs);
        product_rows<DH, N8>(dpt, vf, gs);
#pragma unroll
        for (int j = 0; j < N8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int col = j * 8 + 2 * t + (e & 1), query = qt * QR + col;
                int key = e < 2 ? k0 : k0 + 8;
                float p = query >= key && query < n ? exp2f(st[j][e] * scale2 - lse_s[col]) : 0.0f;
                st[j][e] = p;
                dpt[j][e] = p * (dpt[j][e] - dot_s[col]) * scale;
            }
        accumulate_rows<DH, N8>(dv, st, gs);
        accumulate_rows<DH, N8>(dk, dpt, qs);
    }
    float *rows = dqkv + (size_t)b * n * stride;
    store_rows<DH>(rows + D + h * dh, dk, k0, n, stride, dh, 1.0f, 1.0f);
    store_rows<DH>(rows + 2 * D + h * dh, dv, k0, n, stride, dh, 1.0f, 1.0f);
}

int attention_mma_supports(int dh) { return dh >= 2 && dh <= 128 && dh % 2 == 0; }

/* The template head size for dh: 16, 32, 64 or 128. */
static int mma_head_size(int dh) { return dh <= 16 ? 16 : dh <= 32 ? 32 : dh <= 64 ? 64 : 128; }

template <int DH>
static int launch_mma_forward(float *out, float *lse, const float *qkv, int B, int n, int H,
                              int dh, cudaStream_t stream) {
    float scale = (float)(1.0 / sqrt((double)dh));
    dim3 grid((unsigned)((n + MMA_ROWS - 1) / MMA_ROWS), (unsigned)(B * H));
    mma_forward_kernel<DH><<<grid, MMA_THREADS, 0, stream>>>(out, lse, qkv, n, H, dh,
                                                             scale * LOG2E);
    return cuda_launched("mma_forward_kernel");
}

int attention_mma_forward(float *out, float *lse, const float *qkv, int B, int n, int H, int dh,
                          cudaStream_t stream) {
    if (B == 0 || n == 0) return 0;
    if (!attention_mma_supports(dh))
        return cuda_status(cudaErrorInvalidValue, "attention_mma_forward: head dim not even or > 128");
    switch (mma_head_size(dh)) {
    case 16: return launch_mma_forward<16>(out, lse, qkv, B, n, H, dh, stream);
    case 32: return launch_mma_forward<32>(out, lse, qkv, B, n, H, dh, stream);
    case 64: return launch_mma_forward<64>(out, lse, qkv, B, n, H, dh, stream);
    default: return launch_mma_forward<128>(out, lse, qkv, B, n, H, dh, stream);
    }
}

/* Query tile of the dk/dv kernel: 64 rows, 32 at head size 128 (registers). */
template <int DH>
static int launch_mma_backward(float *dqkv, const float *dout, const float *qkv,
                               const float *lse, const float *rowdot, int B, int n, int H,
                               int dh, cudaStream_t stream) {
    float scale = (float)(1.0 / sqrt((double)dh));
    dim3 grid((unsigned)((n + MMA_ROWS - 1) / MMA_ROWS), (unsigned)(B * H));
    mma_dq_kernel<DH><<<grid, MMA_THREADS, 0, stream>>>(dqkv, dout, qkv, lse, rowdot, n, H, dh,
                                                        scale * LOG2E, scale);
    if (cuda_launched("mma_dq_kernel")) return -1;
    constexpr int QR = DH > 64 ? 32 : 64;
    mma_dkdv_kernel<DH, QR><<<grid, MMA_THREADS, 0, stream>>>(dqkv, dout, qkv, lse, rowdot, n,
                                                              H, dh, scale * LOG2E, scale);
    return cuda_launched("mma_dkdv_kernel");
}

int attention_mma_backward(float *dqkv, float *rowdot, const float *dout, const float *out,
                           const float *qkv, const float *lse, int B, int n, int H, int dh,
                           cudaStream_t stream) {
    if (B == 0 || n == 0) return 0;
    if (!attention_mma_supports(dh))
        return cuda_status(cudaErrorInvalidValue, "attention_mma_backward: head dim not even or > 128");
    if (attention_rowdot(rowdot, dout, out, B, n, H, dh, stream)) return -1;
    switch (mma_head_size(dh)) {
    case 16: return launch_mma_backward<16>(dqkv, dout, qkv, lse, rowdot, B, n, H, dh, stream);
    case 32: return launch_mma_backward<32>(dqkv, dout, qkv, lse, rowdot, B, n, H, dh, stream);
    case 64: return launch_mma_backward<64>(dqkv, dout, qkv, lse, rowdot, B, n, H, dh, stream);
    default: return launch_mma_backward<128>(dqkv, dout, qkv, lse, rowdot, B, n, H, dh, stream);
    }
}
