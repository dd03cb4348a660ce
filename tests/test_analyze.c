/*
 * test_analyze.c: analyses of recordings (analysis/analyze.h) and
 * comparisons of runs (analysis/compare.h) on a store built like
 * test_record.c's: tiny spiral, looped and dense runs trained and recorded.
 *
 *  - exact attention distance: a run whose wq = wk = 0 attends uniformly
 *    (every score 0), so for query i over keys j <= i at token positions p
 *      distance_i = (1/(i+1)) sum_{j<=i} (p_i - p_j),  entropy_i = log(i+1),
 *      beyond_i(D) = #{j <= i : p_i - p_j > D} / (i+1);
 *    core/record.c's statistics are checked against these at token level
 *    and at chunk sizes 4 (offset 1) and 2, where a latent stands at its
 *    last member's position (written out by hand below), and analyze's
 *    per-head rows and selected-head rows equal their mean over queries;
 *    each iteration's uniform reference equals the hand-computed mean
 *    uniform distance, and uniform attention has distance / uniform = 1 at
 *    every g (stored, and as the default selection statistic);
 *  - selection by distance relative to the uniform reference is the same
 *    whether distances are in tokens or in chunks of g (the raw distance's
 *    is not, on the same example);
 *  - every result kind has rows; the CKA diagonal is 1 and the matrix
 *    symmetric; update sizes positive and finite; spectra sum to 1;
 *    effective ranks in [1, k]; head selection keeps ceil(0.4 n) heads;
 *    analyzing again replaces the rows; cross-run CKA is stored per pair;
 *    progress goes to the caller's Progress, the last report finished;
 *  - the dense baseline: its core layer t (recorded as iteration t + 1) is
 *    analysis iteration t, candidates are head slots;
 *  - compare: two seeds of one config form a group whose t interval is the
 *    hand-computed one; equal-FLOPs losses are the linear interpolation of
 *    the metrics; matched baselines written as run files load back with
 *    the derived n_loop;
 *  - errors: no recording, an unfinished recording, a bad fraction.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_cdf.h>

#include "analyze.h"
#include "checkpoint.h"
#include "compare.h"
#include "cost.h"
#include "dataset.h"
#include "error.h"
#include "filehash.h"
#include "data_fixtures.h"
#include "harness.h"
#include "headsel.h"
#include "matched_runs.h"
#include "matching.h"
#include "model.h"
#include "attention_stats.h"
#include "record.h"
#include "store.h"
#include "train.h"

static char dir[256];

static double query_double(Store *store, const char *sql) {
    sqlite3_stmt *stmt;
    double v = NAN;
    if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW &&
        sqlite3_column_type(stmt, 0) != SQLITE_NULL)
        v = sqlite3_column_double(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* Trains run `name` on "lang": seq_len 24, evaluation every 5 steps. */
static void train_run(Store *store, const char *name, const char *model, int seed, int steps) {
    char path[512], text[1024];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    snprintf(text, sizeof text, "{\"model\": %s, \"train\": {\"dataset\": \"lang\", \"seq_len\": 24,"
             " \"batch_size\": 4, \"steps\": %d, \"eval_every\": 5, \"eval_batches\": 2,"
             " \"checkpoint_every\": %d, \"seed\": %d}}", model, steps, steps, seed);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    TrainOptions quiet = {0};
    TrainResult result;
    CHECK(train_new(store, name, path, &quiet, &result) == 0, "train %s: %s", name, spiral_last_error());
}

static void record(Store *store, const char *name, const RecordOptions *o) {
    RecordResult result;
    CHECK(record_run(store, name, "lang", o, &result) == 0, "record %s: %s", name, spiral_last_error());
}

/* Replaces run `name`'s last checkpoint by one with every attention wq and
 * wk zero (uniform attention), registered at the next step. */
static void make_uniform_attention(Store *store, const char *name) {
    RunRow run;
    long long step;
    char *path = NULL, *sha = NULL;
    SpiralConfig cfg;
    ParamLayout layout;
    real *values = NULL;
    CHECK(store_run_find(store, name, &run) == 0 && store_checkpoint_last(store, run.id, &step, &path, &sha) == 0 &&
          path && weights_load(path, &cfg, &layout, &values) == 0, "load %s: %s", name, spiral_last_error());
    int zeroed = 0;
    for (int t = 0; values && t < layout.n_tensors; t++) {
        const ParamTensor *pt = &layout.tensors[t];
        if (strstr(pt->name, ".attn.wq.") || strstr(pt->name, ".attn.wk.")) {
            memset(values + pt->offset, 0, pt->numel * sizeof(real));
            zeroed++;
        }
    }
    CHECK(zeroed == 2 * (cfg.n_pre + cfg.n_loop + cfg.n_post), "zeroed %d query/key matrices", zeroed);
    char uniform_path[600], hex[65];
    snprintf(uniform_path, sizeof uniform_path, "%s/%s-uniform.safetensors", dir, name);
    CHECK(weights_save(uniform_path, &cfg, &layout, values) == 0 && file_sha256_hex(uniform_path, hex) == 0 &&
          store_checkpoint_add(store, run.id, step + 1, uniform_path, hex) == 0,
          "save uniform checkpoint: %s", spiral_last_error());
    free(values);
    free(path);
    free(sha);
    param_layout_free(&layout);
    store_run_free(&run);
}

/* Expected uniform-attention statistics of query i over positions pos:
 * out[0] distance, out[1] entropy, out[2 + k] mass beyond distances[k]. */
