/*
 * probe_random.c: the random model's states of every site, in a temporary
 * file (see probe_random.h). The model runs RANDOM_BATCH windows per
 * forward pass; its observer converts each recorded event to float and
 * writes it at its site's offset.
 */
#include "probe_random.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "model.h"
#include "steps.h"

#define RANDOM_BATCH 8

/* The observer's view of the run: where each site's states go. */
typedef struct {
    const SiteInfo *sites;
    int n_sites;
    const SpiralConfig *cfg;
    int d;
    const int *batch_seq;     /* (B) sequence of each batch row */
    int fd;
    float *buffer;            /* (L, d) */
    int *written;             /* (n_sites) sequences written per site */
    int failed;
} RandomStates;

/* Writes all of buffer (bytes) at offset, however many calls it takes. */
static int write_at(int fd, const void *buffer, size_t bytes, size_t offset) {
    const char *p = buffer;
    while (bytes > 0) {
        ssize_t n = pwrite(fd, p, bytes, (off_t)offset);
        if (n <= 0) return spiral_error("writing random-model states to a temporary file failed");
        p += n;
        bytes -= (size_t)n;
        offset += (size_t)n;
    }
    return 0;
}

/* Reads bytes at offset into buffer. */
static int read_at(int fd, void *buffer, size_t bytes, size_t offset) {
    char *p = buffer;
    while (bytes > 0) {
        ssize_t n = pread(fd, p, bytes, (off_t)offset);
        if (n <= 0) return spiral_error("reading random-model states from a temporary file failed");
        p += n;
        bytes -= (size_t)n;
        offset += (size_t)n;
    }
    return 0;
}

/* The observer of the random model's forward pass. */
static void observe_random(void *user, const ObserveEvent *e) {
    RandomStates *r = user;
    SiteKey key;
    if (r->failed || !event_site(e, r->cfg, &key)) return;
    const char *site = key.site;
    int iteration = key.step, scale = key.scale;
    int k = 0;
    while (k < r->n_sites && (strcmp(r->sites[k].site, site) || r->sites[k].iteration != iteration ||
                              r->sites[k].scale != scale))
        k++;
    if (k == r->n_sites) return;  /* not recorded: nothing to compare with */
    const SiteInfo *s = &r->sites[k];
    if (e->rows != s->rows || e->cols != r->d) {
        spiral_error("random model: %s iteration %d has %d x %d rows, the recording %d x %d",
                     site, iteration, e->rows, e->cols, s->rows, r->d);
        r->failed = 1;
        return;
    }
    size_t count = (size_t)e->rows * e->cols;
    for (int b = 0; b < e->B && !r->failed; b++) {
        const real *src = e->data + (size_t)b * count;
        for (size_t i = 0; i < count; i++) r->buffer[i] = (float)src[i];
        size_t offset = (s->random_offset + (size_t)r->batch_seq[b] * count) * sizeof(float);
        if (write_at(r->fd, r->buffer, count * sizeof(float), offset)) r->failed = 1;
        r->written[k]++;
    }
}

int probe_random_states(const SpiralConfig *cfg, SiteInfo *sites, int n_sites,
                               const int *tokens, int n_seq, int L, unsigned long seed,
                               FILE **file) {
    Model model = {0};
    RandomStates r = {0};
    int batch_seq[RANDOM_BATCH], status = -1;
    size_t offset = 0;
    for (int k = 0; k < n_sites; k++) {
        sites[k].random_offset = offset;
        offset += (size_t)n_seq * sites[k].rows * cfg->d_model;
    }
    *file = tmpfile();
    r.buffer = malloc((size_t)L * cfg->d_model * sizeof *r.buffer);
    r.written = calloc((size_t)n_sites, sizeof *r.written);
    if (!*file || !r.buffer || !r.written) {
        spiral_error("cannot create a temporary file for the random model's states (%.1f MB)",
                     offset * 4.0 / 1e6);
        goto done;
    }
    if (model_build(&model, cfg)) goto done;
    model_init_weights(&model, seed);
    r.sites = sites;
    r.n_sites = n_sites;
    r.cfg = cfg;
    r.d = cfg->d_model;
    r.batch_seq = batch_seq;
    r.fd = fileno(*file);
    Observer observer = {observe_random, &r, 0, NULL};
    for (int s0 = 0; s0 < n_seq; s0 += RANDOM_BATCH) {
        int B = n_seq - s0 < RANDOM_BATCH ? n_seq - s0 : RANDOM_BATCH;
        for (int b = 0; b < B; b++) batch_seq[b] = s0 + b;
        if (model_forward(&model, tokens + (size_t)s0 * L, NULL, B, L, &observer)) goto done;
        if (r.failed) goto done;
    }
    for (int k = 0; k < n_sites; k++)
        if (r.written[k] != n_seq) {
            spiral_error("random model: the forward pass produced no %s iteration %d scale %d "
                         "(was the recording made with this config?)", sites[k].site,
                         sites[k].iteration, sites[k].scale);
            goto done;
        }
    status = 0;
done:
    model_free(&model);
    free(r.buffer);
    free(r.written);
    return status;
}

int probe_random_read(FILE *file, float *out, size_t count, size_t offset) {
    return read_at(fileno(file), out, count * sizeof *out, offset * sizeof *out);
}
