/*
 * cuda_engine.cu: forward and backward of the whole backbone on the GPU
 * (see cuda_engine.h), written to mirror core/model.c step by step so that
 * the two read side by side:
 *
 *   embedding -> prelude -> T iterations (down-scale, shared core, up-scale
 *   + shift + update) -> coda -> final norm -> head -> cross-entropy,
 *
 * and model_backward's reverse walk, where every weight gradient
 * accumulates (the shared core's gradient sums over iterations for free).
 *
 * Differences from the CPU layout, all internal: q, k, v are one (M, 3 d)
 * matrix from one product with the stacked [wq; wk; wv] (consecutive in the
 * parameter buffer), and a, c of the MLP one (M, 2 F) matrix from
 * [w1; w3]; attention saves a log-sum-exp per row instead of the
 * probabilities; the logits' gradient overwrites the logits.
 *
 * Memory: the activations of one forward pass and the backward scratch are
 * views into one device allocation, laid out by the same planning code
 * that measures it (like model.c's arena); it grows only with (B, L).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.cuh"
#include "cuda_engine.h"
#include "cuda_kernels.cuh"

extern "C" {
#include "error.h"
#include "scale.h"
}

/* Views of one Transformer layer's tensors in a parameter-shaped buffer. */
typedef struct {
    float *attn_norm;   /* (d) */
    float *wqkv;        /* (3 d, d): wq, wk, wv stacked */
    float *wo;          /* (d, d) */
    float *mlp_norm;    /* (d) */
    float *w13;         /* (2 F, d): w1, w3 stacked */
    float *w2;          /* (d, F) */
} GpuLayerWeights;

/* Views of the whole model's tensors in a parameter-shaped buffer. */
typedef struct {
    float *tok_emb;     /* (V, d) */
    float *final_norm;  /* (d) */
    float *lm_head;     /* (V, d); == tok_emb when tied */
    GpuLayerWeights *pre, *loop, *post;
    float *down_score[SPIRAL_MAX_ITERS];  /* (d) or NULL */
    float *up_alloc[SPIRAL_MAX_ITERS];    /* (g_t, d) or NULL */
} GpuWeights;

/* What one layer application saves; n is its sequence length. */
typedef struct {
    int n;
    const float *rope_cos, *rope_sin;  /* (n, dh/2) */
    const float *x;                    /* (B, n, d) input */
    float *xn1, *rstd1;                /* (B, n, d), (B, n) */
    float *qkv;                        /* (B, n, 3 d), q and k after RoPE */
    float *lse;                        /* (B, H, n) attention log-sum-exp */
    float *att;                        /* (B, n, d) attention output before wo */
    float *x2;                         /* (B, n, d) x + att wo^T */
    float *xn2, *rstd2;                /* (B, n, d), (B, n) */
    float *ac;                         /* (B, n, 2 F) [xn2 w1^T | xn2 w3^T] */
    float *m;                          /* (B, n, F) silu(a) c */
    float *out;                        /* (B, n, d) x2 + m w2^T */
} GpuLayerActs;

/* What one loop iteration saves (model.h's IterActs). */
typedef struct {
    ChunkGeometry geo;
    int full_resolution;               /* g == 1 && shift == 0 */
    int *pos;                          /* (J) device RoPE positions */
    int *pos_host;                     /* (J) the same on the host */
    float *rope_cos, *rope_sin;        /* (J, dh/2) */
    const float *h_in;                 /* (B, L, d) */
    float *z;                          /* (B, J, d) or NULL (full resolution) */
    float *alpha;                      /* (B, L) selfagg weights */
    float *delta;                      /* (B, J, d) residual: z~ - z */
    float *coef;                       /* (B, J, g) alloc coefficients */
    float *h_out;                      /* (B, L, d) */
    GpuLayerActs *layers;              /* n_loop */
} GpuIterActs;

/* The backward scratch (model.c's Scratch). */
typedef struct {
    float *stream[2], *core[2];        /* (B, L, d) */
    float *dh0, *dz, *ddelta, *dxn;    /* (B, L, d) */
    float *layer_dx2, *layer_dxn, *layer_datt;  /* (B, L, d) */
    float *layer_dqkv;                 /* (B, L, 3 d) */
    float *layer_dm;                   /* (B, L, F) */
    float *layer_dac;                  /* (B, L, 2 F) */
    float *rowdot;                     /* (B, H, L) */
    float *norm_partial;               /* (RMSNORM_PARTS, d) */
    double *scale_dot;                 /* most B L, B J g of any iteration */
    float *scale_float;                /* the same count */
} GpuScratch;

struct CudaModel {
    SpiralConfig cfg;
    ParamLayout layout;
    CudaOptions options;
    cudaStream_t stream;
    cublasHandle_t blas;
    int poison;

    float *params, *grads, *adam_m, *adam_v;   /* (n_params) each */
    size_t *tensor_end;                        /* (n_tensors) device */
    int *tensor_decay;                         /* (n_tensors) device */
    double *norm_partial;                      /* (NORM_BLOCKS) */
    double *norm_total;                        /* (1) */
    GpuWeights w, dw;

    /* activations of the last forward pass */
    int B, L;
    char *arena;
    size_t arena_bytes;
    int *host_ints;                            /* host positions */
    size_t host_ints_capacity;
    int *token_host, *present_host, *start_host, *rows_host;  /* CSR built on the host */
    size_t csr_capacity;
    int *tokens, *targets, *token_pos;         /* (B L), (B L), (L) */
    int *present, *token_start, *rows_by_token;  /* embedding backward, by token */
    int n_present;
    int *token_pos_host;                       /* (L) */
    float *token_cos, *token_sin;              /* (L, dh/2) */
    float *emb;                                /* (B, L, d) */
    GpuLayerActs *pre, *post, *loop_acts;      /* n_pre, n_post, T n_loop */
    GpuIterActs iters[SPIRAL_MAX_ITERS];
    const float *h_final;                      /* (B, L, d) */
    float *xn_final, *rstd_final;              /* (B, L, d), (B, L) */
    float *logits;                             /* (B, L, V) */
    double *row_loss, *row_lse;                /* (B L) */
    double *loss_sum;                          /* (1) */
    int loss_count;
    int logits_valid;
    GpuScratch scratch;
    float *observe_host;                       /* host copy of one state */
    size_t observe_capacity;
};

/* ------------------------------------------------------------------------ */
/* Weights                                                                  */

/* Pointer to tensor `name` inside buffer, or NULL. */
static float *tensor_view(const CudaModel *model, float *buffer, const char *name) {
    int index = param_layout_find(&model->layout, name);
    return index < 0 ? NULL : buffer + model->layout.tensors[index].offset;
}

