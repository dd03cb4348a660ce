/*
 * recording_store.c: writing a recording into the store (see
 * recording_store.h; the readers are in recording_read.c).
 *
 * Each batch's statements are prepared once, when the recording opens, and
 * reset and rebound for every row. States and statistics are plain INSERTs
 * after the sequence's leftovers are deleted: INSERT OR REPLACE with
 * foreign keys on made SQLite keep a statement journal of every page each
 * insert wrote, twice the state bytes again in a temporary file.
 */
#include "recording_store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

/* The distances as JSON text "[4,16,64]". */
static void distances_json(char *out, size_t size, const RecordingSettings *s) {
    size_t used = (size_t)snprintf(out, size, "[");
    for (int k = 0; k < s->n_distances && used < size; k++)
        used += (size_t)snprintf(out + used, size - used, "%s%d", k ? "," : "", s->distances[k]);
    if (used < size) snprintf(out + used, size - used, "]");
}

/* Prepares one statement on the store's connection or fails with its message. */
static int prepare_statement(Store *store, const char *sql, sqlite3_stmt **stmt) {
    if (sqlite3_prepare_v2(store->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: preparing '%s': %s", store->path, sql, sqlite3_errmsg(store->db));
    return 0;
}

/* The id of the recording of s's (run, dataset, split, step), 0 if none; *same
 * gets 1 if it was made with the settings s (dtype as text, distances as
 * JSON text). */
static int find_existing(Store *store, const RecordingSettings *s, const char *dtype,
                         const char *distances, long long *existing, int *same) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT id, seq_len, n_sequences, dtype, checkpoint_step, distances"
                           " FROM recordings WHERE run_id=? AND dataset_id=? AND split=?"
                           " AND checkpoint_step=?",
                           -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, s->run_id);
    sqlite3_bind_int64(stmt, 2, s->dataset_id);
    sqlite3_bind_text(stmt, 3, s->split, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, s->checkpoint_step);
    *existing = 0;
    *same = 0;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *existing = sqlite3_column_int64(stmt, 0);
        *same = sqlite3_column_int(stmt, 1) == s->seq_len &&
                sqlite3_column_int(stmt, 2) == s->n_sequences &&
                !strcmp((const char *)sqlite3_column_text(stmt, 3), dtype) &&
                sqlite3_column_int64(stmt, 4) == s->checkpoint_step &&
                !strcmp((const char *)sqlite3_column_text(stmt, 5), distances);
    }
    sqlite3_finalize(stmt);
    return 0;
}

/* Finds or creates the recording row (replacing one with other settings
 * if replace) in one transaction; *id gets its id. */
static int find_or_create(Store *store, const RecordingSettings *s, int replace, long long *id) {
    char distances[128];
    distances_json(distances, sizeof distances, s);
    const char *dtype = s->f16 ? "f16" : "f32";
    long long existing = 0;
    int same = 0;
    /* look up and create in one write transaction: of two recorders
     * starting at once, the second sees the first's row */
    if (store_begin(store)) return -1;
    if (find_existing(store, s, dtype, distances, &existing, &same)) goto fail;
    if (existing && !same && !replace) {
        spiral_error("run %s already has a recording of its step %lld checkpoint on this "
                     "dataset's %s split with other settings (sequences, length, dtype or "
                     "distances); use --replace to record it again", s->run_name,
                     s->checkpoint_step, s->split);
        goto fail;
    }
    if (existing && !same) {
        char sql[128];
        snprintf(sql, sizeof sql, "DELETE FROM recordings WHERE id=%lld", existing);
        if (store_exec(store, sql)) goto fail;
        existing = 0;
    }
    if (!existing) {
        sqlite3_stmt *stmt;
        if (sqlite3_prepare_v2(store->db,
                               "INSERT INTO recordings(run_id, dataset_id, split, seq_len,"
                               " n_sequences, dtype, checkpoint_step, d_model, distances, status)"
                               " VALUES(?,?,?,?,?,?,?,?,?,'running')", -1, &stmt, NULL) != SQLITE_OK)
            goto sqlfail;
        sqlite3_bind_int64(stmt, 1, s->run_id);
        sqlite3_bind_int64(stmt, 2, s->dataset_id);
        sqlite3_bind_text(stmt, 3, s->split, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 4, s->seq_len);
        sqlite3_bind_int(stmt, 5, s->n_sequences);
        sqlite3_bind_text(stmt, 6, dtype, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 7, s->checkpoint_step);
        sqlite3_bind_int(stmt, 8, s->d_model);
        sqlite3_bind_text(stmt, 9, distances, -1, SQLITE_STATIC);
        int rc = sqlite3_step(stmt);
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE) goto sqlfail;
        existing = sqlite3_last_insert_rowid(store->db);
    }
    if (store_commit(store)) goto fail;
    *id = existing;
    return 0;
