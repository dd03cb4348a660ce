/*
 * cuda_attention.cu: fused causal attention, forward and backward, in fp32.
 *
 * Flash-attention style: a block takes one head of one sequence and a tile
 * of ROWS query rows (forward, dq) or key rows (dk, dv); the other side
 * streams through shared memory a tile at a time, and the n x n score
 * matrix never exists in device memory. Each row belongs to a group of T
 * consecutive threads; thread `part` of the group holds the head dimensions
 * c = cc T + part (cc = 0 .. DH/T - 1), so a dot product is T partial sums
 * and a butterfly of shuffles, and the T threads read neighbouring shared
 * words (no bank conflicts). DH is the head dimension rounded up to a
 * template size; the dimensions beyond dh are zero in registers and tiles.
 *
 * Forward: online softmax one key at a time (the running max m, the sum l
 * and the accumulator rescaled when m grows); lse = m + log l is saved.
 * Backward (two kernels, so that no thread ever sums into another's
 * output): with P_ij = exp(S_ij - lse_i) recomputed and
 * D_i = dout_i . out_i, dS_ij = P_ij (dout_i . v_j - D_i) / sqrt(dh);
 * the dq kernel walks keys j <= i, the dkdv kernel walks queries i >= j.
 */
#include "cuda_kernels.cuh"

#include <math.h>

#include "cuda_check.cuh"

enum { ROWS = 64 };

