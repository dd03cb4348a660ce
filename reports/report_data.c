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
#include "steps.h"

/* Fails with the store's message. */
static int data_fail(Store *store, const char *what) {
    return spiral_error("%s: %s: %s", store->path, what, sqlite3_errmsg(store->db));
}

/* Copies a text column into a fixed buffer ("" for NULL). */
static void column_copy(char *out, size_t size, sqlite3_stmt *stmt, int column) {
    const unsigned char *text = sqlite3_column_text(stmt, column);
    snprintf(out, size, "%s", text ? (const char *)text : "");
}

/* strdup of a text column ("" for NULL). */
static char *column_dup(sqlite3_stmt *stmt, int column) {
    const unsigned char *text = sqlite3_column_text(stmt, column);
    return strdup(text ? (const char *)text : "");
}

/* A double column, NAN for NULL. */
static double column_real(sqlite3_stmt *stmt, int column) {
    return sqlite3_column_type(stmt, column) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, column);
}

/* Grows an array of `size`-byte items to hold n + 1; 0 or -1. */
static int grow(void **items, int n, int *cap, size_t size) {
    if (n < *cap) return 0;
    int cap2 = *cap ? 2 * *cap : 16;
    void *p = realloc(*items, (size_t)cap2 * size);
    if (!p) return spiral_error("out of memory reading the store for the report");
    *items = p;
    *cap = cap2;
    return 0;
}

int report_site_rank(const char *site) {
    if (!strcmp(site, "token")) return 0;
    if (!strcmp(site, "latent_in")) return 1;
    if (!strcmp(site, "latent_out")) return 2;
    if (!strcmp(site, "coda")) return 3;
    return 4;
}

static const char run_columns[] =
    "SELECT r.id, r.name, r.kind, r.status, r.config, r.command, r.message, r.dataset_id,"
    " coalesce(d.name, ''), r.step FROM runs r LEFT JOIN datasets d ON d.id = r.dataset_id";

/* Fills run from a row of run_columns and finds its recording. */
static int read_run(Store *store, sqlite3_stmt *stmt, ReportRun *run, const char *split) {
    run->id = sqlite3_column_int64(stmt, 0);
    column_copy(run->name, sizeof run->name, stmt, 1);
    column_copy(run->kind, sizeof run->kind, stmt, 2);
    column_copy(run->status, sizeof run->status, stmt, 3);
    run->config = column_dup(stmt, 4);
    run->command = column_dup(stmt, 5);
    run->message = column_dup(stmt, 6);
    run->dataset_id = sqlite3_column_int64(stmt, 7);
    column_copy(run->dataset, sizeof run->dataset, stmt, 8);
    run->step = sqlite3_column_int64(stmt, 9);
    if (!run->config || !run->command || !run->message)
        return spiral_error("out of memory reading run %s", run->name);
    /* the loop steps: spiral and looped iterate the core T times; a dense
     * run's core layers are its steps */
    run->has_model = config_parse(&run->model, run->config, run->name) == 0;
    if (run->has_model) {
        run->n_steps = loop_steps(&run->model);
        for (int t = 0; t < run->n_steps && t < SPIRAL_MAX_ITERS; t++)
            run->step_g[t] = step_chunk_size(&run->model, t);
    }
    sqlite3_stmt *rec;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT r.id, d.name, r.split, r.status, r.n_sequences, r.seq_len"
                           " FROM recordings r JOIN datasets d ON d.id = r.dataset_id"
                           " WHERE r.run_id = ? AND r.split = ? ORDER BY (r.dataset_id = ?) DESC, r.id"
                           " LIMIT 1", -1, &rec, NULL) != SQLITE_OK)
        return data_fail(store, "reading recordings");
    sqlite3_bind_int64(rec, 1, run->id);
    sqlite3_bind_text(rec, 2, split, -1, SQLITE_STATIC);
    sqlite3_bind_int64(rec, 3, run->dataset_id);
    if (sqlite3_step(rec) == SQLITE_ROW) {
        run->recording_id = sqlite3_column_int64(rec, 0);
        column_copy(run->rec_dataset, sizeof run->rec_dataset, rec, 1);
        column_copy(run->rec_split, sizeof run->rec_split, rec, 2);
        column_copy(run->rec_status, sizeof run->rec_status, rec, 3);
        run->rec_sequences = sqlite3_column_int(rec, 4);
        run->rec_seq_len = sqlite3_column_int(rec, 5);
    }
    sqlite3_finalize(rec);
    return 0;
}

