/*
 * cuda_mesh.cu: the memory of topology "mesh" on the GPU, forward and
 * backward, as core/mesh.c computes it (equations in core/mesh.h).
 *
 * One block per token row (B L blocks): its threads hold the row's d
 * values, and each router logit or slot product is a block sum in a fixed
 * order (the block reduction below), so results are reproducible run to
 * run. The routers' gradients are then matrix products over all rows.
 */
#include "cuda_kernels.cuh"

#include <math.h>

#include "cuda_check.cuh"

enum { MESH_THREADS = 128, MESH_MAX_SLOTS = 64 };

/* Sum of x over the block (MESH_THREADS threads), the same order every call;
 * every thread gets the result. shared: MESH_THREADS doubles. */
static __device__ double block_sum(double x, double *shared) {
    shared[threadIdx.x] = x;
    __syncthreads();
    for (int stride = MESH_THREADS / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
        __syncthreads();
    }
    double sum = shared[0];
    __syncthreads();
    return sum;
}

/* x_b = router_b . e + bias_b (double) for the block's row; thread 0 keeps
 * them in logits (S). */
static __device__ void router_logits(double *logits, const float *router, const float *bias,
                                     const float *e, int d, int S, double *shared) {
    for (int b = 0; b < S; b++) {
        double part = 0;
        for (int k = threadIdx.x; k < d; k += MESH_THREADS)
            part += (double)router[(size_t)b * d + k] * e[k];
        double sum = block_sum(part, shared);
        if (threadIdx.x == 0) logits[b] = sum + bias[b];
    }
}

