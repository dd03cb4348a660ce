/*
 * attention_stats.h: what a recording keeps of each attention pattern.
 *
 * The full probabilities (heads x rows x rows per layer application) are
 * too large to store for every sequence, so spiral keeps, per head and
 * query row, three kinds of number that the analyses need: how far back
 * the query looks (mean distance in tokens), how spread its attention is
 * (entropy), and how much of it reaches beyond each distance D. Distances
 * are in token units, with each row at the token position of its last
 * member, so latents of any chunk size compare with tokens.
 *
 * core/record.c stores what attention_stats_summary() computes; the rows
 * are attention_stats.stats in the store (data/recording_store.h).
 */
#ifndef SPIRAL_ATTENTION_STATS_H
#define SPIRAL_ATTENTION_STATS_H

#include "real.h"
#include "record.h"

/* Per head h and query row i of probabilities P (heads, n, n), with pos (n)
 * the ascending token position of each row:
 *   stats[h, i, 0]     = distance_i   = sum_j P_ij (pos_i - pos_j)      (tokens)
 *   stats[h, i, 1]     = entropy_i    = -sum_j P_ij log P_ij            (nats)
 *   stats[h, i, 2 + k] = beyond_i(D_k) = sum_{j : pos_i - pos_j > D_k} P_ij
 * for the n_distances distances D_k; stats is (heads, n, 2 + n_distances).
 * Returns 0, or -1 (spiral_error) when positions do not ascend or memory
 * runs out. */
int attention_stats_compute(float *stats, const real *probs, int heads, int n, const int *pos,
                            int n_distances, const int *distances);

/* The uniform-attention reference of a layer application whose query rows
 * stand at ascending token positions pos (n >= 1): the mean over rows of
 * the distance that attention spread evenly over the causal prefix would
 * have,
 *   U = (1/n) sum_i (1/(i+1)) sum_{j<=i} (pos_i - pos_j)    (tokens),
 * the same mean over rows that analyze takes of the recorded distances, so
 * that uniform attention has distance / U = 1 exactly. It depends only on
 * the rows' geometry (chunk size g, offset, length): the coarser the
 * chunks, the farther apart the rows and the larger U. Dividing a distance
 * by U removes the unit: in tokens or in chunks of g tokens the ratio is
 * the same. */
double attention_uniform_distance(const int *pos, int n);

/* The AttentionSummary for RecordOptions.attention: attention_stats_compute
 * on each sequence of each attention event. */
AttentionSummary attention_stats_summary(void);

#endif
