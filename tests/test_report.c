/*
 * test_report.c: `spiral report` (reports/): every figure type from a small
 * store, and the HTML and Markdown pages.
 *
 * The store: a tiny language with two labels and a known true_nll (so an
 * entropy floor of exactly 0.5), three tiny runs trained a few steps
 * (spiral, spiral-s2: the same config with another seed, looped), spiral
 * and looped recorded; probe_results / probe_summaries / analysis_results
 * rows inserted by SQL following probes/probe_run.h and analysis/analyze.h
 * (control names, kinds, keys, float64 data), so the expected rows of every
 * CSV are known here.
 *
 * Checked:
 *  - every figure is drawn: NAME.png starts with the PNG signature and its
 *    IHDR width and height equal the figure's requested size; NAME.svg is
 *    an SVG of that size; NAME.gp exists; gnuplot printed no warning;
 *  - each NAME.csv has a header and exactly the expected data rows;
 *  - index.html and report.md: every relative href/src and Markdown link
 *    exists in the directory, every #anchor has its id; both name every
 *    run, the entropy floor, spiral's version and the runs' command lines;
 *  - the key-results box opens the report and holds the store's figures,
 *    each recomputed here from the store: every run's last validation
 *    loss, the floor, the gap, the bigram and trigram losses (over the
 *    run's validation targets, eval_run_reference), each group's loss at equal FLOPs with its interval
 *    (compare.h), where each label is encoded (from the summaries' JSON),
 *    and the attention direction (first and last selected_attn_distance);
 *  - a report of a run without recordings skips the probe and analysis
 *    figures with notes, and is not an error;
 *  - errors: an unknown run is named; a missing gnuplot says which Debian
 *    package to install.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "error.h"
#include "data_fixtures.h"
#include "harness.h"
#include "attention_stats.h"
#include "compare.h"
#include "eval_run.h"
#include "plot.h"
#include "record.h"
#include "report.h"
#include "report_key.h"
#include "store.h"
#include "train.h"

static char dir[256];

/* x_{i+1} = (x_i + x_{i-1}) mod 7 + 1 with 10% noise (as test_record.c);
 * labels parity (token mod 2) and l1.mod3 (token mod 3); true_nll 0.5. */
static void make_language(Dataset *ds) {
    const char *names[2] = {"parity", "l1.mod3"};
    int classes[2] = {2, 3};
    dataset_init(ds, "test", 8, 2, names, classes, 1);
    uint64_t state = 777;
    for (int d = 0; d < 120; d++) {
        uint16_t tokens[40];
        int32_t labels[80];
        double nll[40];
        recurrence_document(tokens, 40, d, &state);
        for (int i = 0; i < 40; i++) {
            labels[i] = tokens[i] % 2;
            labels[40 + i] = tokens[i] % 3;
            nll[i] = 0.5;
        }
        dataset_append(ds, tokens, 40, labels, nll, d < 80 ? SPLIT_TRAIN : d < 100 ? SPLIT_VAL : SPLIT_TEST);
    }
}

/* Trains run `name` with the model JSON for 12 steps, evaluating every 4. */
static void train_run(Store *store, const char *name, const char *model, int seed) {
    char path[512], text[1024];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    snprintf(text, sizeof text, "{\"model\": %s, \"train\": {\"dataset\": \"lang\", \"seq_len\": 24,"
             " \"batch_size\": 4, \"steps\": 12, \"eval_every\": 4, \"eval_batches\": 2,"
             " \"checkpoint_every\": 12, \"seed\": %d}}", model, seed);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    TrainOptions quiet = {0};
    TrainResult result;
    CHECK(train_new(store, name, path, &quiet, &result) == 0, "train %s: %s", name, spiral_last_error());
}

