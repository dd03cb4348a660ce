/*
 * mesh.c: write, read and state update of topology "mesh" (equations and
 * the order of operations in mesh.h). Both passes run one task per batch
 * row on the pool of parallel.h; the backward pass keeps each token's
 * gradient of the router logits in a scratch buffer, so that the routers'
 * gradients and their share of de are matrix products over all rows,
 * summed in an order that depends on the shapes only.
 */
#include "mesh.h"

#include <math.h>
#include <string.h>

#include "matmul.h"
#include "parallel.h"
#include "reduce.h"

/* The arguments of one pass, for the batch rows' tasks. */
typedef struct {
    real *h_out, *mem, *k, *w, *r;        /* forward outputs */
    real *de, *dmem, *dl_read, *dl_write; /* backward outputs */
    const real *saved_mem, *saved_w, *saved_r;  /* backward: the forward's mem, w, r */
    const real *e, *mem_prev, *h0, *k_prev, *dh_out;
    const MeshWeights *weights;
    int B, L, d, S;
} MeshJob;

size_t mesh_scratch_size(int B, int L, int S) {
    return 2 * (size_t)B * L * S;
}

/* The router logits x_b = router_b . e_i + bias_b, then their softmax into
 * p (S); returns the exponentials in x (double, max-shifted) and their sum. */
static double router_softmax(double *x, real *p, const real *router, const real *bias,
                             const real *ei, int d, int S) {
    double max = -INFINITY, sum = 0;
    for (int b = 0; b < S; b++) {
        x[b] = dot_double(router + (size_t)b * d, ei, d) + bias[b];
        if (x[b] > max) max = x[b];
    }
    for (int b = 0; b < S; b++) {
        x[b] = exp(x[b] - max);
        sum += x[b];
    }
    for (int b = 0; b < S; b++) p[b] = (real)(x[b] / sum);
    return sum;
}

/* Forward of batch row bt: every token's write, read and state. */
static void mesh_forward_row(void *ctx, int bt, int thread) {
    const MeshJob *job = ctx;
    const MeshWeights *mw = job->weights;
    int B = job->B, L = job->L, d = job->d, S = job->S;
    size_t slot_stride = (size_t)B * L * d;
    double x[S], c[S]; /* S <= SPIRAL_MAX_MESH_SLOTS by validation */
    for (int i = 0; i < L; i++) {
        size_t row = (size_t)bt * L + i;
        const real *ei = job->e + row * d;
        real *wi = job->w + row * S, *ri = job->r + row * S;
        router_softmax(x, wi, mw->write, mw->write_bias, ei, d, S);
        double sum = router_softmax(x, ri, mw->read, mw->read_bias, ei, d, S);
        /* c_b = S r_b - 1, exactly 0 for equal logits */
        for (int b = 0; b < S; b++) c[b] = (S * x[b] - sum) / sum;
        /* write: m_b = m_b(before) + w_b e */
        for (int b = 0; b < S; b++) {
            real *m = job->mem + b * slot_stride + row * d;
            const real *before = job->mem_prev ? job->mem_prev + b * slot_stride + row * d
                                 : b == 0      ? job->h0 + row * d
                                               : NULL;
            real wb = wi[b];
            if (before)
                for (int k = 0; k < d; k++) m[k] = before[k] + wb * ei[k];
            else
                for (int k = 0; k < d; k++) m[k] = wb * ei[k];
        }
        /* K = sum_b c_b m_b;  h(t+1) = (h(t) + e - K(t)) + K */
        real *ki = job->k + row * d, *hi = job->h_out + row * d;
        memset(ki, 0, (size_t)d * sizeof(real));
        int any = 0;
        for (int b = 0; b < S; b++) {
            if (c[b] == 0) continue;
            real cb = (real)c[b];
            const real *m = job->mem + b * slot_stride + row * d;
            for (int k = 0; k < d; k++) ki[k] += cb * m[k];
            any = 1;
        }
        /* x - (+0) is x for every x; x + (+0) is not for x = -0, hence `any` */
        if (job->k_prev) {
            const real *kp = job->k_prev + row * d;
            for (int k = 0; k < d; k++) hi[k] -= kp[k];
        }
        if (any)
            for (int k = 0; k < d; k++) hi[k] += ki[k];
    }
}

