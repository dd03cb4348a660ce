/*
 * cuda_engine.h: the CUDA engine, a second implementation of core/model.h's
 * forward, backward, AdamW and observer over the same parameter layout.
 *
 * A CudaModel keeps on the GPU one contiguous fp32 parameter buffer and one
 * gradient buffer laid out by ParamLayout (core/params.h), so a host buffer
 * of the CPU engine (Model.params, Model.grads, a safetensors file's
 * tensors) copies straight in and out; plus the AdamW moments in the same
 * layout, and an activation arena sized for the largest (B, L) seen.
 *
 * It computes what model_forward / model_backward compute (docs/model.md),
 * with cuBLAS for the matrix products and its own kernels for
 * the rest: attention is one fused kernel per pass that never stores the
 * L x L probabilities. tests/cuda/ proves it against the CPU engine.
 *
 * Usable from C; every function returns 0 or -1 with spiral_error set
 * (CUDA and cuBLAS failures name the call), unless it says otherwise.
 */
#ifndef SPIRAL_CUDA_ENGINE_H
#define SPIRAL_CUDA_ENGINE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "adamw.h"
#include "config.h"
#include "model.h"
#include "params.h"

typedef struct CudaModel CudaModel;

/* How the matrix products run. Parameters, activations, gradients and the
 * optimizer are fp32 in every mode; every product accumulates in fp32. */
typedef enum {
    CUDA_FP32 = 0,   /* fp32 inputs: what the tests prove against the CPU (1e-5) */
    CUDA_TF32 = 1,   /* inputs rounded to TF32 by the tensor cores (about 1e-3) */
    CUDA_BF16 = 2    /* inputs rounded to bf16 (about 1e-2): the fastest */
} CudaPrecision;

typedef struct {
    CudaPrecision precision;
    int eager;   /* 1: launch every kernel on every pass; 0 (default): replay the
                    forward and backward as CUDA graphs once a shape repeats */
} CudaOptions;

/* One observed state, copied to the host. Sites as model.h's ObserveEvent:
 * OBSERVE_STATE h(t) (B, L, d), OBSERVE_LATENT_IN z and OBSERVE_LATENT_OUT
 * z~ of iteration t (B, J, d), OBSERVE_CODA (B, L, d), OBSERVE_LAYER_OUT
 * one layer's output. OBSERVE_ATTENTION (one layer's probabilities, data
 * (B, heads, rows, rows)) only when the observer asks for it: the fused
 * attention keeps none, so they are recomputed from q, k and the saved
 * log-sum-exp. data and pos are valid during the callback. */
typedef struct {
    ObserveSite site;
    int iteration;       /* as ObserveEvent.iteration */
    BlockKind block;     /* for LAYER_OUT; BLOCK_LOOP for the others */
    int layer;           /* for LAYER_OUT; -1 for the others */
    int g;               /* chunk size of the rows (1 at token level) */
    int B, rows, cols;
    const int *pos;      /* (rows) token position of each row (its last member) */
    const float *data;   /* (B, rows, cols); attention: (B, heads, rows, rows), or NULL */
    int heads;           /* attention: H; 0 for the states */
    const float *stats;  /* attention with distances: (B, heads, rows, n_stats), else NULL */
    int n_stats;         /* 2 + n_distances */
} CudaObserveEvent;

typedef struct {
    void (*fn)(void *user, const CudaObserveEvent *event);
    void *user;
    int attention;       /* also send OBSERVE_ATTENTION events */
    /* n_distances > 0: attention events carry analysis/attention_stats.h's
     * statistics for these distances, computed on the GPU, instead of the
     * (B, heads, rows, rows) probabilities */
    int n_distances;
    const int *distances;
} CudaObserver;

/* Builds a model for cfg (validated; head dim <= 128) on the current CUDA
 * device, parameters and gradients zero. options may be NULL (fp32). */
int cuda_model_build(CudaModel **out, const SpiralConfig *cfg, const CudaOptions *options);
void cuda_model_free(CudaModel *model);

/* The parameter table (same as param_layout_build(cfg)). */
const ParamLayout *cuda_model_layout(const CudaModel *model);

