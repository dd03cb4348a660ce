/*
 * plot.c: CSV + gnuplot script + gnuplot run for one figure (see plot.h).
 */
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"

/* Colors of runs 1..10 (Tableau 10): run i of a report keeps color i in
 * every figure. */
static const char *const plot_colors[PLOT_N_COLORS] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* Dash types of the run styles: runs 1-10 solid, 11-20 dashed, 21-30
 * dotted, 31-40 dash-dotted, so runs that share a color differ in dash. */
static const char *const plot_dashes[PLOT_N_STYLES / PLOT_N_COLORS] = {
    "solid", "(10,5)", "(2,4)", "(12,4,3,4)"};

/* Point types, filled and open: circle, square, triangle up, triangle
 * down, diamond. */
static const int plot_points_filled[5] = {7, 5, 9, 11, 13};
static const int plot_points_open[5] = {6, 4, 8, 10, 12};

int plot_point_type(int c, int filled) {
    int i = ((c - 1) % PLOT_N_STYLES + PLOT_N_STYLES) % PLOT_N_STYLES;
    int k = (i + i / PLOT_N_COLORS) % 5;  /* runs that share a color differ in point too */
    return filled ? plot_points_filled[k] : plot_points_open[k];
}

/* DIR/NAME.<ext> */
static void plot_path(char *buffer, size_t size, const Plot *plot, const char *ext) {
    snprintf(buffer, size, "%s/%s.%s", plot->dir, plot->name, ext);
}

int plot_begin(Plot *plot, const char *dir, const char *name, int width, int height,
               const char *csv_header) {
    memset(plot, 0, sizeof *plot);
    snprintf(plot->dir, sizeof plot->dir, "%s", dir);
    snprintf(plot->name, sizeof plot->name, "%s", name);
    plot->width = width;
    plot->height = height;
    char path[1200];
    plot_path(path, sizeof path, plot, "csv");
    plot->csv = fopen(path, "w");
    if (!plot->csv) return spiral_error("%s: cannot write: %s", path, strerror(errno));
    fprintf(plot->csv, "%s\n", csv_header);
    plot->csv_columns = 1;
    for (const char *c = csv_header; *c; c++) plot->csv_columns += *c == ',';
    text_init(&plot->script);
    Text *s = &plot->script;
    text_printf(s, "    reset\n"
                   "    set datafile separator ','\n"
                   "    set datafile columnheaders\n");
    for (int i = 0; i < PLOT_N_STYLES; i++)
        text_printf(s, "    set linetype %d lc rgb '%s' lw 2 dt %s pt %d ps 0.9\n", i + 1,
                    plot_colors[i % PLOT_N_COLORS], plot_dashes[i / PLOT_N_COLORS],
                    plot_point_type(i + 1, 1));
    text_printf(s, "    set linetype cycle %d\n"
                   "    set grid back lc rgb '#dddddd' lw 1 dt solid\n"
                   "    set tics nomirror out\n"
                   "    set border 3\n",
                PLOT_N_STYLES);
    return 0;
}

/* Starts the next field: a comma unless it is the row's first. */
static void plot_csv_sep(Plot *plot) {
    if (plot->csv_field++) fputc(',', plot->csv);
}

/* The character a CSV field holds for c (no commas, quotes or newlines). */
static char csv_char(char c) {
    if (c == ',') return ';';
    if (c == '"') return '\'';
    if (c == '\n' || c == '\r') return ' ';
    return c;
}

void plot_csv_str(Plot *plot, const char *value) {
    plot_csv_sep(plot);
    for (const char *c = value ? value : ""; *c; c++) fputc(csv_char(*c), plot->csv);
}

void plot_filter_eq(Text *text, int column, const char *value) {
    char clean[512];
    size_t n = 0;
    for (const char *c = value ? value : ""; *c && n + 1 < sizeof clean; c++) clean[n++] = csv_char(*c);
    clean[n] = 0;
    text_printf(text, "strcol(%d) eq ", column);
    text_gp_string(text, clean);
}

void plot_csv_num(Plot *plot, double value) {
    plot_csv_sep(plot);
    if (isfinite(value)) fprintf(plot->csv, "%.10g", value);
}