static float *layer_view(const CudaModel *model, float *buffer, const char *block, int l,
                         const char *suffix) {
    char name[PARAM_NAME_CAP];
    snprintf(name, sizeof name, "%s.%d.%s", block, l, suffix);
    return tensor_view(model, buffer, name);
}

/* Binds layer "<block>.<l>."; fails unless wq, wk, wv (and w1, w3) are
 * consecutive, as params.c lays them out. */
static int bind_layer(GpuLayerWeights *lw, const CudaModel *model, float *buffer,
                      const char *block, int l) {
    size_t dd = (size_t)model->cfg.d_model * model->cfg.d_model;
    size_t fd = (size_t)model->cfg.d_ff * model->cfg.d_model;
    lw->attn_norm = layer_view(model, buffer, block, l, "attn_norm.weight");
    lw->wqkv = layer_view(model, buffer, block, l, "attn.wq.weight");
    float *wk = layer_view(model, buffer, block, l, "attn.wk.weight");
    float *wv = layer_view(model, buffer, block, l, "attn.wv.weight");
    lw->wo = layer_view(model, buffer, block, l, "attn.wo.weight");
    lw->mlp_norm = layer_view(model, buffer, block, l, "mlp_norm.weight");
    lw->w13 = layer_view(model, buffer, block, l, "mlp.w1.weight");
    float *w3 = layer_view(model, buffer, block, l, "mlp.w3.weight");
    lw->w2 = layer_view(model, buffer, block, l, "mlp.w2.weight");
    if (!lw->wqkv || wk != lw->wqkv + dd || wv != wk + dd || !lw->w13 || w3 != lw->w13 + fd)
        return spiral_error("cuda engine: layer %s.%d: expected wq, wk, wv and w1, w3 to be "
                            "consecutive in the parameter layout", block, l);
    return 0;
}

static int bind_weights(GpuWeights *views, const CudaModel *model, float *buffer) {
    const SpiralConfig *cfg = &model->cfg;
    char name[PARAM_NAME_CAP];
    views->tok_emb = tensor_view(model, buffer, "tok_emb.weight");
    views->final_norm = tensor_view(model, buffer, "final_norm.weight");
    views->lm_head = cfg->tie_embeddings ? views->tok_emb
                                         : tensor_view(model, buffer, "lm_head.weight");
    views->pre = (GpuLayerWeights *)calloc((size_t)cfg->n_pre + 1, sizeof(GpuLayerWeights));
    views->loop = (GpuLayerWeights *)calloc((size_t)cfg->n_loop + 1, sizeof(GpuLayerWeights));
    views->post = (GpuLayerWeights *)calloc((size_t)cfg->n_post + 1, sizeof(GpuLayerWeights));
    if (!views->pre || !views->loop || !views->post)
        return spiral_error("cuda engine: out of memory binding weights");
    for (int l = 0; l < cfg->n_pre; l++)
        if (bind_layer(&views->pre[l], model, buffer, "pre", l)) return -1;
    for (int l = 0; l < cfg->n_loop; l++)
        if (bind_layer(&views->loop[l], model, buffer, "loop", l)) return -1;
    for (int l = 0; l < cfg->n_post; l++)
        if (bind_layer(&views->post[l], model, buffer, "post", l)) return -1;
    for (int t = 0; t < cfg->n_iters; t++) {
        snprintf(name, sizeof name, "iter.%d.down.score", t);
        views->down_score[t] = tensor_view(model, buffer, name);
        snprintf(name, sizeof name, "iter.%d.up.alloc", t);
        views->up_alloc[t] = tensor_view(model, buffer, name);
    }
    return 0;
}

static void free_weights(GpuWeights *views) {
    free(views->pre);
    free(views->loop);
    free(views->post);
    memset(views, 0, sizeof *views);
}

/* Allocates the tensor table on the device for the AdamW kernel. */
static int upload_tensor_table(CudaModel *model) {
    int n = model->layout.n_tensors;
    size_t *ends = (size_t *)malloc((size_t)n * sizeof(size_t));
    int *decay = (int *)malloc((size_t)n * sizeof(int));
    if (!ends || !decay) {
        free(ends);
        free(decay);
        return spiral_error("cuda engine: out of memory for the tensor table");
    }
    for (int i = 0; i < n; i++) {
        ends[i] = model->layout.tensors[i].offset + model->layout.tensors[i].numel;
        decay[i] = model->layout.tensors[i].decay;
    }
    int status = 0;
    if (cuda_status(cudaMalloc(&model->tensor_end, (size_t)n * sizeof(size_t)), "cudaMalloc(tensor_end)") ||
        cuda_status(cudaMalloc(&model->tensor_decay, (size_t)n * sizeof(int)), "cudaMalloc(tensor_decay)") ||
        cuda_status(cudaMemcpy(model->tensor_end, ends, (size_t)n * sizeof(size_t),
                               cudaMemcpyHostToDevice), "cudaMemcpy(tensor_end)") ||
        cuda_status(cudaMemcpy(model->tensor_decay, decay, (size_t)n * sizeof(int),
                               cudaMemcpyHostToDevice), "cudaMemcpy(tensor_decay)"))
        status = -1;
    free(ends);
    free(decay);
    return status;
}

static int build_inside(CudaModel *model, const SpiralConfig *cfg) {
    if (config_validate(cfg)) return -1;
    int dh = cfg->d_model / cfg->n_heads;
    if (!attention_supports(dh))
        return spiral_error("cuda engine: head dimension %d: the fused attention supports 2..64",
                            dh);
    model->cfg = *cfg;
    if (param_layout_build(&model->layout, cfg)) return -1;
    size_t bytes = model->layout.n_params * sizeof(float);
    CUDA_CHECK(cudaStreamCreate(&model->stream));
    CUDA_CHECK(cublasCreate(&model->blas));
    CUDA_CHECK(cublasSetStream(model->blas, model->stream));
    CUDA_CHECK(cublasSetMathMode(model->blas, model->options.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                   : CUBLAS_PEDANTIC_MATH));
    CUDA_CHECK(cudaMalloc(&model->params, bytes));
    CUDA_CHECK(cudaMalloc(&model->grads, bytes));
    CUDA_CHECK(cudaMalloc(&model->adam_m, bytes));
    CUDA_CHECK(cudaMalloc(&model->adam_v, bytes));
    CUDA_CHECK(cudaMemset(model->params, 0, bytes));
    CUDA_CHECK(cudaMemset(model->grads, 0, bytes));
    CUDA_CHECK(cudaMemset(model->adam_m, 0, bytes));
    CUDA_CHECK(cudaMemset(model->adam_v, 0, bytes));
    CUDA_CHECK(cudaMalloc(&model->norm_partial, NORM_BLOCKS * sizeof(double)));
    CUDA_CHECK(cudaMalloc(&model->norm_total, sizeof(double)));
    if (upload_tensor_table(model)) return -1;
    if (bind_weights(&model->w, model, model->params) ||
        bind_weights(&model->dw, model, model->grads))
        return -1;
    model->pre = (GpuLayerActs *)calloc((size_t)cfg->n_pre + 1, sizeof(GpuLayerActs));
    model->post = (GpuLayerActs *)calloc((size_t)cfg->n_post + 1, sizeof(GpuLayerActs));
    model->loop_acts = (GpuLayerActs *)calloc((size_t)cfg->n_iters * cfg->n_loop + 1,
                                              sizeof(GpuLayerActs));
    if (!model->pre || !model->post || !model->loop_acts)
        return spiral_error("cuda engine: out of memory for activation views");
    for (int t = 0; t < cfg->n_iters; t++)
        model->iters[t].layers = model->loop_acts + (size_t)t * cfg->n_loop;
    return 0;
}

