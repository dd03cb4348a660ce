/*
 * probe_run.c: every probe of a recording and its controls (see
 * probe_run.h for the method, the controls, the seeds and the threads).
 *
 * The run is organized around per-position label arrays: for each requested
 * label, values (n_seq, L) hold the label of every position of every
 * recorded window, and so do its control-task and permuted versions. A site
 * only adds a map from its rows to positions (pos, a latent's last member),
 * so one function serves every site, label and control. A probe is then a
 * ProbeJob: features of one site (recorded, random-model or one-hot
 * position) plus one of those arrays; jobs of one site and feature source
 * run together on the worker threads.
 *
 * Flow of probe_run:
 *   find run, dataset, recording; read every window's token index
 *   resolve the labels -> LabelData (values, control, permuted)
 *   list the recorded sites (SELECT DISTINCT site, iteration, scale)
 *   for each site, for each feature source (recorded, position, random):
 *       the probes not yet in the store -> jobs; load the features;
 *       fit the jobs on the threads; write their rows in one transaction
 *   read every row of the labels back -> report; summaries -> store
 */
#include "clock.h"
#include "probe_run.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dataset.h"
#include "error.h"
#include "logreg.h"
#include "model.h"
#include "probe_stats.h"
#include "recording_store.h"
#include "scale.h"
#include "steps.h"

/* OpenBLAS's thread control (declared in its cblas.h, which cannot be
 * included beside gsl_randist.h: both declare the CBLAS enums). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

#define PROBE_MIN_SEQUENCES 5
#define PROBE_POSITION_BUCKETS 1024
#define PROBE_MAX_THREADS 64
#define PROBE_RANDOM_BATCH 8
#define PROBE_N_LAMBDAS 4
#define PROBE_N_CONTROLS 4

/* The L2 grid, strongest first: each fit warm-starts the next. */
static const double probe_lambdas[PROBE_N_LAMBDAS] = {1e-1, 1e-2, 1e-3, 1e-4};

/* Control names, index k for bit 1 << k. */
static const char *const control_names[PROBE_N_CONTROLS] = {"control_task", "random_model",
                                                             "position", "permuted"};

/* Where a sequence goes. */
enum { SEQ_TRAIN = 0, SEQ_VAL = 1, SEQ_TEST = 2 };

/* Feature sources, in the order a site processes them. */
enum { SOURCE_RECORDED = 0, SOURCE_POSITION = 1, SOURCE_RANDOM = 2, SOURCE_COUNT = 3 };

void probe_options_default(ProbeOptions *o) {
    memset(o, 0, sizeof *o);
    o->split = "test";
    o->seed = 1;
    o->max_train = 20000;
    o->top_n = 16;
    o->controls = PROBE_CONTROL_ALL;
    o->tol = PROBE_DEFAULT_TOL;
    o->max_iter = PROBE_DEFAULT_MAX_ITER;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cores < 1 ? 1 : cores > PROBE_MAX_THREADS ? PROBE_MAX_THREADS : (int)cores;
}

const char *probe_control_name(int bit) {
    for (int k = 0; k < PROBE_N_CONTROLS; k++)
        if (bit == 1 << k) return control_names[k];
    return "none";
}

int probe_control_bit(const char *name) {
    for (int k = 0; k < PROBE_N_CONTROLS; k++)
        if (!strcmp(name, control_names[k]) || (name[0] == 'a' + k && name[1] == '\0'))
            return 1 << k;
    return 0;
}


/* ------------------------------------------------------------------ */
/* Sites                                                               */

/* One recorded (site, iteration, scale) and the geometry of its rows. */
typedef struct {
    char site[16];
    int iteration, scale;
    int g, w;              /* chunk size and offset of the rows (1, 0 at token level) */
    int rows;              /* rows per sequence */
    int *pos;              /* (rows) token position of each row: a latent's last member */
    int geometry;          /* index of (g, w) among the distinct geometries */
    size_t random_offset;  /* first float of its random-model states in the temporary file */
} SiteInfo;

/* Lists the recorded sites in the order token, latent_in, latent_out, coda,
 * then by iteration and scale, and works out their row geometry from the
 * run's config. *sites (caller frees, with each pos) and *n_sites. */
static int list_sites(Store *store, const RecordingInfo *info, const SpiralConfig *cfg,
                      SiteInfo **sites, int *n_sites, int *n_geometries) {
    sqlite3_stmt *stmt;
    *sites = NULL;
    *n_sites = 0;
    *n_geometries = 0;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT DISTINCT site, iteration, scale FROM states WHERE recording_id=?"
                           " ORDER BY CASE site WHEN 'token' THEN 0 WHEN 'latent_in' THEN 1"
                           " WHEN 'latent_out' THEN 2 WHEN 'coda' THEN 3 ELSE 4 END, site,"
                           " iteration, scale", -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, info->id);
    int capacity = 0, status = 0, geo_g[64], geo_w[64];
    while (status == 0 && sqlite3_step(stmt) == SQLITE_ROW) {
        if (*n_sites == capacity) {
            capacity = capacity ? 2 * capacity : 16;
            SiteInfo *grown = realloc(*sites, (size_t)capacity * sizeof *grown);
            if (!grown) {
                status = spiral_error("out of memory listing sites");
                break;
            }
            *sites = grown;
        }
        SiteInfo *s = &(*sites)[*n_sites];
        memset(s, 0, sizeof *s);
        snprintf(s->site, sizeof s->site, "%s", (const char *)sqlite3_column_text(stmt, 0));
        s->iteration = sqlite3_column_int(stmt, 1);
        s->scale = sqlite3_column_int(stmt, 2);
        ChunkGeometry geo;
        if (site_geometry(cfg, s->site, s->iteration, s->scale, info->seq_len, &geo)) {
            status = -1;
            break;
        }
        s->g = geo.g;
        s->w = geo.w;
        s->rows = geo.J;
        s->pos = malloc((size_t)geo.J * sizeof *s->pos);
        if (!s->pos) {
            status = spiral_error("out of memory listing sites");
            break;
        }
        (*n_sites)++;
        site_row_positions(&geo, s->pos);
        s->geometry = -1;
        for (int k = 0; k < *n_geometries; k++)
            if (geo_g[k] == s->g && geo_w[k] == s->w) s->geometry = k;
        if (s->geometry < 0) {
            if (*n_geometries == 64) {
                status = spiral_error("more than 64 distinct chunk geometries");
                break;
            }
            geo_g[*n_geometries] = s->g;
            geo_w[*n_geometries] = s->w;
            s->geometry = (*n_geometries)++;
        }
    }
    sqlite3_finalize(stmt);
    if (status == 0 && *n_sites == 0)
        status = spiral_error("the recording holds no states");
    return status;
}

static void free_sites(SiteInfo *sites, int n_sites) {
    for (int k = 0; k < n_sites; k++) free(sites[k].pos);
    free(sites);
}

/* ------------------------------------------------------------------ */
/* Labels                                                              */

typedef enum { LABEL_DATASET, LABEL_LAG, LABEL_NEXT, LABEL_SLOT } LabelKind;

/* A requested label over the recorded windows, one value per position. */
typedef struct {
    const char *name;
    int *values;     /* (n_seq, L) the label, -1 where undefined */
    int *control;    /* (n_seq, L) the control task's labels, or NULL */
    int *permuted;   /* (n_seq, L) labels of another window, or NULL */
} LabelData;

/* Parses a generic label name: 1 with *kind and *k set, 0 if name is not
 * generic (no "gen." prefix), -1 with an error if it is malformed or its
 * argument is out of range for windows of L tokens. */
