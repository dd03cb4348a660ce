/*
 * lens_store.c: lens_results writes and reads (lens_store.h).
 */
#include "lens_store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Binds a real or NULL (for NaN). */
static void bind_real(sqlite3_stmt *stmt, int column, double value) {
    if (isnan(value)) sqlite3_bind_null(stmt, column);
    else sqlite3_bind_double(stmt, column, value);
}

/* A real column, NAN for NULL. */
static double column_real(sqlite3_stmt *stmt, int column) {
    return sqlite3_column_type(stmt, column) == SQLITE_NULL ? NAN
                                                             : sqlite3_column_double(stmt, column);
}

/* Deletes the key's rows of one mode. */
static int delete_mode(Store *store, const LensKey *key, const char *mode) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "DELETE FROM lens_results WHERE run_id=? AND dataset_id=? AND split=?"
                           " AND checkpoint_step=? AND schedule=? AND intervention=? AND mode=?",
                           -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, key->run_id);
    sqlite3_bind_int64(stmt, 2, key->dataset_id);
    sqlite3_bind_text(stmt, 3, key->split, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, key->checkpoint_step);
    sqlite3_bind_text(stmt, 5, key->schedule, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, key->intervention, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 7, mode, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return spiral_error("%s: deleting lens results: %s", store->path, sqlite3_errmsg(store->db));
    return 0;
}

int lens_store_write(Store *store, const LensKey *key, const LensRow *rows, int n) {
    sqlite3_stmt *stmt = NULL;
    if (store_begin(store)) return -1;
    for (int k = 0; k < n; k++) {
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(rows[j].mode, rows[k].mode);
        if (!seen && delete_mode(store, key, rows[k].mode)) goto fail;
    }
    if (sqlite3_prepare_v2(store->db,
                           "INSERT INTO lens_results(run_id, dataset_id, split, checkpoint_step,"
                           " schedule, intervention, mode, iteration, slot, g, row_schedule,"
                           " n_sequences, n_tokens, loss, loss_lo, loss_hi, accuracy, acc_lo,"
                           " acc_hi, delta, delta_lo, delta_hi)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &stmt,
                           NULL) != SQLITE_OK) {
        spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
        goto fail;
    }
    for (int k = 0; k < n; k++) {
        const LensRow *r = &rows[k];
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, key->run_id);
        sqlite3_bind_int64(stmt, 2, key->dataset_id);
        sqlite3_bind_text(stmt, 3, key->split, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 4, key->checkpoint_step);
        sqlite3_bind_text(stmt, 5, key->schedule, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 6, key->intervention, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 7, r->mode, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 8, r->iteration);
        sqlite3_bind_int(stmt, 9, r->slot);
        sqlite3_bind_int(stmt, 10, r->g);
        sqlite3_bind_text(stmt, 11, r->schedule[0] ? r->schedule : key->schedule, -1,
                          SQLITE_STATIC);
        sqlite3_bind_int(stmt, 12, r->n_sequences);
        sqlite3_bind_int64(stmt, 13, r->n_tokens);
        bind_real(stmt, 14, r->loss);
        bind_real(stmt, 15, r->loss_lo);
        bind_real(stmt, 16, r->loss_hi);
        bind_real(stmt, 17, r->accuracy);
        bind_real(stmt, 18, r->acc_lo);
        bind_real(stmt, 19, r->acc_hi);
        bind_real(stmt, 20, r->delta);
        bind_real(stmt, 21, r->delta_lo);
        bind_real(stmt, 22, r->delta_hi);
        if (sqlite3_step(stmt) != SQLITE_DONE) {
            spiral_error("%s: inserting lens results: %s", store->path, sqlite3_errmsg(store->db));
            goto fail;
        }
    }
    sqlite3_finalize(stmt);
    return store_commit(store);
fail:
    sqlite3_finalize(stmt);
    store_rollback(store);
    return -1;
}

int lens_store_read(Store *store, const char *run_name, const char *mode, const char *schedule,
                    LensRow **rows, int *n, long long *step) {
    sqlite3_stmt *stmt;
    *rows = NULL;
    *n = 0;
    *step = 0;
    /* the latest step with rows of this mode, then its rows */
    const char *sql =
        "WITH k AS (SELECT l.* FROM lens_results l JOIN runs ON runs.id = l.run_id"
        "  WHERE runs.name = ?1 AND l.mode = ?2 AND l.intervention = 'none'"
        "  AND (?3 IS NULL OR l.schedule = ?3)),"
        " latest AS (SELECT max(checkpoint_step) AS step FROM k),"
        " pick AS (SELECT dataset_id, split, schedule FROM k, latest"
        "  WHERE k.checkpoint_step = latest.step ORDER BY k.id DESC LIMIT 1)"
        " SELECT k.iteration, k.slot, k.g, k.row_schedule, k.n_sequences, k.n_tokens, k.loss,"
        "  k.loss_lo, k.loss_hi, k.accuracy, k.acc_lo, k.acc_hi, k.delta, k.delta_lo,"
        "  k.delta_hi, k.checkpoint_step FROM k, latest, pick"
        " WHERE k.checkpoint_step = latest.step AND k.dataset_id = pick.dataset_id"
        "  AND k.split = pick.split AND k.schedule = pick.schedule"
        " ORDER BY k.iteration, k.slot";
    if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_text(stmt, 1, run_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, mode, -1, SQLITE_STATIC);
    if (schedule) sqlite3_bind_text(stmt, 3, schedule, -1, SQLITE_STATIC);
    else sqlite3_bind_null(stmt, 3);
    int cap = 0, rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            LensRow *grown = realloc(*rows, (size_t)cap * sizeof **rows);
            if (!grown) {
                sqlite3_finalize(stmt);
                free(*rows);
                *rows = NULL;
                *n = 0;
                return spiral_error("out of memory reading lens results");
            }
            *rows = grown;
        }
        LensRow *r = &(*rows)[(*n)++];
        memset(r, 0, sizeof *r);
        snprintf(r->mode, sizeof r->mode, "%s", mode);
        r->iteration = sqlite3_column_int(stmt, 0);
        r->slot = sqlite3_column_int(stmt, 1);
        r->g = sqlite3_column_int(stmt, 2);
        const unsigned char *text = sqlite3_column_text(stmt, 3);
        snprintf(r->schedule, sizeof r->schedule, "%s", text ? (const char *)text : "");
        r->n_sequences = sqlite3_column_int(stmt, 4);
        r->n_tokens = sqlite3_column_int64(stmt, 5);
        r->loss = column_real(stmt, 6);
        r->loss_lo = column_real(stmt, 7);
        r->loss_hi = column_real(stmt, 8);
        r->accuracy = column_real(stmt, 9);
        r->acc_lo = column_real(stmt, 10);
        r->acc_hi = column_real(stmt, 11);
        r->delta = column_real(stmt, 12);
        r->delta_lo = column_real(stmt, 13);
        r->delta_hi = column_real(stmt, 14);
        *step = sqlite3_column_int64(stmt, 15);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        free(*rows);
        *rows = NULL;
        *n = 0;
        return spiral_error("%s: reading lens results: %s", store->path, sqlite3_errmsg(store->db));
    }
    return 0;
}
