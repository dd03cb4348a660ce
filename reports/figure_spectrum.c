/*
 * figure_spectrum.c: the singular-value spectra of the token states h(t)
 * (figures.h), a panel per run, a line per state.
 */
#include <string.h>

#include "figure_common.h"
#include "report_store.h"

/* Panels per row of the figure. */
#define SPECTRUM_PER_ROW 3

/* Draws the spectra: spectra[q] (n_spectra[q] states) of run runs[q]. */
static int draw_spectrum(FigureList *list, const ReportData *data, const char *dir, const char *title,
                         const char *caption, const int *runs, StoredAnalysis *const *spectra,
                         const int *n_spectra, int n_runs, int max_states) {
    /* a key per panel, right of its axes, titled with the run */
    /* rows of at most SPECTRUM_PER_ROW panels: many runs wrap */
    int per_row = n_runs < SPECTRUM_PER_ROW ? n_runs : SPECTRUM_PER_ROW, n_rows = (n_runs + per_row - 1) / per_row;
    int pw = 380, ph = max_int(300, 22 * max_states + 40), key_w = 130, col = PAD_LEFT + pw + key_w;
    int row_h = PAD_TOP + ph + PAD_BOTTOM;
    int W = max_int(per_row * col + 10, figure_title_width(title)), x_shift = (W - per_row * col) / 2;
    int H = PLOT_TITLE_PX + n_rows * row_h;
    Plot plot;
    if (plot_begin(&plot, dir, "spectrum", W, H, "run,iteration,k,share")) return -1;
    for (int q = 0; q < n_runs; q++) {
        const ReportRun *run = &data->runs[runs[q]];
        for (int i = 0; i < n_spectra[q]; i++) {
            const StoredAnalysis *a = &spectra[q][i];
            for (int k = 0; k < a->n_data; k++) {
                const CsvField row[] = {csv_text(run->name), csv_int(a->iteration), csv_int(k + 1),
                                        csv_num(a->data[k])};
                plot_csv_row(&plot, row, (int)(sizeof row / sizeof row[0]));
            }
        }
    }
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    set logscale y\n    set format y '%%.0e'\n"
                   "    set palette defined (0 '#fdae61', 0.5 '#d7191c', 1 '#2c003e')\n    unset colorbox\n");
    figure_gp_set(s, "xlabel", "index k (largest first)");
    figure_gp_set(s, "ylabel", "singular value share p_k");
    for (int q = 0; q < n_runs; q++) {
        const ReportRun *run = &data->runs[runs[q]];
        figure_gp_comment(s, "run", run->name);
        int px = x_shift + (q % per_row) * col + PAD_LEFT, py = PLOT_TITLE_PX + (q / per_row) * row_h + PAD_TOP;
        plot_panel(&plot, px, py, pw, ph);
        figure_gp_set(s, "title", run->name);
        text_printf(s, "    set key at screen %.5f, screen %.5f left top vertical Left reverse samplen 1.5"
                       " box lc rgb '#bbbbbb' title ",
                    (px + pw + 14.0) / W, 1.0 - (double)py / H);
        text_gp_string(s, run->name);
        text_printf(s, "\n    plot NaN notitle");
        int states = n_spectra[q] < SPIRAL_MAX_ITERS + 2 ? n_spectra[q] : SPIRAL_MAX_ITERS + 2;
        int iterations[SPIRAL_MAX_ITERS + 2];
        for (int i = 0; i < states; i++) iterations[i] = spectra[q][i].iteration;
        for (int i = 0; i < states; i++) {
            text_printf(s, ", \\\n        'spectrum.csv' using 3:(");
            plot_filter_eq(s, 1, run->name);
            /* a point type per state too: overlapping spectra stay apart */
            text_printf(s, " && $2 == %d && $4 > 0 ? $4 : NaN) with linespoints lw 1.5 pt %d ps 0.6"
                           " lc palette frac %.4f title 'h(%d)'",
                        iterations[i], plot_point_type(i + 1, i % 2 == 0), states > 1 ? (double)i / (states - 1) : 0.0,
                        iterations[i]);
        }
        text_printf(s, "\n");
    }
    return figure_finish(list, &plot, title, caption);
}

/* Singular-value spectra of h(t), a panel per run, a line per state. */
int figure_spectrum(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    const char *title = "Singular-value spectra of the token states h(t), per run";
    const char *caption = "Normalized singular values p_k = s_k / sum s of the stacked token states of"
                          " each iteration (uncentered), largest first: a flatter spectrum spreads the"
                          " representation over more directions.";
    /* the runs with spectra (at most 64 panels), their rows of kind spectrum */
    int runs[64], n_runs = 0, max_states = 1, status = 0;
    StoredAnalysis *spectra[64];
    int n_spectra[64];
    for (int r = 0; r < data->n_runs && n_runs < 64 && status == 0; r++) {
        if (!data->runs[r].recording_id) continue;
        status = report_store_analysis(store, data->runs[r].recording_id, "spectrum", 0, &spectra[n_runs],
                                       &n_spectra[n_runs]);
        if (status == 0 && n_spectra[n_runs]) {
            max_states = max_int(max_states, n_spectra[n_runs]);
            runs[n_runs++] = r;
        } else if (status == 0) {
            report_store_analysis_free(spectra[n_runs], n_spectra[n_runs]);
        }
    }
    if (status == 0 && n_runs == 0)
        status = figure_add(list, NULL, "spectrum", title, caption, "no spectra yet (spiral analyze)");
    else if (status == 0)
        status = draw_spectrum(list, data, dir, title, caption, runs, spectra, n_spectra, n_runs, max_states);
    for (int q = 0; q < n_runs; q++) report_store_analysis_free(spectra[q], n_spectra[q]);
    return status;
}
