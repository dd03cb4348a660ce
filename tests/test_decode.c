/*
 * test_decode.c: incremental decoding (core/decode.h) against the full
 * forward pass, for every kind and option of tests/fixtures.h, topology
 * mesh included (random
 * weights, so selfagg scores and alloc weights are non-zero and every path
 * matters):
 *
 *  - stepping token by token gives the full pass's logits at every
 *    position, for sequences of random length (many ending inside a chunk
 *    of some level), with a decoder larger than the sequence too;
 *  - a prefill of every prompt length followed by steps gives the logits
 *    of stepping from the start;
 *  - the test can fail: a decoder whose stored update is tampered with
 *    differs from the full pass;
 *  - the step FLOP count sums to the full pass's analytic count when every
 *    level's last chunk closes at the last token;
 *  - bad input (token outside the vocabulary, full context, prompt too
 *    long, prefill into a used decoder): errors that say so.
 *
 * Tolerance on the relative error max_v |a - b| / max_v |b| per position:
 * 1e-5 in float, 1e-10 in the double build (test_decode_f64).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost.h"
#include "decode.h"
#include "error.h"
#include "fixtures.h"
#include "harness.h"

#ifdef SPIRAL_DOUBLE
#define TOLERANCE 1e-10
#else
#define TOLERANCE 1e-5
#endif

enum { MAX_LENGTH = 41, LENGTHS_PER_FIXTURE = 4 };

/* max_v |a_v - b_v| / max_v |b_v| of one position's logits. */
static double relative_error(const real *a, const real *b, int V) {
    double diff = 0, scale = 1e-30;
    for (int v = 0; v < V; v++) {
        double e = fabs((double)a[v] - b[v]);
        if (e > diff) diff = e;
        if (fabs((double)b[v]) > scale) scale = fabs((double)b[v]);
    }
    return diff / scale;
}

/* Steps tokens 0 .. L-1 into dec (reset first); logits (L, V) get each
 * step's logits. Returns 0 or -1. */
static int step_all(Decoder *dec, real *logits, const int *tokens, int L) {
    int V = dec->model->cfg.vocab_size;
    decoder_reset(dec);
    for (int i = 0; i < L; i++) {
        if (decoder_step(dec, tokens[i])) return -1;
        memcpy(logits + (size_t)i * V, dec->logits, (size_t)V * sizeof(real));
    }
    return 0;
}

/* The largest error of stepping against the full pass over every fixture
 * and length, printed at the end. */
static double worst_stepped = 0;

/* The largest relative error over positions [from, L) between two (L, V)
 * logit arrays. */
static double worst_error(const real *a, const real *b, int from, int L, int V) {
    double worst = 0;
    for (int i = from; i < L; i++) {
        double e = relative_error(a + (size_t)i * V, b + (size_t)i * V, V);
        if (!(e <= worst)) worst = e; /* NaN counts as worst */
    }
    return worst;
}

/* Steps, and prefill + steps, against the full pass, for one fixture at
 * length L with a decoder of capacity L + extra. */
static void check_fixture_length(const Fixture *fx, Model *model, int L, int extra, uint64_t seed) {
    int V = fx->cfg.vocab_size;
    int tokens[MAX_LENGTH];
    fixture_tokens(tokens, L, V, seed);
    size_t count = (size_t)L * V;
    real *full = malloc(count * sizeof(real)), *stepped = malloc(count * sizeof(real));
    real *prefilled = malloc(count * sizeof(real));
    Decoder dec;
    if (model_forward(model, tokens, NULL, 1, L, NULL) || decoder_build(&dec, model, L + extra)) {
        CHECK(0, "%s: %s", fx->name, spiral_last_error());
        goto done;
    }
    memcpy(full, model->logits, count * sizeof(real));
    CHECK(step_all(&dec, stepped, tokens, L) == 0, "%s: step: %s", fx->name, spiral_last_error());
    double err = worst_error(stepped, full, 0, L, V);
    if (err > worst_stepped) worst_stepped = err;
    CHECK(err <= TOLERANCE, "%s, L = %d: incremental vs full relative error %.3g", fx->name, L,
          err);
    /* a prefill of every prompt length P, then steps to L */
    double worst = 0;
    int worst_p = 0;
    for (int P = 1; P <= L; P++) {
        decoder_reset(&dec);
        if (decoder_prefill(&dec, tokens, P)) {
            CHECK(0, "%s: prefill %d: %s", fx->name, P, spiral_last_error());
            break;
        }
        memcpy(prefilled + (size_t)(P - 1) * V, dec.logits, (size_t)V * sizeof(real));
        for (int i = P; i < L; i++) {
            if (decoder_step(&dec, tokens[i])) break;
            memcpy(prefilled + (size_t)i * V, dec.logits, (size_t)V * sizeof(real));
        }
        double e = worst_error(prefilled, stepped, P - 1, L, V);
        if (!(e <= worst)) {
            worst = e;
            worst_p = P;
        }
    }
    CHECK(worst <= TOLERANCE, "%s, L = %d: prefill %d + steps vs steps relative error %.3g",
          fx->name, L, worst_p, worst);
    decoder_free(&dec);
done:
    free(full);
    free(stepped);
    free(prefilled);
}

/* The test can fail: right after level 0's first chunk closes, a changed
 * stored update (or, at full resolution, a changed cached value of the
 * core) reaches later logits. */
