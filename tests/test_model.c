/*
 * test_model.c: exact properties of the model family (float build, so that
 * "exact" means bit-identical in the precision spiral runs in).
 *
 *  - causality: for every fixture, perturbing tokens after position i leaves
 *    the logits at positions <= i bit-identical (and the test is shown to
 *    catch a leak: a shift of g - 2, forced past validation, fails it);
 *  - weight sharing: the core's tensors exist once however many iterations
 *    run; a looped model equals a dense model holding T copies of its core,
 *    and the core's gradient equals the sum of the copies' gradients;
 *  - equivalences: alloc with zero weights == copy; a spiral config whose
 *    schedule is all g = 1 == the looped baseline (mean/copy);
 *  - initialization is reproducible from its seed;
 *  - the observer sees every iteration's states and every attention matrix.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost.h"
#include "engine.h"
#include "error.h"
#include "fixtures.h"
#include "harness.h"
#include "model.h"

enum { LENGTH = 19 };

/* Copies every tensor of `from` whose name `to` also has (same shape). */
static void copy_weights_by_name(Model *to, const Model *from) {
    for (int i = 0; i < to->layout.n_tensors; i++) {
        const ParamTensor *t = &to->layout.tensors[i];
        int j = param_layout_find(&from->layout, t->name);
        if (j < 0) continue;
        memcpy(to->params + t->offset, from->params + from->layout.tensors[j].offset,
               t->numel * sizeof(real));
    }
}

/* Runs a forward pass (B = 1) and returns a malloc'd copy of the logits. */
static real *logits_of(Model *m, const int *tokens, int L) {
    if (model_forward(m, tokens, NULL, 1, L, NULL)) {
        fprintf(stderr, "forward: %s\n", spiral_last_error());
        exit(2);
    }
    size_t count = (size_t)L * m->cfg.vocab_size;
    real *copy = malloc(count * sizeof(real));
    memcpy(copy, m->logits, count * sizeof(real));
    return copy;
}

/* Number of positions i for which perturbing the tokens after i changes a
 * logit at a position <= i (0 for a causal model). Also reports, through
 * *later_changed, whether the perturbation changed any later logit at all. */
static int causality_violations(Model *m, int *later_changed) {
    int V = m->cfg.vocab_size, tokens[LENGTH], perturbed[LENGTH], violations = 0;
    fixture_tokens(tokens, LENGTH, V, 3);
    real *base = logits_of(m, tokens, LENGTH);
    *later_changed = 0;
    for (int i = 0; i + 1 < LENGTH; i++) {
        memcpy(perturbed, tokens, sizeof tokens);
        for (int j = i + 1; j < LENGTH; j++) perturbed[j] = (tokens[j] + 1 + j % 3) % V;
        real *other = logits_of(m, perturbed, LENGTH);
        size_t prefix = (size_t)(i + 1) * V;
        if (memcmp(base, other, prefix * sizeof(real)) != 0) violations++;
        if (memcmp(base + prefix, other + prefix, (LENGTH - i - 1) * (size_t)V * sizeof(real)))
            *later_changed = 1;
        free(other);
    }
    free(base);
    return violations;
}

/* No logit at i changes when tokens after i do, for each of n fixtures
 * with random weights; and the perturbation does change later logits. */
static void check_causality(const Fixture *fixtures, int n) {
    for (int f = 0; f < n; f++) {
        Model m;
        model_build(&m, &fixtures[f].cfg);
        fixture_random_weights(&m, 5);
        int later_changed;
        int violations = causality_violations(&m, &later_changed);
        CHECK(violations == 0, "%s: %d positions see the future", fixtures[f].name, violations);
        CHECK(later_changed, "%s: perturbation changed nothing (test would be vacuous)",
              fixtures[f].name);
        model_free(&m);
    }
}

static void test_causality(void) {
    Fixture fixtures[FIXTURE_COUNT];
    check_causality(fixtures, fixtures_all(fixtures));
    /* The test has teeth: a shift one short of g - 1 leaks the future. */
    Model m;
    SpiralConfig c = fixtures[0].cfg;
    model_build(&m, &c);
    fixture_random_weights(&m, 5);
    m.cfg.schedule[1].shift = m.cfg.schedule[1].g - 2; /* forced past config_validate */
    int later_changed;
    CHECK(causality_violations(&m, &later_changed) > 0,
          "a leaking shift (g - 2) was not detected by the causality test");
    model_free(&m);
    c.schedule[1].shift = c.schedule[1].g - 2;
    CHECK(config_validate(&c) != 0 && strstr(spiral_last_error(), "shift"),
          "config_validate accepted shift < g - 1: %s", spiral_last_error());
}

