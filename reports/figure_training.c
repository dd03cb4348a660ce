/*
 * figure_training.c: the training curves (figures.h): loss vs tokens seen
 * and vs training FLOPs, every run with metrics in one style. Runs that
 * differ only in their seed (a group of compare.h with two or more runs
 * with metrics) are drawn as one curve: the mean over the seeds at each
 * step they share, the validation loss with its 95% t interval as a band
 * and each seed's validation points beside it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_store.h"
#include "error.h"
#include "figure_common.h"
#include "stats.h"

/* The metrics of the report's runs and what the layout needs of them. */
typedef struct {
    MetricRow **metrics;       /* (n_runs) each run's rows, n_metrics[r] of them */
    int *n_metrics;
    int n_with;                /* runs with metrics */
    int longest;               /* characters of the longest of their names */
    int floors;                /* 1 if a run's entropy floor is known */
    double max_tokens, max_flops;
    int *lead;                 /* (n_runs) the first run of r's seed group with metrics, r if alone */
    int *n_seeds;              /* (n_runs) of a lead: its group's runs with metrics (1: alone) */
    int any_group;             /* some lead has n_seeds >= 2 */
} TrainingCurves;

/* The row of `rows` (n, sorted by step) at step, or NULL. */
static const MetricRow *row_at(const MetricRow *rows, int n, long long step) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (rows[mid].step == step) return &rows[mid];
        if (rows[mid].step < step) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

/* Writes the mean rows of the seed group led by run `lead`: at each step
 * of the lead where every seed has the value, the mean training loss
 * (series train_mean) and the mean validation loss with its 95% t interval
 * (val_mean). */
static void write_group_means(Plot *plot, const ReportData *data, const TrainingCurves *c, int lead,
                              double floor) {
    const ReportRun *run = &data->runs[lead];
    int k = c->n_seeds[lead];
    double values[k], tokens[k], flops[k];
    for (int series = 0; series < 2; series++)
        for (int i = 0; i < c->n_metrics[lead]; i++) {
            long long step = c->metrics[lead][i].step;
            int n = 0;
            for (int r = 0; r < data->n_runs; r++) {
                if (c->lead[r] != lead) continue;
                const MetricRow *m = row_at(c->metrics[r], c->n_metrics[r], step);
                double v = m ? (series == 0 ? m->loss : m->val_loss) : NAN;
                if (isnan(v)) break;
                values[n] = v;
                tokens[n] = (double)m->tokens;
                flops[n++] = m->flops;
            }
            if (n < k) continue;
            MeanInterval mean, t_mean, f_mean;
            if (stats_mean_ci_t(&mean, values, n, 0.95) || stats_mean_ci_t(&t_mean, tokens, n, 0.95) ||
                stats_mean_ci_t(&f_mean, flops, n, 0.95))
                continue;
            const CsvField row[] = {csv_text(run->name), csv_text(run->kind), csv_text(run->dataset),
                                    csv_text(series == 0 ? "train_mean" : "val_mean"), csv_int(step),
                                    csv_num(t_mean.mean), csv_num(f_mean.mean), csv_num(mean.mean),
                                    csv_num(series == 0 ? NAN : mean.lo), csv_num(series == 0 ? NAN : mean.hi),
                                    csv_num(floor), csv_int(n)};
            plot_csv_row(plot, row, (int)(sizeof row / sizeof row[0]));
        }
}

/* The key name of a run, or of the seed group it leads. */
static void curve_label(char *out, size_t size, const ReportData *data, const TrainingCurves *c, int lead) {
    if (c->n_seeds[lead] < 2) {
        snprintf(out, size, "%s", data->runs[lead].name);
        return;
    }
    size_t used = 0;
    out[0] = 0;
    for (int r = 0; r < data->n_runs && used + 1 < size; r++) {
        if (c->lead[r] != lead) continue;
        if (used > 36) {
            used += (size_t)snprintf(out + used, size - used, ", ...");
            break;
        }
        used += (size_t)snprintf(out + used, size - used, "%s%s", used ? ", " : "", data->runs[r].name);
    }
    if (used + 1 < size) snprintf(out + used, size - used, ": mean of %d seeds", c->n_seeds[lead]);
}