/* One row: write, read, K and the state (mesh.h: h_out += K(t+1) - K(t)). */
static __global__ void mesh_forward_kernel(float *h_out, float *mem, float *k, float *w, float *r,
                                           const float *e, const float *mem_prev,
                                           const float *h0, const float *k_prev,
                                           const float *write, const float *write_bias,
                                           const float *read, const float *read_bias, size_t rows,
                                           int d, int S) {
    __shared__ double shared[MESH_THREADS];
    __shared__ double x[MESH_MAX_SLOTS], c[MESH_MAX_SLOTS];
    __shared__ float wrow[MESH_MAX_SLOTS];
    __shared__ int any;
    size_t row = blockIdx.x;
    const float *er = e + row * d;
    size_t slot_stride = rows * d;
    /* write weights */
    router_logits(x, write, write_bias, er, d, S, shared);
    if (threadIdx.x == 0) {
        double max = -INFINITY, sum = 0;
        for (int b = 0; b < S; b++) max = fmax(max, x[b]);
        for (int b = 0; b < S; b++) sum += (x[b] = exp(x[b] - max));
        for (int b = 0; b < S; b++) w[row * S + b] = wrow[b] = (float)(x[b] / sum);
    }
    __syncthreads();
    /* read weights and c_b = S r_b - 1 = (S x_b - sum) / sum */
    router_logits(x, read, read_bias, er, d, S, shared);
    if (threadIdx.x == 0) {
        double max = -INFINITY, sum = 0;
        for (int b = 0; b < S; b++) max = fmax(max, x[b]);
        for (int b = 0; b < S; b++) sum += (x[b] = exp(x[b] - max));
        any = 0;
        for (int b = 0; b < S; b++) {
            r[row * S + b] = (float)(x[b] / sum);
            c[b] = (S * x[b] - sum) / sum;
            if (c[b] != 0) any = 1;
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < d; i += MESH_THREADS) {
        float ei = er[i], kk = 0;
        for (int b = 0; b < S; b++) {
            size_t at = b * slot_stride + row * d + i;
            float before = mem_prev ? mem_prev[at] : b == 0 ? h0[row * d + i] : 0.0f;
            float m = mem_prev || b == 0 ? before + wrow[b] * ei : wrow[b] * ei;
            mem[at] = m;
            if (c[b] != 0) kk += (float)c[b] * m;
        }
        k[row * d + i] = kk;
        float h = h_out[row * d + i];
        if (k_prev) h -= k_prev[row * d + i];
        if (any) h += kk;
        h_out[row * d + i] = h;
    }
}

int mesh_forward(float *h_out, float *mem, float *k, float *w, float *r, const float *e,
                 const float *mem_prev, const float *h0, const float *k_prev,
                 const GpuMeshWeights *weights, int B, int L, int d, int S,
                 cudaStream_t stream) {
    if (S > MESH_MAX_SLOTS) return cuda_status(cudaErrorInvalidValue, "mesh_forward: slots");
    size_t rows = (size_t)B * L;
    mesh_forward_kernel<<<(unsigned)rows, MESH_THREADS, 0, stream>>>(
        h_out, mem, k, w, r, e, mem_prev, h0, k_prev, weights->write, weights->write_bias,
        weights->read, weights->read_bias, rows, d, S);
    return cuda_launched("mesh_forward_kernel");
}

/* One row of the backward, except the router matrices' terms:
 *   read:  dr_b = S dh . m_b;  dl_read_b = r_b (dr_b - sum_k r_k dr_k);
 *          dm_b += S r_b dh
 *   write: de = sum_b w_b dm_b;  dw_b = dm_b . e;
 *          dl_write_b = w_b (dw_b - sum_k w_k dw_k) */
static __global__ void mesh_backward_kernel(float *de, float *dmem, float *dl_read,
                                            float *dl_write, const float *dh_out,
                                            const float *e, const float *mem, const float *w,
                                            const float *r, size_t rows, int d, int S) {
    __shared__ double shared[MESH_THREADS];
    __shared__ double grad[MESH_MAX_SLOTS];
    size_t row = blockIdx.x, slot_stride = rows * d;
    const float *dh = dh_out + row * d, *er = e + row * d;
    const float *wr = w + row * S, *rr = r + row * S;
    for (int b = 0; b < S; b++) {
        double part = 0;
        for (int i = threadIdx.x; i < d; i += MESH_THREADS)
            part += (double)dh[i] * mem[b * slot_stride + row * d + i];
        double sum = block_sum(part, shared);
        if (threadIdx.x == 0) grad[b] = S * sum;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double mean = 0;
        for (int b = 0; b < S; b++) mean += rr[b] * grad[b];
        for (int b = 0; b < S; b++) dl_read[row * S + b] = (float)(rr[b] * (grad[b] - mean));
    }
    __syncthreads();
    for (int i = threadIdx.x; i < d; i += MESH_THREADS) {
        float dei = 0;
        for (int b = 0; b < S; b++) {
            size_t at = b * slot_stride + row * d + i;
            float dm = dmem[at] + S * rr[b] * dh[i];
            dmem[at] = dm;
            dei += wr[b] * dm;
        }
        de[row * d + i] = dei;
    }
    __syncthreads();
    for (int b = 0; b < S; b++) {
        double part = 0;
        for (int i = threadIdx.x; i < d; i += MESH_THREADS)
            part += (double)dmem[b * slot_stride + row * d + i] * er[i];
        double sum = block_sum(part, shared);
        if (threadIdx.x == 0) grad[b] = sum;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double mean = 0;
        for (int b = 0; b < S; b++) mean += wr[b] * grad[b];
        for (int b = 0; b < S; b++) dl_write[row * S + b] = (float)(wr[b] * (grad[b] - mean));
    }
}

/* bias (S) += the column sums of dl (rows, S); one block per column. */
static __global__ void column_sums_kernel(float *bias, const float *dl, size_t rows, int S) {
    __shared__ double shared[MESH_THREADS];
    int b = blockIdx.x;
    double part = 0;
    for (size_t row = threadIdx.x; row < rows; row += MESH_THREADS) part += dl[row * S + b];
    double sum = block_sum(part, shared);
    if (threadIdx.x == 0) bias[b] += (float)sum;
}

int mesh_backward(float *de, float *dmem, const GpuMeshWeights *grads, float *scratch,
                  const float *dh_out, const float *e, const float *mem, const float *w,
                  const float *r, const GpuMeshWeights *weights, int B, int L, int d, int S,
                  GemmContext *gc, cudaStream_t stream) {
    if (S > MESH_MAX_SLOTS) return cuda_status(cudaErrorInvalidValue, "mesh_backward: slots");
    size_t rows = (size_t)B * L;
    float *dl_read = scratch, *dl_write = scratch + rows * S;
    mesh_backward_kernel<<<(unsigned)rows, MESH_THREADS, 0, stream>>>(
        de, dmem, dl_read, dl_write, dh_out, e, mem, w, r, rows, d, S);
    if (cuda_launched("mesh_backward_kernel")) return -1;
    int n = (int)rows;
    /* de += dl_read Rd + dl_write Wr;  dRd, dWr (S, d) += dl^T e */
    if (gemm(gc, 0, 0, n, d, S, 1.0f, dl_read, S, weights->read, d, 1.0f, de, d) ||
        gemm(gc, 0, 0, n, d, S, 1.0f, dl_write, S, weights->write, d, 1.0f, de, d) ||
        gemm(gc, 1, 0, S, d, n, 1.0f, dl_read, S, e, d, 1.0f, grads->read, d) ||
        gemm(gc, 1, 0, S, d, n, 1.0f, dl_write, S, e, d, 1.0f, grads->write, d))
        return -1;
    column_sums_kernel<<<S, MESH_THREADS, 0, stream>>>(grads->read_bias, dl_read, rows, S);
    if (cuda_launched("column_sums_kernel")) return -1;
    column_sums_kernel<<<S, MESH_THREADS, 0, stream>>>(grads->write_bias, dl_write, rows, S);
    return cuda_launched("column_sums_kernel");
}
