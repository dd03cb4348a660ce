/*
 * figures.c: the figures of a report (list and conventions in figures.h).
 *
 * Each figure function: reads its data (ReportData, or the metrics and
 * analysis_results tables), skips with a note when there is none, lays out
 * its panels in pixels, writes the CSV and the gnuplot body, and renders
 * (plot.h). The gnuplot commands select a series by filtering the CSV on
 * its run name column, e.g.
 *   plot 'f.csv' using 4:(strcol(1) eq 'spiral' ? $6 : NaN) with lines
 * so the script is readable next to its CSV and any series can be re-drawn.
 */
#include "figures.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "plot.h"

/* Panel paddings around a line plot's axes box, in pixels. */
enum { PAD_LEFT = 104, PAD_RIGHT = 30, PAD_TOP = 40, PAD_BOTTOM = 72 };

/* Heatmap geometry: cell sizes, room for the colorbox on the right. */
enum { CELL_H = 26, CELL_W = 54, CELL_W_LATENT = 62, HEAT_RIGHT = 128 };

/* Frees the list (the figures' files stay on disk). */
void figure_list_free(FigureList *list) {
    free(list->items);
    memset(list, 0, sizeof *list);
}

/* Appends a figure entry (rendered or skipped); 0 or -1. */
static int figure_add(FigureList *list, const Plot *plot, const char *name, const char *title,
                      const char *caption, const char *note) {
    if (list->n == list->cap) {
        int cap = list->cap ? 2 * list->cap : 16;
        Figure *items = realloc(list->items, (size_t)cap * sizeof *items);
        if (!items) return spiral_error("out of memory listing figures");
        list->items = items;
        list->cap = cap;
    }
    Figure *f = &list->items[list->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->title, sizeof f->title, "%s", title);
    snprintf(f->caption, sizeof f->caption, "%s", caption);
    if (plot) {
        f->rendered = 1;
        f->width = plot->width;
        f->height = plot->height;
        f->csv_rows = plot->csv_rows;
        f->warnings = plot->has_warnings;
    } else {
        snprintf(f->note, sizeof f->note, "%s", note);
    }
    return 0;
}

/* Renders the plot and lists it; 0 or -1. */
static int figure_finish(FigureList *list, Plot *plot, const char *title, const char *caption) {
    char name[64];
    snprintf(name, sizeof name, "%s", plot->name);
    if (plot_finish(plot, title)) return -1;
    return figure_add(list, plot, name, title, caption, NULL);
}

/* A figure's minimum width so its title fits on one line. */
static int title_width(const char *title) { return 10 * (int)strlen(title) + 60; }

/* Width in pixels gnuplot reserves for n characters of tick labels. */
static int chars_px(int n) { return 10 * n; }

/* A round tick step (1, 2, 2.5 or 5 times a power of ten) giving at most
 * about `ticks` intervals over range. */
static double nice_step(double range, int ticks) {
    double raw = range / ticks, mag = pow(10, floor(log10(raw)));
    const double steps[4] = {1, 2, 2.5, 5};
    for (int i = 0; i < 4; i++)
        if (steps[i] * mag >= raw * (1 - 1e-9)) return steps[i] * mag;
    return 10 * mag;
}

/* A count with an SI suffix for tick labels: 50000 -> "50k", 2e11 -> "200G". */
static void si_label(char *out, size_t size, double v) {
    const char *suffix[] = {"", "k", "M", "G", "T", "P", "E"};
    int k = 0;
    while (fabs(v) >= 1000 * (1 - 1e-9) && k < 6) {
        v /= 1000;
        k++;
    }
    snprintf(out, size, "%.3g%s", v, suffix[k]);
}

/* Appends "set xtics (...)" for a log axis over [lo, hi]: 1, 2, 5 x 10^k;
 * when that leaves fewer than three ticks 1, 1.5, 2, 3, 5, 7 x 10^k; then
 * every integer multiple. */
