/*
 * report_ablation.c: the ablation table of a report (definitions in
 * report_ablation.h): which group is the base, what each variant changes,
 * its loss at equal FLOPs against the base's, and the paper's direction.
 */
#include "report_ablation.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* name without a trailing "-s<digits>" (the seed suffix of spiral sweep). */
static void strip_seed(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s", name);
    char *dash = strrchr(out, '-');
    if (!dash || dash[1] != 's' || !dash[2]) return;
    for (const char *p = dash + 2; *p; p++)
        if (*p < '0' || *p > '9') return;
    *dash = 0;
}

/* "8,4,2,1": the chunk sizes of a schedule. */
static void format_chunks(char *out, size_t size, const SpiralConfig *cfg) {
    size_t used = 0;
    out[0] = 0;
    for (int t = 0; t < cfg->n_iters && used + 1 < size; t++)
        used += (size_t)snprintf(out + used, size - used, "%s%d", t ? "," : "", cfg->schedule[t].g);
}

/* Share of the layer applications spent in the loop: T n_loop / (n_pre +
 * T n_loop + n_post), the recurrence ratio. */
static double recurrence_ratio(const SpiralConfig *cfg) {
    double looped = (double)cfg->n_iters * cfg->n_loop;
    return looped / (cfg->n_pre + looped + cfg->n_post);
}

/* 1 if the two schedules have the same chunk sizes in the same order. */
static int same_chunks(const SpiralConfig *a, const SpiralConfig *b) {
    if (a->n_iters != b->n_iters) return 0;
    for (int t = 0; t < a->n_iters; t++)
        if (a->schedule[t].g != b->schedule[t].g) return 0;
    return 1;
}

/* 1 if the schedule has an iteration at full resolution (g = 1). */
static int has_full_resolution(const SpiralConfig *cfg) {
    for (int t = 0; t < cfg->n_iters; t++)
        if (cfg->schedule[t].g == 1) return 1;
    return 0;
}

/* Fills row->change, ->paper and ->expected from how variant differs
 * from base (the model configs). */
static void describe_change(AblationRow *row, const SpiralConfig *v, const SpiralConfig *b) {
    int chunks = !same_chunks(v, b), offsets = 0, shifts = 0;
    int down = v->down != b->down, up = v->up != b->up, topology = v->topology != b->topology;
    int depth = v->n_pre != b->n_pre || v->n_loop != b->n_loop || v->n_post != b->n_post;
    int other = v->d_model != b->d_model || v->n_heads != b->n_heads || v->d_ff != b->d_ff ||
                v->vocab_size != b->vocab_size || v->tie_embeddings != b->tie_embeddings;
    if (!chunks)
        for (int t = 0; t < v->n_iters; t++) {
            offsets |= v->schedule[t].offset != b->schedule[t].offset;
            shifts |= v->schedule[t].shift != b->schedule[t].shift;
        }
    int changes = chunks + (offsets || shifts) + down + up + topology + depth + other;
    char vs[128], bs[128];
    format_chunks(vs, sizeof vs, v);
    format_chunks(bs, sizeof bs, b);
    row->expected = 0;
    snprintf(row->paper, sizeof row->paper, "not reported");
    if (changes != 1) {
        snprintf(row->change, sizeof row->change, "%s", changes ? "several changes at once" : "no change in the model");
        return;
    }
    if (chunks) {
        int reversed = v->n_iters == b->n_iters;
        for (int t = 0; t < v->n_iters && reversed; t++)
            reversed = v->schedule[t].g == b->schedule[b->n_iters - 1 - t].g;
        if (reversed) {
            snprintf(row->change, sizeof row->change, "schedule order reversed: g = %.100s (base %.100s)", vs, bs);
            snprintf(row->paper, sizeof row->paper, "worse: coarse-to-fine beats fine-to-coarse by ~0.24 perplexity");
            row->expected = 1;
        } else if (has_full_resolution(b) && !has_full_resolution(v)) {
            snprintf(row->change, sizeof row->change, "no full-resolution iteration: g = %.100s (base %.100s)", vs, bs);
            snprintf(row->paper, sizeof row->paper, "better: a variant without full resolution is reported best");
            row->expected = -1;
        } else {
            snprintf(row->change, sizeof row->change, "schedule g = %.100s (base %.100s)", vs, bs);
        }
    } else if (offsets || shifts) {
        int no_overlap = shifts && !offsets;
        for (int t = 0; t < v->n_iters && no_overlap; t++) no_overlap = v->schedule[t].shift >= v->schedule[t].g;
        size_t used = (size_t)snprintf(row->change, sizeof row->change, "%s", no_overlap ? "no-overlap shift:" : "offsets and shifts:");
        for (int t = 0; t < v->n_iters && used + 1 < sizeof row->change; t++)
            used += (size_t)snprintf(row->change + used, sizeof row->change - used, " (g %d, w %d, s %d)",
                                     v->schedule[t].g, v->schedule[t].offset, v->schedule[t].shift);
        if (no_overlap) {
            snprintf(row->paper, sizeof row->paper, "worse: no-overlap (s >= g) loses quality");
            row->expected = 1;
        }
    } else if (down) {
        snprintf(row->change, sizeof row->change, "down-scaling %s (base %s)", config_down_name(v->down),
                 config_down_name(b->down));
    } else if (up) {
        snprintf(row->change, sizeof row->change, "up-scaling %s (base %s)", config_up_name(v->up),
                 config_up_name(b->up));
    } else if (topology) {
        snprintf(row->change, sizeof row->change, "topology %s (base %s)", config_topology_name(v->topology),
                 config_topology_name(b->topology));
        snprintf(row->paper, sizeof row->paper, "not reported against %s", config_topology_name(b->topology));
    } else if (depth) {
        double rv = recurrence_ratio(v), rb = recurrence_ratio(b);
        snprintf(row->change, sizeof row->change, "depth %d + %d x %d + %d: recurrence ratio %.2f (base %.2f)",
                 v->n_pre, v->n_iters, v->n_loop, v->n_post, rv, rb);
        if (rv > rb) {
            snprintf(row->paper, sizeof row->paper, "worse: too large a share of looped depth hurts");
            row->expected = 1;
        }
    } else {
        snprintf(row->change, sizeof row->change, "width, heads, vocabulary or embeddings");
    }
}