sqlfail:
    spiral_error("%s: creating the recording: %s", store->path, sqlite3_errmsg(store->db));
fail:
    store_rollback(store);
    return -1;
}

/* done (n_sequences) = 1 for each sequence with a record_sequences row. */
static int read_done(Store *store, long long id, int n_sequences, unsigned char *done) {
    sqlite3_stmt *stmt;
    memset(done, 0, (size_t)n_sequences);
    if (sqlite3_prepare_v2(store->db, "SELECT seq FROM record_sequences WHERE recording_id=?", -1,
                           &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, id);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        int seq = sqlite3_column_int(stmt, 0);
        if (seq >= 0 && seq < n_sequences) done[seq] = 1;
    }
    sqlite3_finalize(stmt);
    return 0;
}

/* Finalizes the writer's statements. */
static void finalize_statements(RecordingWriter *w) {
    sqlite3_finalize(w->insert_state);
    sqlite3_finalize(w->insert_attention);
    sqlite3_finalize(w->insert_sequence);
    sqlite3_finalize(w->delete_states);
    sqlite3_finalize(w->delete_attention);
    w->insert_state = w->insert_attention = w->insert_sequence = NULL;
    w->delete_states = w->delete_attention = NULL;
}

void recording_lock_path(const Store *store, long long run_id, long long dataset_id,
                         const char *split, char *out, size_t size) {
    snprintf(out, size, "%s-locks/recording-%lld-%lld-%s", store->path, run_id, dataset_id, split);
}

void recording_shown_status(const Store *store, long long run_id, long long dataset_id,
                            const char *split, char *status, size_t size) {
    if (strcmp(status, "running") != 0) return;
    char path[1300];
    recording_lock_path(store, run_id, dataset_id, split, path, sizeof path);
    if (!owner_lock_probe(path, NULL, 0)) snprintf(status, size, "interrupted");
}

/* Takes the owner lock of s's recording (creating the lock folder), or
 * fails naming the process that holds it. */
static int take_owner_lock(RecordingWriter *w, Store *store, const RecordingSettings *s) {
    char folder[1100], path[1300], owner[400], holder[400];
    snprintf(folder, sizeof folder, "%s-locks", store->path);
    if (mkdir(folder, 0755) != 0 && errno != EEXIST)
        return spiral_error("%s: cannot create the folder of recording locks: %s", folder,
                            strerror(errno));
    recording_lock_path(store, s->run_id, s->dataset_id, s->split, path, sizeof path);
    snprintf(owner, sizeof owner, "pid %ld, recording run %s on dataset %s (%s split)",
             (long)getpid(), s->run_name, s->dataset_name ? s->dataset_name : "?", s->split);
    int taken = owner_lock_acquire(&w->lock, path, owner, holder, sizeof holder);
    if (taken == 1)
        return spiral_error("the recording of run %s on dataset %s (%s split) is being written "
                            "by another process (%s); wait for it to finish or stop it, then "
                            "run the same command again to complete the recording", s->run_name,
                            s->dataset_name ? s->dataset_name : "?", s->split,
                            holder[0] ? holder : "owner unknown");
    return taken;
}

int recording_writer_open(RecordingWriter *w, Store *store, const RecordingSettings *s,
                          int replace, unsigned char *done) {
    memset(w, 0, sizeof *w);
    w->store = store;
    w->f16 = s->f16;
    if (take_owner_lock(w, store, s) || find_or_create(store, s, replace, &w->id) ||
        read_done(store, w->id, s->n_sequences, done)) {
        owner_lock_release(&w->lock);
        w->store = NULL;
        return -1;
    }
    if (prepare_statement(store, "INSERT INTO states VALUES(?,?,?,?,?,?,?,?,?)", &w->insert_state) ||
        prepare_statement(store, "INSERT INTO attention_stats VALUES(?,?,?,?,?,?,?,?,?)",
                          &w->insert_attention) ||
        prepare_statement(store, "INSERT OR REPLACE INTO record_sequences VALUES(?,?,?)",
                          &w->insert_sequence) ||
        prepare_statement(store, "DELETE FROM states WHERE recording_id=? AND seq=?",
                          &w->delete_states) ||
        prepare_statement(store, "DELETE FROM attention_stats WHERE recording_id=? AND seq=?",
                          &w->delete_attention) ||
        store_exec(store, "PRAGMA wal_autocheckpoint=0")) {
        finalize_statements(w);
        owner_lock_release(&w->lock);
        w->store = NULL;
        return -1;
    }
    return 0;
}

