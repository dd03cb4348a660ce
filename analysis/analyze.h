/*
 * analyze.h: the analyses of one recording that test the paper's claims
 * beyond linear probes (DESIGN.md section 4; paper.md, "Probing in the
 * paper"), written to the store's analysis_results table (schema v3).
 *
 * Input: a finished recording (core/record.h) of a run on a dataset split:
 * the attention statistics of every layer application and the token-level
 * states h(t), t = 0..T. Everything below is computed over the first N
 * recorded sequences, N = min(recorded, max_sequences) (all of them by
 * default: 500 in a default recording, as the paper).
 *
 * Iterations. A loop "step" t is one application of the core, mapping h(t)
 * to h(t + 1). Spiral and looped models have T steps, each running the
 * n_loop core layers (at chunk size g_t). For the dense baseline every core
 * layer is a step (record.h: its token iteration l + 1 is layer l's output),
 * so step t is core layer t and has one layer; attention_stats records that
 * layer as iteration t + 1, and analysis_results calls it iteration t, so
 * that iteration t always means "the attention that produces h(t + 1)".
 *
 * (1) Attention: global-to-local specialization.
 *   Per sequence s, layer application u (block, step, layer) and head h, the
 *   recorded per-query statistics (record.h: mean attention distance in
 *   token units, entropy in nats, mass beyond each distance D) are averaged
 *   over the query rows of the application (J_t latents at chunk size g_t,
 *   L tokens otherwise):  x_s(u, h, k) = (1/rows) sum_i stats[h, i, k].
 *   Reported: the mean over sequences with a bootstrap percentile CI over
 *   sequences (stats_mean_ci_bootstrap; every statistic uses the same seed,
 *   so the resampled sequences are the same for all of them).
 *   Units: a distance is in tokens (a latent stands at its last member's
 *   position); divided by the step's chunk size g it is in chunks of g
 *   tokens. Beside both stands the uniform-attention reference U_t
 *   (attention_stats.h: the mean distance if every query spread its
 *   attention evenly over its causal prefix, from the step's row positions
 *   over L tokens), and the relative distance = distance / U_t, which is
 *   the same in either unit: 1 is uniform, below 1 more local, above 1
 *   more distant than uniform.
 *   Head selection (headsel.h, the paper's 40% rule): for a looped or spiral
 *   model the candidates are the core's heads, row l * H + h for head h of
 *   core layer l, with one value per step t: the mean over sequences of the
 *   chosen statistic (select_by: by default the relative distance, so that
 *   the change of units between iterations of different g alone moves no
 *   head in or out; the raw distance in tokens or the entropy on request). For the dense
 *   baseline a core layer is a step with its own heads, so the candidates
 *   are the H head slots, head h having value x(layer t, h) at step t: the
 *   same ranking applied to layer-as-iteration. Heads are ranked by
 *   headsel_change (range across steps by default) and the top fraction is
 *   kept. Per step t and statistic k, the selected heads' mean
 *     y_s(t, k) = mean over selected rows r of x_s(step t, r, k)
 *   is reported with its bootstrap CI over sequences: coarse iterations
 *   attending globally and fine ones locally is then a table of numbers.
 *
 * (2) Loop diagnostics on the token states h(t), t = 0..T (dense: 0..n_loop).
 *   update size  r_s(t) = ||h_s(t+1) - h_s(t)||_F / ||h_s(t)||_F per
 *                sequence s ((L, d) matrices), mean and bootstrap CI over
 *                sequences, t = 0..T-1.
 *   CKA          linear CKA (loopdiag.h) between h(t) and h(u) for every
 *                pair, on the stacked (rows, d) matrix of the first
 *                n_stacked sequences (rows = n_stacked L tokens, paired by
 *                token): a (T+1, T+1) matrix.
 *   spectrum     normalized singular values of each stacked h(t)
 *                (uncentered, SPECTRUM_DEFAULT, as MeSH) and their
 *                effective rank.
 *   n_stacked = min(N, max(1, max_rows / L)): the stacked matrices are held
 *   in double precision, (T + 1) rows d doubles, so max_rows (default 16384)
 *   bounds the memory.
 *
 * (3) Cross-run CKA (analyze_cross): linear CKA between run A's h(t) and
 *   run B's h(u) for every (t, u), when both recordings are on the same
 *   dataset and split with the same windows (compared token by token
 *   through record_sequences) over the first n_stacked sequences of both.
 *
 * Rows written to analysis_results (value = mean, ci_lo/ci_hi = its CI,
 * data = float64 little-endian array, NULL where not listed):
 *   kind                    iteration  iteration2 block layer head  value / data
 *   attn_distance           t or NULL  -          pre/loop/post l  h  mean distance; data = per-sequence values (N)
 *   attn_entropy            (same keys)                                mean entropy (nats); data as above
 *   attn_beyond_D<D>        (same keys)                                mass beyond D tokens; data as above
 *     (iteration is NULL for prelude and coda layers, which are in no step)
 *   head_change             NULL       -          loop  l|NULL h       change of the head across steps
 *   head_selected           NULL       -          loop  l|NULL h       rank (1 = largest change), selected heads only
 *     (layer is NULL for the dense baseline, whose candidates are head slots)
 *   selected_attn_distance  t          -          loop  -     -        mean over selected heads, CI; data per sequence
 *   selected_attn_entropy, selected_attn_beyond_D<D>   (same keys)
 *   selected_attn_distance_g           (same keys)     the distance in chunks of the step's g tokens
 *   selected_attn_relative_distance    (same keys)     the distance / the step's uniform reference
 *   attn_uniform_distance   t          -          loop  -     -        U_t, the uniform-attention distance (tokens)
 *   update_size             t          -          token -     -        r(t) mean, CI; data per sequence
 *   cka                     t          u          token -     -        CKA(h(t), h(u)), every ordered pair
 *   effective_rank          t          -          token -     -        effective rank of stacked h(t)
 *   spectrum                t          -          token -     -        value = p_1; data = p (min(rows, d))
 *   cka_cross               t          u          token -     -        CKA(A's h(t), B's h(u)); recording_id = A's
 *                                                                      recording, run_id = B's run (for every
 *                                                                      other kind run_id is the recording's run)
 * Writing is one transaction per recording; it first deletes that
 * recording's rows of these kinds (for cka_cross: the rows of that pair), so
 * analyzing again replaces the previous results.
 */
