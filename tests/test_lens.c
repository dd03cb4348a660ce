/*
 * test_lens.c: test-time depth and the logit lens' exit models
 * (core/depth.c), on every fixture configuration:
 *  - the trained schedule given as a new schedule gives the same logits,
 *    bit for bit;
 *  - the model exiting after iteration T with the coda is the model itself
 *    (same logits, bit for bit), so the lens at t = T is the model's loss;
 *  - the model exiting after iteration t without the coda hands its head
 *    exactly h(t) of the full model (t = 0 included: the identity
 *    iteration changes nothing);
 *  - a longer schedule changes the logits; iterations take their
 *    parameters from the documented source;
 *  - bad schedules (g = 0, malformed lists, a g that selfagg/alloc never
 *    learned) are refused with messages naming the entry;
 *  - interventions: a hook that changes nothing and patching a sequence
 *    with itself leave the logits bit for bit; ablating iteration t makes
 *    h(t+1) exactly h(t) (residual) or h(0) (anchor) and changes the
 *    logits; bad iterations, levels and positions are refused.
 */
#include <stdlib.h>
#include <string.h>

#include "depth.h"
#include "intervene.h"
#include "error.h"
#include "fixtures.h"
#include "harness.h"

#define NB 2
#define NL 13

/* Captures the state handed to the observer at one site and iteration. */
typedef struct {
    ObserveSite site;
    int iteration;
    real *copy;            /* (NB, NL, d) */
    int seen;
} Capture;

static void capture(void *user, const ObserveEvent *e) {
    Capture *c = user;
    if (e->site != c->site || e->iteration != c->iteration) return;
    memcpy(c->copy, e->data, (size_t)e->B * e->rows * e->cols * sizeof(real));
    c->seen = 1;
}

/* Runs model on the first n_seqs sequences of tokens; returns a malloc'd
 * copy of its logits (n_seqs, NL, V), or NULL. */
static real *run_logits_of(Model *m, const int *tokens, const int *targets, int n_seqs) {
    if (model_forward(m, tokens, targets, n_seqs, NL, NULL)) return NULL;
    size_t n = (size_t)n_seqs * NL * m->cfg.vocab_size;
    real *copy = malloc(n * sizeof(real));
    if (copy) memcpy(copy, m->logits, n * sizeof(real));
    return copy;
}

/* The same for all NB sequences. */
static real *run_logits(Model *m, const int *tokens, const int *targets) {
    return run_logits_of(m, tokens, targets, NB);
}

static void test_fixture(const Fixture *f) {
    Model model, other;
    int tokens[NB * NL], targets[NB * NL];
    fixture_tokens(tokens, NB * NL, f->cfg.vocab_size, 7);
    fixture_tokens(targets, NB * NL, f->cfg.vocab_size, 8);
    if (model_build(&model, &f->cfg)) {
        CHECK(0, "%s: build: %s", f->name, spiral_last_error());
        return;
    }
    fixture_random_weights(&model, 11);
    size_t n_logits = (size_t)NB * NL * f->cfg.vocab_size;
    real *reference = run_logits(&model, tokens, targets);
    double reference_loss = model.loss;
    int T = f->cfg.n_iters, d = f->cfg.d_model;

    /* the trained schedule as a "new" schedule */
    int g[SPIRAL_MAX_ITERS];
    for (int t = 0; t < T; t++) g[t] = f->cfg.schedule[t].g;
    CHECK(depth_model_build(&other, &model, g, T) == 0, "%s: same schedule: %s", f->name,
          spiral_last_error());
    real *logits = run_logits(&other, tokens, targets);
    CHECK(logits && !memcmp(logits, reference, n_logits * sizeof(real)) &&
          other.loss == reference_loss, "%s: same schedule changed the logits", f->name);
    free(logits);
    model_free(&other);

    /* one more iteration at the last chunk size: other logits */
    g[T] = g[T - 1];
    CHECK(depth_model_build(&other, &model, g, T + 1) == 0, "%s: T + 1: %s", f->name,
          spiral_last_error());
    logits = run_logits(&other, tokens, targets);
    CHECK(logits && memcmp(logits, reference, n_logits * sizeof(real)) != 0,
          "%s: an extra iteration left the logits unchanged", f->name);
    CHECK(other.cfg.schedule[T].offset == f->cfg.schedule[T - 1].offset &&
          other.cfg.schedule[T].shift == f->cfg.schedule[T - 1].shift,
          "%s: the extra iteration did not take its source's offset and shift", f->name);
    free(logits);
    model_free(&other);

    /* exit after T with the coda: the model itself */
    CHECK(depth_exit_model_build(&other, &model, T, 1) == 0, "%s: exit T: %s", f->name,
          spiral_last_error());
    logits = run_logits(&other, tokens, targets);
    CHECK(logits && !memcmp(logits, reference, n_logits * sizeof(real)) &&
          other.loss == reference_loss, "%s: exit after T differs from the model", f->name);
    free(logits);
    model_free(&other);

    /* exit after t without the coda sees exactly h(t) */
    real *h_full = malloc((size_t)NB * NL * d * sizeof(real));
    real *h_exit = malloc((size_t)NB * NL * d * sizeof(real));
    for (int t = 0; t <= T; t++) {
        Capture full = {OBSERVE_STATE, t, h_full, 0};
        Observer observe_full = {capture, &full, 0, NULL};
        model_forward(&model, tokens, targets, NB, NL, &observe_full);
        if (depth_exit_model_build(&other, &model, t, 0)) {
            CHECK(0, "%s: exit %d: %s", f->name, t, spiral_last_error());
            continue;
        }
        Capture exit = {OBSERVE_CODA, other.cfg.n_iters, h_exit, 0};
        Observer observe_exit = {capture, &exit, 0, NULL};
        model_forward(&other, tokens, targets, NB, NL, &observe_exit);
        CHECK(full.seen && exit.seen && other.cfg.n_post == 0 &&
              !memcmp(h_full, h_exit, (size_t)NB * NL * d * sizeof(real)),
              "%s: exit after %d (no coda) does not see h(%d)", f->name, t, t);
        model_free(&other);
    }
    CHECK(depth_exit_model_build(&other, &model, T + 1, 1) == -1 &&
          strstr(spiral_last_error(), "exit after iteration"), "%s: exit past T accepted",
          f->name);
    free(h_full);
    free(h_exit);
    free(reference);
    model_free(&model);
}