/* The loop core's tensors are the same set whatever T is. */
static void test_core_exists_once(void) {
    SpiralConfig one = fixture_base(), many = fixture_base();
    int g1[] = {1}, g5[] = {8, 4, 2, 1, 1};
    fixture_schedule(&one, 1, g1, NULL, NULL);
    fixture_schedule(&many, 5, g5, NULL, NULL);
    ParamLayout a, b;
    param_layout_build(&a, &one);
    param_layout_build(&b, &many);
    size_t core_a = 0, core_b = 0, iter_b = 0, iter_a = 0;
    int count_a = 0, count_b = 0;
    for (int i = 0; i < a.n_tensors; i++)
        if (!strncmp(a.tensors[i].name, "loop.", 5)) { core_a += a.tensors[i].numel; count_a++; }
        else if (!strncmp(a.tensors[i].name, "iter.", 5)) iter_a += a.tensors[i].numel;
    for (int i = 0; i < b.n_tensors; i++)
        if (!strncmp(b.tensors[i].name, "loop.", 5)) { core_b += b.tensors[i].numel; count_b++; }
        else if (!strncmp(b.tensors[i].name, "iter.", 5)) iter_b += b.tensors[i].numel;
    CHECK(count_a == 9 * one.n_loop && count_b == count_a,
          "core tensors: %d with T=1, %d with T=5, expected %d", count_a, count_b, 9 * one.n_loop);
    CHECK(core_a == core_b, "core parameters differ with T: %zu vs %zu", core_a, core_b);
    CHECK(b.n_params - a.n_params == iter_b - iter_a,
          "T=5 adds %zu parameters beyond the per-iteration ones",
          (b.n_params - a.n_params) - (iter_b - iter_a));
    param_layout_free(&a);
    param_layout_free(&b);
}

/* A looped model (T iterations of an n_loop core, g = 1, residual) equals a
 * dense model whose T * n_loop layers are copies of the core: same logits to
 * the bit, and the core's gradient is the sum of the copies' gradients. */
