/*
 * config.c: the model configuration as JSON (see config.h and
 * docs/model.md), read and written with jansson.
 *
 * One table, model_fields[], lists the fields of the model object in the
 * order they are written. Parsing looks each key up in it (so an unknown key
 * is an error that lists the known ones), config_to_json writes it in order,
 * and config_validate checks the per-field ranges from it before the
 * cross-field rules (d % H, even head dimension, the schedule).
 *
 * Parsing is in two steps: the JSON walk checks types (an integer field must
 * hold a JSON integer that fits in an int, a real field any number, ...), then
 * config_validate checks values. Every message names the field as a path from
 * the model object ("model.schedule[2].g"); config_parse prefixes the source.
 * The result is built in a local copy, so on failure *cfg is left untouched.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "jsontext.h"
#include "fileio.h"

/* Limits of one iteration (see config_validate). */
enum { MAX_CHUNK_SIZE = 4096, MAX_SHIFT = 65535 };

/* The JSON strings of the enum values, indexed by value (config.h). */
static const char *const down_names[2] = {"mean", "selfagg"};
static const char *const up_names[2] = {"copy", "alloc"};
static const char *const topology_names[3] = {"residual", "anchor", "mesh"};

typedef enum { FIELD_INT, FIELD_BOOL, FIELD_REAL, FIELD_ENUM, FIELD_SCHEDULE } FieldKind;

/* One field of the model object. `offset` locates the member in SpiralConfig:
 * an int for FIELD_INT, FIELD_BOOL and FIELD_ENUM, a double for FIELD_REAL
 * (unused for FIELD_SCHEDULE, which fills n_iters and schedule[]). */
typedef struct {
    const char *name;
    FieldKind kind;
    size_t offset;
    int min, max;              /* FIELD_INT: the allowed range; FIELD_ENUM: 0 and the last value */
    const char *const *names;  /* FIELD_ENUM: the JSON string of each value 0 .. max */
} ModelField;

static const ModelField model_fields[] = {
    {"vocab_size", FIELD_INT, offsetof(SpiralConfig, vocab_size), 1, 65536, NULL},
    {"d_model", FIELD_INT, offsetof(SpiralConfig, d_model), 2, SPIRAL_MAX_WIDTH, NULL},
    {"n_heads", FIELD_INT, offsetof(SpiralConfig, n_heads), 1, SPIRAL_MAX_HEADS, NULL},
    {"d_ff", FIELD_INT, offsetof(SpiralConfig, d_ff), 1, 4 * SPIRAL_MAX_WIDTH, NULL},
    {"n_pre", FIELD_INT, offsetof(SpiralConfig, n_pre), 0, SPIRAL_MAX_LAYERS, NULL},
    {"n_loop", FIELD_INT, offsetof(SpiralConfig, n_loop), 1, SPIRAL_MAX_LAYERS, NULL},
    {"n_post", FIELD_INT, offsetof(SpiralConfig, n_post), 0, SPIRAL_MAX_LAYERS, NULL},
    {"tie_embeddings", FIELD_BOOL, offsetof(SpiralConfig, tie_embeddings), 0, 1, NULL},
    {"rope_base", FIELD_REAL, offsetof(SpiralConfig, rope_base), 0, 0, NULL},
    {"norm_eps", FIELD_REAL, offsetof(SpiralConfig, norm_eps), 0, 0, NULL},
    {"down", FIELD_ENUM, offsetof(SpiralConfig, down), 0, 1, down_names},
    {"up", FIELD_ENUM, offsetof(SpiralConfig, up), 0, 1, up_names},
    {"topology", FIELD_ENUM, offsetof(SpiralConfig, topology), 0, 2, topology_names},
    {"mesh_slots", FIELD_INT, offsetof(SpiralConfig, mesh_slots), 2, SPIRAL_MAX_MESH_SLOTS, NULL},
    {"schedule", FIELD_SCHEDULE, 0, 0, 0, NULL},
};
static const size_t n_model_fields = sizeof model_fields / sizeof model_fields[0];

/* The int member a field describes. */
static int *field_int(SpiralConfig *cfg, const ModelField *field) {
    return (int *)((char *)cfg + field->offset);
}

