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
 * shared memory (cp.async, double-buffered) from head-major bf16 copies of
 * q, k, v and dout (attention_mma_pack, packed once per layer with RoPE
 * applied; the backward packs dout with its row dots). The dk/dv kernel
 * streams query tiles of 32 rows from head size 64 on, and the backward
 * kernels cap their registers so that 4 (dq) and 3 (dk/dv) blocks share
 * an SM at head size 64.
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

#include "cuda_attention_tiles.cuh"
#include "cuda_check.cuh"

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

/* Four 8 x 8 bf16 matrices; lane l gives the address of row l % 8 of
 * matrix l / 8 and receives (row l / 4, columns 2 (l % 4), + 1) of each. */
static __device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const __nv_bfloat16 *p) {
    uint32_t address = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}

/* Copies rows [row0, row0 + R) of one head's packed (n, DH) bf16 array
 * into the shared tile (R, DH + 8) with cp.async (16 bytes at a time, zero
 * filled beyond n rows); the caller commits the group. */
template <int DH, int R>
static __device__ void stage_tile(__nv_bfloat16 *tile, const __nv_bfloat16 *head, int row0,
                                  int n) {
    constexpr int S = DH + 8, CHUNKS = DH / 8;
    for (int e = threadIdx.x; e < R * CHUNKS; e += blockDim.x) {
        int r = e / CHUNKS, c = (e % CHUNKS) * 8, row = row0 + r;
        const __nv_bfloat16 *src = head + (size_t)(row < n ? row : 0) * DH + c;
        async_copy16(tile + r * S + c, src, row < n ? 16 : 0);
    }
}

/* packed (parts, B, H, n, DH) bf16 = the parts' head columns of src (B, n,
 * row stride `stride`; part p, head h at column p D + h dh; fp32 or bf16),
 * zero beyond dh. */
template <typename In>
static __global__ void pack_heads_kernel(__nv_bfloat16 *packed, const In *src, int parts, int B,
                                         int n, int H, int dh, int DH, size_t stride) {
    size_t pairs = (size_t)parts * B * H * n * (DH / 2);
    size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < pairs; e += step) {
        int c = (int)(e % (DH / 2)) * 2;
        size_t rest = e / (DH / 2);
        int i = (int)(rest % n);
        rest /= n;
        int h = (int)(rest % H);
        rest /= H;
        int b = (int)(rest % B), part = (int)(rest / B);
        float x = 0.0f, y = 0.0f;
        if (c < dh) {
            const In *at = src + ((size_t)b * n + i) * stride + (size_t)part * H * dh + h * dh + c;
            x = as_float(at[0]);
            y = as_float(at[1]);
        }
        *(uint32_t *)(packed + 2 * e) = pack_bf16x2(x, y);
    }
}

template <typename In>
static int pack_heads(__nv_bfloat16 *packed, const In *src, int parts, int B, int n, int H,
                      int dh, int DH, size_t stride, cudaStream_t stream) {
    size_t pairs = (size_t)parts * B * H * n * (DH / 2);
    size_t blocks = (pairs + 255) / 256;
    pack_heads_kernel<In><<<(unsigned)(blocks < 16384 ? blocks : 16384), 256, 0, stream>>>(
        packed, src, parts, B, n, H, dh, DH, stride);
    return cuda_launched("pack_heads_kernel");
}

/* heads (3, B, H, n, DH) bf16 = q and k of qkv (B, n, 3 D; fp32 or bf16)
 * rotated by RoPE (cos_t, sin_t (n, dh/2); as rope_apply, sign +1), and v,
 * per head, zero beyond dh. W columns a thread (W = 2 needs dh % 4 == 0,
 * W = 4 dh % 8 == 0). Grid (column groups of a row, rows b n + i,
 * striding by gridDim.y):
 * thread x covers part p, head h and the columns m .. m + W - 1 (m = W (x
 * % (DH / 2W))) with their partners m + dh/2 .., or, for m >= dh/2, the
 * 2 W padding columns from dh + 2 (m - dh/2). */
template <typename In, int W>
static __global__ void rope_pack_heads_kernel(__nv_bfloat16 *heads, const In *qkv,
                                              const float *cos_t, const float *sin_t, int B,
                                              int n, int H, int dh, int DH) {
    int x = blockIdx.x * blockDim.x + threadIdx.x, per_head = DH / (2 * W);
    if (x >= 3 * H * per_head) return;
    int part = x / (H * per_head), h = x / per_head % H, m = W * (x % per_head), half = dh / 2;
    int D = H * dh;
    for (unsigned row = blockIdx.y; row < (unsigned)B * n; row += gridDim.y) {
        unsigned b = row / n;
        int i = (int)(row - b * n);
        __nv_bfloat16 *dst = heads + (((size_t)part * B + b) * H + h) * n * DH + (size_t)i * DH;
        if (m >= half) {
            int c = dh + 2 * (m - half);
            for (int k = 0; k < 2 * W; k++) dst[c + k] = __float2bfloat16_rn(0.0f);
            continue;
        }
        const In *src = qkv + (size_t)row * 3 * D + (size_t)part * D + (size_t)h * dh;
        float a[W], a2[W];
        load_values<W>(a, src + m);
        load_values<W>(a2, src + m + half);
        if (part < 2) {
            float c[W], sn[W];
            load_values<W>(c, cos_t + (size_t)i * half + m);
            load_values<W>(sn, sin_t + (size_t)i * half + m);
#pragma unroll
            for (int k = 0; k < W; k++) rope_rotate(&a[k], &a2[k], a[k], a2[k], c[k], sn[k]);
        }
        store_values<W>(dst + m, a);
        store_values<W>(dst + m + half, a2);
    }
}