/* Draws the training figure from the runs' metrics. */
static int draw_training(FigureList *list, const ReportData *data, const char *dir, const char *title,
                         const char *caption, const TrainingCurves *curves) {
    MetricRow *const *metrics = curves->metrics;
    const int *n_metrics = curves->n_metrics;
    int floors = curves->floors;
    double token_scale, flop_scale;
    char token_suffix[32], flop_suffix[32];
    figure_axis_scale(curves->max_tokens, 1, &token_scale, token_suffix, sizeof token_suffix);
    figure_axis_scale(curves->max_flops, 0, &flop_scale, flop_suffix, sizeof flop_suffix);

    int pw = 560, ph = 400, col = PAD_LEFT + pw + PAD_RIGHT;
    int W = max_int(2 * col + 10, figure_title_width(title)), x_shift = (W - 2 * col) / 2;
    int n_curves = 0, longest = 26;
    char label[200];
    for (int r = 0; r < data->n_runs; r++) {
        if (!n_metrics[r] || curves->lead[r] != r) continue;
        n_curves++;
        curve_label(label, sizeof label, data, curves, r);
        longest = max_int(longest, (int)strlen(label));
    }
    int n_keys = n_curves + 2 + floors + 2 * curves->any_group;
    int key_px = plot_key_px(n_keys, longest, W);
    int H = PLOT_TITLE_PX + PAD_TOP + ph + PAD_BOTTOM + key_px;
    Plot plot;
    if (plot_begin(&plot, dir, "training", W, H,
                   "run,kind,dataset,series,step,tokens,flops,loss,ci_lo,ci_hi,entropy_floor,n_seeds"))
        return -1;
    plot.key_px = key_px;
    for (int r = 0; r < data->n_runs; r++) {
        const ReportRun *run = &data->runs[r];
        double floor = run->val_floor;  /* over the run's validation targets */
        int grouped = curves->n_seeds[curves->lead[r]] >= 2;
        /* two passes: the training rows (a seed of a group: its mean only),
         * then the validation rows */
        for (int series = grouped; series < 2; series++)
            for (int i = 0; i < n_metrics[r]; i++) {
                const MetricRow *m = &metrics[r][i];
                double loss = series == 0 ? m->loss : m->val_loss;
                if (isnan(loss)) continue;
                const CsvField row[] = {csv_text(run->name), csv_text(run->kind), csv_text(run->dataset),
                                        csv_text(series == 0 ? "train" : "val"), csv_int(m->step),
                                        csv_num((double)m->tokens), csv_num(m->flops), csv_num(loss),
                                        csv_num(NAN), csv_num(NAN), csv_num(floor), csv_int(1)};
                plot_csv_row(&plot, row, (int)(sizeof row / sizeof row[0]));
            }
        if (grouped && curves->lead[r] == r) write_group_means(&plot, data, curves, r, floor);
    }

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
        figure_gp_set(s, "title", panel == 0 ? "loss vs tokens seen" : "loss vs training FLOPs");
        figure_gp_set(s, "xlabel", xlabel);
        figure_gp_set(s, "ylabel", "loss (nats/token)");
        text_printf(s, "    plot NaN notitle");
        /* the seed groups' bands first: no line is covered by a band */
        for (int r = 0; r < data->n_runs; r++) {
            if (!n_metrics[r] || curves->lead[r] != r || curves->n_seeds[r] < 2) continue;
            char band[16];
            figure_color_alpha(band, sizeof band, data->runs[r].color, 0xb8);
            text_printf(s, ", \\\n        'training.csv' using ($%d/%g):(", xcol, scale);
            plot_filter_eq(s, 1, data->runs[r].name);
            text_printf(s, " && ");
            plot_filter_eq(s, 4, "val_mean");
            text_printf(s, " ? $9 : NaN):10 with filledcurves fc rgb '%s' fs solid noborder notitle", band);
        }
        for (int r = 0; r < data->n_runs; r++) {
            if (!n_metrics[r]) continue;
            const ReportRun *run = &data->runs[r];
            int lead = curves->lead[r], grouped = curves->n_seeds[lead] >= 2;
            const ReportRun *style = &data->runs[lead];
            char faint[16];
            figure_color_alpha(faint, sizeof faint, style->color, 0x90);
            if (grouped) {
                /* each seed's validation points, small and open */
                text_printf(s, ", \\\n        'training.csv' using ($%d/%g):(", xcol, scale);
                plot_filter_eq(s, 1, run->name);
                text_printf(s, " && ");
                plot_filter_eq(s, 4, "val");
                text_printf(s, " ? $8 : NaN) with points lt %d pt %d ps 0.8 lw 1 notitle", style->color,
                            plot_point_type(style->color, 0));
                if (lead != r) continue;
            }
            for (int series = 0; series < 2; series++) {
                text_printf(s, ", \\\n        'training.csv' using ($%d/%g):(", xcol, scale);
                plot_filter_eq(s, 1, run->name);
                text_printf(s, " && ");
                plot_filter_eq(s, 4, series == 0 ? (grouped ? "train_mean" : "train") : (grouped ? "val_mean" : "val"));
                if (series == 0)
                    text_printf(s, " ? $8 : NaN) with lines lt %d lc rgb '%s' lw 1 notitle", style->color, faint);
                else
                    text_printf(s, " ? $8 : NaN) with linespoints lt %d lw 2.5 ps 1.1 notitle", run->color);
            }
        }
        /* each distinct floor of the runs' validation targets (column
         * entropy_floor), across the panel */
        for (int r = 0; r < data->n_runs; r++) {
            double floor = data->runs[r].val_floor;
            if (!n_metrics[r] || !isfinite(floor)) continue;
            int first = 1;
            for (int q = 0; q < r; q++)
                if (n_metrics[q] && data->runs[q].val_floor == floor) first = 0;
            if (!first) continue;
            text_printf(s, ", \\\n        %.10g with lines lc rgb '#333333' dt 2 lw 1.5 notitle", floor);
        }
        text_printf(s, "\n");
    }
    for (int r = 0; r < data->n_runs; r++) {
        if (!n_metrics[r] || curves->lead[r] != r) continue;
        char style[64];
        snprintf(style, sizeof style, "with linespoints lt %d lw 2.5", data->runs[r].color);
        curve_label(label, sizeof label, data, curves, r);
        plot_key_entry(&plot, style, label);
    }
    plot_key_entry(&plot, "with lines lc rgb '#999999' lw 1", "training loss (every step)");
    plot_key_entry(&plot, "with linespoints lc rgb '#555555' lw 2.5 pt 7", "validation loss");
    if (curves->any_group) {
        plot_key_entry(&plot, "with filledcurves fc rgb '#c8c8c8' fs solid noborder",
                       "95% t interval over seeds");
        plot_key_entry(&plot, "with points lc rgb '#555555' pt 6 ps 0.8", "one seed's validation loss");
    }
    if (floors)
        plot_key_entry(&plot, "with lines lc rgb '#333333' dt 2 lw 1.5", "entropy floor (val targets)");
    return figure_finish(list, &plot, title, caption);
}

