/*
 * report_store.c: the store reads of reports/ (see report_store.h).
 */
#include "report_store.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "grow.h"
#include "recording_store.h"

/* Fails with the store's message. */
static int read_fail(Store *store, const char *what) {
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

/* A real column, NaN for NULL. */
static double column_real(sqlite3_stmt *stmt, int column) {
    return sqlite3_column_type(stmt, column) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, column);
}

/* An integer column, INT_MIN for NULL. */
static int column_int_or_null(sqlite3_stmt *stmt, int column) {
    return sqlite3_column_type(stmt, column) == SQLITE_NULL ? INT_MIN : sqlite3_column_int(stmt, column);
}

/* Steps stmt to its end; 0, or -1 naming `what` if SQLite failed. */
static int finish(Store *store, sqlite3_stmt *stmt, int rc, int status, const char *what) {
    if (status == 0 && rc != SQLITE_DONE) status = read_fail(store, what);
    sqlite3_finalize(stmt);
    return status;
}

/* ------------------------------------------------------------------------ */
/* Runs, recordings, datasets                                               */

void report_store_runs_free(StoredRun *runs, int n) {
    for (int i = 0; runs && i < n; i++) {
        free(runs[i].config);
        free(runs[i].command);
        free(runs[i].message);
    }
    free(runs);
}

int report_store_runs(Store *store, const char *name, StoredRun **runs, int *n) {
    *runs = NULL;
    *n = 0;
    sqlite3_stmt *stmt;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT r.id, r.name, r.kind, r.status, r.config, r.command, r.message, r.dataset_id,"
             " coalesce(d.name, ''), r.step FROM runs r LEFT JOIN datasets d ON d.id = r.dataset_id %s",
             name ? "WHERE r.name = ?" : "ORDER BY r.id");
    if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK) return read_fail(store, "reading runs");
    if (name) sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int cap = 0, status = 0, rc = SQLITE_DONE;
    while (status == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if ((status = grow_array((void **)runs, *n, &cap, sizeof **runs))) break;
        StoredRun *run = &(*runs)[(*n)++];
        memset(run, 0, sizeof *run);
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
            status = spiral_error("out of memory reading run %s", run->name);
    }
    status = finish(store, stmt, rc, status, "reading runs");
    if (status) {
        report_store_runs_free(*runs, *n);
        *runs = NULL;
        *n = 0;
    }
    return status;
}

int report_store_recording(Store *store, long long run_id, const char *split, long long prefer_dataset_id,
                           StoredRecording *rec, int *found) {
    memset(rec, 0, sizeof *rec);
    *found = 0;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT r.id, d.name, r.split, r.status, r.n_sequences, r.seq_len, r.dataset_id"
                           " FROM recordings r JOIN datasets d ON d.id = r.dataset_id"
                           " WHERE r.run_id = ? AND r.split = ? ORDER BY (r.dataset_id = ?) DESC, r.id"
                           " LIMIT 1", -1, &stmt, NULL) != SQLITE_OK)
        return read_fail(store, "reading recordings");
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_text(stmt, 2, split, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, prefer_dataset_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *found = 1;
        rec->id = sqlite3_column_int64(stmt, 0);
        column_copy(rec->dataset, sizeof rec->dataset, stmt, 1);
        column_copy(rec->split, sizeof rec->split, stmt, 2);
        column_copy(rec->status, sizeof rec->status, stmt, 3);
        rec->n_sequences = sqlite3_column_int(stmt, 4);
        rec->seq_len = sqlite3_column_int(stmt, 5);
        recording_shown_status(store, run_id, sqlite3_column_int64(stmt, 6), rec->split, rec->status,
                               sizeof rec->status);
        rc = SQLITE_DONE;
    }
    return finish(store, stmt, rc, 0, "reading recordings");
}

int report_store_dataset(Store *store, const char *name, StoredDataset *ds, int *found) {
    memset(ds, 0, sizeof *ds);
    *found = 0;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT d.id, d.family, d.params, d.vocab_size, d.n_tokens, d.n_docs,"
                           " a.true_nll IS NOT NULL FROM datasets d"
                           " LEFT JOIN dataset_arrays a ON a.dataset_id = d.id WHERE d.name = ?",
                           -1, &stmt, NULL) != SQLITE_OK)
        return read_fail(store, "reading datasets");
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt), status = 0;
    if (rc == SQLITE_ROW) {
        *found = 1;
        ds->id = sqlite3_column_int64(stmt, 0);
        column_copy(ds->family, sizeof ds->family, stmt, 1);
        ds->params = column_dup(stmt, 2);
        ds->vocab_size = sqlite3_column_int(stmt, 3);
        ds->n_tokens = sqlite3_column_int64(stmt, 4);
        ds->n_docs = sqlite3_column_int64(stmt, 5);
        ds->has_true_nll = sqlite3_column_int(stmt, 6);
        if (!ds->params) status = spiral_error("out of memory reading dataset %s", name);
        rc = SQLITE_DONE;
    }
    return finish(store, stmt, rc, status, "reading datasets");
}

/* ------------------------------------------------------------------------ */
/* Probe results and summaries                                              */



/* ------------------------------------------------------------------------ */
/* Analysis results                                                         */

void report_store_analysis_free(StoredAnalysis *rows, int n) {
    for (int i = 0; rows && i < n; i++) free(rows[i].data);
    free(rows);
}

int report_store_analysis(Store *store, long long recording_id, const char *kind, long long run_id,
                          StoredAnalysis **rows, int *n) {
    *rows = NULL;
    *n = 0;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT iteration, iteration2, value, ci_lo, ci_hi, data FROM analysis_results"
                           " WHERE recording_id = ?1 AND kind = ?2 AND (?3 = 0 OR run_id = ?3)"
                           " ORDER BY iteration, iteration2", -1, &stmt, NULL) != SQLITE_OK)
        return read_fail(store, "reading analysis_results");
    sqlite3_bind_int64(stmt, 1, recording_id);
    sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, run_id);
    int cap = 0, status = 0, rc = SQLITE_DONE;
    while (status == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if ((status = grow_array((void **)rows, *n, &cap, sizeof **rows))) break;
        StoredAnalysis *row = &(*rows)[(*n)++];
        memset(row, 0, sizeof *row);
        row->iteration = column_int_or_null(stmt, 0);
        row->iteration2 = column_int_or_null(stmt, 1);
        row->value = column_real(stmt, 2);
        row->ci_lo = column_real(stmt, 3);
        row->ci_hi = column_real(stmt, 4);
        int bytes = sqlite3_column_bytes(stmt, 5);
        row->n_data = bytes / (int)sizeof(double);
        if (row->n_data > 0) {
            row->data = malloc((size_t)row->n_data * sizeof *row->data);
            if (!row->data) status = spiral_error("out of memory reading analysis_results");
            else memcpy(row->data, sqlite3_column_blob(stmt, 5), (size_t)row->n_data * sizeof *row->data);
        }
    }
    status = finish(store, stmt, rc, status, "reading analysis_results");
    if (status) {
        report_store_analysis_free(*rows, *n);
        *rows = NULL;
        *n = 0;
    }
    return status;
}
