/*
 * cuda_norm.cu: RMSNorm forward and backward (core/layers.h).
 *
 * One warp per row: the row's sums are warp reductions. The gain gradient
 * is a sum over rows, in fixed order (no atomics, so the result is the
 * same on every run): where d <= RMSNORM_FUSED_D and rows are aligned, the
 * backward's row kernel also sums its block's 8 rows of dy x r per column
 * (through shared memory) and writes one partial row per block; else a
 * second kernel reads dy and x again. Either way RMSNORM_PARTS blocks then
 * fold the partial rows into RMSNORM_PARTS sums per column, and one more
 * kernel adds those in order.
 */
#include "cuda_kernels.cuh"

#include <stdint.h>

#include "cuda_check.cuh"

enum { ROWS_PER_BLOCK = 8 };

/* Four floats stored as T at p (16-byte aligned for float, 8 for bf16). */
static __device__ __forceinline__ void store4(float *p, float4 v) { *(float4 *)p = v; }
static __device__ __forceinline__ void store4(__nv_bfloat16 *p, float4 v) {
    float values[4] = {v.x, v.y, v.z, v.w};
    *(uint2 *)p = floats_to_bf16x4(values);
}

/* y = x rstd gain, rstd = 1 / sqrt(mean(x^2) + eps), and copy = x when
 * not NULL; one warp per row. */
template <typename T>
static __global__ void rmsnorm_forward_kernel(T *y, float *rstd, float *copy, const float *x,
                                              const float *gain, int M, int d, double eps) {
    int row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= M) return;
    const float *xr = x + (size_t)row * d;
    T *yr = y + (size_t)row * d;
    float sum_sq = 0;
    for (int k = lane; k < d; k += 32) sum_sq += xr[k] * xr[k];
    sum_sq = warp_sum(sum_sq);
    float inv = (float)(1.0 / sqrt((double)sum_sq / d + eps));
    if (lane == 0) rstd[row] = inv;
    for (int k = lane; k < d; k += 32) {
        store_as(yr + k, xr[k] * inv * gain[k]);
        if (copy) copy[(size_t)row * d + k] = xr[k];
    }
}

/* The same four columns at a time (d % 4 == 0, rows 16-byte aligned). */
template <typename T>
static __global__ void rmsnorm_forward_vec4_kernel(T *y, float *rstd, float *copy, const float *x,
                                                   const float *gain, int M, int d, double eps) {
    int row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= M) return;
    int d4 = d / 4;
    const float4 *xr = (const float4 *)(x + (size_t)row * d), *g4 = (const float4 *)gain;
    float sum_sq = 0;
    for (int k = lane; k < d4; k += 32) {
        float4 v = xr[k];
        sum_sq += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    sum_sq = warp_sum(sum_sq);
    float inv = (float)(1.0 / sqrt((double)sum_sq / d + eps));
    if (lane == 0) rstd[row] = inv;
    for (int k = lane; k < d4; k += 32) {
        float4 v = xr[k], g = g4[k];
        store4(y + (size_t)row * d + 4 * k,
               make_float4(v.x * inv * g.x, v.y * inv * g.y, v.z * inv * g.z, v.w * inv * g.w));
        if (copy) ((float4 *)(copy + (size_t)row * d))[k] = v;
    }
}

/* Whether rows of d floats at each pointer (NULL allowed) are 16-byte
 * aligned, for the four-column kernels. */
static int aligned4(int d, const void *a, const void *b, const void *c, const void *e,
                    const void *f) {
    uintptr_t bits = (uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)e | (uintptr_t)f;
    return d % 4 == 0 && bits % 16 == 0;
}

