/*
 * store_sql.h: the helpers that the store's own files (store.c,
 * store_datasets.c, store_runs.c) share; not for callers of the store.
 */
#ifndef SPIRAL_STORE_SQL_H
#define SPIRAL_STORE_SQL_H

#include "store.h"

/* Sets the error from SQLite's last message on this connection: "<store
 * path>: <what>: <message>". Returns -1. */
int store_fail(Store *store, const char *what);

/* Prepares one statement, or fails with the store's message. */
int store_prepare(Store *store, const char *sql, sqlite3_stmt **stmt);

/* Runs a prepared statement that returns no row, then finalizes it; fails
 * naming `what`. */
int store_step_done(Store *store, sqlite3_stmt *stmt, const char *what);

/* strdup of a text column ("" for NULL); NULL when out of memory. */
char *store_column_strdup(sqlite3_stmt *stmt, int column);

/* "<path>: no WHAT named 'NAME' (did you mean 'X'? the store has: a, b)":
 * the error for a name missing from the store, listing the names that
 * select_names (one column) returns, or if_none when there are none.
 * Returns -1. */
int store_no_such_name(Store *store, const char *what, const char *name, const char *select_names,
                       const char *if_none);

#endif
