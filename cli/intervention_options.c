/*
 * intervention_options.c: the intervention options that `spiral eval` and
 * `spiral lens` share (--ablate, --ablate-level, --ablate-mode, --patch,
 * --positions), parsed into an InterventionSpec (core/intervene.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* "A:B" with 0 <= A < B, or "A:" (to the end) into *from, *to (0: the end). */
static int parse_positions(const char *command, const char *text, int *from, int *to) {
    char *end;
    long a = strtol(text, &end, 10);
    if (end == text || *end != ':' || a < 0 || a > (1L << 20))
        return cli_usage_error(command, "--positions: expected A:B (positions A .. B-1), got '%s'",
                               text);
    const char *rest = end + 1;
    long b = 0;
    if (*rest) {
        b = strtol(rest, &end, 10);
        if (end == rest || *end != '\0' || b <= a || b > (1L << 20))
            return cli_usage_error(command, "--positions: expected A:B with A < B, got '%s'",
                                   text);
    }
    *from = (int)a;
    *to = (int)b;
    return 0;
}

int cli_parse_intervention(const char *command, const char *ablate, const char *level,
                           const char *mode, const char *patch, const char *positions,
                           InterventionSpec *spec) {
    memset(spec, 0, sizeof *spec);
    spec->iteration = -1;
    if ((ablate != NULL) + (level != NULL) + (patch != NULL) > 1)
        return cli_usage_error(command, "give one of --ablate, --ablate-level and --patch");
    if (mode && !ablate && !level)
        return cli_usage_error(command, "--ablate-mode goes with --ablate or --ablate-level");
    if (positions && !patch) return cli_usage_error(command, "--positions goes with --patch");
    long v;
    if (ablate || patch) {
        const char *name = ablate ? "--ablate" : "--patch";
        if (cli_parse_long(name, ablate ? ablate : patch, 0, 1 << 20, &v)) return 2;
        spec->iteration = (int)v;
    }
    if (level) {
        if (cli_parse_long("--ablate-level", level, 1, 65536, &v)) return 2;
        spec->level = (int)v;
    }
    if (ablate || level) {
        spec->kind = INTERVENE_ZERO;
        if (mode && !strcmp(mode, "mean")) spec->kind = INTERVENE_MEAN;
        else if (mode && strcmp(mode, "zero"))
            return cli_usage_error(command, "--ablate-mode: expected zero or mean, got '%s'",
                                   mode);
    }
    if (patch) {
        spec->kind = INTERVENE_PATCH;
        if (positions && parse_positions(command, positions, &spec->pos_from, &spec->pos_to))
            return 2;
    }
    return 0;
}