/* The double member a field describes. */
static double *field_real(SpiralConfig *cfg, const ModelField *field) {
    return (double *)((char *)cfg + field->offset);
}

/* Read-only versions of the two accessors above. */
static int field_int_value(const SpiralConfig *cfg, const ModelField *field) {
    return *(const int *)((const char *)cfg + field->offset);
}
static double field_real_value(const SpiralConfig *cfg, const ModelField *field) {
    return *(const double *)((const char *)cfg + field->offset);
}

/* Looks a model key up in the table; NULL if it is not a field. */
static const ModelField *find_field(const char *key) {
    for (size_t i = 0; i < n_model_fields; i++)
        if (strcmp(model_fields[i].name, key) == 0) return &model_fields[i];
    return NULL;
}

/* Checks min <= value <= max; the message says which bound was broken. */
static int check_int_range(const char *path, long long value, long long min, long long max) {
    if (value < min) return spiral_error("%s: expected an integer >= %lld, got %lld", path, min, value);
    if (value > max) return spiral_error("%s: expected an integer <= %lld, got %lld", path, max, value);
    return 0;
}

/* Reads a JSON integer in min..max into *out. Reals (even 64.0) are errors. */
static int parse_int(const json_t *value, const char *path, int min, int max, int *out) {
    char got[64];
    if (!json_is_integer(value))
        return spiral_error("%s: expected an integer, got %s", path, json_describe(value, got, sizeof got));
    json_int_t v = json_integer_value(value);
    if (check_int_range(path, v, min, max)) return -1;
    *out = (int)v;
    return 0;
}

/* Reads true or false into *out as 1 or 0. */
static int parse_bool(const json_t *value, const char *path, int *out) {
    char got[64];
    if (!json_is_boolean(value))
        return spiral_error("%s: expected true or false, got %s", path, json_describe(value, got, sizeof got));
    *out = json_is_true(value);
    return 0;
}

/* Reads any JSON number (integer or real) into *out. */
static int parse_real(const json_t *value, const char *path, double *out) {
    char got[64];
    if (!json_is_number(value))
        return spiral_error("%s: expected a number, got %s", path, json_describe(value, got, sizeof got));
    *out = json_number_value(value);
    return 0;
}

/* The allowed values of an enum field for messages: "\"a\" or \"b\"" or
 * "\"a\", \"b\" or \"c\"". */
static void enum_choices(char *text, size_t size, const ModelField *field) {
    size_t used = 0;
    text[0] = 0;
    for (int i = 0; i <= field->max && used < size; i++)
        used += (size_t)snprintf(text + used, size - used, "%s\"%s\"",
                                 i == 0 ? "" : i == field->max ? " or " : ", ", field->names[i]);
}

/* Reads one of the strings names[0 .. max] into *out as its index. */
static int parse_enum(const json_t *value, const char *path, const ModelField *field, int *out) {
    char got[64], choices[128];
    enum_choices(choices, sizeof choices, field);
    if (json_is_string(value)) {
        const char *s = json_string_value(value);
        for (int i = 0; i <= field->max; i++) {
            if (strcmp(s, field->names[i]) == 0) {
                *out = i;
                return 0;
            }
        }
        return spiral_error("%s: expected %s, got \"%.100s\"", path, choices, s);
    }
    return spiral_error("%s: expected %s, got %s", path, choices, json_describe(value, got, sizeof got));
}

/* Reads schedule element t: an object {"g", "offset" (default 0), "shift"
 * (default g - 1)} or a bare integer g. g is range-checked here because the
 * default shift is computed from it; offset and shift only have to fit in an
 * int (config_validate checks them against g). */
