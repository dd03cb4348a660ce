/*
 * figure_common.c: the helpers every figure file uses (figure_common.h).
 */
#include "figure_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Appends a figure entry (rendered or skipped); 0 or -1. */
int figure_add(FigureList *list, const Plot *plot, const char *name, const char *title,
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
        snprintf(f->note, sizeof f->note, "%s", note ? note : "");
    }
    return 0;
}

/* Renders the plot and lists it; 0 or -1. */
int figure_finish(FigureList *list, Plot *plot, const char *title, const char *caption) {
    char name[64];
    snprintf(name, sizeof name, "%s", plot->name);
    if (plot_finish(plot, title)) return -1;
    return figure_add(list, plot, name, title, caption, NULL);
}

/* A figure's minimum width so its title fits on one line. */
int figure_title_width(const char *title) { return 10 * (int)strlen(title) + 60; }

/* Width in pixels gnuplot reserves for n characters of tick labels. */
int figure_chars_px(int n) { return 10 * n; }

/* A round tick step (1, 2, 2.5 or 5 times a power of ten) giving at most
 * about `ticks` intervals over range. */
double figure_nice_step(double range, int ticks) {
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
void figure_log_tics(Text *s, double lo, double hi) {
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


/* A power of ten for an axis whose values reach max: values are divided by
 * *scale and the axis label gets `suffix`. words: "thousands" ... for
 * counts; else "x 1e12". */
void figure_axis_scale(double max, int words, double *scale, char *suffix, size_t size) {
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
void figure_gp_set(Text *s, const char *what, const char *text) {
    text_printf(s, "    set %s ", what);
    text_gp_string(s, text);
    text_printf(s, "\n");
}

/* Appends a comment line "    # <what> <name>", the name's line breaks
 * dropped (a name cannot end the comment and become a command). */
void figure_gp_comment(Text *s, const char *what, const char *name) {
    text_printf(s, "    # %s ", what);
    for (const char *c = name; *c; c++)
        if (*c != '\n' && *c != '\r') text_printf(s, "%c", *c);
    text_printf(s, "\n");
}

/* A run's color with transparency alpha (0 opaque .. 255 invisible), as
 * gnuplot's "#AARRGGBB". */
void figure_color_alpha(char *out, size_t size, int color, int alpha) {
    snprintf(out, size, "#%02x%s", alpha, plot_color(color) + 1);
}

void figure_layer_size(int i, int n, double *line_width, double *point_size) {
    double f = n > 1 ? (double)(n - 1 - i) / (n - 1) : 0;  /* 1 for the first, 0 for the last */
    *line_width = 2.0 + 1.5 * f;
    *point_size = 0.9 + 0.7 * f;
}

/* The run of data named `name`, or NULL. */
const ReportRun *figure_find_run(const ReportData *data, const char *name) {
    for (int r = 0; r < data->n_runs; r++)
        if (!strcmp(data->runs[r].name, name)) return &data->runs[r];
    return NULL;
}
