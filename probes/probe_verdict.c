/*
 * probe_verdict.c: a probe's margins over the random-model and lexical
 * controls, and its verdict (see probe_verdict.h).
 */
#include "probe_verdict.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "probe_stats.h"

/* The seed offset of the margins' bootstrap (probe_run.h lists the rest). */
#define VERDICT_SEED_OFFSET 6

const char *probe_verdict_name(int verdict) {
    return verdict == PROBE_ENCODED ? "encoded"
           : verdict == PROBE_NOT_ENCODED ? "not encoded" : "not tested";
}

/* The margin of probe p over control c: paired from both rows' test
 * counts when the store has them, else the unpaired interval. */
static int margin_over(Store *store, long long recording_id, const ProbeResult *p,
                       const ProbeResult *c, ProbeMargin *m) {
    memset(m, 0, sizeof *m);
    m->margin = m->lo = m->hi = NAN;
    if (!c || isnan(c->accuracy)) return 0;
    m->present = 1;
    int *a = NULL, *b = NULL, na = 0, nb = 0, status = 0;
    if (probe_store_read_counts(store, recording_id, p->label, p->site, p->iteration, p->scale,
                                p->control, &a, &na) ||
        probe_store_read_counts(store, recording_id, c->label, c->site, c->iteration, c->scale,
                                c->control, &b, &nb))
        status = -1;
    if (status == 0 && na > 0 && na == nb &&
        probe_paired_margin_ci(a, b, na, 0, p->seed + VERDICT_SEED_OFFSET, &m->margin, &m->lo,
                               &m->hi) == 0) {
        m->paired = 1;
    } else if (status == 0) {
        /* unpaired: each side's half-widths combined as if independent */
        m->margin = p->accuracy - c->accuracy;
        m->lo = m->margin - hypot(p->accuracy - p->ci_lo, c->ci_hi - c->accuracy);
        m->hi = m->margin + hypot(p->ci_hi - p->accuracy, c->accuracy - c->ci_lo);
    }
    free(a);
    free(b);
    return status;
}

int probe_verdict_judge(Store *store, long long recording_id, const ProbeResult *probe,
                        const ProbeResult *random, const ProbeResult *lexical,
                        ProbeVerdict *v) {
    memset(v, 0, sizeof *v);
    snprintf(v->label, sizeof v->label, "%s", probe->label);
    snprintf(v->site, sizeof v->site, "%s", probe->site);
    v->iteration = probe->iteration;
    v->scale = probe->scale;
    v->accuracy = probe->accuracy;
    v->ci_lo = probe->ci_lo;
    v->ci_hi = probe->ci_hi;
    if (margin_over(store, recording_id, probe, random, &v->random) ||
        margin_over(store, recording_id, probe, lexical, &v->lexical))
        return -1;
    if (!v->random.present || !v->lexical.present) v->verdict = PROBE_NOT_TESTED;
    else if (v->random.lo > 0 && v->lexical.lo > 0) v->verdict = PROBE_ENCODED;
    else v->verdict = PROBE_NOT_ENCODED;
    return 0;
}

/* The row of control in rows [from, to) with the key of p, or NULL. */
static const ProbeResult *find_control(const ProbeResult *rows, int from, int to,
                                       const ProbeResult *p, const char *control) {
    for (int i = from; i < to; i++) {
        const ProbeResult *r = &rows[i];
        if (r->iteration == p->iteration && r->scale == p->scale && !strcmp(r->site, p->site) &&
            !strcmp(r->control, control))
            return r;
    }
    return NULL;
}

int probe_verdicts_read(Store *store, long long recording_id, ProbeVerdict **verdicts, int *n) {
    *verdicts = NULL;
    *n = 0;
    char (*labels)[PROBE_LABEL_CAP] = NULL;
    int n_labels = 0, status = 0;
    if (probe_store_list_labels(store, recording_id, &labels, &n_labels)) return -1;
    for (int l = 0; l < n_labels && status == 0; l++) {
        ProbeResult *rows;
        int n_rows;
        if (probe_store_read_label(store, recording_id, labels[l], &rows, &n_rows)) {
            status = -1;
            break;
        }
        ProbeVerdict *grown = realloc(*verdicts, ((size_t)*n + n_rows + 1) * sizeof *grown);
        if (!grown) status = spiral_error("out of memory for probe verdicts");
        else *verdicts = grown;
        for (int i = 0; i < n_rows && status == 0; i++) {
            if (strcmp(rows[i].control, "none")) continue;
            status = probe_verdict_judge(store, recording_id, &rows[i],
                                         find_control(rows, 0, n_rows, &rows[i], "random_model"),
                                         find_control(rows, 0, n_rows, &rows[i], "lexical"),
                                         &(*verdicts)[(*n)++]);
        }
        free(rows);
    }
    free(labels);
    if (status) {
        free(*verdicts);
        *verdicts = NULL;
        *n = 0;
    }
    return status;
}
