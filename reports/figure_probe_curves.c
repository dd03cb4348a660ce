/*
 * figure_probe_curves.c: probe accuracy vs iteration at the token states
 * (figures.h), a panel per label, a figure per label level, with the
 * random-model and lexical controls of each run beside its probe and the
 * iterations where the label is encoded marked.
 */
#include <math.h>
#include <string.h>

#include "figure_common.h"

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

/* 1 if run r has a token-site probe of label l whose `what` is finite
 * (0 random model, 1 lexical control) or, for what = 2, that is encoded:
 * a series without a single point is left out (gnuplot warns on it). */
static int has_series(const ReportData *data, int r, int l, int what) {
    for (int i = 0; i < data->n_probes; i++) {
        const ReportProbe *p = &data->probes[i];
        if (p->run != r || p->label != l || strcmp(p->site, "token")) continue;
        if (what == 0 ? isfinite(p->random_model) : what == 1 ? isfinite(p->lexical) : p->encoded == 1)
            return 1;
    }
    return 0;
}

/* The legend entries after the runs', in order: style and title. */
static const char *const extra_key[4][2] = {
    {"with lines lc rgb '#555555' dt 2 lw 1.5", "random-model control (run's color, dashed)"},
    {"with lines lc rgb '#555555' dt 4 lw 1.5", "lexical control (run's color, dash-dot)"},
    {"with filledcurves fc rgb '#c8c8c8' fs solid noborder", "95% interval (bootstrap over test sequences)"},
    {"with lines lc rgb '#555555' dt 3 lw 1.5", "majority class"}};
#define ENCODED_KEY_STYLE "with points lc rgb '#555555' pt 6 ps 2.2"
#define ENCODED_KEY_TITLE "encoded: above both controls (95% margins)"

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
    const char *caption = "Test accuracy (solid line) and its 95% bootstrap interval over test sequences"
                          " (band) of a linear probe reading h(t), per label and run; dashed: the same probe"
                          " on a randomly initialized model of the run's config; dash-dot: the lexical"
                          " control (a probe on the token itself, one-hot); dotted: the majority-class"
                          " baseline. A circle marks an iteration where the label is encoded: the probe's"
                          " margins over both controls have 95% intervals above 0.";
    int cols = n < 3 ? n : 3, rows = (n + cols - 1) / cols;
    int pw = 360, ph = 220, col = PAD_LEFT + pw + PAD_RIGHT;
    int W = max_int(cols * col + 10, figure_title_width(title)), x_shift = (W - cols * col) / 2;
    /* the key: one entry per run with probes here, then the fixed entries;
     * its height comes from the longest title actually shown */
    int n_runs = 0, longest = (int)strlen(ENCODED_KEY_TITLE), max_t = 1;
    for (int e = 0; e < 4; e++) longest = max_int(longest, (int)strlen(extra_key[e][1]));
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
    int key_px = plot_key_px(n_runs + 5, longest, W);
    int H = PLOT_TITLE_PX + rows * (PAD_TOP + ph + PAD_BOTTOM) + key_px;
    Plot plot;
    if (plot_begin(&plot, dir, name, W, H,
                   "run,label,site,iteration,scale,accuracy,ci_lo,ci_hi,majority,control_task,selectivity,"
                   "random_model,random_lo,random_hi,lexical,lexical_lo,lexical_hi,encoded"))
        return -1;
    plot.key_px = key_px;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < data->n_probes; i++) {
            const ReportProbe *p = &data->probes[i];
            if (p->label != labels[k] || strcmp(p->site, "token")) continue;
            const CsvField row[] = {csv_text(data->runs[p->run].name), csv_text(data->labels[p->label]),
                                    csv_text(p->site), csv_int(p->iteration), csv_int(p->scale),
                                    csv_num(p->accuracy), csv_num(p->ci_lo), csv_num(p->ci_hi),
                                    csv_num(p->majority), csv_num(p->control_task), csv_num(p->selectivity),
                                    csv_num(p->random_model), csv_num(p->random_lo), csv_num(p->random_hi),
                                    csv_num(p->lexical), csv_num(p->lexical_lo), csv_num(p->lexical_hi),
                                    csv_int(p->encoded)};
            plot_csv_row(&plot, row, (int)(sizeof row / sizeof row[0]));
        }
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    unset key\n    set xrange [-0.25:%g]\n    set xtics 1\n"
                   "    set offsets 0, 0, graph 0.05, graph 0.05\n", max_t + 0.25);
    figure_gp_set(s, "xlabel", "iteration t (state h(t))");
    figure_gp_set(s, "ylabel", "test accuracy");
    for (int k = 0; k < n; k++) {
        const char *label = data->labels[labels[k]];
        figure_gp_comment(s, "label", label);
        plot_panel(&plot, x_shift + (k % cols) * col + PAD_LEFT,
                   PLOT_TITLE_PX + (k / cols) * (PAD_TOP + ph + PAD_BOTTOM) + PAD_TOP, pw, ph);
        figure_gp_set(s, "title", label);
        text_printf(s, "    plot NaN notitle");
        int first_run = -1;
        /* every band first, then the controls, then the probes' lines and
         * the encoded marks: no line is covered by a band */
        for (int part = 0; part < 5; part++)
            for (int r = 0; r < data->n_runs; r++) {
                if (!has_token_probe(data, r, labels[k])) continue;
                if (first_run < 0) first_run = r;
                if (part == 1 || part == 2 || part == 4) {
                    if (!has_series(data, r, labels[k], part == 1 ? 0 : part == 2 ? 1 : 2)) continue;
                }
                const ReportRun *run = &data->runs[r];
                char band[16];
                figure_color_alpha(band, sizeof band, run->color, 0xb0);
                text_printf(s, ", \\\n        '%s.csv' using 4:(", name);
                plot_filter_eq(s, 1, run->name);
                text_printf(s, " && ");
                plot_filter_eq(s, 2, label);
                if (part == 0)
                    text_printf(s, " ? $7 : NaN):8 with filledcurves fc rgb '%s' fs solid noborder notitle",
                                band);
                else if (part == 1)
                    text_printf(s, " ? $12 : NaN) with lines lt %d dt 2 lw 1.5 notitle", run->color);
                else if (part == 2)
                    text_printf(s, " ? $15 : NaN) with lines lt %d dt 4 lw 1.5 notitle", run->color);
                else if (part == 3)
                    text_printf(s, " ? $6 : NaN) with linespoints lt %d pt 7 notitle", run->color);
                else
                    text_printf(s, " && $18 == 1 ? $6 : NaN) with points lt %d pt 6 ps 2.2 notitle",
                                run->color);
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
    for (int e = 0; e < 4; e++) plot_key_entry(&plot, extra_key[e][0], extra_key[e][1]);
    plot_key_entry(&plot, ENCODED_KEY_STYLE, ENCODED_KEY_TITLE);
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
