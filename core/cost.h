/*
 * cost.h: analytic parameter and FLOP counts of a configuration.
 *
 * Forward FLOPs per sequence of L tokens, counted as:
 *   matmul (m x k) (k x n): 2 m n k
 *   attention at length n: q k^T and P v over the n (n + 1) / 2 causal pairs,
 *     2 * 2 * dh per pair and head = 2 n (n + 1) d
 *   down-scaling: mean L d; selfagg 4 L d (scores and weighted sum)
 *   up-scaling: copy L d; alloc 2 J g d + 2 L d
 *   mesh memory (every iteration, S slots): 8 L S d = the two routers'
 *     products (L, d) x (d, S), 4 L S d; the write m_b += w_b e, 2 L S d;
 *     the read sum_b c_b m_b, 2 L S d
 * Norms, RoPE, softmax and SwiGLU's elementwise work are not counted (they
 * are O(L d) against the O(L d^2) matmuls). Training FLOPs = 3 x forward.
 */
#ifndef SPIRAL_COST_H
#define SPIRAL_COST_H

#include "config.h"

#define COST_MAX_BLOCKS (SPIRAL_MAX_ITERS + 8)

typedef struct {
    char name[64];     /* "embedding", "prelude", "core (shared)", "iter 0 (g=8, J=32)", ... */
    double params;     /* parameters owned by the block */
    double flops;      /* forward FLOPs per sequence spent in the block */
} CostBlock;

typedef struct {
    int L;
    int n_blocks;
    CostBlock blocks[COST_MAX_BLOCKS];
    double params;               /* total */
    double params_nonembedding;  /* total minus tok_emb (and lm_head if untied) */
    double forward_flops;        /* per sequence of L tokens */
    double train_flops;          /* 3 x forward */
} ModelCost;

/* Fills cost for cfg (valid) at sequence length L >= 1. */
void model_cost(ModelCost *cost, const SpiralConfig *cfg, int L);

/* Forward FLOPs of one Transformer layer at length n. */
double layer_forward_flops(const SpiralConfig *cfg, int n);

#endif
