/*
 * cuda_attention_wgmma.cu: the bf16 causal attention of
 * cuda_attention_mma.cu (same inputs, outputs and equations) with
 * Hopper's warpgroup products (wgmma) in place of warp-level mma.sync,
 * for heads packed to 64 columns (33 <= dh <= 64).
 *
 * A warpgroup (4 warps, 128 threads) takes 64 rows (queries for the
 * forward and dq, keys for dk/dv), each warp 16 of them as before, and
 * every product is one m64n64k16 wgmma per 16 of k: the left factor (q,
 * dout, k, v, or the probabilities and dS just computed) from the warps'
 * registers, the right one read by the tensor cores straight from the
 * shared tile, once for all 64 rows (where mma.sync made each warp load
 * it into registers with ldmatrix). Tiles of 64 rows stream through
 * shared memory double-buffered (cp.async) in the 128-byte swizzled
 * layout (cuda_wgmma.cuh), which serves as the right factor both transposed (k
 * for q k^T, q for k q^T, ...) and not (v for p v, k for dS k, ...). A
 * block has WG warpgroups on consecutive 64-row tiles that share the
 * streamed tiles.
 */
#include "cuda_kernels.cuh"

#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_attention_tiles.cuh"
#include "cuda_check.cuh"
#include "cuda_wgmma.cuh"

enum { WG_THREADS = 128 };

/* Dynamic shared memory of a kernel streaming two (64, DH) swizzled
 * tiles, double-buffered, with room to align them to 1024 bytes. */
static constexpr size_t pair_smem(int DH) { return 4 * (size_t)MMA_ROWS * DH * 2 + 1024; }

/* Stages rows [row0, row0 + 64) of heads a and b into the swizzled tiles
 * at dst and dst + 64 DH, as one cp.async group. */
template <int DH>
static __device__ void stage_pair(__nv_bfloat16 *dst, const __nv_bfloat16 *a,
                                  const __nv_bfloat16 *b, int row0, int n) {
    stage_swizzled_tile<MMA_ROWS>(dst, a, row0, n);
    stage_swizzled_tile<MMA_ROWS>(dst + MMA_ROWS * DH, b, row0, n);
    async_commit();
}

/* Makes the pair staged last-but-`pending` visible to the tensor cores of
 * every warpgroup of the block. */
template <int PENDING>
static __device__ void pair_ready(void) {
    async_wait<PENDING>();
    fence_proxy_async();
    __syncthreads();
}

/* Key/value tiles streamed double-buffered ([stage][k, v]): at key tile
 * kt of 0 .. last, stages tile kt + 1 (if any) into the other buffer,
 * waits until tile kt is visible to the tensor cores and returns its K
 * tile (V follows it). The caller syncs the block after using it. */
template <int DH>
static __device__ const __nv_bfloat16 *next_pair(__nv_bfloat16 *smem, const __nv_bfloat16 *kh,
                                                 const __nv_bfloat16 *vh, int kt, int last,
                                                 int n) {
    constexpr int TILE = MMA_ROWS * DH;
    if (kt < last) {
        stage_pair<DH>(smem + ((kt + 1) % 2) * 2 * TILE, kh, vh, (kt + 1) * MMA_ROWS, n);
        pair_ready<1>();
    } else {
        pair_ready<0>();
    }
    return smem + (kt % 2) * 2 * TILE;
}

/* The A fragments of 64 x 64 C fragments (rounded to bf16): k step kk
 * takes C tiles 2 kk and 2 kk + 1. */
static __device__ __forceinline__ void c_to_a(uint32_t a[4][4], const float c[8][4]) {
#pragma unroll
    for (int kk = 0; kk < 4; kk++) c_pair_to_a(a[kk], c[2 * kk], c[2 * kk + 1]);
}

/* c (64 x 64 C fragments) = 0. */
static __device__ __forceinline__ void zero_tiles(float c[8][4]) {
#pragma unroll
    for (int j = 0; j < 8; j++) c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.0f;
}

