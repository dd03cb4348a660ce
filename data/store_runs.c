/*
 * store_runs.c: runs, their training metrics and their checkpoints in the
 * store (store.h).
 */
#include "store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store_sql.h"

int store_run_create(Store *store, const char *name, const char *kind, const char *config_json,
                     long long dataset_id, const char *command, long long *run_id) {
    sqlite3_stmt *stmt;
    if (store_prepare(store, "SELECT 1 FROM runs WHERE name = ?", &stmt)) return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int exists = sqlite3_step(stmt) == SQLITE_ROW;
    sqlite3_finalize(stmt);
    if (exists)
        return spiral_error("%s: a run named '%s' already exists (resume it with --resume %s, "
                            "or choose another --name)", store->path, name, name);
    if (store_prepare(store, "INSERT INTO runs(name, kind, config, dataset_id, status, command, updated)"
                             " VALUES(?,?,?,?,'created',?,datetime('now'))", &stmt))
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, config_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, dataset_id);
    sqlite3_bind_text(stmt, 5, command ? command : "", -1, SQLITE_STATIC);
    if (store_step_done(store, stmt, "insert run")) return -1;
    *run_id = sqlite3_last_insert_rowid(store->db);
    return 0;
}

int store_run_find(Store *store, const char *name, RunRow *row) {
    sqlite3_stmt *stmt;
    memset(row, 0, sizeof *row);
    if (store_prepare(store, "SELECT id, name, kind, config, status, message, dataset_id, step"
                             " FROM runs WHERE name = ?", &stmt))
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        return store_no_such_name(store, "run", name, "SELECT name FROM runs ORDER BY id",
                                  "no runs; train one with 'spiral train'");
    }
    row->id = sqlite3_column_int64(stmt, 0);
    row->name = store_column_strdup(stmt, 1);
    row->kind = store_column_strdup(stmt, 2);
    row->config = store_column_strdup(stmt, 3);
    row->status = store_column_strdup(stmt, 4);
    row->message = store_column_strdup(stmt, 5);
    row->dataset_id = sqlite3_column_int64(stmt, 6);
    row->step = sqlite3_column_int64(stmt, 7);
    sqlite3_finalize(stmt);
    if (!row->name || !row->kind || !row->config || !row->status || !row->message) {
        store_run_free(row);
        return spiral_error("out of memory reading run %s", name);
    }
    return 0;
}

void store_run_free(RunRow *row) {
    free(row->name);
    free(row->kind);
    free(row->config);
    free(row->status);
    free(row->message);
    memset(row, 0, sizeof *row);
}

int store_run_list(Store *store, RunListRow **rows, int *n) {
    sqlite3_stmt *stmt;
    *rows = NULL;
    *n = 0;
    if (store_prepare(store,
                "SELECT r.id, r.name, r.kind, r.status, r.config, coalesce(d.name, ''),"
                " coalesce((SELECT max(step) FROM metrics m WHERE m.run_id = r.id), 0),"
                " (SELECT loss FROM metrics m WHERE m.run_id = r.id ORDER BY step DESC LIMIT 1),"
                " (SELECT val_loss FROM metrics m WHERE m.run_id = r.id AND val_loss IS NOT NULL"
                "  ORDER BY step DESC LIMIT 1), coalesce(r.updated, r.created, '')"
                " FROM runs r LEFT JOIN datasets d ON d.id = r.dataset_id ORDER BY r.id", &stmt))
        return -1;
    int capacity = 0, status = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        if (*n == capacity) {
            capacity = capacity ? 2 * capacity : 16;
            RunListRow *grown = realloc(*rows, (size_t)capacity * sizeof *grown);
            if (!grown) {
                status = spiral_error("out of memory listing runs");
                break;
            }
            *rows = grown;
        }
        RunListRow *row = &(*rows)[(*n)++];
        row->id = sqlite3_column_int64(stmt, 0);
        row->name = store_column_strdup(stmt, 1);
        row->kind = store_column_strdup(stmt, 2);
        row->status = store_column_strdup(stmt, 3);
        row->config = store_column_strdup(stmt, 4);
        row->dataset = store_column_strdup(stmt, 5);
        row->step = sqlite3_column_int64(stmt, 6);
        row->loss = sqlite3_column_type(stmt, 7) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, 7);
        row->val_loss = sqlite3_column_type(stmt, 8) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, 8);
        row->updated = store_column_strdup(stmt, 9);
        if (!row->name || !row->kind || !row->status || !row->config || !row->dataset ||
            !row->updated) {
            status = spiral_error("out of memory listing runs");
            break;
        }
    }
    sqlite3_finalize(stmt);
    if (status) {
        store_run_list_free(*rows, *n);
        *rows = NULL;
        *n = 0;
    }
    return status;
}

