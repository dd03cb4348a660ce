/*
 * cpu_f32_ref.c: the CPU engine in float (the build spiral trains with),
 * run on the case test_cuda_engine hands it, so that the proof can report
 * how far the CPU's own fp32 results are from the double reference: the
 * yardstick for what an fp32 engine can reach on that model.
 *
 * Usage: cpu_f32_ref IN OUT. IN holds the config JSON, B, L, the fp32
 * parameters, tokens and targets; OUT gets the loss (double), the logits
 * (B L V floats) and the gradients (n_params floats). Exit 0 or 1.
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "error.h"
#include "model.h"

/* Reads count items of size bytes or fails. */
static int read_items(void *dst, size_t size, size_t count, FILE *f) {
    return fread(dst, size, count, f) == count ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: cpu_f32_ref IN OUT\n");
        return 1;
    }
    FILE *in = fopen(argv[1], "rb");
    if (!in) {
        fprintf(stderr, "cpu_f32_ref: cannot open %s\n", argv[1]);
        return 1;
    }
    int json_len = 0, B = 0, L = 0;
    size_t n_params = 0;
    if (read_items(&json_len, sizeof json_len, 1, in) || json_len <= 0) return 1;
    char *json = calloc((size_t)json_len + 1, 1);
    SpiralConfig cfg;
    Model model;
    if (!json || read_items(json, 1, (size_t)json_len, in) ||
        read_items(&B, sizeof B, 1, in) || read_items(&L, sizeof L, 1, in) ||
        read_items(&n_params, sizeof n_params, 1, in) || config_parse(&cfg, json, "case") ||
        model_build(&model, &cfg) || model.layout.n_params != n_params) {
        fprintf(stderr, "cpu_f32_ref: bad input: %s\n", spiral_last_error());
        return 1;
    }
    size_t M = (size_t)B * L;
    int *tokens = malloc(M * sizeof(int)), *targets = malloc(M * sizeof(int));
    if (!tokens || !targets || read_items(model.params, sizeof(float), n_params, in) ||
        read_items(tokens, sizeof(int), M, in) || read_items(targets, sizeof(int), M, in)) {
        fprintf(stderr, "cpu_f32_ref: short input\n");
        return 1;
    }
    fclose(in);
    if (model_forward(&model, tokens, targets, B, L, NULL) || model_backward(&model)) {
        fprintf(stderr, "cpu_f32_ref: %s\n", spiral_last_error());
        return 1;
    }
    FILE *out = fopen(argv[2], "wb");
    int ok = out && fwrite(&model.loss, sizeof(double), 1, out) == 1 &&
             fwrite(model.logits, sizeof(float), M * cfg.vocab_size, out) == M * cfg.vocab_size &&
             fwrite(model.grads, sizeof(float), n_params, out) == n_params;
    if (out && fclose(out)) ok = 0;
    model_free(&model);
    free(json);
    free(tokens);
    free(targets);
    return ok ? 0 : 1;
}
