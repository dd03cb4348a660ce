/*
 * lens.c: the logit lens, per-slot gains and test-time depth (lens.h).
 *
 * Each measurement is a model (core/depth.h builds them over the trained
 * weights: exit after iteration t with or without the coda, or another
 * schedule) run over the same windows; per position we keep the
 * cross-entropy of the next token and whether the top-1 logit was it,
 * then average per sequence and take intervals over sequences.
 */
#include "lens.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dataset.h"
#include "depth.h"
#include "engine.h"
#include "error.h"
#include "layers.h"
#include "record.h"
#include "run_model.h"
#include "stats.h"
#include "tokens.h"
#include "train_config.h"

void lens_options_default(LensOptions *o) {
    memset(o, 0, sizeof *o);
    o->split = "test";
    o->n_sequences = 64;
    o->batch_size = 8;
    o->step = -1;
}

void lens_result_free(LensResult *result) {
    free(result->rows);
    memset(result, 0, sizeof *result);
}

/* What every measurement runs over: the windows and their tokens. */
typedef struct {
    int n, L;                 /* sequences, predictions per sequence */
    int *inputs, *targets;    /* (n, L) */
    int *source;              /* (L) patch: the source sequence, or NULL */
    int batch_size;
    const char *device;       /* NULL or "cpu": the model's own forward; else an engine */
    const char *precision;
    const Progress *progress;
    long passes_done, passes_total;
    double start;
} LensData;

/* Per-position results of one model over the windows. */
typedef struct {
    double *loss;             /* (n, L) nats */
    unsigned char *correct;   /* (n, L) top-1 == target */
} PositionScores;

static int scores_alloc(PositionScores *s, const LensData *data) {
    size_t count = (size_t)data->n * data->L;
    s->loss = malloc(count * sizeof *s->loss);
    s->correct = malloc(count);
    if (!s->loss || !s->correct) return spiral_error("out of memory for the lens' scores");
    return 0;
}

static void scores_free(PositionScores *s) {
    free(s->loss);
    free(s->correct);
    s->loss = NULL;
    s->correct = NULL;
}

/* Where a measurement's passes run: the model's own forward, or (another
 * device) an engine holding its weights, whose logits are copied back. */
typedef struct {
    Model *model;
    Engine *engine;           /* NULL: model_forward */
    float *logits;            /* engine: (batch_size L, V) of the last pass */
    real *row;                /* engine: one row of them as real */
} Runner;

static void runner_close(Runner *r) {
    engine_free(r->engine);
    free(r->logits);
    free(r->row);
    memset(r, 0, sizeof *r);
}

/* Opens a runner for model: its own forward on the CPU, else an engine of
 * data's device with its weights. */
static int runner_open(Runner *r, Model *model, const LensData *data) {
    memset(r, 0, sizeof *r);
    r->model = model;
    if (!data->device || !strcmp(data->device, "cpu")) return 0;
    int V = model->cfg.vocab_size;
    r->logits = malloc((size_t)data->batch_size * data->L * V * sizeof *r->logits);
    r->row = malloc((size_t)V * sizeof *r->row);
    if (!r->logits || !r->row) {
        runner_close(r);
        return spiral_error("out of memory for the lens' logits on %s", data->device);
    }
    if (engine_open_with_weights(&r->engine, data->device,
                                 data->precision ? data->precision : "fp32", model)) {
        runner_close(r);
        return -1;
    }
    return 0;
}

/* One forward pass of tokens (B, L) with targets (or NULL). */
static int runner_forward(Runner *r, const int *tokens, const int *targets, int B, int L) {
    if (!r->engine) return model_forward(r->model, tokens, targets, B, L, NULL);
    return r->engine->ops->observe(r->engine, tokens, targets, B, L, NULL, 0, NULL) ||
           r->engine->ops->get_logits(r->engine, r->logits);
}

