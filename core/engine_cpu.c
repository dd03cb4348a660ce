/*
 * engine_cpu.c: the CPU engine behind engine.h: core/model.c's forward and
 * backward, core/adamw.c's update, the moments in two host buffers. Every
 * operation is the exact sequence of calls core/train.c made before the
 * interface existed, so training on it is bit-identical to that.
 */
#include <stdlib.h>

#include "engine.h"
#include "error.h"
#include "model.h"
#include "vec.h"

typedef struct {
    Engine base;
    Model model;
    real *adam_m, *adam_v;   /* (n_params) */
} CpuEngine;

static CpuEngine *cpu(Engine *engine) { return (CpuEngine *)engine; }

/* Frees the model and the moments. */
static void cpu_free(Engine *engine) {
    CpuEngine *e = cpu(engine);
    model_free(&e->model);
    free(e->adam_m);
    free(e->adam_v);
    free(e);
}

/* model_init_weights for the seed. */
static int cpu_init_weights(Engine *engine, unsigned long seed) {
    model_init_weights(&cpu(engine)->model, seed);
    return 0;
}

/* dst (n) = src (n) converted to real. */
static void float_to_real(real *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

/* dst (n) = src (n) rounded to float. */
static void real_to_float(float *dst, const real *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

static int cpu_set_params(Engine *engine, const float *host) {
    float_to_real(cpu(engine)->model.params, host, engine->layout->n_params);
    return 0;
}

static int cpu_get_params(Engine *engine, float *host) {
    real_to_float(host, cpu(engine)->model.params, engine->layout->n_params);
    return 0;
}

static int cpu_get_grads(Engine *engine, float *host) {
    real_to_float(host, cpu(engine)->model.grads, engine->layout->n_params);
    return 0;
}

static int cpu_set_adam_state(Engine *engine, const float *m, const float *v) {
    float_to_real(cpu(engine)->adam_m, m, engine->layout->n_params);
    float_to_real(cpu(engine)->adam_v, v, engine->layout->n_params);
    return 0;
}

static int cpu_get_adam_state(Engine *engine, float *m, float *v) {
    real_to_float(m, cpu(engine)->adam_m, engine->layout->n_params);
    real_to_float(v, cpu(engine)->adam_v, engine->layout->n_params);
    return 0;
}

static int cpu_zero_grad(Engine *engine) {
    model_zero_grad(&cpu(engine)->model);
    return 0;
}

/* model_forward; *loss = the mean cross-entropy. */
static int cpu_forward(Engine *engine, const int *tokens, const int *targets, int B, int L,
                       double *loss) {
    Model *model = &cpu(engine)->model;
    if (model_forward(model, tokens, targets, B, L, NULL)) return -1;
    *loss = model->loss;
    return 0;
}

static int cpu_backward(Engine *engine) { return model_backward(&cpu(engine)->model); }

/* grads *= scale (unless 1); *norm = sqrt(sum g^2) in double. */
static int cpu_grad_norm(Engine *engine, double scale, double *norm) {
    Model *model = &cpu(engine)->model;
    size_t n = engine->layout->n_params;
    if (scale != 1.0) vec_scale(model->grads, (real)scale, n);
    *norm = grad_global_norm(model->grads, n);
    return 0;
}

/* Global-norm clipping, then adamw_step. */
static int cpu_clip_and_step(Engine *engine, double clip, double norm,
                             const AdamWSettings *settings, long t) {
    CpuEngine *e = cpu(engine);
    size_t n = engine->layout->n_params;
    if (clip > 0 && norm > clip) vec_scale(e->model.grads, (real)(clip / norm), n);
    adamw_step(e->model.params, e->model.grads, e->adam_m, e->adam_v, &e->model.layout,
               settings, t);
    return 0;
}

/* model_forward with the observer (the CPU engine always has the
 * probabilities: every attention event is sent, and observers that do not
 * want them return at once). */
static int cpu_observe(Engine *engine, const int *tokens, const int *targets, int B, int L,
                       const Observer *observer, int attention, double *loss) {
    Model *model = &cpu(engine)->model;
    if (model_forward(model, tokens, targets, B, L, observer)) return -1;
    if (loss) *loss = targets ? model->loss : 0;
    return 0;
}

static int cpu_get_logits_rows(Engine *engine, size_t first, size_t count, float *host) {
    Model *model = &cpu(engine)->model;
    size_t V = (size_t)model->cfg.vocab_size;
    if (first + count > (size_t)model->B * model->L)
        return spiral_error("logits rows %zu..%zu: the last pass has %d", first, first + count,
                            model->B * model->L);
    real_to_float(host, model->logits + first * V, count * V);
    return 0;
}

static int cpu_get_logits(Engine *engine, float *host) {
    const Model *model = &cpu(engine)->model;
    return cpu_get_logits_rows(engine, 0, (size_t)model->B * model->L, host);
}

static int cpu_set_update_hook(Engine *engine, const UpdateHook *hook) {
    cpu(engine)->model.update_hook = hook;
    return 0;
}

static const EngineOps cpu_ops = {
    "cpu", cpu_free, cpu_init_weights, cpu_set_params, cpu_get_params, cpu_get_grads,
    cpu_set_adam_state, cpu_get_adam_state, cpu_zero_grad, cpu_forward, cpu_backward,
    cpu_grad_norm, cpu_clip_and_step, cpu_observe, cpu_get_logits, cpu_get_logits_rows,
    cpu_set_update_hook,
};

int engine_cpu_open(Engine **out, const SpiralConfig *cfg) {
    CpuEngine *e = calloc(1, sizeof *e);
    if (!e) return spiral_error("out of memory for the CPU engine");
    if (model_build(&e->model, cfg)) {
        free(e);
        return -1;
    }
    size_t n = e->model.layout.n_params;
    e->adam_m = calloc(n, sizeof(real));
    e->adam_v = calloc(n, sizeof(real));
    e->base.ops = &cpu_ops;
    e->base.layout = &e->model.layout;
    if (!e->adam_m || !e->adam_v) {
        cpu_free(&e->base);
        return spiral_error("out of memory for the optimizer state");
    }
    *out = &e->base;
    return 0;
}
