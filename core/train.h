/*
 * train.h: training a model of the family on a dataset of the store.
 *
 * A run is created from a run file ({"model": ..., "train": ...}); its
 * metrics go to the store's `metrics` table and its checkpoints (weights +
 * AdamW state, safetensors, written to a temporary file, fsynced, renamed)
 * to checkpoint_dir, recorded with their sha256 in `checkpoints`.
 *
 * Reproducibility: the data of step s is a pure function of (seed, s), and
 * a checkpoint holds everything else that evolves (weights, AdamW moments,
 * step), so a run killed at any point and resumed from its last checkpoint
 * produces the same loss at every step as one never interrupted.
 */
#ifndef SPIRAL_TRAIN_H
#define SPIRAL_TRAIN_H

#include <signal.h>

#include "progress.h"
#include "store.h"
#include "train_config.h"

typedef struct {
    const Progress *progress;         /* progress reports, or NULL */
    const char *command;              /* command line, recorded with a new run */
    volatile sig_atomic_t *interrupt; /* set (e.g. by SIGINT): checkpoint and stop */
    const char *device;               /* engine: "cpu" (also when NULL) or "cuda" */
    const char *precision;            /* matrix products (engine.h): NULL = the device default */
} TrainOptions;

/* What a finished (or stopped) training call reports. */
typedef struct {
    long step;              /* last step done */
    double loss;            /* training loss of that step */
    double val_loss;        /* last validation loss (NAN if none) */
    double seconds;         /* wall time of the whole run so far */
    int interrupted;        /* 1 if stopped by *interrupt */
    int finished_before;    /* 1: resume found the run already done; nothing ran */
} TrainResult;

/* Creates run `run_name` from the run file at run_path and trains it. */
int train_new(Store *store, const char *run_name, const char *run_path,
              const TrainOptions *options, TrainResult *result);

/* Continues run `run_name` from its last checkpoint (from scratch if it has
 * none); metrics after that checkpoint are replaced. */
int train_resume(Store *store, const char *run_name, const TrainOptions *options,
                 TrainResult *result);

#endif
