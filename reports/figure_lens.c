/*
 * figure_lens.c: what `spiral lens` measured (figures.h): the loss of the
 * model made to exit after each iteration, with and without the coda; the
 * loss against the number of iterations run (test-time depth); the loss
 * change when one iteration's update is ablated. A line and 95% interval
 * band per run (spiral beside its baselines), a panel per measurement that
 * some run has.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "figure_common.h"
#include "lens_store.h"

/* One panel: the rows of one lens mode. */
typedef struct {
    const char *mode;          /* lens_results.mode */
    const char *title, *xlabel, *ylabel;
    int delta;                 /* plot delta (else loss) */
} LensPanel;

static const LensPanel lens_panels[] = {
    {"coda", "exit after iteration t (coda + head)", "state h(t) the model exits at",
     "loss (nats/token)", 0},
    {"head", "exit after iteration t (head only, no coda)", "state h(t) the model exits at",
     "loss (nats/token)", 0},
    {"depth", "test-time depth: iterations run", "iterations run (trained schedule cut or "
     "extended)", "loss (nats/token)", 0},
    {"ablate", "update of iteration t set to zero", "iteration t ablated",
     "loss change (nats/token)", 1},
    {"ablate_mean", "update of iteration t set to its mean", "iteration t ablated",
     "loss change (nats/token)", 1},
};
enum { N_LENS_PANELS = sizeof lens_panels / sizeof lens_panels[0] };

