/*
 * test_probe_run.c: probes of a whole recording, end to end through the
 * store (probes/probe_run.h).
 *
 * Part 1, a recording with known answers: a run row and a recording whose
 * states are written by hand. At token iteration 0 the features carry a
 * label y as x = (2y - 1) mu e_0 + N(0, I) (d = 8), so the Bayes accuracy
 * is Phi(mu); the latent site carries, per chunk, the label of the chunk's
 * LAST member token the same way; token iteration 1 is pure noise. Then:
 *   - the probe recovers the Bayes accuracy within 1 point at token
 *     iteration 0, and at the latent site (proof that a latent row reads
 *     its last member's label: any other member would give chance);
 *   - on pure noise the majority baseline lies inside the probe's CI;
 *   - the signal is "encoded" (above all four controls, whose features do
 *     not carry it) where it is present and nowhere else; a label that
 *     is noise everywhere is encoded nowhere;
 *   - every fit's gradient norm at the solution, recomputed, is <= 1e-6.
 * Part 2, a trained tiny run recorded by record_run:
 *   - a row for every (site, iteration, scale, control);
 *   - token parity is decoded (> 0.95) at token iteration 0, far above the
 *     position and permutation controls; a coin flip per token is at the
 *     majority level and encoded nowhere; gen.slot2 is perfect from
 *     position features;
 *   - progress reports count every probe fitted, in order, and only the
 *     last is `finished`;
 *   - the store's readers for the report (data/probe_store.h) give the
 *     probes (label in request order, site, iteration, scale) with their
 *     control task's accuracy, and the summaries, as the report holds them;
 *   - a latent row's token and label (probes/probe_rows.h) are its chunk's
 *     last member's;
 *   - identical accuracies for the same seed with 1 or 2 threads of the
 *     pool; resume refits only the missing rows, identically; another seed
 *     needs replace;
 *   - bad input: unknown label (the available ones listed), malformed
 *     generic label, unrecorded run (how to record), one-class label, too
 *     few sequences;
 *   - a dense run: its random-model control maps every layer to an
 *     iteration as the recording does.
 */
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "error.h"
#include "data_fixtures.h"
#include "harness.h"
#include "parallel.h"
#include "probe_rows.h"
#include "probe_store.h"
#include "probe_run.h"
#include "attention_stats.h"
#include "record.h"
#include "scale.h"
#include "steps.h"
#include "store.h"
#include "train.h"

static char dir[256];

/* ------------------------------------------------------------------ */
/* Part 1: a recording with known answers                              */

#define SYN_SEQS 400
#define SYN_L 64
#define SYN_D 8
#define SYN_MU 1.5        /* token site: Bayes accuracy Phi(1.5) = 0.933 */
#define SYN_MU_LATENT 2.0 /* latent site: Phi(2) = 0.977 */

/* Inserts one state (rows x SYN_D floats). */
static void insert_state(Store *store, long long recording, int seq, int iteration, const char *site,
                         int scale, int rows, const float *data) {
    sqlite3_stmt *stmt;
    sqlite3_prepare_v2(store->db, "INSERT INTO states VALUES(?,?,?,?,?,?,?,'f32',?)", -1, &stmt, NULL);
    sqlite3_bind_int64(stmt, 1, recording);
    sqlite3_bind_int(stmt, 2, seq);
    sqlite3_bind_int(stmt, 3, iteration);
    sqlite3_bind_text(stmt, 4, site, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 5, scale);
    sqlite3_bind_int(stmt, 6, rows);
    sqlite3_bind_int(stmt, 7, SYN_D);
    sqlite3_bind_blob(stmt, 8, data, rows * SYN_D * (int)sizeof(float), SQLITE_STATIC);
    CHECK(sqlite3_step(stmt) == SQLITE_DONE, "insert state: %s", sqlite3_errmsg(store->db));
    sqlite3_finalize(stmt);
}