/* Reads the selected runs (all of them if n_names = 0). */
static int load_runs(ReportData *data, Store *store, const char *const *names, int n_names) {
    sqlite3_stmt *stmt;
    char sql[512];
    int cap = 0;
    snprintf(sql, sizeof sql, "%s %s", run_columns, n_names ? "WHERE r.name = ?" : "ORDER BY r.id");
    if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return data_fail(store, "reading runs");
    for (int i = 0; i < (n_names ? n_names : 1); i++) {
        if (n_names) {
            for (int j = 0; j < i; j++)
                if (!strcmp(names[j], names[i])) {
                    sqlite3_finalize(stmt);
                    return spiral_error("run '%s' is listed twice", names[i]);
                }
            sqlite3_reset(stmt);
            sqlite3_bind_text(stmt, 1, names[i], -1, SQLITE_STATIC);
        }
        int found = 0;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            if (grow((void **)&data->runs, data->n_runs, &cap, sizeof *data->runs)) goto fail;
            ReportRun *run = &data->runs[data->n_runs++];
            memset(run, 0, sizeof *run);
            run->color = (data->n_runs - 1) % 10 + 1;
            if (read_run(store, stmt, run, data->split)) goto fail;
            found = 1;
        }
        if (n_names && !found) {
            sqlite3_finalize(stmt);
            return spiral_error("%s: no run named '%s'", store->path, names[i]);
        }
    }
    sqlite3_finalize(stmt);
    return 0;
fail:
    sqlite3_finalize(stmt);
    return -1;
}

