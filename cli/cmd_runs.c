/*
 * cmd_runs.c: `spiral runs`: the runs of a store, and deleting one.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "runs.h"
#include "store.h"

static const char *help =
    "usage: spiral runs --store S.db [--delete NAME [--files]]\n"
    "\n"
    "Lists the store's runs: name, kind, status, last step, the training loss\n"
    "there, the last validation loss, the dataset and when the run last changed.\n"
    "A run marked running whose trainer is gone (killed, crashed) is shown as\n"
    "interrupted: continue it with 'spiral train --resume NAME'.\n"
    "\n"
    "--delete NAME removes the run and everything recorded from it (metrics,\n"
    "checkpoint rows, recordings, probes, analyses) from the store, refusing\n"
    "while it is being trained; --files also deletes its checkpoint files.\n";

/* A loss for the table: 4 decimals, or "-" when there is none. */
static void loss_text(char *out, size_t size, double loss) {
    if (isnan(loss)) snprintf(out, size, "-");
    else snprintf(out, size, "%.4f", loss);
}

int cmd_runs(int argc, char **argv) {
    const char *store_path = NULL, *delete_name = NULL;
    int files = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--store", &store_path, NULL},
        {"--delete", &delete_name, NULL},
        {"--files", NULL, &files},
    };
    if (cli_parse_options("runs", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!store_path) return cli_usage_error("runs", "--store is required");
    if (files && !delete_name) return cli_usage_error("runs", "--files goes with --delete NAME");
    Store store;
    int opened = delete_name ? store_open(&store, store_path, 0) : store_open_readonly(&store, store_path);
    if (opened) return cli_fail("runs");
    if (delete_name) {
        int removed;
        int status = runs_delete(&store, delete_name, files, &removed);
        store_close(&store);
        if (status) return cli_fail("runs");
        printf("deleted run %s%s", delete_name, files ? "" : "\n");
        if (files) printf(" and %d checkpoint file%s\n", removed, removed == 1 ? "" : "s");
        return 0;
    }
    RunListRow *rows;
    int n;
    if (runs_list(&store, &rows, &n)) {
        store_close(&store);
        return cli_fail("runs");
    }
    if (n == 0) printf("no runs in %s; train one with 'spiral train'\n", store_path);
    else
        printf("%-20s %-7s %-12s %8s %9s %9s  %-12s %s\n", "name", "kind", "status", "step",
               "loss", "val loss", "dataset", "updated");
    for (int i = 0; i < n; i++) {
        char loss[32], val[32];
        loss_text(loss, sizeof loss, rows[i].loss);
        loss_text(val, sizeof val, rows[i].val_loss);
        printf("%-20s %-7s %-12s %8lld %9s %9s  %-12s %s\n", rows[i].name, rows[i].kind,
               rows[i].status, rows[i].step, loss, val, rows[i].dataset, rows[i].updated);
    }
    store_run_list_free(rows, n);
    store_close(&store);
    return 0;
}
