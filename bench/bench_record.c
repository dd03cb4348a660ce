/*
 * bench_record.c: recording throughput (issue 4).
 *
 * Records the hidden states of a d = 256 spiral model (T = 4 iterations,
 * L = 256, batches of 8) on Dyck sequences into a fresh store and reports MB
 * of float32 state data per second, beside references measured in the same
 * run. Four rounds; each deletes the previous round's recording (not timed),
 * so the store reuses the freed pages, records again and writes the
 * reference file again. (Recording into a growing store costs more on a
 * fresh virtual machine, where every new page-cache page is the first touch
 * of that guest memory: writing 130 MB to a new file takes up to 0.25 s
 * instead of 0.02 s there, for fwrite and for SQLite alike.) What is timed:
 *   - fwrite + fsync: the same number of bytes, in blocks of one state, to a
 *     new file in the store's directory, then fsync (the raw disk path);
 *   - WAL file I/O alone: the writes and fsyncs any store in SQLite's WAL
 *     mode needs for these bytes, without SQLite (wal_io_seconds): each byte
 *     goes to the log in frames of a 24-byte header and a 64 KiB page, and
 *     from there to the database file, with an fdatasync after each. Its
 *     ratio to fwrite is about the most a WAL store can reach on this disk
 *     (the 24-byte frame headers alone make the log's fsync slower than an
 *     aligned file's);
 *   - the store path: everything the recording does to get the states
 *     durably into the store (record.h, RecordResult): converting and
 *     inserting states, attention statistics and sequence rows; BEGIN and
 *     COMMIT (the batch's last pages written to the WAL, no fsync); and every
 *     WAL checkpoint, the last one included (each fsyncs the WAL, copies its
 *     pages into the database file and fsyncs that). When record_run
 *     returns, the recording is in the database file, fsynced;
 *   - the forward passes alone: the same number of batches through a warm
 *     model with an observer that only counts bytes;
 *   - the whole recording (record_run, setup included) and its parts: setup
 *     (dataset, checkpoint with its sha256, model), forward passes (the
 *     first batch on a cold model), attention statistics, store path.
 * Reported: the best round for each (fewest seconds; the parts of a total
 * are from the same round), and the ratios store path / fwrite (goal >= 0.5),
 * WAL file I/O alone / fwrite and whole recording / forward alone. The
 * machine may be shared: run it a few times.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dataset.h"
#include "error.h"
#include "model.h"
#include "attention_stats.h"
#include "record.h"
#include "store.h"
#include "synth_dyck.h"
#include "train.h"

#define ROUNDS 4

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

/* Seconds to fwrite `bytes` zero bytes in blocks of one 256 x 256 float32
 * state to a new file at path, then fsync it; -1 on an I/O error. */
