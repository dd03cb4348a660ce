/*
 * decode_eval.h: `spiral eval --incremental`: the same score as eval.h's
 * eval_sequence, computed token by token through the incremental decoder
 * (decode.h) instead of one forward pass, so the two can be compared.
 */
#ifndef SPIRAL_DECODE_EVAL_H
#define SPIRAL_DECODE_EVAL_H

#include "eval.h"
#include "progress.h"

/* Feeds the first N - 1 tokens of the sequence one at a time and scores
 * each next token: result->loss is the mean cross-entropy in nats, as
 * eval_sequence's. options->logits_path, if set, gets the (N-1, V) float32
 * logits (.npy). The model is eval_load_model's (a weights file or a run,
 * with or without another schedule); options->grads_path must be NULL and
 * there is no intervention (no backward pass, no second run here).
 * Progress (tokens scored) goes to progress, which may be NULL. Returns 0
 * or -1 (errors as eval_sequence's). */
int eval_sequence_incremental(const EvalOptions *options, const Progress *progress,
                              EvalResult *result);

#endif
