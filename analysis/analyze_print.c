/*
 * analyze_print.c: the readable report of analyze (analyze.h): one run's
 * selected heads, per-step attention statistics with intervals, loop
 * diagnostics and CKA matrix; several runs side by side; cross-run CKA.
 * Everything goes to the FILE the caller passes.
 */
#include <stdio.h>

#include "analyze.h"
#include "headsel.h"
#include "steps.h"

/* "12.31 [11.90, 12.70]" with `decimals` digits. */
static void format_interval(char *out, size_t size, const MeanInterval *m, int decimals) {
    snprintf(out, size, "%.*f [%.*f, %.*f]", decimals, m->mean, decimals, m->lo, decimals, m->hi);
}

/* Decimals for statistic k: distances in tokens 2, entropies and masses 3. */
static int stat_decimals(int k) { return k == ANALYZE_DISTANCE ? 2 : 3; }

/* Column title of statistic k. */
static void stat_title(char *out, size_t size, int k, const int *distances) {
    if (k == ANALYZE_DISTANCE) snprintf(out, size, "distance (tokens)");
    else if (k == ANALYZE_ENTROPY) snprintf(out, size, "entropy (nats)");
    else snprintf(out, size, "mass beyond %d", distances[k - 2]);
}

/* m divided by a positive constant: its mean and interval ends. */
static MeanInterval scaled_interval(const MeanInterval *m, double divisor) {
    MeanInterval out = *m;
    out.mean /= divisor;
    out.lo /= divisor;
    out.hi /= divisor;
    return out;
}

/* What select_by ranks, in words. */
static const char *select_text(int select_by) {
    return select_by == ANALYZE_RELATIVE_DISTANCE ? "distance relative to the uniform-attention reference"
           : select_by == ANALYZE_DISTANCE        ? "distance in tokens"
                                                  : "entropy";
}

/* Prints a (rows, cols) matrix with row labels "h(t)". */
static void print_matrix(FILE *f, const double *m, int rows, int cols, const char *row_prefix) {
    fprintf(f, "  %-12s", "");
    for (int u = 0; u < cols; u++) {
        char label[16];
        snprintf(label, sizeof label, "h(%d)", u);
        fprintf(f, " %9s", label);
    }
    fputc('\n', f);
    for (int t = 0; t < rows; t++) {
        char label[64];
        snprintf(label, sizeof label, "%sh(%d)", row_prefix, t);
        fprintf(f, "  %-12s", label);
        for (int u = 0; u < cols; u++) fprintf(f, " %9.4f", m[(size_t)t * cols + u]);
        fputc('\n', f);
    }
}

