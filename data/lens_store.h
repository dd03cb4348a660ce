/*
 * lens_store.h: the lens_results table (store schema v5): what the logit
 * lens, test-time depth and interventions measured on a run.
 *
 * One row per (run, dataset, split, checkpoint step, schedule,
 * intervention, mode, iteration, slot). `schedule` is the chunk sizes the
 * model ran with ("8,4,2,1"); `intervention` is "none" or what was done to
 * the updates (e.g. "ablate 2 zero"); `mode` says what a row measures:
 *   coda   exit after iteration `iteration` (t = 0 .. T): loss and top-1
 *          accuracy of head(norm(f_post(h(t)))); delta = loss - loss at T
 *   head   the same without the coda: head(norm(h(t)))
 *   slot   at iteration `iteration`'s chunk size g, slot `slot`: delta = the
 *          coda-exit loss after the iteration minus before it, over the
 *          positions at that slot (negative: the iteration helped there)
 *   depth  the whole model run with `iteration` iterations (the schedule
 *          column holds that schedule); delta = loss - the trained loss
 *   ablate the update of iteration `iteration` ablated; delta = loss - the
 *          loss without the ablation
 * Intervals are 95% over sequences (delta: paired, over sequences too).
 */
#ifndef SPIRAL_LENS_STORE_H
#define SPIRAL_LENS_STORE_H

#include "store.h"

typedef struct {
    char mode[24];
    int iteration;            /* t, or the number of iterations (depth) */
    int slot;                 /* -1 unless mode slot */
    int g;                    /* chunk size of the iteration (1 for exits at t = 0) */
    char schedule[160];       /* the schedule of the row ("" = the key's) */
    int n_sequences;
    long long n_tokens;       /* predictions scored */
    double loss, loss_lo, loss_hi;        /* mean cross-entropy, nats */
    double accuracy, acc_lo, acc_hi;      /* top-1 */
    double delta, delta_lo, delta_hi;     /* see the modes above; NAN if none */
} LensRow;

typedef struct {
    long long run_id, dataset_id, checkpoint_step;
    const char *split;
    const char *schedule;     /* "8,4,2,1" */
    const char *intervention; /* "none", ... */
} LensKey;

/* Replaces the key's rows of the modes present in rows (n) by rows, in one
 * transaction. Returns 0 or -1. */
int lens_store_write(Store *store, const LensKey *key, const LensRow *rows, int n);

/* The rows of run `run_name` for mode, measured with no intervention and
 * the run's trained schedule (`schedule`; any when NULL) at its latest
 * checkpoint step that has such rows, ordered by iteration then slot.
 * *rows is malloc'd (NULL when none, *n = 0); *step gets the step.
 * Returns 0 or -1. */
int lens_store_read(Store *store, const char *run_name, const char *mode, const char *schedule,
                    LensRow **rows, int *n, long long *step);

#endif
