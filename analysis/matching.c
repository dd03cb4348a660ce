/*
 * matching.c: derives the looped and dense baselines of a spiral
 * configuration and their parameter / FLOP mismatches (definitions in
 * matching.h; counts from core/cost.c).
 */
#include "matching.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cost.h"
#include "error.h"
#include "steps.h"

/* Largest n_loop the search considers; far beyond any trainable model, it
 * keeps N and the counts exact in double precision. */
enum { MATCHING_MAX_LAYERS = 1 << 24 };

enum { MATCH_PARAMS = 0, MATCH_FLOPS = 1 };

/* The dense relative of spiral: schedule [1] and n_loop core layers; a
 * plain Transformer (residual) when the spiral's topology is mesh, whose
 * memory has nothing to carry across a single iteration. */
static void make_dense(SpiralConfig *dense, const SpiralConfig *spiral, int n_loop) {
    *dense = *spiral;
    if (dense->topology == TOPOLOGY_MESH) {
        dense->topology = TOPOLOGY_RESIDUAL;
        dense->mesh_slots = SPIRAL_DEFAULT_MESH_SLOTS;
    }
    memset(dense->schedule, 0, sizeof dense->schedule);
    dense->n_iters = 1;
    dense->schedule[0].g = 1;
    dense->schedule[0].offset = 0;
    dense->schedule[0].shift = 0;
    dense->n_loop = n_loop;
}

/* The quantity matched: non-embedding parameters or forward FLOPs at L. */
static double matched_value(const SpiralConfig *cfg, int L, int what) {
    ModelCost cost;
    model_cost(&cost, cfg, L);
    return what == MATCH_PARAMS ? cost.params_nonembedding : cost.forward_flops;
}

/* Fills counts and mismatches of out->cfg against the spiral's targets. */
static void measure(MatchedBaseline *out, const MatchedBaselines *m) {
    ModelCost cost;
    model_cost(&cost, &out->cfg, m->L);
    out->params = cost.params;
    out->params_nonembedding = cost.params_nonembedding;
    out->forward_flops = cost.forward_flops;
    out->params_mismatch = (cost.params_nonembedding - m->params_nonembedding) / m->params_nonembedding;
    out->flops_mismatch = (cost.forward_flops - m->forward_flops) / m->forward_flops;
}

/* The dense baseline whose n_loop brings `what` closest to target. The
 * value is affine in n_loop: estimate N from the slope, then compare N - 1,
 * N and N + 1 so that rounding cannot miss the optimum. */
static int derive_dense(MatchedBaseline *out, const MatchedBaselines *m, int what, double target) {
    SpiralConfig dense;
    make_dense(&dense, &m->spiral, 1);
    double value_one = matched_value(&dense, m->L, what);
    make_dense(&dense, &m->spiral, 2);
    double step = matched_value(&dense, m->L, what) - value_one;
    if (!(step > 0)) return spiral_error("matching: one core layer adds no %s", what == MATCH_PARAMS ? "parameters" : "FLOPs");
    double estimate = 1 + floor((target - value_one) / step + 0.5);
    if (estimate > MATCHING_MAX_LAYERS)
        return spiral_error("matching: the dense baseline would need about %.0f core layers (more than %d)",
                            estimate, MATCHING_MAX_LAYERS);
    int center = estimate < 1 ? 1 : (int)estimate;
    int best = -1;
    double best_distance = INFINITY;
    for (int n_loop = center - 1; n_loop <= center + 1; n_loop++) {
        if (n_loop < 1) continue;
        make_dense(&dense, &m->spiral, n_loop);
        double distance = fabs(matched_value(&dense, m->L, what) - target);
        if (distance < best_distance) { /* strict: ties keep the smaller n_loop */
            best_distance = distance;
            best = n_loop;
        }
    }
    make_dense(&out->cfg, &m->spiral, best);
    if (config_validate(&out->cfg)) return spiral_error_prefix("matching: derived dense config");
    measure(out, m);
    out->step = step;
    out->clamped = best == 1 && value_one > target + step / 2;
    snprintf(out->rule, sizeof out->rule,
             "schedule [1], n_loop = %d: %s closest to the spiral's %.0f (one core layer = %.0f)%s", best,
             what == MATCH_PARAMS ? "non-embedding parameters" : "forward FLOPs", target, step,
             out->clamped ? "; n_loop = 1 is the minimum, the target is smaller" : "");
    return 0;
}

