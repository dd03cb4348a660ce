/*
 * probe_labels.c: a probe run's labels over the recorded windows (see
 * probe_labels.h and, for the label forms, probe_run.h).
 */
#include "probe_labels.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "probe_stats.h"

typedef enum { LABEL_DATASET, LABEL_LAG, LABEL_NEXT, LABEL_SLOT } LabelKind;

/* Parses a generic label name: 1 with *kind and *k set, 0 if name is not
 * generic (no "gen." prefix), -1 with an error if it is malformed or its
 * argument is out of range for windows of L tokens. */
static int parse_generic(const char *name, int L, LabelKind *kind, int *k) {
    static const struct { const char *prefix; LabelKind kind; int min; } forms[3] = {
        {"gen.lag", LABEL_LAG, 0}, {"gen.next", LABEL_NEXT, 1}, {"gen.slot", LABEL_SLOT, 2}};
    if (strncmp(name, "gen.", 4) != 0) return 0;
    for (int f = 0; f < 3; f++) {
        size_t n = strlen(forms[f].prefix);
        if (strncmp(name, forms[f].prefix, n) != 0) continue;
        const char *digits = name + n;
        char *end;
        long v = strtol(digits, &end, 10);
        int max = forms[f].kind == LABEL_SLOT ? L : L - 1;
        if (end == digits || *end != '\0' || digits[0] == '-' || digits[0] == '+' || v < forms[f].min ||
            v > max)
            return spiral_error("label '%s': expected %s<K> with K in %d..%d (windows of %d tokens)",
                                name, forms[f].prefix, forms[f].min, max, L);
        *kind = forms[f].kind;
        *k = (int)v;
        return 1;
    }
    return 0;
}

