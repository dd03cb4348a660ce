/*
 * dataset.c: building, checking and summarizing an in-memory dataset (see
 * dataset.h).
 */
#include "dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int dataset_init(Dataset *ds, const char *family, int vocab_size, int n_labels,
                 const char *const *names, const int *n_classes, int with_true_nll) {
    memset(ds, 0, sizeof *ds);
    snprintf(ds->family, sizeof ds->family, "%s", family);
    ds->vocab_size = vocab_size;
    ds->n_labels = n_labels;
    ds->doc_start = calloc(1, sizeof(size_t));
    ds->labels = calloc((size_t)n_labels + 1, sizeof(DatasetLabel));
    if (!ds->doc_start || !ds->labels) goto oom;
    for (int l = 0; l < n_labels; l++) {
        snprintf(ds->labels[l].name, sizeof ds->labels[l].name, "%s", names[l]);
        ds->labels[l].n_classes = n_classes[l];
    }
    if (with_true_nll) ds->true_nll = malloc(sizeof(double)); /* grown by append */
    if (with_true_nll && !ds->true_nll) goto oom;
    return 0;
oom:
    dataset_free(ds);
    return spiral_error("out of memory creating a %s dataset", family);
}

/* Grows the per-token arrays to hold `needed` tokens. */
static int grow_tokens(Dataset *ds, size_t needed) {
    if (needed <= ds->capacity_tokens) return 0;
    size_t capacity = ds->capacity_tokens ? ds->capacity_tokens : 4096;
    while (capacity < needed) capacity *= 2;
    uint16_t *tokens = realloc(ds->tokens, capacity * sizeof *tokens);
    if (!tokens) return -1;
    ds->tokens = tokens;
    for (int l = 0; l < ds->n_labels; l++) {
        int32_t *values = realloc(ds->labels[l].values, capacity * sizeof *values);
        if (!values) return -1;
        ds->labels[l].values = values;
    }
    if (ds->true_nll) {
        double *nll = realloc(ds->true_nll, capacity * sizeof *nll);
        if (!nll) return -1;
        ds->true_nll = nll;
    }
    ds->capacity_tokens = capacity;
    return 0;
}

/* Grows the per-document arrays to hold `needed` documents. */
static int grow_docs(Dataset *ds, size_t needed) {
    if (needed <= ds->capacity_docs) return 0;
    size_t capacity = ds->capacity_docs ? ds->capacity_docs : 256;
    while (capacity < needed) capacity *= 2;
    size_t *starts = realloc(ds->doc_start, (capacity + 1) * sizeof *starts);
    if (!starts) return -1;
    ds->doc_start = starts;
    uint8_t *splits = realloc(ds->doc_split, capacity * sizeof *splits);
    if (!splits) return -1;
    ds->doc_split = splits;
    ds->capacity_docs = capacity;
    return 0;
}

int dataset_append(Dataset *ds, const uint16_t *tokens, size_t n, const int32_t *labels,
                   const double *true_nll, int split) {
    if (split < 0 || split >= SPLIT_COUNT) return spiral_error("dataset: invalid split %d", split);
    if (grow_tokens(ds, ds->n_tokens + n) || grow_docs(ds, ds->n_docs + 1))
        return spiral_error("out of memory: dataset of %zu tokens", ds->n_tokens + n);
    size_t at = ds->n_tokens;
    memcpy(ds->tokens + at, tokens, n * sizeof *tokens);
    for (int l = 0; l < ds->n_labels; l++)
        for (size_t i = 0; i < n; i++)
            ds->labels[l].values[at + i] = labels ? labels[(size_t)l * n + i] : -1;
    if (ds->true_nll)
        for (size_t i = 0; i < n; i++) ds->true_nll[at + i] = true_nll ? true_nll[i] : NAN;
    ds->doc_split[ds->n_docs] = (uint8_t)split;
    ds->n_docs++;
    ds->n_tokens += n;
    ds->doc_start[ds->n_docs] = ds->n_tokens;
    return 0;
}

void dataset_free(Dataset *ds) {
    free(ds->params_json);
    free(ds->tokens);
    free(ds->doc_start);
    free(ds->doc_split);
    if (ds->labels)
        for (int l = 0; l < ds->n_labels; l++) free(ds->labels[l].values);
    free(ds->labels);
    free(ds->true_nll);
    memset(ds, 0, sizeof *ds);
}

