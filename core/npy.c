/*
 * npy.c: NumPy .npy float32 files (see npy.h for the layout).
 *
 * The writer produces exactly what numpy.save writes for a float32 C-order
 * array, minus numpy's optional spare spaces: the dict with its keys in
 * sorted order, padded with spaces and ended by '\n' so that the data starts
 * at a multiple of 64 bytes. It uses safetensors.h's AtomicFile, so a crash
 * never leaves a partial file.
 *
 * The reader parses the header dict with a small parser of its own instead of
 * trusting the file (the header is a Python literal, not JSON): the three
 * keys 'descr', 'fortran_order' and 'shape', in any order, each once. Every
 * size is checked before use, as the file may be hostile.
 */
#include "npy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "safetensors.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64                /* the data starts at a multiple of this */
#define NPY_MAX_HEADER (1 << 20)    /* refuse larger headers (numpy: 10000) */

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

/* Writes numel int32 values little-endian, whatever the host's byte order. */
static int write_i32(AtomicFile *af, const int32_t *data, int64_t numel) {
    unsigned char bytes[4096];
    int64_t done = 0;
    while (done < numel) {
        int64_t chunk = numel - done < 1024 ? numel - done : 1024;
        for (int64_t i = 0; i < chunk; i++) {
            uint32_t v = (uint32_t)data[done + i];
            for (int b = 0; b < 4; b++) bytes[4 * i + b] = (unsigned char)(v >> (8 * b));
        }
        if (atomic_file_write(af, bytes, (size_t)chunk * 4)) return -1;
        done += chunk;
    }
    return 0;
}

/* Writes a C-order array of dtype descr ('<f4' from float data, '<i4' from
 * int32 data). */
static int npy_write(const char *path, const char *descr, const void *data, int ndim,
                     const int64_t *shape) {
    if (ndim < 0 || ndim > NPY_MAX_DIMS)
        return spiral_error("cannot write %s: %d dimensions (0 to %d allowed)", path, ndim,
                            NPY_MAX_DIMS);
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (shape[d] > 0 && numel > INT64_MAX / 4 / shape[d]))
            return spiral_error("cannot write %s: bad shape[%d] = %" PRId64, path, d, shape[d]);
        numel *= shape[d];
    }
    if (numel > 0 && !data) return spiral_error("cannot write %s: data is NULL", path);

    /* The dict exactly as numpy formats it: Python's repr of the shape tuple,
     * so "()" for a scalar, "(5,)" for one dimension, "(3, 5)" for two. */
    char dict[512];
    size_t len = (size_t)snprintf(dict, sizeof dict,
                                  "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int d = 0; d < ndim; d++)
        len += (size_t)snprintf(dict + len, sizeof dict - len, "%s%" PRId64, d ? ", " : "", shape[d]);
    len += (size_t)snprintf(dict + len, sizeof dict - len, "%s), }", ndim == 1 ? "," : "");

    /* 10 bytes of magic, version and length, the dict, spaces, then '\n'. */
    size_t unpadded = NPY_MAGIC_LEN + 2 + 2 + len + 1;
    size_t padding = (NPY_ALIGN - unpadded % NPY_ALIGN) % NPY_ALIGN;
    size_t header_len = len + padding + 1;
    unsigned char prefix[NPY_MAGIC_LEN + 4];
    memcpy(prefix, NPY_MAGIC, NPY_MAGIC_LEN);
    prefix[6] = 1; /* version 1.0 */
    prefix[7] = 0;
    prefix[8] = (unsigned char)(header_len & 0xff);
    prefix[9] = (unsigned char)(header_len >> 8);
    char spaces[NPY_ALIGN];
    memset(spaces, ' ', sizeof spaces);

    AtomicFile af;
    if (atomic_file_open(&af, path)) return -1;
    if (atomic_file_write(&af, prefix, sizeof prefix) || atomic_file_write(&af, dict, len) ||
        atomic_file_write(&af, spaces, padding) || atomic_file_write(&af, "\n", 1) ||
        (strcmp(descr, "<f4") == 0 ? atomic_file_write_f32(&af, data, numel)
                                   : write_i32(&af, data, numel))) {
        atomic_file_abort(&af);
        return -1;
    }
    return atomic_file_commit(&af);
}

