/*
 * train.c: the training loop (see train.h).
 *
 * One optimizer step: for each of grad_accum micro-batches, forward and
 * backward of B windows of L + 1 tokens (inputs and next-token targets),
 * gradients summed and divided by grad_accum; NaN/Inf check; global-norm
 * clipping; AdamW with the scheduled learning rate. Every eval_every steps
 * the validation loss on fixed windows; every checkpoint_every steps a
 * checkpoint, recorded in the store in the same transaction as the metrics
 * written since the last one.
 *
 * The model itself lives behind engine.h (the CPU engine, or the CUDA
 * engine of `make cuda`); checkpoints hold its float32 parameters and AdamW
 * moments, whichever engine wrote them.
 */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "adamw.h"
#include "config.h"
#include "cost.h"
#include "clock.h"
#include "error.h"
#include "fileio.h"
#include "mix.h"
#include "names.h"
#include "run_lock.h"
#include "runs.h"
#include "engine.h"
#include "filehash.h"
#include "safetensors.h"
#include "steps.h"

typedef struct {
    Store *store;
    long long run_id;
    char run_name[256];
    char *run_json;               /* {"model": ..., "train": ...} */
    SpiralConfig model_cfg;
    TrainConfig cfg;
    Engine *engine;               /* parameters, gradients, AdamW moments */
    long step;                    /* optimizer steps done */
    double wall_before;           /* seconds spent before this process */
    double last_val;
    ModelCost cost;
    SplitStream train, val;
    int *inputs, *targets;        /* (B, L) */
    size_t *starts;               /* (B) window starts of a micro-batch */
    MetricRow *pending;           /* metrics not yet in the store */
    int n_pending, cap_pending;
    char last_checkpoint[1200];
    char checkpoint_dir[1100];    /* train.checkpoint_dir resolved against the store */
    RunLock lock;                 /* the checkpoint folder, while training */
} Trainer;

/* Start of the window drawn with key (random: any offset; document: a
 * document start). */
static size_t window_start(const SplitStream *s, int window, int L, uint64_t key) {
    if (window == WINDOW_DOCUMENT) return s->starts[key % s->n_starts];
    return (size_t)(key % (uint64_t)(s->n - (size_t)L));
}

/* Copies B windows into inputs/targets (B, L): targets are inputs shifted
 * by one. starts (B) gives each window's first token. */
static void fill_batch(int *inputs, int *targets, const SplitStream *s, int B, int L,
                       const size_t *starts) {
    for (int b = 0; b < B; b++) {
        const int *w = s->tokens + starts[b];
        memcpy(inputs + (size_t)b * L, w, (size_t)L * sizeof(int));
        memcpy(targets + (size_t)b * L, w + 1, (size_t)L * sizeof(int));
    }
}

/* Mean validation loss over eval_batches x B fixed windows spread evenly
 * through the split (the same windows at every evaluation; the rule is
 * eval_window_start's, which the entropy floor and baselines share). */
static int evaluate(Trainer *tr, double *loss) {
    const TrainConfig *c = &tr->cfg;
    int B = c->batch_size, L = c->seq_len;
    size_t total = (size_t)c->eval_batches * B, *starts = tr->starts;
    double sum = 0;
    for (int batch = 0; batch < c->eval_batches; batch++) {
        for (int b = 0; b < B; b++)
            starts[b] = eval_window_start(&tr->val, c->window, L, (size_t)batch * B + b, total);
        fill_batch(tr->inputs, tr->targets, &tr->val, B, L, starts);
        double batch_loss;
        if (tr->engine->ops->forward(tr->engine, tr->inputs, tr->targets, B, L, &batch_loss))
            return -1;
        sum += batch_loss;
    }
    *loss = sum / c->eval_batches;
    return 0;
}

