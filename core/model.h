/*
 * model.h: the middle-cycle backbone of docs/model.md, one code path
 * for SpiralFormer and its baselines.
 *
 *   h(0)   = f_pre(embed(x))                              (B, L, d)
 *   h(t+1) = Phi_t(h(t)),  t = 0 .. T-1, Phi_t = down, shared core f_loop,
 *            up, causal shift (the update e(t)), then the
 *            topology's state update from e(t)            (B, L, d)
 *   logits = norm(f_post(h(T))) E^T                       (B, L, V)
 *
 * A Model owns three buffers: the parameters and the gradients (one
 * contiguous allocation each, laid out by ParamLayout) and an activation
 * arena sized for the largest (B, L) seen so far. model_forward saves what
 * model_backward needs in the arena; after the first call at a given size no
 * further memory is allocated.
 */
#ifndef SPIRAL_MODEL_H
#define SPIRAL_MODEL_H

#include <stddef.h>

#include "config.h"
#include "mesh.h"
#include "params.h"
#include "real.h"
#include "scale.h"

/* Views into a parameter-shaped buffer (parameters or gradients) for one
 * Transformer layer. */
typedef struct {
    real *attn_norm;           /* (d) */
    real *wq, *wk, *wv, *wo;   /* (d, d) */
    real *mlp_norm;            /* (d) */
    real *w1, *w3;             /* (F, d) */
    real *w2;                  /* (d, F) */
} LayerWeights;

/* Views into a parameter-shaped buffer for the whole model. */
typedef struct {
    real *tok_emb;             /* (V, d) */
    real *final_norm;          /* (d) */
    real *lm_head;             /* (V, d); == tok_emb when tied */
    LayerWeights *pre;         /* n_pre */
    LayerWeights *loop;        /* n_loop, shared by every iteration */
    LayerWeights *post;        /* n_post */
    real *down_score[SPIRAL_MAX_ITERS];  /* (d) per iteration, or NULL (mean) */
    real *up_alloc[SPIRAL_MAX_ITERS];    /* (g_t, d) per iteration, or NULL (copy) */
    MeshWeights mesh[SPIRAL_MAX_ITERS];  /* routers per iteration (topology mesh), or NULLs */
} ModelWeights;

/* What one layer application saves for its backward pass; n is the sequence
 * length it ran at (L, or J_t inside iteration t). */
typedef struct {
    int n;
    const int *pos;            /* (n) RoPE positions */
    real *x;                   /* (B, n, d) input (the previous layer's out) */
    real *xn1, *rstd1;         /* (B, n, d), (B, n) attention RMSNorm */
    real *q, *k, *v;           /* (B, n, d), q and k after RoPE */
    real *probs;               /* (B, H, n, n) attention probabilities */
    real *att;                 /* (B, n, d) attention output before wo */
    real *x2;                  /* (B, n, d) x + att wo^T */
    real *xn2, *rstd2;         /* (B, n, d), (B, n) MLP RMSNorm */
    real *a, *c;               /* (B, n, F) xn2 w1^T, xn2 w3^T */
    real *m;                   /* (B, n, F) silu(a) * c */
    real *out;                 /* (B, n, d) x2 + m w2^T */
} LayerActs;

/* What one loop iteration saves. The iteration runs in two parts:
 *
 *   1. the update e(t) (B, L, d): down-scale h(t) to z, core z~ = f_loop(z),
 *      delta, up-scale, causal shift (docs/model.md steps 1-6);
 *   2. the topology's state update from e(t): residual h(t+1) = h(t) + e,
 *      anchor h(t+1) = h(0) + e, mesh: write e to the memory, read h(t+1)
 *      from it (core/mesh.h).
 *
 * Where e lives: `e` below. At reduced resolution it is its own (B, L, d)
 * view of the arena. At full resolution (g = 1, shift 0) e_i = delta_i, and
 * `e` aliases `delta` (or z~ under anchor) rather than holding a copy.
 * Under `residual` at full resolution e is not formed at all (e == NULL):
 * z is h(t) itself and h(t+1) = h(t) + (z~ - h(t)) is taken as the core's
 * output z~, bit-identical to a dense model (no down/up work). Code that
 * changes e must write a copy, not through these views: the backward pass
 * reads delta and z~ from them. */