static void uniform_expected(double *out, const int *pos, int i, const int *distances, int n_distances) {
    out[0] = 0;
    out[1] = log(i + 1.0);
    for (int k = 0; k < n_distances; k++) out[2 + k] = 0;
    for (int j = 0; j <= i; j++) {
        out[0] += (double)(pos[i] - pos[j]) / (i + 1);
        for (int k = 0; k < n_distances; k++)
            if (pos[i] - pos[j] > distances[k]) out[2 + k] += 1.0 / (i + 1);
    }
}

/* Checks the recorded statistics of one (iteration, block, layer) of
 * sequence seq against uniform attention over positions pos (rows); returns
 * the mean over queries of each statistic in mean (K). */
static void check_uniform_row(Store *store, const char *where, const int *pos, int rows, const int *distances,
                              int n_distances, double *mean) {
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT heads, rows, stats FROM attention_stats a JOIN recordings r ON"
             " r.id = a.recording_id JOIN runs ON runs.id = r.run_id WHERE runs.name='uniform' AND seq=1 AND %s",
             where);
    sqlite3_stmt *stmt;
    sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL);
    int found = sqlite3_step(stmt) == SQLITE_ROW;
    CHECK(found && sqlite3_column_int(stmt, 1) == rows, "attention row %s: %d rows, expected %d", where,
          found ? sqlite3_column_int(stmt, 1) : -1, rows);
    if (!found || sqlite3_column_int(stmt, 1) != rows) {
        sqlite3_finalize(stmt);
        return;
    }
    int H = sqlite3_column_int(stmt, 0), K = 2 + n_distances;
    const float *stats = sqlite3_column_blob(stmt, 2);
    double worst = 0;
    for (int k = 0; k < K; k++) mean[k] = 0;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < rows; i++) {
            double expected[2 + RECORD_MAX_DISTANCES];
            uniform_expected(expected, pos, i, distances, n_distances);
            for (int k = 0; k < K; k++) {
                double got = stats[((size_t)h * rows + i) * K + k];
                worst = fmax(worst, fabs(got - expected[k]) / fmax(1.0, fabs(expected[k])));
                if (h == 0) mean[k] += expected[k] / rows;
            }
        }
    CHECK(worst < 2e-6, "%s: uniform attention statistics off by %.2e (relative)", where, worst);
    sqlite3_finalize(stmt);
}