/* Executes formatted SQL; a failure is a test failure. */
static void sql(Store *store, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sql(Store *store, const char *fmt, ...) {
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    char *message = NULL;
    int rc = sqlite3_exec(store->db, text, NULL, NULL, &message);
    CHECK(rc == SQLITE_OK, "%s: %s", text, message ? message : "");
    sqlite3_free(message);
}

/* One probe with its four controls at (label, site, iteration, scale):
 * accuracy acc with interval +-0.05, controls at 0.3 with interval +-0.02
 * (so the probe counts as encoded when acc > 0.37). */
static void insert_probe(Store *store, long long rec, const char *label, const char *site, int iteration,
                         int scale, double acc) {
    const char *controls[5] = {"none", "control_task", "random_model", "position", "permuted"};
    for (int c = 0; c < 5; c++) {
        double a = c == 0 ? acc : 0.3, w = c == 0 ? 0.05 : 0.02;
        sql(store, "INSERT INTO probe_results(recording_id, label, site, iteration, scale, control,"
                   " accuracy, ci_lo, ci_hi, macro_f1, majority, n_train, n_val, n_test, l2, iterations,"
                   " converged, grad_norm, seed, seconds) VALUES(%lld, '%s', '%s', %d, %d, '%s', %.17g,"
                   " %.17g, %.17g, 0.5, 0.4, 100, 30, 40, 0.01, 20, 1, 1e-7, 1, 0.01)",
            rec, label, site, iteration, scale, controls[c], a, a - w, a + w);
    }
}

/* A float64 little-endian blob literal X'...' of values. */
static void blob_literal(char *out, size_t size, const double *values, int n) {
    size_t used = (size_t)snprintf(out, size, "X'");
    for (int i = 0; i < n; i++) {
        unsigned char bytes[8];
        memcpy(bytes, &values[i], 8);
        for (int b = 0; b < 8 && used + 3 < size; b++) used += (size_t)snprintf(out + used, size - used, "%02X", bytes[b]);
    }
    snprintf(out + used, size - used, "'");
}

/* The probe and analysis rows of one recorded run: T steps, T + 1 states. */
static void insert_results(Store *store, long long rec, long long run_id, int T, int latent, double base) {
    const char *labels[2] = {"parity", "l1.mod3"};
    for (int l = 0; l < 2; l++) {
        char encoded[256] = "[";
        for (int t = 0; t <= T; t++) {
            double acc = base + 0.05 * t + 0.1 * l;
            insert_probe(store, rec, labels[l], "token", t, 1, acc);
            if (acc > 0.37)
                snprintf(encoded + strlen(encoded), sizeof encoded - strlen(encoded), "%s{\"iteration\": %d, \"scale\": 1}",
                         encoded[1] ? ", " : "", t);
        }
        strcat(encoded, "]");
        sql(store, "INSERT INTO probe_summaries VALUES(%lld, '%s', 'token', 1.5, '%s')", rec, labels[l], encoded);
        insert_probe(store, rec, labels[l], "coda", T, 1, base + 0.2);
        sql(store, "INSERT INTO probe_summaries VALUES(%lld, '%s', 'coda', NULL, '[]')", rec, labels[l]);
        for (int k = 0; latent && k < 2; k++) {
            const char *site = k ? "latent_out" : "latent_in";
            for (int t = 0; t < 2; t++) insert_probe(store, rec, labels[l], site, t, t ? 2 : 4, base + 0.1 * t);
            sql(store, "INSERT INTO probe_summaries VALUES(%lld, '%s', '%s', 0.5, '[]')", rec, labels[l], site);
        }
    }
    for (int t = 0; t < T; t++) {
        double distance = latent ? 6 + 2 * t : 9, entropy = latent ? 1 + 0.5 * t : 2.2;
        sql(store, "INSERT INTO analysis_results(recording_id, run_id, kind, iteration, block, value, ci_lo, ci_hi)"
                   " VALUES(%lld, %lld, 'selected_attn_distance', %d, 'loop', %g, %g, %g),"
                   " (%lld, %lld, 'selected_attn_entropy', %d, 'loop', %g, %g, %g),"
                   " (%lld, %lld, 'update_size', %d, 'token', %g, %g, %g)",
            rec, run_id, t, distance, distance - 0.3, distance + 0.3, rec, run_id, t, entropy, entropy - 0.1,
            entropy + 0.1, rec, run_id, t, 0.2 / (t + 1), 0.18 / (t + 1), 0.22 / (t + 1));
    }
    for (int t = 0; t <= T; t++) {
        double p[16], sum = 0;
        for (int k = 0; k < 16; k++) sum += p[k] = pow(0.5 + 0.05 * t, k);
        for (int k = 0; k < 16; k++) p[k] /= sum;
        char blob[600];
        blob_literal(blob, sizeof blob, p, 16);
        sql(store, "INSERT INTO analysis_results(recording_id, run_id, kind, iteration, block, value, data)"
                   " VALUES(%lld, %lld, 'spectrum', %d, 'token', %.17g, %s),"
                   " (%lld, %lld, 'effective_rank', %d, 'token', %g, NULL)",
            rec, run_id, t, p[0], blob, rec, run_id, t, 3.0 + 0.4 * t);
        for (int u = 0; u <= T; u++)
            sql(store, "INSERT INTO analysis_results(recording_id, run_id, kind, iteration, iteration2, block, value)"
                       " VALUES(%lld, %lld, 'cka', %d, %d, 'token', %g)",
                rec, run_id, t, u, 1 - 0.02 * abs(t - u));
    }
}

/* Reads a whole file (NUL-terminated, malloc'd) or NULL. */
static char *read_file(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    if (text && fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        text = NULL;
    }
    fclose(f);
    if (text) text[n] = 0;
    if (size) *size = n;
    return text;
}

/* Data rows of a CSV: its lines minus the header. */
static long csv_rows(const char *path) {
    char *text = read_file(path, NULL);
    if (!text) return -1;
    long lines = 0;
    for (char *c = text; *c; c++) lines += *c == '\n';
    free(text);
    return lines - 1;
}

/* 1 if the file exists under the output directory. */
static int exists_in(const char *out, const char *relative) {
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", out, relative);
    return stat(path, &st) == 0;
}

/* Checks every href="..." / src="..." of an HTML page: relative paths
 * exist in out, #anchors have an id. Returns the number of links checked. */
static int check_html_links(const char *out, const char *html) {
    int checked = 0;
    const char *attrs[2] = {"href=\"", "src=\""};
    for (int a = 0; a < 2; a++)
        for (const char *p = strstr(html, attrs[a]); p; p = strstr(p + 1, attrs[a])) {
            const char *start = p + strlen(attrs[a]), *end = strchr(start, '"');
            if (!end) break;
            char target[512];
            snprintf(target, sizeof target, "%.*s", (int)(end - start), start);
            checked++;
            if (target[0] == '#') {
                char id[600];
                snprintf(id, sizeof id, "id=\"%s\"", target + 1);
                CHECK(strstr(html, id) != NULL, "index.html: anchor %s has no element with that id", target);
            } else {
                CHECK(!strstr(target, "://") && target[0] != '/', "index.html: link %s is not relative", target);
                CHECK(exists_in(out, target), "index.html: broken link %s", target);
            }
        }
    return checked;
}

/* Checks the Markdown links [text](target) to files. */
static int check_md_links(const char *out, const char *md) {
    int checked = 0;
    for (const char *p = strstr(md, "]("); p; p = strstr(p + 1, "](")) {
        const char *start = p + 2, *end = strchr(start, ')');
        if (!end) break;
        char target[512];
        snprintf(target, sizeof target, "%.*s", (int)(end - start), start);
        if (target[0] == '#') continue;
        checked++;
        CHECK(exists_in(out, target), "report.md: broken link %s", target);
    }
    return checked;
}

/* Big-endian 32-bit integer. */
static unsigned be32(const unsigned char *b) {
    return (unsigned)b[0] << 24 | (unsigned)b[1] << 16 | (unsigned)b[2] << 8 | b[3];
}

/* Checks NAME.png (signature, IHDR size), NAME.svg, NAME.gp of a figure. */
static void check_figure_files(const char *out, const Figure *f) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.png", out, f->name);
    long size = 0;
    unsigned char *png = (unsigned char *)read_file(path, &size);
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    CHECK(png && size > 24 && memcmp(png, signature, 8) == 0 && memcmp(png + 12, "IHDR", 4) == 0,
          "%s: not a PNG", path);
    if (png && size > 24) {
        CHECK((int)be32(png + 16) == f->width && (int)be32(png + 20) == f->height,
              "%s: %u x %u pixels, requested %d x %d", path, be32(png + 16), be32(png + 20), f->width, f->height);
        CHECK(f->width >= 600 && f->height >= 300, "%s: %d x %d is too small to read", path, f->width, f->height);
    }
    free(png);
    snprintf(path, sizeof path, "%s/%s.svg", out, f->name);
    char *svg = read_file(path, NULL), size_attr[64];
    snprintf(size_attr, sizeof size_attr, "width=\"%d\" height=\"%d\"", f->width, f->height);
    CHECK(svg && strstr(svg, "<svg") && strstr(svg, size_attr), "%s: not an SVG of %s", path, size_attr);
    free(svg);
    snprintf(path, sizeof path, "%s/%s.gp", out, f->name);
    CHECK(exists_in(out, strrchr(path, '/') + 1), "%s missing", path);
    CHECK(!f->warnings, "%s: gnuplot printed warnings (see %s/%s.log)", f->name, out, f->name);
}