/* Row k of the last pass's logits (V). */
static const real *runner_row(Runner *r, size_t k) {
    int V = r->model->cfg.vocab_size;
    if (!r->engine) return r->model->logits + k * V;
    for (int c = 0; c < V; c++) r->row[c] = r->logits[k * V + c];
    return r->row;
}

static int runner_set_hook(Runner *r, const UpdateHook *hook) {
    if (!r->engine) {
        r->model->update_hook = hook;
        return 0;
    }
    return r->engine->ops->set_update_hook(r->engine, hook);
}

/* Runs the runner's model over every window and fills scores: loss_i =
 * -log softmax(logits_i)[target_i] (the model's own cross-entropy of one
 * row), correct_i = argmax logits_i == target_i (the first maximum). */
static int score_model(PositionScores *scores, Runner *runner, LensData *data) {
    int L = data->L, V = runner->model->cfg.vocab_size;
    for (int first = 0; first < data->n; first += data->batch_size) {
        int B = data->n - first < data->batch_size ? data->n - first : data->batch_size;
        size_t offset = (size_t)first * L;
        if (runner_forward(runner, data->inputs + offset, data->targets + offset, B, L))
            return -1;
        for (size_t r = 0; r < (size_t)B * L; r++) {
            const real *row = runner_row(runner, r);
            int target = data->targets[offset + r];
            scores->loss[offset + r] = crossentropy_forward(row, &target, 1, V, NULL);
            int best = 0;
            for (int c = 1; c < V; c++)
                if (row[c] > row[best]) best = c;
            scores->correct[offset + r] = best == target;
        }
        data->passes_done++;
        ProgressReport report = {.task = "lens", .unit = "passes", .done = data->passes_done,
                                 .total = data->passes_total,
                                 .elapsed = seconds_now() - data->start};
        progress_report(data->progress, &report);
    }
    return 0;
}

/* The mean of x (n) with its 95% t interval into *mean, *lo, *hi. */
static int interval(double *mean, double *lo, double *hi, const double *x, int n) {
    MeanInterval m;
    if (stats_mean_ci_t(&m, x, n, 0.95)) return -1;
    *mean = m.mean;
    *lo = m.lo;
    *hi = m.hi;
    return 0;
}

/* Fills loss, accuracy and (against reference, when given) the paired
 * delta of row from per-position scores: means per sequence, then the
 * mean over sequences with its interval. work holds 3 n doubles. */
static int fill_row(LensRow *row, const PositionScores *s, const PositionScores *reference,
                    const LensData *data, double *work) {
    int n = data->n, L = data->L;
    double *loss = work, *acc = work + n, *delta = work + 2 * n;
    for (int q = 0; q < n; q++) {
        double sum = 0, hits = 0, diff = 0;
        for (int i = 0; i < L; i++) {
            size_t k = (size_t)q * L + i;
            sum += s->loss[k];
            hits += s->correct[k];
            if (reference) diff += s->loss[k] - reference->loss[k];
        }
        loss[q] = sum / L;
        acc[q] = hits / L;
        delta[q] = diff / L;
    }
    row->n_sequences = n;
    row->n_tokens = (long long)n * L;
    row->delta = row->delta_lo = row->delta_hi = NAN;
    if (interval(&row->loss, &row->loss_lo, &row->loss_hi, loss, n) ||
        interval(&row->accuracy, &row->acc_lo, &row->acc_hi, acc, n))
        return -1;
    if (reference && interval(&row->delta, &row->delta_lo, &row->delta_hi, delta, n)) return -1;
    return 0;
}

/* Appends a row (grown array). */
static LensRow *push_row(LensResult *result, int *capacity) {
    if (result->n_rows == *capacity) {
        int cap = *capacity ? 2 * *capacity : 64;
        LensRow *grown = realloc(result->rows, (size_t)cap * sizeof *grown);
        if (!grown) {
            spiral_error("out of memory for lens rows");
            return NULL;
        }
        result->rows = grown;
        *capacity = cap;
    }
    LensRow *row = &result->rows[result->n_rows++];
    memset(row, 0, sizeof *row);
    row->slot = -1;
    return row;
}

