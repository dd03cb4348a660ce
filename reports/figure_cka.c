/*
 * figure_cka.c: the CKA heatmaps (figures.h): linear CKA between the token
 * states h(t) and h(u) of each run, and between two runs' states.
 */
#include <math.h>
#include <string.h>

#include "figure_common.h"
#include "report_store.h"

/* Heatmaps per row of the figure. */
#define CKA_PER_ROW 4

/* One matrix panel: the CKA rows of run_x's recording (cka_cross: those
 * against run_y's states). */
typedef struct {
    int run_x, run_y;        /* indices into data->runs */
    int n_x, n_y;            /* states: max t + 1, max u + 1 */
    StoredAnalysis *rows;    /* (n_rows) */
    int n_rows;
} MatrixPanel;

/* Draws the CKA heatmaps of panels, colors from lo to 1. */
static int draw_matrix(FigureList *list, const ReportData *data, const char *dir, int cross, const char *title,
                       const char *caption, const MatrixPanel *panels, int n_panels, double lo) {
    const char *name = cross ? "cka_cross" : "cka";
    /* color range: from a multiple of 0.05 below the smallest value to 1 */
    lo = fmax(0, floor(lo * 20 - 1e-9) / 20);
    if (lo > 0.95) lo = 0.95;
    int cell = 52, left = 44 + figure_chars_px(3) + 30, right = HEAT_RIGHT, top = PAD_TOP, bottom = 74;
    /* rows of at most CKA_PER_ROW panels, so many runs wrap instead of
     * stretching the figure: each row as wide as its panels, as high as its
     * tallest */
    int n_rows = (n_panels + CKA_PER_ROW - 1) / CKA_PER_ROW, content_w = 10, H = PLOT_TITLE_PX;
    int row_w[n_rows > 0 ? n_rows : 1], row_h[n_rows > 0 ? n_rows : 1];
    for (int r = 0; r < n_rows; r++) {
        row_w[r] = 10;
        row_h[r] = 0;
        for (int q = r * CKA_PER_ROW; q < n_panels && q < (r + 1) * CKA_PER_ROW; q++) {
            row_w[r] += left + panels[q].n_x * cell + right;
            row_h[r] = max_int(row_h[r], panels[q].n_y * cell);
        }
        content_w = max_int(content_w, row_w[r]);
        H += top + row_h[r] + bottom;
    }
    int W = max_int(content_w, figure_title_width(title));
    Plot plot;
    if (plot_begin(&plot, dir, name, W, H, "run_x,run_y,t,u,cka")) return -1;
    for (int q = 0; q < n_panels; q++) {
        const ReportRun *a = &data->runs[panels[q].run_x], *b = &data->runs[panels[q].run_y];
        for (int i = 0; i < panels[q].n_rows; i++) {
            const StoredAnalysis *cka = &panels[q].rows[i];
            const CsvField row[] = {csv_text(a->name), csv_text(b->name), csv_int(cka->iteration),
                                    csv_int(cka->iteration2), csv_num(cka->value)};
            plot_csv_row(&plot, row, (int)(sizeof row / sizeof row[0]));
        }
    }
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    unset key\n    unset grid\n    set tics scale 0\n    set border 15\n"
                   "    set cbrange [%g:1]\n    set cbtics %g\n"
                   "    set palette defined (0 '#fff7ec', 0.35 '#fdbb84', 0.7 '#e34a33', 1 '#7f0000')\n",
                lo, figure_nice_step(1 - lo, 5));
    figure_gp_set(s, "cblabel", "linear CKA");
    int x0 = 0, y0 = PLOT_TITLE_PX;
    for (int q = 0; q < n_panels; q++) {
        const MatrixPanel *panel = &panels[q];
        const ReportRun *a = &data->runs[panel->run_x], *b = &data->runs[panel->run_y];
        if (q % CKA_PER_ROW == 0) {  /* a new row, centred under the title */
            if (q) y0 += top + row_h[q / CKA_PER_ROW - 1] + bottom;
            x0 = (W - row_w[q / CKA_PER_ROW]) / 2;
        }
        int ax = x0 + left, ay = y0 + top, aw = panel->n_x * cell, ah = panel->n_y * cell;
        char text[300];
        figure_gp_comment(s, "run", a->name);
        if (cross) figure_gp_comment(s, "vs", b->name);
        plot_panel(&plot, ax, ay, aw, ah);
        text_printf(s, "    set xrange [-0.5:%g]\n    set yrange [%g:-0.5]\n    set xtics 1\n    set ytics 1\n",
                    panel->n_x - 0.5, panel->n_y - 0.5);
        if (cross) snprintf(text, sizeof text, "%s vs %s", a->name, b->name);
        else snprintf(text, sizeof text, "%s", a->name);
        figure_gp_set(s, "title", text);
        snprintf(text, sizeof text, "t: state h(t)%s%s", cross ? " of " : "", cross ? a->name : "");
        figure_gp_set(s, "xlabel", text);
        snprintf(text, sizeof text, "u: state h(u)%s%s", cross ? " of " : "", cross ? b->name : "");
        figure_gp_set(s, "ylabel", text);
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
    MatrixPanel panels[64];
    int n_panels = 0, status = 0;
    double lo = 1;
    for (int a = 0; a < data->n_runs && status == 0; a++)
        for (int b = cross ? 0 : a; b < (cross ? data->n_runs : a + 1) && n_panels < 64 && status == 0; b++) {
            if (!data->runs[a].recording_id || (cross && a == b)) continue;
            MatrixPanel panel = {a, b, 0, 0, NULL, 0};
            status = report_store_analysis(store, data->runs[a].recording_id, name, cross ? data->runs[b].id : 0,
                                           &panel.rows, &panel.n_rows);
            for (int i = 0; i < panel.n_rows; i++) {
                panel.n_x = max_int(panel.n_x, panel.rows[i].iteration + 1);
                panel.n_y = max_int(panel.n_y, panel.rows[i].iteration2 + 1);
                lo = fmin(lo, panel.rows[i].value);
            }
            if (panel.n_x > 0 && panel.n_y > 0) panels[n_panels++] = panel;
            else report_store_analysis_free(panel.rows, panel.n_rows);
        }
    if (status == 0 && n_panels == 0)
        status = figure_add(list, NULL, name, title, caption,
                            cross ? "no cross-run CKA yet (spiral analyze with several runs recorded on the same windows)"
                                  : "no CKA yet (spiral analyze)");
    else if (status == 0)
        status = draw_matrix(list, data, dir, cross, title, caption, panels, n_panels, lo);
    for (int q = 0; q < n_panels; q++) report_store_analysis_free(panels[q].rows, panels[q].n_rows);
    return status;
}

/* CKA between a run's own states, a heatmap per run. */
int figure_cka(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    return figure_matrix(list, store, data, dir, 0);
}

/* CKA between two runs' states, a heatmap per pair. */
int figure_cka_cross(FigureList *list, Store *store, const ReportData *data, const char *dir) {
    return figure_matrix(list, store, data, dir, 1);
}
