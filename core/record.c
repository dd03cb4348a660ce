/*
 * record.c: recording hidden states and attention statistics into the store
 * (see record.h for what is recorded and why).
 *
 * The model's observer hook hands every state to observe_event() as the
 * forward pass produces it; the event is converted (float32 or float16) and
 * inserted at once with prepared statements inside the batch's transaction,
 * so no copy of the whole batch's states is held.
 */
#include "record.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "dataset.h"
#include "error.h"
#include "filehash.h"
#include "model.h"
#include "train_config.h"

void record_options_default(RecordOptions *o) {
    memset(o, 0, sizeof *o);
    o->split = "test";
    o->n_sequences = 500;
    o->batch_size = 8;
    o->n_distances = 3;
    o->distances[0] = 4;
    o->distances[1] = 16;
    o->distances[2] = 64;
}

/* Everything the observer callback needs while a batch runs. */
typedef struct {
    Store *store;
    const SpiralConfig *cfg;
    int dense;                    /* every core layer counts as an iteration */
    long long recording_id;
    const int *batch_seq;         /* (B) sequence index of each batch row */
    int f16;
    const RecordOptions *options;
    sqlite3_stmt *insert_state, *insert_stats;
    void *buffer;                 /* conversion buffer, rows x cols values */
    float *stats;                 /* (H, rows, 2 + n_distances) */
    double bytes;                 /* state bytes written */
    double store_seconds;         /* time converting and inserting states */
    int failed;                   /* an insert failed; spiral_error is set */
} Recorder;

static double seconds_now(void);

static const char *block_names[3] = {"pre", "loop", "post"};

/* Inserts one (rows x cols) state of batch row b. */
static void insert_state(Recorder *r, int b, int iteration, const char *site, int scale,
                         const ObserveEvent *e) {
    if (r->failed) return;
    double start = seconds_now();
    size_t count = (size_t)e->rows * e->cols;
    const real *src = e->data + (size_t)b * count;
    size_t bytes;
    const void *blob = r->buffer;
    if (r->f16) {
        _Float16 *h = r->buffer;
        for (size_t i = 0; i < count; i++) h[i] = (_Float16)src[i];
        bytes = count * 2;
    } else if (sizeof(real) == sizeof(float)) {
        blob = src; /* already float32: SQLite copies it from the model's buffer */
        bytes = count * 4;
    } else {
        float *f = r->buffer;
        for (size_t i = 0; i < count; i++) f[i] = (float)src[i];
        bytes = count * 4;
    }
    sqlite3_stmt *s = r->insert_state;
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, r->recording_id);
    sqlite3_bind_int(s, 2, r->batch_seq[b]);
    sqlite3_bind_int(s, 3, iteration);
    sqlite3_bind_text(s, 4, site, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, scale);
    sqlite3_bind_int(s, 6, e->rows);
    sqlite3_bind_int(s, 7, e->cols);
    sqlite3_bind_text(s, 8, r->f16 ? "f16" : "f32", -1, SQLITE_STATIC);
    sqlite3_bind_blob64(s, 9, blob, bytes, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) {
        spiral_error("%s: inserting a state: %s", r->store->path, sqlite3_errmsg(r->store->db));
        r->failed = 1;
    }
    r->bytes += (double)bytes;
    r->store_seconds += seconds_now() - start;
}

/* Attention statistics of batch row b, per head and query row i, with p the
 * token position of each row:
 *   distance_i = sum_j P_ij (p_i - p_j)          (token units)
 *   entropy_i  = -sum_j P_ij log P_ij            (nats)
 *   beyond_i(D) = sum_{j : p_i - p_j > D} P_ij. */
