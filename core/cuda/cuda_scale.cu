/*
 * cuda_scale.cu: the change of resolution of one loop iteration
 * (core/scale.h): down-scaling (mean, selfagg) and up-scaling (copy, alloc)
 * with the causal shift and the state update, forward and backward.
 *
 * Chunk j holds tokens max(0, j g - w) .. min(L - 1, (j + 1) g - w - 1);
 * token i is in chunk (i + w) / g at slot (i + w) % g. Every output element
 * has one thread that sums its terms in member order, so nothing needs
 * atomics; the gradients of the shared score and alloc weights are matrix
 * products over all rows (cuBLAS). Dot products and softmax sums are in
 * double, as on the CPU.
 */
#include "cuda_kernels.cuh"

#include <math.h>
#include <stdint.h>

#include "cuda_check.cuh"

static __device__ int chunk_first_of(GpuGeometry geo, int j) {
    int first = j * geo.g - geo.w;
    return first < 0 ? 0 : first;
}

static __device__ int chunk_last_of(GpuGeometry geo, int j) {
    int last = (j + 1) * geo.g - geo.w - 1;
    return last > geo.L - 1 ? geo.L - 1 : last;
}

static __device__ double warp_sum_double(double x) {
    for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

enum { WARPS = CUDA_THREADS / 32 };

/* out[row] = a_row . b_row(row) in double, one warp per row of `rows`;
 * a_row is a + row * d; b is `b` itself (stride 0) or the row's chunk's
 * vector b + (b_index(row)) * d. Used for the selfagg scores
 * (score . h_i) and the selfagg backward (dz_j . h_i). */
static __global__ void selfagg_dot_kernel(float *out_float, double *out_double, const float *h,
                                          const float *other, GpuGeometry geo, int B, int d,
                                          int per_chunk) {
    size_t row = (size_t)blockIdx.x * WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= (size_t)B * geo.L) return;
    int b = (int)(row / geo.L), i = (int)(row % geo.L);
    const float *hv = h + row * d;
    const float *ov = per_chunk ? other + ((size_t)b * geo.J + (i + geo.w) / geo.g) * d : other;
    double sum = 0;
    for (int k = lane; k < d; k += 32) sum += (double)hv[k] * ov[k];
    sum = warp_sum_double(sum);
    if (lane != 0) return;
    if (out_float) out_float[row] = (float)sum;
    if (out_double) out_double[row] = sum;
}

/* alpha over each chunk's members: softmax of the scores stored in alpha;
 * one thread per (b, j). */
static __global__ void selfagg_softmax_kernel(float *alpha, GpuGeometry geo, int B) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)B * geo.J) return;
    int b = (int)(e / geo.J), j = (int)(e % geo.J);
    float *ab = alpha + (size_t)b * geo.L;
    int first = chunk_first_of(geo, j), last = chunk_last_of(geo, j);
    double max = -INFINITY, sum = 0;
    for (int i = first; i <= last; i++) max = fmax(max, (double)ab[i]);
    for (int i = first; i <= last; i++) {
        ab[i] = (float)exp(ab[i] - max);
        sum += ab[i];
    }
    for (int i = first; i <= last; i++) ab[i] = (float)(ab[i] / sum);
}

/* The per-element kernels below are row kernels: a block of
 * (ROW_THREADS_X, ROW_THREADS_Y) threads takes ROW_THREADS_Y rows, thread
 * (x, y) the row blockIdx.x ROW_THREADS_Y + y and its column groups x, x +
 * ROW_THREADS_X, ... of W columns each (W = 4 where d % 4 == 0 and the rows
 * are 16-byte aligned, else 1). Each thread finds its row's chunk once;
 * dividing a flat element index by d for every element cost more than the
 * memory traffic. */
enum { ROW_THREADS_X = 64, ROW_THREADS_Y = CUDA_THREADS / ROW_THREADS_X };

