/*
 * probe_rows.h: which token, and so which label, a row of a recorded site
 * stands for.
 *
 * A site's rows in one window sit at token positions pos (J) from
 * core/steps.h site_row_positions: a token row at its own position, a
 * latent row (chunk j of a step with chunk size g and offset w) at its
 * chunk's LAST member, min((j + 1) g - w - 1, L - 1), the latest token
 * whose label it could causally know. A row takes the label of that token.
 * `spiral probe` (per-position label arrays) and `spiral export` (dataset
 * labels by token index) both read rows through these two functions.
 */
#ifndef SPIRAL_PROBE_ROWS_H
#define SPIRAL_PROBE_ROWS_H

#include <stddef.h>

/* The dataset token index of row `row` of a site in one window:
 * window_index[pos[row]]. window_index (L): the dataset token index of each
 * position (recording_read_token_index); pos (rows): the site's row positions. */
size_t row_token_index(const size_t *window_index, const int *pos, int row);

/* The label of row `row` of window seq: position_labels[seq * L + pos[row]],
 * where position_labels (n_seq, L) holds a label per position (-1 where
 * undefined). For a dataset label, position_labels[s * L + p] =
 * values[window_index of (s, p)], so this is values[row_token_index(...)]. */
int row_label(const int *position_labels, int L, const int *pos, int seq, int row);

#endif
