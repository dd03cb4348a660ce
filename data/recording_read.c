/*
 * recording_read.c: reading a recording back from the store (see
 * recording_store.h): its row, one state with incremental BLOB I/O, a
 * sequence's token index, the sites it holds and its attention statistics.
 */
#include "recording_store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "half.h"

/* info->distances from the recording's JSON text "[4,16,64]". */
static int parse_distances(Store *store, RecordingInfo *info, const char *text) {
    json_error_t error;
    json_t *array = json_loads(text, 0, &error);
    int ok = array && json_is_array(array) && json_array_size(array) <= RECORD_MAX_DISTANCES;
    info->n_distances = 0;
    for (size_t i = 0; ok && i < json_array_size(array); i++) {
        json_t *item = json_array_get(array, i);
        ok = json_is_integer(item);
        if (ok) info->distances[info->n_distances++] = (int)json_integer_value(item);
    }
    json_decref(array);
    if (!ok)
        return spiral_error("%s: recording %lld: distances '%s' is not a JSON array of at most %d "
                            "integers", store->path, info->id, text, RECORD_MAX_DISTANCES);
    return 0;
}

int recording_find(Store *store, const char *run_name, const char *dataset_name,
                   const char *split, RecordingInfo *info) {
    sqlite3_stmt *stmt;
    memset(info, 0, sizeof *info);
    if (sqlite3_prepare_v2(store->db,
                           "SELECT r.id, r.run_id, r.dataset_id, r.seq_len, r.n_sequences,"
                           " r.d_model, r.dtype, r.split, r.status, r.distances, r.checkpoint_step"
                           " FROM recordings r"
                           " JOIN runs ON runs.id = r.run_id JOIN datasets d ON d.id = r.dataset_id"
                           " WHERE runs.name = ? AND d.name = ? AND r.split = ?"
                           " ORDER BY r.checkpoint_step DESC LIMIT 1", -1, &stmt,
                           NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_text(stmt, 1, run_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, dataset_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, split, -1, SQLITE_STATIC);
    int found = sqlite3_step(stmt) == SQLITE_ROW;
    char distances[256] = "";
    if (found) {
        info->id = sqlite3_column_int64(stmt, 0);
        info->run_id = sqlite3_column_int64(stmt, 1);
        info->dataset_id = sqlite3_column_int64(stmt, 2);
        info->seq_len = sqlite3_column_int(stmt, 3);
        info->n_sequences = sqlite3_column_int(stmt, 4);
        info->d_model = sqlite3_column_int(stmt, 5);
        info->f16 = !strcmp((const char *)sqlite3_column_text(stmt, 6), "f16");
        snprintf(info->split, sizeof info->split, "%s", (const char *)sqlite3_column_text(stmt, 7));
        snprintf(info->status, sizeof info->status, "%s", (const char *)sqlite3_column_text(stmt, 8));
        snprintf(distances, sizeof distances, "%s", (const char *)sqlite3_column_text(stmt, 9));
        info->checkpoint_step = sqlite3_column_int64(stmt, 10);
    }
    sqlite3_finalize(stmt);
    if (!found)
        return spiral_error("%s: run %s has no recording on dataset %s (split %s); make one with "
                            "'spiral record'", store->path, run_name, dataset_name, split);
    recording_shown_status(store, info->run_id, info->dataset_id, info->split, info->status,
                           sizeof info->status);
    return parse_distances(store, info, distances);
}

int recording_list(Store *store, const char *split, RecordingListRow **rows, int *n) {
    sqlite3_stmt *stmt;
    *rows = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT r.id, runs.name, d.name, r.split, r.status, r.run_id, r.dataset_id"
                           " FROM recordings r JOIN runs ON runs.id = r.run_id"
                           " JOIN datasets d ON d.id = r.dataset_id"
                           " WHERE ?1 IS NULL OR r.split = ?1 ORDER BY runs.name, d.name, r.split",
                           -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    if (split) sqlite3_bind_text(stmt, 1, split, -1, SQLITE_STATIC);
    int capacity = 0, status = 0, rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*n == capacity) {
            capacity = capacity ? 2 * capacity : 16;
            RecordingListRow *grown = realloc(*rows, (size_t)capacity * sizeof *grown);
            if (!grown) {
                status = spiral_error("out of memory listing recordings");
                break;
            }
            *rows = grown;
        }
        RecordingListRow *row = &(*rows)[(*n)++];
        row->id = sqlite3_column_int64(stmt, 0);
        snprintf(row->run, sizeof row->run, "%s", (const char *)sqlite3_column_text(stmt, 1));
        snprintf(row->dataset, sizeof row->dataset, "%s", (const char *)sqlite3_column_text(stmt, 2));
        snprintf(row->split, sizeof row->split, "%s", (const char *)sqlite3_column_text(stmt, 3));
        snprintf(row->status, sizeof row->status, "%s", (const char *)sqlite3_column_text(stmt, 4));
        recording_shown_status(store, sqlite3_column_int64(stmt, 5), sqlite3_column_int64(stmt, 6),
                               row->split, row->status, sizeof row->status);
    }
    if (status == 0 && rc != SQLITE_DONE)
        status = spiral_error("%s: listing recordings: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_finalize(stmt);
    if (status) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return status;
}

int recording_read_state(Store *store, const RecordingInfo *info, int seq, int step,
                         const char *site, int scale, float *out, int *rows, int *cols) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT rowid, rows, cols, dtype FROM states WHERE recording_id=? AND"
                           " seq=? AND iteration=? AND site=? AND scale=?", -1, &stmt,
                           NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, info->id);
    sqlite3_bind_int(stmt, 2, seq);
    sqlite3_bind_int(stmt, 3, step);
    sqlite3_bind_text(stmt, 4, site, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 5, scale);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        return spiral_error("no state recorded for sequence %d, iteration %d, site %s, scale %d",
                            seq, step, site, scale);
    }
    long long rowid = sqlite3_column_int64(stmt, 0);
    *rows = sqlite3_column_int(stmt, 1);
    *cols = sqlite3_column_int(stmt, 2);
    int f16 = !strcmp((const char *)sqlite3_column_text(stmt, 3), "f16");
    sqlite3_finalize(stmt);
    size_t count = (size_t)*rows * *cols;
    if (count > (size_t)info->seq_len * info->d_model)
        return spiral_error("state (%d x %d) larger than the recording's %d x %d", *rows, *cols,
                            info->seq_len, info->d_model);
    sqlite3_blob *blob;
    if (sqlite3_blob_open(store->db, "main", "states", "data", rowid, 0, &blob) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    size_t bytes = count * (f16 ? 2 : 4);
    uint16_t *halves = f16 ? malloc(bytes) : NULL;
    int rc = (size_t)sqlite3_blob_bytes(blob) != bytes ? SQLITE_CORRUPT
             : f16 && !halves                          ? SQLITE_NOMEM
                                                       : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = sqlite3_blob_read(blob, f16 ? (void *)halves : (void *)out, (int)bytes, 0);
    if (rc == SQLITE_OK && f16) floats_from_halves(out, halves, count);
    free(halves);
    sqlite3_blob_close(blob);
    if (rc != SQLITE_OK) return spiral_error("%s: reading a state: %s", store->path, sqlite3_errstr(rc));
    return 0;
}

