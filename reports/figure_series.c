/*
 * figure_series.c: the per-step series of analysis_results (figures.h): the
 * attention of the selected heads per loop step, and the loop diagnostics
 * (update size per step, effective rank per state), a line and an interval
 * band per run, a panel per kind.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "figure_common.h"
#include "report_store.h"

/* One panel of a series figure: the rows of one analysis kind. */
typedef struct {
    const char *kind;        /* analysis_results.kind */
    const char *statistic;   /* its name in the CSV */
    const char *title, *xlabel, *ylabel;
    int has_ci;              /* draw the ci_lo..ci_hi band */
    int per_step;            /* iteration t is a loop step (g column filled) */
    int log_y;               /* a positive ratio: log-scale y axis */
    int per_d;               /* a count of dimensions: show d (or divide by it) */
} SeriesPanel;

/* The analysis rows of each (panel, run): rows[k * n_runs + r]. */
typedef struct {
    StoredAnalysis *rows;
    int n;
} RunRows;

/* A series figure: its names, its panels and the rows read for them. */
typedef struct {
    const char *name, *title, *caption;
    const SeriesPanel *panels;
    int n_panels;
    const RunRows *rows;       /* (n_panels, n_runs) */
    const int *has;            /* (n_runs) 1 if the run has rows of some panel */
    const int *max_t;          /* (n_panels) largest iteration of the panel's rows (at least 1) */
} SeriesFigure;

/* Draws the series figure from the rows read. */
static int draw_series(FigureList *list, const ReportData *data, const char *dir, const SeriesFigure *f) {
    const char *name = f->name, *title = f->title;
    const SeriesPanel *panels = f->panels;
    const RunRows *rows = f->rows;
    const int *has = f->has, *max_t = f->max_t;
    int n_panels = f->n_panels;
    int n_with = 0, longest = 24, any_ci = 0;
    for (int r = 0; r < data->n_runs; r++) {
        if (!has[r]) continue;
        n_with++;
        longest = max_int(longest, (int)strlen(data->runs[r].name));
        for (int k = 0; k < n_panels; k++) {
            const RunRows *kind = &rows[k * data->n_runs + r];
            for (int i = 0; panels[k].has_ci && i < kind->n; i++)
                any_ci |= isfinite(kind->rows[i].ci_lo) && isfinite(kind->rows[i].ci_hi);
        }
    }
    /* d of the runs with rows: one d for all (shown in the axis label), else
     * per_d panels show rank / d */
    int common_d = 0, mixed_d = 0;
    for (int r = 0; r < data->n_runs; r++) {
        if (!has[r] || !data->runs[r].has_model) continue;
        int d = data->runs[r].model.d_model;
        if (common_d && d != common_d) mixed_d = 1;
        common_d = d;
    }
    if (mixed_d) common_d = 0;
    int pw = 500, ph = 360, col = PAD_LEFT + pw + PAD_RIGHT + 10;
    int W = max_int(n_panels * col + 10, figure_title_width(title)), x_shift = (W - n_panels * col) / 2;
    int key_px = plot_key_px(n_with + any_ci, longest, W);
    int H = PLOT_TITLE_PX + PAD_TOP + ph + PAD_BOTTOM + key_px;
    Plot plot;
    if (plot_begin(&plot, dir, name, W, H, "run,statistic,iteration,g,value,ci_lo,ci_hi,d")) return -1;
    plot.key_px = key_px;
    for (int k = 0; k < n_panels; k++)
        for (int r = 0; r < data->n_runs; r++) {
            const ReportRun *run = &data->runs[r];
            const RunRows *kind = &rows[k * data->n_runs + r];
            for (int i = 0; i < kind->n; i++) {
                const StoredAnalysis *a = &kind->rows[i];
                int t = a->iteration;
                int per_step = panels[k].per_step && t >= 0 && t < run->n_steps;
                const CsvField row[] = {csv_text(run->name), csv_text(panels[k].statistic), csv_int(t),
                                        per_step ? csv_int(run->step_g[t]) : csv_num(NAN), csv_num(a->value),
                                        csv_num(a->ci_lo), csv_num(a->ci_hi),
                                        run->has_model ? csv_int(run->model.d_model) : csv_num(NAN)};
                plot_csv_row(&plot, row, (int)(sizeof row / sizeof row[0]));
            }
        }
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    unset key\n    set xtics 1\n");
    for (int k = 0; k < n_panels; k++) {
        text_printf(s, "    # panel %d: %s\n    set xrange [-0.25:%g]\n", k + 1, panels[k].statistic,
                    max_t[k] + 0.25);
        /* a ratio >= 0 on a log axis: no room below zero to suggest negative values */
        if (panels[k].log_y) text_printf(s, "    set logscale y\n    set offsets 0, 0, 0, 0\n");
        else text_printf(s, "    unset logscale y\n    set offsets 0, 0, graph 0.05, graph 0.05\n");
        plot_panel(&plot, x_shift + k * col + PAD_LEFT, PLOT_TITLE_PX + PAD_TOP, pw, ph);
        figure_gp_set(s, "title", panels[k].title);
        figure_gp_set(s, "xlabel", panels[k].xlabel);
        char ylabel[160];
        if (panels[k].per_d && common_d)
            snprintf(ylabel, sizeof ylabel, "%s (of d = %d dimensions)", panels[k].ylabel, common_d);
        else if (panels[k].per_d)
            snprintf(ylabel, sizeof ylabel, "%s / d (d differs between runs)", panels[k].ylabel);
        else
            snprintf(ylabel, sizeof ylabel, "%s", panels[k].ylabel);
        figure_gp_set(s, "ylabel", ylabel);
        const char *value = panels[k].per_d && !common_d ? "$5/$8" : "$5";
        const char *lo = panels[k].per_d && !common_d ? "$6/$8" : "$6";
        const char *hi = panels[k].per_d && !common_d ? "($7/$8)" : "7";
        text_printf(s, "    plot NaN notitle");
        /* every band first, then the lines: no line is covered by a band */
        for (int part = panels[k].has_ci ? 0 : 1; part < 2; part++)
            for (int r = 0, drawn = 0; r < data->n_runs; r++) {
                if (!has[r]) continue;
                double lw, ps;  /* earlier runs wider: a line covered by a later one still shows */
                figure_layer_size(drawn++, n_with, &lw, &ps);
                const ReportRun *run = &data->runs[r];
                char band[16];
                figure_color_alpha(band, sizeof band, run->color, 0xb0);
                text_printf(s, ", \\\n        '%s.csv' using 3:(", name);
                plot_filter_eq(s, 1, run->name);
                text_printf(s, " && ");
                plot_filter_eq(s, 2, panels[k].statistic);
                if (part == 0)
                    text_printf(s, " ? %s : NaN):%s with filledcurves fc rgb '%s' fs solid noborder notitle",
                                lo, hi, band);
                else
                    text_printf(s, " ? %s : NaN) with linespoints lt %d lw %.2f ps %.2f notitle", value, run->color,
                                lw, ps);
            }
        text_printf(s, "\n");
    }
    for (int r = 0; r < data->n_runs; r++) {
        if (!has[r]) continue;
        char style[64], title_d[200];
        snprintf(style, sizeof style, "with linespoints lt %d", data->runs[r].color);
        if (mixed_d && data->runs[r].has_model)
            snprintf(title_d, sizeof title_d, "%s (d = %d)", data->runs[r].name, data->runs[r].model.d_model);
        else
            snprintf(title_d, sizeof title_d, "%s", data->runs[r].name);
        plot_key_entry(&plot, style, title_d);
    }
    if (any_ci)
        plot_key_entry(&plot, "with filledcurves fc rgb '#c8c8c8' fs solid noborder",
                       "95% interval (bootstrap over sequences)");
    return figure_finish(list, &plot, title, f->caption);
}

