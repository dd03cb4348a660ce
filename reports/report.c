/*
 * report.c: index.html and report.md of a study (contents in report.h):
 * reads the data, draws the figures, then writes the page head and each
 * section (report_sections.h) through a Doc (report_doc.h).
 */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "error.h"
#include "report_data.h"
#include "report_doc.h"
#include "report_key.h"
#include "report_sections.h"

/* Creates dir and its parents (like mkdir -p). */
static int make_dirs(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir(path, 0755) != 0 && errno != EEXIST)
                return spiral_error("%s: cannot create the report directory: %s", path, strerror(errno));
            *p = saved;
            if (!saved) break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return spiral_error("%s: not a directory", dir);
    return 0;
}

static const char page_style[] =
    "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;max-width:1500px;margin:2em auto;"
    "padding:0 1em;color:#222;line-height:1.4}\n"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.92em}\n"
    "th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left;vertical-align:top}\n"
    "th{background:#f0f0f0}\n"
    "tr:nth-child(even) td{background:#fafafa}\n"
    "img{max-width:100%;height:auto;border:1px solid #ddd}\n"
    "pre{background:#f6f6f6;padding:0.6em;overflow-x:auto;font-size:0.88em}\n"
    "code{font-size:0.9em}\n"
    ".note{color:#8a5a00}\n"
    ".meta{color:#555}\n"
    "figure{margin:1em 0 2.5em}\n"
    "figcaption{color:#444;max-width:60em}\n"
    ".key{border:2px solid #4a6fa5;background:#f5f8fc;padding:0 1em 0.5em;margin:1em 0 2em}\n";

/* Reads the data, draws the figures, then writes index.html and report.md. */
int report_write(Store *store, const ReportOptions *options, ReportResult *result) {
    memset(result, 0, sizeof *result);
    const char *dir = options->dir;
    if (!dir || !dir[0]) return spiral_error("report: no output directory given");
    if (make_dirs(dir)) return -1;
    snprintf(result->html_path, sizeof result->html_path, "%s/index.html", dir);
    snprintf(result->md_path, sizeof result->md_path, "%s/report.md", dir);

    ReportData data;
    if (report_data_load(&data, store, options->runs, options->n_runs, options->split)) return -1;
    if (data.n_runs == 0) {
        report_data_free(&data);
        return spiral_error("%s: the store has no runs to report (train one with spiral train)",
                            store->path);
    }
    result->n_runs = data.n_runs;
    /* the comparison; a run it cannot read leaves the report without it */
    Comparison comparison;
    CompareOptions compare_options;
    compare_options_default(&compare_options);
    const char *names[data.n_runs];
    for (int r = 0; r < data.n_runs; r++) names[r] = data.runs[r].name;
    char compare_error[2100] = "";
    int have_comparison = compare_runs(&comparison, store, names, data.n_runs, &compare_options) == 0;
    if (!have_comparison) snprintf(compare_error, sizeof compare_error, "%s", spiral_last_error());

    KeyResults key;
    int status = key_results_load(&key, store, &data);
    if (status == 0) {
        status = figures_draw_all(&result->figures, store, &data, have_comparison ? &comparison : NULL, dir);
        if (status) key_results_free(&key);
    }
    if (status == 0) {
        for (int i = 0; i < result->figures.n; i++) result->n_rendered += result->figures.items[i].rendered;
        Doc doc;
        text_init(&doc.html);
        text_init(&doc.md);
        char when[64], text[3000];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
        text_printf(&doc.html, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                               "<title>spiral report: ");
        text_html(&doc.html, store->path);
        text_printf(&doc.html, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>spiral report</h1>\n",
                    page_style);
        text_printf(&doc.md, "# spiral report\n\n");
        snprintf(text, sizeof text, "Store %s; %d runs; generated %s by spiral %s.", store->path, data.n_runs,
                 when, options->version && options->version[0] ? options->version : "(unknown version)");
        doc_para(&doc, "meta", text);
        if (options->command_line) {
            snprintf(text, sizeof text, "Command: %.2900s", options->command_line);
            doc_para(&doc, "meta", text);
        }
        report_section_key(&doc, &data, have_comparison ? &comparison : NULL, compare_error, &key);
        key_results_free(&key);
        text_printf(&doc.html, "<p>Contents: <a href=\"#key\">key results</a> &middot; <a href=\"#runs\">runs</a> &middot; <a href=\"#datasets\">datasets</a>"
                               " &middot; <a href=\"#comparison\">comparison</a> &middot; <a href=\"#figures\">"
                               "figures</a> &middot; <a href=\"#probes\">probe results</a> &middot; <a href=\""
                               "#configs\">configs and command lines</a> &middot; <a href=\"report.md\">"
                               "this report as Markdown</a></p>\n");
        text_printf(&doc.md, "Contents: [key results](#key-results), [runs](#runs), [datasets](#datasets), [comparison](#comparison),"
                             " [figures](#figures), [probe results](#probe-results),"
                             " [configs and command lines](#configs-and-command-lines);"
                             " [index.html](index.html) is the same report as a web page.\n\n");
        report_section_runs(&doc, &data, have_comparison ? &comparison : NULL);
        report_section_datasets(&doc, &data);
        report_section_comparison(&doc, have_comparison ? &comparison : NULL, compare_error);
        report_section_figures(&doc, &result->figures);
        report_section_probes(&doc, &data);
        report_section_configs(&doc, &data);
        text_printf(&doc.html, "</body>\n</html>\n");
        status = text_write_file(&doc.html, result->html_path);
        if (status == 0) status = text_write_file(&doc.md, result->md_path);
        text_free(&doc.html);
        text_free(&doc.md);
    } else {
        spiral_error_prefix("report in %s", dir);
    }
    if (have_comparison) compare_free(&comparison);
    report_data_free(&data);
    if (status) figure_list_free(&result->figures);
    return status;
}

void report_result_free(ReportResult *result) { figure_list_free(&result->figures); }
