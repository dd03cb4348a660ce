/*
 * ngram.c: add-k n-gram baselines and the unigram entropy (see ngram.h).
 *
 * An order-m table holds two counts: how often each m-gram occurs in the
 * train stream and how often each (m-1)-token context occurs followed by a
 * token. Both are keyed by the tokens read as digits of a number: in base V
 * when V^m is small (a dense array, e.g. bytes up to the bigram) and in base
 * 65536 otherwise (a 64-bit key in an open-addressing hash map, so a bigram
 * over a 65536-token vocabulary costs memory per distinct bigram, not V^2).
 * The order-1 table is the same code with an empty context, whose count is
 * the length of the stream.
 */
#include "mix.h"
#include "ngram.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Dense tables are used while V^m <= 2^DENSE_MAX_LOG2 entries (32 MiB). */
enum { DENSE_MAX_LOG2 = 22 };


/* Counts per 64-bit key, open addressing with linear probing. A slot is
 * empty when its count is 0 (a stored key has been counted at least once),
 * so every 64-bit value is a valid key. */
typedef struct {
    uint64_t *keys;    /* (capacity) */
    uint64_t *counts;  /* (capacity) */
    size_t capacity;   /* a power of two */
    size_t used;       /* slots with a count */
} CountMap;

/* An empty map with `capacity` slots (a power of two). Returns 0 or -1. */
static int map_init(CountMap *map, size_t capacity) {
    map->keys = malloc(capacity * sizeof *map->keys);
    map->counts = calloc(capacity, sizeof *map->counts);
    map->capacity = capacity;
    map->used = 0;
    return map->keys && map->counts ? 0 : -1;
}

/* Frees a map's arrays (safe on a zeroed or partly initialized map). */
static void map_free(CountMap *map) {
    free(map->keys);
    free(map->counts);
    memset(map, 0, sizeof *map);
}

/* The slot holding `key`, or the empty slot where it would go. */
static size_t map_slot(const CountMap *map, uint64_t key) {
    size_t mask = map->capacity - 1;
    size_t i = (size_t)mix64(key) & mask;
    while (map->counts[i] && map->keys[i] != key) i = (i + 1) & mask;
    return i;
}

/* Doubles the capacity, reinserting every entry. Returns 0 or -1. */
static int map_grow(CountMap *map) {
    CountMap bigger;
    if (map_init(&bigger, map->capacity * 2)) {
        map_free(&bigger);
        return -1;
    }
    for (size_t i = 0; i < map->capacity; i++)
        if (map->counts[i]) {
            size_t j = map_slot(&bigger, map->keys[i]);
            bigger.keys[j] = map->keys[i];
            bigger.counts[j] = map->counts[i];
        }
    bigger.used = map->used;
    map_free(map);
    *map = bigger;
    return 0;
}

/* Adds 1 to the count of `key`, keeping the load at most 1/2. Returns 0 or
 * -1 (out of memory). */
static int map_add(CountMap *map, uint64_t key) {
    size_t i = map_slot(map, key);
    if (map->counts[i]) {
        map->counts[i]++;
        return 0;
    }
    if (2 * (map->used + 1) > map->capacity) {
        if (map_grow(map)) return -1;
        i = map_slot(map, key);
    }
    map->keys[i] = key;
    map->counts[i] = 1;
    map->used++;
    return 0;
}

/* The count of `key` (0 if absent). */
static uint64_t map_get(const CountMap *map, uint64_t key) {
    return map->counts[map_slot(map, key)];
}

/* The counts of one order m (see the file comment). */
typedef struct {
    int order;                 /* m */
    int dense;                 /* 1: arrays in base V, 0: hash maps in base 65536 */
    uint64_t base;             /* V or 65536 */
    uint64_t *dense_ngram;     /* (V^m) */
    uint64_t *dense_context;   /* (V^(m-1)) */
    CountMap ngram, context;
} NgramTable;

/* tokens[0..len) read as the digits of a number in `base`, most significant
 * first. With base 65536 and len <= 4 the result fits 64 bits exactly. */
static uint64_t pack_tokens(const uint16_t *tokens, int len, uint64_t base) {
    uint64_t key = 0;
    for (int j = 0; j < len; j++) key = key * base + tokens[j];
    return key;
}

/* V^m if it is at most 2^DENSE_MAX_LOG2, else 0. */
static size_t dense_size(int vocab_size, int m) {
    size_t size = 1;
    for (int j = 0; j < m; j++) {
        size *= (size_t)vocab_size;
        if (size > ((size_t)1 << DENSE_MAX_LOG2)) return 0;
    }
    return size;
}