static void log_tics(Text *s, double lo, double hi) {
    const double coarse[3] = {1, 2, 5}, medium[6] = {1, 1.5, 2, 3, 5, 7},
                 fine[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (int pass = 0; pass < 3; pass++) {
        const double *m = pass == 0 ? coarse : pass == 1 ? medium : fine;
        int n_m = pass == 0 ? 3 : pass == 1 ? 6 : 9, count = 0;
        for (int e = (int)floor(log10(lo)); e <= (int)ceil(log10(hi)); e++)
            for (int i = 0; i < n_m; i++) {
                double v = m[i] * pow(10, e);
                count += v >= lo && v <= hi;
            }
        if (count < 3 && pass < 2) continue;
        text_printf(s, "    set xtics (");
        int first = 1;
        for (int e = (int)floor(log10(lo)); e <= (int)ceil(log10(hi)); e++)
            for (int i = 0; i < n_m; i++) {
                double v = m[i] * pow(10, e);
                if (v < lo || v > hi) continue;
                char label[32];
                si_label(label, sizeof label, v);
                text_printf(s, "%s'%s' %g", first ? "" : ", ", label, v);
                first = 0;
            }
        text_printf(s, ")\n");
        return;
    }
}

static int max_int(int a, int b) { return a > b ? a : b; }

/* A power of ten for an axis whose values reach max: values are divided by
 * *scale and the axis label gets `suffix`. words: "thousands" ... for
 * counts; else "x 1e12". */
static void axis_scale(double max, int words, double *scale, char *suffix, size_t size) {
    int power = max > 0 && isfinite(max) ? 3 * (int)floor(log10(max) / 3) : 0;
    if (power < 0) power = 0;
    *scale = pow(10, power);
    if (power == 0) suffix[0] = 0;
    else if (words && power == 3) snprintf(suffix, size, " (thousands)");
    else if (words && power == 6) snprintf(suffix, size, " (millions)");
    else if (words && power == 9) snprintf(suffix, size, " (billions)");
    else snprintf(suffix, size, " (x 1e%d)", power);
}

/* Appends `set <what> '<text>'`. */
static void gp_set_string(Text *s, const char *what, const char *text) {
    text_printf(s, "    set %s ", what);
    text_gp_string(s, text);
    text_printf(s, "\n");
}

/* Appends a comment line "    # <what> <name>", the name's line breaks
 * dropped (a name cannot end the comment and become a command). */
static void gp_comment(Text *s, const char *what, const char *name) {
    text_printf(s, "    # %s ", what);
    for (const char *c = name; *c; c++)
        if (*c != '\n' && *c != '\r') text_printf(s, "%c", *c);
    text_printf(s, "\n");
}

/* A run's color with transparency alpha (0 opaque .. 255 invisible), as
 * gnuplot's "#AARRGGBB". */
static void color_alpha(char *out, size_t size, int color, int alpha) {
    snprintf(out, size, "#%02x%s", alpha, plot_color(color) + 1);
}

/* The run of data named `name`, or NULL. */
static const ReportRun *find_run(const ReportData *data, const char *name) {
    for (int r = 0; r < data->n_runs; r++)
        if (!strcmp(data->runs[r].name, name)) return &data->runs[r];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Training curves                                                          */

/* Loss vs tokens and vs FLOPs of every run with metrics (two panels). */
int figure_training(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    const char *title = "Training curves: loss vs tokens seen and vs training FLOPs";
    const char *caption = "Training loss of every step (thin) and validation loss at each"
                          " evaluation (points) of each run; dashed: the entropy floor of the"
                          " validation split (mean true next-token loss), where the dataset knows it.";
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db, "SELECT step, tokens, flops, loss, val_loss FROM metrics"
                                      " WHERE run_id = ? ORDER BY step", -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: reading metrics: %s", store->path, sqlite3_errmsg(store->db));
    /* which runs have metrics, the axes' ranges, whether a floor exists */
    int has[data->n_runs > 0 ? data->n_runs : 1], n_with = 0, longest = 0, floors = 0;
    double max_tokens = 0, max_flops = 0;
    for (int r = 0; r < data->n_runs; r++) {
        has[r] = 0;
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, data->runs[r].id);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            has[r] = 1;
            max_tokens = fmax(max_tokens, sqlite3_column_double(stmt, 1));
            max_flops = fmax(max_flops, sqlite3_column_double(stmt, 2));
        }
        if (has[r]) {
            n_with++;
            longest = max_int(longest, (int)strlen(data->runs[r].name));
            int d = report_data_dataset(data, data->runs[r].dataset);
            if (d >= 0 && isfinite(data->datasets[d].floor_val)) floors = 1;
        }
    }
    if (n_with == 0) {
        sqlite3_finalize(stmt);
        return figure_add(list, NULL, "training", title, caption,
                          "no training metrics in the store yet (spiral train)");
    }
    double token_scale, flop_scale;
    char token_suffix[32], flop_suffix[32];
    axis_scale(max_tokens, 1, &token_scale, token_suffix, sizeof token_suffix);
    axis_scale(max_flops, 0, &flop_scale, flop_suffix, sizeof flop_suffix);

    int pw = 560, ph = 400, col = PAD_LEFT + pw + PAD_RIGHT;
    int W = max_int(2 * col + 10, title_width(title)), x_shift = (W - 2 * col) / 2;
    int n_keys = n_with + 2 + floors;
    int key_px = plot_key_px(n_keys, max_int(longest, 26), W);
    int H = PLOT_TITLE_PX + PAD_TOP + ph + PAD_BOTTOM + key_px;
    Plot plot;
    if (plot_begin(&plot, dir, "training", W, H,
                   "run,kind,dataset,series,step,tokens,flops,loss,entropy_floor")) {
        sqlite3_finalize(stmt);
        return -1;
    }
    plot.key_px = key_px;
    for (int r = 0; r < data->n_runs; r++) {
        if (!has[r]) continue;
        const ReportRun *run = &data->runs[r];
        int d = report_data_dataset(data, run->dataset);
        double floor = d >= 0 ? data->datasets[d].floor_val : NAN;
        /* two passes: the training rows, then the validation rows */
        for (int series = 0; series < 2; series++) {
            sqlite3_reset(stmt);
            sqlite3_bind_int64(stmt, 1, run->id);
            while (sqlite3_step(stmt) == SQLITE_ROW) {
                int column = series == 0 ? 3 : 4;
                if (sqlite3_column_type(stmt, column) == SQLITE_NULL) continue;
                plot_csv_str(&plot, run->name);
                plot_csv_str(&plot, run->kind);
                plot_csv_str(&plot, run->dataset);
                plot_csv_str(&plot, series == 0 ? "train" : "val");
                plot_csv_int(&plot, sqlite3_column_int64(stmt, 0));
                plot_csv_num(&plot, sqlite3_column_double(stmt, 1));
                plot_csv_num(&plot, sqlite3_column_double(stmt, 2));
                plot_csv_num(&plot, sqlite3_column_double(stmt, column));
                plot_csv_num(&plot, floor);
                plot_csv_end(&plot);
            }
        }
    }
    sqlite3_finalize(stmt);

    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    unset key\n");
    for (int panel = 0; panel < 2; panel++) {
        double scale = panel == 0 ? token_scale : flop_scale;
        int xcol = panel == 0 ? 6 : 7;
        char xlabel[128];
        snprintf(xlabel, sizeof xlabel, "%s%s", panel == 0 ? "tokens seen" : "training FLOPs, analytic",
                 panel == 0 ? token_suffix : flop_suffix);
        text_printf(s, "    # panel %d: loss vs %s\n", panel + 1, panel == 0 ? "tokens" : "FLOPs");
        plot_panel(&plot, x_shift + panel * col + PAD_LEFT, PLOT_TITLE_PX + PAD_TOP, pw, ph);
        gp_set_string(s, "title", panel == 0 ? "loss vs tokens seen" : "loss vs training FLOPs");
        gp_set_string(s, "xlabel", xlabel);
        gp_set_string(s, "ylabel", "loss (nats/token)");
        text_printf(s, "    plot NaN notitle");
        for (int r = 0; r < data->n_runs; r++) {
            if (!has[r]) continue;
            const ReportRun *run = &data->runs[r];
            char faint[16];
            color_alpha(faint, sizeof faint, run->color, 0x90);
            for (int series = 0; series < 2; series++) {
                text_printf(s, ", \\\n        'training.csv' using ($%d/%g):(", xcol, scale);
                plot_filter_eq(s, 1, run->name);
                text_printf(s, " && ");
                plot_filter_eq(s, 4, series == 0 ? "train" : "val");
                if (series == 0)
                    text_printf(s, " ? $8 : NaN) with lines lc rgb '%s' lw 1 notitle", faint);
                else
                    text_printf(s, " ? $8 : NaN) with linespoints lt %d lw 2.5 pt 7 ps 1.1 notitle", run->color);
            }
        }
        /* the floor of each dataset (column entropy_floor), across the panel */
        for (int r = 0; r < data->n_runs; r++) {
            if (!has[r]) continue;
            int d = report_data_dataset(data, data->runs[r].dataset), first = 1;
            for (int q = 0; q < r; q++)
                if (has[q] && !strcmp(data->runs[q].dataset, data->runs[r].dataset)) first = 0;
            if (!first || d < 0 || !isfinite(data->datasets[d].floor_val)) continue;
            text_printf(s, ", \\\n        %.10g with lines lc rgb '#333333' dt 2 lw 1.5 notitle",
                        data->datasets[d].floor_val);
        }
        text_printf(s, "\n");
    }
    for (int r = 0; r < data->n_runs; r++) {
        if (!has[r]) continue;
        char style[64];
        snprintf(style, sizeof style, "with linespoints lt %d lw 2.5 pt 7", data->runs[r].color);
        plot_key_entry(&plot, style, data->runs[r].name);
    }
    plot_key_entry(&plot, "with lines lc rgb '#999999' lw 1", "training loss (every step)");
    plot_key_entry(&plot, "with linespoints lc rgb '#555555' lw 2.5 pt 7", "validation loss");
    if (floors)
        plot_key_entry(&plot, "with lines lc rgb '#333333' dt 2 lw 1.5", "entropy floor (val split)");
    return figure_finish(list, &plot, title, caption);
}

/* ------------------------------------------------------------------------ */
/* Comparison across runs and seeds                                         */

/* The legend name of a group: its runs' names, and the number of seeds. */
static void group_label(char *out, size_t size, const Comparison *c, const CompareGroup *g) {
    size_t used = 0;
    out[0] = 0;
    for (int m = 0; m < g->n && used + 1 < size; m++) {
        const char *name = c->runs[g->members[m]].name;
        if (used + strlen(name) + 16 > 60 && m > 0) {
            used += (size_t)snprintf(out + used, size - used, ", ...");
            break;
        }
        used += (size_t)snprintf(out + used, size - used, "%s%s", m ? ", " : "", name);
    }
    if (g->n > 1 && used + 1 < size) snprintf(out + used, size - used, " (%d seeds)", g->n);
}

