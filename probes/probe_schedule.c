/*
 * probe_schedule.c: the walk over (site, source, label, control), the
 * batches on the thread pool, the position-control memo and the progress
 * reports (see probe_schedule.h).
 */
#include "probe_schedule.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "parallel.h"
#include "probe_store.h"

/* One probe to fit: inputs, then its result. */
typedef struct {
    const int *labels;    /* (n_seq, L) per-position labels */
    int label_index;      /* in the request */
    ProbeResult result;   /* label, site, iteration, scale, control, seed set by the walk */
    int failed;
    char error[1024];
} ProbeJob;

/* The jobs of one batch, as the pool's tasks see them. */
typedef struct {
    const ProbeShared *shared;
    const Features *features;
    ProbeJob *jobs;
    atomic_int stop;      /* a job failed: the others not yet started are skipped */
} Batch;

/* What one walk accumulates. */
typedef struct {
    int fit;                      /* 0: count only */
    int pending, skipped;
    ProbeResult *position_memo;   /* (n_labels, n_geometries); control[0] = 0: none yet */
    ProbeResult *lexical_memo;    /* (n_labels, n_lexical_keys); likewise; each memo owns
                                     its test_counts */
    ProbeResult *done;            /* rows written now */
    int n_done, done_capacity;
    int total, reported;          /* progress: probes to do, probes done */
    double start;
} Walk;

/* A pool task: fits job `task`, timing it and keeping its error message
 * (errors are per thread). */
static void fit_task(void *ctx, int task, int thread) {
    Batch *b = ctx;
    ProbeJob *job = &b->jobs[task];
    if (atomic_load(&b->stop)) return;
    double t0 = seconds_now();
    if (probe_fit_one(b->shared, b->features, job->labels, &job->result)) {
        job->failed = 1;
        snprintf(job->error, sizeof job->error, "%s", spiral_last_error());
        atomic_store(&b->stop, 1);
    }
    job->result.seconds = seconds_now() - t0;
}

/* Fits every job on the pool. Returns -1 with the first failed job's error. */
static int run_batch(const ProbeShared *shared, const Features *features, ProbeJob *jobs,
                     int n_jobs) {
    Batch b = {shared, features, jobs, 0};
    parallel_for(n_jobs, fit_task, &b);
    for (int j = 0; j < n_jobs; j++)
        if (jobs[j].failed) {
            const ProbeResult *r = &jobs[j].result;
            return spiral_error("probe of label '%s' at %s iteration %d scale %d (control %s): %s",
                                r->label, r->site, r->iteration, r->scale, r->control,
                                jobs[j].error);
        }
    if (atomic_load(&b.stop)) return spiral_error("a probe failed without a message");
    return 0;
}

/* Reports count more probes done: "probe 37/600 probes | 1.20 s/probe". */
static void report_progress(const ProbeSchedule *s, Walk *walk, int count) {
    walk->reported += count;
    if (!s->progress) return;
    double elapsed = seconds_now() - walk->start;
    char detail[64];
    snprintf(detail, sizeof detail, "%.2f s/probe", walk->reported ? elapsed / walk->reported : 0.0);
    ProgressReport report = {"probe", "probes", walk->reported, walk->total, elapsed, 0, detail,
                             walk->reported >= walk->total};
    progress_report(s->progress, &report);
}

/* The label array a control of a source reads; NULL if the control does
 * not belong to the source. control -1 is the probe itself. */
static const int *job_labels(const LabelData *lab, int source, int control) {
    if (source == SOURCE_RECORDED && control == -1) return lab->values;
    if (source == SOURCE_RECORDED && control == 0) return lab->control;
    if (source == SOURCE_RECORDED && control == 3) return lab->permuted;
    if (source == SOURCE_RANDOM && control == 1) return lab->values;
    if (source == SOURCE_POSITION && control == 2) return lab->values;
    if (source == SOURCE_LEXICAL && control == 4) return lab->values;
    return NULL;
}

/* The memo slot of label l at site for a source whose control is shared
 * by sites (position: per geometry; lexical: per lexical key), or NULL. */
static ProbeResult *memo_slot(const ProbeSchedule *s, Walk *walk, int l, const SiteInfo *site,
                              int source) {
    if (source == SOURCE_POSITION && walk->position_memo)
        return &walk->position_memo[(size_t)l * s->n_geometries + site->geometry];
    if (source == SOURCE_LEXICAL && walk->lexical_memo)
        return &walk->lexical_memo[(size_t)l * s->n_lexical_keys + site->lexical_key];
    return NULL;
}

/* Keeps a written row (the report gets its evaluations and classes). */
static int remember(Walk *walk, const ProbeResult *r) {
    if (walk->n_done == walk->done_capacity) {
        walk->done_capacity = walk->done_capacity ? 2 * walk->done_capacity : 64;
        ProbeResult *grown = realloc(walk->done, (size_t)walk->done_capacity * sizeof *grown);
        if (!grown) return spiral_error("out of memory");
        walk->done = grown;
    }
    walk->done[walk->n_done] = *r;
    walk->done[walk->n_done].test_counts = NULL;   /* borrowed: not kept */
    walk->done[walk->n_done].n_test_groups = 0;
    walk->n_done++;
    return 0;
}

/* Fits the jobs of one (site, source) and writes their rows and the
 * copies' in one transaction. */
