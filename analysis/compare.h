/*
 * compare.h: fair comparisons of trained runs (DESIGN.md section 4,
 * "Comparisons"): parameters, analytic FLOPs, tokens, and validation loss at
 * equal tokens, at equal FLOPs and at equal parameters, over several seeds.
 *
 * Per run (from the store's runs and metrics tables):
 *   params, params_nonembedding   model_cost at the run's train.seq_len
 *   step, tokens, train_flops     of the last metrics row (FLOPs are the
 *                                 analytic count the trainer accumulates)
 *   val_loss                      at the last evaluation; perplexity = exp
 *   loss_at_tokens                the validation curve (tokens at each
 *                                 evaluation, val_loss) linearly interpolated
 *                                 (stats_interpolate) at equal_tokens
 *   loss_at_flops                 the same on the FLOPs axis at equal_flops
 * equal_tokens = the smallest, over the runs, of the tokens seen at each
 * run's last evaluation (so every run has been evaluated that far);
 * equal_flops likewise on training FLOPs. A run whose first evaluation lies
 * beyond the budget has no interpolated value there (NaN, printed "-"):
 * interpolation never extrapolates. Evaluate more often (train.eval_every)
 * to get one.
 *
 * Seeds: with group_by_config, runs whose run files are equal except for
 * train.seed (and train.checkpoint_dir, which holds the run's name) form a
 * group, in order of first appearance; each group reports the mean and the
 * t interval (stats_mean_ci_t, level 0.95) over its runs of val_loss,
 * loss_at_tokens and loss_at_flops (over the runs that have the value).
 * Perplexity intervals are exp of the loss intervals (exp(mean loss) is the
 * geometric mean of the runs' perplexities). A group of one run has a zero
 * width interval, marked "(1 seed)".
 *
 * Equal parameters: groups are sorted by non-embedding parameters and cut
 * into sets whose counts lie within `param_tolerance` (default 5%) of the
 * set's smallest; the groups of one set are compared at equal parameters
 * (e.g. a spiral, its looped baseline, and the dense baseline matched by
 * analysis/matching.h).
 */
#ifndef SPIRAL_COMPARE_H
#define SPIRAL_COMPARE_H

#include <stdio.h>

#include "config.h"
#include "stats.h"
#include "store.h"
#include "train_config.h"

typedef struct {
    int group_by_config;       /* 1 (default): group runs that differ only in train.seed */
    double level;              /* 0.95 */
    double param_tolerance;    /* 0.05 */
} CompareOptions;

void compare_options_default(CompareOptions *options);

typedef struct {
    char name[128];
    char kind[16];
    long long id;
    SpiralConfig model;
    TrainConfig train;
    char *group_key;           /* run file JSON without seed and checkpoint_dir */
    double params, params_nonembedding;
    double forward_flops;      /* per sequence of train.seq_len tokens */
    long long step;            /* last metrics row; 0 if the run has none */
    double tokens, train_flops;
    double val_loss;           /* last evaluation, NaN if none */
    long long val_step;
    double loss_at_tokens, loss_at_flops;  /* NaN where not measurable */
    int n_evals;
    double *eval_tokens, *eval_flops, *eval_loss;  /* (n_evals) the validation curve */
    int group;                 /* index into Comparison.groups */
} CompareRun;

typedef struct {
    int n;                     /* runs in the group */
    int *members;              /* (n) indices into Comparison.runs */
    double params, params_nonembedding;
    MeanInterval val_loss, loss_at_tokens, loss_at_flops;  /* n = 0 if no run has the value */
    double tokens, train_flops;  /* mean over the group's runs */
    int param_set;             /* equal-parameter set */
} CompareGroup;

typedef struct {
    int n_runs;
    CompareRun *runs;
    int n_groups;
    CompareGroup *groups;
    double equal_tokens, equal_flops;  /* NaN if no run was evaluated */
    int n_param_sets;
    double level, param_tolerance;
} Comparison;

/* Reads and compares the runs names (n >= 1). Returns 0 or -1 (a missing
 * run, a bad config); *out is then empty. */
int compare_runs(Comparison *out, Store *store, const char *const *names, int n,
                 const CompareOptions *options);
void compare_free(Comparison *comparison);

/* The tables: runs, groups with intervals, equal-parameter sets. */
void compare_print(FILE *out, const Comparison *comparison);

/* A CSV file with one row per run (level "run") and per group (level
 * "group"); see the header line for the columns. Returns 0 or -1. */
int compare_write_csv(const char *path, const Comparison *comparison);

#endif