typedef struct {
    ChunkGeometry geo;
    int full_resolution;       /* g == 1 && shift == 0 */
    int *pos;                  /* (J) RoPE positions of the latents */
    real *h_in;                /* (B, L, d) h(t) */
    real *z;                   /* (B, J, d) latents entering the core */
    real *alpha;               /* (B, L) selfagg weights */
    real *delta;               /* (B, J, d) z~ - z (residual, mesh) or z~ (anchor) */
    real *coef;                /* (B, J, g) alloc coefficients g * beta */
    real *e;                   /* (B, L, d) the update e(t): shift(up(delta)); see above */
    real *h_out;               /* (B, L, d) h(t+1) */
    /* topology mesh only (core/mesh.h; S = mesh_slots), else NULL: */
    real *mesh_mem;            /* (S, B, L, d) memory slots after iteration t's write */
    real *mesh_k;              /* (B, L, d) read correction K(t+1) = sum_b (S r_b - 1) m_b */
    real *mesh_w, *mesh_r;     /* (B, L, S) write and read weights */
    LayerActs *layers;         /* n_loop; z~ = layers[n_loop - 1].out */
} IterActs;

/* Sites handed to an observer during the forward pass. */
typedef enum {
    OBSERVE_STATE,       /* h(t), t = 0 .. T (h(0) = prelude output), (B, L, d) */
    OBSERVE_LATENT_IN,   /* z of iteration t, (B, J, d) */
    OBSERVE_LATENT_OUT,  /* z~ of iteration t, (B, J, d) */
    OBSERVE_CODA,        /* coda output f_post(h(T)), (B, L, d) */
    OBSERVE_ATTENTION,   /* one layer's probabilities, (B, H, rows, rows) */
    OBSERVE_LAYER_OUT,   /* one layer's output, (B, rows, d) (block, layer, iteration set) */
    OBSERVE_MEMORY       /* mesh: slot `layer` after iteration t's write, (B, L, d) */
} ObserveSite;

typedef enum { BLOCK_PRE = 0, BLOCK_LOOP = 1, BLOCK_POST = 2 } BlockKind;

/* One observation. States: data is (B, rows, cols), row r of sequence b at
 * data + (b * rows + r) * cols. Attention: data is (B, heads, rows, rows). */
typedef struct {
    ObserveSite site;
    int iteration;       /* t for STATE/LATENT_*; for ATTENTION and LAYER_OUT the iteration of a loop layer, -1 otherwise */
    BlockKind block;     /* for ATTENTION and LAYER_OUT */
    int layer;           /* for ATTENTION and LAYER_OUT: layer index within its block; MEMORY: the slot */
    int g;               /* chunk size of the rows (1 at token level) */
    int B, rows, cols, heads;
    const int *pos;      /* (rows) token position of each row (its last member) */
    const real *data;
    /* ATTENTION from an engine that summarizes attention itself (the CUDA
     * engine, when the observer gives distances): data is NULL and stats
     * (B, heads, rows, n_stats) holds analysis/attention_stats.h's numbers
     * for the observer's distances (n_stats = 2 + n_distances). */
    const float *stats;
    int n_stats;
} ObserveEvent;

typedef struct {
    void (*fn)(void *user, const ObserveEvent *event);
    void *user;
    /* n_distances > 0: an engine that can (the CUDA engine) hands attention
     * as statistics for these distances (token units), not probabilities */
    int n_distances;
    const int *distances;
} Observer;