/* The exact test: record.c's statistics and analyze's aggregation of them. */
static void test_uniform_attention(Store *store) {
    const char *spiral = "{\"vocab_size\": 8, \"d_model\": 16, \"n_heads\": 2, \"d_ff\": 24,"
                         " \"schedule\": [{\"g\": 4, \"offset\": 1}, 2, 1]}";
    train_run(store, "uniform", spiral, 5, 5);
    make_uniform_attention(store, "uniform");
    RecordOptions o;
    record_options_default(&o);
    o.attention = attention_stats_summary();
    o.n_sequences = 6;
    o.batch_size = 3;
    o.n_distances = 3;
    o.distances[0] = 0;
    o.distances[1] = 3;
    o.distances[2] = 8;
    record(store, "uniform", &o);

    /* L = 24. g = 4, offset 1: chunks {0,1,2}, {3..6}, ..., {23}; a latent
     * stands at its last member: 2, 6, 10, 14, 18, 22, 23 (the last chunk
     * is partial). g = 2, offset 0: 1, 3, ..., 23. Tokens: 0..23. */
    int pos_g4[7] = {2, 6, 10, 14, 18, 22, 23}, pos_g2[12], pos_g1[24];
    for (int j = 0; j < 12; j++) pos_g2[j] = 2 * j + 1;
    for (int i = 0; i < 24; i++) pos_g1[i] = i;
    double mean_g4[5], mean_g2[5], mean_g1[5], mean_pre[5];
    check_uniform_row(store, "iteration=0 AND block='loop' AND layer=1", pos_g4, 7, o.distances, 3, mean_g4);
    check_uniform_row(store, "iteration=1 AND block='loop' AND layer=0", pos_g2, 12, o.distances, 3, mean_g2);
    check_uniform_row(store, "iteration=2 AND block='loop' AND layer=1", pos_g1, 24, o.distances, 3, mean_g1);
    check_uniform_row(store, "block='pre'", pos_g1, 24, o.distances, 3, mean_pre);
    /* one value by hand: the g = 4 latent at 23 sees 2, 6, ..., 23:
     * gaps 21, 17, 13, 9, 5, 1, 0 -> mean 66 / 7 */
    double last[5];
    uniform_expected(last, pos_g4, 6, o.distances, 3);
    CHECK(fabs(last[0] - 66.0 / 7) < 1e-12 && fabs(last[2 + 1] - 5.0 / 7) < 1e-12,
          "hand check of the g = 4 formula: distance %g, beyond 3 %g", last[0], last[3]);

    AnalyzeOptions ao;
    analyze_options_default(&ao);
    AnalyzeRun r;
    CHECK(analyze_recording(store, "uniform", "lang", &ao, &r) == 0, "analyze uniform: %s", spiral_last_error());
    /* per-head rows: every sequence has the same statistics, so the mean
     * and both CI ends equal the mean over queries */
    struct {
        const char *where;
        const double *mean;
    } cases[4] = {{"iteration=0 AND block='loop' AND layer=1", mean_g4},
                  {"iteration=1 AND block='loop' AND layer=0", mean_g2},
                  {"iteration=2 AND block='loop' AND layer=0", mean_g1},
                  {"iteration IS NULL AND block='pre' AND layer=0", mean_pre}};
    const char *kinds[5] = {"attn_distance", "attn_entropy", "attn_beyond_D0", "attn_beyond_D3", "attn_beyond_D8"};
    double worst = 0;
    int rows_found = 0;
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < 5; k++)
            for (int h = 0; h < 2; h++) {
                char sql[512];
                snprintf(sql, sizeof sql, "SELECT value FROM analysis_results WHERE kind='%s' AND %s AND head=%d"
                         " AND recording_id=%lld", kinds[k], cases[c].where, h, r.info.id);
                double v = query_double(store, sql);
                snprintf(sql, sizeof sql, "SELECT ci_hi - ci_lo FROM analysis_results WHERE kind='%s' AND %s AND"
                         " head=%d AND recording_id=%lld", kinds[k], cases[c].where, h, r.info.id);
                double width = query_double(store, sql);
                rows_found += !isnan(v);
                worst = fmax(worst, fabs(v - cases[c].mean[k]) / fmax(1.0, fabs(cases[c].mean[k])));
                worst = fmax(worst, fabs(width));
            }
    CHECK(rows_found == 4 * 5 * 2 && worst < 2e-6, "analyze aggregation of uniform attention: %d rows, worst %.2e",
          rows_found, worst);
    /* every head changes equally: ties keep the lowest rows, 2 of 4 */
    CHECK(r.n_candidates == 4 && r.n_selected == 2 && r.order[0] == 0 && r.order[1] == 1,
          "head selection with equal changes: %d of %d, first %d, %d", r.n_selected, r.n_candidates, r.order[0],
          r.order[1]);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT max(value) - min(value) FROM analysis_results WHERE kind='head_change'"
             " AND recording_id=%lld", r.info.id);
    double spread = query_double(store, sql);
    CHECK(spread < 1e-9, "heads of identical attention have equal change (spread %g)", spread);
    /* the selected heads per iteration: iteration 0 has layers 0 and 1,
     * both uniform over the g = 4 latents */
    double selected = r.selected[0 * r.n_stats + ANALYZE_DISTANCE].mean;
    CHECK(fabs(selected - mean_g4[0]) < 2e-6 && fabs(r.selected[2 * r.n_stats + ANALYZE_ENTROPY].mean - mean_g1[1]) < 2e-6,
          "selected heads: distance %.9g at g = 4, expected %.9g", selected, mean_g4[0]);
    snprintf(sql, sizeof sql, "SELECT value FROM analysis_results WHERE kind='selected_attn_beyond_D3' AND"
             " iteration=1 AND recording_id=%lld", r.info.id);
    CHECK(fabs(query_double(store, sql) - mean_g2[3]) < 2e-6, "stored selected mass beyond 3 at g = 2");
    /* the uniform reference of each iteration is the hand-computed mean
     * uniform distance of its rows, and uniform attention is at ratio 1 at
     * every g, in the analysis and in the store; in chunks of g the
     * distance is the token distance / g */
    const double *means[3] = {mean_g4, mean_g2, mean_g1};
    int gs[3] = {4, 2, 1};
    for (int t = 0; t < 3; t++) {
        CHECK(fabs(r.step_uniform[t] - means[t][0]) < 1e-12, "uniform reference at g = %d: %.12g, by hand %.12g",
              gs[t], r.step_uniform[t], means[t][0]);
        const char *kinds2[3] = {"selected_attn_relative_distance", "selected_attn_distance_g", "attn_uniform_distance"};
        double expect[3] = {1.0, means[t][0] / gs[t], means[t][0]};
        for (int k = 0; k < 3; k++) {
            snprintf(sql, sizeof sql, "SELECT value FROM analysis_results WHERE kind='%s' AND iteration=%d AND"
                     " recording_id=%lld", kinds2[k], t, r.info.id);
            double v = query_double(store, sql);
            CHECK(fabs(v - expect[k]) < 2e-6 * fmax(1, expect[k]), "%s at g = %d: %.9g, expected %.9g", kinds2[k],
                  gs[t], v, expect[k]);
        }
        for (int c = 0; c < r.n_candidates; c++)
            CHECK(fabs(r.candidate_stat[(size_t)c * r.n_steps + t] - 1) < 2e-6,
                  "candidate %d at g = %d: relative distance %.9g, expected 1", c, gs[t],
                  r.candidate_stat[(size_t)c * r.n_steps + t]);
    }
    CHECK(r.select_by == ANALYZE_RELATIVE_DISTANCE, "the default selection is by relative distance");
    analyze_run_free(&r);
}

/* Selecting heads by distance relative to the uniform reference does not
 * depend on the unit: distances in tokens or in chunks of each iteration's
 * g give the same changes and the same selection, while the raw distance's
 * selection does change with the unit (so the test can tell them apart). */