/* Copies a whole (n_params) buffer in or out, in layout order. */
int cuda_model_set_params(CudaModel *model, const float *host);
int cuda_model_get_params(CudaModel *model, float *host);
int cuda_model_set_grads(CudaModel *model, const float *host);
int cuda_model_get_grads(CudaModel *model, float *host);
int cuda_model_zero_grad(CudaModel *model);
/* The AdamW moments (n_params each; zero after build). */
int cuda_model_set_adam_state(CudaModel *model, const float *m, const float *v);
int cuda_model_get_adam_state(CudaModel *model, float *m, float *v);

/* Runs the model on tokens (B, L), as model_forward. With targets (entries
 * < 0 ignored) *loss gets the mean cross-entropy (0 if no row has a
 * target). observer and loss may be NULL. */
int cuda_model_forward(CudaModel *model, const int *tokens, const int *targets, int B, int L,
                       const CudaObserver *observer, double *loss);
/* The forward of a training step (tokens and targets as above, no
 * observer): where it can (bf16 precision, V a multiple of 8 up to 96Ki),
 * the cross-entropy writes the loss gradient over the logits in the same
 * pass that computes the loss (one pass over the (B L, V) logits instead
 * of two); cuda_model_backward then starts from it, and the logits cannot
 * be read. The loss agrees with cuda_model_forward's to about 1e-7 and
 * each logit gradient to a rounding of bf16. Elsewhere the same as
 * cuda_model_forward. */
int cuda_model_forward_train(CudaModel *model, const int *tokens, const int *targets, int B,
                             int L, double *loss);
/* Copies the logits (B, L, V) of the last forward to the host. The
 * backward pass overwrites them with their gradient: call this before. */
int cuda_model_get_logits(CudaModel *model, float *host);
/* Rows [first, first + count) of them, seen as (B L, V). */
int cuda_model_get_logits_rows(CudaModel *model, size_t first, size_t count, float *host);

/* An intervention on the updates, as core/model.h's UpdateHook (with
 * floats): while fn is set, each forward runs eagerly and hands fn a host
 * copy of the update e(t) (B, L, d) of every iteration t with
 * iterations[t] (iterations NULL: of every iteration) before the state
 * update;
 * the rows fn changes get h(t+1) = base + e' (base h(t), or h(0) for
 * anchor), as the CPU's hooked update, and the rows it leaves bit-identical
 * keep the state the GPU computes without a hook. No backward follows such
 * a forward. Not for the mesh topology (an error). fn NULL: no hook. */
typedef void (*CudaUpdateFn)(void *user, int t, float *e, int B, int L, int d);
int cuda_model_set_update_hook(CudaModel *model, CudaUpdateFn fn, void *user,
                               const unsigned char *iterations);

/* Accumulates into the gradients the gradient of the last forward's loss
 * (which must have had targets), as model_backward. */
int cuda_model_backward(CudaModel *model);

/* *norm = sqrt(sum g^2) over the gradient buffer; if clip > 0 and the norm
 * exceeds it, scales the gradients by clip / norm (as core/train.c). */
int cuda_model_clip_grad_norm(CudaModel *model, double clip, double *norm);

/* grads *= scale, rounded as vec_scale (the clip of a norm already known). */
int cuda_model_scale_grads(CudaModel *model, float scale);

/* One AdamW update at step t (1-based), as adamw_step (core/adamw.h). */
int cuda_model_adamw_step(CudaModel *model, const AdamWSettings *settings, long t);

/* With on != 0, every later forward first fills the activation arena and
 * the backward scratch with NaN (tests: a value read before it was written
 * then shows in the results). */
void cuda_model_set_poison(CudaModel *model, int on);

/* Waits for the model's stream. */
int cuda_model_synchronize(CudaModel *model);

/* Bytes of device memory the model holds now: parameters, gradients and
 * the two AdamW moments (4 x 4 bytes per parameter), the activation arena
 * and the bf16 work buffers of the products and attention. */
size_t cuda_model_device_bytes(const CudaModel *model);

/* How many passes ran as CUDA graph launches so far (tests). */
long cuda_model_graph_launches(const CudaModel *model);

/* Developers: with SPIRAL_CUDA_PROFILE set, restarts the profile's sums
 * (e.g. after warm-up steps); nothing otherwise. */
void cuda_model_profile_reset(CudaModel *model);

#ifdef __cplusplus
}
#endif

#endif
