/*
 * scale.h: the per-iteration change of resolution (docs/model.md,
 * steps 1, 2, 5, 6 and 7).
 *
 * An iteration with chunk size g, offset w and shift s puts token i in chunk
 * pi(i) = floor((i + w) / g) at slot rho(i) = (i + w) mod g; there are
 * J = pi(L - 1) + 1 chunks. Chunk j's members are the tokens
 * max(0, j g - w) .. min(L - 1, (j + 1) g - w - 1): the first and last chunk
 * may be partial, and then average / softmax over the members that exist.
 */
#ifndef SPIRAL_SCALE_H
#define SPIRAL_SCALE_H

#include <stddef.h>

#include "config.h"
#include "real.h"

typedef struct {
    int L;  /* tokens */
    int g;  /* chunk size */
    int w;  /* offset, 0 <= w < g */
    int s;  /* causal shift, >= g - 1 */
    int J;  /* chunks = floor((L - 1 + w) / g) + 1 */
} ChunkGeometry;

/* Geometry of iteration `spec` over L tokens. */
ChunkGeometry chunk_geometry(int L, const IterSpec *spec);

/* First and last member token of chunk j. */
int chunk_first(const ChunkGeometry *geo, int j);
int chunk_last(const ChunkGeometry *geo, int j);

/* RoPE position of each latent: pos[j] = min((j + 1) g - w - 1, L - 1), the
 * token position of its last member. pos (J). */
void chunk_positions(int *pos, const ChunkGeometry *geo);

/* Down-scaling h (B, L, d) -> z (B, J, d).
 *   DOWN_MEAN:    z_j = (1 / |I_j|) sum_{i in I_j} h_i
 *   DOWN_SELFAGG: c_i = score . h_i;  alpha = softmax_{I_j}(c);
 *                 z_j = sum_{i in I_j} alpha_i h_i;  alpha (B, L) is saved.
 * score (d) and alpha are unused (may be NULL) for DOWN_MEAN. */
void downscale_forward(real *z, real *alpha, const real *h, const real *score,
                       const ChunkGeometry *geo, int B, int d, int mode);
/* Accumulates dh (B, L, d) and dscore (d) from dz (B, J, d):
 *   mean:    dh_i += dz_j / |I_j|
 *   selfagg: dh_i += alpha_i dz_j + dc_i score;  dscore += dc_i h_i, with
 *            dc_i = alpha_i (dz_j . h_i - sum_k alpha_k dz_j . h_k).
 * scratch: scale_scratch_size(geo, B) reals for selfagg (may be NULL for
 * mean), overwritten. */
void downscale_backward(real *dh, real *dscore, real *scratch, const real *dz, const real *h,
                        const real *alpha, const real *score,
                        const ChunkGeometry *geo, int B, int d, int mode);

/* Up-scaling and causal shift, e_i = u_{i-s} (i >= s), e_i = 0 (i < s),
 * where u_i = coef_{j, rho(i)} delta_j for j = pi(i) and
 *   UP_COPY:  coef = 1
 *   UP_ALLOC: coef_j = g softmax(W delta_j), W = alloc (g, d), over all g slots.
 * With base == NULL, h_out receives e itself; otherwise h_out = base + e in
 * the same pass (h_out may alias base).
 * coef (B, J, g) is saved for UP_ALLOC (unused, may be NULL, for UP_COPY).
 * base, h_out (B, L, d); delta (B, J, d). */
void upscale_forward(real *h_out, real *coef, const real *base, const real *delta,
                     const real *alloc, const ChunkGeometry *geo, int B, int d, int mode);
/* Accumulates ddelta (B, J, d) and dalloc (g, d) from dh_out = dL/de (B, L, d)
 * (the gradient reaching base is dh_out itself and is the caller's business):
 *   ddelta_j += sum_i coef_{rho(i)} dh_out_{i+s} + W^T dl_j,
 *   G_r = dh_out_{i+s} . delta_j for the token i at slot r,
 *   dl_r = coef_r (G_r - (1/g) sum_k coef_k G_k),  dW_r += dl_r delta_j.
 * scratch: scale_scratch_size(geo, B) reals for alloc (may be NULL for
 * copy), overwritten. */
void upscale_backward(real *ddelta, real *dalloc, real *scratch, const real *dh_out,
                      const real *delta, const real *coef, const real *alloc,
                      const ChunkGeometry *geo, int B, int d, int mode);

/* Reals of the scratch the backward passes need for the shared weights'
 * gradients: one per token (dc) or per chunk slot (dl), B J g >= B L. */
size_t scale_scratch_size(const ChunkGeometry *geo, int B);

/* One chunk's alloc coefficients: coef (g) = g softmax(alloc delta_j),
 * alloc (g, d), delta_j (d); as g e_r / sum e, so that alloc = 0 gives
 * exactly 1. The full pass and the incremental decoder share it, so that
 * their logits agree. */
void alloc_coefficients(real *coef, const real *delta_j, const real *alloc, int g, int d);

#endif
