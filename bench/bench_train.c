/*
 * bench_train.c: how fast the three kinds of model train, against the
 * machine's own sgemm ceiling measured in the same run.
 *
 * Models: dense (8 distinct core layers, one iteration), looped (2 shared
 * layers x 4 iterations, g = 1) and spiral (2 shared layers, g = 8, 4, 2, 1,
 * shift g - 1, selfagg / alloc / residual); all with d = 256, H = 4,
 * F = 688, V = 256 (tied), 1 prelude and 1 coda layer. Random tokens.
 *
 * 1. sgemm peak: square C = A B in float (n = 1024, 2048), one warmup then
 *    the best of 3, OpenBLAS on one thread and on all; plus sgemm at the
 *    shapes a training step multiplies at B = 8, L = 256 (the ceiling those
 *    shapes allow). The square all-thread product (n = 2048) is measured
 *    again before every model of section 2 and after the last; the ceiling
 *    for MFU is the best of all these runs, so a moment when other processes
 *    held a core cannot lower it (and flatter MFU).
 * 2. Training step = model_zero_grad + model_forward (with targets) +
 *    model_backward + adamw_step (moments allocated once), at B = 8 and
 *    L = 128, 256, 512 on all threads of spiral's pool, and L = 256 on one. Warmup
 *    steps (the first sizes the activation arena), then the median of N
 *    timed steps (the best is printed beside it). GFLOP/s uses the analytic
 *    count of core/cost.h (train = 3 x forward; attention over the causal
 *    pairs only), times B, over the median step time; MFU = GFLOP/s / the
 *    ceiling. All sizes are measured before the table is printed.
 *    Allocations: this file replaces malloc, calloc and realloc with
 *    counting wrappers around glibc's __libc_* functions, so every malloc in
 *    the process is counted, and attributed by its return address to this
 *    program (core/ is linked in statically) or to a shared library
 *    (OpenBLAS, libc). The count over steps 2..N must be 0. The change of
 *    mallinfo2's in-use bytes over the same steps is a second witness (it
 *    cannot see a malloc freed within the step). Peak memory: VmHWM of the
 *    process, reset before each model through /proc/self/clear_refs, beside
 *    what the model should need (parameters, gradients, two moments, and
 *    model_activation_bytes).
 * 2b. Spiral against looped with their steps interleaved, at L = 128, 256,
 *    512 on all threads: both models are built, and each pair of timed
 *    steps runs one step of each (looped first in even pairs, spiral first
 *    in odd ones), so that a change in the machine's speed (a VM's
 *    neighbours, frequency) falls on both. The ratio of ratios, (spiral /
 *    looped step time) / (spiral / looped FLOPs), is the median over pairs,
 *    with the quartiles of the pair ratios beside it. Section 2's separate
 *    runs give the same ratio with the drift between them left in.
 * 3. Forward-only throughput at B = 8, L = 256: no observer; an observer
 *    copying every state (the sites `spiral record` stores) into a buffer;
 *    one that also copies every attention matrix and layer output. Copies go
 *    to successive places of a buffer as large as one pass's observations,
 *    a stand-in for recording's work without SQLite. Median of 3 after a
 *    warmup, the three modes interleaved.
 * 4. Breakdown: the functions of layers.h and scale.h called directly on
 *    buffers of the shapes one training step at B = 8, L = 256 uses (each
 *    layer application at its length n = L or J_t), forward + backward, the
 *    median of 5 isolated calls after a warmup, summed per kind by how often
 *    the step runs each. Beside each part, the time it spends above what its
 *    analytic FLOPs would cost at the sgemm ceiling: where MFU is lost. An
 *    estimate: isolated calls run with warm caches, and the residual adds,
 *    gradient zeroing and copies of model.c are not among them; their cost
 *    shows as the gap to a whole step timed right before each kind's parts
 *    (so that both see the same machine load).
 * Ends with the ratios and the targets, each met or not met.
 *
 * Threads: model work runs on spiral's pool (base/parallel.h, one thread
 * per core unless SPIRAL_THREADS says otherwise) with OpenBLAS on one thread
 * per call; the sgemm references run OpenBLAS's own threads, one per core,
 * while the pool is idle. The report prints both counts, the process's
 * thread count, and the load average at start and end. Other processes on the machine make every number here slower
 * and noisier; the sgemm rate measured before each model, and the median
 * beside the best step, show how much.
 *
 * Runs in about 3 minutes on 2 cores. No arguments.
 */
#include <cblas.h>
#include <malloc.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_models.h"
#include "adamw.h"
#include "config.h"
#include "cost.h"
#include "error.h"
#include "layers.h"
#include "model.h"
#include "parallel.h"
#include "scale.h"
#include "steps.h"

enum { BATCH = 8, BREAKDOWN_L = 256, MAX_TIMED_STEPS = 16, BREAKDOWN_REPS = 5,
       FORWARD_REPS = 3, MAX_MEMO = 16, N_SIZES = 4, MAX_PAIRS = 16, N_PAIR_SIZES = 3 };

/* The same optimizer settings for every timed update (the values do not
 * change the work done). */
static const AdamWSettings adam_settings = {1e-3, 0.9, 0.95, 1e-8, 0.1};

/* ------------------------------------------------------------------------ */
/* Counting allocator                                                       */

/* glibc's own entry points, which stay reachable when malloc is replaced,
 * and the bounds of this program's code (GNU ld). */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern const char __executable_start[], etext[];

/* Allocation calls and bytes, [0] from this program, [1] from shared
 * libraries; atomic because OpenBLAS threads may allocate too. */
static atomic_long allocation_calls[2];
static atomic_long allocation_bytes[2];

/* Counts one allocation of `bytes` requested by code at address caller. */
static void count_allocation(const void *caller, size_t bytes) {
    const char *address = caller;
    int library = !(address >= __executable_start && address < etext);
    atomic_fetch_add_explicit(&allocation_calls[library], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&allocation_bytes[library], (long)bytes, memory_order_relaxed);
}

/* malloc, calloc and realloc of the whole process: count, then defer to
 * glibc (free stays glibc's own, which accepts these blocks). */
void *malloc(size_t size) {
    count_allocation(__builtin_return_address(0), size);
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    count_allocation(__builtin_return_address(0), count * size);
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    count_allocation(__builtin_return_address(0), size);
    return __libc_realloc(pointer, size);
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

/* Monotonic wall-clock seconds. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* qsort order for doubles, ascending. */
static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of values[0 .. count - 1] (reorders them). */
static double median(double *values, int count) {
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

/* A uniform number in [0, 1) from a 64-bit LCG (deterministic, no libc state). */
static double random_unit(unsigned long long *state) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*state >> 11) / 9007199254740992.0;
}

/* tokens (B, L) uniform in [0, V); targets are the next token of each
 * sequence, a fresh random token for the last position. */
static void random_batch(int *tokens, int *targets, int B, int L, int V,
                         unsigned long long *state) {
    for (int i = 0; i < B * L; i++) tokens[i] = (int)(random_unit(state) * V);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < L; i++)
            targets[b * L + i] = i + 1 < L ? tokens[b * L + i + 1] : (int)(random_unit(state) * V);
}

/* Prints what failed and spiral's last error; returns the exit status 1. */
static int fail(const char *what) {
    fprintf(stderr, "bench_train: %s: %s\n", what, spiral_last_error());
    return 1;
}

/* Resets the process's peak resident set (VmHWM) so that the next read
 * covers only what follows. Returns 0 if the kernel allowed it. */
static int reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int written = fputs("5", f) >= 0;
    return fclose(f) == 0 && written ? 0 : -1;
}

/* The number on the "name:" line of /proc/self/status (kB for sizes), or -1. */
static long proc_status_value(const char *name) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long value = -1;
    size_t length = strlen(name);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, name, length) == 0 && line[length] == ':') {
            value = atol(line + length + 1);
            break;
        }
    fclose(f);
    return value;
}

