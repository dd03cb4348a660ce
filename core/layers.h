/*
 * layers.h: the Transformer's building blocks, each a forward/backward pair.
 *
 * Conventions (as in llm.c): outputs first, then inputs, then sizes. Every
 * buffer is passed in; nothing is allocated. Every backward function
 * ACCUMULATES (+=) into the gradients it produces, so a weight used several
 * times (the shared loop core) collects the sum of all its uses, and a tensor
 * that feeds two consumers (a residual stream) collects both gradients.
 * Row-major throughout; M is a number of rows (batch x positions).
 *
 * Every function runs on the thread pool of parallel.h. Work is split so
 * that each output element is computed in the same order whatever the
 * number of threads: results do not depend on it.
 */
#ifndef SPIRAL_LAYERS_H
#define SPIRAL_LAYERS_H

#include <stddef.h>

#include "real.h"

/* x[r] = table[tokens[r]]:  tokens (M), table (V, d), x (M, d). */
void embedding_forward(real *x, const int *tokens, const real *table, int M, int d);
/* dtable[tokens[r]] += dx[r]. */
void embedding_backward(real *dtable, const real *dx, const int *tokens, int M, int d);

/* y = x W^T:  x (M, in), W (out, in), y (M, out). Overwrites y. */
void linear_forward(real *y, const real *x, const real *w, int M, int in, int out);
/* y[i] = x W[i]^T for count products of one input (count <= 4), issued
 * together on the pool (one synchronization instead of count). */
void linear_forward_shared(real *const *y, const real *x, const real *const *w, int count,
                           int M, int in, int out);
/* dx += dy W;  dW += dy^T x. Either of dx, dw may be NULL to skip it. */
void linear_backward(real *dx, real *dw, const real *dy, const real *x, const real *w,
                     int M, int in, int out);

/* y = x / sqrt(mean(x^2) + eps) * gain, per row:  x, y (M, d), gain (d),
 * rstd (M) saves 1 / sqrt(mean(x^2) + eps) for the backward pass. */
void rmsnorm_forward(real *y, real *rstd, const real *x, const real *gain, int M, int d,
                     double eps);
/* With r = rstd: dx_k += r g_k dy_k - (r^3 / d) x_k sum_m dy_m g_m x_m;
 * dgain_k += sum_rows dy_k x_k r. */
void rmsnorm_backward(real *dx, real *dgain, const real *dy, const real *x, const real *gain,
                      const real *rstd, int M, int d);

/* Rotary position embedding, half-split form, in place on x (B, n, H*dh):
 * for each head, x1 = first dh/2 dims, x2 = last dh/2, angle a = p * base^(-2m/dh)
 * with p = pos[i]:  out = [x1 cos a - x2 sin a, x1 sin a + x2 cos a]. */
void rope_forward(real *x, const int *pos, int B, int n, int H, int dh, double base);
/* The rotation is orthogonal, so its backward is the inverse rotation (angle
 * -a) applied in place to the gradient. */
void rope_backward(real *dx, const int *pos, int B, int n, int H, int dh, double base);

/* Causal multi-head attention on q, k, v (B, n, H*dh), head h = columns
 * [h*dh, (h+1)*dh):  P = softmax(q k^T / sqrt(dh)) with keys j > query i
 * masked (P_ij = 0 exactly), y = P v. probs (B, H, n, n) is saved; y (B, n, H*dh). */
void attention_forward(real *y, real *probs, const real *q, const real *k, const real *v,
                       int B, int n, int H, int dh);
/* dP = dy v^T;  dS = P * (dP - rowsum(P * dP)) / sqrt(dh);
 * dq += dS k;  dk += dS^T q;  dv += P^T dy. scratch holds
 * attention_scratch_size(n) reals. */
void attention_backward(real *dq, real *dk, real *dv, real *scratch, const real *dy,
                        const real *probs, const real *q, const real *k, const real *v,
                        int B, int n, int H, int dh);
/* Reals of scratch attention_backward needs at length n: one block of
 * query rows by n keys per thread of the pool. */
size_t attention_scratch_size(int n);

/* Query rows per block: attention multiplies each block of query rows only
 * by the keys at or before its last row (the causal half plus the diagonal
 * blocks). */
#define ATTENTION_BLOCK 64

/* SwiGLU gate: m = silu(a) * c elementwise, silu(a) = a / (1 + exp(-a)). */
void swiglu_forward(real *m, const real *a, const real *c, size_t count);
/* da += dm * c * silu'(a), silu'(a) = s (1 + a (1 - s)) with s = sigmoid(a);
 * dc += dm * silu(a). */
void swiglu_backward(real *da, real *dc, const real *dm, const real *a, const real *c,
                     size_t count);

/* Mean cross-entropy over the rows whose target is >= 0:
 * loss = -(1/N) sum_r log softmax(logits_r)[targets_r], N = number of such
 * rows. logits (M, V). Returns the loss (0 if N == 0); *count gets N. */
double crossentropy_forward(const real *logits, const int *targets, int M, int V, int *count);
/* dlogits_r += scale * (softmax(logits_r) - onehot(targets_r)) for rows with a
 * target; with scale = dloss / N this is the gradient of dloss * loss. */
void crossentropy_backward(real *dlogits, const real *logits, const int *targets, int M, int V,
                           real scale);

#endif