/* c (64 x 64) = a (64 x DH, the warps' fragments) tile_rows^T, tile rows
 * [0, 64) of a swizzled tile. Issued, not waited for. */
template <int DH>
static __device__ __forceinline__ void issue_rows_transposed(float c[8][4],
                                                             const uint32_t a[DH / 16][4],
                                                             const __nv_bfloat16 *tile) {
#pragma unroll
    for (int kk = 0; kk < DH / 16; kk++)
        wgmma_m64n64k16<0>(&c[0][0], a[kk], b_rows_transposed(tile, kk), kk > 0);
}

/* c (64 x DH) += p (64 x 64, A fragments) tile, the swizzled tile's 64 rows.
 * Issued, not waited for. */
template <int DH>
static __device__ __forceinline__ void issue_rows(float c[8][4], const uint32_t p[4][4],
                                                  const __nv_bfloat16 *tile) {
#pragma unroll
    for (int kk = 0; kk < 4; kk++) wgmma_m64n64k16<1>(&c[0][0], p[kk], b_rows(tile, kk), 1);
}

/* Forward on packed (3, B, H, n, DH) q, k, v (cuda_attention_mma.cu's
 * mma_forward_kernel, same outputs). Grid (query tiles of WG 64 rows, B
 * H), the longest (last) tiles first; a warpgroup skips key tiles wholly
 * after its rows. */
template <int DH, int WG>
static __global__ void __launch_bounds__(WG * WG_THREADS)
    wgmma_forward_kernel(float *out, __nv_bfloat16 *out16, float *lse,
                         const __nv_bfloat16 *packed, int B, int n, int H, int dh, float scale2) {
    static_assert(DH == 64, "wgmma attention: head size 64");
    constexpr int TILE = MMA_ROWS * DH, ROWS = WG * MMA_ROWS;
    extern __shared__ __align__(128) __nv_bfloat16 smem_raw[];
    __nv_bfloat16 *smem = swizzle_aligned(smem_raw); /* [stage][k, v] swizzled tiles */
    int tile = gridDim.x - 1 - blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, D = H * dh;
    size_t head = (size_t)n * DH, heads = (size_t)B * H;
    const __nv_bfloat16 *qh = packed + bh * head, *kh = packed + (heads + bh) * head,
                        *vh = packed + (2 * heads + bh) * head;
    int group = threadIdx.x / WG_THREADS, warp = (threadIdx.x / 32) % 4;
    int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    int group_last = tile * ROWS + group * MMA_ROWS + MMA_ROWS - 1;
    int first = tile * ROWS + group * MMA_ROWS + warp * 16; /* the warp's 16 rows */
    int last = ((tile + 1) * ROWS < n ? (tile + 1) * ROWS - 1 : n - 1) / MMA_ROWS;
    stage_pair<DH>(smem, kh, vh, 0, n);
    uint32_t qf[DH / 16][4];
    load_a_fragments<DH>(qf, qh, first, n);
    float o[8][4], m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    zero_tiles(o);
    for (int kt = 0; kt <= last; kt++) {
        const __nv_bfloat16 *ks = next_pair<DH>(smem, kh, vh, kt, last, n), *vs = ks + TILE;
        if (kt * MMA_ROWS <= group_last) {
            float s[8][4];
            zero_tiles(s);
            wgmma_fence();
            issue_rows_transposed<DH>(s, qf, ks);
            wgmma_commit();
            wgmma_wait();
            pin_registers<32>(&s[0][0]);
            if ((kt + 1) * MMA_ROWS - 1 > first || (kt + 1) * MMA_ROWS > n) {
#pragma unroll
                for (int j = 0; j < 8; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        int key = kt * MMA_ROWS + j * 8 + 2 * t + (e & 1);
                        int row = first + g + (e < 2 ? 0 : 8);
                        if (key > row || key >= n) s[j][e] = -INFINITY;
                    }
            }
            softmax_rows<8, DH>(s, m0, m1, l0, l1, o, scale2);
            uint32_t p[4][4];
            c_to_a(p, s);
            wgmma_fence();
            issue_rows<DH>(o, p, vs);
            wgmma_commit();
            wgmma_wait();
            pin_registers<32>(&o[0][0]);
        }
        __syncthreads(); /* the next iteration stages into this buffer */
    }
#pragma unroll
    for (int offset = 1; offset < 4; offset *= 2) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, offset);
        l1 += __shfl_xor_sync(0xffffffffu, l1, offset);
    }
    int r0 = first + g;
    if (out)
        store_rows<DH>(out + (size_t)b * n * D + h * dh, o, r0, n, (size_t)D, dh, 1.0f / l0,
                       1.0f / l1);
    if (out16)
        store_rows<DH>(out16 + (size_t)b * n * D + h * dh, o, r0, n, (size_t)D, dh, 1.0f / l0,
                       1.0f / l1);
    if (t == 0) {
        float *row_lse = lse + (size_t)bh * n;
        if (r0 < n) row_lse[r0] = m0 * scale2 * LN2 + logf(l0);
        if (r0 + 8 < n) row_lse[r0 + 8] = m1 * scale2 * LN2 + logf(l1);
    }
}

