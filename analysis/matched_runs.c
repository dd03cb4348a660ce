/*
 * matched_runs.c: matching.h's baselines of a spiral as run files, and the
 * whole of `spiral match` (matched_runs.h).
 */
#include "matched_runs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cost.h"
#include "error.h"
#include "train_config.h"

/* Writes {"model": cfg, "train": train} to path (train may be NULL). */
static int write_run_file(const char *path, const SpiralConfig *cfg, const char *train_json) {
    char *model_text = config_to_json(cfg);
    if (!model_text) return spiral_error("out of memory");
    json_error_t error;
    json_t *root = json_object(), *model = json_loads(model_text, 0, &error);
    json_t *train = train_json ? json_loads(train_json, 0, &error) : NULL;
    free(model_text);
    int status = 0;
    if (!root || !model || (train_json && !train)) {
        status = spiral_error("%s: cannot compose the run file: %s", path, error.text);
    } else {
        json_object_set(root, "model", model);
        if (train) json_object_set(root, "train", train);
        FILE *f = fopen(path, "w");
        int failed = !f || json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 || fputc('\n', f) == EOF;
        if (f && fclose(f) != 0) failed = 1;
        if (failed) status = spiral_error("%s: cannot write the run file", path);
    }
    json_decref(root);
    json_decref(model);
    json_decref(train);
    return status;
}

int matched_write_run_files(const MatchedBaselines *m, const char *train_json, const char *dir,
                            const char *base, char paths[3][1024]) {
    const MatchedBaseline *rows[3] = {&m->looped, &m->dense_params, &m->dense_flops};
    const char *suffixes[3] = {"looped", "dense-params", "dense-flops"};
    for (int i = 0; i < 3; i++) {
        int n = snprintf(paths[i], 1024, "%s/%s-%s.json", dir, base, suffixes[i]);
        if (n < 0 || n >= 1024) return spiral_error("%s: output path too long", dir);
        if (write_run_file(paths[i], &rows[i]->cfg, train_json)) return -1;
    }
    return 0;
}

int matched_read_spiral_file(const char *path, SpiralConfig *cfg, char **train_json, int *seq_len) {
    *train_json = NULL;
    *seq_len = 0;
    if (config_load(cfg, path)) return -1;
    json_error_t error;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    if (!root) return spiral_error("%s: invalid JSON at line %d: %s", path, error.line, error.text);
    json_t *train = json_is_object(root) ? json_object_get(root, "train") : NULL;
    int status = 0;
    if (train) {
        char *text = json_dumps(root, JSON_COMPACT);
        TrainConfig parsed;
        if (!text) status = spiral_error("out of memory");
        else if (train_config_parse(&parsed, text, path)) status = -1;
        else *seq_len = parsed.seq_len;
        free(text);
        if (status == 0 && !(*train_json = json_dumps(train, JSON_COMPACT | JSON_PRESERVE_ORDER)))
            status = spiral_error("out of memory");
    }
    json_decref(root);
    return status;
}

/* Parses a bare train object (compact JSON) with train_config_parse. */
static int parse_train_object(TrainConfig *train, const char *train_json, const char *source) {
    size_t length = strlen(train_json) + 16;
    char *wrapped = malloc(length);
    if (!wrapped) return spiral_error("out of memory");
    snprintf(wrapped, length, "{\"train\":%s}", train_json);
    int status = train_config_parse(train, wrapped, source);
    free(wrapped);
    return status;
}

