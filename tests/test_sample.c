/*
 * test_sample.c: the next-token sampler of spiral generate (core/sample.h).
 *
 *  - temperature 0 is the argmax, the lowest id among equal logits;
 *  - top-k 1, and a top-p below the largest probability, are the argmax
 *    whatever the seed;
 *  - the frequencies of 200,000 draws match softmax(logits / T) within 5
 *    standard errors per token, and the top-k / top-p cuts draw only the
 *    kept tokens, in the renormalized proportions;
 *  - the log-probability returned is log softmax(logits) at temperature 1;
 *  - a seed reproduces its draws, another seed gives others;
 *  - settings out of range are refused naming the flag.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "harness.h"
#include "sample.h"

enum { V = 6, DRAWS = 200000 };
static const real logits[V] = {1.0f, 2.5f, 0.2f, 2.5f, -1.0f, 1.7f};

/* softmax(logits / T) into p. */
static void softmax(double *p, double T) {
    double sum = 0;
    for (int v = 0; v < V; v++) sum += p[v] = exp(logits[v] / T);
    for (int v = 0; v < V; v++) p[v] /= sum;
}

/* Draws DRAWS tokens and checks their frequencies against expected (V)
 * within 5 standard errors; tokens with expected 0 must never come. */
static void check_frequencies(const SampleSettings *s, const double *expected, const char *what) {
    SampleRng rng;
    SampleCandidate scratch[V];
    int count[V] = {0};
    double logprob;
    sample_rng_seed(&rng, 42);
    for (int i = 0; i < DRAWS; i++) count[sample_token(logits, V, s, &rng, scratch, &logprob)]++;
    for (int v = 0; v < V; v++) {
        double f = (double)count[v] / DRAWS, p = expected[v];
        double se = sqrt(p * (1 - p) / DRAWS);
        if (p == 0)
            CHECK(count[v] == 0, "%s: token %d drawn %d times, expected never", what, v, count[v]);
        else
            CHECK(fabs(f - p) <= 5 * se, "%s: token %d frequency %.5f, expected %.5f (se %.5f)",
                  what, v, f, p, se);
    }
}

int main(int argc, char **argv) {
    SampleRng rng;
    SampleCandidate scratch[V];
    double logprob, p[V];
    sample_rng_seed(&rng, 1);

    /* greedy: tokens 1 and 3 tie at 2.5; the lower id wins */
    SampleSettings greedy = {0, 0, 1};
    CHECK(sample_token(logits, V, &greedy, &rng, scratch, &logprob) == 1, "greedy is not token 1");
    softmax(p, 1);
    CHECK(fabs(logprob - log(p[1])) < 1e-6, "logprob %.8f, expected %.8f", logprob, log(p[1]));
    for (int seed = 0; seed < 20; seed++) {
        sample_rng_seed(&rng, (uint64_t)seed);
        SampleSettings top1 = {1.5, 1, 1}, tiny_p = {1.5, 0, 0.1};
        CHECK(sample_token(logits, V, &top1, &rng, scratch, &logprob) == 1, "top-k 1, seed %d", seed);
        CHECK(sample_token(logits, V, &tiny_p, &rng, scratch, &logprob) == 1, "top-p 0.1, seed %d",
              seed);
    }

    /* frequencies: plain, tempered, top-k 3, top-p */
    SampleSettings plain = {1, 0, 1}, hot = {2.5, 0, 1}, top3 = {1, 3, 1};
    softmax(p, 1);
    check_frequencies(&plain, p, "T = 1");
    softmax(p, 2.5);
    check_frequencies(&hot, p, "T = 2.5");
    /* top-3 keeps tokens 1, 3, 5 (logits 2.5, 2.5, 1.7) */
    softmax(p, 1);
    double kept[V] = {0}, mass = p[1] + p[3] + p[5];
    kept[1] = p[1] / mass, kept[3] = p[3] / mass, kept[5] = p[5] / mass;
    check_frequencies(&top3, kept, "top-k 3");
    /* top-p just above p1 + p3 keeps exactly tokens 1, 3 and 5 (the third is
     * needed to reach it); just below p1 + p3 keeps 1 and 3 */
    SampleSettings nucleus = {1, 0, p[1] + p[3] + 1e-3};
    check_frequencies(&nucleus, kept, "top-p above two");
    double two[V] = {0};
    two[1] = two[3] = 0.5;
    SampleSettings nucleus2 = {1, 0, p[1] + p[3] - 1e-3};
    check_frequencies(&nucleus2, two, "top-p below two");

    /* seeds */
    int a[50], b[50], c[50];
    SampleSettings s = {1.3, 0, 1};
    sample_rng_seed(&rng, 9);
    for (int i = 0; i < 50; i++) a[i] = sample_token(logits, V, &s, &rng, scratch, &logprob);
    sample_rng_seed(&rng, 9);
    for (int i = 0; i < 50; i++) b[i] = sample_token(logits, V, &s, &rng, scratch, &logprob);
    sample_rng_seed(&rng, 10);
    for (int i = 0; i < 50; i++) c[i] = sample_token(logits, V, &s, &rng, scratch, &logprob);
    CHECK(memcmp(a, b, sizeof a) == 0, "seed 9 twice gave different draws");
    CHECK(memcmp(a, c, sizeof a) != 0, "seeds 9 and 10 gave the same 50 draws");

    /* settings out of range */
    SampleSettings bad_t = {-1, 0, 1}, bad_k = {1, -2, 1}, bad_p = {1, 0, 0}, bad_p2 = {1, 0, 1.5};
    CHECK(sample_settings_check(&bad_t) == -1 && strstr(spiral_last_error(), "--temperature"),
          "temperature -1: %s", spiral_last_error());
    CHECK(sample_settings_check(&bad_k) == -1 && strstr(spiral_last_error(), "--top-k"),
          "top-k -2: %s", spiral_last_error());
    CHECK(sample_settings_check(&bad_p) == -1 && strstr(spiral_last_error(), "--top-p"),
          "top-p 0: %s", spiral_last_error());
    CHECK(sample_settings_check(&bad_p2) == -1 && strstr(spiral_last_error(), "--top-p"),
          "top-p 1.5: %s", spiral_last_error());
    CHECK(sample_settings_check(&plain) == 0, "plain settings refused");
    return test_summary(argv[0]);
}
