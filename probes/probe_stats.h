/*
 * probe_stats.h: the statistics around a linear probe: how good is it,
 * compared with what, and how sure are we.
 *
 *   accuracy      (1/n) sum_i [pred_i = true_i]
 *   macro-F1      mean over the classes c present in y_true of
 *                 F1_c = 2 P_c R_c / (P_c + R_c),  P_c = tp/(tp + fp),
 *                 R_c = tp/(tp + fn); F1_c = 0 when P_c + R_c = 0 (and
 *                 P_c = 0 when nothing is predicted as c)
 *   majority      accuracy on the test labels of always predicting the most
 *                 frequent TRAIN label (ties: the smaller label)
 *   bootstrap CI  B resamples with replacement of the test examples (or of
 *                 whole groups, e.g. sequences, whose examples are then all
 *                 in or all out; the accuracy of a resample is then
 *                 sum correct / sum size over the drawn groups); the
 *                 percentile interval [q_0.025, q_0.975] of the B
 *                 accuracies (quantiles interpolated linearly between order
 *                 statistics, gsl_stats_quantile_from_sorted_data)
 *   control task  Hewitt & Liang 2019: each distinct token type gets a label
 *                 drawn once from the empirical distribution of the real
 *                 labels, so the control label is a function of the type
 *   permutation   the label vectors of whole sequences swapped at random
 *                 among sequences of the same length
 *   expected      Tenney et al. 2019: with Delta_t = acc[t] - acc[t-1],
 *   layer         E = sum_{t>=1} t Delta_t / sum_{t>=1} Delta_t
 *
 * Randomness is GSL's gsl_rng_mt19937 seeded with gsl_rng_set(rng, seed), so
 * every result is a deterministic function of its inputs and the seed (GSL
 * maps seed 0 to its default seed 4357, so seeds 0 and 4357 coincide).
 * Inputs are processed in a fixed order (sorted group ids and types), so
 * the results do not depend on how a hash or an allocation happened to
 * fall.
 *
 * Labels are ints in 0..K-1 where a K is given. Every function returns 0,
 * or -1 with spiral_error on bad input or out of memory.
 */
#ifndef SPIRAL_PROBE_STATS_H
#define SPIRAL_PROBE_STATS_H

#define PROBE_BOOTSTRAP_DEFAULT_B 1000
#define PROBE_BOOTSTRAP_LEVEL 0.95

/* Fraction of the n >= 1 examples with y_pred[i] == y_true[i]. */
int probe_accuracy(const int *y_true, const int *y_pred, int n, double *accuracy);

/* Macro-F1 over the classes present in y_true (n), labels in 0..K-1. */
int probe_macro_f1(const int *y_true, const int *y_pred, int n, int K, double *macro_f1);

/* The most frequent class of y_train (n_train) and its accuracy on y_test
 * (n_test); majority_class may be NULL. Labels in 0..K-1. */
int probe_majority_baseline(const int *y_train, int n_train, const int *y_test, int n_test,
                            int K, int *majority_class, double *accuracy);

/* Percentile bootstrap 95% interval [*lo, *hi] of the accuracy of y_pred
 * against y_true (n): B resamples (B <= 0: 1000) of the examples, or, if
 * groups (n) is not NULL, of the distinct group ids (any ints; the
 * examples of a group need not be contiguous). */
int probe_bootstrap_ci(const int *y_true, const int *y_pred, int n, const int *groups, int B,
                       unsigned long seed, double *lo, double *hi);

/* Control labels (Hewitt & Liang 2019): for each distinct token type, in
 * increasing order of type, one draw from the empirical distribution of
 * the labels >= 0 of labels (n); control[i] (n) = the draw of token_type[i].
 * Examples with a negative label (no label) take no part in the
 * distribution and get control -1, so control is a function of the type on
 * every labelled example. Token types and labels are any ints. */
int probe_control_labels(const int *token_type, const int *labels, int n, unsigned long seed,
                         int *control);

/* Label permutation across sequences: seq_id (n) names each example's
 * sequence; a sequence's label vector is labels of its examples in array
 * order. Sequences are grouped by length and, within a length, shuffled:
 * permuted (n) gives each sequence the label vector of its partner. A
 * sequence whose length no other sequence has keeps its own labels;
 * *n_unpaired (may be NULL) counts them. */
int probe_permute_sequence_labels(const int *seq_id, const int *labels, int n,
                                  unsigned long seed, int *permuted, int *n_unpaired);

/* The margin of probe a over probe b on the same test rows, with a paired
 * percentile bootstrap interval over test sequences. a and b are
 * (n_groups, 3) int32 (sequence, correct, rows), ascending by sequence (a
 * result's test_counts); they must name the same sequences with the same
 * row counts, else the error says they are not paired. With c_s the
 * correct counts and r_s the rows of sequence s,
 *   margin = sum_s (c_a,s - c_b,s) / sum_s r_s
 * and each of B resamples (B <= 0: 1000; seeded) draws n_groups sequences
 * with replacement and recomputes it; [*lo, *hi] = its 2.5% and 97.5%
 * quantiles. Resampling the two probes' outcomes together keeps their
 * correlation (both read the same rows), so the interval is narrower than
 * one built from the two accuracies' intervals. */
int probe_paired_margin_ci(const int *a, const int *b, int n_groups, int B, unsigned long seed,
                           double *margin, double *lo, double *hi);

/* Expected layer (Tenney et al. 2019) of acc (T + 1), T >= 1: acc[0] is the
 * baseline (or the first iteration) and E = sum_{t=1..T} t Delta_t /
 * sum_{t=1..T} Delta_t. Tenney et al. use the deltas as they are
 * (clip_negative = 0); then a dip followed by recovery counts negatively
 * and E can leave [1, T]. With clip_negative = 1 every Delta_t < 0 is
 * replaced by 0, so E is a weighted mean of the iterations that improved
 * and lies in [1, T]. Fails (E = NaN) when the denominator is <= 0: no net
 * improvement, nothing to locate. */
int probe_expected_layer(const double *acc, int T, int clip_negative, double *expected);

#endif
