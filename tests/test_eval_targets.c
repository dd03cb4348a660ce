/*
 * test_eval_targets.c: the validation windows and the floor and n-gram
 * baselines over their targets (data/eval_targets.c, ngram_window_loss).
 *
 * Checked against an independent enumeration written from the rule's
 * statement (documents of the split back to back; window k of n at the
 * k-th of n evenly spread document starts, or at floor(k / n * (N - L)));
 * the floor of document windows that skip each document's first token
 * differs from the mean over every token of the split, and equals the mean
 * over tokens 1.. of each document; the n-gram baselines never look before
 * a window; bad windows fail with messages naming the dataset and split.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "error.h"
#include "eval_targets.h"
#include "harness.h"
#include "ngram.h"

static uint64_t rng_state = 1;
static uint64_t rng_next(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng_state >> 33;
}

/* A dataset of n_docs documents of random lengths in [min_len, max_len],
 * tokens in 1..V-1 after a first token 0, true_nll 3 at each document's
 * first token and a random value in [0, 1) elsewhere; document d is val
 * when d % 3 == 1, else train. */
static void make_dataset(Dataset *ds, int V, int n_docs, int min_len, int max_len) {
    dataset_init(ds, "test", V, 0, NULL, NULL, 1);
    uint16_t tokens[512];
    double nll[512];
    for (int d = 0; d < n_docs; d++) {
        size_t n = (size_t)(min_len + (int)(rng_next() % (uint64_t)(max_len - min_len + 1)));
        for (size_t i = 0; i < n; i++) {
            tokens[i] = i == 0 ? 0 : (uint16_t)(1 + rng_next() % (uint64_t)(V - 1));
            nll[i] = i == 0 ? 3.0 : (double)(rng_next() % 1000) / 1000.0;
        }
        dataset_append(ds, tokens, n, NULL, nll, d % 3 == 1 ? SPLIT_VAL : SPLIT_TRAIN);
    }
}

/* The brute-force windows: global token index of every stream position of
 * the val split and the stream offsets of the n windows (returns the
 * number of stream tokens). */
static size_t brute_windows(const Dataset *ds, int L, int window, size_t n, size_t *global,
                            size_t *starts) {
    size_t total = 0, doc_starts[4096], n_doc_starts = 0;
    for (size_t d = 0; d < ds->n_docs; d++)
        if (ds->doc_split[d] == SPLIT_VAL) total += ds->doc_start[d + 1] - ds->doc_start[d];
    size_t at = 0;
    for (size_t d = 0; d < ds->n_docs; d++) {
        if (ds->doc_split[d] != SPLIT_VAL) continue;
        /* a document start with room for L + 1 tokens before the stream ends */
        if (at + (size_t)L + 1 <= total) doc_starts[n_doc_starts++] = at;
        for (size_t i = ds->doc_start[d]; i < ds->doc_start[d + 1]; i++) global[at++] = i;
    }
    for (size_t k = 0; k < n; k++)
        starts[k] = window == WINDOW_DOCUMENT
                        ? doc_starts[k * n_doc_starts / n]
                        : (size_t)((double)k / (double)n * (double)(total - (size_t)L));
    return total;
}

/* eval_targets_floor equals the brute-force mean over the windows'
 * targets, for both window kinds and for more windows than documents. */
static void test_floor_brute_force(void) {
    Dataset ds;
    make_dataset(&ds, 7, 60, 5, 40);
    static size_t global[60 * 40], starts[500];
    const int lengths[3] = {4, 16, 33};
    const size_t counts[3] = {1, 7, 300};
    for (int w = 0; w < 2; w++)
        for (int a = 0; a < 3; a++)
            for (int c = 0; c < 3; c++) {
                int L = lengths[a];
                int window = w ? WINDOW_DOCUMENT : WINDOW_RANDOM;
                brute_windows(&ds, L, window, counts[c], global, starts);
                double sum = 0;
                for (size_t k = 0; k < counts[c]; k++)
                    for (int j = 1; j <= L; j++) sum += ds.true_nll[global[starts[k] + (size_t)j]];
                double expected = sum / ((double)counts[c] * L);
                EvalTargets t;
                if (eval_targets_build(&t, &ds, SPLIT_VAL, L, window, counts[c], "test")) {
                    CHECK(0, "build L %d: %s", L, spiral_last_error());
                    continue;
                }
                size_t count;
                double got = eval_targets_floor(&t, &ds, &count);
                long moved = 0;
                for (size_t k = 0; k < counts[c]; k++) moved += t.starts[k] != starts[k];
                CHECK(moved == 0, "%s L %d n %zu: %ld window starts differ from the rule",
                      eval_window_name(window), L, counts[c], moved);
                CHECK(count == counts[c] * (size_t)L && fabs(got - expected) < 1e-12,
                      "%s L %d n %zu: floor %.15g over %zu targets, brute force %.15g",
                      eval_window_name(window), L, counts[c], got, count, expected);
                eval_targets_free(&t);
            }
    dataset_free(&ds);
}

/* Documents of exactly L + 1 tokens scored from their starts: every target
 * is a document token 1 .. L, so the floor leaves out the first token of
 * each document (nll 3) and differs from the mean over the whole split. */
