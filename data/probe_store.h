/*
 * probe_store.h: the store's probe tables, probe_results and
 * probe_summaries (test_counts is the latest column: NULL in rows written
 * before the store had it), and every SQL
 * statement that touches them.
 *
 * probes/ fits the probes and decides what a row means (probes/probe_run.h);
 * this file only writes and reads rows. A row of probe_results is keyed by
 * (recording, label, site, iteration, scale, control); a row of
 * probe_summaries by (recording, label, site). Doubles are NAN in memory
 * where the store has NULL, both ways.
 *
 * Order. Sites sort as token, latent_in, latent_out, coda (then by name for
 * any other), then by iteration and scale; controls as none, control_task,
 * random_model, position, permuted, lexical. The report orders labels by when they
 * were first probed (the smallest row id of the label).
 */
#ifndef SPIRAL_PROBE_STORE_H
#define SPIRAL_PROBE_STORE_H

#include "store.h"

#define PROBE_LABEL_CAP 64

/* One row of probe_results. */
typedef struct {
    char label[PROBE_LABEL_CAP];
    char site[16];           /* token, latent_in, latent_out, coda */
    char control[16];        /* none, control_task, random_model, position, permuted, lexical */
    int iteration, scale;
    double accuracy, ci_lo, ci_hi, macro_f1, majority;
    int n_train, n_val, n_test;
    int n_classes;           /* classes present in the probe's rows (0 when read back) */
    int n_features;          /* columns of its features (0 when read back) */
    double l2;               /* chosen L2 strength, NAN for a constant predictor */
    int iterations;          /* L-BFGS iterations of the chosen fit */
    int evaluations;         /* objective evaluations over the whole L2 path (0 when read back) */
    int converged;           /* grad_norm <= tolerance */
    double grad_norm;        /* ||grad||_inf at the solution, recomputed */
    double seconds;          /* wall time of the fit */
    unsigned long seed;
    /* the test outcome per test sequence, (n_test_groups, 3) int32 =
     * (sequence, correct, rows) ascending by sequence: written when not
     * NULL, borrowed (the writer's memory), never filled when read back
     * (probe_store_read_counts reads it) */
    const int *test_counts;
    int n_test_groups;
} ProbeResult;

/* One row of probe_summaries. */
typedef struct {
    char label[PROBE_LABEL_CAP];
    char site[16];
    double expected_iteration;  /* NAN if undefined */
    char encoded[1024];         /* JSON list of {"iteration", "scale"} */
} ProbeSummary;

/* ---- writing (probe_run) ---- */

/* Writes rows (n) of the recording in one transaction, replacing rows with
 * the same key. Returns 0 or -1 (nothing written). */
int probe_store_write_results(Store *store, long long recording_id, const ProbeResult *rows,
                              int n);

/* Writes summaries (n) of the recording in one transaction, replacing rows
 * with the same key. */
int probe_store_write_summaries(Store *store, long long recording_id,
                                const ProbeSummary *summaries, int n);

/* Deletes every result (all controls) and summary of each of labels
 * (n_labels) of the recording, in one transaction. */
int probe_store_delete_labels(Store *store, long long recording_id, const char *const *labels,
                              int n_labels);

/* Looks for a result of label on the recording written with a seed other
 * than seed: 1 with *other_seed set, 0 if there is none, -1 on error. */
int probe_store_find_other_seed(Store *store, long long recording_id, const char *label,
                                unsigned long seed, unsigned long *other_seed);

/* 1 if the result of this key is stored, 0 if not, -1 on error. */
int probe_store_result_exists(Store *store, long long recording_id, const char *label,
                              const char *site, int iteration, int scale, const char *control);

/* ---- reading ---- */

/* Every result of label on the recording (all controls) into *rows
 * (malloc'd, *n of them; NULL and 0 if none), ordered by site, iteration,
 * scale and control. */
int probe_store_read_label(Store *store, long long recording_id, const char *label,
                           ProbeResult **rows, int *n);

/* The test_counts of the result of this key: *counts (malloc'd, (*n_groups,
 * 3) int32) or NULL with *n_groups = 0 when the row has none (written
 * before the store had the column) or does not exist. Returns 0 or -1 (a store error, a
 * BLOB whose size is not a multiple of 12 bytes). */
int probe_store_read_counts(Store *store, long long recording_id, const char *label,
                            const char *site, int iteration, int scale, const char *control,
                            int **counts, int *n_groups);

/* The labels probed on the recording, *labels (malloc'd, *n), in the
 * report's order (first probed first). */
int probe_store_list_labels(Store *store, long long recording_id,
                            char (**labels)[PROBE_LABEL_CAP], int *n);

/* A probe as the report shows it: a control 'none' row and, from the rows
 * of the same key, the accuracy of its control task and the accuracy and
 * interval of its random_model and lexical controls (NAN without the row). */
typedef struct {
    ProbeResult probe;
    double control_task_accuracy;
    double random_accuracy, random_lo, random_hi;
    double lexical_accuracy, lexical_lo, lexical_hi;
} ProbeWithControl;

/* The control 'none' results of the recording into *rows (malloc'd, *n of
 * them), ordered by label (first probed first), site, iteration, scale. */
int probe_store_read_probes(Store *store, long long recording_id, ProbeWithControl **rows,
                            int *n);

/* The summaries of the recording into *rows (malloc'd, *n of them), ordered
 * by label (first probed first) and site. An encoded list longer than
 * ProbeSummary.encoded (which spiral never writes) is an error. */
int probe_store_read_summaries(Store *store, long long recording_id, ProbeSummary **rows,
                               int *n);

#endif
