/*
 * main.c: the `spiral` command: dispatches to a subcommand (the helpers the
 * subcommands share are in options.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

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

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("spiral %s\n", cli_version());
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
