/*
 * run_lock.h: one process at a time trains a run.
 *
 * The trainer holds the owner lock (base/owner_lock.h) of LOCK in the run's
 * checkpoint folder for as long as it runs; the kernel drops it when the
 * process ends, however it ends (SIGKILL included). A second `spiral train` of
 * the same run, or of another run pointed at the same checkpoint folder,
 * fails at once with an error naming the owner's pid and run.
 */
#ifndef SPIRAL_RUN_LOCK_H
#define SPIRAL_RUN_LOCK_H

#include <stddef.h>

#include "owner_lock.h"

typedef OwnerLock RunLock;

/* Takes the lock of folder `dir` (which must exist) for run `run_name`.
 * Returns 0, or -1 with spiral_error naming the process that holds it. */
int run_lock_acquire(RunLock *lock, const char *dir, const char *run_name);

/* Releases the lock (nothing if not held). */
void run_lock_release(RunLock *lock);

/* 1 if a live process holds the lock of folder `dir`, 0 if none does (or
 * the folder has no lock file). *owner gets the holder's "pid N, run NAME"
 * when held (owner_size bytes; may be NULL). */
int run_lock_probe(const char *dir, char *owner, size_t owner_size);

/* Deletes the temporary files (NAME.tmp.PID) that a process killed while
 * writing a checkpoint left in `dir`; only call with the lock held, when no
 * other writer can exist. *removed gets their count. Returns 0 or -1. */
int run_dir_remove_temporaries(const char *dir, int *removed);

#endif