static dim3 row_blocks(int rows) {
    return dim3((unsigned)((rows + ROW_THREADS_Y - 1) / ROW_THREADS_Y));
}

/* Whether d % 4 == 0 and every non-NULL pointer is 16-byte aligned, for
 * W = 4. */
static int rows_in_fours(int d, const void *a, const void *b, const void *c, const void *e) {
    uintptr_t bits = (uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)e;
    return d % 4 == 0 && bits % 16 == 0;
}

/* z_j[k] = mean or alpha-weighted sum of the members' h_i[k], members in
 * order; rows b J + j. */
template <int W>
static __global__ void downscale_sum_kernel(float *z, const float *alpha, const float *h,
                                            GpuGeometry geo, int B, int d, int selfagg) {
    int row = blockIdx.x * ROW_THREADS_Y + threadIdx.y;
    if (row >= B * geo.J) return;
    int b = row / geo.J, j = row % geo.J;
    int first = chunk_first_of(geo, j), last = chunk_last_of(geo, j);
    const float *hb = h + (size_t)b * geo.L * d, *ab = selfagg ? alpha + (size_t)b * geo.L : NULL;
    float *zr = z + (size_t)row * d;
    for (int k = W * threadIdx.x; k < d; k += W * ROW_THREADS_X) {
        float sum[W], v[W];
        for (int c = 0; c < W; c++) sum[c] = 0.0f;
        for (int i = first; i <= last; i++) {
            load_values<W>(v, hb + (size_t)i * d + k);
            if (selfagg)
                for (int c = 0; c < W; c++) sum[c] += ab[i] * v[c];
            else
                for (int c = 0; c < W; c++) sum[c] += v[c];
        }
        if (!selfagg)
            for (int c = 0; c < W; c++) sum[c] /= (float)(last - first + 1);
        store_values<W>(zr + k, sum);
    }
}

int downscale_forward(float *z, float *alpha, const float *h, const float *score,
                      GpuGeometry geo, int B, int d, int selfagg, cudaStream_t stream) {
    size_t tokens = (size_t)B * geo.L;
    if (selfagg) {
        selfagg_dot_kernel<<<(unsigned)((tokens + WARPS - 1) / WARPS), CUDA_THREADS, 0,
                             stream>>>(alpha, NULL, h, score, geo, B, d, 0);
        if (cuda_launched("selfagg_dot_kernel (scores)")) return -1;
        selfagg_softmax_kernel<<<cuda_blocks((size_t)B * geo.J), CUDA_THREADS, 0, stream>>>(
            alpha, geo, B);
        if (cuda_launched("selfagg_softmax_kernel")) return -1;
    }
    dim3 grid = row_blocks(B * geo.J), threads(ROW_THREADS_X, ROW_THREADS_Y);
    if (rows_in_fours(d, z, h, NULL, NULL))
        downscale_sum_kernel<4><<<grid, threads, 0, stream>>>(z, alpha, h, geo, B, d, selfagg);
    else
        downscale_sum_kernel<1><<<grid, threads, 0, stream>>>(z, alpha, h, geo, B, d, selfagg);
    return cuda_launched("downscale_sum_kernel");
}

/* dc_i = alpha_i (dot_i - sum_k alpha_k dot_k) over each chunk, with
 * dot_i = dz_j . h_i; one thread per (b, j). */
static __global__ void selfagg_dc_kernel(float *dc, const double *dot, const float *alpha,
                                         GpuGeometry geo, int B) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)B * geo.J) return;
    int b = (int)(e / geo.J), j = (int)(e % geo.J);
    size_t row0 = (size_t)b * geo.L;
    int first = chunk_first_of(geo, j), last = chunk_last_of(geo, j);
    double mean = 0;
    for (int i = first; i <= last; i++) mean += alpha[row0 + i] * dot[row0 + i];
    for (int i = first; i <= last; i++)
        dc[row0 + i] = (float)(alpha[row0 + i] * (dot[row0 + i] - mean));
}

