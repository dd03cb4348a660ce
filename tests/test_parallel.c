/*
 * test_parallel.c: the thread pool and the results computed on it.
 *
 *  - parallel_for runs every task exactly once, on a thread index below
 *    parallel_threads(), for 1, 2, 3 and 5 threads and any task count; a
 *    parallel_for issued from inside a task runs (serially) too;
 *  - parallel_for_work runs a job below PARALLEL_SERIAL_WORK on the caller
 *    (every task on thread 0, in order), one at it on the pool (every task
 *    once), and one at PARALLEL_WAKE_WORK reaches the workers; a matrix
 *    product just below and just above the threshold gives the same bits
 *    on 1, 2 and 3 threads;
 *  - parallel_split cuts [0, count) into contiguous aligned parts;
 *  - matmul_parallel, split into row or column blocks, equals a direct
 *    evaluation in double for every transpose combination, with beta = 0
 *    and 1, at shapes with partial blocks; products issued together equal
 *    the same products issued one by one;
 *  - training on the pool does not depend on the number of threads: loss,
 *    logits, every gradient and the AdamW update are bit-identical with 1, 2
 *    and 3 threads, for the spiral, looped and dense models at sizes where
 *    every matrix product and loop is split.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adamw.h"
#include "error.h"
#include "fixtures.h"
#include "harness.h"
#include "layers.h"
#include "matmul.h"
#include "model.h"
#include "parallel.h"

/* ---- the pool --------------------------------------------------------- */

typedef struct {
    atomic_int *runs;  /* (n_tasks) times each task ran */
    atomic_int bad_thread;
    int threads;
    int nested;        /* each task issues a parallel_for of its own */
    atomic_int nested_runs;
} CountJob;

static void count_inner(void *ctx, int task, int thread) {
    CountJob *j = ctx;
    atomic_fetch_add(&j->nested_runs, 1);
}

static void count_task(void *ctx, int task, int thread) {
    CountJob *j = ctx;
    atomic_fetch_add(&j->runs[task], 1);
    if (thread < 0 || thread >= j->threads) atomic_store(&j->bad_thread, 1);
    if (j->nested) parallel_for(3, count_inner, j);
}

static void test_pool(void) {
    static const int thread_counts[4] = {1, 2, 3, 5};
    static const int task_counts[6] = {1, 2, 3, 7, 64, 1000};
    for (int t = 0; t < 4; t++) {
        CHECK(parallel_set_threads(thread_counts[t]) == 0, "pool: starting %d threads: %s",
              thread_counts[t], spiral_last_error());
        CHECK(parallel_threads() == thread_counts[t], "pool: %d threads asked, %d running",
              thread_counts[t], parallel_threads());
        for (int c = 0; c < 6; c++) {
            for (int nested = 0; nested < 2; nested++) {
                int n = task_counts[c];
                atomic_int *runs = calloc((size_t)n, sizeof *runs);
                CountJob job = {.runs = runs, .threads = parallel_threads(), .nested = nested};
                for (int repeat = 0; repeat < 20; repeat++) parallel_for(n, count_task, &job);
                int wrong = 0;
                for (int i = 0; i < n; i++) wrong += atomic_load(&runs[i]) != 20;
                CHECK(wrong == 0, "pool: %d threads, %d tasks%s: %d tasks did not run exactly "
                      "once per call", thread_counts[t], n, nested ? " (nested)" : "", wrong);
                CHECK(!atomic_load(&job.bad_thread), "pool: a task saw a thread index out of "
                      "range");
                if (nested)
                    CHECK(atomic_load(&job.nested_runs) == 20 * n * 3,
                          "pool: nested parallel_for ran %d inner tasks, expected %d",
                          atomic_load(&job.nested_runs), 20 * n * 3);
                free(runs);
            }
        }
    }
}

/* ---- the work threshold ------------------------------------------------ */

typedef struct {
    atomic_int next;        /* the task expected next, if they run in order */
    atomic_int out_of_order;
    atomic_int off_caller;  /* tasks that ran on a thread other than 0 */
    atomic_int runs;
    int spin_us;            /* each task busy-waits this long */
} OrderJob;

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void order_task(void *ctx, int task, int thread) {
    OrderJob *j = ctx;
    if (atomic_fetch_add(&j->next, 1) != task) atomic_store(&j->out_of_order, 1);
    if (thread != 0) atomic_fetch_add(&j->off_caller, 1);
    atomic_fetch_add(&j->runs, 1);
    double until = seconds_now() + j->spin_us * 1e-6;
    while (j->spin_us > 0 && seconds_now() < until) continue;
}