/* "a, b, c" of the dataset's labels and the generic forms, for errors. */
static void available_labels(char *out, size_t size, const Dataset *ds, int L) {
    size_t used = 0;
    out[0] = '\0';
    for (int l = 0; l < ds->n_labels && used < size; l++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", l ? ", " : "", ds->labels[l].name);
    if (used < size)
        snprintf(out + used, size - used, "%sgeneric gen.lagK (K = 0..%d), gen.nextK (K = 1..%d), "
                 "gen.slotG (G = 2..%d)", ds->n_labels ? "; " : "", L - 1, L - 1, L);
}

/* The class of each token id (vocab): its rank among the top_n most
 * frequent tokens of tokens (n), ties to the smaller id, or top_n
 * ("other") when more distinct tokens occur. Unused ids get -1. */
static int token_classes(const int *tokens, size_t n, int vocab, int top_n, int *classes) {
    long *counts = calloc((size_t)vocab, sizeof *counts);
    int *order = malloc((size_t)vocab * sizeof *order);
    if (!counts || !order) {
        free(counts);
        free(order);
        return spiral_error("out of memory counting tokens");
    }
    for (size_t i = 0; i < n; i++) counts[tokens[i]]++;
    int distinct = 0;
    for (int t = 0; t < vocab; t++)
        if (counts[t] > 0) order[distinct++] = t;
    /* selection by count, descending, ties to the smaller id (insertion sort:
     * stable on ids already ascending) */
    for (int i = 1; i < distinct; i++) {
        int t = order[i], j = i;
        while (j > 0 && counts[order[j - 1]] < counts[t]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = t;
    }
    for (int t = 0; t < vocab; t++) classes[t] = -1;
    for (int r = 0; r < distinct; r++) classes[order[r]] = r < top_n ? r : top_n;
    free(counts);
    free(order);
    return 0;
}

/* Fills values (n_seq, L) of label `name` from the dataset labels (index
 * maps each position to its dataset token) or a generic form; token_class
 * (vocab) gives generic token labels their classes. */
static int label_values(const char *name, const Dataset *ds, const size_t *index,
                        const int *tokens, const int *token_class, int n_seq, int L, int *values) {
    LabelKind kind = LABEL_DATASET;
    int k = 0, generic = parse_generic(name, L, &kind, &k);
    int dataset_label = dataset_find_label(ds, name);
    if (dataset_label >= 0) {
        const int32_t *v = ds->labels[dataset_label].values;
        for (size_t i = 0; i < (size_t)n_seq * L; i++) values[i] = v[index[i]];
        return 0;
    }
    if (generic < 0) return -1;
    if (generic == 0) {
        char list[1500];
        available_labels(list, sizeof list, ds, L);
        return spiral_error("unknown label '%s'; available: %s", name, list);
    }
    for (int s = 0; s < n_seq; s++)
        for (int p = 0; p < L; p++) {
            int *out = values + (size_t)s * L + p;
            const int *window = tokens + (size_t)s * L;
            if (kind == LABEL_SLOT) *out = p % k;
            else if (kind == LABEL_LAG) *out = p - k >= 0 ? token_class[window[p - k]] : -1;
            else *out = p + k < L ? token_class[window[p + k]] : -1;
        }
    return 0;
}

/* Fails unless values (n) hold at least two classes >= 0. */
static int check_classes(const char *name, const int *values, size_t n, int n_seq,
                         const char *split) {
    int first = -1;
    for (size_t i = 0; i < n; i++) {
        if (values[i] < 0) continue;
        if (first < 0) first = values[i];
        else if (values[i] != first) return 0;
    }
    if (first < 0)
        return spiral_error("label '%s' is undefined (-1) at every position of the %d recorded "
                            "windows (%s split): nothing to probe", name, n_seq, split);
    return spiral_error("label '%s' has a single class (%d) on the %d recorded windows (%s "
                        "split): nothing to probe", name, first, n_seq, split);
}

void probe_labels_free(LabelData *labels, int n) {
    if (!labels) return;
    for (int l = 0; l < n; l++) {
        free(labels[l].values);
        free(labels[l].control);
        free(labels[l].permuted);
    }
    free(labels);
}

int probe_labels_build(const char *const *names, int n_labels, const RecordedWindows *w,
                       const ProbeOptions *o, LabelData **labels) {
    size_t n = (size_t)w->n_seq * w->L;
    int *token_class = malloc((size_t)w->ds->vocab_size * sizeof *token_class);
    int *seq_id = malloc(n * sizeof *seq_id);
    *labels = calloc((size_t)n_labels, sizeof **labels);
    int status = -1;
    if (!token_class || !seq_id || !*labels) {
        spiral_error("out of memory for labels");
        goto done;
    }
    if (token_classes(w->tokens, n, w->ds->vocab_size, o->top_n, token_class)) goto done;
    for (size_t i = 0; i < n; i++) seq_id[i] = (int)(i / (size_t)w->L);
    for (int l = 0; l < n_labels; l++) {
        LabelData *lab = &(*labels)[l];
        lab->name = names[l];
        if (strlen(lab->name) >= PROBE_LABEL_CAP) {
            spiral_error("label name '%s' is longer than %d characters", lab->name,
                         PROBE_LABEL_CAP - 1);
            goto done;
        }
        for (int k = 0; k < l; k++)
            if (!strcmp(names[k], lab->name)) {
                spiral_error("label '%s' is requested twice", lab->name);
                goto done;
            }
        lab->values = malloc(n * sizeof *lab->values);
        if (!lab->values) {
            spiral_error("out of memory for label %s", lab->name);
            goto done;
        }
        if (label_values(lab->name, w->ds, w->index, w->tokens, token_class, w->n_seq,
                         w->L, lab->values) ||
            check_classes(lab->name, lab->values, n, w->n_seq, w->split))
            goto done;
        if (o->controls & PROBE_CONTROL_TASK) {
            lab->control = malloc(n * sizeof *lab->control);
            if (!lab->control) {
                spiral_error("out of memory for the control task of label %s", lab->name);
                goto done;
            }
            if (probe_control_labels(w->tokens, lab->values, (int)n, o->seed + 2, lab->control)) {
                spiral_error_prefix("label %s", lab->name);
                goto done;
            }
        }
        if (o->controls & PROBE_CONTROL_PERMUTED) {
            lab->permuted = malloc(n * sizeof *lab->permuted);
            if (!lab->permuted) {
                spiral_error("out of memory for the permuted labels of label %s", lab->name);
                goto done;
            }
            if (probe_permute_sequence_labels(seq_id, lab->values, (int)n, o->seed + 3,
                                              lab->permuted, NULL)) {
                spiral_error_prefix("label %s", lab->name);
                goto done;
            }
        }
    }
    status = 0;
done:
    free(token_class);
    free(seq_id);
    return status;
}
