/*
 * bench_mesh.c: what the mesh topology's memory costs a training step.
 *
 * bench_train's spiral model (d = 256, H = 4, F = 688, V = 256,
 * 1 + 2 x (g = 8, 4, 2, 1) + 1 layers, selfagg / alloc) at B = 8, L = 256,
 * one step = zero_grad + forward + backward, under topology residual (the
 * reference) and mesh with S = 2, 4, 8 slots. The configurations take
 * turns, one step each per round, so that a change in the machine's load
 * falls on all of them alike; the median over the rounds is printed with
 * its ratio to residual, beside the ratio of forward FLOPs that
 * core/cost.c counts (the memory is elementwise work, so the time ratio
 * may exceed the FLOP ratio). About 40 s of CPU time (longer on a loaded
 * machine). No arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "cost.h"
#include "error.h"
#include "model.h"

enum { BATCH = 8, LENGTH = 256, WARMUP = 2, ROUNDS = 9, N_CONFIGS = 4 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One step; returns its seconds. */
static double step(Model *m, const int *tokens, const int *targets) {
    double start = now();
    model_zero_grad(m);
    if (model_forward(m, tokens, targets, BATCH, LENGTH, NULL) || model_backward(m)) {
        fprintf(stderr, "bench_mesh: %s\n", spiral_last_error());
        exit(1);
    }
    return now() - start;
}

int main(void) {
    static const int slots[N_CONFIGS] = {0, 2, 4, 8};  /* 0: residual */
    Model models[N_CONFIGS];
    double flops[N_CONFIGS], times[N_CONFIGS][ROUNDS];
    for (int c = 0; c < N_CONFIGS; c++) {
        SpiralConfig cfg;
        config_default(&cfg);
        cfg.d_model = 256;
        cfg.d_ff = 688;
        if (slots[c]) {
            cfg.topology = TOPOLOGY_MESH;
            cfg.mesh_slots = slots[c];
        }
        if (model_build(&models[c], &cfg)) {
            fprintf(stderr, "bench_mesh: %s\n", spiral_last_error());
            return 1;
        }
        model_init_weights(&models[c], 1);
        ModelCost cost;
        model_cost(&cost, &cfg, LENGTH);
        flops[c] = cost.forward_flops;
    }
    int *tokens = malloc(sizeof(int) * BATCH * LENGTH), *targets = malloc(sizeof(int) * BATCH * LENGTH);
    for (int i = 0; i < BATCH * LENGTH; i++) {
        tokens[i] = (i * 37 + 11) % 256;
        targets[i] = (i * 53 + 5) % 256;
    }
    for (int r = 0; r < WARMUP; r++)
        for (int c = 0; c < N_CONFIGS; c++) step(&models[c], tokens, targets);
    for (int r = 0; r < ROUNDS; r++)
        for (int c = 0; c < N_CONFIGS; c++) times[c][r] = step(&models[c], tokens, targets);
    printf("training step (zero_grad + forward + backward), d = 256, B = %d, L = %d, median of %d\n",
           BATCH, LENGTH, ROUNDS);
    printf("%-14s %10s %12s %14s\n", "topology", "ms/step", "vs residual", "FLOPs ratio");
    double reference = 0;
    for (int c = 0; c < N_CONFIGS; c++) {
        qsort(times[c], ROUNDS, sizeof(double), compare_double);
        double median = times[c][ROUNDS / 2];
        if (c == 0) reference = median;
        char name[32];
        if (slots[c]) snprintf(name, sizeof name, "mesh S=%d", slots[c]);
        else snprintf(name, sizeof name, "residual");
        printf("%-14s %10.2f %12.3f %14.3f\n", name, 1e3 * median, median / reference, flops[c] / flops[0]);
    }
    for (int c = 0; c < N_CONFIGS; c++) model_free(&models[c]);
    free(tokens);
    free(targets);
    return 0;
}