/* Validation loss vs parameters and vs FLOPs, groups of seeds with error bars. */
int figure_comparison(FigureList *list, const ReportData *data, const Comparison *c, const char *dir) {
    const char *title = "Validation loss vs parameters and vs training FLOPs (mean and 95% interval over seeds)";
    const char *caption = "One filled point per group of runs that differ only in their seed, with"
                          " the t interval of the mean over the seeds as error bars (a single seed"
                          " has none); open circles: each seed. Parameters exclude the embedding;"
                          " FLOPs are the analytic training count at the last step.";
    int n_groups = 0, longest = 20;
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {0, 0};
    char label[128];
    for (int g = 0; c && g < c->n_groups; g++) {
        const CompareGroup *group = &c->groups[g];
        if (group->val_loss.n == 0) continue;
        n_groups++;
        group_label(label, sizeof label, c, group);
        longest = max_int(longest, (int)strlen(label));
        double x[2] = {group->params_nonembedding, group->train_flops};
        for (int a = 0; a < 2; a++)
            for (int m = 0; m < group->n; m++) {
                const CompareRun *run = &c->runs[group->members[m]];
                double v = a == 0 ? run->params_nonembedding : run->train_flops;
                if (v > 0) {
                    lo[a] = fmin(lo[a], v);
                    hi[a] = fmax(hi[a], v);
                }
            }
        for (int a = 0; a < 2; a++)
            if (x[a] > 0) {
                lo[a] = fmin(lo[a], x[a]);
                hi[a] = fmax(hi[a], x[a]);
            }
    }
    if (!c)
        return figure_add(list, NULL, "comparison", title, caption,
                          "the runs could not be compared (see the comparison section)");
    if (n_groups == 0)
        return figure_add(list, NULL, "comparison", title, caption,
                          "no run has a validation loss yet (train with eval_every > 0)");
    int pw = 520, ph = 400, col = PAD_LEFT + pw + PAD_RIGHT + 20;
    int W = max_int(2 * col + 10, title_width(title)), x_shift = (W - 2 * col) / 2;
    int key_px = plot_key_px(n_groups + 1, longest, W);
    int H = PLOT_TITLE_PX + PAD_TOP + ph + PAD_BOTTOM + key_px;
    Plot plot;
    if (plot_begin(&plot, dir, "comparison", W, H,
                   "level,group,name,runs,kind,n_seeds,params_nonembedding,params,train_flops,"
                   "val_loss,ci_lo,ci_hi"))
        return -1;
    plot.key_px = key_px;
    for (int g = 0; g < c->n_groups; g++) {
        const CompareGroup *group = &c->groups[g];
        const CompareRun *first = &c->runs[group->members[0]];
        char runs[1024];
        size_t used = 0;
        runs[0] = 0;
        for (int m = 0; m < group->n && used + 1 < sizeof runs; m++)
            used += (size_t)snprintf(runs + used, sizeof runs - used, "%s%s", m ? " " : "",
                                     c->runs[group->members[m]].name);
        group_label(label, sizeof label, c, group);
        plot_csv_str(&plot, "group");
        plot_csv_int(&plot, g);
        plot_csv_str(&plot, label);
        plot_csv_str(&plot, runs);
        plot_csv_str(&plot, first->kind);
        plot_csv_int(&plot, group->n);
        plot_csv_num(&plot, group->params_nonembedding);
        plot_csv_num(&plot, group->params);
        plot_csv_num(&plot, group->train_flops);
        plot_csv_num(&plot, group->val_loss.n ? group->val_loss.mean : NAN);
        plot_csv_num(&plot, group->val_loss.n ? group->val_loss.lo : NAN);
        plot_csv_num(&plot, group->val_loss.n ? group->val_loss.hi : NAN);
        plot_csv_end(&plot);
        for (int m = 0; m < group->n; m++) {
            const CompareRun *run = &c->runs[group->members[m]];
            plot_csv_str(&plot, "run");
            plot_csv_int(&plot, g);
            plot_csv_str(&plot, run->name);
            plot_csv_str(&plot, run->name);
            plot_csv_str(&plot, run->kind);
            plot_csv_int(&plot, 1);
            plot_csv_num(&plot, run->params_nonembedding);
            plot_csv_num(&plot, run->params);
            plot_csv_num(&plot, run->train_flops);
            plot_csv_num(&plot, run->val_loss);
            plot_csv_num(&plot, NAN);
            plot_csv_num(&plot, NAN);
            plot_csv_end(&plot);
        }
    }
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    unset key\n    set logscale x\n");
    for (int panel = 0; panel < 2; panel++) {
        int xcol = panel == 0 ? 7 : 9;
        /* a factor of 1.6 of room on both sides keeps the points off the border */
        double a = isfinite(lo[panel]) ? lo[panel] / 1.6 : 1, b = hi[panel] > 0 ? hi[panel] * 1.6 : 10;
        text_printf(s, "    # panel %d\n", panel + 1);
        plot_panel(&plot, x_shift + panel * col + PAD_LEFT, PLOT_TITLE_PX + PAD_TOP, pw, ph);
        text_printf(s, "    set xrange [%g:%g]\n", a, b);
        log_tics(s, a, b);
        gp_set_string(s, "title", panel == 0 ? "validation loss vs non-embedding parameters"
                                              : "validation loss vs training FLOPs");
        gp_set_string(s, "xlabel", panel == 0 ? "non-embedding parameters (log scale)"
                                               : "training FLOPs, analytic (log scale)");
        gp_set_string(s, "ylabel", "validation loss (nats/token)");
        text_printf(s, "    plot NaN notitle");
        for (int g = 0; g < c->n_groups; g++) {
            if (c->groups[g].val_loss.n == 0) continue;
            const ReportRun *run = find_run(data, c->runs[c->groups[g].members[0]].name);
            int color = run ? run->color : g % PLOT_N_COLORS + 1;
            text_printf(s, ", \\\n        'comparison.csv' using (");
            plot_filter_eq(s, 1, "run");
            text_printf(s, " && $2 == %d ? $%d : NaN):10 with points lt %d pt 6 ps 1.3 lw 1.5 notitle",
                        g, xcol, color);
            text_printf(s, ", \\\n        'comparison.csv' using (");
            plot_filter_eq(s, 1, "group");
            text_printf(s, " && $2 == %d ? $%d : NaN):10:11:12 with yerrorbars lt %d pt 7 ps 1.6 lw 2"
                           " notitle", g, xcol, color);
        }
        text_printf(s, "\n");
    }
    for (int g = 0; g < c->n_groups; g++) {
        if (c->groups[g].val_loss.n == 0) continue;
        const ReportRun *run = find_run(data, c->runs[c->groups[g].members[0]].name);
        char style[64];
        snprintf(style, sizeof style, "with points lt %d pt 7 ps 1.6", run ? run->color : g % PLOT_N_COLORS + 1);
        group_label(label, sizeof label, c, &c->groups[g]);
        plot_key_entry(&plot, style, label);
    }
    plot_key_entry(&plot, "with points lc rgb '#555555' pt 6 ps 1.3", "one seed");
    return figure_finish(list, &plot, title, caption);
}

/* ------------------------------------------------------------------------ */
/* Probe heatmaps                                                           */

/* One heatmap panel: a run's probes at a group of sites. */
typedef struct {
    int run;
    const char *site;        /* "token" (with the coda) or a latent site */
    int n_x;                 /* columns */
    int iterations[SPIRAL_MAX_ITERS + 2];  /* iteration of each column (-1: coda) */
    int scales[SPIRAL_MAX_ITERS + 2];
    int width;               /* panel width in pixels */
} HeatPanel;

/* The column of probe p in panel, or -1 if p is not in it. */
static int heat_column(const HeatPanel *panel, const ReportProbe *p) {
    if (p->run != panel->run) return -1;
    int coda = !strcmp(p->site, "coda");
    if (!strcmp(panel->site, "token") ? !(coda || !strcmp(p->site, "token")) : strcmp(p->site, panel->site))
        return -1;
    for (int x = 0; x < panel->n_x; x++)
        if (coda ? panel->iterations[x] == -1
                 : panel->iterations[x] == p->iteration && panel->scales[x] == p->scale)
            return x;
    return -1;
}

/* Adds the column of probe p to panel (sorted by iteration; the coda last). */
static void heat_add_column(HeatPanel *panel, const ReportProbe *p) {
    int coda = !strcmp(p->site, "coda");
    int it = coda ? -1 : p->iteration;
    for (int x = 0; x < panel->n_x; x++)
        if (panel->iterations[x] == it && (coda || panel->scales[x] == p->scale)) return;
    if (panel->n_x >= SPIRAL_MAX_ITERS + 2) return;
    int x = panel->n_x++;
    /* insertion: columns ascend by iteration, the coda (-1) goes last */
    while (x > 0 && !coda && (panel->iterations[x - 1] == -1 || panel->iterations[x - 1] > it)) {
        panel->iterations[x] = panel->iterations[x - 1];
        panel->scales[x] = panel->scales[x - 1];
        x--;
    }
    panel->iterations[x] = it;
    panel->scales[x] = p->scale;
}

