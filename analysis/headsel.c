/*
 * headsel.c: rank attention heads by how much a per-iteration statistic
 * changes across loop iterations and select the top fraction (equations in
 * headsel.h).
 */
#include "headsel.h"

#include <math.h>
#include <stdlib.h>

#include "error.h"

/* One head for sorting: its change and its row index. */
typedef struct {
    double change;
    int index;
} RankedHead;

/* qsort order: larger change first, then lower index first. */
static int compare_ranked(const void *a, const void *b) {
    const RankedHead *x = a, *y = b;
    if (x->change > y->change) return -1;
    if (x->change < y->change) return 1;
    return (x->index > y->index) - (x->index < y->index);
}

int headsel_count(int *count, int n_heads, double fraction) {
    if (n_heads < 1) return spiral_error("head selection: expected n_heads >= 1, got %d", n_heads);
    if (!(fraction > 0 && fraction <= 1))
        return spiral_error("head selection: fraction must be in (0, 1], got %g", fraction);
    double want = fraction * n_heads;
    int k = (int)ceil(want - 1e-9 * want); /* 0.4 * 10 = 4.000000000000001 -> 4 */
    if (k < 1) k = 1;
    if (k > n_heads) k = n_heads;
    *count = k;
    return 0;
}

int headsel_relative(double *relative, const double *stat, const double *reference, int n_heads, int T) {
    for (int t = 0; t < T; t++)
        if (!(reference[t] > 0) || !isfinite(reference[t]))
            return spiral_error("head selection: reference of iteration %d is %g, expected a finite value > 0",
                                t, reference[t]);
    for (int h = 0; h < n_heads; h++)
        for (int t = 0; t < T; t++) relative[(size_t)h * T + t] = stat[(size_t)h * T + t] / reference[t];
    return 0;
}

int headsel_change(double *change, const double *stat, int n_heads, int T, int measure) {
    if (n_heads < 1 || T < 1)
        return spiral_error("head selection: expected a (n_heads >= 1, T >= 1) array, got (%d, %d)", n_heads, T);
    if (measure != HEADSEL_RANGE && measure != HEADSEL_STDDEV)
        return spiral_error("head selection: measure must be %d (range) or %d (standard deviation), got %d",
                            HEADSEL_RANGE, HEADSEL_STDDEV, measure);
    for (int h = 0; h < n_heads; h++) {
        const double *row = stat + (size_t)h * T; /* (T) */
        for (int t = 0; t < T; t++)
            if (!isfinite(row[t]))
                return spiral_error("head selection: statistic of head %d at iteration %d is not finite", h, t);
        if (measure == HEADSEL_RANGE) {
            double lo = row[0], hi = row[0];
            for (int t = 1; t < T; t++) {
                if (row[t] < lo) lo = row[t];
                if (row[t] > hi) hi = row[t];
            }
            change[h] = hi - lo;
        } else {
            double mean = 0, sum_squares = 0;
            for (int t = 0; t < T; t++) mean += row[t];
            mean /= T;
            for (int t = 0; t < T; t++) sum_squares += (row[t] - mean) * (row[t] - mean);
            change[h] = sqrt(sum_squares / T);
        }
    }
    return 0;
}

int headsel_select(int *order, int *n_selected, double *change, const double *stat, int n_heads, int T,
                   double fraction, int measure) {
    int count = 0;
    if (headsel_count(&count, n_heads, fraction)) return -1;
    RankedHead *ranked = malloc((size_t)n_heads * sizeof *ranked);
    double *values = malloc((size_t)n_heads * sizeof *values); /* (n_heads) */
    int status = 0;
    if (!ranked || !values) {
        status = spiral_error("head selection: out of memory for %d heads", n_heads);
        goto done;
    }
    if (headsel_change(values, stat, n_heads, T, measure)) {
        status = -1;
        goto done;
    }
    for (int h = 0; h < n_heads; h++) {
        ranked[h].change = values[h];
        ranked[h].index = h;
    }
    qsort(ranked, (size_t)n_heads, sizeof *ranked, compare_ranked);
    for (int r = 0; r < n_heads; r++) order[r] = ranked[r].index;
    if (change)
        for (int h = 0; h < n_heads; h++) change[h] = values[h];
    *n_selected = count;
done:
    free(ranked);
    free(values);
    return status;
}
