/*
 * test_store.c: the store's questions about datasets and runs
 * (data/store.h): store_dataset_exists, store_dataset_list and
 * store_run_status on a fresh store, after saving datasets and as a run's
 * status changes; and that a dataset's tokens load back unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_fixtures.h"
#include "error.h"
#include "harness.h"
#include "store.h"

int main(int argc, char **argv) {
    char dir[] = "/tmp/spiral_test_store_XXXXXX";
    if (!mkdtemp(dir)) return 2;
    char path[256];
    snprintf(path, sizeof path, "%s/s.db", dir);
    Store store;
    CHECK(store_open(&store, path, 1) == 0, "open: %s", spiral_last_error());

    /* an empty store */
    int exists = -1;
    CHECK(store_dataset_exists(&store, "lang", &exists) == 0 && exists == 0, "exists on empty");
    DatasetRow *rows = (DatasetRow *)1;
    int n_rows = -1;
    CHECK(store_dataset_list(&store, &rows, &n_rows) == 0 && n_rows == 0 && rows == NULL,
          "list on empty: %d rows", n_rows);
    char status[32] = "x";
    CHECK(store_run_status(&store, "nope", status, sizeof status) == 0 && status[0] == 0,
          "status of a missing run: '%s'", status);

    /* two datasets, listed in the order they were saved */
    Dataset ds, back;
    make_parity_language(&ds);
    CHECK(store_dataset_save(&store, "lang", &ds, 7, NULL) == 0, "save: %s", spiral_last_error());
    CHECK(store_dataset_save(&store, "again", &ds, 9, NULL) == 0, "save 2: %s", spiral_last_error());
    CHECK(store_dataset_exists(&store, "lang", &exists) == 0 && exists == 1, "exists");
    CHECK(store_dataset_exists(&store, "lan", &exists) == 0 && exists == 0, "a prefix is not a name");
    CHECK(store_dataset_list(&store, &rows, &n_rows) == 0 && n_rows == 2, "list: %d rows", n_rows);
    if (n_rows == 2) {
        CHECK(!strcmp(rows[0].name, "lang") && !strcmp(rows[1].name, "again"), "order: %s, %s",
              rows[0].name, rows[1].name);
        CHECK(!strcmp(rows[0].family, "test") && rows[0].vocab_size == 8, "family, vocab");
        CHECK(rows[0].n_tokens == (long long)ds.n_tokens && rows[0].n_docs == (long long)ds.n_docs,
              "sizes %lld, %lld", rows[0].n_tokens, rows[0].n_docs);
        CHECK(rows[0].seed == 7 && rows[1].seed == 9, "seeds");
        CHECK(strlen(rows[0].created) == 19, "created '%s'", rows[0].created);
    }
    store_dataset_list_free(rows, n_rows);
    CHECK(store_dataset_load(&store, "again", &back, NULL) == 0, "load: %s", spiral_last_error());
    CHECK(back.n_tokens == ds.n_tokens && !memcmp(back.tokens, ds.tokens, ds.n_tokens * 2),
          "loaded tokens differ");
    dataset_free(&back);
    dataset_free(&ds);

    /* a run's status as it changes */
    long long run_id;
    CHECK(store_run_create(&store, "r", "spiral", "{}", 1, "test", &run_id) == 0, "create: %s",
          spiral_last_error());
    CHECK(store_run_status(&store, "r", status, sizeof status) == 0 && !strcmp(status, "created"),
          "status '%s'", status);
    CHECK(store_run_set_status(&store, run_id, "done", NULL) == 0, "set status");
    CHECK(store_run_status(&store, "r", status, sizeof status) == 0 && !strcmp(status, "done"),
          "status '%s'", status);
    store_close(&store);

    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary(argv[0]);
}
