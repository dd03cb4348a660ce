/*
 * atomic_file.h: writing a file so that it is never seen half-written
 * (safetensors and .npy files).
 */
#ifndef SPIRAL_ATOMIC_FILE_H
#define SPIRAL_ATOMIC_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Atomic file replacement: write to "<path>.tmp.<pid>", then
 * atomic_file_commit flushes, fsyncs, closes and renames it over path. Any
 * failure removes the temporary file, so path holds either its old contents
 * or the complete new ones, never a partial file.
 */
typedef struct {
    FILE *fp;          /* the open temporary file */
    char *path;        /* the final name */
    char *tmp_path;    /* "<path>.tmp.<pid>" */
} AtomicFile;

/* Creates the temporary file. Returns 0 or -1 (spiral_error naming path). */
int atomic_file_open(AtomicFile *af, const char *path);

/* fwrite of n bytes; returns 0 or -1 (spiral_error naming path). */
int atomic_file_write(AtomicFile *af, const void *bytes, size_t n);

/* Writes numel floats as little-endian float32 (the byte order of both
 * safetensors and '<f4' .npy data), whatever the host's byte order.
 * Returns 0 or -1. */
int atomic_file_write_f32(AtomicFile *af, const float *data, int64_t numel);

/* Flushes, fsyncs, closes and renames over the final path. On failure the
 * temporary file is removed. Either way af is released. Returns 0 or -1. */
int atomic_file_commit(AtomicFile *af);

/* Closes and removes the temporary file and releases af (after an error).
 * Leaves the current error message untouched. */
void atomic_file_abort(AtomicFile *af);

#endif
