/*
 * intervene.h: interventions on the updates e(t) of a model's iterations
 * (`spiral eval` and `spiral lens`: --ablate, --ablate-level, --patch),
 * applied through the model's UpdateHook (model.h) before each state
 * update:
 *   ablate zero   e(t) = 0 for the chosen iterations: the state passes the
 *                 iteration unchanged (residual) or falls back to h(0)
 *                 (anchor);
 *   ablate mean   e(t)_i = the mean of e(t) over every position of every
 *                 sequence of the data (one vector per iteration), measured
 *                 in a first pass over the same data without intervention;
 *   patch         e(t)_i for positions a <= i < b taken from a run of the
 *                 same model on another sequence of the same length (the
 *                 source), measured in a first pass on it.
 * The chosen iterations are one iteration t, or every iteration with chunk
 * size G (a level). A hook that changes nothing changes no logit (model.h),
 * so patching a sequence with itself gives the same logits bit for bit.
 */
#ifndef SPIRAL_INTERVENE_H
#define SPIRAL_INTERVENE_H

#include "model.h"

enum { INTERVENE_NONE = 0, INTERVENE_ZERO, INTERVENE_MEAN, INTERVENE_PATCH };

/* What to do (as the command line says it). */
typedef struct {
    int kind;                 /* INTERVENE_* */
    int iteration;            /* the iteration t, or -1 with level */
    int level;                /* > 0: every iteration with this chunk size */
    int pos_from, pos_to;     /* patch: positions [pos_from, pos_to); pos_to 0 = to the end */
} InterventionSpec;

/* An intervention prepared for one model: the chosen iterations, the means
 * or the source's updates, and the hook to install in model->update_hook. */
typedef struct {
    InterventionSpec spec;
    int n_iters, d, L;
    unsigned char chosen[SPIRAL_MAX_ITERS];
    int first_chosen;
    int phase;                /* 0: measure (first pass), 1: apply */
    double *sum;              /* (T, d) mean: sums of e over positions */
    long long count;          /* rows summed per iteration */
    real *source;             /* (T, L, d) patch: the source's e(t) */
    UpdateHook hook;
} Intervention;

/* Checks spec against cfg and chooses the iterations: an iteration outside
 * 0 .. T-1, a level no iteration has, or a patch range outside the sequence
 * (length L) is an error naming the option (--ablate, --ablate-level,
 * --positions). Returns 0 or -1; on 0, intervention_free releases it. */
int intervention_init(Intervention *iv, const InterventionSpec *spec, const SpiralConfig *cfg,
                      int L);
void intervention_free(Intervention *iv);

/* The hook for the first pass: measures (mean: sums; patch: the source's
 * updates, with B = 1) and changes nothing. NULL for zero ablation, which
 * needs no first pass. */
const UpdateHook *intervention_measure_hook(Intervention *iv);

/* Ends the first pass (means from sums) and returns the hook that applies
 * the intervention. */
const UpdateHook *intervention_apply_hook(Intervention *iv);

/* A short description: "ablate 2 zero", "ablate-level 4 mean",
 * "patch 1 positions 3:9", or "none". */
void intervention_describe(char *out, size_t size, const InterventionSpec *spec);

#endif
