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
 *   at_tokens, at_flops           the run's validation loss read at a budget
 *                                 of tokens and of training FLOPs (below)
 *
 * Reading a budget. A validation curve read before the end of its run's
 * schedule (before the learning rate has decayed) favours nothing but the
 * budget's position in the schedule: a run trained longer is caught at a
 * high learning rate and looks worse than the same model trained to that
 * budget. So a run is read at its END: its last evaluation, at the last
 * step of train.steps (the trainer always evaluates there). With no fixed
 * budget (NaN, the default) each run is read at its own end, and the
 * comparison pairs runs whose ends agree (the sets below). With a fixed
 * budget B (--at-tokens, --at-flops), a finished run whose end lies within
 * budget_tolerance of B is read at its end (COMPARE_READ_END); a run that
 * ends before B never reached it (COMPARE_READ_NOT_REACHED: never
 * extrapolated); a run that passes B mid-schedule, or that has not finished
 * its schedule, is refused (COMPARE_READ_REFUSED) unless `interpolate` is
 * set, in which case its curve is interpolated linearly at B (or, for an
 * unfinished run without a budget, its last evaluation is taken) and the
 * reading is labelled COMPARE_READ_MID_SCHEDULE. The equal-FLOPs baseline
 * that `spiral match` writes ends at the spiral's FLOPs, so it is the run
 * read there.
 *
 * Seeds: with group_by_config, runs whose run files are equal except for
 * train.seed (and train.checkpoint_dir, which holds the run's name) form a
 * group, in order of first appearance; each group reports the mean and the
 * t interval (stats_mean_ci_t, level 0.95) over its runs of val_loss and of
 * the two readings (over the runs that have the value), and where the
 * readings were taken (the mean of its runs' tokens / FLOPs there).
 * Perplexity intervals are exp of the loss intervals (exp(mean loss) is the
 * geometric mean of the runs' perplexities). A group of one run has a zero
 * width interval, marked "(1 seed)".
 *
 * Sets. Groups with a reading are sorted by where it was taken and cut into
 * sets whose tokens (FLOPs) lie within budget_tolerance (default 5%) of the
 * set's smallest: the groups of one set are compared at equal tokens (equal
 * FLOPs). Equal parameters likewise: groups sorted by non-embedding
 * parameters and cut into sets within `param_tolerance` (default 5%); within
 * an equal-parameter set, groups are shown at equal tokens and at equal
 * FLOPs (e.g. a spiral with its looped baseline at equal tokens, and with
 * the looped baseline trained to its FLOPs).
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
    double budget_tolerance;   /* 0.05: a run's end matches a budget, and sets of budgets */
    double at_tokens, at_flops;  /* fixed budgets; NaN (default): each run's own end */
    int interpolate;           /* 1: read mid-schedule (labelled) instead of refusing */
} CompareOptions;

/* How a run's curve was read at a budget. */
typedef enum {
    COMPARE_READ_NONE = 0,     /* no evaluation at all */
    COMPARE_READ_END,          /* the last evaluation of a finished schedule */
    COMPARE_READ_MID_SCHEDULE, /* interpolated before the end, or an unfinished run (interpolate) */
    COMPARE_READ_REFUSED,      /* the budget lies mid-schedule; not read */
    COMPARE_READ_NOT_REACHED,  /* the run ended before the budget */
    COMPARE_READ_MIXED         /* a group whose runs were read in different ways */
} CompareReadKind;

/* Short words for a reading kind: "end", "mid-schedule", "refused", ... */
const char *compare_read_name(CompareReadKind kind);

/* One reading of a validation curve at a budget. */
typedef struct {
    double loss;               /* NaN unless END or MID_SCHEDULE */
    double at;                 /* tokens or FLOPs where it was read (NaN if not read) */
    CompareReadKind how;
} CompareReading;

/* Reads a curve (x (n) increasing, loss (n)) at budget (NaN: its end).
 * finished: the last point is the end of the run's schedule. */
CompareReading compare_read_curve(const double *x, const double *loss, int n, int finished, double budget,
                                  double tolerance, int interpolate);

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
    int finished;              /* the last evaluation is at train.steps */
    CompareReading at_tokens, at_flops;
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
    double read_tokens, read_flops;  /* mean over its runs of where the readings were taken */
    CompareReadKind how_tokens, how_flops;
    int param_set;             /* equal-parameter set */
    int token_set, flop_set;   /* equal-token / equal-FLOPs set; -1 without a reading */
} CompareGroup;

typedef struct {
    int n_runs;
    CompareRun *runs;
    int n_groups;
    CompareGroup *groups;
    double at_tokens, at_flops;  /* the fixed budgets; NaN: each run at its own end */
    int interpolate;
    int n_param_sets, n_token_sets, n_flop_sets;
    double level, param_tolerance, budget_tolerance;
} Comparison;

/* Reads and compares the runs names (n >= 1). Returns 0 or -1 (a missing
 * run, a bad config); *out is then empty. */
int compare_runs(Comparison *out, Store *store, const char *const *names, int n,
                 const CompareOptions *options);
void compare_free(Comparison *comparison);

/* The tables: runs, groups with intervals, equal-token, equal-FLOPs and
 * equal-parameter sets, and a line saying how the budgets were read. */
void compare_print(FILE *out, const Comparison *comparison);

/* A CSV file with one row per run (level "run") and per group (level
 * "group"); see the header line for the columns. Returns 0 or -1. */
int compare_write_csv(const char *path, const Comparison *comparison);

#endif