static void test_relative_selection(void) {
    enum { NH = 4, NT = 3 };
    int g[NT] = {8, 2, 1};
    /* uniform references of L = 64 tokens in rows of chunk size g */
    double reference[NT];
    for (int t = 0; t < NT; t++) {
        int pos[64], rows = 64 / g[t];
        for (int j = 0; j < rows; j++) pos[j] = (j + 1) * g[t] - 1;
        reference[t] = attention_uniform_distance(pos, rows);
        /* by hand: rows at (j+1) g - 1, so row i sees gaps g i, ..., 0 with
         * mean g i / 2, and U = g (rows - 1) / 4 */
        CHECK(fabs(reference[t] - g[t] * (rows - 1) / 4.0) < 1e-12, "uniform reference at g = %d: %g", g[t],
              reference[t]);
    }
    /* head 0 looks far at the coarse iteration only, head 1 keeps a
     * constant token distance, head 2 a constant distance in chunks, head 3
     * stays at the uniform ratio 0.5 */
    double tokens[NH * NT] = {40, 6, 3, 10, 10, 10, 16, 4, 2, 0.5 * reference[0], 0.5 * reference[1], 0.5 * reference[2]};
    double chunks[NH * NT], reference_chunks[NT];
    for (int t = 0; t < NT; t++) reference_chunks[t] = reference[t] / g[t];
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < NT; t++) chunks[h * NT + t] = tokens[h * NT + t] / g[t];
    double rel_tokens[NH * NT], rel_chunks[NH * NT], change_tokens[NH], change_chunks[NH];
    int order_tokens[NH], order_chunks[NH], n_tokens, n_chunks;
    CHECK(headsel_relative(rel_tokens, tokens, reference, NH, NT) == 0 &&
          headsel_relative(rel_chunks, chunks, reference_chunks, NH, NT) == 0, "relative: %s", spiral_last_error());
    headsel_select(order_tokens, &n_tokens, change_tokens, rel_tokens, NH, NT, 0.5, HEADSEL_RANGE);
    headsel_select(order_chunks, &n_chunks, change_chunks, rel_chunks, NH, NT, 0.5, HEADSEL_RANGE);
    int same = n_tokens == n_chunks;
    for (int h = 0; h < NH; h++) same &= order_tokens[h] == order_chunks[h] && fabs(change_tokens[h] - change_chunks[h]) < 1e-12;
    CHECK(same, "relative distance: the selection changed with the unit (first %d, %d vs %d, %d)", order_tokens[0],
          order_tokens[1], order_chunks[0], order_chunks[1]);
    CHECK(change_tokens[3] < 1e-12, "a head at a constant ratio to uniform does not change");
    /* the raw distance picks different heads in the two units */
    headsel_select(order_tokens, &n_tokens, change_tokens, tokens, NH, NT, 0.5, HEADSEL_RANGE);
    headsel_select(order_chunks, &n_chunks, change_chunks, chunks, NH, NT, 0.5, HEADSEL_RANGE);
    int differs = 0;
    for (int i = 0; i < n_tokens; i++) differs |= order_tokens[i] != order_chunks[i];
    CHECK(differs, "raw distance: the example should select differently in tokens and in chunks");
    double zero[NT] = {1, 0, 1};
    CHECK(headsel_relative(rel_tokens, tokens, zero, NH, NT) == -1 && strstr(spiral_last_error(), "iteration 1"),
          "a zero reference is an error naming its iteration: %s", spiral_last_error());
}

/* The progress reports of one analysis, as a caller sees them. */
typedef struct {
    int n, finished;
    long last_done, last_total;
    char last_task[64], last_unit[32];
} ReportLog;

static void log_report(void *user, const ProgressReport *report) {
    ReportLog *log = user;
    log->n++;
    log->finished += report->finished;
    log->last_done = report->done;
    log->last_total = report->total;
    snprintf(log->last_task, sizeof log->last_task, "%s", report->task);
    snprintf(log->last_unit, sizeof log->last_unit, "%s", report->unit);
}

