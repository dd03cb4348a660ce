/*
 * report.h: `spiral report`: one directory that presents a study from its
 * store (DESIGN.md section 5).
 *
 * DIR/index.html (plain HTML with a little inline CSS, no external
 * resources, every link relative) and DIR/report.md hold the same content:
 *   - a box of key results (report_key.h): validation loss beside the
 *     entropy floor and n-gram baselines, the groups at equal FLOPs with
 *     intervals, where each label is encoded, the attention direction;
 *   - the runs: kind, dataset, parameters, steps, tokens, training FLOPs,
 *     final validation loss, status, the recording used for probes and
 *     analyses;
 *   - the datasets, with their entropy floor (mean true next-token loss of
 *     the val and test splits) where the generating process is known;
 *   - the comparison of compare.h: groups of seeds with t intervals, the
 *     loss at equal tokens and at equal FLOPs, equal-parameter sets;
 *   - every figure of figures.h (PNG shown, links to its SVG, CSV and
 *     gnuplot script), or the note saying why it was not drawn;
 *   - the probe results per run: label, site, iteration, accuracy with its
 *     95% interval, control task, selectivity, encoded; and the summaries
 *     (expected iteration, where encoded);
 *   - each run's resolved config JSON and the command line that made it;
 *   - spiral's version, the command that made the report, the time.
 * Figures are written next to the pages (NAME.png, .svg, .csv, .gp).
 */
#ifndef SPIRAL_REPORT_H
#define SPIRAL_REPORT_H

#include "figures.h"
#include "store.h"

typedef struct {
    const char *dir;                  /* output directory, created if missing */
    const char *const *runs;          /* run names, in report order */
    int n_runs;                       /* 0: every run of the store, by id */
    const char *split;                /* recordings' split, default "test" */
    const char *version;              /* spiral's version ("" if unknown) */
    const char *command_line;         /* the command that makes the report, or NULL */
} ReportOptions;

typedef struct {
    char html_path[1100];             /* DIR/index.html */
    char md_path[1100];               /* DIR/report.md */
    int n_runs;
    FigureList figures;               /* every figure, drawn or skipped */
    int n_rendered;
} ReportResult;

/* Writes the report of the store's runs into options->dir. Returns 0, or -1
 * with an error naming the store, the directory or the failing figure. */
int report_write(Store *store, const ReportOptions *options, ReportResult *result);
void report_result_free(ReportResult *result);

#endif