/* mkdir -p. */
static int make_dirs(const char *path) {
    char buffer[1100];
    if (snprintf(buffer, sizeof buffer, "%s", path) >= (int)sizeof buffer)
        return spiral_error("%.60s...: path too long (at most %zu bytes)", path, sizeof buffer - 1);
    for (char *p = buffer + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buffer, 0777) && errno != EEXIST)
            return spiral_error("%s: cannot create directory: %s", buffer, strerror(errno));
        *p = '/';
    }
    if (mkdir(buffer, 0777) && errno != EEXIST)
        return spiral_error("%s: cannot create directory: %s", buffer, strerror(errno));
    return 0;
}

/* Appends a metric row to the pending list. */
static int push_metric(Trainer *tr, const MetricRow *row) {
    if (tr->n_pending == tr->cap_pending) {
        int cap = tr->cap_pending ? 2 * tr->cap_pending : 64;
        MetricRow *grown = realloc(tr->pending, (size_t)cap * sizeof *grown);
        if (!grown) return spiral_error("out of memory buffering metrics");
        tr->pending = grown;
        tr->cap_pending = cap;
    }
    tr->pending[tr->n_pending++] = *row;
    return 0;
}

/* Writes pending metrics in one transaction. */
static int flush_metrics(Trainer *tr) {
    if (tr->n_pending == 0) return 0;
    if (store_begin(tr->store)) return -1;
    if (store_metrics_insert(tr->store, tr->run_id, tr->pending, tr->n_pending) ||
        store_commit(tr->store)) {
        store_rollback(tr->store);
        return -1;
    }
    tr->n_pending = 0;
    return 0;
}

/* Writes a checkpoint (weights, adam.m.*, adam.v.*, metadata) atomically,
 * then records it with the pending metrics in one transaction. */
static int save_checkpoint(Trainer *tr, double wall_seconds) {
    const ParamLayout *layout = tr->engine->layout;
    char path[1200], step_text[32], wall_text[64];
    snprintf(path, sizeof path, "%s/step_%08ld.safetensors", tr->checkpoint_dir, tr->step);
    snprintf(step_text, sizeof step_text, "%ld", tr->step);
    snprintf(wall_text, sizeof wall_text, "%.17g", wall_seconds);
    size_t n = layout->n_params;
    int count = 3 * layout->n_tensors;
    float *values = malloc(3 * n * sizeof(float));
    SafeTensor *tensors = calloc((size_t)count, sizeof *tensors);
    char *names = malloc((size_t)count * (PARAM_NAME_CAP + 8));
    char *model_json = config_to_json(&tr->model_cfg);
    int status = -1;
    if (!values || !tensors || !names || !model_json) {
        spiral_error("out of memory writing a checkpoint");
        goto done;
    }
    if (tr->engine->ops->get_params(tr->engine, values) ||
        tr->engine->ops->get_adam_state(tr->engine, values + n, values + 2 * n))
        goto done;
    const char *prefixes[3] = {"", "adam.m.", "adam.v."};
    for (int part = 0; part < 3; part++) {
        for (int t = 0; t < layout->n_tensors; t++) {
            const ParamTensor *pt = &layout->tensors[t];
            SafeTensor *st = &tensors[part * layout->n_tensors + t];
            st->name = names + (size_t)(part * layout->n_tensors + t) * (PARAM_NAME_CAP + 8);
            snprintf(st->name, PARAM_NAME_CAP + 8, "%s%s", prefixes[part], pt->name);
            st->ndim = pt->ndim;
            st->shape[0] = pt->shape[0];
            st->shape[1] = pt->shape[1];
            st->numel = (int64_t)pt->numel;
            st->data = values + part * n + pt->offset;
        }
    }
    const char *keys[5] = {"config", "format", "step", "wall_seconds", "run"};
    const char *vals[5] = {model_json, "pt", step_text, wall_text, tr->run_json};
    if (safetensors_write(path, 5, keys, vals, count, tensors)) goto done;
    char sha[65];
    if (file_sha256_hex(path, sha)) goto done;
    if (store_begin(tr->store)) goto done;
    if (store_metrics_insert(tr->store, tr->run_id, tr->pending, tr->n_pending) ||
        store_checkpoint_add(tr->store, tr->run_id, tr->step, path, sha) ||
        store_commit(tr->store)) {
        store_rollback(tr->store);
        goto done;
    }
    tr->n_pending = 0;
    snprintf(tr->last_checkpoint, sizeof tr->last_checkpoint, "%s", path);
    status = 0;
done:
    free(values);
    free(tensors);
    free(names);
    free(model_json);
    return status;
}

