/*
 * figure_training.c: the training curves (figures.h): loss vs tokens seen
 * and vs training FLOPs, every run with metrics in one color.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_store.h"
#include "error.h"
#include "figure_common.h"

/* The metrics of the report's runs and what the layout needs of them. */
typedef struct {
    MetricRow **metrics;       /* (n_runs) each run's rows, n_metrics[r] of them */
    int *n_metrics;
    int n_with;                /* runs with metrics */
    int longest;               /* characters of the longest of their names */
    int floors;                /* 1 if a dataset's entropy floor is known */
    double max_tokens, max_flops;
} TrainingCurves;

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
    int n_keys = curves->n_with + 2 + floors;
    int key_px = plot_key_px(n_keys, max_int(curves->longest, 26), W);
    int H = PLOT_TITLE_PX + PAD_TOP + ph + PAD_BOTTOM + key_px;
    Plot plot;
    if (plot_begin(&plot, dir, "training", W, H, "run,kind,dataset,series,step,tokens,flops,loss,entropy_floor"))
        return -1;
    plot.key_px = key_px;
    for (int r = 0; r < data->n_runs; r++) {
        const ReportRun *run = &data->runs[r];
        int d = report_data_dataset(data, run->dataset);
        double floor = d >= 0 ? data->datasets[d].floor_val : NAN;
        /* two passes: the training rows, then the validation rows */
        for (int series = 0; series < 2; series++)
            for (int i = 0; i < n_metrics[r]; i++) {
                const MetricRow *m = &metrics[r][i];
                double loss = series == 0 ? m->loss : m->val_loss;
                if (isnan(loss)) continue;
                const CsvField row[] = {csv_text(run->name), csv_text(run->kind), csv_text(run->dataset),
                                        csv_text(series == 0 ? "train" : "val"), csv_int(m->step),
                                        csv_num((double)m->tokens), csv_num(m->flops), csv_num(loss),
                                        csv_num(floor)};
                plot_csv_row(&plot, row, (int)(sizeof row / sizeof row[0]));
            }
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
        for (int r = 0; r < data->n_runs; r++) {
            if (!n_metrics[r]) continue;
            const ReportRun *run = &data->runs[r];
            char faint[16];
            figure_color_alpha(faint, sizeof faint, run->color, 0x90);
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
            if (!n_metrics[r]) continue;
            int d = report_data_dataset(data, data->runs[r].dataset), first = 1;
            for (int q = 0; q < r; q++)
                if (n_metrics[q] && !strcmp(data->runs[q].dataset, data->runs[r].dataset)) first = 0;
            if (!first || d < 0 || !isfinite(data->datasets[d].floor_val)) continue;
            text_printf(s, ", \\\n        %.10g with lines lc rgb '#333333' dt 2 lw 1.5 notitle",
                        data->datasets[d].floor_val);
        }
        text_printf(s, "\n");
    }
    for (int r = 0; r < data->n_runs; r++) {
        if (!n_metrics[r]) continue;
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

/* Loss vs tokens and vs FLOPs of every run with metrics (two panels). */
int figure_training(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    const char *title = "Training curves: loss vs tokens seen and vs training FLOPs";
    const char *caption = "Training loss of every step (thin) and validation loss at each"
                          " evaluation (points) of each run; dashed: the entropy floor of the"
                          " validation split (mean true next-token loss), where the dataset knows it.";
    /* each run's metrics, the axes' ranges, whether a floor exists */
    int n_runs = data->n_runs, status = 0;
    TrainingCurves c = {calloc((size_t)(n_runs > 0 ? n_runs : 1), sizeof *c.metrics),
                        calloc((size_t)(n_runs > 0 ? n_runs : 1), sizeof *c.n_metrics), 0, 0, 0, 0, 0};
    if (!c.metrics || !c.n_metrics) status = spiral_error("out of memory reading metrics");
    for (int r = 0; r < n_runs && status == 0; r++) {
        status = analysis_store_metrics(store, data->runs[r].id, &c.metrics[r], &c.n_metrics[r]);
        for (int i = 0; i < c.n_metrics[r]; i++) {
            c.max_tokens = fmax(c.max_tokens, (double)c.metrics[r][i].tokens);
            c.max_flops = fmax(c.max_flops, c.metrics[r][i].flops);
        }
        if (c.n_metrics[r]) {
            c.n_with++;
            c.longest = max_int(c.longest, (int)strlen(data->runs[r].name));
            int d = report_data_dataset(data, data->runs[r].dataset);
            if (d >= 0 && isfinite(data->datasets[d].floor_val)) c.floors = 1;
        }
    }
    if (status == 0 && c.n_with == 0)
        status = figure_add(list, NULL, "training", title, caption,
                            "no training metrics in the store yet (spiral train)");
    else if (status == 0)
        status = draw_training(list, data, dir, title, caption, &c);
    for (int r = 0; c.metrics && r < n_runs; r++) free(c.metrics[r]);
    free(c.metrics);
    free(c.n_metrics);
    return status;
}