/* Peak resident set in MB: VmHWM (since the last reset), else ru_maxrss. */
static double peak_rss_mb(void) {
    long kb = proc_status_value("VmHWM");
    if (kb < 0) {
        struct rusage usage;
        getrusage(RUSAGE_SELF, &usage);
        kb = usage.ru_maxrss;
    }
    return kb / 1024.0;
}

/* Bytes the heap holds for the program (sbrk arena in use + mmap'd blocks). */
static long long heap_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return (long long)info.uordblks + (long long)info.hblkhd;
}

/* ------------------------------------------------------------------------ */
/* The three kinds                                                          */



/* ------------------------------------------------------------------------ */
/* 1. sgemm                                                                 */

/* Best GFLOP/s of C (m, n) = op(A) op(B), A (m, k) or (k, m), B (k, n) or
 * (n, k), over `reps` runs after one warmup, on OpenBLAS's current threads. */
static double sgemm_gflops(int transpose_a, int transpose_b, int m, int n, int k, int reps) {
    float *a = malloc((size_t)m * k * sizeof(float));
    float *b = malloc((size_t)k * n * sizeof(float));
    float *c = malloc((size_t)m * n * sizeof(float));
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return 0;
    }
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)((i % 97) * 0.01 - 0.48);
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)((i % 89) * 0.01 - 0.44);
    enum CBLAS_TRANSPOSE ta = transpose_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = transpose_b ? CblasTrans : CblasNoTrans;
    int lda = transpose_a ? m : k, ldb = transpose_b ? k : n;
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
        double t = now() - t0;
        if (r > 0 && t < best) best = t; /* r == 0 is the warmup */
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * m * n * k / best / 1e9;
}

/* ------------------------------------------------------------------------ */
/* 2. Training steps                                                        */

/* One training step: zero the gradients, forward with targets, backward,
 * AdamW update number t. */
static int train_step(Model *model, const int *tokens, const int *targets, int B, int L,
                      real *adam_m, real *adam_v, long t) {
    model_zero_grad(model);
    if (model_forward(model, tokens, targets, B, L, NULL) || model_backward(model)) return -1;
    if (!isfinite(model->loss)) return spiral_error("loss is %g at step %ld", model->loss, t);
    adamw_step(model->params, model->grads, adam_m, adam_v, &model->layout, &adam_settings, t);
    return 0;
}

/* A model with its AdamW moments, so that two models can take steps in turn. */
typedef struct {
    SpiralConfig cfg;
    Model model;
    real *adam_m, *adam_v;
    long t;                     /* updates so far */
} Trainer;

static void trainer_free(Trainer *tr) {
    free(tr->adam_m);
    free(tr->adam_v);
    model_free(&tr->model);
}

/* Builds a model of `kind` with zero moments. Returns 0 or -1 (spiral_error). */
static int trainer_init(Trainer *tr, ModelKind kind) {
    memset(tr, 0, sizeof *tr);
    if (kind_config(&tr->cfg, kind) || model_build(&tr->model, &tr->cfg)) return -1;
    model_init_weights(&tr->model, 1);
    tr->adam_m = calloc(tr->model.layout.n_params, sizeof(real));
    tr->adam_v = calloc(tr->model.layout.n_params, sizeof(real));
    if (!tr->adam_m || !tr->adam_v) {
        trainer_free(tr);
        return spiral_error("out of memory for the optimizer moments");
    }
    return 0;
}

/* Seconds of one training step of tr on (tokens, targets), or -1. */
static double trainer_step(Trainer *tr, const int *tokens, const int *targets, int B, int L) {
    double t0 = now();
    tr->t++;
    if (train_step(&tr->model, tokens, targets, B, L, tr->adam_m, tr->adam_v, tr->t)) return -1;
    return now() - t0;
}

typedef struct {
    int B, L, threads, warmup_steps, timed_steps;
    double median, best;        /* seconds per step */
    double train_flops;         /* analytic, per step of B sequences */
    double params;
    long allocations[2];        /* malloc/calloc/realloc calls in steps 2..N: program, libraries */
    long allocated_bytes[2];
    long long heap_change;      /* mallinfo2 in-use bytes after - before steps 2..N */
    double peak_rss_mb;         /* since just before the model was built; -1 if unknown */
    double expected_mb;         /* parameters, gradients, moments, activations */
    double sgemm_before;        /* square sgemm GFLOP/s, all threads, just before the model */
} StepStats;

/* Times training steps of `kind` at (B, L) on the pool's current threads:
 * warmup_steps, then timed_steps timed ones. Returns 0 or -1 (spiral_error). */
static int measure_training(StepStats *stats, ModelKind kind, int B, int L, int warmup_steps,
                            int timed_steps) {
    Trainer tr;
    memset(stats, 0, sizeof *stats);
    stats->B = B;
    stats->L = L;
    stats->threads = parallel_threads();
    stats->warmup_steps = warmup_steps;
    stats->timed_steps = timed_steps;
    int rss_reset = reset_peak_rss() == 0;
    if (trainer_init(&tr, kind)) return -1;
    int *tokens = malloc((size_t)B * L * sizeof(int));
    int *targets = malloc((size_t)B * L * sizeof(int));
    if (!tokens || !targets) {
        free(tokens);
        free(targets);
        trainer_free(&tr);
        return spiral_error("out of memory for the batch");
    }
    unsigned long long rng = 42;
    random_batch(tokens, targets, B, L, tr.cfg.vocab_size, &rng);

    double times[MAX_TIMED_STEPS];
    long calls_before[2] = {0, 0}, bytes_before[2] = {0, 0};
    long long heap_before = 0;
    int status = 0;
    for (long step = 1; step <= warmup_steps + timed_steps && status == 0; step++) {
        if (step == 2) { /* allocations are counted from the second step on */
            for (int i = 0; i < 2; i++) {
                calls_before[i] = atomic_load(&allocation_calls[i]);
                bytes_before[i] = atomic_load(&allocation_bytes[i]);
            }
            heap_before = heap_in_use();
        }
        double seconds = trainer_step(&tr, tokens, targets, B, L);
        if (seconds < 0) status = -1;
        if (step > warmup_steps) times[step - warmup_steps - 1] = seconds;
    }
    if (status == 0) {
        for (int i = 0; i < 2; i++) {
            stats->allocations[i] = atomic_load(&allocation_calls[i]) - calls_before[i];
            stats->allocated_bytes[i] = atomic_load(&allocation_bytes[i]) - bytes_before[i];
        }
        stats->heap_change = heap_in_use() - heap_before;
        stats->peak_rss_mb = rss_reset ? peak_rss_mb() : -1;
        double best = times[0];
        for (int i = 1; i < timed_steps; i++) best = times[i] < best ? times[i] : best;
        stats->best = best;
        stats->median = median(times, timed_steps);
        ModelCost cost;
        model_cost(&cost, &tr.cfg, L);
        stats->train_flops = cost.train_flops * B;
        stats->params = cost.params;
        stats->expected_mb = (4.0 * tr.model.layout.n_params * sizeof(real) +
                              (double)model_activation_bytes(&tr.model, B, L)) /
                             (1024.0 * 1024.0);
    }
    free(tokens);
    free(targets);
    trainer_free(&tr);
    return status;
}

/* Spiral against looped with their steps interleaved, so that both see the
 * same machine: pair p times one step of each, looped first in even pairs
 * and spiral first in odd ones. */
typedef struct {
    int L, pairs;
    double ratio[MAX_PAIRS];    /* spiral / looped step time, per pair, sorted */
    double ratio_median, ratio_q1, ratio_q3;
    double total_ratio;         /* sum of spiral's times / sum of looped's */
    double flop_ratio;          /* spiral / looped analytic training FLOPs */
    double looped_median, spiral_median;  /* seconds per step */
} PairStats;

