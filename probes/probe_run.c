/*
 * probe_run.c: every probe of a recording and its controls (see
 * probe_run.h for the method, the controls, the seeds and the threads).
 *
 * The run is organized around per-position label arrays: for each requested
 * label, values (n_seq, L) hold the label of every position of every
 * recorded window, and so do its control-task and permuted versions
 * (probe_labels.h). A site only adds a map from its rows to positions
 * (probe_rows.h), so one fit serves every site, label and control.
 *
 * Flow of probe_run:
 *   find run, dataset, recording; read every window's token index
 *   split the sequences; resolve the labels; list the recorded sites
 *   probe_schedule: for each site and feature source, the probes not yet
 *       in the store are fitted on the pool and written
 *   read every row of the labels back -> report; summaries -> store
 */
#include "probe_run.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "dataset.h"
#include "error.h"
#include "probe_features.h"
#include "probe_fit.h"
#include "probe_labels.h"
#include "probe_schedule.h"
#include "probe_sites.h"
#include "probe_summary.h"
#include "recording_store.h"

#define PROBE_MIN_SEQUENCES 5

/* Control names, index k for bit 1 << k. */
static const char *const control_names[PROBE_N_CONTROLS] = {"control_task", "random_model",
                                                             "position", "permuted", "lexical"};

void probe_options_default(ProbeOptions *o) {
    memset(o, 0, sizeof *o);
    o->split = "test";
    o->seed = 1;
    o->max_train = 20000;
    o->top_n = 16;
    o->controls = PROBE_CONTROL_ALL;
    o->tol = PROBE_DEFAULT_TOL;
    o->max_iter = PROBE_DEFAULT_MAX_ITER;
}

const char *probe_control_name(int bit) {
    for (int k = 0; k < PROBE_N_CONTROLS; k++)
        if (bit == 1 << k) return control_names[k];
    return "none";
}

int probe_control_bit(const char *name) {
    for (int k = 0; k < PROBE_N_CONTROLS; k++)
        if (!strcmp(name, control_names[k]) || (name[0] == 'a' + k && name[1] == '\0'))
            return 1 << k;
    return 0;
}

/* Everything probe_run holds while it works. */
typedef struct {
    Store *store;
    const ProbeOptions *o;
    RecordingInfo info;
    SpiralConfig cfg;
    Dataset ds;
    int n_seq, L, n_labels;
    const char *const *names;
    size_t *index;            /* (n_seq, L) dataset token of each position */
    int *tokens;              /* (n_seq, L) */
    unsigned char *seq_split; /* (n_seq) SEQ_* */
    LabelData *labels;        /* (n_labels) */
    SiteInfo *sites;
    int n_sites, n_geometries, n_lexical_keys;
    int *codes;               /* (n_seq, L) token type of each position (lexical control) */
    int n_types;
    FeatureReader features;
    ProbeResult *fitted;      /* rows written by this call */
    int n_fitted;
} ProbeRun;

/* Reads the token index of every window, and its tokens. */
static int read_windows(ProbeRun *run) {
    size_t n = (size_t)run->n_seq * run->L;
    run->index = malloc(n * sizeof *run->index);
    run->tokens = malloc(n * sizeof *run->tokens);
    if (!run->index || !run->tokens) return spiral_error("out of memory for %zu positions", n);
    for (int s = 0; s < run->n_seq; s++)
        if (recording_read_token_index(run->store, &run->info, s, run->index + (size_t)s * run->L))
            return spiral_error_prefix("recording of run on dataset (%s split)", run->info.split);
    for (size_t i = 0; i < n; i++) {
        if (run->index[i] >= run->ds.n_tokens)
            return spiral_error("recorded token index %zu is outside the dataset (%zu tokens)",
                                run->index[i], run->ds.n_tokens);
        run->tokens[i] = run->ds.tokens[run->index[i]];
    }
    return 0;
}

/* Shuffles the sequences with the seed: 60% train, 20% validation, rest test. */
static int split_sequences(ProbeRun *run) {
    int n = run->n_seq;
    int *order = malloc((size_t)n * sizeof *order);
    run->seq_split = malloc((size_t)n);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!order || !run->seq_split || !rng) {
        free(order);
        if (rng) gsl_rng_free(rng);
        return spiral_error("out of memory splitting %d sequences", n);
    }
    gsl_rng_set(rng, run->o->seed);
    for (int i = 0; i < n; i++) order[i] = i;
    gsl_ran_shuffle(rng, order, (size_t)n, sizeof *order);
    int n_train = n * 3 / 5, n_val = n / 5;
    for (int k = 0; k < n; k++)
        run->seq_split[order[k]] = k < n_train ? SEQ_TRAIN : k < n_train + n_val ? SEQ_VAL : SEQ_TEST;
    free(order);
    gsl_rng_free(rng);
    return 0;
}

