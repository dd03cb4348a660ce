/*
 * names.c: the allowed names of names.h.
 */
#include "names.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int name_check(const char *what, const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0) return spiral_error("%s name: empty (expected 1 to %d of A-Z a-z 0-9 . _ -)", what,
                                    NAME_MAX_LENGTH);
    if (n > NAME_MAX_LENGTH)
        return spiral_error("%s name '%.40s...': %zu characters, at most %d allowed", what, name, n,
                            NAME_MAX_LENGTH);
    if (!isalnum((unsigned char)name[0]))
        return spiral_error("%s name '%s': must start with a letter or a digit", what, name);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
            return spiral_error("%s name '%s': character '%c' at %zu is not allowed (expected A-Z a-z "
                                "0-9 . _ -)", what, name, isprint(c) ? c : '?', i + 1);
    }
    return 0;
}

int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    /* three rows of the (n + 1) x (m + 1) table: i - 2, i - 1, i */
    int *rows = malloc(3 * (m + 1) * sizeof *rows);
    if (!rows) return (int)(n > m ? n : m);
    int *before = rows, *above = rows + (m + 1), *row = rows + 2 * (m + 1);
    for (size_t j = 0; j <= m; j++) above[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int best = above[j - 1] + (a[i - 1] != b[j - 1]);        /* substitute */
            if (above[j] + 1 < best) best = above[j] + 1;             /* delete */
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;         /* insert */
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                before[j - 2] + 1 < best)
                best = before[j - 2] + 1;                             /* transpose */
            row[j] = best;
        }
        int *spare = before;
        before = above;
        above = row;
        row = spare;
    }
    int distance = above[m];
    free(rows);
    return distance;
}

const char *closest_name(const char *name, const char *const *candidates, int n) {
    int length = (int)strlen(name), limit = length / 3;
    if (limit < 1) limit = 1;
    if (limit >= length) limit = length - 1;  /* never "every 1-letter name is close" */
    const char *best = NULL;
    int best_distance = limit + 1;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(name, candidates[i]);
        if (d < best_distance) {
            best_distance = d;
            best = candidates[i];
        }
    }
    return best;
}
