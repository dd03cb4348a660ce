/*
 * safetensors.c: the safetensors reader (see safetensors.h for the format);
 * the writer is in safetensors_write.c, the atomic temp-file-then-rename
 * writing it relies on in atomic_file.c.
 *
 * The reader loads the whole file into memory and parses it there
 * (safetensors_parse), which keeps one code path for files and for fuzzing.
 * Bytes are decoded explicitly as little-endian, one element at a time with
 * no pointer casts, so the code does not depend on the host's byte order or
 * on the data buffer being aligned. Every integer taken from the file is
 * range-checked before any arithmetic that could overflow: the header length
 * against the file size, each dimension against INT64_MAX / (product so
 * far), numel * itemsize against INT64_MAX, and data_offsets against the
 * data buffer. Since a tensor's bytes must lie in the file, no allocation can
 * exceed a small multiple of the file size.
 */
#include "safetensors.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "jsontext.h"
#include "safetensors_bytes.h"

/* ------------------------------------------------------------------------ */
/* Float conversions                                                        */
/* ------------------------------------------------------------------------ */

/* x rounded to float, beyond the float range to +-infinity (safetensors.h). */
float safetensors_double_to_float(double x) {
    /* 0x1.ffffffp127 is FLT_MAX plus half an ulp: the first value that
     * rounds to infinity (the tie goes to the even neighbour, infinity). */
    if (x >= 0x1.ffffffp127) return INFINITY;
    if (x <= -0x1.ffffffp127) return -INFINITY;
    return (float)x; /* NaN and in-range values: rounded to nearest */
}


/* ------------------------------------------------------------------------ */
/* Reader                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    int64_t itemsize; /* bytes per element */
} DtypeInfo;

static const DtypeInfo supported_dtypes[] = {
    {"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2},
};

static const DtypeInfo *find_dtype(const char *name) {
    for (size_t i = 0; i < sizeof supported_dtypes / sizeof supported_dtypes[0]; i++)
        if (strcmp(supported_dtypes[i].name, name) == 0) return &supported_dtypes[i];
    return NULL;
}


/* Formats a shape as "(a, b, c)" into buf. */
static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t used = 0;
    used += (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, ")");
}

/* Reads the "shape" array of tensor `name` into t->ndim, t->shape, t->numel. */
static int parse_shape(SafeTensor *t, const json_t *shape, const char *source, const char *name) {
    if (!shape)
        return spiral_error("%s: tensor \"%s\": missing \"shape\"", source, name);
    if (!json_is_array(shape))
        return spiral_error("%s: tensor \"%s\": shape: expected an array of integers, got %s", source,
                            name, json_type_name(shape));
    size_t ndim = json_array_size(shape);
    if (ndim > SAFETENSORS_MAX_DIMS)
        return spiral_error("%s: tensor \"%s\": shape has %zu dimensions, at most %d are supported",
                            source, name, ndim, SAFETENSORS_MAX_DIMS);
    t->ndim = (int)ndim;
    int has_zero = 0;
    for (size_t i = 0; i < ndim; i++) {
        const json_t *dim = json_array_get(shape, i);
        if (!json_is_integer(dim))
            return spiral_error("%s: tensor \"%s\": shape[%zu]: expected an integer, got %s", source,
                                name, i, json_type_name(dim));
        json_int_t value = json_integer_value(dim);
        if (value < 0)
            return spiral_error("%s: tensor \"%s\": shape[%zu] is %lld, expected >= 0", source, name,
                                i, (long long)value);
        t->shape[i] = (int64_t)value;
        if (value == 0) has_zero = 1;
    }
    /* The product, refusing overflow; a zero dimension makes it 0 whatever
     * the other dimensions are. */
    t->numel = 1;
    if (has_zero) {
        t->numel = 0;
        return 0;
    }
    for (size_t i = 0; i < ndim; i++) {
        if (t->numel > INT64_MAX / t->shape[i]) {
            char shape_text[256];
            format_shape(shape_text, sizeof shape_text, t->ndim, t->shape);
            return spiral_error("%s: tensor \"%s\": shape %s has too many elements", source, name,
                                shape_text);
        }
        t->numel *= t->shape[i];
    }
    return 0;
}