/* Sum over the T threads of a row group (T a power of two <= 32). */
template <int T>
static __device__ float group_sum(float x) {
    for (int offset = T / 2; offset > 0; offset /= 2)
        x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

/* Copies rows [row0, row0 + R) of one head's column block (dh wide,
 * starting at column col, row stride `stride`) into tile (R, DH), zeros
 * beyond n rows and dh columns. */
template <int DH, int R>
static __device__ void load_tile(float (*tile)[DH], const float *base, int row0, int n,
                                 size_t stride, int col, int dh) {
    for (int e = threadIdx.x; e < R * DH; e += blockDim.x) {
        int r = e / DH, c = e % DH, row = row0 + r;
        tile[r][c] = row < n && c < dh ? base[(size_t)row * stride + col + c] : 0.0f;
    }
}

/* out_i = sum_j softmax_j(q_i . k_j / sqrt(dh)) v_j over j <= i;
 * lse_i = log sum_j exp(q_i . k_j / sqrt(dh)). Grid (query tiles, B H). */
template <int DH, int T, int R>
static __global__ void attention_forward_kernel(float *out, float *lse, const float *qkv, int n,
                                                int H, int dh, float scale) {
    constexpr int PER = DH / T;
    __shared__ float ks[R][DH], vs[R][DH];
    int tile = blockIdx.x, b = blockIdx.y / H, h = blockIdx.y % H, D = H * dh;
    size_t stride = 3 * (size_t)D;
    const float *base = qkv + (size_t)b * n * stride;
    int r = threadIdx.x / T, part = threadIdx.x % T, i = tile * R + r;
    bool valid = i < n;
    float q[PER], acc[PER];
#pragma unroll
    for (int cc = 0; cc < PER; cc++) {
        int c = cc * T + part;
        q[cc] = valid && c < dh ? base[(size_t)i * stride + h * dh + c] : 0.0f;
        acc[cc] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int kt = 0; kt <= tile; kt++) {
        __syncthreads();
        load_tile<DH, R>(ks, base, kt * R, n, stride, D + h * dh, dh);
        load_tile<DH, R>(vs, base, kt * R, n, stride, 2 * D + h * dh, dh);
        __syncthreads();
        int keys = min(R, n - kt * R);
        for (int jj = 0; jj < keys; jj++) {
            float s = 0.0f;
#pragma unroll
            for (int cc = 0; cc < PER; cc++) s += q[cc] * ks[jj][cc * T + part];
            s = group_sum<T>(s);
            if (valid && kt * R + jj <= i) {
                s *= scale;
                if (s > m) {
                    float correction = expf(m - s); /* 0 for the first key */
                    l *= correction;
#pragma unroll
                    for (int cc = 0; cc < PER; cc++) acc[cc] *= correction;
                    m = s;
                }
                float p = expf(s - m);
                l += p;
#pragma unroll
                for (int cc = 0; cc < PER; cc++) acc[cc] += p * vs[jj][cc * T + part];
            }
        }
    }
    if (!valid) return;
    float inv = 1.0f / l;
#pragma unroll
    for (int cc = 0; cc < PER; cc++) {
        int c = cc * T + part;
        if (c < dh) out[((size_t)b * n + i) * D + h * dh + c] = acc[cc] * inv;
    }
    if (part == 0) lse[((size_t)b * H + h) * n + i] = m + logf(l);
}

/* rowdot (B, H, n): D_i = dout_i . out_i per head; one warp per (b, h, i),
 * its lanes reading consecutive columns. */
static __global__ void attention_rowdot_kernel(float *rowdot, const float *dout, const float *out,
                                               int B, int n, int H, int dh) {
    size_t e = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    if (e >= (size_t)B * H * n) return;
    int i = (int)(e % n), h = (int)(e / n % H), b = (int)(e / ((size_t)n * H));
    size_t at = ((size_t)b * n + i) * H * dh + (size_t)h * dh;
    float sum = 0.0f;
    for (int c = lane; c < dh; c += 32) sum += dout[at + c] * out[at + c];
    sum = warp_sum(sum);
    if (lane == 0) rowdot[e] = sum;
}

/* dq_i = sum_{j <= i} dS_ij k_j into dqkv's q columns. Grid (query tiles, B H). */
template <int DH, int T, int R>
static __global__ void attention_dq_kernel(float *dqkv, const float *dout, const float *qkv,
                                           const float *lse, const float *rowdot, int n, int H,
                                           int dh, float scale) {
    constexpr int PER = DH / T;
    __shared__ float ks[R][DH], vs[R][DH];
    int tile = blockIdx.x, b = blockIdx.y / H, h = blockIdx.y % H, D = H * dh;
    size_t stride = 3 * (size_t)D;
    const float *base = qkv + (size_t)b * n * stride;
    int r = threadIdx.x / T, part = threadIdx.x % T, i = tile * R + r;
    bool valid = i < n;
    float q[PER], g[PER], dq[PER];
#pragma unroll
    for (int cc = 0; cc < PER; cc++) {
        int c = cc * T + part;
        bool in = valid && c < dh;
        q[cc] = in ? base[(size_t)i * stride + h * dh + c] : 0.0f;
        g[cc] = in ? dout[((size_t)b * n + i) * D + h * dh + c] : 0.0f;
        dq[cc] = 0.0f;
    }
    size_t stat = ((size_t)b * H + h) * n + i;
    float row_lse = valid ? lse[stat] : 0.0f, row_dot = valid ? rowdot[stat] : 0.0f;
    for (int kt = 0; kt <= tile; kt++) {
        __syncthreads();
        load_tile<DH, R>(ks, base, kt * R, n, stride, D + h * dh, dh);
        load_tile<DH, R>(vs, base, kt * R, n, stride, 2 * D + h * dh, dh);
        __syncthreads();
        int keys = min(R, n - kt * R);
        for (int jj = 0; jj < keys; jj++) {
            float s = 0.0f, dp = 0.0f;
#pragma unroll
            for (int cc = 0; cc < PER; cc++) {
                s += q[cc] * ks[jj][cc * T + part];
                dp += g[cc] * vs[jj][cc * T + part];
            }
            s = group_sum<T>(s);
            dp = group_sum<T>(dp);
            if (valid && kt * R + jj <= i) {
                float p = expf(s * scale - row_lse);
                float ds = p * (dp - row_dot) * scale;
#pragma unroll
                for (int cc = 0; cc < PER; cc++) dq[cc] += ds * ks[jj][cc * T + part];
            }
        }
    }
    if (!valid) return;
#pragma unroll
    for (int cc = 0; cc < PER; cc++) {
        int c = cc * T + part;
        if (c < dh) dqkv[(size_t)i * stride + (size_t)b * n * stride + h * dh + c] = dq[cc];
    }
}

/* dk_j = sum_{i >= j} dS_ij q_i, dv_j = sum_{i >= j} P_ij dout_i into
 * dqkv's k and v columns. Grid (key tiles, B H). */
template <int DH, int T, int R>
static __global__ void attention_dkdv_kernel(float *dqkv, const float *dout, const float *qkv,
                                             const float *lse, const float *rowdot, int n,
                                             int H, int dh, float scale) {
    constexpr int PER = DH / T;
    __shared__ float qs[R][DH], gs[R][DH];
    __shared__ float lse_s[R], dot_s[R];
    int tile = blockIdx.x, b = blockIdx.y / H, h = blockIdx.y % H, D = H * dh;
    int tiles = (n + R - 1) / R;
    size_t stride = 3 * (size_t)D;
    const float *base = qkv + (size_t)b * n * stride;
    const float *gbase = dout + (size_t)b * n * D;
    int r = threadIdx.x / T, part = threadIdx.x % T, j = tile * R + r;
    bool valid = j < n;
    float k[PER], v[PER], dk[PER], dv[PER];
#pragma unroll
    for (int cc = 0; cc < PER; cc++) {
        int c = cc * T + part;
        bool in = valid && c < dh;
        k[cc] = in ? base[(size_t)j * stride + D + h * dh + c] : 0.0f;
        v[cc] = in ? base[(size_t)j * stride + 2 * D + h * dh + c] : 0.0f;
        dk[cc] = 0.0f;
        dv[cc] = 0.0f;
    }
    for (int qt = tile; qt < tiles; qt++) {
        __syncthreads();
        load_tile<DH, R>(qs, base, qt * R, n, stride, h * dh, dh);
        load_tile<DH, R>(gs, gbase, qt * R, n, (size_t)D, h * dh, dh);
        for (int e = threadIdx.x; e < R; e += blockDim.x) {
            int i = qt * R + e;
            size_t stat = ((size_t)b * H + h) * n + i;
            lse_s[e] = i < n ? lse[stat] : 0.0f;
            dot_s[e] = i < n ? rowdot[stat] : 0.0f;
        }
        __syncthreads();
        int queries = min(R, n - qt * R);
        for (int ii = 0; ii < queries; ii++) {
            float s = 0.0f, dp = 0.0f;
#pragma unroll
            for (int cc = 0; cc < PER; cc++) {
                s += qs[ii][cc * T + part] * k[cc];
                dp += gs[ii][cc * T + part] * v[cc];
            }
            s = group_sum<T>(s);
            dp = group_sum<T>(dp);
            if (valid && qt * R + ii >= j) {
                float p = expf(s * scale - lse_s[ii]);
                float ds = p * (dp - dot_s[ii]) * scale;
#pragma unroll
                for (int cc = 0; cc < PER; cc++) {
                    dv[cc] += p * gs[ii][cc * T + part];
                    dk[cc] += ds * qs[ii][cc * T + part];
                }
            }
        }
    }
    if (!valid) return;
    float *row = dqkv + (size_t)b * n * stride + (size_t)j * stride;
#pragma unroll
    for (int cc = 0; cc < PER; cc++) {
        int c = cc * T + part;
        if (c < dh) {
            row[D + h * dh + c] = dk[cc];
            row[2 * D + h * dh + c] = dv[cc];
        }
    }
}

int attention_supports(int dh) { return dh >= 2 && dh <= 128; }

/* The template head size for dh: 8, 16, 32, 64 or 128 (0 if unsupported). */
static int head_size(int dh) {
    return dh <= 8 ? 8 : dh <= 16 ? 16 : dh <= 32 ? 32 : dh <= 64 ? 64 : dh <= 128 ? 128 : 0;
}

/* Rows per tile: 64, or 32 for head size 128 (two tiles of R x DH floats
 * must fit the 48 KiB of static shared memory). */
template <int DH>
static constexpr int tile_rows() { return DH > 64 ? 32 : ROWS; }

template <int DH>
static void launch_forward(float *out, float *lse, const float *qkv, int B, int n, int H, int dh,
                           float scale, cudaStream_t stream) {
    /* head size 128: 4 threads per row (registers) */
    constexpr int R = tile_rows<DH>(), T = DH > 64 ? 4 : 1;
    dim3 grid((unsigned)((n + R - 1) / R), (unsigned)(B * H));
    attention_forward_kernel<DH, T, R><<<grid, R * T, 0, stream>>>(out, lse, qkv, n, H, dh,
                                                                    scale);
}

int attention_forward(float *out, float *lse, const float *qkv, int B, int n, int H, int dh,
                      cudaStream_t stream) {
    if (B == 0 || n == 0) return 0;
    float scale = (float)(1.0 / sqrt((double)dh));
    switch (head_size(dh)) {
    case 8: launch_forward<8>(out, lse, qkv, B, n, H, dh, scale, stream); break;
    case 16: launch_forward<16>(out, lse, qkv, B, n, H, dh, scale, stream); break;
    case 32: launch_forward<32>(out, lse, qkv, B, n, H, dh, scale, stream); break;
    case 64: launch_forward<64>(out, lse, qkv, B, n, H, dh, scale, stream); break;
    case 128: launch_forward<128>(out, lse, qkv, B, n, H, dh, scale, stream); break;
    default: return cuda_status(cudaErrorInvalidValue, "attention_forward: head dim > 128");
    }
    return cuda_launched("attention_forward_kernel");
}

/* Backward kernels: T = 2 threads per row from DH = 32 up, 4 at 128 (registers). */
template <int DH>
static int launch_backward(float *dqkv, const float *dout, const float *qkv, const float *lse,
                           const float *rowdot, int B, int n, int H, int dh, float scale,
                           cudaStream_t stream) {
    constexpr int T = DH >= 128 ? 4 : DH >= 32 ? 2 : 1, R = tile_rows<DH>();
    dim3 grid((unsigned)((n + R - 1) / R), (unsigned)(B * H));
    attention_dq_kernel<DH, T, R><<<grid, R * T, 0, stream>>>(dqkv, dout, qkv, lse, rowdot, n,
                                                                 H, dh, scale);
    if (cuda_launched("attention_dq_kernel")) return -1;
    attention_dkdv_kernel<DH, T, R><<<grid, R * T, 0, stream>>>(dqkv, dout, qkv, lse, rowdot,
                                                                   n, H, dh, scale);
    return cuda_launched("attention_dkdv_kernel");
}

int attention_rowdot(float *rowdot, const float *dout, const float *out, int B, int n, int H,
                     int dh, cudaStream_t stream) {
    size_t rows = (size_t)B * H * n;
    attention_rowdot_kernel<<<cuda_blocks(rows * 32), CUDA_THREADS, 0, stream>>>(rowdot, dout, out,
                                                                                B, n, H, dh);
    return cuda_launched("attention_rowdot_kernel");
}

int attention_backward(float *dqkv, float *rowdot, const float *dout, const float *out,
                       const float *qkv, const float *lse, int B, int n, int H, int dh,
                       cudaStream_t stream) {
    if (B == 0 || n == 0) return 0;
    float scale = (float)(1.0 / sqrt((double)dh));
    if (attention_rowdot(rowdot, dout, out, B, n, H, dh, stream)) return -1;
    switch (head_size(dh)) {
    case 8: return launch_backward<8>(dqkv, dout, qkv, lse, rowdot, B, n, H, dh, scale, stream);
    case 16: return launch_backward<16>(dqkv, dout, qkv, lse, rowdot, B, n, H, dh, scale, stream);
    case 32: return launch_backward<32>(dqkv, dout, qkv, lse, rowdot, B, n, H, dh, scale, stream);
    case 64: return launch_backward<64>(dqkv, dout, qkv, lse, rowdot, B, n, H, dh, scale, stream);
    case 128: return launch_backward<128>(dqkv, dout, qkv, lse, rowdot, B, n, H, dh, scale, stream);
    default: return cuda_status(cudaErrorInvalidValue, "attention_backward: head dim > 128");
    }
}

/* probs (B, H, n, n): P_ij = exp(q_i . k_j / sqrt(dh) - lse_i) for j <= i,
 * 0 for j > i. One block per (row i, b h); its threads walk the keys. */
static __global__ void attention_probs_kernel(float *probs, const float *qkv, const float *lse,
                                              int n, int H, int dh, float scale) {
    extern __shared__ float q[];
    int i = blockIdx.x, b = blockIdx.y / H, h = blockIdx.y % H, D = H * dh;
    size_t stride = 3 * (size_t)D;
    const float *base = qkv + (size_t)b * n * stride;
    for (int c = threadIdx.x; c < dh; c += blockDim.x) q[c] = base[(size_t)i * stride + h * dh + c];
    __syncthreads();
    float row_lse = lse[((size_t)b * H + h) * n + i];
    float *row = probs + (((size_t)b * H + h) * n + i) * n;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float p = 0.0f;
        if (j <= i) {
            const float *k = base + (size_t)j * stride + D + h * dh;
            float s = 0.0f;
            for (int c = 0; c < dh; c++) s += q[c] * k[c];
            p = expf(s * scale - row_lse);
        }
        row[j] = p;
    }
}

