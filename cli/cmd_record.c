/*
 * cmd_record.c: `spiral record`: store every iteration's hidden states of a
 * trained run on a probe dataset.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention_stats.h"
#include "cli.h"
#include "engine.h"
#include "record.h"
#include "store.h"

static const char *help =
    "usage: spiral record --run RUN --data DATASET --store S.db [--split test]\n"
    "                     [--sequences 500] [--seq-len L] [--dtype f32|f16] [--step N]\n"
    "                     [--device cpu|cuda]\n"
    "                     [--batch 8] [--distances 4,16,64] [--replace] [--quiet]\n"
    "\n"
    "Runs the last checkpoint of RUN over --sequences windows of the split (at\n"
    "document starts; evenly spaced through the split when it has fewer\n"
    "documents) and stores, per sequence, h(t) of every iteration (site\n"
    "token, t = 0 is the prelude output), the latents z and z~ at each\n"
    "iteration's scale (latent_in, latent_out), the coda output (coda), for\n"
    "a mesh model the memory slots after each iteration's write (memory.0,\n"
    "memory.1, ...), and\n"
    "attention statistics per iteration, layer, head and query: mean distance\n"
    "in tokens, entropy, mass beyond each distance. For a dense model every\n"
    "layer counts as an iteration. Interrupted recordings resume: running the\n"
    "same command again records only the missing sequences. --step N records the\n"
    "run's checkpoint at or before step N instead of the last (see train.keep_steps);\n"
    "recordings of different steps are kept side by side. Progress goes to\n"
    "stderr (a bar on a terminal, lines otherwise).\n"
    "--device cuda runs the forward passes on the GPU in fp32 (a spiral built\n"
    "with 'make cuda'); the states and attention statistics are the CPU's to\n"
    "about 1e-6 relative. The store writes every state twice (its log, then\n"
    "the database file) and bounds a GPU recording's speed: --dtype f16 halves\n"
    "its bytes (values rounded to the nearest half: about 3 decimal digits,\n"
    "magnitudes up to 65504; a state holding a larger value stops the\n"
    "recording with an error naming its site, and --dtype f32 records it).\n";

static volatile sig_atomic_t interrupted = 0;

/* SIGINT, SIGTERM, SIGHUP: finish the batch, commit it, stop; a second one
 * stops at once (what is committed stays). */
static void on_signal(int sig) {
    if (interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    interrupted = 1;
}

int cmd_record(int argc, char **argv) {
    const char *run = NULL, *data = NULL, *store_path = NULL, *dtype = "f32";
    const char *seqs_text = NULL, *len_text = NULL, *batch_text = NULL, *dist_text = NULL;
    const char *step_text = NULL;
    RecordOptions options;
    record_options_default(&options);
    options.attention = attention_stats_summary();
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    int quiet = 0;
    CliOption table[] = {
        {"--run", &run, NULL},
        {"--data", &data, NULL},
        {"--store", &store_path, NULL},
        {"--split", &options.split, NULL},
        {"--sequences", &seqs_text, NULL},
        {"--seq-len", &len_text, NULL},
        {"--dtype", &dtype, NULL},
        {"--batch", &batch_text, NULL},
        {"--distances", &dist_text, NULL},
        {"--step", &step_text, NULL},
        {"--device", &options.device, NULL},
        {"--replace", NULL, &options.replace},
        {"--quiet", NULL, &quiet},
    };
    if (cli_parse_options("record", argc, argv, table, (int)(sizeof table / sizeof table[0]),
                          NULL))
        return 2;
    if (!run || !data || !store_path)
        return cli_usage_error("record", "--run, --data and --store are required");
    if (engine_device_check(options.device)) return cli_fail("record");
    long v;
    if (seqs_text) {
        if (cli_parse_long("--sequences", seqs_text, 1, 10000000, &v)) return 2;
        options.n_sequences = (int)v;
    }
    if (len_text) {
        if (cli_parse_long("--seq-len", len_text, 1, 1 << 16, &v)) return 2;
        options.seq_len = (int)v;
    }
    if (step_text) {
        if (cli_parse_long("--step", step_text, 0, 1L << 40, &v)) return 2;
        options.step = v;
    }
    if (batch_text) {
        if (cli_parse_long("--batch", batch_text, 1, 4096, &v)) return 2;
        options.batch_size = (int)v;
    }
    if (!strcmp(dtype, "f16")) options.f16 = 1;
    else if (strcmp(dtype, "f32")) return cli_usage_error("record", "--dtype: expected f32 or f16, got '%s'", dtype);
    if (dist_text) {
        options.n_distances = 0;
        char buffer[256];
        snprintf(buffer, sizeof buffer, "%s", dist_text);
        for (char *tok = strtok(buffer, ","); tok; tok = strtok(NULL, ",")) {
            if (options.n_distances == RECORD_MAX_DISTANCES)
                return cli_usage_error("record", "--distances: at most %d values", RECORD_MAX_DISTANCES);
            if (cli_parse_long("--distances", tok, 0, 1 << 20, &v)) return 2;
            options.distances[options.n_distances++] = (int)v;
        }
    }
    Progress progress = cli_progress(!quiet);
    options.progress = &progress;
    options.interrupt = &interrupted;
    Store store;
    if (store_open(&store, store_path, 0)) return cli_fail("record");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    RecordResult result;
    int status = record_run(&store, run, data, &options, &result);
    store_close(&store);
    if (status) return cli_fail("record");
    if (result.interrupted) {
        printf("recording %lld: interrupted, %d of its %d sequences recorded now; run the same "
               "command again to record the rest\n", result.recording_id, result.recorded_now,
               result.n_sequences);
        return 130;
    }
    printf("recording %lld: run %s at step %lld on %s (%s split): %d sequences, %d recorded now, "
           "%.1f MB in %.2f s (%.1f MB/s; forward passes %.2f s, attention statistics %.2f s, "
           "store %.2f s on a thread of its own)\n", result.recording_id, run,
           result.checkpoint_step, data, options.split, result.n_sequences, result.recorded_now,
           result.bytes / 1e6, result.seconds,
           result.seconds > 0 ? result.bytes / 1e6 / result.seconds : 0.0, result.forward_seconds, result.attention_seconds, result.store_seconds);
    return 0;
}
