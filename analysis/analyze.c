/*
 * analyze.c: attention statistics with head selection, loop diagnostics and
 * cross-run CKA of recordings, written to analysis_results (definitions,
 * iteration conventions and the row encoding in analyze.h).
 *
 * Reading: attention_stats rows in one pass (each blob reduced at once to
 * per-head means over its query rows), then the token states sequence by
 * sequence (recording_read_state), keeping only the current and previous h(t)
 * plus the stacked matrices of the first n_stacked sequences. All numbers
 * are computed before the store is written, so a failure leaves the
 * previous results in place.
 */
#include "analyze.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "headsel.h"
#include "loopdiag.h"
#include "model.h"
#include "steps.h"

/* A NULL integer column in a row written to analysis_results. */
enum { ANALYZE_NULL = INT_MIN };

static const char *const block_names[3] = {"pre", "loop", "post"};

void analyze_options_default(AnalyzeOptions *o) {
    memset(o, 0, sizeof *o);
    o->split = "test";
    o->max_rows = 16384;
    o->fraction = HEADSEL_DEFAULT_FRACTION;
    o->measure = HEADSEL_DEFAULT_MEASURE;
    o->select_by = ANALYZE_DISTANCE;
    o->n_resamples = 1000;
    o->level = 0.95;
    o->seed = 1;
}

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

/* Name of statistic k: "attn_distance", "attn_entropy", "attn_beyond_D16",
 * with an optional prefix ("selected_"). */
static void stat_kind(char *out, size_t size, const char *prefix, int k, const int *distances) {
    if (k == ANALYZE_DISTANCE) snprintf(out, size, "%sattn_distance", prefix);
    else if (k == ANALYZE_ENTROPY) snprintf(out, size, "%sattn_entropy", prefix);
    else snprintf(out, size, "%sattn_beyond_D%d", prefix, distances[k - 2]);
}

void analyze_run_free(AnalyzeRun *r) {
    free(r->step_g);
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

/* ------------------------------------------------------------------------ */
/* Writing rows                                                             */

/* Where a row sits: ANALYZE_NULL (or a NULL block) for absent keys. */
typedef struct {
    int iteration, iteration2;
    const char *block;
    int layer, head;
} RowKey;

typedef struct {
    Store *store;
    sqlite3_stmt *insert;
    long long recording_id, run_id;
    long long rows;
} RowWriter;

static RowKey row_key(int iteration, int iteration2, const char *block, int layer, int head) {
    RowKey key = {iteration, iteration2, block, layer, head};
    return key;
}

/* Binds an integer or NULL. */
static void bind_optional_int(sqlite3_stmt *stmt, int column, int value) {
    if (value == ANALYZE_NULL) sqlite3_bind_null(stmt, column);
    else sqlite3_bind_int(stmt, column, value);
}

/* Binds a real or NULL (for NaN). */
static void bind_optional_double(sqlite3_stmt *stmt, int column, double value) {
    if (isnan(value)) sqlite3_bind_null(stmt, column);
    else sqlite3_bind_double(stmt, column, value);
}

/* Inserts one row: value [lo, hi] and an optional float64 array data (n). */
static int put_row(RowWriter *w, const char *kind, RowKey key, double value, double lo, double hi,
                   const double *data, int n) {
    sqlite3_stmt *s = w->insert;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    sqlite3_bind_int64(s, 1, w->recording_id);
    sqlite3_bind_int64(s, 2, w->run_id);
    sqlite3_bind_text(s, 3, kind, -1, SQLITE_TRANSIENT);
    bind_optional_int(s, 4, key.iteration);
    bind_optional_int(s, 5, key.iteration2);
    if (key.block) sqlite3_bind_text(s, 6, key.block, -1, SQLITE_STATIC);
    else sqlite3_bind_null(s, 6);
    bind_optional_int(s, 7, key.layer);
    bind_optional_int(s, 8, key.head);
    bind_optional_double(s, 9, value);
    bind_optional_double(s, 10, lo);
    bind_optional_double(s, 11, hi);
    if (data) sqlite3_bind_blob64(s, 12, data, (size_t)n * sizeof(double), SQLITE_STATIC);
    else sqlite3_bind_null(s, 12);
    if (sqlite3_step(s) != SQLITE_DONE)
        return spiral_error("%s: writing analysis result %s: %s", w->store->path, kind,
                            sqlite3_errmsg(w->store->db));
    w->rows++;
    return 0;
}

/* A row holding a mean with its interval. */
static int put_interval(RowWriter *w, const char *kind, RowKey key, const MeanInterval *m,
                        const double *data, int n) {
    return put_row(w, kind, key, m->mean, m->lo, m->hi, data, n);
}

/* Starts a transaction and prepares the insert statement. */
static int writer_begin(RowWriter *w, Store *store, long long recording_id, long long run_id) {
    memset(w, 0, sizeof *w);
    w->store = store;
    w->recording_id = recording_id;
    w->run_id = run_id;
    if (store_begin(store)) return -1;
    if (sqlite3_prepare_v2(store->db,
                           "INSERT INTO analysis_results(recording_id, run_id, kind, iteration,"
                           " iteration2, block, layer, head, value, ci_lo, ci_hi, data)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", -1, &w->insert, NULL) != SQLITE_OK) {
        spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
        store_rollback(store);
        return -1;
    }
    return 0;
}

/* Commits (status 0) or rolls back. */
static int writer_end(RowWriter *w, int status) {
    sqlite3_finalize(w->insert);
    w->insert = NULL;
    if (status == 0 && store_commit(w->store) == 0) return 0;
    store_rollback(w->store);
    return -1;
}

/* Runs a DELETE with (recording_id, second id) bound to ?1 and ?2. */
static int delete_rows(Store *store, const char *sql, long long first, long long second) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, first);
    if (sqlite3_bind_parameter_count(stmt) > 1) sqlite3_bind_int64(stmt, 2, second);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return spiral_error("%s: deleting old analysis results: %s", store->path, sqlite3_errmsg(store->db));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The recording                                                            */

