/*
 * record.c: recording hidden states and attention statistics into the store
 * (see record.h for what is recorded and why).
 *
 * The model's observer hook hands every state to observe_event() as the
 * forward pass produces it; the event is converted (float32 or float16) and
 * inserted at once with prepared statements inside the batch's transaction,
 * so no copy of the whole batch's states is held.
 *
 * Where the time goes (bench/bench_record.c): the forward passes, then the
 * WAL checkpoints, which fsync the log, copy its pages into the database
 * file and fsync that, so every byte reaches the disk twice; inserting and
 * committing are cheap (a commit writes the batch's last pages to the log,
 * without fsync). The recording runs the checkpoints itself, every
 * RECORD_CHECKPOINT_BYTES and once at the end, so that their cost is counted
 * and a finished recording is in the database file, fsynced.
 */
#include "clock.h"
#include "record.h"

#include <stdint.h>
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
#include "fastmath.h"
#include "model.h"
#include "train_config.h"
#include "steps.h"

/* State bytes committed between two checkpoints. Each checkpoint costs two
 * fsyncs whatever its size; one per 256 MiB took 0.24 s per 130 MB against
 * 0.28 s for SQLite's automatic one per 64 MiB and 0.36 s for one per batch
 * (bench_record), and keeps the log to about 256 MiB. */
#define RECORD_CHECKPOINT_BYTES (256.0 * 1024 * 1024)

/* Probabilities per call of entropy_terms (a fixed count lets the compiler
 * vectorize the loop at -O2). */
#define ENTROPY_BLOCK 8

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
    long long recording_id;
    const int *batch_seq;         /* (B) sequence index of each batch row */
    int f16;
    const RecordOptions *options;
    sqlite3_stmt *insert_state, *insert_stats;
    void *buffer;                 /* conversion buffer, rows x cols values */
    float *stats;                 /* (H, rows, 2 + n_distances) */
    float *probs;                 /* (rows + ENTROPY_BLOCK) one query's probabilities, zero padded */
    float *entropy_terms;         /* (rows + ENTROPY_BLOCK) p log p of each */
    double *mass_before;          /* (rows + 1) attention mass on the keys before key j */
    double bytes;                 /* state bytes written */
    double insert_seconds;        /* converting and inserting states and statistics */
    double attention_seconds;     /* computing attention statistics */
    int failed;                   /* an insert failed; spiral_error is set */
} Recorder;


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
    r->insert_seconds += seconds_now() - start;
}

/* terms[l] = p[l] log p[l] for ENTROPY_BLOCK probabilities p >= 0. */
static void entropy_terms(float *restrict terms, const float *restrict p) {
    for (int l = 0; l < ENTROPY_BLOCK; l++) terms[l] = p[l] * log_float(p[l]);
}

/* Attention statistics of batch row b, per head and query row i, with p the
 * token position of each row:
 *   distance_i = sum_j P_ij (p_i - p_j)          (token units)
 *   entropy_i  = -sum_j P_ij log P_ij            (nats)
 *   beyond_i(D) = sum_{j : p_i - p_j > D} P_ij.
 * Positions ascend, so the keys beyond D are a prefix j < m_i(D) of the
 * row, and m_i(D) never decreases with i: beyond_i(D) is the running mass
 * before key m_i(D) (the same sum in the same order as adding each P_ij with
 * p_i - p_j > D). Sums are in double; P log P is in float (log_float), which
 * moves the stored float32 entropy by at most a few ulps. */
static void insert_attention(Recorder *r, int b, int iteration, int layer, const ObserveEvent *e) {
    if (r->failed) return;
    double start = seconds_now();
    int n = e->rows, H = e->heads, n_distances = r->options->n_distances, K = 2 + n_distances;
    const int *distances = r->options->distances;
    for (int i = 1; i < n; i++) {
        if (e->pos[i] < e->pos[i - 1]) {
            spiral_error("attention statistics: row %d stands at position %d, before row %d "
                         "(position %d); positions must ascend", i, e->pos[i], i - 1, e->pos[i - 1]);
            r->failed = 1;
            return;
        }
    }
    for (int h = 0; h < H; h++) {
        const real *P = e->data + ((size_t)b * H + h) * n * n;
        int first_near[RECORD_MAX_DISTANCES] = {0}; /* m_i(D_k): first key within D_k */
        for (int i = 0; i < n; i++) {
            const real *row = P + (size_t)i * n;
            int padded = (i + ENTROPY_BLOCK) / ENTROPY_BLOCK * ENTROPY_BLOCK; /* > i */
            for (int j = 0; j <= i; j++) r->probs[j] = (float)row[j];
            for (int j = i + 1; j < padded; j++) r->probs[j] = 0;
            for (int j = 0; j < padded; j += ENTROPY_BLOCK)
                entropy_terms(r->entropy_terms + j, r->probs + j);
            double distance = 0, entropy = 0, mass = 0;
            for (int j = 0; j <= i; j++) {
                double p = row[j];
                r->mass_before[j] = mass;
                distance += p * (e->pos[i] - e->pos[j]);
                entropy -= r->entropy_terms[j];
                mass += p;
            }
            r->mass_before[i + 1] = mass;
            float *out = r->stats + ((size_t)h * n + i) * K;
            out[0] = (float)distance;
            out[1] = (float)entropy;
            for (int k = 0; k < n_distances; k++) {
                while (first_near[k] <= i && e->pos[i] - e->pos[first_near[k]] > distances[k])
                    first_near[k]++;
                out[2 + k] = (float)r->mass_before[first_near[k]];
            }
        }
    }
    double computed = seconds_now();
    r->attention_seconds += computed - start;
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
    r->insert_seconds += seconds_now() - computed;
}

