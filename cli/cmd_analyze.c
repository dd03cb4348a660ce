/*
 * cmd_analyze.c: `spiral analyze`: attention statistics with head
 * selection, loop diagnostics and cross-run CKA of recorded runs, stored in
 * analysis_results and printed as a report (analysis/analyze.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze.h"
#include "cli.h"
#include "headsel.h"
#include "store.h"

static const char *help =
    "usage: spiral analyze --store S.db [--run RUN[,RUN...]] [--data DATASET] [--split test]\n"
    "                      [--fraction 0.4] [--select-by relative|distance|entropy]\n"
    "                      [--measure range|stddev] [--max-sequences N] [--max-rows 16384]\n"
    "                      [--resamples 1000] [--seed 1] [--quiet]\n"
    "\n"
    "Analyzes each run's recording on DATASET (make it with 'spiral record') and\n"
    "stores the results in the store's analysis_results table, replacing that\n"
    "recording's previous ones:\n"
    "  attention  per iteration, layer and head: mean attention distance in\n"
    "             tokens, entropy, mass beyond each recorded distance, averaged\n"
    "             over query rows, with 95% bootstrap CIs over sequences; the\n"
    "             --fraction of core heads whose statistic changes most across\n"
    "             iterations is selected (the paper's 40% rule; for a dense run\n"
    "             each layer is an iteration) and their per-iteration statistics\n"
    "             are reported. Distances are shown in tokens, in chunks of the\n"
    "             iteration's g tokens, beside the uniform-attention reference\n"
    "             (the mean distance if attention were spread evenly over the\n"
    "             causal prefix, for that iteration's rows) and relative to it.\n"
    "             --select-by relative (the default) ranks heads by distance /\n"
    "             uniform, which no change of unit moves; distance ranks by the\n"
    "             distance in tokens, entropy by the entropy;\n"
    "  loop       relative update ||h(t+1) - h(t)|| / ||h(t)|| per sequence;\n"
    "             linear CKA between every pair of iteration states, and the\n"
    "             normalized singular-value spectrum and effective rank of each,\n"
    "             over the first sequences (at most --max-rows stacked tokens);\n"
    "  across     with several runs recorded on the same windows: CKA between\n"
    "             each pair of runs' iteration states.\n"
    "Every recorded sequence is used unless --max-sequences limits it. The report\n"
    "goes to stdout, progress to stderr.\n"
    "Without --data (--run), the only dataset with a recording of the runs (the\n"
    "only run recorded on DATASET) on the split is used, and named on stderr;\n"
    "with several, the error lists them.\n";

/* Splits "a,b,c" into at most max names (pointers into buffer). */
static int split_names(char *buffer, const char **names, int max) {
    int n = 0;
    for (char *tok = strtok(buffer, ","); tok; tok = strtok(NULL, ",")) {
        if (n == max) return -1;
        names[n++] = tok;
    }
    return n;
}

int cmd_analyze(int argc, char **argv) {
    const char *runs_text = NULL, *data = NULL, *store_path = NULL;
    const char *fraction_text = NULL, *select_text = "relative", *measure_text = "range";
    const char *max_seq_text = NULL, *max_rows_text = NULL, *resamples_text = NULL, *seed_text = NULL;
    AnalyzeOptions options;
    analyze_options_default(&options);
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    int quiet = 0;
    CliOption table[] = {
        {"--run", &runs_text, NULL},
        {"--data", &data, NULL},
        {"--store", &store_path, NULL},
        {"--split", &options.split, NULL},
        {"--fraction", &fraction_text, NULL},
        {"--select-by", &select_text, NULL},
        {"--measure", &measure_text, NULL},
        {"--max-sequences", &max_seq_text, NULL},
        {"--max-rows", &max_rows_text, NULL},
        {"--resamples", &resamples_text, NULL},
        {"--seed", &seed_text, NULL},
        {"--quiet", NULL, &quiet},
    };
    if (cli_parse_options("analyze", argc, argv, table, (int)(sizeof table / sizeof table[0]),
                          NULL))
        return 2;
    Progress progress = cli_progress(!quiet);
    options.progress = &progress;
    if (!store_path) return cli_usage_error("analyze", "--store is required");
    if (fraction_text) {
        if (cli_parse_double("--fraction", fraction_text, &options.fraction)) return 2;
        if (!(options.fraction > 0 && options.fraction <= 1))
            return cli_usage_error("analyze", "--fraction: expected a number in (0, 1], got '%s'", fraction_text);
    }
    if (!strcmp(select_text, "relative")) options.select_by = ANALYZE_RELATIVE_DISTANCE;
    else if (!strcmp(select_text, "distance")) options.select_by = ANALYZE_DISTANCE;
    else if (!strcmp(select_text, "entropy")) options.select_by = ANALYZE_ENTROPY;
    else return cli_usage_error("analyze", "--select-by: expected relative, distance or entropy, got '%s'", select_text);
    if (!strcmp(measure_text, "range")) options.measure = HEADSEL_RANGE;
    else if (!strcmp(measure_text, "stddev")) options.measure = HEADSEL_STDDEV;
    else return cli_usage_error("analyze", "--measure: expected range or stddev, got '%s'", measure_text);
    long v;
    if (max_seq_text) {
        if (cli_parse_long("--max-sequences", max_seq_text, 1, 100000000, &v)) return 2;
        options.max_sequences = (int)v;
    }
    if (max_rows_text) {
        if (cli_parse_long("--max-rows", max_rows_text, 1, 100000000, &v)) return 2;
        options.max_rows = (int)v;
    }
    if (resamples_text) {
        if (cli_parse_long("--resamples", resamples_text, 1, 1000000, &v)) return 2;
        options.n_resamples = (int)v;
    }
    if (seed_text) {
        if (cli_parse_long("--seed", seed_text, 0, 2147483647, &v)) return 2;
        options.seed = (unsigned long)v;
    }
    Store store;
    if (store_open(&store, store_path, 0)) return cli_fail("analyze");
    CliChosen chosen;
    if (cli_default_recording("analyze", &store, options.split, &runs_text, &data, &chosen)) {
        store_close(&store);
        return 1;
    }
    char names_buffer[4096];
    const char *names[64];
    snprintf(names_buffer, sizeof names_buffer, "%s", runs_text);
    int n_runs = split_names(names_buffer, names, 64);
    if (n_runs < 1) {
        store_close(&store);
        return cli_usage_error("analyze", "--run: expected 1 to 64 comma-separated run names");
    }
    AnalyzeSummary summary;
    int status = analyze_runs(&store, names, n_runs, data, &options, stdout, &summary);
    for (int i = 0; !quiet && i < summary.n_runs; i++)
        fprintf(stderr, "analyze %s: wrote %lld rows\n", names[i], summary.rows_written[i]);
    analyze_summary_free(&summary);
    store_close(&store);
    return status ? cli_fail("analyze") : 0;
}