static int parse_iteration(const json_t *item, int t, IterSpec *out) {
    char path[160], got[64];
    if (json_is_integer(item)) {
        snprintf(path, sizeof path, "model.schedule[%d].g", t);
        if (parse_int(item, path, 1, MAX_CHUNK_SIZE, &out->g)) return -1;
        out->offset = 0;
        out->shift = out->g - 1;
        return 0;
    }
    if (!json_is_object(item)) {
        return spiral_error("model.schedule[%d]: expected an object {\"g\", \"offset\", \"shift\"} "
                            "or an integer g, got %s", t, json_describe(item, got, sizeof got));
    }
    int have_g = 0, have_shift = 0;
    out->offset = 0;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)item, key, value) {
        snprintf(path, sizeof path, "model.schedule[%d].%s", t, key);
        if (strcmp(key, "g") == 0) {
            if (parse_int(value, path, 1, MAX_CHUNK_SIZE, &out->g)) return -1;
            have_g = 1;
        } else if (strcmp(key, "offset") == 0) {
            if (parse_int(value, path, INT_MIN, INT_MAX, &out->offset)) return -1;
        } else if (strcmp(key, "shift") == 0) {
            if (parse_int(value, path, INT_MIN, INT_MAX, &out->shift)) return -1;
            have_shift = 1;
        } else {
            return spiral_error("%s: unknown field (known: g, offset, shift)", path);
        }
    }
    if (!have_g) return spiral_error("model.schedule[%d].g: missing (every iteration needs a chunk size g)", t);
    if (!have_shift) out->shift = out->g - 1;
    return 0;
}

/* Reads the schedule array; entries past n_iters are left zero. */
static int parse_schedule(const json_t *value, SpiralConfig *cfg) {
    char got[64];
    if (!json_is_array(value))
        return spiral_error("model.schedule: expected an array of iterations, got %s",
                            json_describe(value, got, sizeof got));
    size_t n = json_array_size(value);
    if (n < 1 || n > SPIRAL_MAX_ITERS)
        return spiral_error("model.schedule: expected 1 to %d iterations, got %zu", SPIRAL_MAX_ITERS, n);
    memset(cfg->schedule, 0, sizeof cfg->schedule);
    cfg->n_iters = (int)n;
    for (size_t t = 0; t < n; t++)
        if (parse_iteration(json_array_get(value, t), (int)t, &cfg->schedule[t])) return -1;
    return 0;
}

/* Reads one field's JSON value into cfg (types only; values are checked by
 * config_validate). */
static int parse_field(const ModelField *field, const json_t *value, SpiralConfig *cfg) {
    char path[64];
    snprintf(path, sizeof path, "model.%s", field->name);
    switch (field->kind) {
    case FIELD_INT: return parse_int(value, path, INT_MIN, INT_MAX, field_int(cfg, field));
    case FIELD_BOOL: return parse_bool(value, path, field_int(cfg, field));
    case FIELD_REAL: return parse_real(value, path, field_real(cfg, field));
    case FIELD_ENUM: return parse_enum(value, path, field, field_int(cfg, field));
    case FIELD_SCHEDULE: return parse_schedule(value, cfg);
    }
    return spiral_error("%s: internal error: unknown field kind", path);
}

/* The unknown-field error, listing every known field in table order. */
static int unknown_field_error(const char *key) {
    char known[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < n_model_fields && len < sizeof known; i++)
        len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", model_fields[i].name);
    return spiral_error("model.%.100s: unknown field (known: %s)", key, known);
}

/* Reads a parsed document into cfg: the object under "model" if there is one
 * (a run file), else the top-level object itself. */
static int parse_document(const json_t *root, SpiralConfig *cfg) {
    char got[64];
    if (!json_is_object(root))
        return spiral_error("model: expected a JSON object, got %s", json_describe(root, got, sizeof got));
    const json_t *model = json_object_get(root, "model");
    if (model) {
        if (!json_is_object(model))
            return spiral_error("model: expected an object, got %s", json_describe(model, got, sizeof got));
    } else {
        model = root;
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)model, key, value) {
        const ModelField *field = find_field(key);
        if (!field) return unknown_field_error(key);
        if (parse_field(field, value, cfg)) return -1;
    }
    return 0;
}

/* The defaults: the example model of docs/model.md. Unused schedule
 * entries are zero so that two equal configs compare equal with memcmp. */
void config_default(SpiralConfig *cfg) {
    static const int default_g[4] = {8, 4, 2, 1};
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab_size = 256;
    cfg->d_model = 64;
    cfg->n_heads = 4;
    cfg->d_ff = 172;
    cfg->n_pre = 1;
    cfg->n_loop = 2;
    cfg->n_post = 1;
    cfg->tie_embeddings = 1;
    cfg->rope_base = 10000.0;
    cfg->norm_eps = 1e-5;
    cfg->down = DOWN_SELFAGG;
    cfg->up = UP_ALLOC;
    cfg->topology = TOPOLOGY_RESIDUAL;
    cfg->mesh_slots = SPIRAL_DEFAULT_MESH_SLOTS;
    cfg->n_iters = 4;
    for (int t = 0; t < 4; t++) {
        cfg->schedule[t].g = default_g[t];
        cfg->schedule[t].offset = 0;
        cfg->schedule[t].shift = default_g[t] - 1;
    }
}