static void check_detects_tampering(const Fixture *fx, Model *model) {
    int V = fx->cfg.vocab_size, L = 24, tokens[24];
    const IterSpec *spec = &fx->cfg.schedule[0];
    int close = spec->g - spec->offset - 1;
    fixture_tokens(tokens, L, V, 99);
    real *full = malloc((size_t)L * V * sizeof(real)), *stepped = malloc((size_t)L * V * sizeof(real));
    Decoder dec;
    model_forward(model, tokens, NULL, 1, L, NULL);
    memcpy(full, model->logits, (size_t)L * V * sizeof(real));
    decoder_build(&dec, model, L);
    for (int i = 0; i < L; i++) {
        decoder_step(&dec, tokens[i]);
        if (i == close) {
            DecodeLevel *level = &dec.levels[0];
            if (level->full_resolution) level->core[0].v[0] += 0.5;
            else level->delta[0] += 0.5;
        }
        memcpy(stepped + (size_t)i * V, dec.logits, (size_t)V * sizeof(real));
    }
    CHECK(worst_error(stepped, full, 0, L, V) > 1e-3,
          "%s: a tampered stored update went unnoticed", fx->name);
    decoder_free(&dec);
    free(full);
    free(stepped);
}

/* Sum of decoder_step_flops over 0 .. L-1 == model_cost's forward FLOPs at
 * an L where every level's last chunk closes at L - 1. */
static void check_flops(const Fixture *fx) {
    const SpiralConfig *cfg = &fx->cfg;
    for (int L = 1; L <= 400; L++) {
        int closes = 1;
        for (int t = 0; t < cfg->n_iters; t++)
            if ((L + cfg->schedule[t].offset) % cfg->schedule[t].g) closes = 0;
        if (!closes) continue;
        double sum = 0;
        for (int p = 0; p < L; p++) sum += decoder_step_flops(cfg, p);
        ModelCost cost;
        model_cost(&cost, cfg, L);
        CHECK(fabs(sum - cost.forward_flops) <= 1e-9 * cost.forward_flops,
              "%s, L = %d: step FLOPs sum to %.6g, the full pass counts %.6g", fx->name, L, sum,
              cost.forward_flops);
        return;
    }
}

static void check_errors(Model *model) {
    int V = model->cfg.vocab_size, tokens[6] = {1, 2, 3, 4, 5, 6};
    Decoder dec;
    CHECK(decoder_build(&dec, model, 0) == -1 && strstr(spiral_last_error(), "capacity 0"),
          "capacity 0: %s", spiral_last_error());
    decoder_build(&dec, model, 5);
    CHECK(decoder_step(&dec, V) == -1 && strstr(spiral_last_error(), "outside the vocabulary"),
          "token V: %s", spiral_last_error());
    CHECK(decoder_step(&dec, -1) == -1 && dec.n == 0, "token -1 accepted");
    CHECK(decoder_prefill(&dec, tokens, 6) == -1 &&
              strstr(spiral_last_error(), "does not fit a context of 5"),
          "prompt too long: %s", spiral_last_error());
    int bad[2] = {1, V + 3};
    CHECK(decoder_prefill(&dec, bad, 2) == -1 && strstr(spiral_last_error(), "outside the vocabulary"),
          "prefill token outside: %s", spiral_last_error());
    CHECK(decoder_prefill(&dec, tokens, 5) == 0, "prefill 5: %s", spiral_last_error());
    CHECK(decoder_step(&dec, 1) == -1 && strstr(spiral_last_error(), "context is full"),
          "full: %s", spiral_last_error());
    CHECK(decoder_prefill(&dec, tokens, 2) == -1 && strstr(spiral_last_error(), "already holds"),
          "prefill into a used decoder: %s", spiral_last_error());
    decoder_free(&dec);
}

int main(int argc, char **argv) {
    Fixture fixtures[FIXTURE_COUNT + FIXTURE_MESH_COUNT];
    int n = fixtures_all(fixtures);
    n += fixtures_mesh(fixtures + n);
    for (int f = 0; f < n; f++) {
        Model model;
        if (model_build(&model, &fixtures[f].cfg)) {
            CHECK(0, "%s: %s", fixtures[f].name, spiral_last_error());
            continue;
        }
        fixture_random_weights(&model, 100 + f);
        for (int r = 0; r < LENGTHS_PER_FIXTURE; r++) {
            /* lengths 1 .. MAX_LENGTH (splitmix64 of (f, r), apart from the
             * weights' draws) */
            uint64_t draw = (uint64_t)(f * LENGTHS_PER_FIXTURE + r + 1) * 0x9E3779B97F4A7C15ull;
            draw = (draw ^ (draw >> 30)) * 0xBF58476D1CE4E5B9ull;
            draw = (draw ^ (draw >> 27)) * 0x94D049BB133111EBull;
            draw ^= draw >> 31;
            int L = r == 0 ? 1 : 2 + (int)(draw % (MAX_LENGTH - 1));
            check_fixture_length(&fixtures[f], &model, L, r % 2 ? 7 : 0, 1000 + f * 10 + r);
        }
        check_detects_tampering(&fixtures[f], &model);
        check_flops(&fixtures[f]);
        if (f == 0) check_errors(&model);
        model_free(&model);
    }
    printf("stepping vs the full pass over %d fixtures: worst relative error %.2g (tolerance %g)\n",
           n, worst_stepped, TOLERANCE);
    return test_summary(argv[0]);
}
