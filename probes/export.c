/*
 * export.c: one recorded site as NumPy arrays (export.h).
 */
#include "export.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dataset.h"
#include "error.h"
#include "npy.h"
#include "probe_rows.h"
#include "recording_store.h"
#include "steps.h"

/* "<out without .npy>.<suffix>.npy" */
static void side_path(char *buffer, size_t size, const char *out, const char *suffix) {
    size_t n = strlen(out);
    if (n > 4 && !strcmp(out + n - 4, ".npy")) n -= 4;
    snprintf(buffer, size, "%.*s.%s.npy", (int)n, out, suffix);
}

/* The rows of every sequence, one after the other: their states (n_rows,
 * d), and for each row its sequence, its token position in the window and
 * its token's index in the dataset. */
typedef struct {
    float *states;           /* (n_rows, d) */
    int32_t *seq, *pos;      /* (n_rows) */
    size_t *token;           /* (n_rows) */
} SiteRows;

/* Reads every sequence's state of the site into rows (allocated here, n_rows
 * = n_sequences * geo->J). */
static int read_rows(Store *store, const RecordingInfo *info, const ExportOptions *options,
                     const ChunkGeometry *geo, SiteRows *rows) {
    int L = info->seq_len, rows_per_seq = geo->J;
    size_t n_rows = (size_t)info->n_sequences * rows_per_seq, d = (size_t)info->d_model;
    int *pos_of_row = malloc((size_t)rows_per_seq * sizeof *pos_of_row);
    float *one = malloc((size_t)L * d * sizeof(float));          /* (L, d): one sequence */
    size_t *index = malloc((size_t)L * sizeof(size_t));          /* (L) */
    rows->states = malloc(n_rows * d * sizeof(float));
    rows->seq = malloc(n_rows * sizeof(int32_t));
    rows->pos = malloc(n_rows * sizeof(int32_t));
    rows->token = malloc(n_rows * sizeof(size_t));
    int status = -1;
    if (!pos_of_row || !one || !index || !rows->states || !rows->seq || !rows->pos ||
        !rows->token) {
        spiral_error("out of memory: %zu rows x %zu", n_rows, d);
        goto done;
    }
    site_row_positions(geo, pos_of_row);
    for (int seq = 0; seq < info->n_sequences; seq++) {
        int n, cols;
        if (recording_read_state(store, info, seq, options->iteration, options->site, geo->g, one,
                              &n, &cols) ||
            recording_read_token_index(store, info, seq, index))
            goto done;
        if (n != rows_per_seq || (size_t)cols != d) {
            spiral_error("sequence %d: state is %d x %d, expected %d x %zu", seq, n, cols,
                         rows_per_seq, d);
            goto done;
        }
        size_t base = (size_t)seq * rows_per_seq;
        memcpy(rows->states + base * d, one, (size_t)n * d * sizeof(float));
        for (int r = 0; r < n; r++) {
            rows->seq[base + r] = seq;
            rows->pos[base + r] = pos_of_row[r];
            rows->token[base + r] = row_token_index(index, pos_of_row, r);
        }
    }
    status = 0;
done:
    free(pos_of_row);
    free(one);
    free(index);
    return status;
}

/* Writes the states, .seq, .pos and one array per label of ds. */
static int write_rows(const ExportOptions *options, const SiteRows *rows, size_t n_rows,
                      size_t d, const Dataset *ds) {
    int64_t shape[2] = {(int64_t)n_rows, (int64_t)d}, shape1[1] = {(int64_t)n_rows};
    char path[1200];
    if (npy_write_f32(options->out, rows->states, 2, shape)) return -1;
    side_path(path, sizeof path, options->out, "seq");
    if (npy_write_i32(path, rows->seq, 1, shape1)) return -1;
    side_path(path, sizeof path, options->out, "pos");
    if (npy_write_i32(path, rows->pos, 1, shape1)) return -1;
    int32_t *column = malloc((n_rows ? n_rows : 1) * sizeof *column);   /* (n_rows) */
    if (!column) return spiral_error("out of memory: %zu label values", n_rows);
    for (int l = 0; l < ds->n_labels; l++) {
        for (size_t r = 0; r < n_rows; r++) column[r] = ds->labels[l].values[rows->token[r]];
        side_path(path, sizeof path, options->out, ds->labels[l].name);
        if (npy_write_i32(path, column, 1, shape1)) {
            free(column);
            return -1;
        }
    }
    free(column);
    return 0;
}

int export_site(Store *store, const ExportOptions *options, ExportResult *result) {
    RecordingInfo info;
    RunRow run_row = {0};
    Dataset ds = {0};
    SpiralConfig cfg;
    SiteRows rows = {0};
    int status = -1;
    memset(result, 0, sizeof *result);
    if (recording_find(store, options->run, options->dataset, options->split, &info) ||
        store_run_find(store, options->run, &run_row) ||
        config_parse(&cfg, run_row.config, options->run) ||
        store_dataset_load(store, options->dataset, &ds, NULL))
        goto done;
    int is_latent = !strcmp(options->site, "latent_in") || !strcmp(options->site, "latent_out");
    if (is_latent && (options->iteration < 0 || options->iteration >= cfg.n_iters)) {
        spiral_error("--iteration %d: run %s has iterations 0..%d", options->iteration,
                     options->run, cfg.n_iters - 1);
        goto done;
    }
    int scale = options->scale;
    if (!scale) scale = is_latent ? step_chunk_size(&cfg, options->iteration) : 1;
    ChunkGeometry geo;
    if (site_geometry(&cfg, options->site, options->iteration, scale, info.seq_len, &geo) ||
        read_rows(store, &info, options, &geo, &rows))
        goto done;
    size_t n_rows = (size_t)info.n_sequences * geo.J, d = (size_t)info.d_model;
    if (write_rows(options, &rows, n_rows, d, &ds)) goto done;
    result->n_rows = n_rows;
    result->d = d;
    result->scale = geo.g;
    result->n_sequences = info.n_sequences;
    result->n_labels = ds.n_labels;
    status = 0;
done:
    free(rows.states);
    free(rows.seq);
    free(rows.pos);
    free(rows.token);
    dataset_free(&ds);
    store_run_free(&run_row);
    return status;
}
