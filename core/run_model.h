/*
 * run_model.h: a run's trained model, from any of its checkpoints.
 *
 * Recording, the logit lens and `spiral eval --run` all start the same way:
 * find the run's checkpoint at or before a step (the last one by default),
 * check its sha256 against the store, check that its configuration is the
 * run's, and load it into a built Model.
 */
#ifndef SPIRAL_RUN_MODEL_H
#define SPIRAL_RUN_MODEL_H

#include "model.h"
#include "store.h"

/* Loads run's checkpoint at or before max_step (max_step < 0: the last)
 * into *model, built from cfg (the run's model config). *step gets the
 * checkpoint's step. Returns 0, or -1 with an error naming the run (no
 * checkpoint at or before max_step: the steps it has), the file (changed
 * since training, unreadable) or the mismatch. On -1 the model holds
 * nothing the caller must free beyond model_free. */
int run_model_load(Store *store, const RunRow *run, const SpiralConfig *cfg, long long max_step,
                   Model *model, long long *step);

/* The same for run `name` of the store (its config parsed from the run
 * file). */
int run_model_load_named(Store *store, const char *name, long long max_step, Model *model,
                         long long *step);

#endif
