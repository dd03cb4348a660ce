/*
 * eval.h: scores one token sequence with a model loaded from a safetensors
 * file (`spiral eval`): the mean next-token cross-entropy, and optionally
 * the logits (.npy) and the gradient of the mean loss (safetensors, the
 * parameters' own tensor names).
 *
 * The weights may come from spiral or any program that writes the
 * documented layout with the config in __metadata__["config"], or from a
 * run of a store at any of its checkpoints. With a schedule, the model runs
 * that schedule over the same weights (test-time depth, core/depth.h).
 */
#ifndef SPIRAL_EVAL_H
#define SPIRAL_EVAL_H

/* Refuse sequences whose activations would need more than this many bytes:
 * a clear error beats the kernel's out-of-memory killer. */
#define EVAL_MAX_ACTIVATION_BYTES 16e9

#include "config.h"
#include "intervene.h"
#include "model.h"

typedef struct {
    const char *weights_path;  /* the model (safetensors), or */
    const char *store_path;    /* a store and */
    const char *run_name;      /* one of its runs, */
    long long step;            /* at its checkpoint at or before step (-1: the last) */
    int n_schedule;            /* > 0: run with this schedule instead (core/depth.h) */
    int schedule[SPIRAL_MAX_ITERS]; /* chunk sizes g */
    InterventionSpec intervention;  /* kind INTERVENE_NONE: none */
    const char *source_path;   /* patch: the source sequence, read like the sequence itself */
    const char *text_path;     /* the sequence: the bytes of a text file, or */
    const char *tokens_path;   /* a little-endian uint16 token file (exactly one of the two) */
    const char *logits_path;   /* if not NULL: the (L, V) float32 logits as .npy */
    const char *grads_path;    /* if not NULL: d(mean loss)/d(parameter), safetensors */
    const char *device;        /* "cpu" (NULL) or "cuda" (engine.h) */
    const char *precision;     /* on cuda: "fp32" (NULL), "tf32" or "bf16" */
} EvalOptions;

typedef struct {
    double loss;               /* mean cross-entropy over the L predictions (nats) */
    int n_predictions;         /* L = tokens - 1 */
    int vocab_size;
    int n_tensors;             /* parameter tensors (of the gradient file) */
    long long step;            /* the run's checkpoint step (0 for a weights file) */
    int n_iters;               /* iterations run */
    double clean_loss;         /* with an intervention: the loss without it */
} EvalResult;

/* Loads the model of the options: a weights file or a run's checkpoint,
 * then, with a schedule, the same weights under that schedule. *step gets
 * the run's checkpoint step (0 for a weights file). Returns 0 or -1; on -1
 * *model holds nothing to free beyond model_free. */
int eval_load_model(const EvalOptions *options, Model *model, long long *step);

/* Runs the model on the first N - 1 tokens of the sequence and scores each
 * next token (N >= 2, N - 1 <= 2^20). Returns 0, or -1 with an error naming
 * the file (unreadable, tokens outside the vocabulary, too long for
 * EVAL_MAX_ACTIVATION_BYTES, non-finite loss). */
int eval_sequence(const EvalOptions *options, EvalResult *result);

#endif