/* Frees a table's counts (safe on a zeroed or partly built table). */
static void table_free(NgramTable *table) {
    free(table->dense_ngram);
    free(table->dense_context);
    map_free(&table->ngram);
    map_free(&table->context);
    memset(table, 0, sizeof *table);
}

/* Counts every m-gram stream[i-m+1 .. i] (i >= m-1) and its context
 * stream[i-m+1 .. i-1]. Returns 0 or -1 (out of memory). */
static int table_build(NgramTable *table, int m, int vocab_size, const uint16_t *stream,
                       size_t n) {
    memset(table, 0, sizeof *table);
    table->order = m;
    size_t size = dense_size(vocab_size, m);
    table->dense = size > 0;
    if (table->dense) {
        table->base = (uint64_t)vocab_size;
        table->dense_ngram = calloc(size, sizeof *table->dense_ngram);
        table->dense_context = calloc(size / (size_t)vocab_size, sizeof *table->dense_context);
        if (!table->dense_ngram || !table->dense_context) goto oom;
        for (size_t i = (size_t)m - 1; i < n; i++) {
            const uint16_t *gram = stream + i - (m - 1);
            table->dense_ngram[pack_tokens(gram, m, table->base)]++;
            table->dense_context[pack_tokens(gram, m - 1, table->base)]++;
        }
        return 0;
    }
    table->base = 65536;
    if (map_init(&table->ngram, 1 << 12) || map_init(&table->context, 1 << 12)) goto oom;
    for (size_t i = (size_t)m - 1; i < n; i++) {
        const uint16_t *gram = stream + i - (m - 1);
        if (map_add(&table->ngram, pack_tokens(gram, m, table->base)) ||
            map_add(&table->context, pack_tokens(gram, m - 1, table->base)))
            goto oom;
    }
    return 0;
oom:
    table_free(table);
    return spiral_error("ngram: out of memory counting %d-grams of %zu tokens", m, n);
}

/* log p(gram[m-1] | gram[0 .. m-2]) with add-k smoothing over V tokens. */
static double table_log_prob(const NgramTable *table, const uint16_t *gram, double add_k,
                             int vocab_size) {
    int m = table->order;
    uint64_t ngram_key = pack_tokens(gram, m, table->base);
    uint64_t context_key = pack_tokens(gram, m - 1, table->base);
    uint64_t joint, context;
    if (table->dense) {
        joint = table->dense_ngram[ngram_key];
        context = table->dense_context[context_key];
    } else {
        joint = map_get(&table->ngram, ngram_key);
        context = map_get(&table->context, context_key);
    }
    double numerator = (double)joint + add_k;
    double denominator = (double)context + add_k * vocab_size;
    if (numerator <= 0 || denominator <= 0) return -INFINITY;
    return log(numerator / denominator);
}

/* The tokens of the documents of `split`, back to back, in a malloc'd
 * array; *n gets the length (0 gives a 1-element allocation). Returns NULL
 * on out of memory. */
static uint16_t *split_stream(const Dataset *ds, int split, size_t *n) {
    size_t total = dataset_split_tokens(ds, split);
    uint16_t *stream = malloc((total ? total : 1) * sizeof *stream);
    if (!stream) return NULL;
    size_t at = 0;
    for (size_t d = 0; d < ds->n_docs; d++) {
        if (ds->doc_split[d] != split) continue;
        size_t len = ds->doc_start[d + 1] - ds->doc_start[d];
        memcpy(stream + at, ds->tokens + ds->doc_start[d], len * sizeof *stream);
        at += len;
    }
    *n = total;
    return stream;
}

/* Checks a split argument; returns 0 or -1 naming it. */
static int check_split(int split, const char *what) {
    if (split < 0 || split >= SPLIT_COUNT)
        return spiral_error("ngram: %s %d is not a split (0 .. %d)", what, split, SPLIT_COUNT - 1);
    return 0;
}

/* Checks ngram_loss's order and add_k; returns 0 or -1 naming the bad one. */
static int check_model(int order, double add_k) {
    if (order < 1 || order > NGRAM_MAX_ORDER)
        return spiral_error("ngram: order %d outside 1 .. %d", order, NGRAM_MAX_ORDER);
    if (!(add_k >= 0) || isinf(add_k))
        return spiral_error("ngram: add_k %g must be finite and >= 0", add_k);
    return 0;
}

