/*
 * eval_targets.h: the windows a validation loss is measured on, and the
 * reference losses (entropy floor, n-gram baselines) over exactly those
 * targets.
 *
 * Training's validation (core/train.c), `spiral eval --run`, `spiral data
 * floor` and the report all take their windows from here, so a validation
 * loss, its floor and its baselines share one denominator. The rule:
 *
 *   the split's stream: its documents back to back (dataset_split_stream);
 *   n windows of L + 1 tokens, window k = 0 .. n-1 starting at
 *     window "document": starts[floor(k * n_starts / n)], the k-th of n
 *                        evenly spread document starts (documents repeat
 *                        when n > n_starts);
 *     window "random":   floor((k / n) * (stream length - L)), evenly
 *                        spread offsets;
 *   window k's targets are its tokens 1 .. L (input j predicts token j + 1).
 *
 * The floor over them is the mean of true_nll over the n * L targets,
 * counted with multiplicity, which is what the mean cross-entropy of a
 * model over the same windows estimates. Where a window starts at a
 * document start every target has its whole document prefix in view, so
 * this floor is attainable; a window that starts inside a document (random
 * windows) hides part of the prefix from the model, and the floor there is
 * a lower bound that a model reading only the window may not reach.
 */
#ifndef SPIRAL_EVAL_TARGETS_H
#define SPIRAL_EVAL_TARGETS_H

#include <stddef.h>

#include "dataset.h"

/* Where windows start: anywhere in the stream, or at document starts. */
enum { WINDOW_RANDOM = 0, WINDOW_DOCUMENT = 1 };

/* The stream of `split` for windows of L + 1 tokens (inputs and targets).
 * Fails, naming the dataset and split, when the split is shorter than a
 * window or, for window "document", no document starts a whole window. */
int eval_split_stream(SplitStream *stream, const Dataset *ds, int split, int L, int window,
                      const char *dataset_name);

/* The stream offset at which window k of n starts (the rule above). */
size_t eval_window_start(const SplitStream *stream, int window, int L, size_t k, size_t n);

/* The n windows of one split with their targets. */
typedef struct {
    SplitStream stream;
    int L;               /* targets per window */
    int window;          /* WINDOW_* */
    size_t n_windows;
    size_t *starts;      /* (n_windows) stream offsets of the windows */
} EvalTargets;

/* Builds the n_windows windows of L + 1 tokens of `split` that validation
 * scores. Returns 0 or -1 (see eval_split_stream; n_windows < 1). */
int eval_targets_build(EvalTargets *targets, const Dataset *ds, int split, int L, int window,
                       size_t n_windows, const char *dataset_name);
void eval_targets_free(EvalTargets *targets);

/* The dataset index of target j (0 .. L-1) of window k. */
size_t eval_target_index(const EvalTargets *targets, size_t k, int j);

/* Mean true_nll over every target of the windows (with multiplicity), the
 * entropy floor of this validation loss. NaN if the dataset has no
 * true_nll or a target lacks one; *count (may be NULL) gets the targets
 * counted. */
double eval_targets_floor(const EvalTargets *targets, const Dataset *ds, size_t *count);

/* The reference losses a validation loss is read against, all over the
 * same targets. */
typedef struct {
    double floor;        /* eval_targets_floor, NaN where unknown */
    double unigram, bigram, trigram;  /* ngram_window_loss, add-0.01, fitted on train */
    size_t n_targets;
    size_t n_windows;
    int L, window;
} EvalReference;

/* Builds the windows validation uses on `split` for (L, window, n_windows)
 * and measures the floor and the n-gram baselines (fitted on the train
 * split) over them. Returns 0 or -1. */
int eval_reference(EvalReference *out, const Dataset *ds, int split, int L, int window,
                   size_t n_windows, const char *dataset_name);

/* "document" or "random". */
const char *eval_window_name(int window);

#endif
