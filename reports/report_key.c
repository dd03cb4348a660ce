/*
 * report_key.c: the key-results box of a report (report_key.h).
 */
#include "report_key.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "report_store.h"

/* The first and last loop step of the run's selected_attn_distance rows. */
static int load_attention(Store *store, const ReportRun *run, KeyAttention *a) {
    memset(a, 0, sizeof *a);
    if (!run->recording_id) return 0;
    StoredAnalysis *rows;
    int n;
    if (report_store_analysis(store, run->recording_id, "selected_attn_distance", 0, &rows, &n)) return -1;
    if (n >= 2) {
        const StoredAnalysis *first = &rows[0], *last = &rows[n - 1];  /* ordered by iteration */
        *a = (KeyAttention){1, first->iteration, last->iteration, first->value, first->ci_lo,
                            first->ci_hi, last->value, last->ci_lo, last->ci_hi};
    }
    report_store_analysis_free(rows, n);
    return 0;
}

int key_results_load(KeyResults *key, Store *store, const ReportData *data) {
    memset(key, 0, sizeof *key);
    key->attention = calloc((size_t)(data->n_runs ? data->n_runs : 1), sizeof *key->attention);
    if (!key->attention) {
        key_results_free(key);
        return spiral_error("out of memory reading the key results");
    }
    key->n_runs = data->n_runs;
    for (int r = 0; r < data->n_runs; r++)
        if (load_attention(store, &data->runs[r], &key->attention[r])) goto fail;
    return 0;
fail:
    key_results_free(key);
    return -1;
}

void key_results_free(KeyResults *key) {
    free(key->attention);
    memset(key, 0, sizeof *key);
}

const char *key_attention_direction(const KeyAttention *a) {
    if (!a->known) return NULL;
    if (a->last_hi < a->first_lo) return "falls: global to local";
    if (a->last_lo > a->first_hi) return "rises: local to global";
    return "no clear change (the intervals overlap)";
}

/* One state of a site as the figures name it: h(2), z(1) at g=4, coda. */
static void state_name(char *out, size_t size, const char *site, int iteration, int scale) {
    if (!strcmp(site, "token")) snprintf(out, size, "h(%d)", iteration);
    else if (!strcmp(site, "coda")) snprintf(out, size, "coda");
    else if (scale > 1) snprintf(out, size, "%s %d (g=%d)", site, iteration, scale);
    else snprintf(out, size, "%s %d", site, iteration);
}

void key_encoded_text(char *out, size_t size, const ReportData *data, int run, int label) {
    size_t used = 0;
    out[0] = 0;
    for (int s = 0; s < data->n_summaries && used + 1 < size; s++) {
        const ReportSummary *sum = &data->summaries[s];
        if (sum->run != run || sum->label != label) continue;
        used += (size_t)snprintf(out + used, size - used, "%s%s: ", used ? "; " : "", sum->site);
        /* the summary's verdict: a JSON list of the (iteration, scale) where encoded */
        json_error_t error;
        json_t *list = json_loads(sum->encoded, 0, &error);
        int shown = 0;
        for (size_t i = 0; list && json_is_array(list) && i < json_array_size(list) && used + 1 < size; i++) {
            json_t *item = json_array_get(list, i);
            json_t *it = json_object_get(item, "iteration"), *sc = json_object_get(item, "scale");
            if (!json_is_integer(it)) continue;
            char name[64];
            state_name(name, sizeof name, sum->site, (int)json_integer_value(it),
                       json_is_integer(sc) ? (int)json_integer_value(sc) : 1);
            used += (size_t)snprintf(out + used, size - used, "%s%s", shown++ ? ", " : "", name);
        }
        if (!list || !json_is_array(list))
            used += (size_t)snprintf(out + used, size - used, "%s", sum->encoded);
        else if (!shown && used + 1 < size)
            used += (size_t)snprintf(out + used, size - used, "nowhere");
        json_decref(list);
    }
    if (used >= size) used = size - 1;
    if (!out[0]) snprintf(out, size, "not tested");
}

/* "%.4f" of v, or "-" if NaN. */
static void fmt4(char *out, size_t size, double v) {
    if (isfinite(v)) snprintf(out, size, "%.4f", v);
    else snprintf(out, size, "-");
}

/* The CompareRun of a run name, or NULL. */
static const CompareRun *find_compared(const Comparison *c, const char *name) {
    for (int i = 0; c && i < c->n_runs; i++)
        if (!strcmp(c->runs[i].name, name)) return &c->runs[i];
    return NULL;
}