int matched_scale_train(char **train_out, long *steps_out, double *mismatch, const char *train_json,
                        const char *source, double target_flops, double flops_per_step) {
    *train_out = NULL;
    if (!(target_flops > 0) || !(flops_per_step > 0))
        return spiral_error("%s: equal FLOPs need a positive target and cost per step", source);
    TrainConfig parsed; /* the train object with its defaults */
    if (parse_train_object(&parsed, train_json, source)) return -1;
    double steps = floor(target_flops / flops_per_step + 0.5);
    if (steps < 1) steps = 1;
    if (steps > 1e12) return spiral_error("%s: equal FLOPs would need %.3g steps", source, steps);
    json_error_t error;
    json_t *train = json_loads(train_json, 0, &error);
    if (!json_is_object(train)) {
        json_decref(train);
        return spiral_error("%s: the train object is not a JSON object", source);
    }
    json_object_set_new(train, "steps", json_integer((json_int_t)steps));
    json_t *warmup = json_object_get(train, "warmup");
    if (json_is_integer(warmup)) {
        double scaled = floor((double)json_integer_value(warmup) * steps / (double)parsed.steps + 0.5);
        if (scaled < 1 && json_integer_value(warmup) >= 1) scaled = 1;
        if (scaled > steps) scaled = steps;
        json_object_set_new(train, "warmup", json_integer((json_int_t)scaled));
    }
    *train_out = json_dumps(train, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(train);
    if (!*train_out) return spiral_error("out of memory");
    *steps_out = (long)steps;
    *mismatch = steps * flops_per_step / target_flops - 1;
    return 0;
}

/* Training FLOPs per optimizer step of a model and train object. */
static double flops_per_step(const SpiralConfig *cfg, const TrainConfig *train) {
    ModelCost cost;
    model_cost(&cost, cfg, train->seq_len);
    return (double)train->batch_size * train->grad_accum * cost.train_flops;
}

int matched_run_flops(const char *path, double *total, double *per_step, char **train_json) {
    SpiralConfig cfg;
    int L;
    if (matched_read_spiral_file(path, &cfg, train_json, &L)) return -1;
    if (!*train_json) return spiral_error("%s: expected a run file with a \"train\" object", path);
    TrainConfig train;
    if (parse_train_object(&train, *train_json, path)) {
        free(*train_json);
        *train_json = NULL;
        return -1;
    }
    *per_step = flops_per_step(&cfg, &train);
    *total = *per_step * (double)train.steps;
    return 0;
}

int matched_rewrite_equal_flops(const char *path, const char *target_path, long *steps, double *mismatch) {
    double target, target_step, own, per_step;
    char *target_train = NULL, *train = NULL, *scaled = NULL;
    if (matched_run_flops(target_path, &target, &target_step, &target_train)) return -1;
    free(target_train);
    if (matched_run_flops(path, &own, &per_step, &train)) return -1;
    int status = matched_scale_train(&scaled, steps, mismatch, train, path, target, per_step);
    free(train);
    if (status) return -1;
    json_error_t error;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    json_t *new_train = json_loads(scaled, 0, &error);
    free(scaled);
    if (!root || !new_train) status = spiral_error("%s: cannot read back the run file: %s", path, error.text);
    else if (json_object_set(root, "train", new_train) ||
             json_dump_file(root, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER))
        status = spiral_error("%s: cannot write the run file", path);
    json_decref(root);
    json_decref(new_train);
    return status;
}

/* The file's name without directory and extension. */
static void base_name(char *out, size_t size, const char *path) {
    const char *base = strrchr(path, '/');
    snprintf(out, size, "%s", base ? base + 1 : path);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

/* The equal-parameter baselines (looped, dense at equal parameters)
 * trained to the spiral's training FLOPs: their train objects (malloc'd
 * into trains[2]), steps and mismatches; a table on out. */
static int equal_flops_trains(char *trains[2], const MatchedBaselines *m, const char *train_json, FILE *out) {
    const MatchedBaseline *rows[2] = {&m->looped, &m->dense_params};
    const char *names[2] = {"looped (FLOPs)", "dense (params, FLOPs)"};
    trains[0] = trains[1] = NULL;
    TrainConfig train;
    if (parse_train_object(&train, train_json, "the spiral's train object")) return -1;
    int status = 0;
    double target = flops_per_step(&m->spiral, &train) * (double)train.steps;
    fprintf(out, "\nequal training FLOPs by steps (each its own full schedule: warmup and cosine decay over its"
                 " steps; same tokens per step):\n");
    fprintf(out, "%-22s %8s %16s %10s %s\n", "kind", "steps", "training FLOPs", "mismatch", "tokens");
    fprintf(out, "%-22s %8ld %16.6g %+9.4f%% %.0f\n", "spiral", train.steps, target, 0.0,
            (double)train.steps * train.batch_size * train.grad_accum * train.seq_len);
    for (int i = 0; i < 2 && status == 0; i++) {
        long steps;
        double mismatch;
        double per_step = flops_per_step(&rows[i]->cfg, &train);
        status = matched_scale_train(&trains[i], &steps, &mismatch, train_json, names[i], target, per_step);
        if (status == 0)
            fprintf(out, "%-22s %8ld %16.6g %+9.4f%% %.0f\n", names[i], steps, (double)steps * per_step,
                    100 * mismatch, (double)steps * train.batch_size * train.grad_accum * train.seq_len);
    }
    if (status == 0)
        fprintf(out, "%-22s %8ld %16.6g %+9.4f%% (equal FLOPs by core size instead, at equal tokens)\n",
                "dense (FLOPs)", train.steps, flops_per_step(&m->dense_flops.cfg, &train) * (double)train.steps,
                100 * m->dense_flops.flops_mismatch);
    if (status) {
        free(trains[0]);
        free(trains[1]);
        trains[0] = trains[1] = NULL;
    }
    return status;
}

int matched_baselines_report(const char *config_path, int seq_len, const char *out_dir, FILE *out) {
    SpiralConfig cfg;
    char *train_json = NULL;
    int train_len;
    if (matched_read_spiral_file(config_path, &cfg, &train_json, &train_len)) return -1;
    int L = seq_len > 0 ? seq_len : train_len > 0 ? train_len : 256;
    MatchedBaselines m;
    char text[8192];
    if (matching_derive(&m, &cfg, L) || matching_format(text, sizeof text, &m)) {
        free(train_json);
        return -1;
    }
    fputs(text, out);
    char *flop_trains[2] = {NULL, NULL};
    if (train_json && equal_flops_trains(flop_trains, &m, train_json, out)) {
        free(train_json);
        return -1;
    }
    const MatchedBaseline *rows[3] = {&m.looped, &m.dense_params, &m.dense_flops};
    const char *names[3] = {"looped", "dense (params)", "dense (FLOPs)"};
    fprintf(out, "\nderived model configs:\n");
    for (int i = 0; i < 3; i++) {
        char *json = config_to_json(&rows[i]->cfg);
        fprintf(out, "%s: %s\n", names[i], json ? json : "(out of memory)");
        free(json);
    }
    int status = 0;
    if (out_dir) {
        char base[256], paths[3][1024];
        base_name(base, sizeof base, config_path);
        status = matched_write_run_files(&m, train_json, out_dir, base, paths);
        if (status == 0) {
            fprintf(out, "\n");
            for (int i = 0; i < 3; i++)
                fprintf(out, "wrote %s: %s, %.0f parameters (%.0f non-embedding), %.0f forward FLOPs at L = %d%s\n",
                        paths[i], names[i], rows[i]->params, rows[i]->params_nonembedding, rows[i]->forward_flops,
                        L, train_json ? "; train object kept" : "");
        }
        const char *flop_suffixes[2] = {"looped-flops", "dense-params-flops"};
        const char *flop_names[2] = {"looped (FLOPs)", "dense (params, FLOPs)"};
        for (int i = 0; i < 2 && status == 0 && train_json; i++) {
            char path[1024];
            int n = snprintf(path, sizeof path, "%s/%s-%s.json", out_dir, base, flop_suffixes[i]);
            if (n < 0 || n >= (int)sizeof path) status = spiral_error("%s: output path too long", out_dir);
            else status = write_run_file(path, &rows[i]->cfg, flop_trains[i]);
            if (status == 0)
                fprintf(out, "wrote %s: %s, %.0f parameters (%.0f non-embedding), %.0f forward FLOPs at L = %d;"
                             " train object with its steps for the spiral's training FLOPs\n",
                        path, flop_names[i], rows[i]->params, rows[i]->params_nonembedding, rows[i]->forward_flops, L);
        }
        if (status == 0 && !train_json)
            fprintf(out, "no train object in %s: the equal-FLOPs run files (by steps) need one\n", config_path);
    }
    free(flop_trains[0]);
    free(flop_trains[1]);
    free(train_json);
    return status;
}
