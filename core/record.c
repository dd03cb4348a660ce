/*
 * record.c: recording hidden states and attention statistics into the store
 * (see record.h for what is recorded and why).
 *
 * The steps of record_run: load the run, its checkpoint and the dataset
 * windows (load_job); open the recording and its writer (open_recording);
 * record batch after batch, one transaction each (record_batch), with a WAL
 * checkpoint every RECORD_CHECKPOINT_BYTES (checkpoint_wal); mark the
 * recording done and checkpoint once more (finish_recording).
 *
 * The model's observer hook hands every state to observe_event() as the
 * forward pass produces it; the event is converted (float32 or float16)
 * into a slot of the recording's queue (record_queue.h), whose thread
 * inserts it inside the batch's transaction while the pass goes on; the
 * batch commits once the queue is drained. At most the queue's eight
 * states are held, never the whole batch's. The SQL is
 * data/recording_store.c's; what the attention statistics are is the
 * caller's AttentionSummary.
 *
 * Where the time goes (bench/bench_record.c): the forward passes, then the
 * WAL checkpoints, which fsync the log, copy its pages into the database
 * file and fsync that, so every byte reaches the disk twice; inserting and
 * committing are cheap (a commit writes the batch's last pages to the log,
 * without fsync). The recording runs the checkpoints itself, every
 * RECORD_CHECKPOINT_BYTES and once at the end, so that their cost is counted
 * and a finished recording is in the database file, fsynced.
 */
#include "record.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "clock.h"
#include "config.h"
#include "dataset.h"
#include "error.h"
#include "filehash.h"
#include "half.h"
#include "record_queue.h"
#include "engine.h"
#include "recording_store.h"
#include "run_model.h"
#include "steps.h"
#include "train_config.h"

/* State bytes committed between two checkpoints. Each checkpoint costs two
 * fsyncs whatever its size; one per 256 MiB took 0.24 s per 130 MB against
 * 0.28 s for SQLite's automatic one per 64 MiB and 0.36 s for one per batch
 * (bench_record), and keeps the log to about 256 MiB. */
#define RECORD_CHECKPOINT_BYTES (256.0 * 1024 * 1024)

void record_options_default(RecordOptions *o) {
    memset(o, 0, sizeof *o);
    o->split = "test";
    o->n_sequences = 500;
    o->batch_size = 8;
    o->n_distances = 3;
    o->distances[0] = 4;
    o->distances[1] = 16;
    o->distances[2] = 64;
    o->step = -1;
}

/* What a recording works with: the run, its model and the windows. */
typedef struct {
    RunRow run;
    const char *dataset_name;
    SpiralConfig cfg;
    Dataset ds;
    long long dataset_id, checkpoint_step;
    SplitStream stream;
    Model model;                  /* the checkpoint's weights (and the CPU engine's forward) */
    Engine *engine;               /* --device cuda: the GPU engine with the same weights; else NULL */
    int L, n;                     /* tokens per sequence, sequences */
    size_t *window_start;         /* (n) first token of each window in the split stream */
} RecordJob;

/* The recording being written: its writer, the batch's buffers, and what
 * the observer callback needs and counts while a batch runs. */
typedef struct {
    RecordingWriter writer;
    const SpiralConfig *cfg;
    const RecordOptions *options;
    int n_stats;                  /* statistics per head and row: 2 + n_distances */
    int *tokens;                  /* (batch_size, L) the batch's windows */
    int *batch_seq;               /* (batch_size) sequence index of each batch row */
    int64_t *token_index;         /* (L) one sequence's dataset token indices */
    RecordQueue *queue;           /* the inserts' thread; each slot holds a state or a layer's
                                     statistics of one sequence */
    double bytes;                 /* state bytes written */
    double insert_seconds;        /* this thread: converting states into slots, waiting for
                                     free ones, inserting sequence rows */
    double attention_seconds;     /* computing attention statistics */
    int failed;                   /* 1: this thread failed, spiral_error is set; 2: an insert
                                     of the queue's thread failed, its drain reports it */
} Recorder;

static const char *block_names[3] = {"pre", "loop", "post"};

/* A free slot of the queue, or NULL (r->failed = 2) once an insert has
 * failed; the wait for it counts as insert time. */
