/*
 * options.c: what every subcommand of `spiral` shares: its version, the
 * option parser, integer parsing, and how errors and usage errors are
 * printed, and the defaults of options the store settles.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "error.h"
#include "names.h"
#include "recording_store.h"
#include "store.h"

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

int cli_parse_double(const char *name, const char *text, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(v)) {
        fprintf(stderr, "spiral: %s: expected a number, got '%s'\n", name, text);
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

/* Appends the distinct names of names[0..n) to list as "a, b, c" (size
 * bytes); returns how many distinct ones there were. */
static int distinct_names(const char *const *names, int n, char *list, size_t size) {
    int distinct = 0;
    size_t used = 0;
    list[0] = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(names[j], names[i]);
        if (seen) continue;
        distinct++;
        if (used + 1 < size)
            used += (size_t)snprintf(list + used, size - used, "%s%s", used ? ", " : "", names[i]);
    }
    return distinct;
}

/* 1 if `name` is one of the comma-separated names of list. */
static int in_list(const char *list, const char *name) {
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && !strncmp(p, name, n)) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/* Settles one option from the candidates names[0..n): the only one is
 * copied to out (size bytes) and named on stderr; none or several print
 * an error. what: "dataset", "run"; where: the context of the choice.
 * Returns 0 or 1. */
static int settle(const char *command, const char *option, const char *what, const char *where,
                  const char *const *names, int n, char *out, size_t size) {
    char list[2048];
    int distinct = distinct_names(names, n, list, sizeof list);
    if (distinct == 1) {
        snprintf(out, size, "%s", names[0]);
        fprintf(stderr, "spiral %s: %s not given; using %s %s, the only %s %s\n", command, option,
                what, out, what, where);
        return 0;
    }
    if (distinct == 0)
        fprintf(stderr, "spiral %s: %s not given, and there is no %s %s; record one with "
                        "'spiral record' or give %s\n", command, option, what, where, option);
    else
        fprintf(stderr, "spiral %s: %s not given, and there are %d %ss %s: %s; choose one with "
                        "%s\n", command, option, distinct, what, where, list, option);
    return 1;
}

int cli_default_recording(const char *command, Store *store, const char *split,
                          const char **run_text, const char **data, CliChosen *chosen) {
    if (*run_text && *data) return 0;
    RecordingListRow *rows;
    int n;
    if (recording_list(store, split, &rows, &n)) return cli_fail(command);
    const char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    if (!names) {
        free(rows);
        fprintf(stderr, "spiral %s: out of memory\n", command);
        return 1;
    }
    char where[400];
    int status = 0, k = 0;
    if (!*data) {
        /* datasets recorded for every run named (for any run if none is) */
        for (int i = 0; i < n; i++) {
            if (*run_text && !in_list(*run_text, rows[i].run)) continue;
            int all = 1;
            for (const char *p = *run_text; p && *p && all;) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                int found = 0;
                for (int j = 0; j < n && !found; j++)
                    found = strlen(rows[j].run) == len && !strncmp(rows[j].run, p, len) &&
                            !strcmp(rows[j].dataset, rows[i].dataset);
                all = found;
                p = end ? end + 1 : p + len;
            }
            if (all) names[k++] = rows[i].dataset;
        }
        if (*run_text)
            snprintf(where, sizeof where, "with a recording of %s on the %s split", *run_text, split);
        else
            snprintf(where, sizeof where, "with recordings on the %s split", split);
        status = settle(command, "--data", "dataset", where, names, k, chosen->data,
                        sizeof chosen->data);
        if (status == 0) *data = chosen->data;
    }
    if (status == 0 && !*run_text) {
        k = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(rows[i].dataset, *data)) names[k++] = rows[i].run;
        snprintf(where, sizeof where, "recorded on dataset %s (%s split)", *data, split);
        status = settle(command, "--run", "run", where, names, k, chosen->run, sizeof chosen->run);
        if (status == 0) *run_text = chosen->run;
    }
    free(names);
    free(rows);
    return status;
}

int cli_default_runs(const char *command, const char *store_path, char *out, size_t size) {
    Store store;
    if (store_open_readonly(&store, store_path)) return cli_fail(command);
    RunListRow *rows;
    int n;
    int status = store_run_list(&store, &rows, &n);
    store_close(&store);
    if (status) return cli_fail(command);
    const char **datasets = malloc((size_t)(n ? n : 1) * sizeof *datasets);
    if (!datasets) {
        store_run_list_free(rows, n);
        fprintf(stderr, "spiral %s: out of memory\n", command);
        return 1;
    }
    for (int i = 0; i < n; i++) datasets[i] = rows[i].dataset ? rows[i].dataset : "";
    char list[2048];
    int distinct = distinct_names(datasets, n, list, sizeof list);
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < n && used + 1 < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "," : "", rows[i].name);
    if (distinct == 1) {
        fprintf(stderr, "spiral %s: --runs not given; using all %d runs of the store, all on "
                        "dataset %s: %s\n", command, n, datasets[0], out);
    } else if (distinct == 0) {
        fprintf(stderr, "spiral %s: --runs not given, and the store has no runs; train one "
                        "with 'spiral train'\n", command);
        status = 1;
    } else {
        fprintf(stderr, "spiral %s: --runs not given, and the store's runs train on %d "
                        "datasets (%s); choose the runs to compare with --runs:\n", command,
                distinct, list);
        for (int i = 0; i < n; i++)
            fprintf(stderr, "  %s (dataset %s)\n", rows[i].name, datasets[i]);
        status = 1;
    }
    if (used + 1 >= size && status == 0) {
        fprintf(stderr, "spiral %s: too many runs to list; give --runs\n", command);
        status = 1;
    }
    free(datasets);
    store_run_list_free(rows, n);
    return status;
}