/* Loads weights and AdamW moments from a checkpoint, after checking its
 * sha256 against the store. */
static int load_checkpoint(Trainer *tr, const char *path, const char *sha_expected) {
    if (file_sha256_verify(path, sha_expected)) return spiral_error_prefix("checkpoint");
    SafeFile file;
    if (safetensors_read(&file, path)) return -1;
    const ParamLayout *layout = tr->engine->layout;
    size_t n = layout->n_params;
    float *values = malloc(3 * n * sizeof(float));
    if (!values) {
        safetensors_free(&file);
        return spiral_error("%s: out of memory reading the checkpoint", path);
    }
    const char *prefixes[3] = {"", "adam.m.", "adam.v."};
    int status = 0;
    for (int part = 0; part < 3 && status == 0; part++) {
        for (int t = 0; t < layout->n_tensors; t++) {
            const ParamTensor *pt = &layout->tensors[t];
            char name[PARAM_NAME_CAP + 8];
            snprintf(name, sizeof name, "%s%s", prefixes[part], pt->name);
            const SafeTensor *st = safetensors_find(&file, name);
            if (!st || st->numel != (int64_t)pt->numel) {
                status = spiral_error("%s: tensor %s %s", path, name,
                                      st ? "has the wrong size" : "is missing");
                break;
            }
            memcpy(values + part * n + pt->offset, st->data, pt->numel * sizeof(float));
        }
    }
    if (status == 0 && (tr->engine->ops->set_params(tr->engine, values) ||
                        tr->engine->ops->set_adam_state(tr->engine, values + n, values + 2 * n)))
        status = -1;
    free(values);
    const char *step_text = safetensors_metadata(&file, "step");
    const char *wall_text = safetensors_metadata(&file, "wall_seconds");
    if (status == 0 && (!step_text || !wall_text))
        status = spiral_error("%s: metadata lacks step or wall_seconds", path);
    if (status == 0) {
        tr->step = strtol(step_text, NULL, 10);
        tr->wall_before = strtod(wall_text, NULL);
        snprintf(tr->last_checkpoint, sizeof tr->last_checkpoint, "%s", path);
    }
    safetensors_free(&file);
    return status;
}

/* Name of the first tensor whose gradient holds NaN or Inf. */
static const char *first_nonfinite_tensor(Engine *engine) {
    const ParamLayout *layout = engine->layout;
    float *grads = malloc(layout->n_params * sizeof(float));
    const char *name = "(none: the loss itself is not finite)";
    if (!grads || engine->ops->get_grads(engine, grads)) {
        free(grads);
        return "(unknown: the gradients could not be read)";
    }
    for (int t = 0; t < layout->n_tensors; t++) {
        const ParamTensor *pt = &layout->tensors[t];
        for (size_t i = 0; i < pt->numel; i++)
            if (!isfinite(grads[pt->offset + i])) {
                name = pt->name;
                t = layout->n_tensors;
                break;
            }
    }
    free(grads);
    return name;
}

/* Sends the step's progress: steps done, loss, validation loss, tokens/s. */
static void report_progress(const Trainer *tr, const Progress *progress, double loss,
                            double tokens_per_second, double elapsed, long first_step) {
    const TrainConfig *c = &tr->cfg;
    char detail[96], val[32] = "";
    if (!isnan(tr->last_val)) snprintf(val, sizeof val, " val %.4f", tr->last_val);
    snprintf(detail, sizeof detail, "loss %.4f%s | %.0f tok/s", loss, val, tokens_per_second);
    ProgressReport report = {"train", "steps", tr->step, c->steps, elapsed, first_step, detail,
                             tr->step == c->steps};
    progress_report(progress, &report);
}