/* A job just below the threshold runs on the caller, in order; one at it
 * runs every task once; one at PARALLEL_WAKE_WORK reaches the workers
 * (given tasks long enough for them to wake: up to 50 tries, so that a
 * loaded machine does not fail it). */
static void test_threshold(void) {
    static const int thread_counts[3] = {1, 2, 3};
    for (int t = 0; t < 3; t++) {
        int threads = thread_counts[t];
        CHECK(parallel_set_threads(threads) == 0, "threshold: starting %d threads: %s",
              threads, spiral_last_error());
        for (int repeat = 0; repeat < 20; repeat++) {
            OrderJob job = {.spin_us = 0};
            parallel_for_work(64, order_task, &job, PARALLEL_SERIAL_WORK - 1);
            CHECK(atomic_load(&job.runs) == 64 && !atomic_load(&job.out_of_order) &&
                  atomic_load(&job.off_caller) == 0,
                  "threshold: a job below it on %d threads ran %d of 64 tasks, %s, %d off the "
                  "caller", threads, atomic_load(&job.runs),
                  atomic_load(&job.out_of_order) ? "out of order" : "in order",
                  atomic_load(&job.off_caller));
        }
        for (int repeat = 0; repeat < 20; repeat++) {
            OrderJob job = {.spin_us = 0};
            parallel_for_work(64, order_task, &job, PARALLEL_SERIAL_WORK);
            CHECK(atomic_load(&job.runs) == 64, "threshold: a job at it on %d threads ran %d "
                  "of 64 tasks", threads, atomic_load(&job.runs));
        }
        int reached_workers = 0;
        for (int attempt = 0; attempt < 50 && !reached_workers; attempt++) {
            OrderJob job = {.spin_us = 500};
            parallel_for_work(8, order_task, &job, PARALLEL_WAKE_WORK);
            CHECK(atomic_load(&job.runs) == 8, "threshold: a job at the wake threshold on %d "
                  "threads ran %d of 8 tasks", threads, atomic_load(&job.runs));
            reached_workers = atomic_load(&job.off_caller) > 0;
        }
        if (threads > 1)
            CHECK(reached_workers, "threshold: jobs at the wake threshold on %d threads never "
                  "ran a task on a worker", threads);
    }
}

/* A product of m x n x k with k chosen so that its work (2 m n k / 8, see
 * matmul.c) is just below or just above the threshold: the same bits on 1,
 * 2 and 3 threads. */
static void test_threshold_matmul(void) {
    enum { M = 300, N = 32 };
    int k_at = (int)ceil(PARALLEL_SERIAL_WORK * 8 / (2.0 * M * N));
    int ks[2] = {k_at - 1, k_at + 1};
    for (int s = 0; s < 2; s++) {
        int k = ks[s];
        real *a = malloc((size_t)M * k * sizeof(real)), *b = malloc((size_t)k * N * sizeof(real));
        real *c[3];
        fixture_seed(4242 + k);
        for (size_t i = 0; i < (size_t)M * k; i++) a[i] = (real)fixture_uniform();
        for (size_t i = 0; i < (size_t)k * N; i++) b[i] = (real)fixture_uniform();
        for (int threads = 1; threads <= 3; threads++) {
            parallel_set_threads(threads);
            c[threads - 1] = calloc((size_t)M * N, sizeof(real));
            matmul_parallel(0, 0, M, N, k, 1, a, k, b, N, 0, c[threads - 1], N);
        }
        size_t differ = 0;
        for (int threads = 2; threads <= 3; threads++)
            differ += memcmp(c[0], c[threads - 1], (size_t)M * N * sizeof(real)) != 0;
        CHECK(differ == 0, "threshold: a %d x %d x %d product %s it differs between 1, 2 and 3 "
              "threads", M, N, k, s ? "above" : "below");
        for (int i = 0; i < 3; i++) free(c[i]);
        free(a);
        free(b);
    }
}

static void test_split(void) {
    static const size_t counts[5] = {0, 1, 100, 4096, 100003};
    static const size_t aligns[3] = {1, 16, 64};
    int bad = 0;
    for (int c = 0; c < 5; c++)
        for (int a = 0; a < 3; a++)
            for (int parts = 1; parts <= 7; parts++) {
                int n = parallel_parts(counts[c], parts, aligns[a]);
                if (n > parts || (counts[c] > 0 && n < 1)) bad++;
                size_t expect = 0;
                for (int p = 0; p < n; p++) {
                    size_t begin, end;
                    parallel_split(counts[c], parts, aligns[a], p, &begin, &end);
                    if (begin != expect || end <= begin) bad++;
                    if (p + 1 < n && end % aligns[a]) bad++;
                    expect = end;
                }
                if (expect != counts[c]) bad++;
            }
    CHECK(bad == 0, "parallel_split: %d parts are not a contiguous aligned cover", bad);
}

