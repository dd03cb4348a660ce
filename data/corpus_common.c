/*
 * corpus_common.c: the parts of the "text" and "kjv" families that both use
 * (corpus_common.h).
 *
 * Parameters come as a JSON object checked against a small table of fields
 * (unknown fields, wrong types and out-of-range values are errors naming
 * "<family>.<field>"), and the resolved parameters plus the corpus sizes are
 * written back to params_json.
 */
#include "corpus_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "jsontext.h"
#include "mix.h"

/* ---------------------------------------------------------------- params */

/* Reads one field's value; errors name "<family>.<field>". */
static int parse_field(const ParamField *field, const json_t *value, const char *family) {
    if (field->kind == PARAM_STRING) {
        if (!json_is_string(value))
            return spiral_error("%s.%s: expected a string, got %s", family, field->name,
                                json_type_name(value));
        if (json_string_length(value) >= PARAM_STRING_CAP)
            return spiral_error("%s.%s: longer than %d bytes", family, field->name,
                                PARAM_STRING_CAP - 1);
        snprintf(field->value, PARAM_STRING_CAP, "%s", json_string_value(value));
        return 0;
    }
    if (field->kind == PARAM_INT && !json_is_integer(value))
        return spiral_error("%s.%s: expected an integer in %.0f .. %.0f, got %s", family,
                            field->name, field->min, field->max, json_type_name(value));
    if (!json_is_number(value))
        return spiral_error("%s.%s: expected a number in %g .. %g, got %s", family, field->name,
                            field->min, field->max, json_type_name(value));
    double v = json_number_value(value);
    if (!(v >= field->min && v <= field->max)) {
        if (field->kind == PARAM_INT)
            return spiral_error("%s.%s: expected an integer in %.0f .. %.0f, got %.0f", family,
                                field->name, field->min, field->max, v);
        return spiral_error("%s.%s: expected a number in %g .. %g, got %g", family, field->name,
                            field->min, field->max, v);
    }
    if (field->kind == PARAM_INT)
        *(int *)field->value = (int)v;
    else
        *(double *)field->value = v;
    return 0;
}

/* Parses params_json (NULL or "" = all defaults) into the fields' values.
 * Unknown fields are errors listing the known ones. Returns 0 or -1. */
int corpus_parse_params(const char *json_text, const char *family, const ParamField *fields,
                        int n_fields) {
    if (!json_text || !*json_text) return 0;
    json_error_t syntax;
    json_t *root = json_loads(json_text, JSON_REJECT_DUPLICATES, &syntax);
    if (!root)
        return spiral_error("%s params: invalid JSON at line %d, column %d: %s", family,
                            syntax.line, syntax.column, syntax.text);
    int status = 0;
    if (!json_is_object(root)) {
        status = spiral_error("%s params: expected a JSON object, got %s", family,
                              json_type_name(root));
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (status) break;
        const ParamField *field = NULL;
        for (int f = 0; f < n_fields; f++)
            if (!strcmp(fields[f].name, key)) field = &fields[f];
        if (field) {
            status = parse_field(field, value, family);
            continue;
        }
        char known[512] = "";
        for (int f = 0; f < n_fields; f++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", f ? ", " : "",
                     fields[f].name);
        status = spiral_error("%s.%s: unknown field (known: %s)", family, key, known);
    }
    json_decref(root);
    return status;
}

/* Checks that the two split fractions fit together. */
int corpus_check_fractions(const char *family, double val_fraction, double test_fraction) {
    if (val_fraction + test_fraction > 1)
        return spiral_error("%s.val_fraction + %s.test_fraction: %g + %g exceeds 1", family,
                            family, val_fraction, test_fraction);
    return 0;
}

/* ---------------------------------------------------------------- splits */

/* A unit's place in the split order: its hash, then its index. */
typedef struct {
    uint64_t hash;
    size_t index;
} SplitKey;