template <typename T>
static int launch_rmsnorm_forward(T *y, float *rstd, float *copy, const float *x,
                                  const float *gain, int M, int d, double eps,
                                  cudaStream_t stream) {
    if (M == 0) return 0;
    unsigned blocks = (unsigned)((M + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    if (aligned4(d, y, copy, x, gain, NULL)) {
        rmsnorm_forward_vec4_kernel<T><<<blocks, 32 * ROWS_PER_BLOCK, 0, stream>>>(
            y, rstd, copy, x, gain, M, d, eps);
        return cuda_launched("rmsnorm_forward_vec4_kernel");
    }
    rmsnorm_forward_kernel<T><<<blocks, 32 * ROWS_PER_BLOCK, 0, stream>>>(y, rstd, copy, x, gain,
                                                                          M, d, eps);
    return cuda_launched("rmsnorm_forward_kernel");
}

int rmsnorm_forward(float *y, float *rstd, const float *x, const float *gain, int M, int d,
                    double eps, cudaStream_t stream) {
    return launch_rmsnorm_forward(y, rstd, (float *)NULL, x, gain, M, d, eps, stream);
}

int rmsnorm_forward_bf16(__nv_bfloat16 *y, float *rstd, float *copy, const float *x,
                         const float *gain, int M, int d, double eps, cudaStream_t stream) {
    return launch_rmsnorm_forward(y, rstd, copy, x, gain, M, d, eps, stream);
}

/* dx = base + extra + (r g dy - (r^3 / d) x sum_m dy_m g_m x_m) (extra
 * NULL: none), and dx16 = bf16(dx) when not NULL; one warp per row. */
static __global__ void rmsnorm_backward_rows_kernel(float *dx, __nv_bfloat16 *dx16,
                                                    const float *base, const float *extra,
                                                    const float *dy, const float *x,
                                                    const float *gain, const float *rstd, int M,
                                                    int d) {
    int row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= M) return;
    size_t at = (size_t)row * d;
    const float *xr = x + at, *dyr = dy + at, *baser = base + at;
    float dot = 0;
    for (int k = lane; k < d; k += 32) dot += dyr[k] * gain[k] * xr[k];
    dot = warp_sum(dot);
    float inv = rstd[row];
    float coef = (float)((double)dot * inv * inv * inv / d);
    for (int k = lane; k < d; k += 32) {
        float value = baser[k];
        if (extra) value += extra[at + k];
        value += inv * gain[k] * dyr[k] - coef * xr[k];
        dx[at + k] = value;
        if (dx16) dx16[at + k] = __float2bfloat16_rn(value);
    }
}

/* The same four columns at a time (d % 4 == 0, rows 16-byte aligned);
 * with block_partial (d <= RMSNORM_FUSED_D), also block_partial[block][k]
 * = sum over the block's rows of dy x r (each warp's row into its own
 * shared row, then the warps in order). */
static __global__ void rmsnorm_backward_rows_vec4_kernel(float *dx, __nv_bfloat16 *dx16,
                                                         float *block_partial,
                                                         const float *base, const float *extra,
                                                         const float *dy, const float *x,
                                                         const float *gain, const float *rstd,
                                                         int M, int d) {
    __shared__ __align__(16) float gain_rows[ROWS_PER_BLOCK][RMSNORM_FUSED_D];
    int warp = threadIdx.x / 32, row = blockIdx.x * ROWS_PER_BLOCK + warp, lane = threadIdx.x % 32;
    int d4 = d / 4;
    float4 *mine = (float4 *)gain_rows[warp];
    if (row < M) {
        size_t at = (size_t)row * d;
        const float4 *x4 = (const float4 *)(x + at), *dy4 = (const float4 *)(dy + at);
        const float4 *g4 = (const float4 *)gain, *base4 = (const float4 *)(base + at);
        const float4 *extra4 = extra ? (const float4 *)(extra + at) : NULL;
        float dot = 0;
        for (int k = lane; k < d4; k += 32) {
            float4 g = dy4[k], w = g4[k], v = x4[k];
            dot += g.x * w.x * v.x + g.y * w.y * v.y + g.z * w.z * v.z + g.w * w.w * v.w;
        }
        dot = warp_sum(dot);
        float inv = rstd[row];
        float coef = (float)((double)dot * inv * inv * inv / d);
        for (int k = lane; k < d4; k += 32) {
            float4 g = dy4[k], w = g4[k], v = x4[k], value = base4[k];
            if (extra4) {
                float4 e = extra4[k];
                value = make_float4(value.x + e.x, value.y + e.y, value.z + e.z, value.w + e.w);
            }
            value.x += inv * w.x * g.x - coef * v.x;
            value.y += inv * w.y * g.y - coef * v.y;
            value.z += inv * w.z * g.z - coef * v.z;
            value.w += inv * w.w * g.w - coef * v.w;
            ((float4 *)(dx + at))[k] = value;
            if (dx16) store4(dx16 + at + 4 * k, value);
            if (block_partial)
                mine[k] = make_float4(g.x * v.x * inv, g.y * v.y * inv, g.z * v.z * inv,
                                      g.w * v.w * inv);
        }
    } else if (block_partial) {
        for (int k = lane; k < d4; k += 32) mine[k] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    if (!block_partial) return;
    __syncthreads();
    for (int k = threadIdx.x; k < d; k += blockDim.x) {
        float total = 0;
        for (int w = 0; w < ROWS_PER_BLOCK; w++) total += gain_rows[w][k];
        block_partial[(size_t)blockIdx.x * d + k] = total;
    }
}

/* parts[part][k] = sum over the rows r of part blockIdx.y (RMSNORM_PARTS
 * contiguous parts of the R rows) of a[r][k] x[r][k] rstd[r], or of
 * a[r][k] alone when x is NULL (a: the row kernel's block sums), for the 32
 * columns of block blockIdx.x; threads (32, 8), each thread row taking
 * every 8th row, then the 8 in order. */
static __global__ void rmsnorm_gain_parts_kernel(float *parts, const float *a, const float *x,
                                                 const float *rstd, int R, int d) {
    __shared__ float sums[8][33];
    int k = blockIdx.x * 32 + threadIdx.x, part = blockIdx.y;
    int per_part = (R + RMSNORM_PARTS - 1) / RMSNORM_PARTS;
    int begin = part * per_part, end = min(R, begin + per_part);
    float sum = 0;
    if (k < d)
        for (int r = begin + threadIdx.y; r < end; r += 8) {
            size_t at = (size_t)r * d + k;
            sum += x ? a[at] * x[at] * rstd[r] : a[at];
        }
    sums[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && k < d) {
        float total = 0;
        for (int t = 0; t < 8; t++) total += sums[t][threadIdx.x];
        parts[(size_t)part * d + k] = total;
    }
}

/* dgain[k] += sum over parts of partial[part][k], parts in order. */
static __global__ void rmsnorm_gain_sum_kernel(float *dgain, const float *partial, int d) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= d) return;
    float total = 0;
    for (int part = 0; part < RMSNORM_PARTS; part++) total += partial[(size_t)part * d + k];
    dgain[k] += total;
}