int matching_derive(MatchedBaselines *out, const SpiralConfig *spiral, int L) {
    if (L < 1) return spiral_error("matching: expected a sequence length L >= 1, got %d", L);
    if (config_validate(spiral)) return spiral_error_prefix("matching: spiral config");
    memset(out, 0, sizeof *out);
    out->L = L;
    out->spiral = *spiral;
    ModelCost cost;
    model_cost(&cost, spiral, L);
    out->params = cost.params;
    out->params_nonembedding = cost.params_nonembedding;
    out->forward_flops = cost.forward_flops;

    /* (a) looped: every iteration at full resolution. */
    MatchedBaseline *looped = &out->looped;
    looped->cfg = *spiral;
    for (int t = 0; t < spiral->n_iters; t++) {
        looped->cfg.schedule[t].g = 1;
        looped->cfg.schedule[t].offset = 0;
        looped->cfg.schedule[t].shift = 0;
    }
    if (config_validate(&looped->cfg)) return spiral_error_prefix("matching: derived looped config");
    measure(looped, out);
    out->looped_param_difference = out->params - looped->params;
    int n = snprintf(looped->rule, sizeof looped->rule,
                     "every schedule entry g = 1, offset 0, shift 0 (T = %d, n_loop = %d)", spiral->n_iters,
                     spiral->n_loop);
    if (out->looped_param_difference != 0 && n > 0 && (size_t)n < sizeof looped->rule)
        snprintf(looped->rule + n, sizeof looped->rule - (size_t)n,
                 "; %.0f fewer parameters than the spiral: iter.t.up.alloc shrinks from (g_t, d) to (1, d)",
                 out->looped_param_difference);

    /* (b) dense at equal non-embedding parameters, (c) at equal FLOPs. */
    if (derive_dense(&out->dense_params, out, MATCH_PARAMS, out->params_nonembedding)) return -1;
    if (derive_dense(&out->dense_flops, out, MATCH_FLOPS, out->forward_flops)) return -1;
    return 0;
}

/* Appends printf-style text at *used in text (size); -1 if it does not fit. */
static int append(char *text, size_t size, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int append(char *text, size_t size, size_t *used, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text + *used, size - *used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size - *used)
        return spiral_error("matching: the derivation text does not fit in %zu bytes", size);
    *used += (size_t)n;
    return 0;
}

/* One table row: name, T, n_loop, P, its mismatch, F, its mismatch. */
static int append_row(char *text, size_t size, size_t *used, const char *name, const SpiralConfig *cfg,
                      double params, double params_mismatch, double flops, double flops_mismatch) {
    return append(text, size, used, "%-16s %3d %6d %14.0f %+9.4f%% %16.0f %+9.4f%%\n", name, cfg->n_iters,
                  cfg->n_loop, params, 100 * params_mismatch, flops, 100 * flops_mismatch);
}

int matching_format(char *text, size_t size, const MatchedBaselines *m) {
    size_t used = 0;
    if (!text || size == 0) return spiral_error("matching: no buffer for the derivation text");
    text[0] = '\0';
    const MatchedBaseline *rows[3] = {&m->looped, &m->dense_params, &m->dense_flops};
    const char *names[3] = {"looped", "dense (params)", "dense (FLOPs)"};
    if (append(text, size, &used, "baselines of a %s model at L = %d\n", model_kind_name(model_kind(&m->spiral)), m->L)) return -1;
    if (append(text, size, &used, "%-16s %3s %6s %14s %10s %16s %10s\n", "kind", "T", "n_loop",
               "params (no emb)", "mismatch", "forward FLOPs", "mismatch"))
        return -1;
    if (append_row(text, size, &used, "spiral", &m->spiral, m->params_nonembedding, 0, m->forward_flops, 0))
        return -1;
    for (int i = 0; i < 3; i++)
        if (append_row(text, size, &used, names[i], &rows[i]->cfg, rows[i]->params_nonembedding,
                       rows[i]->params_mismatch, rows[i]->forward_flops, rows[i]->flops_mismatch))
            return -1;
    for (int i = 0; i < 3; i++)
        if (append(text, size, &used, "%s: %s\n", names[i], rows[i]->rule)) return -1;
    return 0;
}