static void test_looped_equals_unrolled(void) {
    enum { T = 3, N_LOOP = 2, B = 2 };
    SpiralConfig looped = fixture_base(), dense = fixture_base();
    int g_looped[T] = {1, 1, 1}, g_dense[1] = {1};
    looped.n_loop = N_LOOP;
    fixture_schedule(&looped, T, g_looped, NULL, NULL);
    dense.n_loop = T * N_LOOP;
    fixture_schedule(&dense, 1, g_dense, NULL, NULL);
    Model ml, md;
    model_build(&ml, &looped);
    model_build(&md, &dense);
    fixture_random_weights(&ml, 9);
    copy_weights_by_name(&md, &ml); /* embeddings, prelude, coda, final norm, loop.0/1 */
    char name[2 * PARAM_NAME_CAP];
    for (int t = 0; t < T; t++) {
        for (int l = 0; l < N_LOOP; l++) {
            /* copy layer l of the core into dense layer t * N_LOOP + l, tensor by tensor */
            for (int i = 0; i < ml.layout.n_tensors; i++) {
                const ParamTensor *src = &ml.layout.tensors[i];
                char prefix[32];
                snprintf(prefix, sizeof prefix, "loop.%d.", l);
                if (strncmp(src->name, prefix, strlen(prefix))) continue;
                snprintf(name, sizeof name, "loop.%d.%s", t * N_LOOP + l, src->name + strlen(prefix));
                int j = param_layout_find(&md.layout, name);
                memcpy(md.params + md.layout.tensors[j].offset, ml.params + src->offset,
                       src->numel * sizeof(real));
            }
        }
    }
    int tokens[B * LENGTH], targets[B * LENGTH];
    fixture_tokens(tokens, B * LENGTH, looped.vocab_size, 4);
    for (int i = 0; i < B * LENGTH; i++) targets[i] = (i + 1) % LENGTH ? tokens[i + 1] : -1;
    model_forward(&ml, tokens, targets, B, LENGTH, NULL);
    model_forward(&md, tokens, targets, B, LENGTH, NULL);
    size_t count = (size_t)B * LENGTH * looped.vocab_size;
    CHECK(memcmp(ml.logits, md.logits, count * sizeof(real)) == 0,
          "looped (g=1 x%d) and unrolled dense logits differ", T);
    model_zero_grad(&ml);
    model_zero_grad(&md);
    model_backward(&ml);
    model_backward(&md);
    double max_err = 0, max_grad = 0;
    for (int i = 0; i < ml.layout.n_tensors; i++) {
        const ParamTensor *src = &ml.layout.tensors[i];
        int l;
        char rest[PARAM_NAME_CAP];
        if (sscanf(src->name, "loop.%d.%63s", &l, rest) != 2) continue;
        for (size_t k = 0; k < src->numel; k++) {
            double sum = 0;
            for (int t = 0; t < T; t++) {
                snprintf(name, sizeof name, "loop.%d.%s", t * N_LOOP + l, rest);
                int j = param_layout_find(&md.layout, name);
                sum += md.grads[md.layout.tensors[j].offset + k];
            }
            double got = ml.grads[src->offset + k];
            max_err = fmax(max_err, fabs(got - sum));
            max_grad = fmax(max_grad, fabs(sum));
        }
    }
    printf("core gradient vs sum over unrolled copies: max abs diff %.2e (max |grad| %.2e)\n",
           max_err, max_grad);
    CHECK(max_grad > 0 && max_err <= 1e-5 * max_grad,
          "core gradient is not the sum of the iterations' gradients: diff %.3e, scale %.3e",
          max_err, max_grad);
    /* and the gradient is NOT the last iteration's alone (the failure mode) */
    double diff_from_one = 0;
    for (int i = 0; i < ml.layout.n_tensors; i++) {
        const ParamTensor *src = &ml.layout.tensors[i];
        int l;
        char rest[PARAM_NAME_CAP];
        if (sscanf(src->name, "loop.%d.%63s", &l, rest) != 2) continue;
        snprintf(name, sizeof name, "loop.%d.%s", (T - 1) * N_LOOP + l, rest);
        int j = param_layout_find(&md.layout, name);
        for (size_t k = 0; k < src->numel; k++)
            diff_from_one = fmax(diff_from_one, fabs(ml.grads[src->offset + k] -
                                                     md.grads[md.layout.tensors[j].offset + k]));
    }
    CHECK(diff_from_one > 1e-3 * max_grad, "every iteration contributes: diff %.3e", diff_from_one);
    model_free(&ml);
    model_free(&md);
}

/* Logits of two models on the same tokens are bit-identical. */
static int same_logits(Model *a, Model *b) {
    int tokens[LENGTH];
    fixture_tokens(tokens, LENGTH, a->cfg.vocab_size, 8);
    real *la = logits_of(a, tokens, LENGTH), *lb = logits_of(b, tokens, LENGTH);
    int same = memcmp(la, lb, (size_t)LENGTH * a->cfg.vocab_size * sizeof(real)) == 0;
    free(la);
    free(lb);
    return same;
}

static void test_alloc_zero_equals_copy(void) {
    Fixture fixtures[FIXTURE_COUNT];
    int n = fixtures_all(fixtures);
    for (int f = 0; f < n; f++) {
        if (fixtures[f].cfg.up != UP_ALLOC) continue;
        SpiralConfig copy_cfg = fixtures[f].cfg;
        copy_cfg.up = UP_COPY;
        Model with_alloc, with_copy;
        model_build(&with_alloc, &fixtures[f].cfg);
        model_build(&with_copy, &copy_cfg);
        fixture_random_weights(&with_alloc, 12);
        for (int t = 0; t < with_alloc.cfg.n_iters; t++)
            memset(with_alloc.w.up_alloc[t], 0,
                   (size_t)with_alloc.cfg.schedule[t].g * with_alloc.cfg.d_model * sizeof(real));
        copy_weights_by_name(&with_copy, &with_alloc);
        CHECK(same_logits(&with_alloc, &with_copy), "%s: alloc with zero weights != copy",
              fixtures[f].name);
        /* and nonzero alloc weights do change the output (the test has teeth) */
        fixture_random_weights(&with_alloc, 12);
        int has_coarse = 0;
        for (int t = 0; t < with_alloc.cfg.n_iters; t++) has_coarse |= with_alloc.cfg.schedule[t].g > 1;
        if (has_coarse)
            CHECK(!same_logits(&with_alloc, &with_copy), "%s: alloc weights have no effect",
                  fixtures[f].name);
        model_free(&with_alloc);
        model_free(&with_copy);
    }
}

