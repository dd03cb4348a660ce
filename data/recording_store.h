/*
 * recording_store.h: the recording tables of the store (schema v2):
 * recordings, record_sequences, states and attention_stats.
 *
 * A recording is one (run, dataset, split, checkpoint step). Its sequences are recorded one
 * transaction per batch: the sequence's states, its attention statistics
 * and its record_sequences row (the dataset token index of each position)
 * are committed together, so a sequence with a record_sequences row is
 * whole, and a recording made again with the same settings records only
 * the sequences without one.
 *
 * The writer side (RecordingWriter) is what core/record.c uses while it
 * runs a model; the reader side is what probes, analyses and export use.
 * States are rows x cols little-endian float32 or float16 values;
 * attention statistics are float32 (heads, rows, 2 + n_distances): mean
 * attention distance in tokens, entropy in nats, and the mass beyond each
 * distance of the recording's distances.
 *
 * Ownership: the process writing a recording holds its owner lock
 * (base/owner_lock.h), the file recording-RUN_ID-DATASET_ID-SPLIT in the
 * folder STORE-locks beside the store, for as long as it writes; the kernel
 * drops it when the process ends, however it ends. A second writer of the
 * same (run, dataset, split) fails at once naming the owner, and a recording
 * whose status says 'running' but whose lock nobody holds (its writer was
 * killed) is read as 'interrupted'.
 */
#ifndef SPIRAL_RECORDING_STORE_H
#define SPIRAL_RECORDING_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "owner_lock.h"
#include "store.h"

#define RECORD_MAX_DISTANCES 8

/* ------------------------------------------------------------------------ */
/* Writing a recording                                                      */

/* The settings a recording is made with. A recording of the same (run,
 * dataset, split, checkpoint step) with the same settings is resumed; one with other
 * settings is replaced only when asked to. */
typedef struct {
    long long run_id, dataset_id;
    const char *run_name, *dataset_name;  /* for messages */
    const char *split;
    int seq_len, n_sequences, d_model;
    int f16;                  /* states as float16 (else float32) */
    long long checkpoint_step;
    int n_distances;          /* 0 when no attention statistics are recorded */
    const int *distances;     /* (n_distances) token units */
} RecordingSettings;

/* A recording being written: its row and the statements, prepared once,
 * that each batch runs. */
typedef struct {
    Store *store;
    long long id;             /* recordings.id */
    int f16;
    sqlite3_stmt *insert_state, *insert_attention, *insert_sequence;
    sqlite3_stmt *delete_states, *delete_attention;
    OwnerLock lock;           /* the recording's owner lock, held while open */
} RecordingWriter;

/* Takes the recording's owner lock (an error naming the owner's pid if
 * another process writes the same run, dataset and split), then finds the
 * recording of settings' (run, dataset, split, step) or creates it (status
 * 'running'). An existing recording with other settings is an
 * error, unless replace: then it is deleted first. done (n_sequences) gets
 * 1 for each sequence already recorded. Prepares the writer's statements
 * and turns SQLite's automatic WAL checkpoints off: the recording runs them
 * itself (store_wal_checkpoint). Returns 0 or -1 (spiral_error); on -1 the
 * writer holds nothing. */
int recording_writer_open(RecordingWriter *writer, Store *store, const RecordingSettings *settings,
                          int replace, unsigned char *done);

/* Finalizes the statements, turns the automatic checkpoints back on and
 * releases the owner lock.
 * Returns status if it is nonzero (its error message kept), else 0 or -1 if
 * the automatic checkpoints could not be restored. */
int recording_writer_close(RecordingWriter *writer, int status);

/* Deletes the states and attention statistics of sequence seq (inside the
 * batch's transaction, before recording it). A sequence's rows are
 * committed with its record_sequences row, so there are none unless edited
 * by hand; deleting them lets the inserts be plain INSERTs. */
int recording_clear_sequence(RecordingWriter *writer, int seq);

/* Inserts one state of sequence seq: rows x cols values, float16 or float32
 * as the recording's dtype. SQLite reads values during the call only. */
int recording_insert_state(RecordingWriter *writer, int seq, int step, const char *site,
                           int scale, int rows, int cols, const void *values);

/* Inserts the attention statistics of one layer application of sequence
 * seq: block "pre", "loop" or "post", the layer's step (or -1 in prelude
 * and coda) and index, the chunk size of its rows, and stats (heads, rows,
 * n_stats) float32. */