static int parse_generic(const char *name, int L, LabelKind *kind, int *k) {
    static const struct { const char *prefix; LabelKind kind; int min; } forms[3] = {
        {"gen.lag", LABEL_LAG, 0}, {"gen.next", LABEL_NEXT, 1}, {"gen.slot", LABEL_SLOT, 2}};
    if (strncmp(name, "gen.", 4) != 0) return 0;
    for (int f = 0; f < 3; f++) {
        size_t n = strlen(forms[f].prefix);
        if (strncmp(name, forms[f].prefix, n) != 0) continue;
        const char *digits = name + n;
        char *end;
        long v = strtol(digits, &end, 10);
        int max = forms[f].kind == LABEL_SLOT ? L : L - 1;
        if (end == digits || *end != '\0' || digits[0] == '-' || digits[0] == '+' || v < forms[f].min ||
            v > max)
            return spiral_error("label '%s': expected %s<K> with K in %d..%d (windows of %d tokens)",
                                name, forms[f].prefix, forms[f].min, max, L);
        *kind = forms[f].kind;
        *k = (int)v;
        return 1;
    }
    return 0;
}

/* "a, b, c" of the dataset's labels and the generic forms, for errors. */
static void available_labels(char *out, size_t size, const Dataset *ds, int L) {
    size_t used = 0;
    out[0] = '\0';
    for (int l = 0; l < ds->n_labels && used < size; l++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", l ? ", " : "", ds->labels[l].name);
    if (used < size)
        snprintf(out + used, size - used, "%sgeneric gen.lagK (K = 0..%d), gen.nextK (K = 1..%d), "
                 "gen.slotG (G = 2..%d)", ds->n_labels ? "; " : "", L - 1, L - 1, L);
}

/* The class of each token id (vocab): its rank among the top_n most
 * frequent tokens of tokens (n), ties to the smaller id, or top_n
 * ("other") when more distinct tokens occur. Unused ids get -1. */
static int token_classes(const int *tokens, size_t n, int vocab, int top_n, int *classes) {
    long *counts = calloc((size_t)vocab, sizeof *counts);
    int *order = malloc((size_t)vocab * sizeof *order);
    if (!counts || !order) {
        free(counts);
        free(order);
        return spiral_error("out of memory counting tokens");
    }
    for (size_t i = 0; i < n; i++) counts[tokens[i]]++;
    int distinct = 0;
    for (int t = 0; t < vocab; t++)
        if (counts[t] > 0) order[distinct++] = t;
    /* selection by count, descending, ties to the smaller id (insertion sort:
     * stable on ids already ascending) */
    for (int i = 1; i < distinct; i++) {
        int t = order[i], j = i;
        while (j > 0 && counts[order[j - 1]] < counts[t]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = t;
    }
    for (int t = 0; t < vocab; t++) classes[t] = -1;
    for (int r = 0; r < distinct; r++) classes[order[r]] = r < top_n ? r : top_n;
    free(counts);
    free(order);
    return 0;
}

/* Fills values (n_seq, L) of label `name` from the dataset labels (index
 * maps each position to its dataset token) or a generic form; token_class
 * (vocab) gives generic token labels their classes. */
static int label_values(const char *name, const Dataset *ds, const size_t *index,
                        const int *tokens, const int *token_class, int n_seq, int L, int *values) {
    LabelKind kind = LABEL_DATASET;
    int k = 0, generic = parse_generic(name, L, &kind, &k);
    int dataset_label = dataset_find_label(ds, name);
    if (dataset_label >= 0) {
        const int32_t *v = ds->labels[dataset_label].values;
        for (size_t i = 0; i < (size_t)n_seq * L; i++) values[i] = v[index[i]];
        return 0;
    }
    if (generic < 0) return -1;
    if (generic == 0) {
        char list[1500];
        available_labels(list, sizeof list, ds, L);
        return spiral_error("unknown label '%s'; available: %s", name, list);
    }
    for (int s = 0; s < n_seq; s++)
        for (int p = 0; p < L; p++) {
            int *out = values + (size_t)s * L + p;
            const int *window = tokens + (size_t)s * L;
            if (kind == LABEL_SLOT) *out = p % k;
            else if (kind == LABEL_LAG) *out = p - k >= 0 ? token_class[window[p - k]] : -1;
            else *out = p + k < L ? token_class[window[p + k]] : -1;
        }
    return 0;
}

/* Fails unless values (n) hold at least two classes >= 0. */
static int check_classes(const char *name, const int *values, size_t n, int n_seq,
                         const char *split) {
    int first = -1;
    for (size_t i = 0; i < n; i++) {
        if (values[i] < 0) continue;
        if (first < 0) first = values[i];
        else if (values[i] != first) return 0;
    }
    if (first < 0)
        return spiral_error("label '%s' is undefined (-1) at every position of the %d recorded "
                            "windows (%s split): nothing to probe", name, n_seq, split);
    return spiral_error("label '%s' has a single class (%d) on the %d recorded windows (%s "
                        "split): nothing to probe", name, first, n_seq, split);
}

static void free_labels(LabelData *labels, int n) {
    if (!labels) return;
    for (int l = 0; l < n; l++) {
        free(labels[l].values);
        free(labels[l].control);
        free(labels[l].permuted);
    }
    free(labels);
}

/* ------------------------------------------------------------------ */
/* One probe                                                           */

/* What every probe of a run shares, read only. */
typedef struct {
    int n_seq, L;
    const unsigned char *seq_split;   /* (n_seq) SEQ_* */
    unsigned long seed;
    int max_train;
    double tol;
    int max_iter;
} ProbeShared;

/* The features of one site for every sequence. */
typedef struct {
    const float *X;       /* (n_seq, rows, d), or NULL: one-hot position features */
    int rows, d;
    const int *pos;       /* (rows) token position of each row */
} Features;

/* One probe to fit: inputs, then its result. */
typedef struct {
    const ProbeShared *shared;
    const Features *features;
    const int *labels;    /* (n_seq, L) per-position labels */
    int label_index;      /* in the request */
    ProbeResult result;   /* label, site, iteration, scale, control, seed set by the caller */
    int failed;
    char error[1024];
} ProbeJob;

/* Copies the features of the given rows (index s * rows + r) into out
 * (n, d): recorded rows, or the one-hot of the row's bucket. */
static void gather_rows(float *out, const Features *f, const size_t *rows, int n) {
    for (int i = 0; i < n; i++) {
        float *dst = out + (size_t)i * f->d;
        if (f->X) {
            memcpy(dst, f->X + rows[i] * f->d, (size_t)f->d * sizeof *dst);
        } else {
            int r = (int)(rows[i] % (size_t)f->rows);
            memset(dst, 0, (size_t)f->d * sizeof *dst);
            dst[(size_t)r * f->d / f->rows] = 1.0f;
        }
    }
}

/* Fits the lambdas of the grid strongest first, each from the last, and
 * keeps in *best the model of the highest validation accuracy (ties: the
 * stronger). Like logreg_fit_select, but also counts the evaluations of the
 * whole path, which the benchmark compares with plain BLAS. */
static int fit_lambda_path(LogReg *best, const float *Xtr, const int *ytr, int ntr,
                           const float *Xva, const int *yva, int nva, int d, int K, double tol,
                           int max_iter, int *evaluations) {
    LogReg prev = {0};
    double best_acc = -1;
    memset(best, 0, sizeof *best);
    *evaluations = 0;
    for (int l = 0; l < PROBE_N_LAMBDAS; l++) {
        LogReg cur;
        double acc;
        if (logreg_fit_from(&cur, l > 0 ? &prev : NULL, Xtr, ytr, ntr, d, K, probe_lambdas[l], tol,
                            max_iter)) {
            logreg_free(&prev);
            logreg_free(best);
            return spiral_error_prefix("lambda %g", probe_lambdas[l]);
        }
        *evaluations += cur.evaluations;
        if (logreg_accuracy(&cur, Xva, yva, nva, &acc)) {
            logreg_free(&cur);
            logreg_free(&prev);
            logreg_free(best);
            return -1;
        }
        if (acc > best_acc) {
            logreg_free(best);
            if (logreg_copy(best, &cur)) {
                logreg_free(&cur);
                logreg_free(&prev);
                return -1;
            }
            best_acc = acc;
        }
        logreg_free(&prev);
        prev = cur;
    }
    logreg_free(&prev);
    return 0;
}

/* ||grad f||_inf at the model's solution on the training rows, recomputed
 * from the objective (the fitter's claim checked independently). */
static int verified_grad_norm(const LogReg *m, const float *X, const int *y, int n,
                              double *norm) {
    size_t p = (size_t)m->K * m->d + m->K;
    double *grad = malloc(p * sizeof *grad), value;
    if (!grad) return spiral_error("out of memory for a gradient");
    int status = logreg_objective(X, y, n, m->d, m->K, m->mean, m->std, m->lambda, m->W, m->b,
                                  &value, grad, grad + (size_t)m->K * m->d);
    *norm = 0;
    for (size_t i = 0; status == 0 && i < p; i++) *norm = fmax(*norm, fabs(grad[i]));
    free(grad);
    return status;
}

/* Fits one probe (see probe_run.h): rows, split, subsample, classes, the
 * lambda path, test metrics. Runs on a worker thread: no store access. */
static int fit_probe(ProbeJob *job) {
    const ProbeShared *sh = job->shared;
    const Features *f = job->features;
    ProbeResult *res = &job->result;
    int n_rows = sh->n_seq * f->rows, d = f->d, status = -1;
    size_t *rows = malloc((size_t)n_rows * sizeof *rows);  /* by split: train, val, test */
    size_t *chosen = NULL;
    int *y = NULL, *pred = NULL, *groups = NULL, *class_of = NULL;
    float *X = NULL;
    LogReg model = {0};
    gsl_rng *rng = NULL;
    if (!rows) return spiral_error("out of memory for %d rows", n_rows);
    /* labelled rows of each split, in (sequence, row) order */
    int count[3] = {0, 0, 0}, max_value = -1;
    for (int pass = 0; pass < 2; pass++) {
        int fill[3] = {0, count[0], count[0] + count[1]};
        for (int s = 0; s < sh->n_seq; s++) {
            int split = sh->seq_split[s];
            for (int r = 0; r < f->rows; r++) {
                int v = job->labels[(size_t)s * sh->L + f->pos[r]];
                if (v < 0) continue;
                if (pass == 0) {
                    count[split]++;
                    if (v > max_value) max_value = v;
                } else {
                    rows[fill[split]++] = (size_t)s * f->rows + r;
                }
            }
        }
    }
    if (count[0] < 1 || count[1] < 1 || count[2] < 1) {
        spiral_error("too few labelled rows: %d train, %d validation, %d test (record more "
                     "sequences)", count[0], count[1], count[2]);
        goto done;
    }
    /* a subsample of the training rows, order kept */
    int ntr = count[0], nva = count[1], nte = count[2];
    size_t *train = rows, *val = rows + count[0], *test = val + count[1];
    if (ntr > sh->max_train) {
        chosen = malloc((size_t)sh->max_train * sizeof *chosen);
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!chosen || !rng) {
            spiral_error("out of memory subsampling %d rows", ntr);
            goto done;
        }
        gsl_rng_set(rng, sh->seed + 1);
        gsl_ran_choose(rng, chosen, (size_t)sh->max_train, train, (size_t)ntr, sizeof *train);
        train = chosen;
        ntr = sh->max_train;
    }
    /* classes renumbered 0..K-1 over the values the rows hold */
    class_of = malloc(((size_t)max_value + 1) * sizeof *class_of);
    int n = ntr + nva + nte;
    y = malloc((size_t)n * sizeof *y);
    pred = malloc((size_t)nte * sizeof *pred);
    groups = malloc((size_t)nte * sizeof *groups);
    X = malloc((size_t)n * d * sizeof *X);
    if (!class_of || !y || !pred || !groups || !X) {
        spiral_error("out of memory for %d rows x %d features", n, d);
        goto done;
    }
    for (int v = 0; v <= max_value; v++) class_of[v] = -1;
    size_t *parts[3] = {train, val, test};
    int sizes[3] = {ntr, nva, nte};
    for (int p = 0, at = 0; p < 3; p++)
        for (int i = 0; i < sizes[p]; i++, at++) {
            size_t row = parts[p][i];
            y[at] = job->labels[row / f->rows * sh->L + f->pos[row % f->rows]];
            class_of[y[at]] = 0;
        }
    int K = 0;
    for (int v = 0; v <= max_value; v++)
        if (class_of[v] == 0) class_of[v] = K++;
    for (int i = 0; i < n; i++) y[i] = class_of[y[i]];
    for (int i = 0; i < nte; i++) groups[i] = (int)(test[i] / f->rows);
    float *Xtr = X, *Xva = X + (size_t)ntr * d, *Xte = Xva + (size_t)nva * d;
    int *ytr = y, *yva = y + ntr, *yte = yva + nva;
    gather_rows(Xtr, f, train, ntr);
    gather_rows(Xva, f, val, nva);
    gather_rows(Xte, f, test, nte);

    int train_classes = 0, first = ytr[0];
    for (int i = 0; i < ntr && train_classes < 2; i++) train_classes = ytr[i] != first ? 2 : 1;
    if (train_classes < 2) {
        /* one training class: the likelihood has no finite optimum; the
         * probe is the constant predictor of that class */
        for (int i = 0; i < nte; i++) pred[i] = first;
        res->l2 = NAN;
        res->iterations = 0;
        res->evaluations = 0;
        res->grad_norm = 0;
        res->converged = 1;
    } else {
        if (fit_lambda_path(&model, Xtr, ytr, ntr, Xva, yva, nva, d, K, sh->tol, sh->max_iter,
                            &res->evaluations) ||
            logreg_predict(&model, Xte, nte, pred, NULL) ||
            verified_grad_norm(&model, Xtr, ytr, ntr, &res->grad_norm))
            goto done;
        res->l2 = model.lambda;
        res->iterations = model.iterations;
        res->converged = res->grad_norm <= sh->tol;
    }
    if (probe_accuracy(yte, pred, nte, &res->accuracy) ||
        probe_macro_f1(yte, pred, nte, K, &res->macro_f1) ||
        probe_majority_baseline(ytr, ntr, yte, nte, K, NULL, &res->majority) ||
        probe_bootstrap_ci(yte, pred, nte, groups, 0, sh->seed + 4, &res->ci_lo, &res->ci_hi))
        goto done;
    res->n_train = ntr;
    res->n_val = nva;
    res->n_test = nte;
    res->n_classes = K;
    res->n_features = d;
    status = 0;
done:
    logreg_free(&model);
    if (rng) gsl_rng_free(rng);
    free(rows);
    free(chosen);
    free(y);
    free(pred);
    free(groups);
    free(class_of);
    free(X);
    return status;
}

/* ------------------------------------------------------------------ */
/* Threads and progress                                                */

typedef struct {
    int enabled, tty;
    int total, done;
    double start, last_print;
} Progress;

/* One more probe done: "probes 37/600 (6%) | 1.2 s/probe | ETA 11m 40s". */
static void progress_step(Progress *p, int count) {
    p->done += count;
    if (!p->enabled) return;
    double now = seconds_now(), elapsed = now - p->start;
    if (!p->tty && p->done < p->total && now - p->last_print < 10) return;
    p->last_print = now;
    double eta = p->done > 0 ? elapsed / p->done * (p->total - p->done) : 0;
    fprintf(stderr, "%sprobes %d/%d (%.0f%%) | %.2f s/probe | elapsed %.0fs | ETA %dm %02ds%s",
            p->tty ? "\r" : "", p->done, p->total, 100.0 * p->done / (p->total ? p->total : 1),
            p->done ? elapsed / p->done : 0.0, elapsed, (int)(eta / 60), (int)eta % 60,
            p->tty ? "   " : "\n");
    if (p->tty && p->done == p->total) fputc('\n', stderr);
}

/* The jobs of one batch and the queue the workers draw from. */
typedef struct {
    ProbeJob *jobs;
    int n_jobs, next, stop;
    pthread_mutex_t lock;
    Progress *progress;
} Batch;

/* Fits one job, timing it and keeping its error message. */
static void run_job(ProbeJob *job) {
    double t0 = seconds_now();
    if (fit_probe(job)) {
        job->failed = 1;
        snprintf(job->error, sizeof job->error, "%s", spiral_last_error());
    }
    job->result.seconds = seconds_now() - t0;
}

/* A worker: takes the next job until none is left or one failed. */
static void *worker(void *arg) {
    Batch *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        int j = b->stop ? b->n_jobs : b->next++;
        pthread_mutex_unlock(&b->lock);
        if (j >= b->n_jobs) break;
        run_job(&b->jobs[j]);
        pthread_mutex_lock(&b->lock);
        if (b->jobs[j].failed) b->stop = 1;
        progress_step(b->progress, 1);
        pthread_mutex_unlock(&b->lock);
    }
    return NULL;
}

