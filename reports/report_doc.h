/*
 * report_doc.h: the two documents of a report, index.html and report.md,
 * written together: each heading, paragraph and table goes to the HTML
 * and the Markdown text at once, so the two cannot drift apart. Table cells
 * are plain text, escaped for each format.
 */
#ifndef SPIRAL_REPORT_DOC_H
#define SPIRAL_REPORT_DOC_H

#include "text.h"

typedef struct {
    Text html, md;
} Doc;

/* A heading with an anchor id. */
void doc_heading(Doc *doc, int level, const char *id, const char *text);
/* A paragraph of plain text (class: "" or a CSS class such as "note"). */
void doc_para(Doc *doc, const char *cls, const char *text);
/* A table with its header row (n headers). */
void doc_table_begin(Doc *doc, const char *const *headers, int n);
/* One row of n plain-text cells. */
void doc_table_row(Doc *doc, const char *const *cells, int n);
/* Closes the table. */
void doc_table_end(Doc *doc);
/* A block of preformatted text, folded under a summary line in HTML. */
void doc_details_pre(Doc *doc, const char *summary, const char *text);

#endif
