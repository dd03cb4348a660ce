/*
 * test_steps.c: the rules of core/steps.h.
 *
 *  - kinds: spiral, looped and dense derived from the schedule;
 *  - a real forward pass of each kind, every event mapped by event_site:
 *    the recorded set is exactly token 0..steps, coda at steps, and latent
 *    sites only at the steps that compress or shift (a dense model's core
 *    layers are its steps);
 *  - site_geometry: rows and positions of a latent site with an offset, and
 *    the errors for a wrong scale, an unknown site, a step out of range;
 *  - mesh: the memory sites memory.b, their steps and their checks.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fixtures.h"
#include "harness.h"
#include "model.h"
#include "steps.h"

#define MAX_KEYS 64

typedef struct {
    const SpiralConfig *cfg;
    int n;
    char site[MAX_KEYS][16];
    int step[MAX_KEYS], scale[MAX_KEYS];
} Seen;

/* Observer: collects the distinct site keys of every event. */
static void collect(void *user, const ObserveEvent *e) {
    Seen *seen = user;
    SiteKey key;
    if (!event_site(e, seen->cfg, &key)) return;
    for (int i = 0; i < seen->n; i++)
        if (!strcmp(seen->site[i], key.site) && seen->step[i] == key.step &&
            seen->scale[i] == key.scale)
            return;
    if (seen->n == MAX_KEYS) return;
    snprintf(seen->site[seen->n], sizeof seen->site[0], "%s", key.site);
    seen->step[seen->n] = key.step;
    seen->scale[seen->n] = key.scale;
    seen->n++;
}

static int has(const Seen *seen, const char *site, int step, int scale) {
    for (int i = 0; i < seen->n; i++)
        if (!strcmp(seen->site[i], site) && seen->step[i] == step && seen->scale[i] == scale) return 1;
    return 0;
}

/* Runs one forward pass of cfg and checks the recorded sites. */
static void check_sites(const char *name, SpiralConfig cfg, ModelKind kind, int steps) {
    CHECK(model_kind(&cfg) == kind, "%s: kind %s, expected %s", name,
          model_kind_name(model_kind(&cfg)), model_kind_name(kind));
    CHECK(loop_steps(&cfg) == steps, "%s: %d steps, expected %d", name, loop_steps(&cfg), steps);
    Model model;
    if (model_build(&model, &cfg)) {
        CHECK(0, "%s: model_build failed", name);
        return;
    }
    fixture_random_weights(&model, 7);
    int L = 11, tokens[11];
    fixture_tokens(tokens, L, cfg.vocab_size, 3);
    Seen seen = {.cfg = &cfg};
    Observer observer = {collect, &seen, 0, NULL};
    CHECK(model_forward(&model, tokens, NULL, 1, L, &observer) == 0, "%s: forward failed", name);
    int expected = 0;
    for (int t = 0; t <= steps; t++) {
        CHECK(has(&seen, "token", t, 1), "%s: no token state at step %d", name, t);
        expected++;
    }
    CHECK(has(&seen, "coda", steps, 1), "%s: no coda at step %d", name, steps);
    expected++;
    for (int t = 0; t < steps; t++) {
        if (!step_has_latents(&cfg, t)) continue;
        int g = step_chunk_size(&cfg, t);
        CHECK(has(&seen, "latent_in", t, g) && has(&seen, "latent_out", t, g),
              "%s: step %d (g = %d) has no latent sites", name, t, g);
        expected += 2;
    }
    CHECK(seen.n == expected, "%s: %d distinct recorded sites, expected %d", name, seen.n, expected);
    model_free(&model);
}

static void test_kinds_and_sites(void) {
    SpiralConfig spiral = fixture_base();
    int g[3] = {4, 2, 1};
    fixture_schedule(&spiral, 3, g, NULL, NULL);
    check_sites("spiral", spiral, KIND_SPIRAL, 3);
    CHECK(step_has_latents(&spiral, 0) && step_has_latents(&spiral, 1) &&
          !step_has_latents(&spiral, 2), "spiral: latents at steps 0 and 1 only");
    CHECK(step_chunk_size(&spiral, 1) == 2, "spiral: step 1 chunk size %d",
          step_chunk_size(&spiral, 1));

    SpiralConfig looped = fixture_base();
    int ones[3] = {1, 1, 1};
    fixture_schedule(&looped, 3, ones, NULL, NULL);
    check_sites("looped", looped, KIND_LOOPED, 3);

    SpiralConfig dense = fixture_base();
    fixture_schedule(&dense, 1, ones, NULL, NULL);
    dense.n_loop = 3;
    check_sites("dense", dense, KIND_DENSE, 3);
    CHECK(loop_layers_per_step(&dense) == 1 && loop_layers_per_step(&looped) == looped.n_loop,
          "layers per step: dense %d, looped %d", loop_layers_per_step(&dense),
          loop_layers_per_step(&looped));

    /* a full-resolution iteration with a shift is spiral and records latents */
    SpiralConfig shifted = fixture_base();
    int s1[2] = {1, 1}, shift[2] = {1, 0};
    fixture_schedule(&shifted, 2, s1, NULL, shift);
    CHECK(model_kind(&shifted) == KIND_SPIRAL && step_has_latents(&shifted, 0),
          "a shifted full-resolution iteration is spiral and records latents");
}