/* Reads "data_offsets": [begin, end] with 0 <= begin <= end <= data_len. */
static int parse_offsets(uint64_t *begin, uint64_t *end, const json_t *offsets, size_t data_len,
                         const char *source, const char *name) {
    if (!offsets)
        return spiral_error("%s: tensor \"%s\": missing \"data_offsets\"", source, name);
    if (!json_is_array(offsets))
        return spiral_error("%s: tensor \"%s\": data_offsets: expected an array [begin, end], got %s",
                            source, name, json_type_name(offsets));
    if (json_array_size(offsets) != 2)
        return spiral_error("%s: tensor \"%s\": data_offsets: expected an array [begin, end], got "
                            "%zu elements",
                            source, name, json_array_size(offsets));
    json_int_t value[2];
    for (size_t i = 0; i < 2; i++) {
        const json_t *item = json_array_get(offsets, i);
        if (!json_is_integer(item))
            return spiral_error("%s: tensor \"%s\": data_offsets[%zu]: expected an integer, got %s",
                                source, name, i, json_type_name(item));
        value[i] = json_integer_value(item);
        if (value[i] < 0)
            return spiral_error("%s: tensor \"%s\": data_offsets[%zu] is %lld, expected >= 0", source,
                                name, i, (long long)value[i]);
    }
    *begin = (uint64_t)value[0];
    *end = (uint64_t)value[1];
    if (*begin > *end)
        return spiral_error("%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64
                            "]: begin is after end",
                            source, name, *begin, *end);
    if (*end > (uint64_t)data_len)
        return spiral_error("%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64
                            "] out of the data buffer (%zu bytes)",
                            source, name, *begin, *end, data_len);
    return 0;
}

/* Converts numel elements of `dtype` at bytes into floats. */
static void convert_to_float(float *out, const unsigned char *bytes, int64_t numel,
                             const DtypeInfo *dtype) {
    if (strcmp(dtype->name, "F32") == 0) {
        for (int64_t i = 0; i < numel; i++) out[i] = float_from_bits(load_u32le(bytes + 4 * i));
    } else if (strcmp(dtype->name, "F64") == 0) {
        for (int64_t i = 0; i < numel; i++) {
            uint64_t bits = load_u64le(bytes + 8 * i);
            double x;
            memcpy(&x, &bits, sizeof x);
            out[i] = safetensors_double_to_float(x);
        }
    } else if (strcmp(dtype->name, "F16") == 0) {
        for (int64_t i = 0; i < numel; i++) out[i] = half_to_float(load_u16le(bytes + 2 * i));
    } else { /* BF16 */
        for (int64_t i = 0; i < numel; i++) out[i] = bf16_to_float(load_u16le(bytes + 2 * i));
    }
}