#ifndef SPIRAL_ANALYZE_H
#define SPIRAL_ANALYZE_H

#include <stdio.h>

#include "config.h"
#include "progress.h"
#include "record.h"
#include "stats.h"
#include "store.h"

enum { ANALYZE_DISTANCE = 0, ANALYZE_ENTROPY = 1 }; /* statistic index k; k >= 2: beyond distances[k - 2] */
/* select_by: the mean distance divided by the step's uniform-attention
 * reference (the default: not moved by the unit of distance) */
enum { ANALYZE_RELATIVE_DISTANCE = -1 };

typedef struct {
    const char *split;         /* "test" (default) */
    int max_sequences;         /* 0 (default): every recorded sequence */
    int max_rows;              /* stacked rows for CKA and spectra, default 16384 */
    double fraction;           /* head selection, default HEADSEL_DEFAULT_FRACTION (0.4) */
    int measure;               /* HEADSEL_RANGE (default) or HEADSEL_STDDEV */
    int select_by;             /* ANALYZE_RELATIVE_DISTANCE (default), ANALYZE_DISTANCE or ANALYZE_ENTROPY */
    int n_resamples;           /* bootstrap resamples, default 1000 */
    double level;              /* confidence level, default 0.95 */
    unsigned long seed;        /* bootstrap seed, default 1 */
    const Progress *progress;  /* progress reports (NULL: none) */
} AnalyzeOptions;

void analyze_options_default(AnalyzeOptions *options);

/* One layer application of the attention analysis. */
typedef struct {
    int block;                 /* BLOCK_PRE, BLOCK_LOOP, BLOCK_POST (model.h) */
    int step;                  /* loop step t, -1 for prelude and coda */
    int layer;                 /* layer within its block (dense loop: 0) */
    int recorded_iteration;    /* attention_stats.iteration of this application */
    int g;                     /* chunk size of its rows */
} AnalyzeUnit;

