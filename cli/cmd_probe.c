/*
 * cmd_probe.c: `spiral probe`: linear probes with controls on every
 * recorded state of a run (probes/probe_run.h does the work), then a table
 * of the results and, per label, the expected iteration and where the
 * label is encoded.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "error.h"
#include "parallel.h"
#include "probe_run.h"
#include "store.h"

#define MAX_LABELS 256

static const char *help =
    "usage: spiral probe --store S.db --label a,b[,gen.lag1,...] [--run RUN] [--data DATASET]\n"
    "                    [--split test] [--seed 1] [--max-examples 20000]\n"
    "                    [--controls all|none|LIST] [--lexical-window K] [--top 16]\n"
    "                    [--tol 1e-4] [--max-iter 2000] [--threads N] [--replace] [--quiet]\n"
    "\n"
    "Fits, for every recorded (site, iteration, scale) of RUN's recording on\n"
    "DATASET and every label, a multinomial logistic regression that reads the\n"
    "state and predicts the label, and stores the results (probe_results,\n"
    "probe_summaries). Sequences are split 60/20/20 into train, validation and\n"
    "test; accuracy has a 95% bootstrap interval over test sequences. A latent\n"
    "row takes the label of its chunk's last token. The L2 strength is chosen\n"
    "on validation from 1e-1, 1e-2, 1e-3, 1e-4 and, while the weakest is the\n"
    "best, on down by factors of 10 to 1e-8; each fit runs L-BFGS until\n"
    "max |grad| <= --tol or --max-iter iterations (the count of fits that did\n"
    "not converge is printed).\n"
    "Without --data (--run), the only dataset with a recording of RUN (the only\n"
    "run recorded on DATASET) on the split is used, and named on stderr; with\n"
    "several, the error lists them.\n"
    "\n"
    "Labels: the dataset's (--label all: every one of them), or generic ones\n"
    "for any corpus: gen.lagK (the token K positions back, gen.lag0 the token\n"
    "itself), gen.nextK (the token K ahead), gen.slotG (position mod G);\n"
    "token labels keep the --top most frequent tokens plus 'other'.\n"
    "\n"
    "Controls (--controls, comma-separated names or letters), each fitted on\n"
    "the same rows and splits:\n"
    "  a control_task  Hewitt & Liang: a random label per token type\n"
    "  b random_model  the same probe on a randomly initialized model\n"
    "  c position      features = one-hot position in the window\n"
    "  d permuted      label vectors permuted across sequences\n"
    "  e lexical       features = one-hot of the row's token and the K - 1\n"
    "                  before it (K = --lexical-window; default: the site's\n"
    "                  chunk size g, so the g tokens a latent summarizes, and\n"
    "                  the token itself at token and coda sites)\n"
    "Verdict per (label, site, iteration): 'encoded' when the probe's margin\n"
    "over the random model (b) and over the lexical control (e) both have a\n"
    "95% interval above 0 (paired bootstrap over test sequences), 'not\n"
    "encoded' when either does not, 'not tested' when (b) or (e) is missing.\n"
    "The control task, position and permuted controls are reported beside it\n"
    "but do not decide it: with a few token types the control task decodes\n"
    "at ~1.0 wherever the token's identity is present.\n"
    "\n"
    "Probes already stored are kept (an interrupted run resumes; adding a\n"
    "control fits only it); --replace fits the labels again. --max-examples\n"
    "caps training rows per probe; --threads fits that many probes at once\n"
    "(the thread pool's size; default: $SPIRAL_THREADS, else every core).\n";

/* "0.712" or "-" for a missing value. */
static const char *number(char *buffer, size_t size, const ProbeResult *r) {
    if (!r || isnan(r->accuracy)) snprintf(buffer, size, "-");
    else snprintf(buffer, size, "%.3f", r->accuracy);
    return buffer;
}

/* "+0.123 [+0.080, +0.170]" or "-" for a missing control. */
static const char *margin_text(char *buffer, size_t size, const ProbeMargin *m) {
    if (!m->present) snprintf(buffer, size, "-");
    else snprintf(buffer, size, "%+.3f [%+.3f, %+.3f]%s", m->margin, m->lo, m->hi,
                  m->paired ? "" : "u");
    return buffer;
}

/* The table of probes (one line per probe with its controls and margins),
 * then per label its verdict at each site and iteration. */
