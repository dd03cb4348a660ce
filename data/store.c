/*
 * store.c: the SQLite experiment store (see store.h, and README "The
 * experiment store" for the schema as a user sees it).
 *
 * This file opens a store and creates or migrates its schema; the
 * datasets live in store_datasets.c, runs, metrics and checkpoints in
 * store_runs.c, and the helpers they share are declared in store_sql.h.
 * Every statement is prepared, bound and finalized in the function that
 * uses it; errors carry the store's path and SQLite's message.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>

#include "error.h"
#include "fileio.h"
#include "names.h"
#include "store_sql.h"

/* Version 1 of the schema. Arrays are little-endian BLOBs:
 * tokens uint16, doc_start int64 (n_docs + 1), doc_split uint8,
 * true_nll float64, label values int32. */
static const char schema_v1[] =
    "CREATE TABLE schema_version(version INTEGER NOT NULL);"
    "CREATE TABLE datasets("
    "  id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, family TEXT NOT NULL,"
    "  params TEXT NOT NULL, seed INTEGER NOT NULL, vocab_size INTEGER NOT NULL,"
    "  n_tokens INTEGER NOT NULL, n_docs INTEGER NOT NULL,"
    "  created TEXT NOT NULL DEFAULT (datetime('now')));"
    "CREATE TABLE dataset_arrays("
    "  dataset_id INTEGER PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,"
    "  tokens BLOB NOT NULL, doc_start BLOB NOT NULL, doc_split BLOB NOT NULL,"
    "  true_nll BLOB);"
    "CREATE TABLE labels("
    "  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL, n_classes INTEGER NOT NULL, label_values BLOB NOT NULL,"
    "  PRIMARY KEY(dataset_id, name));"
    "CREATE TABLE runs("
    "  id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, kind TEXT NOT NULL,"
    "  config TEXT NOT NULL, dataset_id INTEGER REFERENCES datasets(id),"
    "  status TEXT NOT NULL, message TEXT, command TEXT, step INTEGER NOT NULL DEFAULT 0,"
    "  created TEXT NOT NULL DEFAULT (datetime('now')), updated TEXT);"
    "CREATE TABLE metrics("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,"
    "  loss REAL, val_loss REAL, lr REAL, grad_norm REAL, tokens INTEGER, flops REAL,"
    "  wall_seconds REAL, PRIMARY KEY(run_id, step));"
    "CREATE TABLE checkpoints("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,"
    "  path TEXT NOT NULL, sha256 TEXT NOT NULL,"
    "  created TEXT NOT NULL DEFAULT (datetime('now')), PRIMARY KEY(run_id, step));"
    "INSERT INTO schema_version VALUES(1);";

/* Version 2 adds recordings of hidden states and attention statistics.
 * states.data is rows x cols values of dtype ('f32' or 'f16', little
 * endian); attention_stats.stats is float32 (heads, rows, 2 + n_distances):
 * mean attention distance in tokens, entropy in nats, and the attention mass
 * beyond each distance of recordings.distances. */
static const char schema_v2[] =
    "CREATE TABLE recordings("
    "  id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    "  split TEXT NOT NULL, seq_len INTEGER NOT NULL, n_sequences INTEGER NOT NULL,"
    "  dtype TEXT NOT NULL, checkpoint_step INTEGER NOT NULL, d_model INTEGER NOT NULL,"
    "  distances TEXT NOT NULL, status TEXT NOT NULL,"
    "  created TEXT NOT NULL DEFAULT (datetime('now')), UNIQUE(run_id, dataset_id, split));"
    "CREATE TABLE record_sequences("
    "  recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL, token_index BLOB NOT NULL, PRIMARY KEY(recording_id, seq));"
    "CREATE TABLE states("
    "  recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL, iteration INTEGER NOT NULL, site TEXT NOT NULL,"
    "  scale INTEGER NOT NULL, rows INTEGER NOT NULL, cols INTEGER NOT NULL,"
    "  dtype TEXT NOT NULL, data BLOB NOT NULL,"
    "  PRIMARY KEY(recording_id, seq, iteration, site, scale));"
    "CREATE TABLE attention_stats("
    "  recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL, iteration INTEGER NOT NULL, block TEXT NOT NULL,"
    "  layer INTEGER NOT NULL, scale INTEGER NOT NULL, heads INTEGER NOT NULL,"
    "  rows INTEGER NOT NULL, stats BLOB NOT NULL,"
    "  PRIMARY KEY(recording_id, seq, iteration, block, layer));"
    "INSERT INTO schema_version VALUES(2);";