/* The finite readings at equal FLOPs of a group's runs into values. */
static int group_values(double *values, const Comparison *c, const CompareGroup *group) {
    int n = 0;
    for (int m = 0; m < group->n; m++) {
        double loss = c->runs[group->members[m]].at_flops.loss;
        if (isfinite(loss)) values[n++] = loss;
    }
    return n;
}

/* Fills the numbers of row: variant group g against reference group ref. */
static int measure_row(AblationRow *row, const Comparison *c, int g, int ref) {
    const CompareGroup *vg = &c->groups[g], *rg = &c->groups[ref];
    row->group = g;
    row->reference = ref;
    row->loss = vg->loss_at_flops;
    row->n = vg->loss_at_flops.n;
    row->flops_ratio = vg->read_flops / rg->read_flops;
    row->equal_flops = isfinite(row->flops_ratio) && fabs(row->flops_ratio - 1) <= c->budget_tolerance;
    row->delta.n = 0;
    row->delta.mean = row->delta.lo = row->delta.hi = row->delta_ppl = NAN;
    row->verdict = "-";
    double *a = malloc((size_t)(vg->n + rg->n) * sizeof *a);
    if (!a) return spiral_error("out of memory building the ablation table");
    double *b = a + vg->n;
    int n_a = group_values(a, c, vg), n_b = group_values(b, c, rg), status = 0;
    if (n_a > 0 && n_b > 0) {
        status = stats_diff_ci_welch(&row->delta, a, n_a, b, n_b, c->level);
        row->delta_ppl = exp(vg->loss_at_flops.mean) - exp(rg->loss_at_flops.mean);
        if (status == 0 && row->expected != 0) {
            if (row->delta.zero_width || (row->delta.lo <= 0 && row->delta.hi >= 0)) row->verdict = "inconclusive";
            else row->verdict = (row->delta.mean > 0) == (row->expected > 0) ? "agrees" : "opposite";
        }
    }
    free(a);
    return status;
}

/* The index of the group whose model differs from base only in topology
 * `name`, or -1. */
static int topology_group(const Comparison *c, int base, const char *name) {
    const SpiralConfig *b = &c->runs[c->groups[base].members[0]].model;
    for (int g = 0; g < c->n_groups; g++) {
        SpiralConfig v = c->runs[c->groups[g].members[0]].model;
        if (g == base || strcmp(config_topology_name(v.topology), name)) continue;
        v.topology = b->topology;
        char *x = config_to_json(&v), *y = config_to_json(b);
        int same = x && y && !strcmp(x, y);
        free(x);
        free(y);
        if (same) return g;
    }
    return -1;
}

