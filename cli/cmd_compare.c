/*
 * cmd_compare.c: `spiral compare`: parameters, FLOPs, tokens and validation
 * loss of trained runs at equal tokens, FLOPs and parameters, seeds
 * aggregated with t intervals (analysis/compare.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare.h"
#include "store.h"

static const char *help =
    "usage: spiral compare --store S.db [--runs RUN[,RUN...]] [--group-by config|none]\n"
    "                      [--csv FILE]\n"
    "\n"
    "Prints, per run: kind, parameters (total and non-embedding, at the run's\n"
    "train.seq_len), training FLOPs (analytic) and tokens at the last step, the\n"
    "validation loss and perplexity at the last evaluation, and the validation\n"
    "loss at equal tokens and at equal FLOPs: the curve of each run interpolated\n"
    "linearly at the smallest budget any run reached at its last evaluation.\n"
    "Runs whose run files differ only in train.seed form a group (--group-by\n"
    "none: every run alone), reported as the mean and a 95% t-interval over\n"
    "the seeds; groups whose non-embedding parameters agree within 5% are\n"
    "listed together as an equal-parameter comparison. --csv writes the same\n"
    "numbers, one line per run and per group. Without --runs, every run of the\n"
    "store is compared when they all train on one dataset.\n";

int cmd_compare(int argc, char **argv) {
    const char *store_path = NULL, *runs_text = NULL, *group_by = "config", *csv = NULL;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--store", &store_path, NULL},
        {"--runs", &runs_text, NULL},
        {"--group-by", &group_by, NULL},
        {"--csv", &csv, NULL},
    };
    if (cli_parse_options("compare", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!store_path) return cli_usage_error("compare", "--store is required");
    char default_runs[8192];
    if (!runs_text && cli_default_runs("compare", store_path, default_runs, sizeof default_runs)) return 1;
    if (!runs_text) runs_text = default_runs;
    CompareOptions options;
    compare_options_default(&options);
    if (!strcmp(group_by, "none")) options.group_by_config = 0;
    else if (strcmp(group_by, "config"))
        return cli_usage_error("compare", "--group-by: expected config or none, got '%s'", group_by);
    char buffer[8192];
    const char *names[256];
    int n = 0;
    snprintf(buffer, sizeof buffer, "%s", runs_text);
    for (char *tok = strtok(buffer, ","); tok; tok = strtok(NULL, ",")) {
        if (n == 256) return cli_usage_error("compare", "--runs: at most 256 runs");
        names[n++] = tok;
    }
    if (n == 0) return cli_usage_error("compare", "--runs: expected comma-separated run names");

    Store store;
    if (store_open_readonly(&store, store_path)) return cli_fail("compare");
    Comparison comparison;
    int status = compare_runs(&comparison, &store, names, n, &options);
    store_close(&store);
    if (status) return cli_fail("compare");
    compare_print(stdout, &comparison);
    if (csv) {
        status = compare_write_csv(csv, &comparison);
        if (status == 0) printf("\nwrote %s: %d runs, %d groups\n", csv, comparison.n_runs, comparison.n_groups);
    }
    compare_free(&comparison);
    return status ? cli_fail("compare") : 0;
}