/* qkv (B, n, 3 D) fp32 = the values of heads (3, B, H, n, DH), the inverse
 * of pack_heads; one thread per element of qkv. */
static __global__ void unpack_heads_kernel(float *qkv, const __nv_bfloat16 *heads, int B, int n,
                                           int H, int dh, int DH) {
    size_t D = (size_t)H * dh, count = (size_t)B * n * 3 * D;
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= count) return;
    size_t row = e / (3 * D), col = e % (3 * D);
    int part = (int)(col / D), h = (int)(col % D) / dh, c = (int)(col % D) % dh;
    size_t b = row / n, i = row % n;
    qkv[e] = __bfloat162float(heads[(((size_t)part * B + b) * H + h) * n * DH + i * DH + c]);
}

/* dout16 (B, H, n, DH) bf16 = dout's head columns (B, n, D), zero beyond
 * dh; rowdot (B, H, n) = dout_i . out_i per head (the backward's D_i), out
 * fp32 or bf16. One warp per (b, h, i). */
template <typename Out>
static __global__ void pack_dout_rowdot_kernel(__nv_bfloat16 *dout16, float *rowdot,
                                               const float *dout, const Out *out, int B, int n,
                                               int H, int dh, int DH) {
    /* (b H + h) n + i, in 32 bits: dividing in 64 cost more than the row's loads */
    unsigned row = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    if (row >= (unsigned)B * H * n) return;
    unsigned bh = row / n;
    int i = (int)(row - bh * n), h = (int)(bh % H), b = (int)(bh / H);
    size_t at = ((size_t)b * n + i) * H * dh + (size_t)h * dh;
    float dot = 0.0f;
    for (int c = 2 * lane; c < DH; c += 64) {
        float2 g = make_float2(0.0f, 0.0f);
        if (c < dh) {
            g = make_float2(dout[at + c], dout[at + c + 1]);
            dot += g.x * as_float(out[at + c]) + g.y * as_float(out[at + c + 1]);
        }
        *(uint32_t *)(dout16 + (size_t)row * DH + c) = pack_bf16x2(g.x, g.y);
    }
    dot = warp_sum(dot);
    if (lane == 0) rowdot[row] = dot;
}

/* acc[w] (16 x 8 N8 tiles) = a[w] (16 x DH, fragments) times the transpose
 * of the shared tile's rows [0, 8 N8) (each DH long), for the warp's WT
 * row tiles w: acc[w][j] = a[w] . tile_row^T. Each B fragment of the tile
 * (four at a time from ldmatrix, 8 rows by 32 columns, or as words for DH
 * = 16) serves all WT row tiles. */
template <int DH, int N8, int WT>
static __device__ void product_rows(float acc[WT][N8][4], const uint32_t a[WT][DH / 16][4],
                                    const __nv_bfloat16 *tile) {
    constexpr int S = DH + 8;
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int j = 0; j < N8; j++) {
#pragma unroll
        for (int w = 0; w < WT; w++) acc[w][j][0] = acc[w][j][1] = acc[w][j][2] = acc[w][j][3] = 0.0f;
        if constexpr (DH >= 32) {
            const __nv_bfloat16 *rows = tile + (j * 8 + lane % 8) * S + (lane / 8) * 8;
#pragma unroll
            for (int k32 = 0; k32 < DH / 32; k32++) {
                uint32_t b[4];
                ldmatrix_x4(b, rows + k32 * 32);
#pragma unroll
                for (int w = 0; w < WT; w++) {
                    mma_bf16(acc[w][j], a[w][2 * k32], b[0], b[1]);
                    mma_bf16(acc[w][j], a[w][2 * k32 + 1], b[2], b[3]);
                }
            }
        } else {
            const __nv_bfloat16 *row = tile + (j * 8 + g) * S + 2 * t;
#pragma unroll
            for (int kk = 0; kk < DH / 16; kk++) {
                uint32_t b0 = load_word(row + kk * 16), b1 = load_word(row + kk * 16 + 8);
#pragma unroll
                for (int w = 0; w < WT; w++) mma_bf16(acc[w][j], a[w][kk], b0, b1);
            }
        }
    }
}

/* out[w] (16 x DH) += p[w] (16 x 8 N8, C fragments, rounded to bf16) times
 * the shared tile's rows [0, 8 N8) (each DH long), for the warp's WT row
 * tiles; each ldmatrix of the tile serves all of them. */
