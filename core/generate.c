/*
 * generate.c: prefill, then draw and step (see generate.h).
 */
#include "generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "tokens.h"
#include "train_config.h"

int generate_run_context(Store *store, const char *name, int *seq_len) {
    RunRow run = {0};
    TrainConfig tcfg;
    char source[1400];
    if (store_run_find(store, name, &run)) return -1;
    snprintf(source, sizeof source, "%s: run %s", store->path, name);
    int status = train_config_parse(&tcfg, run.config, source);
    if (status == 0) *seq_len = tcfg.seq_len;
    store_run_free(&run);
    return status;
}

int generate_positions(int n_prompt, int max_tokens) { return n_prompt + max_tokens - 1; }

/* The checks every generation makes: a prompt of 1..capacity tokens of the
 * vocabulary V, max_tokens >= 1, sampling settings, and room for them all. */
static int check_generation(int V, int capacity, const int *prompt, int n_prompt,
                            const GenerateOptions *o) {
    if (n_prompt < 1) return spiral_error("the prompt is empty: give at least one token");
    if (o->max_tokens < 1)
        return spiral_error("--max-tokens: expected at least 1, got %d", o->max_tokens);
    if (sample_settings_check(&o->sample)) return -1;
    if (tokens_check_vocab(prompt, (size_t)n_prompt, V, "the prompt")) return -1;
    if (n_prompt > capacity)
        return spiral_error("the prompt has %d tokens, more than the context of %d tokens",
                            n_prompt, capacity);
    if (generate_positions(n_prompt, o->max_tokens) > capacity)
        return spiral_error("a prompt of %d tokens and --max-tokens %d need %d positions, more "
                            "than the context of %d tokens; lower --max-tokens to %d",
                            n_prompt, o->max_tokens, generate_positions(n_prompt, o->max_tokens),
                            capacity, capacity - n_prompt + 1);
    return 0;
}

int generate_tokens(Decoder *dec, const int *prompt, int n_prompt, const GenerateOptions *o,
                    int *tokens_out, double *logprobs_out, GenerateResult *result) {
    int V = dec->model->cfg.vocab_size;
    memset(result, 0, sizeof *result);
    if (check_generation(V, dec->capacity, prompt, n_prompt, o)) return -1;
    SampleCandidate *scratch = malloc((size_t)V * sizeof *scratch);
    if (!scratch) return spiral_error("out of memory preparing the sampler");
    SampleRng rng;
    sample_rng_seed(&rng, o->seed);
    result->n_prompt = n_prompt;
    double start = seconds_now();
    int status = decoder_prefill(dec, prompt, n_prompt);
    result->prefill_seconds = seconds_now() - start;
    start = seconds_now();
    for (int k = 0; status == 0 && k < o->max_tokens; k++) {
        double logprob;
        int token = sample_token(dec->logits, V, &o->sample, &rng, scratch, &logprob);
        tokens_out[k] = token;
        if (logprobs_out) logprobs_out[k] = logprob;
        result->n_generated = k + 1;
        if (o->on_token) o->on_token(o->user, token, n_prompt + k, logprob);
        if (k + 1 < o->max_tokens) status = decoder_step(dec, token);
    }
    result->step_seconds = seconds_now() - start;
    free(scratch);
    return status;
}

int generate_tokens_engine(Engine *engine, int V, int capacity, const int *prompt, int n_prompt,
                           const GenerateOptions *o, int *tokens_out, double *logprobs_out,
                           GenerateResult *result) {
    memset(result, 0, sizeof *result);
    if (check_generation(V, capacity, prompt, n_prompt, o)) return -1;
    int positions = generate_positions(n_prompt, o->max_tokens);
    int *sequence = calloc((size_t)positions, sizeof *sequence);
    float *logits_f = malloc((size_t)V * sizeof *logits_f);
    real *logits = malloc((size_t)V * sizeof *logits);
    SampleCandidate *scratch = malloc((size_t)V * sizeof *scratch);
    if (!sequence || !logits_f || !logits || !scratch) {
        free(sequence);
        free(logits_f);
        free(logits);
        free(scratch);
        return spiral_error("out of memory preparing the generation");
    }
    SampleRng rng;
    sample_rng_seed(&rng, o->seed);
    result->n_prompt = n_prompt;
    double start = seconds_now();
    /* one pass at the longest length first (tokens 0): the engine sizes its
     * buffers once, not at every new length */
    int status = engine->ops->observe(engine, sequence, NULL, 1, positions, NULL, 0, NULL);
    memcpy(sequence, prompt, (size_t)n_prompt * sizeof *sequence);
    int length = n_prompt;
    for (int k = 0; status == 0 && k < o->max_tokens; k++) {
        /* the whole pass over the tokens so far; the last row's logits */
        status = engine->ops->observe(engine, sequence, NULL, 1, length, NULL, 0, NULL) ||
                 engine->ops->get_logits_rows(engine, (size_t)length - 1, 1, logits_f);
        if (status) break;
        if (k == 0) {
            result->prefill_seconds = seconds_now() - start;
            start = seconds_now();
        }
        for (int v = 0; v < V; v++) logits[v] = logits_f[v];
        double logprob;
        int token = sample_token(logits, V, &o->sample, &rng, scratch, &logprob);
        tokens_out[k] = token;
        if (logprobs_out) logprobs_out[k] = logprob;
        result->n_generated = k + 1;
        if (o->on_token) o->on_token(o->user, token, n_prompt + k, logprob);
        if (k + 1 < o->max_tokens) sequence[length++] = token;
    }
    result->step_seconds = seconds_now() - start;
    free(sequence);
    free(logits_f);
    free(logits);
    free(scratch);
    return status;
}