/* Accuracy and selectivity heatmaps: token sites (latent = 0) or latents. */
int figure_probe_heatmap(FigureList *list, const ReportData *data, const char *dir, int latent) {
    const char *name = latent ? "probe_heatmap_latent" : "probe_heatmap_token";
    const char *title = latent
        ? "Probe accuracy and selectivity at the latents z and z~, per label and iteration (* = encoded)"
        : "Probe accuracy and selectivity per label and token state h(t), runs side by side (* = encoded)";
    const char *caption = latent
        ? "Top: test accuracy of a linear probe reading the latent entering (latent_in, z) or leaving"
          " (latent_out, z~) the core at iteration t, chunk size g. Bottom: selectivity = accuracy"
          " minus the control task's accuracy. * marks a label encoded there: its interval lies above"
          " those of all four controls."
        : "Top: test accuracy of a linear probe reading h(t) (t = 0 is the prelude output; dense: the"
          " output of core layer t) and the coda output. Bottom: selectivity = accuracy minus the"
          " control task's accuracy (Hewitt and Liang). * marks a label encoded there: its interval"
          " lies above those of all four controls.";
    const char *sites[2] = {"latent_in", "latent_out"};
    HeatPanel panels[64];
    int n_panels = 0;
    for (int r = 0; r < data->n_runs; r++)
        for (int k = 0; k < (latent ? 2 : 1) && n_panels < 64; k++) {
            HeatPanel *panel = &panels[n_panels];
            memset(panel, 0, sizeof *panel);
            panel->run = r;
            panel->site = latent ? sites[k] : "token";
            for (int i = 0; i < data->n_probes; i++) {
                const ReportProbe *p = &data->probes[i];
                if (p->run != r) continue;
                if (latent ? !strcmp(p->site, panel->site)
                           : (!strcmp(p->site, "token") || !strcmp(p->site, "coda")))
                    heat_add_column(panel, p);
            }
            if (panel->n_x) n_panels++;
        }
    if (n_panels == 0)
        return figure_add(list, NULL, name, title, caption,
                          latent ? "no probe results at latent sites (spiral probe on a spiral run's recording)"
                                 : "no probe results at token sites yet (spiral probe)");
    /* rows: the labels probed in these panels, in report order */
    int row_of[data->n_labels > 0 ? data->n_labels : 1], n_rows = 0, longest = 4;
    for (int l = 0; l < data->n_labels; l++) {
        row_of[l] = -1;
        for (int i = 0; i < data->n_probes && row_of[l] < 0; i++)
            for (int q = 0; q < n_panels; q++)
                if (data->probes[i].label == l && heat_column(&panels[q], &data->probes[i]) >= 0) {
                    row_of[l] = n_rows++;
                    longest = max_int(longest, (int)strlen(data->labels[l]));
                    break;
                }
    }
    /* selectivity color range: symmetric, at least +-0.05, in steps of 0.05 */
    double sel_max = 0.05;
    for (int i = 0; i < data->n_probes; i++)
        for (int q = 0; q < n_panels; q++)
            if (heat_column(&panels[q], &data->probes[i]) >= 0 && isfinite(data->probes[i].selectivity))
                sel_max = fmax(sel_max, fabs(data->probes[i].selectivity));
    sel_max = sel_max <= 0.1 ? ceil(sel_max * 20 - 1e-9) / 20 : ceil(sel_max * 10 - 1e-9) / 10;

    int cell_w = latent ? CELL_W_LATENT : CELL_W, bottom = latent ? PAD_BOTTOM + 18 : PAD_BOTTOM;
    int left = 44 + chars_px(longest);
    /* at least 160 pixels high, so the colorbox has room for its ticks */
    int area_h = max_int(n_rows * CELL_H, 160), W = 10;
    for (int q = 0; q < n_panels; q++) {
        panels[q].width = left + panels[q].n_x * cell_w + HEAT_RIGHT;
        W += panels[q].width;
    }
    int content_w = W;
    W = max_int(W, title_width(title));
    int row_h = PAD_TOP + area_h + bottom;
    int H = PLOT_TITLE_PX + 2 * row_h + 8;
    Plot plot;
    if (plot_begin(&plot, dir, name, W, H,
                   "run,site,iteration,scale,label,x,y,accuracy,ci_lo,ci_hi,control_task,selectivity,encoded"))
        return -1;
    for (int q = 0; q < n_panels; q++)
        for (int i = 0; i < data->n_probes; i++) {
            const ReportProbe *p = &data->probes[i];
            int x = heat_column(&panels[q], p);
            if (x < 0) continue;
            plot_csv_str(&plot, data->runs[p->run].name);
            plot_csv_str(&plot, p->site);
            plot_csv_int(&plot, p->iteration);
            plot_csv_int(&plot, p->scale);
            plot_csv_str(&plot, data->labels[p->label]);
            plot_csv_int(&plot, x);
            plot_csv_int(&plot, row_of[p->label]);
            plot_csv_num(&plot, p->accuracy);
            plot_csv_num(&plot, p->ci_lo);
            plot_csv_num(&plot, p->ci_hi);
            plot_csv_num(&plot, p->control_task);
            plot_csv_num(&plot, p->selectivity);
            plot_csv_int(&plot, p->encoded);
            plot_csv_end(&plot);
        }
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    unset key\n    unset grid\n    set tics scale 0\n    set border 15\n"
                   "    set yrange [%g:-0.5]\n    set ytics (", n_rows - 0.5);
    for (int l = 0, first = 1; l < data->n_labels; l++) {
        if (row_of[l] < 0) continue;
        text_printf(s, "%s", first ? "" : ", ");
        text_gp_string(s, data->labels[l]);
        text_printf(s, " %d", row_of[l]);
        first = 0;
    }
    text_printf(s, ")\n");
    gp_set_string(s, "ylabel", "probed label");
    int x0 = (W - content_w) / 2; /* centred under the title */
    for (int q = 0; q < n_panels; q++) {
        const HeatPanel *panel = &panels[q];
        const ReportRun *run = &data->runs[panel->run];
        gp_comment(s, panel->site, run->name);
        text_printf(s, "    set xrange [-0.5:%g]\n    set xtics (", panel->n_x - 0.5);
        for (int x = 0; x < panel->n_x; x++) {
            if (panel->iterations[x] == -1) text_printf(s, "%s'coda' %d", x ? ", " : "", x);
            else if (latent) text_printf(s, "%s\"%d\\ng=%d\" %d", x ? ", " : "", panel->iterations[x],
                                         panel->scales[x], x);
            else text_printf(s, "%s'h(%d)' %d", x ? ", " : "", panel->iterations[x], x);
        }
        text_printf(s, ")\n");
        gp_set_string(s, "xlabel", latent ? "iteration t (chunk size g)"
                                          : "state h(t) (dense: after core layer t), coda");
        if (latent) text_printf(s, "    set xlabel offset 0, -0.9\n");
        for (int row = 0; row < 2; row++) {
            int ax = x0 + left, ay = PLOT_TITLE_PX + row * row_h + PAD_TOP;
            int area_w = panel->n_x * cell_w;
            char panel_title[256];
            const char *where = latent ? (!strcmp(panel->site, "latent_in") ? "latent_in z" : "latent_out z~")
                                       : "token states";
            snprintf(panel_title, sizeof panel_title, "%s, %s: %s", run->name, where,
                     row == 0 ? "test accuracy" : "selectivity");
            plot_panel(&plot, ax, ay, area_w, area_h);
            gp_set_string(s, "title", panel_title);
            text_printf(s, "    set colorbox user origin screen %.5f, screen %.5f size screen %.5f, screen %.5f\n",
                        (ax + area_w + 14.0) / W, 1.0 - (double)(ay + area_h) / H, 16.0 / W,
                        (double)area_h / H);
            if (row == 0)
                text_printf(s, "    set cbrange [0:1]\n    set cbtics 0.2\n"
                               "    set palette defined (0 '#f7fbff', 0.3 '#c6dbef', 0.6 '#6baed6',"
                               " 0.8 '#2171b5', 1 '#08306b')\n");
            else
                text_printf(s, "    set cbrange [%g:%g]\n    set cbtics %g\n"
                               "    set palette defined (-1 '#2166ac', -0.5 '#92c5de', 0 '#f7f7f7',"
                               " 0.5 '#f4a582', 1 '#b2182b')\n",
                            -sel_max, sel_max, nice_step(2 * sel_max, 4));
            gp_set_string(s, "cblabel", row == 0 ? "accuracy" : "accuracy - control task");
            int vcol = row == 0 ? 8 : 12;
            /* cell text: white on dark cells */
            char dark[64];
            if (row == 0) snprintf(dark, sizeof dark, "$8 > 0.62");
            else snprintf(dark, sizeof dark, "abs($12) > %g", 0.6 * sel_max);
            text_printf(s, "    plot '%s.csv' using 6:(", name);
            plot_filter_eq(s, 1, run->name);
            if (latent) {
                text_printf(s, " && ");
                plot_filter_eq(s, 2, panel->site);
            }
            text_printf(s, " ? $7 : NaN):(0.5):(0.5):%d with boxxyerror fc palette fs solid 1.0"
                           " border lc rgb '#ffffff' notitle, \\\n        '' using 6:(", vcol);
            plot_filter_eq(s, 1, run->name);
            if (latent) {
                text_printf(s, " && ");
                plot_filter_eq(s, 2, panel->site);
            }
            text_printf(s, " && valid(%d) ? $7 : NaN):(sprintf('%s', $%d).($13 == 1 ? '*' : '')):"
                           "(%s ? 0xffffff : 0x000000) with labels tc rgb variable font ',9' notitle\n",
                        vcol, row == 0 ? "%.2f" : "%+.2f", vcol, dark);
        }
        x0 += panel->width;
    }
    return figure_finish(list, &plot, title, caption);
}