template <int DH, int N8, int WT>
static __device__ void accumulate_rows(float out[WT][DH / 8][4], const float p[WT][N8][4],
                                       const __nv_bfloat16 *tile) {
    constexpr int S = DH + 8;
    int lane = threadIdx.x % 32;
    int row_in = (lane % 8) + ((lane / 8) % 2) * 8, col_in = (lane / 16) * 8;
#pragma unroll
    for (int kk = 0; kk < N8 / 2; kk++) {
        uint32_t a[WT][4];
#pragma unroll
        for (int w = 0; w < WT; w++) c_pair_to_a(a[w], p[w][2 * kk], p[w][2 * kk + 1]);
#pragma unroll
        for (int dn = 0; dn < DH / 16; dn++) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, tile + (kk * 16 + row_in) * S + dn * 16 + col_in);
#pragma unroll
            for (int w = 0; w < WT; w++) {
                mma_bf16(out[w][2 * dn], a[w], b[0], b[1]);
                mma_bf16(out[w][2 * dn + 1], a[w], b[2], b[3]);
            }
        }
    }
}

/* Bytes of dynamic shared memory of a kernel streaming two (R, DH + 8)
 * tiles, double-buffered. */
static constexpr size_t stream_smem(int DH, int R) { return 4 * (size_t)R * (DH + 8) * 2; }

/* Key/value tiles of 64 rows streamed double-buffered through smem
 * ([stage][k, v], each tile (64, DH + 8)): kv_begin stages tile 0;
 * kv_next, at tile kt of 0 .. last, stages tile kt + 1 (if any) into the
 * other buffer, waits for tile kt and returns its K tile (V follows it).
 * The caller syncs the block after using a tile. */
template <int DH>
static __device__ void kv_begin(__nv_bfloat16 *smem, const __nv_bfloat16 *kh,
                                const __nv_bfloat16 *vh, int n) {
    constexpr int TILE = MMA_ROWS * (DH + 8);
    stage_tile<DH, MMA_ROWS>(smem, kh, 0, n);
    stage_tile<DH, MMA_ROWS>(smem + TILE, vh, 0, n);
    async_commit();
}

template <int DH>
static __device__ const __nv_bfloat16 *kv_next(__nv_bfloat16 *smem, const __nv_bfloat16 *kh,
                                               const __nv_bfloat16 *vh, int kt, int last,
                                               int n) {
    constexpr int TILE = MMA_ROWS * (DH + 8);
    if (kt < last) {
        __nv_bfloat16 *next = smem + ((kt + 1) % 2) * 2 * TILE;
        stage_tile<DH, MMA_ROWS>(next, kh, (kt + 1) * MMA_ROWS, n);
        stage_tile<DH, MMA_ROWS>(next + TILE, vh, (kt + 1) * MMA_ROWS, n);
        async_commit();
        async_wait<1>();
    } else {
        async_wait<0>();
    }
    __syncthreads();
    return smem + (kt % 2) * 2 * TILE;
}

/* Forward on packed (3, B, H, n, DH) q, k, v. Grid (query tiles of WT 64
 * rows, B H), the longest (last) tiles first; each warp takes WT row tiles
 * of 16 consecutive rows (so that every key fragment it loads serves WT
 * products), keys and values stream double-buffered in tiles of 64, and a
 * warp skips a key tile that lies wholly after its rows. The softmax runs
 * on the raw scores: m is the raw row maximum, p = 2^(s scale2 - m
 * scale2) with one fused multiply-add, and masking happens only in tiles
 * that cross the diagonal or the end. */
template <int DH, int WT>
static __global__ void __launch_bounds__(MMA_THREADS)
    mma_forward_kernel(float *out, __nv_bfloat16 *out16, float *lse, const __nv_bfloat16 *packed,
                       int B, int n, int H, int dh, float scale2) {
    constexpr int S = DH + 8, N8 = MMA_ROWS / 8, TILE = MMA_ROWS * S, ROWS = WT * MMA_ROWS;
    extern __shared__ __align__(16) __nv_bfloat16 smem[]; /* [stage][k, v] tiles */
    int tile = gridDim.x - 1 - blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, D = H * dh;
    size_t head = (size_t)n * DH, heads = (size_t)B * H;
    const __nv_bfloat16 *qh = packed + bh * head, *kh = packed + (heads + bh) * head,
                        *vh = packed + (2 * heads + bh) * head;
    int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    /* the warp's rows: first .. first + 16 WT - 1; this thread's in row
     * tile w: first + 16 w + g and + 8 */
    int first = tile * ROWS + warp * 16 * WT, last_row = first + 16 * WT - 1;
    int last = ((tile + 1) * ROWS < n ? (tile + 1) * ROWS - 1 : n - 1) / MMA_ROWS;
    kv_begin<DH>(smem, kh, vh, n);
    uint32_t qf[WT][DH / 16][4];
#pragma unroll
    for (int w = 0; w < WT; w++) load_a_fragments<DH>(qf[w], qh, first + 16 * w, n);
    float o[WT][DH / 8][4], m[WT][2], l[WT][2];
#pragma unroll
    for (int w = 0; w < WT; w++) {
#pragma unroll
        for (int j = 0; j < DH / 8; j++) o[w][j][0] = o[w][j][1] = o[w][j][2] = o[w][j][3] = 0.0f;
        m[w][0] = m[w][1] = -INFINITY;
        l[w][0] = l[w][1] = 0.0f;
    }
    for (int kt = 0; kt <= last; kt++) {
        const __nv_bfloat16 *ks = kv_next<DH>(smem, kh, vh, kt, last, n), *vs = ks + TILE;
        if (kt * MMA_ROWS <= last_row) {
            float s[WT][N8][4];
            product_rows<DH, N8, WT>(s, qf, ks);
            if ((kt + 1) * MMA_ROWS - 1 > first || (kt + 1) * MMA_ROWS > n) {
#pragma unroll
                for (int w = 0; w < WT; w++)
#pragma unroll
                    for (int j = 0; j < N8; j++)
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            int key = kt * MMA_ROWS + j * 8 + 2 * t + (e & 1);
                            int row = first + 16 * w + g + (e < 2 ? 0 : 8);
                            if (key > row || key >= n) s[w][j][e] = -INFINITY;
                        }
            }
#pragma unroll
            for (int w = 0; w < WT; w++)
                softmax_rows<N8, DH>(s[w], m[w][0], m[w][1], l[w][0], l[w][1], o[w], scale2);
            accumulate_rows<DH, N8, WT>(o, s, vs);
        }
        __syncthreads(); /* the next iteration stages into this buffer */
    }
