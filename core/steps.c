/*
 * steps.c: the loop steps of a model and the recorded sites (steps.h).
 */
#include "steps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Spiral if any iteration compresses or shifts; otherwise dense with one
 * iteration, looped with several. */
ModelKind model_kind(const SpiralConfig *cfg) {
    for (int t = 0; t < cfg->n_iters; t++)
        if (cfg->schedule[t].g != 1 || cfg->schedule[t].shift != 0) return KIND_SPIRAL;
    return cfg->n_iters == 1 ? KIND_DENSE : KIND_LOOPED;
}

const char *model_kind_name(ModelKind kind) {
    switch (kind) {
    case KIND_SPIRAL: return "spiral";
    case KIND_LOOPED: return "looped";
    case KIND_DENSE: return "dense";
    }
    return "unknown";
}

int loop_steps(const SpiralConfig *cfg) {
    return model_kind(cfg) == KIND_DENSE ? cfg->n_loop : cfg->n_iters;
}

int loop_layers_per_step(const SpiralConfig *cfg) {
    return model_kind(cfg) == KIND_DENSE ? 1 : cfg->n_loop;
}

int step_chunk_size(const SpiralConfig *cfg, int step) {
    if (model_kind(cfg) == KIND_DENSE || step < 0 || step >= cfg->n_iters) return 1;
    return cfg->schedule[step].g;
}

int step_has_latents(const SpiralConfig *cfg, int step) {
    if (model_kind(cfg) == KIND_DENSE || step < 0 || step >= cfg->n_iters) return 0;
    const IterSpec *spec = &cfg->schedule[step];
    return !(spec->g == 1 && spec->shift == 0);
}

int site_memory_slot(const char *site) {
    const char *digits = site + strlen("memory.");
    if (strncmp(site, "memory.", strlen("memory.")) || !*digits || strlen(digits) > 2) return -1;
    if (digits[0] == '0' && digits[1]) return -1;
    for (const char *c = digits; *c; c++)
        if (*c < '0' || *c > '9') return -1;
    return atoi(digits);
}

int memory_site_step(const SpiralConfig *cfg, int iteration) {
    return model_kind(cfg) == KIND_DENSE ? cfg->n_loop - 1 : iteration;
}

/* Sets key->site to name. */
static void set_site(SiteKey *key, const char *name) {
    snprintf(key->site, sizeof key->site, "%s", name);
}

int event_site(const ObserveEvent *e, const SpiralConfig *cfg, SiteKey *key) {
    int dense = model_kind(cfg) == KIND_DENSE;
    key->scale = 1;
    switch (e->site) {
    case OBSERVE_STATE:
        /* dense: h(1) is the last core layer's output, seen as LAYER_OUT */
        if (dense && e->iteration != 0) return 0;
        set_site(key, "token");
        key->step = e->iteration;
        return 1;
    case OBSERVE_LATENT_IN:
    case OBSERVE_LATENT_OUT:
        if (!step_has_latents(cfg, e->iteration)) return 0;
        set_site(key, e->site == OBSERVE_LATENT_IN ? "latent_in" : "latent_out");
        key->step = e->iteration;
        key->scale = e->g;
        return 1;
    case OBSERVE_CODA:
        set_site(key, "coda");
        key->step = loop_steps(cfg);
        return 1;
    case OBSERVE_LAYER_OUT:
        if (!dense || e->block != BLOCK_LOOP) return 0;
        set_site(key, "token");
        key->step = e->layer + 1;
        return 1;
    case OBSERVE_MEMORY:
        snprintf(key->site, sizeof key->site, "memory.%d", e->layer);
        key->step = memory_site_step(cfg, e->iteration);
        return 1;
    case OBSERVE_ATTENTION:
        return 0;
    }
    return 0;
}

void event_attention_key(const ObserveEvent *e, const SpiralConfig *cfg, int *step, int *layer) {
    if (model_kind(cfg) == KIND_DENSE && e->block == BLOCK_LOOP) {
        *step = e->layer + 1;
        *layer = 0;
    } else {
        *step = e->iteration;
        *layer = e->layer;
    }
}

int site_geometry(const SpiralConfig *cfg, const char *site, int step, int scale, int L,
                  ChunkGeometry *geo) {
    IterSpec spec = {1, 0, 0};
    int latent = !strcmp(site, "latent_in") || !strcmp(site, "latent_out");
    if (latent) {
        if (!step_has_latents(cfg, step))
            return spiral_error("site %s step %d: the run records latents only at steps that "
                                "compress or shift", site, step);
        if (cfg->schedule[step].g != scale)
            return spiral_error("site %s step %d has scale %d, but the run's step %d runs at "
                                "chunk size %d", site, step, scale, step, cfg->schedule[step].g);
        spec.g = scale;
        spec.offset = cfg->schedule[step].offset;
        spec.shift = scale - 1;
    } else if (!strcmp(site, "token") || !strcmp(site, "coda")) {
        if (scale != 1)
            return spiral_error("site %s step %d has scale %d, expected 1", site, step, scale);
        int last = loop_steps(cfg);
        if (step < 0 || step > last || (!strcmp(site, "coda") && step != last))
            return spiral_error("site %s step %d: the run has steps 0..%d (coda at %d)", site,
                                step, last, last);
    } else if (site_memory_slot(site) >= 0) {
        int slot = site_memory_slot(site), steps = loop_steps(cfg);
        if (cfg->topology != TOPOLOGY_MESH)
            return spiral_error("site %s: the run has no memory slots (topology %s, not mesh)",
                                site, config_topology_name(cfg->topology));
        if (slot >= cfg->mesh_slots)
            return spiral_error("site %s: the run's memory slots are memory.0 .. memory.%d "
                                "(mesh_slots %d)", site, cfg->mesh_slots - 1, cfg->mesh_slots);
        if (scale != 1)
            return spiral_error("site %s step %d has scale %d, expected 1", site, step, scale);
        int first = memory_site_step(cfg, 0), last = memory_site_step(cfg, cfg->n_iters - 1);
        if (step < first || step > last || step >= steps)
            return spiral_error("site %s step %d: the run records its memory at steps %d..%d",
                                site, step, first, last);
    } else {
        return spiral_error("unknown site '%s' (expected token, latent_in, latent_out, coda or "
                            "memory.b)", site);
    }
    *geo = chunk_geometry(L, &spec);
    return 0;
}

void site_row_positions(const ChunkGeometry *geo, int *pos) {
    chunk_positions(pos, geo);
}

void step_attention_key(const SpiralConfig *cfg, int step, int layer, int *key_step, int *key_layer) {
    /* the forward pass's event: a dense step is core layer `step` of its one iteration */
    int dense = model_kind(cfg) == KIND_DENSE;
    ObserveEvent event;
    memset(&event, 0, sizeof event);
    event.site = OBSERVE_ATTENTION;
    event.block = BLOCK_LOOP;
    event.iteration = dense ? 0 : step;
    event.layer = dense ? step : layer;
    event_attention_key(&event, cfg, key_step, key_layer);
}

int attention_key_step(const SpiralConfig *cfg, int key_step, int key_layer, int *step, int *layer) {
    int steps = loop_steps(cfg), layers = loop_layers_per_step(cfg);
    for (int t = 0; t < steps; t++)
        for (int l = 0; l < layers; l++) {
            int s, k;
            step_attention_key(cfg, t, l, &s, &k);
            if (s == key_step && k == key_layer) {
                *step = t;
                *layer = l;
                return 1;
            }
        }
    return 0;
}
