/*
 * record_queue.h: a recording's inserts on a thread of their own (internal
 * to spiral record), so that the forward pass goes on while the store
 * writes.
 *
 * The recorder reserves a slot (waiting while all of them are taken), fills
 * its buffer and key, and submits it; the queue's thread inserts the
 * submitted slots in order through the RecordingWriter, inside the batch's
 * transaction, which the recorder commits only after record_queue_drain.
 * The thread is the only user of the store's connection between the
 * batch's first submit and the drain. A failed insert stops the queue: the
 * slots after it are dropped, reserve returns NULL, and drain returns -1
 * with the insert's error.
 */
#ifndef SPIRAL_RECORD_QUEUE_H
#define SPIRAL_RECORD_QUEUE_H

#include <stddef.h>

#include "recording_store.h"

/* One insert: a state or a layer's attention statistics of one sequence. */
typedef struct {
    int is_attention;
    int seq, step;
    char site[16];            /* state: site name */
    int scale, rows, cols;    /* state: chunk size, (rows, cols) values */
    const char *block;        /* attention: "pre", "loop" or "post" (a static string) */
    int layer, g, heads, n_rows, n_stats; /* attention: (heads, n_rows, n_stats) floats */
    void *data;               /* the slot's buffer (slot_bytes), owned by the queue */
} QueuedInsert;

typedef struct RecordQueue RecordQueue;

/* Starts the thread; each of the queue's slots holds slot_bytes. Returns
 * the queue or NULL (spiral_error). */
RecordQueue *record_queue_open(RecordingWriter *writer, size_t slot_bytes);

/* A free slot to fill (waits for one), or NULL once an insert has failed. */
QueuedInsert *record_queue_reserve(RecordQueue *q);

/* Hands the slot reserve returned to the thread. */
void record_queue_submit(RecordQueue *q);

/* Waits until every submitted slot is inserted. Returns 0, or -1 when an
 * insert failed: with its error (spiral_error) if report, else leaving the
 * caller's pending error as it is. The queue then accepts slots again. */
int record_queue_drain(RecordQueue *q, int report);

/* Seconds the thread has spent inserting. */
double record_queue_busy_seconds(RecordQueue *q);

/* Stops the thread (dropping what is still queued) and frees the queue. */
void record_queue_close(RecordQueue *q);

#endif
