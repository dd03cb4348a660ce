/*
 * probe_fit.h: one probe: rows, split, training subsample, classes, the L2
 * path and the test metrics (the method is probe_run.h's).
 *
 * A fit reads only its inputs and writes only its result: no store, no
 * shared state, so any number of fits run at once, each on one thread.
 */
#ifndef SPIRAL_PROBE_FIT_H
#define SPIRAL_PROBE_FIT_H

#include "probe_features.h"
#include "probe_store.h"

/* The weakest L2 strength the grid extends to (probe_fit.c). */
#define PROBE_L2_FLOOR 1e-8

/* Where a sequence goes. */
enum { SEQ_TRAIN = 0, SEQ_VAL = 1, SEQ_TEST = 2 };

/* What every probe of a run shares, read only. */
typedef struct {
    int n_seq, L;
    const unsigned char *seq_split;   /* (n_seq) SEQ_* */
    unsigned long seed;
    int max_train;
    double tol;
    int max_iter;
} ProbeShared;

/* Fits the probe of per-position labels (n_seq, L) on features f, and
 * fills result's metrics: accuracy and its bootstrap interval, macro-F1,
 * majority, row counts, classes, features, l2, iterations, evaluations,
 * grad_norm, converged, and test_counts (malloc'd: the caller frees it)
 * with n_test_groups (not its key, seed or seconds). Returns 0, or -1
 * with spiral_error (too few labelled rows, a failed fit, out of memory). */
int probe_fit_one(const ProbeShared *shared, const Features *f, const int *labels,
                  ProbeResult *result);

#endif