/* Reads the recording's distances (JSON "[4,16,64]") and status. */
static int read_recording_meta(Store *store, AnalyzeRun *r, char *status, size_t status_size) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db, "SELECT distances, status FROM recordings WHERE id=?", -1, &stmt,
                           NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, r->info.id);
    int found = sqlite3_step(stmt) == SQLITE_ROW;
    char text[256] = "";
    if (found) {
        snprintf(text, sizeof text, "%s", (const char *)sqlite3_column_text(stmt, 0));
        snprintf(status, status_size, "%s", (const char *)sqlite3_column_text(stmt, 1));
    }
    sqlite3_finalize(stmt);
    if (!found) return spiral_error("%s: recording %lld vanished", store->path, r->info.id);
    json_error_t error;
    json_t *array = json_loads(text, 0, &error);
    int ok = array && json_is_array(array) && json_array_size(array) <= RECORD_MAX_DISTANCES;
    r->n_distances = 0;
    for (size_t i = 0; ok && i < json_array_size(array); i++) {
        json_t *item = json_array_get(array, i);
        ok = json_is_integer(item);
        if (ok) r->distances[r->n_distances++] = (int)json_integer_value(item);
    }
    json_decref(array);
    if (!ok)
        return spiral_error("%s: recording %lld: distances '%s' is not a JSON array of at most %d integers",
                            store->path, r->info.id, text, RECORD_MAX_DISTANCES);
    r->n_stats = 2 + r->n_distances;
    return 0;
}

/* Lays out the layer applications (analyze.h: steps and layers). */
static int build_units(AnalyzeRun *r) {
    const SpiralConfig *c = &r->cfg;
    int dense = model_kind(c) == KIND_DENSE;
    r->n_steps = loop_steps(c);
    r->layers_per_step = loop_layers_per_step(c);
    r->n_units = c->n_pre + r->n_steps * r->layers_per_step + c->n_post;
    r->units = calloc((size_t)r->n_units, sizeof *r->units);
    r->step_g = calloc((size_t)r->n_steps, sizeof *r->step_g);
    if (!r->units || !r->step_g) return spiral_error("out of memory");
    int u = 0;
    for (int l = 0; l < c->n_pre; l++) r->units[u++] = (AnalyzeUnit){BLOCK_PRE, -1, l, -1, 1};
    for (int t = 0; t < r->n_steps; t++) {
        r->step_g[t] = step_chunk_size(c, t);
        for (int l = 0; l < r->layers_per_step; l++)
            r->units[u++] = (AnalyzeUnit){BLOCK_LOOP, t, l, dense ? t + 1 : t, r->step_g[t]};
    }
    for (int l = 0; l < c->n_post; l++) r->units[u++] = (AnalyzeUnit){BLOCK_POST, -1, l, -1, 1};
    return 0;
}