void plot_csv_int(Plot *plot, long long value) {
    plot_csv_sep(plot);
    fprintf(plot->csv, "%lld", value);
}

void plot_csv_end(Plot *plot) {
    fputc('\n', plot->csv);
    if (plot->csv_field != plot->csv_columns) plot->csv_bad_rows++;
    plot->csv_field = 0;
    plot->csv_rows++;
}

void plot_csv_row(Plot *plot, const CsvField *fields, int n) {
    for (int i = 0; i < n; i++) {
        if (fields[i].type == CSV_TEXT) plot_csv_str(plot, fields[i].text);
        else if (fields[i].type == CSV_INT) plot_csv_int(plot, fields[i].integer);
        else plot_csv_num(plot, fields[i].number);
    }
    plot_csv_end(plot);
}

void plot_panel(Plot *plot, double x, double y, double w, double h) {
    double W = plot->width, H = plot->height;
    text_printf(&plot->script,
                "    set lmargin at screen %.5f\n    set rmargin at screen %.5f\n"
                "    set tmargin at screen %.5f\n    set bmargin at screen %.5f\n",
                x / W, (x + w) / W, 1.0 - y / H, 1.0 - (y + h) / H);
}

void plot_multiplot(Plot *plot, const char *title) {
    text_printf(&plot->script, "    set multiplot title ");
    text_gp_string(&plot->script, title);
    text_printf(&plot->script, " font '%s,%d'\n", PLOT_FONT, PLOT_FONT_SIZE + 2);
}

/* Approximate width of a key entry: its sample, its text, the gap. */
static int key_entry_px(int longest) { return 10 * longest + 90; }

int plot_key_px(int n, int longest, int width) {
    if (n <= 0) return 0;
    int columns = (width - 20) / key_entry_px(longest);
    if (columns < 1) columns = 1;
    if (columns > n) columns = n;
    int rows = (n + columns - 1) / columns;
    return 32 + 24 * rows; /* with a gap of 10 pixels above the key */
}

void plot_key_entry(Plot *plot, const char *style, const char *title) {
    if (plot->key_entries++ == 0) text_init(&plot->key);
    int len = (int)strlen(title);
    if (len > plot->key_longest) plot->key_longest = len;
    text_printf(&plot->key, ", \\\n        keyentry %s title ", style);
    text_gp_string(&plot->key, title);
}

const char *plot_color(int c) { return plot_colors[((c - 1) % PLOT_N_COLORS + PLOT_N_COLORS) % PLOT_N_COLORS]; }

/* Appends the key strip: an empty plot over the bottom key_px pixels whose
 * only content is the key entries. */
static void plot_emit_key(Plot *plot) {
    if (!plot->key_entries || plot->key_px <= 0) return;
    Text *s = &plot->script;
    int columns = (plot->width - 20) / key_entry_px(plot->key_longest);
    if (columns < 1) columns = 1;
    int rows = (plot->key_entries + columns - 1) / columns;
    text_printf(s, "    # the key of the whole figure, below the panels\n");
    plot_panel(plot, 0, plot->height - plot->key_px, plot->width, plot->key_px);
    text_printf(s, "    unset border\n    unset tics\n    unset xlabel\n    unset ylabel\n"
                   "    unset title\n    unset grid\n    unset colorbox\n    unset label\n"
                   "    unset object\n    unset logscale\n"
                   "    set xrange [0:1]\n    set yrange [0:1]\n");
    text_printf(s, "    set key at screen 0.5, %.5f center center horizontal maxrows %d reverse Left"
                   " samplen 2.5 spacing 1.15 width 1 box lc rgb '#bbbbbb'\n",
                (plot->key_px - 10) * 0.5 / plot->height, rows);
    text_printf(s, "    plot NaN notitle%s\n", plot->key.data ? plot->key.data : "");
    if (plot->key.failed) s->failed = 1;
}

/* Closes the CSV if open; 0 or -1 if the data did not reach the disk. */
static int plot_close_csv(Plot *plot) {
    if (!plot->csv) return 0;
    int bad = ferror(plot->csv) != 0;
    if (fclose(plot->csv) != 0) bad = 1;
    plot->csv = NULL;
    if (bad) return spiral_error("%s/%s.csv: write failed", plot->dir, plot->name);
    if (plot->csv_bad_rows)
        return spiral_error("%s/%s.csv: %ld rows do not have the header's %d fields", plot->dir, plot->name,
                            plot->csv_bad_rows, plot->csv_columns);
    return 0;
}