/* x = (2y - 1) mu e_0 + N(0, I), or pure noise for y < 0. */
static void features(float *x, int y, double mu, gsl_rng *rng) {
    for (int j = 0; j < SYN_D; j++) x[j] = (float)gsl_ran_gaussian(rng, 1.0);
    if (y >= 0) x[0] += (float)((2 * y - 1) * mu);
}

/* The dataset, run, recording and states of part 1. */
static void make_synthetic(Store *store) {
    const char *names[3] = {"signal", "noise", "const"};
    int classes[3] = {2, 2, 1};
    Dataset ds;
    dataset_init(&ds, "test", 8, 3, names, classes, 0);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 42);
    for (int s = 0; s < SYN_SEQS; s++) {
        uint16_t tokens[SYN_L];
        int32_t labels[3 * SYN_L];
        for (int i = 0; i < SYN_L; i++) {
            tokens[i] = (uint16_t)(1 + gsl_rng_uniform_int(rng, 7));
            labels[i] = (int32_t)gsl_rng_uniform_int(rng, 2);
            labels[SYN_L + i] = (int32_t)gsl_rng_uniform_int(rng, 2);
            labels[2 * SYN_L + i] = 0;
        }
        dataset_append(&ds, tokens, SYN_L, labels, NULL, SPLIT_TEST);
    }
    long long dataset_id, run_id;
    CHECK(store_dataset_save(store, "syn", &ds, 0, &dataset_id) == 0, "save: %s", spiral_last_error());
    const char *config = "{\"model\": {\"vocab_size\": 8, \"d_model\": 8, \"n_heads\": 2, \"d_ff\": 16,"
                         " \"schedule\": [{\"g\": 4, \"offset\": 1}, 1]}}";
    CHECK(store_run_create(store, "fake", "spiral", config, dataset_id, "test", &run_id) == 0,
          "run: %s", spiral_last_error());
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO recordings(run_id, dataset_id, split, seq_len, n_sequences,"
             " dtype, checkpoint_step, d_model, distances, status) VALUES(%lld, %lld, 'test', %d, %d,"
             " 'f32', 0, %d, '[]', 'done')", run_id, dataset_id, SYN_L, SYN_SEQS, SYN_D);
    store_exec(store, sql);
    long long recording = sqlite3_last_insert_rowid(store->db);
    IterSpec spec = {4, 1, 3};
    ChunkGeometry geo = chunk_geometry(SYN_L, &spec);
    int last[SYN_L];
    chunk_positions(last, &geo);
    store_begin(store);
    for (int s = 0; s < SYN_SEQS; s++) {
        int64_t index[SYN_L];
        float x[SYN_L * SYN_D];
        for (int i = 0; i < SYN_L; i++) index[i] = (int64_t)s * SYN_L + i;
        const int32_t *signal = ds.labels[0].values + (size_t)s * SYN_L;
        sqlite3_stmt *stmt;
        sqlite3_prepare_v2(store->db, "INSERT INTO record_sequences VALUES(?,?,?)", -1, &stmt, NULL);
        sqlite3_bind_int64(stmt, 1, recording);
        sqlite3_bind_int(stmt, 2, s);
        sqlite3_bind_blob(stmt, 3, index, sizeof index, SQLITE_STATIC);
        sqlite3_step(stmt);
        sqlite3_finalize(stmt);
        for (int i = 0; i < SYN_L; i++) features(x + i * SYN_D, signal[i], SYN_MU, rng);
        insert_state(store, recording, s, 0, "token", 1, SYN_L, x);
        for (int j = 0; j < geo.J; j++) features(x + j * SYN_D, signal[last[j]], SYN_MU_LATENT, rng);
        insert_state(store, recording, s, 0, "latent_in", 4, geo.J, x);
        for (int i = 0; i < SYN_L; i++) features(x + i * SYN_D, -1, 0, rng);
        insert_state(store, recording, s, 1, "token", 1, SYN_L, x);
    }
    store_commit(store);
    gsl_rng_free(rng);
    dataset_free(&ds);
}

