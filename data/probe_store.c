/*
 * probe_store.c: rows of probe_results and probe_summaries (see
 * probe_store.h). Writers are one transaction each; readers fill a
 * malloc'd array in the order the header states.
 */
#include "probe_store.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "grow.h"

/* Pieces of the readers' SQL, results aliased p (summaries s): the site
 * and control orders of probe_store.h, the report's label order (the
 * label's smallest row id), and the columns read_result reads. */
#define RESULT_SITE_ORDER                                                                  \
    "CASE p.site WHEN 'token' THEN 0 WHEN 'latent_in' THEN 1 WHEN 'latent_out' THEN 2"   \
    " WHEN 'coda' THEN 3 ELSE 4 END, p.site"
#define SUMMARY_SITE_ORDER                                                                 \
    "CASE s.site WHEN 'token' THEN 0 WHEN 'latent_in' THEN 1 WHEN 'latent_out' THEN 2"   \
    " WHEN 'coda' THEN 3 ELSE 4 END, s.site"
#define CONTROL_ORDER                                                                      \
    "CASE p.control WHEN 'none' THEN 0 WHEN 'control_task' THEN 1 WHEN 'random_model'"   \
    " THEN 2 WHEN 'position' THEN 3 WHEN 'permuted' THEN 4 ELSE 5 END"
#define RESULT_LABEL_ORDER                                                                 \
    "(SELECT min(q.id) FROM probe_results q WHERE q.recording_id = p.recording_id"       \
    " AND q.label = p.label)"
#define SUMMARY_LABEL_ORDER                                                                \
    "(SELECT min(q.id) FROM probe_results q WHERE q.recording_id = s.recording_id"       \
    " AND q.label = s.label)"
#define RESULT_COLUMNS                                                                     \
    "p.label, p.site, p.control, p.iteration, p.scale, p.accuracy, p.ci_lo, p.ci_hi,"    \
    " p.macro_f1, p.majority, p.n_train, p.n_val, p.n_test, p.l2, p.iterations,"         \
    " p.converged, p.grad_norm, p.seed, p.seconds"
#define RESULT_N_COLUMNS 19

/* "path: what: sqlite's message" as the error; returns -1. */
static int fail(Store *store, const char *what) {
    return spiral_error("%s: %s: %s", store->path, what, sqlite3_errmsg(store->db));
}

/* Binds a double, or NULL for NaN. */
static void bind_real(sqlite3_stmt *stmt, int column, double value) {
    if (isnan(value)) sqlite3_bind_null(stmt, column);
    else sqlite3_bind_double(stmt, column, value);
}

/* A double column, NaN for NULL. */
static double column_real(sqlite3_stmt *stmt, int column) {
    return sqlite3_column_type(stmt, column) == SQLITE_NULL ? NAN
                                                            : sqlite3_column_double(stmt, column);
}

/* Copies a text column into out (size), "" for NULL. */
static void column_text(char *out, size_t size, sqlite3_stmt *stmt, int column) {
    const unsigned char *text = sqlite3_column_text(stmt, column);
    snprintf(out, size, "%s", text ? (const char *)text : "");
}

/* Reads the RESULT_COLUMNS of the current row into *r. */
static void read_result(sqlite3_stmt *stmt, ProbeResult *r) {
    memset(r, 0, sizeof *r);
    column_text(r->label, sizeof r->label, stmt, 0);
    column_text(r->site, sizeof r->site, stmt, 1);
    column_text(r->control, sizeof r->control, stmt, 2);
    r->iteration = sqlite3_column_int(stmt, 3);
    r->scale = sqlite3_column_int(stmt, 4);
    r->accuracy = column_real(stmt, 5);
    r->ci_lo = column_real(stmt, 6);
    r->ci_hi = column_real(stmt, 7);
    r->macro_f1 = column_real(stmt, 8);
    r->majority = column_real(stmt, 9);
    r->n_train = sqlite3_column_int(stmt, 10);
    r->n_val = sqlite3_column_int(stmt, 11);
    r->n_test = sqlite3_column_int(stmt, 12);
    r->l2 = column_real(stmt, 13);
    r->iterations = sqlite3_column_int(stmt, 14);
    r->converged = sqlite3_column_int(stmt, 15);
    r->grad_norm = column_real(stmt, 16);
    r->seed = (unsigned long)sqlite3_column_int64(stmt, 17);
    r->seconds = column_real(stmt, 18);
}

/* Binds the key of a result: recording, label, site, iteration, scale,
 * control as parameters 1..6. */