int ablation_table_build(AblationTable *table, const Comparison *c) {
    memset(table, 0, sizeof *table);
    table->base = -1;
    for (int g = 0; g < c->n_groups && table->base < 0; g++) {
        char name[128];
        strip_seed(name, sizeof name, c->runs[c->groups[g].members[0]].name);
        if (!strcmp(name, "base")) table->base = g;
    }
    if (table->base < 0) return 0;
    snprintf(table->base_name, sizeof table->base_name, "base");
    table->base_loss = c->groups[table->base].loss_at_flops;
    const SpiralConfig *base = &c->runs[c->groups[table->base].members[0]].model;
    for (int g = 0; g < c->n_groups && table->n_rows < ABLATION_MAX_ROWS - 1; g++) {
        if (g == table->base) continue;
        AblationRow *row = &table->rows[table->n_rows++];
        strip_seed(row->name, sizeof row->name, c->runs[c->groups[g].members[0]].name);
        describe_change(row, &c->runs[c->groups[g].members[0]].model, base);
        if (measure_row(row, c, g, table->base)) return -1;
    }
    /* MeSH against anchor, the one topology comparison the paper reports */
    int mesh = topology_group(c, table->base, "mesh"), anchor = topology_group(c, table->base, "anchor");
    if (mesh >= 0 && anchor >= 0 && table->n_rows < ABLATION_MAX_ROWS) {
        AblationRow *row = &table->rows[table->n_rows++];
        char a[128], m[128];
        strip_seed(m, sizeof m, c->runs[c->groups[mesh].members[0]].name);
        strip_seed(a, sizeof a, c->runs[c->groups[anchor].members[0]].name);
        snprintf(row->name, sizeof row->name, "%.60s vs %.60s", m, a);
        snprintf(row->change, sizeof row->change, "topology mesh against anchor (difference to %s, not to the base)", a);
        snprintf(row->paper, sizeof row->paper, "better: MeSH beats anchor by ~0.13 perplexity");
        row->expected = -1;
        if (measure_row(row, c, mesh, anchor)) return -1;
    }
    return 0;
}

/* "0.1234 [0.1000, 0.1500]", "(1 seed)" or "-". */
static void format_interval(char *out, size_t size, const MeanInterval *m, const char *fmt_sign) {
    if (m->n == 0 || !isfinite(m->mean)) {
        snprintf(out, size, "-");
        return;
    }
    char mean[32], lo[32], hi[32];
    snprintf(mean, sizeof mean, fmt_sign, m->mean);
    snprintf(lo, sizeof lo, fmt_sign, m->lo);
    snprintf(hi, sizeof hi, fmt_sign, m->hi);
    if (m->zero_width) snprintf(out, size, "%s (no interval: one seed)", mean);
    else snprintf(out, size, "%s [%s, %s]", mean, lo, hi);
}

void report_section_ablation(Doc *doc, const Comparison *c) {
    AblationTable table;
    if (!c || ablation_table_build(&table, c) || table.base < 0) return;
    doc_heading(doc, 2, "ablation", "Ablation study");
    char text[1400], base_loss[96];
    format_interval(base_loss, sizeof base_loss, &table.base_loss, "%.4f");
    snprintf(text, sizeof text,
             "The group named base (runs base-sN) against every other group, each read at the end of its own"
             " schedule (%s). Base: validation loss %s over %d seeds. What changed is read from the configs;"
             " the difference is variant - base in nats/token with a %.0f%% Welch t interval over the seeds"
             " of both, and in perplexity (of the mean losses). Paper: the direction the paper reports, where"
             " it reports one. Verdict: agrees or opposite when the interval excludes 0, inconclusive when it"
             " contains it. A variant whose training FLOPs are not within %.0f%% of the base's is marked; it is"
             " not an equal-FLOPs comparison.",
             isnan(c->at_flops) ? "variants trained to the base's FLOPs" : "at the fixed FLOPs budget",
             base_loss, table.base_loss.n, 100 * c->level, 100 * c->budget_tolerance);
    doc_para(doc, "", text);
    const char *headers[] = {"variant", "what changed", "seeds", "FLOPs / base", "val loss at equal FLOPs",
                             "difference to base", "perplexity difference", "paper", "verdict"};
    doc_table_begin(doc, headers, 9);
    for (int i = 0; i < table.n_rows; i++) {
        const AblationRow *row = &table.rows[i];
        char seeds[16], flops[48], loss[160], delta[160], ppl[32];
        snprintf(seeds, sizeof seeds, "%d", row->n);
        if (isfinite(row->flops_ratio))
            snprintf(flops, sizeof flops, "%.4f%s", row->flops_ratio, row->equal_flops ? "" : " (not equal)");
        else
            snprintf(flops, sizeof flops, "-");
        format_interval(loss, sizeof loss, &row->loss, "%.4f");
        format_interval(delta, sizeof delta, &row->delta, "%+.4f");
        if (isfinite(row->delta_ppl)) snprintf(ppl, sizeof ppl, "%+.4f", row->delta_ppl);
        else snprintf(ppl, sizeof ppl, "-");
        const char *cells[] = {row->name, row->change, seeds, flops, loss, delta, ppl, row->paper, row->verdict};
        doc_table_row(doc, cells, 9);
    }
    doc_table_end(doc);
    doc_para(doc, "", "The figure ablation (under Figures) draws the differences with their intervals.");
}
