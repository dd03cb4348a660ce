/*
 * figure_ablation.c: the ablation figure (figures.h): each variant's
 * difference in validation loss to the base at equal FLOPs, with its
 * Welch interval, one row per variant (report_ablation.h), colored by what
 * the paper reports: worse, better, or nothing.
 */
#include <math.h>
#include <string.h>

#include "figure_common.h"
#include "report_ablation.h"

/* The row's paper direction as a word for the CSV and the key. */
static const char *expected_word(int expected) {
    return expected > 0 ? "paper: worse" : expected < 0 ? "paper: better" : "paper: not reported";
}

/* Variant - base loss per variant, a horizontal error bar per row. */
int figure_ablation(FigureList *list, const Comparison *c, const char *dir) {
    const char *title = "Ablations: validation loss of each variant minus the base's, at equal FLOPs";
    const char *caption = "One row per variant (a group of seeds): the difference of its mean validation"
                          " loss to the base's (nats/token; right of 0 is worse) with the 95% Welch t"
                          " interval over the seeds of both. Color: the direction the paper reports"
                          " (red worse, green better, grey not reported). Open circles: a variant not"
                          " within the budget tolerance of the base's FLOPs.";
    AblationTable table;
    /* not an ablation study: no figure and no note (like the section) */
    if (!c) return 0;
    if (ablation_table_build(&table, c)) return -1;
    if (table.base < 0) return 0;
    int rows = 0, longest = 10;
    double lo = 0, hi = 0;
    for (int i = 0; i < table.n_rows; i++) {
        const AblationRow *row = &table.rows[i];
        if (!isfinite(row->delta.mean)) continue;
        rows++;
        longest = max_int(longest, (int)strlen(row->name));
        lo = fmin(lo, row->delta.lo);
        hi = fmax(hi, row->delta.hi);
    }
    if (rows == 0)
        return figure_add(list, NULL, "ablation", title, caption, "no variant has a reading at equal FLOPs yet");
    int left = figure_chars_px(longest) + 40, pw = 620, ph = 34 * rows + 40;
    int W = max_int(left + pw + PAD_RIGHT + 20, figure_title_width(title));
    int key_px = plot_key_px(3, 22, W);
    int H = PLOT_TITLE_PX + PAD_TOP + ph + PAD_BOTTOM + key_px;
    Plot plot;
    if (plot_begin(&plot, dir, "ablation", W, H,
                   "row,variant,change,seeds,flops_ratio,equal_flops,delta,delta_lo,delta_hi,expected,verdict"))
        return -1;
    plot.key_px = key_px;
    int y = rows;
    for (int i = 0; i < table.n_rows; i++) {
        const AblationRow *row = &table.rows[i];
        if (!isfinite(row->delta.mean)) continue;
        const CsvField fields[] = {csv_int(y--), csv_text(row->name), csv_text(row->change), csv_int(row->n),
                                   csv_num(row->flops_ratio), csv_int(row->equal_flops), csv_num(row->delta.mean),
                                   csv_num(row->delta.lo), csv_num(row->delta.hi), csv_int(row->expected),
                                   csv_text(row->verdict)};
        plot_csv_row(&plot, fields, (int)(sizeof fields / sizeof fields[0]));
    }
    double span = hi - lo > 0 ? hi - lo : 0.01;
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    unset key\n");
    plot_panel(&plot, left, PLOT_TITLE_PX + PAD_TOP, pw, ph);
    text_printf(s, "    set xrange [%g:%g]\n    set yrange [0.4:%g]\n", lo - 0.08 * span, hi + 0.08 * span,
                rows + 0.6);
    text_printf(s, "    set ytics (");
    y = rows;
    for (int i = 0; i < table.n_rows; i++) {
        if (!isfinite(table.rows[i].delta.mean)) continue;
        text_printf(s, "%s", y == rows ? "" : ", ");
        text_gp_string(s, table.rows[i].name);
        text_printf(s, " %d", y--);
    }
    text_printf(s, ")\n    set arrow 1 from 0, graph 0 to 0, graph 1 nohead lc rgb '#555555' dt 2\n");
    figure_gp_set(s, "xlabel", "validation loss difference to the base (nats/token, 95% Welch interval)");
    text_printf(s, "    plot NaN notitle");
    const char *colors[3] = {"#1a9641", "#888888", "#d7191c"}; /* better, silent, worse */
    for (int expected = -1; expected <= 1; expected++)
        for (int equal = 0; equal <= 1; equal++)
            text_printf(s, ", \\\n        'ablation.csv' using ($10 == %d && $6 == %d ? $7 : NaN):1:8:9"
                           " with xerrorbars lc rgb '%s' pt %d ps 1.5 lw 2 notitle",
                        expected, equal, colors[expected + 1], equal ? 7 : 6);
    text_printf(s, "\n    unset arrow 1\n"); /* not in the key strip drawn after this panel */
    for (int expected = 1; expected >= -1; expected--) {
        char style[64];
        snprintf(style, sizeof style, "with points lc rgb '%s' pt 7 ps 1.5", colors[expected + 1]);
        plot_key_entry(&plot, style, expected_word(expected));
    }
    return figure_finish(list, &plot, title, caption);
}
