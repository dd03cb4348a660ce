/*
 * cuda_profile.cu: where the GPU time of a model goes, for developers:
 * with SPIRAL_CUDA_PROFILE set in the environment, spans of the stream
 * (bf16 packing, matrix products, attention, the loss) are timed by CUDA
 * events, summed, and printed to stderr when the model is freed. Events
 * are only recorded, never waited on, until the pool is full or the
 * report is due, so the stream runs as it would without them.
 */
#include "cuda_kernels.cuh"

#include <stdio.h>
#include <stdlib.h>

enum { PROFILE_EVENTS = 4096 };

struct CudaProfile {
    cudaEvent_t events[PROFILE_EVENTS];
    int phase_of[PROFILE_EVENTS];   /* for an end event: its phase; -1 for a begin */
    int count;                      /* events recorded and not yet summed */
    int open;                       /* index of the last begin */
    double ms[PROFILE_PHASES];
    long spans[PROFILE_PHASES];
};

static const char *PHASE_NAMES[PROFILE_PHASES] = {"bf16 packing", "matrix products",
                                                  "attention forward", "attention backward",
                                                  "head loss (cross-entropy)"};

CudaProfile *profile_create(void) {
    const char *flag = getenv("SPIRAL_CUDA_PROFILE");
    if (!flag || !*flag || *flag == '0') return NULL;
    CudaProfile *p = (CudaProfile *)calloc(1, sizeof(CudaProfile));
    if (!p) return NULL;
    for (int i = 0; i < PROFILE_EVENTS; i++)
        if (cudaEventCreate(&p->events[i]) != cudaSuccess) {
            for (int k = 0; k < i; k++) cudaEventDestroy(p->events[k]);
            free(p);
            return NULL;
        }
    p->open = -1;
    return p;
}

/* Sums the recorded spans (waiting for the last event) and empties the pool. */
static void profile_flush(CudaProfile *p) {
    if (p->count == 0) return;
    cudaEventSynchronize(p->events[p->count - 1]);
    for (int i = 1; i < p->count; i++) {
        int phase = p->phase_of[i];
        if (phase < 0 || p->phase_of[i - 1] >= 0) continue;
        float ms = 0;
        if (cudaEventElapsedTime(&ms, p->events[i - 1], p->events[i]) == cudaSuccess) {
            p->ms[phase] += ms;
            p->spans[phase]++;
        }
    }
    p->count = 0;
}

void profile_begin(CudaProfile *p, cudaStream_t stream) {
    if (!p) return;
    if (p->count + 2 > PROFILE_EVENTS) profile_flush(p);
    p->phase_of[p->count] = -1;
    cudaEventRecord(p->events[p->count], stream);
    p->open = p->count++;
}

void profile_end(CudaProfile *p, ProfilePhase phase, cudaStream_t stream) {
    if (!p || p->open != p->count - 1) return; /* not directly after a begin: ignored */
    p->phase_of[p->count] = (int)phase;
    cudaEventRecord(p->events[p->count], stream);
    p->count++;
    p->open = -1;
}

void profile_reset(CudaProfile *p) {
    if (!p) return;
    profile_flush(p);
    for (int i = 0; i < PROFILE_PHASES; i++) {
        p->ms[i] = 0;
        p->spans[i] = 0;
    }
}

void profile_free(CudaProfile *p) {
    if (!p) return;
    profile_flush(p);
    double total = 0;
    for (int i = 0; i < PROFILE_PHASES; i++) total += p->ms[i];
    fprintf(stderr, "SPIRAL_CUDA_PROFILE (GPU time of the timed spans since the last reset):\n");
    for (int i = 0; i < PROFILE_PHASES; i++)
        fprintf(stderr, "  %-28s %10.2f ms %8ld spans\n", PHASE_NAMES[i], p->ms[i], p->spans[i]);
    fprintf(stderr, "  %-28s %10.2f ms\n", "sum", total);
    for (int i = 0; i < PROFILE_EVENTS; i++) cudaEventDestroy(p->events[i]);
    free(p);
}
