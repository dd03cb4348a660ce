/*
 * eval.c: one sequence through a loaded model (eval.h).
 */
#include "eval.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "error.h"
#include "model.h"
#include "npy.h"
#include "tokens.h"

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

int eval_sequence(const EvalOptions *options, EvalResult *result) {
    int status = -1;
    SpiralConfig cfg;
    ParamLayout file_layout = {0};
    real *values = NULL;
    int *tokens = NULL;
    size_t count = 0;
    Model model = {0};
    const char *text_path = options->text_path, *tokens_path = options->tokens_path;
    const char *source = text_path ? text_path : tokens_path;
    memset(result, 0, sizeof *result);

    if (weights_load(options->weights_path, &cfg, &file_layout, &values)) goto done;
    if (model_build(&model, &cfg)) goto done;
    memcpy(model.params, values, model.layout.n_params * sizeof(real));
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
    if (model_forward(&model, tokens, tokens + 1, 1, L, NULL)) goto done;
    if (!isfinite(model.loss)) {
        spiral_error("the loss is %f: the weights produce non-finite logits", model.loss);
        goto done;
    }
    result->loss = model.loss;
    result->n_predictions = L;
    result->vocab_size = cfg.vocab_size;
    result->n_tensors = model.layout.n_tensors;
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
    free(values);
    param_layout_free(&file_layout);
    model_free(&model);
    return status;
}