#pragma unroll
    for (int w = 0; w < WT; w++) {
        float l0 = l[w][0], l1 = l[w][1];
#pragma unroll
        for (int offset = 1; offset < 4; offset *= 2) {
            l0 += __shfl_xor_sync(0xffffffffu, l0, offset);
            l1 += __shfl_xor_sync(0xffffffffu, l1, offset);
        }
        int r0 = first + 16 * w + g;
        if (out)
            store_rows<DH>(out + (size_t)b * n * D + h * dh, o[w], r0, n, (size_t)D, dh,
                           1.0f / l0, 1.0f / l1);
        if (out16)
            store_rows<DH>(out16 + (size_t)b * n * D + h * dh, o[w], r0, n, (size_t)D, dh,
                           1.0f / l0, 1.0f / l1);
        if (t == 0) {
            float *row_lse = lse + (size_t)bh * n;
            if (r0 < n) row_lse[r0] = m[w][0] * scale2 * LN2 + logf(l0);
            if (r0 + 8 < n) row_lse[r0 + 8] = m[w][1] * scale2 * LN2 + logf(l1);
        }
    }
}

/* Blocks per SM the backward kernels are compiled for (registers capped
 * to fit them): at head size 64, 4 for dq and 3 for dk/dv with one row
 * tile a warp (measured on the H200 at d = 768: 3.5% faster steps than 2
 * each, with a few bytes of spills), 2 with two; elsewhere what the
 * registers give. */
static constexpr int dq_blocks(int DH, int WT) { return DH != 64 ? 1 : WT == 1 ? 4 : 2; }
static constexpr int dkdv_blocks(int DH, int WT) { return DH != 64 ? 1 : WT == 1 ? 3 : 2; }


/* dq from packed q, k, v and packed dout (B, H, n, DH). Grid (query tiles
 * of WT 64 rows, B H), the longest first; each warp takes WT row tiles of
 * 16 consecutive rows; keys and values stream double-buffered in tiles of
 * 64, used KN keys at a time (32 with two row tiles, for the registers),
 * skipped where they lie wholly after the warp's rows. Stored as T,
 * rotated back by RoPE when cos_t is given (T bf16, dh % 16 == 0). */