static int measure_pairs(PairStats *st, int B, int L, int warmup_pairs, int pairs) {
    Trainer tr[2]; /* [0] looped, [1] spiral */
    memset(st, 0, sizeof *st);
    st->L = L;
    st->pairs = pairs;
    if (trainer_init(&tr[0], KIND_LOOPED)) return -1;
    if (trainer_init(&tr[1], KIND_SPIRAL)) {
        trainer_free(&tr[0]);
        return -1;
    }
    int *tokens = malloc((size_t)B * L * sizeof(int));
    int *targets = malloc((size_t)B * L * sizeof(int));
    int status = tokens && targets ? 0 : spiral_error("out of memory for the batch");
    if (status == 0) {
        unsigned long long rng = 42;
        random_batch(tokens, targets, B, L, tr[0].cfg.vocab_size, &rng);
    }
    double times[2][MAX_PAIRS], total[2] = {0, 0};
    for (int p = -warmup_pairs; p < pairs && status == 0; p++) {
        double seconds[2];
        for (int i = 0; i < 2 && status == 0; i++) {
            int which = (p & 1) ? 1 - i : i;
            seconds[which] = trainer_step(&tr[which], tokens, targets, B, L);
            if (seconds[which] < 0) status = -1;
        }
        if (status || p < 0) continue;
        for (int k = 0; k < 2; k++) {
            times[k][p] = seconds[k];
            total[k] += seconds[k];
        }
        st->ratio[p] = seconds[1] / seconds[0];
    }
    if (status == 0) {
        ModelCost looped, spiral;
        model_cost(&looped, &tr[0].cfg, L);
        model_cost(&spiral, &tr[1].cfg, L);
        st->flop_ratio = spiral.train_flops / looped.train_flops;
        st->total_ratio = total[1] / total[0];
        st->ratio_median = median(st->ratio, pairs); /* sorts st->ratio */
        st->ratio_q1 = st->ratio[(pairs - 1) / 4];
        st->ratio_q3 = st->ratio[pairs - 1 - (pairs - 1) / 4];
        st->looped_median = median(times[0], pairs);
        st->spiral_median = median(times[1], pairs);
    }
    free(tokens);
    free(targets);
    trainer_free(&tr[0]);
    trainer_free(&tr[1]);
    return status;
}

/* ------------------------------------------------------------------------ */
/* 3. Forward-only throughput                                               */

typedef struct {
    real *buffer;       /* capacity reals; one pass's observations end to end */
    size_t capacity;
    size_t used;        /* reals copied in the current pass */
    int everything;     /* 0: states only; 1: also attention and layer outputs */
    int count_only;     /* 1: size the buffer, copy nothing */
} CopyObserver;

/* Observer: copies the observed tensor after the previous one in the buffer
 * (states are the token, latent and coda sites; `everything` adds attention
 * probabilities and layer outputs). */
static void copy_observed(void *user, const ObserveEvent *e) {
    CopyObserver *c = user;
    int is_state = e->site != OBSERVE_ATTENTION && e->site != OBSERVE_LAYER_OUT;
    if (!is_state && !c->everything) return;
    size_t count = e->site == OBSERVE_ATTENTION ? (size_t)e->B * e->heads * e->rows * e->rows
                                                : (size_t)e->B * e->rows * e->cols;
    if (!c->count_only && c->used + count <= c->capacity)
        memcpy(c->buffer + c->used, e->data, count * sizeof(real));
    c->used += count;
}

typedef struct {
    double tokens_per_second[3];  /* none, states, everything */
    double megabytes[3];          /* copied per forward pass */
} ForwardStats;

/* Forward passes of `kind` at (B, L) without targets, in the three observer
 * modes, interleaved; median of FORWARD_REPS after one warmup each. */
static int measure_forward(ForwardStats *stats, ModelKind kind, int B, int L) {
    SpiralConfig cfg;
    Model model;
    if (kind_config(&cfg, kind) || model_build(&model, &cfg)) return -1;
    model_init_weights(&model, 1);
    int *tokens = malloc((size_t)B * L * sizeof(int));
    int *targets = malloc((size_t)B * L * sizeof(int));
    unsigned long long rng = 7;
    if (tokens && targets) random_batch(tokens, targets, B, L, cfg.vocab_size, &rng);
    /* size the copy buffer: everything one pass observes */
    CopyObserver copier = {NULL, 0, 0, 1, 1};
    Observer observer = {copy_observed, &copier, 0, NULL};
    int status = tokens && targets ? model_forward(&model, tokens, NULL, B, L, &observer) : -1;
    copier.capacity = copier.used;
    copier.buffer = status == 0 ? malloc(copier.capacity * sizeof(real)) : NULL;
    copier.count_only = 0;
    if (!copier.buffer) status = -1;
    double times[3][FORWARD_REPS];
    for (int rep = 0; rep <= FORWARD_REPS && status == 0; rep++) {
        for (int mode = 0; mode < 3 && status == 0; mode++) {
            copier.everything = mode == 2;
            copier.used = 0;
            double t0 = now();
            status = model_forward(&model, tokens, NULL, B, L, mode == 0 ? NULL : &observer);
            double seconds = now() - t0;
            if (rep > 0) times[mode][rep - 1] = seconds; /* rep 0 is the warmup */
            stats->megabytes[mode] = copier.used * sizeof(real) / 1e6;
        }
    }
    if (status == 0)
        for (int mode = 0; mode < 3; mode++)
            stats->tokens_per_second[mode] = B * L / median(times[mode], FORWARD_REPS);
    else if (!copier.buffer || !tokens)
        spiral_error("out of memory for the forward benchmark");
    free(copier.buffer);
    free(tokens);
    free(targets);
    model_free(&model);
    return status;
}

/* ------------------------------------------------------------------------ */
/* 4. Breakdown from isolated calls                                         */

enum { PART_ATTN_PROJ, PART_ATTENTION, PART_MLP, PART_SWIGLU, PART_NORM, PART_ROPE,
       PART_SCALING, PART_HEAD, PART_XENT, PART_EMBEDDING, PART_OPTIMIZER, N_PARTS };
static const char *const part_names[N_PARTS] = {
    "attention projections (wq wk wv wo)", "attention core (softmax(qk^T) v)",
    "MLP matmuls (w1 w3 w2)", "SwiGLU gate", "RMSNorm", "RoPE",
    "down/up-scaling (selfagg, alloc)", "lm head (tied embedding)", "cross-entropy",
    "embedding", "AdamW + zero_grad"};

/* Buffers for isolated calls, sized for B sequences of L tokens; every part
 * function runs forward and backward of one component at length n. */
typedef struct {
    int B, L, d, H, F, V, down, up;
    int n;                                /* length of the layer application timed */
    ChunkGeometry geo;                    /* iteration timed by part_scaling */
    real *xn, *dxn, *proj_out[4], *dproj[4], *w_attn[4], *dw_attn[4];
    real *q, *k, *v, *att, *dq, *dk, *dv, *datt, *probs, *scratch;
    real *a, *c, *m, *da, *dc, *dm, *mlp_out, *dmlp_out;
    real *w1, *w3, *w2, *dw1, *dw3, *dw2;
    real *gain, *dgain, *rstd;
    real *h, *dh_in, *dh_out, *h_out, *z, *dz, *alpha, *score, *dscore;
    real *delta, *ddelta, *coef, *alloc, *dalloc, *scale_scratch;
    real *logits, *dlogits, *table, *dtable;
    int *tokens, *targets, *pos;
    Model *model;                         /* for the optimizer part */
    real *adam_m, *adam_v;
    long adam_t;
    void *owned[96];
    int n_owned, failed;
    unsigned long long rng;
} Blocks;

typedef void (*PartFn)(Blocks *b);

/* A buffer of count reals owned by b, uniform in [-scale, scale]. */
static real *blocks_reals(Blocks *b, size_t count, double scale) {
    /* aligned to a cache line like the model's views (glibc's large
     * mallocs start 16 bytes past a page, so heads' columns would share
     * lines between threads) */
    size_t bytes = (count * sizeof(real) + 63) / 64 * 64;
    real *p = b->n_owned < 96 ? aligned_alloc(64, bytes) : NULL;
    if (!p) {
        b->failed = 1;
        return NULL;
    }
    b->owned[b->n_owned++] = p;
    for (size_t i = 0; i < count; i++) p[i] = (real)(scale * (2 * random_unit(&b->rng) - 1));
    return p;
}