/* The observer: records each event as the site steps.h assigns it. */
static void observe_event(void *user, const ObserveEvent *e) {
    Recorder *r = user;
    SiteKey key;
    int step, layer;
    if (e->site == OBSERVE_ATTENTION) event_attention_key(e, r->cfg, &step, &layer);
    else if (!event_site(e, r->cfg, &key)) return;
    for (int b = 0; b < e->B; b++) {
        if (e->site == OBSERVE_ATTENTION) insert_attention(r, b, step, layer, e);
        else insert_state(r, b, key.step, key.site, key.scale, e);
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

/* Prepares one statement on the store's connection or fails with its message. */
static int prepare_statement(Store *store, const char *sql, sqlite3_stmt **stmt) {
    if (sqlite3_prepare_v2(store->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: preparing '%s': %s", store->path, sql, sqlite3_errmsg(store->db));
    return 0;
}

/* Deletes the states and attention statistics of the batch's sequences.
 * A sequence is recorded (in record_sequences) in the same transaction as
 * its rows, so there are none unless they were edited by hand; deleting them
 * lets the inserts be plain INSERTs. */
static int delete_partial_sequences(Store *store, sqlite3_stmt *delete_states,
                                    sqlite3_stmt *delete_stats, long long recording_id,
                                    const int *batch_seq, int B) {
    sqlite3_stmt *statements[2] = {delete_states, delete_stats};
    for (int b = 0; b < B; b++) {
        for (int k = 0; k < 2; k++) {
            sqlite3_reset(statements[k]);
            sqlite3_bind_int64(statements[k], 1, recording_id);
            sqlite3_bind_int(statements[k], 2, batch_seq[b]);
            if (sqlite3_step(statements[k]) != SQLITE_DONE)
                return spiral_error("%s: clearing sequence %d before recording it: %s",
                                    store->path, batch_seq[b], sqlite3_errmsg(store->db));
        }
    }
    return 0;
}

/* Inserts the record_sequences row of each sequence of the batch: the
 * dataset token index of each of its L positions (index_blob: L int64). */
static int insert_sequence_rows(Store *store, sqlite3_stmt *insert_seq, long long recording_id,
                                const SplitStream *stream, const size_t *window_start,
                                const int *batch_seq, int B, int L, int64_t *index_blob) {
    for (int b = 0; b < B; b++) {
        size_t first = window_start[batch_seq[b]];
        for (int i = 0; i < L; i++) index_blob[i] = (int64_t)stream->global[first + i];
        sqlite3_reset(insert_seq);
        sqlite3_bind_int64(insert_seq, 1, recording_id);
        sqlite3_bind_int(insert_seq, 2, batch_seq[b]);
        sqlite3_bind_blob64(insert_seq, 3, index_blob, (size_t)L * sizeof(int64_t), SQLITE_STATIC);
        if (sqlite3_step(insert_seq) != SQLITE_DONE)
            return spiral_error("%s: recording sequence %d: %s", store->path, batch_seq[b],
                                sqlite3_errmsg(store->db));
    }
    return 0;
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
    int64_t *index_blob = NULL;
    sqlite3_stmt *insert_seq = NULL, *delete_states = NULL, *delete_stats = NULL;
    int autocheckpoint_off = 0;
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
    rec.probs = malloc(((size_t)L + ENTROPY_BLOCK) * sizeof(float));
    rec.entropy_terms = malloc(((size_t)L + ENTROPY_BLOCK) * sizeof(float));
    rec.mass_before = malloc(((size_t)L + 1) * sizeof(double));
    index_blob = malloc((size_t)L * sizeof(int64_t));
    if (!window_start || !done || !tokens || !batch_seq || !rec.buffer || !rec.stats ||
        !rec.probs || !rec.entropy_terms || !rec.mass_before || !index_blob) {
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
    rec.recording_id = result->recording_id;
    rec.batch_seq = batch_seq;
    rec.f16 = o->f16;
    rec.options = o;
    /* States and statistics: plain INSERTs after deleting whatever a sequence
     * left behind. INSERT OR REPLACE with foreign keys on made SQLite keep a
     * statement journal of every page each insert wrote: twice the state
     * bytes again, in a temporary file. */
    if (prepare_statement(store, "INSERT INTO states VALUES(?,?,?,?,?,?,?,?,?)", &rec.insert_state) ||
        prepare_statement(store, "INSERT INTO attention_stats VALUES(?,?,?,?,?,?,?,?,?)",
                          &rec.insert_stats) ||
        prepare_statement(store, "INSERT OR REPLACE INTO record_sequences VALUES(?,?,?)",
                          &insert_seq) ||
        prepare_statement(store, "DELETE FROM states WHERE recording_id=? AND seq=?",
                          &delete_states) ||
        prepare_statement(store, "DELETE FROM attention_stats WHERE recording_id=? AND seq=?",
                          &delete_stats))
        goto done;
    /* the recording checkpoints itself (see the top of this file) */
    if (store_exec(store, "PRAGMA wal_autocheckpoint=0")) goto done;
    autocheckpoint_off = 1;

    Observer observer = {observe_event, &rec};
    double start = seconds_now();
    int recorded_before = 0;
    for (int k = 0; k < n; k++) recorded_before += done[k];
    int next = 0;
    double uncheckpointed = 0; /* state bytes committed since the last checkpoint */
    status = 0;
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
        double batch_start = seconds_now();
        if ((status = store_begin(store))) break;
        double begun = seconds_now();
        result->commit_seconds += begun - batch_start;
        double bytes_before = rec.bytes;
        rec.failed = 0;
        status = delete_partial_sequences(store, delete_states, delete_stats, rec.recording_id,
                                          batch_seq, B);
        double deleted = seconds_now();
        rec.insert_seconds += deleted - begun;
        double observer_before = rec.insert_seconds + rec.attention_seconds;
        if (status == 0) status = model_forward(&model, tokens, NULL, B, L, &observer);
        result->forward_seconds +=
            seconds_now() - deleted - (rec.insert_seconds + rec.attention_seconds - observer_before);
        if (status == 0 && rec.failed) status = -1;
        double rows_start = seconds_now();
        if (status == 0)
            status = insert_sequence_rows(store, insert_seq, rec.recording_id, &stream,
                                          window_start, batch_seq, B, L, index_blob);
        double commit_start = seconds_now();
        rec.insert_seconds += commit_start - rows_start;
        if (status == 0) status = store_commit(store);
        result->commit_seconds += seconds_now() - commit_start;
        if (status) {
            store_rollback(store);
            break;
        }
        result->recorded_now += B;
        uncheckpointed += rec.bytes - bytes_before;
        if (uncheckpointed >= RECORD_CHECKPOINT_BYTES) {
            double checkpoint_start = seconds_now();
            status = store_wal_checkpoint(store);
            result->checkpoint_seconds += seconds_now() - checkpoint_start;
            uncheckpointed = 0;
        }
        if (o->progress) {
            double elapsed = seconds_now() - start;
            int total = recorded_before + result->recorded_now;
            fprintf(stderr, isatty(STDERR_FILENO) ? "\rrecorded %d/%d sequences | %.1f seq/s | %.1f MB/s   "
                                                   : "recorded %d/%d sequences | %.1f seq/s | %.1f MB/s\n",
                    total, n, result->recorded_now / elapsed, rec.bytes / 1e6 / elapsed);
        }
    }
    if (o->progress && isatty(STDERR_FILENO)) fputc('\n', stderr);
    if (status == 0) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE recordings SET status='done' WHERE id=%lld",
                 rec.recording_id);
        status = store_exec(store, sql);
    }
    /* the last checkpoint: the recording is in the database file, fsynced */
    if (status == 0) {
        double checkpoint_start = seconds_now();
        status = store_wal_checkpoint(store);
        result->checkpoint_seconds += seconds_now() - checkpoint_start;
    }
    result->n_sequences = n;
    result->bytes = rec.bytes;
    result->seconds = seconds_now() - start;
    result->insert_seconds = rec.insert_seconds;
    result->attention_seconds = rec.attention_seconds;
    result->store_seconds = result->insert_seconds + result->commit_seconds +
                            result->checkpoint_seconds;
done:
    if (autocheckpoint_off) {
        /* back to SQLite's default, which store_open leaves in place; a
         * failure here matters only if the recording itself succeeded */
        if (status == 0) status = store_exec(store, "PRAGMA wal_autocheckpoint=1000");
        else sqlite3_exec(store->db, "PRAGMA wal_autocheckpoint=1000", NULL, NULL, NULL);
    }
    sqlite3_finalize(rec.insert_state);
    sqlite3_finalize(rec.insert_stats);
    sqlite3_finalize(insert_seq);
    sqlite3_finalize(delete_states);
    sqlite3_finalize(delete_stats);
    free(index_blob);
    free(rec.buffer);
    free(rec.stats);
    free(rec.probs);
    free(rec.entropy_terms);
    free(rec.mass_before);
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
