/*
 * analyze.c: analyze_recording (analyze.h): checks the recording, runs the
 * attention analysis (analyze_attention.c) and the loop diagnostics
 * (analyze_loop.c), then writes every row. All numbers are computed before
 * the store is written, so a failure leaves the previous results in place.
 */
#include "analyze.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_store.h"
#include "analyze_parts.h"
#include "clock.h"
#include "error.h"
#include "headsel.h"
#include "steps.h"

void analyze_options_default(AnalyzeOptions *o) {
    memset(o, 0, sizeof *o);
    o->split = "test";
    o->max_rows = 16384;
    o->fraction = HEADSEL_DEFAULT_FRACTION;
    o->measure = HEADSEL_DEFAULT_MEASURE;
    o->select_by = ANALYZE_RELATIVE_DISTANCE;
    o->n_resamples = 1000;
    o->level = 0.95;
    o->seed = 1;
}

void analyze_run_free(AnalyzeRun *r) {
    free(r->step_g);
    free(r->step_uniform);
    free(r->units);
    free(r->head_stats);
    free(r->candidate_stat);
    free(r->change);
    free(r->order);
    free(r->selected);
    free(r->update);
    free(r->cka);
    free(r->spectrum);
    free(r->effective_rank);
    memset(r, 0, sizeof *r);
}

void analyze_progress(const AnalyzeOptions *o, const char *task, const char *unit, long done, long total,
                      double started, const char *detail, int finished) {
    ProgressReport report = {task, unit, done, total, seconds_now() - started, 0, detail, finished};
    progress_report(o->progress, &report);
}

/* A row of a mean with its interval and per-sequence data (n). */
static int put_interval(AnalysisWriter *w, const char *kind, AnalysisRow row, const MeanInterval *m,
                        const double *data, int n) {
    row.kind = kind;
    row.value = m->mean;
    row.ci_lo = m->lo;
    row.ci_hi = m->hi;
    row.data = data;
    row.n_data = n;
    return analysis_writer_put(w, &row);
}

/* A row of one value. */
static int put_value(AnalysisWriter *w, AnalysisRow row, double value) {
    row.value = value;
    return analysis_writer_put(w, &row);
}

/* Writes every row of the run (analyze.h's table) in one transaction,
 * replacing the recording's previous rows of these kinds. values (n_units,
 * N, H, K), updates (n_states - 1, N); per_sequence (N) is work space. */
