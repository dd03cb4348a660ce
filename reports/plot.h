/*
 * plot.h: one figure on disk: the CSV of its data, the gnuplot script that
 * draws it from that CSV, and the PNG and SVG gnuplot renders.
 *
 * A figure function (reports/figure_*.c) opens a Plot, writes the CSV row
 * by row (plot_csv_row, or plot_csv_*), appends gnuplot commands to plot->script (the body: panels
 * and plot commands that read NAME.csv), and calls plot_finish. The script
 * NAME.gp written beside the CSV is self-contained and re-runnable
 * (`cd DIR && gnuplot NAME.gp`): it loops over the two outputs,
 *
 *   do for [format in "png svg"] {
 *       set terminal pngcairo|svg size W,H font "DejaVu Sans,12" noenhanced
 *       set output "NAME.png"|"NAME.svg"
 *       <common settings> <body>
 *   }
 *
 * so the PNG and the SVG come from the same commands. Text is `noenhanced`
 * (a run called a_b keeps its underscore). CSV fields never hold a comma or
 * a double quote (replaced by ';' and '\''), so gnuplot and any CSV reader
 * split them alike; a missing number is an empty field, which gnuplot
 * treats as missing data.
 *
 * Layout: figures are composed of panels placed in pixels (plot_panel),
 * under a title strip of PLOT_TITLE_PX and above a key strip
 * (plot_key_px), so a figure's legend sits below its panels and never
 * covers data. The key is one legend for the whole figure, drawn by a last
 * empty plot made of `keyentry` items.
 *
 * The scripts use gnuplot 5.4 features (keyentry, set datafile
 * columnheaders; Debian bookworm's gnuplot-nox is 5.4).
 *
 * Rendering runs gnuplot (SPIRAL_GNUPLOT in the environment, else
 * "gnuplot" on the PATH) in DIR; its messages go to NAME.log, which is
 * removed when empty. A missing gnuplot is an error that says which Debian
 * package to install.
 */
#ifndef SPIRAL_PLOT_H
#define SPIRAL_PLOT_H

#include <stdio.h>

#include "text.h"

#define PLOT_TITLE_PX 44
#define PLOT_FONT "DejaVu Sans"
#define PLOT_FONT_SIZE 12
#define PLOT_N_COLORS 10
#define PLOT_N_STYLES 40      /* linetypes 1..40: 10 colors x 4 dash types */

typedef struct {
    char dir[1024];
    char name[64];            /* file stem: DIR/NAME.{csv,gp,png,svg} */
    int width, height;        /* PNG and SVG size in pixels */
    FILE *csv;
    long csv_rows;            /* data rows written (the header not counted) */
    int csv_columns;          /* columns of the header */
    int csv_field;            /* fields written in the current row */
    long csv_bad_rows;        /* rows whose field count differs from the header's */
    Text script;              /* the body of the gnuplot script */
    Text key;                 /* keyentry items of the key strip */
    int key_entries, key_longest;
    int key_px;               /* height of the key strip (0: no key) */
    int has_warnings;         /* gnuplot wrote to NAME.log (kept) */
} Plot;

/* Opens DIR/NAME.csv with its header line (comma-separated column names)
 * and starts the script with the common settings (CSV input, colors,
 * grid). Returns 0 or -1 naming the file. */
int plot_begin(Plot *plot, const char *dir, const char *name, int width, int height,
               const char *csv_header);

/* CSV fields of the current row, in header order, then plot_csv_end. A
 * row of another length than the header makes plot_finish fail. */
void plot_csv_str(Plot *plot, const char *value);
void plot_csv_num(Plot *plot, double value);      /* "%.10g", empty if NaN */
void plot_csv_int(Plot *plot, long long value);
void plot_csv_end(Plot *plot);

/* One field of a CSV row: text, an integer or a number. */
typedef enum { CSV_TEXT, CSV_INT, CSV_NUMBER } CsvType;
typedef struct {
    CsvType type;
    const char *text;
    long long integer;
    double number;
} CsvField;

static inline CsvField csv_text(const char *text) { return (CsvField){CSV_TEXT, text, 0, 0}; }
static inline CsvField csv_int(long long value) { return (CsvField){CSV_INT, NULL, value, 0}; }
static inline CsvField csv_num(double value) { return (CsvField){CSV_NUMBER, NULL, 0, value}; }

/* Writes a whole row, fields (n) in header order, as the plot_csv_* calls
 * above would: e.g.
 *   CsvField row[] = {csv_text(run->name), csv_int(t), csv_num(value)};
 *   plot_csv_row(plot, row, 3); */
void plot_csv_row(Plot *plot, const CsvField *fields, int n);

/* Appends to text the gnuplot test "strcol(column) eq '<value>'", value
 * cleaned as plot_csv_str writes it, so a filter matches its CSV rows. */
void plot_filter_eq(Text *text, int column, const char *value);

/* Appends to the script: the next plot's axes box (plotting area) at
 * (x, y) pixels from the figure's top-left corner, w x h pixels (margins
 * "at screen"). Tick labels, axis labels and the panel title are drawn
 * outside the box: the caller leaves room for them. */
void plot_panel(Plot *plot, double x, double y, double w, double h);

/* Appends: "set multiplot title '<title>'" (drawn in the title strip). */
void plot_multiplot(Plot *plot, const char *title);

/* Height in pixels of the key strip for n entries whose longest title has
 * `longest` characters, in a figure `width` pixels wide. */
int plot_key_px(int n, int longest, int width);

/* Adds an entry to the figure's key: `style` is a gnuplot plot style
 * ("with linespoints lt 2", "with filledcurves lc rgb '#888888'"). The key
 * is drawn by plot_finish in the strip at the bottom (key_px high, set by
 * plot_begin's caller through plot->key_px). */
void plot_key_entry(Plot *plot, const char *style, const char *title);

/* The color of run color index c (1-based, cycles through PLOT_N_COLORS),
 * as "#rrggbb". */
const char *plot_color(int c);

/* Run styles: linetype c (1..PLOT_N_STYLES, set by plot_begin) has color
 * plot_color(c), a dash type that changes every PLOT_N_COLORS runs (so
 * more than 10 runs stay apart) and a point type (plot_point_type(c, 1))
 * that differs between neighbours, so a line drawn over another still
 * shows its markers. Plot commands give `lt c` without pt or dt to use
 * them. */
/* The gnuplot point type of run style c: filled or open. */
int plot_point_type(int c, int filled);

/* Closes the CSV, writes DIR/NAME.gp with the title as a comment, and runs
 * gnuplot on it. Returns 0, or -1 with gnuplot's message (or how to install
 * it). The Plot is released either way. */
int plot_finish(Plot *plot, const char *title);

/* Releases a Plot without rendering and removes its CSV (a figure that
 * turned out to have no data). */
void plot_abort(Plot *plot);

/* Runs `gnuplot NAME.gp` in dir; *warnings = 1 if it printed anything
 * (kept in DIR/NAME.log). Returns 0 or -1. */
int plot_run_gnuplot(const char *dir, const char *name, int *warnings);

#endif
