/*
 * corpus_common.h: what the "text" and "kjv" families (corpus_text.c,
 * corpus_kjv.c) share: their parameter tables, the split assignment by
 * unit, the byte and word labels, growable offset lists and params_json.
 * Internal to data/; the families' API is corpus_text.h.
 */
#ifndef SPIRAL_CORPUS_COMMON_H
#define SPIRAL_CORPUS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "dataset.h"

enum {
    PARAM_STRING_CAP = 4096,  /* longest string parameter (a path) + 1 */
    WORD_POS_CLASSES = 16
};

typedef enum { PARAM_INT, PARAM_REAL, PARAM_STRING } ParamKind;

/* One accepted parameter: its JSON name, type, range and where it goes (an
 * int, a double, or a char[PARAM_STRING_CAP]). */
typedef struct {
    const char *name;
    ParamKind kind;
    double min, max;
    void *value;
} ParamField;

/* Parses params_json (NULL or "" = all defaults) into the fields' values.
 * Unknown fields are errors listing the known ones; other errors name
 * "<family>.<field>". Returns 0 or -1. */
int corpus_parse_params(const char *json_text, const char *family, const ParamField *fields,
                        int n_fields);

/* Checks that the two split fractions fit together. */
int corpus_check_fractions(const char *family, double val_fraction, double test_fraction);

/* Assigns each of n units a split: ordered by hash(seed, index), the first
 * round(val_fraction n) go to val, the next round(test_fraction n) to test,
 * the rest to train. Returns 0 or -1 (out of memory). */
int corpus_assign_splits(size_t n, double val_fraction, double test_fraction, int seed,
                         uint8_t *split);

/* 1 if byte i of s[0 .. n) belongs to a word: a word byte, or an apostrophe
 * or hyphen between two word bytes. */
int corpus_in_word(const uint16_t *s, size_t n, size_t i);

/* The char_class, word_pos and word_end labels of s[0 .. n), each (n). */
void corpus_label_words(const uint16_t *s, size_t n, int32_t *char_cls, int32_t *word_pos,
                        int32_t *word_end);

/* Adds the per-split document and byte counts to params and serializes it
 * into ds->params_json (takes the reference). Returns 0 or -1. */
int corpus_set_params_json(Dataset *ds, json_t *params);

/* A growable array of offsets. */
typedef struct {
    size_t *items;
    size_t n, capacity;
} OffsetList;

/* Appends one offset. Returns 0 or -1. */
int corpus_offsets_push(OffsetList *list, size_t value);

#endif
