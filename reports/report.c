/*
 * report.c: index.html and report.md of a study (contents in report.h).
 *
 * Both documents are written together through a Doc: each heading,
 * paragraph and table goes to the HTML and the Markdown text at once, so
 * the two cannot drift apart. Table cells are plain text, escaped for each
 * format.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "error.h"
#include "report_data.h"
#include "text.h"

typedef struct {
    Text html, md;
} Doc;

/* A heading with an anchor id. */
static void doc_heading(Doc *doc, int level, const char *id, const char *text) {
    text_printf(&doc->html, "<h%d id=\"%s\">", level, id);
    text_html(&doc->html, text);
    text_printf(&doc->html, "</h%d>\n", level);
    text_printf(&doc->md, "\n%.*s %s\n\n", level, "######", text);
}

/* A paragraph of plain text (class: "" or a CSS class such as "note"). */
static void doc_para(Doc *doc, const char *cls, const char *text) {
    text_printf(&doc->html, "<p%s%s%s>", cls[0] ? " class=\"" : "", cls, cls[0] ? "\"" : "");
    text_html(&doc->html, text);
    text_printf(&doc->html, "</p>\n");
    if (cls[0]) text_printf(&doc->md, "*%s*\n\n", text);
    else text_printf(&doc->md, "%s\n\n", text);
}

