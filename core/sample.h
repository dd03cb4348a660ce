/*
 * sample.h: choosing the next token from a row of logits (spiral generate).
 *
 * Greedy when the temperature is 0: the most likely token (the lowest id
 * among equals). Otherwise the logits are divided by the temperature, the
 * softmax is restricted to the top_k most likely tokens (0: all) and then to
 * the smallest set of most likely tokens whose probability reaches top_p
 * (1: all), renormalized, and one token is drawn with a seeded generator,
 * so that a seed reproduces a generation exactly.
 */
#ifndef SPIRAL_SAMPLE_H
#define SPIRAL_SAMPLE_H

#include <stdint.h>

#include "real.h"

typedef struct {
    double temperature;   /* >= 0; 0 = greedy */
    int top_k;            /* >= 0; 0 = no limit */
    double top_p;         /* in (0, 1]; 1 = no limit */
} SampleSettings;

/* One candidate token of a draw (scratch of sample_token). */
typedef struct {
    double p;
    int token;
} SampleCandidate;

/* The generator: xorshift64* (deterministic, not for cryptography). */
typedef struct {
    uint64_t state;
} SampleRng;

void sample_rng_seed(SampleRng *rng, uint64_t seed);

/* Returns 0 if the settings are in range, else -1 (spiral_error naming the
 * flag: --temperature, --top-k, --top-p). */
int sample_settings_check(const SampleSettings *settings);

/* Picks the next token from logits (V) as described above. *logprob gets
 * the token's log-probability under the model itself, log softmax(logits)
 * at temperature 1, whatever the settings. scratch holds V candidates. */
int sample_token(const real *logits, int V, const SampleSettings *settings, SampleRng *rng,
                 SampleCandidate *scratch, double *logprob);

#endif