/* A buffer of count ints owned by b, uniform in [0, below). */
static int *blocks_ints(Blocks *b, size_t count, int below) {
    int *p = b->n_owned < 96 ? malloc(count * sizeof(int)) : NULL;
    if (!p) {
        b->failed = 1;
        return NULL;
    }
    b->owned[b->n_owned++] = p;
    for (size_t i = 0; i < count; i++) p[i] = (int)(random_unit(&b->rng) * below);
    return p;
}

/* Frees every buffer blocks_reals and blocks_ints handed out. */
static void blocks_free(Blocks *b) {
    for (int i = 0; i < b->n_owned; i++) free(b->owned[i]);
    b->n_owned = 0;
}

/* Allocates every buffer for (B, L) of cfg; max_g bounds the chunk sizes. */
static int blocks_init(Blocks *b, const SpiralConfig *cfg, int B, int L, int max_g) {
    memset(b, 0, sizeof *b);
    b->rng = 3;
    b->B = B;
    b->L = L;
    b->d = cfg->d_model;
    b->H = cfg->n_heads;
    b->F = cfg->d_ff;
    b->V = cfg->vocab_size;
    b->down = cfg->down;
    b->up = cfg->up;
    size_t rows = (size_t)B * L, d = b->d, f = b->F;
    b->xn = blocks_reals(b, rows * d, 1);
    b->dxn = blocks_reals(b, rows * d, 0.01);
    for (int i = 0; i < 4; i++) {
        b->proj_out[i] = blocks_reals(b, rows * d, 1);
        b->dproj[i] = blocks_reals(b, rows * d, 0.01);
        b->w_attn[i] = blocks_reals(b, d * d, 0.02);
        b->dw_attn[i] = blocks_reals(b, d * d, 0);
    }
    b->q = blocks_reals(b, rows * d, 1);
    b->k = blocks_reals(b, rows * d, 1);
    b->v = blocks_reals(b, rows * d, 1);
    b->att = blocks_reals(b, rows * d, 1);
    b->dq = blocks_reals(b, rows * d, 0.01);
    b->dk = blocks_reals(b, rows * d, 0.01);
    b->dv = blocks_reals(b, rows * d, 0.01);
    b->datt = blocks_reals(b, rows * d, 0.01);
    b->probs = blocks_reals(b, (size_t)B * b->H * L * L, 0);
    b->scratch = blocks_reals(b, (size_t)L * L, 0);
    b->a = blocks_reals(b, rows * f, 1);
    b->c = blocks_reals(b, rows * f, 1);
    b->m = blocks_reals(b, rows * f, 1);
    b->da = blocks_reals(b, rows * f, 0.01);
    b->dc = blocks_reals(b, rows * f, 0.01);
    b->dm = blocks_reals(b, rows * f, 0.01);
    b->mlp_out = blocks_reals(b, rows * d, 1);
    b->dmlp_out = blocks_reals(b, rows * d, 0.01);
    b->w1 = blocks_reals(b, f * d, 0.02);
    b->w3 = blocks_reals(b, f * d, 0.02);
    b->w2 = blocks_reals(b, d * f, 0.02);
    b->dw1 = blocks_reals(b, f * d, 0);
    b->dw3 = blocks_reals(b, f * d, 0);
    b->dw2 = blocks_reals(b, d * f, 0);
    b->gain = blocks_reals(b, d, 1);
    b->dgain = blocks_reals(b, d, 0);
    b->rstd = blocks_reals(b, rows, 1);
    b->h = blocks_reals(b, rows * d, 1);
    b->dh_in = blocks_reals(b, rows * d, 0);
    b->dh_out = blocks_reals(b, rows * d, 0.01);
    b->h_out = blocks_reals(b, rows * d, 0);
    b->z = blocks_reals(b, rows * d, 0);
    b->dz = blocks_reals(b, rows * d, 0.01);
    b->alpha = blocks_reals(b, rows, 0);
    b->score = blocks_reals(b, d, 0.02);
    b->dscore = blocks_reals(b, d, 0);
    b->delta = blocks_reals(b, rows * d, 0.1);
    b->ddelta = blocks_reals(b, rows * d, 0);
    b->coef = blocks_reals(b, (size_t)B * (L + max_g), 0);
    b->alloc = blocks_reals(b, (size_t)max_g * d, 0.02);
    b->dalloc = blocks_reals(b, (size_t)max_g * d, 0);
    b->scale_scratch = blocks_reals(b, (size_t)B * (L + 2 * max_g), 0); /* >= B J g */
    b->logits = blocks_reals(b, rows * b->V, 0);
    b->dlogits = blocks_reals(b, rows * b->V, 0);
    b->table = blocks_reals(b, (size_t)b->V * d, 0.02);
    b->dtable = blocks_reals(b, (size_t)b->V * d, 0);
    b->tokens = blocks_ints(b, rows, b->V);
    b->targets = blocks_ints(b, rows, b->V);
    b->pos = blocks_ints(b, (size_t)L, 1);
    if (b->failed) {
        blocks_free(b);
        return spiral_error("out of memory for the breakdown buffers");
    }
    for (int i = 0; i < L; i++) b->pos[i] = i;
    return 0;
}

/* q, k, v and o projections: 4 x (y = x W^T; dx += dy W, dW += dy^T x). */
static void part_attn_proj(Blocks *b) {
    int M = b->B * b->n, d = b->d;
    for (int i = 0; i < 4; i++) linear_forward(b->proj_out[i], b->xn, b->w_attn[i], M, d, d);
    for (int i = 0; i < 4; i++)
        linear_backward(b->dxn, b->dw_attn[i], b->dproj[i], b->xn, b->w_attn[i], M, d, d);
}

/* Causal attention forward and backward at length n. */
static void part_attention(Blocks *b) {
    int dh = b->d / b->H;
    attention_forward(b->att, b->probs, b->q, b->k, b->v, b->B, b->n, b->H, dh);
    attention_backward(b->dq, b->dk, b->dv, b->scratch, b->datt, b->probs, b->q, b->k, b->v,
                       b->B, b->n, b->H, dh);
}

/* w1, w3 (d -> F) and w2 (F -> d), forward and backward. */
static void part_mlp(Blocks *b) {
    int M = b->B * b->n, d = b->d, f = b->F;
    linear_forward(b->a, b->xn, b->w1, M, d, f);
    linear_forward(b->c, b->xn, b->w3, M, d, f);
    linear_forward(b->mlp_out, b->m, b->w2, M, f, d);
    linear_backward(b->dm, b->dw2, b->dmlp_out, b->m, b->w2, M, f, d);
    linear_backward(b->dxn, b->dw1, b->da, b->xn, b->w1, M, d, f);
    linear_backward(b->dxn, b->dw3, b->dc, b->xn, b->w3, M, d, f);
}

/* m = silu(a) * c and its backward over (B n, F). */
static void part_swiglu(Blocks *b) {
    size_t count = (size_t)b->B * b->n * b->F;
    swiglu_forward(b->m, b->a, b->c, count);
    swiglu_backward(b->da, b->dc, b->dm, b->a, b->c, count);
}

/* One RMSNorm forward and backward over (B n, d). */
static void part_norm(Blocks *b) {
    int M = b->B * b->n;
    rmsnorm_forward(b->xn, b->rstd, b->h, b->gain, M, b->d, 1e-5);
    rmsnorm_backward(b->dh_in, b->dgain, b->dxn, b->h, b->gain, b->rstd, M, b->d);
}

/* One RoPE rotation forward and one backward (a layer does two of each). */
static void part_rope(Blocks *b) {
    int dh = b->d / b->H;
    rope_forward(b->q, b->pos, b->B, b->n, b->H, dh, 10000.0);
    rope_backward(b->dq, b->pos, b->B, b->n, b->H, dh, 10000.0);
}

