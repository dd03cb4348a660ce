/*
 * corpus_words.h: the distinct words of a byte text, counted over its
 * train chapters and ranked, for the "word" label of the "kjv" family
 * (corpus_text.h says what a word is). Internal to data/.
 */
#ifndef SPIRAL_CORPUS_WORDS_H
#define SPIRAL_CORPUS_WORDS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "corpus_common.h"

/* One distinct word of the rendered text and its train count. */
typedef struct {
    const uint16_t *bytes;  /* an occurrence in the text */
    uint32_t length;
    uint32_t rank;   /* 0 = most frequent; set after counting */
    uint64_t count;  /* occurrences in train chapters; 0 = empty slot */
    uint64_t hash;
} WordEntry;

/* The distinct words of a text, open addressing keyed by the bytes. */
typedef struct {
    WordEntry *entries;
    size_t capacity, used;
} WordTable;

/* Counts the words of the train chapters of text (chapter c is text[
 * chapter_start->items[c] .. items[c + 1]), its split chapter_split[c]) and
 * ranks them (entry.rank): by decreasing count, ties by byte order.
 * words_json gets the top_words most frequent as strings. table is
 * allocated here (free table->entries). Returns 0 or -1. */
int corpus_words_rank(const uint16_t *text, const OffsetList *chapter_start,
                      const uint8_t *chapter_split, int top_words, WordTable *table,
                      json_t *words_json);

/* The "word" label of one chapter s[0 .. n) whose word_pos / word_end rows
 * are already computed: the word's rank if below top_words, else
 * top_words; -1 outside words. */
void corpus_words_label(const WordTable *table, const uint16_t *s, size_t n,
                        const int32_t *word_pos, const int32_t *word_end, int top_words,
                        int32_t *word);

#endif
