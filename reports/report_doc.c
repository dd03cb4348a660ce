/*
 * report_doc.c: index.html and report.md written together (report_doc.h).
 */
#include "report_doc.h"

/* A heading with an anchor id. */
void doc_heading(Doc *doc, int level, const char *id, const char *text) {
    text_printf(&doc->html, "<h%d id=\"%s\">", level, id);
    text_html(&doc->html, text);
    text_printf(&doc->html, "</h%d>\n", level);
    text_printf(&doc->md, "\n%.*s %s\n\n", level, "######", text);
}

/* A paragraph of plain text (class: "" or a CSS class such as "note"). */
void doc_para(Doc *doc, const char *cls, const char *text) {
    text_printf(&doc->html, "<p%s%s%s>", cls[0] ? " class=\"" : "", cls, cls[0] ? "\"" : "");
    text_html(&doc->html, text);
    text_printf(&doc->html, "</p>\n");
    if (cls[0]) text_printf(&doc->md, "*%s*\n\n", text);
    else text_printf(&doc->md, "%s\n\n", text);
}

/* A table with its header row. */
void doc_table_begin(Doc *doc, const char *const *headers, int n) {
    text_printf(&doc->html, "<table>\n<tr>");
    text_printf(&doc->md, "|");
    for (int i = 0; i < n; i++) {
        text_printf(&doc->html, "<th>");
        text_html(&doc->html, headers[i]);
        text_printf(&doc->html, "</th>");
        text_printf(&doc->md, " ");
        text_md_cell(&doc->md, headers[i]);
        text_printf(&doc->md, " |");
    }
    text_printf(&doc->html, "</tr>\n");
    text_printf(&doc->md, "\n|");
    for (int i = 0; i < n; i++) text_printf(&doc->md, "---|");
    text_printf(&doc->md, "\n");
}

/* One row of plain-text cells. */
void doc_table_row(Doc *doc, const char *const *cells, int n) {
    text_printf(&doc->html, "<tr>");
    text_printf(&doc->md, "|");
    for (int i = 0; i < n; i++) {
        text_printf(&doc->html, "<td>");
        text_html(&doc->html, cells[i]);
        text_printf(&doc->html, "</td>");
        text_printf(&doc->md, " ");
        text_md_cell(&doc->md, cells[i]);
        text_printf(&doc->md, " |");
    }
    text_printf(&doc->html, "</tr>\n");
    text_printf(&doc->md, "\n");
}

/* Closes the table. */
void doc_table_end(Doc *doc) {
    text_printf(&doc->html, "</table>\n");
    text_printf(&doc->md, "\n");
}

/* A block of preformatted text, folded under a summary line in HTML. */
void doc_details_pre(Doc *doc, const char *summary, const char *text) {
    text_printf(&doc->html, "<details><summary>");
    text_html(&doc->html, summary);
    text_printf(&doc->html, "</summary>\n<pre>");
    text_html(&doc->html, text);
    text_printf(&doc->html, "</pre></details>\n");
    text_printf(&doc->md, "%s:\n\n```\n%s\n```\n\n", summary, text);
}