/* Parses JSON text: syntax (jansson, duplicate keys rejected), then types,
 * then config_validate. Writes *cfg only on success. */
int config_parse(SpiralConfig *cfg, const char *json_text, const char *source) {
    if (!source) source = "config";
    if (!json_text) return spiral_error("%s: no JSON text", source);
    json_error_t syntax;
    json_t *root = json_loads(json_text, JSON_REJECT_DUPLICATES, &syntax);
    if (!root)
        return spiral_error("%s: invalid JSON at line %d, column %d: %s", source, syntax.line,
                            syntax.column, syntax.text);
    SpiralConfig parsed;
    config_default(&parsed);
    int status = parse_document(root, &parsed);
    json_decref(root);
    if (status == 0) status = config_validate(&parsed);
    if (status) return spiral_error_prefix("%s", source);
    *cfg = parsed;
    return 0;
}

/* Reads a file and parses it with the path as the source of messages. */
int config_load(SpiralConfig *cfg, const char *path) {
    char *text = NULL;
    size_t size = 0;
    if (file_read_all(path, &text, &size)) return -1;
    int status;
    if (size == 0)
        status = spiral_error("%s: empty file (expected a JSON model object or run file)", path);
    else if (strlen(text) != size)
        status = spiral_error("%s: contains a NUL byte (expected JSON text)", path);
    else
        status = config_parse(cfg, text, path);
    free(text);
    return status;
}

/* Checks one iteration: 1 <= g <= 4096, 0 <= offset < g,
 * g - 1 <= shift <= 65535. */
static int validate_iteration(const IterSpec *it, int t) {
    char path[64];
    snprintf(path, sizeof path, "model.schedule[%d].g", t);
    if (check_int_range(path, it->g, 1, MAX_CHUNK_SIZE)) return -1;
    if (it->offset < 0 || it->offset >= it->g)
        return spiral_error("model.schedule[%d].offset: expected 0 <= offset < g = %d, got %d", t, it->g,
                            it->offset);
    if (it->shift < it->g - 1)
        return spiral_error("model.schedule[%d].shift: expected shift >= g - 1 = %d (causality), got %d", t,
                            it->g - 1, it->shift);
    snprintf(path, sizeof path, "model.schedule[%d].shift", t);
    return check_int_range(path, it->shift, 0, MAX_SHIFT);
}

/* Per-field ranges from the table, then the cross-field rules. The ranges
 * come first so that, e.g., n_heads >= 1 holds before d_model % n_heads. */
int config_validate(const SpiralConfig *cfg) {
    char path[64], got[64];
    for (size_t i = 0; i < n_model_fields; i++) {
        const ModelField *field = &model_fields[i];
        snprintf(path, sizeof path, "model.%s", field->name);
        int value = field->kind == FIELD_REAL || field->kind == FIELD_SCHEDULE ? 0 : field_int_value(cfg, field);
        switch (field->kind) {
        case FIELD_INT:
            if (check_int_range(path, value, field->min, field->max)) return -1;
            break;
        case FIELD_BOOL:
            if (value != 0 && value != 1) return spiral_error("%s: expected 0 or 1, got %d", path, value);
            break;
        case FIELD_REAL: {
            double x = field_real_value(cfg, field);
            if (!(isfinite(x) && x > 0)) {
                real_for_message(got, sizeof got, x);
                return spiral_error("%s: expected a finite number > 0, got %s", path, got);
            }
            break;
        }
        case FIELD_ENUM:
            if (value < 0 || value > field->max) {
                char choices[128];
                enum_choices(choices, sizeof choices, field);
                return spiral_error("%s: expected 0 .. %d (%s), got %d", path, field->max, choices,
                                    value);
            }
            break;
        case FIELD_SCHEDULE:
            break;
        }
    }
    if (cfg->topology != TOPOLOGY_MESH && cfg->mesh_slots != SPIRAL_DEFAULT_MESH_SLOTS)
        return spiral_error("model.mesh_slots: %d given, but mesh_slots applies only to topology "
                            "\"mesh\" (topology is \"%s\")", cfg->mesh_slots,
                            config_topology_name(cfg->topology));
    if (cfg->d_model % cfg->n_heads != 0)
        return spiral_error("model.n_heads: d_model (%d) must be divisible by n_heads (%d)", cfg->d_model,
                            cfg->n_heads);
    int head_dim = cfg->d_model / cfg->n_heads;
    if (head_dim % 2 != 0)
        return spiral_error("model.n_heads: head dimension d_model / n_heads = %d / %d = %d must be even "
                            "(RoPE rotates pairs of dimensions)", cfg->d_model, cfg->n_heads, head_dim);
    if (cfg->n_iters < 1 || cfg->n_iters > SPIRAL_MAX_ITERS)
        return spiral_error("model.schedule: expected 1 to %d iterations, got %d", SPIRAL_MAX_ITERS,
                            cfg->n_iters);
    for (int t = 0; t < cfg->n_iters; t++)
        if (validate_iteration(&cfg->schedule[t], t)) return -1;
    return 0;
}

