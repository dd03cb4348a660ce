/*
 * probe_features.c: the features of a site from the recording, one-hot
 * positions or the random model (see probe_features.h).
 */
#include "probe_features.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "probe_random.h"

/* Reads the recorded states of site for every sequence into X (n_seq,
 * rows, d), checking each state's shape. */
static int read_recorded(FeatureReader *reader, const SiteInfo *site, int d, float *X) {
    size_t per_seq = (size_t)site->rows * d;
    float *buffer = malloc((size_t)reader->L * d * sizeof *buffer);
    if (!buffer) return spiral_error("out of memory reading states");
    for (int s = 0; s < reader->n_seq; s++) {
        int rows, cols;
        if (recording_read_state(reader->store, reader->info, s, site->iteration, site->site,
                              site->scale, buffer, &rows, &cols)) {
            free(buffer);
            return -1;
        }
        if (rows != site->rows || cols != d) {
            free(buffer);
            return spiral_error("sequence %d, %s iteration %d: state is %d x %d, expected %d x %d",
                                s, site->site, site->iteration, rows, cols, site->rows, d);
        }
        memcpy(X + (size_t)s * per_seq, buffer, per_seq * sizeof *buffer);
    }
    free(buffer);
    return 0;
}

int probe_features_load(FeatureReader *reader, const SiteInfo *site, int source, Features *f,
                        float **X) {
    memset(f, 0, sizeof *f);
    f->rows = site->rows;
    f->pos = site->pos;
    f->L = reader->L;
    *X = NULL;
    if (source == SOURCE_LEXICAL) {
        f->X = NULL;
        f->codes = reader->codes;
        f->types = reader->types;
        f->window = site->lexical_window;
        f->d = f->window * f->types;
        if (!f->codes || f->d < 1)
            return spiral_error("lexical features of %s iteration %d: no token types", site->site,
                                site->iteration);
        return 0;
    }
    if (source == SOURCE_POSITION) {
        f->X = NULL;
        f->d = site->rows < PROBE_POSITION_BUCKETS ? site->rows : PROBE_POSITION_BUCKETS;
        return 0;
    }
    int d = reader->info->d_model;
    size_t count = (size_t)reader->n_seq * site->rows * d;
    f->d = d;
    *X = malloc(count * sizeof **X);
    if (!*X)
        return spiral_error("out of memory for %d sequences x %d rows x %d features",
                            reader->n_seq, site->rows, d);
    f->X = *X;
    if (source == SOURCE_RECORDED) return read_recorded(reader, site, d, *X);
    if (!reader->random_file &&
        probe_random_states(reader->cfg, reader->sites, reader->n_sites, reader->tokens,
                            reader->n_seq, reader->L, reader->random_seed, &reader->random_file))
        return -1;
    return probe_random_read(reader->random_file, *X, count, site->random_offset);
}

/* A token and how often it occurs, for ranking the types. */
typedef struct {
    int token;
    size_t count;
} TokenCount;

/* Most frequent first, then the smaller token. */
static int compare_token_count(const void *a, const void *b) {
    const TokenCount *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return (x->token > y->token) - (x->token < y->token);
}

int probe_lexical_types(int *codes, int *n_types, const int *tokens, size_t n, int max_types) {
    int max_token = 0;
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0) return spiral_error("lexical types: token %d at %zu", tokens[i], i);
        if (tokens[i] > max_token) max_token = tokens[i];
    }
    if (max_types < 1) max_types = 1;
    TokenCount *counts = calloc((size_t)max_token + 1, sizeof *counts);
    int *type_of = malloc(((size_t)max_token + 1) * sizeof *type_of);
    if (!counts || !type_of) {
        free(counts);
        free(type_of);
        return spiral_error("out of memory ranking %d token ids", max_token + 1);
    }
    for (int t = 0; t <= max_token; t++) counts[t].token = t;
    for (size_t i = 0; i < n; i++) counts[tokens[i]].count++;
    qsort(counts, (size_t)max_token + 1, sizeof *counts, compare_token_count);
    int distinct = 0;
    while (distinct <= max_token && counts[distinct].count > 0) distinct++;
    int types = distinct < max_types ? distinct : max_types;
    if (types < 1) types = 1;
    /* with more distinct tokens than types, the last type is "other" */
    int kept = distinct > types ? types - 1 : types;
    for (int r = 0; r <= max_token; r++) type_of[counts[r].token] = r < kept ? r : types - 1;
    for (size_t i = 0; i < n; i++) codes[i] = type_of[tokens[i]];
    *n_types = types;
    free(counts);
    free(type_of);
    return 0;
}

void probe_features_close(FeatureReader *reader) {
    if (reader->random_file) fclose(reader->random_file);
    reader->random_file = NULL;
}

void probe_features_gather(float *out, const Features *f, const size_t *rows, int n) {
    for (int i = 0; i < n; i++) {
        float *dst = out + (size_t)i * f->d;
        if (f->X) {
            memcpy(dst, f->X + rows[i] * f->d, (size_t)f->d * sizeof *dst);
        } else if (f->codes) {
            size_t seq = rows[i] / (size_t)f->rows;
            int p = f->pos[rows[i] % (size_t)f->rows];
            const int *window_codes = f->codes + seq * f->L;
            memset(dst, 0, (size_t)f->d * sizeof *dst);
            for (int m = 0; m < f->window && p - m >= 0; m++)
                dst[(size_t)m * f->types + window_codes[p - m]] = 1.0f;
        } else {
            int r = (int)(rows[i] % (size_t)f->rows);
            memset(dst, 0, (size_t)f->d * sizeof *dst);
            dst[(size_t)r * f->d / f->rows] = 1.0f;
        }
    }
}