int cuda_model_build(CudaModel **out, const SpiralConfig *cfg, const CudaOptions *options) {
    *out = NULL;
    CudaModel *model = (CudaModel *)calloc(1, sizeof(CudaModel));
    if (!model) return spiral_error("cuda engine: out of memory");
    if (options) model->options = *options;
    if (build_inside(model, cfg)) {
        cuda_model_free(model);
        return spiral_error_prefix("cuda_model_build");
    }
    *out = model;
    return 0;
}

void cuda_model_free(CudaModel *model) {
    if (!model) return;
    /* errors while freeing are ignored: nothing useful can be done */
    cudaFree(model->params);
    cudaFree(model->grads);
    cudaFree(model->adam_m);
    cudaFree(model->adam_v);
    cudaFree(model->tensor_end);
    cudaFree(model->tensor_decay);
    cudaFree(model->norm_partial);
    cudaFree(model->norm_total);
    cudaFree(model->arena);
    if (model->blas) cublasDestroy(model->blas);
    if (model->stream) cudaStreamDestroy(model->stream);
    free_weights(&model->w);
    free_weights(&model->dw);
    free(model->pre);
    free(model->post);
    free(model->loop_acts);
    free(model->host_ints);
    free(model->token_host);
    free(model->observe_host);
    param_layout_free(&model->layout);
    free(model);
}

const ParamLayout *cuda_model_layout(const CudaModel *model) { return &model->layout; }

/* Copies n_params floats between host and a device buffer, synchronously. */
static int copy_buffer(float *dst, const float *src, size_t n, cudaMemcpyKind kind,
                       const char *what) {
    if (cuda_status(cudaMemcpy(dst, src, n * sizeof(float), kind), what)) return -1;
    return 0;
}

int cuda_model_set_params(CudaModel *model, const float *host) {
    return copy_buffer(model->params, host, model->layout.n_params, cudaMemcpyHostToDevice,
                       "cuda_model_set_params: cudaMemcpy");
}
int cuda_model_get_params(CudaModel *model, float *host) {
    CUDA_CHECK(cudaStreamSynchronize(model->stream));
    return copy_buffer(host, model->params, model->layout.n_params, cudaMemcpyDeviceToHost,
                       "cuda_model_get_params: cudaMemcpy");
}
int cuda_model_set_grads(CudaModel *model, const float *host) {
    return copy_buffer(model->grads, host, model->layout.n_params, cudaMemcpyHostToDevice,
                       "cuda_model_set_grads: cudaMemcpy");
}
int cuda_model_get_grads(CudaModel *model, float *host) {
    CUDA_CHECK(cudaStreamSynchronize(model->stream));
    return copy_buffer(host, model->grads, model->layout.n_params, cudaMemcpyDeviceToHost,
                       "cuda_model_get_grads: cudaMemcpy");
}
int cuda_model_zero_grad(CudaModel *model) {
    CUDA_CHECK(cudaMemsetAsync(model->grads, 0, model->layout.n_params * sizeof(float),
                               model->stream));
    return 0;
}
int cuda_model_set_adam_state(CudaModel *model, const float *m, const float *v) {
    size_t n = model->layout.n_params;
    CUDA_CHECK(cudaStreamSynchronize(model->stream));
    if (copy_buffer(model->adam_m, m, n, cudaMemcpyHostToDevice, "cuda_model_set_adam_state: m") ||
        copy_buffer(model->adam_v, v, n, cudaMemcpyHostToDevice, "cuda_model_set_adam_state: v"))
        return -1;
    return 0;
}
int cuda_model_get_adam_state(CudaModel *model, float *m, float *v) {
    size_t n = model->layout.n_params;
    CUDA_CHECK(cudaStreamSynchronize(model->stream));
    if (copy_buffer(m, model->adam_m, n, cudaMemcpyDeviceToHost, "cuda_model_get_adam_state: m") ||
        copy_buffer(v, model->adam_v, n, cudaMemcpyDeviceToHost, "cuda_model_get_adam_state: v"))
        return -1;
    return 0;
}

void cuda_model_set_poison(CudaModel *model, int on) { model->poison = on; }

int cuda_model_synchronize(CudaModel *model) {
    CUDA_CHECK(cudaStreamSynchronize(model->stream));
    return 0;
}

size_t cuda_model_device_bytes(const CudaModel *model) {
    return 4 * model->layout.n_params * sizeof(float) + model->arena_bytes;
}

/* ------------------------------------------------------------------------ */
/* Activation arena                                                         */

/* A bump allocator over device memory; with base == NULL it only counts,
 * so the same planning code measures the arena and then lays it out.
 * Views start on 256-byte boundaries. host counts the host ints. */
typedef struct {
    char *base;
    size_t used;
    int *host_base;
    size_t host_used;
} Bump;

template <typename T>
static T *take(Bump *bump, size_t count) {
    T *p = bump->base ? (T *)(bump->base + bump->used) : NULL;
    bump->used += (count * sizeof(T) + 255) / 256 * 256;
    return p;
}

static int *take_host(Bump *bump, size_t count) {
    int *p = bump->host_base ? bump->host_base + bump->host_used : NULL;
    bump->host_used += count;
    return p;
}