void plot_abort(Plot *plot) {
    char path[1200];
    if (plot->key_entries) text_free(&plot->key);
    if (plot->csv) {
        fclose(plot->csv);
        plot->csv = NULL;
        plot_path(path, sizeof path, plot, "csv");
        remove(path);
    }
    text_free(&plot->script);
}

int plot_finish(Plot *plot, const char *title) {
    char path[1200];
    Text file;
    text_init(&file);
    int status = plot_close_csv(plot);
    plot_emit_key(plot);
    if (plot->key_entries) text_free(&plot->key);
    if (status == 0) {
        text_printf(&file, "# %s.gp: ", plot->name);
        for (const char *c = title; *c; c++) text_printf(&file, "%c", *c == '\n' ? ' ' : *c);
        text_printf(&file, "\n# Written by spiral report; reads %s.csv. Re-run in this directory:"
                           " gnuplot %s.gp\n", plot->name, plot->name);
        text_printf(&file, "do for [format in \"png svg\"] {\n"
                           "    if (format eq \"png\") {\n"
                           "        set terminal pngcairo size %d,%d font '%s,%d' noenhanced\n"
                           "        set output '%s.png'\n"
                           "    } else {\n"
                           "        set terminal svg size %d,%d font '%s,%d' noenhanced"
                           " background rgb 'white'\n"
                           "        set output '%s.svg'\n"
                           "    }\n",
                    plot->width, plot->height, PLOT_FONT, PLOT_FONT_SIZE, plot->name,
                    plot->width, plot->height, PLOT_FONT, PLOT_FONT_SIZE, plot->name);
        text_printf(&file, "%s", plot->script.data ? plot->script.data : "");
        text_printf(&file, "    unset multiplot\n    set output\n}\n");
        if (plot->script.failed) file.failed = 1;
        plot_path(path, sizeof path, plot, "gp");
        status = text_write_file(&file, path);
    }
    if (status == 0) status = plot_run_gnuplot(plot->dir, plot->name, &plot->has_warnings);
    text_free(&file);
    text_free(&plot->script);
    return status;
}

/* The first `size` - 1 bytes of a file, as text (for error messages). */
static void read_head(const char *path, char *buffer, size_t size) {
    buffer[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(buffer, 1, size - 1, f);
    buffer[n] = 0;
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (buffer[i] == '\n' && i + 1 < n) buffer[i] = ' ';
}

int plot_run_gnuplot(const char *dir, const char *name, int *warnings) {
    const char *program = getenv("SPIRAL_GNUPLOT");
    if (!program || !*program) program = "gnuplot";
    char script[128], log_name[128], log_path[1200];
    snprintf(script, sizeof script, "%s.gp", name);
    snprintf(log_name, sizeof log_name, "%s.log", name);
    snprintf(log_path, sizeof log_path, "%s/%s", dir, log_name);
    *warnings = 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return spiral_error("cannot start gnuplot: fork: %s", strerror(errno));
    if (pid == 0) {
        /* child: in DIR, output to NAME.log, exit 127 if gnuplot is absent */
        if (chdir(dir) != 0) _exit(126);
        int fd = open(log_name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execlp(program, program, script, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return spiral_error("waiting for gnuplot: %s", strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        remove(log_path);
        return spiral_error("cannot run '%s' to draw %s/%s: gnuplot is not installed "
                            "(install the Debian package gnuplot-nox, or set SPIRAL_GNUPLOT)",
                            program, dir, script);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
        return spiral_error("%s: cannot enter the directory to run gnuplot", dir);
    char message[600];
    read_head(log_path, message, sizeof message);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return spiral_error("%s/%s: gnuplot failed (%s %d): %s", dir, script,
                            WIFEXITED(status) ? "exit status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                            message[0] ? message : "no message");
    struct stat st;
    if (stat(log_path, &st) == 0 && st.st_size == 0) remove(log_path);
    else *warnings = 1;
    return 0;
}
