/*
 * probe_stats.c: accuracy, macro-F1, majority baseline, bootstrap interval,
 * control task, sequence permutation and expected layer (equations in
 * probe_stats.h).
 *
 * Group ids, token types and sequence ids are arbitrary ints; each is
 * mapped to a dense index 0..G-1 in increasing order of id (sort + unique +
 * binary search), so every random draw happens in an order fixed by the
 * data, not by memory layout.
 */
#include "probe_stats.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* qsort/bsearch order of ints, ascending. */
static int compare_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The distinct values of ids (n), sorted: *distinct (caller frees) and
 * *n_distinct, and index (n) with ids[i] = distinct[index[i]]. */
static int dense_index(const int *ids, int n, int **distinct, int *n_distinct, int *index) {
    int *sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) return spiral_error("probe: out of memory for %d ids", n);
    memcpy(sorted, ids, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_int);
    int g = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || sorted[i] != sorted[g - 1]) sorted[g++] = sorted[i];
    for (int i = 0; i < n; i++) {
        const int *hit = bsearch(&ids[i], sorted, (size_t)g, sizeof *sorted, compare_int);
        index[i] = (int)(hit - sorted);
    }
    *distinct = sorted;
    *n_distinct = g;
    return 0;
}

/* Checks that labels (n) are in 0..K-1; what names the array in errors. */
static int check_range(const int *labels, int n, int K, const char *what) {
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= K)
            return spiral_error("probe: %s[%d] = %d is out of range (expected 0..%d)", what, i,
                                labels[i], K - 1);
    return 0;
}

int probe_accuracy(const int *y_true, const int *y_pred, int n, double *accuracy) {
    if (n < 1) return spiral_error("probe: accuracy of %d examples", n);
    long correct = 0;
    for (int i = 0; i < n; i++) correct += y_true[i] == y_pred[i];
    *accuracy = (double)correct / n;
    return 0;
}

int probe_macro_f1(const int *y_true, const int *y_pred, int n, int K, double *macro_f1) {
    if (n < 1 || K < 1) return spiral_error("probe: macro-F1 needs n >= 1, K >= 1 (got %d, %d)", n, K);
    if (check_range(y_true, n, K, "y_true") || check_range(y_pred, n, K, "y_pred")) return -1;
    /* counts (3, K): true positives, predicted as c, truly c */
    long *counts = calloc((size_t)3 * K, sizeof *counts);
    if (!counts) return spiral_error("probe: out of memory for %d classes", K);
    long *tp = counts, *predicted = counts + K, *actual = counts + 2 * K;
    for (int i = 0; i < n; i++) {
        tp[y_true[i]] += y_true[i] == y_pred[i];
        predicted[y_pred[i]]++;
        actual[y_true[i]]++;
    }
    double sum = 0;
    int present = 0;
    for (int c = 0; c < K; c++) {
        if (actual[c] == 0) continue;
        present++;
        double precision = predicted[c] ? (double)tp[c] / predicted[c] : 0.0;
        double recall = (double)tp[c] / actual[c];
        if (precision + recall > 0) sum += 2 * precision * recall / (precision + recall);
    }
    free(counts);
    *macro_f1 = sum / present;
    return 0;
}

int probe_majority_baseline(const int *y_train, int n_train, const int *y_test, int n_test,
                            int K, int *majority_class, double *accuracy) {
    if (n_train < 1 || n_test < 1 || K < 1)
        return spiral_error("probe: majority baseline needs n_train, n_test, K >= 1 (got %d, %d, %d)",
                            n_train, n_test, K);
    if (check_range(y_train, n_train, K, "y_train") || check_range(y_test, n_test, K, "y_test"))
        return -1;
    long *counts = calloc((size_t)K, sizeof *counts);
    if (!counts) return spiral_error("probe: out of memory for %d classes", K);
    for (int i = 0; i < n_train; i++) counts[y_train[i]]++;
    int best = 0;
    for (int c = 1; c < K; c++)
        if (counts[c] > counts[best]) best = c;
    free(counts);
    long correct = 0;
    for (int i = 0; i < n_test; i++) correct += y_test[i] == best;
    if (majority_class) *majority_class = best;
    *accuracy = (double)correct / n_test;
    return 0;
}