int recording_insert_attention(RecordingWriter *writer, int seq, int step, const char *block,
                               int layer, int scale, int heads, int rows, int n_stats,
                               const float *stats);

/* Marks sequence seq recorded: token_index (seq_len) is the dataset index
 * of each of its tokens. The last write of a sequence. */
int recording_insert_sequence(RecordingWriter *writer, int seq, const int64_t *token_index,
                              int seq_len);

/* Sets the recording's status to 'done'. */
int recording_mark_done(RecordingWriter *writer);
/* Sets the recording's status: 'running' while a recorder works on it,
 * 'interrupted' when one stopped on a signal before the end. */
int recording_set_status(RecordingWriter *writer, const char *status);

/* ------------------------------------------------------------------------ */
/* Reading a recording                                                      */

/* What a reader needs to know about a recording. */
typedef struct {
    long long id, run_id, dataset_id;
    long long checkpoint_step;             /* the step of the checkpoint recorded */
    int seq_len, n_sequences, d_model, f16;
    int n_distances;                       /* of the attention statistics */
    int distances[RECORD_MAX_DISTANCES];
    char split[16];
    char status[16];                       /* "running", "interrupted" or "done" */
} RecordingInfo;

/* The path of the owner lock of the recording of (run_id, dataset_id,
 * split) into out (size bytes): STORE-locks/recording-RUN-DATASET-SPLIT. */
void recording_lock_path(const Store *store, long long run_id, long long dataset_id,
                         const char *split, char *out, size_t size);

/* The status of a recording as readers should see it: the stored status
 * (in `status`, size bytes), replaced by "interrupted" when it says
 * "running" and no live process holds the recording's owner lock. */
void recording_shown_status(const Store *store, long long run_id, long long dataset_id,
                            const char *split, char *status, size_t size);

/* Finds the recording of (run, dataset, split); of several (made at
 * different checkpoint steps), the one of the latest step; its status as
 * shown (recording_shown_status). Returns 0, or -1 with an error naming
 * them if there is none. */
int recording_find(Store *store, const char *run_name, const char *dataset_name,
                   const char *split, RecordingInfo *info);

/* Reads one state (rows x cols) into out as float, with incremental BLOB
 * I/O; *rows and *cols get its shape. out must hold seq_len * d_model
 * floats. Returns 0, or -1 if absent (error names the site). */
int recording_read_state(Store *store, const RecordingInfo *info, int seq, int step,
                         const char *site, int scale, float *out, int *rows, int *cols);

/* The dataset token index of each of the seq_len tokens of sequence seq. */
int recording_read_token_index(Store *store, const RecordingInfo *info, int seq, size_t *index);

/* One recording as listed: names, split and shown status. */
typedef struct {
    long long id;
    char run[128], dataset[128], split[16], status[16];
} RecordingListRow;

/* Every recording of the store on `split` (every split if NULL), by run
 * then dataset name: *rows (malloc'd, NULL when none; the caller frees it)
 * and *n. Returns 0 or -1. */
int recording_list(Store *store, const char *split, RecordingListRow **rows, int *n);

/* One recorded site: a state every recorded sequence has. */
typedef struct {
    char site[16];            /* "token", "latent_in", "latent_out", "coda" */
    int step;                 /* the states' iteration column */
    int scale;                /* chunk size of its rows */
} RecordedSite;

/* The distinct sites of a recording's states, in the order token,
 * latent_in, latent_out, coda (then any other site by name), each by step
 * and scale. *sites is malloc'd (the caller frees it; NULL when none).
 * Returns 0 or -1. */
int recording_list_sites(Store *store, const RecordingInfo *info, RecordedSite **sites,
                         int *n_sites);

/* One attention_stats row, handed to a visitor. */
typedef struct {
    int seq, step, layer, scale, heads, rows;
    const char *block;        /* "pre", "loop", "post" */
    const float *stats;       /* (heads, rows, 2 + n_distances) when the sizes agree */
    size_t bytes;             /* of stats, as stored: check it against heads x rows */
} AttentionRow;

/* Calls visit(user, row) for every attention_stats row of the recording's
 * sequences seq < n_sequences, in no particular order; row and its stats
 * (a float-aligned copy) live until visit returns. Stops at the first
 * nonzero return of visit and returns it; else 0, or -1 on a store error. */
int recording_read_attention(Store *store, const RecordingInfo *info, int n_sequences,
                             int (*visit)(void *user, const AttentionRow *row), void *user);

#endif
