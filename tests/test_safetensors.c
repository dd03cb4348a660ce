/*
 * test_safetensors.c: weight files (safetensors, checkpoints) and .npy files.
 *
 * What is proven here:
 *   - weights_save then weights_load gives back the configuration and every
 *     parameter bit for bit (tied and untied models, with negative zero,
 *     subnormals, huge values, infinities and NaN among the values);
 *   - the reader follows the format, not our writer: files assembled byte by
 *     byte in this test (other spacing, other tensor order, F16/BF16/F64
 *     data) load with the right values;
 *   - every kind of damaged or hostile file (truncated anywhere, header
 *     length too large, bad JSON, bad entries, offsets out of range, shape
 *     overflow, wrong/missing/unexpected tensors, bad config metadata) is
 *     refused with a message naming the file and the problem, and nothing
 *     crashes or leaks (run under ASan/UBSan by `make asan`);
 *   - the writer's exact bytes, and its atomicity (a failed write leaves the
 *     old file intact and no temporary file behind);
 *   - the .npy writer's exact header bytes, and the reader's round trip and
 *     errors.
 * Set SPIRAL_TEST_VERBOSE=1 to print every expected error message.
 */
#include <dirent.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "error.h"
#include "harness.h"
#include "npy.h"
#include "params.h"
#include "safetensors.h"

static char test_dir[64];
static int verbose;

/* ------------------------------------------------------------------------ */
/* Helpers: temp paths, byte buffers, files                                 */
/* ------------------------------------------------------------------------ */

/* A path inside the test's temporary directory (static buffer per slot). */
static const char *temp_path(const char *name) {
    static char buffers[4][256];
    static int next;
    char *buf = buffers[next];
    next = (next + 1) % 4;
    snprintf(buf, sizeof buffers[0], "%s/%.180s", test_dir, name);
    return buf;
}

typedef struct {
    unsigned char *p;
    size_t len, cap;
} Bytes;

static void bytes_append(Bytes *b, const void *src, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        unsigned char *grown = realloc(b->p, cap);
        if (!grown) {
            fprintf(stderr, "test_safetensors: out of memory\n");
            abort();
        }
        b->p = grown;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = 0; /* so that text stays a C string */
}

static void bytes_printf(Bytes *b, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    bytes_append(b, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void bytes_u16le(Bytes *b, uint16_t v) {
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    bytes_append(b, x, 2);
}

static void bytes_u32le(Bytes *b, uint32_t v) {
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    bytes_append(b, x, 4);
}

static void bytes_u64le(Bytes *b, uint64_t v) {
    bytes_u32le(b, (uint32_t)v);
    bytes_u32le(b, (uint32_t)(v >> 32));
}

static uint32_t bits_of_float(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void bytes_f32le(Bytes *b, float f) { bytes_u32le(b, bits_of_float(f)); }

static void bytes_f64le(Bytes *b, double x) {
    uint64_t u;
    memcpy(&u, &x, 8);
    bytes_u64le(b, u);
}

/* Appends s as a JSON string literal. */
static void bytes_json_string(Bytes *b, const char *s) {
    bytes_append(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') bytes_append(b, "\\", 1);
        bytes_append(b, s, 1);
    }
    bytes_append(b, "\"", 1);
}

static void bytes_free(Bytes *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, n, fp) != n || fclose(fp) != 0) {
        fprintf(stderr, "test_safetensors: cannot write %s\n", path);
        abort();
    }
}

static Bytes read_file(const char *path) {
    Bytes b = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp) return b;
    unsigned char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) bytes_append(&b, buf, n);
    fclose(fp);
    return b;
}

/* Writes a safetensors file by hand: N = strlen(header) as 8 bytes
 * little-endian, the header text as given, then the data bytes. */
static void write_raw_safetensors(const char *path, const char *header, const Bytes *data) {
    Bytes file = {0};
    bytes_u64le(&file, strlen(header));
    bytes_append(&file, header, strlen(header));
    if (data) bytes_append(&file, data->p, data->len);
    write_file(path, file.p, file.len);
    bytes_free(&file);
}

/* Number of leftover temporary files ("*.tmp.*") in the test directory. */
static int count_temp_files(void) {
    int count = 0;
    DIR *dir = opendir(test_dir);
    if (!dir) return -1;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (strstr(entry->d_name, ".tmp.")) count++;
    closedir(dir);
    return count;
}

static void remove_test_dir(void) {
    DIR *dir = opendir(test_dir);
    if (!dir) return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        unlink(temp_path(entry->d_name));
    }
    closedir(dir);
    rmdir(test_dir);
}

/* Clears the error message so that a stale one cannot satisfy a check. */
static void clear_error(void) { spiral_error("%s", ""); }

/* Checks that a call failed (-1) with a message holding both needles (the
 * second may be NULL). */
static void check_error_at(int status, const char *needle1, const char *needle2, const char *what,
                           int line) {
    const char *msg = spiral_last_error();
    int ok = status == -1 && strstr(msg, needle1) && (!needle2 || strstr(msg, needle2));
    test_record(ok, __FILE__, line, "%s: status %d, message \"%s\", wanted \"%s\" and \"%s\"", what,
                status, msg, needle1, needle2 ? needle2 : "");
    if (verbose) printf("  [%s] %s\n", what, msg);
}
#define CHECK_ERROR(status, needle1, needle2, what) \
    check_error_at((status), (needle1), (needle2), (what), __LINE__)

/* ------------------------------------------------------------------------ */
/* The test model                                                           */
/* ------------------------------------------------------------------------ */

/* A small valid config: d 8, 2 heads, F 12, V 16, two iterations (g 2, 1),
 * selfagg + alloc so that the iter.* tensors exist. */
static void make_config(SpiralConfig *cfg, int tied) {
    config_default(cfg);
    cfg->vocab_size = 16;
    cfg->d_model = 8;
    cfg->n_heads = 2;
    cfg->d_ff = 12;
    cfg->tie_embeddings = tied;
    cfg->down = DOWN_SELFAGG;
    cfg->up = UP_ALLOC;
    cfg->n_iters = 2;
    memset(cfg->schedule, 0, sizeof cfg->schedule); /* unused entries zero, as config_parse */
    cfg->schedule[0].g = 2;
    cfg->schedule[0].offset = 1;
    cfg->schedule[0].shift = 1;
    cfg->schedule[1].g = 1;
    cfg->schedule[1].offset = 0;
    cfg->schedule[1].shift = 0;
    CHECK(config_validate(cfg) == 0, "test config invalid: %s", spiral_last_error());
}

/* Deterministic values: a linear congruential sequence mapped to [-2, 2),
 * with tricky floats mixed in every few elements. */
