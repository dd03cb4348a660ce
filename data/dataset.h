/*
 * dataset.h: a token corpus with gold labels, in memory.
 *
 * A dataset is a sequence of documents laid back to back in one token array
 * (a synthetic sentence, a Dyck string, a chapter of the Bible). Each
 * document belongs to one split; splits are by document, never by token, so
 * no document leaks between train and evaluation. Every label is one int per
 * token (-1 where it is undefined), e.g. the depth of a bracket, the
 * level-2 ancestor symbol of a token, or the verse a character belongs to.
 *
 * Where the generating process is known exactly, true_nll[i] holds
 * -log p(token i | the tokens before it in its document) under that process
 * (nats): its mean over a split is the entropy floor no model can beat.
 */
#ifndef SPIRAL_DATASET_H
#define SPIRAL_DATASET_H

#include <stddef.h>
#include <stdint.h>

enum {
    SPLIT_TRAIN = 0,
    SPLIT_VAL = 1,
    SPLIT_TEST = 2,
    SPLIT_TEST_OOD = 3,   /* held out by construction: deeper, longer, ... */
    SPLIT_COUNT = 4
};

#define DATASET_NAME_CAP 64

typedef struct {
    char name[DATASET_NAME_CAP];  /* e.g. "depth", "l2.symbol", "l1.end", "verse" */
    int n_classes;                /* values are in 0 .. n_classes - 1, or -1 */
    int32_t *values;              /* (n_tokens) */
} DatasetLabel;

typedef struct {
    char family[DATASET_NAME_CAP];  /* "pcfg", "dyck", "rhm", "text", "kjv" */
    char *params_json;              /* the generator's parameters (malloc'd JSON) */
    int vocab_size;
    size_t n_tokens;
    uint16_t *tokens;               /* (n_tokens) */
    size_t n_docs;
    size_t *doc_start;              /* (n_docs + 1): document d is [doc_start[d], doc_start[d+1]) */
    uint8_t *doc_split;             /* (n_docs) SPLIT_* */
    int n_labels;
    DatasetLabel *labels;           /* (n_labels) */
    double *true_nll;               /* (n_tokens) or NULL; NaN where unknown */
    size_t capacity_tokens, capacity_docs;  /* growth bookkeeping */
} Dataset;

/* An empty dataset of a family with `n_labels` labels named names[] with
 * n_classes[] classes each; `with_true_nll` allocates true_nll. Returns 0 or
 * -1 (out of memory). */
int dataset_init(Dataset *ds, const char *family, int vocab_size, int n_labels,
                 const char *const *names, const int *n_classes, int with_true_nll);

/* Appends one document of n tokens. labels is (n_labels, n) row by row, or
 * NULL (all -1); true_nll (n) or NULL (NaN). Returns 0 or -1. */
int dataset_append(Dataset *ds, const uint16_t *tokens, size_t n, const int32_t *labels,
                   const double *true_nll, int split);

void dataset_free(Dataset *ds);

/* Index of the label with this name, or -1. */
int dataset_find_label(const Dataset *ds, const char *name);

/* Number of tokens in documents of `split`. */
size_t dataset_split_tokens(const Dataset *ds, int split);

/* Mean true_nll over the tokens of a split that have one (NaN if none);
 * *count gets how many. Position 0 of each document is included only if it
 * has a value. */
double dataset_true_nll_mean(const Dataset *ds, int split, size_t *count);

/* Checks the invariants (offsets increasing, tokens < vocab_size, label
 * values in range, splits valid). Returns 0 or -1 naming the first problem. */
int dataset_validate(const Dataset *ds);

const char *dataset_split_name(int split);

/* The tokens of one split, its documents back to back in dataset order (what
 * a model trains or is evaluated on), with each token's index in the
 * dataset (to find its labels) and the document starts at which a window of
 * window_len tokens fits. */
typedef struct {
    int *tokens;         /* (n) */
    size_t *global;      /* (n) index of each token in ds->tokens */
    size_t n;
    size_t *starts;      /* (n_starts) stream offsets of document starts with room for a window */
    size_t n_starts;
} SplitStream;

/* Builds the stream of `split`. Fails, naming the dataset and split, if the
 * split holds fewer than window_len tokens. */
int dataset_split_stream(SplitStream *stream, const Dataset *ds, int split, size_t window_len,
                         const char *dataset_name);
void split_stream_free(SplitStream *stream);

#endif