/* dq (mma_dq_kernel's outputs) with wgmma: grid (query tiles of WG 64
 * rows, B H), the longest first; keys and values stream in tiles of 64. */
template <int DH, int WG, typename T>
static __global__ void __launch_bounds__(WG * WG_THREADS)
    wgmma_dq_kernel(T *dqkv, const __nv_bfloat16 *packed, const __nv_bfloat16 *dout16,
                    const float *lse, const float *rowdot, const float *cos_t, const float *sin_t,
                    int B, int n, int H, int dh, float scale2, float scale) {
    static_assert(DH == 64, "wgmma attention: head size 64");
    constexpr int TILE = MMA_ROWS * DH, ROWS = WG * MMA_ROWS;
    extern __shared__ __align__(128) __nv_bfloat16 smem_raw[];
    __nv_bfloat16 *smem = swizzle_aligned(smem_raw); /* [stage][k, v] swizzled tiles */
    int tile = gridDim.x - 1 - blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, D = H * dh;
    size_t head = (size_t)n * DH, heads = (size_t)B * H, stride = 3 * (size_t)D;
    const __nv_bfloat16 *qh = packed + bh * head, *kh = packed + (heads + bh) * head,
                        *vh = packed + (2 * heads + bh) * head, *gh = dout16 + bh * head;
    int group = threadIdx.x / WG_THREADS, warp = (threadIdx.x / 32) % 4;
    int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    int group_last = tile * ROWS + group * MMA_ROWS + MMA_ROWS - 1;
    int first = tile * ROWS + group * MMA_ROWS + warp * 16;
    int last = ((tile + 1) * ROWS < n ? (tile + 1) * ROWS - 1 : n - 1) / MMA_ROWS;
    stage_pair<DH>(smem, kh, vh, 0, n);
    uint32_t qf[DH / 16][4], gf[DH / 16][4];
    load_a_fragments<DH>(qf, qh, first, n);
    load_a_fragments<DH>(gf, gh, first, n);
    const float *row_lse = lse + (size_t)bh * n, *row_dot = rowdot + (size_t)bh * n;
    int r0 = first + g;
    float lse2[2], dot[2], dq[8][4];
    lse2[0] = r0 < n ? row_lse[r0] * LOG2E : 0.0f;
    lse2[1] = r0 + 8 < n ? row_lse[r0 + 8] * LOG2E : 0.0f;
    dot[0] = r0 < n ? row_dot[r0] : 0.0f;
    dot[1] = r0 + 8 < n ? row_dot[r0 + 8] : 0.0f;
    zero_tiles(dq);
    for (int kt = 0; kt <= last; kt++) {
        const __nv_bfloat16 *ks = next_pair<DH>(smem, kh, vh, kt, last, n), *vs = ks + TILE;
        if (kt * MMA_ROWS <= group_last) {
            float s[8][4], dp[8][4];
            zero_tiles(s);
            zero_tiles(dp);
            wgmma_fence();
            issue_rows_transposed<DH>(s, qf, ks);
            issue_rows_transposed<DH>(dp, gf, vs);
            wgmma_commit();
            wgmma_wait();
            pin_registers<32>(&s[0][0]);
            pin_registers<32>(&dp[0][0]);
            int key0 = kt * MMA_ROWS;
            bool masked = key0 + MMA_ROWS - 1 > first || key0 + MMA_ROWS > n;
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int key = key0 + j * 8 + 2 * t + (e & 1), row = r0 + (e < 2 ? 0 : 8);
                    float p = exp2_fast(fmaf(s[j][e], scale2, -lse2[e / 2]));
                    if (masked && (key > row || key >= n)) p = 0.0f;
                    s[j][e] = p * (dp[j][e] - dot[e / 2]) * scale;
                }
            uint32_t ds[4][4];
            c_to_a(ds, s);
            wgmma_fence();
            issue_rows<DH>(dq, ds, ks);
            wgmma_commit();
            wgmma_wait();
            pin_registers<32>(&dq[0][0]);
        }
        __syncthreads();
    }
    T *rows = dqkv + (size_t)b * n * stride + h * dh;
    if (cos_t)
        store_rows_unrotated<DH>((__nv_bfloat16 *)rows, dq, r0, n, stride, cos_t, sin_t);
    else
        store_rows<DH>(rows, dq, r0, n, stride, dh, 1.0f, 1.0f);
}