static void print_report(const ProbeReport *report, const char *const *labels, int n_labels) {
    printf("%-14s %-10s %4s %5s  %-22s %7s %7s %7s %8s %8s %7s  %-25s %-25s %s\n", "label", "site",
           "iter", "scale", "accuracy [95% CI]", "control", "select.", "random", "position",
           "permuted", "lexical", "margin over random", "margin over lexical", "verdict");
    int not_converged = 0, fits = 0;
    for (int i = 0; i < report->n_results; i++) {
        const ProbeResult *r = &report->results[i];
        if (isnan(r->l2)) continue;
        fits++;
        not_converged += !r->converged;
    }
    for (int i = 0; i < report->n_results; i++) {
        const ProbeResult *p = &report->results[i];
        if (strcmp(p->control, "none")) continue;
        const ProbeResult *c[PROBE_N_CONTROLS];
        for (int k = 0; k < PROBE_N_CONTROLS; k++)
            c[k] = probe_report_find(report, p->label, p->site, p->iteration, p->scale,
                                     probe_control_name(1 << k));
        char acc[64], b[PROBE_N_CONTROLS][16], selectivity[16], mr[48], ml[48];
        snprintf(acc, sizeof acc, "%.3f [%.3f, %.3f]", p->accuracy, p->ci_lo, p->ci_hi);
        if (c[0] && !isnan(c[0]->accuracy))
            snprintf(selectivity, sizeof selectivity, "%+.3f", p->accuracy - c[0]->accuracy);
        else
            snprintf(selectivity, sizeof selectivity, "-");
        const ProbeVerdict *v = probe_report_verdict(report, p);
        ProbeMargin none = {0};
        printf("%-14s %-10s %4d %5d  %-22s %7s %7s %7s %8s %8s %7s  %-25s %-25s %s\n", p->label,
               p->site, p->iteration, p->scale, acc, number(b[0], 16, c[0]), selectivity,
               number(b[1], 16, c[1]), number(b[2], 16, c[2]), number(b[3], 16, c[3]),
               number(b[4], 16, c[4]), margin_text(mr, sizeof mr, v ? &v->random : &none),
               margin_text(ml, sizeof ml, v ? &v->lexical : &none),
               probe_verdict_name(v ? v->verdict : PROBE_NOT_TESTED));
    }
    printf("(margins: accuracy minus the control's on the same test rows, 95%% paired bootstrap "
           "interval; u: unpaired, from rows stored without test outcomes)\n");
    if (not_converged)
        printf("%d of %d fitted rows did not reach the gradient tolerance within the iteration cap "
               "(probe_results.converged = 0; raise --max-iter)\n", not_converged, fits);
    else
        printf("all %d fitted rows converged\n", fits);
    printf("\n");
    for (int l = 0; l < n_labels; l++) {
        printf("%s: expected iteration", labels[l]);
        int any = 0;
        for (int k = 0; k < report->n_summaries; k++) {
            const ProbeSummary *s = &report->summaries[k];
            if (strcmp(s->label, labels[l])) continue;
            if (isnan(s->expected_iteration)) printf("%s %s -", any++ ? "," : "", s->site);
            else printf("%s %s %.2f", any++ ? "," : "", s->site, s->expected_iteration);
        }
        printf("\n");
        static const int verdicts[3] = {PROBE_ENCODED, PROBE_NOT_ENCODED, PROBE_NOT_TESTED};
        for (int k = 0; k < 3; k++) {
            int count = 0;
            for (int i = 0; i < report->n_verdicts; i++) {
                const ProbeVerdict *v = &report->verdicts[i];
                if (strcmp(v->label, labels[l]) || v->verdict != verdicts[k]) continue;
                if (count++ == 0) printf("%*s  %s at:", (int)strlen(labels[l]), "",
                                         probe_verdict_name(verdicts[k]));
                if (v->scale > 1) printf("%s %s %d (g=%d)", count > 1 ? "," : "", v->site, v->iteration, v->scale);
                else printf("%s %s %d", count > 1 ? "," : "", v->site, v->iteration);
            }
            if (count) printf("\n");
        }
    }
}

/* Parses --controls: all, none, or a comma list of names / letters a-e. */
static int parse_controls(const char *text, int *controls) {
    if (!strcmp(text, "all")) {
        *controls = PROBE_CONTROL_ALL;
        return 0;
    }
    *controls = 0;
    if (!strcmp(text, "none")) return 0;
    char buffer[256];
    snprintf(buffer, sizeof buffer, "%s", text);
    for (char *tok = strtok(buffer, ","); tok; tok = strtok(NULL, ",")) {
        int bit = probe_control_bit(tok);
        if (!bit) return -1;
        *controls |= bit;
    }
    return 0;
}

