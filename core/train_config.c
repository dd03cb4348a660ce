/*
 * train_config.c: parsing and writing the `train` object (train_config.h).
 */
#include "train_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "jsontext.h"

static void train_config_default(TrainConfig *c) {
    memset(c, 0, sizeof *c);
    c->seq_len = 128;
    c->batch_size = 8;
    c->grad_accum = 1;
    c->steps = 1000;
    c->warmup = -1; /* resolved from steps below */
    c->lr = 1e-3;
    c->min_lr = -1; /* resolved from lr below */
    c->weight_decay = 0.1;
    c->beta1 = 0.9;
    c->beta2 = 0.95;
    c->adam_eps = 1e-8;
    c->clip = 1.0;
    c->seed = 0;
    c->eval_every = 100;
    c->eval_batches = 8;
    c->checkpoint_every = 100;
    c->window = WINDOW_RANDOM;
}

/* Reads an integer field in [min, max] if present. */
static int read_long(json_t *obj, const char *name, long min, long max, long *out) {
    json_t *v = json_object_get(obj, name);
    if (!v) return 0;
    if (!json_is_integer(v))
        return spiral_error("train.%s: expected an integer, got %s", name,
                            json_is_string(v) ? "a string" : json_is_real(v) ? "a real number"
                                                                              : "another type");
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return spiral_error("train.%s: expected an integer in [%ld, %ld], got %lld", name, min,
                            max, (long long)x);
    *out = (long)x;
    return 0;
}

static int read_int(json_t *obj, const char *name, long min, long max, int *out) {
    long v = *out;
    if (read_long(obj, name, min, max, &v)) return -1;
    *out = (int)v;
    return 0;
}

/* Reads a number field; `positive` demands > min, else >= min; <= max. */
static int read_double(json_t *obj, const char *name, double min, int positive, double max,
                       double *out) {
    json_t *v = json_object_get(obj, name);
    if (!v) return 0;
    if (!json_is_number(v))
        return spiral_error("train.%s: expected a number, got %s", name, json_type_name(v));
    double x = json_number_value(v);
    if (!isfinite(x) || (positive ? x <= min : x < min) || x > max) {
        char upper[64] = "";
        if (max < 1e300) snprintf(upper, sizeof upper, " and <= %g", max);
        return spiral_error("train.%s: expected a number %s %g%s, got %g", name,
                            positive ? ">" : ">=", min, upper, x);
    }
    *out = x;
    return 0;
}

static int read_string(json_t *obj, const char *name, char *out, size_t size) {
    json_t *v = json_object_get(obj, name);
    if (!v) return 0;
    if (!json_is_string(v))
        return spiral_error("train.%s: expected a string, got %s", name, json_type_name(v));
    if (strlen(json_string_value(v)) >= size)
        return spiral_error("train.%s: longer than %zu characters", name, size - 1);
    snprintf(out, size, "%s", json_string_value(v));
    return 0;
}

static const char *known_fields[] = {
    "dataset", "seq_len", "batch_size", "grad_accum", "steps", "warmup", "lr", "min_lr",
    "weight_decay", "beta1", "beta2", "adam_eps", "clip", "seed", "eval_every",
    "eval_batches", "checkpoint_every", "window", "checkpoint_dir", "keep_steps"};

/* Reads train.keep_steps: an array of increasing steps in [1, steps]. */
static int read_keep_steps(TrainConfig *c, json_t *obj) {
    json_t *v = json_object_get(obj, "keep_steps");
    if (!v) return 0;
    if (!json_is_array(v))
        return spiral_error("train.keep_steps: expected an array of steps, got %s",
                            json_type_name(v));
    if (json_array_size(v) > TRAIN_MAX_KEEP_STEPS)
        return spiral_error("train.keep_steps: %zu steps; at most %d", json_array_size(v),
                            TRAIN_MAX_KEEP_STEPS);
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        if (!json_is_integer(item))
            return spiral_error("train.keep_steps[%zu]: expected an integer step, got %s", i,
                                json_type_name(item));
        json_int_t step = json_integer_value(item);
        if (step < 1 || step > c->steps)
            return spiral_error("train.keep_steps[%zu]: expected a step in [1, %ld] "
                                "(train.steps), got %lld", i, c->steps, (long long)step);
        if (i > 0 && step <= c->keep_steps[i - 1])
            return spiral_error("train.keep_steps[%zu]: expected steps in increasing order, got "
                                "%lld after %ld", i, (long long)step, c->keep_steps[i - 1]);
        c->keep_steps[i] = (long)step;
    }
    c->n_keep_steps = (int)json_array_size(v);
    return 0;
}