/* The loop diagnostics and every kind, on a trained spiral and looped run. */
static void test_kinds(Store *store) {
    AnalyzeOptions ao;
    analyze_options_default(&ao);
    ao.n_resamples = 200;
    AnalyzeRun spiral, looped;
    ReportLog log = {0};
    Progress progress = {log_report, &log};
    ao.progress = &progress;
    CHECK(analyze_recording(store, "spiral", "lang", &ao, &spiral) == 0, "analyze spiral: %s", spiral_last_error());
    /* a report per sequence of the states and one before: the last one finished, 10 of 10 */
    CHECK(log.n == 11 && log.finished == 1 && log.last_done == 10 && log.last_total == 10 &&
              !strcmp(log.last_task, "analyze spiral") && !strcmp(log.last_unit, "sequences"),
          "progress: %d reports (%d finished), last %s %ld/%ld %s", log.n, log.finished, log.last_task,
          log.last_done, log.last_total, log.last_unit);
    ao.progress = NULL;
    CHECK(analyze_recording(store, "looped", "lang", &ao, &looped) == 0, "analyze looped: %s", spiral_last_error());
    const char *kinds[] = {"attn_distance", "attn_entropy", "attn_beyond_D4", "attn_beyond_D16", "attn_beyond_D64",
                           "head_change", "head_selected", "selected_attn_distance", "selected_attn_entropy",
                           "selected_attn_beyond_D16", "update_size", "cka", "effective_rank", "spectrum"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM analysis_results WHERE kind='%s' AND recording_id=%lld",
                 kinds[k], spiral.info.id);
        CHECK(store_count(store, sql) > 0, "no %s rows for the spiral run", kinds[k]);
    }
    /* spiral: 1 pre + 3 x 2 loop + 1 post applications, 2 heads */
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM analysis_results WHERE kind='attn_distance' AND recording_id=%lld",
             spiral.info.id);
    CHECK(store_count(store, sql) == 8 * 2, "attn_distance rows: %lld, expected 16", store_count(store, sql));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM analysis_results WHERE kind='head_selected' AND recording_id=%lld",
             spiral.info.id);
    CHECK(store_count(store, sql) == 2 && spiral.n_selected == 2, "40%% of 4 core heads is 2: %lld", store_count(store, sql));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM analysis_results WHERE kind='cka' AND recording_id=%lld",
             spiral.info.id);
    CHECK(store_count(store, sql) == 16, "cka rows: %lld, expected 4 x 4", store_count(store, sql));
    snprintf(sql, sizeof sql, "SELECT max(abs(value - 1)) FROM analysis_results WHERE kind='cka' AND"
             " iteration = iteration2 AND recording_id=%lld", spiral.info.id);
    CHECK(query_double(store, sql) < 1e-12, "stored CKA diagonal differs from 1 by %g", query_double(store, sql));
    AnalyzeRun *runs[2] = {&spiral, &looped};
    for (int i = 0; i < 2; i++) {
        AnalyzeRun *r = runs[i];
        int S = r->n_states, ok_cka = 1, ok_update = 1, ok_rank = 1;
        for (int t = 0; t < S; t++)
            for (int u = 0; u < S; u++) {
                double v = r->cka[t * S + u];
                ok_cka &= t == u ? v == 1 : (v > 0 && v <= 1 + 1e-12 && v == r->cka[u * S + t]);
            }
        for (int t = 0; t + 1 < S; t++)
            ok_update &= isfinite(r->update[t].mean) && r->update[t].mean > 0 && r->update[t].lo > 0 &&
                         r->update[t].lo <= r->update[t].mean && r->update[t].mean <= r->update[t].hi;
        for (int t = 0; t < S; t++) {
            double sum = 0;
            for (int k = 0; k < r->spectrum_k; k++) sum += r->spectrum[t * r->spectrum_k + k];
            ok_rank &= fabs(sum - 1) < 1e-9 && r->effective_rank[t] >= 1 && r->effective_rank[t] <= r->spectrum_k;
        }
        CHECK(S == 4 && ok_cka, "%s: CKA matrix must be symmetric in (0, 1] with diagonal 1", r->run);
        CHECK(ok_update, "%s: update sizes must be positive and finite with ordered CIs", r->run);
        CHECK(ok_rank, "%s: spectra must sum to 1 and effective ranks lie in [1, %d]", r->run, r->spectrum_k);
        CHECK(r->n_sequences == 10 && r->n_stacked == 10 && r->spectrum_k == 16, "%s: %d sequences, %d stacked", r->run,
              r->n_sequences, r->n_stacked);
    }
    snprintf(sql, sizeof sql, "SELECT count(*) FROM analysis_results WHERE kind='update_size' AND value > 0 AND"
             " recording_id=%lld AND length(data) = 10 * 8", looped.info.id);
    CHECK(store_count(store, sql) == 3, "looped update_size rows with per-sequence data: %lld", store_count(store, sql));

    /* analyzing again replaces the rows; a row cap limits the stacked rows */
    long long before = store_count(store, "SELECT count(*) FROM analysis_results");
    AnalyzeRun again;
    ao.max_rows = 48; /* two sequences of 24 tokens */
    CHECK(analyze_recording(store, "spiral", "lang", &ao, &again) == 0 && again.n_stacked == 2,
          "analyze again: %s", spiral_last_error());
    CHECK(store_count(store, "SELECT count(*) FROM analysis_results") == before, "re-analysis changed the row count");
    analyze_run_free(&again);
    ao.max_rows = 16384;

    /* cross-run CKA, same windows: (T + 1) x (T + 1) rows */
    AnalyzeCross cross;
    CHECK(analyze_cross(store, &spiral, &looped, &ao, &cross) == 0 && !cross.skipped, "cross: %s %s",
          spiral_last_error(), cross.reason);
    CHECK(store_count(store, "SELECT count(*) FROM analysis_results WHERE kind='cka_cross'") == 16, "cka_cross rows: %lld",
          store_count(store, "SELECT count(*) FROM analysis_results WHERE kind='cka_cross'"));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM analysis_results WHERE kind='cka_cross' AND run_id=%lld AND"
             " recording_id=%lld AND value > 0 AND value <= 1", looped.info.run_id, spiral.info.id);
    CHECK(store_count(store, sql) == 16, "cka_cross rows keyed by (spiral's recording, looped's run)");
    /* h(0) of both is the prelude of differently trained models: CKA < 1 */
    CHECK(cross.cka && cross.cka[0] < 1, "cross CKA of two models");
    analyze_cross_free(&cross);
    CHECK(analyze_cross(store, &spiral, &looped, &ao, &cross) == 0 &&
              store_count(store, "SELECT count(*) FROM analysis_results WHERE kind='cka_cross'") == 16,
          "cross-run CKA again must replace its rows");
    analyze_cross_free(&cross);

    /* the report mentions the selected heads and every section */
    char path[512];
    snprintf(path, sizeof path, "%s/report.txt", dir);
    FILE *f = fopen(path, "w+");
    analyze_print_run(f, &spiral);
    analyze_print_side_by_side(f, runs[0], 1);
    rewind(f);
    char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    CHECK(strstr(text, "2 of 4 core heads selected") && strstr(text, "linear CKA") && strstr(text, "effective rank") &&
              strstr(text, "mass beyond 16") && strstr(text, "side by side"),
          "report lacks a section:\n%s", text);

    /* analyze_runs: both runs, their reports, one pair; the rows it says it wrote */
    long long spiral_rows = spiral.rows_written;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM analysis_results WHERE recording_id=%lld AND kind != 'cka_cross'",
             looped.info.id);
    long long looped_rows = store_count(store, sql);
    analyze_run_free(&spiral);
    analyze_run_free(&looped);
    const char *names[2] = {"spiral", "looped"};
    AnalyzeSummary summary;
    f = fopen(path, "w+");
    CHECK(analyze_runs(store, names, 2, "lang", &ao, f, &summary) == 0, "analyze_runs: %s", spiral_last_error());
    rewind(f);
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    CHECK(summary.n_runs == 2 && summary.rows_written[0] == spiral_rows && summary.rows_written[1] == looped_rows &&
              summary.n_pairs == 1 && summary.cross_rows == 16,
          "analyze_runs summary: %d runs, rows %lld %lld (expected %lld %lld), %d pairs, %lld cross rows",
          summary.n_runs, summary.rows_written[0], summary.rows_written[1], spiral_rows, looped_rows,
          summary.n_pairs, summary.cross_rows);
    CHECK(strstr(text, "== run spiral") && strstr(text, "== run looped") && strstr(text, "side by side") &&
              strstr(text, "linear CKA between spiral's h(t) (rows) and looped's h(u)"),
          "analyze_runs report lacks a section:\n%s", text);
    analyze_summary_free(&summary);
    /* a failing run stops it; the runs before it are counted */
    const char *with_missing[2] = {"spiral", "nope"};
    f = fopen(path, "w");
    CHECK(analyze_runs(store, with_missing, 2, "lang", &ao, f, &summary) != 0 &&
              strstr(spiral_last_error(), "nope") && summary.n_runs == 1,
          "analyze_runs with an unknown run: %s, %d runs done", spiral_last_error(), summary.n_runs);
    fclose(f);
    analyze_summary_free(&summary);
}

