/*
 * test_record.c: recording hidden states into the store.
 *
 *  - every (sequence, iteration, site, scale) the design lists is stored,
 *    with the expected shape, for a spiral run and for a dense run (where
 *    every layer counts as an iteration);
 *  - a stored state equals, bit for bit, the state of a direct forward pass
 *    on the same window (read back with incremental BLOB I/O); float16
 *    states are exactly the float32 ones rounded to halves; a state beyond
 *    float16's range is refused (a clear error, the batch rolled back);
 *  - token_index maps each row to its dataset token;
 *  - an interrupted recording (sequences deleted as a kill would lose them)
 *    completes only the missing sequences;
 *  - attention statistics rows exist for every layer application, and each
 *    query's mass beyond distance 0 equals 1 - P(attend to itself); the
 *    stored distance, entropy and masses of a latent layer equal the
 *    definitions computed in double from a direct forward pass (distance
 *    and masses bit for bit, entropy within 4 float ulps);
 *  - the store's readers: recording_find gives the distances,
 *    recording_list_sites the 9 sites in order (token, latent_in,
 *    latent_out, coda; by step, scale), recording_read_attention every row
 *    of the first n sequences, each equal to the stored blob;
 *  - without an AttentionSummary no attention statistics are recorded (and
 *    the recording's distances are empty); attention_stats_compute refuses
 *    positions that do not ascend;
 *  - an insert failing on the queue's thread: its error reaches the caller,
 *    the earlier batches stay, the same recording then completes;
 *  - bad input: unknown run, unknown dataset, other settings without
 *    --replace, a checkpoint modified after training: clear errors.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "dataset.h"
#include "error.h"
#include "data_fixtures.h"
#include "harness.h"
#include "filehash.h"
#include "model.h"
#include "attention_stats.h"
#include "record.h"
#include "store.h"
#include "train.h"

static char dir[256];

static void train_run(Store *store, const char *name, const char *model) {
    char path[512], text[1024];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    snprintf(text, sizeof text, "{\"model\": %s, \"train\": {\"dataset\": \"lang\", \"seq_len\": 24,"
             " \"batch_size\": 4, \"steps\": 20, \"eval_every\": 0, \"checkpoint_every\": 20}}", model);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    TrainOptions quiet = {0};
    TrainResult result;
    CHECK(train_new(store, name, path, &quiet, &result) == 0, "train %s: %s", name, spiral_last_error());
}

/* Captures h(t) of every batch row from a direct forward pass, and the
 * attention probabilities of the first core layer at iteration 0. */
typedef struct {
    int iteration;
    float *out;
    double attention[4 * 2 * 24 * 24];  /* (B, H, rows, rows), B <= 4, H = 2 */
    int attention_rows;
    int positions[24];
} Capture;

static void capture_state(void *user, const ObserveEvent *e) {
    Capture *c = user;
    if (e->site == OBSERVE_STATE && e->iteration == c->iteration)
        for (int i = 0; i < e->B * e->rows * e->cols; i++) c->out[i] = (float)e->data[i];
    if (e->site == OBSERVE_ATTENTION && e->block == BLOCK_LOOP && e->iteration == 0 &&
        e->layer == 0) {
        c->attention_rows = e->rows;
        for (int i = 0; i < e->B * e->heads * e->rows * e->rows; i++) c->attention[i] = e->data[i];
        for (int i = 0; i < e->rows; i++) c->positions[i] = e->pos[i];
    }
}

/* Distance in float ulps between two floats of the same sign. */
static long ulps_apart(float a, float b) {
    int32_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    return labs((long)x - (long)y);
}

/* Counts the attention rows recording_read_attention hands over, checks
 * each one's size, and compares one (sequence 3, loop, step 0, layer 0)
 * with the blob read by SQL. */
typedef struct {
    int rows_seen, bad_size, max_seq;
    const float *expected;      /* the blob of sequence 3, loop, step 0, layer 0 */
    size_t expected_bytes;
    int expected_equal;         /* -1 not seen, 0 differs, 1 equal */
    int n_stats;
} AttentionVisit;

