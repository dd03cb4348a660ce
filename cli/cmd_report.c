/*
 * cmd_report.c: `spiral report`: figures and an HTML/Markdown report of the
 * runs in a store (reports/report.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "error.h"
#include "report.h"
#include "store.h"

static const char *help =
    "usage: spiral report --store S.db --out DIR [--runs RUN[,RUN...]] [--split test]\n"
    "                     [--probe-sites SITE[,SITE...]] [--probe-iterations 0,2,4-6]\n"
    "\n"
    "Writes DIR/index.html and DIR/report.md: the runs (kind, dataset,\n"
    "parameters, steps, final validation loss, status), the datasets with their\n"
    "entropy floor, the comparison across runs and seeds, every figure, the\n"
    "probe results, each run's config and the command line that made it.\n"
    "\n"
    "Figures (gnuplot; NAME.png and NAME.svg, drawn by NAME.gp from NAME.csv,\n"
    "all in DIR): training curves (loss vs tokens and vs FLOPs); validation\n"
    "loss vs parameters and vs FLOPs with seeds as error bars; probe accuracy\n"
    "and selectivity heatmaps (iteration x label) at token and latent sites;\n"
    "probe accuracy vs iteration per label level with CI bands; attention\n"
    "distance and entropy of the selected heads per iteration; update size\n"
    "and effective rank per iteration; CKA heatmaps within and across runs;\n"
    "singular-value spectra. A figure whose data is not in the store yet (no\n"
    "probes, no analysis) is skipped with a note in the report.\n"
    "\n"
    "--runs limits the report to those runs, in that order (default: every\n"
    "run). Probe and analysis results are those of each run's recording on\n"
    "--split (default test). --probe-sites (token, latent_in, latent_out,\n"
    "coda) and --probe-iterations (iterations and ranges a-b) limit the probe\n"
    "tables and figures to those sites and iterations. Needs gnuplot (Debian\n"
    "package gnuplot-nox); the environment variable SPIRAL_GNUPLOT names\n"
    "another gnuplot program.\n"
    "Prints the path of index.html.\n";

int cmd_report(int argc, char **argv) {
    const char *store_path = NULL, *out = NULL, *runs_text = NULL, *split = "test";
    const char *probe_sites = NULL, *probe_iterations = NULL;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--store", &store_path, NULL},
        {"--out", &out, NULL},
        {"--runs", &runs_text, NULL},
        {"--split", &split, NULL},
        {"--probe-sites", &probe_sites, NULL},
        {"--probe-iterations", &probe_iterations, NULL},
    };
    if (cli_parse_options("report", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!store_path || !out) return cli_usage_error("report", "--store and --out are required");
    if (strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test") && strcmp(split, "test_ood"))
        return cli_usage_error("report", "--split: expected train, val, test or test_ood, got '%s'", split);
    char buffer[8192];
    const char *names[256];
    int n = 0;
    if (runs_text) {
        snprintf(buffer, sizeof buffer, "%s", runs_text);
        for (char *tok = strtok(buffer, ","); tok; tok = strtok(NULL, ",")) {
            if (n == 256) return cli_usage_error("report", "--runs: at most 256 runs");
            names[n++] = tok;
        }
        if (n == 0) return cli_usage_error("report", "--runs: expected comma-separated run names");
    }
    char command[4096] = "spiral";
    for (int i = 0; i < argc; i++) {
        size_t used = strlen(command);
        snprintf(command + used, sizeof command - used, " %s", argv[i]);
    }

    Store store;
    if (store_open_readonly(&store, store_path)) return cli_fail("report");
    ReportOptions options = {.dir = out, .runs = names, .n_runs = n, .split = split,
                             .version = cli_version(), .command_line = command,
                             .probe_sites = probe_sites, .probe_iterations = probe_iterations};
    ReportResult result;
    int status = report_write(&store, &options, &result);
    store_close(&store);
    if (status) return cli_fail("report");
    int skipped = result.figures.n - result.n_rendered;
    fprintf(stderr, "report of %d runs: %d figures drawn", result.n_runs, result.n_rendered);
    if (skipped) {
        fprintf(stderr, ", %d skipped (", skipped);
        for (int i = 0, k = 0; i < result.figures.n; i++)
            if (!result.figures.items[i].rendered)
                fprintf(stderr, "%s%s", k++ ? ", " : "", result.figures.items[i].name);
        fprintf(stderr, "; see the report)");
    }
    fprintf(stderr, "\n");
    printf("%s\n", result.html_path);
    report_result_free(&result);
    return 0;
}