/* The dense baseline: layer t is iteration t, candidates are head slots. */
static void test_dense(Store *store) {
    AnalyzeOptions ao;
    analyze_options_default(&ao);
    ao.n_resamples = 100;
    ao.fraction = 0.5;
    AnalyzeRun r;
    CHECK(analyze_recording(store, "dense", "lang", &ao, &r) == 0, "analyze dense: %s", spiral_last_error());
    CHECK(r.n_steps == 3 && r.n_states == 4 && r.n_candidates == 2 && r.n_selected == 1,
          "dense: %d steps, %d candidates, %d selected", r.n_steps, r.n_candidates, r.n_selected);
    /* analysis iteration 1 = core layer 1 = attention_stats iteration 2:
     * the mean over sequences and queries of its head-1 distance */
    sqlite3_stmt *stmt;
    sqlite3_prepare_v2(store->db, "SELECT stats, rows FROM attention_stats WHERE recording_id=? AND iteration=2"
                       " AND block='loop' AND layer=0 ORDER BY seq", -1, &stmt, NULL);
    sqlite3_bind_int64(stmt, 1, r.info.id);
    double mean = 0;
    int sequences = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const float *stats = sqlite3_column_blob(stmt, 0);
        int rows = sqlite3_column_int(stmt, 1), K = 5;
        double sum = 0;
        for (int i = 0; i < rows; i++) sum += stats[((size_t)1 * rows + i) * K + 0];
        mean += sum / rows;
        sequences++;
    }
    sqlite3_finalize(stmt);
    mean /= sequences;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT value FROM analysis_results WHERE kind='attn_distance' AND iteration=1 AND"
             " layer=0 AND head=1 AND recording_id=%lld", r.info.id);
    double stored = query_double(store, sql);
    CHECK(sequences == 10 && fabs(stored - mean) < 1e-9 * fmax(1, mean), "dense layer 1 head 1: stored %.12g, direct %.12g",
          stored, mean);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM analysis_results WHERE kind='head_change' AND layer IS NULL"
             " AND recording_id=%lld", r.info.id);
    CHECK(store_count(store, sql) == 2, "dense head_change rows are head slots (layer NULL)");
    analyze_run_free(&r);
}

