/*
 * text.c: growable strings and escaping for reports (see text.h).
 */
#include "text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

void text_init(Text *text) { memset(text, 0, sizeof *text); }

void text_free(Text *text) {
    free(text->data);
    memset(text, 0, sizeof *text);
}

/* Makes room for `extra` more bytes plus the NUL; 0 or -1 (sets failed). */
static int text_reserve(Text *text, size_t extra) {
    if (text->failed) return -1;
    if (text->len + extra + 1 <= text->cap) return 0;
    size_t cap = text->cap ? text->cap : 256;
    while (cap < text->len + extra + 1) cap *= 2;
    char *data = realloc(text->data, cap);
    if (!data) {
        text->failed = 1;
        return -1;
    }
    text->data = data;
    text->cap = cap;
    return 0;
}

/* Appends n bytes of s. */
static void text_append(Text *text, const char *s, size_t n) {
    if (text_reserve(text, n)) return;
    memcpy(text->data + text->len, s, n);
    text->len += n;
    text->data[text->len] = 0;
}

void text_printf(Text *text, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || text_reserve(text, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(text->data + text->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    text->len += (size_t)n;
}

void text_html(Text *text, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': text_append(text, "&amp;", 5); break;
        case '<': text_append(text, "&lt;", 4); break;
        case '>': text_append(text, "&gt;", 4); break;
        case '"': text_append(text, "&quot;", 6); break;
        default: text_append(text, s, 1);
        }
    }
}

void text_md_cell(Text *text, const char *s) {
    for (; s && *s; s++) {
        if (*s == '|') text_append(text, "\\|", 2);
        else if (*s == '\n' || *s == '\r') text_append(text, " ", 1);
        else text_append(text, s, 1);
    }
}

void text_gp_string(Text *text, const char *s) {
    text_append(text, "'", 1);
    for (; s && *s; s++) {
        if (*s == '\'') text_append(text, "''", 2);
        else if (*s != '\n' && *s != '\r') text_append(text, s, 1);
    }
    text_append(text, "'", 1);
}

int text_write_file(const Text *text, const char *path) {
    if (text->failed) return spiral_error("%s: out of memory composing the file", path);
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return spiral_error("%s: cannot write: %s", tmp, strerror(errno));
    size_t written = text->len ? fwrite(text->data, 1, text->len, f) : 0;
    int bad = written != text->len;
    if (fclose(f) != 0) bad = 1;
    if (bad) {
        remove(tmp);
        return spiral_error("%s: write failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return spiral_error("%s: cannot rename into place: %s", path, strerror(errno));
    }
    return 0;
}