/* The figure called name in the result, or NULL. */
static const Figure *find_figure(const ReportResult *r, const char *name) {
    for (int i = 0; i < r->figures.n; i++)
        if (!strcmp(r->figures.items[i].name, name)) return &r->figures.items[i];
    return NULL;
}

/* The key-results box of report.md (from its heading to the next level-2
 * heading) holds every figure of the store it summarizes. */
static void check_key_results(Store *store, const char *md) {
    const char *box = strstr(md, "## Key results"), *runs = strstr(md, "## Runs");
    CHECK(box && runs && box < runs, "report.md does not open with the key-results box");
    if (!box || !runs) return;
    char *key = strndup(box, (size_t)(runs - box));
    /* validation loss, floor, gap, bigram, trigram of each run, the last
     * four over the run's validation targets */
    sqlite3_stmt *stmt;
    const char *names[3] = {"spiral", "spiral-s2", "looped"};
    for (int r = 0; r < 3; r++) {
        char q[256], row[256];
        RunRow run;
        EvalReference ref = {0};
        CHECK(store_run_find(store, names[r], &run) == 0 && eval_run_reference(&ref, store, run.config, names[r]) == 0,
              "reference of %s: %s", names[r], spiral_last_error());
        store_run_free(&run);
        double floor = ref.floor, bigram = ref.bigram, trigram = ref.trigram;
        CHECK(fabs(floor - 0.5) < 1e-12, "floor of %s: %g, expected make_language's 0.5", names[r], floor);
        snprintf(q, sizeof q, "SELECT val_loss FROM metrics m JOIN runs ON runs.id = m.run_id WHERE name = '%s'"
                 " AND val_loss IS NOT NULL ORDER BY m.step DESC LIMIT 1", names[r]);
        sqlite3_prepare_v2(store->db, q, -1, &stmt, NULL);
        double loss = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_double(stmt, 0) : NAN;
        sqlite3_finalize(stmt);
        snprintf(row, sizeof row, "| %s | lang | %.4f | %.4f | %+.4f | %.4f | %.4f |", names[r], loss, floor,
                 loss - floor, bigram, trigram);
        CHECK(strstr(key, row) != NULL, "key results lack the row '%s'", row);
    }
    /* each group at equal FLOPs with its interval */
    Comparison c;
    CompareOptions co;
    compare_options_default(&co);
    CHECK(compare_runs(&c, store, names, 3, &co) == 0, "compare: %s", spiral_last_error());
    for (int g = 0; g < c.n_groups; g++) {
        const MeanInterval *m = &c.groups[g].loss_at_flops;
        char cell[128];
        if (m->n == 1) snprintf(cell, sizeof cell, "| %.4f (1 seed: no interval) |", m->mean);
        else snprintf(cell, sizeof cell, "| %.4f [%.4f, %.4f] (%d seeds) |", m->mean, m->lo, m->hi, m->n);
        CHECK(m->n > 0 && strstr(key, cell) != NULL, "key results lack group %d at equal FLOPs: '%s'", g + 1, cell);
    }
    for (int set = 0; set < c.n_flop_sets; set++) {
        char budget[96];
        snprintf(budget, sizeof budget, "At equal training FLOPs (%.4g, set %d:",
                 report_key_set_flops(&c, set), set + 1);
        CHECK(strstr(key, budget) != NULL, "key results lack the FLOP budget '%s'", budget);
    }
    compare_free(&c);
    /* where encoded: the summaries' lists (insert_results: parity of spiral at h(2), h(3)) */
    const char *labels[2] = {"parity", "l1.mod3"}, *recorded[2] = {"spiral", "looped"};
    for (int r = 0; r < 2; r++)
        for (int l = 0; l < 2; l++) {
            char q[400], expected[256] = "token: ";
            snprintf(q, sizeof q, "SELECT encoded FROM probe_summaries s JOIN recordings r ON r.id = s.recording_id"
                     " JOIN runs ON runs.id = r.run_id WHERE runs.name = '%s' AND s.label = '%s' AND s.site = 'token'",
                     recorded[r], labels[l]);
            sqlite3_prepare_v2(store->db, q, -1, &stmt, NULL);
            const char *json = sqlite3_step(stmt) == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0) : "";
            int n = 0;
            for (const char *p = strstr(json, "\"iteration\": "); p; p = strstr(p + 1, "\"iteration\": "))
                snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%sh(%d)", n++ ? ", " : "",
                         atoi(p + 13));
            sqlite3_finalize(stmt);
            char row[400];
            snprintf(row, sizeof row, "| %s | %s | %s;", recorded[r], labels[l], expected);
            const char *line = strstr(key, row);
            const char *end = line ? strchr(line, '\n') : NULL;
            CHECK(n > 0 && line && end, "key results lack '%s'", row);
            /* the coda's summary lists nothing: 'nowhere', on the same line */
            const char *coda = line ? strstr(line, "coda: nowhere |") : NULL;
            CHECK(coda && coda < end, "key results: %s %s: the coda is not 'nowhere'", recorded[r], labels[l]);
        }
    CHECK(strstr(key, "| spiral-s2 | parity |") == NULL, "a run without probes is listed as encoded somewhere");
    /* attention direction: first and last step of selected_attn_distance */
    for (int r = 0; r < 2; r++) {
        char q[400], first[96] = "", last[96] = "";
        snprintf(q, sizeof q, "SELECT iteration, value, ci_lo, ci_hi FROM analysis_results a JOIN runs ON runs.id ="
                 " a.run_id WHERE runs.name = '%s' AND a.kind = 'selected_attn_distance' ORDER BY iteration", recorded[r]);
        sqlite3_prepare_v2(store->db, q, -1, &stmt, NULL);
        double v0 = NAN, lo0 = NAN, hi0 = NAN, v1 = NAN, lo1 = NAN, hi1 = NAN;
        for (int i = 0; sqlite3_step(stmt) == SQLITE_ROW; i++) {
            char *target = i == 0 ? first : last;
            double v = sqlite3_column_double(stmt, 1), lo = sqlite3_column_double(stmt, 2),
                   hi = sqlite3_column_double(stmt, 3);
            snprintf(target, 96, "step %d: %.2f [%.2f, %.2f]", sqlite3_column_int(stmt, 0), v, lo, hi);
            if (i == 0) v0 = v, lo0 = lo, hi0 = hi;
            else v1 = v, lo1 = lo, hi1 = hi;
        }
        sqlite3_finalize(stmt);
        const char *direction = hi1 < lo0 ? "falls: global to local" : lo1 > hi0 ? "rises: local to global"
                                                                               : "no clear change";
        char row[400];
        snprintf(row, sizeof row, "| %s | %s | %s | %s", recorded[r], first, last, direction);
        CHECK(isfinite(v0) && isfinite(v1) && strstr(key, row) != NULL, "key results lack '%s'", row);
    }
    if (getenv("SPIRAL_TEST_VERBOSE")) fputs(key, stderr);
    free(key);
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "/tmp/spiral_test_report_XXXXXX");
    if (!mkdtemp(dir)) return 2;
    char store_path[512], out[512];
    snprintf(store_path, sizeof store_path, "%s/runs.db", dir);
    snprintf(out, sizeof out, "%s/report", dir);
    Store store;
    store_open(&store, store_path, 1);
    Dataset ds;
    make_language(&ds);
    store_dataset_save(&store, "lang", &ds, 0, NULL);
    dataset_free(&ds);
    const char *spiral = "{\"vocab_size\": 8, \"d_model\": 16, \"n_heads\": 2, \"d_ff\": 24,"
                         " \"schedule\": [4, 2, 1]}";
    const char *looped = "{\"vocab_size\": 8, \"d_model\": 16, \"n_heads\": 2, \"d_ff\": 24,"
                         " \"schedule\": [1, 1, 1]}";
    train_run(&store, "spiral", spiral, 1);
    train_run(&store, "spiral-s2", spiral, 2);
    train_run(&store, "looped", looped, 1);
    sql(&store, "UPDATE runs SET command = 'spiral train --config ' || name || '.json --store runs.db'");
    RecordOptions ro;
    record_options_default(&ro);
    ro.attention = attention_stats_summary();
    ro.n_sequences = 8;
    ro.batch_size = 4;
    RecordResult rr;
    CHECK(record_run(&store, "spiral", "lang", &ro, &rr) == 0, "record spiral: %s", spiral_last_error());
    CHECK(record_run(&store, "looped", "lang", &ro, &rr) == 0, "record looped: %s", spiral_last_error());
    long long rec_spiral = store_count(&store, "SELECT r.id FROM recordings r JOIN runs ON runs.id = r.run_id WHERE name = 'spiral'");
    long long rec_looped = store_count(&store, "SELECT r.id FROM recordings r JOIN runs ON runs.id = r.run_id WHERE name = 'looped'");
    long long id_spiral = store_count(&store, "SELECT id FROM runs WHERE name = 'spiral'");
    long long id_looped = store_count(&store, "SELECT id FROM runs WHERE name = 'looped'");
    insert_results(&store, rec_spiral, id_spiral, 3, 1, 0.30);
    insert_results(&store, rec_looped, id_looped, 3, 0, 0.32);
    for (int t = 0; t <= 3; t++)
        for (int u = 0; u <= 3; u++)
            sql(&store, "INSERT INTO analysis_results(recording_id, run_id, kind, iteration, iteration2, block, value)"
                        " VALUES(%lld, %lld, 'cka_cross', %d, %d, 'token', %g)", rec_spiral, id_looped, t, u,
                0.6 + 0.05 * t + 0.02 * u);

    /* lens results: exits t = 0 .. 3 of both runs, spiral's ablations;
     * an older step's rows and a row under an intervention are not drawn */
    for (int r = 0; r < 2; r++)
        for (int t = 0; t <= 3; t++)
            for (int step = 5; step <= 10; step += 5)
                sql(&store, "INSERT INTO lens_results(run_id, dataset_id, split, checkpoint_step,"
                            " schedule, intervention, mode, iteration, slot, g, row_schedule,"
                            " n_sequences, n_tokens, loss, loss_lo, loss_hi)"
                            " SELECT id, dataset_id, 'test', %d, '4,2,1', 'none', 'coda', %d, -1, 1,"
                            " '4,2,1', 8, 64, %g, %g, %g FROM runs WHERE id = %lld", step, t,
                    2.0 - 0.1 * t, 1.9 - 0.1 * t, 2.1 - 0.1 * t, r ? id_looped : id_spiral);
    for (int t = 0; t < 3; t++)
        sql(&store, "INSERT INTO lens_results(run_id, dataset_id, split, checkpoint_step, schedule,"
                    " intervention, mode, iteration, slot, g, row_schedule, n_sequences, n_tokens,"
                    " delta, delta_lo, delta_hi) SELECT id, dataset_id, 'test', 10, '4,2,1', 'none',"
                    " 'ablate', %d, -1, 1, '4,2,1', 8, 64, 0.1, 0.05, 0.15 FROM runs WHERE id = %lld",
            t, id_spiral);
    sql(&store, "INSERT INTO lens_results(run_id, dataset_id, split, checkpoint_step, schedule,"
                " intervention, mode, iteration, slot, g, row_schedule, n_sequences, n_tokens, loss)"
                " SELECT id, dataset_id, 'test', 10, '4,2,1', 'ablate 1 zero', 'coda', 2, -1, 1,"
                " '4,2,1', 8, 64, 9.0 FROM runs WHERE id = %lld", id_spiral);

    /* the full report */
    ReportOptions options = {.dir = out, .version = "9.9.9-test", .command_line = "spiral report --test"};
    ReportResult result;
    CHECK(report_write(&store, &options, &result) == 0, "report: %s", spiral_last_error());
    /* expected data rows of each figure's CSV */
    /* training: looped's own rows; spiral and spiral-s2 differ only in the
     * seed: their validation points, and the mean over both at every step
     * they share (training and validation) */
    long long training_rows =
        store_count(&store, "SELECT count(loss) + count(val_loss) FROM metrics m JOIN runs ON runs.id = m.run_id"
                            " WHERE name = 'looped'") +
        store_count(&store, "SELECT count(val_loss) FROM metrics m JOIN runs ON runs.id = m.run_id"
                            " WHERE name IN ('spiral', 'spiral-s2')") +
        store_count(&store, "SELECT count(a.loss + b.loss) + count(a.val_loss + b.val_loss) FROM metrics a"
                            " JOIN metrics b ON a.step = b.step WHERE a.run_id = (SELECT id FROM runs WHERE"
                            " name = 'spiral') AND b.run_id = (SELECT id FROM runs WHERE name = 'spiral-s2')");
    struct { const char *name; long rows; } expected[] = {
        {"training", (long)training_rows},
        {"comparison", 2 + 3},                  /* groups {spiral, spiral-s2}, {looped}; 3 runs */
        {"probe_heatmap_token", 2 * 2 * 5},     /* runs x labels x (h(0..3) + coda) */
        {"probe_heatmap_latent", 2 * 2 * 2},    /* spiral: labels x sites x iterations 0, 1 */
        {"probe_curves_labels", 2 * 4},         /* parity: runs x h(0..3) */
        {"probe_curves_l1", 2 * 4},             /* l1.mod3 */
        {"attention", 2 * 2 * 3},               /* runs x (distance, entropy) x steps */
        {"loop_update", 2 * 3 + 2 * 4},         /* update sizes per step, effective rank per state */
        {"cka", 2 * 16},
        {"cka_cross", 16},
        {"spectrum", 2 * 4 * 16},               /* runs x states x singular values */
        {"lens", 2 * 4 + 3},                    /* runs x exits at the last step + ablations */
    };
    int n_expected = (int)(sizeof expected / sizeof expected[0]);
    CHECK(result.figures.n == n_expected && result.n_rendered == n_expected,
          "%d figures, %d drawn; expected %d drawn", result.figures.n, result.n_rendered, n_expected);
    for (int i = 0; i < n_expected; i++) {
        const Figure *f = find_figure(&result, expected[i].name);
        CHECK(f && f->rendered, "figure %s not drawn (%s)", expected[i].name, f ? f->note : "absent");
        if (!f || !f->rendered) continue;
        check_figure_files(out, f);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.csv", out, f->name);
        long rows = csv_rows(path);
        CHECK(rows == expected[i].rows && f->csv_rows == rows, "%s: %ld data rows (reported %ld), expected %ld",
              path, rows, f->csv_rows, expected[i].rows);
    }
    /* a probe row as the CSV holds it: selectivity = accuracy - control task */
    char path[1024];
    snprintf(path, sizeof path, "%s/probe_heatmap_token.csv", out);
    char *csv = read_file(path, NULL);
    CHECK(csv && strstr(csv, "run,site,iteration,scale,label,x,y,accuracy,ci_lo,ci_hi,control_task,selectivity,encoded\n"),
          "probe_heatmap_token.csv header");
    CHECK(csv && strstr(csv, "\nspiral,token,2,1,parity,2,0,0.4,0.35,0.45,0.3,0.1,1\n"),
          "probe_heatmap_token.csv lacks spiral's parity probe at h(2) with selectivity 0.1, encoded");
    CHECK(csv && strstr(csv, "\nlooped,coda,3,1,l1.mod3,4,1,"), "the coda is the column after h(3)");
    free(csv);

    /* the seed mean of the validation loss at the last evaluation, with n_seeds 2 */
    {
        sqlite3_stmt *stmt;
        sqlite3_prepare_v2(store.db, "SELECT a.step, (a.val_loss + b.val_loss) / 2 FROM metrics a JOIN metrics b"
                           " ON a.step = b.step WHERE a.run_id = (SELECT id FROM runs WHERE name = 'spiral') AND"
                           " b.run_id = (SELECT id FROM runs WHERE name = 'spiral-s2') AND a.val_loss IS NOT NULL"
                           " ORDER BY a.step DESC LIMIT 1", -1, &stmt, NULL);
        int found = sqlite3_step(stmt) == SQLITE_ROW;
        char path[600], row[160];
        snprintf(row, sizeof row, "spiral,spiral,lang,val_mean,%lld,", found ? (long long)sqlite3_column_int64(stmt, 0) : -1LL);
        double mean = found ? sqlite3_column_double(stmt, 1) : NAN;
        sqlite3_finalize(stmt);
        snprintf(path, sizeof path, "%s/training.csv", out);
        char *training = read_file(path, NULL);
        const char *line = training ? strstr(training, row) : NULL;
        double value = NAN;
        if (line) {
            const char *field = line;
            for (int k = 0; k < 7 && field; k++) field = strchr(field, ',') + 1;  /* to column 8, loss */
            value = field ? atof(field) : NAN;
        }
        const char *end = line ? strchr(line, '\n') : NULL;
        CHECK(line && end && fabs(value - mean) < 1e-8 && end - line > 2 && !strncmp(end - 2, ",2", 2),
              "training.csv: no seed mean %.10g at '%s' (got %.10g)", mean, row, value);
        free(training);
    }

    /* the pages */
    char *html = read_file(result.html_path, NULL), *md = read_file(result.md_path, NULL);
    CHECK(html && md, "index.html or report.md missing");
    if (html && md) {
        int links = check_html_links(out, html);
        CHECK(links >= 5 * n_expected, "index.html has only %d links", links);
        int md_links = check_md_links(out, md);
        CHECK(md_links >= 4 * n_expected, "report.md has only %d file links", md_links);
        const char *runs[3] = {"spiral", "spiral-s2", "looped"};
        for (int r = 0; r < 3; r++) {
            char cell[64], command[128];
            snprintf(cell, sizeof cell, "| %s |", runs[r]);
            snprintf(command, sizeof command, "spiral train --config %s.json --store runs.db", runs[r]);
            CHECK(strstr(md, cell) != NULL, "report.md: no table row for run %s", runs[r]);
            CHECK(strstr(html, command) && strstr(md, command), "the command line of %s is missing", runs[r]);
        }
        CHECK(strstr(md, "| 0.5000 | 0.5000 |") != NULL, "report.md: entropy floor 0.5000 of val and test");
        CHECK(strstr(html, "9.9.9-test") && strstr(md, "9.9.9-test"), "spiral's version missing");
        CHECK(strstr(html, "spiral report --test") != NULL, "the report's command line missing");
        CHECK(strstr(html, "<details") && strstr(html, "&quot;schedule&quot;"), "run configs missing");
        CHECK(strstr(md, "0.400 [0.350, 0.450]") != NULL, "probe table lacks accuracy [CI]");
        CHECK(strstr(md, "(2 seeds)") || strstr(md, "| 2 |"), "comparison lacks the group of 2 seeds");
        CHECK(!strstr(html, "Not drawn"), "a figure was skipped in the full report");
        CHECK(strstr(html, "<div class=\"key\">") != NULL, "index.html has no key-results box");
        check_key_results(&store, md);
    }
    free(html);
    free(md);
    report_result_free(&result);

    /* figure styles: the update ratio on a log axis, the effective rank
     * out of the runs' d, runs 11 and up dashed with another marker */
    {
        char path[600];
        snprintf(path, sizeof path, "%s/loop_update.gp", out);
        char *gp = read_file(path, NULL), d_label[64];
        snprintf(d_label, sizeof d_label, "of d = %lld dimensions",
                 store_count(&store, "SELECT json_extract(config, '$.model.d_model') FROM runs WHERE name = 'spiral'"));
        const char *update = gp ? strstr(gp, "# panel 1: update_size") : NULL;
        const char *rank = gp ? strstr(gp, "# panel 2: effective_rank") : NULL;
        const char *log_y = update ? strstr(update, "set logscale y") : NULL;
        CHECK(update && rank && log_y && log_y < rank, "loop_update.gp: the update panel is not on a log axis");
        CHECK(rank && strstr(rank, "unset logscale y") && strstr(rank, d_label),
              "loop_update.gp: the rank panel is not linear or does not say '%s'", d_label);
        const char *lt1 = gp ? strstr(gp, "set linetype 1 ") : NULL, *lt11 = gp ? strstr(gp, "set linetype 11 ") : NULL;
        CHECK(lt1 && lt11 && !strncmp(strstr(lt1, "dt "), "dt solid pt 7", 13) &&
              !strncmp(strstr(lt11, "dt "), "dt (10,5) pt 5", 14),
              "run styles: linetype 11 is not a dashed line with another marker than linetype 1");
        free(gp);
    }

    /* a legend names a band only where one is drawn: attention without intervals */
    sql(&store, "UPDATE analysis_results SET ci_lo = NULL, ci_hi = NULL WHERE kind LIKE 'selected_attn_%%'");
    {
        char out_noci[600], path[700];
        snprintf(out_noci, sizeof out_noci, "%s/no-ci", dir);
        ReportOptions o = {.dir = out_noci, .version = "9.9.9-test"};
        ReportResult r;
        CHECK(report_write(&store, &o, &r) == 0, "report without intervals: %s", spiral_last_error());
        snprintf(path, sizeof path, "%s/attention.gp", out_noci);
        char *gp = read_file(path, NULL);
        CHECK(gp && !strstr(gp, "95% interval"), "attention.gp promises intervals that are not in the store");
        free(gp);
        snprintf(path, sizeof path, "%s/loop_update.gp", out_noci);
        gp = read_file(path, NULL);
        CHECK(gp && strstr(gp, "95% interval"), "loop_update.gp lost the key of its drawn bands");
        free(gp);
        report_result_free(&r);
    }

    /* a run without a recording: probe and analysis figures skipped */
    char out2[600];
    snprintf(out2, sizeof out2, "%s/only-s2", dir);
    const char *only[1] = {"spiral-s2"};
    ReportOptions o2 = {.dir = out2, .runs = only, .n_runs = 1, .version = "x"};
    CHECK(report_write(&store, &o2, &result) == 0, "report of spiral-s2: %s", spiral_last_error());
    CHECK(result.n_rendered == 2, "spiral-s2 alone: %d figures drawn, expected training and comparison",
          result.n_rendered);
    const Figure *skipped = find_figure(&result, "probe_heatmap_token");
    CHECK(skipped && !skipped->rendered && strstr(skipped->note, "spiral probe"), "skipped figure note: %s",
          skipped ? skipped->note : "absent");
    html = read_file(result.html_path, NULL);
    CHECK(html && strstr(html, "Not drawn: no probe results") && check_html_links(out2, html) > 0,
          "skipped figures are noted in index.html");
    CHECK(html && !strstr(html, ">looped<"), "--runs spiral-s2 still lists looped");
    free(html);
    report_result_free(&result);

    /* errors */
    const char *nope[1] = {"nope"};
    ReportOptions o3 = {.dir = out2, .runs = nope, .n_runs = 1};
    CHECK(report_write(&store, &o3, &result) != 0 && strstr(spiral_last_error(), "no run named 'nope'"),
          "unknown run: %s", spiral_last_error());
    setenv("SPIRAL_GNUPLOT", "/nonexistent/gnuplot", 1);
    CHECK(report_write(&store, &o2, &result) != 0 && strstr(spiral_last_error(), "gnuplot-nox"),
          "missing gnuplot: %s", spiral_last_error());
    unsetenv("SPIRAL_GNUPLOT");

    /* CSV rows: plot_csv_row writes its fields in order (text cleaned, NaN
     * empty); a row of another length than the header fails the figure */
    Plot plot;
    CHECK(plot_begin(&plot, dir, "rows", 640, 480, "name,n,value") == 0, "plot_begin: %s", spiral_last_error());
    const CsvField good[] = {csv_text("a,b"), csv_int(7), csv_num(0.5)};
    const CsvField missing[] = {csv_text("x"), csv_num(NAN), csv_num(NAN)};
    const CsvField short_row[] = {csv_text("y"), csv_int(1)};
    plot_csv_row(&plot, good, 3);
    plot_csv_row(&plot, missing, 3);
    plot_csv_row(&plot, short_row, 2);
    CHECK(plot_finish(&plot, "rows") != 0 && strstr(spiral_last_error(), "1 rows do not have the header's 3 fields"),
          "a short CSV row must fail the figure: %s", spiral_last_error());
    snprintf(path, sizeof path, "%s/rows.csv", dir);
    csv = read_file(path, NULL);
    CHECK(csv && !strcmp(csv, "name,n,value\na;b,7,0.5\nx,,\ny,1\n"), "rows.csv: %s", csv ? csv : "(missing)");
    free(csv);

    store_close(&store);
    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (getenv("SPIRAL_TEST_KEEP")) printf("kept %s\n", dir); /* to look at the figures */
    else if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary(argv[0]);
}
