/*
 * cmd_train.c: `spiral train`: trains a new run, or resumes one.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "store.h"
#include "train.h"

static const char *help =
    "usage: spiral train --config RUN.json --store STORE.db [--name NAME] [--device D]\n"
    "                    [--precision P] [--quiet]\n"
    "       spiral train --resume NAME --store STORE.db [--device D] [--precision P] [--quiet]\n"
    "\n"
    "Trains the model of RUN.json ({\"model\": ..., \"train\": ...}) on the dataset\n"
    "train.dataset of the store (make one with 'spiral data make'). Metrics go to\n"
    "the store's metrics table, checkpoints (weights + AdamW state, safetensors)\n"
    "to train.checkpoint_dir (default: checkpoints/NAME beside the store).\n"
    "NAME defaults to the config file's name without directory and extension.\n"
    "\n"
    "Ctrl-C (SIGINT), SIGTERM or SIGHUP: finish the step, write a checkpoint, stop; a\n"
    "second Ctrl-C stops at once. --resume NAME continues from the last\n"
    "checkpoint and reproduces the loss curve of an uninterrupted run exactly.\n"
    "Progress goes to stderr (a bar on a terminal, lines otherwise).\n"
    "\n"
    "--device cpu|cuda: the engine (default cpu); cuda needs a spiral built with\n"
    "'make cuda' (build/cuda/spiral). Checkpoints are the same float32 files on\n"
    "both, so a run may be resumed on the other device.\n"
    "--precision fp32|tf32|bf16: how the matrix products round their inputs on\n"
    "cuda (default bf16; accumulation, weights, gradients and AdamW are fp32 in\n"
    "every mode). fp32 is the mode proven equal to the CPU engine; the CPU\n"
    "engine is fp32 only.\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    if (interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    interrupted = 1;
}

/* The default run name: the config's file name without directory and
 * extension. */
static void default_name(char *out, size_t size, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, size, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

int cmd_train(int argc, char **argv) {
    const char *config_path = NULL, *store_path = NULL, *name = NULL, *resume = NULL;
    const char *device = "cpu", *precision = NULL;
    int quiet = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--config", &config_path, NULL},
        {"--store", &store_path, NULL},
        {"--name", &name, NULL},
        {"--resume", &resume, NULL},
        {"--device", &device, NULL},
        {"--precision", &precision, NULL},
        {"--quiet", NULL, &quiet},
    };
    if (cli_parse_options("train", argc, argv, table, (int)(sizeof table / sizeof table[0]),
                          NULL))
        return 2;
    if (!store_path) return cli_usage_error("train", "--store is required");
    if (!config_path == !resume)
        return cli_usage_error("train", "give exactly one of --config and --resume");
    if (resume && name) return cli_usage_error("train", "--name goes with --config, not --resume");

    if (engine_precision_check(device, precision)) return cli_fail("train");

    char command[2048] = "spiral";
    for (int i = 0; i < argc; i++) {
        size_t used = strlen(command);
        snprintf(command + used, sizeof command - used, " %s", argv[i]);
    }
    char from_file[1024];
    const char *run_name = resume ? resume : name;
    if (!run_name) {
        default_name(from_file, sizeof from_file, config_path);
        run_name = from_file;
    }

    Store store;
    if (store_open(&store, store_path, 1)) return cli_fail("train");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);  /* a closed terminal stops the run like SIGTERM */
    Progress progress = cli_progress(!quiet);
    TrainOptions options = {.progress = &progress, .command = command, .interrupt = &interrupted,
                           .device = device, .precision = precision};
    TrainResult result;
    int status = resume ? train_resume(&store, run_name, &options, &result)
                        : train_new(&store, run_name, config_path, &options, &result);
    store_close(&store);
    if (status) return cli_fail("train");
    if (result.interrupted) {
        printf("run %s: interrupted at step %ld, checkpoint written; continue with "
               "'spiral train --resume %s --store %s'\n", run_name, result.step, run_name,
               store_path);
        return 130;
    }
    if (result.finished_before) {
        printf("run %s is already finished (step %ld); nothing to do\n", run_name, result.step);
        return 0;
    }
    printf("run %s: step %ld, train loss %.4f, val loss %.4f, %.1f s\n", run_name, result.step,
           result.loss, result.val_loss, result.seconds);
    return 0;
}
