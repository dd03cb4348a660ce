/*
 * test_train.c: the trainer end to end on a small hand-made language.
 *
 *  - the loss falls well below the unigram entropy (the language's next
 *    token is predictable from the previous two, so a model must learn it);
 *  - on the synthetic Dyck language a tiny spiral model gets below the
 *    bigram baseline of the same validation split (which needs the stack);
 *  - metrics rows exist for every step, with evaluation rows where due;
 *  - resume reproduces an uninterrupted run exactly: a run's metrics and
 *    checkpoints after step k are deleted (as a crash would lose them) and
 *    the run resumed; its losses at every step equal the original bit for bit;
 *  - a corrupted checkpoint (sha256 mismatch) is refused on resume;
 *  - NaN: a learning rate that blows up stops the run with a message naming
 *    the step and a tensor, and the run is marked failed;
 *  - bad input: unknown dataset, bad train field, seq_len longer than the
 *    data: error, and no run row is created.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "ngram.h"
#include "synth_dyck.h"
#include "error.h"
#include "data_fixtures.h"
#include "harness.h"
#include "store.h"
#include "train.h"

static char dir[256];

/* A language over 8 symbols: x_{i+1} = (x_i + x_{i-1}) mod 7 + 1 with
 * probability 0.9, a random symbol otherwise; documents of 40 tokens. */
