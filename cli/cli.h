/*
 * cli.h: what the subcommands of `spiral` share. cli/ only parses arguments,
 * calls the library and reports; every computation lives in the library.
 */
#ifndef SPIRAL_CLI_H
#define SPIRAL_CLI_H

#include <stddef.h>

#include "intervene.h"
#include "progress.h"
#include "store.h"

/* Each subcommand: argv[0] is the subcommand's name. Returns the exit code
 * (0 success, 1 failure reported on stderr, 2 usage error). */
int cmd_info(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_match(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_lens(int argc, char **argv);

/* The intervention options of eval and lens (core/intervene.h) into *spec:
 * --ablate T or --ablate-level G with --ablate-mode zero|mean, or --patch T
 * with --positions A:B (patch_text and positions_text NULL where the
 * command has no patch). Every text may be NULL (absent). Returns 0, or 2
 * after a usage error naming the option. */
int cli_parse_intervention(const char *command, const char *ablate, const char *level,
                           const char *mode, const char *patch, const char *positions,
                           InterventionSpec *spec);

/* spiral's version (SPIRAL_VERSION in options.c), e.g. for reports. */
const char *cli_version(void);

/* One option of a subcommand: a value option stores the next argument in
 * *value; a flag option (value == NULL) sets *flag to 1. */
typedef struct {
    const char *name;      /* "--config", "-j", ... */
    const char **value;    /* value option: where the argument goes */
    int *flag;             /* flag option: set to 1 when present */
} CliOption;

/* Parses argv[1..argc) against the table. A bare argument is stored in
 * *positional if that is not NULL (one at most). Returns 0, or 2 after
 * printing a usage error (unknown argument, missing value). */
int cli_parse_options(const char *command, int argc, char **argv, const CliOption *options,
                      int n_options, const char **positional);


/* Parses a whole decimal integer in [min, max] for option `name`; prints an
 * error and returns -1 if it is not one. */
int cli_parse_long(const char *name, const char *text, long min, long max, long *out);
/* *out = the finite number text (such as 0.9 or 1e10), else -1 with a
 * message naming the option; callers check their own range. */
int cli_parse_double(const char *name, const char *text, double *out);

/* Prints "spiral <command>: <library's last error>" to stderr; returns 1. */
int cli_fail(const char *command);

/* Prints "spiral <command>: <message>" and "try 'spiral <command> --help'";
 * returns 2. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The view of library progress reports on stderr (cli/progress_view.c): a
 * bar on a terminal, a line every 10 s otherwise. enabled = 0 gives a
 * Progress that shows nothing (--quiet). */
Progress cli_progress(int enabled);

/* Defaults for options left out, from what the store holds (options.c).
 * Where the store offers exactly one choice it is taken and named on
 * stderr ("spiral probe: --data not given; using dyck, ..."); with none or
 * several, an error lists them and asks for the option. Both return 0, or
 * 1 after printing the error. */

/* The names a recording default settles on (copies, for the command's
 * lifetime). */
typedef struct {
    char run[128], data[128];
} CliChosen;

/* --data and --run of a command that reads the recording of (run, data,
 * split): *data from the datasets that hold recordings of the named runs
 * (run_text: a name or a comma list; NULL: any run) on split, then, when
 * run_text is NULL, *run_text from the runs recorded on that dataset.
 * Values already given are kept. */
int cli_default_recording(const char *command, Store *store, const char *split,
                          const char **run_text, const char **data, CliChosen *chosen);

/* --runs of `spiral compare`: every run of the store when they all train
 * on one dataset, comma-separated into out (size bytes). */
int cli_default_runs(const char *command, const char *store_path, char *out, size_t size);

/* 1 if argv has -h or --help. */
int cli_wants_help(int argc, char **argv);

#endif