/* "8,4,2,1" of a schedule. */
static void schedule_text(char *out, size_t size, const SpiralConfig *cfg) {
    size_t used = 0;
    out[0] = 0;
    for (int t = 0; t < cfg->n_iters && used + 8 < size; t++)
        used += (size_t)snprintf(out + used, size - used, "%s%d", t ? "," : "",
                                 cfg->schedule[t].g);
}

/* Slot rows of iteration t (chunk size g, offset w): per slot rho the mean
 * change after - before of the loss over positions i with (i + w) mod g =
 * rho, per sequence, then over sequences. */
static int slot_rows(LensResult *result, int *capacity, int t, const IterSpec *spec,
                     const PositionScores *before, const PositionScores *after,
                     const LensData *data, double *work) {
    int n = data->n, L = data->L, g = spec->g;
    double *loss = work, *delta = work + n;
    for (int rho = 0; rho < g && rho < L; rho++) {
        for (int q = 0; q < n; q++) {
            double sum = 0, diff = 0;
            int count = 0;
            for (int i = 0; i < L; i++) {
                if ((i + spec->offset) % g != rho) continue;
                size_t k = (size_t)q * L + i;
                sum += after->loss[k];
                diff += after->loss[k] - before->loss[k];
                count++;
            }
            loss[q] = count ? sum / count : 0;
            delta[q] = count ? diff / count : 0;
        }
        LensRow *row = push_row(result, capacity);
        if (!row) return -1;
        snprintf(row->mode, sizeof row->mode, "slot");
        row->iteration = t;
        row->slot = rho;
        row->g = g;
        row->n_sequences = n;
        row->n_tokens = 0;
        for (int i = 0; i < L; i++) row->n_tokens += (i + spec->offset) % g == rho;
        row->n_tokens *= n;
        row->accuracy = row->acc_lo = row->acc_hi = NAN;
        if (interval(&row->loss, &row->loss_lo, &row->loss_hi, loss, n) ||
            interval(&row->delta, &row->delta_lo, &row->delta_hi, delta, n))
            return -1;
    }
    return 0;
}

/* Scores the runner's model with intervention spec (measuring it first on
 * the model itself when it needs a first pass) into scores. */
static int score_intervened(PositionScores *scores, Runner *runner, const InterventionSpec *spec,
                            LensData *data) {
    const SpiralConfig *cfg = &runner->model->cfg;
    /* an exit model that stops before every chosen iteration runs plainly */
    int applies = 0;
    for (int t = 0; t < cfg->n_iters; t++)
        applies |= spec->level > 0 ? cfg->schedule[t].g == spec->level : t == spec->iteration;
    if (!applies) return score_model(scores, runner, data);
    Intervention iv;
    if (intervention_init(&iv, spec, cfg, data->L)) return -1;
    const UpdateHook *measure = intervention_measure_hook(&iv);
    int status = runner_set_hook(runner, measure);
    if (status == 0 && spec->kind == INTERVENE_PATCH) /* the source's updates */
        status = runner_forward(runner, data->source, NULL, 1, data->L);
    else if (status == 0 && measure)
        status = score_model(scores, runner, data);
    if (status == 0) status = runner_set_hook(runner, intervention_apply_hook(&iv));
    if (status == 0) status = score_model(scores, runner, data);
    runner_set_hook(runner, NULL);
    intervention_free(&iv);
    return status;
}

/* Opens a runner for model, scores it (under spec, or plainly when spec is
 * NULL) and closes it. */
