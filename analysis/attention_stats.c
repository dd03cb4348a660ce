/*
 * attention_stats.c: mean attention distance, entropy and mass beyond each
 * distance, per head and query row (see attention_stats.h).
 */
#include "attention_stats.h"

#include <stdlib.h>

#include "error.h"
#include "fastmath.h"
#include "parallel.h"

/* Probabilities per call of entropy_terms (a fixed count lets the compiler
 * vectorize the loop at -O2). */
#define ENTROPY_BLOCK 8

/* terms[l] = p[l] log p[l] for ENTROPY_BLOCK probabilities p >= 0. */
static void entropy_terms(float *restrict terms, const float *restrict p) {
    for (int l = 0; l < ENTROPY_BLOCK; l++) terms[l] = p[l] * log_float(p[l]);
}

/* One attention statistics job: the heads' probabilities (heads, n, n)
 * and the scratch of each pool thread (see head_stats). */
typedef struct {
    float *stats;              /* (heads, n, K) */
    const real *probs;         /* (heads, n, n) */
    int n, n_distances;
    const int *pos, *distances;
    double *mass_before;       /* (threads, n + 1) the mass on the keys before key j */
    float *row_probs, *terms;  /* (threads, n + ENTROPY_BLOCK) one query's p, zero padded to
                                  a whole block, and their p log p */
} StatsJob;

/* The statistics of head h. Positions ascend, so the keys beyond D are a
 * prefix j < m_i(D) of the row, and m_i(D) never decreases with i:
 * beyond_i(D) is the running mass before key m_i(D) (the same sum in the
 * same order as adding each P_ij with pos_i - pos_j > D). Sums are in
 * double; P log P is in float (log_float), which moves the stored float32
 * entropy by at most a few ulps. */
static void head_stats(void *ctx, int h, int thread) {
    const StatsJob *job = ctx;
    int n = job->n, K = 2 + job->n_distances;
    const int *pos = job->pos;
    double *mass_before = job->mass_before + (size_t)thread * (n + 1);
    float *row_probs = job->row_probs + (size_t)thread * (n + ENTROPY_BLOCK);
    float *terms = job->terms + (size_t)thread * (n + ENTROPY_BLOCK);
    const real *P = job->probs + (size_t)h * n * n;
    int first_near[RECORD_MAX_DISTANCES] = {0}; /* m_i(D_k): first key within D_k */
    for (int i = 0; i < n; i++) {
        const real *row = P + (size_t)i * n;
        int padded = (i + ENTROPY_BLOCK) / ENTROPY_BLOCK * ENTROPY_BLOCK; /* > i */
        for (int j = 0; j <= i; j++) row_probs[j] = (float)row[j];
        for (int j = i + 1; j < padded; j++) row_probs[j] = 0;
        for (int j = 0; j < padded; j += ENTROPY_BLOCK) entropy_terms(terms + j, row_probs + j);
        double distance = 0, entropy = 0, mass = 0;
        for (int j = 0; j <= i; j++) {
            double p = row[j];
            mass_before[j] = mass;
            distance += p * (pos[i] - pos[j]);
            entropy -= terms[j];
            mass += p;
        }
        mass_before[i + 1] = mass;
        float *out = job->stats + ((size_t)h * n + i) * K;
        out[0] = (float)distance;
        out[1] = (float)entropy;
        for (int k = 0; k < job->n_distances; k++) {
            while (first_near[k] <= i && pos[i] - pos[first_near[k]] > job->distances[k])
                first_near[k]++;
            out[2 + k] = (float)mass_before[first_near[k]];
        }
    }
}

/* The heads run on the thread pool, each with its own scratch: every
 * head's numbers are the same for any thread count. */
int attention_stats_compute(float *stats, const real *probs, int heads, int n, const int *pos,
                            int n_distances, const int *distances) {
    if (n_distances < 0 || n_distances > RECORD_MAX_DISTANCES)
        return spiral_error("attention statistics: %d distances, at most %d", n_distances,
                            RECORD_MAX_DISTANCES);
    for (int i = 1; i < n; i++)
        if (pos[i] < pos[i - 1])
            return spiral_error("attention statistics: row %d stands at position %d, before row %d "
                                "(position %d); positions must ascend", i, pos[i], i - 1, pos[i - 1]);
    size_t threads = (size_t)parallel_threads();
    StatsJob job = {stats, probs, n, n_distances, pos, distances,
                    malloc(threads * ((size_t)n + 1) * sizeof(double)),
                    malloc(threads * ((size_t)n + ENTROPY_BLOCK) * sizeof(float)),
                    malloc(threads * ((size_t)n + ENTROPY_BLOCK) * sizeof(float))};
    int status = 0;
    if (!job.mass_before || !job.row_probs || !job.terms)
        status = spiral_error("out of memory computing attention statistics");
    else /* about 12 operations per probability, n^2 / 2 per head */
        parallel_for_work(heads, head_stats, &job, 6.0 * heads * (double)n * n);
    free(job.mass_before);
    free(job.row_probs);
    free(job.terms);
    return status;
}

double attention_uniform_distance(const int *pos, int n) {
    double total = 0, prefix = 0;   /* prefix = sum_{j<=i} pos_j */
    for (int i = 0; i < n; i++) {
        prefix += pos[i];
        total += pos[i] - prefix / (i + 1);
    }
    return n > 0 ? total / n : 0.0;
}

/* The AttentionSummary's function: batch row b of event e. */
static int summarize_event(void *context, const ObserveEvent *e, int b, int n_distances,
                           const int *distances, float *stats) {
    const real *probs = e->data + (size_t)b * e->heads * e->rows * e->rows;
    return attention_stats_compute(stats, probs, e->heads, e->rows, e->pos, n_distances, distances);
}

AttentionSummary attention_stats_summary(void) {
    AttentionSummary summary = {summarize_event, NULL, 1};
    return summary;
}
