/*
 * cmd_export.c: `spiral export`: one recorded site as a NumPy array, with
 * the dataset's labels beside it, for study outside spiral.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "dataset.h"
#include "error.h"
#include "npy.h"
#include "recording_store.h"
#include "steps.h"
#include "scale.h"
#include "store.h"

static const char *help =
    "usage: spiral export --store S.db --run RUN --data DATASET --site SITE\n"
    "                     --iteration T --out STATES.npy [--split test] [--scale G]\n"
    "                     [--format npy]\n"
    "\n"
    "Writes the recorded states of one (site, iteration, scale) for every\n"
    "sequence as a float32 array (rows, d): rows are the sequences' positions\n"
    "(tokens, or latents at scale G) one after the other. Beside it, for the\n"
    "same rows: STATES.seq.npy (sequence), STATES.pos.npy (token position of\n"
    "the row in its window; a latent's last member) and STATES.<label>.npy\n"
    "(int32) for every label of the dataset (-1 where undefined). SITE is\n"
    "token, latent_in, latent_out or coda; G defaults to the iteration's chunk\n"
    "size for latent sites and 1 otherwise.\n";

/* "<out without .npy>.<suffix>.npy" */
static void side_path(char *buffer, size_t size, const char *out, const char *suffix) {
    size_t n = strlen(out);
    if (n > 4 && !strcmp(out + n - 4, ".npy")) n -= 4;
    snprintf(buffer, size, "%.*s.%s.npy", (int)n, out, suffix);
}

int cmd_export(int argc, char **argv) {
    const char *store_path = NULL, *run = NULL, *data = NULL, *site = NULL, *out = NULL;
    const char *split = "test", *iter_text = NULL, *scale_text = NULL, *format = "npy";
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--store", &store_path, NULL},
        {"--run", &run, NULL},
        {"--data", &data, NULL},
        {"--site", &site, NULL},
        {"--iteration", &iter_text, NULL},
        {"--scale", &scale_text, NULL},
        {"--split", &split, NULL},
        {"--out", &out, NULL},
        {"--format", &format, NULL},
    };
    if (cli_parse_options("export", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!store_path || !run || !data || !site || !iter_text || !out)
        return cli_usage_error("export", "--store, --run, --data, --site, --iteration and --out are required");
    if (strcmp(format, "npy")) return cli_usage_error("export", "--format: only npy is supported, got '%s'", format);
    int is_latent = !strcmp(site, "latent_in") || !strcmp(site, "latent_out");
    if (!is_latent && strcmp(site, "token") && strcmp(site, "coda"))
        return cli_usage_error("export", "--site: expected token, latent_in, latent_out or coda, got '%s'", site);
    long iteration, scale = 0;
    if (cli_parse_long("--iteration", iter_text, 0, 1 << 20, &iteration)) return 2;
    if (scale_text && cli_parse_long("--scale", scale_text, 1, 1 << 20, &scale)) return 2;

    Store store;
    if (store_open(&store, store_path, 0)) return cli_fail("export");
    RecordingInfo info;
    RunRow run_row = {0};
    Dataset ds = {0};
    SpiralConfig cfg;
    float *states = NULL, *one = NULL;
    int32_t *column = NULL;
    size_t *index = NULL, *row_token = NULL;
    int32_t *row_seq = NULL, *row_pos = NULL;
    int *pos_of_row = NULL;
    int status = -1;
    if (recording_find(&store, run, data, split, &info) || store_run_find(&store, run, &run_row) ||
        config_parse(&cfg, run_row.config, run) || store_dataset_load(&store, data, &ds, NULL))
        goto done;
    /* the rows of one sequence and their token positions */
    int L = info.seq_len;
    if (is_latent && (iteration < 0 || iteration >= cfg.n_iters)) {
        spiral_error("--iteration %ld: run %s has iterations 0..%d", iteration, run, cfg.n_iters - 1);
        goto done;
    }
    if (!scale) scale = is_latent ? step_chunk_size(&cfg, (int)iteration) : 1;
    ChunkGeometry geo;
    if (site_geometry(&cfg, site, (int)iteration, (int)scale, L, &geo)) goto done;
    int g = geo.g, rows_per_seq = geo.J;
    pos_of_row = malloc((size_t)geo.J * sizeof *pos_of_row);
    if (!pos_of_row) {
        spiral_error("out of memory");
        goto done;
    }
    site_row_positions(&geo, pos_of_row);
    size_t n_rows = (size_t)info.n_sequences * rows_per_seq, d = (size_t)info.d_model;
    states = malloc(n_rows * d * sizeof(float));
    one = malloc((size_t)L * d * sizeof(float));
    index = malloc((size_t)L * sizeof(size_t));
    row_token = malloc(n_rows * sizeof(size_t));
    row_seq = malloc(n_rows * sizeof(int32_t));
    row_pos = malloc(n_rows * sizeof(int32_t));
    column = malloc(n_rows * sizeof(int32_t));
    if (!states || !one || !index || !row_token || !row_seq || !row_pos || !column) {
        spiral_error("out of memory: %zu rows x %zu", n_rows, d);
        goto done;
    }
    for (int seq = 0; seq < info.n_sequences; seq++) {
        int rows, cols;
        if (recording_read_state(&store, &info, seq, (int)iteration, site, g, one, &rows, &cols) ||
            recording_read_token_index(&store, &info, seq, index))
            goto done;
        if (rows != rows_per_seq || (size_t)cols != d) {
            spiral_error("sequence %d: state is %d x %d, expected %d x %zu", seq, rows, cols, rows_per_seq, d);
            goto done;
        }
        size_t base = (size_t)seq * rows_per_seq;
        memcpy(states + base * d, one, (size_t)rows * d * sizeof(float));
        for (int r = 0; r < rows; r++) {
            row_seq[base + r] = seq;
            row_pos[base + r] = pos_of_row[r];
            row_token[base + r] = index[pos_of_row[r]];
        }
    }
    int64_t shape[2] = {(int64_t)n_rows, (int64_t)d}, shape1[1] = {(int64_t)n_rows};
    char path[1200];
    if (npy_write_f32(out, states, 2, shape)) goto done;
    side_path(path, sizeof path, out, "seq");
    if (npy_write_i32(path, row_seq, 1, shape1)) goto done;
    side_path(path, sizeof path, out, "pos");
    if (npy_write_i32(path, row_pos, 1, shape1)) goto done;
    for (int l = 0; l < ds.n_labels; l++) {
        for (size_t r = 0; r < n_rows; r++) column[r] = ds.labels[l].values[row_token[r]];
        side_path(path, sizeof path, out, ds.labels[l].name);
        if (npy_write_i32(path, column, 1, shape1)) goto done;
    }
    printf("wrote %s: (%zu, %zu) float32, %s iteration %ld scale %d of %d sequences; "
           "with .seq, .pos and %d label arrays\n", out, n_rows, d, site, iteration, g,
           info.n_sequences, ds.n_labels);
    status = 0;
done:
    if (status) cli_fail("export");
    free(states);
    free(one);
    free(index);
    free(row_token);
    free(row_seq);
    free(row_pos);
    free(pos_of_row);
    free(column);
    dataset_free(&ds);
    store_run_free(&run_row);
    store_close(&store);
    return status ? 1 : 0;
}
