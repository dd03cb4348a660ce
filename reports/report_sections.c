/*
 * report_sections.c: the sections of a report (report_sections.h): runs,
 * datasets, comparison, figures, probe results, configs.
 */
#include "report_sections.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "report_ablation.h"

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

/* The CompareRun of a run name, or NULL. */
static const CompareRun *compare_find(const Comparison *c, const char *name) {
    for (int i = 0; c && i < c->n_runs; i++)
        if (!strcmp(c->runs[i].name, name)) return &c->runs[i];
    return NULL;
}

/* Section: runs. */
void report_section_runs(Doc *doc, const ReportData *data, const Comparison *c) {
    doc_heading(doc, 2, "runs", "Runs");
    doc_para(doc, "", "Floor: the entropy floor over exactly the targets of the run's validation windows;"
                      " gap = final val loss - floor, the part of the loss a model could still remove.");
    const char *headers[] = {"run", "kind", "dataset", "parameters (non-embedding)", "steps", "tokens",
                             "training FLOPs", "final val loss", "floor", "gap", "status",
                             "recording (probes, analyses)"};
    doc_table_begin(doc, headers, 12);
    for (int r = 0; r < data->n_runs; r++) {
        const ReportRun *run = &data->runs[r];
        const CompareRun *cr = compare_find(c, run->name);
        char params[112] = "-", total[48], nonemb[48], steps[32] = "-", tokens[48] = "-", flops[32] = "-",
             loss[32] = "-", status[300], rec[300] = "none", floor[32], gap[32] = "-";
        fmt_real(floor, sizeof floor, "%.4f", run->val_floor);
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
            fmt_real(gap, sizeof gap, "%.4f", cr->val_loss - run->val_floor);
        }
        snprintf(status, sizeof status, "%s%s%.200s", run->status, run->message[0] ? ": " : "", run->message);
        if (run->recording_id)
            snprintf(rec, sizeof rec, "%s / %s, %d x %d tokens (%s)", run->rec_dataset, run->rec_split,
                     run->rec_sequences, run->rec_seq_len, run->rec_status);
        const char *cells[] = {run->name, run->kind, run->dataset[0] ? run->dataset : "-", params, steps,
                               tokens, flops, loss, floor, gap, status, rec};
        doc_table_row(doc, cells, 12);
    }
    doc_table_end(doc);
}