static void plan_layer(GpuLayerActs *acts, Bump *bump, const SpiralConfig *cfg, int B, int n,
                       const float *rope_cos, const float *rope_sin) {
    size_t rows = (size_t)B * n, d = (size_t)cfg->d_model, f = (size_t)cfg->d_ff;
    acts->n = n;
    acts->rope_cos = rope_cos;
    acts->rope_sin = rope_sin;
    acts->xn1 = take<float>(bump, rows * d);
    acts->rstd1 = take<float>(bump, rows);
    acts->qkv = take<float>(bump, 3 * rows * d);
    acts->lse = take<float>(bump, (size_t)B * cfg->n_heads * n);
    acts->att = take<float>(bump, rows * d);
    acts->x2 = take<float>(bump, rows * d);
    acts->xn2 = take<float>(bump, rows * d);
    acts->rstd2 = take<float>(bump, rows);
    acts->ac = take<float>(bump, 2 * rows * f);
    acts->m = take<float>(bump, rows * f);
    acts->out = take<float>(bump, rows * d);
}

/* Lays out (or measures) every activation and the scratch at (B, L). */
static void plan_arena(CudaModel *model, Bump *bump, int B, int L) {
    const SpiralConfig *cfg = &model->cfg;
    size_t tokens = (size_t)B * L, d = (size_t)cfg->d_model, f = (size_t)cfg->d_ff;
    size_t half = (size_t)(cfg->d_model / cfg->n_heads / 2);
    model->tokens = take<int>(bump, tokens);
    model->targets = take<int>(bump, tokens);
    model->token_pos = take<int>(bump, (size_t)L);
    model->present = take<int>(bump, tokens);
    model->token_start = take<int>(bump, tokens + 1);
    model->rows_by_token = take<int>(bump, tokens);
    model->token_pos_host = take_host(bump, (size_t)L);
    model->token_cos = take<float>(bump, (size_t)L * half);
    model->token_sin = take<float>(bump, (size_t)L * half);
    model->emb = take<float>(bump, tokens * d);
    for (int l = 0; l < cfg->n_pre; l++)
        plan_layer(&model->pre[l], bump, cfg, B, L, model->token_cos, model->token_sin);
    size_t scale_most = tokens;
    for (int t = 0; t < cfg->n_iters; t++) {
        GpuIterActs *it = &model->iters[t];
        const IterSpec *spec = &cfg->schedule[t];
        it->geo = chunk_geometry(L, spec);
        it->full_resolution = spec->g == 1 && spec->shift == 0;
        size_t J = (size_t)it->geo.J;
        if (J * spec->g * B > scale_most) scale_most = J * spec->g * B;
        it->pos = take<int>(bump, J);
        it->pos_host = take_host(bump, J);
        it->rope_cos = take<float>(bump, J * half);
        it->rope_sin = take<float>(bump, J * half);
        it->z = it->alpha = it->delta = it->coef = it->h_out = NULL;
        if (!it->full_resolution) {
            it->z = take<float>(bump, (size_t)B * J * d);
            if (cfg->down == DOWN_SELFAGG) it->alpha = take<float>(bump, tokens);
            if (cfg->topology == TOPOLOGY_RESIDUAL) it->delta = take<float>(bump, (size_t)B * J * d);
            if (cfg->up == UP_ALLOC) it->coef = take<float>(bump, (size_t)B * J * spec->g);
        }
        if (!(it->full_resolution && cfg->topology == TOPOLOGY_RESIDUAL))
            it->h_out = take<float>(bump, tokens * d);
        for (int l = 0; l < cfg->n_loop; l++)
            plan_layer(&it->layers[l], bump, cfg, B, (int)J, it->rope_cos, it->rope_sin);
    }
    for (int l = 0; l < cfg->n_post; l++)
        plan_layer(&model->post[l], bump, cfg, B, L, model->token_cos, model->token_sin);
    model->xn_final = take<float>(bump, tokens * d);
    model->rstd_final = take<float>(bump, tokens);
    model->logits = take<float>(bump, tokens * cfg->vocab_size);
    model->row_loss = take<double>(bump, tokens);
    model->row_lse = take<double>(bump, tokens);
    model->loss_sum = take<double>(bump, 1);

    GpuScratch *s = &model->scratch;
    for (int i = 0; i < 2; i++) s->stream[i] = take<float>(bump, tokens * d);
    for (int i = 0; i < 2; i++) s->core[i] = take<float>(bump, tokens * d);
    s->dh0 = take<float>(bump, tokens * d);
    s->dz = take<float>(bump, tokens * d);
    s->ddelta = take<float>(bump, tokens * d);
    s->dxn = take<float>(bump, tokens * d);
    s->layer_dx2 = take<float>(bump, tokens * d);
    s->layer_dxn = take<float>(bump, tokens * d);
    s->layer_datt = take<float>(bump, tokens * d);
    s->layer_dqkv = take<float>(bump, 3 * tokens * d);
    s->layer_dm = take<float>(bump, tokens * f);
    s->layer_dac = take<float>(bump, 2 * tokens * f);
    s->rowdot = take<float>(bump, (size_t)B * cfg->n_heads * L);
    s->norm_partial = take<float>(bump, (size_t)RMSNORM_PARTS * d);
    s->scale_dot = take<double>(bump, scale_most);
    s->scale_float = take<float>(bump, scale_most);
}

/* Makes sure the arena fits (B, L) and lays it out; allocates only when it
 * grows. With poisoning on, fills it with NaN. */
static int ensure_arena(CudaModel *model, int B, int L) {
    Bump measure = {0};
    plan_arena(model, &measure, B, L);
    if (measure.used > model->arena_bytes) {
        CUDA_CHECK(cudaStreamSynchronize(model->stream));
        CUDA_CHECK(cudaFree(model->arena));
        model->arena = NULL;
        model->arena_bytes = 0;
        if (cuda_status(cudaMalloc(&model->arena, measure.used), "cudaMalloc(arena)"))
            return spiral_error_prefix("activations for B=%d, L=%d need %.1f MB", B, L,
                                       measure.used / 1e6);
        model->arena_bytes = measure.used;
    }
    if (measure.host_used > model->host_ints_capacity) {
        free(model->host_ints);
        model->host_ints = (int *)malloc(measure.host_used * sizeof(int));
        model->host_ints_capacity = model->host_ints ? measure.host_used : 0;
        if (!model->host_ints) return spiral_error("cuda engine: out of memory (positions)");
    }
    size_t tokens = (size_t)B * L;
    if (4 * tokens + 1 > model->csr_capacity) {
        free(model->token_host);
        model->token_host = (int *)malloc((4 * tokens + 1) * sizeof(int));
        model->csr_capacity = model->token_host ? 4 * tokens + 1 : 0;
        if (!model->token_host) return spiral_error("cuda engine: out of memory (token lists)");
    }
    model->present_host = model->token_host + tokens;
    model->start_host = model->present_host + tokens;
    model->rows_host = model->start_host + tokens + 1;
    Bump layout = {model->arena, 0, model->host_ints, 0};
    plan_arena(model, &layout, B, L);
    model->B = B;
    model->L = L;
    if (model->poison &&
        vector_fill_nan((float *)model->arena, model->arena_bytes / sizeof(float), model->stream))
        return -1;
    return 0;
}

