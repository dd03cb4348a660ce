/*
 * depth.c: a trained model under another schedule (depth.h).
 */
#include "depth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int depth_parse_schedule(const char *flag, const char *text, int *g, int *n) {
    *n = 0;
    const char *p = text;
    if (!*p) return spiral_error("%s: expected chunk sizes separated by commas, e.g. 8,4,2,1; "
                                 "got an empty list", flag);
    for (;;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0'))
            return spiral_error("%s: expected chunk sizes separated by commas, e.g. 8,4,2,1; "
                                "entry %d of '%s' is not an integer", flag, *n + 1, text);
        if (v < 1 || v > 65536)
            return spiral_error("%s: entry %d is g = %ld; a chunk size must be in [1, 65536]",
                                flag, *n + 1, v);
        if (*n == SPIRAL_MAX_ITERS)
            return spiral_error("%s: more than %d iterations", flag, SPIRAL_MAX_ITERS);
        g[(*n)++] = (int)v;
        if (*end == '\0') break;
        p = end + 1;
    }
    return 0;
}

int depth_sources(int *source, const SpiralConfig *trained, const int *g, int n) {
    int needs_params = trained->down == DOWN_SELFAGG || trained->up == UP_ALLOC;
    for (int t = 0; t < n; t++) {
        source[t] = -1;
        if (t < trained->n_iters && trained->schedule[t].g == g[t]) {
            source[t] = t;
            continue;
        }
        for (int k = trained->n_iters - 1; k >= 0; k--)
            if (trained->schedule[k].g == g[t]) {
                source[t] = k;
                break;
            }
        if (source[t] < 0 && needs_params) {
            char trained_gs[256];
            size_t used = 0;
            for (int k = 0; k < trained->n_iters && used + 12 < sizeof trained_gs; k++)
                used += (size_t)snprintf(trained_gs + used, sizeof trained_gs - used, "%s%d",
                                         k ? "," : "", trained->schedule[k].g);
            return spiral_error("--schedule: iteration %d has g = %d, but no trained iteration "
                                "has g = %d (trained schedule %s), and this model's %s%s%s "
                                "needs per-iteration parameters learned at that chunk size",
                                t, g[t], g[t], trained_gs,
                                trained->down == DOWN_SELFAGG ? "down 'selfagg'" : "",
                                trained->down == DOWN_SELFAGG && trained->up == UP_ALLOC ? " and "
                                                                                         : "",
                                trained->up == UP_ALLOC ? "up 'alloc'" : "");
        }
    }
    return 0;
}

/* The iteration index of a parameter name "iter.{t}.rest" (*rest set to
 * "rest"), or -1 for a shared tensor. */
static int iteration_of(const char *name, const char **rest) {
    if (strncmp(name, "iter.", 5)) return -1;
    char *end;
    long t = strtol(name + 5, &end, 10);
    if (*end != '.') return -1;
    *rest = end + 1;
    return (int)t;
}

/* Builds *out for cfg and copies trained's weights into it: shared tensors
 * by name, iteration t's tensors from iteration source[t]. A tensor the
 * trained model lacks is an error, unless zero_missing: then it stays 0. */
static int build_mapped(Model *out, const Model *trained, const SpiralConfig *cfg,
                        const int *source, int zero_missing) {
    if (config_validate(cfg)) return spiral_error_prefix("--schedule");
    if (model_build(out, cfg)) return -1;
    const ParamLayout *to = &out->layout, *from = &trained->layout;
    for (int k = 0; k < to->n_tensors; k++) {
        const ParamTensor *pt = &to->tensors[k];
        const char *rest;
        char name[PARAM_NAME_CAP + 16];
        int t = iteration_of(pt->name, &rest);
        if (t < 0) snprintf(name, sizeof name, "%s", pt->name);
        else snprintf(name, sizeof name, "iter.%d.%s", source[t], rest);
        int f = t >= 0 && source[t] < 0 ? -1 : param_layout_find(from, name);
        if (f >= 0 && from->tensors[f].numel == pt->numel)
            memcpy(out->params + pt->offset, trained->params + from->tensors[f].offset,
                   pt->numel * sizeof(real));
        else if (!zero_missing) {
            model_free(out);
            return spiral_error("--schedule: no trained tensor %s for %s", name, pt->name);
        }
    }
    return 0;
}

int depth_model_build(Model *out, const Model *trained, const int *g, int n) {
    int source[SPIRAL_MAX_ITERS];
    const SpiralConfig *tc = &trained->cfg;
    if (depth_sources(source, tc, g, n)) return -1;
    SpiralConfig cfg = *tc;
    cfg.n_iters = n;
    for (int t = 0; t < n; t++) {
        if (source[t] >= 0) cfg.schedule[t] = tc->schedule[source[t]];
        else cfg.schedule[t] = (IterSpec){.g = g[t], .offset = 0, .shift = g[t] - 1};
    }
    for (int t = n; t < SPIRAL_MAX_ITERS; t++) cfg.schedule[t] = (IterSpec){0};
    return build_mapped(out, trained, &cfg, source, 0);
}

int depth_exit_model_build(Model *out, const Model *trained, int t, int with_coda) {
    const SpiralConfig *tc = &trained->cfg;
    if (t < 0 || t > tc->n_iters)
        return spiral_error("exit after iteration %d: the model has iterations 0 .. %d", t,
                            tc->n_iters);
    int source[SPIRAL_MAX_ITERS];
    SpiralConfig cfg = *tc;
    if (!with_coda) cfg.n_post = 0;
    if (t == 0) {
        /* one full-resolution residual iteration through a single layer of
         * zero weights: h(1) = h(0) + 0 + 0 = h(0) */
        cfg.n_iters = 1;
        cfg.n_loop = 1;
        cfg.down = DOWN_MEAN;
        cfg.up = UP_COPY;
        cfg.topology = TOPOLOGY_RESIDUAL;
        cfg.schedule[0] = (IterSpec){.g = 1, .offset = 0, .shift = 0};
        source[0] = -1;
        for (int k = 1; k < SPIRAL_MAX_ITERS; k++) cfg.schedule[k] = (IterSpec){0};
        if (build_mapped(out, trained, &cfg, source, 1)) return -1;
        for (int k = 0; k < out->layout.n_tensors; k++) {
            const ParamTensor *pt = &out->layout.tensors[k];
            if (!strncmp(pt->name, "loop.", 5))
                memset(out->params + pt->offset, 0, pt->numel * sizeof(real));
        }
        return 0;
    }
    cfg.n_iters = t;
    for (int k = 0; k < t; k++) source[k] = k;
    for (int k = t; k < SPIRAL_MAX_ITERS; k++) cfg.schedule[k] = (IterSpec){0};
    return build_mapped(out, trained, &cfg, source, 0);
}
