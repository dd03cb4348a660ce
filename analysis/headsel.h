/*
 * headsel.h: selection of the attention heads whose behaviour changes most
 * across loop iterations (DESIGN.md section 4; paper.md, "Probing in the
 * paper": SpiralFormer selects the 40% of heads whose attention changes most
 * across iterations, then compares their behaviour per iteration).
 *
 * In a looped model the heads of the shared core are the same weights
 * applied at every iteration, so head h of core layer l has one statistic
 * per iteration t (e.g. mean attention distance in tokens, entropy, mass
 * beyond a distance): a row s_h = (s_{h,0}, ..., s_{h,T-1}). The rows may be
 * any set of heads; for a selection over the whole core, flatten (layer l,
 * head k) to row l * H + k.
 *
 * Change of head h across iterations (the ranking key):
 *   HEADSEL_RANGE (the default):  c_h = max_t s_{h,t} - min_t s_{h,t}
 *   HEADSEL_STDDEV:               c_h = sqrt((1/T) sum_t (s_{h,t} - mean_t s_h)^2)
 *                                 (population standard deviation over the T
 *                                 iterations, which are all of them, not a
 *                                 sample)
 * The range is the default because T is small (a handful of iterations) and
 * "changes most" reads directly as the span between the extreme iterations;
 * the standard deviation is less sensitive to one outlying iteration.
 *
 * Ranking: c_h descending; equal changes keep the lower row index first, so
 * the ranking is deterministic. Selected: the first
 *   k = ceil(fraction * n_heads), at least 1 (and at most n_heads),
 * where fraction * n_heads is rounded up after forgiving floating-point
 * noise of 1e-9 relative (0.4 * 10 gives 4, not 5).
 */
#ifndef SPIRAL_HEADSEL_H
#define SPIRAL_HEADSEL_H

enum { HEADSEL_RANGE = 0, HEADSEL_STDDEV = 1 };

/* The documented default measure and fraction (the paper's 40% rule). */
enum { HEADSEL_DEFAULT_MEASURE = HEADSEL_RANGE };
#define HEADSEL_DEFAULT_FRACTION 0.4

/* A statistic relative to a per-iteration reference:
 *   relative[h, t] = stat[h, t] / reference[t]
 * for stat (n_heads, T) and reference (T) > 0. With the mean attention
 * distance as stat and the uniform-attention distance of each iteration
 * as reference (attention_stats.h), the ratio does not depend on the unit
 * of distance (tokens, or chunks of the iteration's g tokens), so neither
 * does a selection ranked on it; the range of the raw distance across
 * iterations does. Fails on a reference that is not finite and > 0. */
int headsel_relative(double *relative, const double *stat, const double *reference, int n_heads, int T);

/* Number of heads selected out of n_heads >= 1 at fraction in (0, 1]. */
int headsel_count(int *count, int n_heads, double fraction);

/* Change of each head across iterations: change (n_heads) from
 * stat (n_heads, T), T >= 1, with measure HEADSEL_RANGE or HEADSEL_STDDEV.
 * Fails on a non-finite statistic, naming its head and iteration. */
int headsel_change(double *change, const double *stat, int n_heads, int T, int measure);

/* Ranks heads by change and selects the top fraction.
 * order (n_heads) receives every row index in rank order (largest change
 * first); its first *n_selected entries are the selected heads. change
 * (n_heads) receives each head's change if not NULL. stat (n_heads, T). */
int headsel_select(int *order, int *n_selected, double *change, const double *stat, int n_heads, int T,
                   double fraction, int measure);

#endif