int recording_read_token_index(Store *store, const RecordingInfo *info, int seq, size_t *index) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT token_index FROM record_sequences WHERE recording_id=? AND seq=?",
                           -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, info->id);
    sqlite3_bind_int(stmt, 2, seq);
    int status = 0;
    if (sqlite3_step(stmt) != SQLITE_ROW ||
        (size_t)sqlite3_column_bytes(stmt, 0) != (size_t)info->seq_len * sizeof(int64_t)) {
        status = spiral_error("sequence %d is not recorded", seq);
    } else {
        const int64_t *values = sqlite3_column_blob(stmt, 0);
        for (int i = 0; i < info->seq_len; i++) index[i] = (size_t)values[i];
    }
    sqlite3_finalize(stmt);
    return status;
}

int recording_list_sites(Store *store, const RecordingInfo *info, RecordedSite **sites,
                         int *n_sites) {
    sqlite3_stmt *stmt;
    *sites = NULL;
    *n_sites = 0;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT DISTINCT site, iteration, scale FROM states WHERE recording_id=?"
                           " ORDER BY CASE site WHEN 'token' THEN 0 WHEN 'latent_in' THEN 1"
                           " WHEN 'latent_out' THEN 2 WHEN 'coda' THEN 3 ELSE 4 END, site,"
                           " iteration, scale", -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, info->id);
    int capacity = 0, status = 0, rc = SQLITE_DONE;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*n_sites == capacity) {
            capacity = capacity ? 2 * capacity : 16;
            RecordedSite *grown = realloc(*sites, (size_t)capacity * sizeof *grown);
            if (!grown) {
                status = spiral_error("out of memory listing sites");
                break;
            }
            *sites = grown;
        }
        RecordedSite *s = &(*sites)[(*n_sites)++];
        snprintf(s->site, sizeof s->site, "%s", (const char *)sqlite3_column_text(stmt, 0));
        s->step = sqlite3_column_int(stmt, 1);
        s->scale = sqlite3_column_int(stmt, 2);
    }
    if (status == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        status = spiral_error("%s: listing recorded sites: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_finalize(stmt);
    if (status) {
        free(*sites);
        *sites = NULL;
        *n_sites = 0;
    }
    return status;
}

int recording_read_attention(Store *store, const RecordingInfo *info, int n_sequences,
                             int (*visit)(void *user, const AttentionRow *row), void *user) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT seq, iteration, block, layer, heads, rows, stats, scale"
                           " FROM attention_stats WHERE recording_id=? AND seq<?", -1, &stmt,
                           NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, info->id);
    sqlite3_bind_int(stmt, 2, n_sequences);
    float *stats = NULL;     /* the blob's alignment is SQLite's: a copy to read floats */
    size_t capacity = 0;
    int status = 0, rc = SQLITE_DONE;
    while (status == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *block = (const char *)sqlite3_column_text(stmt, 2);
        AttentionRow row = {
            .seq = sqlite3_column_int(stmt, 0), .step = sqlite3_column_int(stmt, 1),
            .block = block ? block : "", .layer = sqlite3_column_int(stmt, 3),
            .heads = sqlite3_column_int(stmt, 4), .rows = sqlite3_column_int(stmt, 5),
            .bytes = (size_t)sqlite3_column_bytes(stmt, 6), .scale = sqlite3_column_int(stmt, 7)};
        if (row.bytes > capacity) {
            free(stats);
            stats = malloc(row.bytes);
            capacity = stats ? row.bytes : 0;
            if (!stats) {
                status = spiral_error("out of memory reading attention statistics");
                break;
            }
        }
        if (row.bytes) memcpy(stats, sqlite3_column_blob(stmt, 6), row.bytes);
        row.stats = stats;
        status = visit(user, &row);
    }
    if (status == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        status = spiral_error("%s: reading attention statistics: %s", store->path,
                              sqlite3_errmsg(store->db));
    sqlite3_finalize(stmt);
    free(stats);
    return status;
}
