/*
 * adamw.h: AdamW with decoupled weight decay (Loshchilov & Hutter), over the
 * model's contiguous parameter buffer.
 */
#ifndef SPIRAL_ADAMW_H
#define SPIRAL_ADAMW_H

#include "params.h"
#include "real.h"

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
} AdamWSettings;

/* One update at step t (1-based), for every tensor of the layout:
 *   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
 *   p = p - lr wd p          (only tensors with decay = 1: matrices, not gains)
 *   p = p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * params, grads, m, v are (n_params). */
void adamw_step(real *params, const real *grads, real *m, real *v, const ParamLayout *layout,
                const AdamWSettings *settings, long t);

/* sqrt(sum g^2) over the buffer, accumulated in double. */
double grad_global_norm(const real *grads, size_t n);

#endif