static void bind_key(sqlite3_stmt *stmt, long long recording_id, const char *label,
                     const char *site, int iteration, int scale, const char *control) {
    sqlite3_bind_int64(stmt, 1, recording_id);
    sqlite3_bind_text(stmt, 2, label, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, site, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, iteration);
    sqlite3_bind_int(stmt, 5, scale);
    sqlite3_bind_text(stmt, 6, control, -1, SQLITE_STATIC);
}

int probe_store_write_results(Store *store, long long recording_id, const ProbeResult *rows,
                              int n) {
    sqlite3_stmt *stmt;
    if (n == 0) return 0;
    if (store_begin(store)) return -1;
    if (sqlite3_prepare_v2(store->db,
                           "INSERT OR REPLACE INTO probe_results(recording_id, label, site,"
                           " iteration, scale, control, accuracy, ci_lo, ci_hi, macro_f1, majority,"
                           " n_train, n_val, n_test, l2, iterations, converged, grad_norm, seed,"
                           " seconds, test_counts) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &stmt,
                           NULL) != SQLITE_OK) {
        fail(store, "writing probe results");
        store_rollback(store);
        return -1;
    }
    int status = 0;
    for (int i = 0; i < n && status == 0; i++) {
        const ProbeResult *r = &rows[i];
        sqlite3_reset(stmt);
        bind_key(stmt, recording_id, r->label, r->site, r->iteration, r->scale, r->control);
        bind_real(stmt, 7, r->accuracy);
        bind_real(stmt, 8, r->ci_lo);
        bind_real(stmt, 9, r->ci_hi);
        bind_real(stmt, 10, r->macro_f1);
        bind_real(stmt, 11, r->majority);
        sqlite3_bind_int(stmt, 12, r->n_train);
        sqlite3_bind_int(stmt, 13, r->n_val);
        sqlite3_bind_int(stmt, 14, r->n_test);
        bind_real(stmt, 15, r->l2);
        sqlite3_bind_int(stmt, 16, r->iterations);
        sqlite3_bind_int(stmt, 17, r->converged);
        bind_real(stmt, 18, r->grad_norm);
        sqlite3_bind_int64(stmt, 19, (sqlite3_int64)r->seed);
        bind_real(stmt, 20, r->seconds);
        if (r->test_counts && r->n_test_groups > 0)
            sqlite3_bind_blob(stmt, 21, r->test_counts,
                              (int)((size_t)r->n_test_groups * 3 * sizeof(int32_t)), SQLITE_STATIC);
        else
            sqlite3_bind_null(stmt, 21);
        if (sqlite3_step(stmt) != SQLITE_DONE) status = fail(store, "writing probe results");
    }
    sqlite3_finalize(stmt);
    if (status == 0) status = store_commit(store);
    if (status) store_rollback(store);
    return status;
}

int probe_store_write_summaries(Store *store, long long recording_id,
                                const ProbeSummary *summaries, int n) {
    sqlite3_stmt *stmt;
    if (store_begin(store)) return -1;
    if (sqlite3_prepare_v2(store->db, "INSERT OR REPLACE INTO probe_summaries(recording_id, label,"
                           " site, expected_iteration, encoded) VALUES(?,?,?,?,?)", -1, &stmt,
                           NULL) != SQLITE_OK) {
        fail(store, "writing probe summaries");
        store_rollback(store);
        return -1;
    }
    int status = 0;
    for (int k = 0; k < n && status == 0; k++) {
        const ProbeSummary *s = &summaries[k];
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, recording_id);
        sqlite3_bind_text(stmt, 2, s->label, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, s->site, -1, SQLITE_STATIC);
        bind_real(stmt, 4, s->expected_iteration);
        sqlite3_bind_text(stmt, 5, s->encoded, -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE) status = fail(store, "writing probe summaries");
    }
    sqlite3_finalize(stmt);
    if (status == 0) status = store_commit(store);
    if (status) store_rollback(store);
    return status;
}

int probe_store_delete_labels(Store *store, long long recording_id, const char *const *labels,
                              int n_labels) {
    static const char *const deletes[2] = {
        "DELETE FROM probe_results WHERE recording_id=? AND label=?",
        "DELETE FROM probe_summaries WHERE recording_id=? AND label=?"};
    sqlite3_stmt *stmt;
    if (store_begin(store)) return -1;
    int status = 0;
    for (int t = 0; t < 2 && status == 0; t++) {
        if (sqlite3_prepare_v2(store->db, deletes[t], -1, &stmt, NULL) != SQLITE_OK) {
            status = fail(store, "deleting probe rows");
            break;
        }
        for (int l = 0; l < n_labels && status == 0; l++) {
            sqlite3_reset(stmt);
            sqlite3_bind_int64(stmt, 1, recording_id);
            sqlite3_bind_text(stmt, 2, labels[l], -1, SQLITE_STATIC);
            if (sqlite3_step(stmt) != SQLITE_DONE) status = fail(store, "deleting probe rows");
        }
        sqlite3_finalize(stmt);
    }
    if (status == 0) status = store_commit(store);
    if (status) store_rollback(store);
    return status;
}