/* Trains from tr->step to cfg.steps. */
static int train_loop(Trainer *tr, const TrainOptions *options, TrainResult *result) {
    const TrainConfig *c = &tr->cfg;
    int B = c->batch_size, L = c->seq_len;
    Engine *engine = tr->engine;
    size_t *starts = tr->starts;
    double start_time = seconds_now();
    long first_step = tr->step;
    double loss = NAN;
    AdamWSettings adam = {c->lr, c->beta1, c->beta2, c->adam_eps, c->weight_decay};
    if (store_run_set_status(tr->store, tr->run_id, "running", NULL)) return -1;
    while (tr->step < c->steps) {
        long step = tr->step + 1;
        if (engine->ops->zero_grad(engine)) return -1;
        double loss_sum = 0;
        for (int micro = 0; micro < c->grad_accum; micro++) {
            for (int b = 0; b < B; b++) {
                /* a pure function of (seed, step, micro, row): a resumed
                 * run draws the same data */
                uint64_t key = splitmix64_at(splitmix64_at(splitmix64_at((uint64_t)c->seed) ^
                                                           (uint64_t)step) ^
                                             ((uint64_t)micro << 32 | (uint64_t)b));
                starts[b] = window_start(&tr->train, c->window, L, key);
            }
            fill_batch(tr->inputs, tr->targets, &tr->train, B, L, starts);
            double micro_loss;
            if (engine->ops->forward(engine, tr->inputs, tr->targets, B, L, &micro_loss) ||
                engine->ops->backward(engine))
                return -1;
            loss_sum += micro_loss;
        }
        loss = loss_sum / c->grad_accum;
        double norm;
        if (engine->ops->grad_norm(engine, c->grad_accum > 1 ? 1.0 / c->grad_accum : 1.0, &norm))
            return -1;
        if (!isfinite(loss) || !isfinite(norm)) {
            char message[1600];
            snprintf(message, sizeof message,
                     "step %ld: training diverged (loss %g, gradient norm %g); first non-finite "
                     "gradient in tensor %s; last good checkpoint: %s", step, loss, norm,
                     first_nonfinite_tensor(engine),
                     tr->last_checkpoint[0] ? tr->last_checkpoint : "none");
            flush_metrics(tr);
            store_run_set_status(tr->store, tr->run_id, "failed", message);
            return spiral_error("%s", message);
        }
        adam.lr = train_lr_at(c, step);
        if (engine->ops->clip_and_step(engine, c->clip, norm, &adam, step)) return -1;
        tr->step = step;

        MetricRow row = {.step = step, .loss = loss, .val_loss = NAN, .lr = adam.lr,
                         .grad_norm = norm};
        row.tokens = step * (long long)B * c->grad_accum * L;
        row.flops = (double)step * B * c->grad_accum * tr->cost.train_flops;
        int eval_now = (c->eval_every > 0 && step % c->eval_every == 0) || step == c->steps;
        if (eval_now) {
            if (evaluate(tr, &row.val_loss)) return -1;
            tr->last_val = row.val_loss;
        }
        double elapsed = seconds_now() - start_time;
        row.wall_seconds = tr->wall_before + elapsed;
        if (push_metric(tr, &row)) return -1;
        int stop = options->interrupt && *options->interrupt;
        if (train_checkpoint_due(c, step) || stop) {
            if (save_checkpoint(tr, row.wall_seconds)) return -1;
        } else if (tr->n_pending >= 50 || eval_now) {
            if (flush_metrics(tr)) return -1;
        }
        if (options->progress) {
            double tokens_per_second = (double)(step - first_step) * B * c->grad_accum * L /
                                       (elapsed > 0 ? elapsed : 1e-9);
            report_progress(tr, options->progress, loss, tokens_per_second, elapsed, first_step);
        }
        if (stop) {
            store_run_set_status(tr->store, tr->run_id, "interrupted", "stopped by a signal");
            result->interrupted = 1;
            break;
        }
    }
    if (!result->interrupted && store_run_set_status(tr->store, tr->run_id, "done", NULL))
        return -1;
    result->step = tr->step;
    result->loss = loss;
    result->val_loss = tr->last_val;
    result->seconds = tr->wall_before + (seconds_now() - start_time);
    return 0;
}