/* Down-scaling and up-scaling (with shift and update) of one iteration,
 * forward and backward, at geometry b->geo. */
static void part_scaling(Blocks *b) {
    int B = b->B, d = b->d;
    downscale_forward(b->z, b->alpha, b->h, b->score, &b->geo, B, d, b->down);
    upscale_forward(b->h_out, b->coef, b->h, b->delta, b->alloc, &b->geo, B, d, b->up);
    upscale_backward(b->ddelta, b->dalloc, b->scale_scratch, b->dh_out, b->delta, b->coef,
                     b->alloc, &b->geo, B, d, b->up);
    downscale_backward(b->dh_in, b->dscore, b->scale_scratch, b->dz, b->h, b->alpha, b->score,
                       &b->geo, B, d, b->down);
}

/* logits = xn E^T and its backward, over all B L tokens. */
static void part_head(Blocks *b) {
    int M = b->B * b->L;
    linear_forward(b->logits, b->xn, b->table, M, b->d, b->V);
    linear_backward(b->dxn, b->dtable, b->dlogits, b->xn, b->table, M, b->d, b->V);
}

/* Cross-entropy forward and backward over all B L tokens. */
static void part_xent(Blocks *b) {
    int M = b->B * b->L, count = 0;
    crossentropy_forward(b->logits, b->targets, M, b->V, &count);
    crossentropy_backward(b->dlogits, b->logits, b->targets, M, b->V, (real)(1.0 / M));
}

/* Embedding lookup and its backward over all B L tokens. */
static void part_embedding(Blocks *b) {
    int M = b->B * b->L;
    embedding_forward(b->h, b->tokens, b->table, M, b->d);
    embedding_backward(b->dtable, b->dh_out, b->tokens, M, b->d);
}

/* model_zero_grad and one AdamW update over b->model's parameters. */
static void part_optimizer(Blocks *b) {
    model_zero_grad(b->model);
    b->adam_t++;
    adamw_step(b->model->params, b->model->grads, b->adam_m, b->adam_v, &b->model->layout,
               &adam_settings, b->adam_t);
}

/* Median seconds of one call of fn(b) over BREAKDOWN_REPS calls after one
 * warmup call. */
static double part_seconds(PartFn fn, Blocks *b) {
    double times[BREAKDOWN_REPS];
    fn(b);
    for (int r = 0; r < BREAKDOWN_REPS; r++) {
        double t0 = now();
        fn(b);
        times[r] = now() - t0;
    }
    return median(times, BREAKDOWN_REPS);
}

/* Seconds of one layer application's parts at one length n (forward +
 * backward; norm and rope are one call pair each, a layer runs two). */
typedef struct {
    int n;
    double attn_proj, attention, mlp, swiglu, norm, rope;
} LayerTimes;

/* The parts of one layer at length n, measured once per n. */
static const LayerTimes *layer_times(Blocks *b, int n, LayerTimes *memo, int *n_memo) {
    for (int i = 0; i < *n_memo; i++)
        if (memo[i].n == n) return &memo[i];
    if (*n_memo == MAX_MEMO) return NULL; /* cannot happen: at most T + 1 lengths */
    LayerTimes *lt = &memo[(*n_memo)++];
    b->n = n;
    lt->n = n;
    lt->attn_proj = part_seconds(part_attn_proj, b);
    lt->attention = part_seconds(part_attention, b);
    lt->mlp = part_seconds(part_mlp, b);
    lt->swiglu = part_seconds(part_swiglu, b);
    lt->norm = part_seconds(part_norm, b);
    lt->rope = part_seconds(part_rope, b);
    return lt;
}

/* Estimated seconds of one training step per part, and the analytic
 * training FLOPs (cost.h, x 3 for forward + backward) each part performs. */
typedef struct {
    double seconds[N_PARTS];
    double flops[N_PARTS];
} Breakdown;

/* Adds `count` layer applications at length n to the breakdown. */
static void add_layers(Breakdown *out, Blocks *b, int n, int count, LayerTimes *memo,
                       int *n_memo) {
    const LayerTimes *lt = layer_times(b, n, memo, n_memo);
    if (!lt) return;
    double rows = (double)b->B * n, d = b->d, f = b->F;
    out->seconds[PART_ATTN_PROJ] += count * lt->attn_proj;
    out->seconds[PART_ATTENTION] += count * lt->attention;
    out->seconds[PART_MLP] += count * lt->mlp;
    out->seconds[PART_SWIGLU] += count * lt->swiglu;
    out->seconds[PART_NORM] += count * 2 * lt->norm;
    out->seconds[PART_ROPE] += count * 2 * lt->rope;
    out->flops[PART_ATTN_PROJ] += count * 3 * 4 * 2 * rows * d * d;
    out->flops[PART_ATTENTION] += count * 3 * 2 * rows * (n + 1.0) * d;
    out->flops[PART_MLP] += count * 3 * 3 * 2 * rows * d * f;
}

/* The breakdown of one training step of `kind` at (b->B, b->L): the isolated
 * calls summed by how often the step runs them. head_parts holds the lm
 * head, cross-entropy and embedding times (the same for every kind). */
static int breakdown_kind(Breakdown *out, ModelKind kind, Blocks *b, LayerTimes *memo, int *n_memo,
                          const double *head_parts) {
    SpiralConfig cfg;
    if (kind_config(&cfg, kind)) return -1;
    int L = b->L;
    double tokens = (double)b->B * L, d = b->d;
    memset(out, 0, sizeof *out);
    add_layers(out, b, L, cfg.n_pre, memo, n_memo);
    for (int t = 0; t < cfg.n_iters; t++) {
        const IterSpec *spec = &cfg.schedule[t];
        ChunkGeometry geo = chunk_geometry(L, spec);
        add_layers(out, b, geo.J, cfg.n_loop, memo, n_memo);
        if (!(spec->g == 1 && spec->shift == 0)) {
            b->geo = geo;
            out->seconds[PART_SCALING] += part_seconds(part_scaling, b);
            double down = cfg.down == DOWN_SELFAGG ? 4 * tokens * d : tokens * d;
            double up = cfg.up == UP_ALLOC ? 2.0 * b->B * geo.J * spec->g * d + 2 * tokens * d
                                           : tokens * d;
            out->flops[PART_SCALING] += 3 * (down + up);
        }
    }
    add_layers(out, b, L, cfg.n_post, memo, n_memo);
    b->n = L;
    out->seconds[PART_NORM] += layer_times(b, L, memo, n_memo)->norm; /* final norm */
    out->seconds[PART_HEAD] = head_parts[PART_HEAD];
    out->seconds[PART_XENT] = head_parts[PART_XENT];
    out->seconds[PART_EMBEDDING] = head_parts[PART_EMBEDDING];
    out->flops[PART_HEAD] = 3 * 2 * tokens * d * cfg.vocab_size;
    /* the optimizer over this kind's parameters */
    Model model;
    if (model_build(&model, &cfg)) return -1;
    model_init_weights(&model, 1);
    b->adam_m = calloc(model.layout.n_params, sizeof(real));
    b->adam_v = calloc(model.layout.n_params, sizeof(real));
    int status = 0;
    if (b->adam_m && b->adam_v) {
        b->model = &model;
        b->adam_t = 0;
        out->seconds[PART_OPTIMIZER] = part_seconds(part_optimizer, b);
    } else {
        status = spiral_error("out of memory for the optimizer moments");
    }
    free(b->adam_m);
    free(b->adam_v);
    b->adam_m = b->adam_v = NULL;
    b->model = NULL;
    model_free(&model);
    return status;
}

/* ------------------------------------------------------------------------ */
/* Report                                                                   */

/* What the sections measure, for the summary. */
typedef struct {
    int cores, threads;
    double peak_one, peak_all;          /* section 1, square sgemm GFLOP/s */
    double ceiling;                     /* the best square sgemm GFLOP/s seen in the run */
    int n_probes;                       /* square sgemm measurements behind the ceiling */
    StepStats steps[N_SIZES][N_KINDS];
    PairStats pairs[N_PAIR_SIZES];      /* spiral vs looped, interleaved */
    StepStats breakdown_steps[N_KINDS]; /* steps timed right before the breakdown */
    ForwardStats forward[N_KINDS];
    Breakdown parts[N_KINDS];
    double part_sums[N_KINDS];
} Results;

