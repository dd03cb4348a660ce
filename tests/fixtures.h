/*
 * fixtures.h: small model configurations covering every option of the
 * family, and deterministic random weights/tokens, shared by the model tests.
 */
#ifndef SPIRAL_TEST_FIXTURES_H
#define SPIRAL_TEST_FIXTURES_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "model.h"

/* xorshift64* pseudo-random numbers: the tests need no statistical quality,
 * only determinism. */
static uint64_t fixture_state = 0x9E3779B97F4A7C15ull;
static void fixture_seed(uint64_t seed) { fixture_state = seed * 0x9E3779B97F4A7C15ull + 1; }
static uint64_t fixture_next(void) {
    fixture_state ^= fixture_state >> 12;
    fixture_state ^= fixture_state << 25;
    fixture_state ^= fixture_state >> 27;
    return fixture_state * 0x2545F4914F6CDD1Dull;
}
/* Uniform in [-1, 1). */
static double fixture_uniform(void) { return (double)(fixture_next() >> 11) / 4503599627370496.0 - 1.0; }

typedef struct {
    const char *name;
    SpiralConfig cfg;
} Fixture;

/* A tiny base config: V=11, d=8, H=2, F=12. */
static SpiralConfig fixture_base(void) {
    SpiralConfig c;
    config_default(&c);
    c.vocab_size = 11;
    c.d_model = 8;
    c.n_heads = 2;
    c.d_ff = 12;
    c.n_pre = 1;
    c.n_loop = 2;
    c.n_post = 1;
    return c;
}

static void fixture_schedule(SpiralConfig *c, int n, const int *g, const int *offset,
                             const int *shift) {
    c->n_iters = n;
    for (int t = 0; t < n; t++) {
        c->schedule[t].g = g[t];
        c->schedule[t].offset = offset ? offset[t] : 0;
        c->schedule[t].shift = shift && shift[t] >= 0 ? shift[t] : g[t] - 1;
    }
}

#define FIXTURE_COUNT 8

/* Every kind and option: spiral (both down, both up, both topologies,
 * offsets, no-overlap shift, g in {1,2,3,4,8}), looped, dense, untied. */