/* A fresh mt19937 generator seeded with seed. */
static gsl_rng *seeded_rng(unsigned long seed) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (rng) gsl_rng_set(rng, seed);
    return rng;
}

int probe_bootstrap_ci(const int *y_true, const int *y_pred, int n, const int *groups, int B,
                       unsigned long seed, double *lo, double *hi) {
    if (n < 1) return spiral_error("probe: bootstrap of %d examples", n);
    if (B <= 0) B = PROBE_BOOTSTRAP_DEFAULT_B;
    /* units to resample: examples, or groups with (correct, size) each */
    int n_units = n;
    long *unit_correct = NULL, *unit_size = NULL;
    int *index = NULL, *distinct = NULL;
    double *stats = malloc((size_t)B * sizeof *stats);
    gsl_rng *rng = seeded_rng(seed);
    int status = -1;
    if (!stats || !rng) {
        spiral_error("probe: out of memory for %d bootstrap resamples", B);
        goto done;
    }
    if (groups) {
        index = malloc((size_t)n * sizeof *index);
        if (!index) {
            spiral_error("probe: out of memory for %d group ids", n);
            goto done;
        }
        if (dense_index(groups, n, &distinct, &n_units, index)) goto done;
    }
    unit_correct = calloc((size_t)n_units, sizeof *unit_correct);
    unit_size = calloc((size_t)n_units, sizeof *unit_size);
    if (!unit_correct || !unit_size) {
        spiral_error("probe: out of memory for %d bootstrap units", n_units);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        int u = groups ? index[i] : i;
        unit_correct[u] += y_true[i] == y_pred[i];
        unit_size[u]++;
    }
    for (int b = 0; b < B; b++) {
        long correct = 0, size = 0;
        for (int k = 0; k < n_units; k++) {
            unsigned long u = gsl_rng_uniform_int(rng, (unsigned long)n_units);
            correct += unit_correct[u];
            size += unit_size[u];
        }
        stats[b] = (double)correct / size;
    }
    gsl_sort(stats, 1, (size_t)B);
    double tail = (1 - PROBE_BOOTSTRAP_LEVEL) / 2;
    *lo = gsl_stats_quantile_from_sorted_data(stats, 1, (size_t)B, tail);
    *hi = gsl_stats_quantile_from_sorted_data(stats, 1, (size_t)B, 1 - tail);
    status = 0;
done:
    free(stats);
    free(index);
    free(distinct);
    free(unit_correct);
    free(unit_size);
    if (rng) gsl_rng_free(rng);
    return status;
}