void analyze_print_run(FILE *f, const AnalyzeRun *r) {
    int H = r->n_heads, K = r->n_stats, T = r->n_steps, dense = model_kind(&r->cfg) == KIND_DENSE;
    char text[96], title[64];
    fprintf(f, "== run %s (%s): %s split of %s, %d of %d recorded sequences x %d tokens\n", r->run, r->kind,
            r->info.split, r->dataset, r->n_sequences, r->info.n_sequences, r->info.seq_len);
    fprintf(f, "\nattention: %d of %d %s selected (fraction %g, ranked by the %s of the mean %s across %s)\n",
            r->n_selected, r->n_candidates, dense ? "head slots" : "core heads", r->fraction,
            r->measure == HEADSEL_RANGE ? "range" : "standard deviation", select_text(r->select_by),
            dense ? "layers, each layer an iteration" : "iterations");
    if (r->select_by == ANALYZE_RELATIVE_DISTANCE)
        fprintf(f, "(distance / uniform is the same in tokens or in chunks of g: the change of unit between\n"
                   " iterations of different chunk sizes alone moves no head in or out of the selection)\n");
    else if (r->select_by == ANALYZE_DISTANCE)
        fprintf(f, "(distances in tokens: iterations of different chunk sizes stand on different grids, so\n"
                   " part of a head's change can be the change of unit; --select-by relative removes it)\n");
    for (int i = 0; i < r->n_candidates; i++) {
        int c = r->order[i];
        if (dense) fprintf(f, "  %s head %d: change %.3f", i < r->n_selected ? "*" : " ", c % H, r->change[c]);
        else fprintf(f, "  %s layer %d head %d: change %.3f", i < r->n_selected ? "*" : " ", c / H, c % H,
                     r->change[c]);
        fprintf(f, "   per iteration:");
        for (int t = 0; t < T; t++)
            fprintf(f, r->select_by == ANALYZE_RELATIVE_DISTANCE ? " %.3f" : " %.2f",
                    r->candidate_stat[(size_t)c * T + t]);
        fputc('\n', f);
    }
    fprintf(f, "\nselected heads per iteration (mean, %.0f%% bootstrap CI over %d sequences):\n",
            100 * r->level, r->n_sequences);
    fprintf(f, "  %4s %4s  %-26s  %-26s  %-16s  %-26s", "iter", "g", "distance (tokens)", "distance (chunks of g)",
            "uniform tok (g)", "distance / uniform");
    for (int k = 1; k < K; k++) {
        stat_title(title, sizeof title, k, r->distances);
        fprintf(f, k + 1 < K ? "  %-26s" : "  %s", title);
    }
    fputc('\n', f);
    for (int t = 0; t < T; t++) {
        const MeanInterval *distance = &r->selected[(size_t)t * K + ANALYZE_DISTANCE];
        MeanInterval in_g = scaled_interval(distance, r->step_g[t]);
        MeanInterval relative = scaled_interval(distance, r->step_uniform[t]);
        char in_g_text[96], uniform[40], relative_text[96];
        format_interval(text, sizeof text, distance, 2);
        format_interval(in_g_text, sizeof in_g_text, &in_g, 2);
        format_interval(relative_text, sizeof relative_text, &relative, 3);
        snprintf(uniform, sizeof uniform, "%.2f (%.2f)", r->step_uniform[t], r->step_uniform[t] / r->step_g[t]);
        fprintf(f, "  %4d %4d  %-26s  %-26s  %-16s  %-26s", t, r->step_g[t], text, in_g_text, uniform, relative_text);
        for (int k = 1; k < K; k++) {
            format_interval(text, sizeof text, &r->selected[(size_t)t * K + k], stat_decimals(k));
            fprintf(f, k + 1 < K ? "  %-26s" : "  %s", text);
        }
        fputc('\n', f);
    }
    fprintf(f, "  (uniform: the mean distance if every query attended evenly to its causal prefix, in tokens\n"
               "   and in chunks of g; distance / uniform: 1 = uniform, < 1 more local, > 1 more distant)\n");
    fprintf(f, "\nloop diagnostics on the token states h(t), t = 0..%d:\n", T);
    fprintf(f, "  %-8s %-32s %-14s %s\n", "state", "update ||h(t+1)-h(t)||/||h(t)||", "effective rank",
            "top singular share");
    for (int t = 0; t < r->n_states; t++) {
        if (t + 1 < r->n_states) format_interval(text, sizeof text, &r->update[t], 4);
        else snprintf(text, sizeof text, "-");
        char label[32];
        snprintf(label, sizeof label, "h(%d)", t);
        fprintf(f, "  %-8s %-32s %-14.3f %.4f\n", label, text, r->effective_rank[t],
                r->spectrum[(size_t)t * r->spectrum_k]);
    }
    fprintf(f, "  (update: mean and CI over %d sequences; effective rank and spectrum of the stacked\n"
               "   %d x %d matrix of %d sequences, uncentered)\n",
            r->n_sequences, r->n_stacked * r->info.seq_len, r->info.d_model, r->n_stacked);
    fprintf(f, "\nlinear CKA between h(t) and h(u) (%d stacked tokens):\n", r->n_stacked * r->info.seq_len);
    print_matrix(f, r->cka, r->n_states, r->n_states, "");
    fprintf(f, "(%lld rows in analysis_results)\n\n", r->rows_written);
}

void analyze_print_side_by_side(FILE *f, const AnalyzeRun *runs, int n_runs) {
    int T = 0;
    for (int i = 0; i < n_runs; i++) T = runs[i].n_steps > T ? runs[i].n_steps : T;
    /* k = 0 distance, 1 entropy, 2 distance relative to the uniform reference */
    for (int k = 0; k < 3; k++) {
        fprintf(f, "== side by side: selected heads' mean %s per iteration (%.0f%% CI)\n",
                k == ANALYZE_DISTANCE ? "attention distance (tokens)"
                : k == ANALYZE_ENTROPY ? "attention entropy (nats)"
                                       : "attention distance / uniform-attention distance",
                100 * runs[0].level);
        fprintf(f, "  %4s", "iter");
        for (int i = 0; i < n_runs; i++) {
            char head[200];
            snprintf(head, sizeof head, "%s (%s)", runs[i].run, runs[i].kind);
            fprintf(f, i + 1 < n_runs ? "  %-30s" : "  %s", head);
        }
        fputc('\n', f);
        for (int t = 0; t < T; t++) {
            fprintf(f, "  %4d", t);
            for (int i = 0; i < n_runs; i++) {
                char text[96] = "-";
                if (t < runs[i].n_steps) {
                    char interval[80];
                    const MeanInterval *m = &runs[i].selected[(size_t)t * runs[i].n_stats + (k == 2 ? 0 : k)];
                    MeanInterval relative = scaled_interval(m, runs[i].step_uniform[t]);
                    format_interval(interval, sizeof interval, k == 2 ? &relative : m, k == 2 ? 3 : stat_decimals(k));
                    snprintf(text, sizeof text, "g=%-2d %s", runs[i].step_g[t], interval);
                }
                fprintf(f, i + 1 < n_runs ? "  %-30s" : "  %s", text);
            }
            fputc('\n', f);
        }
        fputc('\n', f);
    }
}

void analyze_print_cross(FILE *f, const AnalyzeCross *c) {
    if (c->skipped) {
        fprintf(f, "== CKA %s vs %s: skipped: %s\n\n", c->run_a, c->run_b, c->reason);
        return;
    }
    fprintf(f, "== linear CKA between %s's h(t) (rows) and %s's h(u) (columns), %d sequences:\n", c->run_a,
            c->run_b, c->n_stacked);
    print_matrix(f, c->cka, c->n_a, c->n_b, "");
    fputc('\n', f);
}