int recording_writer_close(RecordingWriter *w, int status) {
    finalize_statements(w);
    /* the status is written (done, interrupted) before this: readers never
     * see 'running' without an owner for a recording that ended cleanly */
    owner_lock_release(&w->lock);
    /* back to SQLite's default, which store_open leaves in place; a failure
     * here matters only if the recording itself succeeded */
    if (status == 0) return store_exec(w->store, "PRAGMA wal_autocheckpoint=1000");
    sqlite3_exec(w->store->db, "PRAGMA wal_autocheckpoint=1000", NULL, NULL, NULL);
    return status;
}

int recording_clear_sequence(RecordingWriter *w, int seq) {
    sqlite3_stmt *statements[2] = {w->delete_states, w->delete_attention};
    for (int k = 0; k < 2; k++) {
        sqlite3_reset(statements[k]);
        sqlite3_bind_int64(statements[k], 1, w->id);
        sqlite3_bind_int(statements[k], 2, seq);
        if (sqlite3_step(statements[k]) != SQLITE_DONE)
            return spiral_error("%s: clearing sequence %d before recording it: %s",
                                w->store->path, seq, sqlite3_errmsg(w->store->db));
    }
    return 0;
}

int recording_insert_state(RecordingWriter *w, int seq, int step, const char *site, int scale,
                           int rows, int cols, const void *values) {
    size_t bytes = (size_t)rows * cols * (w->f16 ? 2 : 4);
    sqlite3_stmt *s = w->insert_state;
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, w->id);
    sqlite3_bind_int(s, 2, seq);
    sqlite3_bind_int(s, 3, step);
    sqlite3_bind_text(s, 4, site, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, scale);
    sqlite3_bind_int(s, 6, rows);
    sqlite3_bind_int(s, 7, cols);
    sqlite3_bind_text(s, 8, w->f16 ? "f16" : "f32", -1, SQLITE_STATIC);
    sqlite3_bind_blob64(s, 9, values, bytes, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE)
        return spiral_error("%s: inserting a state: %s", w->store->path, sqlite3_errmsg(w->store->db));
    return 0;
}

int recording_insert_attention(RecordingWriter *w, int seq, int step, const char *block,
                               int layer, int scale, int heads, int rows, int n_stats,
                               const float *stats) {
    sqlite3_stmt *s = w->insert_attention;
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, w->id);
    sqlite3_bind_int(s, 2, seq);
    sqlite3_bind_int(s, 3, step);
    sqlite3_bind_text(s, 4, block, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, layer);
    sqlite3_bind_int(s, 6, scale);
    sqlite3_bind_int(s, 7, heads);
    sqlite3_bind_int(s, 8, rows);
    sqlite3_bind_blob64(s, 9, stats, (size_t)heads * rows * n_stats * sizeof(float), SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE)
        return spiral_error("%s: inserting attention statistics: %s", w->store->path,
                            sqlite3_errmsg(w->store->db));
    return 0;
}

int recording_insert_sequence(RecordingWriter *w, int seq, const int64_t *token_index,
                              int seq_len) {
    sqlite3_stmt *s = w->insert_sequence;
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, w->id);
    sqlite3_bind_int(s, 2, seq);
    sqlite3_bind_blob64(s, 3, token_index, (size_t)seq_len * sizeof(int64_t), SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE)
        return spiral_error("%s: recording sequence %d: %s", w->store->path, seq,
                            sqlite3_errmsg(w->store->db));
    return 0;
}

int recording_mark_done(RecordingWriter *w) { return recording_set_status(w, "done"); }

int recording_set_status(RecordingWriter *w, const char *status) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(w->store->db, "UPDATE recordings SET status=? WHERE id=?", -1, &stmt,
                           NULL) != SQLITE_OK)
        return spiral_error("%s: %s", w->store->path, sqlite3_errmsg(w->store->db));
    sqlite3_bind_text(stmt, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, w->id);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return spiral_error("%s: setting recording %lld's status: %s", w->store->path, w->id,
                            sqlite3_errmsg(w->store->db));
    return 0;
}
