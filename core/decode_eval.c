/*
 * decode_eval.c: one sequence scored through the incremental decoder (see
 * decode_eval.h).
 */
#include "decode_eval.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "clock.h"
#include "decode.h"
#include "error.h"
#include "npy.h"
#include "tokens.h"

/* -log softmax(logits)[target], in double. */
static double cross_entropy(const real *logits, int V, int target) {
    double max = -INFINITY, sum = 0;
    for (int v = 0; v < V; v++)
        if (logits[v] > max) max = logits[v];
    for (int v = 0; v < V; v++) sum += exp((double)logits[v] - max);
    return max + log(sum) - logits[target];
}

/* Reports i of L tokens scored, every 256 tokens and at the end. */
static void report_progress(const Progress *progress, int i, int L, double start) {
    if (i % 256 && i != L) return;
    ProgressReport report = {"eval", "tokens", i, L, seconds_now() - start, 0, NULL, i == L};
    progress_report(progress, &report);
}

int eval_sequence_incremental(const EvalOptions *options, const Progress *progress,
                              EvalResult *result) {
    int status = -1;
    int *tokens = NULL;
    float *logits32 = NULL;
    size_t count = 0;
    Model model = {0};
    Decoder dec = {0};
    const char *source = options->text_path ? options->text_path : options->tokens_path;
    memset(result, 0, sizeof *result);
    if (options->grads_path || options->intervention.kind != INTERVENE_NONE)
        return spiral_error("--grads and interventions need the full forward pass; leave out "
                            "--incremental");
    if (eval_load_model(options, &model, &result->step)) goto done;
    const SpiralConfig cfg = model.cfg;
    if (options->text_path ? tokens_read_text(options->text_path, &tokens, &count)
                           : tokens_read_u16(options->tokens_path, &tokens, &count))
        goto done;
    if (count < 2) {
        spiral_error("%s: %zu tokens; at least 2 are needed (inputs and a next token)", source,
                     count);
        goto done;
    }
    if (tokens_check_vocab(tokens, count, cfg.vocab_size, source)) goto done;
    if (count - 1 > (size_t)1 << 20) {
        spiral_error("%s: %zu tokens; eval takes at most 2^20 + 1", source, count);
        goto done;
    }
    int L = (int)(count - 1), V = cfg.vocab_size;
    double need = (double)decoder_bytes(&model, L);
    if (need > EVAL_MAX_ACTIVATION_BYTES) {
        spiral_error("%s: %d positions need %.1f GB of caches (limit %.0f GB); use a shorter "
                     "sequence", source, L, need / 1e9, EVAL_MAX_ACTIVATION_BYTES / 1e9);
        goto done;
    }
    if (decoder_build(&dec, &model, L)) goto done;
    if (options->logits_path && !(logits32 = malloc((size_t)L * V * sizeof(float)))) {
        spiral_error("out of memory for the logits of %d positions", L);
        goto done;
    }
    double total = 0, start = seconds_now();
    for (int i = 0; i < L; i++) {
        report_progress(progress, i, L, start);
        if (decoder_step(&dec, tokens[i])) goto done;
        total += cross_entropy(dec.logits, V, tokens[i + 1]);
        if (logits32)
            for (int v = 0; v < V; v++) logits32[(size_t)i * V + v] = (float)dec.logits[v];
    }
    report_progress(progress, L, L, start);
    result->loss = total / L;
    if (!isfinite(result->loss)) {
        spiral_error("the loss is %f: the weights produce non-finite logits", result->loss);
        goto done;
    }
    result->n_predictions = L;
    result->vocab_size = V;
    result->n_tensors = model.layout.n_tensors;
    result->n_iters = cfg.n_iters;
    if (logits32) {
        int64_t shape[2] = {L, V};
        if (npy_write_f32(options->logits_path, logits32, 2, shape)) goto done;
    }
    status = 0;
done:
    free(logits32);
    free(tokens);
    decoder_free(&dec);
    model_free(&model);
    return status;
}