static QueuedInsert *reserve_slot(Recorder *r) {
    double start = seconds_now();
    QueuedInsert *slot = record_queue_reserve(r->queue);
    if (!slot) r->failed = 2;
    r->insert_seconds += seconds_now() - start;
    return slot;
}

/* Whether a finite value of src became an infinite half in halves (its
 * magnitude reached 65520): then an error naming the site, r->failed = 1.
 * A probe or an analysis could not use such a state. */
static int f16_overflow(Recorder *r, const uint16_t *halves, const real *src, size_t count,
                        const SiteKey *key) {
    size_t infinite = 0; /* a first pass, which vectorizes: almost always 0 */
    for (size_t i = 0; i < count; i++) infinite += (halves[i] & 0x7fff) == 0x7c00;
    if (infinite == 0) return 0;
    for (size_t i = 0; i < count; i++)
        if ((halves[i] & 0x7fff) == 0x7c00 && isfinite(src[i])) {
            spiral_error("record: site %s, iteration %d holds %g, beyond float16's range "
                         "(65504); record with --dtype f32", key->site, key->step,
                         (double)src[i]);
            r->failed = 1;
            return 1;
        }
    return 0;
}

/* Converts one (rows x cols) state of batch row b to the recording's dtype
 * into a slot of the queue, whose thread inserts it. */
static void record_state(Recorder *r, int b, const SiteKey *key, const ObserveEvent *e) {
    if (r->failed) return;
    QueuedInsert *slot = reserve_slot(r);
    if (!slot) return;
    double start = seconds_now();
    size_t count = (size_t)e->rows * e->cols;
    const real *src = e->data + (size_t)b * count;
    if (r->options->f16 && sizeof(real) == sizeof(float)) {
        halves_from_floats(slot->data, (const float *)src, count);
        if (f16_overflow(r, slot->data, src, count, key)) return;
    } else if (r->options->f16) {
        _Float16 *h = slot->data;
        for (size_t i = 0; i < count; i++) h[i] = (_Float16)src[i];
    } else if (sizeof(real) == sizeof(float)) {
        memcpy(slot->data, src, count * sizeof(float));
    } else {
        float *f = slot->data;
        for (size_t i = 0; i < count; i++) f[i] = (float)src[i];
    }
    slot->is_attention = 0;
    slot->seq = r->batch_seq[b];
    slot->step = key->step;
    memcpy(slot->site, key->site, sizeof slot->site);
    slot->scale = key->scale;
    slot->rows = e->rows;
    slot->cols = e->cols;
    record_queue_submit(r->queue);
    r->bytes += (double)count * (r->options->f16 ? 2 : 4);
    r->insert_seconds += seconds_now() - start;
}

/* Summarizes the attention of batch row b (the options' AttentionSummary,
 * or the engine's statistics) into a slot of the queue, whose thread
 * inserts it. */
static void record_attention(Recorder *r, int b, int step, int layer, const ObserveEvent *e) {
    if (r->failed) return;
    const RecordOptions *o = r->options;
    if (e->stats && e->n_stats != r->n_stats) {
        spiral_error("record: the engine's attention statistics have %d numbers per row, "
                     "expected %d", e->n_stats, r->n_stats);
        r->failed = 1;
        return;
    }
    QueuedInsert *slot = reserve_slot(r);
    if (!slot) return;
    double start = seconds_now();
    if (e->stats) { /* computed by the engine */
        size_t per_sequence = (size_t)e->heads * e->rows * e->n_stats;
        memcpy(slot->data, e->stats + (size_t)b * per_sequence, per_sequence * sizeof(float));
    } else if (o->attention.summarize(o->attention.context, e, b, o->n_distances, o->distances,
                                      slot->data)) {
        r->failed = 1;
        return;
    }
    slot->is_attention = 1;
    slot->seq = r->batch_seq[b];
    slot->step = step;
    slot->block = block_names[e->block];
    slot->layer = layer;
    slot->g = e->g;
    slot->heads = e->heads;
    slot->n_rows = e->rows;
    slot->n_stats = r->n_stats;
    record_queue_submit(r->queue);
    r->attention_seconds += seconds_now() - start;
}