static void insert_attention(Recorder *r, int b, int iteration, int layer, const ObserveEvent *e) {
    if (r->failed) return;
    int n = e->rows, H = e->heads, K = 2 + r->options->n_distances;
    for (int h = 0; h < H; h++) {
        const real *P = e->data + ((size_t)b * H + h) * n * n;
        for (int i = 0; i < n; i++) {
            const real *row = P + (size_t)i * n;
            double distance = 0, entropy = 0, beyond[RECORD_MAX_DISTANCES] = {0};
            for (int j = 0; j <= i; j++) {
                double p = row[j], gap = e->pos[i] - e->pos[j];
                if (p <= 0) continue;
                distance += p * gap;
                entropy -= p * log(p);
                for (int k = 0; k < r->options->n_distances; k++)
                    if (gap > r->options->distances[k]) beyond[k] += p;
            }
            float *out = r->stats + ((size_t)h * n + i) * K;
            out[0] = (float)distance;
            out[1] = (float)entropy;
            for (int k = 0; k < r->options->n_distances; k++) out[2 + k] = (float)beyond[k];
        }
    }
    sqlite3_stmt *s = r->insert_stats;
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, r->recording_id);
    sqlite3_bind_int(s, 2, r->batch_seq[b]);
    sqlite3_bind_int(s, 3, iteration);
    sqlite3_bind_text(s, 4, block_names[e->block], -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, layer);
    sqlite3_bind_int(s, 6, e->g);
    sqlite3_bind_int(s, 7, H);
    sqlite3_bind_int(s, 8, n);
    sqlite3_bind_blob64(s, 9, r->stats, (size_t)H * n * K * sizeof(float), SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) {
        spiral_error("%s: inserting attention statistics: %s", r->store->path,
                     sqlite3_errmsg(r->store->db));
        r->failed = 1;
    }
}

/* The observer: maps each event to the sites of record.h. */
static void observe_event(void *user, const ObserveEvent *e) {
    Recorder *r = user;
    const SpiralConfig *cfg = r->cfg;
    for (int b = 0; b < e->B; b++) {
        switch (e->site) {
        case OBSERVE_STATE:
            /* dense: h(1) is the last layer's output, recorded as LAYER_OUT */
            if (!r->dense || e->iteration == 0) insert_state(r, b, e->iteration, "token", 1, e);
            break;
        case OBSERVE_LATENT_IN:
        case OBSERVE_LATENT_OUT: {
            const IterSpec *spec = &cfg->schedule[e->iteration];
            if (r->dense || (spec->g == 1 && spec->shift == 0)) break;
            insert_state(r, b, e->iteration,
                         e->site == OBSERVE_LATENT_IN ? "latent_in" : "latent_out", e->g, e);
            break;
        }
        case OBSERVE_CODA:
            insert_state(r, b, r->dense ? cfg->n_loop : cfg->n_iters, "coda", 1, e);
            break;
        case OBSERVE_LAYER_OUT:
            if (r->dense && e->block == BLOCK_LOOP) insert_state(r, b, e->layer + 1, "token", 1, e);
            break;
        case OBSERVE_ATTENTION:
            if (r->dense && e->block == BLOCK_LOOP)
                insert_attention(r, b, e->layer + 1, 0, e);
            else
                insert_attention(r, b, e->iteration, e->layer, e);
            break;
        }
    }
}

/* Split name -> SPLIT_*, or -1. */
static int split_from_name(const char *name) {
    for (int s = 0; s < SPLIT_COUNT; s++)
        if (!strcmp(name, dataset_split_name(s))) return s;
    return -1;
}

/* The distances as JSON text "[4,16,64]". */
static void distances_json(char *out, size_t size, const RecordOptions *o) {
    size_t used = (size_t)snprintf(out, size, "[");
    for (int k = 0; k < o->n_distances && used < size; k++)
        used += (size_t)snprintf(out + used, size - used, "%s%d", k ? "," : "", o->distances[k]);
    if (used < size) snprintf(out + used, size - used, "]");
}

/* Loads the run's last checkpoint into a built model, after checking its
 * sha256 and that its config is the run's. */