int probe_store_find_other_seed(Store *store, long long recording_id, const char *label,
                                unsigned long seed, unsigned long *other_seed) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT seed FROM probe_results WHERE recording_id=? AND label=?"
                           " AND seed<>? LIMIT 1", -1, &stmt, NULL) != SQLITE_OK)
        return fail(store, "reading probe seeds");
    sqlite3_bind_int64(stmt, 1, recording_id);
    sqlite3_bind_text(stmt, 2, label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)seed);
    int rc = sqlite3_step(stmt), found = 0;
    if (rc == SQLITE_ROW) {
        *other_seed = (unsigned long)sqlite3_column_int64(stmt, 0);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = fail(store, "reading probe seeds");
    }
    sqlite3_finalize(stmt);
    return found;
}

int probe_store_result_exists(Store *store, long long recording_id, const char *label,
                              const char *site, int iteration, int scale, const char *control) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT 1 FROM probe_results WHERE recording_id=? AND label=? AND"
                           " site=? AND iteration=? AND scale=? AND control=?", -1, &stmt,
                           NULL) != SQLITE_OK)
        return fail(store, "looking up a probe result");
    bind_key(stmt, recording_id, label, site, iteration, scale, control);
    int rc = sqlite3_step(stmt), exists = 0;
    if (rc == SQLITE_ROW) exists = 1;
    else if (rc != SQLITE_DONE) exists = fail(store, "looking up a probe result");
    sqlite3_finalize(stmt);
    return exists;
}

int probe_store_read_counts(Store *store, long long recording_id, const char *label,
                            const char *site, int iteration, int scale, const char *control,
                            int **counts, int *n_groups) {
    sqlite3_stmt *stmt;
    *counts = NULL;
    *n_groups = 0;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT test_counts FROM probe_results WHERE recording_id=? AND label=?"
                           " AND site=? AND iteration=? AND scale=? AND control=?", -1, &stmt,
                           NULL) != SQLITE_OK)
        return fail(store, "reading probe test counts");
    bind_key(stmt, recording_id, label, site, iteration, scale, control);
    int rc = sqlite3_step(stmt), status = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) == SQLITE_BLOB) {
        size_t bytes = (size_t)sqlite3_column_bytes(stmt, 0), triple = 3 * sizeof(int32_t);
        if (bytes == 0 || bytes % triple) {
            status = spiral_error("%s: test_counts of label '%s' at %s iteration %d (control %s) "
                                  "holds %zu bytes, expected a multiple of %zu", store->path,
                                  label, site, iteration, control, bytes, triple);
        } else if (!(*counts = malloc(bytes))) {
            status = spiral_error("out of memory reading probe test counts");
        } else {
            memcpy(*counts, sqlite3_column_blob(stmt, 0), bytes);
            *n_groups = (int)(bytes / triple);
        }
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        status = fail(store, "reading probe test counts");
    }
    sqlite3_finalize(stmt);
    return status;
}

int probe_store_list_labels(Store *store, long long recording_id,
                            char (**labels)[PROBE_LABEL_CAP], int *n) {
    sqlite3_stmt *stmt;
    int capacity = 0, status = 0, rc;
    *labels = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT label FROM probe_results WHERE recording_id=? GROUP BY label"
                           " ORDER BY min(id)", -1, &stmt, NULL) != SQLITE_OK)
        return fail(store, "listing probed labels");
    sqlite3_bind_int64(stmt, 1, recording_id);
    while (status == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        status = grow_array((void **)labels, *n, &capacity, sizeof **labels);
        if (status == 0) column_text((*labels)[(*n)++], PROBE_LABEL_CAP, stmt, 0);
    }
    if (status == 0 && rc != SQLITE_DONE) status = fail(store, "listing probed labels");
    sqlite3_finalize(stmt);
    if (status) {
        free(*labels);
        *labels = NULL;
        *n = 0;
    }
    return status;
}

int probe_store_read_label(Store *store, long long recording_id, const char *label,
                           ProbeResult **rows, int *n) {
    sqlite3_stmt *stmt;
    int capacity = 0, status = 0, rc;
    *rows = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT " RESULT_COLUMNS " FROM probe_results p WHERE"
                           " p.recording_id=? AND p.label=? ORDER BY " RESULT_SITE_ORDER
                           ", p.iteration, p.scale, " CONTROL_ORDER, -1, &stmt, NULL) != SQLITE_OK)
        return fail(store, "reading probe results");
    sqlite3_bind_int64(stmt, 1, recording_id);
    sqlite3_bind_text(stmt, 2, label, -1, SQLITE_STATIC);
    while (status == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        status = grow_array((void **)rows, *n, &capacity, sizeof **rows);
        if (status == 0) read_result(stmt, &(*rows)[(*n)++]);
    }
    if (status == 0 && rc != SQLITE_DONE) status = fail(store, "reading probe results");
    sqlite3_finalize(stmt);
    if (status) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return status;
}