/* Loss per exit and test-time depth of each run with lens results. */
int figure_lens(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    const char *title = "Inside the loop: loss after each iteration, test-time depth, ablations";
    const char *caption =
        "Per run, measured by spiral lens on the windows of its split: the loss when the model"
        " exits after iteration t, through the coda and head or through the head alone (t = T"
        " with the coda is the model itself); the loss with the trained schedule cut or extended"
        " to n iterations; the loss change when the update of one iteration is ablated. Lines"
        " are means over sequences, bands 95% t intervals.";
    int n_runs = data->n_runs, status = 0;
    LensRow **rows = calloc((size_t)(n_runs * N_LENS_PANELS > 0 ? n_runs * N_LENS_PANELS : 1),
                            sizeof *rows);
    int *n_rows = calloc((size_t)(n_runs * N_LENS_PANELS > 0 ? n_runs * N_LENS_PANELS : 1),
                         sizeof *n_rows);
    int has_panel[N_LENS_PANELS] = {0}, has_run[n_runs > 0 ? n_runs : 1];
    double max_x[N_LENS_PANELS];
    if (!rows || !n_rows) status = spiral_error("out of memory reading lens results");
    for (int r = 0; r < n_runs; r++) has_run[r] = 0;
    for (int k = 0; k < N_LENS_PANELS; k++) max_x[k] = 1;
    for (int r = 0; r < n_runs && status == 0; r++)
        for (int k = 0; k < N_LENS_PANELS && status == 0; k++) {
            long long step;
            int i = r * N_LENS_PANELS + k;
            /* the run's trained schedule first, else whatever schedule was measured */
            const ReportRun *run = &data->runs[r];
            char trained[160] = "";
            size_t used = 0;
            for (int t = 0; run->has_model && t < run->model.n_iters && used + 8 < sizeof trained; t++)
                used += (size_t)snprintf(trained + used, sizeof trained - used, "%s%d", t ? "," : "",
                                         run->model.schedule[t].g);
            status = lens_store_read(store, run->name, lens_panels[k].mode,
                                     trained[0] ? trained : NULL, &rows[i], &n_rows[i], &step);
            if (status == 0 && n_rows[i] == 0 && trained[0])
                status = lens_store_read(store, run->name, lens_panels[k].mode, NULL, &rows[i],
                                         &n_rows[i], &step);
            for (int j = 0; j < n_rows[i]; j++)
                if (rows[i][j].iteration > max_x[k]) max_x[k] = rows[i][j].iteration;
            if (n_rows[i]) has_panel[k] = has_run[r] = 1;
        }
    int n_panels = 0, n_with = 0, longest = 24;
    for (int k = 0; k < N_LENS_PANELS; k++) n_panels += has_panel[k];
    for (int r = 0; r < n_runs; r++)
        if (has_run[r]) {
            n_with++;
            longest = max_int(longest, (int)strlen(data->runs[r].name));
        }
    if (status == 0 && n_panels == 0)
        status = figure_add(list, NULL, "lens", title, caption,
                            "no lens results yet (spiral lens)");
    else if (status == 0) {
        int pw = 420, ph = 340, col = PAD_LEFT + pw + PAD_RIGHT + 10;
        int W = max_int(n_panels * col + 10, figure_title_width(title));
        int x_shift = (W - n_panels * col) / 2;
        int key_px = plot_key_px(n_with + 1, longest, W);
        int H = PLOT_TITLE_PX + PAD_TOP + ph + PAD_BOTTOM + key_px;
        Plot plot;
        status = plot_begin(&plot, dir, "lens", W, H, "run,mode,x,g,value,ci_lo,ci_hi");
        if (status == 0) {
            plot.key_px = key_px;
            for (int k = 0; k < N_LENS_PANELS; k++)
                for (int r = 0; r < n_runs; r++) {
                    int i = r * N_LENS_PANELS + k;
                    for (int j = 0; j < n_rows[i]; j++) {
                        const LensRow *a = &rows[i][j];
                        if (a->slot >= 0) continue;
                        int delta = lens_panels[k].delta;
                        const CsvField row[] = {
                            csv_text(data->runs[r].name), csv_text(lens_panels[k].mode),
                            csv_int(a->iteration), csv_int(a->g),
                            csv_num(delta ? a->delta : a->loss),
                            csv_num(delta ? a->delta_lo : a->loss_lo),
                            csv_num(delta ? a->delta_hi : a->loss_hi)};
                        plot_csv_row(&plot, row, (int)(sizeof row / sizeof row[0]));
                    }
                }
            Text *s = &plot.script;
            plot_multiplot(&plot, title);
            text_printf(s, "    unset key\n    set xtics 1\n"
                           "    set offsets 0, 0, graph 0.05, graph 0.05\n");
            int p = 0;
            for (int k = 0; k < N_LENS_PANELS; k++) {
                if (!has_panel[k]) continue;
                double lo = !strcmp(lens_panels[k].mode, "depth") ? 0.75 : -0.25;
                text_printf(s, "    # panel %d: %s\n    set xrange [%g:%g]\n", p + 1,
                            lens_panels[k].mode, lo, max_x[k] + 0.25);
                plot_panel(&plot, x_shift + p * col + PAD_LEFT, PLOT_TITLE_PX + PAD_TOP, pw, ph);
                figure_gp_set(s, "title", lens_panels[k].title);
                figure_gp_set(s, "xlabel", lens_panels[k].xlabel);
                figure_gp_set(s, "ylabel", lens_panels[k].ylabel);
                text_printf(s, "    plot NaN notitle");
                /* every band first, then the lines */
                for (int part = 0; part < 2; part++)
                    for (int r = 0; r < n_runs; r++) {
                        if (!n_rows[r * N_LENS_PANELS + k]) continue;
                        const ReportRun *run = &data->runs[r];
                        char band[16];
                        figure_color_alpha(band, sizeof band, run->color, 0xb0);
                        text_printf(s, ", \\\n        'lens.csv' using 3:(");
                        plot_filter_eq(s, 1, run->name);
                        text_printf(s, " && ");
                        plot_filter_eq(s, 2, lens_panels[k].mode);
                        if (part == 0)
                            text_printf(s, " ? $6 : NaN):7 with filledcurves fc rgb '%s' fs solid "
                                           "noborder notitle", band);
                        else
                            text_printf(s, " ? $5 : NaN) with linespoints lt %d notitle",
                                        run->color);
                    }
                text_printf(s, "\n");
                p++;
            }
            for (int r = 0; r < n_runs; r++) {
                if (!has_run[r]) continue;
                char style[64];
                snprintf(style, sizeof style, "with linespoints lt %d", data->runs[r].color);
                plot_key_entry(&plot, style, data->runs[r].name);
            }
            plot_key_entry(&plot, "with filledcurves fc rgb '#c8c8c8' fs solid noborder",
                           "95% t interval over sequences");
            status = figure_finish(list, &plot, title, caption);
        }
    }
    for (int i = 0; rows && i < n_runs * N_LENS_PANELS; i++) free(rows[i]);
    free(rows);
    free(n_rows);
    return status;
}