void store_run_list_free(RunListRow *rows, int n) {
    for (int i = 0; i < n; i++) {
        free(rows[i].name);
        free(rows[i].kind);
        free(rows[i].status);
        free(rows[i].config);
        free(rows[i].dataset);
        free(rows[i].updated);
    }
    free(rows);
}

int store_run_delete(Store *store, long long run_id) {
    sqlite3_stmt *stmt;
    if (store_begin(store)) return -1;
    if (store_prepare(store, "DELETE FROM runs WHERE id = ?", &stmt)) {
        store_rollback(store);
        return -1;
    }
    sqlite3_bind_int64(stmt, 1, run_id);
    if (store_step_done(store, stmt, "delete run") || store_commit(store)) {
        store_rollback(store);
        return -1;
    }
    return 0;
}

int store_run_status(Store *store, const char *name, char *status, size_t size) {
    sqlite3_stmt *stmt;
    status[0] = 0;
    if (store_prepare(store, "SELECT status FROM runs WHERE name = ?", &stmt)) return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0))
        snprintf(status, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    int failed = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_fail(store, "find run");
    sqlite3_finalize(stmt);
    return failed;
}

int store_run_set_status(Store *store, long long run_id, const char *status,
                         const char *message) {
    sqlite3_stmt *stmt;
    if (store_prepare(store, "UPDATE runs SET status = ?, message = ?, updated = datetime('now')"
                             " WHERE id = ?", &stmt))
        return -1;
    sqlite3_bind_text(stmt, 1, status, -1, SQLITE_STATIC);
    if (message) sqlite3_bind_text(stmt, 2, message, -1, SQLITE_STATIC);
    else sqlite3_bind_null(stmt, 2);
    sqlite3_bind_int64(stmt, 3, run_id);
    return store_step_done(store, stmt, "update run status");
}

int store_metrics_insert(Store *store, long long run_id, const MetricRow *rows, int n) {
    sqlite3_stmt *stmt;
    if (n == 0) return 0;
    if (store_prepare(store, "INSERT OR REPLACE INTO metrics VALUES(?,?,?,?,?,?,?,?,?)", &stmt))
        return -1;
    for (int i = 0; i < n; i++) {
        const MetricRow *r = &rows[i];
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, run_id);
        sqlite3_bind_int64(stmt, 2, r->step);
        sqlite3_bind_double(stmt, 3, r->loss);
        if (isnan(r->val_loss)) sqlite3_bind_null(stmt, 4);
        else sqlite3_bind_double(stmt, 4, r->val_loss);
        sqlite3_bind_double(stmt, 5, r->lr);
        sqlite3_bind_double(stmt, 6, r->grad_norm);
        sqlite3_bind_int64(stmt, 7, r->tokens);
        sqlite3_bind_double(stmt, 8, r->flops);
        sqlite3_bind_double(stmt, 9, r->wall_seconds);
        if (sqlite3_step(stmt) != SQLITE_DONE) {
            store_fail(store, "insert metrics");
            sqlite3_finalize(stmt);
            return -1;
        }
    }
    sqlite3_finalize(stmt);
    return 0;
}

int store_metrics_truncate(Store *store, long long run_id, long long step) {
    sqlite3_stmt *stmt;
    if (store_prepare(store, "DELETE FROM metrics WHERE run_id = ? AND step > ?", &stmt)) return -1;
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int64(stmt, 2, step);
    return store_step_done(store, stmt, "truncate metrics");
}