/* ------------------------------------------------------------------------ */
/* Probe accuracy vs iteration                                              */

/* The level of a label: its name before the first '.' ("labels" if none). */
static void label_level(char *out, size_t size, const char *label) {
    const char *dot = strchr(label, '.');
    if (!dot) snprintf(out, size, "labels");
    else snprintf(out, size, "%.*s", (int)(dot - label), label);
}

/* A file-name-safe copy of s (letters, digits, '-', '_'; others '_'). */
static void safe_name(char *out, size_t size, const char *s) {
    size_t n = 0;
    for (; *s && n + 1 < size; s++)
        out[n++] = ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                    *s == '-' || *s == '_') ? *s : '_';
    out[n] = 0;
}

/* 1 if run r has a token-site probe of label l. */
static int has_token_probe(const ReportData *data, int r, int l) {
    for (int i = 0; i < data->n_probes; i++)
        if (data->probes[i].run == r && data->probes[i].label == l && !strcmp(data->probes[i].site, "token"))
            return 1;
    return 0;
}

/* One probe_curves figure: the labels (n <= 6) of one level. */
static int probe_curves_figure(FigureList *list, const ReportData *data, const char *dir,
                               const char *name, const char *level, const int *labels, int n) {
    char title[256], names[160] = "";
    if (strcmp(level, "labels")) snprintf(names, sizeof names, "%s.*", level);
    else
        for (int k = 0; k < n && strlen(names) + strlen(data->labels[labels[k]]) + 3 < sizeof names; k++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "",
                     data->labels[labels[k]]);
    snprintf(title, sizeof title, "Probe test accuracy vs iteration at the token states, labels %s", names);
    const char *caption = "Test accuracy (line) and its 95% bootstrap interval over test sequences"
                          " (band) of a linear probe reading h(t), per label and run; dotted: the"
                          " majority-class baseline.";
    int cols = n < 3 ? n : 3, rows = (n + cols - 1) / cols;
    int pw = 360, ph = 220, col = PAD_LEFT + pw + PAD_RIGHT;
    int W = max_int(cols * col + 10, title_width(title)), x_shift = (W - cols * col) / 2;
    int n_runs = 0, longest = 33, max_t = 1;
    for (int r = 0; r < data->n_runs; r++) {
        int any = 0;
        for (int k = 0; k < n; k++) any |= has_token_probe(data, r, labels[k]);
        if (any) {
            n_runs++;
            longest = max_int(longest, (int)strlen(data->runs[r].name));
        }
    }
    for (int i = 0; i < data->n_probes; i++)
        if (!strcmp(data->probes[i].site, "token")) max_t = max_int(max_t, data->probes[i].iteration);
    int key_px = plot_key_px(n_runs + 2, longest, W);
    int H = PLOT_TITLE_PX + rows * (PAD_TOP + ph + PAD_BOTTOM) + key_px;
    Plot plot;
    if (plot_begin(&plot, dir, name, W, H,
                   "run,label,site,iteration,scale,accuracy,ci_lo,ci_hi,majority,control_task,selectivity"))
        return -1;
    plot.key_px = key_px;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < data->n_probes; i++) {
            const ReportProbe *p = &data->probes[i];
            if (p->label != labels[k] || strcmp(p->site, "token")) continue;
            plot_csv_str(&plot, data->runs[p->run].name);
            plot_csv_str(&plot, data->labels[p->label]);
            plot_csv_str(&plot, p->site);
            plot_csv_int(&plot, p->iteration);
            plot_csv_int(&plot, p->scale);
            plot_csv_num(&plot, p->accuracy);
            plot_csv_num(&plot, p->ci_lo);
            plot_csv_num(&plot, p->ci_hi);
            plot_csv_num(&plot, p->majority);
            plot_csv_num(&plot, p->control_task);
            plot_csv_num(&plot, p->selectivity);
            plot_csv_end(&plot);
        }
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    unset key\n    set xrange [-0.25:%g]\n    set xtics 1\n"
                   "    set offsets 0, 0, graph 0.05, graph 0.05\n", max_t + 0.25);
    gp_set_string(s, "xlabel", "iteration t (state h(t))");
    gp_set_string(s, "ylabel", "test accuracy");
    for (int k = 0; k < n; k++) {
        const char *label = data->labels[labels[k]];
        gp_comment(s, "label", label);
        plot_panel(&plot, x_shift + (k % cols) * col + PAD_LEFT,
                   PLOT_TITLE_PX + (k / cols) * (PAD_TOP + ph + PAD_BOTTOM) + PAD_TOP, pw, ph);
        gp_set_string(s, "title", label);
        text_printf(s, "    plot NaN notitle");
        int first_run = -1;
        /* every band first, then the lines: no line is covered by a band */
        for (int part = 0; part < 2; part++)
            for (int r = 0; r < data->n_runs; r++) {
                if (!has_token_probe(data, r, labels[k])) continue;
                if (first_run < 0) first_run = r;
                const ReportRun *run = &data->runs[r];
                char band[16];
                color_alpha(band, sizeof band, run->color, 0xb0);
                text_printf(s, ", \\\n        '%s.csv' using 4:(", name);
                plot_filter_eq(s, 1, run->name);
                text_printf(s, " && ");
                plot_filter_eq(s, 2, label);
                if (part == 0)
                    text_printf(s, " ? $7 : NaN):8 with filledcurves fc rgb '%s' fs solid noborder notitle",
                                band);
                else
                    text_printf(s, " ? $6 : NaN) with linespoints lt %d pt 7 notitle", run->color);
            }
        if (first_run >= 0) {
            text_printf(s, ", \\\n        '%s.csv' using 4:(", name);
            plot_filter_eq(s, 1, data->runs[first_run].name);
            text_printf(s, " && ");
            plot_filter_eq(s, 2, label);
            text_printf(s, " ? $9 : NaN) with lines lc rgb '#555555' dt 3 lw 1.5 notitle");
        }
        text_printf(s, "\n");
    }
    for (int r = 0; r < data->n_runs; r++) {
        int any = 0;
        for (int k = 0; k < n; k++) any |= has_token_probe(data, r, labels[k]);
        if (!any) continue;
        char style[64];
        snprintf(style, sizeof style, "with linespoints lt %d pt 7", data->runs[r].color);
        plot_key_entry(&plot, style, data->runs[r].name);
    }
    plot_key_entry(&plot, "with filledcurves fc rgb '#c8c8c8' fs solid noborder",
                   "95% interval (bootstrap over test sequences)");
    plot_key_entry(&plot, "with lines lc rgb '#555555' dt 3 lw 1.5", "majority class");
    return figure_finish(list, &plot, title, caption);
}