/* Fits every job on up to `threads` threads, OpenBLAS on one thread each
 * meanwhile. Returns -1 with the first failed job's error. */
static int run_batch(ProbeJob *jobs, int n_jobs, int threads, Progress *progress) {
    Batch b = {jobs, n_jobs, 0, 0, PTHREAD_MUTEX_INITIALIZER, progress};
    pthread_t ids[PROBE_MAX_THREADS];
    int n_threads = threads < n_jobs ? threads : n_jobs, started = 0;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > PROBE_MAX_THREADS) n_threads = PROBE_MAX_THREADS;
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    for (int t = 1; t < n_threads; t++)
        if (pthread_create(&ids[started], NULL, worker, &b) == 0) started++;
    worker(&b);  /* the calling thread works too */
    for (int t = 0; t < started; t++) pthread_join(ids[t], NULL);
    openblas_set_num_threads(blas_threads);
    pthread_mutex_destroy(&b.lock);
    for (int j = 0; j < n_jobs; j++)
        if (jobs[j].failed) {
            const ProbeResult *r = &jobs[j].result;
            return spiral_error("probe of label '%s' at %s iteration %d scale %d (control %s): %s",
                                r->label, r->site, r->iteration, r->scale, r->control,
                                jobs[j].error);
        }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Random-model states                                                 */