/* Version 3 adds probe and analysis results.
 * probe_results: one fitted probe (or one of its controls) per row; control
 * is 'none' for the probe itself, else 'control_task' (Hewitt & Liang),
 * 'random_model' (same config, untrained), 'position' (position features
 * only) or 'permuted' (labels permuted across sequences).
 * analysis_results: one number (value, with an optional CI) or array (data,
 * float64 little-endian) per row, keyed by what it measures (kind) and
 * where (iteration, iteration2, block, layer, head). */
static const char schema_v3[] =
    "CREATE TABLE probe_results("
    "  id INTEGER PRIMARY KEY,"
    "  recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
    "  label TEXT NOT NULL, site TEXT NOT NULL, iteration INTEGER NOT NULL,"
    "  scale INTEGER NOT NULL, control TEXT NOT NULL,"
    "  accuracy REAL, ci_lo REAL, ci_hi REAL, macro_f1 REAL, majority REAL,"
    "  n_train INTEGER, n_val INTEGER, n_test INTEGER, l2 REAL, iterations INTEGER,"
    "  converged INTEGER, grad_norm REAL, seed INTEGER, seconds REAL,"
    "  created TEXT NOT NULL DEFAULT (datetime('now')),"
    "  UNIQUE(recording_id, label, site, iteration, scale, control));"
    "CREATE TABLE probe_summaries("
    "  recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
    "  label TEXT NOT NULL, site TEXT NOT NULL, expected_iteration REAL,"
    "  encoded TEXT NOT NULL, PRIMARY KEY(recording_id, label, site));"
    "CREATE TABLE analysis_results("
    "  id INTEGER PRIMARY KEY,"
    "  recording_id INTEGER REFERENCES recordings(id) ON DELETE CASCADE,"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,"
    "  kind TEXT NOT NULL, iteration INTEGER, iteration2 INTEGER, block TEXT,"
    "  layer INTEGER, head INTEGER, value REAL, ci_lo REAL, ci_hi REAL, data BLOB,"
    "  created TEXT NOT NULL DEFAULT (datetime('now')));"
    "CREATE INDEX analysis_by_kind ON analysis_results(recording_id, kind);"
    "INSERT INTO schema_version VALUES(3);";

/* Version 4 keys a recording by the checkpoint step too, so recordings of
 * one run at several steps (train.keep_steps, record --step) live side by
 * side. SQLite cannot change a UNIQUE constraint in place: the table is
 * rebuilt and renamed (its rows and ids kept, so states, probe results and
 * analyses still point at them). This migration runs with foreign keys
 * off, so that dropping the old table deletes nothing that refers to it. */
static const char schema_v4[] =
    "CREATE TABLE recordings_v4("
    "  id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    "  split TEXT NOT NULL, seq_len INTEGER NOT NULL, n_sequences INTEGER NOT NULL,"
    "  dtype TEXT NOT NULL, checkpoint_step INTEGER NOT NULL, d_model INTEGER NOT NULL,"
    "  distances TEXT NOT NULL, status TEXT NOT NULL,"
    "  created TEXT NOT NULL DEFAULT (datetime('now')),"
    "  UNIQUE(run_id, dataset_id, split, checkpoint_step));"
    "INSERT INTO recordings_v4(id, run_id, dataset_id, split, seq_len, n_sequences, dtype,"
    "  checkpoint_step, d_model, distances, status, created)"
    "  SELECT id, run_id, dataset_id, split, seq_len, n_sequences, dtype, checkpoint_step,"
    "  d_model, distances, status, created FROM recordings;"
    "DROP TABLE recordings;"
    "ALTER TABLE recordings_v4 RENAME TO recordings;"
    "INSERT INTO schema_version VALUES(4);";

/* Version 5 adds lens_results: the logit lens, test-time depth and
 * interventions (data/lens_store.h says what each mode's row holds). */
static const char schema_v5[] =
    "CREATE TABLE lens_results("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    "  split TEXT NOT NULL, checkpoint_step INTEGER NOT NULL, schedule TEXT NOT NULL,"
    "  intervention TEXT NOT NULL, mode TEXT NOT NULL, iteration INTEGER NOT NULL,"
    "  slot INTEGER NOT NULL, g INTEGER NOT NULL, row_schedule TEXT NOT NULL,"
    "  n_sequences INTEGER NOT NULL, n_tokens INTEGER NOT NULL,"
    "  loss REAL, loss_lo REAL, loss_hi REAL, accuracy REAL, acc_lo REAL, acc_hi REAL,"
    "  delta REAL, delta_lo REAL, delta_hi REAL,"
    "  created TEXT NOT NULL DEFAULT (datetime('now')),"
    "  UNIQUE(run_id, dataset_id, split, checkpoint_step, schedule, intervention, mode,"
    "         iteration, slot));"
    "INSERT INTO schema_version VALUES(5);";

