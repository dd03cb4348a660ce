/*
 * bench_record.c: recording throughput (issue 4).
 *
 * Records the hidden states of a d = 256 spiral model (T = 4 iterations,
 * L = 256) on Dyck sequences into a fresh store and reports MB/s of state
 * data, beside two references measured in the same run:
 *   - fwrite of the same number of bytes, in blocks of one state, to a file
 *     in the same directory, then fsync (the raw disk path);
 *   - the forward passes alone (an observer that only counts bytes);
 * and the recorder's own account of the time it spent converting and
 * writing states (inserts and commits): the store path's MB/s.
 * Each of the two timed paths is the best of 3 runs, alternating.
 * Prints a table and the ratio record / fwrite (goal: >= 0.5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dataset.h"
#include "error.h"
#include "model.h"
#include "record.h"
#include "store.h"
#include "synth_dyck.h"
#include "train.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Counts the bytes the recorder would store, without storing them. */
static void count_bytes(void *user, const ObserveEvent *e) {
    double *bytes = user;
    if (e->site != OBSERVE_ATTENTION && e->site != OBSERVE_LAYER_OUT)
        *bytes += (double)e->B * e->rows * e->cols * 4;
}

static int fail(const char *what) {
    fprintf(stderr, "bench_record: %s: %s\n", what, spiral_last_error());
    return 1;
}

int main(int argc, char **argv) {
    int n_sequences = argc > 1 ? atoi(argv[1]) : 64;
    char dir[] = "/tmp/spiral_bench_record_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char store_path[256], run_path[256], raw_path[256];
    snprintf(store_path, sizeof store_path, "%s/runs.db", dir);
    snprintf(run_path, sizeof run_path, "%s/run.json", dir);
    snprintf(raw_path, sizeof raw_path, "%s/raw.bin", dir);
    Store store;
    if (store_open(&store, store_path, 1)) return fail("store");
    Dataset ds;
    if (synth_dyck_make(&ds, "{\"n_test\": 2000, \"min_len\": 300}", 1) ||
        store_dataset_save(&store, "dyck", &ds, 1, NULL))
        return fail("dataset");
    FILE *f = fopen(run_path, "w");
    fputs("{\"model\": {\"vocab_size\": 7, \"d_model\": 256, \"n_heads\": 4, \"d_ff\": 688,"
          " \"schedule\": [8, 4, 2, 1]}, \"train\": {\"dataset\": \"dyck\", \"seq_len\": 256,"
          " \"batch_size\": 1, \"steps\": 1, \"eval_every\": 0, \"eval_batches\": 1}}", f);
    fclose(f);
    TrainOptions quiet = {0};
    TrainResult trained;
    if (train_new(&store, "bench", run_path, &quiet, &trained)) return fail("train");

    /* 1. forward passes alone, same batches */
    RecordOptions o;
    record_options_default(&o);
    o.n_sequences = n_sequences;
    RunRow run;
    store_run_find(&store, "bench", &run);
    SpiralConfig cfg;
    config_parse(&cfg, run.config, "run");
    Model model;
    model_build(&model, &cfg);
    model_init_weights(&model, 1);
    int *tokens = malloc((size_t)o.batch_size * 256 * sizeof(int));
    for (int i = 0; i < o.batch_size * 256; i++) tokens[i] = 1 + i % 6;
    /* best of 3 for each, alternating, so a busy machine hurts both alike */
    double state_bytes = 0, forward_seconds = 1e30, record_seconds = 1e30, store_seconds = 1e30;
    Observer counter = {count_bytes, &state_bytes};
    RecordResult result;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        for (int s = 0; s < n_sequences; s += o.batch_size)
            model_forward(&model, tokens, NULL, o.batch_size, 256, &counter);
        double t = now() - t0;
        if (t < forward_seconds) forward_seconds = t;
        store_exec(&store, "DELETE FROM recordings");
        t0 = now();
        if (record_run(&store, "bench", "dyck", &o, &result)) return fail("record");
        t = now() - t0;
        if (t < record_seconds) record_seconds = t;
        if (result.store_seconds < store_seconds) store_seconds = result.store_seconds;
    }

    /* 3. raw fwrite of the same bytes in blocks of one state, then fsync */
    size_t block = (size_t)256 * 256 * 4;
    char *buffer = calloc(1, block);
    f = fopen(raw_path, "wb");
    double t0 = now();
    double written = 0;
    while (written < result.bytes) {
        fwrite(buffer, 1, block, f);
        written += (double)block;
    }
    fflush(f);
    fsync(fileno(f));
    fclose(f);
    double raw_seconds = now() - t0;

    double mb = result.bytes / 1e6;
    printf("recording %d sequences of 256 tokens, d = 256, spiral T = 4 (%.1f MB of float32 states)\n",
           n_sequences, mb);
    printf("%-40s %10s %10s\n", "", "seconds", "MB/s");
    printf("%-40s %10.3f %10.1f\n", "fwrite + fsync of the same bytes", raw_seconds, mb / raw_seconds);
    printf("%-40s %10.3f %10.1f\n", "spiral record (forward + store)", record_seconds, mb / record_seconds);
    printf("%-40s %10.3f %10.1f\n", "forward passes alone", forward_seconds, mb / forward_seconds);
    printf("%-40s %10.3f %10.1f\n", "  of which converting + writing states", store_seconds,
           mb / store_seconds);
    printf("ratio: store path / fwrite = %.2f (goal >= 0.5); whole recording / fwrite = %.2f "
           "(bounded by the forward passes)\n", (mb / store_seconds) / (mb / raw_seconds),
           (mb / record_seconds) / (mb / raw_seconds));
    (void)state_bytes;
    free(buffer);
    free(tokens);
    model_free(&model);
    store_run_free(&run);
    dataset_free(&ds);
    store_close(&store);
    char command[300];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    return system(command) == 0 ? 0 : 1;
}