static void test_synthetic(Store *store) {
    make_synthetic(store);
    ProbeOptions o;
    probe_options_default(&o);
    parallel_set_threads(2);
    o.tol = 1e-6;  /* stricter than the default: these problems are well conditioned */
    const char *labels[2] = {"signal", "noise"};
    ProbeReport report;
    CHECK(probe_run(store, "fake", "syn", labels, 2, &o, &report) == 0, "probe fake: %s", spiral_last_error());
    /* 3 sites x 2 labels x (probe + 5 controls) */
    CHECK(report.n_results == 36 && report.fitted_now == 36, "%d rows, %d fitted now (expected 36)",
          report.n_results, report.fitted_now);

    double bayes = gsl_cdf_ugaussian_P(SYN_MU), bayes_latent = gsl_cdf_ugaussian_P(SYN_MU_LATENT);
    const ProbeResult *tok = probe_report_find(&report, "signal", "token", 0, 1, "none");
    const ProbeResult *lat = probe_report_find(&report, "signal", "latent_in", 0, 4, "none");
    const ProbeResult *noise = probe_report_find(&report, "signal", "token", 1, 1, "none");
    CHECK(tok && lat && noise, "missing rows");
    if (!tok || !lat || !noise) return;
    printf("token 0: accuracy %.4f (Bayes %.4f) on %d test rows, l2 %g, %d iterations, |grad| %.1e\n",
           tok->accuracy, bayes, tok->n_test, tok->l2, tok->iterations, tok->grad_norm);
    printf("latent_in 0 (g=4, offset 1): accuracy %.4f (Bayes %.4f) on %d test rows\n", lat->accuracy,
           bayes_latent, lat->n_test);
    printf("noise: accuracy %.4f [%.4f, %.4f], majority %.4f\n", noise->accuracy, noise->ci_lo,
           noise->ci_hi, noise->majority);
    CHECK(fabs(tok->accuracy - bayes) < 0.01, "token site: accuracy %.4f vs Bayes %.4f", tok->accuracy, bayes);
    CHECK(fabs(lat->accuracy - bayes_latent) < 0.01,
          "latent site (label of the last member): accuracy %.4f vs Bayes %.4f", lat->accuracy, bayes_latent);
    CHECK(tok->n_train == 240 * SYN_L && tok->n_val == 80 * SYN_L && tok->n_test == 80 * SYN_L,
          "60/20/20 split by sequence: %d / %d / %d rows", tok->n_train, tok->n_val, tok->n_test);
    CHECK(lat->n_test == 80 * 17, "latent rows: %d test rows, expected 80 sequences x 17 chunks", lat->n_test);
    CHECK(noise->ci_lo <= noise->majority && noise->majority <= noise->ci_hi,
          "pure noise: majority %.4f outside the CI [%.4f, %.4f]", noise->majority, noise->ci_lo, noise->ci_hi);
    CHECK(tok->ci_lo < tok->accuracy && tok->accuracy < tok->ci_hi && tok->ci_hi - tok->ci_lo < 0.05,
          "CI [%.4f, %.4f] around %.4f", tok->ci_lo, tok->ci_hi, tok->accuracy);

    CHECK(probe_report_encoded(&report, tok) == 1, "signal at token 0 must be encoded");
    CHECK(probe_report_encoded(&report, lat) == 1, "signal at latent_in 0 must be encoded");
    CHECK(probe_report_encoded(&report, noise) == 0, "signal at token 1 (noise) must not be encoded");
    /* the margins are paired (same test rows): the margin is exactly the
     * difference of the two accuracies, inside its own interval */
    const ProbeVerdict *v = probe_report_verdict(&report, tok);
    const ProbeResult *tok_random = probe_report_find(&report, "signal", "token", 0, 1, "random_model");
    const ProbeResult *tok_lexical = probe_report_find(&report, "signal", "token", 0, 1, "lexical");
    CHECK(v && tok_random && tok_lexical && v->random.paired && v->lexical.paired &&
              fabs(v->random.margin - (tok->accuracy - tok_random->accuracy)) < 1e-12 &&
              fabs(v->lexical.margin - (tok->accuracy - tok_lexical->accuracy)) < 1e-12 &&
              v->random.lo < v->random.margin && v->random.margin < v->random.hi &&
              v->lexical.lo > 0,
          "token 0 margins: random %+.4f [%+.4f, %+.4f] paired %d, lexical %+.4f [%+.4f, %+.4f]",
          v ? v->random.margin : NAN, v ? v->random.lo : NAN, v ? v->random.hi : NAN,
          v ? v->random.paired : -1, v ? v->lexical.margin : NAN, v ? v->lexical.lo : NAN,
          v ? v->lexical.hi : NAN);
    /* the paired interval is narrower than the unpaired one built from the
     * two accuracies' own intervals */
    if (v && tok_random)
        CHECK(v->random.hi - v->random.lo <
                  hypot(tok->accuracy - tok->ci_lo, tok_random->ci_hi - tok_random->accuracy) +
                      hypot(tok->ci_hi - tok->accuracy, tok_random->accuracy - tok_random->ci_lo),
              "paired interval %.4f wide, not narrower than the unpaired", v->random.hi - v->random.lo);
    for (int i = 0; i < report.n_results; i++) {
        const ProbeResult *r = &report.results[i];
        if (!strcmp(r->label, "noise") && !strcmp(r->control, "none"))
            CHECK(probe_report_encoded(&report, r) == 0, "noise label encoded at %s %d", r->site, r->iteration);
        if (strcmp(r->control, "none") && !strcmp(r->label, "signal"))
            CHECK(r->accuracy < r->majority + 0.03,
                  "control %s at %s %d reaches %.3f (majority %.3f) on a label its features do not carry",
                  r->control, r->site, r->iteration, r->accuracy, r->majority);
        if (!isnan(r->l2))
            CHECK(r->converged && r->grad_norm <= 1e-6 && r->grad_norm > 0,
                  "%s %s %d %s: gradient norm %.2e at the solution", r->label, r->site, r->iteration,
                  r->control, r->grad_norm);
    }
    int found = 0;
    for (int k = 0; k < report.n_summaries; k++) {
        const ProbeSummary *s = &report.summaries[k];
        if (!strcmp(s->label, "signal") && !strcmp(s->site, "token")) {
            found = 1;
            CHECK(!strcmp(s->encoded, "[{\"iteration\": 0, \"scale\": 1}]"), "summary encoded %s", s->encoded);
        }
    }
    CHECK(found && store_count(store, "SELECT count(*) FROM probe_summaries") == 4,
          "summaries: one per (label, site): %lld", store_count(store, "SELECT count(*) FROM probe_summaries"));
    probe_report_free(&report);

    /* a one-class label is an error */
    const char *one[1] = {"const"};
    CHECK(probe_run(store, "fake", "syn", one, 1, &o, &report) != 0 &&
          strstr(spiral_last_error(), "single class"), "one-class label: %s", spiral_last_error());
}

