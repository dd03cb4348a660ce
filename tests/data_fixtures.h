/*
 * data_fixtures.h: data and store helpers shared by the tests: a dataset
 * comparison, documents of a small noisy recurrence and a language with a
 * label built on them, and a one-number SQL query.
 * Static inline, so a test that uses only some of them compiles cleanly.
 */
#ifndef SPIRAL_TEST_DATA_FIXTURES_H
#define SPIRAL_TEST_DATA_FIXTURES_H

#include <stdint.h>
#include <string.h>

#include "dataset.h"
#include "store.h"

/* 1 if two datasets hold the same tokens, documents, labels, nll, params. */
static inline int datasets_equal(const Dataset *a, const Dataset *b) {
    if (a->n_tokens != b->n_tokens || a->n_docs != b->n_docs || a->n_labels != b->n_labels ||
        a->vocab_size != b->vocab_size || strcmp(a->params_json, b->params_json) != 0)
        return 0;
    if (memcmp(a->tokens, b->tokens, a->n_tokens * sizeof *a->tokens) ||
        memcmp(a->doc_start, b->doc_start, (a->n_docs + 1) * sizeof *a->doc_start) ||
        memcmp(a->doc_split, b->doc_split, a->n_docs) ||
        memcmp(a->true_nll, b->true_nll, a->n_tokens * sizeof *a->true_nll))
        return 0;
    for (int l = 0; l < a->n_labels; l++)
        if (strcmp(a->labels[l].name, b->labels[l].name) ||
            a->labels[l].n_classes != b->labels[l].n_classes ||
            memcmp(a->labels[l].values, b->labels[l].values, a->n_tokens * sizeof(int32_t)))
            return 0;
    return 1;
}

/* Document d of the noisy recurrence x_{i+1} = (x_i + x_{i-1}) mod 7 + 1
 * over symbols 1..7: `length` tokens starting at 1 + d mod 7, 1 + (d / 7)
 * mod 7; with probability 0.1 a token is a random symbol instead. *state is
 * the LCG the noise draws from, advanced once per token after the first two. */
static inline void recurrence_document(uint16_t *tokens, int length, int d, uint64_t *state) {
    tokens[0] = 1 + d % 7;
    tokens[1] = 1 + (d / 7) % 7;
    for (int i = 2; i < length; i++) {
        *state = *state * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (*state >> 33) % 10 == 0 ? (uint16_t)(1 + (*state >> 40) % 7)
                                             : (uint16_t)((tokens[i - 1] + tokens[i - 2]) % 7 + 1);
    }
}

/* A language with a parity label: x_{i+1} = (x_i + x_{i-1}) mod 7 + 1, 10% noise. */
static inline void make_parity_language(Dataset *ds) {
    const char *names[1] = {"parity"};
    int classes[1] = {2};
    dataset_init(ds, "test", 8, 1, names, classes, 0);
    uint64_t state = 777;
    for (int d = 0; d < 120; d++) {
        uint16_t tokens[40];
        int32_t labels[40];
        recurrence_document(tokens, 40, d, &state);
        for (int i = 0; i < 40; i++) labels[i] = tokens[i] % 2;
        dataset_append(ds, tokens, 40, labels, NULL, d < 80 ? SPLIT_TRAIN : d < 100 ? SPLIT_VAL : SPLIT_TEST);
    }
}

/* The single integer a one-row SQL query returns (-1 on error). */
static inline long long store_count(Store *store, const char *sql) {
    sqlite3_stmt *stmt;
    long long n = -1;
    if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
}

#endif