/* dk, dv (mma_dkdv_kernel's outputs) with wgmma: grid (key tiles of WG
 * 64 rows, B H), the longest (first) tiles first; queries and dout stream
 * in tiles of 64 with their lse and row dots; a warpgroup skips query
 * tiles wholly before its keys. */
template <int DH, int WG, typename T>
static __global__ void __launch_bounds__(WG * WG_THREADS)
    wgmma_dkdv_kernel(T *dqkv, const __nv_bfloat16 *packed, const __nv_bfloat16 *dout16,
                      const float *lse, const float *rowdot, const float *cos_t,
                      const float *sin_t, int B, int n, int H, int dh, float scale2, float scale) {
    static_assert(DH == 64, "wgmma attention: head size 64");
    constexpr int TILE = MMA_ROWS * DH, ROWS = WG * MMA_ROWS;
    extern __shared__ __align__(128) __nv_bfloat16 smem_raw[];
    __nv_bfloat16 *smem = swizzle_aligned(smem_raw); /* [stage][q, dout] swizzled tiles */
    __shared__ float lse_s[2][MMA_ROWS], dot_s[2][MMA_ROWS];
    int tile = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, D = H * dh;
    size_t head = (size_t)n * DH, heads = (size_t)B * H, stride = 3 * (size_t)D;
    const __nv_bfloat16 *qh = packed + bh * head, *kh = packed + (heads + bh) * head,
                        *vh = packed + (2 * heads + bh) * head, *gh = dout16 + bh * head;
    int group = threadIdx.x / WG_THREADS, warp = (threadIdx.x / 32) % 4;
    int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    int group_first = tile * ROWS + group * MMA_ROWS;
    int first = group_first + warp * 16; /* the warp's 16 keys */
    const float *row_lse = lse + (size_t)bh * n, *row_dot = rowdot + (size_t)bh * n;
    int qt0 = tile * ROWS / MMA_ROWS, tiles = (n + MMA_ROWS - 1) / MMA_ROWS;
    auto stage = [&](int qt, int buffer) {
        stage_pair<DH>(smem + buffer * 2 * TILE, qh, gh, qt * MMA_ROWS, n);
        for (int e = threadIdx.x; e < MMA_ROWS; e += blockDim.x) {
            int i = qt * MMA_ROWS + e;
            lse_s[buffer][e] = i < n ? row_lse[i] * LOG2E : 0.0f;
            dot_s[buffer][e] = i < n ? row_dot[i] : 0.0f;
        }
    };
    stage(qt0, 0);
    uint32_t kf[DH / 16][4], vf[DH / 16][4];
    load_a_fragments<DH>(kf, kh, first, n);
    load_a_fragments<DH>(vf, vh, first, n);
    float dk[8][4], dv[8][4];
    zero_tiles(dk);
    zero_tiles(dv);
    for (int qt = qt0; qt < tiles; qt++) {
        int buffer = (qt - qt0) % 2;
        if (qt + 1 < tiles) {
            stage(qt + 1, 1 - buffer);
            pair_ready<1>();
        } else {
            pair_ready<0>();
        }
        int query0 = qt * MMA_ROWS;
        if (query0 + MMA_ROWS - 1 >= group_first) {
            const __nv_bfloat16 *qs = smem + buffer * 2 * TILE, *gs = qs + TILE;
            const float *lse_tile = lse_s[buffer], *dot_tile = dot_s[buffer];
            /* transposed scores: rows are the keys, columns the queries */
            float st[8][4], dpt[8][4];
            zero_tiles(st);
            zero_tiles(dpt);
            wgmma_fence();
            issue_rows_transposed<DH>(st, kf, qs);
            issue_rows_transposed<DH>(dpt, vf, gs);
            wgmma_commit();
            wgmma_wait();
            pin_registers<32>(&st[0][0]);
            pin_registers<32>(&dpt[0][0]);
            bool masked = query0 < first + 15 || query0 + MMA_ROWS > n;
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int col = j * 8 + 2 * t + (e & 1), query = query0 + col;
                    int key = first + g + (e < 2 ? 0 : 8);
                    float p = exp2_fast(fmaf(st[j][e], scale2, -lse_tile[col]));
                    if (masked && (query < key || query >= n)) p = 0.0f;
                    st[j][e] = p;
                    dpt[j][e] = p * (dpt[j][e] - dot_tile[col]) * scale;
                }
            uint32_t pa[4][4], da[4][4];
            c_to_a(pa, st);
            c_to_a(da, dpt);
            wgmma_fence();
            issue_rows<DH>(dv, pa, gs);
            issue_rows<DH>(dk, da, qs);
            wgmma_commit();
            wgmma_wait();
            pin_registers<32>(&dv[0][0]);
            pin_registers<32>(&dk[0][0]);
        }
        __syncthreads();
    }
    T *rows = dqkv + (size_t)b * n * stride;
    int k0 = first + g;
    if (cos_t)
        store_rows_unrotated<DH>((__nv_bfloat16 *)(rows + D + h * dh), dk, k0, n, stride, cos_t,
                                 sin_t);
    else
        store_rows<DH>(rows + D + h * dh, dk, k0, n, stride, dh, 1.0f, 1.0f);
    store_rows<DH>(rows + 2 * D + h * dh, dv, k0, n, stride, dh, 1.0f, 1.0f);
}