int store_checkpoint_add(Store *store, long long run_id, long long step, const char *path,
                         const char *sha256_hex) {
    sqlite3_stmt *stmt;
    char *kept = store_path_relative(store, path);
    if (!kept) return spiral_error("out of memory");
    if (store_prepare(store, "INSERT OR REPLACE INTO checkpoints(run_id, step, path, sha256)"
                       " VALUES(?,?,?,?)", &stmt)) {
        free(kept);
        return -1;
    }
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int64(stmt, 2, step);
    sqlite3_bind_text(stmt, 3, kept, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, sha256_hex, -1, SQLITE_STATIC);
    free(kept);
    if (store_step_done(store, stmt, "insert checkpoint")) return -1;
    if (store_prepare(store, "UPDATE runs SET step = ?, updated = datetime('now') WHERE id = ?", &stmt))
        return -1;
    sqlite3_bind_int64(stmt, 1, step);
    sqlite3_bind_int64(stmt, 2, run_id);
    return store_step_done(store, stmt, "update run step");
}

int store_checkpoint_last(Store *store, long long run_id, long long *step, char **path,
                          char **sha256_hex) {
    sqlite3_stmt *stmt;
    *step = 0;
    *path = NULL;
    if (sha256_hex) *sha256_hex = NULL;
    if (store_prepare(store, "SELECT step, path, sha256 FROM checkpoints WHERE run_id = ?"
                       " ORDER BY step DESC LIMIT 1", &stmt))
        return -1;
    sqlite3_bind_int64(stmt, 1, run_id);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *step = sqlite3_column_int64(stmt, 0);
        const char *kept = (const char *)sqlite3_column_text(stmt, 1);
        *path = store_path_resolve(store, kept ? kept : "");
        if (sha256_hex) *sha256_hex = store_column_strdup(stmt, 2);
    }
    sqlite3_finalize(stmt);
    return 0;
}

/* The steps of a run's checkpoints as text "100, 200, 300" ("none" if none). */
static void checkpoint_steps_text(Store *store, long long run_id, char *out, size_t size) {
    sqlite3_stmt *stmt;
    size_t used = 0;
    snprintf(out, size, "none");
    if (store_prepare(store, "SELECT step FROM checkpoints WHERE run_id = ? ORDER BY step",
                      &stmt))
        return;
    sqlite3_bind_int64(stmt, 1, run_id);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && used + 32 < size)
        used += (size_t)snprintf(out + used, size - used, "%s%lld", used ? ", " : "",
                                 (long long)sqlite3_column_int64(stmt, 0));
    if (rc == SQLITE_ROW) snprintf(out + used, size - used, ", ...");
    sqlite3_finalize(stmt);
}

int store_checkpoint_at(Store *store, long long run_id, const char *run_name, long long max_step,
                        long long *step, char **path, char **sha256_hex) {
    sqlite3_stmt *stmt;
    *step = 0;
    *path = NULL;
    if (sha256_hex) *sha256_hex = NULL;
    if (store_prepare(store, "SELECT step, path, sha256 FROM checkpoints WHERE run_id = ?1"
                      " AND (?2 < 0 OR step <= ?2) ORDER BY step DESC LIMIT 1", &stmt))
        return -1;
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int64(stmt, 2, max_step);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *step = sqlite3_column_int64(stmt, 0);
        const char *kept = (const char *)sqlite3_column_text(stmt, 1);
        *path = store_path_resolve(store, kept ? kept : "");
        if (sha256_hex) *sha256_hex = store_column_strdup(stmt, 2);
    }
    sqlite3_finalize(stmt);
    if (*path) return 0;
    char steps[400];
    checkpoint_steps_text(store, run_id, steps, sizeof steps);
    if (max_step < 0)
        return spiral_error("run %s has no checkpoint yet: train it first ('spiral train')",
                            run_name);
    return spiral_error("run %s has no checkpoint at or before step %lld (its checkpoints are "
                        "at steps: %s)", run_name, max_step, steps);
}