/* dh_i[k] += dz_j[k] / |I_j| (mean) or alpha_i dz_j[k] + dc_i score[k]
 * (selfagg); rows b L + i. */
template <int W>
static __global__ void downscale_backward_kernel(float *dh, const float *dz, const float *alpha,
                                                 const float *dc, const float *score,
                                                 GpuGeometry geo, int B, int d, int selfagg) {
    int row = blockIdx.x * ROW_THREADS_Y + threadIdx.y;
    if (row >= B * geo.L) return;
    int b = row / geo.L, i = row % geo.L, j = (i + geo.w) / geo.g;
    const float *dzr = dz + ((size_t)b * geo.J + j) * d;
    float *dhr = dh + (size_t)row * d;
    float a = selfagg ? alpha[row] : 0.0f, dci = selfagg ? dc[row] : 0.0f;
    float count = (float)(chunk_last_of(geo, j) - chunk_first_of(geo, j) + 1);
    for (int k = W * threadIdx.x; k < d; k += W * ROW_THREADS_X) {
        float out[W], g[W], sc[W];
        load_values<W>(out, dhr + k);
        load_values<W>(g, dzr + k);
        if (selfagg) {
            load_values<W>(sc, score + k);
            for (int c = 0; c < W; c++) out[c] += a * g[c] + dci * sc[c];
        } else {
            for (int c = 0; c < W; c++) out[c] += g[c] / count;
        }
        store_values<W>(dhr + k, out);
    }
}

int downscale_backward(float *dh, float *dscore, double *dot_scratch, float *dc_scratch,
                       const float *dz, const float *h, const float *alpha, const float *score,
                       GpuGeometry geo, int B, int d, int selfagg, GemmContext *gc,
                       cudaStream_t stream) {
    size_t tokens = (size_t)B * geo.L;
    if (selfagg) {
        selfagg_dot_kernel<<<(unsigned)((tokens + WARPS - 1) / WARPS), CUDA_THREADS, 0,
                             stream>>>(NULL, dot_scratch, h, dz, geo, B, d, 1);
        if (cuda_launched("selfagg_dot_kernel (backward)")) return -1;
        selfagg_dc_kernel<<<cuda_blocks((size_t)B * geo.J), CUDA_THREADS, 0, stream>>>(
            dc_scratch, dot_scratch, alpha, geo, B);
        if (cuda_launched("selfagg_dc_kernel")) return -1;
    }
    dim3 grid = row_blocks(B * geo.L), threads(ROW_THREADS_X, ROW_THREADS_Y);
    if (rows_in_fours(d, dh, dz, selfagg ? score : NULL, NULL))
        downscale_backward_kernel<4><<<grid, threads, 0, stream>>>(dh, dz, alpha, dc_scratch,
                                                                   score, geo, B, d, selfagg);
    else
        downscale_backward_kernel<1><<<grid, threads, 0, stream>>>(dh, dz, alpha, dc_scratch,
                                                                   score, geo, B, d, selfagg);
    if (cuda_launched("downscale_backward_kernel")) return -1;
    if (!selfagg) return 0;
    /* dscore (d) += h^T dc:  h (B L, d), dc (B L) */
    return gemm(gc, 1, 0, d, 1, (int)tokens, 1.0f, h, d, dc_scratch, 1, 1.0f, dscore,
                1);
}

/* coef_j = g softmax(logits_j) in place, logits (B J, g) = delta W^T; one
 * thread per (b, j). */
static __global__ void alloc_softmax_kernel(float *coef, int rows, int g) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)rows) return;
    float *c = coef + e * g;
    double max = -INFINITY, sum = 0;
    for (int r = 0; r < g; r++) max = fmax(max, (double)c[r]);
    for (int r = 0; r < g; r++) {
        c[r] = (float)exp(c[r] - max);
        sum += c[r];
    }
    for (int r = 0; r < g; r++) c[r] = (float)(g * (double)c[r] / sum);
}

