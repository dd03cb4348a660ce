/*
 * store_datasets.c: datasets in the store (store.h): save one in a
 * transaction, load one back, and the questions callers ask about them.
 * Arrays are little-endian BLOBs (the schema is in store.c).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store_sql.h"

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
    if (store_prepare(store, "SELECT 1 FROM datasets WHERE name=?", &stmt)) goto fail;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int exists = sqlite3_step(stmt) == SQLITE_ROW;
    sqlite3_finalize(stmt);
    if (exists) {
        spiral_error("%s: a dataset named '%s' already exists", store->path, name);
        goto fail;
    }
    if (store_prepare(store,
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
    if (store_step_done(store, stmt, "insert dataset")) goto fail;
    long long dataset_id = sqlite3_last_insert_rowid(store->db);

    if (store_prepare(store, "INSERT INTO dataset_arrays VALUES(?,?,?,?,?)", &stmt)) goto fail;
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
    if (store_step_done(store, stmt, "insert dataset arrays")) goto fail;

    for (int l = 0; l < ds->n_labels; l++) {
        if (store_prepare(store, "INSERT INTO labels VALUES(?,?,?,?)", &stmt)) goto fail;
        sqlite3_bind_int64(stmt, 1, dataset_id);
        sqlite3_bind_text(stmt, 2, ds->labels[l].name, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 3, ds->labels[l].n_classes);
        sqlite3_bind_blob64(stmt, 4, ds->labels[l].values ? (const void *)ds->labels[l].values : "",
                            ds->n_tokens * 4, SQLITE_STATIC);
        if (store_step_done(store, stmt, "insert label")) goto fail;
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

int store_dataset_load(Store *store, const char *name, Dataset *ds, long long *id) {
    sqlite3_stmt *stmt = NULL;
    memset(ds, 0, sizeof *ds);
    if (store_prepare(store,
                      "SELECT d.id, family, params, vocab_size, n_tokens, n_docs, tokens, doc_start,"
                      " doc_split, true_nll FROM datasets d JOIN dataset_arrays a ON a.dataset_id = d.id"
                      " WHERE name = ?", &stmt))
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        return store_no_such_name(store, "dataset", name, "SELECT name FROM datasets ORDER BY id",
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

    if (store_prepare(store, "SELECT count(*) FROM labels WHERE dataset_id = ?", &stmt)) goto fail;
    sqlite3_bind_int64(stmt, 1, dataset_id);
    sqlite3_step(stmt);
    int n_labels = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    ds->labels = calloc((size_t)n_labels + 1, sizeof(DatasetLabel));
    if (!ds->labels) { stmt = NULL; goto fail; }
    if (store_prepare(store, "SELECT name, n_classes, label_values FROM labels WHERE dataset_id = ?"
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

int store_dataset_exists(Store *store, const char *name, int *exists) {
    sqlite3_stmt *stmt;
    *exists = 0;
    if (store_prepare(store, "SELECT 1 FROM datasets WHERE name = ?", &stmt)) return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    *exists = rc == SQLITE_ROW;
    int failed = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_fail(store, "find dataset");
    sqlite3_finalize(stmt);
    return failed;
}

void store_dataset_list_free(DatasetRow *rows, int n_rows) {
    for (int i = 0; i < n_rows; i++) {
        free(rows[i].name);
        free(rows[i].family);
        free(rows[i].created);
    }
    free(rows);
}

int store_dataset_list(Store *store, DatasetRow **rows, int *n_rows) {
    sqlite3_stmt *stmt;
    DatasetRow *list = NULL;
    int n = 0, capacity = 0, rc;
    *rows = NULL;
    *n_rows = 0;
    if (store_prepare(store, "SELECT name, family, vocab_size, n_tokens, n_docs, seed, created"
                             " FROM datasets ORDER BY id", &stmt))
        return -1;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == capacity) {
            capacity = capacity ? 2 * capacity : 16;
            DatasetRow *grown = realloc(list, (size_t)capacity * sizeof *grown);
            if (!grown) goto out_of_memory;
            list = grown;
        }
        DatasetRow *row = &list[n++];
        row->name = store_column_strdup(stmt, 0);
        row->family = store_column_strdup(stmt, 1);
        row->vocab_size = sqlite3_column_int(stmt, 2);
        row->n_tokens = sqlite3_column_int64(stmt, 3);
        row->n_docs = sqlite3_column_int64(stmt, 4);
        row->seed = sqlite3_column_int64(stmt, 5);
        row->created = store_column_strdup(stmt, 6);
        if (!row->name || !row->family || !row->created) goto out_of_memory;
    }
    if (rc != SQLITE_DONE) {
        store_fail(store, "list datasets");
        sqlite3_finalize(stmt);
        store_dataset_list_free(list, n);
        return -1;
    }
    sqlite3_finalize(stmt);
    *rows = list;
    *n_rows = n;
    return 0;
out_of_memory:
    sqlite3_finalize(stmt);
    store_dataset_list_free(list, n);
    return spiral_error("out of memory listing the datasets of %s", store->path);
}