int probe_store_read_probes(Store *store, long long recording_id, ProbeWithControl **rows,
                            int *n) {
    sqlite3_stmt *stmt;
    int capacity = 0, status = 0, rc;
    *rows = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT " RESULT_COLUMNS ", c.accuracy, rm.accuracy, rm.ci_lo, rm.ci_hi,"
                           " lx.accuracy, lx.ci_lo, lx.ci_hi FROM probe_results p"
                           " LEFT JOIN probe_results c ON c.recording_id = p.recording_id"
                           " AND c.label = p.label AND c.site = p.site AND c.iteration = p.iteration"
                           " AND c.scale = p.scale AND c.control = 'control_task'"
                           " LEFT JOIN probe_results rm ON rm.recording_id = p.recording_id"
                           " AND rm.label = p.label AND rm.site = p.site AND rm.iteration = p.iteration"
                           " AND rm.scale = p.scale AND rm.control = 'random_model'"
                           " LEFT JOIN probe_results lx ON lx.recording_id = p.recording_id"
                           " AND lx.label = p.label AND lx.site = p.site AND lx.iteration = p.iteration"
                           " AND lx.scale = p.scale AND lx.control = 'lexical'"
                           " WHERE p.recording_id = ? AND p.control = 'none' ORDER BY "
                           RESULT_LABEL_ORDER ", " RESULT_SITE_ORDER ", p.iteration, p.scale",
                           -1, &stmt, NULL) != SQLITE_OK)
        return fail(store, "reading probe results");
    sqlite3_bind_int64(stmt, 1, recording_id);
    while (status == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        status = grow_array((void **)rows, *n, &capacity, sizeof **rows);
        if (status) break;
        ProbeWithControl *row = &(*rows)[(*n)++];
        read_result(stmt, &row->probe);
        row->control_task_accuracy = column_real(stmt, RESULT_N_COLUMNS);
        row->random_accuracy = column_real(stmt, RESULT_N_COLUMNS + 1);
        row->random_lo = column_real(stmt, RESULT_N_COLUMNS + 2);
        row->random_hi = column_real(stmt, RESULT_N_COLUMNS + 3);
        row->lexical_accuracy = column_real(stmt, RESULT_N_COLUMNS + 4);
        row->lexical_lo = column_real(stmt, RESULT_N_COLUMNS + 5);
        row->lexical_hi = column_real(stmt, RESULT_N_COLUMNS + 6);
    }
    if (status == 0 && rc != SQLITE_DONE) status = fail(store, "reading probe results");
    sqlite3_finalize(stmt);
    if (status) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return status;
}

int probe_store_read_summaries(Store *store, long long recording_id, ProbeSummary **rows,
                               int *n) {
    sqlite3_stmt *stmt;
    int capacity = 0, status = 0, rc;
    *rows = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT s.label, s.site, s.expected_iteration, s.encoded FROM"
                           " probe_summaries s WHERE s.recording_id = ? ORDER BY "
                           SUMMARY_LABEL_ORDER ", " SUMMARY_SITE_ORDER, -1, &stmt,
                           NULL) != SQLITE_OK)
        return fail(store, "reading probe summaries");
    sqlite3_bind_int64(stmt, 1, recording_id);
    while (status == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        status = grow_array((void **)rows, *n, &capacity, sizeof **rows);
        if (status) break;
        ProbeSummary *s = &(*rows)[(*n)++];
        memset(s, 0, sizeof *s);
        column_text(s->label, sizeof s->label, stmt, 0);
        column_text(s->site, sizeof s->site, stmt, 1);
        s->expected_iteration = column_real(stmt, 2);
        if ((size_t)sqlite3_column_bytes(stmt, 3) >= sizeof s->encoded)
            status = spiral_error("%s: the probe summary of label '%s' at %s holds %d bytes of "
                                  "'encoded', more than %zu", store->path, s->label, s->site,
                                  sqlite3_column_bytes(stmt, 3), sizeof s->encoded - 1);
        column_text(s->encoded, sizeof s->encoded, stmt, 3);
    }
    if (status == 0 && rc != SQLITE_DONE) status = fail(store, "reading probe summaries");
    sqlite3_finalize(stmt);
    if (status) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return status;
}
