/*
 * fileio.h: reading a whole file or stream into memory, the one way every
 * part of spiral does it (configs, run files, token files, corpora,
 * safetensors), and making a rename durable.
 */
#ifndef SPIRAL_FILEIO_H
#define SPIRAL_FILEIO_H

#include <stddef.h>
#include <stdio.h>

/* Reads f to its end into a malloc'd buffer with a NUL after the data (so
 * text can be used as a string); *size excludes the NUL. `source` names the
 * stream in errors. Returns 0 or -1. */
int stream_read_all(FILE *f, const char *source, char **bytes, size_t *size);

/* The same for the file at path; errors read "<path>: cannot open: <why>". */
int file_read_all(const char *path, char **bytes, size_t *size);

/* The folder holding `path` into out (size bytes): "." for a bare name,
 * "/" for a file in the root. */
void path_parent(const char *path, char *out, size_t size);

/* Flushes the folder holding `path` to disk, so a file just renamed into
 * it survives a power loss under its new name. Returns 0 or -1. */
int sync_parent_dir(const char *path);

#endif
