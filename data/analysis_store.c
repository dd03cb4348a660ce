/*
 * analysis_store.c: analysis_results writes and the other reads of
 * analysis/ (see analysis_store.h).
 */
#include "analysis_store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "recording_store.h"

struct AnalysisWriter {
    Store *store;
    sqlite3_stmt *insert;
    long long recording_id, run_id;
    long long rows;
};

AnalysisRow analysis_row(const char *kind, int iteration, int iteration2, const char *block, int layer,
                         int head) {
    AnalysisRow row = {kind, iteration, iteration2, block, layer, head, NAN, NAN, NAN, NULL, 0};
    return row;
}

/* Binds an integer or NULL. */
static void bind_optional_int(sqlite3_stmt *stmt, int column, int value) {
    if (value == ANALYSIS_NULL) sqlite3_bind_null(stmt, column);
    else sqlite3_bind_int(stmt, column, value);
}

/* Binds a real or NULL (for NaN). */
static void bind_optional_double(sqlite3_stmt *stmt, int column, double value) {
    if (isnan(value)) sqlite3_bind_null(stmt, column);
    else sqlite3_bind_double(stmt, column, value);
}

int analysis_writer_begin(AnalysisWriter **writer, Store *store, long long recording_id, long long run_id) {
    AnalysisWriter *w = calloc(1, sizeof *w);
    *writer = NULL;
    if (!w) return spiral_error("out of memory");
    w->store = store;
    w->recording_id = recording_id;
    w->run_id = run_id;
    if (store_begin(store)) {
        free(w);
        return -1;
    }
    if (sqlite3_prepare_v2(store->db,
                           "INSERT INTO analysis_results(recording_id, run_id, kind, iteration,"
                           " iteration2, block, layer, head, value, ci_lo, ci_hi, data)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", -1, &w->insert, NULL) != SQLITE_OK) {
        spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
        store_rollback(store);
        free(w);
        return -1;
    }
    *writer = w;
    return 0;
}

/* Runs a DELETE with the writer's (recording_id, run_id) bound to ?1 and ?2. */
static int delete_rows(AnalysisWriter *w, const char *sql) {
    Store *store = w->store;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, w->recording_id);
    if (sqlite3_bind_parameter_count(stmt) > 1) sqlite3_bind_int64(stmt, 2, w->run_id);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return spiral_error("%s: deleting old analysis results: %s", store->path, sqlite3_errmsg(store->db));
    return 0;
}

int analysis_writer_replace_recording(AnalysisWriter *w) {
    return delete_rows(w, "DELETE FROM analysis_results WHERE recording_id=?1 AND (kind IN"
                          " ('attn_distance', 'attn_entropy', 'head_change', 'head_selected',"
                          " 'selected_attn_distance', 'selected_attn_entropy', 'update_size', 'cka',"
                          " 'effective_rank', 'spectrum') OR kind LIKE 'attn_beyond_D%'"
                          " OR kind LIKE 'selected_attn_beyond_D%')");
}

int analysis_writer_replace_cross(AnalysisWriter *w) {
    return delete_rows(w, "DELETE FROM analysis_results WHERE recording_id=?1 AND run_id=?2"
                          " AND kind='cka_cross'");
}

int analysis_writer_put(AnalysisWriter *w, const AnalysisRow *row) {
    sqlite3_stmt *s = w->insert;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    sqlite3_bind_int64(s, 1, w->recording_id);
    sqlite3_bind_int64(s, 2, w->run_id);
    sqlite3_bind_text(s, 3, row->kind, -1, SQLITE_TRANSIENT);
    bind_optional_int(s, 4, row->iteration);
    bind_optional_int(s, 5, row->iteration2);
    if (row->block) sqlite3_bind_text(s, 6, row->block, -1, SQLITE_STATIC);
    else sqlite3_bind_null(s, 6);
    bind_optional_int(s, 7, row->layer);
    bind_optional_int(s, 8, row->head);
    bind_optional_double(s, 9, row->value);
    bind_optional_double(s, 10, row->ci_lo);
    bind_optional_double(s, 11, row->ci_hi);
    if (row->data) sqlite3_bind_blob64(s, 12, row->data, (size_t)row->n_data * sizeof(double), SQLITE_STATIC);
    else sqlite3_bind_null(s, 12);
    if (sqlite3_step(s) != SQLITE_DONE)
        return spiral_error("%s: writing analysis result %s: %s", w->store->path, row->kind,
                            sqlite3_errmsg(w->store->db));
    w->rows++;
    return 0;
}

