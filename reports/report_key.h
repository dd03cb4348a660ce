/*
 * report_key.h: the box that opens a report: the study's key results in
 * one place, each figure read from the store (never typed in):
 *   - each run's validation loss beside the entropy floor and the bigram
 *     and trigram baselines over exactly the targets that loss covers (its
 *     validation windows, data/eval_targets.h; n-grams fitted on the train
 *     split, add-k 0.01, as `spiral data floor --run` shows);
 *   - the groups of seeds at equal training FLOPs (analysis/compare.h:
 *     each run read at the end of its own schedule, groups whose FLOPs
 *     agree within 5% form a set), one table per set: mean loss with its t
 *     interval, lowest first, and whether the best group's interval
 *     separates from the next one;
 *   - where each label is encoded, per run and site (the probe summaries);
 *   - the attention direction: the selected heads' mean attention distance
 *     at the first and last loop step with their intervals, called
 *     global-to-local when it falls, local-to-global when it rises, and "no
 *     clear change" when the intervals overlap.
 * What the store lacks is said in its place ("no probes yet: spiral probe").
 */
#ifndef SPIRAL_REPORT_KEY_H
#define SPIRAL_REPORT_KEY_H

#include "compare.h"
#include "report_data.h"
#include "report_doc.h"
#include "store.h"

/* The attention direction of one run: the selected heads' mean distance
 * (tokens) at its first and last loop step, with intervals. */
typedef struct {
    int known;                     /* 0: no attention analysis */
    int first_step, last_step;
    double first, first_lo, first_hi, last, last_lo, last_hi;
} KeyAttention;

/* What the box shows beyond ReportData (which holds each run's floor and
 * baselines) and the comparison. */
typedef struct {
    int n_runs;
    KeyAttention *attention;       /* (n_runs) parallel to ReportData.runs */
} KeyResults;

/* Reads the attention direction of data's runs. Returns 0 or -1 (a store
 * error). */
int key_results_load(KeyResults *key, Store *store, const ReportData *data);
void key_results_free(KeyResults *key);

/* The training FLOPs of the comparison's equal-FLOPs set `set`: the mean
 * of its groups' reading points. */
double report_key_set_flops(const Comparison *c, int set);

/* "falls: global to local", "rises: local to global" or "no clear
 * change" for a run's attention (NULL when unknown). */
const char *key_attention_direction(const KeyAttention *a);

/* Where label `label` (index into data->labels) is encoded in run `run`,
 * per site, as text into out (size bytes): "token: h(2), h(3); coda:
 * nowhere", or "not tested" without a probe summary. The one place that
 * reads the probe summaries' verdicts. */
void key_encoded_text(char *out, size_t size, const ReportData *data, int run, int label);

/* The box itself (comparison NULL: not comparable, compare_error says why). */
void report_section_key(Doc *doc, const ReportData *data, const Comparison *comparison,
                        const char *compare_error, const KeyResults *key);

#endif
