/*
 * train_config.h: the `train` object of a run file.
 *
 *   {"model": {...}, "train": {"dataset": "pcfg1", "seq_len": 128, ...}}
 *
 * Every field but `dataset` has a default (README "Training"). Unknown
 * fields, wrong types and out-of-range values are errors naming the field
 * ("run.json: train.lr: expected a number > 0, got -1").
 */
#ifndef SPIRAL_TRAIN_CONFIG_H
#define SPIRAL_TRAIN_CONFIG_H

#include "eval_targets.h"  /* WINDOW_RANDOM, WINDOW_DOCUMENT */

/* At most this many entries in train.keep_steps. */
#define TRAIN_MAX_KEEP_STEPS 64

typedef struct {
    char dataset[128];        /* dataset name in the store (required) */
    int seq_len;              /* L, tokens per training sequence */
    int batch_size;           /* sequences per micro-batch */
    int grad_accum;           /* micro-batches per optimizer step */
    long steps;               /* optimizer steps */
    long warmup;              /* linear warmup steps */
    double lr, min_lr;        /* peak and final learning rate (cosine decay) */
    double weight_decay;      /* decoupled, matrices only */
    double beta1, beta2, adam_eps;
    double clip;              /* global gradient-norm clip; 0 = off */
    long seed;                /* init and data order */
    long eval_every;          /* validation every N steps (0: at the end only) */
    int eval_batches;         /* validation micro-batches (fixed windows) */
    long checkpoint_every;    /* checkpoint every N steps (and at the end) */
    int window;               /* WINDOW_RANDOM: windows start anywhere;
                                 WINDOW_DOCUMENT: at document starts */
    char checkpoint_dir[512]; /* "" = <store dir>/checkpoints/<run> */
    int n_keep_steps;         /* extra checkpoints: at each step of keep_steps, */
    long keep_steps[TRAIN_MAX_KEEP_STEPS]; /* increasing, each in [1, steps] */
} TrainConfig;

/* Parses the "train" object of a run file's JSON text; `source` names the
 * text in errors. Returns 0 or -1. */
int train_config_parse(TrainConfig *cfg, const char *json_text, const char *source);

/* The train object as JSON, every field written (malloc'd; NULL if out of
 * memory). */
char *train_config_to_json(const TrainConfig *cfg);

/* 1 if a checkpoint is written after step s: every checkpoint_every steps,
 * the last step, and each step of keep_steps. */
int train_checkpoint_due(const TrainConfig *cfg, long step);

/* Learning rate at step s (1-based): linear warmup to lr over `warmup`
 * steps, then cosine decay to min_lr at `steps`:
 *   s <= warmup: lr s / warmup
 *   else:        min_lr + (lr - min_lr) (1 + cos(pi p)) / 2,
 *                p = (s - warmup) / (steps - warmup). */
double train_lr_at(const TrainConfig *cfg, long step);

#endif