static int visit_attention(void *user, const AttentionRow *row) {
    AttentionVisit *v = user;
    v->rows_seen++;
    if (row->seq > v->max_seq) v->max_seq = row->seq;
    if (row->bytes != (size_t)row->heads * row->rows * v->n_stats * sizeof(float)) v->bad_size++;
    if (row->seq == 3 && !strcmp(row->block, "loop") && row->step == 0 && row->layer == 0)
        v->expected_equal = row->bytes == v->expected_bytes && row->scale == 4 &&
                            memcmp(row->stats, v->expected, row->bytes) == 0;
    return 0;
}

/* A visitor that stops the reading at its first row. */
static int stop_at_first(void *user, const AttentionRow *row) {
    (*(int *)user)++;
    return 7;
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "/tmp/spiral_test_record_XXXXXX");
    if (!mkdtemp(dir)) return 2;
    char store_path[512];
    snprintf(store_path, sizeof store_path, "%s/runs.db", dir);
    Store store;
    store_open(&store, store_path, 1);
    Dataset ds;
    make_parity_language(&ds);
    store_dataset_save(&store, "lang", &ds, 0, NULL);
    const char *spiral = "{\"vocab_size\": 8, \"d_model\": 16, \"n_heads\": 2, \"d_ff\": 24,"
                         " \"schedule\": [{\"g\": 4, \"offset\": 1}, 2, 1]}";
    const char *dense = "{\"vocab_size\": 8, \"d_model\": 16, \"n_heads\": 2, \"d_ff\": 24,"
                        " \"n_pre\": 1, \"n_loop\": 3, \"n_post\": 1, \"schedule\": [1]}";
    train_run(&store, "spiral", spiral);
    train_run(&store, "dense", dense);

    RecordOptions o;
    record_options_default(&o);
    o.attention = attention_stats_summary();
    o.n_sequences = 10;
    o.batch_size = 4;
    RecordResult result;
    CHECK(record_run(&store, "spiral", "lang", &o, &result) == 0, "record: %s", spiral_last_error());
    CHECK(result.recorded_now == 10, "recorded %d sequences now, expected 10", result.recorded_now);
    /* spiral T = 3: token t = 0..3 (4), latents for g = 4, 2 (2 x 2), coda (1) = 9 per sequence */
    CHECK(store_count(&store, "SELECT count(*) FROM states") == 10 * 9, "states: %lld, expected 90",
          store_count(&store, "SELECT count(*) FROM states"));
    CHECK(store_count(&store, "SELECT count(*) FROM states WHERE site='latent_in' AND scale=4 AND rows=7") == 10,
          "latent_in at g=4, offset 1 over 24 tokens must have J = 7 rows");
    /* attention: 1 pre + 3 x 2 loop + 1 post = 8 layer applications */
    CHECK(store_count(&store, "SELECT count(*) FROM attention_stats") == 10 * 8, "attention rows: %lld",
          store_count(&store, "SELECT count(*) FROM attention_stats"));

    /* a stored state equals a direct forward pass on the same window */
    RecordingInfo info;
    CHECK(recording_find(&store, "spiral", "lang", "test", &info) == 0, "find: %s", spiral_last_error());
    SpiralConfig cfg;
    ParamLayout layout;
    real *values;
    RunRow run;
    store_run_find(&store, "spiral", &run);
    long long step;
    char *path, *sha;
    store_checkpoint_last(&store, run.id, &step, &path, &sha);
    weights_load(path, &cfg, &layout, &values);
    Model model;
    model_build(&model, &cfg);
    memcpy(model.params, values, model.layout.n_params * sizeof(real));
    /* sequence 3 was recorded in the batch of sequences 0..3: BLAS rounding
     * may depend on the batch's size, so the direct pass uses that batch */
    size_t index[24];
    int tokens[4 * 24];
    for (int b = 0; b < 4; b++) {
        CHECK(recording_read_token_index(&store, &info, b, index) == 0, "token index: %s", spiral_last_error());
        for (int i = 0; i < 24; i++) tokens[b * 24 + i] = ds.tokens[index[i]];
    }
    int in_order = 1; /* a window starts at a test document: indices ascend */
    for (int i = 1; i < 24; i++) in_order &= index[i] > index[i - 1];
    CHECK(in_order && ds.doc_split[0] == SPLIT_TRAIN && index[0] >= 100 * 40,
          "token index of sequence 3 does not point into the test documents");
    float batch_states[4 * 24 * 16], stored[24 * 16];
    static Capture capture;
    capture.iteration = 3;
    capture.out = batch_states;
    Observer observer = {capture_state, &capture, 0, NULL};
    model_forward(&model, tokens, NULL, 4, 24, &observer);
    const float *direct = batch_states + 3 * 24 * 16; /* batch row 3 */
    int rows, cols;
    CHECK(recording_read_state(&store, &info, 3, 3, "token", 1, stored, &rows, &cols) == 0,
          "read state: %s", spiral_last_error());
    CHECK(rows == 24 && cols == 16, "shape %d x %d", rows, cols);
    CHECK(memcmp(direct, stored, sizeof stored) == 0, "stored h(3) differs from a direct forward pass");

    /* attention: mass beyond distance 0 = 1 - self attention; check the
     * first query (attends only itself: distance 0, entropy 0, beyond 0) */
    sqlite3_stmt *stmt;
    sqlite3_prepare_v2(store.db, "SELECT stats, heads, rows FROM attention_stats WHERE seq=0 AND"
                       " block='loop' AND iteration=0 AND layer=0", -1, &stmt, NULL);
    CHECK(sqlite3_step(stmt) == SQLITE_ROW, "attention row for iteration 0");
    const float *stats = sqlite3_column_blob(stmt, 0);
    int K = 2 + o.n_distances;
    CHECK(stats[0] == 0 && stats[1] == 0 && stats[2] == 0,
          "first latent attends only itself: distance %g entropy %g beyond %g", stats[0], stats[1], stats[2]);
    int sane = 1;
    for (int q = 0; q < sqlite3_column_int(stmt, 1) * sqlite3_column_int(stmt, 2); q++)
        sane &= stats[q * K] >= 0 && stats[q * K + 1] >= 0 && stats[q * K + 2] >= 0 &&
                stats[q * K + 2] <= 1.0001f && stats[q * K + 4] <= stats[q * K + 2] + 1e-6f;
    CHECK(sane, "attention statistics out of range (negative, mass > 1, or not decreasing in D)");
    sqlite3_finalize(stmt);

    /* the stored statistics of sequence 3 (batch row 3 of the direct pass)
     * at the first core layer of iteration 0: latents of g = 4 with offset 1,
     * so the positions of the rows are not 0, 1, 2, ... */
    sqlite3_prepare_v2(store.db, "SELECT stats, heads, rows FROM attention_stats WHERE seq=3 AND"
                       " block='loop' AND iteration=0 AND layer=0", -1, &stmt, NULL);
    CHECK(sqlite3_step(stmt) == SQLITE_ROW, "attention row of sequence 3 at iteration 0");
    const float *stored_stats = sqlite3_column_blob(stmt, 0);
    int heads = sqlite3_column_int(stmt, 1), n = sqlite3_column_int(stmt, 2);
    CHECK(heads == 2 && n == capture.attention_rows && n == 7,
          "attention row shape %d heads x %d rows, direct pass has %d rows", heads, n,
          capture.attention_rows);
    int exact = 1;
    long worst_ulps = 0;
    for (int h = 0; h < heads && n == capture.attention_rows; h++) {
        for (int i = 0; i < n; i++) {
            const double *row = capture.attention + ((size_t)(3 * heads + h) * n + i) * n;
            double distance = 0, entropy = 0, beyond[3] = {0};
            for (int j = 0; j <= i; j++) {
                int gap = capture.positions[i] - capture.positions[j];
                distance += row[j] * gap;
                if (row[j] > 0) entropy -= row[j] * log(row[j]);
                for (int k = 0; k < o.n_distances; k++)
                    if (gap > o.distances[k]) beyond[k] += row[j];
            }
            const float *got = stored_stats + ((size_t)h * n + i) * K;
            exact &= got[0] == (float)distance;
            for (int k = 0; k < o.n_distances; k++) exact &= got[2 + k] == (float)beyond[k];
            long apart = ulps_apart(got[1], (float)entropy);
            if (apart > worst_ulps) worst_ulps = apart;
        }
    }
    CHECK(exact, "stored attention distance or mass beyond D differs from its definition");
    CHECK(worst_ulps <= 4, "stored attention entropy is %ld float ulps from its definition",
          worst_ulps);

    /* the readers: distances, sites in order, attention rows */
    CHECK(info.n_distances == 3 && info.distances[0] == 4 && info.distances[1] == 16 &&
          info.distances[2] == 64, "recording_find distances: %d", info.n_distances);
    RecordedSite *sites;
    int n_sites;
    CHECK(recording_list_sites(&store, &info, &sites, &n_sites) == 0, "list sites: %s", spiral_last_error());
    static const RecordedSite expected_sites[9] = {
        {"token", 0, 1}, {"token", 1, 1}, {"token", 2, 1}, {"token", 3, 1}, {"latent_in", 0, 4},
        {"latent_in", 1, 2}, {"latent_out", 0, 4}, {"latent_out", 1, 2}, {"coda", 3, 1}};
    int sites_ok = n_sites == 9;
    for (int k = 0; sites_ok && k < 9; k++)
        sites_ok = !strcmp(sites[k].site, expected_sites[k].site) &&
                   sites[k].step == expected_sites[k].step && sites[k].scale == expected_sites[k].scale;
    CHECK(sites_ok, "recorded sites: %d, expected token 0..3, latent_in, latent_out (g 4, 2), coda",
          n_sites);
    free(sites);
    AttentionVisit visit = {.expected = stored_stats, .n_stats = K, .expected_equal = -1,
                            .expected_bytes = (size_t)sqlite3_column_bytes(stmt, 0)};
    CHECK(recording_read_attention(&store, &info, 10, visit_attention, &visit) == 0,
          "read attention: %s", spiral_last_error());
    CHECK(visit.rows_seen == 10 * 8 && visit.bad_size == 0 && visit.expected_equal == 1,
          "attention rows read: %d (expected 80), %d of the wrong size, sequence 3 %s", visit.rows_seen,
          visit.bad_size, visit.expected_equal == 1 ? "equal" : "differs or missing");
    visit = (AttentionVisit){.expected = stored_stats, .n_stats = K, .expected_equal = -1};
    recording_read_attention(&store, &info, 2, visit_attention, &visit);
    CHECK(visit.rows_seen == 2 * 8 && visit.max_seq == 1, "attention rows of the first 2 sequences: %d",
          visit.rows_seen);
    int visited = 0;
    CHECK(recording_read_attention(&store, &info, 10, stop_at_first, &visited) == 7 && visited == 1,
          "a visitor's nonzero return stops the reading");
    sqlite3_finalize(stmt);

    /* resume: lose 3 sequences, record again, only they are redone */
    store_exec(&store, "DELETE FROM states WHERE seq IN (2, 5, 9); DELETE FROM record_sequences WHERE seq IN (2, 5, 9);"
                       " DELETE FROM attention_stats WHERE seq IN (2, 5, 9)");
    CHECK(record_run(&store, "spiral", "lang", &o, &result) == 0 && result.recorded_now == 3,
          "resume recorded %d sequences, expected 3 (%s)", result.recorded_now, spiral_last_error());
    CHECK(store_count(&store, "SELECT count(*) FROM states") == 90, "states after resume");

    /* other settings need --replace; f16 then stores halves */
    o.f16 = 1;
    CHECK(record_run(&store, "spiral", "lang", &o, &result) != 0 && strstr(spiral_last_error(), "--replace"),
          "changed settings without --replace: %s", spiral_last_error());
    o.replace = 1;
    CHECK(record_run(&store, "spiral", "lang", &o, &result) == 0, "replace: %s", spiral_last_error());
    recording_find(&store, "spiral", "lang", "test", &info);
    recording_read_state(&store, &info, 3, 3, "token", 1, stored, &rows, &cols);
    double worst = 0;
    int rounded = 1; /* each value the nearest half of the float32 state, widened back */
    for (int i = 0; i < 24 * 16; i++) {
        worst = fmax(worst, fabs(stored[i] - direct[i]) / fmax(fabs(direct[i]), 1e-2));
        rounded &= stored[i] == (float)(_Float16)direct[i];
    }
    CHECK(worst < 1e-3, "f16 state differs by %.2e relative", worst);
    CHECK(rounded, "an f16 state read back is not the float32 state rounded to halves");
    CHECK(store_count(&store, "SELECT count(*) FROM states WHERE dtype='f16'") == 90, "f16 rows");

    /* no AttentionSummary: states only, and no distances */
    RecordOptions plain = o;
    plain.attention = (AttentionSummary){0};
    plain.split = "val";
    CHECK(record_run(&store, "spiral", "lang", &plain, &result) == 0, "record without attention: %s",
          spiral_last_error());
    CHECK(recording_find(&store, "spiral", "lang", "val", &info) == 0 && info.n_distances == 0 &&
          !strcmp(info.status, "done"), "recording without attention: %d distances, status %s",
          info.n_distances, info.status);
    CHECK(store_count(&store, "SELECT count(*) FROM attention_stats a JOIN recordings r ON r.id = a.recording_id"
                        " WHERE r.split='val'") == 0 &&
          store_count(&store, "SELECT count(*) FROM states s JOIN recordings r ON r.id = s.recording_id"
                        " WHERE r.split='val'") == 10 * 9,
          "a recording without an AttentionSummary stores states only");
    float unused[2 * 3 * 5];
    real probs[2 * 3 * 3] = {0};
    int backwards[3] = {0, 4, 2};
    CHECK(attention_stats_compute(unused, probs, 2, 3, backwards, 3, o.distances) != 0 &&
          strstr(spiral_last_error(), "must ascend"), "descending positions: %s", spiral_last_error());

    /* dense: every layer is an iteration: token t = 0..3, coda; no latents */
    o.f16 = 0;
    CHECK(record_run(&store, "dense", "lang", &o, &result) == 0, "record dense: %s", spiral_last_error());
    CHECK(store_count(&store, "SELECT count(*) FROM states s JOIN recordings r ON r.id = s.recording_id JOIN runs"
                        " ON runs.id = r.run_id WHERE runs.name='dense' AND site='token'") == 10 * 4,
          "dense token states: one per layer plus the prelude output");
    CHECK(store_count(&store, "SELECT count(*) FROM states s JOIN recordings r ON r.id = s.recording_id JOIN runs"
                        " ON runs.id = r.run_id WHERE runs.name='dense' AND site LIKE 'latent%'") == 0,
          "dense has no latent sites");
    /* dense: prelude and coda attention are stored apart (blocks pre and post),
     * the 3 core layers as iterations 1..3 */
    CHECK(store_count(&store, "SELECT count(*) FROM attention_stats a JOIN recordings r ON r.id = a.recording_id"
                        " JOIN runs ON runs.id = r.run_id WHERE runs.name='dense' AND block IN ('pre', 'post')") == 2 * 10 &&
          store_count(&store, "SELECT count(*) FROM attention_stats a JOIN recordings r ON r.id = a.recording_id"
                        " JOIN runs ON runs.id = r.run_id WHERE runs.name='dense' AND block='loop'") == 3 * 10,
          "dense attention rows: prelude/coda must not overwrite each other");

    /* an insert that fails on the queue's thread (a trigger refuses sequence
     * 5's states): the error reaches the caller, the batches before it stay
     * committed, its batch is rolled back; the same recording then completes */
    RecordOptions val = o;
    val.split = "val";
    store_exec(&store, "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.states WHEN NEW.seq = 5"
                       " BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END");
    CHECK(record_run(&store, "dense", "lang", &val, &result) != 0 &&
          strstr(spiral_last_error(), "refused by the test trigger"),
          "a failed insert on the queue's thread: %s", spiral_last_error());
    const char *dense_val = "SELECT count(*) FROM %s x JOIN recordings r ON r.id = x.recording_id"
                            " JOIN runs ON runs.id = r.run_id WHERE runs.name='dense' AND r.split='val'";
    char sql[400];
    snprintf(sql, sizeof sql, dense_val, "record_sequences");
    long long kept = store_count(&store, sql);
    snprintf(sql, sizeof sql, dense_val, "states");
    long long kept_states = store_count(&store, sql);
    CHECK(kept == 4 && kept_states == 4 * 5, "after the failed batch: %lld sequences and %lld states "
          "kept, expected the first batch's 4 and 20", kept, kept_states);
    store_exec(&store, "DROP TRIGGER refuse");
    CHECK(record_run(&store, "dense", "lang", &val, &result) == 0 && result.recorded_now == 6,
          "re-record after the failure: %d recorded now (expected 6): %s", result.recorded_now,
          spiral_last_error());
    CHECK(store_count(&store, sql) == 10 * 5, "states after the re-record: %lld, expected 50",
          store_count(&store, sql));

    /* f16 refuses a state beyond its range (65504) rather than storing
     * infinities no probe could use: a run whose embedding is scaled by 1e7
     * (states of about 1e5), its checkpoint replaced by the scaled weights */
    train_run(&store, "huge", spiral);
    RunRow huge;
    long long huge_step;
    char *huge_path, *huge_sha, scaled_path[600], hex[65], update[1400];
    SpiralConfig huge_cfg;
    ParamLayout huge_layout;
    real *huge_values;
    int loaded = store_run_find(&store, "huge", &huge) == 0 &&
                 store_checkpoint_last(&store, huge.id, &huge_step, &huge_path, &huge_sha) == 0 &&
                 weights_load(huge_path, &huge_cfg, &huge_layout, &huge_values) == 0;
    CHECK(loaded, "the run to scale: %s", spiral_last_error());
    if (loaded) {
        const ParamTensor *emb = &huge_layout.tensors[param_layout_find(&huge_layout, "tok_emb.weight")];
        for (size_t i = 0; i < emb->numel; i++) huge_values[emb->offset + i] *= 1e7;
        snprintf(scaled_path, sizeof scaled_path, "%s/huge-scaled.safetensors", dir);
        CHECK(weights_save(scaled_path, &huge_cfg, &huge_layout, huge_values) == 0 &&
              file_sha256_hex(scaled_path, hex) == 0, "saving the scaled weights: %s",
              spiral_last_error());
        snprintf(update, sizeof update, "UPDATE checkpoints SET path='%s', sha256='%s' WHERE run_id=%lld",
                 scaled_path, hex, huge.id);
        store_exec(&store, update);
        RecordOptions halves = o;
        halves.f16 = 1;
        CHECK(record_run(&store, "huge", "lang", &halves, &result) != 0 &&
              strstr(spiral_last_error(), "beyond float16's range") &&
              strstr(spiral_last_error(), "--dtype f32"),
              "f16 beyond its range: %s", spiral_last_error());
        CHECK(store_count(&store, "SELECT count(*) FROM states s JOIN recordings r ON r.id = s.recording_id"
                            " JOIN runs ON runs.id = r.run_id WHERE runs.name='huge'") == 0,
              "a refused f16 batch left states behind");
        halves.f16 = 0;
        halves.replace = 1;
        CHECK(record_run(&store, "huge", "lang", &halves, &result) == 0 && result.recorded_now == 10,
              "the same run in float32: %s", spiral_last_error());
        free(huge_path);
        free(huge_sha);
        free(huge_values);
        param_layout_free(&huge_layout);
        store_run_free(&huge);
    }

    /* bad input */
    CHECK(record_run(&store, "nope", "lang", &o, &result) != 0 && strstr(spiral_last_error(), "no run named 'nope'"),
          "unknown run: %s", spiral_last_error());
    CHECK(record_run(&store, "spiral", "nope", &o, &result) != 0 && strstr(spiral_last_error(), "no dataset named 'nope'"),
          "unknown dataset: %s", spiral_last_error());
    o.split = "sideways";
    CHECK(record_run(&store, "spiral", "lang", &o, &result) != 0 && strstr(spiral_last_error(), "--split"),
          "bad split: %s", spiral_last_error());
    o.split = "test";
    o.n_sequences = 100000;
    CHECK(record_run(&store, "spiral", "lang", &o, &result) != 0 && strstr(spiral_last_error(), "room for only"),
          "too many sequences: %s", spiral_last_error());

    /* a checkpoint modified after training is refused */
    FILE *tampered = fopen(path, "r+b");
    fseek(tampered, -4, SEEK_END);
    fputc(0x5a, tampered);
    fclose(tampered);
    CHECK(record_run(&store, "spiral", "lang", &o, &result) != 0 &&
          strstr(spiral_last_error(), "sha256") && strstr(spiral_last_error(), path),
          "tampered checkpoint accepted: %s", spiral_last_error());

    free(path);
    free(sha);
    free(values);
    param_layout_free(&layout);
    model_free(&model);
    store_run_free(&run);
    dataset_free(&ds);
    store_close(&store);
    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary(argv[0]);
}
