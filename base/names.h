/*
 * names.h: which names a run, dataset or sweep entry may have.
 *
 * A name becomes a folder (checkpoints/NAME), a file name part and a
 * command-line value, so it is kept to what is safe in all three:
 * 1 to 128 characters from [A-Za-z0-9._-], starting with a letter or a
 * digit. No '/', no "..", no commas (lists of runs are comma-separated),
 * no spaces.
 */
#ifndef SPIRAL_NAMES_H
#define SPIRAL_NAMES_H

#define NAME_MAX_LENGTH 128

/* 0 if `name` is allowed; otherwise -1 with spiral_error saying what is
 * wrong, e.g. "run name '../x': must start with a letter or digit". `what`
 * names the kind of name for the message ("run", "dataset"). */
int name_check(const char *what, const char *name);

/* The number of single-character insertions, deletions, substitutions and
 * swaps of two neighbours that turn a into b (the optimal string alignment
 * distance: "trian" is 1 from "train"). */
int edit_distance(const char *a, const char *b);

/* The candidate closest to `name` by edit_distance, if it is close enough to
 * be a likely typo (at most a third of the name's length in edits, at
 * least 1, and fewer than the name's length); NULL otherwise. Ties go to the earlier candidate. */
const char *closest_name(const char *name, const char *const *candidates, int n);

#endif
