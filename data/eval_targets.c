/*
 * eval_targets.c: validation windows and the floor and baselines over their
 * targets (see eval_targets.h).
 */
#include "eval_targets.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ngram.h"

int eval_split_stream(SplitStream *s, const Dataset *ds, int split, int L, int window,
                      const char *dataset_name) {
    if (dataset_split_stream(s, ds, split, (size_t)L + 1, dataset_name)) return -1;
    if (window == WINDOW_DOCUMENT && s->n_starts == 0) {
        split_stream_free(s);
        return spiral_error("dataset %s: no document of the %s split starts a full window of "
                            "%d tokens", dataset_name, dataset_split_name(split), L + 1);
    }
    return 0;
}

size_t eval_window_start(const SplitStream *s, int window, int L, size_t k, size_t n) {
    if (window == WINDOW_DOCUMENT) return s->starts[(k * s->n_starts) / n];
    size_t span = s->n - (size_t)L; /* number of possible random starts */
    return (size_t)(((double)k / n) * (double)span);
}

int eval_targets_build(EvalTargets *t, const Dataset *ds, int split, int L, int window,
                       size_t n_windows, const char *dataset_name) {
    memset(t, 0, sizeof *t);
    if (L < 1 || n_windows < 1)
        return spiral_error("dataset %s: validation needs windows of at least 1 target and at "
                            "least 1 window, got L %d and %zu windows", dataset_name, L,
                            n_windows);
    if (eval_split_stream(&t->stream, ds, split, L, window, dataset_name)) return -1;
    t->L = L;
    t->window = window;
    t->n_windows = n_windows;
    t->starts = malloc(n_windows * sizeof *t->starts);
    if (!t->starts) {
        eval_targets_free(t);
        return spiral_error("out of memory for %zu validation windows", n_windows);
    }
    for (size_t k = 0; k < n_windows; k++)
        t->starts[k] = eval_window_start(&t->stream, window, L, k, n_windows);
    return 0;
}

void eval_targets_free(EvalTargets *t) {
    split_stream_free(&t->stream);
    free(t->starts);
    memset(t, 0, sizeof *t);
}

size_t eval_target_index(const EvalTargets *t, size_t k, int j) {
    return t->stream.global[t->starts[k] + (size_t)j + 1];
}

/* floor = (1 / (n L)) sum_k sum_j true_nll[target j of window k] */
double eval_targets_floor(const EvalTargets *t, const Dataset *ds, size_t *count) {
    if (count) *count = 0;
    if (!ds->true_nll) return NAN;
    double sum = 0;
    size_t n = 0;
    for (size_t k = 0; k < t->n_windows; k++)
        for (int j = 0; j < t->L; j++) {
            double nll = ds->true_nll[eval_target_index(t, k, j)];
            if (isnan(nll)) return NAN;
            sum += nll;
            n++;
        }
    if (count) *count = n;
    return n ? sum / (double)n : NAN;
}

int eval_reference(EvalReference *out, const Dataset *ds, int split, int L, int window,
                   size_t n_windows, const char *dataset_name) {
    memset(out, 0, sizeof *out);
    EvalTargets t;
    if (eval_targets_build(&t, ds, split, L, window, n_windows, dataset_name)) return -1;
    out->floor = eval_targets_floor(&t, ds, NULL);
    out->n_targets = t.n_windows * (size_t)t.L;
    out->n_windows = n_windows;
    out->L = L;
    out->window = window;
    int status = 0;
    out->unigram = out->bigram = out->trigram = NAN;
    if (dataset_split_tokens(ds, SPLIT_TRAIN)) {
        out->unigram = ngram_window_loss(ds, 1, SPLIT_TRAIN, &t, 0.01);
        out->bigram = ngram_window_loss(ds, 2, SPLIT_TRAIN, &t, 0.01);
        out->trigram = ngram_window_loss(ds, 3, SPLIT_TRAIN, &t, 0.01);
        if (isnan(out->unigram) || isnan(out->bigram) || isnan(out->trigram)) status = -1;
    }
    eval_targets_free(&t);
    return status;
}

const char *eval_window_name(int window) {
    return window == WINDOW_DOCUMENT ? "document" : "random";
}