/* With replace, deletes every row of the labels (all controls, so no row of
 * another seed survives) and their summaries; without, fails if a label has
 * rows of another seed. */
static int prepare_labels(ProbeRun *run) {
    if (run->o->replace)
        return probe_store_delete_labels(run->store, run->info.id, run->names, run->n_labels);
    for (int l = 0; l < run->n_labels; l++) {
        unsigned long other;
        int found = probe_store_find_other_seed(run->store, run->info.id, run->names[l],
                                                run->o->seed, &other);
        if (found < 0) return -1;
        if (found)
            return spiral_error("label '%s' was probed with seed %lu; use --replace to probe it "
                                "again with seed %lu", run->names[l], other, run->o->seed);
    }
    return 0;
}

/* Appends the rows of src (n) to the report's results. */
static int append_results(ProbeReport *report, const ProbeResult *src, int n) {
    if (n == 0) return 0;
    ProbeResult *grown = realloc(report->results,
                                 (size_t)(report->n_results + n) * sizeof *grown);
    if (!grown) return spiral_error("out of memory reading probe results");
    report->results = grown;
    memcpy(report->results + report->n_results, src, (size_t)n * sizeof *src);
    report->n_results += n;
    return 0;
}

/* Fills the report from the store: every row of the labels (with the
 * evaluations and classes of the rows fitted now), the summaries, which it
 * also writes. */
static int build_report(ProbeRun *run, ProbeReport *report) {
    for (int l = 0; l < run->n_labels; l++) {
        ProbeResult *rows;
        int n;
        if (probe_store_read_label(run->store, run->info.id, run->names[l], &rows, &n)) return -1;
        int status = append_results(report, rows, n);
        free(rows);
        if (status) return -1;
    }
    for (int i = 0; i < report->n_results; i++) {
        ProbeResult *r = &report->results[i];
        for (int j = 0; j < run->n_fitted; j++) {
            const ProbeResult *now = &run->fitted[j];
            if (now->iteration == r->iteration && now->scale == r->scale &&
                !strcmp(now->label, r->label) && !strcmp(now->site, r->site) &&
                !strcmp(now->control, r->control)) {
                r->evaluations = now->evaluations;
                r->n_classes = now->n_classes;
                r->n_features = now->n_features;
            }
        }
    }
    report->fitted_now = run->n_fitted;
    for (int j = 0; j < run->n_fitted; j++) report->evaluations += run->fitted[j].evaluations;
    if (probe_report_judge(report, run->store) ||
        probe_summarize(report, run->names, run->n_labels))
        return -1;
    return probe_store_write_summaries(run->store, run->info.id, report->summaries,
                                       report->n_summaries);
}

/* The lexical control's windows per site and the token types of the
 * windows, cut so that window x types stays within
 * PROBE_LEXICAL_MAX_COLUMNS. */
static int prepare_lexical(ProbeRun *run) {
    probe_sites_lexical(run->sites, run->n_sites, run->L, run->o->lexical_window,
                        &run->n_lexical_keys);
    int widest = 1;
    for (int k = 0; k < run->n_sites; k++)
        if (run->sites[k].lexical_window > widest) widest = run->sites[k].lexical_window;
    int max_types = PROBE_LEXICAL_MAX_COLUMNS / widest;
    size_t n = (size_t)run->n_seq * run->L;
    run->codes = malloc(n * sizeof *run->codes);
    if (!run->codes) return spiral_error("out of memory for %zu token types", n);
    return probe_lexical_types(run->codes, &run->n_types, run->tokens, n,
                               max_types < 2 ? 2 : max_types);
}

/* Fits and writes the probes not yet stored; counts them first, for the
 * progress total. */
static int fit_pending(ProbeRun *run, ProbeReport *report) {
    ProbeShared shared = {run->n_seq, run->L, run->seq_split, run->o->seed,
                          run->o->max_train, run->o->tol, run->o->max_iter};
    run->features = (FeatureReader){run->store, &run->info, &run->cfg, run->tokens,
                                    run->n_seq, run->L, run->o->seed + 5, run->codes,
                                    run->n_types, run->sites, run->n_sites, NULL};
    ProbeSchedule schedule = {run->store, run->info.id, run->sites, run->n_sites,
                              run->n_geometries, run->n_lexical_keys, run->labels, run->n_labels,
                              run->o->controls, run->o->seed, &shared, &run->features,
                              run->o->progress};
    int pending;
    if (probe_schedule_count(&schedule, &pending)) return -1;
    return probe_schedule_run(&schedule, pending, &run->fitted, &run->n_fitted,
                              &report->skipped);
}

