/*
 * figure_probe_heatmap.c: the probe heatmaps (figures.h): test accuracy,
 * the random-model and lexical controls' accuracies and the selectivity of
 * each label (rows) at each site and iteration (columns), a panel per run
 * (token states and the coda) or per (run, latent site). Panels go side by
 * side up to HEAT_MAX_WIDTH pixels, then wrap to a new band below, so that
 * a figure of many runs keeps a size at which its cell text is readable.
 */
#include <math.h>
#include <string.h>

#include "figure_common.h"

/* The widest band of panels before wrapping, in pixels. */
#define HEAT_MAX_WIDTH 1500

/* The metric rows of every panel: CSV column, title, color bar label. */
enum { HEAT_METRICS = 4 };
static const struct {
    int column;
    const char *title, *bar;
} heat_metrics[HEAT_METRICS] = {
    {8, "test accuracy", "accuracy"},
    {14, "random-model control", "accuracy"},
    {15, "lexical control", "accuracy"},
    {12, "selectivity", "accuracy - control task"}};

/* One heatmap panel: a run's probes at a group of sites. */
typedef struct {
    int run;
    const char *site;        /* "token" (with the coda) or a latent site */
    int n_x;                 /* columns */
    int iterations[SPIRAL_MAX_ITERS + 2];  /* iteration of each column (-1: coda) */
    int scales[SPIRAL_MAX_ITERS + 2];
    int width;               /* panel width in pixels */
    int band, x;             /* its band (row of panels) and left edge in the band */
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

/* 1 if panel has a probe whose metric row `row` (heat_metrics) is finite:
 * an empty series is not plotted (gnuplot warns on it). */
static int panel_has_metric(const ReportData *data, const HeatPanel *panel, int row) {
    for (int i = 0; i < data->n_probes; i++) {
        const ReportProbe *p = &data->probes[i];
        if (heat_column(panel, p) < 0) continue;
        double v = row == 0 ? p->accuracy : row == 1 ? p->random_model : row == 2 ? p->lexical : p->selectivity;
        if (isfinite(v)) return 1;
    }
    return 0;
}

/* Accuracy, control and selectivity heatmaps: token sites (latent = 0) or latents. */
int figure_probe_heatmap(FigureList *list, const ReportData *data, const char *dir, int latent) {
    const char *name = latent ? "probe_heatmap_latent" : "probe_heatmap_token";
    const char *title = latent
        ? "Probe accuracy, controls and selectivity at the latents z and z~, per label and iteration (* = encoded)"
        : "Probe accuracy, controls and selectivity per label and token state h(t) (* = encoded)";
    const char *caption = latent
        ? "Rows of panels, per run and latent site: test accuracy of a linear probe reading the latent entering"
          " (latent_in, z) or leaving (latent_out, z~) the core at iteration t, chunk size g; the same probe on"
          " a randomly initialized model; the lexical control (a probe on the one-hot of the chunk's g tokens);"
          " selectivity = accuracy minus the control task's accuracy. * marks a label encoded there: the"
          " probe's margins over the random-model and lexical controls both have 95% intervals above 0."
        : "Rows of panels, per run: test accuracy of a linear probe reading h(t) (t = 0 is the prelude output;"
          " dense: the output of core layer t) and the coda output; the same probe on a randomly initialized"
          " model; the lexical control (a probe on the token itself, one-hot); selectivity = accuracy minus"
          " the control task's accuracy (Hewitt and Liang). * marks a label encoded there: the probe's"
          " margins over the random-model and lexical controls both have 95% intervals above 0.";
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
    int left = 44 + figure_chars_px(longest);
    /* at least 160 pixels high, so the colorbox has room for its ticks */
    int area_h = max_int(n_rows * CELL_H, 160);
    /* the layout: panels left to right, a new band when the next would
     * pass HEAT_MAX_WIDTH; the figure is as wide as its widest band */
    int n_bands = 1, band_w = 10, content_w = 0;
    for (int q = 0; q < n_panels; q++) {
        panels[q].width = left + panels[q].n_x * cell_w + HEAT_RIGHT;
        if (band_w > 10 && band_w + panels[q].width > HEAT_MAX_WIDTH) {
            n_bands++;
            band_w = 10;
        }
        panels[q].band = n_bands - 1;
        panels[q].x = band_w;
        band_w += panels[q].width;
        content_w = max_int(content_w, band_w);
    }
    int W = max_int(content_w, figure_title_width(title));
    int row_h = PAD_TOP + area_h + bottom;
    int band_h = HEAT_METRICS * row_h;
    int H = PLOT_TITLE_PX + n_bands * band_h + 8;
    Plot plot;
    if (plot_begin(&plot, dir, name, W, H,
                   "run,site,iteration,scale,label,x,y,accuracy,ci_lo,ci_hi,control_task,selectivity,encoded,"
                   "random_model,lexical"))
        return -1;
    for (int q = 0; q < n_panels; q++)
        for (int i = 0; i < data->n_probes; i++) {
            const ReportProbe *p = &data->probes[i];
            int x = heat_column(&panels[q], p);
            if (x < 0) continue;
            const CsvField row[] = {csv_text(data->runs[p->run].name), csv_text(p->site), csv_int(p->iteration),
                                    csv_int(p->scale), csv_text(data->labels[p->label]), csv_int(x),
                                    csv_int(row_of[p->label]), csv_num(p->accuracy), csv_num(p->ci_lo),
                                    csv_num(p->ci_hi), csv_num(p->control_task), csv_num(p->selectivity),
                                    csv_int(p->encoded), csv_num(p->random_model), csv_num(p->lexical)};
            plot_csv_row(&plot, row, (int)(sizeof row / sizeof row[0]));
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
    figure_gp_set(s, "ylabel", "probed label");
    int x0 = (W - content_w) / 2; /* centred under the title */
    for (int q = 0; q < n_panels; q++) {
        const HeatPanel *panel = &panels[q];
        const ReportRun *run = &data->runs[panel->run];
        figure_gp_comment(s, panel->site, run->name);
        text_printf(s, "    set xrange [-0.5:%g]\n    set xtics (", panel->n_x - 0.5);
        for (int x = 0; x < panel->n_x; x++) {
            if (panel->iterations[x] == -1) text_printf(s, "%s'coda' %d", x ? ", " : "", x);
            else if (latent) text_printf(s, "%s\"%d\\ng=%d\" %d", x ? ", " : "", panel->iterations[x],
                                         panel->scales[x], x);
            else text_printf(s, "%s'h(%d)' %d", x ? ", " : "", panel->iterations[x], x);
        }
        text_printf(s, ")\n");
        figure_gp_set(s, "xlabel", latent ? "iteration t (chunk size g)"
                                          : "state h(t) (dense: after core layer t), coda");
        if (latent) text_printf(s, "    set xlabel offset 0, -0.9\n");
        for (int row = 0; row < HEAT_METRICS; row++) {
            int ax = x0 + panel->x + left;
            int ay = PLOT_TITLE_PX + panel->band * band_h + row * row_h + PAD_TOP;
            int area_w = panel->n_x * cell_w, vcol = heat_metrics[row].column, diverging = row == 3;
            char panel_title[256];
            const char *where = latent ? (!strcmp(panel->site, "latent_in") ? "latent_in z" : "latent_out z~")
                                       : "token states";
            snprintf(panel_title, sizeof panel_title, "%s, %s: %s", run->name, where, heat_metrics[row].title);
            plot_panel(&plot, ax, ay, area_w, area_h);
            figure_gp_set(s, "title", panel_title);
            text_printf(s, "    set colorbox user origin screen %.5f, screen %.5f size screen %.5f, screen %.5f\n",
                        (ax + area_w + 14.0) / W, 1.0 - (double)(ay + area_h) / H, 16.0 / W,
                        (double)area_h / H);
            if (!diverging)
                text_printf(s, "    set cbrange [0:1]\n    set cbtics 0.2\n"
                               "    set palette defined (0 '#f7fbff', 0.3 '#c6dbef', 0.6 '#6baed6',"
                               " 0.8 '#2171b5', 1 '#08306b')\n");
            else
                text_printf(s, "    set cbrange [%g:%g]\n    set cbtics %g\n"
                               "    set palette defined (-1 '#2166ac', -0.5 '#92c5de', 0 '#f7f7f7',"
                               " 0.5 '#f4a582', 1 '#b2182b')\n",
                            -sel_max, sel_max, figure_nice_step(2 * sel_max, 4));
            figure_gp_set(s, "cblabel", heat_metrics[row].bar);
            if (!panel_has_metric(data, panel, row)) {
                text_printf(s, "    set label 1 'not fitted' at graph 0.5, graph 0.5 center\n"
                               "    plot NaN notitle\n    unset label 1\n");
                continue;
            }
            /* cell text: white on dark cells; the encoded mark on the probe's row */
            char dark[64];
            if (!diverging) snprintf(dark, sizeof dark, "$%d > 0.62", vcol);
            else snprintf(dark, sizeof dark, "abs($%d) > %g", vcol, 0.6 * sel_max);
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
            text_printf(s, " && valid(%d) ? $7 : NaN):(sprintf('%s', $%d)%s):"
                           "(%s ? 0xffffff : 0x000000) with labels tc rgb variable font ',9' notitle\n",
                        vcol, diverging ? "%+.2f" : "%.2f", vcol, row == 0 ? ".($13 == 1 ? '*' : '')" : "",
                        dark);
        }
    }
    return figure_finish(list, &plot, title, caption);
}