/* The training sizes: L, one_thread (1: OpenBLAS on one thread, 0: on all),
 * warmup and timed steps. The one-thread row must stay last (the summary
 * reads it there). */
static const struct { int L, one_thread, warmup, timed; } sizes[N_SIZES] = {
    {128, 0, 2, 3}, {256, 0, 2, 5}, {512, 0, 1, 3}, {256, 1, 1, 3}};

/* The interleaved spiral-vs-looped sizes: L, warmup pairs, timed pairs. */
static const struct { int L, warmup, pairs; } pair_sizes[N_PAIR_SIZES] = {
    {128, 2, 15}, {256, 2, 15}, {512, 1, 7}};

static const char *met(int ok) { return ok ? "met" : "NOT MET"; }

/* spiral's threading for model work: the pool on n threads, OpenBLAS on one
 * thread per call (the sgemm references set OpenBLAS's own threads). */
static void model_threads(int n) {
    parallel_set_threads(n);
    openblas_set_num_threads(1);
}

/* The 1-minute load average (other processes competing for the cores). */
static double load_average(void) {
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) load = -1;
        fclose(f);
    }
    return load;
}

/* Section 1: sgemm on square matrices and at the step's shapes. */
static void report_sgemm(Results *r) {
    static const int square_n[2] = {1024, 2048};
    printf("== 1. OpenBLAS sgemm peak (C = A B, square, best of 3 after a warmup)\n");
    printf("%8s %10s %12s\n", "n", "threads", "GFLOP/s");
    for (int i = 0; i < 2; i++) {
        openblas_set_num_threads(1);
        double one = sgemm_gflops(0, 0, square_n[i], square_n[i], square_n[i], 3);
        openblas_set_num_threads(r->threads);
        double all = sgemm_gflops(0, 0, square_n[i], square_n[i], square_n[i], 3);
        printf("%8d %10d %12.1f\n%8d %10d %12.1f\n", square_n[i], 1, one, square_n[i],
               r->threads, all);
        r->peak_one = one > r->peak_one ? one : r->peak_one;
        r->peak_all = all > r->peak_all ? all : r->peak_all;
    }
    r->ceiling = r->peak_all > r->peak_one ? r->peak_all : r->peak_one;
    r->n_probes = 4;
    printf("peak: %.1f GFLOP/s on 1 thread, %.1f on %d (x%.2f)\n", r->peak_one, r->peak_all,
           r->threads, r->peak_all / r->peak_one);
    if (r->peak_all < 1.5 * r->peak_one)
        printf("note: %d threads gained little over 1; other processes may be sharing the cores. "
               "The ceiling used for MFU\nis the best square sgemm seen in the whole run "
               "(it is measured again before every model in section 2).\n", r->threads);
    int M = BATCH * BREAKDOWN_L;
    const struct { const char *what; int ta, tb, m, n, k; } shapes[5] = {
        {"x W^T, d -> F (w1, w3)", 0, 1, M, 688, 256},
        {"x W^T, d -> d (wq wk wv wo)", 0, 1, M, 256, 256},
        {"dW = dy^T x, (F, d)", 1, 0, 688, 256, M},
        {"dx = dy W, F -> d", 0, 0, M, 256, 688},
        {"q k^T, one head (L, L, d/H)", 0, 1, 256, 256, 64},
    };
    printf("sgemm at the step's shapes (B L = %d rows, %d threads, best of 5), the ceiling they "
           "allow:\n", M, r->threads);
    for (int i = 0; i < 5; i++) {
        int m = shapes[i].m, k = shapes[i].k;
        double gflops = sgemm_gflops(shapes[i].ta, shapes[i].tb, m, shapes[i].n, k, 5);
        printf("  %-30s %5d x %4d x %4d %8.1f GFLOP/s (%3.0f%% of peak)\n", shapes[i].what, m,
               shapes[i].n, k, gflops, 100 * gflops / r->ceiling);
    }
    printf("\n");
}

/* Measures square sgemm again (n = 2048, all threads, best of 2 after a
 * warmup) and raises the ceiling if it ran faster than any measurement
 * before: the ceiling is the best the machine showed. Returns GFLOP/s. */
static double probe_ceiling(Results *r) {
    openblas_set_num_threads(r->threads);
    double gflops = sgemm_gflops(0, 0, 2048, 2048, 2048, 2);
    r->ceiling = gflops > r->ceiling ? gflops : r->ceiling;
    r->n_probes++;
    return gflops;
}

/* Section 2: training steps at every size; returns 0 or 1 (printed error).
 * Everything is measured first, so that MFU uses the final ceiling. */
static int report_training(Results *r) {
    for (int s = 0; s < N_SIZES; s++) {
        for (int kind = 0; kind < N_KINDS; kind++) {
            StepStats *st = &r->steps[s][kind];
            double sgemm_before = probe_ceiling(r);
            model_threads(sizes[s].one_thread ? 1 : r->threads);
            int status = measure_training(st, (ModelKind)kind, BATCH, sizes[s].L, sizes[s].warmup,
                                          sizes[s].timed);
            model_threads(r->threads);
            if (status) return fail(model_kind_name(kind));
            st->sgemm_before = sgemm_before;
        }
    }
    for (int s = 0; s < N_PAIR_SIZES; s++) {
        model_threads(r->threads);
        if (measure_pairs(&r->pairs[s], BATCH, pair_sizes[s].L, pair_sizes[s].warmup,
                          pair_sizes[s].pairs))
            return fail("spiral vs looped");
    }
    probe_ceiling(r); /* and once after the last model */
    printf("== 2. Training step (zero_grad + forward + backward + AdamW), B = %d, median of N "
           "timed steps after W warmup steps\n", BATCH);
    printf("%5s %3s %-7s %5s %8s %7s %9s %9s %9s %7s %6s %6s %12s %10s\n", "L", "thr", "kind",
           "W+N", "params", "GFLOP", "ms/step", "best ms", "tokens/s", "GFLOP/s", "MFU", "sgemm",
           "allocs p/lib", "peak/expMB");
    for (int s = 0; s < N_SIZES; s++) {
        for (int kind = 0; kind < N_KINDS; kind++) {
            const StepStats *st = &r->steps[s][kind];
            double gflops = st->train_flops / st->median / 1e9;
            char steps[16], allocs[32];
            snprintf(steps, sizeof steps, "%d+%d", st->warmup_steps, st->timed_steps);
            snprintf(allocs, sizeof allocs, "%ld/%ld", st->allocations[0], st->allocations[1]);
            printf("%5d %3d %-7s %5s %7.2fM %7.1f %9.1f %9.1f %9.0f %7.1f %5.1f%% %6.0f %12s "
                   "%5.0f/%-4.0f\n", st->L, st->threads, model_kind_name(kind), steps,
                   st->params / 1e6, st->train_flops / 1e9, 1e3 * st->median, 1e3 * st->best,
                   BATCH * st->L / st->median, gflops, 100 * gflops / r->ceiling,
                   st->sgemm_before, allocs, st->peak_rss_mb, st->expected_mb);
            if (st->allocations[1])
                printf("%21s library allocations: %.0f per step, mean %.0f KB; heap in use "
                       "changed by %lld bytes\n", "",
                       (double)st->allocations[1] / (st->warmup_steps + st->timed_steps - 1),
                       st->allocated_bytes[1] / 1024.0 / st->allocations[1], st->heap_change);
        }
    }
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("thr: threads of spiral's pool (OpenBLAS on one thread per call). MFU: achieved GFLOP/s / the ceiling, the best of %d square "
           "sgemm runs on %d threads (%.1f GFLOP/s).\nsgemm: the square sgemm rate on %d threads "
           "measured just before the model (lower = the machine was busier).\n"
           "allocs p/lib: malloc/calloc/realloc calls during steps 2..W+N from this program "
           "(core/) / from shared libraries.\n"
           "peak/expMB: VmHWM since the model was built / parameters + gradients + AdamW moments "
           "+ model_activation_bytes.\n"
           "Process threads now: %ld; peak RSS of the whole run (ru_maxrss): %.0f MB\n",
           r->n_probes, r->threads, r->ceiling, r->threads, proc_status_value("Threads"),
           usage.ru_maxrss / 1024.0);
    printf("ratio of ratios (spiral / looped step time) / (spiral / looped FLOPs); 1 = time "
           "falls in proportion to FLOPs:\n");
    for (int s = 0; s < N_SIZES; s++) {
        const StepStats *sp = &r->steps[s][KIND_SPIRAL], *lo = &r->steps[s][KIND_LOOPED];
        double time_ratio = sp->median / lo->median, flop_ratio = sp->train_flops / lo->train_flops;
        printf("  L = %3d, %d thread(s): time %.3f / FLOPs %.3f = %.3f\n", sizes[s].L,
               sp->threads, time_ratio, flop_ratio, time_ratio / flop_ratio);
    }
    printf("(each model timed in its own stretch of the run; the machine's speed drifts "
           "between them by a few percent)\n\n");
    printf("== 2b. Spiral vs looped, steps interleaved (pair p: one step of each, looped first "
           "in even pairs,\n   spiral first in odd ones), B = %d, %d threads; per-pair time "
           "ratio spiral / looped\n", BATCH, r->threads);
    printf("%5s %7s %11s %11s %13s %17s %11s %10s %16s\n", "L", "pairs", "looped ms",
           "spiral ms", "median ratio", "quartiles", "sum ratio", "FLOPs", "ratio of ratios");
    for (int s = 0; s < N_PAIR_SIZES; s++) {
        const PairStats *ps = &r->pairs[s];
        char quartiles[32];
        snprintf(quartiles, sizeof quartiles, "%.3f-%.3f", ps->ratio_q1, ps->ratio_q3);
        printf("%5d %7d %11.1f %11.1f %13.3f %17s %11.3f %10.3f %16.3f\n", ps->L, ps->pairs,
               1e3 * ps->looped_median, 1e3 * ps->spiral_median, ps->ratio_median, quartiles,
               ps->total_ratio, ps->flop_ratio, ps->ratio_median / ps->flop_ratio);
    }
    printf("ratio of ratios = median pair ratio / FLOP ratio; quartiles: of the pair ratios, "
           "the spread a drifting machine leaves.\n\n");
    return 0;
}

