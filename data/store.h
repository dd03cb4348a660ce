/*
 * store.h: the SQLite experiment store, one .db file per study.
 *
 * It holds datasets (tokens, documents, splits, labels), runs (name, kind,
 * run-file JSON, status), training metrics per step and checkpoints (path,
 * sha256). Later issues add recorded states, probes and analyses. The
 * schema is created and migrated by store_open (table schema_version) and
 * documented in the README, so the file is readable from sqlite3, Python or
 * R without spiral. Arrays are BLOBs of little-endian values.
 *
 * Concurrency and safety: WAL mode, a busy timeout so several processes can
 * share a store, every multi-row write inside one transaction.
 */
#ifndef SPIRAL_STORE_H
#define SPIRAL_STORE_H

#include <sqlite3.h>

#include "dataset.h"

#define STORE_SCHEMA_VERSION 5

typedef struct {
    sqlite3 *db;
    char path[1024];
} Store;

/* Opens (create != 0: creates if missing) the store at path, sets WAL mode,
 * 64 KiB pages for a new file and a busy timeout, and creates or migrates the
 * schema. A file with a newer schema than this spiral knows is an error,
 * and so is an SQLite file with tables of its own (not a spiral store: it
 * is left untouched).
 * Returns 0 or -1. */
int store_open(Store *store, const char *path, int create);
/* Opens an existing store for reading only: nothing is written to the file
 * (no schema change, no journal mode switch), so it works on a store in a
 * folder one may not write. Refuses a file that is not a spiral store. */
int store_open_readonly(Store *store, const char *path);
void store_close(Store *store);

/* Transactions (BEGIN IMMEDIATE, so a writer waits for the lock up front). */
int store_begin(Store *store);
int store_commit(Store *store);
void store_rollback(Store *store);

/* Executes SQL with no result rows; errors name the store and statement. */
int store_exec(Store *store, const char *sql);

/* Copies the committed pages of the write-ahead log into the database file
 * (a PASSIVE checkpoint: it waits for no reader or writer; SQLITE_BUSY,
 * another connection checkpointing, is not an error). This is where the WAL
 * and then the database file are fsynced. Returns 0 or -1. */
int store_wal_checkpoint(Store *store);

/* Saves a dataset under a new name in one transaction (error if the name is
 * taken). *id gets its row id (may be NULL). */
int store_dataset_save(Store *store, const char *name, const Dataset *ds, unsigned long seed,
                       long long *id);
/* Loads the dataset `name` (error naming it, and listing what exists, if
 * absent). */
int store_dataset_load(Store *store, const char *name, Dataset *ds, long long *id);
/* *exists = 1 if the store has a dataset named `name`, else 0. */
int store_dataset_exists(Store *store, const char *name, int *exists);

/* One row of the datasets table, without the arrays. */
typedef struct {
    char *name, *family;
    char *created;           /* "YYYY-MM-DD HH:MM:SS" (UTC) */
    int vocab_size;
    long long n_tokens, n_docs, seed;
} DatasetRow;

/* Every dataset of the store in the order they were made: *rows (n_rows of
 * them; NULL when none) is malloc'd, free it with store_dataset_list_free. */
int store_dataset_list(Store *store, DatasetRow **rows, int *n_rows);
void store_dataset_list_free(DatasetRow *rows, int n_rows);

/* One row of the metrics table; val_loss is NAN at steps without evaluation. */
typedef struct {
    long long step;          /* optimizer steps done, 1-based */
    double loss;             /* mean training loss of the step's batch (nats) */
    double val_loss;         /* validation loss or NAN */
    double lr;
    double grad_norm;        /* global L2 norm before clipping */
    long long tokens;        /* tokens seen so far */
    double flops;            /* training FLOPs so far (analytic) */
    double wall_seconds;     /* training time so far */
} MetricRow;

typedef struct {
    long long id;
    char *name, *kind, *config, *status, *message;
    long long dataset_id;
    long long step;          /* last step recorded by a checkpoint */
} RunRow;

/* Creates a run (status "created"). Error if the name exists. */
int store_run_create(Store *store, const char *name, const char *kind, const char *config_json,
                     long long dataset_id, const char *command, long long *run_id);
/* Finds a run by name; the strings in *row are malloc'd (store_run_free).
 * Returns 0, or -1 with an error naming the run if it does not exist. */
int store_run_find(Store *store, const char *name, RunRow *row);
void store_run_free(RunRow *row);
/* The status of run `name` ("created", "running", "interrupted", "failed",
 * "done") into status[size]; "" if the store has no such run. */
int store_run_status(Store *store, const char *name, char *status, size_t size);
/* Sets status ("running", "done", "failed", "interrupted") and message. */
int store_run_set_status(Store *store, long long run_id, const char *status,
                         const char *message);

/* One run as `spiral runs` lists it. Strings are malloc'd. */
typedef struct {
    long long id;
    char *name, *kind, *status, *config, *dataset;
    long long step;          /* last step with metrics (0: none) */
    double loss, val_loss;   /* at that step; val_loss: the last evaluation (NAN if none) */
    char *updated;           /* when the run last changed ("" if never) */
} RunListRow;

/* Every run of the store, oldest first: *rows (store_run_list_free) and *n. */
int store_run_list(Store *store, RunListRow **rows, int *n);
void store_run_list_free(RunListRow *rows, int n);

/* Deletes a run and everything recorded from it (metrics, checkpoint rows,
 * recordings, states, probes, analyses) in one transaction. Files on disk
 * are the caller's. */
int store_run_delete(Store *store, long long run_id);

/* Inserts metric rows (caller holds a transaction for batches). */
int store_metrics_insert(Store *store, long long run_id, const MetricRow *rows, int n);
/* Deletes the metrics of steps > step (resume from a checkpoint at step). */
int store_metrics_truncate(Store *store, long long run_id, long long step);

/* Paths kept in the store (checkpoints, checkpoint folders) are relative to
 * the store's folder when they lie under it, absolute otherwise, so a
 * store and its checkpoints can be used from any working directory and
 * moved together.
 * store_path_resolve: the usable path of a kept one (a relative path that
 * names no file under the store's folder but does from the working
 * directory is a store written before this rule and is returned as is).
 * store_path_relative: the form to keep of an existing file or folder.
 * Both return malloc'd strings (NULL when out of memory). */
char *store_path_resolve(const Store *store, const char *stored);
char *store_path_relative(const Store *store, const char *path);

/* Records a checkpoint (its path kept relative to the store, see above)
 * and sets runs.step. */
int store_checkpoint_add(Store *store, long long run_id, long long step, const char *path,
                         const char *sha256_hex);
/* The last checkpoint of a run, its path resolved: *step = 0 and *path =
 * NULL if none. */
int store_checkpoint_last(Store *store, long long run_id, long long *step, char **path,
                          char **sha256_hex);
/* The run's checkpoint at or before step max_step (the last one if
 * max_step < 0), its path resolved. With none, -1 and an error that names
 * the run and lists the steps it has checkpoints at. */
int store_checkpoint_at(Store *store, long long run_id, const char *run_name, long long max_step,
                        long long *step, char **path, char **sha256_hex);

#endif