/* An intervention on the updates (interventions, core/intervene.h). When a
 * Model's update_hook is set, model_forward hands fn a copy of each
 * iteration's update e(t) (B, L, d) after it is computed and before the
 * state update; fn may change it in place, and the state update uses the
 * changed copy. Rows (b, i) that fn leaves bit-identical keep exactly the
 * state they would have had without the hook, so a hook that changes
 * nothing changes no logit. update_hook NULL (the default): no call, no
 * copy, no cost. model_backward refuses a forward pass run with a hook. */
typedef struct {
    void (*fn)(void *user, int t, real *e, int B, int L, int d);
    void *user;
    /* (n_iters) 1 for the iterations fn is called for, the others run as
     * without a hook (on the GPU: no copy of their update to the host);
     * NULL: every iteration */
    const unsigned char *iterations;
} UpdateHook;

typedef struct {
    SpiralConfig cfg;
    ParamLayout layout;
    real *params;              /* (n_params) */
    real *grads;               /* (n_params) */
    ModelWeights w;            /* views into params */
    ModelWeights dw;           /* views into grads */

    /* activations of the last forward pass */
    int B, L;                  /* its size */
    size_t arena_capacity;     /* reals */
    real *arena;
    int *int_arena;            /* token positions, targets */
    size_t int_arena_capacity;
    int *tokens, *targets;     /* (B, L) copies */
    int *token_pos;            /* (L) 0 .. L-1 */
    real *emb;                 /* (B, L, d) embedding output */
    LayerActs *pre, *post;     /* n_pre, n_post */
    IterActs iters[SPIRAL_MAX_ITERS];
    LayerActs *loop_acts;      /* T * n_loop, iteration t at t * n_loop */
    real *h_final;             /* (B, L, d) coda output */
    real *xn_final, *rstd_final;  /* (B, L, d), (B, L) */
    real *logits;              /* (B, L, V) */
    double loss;
    int loss_count;

    /* backward scratch, sized for n = L */
    real *scratch;
    size_t scratch_capacity;

    /* interventions on the updates (UpdateHook above); NULL: none */
    const UpdateHook *update_hook;
    int hooked;                /* the last forward pass ran with a hook */
    real *hook_buffers;        /* 4 (B, L, d): e copy, original, two states */
    size_t hook_capacity;      /* reals */
} Model;

/* Builds a model for cfg (validated) with zeroed parameters and gradients.
 * Returns 0 or -1 (spiral_error). */
int model_build(Model *model, const SpiralConfig *cfg);
void model_free(Model *model);

/* Fills the parameters with the documented initialization (README "Init"):
 * matrices N(0, 0.02^2), output projections wo and w2 N(0, (0.02/sqrt(2 N))^2)
 * with N the number of layer applications (n_pre + T n_loop + n_post), RMSNorm
 * gains 1, down.score 0 (selfagg starts as mean), up.alloc 0 (alloc starts as
 * copy). Deterministic for a seed (GSL mt19937). */
void model_init_weights(Model *model, unsigned long seed);

/* Runs the model on tokens (B, L). If targets (B, L) is given (entries < 0
 * are ignored), returns the mean cross-entropy in model->loss. observer may be
 * NULL. Returns 0 or -1 (allocation failure, token out of range). */
int model_forward(Model *model, const int *tokens, const int *targets, int B, int L,
                  const Observer *observer);

/* Accumulates into model->grads the gradient of model->loss from the last
 * model_forward (which must have had targets). */
int model_backward(Model *model);

/* Bytes of activations and backward scratch that a forward + backward pass
 * at size (B, L) needs (what model_forward would allocate). */
size_t model_activation_bytes(Model *model, int B, int L);

/* Sets every gradient to zero. */
void model_zero_grad(Model *model);

/* Binds views of `buffer` (laid out by model->layout) into *views. */
void model_bind_weights(ModelWeights *views, const Model *model, real *buffer);
void model_free_weights(ModelWeights *views);

#endif
