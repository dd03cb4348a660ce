/*
 * engine_cuda.c: the CUDA engine behind engine.h, in plain C over the C API
 * of cuda_engine.h (compiled with the host compiler; only `make cuda`
 * builds it, in place of core/engine_nocuda.c).
 *
 * The parameters, gradients and AdamW moments stay on the GPU; the trainer
 * sees host float buffers only when it writes or reads a checkpoint. The
 * matrix products run in the precision asked for (engine.h): bf16 by
 * default; fp32 is what tests/cuda/ proves against the CPU engine.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_engine.h"
#include "engine.h"
#include "error.h"
#include "model.h"

typedef struct {
    Engine base;
    SpiralConfig cfg;
    CudaModel *model;
} CudaEngine;

static CudaModel *gpu(Engine *engine) { return ((CudaEngine *)engine)->model; }

int engine_cuda_available(void) { return 1; }

static void gpu_free(Engine *engine) {
    cuda_model_free(gpu(engine));
    free(engine);
}

/* The CPU engine's initialization (model_init_weights, GSL mt19937 on the
 * host), copied to the GPU: the same starting point on either device. */
static int gpu_init_weights(Engine *engine, unsigned long seed) {
    Model host;
    if (model_build(&host, &((CudaEngine *)engine)->cfg)) return -1;
    model_init_weights(&host, seed);
    size_t n = host.layout.n_params;
    float *values = malloc(n * sizeof(float));
    int status = -1;
    if (!values) {
        spiral_error("out of memory initializing the CUDA engine's weights");
    } else {
        for (size_t i = 0; i < n; i++) values[i] = (float)host.params[i];
        status = cuda_model_set_params(gpu(engine), values);
    }
    free(values);
    model_free(&host);
    return status;
}

static int gpu_set_params(Engine *engine, const float *host) {
    return cuda_model_set_params(gpu(engine), host);
}

static int gpu_get_params(Engine *engine, float *host) {
    return cuda_model_get_params(gpu(engine), host);
}

static int gpu_get_grads(Engine *engine, float *host) {
    return cuda_model_get_grads(gpu(engine), host);
}

static int gpu_set_adam_state(Engine *engine, const float *m, const float *v) {
    return cuda_model_set_adam_state(gpu(engine), m, v);
}

static int gpu_get_adam_state(Engine *engine, float *m, float *v) {
    return cuda_model_get_adam_state(gpu(engine), m, v);
}

static int gpu_zero_grad(Engine *engine) { return cuda_model_zero_grad(gpu(engine)); }

/* The engine's forward is the training loop's (loss and, next, backward;
 * the logits are read through observe): the fused cross-entropy. */
static int gpu_forward(Engine *engine, const int *tokens, const int *targets, int B, int L,
                       double *loss) {
    return cuda_model_forward_train(gpu(engine), tokens, targets, B, L, loss);
}

static int gpu_backward(Engine *engine) { return cuda_model_backward(gpu(engine)); }

/* grads *= scale (unless 1; through the host, as the CPU engine rounds it:
 * only runs with grad_accum > 1 take this path); then the global norm. */
static int gpu_grad_norm(Engine *engine, double scale, double *norm) {
    if (scale != 1.0) {
        size_t n = engine->layout->n_params;
        float *grads = malloc(n * sizeof(float));
        if (!grads) return spiral_error("out of memory scaling the gradients");
        int status = cuda_model_get_grads(gpu(engine), grads);
        for (size_t i = 0; i < n && status == 0; i++) grads[i] *= (float)scale;
        if (status == 0) status = cuda_model_set_grads(gpu(engine), grads);
        free(grads);
        if (status) return -1;
    }
    return cuda_model_clip_grad_norm(gpu(engine), 0, norm);
}

/* Clipping by the norm grad_norm measured (as the CPU engine), then AdamW. */
static int gpu_clip_and_step(Engine *engine, double clip, double norm,
                             const AdamWSettings *settings, long t) {
    if (clip > 0 && norm > clip && cuda_model_scale_grads(gpu(engine), (float)(clip / norm)))
        return -1;
    return cuda_model_adamw_step(gpu(engine), settings, t);
}

/* Hands a CUDA engine's event on as core/model.h's ObserveEvent (real is
 * float in the builds that link this file). */
typedef struct {
    const Observer *inner;
} ObserverBridge;

_Static_assert(sizeof(real) == sizeof(float), "engine_cuda.c needs real = float");

static void bridge_event(void *user, const CudaObserveEvent *e) {
    const Observer *inner = ((ObserverBridge *)user)->inner;
    ObserveEvent event = {.site = e->site, .iteration = e->iteration, .block = e->block,
                          .layer = e->layer, .g = e->g, .B = e->B, .rows = e->rows,
                          .cols = e->cols, .heads = e->heads, .pos = e->pos,
                          .data = (const real *)e->data, .stats = e->stats,
                          .n_stats = e->n_stats};
    inner->fn(inner->user, &event);
}

static int gpu_observe(Engine *engine, const int *tokens, const int *targets, int B, int L,
                       const Observer *observer, int attention, double *loss) {
    ObserverBridge bridge = {observer};
    CudaObserver cuda_observer = {bridge_event, &bridge, attention, 0, NULL};
    if (observer && observer->n_distances > 0) {
        cuda_observer.n_distances = observer->n_distances;
        cuda_observer.distances = observer->distances;
    }
    return cuda_model_forward(gpu(engine), tokens, targets, B, L,
                              observer && observer->fn ? &cuda_observer : NULL, loss);
}

static int gpu_get_logits(Engine *engine, float *host) {
    return cuda_model_get_logits(gpu(engine), host);
}

static int gpu_get_logits_rows(Engine *engine, size_t first, size_t count, float *host) {
    return cuda_model_get_logits_rows(gpu(engine), first, count, host);
}

/* The hook's function takes real = float here: it is the CUDA engine's
 * CudaUpdateFn as it is. */
static int gpu_set_update_hook(Engine *engine, const UpdateHook *hook) {
    return cuda_model_set_update_hook(gpu(engine), hook ? hook->fn : NULL,
                                      hook ? hook->user : NULL, hook ? hook->iterations : NULL);
}

static const EngineOps cuda_ops = {
    "cuda", gpu_free, gpu_init_weights, gpu_set_params, gpu_get_params, gpu_get_grads,
    gpu_set_adam_state, gpu_get_adam_state, gpu_zero_grad, gpu_forward, gpu_backward,
    gpu_grad_norm, gpu_clip_and_step, gpu_observe, gpu_get_logits, gpu_get_logits_rows,
    gpu_set_update_hook,
};

int engine_cuda_open(Engine **out, const SpiralConfig *cfg, const char *precision) {
    CudaOptions options = {CUDA_BF16, 0};
    if (!strcmp(precision, "fp32")) options.precision = CUDA_FP32;
    else if (!strcmp(precision, "tf32")) options.precision = CUDA_TF32;
    CudaEngine *e = calloc(1, sizeof *e);
    if (!e) return spiral_error("out of memory for the CUDA engine");
    if (cuda_model_build(&e->model, cfg, &options)) {
        free(e);
        return spiral_error_prefix("--device cuda");
    }
    e->cfg = *cfg;
    e->base.ops = &cuda_ops;
    e->base.layout = cuda_model_layout(e->model);
    *out = &e->base;
    return 0;
}
