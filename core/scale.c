/*
 * scale.c: chunk geometry, down-scaling and up-scaling of one loop iteration
 * (see scale.h for the equations). The forward passes run one task per batch
 * row on the pool of parallel.h, and so do the backward passes, which save
 * each token's gradient through the shared score and alloc weights in a
 * scratch buffer; those weights' gradients are then one matrix product
 * over all rows, summed in an order that depends on the shapes only.
 */
#include "scale.h"

#include <math.h>
#include <string.h>

#include "matmul.h"
#include "parallel.h"
#include "reduce.h"

ChunkGeometry chunk_geometry(int L, const IterSpec *spec) {
    ChunkGeometry geo;
    geo.L = L;
    geo.g = spec->g;
    geo.w = spec->offset;
    geo.s = spec->shift;
    geo.J = (L - 1 + geo.w) / geo.g + 1;
    return geo;
}

int chunk_first(const ChunkGeometry *geo, int j) {
    int first = j * geo->g - geo->w;
    return first < 0 ? 0 : first;
}

int chunk_last(const ChunkGeometry *geo, int j) {
    int last = (j + 1) * geo->g - geo->w - 1;
    return last > geo->L - 1 ? geo->L - 1 : last;
}

void chunk_positions(int *pos, const ChunkGeometry *geo) {
    for (int j = 0; j < geo->J; j++) pos[j] = chunk_last(geo, j);
}

/* The arguments of a down- or up-scaling, for the batch rows' tasks (each
 * row b is independent). */
typedef struct {
    real *out, *saved;          /* forward: z and alpha, or h_out and coef */
    real *grad, *coef_grad;     /* backward: dh and dc, or ddelta and dl */
    const real *in, *second;    /* h, or base and delta; backward: also dz or dh_out */
    const real *weight;         /* score, or alloc */
    const real *kept;           /* backward: the saved alpha or coef */
    const ChunkGeometry *geo;
    int d, mode;
} ScaleJob;

size_t scale_scratch_size(const ChunkGeometry *geo, int B) {
    return (size_t)B * geo->J * geo->g;
}

/* Down-scaling of batch row b. */
static void downscale_row(void *ctx, int b, int thread) {
    const ScaleJob *job = ctx;
    real *z = job->out, *alpha = job->saved;
    const real *h = job->in, *score = job->weight;
    const ChunkGeometry *geo = job->geo;
    int d = job->d, mode = job->mode, L = geo->L, J = geo->J;
    const real *hb = h + (size_t)b * L * d;
    for (int j = 0; j < J; j++) {
        int first = chunk_first(geo, j), last = chunk_last(geo, j);
        real *zj = z + ((size_t)b * J + j) * d;
        memset(zj, 0, (size_t)d * sizeof(real));
        if (mode == DOWN_MEAN) {
            for (int i = first; i <= last; i++)
                for (int k = 0; k < d; k++) zj[k] += hb[(size_t)i * d + k];
            real count = (real)(last - first + 1);
            for (int k = 0; k < d; k++) zj[k] /= count;
            continue;
        }
        /* selfagg: alpha = softmax over members of score . h_i */
        real *ab = alpha + (size_t)b * L;
        double max = -INFINITY;
        for (int i = first; i <= last; i++) {
            double c = dot_double(score, hb + (size_t)i * d, d);
            ab[i] = (real)c;
            if (c > max) max = c;
        }
        double sum = 0;
        for (int i = first; i <= last; i++) {
            ab[i] = (real)exp(ab[i] - max);
            sum += ab[i];
        }
        for (int i = first; i <= last; i++) {
            ab[i] = (real)(ab[i] / sum);
            for (int k = 0; k < d; k++) zj[k] += ab[i] * hb[(size_t)i * d + k];
        }
    }
}

void downscale_forward(real *z, real *alpha, const real *h, const real *score,
                       const ChunkGeometry *geo, int B, int d, int mode) {
    ScaleJob job = {.out = z, .saved = alpha, .in = h, .weight = score, .geo = geo, .d = d,
                    .mode = mode};
    parallel_for_work(B, downscale_row, &job, 4.0 * B * geo->L * d);
}

/* Down-scaling backward of batch row b, except the score gradient: dh and,
 * for selfagg, dc_i (B, L) for the caller to sum. */