static void fill_values(real *values, size_t n, uint32_t seed) {
    static const float tricky[] = {
        -0.0f, 0.0f, 1e-45f /* smallest subnormal */, -FLT_MIN / 3 /* subnormal */,
        FLT_MIN, FLT_MAX, -FLT_MAX, 3.0e38f, -1.0e-38f, 16777217.0f, INFINITY, -INFINITY,
    };
    uint32_t state = seed;
    for (size_t i = 0; i < n; i++) {
        state = state * 1664525u + 1013904223u;
        if (i % 5 == 3) {
            values[i] = tricky[(state >> 8) % (sizeof tricky / sizeof tricky[0])];
        } else if (i % 97 == 50) {
            values[i] = float_of_bits(0x7fc00000u | (state >> 12)); /* a NaN with a payload */
        } else {
            values[i] = (float)((state >> 8) / 16777216.0 * 4.0 - 2.0);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Round trip through weights_save / weights_load                           */
/* ------------------------------------------------------------------------ */

static void test_roundtrip(int tied) {
    const char *what = tied ? "tied" : "untied";
    SpiralConfig cfg, loaded_cfg;
    ParamLayout layout, loaded_layout;
    make_config(&cfg, tied);
    CHECK(param_layout_build(&layout, &cfg) == 0, "layout: %s", spiral_last_error());
    real *values = malloc(layout.n_params * sizeof *values);
    fill_values(values, layout.n_params, tied ? 7u : 11u);
    CHECK(param_layout_find(&layout, "iter.1.up.alloc") >= 0, "%s: iter tensors exist", what);
    CHECK((param_layout_find(&layout, "lm_head.weight") >= 0) == !tied, "%s: lm_head", what);

    const char *path = temp_path(tied ? "tied.safetensors" : "untied.safetensors");
    /* Saved twice: the second save replaces the first through rename. */
    CHECK(weights_save(path, &cfg, &layout, values) == 0, "%s: save: %s", what, spiral_last_error());
    CHECK(weights_save(path, &cfg, &layout, values) == 0, "%s: save again: %s", what,
          spiral_last_error());
    CHECK(count_temp_files() == 0, "%s: temporary files left behind", what);

    real *loaded = NULL;
    int status = weights_load(path, &loaded_cfg, &loaded_layout, &loaded);
    CHECK(status == 0, "%s: load: %s", what, spiral_last_error());
    if (status == 0) {
        CHECK(memcmp(&cfg, &loaded_cfg, sizeof cfg) == 0, "%s: config differs after the round trip",
              what);
        CHECK(loaded_layout.n_tensors == layout.n_tensors && loaded_layout.n_params == layout.n_params,
              "%s: layout differs", what);
        CHECK(memcmp(values, loaded, layout.n_params * sizeof *values) == 0,
              "%s: values differ after the round trip", what);
        free(loaded);
        param_layout_free(&loaded_layout);
    }

    /* The file as the format sees it: N a multiple of 8, the metadata, every
     * tensor F32 in layout order with its shape. */
    Bytes file = read_file(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0 && file.len >= 8; i--) n = n << 8 | file.p[i];
    CHECK(file.len >= 8 && n % 8 == 0 && n + 8 <= file.len, "%s: header length %llu", what,
          (unsigned long long)n);
    CHECK(file.len == 8 + n + 4 * layout.n_params, "%s: file is %zu bytes, expected %llu", what,
          file.len, (unsigned long long)(8 + n + 4 * layout.n_params));
    bytes_free(&file);
    SafeFile sf;
    status = safetensors_read(&sf, path);
    CHECK(status == 0, "%s: read: %s", what, spiral_last_error());
    if (status == 0) {
        const char *format = safetensors_metadata(&sf, "format");
        CHECK(format && strcmp(format, "pt") == 0, "%s: format metadata", what);
        CHECK(safetensors_metadata(&sf, "config") != NULL, "%s: config metadata", what);
        CHECK(safetensors_metadata(&sf, "absent") == NULL, "%s: absent metadata key", what);
        int same = sf.n_tensors == layout.n_tensors;
        for (int i = 0; same && i < layout.n_tensors; i++) {
            const ParamTensor *p = &layout.tensors[i];
            const SafeTensor *t = &sf.tensors[i];
            same = strcmp(t->name, p->name) == 0 && strcmp(t->dtype, "F32") == 0 &&
                   t->ndim == p->ndim && t->shape[0] == p->shape[0] &&
                   (p->ndim == 1 || t->shape[1] == p->shape[1]) && t->numel == (int64_t)p->numel;
        }
        CHECK(same, "%s: tensors in the file do not follow the layout", what);
        const SafeTensor *alloc = safetensors_find(&sf, "iter.0.up.alloc");
        CHECK(alloc && alloc->ndim == 2 && alloc->shape[0] == 2 && alloc->shape[1] == 8,
              "%s: iter.0.up.alloc shape (2, 8)", what);
        CHECK(safetensors_find(&sf, "nope") == NULL, "%s: find absent tensor", what);
        safetensors_free(&sf);
    }
    CHECK(sf.n_tensors == 0 && sf.tensors == NULL, "safetensors_free empties the struct");
    free(values);
    param_layout_free(&layout);
}

/* ------------------------------------------------------------------------ */
/* Model files assembled by hand                                            */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *config;      /* __metadata__.config text; NULL: no config entry */
    int reverse;             /* header entries in reverse order of the data */
    const char *skip;        /* tensor left out */
    const char *transpose;   /* 2-D tensor written with its shape reversed */
    const char *extra_name;  /* an additional tensor ... */
    const char *extra_copy;  /* ... holding a copy of this tensor */
    int extra_perturb;       /* ... with one bit of it flipped */
} ModelFileSpec;

/* Writes a checkpoint without the library's writer: the JSON text is built
 * with printf (spaced, unlike the writer's compact output) and the data is
 * float32 little-endian, one tensor after another in layout order. */
static void write_model_file(const char *path, const ModelFileSpec *spec, const ParamLayout *layout,
                             const real *values) {
    Bytes entries[256];
    int n_entries = 0;
    Bytes data = {0};
    memset(entries, 0, sizeof entries);
    for (int i = 0; i < layout->n_tensors + 1; i++) {
        const ParamTensor *p;
        const char *name;
        if (i < layout->n_tensors) {
            p = &layout->tensors[i];
            name = p->name;
            if (spec->skip && strcmp(name, spec->skip) == 0) continue;
        } else {
            if (!spec->extra_name) break;
            int k = param_layout_find(layout, spec->extra_copy);
            if (k < 0) abort();
            p = &layout->tensors[k];
            name = spec->extra_name;
        }
        size_t begin = data.len;
        for (size_t k = 0; k < p->numel; k++) {
            uint32_t bits = bits_of_float((float)values[p->offset + k]);
            if (i == layout->n_tensors && spec->extra_perturb && k == 0) bits ^= 1;
            bytes_u32le(&data, bits);
        }
        Bytes *e = &entries[n_entries++];
        bytes_printf(e, "\"%s\": {\"dtype\": \"F32\", ", name);
        if (p->ndim == 1)
            bytes_printf(e, "\"shape\": [%d], ", p->shape[0]);
        else if (spec->transpose && strcmp(name, spec->transpose) == 0)
            bytes_printf(e, "\"shape\": [%d, %d], ", p->shape[1], p->shape[0]);
        else
            bytes_printf(e, "\"shape\": [%d, %d], ", p->shape[0], p->shape[1]);
        bytes_printf(e, "\"data_offsets\": [%zu, %zu]}", begin, data.len);
    }
    Bytes header = {0};
    bytes_printf(&header, "{\"__metadata__\": {\"format\": \"pt\"");
    if (spec->config) {
        bytes_printf(&header, ", \"config\": ");
        bytes_json_string(&header, spec->config);
    }
    bytes_printf(&header, "}");
    for (int i = 0; i < n_entries; i++) {
        Bytes *e = &entries[spec->reverse ? n_entries - 1 - i : i];
        bytes_printf(&header, ",\n  ");
        bytes_append(&header, e->p, e->len);
        bytes_free(e);
    }
    bytes_printf(&header, "}   "); /* trailing spaces, not to a multiple of 8 */
    write_raw_safetensors(path, (const char *)header.p, &data);
    bytes_free(&header);
    bytes_free(&data);
}

/* Loads path expecting failure; also checks that nothing was handed out. */
static int load_expect_failure(const char *path, const char *what) {
    SpiralConfig cfg;
    ParamLayout layout;
    real *values = (real *)&cfg; /* not NULL, so that the reset is visible */
    clear_error();
    int status = weights_load(path, &cfg, &layout, &values);
    CHECK(values == NULL && layout.tensors == NULL && layout.n_tensors == 0,
          "%s: outputs not cleared on failure", what);
    if (status == 0) {
        free(values);
        param_layout_free(&layout);
    }
    return status;
}

/* Loads path expecting success with exactly `expected` values and cfg. */
static void load_expect_values(const char *path, const SpiralConfig *cfg, const real *expected,
                               size_t n, const char *what) {
    SpiralConfig loaded_cfg;
    ParamLayout layout;
    real *values = NULL;
    int status = weights_load(path, &loaded_cfg, &layout, &values);
    CHECK(status == 0, "%s: %s", what, spiral_last_error());
    if (status) return;
    CHECK(memcmp(cfg, &loaded_cfg, sizeof *cfg) == 0, "%s: config differs", what);
    CHECK(layout.n_params == n && memcmp(values, expected, n * sizeof *values) == 0,
          "%s: values differ", what);
    free(values);
    param_layout_free(&layout);
}

static void test_model_files(void) {
    SpiralConfig tied_cfg, untied_cfg;
    ParamLayout tied, untied;
    make_config(&tied_cfg, 1);
    make_config(&untied_cfg, 0);
    param_layout_build(&tied, &tied_cfg);
    param_layout_build(&untied, &untied_cfg);
    real *values = malloc(untied.n_params * sizeof *values);
    fill_values(values, untied.n_params, 3u);
    char *tied_json = config_to_json(&tied_cfg);
    char *untied_json = config_to_json(&untied_cfg);
    CHECK(tied_json && untied_json, "config_to_json");
    const char *path = temp_path("hand.safetensors");

    /* Hand-built files load, whatever the order of the header entries. */
    ModelFileSpec spec = {.config = tied_json};
    write_model_file(path, &spec, &tied, values);
    load_expect_values(path, &tied_cfg, values, tied.n_params, "hand-built tied file");
    spec.reverse = 1;
    write_model_file(path, &spec, &tied, values);
    load_expect_values(path, &tied_cfg, values, tied.n_params, "hand-built file, reversed header");
    spec = (ModelFileSpec){.config = untied_json, .reverse = 1};
    write_model_file(path, &spec, &untied, values);
    load_expect_values(path, &untied_cfg, values, untied.n_params, "hand-built untied file");

    /* Tolerated extras: optimizer state, and a tied head equal to tok_emb. */
    spec = (ModelFileSpec){.config = tied_json, .extra_name = "adam.m.tok_emb.weight",
                           .extra_copy = "tok_emb.weight"};
    write_model_file(path, &spec, &tied, values);
    load_expect_values(path, &tied_cfg, values, tied.n_params, "adam.* tensor ignored");
    spec = (ModelFileSpec){.config = tied_json, .extra_name = "lm_head.weight",
                           .extra_copy = "tok_emb.weight"};
    write_model_file(path, &spec, &tied, values);
    load_expect_values(path, &tied_cfg, values, tied.n_params, "tied lm_head copy accepted");

    /* Refused: a tied head that differs, missing, misshapen, unexpected. */
    spec.extra_perturb = 1;
    write_model_file(path, &spec, &tied, values);
    CHECK_ERROR(load_expect_failure(path, "tied head differs"), path,
                "unexpected tensor lm_head.weight", "tied lm_head that differs");
    spec = (ModelFileSpec){.config = tied_json, .skip = "loop.1.mlp.w2.weight"};
    write_model_file(path, &spec, &tied, values);
    CHECK_ERROR(load_expect_failure(path, "missing"), path,
                "missing tensor loop.1.mlp.w2.weight, expected shape (8, 12)", "missing tensor");
    spec = (ModelFileSpec){.config = untied_json, .skip = "lm_head.weight", .reverse = 1};
    write_model_file(path, &spec, &untied, values);
    CHECK_ERROR(load_expect_failure(path, "missing head"), path,
                "missing tensor lm_head.weight, expected shape (16, 8)", "missing untied head");
    spec = (ModelFileSpec){.config = tied_json, .transpose = "loop.1.mlp.w2.weight"};
    write_model_file(path, &spec, &tied, values);
    CHECK_ERROR(load_expect_failure(path, "shape"), path,
                "tensor loop.1.mlp.w2.weight has shape (12, 8), expected (8, 12)", "wrong shape");
    spec = (ModelFileSpec){.config = tied_json, .extra_name = "extra.weight",
                           .extra_copy = "final_norm.weight"};
    write_model_file(path, &spec, &tied, values);
    CHECK_ERROR(load_expect_failure(path, "unexpected"), path, "unexpected tensor extra.weight",
                "unexpected tensor");
    /* An untied file read as tied: its lm_head is then unexpected too. */
    spec = (ModelFileSpec){.config = tied_json, .extra_name = "lm_head.weight",
                           .extra_copy = "final_norm.weight"};
    write_model_file(path, &spec, &tied, values);
    CHECK_ERROR(load_expect_failure(path, "head shape"), path, "lm_head.weight",
                "tied lm_head of another shape");

    /* Metadata: no config, config not JSON, config with bad fields. */
    spec = (ModelFileSpec){.config = NULL};
    write_model_file(path, &spec, &tied, values);
    CHECK_ERROR(load_expect_failure(path, "no config"), path, "\"config\"", "metadata without config");
    spec.config = "{\"d_model\": 8,";
    write_model_file(path, &spec, &tied, values);
    CHECK_ERROR(load_expect_failure(path, "config json"), path, "__metadata__.config",
                "config not JSON");
    json_t *bad = json_loads(tied_json, 0, NULL);
    json_object_set_new(bad, "d_model", json_integer(-3));
    char *bad_text = json_dumps(bad, JSON_COMPACT);
    spec.config = bad_text;
    write_model_file(path, &spec, &tied, values);
    CHECK_ERROR(load_expect_failure(path, "config field"), "__metadata__.config", "d_model",
                "config with a bad d_model");
    CHECK(strstr(spiral_last_error(), path) != NULL, "config error names the file: %s",
          spiral_last_error());
    free(bad_text);
    json_object_del(bad, "d_model");
    json_object_set_new(bad, "colour", json_string("blue"));
    bad_text = json_dumps(bad, JSON_COMPACT);
    spec.config = bad_text;
    write_model_file(path, &spec, &tied, values);
    CHECK_ERROR(load_expect_failure(path, "config unknown"), "__metadata__.config", "colour",
                "config with an unknown field");
    free(bad_text);
    json_decref(bad);
    /* A valid config that is not the file's model: shapes disagree. */
    SpiralConfig wide = tied_cfg;
    wide.d_ff = 16;
    char *wide_json = config_to_json(&wide);
    spec = (ModelFileSpec){.config = wide_json};
    write_model_file(path, &spec, &tied, values);
    CHECK_ERROR(load_expect_failure(path, "other config"), path, "expected (16, 8)",
                "config of another model");
    free(wide_json);

    free(tied_json);
    free(untied_json);
    free(values);
    param_layout_free(&tied);
    param_layout_free(&untied);
}

/* ------------------------------------------------------------------------ */
/* Damaged files                                                            */
/* ------------------------------------------------------------------------ */

static void test_damaged_files(void) {
    SpiralConfig cfg;
    ParamLayout layout;
    make_config(&cfg, 1);
    param_layout_build(&layout, &cfg);
    real *values = malloc(layout.n_params * sizeof *values);
    fill_values(values, layout.n_params, 5u);
    const char *good_path = temp_path("good.safetensors");
    const char *path = temp_path("damaged.safetensors");
    CHECK(weights_save(good_path, &cfg, &layout, values) == 0, "save: %s", spiral_last_error());
    Bytes good = read_file(good_path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | good.p[i];
    size_t data_start = 8 + (size_t)n;

    /* Truncations at the interesting places. */
    struct {
        size_t len;
        const char *needle;
    } cuts[] = {
        {0, "too short"},
        {4, "too short"},
        {7, "too short"},
        {8, "header length"},
        {8 + (size_t)n / 2, "header length"},
        {data_start - 1, "header length"},
        {data_start, "out of the data buffer"},
        {data_start + (good.len - data_start) / 2, "out of the data buffer"},
        {good.len - 1, "out of the data buffer"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu bytes", cuts[i].len);
        write_file(path, good.p, cuts[i].len);
        CHECK_ERROR(load_expect_failure(path, what), path, cuts[i].needle, what);
    }

    /* Every strict prefix of the file is refused, none crashes (in memory;
     * every byte of the header region, then every 61st). */
    int prefix_failures = 0;
    for (size_t len = 0; len < good.len; len += len < data_start + 16 ? 1 : 61) {
        SafeFile f;
        unsigned char *copy = malloc(len ? len : 1); /* exact size, for ASan */
        memcpy(copy, good.p, len);
        if (safetensors_parse(&f, copy, len, "prefix") == 0) {
            prefix_failures++;
            safetensors_free(&f);
        }
        free(copy);
    }
    CHECK(prefix_failures == 0, "%d strict prefixes were accepted", prefix_failures);

    /* Header length larger than the file, up to the largest uint64. */
    uint64_t huge[] = {good.len - 7, (uint64_t)1 << 32, (uint64_t)1 << 63, UINT64_MAX,
                       UINT64_MAX - 7};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        Bytes copy = {0};
        bytes_u64le(&copy, huge[i]);
        bytes_append(&copy, good.p + 8, good.len - 8);
        write_file(path, copy.p, copy.len);
        char what[64];
        snprintf(what, sizeof what, "header length %llu", (unsigned long long)huge[i]);
        CHECK_ERROR(load_expect_failure(path, what), path, "header length", what);
        bytes_free(&copy);
    }

    /* Header bytes that are not JSON; a header cut short inside the JSON. */
    Bytes copy = {0};
    bytes_append(&copy, good.p, good.len);
    memset(copy.p + 8, 'x', 16);
    write_file(path, copy.p, copy.len);
    CHECK_ERROR(load_expect_failure(path, "not json"), path, "not valid JSON", "header not JSON");
    bytes_free(&copy);
    bytes_u64le(&copy, n / 2);
    bytes_append(&copy, good.p + 8, good.len - 8);
    write_file(path, copy.p, copy.len);
    CHECK_ERROR(load_expect_failure(path, "half header"), path, "not valid JSON",
                "header length pointing into the JSON");
    bytes_free(&copy);

    /* Not a file at all. */
    CHECK_ERROR(load_expect_failure(temp_path("absent.safetensors"), "absent"), "absent.safetensors",
                "No such file", "missing file");
    CHECK_ERROR(load_expect_failure(test_dir, "directory"), test_dir, NULL, "a directory");

    /* Random byte corruption (a smoke fuzz): never crash; every failure has
     * a message. Mutations hit the length, the header and the data. */
    uint32_t state = 12345;
    int silent_failures = 0, accepted = 0;
    for (int round = 0; round < 3000; round++) {
        unsigned char *mutant = malloc(good.len);
        memcpy(mutant, good.p, good.len);
        int n_flips = 1 + round % 4;
        for (int k = 0; k < n_flips; k++) {
            state = state * 1664525u + 1013904223u;
            size_t at = round % 3 == 0 ? (state >> 8) % 8 : (state >> 8) % (data_start + 64);
            if (at >= good.len) at = good.len - 1;
            state = state * 1664525u + 1013904223u;
            mutant[at] = (unsigned char)(state >> 24);
        }
        SafeFile f;
        clear_error();
        if (safetensors_parse(&f, mutant, good.len, "mutant") == 0) {
            accepted++;
            safetensors_free(&f);
        } else if (spiral_last_error()[0] == 0) {
            silent_failures++;
        }
        free(mutant);
    }
    CHECK(silent_failures == 0, "%d mutated files failed without a message", silent_failures);
    if (verbose) printf("  smoke fuzz: %d of 3000 mutants still parse\n", accepted);

    bytes_free(&good);
    free(values);
    param_layout_free(&layout);
}

/* ------------------------------------------------------------------------ */
/* The reader against small hand-written files                              */
/* ------------------------------------------------------------------------ */

/* Writes header + data_len zero bytes and reads it; returns the status. */
static int read_tiny(const char *header, size_t data_len, SafeFile *f) {
    Bytes data = {0};
    for (size_t i = 0; i < data_len; i++) bytes_append(&data, "\0", 1);
    const char *path = temp_path("tiny.safetensors");
    write_raw_safetensors(path, header, &data);
    bytes_free(&data);
    clear_error();
    int status = safetensors_read(f, path);
    if (status == 0) return 0;
    CHECK(f->n_tensors == 0 && f->tensors == NULL && f->n_metadata == 0,
          "failed read leaves the SafeFile empty");
    return status;
}

static void test_reader_errors(void) {
    static const struct {
        const char *header;
        size_t data_len;
        const char *needle1, *needle2;
    } cases[] = {
        {"{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "\"a\"", "missing \"dtype\""},
        {"{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, "\"a\"", "missing \"shape\""},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, "\"a\"", "missing \"data_offsets\""},
        {"{\"a\": {\"dtype\": 32, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "\"a\"",
         "dtype: expected a string"},
        {"{\"a\": {\"dtype\": \"I32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "\"a\"",
         "unsupported dtype \"I32\""},
        {"{\"a\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "\"a\"",
         "unsupported dtype \"f32\""},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4, "\"a\"",
         "shape: expected an array"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, "\"a\"",
         "shape[0] is -1"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 0.5], \"data_offsets\": [0, 4]}}", 4, "\"a\"",
         "shape[1]: expected an integer, got a real number"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
         "\"a\"", "9 dimensions"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4611686018427387904], "
         "\"data_offsets\": [0, 4]}}",
         4, "\"a\"", "too many elements"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2305843009213693952], \"data_offsets\": [0, 4]}}", 4,
         "\"a\"", "too many elements"},
        {"{\"a\": {\"dtype\": \"F64\", \"shape\": [1152921504606846976], \"data_offsets\": [0, 8]}}",
         8, "\"a\"", "too many elements"},
        {"{\"a\": {\"dtype\": \"BF16\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 8]}}",
         8, "\"a\"", "too many elements"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8, "\"a\"",
         "hold 8 bytes, but shape (1) of F32 needs 4"},
        {"{\"a\": {\"dtype\": \"F16\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}}", 24, "\"a\"",
         "shape (2, 3) of F16 needs 12"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 5]}}", 4, "\"a\"",
         "out of the data buffer"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 4, "\"a\"",
         "out of the data buffer"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 9223372036854775807]}}",
         4, "\"a\"", "out of the data buffer"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4, "\"a\"",
         "begin is after end"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 4]}}", 4, "\"a\"",
         "data_offsets[0] is -4"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4, "\"a\"",
         "expected an array [begin, end], got 1 elements"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, \"4\"]}}", 4, "\"a\"",
         "data_offsets[1]: expected an integer"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 18446744073709551616]}}",
         4, "not valid JSON", NULL},
        {"{\"a\": 5}", 0, "\"a\"", "expected an object"},
        {"{\"__metadata__\": {\"k\": 1}}", 0, "__metadata__.k", "expected a string, got an integer"},
        {"{\"__metadata__\": [\"k\"]}", 0, "__metadata__", "expected an object"},
        {"[]", 0, "expected a JSON object", "an array"},
        {"\"text\"", 0, "not valid JSON", NULL},
        {"", 0, "not valid JSON", NULL},
        {"{\"a\": ", 0, "not valid JSON", NULL},
        {"{} x", 0, "not valid JSON", NULL},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
         "\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
         4, "not valid JSON", "duplicate"},
        {"{\"a\\u0000b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
         "not valid JSON", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        SafeFile f;
        char what[64];
        snprintf(what, sizeof what, "reader case %zu", i);
        int status = read_tiny(cases[i].header, cases[i].data_len, &f);
        if (status == 0) safetensors_free(&f);
        CHECK(strstr(spiral_last_error(), "tiny.safetensors") != NULL, "%s: message names the file",
              what);
        CHECK_ERROR(status, cases[i].needle1, cases[i].needle2, what);
    }

    /* A NUL byte inside the header region (header length counts it). */
    Bytes raw = {0};
    bytes_u64le(&raw, 8);
    bytes_append(&raw, "{}\0     ", 8);
    SafeFile f;
    CHECK_ERROR(safetensors_parse(&f, raw.p, raw.len, "nul"), "nul", "not valid JSON",
                "NUL in the header");
    bytes_free(&raw);
}