template <int DH, int WT, typename T>
static __global__ void __launch_bounds__(MMA_THREADS, dq_blocks(DH, WT))
    mma_dq_kernel(T *dqkv, const __nv_bfloat16 *packed, const __nv_bfloat16 *dout16,
                  const float *lse, const float *rowdot, const float *cos_t, const float *sin_t,
                  int B, int n, int H, int dh, float scale2, float scale) {
    constexpr int S = DH + 8, TILE = MMA_ROWS * S, ROWS = WT * MMA_ROWS;
    constexpr int KN = WT == 1 ? MMA_ROWS : 32, N8 = KN / 8;
    extern __shared__ __align__(16) __nv_bfloat16 smem[]; /* [stage][k, v] tiles */
    int tile = gridDim.x - 1 - blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, D = H * dh;
    size_t head = (size_t)n * DH, heads = (size_t)B * H, stride = 3 * (size_t)D;
    const __nv_bfloat16 *qh = packed + bh * head, *kh = packed + (heads + bh) * head,
                        *vh = packed + (2 * heads + bh) * head, *gh = dout16 + bh * head;
    int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    int first = tile * ROWS + warp * 16 * WT, last_row = first + 16 * WT - 1;
    int last = ((tile + 1) * ROWS < n ? (tile + 1) * ROWS - 1 : n - 1) / MMA_ROWS;
    kv_begin<DH>(smem, kh, vh, n);
    uint32_t qf[WT][DH / 16][4], gf[WT][DH / 16][4];
    const float *row_lse = lse + (size_t)bh * n, *row_dot = rowdot + (size_t)bh * n;
    float lse2[WT][2], dot[WT][2], dq[WT][DH / 8][4];
#pragma unroll
    for (int w = 0; w < WT; w++) {
        load_a_fragments<DH>(qf[w], qh, first + 16 * w, n);
        load_a_fragments<DH>(gf[w], gh, first + 16 * w, n);
        int r0 = first + 16 * w + g;
        lse2[w][0] = r0 < n ? row_lse[r0] * LOG2E : 0.0f;
        lse2[w][1] = r0 + 8 < n ? row_lse[r0 + 8] * LOG2E : 0.0f;
        dot[w][0] = r0 < n ? row_dot[r0] : 0.0f;
        dot[w][1] = r0 + 8 < n ? row_dot[r0 + 8] : 0.0f;
#pragma unroll
        for (int j = 0; j < DH / 8; j++) dq[w][j][0] = dq[w][j][1] = dq[w][j][2] = dq[w][j][3] = 0.0f;
    }
    for (int kt = 0; kt <= last; kt++) {
        const __nv_bfloat16 *ks = kv_next<DH>(smem, kh, vh, kt, last, n), *vs = ks + TILE;
#pragma unroll
        for (int part = 0; part < MMA_ROWS / KN; part++) {
            int key0 = kt * MMA_ROWS + part * KN;
            if (key0 > last_row) continue;
            const __nv_bfloat16 *kp = ks + part * KN * S, *vp = vs + part * KN * S;
            float s[WT][N8][4], dp[WT][N8][4];
            product_rows<DH, N8, WT>(s, qf, kp);
            product_rows<DH, N8, WT>(dp, gf, vp);
            bool masked = key0 + KN - 1 > first || key0 + KN > n;
#pragma unroll
            for (int w = 0; w < WT; w++)
#pragma unroll
                for (int j = 0; j < N8; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        int key = key0 + j * 8 + 2 * t + (e & 1);
                        int row = first + 16 * w + g + (e < 2 ? 0 : 8);
                        float p = exp2_fast(fmaf(s[w][j][e], scale2, -lse2[w][e / 2]));
                        if (masked && (key > row || key >= n)) p = 0.0f;
                        s[w][j][e] = p * (dp[w][j][e] - dot[w][e / 2]) * scale;
                    }
            accumulate_rows<DH, N8, WT>(dq, s, kp);
        }
        __syncthreads();
    }
    T *rows = dqkv + (size_t)b * n * stride + h * dh;
#pragma unroll
    for (int w = 0; w < WT; w++) {
        int r0 = first + 16 * w + g;
        if (cos_t)
            store_rows_unrotated<DH>((__nv_bfloat16 *)rows, dq[w], r0, n, stride, cos_t, sin_t);
        else
            store_rows<DH>(rows, dq[w], r0, n, stride, dh, 1.0f, 1.0f);
    }
}

/* dk, dv from packed q, k, v and dout. Grid (key tiles of WT 64 rows, B
 * H), the longest (first) tiles first; each warp takes WT tiles of 16
 * consecutive keys; queries and dout stream double-buffered in tiles of
 * QR rows, with their lse and row dots, skipped by a warp where they lie
 * wholly before its keys. */