/* Section 3: forward-only throughput with the observer off and on. */
static int report_forward(Results *r) {
    model_threads(r->threads);
    printf("== 3. Forward only (no targets), B = %d, L = %d, median of %d, modes interleaved\n",
           BATCH, BREAKDOWN_L, FORWARD_REPS);
    printf("%-7s %12s %20s %20s %12s %12s\n", "kind", "off tok/s", "copy states tok/s",
           "copy all tok/s", "states/off", "all/off");
    for (int kind = 0; kind < N_KINDS; kind++) {
        ForwardStats *fs = &r->forward[kind];
        if (measure_forward(fs, (ModelKind)kind, BATCH, BREAKDOWN_L)) return fail("forward");
        char states[32], all[32];
        snprintf(states, sizeof states, "%.0f (%.0f MB)", fs->tokens_per_second[1],
                 fs->megabytes[1]);
        snprintf(all, sizeof all, "%.0f (%.0f MB)", fs->tokens_per_second[2], fs->megabytes[2]);
        printf("%-7s %12.0f %20s %20s %12.3f %12.3f\n", model_kind_name(kind),
               fs->tokens_per_second[0], states, all,
               fs->tokens_per_second[1] / fs->tokens_per_second[0],
               fs->tokens_per_second[2] / fs->tokens_per_second[0]);
    }
    printf("(MB: float32 copied per forward pass of %d sequences; copy states = the sites "
           "recording stores,\n copy all = also every attention matrix and layer output)\n\n",
           BATCH);
    return 0;
}

/* Section 4: the estimated breakdown of a step at (BATCH, BREAKDOWN_L). */
static int report_breakdown(Results *r) {
    model_threads(r->threads);
    SpiralConfig spiral_cfg;
    Blocks blocks;
    if (kind_config(&spiral_cfg, KIND_SPIRAL) ||
        blocks_init(&blocks, &spiral_cfg, BATCH, BREAKDOWN_L, 8))
        return fail("breakdown");
    LayerTimes memo[MAX_MEMO];
    int n_memo = 0;
    double head_parts[N_PARTS] = {0};
    blocks.n = BREAKDOWN_L;
    head_parts[PART_HEAD] = part_seconds(part_head, &blocks);
    head_parts[PART_XENT] = part_seconds(part_xent, &blocks);
    head_parts[PART_EMBEDDING] = part_seconds(part_embedding, &blocks);
    for (int kind = 0; kind < N_KINDS; kind++) {
        /* the whole step again, just before its parts, so both see the same machine load */
        if (measure_training(&r->breakdown_steps[kind], (ModelKind)kind, BATCH, BREAKDOWN_L, 1, 2) ||
            breakdown_kind(&r->parts[kind], (ModelKind)kind, &blocks, memo, &n_memo, head_parts)) {
            blocks_free(&blocks);
            return fail("breakdown");
        }
        r->part_sums[kind] = 0;
        for (int p = 0; p < N_PARTS; p++) r->part_sums[kind] += r->parts[kind].seconds[p];
    }
    const StepStats *measured = r->breakdown_steps;
    printf("== 4. Where a training step goes, B = %d, L = %d, %d threads: ESTIMATE from isolated "
           "forward + backward\n   calls of layers.h / scale.h at the step's shapes (median of "
           "%d, warm caches), summed per kind\n", BATCH, BREAKDOWN_L, r->threads,
           BREAKDOWN_REPS);
    printf("%-36s", "component");
    for (int kind = 0; kind < N_KINDS; kind++) printf(" %9s ms     %% >peak", model_kind_name(kind));
    printf("\n");
    for (int p = 0; p < N_PARTS; p++) {
        printf("%-36s", part_names[p]);
        for (int kind = 0; kind < N_KINDS; kind++) {
            const Breakdown *bd = &r->parts[kind];
            double above = bd->seconds[p] - bd->flops[p] / (r->ceiling * 1e9);
            printf(" %12.1f %5.1f %6.1f", 1e3 * bd->seconds[p],
                   100 * bd->seconds[p] / r->part_sums[kind], 1e3 * above);
        }
        printf("\n");
    }
    printf("%-36s", "sum of the isolated calls");
    for (int kind = 0; kind < N_KINDS; kind++) {
        const Breakdown *bd = &r->parts[kind];
        double flops = 0;
        for (int p = 0; p < N_PARTS; p++) flops += bd->flops[p];
        printf(" %12.1f %5.0f %6.1f", 1e3 * r->part_sums[kind], 100.0,
               1e3 * (r->part_sums[kind] - flops / (r->ceiling * 1e9)));
    }
    printf("\n%-36s", "measured step (just before; 1+2)");
    for (int kind = 0; kind < N_KINDS; kind++)
        printf(" %12.1f %5s %6s", 1e3 * measured[kind].median, "", "");
    printf("\n%-36s", "not covered: adds, zeroing, copies");
    for (int kind = 0; kind < N_KINDS; kind++) {
        double gap = measured[kind].median - r->part_sums[kind];
        printf(" %12.1f %5.1f %6s", 1e3 * gap, 100 * gap / measured[kind].median, "");
    }
    printf("\n%%: share of the sum of isolated calls (last row: of the measured step). >peak: ms "
           "above the part's analytic\nFLOPs at the sgemm ceiling (norms, RoPE, SwiGLU, softmax "
           "and the optimizer count no FLOPs, so all their time is above).\nmeasured step: a "
           "whole training step timed right before each kind's parts (1 warmup + median of 2).\n");
    /* the rate of the matmul-bound parts of one layer at n = L */
    const LayerTimes *full = layer_times(&blocks, BREAKDOWN_L, memo, &n_memo);
    double rows = (double)BATCH * BREAKDOWN_L, d = 256, f = 688, n = BREAKDOWN_L;
    const struct { const char *what; double flops, seconds; } rates[4] = {
        {"attention projections", 3 * 4 * 2 * rows * d * d, full->attn_proj},
        {"attention core (causal-pair FLOPs)", 3 * 2 * rows * (n + 1) * d, full->attention},
        {"MLP matmuls", 3 * 3 * 2 * rows * d * f, full->mlp},
        {"lm head", 3 * 2 * rows * d * spiral_cfg.vocab_size, head_parts[PART_HEAD]},
    };
    printf("achieved rate of one layer's parts at n = %d (forward + backward, analytic FLOPs):\n",
           BREAKDOWN_L);
    int above_ceiling = 0;
    for (int i = 0; i < 4; i++) {
        double gflops = rates[i].flops / rates[i].seconds / 1e9;
        above_ceiling |= gflops > r->ceiling;
        printf("  %-36s %8.1f GFLOP/s (%3.0f%% of the sgemm ceiling)\n", rates[i].what, gflops,
               100 * gflops / r->ceiling);
    }
    if (above_ceiling)
        printf("WARNING: a part ran faster than the sgemm ceiling: every sgemm measurement ran "
               "on a busier machine, so the ceiling\nis too low and every MFU here too high.\n");
    blocks_free(&blocks);
    printf("\n");
    return 0;
}