/* Valid corner cases: empty header object, scalars, empty tensors (which
 * may share an offset with anything), padding, metadata; and overlapping
 * tensors, which are refused. */
static void test_reader_corners(void) {
    SafeFile f;
    int status = read_tiny("{}       ", 0, &f);
    CHECK(status == 0 && f.n_tensors == 0 && f.n_metadata == 0, "empty header: %s",
          spiral_last_error());
    if (status == 0) safetensors_free(&f);

    const char *header =
        "{\"__metadata__\": {\"format\": \"pt\", \"note\": \"h\\u00e9\"},"
        " \"scalar\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]},"
        " \"empty\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [4, 4]},"
        " \"huge_empty\": {\"dtype\": \"F32\", \"shape\": [9223372036854775807, 0], "
        "\"data_offsets\": [8, 8]},"
        " \"second\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}\t \n";
    Bytes data = {0};
    bytes_f32le(&data, 1.5f);
    bytes_f32le(&data, -2.25f);
    write_raw_safetensors(temp_path("corners.safetensors"), header, &data);
    bytes_free(&data);
    status = safetensors_read(&f, temp_path("corners.safetensors"));
    CHECK(status == 0, "corner cases: %s", spiral_last_error());
    if (status) return;
    CHECK(f.n_tensors == 4 && strcmp(f.tensors[0].name, "scalar") == 0 &&
              strcmp(f.tensors[3].name, "second") == 0,
          "tensors in header order");
    const SafeTensor *s = safetensors_find(&f, "scalar");
    CHECK(s && s->ndim == 0 && s->numel == 1 && s->data[0] == 1.5f, "scalar tensor");
    const SafeTensor *e = safetensors_find(&f, "empty");
    CHECK(e && e->ndim == 2 && e->numel == 0 && e->shape[1] == 3, "empty tensor");
    const SafeTensor *he = safetensors_find(&f, "huge_empty");
    CHECK(he && he->numel == 0, "empty tensor with a huge dimension");
    const SafeTensor *o = safetensors_find(&f, "second");
    CHECK(o && o->numel == 1 && o->data[0] == -2.25f, "second tensor");
    const char *note = safetensors_metadata(&f, "note");
    CHECK(note && strcmp(note, "h\xc3\xa9") == 0, "UTF-8 metadata value");
    safetensors_free(&f);

    /* two tensors sharing bytes: refused, naming both; also when a long
     * range hides behind a short one that starts later */
    const char *overlapping[] = {
        "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
        " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
        "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
        " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
        " \"c\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
    };
    for (int k = 0; k < 2; k++) {
        Bytes two = {0};
        bytes_f32le(&two, 1.5f);
        bytes_f32le(&two, -2.25f);
        write_raw_safetensors(temp_path("overlap.safetensors"), overlapping[k], &two);
        bytes_free(&two);
        CHECK_ERROR(safetensors_read(&f, temp_path("overlap.safetensors")), "overlap in the data",
                    k == 0 ? "\"a\" [0, 8)" : "\"c\" [0, 8)", "overlapping tensors");
    }
}

