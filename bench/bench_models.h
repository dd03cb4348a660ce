/*
 * bench_models.h: the models the CPU benchmarks share (bench_train,
 * bench_generate, bench_busy): three kinds at d = 256, H = 4, F = 688,
 * V = 256, one prelude and one coda layer, selfagg down-scaling, alloc
 * up-scaling, residual topology:
 *   dense   8 layers between prelude and coda;
 *   looped  2 core layers applied 4 times at full resolution (g = 1);
 *   spiral  2 core layers applied at g = 8, 4, 2, 1 (shift g - 1).
 */
#ifndef SPIRAL_BENCH_MODELS_H
#define SPIRAL_BENCH_MODELS_H

#include "config.h"
#include "error.h"
#include "steps.h"

/* The kinds are core/steps.h's ModelKind, 0 .. N_KINDS - 1. */
enum { N_KINDS = 3 };

/* The benchmark configuration of one kind; -1 (spiral_error) if it does not
 * validate or is not classified as that kind. */
static inline int kind_config(SpiralConfig *cfg, ModelKind kind) {
    static const int spiral_g[4] = {8, 4, 2, 1};
    config_default(cfg);
    cfg->vocab_size = 256;
    cfg->d_model = 256;
    cfg->n_heads = 4;
    cfg->d_ff = 688;   /* 8/3 d rounded to a multiple of 4 */
    cfg->n_pre = 1;
    cfg->n_post = 1;
    cfg->down = DOWN_SELFAGG;
    cfg->up = UP_ALLOC;
    cfg->topology = TOPOLOGY_RESIDUAL;
    cfg->n_loop = kind == KIND_DENSE ? 8 : 2;
    cfg->n_iters = kind == KIND_DENSE ? 1 : 4;
    for (int t = 0; t < cfg->n_iters; t++) {
        int g = kind == KIND_SPIRAL ? spiral_g[t] : 1;
        cfg->schedule[t] = (IterSpec){g, 0, g - 1};
    }
    if (config_validate(cfg)) return -1;
    if (model_kind(cfg) != kind)
        return spiral_error("config for %s is classified as %s", model_kind_name(kind),
                            model_kind_name(model_kind(cfg)));
    return 0;
}

#endif
