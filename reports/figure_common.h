/*
 * figure_common.h: what the figure files (reports/figure_*.c) share: the
 * figure list entries, panel geometry in pixels, axis ticks and scales,
 * gnuplot text helpers and run colors. Each figure function reads its data
 * (ReportData, or the store through data/report_store.h), skips with a
 * note when there is none, lays out its panels, writes its CSV rows
 * (plot_csv_row) and the gnuplot body, and renders (plot.h). The gnuplot
 * commands select a series by filtering the CSV on its run name column,
 * e.g.
 *   plot 'f.csv' using 4:(strcol(1) eq 'spiral' ? $6 : NaN) with lines
 * so the script is readable next to its CSV and any series can be re-drawn.
 */
#ifndef SPIRAL_FIGURE_COMMON_H
#define SPIRAL_FIGURE_COMMON_H

#include <stddef.h>

#include "figures.h"
#include "plot.h"
#include "report_data.h"
#include "text.h"

/* Panel paddings around a line plot's axes box, in pixels. */
enum { PAD_LEFT = 104, PAD_RIGHT = 30, PAD_TOP = 40, PAD_BOTTOM = 72 };

/* Heatmap geometry: cell sizes, room for the colorbox on the right. */
enum { CELL_H = 26, CELL_W = 54, CELL_W_LATENT = 62, HEAT_RIGHT = 128 };

static inline int max_int(int a, int b) { return a > b ? a : b; }

/* Appends a figure entry: rendered (plot given) or skipped with a note
 * (plot NULL). Returns 0 or -1. */
int figure_add(FigureList *list, const Plot *plot, const char *name, const char *title, const char *caption,
               const char *note);
/* Renders the plot and lists it; 0 or -1. */
int figure_finish(FigureList *list, Plot *plot, const char *title, const char *caption);

/* A figure's minimum width so its title fits on one line. */
int figure_title_width(const char *title);
/* Width in pixels gnuplot reserves for n characters of tick labels. */
int figure_chars_px(int n);
/* A round tick step (1, 2, 2.5 or 5 times a power of ten) giving at most
 * about `ticks` intervals over range. */
double figure_nice_step(double range, int ticks);
/* Appends "set xtics (...)" for a log axis over [lo, hi]. */
void figure_log_tics(Text *s, double lo, double hi);
/* A power of ten for an axis whose values reach max: values are divided by
 * *scale and the axis label gets `suffix`. words: "thousands" ... for
 * counts; else "x 1e12". */
void figure_axis_scale(double max, int words, double *scale, char *suffix, size_t size);

/* Appends `set <what> '<text>'`. */
void figure_gp_set(Text *s, const char *what, const char *text);
/* Appends a comment line "    # <what> <name>", the name's line breaks
 * dropped (a name cannot end the comment and become a command). */
void figure_gp_comment(Text *s, const char *what, const char *name);
/* A run's color with transparency alpha (0 opaque .. 255 invisible), as
 * gnuplot's "#AARRGGBB". */
void figure_color_alpha(char *out, size_t size, int color, int alpha);
/* Line width and point size of the i-th of n curves drawn one over the
 * other: the first widest and largest, the last thinnest and smallest, so
 * a curve that coincides with a later one still shows around it. */
void figure_layer_size(int i, int n, double *line_width, double *point_size);

/* The run of data named `name`, or NULL. */
const ReportRun *figure_find_run(const ReportData *data, const char *name);

#endif