static void test_all_g1_equals_looped(void) {
    for (int topology = 0; topology < 2; topology++) {
        SpiralConfig spiral = fixture_base(), looped;
        int g[] = {1, 1, 1, 1};
        fixture_schedule(&spiral, 4, g, NULL, NULL);
        spiral.down = DOWN_SELFAGG;
        spiral.up = UP_ALLOC;
        spiral.topology = topology;
        looped = spiral;
        looped.down = DOWN_MEAN;
        looped.up = UP_COPY;
        Model ms, ml;
        model_build(&ms, &spiral);
        model_build(&ml, &looped);
        fixture_random_weights(&ms, 21); /* nonzero scores and alloc weights */
        copy_weights_by_name(&ml, &ms);
        CHECK(same_logits(&ms, &ml), "spiral with all g=1 (%s) != looped baseline",
              config_topology_name(topology));
        model_free(&ms);
        model_free(&ml);
    }
}

static void test_init_reproducible(void) {
    SpiralConfig c = fixture_base();
    Model a, b;
    model_build(&a, &c);
    model_build(&b, &c);
    model_init_weights(&a, 1234);
    model_init_weights(&b, 1234);
    CHECK(memcmp(a.params, b.params, a.layout.n_params * sizeof(real)) == 0,
          "same seed gives different weights");
    model_init_weights(&b, 1235);
    CHECK(memcmp(a.params, b.params, a.layout.n_params * sizeof(real)) != 0,
          "different seeds give the same weights");
    int zero_alloc = 1, unit_gain = 1;
    for (int t = 0; t < c.n_iters; t++)
        for (int k = 0; k < c.schedule[t].g * c.d_model; k++) zero_alloc &= a.w.up_alloc[t][k] == 0;
    for (int k = 0; k < c.d_model; k++) unit_gain &= a.w.final_norm[k] == 1;
    CHECK(zero_alloc && unit_gain, "init: alloc must start at 0 and gains at 1");
    model_free(&a);
    model_free(&b);
}

typedef struct {
    const SpiralConfig *cfg;
    int states, latent_in, latent_out, coda, attention, layer_out, memory;
    int bad_shape;
} ObserverCounts;

/* Counts observations and checks each one's shape: token-level states are
 * (1, L, d) with g = 1; latents of iteration t are (1, J_t, d) with the last
 * latent at token position L - 1; attention rows sum to 1. */
static void count_events(void *user, const ObserveEvent *e) {
    ObserverCounts *c = user;
    int d = c->cfg->d_model;
    switch (e->site) {
    case OBSERVE_STATE:
    case OBSERVE_CODA:
        if (e->site == OBSERVE_STATE) c->states++; else c->coda++;
        c->bad_shape |= e->rows != LENGTH || e->g != 1 || e->cols != d;
        break;
    case OBSERVE_LATENT_IN:
    case OBSERVE_LATENT_OUT: {
        if (e->site == OBSERVE_LATENT_IN) c->latent_in++; else c->latent_out++;
        const IterSpec *spec = &c->cfg->schedule[e->iteration];
        ChunkGeometry geo = chunk_geometry(LENGTH, spec);
        c->bad_shape |= e->rows != geo.J || e->g != spec->g || e->cols != d ||
                        e->pos[e->rows - 1] != LENGTH - 1;
        break;
    }
    case OBSERVE_LAYER_OUT:
        c->layer_out++;
        c->bad_shape |= e->cols != d;
        break;
    case OBSERVE_MEMORY:
        c->memory++;
        c->bad_shape |= e->rows != LENGTH || e->g != 1 || e->cols != d || e->layer < 0 ||
                        e->layer >= c->cfg->mesh_slots;
        break;
    case OBSERVE_ATTENTION:
        c->attention++;
        for (int h = 0; h < e->heads; h++)
            for (int r = 0; r < e->rows; r++) {
                double sum = 0;
                for (int j = 0; j < e->rows; j++)
                    sum += e->data[((size_t)h * e->rows + r) * e->rows + j];
                c->bad_shape |= fabs(sum - 1) > 1e-5;
            }
        break;
    }
}