/* Migrations: migrations[v] takes a store from version v to v + 1. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {schema_v1, schema_v2, schema_v3,
                                                             schema_v4, schema_v5};

int store_fail(Store *store, const char *what) {
    return spiral_error("%s: %s: %s", store->path, what,
                        store->db ? sqlite3_errmsg(store->db) : "no database");
}

int store_exec(Store *store, const char *sql) {
    char *message = NULL;
    if (sqlite3_exec(store->db, sql, NULL, NULL, &message) != SQLITE_OK) {
        spiral_error("%s: %s", store->path, message ? message : "error");
        sqlite3_free(message);
        return -1;
    }
    return 0;
}

int store_prepare(Store *store, const char *sql, sqlite3_stmt **stmt) {
    if (sqlite3_prepare_v2(store->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return store_fail(store, "prepare");
    return 0;
}

int store_step_done(Store *store, sqlite3_stmt *stmt, const char *what) {
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        store_fail(store, what);
        sqlite3_finalize(stmt);
        return -1;
    }
    sqlite3_finalize(stmt);
    return 0;
}

/* The schema version of an open store (0 if it has no schema yet). */
static int schema_version(Store *store, int *version) {
    sqlite3_stmt *stmt;
    *version = 0;
    if (store_prepare(store, "SELECT count(*) FROM sqlite_master WHERE name='schema_version'", &stmt))
        return -1;
    int exists = sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int(stmt, 0) > 0;
    sqlite3_finalize(stmt);
    if (!exists) return 0;
    if (store_prepare(store, "SELECT max(version) FROM schema_version", &stmt)) return -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) *version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return 0;
}

/* An SQLite file with tables but no schema_version table belongs to
 * someone else: refuse it before anything is written to it. An empty
 * database (a new file) is fine. */
static int refuse_foreign(Store *store) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT count(*), sum(name = 'schema_version') FROM sqlite_master"
                           " WHERE type = 'table'", -1, &stmt, NULL) != SQLITE_OK) {
        const char *message = sqlite3_errmsg(store->db);
        if (strstr(message, "file is not a database"))
            return spiral_error("%s: not a spiral store (not an SQLite database)", store->path);
        return spiral_error("%s: %s", store->path, message);
    }
    int tables = 0, ours = 0;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        tables = sqlite3_column_int(stmt, 0);
        ours = sqlite3_column_int(stmt, 1);
    }
    sqlite3_finalize(stmt);
    if (tables > 0 && !ours)
        return spiral_error("%s: not a spiral store (an SQLite database with %d table%s of its "
                            "own and no schema_version); spiral leaves it untouched",
                            store->path, tables, tables == 1 ? "" : "s");
    return 0;
}

int store_open_readonly(Store *store, const char *path) {
    memset(store, 0, sizeof *store);
    snprintf(store->path, sizeof store->path, "%s", path);
    if (sqlite3_open_v2(path, &store->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        spiral_error("%s: cannot open store (does it exist?): %s", path,
                     store->db ? sqlite3_errmsg(store->db) : "out of memory");
        store_close(store);
        return -1;
    }
    sqlite3_busy_timeout(store->db, 30000);
    int version;
    if (refuse_foreign(store) || schema_version(store, &version)) {
        store_close(store);
        return -1;
    }
    if (version != STORE_SCHEMA_VERSION) {
        if (version == 0)
            spiral_error("%s: not a spiral store (an empty database)", path);
        else if (version > STORE_SCHEMA_VERSION)
            spiral_error("%s: store schema version %d is newer than this spiral (%d); upgrade spiral",
                         path, version, STORE_SCHEMA_VERSION);
        else
            spiral_error("%s: store schema version %d is older than this spiral's (%d); a command "
                         "that writes to the store (train, record, probe, analyze, data make) "
                         "upgrades it", path, version, STORE_SCHEMA_VERSION);
        store_close(store);
        return -1;
    }
    return 0;
}

int store_open(Store *store, const char *path, int create) {
    memset(store, 0, sizeof *store);
    snprintf(store->path, sizeof store->path, "%s", path);
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &store->db, flags, NULL) != SQLITE_OK) {
        int rc = store->db ? sqlite3_errcode(store->db) : SQLITE_CANTOPEN;
        spiral_error("%s: cannot open store%s: %s", path,
                     rc == SQLITE_CANTOPEN && !create ? " (does it exist?)" : "",
                     store->db ? sqlite3_errmsg(store->db) : "out of memory");
        store_close(store);
        return -1;
    }
    sqlite3_busy_timeout(store->db, 30000);
    int version;
    if (refuse_foreign(store)) {
        store_close(store);
        return -1;
    }
    /* page_size only takes effect before the first table: 64 KiB pages make
     * large BLOB writes several times faster (DESIGN.md section 3). */
    if (store_exec(store, "PRAGMA page_size=65536") || schema_version(store, &version) ||
        store_exec(store, "PRAGMA journal_mode=WAL") ||
        store_exec(store, "PRAGMA foreign_keys=ON") ||
        store_exec(store, "PRAGMA synchronous=NORMAL")) {
        if (strstr(spiral_last_error(), "file is not a database"))
            spiral_error("%s: not a spiral store (not an SQLite database)", path);
        store_close(store);
        return -1;
    }
    if (version > STORE_SCHEMA_VERSION) {
        spiral_error("%s: store schema version %d is newer than this spiral (%d); upgrade spiral",
                     path, version, STORE_SCHEMA_VERSION);
        store_close(store);
        return -1;
    }
    /* Each migration in its own transaction; the version is re-read inside
     * it, so two processes opening an old store at once migrate it once.
     * Foreign keys are off while migrating (a table rebuild must not
     * cascade; the pragma is a no-op inside a transaction). */
    if (version < STORE_SCHEMA_VERSION && store_exec(store, "PRAGMA foreign_keys=OFF")) goto fail;
    while (version < STORE_SCHEMA_VERSION) {
        if (store_begin(store)) goto fail;
        if (schema_version(store, &version)) goto fail_rollback;
        if (version < STORE_SCHEMA_VERSION && store_exec(store, migrations[version]))
            goto fail_rollback;
        if (store_commit(store) || schema_version(store, &version)) goto fail;
    }
    if (store_exec(store, "PRAGMA foreign_keys=ON")) goto fail;
    return 0;