/* Groups the rows of tokens (M) by token for the embedding's backward:
 * present (n_present) the tokens in increasing order, start (n_present + 1)
 * where each token's rows begin in rows (M), in row order (a counting sort). */
static int group_rows_by_token(int *present, int *start, int *rows, const int *tokens, int M,
                               int V) {
    int *count = (int *)calloc((size_t)V + 1, sizeof(int));
    if (!count) return -1;
    for (int r = 0; r < M; r++) count[tokens[r] + 1]++;
    for (int v = 0; v < V; v++) count[v + 1] += count[v]; /* count[v] = first slot of v */
    int n_present = 0;
    for (int v = 0; v < V; v++)
        if (count[v + 1] > count[v]) {
            present[n_present] = v;
            start[n_present++] = count[v];
        }
    start[n_present] = M;
    for (int r = 0; r < M; r++) rows[count[tokens[r]]++] = r;
    free(count);
    return n_present;
}

/* ------------------------------------------------------------------------ */
/* Forward                                                                  */

/* Copies a (B, rows, cols) device state to the host and hands it on. */
static int observe_state(CudaModel *model, const CudaObserver *observer, ObserveSite site,
                         int iteration, BlockKind block, int layer, int g, int rows,
                         const int *pos, const float *data) {
    if (!observer || !observer->fn) return 0;
    size_t count = (size_t)model->B * rows * model->cfg.d_model;
    if (count > model->observe_capacity) {
        free(model->observe_host);
        model->observe_host = (float *)malloc(count * sizeof(float));
        model->observe_capacity = model->observe_host ? count : 0;
        if (!model->observe_host) return spiral_error("cuda engine: out of memory (observer)");
    }
    CUDA_CHECK(cudaStreamSynchronize(model->stream));
    CUDA_CHECK(cudaMemcpy(model->observe_host, data, count * sizeof(float),
                          cudaMemcpyDeviceToHost));
    CudaObserveEvent event = {site, iteration, block, layer, g, model->B, rows,
                              model->cfg.d_model, pos, model->observe_host};
    observer->fn(observer->user, &event);
    return 0;
}

/* One pre-norm layer: x2 = x + Attn(RMSNorm(x)); out = x2 + MLP(RMSNorm(x2)).
 * x (B, n, d) -> acts->out (B, n, d). */
static int layer_forward(CudaModel *model, GpuLayerActs *acts, const GpuLayerWeights *w,
                         const float *x) {
    const SpiralConfig *cfg = &model->cfg;
    int B = model->B, n = acts->n, d = cfg->d_model, f = cfg->d_ff, H = cfg->n_heads;
    int dh = d / H, M = B * n, tf32 = model->options.tf32;
    cudaStream_t s = model->stream;
    cublasHandle_t blas = model->blas;
    size_t rows_d = (size_t)M * d;
    acts->x = x;
    if (rmsnorm_forward(acts->xn1, acts->rstd1, x, w->attn_norm, M, d, cfg->norm_eps, s) ||
        /* qkv (M, 3 d) = xn1 [wq; wk; wv]^T */
        gemm(blas, tf32, 0, 1, M, 3 * d, d, 1.0f, acts->xn1, d, w->wqkv, d, 0.0f, acts->qkv,
             3 * d) ||
        rope_apply(acts->qkv, acts->rope_cos, acts->rope_sin, B, n, H, dh, 1, s) ||
        attention_forward(acts->att, acts->lse, acts->qkv, B, n, H, dh, s))
        return -1;
    /* x2 = x + att wo^T */
    CUDA_CHECK(cudaMemcpyAsync(acts->x2, x, rows_d * sizeof(float), cudaMemcpyDeviceToDevice, s));
    if (gemm(blas, tf32, 0, 1, M, d, d, 1.0f, acts->att, d, w->wo, d, 1.0f, acts->x2, d) ||
        rmsnorm_forward(acts->xn2, acts->rstd2, acts->x2, w->mlp_norm, M, d, cfg->norm_eps, s) ||
        /* ac (M, 2 F) = xn2 [w1; w3]^T */
        gemm(blas, tf32, 0, 1, M, 2 * f, d, 1.0f, acts->xn2, d, w->w13, d, 0.0f, acts->ac,
             2 * f) ||
        swiglu_forward(acts->m, acts->ac, M, f, s))
        return -1;
    /* out = x2 + m w2^T */
    CUDA_CHECK(cudaMemcpyAsync(acts->out, acts->x2, rows_d * sizeof(float),
                               cudaMemcpyDeviceToDevice, s));
    return gemm(blas, tf32, 0, 1, M, d, f, 1.0f, acts->m, f, w->w2, f, 1.0f, acts->out, d);
}

/* Runs n_layers layers on x; *out gets the output (x if n_layers == 0). */
static int block_forward(CudaModel *model, const float **out, GpuLayerActs *acts,
                         const GpuLayerWeights *w, int n_layers, const float *x, BlockKind kind,
                         int iteration, int g, const int *pos_host,
                         const CudaObserver *observer) {
    for (int l = 0; l < n_layers; l++) {
        if (layer_forward(model, &acts[l], &w[l], x)) return -1;
        x = acts[l].out;
        if (observe_state(model, observer, OBSERVE_LAYER_OUT, iteration, kind, l, g, acts[l].n,
                          pos_host, x))
            return -1;
    }
    *out = x;
    return 0;
}