static void test_observer(void) {
    Fixture fixtures[FIXTURE_COUNT];
    fixtures_all(fixtures);
    const SpiralConfig *c = &fixtures[0].cfg;
    Model m;
    model_build(&m, c);
    fixture_random_weights(&m, 2);
    int tokens[LENGTH];
    fixture_tokens(tokens, LENGTH, c->vocab_size, 1);
    ObserverCounts counts = {.cfg = c};
    Observer observer = {count_events, &counts, 0, NULL};
    model_forward(&m, tokens, NULL, 1, LENGTH, &observer);
    CHECK(counts.states == c->n_iters + 1, "states observed %d, expected T+1 = %d", counts.states,
          c->n_iters + 1);
    CHECK(counts.latent_in == c->n_iters && counts.latent_out == c->n_iters,
          "latents observed %d/%d, expected %d", counts.latent_in, counts.latent_out, c->n_iters);
    CHECK(counts.coda == 1, "coda observed %d times", counts.coda);
    int expected_att = c->n_pre + c->n_iters * c->n_loop + c->n_post;
    CHECK(counts.attention == expected_att, "attention observed %d, expected %d",
          counts.attention, expected_att);
    CHECK(counts.layer_out == expected_att, "layer outputs observed %d, expected %d",
          counts.layer_out, expected_att);
    CHECK(!counts.bad_shape, "an observed tensor has the wrong shape or unnormalized rows");
    CHECK(counts.memory == 0, "a residual model observed %d memory slots", counts.memory);
    model_free(&m);
}

/* Under AddressSanitizer a failed huge allocation returns NULL, as it does
 * without it, instead of aborting the test. */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

/* A model too large for memory: the error gives its size (the count was
 * once cleared before the message and read 0 parameters). */
static void test_out_of_memory_message(void) {
    SpiralConfig c = fixture_base();
    c.d_model = 65536;
    c.n_heads = 1024;
    c.d_ff = 262144;
    c.vocab_size = 65536;
    c.n_loop = 1024;
    Model model;
    int status = model_build(&model, &c);
    const char *message = spiral_last_error();
    CHECK(status == -1 && strstr(message, "out of memory allocating a model of ") &&
              !strstr(message, "model of 0 parameters") && strstr(message, " GB for parameters"),
          "huge model: status %d, message '%s'", status, message);
    if (status == 0) model_free(&model);
}

/* ------------------------------------------------------------------------ */
/* Topology mesh                                                            */

/* Causality of every mesh fixture with random (non-zero) routers. */
static void test_mesh_causality(void) {
    Fixture fixtures[FIXTURE_MESH_COUNT];
    check_causality(fixtures, fixtures_mesh(fixtures));
}

/* Zeroes the four router tensors of every iteration. */
static void zero_mesh_routers(Model *m) {
    for (int i = 0; i < m->layout.n_tensors; i++)
        if (strstr(m->layout.tensors[i].name, ".mesh."))
            memset(m->params + m->layout.tensors[i].offset, 0,
                   m->layout.tensors[i].numel * sizeof(real));
}

/* With zero routers (uniform reads and writes) mesh is the residual
 * topology, bit for bit, on the same weights; non-zero routers change the
 * output (the comparison has teeth). */