/* F16, BF16 and F64 data, written as raw bits, convert to the right floats. */
static void test_dtypes(void) {
    static const uint16_t f16_bits[] = {0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400, 0x7BFF,
                                        0x8000, 0x7C00, 0xFC00, 0x3555, 0x8001};
    const float f16_expect[] = {1.0f, -2.0f, 0x1p-24f, 0x3ffp-24f, 0x1p-14f, 65504.0f,
                                -0.0f, INFINITY, -INFINITY, 0.333251953125f, -0x1p-24f};
    static const uint16_t bf16_bits[] = {0x3F80, 0xC049, 0x0001, 0x7F7F, 0xFF80, 0x8000};
    const float bf16_expect[] = {1.0f, -3.140625f, float_of_bits(0x00010000u),
                                 float_of_bits(0x7F7F0000u), -INFINITY, -0.0f};
    const double f64_values[] = {1.0, -0.1, 1e300, -1e300, 1e-300, FLT_MAX, 0x1.ffffffp127,
                                 0x1.fffffe8p127, -0x1.ffffffp127, 0x1p-149, -0.0, 1e-46};
    const float f64_expect[] = {1.0f, -0.1f, INFINITY, -INFINITY, 0.0f, FLT_MAX, INFINITY,
                                FLT_MAX, -INFINITY, 0x1p-149f, -0.0f, 0.0f};
    size_t n16 = sizeof f16_bits / sizeof f16_bits[0];
    size_t nb16 = sizeof bf16_bits / sizeof bf16_bits[0];
    size_t n64 = sizeof f64_values / sizeof f64_values[0];

    /* Data: F64 first (8-aligned), then F16, a NaN, BF16. */
    Bytes data = {0};
    for (size_t i = 0; i < n64; i++) bytes_f64le(&data, f64_values[i]);
    size_t f16_begin = data.len;
    for (size_t i = 0; i < n16; i++) bytes_u16le(&data, f16_bits[i]);
    bytes_u16le(&data, 0x7E01); /* F16 NaN */
    size_t bf16_begin = data.len;
    for (size_t i = 0; i < nb16; i++) bytes_u16le(&data, bf16_bits[i]);
    bytes_f64le(&data, NAN);
    size_t nan_begin = data.len - 8;

    char header[1024];
    snprintf(header, sizeof header,
             "{\"d\": {\"dtype\": \"F64\", \"shape\": [%zu], \"data_offsets\": [0, %zu]},"
             " \"h\": {\"dtype\": \"F16\", \"shape\": [%zu], \"data_offsets\": [%zu, %zu]},"
             " \"hnan\": {\"dtype\": \"F16\", \"shape\": [1, 1], \"data_offsets\": [%zu, %zu]},"
             " \"b\": {\"dtype\": \"BF16\", \"shape\": [2, %zu], \"data_offsets\": [%zu, %zu]},"
             " \"dnan\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [%zu, %zu]}}",
             n64, f16_begin, n16, f16_begin, f16_begin + 2 * n16, f16_begin + 2 * n16,
             f16_begin + 2 * n16 + 2, nb16 / 2, bf16_begin, bf16_begin + 2 * nb16, nan_begin,
             nan_begin + 8);
    const char *path = temp_path("dtypes.safetensors");
    write_raw_safetensors(path, header, &data);
    bytes_free(&data);
    SafeFile f;
    int status = safetensors_read(&f, path);
    CHECK(status == 0, "dtypes: %s", spiral_last_error());
    if (status) return;
    const SafeTensor *d = safetensors_find(&f, "d");
    const SafeTensor *h = safetensors_find(&f, "h");
    const SafeTensor *b = safetensors_find(&f, "b");
    CHECK(d && strcmp(d->dtype, "F64") == 0 && h && strcmp(h->dtype, "F16") == 0 && b &&
              strcmp(b->dtype, "BF16") == 0,
          "dtype names kept");
    for (size_t i = 0; d && i < n64; i++)
        CHECK(bits_of_float(d->data[i]) == bits_of_float(f64_expect[i]),
              "F64 %zu: %a read as %a, expected %a", i, f64_values[i], (double)d->data[i],
              (double)f64_expect[i]);
    for (size_t i = 0; h && i < n16; i++)
        CHECK(bits_of_float(h->data[i]) == bits_of_float(f16_expect[i]),
              "F16 0x%04x read as %a, expected %a", f16_bits[i], (double)h->data[i],
              (double)f16_expect[i]);
    for (size_t i = 0; b && i < nb16; i++)
        CHECK(bits_of_float(b->data[i]) == bits_of_float(bf16_expect[i]),
              "BF16 0x%04x read as %a, expected %a", bf16_bits[i], (double)b->data[i],
              (double)bf16_expect[i]);
    const SafeTensor *hnan = safetensors_find(&f, "hnan");
    const SafeTensor *dnan = safetensors_find(&f, "dnan");
    CHECK(hnan && isnan(hnan->data[0]) && dnan && isnan(dnan->data[0]), "NaN stays NaN");
    safetensors_free(&f);

    CHECK(bits_of_float(safetensors_double_to_float(0x1.fffffefffffffp127)) ==
              bits_of_float(FLT_MAX),
          "just below the rounding threshold gives FLT_MAX");
}