/* ------------------------------------------------------------------ */
/* Part 2: a trained tiny run                                           */

/* x_{i+1} = (x_i + x_{i-1}) mod 7 + 1, 10% noise; labels: parity of the
 * token, a coin flip per token, a constant. */
static void make_language(Dataset *ds) {
    const char *names[3] = {"parity", "coin", "const"};
    int classes[3] = {2, 2, 1};
    dataset_init(ds, "test", 8, 3, names, classes, 0);
    uint64_t state = 777;
    gsl_rng *coin = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(coin, 7);
    for (int d = 0; d < 200; d++) {
        uint16_t tokens[40];
        int32_t labels[3 * 40];
        recurrence_document(tokens, 40, d, &state);
        for (int i = 0; i < 40; i++) {
            labels[i] = tokens[i] % 2;
            labels[40 + i] = (int32_t)gsl_rng_uniform_int(coin, 2);
            labels[80 + i] = 0;
        }
        dataset_append(ds, tokens, 40, labels, NULL, d < 120 ? SPLIT_TRAIN : d < 140 ? SPLIT_VAL : SPLIT_TEST);
    }
    gsl_rng_free(coin);
}

static void train_run(Store *store, const char *name, const char *model) {
    char path[512], text[1024];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    snprintf(text, sizeof text, "{\"model\": %s, \"train\": {\"dataset\": \"lang\", \"seq_len\": 24,"
             " \"batch_size\": 8, \"steps\": 60, \"lr\": 0.003, \"eval_every\": 0, \"checkpoint_every\": 60}}", model);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    TrainOptions quiet = {0};
    TrainResult result;
    CHECK(train_new(store, name, path, &quiet, &result) == 0, "train %s: %s", name, spiral_last_error());
}

