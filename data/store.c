/*
 * store.c: the SQLite experiment store (see store.h, and README "The
 * experiment store" for the schema as a user sees it).
 *
 * Every statement is prepared, bound and finalized in the function that
 * uses it; errors carry the store's path and SQLite's message.
 */
#include "store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "names.h"

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

/* Migrations: migrations[v] takes a store from version v to v + 1. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {schema_v1, schema_v2, schema_v3};

/* Sets the error from SQLite's last message on this connection. */
static int store_fail(Store *store, const char *what) {
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

/* Prepares one statement or fails with the store's message. */
static int prepare(Store *store, const char *sql, sqlite3_stmt **stmt) {
    if (sqlite3_prepare_v2(store->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return store_fail(store, "prepare");
    return 0;
}

/* Runs a prepared statement that returns no row, then finalizes it. */
static int step_done(Store *store, sqlite3_stmt *stmt, const char *what) {
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
    if (prepare(store, "SELECT count(*) FROM sqlite_master WHERE name='schema_version'", &stmt))
        return -1;
    int exists = sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int(stmt, 0) > 0;
    sqlite3_finalize(stmt);
    if (!exists) return 0;
    if (prepare(store, "SELECT max(version) FROM schema_version", &stmt)) return -1;
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
     * large BLOB writes several times faster. */
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
     * it, so two processes opening an old store at once migrate it once. */
    while (version < STORE_SCHEMA_VERSION) {
        if (store_begin(store)) goto fail;
        if (schema_version(store, &version)) goto fail_rollback;
        if (version < STORE_SCHEMA_VERSION && store_exec(store, migrations[version]))
            goto fail_rollback;
        if (store_commit(store) || schema_version(store, &version)) goto fail;
    }
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

/* ------------------------------------------------------------------------ */
/* Datasets                                                                 */

/* Little-endian byte images of the dataset arrays (x86 and ARM are little
 * endian, so these are copies; the format does not depend on it). */
static void *int64_blob(const size_t *values, size_t n) {
    unsigned char *bytes = malloc(n * 8 + 1);
    if (!bytes) return NULL;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++) bytes[i * 8 + b] = (unsigned char)((uint64_t)values[i] >> (8 * b));
    return bytes;
}

int store_dataset_save(Store *store, const char *name, const Dataset *ds, unsigned long seed,
                       long long *id) {
    sqlite3_stmt *stmt = NULL;
    void *doc_start = int64_blob(ds->doc_start, ds->n_docs + 1);
    if (!doc_start) return spiral_error("out of memory saving dataset %s", name);
    if (store_begin(store)) {
        free(doc_start);
        return -1;
    }
    if (prepare(store, "SELECT 1 FROM datasets WHERE name=?", &stmt)) goto fail;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int exists = sqlite3_step(stmt) == SQLITE_ROW;
    sqlite3_finalize(stmt);
    if (exists) {
        spiral_error("%s: a dataset named '%s' already exists", store->path, name);
        goto fail;
    }
    if (prepare(store,
                "INSERT INTO datasets(name, family, params, seed, vocab_size, n_tokens, n_docs)"
                " VALUES(?,?,?,?,?,?,?)", &stmt))
        goto fail;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, ds->family, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, ds->params_json ? ds->params_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, (long long)seed);
    sqlite3_bind_int(stmt, 5, ds->vocab_size);
    sqlite3_bind_int64(stmt, 6, (long long)ds->n_tokens);
    sqlite3_bind_int64(stmt, 7, (long long)ds->n_docs);
    if (step_done(store, stmt, "insert dataset")) goto fail;
    long long dataset_id = sqlite3_last_insert_rowid(store->db);

    if (prepare(store, "INSERT INTO dataset_arrays VALUES(?,?,?,?,?)", &stmt)) goto fail;
    sqlite3_bind_int64(stmt, 1, dataset_id);
    sqlite3_bind_blob64(stmt, 2, ds->tokens ? (const void *)ds->tokens : "", ds->n_tokens * 2,
                        SQLITE_STATIC);
    sqlite3_bind_blob64(stmt, 3, doc_start, (ds->n_docs + 1) * 8, SQLITE_STATIC);
    sqlite3_bind_blob64(stmt, 4, ds->doc_split ? (const void *)ds->doc_split : "", ds->n_docs,
                        SQLITE_STATIC);
    if (ds->true_nll)
        sqlite3_bind_blob64(stmt, 5, ds->true_nll, ds->n_tokens * 8, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 5);
    if (step_done(store, stmt, "insert dataset arrays")) goto fail;

    for (int l = 0; l < ds->n_labels; l++) {
        if (prepare(store, "INSERT INTO labels VALUES(?,?,?,?)", &stmt)) goto fail;
        sqlite3_bind_int64(stmt, 1, dataset_id);
        sqlite3_bind_text(stmt, 2, ds->labels[l].name, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 3, ds->labels[l].n_classes);
        sqlite3_bind_blob64(stmt, 4, ds->labels[l].values ? (const void *)ds->labels[l].values : "",
                            ds->n_tokens * 4, SQLITE_STATIC);
        if (step_done(store, stmt, "insert label")) goto fail;
    }
    if (store_commit(store)) goto fail;
    free(doc_start);
    if (id) *id = dataset_id;
    return 0;
fail:
    store_rollback(store);
    free(doc_start);
    return -1;
}

/* Copies a BLOB column of exactly `bytes` bytes into a new buffer. */
static int blob_copy(Store *store, sqlite3_stmt *stmt, int column, size_t bytes, void **out,
                     const char *what) {
    size_t have = (size_t)sqlite3_column_bytes(stmt, column);
    if (have != bytes)
        return spiral_error("%s: dataset %s has %zu bytes, expected %zu (corrupt store?)",
                            store->path, what, have, bytes);
    *out = malloc(bytes ? bytes : 1);
    if (!*out) return spiral_error("out of memory loading %s", what);
    if (bytes) memcpy(*out, sqlite3_column_blob(stmt, column), bytes);
    return 0;
}

/* "no TABLE named 'x' (did you mean 'y'? the store has: a, b, c)": the
 * message for a name that `select_names` (one column of names) lacks. */
static int no_such_name(Store *store, const char *what, const char *name, const char *select_names,
                        const char *if_none) {
    sqlite3_stmt *stmt;
    char listed[512] = "", hint[300] = "";
    const char *names[64];
    int n = 0;
    size_t used = 0;
    if (prepare(store, select_names, &stmt) == 0) {
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

int store_dataset_load(Store *store, const char *name, Dataset *ds, long long *id) {
    sqlite3_stmt *stmt = NULL;
    memset(ds, 0, sizeof *ds);
    if (prepare(store,
                "SELECT d.id, family, params, vocab_size, n_tokens, n_docs, tokens, doc_start,"
                " doc_split, true_nll FROM datasets d JOIN dataset_arrays a ON a.dataset_id = d.id"
                " WHERE name = ?", &stmt))
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        return no_such_name(store, "dataset", name, "SELECT name FROM datasets ORDER BY id",
                            "none; make one with 'spiral data make'");
    }
    long long dataset_id = sqlite3_column_int64(stmt, 0);
    snprintf(ds->family, sizeof ds->family, "%s", (const char *)sqlite3_column_text(stmt, 1));
    ds->params_json = strdup((const char *)sqlite3_column_text(stmt, 2));
    ds->vocab_size = sqlite3_column_int(stmt, 3);
    ds->n_tokens = (size_t)sqlite3_column_int64(stmt, 4);
    ds->n_docs = (size_t)sqlite3_column_int64(stmt, 5);
    void *starts_bytes = NULL;
    if (!ds->params_json ||
        blob_copy(store, stmt, 6, ds->n_tokens * 2, (void **)&ds->tokens, "tokens") ||
        blob_copy(store, stmt, 7, (ds->n_docs + 1) * 8, &starts_bytes, "doc_start") ||
        blob_copy(store, stmt, 8, ds->n_docs, (void **)&ds->doc_split, "doc_split"))
        goto fail;
    if (sqlite3_column_type(stmt, 9) != SQLITE_NULL &&
        blob_copy(store, stmt, 9, ds->n_tokens * 8, (void **)&ds->true_nll, "true_nll"))
        goto fail;
    sqlite3_finalize(stmt);
    stmt = NULL;
    ds->doc_start = malloc((ds->n_docs + 1) * sizeof(size_t));
    if (!ds->doc_start) goto fail;
    const unsigned char *sb = starts_bytes;
    for (size_t i = 0; i <= ds->n_docs; i++) {
        uint64_t v = 0;
        for (int b = 0; b < 8; b++) v |= (uint64_t)sb[i * 8 + b] << (8 * b);
        ds->doc_start[i] = (size_t)v;
    }
    free(starts_bytes);
    starts_bytes = NULL;
    ds->capacity_tokens = ds->n_tokens;
    ds->capacity_docs = ds->n_docs;

    if (prepare(store, "SELECT count(*) FROM labels WHERE dataset_id = ?", &stmt)) goto fail;
    sqlite3_bind_int64(stmt, 1, dataset_id);
    sqlite3_step(stmt);
    int n_labels = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    ds->labels = calloc((size_t)n_labels + 1, sizeof(DatasetLabel));
    if (!ds->labels) { stmt = NULL; goto fail; }
    if (prepare(store, "SELECT name, n_classes, label_values FROM labels WHERE dataset_id = ?"
                       " ORDER BY rowid", &stmt))
        goto fail;
    sqlite3_bind_int64(stmt, 1, dataset_id);
    while (ds->n_labels < n_labels && sqlite3_step(stmt) == SQLITE_ROW) {
        DatasetLabel *label = &ds->labels[ds->n_labels++];
        snprintf(label->name, sizeof label->name, "%s", (const char *)sqlite3_column_text(stmt, 0));
        label->n_classes = sqlite3_column_int(stmt, 1);
        if (blob_copy(store, stmt, 2, ds->n_tokens * 4, (void **)&label->values, label->name))
            goto fail;
    }
    sqlite3_finalize(stmt);
    if (dataset_validate(ds)) {
        spiral_error_prefix("%s: dataset %s", store->path, name);
        dataset_free(ds);
        return -1;
    }
    if (id) *id = dataset_id;
    return 0;
fail:
    if (stmt) sqlite3_finalize(stmt);
    free(starts_bytes);
    dataset_free(ds);
    if (!spiral_last_error()[0]) spiral_error("out of memory loading dataset %s", name);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Runs, metrics, checkpoints                                               */

int store_run_create(Store *store, const char *name, const char *kind, const char *config_json,
                     long long dataset_id, const char *command, long long *run_id) {
    sqlite3_stmt *stmt;
    if (prepare(store, "SELECT 1 FROM runs WHERE name = ?", &stmt)) return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int exists = sqlite3_step(stmt) == SQLITE_ROW;
    sqlite3_finalize(stmt);
    if (exists)
        return spiral_error("%s: a run named '%s' already exists (resume it with --resume %s, "
                            "or choose another --name)", store->path, name, name);
    if (prepare(store, "INSERT INTO runs(name, kind, config, dataset_id, status, command, updated)"
                       " VALUES(?,?,?,?,'created',?,datetime('now'))", &stmt))
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, config_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, dataset_id);
    sqlite3_bind_text(stmt, 5, command ? command : "", -1, SQLITE_STATIC);
    if (step_done(store, stmt, "insert run")) return -1;
    *run_id = sqlite3_last_insert_rowid(store->db);
    return 0;
}

/* strdup of a text column ("" for NULL). */
static char *column_strdup(sqlite3_stmt *stmt, int column) {
    const unsigned char *text = sqlite3_column_text(stmt, column);
    return strdup(text ? (const char *)text : "");
}

int store_run_find(Store *store, const char *name, RunRow *row) {
    sqlite3_stmt *stmt;
    memset(row, 0, sizeof *row);
    if (prepare(store, "SELECT id, name, kind, config, status, message, dataset_id, step"
                       " FROM runs WHERE name = ?", &stmt))
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        return no_such_name(store, "run", name, "SELECT name FROM runs ORDER BY id",
                            "no runs; train one with 'spiral train'");
    }
    row->id = sqlite3_column_int64(stmt, 0);
    row->name = column_strdup(stmt, 1);
    row->kind = column_strdup(stmt, 2);
    row->config = column_strdup(stmt, 3);
    row->status = column_strdup(stmt, 4);
    row->message = column_strdup(stmt, 5);
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
    if (prepare(store,
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
        row->name = column_strdup(stmt, 1);
        row->kind = column_strdup(stmt, 2);
        row->status = column_strdup(stmt, 3);
        row->config = column_strdup(stmt, 4);
        row->dataset = column_strdup(stmt, 5);
        row->step = sqlite3_column_int64(stmt, 6);
        row->loss = sqlite3_column_type(stmt, 7) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, 7);
        row->val_loss = sqlite3_column_type(stmt, 8) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, 8);
        row->updated = column_strdup(stmt, 9);
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
    if (prepare(store, "DELETE FROM runs WHERE id = ?", &stmt)) {
        store_rollback(store);
        return -1;
    }
    sqlite3_bind_int64(stmt, 1, run_id);
    if (step_done(store, stmt, "delete run") || store_commit(store)) {
        store_rollback(store);
        return -1;
    }
    return 0;
}

int store_run_set_status(Store *store, long long run_id, const char *status,
                         const char *message) {
    sqlite3_stmt *stmt;
    if (prepare(store, "UPDATE runs SET status = ?, message = ?, updated = datetime('now')"
                       " WHERE id = ?", &stmt))
        return -1;
    sqlite3_bind_text(stmt, 1, status, -1, SQLITE_STATIC);
    if (message) sqlite3_bind_text(stmt, 2, message, -1, SQLITE_STATIC);
    else sqlite3_bind_null(stmt, 2);
    sqlite3_bind_int64(stmt, 3, run_id);
    return step_done(store, stmt, "update run status");
}

int store_metrics_insert(Store *store, long long run_id, const MetricRow *rows, int n) {
    sqlite3_stmt *stmt;
    if (n == 0) return 0;
    if (prepare(store, "INSERT OR REPLACE INTO metrics VALUES(?,?,?,?,?,?,?,?,?)", &stmt))
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
    if (prepare(store, "DELETE FROM metrics WHERE run_id = ? AND step > ?", &stmt)) return -1;
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int64(stmt, 2, step);
    return step_done(store, stmt, "truncate metrics");
}

/* The folder holding the store file, as given ("." for a bare name). */
static void store_dir(const Store *store, char *out, size_t size) {
    const char *slash = strrchr(store->path, '/');
    if (!slash) snprintf(out, size, ".");
    else if (slash == store->path) snprintf(out, size, "/");
    else snprintf(out, size, "%.*s", (int)(slash - store->path), store->path);
}

char *store_path_resolve(const Store *store, const char *stored) {
    if (stored[0] == '/') return strdup(stored);
    char dir[1024], joined[2200];
    store_dir(store, dir, sizeof dir);
    snprintf(joined, sizeof joined, "%s/%s", dir, stored);
    /* a store written before paths were kept relative to it holds paths
     * relative to the working directory of the command that wrote them */
    if (access(joined, F_OK) != 0 && access(stored, F_OK) == 0) return strdup(stored);
    return strdup(joined);
}

char *store_path_relative(const Store *store, const char *path) {
    char dir[1024], real_dir[PATH_MAX], real_path[PATH_MAX];
    store_dir(store, dir, sizeof dir);
    if (!realpath(dir, real_dir) || !realpath(path, real_path)) return strdup(path);
    size_t n = strlen(real_dir);
    if (strcmp(real_dir, "/") != 0 && strncmp(real_path, real_dir, n) == 0 && real_path[n] == '/')
        return strdup(real_path + n + 1);
    return strdup(real_path);
}

int store_checkpoint_add(Store *store, long long run_id, long long step, const char *path,
                         const char *sha256_hex) {
    sqlite3_stmt *stmt;
    char *kept = store_path_relative(store, path);
    if (!kept) return spiral_error("out of memory");
    if (prepare(store, "INSERT OR REPLACE INTO checkpoints(run_id, step, path, sha256)"
                       " VALUES(?,?,?,?)", &stmt)) {
        free(kept);
        return -1;
    }
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int64(stmt, 2, step);
    sqlite3_bind_text(stmt, 3, kept, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, sha256_hex, -1, SQLITE_STATIC);
    free(kept);
    if (step_done(store, stmt, "insert checkpoint")) return -1;
    if (prepare(store, "UPDATE runs SET step = ?, updated = datetime('now') WHERE id = ?", &stmt))
        return -1;
    sqlite3_bind_int64(stmt, 1, step);
    sqlite3_bind_int64(stmt, 2, run_id);
    return step_done(store, stmt, "update run step");
}

int store_checkpoint_last(Store *store, long long run_id, long long *step, char **path,
                          char **sha256_hex) {
    sqlite3_stmt *stmt;
    *step = 0;
    *path = NULL;
    if (sha256_hex) *sha256_hex = NULL;
    if (prepare(store, "SELECT step, path, sha256 FROM checkpoints WHERE run_id = ?"
                       " ORDER BY step DESC LIMIT 1", &stmt))
        return -1;
    sqlite3_bind_int64(stmt, 1, run_id);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *step = sqlite3_column_int64(stmt, 0);
        const char *kept = (const char *)sqlite3_column_text(stmt, 1);
        *path = store_path_resolve(store, kept ? kept : "");
        if (sha256_hex) *sha256_hex = column_strdup(stmt, 2);
    }
    sqlite3_finalize(stmt);
    return 0;
}