static void test_compare(Store *store) {
    const char *names[3] = {"spiral", "spiral-seed2", "looped"};
    CompareOptions o;
    compare_options_default(&o);
    Comparison c;
    CHECK(compare_runs(&c, store, names, 3, &o) == 0, "compare: %s", spiral_last_error());
    if (c.n_runs != 3) return;
    CHECK(c.n_groups == 2 && c.groups[0].n == 2 && c.groups[1].n == 1 && c.runs[1].group == 0,
          "two seeds of one config form one group: %d groups", c.n_groups);
    /* t interval of two values: mean +- t_{0.975,1} |a - b| / 2 */
    double a = c.runs[0].val_loss, b = c.runs[1].val_loss, half = gsl_cdf_tdist_Pinv(0.975, 1) * fabs(a - b) / 2;
    const MeanInterval *m = &c.groups[0].val_loss;
    CHECK(a != b && fabs(m->mean - (a + b) / 2) < 1e-12 && fabs(m->hi - m->lo - 2 * half) < 1e-9 && !m->zero_width,
          "seed interval [%g, %g] for %g, %g", m->lo, m->hi, a, b);
    CHECK(c.groups[1].val_loss.zero_width, "a group of one seed has a zero-width interval");
    /* no budget given: every finished run read at its own end */
    for (int r = 0; r < 3; r++)
        CHECK(c.runs[r].finished && c.runs[r].at_flops.how == COMPARE_READ_END &&
                  c.runs[r].at_flops.loss == c.runs[r].val_loss && c.runs[r].at_tokens.at == c.runs[r].tokens,
              "run %d read at its end: how %d, loss %g vs %g", r, c.runs[r].at_flops.how, c.runs[r].at_flops.loss,
              c.runs[r].val_loss);
    CHECK(c.groups[0].token_set == c.groups[1].token_set && c.groups[0].flop_set != c.groups[1].flop_set,
          "spiral and looped: one equal-token set, different equal-FLOPs sets");
    double budget = c.runs[0].train_flops;
    compare_free(&c);
    /* at the spiral's (cheaper) FLOPs the looped run is mid-schedule: refused */
    o.at_flops = budget;
    CHECK(compare_runs(&c, store, names, 3, &o) == 0, "compare --at-flops: %s", spiral_last_error());
    CHECK(c.runs[0].at_flops.how == COMPARE_READ_END && c.runs[2].at_flops.how == COMPARE_READ_REFUSED &&
              isnan(c.runs[2].at_flops.loss) && c.groups[1].loss_at_flops.n == 0,
          "looped at the spiral's FLOPs: how %d, loss %g", c.runs[2].at_flops.how, c.runs[2].at_flops.loss);
    compare_free(&c);
    /* with interpolate: the looped run's loss at those FLOPs, by hand from its curve, labelled */
    o.interpolate = 1;
    CHECK(compare_runs(&c, store, names, 3, &o) == 0, "compare --interpolate: %s", spiral_last_error());
    const CompareRun *l = &c.runs[2];
    int i = 0;
    while (i + 1 < l->n_evals && l->eval_flops[i + 1] < budget) i++;
    double expected = l->eval_loss[i] + (budget - l->eval_flops[i]) * (l->eval_loss[i + 1] - l->eval_loss[i]) /
                                            (l->eval_flops[i + 1] - l->eval_flops[i]);
    CHECK(l->n_evals == 4 && fabs(l->at_flops.loss - expected) < 1e-12 && l->at_flops.how == COMPARE_READ_MID_SCHEDULE,
          "looped loss at the spiral's FLOPs %.12g, expected %.12g (how %d)", l->at_flops.loss, expected,
          l->at_flops.how);
    compare_free(&c);
    /* past every run's end: not reached, never extrapolated */
    o.at_flops = 1e30;
    int status = compare_runs(&c, store, names, 3, &o);
    CHECK(status == 0, "compare at 1e30 FLOPs: %s", spiral_last_error());
    CHECK(status == 0 && c.runs[2].at_flops.how == COMPARE_READ_NOT_REACHED && c.n_flop_sets == 0,
          "a budget past the end: how %d, %d sets", status ? -1 : (int)c.runs[2].at_flops.how, c.n_flop_sets);
    compare_free(&c);
    o.at_flops = NAN;
    o.interpolate = 0;
    CHECK(compare_runs(&c, store, names, 3, &o) == 0, "compare: %s", spiral_last_error());
    CHECK(c.groups[0].param_set == c.groups[1].param_set, "spiral and looped have equal parameters within 5%%");
    ModelCost cost;
    model_cost(&cost, &c.runs[0].model, 24);
    CHECK(c.runs[0].params == cost.params && c.runs[0].forward_flops == cost.forward_flops, "params from model_cost");
    char path[512];
    snprintf(path, sizeof path, "%s/c.csv", dir);
    CHECK(compare_write_csv(path, &c) == 0, "csv: %s", spiral_last_error());
    FILE *f = fopen(path, "r");
    int lines = 0;
    for (int ch; f && (ch = fgetc(f)) != EOF;) lines += ch == '\n';
    if (f) fclose(f);
    CHECK(lines == 1 + 3 + 2, "csv lines: %d, expected header + 3 runs + 2 groups", lines);
    compare_free(&c);
    o.group_by_config = 0;
    CHECK(compare_runs(&c, store, names, 3, &o) == 0 && c.n_groups == 3, "--group-by none: one group per run");
    compare_free(&c);
    const char *bad[2] = {"spiral", "nope"};
    CHECK(compare_runs(&c, store, bad, 2, &o) != 0 && strstr(spiral_last_error(), "nope"), "unknown run: %s",
          spiral_last_error());
}

static void test_baselines_files(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/sp.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"model\": {\"d_model\": 32, \"n_heads\": 2, \"schedule\": [8, 4, 2, 1]},"
          " \"train\": {\"dataset\": \"lang\", \"seq_len\": 64}}", f);
    fclose(f);
    SpiralConfig cfg;
    char *train = NULL;
    int L;
    CHECK(matched_read_spiral_file(path, &cfg, &train, &L) == 0 && L == 64 && train && strstr(train, "lang"),
          "read spiral file: %s", spiral_last_error());
    MatchedBaselines m;
    char paths[3][1024];
    CHECK(matching_derive(&m, &cfg, L) == 0 && matched_write_run_files(&m, train, dir, "sp", paths) == 0,
          "write baselines: %s", spiral_last_error());
    const MatchedBaseline *rows[3] = {&m.looped, &m.dense_params, &m.dense_flops};
    for (int i = 0; i < 3; i++) {
        SpiralConfig back;
        char *text = NULL;
        int len;
        CHECK(matched_read_spiral_file(paths[i], &back, &text, &len) == 0 && len == 64 &&
                  back.n_loop == rows[i]->cfg.n_loop && back.n_iters == rows[i]->cfg.n_iters,
              "%s: n_loop %d, expected %d (%s)", paths[i], back.n_loop, rows[i]->cfg.n_loop, spiral_last_error());
        CHECK(text && strstr(text, "\"lang\""), "%s keeps the spiral's train object", paths[i]);
        ModelCost cost;
        model_cost(&cost, &back, 64);
        CHECK(cost.params_nonembedding == rows[i]->params_nonembedding, "%s: parameters", paths[i]);
        free(text);
    }
    free(train);
}

