/*
 * bench_probe.c: how long probes take, beside what the same arithmetic
 * costs as plain OpenBLAS, measured in the same run.
 *
 * 1. One probe: n = 100000 rows, d = 256 features, K = 10 classes (labels
 *    from a random linear model plus Gumbel noise on correlated features,
 *    so the fit has real work to do), validation 20000 rows. Timed: one fit
 *    at lambda 1e-3, and the probe's whole L2 path (1e-1 .. 1e-4,
 *    warm-started, as probe_run does it), both to the probes' tolerance
 *    (PROBE_DEFAULT_TOL). Reference: the same number of gradient evaluations done as plain
 *    OpenBLAS on an already standardized double matrix S (n, d):
 *        Z = S W^T (dgemm),  Z <- softmax(Z) - Y,  G = Z^T S (dgemm)
 *    so the ratio is what the fitter adds (standardizing blocks on the fly,
 *    line search, L-BFGS updates). With OpenBLAS on 1 thread and on all.
 * 2. All probes of a typical run: the dyck-spiral run of examples/runs
 *    (d = 64, schedule 8, 4, 2, 1, windows of 128 tokens) trained briefly,
 *    recorded on 500 windows (the default), then probe_run with 10 labels
 *    (4 of the dataset, 6 generic) and all four controls on every site:
 *    token 0..4, latent_in and latent_out at 3 coarse iterations, coda.
 *    Reference: for every fit, its evaluations times the time of one plain
 *    gradient evaluation of its shape (n_train, d, K), measured here, on
 *    one thread. The probes run on spiral's pool ($SPIRAL_THREADS threads,
 *    default every core).
 *
 * Usage: bench_probe [--quick] [--one]
 *   --quick: n = 20000 and 100 windows; --one: only part 1.
 * Build (the Makefile has no bench target yet), from the repository root:
 *   make && cc -std=c11 -D_GNU_SOURCE -O2 -g -Ibase -Icore -Idata -Iprobes \
 *     $(pkg-config --cflags openblas gsl sqlite3 jansson) bench/bench_probe.c \
 *     build/libspiral.a -o build/bench_probe \
 *     $(pkg-config --libs openblas gsl sqlite3 jansson nettle | sed 's/-lgslcblas//') -lm -lpthread
 */
#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "logreg.h"
#include "parallel.h"
#include "probe_run.h"
#include "attention_stats.h"
#include "record.h"
#include "store.h"
#include "synth_dyck.h"
#include "train.h"

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A standard normal draw (Box-Muller). */
static double gaussian(gsl_rng *rng) {
    double u = gsl_rng_uniform_pos(rng), v = gsl_rng_uniform(rng);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* Correlated features, like hidden states: X = G M (n, d) with G standard
 * normal and M (d, d) = I + N(0, 1/d) mixing; y = argmax_k (w_k . x + Gumbel
 * noise). */
static void make_problem(float *X, int *y, int n, int d, int K, const double *w, const float *M,
                         gsl_rng *rng) {
    float *G = malloc((size_t)n * d * sizeof *G);
    for (size_t i = 0; i < (size_t)n * d; i++) G[i] = (float)gaussian(rng);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, d, 1.0f, G, d, M, d, 0.0f, X, d);
    free(G);
    for (int i = 0; i < n; i++) {
        const float *x = X + (size_t)i * d;
        double best = -INFINITY;
        for (int k = 0; k < K; k++) {
            double z = -log(-log(gsl_rng_uniform_pos(rng)));
            for (int j = 0; j < d; j++) z += w[(size_t)k * d + j] * x[j];
            if (z > best) {
                best = z;
                y[i] = k;
            }
        }
    }
}

/* Plain OpenBLAS gradient evaluations of the multinomial logistic loss:
 * S (n, d) standardized, W (K, d), Z (n, K), G (K, d); returns the seconds
 * of `count` evaluations. */
static double plain_evaluations(const double *S, const int *y, int n, int d, int K, int count) {
    double *W = calloc((size_t)K * d, sizeof *W), *Z = malloc((size_t)n * K * sizeof *Z);
    double *G = malloc((size_t)K * d * sizeof *G);
    for (int i = 0; i < K * d; i++) W[i] = 1e-3 * ((i * 7919) % 13 - 6);
    double t0 = seconds_now(), sink = 0;
    for (int e = 0; e < count; e++) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, K, d, 1.0, S, d, W, d, 0.0, Z, K);
        for (int i = 0; i < n; i++) {
            double *z = Z + (size_t)i * K, m = z[0], sum = 0;
            for (int k = 1; k < K; k++) m = fmax(m, z[k]);
            for (int k = 0; k < K; k++) sum += z[k] = exp(z[k] - m);
            for (int k = 0; k < K; k++) z[k] = (z[k] / sum - (k == y[i])) / n;
        }
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, d, n, 1.0, Z, K, S, d, 0.0, G, d);
        sink += G[0];
    }
    double seconds = seconds_now() - t0;
    if (sink == 12345.678) printf("%g\n", sink);  /* keeps the loop observable */
    free(W);
    free(Z);
    free(G);
    return seconds;
}

