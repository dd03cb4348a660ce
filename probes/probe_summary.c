/*
 * probe_summary.c: reading a probe report: a row by its key, whether a
 * probe beats its controls, and the per-site summaries (see probe_run.h).
 */
#include "probe_summary.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "probe_stats.h"
#include "config.h"

const ProbeResult *probe_report_find(const ProbeReport *report, const char *label,
                                     const char *site, int iteration, int scale,
                                     const char *control) {
    for (int i = 0; i < report->n_results; i++) {
        const ProbeResult *r = &report->results[i];
        if (r->iteration == iteration && r->scale == scale && !strcmp(r->label, label) &&
            !strcmp(r->site, site) && !strcmp(r->control, control))
            return r;
    }
    return NULL;
}

const ProbeVerdict *probe_report_verdict(const ProbeReport *report, const ProbeResult *probe) {
    for (int i = 0; i < report->n_verdicts; i++) {
        const ProbeVerdict *v = &report->verdicts[i];
        if (v->iteration == probe->iteration && v->scale == probe->scale &&
            !strcmp(v->label, probe->label) && !strcmp(v->site, probe->site))
            return v;
    }
    return NULL;
}

int probe_report_encoded(const ProbeReport *report, const ProbeResult *probe) {
    const ProbeVerdict *v = probe_report_verdict(report, probe);
    return v ? v->verdict : PROBE_NOT_TESTED;
}

int probe_report_judge(ProbeReport *report, Store *store) {
    report->verdicts = calloc((size_t)report->n_results + 1, sizeof *report->verdicts);
    if (!report->verdicts) return spiral_error("out of memory for probe verdicts");
    for (int i = 0; i < report->n_results; i++) {
        const ProbeResult *p = &report->results[i];
        if (strcmp(p->control, "none")) continue;
        const ProbeResult *random = probe_report_find(report, p->label, p->site, p->iteration,
                                                      p->scale, "random_model");
        const ProbeResult *lexical = probe_report_find(report, p->label, p->site, p->iteration,
                                                       p->scale, "lexical");
        if (probe_verdict_judge(store, report->recording_id, p, random, lexical,
                                &report->verdicts[report->n_verdicts++]))
            return -1;
    }
    return 0;
}

void probe_report_free(ProbeReport *report) {
    free(report->results);
    free(report->summaries);
    free(report->verdicts);
    memset(report, 0, sizeof *report);
}

/* The summaries of label: per site, the expected iteration and where the
 * label is encoded (see probe_run.h), appended to the report. */
static int summarize_label(ProbeReport *report, const char *label) {
    int first = -1, last = -1;
    for (int i = 0; i < report->n_results; i++)
        if (!strcmp(report->results[i].label, label)) {
            if (first < 0) first = i;
            last = i;
        }
    for (int i = first; i >= 0 && i <= last; i++) {
        const ProbeResult *r = &report->results[i];
        if (strcmp(r->control, "none")) continue;
        int seen = 0;
        for (int k = 0; k < report->n_summaries; k++)
            seen |= !strcmp(report->summaries[k].label, label) &&
                    !strcmp(report->summaries[k].site, r->site);
        if (seen) continue;
        ProbeSummary *s = &report->summaries[report->n_summaries++];
        memset(s, 0, sizeof *s);
        snprintf(s->label, sizeof s->label, "%s", label);
        snprintf(s->site, sizeof s->site, "%s", r->site);
        /* the site's probes, in iteration order (results are sorted) */
        double acc[SPIRAL_MAX_ITERS + 2];
        int n = 0, consecutive = 1, previous = 0;
        size_t used = (size_t)snprintf(s->encoded, sizeof s->encoded, "[");
        for (int j = i; j <= last; j++) {
            const ProbeResult *q = &report->results[j];
            if (strcmp(q->site, r->site) || strcmp(q->control, "none")) continue;
            if (n > 0 && q->iteration != previous + 1) consecutive = 0;
            previous = q->iteration;
            if (n < SPIRAL_MAX_ITERS + 2) acc[n++] = q->accuracy;
            else consecutive = 0;
            if (probe_report_encoded(report, q) == 1 && used < sizeof s->encoded)
                used += (size_t)snprintf(s->encoded + used, sizeof s->encoded - used,
                                         "%s{\"iteration\": %d, \"scale\": %d}",
                                         used > 1 ? ", " : "", q->iteration, q->scale);
        }
        if (used < sizeof s->encoded) snprintf(s->encoded + used, sizeof s->encoded - used, "]");
        s->expected_iteration = NAN;
        double expected;
        if (n >= 2 && consecutive && probe_expected_layer(acc, n - 1, 1, &expected) == 0)
            s->expected_iteration = r->iteration + expected;
    }
    return 0;
}

int probe_summarize(ProbeReport *report, const char *const *labels, int n_labels) {
    /* at most one summary per (label, site) */
    report->summaries = calloc((size_t)report->n_results + 1, sizeof *report->summaries);
    if (!report->summaries) return spiral_error("out of memory for summaries");
    for (int l = 0; l < n_labels; l++)
        if (summarize_label(report, labels[l])) return -1;
    return 0;
}