/* 1 if a and b hold the same rows with bit-identical results. */
static int same_results(const ProbeReport *a, const ProbeReport *b) {
    if (a->n_results != b->n_results) return 0;
    for (int i = 0; i < a->n_results; i++) {
        const ProbeResult *x = &a->results[i], *y = &b->results[i];
        if (strcmp(x->label, y->label) || strcmp(x->site, y->site) || strcmp(x->control, y->control) ||
            x->iteration != y->iteration || x->accuracy != y->accuracy || x->ci_lo != y->ci_lo ||
            x->ci_hi != y->ci_hi || x->macro_f1 != y->macro_f1 || x->n_train != y->n_train ||
            x->iterations != y->iterations || !(x->l2 == y->l2 || (isnan(x->l2) && isnan(y->l2))))
            return 0;
    }
    return 1;
}

/* What a Progress of probe_run told: the reports, in order. */
typedef struct {
    int n, in_order, finished_early, finished_last;
    long last_done, last_total;
} ProgressLog;

static void log_progress(void *user, const ProgressReport *r) {
    ProgressLog *log = user;
    if (log->n == 0) log->in_order = 1;
    if (strcmp(r->task, "probe") || strcmp(r->unit, "probes") || r->done <= log->last_done ||
        r->done > r->total)
        log->in_order = 0;
    if (log->finished_last) log->finished_early = 1;
    log->finished_last = r->finished;
    log->last_done = r->done;
    log->last_total = r->total;
    log->n++;
}

/* The store's readers for the report agree with probe_run's report. */
static void check_store_readers(Store *store, const ProbeReport *report) {
    ProbeWithControl *probes;
    ProbeSummary *summaries;
    int n_probes, n_summaries;
    CHECK(probe_store_read_probes(store, report->recording_id, &probes, &n_probes) == 0,
          "read probes: %s", spiral_last_error());
    int expected = 0, mismatched = 0;
    for (int i = 0; i < report->n_results; i++) expected += !strcmp(report->results[i].control, "none");
    CHECK(n_probes == expected, "%d probes read back, expected %d", n_probes, expected);
    /* the report's rows are by label (request order), site, iteration, scale, control */
    for (int i = 0, k = 0; i < report->n_results && k < n_probes; i++) {
        const ProbeResult *r = &report->results[i];
        if (strcmp(r->control, "none")) continue;
        const ProbeWithControl *p = &probes[k++];
        const ProbeResult *task = probe_report_find(report, r->label, r->site, r->iteration,
                                                    r->scale, "control_task");
        mismatched += strcmp(p->probe.label, r->label) || strcmp(p->probe.site, r->site) ||
                      p->probe.iteration != r->iteration || p->probe.scale != r->scale ||
                      p->probe.accuracy != r->accuracy || p->probe.ci_lo != r->ci_lo ||
                      p->probe.n_test != r->n_test || !task ||
                      p->control_task_accuracy != task->accuracy;
    }
    CHECK(mismatched == 0, "%d probes read back differ from the report's", mismatched);
    free(probes);
    CHECK(probe_store_read_summaries(store, report->recording_id, &summaries, &n_summaries) == 0 &&
              n_summaries == report->n_summaries,
          "summaries read back: %d, report %d: %s", n_summaries, report->n_summaries, spiral_last_error());
    mismatched = 0;
    for (int k = 0; k < n_summaries && k < report->n_summaries; k++) {
        const ProbeSummary *a = &summaries[k], *b = &report->summaries[k];
        mismatched += strcmp(a->label, b->label) || strcmp(a->site, b->site) ||
                      strcmp(a->encoded, b->encoded) ||
                      !(a->expected_iteration == b->expected_iteration ||
                        (isnan(a->expected_iteration) && isnan(b->expected_iteration)));
    }
    CHECK(mismatched == 0, "%d summaries read back differ from the report's", mismatched);
    free(summaries);
}