/* Iteration t: h(t) = h_in -> h(t+1) (*h_out). h0 is the prelude output. */
static int iteration_forward(CudaModel *model, int t, const float **h_next, const float *h_in,
                             const float *h0, const CudaObserver *observer) {
    const SpiralConfig *cfg = &model->cfg;
    GpuIterActs *it = &model->iters[t];
    int B = model->B, d = cfg->d_model, J = it->geo.J, g = it->geo.g;
    GpuGeometry geo = {it->geo.L, it->geo.g, it->geo.w, it->geo.s, it->geo.J};
    cudaStream_t s = model->stream;
    it->h_in = h_in;
    const float *z = h_in;
    if (!it->full_resolution) {
        if (downscale_forward(it->z, it->alpha, h_in, model->w.down_score[t], geo, B, d,
                              cfg->down == DOWN_SELFAGG, s))
            return -1;
        z = it->z;
    }
    if (observe_state(model, observer, OBSERVE_LATENT_IN, t, BLOCK_LOOP, -1, g, J, it->pos_host, z))
        return -1;
    const float *z_out;
    if (block_forward(model, &z_out, it->layers, model->w.loop, cfg->n_loop, z, BLOCK_LOOP, t, g,
                      it->pos_host, observer) ||
        observe_state(model, observer, OBSERVE_LATENT_OUT, t, BLOCK_LOOP, -1, g, J, it->pos_host,
                      z_out))
        return -1;
    if (it->full_resolution && cfg->topology == TOPOLOGY_RESIDUAL) {
        /* h(t+1) = h(t) + (z~ - h(t)) = z~ exactly */
        it->h_out = (float *)z_out;
        *h_next = z_out;
        return 0;
    }
    /* delta = z~ - z (residual) or z~ (anchor) */
    const float *delta = z_out;
    if (cfg->topology == TOPOLOGY_RESIDUAL) {
        if (vector_sub(it->delta, z_out, z, (size_t)B * J * d, s)) return -1;
        delta = it->delta;
    }
    const float *base = cfg->topology == TOPOLOGY_RESIDUAL ? h_in : h0;
    int use_alloc = !it->full_resolution && cfg->up == UP_ALLOC;
    if (upscale_forward(it->h_out, it->coef, base, delta, model->w.up_alloc[t], geo, B, d,
                        use_alloc, model->blas, model->options.tf32, s))
        return -1;
    *h_next = it->h_out;
    return 0;
}

/* Checks the inputs as model_forward does. */
static int check_inputs(const CudaModel *model, const int *tokens, const int *targets, int B,
                        int L) {
    int V = model->cfg.vocab_size;
    if (B < 1 || L < 1)
        return spiral_error("cuda_model_forward: batch %d x length %d is empty", B, L);
    for (size_t i = 0; i < (size_t)B * L; i++) {
        if (tokens[i] < 0 || tokens[i] >= V)
            return spiral_error("token %d at position %zu is outside the vocabulary [0, %d)",
                                tokens[i], i, V);
        if (targets && (targets[i] < -1 || targets[i] >= V))
            return spiral_error("target %d at position %zu is outside the vocabulary [0, %d)",
                                targets[i], i, V);
    }
    return 0;
}

/* Uploads tokens, targets, positions and the token groups; builds the RoPE
 * tables of every position set. */