template <int DH, int QR, int WT, typename T>
static __global__ void __launch_bounds__(MMA_THREADS, dkdv_blocks(DH, WT))
    mma_dkdv_kernel(T *dqkv, const __nv_bfloat16 *packed, const __nv_bfloat16 *dout16,
                    const float *lse, const float *rowdot, const float *cos_t,
                    const float *sin_t, int B, int n, int H, int dh, float scale2, float scale) {
    constexpr int S = DH + 8, N8 = QR / 8, TILE = QR * S, ROWS = WT * MMA_ROWS;
    extern __shared__ __align__(16) __nv_bfloat16 smem[]; /* [stage][q, dout] tiles */
    __shared__ float lse_s[2][QR], dot_s[2][QR];
    int tile = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, D = H * dh;
    size_t head = (size_t)n * DH, heads = (size_t)B * H, stride = 3 * (size_t)D;
    const __nv_bfloat16 *qh = packed + bh * head, *kh = packed + (heads + bh) * head,
                        *vh = packed + (2 * heads + bh) * head, *gh = dout16 + bh * head;
    int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    /* the warp's keys: first .. last_key; this thread's in key tile w:
     * first + 16 w + g and + 8 */
    int first = tile * ROWS + warp * 16 * WT, last_key = first + 16 * WT - 1;
    const float *row_lse = lse + (size_t)bh * n, *row_dot = rowdot + (size_t)bh * n;
    int qt0 = tile * ROWS / QR, tiles = (n + QR - 1) / QR;
    /* stages query tile qt into buffer `stage` */
    auto stage = [&](int qt, int buffer) {
        __nv_bfloat16 *dst = smem + buffer * 2 * TILE;
        stage_tile<DH, QR>(dst, qh, qt * QR, n);
        stage_tile<DH, QR>(dst + TILE, gh, qt * QR, n);
        async_commit();
        for (int e = threadIdx.x; e < QR; e += blockDim.x) {
            int i = qt * QR + e;
            lse_s[buffer][e] = i < n ? row_lse[i] * LOG2E : 0.0f;
            dot_s[buffer][e] = i < n ? row_dot[i] : 0.0f;
        }
    };
    stage(qt0, 0);
    uint32_t kf[WT][DH / 16][4], vf[WT][DH / 16][4];
    float dk[WT][DH / 8][4], dv[WT][DH / 8][4];
#pragma unroll
    for (int w = 0; w < WT; w++) {
        load_a_fragments<DH>(kf[w], kh, first + 16 * w, n);
        load_a_fragments<DH>(vf[w], vh, first + 16 * w, n);
#pragma unroll
        for (int j = 0; j < DH / 8; j++) {
            dk[w][j][0] = dk[w][j][1] = dk[w][j][2] = dk[w][j][3] = 0.0f;
            dv[w][j][0] = dv[w][j][1] = dv[w][j][2] = dv[w][j][3] = 0.0f;
        }
    }
    for (int qt = qt0; qt < tiles; qt++) {
        int buffer = (qt - qt0) % 2;
        if (qt + 1 < tiles) {
            stage(qt + 1, 1 - buffer);
            async_wait<1>();
        } else {
            async_wait<0>();
        }
        __syncthreads();
        int query0 = qt * QR;
        if (query0 + QR - 1 >= first) {
            const __nv_bfloat16 *qs = smem + buffer * 2 * TILE, *gs = qs + TILE;
            const float *lse_tile = lse_s[buffer], *dot_tile = dot_s[buffer];
            /* transposed scores: rows are this warp's keys, columns the queries */
            float st[WT][N8][4], dpt[WT][N8][4];
            product_rows<DH, N8, WT>(st, kf, qs);
            product_rows<DH, N8, WT>(dpt, vf, gs);
            bool masked = query0 < last_key || query0 + QR > n;
#pragma unroll
            for (int w = 0; w < WT; w++)
#pragma unroll
                for (int j = 0; j < N8; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        int col = j * 8 + 2 * t + (e & 1), query = query0 + col;
                        int key = first + 16 * w + g + (e < 2 ? 0 : 8);
                        float p = exp2_fast(fmaf(st[w][j][e], scale2, -lse_tile[col]));
                        if (masked && (query < key || query >= n)) p = 0.0f;
                        st[w][j][e] = p;
                        dpt[w][j][e] = p * (dpt[w][j][e] - dot_tile[col]) * scale;
                    }
            accumulate_rows<DH, N8, WT>(dv, st, gs);
            accumulate_rows<DH, N8, WT>(dk, dpt, qs);
        }
        __syncthreads();
    }
    T *rows = dqkv + (size_t)b * n * stride;
#pragma unroll
    for (int w = 0; w < WT; w++) {
        int k0 = first + 16 * w + g;
        if (cos_t)
            store_rows_unrotated<DH>((__nv_bfloat16 *)(rows + D + h * dh), dk[w], k0, n, stride,
                                     cos_t, sin_t);
        else
            store_rows<DH>(rows + D + h * dh, dk[w], k0, n, stride, dh, 1.0f, 1.0f);
        store_rows<DH>(rows + 2 * D + h * dh, dv[w], k0, n, stride, dh, 1.0f, 1.0f);
    }
}

int attention_mma_supports(int dh) { return dh >= 2 && dh <= 128 && dh % 2 == 0; }

int attention_mma_head_size(int dh) { return dh <= 16 ? 16 : dh <= 32 ? 32 : dh <= 64 ? 64 : 128; }

size_t attention_mma_heads(int B, int n, int H, int dh) {
    return (size_t)3 * B * H * n * attention_mma_head_size(dh);
}

/* Allows a kernel more than 48 KiB of dynamic shared memory (once per
 * size: cuda_allow_smem). */
template <typename Kernel>
static int allow_smem(Kernel kernel, size_t bytes, const char *what) {
    return cuda_allow_smem((const void *)kernel, bytes, what);
}

template <typename In>
static int launch_pack(__nv_bfloat16 *heads, const In *qkv, const float *cos_t,
                       const float *sin_t, int B, int n, int H, int dh, cudaStream_t stream) {
    int DH = attention_mma_head_size(dh);
    size_t rows = (size_t)B * n;
    if (rows == 0) return 0;
    if (!cos_t) /* no rotation: the columns as they are */
        return pack_heads(heads, qkv, 3, B, n, H, dh, DH, 3 * (size_t)H * dh, stream);
    /* W columns a thread (loads and stores of W values); a block spans a
     * row's column groups (up to 512 threads) and strides over rows */
    int W = dh % 8 == 0 ? 4 : dh % 4 == 0 ? 2 : 1;
    size_t groups = (size_t)3 * H * (DH / (2 * W));
    unsigned threads = (unsigned)((groups + 31) / 32 * 32);
    if (threads > 512) threads = 512;
    dim3 grid((unsigned)((groups + threads - 1) / threads),
              (unsigned)(rows < 8192 ? rows : 8192));
    if (W == 4)
        rope_pack_heads_kernel<In, 4><<<grid, threads, 0, stream>>>(heads, qkv, cos_t, sin_t, B,
                                                                    n, H, dh, DH);
    else if (W == 2)
        rope_pack_heads_kernel<In, 2><<<grid, threads, 0, stream>>>(heads, qkv, cos_t, sin_t, B,
                                                                    n, H, dh, DH);
    else
        rope_pack_heads_kernel<In, 1><<<grid, threads, 0, stream>>>(heads, qkv, cos_t, sin_t, B,
                                                                    n, H, dh, DH);
    return cuda_launched("rope_pack_heads_kernel");
}