int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape) {
    return npy_write(path, "<f4", data, ndim, shape);
}

int npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape) {
    return npy_write(path, "<i4", data, ndim, shape);
}

/* ------------------------------------------------------------------------ */
/* Header parser                                                            */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *p;      /* next character */
    const char *end;    /* one past the header */
    const char *path;   /* for messages */
} Cursor;

static void skip_space(Cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Consumes character ch (after spaces) or fails naming what was expected. */
static int expect_char(Cursor *c, char ch, const char *what) {
    skip_space(c);
    if (c->p >= c->end || *c->p != ch)
        return spiral_error("%s: malformed .npy header: expected %s", c->path, what);
    c->p++;
    return 0;
}

/* Reads a quoted Python string ('...' or "...", no escapes) into buf. */
static int parse_py_string(Cursor *c, char *buf, size_t cap) {
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return spiral_error("%s: malformed .npy header: expected a quoted string", c->path);
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || n + 1 >= cap)
            return spiral_error("%s: malformed .npy header: unexpected string", c->path);
        buf[n++] = *c->p++;
    }
    if (c->p >= c->end) return spiral_error("%s: malformed .npy header: unterminated string", c->path);
    c->p++;
    buf[n] = '\0';
    return 0;
}

/* Reads True or False. */
static int parse_py_bool(Cursor *c, int *out) {
    skip_space(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        *out = 1;
        c->p += 4;
        return 0;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        *out = 0;
        c->p += 5;
        return 0;
    }
    return spiral_error("%s: malformed .npy header: fortran_order: expected True or False", c->path);
}

/* Reads a tuple of non-negative integers: (), (5,), (3, 5), (3, 5,). */
static int parse_py_shape(Cursor *c, int *ndim, int64_t *shape) {
    if (expect_char(c, '(', "'(' starting the shape")) return -1;
    *ndim = 0;
    for (;;) {
        skip_space(c);
        if (c->p < c->end && *c->p == ')') {
            c->p++;
            return 0;
        }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return spiral_error("%s: malformed .npy header: shape: expected a non-negative integer",
                                c->path);
        if (*ndim == NPY_MAX_DIMS)
            return spiral_error("%s: shape has more than %d dimensions", c->path, NPY_MAX_DIMS);
        int64_t value = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            int digit = *c->p++ - '0';
            if (value > (INT64_MAX - digit) / 10)
                return spiral_error("%s: shape: dimension too large", c->path);
            value = value * 10 + digit;
        }
        shape[(*ndim)++] = value;
        skip_space(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
        } else if (c->p >= c->end || *c->p != ')') {
            return spiral_error("%s: malformed .npy header: shape: expected ',' or ')'", c->path);
        }
    }
}