static double fwrite_fsync_seconds(const char *path, double bytes) {
    size_t block = (size_t)256 * 256 * 4;
    char *buffer = calloc(1, block);
    FILE *f = fopen(path, "wb");
    if (!buffer || !f) {
        free(buffer);
        if (f) fclose(f);
        return -1;
    }
    double start = now(), written = 0;
    int ok = 1;
    while (ok && written < bytes) {
        ok = fwrite(buffer, 1, block, f) == block;
        written += (double)block;
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    double seconds = now() - start;
    fclose(f);
    free(buffer);
    unlink(path);
    return ok ? seconds : -1;
}

/* Seconds for the file I/O that SQLite's write-ahead log needs to store
 * `bytes` durably, without SQLite: frames of a 24-byte header and a 64 KiB
 * page appended to a log file, fdatasync; then each page read back and
 * written to a database file, fdatasync (what a checkpoint does). Both files
 * are new and deleted afterwards. -1 on an I/O error. */
static double wal_io_seconds(const char *log_path, const char *db_path, double bytes) {
    enum { PAGE = 65536, HEADER = 24 };
    char *page = calloc(1, PAGE);
    int log = open(log_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int db = open(db_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int ok = page && log >= 0 && db >= 0;
    long n_pages = (long)(bytes / PAGE) + 1;
    double start = now();
    for (long i = 0; ok && i < n_pages; i++) {
        off_t frame = (off_t)i * (HEADER + PAGE);
        ok = pwrite(log, page, HEADER, frame) == HEADER &&
             pwrite(log, page, PAGE, frame + HEADER) == PAGE;
    }
    ok = ok && fdatasync(log) == 0;
    for (long i = 0; ok && i < n_pages; i++) {
        off_t frame = (off_t)i * (HEADER + PAGE);
        ok = pread(log, page, PAGE, frame + HEADER) == PAGE &&
             pwrite(db, page, PAGE, (off_t)i * PAGE) == PAGE;
    }
    ok = ok && fdatasync(db) == 0;
    double seconds = now() - start;
    if (log >= 0) close(log);
    if (db >= 0) close(db);
    free(page);
    unlink(log_path);
    unlink(db_path);
    return ok ? seconds : -1;
}

static int fail(const char *what) {
    fprintf(stderr, "bench_record: %s: %s\n", what, spiral_last_error());
    return 1;
}

/* One table row: seconds and the MB/s of `mb` megabytes in that time. */
static void row(const char *name, double seconds, double mb) {
    printf("%-52s %8.3f %9.1f\n", name, seconds, mb / seconds);
}

int main(int argc, char **argv) {
    int n_sequences = argc > 1 ? atoi(argv[1]) : 64;
    char dir[] = "/tmp/spiral_bench_record_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char store_path[256], run_path[256], raw_path[256], log_path[256], db_path[256];
    snprintf(store_path, sizeof store_path, "%s/runs.db", dir);
    snprintf(run_path, sizeof run_path, "%s/run.json", dir);
    snprintf(raw_path, sizeof raw_path, "%s/raw.bin", dir);
    snprintf(log_path, sizeof log_path, "%s/io.wal", dir);
    snprintf(db_path, sizeof db_path, "%s/io.db", dir);
    Store store;
    if (store_open(&store, store_path, 1)) return fail("store");
    Dataset ds;
    if (synth_dyck_make(&ds, "{\"n_test\": 2000, \"min_len\": 300}", 1) ||
        store_dataset_save(&store, "dyck", &ds, 1, NULL))
        return fail("dataset");
    FILE *f = fopen(run_path, "w");
    if (!f) return 1;
    fputs("{\"model\": {\"vocab_size\": 7, \"d_model\": 256, \"n_heads\": 4, \"d_ff\": 688,"
          " \"schedule\": [8, 4, 2, 1]}, \"train\": {\"dataset\": \"dyck\", \"seq_len\": 256,"
          " \"batch_size\": 1, \"steps\": 1, \"eval_every\": 0, \"eval_batches\": 1}}", f);
    fclose(f);
    TrainOptions quiet = {0};
    TrainResult trained;
    if (train_new(&store, "bench", run_path, &quiet, &trained)) return fail("train");

    RecordOptions o;
    record_options_default(&o);
    o.attention = attention_stats_summary();
    o.n_sequences = n_sequences;
    RunRow run;
    SpiralConfig cfg;
    Model model;
    if (store_run_find(&store, "bench", &run) || config_parse(&cfg, run.config, "run") ||
        model_build(&model, &cfg))
        return fail("model");
    model_init_weights(&model, 1);
    int *tokens = malloc((size_t)o.batch_size * 256 * sizeof(int));
    for (int i = 0; i < o.batch_size * 256; i++) tokens[i] = 1 + i % 6;

    /* the rounds alternate the paths, so a busy machine hurts them alike */
    double state_bytes = 0, forward_seconds = 1e30, raw_seconds = 1e30, wal_seconds = 1e30;
    double best_whole = 1e30, best_store = 1e30;
    RecordResult whole_round = {0}, store_round = {0};
    Observer counter = {count_bytes, &state_bytes, 0, NULL};
    for (int round = 0; round < ROUNDS; round++) {
        double t0 = now();
        for (int s = 0; s < n_sequences; s += o.batch_size)
            if (model_forward(&model, tokens, NULL, o.batch_size, 256, &counter))
                return fail("forward");
        double t = now() - t0;
        if (t < forward_seconds) forward_seconds = t;

        RecordResult result;
        if (store_exec(&store, "DELETE FROM recordings")) return fail("delete");
        t0 = now();
        if (record_run(&store, "bench", "dyck", &o, &result)) return fail("record");
        t = now() - t0;
        if (result.recorded_now != n_sequences) {
            fprintf(stderr, "bench_record: recorded %d sequences, expected %d\n",
                    result.recorded_now, n_sequences);
            return 1;
        }
        if (t < best_whole) {
            best_whole = t;
            whole_round = result;
        }
        if (result.store_seconds < best_store) {
            best_store = result.store_seconds;
            store_round = result;
        }

        t = fwrite_fsync_seconds(raw_path, result.bytes);
        double t_wal = wal_io_seconds(log_path, db_path, result.bytes);
        if (t < 0 || t_wal < 0) {
            fprintf(stderr, "bench_record: writing the reference files in %s failed\n", dir);
            return 1;
        }
        if (t < raw_seconds) raw_seconds = t;
        if (t_wal < wal_seconds) wal_seconds = t_wal;
    }

    double mb = store_round.bytes / 1e6;
    const RecordResult *w = &whole_round, *s = &store_round;
    printf("recording %d sequences of 256 tokens, d = 256, spiral T = 4: %.1f MB of float32 "
           "states; best of %d rounds\n", n_sequences, mb, ROUNDS);
    printf("%-52s %8s %9s\n", "", "seconds", "MB/s");
    row("fwrite + fsync of the same bytes", raw_seconds, mb);
    row("WAL file I/O alone: log, fsync, copy to db, fsync", wal_seconds, mb);
    row("store path (sum of the three parts below)", s->store_seconds, mb);
    row("  insert: convert, INSERT states, stats, sequences", s->insert_seconds, mb);
    row("  commit: BEGIN, COMMIT (pages to the WAL)", s->commit_seconds, mb);
    row("  checkpoints: fsync WAL, copy to db, fsync db", s->checkpoint_seconds, mb);
    row("forward passes alone (warm model)", forward_seconds, mb);
    row("whole recording (record_run)", best_whole, mb);
    row("  setup: dataset, checkpoint + sha256, model", best_whole - w->seconds, mb);
    row("  forward passes (cold model at the first batch)", w->forward_seconds, mb);
    row("  attention statistics", w->attention_seconds, mb);
    row("  store path", w->store_seconds, mb);
    printf("ratios: store path / fwrite = %.2f (goal >= 0.5); WAL file I/O alone / fwrite = %.2f;\n"
           "        whole recording / forward alone = %.2f\n", raw_seconds / s->store_seconds,
           raw_seconds / wal_seconds, best_whole / forward_seconds);
    (void)state_bytes;
    free(tokens);
    model_free(&model);
    store_run_free(&run);
    dataset_free(&ds);
    store_close(&store);
    char command[300];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    return system(command) == 0 ? 0 : 1;
}
