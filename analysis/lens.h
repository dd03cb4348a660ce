/*
 * lens.h: looking inside the loop of a trained run (`spiral lens`).
 *
 * The logit lens: for each state h(t), t = 0 .. T, the loss and top-1
 * accuracy of the model made to exit after iteration t, with the coda
 * (head(norm(f_post(h(t))))) and without it (head(norm(h(t)))); at t = T
 * with the coda it is the model itself. For a spiral model, which slots of
 * a chunk each iteration helps most: the change of the coda-exit loss over
 * the iteration, per slot rho of the iteration's chunks. Test-time depth
 * (--depths K): the whole model run with 1 .. K iterations (the trained
 * schedule cut, or extended by repeating its last chunk size).
 *
 * Interventions (core/intervene.h): with --ablate T or --ablate-level G
 * every measurement runs with those updates ablated, with --patch T the
 * update of iteration T at the chosen positions of every window comes from
 * the source sequence (exit t = 0 reads h(0), which no update touches); with --ablate-each, the whole model is also
 * measured with each iteration's update ablated in turn (mode ablate or
 * ablate_mean, delta = the loss change) and with each level's (mode
 * ablate_level or ablate_level_mean, iteration = the chunk size g).
 *
 * Every number is a mean over --sequences windows of the split (the
 * windows a recording takes), with a 95% t interval over sequences; deltas
 * are paired per sequence. Results go to lens_results (data/lens_store.h).
 *
 * Every pass can run on the CUDA engine (LensOptions.device): each model
 * the lens builds is copied to the GPU and its logits read back, the
 * scores computed here as on the CPU; an intervention's hook runs on the
 * host, on each iteration's update copied there and back.
 */
#ifndef SPIRAL_LENS_H
#define SPIRAL_LENS_H

#include "config.h"
#include "intervene.h"
#include "lens_store.h"
#include "progress.h"
#include "store.h"

typedef struct {
    const char *split;        /* "test" (default) */
    int n_sequences;          /* default 64 */
    int seq_len;              /* predictions per sequence; 0: the run's train.seq_len */
    int batch_size;           /* sequences per forward pass, default 8 */
    long long step;           /* the checkpoint at or before it; -1: the last */
    int n_schedule;           /* > 0: run this schedule over the weights (core/depth.h) */
    int schedule[SPIRAL_MAX_ITERS];
    int depths;               /* > 0: also the model with 1 .. depths iterations */
    InterventionSpec intervention; /* every measurement under this intervention
                                      (ablation or patch; none by default) */
    const char *source_path;  /* patch: the source sequence (.u16 tokens, else text) */
    int ablate_each;          /* also: each iteration ablated in turn, and each level */
    int ablate_each_mean;     /* ... by mean ablation (else zero) */
    const Progress *progress; /* forward passes done, or NULL */
    const char *device;       /* engine of the passes: "cpu" (NULL) or "cuda" */
    const char *precision;    /* its product precision; NULL: fp32 */
} LensOptions;

void lens_options_default(LensOptions *options);

typedef struct {
    LensRow *rows;            /* malloc'd (lens_result_free) */
    int n_rows;
    long long checkpoint_step;
    int n_iters;              /* T of the schedule run */
    char schedule[160];       /* its chunk sizes, "8,4,2,1" */
    char intervention[96];    /* "none" or what was done */
    int n_sequences;
    long long n_tokens;       /* predictions per exit */
} LensResult;

void lens_result_free(LensResult *result);

/* Measures run `run_name` on dataset `dataset_name` and writes the rows to
 * the store. Returns 0, or -1 with an error naming the run, dataset, step
 * or schedule. */
int lens_run(Store *store, const char *run_name, const char *dataset_name,
             const LensOptions *options, LensResult *result);

#endif