static void downscale_backward_row(void *ctx, int b, int thread) {
    const ScaleJob *job = ctx;
    const ChunkGeometry *geo = job->geo;
    int d = job->d, L = geo->L, J = geo->J, g = geo->g;
    const real *hb = job->in + (size_t)b * L * d, *score = job->weight;
    real *dhb = job->grad + (size_t)b * L * d;
    double dalpha[g]; /* dz_j . h_i of the chunk's members; g <= 4096 by validation */
    for (int j = 0; j < J; j++) {
        int first = chunk_first(geo, j), last = chunk_last(geo, j);
        const real *dzj = job->second + ((size_t)b * J + j) * d;
        if (job->mode == DOWN_MEAN) {
            real count = (real)(last - first + 1);
            for (int i = first; i <= last; i++)
                for (int k = 0; k < d; k++) dhb[(size_t)i * d + k] += dzj[k] / count;
            continue;
        }
        const real *ab = job->kept + (size_t)b * L;
        real *dcb = job->coef_grad + (size_t)b * L;
        /* mean_dalpha = sum_k alpha_k (dz_j . h_k) */
        double mean_dalpha = 0;
        for (int i = first; i <= last; i++) {
            dalpha[i - first] = dot_double(dzj, hb + (size_t)i * d, d);
            mean_dalpha += ab[i] * dalpha[i - first];
        }
        for (int i = first; i <= last; i++) {
            real *dhi = dhb + (size_t)i * d;
            real dc = (real)(ab[i] * (dalpha[i - first] - mean_dalpha));
            dcb[i] = dc;
            for (int k = 0; k < d; k++) dhi[k] += ab[i] * dzj[k] + dc * score[k];
        }
    }
}

void downscale_backward(real *dh, real *dscore, real *scratch, const real *dz, const real *h,
                        const real *alpha, const real *score,
                        const ChunkGeometry *geo, int B, int d, int mode) {
    ScaleJob job = {.grad = dh, .coef_grad = scratch, .in = h, .second = dz, .weight = score,
                    .kept = alpha, .geo = geo, .d = d, .mode = mode};
    parallel_for_work(B, downscale_backward_row, &job, 4.0 * B * geo->L * d);
    if (mode == DOWN_MEAN) return;
    /* dscore (d) += h^T dc, h (B L, d), dc (B L) */
    matmul_parallel(1, 0, d, 1, B * geo->L, 1, h, d, scratch, 1, 1, dscore, 1);
}

/* coef_j (g) = g softmax(W delta_j), computed as g e_r / sum e so that W = 0
 * gives exactly 1 (and alloc with zero weights is bit-identical to copy). */
void alloc_coefficients(real *coef, const real *delta_j, const real *alloc, int g, int d) {
    double max = -INFINITY;
    for (int r = 0; r < g; r++) {
        double logit = dot_double(alloc + (size_t)r * d, delta_j, d);
        coef[r] = (real)logit;
        if (logit > max) max = logit;
    }
    double sum = 0;
    for (int r = 0; r < g; r++) {
        coef[r] = (real)exp(coef[r] - max);
        sum += coef[r];
    }
    for (int r = 0; r < g; r++) coef[r] = (real)(g * (double)coef[r] / sum);
}

/* Up-scaling of batch row b. */
static void upscale_row(void *ctx, int b, int thread) {
    const ScaleJob *job = ctx;
    real *h_out = job->out, *coef = job->saved;
    const real *base = job->in, *delta = job->second, *alloc = job->weight;
    const ChunkGeometry *geo = job->geo;
    int d = job->d, mode = job->mode;
    int L = geo->L, J = geo->J, g = geo->g, w = geo->w, s = geo->s;
    real *coef_b = mode == UP_ALLOC ? coef + (size_t)b * J * g : NULL;
    if (mode == UP_ALLOC)
        for (int j = 0; j < J; j++)
            alloc_coefficients(coef_b + (size_t)j * g, delta + ((size_t)b * J + j) * d,
                               alloc, g, d);
    for (int i = 0; i < L; i++) {
        real *out = h_out + ((size_t)b * L + i) * d;
        const real *in = base ? base + ((size_t)b * L + i) * d : NULL;
        if (i < s) {
            /* nothing arrives yet: h_out = base, or e = 0 */
            if (!in) memset(out, 0, (size_t)d * sizeof(real));
            else if (out != in) memcpy(out, in, (size_t)d * sizeof(real));
            continue;
        }
        int src = i - s, j = (src + w) / g, slot = (src + w) % g;
        const real *dj = delta + ((size_t)b * J + j) * d;
        real c = mode == UP_COPY ? 1 : coef_b[(size_t)j * g + slot];
        if (!in) {
            if (mode == UP_COPY) memcpy(out, dj, (size_t)d * sizeof(real));
            else for (int k = 0; k < d; k++) out[k] = c * dj[k];
        } else if (mode == UP_COPY) {
            for (int k = 0; k < d; k++) out[k] = in[k] + dj[k];
        } else {
            for (int k = 0; k < d; k++) out[k] = in[k] + c * dj[k];
        }
    }
}

