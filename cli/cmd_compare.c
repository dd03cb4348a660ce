/*
 * cmd_compare.c: `spiral compare`: parameters, FLOPs, tokens and validation
 * loss of trained runs at equal tokens, FLOPs and parameters, seeds
 * aggregated with t intervals (analysis/compare.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare.h"
#include "store.h"

static const char *help =
    "usage: spiral compare --store S.db [--runs RUN[,RUN...]] [--at-tokens N] [--at-flops F]\n"
    "                      [--interpolate] [--group-by config|none] [--csv FILE]\n"
    "\n"
    "Prints, per run: kind, parameters (total and non-embedding, at the run's\n"
    "train.seq_len), training FLOPs (analytic) and tokens at the last step, the\n"
    "step against train.steps, the validation loss and perplexity at the last\n"
    "evaluation. Then each group's validation loss read at a budget of tokens\n"
    "and of training FLOPs, and the groups compared at equal tokens, at equal\n"
    "FLOPs and at equal parameters (each at equal tokens and at equal FLOPs).\n"
    "\n"
    "Budgets. By default every run is read at the end of its own schedule (its\n"
    "last evaluation, at train.steps, after the learning rate has decayed), and\n"
    "groups whose ends agree within 5% are compared: adding a short run never\n"
    "moves the others. Train the equal-FLOPs baseline to compare at equal\n"
    "FLOPs ('spiral match' writes it).\n"
    "  --at-tokens N   read every run at N tokens\n"
    "  --at-flops F    read every run at F training FLOPs (e.g. 7.5e10)\n"
    "A finished run ending within 5% of the budget is read at its end; a run\n"
    "that ends before it is 'not reached' (never extrapolated); a run that\n"
    "passes it mid-schedule, or has not finished, is refused, since its curve\n"
    "there is taken at a high learning rate.\n"
    "  --interpolate   read such runs anyway (interpolated linearly at the\n"
    "                  budget, or an unfinished run's last evaluation); the\n"
    "                  output labels each such value 'mid-schedule'\n"
    "\n"
    "Runs whose run files differ only in train.seed form a group (--group-by\n"
    "none: every run alone), reported as the mean and a 95% t-interval over\n"
    "the seeds; groups whose non-embedding parameters agree within 5% are\n"
    "listed together as an equal-parameter set. --csv writes the same numbers,\n"
    "one line per run and per group, with how each value was read. Without\n"
    "--runs, every run of the store is compared when they all train on one\n"
    "dataset.\n";

/* Parses a budget > 0 for option name (a number such as 1e10). */
static int parse_budget(const char *name, const char *text, double *out) {
    char *end;
    *out = strtod(text, &end);
    if (end == text || *end || !(*out > 0) || !isfinite(*out))
        return cli_usage_error("compare", "%s: expected a number > 0, got '%s'", name, text);
    return 0;
}

int cmd_compare(int argc, char **argv) {
    const char *store_path = NULL, *runs_text = NULL, *group_by = "config", *csv = NULL;
    const char *at_tokens = NULL, *at_flops = NULL;
    int interpolate = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--store", &store_path, NULL},
        {"--runs", &runs_text, NULL},
        {"--group-by", &group_by, NULL},
        {"--csv", &csv, NULL},
        {"--at-tokens", &at_tokens, NULL},
        {"--at-flops", &at_flops, NULL},
        {"--interpolate", NULL, &interpolate},
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
    if (at_tokens && parse_budget("--at-tokens", at_tokens, &options.at_tokens)) return 2;
    if (at_flops && parse_budget("--at-flops", at_flops, &options.at_flops)) return 2;
    options.interpolate = interpolate;
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