/* Everything a run needs besides the store rows: dataset streams, model,
 * optimizer state, buffers. Validates before anything is written. */
static int trainer_prepare(Trainer *tr, Store *store, const char *run_json_text,
                           const char *source, const char *device,
                           const char *precision) {
    Dataset ds;
    long long dataset_id;
    memset(tr, 0, sizeof *tr);
    tr->store = store;
    tr->last_val = NAN;
    if (config_parse(&tr->model_cfg, run_json_text, source) ||
        train_config_parse(&tr->cfg, run_json_text, source))
        return -1;
    if (store_dataset_load(store, tr->cfg.dataset, &ds, &dataset_id)) return -1;
    if (ds.vocab_size > tr->model_cfg.vocab_size) {
        spiral_error("%s: model.vocab_size %d is smaller than dataset %s's vocabulary (%d)",
                     source, tr->model_cfg.vocab_size, tr->cfg.dataset, ds.vocab_size);
        dataset_free(&ds);
        return -1;
    }
    int status = eval_split_stream(&tr->train, &ds, SPLIT_TRAIN, tr->cfg.seq_len,
                                   tr->cfg.window, tr->cfg.dataset);
    if (status == 0)
        status = eval_split_stream(&tr->val, &ds, SPLIT_VAL, tr->cfg.seq_len, tr->cfg.window,
                                   tr->cfg.dataset);
    dataset_free(&ds);
    if (status) return -1;
    if (engine_open(&tr->engine, device, precision, &tr->model_cfg)) return -1;
    tr->inputs = malloc((size_t)tr->cfg.batch_size * tr->cfg.seq_len * sizeof(int));
    tr->targets = malloc((size_t)tr->cfg.batch_size * tr->cfg.seq_len * sizeof(int));
    tr->starts = malloc((size_t)tr->cfg.batch_size * sizeof(size_t));
    if (!tr->inputs || !tr->targets || !tr->starts)
        return spiral_error("out of memory for the batch buffers");
    model_cost(&tr->cost, &tr->model_cfg, tr->cfg.seq_len);
    return 0;
}

static void trainer_free(Trainer *tr) {
    run_lock_release(&tr->lock);
    engine_free(tr->engine);
    free(tr->inputs);
    free(tr->targets);
    free(tr->starts);
    free(tr->pending);
    free(tr->run_json);
    split_stream_free(&tr->train);
    split_stream_free(&tr->val);
}

/* Resolves the checkpoint folder (train.checkpoint_dir, by default
 * checkpoints/RUN, relative to the store's folder), creates it, takes its lock (one process per run) and
 * removes the temporary files of a checkpoint write that was killed. */
static int claim_checkpoint_dir(Trainer *tr) {
    int removed;
    if (run_checkpoint_dir(tr->store, tr->cfg.checkpoint_dir, tr->run_name, tr->checkpoint_dir,
                           sizeof tr->checkpoint_dir))
        return -1;
    if (make_dirs(tr->checkpoint_dir) ||
        run_lock_acquire(&tr->lock, tr->checkpoint_dir, tr->run_name) ||
        run_dir_remove_temporaries(tr->checkpoint_dir, &removed))
        return -1;
    return 0;
}

/* The run JSON with every field resolved. */
static char *compose_run_json(const Trainer *tr) {
    char *model = config_to_json(&tr->model_cfg), *train = train_config_to_json(&tr->cfg);
    char *text = NULL;
    if (model && train) {
        size_t size = strlen(model) + strlen(train) + 32;
        text = malloc(size);
        if (text) snprintf(text, size, "{\"model\":%s,\"train\":%s}", model, train);
    }
    free(model);
    free(train);
    return text;
}

