/*
 * error.c: a per-thread error message buffer (see error.h).
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SPIRAL_ERROR_CAP 2048

static _Thread_local char error_message[SPIRAL_ERROR_CAP];

int spiral_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return -1;
}

int spiral_error_prefix(const char *fmt, ...) {
    char context[SPIRAL_ERROR_CAP];
    char old[SPIRAL_ERROR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof old);
    /* each part is cut to half the buffer so the result always fits */
    snprintf(error_message, sizeof error_message, "%.1000s: %.1000s", context, old);
    return -1;
}

const char *spiral_last_error(void) { return error_message; }
