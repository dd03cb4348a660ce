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
    f->rows = site->rows;
    f->pos = site->pos;
    *X = NULL;
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

void probe_features_close(FeatureReader *reader) {
    if (reader->random_file) fclose(reader->random_file);
    reader->random_file = NULL;
}

void probe_features_gather(float *out, const Features *f, const size_t *rows, int n) {
    for (int i = 0; i < n; i++) {
        float *dst = out + (size_t)i * f->d;
        if (f->X) {
            memcpy(dst, f->X + rows[i] * f->d, (size_t)f->d * sizeof *dst);
        } else {
            int r = (int)(rows[i] % (size_t)f->rows);
            memset(dst, 0, (size_t)f->d * sizeof *dst);
            dst[(size_t)r * f->d / f->rows] = 1.0f;
        }
    }
}
