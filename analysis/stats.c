/*
 * stats.c: t and bootstrap confidence intervals of a mean, and linear
 * interpolation of a measured curve (equations in stats.h).
 *
 * GSL's default error handler aborts, so every argument is checked before a
 * GSL call; the only GSL allocation is the random number generator.
 */
#include "stats.h"

#include <math.h>
#include <stdlib.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

#include "error.h"

/* Checks n >= 1, level in (0, 1) and finite values x (n). */
static int check_sample(const char *what, const double *x, int n, double level) {
    if (n < 1) return spiral_error("%s: expected at least 1 value, got %d", what, n);
    if (!(level > 0 && level < 1)) return spiral_error("%s: level must be in (0, 1), got %g", what, level);
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return spiral_error("%s: value %d is not finite", what, i);
    return 0;
}

/* Fills n, mean, sd and level of out from x (n). */
static void describe_sample(MeanInterval *out, const double *x, int n, double level) {
    double mean = 0, sum_squares = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) sum_squares += (x[i] - mean) * (x[i] - mean);
    out->n = n;
    out->mean = mean;
    out->sd = n > 1 ? sqrt(sum_squares / (n - 1)) : 0;
    out->level = level;
}

int stats_mean_ci_t(MeanInterval *out, const double *x, int n, double level) {
    if (check_sample("t interval", x, n, level)) return -1;
    describe_sample(out, x, n, level);
    if (n == 1) {
        out->lo = out->hi = out->mean;
        out->zero_width = 1;
        return 0;
    }
    double quantile = gsl_cdf_tdist_Pinv(1 - (1 - level) / 2, n - 1);
    double half_width = quantile * out->sd / sqrt((double)n);
    out->lo = out->mean - half_width;
    out->hi = out->mean + half_width;
    out->zero_width = 0;
    return 0;
}

int stats_mean_ci_bootstrap(MeanInterval *out, const double *x, int n, double level, int n_resamples,
                            unsigned long seed) {
    if (check_sample("bootstrap interval", x, n, level)) return -1;
    if (n_resamples < 1)
        return spiral_error("bootstrap interval: expected n_resamples >= 1, got %d", n_resamples);
    describe_sample(out, x, n, level);
    double *means = malloc((size_t)n_resamples * sizeof *means); /* (n_resamples) */
    if (!means) return spiral_error("bootstrap interval: out of memory for %d resamples", n_resamples);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) {
        free(means);
        return spiral_error("bootstrap interval: cannot allocate the random number generator");
    }
    gsl_rng_set(rng, seed);
    for (int b = 0; b < n_resamples; b++) {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += x[gsl_rng_uniform_int(rng, (unsigned long)n)];
        means[b] = sum / n;
    }
    gsl_rng_free(rng);
    gsl_sort(means, 1, (size_t)n_resamples);
    double a = 1 - level;
    out->lo = gsl_stats_quantile_from_sorted_data(means, 1, (size_t)n_resamples, a / 2);
    out->hi = gsl_stats_quantile_from_sorted_data(means, 1, (size_t)n_resamples, 1 - a / 2);
    out->zero_width = out->hi == out->lo;
    free(means);
    return 0;
}

int stats_interpolate(double *y_at, const double *x, const double *y, int n, double x_at) {
    if (n < 1) return spiral_error("interpolation: expected at least 1 point, got %d", n);
    if (!isfinite(x_at)) return spiral_error("interpolation: query x = %g is not finite", x_at);
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return spiral_error("interpolation: point %d (%g, %g) is not finite", i, x[i], y[i]);
        if (i > 0 && !(x[i] > x[i - 1]))
            return spiral_error("interpolation: x must be strictly increasing, but x[%d] = %g <= x[%d] = %g", i,
                                x[i], i - 1, x[i - 1]);
    }
    if (x_at < x[0] || x_at > x[n - 1])
        return spiral_error("interpolation: x = %g is outside the measured range [%g, %g]", x_at, x[0],
                            x[n - 1]);
    /* Binary search for the segment [x[lo], x[lo + 1]] holding x_at. */
    int lo = 0, hi = n - 1;
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (x[mid] <= x_at)
            lo = mid;
        else
            hi = mid;
    }
    if (x_at == x[lo] || n == 1) {
        *y_at = y[lo];
    } else if (x_at == x[hi]) {
        *y_at = y[hi];
    } else {
        *y_at = y[lo] + (x_at - x[lo]) * (y[hi] - y[lo]) / (x[hi] - x[lo]);
    }
    return 0;
}

int stats_diff_ci_welch(MeanInterval *out, const double *a, int n_a, const double *b, int n_b, double level) {
    MeanInterval ma, mb;
    if (check_sample("Welch interval (first sample)", a, n_a, level) ||
        check_sample("Welch interval (second sample)", b, n_b, level))
        return -1;
    describe_sample(&ma, a, n_a, level);
    describe_sample(&mb, b, n_b, level);
    out->n = n_a + n_b;
    out->mean = ma.mean - mb.mean;
    out->level = level;
    double va = n_a > 1 ? ma.sd * ma.sd / n_a : 0, vb = n_b > 1 ? mb.sd * mb.sd / n_b : 0;
    out->sd = sqrt(va + vb);
    if (n_a < 2 || n_b < 2 || !(va + vb > 0)) {
        out->lo = out->hi = out->mean;
        out->zero_width = 1;
        return 0;
    }
    double nu = (va + vb) * (va + vb) / (va * va / (n_a - 1) + vb * vb / (n_b - 1));
    double half_width = gsl_cdf_tdist_Pinv(1 - (1 - level) / 2, nu) * out->sd;
    out->lo = out->mean - half_width;
    out->hi = out->mean + half_width;
    out->zero_width = 0;
    return 0;
}