/* Finds the seed groups among the runs with metrics: c->lead and
 * c->n_seeds from the comparison's groups (none without a comparison). */
static void find_seed_groups(TrainingCurves *c, const ReportData *data, const Comparison *comparison) {
    int group[data->n_runs > 0 ? data->n_runs : 1];
    for (int r = 0; r < data->n_runs; r++) {
        group[r] = -1;
        for (int i = 0; comparison && i < comparison->n_runs; i++)
            if (!strcmp(comparison->runs[i].name, data->runs[r].name)) group[r] = comparison->runs[i].group;
        c->lead[r] = r;
        c->n_seeds[r] = 1;
    }
    for (int r = 0; r < data->n_runs; r++) {
        if (!c->n_metrics[r] || group[r] < 0) continue;
        for (int q = 0; q < r; q++)
            if (c->n_metrics[q] && group[q] == group[r]) {
                c->lead[r] = c->lead[q];
                c->n_seeds[c->lead[r]]++;
                c->any_group = 1;
                break;
            }
    }
}

/* Loss vs tokens and vs FLOPs of every run with metrics (two panels). */
int figure_training(FigureList *list, Store *store, const ReportData *data, const Comparison *comparison,
                    const char *dir) {
    const char *title = "Training curves: loss vs tokens seen and vs training FLOPs";
    const char *caption = "Training loss of every step (thin) and validation loss at each"
                          " evaluation (points) of each run; runs that differ only in their seed are"
                          " one curve, the mean over the seeds, with the 95% t interval of the"
                          " validation loss as a band and each seed's validation points (open);"
                          " dashed: the entropy floor (mean true next-token loss) over the targets"
                          " of the runs' validation windows, where the dataset knows it.";
    /* each run's metrics, the axes' ranges, whether a floor exists */
    int n_runs = data->n_runs, status = 0;
    size_t slots = (size_t)(n_runs > 0 ? n_runs : 1);
    TrainingCurves c = {.metrics = calloc(slots, sizeof *c.metrics), .n_metrics = calloc(slots, sizeof *c.n_metrics),
                        .lead = calloc(slots, sizeof *c.lead), .n_seeds = calloc(slots, sizeof *c.n_seeds)};
    if (!c.metrics || !c.n_metrics || !c.lead || !c.n_seeds) status = spiral_error("out of memory reading metrics");
    for (int r = 0; r < n_runs && status == 0; r++) {
        status = analysis_store_metrics(store, data->runs[r].id, &c.metrics[r], &c.n_metrics[r]);
        for (int i = 0; i < c.n_metrics[r]; i++) {
            c.max_tokens = fmax(c.max_tokens, (double)c.metrics[r][i].tokens);
            c.max_flops = fmax(c.max_flops, c.metrics[r][i].flops);
        }
        if (c.n_metrics[r]) {
            c.n_with++;
            c.longest = max_int(c.longest, (int)strlen(data->runs[r].name));
            if (isfinite(data->runs[r].val_floor)) c.floors = 1;
        }
    }
    if (status == 0) find_seed_groups(&c, data, comparison);
    if (status == 0 && c.n_with == 0)
        status = figure_add(list, NULL, "training", title, caption,
                            "no training metrics in the store yet (spiral train)");
    else if (status == 0)
        status = draw_training(list, data, dir, title, caption, &c);
    for (int r = 0; c.metrics && r < n_runs; r++) free(c.metrics[r]);
    free(c.metrics);
    free(c.n_metrics);
    free(c.lead);
    free(c.n_seeds);
    return status;
}
