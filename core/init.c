/*
 * init.c: the documented initialization of a fresh model (see model.h,
 * model_init_weights, and README "Initialization").
 *
 * Tensors are filled in layout order from one GSL mt19937 stream, so a seed
 * fixes every weight on every machine.
 */
#include <math.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "model.h"

/* 1 if name ends with suffix. */
static int ends_with(const char *name, const char *suffix) {
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && strcmp(name + n - k, suffix) == 0;
}

void model_init_weights(Model *model, unsigned long seed) {
    const SpiralConfig *cfg = &model->cfg;
    int applications = cfg->n_pre + cfg->n_iters * cfg->n_loop + cfg->n_post;
    double std = 0.02;
    double std_out = 0.02 / sqrt(2.0 * (applications > 0 ? applications : 1));
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    for (int i = 0; i < model->layout.n_tensors; i++) {
        const ParamTensor *t = &model->layout.tensors[i];
        real *values = model->params + t->offset;
        if (ends_with(t->name, "norm.weight")) {
            for (size_t k = 0; k < t->numel; k++) values[k] = 1; /* RMSNorm gains */
        } else if (ends_with(t->name, "down.score") || ends_with(t->name, "up.alloc") ||
                   strstr(t->name, ".mesh.")) {
            /* start as mean / copy / uniform mesh routers (= residual) */
            for (size_t k = 0; k < t->numel; k++) values[k] = 0;
        } else {
            double sigma = ends_with(t->name, "attn.wo.weight") || ends_with(t->name, "mlp.w2.weight")
                               ? std_out : std;
            for (size_t k = 0; k < t->numel; k++) values[k] = (real)gsl_ran_gaussian(rng, sigma);
        }
    }
    gsl_rng_free(rng);
}
