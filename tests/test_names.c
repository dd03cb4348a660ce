/*
 * test_names.c: the allowed run and dataset names (base/names.h): plain
 * names pass; empty, too long, path-like, comma-separated, spaced and
 * control-character names are refused with a message naming the fault.
 */
#include <string.h>

#include "error.h"
#include "harness.h"
#include "names.h"

/* name_check refuses `name` and its message contains `expected`. */
static void check_refused(const char *name, const char *expected) {
    int status = name_check("run", name);
    const char *message = spiral_last_error();
    CHECK(status == -1 && strstr(message, expected), "name '%s': status %d, message '%s' (expected '%s')",
          name, status, message, expected);
}

int main(int argc, char **argv) {
    const char *good[] = {"spiral", "looped-s2", "run_1.5", "A", "9lives"};
    for (int i = 0; i < 5; i++)
        CHECK(name_check("run", good[i]) == 0, "name '%s' refused: %s", good[i], spiral_last_error());
    char longest[NAME_MAX_LENGTH + 2];
    memset(longest, 'x', sizeof longest);
    longest[NAME_MAX_LENGTH] = 0;
    CHECK(name_check("run", longest) == 0, "a name of %d characters refused", NAME_MAX_LENGTH);
    longest[NAME_MAX_LENGTH] = 'x';
    longest[NAME_MAX_LENGTH + 1] = 0;
    check_refused(longest, "129 characters, at most 128");
    check_refused("", "empty");
    check_refused("../../escape", "must start with a letter or a digit");
    check_refused("a/b", "character '/' at 2");
    check_refused("a,b", "character ','");
    check_refused("a b", "character ' '");
    check_refused("a\nb", "character '?'");
    check_refused(".hidden", "must start with a letter");
    check_refused("-rf", "must start with a letter");

    /* edit distance and the suggestion for a mistyped name */
    CHECK(edit_distance("spirl", "spiral") == 1 && edit_distance("kitten", "sitting") == 3 &&
          edit_distance("", "abc") == 3 && edit_distance("same", "same") == 0 &&
          edit_distance("trian", "train") == 1 && edit_distance("ca", "abc") == 3,
          "edit distances: %d %d %d %d", edit_distance("spirl", "spiral"),
          edit_distance("kitten", "sitting"), edit_distance("", "abc"), edit_distance("same", "same"));
    const char *runs[] = {"spiral", "looped", "dense", "looped-s2"};
    const char *hit = closest_name("spirl", runs, 4);
    CHECK(hit && !strcmp(hit, "spiral"), "closest to 'spirl': %s", hit ? hit : "none");
    hit = closest_name("loped", runs, 4);
    CHECK(hit && !strcmp(hit, "looped"), "closest to 'loped': %s", hit ? hit : "none");
    CHECK(closest_name("transformer", runs, 4) == NULL, "a far name got a suggestion");
    CHECK(closest_name("d", runs, 4) == NULL, "a one-letter name got a suggestion");
    return test_summary(argv[0]);
}
