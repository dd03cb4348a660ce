/*
 * report_data.h: what a report reads from the store, read once and shared
 * by the figures (figure_*.c) and the tables (report_sections.c).
 *
 * Runs: the ones named (in that order) or every run of the store (by id).
 * Each gets a color index (run i of the report is color i in every figure)
 * and, for the probe and analysis figures, ONE recording: the run's
 * recording on the requested split (default test), preferring the run's
 * training dataset, then the oldest. Probe and analysis rows of other
 * recordings are not shown.
 *
 * Probes: the rows of probe_results with control 'none' of those
 * recordings, each with its control task's accuracy (control =
 * 'control_task', same label, site, iteration and scale) and selectivity =
 * accuracy - control task accuracy (Hewitt & Liang 2019), and whether the
 * label counts as encoded there: 1 if probe_summaries lists the
 * (iteration, scale) in its `encoded` JSON, 0 if the summary exists and does
 * not, -1 without a summary. Sorted by run, label (labels in order of first
 * appearance in probe_results), site (token, latent_in, latent_out, coda),
 * iteration, scale.
 *
 * Datasets: those the runs train on or were recorded on, with the entropy
 * floor (mean true_nll, data/dataset.h) over every token of the val and
 * test splits where the dataset has true_nll. Each run also gets the floor
 * over exactly the targets its validation loss is measured on
 * (eval_run_reference), which is the one its loss is compared with.
 */
#ifndef SPIRAL_REPORT_DATA_H
#define SPIRAL_REPORT_DATA_H

#include "config.h"
#include "store.h"

#define REPORT_NAME_CAP 128
#define REPORT_LABEL_CAP 64

typedef struct {
    long long id;
    char name[REPORT_NAME_CAP];
    char kind[16];                  /* spiral, looped, dense */
    char status[32];
    char *config, *command, *message;  /* runs.config, .command, .message (malloc'd, "" if NULL) */
    long long dataset_id;
    char dataset[REPORT_NAME_CAP];  /* training dataset ("" if unknown) */
    long long step;                 /* runs.step: last checkpointed step */
    int color;                      /* 1-based gnuplot linetype */
    int has_model;                  /* config parsed into model */
    SpiralConfig model;
    int n_steps;                    /* loop steps T (dense: n_loop core layers) */
    int step_g[SPIRAL_MAX_ITERS];   /* chunk size of each step (dense: 1) */
    /* the recording used for probes and analyses; recording_id 0 if none */
    long long recording_id;
    char rec_dataset[REPORT_NAME_CAP];
    char rec_split[16];
    char rec_status[16];
    int rec_sequences, rec_seq_len;
    /* the entropy floor over the targets of the run's validation windows
     * (data/eval_targets.h), NAN where unknown */
    double val_floor;
    double val_bigram, val_trigram;  /* n-gram baselines on the same targets */
} ReportRun;

typedef struct {
    long long id;
    char name[REPORT_NAME_CAP];
    char family[32];
    char *params;                   /* JSON (malloc'd) */
    int vocab_size;
    long long n_tokens, n_docs;
    double floor_val, floor_test;   /* entropy floors, NAN if unknown */
} ReportDataset;

typedef struct {
    int run;                        /* index into ReportData.runs */
    int label;                      /* index into ReportData.labels */
    char site[16];
    int iteration, scale;
    double accuracy, ci_lo, ci_hi, majority;
    int n_test;
    double control_task;            /* NAN without a control_task row */
    double selectivity;             /* accuracy - control_task, NAN without it */
    int encoded;                    /* 1, 0, or -1 (no summary) */
} ReportProbe;

typedef struct {
    int run, label;
    char site[16];
    double expected_iteration;      /* NAN if undefined */
    char *encoded;                  /* JSON list as stored (malloc'd) */
} ReportSummary;

typedef struct {
    char store_path[1024];
    char split[16];
    int n_runs;
    ReportRun *runs;
    int n_datasets;
    ReportDataset *datasets;
    int n_labels;
    char (*labels)[REPORT_LABEL_CAP];
    int n_probes;
    ReportProbe *probes;
    int n_summaries;
    ReportSummary *summaries;
} ReportData;

/* Reads the runs `names` (n_names of them; n_names = 0: every run) and
 * what belongs to them. split: the recordings' split ("test" if NULL).
 * Returns 0, or -1 (an unknown run, named with the store; a store error).
 * On failure *data is empty. */
int report_data_load(ReportData *data, Store *store, const char *const *names, int n_names,
                     const char *split);
void report_data_free(ReportData *data);

/* Index of the dataset named `name` in data, or -1. */
int report_data_dataset(const ReportData *data, const char *name);

/* The site order of tables and figures: token 0, latent_in 1,
 * latent_out 2, coda 3, anything else 4. */
int report_site_rank(const char *site);

#endif
