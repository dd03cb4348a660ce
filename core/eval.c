/*
 * eval.c: one sequence through a loaded model (eval.h).
 */
#include "eval.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "depth.h"
#include "error.h"
#include "engine.h"
#include "model.h"
#include "npy.h"
#include "run_model.h"
#include "store.h"
#include "tokens.h"

int eval_load_model(const EvalOptions *options, Model *model, long long *step) {
    Model trained = {0};
    int status = -1;
    *step = 0;
    if (options->weights_path) {
        SpiralConfig cfg;
        ParamLayout file_layout = {0};
        real *values = NULL;
        if (weights_load(options->weights_path, &cfg, &file_layout, &values) == 0 &&
            model_build(&trained, &cfg) == 0) {
            memcpy(trained.params, values, trained.layout.n_params * sizeof(real));
            status = 0;
        }
        free(values);
        param_layout_free(&file_layout);
    } else {
        Store store;
        if (store_open_readonly(&store, options->store_path)) return -1;
        status = run_model_load_named(&store, options->run_name, options->step, &trained, step);
        store_close(&store);
    }
    if (status == 0 && options->n_schedule > 0) {
        status = depth_model_build(model, &trained, options->schedule, options->n_schedule);
        model_free(&trained);
        return status;
    }
    if (status) model_free(&trained);
    else *model = trained;
    return status;
}

/* Reads a sequence of the options' kind (text bytes or uint16 tokens). */
static int read_sequence(const EvalOptions *options, const char *path, int **tokens,
                         size_t *count) {
    return options->text_path ? tokens_read_text(path, tokens, count)
                              : tokens_read_u16(path, tokens, count);
}

/* What an evaluation's passes run on: the model's own forward, or (another
 * device) an engine holding its weights; loss: the last pass's. */
typedef struct {
    Model *model;
    Engine *engine;
    double loss;
} EvalTarget;

/* One pass over tokens (L inputs, the targets after them). */
static int target_forward(EvalTarget *target, const int *tokens, int L) {
    if (target->engine)
        return target->engine->ops->observe(target->engine, tokens, tokens + 1, 1, L, NULL, 0,
                                            &target->loss);
    if (model_forward(target->model, tokens, tokens + 1, 1, L, NULL)) return -1;
    target->loss = target->model->loss;
    return 0;
}

static int target_set_hook(EvalTarget *target, const UpdateHook *hook) {
    if (target->engine) return target->engine->ops->set_update_hook(target->engine, hook);
    target->model->update_hook = hook;
    return 0;
}

/* Runs the intervention on the sequence (L inputs, targets after them):
 * a first pass when it needs one (the mean over the sequence's positions,
 * or the source's updates), then the pass with the intervention, whose
 * logits and loss stay in the target. */
static int run_intervention(EvalTarget *target, const EvalOptions *options, const int *tokens,
                            int L) {
    const SpiralConfig *cfg = &target->model->cfg;
    Intervention iv;
    int *source = NULL;
    size_t count = 0;
    int status = -1;
    if (intervention_init(&iv, &options->intervention, cfg, L)) return -1;
    const UpdateHook *measure = intervention_measure_hook(&iv);
    if (target_set_hook(target, measure)) goto done;
    if (options->intervention.kind == INTERVENE_PATCH) {
        if (!options->source_path) {
            spiral_error("--patch needs --source FILE (the sequence whose updates are patched in)");
            goto done;
        }
        if (read_sequence(options, options->source_path, &source, &count)) goto done;
        if (count != (size_t)L + 1) {
            spiral_error("%s: %zu tokens; the patch source must have the sequence's length, %d",
                         options->source_path, count, L + 1);
            goto done;
        }
        if (tokens_check_vocab(source, count, cfg->vocab_size, options->source_path) ||
            target_forward(target, source, L))
            goto done;
    } else if (measure && target_forward(target, tokens, L)) {
        goto done;
    }
    if (target_set_hook(target, intervention_apply_hook(&iv)) ||
        target_forward(target, tokens, L))
        goto done;
    status = 0;
done:
    target_set_hook(target, NULL);
    free(source);
    intervention_free(&iv);
    return status;
}

/* Writes the (L, V) logits as float32 .npy. */
static int write_logits(const char *path, const Model *model, int L, int V) {
    size_t n = (size_t)L * V;
    float *logits32 = malloc(n * sizeof(float));   /* (L, V) */
    if (!logits32) return spiral_error("out of memory converting the logits");
    for (size_t i = 0; i < n; i++) logits32[i] = (float)model->logits[i];
    int64_t shape[2] = {L, V};
    int status = npy_write_f32(path, logits32, 2, shape);
    free(logits32);
    return status;
}

/* The forward pass (and, with options->grads_path, the gradient) of the
 * model's weights on `device`'s engine: *loss, the logits to
 * options->logits_path, the gradient to options->grads_path; with an
 * intervention, *clean_loss the loss without it and the rest with it. */