/* Runs a freshly initialized model of the run's config over the recorded
 * windows and writes the state of every listed site, as float32 (n_seq,
 * rows, d) per site at sites[k].random_offset, to a temporary file. */
typedef struct {
    const SiteInfo *sites;
    int n_sites;
    const SpiralConfig *cfg;
    int d;
    const int *batch_seq;     /* (B) sequence of each batch row */
    int fd;
    float *buffer;            /* (L, d) */
    int *written;             /* (n_sites) sequences written per site */
    int failed;
} RandomStates;


/* Writes all of buffer (bytes) at offset, however many calls it takes. */
static int write_at(int fd, const void *buffer, size_t bytes, size_t offset) {
    const char *p = buffer;
    while (bytes > 0) {
        ssize_t n = pwrite(fd, p, bytes, (off_t)offset);
        if (n <= 0) return spiral_error("writing random-model states to a temporary file failed");
        p += n;
        bytes -= (size_t)n;
        offset += (size_t)n;
    }
    return 0;
}

/* Reads bytes at offset into buffer. */
static int read_at(int fd, void *buffer, size_t bytes, size_t offset) {
    char *p = buffer;
    while (bytes > 0) {
        ssize_t n = pread(fd, p, bytes, (off_t)offset);
        if (n <= 0) return spiral_error("reading random-model states from a temporary file failed");
        p += n;
        bytes -= (size_t)n;
        offset += (size_t)n;
    }
    return 0;
}

/* The observer of the random model's forward pass. */
static void observe_random(void *user, const ObserveEvent *e) {
    RandomStates *r = user;
    SiteKey key;
    if (r->failed || !event_site(e, r->cfg, &key)) return;
    const char *site = key.site;
    int iteration = key.step, scale = key.scale;
    int k = 0;
    while (k < r->n_sites && (strcmp(r->sites[k].site, site) || r->sites[k].iteration != iteration ||
                              r->sites[k].scale != scale))
        k++;
    if (k == r->n_sites) return;  /* not recorded: nothing to compare with */
    const SiteInfo *s = &r->sites[k];
    if (e->rows != s->rows || e->cols != r->d) {
        spiral_error("random model: %s iteration %d has %d x %d rows, the recording %d x %d",
                     site, iteration, e->rows, e->cols, s->rows, r->d);
        r->failed = 1;
        return;
    }
    size_t count = (size_t)e->rows * e->cols;
    for (int b = 0; b < e->B && !r->failed; b++) {
        const real *src = e->data + (size_t)b * count;
        for (size_t i = 0; i < count; i++) r->buffer[i] = (float)src[i];
        size_t offset = (s->random_offset + (size_t)r->batch_seq[b] * count) * sizeof(float);
        if (write_at(r->fd, r->buffer, count * sizeof(float), offset)) r->failed = 1;
        r->written[k]++;
    }
}

/* Computes the random model's states of every site into *file (a
 * temporary file the caller closes). tokens (n_seq, L). */
static int random_model_states(const SpiralConfig *cfg, SiteInfo *sites, int n_sites,
                               const int *tokens, int n_seq, int L, unsigned long seed,
                               FILE **file) {
    Model model = {0};
    RandomStates r = {0};
    int batch_seq[PROBE_RANDOM_BATCH], status = -1;
    size_t offset = 0;
    for (int k = 0; k < n_sites; k++) {
        sites[k].random_offset = offset;
        offset += (size_t)n_seq * sites[k].rows * cfg->d_model;
    }
    *file = tmpfile();
    r.buffer = malloc((size_t)L * cfg->d_model * sizeof *r.buffer);
    r.written = calloc((size_t)n_sites, sizeof *r.written);
    if (!*file || !r.buffer || !r.written) {
        spiral_error("cannot create a temporary file for the random model's states (%.1f MB)",
                     offset * 4.0 / 1e6);
        goto done;
    }
    if (model_build(&model, cfg)) goto done;
    model_init_weights(&model, seed);
    r.sites = sites;
    r.n_sites = n_sites;
    r.cfg = cfg;
    r.d = cfg->d_model;
    r.batch_seq = batch_seq;
    r.fd = fileno(*file);
    Observer observer = {observe_random, &r};
    for (int s0 = 0; s0 < n_seq; s0 += PROBE_RANDOM_BATCH) {
        int B = n_seq - s0 < PROBE_RANDOM_BATCH ? n_seq - s0 : PROBE_RANDOM_BATCH;
        for (int b = 0; b < B; b++) batch_seq[b] = s0 + b;
        if (model_forward(&model, tokens + (size_t)s0 * L, NULL, B, L, &observer)) goto done;
        if (r.failed) goto done;
    }
    for (int k = 0; k < n_sites; k++)
        if (r.written[k] != n_seq) {
            spiral_error("random model: the forward pass produced no %s iteration %d scale %d "
                         "(was the recording made with this config?)", sites[k].site,
                         sites[k].iteration, sites[k].scale);
            goto done;
        }
    status = 0;
done:
    model_free(&model);
    free(r.buffer);
    free(r.written);
    return status;
}

/* ------------------------------------------------------------------ */
/* Store                                                               */

/* Binds a double, or NULL for NaN. */
static void bind_real(sqlite3_stmt *stmt, int column, double value) {
    if (isnan(value)) sqlite3_bind_null(stmt, column);
    else sqlite3_bind_double(stmt, column, value);
}

