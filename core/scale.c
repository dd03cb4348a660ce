/*
 * scale.c: chunk geometry, down-scaling and up-scaling of one loop iteration
 * (see scale.h for the equations). The forward passes run one task per batch
 * row on the pool of parallel.h; the backward passes, which sum the
 * gradient of the shared score and alloc weights over every row, run on the
 * caller.
 */
#include "scale.h"

#include <math.h>
#include <string.h>

#include "parallel.h"

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

/* The arguments of a forward down- or up-scaling, for the batch rows'
 * tasks (each row b is independent). */
typedef struct {
    real *out, *saved;          /* z and alpha, or h_out and coef */
    const real *in, *second;    /* h, or base and delta */
    const real *weight;         /* score, or alloc */
    const ChunkGeometry *geo;
    int d, mode;
} ScaleJob;

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
            double c = 0;
            for (int k = 0; k < d; k++) c += (double)score[k] * hb[(size_t)i * d + k];
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
    ScaleJob job = {z, alpha, h, NULL, score, geo, d, mode};
    parallel_for(B, downscale_row, &job);
}

void downscale_backward(real *dh, real *dscore, const real *dz, const real *h,
                        const real *alpha, const real *score,
                        const ChunkGeometry *geo, int B, int d, int mode) {
    int L = geo->L, J = geo->J;
    for (int b = 0; b < B; b++) {
        const real *hb = h + (size_t)b * L * d;
        real *dhb = dh + (size_t)b * L * d;
        for (int j = 0; j < J; j++) {
            int first = chunk_first(geo, j), last = chunk_last(geo, j);
            const real *dzj = dz + ((size_t)b * J + j) * d;
            if (mode == DOWN_MEAN) {
                real count = (real)(last - first + 1);
                for (int i = first; i <= last; i++)
                    for (int k = 0; k < d; k++) dhb[(size_t)i * d + k] += dzj[k] / count;
                continue;
            }
            const real *ab = alpha + (size_t)b * L;
            /* mean_dalpha = sum_k alpha_k (dz_j . h_k) */
            double mean_dalpha = 0;
            for (int i = first; i <= last; i++) {
                double dalpha = 0;
                for (int k = 0; k < d; k++) dalpha += (double)dzj[k] * hb[(size_t)i * d + k];
                mean_dalpha += ab[i] * dalpha;
            }
            for (int i = first; i <= last; i++) {
                const real *hi = hb + (size_t)i * d;
                real *dhi = dhb + (size_t)i * d;
                double dalpha = 0;
                for (int k = 0; k < d; k++) dalpha += (double)dzj[k] * hi[k];
                real dc = (real)(ab[i] * (dalpha - mean_dalpha));
                for (int k = 0; k < d; k++) {
                    dhi[k] += ab[i] * dzj[k] + dc * score[k];
                    dscore[k] += dc * hi[k];
                }
            }
        }
    }
}

/* coef_j (g) = g softmax(W delta_j), computed as g e_r / sum e so that W = 0
 * gives exactly 1 (and alloc with zero weights is bit-identical to copy). */
static void alloc_coefficients(real *coef, const real *delta_j, const real *alloc, int g, int d) {
    double max = -INFINITY;
    for (int r = 0; r < g; r++) {
        double logit = 0;
        for (int k = 0; k < d; k++) logit += (double)alloc[(size_t)r * d + k] * delta_j[k];
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
        const real *in = base + ((size_t)b * L + i) * d;
        if (out != in) memcpy(out, in, (size_t)d * sizeof(real));
        if (i < s) continue;
        int src = i - s, j = (src + w) / g, slot = (src + w) % g;
        const real *dj = delta + ((size_t)b * J + j) * d;
        if (mode == UP_COPY) {
            for (int k = 0; k < d; k++) out[k] += dj[k];
        } else {
            real c = coef_b[(size_t)j * g + slot];
            for (int k = 0; k < d; k++) out[k] += c * dj[k];
        }
    }
}

void upscale_forward(real *h_out, real *coef, const real *base, const real *delta,
                     const real *alloc, const ChunkGeometry *geo, int B, int d, int mode) {
    ScaleJob job = {h_out, coef, base, delta, alloc, geo, d, mode};
    parallel_for(B, upscale_row, &job);
}

void upscale_backward(real *ddelta, real *dalloc, const real *dh_out, const real *delta,
                      const real *coef, const real *alloc, const ChunkGeometry *geo,
                      int B, int d, int mode) {
    int L = geo->L, J = geo->J, g = geo->g, w = geo->w, s = geo->s;
    double G[g]; /* per-slot dL/dcoef of one chunk; g <= 4096 by validation */
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < J; j++) {
            const real *dj = delta + ((size_t)b * J + j) * d;
            real *ddj = ddelta + ((size_t)b * J + j) * d;
            const real *cj = mode == UP_ALLOC ? coef + ((size_t)b * J + j) * g : NULL;
            for (int r = 0; r < g; r++) G[r] = 0;
            for (int src = chunk_first(geo, j); src <= chunk_last(geo, j); src++) {
                int i = src + s;
                if (i >= L) break;
                const real *go = dh_out + ((size_t)b * L + i) * d;
                if (mode == UP_COPY) {
                    for (int k = 0; k < d; k++) ddj[k] += go[k];
                    continue;
                }
                int slot = (src + w) % g;
                double dot = 0;
                for (int k = 0; k < d; k++) {
                    ddj[k] += cj[slot] * go[k];
                    dot += (double)go[k] * dj[k];
                }
                G[slot] = dot;
            }
            if (mode == UP_COPY) continue;
            double mean = 0; /* (1/g) sum_k coef_k G_k */
            for (int r = 0; r < g; r++) mean += cj[r] * G[r];
            mean /= g;
            for (int r = 0; r < g; r++) {
                real dl = (real)(cj[r] * (G[r] - mean));
                if (dl == 0) continue;
                const real *wr = alloc + (size_t)r * d;
                real *dwr = dalloc + (size_t)r * d;
                for (int k = 0; k < d; k++) {
                    dwr[k] += dl * dj[k];
                    ddj[k] += dl * wr[k];
                }
            }
        }
    }
}