/* Fills t from the header entry of tensor `name` and the data buffer. */
static int parse_tensor(SafeTensor *t, uint64_t span[2], const char *name, const json_t *entry,
                        const unsigned char *data, size_t data_len, const char *source) {
    if (!json_is_object(entry))
        return spiral_error("%s: tensor \"%s\": expected an object {\"dtype\", \"shape\", "
                            "\"data_offsets\"}, got %s",
                            source, name, json_type_name(entry));
    t->name = strdup(name);
    if (!t->name) return spiral_error("%s: out of memory", source);

    const json_t *dtype_json = json_object_get(entry, "dtype");
    if (!dtype_json) return spiral_error("%s: tensor \"%s\": missing \"dtype\"", source, name);
    if (!json_is_string(dtype_json))
        return spiral_error("%s: tensor \"%s\": dtype: expected a string, got %s", source, name,
                            json_type_name(dtype_json));
    const DtypeInfo *dtype = find_dtype(json_string_value(dtype_json));
    if (!dtype)
        return spiral_error("%s: tensor \"%s\": unsupported dtype \"%.32s\" (supported: F32, F64, "
                            "F16, BF16)",
                            source, name, json_string_value(dtype_json));
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype->name);

    if (parse_shape(t, json_object_get(entry, "shape"), source, name)) return -1;
    uint64_t begin = 0, end = 0;
    if (parse_offsets(&begin, &end, json_object_get(entry, "data_offsets"), data_len, source, name))
        return -1;
    span[0] = begin;
    span[1] = end;

    char shape_text[256];
    format_shape(shape_text, sizeof shape_text, t->ndim, t->shape);
    if (t->numel > INT64_MAX / dtype->itemsize)
        return spiral_error("%s: tensor \"%s\": shape %s has too many elements", source, name,
                            shape_text);
    uint64_t expected = (uint64_t)(t->numel * dtype->itemsize);
    if (end - begin != expected)
        return spiral_error("%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64
                            "] hold %" PRIu64 " bytes, but shape %s of %s needs %" PRIu64,
                            source, name, begin, end, end - begin, shape_text, dtype->name, expected);

    /* numel <= data_len / itemsize here, so this size cannot overflow on a
     * 64-bit host; the check keeps 32-bit hosts honest. */
    if ((uint64_t)t->numel > SIZE_MAX / sizeof(float) - 1)
        return spiral_error("%s: tensor \"%s\": too large for memory", source, name);
    t->data = malloc(t->numel ? (size_t)t->numel * sizeof(float) : sizeof(float));
    if (!t->data) return spiral_error("%s: tensor \"%s\": out of memory", source, name);
    convert_to_float(t->data, data + begin, t->numel, dtype);
    return 0;
}

/* Orders (begin, end, index) triples by begin. */
static int compare_span(const void *a, const void *b) {
    uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];
    return x < y ? -1 : x > y;
}

/* Refuses two tensors whose byte ranges [begin, end) of the data overlap
 * (a writer bug or a hostile file: one write would change both). Empty
 * tensors overlap nothing. spans (n_tensors, 2). Sorted by begin, a
 * non-empty range overlaps another exactly when it starts before the end
 * of the furthest-reaching range before it. */
static int check_overlaps(const SafeFile *f, const uint64_t *spans, const char *source) {
    int n = f->n_tensors;
    uint64_t *order = malloc((size_t)(n ? n : 1) * 3 * sizeof *order);  /* (n, 3) */
    if (!order) return spiral_error("%s: out of memory", source);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (spans[2 * i] == spans[2 * i + 1]) continue;
        order[3 * m] = spans[2 * i];
        order[3 * m + 1] = spans[2 * i + 1];
        order[3 * m + 2] = (uint64_t)i;
        m++;
    }
    qsort(order, (size_t)m, 3 * sizeof *order, compare_span);
    int status = 0, reach = -1;  /* the range before with the furthest end */
    for (int k = 0; k < m && status == 0; k++) {
        const uint64_t *here = order + 3 * k;
        if (reach >= 0 && here[0] < order[3 * reach + 1]) {
            const uint64_t *before = order + 3 * reach;
            status = spiral_error("%s: tensors \"%s\" [%" PRIu64 ", %" PRIu64 ") and \"%s\" [%" PRIu64
                                  ", %" PRIu64 ") overlap in the data", source,
                                  f->tensors[before[2]].name, before[0], before[1],
                                  f->tensors[here[2]].name, here[0], here[1]);
        }
        if (reach < 0 || here[1] > order[3 * reach + 1]) reach = k;
    }
    free(order);
    return status;
}