/* A double column, NaN for NULL. */
static double column_real(sqlite3_stmt *stmt, int column) {
    return sqlite3_column_type(stmt, column) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, column);
}

/* Writes rows (n) in one transaction, replacing rows with the same key. */
static int write_results(Store *store, long long recording_id, const ProbeResult *rows, int n) {
    sqlite3_stmt *stmt;
    if (n == 0) return 0;
    if (store_begin(store)) return -1;
    if (sqlite3_prepare_v2(store->db,
                           "INSERT OR REPLACE INTO probe_results(recording_id, label, site,"
                           " iteration, scale, control, accuracy, ci_lo, ci_hi, macro_f1, majority,"
                           " n_train, n_val, n_test, l2, iterations, converged, grad_norm, seed,"
                           " seconds) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &stmt,
                           NULL) != SQLITE_OK) {
        spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
        store_rollback(store);
        return -1;
    }
    int status = 0;
    for (int i = 0; i < n && status == 0; i++) {
        const ProbeResult *r = &rows[i];
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, recording_id);
        sqlite3_bind_text(stmt, 2, r->label, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, r->site, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 4, r->iteration);
        sqlite3_bind_int(stmt, 5, r->scale);
        sqlite3_bind_text(stmt, 6, r->control, -1, SQLITE_STATIC);
        bind_real(stmt, 7, r->accuracy);
        bind_real(stmt, 8, r->ci_lo);
        bind_real(stmt, 9, r->ci_hi);
        bind_real(stmt, 10, r->macro_f1);
        bind_real(stmt, 11, r->majority);
        sqlite3_bind_int(stmt, 12, r->n_train);
        sqlite3_bind_int(stmt, 13, r->n_val);
        sqlite3_bind_int(stmt, 14, r->n_test);
        bind_real(stmt, 15, r->l2);
        sqlite3_bind_int(stmt, 16, r->iterations);
        sqlite3_bind_int(stmt, 17, r->converged);
        bind_real(stmt, 18, r->grad_norm);
        sqlite3_bind_int64(stmt, 19, (sqlite3_int64)r->seed);
        bind_real(stmt, 20, r->seconds);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            status = spiral_error("%s: writing probe results: %s", store->path,
                                  sqlite3_errmsg(store->db));
    }
    sqlite3_finalize(stmt);
    if (status == 0) status = store_commit(store);
    if (status) store_rollback(store);
    return status;
}

/* 1 if the store holds the row of this key, 0 if not, -1 on error. */
static int result_exists(Store *store, sqlite3_stmt *stmt, long long recording_id,
                         const char *label, const SiteInfo *site, const char *control) {
    sqlite3_reset(stmt);
    sqlite3_bind_int64(stmt, 1, recording_id);
    sqlite3_bind_text(stmt, 2, label, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, site->site, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, site->iteration);
    sqlite3_bind_int(stmt, 5, site->scale);
    sqlite3_bind_text(stmt, 6, control, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
}

/* With replace, deletes every row of the labels (all controls, so no row of
 * another seed survives) and their summaries; without, fails if a label has
 * rows of another seed. */
static int prepare_labels(Store *store, long long recording_id, const char *const *labels,
                          int n_labels, const ProbeOptions *o) {
    sqlite3_stmt *stmt;
    if (!o->replace) {
        if (sqlite3_prepare_v2(store->db,
                               "SELECT seed FROM probe_results WHERE recording_id=? AND label=?"
                               " AND seed<>? LIMIT 1", -1, &stmt, NULL) != SQLITE_OK)
            return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
        int status = 0;
        for (int l = 0; l < n_labels && status == 0; l++) {
            sqlite3_reset(stmt);
            sqlite3_bind_int64(stmt, 1, recording_id);
            sqlite3_bind_text(stmt, 2, labels[l], -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 3, (sqlite3_int64)o->seed);
            if (sqlite3_step(stmt) == SQLITE_ROW)
                status = spiral_error("label '%s' was probed with seed %lld; use --replace to "
                                      "probe it again with seed %lu", labels[l],
                                      (long long)sqlite3_column_int64(stmt, 0), o->seed);
        }
        sqlite3_finalize(stmt);
        return status;
    }
    static const char *const deletes[2] = {
        "DELETE FROM probe_results WHERE recording_id=? AND label=?",
        "DELETE FROM probe_summaries WHERE recording_id=? AND label=?"};
    if (store_begin(store)) return -1;
    int status = 0;
    for (int t = 0; t < 2 && status == 0; t++) {
        if (sqlite3_prepare_v2(store->db, deletes[t], -1, &stmt, NULL) != SQLITE_OK) {
            status = spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
            break;
        }
        for (int l = 0; l < n_labels && status == 0; l++) {
            sqlite3_reset(stmt);
            sqlite3_bind_int64(stmt, 1, recording_id);
            sqlite3_bind_text(stmt, 2, labels[l], -1, SQLITE_STATIC);
            if (sqlite3_step(stmt) != SQLITE_DONE)
                status = spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
        }
        sqlite3_finalize(stmt);
    }
    if (status == 0) status = store_commit(store);
    if (status) store_rollback(store);
    return status;
}

/* Appends to the report every stored row of label, ordered by site,
 * iteration, scale and control. */
static int load_results(Store *store, long long recording_id, const char *label,
                        ProbeReport *report, int *capacity) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT site, control, iteration, scale, accuracy, ci_lo, ci_hi,"
                           " macro_f1, majority, n_train, n_val, n_test, l2, iterations, converged,"
                           " grad_norm, seed, seconds FROM probe_results WHERE recording_id=? AND"
                           " label=? ORDER BY CASE site WHEN 'token' THEN 0 WHEN 'latent_in' THEN 1"
                           " WHEN 'latent_out' THEN 2 WHEN 'coda' THEN 3 ELSE 4 END, site,"
                           " iteration, scale, CASE control WHEN 'none' THEN 0 WHEN 'control_task'"
                           " THEN 1 WHEN 'random_model' THEN 2 WHEN 'position' THEN 3 ELSE 4 END",
                           -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
    sqlite3_bind_int64(stmt, 1, recording_id);
    sqlite3_bind_text(stmt, 2, label, -1, SQLITE_STATIC);
    int status = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        if (report->n_results == *capacity) {
            *capacity = *capacity ? 2 * *capacity : 64;
            ProbeResult *grown = realloc(report->results, (size_t)*capacity * sizeof *grown);
            if (!grown) {
                status = spiral_error("out of memory reading probe results");
                break;
            }
            report->results = grown;
        }
        ProbeResult *r = &report->results[report->n_results++];
        memset(r, 0, sizeof *r);
        snprintf(r->label, sizeof r->label, "%s", label);
        snprintf(r->site, sizeof r->site, "%s", (const char *)sqlite3_column_text(stmt, 0));
        snprintf(r->control, sizeof r->control, "%s", (const char *)sqlite3_column_text(stmt, 1));
        r->iteration = sqlite3_column_int(stmt, 2);
        r->scale = sqlite3_column_int(stmt, 3);
        r->accuracy = column_real(stmt, 4);
        r->ci_lo = column_real(stmt, 5);
        r->ci_hi = column_real(stmt, 6);
        r->macro_f1 = column_real(stmt, 7);
        r->majority = column_real(stmt, 8);
        r->n_train = sqlite3_column_int(stmt, 9);
        r->n_val = sqlite3_column_int(stmt, 10);
        r->n_test = sqlite3_column_int(stmt, 11);
        r->l2 = column_real(stmt, 12);
        r->iterations = sqlite3_column_int(stmt, 13);
        r->converged = sqlite3_column_int(stmt, 14);
        r->grad_norm = column_real(stmt, 15);
        r->seed = (unsigned long)sqlite3_column_int64(stmt, 16);
        r->seconds = column_real(stmt, 17);
    }
    sqlite3_finalize(stmt);
    return status;
}

