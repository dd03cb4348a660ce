/*
 * record_queue.c: a recording's inserts on a thread of their own (see
 * record_queue.h).
 *
 * The slots form a ring: [first, first + count) are submitted and not yet
 * inserted (the thread works on slot first, unlocked, and frees it when the
 * insert returns); reserve hands out slot first + count once count <
 * QUEUE_SLOTS. One mutex guards the ring, one condition variable wakes both
 * sides.
 */
#include "record_queue.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"

/* Eight states in flight: at d = 768 and L = 1024 in float32, 25 MB. */
enum { QUEUE_SLOTS = 8 };

struct RecordQueue {
    RecordingWriter *writer;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;       /* a slot submitted or freed, or stop */
    QueuedInsert slots[QUEUE_SLOTS];
    int first, count;             /* the submitted slots */
    int stop;                     /* close: the thread leaves */
    int failed;                   /* an insert failed: error holds its message */
    char error[512];
    double busy_seconds;
};

/* One slot into the store. */
static int insert(RecordingWriter *writer, const QueuedInsert *s) {
    if (s->is_attention)
        return recording_insert_attention(writer, s->seq, s->step, s->block, s->layer, s->g,
                                          s->heads, s->n_rows, s->n_stats, s->data);
    return recording_insert_state(writer, s->seq, s->step, s->site, s->scale, s->rows, s->cols,
                                  s->data);
}

/* The thread: inserts the oldest submitted slot, frees it, until stopped.
 * After a failure it frees the slots without inserting them. */
static void *queue_thread(void *arg) {
    RecordQueue *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (q->count == 0 && !q->stop) pthread_cond_wait(&q->changed, &q->lock);
        if (q->stop) break;
        QueuedInsert *s = &q->slots[q->first];
        int failed = q->failed;
        pthread_mutex_unlock(&q->lock);
        double start = seconds_now();
        int status = failed ? 0 : insert(q->writer, s);
        double took = seconds_now() - start;
        pthread_mutex_lock(&q->lock);
        q->busy_seconds += took;
        if (status && !q->failed) {
            q->failed = 1;
            snprintf(q->error, sizeof q->error, "%s", spiral_last_error());
        }
        q->first = (q->first + 1) % QUEUE_SLOTS;
        q->count--;
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

RecordQueue *record_queue_open(RecordingWriter *writer, size_t slot_bytes) {
    RecordQueue *q = calloc(1, sizeof *q);
    if (!q) {
        spiral_error("out of memory for the recording's queue");
        return NULL;
    }
    q->writer = writer;
    for (int i = 0; i < QUEUE_SLOTS; i++) {
        q->slots[i].data = malloc(slot_bytes);
        if (!q->slots[i].data) {
            for (int k = 0; k < i; k++) free(q->slots[k].data);
            free(q);
            spiral_error("out of memory for the recording's queue (%d x %zu bytes)", QUEUE_SLOTS,
                         slot_bytes);
            return NULL;
        }
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->changed, NULL);
    if (pthread_create(&q->thread, NULL, queue_thread, q)) {
        pthread_cond_destroy(&q->changed);
        pthread_mutex_destroy(&q->lock);
        for (int i = 0; i < QUEUE_SLOTS; i++) free(q->slots[i].data);
        free(q);
        spiral_error("cannot start the recording's store thread");
        return NULL;
    }
    return q;
}

QueuedInsert *record_queue_reserve(RecordQueue *q) {
    pthread_mutex_lock(&q->lock);
    while (q->count == QUEUE_SLOTS && !q->failed) pthread_cond_wait(&q->changed, &q->lock);
    QueuedInsert *s = q->failed ? NULL : &q->slots[(q->first + q->count) % QUEUE_SLOTS];
    pthread_mutex_unlock(&q->lock);
    return s;
}

void record_queue_submit(RecordQueue *q) {
    pthread_mutex_lock(&q->lock);
    q->count++;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}

int record_queue_drain(RecordQueue *q, int report) {
    pthread_mutex_lock(&q->lock);
    while (q->count > 0) pthread_cond_wait(&q->changed, &q->lock);
    int failed = q->failed;
    char error[sizeof q->error];
    memcpy(error, q->error, sizeof error);
    q->failed = 0;
    pthread_mutex_unlock(&q->lock);
    if (!failed) return 0;
    return report ? spiral_error("%s", error) : -1;
}

double record_queue_busy_seconds(RecordQueue *q) {
    pthread_mutex_lock(&q->lock);
    double seconds = q->busy_seconds;
    pthread_mutex_unlock(&q->lock);
    return seconds;
}

void record_queue_close(RecordQueue *q) {
    if (!q) return;
    pthread_mutex_lock(&q->lock);
    q->stop = 1;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->changed);
    pthread_mutex_destroy(&q->lock);
    for (int i = 0; i < QUEUE_SLOTS; i++) free(q->slots[i].data);
    free(q);
}
