/*
 * report_data.c: reads the runs, datasets and probe results a report shows
 * (see report_data.h).
 */
#include "report_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dataset.h"
#include "error.h"
#include "eval_run.h"
#include "grow.h"
#include "plot.h"
#include "probe_store.h"
#include "report_store.h"
#include "steps.h"

int report_site_rank(const char *site) {
    if (!strcmp(site, "token")) return 0;
    if (!strcmp(site, "latent_in")) return 1;
    if (!strcmp(site, "latent_out")) return 2;
    if (!strcmp(site, "coda")) return 3;
    return 4;
}

/* Fills run from its stored row (taking its strings) and finds its
 * recording on the report's split. */
static int read_run(Store *store, StoredRun *row, ReportRun *run, const char *split) {
    run->id = row->id;
    snprintf(run->name, sizeof run->name, "%s", row->name);
    snprintf(run->kind, sizeof run->kind, "%s", row->kind);
    snprintf(run->status, sizeof run->status, "%s", row->status);
    run->config = row->config;
    run->command = row->command;
    run->message = row->message;
    row->config = row->command = row->message = NULL;
    run->dataset_id = row->dataset_id;
    snprintf(run->dataset, sizeof run->dataset, "%s", row->dataset);
    run->step = row->step;
    /* the loop steps: spiral and looped iterate the core T times; a dense
     * run's core layers are its steps */
    run->has_model = config_parse(&run->model, run->config, run->name) == 0;
    if (run->has_model) {
        run->n_steps = loop_steps(&run->model);
        for (int t = 0; t < run->n_steps && t < SPIRAL_MAX_ITERS; t++)
            run->step_g[t] = step_chunk_size(&run->model, t);
    }
    StoredRecording rec;
    int found;
    if (report_store_recording(store, run->id, split, run->dataset_id, &rec, &found)) return -1;
    if (found) {
        run->recording_id = rec.id;
        snprintf(run->rec_dataset, sizeof run->rec_dataset, "%s", rec.dataset);
        snprintf(run->rec_split, sizeof run->rec_split, "%s", rec.split);
        snprintf(run->rec_status, sizeof run->rec_status, "%s", rec.status);
        run->rec_sequences = rec.n_sequences;
        run->rec_seq_len = rec.seq_len;
    }
    return 0;
}

/* Reads the selected runs (all of them if n_names = 0). */
static int load_runs(ReportData *data, Store *store, const char *const *names, int n_names) {
    int cap = 0;
    for (int i = 0; i < (n_names ? n_names : 1); i++) {
        for (int j = 0; j < i; j++)
            if (!strcmp(names[j], names[i])) return spiral_error("run '%s' is listed twice", names[i]);
        StoredRun *rows;
        int n, status = 0;
        if (report_store_runs(store, n_names ? names[i] : NULL, &rows, &n)) return -1;
        if (n_names && n == 0) status = spiral_error("%s: no run named '%s'", store->path, names[i]);
        for (int k = 0; k < n && status == 0; k++) {
            status = grow_array((void **)&data->runs, data->n_runs, &cap, sizeof *data->runs);
            if (status) break;
            ReportRun *run = &data->runs[data->n_runs++];
            memset(run, 0, sizeof *run);
            run->color = (data->n_runs - 1) % PLOT_N_STYLES + 1;  /* plot.h: 10 colors x 4 dashes */
            status = read_run(store, &rows[k], run, data->split);
        }
        report_store_runs_free(rows, n);
        if (status) return -1;
    }
    return 0;
}