int probe_control_labels(const int *token_type, const int *labels, int n, unsigned long seed,
                         int *control) {
    if (n < 1) return spiral_error("probe: control task of %d examples", n);
    int *type_index = malloc((size_t)n * sizeof *type_index);
    int *label_index = malloc((size_t)n * sizeof *label_index);
    int *types = NULL, *values = NULL, *draw = NULL;
    long *cumulative = NULL;
    gsl_rng *rng = seeded_rng(seed);
    int n_types = 0, n_values = 0, status = -1;
    if (!type_index || !label_index || !rng) {
        spiral_error("probe: out of memory for the control task");
        goto done;
    }
    if (dense_index(token_type, n, &types, &n_types, type_index)) goto done;
    /* the empirical distribution of the labels >= 0, as cumulative counts
     * over the distinct label values in increasing order */
    if (dense_index(labels, n, &values, &n_values, label_index)) goto done;
    cumulative = calloc((size_t)n_values, sizeof *cumulative);
    draw = malloc((size_t)n_types * sizeof *draw);
    if (!cumulative || !draw) {
        spiral_error("probe: out of memory for the control task");
        goto done;
    }
    long total = 0;
    for (int i = 0; i < n; i++)
        if (labels[i] >= 0) cumulative[label_index[i]]++;
    for (int v = 0; v < n_values; v++) {
        total += cumulative[v];
        cumulative[v] = total;
    }
    if (total == 0) {
        spiral_error("probe: control task: no example has a label >= 0");
        goto done;
    }
    /* one draw per type, in increasing order of type: r uniform in
     * 0..total-1, label = first value whose cumulative count exceeds r */
    for (int t = 0; t < n_types; t++) {
        long r = (long)gsl_rng_uniform_int(rng, (unsigned long)total);
        int v = 0;
        while (cumulative[v] <= r) v++;
        draw[t] = values[v];
    }
    for (int i = 0; i < n; i++) control[i] = labels[i] >= 0 ? draw[type_index[i]] : -1;
    status = 0;
done:
    free(type_index);
    free(label_index);
    free(types);
    free(values);
    free(draw);
    free(cumulative);
    if (rng) gsl_rng_free(rng);
    return status;
}

/* A sequence as the permutation sees it: its length and dense index. */
typedef struct {
    int length, seq;
} SeqLength;

/* Sequences by length, then by dense index (a total, data-fixed order). */
static int compare_seq_length(const void *a, const void *b) {
    const SeqLength *x = a, *y = b;
    if (x->length != y->length) return (x->length > y->length) - (x->length < y->length);
    return (x->seq > y->seq) - (x->seq < y->seq);
}

int probe_permute_sequence_labels(const int *seq_id, const int *labels, int n,
                                  unsigned long seed, int *permuted, int *n_unpaired) {
    if (n < 1) return spiral_error("probe: permutation of %d examples", n);
    int *seq_index = malloc((size_t)n * sizeof *seq_index);
    int *ids = NULL, *start = NULL, *fill = NULL, *members = NULL, *partner = NULL, *order = NULL;
    SeqLength *by_length = NULL;
    gsl_rng *rng = seeded_rng(seed);
    int n_seq = 0, status = -1;
    if (!seq_index || !rng) {
        spiral_error("probe: out of memory for the permutation");
        goto done;
    }
    if (dense_index(seq_id, n, &ids, &n_seq, seq_index)) goto done;
    /* members: the examples of each sequence in array order, sequence s at
     * members[start[s] .. start[s + 1]) (a counting sort) */
    start = calloc((size_t)n_seq + 1, sizeof *start);
    fill = calloc((size_t)n_seq, sizeof *fill);
    members = malloc((size_t)n * sizeof *members);
    partner = malloc((size_t)n_seq * sizeof *partner);
    order = malloc((size_t)n_seq * sizeof *order);
    by_length = malloc((size_t)n_seq * sizeof *by_length);
    if (!start || !fill || !members || !partner || !order || !by_length) {
        spiral_error("probe: out of memory for the permutation of %d sequences", n_seq);
        goto done;
    }
    for (int i = 0; i < n; i++) start[seq_index[i] + 1]++;
    for (int s = 0; s < n_seq; s++) start[s + 1] += start[s];
    for (int i = 0; i < n; i++) {
        int s = seq_index[i];
        members[start[s] + fill[s]++] = i;
    }
    for (int s = 0; s < n_seq; s++) {
        by_length[s].length = start[s + 1] - start[s];
        by_length[s].seq = s;
    }
    qsort(by_length, (size_t)n_seq, sizeof *by_length, compare_seq_length);
    /* shuffle within each run of equal length: sequence order[k] receives
     * the labels of the shuffled order[k] */
    int unpaired = 0;
    for (int r0 = 0; r0 < n_seq;) {
        int r1 = r0;
        while (r1 < n_seq && by_length[r1].length == by_length[r0].length) r1++;
        for (int k = r0; k < r1; k++) order[k] = by_length[k].seq;
        if (r1 - r0 == 1) unpaired++;
        gsl_ran_shuffle(rng, order + r0, (size_t)(r1 - r0), sizeof *order);
        for (int k = r0; k < r1; k++) partner[by_length[k].seq] = order[k];
        r0 = r1;
    }
    for (int s = 0; s < n_seq; s++) {
        int p = partner[s];
        for (int k = 0; k < start[s + 1] - start[s]; k++)
            permuted[members[start[s] + k]] = labels[members[start[p] + k]];
    }
    if (n_unpaired) *n_unpaired = unpaired;
    status = 0;
done:
    free(seq_index);
    free(ids);
    free(start);
    free(fill);
    free(members);
    free(partner);
    free(order);
    free(by_length);
    if (rng) gsl_rng_free(rng);
    return status;
}

