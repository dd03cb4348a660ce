/*
 * bench_generate.c: how fast the incremental decoder generates, against
 * recomputing the full forward pass for every new token (naive), both
 * measured in the same run.
 *
 * Models (as bench_train): d = 256, H = 4, F = 688, V = 256 (tied), 1
 * prelude and 1 coda layer; dense = 8 distinct core layers, one iteration;
 * looped = 2 shared layers x 4 iterations, g = 1; spiral = 2 shared layers,
 * g = 8, 4, 2, 1, shift g - 1, selfagg / alloc / residual. Weights from the
 * documented initialization (seed 1).
 *
 * For each kind and context L = 512 and 2048:
 * 1. Incremental: a one-token prompt, then greedy generation until the
 *    context is full (L - 1 steps); every step (decoder_step + the argmax)
 *    is timed: tokens/s over the whole context, and the per-token latency's
 *    mean, p99 and max. One warmup generation of 64 tokens first.
 * 2. Naive: generating the token at position p recomputes model_forward
 *    over the p + 1 tokens so far. Timing all L of them would take minutes,
 *    so it is measured at 4 lengths only, n = (k + 1/2) L / 4, k = 0..3 (one
 *    forward each, after a warmup at the longest), and the mean over those 4
 *    stands for the mean over all positions (the midpoint rule for the
 *    integral of a cost that grows smoothly with n): an extrapolation, said
 *    so in the table. The speedup is naive mean / incremental mean.
 * 3. FLOPs per generated token: the analytic counts of core/cost.h, for a
 *    decoder step (decoder_step_flops) and for a full forward at p + 1
 *    tokens (model_cost), averaged over the positions of the context.
 * Then spiral against looped: the analytic FLOPs ratio per token beside the
 * measured time ratio, and the goal (>= 20x faster than naive at L = 2048)
 * met or not.
 *
 * Threads: spiral's pool (SPIRAL_THREADS, default every core), OpenBLAS one
 * thread per call. Other processes on the machine slow every number here;
 * the ratios are taken between measurements made minutes apart at most.
 * About a minute on 2 quiet cores (7 minutes while other builds loaded
 * them). No arguments.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_models.h"
#include "clock.h"
#include "config.h"
#include "cost.h"
#include "decode.h"
#include "error.h"
#include "model.h"
#include "parallel.h"
#include "sample.h"


enum { N_LENGTHS = 2, NAIVE_SAMPLES = 4, WARMUP_TOKENS = 64 };
static const int lengths[N_LENGTHS] = {512, 2048};


/* What one (kind, L) measured. */
typedef struct {
    double tokens_per_s;          /* incremental, over the whole context */
    double mean_ms, p99_ms, max_ms;
    double naive_mean_ms;         /* extrapolated from NAIVE_SAMPLES lengths */
    double naive_at_L_ms;         /* the longest sample's forward */
    double step_flops, naive_flops;  /* analytic, mean per generated token */
} Measure;

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Greedy generation from token 0 until dec holds n tokens; latency (n - 1)
 * gets each step's seconds. */
static int generate(Decoder *dec, double *latency, int n, SampleCandidate *scratch) {
    SampleSettings greedy = {0, 0, 1};
    SampleRng rng;
    sample_rng_seed(&rng, 1);
    decoder_reset(dec);
    if (decoder_step(dec, 0)) return -1;
    for (int p = 1; p < n; p++) {
        double start = seconds_now(), logprob;
        int token = sample_token(dec->logits, dec->model->cfg.vocab_size, &greedy, &rng, scratch,
                                 &logprob);
        if (decoder_step(dec, token)) return -1;
        if (latency) latency[p - 1] = seconds_now() - start;
    }
    return 0;
}