int dataset_find_label(const Dataset *ds, const char *name) {
    for (int l = 0; l < ds->n_labels; l++)
        if (strcmp(ds->labels[l].name, name) == 0) return l;
    return -1;
}

size_t dataset_split_tokens(const Dataset *ds, int split) {
    size_t total = 0;
    for (size_t d = 0; d < ds->n_docs; d++)
        if (ds->doc_split[d] == split) total += ds->doc_start[d + 1] - ds->doc_start[d];
    return total;
}

double dataset_true_nll_mean(const Dataset *ds, int split, size_t *count) {
    double sum = 0;
    size_t n = 0;
    if (ds->true_nll)
        for (size_t d = 0; d < ds->n_docs; d++) {
            if (ds->doc_split[d] != split) continue;
            for (size_t i = ds->doc_start[d]; i < ds->doc_start[d + 1]; i++)
                if (!isnan(ds->true_nll[i])) {
                    sum += ds->true_nll[i];
                    n++;
                }
        }
    if (count) *count = n;
    return n ? sum / n : NAN;
}

int dataset_validate(const Dataset *ds) {
    if (ds->vocab_size < 1 || ds->vocab_size > 65536)
        return spiral_error("dataset %s: vocab_size %d outside 1..65536", ds->family,
                            ds->vocab_size);
    if (ds->doc_start[0] != 0 || ds->doc_start[ds->n_docs] != ds->n_tokens)
        return spiral_error("dataset %s: document offsets do not cover the tokens", ds->family);
    for (size_t d = 0; d < ds->n_docs; d++) {
        if (ds->doc_start[d + 1] < ds->doc_start[d])
            return spiral_error("dataset %s: document %zu has negative length", ds->family, d);
        if (ds->doc_split[d] >= SPLIT_COUNT)
            return spiral_error("dataset %s: document %zu has split %d", ds->family, d,
                                ds->doc_split[d]);
    }
    for (size_t i = 0; i < ds->n_tokens; i++)
        if (ds->tokens[i] >= ds->vocab_size)
            return spiral_error("dataset %s: token %d at %zu >= vocab_size %d", ds->family,
                                ds->tokens[i], i, ds->vocab_size);
    for (int l = 0; l < ds->n_labels; l++) {
        const DatasetLabel *label = &ds->labels[l];
        for (size_t i = 0; i < ds->n_tokens; i++)
            if (label->values[i] < -1 || label->values[i] >= label->n_classes)
                return spiral_error("dataset %s: label %s has value %d at token %zu, expected "
                                    "-1 .. %d", ds->family, label->name, label->values[i], i,
                                    label->n_classes - 1);
    }
    return 0;
}

const char *dataset_split_name(int split) {
    static const char *names[SPLIT_COUNT] = {"train", "val", "test", "test_ood"};
    return split >= 0 && split < SPLIT_COUNT ? names[split] : "unknown";
}

int dataset_split_stream(SplitStream *s, const Dataset *ds, int split, size_t window_len,
                         const char *dataset_name) {
    memset(s, 0, sizeof *s);
    size_t n = dataset_split_tokens(ds, split);
    if (n < window_len)
        return spiral_error("dataset %s: the %s split has %zu tokens; a window of %zu tokens "
                            "needs more", dataset_name, dataset_split_name(split), n, window_len);
    s->tokens = malloc(n * sizeof *s->tokens);
    s->global = malloc(n * sizeof *s->global);
    s->starts = malloc((ds->n_docs + 1) * sizeof *s->starts);
    if (!s->tokens || !s->global || !s->starts) {
        split_stream_free(s);
        return spiral_error("out of memory building the %s stream of %s",
                            dataset_split_name(split), dataset_name);
    }
    for (size_t d = 0; d < ds->n_docs; d++) {
        if (ds->doc_split[d] != split) continue;
        if (s->n + window_len <= n) s->starts[s->n_starts++] = s->n;
        for (size_t i = ds->doc_start[d]; i < ds->doc_start[d + 1]; i++) {
            s->global[s->n] = i;
            s->tokens[s->n++] = ds->tokens[i];
        }
    }
    return 0;
}

void split_stream_free(SplitStream *s) {
    free(s->tokens);
    free(s->global);
    free(s->starts);
    memset(s, 0, sizeof *s);
}