int attention_mma_pack(__nv_bfloat16 *heads, const float *qkv, const float *cos_t,
                       const float *sin_t, int B, int n, int H, int dh, cudaStream_t stream) {
    return launch_pack(heads, qkv, cos_t, sin_t, B, n, H, dh, stream);
}

int attention_mma_pack(__nv_bfloat16 *heads, const __nv_bfloat16 *qkv, const float *cos_t,
                       const float *sin_t, int B, int n, int H, int dh, cudaStream_t stream) {
    return launch_pack(heads, qkv, cos_t, sin_t, B, n, H, dh, stream);
}

int attention_mma_unpack(float *qkv, const __nv_bfloat16 *heads, int B, int n, int H, int dh,
                         cudaStream_t stream) {
    size_t count = (size_t)B * n * 3 * H * dh;
    if (count == 0) return 0;
    unpack_heads_kernel<<<cuda_blocks(count), CUDA_THREADS, 0, stream>>>(
        qkv, heads, B, n, H, dh, attention_mma_head_size(dh));
    return cuda_launched("unpack_heads_kernel");
}

template <int DH, int WT>
static int launch_forward_tiles(float *out, __nv_bfloat16 *out16, float *lse,
                                const __nv_bfloat16 *heads, int B, int n, int H, int dh,
                                cudaStream_t stream) {
    float scale = (float)(1.0 / sqrt((double)dh));
    size_t smem = stream_smem(DH, MMA_ROWS);
    dim3 grid((unsigned)((n + WT * MMA_ROWS - 1) / (WT * MMA_ROWS)), (unsigned)(B * H));
    if (allow_smem(mma_forward_kernel<DH, WT>, smem, "mma_forward_kernel")) return -1;
    mma_forward_kernel<DH, WT><<<grid, MMA_THREADS, smem, stream>>>(out, out16, lse, heads, B, n,
                                                                    H, dh, scale * LOG2E);
    return cuda_launched("mma_forward_kernel");
}

template <int DH>
static int launch_mma_forward(float *out, __nv_bfloat16 *out16, float *lse,
                              const __nv_bfloat16 *heads, int B, int n, int H, int dh,
                              cudaStream_t stream) {
    /* two row tiles a warp from 1024 rows on (head sizes <= 64: registers):
     * at n = 2048 8% faster on the H200; slower below 512 (fewer blocks) */
    if (DH == 64 && attention_wgmma_supports(dh))
        return attention_wgmma_forward(out, out16, lse, heads, B, n, H, dh, stream);
    constexpr int WIDE = DH <= 64 ? 2 : 1;
    if (n >= 1024) return launch_forward_tiles<DH, WIDE>(out, out16, lse, heads, B, n, H, dh, stream);
    return launch_forward_tiles<DH, 1>(out, out16, lse, heads, B, n, H, dh, stream);
}

int attention_mma_forward_heads(float *out, __nv_bfloat16 *out16, float *lse,
                                const __nv_bfloat16 *heads, int B, int n, int H, int dh,
                                cudaStream_t stream) {
    if (B == 0 || n == 0) return 0;
    if (!attention_mma_supports(dh))
        return cuda_status(cudaErrorInvalidValue, "attention_mma_forward: head dim not even or > 128");
    switch (attention_mma_head_size(dh)) {
    case 16: return launch_mma_forward<16>(out, out16, lse, heads, B, n, H, dh, stream);
    case 32: return launch_mma_forward<32>(out, out16, lse, heads, B, n, H, dh, stream);
    case 64: return launch_mma_forward<64>(out, out16, lse, heads, B, n, H, dh, stream);
    default: return launch_mma_forward<128>(out, out16, lse, heads, B, n, H, dh, stream);
    }
}

template <int DH, int WT, typename T>
static int launch_dq(T *dqkv, const __nv_bfloat16 *heads, const __nv_bfloat16 *dout16,
                     const float *lse, const float *rowdot, const float *cos_t,
                     const float *sin_t, int B, int n, int H, int dh, cudaStream_t stream) {
    float scale = (float)(1.0 / sqrt((double)dh));
    dim3 grid((unsigned)((n + WT * MMA_ROWS - 1) / (WT * MMA_ROWS)), (unsigned)(B * H));
    size_t smem = stream_smem(DH, MMA_ROWS);
    if (allow_smem(mma_dq_kernel<DH, WT, T>, smem, "mma_dq_kernel")) return -1;
    mma_dq_kernel<DH, WT, T><<<grid, MMA_THREADS, smem, stream>>>(
        dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, scale * LOG2E, scale);
    return cuda_launched("mma_dq_kernel");
}

/* Query tile of the dk/dv kernel: 64 rows below head size 64, 32 from it
 * on (registers: three blocks an SM at 64), 16 with two key tiles a warp. */