int probe_expected_layer(const double *acc, int T, int clip_negative, double *expected) {
    *expected = NAN;
    if (T < 1) return spiral_error("probe: expected layer needs T >= 1 (got %d)", T);
    for (int t = 0; t <= T; t++)
        if (!isfinite(acc[t])) return spiral_error("probe: expected layer: acc[%d] = %g is not finite", t, acc[t]);
    double weighted = 0, total = 0;
    for (int t = 1; t <= T; t++) {
        double delta = acc[t] - acc[t - 1];
        if (clip_negative && delta < 0) delta = 0;
        weighted += t * delta;
        total += delta;
    }
    if (!(total > 0))
        return spiral_error("probe: expected layer undefined: the deltas sum to %g (no improvement over acc[0] = %g)",
                            total, acc[0]);
    *expected = weighted / total;
    return 0;
}

int probe_paired_margin_ci(const int *a, const int *b, int n_groups, int B, unsigned long seed,
                           double *margin, double *lo, double *hi) {
    *margin = *lo = *hi = NAN;
    if (n_groups < 1) return spiral_error("probe: margin over %d test sequences", n_groups);
    long diff = 0, rows = 0;
    for (int g = 0; g < n_groups; g++) {
        const int *x = a + 3 * g, *y = b + 3 * g;
        if (x[0] != y[0] || x[2] != y[2])
            return spiral_error("probe: margin: the two probes are not paired (test sequence %d "
                                "with %d rows against sequence %d with %d rows)", x[0], x[2], y[0],
                                y[2]);
        diff += x[1] - y[1];
        rows += x[2];
    }
    if (rows < 1) return spiral_error("probe: margin over test sequences without rows");
    if (B <= 0) B = PROBE_BOOTSTRAP_DEFAULT_B;
    double *stats = malloc((size_t)B * sizeof *stats);
    gsl_rng *rng = seeded_rng(seed);
    if (!stats || !rng) {
        free(stats);
        if (rng) gsl_rng_free(rng);
        return spiral_error("probe: out of memory for %d bootstrap resamples", B);
    }
    for (int r = 0; r < B; r++) {
        long d = 0, n = 0;
        for (int k = 0; k < n_groups; k++) {
            unsigned long g = gsl_rng_uniform_int(rng, (unsigned long)n_groups);
            d += a[3 * g + 1] - b[3 * g + 1];
            n += a[3 * g + 2];
        }
        stats[r] = n > 0 ? (double)d / n : 0.0;
    }
    gsl_sort(stats, 1, (size_t)B);
    double tail = (1 - PROBE_BOOTSTRAP_LEVEL) / 2;
    *margin = (double)diff / rows;
    *lo = gsl_stats_quantile_from_sorted_data(stats, 1, (size_t)B, tail);
    *hi = gsl_stats_quantile_from_sorted_data(stats, 1, (size_t)B, 1 - tail);
    free(stats);
    gsl_rng_free(rng);
    return 0;
}