/* Unit of an attention_stats row, or -1 for a row analyze does not use.
 * Prelude and coda rows are blocks 'pre' and 'post' for every kind; a dense
 * recording stores core layer l as block 'loop', iteration l + 1, layer 0
 * (record.c). */
static int unit_of_row(const AnalyzeRun *r, const char *block, int iteration, int layer) {
    int dense = model_kind(&r->cfg) == KIND_DENSE;
    int loop_base = r->cfg.n_pre, post_base = r->cfg.n_pre + r->n_steps * r->layers_per_step;
    if (!strcmp(block, "pre")) return layer >= 0 && layer < r->cfg.n_pre ? layer : -1;
    if (!strcmp(block, "post")) return layer >= 0 && layer < r->cfg.n_post ? post_base + layer : -1;
    if (strcmp(block, "loop")) return -1;
    int step = dense ? iteration - 1 : iteration;
    if (step < 0 || step >= r->n_steps || layer < 0 || layer >= r->layers_per_step) return -1;
    return loop_base + step * r->layers_per_step + layer;
}

/* Reads every attention_stats row of the first N sequences into
 * values (n_units, N, H, K): per-head means over query rows. present
 * (n_units) gets 1 for the units with every sequence. */
static int read_attention(Store *store, AnalyzeRun *r, double *values, unsigned char *present) {
    int N = r->n_sequences, H = r->n_heads, K = r->n_stats;
    unsigned char *seen = calloc((size_t)r->n_units * N, 1); /* (n_units, N) */
    if (!seen) return spiral_error("out of memory");
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT seq, iteration, block, layer, heads, rows, stats FROM attention_stats"
                           " WHERE recording_id=? AND seq<?", -1, &stmt, NULL) != SQLITE_OK) {
        free(seen);
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    }
    sqlite3_bind_int64(stmt, 1, r->info.id);
    sqlite3_bind_int(stmt, 2, N);
    int status = 0, rc = SQLITE_DONE;
    while (status == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int seq = sqlite3_column_int(stmt, 0), iteration = sqlite3_column_int(stmt, 1);
        const char *block = (const char *)sqlite3_column_text(stmt, 2);
        int layer = sqlite3_column_int(stmt, 3), heads = sqlite3_column_int(stmt, 4);
        int rows = sqlite3_column_int(stmt, 5);
        int u = unit_of_row(r, block ? block : "", iteration, layer);
        if (u < 0 || seq < 0) continue;
        size_t bytes = (size_t)sqlite3_column_bytes(stmt, 6);
        if (heads != H || rows < 1 || bytes != (size_t)heads * rows * K * sizeof(float)) {
            status = spiral_error("%s: attention statistics of sequence %d, iteration %d, block %s, layer %d: "
                                  "%zu bytes for %d heads x %d rows, expected %d heads x %d statistics",
                                  store->path, seq, iteration, block, layer, bytes, heads, rows, H, K);
            break;
        }
        /* the blob's alignment is SQLite's; copy before reading floats */
        float *stats = malloc(bytes);
        if (!stats) {
            status = spiral_error("out of memory");
            break;
        }
        memcpy(stats, sqlite3_column_blob(stmt, 6), bytes);
        analyze_mean_over_rows(values + ((size_t)u * N + seq) * H * K, stats, H, rows, K);
        free(stats);
        seen[(size_t)u * N + seq] = 1;
    }
    if (status == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        status = spiral_error("%s: reading attention statistics: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_finalize(stmt);
    for (int u = 0; status == 0 && u < r->n_units; u++) {
        int count = 0, missing = -1;
        for (int s = 0; s < N; s++) {
            count += seen[(size_t)u * N + s];
            if (!seen[(size_t)u * N + s] && missing < 0) missing = s;
        }
        present[u] = count == N;
        const AnalyzeUnit *unit = &r->units[u];
        if ((count > 0 && count < N) || (count == 0 && unit->block == BLOCK_LOOP))
            status = spiral_error("%s: run %s: no attention statistics for sequence %d, block %s, "
                                  "iteration %d, layer %d (record the run again)", store->path, r->run,
                                  missing, block_names[unit->block], unit->recorded_iteration, unit->layer);
    }
    free(seen);
    return status;
}

/* Index of unit (step t, layer l) of the loop. */
static int loop_unit(const AnalyzeRun *r, int t, int l) {
    return r->cfg.n_pre + t * r->layers_per_step + l;
}

/* y_s(t, k) = mean over the selected heads of x_s(step t, head, k), for
 * every sequence s: out (N) from values (n_units, N, H, K). */
static void selected_per_sequence(double *out, const AnalyzeRun *r, const double *values, int t, int k) {
    int N = r->n_sequences, H = r->n_heads, K = r->n_stats;
    for (int s = 0; s < N; s++) {
        double sum = 0;
        for (int i = 0; i < r->n_selected; i++) {
            int c = r->order[i], u = loop_unit(r, t, c / H);
            sum += values[(((size_t)u * N + s) * H + c % H) * K + k];
        }
        out[s] = sum / r->n_selected;
    }
}

/* Part (1): per-head intervals, head selection, selected heads per step.
 * values (n_units, N, H, K). */
static int attention_summary(AnalyzeRun *r, const AnalyzeOptions *o, const double *values,
                             const unsigned char *present, double *per_sequence /* (N) */) {
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
    /* candidates: row l * H + h, value per step = mean over sequences */
    r->n_candidates = r->layers_per_step * H;
    for (int c = 0; c < r->n_candidates; c++)
        for (int t = 0; t < T; t++) {
            int u = loop_unit(r, t, c / H);
            r->candidate_stat[(size_t)c * T + t] = r->head_stats[((size_t)u * H + c % H) * K + o->select_by].mean;
        }
    if (headsel_select(r->order, &r->n_selected, r->change, r->candidate_stat, r->n_candidates, T,
                       o->fraction, o->measure))
        return spiral_error_prefix("run %s: head selection", r->run);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) {
            selected_per_sequence(per_sequence, r, values, t, k);
            if (stats_mean_ci_bootstrap(&r->selected[(size_t)t * K + k], per_sequence, N, o->level,
                                        o->n_resamples, o->seed))
                return spiral_error_prefix("selected heads at iteration %d", t);
        }
    return 0;
}

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