/* The part of a breakdown with the most time above its sgemm-peak cost. */
static int most_above_peak(const Breakdown *bd, double peak_gflops) {
    int worst = 0;
    double worst_above = -1e30;
    for (int p = 0; p < N_PARTS; p++) {
        double above = bd->seconds[p] - bd->flops[p] / (peak_gflops * 1e9);
        if (above > worst_above) {
            worst_above = above;
            worst = p;
        }
    }
    return worst;
}

/* The summary: the ratios against the targets. */
static void report_summary(const Results *r) {
    const StepStats *main_size = r->steps[1];
    printf("== Summary (B = %d, L = %d, d = 256, %d threads on %d cores)\n", BATCH,
           BREAKDOWN_L, r->threads, r->cores);
    printf("sgemm ceiling: %.1f GFLOP/s (best of %d square runs; section 1 alone: %.1f on %d "
           "threads, %.1f on 1)\n", r->ceiling, r->n_probes, r->peak_all, r->threads,
           r->peak_one);
    for (int kind = 0; kind < N_KINDS; kind++) {
        double mfu = main_size[kind].train_flops / main_size[kind].median / 1e9 / r->ceiling;
        double best = main_size[kind].train_flops / main_size[kind].best / 1e9 / r->ceiling;
        printf("MFU %-7s %5.1f%% (best step %5.1f%%)   target >= 50%%: %s\n", model_kind_name(kind),
               100 * mfu, 100 * best, met(mfu >= 0.5));
    }
    const PairStats *pairs = &r->pairs[1];
    double ratio_of_ratios = pairs->ratio_median / pairs->flop_ratio;
    double sequential = main_size[KIND_SPIRAL].median / main_size[KIND_LOOPED].median /
                        (main_size[KIND_SPIRAL].train_flops / main_size[KIND_LOOPED].train_flops);
    printf("ratio of ratios, spiral vs looped at L = %d (interleaved, section 2b): %.3f "
           "(quartiles %.3f-%.3f)   target <= 1.00\n  (step time falls at least in proportion to "
           "FLOPs): %s; from section 2's separate runs: %.3f\n", pairs->L, ratio_of_ratios,
           pairs->ratio_q1 / pairs->flop_ratio, pairs->ratio_q3 / pairs->flop_ratio,
           met(ratio_of_ratios <= 1.0), sequential);
    long own = 0, library = 0, library_one_thread = 0;
    for (int s = 0; s < N_SIZES; s++)
        for (int kind = 0; kind < N_KINDS; kind++) {
            own += r->steps[s][kind].allocations[0];
            library += r->steps[s][kind].allocations[1];
            if (sizes[s].one_thread) library_one_thread += r->steps[s][kind].allocations[1];
        }
    printf("allocations in training steps after the first, all models and sizes: %ld from "
           "core/, %ld from shared libraries\n  (of which %ld in the 1-thread runs)   target 0: "
           "%s\n", own, library, library_one_thread, met(own + library == 0));
    const StepStats *one_thread = r->steps[N_SIZES - 1];
    printf("with 1 thread at L = %d: MFU dense %.1f%%, looped %.1f%%, spiral %.1f%% "
           "(step time vs %d threads: %.2f, %.2f, %.2f)\n", one_thread[0].L,
           100 * one_thread[0].train_flops / one_thread[0].median / 1e9 / r->ceiling,
           100 * one_thread[1].train_flops / one_thread[1].median / 1e9 / r->ceiling,
           100 * one_thread[2].train_flops / one_thread[2].median / 1e9 / r->ceiling,
           r->threads, one_thread[0].median / main_size[0].median,
           one_thread[1].median / main_size[1].median, one_thread[2].median / main_size[2].median);
    printf("threads: spiral's pool on %d threads, OpenBLAS on 1 per call, %d cores   no "
           "oversubscription: %s\n", r->threads, r->cores, met(r->threads <= r->cores));
    printf("peak memory at L = %d: dense %.0f, looped %.0f, spiral %.0f MB (expected %.0f, %.0f, "
           "%.0f)\n", BREAKDOWN_L, main_size[0].peak_rss_mb, main_size[1].peak_rss_mb,
           main_size[2].peak_rss_mb, main_size[0].expected_mb, main_size[1].expected_mb,
           main_size[2].expected_mb);
    printf("most time above the sgemm-peak cost (estimate, section 4):");
    for (int kind = 0; kind < N_KINDS; kind++) {
        const Breakdown *bd = &r->parts[kind];
        int worst = most_above_peak(bd, r->ceiling);
        double above = bd->seconds[worst] - bd->flops[worst] / (r->ceiling * 1e9);
        printf("%s %s %s (%.0f ms of %.0f)", kind ? "," : "", model_kind_name(kind), part_names[worst],
               1e3 * above, 1e3 * r->part_sums[kind]);
    }
    printf("\n");
}

/* Measures sections 1 to 4, then prints the summary. */
int main(void) {
    static Results results;
    Results *r = &results;
    setvbuf(stdout, NULL, _IOLBF, 0);
    r->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    r->threads = parallel_threads();
    const char *env_spiral = getenv("SPIRAL_THREADS");
    const char *env_blas = getenv("OPENBLAS_NUM_THREADS"), *env_omp = getenv("OMP_NUM_THREADS");
    double load_start = load_average(), t0 = now();
    printf("bench_train: training throughput of dense, looped and spiral models against the\n"
           "sgemm peak measured in this run (float32; %s; core %s)\n",
           openblas_get_config(), openblas_get_corename());
    printf("cores online: %d; threads: %d (SPIRAL_THREADS=%s); model work runs on spiral's pool "
           "with OpenBLAS on one thread per call;\nthe sgemm references run OpenBLAS's own "
           "threads (OPENBLAS_NUM_THREADS=%s, OMP_NUM_THREADS=%s)\nload average (1 min) at "
           "start: %.2f\n\n", r->cores, r->threads, env_spiral ? env_spiral : "unset",
           env_blas ? env_blas : "unset", env_omp ? env_omp : "unset", load_start);
    report_sgemm(r);
    if (report_training(r) || report_forward(r) || report_breakdown(r)) return 1;
    report_summary(r);
    printf("load average (1 min): %.2f at start, from other processes; %.2f at end, including "
           "this benchmark's own threads (%d cores). %.0f s in all.\n", load_start,
           load_average(), r->cores, now() - t0);
    return 0;
}
