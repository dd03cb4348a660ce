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

/* `spiral match`: reads the spiral file at config_path, derives its
 * baselines at L = seq_len (0: the file's train.seq_len, else 256) and
 * prints the derivation and the derived model configs to out; with
 * out_dir, writes their run files (<name of config_path without extension>
 * as base) and a line per file with its counts. Returns 0 or -1. */
int matched_baselines_report(const char *config_path, int seq_len, const char *out_dir, FILE *out);

#endif