static int load_run_model(Store *store, const RunRow *run, const SpiralConfig *cfg, Model *model,
                          long long *step) {
    char *path = NULL, *sha = NULL;
    if (store_checkpoint_last(store, run->id, step, &path, &sha)) return -1;
    if (!path)
        return spiral_error("run %s has no checkpoint yet: train it first ('spiral train')",
                            run->name);
    int status = file_sha256_verify(path, sha);
    SpiralConfig file_cfg;
    ParamLayout layout = {0};
    real *values = NULL;
    if (status == 0) status = weights_load(path, &file_cfg, &layout, &values);
    if (status == 0 && memcmp(&file_cfg, cfg, sizeof file_cfg) != 0)
        status = spiral_error("%s: the checkpoint's config does not match run %s's config", path,
                              run->name);
    if (status == 0) status = model_build(model, cfg);
    if (status == 0) memcpy(model->params, values, model->layout.n_params * sizeof(real));
    free(values);
    param_layout_free(&layout);
    free(path);
    free(sha);
    return status;
}

/* Finds or creates the recording row; fills *done (n_sequences) with 1 for
 * the sequences already recorded. */
static int open_recording(Store *store, const RunRow *run, long long dataset_id,
                          const char *split, int L, int n_seqs, const RecordOptions *o,
                          long long step, int d, long long *recording_id, unsigned char *done) {
    char distances[128];
    distances_json(distances, sizeof distances, o);
    const char *dtype = o->f16 ? "f16" : "f32";
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT id, seq_len, n_sequences, dtype, checkpoint_step, distances"
                           " FROM recordings WHERE run_id=? AND dataset_id=? AND split=?",
                           -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, run->id);
    sqlite3_bind_int64(stmt, 2, dataset_id);
    sqlite3_bind_text(stmt, 3, split, -1, SQLITE_STATIC);
    long long existing = 0;
    int same = 0;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        existing = sqlite3_column_int64(stmt, 0);
        same = sqlite3_column_int(stmt, 1) == L && sqlite3_column_int(stmt, 2) == n_seqs &&
               !strcmp((const char *)sqlite3_column_text(stmt, 3), dtype) &&
               sqlite3_column_int64(stmt, 4) == step &&
               !strcmp((const char *)sqlite3_column_text(stmt, 5), distances);
    }
    sqlite3_finalize(stmt);
    if (existing && !same && !o->replace)
        return spiral_error("run %s already has a recording on this dataset's %s split with other "
                            "settings (sequences, length, dtype, checkpoint or distances); "
                            "use --replace to record it again", run->name, split);
    if (store_begin(store)) return -1;
    if (existing && !same) {
        char sql[128];
        snprintf(sql, sizeof sql, "DELETE FROM recordings WHERE id=%lld", existing);
        if (store_exec(store, sql)) goto fail;
        existing = 0;
    }
    if (!existing) {
        if (sqlite3_prepare_v2(store->db,
                               "INSERT INTO recordings(run_id, dataset_id, split, seq_len,"
                               " n_sequences, dtype, checkpoint_step, d_model, distances, status)"
                               " VALUES(?,?,?,?,?,?,?,?,?,'running')", -1, &stmt, NULL) != SQLITE_OK)
            goto sqlfail;
        sqlite3_bind_int64(stmt, 1, run->id);
        sqlite3_bind_int64(stmt, 2, dataset_id);
        sqlite3_bind_text(stmt, 3, split, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 4, L);
        sqlite3_bind_int(stmt, 5, n_seqs);
        sqlite3_bind_text(stmt, 6, dtype, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 7, step);
        sqlite3_bind_int(stmt, 8, d);
        sqlite3_bind_text(stmt, 9, distances, -1, SQLITE_STATIC);
        int rc = sqlite3_step(stmt);
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE) goto sqlfail;
        existing = sqlite3_last_insert_rowid(store->db);
    }
    if (store_commit(store)) goto fail;
    *recording_id = existing;
    memset(done, 0, (size_t)n_seqs);
    if (sqlite3_prepare_v2(store->db, "SELECT seq FROM record_sequences WHERE recording_id=?", -1,
                           &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, existing);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        int seq = sqlite3_column_int(stmt, 0);
        if (seq >= 0 && seq < n_seqs) done[seq] = 1;
    }
    sqlite3_finalize(stmt);
    return 0;
