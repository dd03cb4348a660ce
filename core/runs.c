/*
 * runs.c: listing and deleting runs (runs.h).
 */
#include "runs.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "run_lock.h"
#include "train_config.h"

int run_checkpoint_dir(const Store *store, const char *configured, const char *name, char *out,
                       size_t size) {
    char fallback[400];
    snprintf(fallback, sizeof fallback, "checkpoints/%s", name);
    char *dir = store_path_resolve(store, configured && configured[0] ? configured : fallback);
    if (!dir) return spiral_error("out of memory");
    int fits = snprintf(out, size, "%s", dir) < (int)size;
    free(dir);
    if (!fits) return spiral_error("run %s: checkpoint folder path longer than %zu bytes", name, size - 1);
    return 0;
}

/* The checkpoint folder of run `name` from its run JSON's train object. */
static int stored_run_dir(const Store *store, const char *name, const char *run_json, char *out,
                          size_t size) {
    TrainConfig cfg;
    if (train_config_parse(&cfg, run_json, name)) return -1;
    return run_checkpoint_dir(store, cfg.checkpoint_dir, name, out, size);
}

int runs_list(Store *store, RunListRow **rows, int *n) {
    if (store_run_list(store, rows, n)) return -1;
    for (int i = 0; i < *n; i++) {
        RunListRow *row = &(*rows)[i];
        char dir[1100];
        if (strcmp(row->status, "running") != 0) continue;
        if (stored_run_dir(store, row->name, row->config, dir, sizeof dir) == 0 &&
            run_lock_probe(dir, NULL, 0))
            continue;
        char *shown = strdup("interrupted");
        if (!shown) {
            store_run_list_free(*rows, *n);
            return spiral_error("out of memory");
        }
        free(row->status);
        row->status = shown;
    }
    return 0;
}

/* Removes the step_*.safetensors files (and LOCK) of a checkpoint folder,
 * then the folder if it is left empty; *removed counts the checkpoints. */
static int remove_checkpoints(const char *dir, int *removed) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : spiral_error("%s: cannot list: %s", dir, strerror(errno));
    struct dirent *entry;
    int status = 0;
    while ((entry = readdir(d))) {
        const char *name = entry->d_name;
        int ours = !strcmp(name, "LOCK") ||
                   (!strncmp(name, "step_", 5) && strstr(name, ".safetensors"));
        if (!ours) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (unlink(path) != 0 && errno != ENOENT) {
            status = spiral_error("%s: cannot delete: %s", path, strerror(errno));
            break;
        }
        if (strcmp(name, "LOCK") != 0) (*removed)++;
    }
    closedir(d);
    rmdir(dir);  /* only succeeds when nothing else is in it */
    return status;
}

int runs_delete(Store *store, const char *name, int delete_files, int *removed_files) {
    RunRow run;
    *removed_files = 0;
    if (store_run_find(store, name, &run)) return -1;  /* the error lists the runs */
    char dir[1100], owner[300];
    int status;
    if (stored_run_dir(store, run.name, run.config, dir, sizeof dir)) {
        status = -1;
    } else if (run_lock_probe(dir, owner, sizeof owner)) {
        status = spiral_error("run %s is being trained right now (%s); stop it before deleting",
                              name, owner);
    } else {
        status = store_run_delete(store, run.id);
        if (status == 0 && delete_files) status = remove_checkpoints(dir, removed_files);
    }
    store_run_free(&run);
    return status;
}