/* The observer: records each event as the site steps.h assigns it. */
static void observe_event(void *user, const ObserveEvent *e) {
    Recorder *r = user;
    SiteKey key;
    int step, layer;
    if (e->site == OBSERVE_ATTENTION) {
        if (!r->options->attention.summarize) return;
        event_attention_key(e, r->cfg, &step, &layer);
    } else if (!event_site(e, r->cfg, &key)) {
        return;
    }
    for (int b = 0; b < e->B; b++) {
        if (e->site == OBSERVE_ATTENTION) record_attention(r, b, step, layer, e);
        else record_state(r, b, &key, e);
    }
}

/* Split name -> SPLIT_*, or -1. */
static int split_from_name(const char *name) {
    for (int s = 0; s < SPLIT_COUNT; s++)
        if (!strcmp(name, dataset_split_name(s))) return s;
    return -1;
}

int record_windows(size_t *start, const SplitStream *stream, int n, int L,
                   const char *dataset_name, const char *split) {
    if (stream->n_starts < (size_t)n && stream->n - (size_t)L + 1 < (size_t)n)
        return spiral_error("dataset %s: the %s split has room for only %zu windows of %d tokens, "
                            "fewer than --sequences %d", dataset_name, split,
                            stream->n - (size_t)L + 1, L, n);
    for (int k = 0; k < n; k++)
        start[k] = stream->n_starts >= (size_t)n
                       ? stream->starts[(size_t)k * stream->n_starts / n]
                       : (size_t)k * (stream->n - (size_t)L) / (n > 1 ? n - 1 : 1);
    return 0;
}

static void job_free(RecordJob *job) {
    free(job->window_start);
    engine_free(job->engine);
    model_free(&job->model);
    split_stream_free(&job->stream);
    dataset_free(&job->ds);
    store_run_free(&job->run);
}

/* Step 1: the run, its config and checkpoint (the last, or at o->step) (as a model), the
 * dataset's split and the start of each of the n windows of L tokens: at
 * document starts when there are enough, else evenly spaced. On failure
 * the caller still frees the job. */
static int load_job(Store *store, const char *run_name, const char *dataset_name,
                    const RecordOptions *o, RecordJob *job) {
    int split = split_from_name(o->split);
    if (split < 0) return spiral_error("--split: expected train, val, test or test_ood, got '%s'", o->split);
    if (o->n_sequences < 1 || o->batch_size < 1) return spiral_error("--sequences and --batch must be >= 1");
    if (store_run_find(store, run_name, &job->run)) return -1;
    job->dataset_name = dataset_name;
    char source[1400];
    TrainConfig tcfg;
    snprintf(source, sizeof source, "%s: run %s", store->path, run_name);
    if (config_parse(&job->cfg, job->run.config, source) ||
        train_config_parse(&tcfg, job->run.config, source))
        return -1;
    int L = job->L = o->seq_len > 0 ? o->seq_len : tcfg.seq_len;
    if (store_dataset_load(store, dataset_name, &job->ds, &job->dataset_id)) return -1;
    if (job->ds.vocab_size > job->cfg.vocab_size)
        return spiral_error("dataset %s has vocabulary %d but run %s's model has vocab_size %d",
                            dataset_name, job->ds.vocab_size, run_name, job->cfg.vocab_size);
    if (run_model_load(store, &job->run, &job->cfg, o->step, &job->model, &job->checkpoint_step) ||
        dataset_split_stream(&job->stream, &job->ds, split, (size_t)L, dataset_name))
        return -1;
    /* another engine: in fp32, with the checkpoint's weights */
    if (o->device && strcmp(o->device, "cpu") &&
        engine_open_with_weights(&job->engine, o->device, "fp32", &job->model))
        return -1;
    int n = job->n = o->n_sequences;
    job->window_start = malloc((size_t)n * sizeof *job->window_start);
    if (!job->window_start) return spiral_error("out of memory preparing the recording");
    return record_windows(job->window_start, &job->stream, n, L, dataset_name, o->split);
}

/* Frees the recorder's buffers and closes its writer (writer.store set:
 * open); returns status, or the writer's if status is 0. */
static int recorder_close(Recorder *r, int status) {
    record_queue_close(r->queue);
    r->queue = NULL;
    if (r->writer.store) status = recording_writer_close(&r->writer, status);
    free(r->tokens);
    free(r->batch_seq);
    free(r->token_index);
    return status;
}

/* Step 2: finds, creates or replaces the recording of (run, dataset,
 * split) and opens its writer; done (n) gets 1 for the sequences already
 * recorded. Allocates the recorder's buffers. */