/* ------------------------------------------------------------------------ */
/* The writer                                                               */
/* ------------------------------------------------------------------------ */

static void test_writer(void) {
    /* Exact bytes of a small file. */
    float b_data[2] = {1.0f, -2.0f};
    float a_data[1] = {0.5f};
    SafeTensor tensors[2] = {
        {.name = "b", .ndim = 1, .shape = {2}, .numel = 2, .data = b_data},
        {.name = "a", .ndim = 2, .shape = {1, 1}, .numel = 1, .data = a_data},
    };
    const char *keys[1] = {"format"};
    const char *vals[1] = {"pt"};
    const char *path = temp_path("small.safetensors");
    CHECK(safetensors_write(path, 1, keys, vals, 2, tensors) == 0, "write: %s", spiral_last_error());
    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[8,12]}}";
    Bytes expect = {0};
    size_t padded = (strlen(json) + 7) / 8 * 8;
    bytes_u64le(&expect, padded);
    bytes_append(&expect, json, strlen(json));
    while (expect.len < 8 + padded) bytes_append(&expect, " ", 1);
    static const unsigned char data_bytes[12] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00,
                                                 0x00, 0xc0, 0x00, 0x00, 0x00, 0x3f};
    bytes_append(&expect, data_bytes, sizeof data_bytes);
    Bytes got = read_file(path);
    CHECK(got.len == expect.len && memcmp(got.p, expect.p, got.len) == 0,
          "writer bytes differ: got %zu bytes \"%.*s\"", got.len, (int)(got.len > 8 ? got.len - 8 : 0),
          got.len > 8 ? (const char *)got.p + 8 : "");
    bytes_free(&expect);
    bytes_free(&got);

    /* No metadata, a scalar and an empty tensor survive a round trip. */
    float scalar = -0.0f;
    SafeTensor odd[2] = {
        {.name = "scalar", .ndim = 0, .numel = 1, .data = &scalar},
        {.name = "empty", .ndim = 2, .shape = {3, 0}, .numel = 0, .data = NULL},
    };
    const char *odd_path = temp_path("odd.safetensors");
    CHECK(safetensors_write(odd_path, 0, NULL, NULL, 2, odd) == 0, "write odd: %s",
          spiral_last_error());
    SafeFile f;
    int status = safetensors_read(&f, odd_path);
    CHECK(status == 0, "read odd: %s", spiral_last_error());
    if (status == 0) {
        CHECK(f.n_metadata == 0 && f.n_tensors == 2 && f.tensors[0].ndim == 0 &&
                  bits_of_float(f.tensors[0].data[0]) == 0x80000000u && f.tensors[1].numel == 0 &&
                  f.tensors[1].shape[0] == 3,
              "scalar and empty tensor round trip");
        safetensors_free(&f);
    }

    /* Failed writes: the old file stays intact, no temporary file remains. */
    Bytes before = read_file(path);
    SafeTensor dup[2] = {tensors[0], tensors[0]};
    clear_error();
    CHECK_ERROR(safetensors_write(path, 1, keys, vals, 2, dup), path, "\"b\" given twice",
                "duplicate tensor name");
    SafeTensor bad = tensors[0];
    bad.numel = 3;
    clear_error();
    CHECK_ERROR(safetensors_write(path, 1, keys, vals, 1, &bad), path, "numel", "numel mismatch");
    bad = tensors[0];
    bad.shape[0] = -2;
    clear_error();
    CHECK_ERROR(safetensors_write(path, 1, keys, vals, 1, &bad), path, "shape", "negative dim");
    bad = tensors[0];
    bad.name = "__metadata__";
    clear_error();
    CHECK_ERROR(safetensors_write(path, 1, keys, vals, 1, &bad), path, "reserved", "reserved name");
    const char *bad_utf8[1] = {"\xff\xfe"};
    clear_error();
    CHECK_ERROR(safetensors_write(path, 1, keys, bad_utf8, 1, tensors), path, "UTF-8",
                "metadata not UTF-8");
    Bytes after = read_file(path);
    CHECK(before.len == after.len && memcmp(before.p, after.p, before.len) == 0,
          "a failed write changed the existing file");
    CHECK(count_temp_files() == 0, "a failed write left a temporary file");
    bytes_free(&before);
    bytes_free(&after);

    const char *nowhere = temp_path("no/such/dir/w.safetensors");
    clear_error();
    CHECK_ERROR(safetensors_write(nowhere, 1, keys, vals, 2, tensors), nowhere, "No such file",
                "write into a missing directory");
    SpiralConfig cfg;
    ParamLayout layout;
    make_config(&cfg, 1);
    param_layout_build(&layout, &cfg);
    real *values = calloc(layout.n_params, sizeof *values);
    clear_error();
    CHECK_ERROR(weights_save(nowhere, &cfg, &layout, values), nowhere, "No such file",
                "weights_save into a missing directory");
    SpiralConfig other = cfg;
    other.d_ff = 16;
    clear_error();
    CHECK_ERROR(weights_save(temp_path("mismatch.safetensors"), &other, &layout, values),
                "mismatch.safetensors", "layout", "weights_save with a layout of another config");
    CHECK(count_temp_files() == 0, "weights_save failure left a temporary file");
    free(values);
    param_layout_free(&layout);
}

