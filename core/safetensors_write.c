/*
 * safetensors_write.c: the safetensors writer (see safetensors.h): checks
 * every tensor, builds the JSON header with its data offsets, then writes
 * header and data through AtomicFile (atomic_file.c), so a failure never
 * leaves a half-written file.
 */
#include "safetensors.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "safetensors_bytes.h"

/* Checks tensor t for the writer and returns its header entry
 * {"dtype": "F32", "shape": [...], "data_offsets": [offset, offset + bytes]},
 * or NULL (spiral_error). */
static json_t *tensor_entry(const char *path, const SafeTensor *t, uint64_t offset) {
    if (t->ndim < 0 || t->ndim > SAFETENSORS_MAX_DIMS) {
        spiral_error("cannot write %s: tensor \"%s\" has %d dimensions (0 to %d allowed)", path,
                     t->name, t->ndim, SAFETENSORS_MAX_DIMS);
        return NULL;
    }
    int64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || (t->shape[d] > 0 && numel > INT64_MAX / t->shape[d])) {
            spiral_error("cannot write %s: tensor \"%s\": bad shape[%d] = %" PRId64, path, t->name, d,
                         t->shape[d]);
            return NULL;
        }
        numel *= t->shape[d];
    }
    if (numel != t->numel || numel > INT64_MAX / 8 || (numel > 0 && !t->data)) {
        spiral_error("cannot write %s: tensor \"%s\": numel %" PRId64
                     " disagrees with the shape (%" PRId64 " elements) or data is NULL",
                     path, t->name, t->numel, numel);
        return NULL;
    }
    uint64_t end = offset + (uint64_t)numel * 4;
    json_t *shape = json_array();
    json_t *offsets = json_array();
    json_t *entry = json_object();
    int failed = !shape || !offsets || !entry;
    for (int d = 0; d < t->ndim && !failed; d++)
        failed = json_array_append_new(shape, json_integer(t->shape[d]));
    if (!failed)
        failed = json_array_append_new(offsets, json_integer((json_int_t)offset)) ||
                 json_array_append_new(offsets, json_integer((json_int_t)end));
    if (!failed) failed = json_object_set_new(entry, "dtype", json_string("F32"));
    if (!failed) {
        failed = json_object_set_new(entry, "shape", shape);
        shape = NULL; /* owned by entry now, even on failure */
    }
    if (!failed) {
        failed = json_object_set_new(entry, "data_offsets", offsets);
        offsets = NULL;
    }
    json_decref(shape);
    json_decref(offsets);
    if (failed) {
        json_decref(entry);
        spiral_error("cannot write %s: out of memory", path);
        return NULL;
    }
    return entry;
}

/* Builds the header object: __metadata__ first, then each tensor with its
 * offsets in the order given (tensors are laid out back to back). Returns
 * NULL on error (spiral_error). */
static json_t *build_header(const char *path, int n_metadata, const char *const *meta_keys,
                            const char *const *meta_values, int n_tensors,
                            const SafeTensor *tensors) {
    json_t *root = json_object();
    if (!root) goto oom;
    if (n_metadata > 0) {
        json_t *meta = json_object();
        if (!meta || json_object_set_new(root, "__metadata__", meta)) goto oom;
        for (int i = 0; i < n_metadata; i++) {
            if (!meta_keys[i] || !meta_values[i]) {
                spiral_error("cannot write %s: metadata entry %d is NULL", path, i);
                goto fail;
            }
            if (json_object_get(meta, meta_keys[i])) {
                spiral_error("cannot write %s: metadata key \"%s\" given twice", path, meta_keys[i]);
                goto fail;
            }
            json_t *value = json_string(meta_values[i]);
            if (!value || json_object_set_new(meta, meta_keys[i], value)) {
                spiral_error("cannot write %s: metadata \"%s\" is not valid UTF-8", path, meta_keys[i]);
                goto fail;
            }
        }
    }
    uint64_t offset = 0; /* bytes into the data buffer */
    for (int i = 0; i < n_tensors; i++) {
        const SafeTensor *t = &tensors[i];
        if (!t->name) {
            spiral_error("cannot write %s: tensor %d has no name", path, i);
            goto fail;
        }
        if (strcmp(t->name, "__metadata__") == 0) {
            spiral_error("cannot write %s: tensor %d: the name \"__metadata__\" is reserved", path, i);
            goto fail;
        }
        if (json_object_get(root, t->name)) {
            spiral_error("cannot write %s: tensor \"%s\" given twice", path, t->name);
            goto fail;
        }
        json_t *entry = tensor_entry(path, t, offset);
        if (!entry) goto fail;
        if (json_object_set_new(root, t->name, entry)) {
            spiral_error("cannot write %s: tensor name \"%s\" is not valid UTF-8", path, t->name);
            goto fail;
        }
        offset += (uint64_t)t->numel * 4;
    }
    return root;
oom:
    spiral_error("cannot write %s: out of memory", path);
fail:
    json_decref(root);
    return NULL;
}

int safetensors_write(const char *path, int n_metadata, const char *const *meta_keys,
                      const char *const *meta_values, int n_tensors, const SafeTensor *tensors) {
    if (n_metadata < 0 || n_tensors < 0)
        return spiral_error("cannot write %s: negative tensor or metadata count", path);
    json_t *root = build_header(path, n_metadata, meta_keys, meta_values, n_tensors, tensors);
    if (!root) return -1;
    char *header = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!header) return spiral_error("cannot write %s: out of memory", path);

    /* Spaces pad the header so that 8 + N, the start of the data, is a
     * multiple of 8. */
    size_t header_len = strlen(header);
    size_t padded_len = (header_len + 7) / 8 * 8;
    unsigned char length_bytes[8];
    store_u64le(length_bytes, (uint64_t)padded_len);
    static const char spaces[8] = "        ";

    AtomicFile af;
    if (atomic_file_open(&af, path)) {
        free(header);
        return -1;
    }
    int failed = atomic_file_write(&af, length_bytes, 8) ||
                 atomic_file_write(&af, header, header_len) ||
                 atomic_file_write(&af, spaces, padded_len - header_len);
    free(header);
    for (int i = 0; i < n_tensors && !failed; i++)
        failed = atomic_file_write_f32(&af, tensors[i].data, tensors[i].numel);
    if (failed) {
        atomic_file_abort(&af);
        return -1;
    }
    return atomic_file_commit(&af);
}