static int open_recording(Store *store, const RecordJob *job, const RecordOptions *o,
                          Recorder *r, unsigned char *done) {
    const SpiralConfig *cfg = &job->cfg;
    int L = job->L, with_attention = o->attention.summarize != NULL;
    r->cfg = cfg;
    r->options = o;
    r->n_stats = 2 + o->n_distances;
    r->tokens = malloc((size_t)o->batch_size * L * sizeof(int));
    r->batch_seq = malloc((size_t)o->batch_size * sizeof(int));
    r->token_index = malloc((size_t)L * sizeof(int64_t));
    if (!r->tokens || !r->batch_seq || !r->token_index)
        return spiral_error("out of memory preparing the recording");
    RecordingSettings settings = {
        .run_id = job->run.id, .dataset_id = job->dataset_id, .run_name = job->run.name,
        .dataset_name = job->dataset_name,
        .split = o->split, .seq_len = L, .n_sequences = job->n, .d_model = cfg->d_model,
        .f16 = o->f16, .checkpoint_step = job->checkpoint_step,
        .n_distances = with_attention ? o->n_distances : 0, .distances = o->distances};
    if (recording_writer_open(&r->writer, store, &settings, o->replace, done)) return -1;
    /* a slot: one sequence's (L, d) state or its (H, L, n_stats) statistics */
    size_t state = (size_t)L * cfg->d_model, stats = (size_t)cfg->n_heads * L * r->n_stats;
    r->queue = record_queue_open(&r->writer, (state > stats ? state : stats) * sizeof(float));
    return r->queue ? 0 : -1;
}

/* The next batch: up to batch_size sequences not yet done, from *next on;
 * copies their windows into r->tokens and their indices into r->batch_seq.
 * Returns the batch's size (0: none left). */
static int next_batch(Recorder *r, const RecordJob *job, const unsigned char *done, int *next) {
    int B = 0, L = job->L;
    while (*next < job->n && B < r->options->batch_size) {
        if (!done[*next]) {
            r->batch_seq[B] = *next;
            memcpy(r->tokens + (size_t)B * L, job->stream.tokens + job->window_start[*next],
                   (size_t)L * sizeof(int));
            B++;
        }
        (*next)++;
    }
    return B;
}

/* The record_sequences row of each sequence of the batch: the dataset token
 * index of each of its L positions. */
static int insert_sequence_rows(Recorder *r, const RecordJob *job, int B) {
    for (int b = 0; b < B; b++) {
        size_t first = job->window_start[r->batch_seq[b]];
        for (int i = 0; i < job->L; i++) r->token_index[i] = (int64_t)job->stream.global[first + i];
        if (recording_insert_sequence(&r->writer, r->batch_seq[b], r->token_index, job->L))
            return -1;
    }
    return 0;
}

/* Step 3: records the batch's B sequences in one transaction: clears what a
 * sequence left behind, runs the forward pass with the recorder as its
 * observer (every state and attention event queued as it comes, and
 * inserted by the queue's thread), waits for the queue, inserts the
 * sequence rows, commits. Rolls back on failure. */
static int record_batch(Store *store, RecordJob *job, Recorder *r, int B, RecordResult *result) {
    double batch_start = seconds_now();
    if (store_begin(store)) return -1;
    double begun = seconds_now();
    result->commit_seconds += begun - batch_start;
    r->failed = 0;
    int status = 0;
    for (int b = 0; b < B && status == 0; b++)
        status = recording_clear_sequence(&r->writer, r->batch_seq[b]);
    double cleared = seconds_now();
    r->insert_seconds += cleared - begun;
    double observer_before = r->insert_seconds + r->attention_seconds;
    Observer observer = {observe_event, r, 0, NULL};
    if (r->options->attention.is_attention_stats) { /* an engine may compute them itself */
        observer.n_distances = r->options->n_distances;
        observer.distances = r->options->distances;
    }
    if (status == 0 && job->engine)
        status = job->engine->ops->observe(job->engine, r->tokens, NULL, B, job->L, &observer,
                                           r->options->attention.summarize != NULL, NULL);
    else if (status == 0)
        status = model_forward(&job->model, r->tokens, NULL, B, job->L, &observer);
    result->forward_seconds +=
        seconds_now() - cleared - (r->insert_seconds + r->attention_seconds - observer_before);
    /* the queue's thread finishes the batch's inserts (its own time is
     * counted apart); a failed insert's error wins unless one is pending */
    int pending = status != 0 || r->failed == 1;
    if (record_queue_drain(r->queue, !pending) && status == 0) status = -1;
    if (status == 0 && r->failed) status = -1;
    double rows_start = seconds_now();
    if (status == 0) status = insert_sequence_rows(r, job, B);
    double commit_start = seconds_now();
    r->insert_seconds += commit_start - rows_start;
    if (status == 0) status = store_commit(store);
    result->commit_seconds += seconds_now() - commit_start;
    if (status) store_rollback(store);
    return status;
}