/* Parses the train object itself. */
static int parse_object(TrainConfig *c, json_t *obj) {
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        size_t n = sizeof known_fields / sizeof known_fields[0], i;
        for (i = 0; i < n; i++)
            if (!strcmp(key, known_fields[i])) break;
        if (i == n)
            return spiral_error("train.%s: unknown field (known: dataset, seq_len, batch_size, "
                                "grad_accum, steps, warmup, lr, min_lr, weight_decay, beta1, "
                                "beta2, adam_eps, clip, seed, eval_every, eval_batches, "
                                "checkpoint_every, window, checkpoint_dir, keep_steps)", key);
    }
    char window[32] = "";
    if (read_string(obj, "dataset", c->dataset, sizeof c->dataset) ||
        read_int(obj, "seq_len", 1, 1 << 16, &c->seq_len) ||
        read_int(obj, "batch_size", 1, 1 << 16, &c->batch_size) ||
        read_int(obj, "grad_accum", 1, 1 << 16, &c->grad_accum) ||
        read_long(obj, "steps", 1, 1L << 40, &c->steps) ||
        read_long(obj, "warmup", 0, 1L << 40, &c->warmup) ||
        read_double(obj, "lr", 0, 1, 10, &c->lr) ||
        read_double(obj, "min_lr", 0, 0, 10, &c->min_lr) ||
        read_double(obj, "weight_decay", 0, 0, 100, &c->weight_decay) ||
        read_double(obj, "beta1", 0, 0, 0.999999, &c->beta1) ||
        read_double(obj, "beta2", 0, 0, 0.999999, &c->beta2) ||
        read_double(obj, "adam_eps", 0, 1, 1, &c->adam_eps) ||
        read_double(obj, "clip", 0, 0, 1e300, &c->clip) ||
        read_long(obj, "seed", 0, 2147483647L, &c->seed) ||
        read_long(obj, "eval_every", 0, 1L << 40, &c->eval_every) ||
        read_int(obj, "eval_batches", 1, 1 << 20, &c->eval_batches) ||
        read_long(obj, "checkpoint_every", 1, 1L << 40, &c->checkpoint_every) ||
        read_string(obj, "window", window, sizeof window) ||
        read_string(obj, "checkpoint_dir", c->checkpoint_dir, sizeof c->checkpoint_dir) ||
        read_keep_steps(c, obj))
        return -1;
    if (!c->dataset[0]) return spiral_error("train.dataset: required (the name of a dataset in the store)");
    if (window[0]) {
        if (!strcmp(window, "random")) c->window = WINDOW_RANDOM;
        else if (!strcmp(window, "document")) c->window = WINDOW_DOCUMENT;
        else return spiral_error("train.window: expected \"random\" or \"document\", got \"%s\"", window);
    }
    if (c->warmup < 0) c->warmup = c->steps / 10 < 100 ? c->steps / 10 : 100;
    if (c->min_lr < 0) c->min_lr = c->lr / 10;
    if (c->warmup > c->steps)
        return spiral_error("train.warmup: %ld warmup steps exceed train.steps = %ld", c->warmup, c->steps);
    if (c->min_lr > c->lr)
        return spiral_error("train.min_lr: %g exceeds train.lr = %g", c->min_lr, c->lr);
    return 0;
}

int train_config_parse(TrainConfig *cfg, const char *json_text, const char *source) {
    json_error_t error;
    train_config_default(cfg);
    json_t *root = json_loads(json_text, JSON_REJECT_DUPLICATES, &error);
    if (!root)
        return spiral_error("%s: invalid JSON at line %d, column %d: %s", source, error.line,
                            error.column, error.text);
    json_t *train = json_object_get(root, "train");
    int status = 0;
    if (!json_is_object(root) || !train)
        status = spiral_error("%s: expected a run file with a \"train\" object", source);
    else if (!json_is_object(train))
        status = spiral_error("%s: train: expected an object", source);
    else if (parse_object(cfg, train))
        status = spiral_error_prefix("%s", source);
    json_decref(root);
    return status;
}

char *train_config_to_json(const TrainConfig *c) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "dataset", json_string(c->dataset));
    json_object_set_new(o, "seq_len", json_integer(c->seq_len));
    json_object_set_new(o, "batch_size", json_integer(c->batch_size));
    json_object_set_new(o, "grad_accum", json_integer(c->grad_accum));
    json_object_set_new(o, "steps", json_integer(c->steps));
    json_object_set_new(o, "warmup", json_integer(c->warmup));
    json_object_set_new(o, "lr", json_real(c->lr));
    json_object_set_new(o, "min_lr", json_real(c->min_lr));
    json_object_set_new(o, "weight_decay", json_real(c->weight_decay));
    json_object_set_new(o, "beta1", json_real(c->beta1));
    json_object_set_new(o, "beta2", json_real(c->beta2));
    json_object_set_new(o, "adam_eps", json_real(c->adam_eps));
    json_object_set_new(o, "clip", json_real(c->clip));
    json_object_set_new(o, "seed", json_integer(c->seed));
    json_object_set_new(o, "eval_every", json_integer(c->eval_every));
    json_object_set_new(o, "eval_batches", json_integer(c->eval_batches));
    json_object_set_new(o, "checkpoint_every", json_integer(c->checkpoint_every));
    json_object_set_new(o, "window", json_string(c->window == WINDOW_DOCUMENT ? "document" : "random"));
    json_object_set_new(o, "checkpoint_dir", json_string(c->checkpoint_dir));
    if (c->n_keep_steps > 0) { /* written only when set: older runs' JSON is unchanged */
        json_t *keep = json_array();
        for (int k = 0; k < c->n_keep_steps; k++)
            json_array_append_new(keep, json_integer(c->keep_steps[k]));
        json_object_set_new(o, "keep_steps", keep);
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    return text;
}

int train_checkpoint_due(const TrainConfig *c, long step) {
    if (step % c->checkpoint_every == 0 || step == c->steps) return 1;
    for (int k = 0; k < c->n_keep_steps; k++)
        if (c->keep_steps[k] == step) return 1;
    return 0;
}

double train_lr_at(const TrainConfig *c, long step) {
    if (c->warmup > 0 && step <= c->warmup) return c->lr * (double)step / (double)c->warmup;
    if (c->steps <= c->warmup) return c->lr;
    double progress = (double)(step - c->warmup) / (double)(c->steps - c->warmup);
    if (progress > 1) progress = 1;
    return c->min_lr + (c->lr - c->min_lr) * 0.5 * (1 + cos(M_PI * progress));
}