/* ------------------------------------------------------------------------ */
/* .npy                                                                     */
/* ------------------------------------------------------------------------ */

/* Writes a .npy by hand: version, header dict (padded as given), data. */
static void write_raw_npy(const char *path, int major, const char *dict, const Bytes *data) {
    Bytes b = {0};
    bytes_append(&b, "\x93NUMPY", 6);
    unsigned char version[2] = {(unsigned char)major, 0};
    bytes_append(&b, version, 2);
    if (major == 1)
        bytes_u16le(&b, (uint16_t)strlen(dict));
    else
        bytes_u32le(&b, (uint32_t)strlen(dict));
    bytes_append(&b, dict, strlen(dict));
    if (data) bytes_append(&b, data->p, data->len);
    write_file(path, b.p, b.len);
    bytes_free(&b);
}

static void test_npy(void) {
    float values[15];
    for (int i = 0; i < 15; i++) values[i] = (float)i * 0.5f - 3.0f;
    values[4] = -0.0f;
    values[9] = 1e-45f;
    int64_t shape[2] = {3, 5};
    const char *path = temp_path("a.npy");
    CHECK(npy_write_f32(path, values, 2, shape) == 0, "npy write: %s", spiral_last_error());

    /* 10 + 59 dict characters + 58 spaces + '\n' = 128 bytes, then data. */
    Bytes expect = {0};
    bytes_append(&expect, "\x93NUMPY\x01\x00", 8);
    bytes_u16le(&expect, 118);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }";
    CHECK(strlen(dict) == 59, "dict length");
    bytes_append(&expect, dict, strlen(dict));
    for (int i = 0; i < 58; i++) bytes_append(&expect, " ", 1);
    bytes_append(&expect, "\n", 1);
    for (int i = 0; i < 15; i++) bytes_f32le(&expect, values[i]);
    Bytes got = read_file(path);
    CHECK(got.len == 128 + 60 && got.len == expect.len && memcmp(got.p, expect.p, got.len) == 0,
          "npy bytes differ (%zu bytes)", got.len);
    bytes_free(&expect);
    bytes_free(&got);

    float *data = NULL;
    int ndim = -1;
    int64_t read_shape[NPY_MAX_DIMS];
    int status = npy_read_f32(path, &data, &ndim, read_shape);
    CHECK(status == 0, "npy read: %s", spiral_last_error());
    if (status == 0) {
        CHECK(ndim == 2 && read_shape[0] == 3 && read_shape[1] == 5 &&
                  memcmp(data, values, sizeof values) == 0,
              "npy round trip");
        free(data);
    }

    /* One dimension "(7,)", and a scalar "()". */
    int64_t shape1[1] = {7};
    CHECK(npy_write_f32(path, values, 1, shape1) == 0, "npy write 1-d");
    got = read_file(path);
    /* 10 + 57 + 1 = 68 bytes unpadded, so the data starts at 128. */
    CHECK(got.len == 128 + 28 && strstr((const char *)got.p + 10, "'shape': (7,), }") &&
              got.p[127] == '\n',
          "1-d header");
    bytes_free(&got);
    status = npy_read_f32(path, &data, &ndim, read_shape);
    CHECK(status == 0 && ndim == 1 && read_shape[0] == 7 && memcmp(data, values, 28) == 0,
          "1-d round trip: %s", spiral_last_error());
    free(data);
    CHECK(npy_write_f32(path, values, 0, NULL) == 0, "npy write scalar");
    status = npy_read_f32(path, &data, &ndim, read_shape);
    CHECK(status == 0 && ndim == 0 && data[0] == values[0], "scalar round trip: %s",
          spiral_last_error());
    free(data);

    /* Files numpy could have written: version 2.0, keys in another order,
     * numpy's extra spare spaces, a trailing comma in the shape. */
    Bytes payload = {0};
    for (int i = 0; i < 6; i++) bytes_f32le(&payload, (float)i);
    const char *other = temp_path("other.npy");
    write_raw_npy(other, 2, "{\"shape\": (2, 3,), 'fortran_order': False, 'descr': '<f4'}      \n",
                  &payload);
    status = npy_read_f32(other, &data, &ndim, read_shape);
    CHECK(status == 0 && ndim == 2 && read_shape[0] == 2 && read_shape[1] == 3 && data[5] == 5.0f,
          "version 2.0 file: %s", spiral_last_error());
    if (status == 0) free(data);

    /* Refused, with the reason. */
    static const struct {
        int major;
        const char *dict;
        size_t drop;   /* bytes of the 24-byte payload left out */
        int extra;     /* bytes added after the payload */
        const char *needle;
    } bad[] = {
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n", 0, 0, "'<f8'"},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }\n", 0, 0, "'>f4'"},
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", 0, 0, "Fortran"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 4, 0, "shape needs 24"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 0, 1, "shape needs 24"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }\n", 0, 0, "shape"},
        {1, "{'descr': '<f4', 'fortran_order': False}\n", 0, 0, "lacks 'shape'"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}\n", 0, 0, "'x'"},
        {1, "{'descr': '<f4', 'descr': '<f4', 'shape': (2, 3), }\n", 0, 0, "repeated key"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } junk\n", 0, 0, "after"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3\n", 0, 0, "malformed"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}\n", 0, 0,
         "too large"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4)}\n", 0, 0,
         "too many elements"},
        {4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 0, 0, "version 4.0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Bytes d = {0};
        bytes_append(&d, payload.p, payload.len - bad[i].drop);
        for (int k = 0; k < bad[i].extra; k++) bytes_append(&d, "\0", 1);
        write_raw_npy(other, bad[i].major, bad[i].dict, &d);
        bytes_free(&d);
        char what[64];
        snprintf(what, sizeof what, "npy case %zu", i);
        data = (float *)&ndim;
        clear_error();
        status = npy_read_f32(other, &data, &ndim, read_shape);
        CHECK_ERROR(status, "other.npy", bad[i].needle, what);
        CHECK(data == NULL, "%s: data not NULL on failure", what);
        if (status == 0) free(data);
    }
    bytes_free(&payload);

    /* Truncated anywhere, bad magic, missing file. */
    got = read_file(path);
    int accepted = 0;
    for (size_t len = 0; len < got.len; len++) {
        write_file(other, got.p, len);
        if (npy_read_f32(other, &data, &ndim, read_shape) == 0) {
            accepted++;
            free(data);
        }
    }
    CHECK(accepted == 0, "%d truncated .npy files accepted", accepted);
    got.p[0] = 'X';
    write_file(other, got.p, got.len);
    clear_error();
    CHECK_ERROR(npy_read_f32(other, &data, &ndim, read_shape), "other.npy", "magic", "bad magic");
    bytes_free(&got);
    clear_error();
    CHECK_ERROR(npy_read_f32(temp_path("absent.npy"), &data, &ndim, read_shape), "absent.npy",
                "No such file", "missing .npy");
    int64_t bad_shape[1] = {-1};
    clear_error();
    CHECK_ERROR(npy_write_f32(path, values, 1, bad_shape), "a.npy", "shape", "npy negative dim");
    CHECK(count_temp_files() == 0, "npy: temporary file left");
}

int main(int argc, char **argv) {
    verbose = getenv("SPIRAL_TEST_VERBOSE") != NULL;
    snprintf(test_dir, sizeof test_dir, "/tmp/spiral_test_safetensors_XXXXXX");
    if (!mkdtemp(test_dir)) {
        fprintf(stderr, "test_safetensors: mkdtemp failed\n");
        return 1;
    }
    test_roundtrip(1);
    test_roundtrip(0);
    test_model_files();
    test_damaged_files();
    test_reader_errors();
    test_reader_corners();
    test_dtypes();
    test_writer();
    test_npy();
    remove_test_dir();
    return test_summary(argv[0]);
}