static void test_floor_skips_first_token(void) {
    Dataset ds;
    make_dataset(&ds, 5, 90, 17, 17);
    int L = 16;
    size_t n_val = 0;
    double sum_rest = 0;
    for (size_t d = 0; d < ds.n_docs; d++) {
        if (ds.doc_split[d] != SPLIT_VAL) continue;
        n_val++;
        for (size_t i = ds.doc_start[d] + 1; i < ds.doc_start[d + 1]; i++) sum_rest += ds.true_nll[i];
    }
    double split_mean = dataset_true_nll_mean(&ds, SPLIT_VAL, NULL);
    double rest_mean = sum_rest / ((double)n_val * L);
    EvalReference ref;
    CHECK(eval_reference(&ref, &ds, SPLIT_VAL, L, WINDOW_DOCUMENT, n_val, "test") == 0, "reference: %s",
          spiral_last_error());
    printf("documents of 17 tokens: floor over every val token %.4f, over the document windows' "
           "targets %.4f\n", split_mean, ref.floor);
    CHECK(fabs(ref.floor - rest_mean) < 1e-12, "window floor %.15g, mean of tokens 1..16 %.15g",
          ref.floor, rest_mean);
    CHECK(fabs(ref.floor - split_mean) > 0.1, "window floor %.6f equals the split's %.6f",
          ref.floor, split_mean);
    CHECK(ref.n_targets == n_val * (size_t)L, "%zu targets", ref.n_targets);
    dataset_free(&ds);
}

/* -log p(target | context) of an add-k model of order m, counted by brute
 * force on the train stream. */
static double brute_nll(const int *train, size_t n_train, const int *context, int m, int target,
                        double k, int V) {
    double joint = 0, marginal = 0;
    for (size_t i = (size_t)m - 1; i < n_train; i++) {
        int match = 1;
        for (int a = 0; a < m - 1 && match; a++) match = train[i - (size_t)(m - 1) + (size_t)a] == context[a];
        if (!match) continue;
        marginal++;
        joint += train[i] == target;
    }
    return -log((joint + k) / (marginal + k * V));
}

/* ngram_window_loss equals brute-force counting with contexts cut at the
 * window's first token. */
static void test_ngram_windows(void) {
    Dataset ds;
    make_dataset(&ds, 6, 45, 6, 30);
    static int train[45 * 30];
    size_t n_train = 0;
    for (size_t d = 0; d < ds.n_docs; d++)
        if (ds.doc_split[d] == SPLIT_TRAIN)
            for (size_t i = ds.doc_start[d]; i < ds.doc_start[d + 1]; i++) train[n_train++] = ds.tokens[i];
    for (int w = 0; w < 2; w++) {
        EvalTargets t;
        int L = 9, window = w ? WINDOW_DOCUMENT : WINDOW_RANDOM;
        if (eval_targets_build(&t, &ds, SPLIT_VAL, L, window, 11, "test")) {
            CHECK(0, "build: %s", spiral_last_error());
            continue;
        }
        for (int order = 1; order <= 3; order++) {
            double sum = 0;
            for (size_t k = 0; k < t.n_windows; k++) {
                const int *win = t.stream.tokens + t.starts[k];
                for (int j = 0; j < L; j++) {
                    int m = j + 2 < order ? j + 2 : order;  /* window tokens before target j + 1 */
                    sum += brute_nll(train, n_train, win + j + 2 - m, m, win[j + 1], 0.01, 6);
                }
            }
            double expected = sum / (11.0 * L);
            double got = ngram_window_loss(&ds, order, SPLIT_TRAIN, &t, 0.01);
            CHECK(fabs(got - expected) < 1e-12, "%s order %d: %.15g, brute force %.15g",
                  eval_window_name(window), order, got, expected);
        }
        eval_targets_free(&t);
    }
    dataset_free(&ds);
}

/* Windows that cannot be built fail naming the dataset and the split. */
static void test_errors(void) {
    Dataset ds;
    make_dataset(&ds, 5, 9, 6, 6);
    EvalTargets t;
    CHECK(eval_targets_build(&t, &ds, SPLIT_VAL, 40, WINDOW_DOCUMENT, 4, "tiny") == -1 &&
              strstr(spiral_last_error(), "the val split has 18 tokens; a window of 41"),
          "split shorter than a window: %s", spiral_last_error());
    CHECK(eval_targets_build(&t, &ds, SPLIT_VAL, 4, WINDOW_RANDOM, 0, "tiny") == -1 &&
              strstr(spiral_last_error(), "0 windows"),
          "no windows: %s", spiral_last_error());
    free(ds.true_nll);
    ds.true_nll = NULL;
    CHECK(eval_targets_build(&t, &ds, SPLIT_VAL, 4, WINDOW_RANDOM, 3, "tiny") == 0, "build: %s",
          spiral_last_error());
    CHECK(isnan(eval_targets_floor(&t, &ds, NULL)), "a dataset without true_nll has no floor");
    eval_targets_free(&t);
    dataset_free(&ds);
}

int main(int argc, char **argv) {
    (void)argc;
    test_floor_brute_force();
    test_floor_skips_first_token();
    test_ngram_windows();
    test_errors();
    return test_summary(argv[0]);
}