/* Checks the options; 0 or -1 with an error naming the bad one. */
static int check_options(int n_labels, const ProbeOptions *o) {
    if (n_labels < 1) return spiral_error("no label to probe (--label)");
    if (o->max_train < 2) return spiral_error("--max-examples must be >= 2, got %d", o->max_train);
    if (o->top_n < 1) return spiral_error("--top must be >= 1, got %d", o->top_n);
    if (!(o->tol > 0) || o->max_iter < 1)
        return spiral_error("probe tolerance must be > 0 and max_iter >= 1 (got %g, %d)", o->tol,
                            o->max_iter);
    if (o->controls & ~PROBE_CONTROL_ALL) return spiral_error("unknown control bits %#x", o->controls);
    if (o->lexical_window < 0)
        return spiral_error("--lexical-window must be >= 1 (or 0: automatic), got %d",
                            o->lexical_window);
    return 0;
}

/* Finds the run's config, the dataset and a complete recording of enough
 * sequences whose width matches the config. */
static int open_recording(ProbeRun *run, const char *run_name, const char *dataset) {
    Store *store = run->store;
    const ProbeOptions *o = run->o;
    RunRow run_row = {0};
    int status = -1;
    if (store_run_find(store, run_name, &run_row)) return -1;
    char source[1400];
    snprintf(source, sizeof source, "%s: run %s", store->path, run_name);
    if (config_parse(&run->cfg, run_row.config, source)) goto done;
    if (store_dataset_load(store, dataset, &run->ds, NULL)) goto done;
    if (recording_find(store, run_name, dataset, o->split, &run->info)) {
        if (strstr(spiral_last_error(), "has no recording"))
            spiral_error("run %s has no recording on dataset %s (%s split); record it first: "
                         "spiral record --run %s --data %s --split %s --store %s", run_name,
                         dataset, o->split, run_name, dataset, o->split, store->path);
        goto done;
    }
    run->n_seq = run->info.n_sequences;
    run->L = run->info.seq_len;
    if (strcmp(run->info.status, "done"))
        spiral_error("the recording of run %s on %s (%s split) is incomplete (status %s): run "
                     "'spiral record' again to complete it", run_name, dataset, o->split,
                     run->info.status);
    else if ((size_t)run->n_seq * run->L > INT_MAX)
        spiral_error("the recording has %d sequences of %d tokens: more rows than a probe can hold",
                     run->n_seq, run->L);
    else if (run->n_seq < PROBE_MIN_SEQUENCES)
        spiral_error("the recording has %d sequences; probes need at least %d (record with "
                     "--sequences)", run->n_seq, PROBE_MIN_SEQUENCES);
    else if (run->info.d_model != run->cfg.d_model)
        spiral_error("the recording has d_model %d, run %s's config %d", run->info.d_model,
                     run_name, run->cfg.d_model);
    else
        status = 0;
done:
    store_run_free(&run_row);
    return status;
}

static void free_run(ProbeRun *run) {
    probe_features_close(&run->features);
    free(run->index);
    free(run->tokens);
    free(run->codes);
    free(run->seq_split);
    probe_labels_free(run->labels, run->n_labels);
    probe_sites_free(run->sites, run->n_sites);
    free(run->fitted);
    dataset_free(&run->ds);
}

int probe_run(Store *store, const char *run_name, const char *dataset,
              const char *const *labels, int n_labels, const ProbeOptions *o,
              ProbeReport *report) {
    ProbeRun run;
    double start = seconds_now();
    memset(&run, 0, sizeof run);
    memset(report, 0, sizeof *report);
    run.store = store;
    run.o = o;
    run.names = labels;
    if (check_options(n_labels, o)) return -1;
    int status = -1;
    if (open_recording(&run, run_name, dataset)) goto done;
    run.n_labels = n_labels;
    report->recording_id = run.info.id;
    report->n_sequences = run.n_seq;
    report->seq_len = run.L;
    RecordedWindows windows = {&run.ds, NULL, NULL, run.n_seq, run.L, run.info.split};
    if (read_windows(&run) || split_sequences(&run)) goto done;
    windows.index = run.index;
    windows.tokens = run.tokens;
    if (probe_labels_build(labels, n_labels, &windows, o, &run.labels) ||
        probe_sites_list(store, &run.info, &run.cfg, &run.sites, &run.n_sites,
                         &run.n_geometries) ||
        prepare_lexical(&run) || prepare_labels(&run) || fit_pending(&run, report) || build_report(&run, report))
        goto done;
    status = 0;
done:
    report->seconds = seconds_now() - start;
    free_run(&run);
    if (status) probe_report_free(report);
    return status;
}