long long analysis_writer_rows(const AnalysisWriter *w) { return w->rows; }

int analysis_writer_end(AnalysisWriter *w, int status) {
    Store *store = w->store;
    sqlite3_finalize(w->insert);
    free(w);
    if (status == 0 && store_commit(store) == 0) return 0;
    store_rollback(store);
    return -1;
}

int analysis_store_recording_meta(Store *store, long long recording_id, int *distances, int max,
                                  int *n_distances, char *status, size_t status_size) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db, "SELECT distances, status, run_id, dataset_id, split FROM recordings WHERE id=?", -1, &stmt,
                           NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, recording_id);
    int found = sqlite3_step(stmt) == SQLITE_ROW;
    char text[256] = "";
    if (found) {
        snprintf(text, sizeof text, "%s", (const char *)sqlite3_column_text(stmt, 0));
        snprintf(status, status_size, "%s", (const char *)sqlite3_column_text(stmt, 1));
        recording_shown_status(store, sqlite3_column_int64(stmt, 2), sqlite3_column_int64(stmt, 3),
                               (const char *)sqlite3_column_text(stmt, 4), status, status_size);
    }
    sqlite3_finalize(stmt);
    if (!found) return spiral_error("%s: recording %lld vanished", store->path, recording_id);
    json_error_t error;
    json_t *array = json_loads(text, 0, &error);
    int ok = array && json_is_array(array) && (int)json_array_size(array) <= max;
    *n_distances = 0;
    for (size_t i = 0; ok && i < json_array_size(array); i++) {
        json_t *item = json_array_get(array, i);
        ok = json_is_integer(item);
        if (ok) distances[(*n_distances)++] = (int)json_integer_value(item);
    }
    json_decref(array);
    if (!ok)
        return spiral_error("%s: recording %lld: distances '%s' is not a JSON array of at most %d integers",
                            store->path, recording_id, text, max);
    return 0;
}

/* A real column, NaN for NULL. */
static double column_real(sqlite3_stmt *stmt, int column) {
    return sqlite3_column_type(stmt, column) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, column);
}

int analysis_store_metrics(Store *store, long long run_id, MetricRow **rows, int *n) {
    *rows = NULL;
    *n = 0;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db, "SELECT step, loss, val_loss, lr, grad_norm, tokens, flops, wall_seconds"
                                      " FROM metrics WHERE run_id=? ORDER BY step", -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: reading metrics: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, run_id);
    int capacity = 0, status = 0, rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*n == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            MetricRow *grown = realloc(*rows, (size_t)capacity * sizeof *grown);
            if (!grown) {
                status = spiral_error("out of memory reading the metrics of run %lld", run_id);
                break;
            }
            *rows = grown;
        }
        MetricRow *m = &(*rows)[(*n)++];
        m->step = sqlite3_column_int64(stmt, 0);
        m->loss = column_real(stmt, 1);
        m->val_loss = column_real(stmt, 2);
        m->lr = column_real(stmt, 3);
        m->grad_norm = column_real(stmt, 4);
        m->tokens = sqlite3_column_int64(stmt, 5);
        m->flops = sqlite3_column_double(stmt, 6);
        m->wall_seconds = column_real(stmt, 7);
    }
    if (status == 0 && rc != SQLITE_DONE)
        status = spiral_error("%s: reading metrics: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_finalize(stmt);
    if (status) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return status;
}
