/*
 * test_generate.c: generation through an engine's full forward pass
 * (generate_tokens_engine, what `spiral generate --device cuda` runs)
 * against generation with the incremental decoder (generate_tokens), on
 * the CPU engine, for every fixture kind with random weights (so every
 * path of the model matters):
 *
 *  - greedy: the same tokens, and log-probabilities within 1e-5;
 *  - sampled (temperature 0.8, top-k 3, top-p 0.9, a seed): the same
 *    tokens (the draws see logits that agree to rounding);
 *  - the loop can fail: an engine generation from another prompt differs;
 *  - bad input: a generation longer than the context, a token outside the
 *    vocabulary, an empty prompt: errors that say so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"
#include "fixtures.h"
#include "generate.h"
#include "harness.h"

enum { PROMPT = 5, NEW_TOKENS = 20, CAPACITY = PROMPT + NEW_TOKENS - 1 };

/* Generates with the decoder and with the CPU engine from the same prompt
 * and settings; 0 and both results, or -1. */
static int generate_both(Model *model, Engine *engine, const int *prompt,
                         const GenerateOptions *o, int *dec_tokens, double *dec_logprobs,
                         int *eng_tokens, double *eng_logprobs) {
    Decoder dec;
    GenerateResult r1, r2;
    if (decoder_build(&dec, model, CAPACITY)) return -1;
    int status = generate_tokens(&dec, prompt, PROMPT, o, dec_tokens, dec_logprobs, &r1);
    decoder_free(&dec);
    if (status) return -1;
    return generate_tokens_engine(engine, model->cfg.vocab_size, CAPACITY, prompt, PROMPT, o,
                                  eng_tokens, eng_logprobs, &r2);
}

static void check_fixture(const Fixture *fx, int index) {
    Model model;
    Engine *engine = NULL;
    if (model_build(&model, &fx->cfg)) {
        CHECK(0, "%s: %s", fx->name, spiral_last_error());
        return;
    }
    fixture_random_weights(&model, 300 + (uint64_t)index);
    if (engine_open_with_weights(&engine, "cpu", NULL, &model)) {
        CHECK(0, "%s: engine: %s", fx->name, spiral_last_error());
        model_free(&model);
        return;
    }
    int V = model.cfg.vocab_size, prompt[PROMPT];
    fixture_tokens(prompt, PROMPT, V, 40 + (uint64_t)index);
    int a[NEW_TOKENS], b[NEW_TOKENS];
    double la[NEW_TOKENS], lb[NEW_TOKENS];

    GenerateOptions greedy = {.sample = {.temperature = 0, .top_k = 0, .top_p = 1},
                              .seed = 1, .max_tokens = NEW_TOKENS};
    int status = generate_both(&model, engine, prompt, &greedy, a, la, b, lb);
    CHECK(status == 0, "%s greedy: %s", fx->name, spiral_last_error());
    if (status == 0) {
        double worst = 0;
        for (int k = 0; k < NEW_TOKENS; k++) worst = fmax(worst, fabs(la[k] - lb[k]));
        CHECK(memcmp(a, b, sizeof a) == 0 && worst <= 1e-5,
              "%s greedy: engine tokens differ from the decoder's (log-prob gap %.2e)",
              fx->name, worst);
    }

    GenerateOptions sampled = {.sample = {.temperature = 0.8, .top_k = 3, .top_p = 0.9},
                               .seed = 11 + (uint64_t)index, .max_tokens = NEW_TOKENS};
    status = generate_both(&model, engine, prompt, &sampled, a, la, b, lb);
    CHECK(status == 0 && memcmp(a, b, sizeof a) == 0,
          "%s sampled: engine tokens differ from the decoder's (%s)", fx->name,
          status ? spiral_last_error() : "same settings and seed");

    /* the comparison can fail: another prompt gives other log-probabilities */
    int other[PROMPT];
    memcpy(other, prompt, sizeof other);
    other[PROMPT - 1] = (other[PROMPT - 1] + 1) % V;
    GenerateResult r;
    status = generate_tokens_engine(engine, V, CAPACITY, other, PROMPT, &greedy, b, lb, &r);
    double gap = 0;
    for (int k = 0; k < NEW_TOKENS && status == 0; k++) gap = fmax(gap, fabs(la[k] - lb[k]));
    CHECK(status == 0 && gap > 1e-3, "%s: a changed prompt left the log-probabilities alike",
          fx->name);
    engine_free(engine);
    model_free(&model);
}

static void check_errors(void) {
    Fixture fixtures[FIXTURE_COUNT];
    fixtures_all(fixtures);
    Model model;
    Engine *engine = NULL;
    if (model_build(&model, &fixtures[0].cfg) ||
        engine_open_with_weights(&engine, "cpu", NULL, &model)) {
        CHECK(0, "errors: %s", spiral_last_error());
        return;
    }
    int V = model.cfg.vocab_size, prompt[PROMPT] = {0}, out[NEW_TOKENS];
    GenerateOptions o = {.sample = {.temperature = 0, .top_k = 0, .top_p = 1}, .seed = 1,
                         .max_tokens = NEW_TOKENS};
    GenerateResult r;
    CHECK(generate_tokens_engine(engine, V, CAPACITY - 1, prompt, PROMPT, &o, out, NULL, &r) ==
                  -1 && strstr(spiral_last_error(), "lower --max-tokens to"),
          "too long: %s", spiral_last_error());
    prompt[2] = V;
    CHECK(generate_tokens_engine(engine, V, CAPACITY, prompt, PROMPT, &o, out, NULL, &r) == -1 &&
              strstr(spiral_last_error(), "vocabulary"),
          "token V: %s", spiral_last_error());
    CHECK(generate_tokens_engine(engine, V, CAPACITY, prompt, 0, &o, out, NULL, &r) == -1 &&
              strstr(spiral_last_error(), "empty"),
          "empty prompt: %s", spiral_last_error());
    /* rows beyond the last pass (one sequence of 3 tokens) */
    int three[3] = {0, 1, 2};
    float *row = malloc((size_t)V * sizeof *row);
    CHECK(row && engine->ops->observe(engine, three, NULL, 1, 3, NULL, 0, NULL) == 0 &&
              engine->ops->get_logits_rows(engine, 2, 1, row) == 0 &&
              engine->ops->get_logits_rows(engine, 3, 1, row) == -1 &&
              strstr(spiral_last_error(), "the last pass has 3"),
          "logits row 3 of 3: %s", spiral_last_error());
    free(row);
    engine_free(engine);
    model_free(&model);
}

int main(int argc, char **argv) {
    Fixture fixtures[FIXTURE_COUNT + FIXTURE_MESH_COUNT];
    int n = fixtures_all(fixtures);
    n += fixtures_mesh(fixtures + n);
    for (int f = 0; f < n; f++) check_fixture(&fixtures[f], f);
    check_errors();
    return test_summary(argv[0]);
}
