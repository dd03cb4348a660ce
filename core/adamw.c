/*
 * adamw.c: the AdamW update (equations in adamw.h), on the thread pool:
 * the parameter buffer is cut into chunks, each updated in the precision
 * of real with the bias corrections folded into two constants.
 */
#include "adamw.h"

#include <math.h>

#include "parallel.h"

/* Elements per chunk of the update. */
#define ADAMW_CHUNK 65536
/* Parts of the gradient norm: fixed, so the sum is the same for any thread
 * count. */
#define NORM_PARTS 64

typedef struct {
    real *params, *m, *v;
    const real *grads;
    const ParamLayout *layout;
    size_t n;
    real b1, b2, eps, step_size, inv_sqrt_correction2, decay;
} AdamWJob;

/* Updates parameters [begin, end) of chunk `part`, tensor by tensor:
 *   p = p decay - step_size m / (sqrt(v) / sqrt(1 - b2^t) + eps),
 * step_size = lr / (1 - b1^t), decay = 1 - lr wd for decayed tensors. */
static void adamw_task(void *ctx, int part, int thread) {
    const AdamWJob *j = ctx;
    size_t begin, end;
    parallel_split(j->n, parallel_threads(), ADAMW_CHUNK, part, &begin, &end);
    for (int ti = 0; ti < j->layout->n_tensors; ti++) {
        const ParamTensor *tensor = &j->layout->tensors[ti];
        size_t lo = tensor->offset, hi = tensor->offset + tensor->numel;
        if (hi <= begin || lo >= end) continue;
        if (lo < begin) lo = begin;
        if (hi > end) hi = end;
        real decay = tensor->decay ? j->decay : 1;
        real *p = j->params, *m = j->m, *v = j->v;
        const real *g = j->grads;
        for (size_t i = lo; i < hi; i++) {
            m[i] = j->b1 * m[i] + (1 - j->b1) * g[i];
            v[i] = j->b2 * v[i] + (1 - j->b2) * g[i] * g[i];
            real denom = sqrt(v[i]) * j->inv_sqrt_correction2 + j->eps;
            p[i] = p[i] * decay - j->step_size * m[i] / denom;
        }
    }
}

void adamw_step(real *params, const real *grads, real *m, real *v, const ParamLayout *layout,
                const AdamWSettings *s, long t) {
    double correction1 = 1 - pow(s->beta1, (double)t);
    double correction2 = 1 - pow(s->beta2, (double)t);
    AdamWJob job = {params, m, v, grads, layout, layout->n_params,
                    (real)s->beta1, (real)s->beta2, (real)s->eps,
                    (real)(s->lr / correction1), (real)(1 / sqrt(correction2)),
                    (real)(1 - s->lr * s->weight_decay)};
    parallel_for(parallel_parts(job.n, parallel_threads(), ADAMW_CHUNK), adamw_task, &job);
}

typedef struct {
    const real *grads;
    size_t n;
    double part_sum[NORM_PARTS];
} NormJob;

static void norm_task(void *ctx, int part, int thread) {
    NormJob *j = ctx;
    size_t begin, end;
    parallel_split(j->n, NORM_PARTS, 1, part, &begin, &end);
    double sum = 0;
    for (size_t i = begin; i < end; i++) sum += (double)j->grads[i] * j->grads[i];
    j->part_sum[part] = sum;
}

double grad_global_norm(const real *grads, size_t n) {
    NormJob job = {.grads = grads, .n = n};
    int parts = parallel_parts(n, NORM_PARTS, 1);
    parallel_for_work(parts, norm_task, &job, 2.0 * n);
    double sum = 0;
    for (int p = 0; p < parts; p++) sum += job.part_sum[p];
    return sqrt(sum);
}