int train_new(Store *store, const char *run_name, const char *run_path,
              const TrainOptions *options, TrainResult *result) {
    Trainer tr;
    memset(result, 0, sizeof *result);
    if (name_check("run", run_name)) return -1;
    char *text;
    size_t text_size;
    if (file_read_all(run_path, &text, &text_size)) return -1;
    int status = trainer_prepare(&tr, store, text, run_path, options->device,
                                 options->precision);
    free(text);
    if (status) goto done;
    snprintf(tr.run_name, sizeof tr.run_name, "%s", run_name);
    tr.run_json = compose_run_json(&tr);
    if (!tr.run_json) { status = spiral_error("out of memory"); goto done; }
    RunRow existing;
    if (store_run_find(store, run_name, &existing) == 0) {
        store_run_free(&existing);
        status = spiral_error("%s: a run named '%s' already exists (continue it with "
                              "'spiral train --resume %s', or choose another --name)",
                              store->path, run_name, run_name);
        goto done;
    }
    Dataset probe;
    long long dataset_id;
    if ((status = store_dataset_load(store, tr.cfg.dataset, &probe, &dataset_id))) goto done;
    dataset_free(&probe);
    if ((status = claim_checkpoint_dir(&tr))) goto done;
    if ((status = store_run_create(store, run_name, model_kind_name(model_kind(&tr.model_cfg)), tr.run_json,
                                   dataset_id, options->command, &tr.run_id)))
        goto done;
    if ((status = tr.engine->ops->init_weights(tr.engine, (unsigned long)tr.cfg.seed))) goto done;
    status = train_loop(&tr, options, result);
done:
    if (status && tr.run_id) {
        char message[1200];
        snprintf(message, sizeof message, "%s", spiral_last_error());
        /* a run that failed before its first step leaves nothing worth
         * keeping: free its name for the corrected run */
        if (tr.step == 0) store_run_delete(store, tr.run_id);
        else store_run_set_status(store, tr.run_id, "failed", message);
        spiral_error("%s", message);
    }
    trainer_free(&tr);
    return status;
}

int train_resume(Store *store, const char *run_name, const TrainOptions *options,
                 TrainResult *result) {
    Trainer tr;
    RunRow run;
    memset(result, 0, sizeof *result);
    if (store_run_find(store, run_name, &run)) return -1;
    char source[1400];
    snprintf(source, sizeof source, "%s: run %s", store->path, run_name);
    int status = trainer_prepare(&tr, store, run.config, source, options->device,
                                 options->precision);
    if (status) goto done;
    tr.run_id = run.id;
    tr.run_json = strdup(run.config);
    snprintf(tr.run_name, sizeof tr.run_name, "%s", run_name);
    long long checkpoint_step;
    char *path = NULL, *sha = NULL;
    if ((status = store_checkpoint_last(store, run.id, &checkpoint_step, &path, &sha))) goto done;
    if (path) {
        status = load_checkpoint(&tr, path, sha);
    } else {
        status = tr.engine->ops->init_weights(tr.engine, (unsigned long)tr.cfg.seed);
    }
    free(path);
    free(sha);
    if (status) goto done;
    if (tr.step >= tr.cfg.steps && !strcmp(run.status, "done")) {
        result->step = tr.step;
        result->val_loss = NAN;
        result->loss = NAN;
        result->finished_before = 1;
        goto done; /* nothing to do */
    }
    if ((status = claim_checkpoint_dir(&tr))) goto done;
    if (store_begin(store) || store_metrics_truncate(store, run.id, tr.step) || store_commit(store)) {
        store_rollback(store);
        status = -1;
        goto done;
    }
    status = train_loop(&tr, options, result);
    if (status) {
        char message[1200];
        snprintf(message, sizeof message, "%s", spiral_last_error());
        store_run_set_status(store, run.id, "failed", message);
        spiral_error("%s", message);
    }
done:
    trainer_free(&tr);
    store_run_free(&run);
    return status;
}