static void test_site_geometry(void) {
    SpiralConfig c = fixture_base();
    int g[2] = {4, 1}, w[2] = {2, 0};
    fixture_schedule(&c, 2, g, w, NULL);
    ChunkGeometry geo;
    CHECK(site_geometry(&c, "latent_in", 0, 4, 10, &geo) == 0, "latent site: error");
    int pos[8] = {0};
    site_row_positions(&geo, pos);
    /* chunks of (i + 2) / 4: {0,1}, {2..5}, {6..9}; last members 1, 5, 9 */
    CHECK(geo.J == 3 && pos[0] == 1 && pos[1] == 5 && pos[2] == 9,
          "latent rows: J %d, positions %d %d %d (expected 3: 1 5 9)", geo.J, pos[0], pos[1], pos[2]);
    CHECK(site_geometry(&c, "token", 2, 1, 10, &geo) == 0 && geo.J == 10 && geo.g == 1,
          "token site: %d rows", geo.J);
    CHECK(site_geometry(&c, "latent_in", 0, 2, 10, &geo) == -1, "latent at the wrong scale accepted");
    CHECK(site_geometry(&c, "latent_out", 1, 1, 10, &geo) == -1,
          "latent of a full-resolution step accepted");
    CHECK(site_geometry(&c, "token", 0, 4, 10, &geo) == -1, "token site at scale 4 accepted");
    CHECK(site_geometry(&c, "token", 3, 1, 10, &geo) == -1, "token step 3 of 2 accepted");
    CHECK(site_geometry(&c, "coda", 1, 1, 10, &geo) == -1, "coda before the last step accepted");
    CHECK(site_geometry(&c, "residual", 0, 1, 10, &geo) == -1, "unknown site accepted");
}

/* Topology mesh: a forward pass's memory events are the sites memory.b at
 * the step that ends each iteration (a dense model's last layer), and
 * site_geometry accepts exactly those. */
static void test_memory_sites(void) {
    const char *names[] = {"memory.0", "memory.12", "memory.63", "memory.", "memory.01", "memory.-1",
                           "memory.1x", "memory.100", "memoryx1"};
    int slots[] = {0, 12, 63, -1, -1, -1, -1, -1, -1};
    for (int i = 0; i < 9; i++)
        CHECK(site_memory_slot(names[i]) == slots[i], "site_memory_slot(%s) = %d, expected %d", names[i],
              site_memory_slot(names[i]), slots[i]);
    int spiral_g[3] = {4, 2, 1}, dense_g[1] = {1};
    for (int dense = 0; dense < 2; dense++) {
        SpiralConfig c = fixture_base();
        fixture_schedule(&c, dense ? 1 : 3, dense ? dense_g : spiral_g, NULL, NULL);
        if (dense) c.n_loop = 3;
        c.topology = TOPOLOGY_MESH;
        c.mesh_slots = 3;
        Model model;
        CHECK(model_build(&model, &c) == 0, "mesh build: %s", spiral_last_error());
        fixture_random_weights(&model, 7);
        int L = 11, tokens[11];
        fixture_tokens(tokens, L, c.vocab_size, 3);
        Seen seen = {.cfg = &c};
        Observer observer = {collect, &seen, 0, NULL};
        model_forward(&model, tokens, NULL, 1, L, &observer);
        int memory = 0;
        for (int i = 0; i < seen.n; i++) memory += !strncmp(seen.site[i], "memory.", 7);
        int steps = loop_steps(&c);
        CHECK(memory == 3 * c.n_iters, "%s: %d memory sites, expected %d", dense ? "dense" : "spiral", memory,
              3 * c.n_iters);
        for (int t = 0; t < c.n_iters; t++)
            CHECK(has(&seen, "memory.2", dense ? steps - 1 : t, 1), "%s: no memory.2 at iteration %d",
                  dense ? "dense" : "spiral", t);
        ChunkGeometry geo;
        int last = dense ? steps - 1 : c.n_iters - 1;
        CHECK(site_geometry(&c, "memory.2", last, 1, 10, &geo) == 0 && geo.J == 10 && geo.g == 1,
              "memory site rows: %s", spiral_last_error());
        CHECK(site_geometry(&c, "memory.3", last, 1, 10, &geo) == -1, "memory.3 of 3 slots accepted");
        CHECK(site_geometry(&c, "memory.0", last, 2, 10, &geo) == -1, "memory at scale 2 accepted");
        CHECK(site_geometry(&c, "memory.0", last + 1, 1, 10, &geo) == -1, "memory after the last step accepted");
        if (dense)
            CHECK(site_geometry(&c, "memory.0", 0, 1, 10, &geo) == -1, "dense memory at step 0 accepted");
        c.topology = TOPOLOGY_RESIDUAL;
        CHECK(site_geometry(&c, "memory.0", 0, 1, 10, &geo) == -1 && strstr(spiral_last_error(), "no memory"),
              "memory of a residual model accepted: %s", spiral_last_error());
        model_free(&model);
    }
}

int main(int argc, char **argv) {
    test_kinds_and_sites();
    test_site_geometry();
    test_memory_sites();
    return test_summary(argv[0]);
}