static int measure(Measure *m, ModelKind kind, int L) {
    SpiralConfig cfg;
    Model model;
    Decoder dec;
    memset(m, 0, sizeof *m);
    if (kind_config(&cfg, kind) || model_build(&model, &cfg)) return -1;
    model_init_weights(&model, 1);
    int status = decoder_build(&dec, &model, L);
    double *latency = malloc((size_t)L * sizeof(double));
    int *tokens = malloc((size_t)L * sizeof(int));
    SampleCandidate *scratch = malloc((size_t)cfg.vocab_size * sizeof *scratch);
    if (status || !latency || !tokens || !scratch) {
        if (!status) spiral_error("out of memory");
        status = -1;
        goto done;
    }
    /* 1. incremental */
    if ((status = generate(&dec, NULL, WARMUP_TOKENS < L ? WARMUP_TOKENS : L, scratch))) goto done;
    double start = seconds_now();
    if ((status = generate(&dec, latency, L, scratch))) goto done;
    double total = seconds_now() - start;
    int steps = L - 1;
    m->tokens_per_s = steps / total;
    double sum = 0;
    for (int i = 0; i < steps; i++) sum += latency[i];
    m->mean_ms = 1e3 * sum / steps;
    qsort(latency, (size_t)steps, sizeof(double), compare_double);
    m->p99_ms = 1e3 * latency[(int)ceil(0.99 * steps) - 1];
    m->max_ms = 1e3 * latency[steps - 1];
    /* 2. naive, at NAIVE_SAMPLES lengths */
    for (int i = 0; i < L; i++) tokens[i] = (i * 37 + 11) % cfg.vocab_size;
    if ((status = model_forward(&model, tokens, NULL, 1, L, NULL))) goto done; /* warmup */
    double naive_sum = 0;
    for (int k = 0; k < NAIVE_SAMPLES; k++) {
        int n = (int)((k + 0.5) * L / NAIVE_SAMPLES);
        start = seconds_now();
        if ((status = model_forward(&model, tokens, NULL, 1, n, NULL))) goto done;
        naive_sum += seconds_now() - start;
    }
    start = seconds_now();
    if ((status = model_forward(&model, tokens, NULL, 1, L, NULL))) goto done;
    m->naive_at_L_ms = 1e3 * (seconds_now() - start);
    m->naive_mean_ms = 1e3 * naive_sum / NAIVE_SAMPLES;
    /* 3. analytic FLOPs per generated token (positions 1 .. L-1) */
    for (int p = 1; p < L; p++) {
        ModelCost cost;
        model_cost(&cost, &cfg, p + 1);
        m->step_flops += decoder_step_flops(&cfg, p) / steps;
        m->naive_flops += cost.forward_flops / steps;
    }
done:
    free(latency);
    free(tokens);
    free(scratch);
    decoder_free(&dec);
    model_free(&model);
    return status;
}

int main(void) {
    Measure results[N_KINDS][N_LENGTHS];
    printf("bench_generate: greedy generation through the incremental decoder vs the full\n"
           "forward pass per new token (naive); d = 256, V = 256, %d threads\n\n",
           parallel_threads());
    for (int l = 0; l < N_LENGTHS; l++)
        for (int k = 0; k < N_KINDS; k++) {
            fprintf(stderr, "measuring %s at L = %d ...\n", model_kind_name(k), lengths[l]);
            if (measure(&results[k][l], (ModelKind)k, lengths[l])) {
                fprintf(stderr, "bench_generate: %s\n", spiral_last_error());
                return 1;
            }
        }
    printf("%-7s %5s %9s %8s %8s %8s %12s %10s %8s %10s %10s\n", "kind", "L", "tok/s",
           "mean ms", "p99 ms", "max ms", "naive ms/tok", "naive @L", "speedup", "MFLOP/tok",
           "naive MF");
    for (int l = 0; l < N_LENGTHS; l++)
        for (int k = 0; k < N_KINDS; k++) {
            const Measure *m = &results[k][l];
            printf("%-7s %5d %9.1f %8.3f %8.3f %8.3f %12.2f %10.2f %7.1fx %10.2f %10.1f\n",
                   model_kind_name(k), lengths[l], m->tokens_per_s, m->mean_ms, m->p99_ms, m->max_ms,
                   m->naive_mean_ms, m->naive_at_L_ms, m->naive_mean_ms / m->mean_ms,
                   m->step_flops / 1e6, m->naive_flops / 1e6);
        }
    printf("\nnaive ms/tok: the mean of %d full forward passes at lengths (k + 1/2) L / %d,\n"
           "standing for the mean over all %s positions (extrapolated, not every token timed);\n"
           "naive @L: one forward at the full context. speedup = naive ms/tok / mean ms.\n",
           NAIVE_SAMPLES, NAIVE_SAMPLES, "L");
    printf("\nspiral vs looped, per generated token:\n");
    for (int l = 0; l < N_LENGTHS; l++) {
        const Measure *s = &results[KIND_SPIRAL][l], *o = &results[KIND_LOOPED][l];
        printf("  L = %4d: analytic FLOPs ratio %.3f, measured time ratio %.3f\n", lengths[l],
               s->step_flops / o->step_flops, s->mean_ms / o->mean_ms);
    }
    int last = N_LENGTHS - 1;
    printf("\ngoal: >= 20x faster than naive at L = %d:", lengths[last]);
    for (int k = 0; k < N_KINDS; k++) {
        double speedup = results[k][last].naive_mean_ms / results[k][last].mean_ms;
        printf(" %s %.1fx (%s)", model_kind_name(k), speedup, speedup >= 20 ? "met" : "not met");
    }
    printf("\n");
    return 0;
}