static int score_on(PositionScores *scores, Model *model, const InterventionSpec *spec,
                    LensData *data) {
    Runner runner;
    if (runner_open(&runner, model, data)) return -1;
    int status = spec ? score_intervened(scores, &runner, spec, data)
                      : score_model(scores, &runner, data);
    runner_close(&runner);
    return status;
}

/* Rows of --ablate-each: the model with each iteration's update ablated in
 * turn, then each level's, against the clean scores. */
static int ablation_rows(LensResult *result, int *capacity, Model *model, int mean,
                         const PositionScores *clean, LensData *data, double *work) {
    const SpiralConfig *cfg = &model->cfg;
    PositionScores scores = {0};
    Runner runner = {0};
    int status = scores_alloc(&scores, data);
    if (status == 0) status = runner_open(&runner, model, data);
    for (int pass = 0; pass < 2 && status == 0; pass++)
        for (int t = 0; t < cfg->n_iters && status == 0; t++) {
            int g = cfg->schedule[t].g, seen = 0;
            for (int u = 0; u < t; u++) seen |= cfg->schedule[u].g == g;
            if (pass == 1 && seen) continue; /* one row per level */
            InterventionSpec spec = {.kind = mean ? INTERVENE_MEAN : INTERVENE_ZERO,
                                     .iteration = pass == 0 ? t : -1,
                                     .level = pass == 1 ? g : 0};
            status = score_intervened(&scores, &runner, &spec, data);
            LensRow *row = status ? NULL : push_row(result, capacity);
            if (!row) {
                status = -1;
                break;
            }
            snprintf(row->mode, sizeof row->mode, "%s%s", pass == 0 ? "ablate" : "ablate_level",
                     mean ? "_mean" : "");
            row->iteration = pass == 0 ? t : g;
            row->g = g;
            status = fill_row(row, &scores, clean, data, work);
        }
    runner_close(&runner);
    scores_free(&scores);
    return status;
}

/* The windows: n windows of L + 1 tokens of the split, inputs the first L
 * tokens, targets the last L. */
static int load_windows(LensData *data, Store *store, const char *dataset_name,
                        const LensOptions *o, int L, int vocab_size, long long *dataset_id) {
    Dataset ds = {0};
    SplitStream stream = {0};
    size_t *start = NULL;
    int status = -1, split = -1;
    for (int s = 0; s < SPLIT_COUNT; s++)
        if (!strcmp(o->split, dataset_split_name(s))) split = s;
    if (split < 0)
        return spiral_error("--split: expected train, val, test or test_ood, got '%s'", o->split);
    if (store_dataset_load(store, dataset_name, &ds, dataset_id)) goto done;
    if (ds.vocab_size > vocab_size) {
        spiral_error("dataset %s has vocabulary %d but the model has vocab_size %d",
                     dataset_name, ds.vocab_size, vocab_size);
        goto done;
    }
    if (dataset_split_stream(&stream, &ds, split, (size_t)L + 1, dataset_name)) goto done;
    int n = data->n = o->n_sequences;
    data->L = L;
    start = malloc((size_t)n * sizeof *start);
    data->inputs = malloc((size_t)n * L * sizeof(int));
    data->targets = malloc((size_t)n * L * sizeof(int));
    if (!start || !data->inputs || !data->targets) {
        spiral_error("out of memory for the lens' windows");
        goto done;
    }
    if (record_windows(start, &stream, n, L + 1, dataset_name, o->split)) goto done;
    for (int q = 0; q < n; q++) {
        memcpy(data->inputs + (size_t)q * L, stream.tokens + start[q], (size_t)L * sizeof(int));
        memcpy(data->targets + (size_t)q * L, stream.tokens + start[q] + 1,
               (size_t)L * sizeof(int));
    }
    status = 0;
done:
    free(start);
    split_stream_free(&stream);
    dataset_free(&ds);
    return status;
}

/* Reads the patch source: a uint16 token file (name ending .u16) or the
 * bytes of a text file, at least L tokens in the vocabulary; keeps the
 * first L. */