fail_rollback:
    store_rollback(store);
fail:
    spiral_error_prefix("creating the schema");
    store_close(store);
    return -1;
}

void store_close(Store *store) {
    if (store->db) sqlite3_close(store->db);
    store->db = NULL;
}

int store_begin(Store *store) { return store_exec(store, "BEGIN IMMEDIATE"); }
int store_commit(Store *store) { return store_exec(store, "COMMIT"); }
void store_rollback(Store *store) {
    char *message = NULL;
    sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, &message);
    sqlite3_free(message);
}

/* ------------------------------------------------------------------------ */
/* WAL checkpoints                                                          */

int store_wal_checkpoint(Store *store) {
    int rc = sqlite3_wal_checkpoint_v2(store->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) return store_fail(store, "WAL checkpoint");
    return 0;
}

/* strdup of a text column ("" for NULL). */
char *store_column_strdup(sqlite3_stmt *stmt, int column) {
    const unsigned char *text = sqlite3_column_text(stmt, column);
    return strdup(text ? (const char *)text : "");
}

int store_no_such_name(Store *store, const char *what, const char *name, const char *select_names,
                        const char *if_none) {
    sqlite3_stmt *stmt;
    char listed[512] = "", hint[300] = "";
    const char *names[64];
    int n = 0;
    size_t used = 0;
    if (store_prepare(store, select_names, &stmt) == 0) {
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            const char *text = (const char *)sqlite3_column_text(stmt, 0);
            if (!text) continue;
            if (used + strlen(text) + 8 < sizeof listed)
                used += (size_t)snprintf(listed + used, sizeof listed - used, "%s%s",
                                         used ? ", " : "", text);
            else if (used + 6 < sizeof listed && !strstr(listed, ", ..."))
                used += (size_t)snprintf(listed + used, sizeof listed - used, ", ...");
            if (n < 64) names[n++] = strdup(text);
        }
        sqlite3_finalize(stmt);
    }
    const char *closest = closest_name(name, names, n);
    if (closest) snprintf(hint, sizeof hint, "did you mean '%s'? ", closest);
    int status = spiral_error("%s: no %s named '%s' (%sthe store has: %s)", store->path, what, name,
                              hint, listed[0] ? listed : if_none);
    for (int i = 0; i < n; i++) free((char *)names[i]);
    return status;
}

char *store_path_resolve(const Store *store, const char *stored) {
    if (stored[0] == '/') return strdup(stored);
    char dir[1024], joined[2200];
    path_parent(store->path, dir, sizeof dir);
    snprintf(joined, sizeof joined, "%s/%s", dir, stored);
    /* a store written before paths were kept relative to it holds paths
     * relative to the working directory of the command that wrote them */
    if (access(joined, F_OK) != 0 && access(stored, F_OK) == 0) return strdup(stored);
    return strdup(joined);
}

char *store_path_relative(const Store *store, const char *path) {
    char dir[1024], real_dir[PATH_MAX], real_path[PATH_MAX];
    path_parent(store->path, dir, sizeof dir);
    if (!realpath(dir, real_dir) || !realpath(path, real_path)) return strdup(path);
    size_t n = strlen(real_dir);
    if (strcmp(real_dir, "/") != 0 && strncmp(real_path, real_dir, n) == 0 && real_path[n] == '/')
        return strdup(real_path + n + 1);
    return strdup(real_path);
}
