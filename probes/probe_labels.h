/*
 * probe_labels.h: the labels of a probe run, one value per position of
 * every recorded window, with their control-task and permuted versions.
 *
 * A label is the dataset's (by name) or generic (probe_run.h: gen.lagK,
 * gen.nextK, gen.slotG; token labels keep the top_n most frequent tokens of
 * the windows plus "other"). A site maps its rows to positions
 * (probe_rows.h), so one per-position array serves every site.
 */
#ifndef SPIRAL_PROBE_LABELS_H
#define SPIRAL_PROBE_LABELS_H

#include <stddef.h>

#include "dataset.h"
#include "probe_run.h"

/* The recorded windows of a run: n_seq windows of L tokens. */
typedef struct {
    const Dataset *ds;
    const size_t *index;   /* (n_seq, L) dataset token index of each position */
    const int *tokens;     /* (n_seq, L) the tokens */
    int n_seq, L;
    const char *split;     /* the recording's split, for errors */
} RecordedWindows;

/* A requested label over the recorded windows, one value per position. */
typedef struct {
    const char *name;
    int *values;     /* (n_seq, L) the label, -1 where undefined */
    int *control;    /* (n_seq, L) the control task's labels, or NULL */
    int *permuted;   /* (n_seq, L) labels of another window, or NULL */
} LabelData;

/* Resolves names (n_labels) into *labels (free with probe_labels_free):
 * values, and the control task (seed + 2) and permuted (seed + 3) versions
 * when options->controls asks for them. Errors: a name too long or given
 * twice, an unknown label (listing the available ones), a malformed
 * generic label, a label with fewer than two classes on the windows. */
int probe_labels_build(const char *const *names, int n_labels, const RecordedWindows *windows,
                       const ProbeOptions *options, LabelData **labels);

void probe_labels_free(LabelData *labels, int n_labels);

#endif
