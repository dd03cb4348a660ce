/*
 * cmd_runs.c: `spiral runs`: the runs of a store, and deleting one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval_run.h"
#include "runs.h"
#include "store.h"

static const char *help =
    "usage: spiral runs --store S.db [--floor] [--delete NAME [--files]]\n"
    "\n"
    "Lists the store's runs: name, kind, status, last step, the training loss\n"
    "there, the last validation loss, the dataset and when the run last changed.\n"
    "A run marked running whose trainer is gone (killed, crashed) is shown as\n"
    "interrupted: continue it with 'spiral train --resume NAME'.\n"
    "--floor adds the entropy floor over each run's validation targets and the\n"
    "gap (val loss - floor); it reads every dataset, so it takes longer.\n"
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
    int files = 0, with_floor = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--store", &store_path, NULL},
        {"--delete", &delete_name, NULL},
        {"--files", NULL, &files},
        {"--floor", NULL, &with_floor},
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
    else if (with_floor)
        printf("%-20s %-7s %-12s %8s %9s %9s %9s %9s  %-12s %s\n", "name", "kind", "status",
               "step", "loss", "val loss", "floor", "gap", "dataset", "updated");
    else
        printf("%-20s %-7s %-12s %8s %9s %9s  %-12s %s\n", "name", "kind", "status", "step",
               "loss", "val loss", "dataset", "updated");
    double *floors = with_floor ? malloc((size_t)(n ? n : 1) * sizeof *floors) : NULL;
    int status = with_floor && !floors ? -1 : 0;
    for (int i = 0; i < n && status == 0; i++) {
        char loss[32], val[32], floor[32], gap[32];
        loss_text(loss, sizeof loss, rows[i].loss);
        loss_text(val, sizeof val, rows[i].val_loss);
        if (!with_floor) {
            printf("%-20s %-7s %-12s %8lld %9s %9s  %-12s %s\n", rows[i].name, rows[i].kind,
                   rows[i].status, rows[i].step, loss, val, rows[i].dataset, rows[i].updated);
            continue;
        }
        /* one reference per distinct set of validation targets */
        int same = -1;
        for (int q = 0; q < i && same < 0; q++)
            if (eval_run_same_targets(rows[i].config, rows[q].config)) same = q;
        EvalReference ref;
        if (same >= 0) floors[i] = floors[same];
        else if (eval_run_reference(&ref, &store, rows[i].config, rows[i].name)) status = -1;
        else floors[i] = ref.floor;
        if (status) break;
        loss_text(floor, sizeof floor, floors[i]);
        loss_text(gap, sizeof gap, rows[i].val_loss - floors[i]);
        printf("%-20s %-7s %-12s %8lld %9s %9s %9s %9s  %-12s %s\n", rows[i].name, rows[i].kind,
               rows[i].status, rows[i].step, loss, val, floor, gap, rows[i].dataset,
               rows[i].updated);
    }
    free(floors);
    store_run_list_free(rows, n);
    store_close(&store);
    return status ? cli_fail("runs") : 0;
}
