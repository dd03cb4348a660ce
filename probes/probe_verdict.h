/*
 * probe_verdict.h: whether a label is encoded at a (site, iteration), by a
 * rule that stays sound for small vocabularies.
 *
 * A probe (control 'none') is judged by its MARGIN over two controls fitted
 * on the same rows, labels and splits:
 *   random_model  the same probe on a randomly initialized model of the
 *                 run's config: what the architecture gives without
 *                 training;
 *   lexical       a probe on the one-hot of the row's token and the k - 1
 *                 tokens before it (probe_features.h): what a shallow model
 *                 reading a window of k tokens could know.
 * margin_c = accuracy(probe) - accuracy(control c) on the same test rows,
 * with a 95% paired bootstrap interval over test sequences
 * (probe_paired_margin_ci, seed = the probe's seed + 6). Rows written
 * before the store kept test outcomes (test_counts NULL) cannot be paired; their
 * interval is the conservative unpaired one,
 *   [m - sqrt((acc_p - lo_p)^2 + (hi_c - acc_c)^2),
 *    m + sqrt((hi_p - acc_p)^2 + (acc_c - lo_c)^2)],
 * which treats the two accuracies as independent (it is wider than the
 * paired one when the two probes err on the same rows).
 *
 * Verdict per (label, site, iteration, scale):
 *   encoded      both controls are present and both margins' intervals lie
 *                entirely above 0;
 *   not encoded  both are present and at least one interval reaches 0;
 *   not tested   a control is missing (not requested, or not fitted yet).
 * The control task, the position and the permuted controls are still
 * fitted and reported (selectivity, position-only and chance levels), but
 * do not enter the verdict: with a vocabulary of a few tokens the control
 * task decodes at ~1.0 wherever the token's identity is present, so a rule
 * that requires beating it calls nothing encoded at token sites.
 */
#ifndef SPIRAL_PROBE_VERDICT_H
#define SPIRAL_PROBE_VERDICT_H

#include "probe_store.h"

enum { PROBE_NOT_TESTED = -1, PROBE_NOT_ENCODED = 0, PROBE_ENCODED = 1 };

/* A probe's margin over one control. */
typedef struct {
    int present;            /* the control's row exists */
    int paired;             /* the interval is the paired bootstrap (else unpaired) */
    double margin, lo, hi;  /* NAN when absent */
} ProbeMargin;

/* The verdict of one probe. */
typedef struct {
    char label[PROBE_LABEL_CAP];
    char site[16];
    int iteration, scale;
    double accuracy, ci_lo, ci_hi;  /* the probe's */
    int verdict;                    /* PROBE_ENCODED, PROBE_NOT_ENCODED, PROBE_NOT_TESTED */
    ProbeMargin random, lexical;
} ProbeVerdict;

/* "encoded", "not encoded" or "not tested". */
const char *probe_verdict_name(int verdict);

/* Judges probe (a control 'none' row of the recording) against its
 * random_model and lexical rows (NULL: missing), reading the rows' test
 * counts from the store. Returns 0 or -1 (a store error). */
int probe_verdict_judge(Store *store, long long recording_id, const ProbeResult *probe,
                        const ProbeResult *random, const ProbeResult *lexical,
                        ProbeVerdict *verdict);

/* The verdict of every probe of the recording, *verdicts (malloc'd, *n),
 * ordered by label (first probed first), site, iteration and scale: where
 * each label is encoded, for reports. Returns 0 or -1. */
int probe_verdicts_read(Store *store, long long recording_id, ProbeVerdict **verdicts, int *n);

#endif
