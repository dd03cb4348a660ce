/*
 * text.h: a growable string for the files reports/ writes (gnuplot scripts,
 * index.html, report.md), with the escaping each format needs.
 *
 * Appending never fails loudly: an allocation failure sets `failed`, later
 * appends do nothing, and text_write_file reports it. So a writer can
 * append a whole document and check once, at the end.
 */
#ifndef SPIRAL_TEXT_H
#define SPIRAL_TEXT_H

#include <stddef.h>

typedef struct {
    char *data;      /* NUL-terminated ("" before the first append) */
    size_t len, cap;
    int failed;      /* 1 after an allocation failure */
} Text;

void text_init(Text *text);
void text_free(Text *text);

/* Appends printf-style. */
void text_printf(Text *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s with &, <, > and " escaped for HTML text and attribute values. */
void text_html(Text *text, const char *s);

/* Appends s for a Markdown table cell: '|' escaped, newlines as spaces. */
void text_md_cell(Text *text, const char *s);

/* Appends s as a gnuplot single-quoted string ('...', a ' written as ''):
 * single quotes take backslashes literally, so any name is safe. */
void text_gp_string(Text *text, const char *s);

/* Writes the text to path (a temporary file renamed into place, so a reader
 * never sees half a file). Returns 0, or -1 naming the path. */
int text_write_file(const Text *text, const char *path);

#endif