/* Whether the wgmma kernels run (developers: SPIRAL_ATTN_WGMMA=0 runs the
 * mma.sync ones instead, for comparison). Warpgroups a block, measured on
 * the H200 at B = 8, H = 12 (bench_cuda_engine attention): the forward
 * with two 7% faster than with one at n = 2048 and 9% slower at 512, so
 * two from 1024 rows on; dq and dk/dv with one (two lost 2-8% of the
 * backward at 1024-2048). */
static int wgmma_enabled(void) {
    static int enabled = -1;
    if (enabled < 0) {
        const char *flag = getenv("SPIRAL_ATTN_WGMMA");
        enabled = !(flag && strcmp(flag, "0") == 0);
    }
    return enabled;
}

int attention_wgmma_supports(int dh) {
    return attention_mma_head_size(dh) == 64 && wgmma_enabled();
}

template <int WG>
static int launch_wgmma_forward(float *out, __nv_bfloat16 *out16, float *lse,
                                const __nv_bfloat16 *heads, int B, int n, int H, int dh,
                                cudaStream_t stream) {
    float scale = (float)(1.0 / sqrt((double)dh));
    size_t smem = pair_smem(64);
    dim3 grid((unsigned)((n + WG * MMA_ROWS - 1) / (WG * MMA_ROWS)), (unsigned)(B * H));
    wgmma_forward_kernel<64, WG><<<grid, WG * WG_THREADS, smem, stream>>>(
        out, out16, lse, heads, B, n, H, dh, scale * LOG2E);
    return cuda_launched("wgmma_forward_kernel");
}