/* The models of orders 1 .. order (tables[m-1] is order m) fitted on the
 * stream of train_split. Returns the number built (order), or -1 with the
 * tables freed (empty split, out of memory). */
static int tables_fit(NgramTable *tables, int order, const Dataset *ds, int train_split) {
    size_t n_train;
    uint16_t *train = split_stream(ds, train_split, &n_train);
    if (!train)
        return spiral_error("ngram: out of memory copying the %s stream",
                            dataset_split_name(train_split));
    int built = 0;
    if (n_train == 0) spiral_error("ngram: the %s split is empty", dataset_split_name(train_split));
    else
        for (; built < order; built++)
            if (table_build(&tables[built], built + 1, ds->vocab_size, train, n_train)) break;
    free(train);
    if (built == order) return built;
    for (int m = 0; m < built; m++) table_free(&tables[m]);
    return -1;
}

double ngram_loss(const Dataset *ds, int order, int train_split, int eval_split, double add_k) {
    if (check_model(order, add_k) || check_split(train_split, "train_split") ||
        check_split(eval_split, "eval_split"))
        return NAN;
    size_t n_eval;
    uint16_t *eval = split_stream(ds, eval_split, &n_eval);
    NgramTable tables[NGRAM_MAX_ORDER];
    double loss = NAN;
    if (!eval) {
        spiral_error("ngram: out of memory copying the %s stream", dataset_split_name(eval_split));
        return NAN;
    }
    if (dataset_split_tokens(ds, train_split) && n_eval == 0) {
        spiral_error("ngram: the %s split is empty", dataset_split_name(eval_split));
        free(eval);
        return NAN;
    }
    /* orders below `order` serve the first order-1 eval tokens (fewer
     * tokens of context) */
    if (tables_fit(tables, order, ds, train_split) < 0) {
        free(eval);
        return NAN;
    }
    double sum = 0;
    for (size_t i = 0; i < n_eval; i++) {
        int m = i + 1 < (size_t)order ? (int)i + 1 : order;
        sum -= table_log_prob(&tables[m - 1], eval + i + 1 - m, add_k, ds->vocab_size);
    }
    loss = sum / (double)n_eval;
    for (int m = 0; m < order; m++) table_free(&tables[m]);
    free(eval);
    return loss;
}

double ngram_window_loss(const Dataset *ds, int order, int train_split,
                         const EvalTargets *targets, double add_k) {
    if (check_model(order, add_k) || check_split(train_split, "train_split")) return NAN;
    NgramTable tables[NGRAM_MAX_ORDER];
    if (tables_fit(tables, order, ds, train_split) < 0) return NAN;
    double sum = 0;
    uint16_t gram[NGRAM_MAX_ORDER];
    for (size_t k = 0; k < targets->n_windows; k++) {
        const int *window = targets->stream.tokens + targets->starts[k];  /* (L + 1) */
        for (int j = 0; j < targets->L; j++) {
            /* target window[j + 1] with the at most order - 1 window tokens before it */
            int m = j + 2 < order ? j + 2 : order;
            for (int a = 0; a < m; a++) gram[a] = (uint16_t)window[j + 2 - m + a];
            sum -= table_log_prob(&tables[m - 1], gram, add_k, ds->vocab_size);
        }
    }
    for (int m = 0; m < order; m++) table_free(&tables[m]);
    return sum / ((double)targets->n_windows * targets->L);
}

double unigram_entropy(const Dataset *ds, int split) {
    if (check_split(split, "split")) return NAN;
    uint64_t *counts = calloc((size_t)ds->vocab_size, sizeof *counts);
    if (!counts) {
        spiral_error("ngram: out of memory counting %d token types", ds->vocab_size);
        return NAN;
    }
    uint64_t total = 0;
    for (size_t d = 0; d < ds->n_docs; d++) {
        if (ds->doc_split[d] != split) continue;
        for (size_t i = ds->doc_start[d]; i < ds->doc_start[d + 1]; i++) counts[ds->tokens[i]]++;
        total += ds->doc_start[d + 1] - ds->doc_start[d];
    }
    double entropy = NAN;
    if (total == 0) {
        spiral_error("ngram: the %s split is empty", dataset_split_name(split));
    } else {
        /* H = -sum_x (c_x/N) log(c_x/N) */
        entropy = 0;
        for (int x = 0; x < ds->vocab_size; x++)
            if (counts[x]) {
                double p = (double)counts[x] / (double)total;
                entropy -= p * log(p);
            }
    }
    free(counts);
    return entropy;
}
