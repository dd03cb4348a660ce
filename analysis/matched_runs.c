/*
 * matched_runs.c: matching.h's baselines of a spiral as run files, and the
 * whole of `spiral match` (matched_runs.h).
 */
#include "matched_runs.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

/* The file's name without directory and extension. */
static void base_name(char *out, size_t size, const char *path) {
    const char *base = strrchr(path, '/');
    snprintf(out, size, "%s", base ? base + 1 : path);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
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
    }
    free(train_json);
    return status;
}
