/*
 * probe_rows.c: a row's token and label (see probe_rows.h).
 */
#include "probe_rows.h"

size_t row_token_index(const size_t *window_index, const int *pos, int row) {
    return window_index[pos[row]];
}

int row_label(const int *position_labels, int L, const int *pos, int seq, int row) {
    return position_labels[(size_t)seq * L + pos[row]];
}