int attention_probs(float *probs, const float *qkv, const float *lse, int B, int n, int H,
                    int dh, cudaStream_t stream) {
    if (B == 0 || n == 0) return 0;
    dim3 grid((unsigned)n, (unsigned)(B * H));
    attention_probs_kernel<<<grid, 128, (size_t)dh * sizeof(float), stream>>>(
        probs, qkv, lse, n, H, dh, 1.0f / sqrtf((float)dh));
    return cuda_status(cudaGetLastError(), "attention_probs");
}

/* stats (B, H, n, K), K = 2 + n_distances: per head h and query row i, with
 * P_ij = exp(q_i . k_j / sqrt(dh) - lse_i) over j <= i and gap_ij = pos_i -
 * pos_j (tokens): distance = sum_j P_ij gap_ij, entropy = -sum_j P_ij log
 * P_ij, beyond_k = sum_{j : gap_ij > D_k} P_ij (analysis/attention_stats.h).
 * One block per (row i, b h); its threads walk the keys, summing in double,
 * and the sums are reduced in a fixed order. */
enum { STATS_THREADS = 128 };

static __global__ void attention_stats_kernel(float *stats, const float *qkv, const float *lse,
                                              const int *pos, int n, int H, int dh, float scale,
                                              AttentionDistances list) {
    extern __shared__ float q[];
    __shared__ double partial[STATS_THREADS];
    int i = blockIdx.x, b = blockIdx.y / H, h = blockIdx.y % H, D = H * dh;
    int K = 2 + list.count;
    size_t stride = 3 * (size_t)D;
    const float *base = qkv + (size_t)b * n * stride;
    for (int c = threadIdx.x; c < dh; c += blockDim.x) q[c] = base[(size_t)i * stride + h * dh + c];
    __syncthreads();
    float row_lse = lse[((size_t)b * H + h) * n + i];
    double sums[2 + ATTENTION_MAX_DISTANCES] = {0};
    for (int j = threadIdx.x; j <= i; j += blockDim.x) {
        const float *k = base + (size_t)j * stride + D + h * dh;
        float s = 0.0f;
        for (int c = 0; c < dh; c++) s += q[c] * k[c];
        float p = expf(s * scale - row_lse);
        int gap = pos[i] - pos[j];
        sums[0] += (double)p * gap;
        sums[1] -= p > 0.0f ? (double)(p * logf(p)) : 0.0;
        for (int d = 0; d < list.count; d++)
            if (gap > list.distance[d]) sums[2 + d] += p;
    }
    float *out = stats + (((size_t)b * H + h) * n + i) * K;
    for (int k = 0; k < K; k++) {
        partial[threadIdx.x] = sums[k];
        __syncthreads();
        for (int half = STATS_THREADS / 2; half > 0; half /= 2) {
            if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
            __syncthreads();
        }
        if (threadIdx.x == 0) out[k] = (float)partial[0];
        __syncthreads();
    }
}

int attention_stats(float *stats, const float *qkv, const float *lse, const int *pos, int B, int n,
                    int H, int dh, const AttentionDistances *distances, cudaStream_t stream) {
    if (B == 0 || n == 0) return 0;
    if (distances->count < 0 || distances->count > ATTENTION_MAX_DISTANCES)
        return cuda_status(cudaErrorInvalidValue, "attention_stats: too many distances");
    dim3 grid((unsigned)n, (unsigned)(B * H));
    attention_stats_kernel<<<grid, STATS_THREADS, (size_t)dh * sizeof(float), stream>>>(
        stats, qkv, lse, pos, n, H, dh, 1.0f / sqrtf((float)dh), *distances);
    return cuda_launched("attention_stats_kernel");
}