static void test_mesh_zero_routers_equal_residual(void) {
    Fixture fixtures[FIXTURE_MESH_COUNT];
    int n = fixtures_mesh(fixtures);
    for (int f = 0; f < n; f++) {
        SpiralConfig residual_cfg = fixtures[f].cfg;
        residual_cfg.topology = TOPOLOGY_RESIDUAL;
        residual_cfg.mesh_slots = SPIRAL_DEFAULT_MESH_SLOTS;
        Model mesh, residual;
        model_build(&mesh, &fixtures[f].cfg);
        model_build(&residual, &residual_cfg);
        fixture_random_weights(&mesh, 31);
        zero_mesh_routers(&mesh);
        copy_weights_by_name(&residual, &mesh);
        CHECK(residual.layout.n_params < mesh.layout.n_params, "%s: no router parameters",
              fixtures[f].name);
        CHECK(same_logits(&mesh, &residual), "%s: zero routers != residual (bitwise)",
              fixtures[f].name);
        /* a bias alone makes the reads non-uniform */
        mesh.w.mesh[0].read_bias[1] = (real)0.75;
        CHECK(!same_logits(&mesh, &residual), "%s: a read bias changes nothing",
              fixtures[f].name);
        zero_mesh_routers(&mesh);
        mesh.w.mesh[0].write_bias[0] = (real)-0.5;
        mesh.w.mesh[0].read_bias[0] = (real)0.5;
        CHECK(!same_logits(&mesh, &residual), "%s: the write weights change nothing",
              fixtures[f].name);
        model_free(&mesh);
        model_free(&residual);
    }
}

/* The memory the observer sees: after iteration t's write, sum_b m_b =
 * h(0) + e(0) + ... + e(t) (the write weights sum to 1), and with zero
 * routers h(t+1) = S sum_b (1/S) m_b = sum_b m_b. Checked against the
 * token states observed in the same pass, to float rounding. */
typedef struct {
    int L, d, S, n_iters, memory_events;
    real *states;   /* (T + 1, L, d) */
    real *sums;     /* (T, L, d) */
} MemoryCheck;

static void collect_memory(void *user, const ObserveEvent *e) {
    MemoryCheck *c = user;
    size_t count = (size_t)c->L * c->d;
    if (e->site == OBSERVE_STATE) memcpy(c->states + e->iteration * count, e->data, count * sizeof(real));
    if (e->site != OBSERVE_MEMORY) return;
    c->memory_events++;
    real *sum = c->sums + e->iteration * count;
    for (size_t k = 0; k < count; k++) sum[k] += e->data[k];
}

static void test_mesh_memory_observed(void) {
    Fixture fixtures[FIXTURE_MESH_COUNT];
    fixtures_mesh(fixtures);
    const SpiralConfig *c = &fixtures[0].cfg;
    Model m;
    model_build(&m, c);
    fixture_random_weights(&m, 4);
    zero_mesh_routers(&m);
    int tokens[LENGTH];
    fixture_tokens(tokens, LENGTH, c->vocab_size, 1);
    MemoryCheck check = {LENGTH, c->d_model, c->mesh_slots, c->n_iters, 0, NULL, NULL};
    check.states = calloc((size_t)(c->n_iters + 1) * LENGTH * c->d_model, sizeof(real));
    check.sums = calloc((size_t)c->n_iters * LENGTH * c->d_model, sizeof(real));
    Observer observer = {collect_memory, &check, 0, NULL};
    model_forward(&m, tokens, NULL, 1, LENGTH, &observer);
    CHECK(check.memory_events == c->n_iters * c->mesh_slots, "memory observed %d times, expected %d",
          check.memory_events, c->n_iters * c->mesh_slots);
    double worst = 0, scale = 0;
    size_t count = (size_t)LENGTH * c->d_model;
    for (int t = 0; t < c->n_iters; t++)
        for (size_t k = 0; k < count; k++) {
            double h = check.states[(t + 1) * count + k];
            worst = fmax(worst, fabs(check.sums[t * count + k] - h));
            scale = fmax(scale, fabs(h));
        }
    CHECK(worst <= 1e-5 * scale, "sum of the slots vs h(t+1): max diff %.2e (max |h| %.2e)", worst,
          scale);
    free(check.states);
    free(check.sums);
    model_free(&m);
}

/* model_init_weights: the routers start at zero and draw no random
 * numbers, so a mesh model starts from the residual model's weights of the
 * same seed, and computes the same logits bit for bit. */
