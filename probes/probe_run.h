/*
 * probe_run.h: `spiral probe`: linear probes on every recorded state of a
 * run, with five controls, written to the store (tables probe_results and
 * probe_summaries; data/store.c holds the schema).
 *
 * For a recording (run, dataset, split) and each requested label, one probe
 * is fitted per recorded (site, iteration, scale): every token iteration
 * h(t), every latent z / z~ at its chunk size, the coda. A probe is the
 * multinomial logistic regression of logreg.h (L2 on standardized features,
 * L-BFGS to ||grad||_inf <= tol, default 1e-4, at most 2000 iterations per
 * L2 strength) that reads the representation of a row and predicts the
 * label of that row. Why 1e-4 and not logreg's 1e-6: recorded states are
 * strongly correlated features, and at the weak end of the L2 grid many
 * fits need thousands of iterations for 1e-6. Measured on a 60-window Dyck
 * recording (d = 32, 4 labels, 180 fits): tol 1e-6 converged 139 of 180
 * fits within the iteration cap in 6.6 s, 1e-4 all 180 in 3.0 s, and no
 * accuracy (probe or control) moved by more than 0.016, well inside the
 * bootstrap intervals (about 0.1 wide there).
 *
 * Rows and labels. A token row at position p takes the label of the token
 * at p. A latent row (chunk j of an iteration with chunk size g and offset
 * w) takes the label of the chunk's LAST member token, position
 * min((j + 1) g - w - 1, L - 1): the latent has seen its members and nothing
 * after them, so that is the latest token whose label it could causally
 * know. Rows whose label is undefined (-1) are dropped.
 *
 * Labels are the dataset's (by name) or generic, computed from the tokens of
 * the recorded windows for any corpus:
 *   gen.lagK   the token at position p - K (K = 0..L-1; gen.lag0 is the
 *              token itself), -1 before the window starts
 *   gen.nextK  the token at position p + K (K = 1..L-1), -1 after the
 *              window ends
 *   gen.slotG  p mod G (G = 2..L), the slot of p in chunks of G tokens
 *              aligned with the window start
 * Token labels have classes: the top_n most frequent tokens of the recorded
 * windows (ties: the smaller token id) and, when more tokens occur, one
 * class "other" for the rest.
 *
 * Splits are by sequence, never by token: the recorded sequences are
 * shuffled with the seed (GSL mt19937) and the first floor(0.6 n) train the
 * probe, the next floor(0.2 n) choose its L2 strength, the rest (>= 20%)
 * test it. At least 5 sequences are needed. When the training rows of a
 * probe exceed max_train, max_train of them are drawn without replacement
 * (seeded, gsl_ran_choose, order kept); validation and test rows are all
 * used. Classes are renumbered 0..K-1 over the values the probe's rows hold.
 * The L2 strength is chosen on validation accuracy from {1e-1, 1e-2, 1e-3,
 * 1e-4}, fitted strongest first, each warm-started from the last (ties: the
 * stronger one), and while the weakest fitted is strictly the best, on down
 * by factors of 10 to 1e-8 (PROBE_L2_FLOOR): on a recording with 20,000
 * training rows every probe preferred a penalty weaker than 1e-4, and
 * weak penalties need more L-BFGS iterations, hence the cap of 2000. `iterations` is the L-BFGS iterations of the chosen fit
 * (from its warm start). The gradient norm stored is recomputed at the
 * solution with logreg_objective on the training rows, so `converged` is a
 * verified statement about the optimum, not the fitter's own flag. When
 * the training rows hold a single class the probe is the constant
 * predictor of that class (the likelihood has no finite optimum): l2 is
 * NULL, iterations 0.
 *
 * Reported per probe: test accuracy with a 95% percentile bootstrap
 * interval over whole test sequences (1000 resamples), macro-F1, the
 * majority baseline (most frequent training class on the test rows), the
 * numbers of train/validation/test rows, l2, iterations, gradient norm,
 * wall seconds, and test_counts: (sequence, correct, rows) per test
 * sequence, so that two probes on the same rows compare pairwise.
 *
 * Controls, each stored as a row of its own with the same label, site,
 * iteration and scale and control = ...:
 *   control_task  (a) Hewitt & Liang 2019: the label replaced by a random
 *                 function of the token type (the token at the row's
 *                 position, a latent's last member), drawn from the
 *                 label's distribution (probe_control_labels); the same
 *                 recorded features. selectivity = accuracy - this.
 *   random_model  (b) the same probe on the states of a model of the run's
 *                 config with seeded random initial weights
 *                 (model_init_weights), run on the same windows; the
 *                 states are mapped to sites exactly as `spiral record`
 *                 maps them.
 *   position      (c) features = one-hot of the row's index in its window
 *                 (its position; one column per distinct position, pooled
 *                 into 1024 buckets for longer windows): every function of
 *                 position alone is linear in them. It depends only on the
 *                 rows' positions, so all sites of one geometry (chunk size,
 *                 offset) get the same result: it is fitted once per label
 *                 and geometry and stored for every such site.
 *   permuted      (d) the label vectors of whole windows permuted across
 *                 windows (probe_permute_sequence_labels; all windows have
 *                 the same length), the same recorded features.
 *   lexical       (e) features = one-hot of the row's token and the k - 1
 *                 tokens before it (probe_features.h; the token types are
 *                 the windows' most frequent tokens, cut so that k x types
 *                 <= PROBE_LEXICAL_MAX_COLUMNS): what a shallow model
 *                 reading k tokens knows. k is options->lexical_window, or
 *                 by default the site's chunk size g: the g tokens a
 *                 latent summarizes, and at token and coda sites (g = 1)
 *                 the token itself, for every kind of model alike
 *                 (probe_sites_lexical). Like (c) it depends only on the
 *                 rows' positions and k, so it is fitted once per label,
 *                 geometry and k.
 * The verdict (probe_verdict.h): a label is ENCODED at a (site, iteration,
 * scale) when the probe's margins over (b) and (e), with 95% paired
 * bootstrap intervals over test sequences, both lie above 0; NOT ENCODED
 * when one does not; NOT TESTED when (b) or (e) is missing. (a), (c), (d)
 * are reported beside it: with a vocabulary of a few tokens (a) decodes at
 * ~1.0 wherever the token's identity is present, so a rule that required
 * beating it would call nothing encoded at token sites.
 *
 * Per (label, site) a summary row holds the expected iteration (Tenney et
 * al. 2019, probe_expected_layer on the probe accuracies of the site's
 * iterations in order, the first as baseline, negative gains clipped to 0
 * so the value is a gain-weighted mean of the iterations; NULL when the
 * site has one iteration, iterations that are not consecutive, or no gain)
 * and `encoded`, a JSON list [{"iteration": t, "scale": g}, ...] of the
 * probes whose verdict is ENCODED.
 *
 * Randomness (all GSL mt19937, derived from the one seed): sequence split
 * seed, training subsample seed + 1, control task seed + 2, permutation
 * seed + 3, bootstrap seed + 4, random model weights seed + 5, the
 * margins' bootstrap seed + 6. Results are
 * identical for the same seed, whatever the number of threads.
 *
 * Files: probe_sites (the recorded sites and their rows), probe_rows (a
 * row's token and label), probe_labels, probe_features (recorded, position
 * and random-model features; probe_random), probe_fit (one probe),
 * probe_schedule (what to fit, on the pool), probe_summary, probe_verdict
 * (the rule), and the rows in
 * the store: data/probe_store.h.
 *
 * Parallelism: the calling thread reads the store (features of one site at
 * a time, for every sequence), then the probes of that site and feature
 * source run on spiral's thread pool (base/parallel.h: parallel_for, one
 * task per probe, each fit single threaded, OpenBLAS on one thread), and
 * the calling thread writes their rows in one transaction. Tasks never
 * touch SQLite. The pool's size is the process's ($SPIRAL_THREADS or the
 * online cores; `spiral probe --threads N` sets it with
 * parallel_set_threads).
 *
 * Resume: probes already in probe_results (same recording, label, site,
 * iteration, scale, control) are not fitted again, so an interrupted run
 * continues where it stopped; rows of a label written with another seed
 * are an error unless replace, which first deletes every row of the label
 * (all controls, selected or not, so rows of two seeds never mix).
 */