static int fit_and_write(const ProbeSchedule *s, Walk *walk, const SiteInfo *site, int source,
                         ProbeJob *jobs, int n_jobs, const ProbeResult *copies, int n_copies,
                         ProbeResult *rows) {
    int status = 0;
    if (n_jobs > 0) {
        Features features;
        float *X = NULL;
        status = probe_features_load(s->features, site, source, &features, &X);
        if (status == 0) status = run_batch(s->shared, &features, jobs, n_jobs);
        free(X);
    }
    /* the batch's rows: the jobs', then the copies' */
    for (int j = 0; j < n_jobs; j++) rows[j] = jobs[j].result;
    for (int c = 0; c < n_copies; c++) rows[n_jobs + c] = copies[c];
    if (status == 0)
        status = probe_store_write_results(s->store, s->recording_id, rows, n_jobs + n_copies);
    /* a shared control's memo takes the job's test counts; others are freed */
    for (int j = 0; j < n_jobs; j++) {
        ProbeResult *memo = memo_slot(s, walk, jobs[j].label_index, site, source);
        if (memo && status == 0) *memo = jobs[j].result;
        else free((int *)jobs[j].result.test_counts);
        jobs[j].result.test_counts = NULL;
    }
    if (status) return -1;
    for (int i = 0; i < n_jobs + n_copies; i++)
        if (remember(walk, &rows[i])) return -1;
    report_progress(s, walk, n_jobs + n_copies);
    return 0;
}

/* Walks every (site, source, label, control); counts the probes still to
 * do, and with walk->fit fits them, one batch per (site, source). */
static int walk_probes(const ProbeSchedule *s, Walk *walk) {
    int max_rows = s->n_labels * (1 + PROBE_N_CONTROLS);
    ProbeJob *jobs = calloc((size_t)max_rows, sizeof *jobs);
    ProbeResult *rows = calloc((size_t)max_rows, sizeof *rows);    /* the batch's rows to write */
    ProbeResult *copies = calloc((size_t)max_rows, sizeof *copies);  /* memoized position rows */
    int status = 0;
    if (!jobs || !rows || !copies) status = spiral_error("out of memory");
    for (int k = 0; k < s->n_sites && status == 0; k++) {
        const SiteInfo *site = &s->sites[k];
        for (int source = 0; source < SOURCE_COUNT && status == 0; source++) {
            int n_jobs = 0, n_copies = 0;
            for (int l = 0; l < s->n_labels && status == 0; l++)
                for (int c = -1; c < PROBE_N_CONTROLS && status == 0; c++) {
                    if (c >= 0 && !(s->controls & (1 << c))) continue;
                    const int *labels = job_labels(&s->labels[l], source, c);
                    if (!labels) continue;
                    const char *control = c < 0 ? "none" : probe_control_name(1 << c);
                    int exists = probe_store_result_exists(s->store, s->recording_id,
                                                           s->labels[l].name, site->site,
                                                           site->iteration, site->scale, control);
                    if (exists < 0) status = -1;
                    if (exists != 0) {
                        if (exists > 0 && walk->fit) walk->skipped++;
                        continue;
                    }
                    walk->pending++;
                    if (!walk->fit) continue;
                    const ProbeResult *memo = memo_slot(s, walk, l, site, source);
                    ProbeResult *r;
                    if (memo && memo->control[0]) {
                        /* same rows, same labels, same seed: the same probe */
                        r = &copies[n_copies++];
                        *r = *memo;
                        r->seconds = 0;
                        r->evaluations = 0;
                    } else {
                        ProbeJob *job = &jobs[n_jobs++];
                        memset(job, 0, sizeof *job);
                        job->labels = labels;
                        job->label_index = l;
                        r = &job->result;
                    }
                    snprintf(r->label, sizeof r->label, "%s", s->labels[l].name);
                    snprintf(r->site, sizeof r->site, "%s", site->site);
                    snprintf(r->control, sizeof r->control, "%s", control);
                    r->iteration = site->iteration;
                    r->scale = site->scale;
                    r->seed = s->seed;
                }
            if (status == 0 && walk->fit && n_jobs + n_copies > 0)
                status = fit_and_write(s, walk, site, source, jobs, n_jobs, copies, n_copies, rows);
        }
    }
    free(jobs);
    free(rows);
    free(copies);
    return status;
}

int probe_schedule_count(const ProbeSchedule *schedule, int *pending) {
    Walk walk = {0};
    int status = walk_probes(schedule, &walk);
    *pending = walk.pending;
    return status;
}

int probe_schedule_run(const ProbeSchedule *schedule, int total, ProbeResult **fitted,
                       int *n_fitted, int *skipped) {
    Walk walk = {0};
    walk.fit = 1;
    walk.total = total;
    walk.start = seconds_now();
    *fitted = NULL;
    *n_fitted = 0;
    *skipped = 0;
    size_t n_position = (size_t)schedule->n_labels * schedule->n_geometries;
    size_t n_lexical = (size_t)schedule->n_labels * schedule->n_lexical_keys;
    walk.position_memo = calloc(n_position + 1, sizeof *walk.position_memo);
    walk.lexical_memo = calloc(n_lexical + 1, sizeof *walk.lexical_memo);
    int status = walk.position_memo && walk.lexical_memo ? walk_probes(schedule, &walk)
                                                         : spiral_error("out of memory");
    for (size_t i = 0; walk.position_memo && i < n_position; i++)
        free((int *)walk.position_memo[i].test_counts);
    for (size_t i = 0; walk.lexical_memo && i < n_lexical; i++)
        free((int *)walk.lexical_memo[i].test_counts);
    free(walk.position_memo);
    free(walk.lexical_memo);
    *fitted = walk.done;
    *n_fitted = walk.n_done;
    *skipped = walk.skipped;
    return status;
}