/* A latent row of the run's g = 4, offset 1 step stands for its chunk's
 * last member: token and label. */
static void check_row_rule(Store *store) {
    RunRow row = {0};
    SpiralConfig cfg;
    ChunkGeometry geo;
    int L = 10, pos[10];
    CHECK(store_run_find(store, "spiral", &row) == 0 && config_parse(&cfg, row.config, "spiral") == 0 &&
              site_geometry(&cfg, "latent_in", 0, 4, L, &geo) == 0,
          "geometry: %s", spiral_last_error());
    store_run_free(&row);
    site_row_positions(&geo, pos);
    size_t window_index[10];
    int labels[2 * 10], wrong = 0;
    for (int p = 0; p < L; p++) {
        window_index[p] = 100 + (size_t)p;
        labels[p] = p;
        labels[L + p] = 1000 + p;
    }
    /* chunks of 4 tokens offset by 1: {0, 1, 2}, {3 .. 6}, {7 .. 9}: last members 2, 6, 9 */
    const int last[3] = {2, 6, 9};
    CHECK(geo.J == 3, "%d latents over 10 tokens at g = 4, offset 1", geo.J);
    for (int j = 0; j < geo.J && j < 3; j++)
        wrong += row_token_index(window_index, pos, j) != 100 + (size_t)last[j] ||
                 row_label(labels, L, pos, 0, j) != last[j] ||
                 row_label(labels, L, pos, 1, j) != 1000 + last[j];
    CHECK(wrong == 0, "%d latent rows read another token than their chunk's last", wrong);
}