/* A table with its header row. */
static void doc_table_begin(Doc *doc, const char *const *headers, int n) {
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
static void doc_table_row(Doc *doc, const char *const *cells, int n) {
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
static void doc_table_end(Doc *doc) {
    text_printf(&doc->html, "</table>\n");
    text_printf(&doc->md, "\n");
}

/* A block of preformatted text, folded under a summary line in HTML. */
static void doc_details_pre(Doc *doc, const char *summary, const char *text) {
    text_printf(&doc->html, "<details><summary>");
    text_html(&doc->html, summary);
    text_printf(&doc->html, "</summary>\n<pre>");
    text_html(&doc->html, text);
    text_printf(&doc->html, "</pre></details>\n");
    text_printf(&doc->md, "%s:\n\n```\n%s\n```\n\n", summary, text);
}

/* "%.4f" of v, or "-" if NaN. */
static void fmt_real(char *out, size_t size, const char *fmt, double v) {
    if (isfinite(v)) snprintf(out, size, fmt, v);
    else snprintf(out, size, "-");
}

/* A count with thousands separators: 1234567 -> "1,234,567". */
static void fmt_count(char *out, size_t size, double v) {
    if (!isfinite(v)) {
        snprintf(out, size, "-");
        return;
    }
    char digits[64];
    snprintf(digits, sizeof digits, "%.0f", fabs(v));
    size_t n = strlen(digits), used = 0;
    if (v < 0 && used + 1 < size) out[used++] = '-';
    for (size_t i = 0; i < n && used + 2 < size; i++) {
        if (i && (n - i) % 3 == 0) out[used++] = ',';
        out[used++] = digits[i];
    }
    out[used] = 0;
}

/* "mean [lo, hi]" of an interval, "(1 seed)" when it has no width. */
static void fmt_interval(char *out, size_t size, const MeanInterval *m) {
    if (m->n == 0) snprintf(out, size, "-");
    else if (m->n == 1) snprintf(out, size, "%.4f (1 seed)", m->mean);
    else snprintf(out, size, "%.4f [%.4f, %.4f]", m->mean, m->lo, m->hi);
}

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

/* The CompareRun of a run name, or NULL. */
static const CompareRun *compare_find(const Comparison *c, const char *name) {
    for (int i = 0; c && i < c->n_runs; i++)
        if (!strcmp(c->runs[i].name, name)) return &c->runs[i];
    return NULL;
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
    "figcaption{color:#444;max-width:60em}\n";

/* Section: runs. */
static void write_runs(Doc *doc, const ReportData *data, const Comparison *c) {
    doc_heading(doc, 2, "runs", "Runs");
    const char *headers[] = {"run", "kind", "dataset", "parameters (non-embedding)", "steps", "tokens",
                             "training FLOPs", "final val loss", "status", "recording (probes, analyses)"};
    doc_table_begin(doc, headers, 10);
    for (int r = 0; r < data->n_runs; r++) {
        const ReportRun *run = &data->runs[r];
        const CompareRun *cr = compare_find(c, run->name);
        char params[112] = "-", total[48], nonemb[48], steps[32] = "-", tokens[48] = "-", flops[32] = "-",
             loss[32] = "-", status[300], rec[300] = "none";
        if (cr) {
            fmt_count(total, sizeof total, cr->params);
            fmt_count(nonemb, sizeof nonemb, cr->params_nonembedding);
            snprintf(params, sizeof params, "%s (%s)", total, nonemb);
            snprintf(steps, sizeof steps, "%lld", cr->step);
            fmt_count(tokens, sizeof tokens, cr->tokens);
            fmt_real(flops, sizeof flops, "%.3g", cr->train_flops);
            fmt_real(loss, sizeof loss, "%.4f", cr->val_loss);
            if (isfinite(cr->val_loss))
                snprintf(loss + strlen(loss), sizeof loss - strlen(loss), " (step %lld)", cr->val_step);
        }
        snprintf(status, sizeof status, "%s%s%.200s", run->status, run->message[0] ? ": " : "", run->message);
        if (run->recording_id)
            snprintf(rec, sizeof rec, "%s / %s, %d x %d tokens (%s)", run->rec_dataset, run->rec_split,
                     run->rec_sequences, run->rec_seq_len, run->rec_status);
        const char *cells[] = {run->name, run->kind, run->dataset[0] ? run->dataset : "-", params, steps,
                               tokens, flops, loss, status, rec};
        doc_table_row(doc, cells, 10);
    }
    doc_table_end(doc);
}

/* Section: datasets. */
static void write_datasets(Doc *doc, const ReportData *data) {
    doc_heading(doc, 2, "datasets", "Datasets");
    doc_para(doc, "", "Entropy floor: the mean exact next-token loss -log p(token | prefix) under the"
                      " generating process over the split, in nats/token; no model can beat it in"
                      " expectation. '-' where the process is unknown (real text).");
    const char *headers[] = {"dataset", "family", "vocabulary", "tokens", "documents",
                             "entropy floor (val)", "entropy floor (test)", "parameters"};
    doc_table_begin(doc, headers, 8);
    for (int d = 0; d < data->n_datasets; d++) {
        const ReportDataset *ds = &data->datasets[d];
        char vocab[32], tokens[48], docs[48], fv[32], ft[32];
        snprintf(vocab, sizeof vocab, "%d", ds->vocab_size);
        fmt_count(tokens, sizeof tokens, (double)ds->n_tokens);
        fmt_count(docs, sizeof docs, (double)ds->n_docs);
        fmt_real(fv, sizeof fv, "%.4f", ds->floor_val);
        fmt_real(ft, sizeof ft, "%.4f", ds->floor_test);
        const char *cells[] = {ds->name, ds->family, vocab, tokens, docs, fv, ft, ds->params};
        doc_table_row(doc, cells, 8);
    }
    doc_table_end(doc);
}

/* Section: comparison across runs and seeds. */
static void write_comparison(Doc *doc, const Comparison *c, const char *compare_error) {
    doc_heading(doc, 2, "comparison", "Comparison");
    if (!c) {
        char text[2300];
        snprintf(text, sizeof text, "No comparison: %s", compare_error);
        doc_para(doc, "note", text);
        return;
    }
    char text[512], a[32], b[32];
    fmt_real(a, sizeof a, "%.4g", c->equal_tokens);
    fmt_real(b, sizeof b, "%.4g", c->equal_flops);
    snprintf(text, sizeof text,
             "Runs whose run files differ only in the seed form a group: mean and %.0f%% t interval"
             " over its seeds. Loss at equal tokens (%s tokens) and at equal FLOPs (%s): each run's"
             " validation curve interpolated linearly at the smallest budget every run reached"
             " (never extrapolated). Groups whose non-embedding parameters agree within %.0f%% share"
             " an equal-parameter set.",
             100 * c->level, a, b, 100 * c->param_tolerance);
    doc_para(doc, "", text);
    const char *headers[] = {"group", "runs", "kind", "seeds", "non-embedding parameters", "training FLOPs",
                             "val loss", "loss at equal tokens", "loss at equal FLOPs", "parameter set"};
    doc_table_begin(doc, headers, 10);
    for (int g = 0; g < c->n_groups; g++) {
        const CompareGroup *group = &c->groups[g];
        char id[16], runs[1024] = "", seeds[16], params[48], flops[32], loss[96], at_tokens[96],
             at_flops[96], set[16];
        size_t used = 0;
        for (int m = 0; m < group->n && used + 1 < sizeof runs; m++)
            used += (size_t)snprintf(runs + used, sizeof runs - used, "%s%s", m ? ", " : "",
                                     c->runs[group->members[m]].name);
        snprintf(id, sizeof id, "%d", g + 1);
        snprintf(seeds, sizeof seeds, "%d", group->n);
        fmt_count(params, sizeof params, group->params_nonembedding);
        fmt_real(flops, sizeof flops, "%.3g", group->train_flops);
        fmt_interval(loss, sizeof loss, &group->val_loss);
        fmt_interval(at_tokens, sizeof at_tokens, &group->loss_at_tokens);
        fmt_interval(at_flops, sizeof at_flops, &group->loss_at_flops);
        snprintf(set, sizeof set, "%d", group->param_set + 1);
        const char *cells[] = {id, runs, c->runs[group->members[0]].kind, seeds, params, flops, loss,
                               at_tokens, at_flops, set};
        doc_table_row(doc, cells, 10);
    }
    doc_table_end(doc);
}

/* Section: the figures. */
static void write_figures(Doc *doc, const FigureList *figures) {
    doc_heading(doc, 2, "figures", "Figures");
    doc_para(doc, "", "Each figure is drawn by gnuplot from the CSV beside it (its script, NAME.gp,"
                      " re-draws the PNG and the SVG: cd into this directory and run gnuplot NAME.gp).");
    for (int i = 0; i < figures->n; i++) {
        const Figure *f = &figures->items[i];
        char id[80];
        snprintf(id, sizeof id, "fig-%s", f->name);
        doc_heading(doc, 3, id, f->title);
        if (!f->rendered) {
            char text[400];
            snprintf(text, sizeof text, "Not drawn: %s.", f->note);
            doc_para(doc, "note", text);
            continue;
        }
        Text *h = &doc->html;
        text_printf(h, "<figure>\n<a href=\"%s.png\"><img src=\"%s.png\" width=\"%d\" alt=\"", f->name,
                    f->name, f->width);
        text_html(h, f->title);
        text_printf(h, "\"></a>\n<figcaption>");
        text_html(h, f->caption);
        text_printf(h, "<br>Data: <a href=\"%s.csv\">%s.csv</a> (%ld rows) &middot; <a href=\"%s.svg\">SVG</a>"
                       " &middot; <a href=\"%s.gp\">gnuplot script</a>", f->name, f->name, f->csv_rows,
                    f->name, f->name);
        if (f->warnings) text_printf(h, " &middot; <a href=\"%s.log\">gnuplot warnings</a>", f->name);
        text_printf(h, "</figcaption>\n</figure>\n");
        text_printf(&doc->md, "![%s](%s.png)\n\n%s\n\nData: [%s.csv](%s.csv) (%ld rows), [SVG](%s.svg),"
                              " [gnuplot script](%s.gp)%s%s%s\n\n",
                    f->title, f->name, f->caption, f->name, f->name, f->csv_rows, f->name, f->name,
                    f->warnings ? ", [gnuplot warnings](" : "", f->warnings ? f->name : "",
                    f->warnings ? ".log)" : "");
    }
}

/* Section: probe results, per run. */
static void write_probes(Doc *doc, const ReportData *data) {
    doc_heading(doc, 2, "probes", "Probe results");
    if (data->n_probes == 0) {
        doc_para(doc, "note", "No probe results for these runs' recordings yet (spiral probe).");
        return;
    }
    doc_para(doc, "", "Test accuracy of each linear probe with its 95% bootstrap interval over test"
                      " sequences; the majority-class baseline; the control task's accuracy (a random"
                      " label per token type) and selectivity = accuracy - control task; encoded: the"
                      " probe's interval lies above those of all four controls (control task, random"
                      " model, position, permuted labels); '-' without a summary.");
    for (int r = 0; r < data->n_runs; r++) {
        const ReportRun *run = &data->runs[r];
        int count = 0;
        for (int i = 0; i < data->n_probes; i++) count += data->probes[i].run == r;
        if (!count) continue;
        char id[160], heading[300];
        snprintf(id, sizeof id, "probes-%d", r + 1);
        snprintf(heading, sizeof heading, "%s (%s / %s)", run->name, run->rec_dataset, run->rec_split);
        doc_heading(doc, 3, id, heading);
        const char *headers[] = {"label", "site", "iteration", "scale", "accuracy [95% CI]", "majority",
                                 "control task", "selectivity", "encoded"};
        /* long tables fold away in HTML */
        text_printf(&doc->html, "<details%s><summary>%d probes: label, site, iteration, scale"
                                "</summary>\n", count <= 40 ? " open" : "", count);
        doc_table_begin(doc, headers, 9);
        for (int i = 0; i < data->n_probes; i++) {
            const ReportProbe *p = &data->probes[i];
            if (p->run != r) continue;
            char it[16], scale[16], acc[96], maj[32], ctl[32], sel[32];
            snprintf(it, sizeof it, "%d", p->iteration);
            snprintf(scale, sizeof scale, "%d", p->scale);
            if (isfinite(p->accuracy))
                snprintf(acc, sizeof acc, "%.3f [%.3f, %.3f]", p->accuracy, p->ci_lo, p->ci_hi);
            else
                snprintf(acc, sizeof acc, "-");
            fmt_real(maj, sizeof maj, "%.3f", p->majority);
            fmt_real(ctl, sizeof ctl, "%.3f", p->control_task);
            fmt_real(sel, sizeof sel, "%+.3f", p->selectivity);
            const char *cells[] = {data->labels[p->label], p->site, it, scale, acc, maj, ctl, sel,
                                   p->encoded < 0 ? "-" : p->encoded ? "yes" : "no"};
            doc_table_row(doc, cells, 9);
        }
        doc_table_end(doc);
        text_printf(&doc->html, "</details>\n");
        int summaries = 0;
        for (int s = 0; s < data->n_summaries; s++) summaries += data->summaries[s].run == r;
        if (!summaries) continue;
        doc_para(doc, "", "Per label and site: the expected iteration (Tenney et al.: the accuracy"
                          " gains over the first iteration as weights; '-' if undefined) and where the"
                          " label is encoded.");
        const char *sum_headers[] = {"label", "site", "expected iteration", "encoded at (iteration, scale)"};
        doc_table_begin(doc, sum_headers, 4);
        for (int s = 0; s < data->n_summaries; s++) {
            const ReportSummary *sum = &data->summaries[s];
            if (sum->run != r) continue;
            char expected[32];
            fmt_real(expected, sizeof expected, "%.2f", sum->expected_iteration);
            const char *cells[] = {data->labels[sum->label], sum->site, expected,
                                   strcmp(sum->encoded, "[]") ? sum->encoded : "nowhere"};
            doc_table_row(doc, cells, 4);
        }
        doc_table_end(doc);
    }
}

/* Section: configs and command lines. */
static void write_configs(Doc *doc, const ReportData *data) {
    doc_heading(doc, 2, "configs", "Configs and command lines");
    for (int r = 0; r < data->n_runs; r++) {
        const ReportRun *run = &data->runs[r];
        char id[160], summary[300];
        snprintf(id, sizeof id, "run-%d", r + 1);
        doc_heading(doc, 3, id, run->name);
        doc_details_pre(doc, "command line", run->command[0] ? run->command : "(not recorded)");
        /* the resolved run file, indented for reading */
        json_error_t error;
        json_t *root = json_loads(run->config, 0, &error);
        char *pretty = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        snprintf(summary, sizeof summary, "run config (%s)", run->name);
        doc_details_pre(doc, summary, pretty ? pretty : run->config);
        free(pretty);
        json_decref(root);
    }
}

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

    int status = figures_draw_all(&result->figures, store, &data, have_comparison ? &comparison : NULL, dir);
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
        text_printf(&doc.html, "<p>Contents: <a href=\"#runs\">runs</a> &middot; <a href=\"#datasets\">datasets</a>"
                               " &middot; <a href=\"#comparison\">comparison</a> &middot; <a href=\"#figures\">"
                               "figures</a> &middot; <a href=\"#probes\">probe results</a> &middot; <a href=\""
                               "#configs\">configs and command lines</a> &middot; <a href=\"report.md\">"
                               "this report as Markdown</a></p>\n");
        text_printf(&doc.md, "Contents: [runs](#runs), [datasets](#datasets), [comparison](#comparison),"
                             " [figures](#figures), [probe results](#probe-results),"
                             " [configs and command lines](#configs-and-command-lines);"
                             " [index.html](index.html) is the same report as a web page.\n\n");
        write_runs(&doc, &data, have_comparison ? &comparison : NULL);
        write_datasets(&doc, &data);
        write_comparison(&doc, have_comparison ? &comparison : NULL, compare_error);
        write_figures(&doc, &result->figures);
        write_probes(&doc, &data);
        write_configs(&doc, &data);
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