static int load_source(LensData *data, const char *path, int vocab_size) {
    size_t count = 0;
    size_t n = strlen(path);
    int is_u16 = n >= 4 && !strcmp(path + n - 4, ".u16");
    if (is_u16 ? tokens_read_u16(path, &data->source, &count)
               : tokens_read_text(path, &data->source, &count))
        return -1;
    if (count < (size_t)data->L)
        return spiral_error("%s: %zu tokens; the patch source needs at least the windows' "
                            "%d", path, count, data->L);
    return tokens_check_vocab(data->source, (size_t)data->L, vocab_size, path);
}

/* The schedule of n iterations for --depths: the trained one cut to n, or
 * extended by repeating its last chunk size. */
static void depth_schedule(int *g, const SpiralConfig *cfg, int n) {
    for (int t = 0; t < n; t++)
        g[t] = cfg->schedule[t < cfg->n_iters ? t : cfg->n_iters - 1].g;
}

int lens_run(Store *store, const char *run_name, const char *dataset_name,
             const LensOptions *o, LensResult *result) {
    memset(result, 0, sizeof *result);
    if (o->n_sequences < 1 || o->batch_size < 1)
        return spiral_error("--sequences and --batch must be >= 1");
    RunRow run = {0};
    SpiralConfig run_cfg;
    TrainConfig tcfg;
    Model trained = {0}, model = {0}, probe = {0};
    LensData data = {0};
    PositionScores *coda = NULL, head = {0}, depth = {0};
    double *work = NULL;
    long long dataset_id = 0;
    int status = -1, capacity = 0, T = 0;
    char source[1400];
    if (store_run_find(store, run_name, &run)) return -1;
    snprintf(source, sizeof source, "%s: run %s", store->path, run_name);
    if (config_parse(&run_cfg, run.config, source) ||
        train_config_parse(&tcfg, run.config, source))
        goto done;
    if (run_model_load(store, &run, &run_cfg, o->step, &trained, &result->checkpoint_step))
        goto done;
    if (o->n_schedule > 0) {
        if (depth_model_build(&model, &trained, o->schedule, o->n_schedule)) goto done;
    } else {
        model = trained;
        trained = (Model){0};
    }
    const SpiralConfig *cfg = &model.cfg;
    T = result->n_iters = cfg->n_iters;
    int intervened = o->intervention.kind != INTERVENE_NONE;
    intervention_describe(result->intervention, sizeof result->intervention, &o->intervention);
    if (intervened && (o->depths > 0 || o->ablate_each)) {
        spiral_error("--depths and --ablate-each measure the model without an intervention; "
                     "run them without --ablate/--ablate-level");
        goto done;
    }
    if (intervened) { /* check the intervention before any pass */
        Intervention check;
        int bad = intervention_init(&check, &o->intervention, cfg, o->seq_len > 0 ? o->seq_len
                                                                                 : tcfg.seq_len);
        intervention_free(&check);
        if (bad) goto done;
    }
    schedule_text(result->schedule, sizeof result->schedule, cfg);
    int L = o->seq_len > 0 ? o->seq_len : tcfg.seq_len;
    if (load_windows(&data, store, dataset_name, o, L, cfg->vocab_size, &dataset_id)) goto done;
    if (o->intervention.kind == INTERVENE_PATCH) {
        if (!o->source_path) {
            spiral_error("--patch needs --source FILE (the sequence whose updates are patched in)");
            goto done;
        }
        if (load_source(&data, o->source_path, cfg->vocab_size)) goto done;
    }
    data.batch_size = o->batch_size;
    data.device = o->device;
    data.precision = o->precision;
    data.progress = o->progress;
    data.start = seconds_now();
    int batches = (data.n + data.batch_size - 1) / data.batch_size;
    data.passes_total = (long)batches * (2 * (T + 1) + o->depths +
                                         (o->ablate_each ? 2 * 2 * T : 0) +
                                         (intervened ? 2 * 2 * T : 0));
    result->n_sequences = data.n;
    result->n_tokens = (long long)data.n * L;
    work = malloc(3 * (size_t)data.n * sizeof *work);
    coda = calloc((size_t)T + 1, sizeof *coda);
    if (!work || !coda) {
        spiral_error("out of memory for the lens");
        goto done;
    }
    /* exits with the coda, t = 0 .. T (t = T: the model itself); exit 0
     * reads h(0), which no intervention touches */
    for (int t = 0; t <= T; t++) {
        if (scores_alloc(&coda[t], &data)) goto done;
        if (depth_exit_model_build(&probe, &model, t, 1)) goto done;
        int failed = score_on(&coda[t], &probe, t > 0 && intervened ? &o->intervention : NULL,
                              &data);
        model_free(&probe);
        if (failed) goto done;
    }
    for (int t = 0; t <= T; t++) {
        LensRow *row = push_row(result, &capacity);
        if (!row) goto done;
        snprintf(row->mode, sizeof row->mode, "coda");
        row->iteration = t;
        row->g = t > 0 ? cfg->schedule[t - 1].g : 1;
        if (fill_row(row, &coda[t], &coda[T], &data, work)) goto done;
    }
    /* exits without the coda */
    if (scores_alloc(&head, &data)) goto done;
    for (int t = 0; t <= T; t++) {
        if (depth_exit_model_build(&probe, &model, t, 0)) goto done;
        int failed = score_on(&head, &probe, t > 0 && intervened ? &o->intervention : NULL,
                              &data);
        model_free(&probe);
        if (failed) goto done;
        LensRow *row = push_row(result, &capacity);
        if (!row) goto done;
        snprintf(row->mode, sizeof row->mode, "head");
        row->iteration = t;
        row->g = t > 0 ? cfg->schedule[t - 1].g : 1;
        if (fill_row(row, &head, &coda[T], &data, work)) goto done;
    }
    /* per slot: what iteration t changes, at its chunk size */
    for (int t = 0; t < T; t++)
        if (slot_rows(result, &capacity, t, &cfg->schedule[t], &coda[t], &coda[t + 1], &data,
                      work))
            goto done;
    /* test-time depth: 1 .. depths iterations */
    if (o->depths > 0 && scores_alloc(&depth, &data)) goto done;
    for (int n = 1; n <= o->depths; n++) {
        int g[SPIRAL_MAX_ITERS];
        depth_schedule(g, cfg, n);
        if (depth_model_build(&probe, &model, g, n)) goto done;
        int failed = score_on(&depth, &probe, NULL, &data);
        LensRow *row = failed ? NULL : push_row(result, &capacity);
        if (row) {
            snprintf(row->mode, sizeof row->mode, "depth");
            row->iteration = n;
            row->g = g[n - 1];
            schedule_text(row->schedule, sizeof row->schedule, &probe.cfg);
        }
        model_free(&probe);
        if (!row || fill_row(row, &depth, &coda[T], &data, work)) goto done;
    }
    if (o->ablate_each &&
        ablation_rows(result, &capacity, &model, o->ablate_each_mean, &coda[T], &data, work))
        goto done;
    LensKey key = {.run_id = run.id, .dataset_id = dataset_id,
                   .checkpoint_step = result->checkpoint_step, .split = o->split,
                   .schedule = result->schedule, .intervention = result->intervention};
    status = lens_store_write(store, &key, result->rows, result->n_rows);
done:
    if (status) lens_result_free(result);
    for (int t = 0; coda && t <= T; t++) scores_free(&coda[t]);
    free(coda);
    scores_free(&head);
    scores_free(&depth);
    free(work);
    free(data.inputs);
    free(data.targets);
    free(data.source);
    model_free(&model);
    model_free(&trained);
    store_run_free(&run);
    return status;
}