/* Orders split keys by hash, then index. */
static int compare_split_keys(const void *a, const void *b) {
    const SplitKey *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Assigns each of n units a split: ordered by hash(seed, index), the first
 * round(val_fraction n) go to val, the next round(test_fraction n) to test,
 * the rest to train. Returns 0 or -1 (out of memory). */
int corpus_assign_splits(size_t n, double val_fraction, double test_fraction, int seed,
                         uint8_t *split) {
    SplitKey *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) return spiral_error("out of memory assigning %zu documents to splits", n);
    uint64_t salt = mix64((uint64_t)seed + 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i < n; i++) keys[i] = (SplitKey){mix64(salt ^ (uint64_t)i), i};
    qsort(keys, n, sizeof *keys, compare_split_keys);
    size_t n_val = (size_t)llround(val_fraction * (double)n);
    size_t n_test = (size_t)llround(test_fraction * (double)n);
    if (n_val > n) n_val = n;
    if (n_test > n - n_val) n_test = n - n_val;
    for (size_t r = 0; r < n; r++)
        split[keys[r].index] = r < n_val ? SPLIT_VAL : r < n_val + n_test ? SPLIT_TEST : SPLIT_TRAIN;
    free(keys);
    return 0;
}
/* ---------------------------------------------------------------- bytes and words */

/* 1 for the bytes words are made of: ASCII letters and digits, bytes >= 0x80. */
static int is_word_byte(unsigned b) {
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b >= 0x80;
}

/* 1 for the whitespace of char_class 2. */
static int is_space_byte(unsigned b) {
    return b == ' ' || b == '\n' || b == '\t' || b == '\r' || b == '\v' || b == '\f';
}

/* The char_class label of a byte (see corpus_text.h). */
static int char_class(unsigned b) {
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) return 0;
    if (b >= '0' && b <= '9') return 1;
    if (is_space_byte(b)) return 2;
    if (b > ' ' && b < 0x7f) return 3;
    return 4;
}

/* 1 if byte i of s[0 .. n) belongs to a word: a word byte, or an apostrophe
 * or hyphen between two word bytes. */
int corpus_in_word(const uint16_t *s, size_t n, size_t i) {
    if (is_word_byte(s[i])) return 1;
    return (s[i] == '\'' || s[i] == '-') && i > 0 && i + 1 < n && is_word_byte(s[i - 1]) &&
           is_word_byte(s[i + 1]);
}

/* The char_class, word_pos and word_end labels of s[0 .. n), each (n). */
void corpus_label_words(const uint16_t *s, size_t n, int32_t *char_cls, int32_t *word_pos,
                        int32_t *word_end) {
    size_t run = 0;  /* bytes of the current word so far */
    int here = n ? corpus_in_word(s, n, 0) : 0;
    for (size_t i = 0; i < n; i++) {
        int next = i + 1 < n ? corpus_in_word(s, n, i + 1) : 0;
        char_cls[i] = char_class(s[i]);
        if (here) {
            word_pos[i] = run < WORD_POS_CLASSES - 1 ? (int32_t)run : WORD_POS_CLASSES - 1;
            word_end[i] = !next;
            run++;
        } else {
            word_pos[i] = -1;
            word_end[i] = -1;
            run = 0;
        }
        here = next;
    }
}

/* Adds the per-split document and byte counts to a params object. */
static int add_split_sizes(json_t *params, const Dataset *ds) {
    json_t *docs = json_object(), *bytes = json_object();
    if (!docs || !bytes) {
        json_decref(docs);
        json_decref(bytes);
        return -1;
    }
    for (int s = SPLIT_TRAIN; s <= SPLIT_TEST; s++) {
        size_t n_docs = 0;
        for (size_t d = 0; d < ds->n_docs; d++) n_docs += ds->doc_split[d] == s;
        json_object_set_new(docs, dataset_split_name(s), json_integer((json_int_t)n_docs));
        json_object_set_new(bytes, dataset_split_name(s),
                            json_integer((json_int_t)dataset_split_tokens(ds, s)));
    }
    json_object_set_new(params, "split_docs", docs);
    json_object_set_new(params, "split_bytes", bytes);
    return 0;
}

/* Serializes params into ds->params_json (takes the reference). */
int corpus_set_params_json(Dataset *ds, json_t *params) {
    if (params && add_split_sizes(params, ds) == 0)
        ds->params_json = json_dumps(params, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(params);
    if (!ds->params_json) return spiral_error("%s: out of memory writing params_json", ds->family);
    return 0;
}

/* ---------------------------------------------------------------- offsets */

/* Appends one offset. Returns 0 or -1. */
int corpus_offsets_push(OffsetList *list, size_t value) {
    if (list->n == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 256;
        size_t *items = realloc(list->items, capacity * sizeof *items);
        if (!items) return -1;
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->n++] = value;
    return 0;
}
