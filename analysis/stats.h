/*
 * stats.h: the statistics behind comparisons across seeds and runs
 * (DESIGN.md section 4, "Comparisons": several seeds, confidence intervals;
 * loss at equal FLOPs).
 *
 * t interval of a mean, for a sample x_1..x_n (e.g. one metric over seeds):
 *   mean m = (1/n) sum x_i,  s = sqrt(sum (x_i - m)^2 / (n - 1)),
 *   m +- t_{1 - a/2, n - 1} s / sqrt(n),  a = 1 - level,
 * with t_{q, nu} the t distribution's quantile (gsl_cdf_tdist_Pinv); e.g.
 * t_{0.975, 4} = 2.776445. With n = 1 there is no spread to estimate: the
 * interval is [x_1, x_1] and zero_width is set, so a report can say "one
 * seed" instead of showing a misleadingly exact number.
 *
 * Bootstrap percentile interval of a mean (Efron & Tibshirani 1993, ch. 13):
 * B resamples of n values drawn with replacement (GSL mt19937, seeded, so a
 * seed fixes the result), their means sorted, and the interval between the
 * a/2 and 1 - a/2 quantiles (linear interpolation between order statistics,
 * gsl_stats_quantile_from_sorted_data).
 *
 * Welch t interval of a difference of means a - b of two independent
 * samples (e.g. a variant's and a base's losses over their seeds):
 *   d = m_a - m_b,  se^2 = s_a^2 / n_a + s_b^2 / n_b,
 *   nu = se^4 / ((s_a^2 / n_a)^2 / (n_a - 1) + (s_b^2 / n_b)^2 / (n_b - 1)),
 *   d +- t_{1 - a/2, nu} se  (Welch-Satterthwaite degrees of freedom).
 * It needs n_a, n_b >= 2; with a sample of one, or no spread at all, the
 * interval is [d, d] with zero_width set.
 *
 * Linear interpolation of a curve y(x) given at points x_0 < ... < x_{n-1}
 * (e.g. validation loss against training FLOPs, for "loss at equal FLOPs"):
 *   y(x) = y_i + (x - x_i) (y_{i+1} - y_i) / (x_{i+1} - x_i),  x_i <= x <= x_{i+1};
 * a query outside [x_0, x_{n-1}] is an error, never an extrapolation.
 *
 * Functions return 0, or -1 after spiral_error() on bad input.
 */
#ifndef SPIRAL_STATS_H
#define SPIRAL_STATS_H

/* An estimate of a mean with a confidence interval [lo, hi]. */
typedef struct {
    int n;           /* sample size */
    double mean;     /* sample mean */
    double sd;       /* sample standard deviation (n - 1 denominator); 0 if n = 1 */
    double level;    /* confidence level, e.g. 0.95 */
    double lo, hi;   /* the interval */
    int zero_width;  /* 1 if the interval has no width because n = 1 (or,
                        for the bootstrap, every value is equal) */
} MeanInterval;

/* t interval of the mean of x (n), n >= 1, level in (0, 1) (0.95 for 95%). */
int stats_mean_ci_t(MeanInterval *out, const double *x, int n, double level);

/* Bootstrap percentile interval of the mean of x (n), n >= 1, with
 * n_resamples >= 1 resamples (10000 is typical) and an mt19937 seed. */
int stats_mean_ci_bootstrap(MeanInterval *out, const double *x, int n, double level, int n_resamples,
                            unsigned long seed);

/* Welch t interval of mean(a) - mean(b), a (n_a >= 1) and b (n_b >= 1);
 * out->n = n_a + n_b, out->sd = se. */
int stats_diff_ci_welch(MeanInterval *out, const double *a, int n_a, const double *b, int n_b, double level);

/* y_at = the linear interpolation of the points (x (n), y (n)) at x_at.
 * x strictly increasing, n >= 1; fails if x_at is outside [x_0, x_{n-1}]. */
int stats_interpolate(double *y_at, const double *x, const double *y, int n, double x_at);

#endif
