/*
 * engine.h: what the trainer needs of a model implementation, behind one
 * table of functions, so core/train.c runs unchanged on the CPU engine
 * (core/model.c + core/adamw.c, engine_cpu.c) or the CUDA engine
 * (core/cuda/, engine_cuda.c, only in `make cuda`).
 *
 * An Engine owns the parameters, their gradients and the AdamW moments in
 * the layout of ParamLayout (core/params.h). They cross the interface as
 * host float buffers of n_params values in layout order, the format of a
 * checkpoint, so a run trained on one engine resumes on the other.
 *
 * Every function returning int returns 0 or -1 with spiral_error set.
 */
#ifndef SPIRAL_ENGINE_H
#define SPIRAL_ENGINE_H

#include "adamw.h"
#include "config.h"
#include "model.h"
#include "params.h"

/* Implementations embed an Engine as their first member. */
typedef struct Engine Engine;

typedef struct {
    const char *name;   /* "cpu", "cuda" */
    void (*free)(Engine *engine);
    /* The documented initialization for a seed (model_init_weights). */
    int (*init_weights)(Engine *engine, unsigned long seed);
    int (*set_params)(Engine *engine, const float *host);
    int (*get_params)(Engine *engine, float *host);
    int (*get_grads)(Engine *engine, float *host);
    int (*set_adam_state)(Engine *engine, const float *m, const float *v);
    int (*get_adam_state)(Engine *engine, float *m, float *v);
    int (*zero_grad)(Engine *engine);
    /* Mean cross-entropy of tokens (B, L) against targets (B, L). */
    int (*forward)(Engine *engine, const int *tokens, const int *targets, int B, int L,
                   double *loss);
    /* Accumulates the gradient of the last forward's loss. */
    int (*backward)(Engine *engine);
    /* Scales the gradients by scale (when scale != 1), then
     * *norm = sqrt(sum g^2). */
    int (*grad_norm)(Engine *engine, double scale, double *norm);
    /* If clip > 0 and norm > clip, scales the gradients by clip / norm;
     * then one AdamW update at step t (1-based). */
    int (*clip_and_step)(Engine *engine, double clip, double norm,
                         const AdamWSettings *settings, long t);
    /* A forward pass of tokens (B, L) with targets (B, L) or NULL (then
     * *loss is 0) that hands each observed site to observer (core/model.h's
     * events, valid during the callback); the attention probabilities only
     * when attention != 0. observer and loss may be NULL. */
    int (*observe)(Engine *engine, const int *tokens, const int *targets, int B, int L,
                   const Observer *observer, int attention, double *loss);
    /* Copies the logits (B, L, V) of the last forward pass. */
    int (*get_logits)(Engine *engine, float *host);
    /* Copies rows [first, first + count) of them, seen as (B L, V). */
    int (*get_logits_rows)(Engine *engine, size_t first, size_t count, float *host);
    /* Installs an intervention on the updates for the forward passes that
     * follow (core/model.h's UpdateHook, as model->update_hook; NULL:
     * none). No backward follows a pass run with one. */
    int (*set_update_hook)(Engine *engine, const UpdateHook *hook);
} EngineOps;

struct Engine {
    const EngineOps *ops;
    const ParamLayout *layout;   /* owned by the implementation */
};

/* 0 if `device` names an engine of this build (NULL = "cpu"); else -1
 * with a message saying why (unknown name, or CUDA not compiled in). */
int engine_device_check(const char *device);

/* The precision of the matrix products: "fp32" (the only one of the CPU
 * engine), "tf32" or "bf16" (CUDA: inputs rounded, fp32 accumulation; the
 * weights, gradients and AdamW stay fp32). NULL picks the device's default:
 * fp32 on the CPU, bf16 on CUDA. engine_precision_name returns the name
 * that NULL resolves to. */
int engine_precision_check(const char *device, const char *precision);
const char *engine_precision_name(const char *device, const char *precision);

/* Builds an engine for cfg on `device` ("cpu" or "cuda") at `precision`
 * (above), parameters, gradients and moments zero. */
int engine_open(Engine **out, const char *device, const char *precision,
                const SpiralConfig *cfg);
void engine_free(Engine *engine);

/* engine_open for model->cfg, then the model's parameters (rounded to
 * float) copied in: the same weights on another engine. */
int engine_open_with_weights(Engine **out, const char *device, const char *precision,
                             const Model *model);

/* The CPU engine. */
int engine_cpu_open(Engine **out, const SpiralConfig *cfg);

/* The CUDA engine: defined by core/cuda/engine_cuda.c in `make cuda`, by
 * core/engine_nocuda.c (an error saying so) otherwise. */
int engine_cuda_open(Engine **out, const SpiralConfig *cfg, const char *precision);
int engine_cuda_available(void);

#endif