static void hook_nothing(void *user, int t, real *e, int B, int L, int d) {
    (*(int *)user)++;
}

/* Zeroes the update of every iteration it is called for, and counts. */
static void hook_zero(void *user, int t, real *e, int B, int L, int d) {
    (*(int *)user)++;
    memset(e, 0, (size_t)B * L * d * sizeof(real));
}

/* Interventions on one fixture. */
static void test_interventions(const Fixture *f) {
    Model model;
    int tokens[NB * NL], targets[NB * NL];
    fixture_tokens(tokens, NB * NL, f->cfg.vocab_size, 17);
    fixture_tokens(targets, NB * NL, f->cfg.vocab_size, 18);
    if (model_build(&model, &f->cfg)) return;
    fixture_random_weights(&model, 19);
    int T = f->cfg.n_iters, d = f->cfg.d_model;
    size_t n_logits = (size_t)NB * NL * f->cfg.vocab_size, n_state = (size_t)NB * NL * d;
    real *reference = run_logits(&model, tokens, targets);

    int calls = 0;
    UpdateHook nothing = {hook_nothing, &calls, NULL};
    model.update_hook = &nothing;
    real *logits = run_logits(&model, tokens, targets);
    CHECK(logits && calls == T && !memcmp(logits, reference, n_logits * sizeof(real)),
          "%s: a hook that changes nothing changed the logits (%d calls)", f->name, calls);
    CHECK(model_backward(&model) == -1 && strstr(spiral_last_error(), "update hook"),
          "%s: backward after a hooked forward", f->name);
    free(logits);

    /* a hook's iterations: it is called for those only; a hook that zeroes
     * every update it sees, limited to iteration t, is the zero ablation
     * of t (whose Intervention limits its own hook the same way) */
    unsigned char none[SPIRAL_MAX_ITERS] = {0};
    calls = 0;
    UpdateHook zero = {hook_zero, &calls, none};
    model.update_hook = &zero;
    logits = run_logits(&model, tokens, targets);
    CHECK(logits && calls == 0 && !memcmp(logits, reference, n_logits * sizeof(real)),
          "%s: a hook limited to no iteration was called %d times or changed the logits",
          f->name, calls);
    free(logits);
    for (int t = 0; t < T; t++) {
        unsigned char only[SPIRAL_MAX_ITERS] = {0};
        only[t] = 1;
        zero.iterations = only;
        calls = 0;
        model.update_hook = &zero;
        real *limited = run_logits(&model, tokens, targets);
        Intervention iv;
        InterventionSpec spec = {.kind = INTERVENE_ZERO, .iteration = t};
        intervention_init(&iv, &spec, &model.cfg, NL);
        CHECK(iv.hook.iterations && iv.hook.iterations[t] && (T == 1 || !iv.hook.iterations[(t + 1) % T]),
              "%s: the zero ablation of iteration %d does not limit its hook to it", f->name, t);
        model.update_hook = intervention_apply_hook(&iv);
        real *ablated = run_logits(&model, tokens, targets);
        CHECK(limited && ablated && calls == 1 && !memcmp(limited, ablated, n_logits * sizeof(real)),
              "%s: a zeroing hook limited to iteration %d (%d calls) is not its zero ablation",
              f->name, t, calls);
        free(limited);
        free(ablated);
        intervention_free(&iv);
    }
    model.update_hook = NULL;

    /* patch every iteration's update of sequence 0 with itself */
    for (int t = 0; t < T; t++) {
        Intervention iv;
        InterventionSpec spec = {.kind = INTERVENE_PATCH, .iteration = t};
        CHECK(intervention_init(&iv, &spec, &model.cfg, NL) == 0, "init patch");
        model.update_hook = intervention_measure_hook(&iv);
        model_forward(&model, tokens, targets, 1, NL, NULL);
        model.update_hook = NULL;
        /* the plain pass at the patched pass's batch shape: BLAS products
         * need not round alike at other row counts (OpenBLAS's AVX-512
         * kernels do not) */
        real *plain = run_logits_of(&model, tokens, targets, 1);
        if (!plain) {
            CHECK(0, "%s: the plain pass of one sequence failed", f->name);
            intervention_free(&iv);
            continue;
        }
        model.update_hook = intervention_apply_hook(&iv);
        model_forward(&model, tokens, targets, 1, NL, NULL);
        CHECK(!memcmp(model.logits, plain, (size_t)NL * f->cfg.vocab_size * sizeof(real)),
              "%s: patching iteration %d with itself changed the logits", f->name, t);
        /* patch sequence 1 from sequence 0: row 1's logits change */
        model_forward(&model, tokens, targets, NB, NL, NULL);
        CHECK(memcmp(model.logits + n_logits / NB, reference + n_logits / NB,
                     n_logits / NB * sizeof(real)) != 0 || NL <= f->cfg.schedule[t].shift,
              "%s: patching iteration %d from another sequence changed nothing", f->name, t);
        model.update_hook = NULL;
        free(plain);
        intervention_free(&iv);
    }

    /* zero ablation of iteration t: h(t+1) = h(t) (residual) or h(0) (anchor) */
    real *before = malloc(n_state * sizeof(real)), *after = malloc(n_state * sizeof(real));
    for (int t = 0; t < T; t++) {
        Intervention iv;
        InterventionSpec spec = {.kind = INTERVENE_ZERO, .iteration = t};
        intervention_init(&iv, &spec, &model.cfg, NL);
        CHECK(intervention_measure_hook(&iv) == NULL, "zero ablation needs no first pass");
        model.update_hook = intervention_apply_hook(&iv);
        int expect = f->cfg.topology == TOPOLOGY_RESIDUAL ? t : 0;
        Capture a = {OBSERVE_STATE, expect, before, 0}, b = {OBSERVE_STATE, t + 1, after, 0};
        Observer oa = {capture, &a, 0, NULL}, ob = {capture, &b, 0, NULL};
        model_forward(&model, tokens, targets, NB, NL, &oa);
        model_forward(&model, tokens, targets, NB, NL, &ob);
        CHECK(a.seen && b.seen && !memcmp(before, after, n_state * sizeof(real)),
              "%s: ablating iteration %d: h(%d) is not h(%d)", f->name, t, t + 1, expect);
        CHECK(memcmp(model.logits, reference, n_logits * sizeof(real)) != 0,
              "%s: ablating iteration %d left the logits unchanged", f->name, t);
        model.update_hook = NULL;
        intervention_free(&iv);
    }
    free(before);
    free(after);

    /* mean ablation: a first pass, then every position gets the mean */
    {
        Intervention iv;
        InterventionSpec spec = {.kind = INTERVENE_MEAN, .iteration = T - 1};
        intervention_init(&iv, &spec, &model.cfg, NL);
        model.update_hook = intervention_measure_hook(&iv);
        model_forward(&model, tokens, targets, NB, NL, NULL);
        CHECK(iv.count == NB * NL && !memcmp(model.logits, reference, n_logits * sizeof(real)),
              "%s: the mean's first pass changed the logits or counted %lld rows", f->name,
              iv.count);
        model.update_hook = NULL;
        intervention_free(&iv);
    }

    /* bad input */
    Intervention iv;
    InterventionSpec bad = {.kind = INTERVENE_ZERO, .iteration = T};
    CHECK(intervention_init(&iv, &bad, &model.cfg, NL) == -1 &&
          strstr(spiral_last_error(), "is out of range"), "%s: iteration T accepted", f->name);
    bad = (InterventionSpec){.kind = INTERVENE_ZERO, .iteration = -1, .level = 999};
    CHECK(intervention_init(&iv, &bad, &model.cfg, NL) == -1 &&
          strstr(spiral_last_error(), "no iteration has chunk size g = 999"),
          "%s: level 999 accepted", f->name);
    bad = (InterventionSpec){.kind = INTERVENE_PATCH, .iteration = 0, .pos_from = 5,
                             .pos_to = NL + 1};
    CHECK(intervention_init(&iv, &bad, &model.cfg, NL) == -1 &&
          strstr(spiral_last_error(), "--positions"), "%s: positions past L accepted", f->name);
    intervention_free(&iv);
    free(reference);
    model_free(&model);
}

