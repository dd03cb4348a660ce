/*
 * cmd_eval.c: `spiral eval`: loads weights (from spiral or any program that
 * writes the documented safetensors layout), scores one token sequence, and
 * optionally writes the logits (.npy) and the gradient of the mean loss
 * (safetensors, same tensor names).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"
#include "error.h"
#include "model.h"
#include "npy.h"
#include "tokens.h"

static const char *help =
    "usage: spiral eval --weights W.safetensors (--text FILE | --tokens FILE)\n"
    "                   [--logits OUT.npy] [--grads OUT.safetensors]\n"
    "\n"
    "Reads one sequence of N tokens (the bytes of a text file, or a\n"
    "little-endian uint16 file with --tokens), runs the model on the first\n"
    "N-1, scores each next token and prints the mean cross-entropy in nats.\n"
    "  --logits  writes the (N-1, V) float32 logits as a NumPy .npy file\n"
    "  --grads   writes the gradient of the mean loss for every parameter,\n"
    "            under the parameter's own tensor name\n"
    "Any safetensors file with the documented tensor names and the config in\n"
    "__metadata__[\"config\"] is accepted, e.g. one written by PyTorch.\n";

/* Refuse sequences whose activations would not fit: a clear error beats the
 * kernel's out-of-memory killer. */
static const double MAX_ACTIVATION_BYTES = 16e9;

int cmd_eval(int argc, char **argv) {
    const char *weights_path = NULL, *text_path = NULL, *tokens_path = NULL;
    const char *logits_path = NULL, *grads_path = NULL;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--weights", &weights_path, NULL},
        {"--text", &text_path, NULL},
        {"--tokens", &tokens_path, NULL},
        {"--logits", &logits_path, NULL},
        {"--grads", &grads_path, NULL},
    };
    if (cli_parse_options("eval", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!weights_path) return cli_usage_error("eval", "--weights is required");
    if (!text_path == !tokens_path)
        return cli_usage_error("eval", "give exactly one of --text and --tokens");

    int status = 1;
    SpiralConfig cfg;
    ParamLayout file_layout = {0};
    real *values = NULL;
    int *tokens = NULL;
    size_t count = 0;
    Model model = {0};
    float *logits32 = NULL;
    const char *source = text_path ? text_path : tokens_path;

    if (weights_load(weights_path, &cfg, &file_layout, &values)) goto done;
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
    if (need > MAX_ACTIVATION_BYTES) {
        spiral_error("%s: %d positions need %.1f GB of activations (limit %.0f GB); "
                     "use a shorter sequence", source, L, need / 1e9, MAX_ACTIVATION_BYTES / 1e9);
        goto done;
    }
    if (model_forward(&model, tokens, tokens + 1, 1, L, NULL)) goto done;
    if (!isfinite(model.loss)) {
        spiral_error("the loss is %f: the weights produce non-finite logits", model.loss);
        goto done;
    }
    printf("loss %.6f nats over %d predictions (perplexity %.4f, %.4f bits/token)\n", model.loss,
           L, exp(model.loss), model.loss / log(2.0));
    if (logits_path) {
        size_t n = (size_t)L * cfg.vocab_size;
        logits32 = malloc(n * sizeof(float));
        if (!logits32) {
            spiral_error("out of memory converting the logits");
            goto done;
        }
        for (size_t i = 0; i < n; i++) logits32[i] = (float)model.logits[i];
        int64_t shape[2] = {L, cfg.vocab_size};
        if (npy_write_f32(logits_path, logits32, 2, shape)) goto done;
        printf("wrote %s: logits (%d, %d) float32\n", logits_path, L, cfg.vocab_size);
    }
    if (grads_path) {
        model_zero_grad(&model);
        if (model_backward(&model)) goto done;
        if (weights_save(grads_path, &cfg, &model.layout, model.grads)) goto done;
        printf("wrote %s: gradient of the mean loss, %d tensors\n", grads_path,
               model.layout.n_tensors);
    }
    status = 0;
done:
    if (status) cli_fail("eval");
    free(logits32);
    free(tokens);
    free(values);
    param_layout_free(&file_layout);
    model_free(&model);
    return status;
}