static int upload_inputs(CudaModel *model, const int *tokens, const int *targets) {
    const SpiralConfig *cfg = &model->cfg;
    int B = model->B, L = model->L, M = B * L, dh = cfg->d_model / cfg->n_heads;
    cudaStream_t s = model->stream;
    int *target_host = model->token_host;
    model->loss_count = 0;
    for (int i = 0; i < M; i++) {
        target_host[i] = targets ? targets[i] : -1;
        if (target_host[i] >= 0) model->loss_count++;
    }
    model->n_present = group_rows_by_token(model->present_host, model->start_host,
                                           model->rows_host, tokens, M, cfg->vocab_size);
    if (model->n_present < 0) return spiral_error("cuda engine: out of memory (token groups)");
    for (int i = 0; i < L; i++) model->token_pos_host[i] = i;
    size_t ints = (size_t)M * sizeof(int);
    /* synchronous copies from pageable memory: the host buffers are reused */
    CUDA_CHECK(cudaStreamSynchronize(s));
    CUDA_CHECK(cudaMemcpy(model->tokens, tokens, ints, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(model->targets, target_host, ints, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(model->present, model->present_host,
                          (size_t)model->n_present * sizeof(int), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(model->token_start, model->start_host,
                          (size_t)(model->n_present + 1) * sizeof(int), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(model->rows_by_token, model->rows_host, ints, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(model->token_pos, model->token_pos_host, (size_t)L * sizeof(int),
                          cudaMemcpyHostToDevice));
    if (rope_table(model->token_cos, model->token_sin, model->token_pos, L, dh, cfg->rope_base, s))
        return -1;
    for (int t = 0; t < cfg->n_iters; t++) {
        GpuIterActs *it = &model->iters[t];
        chunk_positions(it->pos_host, &it->geo);
        CUDA_CHECK(cudaMemcpy(it->pos, it->pos_host, (size_t)it->geo.J * sizeof(int),
                              cudaMemcpyHostToDevice));
        if (rope_table(it->rope_cos, it->rope_sin, it->pos, it->geo.J, dh, cfg->rope_base, s))
            return -1;
    }
    return 0;
}

static int forward_inside(CudaModel *model, const int *tokens, const int *targets, int B, int L,
                          const CudaObserver *observer, double *loss) {
    const SpiralConfig *cfg = &model->cfg;
    int d = cfg->d_model, V = cfg->vocab_size, M = B * L;
    cudaStream_t s = model->stream;
    if (check_inputs(model, tokens, targets, B, L) || ensure_arena(model, B, L) ||
        upload_inputs(model, tokens, targets) ||
        embedding_forward(model->emb, model->tokens, model->w.tok_emb, M, d, s))
        return -1;
    const float *h0, *h;
    if (block_forward(model, &h0, model->pre, model->w.pre, cfg->n_pre, model->emb, BLOCK_PRE,
                      -1, 1, model->token_pos_host, observer) ||
        observe_state(model, observer, OBSERVE_STATE, 0, BLOCK_LOOP, -1, 1, L,
                      model->token_pos_host, h0))
        return -1;
    h = h0;
    for (int t = 0; t < cfg->n_iters; t++) {
        if (iteration_forward(model, t, &h, h, h0, observer) ||
            observe_state(model, observer, OBSERVE_STATE, t + 1, BLOCK_LOOP, -1, 1, L,
                          model->token_pos_host, h))
            return -1;
    }
    if (block_forward(model, &h, model->post, model->w.post, cfg->n_post, h, BLOCK_POST, -1, 1,
                      model->token_pos_host, observer))
        return -1;
    model->h_final = h;
    if (observe_state(model, observer, OBSERVE_CODA, cfg->n_iters, BLOCK_LOOP, -1, 1, L,
                      model->token_pos_host, h) ||
        rmsnorm_forward(model->xn_final, model->rstd_final, h, model->w.final_norm, M, d,
                        cfg->norm_eps, s) ||
        /* logits (M, V) = xn lm_head^T */
        gemm(model->blas, model->options.tf32, 0, 1, M, V, d, 1.0f, model->xn_final, d,
             model->w.lm_head, d, 0.0f, model->logits, V) ||
        crossentropy_forward(model->loss_sum, model->row_loss, model->row_lse, model->logits,
                             model->targets, M, V, s))
        return -1;
    model->logits_valid = 1;
    if (loss) {
        double sum = 0;
        CUDA_CHECK(cudaMemcpyAsync(&sum, model->loss_sum, sizeof(double), cudaMemcpyDeviceToHost, s));
        CUDA_CHECK(cudaStreamSynchronize(s));
        *loss = model->loss_count ? sum / model->loss_count : 0.0;
    }
    return 0;
}

int cuda_model_forward(CudaModel *model, const int *tokens, const int *targets, int B, int L,
                       const CudaObserver *observer, double *loss) {
    model->logits_valid = 0;
    if (forward_inside(model, tokens, targets, B, L, observer, loss))
        return spiral_error_prefix("cuda_model_forward");
    return 0;
}

int cuda_model_get_logits(CudaModel *model, float *host) {
    if (!model->logits_valid)
        return spiral_error("cuda_model_get_logits: no logits (no forward pass, or the backward "
                            "pass overwrote them)");
    CUDA_CHECK(cudaStreamSynchronize(model->stream));
    return copy_buffer(host, model->logits, (size_t)model->B * model->L * model->cfg.vocab_size,
                       cudaMemcpyDeviceToHost, "cuda_model_get_logits: cudaMemcpy");
}

/* ------------------------------------------------------------------------ */
/* Backward                                                                 */

static int zero(float *x, size_t count, cudaStream_t s) {
    CUDA_CHECK(cudaMemsetAsync(x, 0, count * sizeof(float), s));
    return 0;
}

/* Backward of layer_forward: dx += dL/dx given dout; weight gradients
 * accumulate into dw. */
static int layer_backward(CudaModel *model, float *dx, GpuLayerWeights *dw, const float *dout,
                          const GpuLayerActs *acts, const GpuLayerWeights *w) {
    const SpiralConfig *cfg = &model->cfg;
    const GpuScratch *sc = &model->scratch;
    int B = model->B, n = acts->n, d = cfg->d_model, f = cfg->d_ff, H = cfg->n_heads;
    int dh = d / H, M = B * n, tf32 = model->options.tf32;
    cudaStream_t s = model->stream;
    cublasHandle_t blas = model->blas;
    size_t rows_d = (size_t)M * d;
    /* out = x2 + m w2^T */
    CUDA_CHECK(cudaMemcpyAsync(sc->layer_dx2, dout, rows_d * sizeof(float),
                               cudaMemcpyDeviceToDevice, s));
    if (gemm(blas, tf32, 0, 0, M, f, d, 1.0f, dout, d, w->w2, f, 0.0f, sc->layer_dm, f) ||
        gemm(blas, tf32, 1, 0, d, f, M, 1.0f, dout, d, acts->m, f, 1.0f, dw->w2, f) ||
        swiglu_backward(sc->layer_dac, sc->layer_dm, acts->ac, M, f, s) ||
        /* ac = xn2 [w1; w3]^T */
        gemm(blas, tf32, 0, 0, M, d, 2 * f, 1.0f, sc->layer_dac, 2 * f, w->w13, d, 0.0f,
             sc->layer_dxn, d) ||
        gemm(blas, tf32, 1, 0, 2 * f, d, M, 1.0f, sc->layer_dac, 2 * f, acts->xn2, d, 1.0f,
             dw->w13, d) ||
        rmsnorm_backward(sc->layer_dx2, dw->mlp_norm, sc->norm_partial, sc->layer_dxn, acts->x2,
                         w->mlp_norm, acts->rstd2, M, d, s) ||
        /* x2 = x + att wo^T */
        vector_add(dx, sc->layer_dx2, rows_d, s) ||
        gemm(blas, tf32, 0, 0, M, d, d, 1.0f, sc->layer_dx2, d, w->wo, d, 0.0f, sc->layer_datt,
             d) ||
        gemm(blas, tf32, 1, 0, d, d, M, 1.0f, sc->layer_dx2, d, acts->att, d, 1.0f, dw->wo, d) ||
        attention_backward(sc->layer_dqkv, sc->rowdot, sc->layer_datt, acts->att, acts->qkv,
                           acts->lse, B, n, H, dh, s) ||
        rope_apply(sc->layer_dqkv, acts->rope_cos, acts->rope_sin, B, n, H, dh, -1, s) ||
        /* qkv = xn1 [wq; wk; wv]^T */
        gemm(blas, tf32, 0, 0, M, d, 3 * d, 1.0f, sc->layer_dqkv, 3 * d, w->wqkv, d, 0.0f,
             sc->layer_dxn, d) ||
        gemm(blas, tf32, 1, 0, 3 * d, d, M, 1.0f, sc->layer_dqkv, 3 * d, acts->xn1, d, 1.0f,
             dw->wqkv, d) ||
        rmsnorm_backward(dx, dw->attn_norm, sc->norm_partial, sc->layer_dxn, acts->x,
                         w->attn_norm, acts->rstd1, M, d, s))
        return -1;
    return 0;
}

/* Backward through n_layers layers: dx += dL/dx given dout; pingpong holds
 * two buffers for the gradients between layers (neither aliases dx or
 * dout). With n_layers == 0 nothing happens (model.c's convention). */
static int block_backward(CudaModel *model, float *dx, GpuLayerWeights *dw, const float *dout,
                          const GpuLayerActs *acts, const GpuLayerWeights *w, int n_layers,
                          float *const pingpong[2]) {
    const float *cur = dout;
    for (int l = n_layers - 1; l >= 0; l--) {
        float *target = l == 0 ? dx : pingpong[l % 2];
        if (l > 0 && zero(target, (size_t)model->B * acts[l].n * model->cfg.d_model,
                          model->stream))
            return -1;
        if (layer_backward(model, target, &dw[l], cur, &acts[l], &w[l])) return -1;
        cur = target;
    }
    return 0;
}

/* Backward of iteration t: dh_in += dL/dh(t), dh0 += the part reaching
 * h(0) through the anchor, given dh_out = dL/dh(t+1). */
static int iteration_backward(CudaModel *model, int t, float *dh_in, float *dh0,
                              const float *dh_out) {
    const SpiralConfig *cfg = &model->cfg;
    const GpuScratch *sc = &model->scratch;
    GpuIterActs *it = &model->iters[t];
    int B = model->B, L = model->L, d = cfg->d_model, J = it->geo.J;
    GpuGeometry geo = {it->geo.L, it->geo.g, it->geo.w, it->geo.s, it->geo.J};
    size_t tokens_d = (size_t)B * L * d, latents_d = (size_t)B * J * d;
    cudaStream_t s = model->stream;
    float *const core_pingpong[2] = {sc->core[0], sc->core[1]};
    int residual = cfg->topology == TOPOLOGY_RESIDUAL;
    if (it->full_resolution) {
        /* residual: h(t+1) = z~; anchor: h(t+1) = h(0) + z~; z = h(t) */
        if (!residual && vector_add(dh0, dh_out, tokens_d, s)) return -1;
        return block_backward(model, dh_in, model->dw.loop, dh_out, it->layers, model->w.loop,
                              cfg->n_loop, core_pingpong);
    }
    /* h(t+1) = base + shift(up(delta)) */
    if (vector_add(residual ? dh_in : dh0, dh_out, tokens_d, s) ||
        zero(sc->ddelta, latents_d, s) ||
        upscale_backward(sc->ddelta, model->dw.up_alloc[t], sc->scale_dot, sc->scale_float,
                         dh_out, residual ? it->delta : it->layers[cfg->n_loop - 1].out,
                         it->coef, model->w.up_alloc[t], geo, B, d, cfg->up == UP_ALLOC,
                         model->blas, model->options.tf32, s))
        return -1;
    /* delta = z~ - z (residual) or z~ (anchor) */
    if (residual ? vector_negate(sc->dz, sc->ddelta, latents_d, s) : zero(sc->dz, latents_d, s))
        return -1;
    if (block_backward(model, sc->dz, model->dw.loop, sc->ddelta, it->layers, model->w.loop,
                       cfg->n_loop, core_pingpong))
        return -1;
    return downscale_backward(dh_in, model->dw.down_score[t], sc->scale_dot, sc->scale_float,
                              sc->dz, it->h_in, it->alpha, model->w.down_score[t], geo, B, d,
                              cfg->down == DOWN_SELFAGG, model->blas, model->options.tf32, s);
}

static int backward_inside(CudaModel *model) {
    const SpiralConfig *cfg = &model->cfg;
    const GpuScratch *sc = &model->scratch;
    if (!model->logits_valid || model->loss_count == 0)
        return spiral_error("no forward pass with targets to differentiate");
    int B = model->B, L = model->L, d = cfg->d_model, V = cfg->vocab_size, M = B * L;
    int tf32 = model->options.tf32;
    size_t tokens_d = (size_t)M * d;
    cudaStream_t s = model->stream;
    float *const pingpong[2] = {sc->core[0], sc->core[1]};
    model->logits_valid = 0;
    /* loss = mean cross-entropy; logits = xn lm_head^T; xn = norm(h_final) */
    float *dlogits = model->logits;
    if (crossentropy_backward(dlogits, model->row_lse, model->targets, M, V,
                              (float)(1.0 / model->loss_count), s) ||
        gemm(model->blas, tf32, 0, 0, M, d, V, 1.0f, dlogits, V, model->w.lm_head, d, 0.0f,
             sc->dxn, d) ||
        gemm(model->blas, tf32, 1, 0, V, d, M, 1.0f, dlogits, V, model->xn_final, d, 1.0f,
             model->dw.lm_head, d))
        return -1;
    float *dh = sc->stream[0], *dh_next = sc->stream[1];
    if (zero(dh, tokens_d, s) ||
        rmsnorm_backward(dh, model->dw.final_norm, sc->norm_partial, sc->dxn, model->h_final,
                         model->w.final_norm, model->rstd_final, M, d, s))
        return -1;
    /* coda */
    if (cfg->n_post > 0) {
        if (zero(dh_next, tokens_d, s) ||
            block_backward(model, dh_next, model->dw.post, dh, model->post, model->w.post,
                           cfg->n_post, pingpong))
            return -1;
        float *swap = dh; dh = dh_next; dh_next = swap;
    }
    /* iterations, last to first */
    if (zero(sc->dh0, tokens_d, s)) return -1;
    for (int t = cfg->n_iters - 1; t >= 0; t--) {
        if (zero(dh_next, tokens_d, s) || iteration_backward(model, t, dh_next, sc->dh0, dh))
            return -1;
        float *swap = dh; dh = dh_next; dh_next = swap;
    }
    if (vector_add(dh, sc->dh0, tokens_d, s)) return -1;
    /* prelude */
    if (cfg->n_pre > 0) {
        if (zero(dh_next, tokens_d, s) ||
            block_backward(model, dh_next, model->dw.pre, dh, model->pre, model->w.pre,
                           cfg->n_pre, pingpong))
            return -1;
        dh = dh_next;
    }
    return embedding_backward(model->dw.tok_emb, dh, model->present, model->token_start,
                              model->rows_by_token, model->n_present, d, s);
}

int cuda_model_backward(CudaModel *model) {
    if (backward_inside(model)) return spiral_error_prefix("cuda_model_backward");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Optimizer                                                                */

int cuda_model_clip_grad_norm(CudaModel *model, double clip, double *norm) {
    size_t n = model->layout.n_params;
    double sum = 0;
    if (grad_sum_squares(model->norm_total, model->norm_partial, model->grads, n, model->stream))
        return spiral_error_prefix("cuda_model_clip_grad_norm");
    CUDA_CHECK(cudaMemcpyAsync(&sum, model->norm_total, sizeof(double), cudaMemcpyDeviceToHost,
                               model->stream));
    CUDA_CHECK(cudaStreamSynchronize(model->stream));
    double value = sqrt(sum);
    if (norm) *norm = value;
    if (clip > 0 && value > clip &&
        vector_scale(model->grads, (float)(clip / value), n, model->stream))
        return spiral_error_prefix("cuda_model_clip_grad_norm");
    return 0;
}

int cuda_model_adamw_step(CudaModel *model, const AdamWSettings *settings, long t) {
    double correction1 = 1 - pow(settings->beta1, (double)t);
    double correction2 = 1 - pow(settings->beta2, (double)t);
    if (adamw_update(model->params, model->adam_m, model->adam_v, model->grads,
                     model->tensor_end, model->tensor_decay, model->layout.n_tensors,
                     model->layout.n_params, (float)settings->beta1, (float)settings->beta2,
                     (float)settings->eps, (float)(settings->lr / correction1),
                     (float)(1 / sqrt(correction2)),
                     (float)(1 - settings->lr * settings->weight_decay), model->stream))
        return spiral_error_prefix("cuda_model_adamw_step");
    return 0;
}