static inline int fixtures_all(Fixture *out) {
    int n = 0;
    {
        SpiralConfig c = fixture_base();
        int g[] = {8, 4, 3, 2, 1}, w[] = {3, 1, 2, 1, 0};
        fixture_schedule(&c, 5, g, w, NULL);
        c.down = DOWN_SELFAGG; c.up = UP_ALLOC; c.topology = TOPOLOGY_RESIDUAL;
        out[n++] = (Fixture){"spiral selfagg/alloc/residual g=8,4,3,2,1 offsets", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {4, 3, 2, 1}, w[] = {2, 1, 0, 0}, s[] = {-1, -1, 2, -1};
        fixture_schedule(&c, 4, g, w, s);
        c.down = DOWN_MEAN; c.up = UP_COPY; c.topology = TOPOLOGY_ANCHOR;
        out[n++] = (Fixture){"spiral mean/copy/anchor g=4,3,2(no-overlap),1", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {8, 2, 4}, w[] = {5, 1, 3};
        fixture_schedule(&c, 3, g, w, NULL);
        c.down = DOWN_MEAN; c.up = UP_ALLOC; c.topology = TOPOLOGY_ANCHOR;
        c.n_pre = 0; c.n_post = 2;
        out[n++] = (Fixture){"spiral mean/alloc/anchor no prelude", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {3, 1, 2}, w[] = {1, 0, 0}, s[] = {4, 1, -1};
        fixture_schedule(&c, 3, g, w, s);
        c.down = DOWN_SELFAGG; c.up = UP_COPY; c.topology = TOPOLOGY_RESIDUAL;
        c.tie_embeddings = 0; c.n_post = 0; c.n_pre = 2;
        out[n++] = (Fixture){"spiral selfagg/copy/residual untied, no-overlap shifts", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {8, 4, 2, 1}, w[] = {0, 0, 0, 0};
        fixture_schedule(&c, 4, g, w, NULL);
        c.down = DOWN_SELFAGG; c.up = UP_ALLOC; c.topology = TOPOLOGY_ANCHOR;
        out[n++] = (Fixture){"spiral selfagg/alloc/anchor g=8,4,2,1", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {1, 1, 1};
        fixture_schedule(&c, 3, g, NULL, NULL);
        c.down = DOWN_MEAN; c.up = UP_COPY; c.topology = TOPOLOGY_RESIDUAL;
        out[n++] = (Fixture){"looped baseline (g=1 x3, residual)", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {1, 1};
        fixture_schedule(&c, 2, g, NULL, NULL);
        c.down = DOWN_SELFAGG; c.up = UP_ALLOC; c.topology = TOPOLOGY_ANCHOR;
        out[n++] = (Fixture){"looped anchor (g=1 x2)", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {1};
        fixture_schedule(&c, 1, g, NULL, NULL);
        c.n_pre = 0; c.n_loop = 3; c.n_post = 0;
        c.down = DOWN_MEAN; c.up = UP_COPY; c.topology = TOPOLOGY_RESIDUAL;
        out[n++] = (Fixture){"dense baseline (3 layers)", c};
    }
    return n;
}

#define FIXTURE_MESH_COUNT 6

/* Topology mesh over every kind and option (kept apart from fixtures_all,
 * which the CUDA engine's tests also use, and which does not run mesh):
 * both down, both up, offsets, no-overlap shifts, 2..4 slots, tied and
 * untied, with and without prelude and coda. */
static inline int fixtures_mesh(Fixture *out) {
    int n = 0;
    {
        SpiralConfig c = fixture_base();
        int g[] = {8, 4, 3, 2, 1}, w[] = {3, 1, 2, 1, 0};
        fixture_schedule(&c, 5, g, w, NULL);
        c.down = DOWN_SELFAGG; c.up = UP_ALLOC; c.topology = TOPOLOGY_MESH; c.mesh_slots = 4;
        out[n++] = (Fixture){"mesh(4) selfagg/alloc g=8,4,3,2,1 offsets", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {4, 3, 2, 1}, w[] = {2, 1, 0, 0}, s[] = {-1, -1, 2, -1};
        fixture_schedule(&c, 4, g, w, s);
        c.down = DOWN_MEAN; c.up = UP_COPY; c.topology = TOPOLOGY_MESH; c.mesh_slots = 3;
        out[n++] = (Fixture){"mesh(3) mean/copy g=4,3,2(no-overlap),1", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {3, 1, 2}, w[] = {1, 0, 0}, s[] = {4, 1, -1};
        fixture_schedule(&c, 3, g, w, s);
        c.down = DOWN_SELFAGG; c.up = UP_ALLOC; c.topology = TOPOLOGY_MESH; c.mesh_slots = 2;
        c.tie_embeddings = 0; c.n_pre = 0; c.n_post = 2;
        out[n++] = (Fixture){"mesh(2) selfagg/alloc untied, no prelude, no-overlap shifts", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {2, 4}, w[] = {1, 3}, s[] = {5, -1};
        fixture_schedule(&c, 2, g, w, s);
        c.down = DOWN_MEAN; c.up = UP_ALLOC; c.topology = TOPOLOGY_MESH; c.mesh_slots = 5;
        c.n_post = 0;
        out[n++] = (Fixture){"mesh(5) mean/alloc g=2(s=5),4 offsets, no coda", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {1, 1, 1};
        fixture_schedule(&c, 3, g, NULL, NULL);
        c.down = DOWN_MEAN; c.up = UP_COPY; c.topology = TOPOLOGY_MESH; c.mesh_slots = 4;
        out[n++] = (Fixture){"looped mesh(4) (g=1 x3)", c};
    }
    {
        SpiralConfig c = fixture_base();
        int g[] = {1};
        fixture_schedule(&c, 1, g, NULL, NULL);
        c.n_pre = 0; c.n_loop = 3; c.n_post = 0;
        c.down = DOWN_MEAN; c.up = UP_COPY; c.topology = TOPOLOGY_MESH; c.mesh_slots = 2;
        out[n++] = (Fixture){"dense mesh(2) (3 layers)", c};
    }
    return n;
}

/* Fills every parameter with random values large enough that every path
 * matters: gains 1 + 0.2 u, selfagg scores, alloc weights and mesh routers 0.5 u,
 * matrices 0.4 u (u uniform in [-1, 1)). */
static inline void fixture_random_weights(Model *m, uint64_t seed) {
    fixture_seed(seed);
    for (int i = 0; i < m->layout.n_tensors; i++) {
        const ParamTensor *t = &m->layout.tensors[i];
        real *v = m->params + t->offset;
        int is_gain = strstr(t->name, "norm.weight") != NULL;
        int is_iter = strncmp(t->name, "iter.", 5) == 0;
        for (size_t k = 0; k < t->numel; k++) {
            double u = fixture_uniform();
            v[k] = (real)(is_gain ? 1 + 0.2 * u : is_iter ? 0.5 * u : 0.4 * u);
        }
    }
}

/* Random tokens (n) in [0, V). */
static void fixture_tokens(int *tokens, int n, int V, uint64_t seed) {
    fixture_seed(seed);
    for (int i = 0; i < n; i++) tokens[i] = (int)(fixture_next() % (uint64_t)V);
}

#endif