static void test_trained(Store *store) {
    Dataset ds;
    make_language(&ds);
    store_dataset_save(store, "lang", &ds, 0, NULL);
    dataset_free(&ds);
    train_run(store, "spiral", "{\"vocab_size\": 8, \"d_model\": 16, \"n_heads\": 2, \"d_ff\": 24,"
                               " \"schedule\": [{\"g\": 4, \"offset\": 1}, 2, 1]}");
    RecordOptions ro;
    record_options_default(&ro);
    ro.attention = attention_stats_summary();
    ro.n_sequences = 40;
    RecordResult recorded;
    CHECK(record_run(store, "spiral", "lang", &ro, &recorded) == 0, "record: %s", spiral_last_error());

    ProbeOptions o;
    probe_options_default(&o);
    parallel_set_threads(2);
    const char *labels[3] = {"parity", "coin", "gen.slot2"};
    ProbeReport report, again;
    ProgressLog log = {0};
    Progress progress = {log_progress, &log};
    o.progress = &progress;
    CHECK(probe_run(store, "spiral", "lang", labels, 3, &o, &report) == 0, "probe: %s", spiral_last_error());
    CHECK(log.n > 1 && log.in_order && !log.finished_early && log.finished_last &&
              log.last_done == 162 && log.last_total == 162,
          "progress: %d reports, in order %d, last %ld/%ld, finished early %d, last %d", log.n,
          log.in_order, log.last_done, log.last_total, log.finished_early, log.finished_last);
    o.progress = NULL;
    check_store_readers(store, &report);
    check_row_rule(store);
    /* sites: token 0..3, latent_in and latent_out at iterations 0 (g=4) and 1 (g=2), coda 3 */
    const char *sites[9] = {"token", "token", "token", "token", "latent_in", "latent_in", "latent_out",
                            "latent_out", "coda"};
    int iters[9] = {0, 1, 2, 3, 0, 1, 0, 1, 3}, scales[9] = {1, 1, 1, 1, 4, 2, 4, 2, 1};
    const char *controls[6] = {"none", "control_task", "random_model", "position", "permuted", "lexical"};
    int missing = 0;
    for (int l = 0; l < 3; l++)
        for (int k = 0; k < 9; k++)
            for (int c = 0; c < 6; c++)
                missing += !probe_report_find(&report, labels[l], sites[k], iters[k], scales[k], controls[c]);
    CHECK(missing == 0 && report.n_results == 162, "%d of 162 rows missing (%d rows)", missing, report.n_results);
    CHECK(store_count(store, "SELECT count(*) FROM probe_results pr JOIN recordings r ON r.id = pr.recording_id"
                       " JOIN runs ON runs.id = r.run_id WHERE runs.name = 'spiral'") == 162, "rows in the store");

    const ProbeResult *parity = probe_report_find(&report, "parity", "token", 0, 1, "none");
    const ProbeResult *position = probe_report_find(&report, "parity", "token", 0, 1, "position");
    const ProbeResult *permuted = probe_report_find(&report, "parity", "token", 0, 1, "permuted");
    const ProbeResult *slot = probe_report_find(&report, "gen.slot2", "token", 2, 1, "position");
    if (parity && position && permuted && slot) {
        printf("parity at token 0: %.3f [%.3f, %.3f]; control task %.3f, random model %.3f, position %.3f, "
               "permuted %.3f\n", parity->accuracy, parity->ci_lo, parity->ci_hi,
               probe_report_find(&report, "parity", "token", 0, 1, "control_task")->accuracy,
               probe_report_find(&report, "parity", "token", 0, 1, "random_model")->accuracy,
               position->accuracy, permuted->accuracy);
        CHECK(parity->accuracy > 0.95, "parity at token 0: %.3f", parity->accuracy);
        CHECK(parity->ci_lo > position->ci_hi && parity->ci_lo > permuted->ci_hi,
              "parity must beat the position and permutation controls");
        CHECK(slot->accuracy == 1.0, "gen.slot2 from position features: %.3f", slot->accuracy);
    }
    for (int i = 0; i < report.n_results; i++) {
        const ProbeResult *r = &report.results[i];
        if (strcmp(r->label, "coin") || strcmp(r->control, "none")) continue;
        /* binary: the best constant predictor has max(majority, 1 - majority) */
        CHECK(r->ci_lo <= fmax(r->majority, 1 - r->majority), "coin at %s %d: %.3f [%.3f, %.3f] vs majority %.3f",
              r->site, r->iteration, r->accuracy, r->ci_lo, r->ci_hi, r->majority);
        CHECK(probe_report_encoded(&report, r) == 0, "coin encoded at %s %d", r->site, r->iteration);
    }

    /* same seed, refitted on one thread and on three: identical to two */
    o.replace = 1;
    const int thread_counts[2] = {1, 3};
    for (int k = 0; k < 2; k++) {
        parallel_set_threads(thread_counts[k]);
        CHECK(probe_run(store, "spiral", "lang", labels, 3, &o, &again) == 0, "replace: %s",
              spiral_last_error());
        CHECK(again.fitted_now == 162 && same_results(&report, &again),
              "same seed with %d threads instead of 2: results differ (%d fitted)",
              thread_counts[k], again.fitted_now);
        probe_report_free(&again);
    }

    /* resume: lose some rows, only they are fitted again, identically */
    store_exec(store, "DELETE FROM probe_results WHERE (site = 'latent_out' AND label = 'parity') OR control = 'random_model'");
    o.replace = 0;
    parallel_set_threads(2);
    CHECK(probe_run(store, "spiral", "lang", labels, 3, &o, &again) == 0, "resume: %s", spiral_last_error());
    CHECK(again.fitted_now == 12 + 27 - 2 && again.skipped == 162 - 37,
          "resume fitted %d and skipped %d, expected 37 and 125", again.fitted_now, again.skipped);
    CHECK(same_results(&report, &again), "resumed results differ");
    probe_report_free(&again);

    /* another seed: replace needed; with it, other splits */
    o.seed = 2;
    CHECK(probe_run(store, "spiral", "lang", labels, 1, &o, &again) != 0 && strstr(spiral_last_error(), "--replace"),
          "other seed without replace: %s", spiral_last_error());
    o.replace = 1;
    o.controls = 0;
    CHECK(probe_run(store, "spiral", "lang", labels, 1, &o, &again) == 0 && again.fitted_now == 9,
          "seed 2 without controls: %s", spiral_last_error());
    CHECK(probe_report_encoded(&again, &again.results[0]) == -1, "without controls 'encoded' is undefined");
    probe_report_free(&again);
    probe_report_free(&report);

    /* bad input */
    const char *unknown[1] = {"colour"}, *bad_generic[1] = {"gen.lag99"}, *constant[1] = {"const"};
    o.seed = 1;
    o.replace = 0;
    CHECK(probe_run(store, "spiral", "lang", unknown, 1, &o, &again) != 0 &&
          strstr(spiral_last_error(), "unknown label 'colour'") && strstr(spiral_last_error(), "parity, coin") &&
          strstr(spiral_last_error(), "gen.lagK"), "unknown label: %s", spiral_last_error());
    CHECK(probe_run(store, "spiral", "lang", bad_generic, 1, &o, &again) != 0 &&
          strstr(spiral_last_error(), "K in 0..23"), "generic label out of range: %s", spiral_last_error());
    CHECK(probe_run(store, "spiral", "lang", constant, 1, &o, &again) != 0 &&
          strstr(spiral_last_error(), "single class"), "one-class label: %s", spiral_last_error());
    train_run(store, "unrecorded", "{\"vocab_size\": 8, \"d_model\": 16, \"n_heads\": 2, \"d_ff\": 24, \"schedule\": [1]}");
    CHECK(probe_run(store, "unrecorded", "lang", labels, 1, &o, &again) != 0 &&
          strstr(spiral_last_error(), "no recording") && strstr(spiral_last_error(), "spiral record --run unrecorded"),
          "unrecorded run: %s", spiral_last_error());
    CHECK(probe_run(store, "nope", "lang", labels, 1, &o, &again) != 0 && strstr(spiral_last_error(), "no run named"),
          "unknown run: %s", spiral_last_error());
    /* a dense run: every layer is an iteration, for the random model too */
    ro.n_sequences = 10;
    CHECK(record_run(store, "unrecorded", "lang", &ro, &recorded) == 0, "record dense: %s", spiral_last_error());
    o.controls = PROBE_CONTROL_RANDOM;
    CHECK(probe_run(store, "unrecorded", "lang", labels, 1, &o, &again) == 0 && again.n_results == 8 &&
          probe_report_find(&again, "parity", "token", 2, 1, "random_model") &&
          probe_report_find(&again, "parity", "coda", 2, 1, "random_model"),
          "dense run, random-model control: %s (%d rows)", spiral_last_error(), again.n_results);
    if (again.n_results) probe_report_free(&again);
    ro.n_sequences = 4;
    ro.split = "val";
    record_run(store, "unrecorded", "lang", &ro, &recorded);
    o.split = "val";
    CHECK(probe_run(store, "unrecorded", "lang", labels, 1, &o, &again) != 0 &&
          strstr(spiral_last_error(), "at least 5"), "too few sequences: %s", spiral_last_error());
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "/tmp/spiral_test_probe_XXXXXX");
    if (!mkdtemp(dir)) return 2;
    char store_path[512];
    snprintf(store_path, sizeof store_path, "%s/runs.db", dir);
    Store store;
    if (store_open(&store, store_path, 1)) {
        fprintf(stderr, "%s\n", spiral_last_error());
        return 2;
    }
    test_synthetic(&store);
    test_trained(&store);
    store_close(&store);
    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary(argv[0]);
}
