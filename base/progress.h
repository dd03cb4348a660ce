/*
 * progress.h: how long-running library work reports its progress.
 *
 * The library never prints. Training, recording, probing and analysis send
 * a ProgressReport to the Progress they were given (or to nobody), and the
 * caller decides how to show it: cli/ draws a bar on a terminal and plain
 * lines when stderr is a file or a pipe.
 */
#ifndef SPIRAL_PROGRESS_H
#define SPIRAL_PROGRESS_H

typedef struct {
    const char *task;     /* what is being done: "train", "record", "probe", ... */
    const char *unit;     /* what is counted: "steps", "sequences", "probes", ... */
    long done, total;     /* units done of total (total 0: unknown) */
    double elapsed;       /* seconds since the task started (or resumed) */
    long done_at_start;   /* units already done when the clock started (a resume) */
    const char *detail;   /* the task's own figures ("loss 2.31 | 5120 tok/s"), or NULL */
    int finished;         /* 1 on the task's last report */
} ProgressReport;

typedef struct {
    void (*fn)(void *user, const ProgressReport *report);
    void *user;
} Progress;

/* Hands report to progress->fn; nothing when progress or its fn is NULL. */
static inline void progress_report(const Progress *progress, const ProgressReport *report) {
    if (progress && progress->fn) progress->fn(progress->user, report);
}

/* Seconds left at the rate so far: (total - done) * elapsed / (done -
 * done_at_start); -1 when unknown. */
static inline double progress_eta(const ProgressReport *r) {
    long progressed = r->done - r->done_at_start;
    if (r->total <= 0 || progressed <= 0 || r->elapsed <= 0) return -1;
    return (double)(r->total - r->done) * r->elapsed / (double)progressed;
}

#endif
