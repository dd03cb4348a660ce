/*
 * export.h: one recorded site of a run as NumPy arrays (`spiral export`),
 * for study outside spiral.
 *
 * For a recording (run, dataset, split) and one (site, iteration, scale),
 * the states of every sequence are written as one float32 array (rows, d):
 * the rows of sequence 0, then of sequence 1, ... (tokens, or latents at
 * scale g). Beside it, for the same rows: OUT.seq.npy (int32, the
 * sequence), OUT.pos.npy (int32, the row's token position in its window: a
 * latent's last member token, core/steps.h site_row_positions) and
 * OUT.<label>.npy (int32) for every label of the dataset, the label of the
 * row's token (-1 where undefined). OUT.seq.npy etc. drop OUT's ".npy".
 */
#ifndef SPIRAL_EXPORT_H
#define SPIRAL_EXPORT_H

#include <stddef.h>

#include "store.h"

typedef struct {
    const char *run, *dataset, *split;  /* which recording */
    const char *site;        /* "token", "latent_in", "latent_out" or "coda" */
    int iteration;           /* the site's iteration (step) */
    int scale;               /* chunk size of the rows; 0: the iteration's chunk
                                size for a latent site, 1 otherwise */
    const char *out;         /* the states' .npy path */
} ExportOptions;

typedef struct {
    size_t n_rows, d;        /* the states array is (n_rows, d) */
    int scale;               /* the chunk size of the rows */
    int n_sequences;
    int n_labels;            /* label arrays written beside the states */
} ExportResult;

/* Writes the states of one recorded site and their row arrays (above).
 * Returns 0, or -1 with an error naming what is missing. */
int export_site(Store *store, const ExportOptions *options, ExportResult *result);

#endif