static int write_results(Store *store, AnalyzeRun *r, const double *values, const double *updates,
                         double *per_sequence) {
    int N = r->n_sequences, H = r->n_heads, K = r->n_stats, T = r->n_steps, S = r->n_states;
    const int null = ANALYSIS_NULL;
    AnalysisWriter *w;
    if (analysis_writer_begin(&w, store, r->info.id, r->info.run_id)) return -1;
    int status = analysis_writer_replace_recording(w);
    char kind[64];
    /* per-head statistics of every layer application */
    for (int u = 0; u < r->n_units && status == 0; u++) {
        const AnalyzeUnit *unit = &r->units[u];
        if (isnan(r->head_stats[(size_t)u * H * K].mean)) continue; /* not recorded */
        for (int h = 0; h < H && status == 0; h++)
            for (int k = 0; k < K && status == 0; k++) {
                for (int s = 0; s < N; s++) per_sequence[s] = values[(((size_t)u * N + s) * H + h) * K + k];
                analyze_stat_kind(kind, sizeof kind, "", k, r->distances);
                AnalysisRow row = analysis_row(kind, unit->step >= 0 ? unit->step : null, null,
                                               analyze_block_name(unit->block), unit->layer, h);
                status = put_interval(w, kind, row, &r->head_stats[((size_t)u * H + h) * K + k], per_sequence, N);
            }
    }
    /* head selection: candidate c is (layer c / H, head c % H); dense: head slot c */
    int dense = model_kind(&r->cfg) == KIND_DENSE;
    for (int c = 0; c < r->n_candidates && status == 0; c++)
        status = put_value(w, analysis_row("head_change", null, null, "loop", dense ? null : c / H, c % H),
                           r->change[c]);
    for (int i = 0; i < r->n_selected && status == 0; i++) {
        int c = r->order[i];
        status = put_value(w, analysis_row("head_selected", null, null, "loop", dense ? null : c / H, c % H),
                           i + 1);
    }
    /* the selected heads per step (per-sequence values recomputed, not kept) */
    for (int t = 0; t < T && status == 0; t++)
        for (int k = 0; k < K && status == 0; k++) {
            analyze_selected_per_sequence(per_sequence, r, values, t, k);
            analyze_stat_kind(kind, sizeof kind, "selected_", k, r->distances);
            status = put_interval(w, kind, analysis_row(kind, t, null, "loop", null, null),
                                  &r->selected[(size_t)t * K + k], per_sequence, N);
        }
    /* the selected heads' distance in chunks of g and relative to uniform,
     * and the uniform reference itself */
    for (int t = 0; t < T && status == 0; t++) {
        static const char *const kinds[2] = {"selected_attn_distance_g", "selected_attn_relative_distance"};
        double divisor[2] = {r->step_g[t], r->step_uniform[t]};
        for (int v = 0; v < 2 && status == 0; v++) {
            analyze_selected_per_sequence(per_sequence, r, values, t, ANALYZE_DISTANCE);
            for (int s = 0; s < N; s++) per_sequence[s] /= divisor[v];
            const MeanInterval *m = &r->selected[(size_t)t * K + ANALYZE_DISTANCE];
            MeanInterval scaled = *m;
            scaled.mean /= divisor[v];
            scaled.sd /= divisor[v];
            scaled.lo /= divisor[v];
            scaled.hi /= divisor[v];
            status = put_interval(w, kinds[v], analysis_row(kinds[v], t, null, "loop", null, null), &scaled,
                                  per_sequence, N);
        }
        if (status == 0)
            status = put_value(w, analysis_row("attn_uniform_distance", t, null, "loop", null, null),
                               r->step_uniform[t]);
    }
    /* loop diagnostics */
    for (int t = 0; t + 1 < S && status == 0; t++)
        status = put_interval(w, "update_size", analysis_row("update_size", t, null, "token", null, null),
                              &r->update[t], updates + (size_t)t * N, N);
    for (int t = 0; t < S && status == 0; t++)
        for (int u = 0; u < S && status == 0; u++)
            status = put_value(w, analysis_row("cka", t, u, "token", null, null), r->cka[(size_t)t * S + u]);
    for (int t = 0; t < S && status == 0; t++) {
        const double *p = r->spectrum + (size_t)t * r->spectrum_k;
        status = put_value(w, analysis_row("effective_rank", t, null, "token", null, null), r->effective_rank[t]);
        AnalysisRow spectrum = analysis_row("spectrum", t, null, "token", null, null);
        spectrum.data = p;
        spectrum.n_data = r->spectrum_k;
        if (status == 0) status = put_value(w, spectrum, p[0]);
    }
    r->rows_written = analysis_writer_rows(w);
    return analysis_writer_end(w, status);
}

/* Reads the recording's distances and checks that it is complete. */
static int check_recording(Store *store, AnalyzeRun *r, const AnalyzeOptions *o) {
    char status[16] = "";
    if (analysis_store_recording_meta(store, r->info.id, r->distances, RECORD_MAX_DISTANCES, &r->n_distances,
                                      status, sizeof status))
        return -1;
    r->n_stats = 2 + r->n_distances;
    if (strcmp(status, "done"))
        return spiral_error("%s: the recording of run %s on %s (%s split) is %s, not done: complete it by "
                            "running the same 'spiral record' command again", store->path, r->run, r->dataset,
                            o->split, status);
    if (r->info.d_model != r->cfg.d_model)
        return spiral_error("%s: recording of run %s has d_model %d, the run's model %d", store->path, r->run,
                            r->info.d_model, r->cfg.d_model);
    return 0;
}