static void make_language(Dataset *ds) {
    dataset_init(ds, "test", 8, 0, NULL, NULL, 0);
    uint64_t state = 12345;
    for (int d = 0; d < 240; d++) {
        uint16_t tokens[40];
        recurrence_document(tokens, 40, d, &state);
        dataset_append(ds, tokens, 40, NULL, NULL, d < 200 ? SPLIT_TRAIN : d < 220 ? SPLIT_VAL : SPLIT_TEST);
    }
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static const char *model_json =
    "\"model\": {\"vocab_size\": 8, \"d_model\": 32, \"n_heads\": 2, \"d_ff\": 64,"
    " \"n_pre\": 1, \"n_loop\": 1, \"n_post\": 1, \"schedule\": [4, 2, 1]}";

/* Losses of a run, step by step, from the store. Returns how many. */
static int run_losses(Store *store, const char *name, double *losses, int cap) {
    sqlite3_stmt *stmt;
    int n = 0;
    sqlite3_prepare_v2(store->db,
                       "SELECT loss FROM metrics JOIN runs ON runs.id = run_id WHERE name = ?"
                       " ORDER BY metrics.step", -1, &stmt, NULL);
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    while (sqlite3_step(stmt) == SQLITE_ROW && n < cap) losses[n++] = sqlite3_column_double(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "/tmp/spiral_test_train_XXXXXX");
    if (!mkdtemp(dir)) return 2;
    char store_path[512], run_path[512], text[2048];
    snprintf(store_path, sizeof store_path, "%s/runs.db", dir);
    Store store;
    CHECK(store_open(&store, store_path, 1) == 0, "open store: %s", spiral_last_error());
    Dataset ds;
    make_language(&ds);
    CHECK(store_dataset_save(&store, "lang", &ds, 0, NULL) == 0, "save: %s", spiral_last_error());
    dataset_free(&ds);
    TrainOptions quiet = {0};
    TrainResult result;

    /* 1. learning */
    snprintf(run_path, sizeof run_path, "%s/learn.json", dir);
    snprintf(text, sizeof text, "{%s, \"train\": {\"dataset\": \"lang\", \"seq_len\": 32,"
             " \"batch_size\": 8, \"steps\": 600, \"lr\": 0.01, \"warmup\": 20,"
             " \"eval_every\": 200, \"checkpoint_every\": 200}}", model_json);
    write_file(run_path, text);
    CHECK(train_new(&store, "learn", run_path, &quiet, &result) == 0, "train: %s", spiral_last_error());
    double unigram = log(7.0); /* symbols 1..7 are near uniform */
    printf("learn: final train loss %.4f, val loss %.4f (unigram entropy ~%.4f)\n", result.loss,
           result.val_loss, unigram);
    CHECK(result.val_loss < 0.6 * unigram, "val loss %.4f is not well below unigram %.4f",
          result.val_loss, unigram);
    CHECK(store_count(&store, "SELECT count(*) FROM metrics WHERE run_id = 1") == 600, "metrics rows");
    CHECK(store_count(&store, "SELECT count(*) FROM metrics WHERE run_id = 1 AND val_loss IS NOT NULL") == 3,
          "evaluation rows at 200, 400, 600");
    CHECK(store_count(&store, "SELECT count(*) FROM checkpoints WHERE run_id = 1") == 3, "checkpoints at 200, 400, 600");
    CHECK(store_count(&store, "SELECT count(*) FROM runs WHERE status='done' AND step=600") == 1,
          "run marked done at step 600");

    /* 1b. the synthetic language: below unigram and bigram on its val split */
    Dataset dyck;
    CHECK(synth_dyck_make(&dyck, NULL, 3) == 0, "dyck: %s", spiral_last_error());
    double dyck_unigram = ngram_loss(&dyck, 1, SPLIT_TRAIN, SPLIT_VAL, 0.01);
    double dyck_bigram = ngram_loss(&dyck, 2, SPLIT_TRAIN, SPLIT_VAL, 0.01);
    store_dataset_save(&store, "dyck", &dyck, 3, NULL);
    dataset_free(&dyck);
    snprintf(run_path, sizeof run_path, "%s/dyck.json", dir);
    write_file(run_path, "{\"model\": {\"vocab_size\": 7, \"d_model\": 32, \"n_heads\": 2, \"d_ff\": 64,"
               " \"n_pre\": 1, \"n_loop\": 1, \"n_post\": 1, \"schedule\": [4, 2, 1]},"
               " \"train\": {\"dataset\": \"dyck\", \"seq_len\": 64, \"batch_size\": 16, \"steps\": 300,"
               " \"lr\": 0.01, \"warmup\": 20, \"eval_every\": 300, \"checkpoint_every\": 300}}");
    CHECK(train_new(&store, "dyck", run_path, &quiet, &result) == 0, "train dyck: %s", spiral_last_error());
    printf("dyck: val loss %.4f (bigram %.4f, unigram %.4f)\n", result.val_loss, dyck_bigram, dyck_unigram);
    CHECK(result.val_loss < dyck_bigram - 0.05 && result.val_loss < 0.8 * dyck_unigram,
          "spiral on dyck: val loss %.4f not below bigram %.4f / 0.8 x unigram %.4f",
          result.val_loss, dyck_bigram, dyck_unigram);

    /* 2. resume reproduces the curve: lose everything after step 50 */
    double before[700], after[700];
    int n_before = run_losses(&store, "learn", before, 700);
    store_exec(&store, "DELETE FROM metrics WHERE run_id = 1 AND step > 200; DELETE FROM checkpoints WHERE run_id = 1 AND step > 200;"
                       " UPDATE runs SET status='running', step=200 WHERE id = 1");
    CHECK(train_resume(&store, "learn", &quiet, &result) == 0, "resume: %s", spiral_last_error());
    int n_after = run_losses(&store, "learn", after, 700);
    CHECK(n_before == 600 && n_after == 600, "rows before %d after %d", n_before, n_after);
    int same = n_before == n_after;
    for (int i = 0; i < n_after && same; i++) same = before[i] == after[i];
    CHECK(same, "resumed run's losses differ from the uninterrupted run's");

    /* 3. a corrupted checkpoint is refused */
    char *path = NULL, *sha = NULL;
    long long step;
    RunRow run;
    store_run_find(&store, "learn", &run);
    store_checkpoint_last(&store, run.id, &step, &path, &sha);
    FILE *f = fopen(path, "r+b");
    fseek(f, -4, SEEK_END);
    fputc(0x55, f);
    fclose(f);
    store_exec(&store, "UPDATE runs SET status='running' WHERE id = 1");
    CHECK(train_resume(&store, "learn", &quiet, &result) != 0 &&
          strstr(spiral_last_error(), "sha256"), "corrupt checkpoint accepted: %s", spiral_last_error());
    free(path);
    free(sha);
    store_run_free(&run);

    /* 4. divergence stops with a clear message */
    snprintf(run_path, sizeof run_path, "%s/diverge.json", dir);
    snprintf(text, sizeof text, "{%s, \"train\": {\"dataset\": \"lang\", \"seq_len\": 32,"
             " \"batch_size\": 4, \"steps\": 40, \"lr\": 10, \"warmup\": 0, \"clip\": 0,"
             " \"beta2\": 0.0, \"checkpoint_every\": 5, \"eval_every\": 0}}", model_json);
    write_file(run_path, text);
    int diverged = train_new(&store, "diverge", run_path, &quiet, &result) != 0;
    if (diverged)
        CHECK(strstr(spiral_last_error(), "step ") && strstr(spiral_last_error(), "tensor"),
              "divergence message lacks step/tensor: %s", spiral_last_error());
    CHECK(!diverged || store_count(&store, "SELECT count(*) FROM runs WHERE name='diverge' AND status='failed'") == 1,
          "diverged run not marked failed");
    printf("divergence run: %s\n", diverged ? spiral_last_error() : "(did not diverge)");

    /* 5. bad input leaves no run behind */
    long long runs_before = store_count(&store, "SELECT count(*) FROM runs");
    const char *bad[][2] = {
        {"{\"model\": {\"vocab_size\": 8}, \"train\": {\"dataset\": \"nope\"}}", "no dataset named 'nope'"},
        {"{\"model\": {\"vocab_size\": 8}, \"train\": {\"dataset\": \"lang\", \"lr\": \"big\"}}", "train.lr: expected a number, got a string"},
        {"{\"model\": {\"vocab_size\": 8}, \"train\": {\"dataset\": \"lang\", \"lr\": 50}}", "train.lr: expected a number > 0 and <= 10, got 50"},
        {"{\"model\": {\"vocab_size\": 8}, \"train\": {\"dataset\": \"lang\", \"seq_len\": 5000}}", "split has"},
        {"{\"model\": {\"vocab_size\": 4}, \"train\": {\"dataset\": \"lang\"}}", "vocab_size"},
        {"{\"model\": {\"vocab_size\": 8}, \"train\": {\"dataset\": \"lang\", \"stepz\": 3}}", "train.stepz"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(run_path, sizeof run_path, "%s/bad%zu.json", dir, i);
        write_file(run_path, bad[i][0]);
        char name[32];
        snprintf(name, sizeof name, "bad%zu", i);
        CHECK(train_new(&store, name, run_path, &quiet, &result) != 0 &&
              strstr(spiral_last_error(), bad[i][1]), "bad input %zu: %s", i, spiral_last_error());
    }
    CHECK(train_new(&store, "learn", "/nonexistent/run.json", &quiet, &result) != 0 &&
          strstr(spiral_last_error(), "/nonexistent/run.json"), "missing file: %s", spiral_last_error());
    CHECK(store_count(&store, "SELECT count(*) FROM runs") == runs_before, "bad input created a run");
    store_close(&store);

    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary(argv[0]);
}