#ifndef SPIRAL_PROBE_RUN_H
#define SPIRAL_PROBE_RUN_H

#include "probe_store.h"
#include "probe_verdict.h"
#include "progress.h"

#define PROBE_DEFAULT_TOL 1e-4
#define PROBE_DEFAULT_MAX_ITER 2000

/* The controls, as bits of ProbeOptions.controls. */
enum {
    PROBE_CONTROL_TASK = 1,      /* (a) */
    PROBE_CONTROL_RANDOM = 2,    /* (b) */
    PROBE_CONTROL_POSITION = 4,  /* (c) */
    PROBE_CONTROL_PERMUTED = 8,  /* (d) */
    PROBE_CONTROL_LEXICAL = 16,  /* (e) */
    PROBE_CONTROL_ALL = 31
};
#define PROBE_N_CONTROLS 5

typedef struct {
    const char *split;       /* recording split, default "test" */
    unsigned long seed;      /* default 1 */
    int max_train;           /* training rows per probe, default 20000 */
    int top_n;               /* classes of generic token labels, default 16 (+ other) */
    int controls;            /* PROBE_CONTROL_* bits, default all */
    double tol;              /* ||grad||_inf at which a fit has converged, default PROBE_DEFAULT_TOL */
    int max_iter;            /* L-BFGS iterations per lambda, default PROBE_DEFAULT_MAX_ITER */
    int lexical_window;      /* tokens k of the lexical control; 0 (default): automatic */
    int replace;             /* refit the selected labels and controls */
    const Progress *progress;  /* "probe" progress in "probes" (done / total), reported
                                  by the calling thread after each site's batch, or NULL */
} ProbeOptions;