/* Section: datasets. */
void report_section_datasets(Doc *doc, const ReportData *data) {
    doc_heading(doc, 2, "datasets", "Datasets");
    doc_para(doc, "", "Entropy floor: the mean exact next-token loss -log p(token | prefix) under the"
                      " generating process over every token of the split, in nats/token; no model can"
                      " beat it in expectation. '-' where the process is unknown (real text). A"
                      " validation loss covers only its windows' targets; the runs table gives the"
                      " floor over those.");
    const char *headers[] = {"dataset", "family", "vocabulary", "tokens", "documents",
                             "entropy floor (every val token)", "entropy floor (every test token)",
                             "parameters"};
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
void report_section_comparison(Doc *doc, const Comparison *c, const char *compare_error) {
    doc_heading(doc, 2, "comparison", "Comparison");
    if (!c) {
        char text[2300];
        snprintf(text, sizeof text, "No comparison: %s", compare_error);
        doc_para(doc, "note", text);
        return;
    }
    char text[1024];
    snprintf(text, sizeof text,
             "Runs whose run files differ only in the seed form a group: mean and %.0f%% t interval"
             " over its seeds. Each run is read at the end of its own schedule (its last evaluation, after"
             " the learning rate has decayed), never mid-schedule, and groups whose ends agree within %.0f%%"
             " in tokens or in training FLOPs are compared there (equal-token and equal-FLOPs sets; the"
             " equal-FLOPs baseline of spiral match is trained to the spiral's FLOPs for this). Groups whose"
             " non-embedding parameters agree within %.0f%% share an equal-parameter set.",
             100 * c->level, 100 * c->budget_tolerance, 100 * c->param_tolerance);
    doc_para(doc, "", text);
    const char *headers[] = {"group", "runs", "kind", "seeds", "non-embedding parameters", "training FLOPs",
                             "val loss", "equal-token set", "equal-FLOPs set", "parameter set"};
    doc_table_begin(doc, headers, 10);
    for (int g = 0; g < c->n_groups; g++) {
        const CompareGroup *group = &c->groups[g];
        char id[16], runs[1024] = "", seeds[16], params[48], flops[32], loss[96], at_tokens[96] = "-",
             at_flops[96] = "-", set[16];
        size_t used = 0;
        for (int m = 0; m < group->n && used + 1 < sizeof runs; m++)
            used += (size_t)snprintf(runs + used, sizeof runs - used, "%s%s", m ? ", " : "",
                                     c->runs[group->members[m]].name);
        snprintf(id, sizeof id, "%d", g + 1);
        snprintf(seeds, sizeof seeds, "%d", group->n);
        fmt_count(params, sizeof params, group->params_nonembedding);
        fmt_real(flops, sizeof flops, "%.3g", group->train_flops);
        fmt_interval(loss, sizeof loss, &group->val_loss);
        if (group->token_set >= 0)
            snprintf(at_tokens, sizeof at_tokens, "%d (%.4g tokens)", group->token_set + 1, group->read_tokens);
        if (group->flop_set >= 0)
            snprintf(at_flops, sizeof at_flops, "%d (%.4g FLOPs)", group->flop_set + 1, group->read_flops);
        snprintf(set, sizeof set, "%d", group->param_set + 1);
        const char *cells[] = {id, runs, c->runs[group->members[0]].kind, seeds, params, flops, loss,
                               at_tokens, at_flops, set};
        doc_table_row(doc, cells, 10);
    }
    doc_table_end(doc);
    report_section_ablation(doc, c); /* only when the runs form an ablation study */
}

/* Section: the figures. */
void report_section_figures(Doc *doc, const FigureList *figures) {
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
void report_section_probes(Doc *doc, const ReportData *data) {
    doc_heading(doc, 2, "probes", "Probe results");
    if (data->n_probes == 0) {
        doc_para(doc, "note", "No probe results for these runs' recordings yet (spiral probe).");
        return;
    }
    doc_para(doc, "", "Test accuracy of each linear probe with its 95% bootstrap interval over test"
                      " sequences; the majority-class baseline; the accuracy of the same probe on a"
                      " randomly initialized model and of the lexical control (a probe on the one-hot of"
                      " the row's last g tokens, g the site's chunk size); the probe's margins over these"
                      " two with 95% intervals (paired bootstrap over test sequences); the control task's"
                      " accuracy (a random label per token type) and selectivity = accuracy - control"
                      " task. Verdict: encoded when both margins' intervals lie above 0, not encoded when"
                      " one does not, not tested when a control is missing.");
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
                                 "random model", "lexical", "margin over random", "margin over lexical",
                                 "control task", "selectivity", "verdict"};
        /* long tables fold away in HTML */
        text_printf(&doc->html, "<details%s><summary>%d probes: label, site, iteration, scale"
                                "</summary>\n", count <= 40 ? " open" : "", count);
        doc_table_begin(doc, headers, 13);
        for (int i = 0; i < data->n_probes; i++) {
            const ReportProbe *p = &data->probes[i];
            if (p->run != r) continue;
            char it[16], scale[16], acc[96], maj[32], ctl[32], sel[32], rnd[32], lex[32], mr[96], ml[96];
            snprintf(it, sizeof it, "%d", p->iteration);
            snprintf(scale, sizeof scale, "%d", p->scale);
            if (isfinite(p->accuracy))
                snprintf(acc, sizeof acc, "%.3f [%.3f, %.3f]", p->accuracy, p->ci_lo, p->ci_hi);
            else
                snprintf(acc, sizeof acc, "-");
            fmt_real(maj, sizeof maj, "%.3f", p->majority);
            fmt_real(ctl, sizeof ctl, "%.3f", p->control_task);
            fmt_real(sel, sizeof sel, "%+.3f", p->selectivity);
            fmt_real(rnd, sizeof rnd, "%.3f", p->random_model);
            fmt_real(lex, sizeof lex, "%.3f", p->lexical);
            if (isfinite(p->margin_random))
                snprintf(mr, sizeof mr, "%+.3f [%+.3f, %+.3f]", p->margin_random, p->margin_random_lo,
                         p->margin_random_hi);
            else
                snprintf(mr, sizeof mr, "-");
            if (isfinite(p->margin_lexical))
                snprintf(ml, sizeof ml, "%+.3f [%+.3f, %+.3f]", p->margin_lexical, p->margin_lexical_lo,
                         p->margin_lexical_hi);
            else
                snprintf(ml, sizeof ml, "-");
            const char *cells[] = {data->labels[p->label], p->site, it, scale, acc, maj, rnd, lex, mr, ml,
                                   ctl, sel, p->encoded < 0 ? "not tested" : p->encoded ? "encoded" : "not encoded"};
            doc_table_row(doc, cells, 13);
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
            /* an empty list says "nowhere" only where every probe was tested */
            int untested = 0;
            for (int i = 0; i < data->n_probes; i++) {
                const ReportProbe *p = &data->probes[i];
                untested += p->run == r && p->label == sum->label && !strcmp(p->site, sum->site) && p->encoded < 0;
            }
            const char *where = strcmp(sum->encoded, "[]") ? sum->encoded
                                : untested ? "not tested (random-model or lexical control missing)"
                                           : "nowhere";
            const char *cells[] = {data->labels[sum->label], sum->site, expected, where};
            doc_table_row(doc, cells, 4);
        }
        doc_table_end(doc);
    }
}

/* Section: configs and command lines. */
void report_section_configs(Doc *doc, const ReportData *data) {
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
