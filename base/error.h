/*
 * error.h: one error path for the whole library.
 *
 * Every fallible function returns 0 on success and -1 on failure. On failure
 * it has called spiral_error() with a message that names what went wrong and
 * where (file, field, expected value); the caller reads it back with
 * spiral_last_error() and either adds context (spiral_error_prefix) or
 * reports it. Nothing in the library prints or exits on bad input.
 */
#ifndef SPIRAL_ERROR_H
#define SPIRAL_ERROR_H

/* Sets the calling thread's error message (printf-style). Returns -1 so that
 * `return spiral_error(...)` both records and reports failure. */
int spiral_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prepends context to the current message: "<context>: <old message>".
 * Returns -1. */
int spiral_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The calling thread's last error message ("" if none). */
const char *spiral_last_error(void);

#endif