/* Each run's validation loss beside its floor and n-gram baselines. */
static void key_losses(Doc *doc, const ReportData *data, const Comparison *c, const KeyResults *key) {
    doc_para(doc, "", "Validation loss (nats/token, at the last evaluation) against what the data allows,"
                      " each over exactly the targets of the run's validation windows: the entropy floor"
                      " (no model can beat it in expectation; '-' for real text) and the bigram and"
                      " trigram models fitted on the train split.");
    const char *headers[] = {"run", "dataset", "val loss", "entropy floor", "gap to floor", "bigram",
                             "trigram"};
    doc_table_begin(doc, headers, 7);
    for (int r = 0; r < data->n_runs; r++) {
        const ReportRun *run = &data->runs[r];
        const CompareRun *cr = find_compared(c, run->name);
        double loss = cr ? cr->val_loss : NAN, floor = run->val_floor;
        char l[32], f[32], gap[32], bi[32], tri[32];
        fmt4(l, sizeof l, loss);
        fmt4(f, sizeof f, floor);
        if (isfinite(loss) && isfinite(floor)) snprintf(gap, sizeof gap, "%+.4f", loss - floor);
        else snprintf(gap, sizeof gap, "-");
        fmt4(bi, sizeof bi, run->val_bigram);
        fmt4(tri, sizeof tri, run->val_trigram);
        const char *cells[] = {run->name, run->dataset[0] ? run->dataset : "-", l, f, gap, bi, tri};
        doc_table_row(doc, cells, 7);
    }
    doc_table_end(doc);
}

/* The training FLOPs of equal-FLOPs set `set`: the mean of its groups'
 * reading points (each run read at the end of its own schedule unless the
 * comparison fixed a budget). */
double report_key_set_flops(const Comparison *c, int set) {
    double sum = 0;
    int n = 0;
    for (int g = 0; g < c->n_groups; g++)
        if (c->groups[g].flop_set == set && c->groups[g].loss_at_flops.n > 0) {
            sum += c->groups[g].read_flops;
            n++;
        }
    return n ? sum / n : NAN;
}

/* The dataset group g trains on. */
static const char *group_dataset(const Comparison *c, int g) {
    return c->runs[c->groups[g].members[0]].train.dataset;
}

/* The groups of one equal-FLOPs set that train on `dataset`, lowest loss
 * first (losses on different datasets are not compared). */