/* h_out_i[k] = base_i[k] + coef delta_j[k] for i >= s (j, slot of token
 * i - s), base_i[k] otherwise (base NULL: zeros); rows b L + i. */
template <int W>
static __global__ void upscale_kernel(float *h_out, const float *coef, const float *base,
                                      const float *delta, GpuGeometry geo, int B, int d,
                                      int use_alloc) {
    int row = blockIdx.x * ROW_THREADS_Y + threadIdx.y;
    if (row >= B * geo.L) return;
    int b = row / geo.L, i = row % geo.L;
    const float *baser = base ? base + (size_t)row * d : NULL, *dj = NULL;
    float *outr = h_out + (size_t)row * d, cf = 1.0f;
    if (i >= geo.s) {
        int src = i - geo.s, j = (src + geo.w) / geo.g, slot = (src + geo.w) % geo.g;
        size_t bj = (size_t)b * geo.J + j;
        dj = delta + bj * d;
        if (use_alloc) cf = coef[bj * geo.g + slot];
    }
    for (int k = W * threadIdx.x; k < d; k += W * ROW_THREADS_X) {
        float out[W], v[W];
        if (baser)
            load_values<W>(out, baser + k);
        else
            for (int c = 0; c < W; c++) out[c] = 0.0f;
        if (dj) {
            load_values<W>(v, dj + k);
            for (int c = 0; c < W; c++) out[c] += use_alloc ? cf * v[c] : v[c];
        }
        store_values<W>(outr + k, out);
    }
}

int upscale_forward(float *h_out, float *coef, const float *base, const float *delta,
                    const float *alloc, GpuGeometry geo, int B, int d, int use_alloc,
                    GemmContext *gc, cudaStream_t stream) {
    int rows = B * geo.J;
    if (use_alloc) {
        /* logits (B J, g) = delta (B J, d) W^T, W (g, d) */
        if (gemm(gc, 0, 1, rows, geo.g, d, 1.0f, delta, d, alloc, d, 0.0f, coef,
                 geo.g))
            return -1;
        alloc_softmax_kernel<<<cuda_blocks((size_t)rows), CUDA_THREADS, 0, stream>>>(coef, rows,
                                                                                    geo.g);
        if (cuda_launched("alloc_softmax_kernel")) return -1;
    }
    dim3 grid = row_blocks(B * geo.L), threads(ROW_THREADS_X, ROW_THREADS_Y);
    if (rows_in_fours(d, h_out, base, delta, NULL))
        upscale_kernel<4><<<grid, threads, 0, stream>>>(h_out, coef, base, delta, geo, B, d,
                                                        use_alloc);
    else
        upscale_kernel<1><<<grid, threads, 0, stream>>>(h_out, coef, base, delta, geo, B, d,
                                                        use_alloc);
    return cuda_launched("upscale_kernel");
}

/* ddelta_j[k] += sum over members src (with i = src + s < L) of
 * coef_slot dh_out_i[k], members in order; rows b J + j. */
template <int W>
static __global__ void upscale_backward_kernel(float *ddelta, const float *dh_out,
                                               const float *coef, GpuGeometry geo, int B, int d,
                                               int use_alloc) {
    int row = blockIdx.x * ROW_THREADS_Y + threadIdx.y;
    if (row >= B * geo.J) return;
    int b = row / geo.J, j = row % geo.J;
    int first = chunk_first_of(geo, j), last = chunk_last_of(geo, j);
    const float *dhb = dh_out + (size_t)b * geo.L * d, *cj = coef + (size_t)row * geo.g;
    float *ddr = ddelta + (size_t)row * d;
    for (int k = W * threadIdx.x; k < d; k += W * ROW_THREADS_X) {
        float sum[W], go[W];
        load_values<W>(sum, ddr + k);
        for (int src = first; src <= last; src++) {
            int i = src + geo.s;
            if (i >= geo.L) break;
            load_values<W>(go, dhb + (size_t)i * d + k);
            float cf = use_alloc ? cj[(src + geo.w) % geo.g] : 1.0f;
            for (int c = 0; c < W; c++) sum[c] += use_alloc ? cf * go[c] : go[c];
        }
        store_values<W>(ddr + k, sum);
    }
}

