/*
 * main.c: the `spiral` command: dispatches to a subcommand (the helpers the
 * subcommands share are in options.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "names.h"

static const char *usage =
    "usage: spiral <command> [options]\n"
    "\n"
    "SpiralFormer and its baselines (looped, dense) on the CPU, and on an NVIDIA\n"
    "GPU in a spiral built with 'make cuda' (--device cuda for train, record,\n"
    "eval, generate and lens).\n"
    "\n"
    "commands:\n"
    "  info     parameter and analytic FLOP counts of a configuration, per block\n"
    "  init     write freshly initialized weights (safetensors)\n"
    "  eval     mean next-token cross-entropy of one sequence; logits and gradients\n"
    "  generate continue a prompt token by token (incremental decoding)\n"
    "  data     make, list and show datasets (synthetic languages, text, KJV Bible)\n"
    "  train    train a run on a dataset of the store; resume an interrupted run\n"
    "  runs     list the store's runs (kind, status, step, losses); delete one\n"
    "  record   store every iteration's hidden states and attention statistics\n"
    "  lens     logit lens: loss after each iteration, per-slot gains, test-time depth\n"
    "  export   one recorded site as a NumPy array with its labels\n"
    "  sweep    a whole study from one file: datasets, seeded runs, record, probe,\n"
    "           analyze, report; resumable, -j N runs in parallel\n"
    "  probe    linear probes with controls on every recorded state, per label\n"
    "  analyze  attention statistics, head selection, loop diagnostics, CKA\n"
    "  compare  parameters, FLOPs and validation loss of runs, across seeds\n"
    "  match    derive the looped and dense baselines of a spiral config\n"
    "  report   figures (gnuplot) and an HTML/Markdown report of the store's runs\n"
    "\n"
    "'spiral <command> --help' describes each command.\n"
    "\n"
    "environment:\n"
    "  SPIRAL_THREADS  threads for training, eval and recording (default: every\n"
    "                  core); results are the same for any number\n";

/* The subcommands, in the order of the usage text. */
typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
} Command;

static const Command commands[] = {
    {"info", cmd_info},       {"init", cmd_init},       {"eval", cmd_eval},
    {"generate", cmd_generate},
    {"data", cmd_data},       {"train", cmd_train},     {"runs", cmd_runs},
    {"record", cmd_record},   {"export", cmd_export},   {"sweep", cmd_sweep},
    {"probe", cmd_probe},     {"analyze", cmd_analyze}, {"compare", cmd_compare},
    {"match", cmd_match},     {"report", cmd_report},   {"lens", cmd_lens},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

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
    const char *names[N_COMMANDS];
    for (int c = 0; c < N_COMMANDS; c++) {
        if (!strcmp(argv[1], commands[c].name)) return commands[c].run(argc - 1, argv + 1);
        names[c] = commands[c].name;
    }
    const char *closest = closest_name(argv[1], names, N_COMMANDS);
    if (closest)
        fprintf(stderr, "spiral: unknown command '%s'; did you mean '%s'?\n\n%s", argv[1], closest,
                usage);
    else
        fprintf(stderr, "spiral: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
