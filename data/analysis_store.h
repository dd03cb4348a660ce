/*
 * analysis_store.h: the store's side of analysis/: writing the
 * analysis_results table (its rows are listed in analysis/analyze.h), and
 * the reads the analyses need besides the recorded states: a recording's
 * attention distances and status, a run's metrics curve.
 *
 * Results are written through an AnalysisWriter: one transaction, opened
 * for one (recording, run) pair, that first deletes the rows it replaces
 * and then inserts row by row; ending it commits, or rolls back so that a
 * failure leaves the previous results in place.
 */
#ifndef SPIRAL_ANALYSIS_STORE_H
#define SPIRAL_ANALYSIS_STORE_H

#include <limits.h>
#include <stddef.h>

#include "store.h"

/* An integer key stored as NULL (iteration of a prelude layer, ...). */
enum { ANALYSIS_NULL = INT_MIN };

/* One row of analysis_results. NULL columns: ANALYSIS_NULL integers, a
 * NULL block, NaN reals, data NULL. */
typedef struct {
    const char *kind;          /* "attn_distance", "cka", ... */
    int iteration, iteration2;
    const char *block;         /* "pre", "loop", "post", "token" */
    int layer, head;
    double value, ci_lo, ci_hi;
    const double *data;        /* (n_data) float64 array, stored little-endian */
    int n_data;
} AnalysisRow;

/* A row with only its kind and keys set, every value NULL. */
AnalysisRow analysis_row(const char *kind, int iteration, int iteration2, const char *block, int layer,
                         int head);

typedef struct AnalysisWriter AnalysisWriter;

/* Starts a transaction writing rows of (recording_id, run_id). Returns 0 and
 * *writer (analysis_writer_end frees it), or -1. */
int analysis_writer_begin(AnalysisWriter **writer, Store *store, long long recording_id, long long run_id);
/* Deletes the recording's rows of every kind analyze_recording writes (all
 * but cka_cross), which this transaction replaces. */
int analysis_writer_replace_recording(AnalysisWriter *writer);
/* Deletes the cka_cross rows of this (recording, run) pair. */
int analysis_writer_replace_cross(AnalysisWriter *writer);
/* Inserts one row. Returns 0, or -1 naming its kind. */
int analysis_writer_put(AnalysisWriter *writer, const AnalysisRow *row);
/* Rows inserted so far. */
long long analysis_writer_rows(const AnalysisWriter *writer);
/* Commits (status 0) or rolls back (status != 0, or a failed commit) and
 * frees the writer. Returns 0 if committed, else -1. */
int analysis_writer_end(AnalysisWriter *writer, int status);

/* A recording's attention distances (its JSON array "[4,16,64]", at most
 * max of them) into distances (*n_distances), and its status ("done",
 * "recording") into status. Returns 0, or -1 (no such recording, or a
 * distances column that is not such an array). */
int analysis_store_recording_meta(Store *store, long long recording_id, int *distances, int max,
                                  int *n_distances, char *status, size_t status_size);

/* Every metrics row of a run, by step: *rows (malloc'd, *n of them; NULL if
 * none). loss and val_loss are NaN where NULL (val_loss at steps without an
 * evaluation). Returns 0 or -1. */
int analysis_store_metrics(Store *store, long long run_id, MetricRow **rows, int *n);

#endif
