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
    int *row = malloc((m + 1) * sizeof *row);  /* (m + 1) distances to b's prefixes */
    if (!row) return (int)(n > m ? n : m);
    for (size_t j = 0; j <= m; j++) row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diagonal = row[0];  /* d(i-1, j-1) */
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int above = row[j];  /* d(i-1, j) */
            int best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best) best = above + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    int distance = row[m];
    free(row);
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