sqlfail:
    spiral_error("%s: creating the recording: %s", store->path, sqlite3_errmsg(store->db));
fail:
    store_rollback(store);
    return -1;
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int record_run(Store *store, const char *run_name, const char *dataset_name,
               const RecordOptions *o, RecordResult *result) {
    RunRow run = {0};
    Dataset ds = {0};
    SplitStream stream = {0};
    Model model = {0};
    SpiralConfig cfg;
    TrainConfig tcfg;
    Recorder rec = {0};
    size_t *window_start = NULL;
    unsigned char *done = NULL;
    int *tokens = NULL, *batch_seq = NULL;
    long long dataset_id, step;
    int status = -1;
    memset(result, 0, sizeof *result);

    int split = split_from_name(o->split);
    if (split < 0) return spiral_error("--split: expected train, val, test or test_ood, got '%s'", o->split);
    if (o->n_sequences < 1 || o->batch_size < 1) return spiral_error("--sequences and --batch must be >= 1");
    if (store_run_find(store, run_name, &run)) return -1;
    char source[1400];
    snprintf(source, sizeof source, "%s: run %s", store->path, run_name);
    if (config_parse(&cfg, run.config, source) || train_config_parse(&tcfg, run.config, source))
        goto done;
    int L = o->seq_len > 0 ? o->seq_len : tcfg.seq_len;
    if (store_dataset_load(store, dataset_name, &ds, &dataset_id)) goto done;
    if (ds.vocab_size > cfg.vocab_size) {
        spiral_error("dataset %s has vocabulary %d but run %s's model has vocab_size %d",
                     dataset_name, ds.vocab_size, run_name, cfg.vocab_size);
        goto done;
    }
    if (load_run_model(store, &run, &cfg, &model, &step)) goto done;
    if (dataset_split_stream(&stream, &ds, split, (size_t)L, dataset_name)) goto done;
    int n = o->n_sequences;
    if (stream.n_starts < (size_t)n && stream.n - (size_t)L + 1 < (size_t)n) {
        spiral_error("dataset %s: the %s split has room for only %zu windows of %d tokens, "
                     "fewer than --sequences %d", dataset_name, o->split,
                     stream.n - (size_t)L + 1, L, n);
        goto done;
    }
    window_start = malloc((size_t)n * sizeof *window_start);
    done = malloc((size_t)n);
    tokens = malloc((size_t)o->batch_size * L * sizeof(int));
    batch_seq = malloc((size_t)o->batch_size * sizeof(int));
    rec.buffer = malloc((size_t)L * cfg.d_model * sizeof(float));
    rec.stats = malloc((size_t)cfg.n_heads * L * (2 + o->n_distances) * sizeof(float));
    if (!window_start || !done || !tokens || !batch_seq || !rec.buffer || !rec.stats) {
        spiral_error("out of memory preparing the recording");
        goto done;
    }
    /* windows at document starts when there are enough, else evenly spaced */
    for (int k = 0; k < n; k++)
        window_start[k] = stream.n_starts >= (size_t)n
                              ? stream.starts[(size_t)k * stream.n_starts / n]
                              : (size_t)k * (stream.n - (size_t)L) / (n > 1 ? n - 1 : 1);
    if (open_recording(store, &run, dataset_id, o->split, L, n, o, step, cfg.d_model,
                       &result->recording_id, done))
        goto done;

    rec.store = store;
    rec.cfg = &cfg;
    rec.dense = !strcmp(config_kind(&cfg), "dense");
    rec.recording_id = result->recording_id;
    rec.batch_seq = batch_seq;
    rec.f16 = o->f16;
    rec.options = o;
    if (sqlite3_prepare_v2(store->db, "INSERT OR REPLACE INTO states VALUES(?,?,?,?,?,?,?,?,?)",
                           -1, &rec.insert_state, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(store->db,
                           "INSERT OR REPLACE INTO attention_stats VALUES(?,?,?,?,?,?,?,?,?)", -1,
                           &rec.insert_stats, NULL) != SQLITE_OK) {
        spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
        goto done;
    }
    sqlite3_stmt *insert_seq = NULL;
    if (sqlite3_prepare_v2(store->db, "INSERT OR REPLACE INTO record_sequences VALUES(?,?,?)", -1,
                           &insert_seq, NULL) != SQLITE_OK) {
        spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
        goto done;
    }
    Observer observer = {observe_event, &rec};
    int64_t *index_blob = malloc((size_t)L * sizeof(int64_t));
    double start = seconds_now();
    int recorded_before = 0;
    for (int k = 0; k < n; k++) recorded_before += done[k];
    int next = 0;
    status = index_blob ? 0 : spiral_error("out of memory");
    while (status == 0) {
        int B = 0;
        while (next < n && B < o->batch_size) {
            if (!done[next]) {
                batch_seq[B] = next;
                memcpy(tokens + (size_t)B * L, stream.tokens + window_start[next],
                       (size_t)L * sizeof(int));
                B++;
            }
            next++;
        }
        if (B == 0) break;
        if ((status = store_begin(store))) break;
        rec.failed = 0;
        status = model_forward(&model, tokens, NULL, B, L, &observer);
        if (status == 0 && rec.failed) status = -1;
        for (int b = 0; b < B && status == 0; b++) {
            for (int i = 0; i < L; i++) index_blob[i] = (int64_t)stream.global[window_start[batch_seq[b]] + i];
            sqlite3_reset(insert_seq);
            sqlite3_bind_int64(insert_seq, 1, rec.recording_id);
            sqlite3_bind_int(insert_seq, 2, batch_seq[b]);
            sqlite3_bind_blob64(insert_seq, 3, index_blob, (size_t)L * sizeof(int64_t), SQLITE_STATIC);
            if (sqlite3_step(insert_seq) != SQLITE_DONE)
                status = spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
        }
        double commit_start = seconds_now();
        if (status == 0) status = store_commit(store);
        rec.store_seconds += seconds_now() - commit_start;
        if (status) {
            store_rollback(store);
            break;
        }
        result->recorded_now += B;
        if (o->progress) {
            double elapsed = seconds_now() - start;
            int total = recorded_before + result->recorded_now;
            fprintf(stderr, isatty(STDERR_FILENO) ? "\rrecorded %d/%d sequences | %.1f seq/s | %.1f MB/s   "
                                                   : "recorded %d/%d sequences | %.1f seq/s | %.1f MB/s\n",
                    total, n, result->recorded_now / elapsed, rec.bytes / 1e6 / elapsed);
        }
    }
    if (o->progress && isatty(STDERR_FILENO)) fputc('\n', stderr);
    free(index_blob);
    sqlite3_finalize(insert_seq);
    if (status == 0) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE recordings SET status='done' WHERE id=%lld",
                 rec.recording_id);
        status = store_exec(store, sql);
    }
    result->n_sequences = n;
    result->bytes = rec.bytes;
    result->seconds = seconds_now() - start;
    result->store_seconds = rec.store_seconds;