size_t rmsnorm_partial_count(int M, int d) {
    return ((size_t)RMSNORM_PARTS + (M + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK) * d;
}

int rmsnorm_backward_onto(float *dx, __nv_bfloat16 *dx16, const float *base, const float *extra,
                          float *dgain, float *partial, const float *dy, const float *x,
                          const float *gain, const float *rstd, int M, int d,
                          cudaStream_t stream) {
    if (M == 0) return 0;
    unsigned blocks = (unsigned)((M + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    dim3 grid((unsigned)((d + 31) / 32), RMSNORM_PARTS), threads(32, 8);
    /* partial: RMSNORM_PARTS rows of part sums, then the blocks' rows */
    float *block_partial = partial + (size_t)RMSNORM_PARTS * d;
    int vec4 = aligned4(d, dx, base, extra, dy, x) && aligned4(d, gain, NULL, NULL, NULL, NULL) &&
               (uintptr_t)dx16 % 8 == 0;
    int fused = vec4 && d <= RMSNORM_FUSED_D;
    if (vec4)
        rmsnorm_backward_rows_vec4_kernel<<<blocks, 32 * ROWS_PER_BLOCK, 0, stream>>>(
            dx, dx16, fused ? block_partial : NULL, base, extra, dy, x, gain, rstd, M, d);
    else
        rmsnorm_backward_rows_kernel<<<blocks, 32 * ROWS_PER_BLOCK, 0, stream>>>(
            dx, dx16, base, extra, dy, x, gain, rstd, M, d);
    if (cuda_launched("rmsnorm_backward_rows_kernel")) return -1;
    /* the gain's part sums from the blocks' sums, or from dy and x again */
    if (fused)
        rmsnorm_gain_parts_kernel<<<grid, threads, 0, stream>>>(partial, block_partial, NULL, NULL,
                                                                (int)blocks, d);
    else
        rmsnorm_gain_parts_kernel<<<grid, threads, 0, stream>>>(partial, dy, x, rstd, M, d);
    if (cuda_launched("rmsnorm_gain_parts_kernel")) return -1;
    rmsnorm_gain_sum_kernel<<<cuda_blocks((size_t)d), CUDA_THREADS, 0, stream>>>(dgain, partial,
                                                                               d);
    return cuda_launched("rmsnorm_gain_sum_kernel");
}

int rmsnorm_backward(float *dx, float *dgain, float *partial, const float *dy, const float *x,
                     const float *gain, const float *rstd, int M, int d, cudaStream_t stream) {
    return rmsnorm_backward_onto(dx, NULL, dx, NULL, dgain, partial, dy, x, gain, rstd, M, d,
                                 stream);
}