/* Accuracy vs iteration, a figure per label level (at most 6 labels each). */
int figure_probe_curves(FigureList *list, const ReportData *data, const char *dir) {
    /* the labels with token probes, grouped by level in order of first appearance */
    int n_labels = data->n_labels, done[n_labels > 0 ? n_labels : 1], any = 0;
    for (int l = 0; l < n_labels; l++) {
        done[l] = 1;
        for (int r = 0; r < data->n_runs; r++)
            if (has_token_probe(data, r, l)) done[l] = 0;
        any |= !done[l];
    }
    if (!any)
        return figure_add(list, NULL, "probe_curves", "Probe test accuracy vs iteration",
                          "Accuracy of the probes per label level.",
                          "no probe results at token sites yet (spiral probe)");
    for (int l = 0; l < n_labels; l++) {
        if (done[l]) continue;
        char level[REPORT_LABEL_CAP], other[REPORT_LABEL_CAP], safe[REPORT_LABEL_CAP];
        label_level(level, sizeof level, data->labels[l]);
        int members[REPORT_LABEL_CAP * 4], n = 0, part = 1;
        for (int m = l; m < n_labels; m++) {
            if (done[m]) continue;
            label_level(other, sizeof other, data->labels[m]);
            if (strcmp(level, other)) continue;
            members[n++] = m;
            done[m] = 1;
            if (n == 6) {
                /* a full figure: draw it, continue the level in the next */
                char name[64];
                safe_name(safe, sizeof safe, level);
                if (part == 1) snprintf(name, sizeof name, "probe_curves_%.32s", safe);
                else snprintf(name, sizeof name, "probe_curves_%.32s_%d", safe, part);
                if (probe_curves_figure(list, data, dir, name, level, members, n)) return -1;
                n = 0;
                part++;
            }
        }
        if (n) {
            char name[64];
            safe_name(safe, sizeof safe, level);
            if (part == 1) snprintf(name, sizeof name, "probe_curves_%.32s", safe);
            else snprintf(name, sizeof name, "probe_curves_%.32s_%d", safe, part);
            if (probe_curves_figure(list, data, dir, name, level, members, n)) return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Per-iteration series from analysis_results (attention, loop diagnostics) */

/* One panel of a series figure: the rows of one analysis kind. */
typedef struct {
    const char *kind;        /* analysis_results.kind */
    const char *statistic;   /* its name in the CSV */
    const char *title, *xlabel, *ylabel;
    int has_ci;              /* draw the ci_lo..ci_hi band */
    int per_step;            /* iteration t is a loop step (g column filled) */
} SeriesPanel;

/* Prepares the query of one kind of a recording, ordered by iteration. */
static int analysis_query(Store *store, sqlite3_stmt **stmt) {
    if (sqlite3_prepare_v2(store->db,
                           "SELECT iteration, iteration2, value, ci_lo, ci_hi, data FROM analysis_results"
                           " WHERE recording_id = ? AND kind = ? ORDER BY iteration, iteration2",
                           -1, stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: reading analysis_results: %s", store->path, sqlite3_errmsg(store->db));
    return 0;
}

/* Lines with CI bands per run, one panel per kind, from analysis_results. */
static int figure_series(FigureList *list, Store *store, const ReportData *data, const char *dir,
                         const char *name, const char *title, const char *caption, const char *skip_note,
                         const SeriesPanel *panels, int n_panels) {
    sqlite3_stmt *stmt;
    if (analysis_query(store, &stmt)) return -1;
    int has[data->n_runs > 0 ? data->n_runs : 1], n_with = 0, longest = 24, any_ci = 0;
    int max_t[n_panels];
    for (int k = 0; k < n_panels; k++) max_t[k] = 1;
    for (int r = 0; r < data->n_runs; r++) {
        has[r] = 0;
        for (int k = 0; k < n_panels && data->runs[r].recording_id; k++) {
            sqlite3_reset(stmt);
            sqlite3_bind_int64(stmt, 1, data->runs[r].recording_id);
            sqlite3_bind_text(stmt, 2, panels[k].kind, -1, SQLITE_STATIC);
            while (sqlite3_step(stmt) == SQLITE_ROW) {
                has[r] = 1;
                max_t[k] = max_int(max_t[k], sqlite3_column_int(stmt, 0));
                any_ci |= panels[k].has_ci;
            }
        }
        if (has[r]) {
            n_with++;
            longest = max_int(longest, (int)strlen(data->runs[r].name));
        }
    }
    if (n_with == 0) {
        sqlite3_finalize(stmt);
        return figure_add(list, NULL, name, title, caption, skip_note);
    }
    int pw = 500, ph = 360, col = PAD_LEFT + pw + PAD_RIGHT + 10;
    int W = max_int(n_panels * col + 10, title_width(title)), x_shift = (W - n_panels * col) / 2;
    int key_px = plot_key_px(n_with + any_ci, longest, W);
    int H = PLOT_TITLE_PX + PAD_TOP + ph + PAD_BOTTOM + key_px;
    Plot plot;
    if (plot_begin(&plot, dir, name, W, H, "run,statistic,iteration,g,value,ci_lo,ci_hi")) {
        sqlite3_finalize(stmt);
        return -1;
    }
    plot.key_px = key_px;
    for (int k = 0; k < n_panels; k++)
        for (int r = 0; r < data->n_runs; r++) {
            const ReportRun *run = &data->runs[r];
            if (!has[r]) continue;
            sqlite3_reset(stmt);
            sqlite3_bind_int64(stmt, 1, run->recording_id);
            sqlite3_bind_text(stmt, 2, panels[k].kind, -1, SQLITE_STATIC);
            while (sqlite3_step(stmt) == SQLITE_ROW) {
                int t = sqlite3_column_int(stmt, 0);
                plot_csv_str(&plot, run->name);
                plot_csv_str(&plot, panels[k].statistic);
                plot_csv_int(&plot, t);
                if (panels[k].per_step && t >= 0 && t < run->n_steps) plot_csv_int(&plot, run->step_g[t]);
                else plot_csv_num(&plot, NAN);
                for (int c = 2; c <= 4; c++)
                    plot_csv_num(&plot, sqlite3_column_type(stmt, c) == SQLITE_NULL ? NAN
                                                                                   : sqlite3_column_double(stmt, c));
                plot_csv_end(&plot);
            }
        }
    sqlite3_finalize(stmt);
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    unset key\n    set xtics 1\n    set offsets 0, 0, graph 0.05, graph 0.05\n");
    for (int k = 0; k < n_panels; k++) {
        text_printf(s, "    # panel %d: %s\n    set xrange [-0.25:%g]\n", k + 1, panels[k].statistic,
                    max_t[k] + 0.25);
        plot_panel(&plot, x_shift + k * col + PAD_LEFT, PLOT_TITLE_PX + PAD_TOP, pw, ph);
        gp_set_string(s, "title", panels[k].title);
        gp_set_string(s, "xlabel", panels[k].xlabel);
        gp_set_string(s, "ylabel", panels[k].ylabel);
        text_printf(s, "    plot NaN notitle");
        /* every band first, then the lines: no line is covered by a band */
        for (int part = panels[k].has_ci ? 0 : 1; part < 2; part++)
            for (int r = 0; r < data->n_runs; r++) {
                if (!has[r]) continue;
                const ReportRun *run = &data->runs[r];
                char band[16];
                color_alpha(band, sizeof band, run->color, 0xb0);
                text_printf(s, ", \\\n        '%s.csv' using 3:(", name);
                plot_filter_eq(s, 1, run->name);
                text_printf(s, " && ");
                plot_filter_eq(s, 2, panels[k].statistic);
                if (part == 0)
                    text_printf(s, " ? $6 : NaN):7 with filledcurves fc rgb '%s' fs solid noborder notitle",
                                band);
                else
                    text_printf(s, " ? $5 : NaN) with linespoints lt %d pt 7 notitle", run->color);
            }
        text_printf(s, "\n");
    }
    for (int r = 0; r < data->n_runs; r++) {
        if (!has[r]) continue;
        char style[64];
        snprintf(style, sizeof style, "with linespoints lt %d pt 7", data->runs[r].color);
        plot_key_entry(&plot, style, data->runs[r].name);
    }
    if (any_ci)
        plot_key_entry(&plot, "with filledcurves fc rgb '#c8c8c8' fs solid noborder",
                       "95% interval (bootstrap over sequences)");
    return figure_finish(list, &plot, title, caption);
}

/* The selected heads' distance and entropy per loop step. */
int figure_attention(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    const SeriesPanel panels[2] = {
        {"selected_attn_distance", "distance", "mean attention distance of the selected heads",
         "loop step t (dense: core layer t)", "attention distance (tokens)", 1, 1},
        {"selected_attn_entropy", "entropy", "attention entropy of the selected heads",
         "loop step t (dense: core layer t)", "attention entropy (nats)", 1, 1}};
    return figure_series(list, store, data, dir, "attention",
                         "Attention of the selected heads per loop step (global to local): spiral vs baselines",
                         "Per loop step t, the mean over the selected heads (the 40% of core heads whose"
                         " mean distance changes most across steps) of the attention distance in tokens"
                         " (a latent stands at its last member) and of the entropy, averaged over queries,"
                         " with bootstrap intervals over sequences.",
                         "no attention analysis yet (spiral analyze)", panels, 2);
}

/* Update size per step and effective rank per state. */
int figure_loop_update(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    const SeriesPanel panels[2] = {
        {"update_size", "update_size", "relative update per loop step",
         "loop step t: h(t) to h(t+1)", "||h(t+1) - h(t)|| / ||h(t)||", 1, 1},
        {"effective_rank", "effective_rank", "effective rank of the token states",
         "state h(t)", "effective rank (of d dimensions)", 0, 0}};
    return figure_series(list, store, data, dir, "loop_update",
                         "Loop diagnostics: update size per step and effective rank per state",
                         "Left: Frobenius norm of the update of the token states over that of the"
                         " states, per sequence, mean and bootstrap interval over sequences. Right:"
                         " effective rank (exp of the entropy of the normalized singular values) of"
                         " the stacked states h(t).",
                         "no loop diagnostics yet (spiral analyze)", panels, 2);
}

/* ------------------------------------------------------------------------ */
/* CKA heatmaps                                                             */

/* One matrix panel: CKA rows of recording rec, restricted to run_id (0: the
 * recording's own rows of kind). */
typedef struct {
    int run_x, run_y;        /* indices into data->runs */
    int n_x, n_y;            /* states: max t + 1, max u + 1 */
} MatrixPanel;

/* Heatmaps of CKA matrices: kind "cka" (a panel per run) or "cka_cross" (a
 * panel per pair of runs). */
static int figure_matrix(FigureList *list, Store *store, const ReportData *data, const char *dir,
                         int cross) {
    const char *name = cross ? "cka_cross" : "cka";
    const char *title = cross ? "Linear CKA between the token states of two runs, h(t) of one vs h(u) of the other"
                              : "Linear CKA between the token states h(t) and h(u) of each run";
    const char *caption = cross
        ? "Linear CKA between run A's h(t) and run B's h(u) on the same recorded windows, token by"
          " token: which iterations of one model represent what which iterations of the other do."
        : "Linear CKA between the stacked token states of iterations t and u (1 on the diagonal):"
          " how much the representation changes along the loop.";
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT iteration, iteration2, value FROM analysis_results WHERE recording_id = ?"
                           " AND kind = ? AND (? = 0 OR run_id = ?) ORDER BY iteration, iteration2",
                           -1, &stmt, NULL) != SQLITE_OK)
        return spiral_error("%s: reading analysis_results: %s", store->path, sqlite3_errmsg(store->db));
    MatrixPanel panels[64];
    int n_panels = 0;
    double lo = 1;
    for (int a = 0; a < data->n_runs; a++)
        for (int b = cross ? 0 : a; b < (cross ? data->n_runs : a + 1) && n_panels < 64; b++) {
            if (!data->runs[a].recording_id || (cross && a == b)) continue;
            MatrixPanel panel = {a, b, 0, 0};
            sqlite3_reset(stmt);
            sqlite3_bind_int64(stmt, 1, data->runs[a].recording_id);
            sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 3, cross ? data->runs[b].id : 0);
            sqlite3_bind_int64(stmt, 4, cross ? data->runs[b].id : 0);
            while (sqlite3_step(stmt) == SQLITE_ROW) {
                panel.n_x = max_int(panel.n_x, sqlite3_column_int(stmt, 0) + 1);
                panel.n_y = max_int(panel.n_y, sqlite3_column_int(stmt, 1) + 1);
                lo = fmin(lo, sqlite3_column_double(stmt, 2));
            }
            if (panel.n_x > 0 && panel.n_y > 0) panels[n_panels++] = panel;
        }
    if (n_panels == 0) {
        sqlite3_finalize(stmt);
        return figure_add(list, NULL, name, title, caption,
                          cross ? "no cross-run CKA yet (spiral analyze with several runs recorded on the same windows)"
                                : "no CKA yet (spiral analyze)");
    }
    /* color range: from a multiple of 0.05 below the smallest value to 1 */
    lo = fmax(0, floor(lo * 20 - 1e-9) / 20);
    if (lo > 0.95) lo = 0.95;
    int cell = 52, left = 44 + chars_px(3) + 30, right = HEAT_RIGHT, top = PAD_TOP, bottom = 62, max_h = 0, W = 10;
    for (int q = 0; q < n_panels; q++) {
        W += left + panels[q].n_x * cell + right;
        max_h = max_int(max_h, panels[q].n_y * cell);
    }
    int content_w = W;
    W = max_int(W, title_width(title));
    int H = PLOT_TITLE_PX + top + max_h + bottom;
    Plot plot;
    if (plot_begin(&plot, dir, name, W, H, "run_x,run_y,t,u,cka")) {
        sqlite3_finalize(stmt);
        return -1;
    }
    for (int q = 0; q < n_panels; q++) {
        const ReportRun *a = &data->runs[panels[q].run_x], *b = &data->runs[panels[q].run_y];
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, a->recording_id);
        sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, cross ? b->id : 0);
        sqlite3_bind_int64(stmt, 4, cross ? b->id : 0);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            plot_csv_str(&plot, a->name);
            plot_csv_str(&plot, b->name);
            plot_csv_int(&plot, sqlite3_column_int(stmt, 0));
            plot_csv_int(&plot, sqlite3_column_int(stmt, 1));
            plot_csv_num(&plot, sqlite3_column_double(stmt, 2));
            plot_csv_end(&plot);
        }
    }
    sqlite3_finalize(stmt);
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    unset key\n    unset grid\n    set tics scale 0\n    set border 15\n"
                   "    set cbrange [%g:1]\n    set cbtics %g\n"
                   "    set palette defined (0 '#fff7ec', 0.35 '#fdbb84', 0.7 '#e34a33', 1 '#7f0000')\n",
                lo, nice_step(1 - lo, 5));
    gp_set_string(s, "cblabel", "linear CKA");
    int x0 = (W - content_w) / 2; /* centred under the title */
    for (int q = 0; q < n_panels; q++) {
        const MatrixPanel *panel = &panels[q];
        const ReportRun *a = &data->runs[panel->run_x], *b = &data->runs[panel->run_y];
        int ax = x0 + left, ay = PLOT_TITLE_PX + top, aw = panel->n_x * cell, ah = panel->n_y * cell;
        char text[300];
        gp_comment(s, "run", a->name);
        if (cross) gp_comment(s, "vs", b->name);
        plot_panel(&plot, ax, ay, aw, ah);
        text_printf(s, "    set xrange [-0.5:%g]\n    set yrange [%g:-0.5]\n    set xtics 1\n    set ytics 1\n",
                    panel->n_x - 0.5, panel->n_y - 0.5);
        if (cross) snprintf(text, sizeof text, "%s vs %s", a->name, b->name);
        else snprintf(text, sizeof text, "%s", a->name);
        gp_set_string(s, "title", text);
        snprintf(text, sizeof text, "t: state h(t)%s%s", cross ? " of " : "", cross ? a->name : "");
        gp_set_string(s, "xlabel", text);
        snprintf(text, sizeof text, "u: state h(u)%s%s", cross ? " of " : "", cross ? b->name : "");
        gp_set_string(s, "ylabel", text);
        text_printf(s, "    set colorbox user origin screen %.5f, screen %.5f size screen %.5f, screen %.5f\n",
                    (ax + aw + 14.0) / W, 1.0 - (double)(ay + ah) / H, 16.0 / W, (double)ah / H);
        text_printf(s, "    plot '%s.csv' using 3:(", name);
        plot_filter_eq(s, 1, a->name);
        text_printf(s, " && ");
        plot_filter_eq(s, 2, b->name);
        text_printf(s, " ? $4 : NaN):(0.5):(0.5):5 with boxxyerror fc palette fs solid 1.0"
                       " border lc rgb '#ffffff' notitle, \\\n        '' using 3:(");
        plot_filter_eq(s, 1, a->name);
        text_printf(s, " && ");
        plot_filter_eq(s, 2, b->name);
        text_printf(s, " ? $4 : NaN):(sprintf('%%.%df', $5)):($5 > %g ? 0xffffff : 0x000000)"
                       " with labels tc rgb variable font ',9' notitle\n",
                    1 - lo < 0.1 ? 3 : 2, lo + 0.6 * (1 - lo));
        x0 += left + aw + right;
    }
    return figure_finish(list, &plot, title, caption);
}