/* Adds dataset `name` (if not there yet) with its entropy floors. */
static int add_dataset(ReportData *data, Store *store, const char *name, int *cap) {
    if (!name[0] || report_data_dataset(data, name) >= 0) return 0;
    StoredDataset row;
    int found;
    if (report_store_dataset(store, name, &row, &found)) return -1;
    if (!found) return 0;
    if (grow_array((void **)&data->datasets, data->n_datasets, cap, sizeof *data->datasets)) {
        free(row.params);
        return -1;
    }
    ReportDataset *ds = &data->datasets[data->n_datasets++];
    memset(ds, 0, sizeof *ds);
    ds->id = row.id;
    snprintf(ds->name, sizeof ds->name, "%s", name);
    snprintf(ds->family, sizeof ds->family, "%s", row.family);
    ds->params = row.params;
    ds->vocab_size = row.vocab_size;
    ds->n_tokens = row.n_tokens;
    ds->n_docs = row.n_docs;
    ds->floor_val = ds->floor_test = NAN;
    if (row.has_true_nll) {
        /* the floor is the mean true_nll over a split (dataset_true_nll_mean) */
        Dataset full;
        if (store_dataset_load(store, name, &full, NULL)) return -1;
        ds->floor_val = dataset_true_nll_mean(&full, SPLIT_VAL, NULL);
        ds->floor_test = dataset_true_nll_mean(&full, SPLIT_TEST, NULL);
        dataset_free(&full);
    }
    return 0;
}

/* Index of a label in data->labels, added if new; -1 if out of memory. */
static int label_index(ReportData *data, const char *label, int *cap) {
    for (int i = 0; i < data->n_labels; i++)
        if (!strcmp(data->labels[i], label)) return i;
    if (grow_array((void **)&data->labels, data->n_labels, cap, sizeof *data->labels)) return -1;
    snprintf(data->labels[data->n_labels], REPORT_LABEL_CAP, "%s", label);
    return data->n_labels++;
}

/* 1 if the JSON list `encoded` holds {"iteration": t, "scale": g}. */
static int encoded_at(const char *encoded, int iteration, int scale) {
    json_error_t error;
    json_t *list = json_loads(encoded, 0, &error);
    int found = 0;
    if (json_is_array(list))
        for (size_t i = 0; i < json_array_size(list); i++) {
            json_t *item = json_array_get(list, i);
            if (json_integer_value(json_object_get(item, "iteration")) == iteration &&
                json_integer_value(json_object_get(item, "scale")) == scale)
                found = 1;
        }
    json_decref(list);
    return found;
}

/* The probe rows (control 'none') and summaries of run r's recording. */
static int load_run_probes(ReportData *data, Store *store, int r, int *probe_cap, int *label_cap,
                           int *summary_cap) {
    ProbeWithControl *probes = NULL;
    ProbeSummary *summaries = NULL;
    int n_probes = 0, n_summaries = 0, status = 0;
    if (probe_store_read_probes(store, data->runs[r].recording_id, &probes, &n_probes) ||
        probe_store_read_summaries(store, data->runs[r].recording_id, &summaries, &n_summaries))
        status = -1;
    for (int i = 0; i < n_probes && status == 0; i++) {
        const ProbeResult *row = &probes[i].probe;
        if ((status = grow_array((void **)&data->probes, data->n_probes, probe_cap, sizeof *data->probes))) break;
        ReportProbe *p = &data->probes[data->n_probes];
        memset(p, 0, sizeof *p);
        p->run = r;
        p->label = label_index(data, row->label, label_cap);
        if (p->label < 0) {
            status = spiral_error("out of memory reading probe results");
            break;
        }
        snprintf(p->site, sizeof p->site, "%s", row->site);
        p->iteration = row->iteration;
        p->scale = row->scale;
        p->accuracy = row->accuracy;
        p->ci_lo = row->ci_lo;
        p->ci_hi = row->ci_hi;
        p->majority = row->majority;
        p->n_test = row->n_test;
        p->control_task = probes[i].control_task_accuracy;
        p->selectivity = p->accuracy - p->control_task;
        p->encoded = -1;
        data->n_probes++;
    }
    int first_summary = data->n_summaries;
    for (int i = 0; i < n_summaries && status == 0; i++) {
        const ProbeSummary *row = &summaries[i];
        if ((status = grow_array((void **)&data->summaries, data->n_summaries, summary_cap, sizeof *data->summaries)))
            break;
        ReportSummary *s = &data->summaries[data->n_summaries];
        memset(s, 0, sizeof *s);
        s->run = r;
        s->label = label_index(data, row->label, label_cap);
        if (s->label < 0) {
            status = spiral_error("out of memory reading probe summaries");
            break;
        }
        snprintf(s->site, sizeof s->site, "%s", row->site);
        s->expected_iteration = row->expected_iteration;
        s->encoded = strdup(row->encoded);
        if (!s->encoded) {
            status = spiral_error("out of memory reading probe summaries");
            break;
        }
        data->n_summaries++;
    }
    /* where each probe counts as encoded, from its (label, site) summary */
    for (int i = 0; i < data->n_probes && status == 0; i++) {
        ReportProbe *p = &data->probes[i];
        if (p->run != r) continue;
        for (int s = first_summary; s < data->n_summaries; s++)
            if (data->summaries[s].label == p->label && !strcmp(data->summaries[s].site, p->site))
                p->encoded = encoded_at(data->summaries[s].encoded, p->iteration, p->scale);
    }
    free(probes);
    free(summaries);
    return status;
}

