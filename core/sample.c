/*
 * sample.c: the next token from logits (see sample.h).
 */
#include "sample.h"

#include <math.h>
#include <stdlib.h>

#include "error.h"

void sample_rng_seed(SampleRng *rng, uint64_t seed) {
    /* splitmix64 of the seed: any seed, 0 included, gives a non-zero state */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    rng->state = z ? z : 1;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(SampleRng *rng) {
    rng->state ^= rng->state >> 12;
    rng->state ^= rng->state << 25;
    rng->state ^= rng->state >> 27;
    uint64_t x = rng->state * 0x2545F4914F6CDD1Dull;
    return (double)(x >> 11) / 9007199254740992.0;
}

int sample_settings_check(const SampleSettings *s) {
    if (!(s->temperature >= 0) || !isfinite(s->temperature))
        return spiral_error("--temperature: expected a number >= 0, got %g", s->temperature);
    if (s->top_k < 0) return spiral_error("--top-k: expected an integer >= 0, got %d", s->top_k);
    if (!(s->top_p > 0 && s->top_p <= 1))
        return spiral_error("--top-p: expected a number in (0, 1], got %g", s->top_p);
    return 0;
}

/* Most likely first; equal probabilities by token id. */
static int by_probability(const void *a, const void *b) {
    const SampleCandidate *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->token - y->token;
}

/* log sum_v exp(scale * logits_v), computed stably. */
static double log_partition(const real *logits, int V, double scale) {
    double max = -INFINITY, sum = 0;
    for (int v = 0; v < V; v++)
        if (scale * logits[v] > max) max = scale * logits[v];
    for (int v = 0; v < V; v++) sum += exp(scale * logits[v] - max);
    return max + log(sum);
}

int sample_token(const real *logits, int V, const SampleSettings *s, SampleRng *rng,
                 SampleCandidate *scratch, double *logprob) {
    int chosen = 0;
    if (s->temperature == 0) {
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[chosen]) chosen = v;
    } else {
        /* p_v = softmax(logits / T), then the top-k and top-p cuts */
        double scale = 1.0 / s->temperature, log_z = log_partition(logits, V, scale);
        for (int v = 0; v < V; v++) scratch[v] = (SampleCandidate){exp(scale * logits[v] - log_z), v};
        qsort(scratch, (size_t)V, sizeof *scratch, by_probability);
        int kept = s->top_k > 0 && s->top_k < V ? s->top_k : V;
        double mass = 0;
        for (int r = 0; r < kept; r++) {
            mass += scratch[r].p;
            if (mass >= s->top_p) {
                kept = r + 1;
                break;
            }
        }
        double total = 0;
        for (int r = 0; r < kept; r++) total += scratch[r].p;
        double u = rng_uniform(rng) * total, cumulative = 0;
        chosen = scratch[kept - 1].token;
        for (int r = 0; r < kept; r++) {
            cumulative += scratch[r].p;
            if (u < cumulative) {
                chosen = scratch[r].token;
                break;
            }
        }
    }
    *logprob = (double)logits[chosen] - log_partition(logits, V, 1.0);
    return chosen;
}