/* Parses the header dict; fails unless it describes a '<f4' C-order array. */
static int parse_header(Cursor *c, int *ndim, int64_t *shape) {
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (expect_char(c, '{', "'{' starting the header dict")) return -1;
    for (;;) {
        skip_space(c);
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            break;
        }
        char key[32];
        if (parse_py_string(c, key, sizeof key)) return -1;
        if (expect_char(c, ':', "':' after a key")) return -1;
        if (strcmp(key, "descr") == 0 && !have_descr) {
            char descr[32];
            if (parse_py_string(c, descr, sizeof descr)) return -1;
            if (strcmp(descr, "<f4") != 0)
                return spiral_error("%s: dtype '%s' is not supported (only '<f4', little-endian "
                                    "float32)",
                                    c->path, descr);
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            int fortran_order = 0;
            if (parse_py_bool(c, &fortran_order)) return -1;
            if (fortran_order)
                return spiral_error("%s: Fortran-order arrays are not supported (save with C order)",
                                    c->path);
            have_order = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (parse_py_shape(c, ndim, shape)) return -1;
            have_shape = 1;
        } else {
            return spiral_error("%s: malformed .npy header: unexpected or repeated key '%s'", c->path,
                                key);
        }
        skip_space(c);
        if (c->p < c->end && *c->p == ',') c->p++;
    }
    skip_space(c);
    if (c->p != c->end)
        return spiral_error("%s: malformed .npy header: unexpected text after the dict", c->path);
    if (!have_descr || !have_order || !have_shape)
        return spiral_error("%s: .npy header lacks '%s'", c->path,
                            !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                   */
/* ------------------------------------------------------------------------ */

/* Reads the header and data of an open file; on success *data is set. */
static int read_npy(FILE *fp, const char *path, float **data, int *ndim, int64_t *shape) {
    unsigned char prefix[NPY_MAGIC_LEN + 2];
    if (fread(prefix, 1, sizeof prefix, fp) != sizeof prefix || memcmp(prefix, NPY_MAGIC, NPY_MAGIC_LEN))
        return spiral_error("%s: not a .npy file (no \\x93NUMPY magic)", path);
    int major = prefix[6], minor = prefix[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return spiral_error("%s: unsupported .npy version %d.%d (1.0, 2.0 and 3.0 are read)", path,
                            major, minor);
    /* Version 1.0 has a 2-byte header length, later versions 4 bytes. */
    unsigned char len_bytes[4] = {0, 0, 0, 0};
    size_t len_size = major == 1 ? 2 : 4;
    if (fread(len_bytes, 1, len_size, fp) != len_size)
        return spiral_error("%s: truncated .npy header", path);
    uint32_t header_len = (uint32_t)len_bytes[0] | (uint32_t)len_bytes[1] << 8 |
                          (uint32_t)len_bytes[2] << 16 | (uint32_t)len_bytes[3] << 24;
    if (header_len > NPY_MAX_HEADER)
        return spiral_error("%s: .npy header length %" PRIu32 " is too large", path, header_len);
    char *header = malloc(header_len ? header_len : 1);
    if (!header) return spiral_error("%s: out of memory", path);
    if (fread(header, 1, header_len, fp) != header_len) {
        free(header);
        return spiral_error("%s: truncated .npy header", path);
    }
    Cursor cursor = {header, header + header_len, path};
    int failed = parse_header(&cursor, ndim, shape);
    free(header);
    if (failed) return -1;

    int64_t numel = 1;
    for (int d = 0; d < *ndim; d++) {
        if (shape[d] == 0) {
            numel = 0;
            break;
        }
    }
    for (int d = 0; d < *ndim && numel > 0; d++) {
        if (numel > INT64_MAX / 4 / shape[d])
            return spiral_error("%s: shape has too many elements", path);
        numel *= shape[d];
    }
    int64_t data_bytes = numel * 4;

    /* Compare with the file size before allocating, so that a hostile shape
     * cannot ask for more memory than the file holds. */
    struct stat st;
    long header_end = ftell(fp);
    if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && header_end >= 0 &&
        (int64_t)st.st_size - header_end != data_bytes)
        return spiral_error("%s: data is %" PRId64 " bytes, but shape needs %" PRId64
                            " (numel %" PRId64 " x 4)",
                            path, (int64_t)st.st_size - header_end, data_bytes, numel);
    if ((uint64_t)data_bytes > SIZE_MAX - 4) return spiral_error("%s: too large for memory", path);

    unsigned char *bytes = malloc(data_bytes ? (size_t)data_bytes : 4);
    if (!bytes) return spiral_error("%s: out of memory", path);
    if (fread(bytes, 1, (size_t)data_bytes, fp) != (size_t)data_bytes) {
        free(bytes);
        return spiral_error("%s: truncated .npy data (expected %" PRId64 " bytes)", path, data_bytes);
    }
    if (fgetc(fp) != EOF) {
        free(bytes);
        return spiral_error("%s: extra bytes after the .npy data", path);
    }
    /* Decode little-endian float32 in place: element i's 4 bytes are read
     * before they are overwritten by the same element. */
    float *values = (float *)(void *)bytes;
    for (int64_t i = 0; i < numel; i++) {
        const unsigned char *b = bytes + 4 * i;
        uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                        (uint32_t)b[3] << 24;
        memcpy(&values[i], &bits, sizeof bits);
    }
    *data = values;
    return 0;
}

int npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[NPY_MAX_DIMS]) {
    *data = NULL;
    *ndim = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return spiral_error("cannot open %s: %s", path, strerror(errno));
    int status = read_npy(fp, path, data, ndim, shape);
    fclose(fp);
    return status;
}