void mesh_forward(real *h_out, real *mem, real *k, real *w, real *r, const real *e,
                  const real *mem_prev, const real *h0, const real *k_prev,
                  const MeshWeights *weights, int B, int L, int d, int S) {
    MeshJob job = {.h_out = h_out, .mem = mem, .k = k, .w = w, .r = r, .e = e,
                   .mem_prev = mem_prev, .h0 = h0, .k_prev = k_prev, .weights = weights,
                   .B = B, .L = L, .d = d, .S = S};
    parallel_for_work(B, mesh_forward_row, &job, 8.0 * B * L * S * d);
}

/* Backward of batch row bt, except the terms through the router matrices:
 *   read  h = S sum_b r_b m_b:  dm_b += S r_b dh;  dr_b = S dh . m_b;
 *         dl_read_b = r_b (dr_b - sum_k r_k dr_k)
 *   write m_b += w_b e:  de = sum_b w_b dm_b;  dw_b = dm_b . e;
 *         dl_write_b = w_b (dw_b - sum_k w_k dw_k)
 * (dm_b is then also the gradient of the slot before the write). */
static void mesh_backward_row(void *ctx, int bt, int thread) {
    const MeshJob *job = ctx;
    int B = job->B, L = job->L, d = job->d, S = job->S;
    size_t slot_stride = (size_t)B * L * d;
    double grad[S];
    for (int i = 0; i < L; i++) {
        size_t row = (size_t)bt * L + i;
        const real *dh = job->dh_out + row * d, *ei = job->e + row * d;
        const real *wi = job->saved_w + row * S, *ri = job->saved_r + row * S;
        /* read */
        double mean = 0;
        for (int b = 0; b < S; b++) {
            grad[b] = S * dot_double(dh, job->saved_mem + b * slot_stride + row * d, d);
            mean += ri[b] * grad[b];
        }
        real *dlr = job->dl_read + row * S;
        for (int b = 0; b < S; b++) {
            dlr[b] = (real)(ri[b] * (grad[b] - mean));
            real scale = S * ri[b];
            real *dm = job->dmem + b * slot_stride + row * d;
            for (int k = 0; k < d; k++) dm[k] += scale * dh[k];
        }
        /* write */
        real *dei = job->de + row * d;
        memset(dei, 0, (size_t)d * sizeof(real));
        mean = 0;
        for (int b = 0; b < S; b++) {
            const real *dm = job->dmem + b * slot_stride + row * d;
            real wb = wi[b];
            for (int k = 0; k < d; k++) dei[k] += wb * dm[k];
            grad[b] = dot_double(dm, ei, d);
            mean += wi[b] * grad[b];
        }
        real *dlw = job->dl_write + row * S;
        for (int b = 0; b < S; b++) dlw[b] = (real)(wi[b] * (grad[b] - mean));
    }
}

/* bias (S) += the column sums of dl (rows, S), in row order. */
static void add_column_sums(real *bias, const real *dl, size_t rows, int S) {
    for (int b = 0; b < S; b++) {
        double sum = 0;
        for (size_t row = 0; row < rows; row++) sum += dl[row * S + b];
        bias[b] += (real)sum;
    }
}

void mesh_backward(real *de, real *dmem, const MeshWeights *grads, real *scratch,
                   const real *dh_out, const real *e, const real *mem, const real *w,
                   const real *r, const MeshWeights *weights, int B, int L, int d, int S) {
    size_t rows = (size_t)B * L;
    real *dl_read = scratch, *dl_write = scratch + rows * S;
    MeshJob job = {.de = de, .dmem = dmem, .dl_read = dl_read, .dl_write = dl_write,
                   .dh_out = dh_out, .e = e, .saved_mem = mem, .saved_w = w, .saved_r = r,
                   .weights = weights,
                   .B = B, .L = L, .d = d, .S = S};
    parallel_for_work(B, mesh_backward_row, &job, 8.0 * B * L * S * d);
    /* de (rows, d) += dl_read Rd + dl_write Wr;  dRd, dWr (S, d) += dl^T e */
    int n = (int)rows;
    matmul_parallel(0, 0, n, d, S, 1, dl_read, S, weights->read, d, 1, de, d);
    MatmulSpec products[3] = {
        {0, 0, n, d, S, 1, dl_write, S, weights->write, d, 1, de, d},
        {1, 0, S, d, n, 1, dl_read, S, e, d, 1, grads->read, d},
        {1, 0, S, d, n, 1, dl_write, S, e, d, 1, grads->write, d},
    };
    matmul_parallel_many(products, 3);
    add_column_sums(grads->read_bias, dl_read, rows, S);
    add_column_sums(grads->write_bias, dl_write, rows, S);
}