int attention_wgmma_forward(float *out, __nv_bfloat16 *out16, float *lse,
                            const __nv_bfloat16 *heads, int B, int n, int H, int dh,
                            cudaStream_t stream) {
    if (n >= 1024)
        return launch_wgmma_forward<2>(out, out16, lse, heads, B, n, H, dh, stream);
    return launch_wgmma_forward<1>(out, out16, lse, heads, B, n, H, dh, stream);
}

template <int WG, typename T>
static int launch_wgmma_dq(T *dqkv, const __nv_bfloat16 *heads, const __nv_bfloat16 *dout16,
                           const float *lse, const float *rowdot, const float *cos_t,
                           const float *sin_t, int B, int n, int H, int dh, cudaStream_t stream) {
    float scale = (float)(1.0 / sqrt((double)dh));
    dim3 grid((unsigned)((n + WG * MMA_ROWS - 1) / (WG * MMA_ROWS)), (unsigned)(B * H));
    wgmma_dq_kernel<64, WG, T><<<grid, WG * WG_THREADS, pair_smem(64), stream>>>(
        dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, scale * LOG2E, scale);
    return cuda_launched("wgmma_dq_kernel");
}

template <int WG, typename T>
static int launch_wgmma_dkdv(T *dqkv, const __nv_bfloat16 *heads, const __nv_bfloat16 *dout16,
                             const float *lse, const float *rowdot, const float *cos_t,
                             const float *sin_t, int B, int n, int H, int dh,
                             cudaStream_t stream) {
    float scale = (float)(1.0 / sqrt((double)dh));
    dim3 grid((unsigned)((n + WG * MMA_ROWS - 1) / (WG * MMA_ROWS)), (unsigned)(B * H));
    wgmma_dkdv_kernel<64, WG, T><<<grid, WG * WG_THREADS, pair_smem(64), stream>>>(
        dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, scale * LOG2E, scale);
    return cuda_launched("wgmma_dkdv_kernel");
}

template <typename T>
static int wgmma_backward(T *dqkv, const __nv_bfloat16 *heads, const __nv_bfloat16 *dout16,
                          const float *lse, const float *rowdot, const float *cos_t,
                          const float *sin_t, int B, int n, int H, int dh, cudaStream_t stream) {
    if (launch_wgmma_dq<1>(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, stream))
        return -1;
    return launch_wgmma_dkdv<1>(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh,
                                stream);
}

int attention_wgmma_backward(float *dqkv, const __nv_bfloat16 *heads,
                             const __nv_bfloat16 *dout16, const float *lse, const float *rowdot,
                             const float *cos_t, const float *sin_t, int B, int n, int H, int dh,
                             cudaStream_t stream) {
    return wgmma_backward(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, stream);
}

int attention_wgmma_backward(__nv_bfloat16 *dqkv, const __nv_bfloat16 *heads,
                             const __nv_bfloat16 *dout16, const float *lse, const float *rowdot,
                             const float *cos_t, const float *sin_t, int B, int n, int H, int dh,
                             cudaStream_t stream) {
    return wgmma_backward(dqkv, heads, dout16, lse, rowdot, cos_t, sin_t, B, n, H, dh, stream);
}