/* ---- matmul_parallel ---------------------------------------------------- */

/* C = alpha op(A) op(B) + beta C against a triple loop in double. */
static void check_matmul(int ta, int tb, int m, int n, int k, real beta) {
    int lda = ta ? m : k, ldb = tb ? k : n;
    real *a = malloc((size_t)m * k * sizeof(real)), *b = malloc((size_t)k * n * sizeof(real));
    real *c = malloc((size_t)m * n * sizeof(real));
    double *expect = malloc((size_t)m * n * sizeof(double));
    fixture_seed(1000 + m + n + k + ta * 2 + tb);
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (real)fixture_uniform();
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (real)fixture_uniform();
    for (size_t i = 0; i < (size_t)m * n; i++) c[i] = (real)fixture_uniform();
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double sum = 0;
            for (int p = 0; p < k; p++)
                sum += (double)(ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]) *
                       (tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j]);
            expect[(size_t)i * n + j] = 0.5 * sum + beta * c[(size_t)i * n + j];
        }
    matmul_parallel(ta, tb, m, n, k, (real)0.5, a, lda, b, ldb, beta, c, n);
    double err = 0;
    for (size_t i = 0; i < (size_t)m * n; i++) err = fmax(err, fabs(c[i] - expect[i]));
    CHECK(err <= 1e-5 * k, "matmul_parallel ta=%d tb=%d (%d x %d x %d) beta=%g: max error %.3e",
          ta, tb, m, n, k, (double)beta, err);
    free(a);
    free(b);
    free(c);
    free(expect);
}

/* linear_forward_shared gives, bit for bit, what separate linear_forward
 * calls give. */
static void check_linear_shared(void) {
    enum { M = 300, IN = 40, OUT = 70 };
    real *x = malloc(M * IN * sizeof(real)), *w[3], *y[3], *expect[3];
    fixture_seed(77);
    for (int i = 0; i < M * IN; i++) x[i] = (real)fixture_uniform();
    for (int p = 0; p < 3; p++) {
        w[p] = malloc(OUT * IN * sizeof(real));
        y[p] = malloc(M * OUT * sizeof(real));
        expect[p] = malloc(M * OUT * sizeof(real));
        for (int i = 0; i < OUT * IN; i++) w[p][i] = (real)fixture_uniform();
        linear_forward(expect[p], x, w[p], M, IN, OUT);
    }
    linear_forward_shared(y, x, (const real *const *)w, 3, M, IN, OUT);
    size_t differ = 0;
    for (int p = 0; p < 3; p++) differ += memcmp(y[p], expect[p], M * OUT * sizeof(real)) != 0;
    CHECK(differ == 0, "linear_forward_shared: %zu of 3 outputs differ from linear_forward",
          differ);
    for (int p = 0; p < 3; p++) {
        free(w[p]);
        free(y[p]);
        free(expect[p]);
    }
    free(x);
}

static void test_matmul_parallel(void) {
    check_linear_shared();
    static const int shapes[3][3] = {{300, 70, 50}, {40, 300, 33}, {129, 129, 17}};
    for (int s = 0; s < 3; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++)
                    check_matmul(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], (real)beta);
}

/* ---- training does not depend on the thread count ----------------------- */

/* Everything one training step produces. */
typedef struct {
    double loss;
    real *logits, *grads, *params;
} StepResult;

/* A config where the products, loops and attention blocks all split:
 * d = 64, H = 4, F = 176, V = 97, 1 + 2 + 1 layers, B = 3, L = 150. */
static SpiralConfig medium_config(const char *kind) {
    SpiralConfig c = fixture_base();
    c.vocab_size = 97;
    c.d_model = 64;
    c.n_heads = 4;
    c.d_ff = 176;
    if (!strcmp(kind, "spiral")) {
        static const int g[4] = {8, 4, 2, 1};
        fixture_schedule(&c, 4, g, NULL, NULL);
    } else if (!strcmp(kind, "looped")) {
        static const int g[3] = {1, 1, 1};
        fixture_schedule(&c, 3, g, NULL, NULL);
    } else {
        static const int g[1] = {1};
        c.n_loop = 5;
        fixture_schedule(&c, 1, g, NULL, NULL);
    }
    return c;
}

enum { STEP_B = 3, STEP_L = 150 };