void upscale_forward(real *h_out, real *coef, const real *base, const real *delta,
                     const real *alloc, const ChunkGeometry *geo, int B, int d, int mode) {
    ScaleJob job = {.out = h_out, .saved = coef, .in = base, .second = delta, .weight = alloc,
                    .geo = geo, .d = d, .mode = mode};
    parallel_for_work(B, upscale_row, &job, 4.0 * B * geo->L * d);
}

/* Up-scaling backward of batch row b, except the terms through W: ddelta_j
 * += sum_i coef_rho(i) dh_out_{i+s}, and for alloc dl (B, J, g). */
static void upscale_backward_row(void *ctx, int b, int thread) {
    const ScaleJob *job = ctx;
    const ChunkGeometry *geo = job->geo;
    int d = job->d, mode = job->mode;
    int L = geo->L, J = geo->J, g = geo->g, w = geo->w, s = geo->s;
    double G[g]; /* per-slot dL/dcoef of one chunk; g <= 4096 by validation */
    for (int j = 0; j < J; j++) {
        const real *dj = job->second + ((size_t)b * J + j) * d;
        real *ddj = job->grad + ((size_t)b * J + j) * d;
        const real *cj = mode == UP_ALLOC ? job->kept + ((size_t)b * J + j) * g : NULL;
        for (int r = 0; r < g; r++) G[r] = 0;
        for (int src = chunk_first(geo, j); src <= chunk_last(geo, j); src++) {
            int i = src + s;
            if (i >= L) break;
            const real *go = job->in + ((size_t)b * L + i) * d;
            if (mode == UP_COPY) {
                for (int k = 0; k < d; k++) ddj[k] += go[k];
                continue;
            }
            int slot = (src + w) % g;
            real c = cj[slot];
            for (int k = 0; k < d; k++) ddj[k] += c * go[k];
            G[slot] = dot_double(go, dj, d);
        }
        if (mode == UP_COPY) continue;
        double mean = 0; /* (1/g) sum_k coef_k G_k */
        for (int r = 0; r < g; r++) mean += cj[r] * G[r];
        mean /= g;
        real *dl = job->coef_grad + ((size_t)b * J + j) * g;
        for (int r = 0; r < g; r++) dl[r] = (real)(cj[r] * (G[r] - mean));
    }
}

void upscale_backward(real *ddelta, real *dalloc, real *scratch, const real *dh_out,
                      const real *delta, const real *coef, const real *alloc,
                      const ChunkGeometry *geo, int B, int d, int mode) {
    ScaleJob job = {.grad = ddelta, .coef_grad = scratch, .in = dh_out, .second = delta,
                    .kept = coef, .geo = geo, .d = d, .mode = mode};
    parallel_for_work(B, upscale_backward_row, &job, 4.0 * B * geo->L * d);
    if (mode == UP_COPY) return;
    /* ddelta (B J, d) += dl (B J, g) W (g, d);  dW (g, d) += dl^T delta */
    int rows = B * geo->J, g = geo->g;
    MatmulSpec products[2] = {
        {0, 0, rows, d, g, 1, scratch, g, alloc, d, 1, ddelta, d},
        {1, 0, g, d, rows, 1, scratch, g, delta, d, 1, dalloc, d},
    };
    matmul_parallel_many(products, 2);
}
