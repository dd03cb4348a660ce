/*
 * cost.c: analytic parameter and FLOP accounting (equations in cost.h).
 */
#include "cost.h"

#include <stdio.h>
#include <string.h>

#include "scale.h"

double layer_forward_flops(const SpiralConfig *cfg, int n) {
    double d = cfg->d_model, f = cfg->d_ff, len = n;
    double projections = 4 * 2 * len * d * d;   /* wq, wk, wv, wo */
    double attention = 2 * len * (len + 1) * d;  /* q k^T and P v, causal pairs */
    double mlp = 3 * 2 * len * d * f;            /* w1, w3, w2 */
    return projections + attention + mlp;
}

/* Parameters of one layer: two gains, four (d, d), three (F, d). */
static double layer_params(const SpiralConfig *cfg) {
    double d = cfg->d_model, f = cfg->d_ff;
    return 2 * d + 4 * d * d + 3 * d * f;
}

static CostBlock *add_block(ModelCost *cost, const char *name, double params, double flops) {
    CostBlock *block = &cost->blocks[cost->n_blocks++];
    snprintf(block->name, sizeof block->name, "%s", name);
    block->params = params;
    block->flops = flops;
    cost->params += params;
    cost->forward_flops += flops;
    return block;
}

void model_cost(ModelCost *cost, const SpiralConfig *cfg, int L) {
    double d = cfg->d_model, V = cfg->vocab_size, len = L;
    char name[64];
    memset(cost, 0, sizeof *cost);
    cost->L = L;
    add_block(cost, "embedding", V * d, 0);
    add_block(cost, "prelude", cfg->n_pre * layer_params(cfg),
              cfg->n_pre * layer_forward_flops(cfg, L));
    add_block(cost, "core (shared)", cfg->n_loop * layer_params(cfg), 0);
    for (int t = 0; t < cfg->n_iters; t++) {
        const IterSpec *spec = &cfg->schedule[t];
        ChunkGeometry geo = chunk_geometry(L, spec);
        double J = geo.J, g = spec->g;
        int full = spec->g == 1 && spec->shift == 0;
        double params = (cfg->down == DOWN_SELFAGG ? d : 0) + (cfg->up == UP_ALLOC ? g * d : 0);
        double flops = cfg->n_loop * layer_forward_flops(cfg, geo.J);
        if (!full) {
            flops += cfg->down == DOWN_SELFAGG ? 4 * len * d : len * d;
            flops += cfg->up == UP_ALLOC ? 2 * J * g * d + 2 * len * d : len * d;
        }
        if (cfg->topology == TOPOLOGY_MESH) {
            double S = cfg->mesh_slots;
            params += 2 * S * d + 2 * S;  /* write and read routers with biases */
            flops += 8 * len * S * d;     /* routers 4 L S d, write 2 L S d, read 2 L S d */
        }
        snprintf(name, sizeof name, "iter %d (g=%d, J=%d)", t, spec->g, geo.J);
        add_block(cost, name, params, flops);
    }
    add_block(cost, "coda", cfg->n_post * layer_params(cfg),
              cfg->n_post * layer_forward_flops(cfg, L));
    add_block(cost, "head", d + (cfg->tie_embeddings ? 0 : V * d), 2 * len * d * V);
    cost->params_nonembedding = cost->params - V * d - (cfg->tie_embeddings ? 0 : V * d);
    cost->train_flops = 3 * cost->forward_flops;
}