/* Equal FLOPs by steps: steps' = round(target / per step), the warmup
 * scaled with them (an absent one left to its default), the mismatch what
 * the rounding leaves. */
static void test_scale_train(void) {
    char *out = NULL;
    long steps = 0;
    double mismatch = 0;
    const char *train = "{\"dataset\": \"lang\", \"seq_len\": 64, \"steps\": 100, \"warmup\": 10, \"lr\": 0.002}";
    CHECK(matched_scale_train(&out, &steps, &mismatch, train, "t", 500, 7) == 0, "scale: %s", spiral_last_error());
    CHECK(steps == 71 && fabs(mismatch - (71.0 * 7 / 500 - 1)) < 1e-15, "71 steps of 7 for 500: %ld, %g", steps,
          mismatch);
    CHECK(out && strstr(out, "\"steps\":71") && strstr(out, "\"warmup\":7") && strstr(out, "\"lr\":0.002"),
          "scaled train object: %s", out ? out : "(none)");
    free(out);
    CHECK(matched_scale_train(&out, &steps, &mismatch, "{\"dataset\": \"lang\", \"steps\": 10}", "t", 1e3, 1) == 0 &&
              steps == 1000 && out && !strstr(out, "warmup"),
          "an absent warmup stays absent: %s", out ? out : spiral_last_error());
    free(out);
    CHECK(matched_scale_train(&out, &steps, &mismatch, train, "t", 0, 7) == -1 && !out &&
              strstr(spiral_last_error(), "positive"),
          "a zero target is refused: %s", spiral_last_error());
    CHECK(matched_scale_train(&out, &steps, &mismatch, "{\"steps\": 10}", "t.json", 10, 1) == -1 &&
              strstr(spiral_last_error(), "t.json"),
          "a bad train object is refused naming its source: %s", spiral_last_error());
}

static void test_errors(Store *store) {
    AnalyzeOptions ao;
    analyze_options_default(&ao);
    AnalyzeRun r;
    CHECK(analyze_recording(store, "spiral-seed2", "lang", &ao, &r) != 0 && strstr(spiral_last_error(), "spiral record"),
          "no recording: %s", spiral_last_error());
    ao.fraction = 0;
    CHECK(analyze_recording(store, "spiral", "lang", &ao, &r) != 0 && strstr(spiral_last_error(), "fraction"),
          "fraction 0: %s", spiral_last_error());
    ao.fraction = 0.4;
    store_exec(store, "UPDATE recordings SET status='running' WHERE run_id=(SELECT id FROM runs WHERE name='looped')");
    CHECK(analyze_recording(store, "looped", "lang", &ao, &r) != 0 && strstr(spiral_last_error(), "not done"),
          "unfinished recording: %s", spiral_last_error());
    store_exec(store, "UPDATE recordings SET status='done'");
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "/tmp/spiral_test_analyze_XXXXXX");
    if (!mkdtemp(dir)) return 2;
    char store_path[512];
    snprintf(store_path, sizeof store_path, "%s/runs.db", dir);
    Store store;
    store_open(&store, store_path, 1);
    Dataset ds;
    make_parity_language(&ds);
    store_dataset_save(&store, "lang", &ds, 0, NULL);
    const char *spiral = "{\"vocab_size\": 8, \"d_model\": 16, \"n_heads\": 2, \"d_ff\": 24,"
                         " \"schedule\": [{\"g\": 4, \"offset\": 1}, 2, 1]}";
    const char *looped = "{\"vocab_size\": 8, \"d_model\": 16, \"n_heads\": 2, \"d_ff\": 24, \"schedule\": [1, 1, 1]}";
    const char *dense = "{\"vocab_size\": 8, \"d_model\": 16, \"n_heads\": 2, \"d_ff\": 24,"
                        " \"n_pre\": 1, \"n_loop\": 3, \"n_post\": 1, \"schedule\": [1]}";
    train_run(&store, "spiral", spiral, 0, 20);
    train_run(&store, "spiral-seed2", spiral, 2, 20);
    train_run(&store, "looped", looped, 0, 20);
    train_run(&store, "dense", dense, 0, 20);
    RecordOptions o;
    record_options_default(&o);
    o.attention = attention_stats_summary();
    o.n_sequences = 10;
    o.batch_size = 5;
    record(&store, "spiral", &o);
    record(&store, "looped", &o);
    record(&store, "dense", &o);

    test_uniform_attention(&store);
    test_relative_selection();
    test_kinds(&store);
    test_dense(&store);
    test_compare(&store);
    test_baselines_files();
    test_scale_train();
    test_errors(&store);

    dataset_free(&ds);
    store_close(&store);
    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary(argv[0]);
}
