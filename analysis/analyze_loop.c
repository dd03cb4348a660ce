/*
 * analyze_loop.c: parts (2) and (3) of analyze.h on the recorded token
 * states h(t): update sizes per sequence, CKA, spectra and effective ranks
 * of the stacked states of one run, and CKA between two runs' states.
 *
 * The states are read sequence by sequence (recording_read_state), keeping
 * only the current and previous h(t) plus the stacked matrices of the
 * first n_stacked sequences.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_store.h"
#include "analyze_parts.h"
#include "clock.h"
#include "error.h"
#include "loopdiag.h"

/* Reads h(t) of sequence seq as doubles: out (L, d); buffer (L, d) floats. */
static int read_token_state(Store *store, const RecordingInfo *info, int seq, int t, float *buffer,
                            double *out) {
    int rows, cols;
    if (recording_read_state(store, info, seq, t, "token", 1, buffer, &rows, &cols))
        return spiral_error_prefix("%s", store->path);
    if (rows != info->seq_len || cols != info->d_model)
        return spiral_error("%s: token state of sequence %d, iteration %d is %d x %d, expected %d x %d",
                            store->path, seq, t, rows, cols, info->seq_len, info->d_model);
    size_t count = (size_t)rows * cols;
    for (size_t i = 0; i < count; i++) out[i] = buffer[i];
    return 0;
}

/* Reads the stacked token states of the first n_stacked sequences:
 * stacked[t] (n_stacked L, d) for t = 0..n_states-1. */
static int read_stacked(Store *store, const RecordingInfo *info, int n_states, int n_stacked,
                        double **stacked) {
    size_t per_seq = (size_t)info->seq_len * info->d_model;
    float *buffer = malloc(per_seq * sizeof *buffer);
    if (!buffer) return spiral_error("out of memory");
    int status = 0;
    for (int t = 0; t < n_states && status == 0; t++)
        for (int s = 0; s < n_stacked && status == 0; s++)
            status = read_token_state(store, info, s, t, buffer, stacked[t] + (size_t)s * per_seq);
    free(buffer);
    return status;
}

/* Allocates n matrices of `count` doubles (NULL on failure). */
static double **alloc_matrices(int n, size_t count) {
    double **m = calloc((size_t)n, sizeof *m);
    if (!m) return NULL;
    for (int i = 0; i < n; i++) {
        m[i] = malloc(count * sizeof **m);
        if (!m[i]) {
            for (int j = 0; j < i; j++) free(m[j]);
            free(m);
            return NULL;
        }
    }
    return m;
}

static void free_matrices(double **m, int n) {
    if (!m) return;
    for (int i = 0; i < n; i++) free(m[i]);
    free(m);
}

/* Number of sequences stacked for CKA and spectra: min(N, max(1, max_rows / L)). */
static int stacked_count(int n_sequences, int L, int max_rows) {
    int n = max_rows / L;
    if (n < 1) n = 1;
    return n < n_sequences ? n : n_sequences;
}

int analyze_loop_diagnostics(Store *store, AnalyzeRun *r, const AnalyzeOptions *o, double *updates) {
    int N = r->n_sequences, S = r->n_states, L = r->info.seq_len, d = r->info.d_model;
    size_t per_seq = (size_t)L * d;
    r->n_stacked = stacked_count(N, L, o->max_rows);
    size_t stacked_rows = (size_t)r->n_stacked * L;
    double **stacked = alloc_matrices(S, stacked_rows * d);
    float *buffer = malloc(per_seq * sizeof *buffer);
    double *previous = malloc(per_seq * sizeof *previous), *current = malloc(per_seq * sizeof *current);
    char task[160], detail[64];
    snprintf(task, sizeof task, "analyze %s", r->run);
    snprintf(detail, sizeof detail, "states h(0..%d)", S - 1);
    double started = seconds_now();
    int status = 0;
    if (!stacked || !buffer || !previous || !current) {
        status = spiral_error("out of memory for %d stacked states of %zu x %d", S, stacked_rows, d);
        goto done;
    }
    for (int s = 0; s < N && status == 0; s++) {
        for (int t = 0; t < S && status == 0; t++) {
            status = read_token_state(store, &r->info, s, t, buffer, current);
            if (status) break;
            if (t > 0 && loopdiag_relative_update(&updates[(size_t)(t - 1) * N + s], previous, current, L, d))
                status = spiral_error_prefix("run %s, sequence %d: update of h(%d)", r->run, s, t - 1);
            if (s < r->n_stacked) memcpy(stacked[t] + (size_t)s * per_seq, current, per_seq * sizeof *current);
            double *swap = previous;
            previous = current;
            current = swap;
        }
        if (status == 0) analyze_progress(o, task, "sequences", s + 1, N, started, detail, s + 1 == N);
    }
    for (int t = 0; t + 1 < S && status == 0; t++)
        if (stats_mean_ci_bootstrap(&r->update[t], updates + (size_t)t * N, N, o->level, o->n_resamples, o->seed))
            status = spiral_error_prefix("update sizes of iteration %d", t);
    if (status == 0 && loopdiag_cka_matrix(r->cka, (const double *const *)stacked, S, (int)stacked_rows, d))
        status = spiral_error_prefix("run %s: CKA of the iteration states", r->run);
    r->spectrum_k = (int)stacked_rows < d ? (int)stacked_rows : d;
    if (status == 0) {
        r->spectrum = malloc((size_t)S * r->spectrum_k * sizeof *r->spectrum);
        if (!r->spectrum) status = spiral_error("out of memory");
    }
    for (int t = 0; t < S && status == 0; t++) {
        double *p = r->spectrum + (size_t)t * r->spectrum_k;
        if (loopdiag_spectrum(p, NULL, stacked[t], (int)stacked_rows, d, SPECTRUM_DEFAULT) ||
            loopdiag_effective_rank(&r->effective_rank[t], p, r->spectrum_k))
            status = spiral_error_prefix("run %s: spectrum of h(%d)", r->run, t);
    }
done:
    free_matrices(stacked, S);
    free(buffer);
    free(previous);
    free(current);
    return status;
}

