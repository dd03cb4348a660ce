/*
 * analyze_units.c: the layer applications ("units") of an analyzed run:
 * the prelude layers, the loop steps' layers, the coda layers, in that
 * order, and the unit each recorded attention_stats row belongs to. What a
 * step is (a dense model's core layer counts as one) and how its rows are
 * keyed comes from core/steps.h.
 */
#include <stdlib.h>
#include <string.h>

#include "analyze_parts.h"
#include "attention_stats.h"
#include "error.h"
#include "model.h"
#include "steps.h"

const char *analyze_block_name(int block) {
    static const char *const names[3] = {"pre", "loop", "post"};
    return block >= 0 && block < 3 ? names[block] : "?";
}

int analyze_build_units(AnalyzeRun *r) {
    const SpiralConfig *c = &r->cfg;
    r->n_steps = loop_steps(c);
    r->layers_per_step = loop_layers_per_step(c);
    r->n_units = c->n_pre + r->n_steps * r->layers_per_step + c->n_post;
    r->units = calloc((size_t)r->n_units, sizeof *r->units);
    r->step_g = calloc((size_t)r->n_steps, sizeof *r->step_g);
    r->step_uniform = calloc((size_t)r->n_steps, sizeof *r->step_uniform);
    int L = r->info.seq_len;
    int *pos = malloc((size_t)(L > 0 ? L : 1) * sizeof *pos);
    if (!r->units || !r->step_g || !r->step_uniform || !pos) {
        free(pos);
        return spiral_error("out of memory");
    }
    /* each step's uniform reference, from its rows' positions: latents at
     * their last member (steps.h), or every token */
    for (int t = 0; t < r->n_steps; t++) {
        int g = step_chunk_size(c, t), rows = L;
        ChunkGeometry geo;
        if (step_has_latents(c, t)) {
            if (site_geometry(c, "latent_in", t, g, L, &geo)) {
                free(pos);
                return -1;
            }
            site_row_positions(&geo, pos);
            rows = geo.J;
        } else {
            for (int i = 0; i < L; i++) pos[i] = i;
        }
        r->step_uniform[t] = attention_uniform_distance(pos, rows);
    }
    free(pos);
    int u = 0;
    for (int l = 0; l < c->n_pre; l++) r->units[u++] = (AnalyzeUnit){BLOCK_PRE, -1, l, -1, 1};
    for (int t = 0; t < r->n_steps; t++) {
        r->step_g[t] = step_chunk_size(c, t);
        for (int l = 0; l < r->layers_per_step; l++) {
            int key_step, key_layer;
            step_attention_key(c, t, l, &key_step, &key_layer);
            r->units[u++] = (AnalyzeUnit){BLOCK_LOOP, t, l, key_step, r->step_g[t]};
        }
    }
    for (int l = 0; l < c->n_post; l++) r->units[u++] = (AnalyzeUnit){BLOCK_POST, -1, l, -1, 1};
    return 0;
}

/* Prelude and coda rows are blocks 'pre' and 'post' for every kind; a loop
 * row's (iteration, layer) is its step's attention key (steps.h). */
int analyze_unit_of_row(const AnalyzeRun *r, const char *block, int iteration, int layer) {
    int post_base = r->cfg.n_pre + r->n_steps * r->layers_per_step;
    if (!strcmp(block, "pre")) return layer >= 0 && layer < r->cfg.n_pre ? layer : -1;
    if (!strcmp(block, "post")) return layer >= 0 && layer < r->cfg.n_post ? post_base + layer : -1;
    if (strcmp(block, "loop")) return -1;
    int step, step_layer;
    if (!attention_key_step(&r->cfg, iteration, layer, &step, &step_layer)) return -1;
    return analyze_loop_unit(r, step, step_layer);
}

int analyze_loop_unit(const AnalyzeRun *r, int t, int l) {
    return r->cfg.n_pre + t * r->layers_per_step + l;
}
