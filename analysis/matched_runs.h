/*
 * matched_runs.h: the baselines matching.h derives for a spiral
 * configuration, as run files that `spiral train` and `spiral info`
 * accept, so a sweep trains a spiral and its matched baselines alike; and
 * `spiral match` as one call.
 */
#ifndef SPIRAL_MATCHED_RUNS_H
#define SPIRAL_MATCHED_RUNS_H

#include <stdio.h>

#include "config.h"
#include "matching.h"

/* Reads a spiral model or run file for `spiral match`: *cfg gets the model
 * (config_load), *train_json the file's train object as compact JSON
 * (malloc'd; NULL if the file has none) after checking it parses
 * (train_config_parse), *seq_len its train.seq_len (0 if none). */
int matched_read_spiral_file(const char *path, SpiralConfig *cfg, char **train_json, int *seq_len);

/* Writes the three baselines of m (matching_derive) as run files:
 * {"model": <derived model, every field>, "train": <train_json>}, the
 * train object copied verbatim from the spiral's run file (omitted if
 * train_json is NULL). Files: dir/<base>-looped.json,
 * dir/<base>-dense-params.json, dir/<base>-dense-flops.json; paths (3)
 * receives their names (each 1024 bytes). Returns 0 or -1. */
int matched_write_run_files(const MatchedBaselines *m, const char *train_json, const char *dir,
                            const char *base, char paths[3][1024]);

/* Equal training FLOPs by the number of steps. A baseline whose forward
 * FLOPs per sequence differ from the spiral's is trained for
 *   steps' = round(target / flops_per_step),  flops_per_step = B * accum * 3 F(L),
 * with its own full learning-rate schedule: train.steps becomes steps', a
 * warmup given in the file is scaled by steps' / steps (rounded, at least 1
 * if it was), an absent one follows train.steps by its default rule; the
 * cosine decay then ends at steps'. *train_out gets the new train object
 * (compact JSON, malloc'd), *steps_out steps' and *mismatch the remaining
 * relative mismatch steps' * flops_per_step / target - 1 (at most half a
 * step). train_json: the train object (compact JSON); source names it in
 * errors. Returns 0 or -1. */
int matched_scale_train(char **train_out, long *steps_out, double *mismatch, const char *train_json,
                        const char *source, double target_flops, double flops_per_step);

/* The training FLOPs of a run file: *total = steps * *per_step, *per_step =
 * batch_size * grad_accum * 3 * forward FLOPs at seq_len; *train_json its
 * train object (malloc'd). Fails if the file has no train object. */
int matched_run_flops(const char *path, double *total, double *per_step, char **train_json);

/* Rewrites the run file at path (written by the caller) so that it trains
 * to the training FLOPs of the run file at target_path
 * (matched_scale_train); *steps and *mismatch as there. Returns 0 or -1. */
int matched_rewrite_equal_flops(const char *path, const char *target_path, long *steps, double *mismatch);

/* `spiral match`: reads the spiral file at config_path, derives its
 * baselines at L = seq_len (0: the file's train.seq_len, else 256) and
 * prints the derivation, the equal-FLOPs step counts (with a train object)
 * and the derived model configs to out; with out_dir, writes their run
 * files (<name of config_path without extension> as base): the three of
 * matched_write_run_files and, when the file has a train object,
 * <base>-looped-flops.json and <base>-dense-params-flops.json (the looped
 * and equal-parameter dense baselines trained to the spiral's training
 * FLOPs, matched_scale_train), and a line per file with its counts.
 * Returns 0 or -1. */
int matched_baselines_report(const char *config_path, int seq_len, const char *out_dir, FILE *out);

#endif