/* X (n, d) float -> standardized double S (n, d), as the fitter sees it. */
static double *standardized(const float *X, int n, int d) {
    double *S = malloc((size_t)n * d * sizeof *S), *mean = calloc(d, sizeof *mean);
    double *std = calloc(d, sizeof *std);
    logreg_standardization(X, n, d, mean, std);
    for (size_t i = 0; i < (size_t)n; i++)
        for (int j = 0; j < d; j++) S[i * d + j] = (X[i * d + j] - mean[j]) / std[j];
    free(mean);
    free(std);
    return S;
}

/* Part 1: one probe. */
static void bench_one_probe(int n, int threads) {
    const int d = 256, K = 10, nva = n / 5;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1);
    double *w = malloc((size_t)K * d * sizeof *w);
    float *M = malloc((size_t)d * d * sizeof *M);
    for (int i = 0; i < K * d; i++) w[i] = gaussian(rng) * 0.1;
    for (int i = 0; i < d * d; i++) M[i] = (float)(gaussian(rng) / sqrt(d) + (i % (d + 1) == 0));
    float *X = malloc((size_t)n * d * sizeof *X), *Xva = malloc((size_t)nva * d * sizeof *Xva);
    int *y = malloc((size_t)n * sizeof *y), *yva = malloc((size_t)nva * sizeof *yva);
    make_problem(X, y, n, d, K, w, M, rng);
    make_problem(Xva, yva, nva, d, K, w, M, rng);
    free(M);
    double *S = standardized(X, n, d);
    openblas_set_num_threads(threads);

    LogReg m;
    double t0 = seconds_now();
    logreg_fit(&m, X, y, n, d, K, 1e-3, PROBE_DEFAULT_TOL, PROBE_DEFAULT_MAX_ITER);
    double fit_seconds = seconds_now() - t0;
    int fit_evals = m.evaluations, fit_iters = m.iterations;
    double acc;
    logreg_accuracy(&m, Xva, yva, nva, &acc);
    logreg_free(&m);

    /* the probe's L2 path, strongest first, each from the last */
    static const double lambdas[4] = {1e-1, 1e-2, 1e-3, 1e-4};
    LogReg best;
    LogRegPath path;
    t0 = seconds_now();
    logreg_fit_path(&best, X, y, n, Xva, yva, nva, d, K, lambdas, 4, 0, PROBE_DEFAULT_TOL,
                    PROBE_DEFAULT_MAX_ITER, &path);
    int path_evals = path.evaluations;
    double path_seconds = seconds_now() - t0;
    logreg_free(&best);

    double ref_fit = plain_evaluations(S, y, n, d, K, fit_evals);
    double ref_path = plain_evaluations(S, y, n, d, K, path_evals);
    printf("one fit, lambda 1e-3, %d thread%s      %5d %6d %9.2f %10.2f %7.2f   (%d iterations, val acc %.3f)\n",
           threads, threads > 1 ? "s" : " ", fit_evals, n, fit_seconds, ref_fit, fit_seconds / ref_fit,
           fit_iters, acc);
    printf("L2 path (4 lambdas), %d thread%s       %5d %6d %9.2f %10.2f %7.2f\n", threads,
           threads > 1 ? "s" : " ", path_evals, n, path_seconds, ref_path, path_seconds / ref_path);
    free(S);
    free(w);
    free(X);
    free(Xva);
    free(y);
    free(yva);
    gsl_rng_free(rng);
}

