/*
 * names.c: the allowed names of names.h.
 */
#include "names.h"

#include <ctype.h>
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
