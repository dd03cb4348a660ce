/*
 * corpus_words.c: counts and ranks the words of a byte text (corpus_words.h)
 * in an open-addressing hash table keyed by the words' bytes.
 */
#include "corpus_words.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a over a word's bytes. */
static uint64_t word_hash(const uint16_t *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

/* The slot of the word s[0 .. len) (hash h), or the empty slot for it. */
static size_t word_slot(const WordTable *t, const uint16_t *s, size_t len, uint64_t h) {
    size_t mask = t->capacity - 1, i = (size_t)h & mask;
    for (;; i = (i + 1) & mask) {
        const WordEntry *e = &t->entries[i];
        if (!e->count) return i;
        if (e->hash == h && e->length == len && !memcmp(e->bytes, s, len * sizeof *s))
            return i;
    }
}

/* Counts one occurrence of the word s[0 .. len). Returns 0 or -1. */
static int word_add(WordTable *t, const uint16_t *s, size_t len) {
    uint64_t h = word_hash(s, len);
    size_t i = word_slot(t, s, len, h);
    if (t->entries[i].count) {
        t->entries[i].count++;
        return 0;
    }
    if (2 * (t->used + 1) > t->capacity) {
        WordTable bigger = {calloc(2 * t->capacity, sizeof(WordEntry)), 2 * t->capacity,
                            t->used};
        if (!bigger.entries) return -1;
        for (size_t j = 0; j < t->capacity; j++) {
            const WordEntry *e = &t->entries[j];
            if (e->count) bigger.entries[word_slot(&bigger, e->bytes, e->length, e->hash)] = *e;
        }
        free(t->entries);
        *t = bigger;
        i = word_slot(t, s, len, h);
    }
    t->entries[i] = (WordEntry){s, (uint32_t)len, 0, 1, h};
    t->used++;
    return 0;
}

/* Orders word entries by decreasing count, then by their bytes. */
static int compare_words(const void *a, const void *b) {
    const WordEntry *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    size_t len = x->length < y->length ? x->length : y->length;
    for (size_t i = 0; i < len; i++) {
        if (x->bytes[i] != y->bytes[i]) return x->bytes[i] < y->bytes[i] ? -1 : 1;
    }
    return (x->length > y->length) - (x->length < y->length);
}

/* Counts and ranks the words of the train chapters (corpus_words.h). */
int corpus_words_rank(const uint16_t *text, const OffsetList *chapter_start,
                      const uint8_t *chapter_split, int top_words, WordTable *table,
                      json_t *words_json) {
    table->capacity = 1 << 15;
    table->used = 0;
    table->entries = calloc(table->capacity, sizeof *table->entries);
    if (!table->entries) return -1;
    size_t n_chapters = chapter_start->n - 1;
    for (size_t c = 0; c < n_chapters; c++) {
        if (chapter_split[c] != SPLIT_TRAIN) continue;
        size_t first = chapter_start->items[c], last = chapter_start->items[c + 1];
        const uint16_t *s = text + first;
        size_t n = last - first;
        for (size_t i = 0; i < n;) {
            if (!corpus_in_word(s, n, i)) {
                i++;
                continue;
            }
            size_t j = i + 1;
            while (j < n && corpus_in_word(s, n, j)) j++;
            if (word_add(table, s + i, j - i)) return -1;
            i = j;
        }
    }
    WordEntry *sorted = malloc((table->used ? table->used : 1) * sizeof *sorted);
    if (!sorted) return -1;
    size_t m = 0;
    for (size_t i = 0; i < table->capacity; i++)
        if (table->entries[i].count) sorted[m++] = table->entries[i];
    qsort(sorted, m, sizeof *sorted, compare_words);
    for (size_t r = 0; r < m; r++) {
        WordEntry *e = &table->entries[word_slot(table, sorted[r].bytes, sorted[r].length,
                                                 sorted[r].hash)];
        e->rank = (uint32_t)r;
        if (r < (size_t)top_words) {
            char word[256];
            size_t len = sorted[r].length < sizeof word - 1 ? sorted[r].length : sizeof word - 1;
            for (size_t i = 0; i < len; i++) word[i] = (char)sorted[r].bytes[i];
            json_t *string = json_stringn(word, len);
            json_array_append_new(words_json, string ? string : json_string("?"));
        }
    }
    free(sorted);
    return 0;
}

/* The "word" label of one chapter (corpus_words.h). */
void corpus_words_label(const WordTable *table, const uint16_t *s, size_t n,
                        const int32_t *word_pos, const int32_t *word_end, int top_words,
                        int32_t *word) {
    for (size_t i = 0; i < n;) {
        if (word_pos[i] < 0) {
            word[i++] = -1;
            continue;
        }
        size_t j = i;
        while (!word_end[j]) j++;  /* j = the word's last byte */
        size_t len = j + 1 - i;
        uint64_t h = word_hash(s + i, len);
        const WordEntry *e = &table->entries[word_slot(table, s + i, len, h)];
        int id = e->count && e->rank < (uint32_t)top_words ? (int)e->rank : top_words;
        for (; i <= j; i++) word[i] = id;
    }
}