/* ------------------------------------------------------------------------ */
/* Cross-run CKA                                                            */

void analyze_cross_free(AnalyzeCross *cross) {
    free(cross->cka);
    memset(cross, 0, sizeof *cross);
}

/* *same = 1 if the first n sequences of both recordings are the same windows. */
static int same_windows(Store *store, const RecordingInfo *a, const RecordingInfo *b, int n, int *same) {
    size_t *ia = malloc((size_t)a->seq_len * sizeof *ia), *ib = malloc((size_t)b->seq_len * sizeof *ib);
    int status = ia && ib ? 0 : spiral_error("out of memory");
    *same = 1;
    for (int s = 0; s < n && status == 0 && *same; s++) {
        status = recording_read_token_index(store, a, s, ia) || recording_read_token_index(store, b, s, ib) ? -1 : 0;
        if (status == 0) *same = memcmp(ia, ib, (size_t)a->seq_len * sizeof *ia) == 0;
    }
    free(ia);
    free(ib);
    return status;
}

/* Replaces the cka_cross rows of (a's recording, b's run) by out->cka. */
static int write_cross(Store *store, const AnalyzeRun *a, const AnalyzeRun *b, AnalyzeCross *out) {
    AnalysisWriter *w;
    if (analysis_writer_begin(&w, store, a->info.id, b->info.run_id)) return -1;
    int status = analysis_writer_replace_cross(w);
    for (int t = 0; t < out->n_a && status == 0; t++)
        for (int u = 0; u < out->n_b && status == 0; u++) {
            AnalysisRow row = analysis_row("cka_cross", t, u, "token", ANALYSIS_NULL, ANALYSIS_NULL);
            row.value = out->cka[(size_t)t * out->n_b + u];
            status = analysis_writer_put(w, &row);
        }
    out->rows_written = analysis_writer_rows(w);
    return analysis_writer_end(w, status);
}

int analyze_cross(Store *store, const AnalyzeRun *a, const AnalyzeRun *b, const AnalyzeOptions *o,
                  AnalyzeCross *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->run_a, sizeof out->run_a, "%s", a->run);
    snprintf(out->run_b, sizeof out->run_b, "%s", b->run);
    out->n_a = a->n_states;
    out->n_b = b->n_states;
    int L = a->info.seq_len;
    if (a->info.dataset_id != b->info.dataset_id || strcmp(a->info.split, b->info.split) ||
        L != b->info.seq_len) {
        out->skipped = 1;
        snprintf(out->reason, sizeof out->reason, "the recordings are on different datasets, splits or lengths");
        return 0;
    }
    out->n_stacked = a->n_stacked < b->n_stacked ? a->n_stacked : b->n_stacked;
    int same;
    if (same_windows(store, &a->info, &b->info, out->n_stacked, &same)) return -1;
    if (!same) {
        out->skipped = 1;
        snprintf(out->reason, sizeof out->reason, "the recordings hold different windows of the split");
        return 0;
    }
    size_t rows = (size_t)out->n_stacked * L;
    double **sa = alloc_matrices(out->n_a, rows * a->info.d_model);
    double **sb = alloc_matrices(out->n_b, rows * b->info.d_model);
    out->cka = malloc((size_t)out->n_a * out->n_b * sizeof *out->cka);
    char detail[400];
    snprintf(detail, sizeof detail, "%s vs %s, %zu rows", a->run, b->run, rows);
    double started = seconds_now();
    int status = 0;
    if (!sa || !sb || !out->cka) status = spiral_error("out of memory for cross-run CKA");
    if (status == 0) analyze_progress(o, "analyze cka", "states", 0, out->n_a + out->n_b, started, detail, 0);
    if (status == 0) status = read_stacked(store, &a->info, out->n_a, out->n_stacked, sa);
    if (status == 0) status = read_stacked(store, &b->info, out->n_b, out->n_stacked, sb);
    for (int t = 0; t < out->n_a && status == 0; t++)
        for (int u = 0; u < out->n_b && status == 0; u++)
            if (loopdiag_cka(&out->cka[(size_t)t * out->n_b + u], sa[t], a->info.d_model, sb[u], b->info.d_model,
                             (int)rows))
                status = spiral_error_prefix("CKA between %s h(%d) and %s h(%d)", a->run, t, b->run, u);
    free_matrices(sa, out->n_a);
    free_matrices(sb, out->n_b);
    if (status == 0) status = write_cross(store, a, b, out);
    if (status == 0)
        analyze_progress(o, "analyze cka", "states", out->n_a + out->n_b, out->n_a + out->n_b, started, detail, 1);
    if (status) analyze_cross_free(out);
    return status;
}