/* Lines with CI bands per run, one panel per kind, from analysis_results. */
static int figure_series(FigureList *list, Store *store, const ReportData *data, const char *dir,
                         const char *name, const char *title, const char *caption, const char *skip_note,
                         const SeriesPanel *panels, int n_panels) {
    int n_runs = data->n_runs, status = 0, any = 0;
    RunRows *rows = calloc((size_t)(n_panels * n_runs > 0 ? n_panels * n_runs : 1), sizeof *rows);
    int *has = calloc((size_t)(n_runs > 0 ? n_runs : 1), sizeof *has), max_t[n_panels];
    if (!rows || !has) status = spiral_error("out of memory reading analysis_results");
    for (int k = 0; k < n_panels; k++) max_t[k] = 1;
    for (int r = 0; r < n_runs && status == 0; r++)
        for (int k = 0; k < n_panels && data->runs[r].recording_id && status == 0; k++) {
            RunRows *kind = &rows[k * n_runs + r];
            status = report_store_analysis(store, data->runs[r].recording_id, panels[k].kind, 0, &kind->rows,
                                           &kind->n);
            for (int i = 0; i < kind->n; i++) max_t[k] = max_int(max_t[k], kind->rows[i].iteration);
            if (kind->n) has[r] = any = 1;
        }
    if (status == 0 && !any) status = figure_add(list, NULL, name, title, caption, skip_note);
    else if (status == 0)
        status = draw_series(list, data, dir,
                             &(SeriesFigure){name, title, caption, panels, n_panels, rows, has, max_t});
    for (int i = 0; rows && i < n_panels * n_runs; i++) report_store_analysis_free(rows[i].rows, rows[i].n);
    free(rows);
    free(has);
    return status;
}

/* The selected heads' distance and entropy per loop step. */
int figure_attention(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    const SeriesPanel panels[2] = {
        {"selected_attn_distance", "distance", "mean attention distance of the selected heads",
         "loop step t (dense: core layer t)", "attention distance (tokens)", 1, 1, 0, 0},
        {"selected_attn_entropy", "entropy", "attention entropy of the selected heads",
         "loop step t (dense: core layer t)", "attention entropy (nats)", 1, 1, 0, 0}};
    return figure_series(list, store, data, dir, "attention",
                         "Attention of the selected heads per loop step: spiral vs baselines",
                         "Per loop step t, the mean over the selected heads (the 40% of core heads whose"
                         " mean distance changes most across steps) of the attention distance in tokens"
                         " (a latent stands at its last member) and of the entropy, averaged over queries,"
                         " with bootstrap intervals over sequences. A distance that falls along the loop is"
                         " the paper's global-to-local pattern; one that rises is the reverse.",
                         "no attention analysis yet (spiral analyze)", panels, 2);
}

/* Update size per step and effective rank per state. */
int figure_loop_update(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    const SeriesPanel panels[2] = {
        {"update_size", "update_size", "relative update per loop step",
         "loop step t: h(t) to h(t+1)", "||h(t+1) - h(t)|| / ||h(t)|| (log scale)", 1, 1, 1, 0},
        {"effective_rank", "effective_rank", "effective rank of the token states",
         "state h(t)", "effective rank", 0, 0, 0, 1}};
    return figure_series(list, store, data, dir, "loop_update",
                         "Loop diagnostics: update size per step and effective rank per state",
                         "Left: Frobenius norm of the update of the token states over that of the"
                         " states, per sequence, mean and bootstrap interval over sequences. Right:"
                         " effective rank (exp of the entropy of the normalized singular values) of"
                         " the stacked states h(t), out of the model width d.",
                         "no loop diagnostics yet (spiral analyze)", panels, 2);
}
