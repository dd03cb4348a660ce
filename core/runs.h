/*
 * runs.h: the runs of a store as a user sees them.
 *
 * A run's status in the store is what its trainer last wrote. A trainer
 * killed by SIGKILL (or a crash) never writes "interrupted", so a run
 * marked "running" whose checkpoint folder is not locked (run_lock.h) has
 * no live owner and is shown as "interrupted": resume it with
 * `spiral train --resume NAME`.
 */
#ifndef SPIRAL_RUNS_H
#define SPIRAL_RUNS_H

#include <stddef.h>

#include "store.h"

/* The checkpoint folder of run `name` whose train.checkpoint_dir is
 * `configured` ("" = checkpoints/NAME), resolved against the store's
 * folder. Returns 0, or -1 if it does not fit in out (size). */
int run_checkpoint_dir(const Store *store, const char *configured, const char *name, char *out,
                       size_t size);

/* The runs of the store with their shown status (see above). */
int runs_list(Store *store, RunListRow **rows, int *n);

/* Deletes run `name` from the store, and its checkpoint folder's
 * checkpoints when delete_files is set. Refused while a live process
 * trains it. *removed_files gets the number of files deleted. */
int runs_delete(Store *store, const char *name, int delete_files, int *removed_files);

#endif
