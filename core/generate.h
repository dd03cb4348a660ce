/*
 * generate.h: text generation with the incremental decoder: the prompt is
 * prefilled with one forward pass, then each new token is chosen from the
 * last logits (sample.h) and fed back with one decoder step.
 */
#ifndef SPIRAL_GENERATE_H
#define SPIRAL_GENERATE_H

#include "decode.h"
#include "engine.h"
#include "sample.h"
#include "store.h"

typedef struct {
    SampleSettings sample;
    uint64_t seed;            /* the generator's seed */
    int max_tokens;           /* tokens to generate, >= 1 */
    /* called with each new token, its position and its log-probability
     * under the model (temperature 1); may be NULL */
    void (*on_token)(void *user, int token, int position, double logprob);
    void *user;
} GenerateOptions;

typedef struct {
    int n_prompt, n_generated;
    double prefill_seconds;   /* the prompt's forward pass */
    double step_seconds;      /* every decoder step and draw after it */
} GenerateResult;

/* The context of run `name` of the store, its train.seq_len, into
 * *seq_len. Returns 0 or -1 (no such run, a run file that does not parse). */
int generate_run_context(Store *store, const char *name, int *seq_len);

/* Positions a generation of max_tokens after a prompt of n_prompt tokens
 * feeds through the decoder: n_prompt + max_tokens - 1 (the last token is
 * drawn, never fed). */
int generate_positions(int n_prompt, int max_tokens);

/* Generates o->max_tokens tokens after prompt (n_prompt >= 1 tokens) into
 * tokens_out (max_tokens) and logprobs_out (max_tokens, may be NULL), with
 * dec empty and its capacity >= generate_positions(n_prompt, max_tokens).
 * Returns 0 or -1 (spiral_error: empty prompt, tokens outside the
 * vocabulary, prompt or generation longer than the decoder's context). */
int generate_tokens(Decoder *dec, const int *prompt, int n_prompt, const GenerateOptions *o,
                    int *tokens_out, double *logprobs_out, GenerateResult *result);

/* The same generation on an engine without an incremental decoder (the
 * CUDA engine): every new token runs the whole forward pass over the
 * prompt and the tokens so far and reads the last row's logits, so it
 * draws from the same distributions as generate_tokens (up to the engine's
 * rounding). V: the vocabulary; capacity: the longest sequence allowed.
 * prefill_seconds is the first pass (after one pass that sizes the engine's
 * buffers), step_seconds the rest. */
int generate_tokens_engine(Engine *engine, int V, int capacity, const int *prompt, int n_prompt,
                           const GenerateOptions *o, int *tokens_out, double *logprobs_out,
                           GenerateResult *result);

#endif
