/*
 * safetensors.h: reading and writing safetensors files, the weight format of
 * the PyTorch ecosystem (docs/model.md, "Weights").
 *
 * A file is
 *   8 bytes     N, the header length, unsigned little-endian
 *   N bytes     a JSON object (UTF-8), possibly padded with trailing spaces:
 *                 {"__metadata__": {"<key>": "<value>", ...},        optional
 *                  "<name>": {"dtype": "F32", "shape": [2, 3],
 *                             "data_offsets": [begin, end]}, ...}
 *   the rest    the data buffer; a tensor's bytes are [begin, end) of it,
 *               row-major, little-endian
 * Using the format means a checkpoint opens directly in Python
 * (safetensors.torch.load_file) and files from PyTorch open here.
 *
 * In memory every tensor is float32: spiral writes F32 only, and the reader
 * converts F64, F16 and BF16 to float so that files exported in those dtypes
 * load too. The reader treats its input as hostile: every length, offset and
 * shape is checked (with overflow checks) before it is used, and any problem
 * is an error naming the file and the tensor or field, never a crash.
 *
 * The writer never leaves a half-written file behind: it writes to
 * "<path>.tmp.<pid>", syncs it to disk and renames it over <path>. The small
 * AtomicFile API (atomic_file.h) does that and is shared with npy.c.
 */
#ifndef SPIRAL_SAFETENSORS_H
#define SPIRAL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "atomic_file.h"

#define SAFETENSORS_MAX_DIMS 8

/* One tensor. For the writer, `dtype` is ignored (F32 is always written) and
 * `numel` must equal the product of the shape. */
typedef struct {
    char *name;                           /* e.g. "loop.0.attn.wq.weight" */
    char dtype[8];                        /* dtype in the file: "F32", "F16", ... */
    int ndim;                             /* 0..SAFETENSORS_MAX_DIMS (0: scalar) */
    int64_t shape[SAFETENSORS_MAX_DIMS];  /* shape[0..ndim), each >= 0 */
    int64_t numel;                        /* product of the shape (1 if ndim == 0) */
    float *data;                          /* numel values, row-major */
} SafeTensor;

/* A whole file, as read by safetensors_read. Everything is owned by the
 * struct and released by safetensors_free. */
typedef struct {
    int n_tensors;
    SafeTensor *tensors;    /* in header order */
    int n_metadata;
    char **meta_keys;       /* n_metadata keys of __metadata__ */
    char **meta_values;     /* and their string values */
} SafeFile;

/* Reads and validates a whole safetensors file. Returns 0, or -1 with
 * spiral_error naming the file and the problem; on failure *out is empty
 * (safetensors_free on it is allowed and does nothing). */
int safetensors_read(SafeFile *out, const char *path);

/* The same on a file already in memory (bytes[0..len)); `source` names it in
 * error messages. safetensors_read is this plus reading the file; a fuzzer
 * calls it directly. */
int safetensors_parse(SafeFile *out, const void *bytes, size_t len, const char *source);

/* Releases everything a SafeFile owns and empties it. */
void safetensors_free(SafeFile *f);

/* The value of __metadata__[key], or NULL if absent. */
const char *safetensors_metadata(const SafeFile *f, const char *key);

/* The tensor with this name, or NULL if absent. */
const SafeTensor *safetensors_find(const SafeFile *f, const char *name);

/* Writes n_tensors float32 tensors, in the given order, and a metadata map
 * of n_metadata string pairs (no __metadata__ entry when n_metadata is 0).
 * The header is padded with spaces to a multiple of 8 bytes so that the data
 * buffer is aligned. Names must be unique and not "__metadata__"; keys,
 * values and names must be valid UTF-8. Written atomically (see above).
 * Returns 0 or -1 (spiral_error naming the path). */
int safetensors_write(const char *path, int n_metadata, const char *const *meta_keys,
                      const char *const *meta_values, int n_tensors, const SafeTensor *tensors);

/* Converts a double to float with IEEE round-to-nearest, mapping values
 * beyond the float range to +-infinity explicitly (a plain cast of such a
 * value is undefined behaviour in ISO C). */
float safetensors_double_to_float(double x);

#endif