/* CKA between a run's own states, a heatmap per run. */
int figure_cka(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    return figure_matrix(list, store, data, dir, 0);
}

/* CKA between two runs' states, a heatmap per pair. */
int figure_cka_cross(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    return figure_matrix(list, store, data, dir, 1);
}

/* ------------------------------------------------------------------------ */
/* Singular-value spectra                                                   */

/* Singular-value spectra of h(t), a panel per run, a line per state. */
int figure_spectrum(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    const char *title = "Singular-value spectra of the token states h(t), per run";
    const char *caption = "Normalized singular values p_k = s_k / sum s of the stacked token states of"
                          " each iteration (uncentered), largest first: a flatter spectrum spreads the"
                          " representation over more directions.";
    sqlite3_stmt *stmt;
    if (analysis_query(store, &stmt)) return -1;
    int runs[64], n_runs = 0, max_states = 1;
    for (int r = 0; r < data->n_runs && n_runs < 64; r++) {
        if (!data->runs[r].recording_id) continue;
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, data->runs[r].recording_id);
        sqlite3_bind_text(stmt, 2, "spectrum", -1, SQLITE_STATIC);
        int states = 0;
        while (sqlite3_step(stmt) == SQLITE_ROW) states++;
        if (states) {
            runs[n_runs++] = r;
            max_states = max_int(max_states, states);
        }
    }
    if (n_runs == 0) {
        sqlite3_finalize(stmt);
        return figure_add(list, NULL, "spectrum", title, caption, "no spectra yet (spiral analyze)");
    }
    /* a key per panel, right of its axes, titled with the run */
    int pw = 380, ph = 300, key_w = 130, col = PAD_LEFT + pw + key_w;
    int W = max_int(n_runs * col + 10, title_width(title)), x_shift = (W - n_runs * col) / 2;
    int H = PLOT_TITLE_PX + PAD_TOP + max_int(ph, 22 * max_states + 40) + PAD_BOTTOM;
    ph = H - PLOT_TITLE_PX - PAD_TOP - PAD_BOTTOM;
    Plot plot;
    if (plot_begin(&plot, dir, "spectrum", W, H, "run,iteration,k,share")) {
        sqlite3_finalize(stmt);
        return -1;
    }
    for (int q = 0; q < n_runs; q++) {
        const ReportRun *run = &data->runs[runs[q]];
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, run->recording_id);
        sqlite3_bind_text(stmt, 2, "spectrum", -1, SQLITE_STATIC);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            int n = sqlite3_column_bytes(stmt, 5) / 8;
            const unsigned char *bytes = sqlite3_column_blob(stmt, 5);
            for (int k = 0; k < n; k++) {
                double p;
                memcpy(&p, bytes + 8 * k, 8); /* float64 little-endian, as stored */
                plot_csv_str(&plot, run->name);
                plot_csv_int(&plot, sqlite3_column_int(stmt, 0));
                plot_csv_int(&plot, k + 1);
                plot_csv_num(&plot, p);
                plot_csv_end(&plot);
            }
        }
    }
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    set logscale y\n    set format y '%%.0e'\n"
                   "    set palette defined (0 '#fdae61', 0.5 '#d7191c', 1 '#2c003e')\n    unset colorbox\n");
    gp_set_string(s, "xlabel", "index k (largest first)");
    gp_set_string(s, "ylabel", "singular value share p_k");
    for (int q = 0; q < n_runs; q++) {
        const ReportRun *run = &data->runs[runs[q]];
        gp_comment(s, "run", run->name);
        plot_panel(&plot, x_shift + q * col + PAD_LEFT, PLOT_TITLE_PX + PAD_TOP, pw, ph);
        gp_set_string(s, "title", run->name);
        text_printf(s, "    set key at screen %.5f, screen %.5f left top vertical Left reverse samplen 1.5"
                       " box lc rgb '#bbbbbb' title ",
                    (x_shift + q * col + PAD_LEFT + pw + 14.0) / W, 1.0 - (PLOT_TITLE_PX + PAD_TOP + 0.0) / H);
        text_gp_string(s, run->name);
        text_printf(s, "\n    plot NaN notitle");
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, run->recording_id);
        sqlite3_bind_text(stmt, 2, "spectrum", -1, SQLITE_STATIC);
        int states = 0, iterations[SPIRAL_MAX_ITERS + 2];
        while (sqlite3_step(stmt) == SQLITE_ROW && states < SPIRAL_MAX_ITERS + 2)
            iterations[states++] = sqlite3_column_int(stmt, 0);
        for (int i = 0; i < states; i++) {
            text_printf(s, ", \\\n        'spectrum.csv' using 3:(");
            plot_filter_eq(s, 1, run->name);
            text_printf(s, " && $2 == %d && $4 > 0 ? $4 : NaN) with linespoints lw 1.5 pt 7 ps 0.5"
                           " lc palette frac %.4f title 'h(%d)'",
                        iterations[i], states > 1 ? (double)i / (states - 1) : 0.0, iterations[i]);
        }
        text_printf(s, "\n");
    }
    sqlite3_finalize(stmt);
    return figure_finish(list, &plot, title, caption);
}

/* ------------------------------------------------------------------------ */

/* Every figure type in report order. */
int figures_draw_all(FigureList *list, Store *store, const ReportData *data,
                     const Comparison *comparison, const char *dir) {
    if (figure_training(list, store, data, dir) ||
        figure_comparison(list, data, comparison, dir) ||
        figure_probe_heatmap(list, data, dir, 0) ||
        figure_probe_heatmap(list, data, dir, 1) ||
        figure_probe_curves(list, data, dir) ||
        figure_attention(list, store, data, dir) ||
        figure_loop_update(list, store, data, dir) ||
        figure_cka(list, store, data, dir) ||
        figure_cka_cross(list, store, data, dir) ||
        figure_spectrum(list, store, data, dir))
        return -1;
    return 0;
}