/* One step (forward, backward, AdamW) of a fresh model on `threads`. */
static int run_step(StepResult *out, const SpiralConfig *cfg, int threads) {
    if (parallel_set_threads(threads)) return -1;
    Model m;
    if (model_build(&m, cfg)) return -1;
    model_init_weights(&m, 7);
    int tokens[STEP_B * STEP_L], targets[STEP_B * STEP_L];
    fixture_tokens(tokens, STEP_B * STEP_L, cfg->vocab_size, 11);
    fixture_tokens(targets, STEP_B * STEP_L, cfg->vocab_size, 12);
    model_zero_grad(&m);
    if (model_forward(&m, tokens, targets, STEP_B, STEP_L, NULL) || model_backward(&m)) {
        model_free(&m);
        return -1;
    }
    size_t n = m.layout.n_params, n_logits = (size_t)STEP_B * STEP_L * cfg->vocab_size;
    out->loss = m.loss;
    out->logits = malloc(n_logits * sizeof(real));
    out->grads = malloc(n * sizeof(real));
    memcpy(out->logits, m.logits, n_logits * sizeof(real));
    memcpy(out->grads, m.grads, n * sizeof(real));
    real *adam_m = calloc(n, sizeof(real)), *adam_v = calloc(n, sizeof(real));
    AdamWSettings adam = {1e-3, 0.9, 0.95, 1e-8, 0.1};
    adamw_step(m.params, m.grads, adam_m, adam_v, &m.layout, &adam, 1);
    adamw_step(m.params, m.grads, adam_m, adam_v, &m.layout, &adam, 2);
    out->params = malloc(n * sizeof(real));
    memcpy(out->params, m.params, n * sizeof(real));
    free(adam_m);
    free(adam_v);
    model_free(&m);
    return 0;
}

static void step_result_free(StepResult *r) {
    free(r->logits);
    free(r->grads);
    free(r->params);
}

/* Number of elements where a and b differ in any bit. */
static size_t bits_differ(const real *a, const real *b, size_t count) {
    size_t n = 0;
    for (size_t i = 0; i < count; i++) n += memcmp(&a[i], &b[i], sizeof(real)) != 0;
    return n;
}

static void test_thread_count_invariance(void) {
    static const char *kinds[3] = {"spiral", "looped", "dense"};
    for (int k = 0; k < 3; k++) {
        SpiralConfig cfg = medium_config(kinds[k]);
        Model probe;
        if (model_build(&probe, &cfg)) {
            CHECK(0, "%s: %s", kinds[k], spiral_last_error());
            continue;
        }
        size_t n = probe.layout.n_params, n_logits = (size_t)STEP_B * STEP_L * cfg.vocab_size;
        StepResult one;
        if (run_step(&one, &cfg, 1)) {
            CHECK(0, "%s on 1 thread: %s", kinds[k], spiral_last_error());
            model_free(&probe);
            continue;
        }
        for (int threads = 2; threads <= 3; threads++) {
            StepResult many;
            if (run_step(&many, &cfg, threads)) {
                CHECK(0, "%s on %d threads: %s", kinds[k], threads, spiral_last_error());
                continue;
            }
            size_t logits = bits_differ(one.logits, many.logits, n_logits);
            size_t grads = bits_differ(one.grads, many.grads, n);
            size_t params = bits_differ(one.params, many.params, n);
            printf("%-6s 1 vs %d threads: loss %.9g vs %.9g; differing logits %zu, gradients "
                   "%zu, updated parameters %zu (of %zu)\n", kinds[k], threads, one.loss,
                   many.loss, logits, grads, params, n);
            CHECK(memcmp(&one.loss, &many.loss, sizeof one.loss) == 0,
                  "%s: loss on %d threads %.17g differs from 1 thread %.17g", kinds[k],
                  threads, many.loss, one.loss);
            for (int t = 0; t < probe.layout.n_tensors; t++) {
                const ParamTensor *tensor = &probe.layout.tensors[t];
                size_t differ = bits_differ(one.grads + tensor->offset,
                                            many.grads + tensor->offset, tensor->numel);
                if (differ) printf("  gradient of %s differs in %zu of %zu elements\n",
                                   tensor->name, differ, tensor->numel);
            }
            CHECK(logits == 0 && grads == 0 && params == 0,
                  "%s: %d threads differ from 1 thread in %zu logits, %zu gradients, %zu "
                  "parameters", kinds[k], threads, logits, grads, params);
            step_result_free(&many);
        }
        step_result_free(&one);
        model_free(&probe);
    }
}

int main(int argc, char **argv) {
    test_pool();
    test_threshold();
    test_threshold_matmul();
    test_split();
    parallel_set_threads(2);
    test_matmul_parallel();
    test_thread_count_invariance();
    parallel_set_threads(0);
    return test_summary("test_parallel");
}