/* The schedule as an array of {"g", "offset", "shift"} objects; NULL on
 * allocation failure or an n_iters outside 0..SPIRAL_MAX_ITERS. */
static json_t *schedule_to_json(const SpiralConfig *cfg) {
    if (cfg->n_iters < 0 || cfg->n_iters > SPIRAL_MAX_ITERS) return NULL;
    json_t *array = json_array();
    if (!array) return NULL;
    for (int t = 0; t < cfg->n_iters; t++) {
        const IterSpec *it = &cfg->schedule[t];
        json_t *item = json_object();
        if (json_array_append_new(array, item) ||
            json_object_set_new(item, "g", json_integer(it->g)) ||
            json_object_set_new(item, "offset", json_integer(it->offset)) ||
            json_object_set_new(item, "shift", json_integer(it->shift))) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

/* One field's JSON value; NULL on allocation failure or a value JSON cannot
 * hold (a non-finite real, an enum outside 0..1). */
static json_t *field_to_json(const SpiralConfig *cfg, const ModelField *field) {
    switch (field->kind) {
    case FIELD_INT: return json_integer(field_int_value(cfg, field));
    case FIELD_BOOL: return json_boolean(field_int_value(cfg, field));
    case FIELD_REAL: return json_real(field_real_value(cfg, field));  /* NULL if not finite */
    case FIELD_ENUM: {
        int value = field_int_value(cfg, field);
        return value >= 0 && value <= field->max ? json_string(field->names[value]) : NULL;
    }
    case FIELD_SCHEDULE: return schedule_to_json(cfg);
    }
    return NULL;
}

/* Every field in table order (mesh_slots only under topology mesh, so that
 * other models' JSON does not mention it), compact, reals with 17
 * significant digits so that they read back exactly. Returns NULL on allocation failure, or if cfg
 * holds something JSON cannot represent (config_validate rejects all such
 * configs). The string comes from jansson's allocator, malloc by default. */
char *config_to_json(const SpiralConfig *cfg) {
    json_t *root = json_object();
    if (!root) return NULL;
    for (size_t i = 0; i < n_model_fields; i++) {
        if (!strcmp(model_fields[i].name, "mesh_slots") && cfg->topology != TOPOLOGY_MESH) continue;
        /* json_object_set_new fails on a NULL value and releases the value
         * on failure, so one check covers both. */
        if (json_object_set_new(root, model_fields[i].name, field_to_json(cfg, &model_fields[i]))) {
            json_decref(root);
            return NULL;
        }
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    return text;
}

/* Name of an enum value, or "unknown" if it is out of range (so that it is
 * always safe to print). */
static const char *enum_name(const char *const *names, int count, int value) {
    return value >= 0 && value < count ? names[value] : "unknown";
}

const char *config_down_name(int down) { return enum_name(down_names, 2, down); }
const char *config_up_name(int up) { return enum_name(up_names, 2, up); }
const char *config_topology_name(int topology) { return enum_name(topology_names, 3, topology); }
