/*
 * record.h: runs a trained checkpoint over a probe dataset and stores every
 * iteration's hidden states and attention statistics (store schema v2).
 *
 * A recording is one (run, dataset, split, checkpoint step): n_sequences windows of seq_len
 * tokens, taken at document starts of the split (evenly spaced through the
 * split when it has fewer documents than sequences). For each sequence:
 *   site 'token',      iteration t = 0..T, scale 1: h(t) (t = 0 is the
 *                      prelude output h(0))
 *   site 'latent_in',  iteration t, scale g_t: z entering the core
 *   site 'latent_out', iteration t, scale g_t: z~ leaving it
 *                      (latent sites only for iterations with g > 1 or a
 *                      shift; at full resolution they equal h(t), h(t+1))
 *   site 'coda',       iteration T, scale 1: the coda output
 * For the dense baseline every core layer counts as an iteration: token
 * iteration l + 1 is the output of layer l, so the same probes apply.
 * Attention statistics per (iteration, block, layer): for each head and
 * query row, 2 + n_distances numbers that the caller's AttentionSummary
 * computes (analysis/attention_stats.c: the mean attention distance in
 * token units, the entropy in nats, the mass beyond each distance D of
 * `distances`); none without one.
 *
 * Writes are one transaction per batch of sequences, so a killed recording
 * leaves whole sequences only, and running it again records just the
 * missing ones. One process at a time writes a recording: a second
 * `spiral record` of the same run, dataset and split fails at once naming
 * the first (data/recording_store.h, ownership), and a recording whose
 * writer was killed reads as 'interrupted'. The recording checkpoints the WAL every 256 MiB of states
 * and at the end, so a finished recording is in the database file, fsynced
 * (unless another connection is reading or checkpointing the log just then;
 * a later checkpoint copies what is left). The tables and every SQL
 * statement are in data/recording_store.c.
 */
#ifndef SPIRAL_RECORD_H
#define SPIRAL_RECORD_H

#include "dataset.h"
#include "model.h"
#include "progress.h"
#include <signal.h>

#include "recording_store.h"
#include "store.h"

/* How one attention event becomes statistics rows: for batch row b of
 * event (probabilities (B, heads, rows, rows), e->pos the token position of
 * each row), fills stats (heads, rows, 2 + n_distances). Returns 0, or -1
 * with spiral_error. core/ records what it is given; analysis/ says what
 * the numbers are (attention_stats_summary). */
typedef struct {
    int (*summarize)(void *context, const ObserveEvent *event, int b, int n_distances,
                     const int *distances, float *stats);
    void *context;
    /* 1: summarize computes attention_stats_compute's statistics, which an
     * engine may then compute itself (the CUDA engine, on the GPU) */
    int is_attention_stats;
} AttentionSummary;

typedef struct {
    const char *split;        /* "test" (default), "val", "train", "test_ood" */
    long long step;           /* the checkpoint at or before this step; -1 (default): the last */
    const char *device;       /* "cpu" (NULL) or "cuda": the engine of the forward passes (fp32) */
    int n_sequences;          /* default 500, as the paper's probes */
    int seq_len;              /* 0: the run's train.seq_len */
    int f16;                  /* store states as float16 instead of float32 */
    int batch_size;           /* sequences per forward pass and transaction */
    int n_distances;
    int distances[RECORD_MAX_DISTANCES];  /* token units, default 4, 16, 64 */
    AttentionSummary attention; /* summarize NULL: no attention statistics */
    const Progress *progress; /* sequences done of n_sequences, or NULL */
    int replace;              /* delete an existing recording with other settings */
    volatile sig_atomic_t *interrupt; /* set (e.g. by SIGTERM): stop after the batch in
                                         progress and mark the recording interrupted; or NULL */
} RecordOptions;

void record_options_default(RecordOptions *options);

typedef struct {
    long long recording_id;
    long long checkpoint_step;/* the step of the checkpoint recorded */
    int n_sequences, recorded_now;
    int interrupted;          /* stopped by *interrupt before every sequence was recorded */
    double bytes;             /* state bytes written now */
    double seconds;           /* the batches and the last checkpoint (setup excluded) */
    /* where the time went (bench/bench_record.c prints them all) */
    double forward_seconds;   /* forward passes, without the observer's work below */
    double attention_seconds; /* attention statistics */
    double insert_seconds;    /* converting and inserting states, statistics and sequence rows
                                 (the inserts run on the queue's thread, alongside the passes) */
    double commit_seconds;    /* BEGIN and COMMIT (the batch's last pages go to the WAL, no fsync) */
    double checkpoint_seconds;/* WAL checkpoints, the last one included: fsync the WAL, copy
                                 its pages into the database file, fsync that */
    double store_seconds;     /* the store path: insert + commit + checkpoint (so the parts may
                                 add up to more than seconds) */
} RecordResult;

/* The first token of each of n windows of L tokens in stream: at document
 * starts when the split has at least n of them, else evenly spaced through
 * the split (the rule every recording and the logit lens use). Returns 0,
 * or -1 if the split has room for fewer than n windows. */
int record_windows(size_t *start, const SplitStream *stream, int n, int L,
                   const char *dataset_name, const char *split);

/* Records run `run_name` on dataset `dataset_name`. */
int record_run(Store *store, const char *run_name, const char *dataset_name,
               const RecordOptions *options, RecordResult *result);

#endif