/* Adds dataset `name` (if not there yet) with its entropy floors. */
static int add_dataset(ReportData *data, Store *store, const char *name, int *cap) {
    if (!name[0] || report_data_dataset(data, name) >= 0) return 0;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT d.id, d.family, d.params, d.vocab_size, d.n_tokens, d.n_docs,"
                           " a.true_nll IS NOT NULL FROM datasets d"
                           " LEFT JOIN dataset_arrays a ON a.dataset_id = d.id WHERE d.name = ?",
                           -1, &stmt, NULL) != SQLITE_OK)
        return data_fail(store, "reading datasets");
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        return 0;
    }
    if (grow((void **)&data->datasets, data->n_datasets, cap, sizeof *data->datasets)) {
        sqlite3_finalize(stmt);
        return -1;
    }
    ReportDataset *ds = &data->datasets[data->n_datasets++];
    memset(ds, 0, sizeof *ds);
    ds->id = sqlite3_column_int64(stmt, 0);
    snprintf(ds->name, sizeof ds->name, "%s", name);
    column_copy(ds->family, sizeof ds->family, stmt, 1);
    ds->params = column_dup(stmt, 2);
    ds->vocab_size = sqlite3_column_int(stmt, 3);
    ds->n_tokens = sqlite3_column_int64(stmt, 4);
    ds->n_docs = sqlite3_column_int64(stmt, 5);
    int has_nll = sqlite3_column_int(stmt, 6);
    sqlite3_finalize(stmt);
    ds->floor_val = ds->floor_test = NAN;
    if (!ds->params) return spiral_error("out of memory reading dataset %s", name);
    if (has_nll) {
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
    if (grow((void **)&data->labels, data->n_labels, cap, sizeof *data->labels)) return -1;
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

/* The probe rows (control 'none') and summaries of each run's recording. */
static int load_probes(ReportData *data, Store *store) {
    int probe_cap = 0, label_cap = 0, summary_cap = 0;
    sqlite3_stmt *stmt = NULL, *sum = NULL;
    if (sqlite3_prepare_v2(store->db,
            "SELECT p.label, p.site, p.iteration, p.scale, p.accuracy, p.ci_lo, p.ci_hi,"
            " p.majority, p.n_test, c.accuracy"
            " FROM probe_results p LEFT JOIN probe_results c ON c.recording_id = p.recording_id"
            " AND c.label = p.label AND c.site = p.site AND c.iteration = p.iteration"
            " AND c.scale = p.scale AND c.control = 'control_task'"
            " WHERE p.recording_id = ? AND p.control = 'none'"
            " ORDER BY (SELECT min(q.id) FROM probe_results q WHERE q.recording_id = p.recording_id"
            " AND q.label = p.label), CASE p.site WHEN 'token' THEN 0 WHEN 'latent_in' THEN 1"
            " WHEN 'latent_out' THEN 2 WHEN 'coda' THEN 3 ELSE 4 END, p.site, p.iteration, p.scale",
            -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(store->db,
            "SELECT s.label, s.site, s.expected_iteration, s.encoded FROM probe_summaries s"
            " WHERE s.recording_id = ? ORDER BY (SELECT min(q.id) FROM probe_results q"
            " WHERE q.recording_id = s.recording_id AND q.label = s.label), CASE s.site WHEN 'token'"
            " THEN 0 WHEN 'latent_in' THEN 1 WHEN 'latent_out' THEN 2 WHEN 'coda' THEN 3 ELSE 4 END, s.site",
            -1, &sum, NULL) != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return data_fail(store, "reading probe results");
    }
    for (int r = 0; r < data->n_runs; r++) {
        if (!data->runs[r].recording_id) continue;
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, data->runs[r].recording_id);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            if (grow((void **)&data->probes, data->n_probes, &probe_cap, sizeof *data->probes)) goto fail;
            ReportProbe *p = &data->probes[data->n_probes];
            memset(p, 0, sizeof *p);
            p->run = r;
            p->label = label_index(data, (const char *)sqlite3_column_text(stmt, 0), &label_cap);
            if (p->label < 0) {
                spiral_error("out of memory reading probe results");
                goto fail;
            }
            column_copy(p->site, sizeof p->site, stmt, 1);
            p->iteration = sqlite3_column_int(stmt, 2);
            p->scale = sqlite3_column_int(stmt, 3);
            p->accuracy = column_real(stmt, 4);
            p->ci_lo = column_real(stmt, 5);
            p->ci_hi = column_real(stmt, 6);
            p->majority = column_real(stmt, 7);
            p->n_test = sqlite3_column_int(stmt, 8);
            p->control_task = column_real(stmt, 9);
            p->selectivity = p->accuracy - p->control_task;
            p->encoded = -1;
            data->n_probes++;
        }
        int first_summary = data->n_summaries;
        sqlite3_reset(sum);
        sqlite3_bind_int64(sum, 1, data->runs[r].recording_id);
        while (sqlite3_step(sum) == SQLITE_ROW) {
            if (grow((void **)&data->summaries, data->n_summaries, &summary_cap, sizeof *data->summaries))
                goto fail;
            ReportSummary *s = &data->summaries[data->n_summaries];
            memset(s, 0, sizeof *s);
            s->run = r;
            s->label = label_index(data, (const char *)sqlite3_column_text(sum, 0), &label_cap);
            column_copy(s->site, sizeof s->site, sum, 1);
            s->expected_iteration = column_real(sum, 2);
            s->encoded = column_dup(sum, 3);
            if (s->label < 0 || !s->encoded) {
                free(s->encoded);
                spiral_error("out of memory reading probe summaries");
                goto fail;
            }
            data->n_summaries++;
        }
        /* where each probe counts as encoded, from its (label, site) summary */
        for (int i = 0; i < data->n_probes; i++) {
            ReportProbe *p = &data->probes[i];
            if (p->run != r) continue;
            for (int s = first_summary; s < data->n_summaries; s++)
                if (data->summaries[s].label == p->label && !strcmp(data->summaries[s].site, p->site))
                    p->encoded = encoded_at(data->summaries[s].encoded, p->iteration, p->scale);
        }
    }
    sqlite3_finalize(stmt);
    sqlite3_finalize(sum);
    return 0;
fail:
    sqlite3_finalize(stmt);
    sqlite3_finalize(sum);
    return -1;
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
