/*
 * cli.h: what the subcommands of `spiral` share. cli/ only parses arguments,
 * calls the library and reports; every computation lives in the library.
 */
#ifndef SPIRAL_CLI_H
#define SPIRAL_CLI_H

/* Each subcommand: argv[0] is the subcommand's name. Returns the exit code
 * (0 success, 1 failure reported on stderr, 2 usage error). */
int cmd_info(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_match(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* spiral's version (SPIRAL_VERSION in main.c), e.g. for reports. */
const char *cli_version(void);

/* Reads "--name value" at argv[*i]: if argv[*i] is `name`, stores the next
 * argument in *value, advances *i and returns 1; returns -1 (after printing a
 * usage error) if the value is missing; 0 if argv[*i] is another option. */
int cli_option(int argc, char **argv, int *i, const char *name, const char **value);

/* Parses a whole decimal integer in [min, max] for option `name`; prints an
 * error and returns -1 if it is not one. */
int cli_parse_long(const char *name, const char *text, long min, long max, long *out);

/* Prints "spiral <command>: <library's last error>" to stderr; returns 1. */
int cli_fail(const char *command);

/* Prints "spiral <command>: <message>" and "try 'spiral <command> --help'";
 * returns 2. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* 1 if argv has -h or --help. */
int cli_wants_help(int argc, char **argv);

#endif