int analyze_recording(Store *store, const char *run_name, const char *dataset_name,
                      const AnalyzeOptions *o, AnalyzeRun *out) {
    AnalyzeRun r;
    RunRow run = {0};
    double *values = NULL, *per_sequence = NULL, *updates = NULL;
    unsigned char *present = NULL;
    int status = -1;
    memset(&r, 0, sizeof r);
    memset(out, 0, sizeof *out);
    if (!(o->fraction > 0 && o->fraction <= 1))
        return spiral_error("head selection fraction must be in (0, 1], got %g", o->fraction);
    if (o->select_by != ANALYZE_RELATIVE_DISTANCE && o->select_by != ANALYZE_DISTANCE &&
        o->select_by != ANALYZE_ENTROPY)
        return spiral_error("select_by must be relative distance (%d), distance (%d) or entropy (%d)",
                            ANALYZE_RELATIVE_DISTANCE, ANALYZE_DISTANCE, ANALYZE_ENTROPY);
    if (o->max_rows < 1 || o->n_resamples < 1 || !(o->level > 0 && o->level < 1))
        return spiral_error("max_rows and resamples must be >= 1 and level in (0, 1)");
    snprintf(r.run, sizeof r.run, "%s", run_name);
    snprintf(r.dataset, sizeof r.dataset, "%s", dataset_name);
    if (store_run_find(store, run_name, &run) || recording_find(store, run_name, dataset_name, o->split, &r.info))
        goto done;
    char source[1400];
    snprintf(source, sizeof source, "%s: run %s", store->path, run_name);
    if (config_parse(&r.cfg, run.config, source)) goto done;
    snprintf(r.kind, sizeof r.kind, "%s", model_kind_name(model_kind(&r.cfg)));
    if (check_recording(store, &r, o)) goto done;
    r.n_sequences = o->max_sequences > 0 && o->max_sequences < r.info.n_sequences ? o->max_sequences
                                                                                  : r.info.n_sequences;
    r.n_heads = r.cfg.n_heads;
    r.select_by = o->select_by;
    r.measure = o->measure;
    r.fraction = o->fraction;
    r.level = o->level;
    if (analyze_build_units(&r)) goto done;
    r.n_states = r.n_steps + 1;
    int N = r.n_sequences, H = r.n_heads, K = r.n_stats, T = r.n_steps;
    size_t n_values = (size_t)r.n_units * N * H * K;
    values = malloc(n_values * sizeof *values);
    present = calloc((size_t)r.n_units, 1);
    per_sequence = malloc((size_t)N * sizeof *per_sequence);
    updates = malloc((size_t)T * N * sizeof *updates);
    r.head_stats = calloc((size_t)r.n_units * H * K, sizeof *r.head_stats);
    r.candidate_stat = malloc((size_t)r.layers_per_step * H * T * sizeof *r.candidate_stat);
    r.change = malloc((size_t)r.layers_per_step * H * sizeof *r.change);
    r.order = malloc((size_t)r.layers_per_step * H * sizeof *r.order);
    r.selected = calloc((size_t)T * K, sizeof *r.selected);
    r.update = calloc((size_t)T, sizeof *r.update);
    r.cka = malloc((size_t)r.n_states * r.n_states * sizeof *r.cka);
    r.effective_rank = malloc((size_t)r.n_states * sizeof *r.effective_rank);
    if (!values || !present || !per_sequence || !updates || !r.head_stats || !r.candidate_stat || !r.change ||
        !r.order || !r.selected || !r.update || !r.cka || !r.effective_rank) {
        spiral_error("out of memory analyzing run %s (%zu attention values)", run_name, n_values);
        goto done;
    }
    char task[160], detail[96];
    snprintf(task, sizeof task, "analyze %s", run_name);
    snprintf(detail, sizeof detail, "attention statistics (%d layer applications)", r.n_units);
    analyze_progress(o, task, "sequences", 0, N, seconds_now(), detail, 0);
    if (analyze_read_attention(store, &r, values, present) ||
        analyze_attention_summary(&r, o, values, present, per_sequence))
        goto done;
    if (analyze_loop_diagnostics(store, &r, o, updates)) goto done;
    if (write_results(store, &r, values, updates, per_sequence)) goto done;
    status = 0;
done:
    free(values);
    free(present);
    free(per_sequence);
    free(updates);
    store_run_free(&run);
    if (status == 0) *out = r;
    else analyze_run_free(&r);
    return status;
}