int cmd_probe(int argc, char **argv) {
    const char *run = NULL, *data = NULL, *store_path = NULL, *label_text = NULL;
    const char *seed_text = NULL, *max_text = NULL, *controls_text = NULL, *top_text = NULL;
    const char *threads_text = NULL, *tol_text = NULL, *iter_text = NULL, *window_text = NULL;
    ProbeOptions options;
    probe_options_default(&options);
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    int quiet = 0;
    CliOption table[] = {
        {"--run", &run, NULL},
        {"--data", &data, NULL},
        {"--store", &store_path, NULL},
        {"--label", &label_text, NULL},
        {"--split", &options.split, NULL},
        {"--seed", &seed_text, NULL},
        {"--max-examples", &max_text, NULL},
        {"--controls", &controls_text, NULL},
        {"--top", &top_text, NULL},
        {"--threads", &threads_text, NULL},
        {"--tol", &tol_text, NULL},
        {"--max-iter", &iter_text, NULL},
        {"--lexical-window", &window_text, NULL},
        {"--replace", NULL, &options.replace},
        {"--quiet", NULL, &quiet},
    };
    if (cli_parse_options("probe", argc, argv, table, (int)(sizeof table / sizeof table[0]),
                          NULL))
        return 2;
    if (!store_path || !label_text)
        return cli_usage_error("probe", "--store and --label are required");
    long v;
    if (seed_text) {
        if (cli_parse_long("--seed", seed_text, 0, 2147483647L, &v)) return 2;
        options.seed = (unsigned long)v;
    }
    if (max_text) {
        if (cli_parse_long("--max-examples", max_text, 2, 100000000L, &v)) return 2;
        options.max_train = (int)v;
    }
    if (top_text) {
        if (cli_parse_long("--top", top_text, 1, 65536, &v)) return 2;
        options.top_n = (int)v;
    }
    if (threads_text) {
        if (cli_parse_long("--threads", threads_text, 1, 256, &v)) return 2;
        if (parallel_set_threads((int)v)) return cli_fail("probe");
    }
    if (tol_text) {
        if (cli_parse_double("--tol", tol_text, &options.tol)) return 2;
        if (!(options.tol > 0) || options.tol > 1)
            return cli_usage_error("probe", "--tol: expected a number in (0, 1], got '%s'", tol_text);
    }
    if (iter_text) {
        if (cli_parse_long("--max-iter", iter_text, 1, 1000000, &v)) return 2;
        options.max_iter = (int)v;
    }
    if (window_text) {
        if (cli_parse_long("--lexical-window", window_text, 1, 4096, &v)) return 2;
        options.lexical_window = (int)v;
    }
    if (controls_text && parse_controls(controls_text, &options.controls))
        return cli_usage_error("probe", "--controls: expected all, none or a list of control_task, "
                               "random_model, position, permuted, lexical (or a, b, c, d, e), got '%s'",
                               controls_text);

    Store store;
    if (store_open(&store, store_path, 0)) return cli_fail("probe");
    CliChosen chosen;
    if (cli_default_recording("probe", &store, options.split, &run, &data, &chosen)) {
        store_close(&store);
        return 1;
    }
    char buffer[4096];
    const char *labels[MAX_LABELS];
    int n_labels = 0, status = 1;
    Dataset ds = {0};
    snprintf(buffer, sizeof buffer, "%s", label_text);
    if (!strcmp(label_text, "all")) {
        if (store_dataset_load(&store, data, &ds, NULL)) goto done;
        if (ds.n_labels == 0) {
            spiral_error("dataset %s has no labels of its own; name generic ones (gen.lag1, ...)", data);
            goto done;
        }
        for (int l = 0; l < ds.n_labels && l < MAX_LABELS; l++) labels[n_labels++] = ds.labels[l].name;
    } else {
        for (char *tok = strtok(buffer, ","); tok; tok = strtok(NULL, ",")) {
            if (n_labels == MAX_LABELS) {
                status = cli_usage_error("probe", "--label: at most %d labels", MAX_LABELS);
                goto done;
            }
            labels[n_labels++] = tok;
        }
        if (n_labels == 0) {
            status = cli_usage_error("probe", "--label: no label given");
            goto done;
        }
    }
    ProbeReport report;
    Progress progress = cli_progress(!quiet);
    options.progress = &progress;
    if (probe_run(&store, run, data, labels, n_labels, &options, &report)) goto done;
    printf("probes of run %s on %s (%s split): %d windows of %d tokens; %d rows fitted now, "
           "%d already stored (%.1f s)\n\n", run, data, options.split, report.n_sequences,
           report.seq_len, report.fitted_now, report.skipped, report.seconds);
    print_report(&report, labels, n_labels);
    probe_report_free(&report);
    status = 0;
done:
    if (status == 1) cli_fail("probe");
    dataset_free(&ds);
    store_close(&store);
    return status;
}
