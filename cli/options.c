/*
 * options.c: what every subcommand of `spiral` shares: its version, the
 * option parser, integer parsing, and how errors and usage errors are
 * printed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "error.h"
#include "names.h"

#define SPIRAL_VERSION "0.1.0"

/* spiral's version string. */
const char *cli_version(void) { return SPIRAL_VERSION; }

/* The usage error for an argument that is no option of the table, with the
 * closest option when it looks like a typo of one ("--dat" -> "--data"). */
static int unknown_argument(const char *command, const char *arg, const CliOption *options,
                            int n_options) {
    const char *names[64];
    int n = n_options < 64 ? n_options : 64;
    for (int k = 0; k < n; k++) names[k] = options[k].name;
    const char *closest = arg[0] == '-' ? closest_name(arg, names, n) : NULL;
    if (closest)
        return cli_usage_error(command, "unknown argument '%s'; did you mean '%s'?", arg, closest);
    return cli_usage_error(command, "unknown argument '%s'", arg);
}

/* Matches each argument against the option table (cli.h); a bare argument
 * goes to *positional. */
int cli_parse_options(const char *command, int argc, char **argv, const CliOption *options,
                      int n_options, const char **positional) {
    for (int i = 1; i < argc; i++) {
        int k = 0;
        while (k < n_options && strcmp(argv[i], options[k].name) != 0) k++;
        if (k == n_options) {
            if (positional && argv[i][0] != '-' && !*positional) {
                *positional = argv[i];
                continue;
            }
            return unknown_argument(command, argv[i], options, n_options);
        }
        if (!options[k].value) {
            *options[k].flag = 1;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error(command, "option %s needs a value", argv[i]);
        *options[k].value = argv[++i];
    }
    return 0;
}

/* A whole decimal integer of [min, max], or an error naming the option. */
int cli_parse_long(const char *name, const char *text, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "spiral: %s: expected an integer in [%ld, %ld], got '%s'\n", name, min,
                max, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* Prints the library's last error for the command. */
int cli_fail(const char *command) {
    fprintf(stderr, "spiral %s: %s\n", command, spiral_last_error());
    return 1;
}

/* Prints a usage error and where to find help. */
int cli_usage_error(const char *command, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "spiral %s: ", command);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\ntry 'spiral %s --help'\n", command);
    va_end(ap);
    return 2;
}

/* 1 if any argument asks for help. */
int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}