/* Parsing and the parameter-source rule. */
static void test_schedules(void) {
    int g[SPIRAL_MAX_ITERS], n;
    CHECK(depth_parse_schedule("--schedule", "8,4,2,1,1", g, &n) == 0 && n == 5 && g[0] == 8 &&
          g[4] == 1, "parse 8,4,2,1,1");
    CHECK(depth_parse_schedule("--schedule", "4,0,1", g, &n) == -1 &&
          strstr(spiral_last_error(), "--schedule: entry 2 is g = 0"), "g = 0: %s",
          spiral_last_error());
    CHECK(depth_parse_schedule("--schedule", "4,,1", g, &n) == -1 &&
          strstr(spiral_last_error(), "entry 2 of '4,,1' is not an integer"), "empty entry: %s",
          spiral_last_error());
    CHECK(depth_parse_schedule("--schedule", "", g, &n) == -1 &&
          strstr(spiral_last_error(), "empty list"), "empty: %s", spiral_last_error());
    CHECK(depth_parse_schedule("--schedule", "2,1,", g, &n) == -1, "trailing comma");
    CHECK(depth_parse_schedule("--schedule", "2;1", g, &n) == -1, "semicolon");

    SpiralConfig c = fixture_base();
    int trained[] = {8, 4, 2, 1};
    fixture_schedule(&c, 4, trained, NULL, NULL);
    c.down = DOWN_SELFAGG;
    c.up = UP_ALLOC;
    int source[SPIRAL_MAX_ITERS];
    int again[] = {8, 4, 2, 1, 1, 2, 8};
    CHECK(depth_sources(source, &c, again, 7) == 0 && source[0] == 0 && source[3] == 3 &&
          source[4] == 3 && source[5] == 2 && source[6] == 0, "sources of 8,4,2,1,1,2,8");
    int swapped[] = {4, 8};
    CHECK(depth_sources(source, &c, swapped, 2) == 0 && source[0] == 1 && source[1] == 0,
          "sources of 4,8");
    int unseen[] = {8, 16};
    CHECK(depth_sources(source, &c, unseen, 2) == -1 &&
          strstr(spiral_last_error(), "iteration 1 has g = 16, but no trained iteration has g = 16") &&
          strstr(spiral_last_error(), "selfagg") && strstr(spiral_last_error(), "alloc"),
          "unseen g with selfagg/alloc: %s", spiral_last_error());
    c.down = DOWN_MEAN;
    c.up = UP_COPY;
    CHECK(depth_sources(source, &c, unseen, 2) == 0 && source[1] == -1,
          "mean/copy take any g: %s", spiral_last_error());

    /* mean/copy: a new g runs, with offset 0 and shift g - 1 */
    Model model, other;
    model_build(&model, &c);
    fixture_random_weights(&model, 3);
    CHECK(depth_model_build(&other, &model, unseen, 2) == 0 && other.cfg.schedule[1].g == 16 &&
          other.cfg.schedule[1].shift == 15 && other.cfg.schedule[1].offset == 0,
          "mean/copy with g = 16: %s", spiral_last_error());
    model_free(&other);
    model_free(&model);
}

int main(int argc, char **argv) {
    Fixture fixtures[FIXTURE_COUNT];
    int n = fixtures_all(fixtures);
    for (int k = 0; k < n; k++) test_fixture(&fixtures[k]);
    for (int k = 0; k < n; k++) test_interventions(&fixtures[k]);
    test_schedules();
    return test_summary(argv[0]);
}
