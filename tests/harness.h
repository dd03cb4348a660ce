/*
 * harness.h: the tiny test harness every tests/test_*.c includes.
 *
 * CHECK(cond, fmt, ...) records one assertion; on failure it prints the file,
 * line and the formatted reason. test_summary() prints
 * "<program>: N passed, N failed" and returns the exit status (non-zero if
 * anything failed), so a test binary is `return test_summary(argv[0]);`.
 */
#ifndef SPIRAL_TEST_HARNESS_H
#define SPIRAL_TEST_HARNESS_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;

static void test_record(int ok, const char *file, int line, const char *fmt, ...) {
    if (ok) {
        test_passed++;
        return;
    }
    test_failed++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

#define CHECK(cond, ...) test_record((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

static int test_summary(const char *program) {
    const char *base = strrchr(program, '/');
    printf("%s: %d passed, %d failed\n", base ? base + 1 : program, test_passed, test_failed);
    return test_failed ? 1 : 0;
}

#endif
