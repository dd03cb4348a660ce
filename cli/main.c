/*
 * main.c: the `spiral` command: dispatches to a subcommand.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "cli.h"
#include "error.h"

#define SPIRAL_VERSION "0.1.0"

static const char *usage =
    "usage: spiral <command> [options]\n"
    "\n"
    "SpiralFormer and its baselines (looped, dense) on the CPU.\n"
    "\n"
    "commands:\n"
    "  info   parameter and analytic FLOP counts of a configuration, per block\n"
    "  init   write freshly initialized weights (safetensors)\n"
    "  eval   mean next-token cross-entropy of one sequence; logits and gradients\n"
    "  data   make, list and show datasets (synthetic languages, text, KJV Bible)\n"
    "  train  train a run on a dataset of the store; resume an interrupted run\n"
    "  runs   list the store's runs (kind, status, step, losses); delete one\n"
    "  record store every iteration's hidden states and attention statistics\n"
    "  export one recorded site as a NumPy array with its labels\n"
    "  sweep  a whole study from one file: datasets, seeded runs, record, probe,\n"
    "         analyze, report; resumable, -j N runs in parallel\n"
    "  probe  linear probes with controls on every recorded state, per label\n"
    "  analyze attention statistics, head selection, loop diagnostics, CKA\n"
    "  compare parameters, FLOPs and validation loss of runs, across seeds\n"
    "  match  derive the looped and dense baselines of a spiral config\n"
    "  report figures (gnuplot) and an HTML/Markdown report of the store's runs\n"
    "\n"
    "'spiral <command> --help' describes each command.\n"
    "\n"
    "environment:\n"
    "  SPIRAL_THREADS  threads for training, eval and recording (default: every\n"
    "                  core); results are the same for any number\n";

const char *cli_version(void) { return SPIRAL_VERSION; }

int cli_parse_options(const char *command, int argc, char **argv, const CliOption *options,
                      int n_options, const char **positional) {
    for (int i = 1; i < argc; i++) {
        int k = 0;
        while (k < n_options && strcmp(argv[i], options[k].name) != 0) k++;
        if (k == n_options) {
            if (positional && argv[i][0] != '-' && !*positional) {
                *positional = argv[i];
                continue;
            }
            return cli_usage_error(command, "unknown argument '%s'", argv[i]);
        }
        if (!options[k].value) {
            *options[k].flag = 1;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error(command, "option %s needs a value", argv[i]);
        *options[k].value = argv[++i];
    }
    return 0;
}

int cli_parse_long(const char *name, const char *text, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "spiral: %s: expected an integer in [%ld, %ld], got '%s'\n", name, min,
                max, text);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_fail(const char *command) {
    fprintf(stderr, "spiral %s: %s\n", command, spiral_last_error());
    return 1;
}

int cli_usage_error(const char *command, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "spiral %s: ", command);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\ntry 'spiral %s --help'\n", command);
    va_end(ap);
    return 2;
}

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("spiral %s\n", SPIRAL_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "init")) return cmd_init(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "runs")) return cmd_runs(argc - 1, argv + 1);
    if (!strcmp(argv[1], "data")) return cmd_data(argc - 1, argv + 1);
    if (!strcmp(argv[1], "record")) return cmd_record(argc - 1, argv + 1);
    if (!strcmp(argv[1], "export")) return cmd_export(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sweep")) return cmd_sweep(argc - 1, argv + 1);
    if (!strcmp(argv[1], "probe")) return cmd_probe(argc - 1, argv + 1);
    if (!strcmp(argv[1], "analyze")) return cmd_analyze(argc - 1, argv + 1);
    if (!strcmp(argv[1], "compare")) return cmd_compare(argc - 1, argv + 1);
    if (!strcmp(argv[1], "match")) return cmd_match(argc - 1, argv + 1);
    if (!strcmp(argv[1], "report")) return cmd_report(argc - 1, argv + 1);
    fprintf(stderr, "spiral: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