/* G (B J, g): G_r = dh_out_{src + s} . delta_j for the member src at slot
 * r (0 where the slot has no member or src + s >= L); one warp each. */
static __global__ void alloc_dot_kernel(double *G, const float *dh_out, const float *delta,
                                        GpuGeometry geo, int B, int d) {
    size_t e = (size_t)blockIdx.x * WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (e >= (size_t)B * geo.J * geo.g) return;
    int r = (int)(e % geo.g);
    size_t bj = e / geo.g;
    int b = (int)(bj / geo.J), j = (int)(bj % geo.J);
    int src = j * geo.g - geo.w + r, i = src + geo.s;
    double sum = 0;
    if (src >= chunk_first_of(geo, j) && src <= chunk_last_of(geo, j) && i < geo.L) {
        const float *go = dh_out + ((size_t)b * geo.L + i) * d, *dj = delta + bj * d;
        for (int k = lane; k < d; k += 32) sum += (double)go[k] * dj[k];
        sum = warp_sum_double(sum);
    }
    if (lane == 0) G[e] = sum;
}

/* dl_r = coef_r (G_r - (1/g) sum_k coef_k G_k); one thread per (b, j). */
static __global__ void alloc_dl_kernel(float *dl, const double *G, const float *coef, int rows,
                                       int g) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)rows) return;
    const float *c = coef + e * g;
    const double *Gj = G + e * g;
    double mean = 0;
    for (int r = 0; r < g; r++) mean += c[r] * Gj[r];
    mean /= g;
    for (int r = 0; r < g; r++) dl[e * g + r] = (float)(c[r] * (Gj[r] - mean));
}

int upscale_backward(float *ddelta, float *dalloc, double *dot_scratch, float *dl_scratch,
                     const float *dh_out, const float *delta, const float *coef,
                     const float *alloc, GpuGeometry geo, int B, int d, int use_alloc,
                     GemmContext *gc, cudaStream_t stream) {
    int rows = B * geo.J, g = geo.g;
    dim3 grid = row_blocks(rows), threads(ROW_THREADS_X, ROW_THREADS_Y);
    if (rows_in_fours(d, ddelta, dh_out, NULL, NULL))
        upscale_backward_kernel<4><<<grid, threads, 0, stream>>>(ddelta, dh_out, coef, geo, B, d,
                                                                 use_alloc);
    else
        upscale_backward_kernel<1><<<grid, threads, 0, stream>>>(ddelta, dh_out, coef, geo, B, d,
                                                                 use_alloc);
    if (cuda_launched("upscale_backward_kernel")) return -1;
    if (!use_alloc) return 0;
    size_t slots = (size_t)rows * g;
    alloc_dot_kernel<<<(unsigned)((slots + WARPS - 1) / WARPS), CUDA_THREADS, 0, stream>>>(
        dot_scratch, dh_out, delta, geo, B, d);
    if (cuda_launched("alloc_dot_kernel")) return -1;
    alloc_dl_kernel<<<cuda_blocks((size_t)rows), CUDA_THREADS, 0, stream>>>(dl_scratch,
                                                                           dot_scratch, coef,
                                                                           rows, g);
    if (cuda_launched("alloc_dl_kernel")) return -1;
    /* ddelta (B J, d) += dl (B J, g) W (g, d);  dW (g, d) += dl^T delta */
    if (gemm(gc, 0, 0, rows, d, g, 1.0f, dl_scratch, g, alloc, d, 1.0f, ddelta, d))
        return -1;
    return gemm(gc, 1, 0, g, d, rows, 1.0f, dl_scratch, g, delta, d, 1.0f, dalloc, d);
}