done:
    if (rec.insert_state) sqlite3_finalize(rec.insert_state);
    if (rec.insert_stats) sqlite3_finalize(rec.insert_stats);
    free(rec.buffer);
    free(rec.stats);
    free(window_start);
    free(done);
    free(tokens);
    free(batch_seq);
    model_free(&model);
    split_stream_free(&stream);
    dataset_free(&ds);
    store_run_free(&run);
    return status;
}

int record_find(Store *store, const char *run_name, const char *dataset_name, const char *split,
                RecordingInfo *info) {
    sqlite3_stmt *stmt;
    memset(info, 0, sizeof *info);
    if (sqlite3_prepare_v2(store->db,
                           "SELECT r.id, r.run_id, r.dataset_id, r.seq_len, r.n_sequences,"
                           " r.d_model, r.dtype, r.split, r.status FROM recordings r"
                           " JOIN runs ON runs.id = r.run_id JOIN datasets d ON d.id = r.dataset_id"
                           " WHERE runs.name = ? AND d.name = ? AND r.split = ?", -1, &stmt,
                           NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_text(stmt, 1, run_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, dataset_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, split, -1, SQLITE_STATIC);
    int found = sqlite3_step(stmt) == SQLITE_ROW;
    if (found) {
        info->id = sqlite3_column_int64(stmt, 0);
        info->run_id = sqlite3_column_int64(stmt, 1);
        info->dataset_id = sqlite3_column_int64(stmt, 2);
        info->seq_len = sqlite3_column_int(stmt, 3);
        info->n_sequences = sqlite3_column_int(stmt, 4);
        info->d_model = sqlite3_column_int(stmt, 5);
        info->f16 = !strcmp((const char *)sqlite3_column_text(stmt, 6), "f16");
        snprintf(info->split, sizeof info->split, "%s", (const char *)sqlite3_column_text(stmt, 7));
        snprintf(info->status, sizeof info->status, "%s", (const char *)sqlite3_column_text(stmt, 8));
    }
    sqlite3_finalize(stmt);
    if (!found)
        return spiral_error("%s: run %s has no recording on dataset %s (split %s); make one with "
                            "'spiral record'", store->path, run_name, dataset_name, split);
    return 0;
}

int record_read_state(Store *store, const RecordingInfo *info, int seq, int iteration,
                      const char *site, int scale, float *out, int *rows, int *cols) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT rowid, rows, cols, dtype FROM states WHERE recording_id=? AND"
                           " seq=? AND iteration=? AND site=? AND scale=?", -1, &stmt,
                           NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, info->id);
    sqlite3_bind_int(stmt, 2, seq);
    sqlite3_bind_int(stmt, 3, iteration);
    sqlite3_bind_text(stmt, 4, site, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 5, scale);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        return spiral_error("no state recorded for sequence %d, iteration %d, site %s, scale %d",
                            seq, iteration, site, scale);
    }
    long long rowid = sqlite3_column_int64(stmt, 0);
    *rows = sqlite3_column_int(stmt, 1);
    *cols = sqlite3_column_int(stmt, 2);
    int f16 = !strcmp((const char *)sqlite3_column_text(stmt, 3), "f16");
    sqlite3_finalize(stmt);
    size_t count = (size_t)*rows * *cols;
    if (count > (size_t)info->seq_len * info->d_model)
        return spiral_error("state (%d x %d) larger than the recording's %d x %d", *rows, *cols,
                            info->seq_len, info->d_model);
    sqlite3_blob *blob;
    if (sqlite3_blob_open(store->db, "main", "states", "data", rowid, 0, &blob) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    size_t bytes = count * (f16 ? 2 : 4);
    int rc = (size_t)sqlite3_blob_bytes(blob) == bytes ? sqlite3_blob_read(blob, out, (int)bytes, 0)
                                                       : SQLITE_CORRUPT;
    sqlite3_blob_close(blob);
    if (rc != SQLITE_OK) return spiral_error("%s: reading a state: %s", store->path, sqlite3_errstr(rc));
    if (f16) {
        /* The halves occupy the first 2 * count bytes of out; widening from
         * the last element backwards never overwrites a half not yet read
         * (float i ends at byte 4i + 4, half j < i starts at 2j < 4i). */
        const _Float16 *halves = (const _Float16 *)(void *)out;
        for (size_t i = count; i-- > 0;) out[i] = (float)halves[i];
    }
    return 0;
}

int record_read_token_index(Store *store, const RecordingInfo *info, int seq, size_t *index) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT token_index FROM record_sequences WHERE recording_id=? AND seq=?",
                           -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, info->id);
    sqlite3_bind_int(stmt, 2, seq);
    int status = 0;
    if (sqlite3_step(stmt) != SQLITE_ROW ||
        (size_t)sqlite3_column_bytes(stmt, 0) != (size_t)info->seq_len * sizeof(int64_t)) {
        status = spiral_error("sequence %d is not recorded", seq);
    } else {
        const int64_t *values = sqlite3_column_blob(stmt, 0);
        for (int i = 0; i < info->seq_len; i++) index[i] = (size_t)values[i];
    }
    sqlite3_finalize(stmt);
    return status;
}