/* The probe rows and summaries of each run's recording. */
static int load_probes(ReportData *data, Store *store) {
    int probe_cap = 0, label_cap = 0, summary_cap = 0;
    for (int r = 0; r < data->n_runs; r++)
        if (data->runs[r].recording_id &&
            load_run_probes(data, store, r, &probe_cap, &label_cap, &summary_cap))
            return -1;
    return 0;
}

/* The floor and the n-gram baselines over run r's validation targets, reusing an earlier run's when
 * they validate on the same targets. */
static int load_val_floor(ReportData *data, Store *store, int r) {
    ReportRun *run = &data->runs[r];
    run->val_floor = run->val_bigram = run->val_trigram = NAN;
    if (!run->has_model || report_data_dataset(data, run->dataset) < 0) return 0;
    for (int q = 0; q < r; q++)
        if (data->runs[q].has_model && eval_run_same_targets(run->config, data->runs[q].config)) {
            run->val_floor = data->runs[q].val_floor;
            run->val_bigram = data->runs[q].val_bigram;
            run->val_trigram = data->runs[q].val_trigram;
            return 0;
        }
    EvalReference ref;
    if (eval_run_reference(&ref, store, run->config, run->name)) return -1;
    run->val_floor = ref.floor;
    run->val_bigram = ref.bigram;
    run->val_trigram = ref.trigram;
    return 0;
}

int report_data_load(ReportData *data, Store *store, const char *const *names, int n_names,
                     const char *split) {
    memset(data, 0, sizeof *data);
    snprintf(data->store_path, sizeof data->store_path, "%s", store->path);
    snprintf(data->split, sizeof data->split, "%s", split ? split : "test");
    int cap = 0;
    if (load_runs(data, store, names, n_names)) goto fail;
    for (int r = 0; r < data->n_runs; r++)
        if (add_dataset(data, store, data->runs[r].dataset, &cap) ||
            add_dataset(data, store, data->runs[r].rec_dataset, &cap))
            goto fail;
    for (int r = 0; r < data->n_runs; r++)
        if (load_val_floor(data, store, r)) goto fail;
    if (load_probes(data, store)) goto fail;
    return 0;
fail:
    report_data_free(data);
    return -1;
}

void report_data_free(ReportData *data) {
    for (int r = 0; data->runs && r < data->n_runs; r++) {
        free(data->runs[r].config);
        free(data->runs[r].command);
        free(data->runs[r].message);
    }
    for (int d = 0; data->datasets && d < data->n_datasets; d++) free(data->datasets[d].params);
    for (int s = 0; data->summaries && s < data->n_summaries; s++) free(data->summaries[s].encoded);
    free(data->runs);
    free(data->datasets);
    free(data->labels);
    free(data->probes);
    free(data->summaries);
    memset(data, 0, sizeof *data);
}

int report_data_dataset(const ReportData *data, const char *name) {
    for (int d = 0; d < data->n_datasets; d++)
        if (!strcmp(data->datasets[d].name, name)) return d;
    return -1;
}