/* ------------------------------------------------------------------ */
/* Report                                                              */

const ProbeResult *probe_report_find(const ProbeReport *report, const char *label,
                                     const char *site, int iteration, int scale,
                                     const char *control) {
    for (int i = 0; i < report->n_results; i++) {
        const ProbeResult *r = &report->results[i];
        if (r->iteration == iteration && r->scale == scale && !strcmp(r->label, label) &&
            !strcmp(r->site, site) && !strcmp(r->control, control))
            return r;
    }
    return NULL;
}

int probe_report_encoded(const ProbeReport *report, const ProbeResult *probe) {
    int beaten = 1;
    for (int c = 0; c < PROBE_N_CONTROLS; c++) {
        const ProbeResult *control = probe_report_find(report, probe->label, probe->site,
                                                       probe->iteration, probe->scale,
                                                       control_names[c]);
        if (!control) return -1;
        if (!(probe->ci_lo > control->ci_hi)) beaten = 0;
    }
    return beaten;
}

void probe_report_free(ProbeReport *report) {
    free(report->results);
    free(report->summaries);
    memset(report, 0, sizeof *report);
}

/* The summaries of label: per site, the expected iteration and where the
 * label is encoded (see probe_run.h), appended to the report. */
static int summarize_label(ProbeReport *report, const char *label) {
    int first = -1, last = -1;
    for (int i = 0; i < report->n_results; i++)
        if (!strcmp(report->results[i].label, label)) {
            if (first < 0) first = i;
            last = i;
        }
    for (int i = first; i >= 0 && i <= last; i++) {
        const ProbeResult *r = &report->results[i];
        if (strcmp(r->control, "none")) continue;
        int seen = 0;
        for (int k = 0; k < report->n_summaries; k++)
            seen |= !strcmp(report->summaries[k].label, label) &&
                    !strcmp(report->summaries[k].site, r->site);
        if (seen) continue;
        ProbeSummary *s = &report->summaries[report->n_summaries++];
        memset(s, 0, sizeof *s);
        snprintf(s->label, sizeof s->label, "%s", label);
        snprintf(s->site, sizeof s->site, "%s", r->site);
        /* the site's probes, in iteration order (results are sorted) */
        double acc[SPIRAL_MAX_ITERS + 2];
        int n = 0, consecutive = 1, previous = 0;
        size_t used = (size_t)snprintf(s->encoded, sizeof s->encoded, "[");
        for (int j = i; j <= last; j++) {
            const ProbeResult *q = &report->results[j];
            if (strcmp(q->site, r->site) || strcmp(q->control, "none")) continue;
            if (n > 0 && q->iteration != previous + 1) consecutive = 0;
            previous = q->iteration;
            if (n < SPIRAL_MAX_ITERS + 2) acc[n++] = q->accuracy;
            else consecutive = 0;
            if (probe_report_encoded(report, q) == 1 && used < sizeof s->encoded)
                used += (size_t)snprintf(s->encoded + used, sizeof s->encoded - used,
                                         "%s{\"iteration\": %d, \"scale\": %d}",
                                         used > 1 ? ", " : "", q->iteration, q->scale);
        }
        if (used < sizeof s->encoded) snprintf(s->encoded + used, sizeof s->encoded - used, "]");
        s->expected_iteration = NAN;
        double expected;
        if (n >= 2 && consecutive && probe_expected_layer(acc, n - 1, 1, &expected) == 0)
            s->expected_iteration = r->iteration + expected;
    }
    return 0;
}

/* Writes the report's summaries (one transaction). */
static int write_summaries(Store *store, const ProbeReport *report) {
    sqlite3_stmt *stmt;
    if (store_begin(store)) return -1;
    if (sqlite3_prepare_v2(store->db, "INSERT OR REPLACE INTO probe_summaries(recording_id, label,"
                           " site, expected_iteration, encoded) VALUES(?,?,?,?,?)", -1, &stmt,
                           NULL) != SQLITE_OK) {
        spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
        store_rollback(store);
        return -1;
    }
    int status = 0;
    for (int k = 0; k < report->n_summaries && status == 0; k++) {
        const ProbeSummary *s = &report->summaries[k];
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, report->recording_id);
        sqlite3_bind_text(stmt, 2, s->label, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, s->site, -1, SQLITE_STATIC);
        bind_real(stmt, 4, s->expected_iteration);
        sqlite3_bind_text(stmt, 5, s->encoded, -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            status = spiral_error("%s: writing probe summaries: %s", store->path,
                                  sqlite3_errmsg(store->db));
    }
    sqlite3_finalize(stmt);
    if (status == 0) status = store_commit(store);
    if (status) store_rollback(store);
    return status;
}

/* ------------------------------------------------------------------ */
/* The run                                                             */

/* Everything probe_run holds while it works. */
typedef struct {
    Store *store;
    const ProbeOptions *o;
    RecordingInfo info;
    SpiralConfig cfg;
    Dataset ds;
    int n_seq, L, n_labels;
    const char *const *names;
    size_t *index;            /* (n_seq, L) dataset token of each position */
    int *tokens;              /* (n_seq, L) */
    unsigned char *seq_split; /* (n_seq) */
    LabelData *labels;        /* (n_labels) */
    SiteInfo *sites;
    int n_sites, n_geometries;
    ProbeResult *position_memo;   /* (n_labels, n_geometries); control[0] = 0: none yet */
    FILE *random_file;            /* the random model's states, once computed */
    sqlite3_stmt *exists;
    ProbeShared shared;
    Progress progress;
    ProbeResult *done_now;        /* rows written by this call */
    int n_done_now, done_capacity;
} ProbeRun;

/* Reads the token index of every window, and its tokens. */
static int read_windows(ProbeRun *run) {
    size_t n = (size_t)run->n_seq * run->L;
    run->index = malloc(n * sizeof *run->index);
    run->tokens = malloc(n * sizeof *run->tokens);
    if (!run->index || !run->tokens) return spiral_error("out of memory for %zu positions", n);
    for (int s = 0; s < run->n_seq; s++)
        if (recording_read_token_index(run->store, &run->info, s, run->index + (size_t)s * run->L))
            return spiral_error_prefix("recording of run on dataset (%s split)", run->info.split);
    for (size_t i = 0; i < n; i++) {
        if (run->index[i] >= run->ds.n_tokens)
            return spiral_error("recorded token index %zu is outside the dataset (%zu tokens)",
                                run->index[i], run->ds.n_tokens);
        run->tokens[i] = run->ds.tokens[run->index[i]];
    }
    return 0;
}

/* Shuffles the sequences with the seed: 60% train, 20% validation, rest test. */
static int split_sequences(ProbeRun *run) {
    int n = run->n_seq;
    int *order = malloc((size_t)n * sizeof *order);
    run->seq_split = malloc((size_t)n);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!order || !run->seq_split || !rng) {
        free(order);
        if (rng) gsl_rng_free(rng);
        return spiral_error("out of memory splitting %d sequences", n);
    }
    gsl_rng_set(rng, run->o->seed);
    for (int i = 0; i < n; i++) order[i] = i;
    gsl_ran_shuffle(rng, order, (size_t)n, sizeof *order);
    int n_train = n * 3 / 5, n_val = n / 5;
    for (int k = 0; k < n; k++)
        run->seq_split[order[k]] = k < n_train ? SEQ_TRAIN : k < n_train + n_val ? SEQ_VAL : SEQ_TEST;
    free(order);
    gsl_rng_free(rng);
    return 0;
}

