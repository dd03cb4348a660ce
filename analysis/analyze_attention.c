/*
 * analyze_attention.c: part (1) of analyze.h: the recorded attention
 * statistics reduced to per-head means over query rows, their intervals
 * over sequences, the head selection (headsel.h) and the selected heads'
 * statistics per loop step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>


#include "analyze_parts.h"
#include "error.h"
#include "headsel.h"
#include "model.h"

void analyze_mean_over_rows(double *out, const float *stats, int H, int rows, int K) {
    for (int h = 0; h < H; h++) {
        double *mean = out + (size_t)h * K; /* (K) */
        for (int k = 0; k < K; k++) mean[k] = 0;
        for (int i = 0; i < rows; i++) {
            const float *query = stats + ((size_t)h * rows + i) * K; /* (K) */
            for (int k = 0; k < K; k++) mean[k] += query[k];
        }
        for (int k = 0; k < K; k++) mean[k] /= rows;
    }
}

void analyze_stat_kind(char *out, size_t size, const char *prefix, int k, const int *distances) {
    if (k == ANALYZE_DISTANCE) snprintf(out, size, "%sattn_distance", prefix);
    else if (k == ANALYZE_ENTROPY) snprintf(out, size, "%sattn_entropy", prefix);
    else snprintf(out, size, "%sattn_beyond_D%d", prefix, distances[k - 2]);
}

/* What read_attention fills while visiting rows. */
typedef struct {
    Store *store;
    AnalyzeRun *r;
    double *values;          /* (n_units, N, H, K) */
    unsigned char *seen;     /* (n_units, N) */
} AttentionReader;

/* Reduces one row into values; rows of units analyze does not use are skipped. */
static int reduce_row(void *user, const AttentionRow *row) {
    AttentionReader *reader = user;
    const AnalyzeRun *r = reader->r;
    int N = r->n_sequences, H = r->n_heads, K = r->n_stats;
    int u = analyze_unit_of_row(r, row->block, row->step, row->layer);
    if (u < 0 || row->seq < 0) return 0;
    if (row->heads != H || row->rows < 1 || row->bytes != (size_t)row->heads * row->rows * K * sizeof(float))
        return spiral_error("%s: attention statistics of sequence %d, iteration %d, block %s, layer %d: "
                            "%zu bytes for %d heads x %d rows, expected %d heads x %d statistics",
                            reader->store->path, row->seq, row->step, row->block, row->layer, row->bytes,
                            row->heads, row->rows, H, K);
    analyze_mean_over_rows(reader->values + ((size_t)u * N + row->seq) * H * K, row->stats, H, row->rows, K);
    reader->seen[(size_t)u * N + row->seq] = 1;
    return 0;
}

int analyze_read_attention(Store *store, AnalyzeRun *r, double *values, unsigned char *present) {
    int N = r->n_sequences;
    AttentionReader reader = {store, r, values, calloc((size_t)r->n_units * N, 1)};
    if (!reader.seen) return spiral_error("out of memory");
    int status = recording_read_attention(store, &r->info, N, reduce_row, &reader);
    for (int u = 0; status == 0 && u < r->n_units; u++) {
        int count = 0, missing = -1;
        for (int s = 0; s < N; s++) {
            count += reader.seen[(size_t)u * N + s];
            if (!reader.seen[(size_t)u * N + s] && missing < 0) missing = s;
        }
        present[u] = count == N;
        const AnalyzeUnit *unit = &r->units[u];
        if ((count > 0 && count < N) || (count == 0 && unit->block == BLOCK_LOOP))
            status = spiral_error("%s: run %s: no attention statistics for sequence %d, block %s, "
                                  "iteration %d, layer %d (record the run again)", store->path, r->run,
                                  missing, analyze_block_name(unit->block), unit->recorded_iteration,
                                  unit->layer);
    }
    free(reader.seen);
    return status;
}

void analyze_selected_per_sequence(double *out, const AnalyzeRun *r, const double *values, int t, int k) {
    int N = r->n_sequences, H = r->n_heads, K = r->n_stats;
    for (int s = 0; s < N; s++) {
        double sum = 0;
        for (int i = 0; i < r->n_selected; i++) {
            int c = r->order[i], u = analyze_loop_unit(r, t, c / H);
            sum += values[(((size_t)u * N + s) * H + c % H) * K + k];
        }
        out[s] = sum / r->n_selected;
    }
}

int analyze_attention_summary(AnalyzeRun *r, const AnalyzeOptions *o, const double *values,
                              const unsigned char *present, double *per_sequence) {
    int N = r->n_sequences, H = r->n_heads, K = r->n_stats, T = r->n_steps;
    for (int u = 0; u < r->n_units; u++)
        for (int h = 0; h < H; h++)
            for (int k = 0; k < K; k++) {
                MeanInterval *m = &r->head_stats[((size_t)u * H + h) * K + k];
                if (!present[u]) {
                    m->mean = m->lo = m->hi = NAN;
                    continue;
                }
                for (int s = 0; s < N; s++) per_sequence[s] = values[(((size_t)u * N + s) * H + h) * K + k];
                if (stats_mean_ci_bootstrap(m, per_sequence, N, o->level, o->n_resamples, o->seed))
                    return spiral_error_prefix("attention of unit %d, head %d", u, h);
            }
    /* candidates: row l * H + h, value per step = mean over sequences (the
     * relative distance: the mean distance over the step's uniform reference) */
    r->n_candidates = r->layers_per_step * H;
    int k_select = o->select_by == ANALYZE_RELATIVE_DISTANCE ? ANALYZE_DISTANCE : o->select_by;
    for (int c = 0; c < r->n_candidates; c++)
        for (int t = 0; t < T; t++) {
            int u = analyze_loop_unit(r, t, c / H);
            r->candidate_stat[(size_t)c * T + t] = r->head_stats[((size_t)u * H + c % H) * K + k_select].mean;
        }
    if (o->select_by == ANALYZE_RELATIVE_DISTANCE &&
        headsel_relative(r->candidate_stat, r->candidate_stat, r->step_uniform, r->n_candidates, T))
        return spiral_error_prefix("run %s: head selection", r->run);
    if (headsel_select(r->order, &r->n_selected, r->change, r->candidate_stat, r->n_candidates, T,
                       o->fraction, o->measure))
        return spiral_error_prefix("run %s: head selection", r->run);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) {
            analyze_selected_per_sequence(per_sequence, r, values, t, k);
            if (stats_mean_ci_bootstrap(&r->selected[(size_t)t * K + k], per_sequence, N, o->level,
                                        o->n_resamples, o->seed))
                return spiral_error_prefix("selected heads at iteration %d", t);
        }
    return 0;
}