void probe_options_default(ProbeOptions *options);

/* The rows are data/probe_store.h's ProbeResult and ProbeSummary. */

typedef struct {
    long long recording_id;
    int n_sequences, seq_len;
    int n_results;
    ProbeResult *results;       /* every row of the requested labels, sorted by label
                                   (in request order), site, iteration, scale, control */
    int n_summaries;
    ProbeSummary *summaries;    /* (label, site) in the same order */
    int n_verdicts;
    ProbeVerdict *verdicts;     /* one per control 'none' row, in the rows' order */
    int fitted_now;             /* probes fitted by this call */
    int skipped;                /* probes already in the store */
    long long evaluations;      /* objective evaluations of the fits done now */
    double seconds;             /* wall time of the call */
} ProbeReport;

/* Fits the probes of labels (n_labels names) on the recording of run on
 * dataset (options->split) and writes them to the store; *report gets every
 * row of those labels afterwards (free with probe_report_free). Errors name
 * the problem: an unknown run or dataset, no recording (how to make one), an
 * unknown label (listing the available ones), a label with one class on the
 * recorded windows, fewer than 5 sequences. */
int probe_run(Store *store, const char *run, const char *dataset, const char *const *labels,
              int n_labels, const ProbeOptions *options, ProbeReport *report);

void probe_report_free(ProbeReport *report);

/* The row of (label, site, iteration, scale, control) in the report, or
 * NULL. For control 'position', iteration and scale are those of the site. */
const ProbeResult *probe_report_find(const ProbeReport *report, const char *label,
                                     const char *site, int iteration, int scale,
                                     const char *control);

/* The verdict of probe (a control = 'none' row of report), or NULL. */
const ProbeVerdict *probe_report_verdict(const ProbeReport *report, const ProbeResult *probe);

/* PROBE_ENCODED (1), PROBE_NOT_ENCODED (0) or PROBE_NOT_TESTED (-1) for
 * probe (a control = 'none' row of report), by probe_verdict.h's rule. */
int probe_report_encoded(const ProbeReport *report, const ProbeResult *probe);

/* The name of each control bit ("control_task", ...), and the bit of a name
 * (also "a".."e"), or 0 if unknown. */
const char *probe_control_name(int bit);
int probe_control_bit(const char *name);

#endif