/* Resolves every label into its per-position arrays and controls. */
static int build_labels(ProbeRun *run) {
    size_t n = (size_t)run->n_seq * run->L;
    int *token_class = malloc((size_t)run->ds.vocab_size * sizeof *token_class);
    int *seq_id = malloc(n * sizeof *seq_id);
    run->labels = calloc((size_t)run->n_labels, sizeof *run->labels);
    int status = -1;
    if (!token_class || !seq_id || !run->labels) {
        spiral_error("out of memory for labels");
        goto done;
    }
    if (token_classes(run->tokens, n, run->ds.vocab_size, run->o->top_n, token_class)) goto done;
    for (size_t i = 0; i < n; i++) seq_id[i] = (int)(i / (size_t)run->L);
    for (int l = 0; l < run->n_labels; l++) {
        LabelData *lab = &run->labels[l];
        lab->name = run->names[l];
        if (strlen(lab->name) >= PROBE_LABEL_CAP) {
            spiral_error("label name '%s' is longer than %d characters", lab->name,
                         PROBE_LABEL_CAP - 1);
            goto done;
        }
        for (int k = 0; k < l; k++)
            if (!strcmp(run->names[k], lab->name)) {
                spiral_error("label '%s' is requested twice", lab->name);
                goto done;
            }
        lab->values = malloc(n * sizeof *lab->values);
        if (!lab->values) {
            spiral_error("out of memory for label %s", lab->name);
            goto done;
        }
        if (label_values(lab->name, &run->ds, run->index, run->tokens, token_class, run->n_seq,
                         run->L, lab->values) ||
            check_classes(lab->name, lab->values, n, run->n_seq, run->info.split))
            goto done;
        if (run->o->controls & PROBE_CONTROL_TASK) {
            lab->control = malloc(n * sizeof *lab->control);
            if (!lab->control ||
                probe_control_labels(run->tokens, lab->values, (int)n, run->o->seed + 2, lab->control))
                goto fail_label;
        }
        if (run->o->controls & PROBE_CONTROL_PERMUTED) {
            lab->permuted = malloc(n * sizeof *lab->permuted);
            if (!lab->permuted ||
                probe_permute_sequence_labels(seq_id, lab->values, (int)n, run->o->seed + 3,
                                              lab->permuted, NULL))
                goto fail_label;
        }
        continue;
    fail_label:
        if (!lab->control || !lab->permuted) spiral_error("out of memory for label %s", lab->name);
        spiral_error_prefix("label %s", lab->name);
        goto done;
    }
    status = 0;
done:
    free(token_class);
    free(seq_id);
    return status;
}

/* Loads the features of a site from one source into *X (caller frees):
 * (n_seq, rows, d) floats; NULL for position features (one-hot, built
 * row by row). */
static int load_features(ProbeRun *run, const SiteInfo *site, int source, Features *f,
                         float **X) {
    f->rows = site->rows;
    f->pos = site->pos;
    *X = NULL;
    if (source == SOURCE_POSITION) {
        f->X = NULL;
        f->d = site->rows < PROBE_POSITION_BUCKETS ? site->rows : PROBE_POSITION_BUCKETS;
        return 0;
    }
    int d = run->info.d_model;
    size_t per_seq = (size_t)site->rows * d;
    f->d = d;
    *X = malloc((size_t)run->n_seq * per_seq * sizeof **X);
    if (!*X)
        return spiral_error("out of memory for %d sequences x %d rows x %d features", run->n_seq,
                            site->rows, d);
    f->X = *X;
    if (source == SOURCE_RANDOM) {
        if (!run->random_file &&
            random_model_states(&run->cfg, run->sites, run->n_sites, run->tokens, run->n_seq,
                                run->L, run->o->seed + 5, &run->random_file))
            return -1;
        return read_at(fileno(run->random_file), *X, run->n_seq * per_seq * sizeof(float),
                       site->random_offset * sizeof(float));
    }
    float *buffer = malloc((size_t)run->L * d * sizeof *buffer);
    if (!buffer) return spiral_error("out of memory reading states");
    for (int s = 0; s < run->n_seq; s++) {
        int rows, cols;
        if (recording_read_state(run->store, &run->info, s, site->iteration, site->site, site->scale,
                              buffer, &rows, &cols)) {
            free(buffer);
            return -1;
        }
        if (rows != site->rows || cols != d) {
            free(buffer);
            return spiral_error("sequence %d, %s iteration %d: state is %d x %d, expected %d x %d",
                                s, site->site, site->iteration, rows, cols, site->rows, d);
        }
        memcpy(*X + (size_t)s * per_seq, buffer, per_seq * sizeof *buffer);
    }
    free(buffer);
    return 0;
}

/* The label array a control of a source reads; NULL if the control does
 * not belong to the source. control -1 is the probe itself. */
static const int *job_labels(const LabelData *lab, int source, int control) {
    if (source == SOURCE_RECORDED && control == -1) return lab->values;
    if (source == SOURCE_RECORDED && control == 0) return lab->control;
    if (source == SOURCE_RECORDED && control == 3) return lab->permuted;
    if (source == SOURCE_RANDOM && control == 1) return lab->values;
    if (source == SOURCE_POSITION && control == 2) return lab->values;
    return NULL;
}

/* Records a written row (the report gets its evaluations and classes). */
static int remember(ProbeRun *run, const ProbeResult *r) {
    if (run->n_done_now == run->done_capacity) {
        run->done_capacity = run->done_capacity ? 2 * run->done_capacity : 64;
        ProbeResult *grown = realloc(run->done_now, (size_t)run->done_capacity * sizeof *grown);
        if (!grown) return spiral_error("out of memory");
        run->done_now = grown;
    }
    run->done_now[run->n_done_now++] = *r;
    return 0;
}

/* Walks every (site, source, label, control); with fit = 0 it only counts
 * the probes still to do (*pending), with fit = 1 it fits them, one batch
 * per (site, source), and writes each batch's rows in one transaction. */
static int walk_probes(ProbeRun *run, int fit, int *pending, ProbeReport *report) {
    int max_rows = run->n_labels * (1 + PROBE_N_CONTROLS);
    ProbeJob *jobs = calloc((size_t)max_rows, sizeof *jobs);
    ProbeResult *rows = calloc((size_t)max_rows, sizeof *rows);    /* the batch's rows to write */
    ProbeResult *copies = calloc((size_t)max_rows, sizeof *copies);  /* memoized position rows */
    if (!jobs || !rows || !copies) {
        free(jobs);
        free(rows);
        free(copies);
        return spiral_error("out of memory");
    }
    int status = 0;
    *pending = 0;
    for (int k = 0; k < run->n_sites && status == 0; k++) {
        const SiteInfo *site = &run->sites[k];
        for (int source = 0; source < SOURCE_COUNT && status == 0; source++) {
            int n_jobs = 0, n_copies = 0;
            for (int l = 0; l < run->n_labels && status == 0; l++)
                for (int c = -1; c < PROBE_N_CONTROLS && status == 0; c++) {
                    if (c >= 0 && !(run->o->controls & (1 << c))) continue;
                    const int *labels = job_labels(&run->labels[l], source, c);
                    if (!labels) continue;
                    const char *control = c < 0 ? "none" : control_names[c];
                    int exists = result_exists(run->store, run->exists, run->info.id,
                                               run->labels[l].name, site, control);
                    if (exists < 0) status = -1;
                    if (exists != 0) {
                        if (exists > 0 && fit) report->skipped++;
                        continue;
                    }
                    (*pending)++;
                    if (!fit) continue;
                    const ProbeResult *memo =
                        &run->position_memo[(size_t)l * run->n_geometries + site->geometry];
                    ProbeResult *r;
                    if (source == SOURCE_POSITION && memo->control[0]) {
                        /* same rows, same labels, same seed: the same probe */
                        r = &copies[n_copies++];
                        *r = *memo;
                        r->seconds = 0;
                        r->evaluations = 0;
                    } else {
                        ProbeJob *job = &jobs[n_jobs++];
                        memset(job, 0, sizeof *job);
                        job->shared = &run->shared;
                        job->labels = labels;
                        job->label_index = l;
                        r = &job->result;
                    }
                    snprintf(r->label, sizeof r->label, "%s", run->labels[l].name);
                    snprintf(r->site, sizeof r->site, "%s", site->site);
                    snprintf(r->control, sizeof r->control, "%s", control);
                    r->iteration = site->iteration;
                    r->scale = site->scale;
                    r->seed = run->o->seed;
                }
            if (status || (n_jobs == 0 && n_copies == 0)) continue;
            if (n_jobs > 0) {
                Features features;
                float *X = NULL;
                status = load_features(run, site, source, &features, &X);
                for (int j = 0; j < n_jobs; j++) jobs[j].features = &features;
                if (status == 0) status = run_batch(jobs, n_jobs, run->o->threads, &run->progress);
                free(X);
                if (status) break;
            }
            /* the batch's rows: the jobs', then the copies' */
            for (int j = 0; j < n_jobs; j++) {
                rows[j] = jobs[j].result;
                if (source == SOURCE_POSITION)
                    run->position_memo[(size_t)jobs[j].label_index * run->n_geometries +
                                       site->geometry] = jobs[j].result;
            }
            for (int c = 0; c < n_copies; c++) rows[n_jobs + c] = copies[c];
            status = write_results(run->store, run->info.id, rows, n_jobs + n_copies);
            for (int i = 0; i < n_jobs + n_copies && status == 0; i++) status = remember(run, &rows[i]);
            if (n_copies) progress_step(&run->progress, n_copies);
        }
    }
    free(jobs);
    free(rows);
    free(copies);
    return status;
}

