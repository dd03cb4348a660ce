/*
 * adamw.c: the AdamW update (equations in adamw.h).
 */
#include "adamw.h"

#include <math.h>

void adamw_step(real *params, const real *grads, real *m, real *v, const ParamLayout *layout,
                const AdamWSettings *s, long t) {
    double correction1 = 1 - pow(s->beta1, (double)t);
    double correction2 = 1 - pow(s->beta2, (double)t);
    real b1 = (real)s->beta1, b2 = (real)s->beta2;
    for (int ti = 0; ti < layout->n_tensors; ti++) {
        const ParamTensor *tensor = &layout->tensors[ti];
        real decay = tensor->decay ? (real)(1 - s->lr * s->weight_decay) : 1;
        size_t end = tensor->offset + tensor->numel;
        for (size_t i = tensor->offset; i < end; i++) {
            real g = grads[i];
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            double m_hat = m[i] / correction1, v_hat = v[i] / correction2;
            params[i] = (real)(params[i] * decay - s->lr * m_hat / (sqrt(v_hat) + s->eps));
        }
    }
}

double grad_global_norm(const real *grads, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)grads[i] * grads[i];
    return sqrt(sum);
}
