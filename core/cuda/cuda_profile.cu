/*
 * cuda_profile.cu: where the GPU time of a model goes, for developers:
 * with SPIRAL_CUDA_PROFILE set in the environment, spans of the stream are
 * timed by CUDA events and the sums per phase printed to stderr when the
 * model is freed.
 *
 * Spans nest: every begin and end records one event tagged with the phase
 * running from it to the next event (the innermost open span, or none), so
 * each phase gets its exclusive time (a layer's span does not count the
 * products inside it). Events are only recorded, never waited on, until
 * the pool is full or the report is due, so the stream runs as it would
 * without them. Under SPIRAL_CUDA_PROFILE the passes run eagerly (no CUDA
 * graphs), so the times are those of the eager engine.
 */
#include "cuda_kernels.cuh"

#include <stdio.h>
#include <stdlib.h>

enum { PROFILE_EVENTS = 4096, PROFILE_DEPTH = 16 };

struct CudaProfile {
    cudaEvent_t events[PROFILE_EVENTS];
    int tag[PROFILE_EVENTS];        /* the phase from this event to the next, -1 none */
    int count;                      /* events recorded and not yet summed */
    int stack[PROFILE_DEPTH];       /* the open spans' phases */
    int depth;
    double ms[PROFILE_PHASES];
    long spans[PROFILE_PHASES];
};

static const char *PHASE_NAMES[PROFILE_PHASES] = {
    "bf16 packing", "matrix products", "attention forward", "attention backward",
    "head loss (cross-entropy)", "layers: norms, RoPE, SwiGLU, copies", "optimizer (clip, AdamW)"};
/* Not in a span: the embedding, the down/up-scaling, the final norm, zeroing
 * buffers, the mesh memory (the step time minus the sum). */

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
    return p;
}

/* Sums the time between recorded events (waiting for the last) and keeps
 * only the last event, the start of whatever runs now. */
static void profile_flush(CudaProfile *p) {
    if (p->count < 2) return;
    cudaEventSynchronize(p->events[p->count - 1]);
    for (int i = 0; i + 1 < p->count; i++) {
        float ms = 0;
        if (p->tag[i] >= 0 && cudaEventElapsedTime(&ms, p->events[i], p->events[i + 1]) == cudaSuccess)
            p->ms[p->tag[i]] += ms;
    }
    cudaEvent_t last = p->events[p->count - 1];
    p->events[p->count - 1] = p->events[0];
    p->events[0] = last;
    p->tag[0] = p->tag[p->count - 1];
    p->count = 1;
}

static void record(CudaProfile *p, int tag, cudaStream_t stream) {
    if (p->count == PROFILE_EVENTS) profile_flush(p);
    p->tag[p->count] = tag;
    cudaEventRecord(p->events[p->count], stream);
    p->count++;
}

void profile_begin(CudaProfile *p, ProfilePhase phase, cudaStream_t stream) {
    if (!p || p->depth == PROFILE_DEPTH) return;
    p->stack[p->depth++] = (int)phase;
    p->spans[phase]++;
    record(p, (int)phase, stream);
}

void profile_end(CudaProfile *p, cudaStream_t stream) {
    if (!p || p->depth == 0) return;
    p->depth--;
    record(p, p->depth > 0 ? p->stack[p->depth - 1] : -1, stream);
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
    fprintf(stderr, "SPIRAL_CUDA_PROFILE (GPU time of the timed spans since the last reset; "
                    "nested spans counted once, in the innermost):\n");
    for (int i = 0; i < PROFILE_PHASES; i++)
        fprintf(stderr, "  %-36s %10.2f ms %8ld spans\n", PHASE_NAMES[i], p->ms[i], p->spans[i]);
    fprintf(stderr, "  %-36s %10.2f ms\n", "sum", total);
    for (int i = 0; i < PROFILE_EVENTS; i++) cudaEventDestroy(p->events[i]);
    free(p);
}
