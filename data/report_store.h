/*
 * report_store.h: the store reads of reports/ (the report's runs with
 * their recordings and datasets, and the analysis results its figures
 * draw). Probe results and summaries are read with probe_store.h, a run's
 * metrics curve with analysis_store_metrics (analysis_store.h): each table
 * is read in one place.
 *
 * Each read fills plain structs; strings marked malloc'd belong to the
 * caller (the matching *_free releases them).
 */
#ifndef SPIRAL_REPORT_STORE_H
#define SPIRAL_REPORT_STORE_H

#include "store.h"

#define STORED_NAME_CAP 128

/* A row of runs with its training dataset's name. */
typedef struct {
    long long id;
    char name[STORED_NAME_CAP];
    char kind[16];
    char status[32];
    char *config, *command, *message;   /* malloc'd, "" for NULL */
    long long dataset_id;
    char dataset[STORED_NAME_CAP];      /* "" if unknown */
    long long step;                     /* last checkpointed step */
} StoredRun;

/* The runs named `name` (at most one), or every run by id (name NULL):
 * *runs (malloc'd, *n of them; report_store_runs_free). Returns 0 or -1. */
int report_store_runs(Store *store, const char *name, StoredRun **runs, int *n);
void report_store_runs_free(StoredRun *runs, int n);

/* A recording, as the report lists it. */
typedef struct {
    long long id;
    char dataset[STORED_NAME_CAP];
    char split[16];
    char status[16];
    int n_sequences, seq_len;
} StoredRecording;

/* The run's recording on split, preferring dataset prefer_dataset_id, then
 * the oldest: *found = 0 if it has none. Returns 0 or -1. */
int report_store_recording(Store *store, long long run_id, const char *split, long long prefer_dataset_id,
                           StoredRecording *recording, int *found);

/* A row of datasets, and whether it stores true next-token losses. */
typedef struct {
    long long id;
    char family[32];
    char *params;                       /* JSON (malloc'd) */
    int vocab_size;
    long long n_tokens, n_docs;
    int has_true_nll;
} StoredDataset;

/* The dataset named `name`: *found = 0 if there is none. Returns 0 or -1. */
int report_store_dataset(Store *store, const char *name, StoredDataset *dataset, int *found);

/* An analysis_results row as the figures read it. */
typedef struct {
    int iteration, iteration2;          /* INT_MIN for NULL */
    double value, ci_lo, ci_hi;         /* NaN for NULL */
    int n_data;
    double *data;                       /* (n_data) float64 array (malloc'd), NULL if none */
} StoredAnalysis;

/* The recording's rows of one kind, ordered by iteration, iteration2;
 * run_id > 0 keeps only that run's rows (cka_cross of a pair), 0 keeps
 * all. *rows (malloc'd, *n; report_store_analysis_free). Returns 0 or -1. */
int report_store_analysis(Store *store, long long recording_id, const char *kind, long long run_id,
                          StoredAnalysis **rows, int *n);
void report_store_analysis_free(StoredAnalysis *rows, int n);

#endif