static void test_mesh_init(void) {
    Fixture fixtures[FIXTURE_MESH_COUNT];
    fixtures_mesh(fixtures);
    SpiralConfig residual_cfg = fixtures[0].cfg;
    residual_cfg.topology = TOPOLOGY_RESIDUAL;
    residual_cfg.mesh_slots = SPIRAL_DEFAULT_MESH_SLOTS;
    Model mesh, residual;
    model_build(&mesh, &fixtures[0].cfg);
    model_build(&residual, &residual_cfg);
    model_init_weights(&mesh, 77);
    model_init_weights(&residual, 77);
    int routers_zero = 1, others_equal = 1, routers = 0;
    for (int i = 0; i < mesh.layout.n_tensors; i++) {
        const ParamTensor *t = &mesh.layout.tensors[i];
        const real *v = mesh.params + t->offset;
        if (strstr(t->name, ".mesh.")) {
            routers++;
            for (size_t k = 0; k < t->numel; k++) routers_zero &= v[k] == 0;
            continue;
        }
        int j = param_layout_find(&residual.layout, t->name);
        others_equal &= j >= 0 && !memcmp(v, residual.params + residual.layout.tensors[j].offset,
                                          t->numel * sizeof(real));
    }
    CHECK(routers == 4 * mesh.cfg.n_iters && routers_zero, "init: %d router tensors, zero: %d", routers,
          routers_zero);
    CHECK(others_equal, "init: the mesh model's other weights differ from the residual model's");
    CHECK(same_logits(&mesh, &residual), "init: mesh and residual logits differ");
    model_free(&mesh);
    model_free(&residual);
}

/* spiral info's counts: the parameters model_cost counts are the layout's,
 * and the memory adds 8 L S d FLOPs to every iteration (full resolution
 * included) over the residual model. */
static void test_mesh_cost(void) {
    Fixture fixtures[FIXTURE_MESH_COUNT];
    int n = fixtures_mesh(fixtures);
    for (int f = 0; f < n; f++) {
        const SpiralConfig *c = &fixtures[f].cfg;
        SpiralConfig residual = *c;
        residual.topology = TOPOLOGY_RESIDUAL;
        residual.mesh_slots = SPIRAL_DEFAULT_MESH_SLOTS;
        ParamLayout layout;
        param_layout_build(&layout, c);
        ModelCost mesh_cost, residual_cost;
        model_cost(&mesh_cost, c, 100);
        model_cost(&residual_cost, &residual, 100);
        CHECK(mesh_cost.params == (double)layout.n_params, "%s: cost counts %.0f parameters, the layout %zu",
              fixtures[f].name, mesh_cost.params, layout.n_params);
        double extra = 8.0 * 100 * c->mesh_slots * c->d_model * c->n_iters;
        CHECK(mesh_cost.forward_flops - residual_cost.forward_flops == extra,
              "%s: mesh adds %.0f FLOPs, expected %.0f", fixtures[f].name,
              mesh_cost.forward_flops - residual_cost.forward_flops, extra);
        param_layout_free(&layout);
    }
}

/* A mesh model opens on the CPU engine; the CUDA engine (proven against
 * the CPU in tests/cuda/) is not in this build and says so. */
static void test_mesh_engine_open(void) {
    Fixture fixtures[FIXTURE_MESH_COUNT];
    fixtures_mesh(fixtures);
    Engine *engine = NULL;
    int status = engine_open(&engine, "cpu", NULL, &fixtures[0].cfg);
    CHECK(status == 0 && engine, "cpu with mesh: %s", spiral_last_error());
    if (engine) engine_free(engine);
    engine = NULL;
    if (!engine_cuda_available()) {
        status = engine_open(&engine, "cuda", NULL, &fixtures[0].cfg);
        CHECK(status == -1 && engine == NULL && strstr(spiral_last_error(), "make cuda"),
              "cuda without CUDA: status %d, message '%s'", status, spiral_last_error());
        if (engine) engine_free(engine);
    }
}

int main(int argc, char **argv) {
    test_out_of_memory_message();
    test_causality();
    test_core_exists_once();
    test_looped_equals_unrolled();
    test_alloc_zero_equals_copy();
    test_all_g1_equals_looped();
    test_init_reproducible();
    test_observer();
    test_mesh_causality();
    test_mesh_zero_routers_equal_residual();
    test_mesh_memory_observed();
    test_mesh_init();
    test_mesh_cost();
    test_mesh_engine_open();
    return test_summary(argv[0]);
}
