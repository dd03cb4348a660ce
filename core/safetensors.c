/*
 * safetensors.c: the safetensors reader and writer (see safetensors.h for the
 * format), and the atomic temp-file-then-rename writing they rely on.
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

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "jsontext.h"

/* ------------------------------------------------------------------------ */
/* Little-endian decoding and float conversions                             */
/* ------------------------------------------------------------------------ */

static uint16_t load_u16le(const unsigned char *p) {
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t load_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_u64le(const unsigned char *p) {
    return (uint64_t)load_u32le(p) | (uint64_t)load_u32le(p + 4) << 32;
}

static void store_u32le(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void store_u64le(unsigned char *p, uint64_t v) {
    store_u32le(p, (uint32_t)v);
    store_u32le(p + 4, (uint32_t)(v >> 32));
}

static float float_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t float_to_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* IEEE binary16 -> binary32, exact (every half is a float): sign, 5-bit
 * exponent with bias 15, 10-bit mantissa; subnormals are mant * 2^-24. */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    if (exponent == 0x1f) /* infinity or NaN, payload kept */
        return float_from_bits(sign | 0x7f800000u | mantissa << 13);
    if (exponent == 0) { /* zero or subnormal */
        float magnitude = ldexpf((float)mantissa, -24);
        return sign ? -magnitude : magnitude;
    }
    return float_from_bits(sign | (exponent - 15 + 127) << 23 | mantissa << 13);
}

/* bfloat16 is the upper half of a binary32. */
static float bf16_to_float(uint16_t h) { return float_from_bits((uint32_t)h << 16); }

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
static int parse_tensor(SafeTensor *t, const char *name, const json_t *entry,
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
            failed = parse_tensor(t, key, value, data, data_len, source);
        }
        if (failed) {
            json_decref(root);
            safetensors_free(out);
            return -1;
        }
    }
    json_decref(root);
    return 0;
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

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------------ */
/* Atomic file replacement                                                  */
/* ------------------------------------------------------------------------ */

/* Frees the names held by af. */
static void atomic_file_release(AtomicFile *af) {
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

int atomic_file_open(AtomicFile *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t cap = strlen(path) + 32;
    af->path = strdup(path);
    af->tmp_path = malloc(cap);
    if (!af->path || !af->tmp_path) {
        atomic_file_release(af);
        return spiral_error("cannot write %s: out of memory", path);
    }
    snprintf(af->tmp_path, cap, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        int saved_errno = errno;
        atomic_file_release(af);
        return spiral_error("cannot write %s: cannot create its temporary file: %s", path,
                            strerror(saved_errno));
    }
    return 0;
}

int atomic_file_write(AtomicFile *af, const void *bytes, size_t n) {
    if (n == 0) return 0;
    if (fwrite(bytes, 1, n, af->fp) != n)
        return spiral_error("cannot write %s: %s", af->path, strerror(errno));
    return 0;
}

int atomic_file_write_f32(AtomicFile *af, const float *data, int64_t numel) {
    unsigned char block[4 * 4096];
    int64_t done = 0;
    while (done < numel) {
        int64_t count = numel - done < 4096 ? numel - done : 4096;
        for (int64_t i = 0; i < count; i++) store_u32le(block + 4 * i, float_to_bits(data[done + i]));
        if (atomic_file_write(af, block, (size_t)count * 4)) return -1;
        done += count;
    }
    return 0;
}

int atomic_file_commit(AtomicFile *af) {
    /* fflush hands the bytes to the kernel, fsync puts them on disk; only
     * then may the rename make them visible under the final name. */
    if (fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0) {
        spiral_error("cannot write %s: %s", af->path, strerror(errno));
        atomic_file_abort(af);
        return -1;
    }
    int close_failed = fclose(af->fp);
    af->fp = NULL;
    if (close_failed) {
        spiral_error("cannot write %s: %s", af->path, strerror(errno));
        atomic_file_abort(af);
        return -1;
    }
    if (rename(af->tmp_path, af->path) != 0) {
        spiral_error("cannot write %s: renaming %s over it failed: %s", af->path, af->tmp_path,
                     strerror(errno));
        atomic_file_abort(af);
        return -1;
    }
    atomic_file_release(af);
    return 0;
}

void atomic_file_abort(AtomicFile *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) remove(af->tmp_path);
    atomic_file_release(af);
}