/* Part 2: every probe of a typical run. */
static int bench_all_probes(int n_sequences) {
    char dir[] = "/tmp/spiral_bench_probe_XXXXXX", path[512];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/runs.db", dir);
    Store store;
    Dataset ds;
    double t0 = seconds_now();
    if (store_open(&store, path, 1) ||
        synth_dyck_make(&ds, "{\"n_train\": 2000, \"n_test\": 2000}", 1) ||
        store_dataset_save(&store, "dyck", &ds, 1, NULL)) {
        fprintf(stderr, "bench: %s\n", spiral_last_error());
        return 1;
    }
    dataset_free(&ds);
    snprintf(path, sizeof path, "%s/run.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"model\": {\"vocab_size\": 7, \"d_model\": 64, \"n_heads\": 4, \"d_ff\": 172, \"n_pre\": 1,"
          " \"n_loop\": 2, \"n_post\": 1, \"down\": \"selfagg\", \"up\": \"alloc\", \"schedule\": [8, 4, 2, 1]},"
          " \"train\": {\"dataset\": \"dyck\", \"seq_len\": 128, \"batch_size\": 16, \"steps\": 60, \"lr\": 0.003,"
          " \"warmup\": 10, \"eval_every\": 0, \"checkpoint_every\": 60, \"seed\": 1}}", f);
    fclose(f);
    TrainOptions quiet = {0};
    TrainResult trained;
    RecordOptions ro;
    record_options_default(&ro);
    ro.attention = attention_stats_summary();
    ro.n_sequences = n_sequences;
    RecordResult recorded;
    if (train_new(&store, "spiral", path, &quiet, &trained) ||
        record_run(&store, "spiral", "dyck", &ro, &recorded)) {
        fprintf(stderr, "bench: %s\n", spiral_last_error());
        return 1;
    }
    double setup = seconds_now() - t0;

    const char *labels[10] = {"depth", "top", "match_dist", "is_open", "gen.lag1",
                              "gen.lag2", "gen.next1", "gen.next2", "gen.slot4", "gen.slot8"};
    ProbeOptions o;
    probe_options_default(&o);
    ProbeReport report;
    t0 = seconds_now();
    if (probe_run(&store, "spiral", "dyck", labels, 10, &o, &report)) {
        fprintf(stderr, "bench: %s\n", spiral_last_error());
        return 1;
    }
    double wall = seconds_now() - t0, fit_seconds = 0;
    int fits = 0, copies = 0, main_probes = 0;
    for (int i = 0; i < report.n_results; i++) {
        fit_seconds += report.results[i].seconds;
        fits += report.results[i].n_features > 0 && report.results[i].seconds > 0;
        copies += report.results[i].seconds == 0;
        main_probes += !strcmp(report.results[i].control, "none");
    }
    /* reference: per distinct shape, the time of one plain evaluation */
    openblas_set_num_threads(1);
    double reference = 0;
    int shapes = 0;
    for (int i = 0; i < report.n_results; i++) {
        const ProbeResult *r = &report.results[i];
        if (r->evaluations == 0) continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) {
            const ProbeResult *q = &report.results[j];
            seen = q->evaluations > 0 && q->n_train == r->n_train && q->n_features == r->n_features &&
                   q->n_classes == r->n_classes;
        }
        if (seen) continue;
        shapes++;
        long long evals = 0;
        for (int j = i; j < report.n_results; j++) {
            const ProbeResult *q = &report.results[j];
            if (q->n_train == r->n_train && q->n_features == r->n_features && q->n_classes == r->n_classes)
                evals += q->evaluations;
        }
        int n = r->n_train, d = r->n_features, K = r->n_classes;
        double *S = malloc((size_t)n * d * sizeof *S);
        int *y = malloc((size_t)n * sizeof *y);
        for (size_t k = 0; k < (size_t)n * d; k++) S[k] = (double)((k * 2654435761u) % 1000) / 500.0 - 1;
        for (int k = 0; k < n; k++) y[k] = k % K;
        int reps = 5;
        reference += plain_evaluations(S, y, n, d, K, reps) / reps * (double)evals;
        free(S);
        free(y);
    }
    printf("\nall probes of a typical run (dyck-spiral, d = 64, %d windows of 128 tokens, 12 sites, "
           "10 labels, 4 controls; setup %.1f s):\n", n_sequences, setup);
    printf("  rows %d (%d probes + controls), fitted %d, copied %d (position control shared by a geometry)\n",
           report.n_results, main_probes, fits, copies);
    printf("  wall %.1f s on %d threads (fits %.1f s summed over threads; the rest reads states, runs the\n"
           "  random model, writes rows)\n", wall, parallel_threads(), fit_seconds);
    printf("  objective evaluations %lld; the same evaluations as plain OpenBLAS on 1 thread: %.1f s "
           "(%d shapes)\n", report.evaluations, reference, shapes);
    printf("  ratio wall / reference %.2f; summed fit time / reference %.2f\n", wall / reference,
           fit_seconds / reference);
    probe_report_free(&report);
    store_close(&store);
    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}

int main(int argc, char **argv) {
    int quick = 0, only_one = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--one")) only_one = 1;
        else {
            fprintf(stderr, "usage: bench_probe [--quick] [--one]\n");
            return 2;
        }
    }
    int n = quick ? 20000 : 100000, cores = openblas_get_num_threads();
    printf("one probe: n = %d, d = 256, K = 10 (validation %d rows); reference = the same number of\n"
           "plain OpenBLAS gradient evaluations (2 dgemm + softmax) on standardized doubles\n\n", n, n / 5);
    printf("%-34s %7s %6s %9s %10s %7s\n", "", "evals", "rows", "seconds", "reference", "ratio");
    bench_one_probe(n, 1);
    if (cores > 1) bench_one_probe(n, cores);
    openblas_set_num_threads(1); /* the pool's rule: BLAS on the thread that calls it */
    return only_one ? 0 : bench_all_probes(quick ? 100 : 500);
}
