/*
 * cmd_sweep.c: `spiral sweep`: a whole study from one JSON file (the format
 * and what a sweep does are in reports/sweep.h).
 */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "sweep.h"

static const char *help =
    "usage: spiral sweep SWEEP.json --store S.db [-j N] [--dry-run] [--quiet]\n"
    "\n"
    "Runs a whole study: makes the datasets, trains every run with every seed\n"
    "(run name NAME-sSEED where the run lists \"seeds\", the seed replacing\n"
    "train.seed; else NAME with the run file's seed), records each trained run\n"
    "on the sweep's record.data, or else on the dataset the run trains on,\n"
    "fits probes, analyzes and writes the report, as the sweep file says\n"
    "(format in the header of reports/sweep.h and in README \"Sweeps\").\n"
    "What the store already has is skipped, so an interrupted sweep resumes.\n"
    "-j N trains N runs at once (separate processes, one BLAS thread each).\n"
    "The commands are printed first; --dry-run prints them only. The sweep's\n"
    "progress goes to stderr.\n";

/* Prints each step as "sweep: LABEL" and its command line. */
static void print_plan(const SweepPlan *plan) {
    for (int i = 0; i < plan->n_commands; i++) {
        const SweepCommand *c = &plan->commands[i];
        printf("sweep: %s\n  ", c->label);
        for (int a = 0; a < c->argc; a++) printf("%s%s", a ? " " : "", c->argv[a]);
        printf("\n");
    }
    fflush(stdout);
}

int cmd_sweep(int argc, char **argv) {
    const char *sweep_path = NULL, *store_path = NULL, *jobs_text = "1";
    int dry_run = 0, quiet = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--store", &store_path, NULL},
        {"-j", &jobs_text, NULL},
        {"--dry-run", NULL, &dry_run},
        {"--quiet", NULL, &quiet},
    };
    if (cli_parse_options("sweep", argc, argv, table, (int)(sizeof table / sizeof table[0]),
                          &sweep_path))
        return 2;
    if (!sweep_path || !store_path) return cli_usage_error("sweep", "a sweep file and --store are required");
    long jobs;
    if (cli_parse_long("-j", jobs_text, 1, 64, &jobs)) return 2;

    /* each step runs this same binary */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) snprintf(self, sizeof self, "%s", argv[-1] ? argv[-1] : "spiral");
    else self[len] = 0;

    Progress progress = cli_progress(!quiet);
    SweepOptions options = {.spiral_path = self, .store_path = store_path, .jobs = (int)jobs,
                            .progress = &progress, .dry_run = dry_run};
    SweepPlan plan;
    if (sweep_plan(&plan, sweep_path, &options)) return cli_fail("sweep");
    print_plan(&plan);
    int status = dry_run ? 0 : sweep_run(&plan, &options);
    sweep_plan_free(&plan);
    if (status) return cli_fail("sweep");
    if (!dry_run) printf("sweep: done (%s)\n", store_path);
    return 0;
}