/* Everything analyze_recording computed for one recording. */
typedef struct {
    char run[128];
    char kind[16];             /* spiral, looped, dense */
    char dataset[128];
    RecordingInfo info;
    SpiralConfig cfg;
    int n_sequences;           /* N, sequences analyzed */
    int select_by, measure;    /* the options used for head selection */
    double fraction, level;
    int n_distances;
    int distances[RECORD_MAX_DISTANCES];
    int n_stats;               /* K = 2 + n_distances */
    int n_heads;               /* H */
    int n_steps;               /* T (dense: n_loop) */
    int layers_per_step;       /* n_loop (dense: 1) */
    int *step_g;               /* (n_steps) chunk size of each step */
    double *step_uniform;      /* (n_steps) uniform-attention distance of each step's rows, tokens */
    int n_units;
    AnalyzeUnit *units;        /* (n_units) prelude, loop steps x layers, coda */
    MeanInterval *head_stats;  /* (n_units, H, K) per-head statistics */
    /* head selection */
    int n_candidates;          /* n_loop H (dense: H) */
    double *candidate_stat;    /* (n_candidates, n_steps) ranked statistic */
    double *change;            /* (n_candidates) */
    int *order;                /* (n_candidates) rank order, largest change first */
    int n_selected;            /* the first n_selected of order */
    MeanInterval *selected;    /* (n_steps, K) selected heads, per step */
    /* loop diagnostics */
    int n_states;              /* T + 1 */
    MeanInterval *update;      /* (n_states - 1) */
    int n_stacked;             /* sequences stacked for CKA and spectra */
    double *cka;               /* (n_states, n_states) */
    int spectrum_k;            /* min(n_stacked L, d) */
    double *spectrum;          /* (n_states, spectrum_k) */
    double *effective_rank;    /* (n_states) */
    long long rows_written;    /* analysis_results rows */
} AnalyzeRun;

/* Analyzes the recording of run `run_name` on `dataset_name` (split of
 * options) and replaces its rows in analysis_results. The recording must
 * be complete (status 'done'). *out is filled (analyze_run_free) on
 * success and left empty on failure. Returns 0 or -1. */
int analyze_recording(Store *store, const char *run_name, const char *dataset_name,
                      const AnalyzeOptions *options, AnalyzeRun *out);
void analyze_run_free(AnalyzeRun *run);

/* Cross-run CKA between two analyzed recordings. */
typedef struct {
    char run_a[128], run_b[128];
    int n_a, n_b;              /* states of each: T_A + 1, T_B + 1 */
    int n_stacked;             /* sequences used */
    int skipped;               /* 1 if the recordings are not comparable */
    char reason[256];          /* why it was skipped */
    double *cka;               /* (n_a, n_b), NULL if skipped */
    long long rows_written;
} AnalyzeCross;

/* Computes and stores cka_cross between a's and b's token states (both from
 * analyze_recording, in this store). Recordings that hold different windows
 * or lengths are not an error: out->skipped is set with the reason. */
int analyze_cross(Store *store, const AnalyzeRun *a, const AnalyzeRun *b,
                  const AnalyzeOptions *options, AnalyzeCross *out);
void analyze_cross_free(AnalyzeCross *cross);

/* What analyze_runs wrote. */
typedef struct {
    int n_runs;                /* runs analyzed: all of them, or those before a failure */
    long long *rows_written;   /* (runs requested) analysis_results rows of each run's recording */
    int n_pairs;               /* pairs of runs given to analyze_cross */
    long long cross_rows;      /* cka_cross rows written */
} AnalyzeSummary;

/* `spiral analyze`: analyze_recording of each run on dataset, each run's
 * report printed to out as soon as it is done (analyze_print_run); with
 * several runs then the side-by-side table and analyze_cross of every pair
 * (printed with analyze_print_cross). *summary (analyze_summary_free) says
 * what was written, on failure too. Returns 0 or -1. */
int analyze_runs(Store *store, const char *const *run_names, int n_runs, const char *dataset,
                 const AnalyzeOptions *options, FILE *out, AnalyzeSummary *summary);
void analyze_summary_free(AnalyzeSummary *summary);

/* The readable report of one run: selected heads, per-iteration attention
 * statistics with CIs, update sizes, effective ranks, the CKA matrix. */
void analyze_print_run(FILE *out, const AnalyzeRun *run);
/* Side by side: the selected heads' mean distance and entropy per step of
 * several runs (the paper's global-to-local claim across model kinds). */
void analyze_print_side_by_side(FILE *out, const AnalyzeRun *runs, int n_runs);
/* The cross-run CKA matrix (or why it was skipped). */
void analyze_print_cross(FILE *out, const AnalyzeCross *cross);

/* Mean over the query rows of per-query statistics:
 * out (H, K) from stats (H, rows, K), float32 as recorded. */
void analyze_mean_over_rows(double *out, const float *stats, int H, int rows, int K);

#endif