/* Fills the report from the store: every row of the labels (with the
 * evaluations and classes of the rows fitted now), the summaries. */
static int build_report(ProbeRun *run, ProbeReport *report) {
    int capacity = 0;
    for (int l = 0; l < run->n_labels; l++)
        if (load_results(run->store, run->info.id, run->names[l], report, &capacity)) return -1;
    for (int i = 0; i < report->n_results; i++) {
        ProbeResult *r = &report->results[i];
        for (int j = 0; j < run->n_done_now; j++) {
            const ProbeResult *now = &run->done_now[j];
            if (now->iteration == r->iteration && now->scale == r->scale &&
                !strcmp(now->label, r->label) && !strcmp(now->site, r->site) &&
                !strcmp(now->control, r->control)) {
                r->evaluations = now->evaluations;
                r->n_classes = now->n_classes;
                r->n_features = now->n_features;
            }
        }
    }
    report->fitted_now = run->n_done_now;
    for (int j = 0; j < run->n_done_now; j++) report->evaluations += run->done_now[j].evaluations;
    /* at most one summary per (label, site) */
    report->summaries = calloc((size_t)report->n_results + 1, sizeof *report->summaries);
    if (!report->summaries) return spiral_error("out of memory for summaries");
    for (int l = 0; l < run->n_labels; l++)
        if (summarize_label(report, run->names[l])) return -1;
    return write_summaries(run->store, report);
}

static void free_run(ProbeRun *run) {
    if (run->exists) sqlite3_finalize(run->exists);
    if (run->random_file) fclose(run->random_file);
    free(run->index);
    free(run->tokens);
    free(run->seq_split);
    free_labels(run->labels, run->n_labels);
    free_sites(run->sites, run->n_sites);
    free(run->position_memo);
    free(run->done_now);
    dataset_free(&run->ds);
}

int probe_run(Store *store, const char *run_name, const char *dataset,
              const char *const *labels, int n_labels, const ProbeOptions *o,
              ProbeReport *report) {
    ProbeRun run;
    RunRow run_row = {0};
    double start = seconds_now();
    int status = -1, pending = 0;
    memset(&run, 0, sizeof run);
    memset(report, 0, sizeof *report);
    run.store = store;
    run.o = o;
    run.names = labels;
    if (n_labels < 1) return spiral_error("no label to probe (--label)");
    if (o->max_train < 2) return spiral_error("--max-examples must be >= 2, got %d", o->max_train);
    if (o->top_n < 1) return spiral_error("--top must be >= 1, got %d", o->top_n);
    if (!(o->tol > 0) || o->max_iter < 1)
        return spiral_error("probe tolerance must be > 0 and max_iter >= 1 (got %g, %d)", o->tol,
                            o->max_iter);
    if (o->controls & ~PROBE_CONTROL_ALL) return spiral_error("unknown control bits %#x", o->controls);
    if (store_run_find(store, run_name, &run_row)) return -1;
    char source[1400];
    snprintf(source, sizeof source, "%s: run %s", store->path, run_name);
    if (config_parse(&run.cfg, run_row.config, source)) goto done;
    if (store_dataset_load(store, dataset, &run.ds, NULL)) goto done;
    if (recording_find(store, run_name, dataset, o->split, &run.info)) {
        if (strstr(spiral_last_error(), "has no recording"))
            spiral_error("run %s has no recording on dataset %s (%s split); record it first: "
                         "spiral record --run %s --data %s --split %s --store %s", run_name,
                         dataset, o->split, run_name, dataset, o->split, store->path);
        goto done;
    }
    if (strcmp(run.info.status, "done")) {
        spiral_error("the recording of run %s on %s (%s split) is incomplete (status %s): run "
                     "'spiral record' again to complete it", run_name, dataset, o->split,
                     run.info.status);
        goto done;
    }
    run.n_seq = run.info.n_sequences;
    run.L = run.info.seq_len;
    run.n_labels = n_labels;
    if ((size_t)run.n_seq * run.L > INT_MAX) {
        spiral_error("the recording has %d sequences of %d tokens: more rows than a probe can hold",
                     run.n_seq, run.L);
        goto done;
    }
    if (run.n_seq < PROBE_MIN_SEQUENCES) {
        spiral_error("the recording has %d sequences; probes need at least %d (record with "
                     "--sequences)", run.n_seq, PROBE_MIN_SEQUENCES);
        goto done;
    }
    if (run.info.d_model != run.cfg.d_model) {
        spiral_error("the recording has d_model %d, run %s's config %d", run.info.d_model,
                     run_name, run.cfg.d_model);
        goto done;
    }
    report->recording_id = run.info.id;
    report->n_sequences = run.n_seq;
    report->seq_len = run.L;
    if (read_windows(&run) || split_sequences(&run) || build_labels(&run) ||
        list_sites(store, &run.info, &run.cfg, &run.sites, &run.n_sites, &run.n_geometries) ||
        prepare_labels(store, run.info.id, labels, n_labels, o))
        goto done;
    run.position_memo = calloc((size_t)n_labels * run.n_geometries, sizeof *run.position_memo);
    if (!run.position_memo) {
        spiral_error("out of memory");
        goto done;
    }
    if (sqlite3_prepare_v2(store->db,
                           "SELECT 1 FROM probe_results WHERE recording_id=? AND label=? AND"
                           " site=? AND iteration=? AND scale=? AND control=?", -1, &run.exists,
                           NULL) != SQLITE_OK) {
        spiral_error("%s: %s", store->path, sqlite3_errmsg(store->db));
        goto done;
    }
    run.shared.n_seq = run.n_seq;
    run.shared.L = run.L;
    run.shared.seq_split = run.seq_split;
    run.shared.seed = o->seed;
    run.shared.max_train = o->max_train;
    run.shared.tol = o->tol;
    run.shared.max_iter = o->max_iter;
    if (walk_probes(&run, 0, &pending, report)) goto done;
    run.progress.enabled = o->progress && pending > 0;
    run.progress.tty = isatty(STDERR_FILENO);
    run.progress.total = pending;
    run.progress.start = seconds_now();
    if (walk_probes(&run, 1, &pending, report) || build_report(&run, report)) goto done;
    status = 0;
done:
    report->seconds = seconds_now() - start;
    free_run(&run);
    store_run_free(&run_row);
    if (status) probe_report_free(report);
    return status;
}