template <int DH, int WT, typename T>
static int launch_dkdv(T *dqkv, const __nv_bfloat16 *heads, const __nv_bfloat16 *dout16,
                       const float *lse, const float *rowdot, const float *cos_t,
                       const float *sin_t, int B, int n, int H, int dh, cudaStream_t stream) {
    constexpr int QR = WT == 2 ? 16 : DH >= 64 ? 32 : 64;
    float scale = (float)(1.0 / sqrt((double)dh));
    dim3 grid((unsigned)((n + WT * MMA_ROWS - 1) / (WT * MMA_ROWS)), (unsigned)(B * H));
    size_t smem = stream_smem(DH, QR);
    if (allow_smem(mma_dkdv_kernel<DH, QR, WT, T>, smem, "mma_dkdv_kernel")) return -1;
    mma_dkdv_kernel<DH, QR, WT, T><<<grid, MMA_THREADS, smem, stream>>>(
        dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, scale * LOG2E, scale);
    return cuda_launched("mma_dkdv_kernel");
}

template <int DH, typename T>
static int launch_mma_backward(T *dqkv, const __nv_bfloat16 *heads, const __nv_bfloat16 *dout16,
                               const float *lse, const float *rowdot, const float *cos_t,
                               const float *sin_t, int B, int n, int H, int dh,
                               cudaStream_t stream) {
    /* dq: two row tiles a warp from 1024 rows on (head sizes <= 64), 3%
     * faster at n = 2048 on the H200, slower below 1024; dk/dv: one (two,
     * registers capping it at two blocks an SM, measured 25% slower) */
    if (DH == 64 && attention_wgmma_supports(dh))
        return attention_wgmma_backward(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H,
                                        dh, stream);
    constexpr int WIDE = DH <= 64 ? 2 : 1;
    int status = n >= 1024 ? launch_dq<DH, WIDE>(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t,
                                                 B, n, H, dh, stream)
                           : launch_dq<DH, 1>(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B,
                                              n, H, dh, stream);
    if (status) return -1;
    return launch_dkdv<DH, 1>(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, stream);
}

template <typename T>
static int launch_mma_backward_sized(T *dqkv, const __nv_bfloat16 *heads,
                                     const __nv_bfloat16 *dout16, const float *lse,
                                     const float *rowdot, const float *cos_t, const float *sin_t,
                                     int B, int n, int H, int dh, cudaStream_t stream) {
    switch (attention_mma_head_size(dh)) {
    case 16: return launch_mma_backward<16>(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, stream);
    case 32: return launch_mma_backward<32>(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, stream);
    case 64: return launch_mma_backward<64>(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, stream);
    default: return launch_mma_backward<128>(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, stream);
    }
}

int attention_mma_unrotates(int dh) { return dh == attention_mma_head_size(dh); }

template <typename Out>
static int backward_heads(GemmContext *gc, float *dqkv, __nv_bfloat16 *dqkv16, float *rowdot,
                          const float *dout, const Out *out, const __nv_bfloat16 *heads,
                          const float *lse, const float *cos_t, const float *sin_t, int B, int n,
                          int H, int dh) {
    if (B == 0 || n == 0) return 0;
    if (!attention_mma_supports(dh))
        return cuda_status(cudaErrorInvalidValue, "attention_mma_backward: head dim not even or > 128");
    if (dqkv16 && !(attention_mma_unrotates(dh) && cos_t && sin_t))
        return cuda_status(cudaErrorInvalidValue, "attention_mma_backward: bf16 gradients need "
                                                  "the RoPE tables and a head dim multiple of 16");
    int DH = attention_mma_head_size(dh);
    size_t rows = (size_t)B * H * n;
    __nv_bfloat16 *dout16 = (__nv_bfloat16 *)gemm_work(gc, rows * DH * sizeof(__nv_bfloat16));
    if (!dout16) return -1;
    profile_begin(gc->profile, PROFILE_PACK, gc->stream);
    pack_dout_rowdot_kernel<Out><<<cuda_blocks(rows * 32), CUDA_THREADS, 0, gc->stream>>>(
        dout16, rowdot, dout, out, B, n, H, dh, DH);
    if (cuda_launched("pack_dout_rowdot_kernel")) return -1;
    profile_end(gc->profile, gc->stream);
    if (dqkv16)
        return launch_mma_backward_sized(dqkv16, heads, dout16, lse, rowdot, cos_t, sin_t, B, n,
                                         H, dh, gc->stream);
    return launch_mma_backward_sized(dqkv, heads, dout16, lse, rowdot, (const float *)NULL,
                                     (const float *)NULL, B, n, H, dh, gc->stream);
}

int attention_mma_backward_heads(GemmContext *gc, float *dqkv, __nv_bfloat16 *dqkv16,
                                 float *rowdot, const float *dout, const float *out,
                                 const __nv_bfloat16 *heads, const float *lse, const float *cos_t,
                                 const float *sin_t, int B, int n, int H, int dh) {
    return backward_heads(gc, dqkv, dqkv16, rowdot, dout, out, heads, lse, cos_t, sin_t, B, n, H,
                          dh);
}

int attention_mma_backward_heads(GemmContext *gc, float *dqkv, __nv_bfloat16 *dqkv16,
                                 float *rowdot, const float *dout, const __nv_bfloat16 *out,
                                 const __nv_bfloat16 *heads, const float *lse, const float *cos_t,
                                 const float *sin_t, int B, int n, int H, int dh) {
    return backward_heads(gc, dqkv, dqkv16, rowdot, dout, out, heads, lse, cos_t, sin_t, B, n, H,
                          dh);
}