static int eval_on_engine(const EvalOptions *options, Model *model, const int *tokens, int L,
                          double *loss, double *clean_loss) {
    const SpiralConfig *cfg = &model->cfg;
    size_t n = model->layout.n_params, n_logits = (size_t)L * cfg->vocab_size;
    Engine *engine = NULL;
    float *buffer = malloc((n > n_logits ? n : n_logits) * sizeof(float));
    real *grads = options->grads_path ? malloc(n * sizeof(real)) : NULL;
    int status = -1;
    if (!buffer || (options->grads_path && !grads)) {
        spiral_error("out of memory evaluating on %s", options->device);
        goto done;
    }
    const char *precision = options->precision ? options->precision : "fp32";
    if (engine_open_with_weights(&engine, options->device, precision, model) ||
        engine->ops->observe(engine, tokens, tokens + 1, 1, L, NULL, 0, loss))
        goto done;
    if (options->intervention.kind != INTERVENE_NONE) {
        EvalTarget target = {model, engine, NAN};
        *clean_loss = *loss;
        if (run_intervention(&target, options, tokens, L)) goto done;
        *loss = target.loss;
    }
    if (options->logits_path) {
        int64_t shape[2] = {L, cfg->vocab_size};
        if (engine->ops->get_logits(engine, buffer) ||
            npy_write_f32(options->logits_path, buffer, 2, shape))
            goto done;
    }
    if (grads) {
        if (engine->ops->zero_grad(engine) || engine->ops->backward(engine) ||
            engine->ops->get_grads(engine, buffer))
            goto done;
        for (size_t i = 0; i < n; i++) grads[i] = buffer[i];
        if (weights_save(options->grads_path, cfg, &model->layout, grads)) goto done;
    }
    status = 0;
done:
    engine_free(engine);
    free(buffer);
    free(grads);
    return status;
}

int eval_sequence(const EvalOptions *options, EvalResult *result) {
    int status = -1;
    int *tokens = NULL;
    size_t count = 0;
    Model model = {0};
    const char *text_path = options->text_path, *tokens_path = options->tokens_path;
    const char *source = text_path ? text_path : tokens_path;
    memset(result, 0, sizeof *result);

    if (eval_load_model(options, &model, &result->step)) goto done;
    const SpiralConfig cfg = model.cfg;
    if (text_path ? tokens_read_text(text_path, &tokens, &count)
                  : tokens_read_u16(tokens_path, &tokens, &count))
        goto done;
    if (count < 2) {
        spiral_error("%s: %zu tokens; at least 2 are needed (inputs and a next token)", source,
                     count);
        goto done;
    }
    if (tokens_check_vocab(tokens, count, cfg.vocab_size, source)) goto done;
    int L = (int)(count - 1);
    if (count - 1 > (size_t)1 << 20) {
        spiral_error("%s: %zu tokens; eval takes at most 2^20 + 1", source, count);
        goto done;
    }
    double need = (double)model_activation_bytes(&model, 1, L);
    if (need > EVAL_MAX_ACTIVATION_BYTES) {
        spiral_error("%s: %d positions need %.1f GB of activations (limit %.0f GB); "
                     "use a shorter sequence", source, L, need / 1e9,
                     EVAL_MAX_ACTIVATION_BYTES / 1e9);
        goto done;
    }
    if (options->intervention.kind != INTERVENE_NONE && options->grads_path) {
        spiral_error("--grads: no gradient with an intervention");
        goto done;
    }
    if (options->device && strcmp(options->device, "cpu")) {
        /* another engine: the whole evaluation there */
        double loss = NAN;
        if (eval_on_engine(options, &model, tokens, L, &loss, &result->clean_loss)) goto done;
        if (!isfinite(loss)) {
            spiral_error("the loss is %f: the weights produce non-finite logits", loss);
            goto done;
        }
        result->loss = loss;
        result->n_predictions = L;
        result->vocab_size = cfg.vocab_size;
        result->n_tensors = model.layout.n_tensors;
        result->n_iters = cfg.n_iters;
        status = 0;
        goto done;
    }
    if (model_forward(&model, tokens, tokens + 1, 1, L, NULL)) goto done;
    if (options->intervention.kind != INTERVENE_NONE) {
        EvalTarget target = {&model, NULL, NAN};
        result->clean_loss = model.loss;
        if (run_intervention(&target, options, tokens, L)) goto done;
    }
    if (!isfinite(model.loss)) {
        spiral_error("the loss is %f: the weights produce non-finite logits", model.loss);
        goto done;
    }
    result->loss = model.loss;
    result->n_predictions = L;
    result->vocab_size = cfg.vocab_size;
    result->n_tensors = model.layout.n_tensors;
    result->n_iters = cfg.n_iters;
    if (options->logits_path && write_logits(options->logits_path, &model, L, cfg.vocab_size))
        goto done;
    if (options->grads_path) {
        model_zero_grad(&model);
        if (model_backward(&model)) goto done;
        if (weights_save(options->grads_path, &cfg, &model.layout, model.grads)) goto done;
    }
    status = 0;
done:
    free(tokens);
    model_free(&model);
    return status;
}