/* Allocates n matrices of `count` doubles (NULL entries on failure). */
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

/* Number of sequences stacked for CKA and spectra. */
static int stacked_count(int n_sequences, int L, int max_rows) {
    int n = max_rows / L;
    if (n < 1) n = 1;
    return n < n_sequences ? n : n_sequences;
}

/* Part (2): update sizes per sequence; CKA, spectra and effective ranks of
 * the stacked states. updates (n_states - 1, N) receives r_s(t). */
static int loop_diagnostics(Store *store, AnalyzeRun *r, const AnalyzeOptions *o, double *updates) {
    int N = r->n_sequences, S = r->n_states, L = r->info.seq_len, d = r->info.d_model;
    size_t per_seq = (size_t)L * d;
    r->n_stacked = stacked_count(N, L, o->max_rows);
    size_t stacked_rows = (size_t)r->n_stacked * L;
    double **stacked = alloc_matrices(S, stacked_rows * d);
    float *buffer = malloc(per_seq * sizeof *buffer);
    double *previous = malloc(per_seq * sizeof *previous), *current = malloc(per_seq * sizeof *current);
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
        if (o->progress && (s + 1) % 100 == 0) fprintf(stderr, "analyze %s: states of %d/%d sequences\n", r->run, s + 1, N);
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

/* Writes every row of the run (analyze.h's table) in one transaction,
 * replacing the recording's previous rows of these kinds. */
static int write_results(Store *store, AnalyzeRun *r, const double *values, const double *updates,
                         double *per_sequence) {
    int N = r->n_sequences, H = r->n_heads, K = r->n_stats, T = r->n_steps, S = r->n_states;
    RowWriter w;
    if (writer_begin(&w, store, r->info.id, r->info.run_id)) return -1;
    int status = delete_rows(store,
                             "DELETE FROM analysis_results WHERE recording_id=?1 AND (kind IN"
                             " ('attn_distance', 'attn_entropy', 'head_change', 'head_selected',"
                             " 'selected_attn_distance', 'selected_attn_entropy', 'update_size', 'cka',"
                             " 'effective_rank', 'spectrum') OR kind LIKE 'attn_beyond_D%'"
                             " OR kind LIKE 'selected_attn_beyond_D%')", r->info.id, 0);
    char kind[64];
    /* per-head statistics of every layer application */
    for (int u = 0; u < r->n_units && status == 0; u++) {
        const AnalyzeUnit *unit = &r->units[u];
        if (isnan(r->head_stats[(size_t)u * H * K].mean)) continue; /* not recorded */
        for (int h = 0; h < H && status == 0; h++)
            for (int k = 0; k < K && status == 0; k++) {
                for (int s = 0; s < N; s++) per_sequence[s] = values[(((size_t)u * N + s) * H + h) * K + k];
                stat_kind(kind, sizeof kind, "", k, r->distances);
                RowKey key = row_key(unit->step >= 0 ? unit->step : ANALYZE_NULL, ANALYZE_NULL,
                                     block_names[unit->block], unit->layer, h);
                status = put_interval(&w, kind, key, &r->head_stats[((size_t)u * H + h) * K + k], per_sequence, N);
            }
    }
    /* head selection: candidate c is (layer c / H, head c % H); dense: head slot c */
    int dense = model_kind(&r->cfg) == KIND_DENSE;
    for (int c = 0; c < r->n_candidates && status == 0; c++) {
        RowKey key = row_key(ANALYZE_NULL, ANALYZE_NULL, "loop", dense ? ANALYZE_NULL : c / H, c % H);
        status = put_row(&w, "head_change", key, r->change[c], NAN, NAN, NULL, 0);
    }
    for (int i = 0; i < r->n_selected && status == 0; i++) {
        int c = r->order[i];
        RowKey key = row_key(ANALYZE_NULL, ANALYZE_NULL, "loop", dense ? ANALYZE_NULL : c / H, c % H);
        status = put_row(&w, "head_selected", key, i + 1, NAN, NAN, NULL, 0);
    }
    /* the selected heads per step (per-sequence values recomputed, not kept) */
    for (int t = 0; t < T && status == 0; t++)
        for (int k = 0; k < K && status == 0; k++) {
            selected_per_sequence(per_sequence, r, values, t, k);
            stat_kind(kind, sizeof kind, "selected_", k, r->distances);
            RowKey key = row_key(t, ANALYZE_NULL, "loop", ANALYZE_NULL, ANALYZE_NULL);
            status = put_interval(&w, kind, key, &r->selected[(size_t)t * K + k], per_sequence, N);
        }
    /* loop diagnostics */
    for (int t = 0; t + 1 < S && status == 0; t++)
        status = put_interval(&w, "update_size", row_key(t, ANALYZE_NULL, "token", ANALYZE_NULL, ANALYZE_NULL),
                              &r->update[t], updates + (size_t)t * N, N);
    for (int t = 0; t < S && status == 0; t++)
        for (int u = 0; u < S && status == 0; u++)
            status = put_row(&w, "cka", row_key(t, u, "token", ANALYZE_NULL, ANALYZE_NULL),
                             r->cka[(size_t)t * S + u], NAN, NAN, NULL, 0);
    for (int t = 0; t < S && status == 0; t++) {
        RowKey key = row_key(t, ANALYZE_NULL, "token", ANALYZE_NULL, ANALYZE_NULL);
        const double *p = r->spectrum + (size_t)t * r->spectrum_k;
        status = put_row(&w, "effective_rank", key, r->effective_rank[t], NAN, NAN, NULL, 0);
        if (status == 0) status = put_row(&w, "spectrum", key, p[0], NAN, NAN, p, r->spectrum_k);
    }
    r->rows_written = w.rows;
    return writer_end(&w, status);
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
    if (o->select_by != ANALYZE_DISTANCE && o->select_by != ANALYZE_ENTROPY)
        return spiral_error("select_by must be distance (%d) or entropy (%d)", ANALYZE_DISTANCE, ANALYZE_ENTROPY);
    if (o->max_rows < 1 || o->n_resamples < 1 || !(o->level > 0 && o->level < 1))
        return spiral_error("max_rows and resamples must be >= 1 and level in (0, 1)");
    snprintf(r.run, sizeof r.run, "%s", run_name);
    snprintf(r.dataset, sizeof r.dataset, "%s", dataset_name);
    if (store_run_find(store, run_name, &run) || recording_find(store, run_name, dataset_name, o->split, &r.info))
        goto done;
    char source[1400], recording_status[16] = "";
    snprintf(source, sizeof source, "%s: run %s", store->path, run_name);
    if (config_parse(&r.cfg, run.config, source)) goto done;
    snprintf(r.kind, sizeof r.kind, "%s", model_kind_name(model_kind(&r.cfg)));
    if (read_recording_meta(store, &r, recording_status, sizeof recording_status)) goto done;
    if (strcmp(recording_status, "done")) {
        spiral_error("%s: the recording of run %s on %s (%s split) is %s, not done: complete it by running "
                     "the same 'spiral record' command again", store->path, run_name, dataset_name, o->split,
                     recording_status);
        goto done;
    }
    if (r.info.d_model != r.cfg.d_model) {
        spiral_error("%s: recording of run %s has d_model %d, the run's model %d", store->path, run_name,
                     r.info.d_model, r.cfg.d_model);
        goto done;
    }
    r.n_sequences = o->max_sequences > 0 && o->max_sequences < r.info.n_sequences ? o->max_sequences
                                                                                  : r.info.n_sequences;
    r.n_heads = r.cfg.n_heads;
    r.select_by = o->select_by;
    r.measure = o->measure;
    r.fraction = o->fraction;
    r.level = o->level;
    if (build_units(&r)) goto done;
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
    if (o->progress)
        fprintf(stderr, "analyze %s: attention statistics of %d sequences (%d layer applications)\n", run_name,
                N, r.n_units);
    if (read_attention(store, &r, values, present) || attention_summary(&r, o, values, present, per_sequence))
        goto done;
    if (o->progress) fprintf(stderr, "analyze %s: states h(0..%d) of %d sequences\n", run_name, T, N);
    if (loop_diagnostics(store, &r, o, updates)) goto done;
    if (write_results(store, &r, values, updates, per_sequence)) goto done;
    if (o->progress) fprintf(stderr, "analyze %s: wrote %lld rows\n", run_name, r.rows_written);
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

/* ------------------------------------------------------------------------ */
/* Cross-run CKA                                                            */

void analyze_cross_free(AnalyzeCross *cross) {
    free(cross->cka);
    memset(cross, 0, sizeof *cross);
}

/* 1 if the first n sequences of both recordings are the same windows. */
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
    int status = 0;
    if (!sa || !sb || !out->cka) status = spiral_error("out of memory for cross-run CKA");
    if (status == 0 && o->progress)
        fprintf(stderr, "analyze: CKA between %s and %s over %zu rows\n", a->run, b->run, rows);
    if (status == 0) status = read_stacked(store, &a->info, out->n_a, out->n_stacked, sa);
    if (status == 0) status = read_stacked(store, &b->info, out->n_b, out->n_stacked, sb);
    for (int t = 0; t < out->n_a && status == 0; t++)
        for (int u = 0; u < out->n_b && status == 0; u++)
            if (loopdiag_cka(&out->cka[(size_t)t * out->n_b + u], sa[t], a->info.d_model, sb[u], b->info.d_model,
                             (int)rows))
                status = spiral_error_prefix("CKA between %s h(%d) and %s h(%d)", a->run, t, b->run, u);
    free_matrices(sa, out->n_a);
    free_matrices(sb, out->n_b);
    if (status == 0) {
        RowWriter w;
        status = writer_begin(&w, store, a->info.id, b->info.run_id);
        if (status == 0) {
            status = delete_rows(store, "DELETE FROM analysis_results WHERE recording_id=?1 AND run_id=?2"
                                        " AND kind='cka_cross'", a->info.id, b->info.run_id);
            for (int t = 0; t < out->n_a && status == 0; t++)
                for (int u = 0; u < out->n_b && status == 0; u++)
                    status = put_row(&w, "cka_cross", row_key(t, u, "token", ANALYZE_NULL, ANALYZE_NULL),
                                     out->cka[(size_t)t * out->n_b + u], NAN, NAN, NULL, 0);
            out->rows_written = w.rows;
            status = writer_end(&w, status);
        }
    }
    if (status) analyze_cross_free(out);
    return status;
}

/* ------------------------------------------------------------------------ */
/* Reports                                                                  */

/* "12.31 [11.90, 12.70]" with `decimals` digits. */
static void format_interval(char *out, size_t size, const MeanInterval *m, int decimals) {
    snprintf(out, size, "%.*f [%.*f, %.*f]", decimals, m->mean, decimals, m->lo, decimals, m->hi);
}

/* Decimals for statistic k: distances in tokens 2, entropies and masses 3. */
static int stat_decimals(int k) { return k == ANALYZE_DISTANCE ? 2 : 3; }

/* Column title of statistic k. */
static void stat_title(char *out, size_t size, int k, const int *distances) {
    if (k == ANALYZE_DISTANCE) snprintf(out, size, "distance (tokens)");
    else if (k == ANALYZE_ENTROPY) snprintf(out, size, "entropy (nats)");
    else snprintf(out, size, "mass beyond %d", distances[k - 2]);
}

/* Prints a (rows, cols) matrix with row labels "h(t)". */
static void print_matrix(FILE *f, const double *m, int rows, int cols, const char *row_prefix) {
    fprintf(f, "  %-12s", "");
    for (int u = 0; u < cols; u++) {
        char label[16];
        snprintf(label, sizeof label, "h(%d)", u);
        fprintf(f, " %9s", label);
    }
    fputc('\n', f);
    for (int t = 0; t < rows; t++) {
        char label[64];
        snprintf(label, sizeof label, "%sh(%d)", row_prefix, t);
        fprintf(f, "  %-12s", label);
        for (int u = 0; u < cols; u++) fprintf(f, " %9.4f", m[(size_t)t * cols + u]);
        fputc('\n', f);
    }
}

void analyze_print_run(FILE *f, const AnalyzeRun *r) {
    int H = r->n_heads, K = r->n_stats, T = r->n_steps, dense = model_kind(&r->cfg) == KIND_DENSE;
    char text[96], title[64];
    fprintf(f, "== run %s (%s): %s split of %s, %d of %d recorded sequences x %d tokens\n", r->run, r->kind,
            r->info.split, r->dataset, r->n_sequences, r->info.n_sequences, r->info.seq_len);
    fprintf(f, "\nattention: %d of %d %s selected (fraction %g, ranked by the %s of the mean %s across %s)\n",
            r->n_selected, r->n_candidates, dense ? "head slots" : "core heads", r->fraction,
            r->measure == HEADSEL_RANGE ? "range" : "standard deviation",
            r->select_by == ANALYZE_DISTANCE ? "distance" : "entropy",
            dense ? "layers, each layer an iteration" : "iterations");
    for (int i = 0; i < r->n_candidates; i++) {
        int c = r->order[i];
        if (dense) fprintf(f, "  %s head %d: change %.3f", i < r->n_selected ? "*" : " ", c % H, r->change[c]);
        else fprintf(f, "  %s layer %d head %d: change %.3f", i < r->n_selected ? "*" : " ", c / H, c % H,
                     r->change[c]);
        fprintf(f, "   per iteration:");
        for (int t = 0; t < T; t++) fprintf(f, " %.2f", r->candidate_stat[(size_t)c * T + t]);
        fputc('\n', f);
    }
    fprintf(f, "\nselected heads per iteration (mean, %.0f%% bootstrap CI over %d sequences):\n",
            100 * r->level, r->n_sequences);
    fprintf(f, "  %4s %4s", "iter", "g");
    for (int k = 0; k < K; k++) {
        stat_title(title, sizeof title, k, r->distances);
        fprintf(f, k + 1 < K ? "  %-26s" : "  %s", title);
    }
    fputc('\n', f);
    for (int t = 0; t < T; t++) {
        fprintf(f, "  %4d %4d", t, r->step_g[t]);
        for (int k = 0; k < K; k++) {
            format_interval(text, sizeof text, &r->selected[(size_t)t * K + k], stat_decimals(k));
            fprintf(f, k + 1 < K ? "  %-26s" : "  %s", text);
        }
        fputc('\n', f);
    }
    fprintf(f, "\nloop diagnostics on the token states h(t), t = 0..%d:\n", T);
    fprintf(f, "  %-8s %-32s %-14s %s\n", "state", "update ||h(t+1)-h(t)||/||h(t)||", "effective rank",
            "top singular share");
    for (int t = 0; t < r->n_states; t++) {
        if (t + 1 < r->n_states) format_interval(text, sizeof text, &r->update[t], 4);
        else snprintf(text, sizeof text, "-");
        char label[32];
        snprintf(label, sizeof label, "h(%d)", t);
        fprintf(f, "  %-8s %-32s %-14.3f %.4f\n", label, text, r->effective_rank[t],
                r->spectrum[(size_t)t * r->spectrum_k]);
    }
    fprintf(f, "  (update: mean and CI over %d sequences; effective rank and spectrum of the stacked\n"
               "   %d x %d matrix of %d sequences, uncentered)\n",
            r->n_sequences, r->n_stacked * r->info.seq_len, r->info.d_model, r->n_stacked);
    fprintf(f, "\nlinear CKA between h(t) and h(u) (%d stacked tokens):\n", r->n_stacked * r->info.seq_len);
    print_matrix(f, r->cka, r->n_states, r->n_states, "");
    fprintf(f, "(%lld rows in analysis_results)\n\n", r->rows_written);
}

void analyze_print_side_by_side(FILE *f, const AnalyzeRun *runs, int n_runs) {
    int T = 0;
    for (int i = 0; i < n_runs; i++) T = runs[i].n_steps > T ? runs[i].n_steps : T;
    for (int k = 0; k < 2; k++) {
        fprintf(f, "== side by side: selected heads' mean %s per iteration (%.0f%% CI)\n",
                k == ANALYZE_DISTANCE ? "attention distance (tokens)" : "attention entropy (nats)",
                100 * runs[0].level);
        fprintf(f, "  %4s", "iter");
        for (int i = 0; i < n_runs; i++) {
            char head[200];
            snprintf(head, sizeof head, "%s (%s)", runs[i].run, runs[i].kind);
            fprintf(f, i + 1 < n_runs ? "  %-30s" : "  %s", head);
        }
        fputc('\n', f);
        for (int t = 0; t < T; t++) {
            fprintf(f, "  %4d", t);
            for (int i = 0; i < n_runs; i++) {
                char text[96] = "-";
                if (t < runs[i].n_steps) {
                    char interval[80];
                    format_interval(interval, sizeof interval, &runs[i].selected[(size_t)t * runs[i].n_stats + k],
                                    stat_decimals(k));
                    snprintf(text, sizeof text, "g=%-2d %s", runs[i].step_g[t], interval);
                }
                fprintf(f, i + 1 < n_runs ? "  %-30s" : "  %s", text);
            }
            fputc('\n', f);
        }
        fputc('\n', f);
    }
}

void analyze_print_cross(FILE *f, const AnalyzeCross *c) {
    if (c->skipped) {
        fprintf(f, "== CKA %s vs %s: skipped: %s\n\n", c->run_a, c->run_b, c->reason);
        return;
    }
    fprintf(f, "== linear CKA between %s's h(t) (rows) and %s's h(u) (columns), %d sequences:\n", c->run_a,
            c->run_b, c->n_stacked);
    print_matrix(f, c->cka, c->n_a, c->n_b, "");
    fputc('\n', f);
}
