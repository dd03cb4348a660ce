/*
 * eval_run.h: a run's validation loss measured again from its last (or
 * any) checkpoint on the windows its training validated on (`spiral eval
 * --run`), read against the entropy floor and n-gram baselines over the
 * same targets (data/eval_targets.h), and broken down by position:
 *
 *   by slot:     for each compressing level (iteration t with g > 1, offset
 *                w), the loss of the prediction made at input position i
 *                grouped by its slot rho = (i + w) mod g in the level's
 *                chunk (the prediction of token i + 1);
 *   by position: the loss of target j (window position j + 1), which is
 *                document position j + 1 when windows start at documents.
 *
 * Each group carries its floor (mean true_nll of the same targets), so a
 * slot's gap to the floor is a number too.
 */
#ifndef SPIRAL_EVAL_RUN_H
#define SPIRAL_EVAL_RUN_H

#include <stdio.h>

#include "config.h"
#include "eval_targets.h"
#include "store.h"

/* Loss and floor summed over a group of targets. */
typedef struct {
    double loss_sum, floor_sum;
    long long count;
} EvalGroup;

/* One compressing level of the schedule and its slots. */
typedef struct {
    int iteration;       /* first iteration with this (g, w) */
    int g, offset;
    EvalGroup *slots;    /* (g) */
} EvalLevel;

typedef struct {
    long long checkpoint_step;
    double loss;                /* mean cross-entropy over the targets (nats) */
    double stored_val_loss;     /* the run's last stored validation loss, NaN if none */
    long long stored_val_step;
    EvalReference ref;          /* floor and n-gram baselines on the same targets */
    int L;
    EvalGroup *positions;       /* (L) per target position j */
    int n_levels;
    EvalLevel levels[SPIRAL_MAX_ITERS];
} EvalRunResult;

/* The reference losses (floor, n-gram baselines) over the validation
 * targets of a run's config (its train object: dataset, seq_len, window,
 * eval_batches x batch_size windows). Returns 0 or -1. */
int eval_run_reference(EvalReference *out, Store *store, const char *run_config_json,
                       const char *source);

/* 1 if two run configs validate on the same targets (dataset, seq_len,
 * window and eval_batches x batch_size agree), so one reference serves
 * both; 0 otherwise or if either does not parse. */
int eval_run_same_targets(const char *config_a, const char *config_b);

/* Evaluates run `run_name`'s checkpoint at or before max_step (the last
 * when max_step < 0) on its validation windows. Returns 0, or -1 (unknown
 * run, no such checkpoint, dataset gone). */
int eval_run(EvalRunResult *result, Store *store, const char *run_name, long long max_step);
void eval_run_result_free(EvalRunResult *result);

/* Prints the loss, the floor, the gap and the n-gram baselines; with
 * per_position also the tables by slot of each level and by position. */
void eval_run_print(FILE *out, const EvalRunResult *result, const char *run_name,
                    int per_position);

#endif
