/*
 * cuda_norm.cu: RMSNorm forward and backward (core/layers.h).
 *
 * One warp per row: the row's sums are warp reductions. The gain gradient
 * is a sum over rows: RMSNORM_PARTS blocks of rows each write a partial sum
 * per column, and one more kernel adds the parts in order (no atomics, so
 * the result is the same on every run).
 */
#include "cuda_kernels.cuh"

#include "cuda_check.cuh"

enum { ROWS_PER_BLOCK = 8 };

/* y = x rstd gain, rstd = 1 / sqrt(mean(x^2) + eps); one warp per row. */
template <typename T>
static __global__ void rmsnorm_forward_kernel(T *y, float *rstd, const float *x,
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
    for (int k = lane; k < d; k += 32) store_as(yr + k, xr[k] * inv * gain[k]);
}

template <typename T>
static int launch_rmsnorm_forward(T *y, float *rstd, const float *x, const float *gain, int M,
                                  int d, double eps, cudaStream_t stream) {
    if (M == 0) return 0;
    unsigned blocks = (unsigned)((M + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    rmsnorm_forward_kernel<T><<<blocks, 32 * ROWS_PER_BLOCK, 0, stream>>>(y, rstd, x, gain, M,
                                                                          d, eps);
    return cuda_launched("rmsnorm_forward_kernel");
}

int rmsnorm_forward(float *y, float *rstd, const float *x, const float *gain, int M, int d,
                    double eps, cudaStream_t stream) {
    return launch_rmsnorm_forward(y, rstd, x, gain, M, d, eps, stream);
}

int rmsnorm_forward_bf16(__nv_bfloat16 *y, float *rstd, const float *x, const float *gain, int M,
                         int d, double eps, cudaStream_t stream) {
    return launch_rmsnorm_forward(y, rstd, x, gain, M, d, eps, stream);
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

/* partial[part][k] = sum over the rows of part `blockIdx.y` of dy x r, for
 * the 32 columns of block blockIdx.x; threads (32, 8). */
static __global__ void rmsnorm_gain_partial_kernel(float *partial, const float *dy,
                                                   const float *x, const float *rstd, int M,
                                                   int d) {
    __shared__ float sums[8][33];
    int k = blockIdx.x * 32 + threadIdx.x, part = blockIdx.y;
    int rows_per_part = (M + RMSNORM_PARTS - 1) / RMSNORM_PARTS;
    int begin = part * rows_per_part, end = min(M, begin + rows_per_part);
    float sum = 0;
    if (k < d)
        for (int r = begin + threadIdx.y; r < end; r += 8)
            sum += dy[(size_t)r * d + k] * x[(size_t)r * d + k] * rstd[r];
    sums[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && k < d) {
        float total = 0;
        for (int t = 0; t < 8; t++) total += sums[t][threadIdx.x];
        partial[(size_t)part * d + k] = total;
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

int rmsnorm_backward_onto(float *dx, __nv_bfloat16 *dx16, const float *base, const float *extra,
                          float *dgain, float *partial, const float *dy, const float *x,
                          const float *gain, const float *rstd, int M, int d,
                          cudaStream_t stream) {
    if (M == 0) return 0;
    unsigned blocks = (unsigned)((M + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    rmsnorm_backward_rows_kernel<<<blocks, 32 * ROWS_PER_BLOCK, 0, stream>>>(
        dx, dx16, base, extra, dy, x, gain, rstd, M, d);
    if (cuda_launched("rmsnorm_backward_rows_kernel")) return -1;
    dim3 grid((unsigned)((d + 31) / 32), RMSNORM_PARTS), threads(32, 8);
    rmsnorm_gain_partial_kernel<<<grid, threads, 0, stream>>>(partial, dy, x, rstd, M, d);
    if (cuda_launched("rmsnorm_gain_partial_kernel")) return -1;
    rmsnorm_gain_sum_kernel<<<cuda_blocks((size_t)d), CUDA_THREADS, 0, stream>>>(dgain, partial,
                                                                               d);
    return cuda_launched("rmsnorm_gain_sum_kernel");
}

int rmsnorm_backward(float *dx, float *dgain, float *partial, const float *dy, const float *x,
                     const float *gain, const float *rstd, int M, int d, cudaStream_t stream) {
    return rmsnorm_backward_onto(dx, NULL, dx, NULL, dgain, partial, dy, x, gain, rstd, M, d,
                                 stream);
}
