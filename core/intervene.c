/*
 * intervene.c: interventions on the updates e(t) (intervene.h).
 */
#include "intervene.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* The hook: in the measuring phase sums (mean) or keeps (patch) e of the
 * chosen iterations; in the applying phase changes them. */
static void intervene(void *user, int t, real *e, int B, int L, int d) {
    Intervention *iv = user;
    if (t >= iv->n_iters || !iv->chosen[t]) return;
    size_t rows = (size_t)B * L;
    const InterventionSpec *spec = &iv->spec;
    if (iv->phase == 0) {
        if (spec->kind == INTERVENE_MEAN) {
            double *sum = iv->sum + (size_t)t * d;
            for (size_t r = 0; r < rows; r++)
                for (int k = 0; k < d; k++) sum[k] += e[r * d + k];
            if (t == iv->first_chosen) iv->count += (long long)rows; /* once per pass */
        } else if (spec->kind == INTERVENE_PATCH && L == iv->L) {
            memcpy(iv->source + (size_t)t * L * d, e, (size_t)L * d * sizeof(real));
        }
        return;
    }
    if (spec->kind == INTERVENE_ZERO) {
        memset(e, 0, rows * d * sizeof(real));
    } else if (spec->kind == INTERVENE_MEAN) {
        const double *sum = iv->sum + (size_t)t * d;
        for (size_t r = 0; r < rows; r++)
            for (int k = 0; k < d; k++) e[r * d + k] = (real)(sum[k] / (double)iv->count);
    } else if (spec->kind == INTERVENE_PATCH && L == iv->L) {
        int to = spec->pos_to > 0 ? spec->pos_to : L;
        for (int b = 0; b < B; b++)
            memcpy(e + ((size_t)b * L + spec->pos_from) * d,
                   iv->source + ((size_t)t * L + spec->pos_from) * d,
                   (size_t)(to - spec->pos_from) * d * sizeof(real));
    }
}

int intervention_init(Intervention *iv, const InterventionSpec *spec, const SpiralConfig *cfg,
                      int L) {
    memset(iv, 0, sizeof *iv);
    iv->spec = *spec;
    iv->n_iters = cfg->n_iters;
    iv->d = cfg->d_model;
    iv->L = L;
    const char *flag = spec->kind == INTERVENE_PATCH ? "--patch" : "--ablate";
    if (spec->level > 0) {
        int any = 0;
        for (int t = 0; t < cfg->n_iters; t++) any |= iv->chosen[t] = cfg->schedule[t].g == spec->level;
        if (!any) {
            char gs[256];
            size_t used = 0;
            for (int t = 0; t < cfg->n_iters && used + 12 < sizeof gs; t++)
                used += (size_t)snprintf(gs + used, sizeof gs - used, "%s%d", t ? "," : "",
                                         cfg->schedule[t].g);
            return spiral_error("--ablate-level: no iteration has chunk size g = %d (the "
                                "schedule is %s)", spec->level, gs);
        }
    } else {
        if (spec->iteration < 0 || spec->iteration >= cfg->n_iters)
            return spiral_error("%s: iteration %d is out of range (the model has iterations 0 .. "
                                "%d)", flag, spec->iteration, cfg->n_iters - 1);
        iv->chosen[spec->iteration] = 1;
    }
    while (!iv->chosen[iv->first_chosen]) iv->first_chosen++;
    if (spec->kind == INTERVENE_PATCH) {
        int to = spec->pos_to > 0 ? spec->pos_to : L;
        if (spec->pos_from < 0 || spec->pos_from >= to || to > L)
            return spiral_error("--positions: %d:%d is not a range of positions within 0:%d",
                                spec->pos_from, to, L);
        iv->source = calloc((size_t)cfg->n_iters * L * cfg->d_model, sizeof(real));
        if (!iv->source) return spiral_error("out of memory for the patch's source updates");
    }
    if (spec->kind == INTERVENE_MEAN) {
        iv->sum = calloc((size_t)cfg->n_iters * cfg->d_model, sizeof(double));
        if (!iv->sum) return spiral_error("out of memory for the mean updates");
    }
    iv->hook.fn = intervene;
    iv->hook.user = iv;
    iv->hook.iterations = iv->chosen; /* the others need no call (and no copy on a GPU) */
    return 0;
}

void intervention_free(Intervention *iv) {
    free(iv->sum);
    free(iv->source);
    memset(iv, 0, sizeof *iv);
}

const UpdateHook *intervention_measure_hook(Intervention *iv) {
    iv->phase = 0;
    return iv->spec.kind == INTERVENE_ZERO ? NULL : &iv->hook;
}

const UpdateHook *intervention_apply_hook(Intervention *iv) {
    iv->phase = 1;
    return &iv->hook;
}

void intervention_describe(char *out, size_t size, const InterventionSpec *spec) {
    const char *mode = spec->kind == INTERVENE_MEAN ? "mean" : "zero";
    if (spec->kind == INTERVENE_NONE) snprintf(out, size, "none");
    else if (spec->kind == INTERVENE_PATCH && spec->pos_to > 0)
        snprintf(out, size, "patch %d positions %d:%d", spec->iteration, spec->pos_from,
                 spec->pos_to);
    else if (spec->kind == INTERVENE_PATCH)
        snprintf(out, size, "patch %d positions %d:end", spec->iteration, spec->pos_from);
    else if (spec->level > 0) snprintf(out, size, "ablate-level %d %s", spec->level, mode);
    else snprintf(out, size, "ablate %d %s", spec->iteration, mode);
}