/* Step 4: copies the write-ahead log into the database file (two fsyncs),
 * counted in checkpoint_seconds. */
static int checkpoint_wal(Store *store, RecordResult *result) {
    double start = seconds_now();
    int status = store_wal_checkpoint(store);
    result->checkpoint_seconds += seconds_now() - start;
    return status;
}

/* Reports sequences done of n, with the rate of this session's batches. */
static void report_progress(const RecordOptions *o, const RecordResult *result, const Recorder *r,
                            int recorded_before, int n, double elapsed) {
    char detail[96];
    double seconds = elapsed > 0 ? elapsed : 1e-9;
    snprintf(detail, sizeof detail, "%.1f seq/s | %.1f MB/s", result->recorded_now / seconds,
             r->bytes / 1e6 / seconds);
    long done = recorded_before + result->recorded_now;
    ProgressReport report = {"record", "sequences", done, n, elapsed, recorded_before, detail,
                             done == n};
    progress_report(o->progress, &report);
}

/* Step 5: marks the recording done and checkpoints the log a last time:
 * the recording is in the database file, fsynced. */
static int finish_recording(Store *store, Recorder *r, RecordResult *result) {
    if (recording_mark_done(&r->writer)) return -1;
    return checkpoint_wal(store, result);
}

int record_run(Store *store, const char *run_name, const char *dataset_name,
               const RecordOptions *o, RecordResult *result) {
    RecordJob job = {0};
    Recorder rec = {0};
    unsigned char *done = NULL;
    memset(result, 0, sizeof *result);
    int status = load_job(store, run_name, dataset_name, o, &job);
    if (status == 0 && !(done = malloc((size_t)job.n)))
        status = spiral_error("out of memory preparing the recording");
    if (status == 0) status = open_recording(store, &job, o, &rec, done);
    if (status) {
        status = recorder_close(&rec, status);
        free(done);
        job_free(&job);
        return status;
    }
    result->recording_id = rec.writer.id;
    result->checkpoint_step = job.checkpoint_step;
    status = recording_set_status(&rec.writer, "running");

    double start = seconds_now();
    int recorded_before = 0, next = 0, B;
    for (int k = 0; k < job.n; k++) recorded_before += done[k];
    double uncheckpointed = 0; /* state bytes committed since the last checkpoint */
    while (status == 0 && !(o->interrupt && *o->interrupt) &&
           (B = next_batch(&rec, &job, done, &next)) > 0) {
        double bytes_before = rec.bytes;
        if ((status = record_batch(store, &job, &rec, B, result))) break;
        result->recorded_now += B;
        uncheckpointed += rec.bytes - bytes_before;
        if (uncheckpointed >= RECORD_CHECKPOINT_BYTES) {
            status = checkpoint_wal(store, result);
            uncheckpointed = 0;
        }
        report_progress(o, result, &rec, recorded_before, job.n, seconds_now() - start);
    }
    if (status == 0 && o->interrupt && *o->interrupt && next_batch(&rec, &job, done, &next) > 0) {
        /* stopped by a signal: what is recorded is committed; say so */
        result->interrupted = 1;
        status = recording_set_status(&rec.writer, "interrupted");
        if (status == 0) status = checkpoint_wal(store, result);
    } else if (status == 0) {
        status = finish_recording(store, &rec, result);
    }
    result->n_sequences = job.n;
    result->bytes = rec.bytes;
    result->seconds = seconds_now() - start;
    result->insert_seconds = rec.insert_seconds + record_queue_busy_seconds(rec.queue);
    result->attention_seconds = rec.attention_seconds;
    result->store_seconds = result->insert_seconds + result->commit_seconds +
                            result->checkpoint_seconds;
    status = recorder_close(&rec, status);
    free(done);
    job_free(&job);
    return status;
}