/* Reads the __metadata__ object: string keys to string values. */
static int parse_metadata(SafeFile *out, const json_t *meta, const char *source) {
    if (!json_is_object(meta))
        return spiral_error("%s: __metadata__: expected an object of strings, got %s", source,
                            json_type_name(meta));
    size_t n = json_object_size(meta);
    if (n == 0) return 0;
    out->meta_keys = calloc(n, sizeof *out->meta_keys);
    out->meta_values = calloc(n, sizeof *out->meta_values);
    if (!out->meta_keys || !out->meta_values) return spiral_error("%s: out of memory", source);
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)meta, key, value) {
        if (!json_is_string(value))
            return spiral_error("%s: __metadata__.%s: expected a string, got %s", source, key,
                                json_type_name(value));
        int i = out->n_metadata;
        out->meta_keys[i] = strdup(key);
        out->meta_values[i] = strdup(json_string_value(value));
        out->n_metadata++;
        if (!out->meta_keys[i] || !out->meta_values[i]) return spiral_error("%s: out of memory", source);
    }
    return 0;
}

int safetensors_parse(SafeFile *out, const void *bytes, size_t len, const char *source) {
    const unsigned char *p = bytes;
    memset(out, 0, sizeof *out);
    if (len < 8)
        return spiral_error("%s: file is %zu bytes long, too short for a safetensors file (an 8-byte "
                            "header length comes first)",
                            source, len);
    uint64_t header_len = load_u64le(p);
    if (header_len > (uint64_t)(len - 8))
        return spiral_error("%s: header length %" PRIu64 " is larger than the %zu bytes after it "
                            "(truncated or not a safetensors file)",
                            source, header_len, len - 8);
    const unsigned char *data = p + 8 + header_len;
    size_t data_len = len - 8 - (size_t)header_len;

    /* JSON_REJECT_DUPLICATES: a name given twice is ambiguous, refuse it.
     * Trailing spaces after the object are whitespace, which jansson skips. */
    json_error_t json_err;
    json_t *root = json_loadb((const char *)p + 8, (size_t)header_len, JSON_REJECT_DUPLICATES,
                              &json_err);
    if (!root)
        return spiral_error("%s: header is not valid JSON: %s (header byte %d)", source, json_err.text,
                            json_err.position);
    if (!json_is_object(root)) {
        spiral_error("%s: header: expected a JSON object, got %s", source, json_type_name(root));
        json_decref(root);
        return -1;
    }

    size_t n_entries = json_object_size(root);
    if (n_entries > 0) {
        out->tensors = calloc(n_entries, sizeof *out->tensors);
        if (!out->tensors) {
            json_decref(root);
            return spiral_error("%s: out of memory", source);
        }
    }
    /* (n_entries, 2) byte range of each tensor, to refuse overlaps */
    uint64_t *spans = n_entries ? malloc(n_entries * 2 * sizeof *spans) : NULL;
    if (n_entries && !spans) {
        json_decref(root);
        safetensors_free(out);
        return spiral_error("%s: out of memory", source);
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        int failed;
        if (strcmp(key, "__metadata__") == 0) {
            failed = parse_metadata(out, value, source);
        } else {
            /* Counted before parsing so that safetensors_free releases a
             * partly filled entry. */
            SafeTensor *t = &out->tensors[out->n_tensors++];
            failed = parse_tensor(t, spans + 2 * (out->n_tensors - 1), key, value, data, data_len,
                                  source);
        }
        if (failed) {
            free(spans);
            json_decref(root);
            safetensors_free(out);
            return -1;
        }
    }
    json_decref(root);
    int status = check_overlaps(out, spans, source);
    free(spans);
    if (status) safetensors_free(out);
    return status;
}

int safetensors_read(SafeFile *out, const char *path) {
    unsigned char *bytes;
    size_t len;
    memset(out, 0, sizeof *out);
    if (file_read_all(path, (char **)&bytes, &len)) return -1;
    int status = safetensors_parse(out, bytes, len, path);
    free(bytes);
    return status;
}

void safetensors_free(SafeFile *f) {
    for (int i = 0; i < f->n_tensors; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].data);
    }
    free(f->tensors);
    for (int i = 0; i < f->n_metadata; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    memset(f, 0, sizeof *f);
}

const char *safetensors_metadata(const SafeFile *f, const char *key) {
    for (int i = 0; i < f->n_metadata; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

const SafeTensor *safetensors_find(const SafeFile *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

