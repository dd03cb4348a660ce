/*
 * matching.h: the baselines a SpiralFormer configuration is compared with
 * (docs/model.md, "Hence:"; paper.md, "Experiments").
 *
 * Given a spiral configuration S and a sequence length L, with parameter and
 * FLOP counts from core/cost.h (model_cost: P = non-embedding parameters,
 * F = forward FLOPs per sequence of L tokens):
 *
 *   looped        S with every schedule entry g = 1, offset 0, shift 0: the
 *                 same core run T times at full resolution. Not matched by
 *                 a search; its parameters equal S's except for the
 *                 per-iteration tensors, since iter.t.up.alloc has shape
 *                 (g_t, d): with up = alloc the looped model has
 *                 d * sum_t (g_t - 1) fewer parameters (its (1, d) alloc
 *                 tensors are inert: a softmax over one slot is 1). The
 *                 difference is reported, not hidden. Its FLOPs are larger
 *                 (every iteration at length L).
 *   dense_params  schedule [1] (T = 1, g = 1, offset 0, shift 0), same
 *                 prelude and coda, n_loop = N chosen to minimize
 *                 |P(N) - P(S)|.
 *   dense_flops   schedule [1], n_loop = N chosen to minimize
 *                 |F(N, L) - F(S, L)|.
 * P and F of the dense model are affine in N, with slopes one layer's
 * parameters (2 d + 4 d^2 + 3 d F) and one layer's forward FLOPs at length L
 * (layer_forward_flops); the closest N leaves a relative mismatch of at most
 * (slope / 2) / target unless N is clamped at its minimum 1. Ties go to the
 * smaller N.
 *
 * Mismatch of a baseline B against S: (P(B) - P(S)) / P(S) and
 * (F(B) - F(S)) / F(S), both reported for every baseline.
 */
#ifndef SPIRAL_MATCHING_H
#define SPIRAL_MATCHING_H

#include <stddef.h>

#include "config.h"

/* One derived baseline and how far it is from the spiral's counts. */
typedef struct {
    SpiralConfig cfg;            /* the derived configuration (valid) */
    double params;               /* total parameters */
    double params_nonembedding;  /* P */
    double forward_flops;        /* F at L */
    double params_mismatch;      /* (P - P_spiral) / P_spiral */
    double flops_mismatch;       /* (F - F_spiral) / F_spiral */
    double step;                 /* the matched quantity's change per core layer
                                    (params or FLOPs); 0 for the looped baseline */
    int clamped;                 /* 1 if n_loop stopped at 1 although the target
                                    is smaller: the mismatch may exceed step / 2 */
    char rule[256];              /* one line saying how cfg was derived */
} MatchedBaseline;

/* The spiral's counts (the targets) and its three baselines. */
typedef struct {
    int L;
    SpiralConfig spiral;
    double params;               /* spiral's total parameters */
    double params_nonembedding;  /* spiral's P, the equal-parameter target */
    double forward_flops;        /* spiral's F at L, the equal-FLOP target */
    double looped_param_difference; /* spiral params - looped params (per-iteration tensors) */
    MatchedBaseline looped;
    MatchedBaseline dense_params;
    MatchedBaseline dense_flops;
} MatchedBaselines;

/* Derives the three baselines of a valid spiral config at length L >= 1.
 * Returns 0, or -1 (spiral_error) if spiral is invalid or a derived config
 * would be (e.g. n_loop beyond int range). */
int matching_derive(MatchedBaselines *out, const SpiralConfig *spiral, int L);

/* Writes a human-readable derivation (a table of counts and mismatches,
 * then each rule) into text (size bytes, NUL-terminated). Returns 0, or -1
 * (spiral_error) if it does not fit. */
int matching_format(char *text, size_t size, const MatchedBaselines *m);

#endif
