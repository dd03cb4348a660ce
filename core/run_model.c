/*
 * run_model.c: loading a run's checkpoint into a model (run_model.h).
 */
#include "run_model.h"

#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "error.h"
#include "filehash.h"
#include <stdio.h>

int run_model_load(Store *store, const RunRow *run, const SpiralConfig *cfg, long long max_step,
                   Model *model, long long *step) {
    char *path = NULL, *sha = NULL;
    if (store_checkpoint_at(store, run->id, run->name, max_step, step, &path, &sha)) return -1;
    int status = file_sha256_verify(path, sha);
    SpiralConfig file_cfg;
    ParamLayout layout = {0};
    real *values = NULL;
    if (status == 0) status = weights_load(path, &file_cfg, &layout, &values);
    if (status == 0 && memcmp(&file_cfg, cfg, sizeof file_cfg) != 0)
        status = spiral_error("%s: the checkpoint's config does not match run %s's config", path,
                              run->name);
    if (status == 0) status = model_build(model, cfg);
    if (status == 0) memcpy(model->params, values, model->layout.n_params * sizeof(real));
    free(values);
    param_layout_free(&layout);
    free(path);
    free(sha);
    return status;
}

int run_model_load_named(Store *store, const char *name, long long max_step, Model *model,
                         long long *step) {
    RunRow run;
    if (store_run_find(store, name, &run)) return -1;
    SpiralConfig cfg;
    char source[1400];
    snprintf(source, sizeof source, "%s: run %s", store->path, name);
    int status = config_parse(&cfg, run.config, source);
    if (status == 0) status = run_model_load(store, &run, &cfg, max_step, model, step);
    store_run_free(&run);
    return status;
}