static void key_flop_set(Doc *doc, const Comparison *c, int set, const char *dataset) {
    char text[2400];
    int order[c->n_groups > 0 ? c->n_groups : 1], n = 0;
    for (int g = 0; g < c->n_groups; g++)
        if (c->groups[g].flop_set == set && c->groups[g].loss_at_flops.n > 0 &&
            !strcmp(group_dataset(c, g), dataset))
            order[n++] = g;
    if (n == 0) return;
    for (int i = 1; i < n; i++)  /* insertion sort by mean loss */
        for (int j = i; j > 0 && c->groups[order[j]].loss_at_flops.mean <
                                     c->groups[order[j - 1]].loss_at_flops.mean; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    snprintf(text, sizeof text, "At equal training FLOPs (%.4g, set %d: groups whose runs end within"
             " %.0f%% of each other's FLOPs, each read at %s; dataset %s): validation loss of"
             " each group of seeds, mean and %.0f%% t interval, lowest first.",
             report_key_set_flops(c, set), set + 1, 100 * c->budget_tolerance,
             isnan(c->at_flops) ? "the end of its own schedule" : "the given budget", dataset,
             100 * c->level);
    doc_para(doc, "", text);
    const char *headers[] = {"group", "kind", "runs", "loss at equal FLOPs"};
    doc_table_begin(doc, headers, 4);
    for (int i = 0; i < n; i++) {
        const CompareGroup *g = &c->groups[order[i]];
        char id[16], runs[1024] = "", loss[96];
        size_t used = 0;
        for (int m = 0; m < g->n && used + 1 < sizeof runs; m++)
            used += (size_t)snprintf(runs + used, sizeof runs - used, "%s%s", m ? ", " : "",
                                     c->runs[g->members[m]].name);
        snprintf(id, sizeof id, "%d", order[i] + 1);
        const MeanInterval *m = &g->loss_at_flops;
        if (m->n == 1) snprintf(loss, sizeof loss, "%.4f (1 seed: no interval)", m->mean);
        else snprintf(loss, sizeof loss, "%.4f [%.4f, %.4f] (%d seeds)", m->mean, m->lo, m->hi, m->n);
        const char *cells[] = {id, c->runs[g->members[0]].kind, runs, loss};
        doc_table_row(doc, cells, 4);
    }
    doc_table_end(doc);
    if (n >= 2) {
        const MeanInterval *best = &c->groups[order[0]].loss_at_flops, *next = &c->groups[order[1]].loss_at_flops;
        if (best->n < 2 || next->n < 2)
            snprintf(text, sizeof text, "Lowest: group %d, by %.4f nats over group %d; a group of one seed has"
                     " no interval, so nothing is separated yet (train more seeds).", order[0] + 1,
                     next->mean - best->mean, order[1] + 1);
        else
            snprintf(text, sizeof text, "Lowest: group %d, by %.4f nats over group %d; their intervals %s.",
                     order[0] + 1, next->mean - best->mean, order[1] + 1,
                     best->hi < next->lo ? "do not overlap" : "overlap: the difference is not resolved");
        doc_para(doc, "", text);
    }
}

/* The groups at equal FLOPs: one table per equal-FLOPs set. */
static void key_equal_flops(Doc *doc, const Comparison *c, const char *compare_error) {
    char text[2400];
    if (!c) {
        snprintf(text, sizeof text, "No comparison at equal FLOPs: %.2300s", compare_error);
        doc_para(doc, "note", text);
        return;
    }
    int any = 0;
    for (int g = 0; g < c->n_groups; g++) any |= c->groups[g].loss_at_flops.n > 0;
    if (!any) {
        doc_para(doc, "note", "No comparison at equal FLOPs: no run has finished its schedule yet.");
        return;
    }
    for (int set = 0; set < c->n_flop_sets; set++)
        for (int g = 0; g < c->n_groups; g++) {
            /* one table per dataset of the set, at its first group */
            int first = c->groups[g].flop_set == set;
            for (int q = 0; q < g && first; q++)
                first = !(c->groups[q].flop_set == set &&
                          !strcmp(group_dataset(c, q), group_dataset(c, g)));
            if (first) key_flop_set(doc, c, set, group_dataset(c, g));
        }
}

/* Per run and label, where the label is encoded. */
static void key_encoded(Doc *doc, const ReportData *data) {
    if (data->n_labels == 0 || data->n_summaries == 0) {
        doc_para(doc, "note", "Where labels are encoded: no probe summaries yet (spiral probe).");
        return;
    }
    doc_para(doc, "", "Where each label is encoded (the probe summaries' verdict), per site.");
    const char *headers[] = {"run", "label", "encoded at"};
    doc_table_begin(doc, headers, 3);
    for (int r = 0; r < data->n_runs; r++) {
        int any = 0;
        for (int s = 0; s < data->n_summaries && !any; s++) any = data->summaries[s].run == r;
        if (!any) continue;
        for (int l = 0; l < data->n_labels; l++) {
            char where[1024];
            key_encoded_text(where, sizeof where, data, r, l);
            const char *cells[] = {data->runs[r].name, data->labels[l], where};
            doc_table_row(doc, cells, 3);
        }
    }
    doc_table_end(doc);
}

/* Per run, the direction of the selected heads' attention distance. */
static void key_attention(Doc *doc, const ReportData *data, const KeyResults *key) {
    int any = 0;
    for (int r = 0; r < key->n_runs; r++) any |= key->attention[r].known;
    if (!any) {
        doc_para(doc, "note", "Attention direction: no attention analysis yet (spiral analyze).");
        return;
    }
    doc_para(doc, "", "Attention direction: the selected heads' mean attention distance (tokens, 95%"
                      " interval) at the first and last loop step.");
    const char *headers[] = {"run", "first step", "last step", "direction"};
    doc_table_begin(doc, headers, 4);
    for (int r = 0; r < key->n_runs; r++) {
        const KeyAttention *a = &key->attention[r];
        if (!a->known) continue;
        char first[96], last[96];
        snprintf(first, sizeof first, "step %d: %.2f [%.2f, %.2f]", a->first_step, a->first, a->first_lo,
                 a->first_hi);
        snprintf(last, sizeof last, "step %d: %.2f [%.2f, %.2f]", a->last_step, a->last, a->last_lo, a->last_hi);
        const char *cells[] = {data->runs[r].name, first, last, key_attention_direction(a)};
        doc_table_row(doc, cells, 4);
    }
    doc_table_end(doc);
}

void report_section_key(Doc *doc, const ReportData *data, const Comparison *comparison,
                        const char *compare_error, const KeyResults *key) {
    text_printf(&doc->html, "<div class=\"key\">\n");
    doc_heading(doc, 2, "key", "Key results");
    key_losses(doc, data, comparison, key);
    key_equal_flops(doc, comparison, compare_error);
    key_encoded(doc, data);
    key_attention(doc, data, key);
    text_printf(&doc->html, "</div>\n");
}
