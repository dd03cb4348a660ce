/*
 * cuda_model.cuh: the CudaModel struct and the views it holds, shared by the
 * files of the CUDA engine (cuda_engine.cu: building and buffers;
 * cuda_arena.cu: the activation arena; cuda_forward.cu; cuda_backward.cu:
 * backward and optimizer). Internal to core/cuda/.
 */
#ifndef SPIRAL_CUDA_MODEL_CUH
#define SPIRAL_CUDA_MODEL_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cuda_engine.h"
#include "cuda_kernels.cuh"

extern "C" {
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
    GpuMeshWeights mesh[SPIRAL_MAX_ITERS]; /* topology mesh: the routers, else NULLs */
} GpuWeights;

/* What one layer application saves; n is its sequence length. The inputs
 * of the products (xn1, att, xn2, m) are kept in fp32 in fp32 and TF32
 * precision, and in bf16 (the *16 views; xn1, att, xn2, m NULL) in bf16
 * precision, written so by the kernels that compute them; so are the
 * outputs of the products that only kernels read (qkv, ac). */
typedef struct {
    int n;
    const float *rope_cos, *rope_sin;  /* (n, dh/2) */
    const float *x;                    /* (B, n, d) input */
    float *xn1, *rstd1;                /* (B, n, d), (B, n) */
    float *qkv;                        /* (B, n, 3 d), q and k after RoPE (NULL in bf16) */
    float *lse;                        /* (B, H, n) attention log-sum-exp */
    float *att;                        /* (B, n, d) attention output before wo (NULL in bf16) */
    float *x2;                         /* (B, n, d) x + att wo^T */
    float *xn2, *rstd2;                /* (B, n, d), (B, n) */
    float *ac;                         /* (B, n, 2 F) [xn2 w1^T | xn2 w3^T] (NULL in bf16) */
    float *m;                          /* (B, n, F) silu(a) c */
    float *out;                        /* (B, n, d) x2 + m w2^T */
    __nv_bfloat16 *xn1_16, *att16, *xn2_16, *m16;  /* bf16 precision: the same, rounded */
    __nv_bfloat16 *qkv16, *ac16;       /* bf16 precision: qkv (q, k before RoPE) and ac */
    __nv_bfloat16 *heads16;            /* bf16 precision: (3, B, H, n, DH) q, k (after RoPE), v
                                          per head for the tensor-core attention */
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
    /* topology mesh only, else NULL: */
    float *e;                          /* (B, L, d) the update (delta at full resolution) */
    float *mesh_mem, *mesh_k;          /* (S, B, L, d) slots after the write, (B, L, d) K(t+1) */
    float *mesh_w, *mesh_r;            /* (B, L, S) write and read weights */
    GpuLayerActs *layers;              /* n_loop */
} GpuIterActs;

/* The backward scratch (model.c's Scratch). */
typedef struct {
    float *stream[2], *core[2];        /* (B, L, d) */
    float *dh0, *dz, *ddelta, *dxn;    /* (B, L, d) */
    float *layer_dx2, *layer_dxn, *layer_datt;  /* (B, L, d) */
    float *layer_dqkv;                 /* (B, L, 3 d) */
    float *layer_dm;                   /* (B, L, F) */
    float *layer_dac;                  /* (B, L, 2 F); NULL in bf16 (the keep buffer) */
    float *rowdot;                     /* (B, H, L) */
    float *norm_partial;               /* (rmsnorm_partial_count(B L, d)) */
    double *scale_dot;                 /* most B L, B J g of any iteration */
    float *scale_float;                /* the same count */
    float *mesh_dmem, *mesh_de;        /* mesh: (S, B, L, d) slot gradients, (B, L, d) */
    float *mesh_dl;                    /* mesh: (2, B, L, S) router logit gradients */
    float *zeros;                      /* mesh: (B, L, d) zeros, the up-scaling's base */
} GpuScratch;

enum { BLAS_WORKSPACE_BYTES = 32 << 20 };

/* States on their way to the observer (cuda_observe.cu). */
enum { OBSERVE_SLOTS = 4 };
typedef struct {
    float *host[OBSERVE_SLOTS];          /* pinned, capacity[i] floats */
    size_t capacity[OBSERVE_SLOTS];
    cudaEvent_t done[OBSERVE_SLOTS];     /* the slot's copy is complete */
    CudaObserveEvent pending[OBSERVE_SLOTS]; /* data = host[slot] */
    int first, count;                    /* the ring of pending slots, oldest first */
} ObserveQueue;

/* What a captured pass depends on (cuda_graph.cu). */
typedef struct {
    int B, L, baked;                  /* baked: the pass's host value (graph_run) */
    const void *arena, *work, *keep;
    size_t arena_bytes, work_bytes, keep_bytes;
} GraphKey;

/* One pass's graph: the key of its last run, and the graph once captured. */
typedef struct {
    GraphKey key;
    int seen;                 /* key holds the last run's key */
    cudaGraphExec_t exec;     /* NULL until captured */
} GraphSlot;

struct CudaModel {
    SpiralConfig cfg;
    ParamLayout layout;
    CudaOptions options;
    cudaStream_t stream;
    cublasHandle_t blas;
    GemmContext gemm;                          /* blas, precision, bf16 work */
    int poison;

    float *params, *grads, *adam_m, *adam_v;   /* (n_params) each */
    __nv_bfloat16 *params16;                   /* (n_params) bf16 precision: the weights rounded
                                                  (by AdamW, or before a forward pass when
                                                  params16_stale) */
    int params16_stale;                        /* params changed since params16 was written */
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
    int *upload_host;                          /* pinned mirror of the device inputs, from
                                                  tokens to the end of rows_by_token */
    size_t upload_capacity;                    /* bytes */
    cudaEvent_t upload_done;                   /* the last upload has left upload_host */
    int positions_ready;                       /* token_pos, the iterations' positions
                                                  and the RoPE tables hold this layout's */
    int *tokens, *targets, *token_pos;         /* (B L), (B L), (L) */
    int *present, *token_start, *rows_by_token;  /* embedding backward, by token */
    int n_present;
    int *token_pos_host;                       /* (L) */
    float *token_cos, *token_sin;              /* (L, dh/2) */
    float *emb;                                /* (B, L, d) */
    GpuLayerActs *pre, *post, *loop_acts;      /* n_pre, n_post, T n_loop */
    GpuIterActs iters[SPIRAL_MAX_ITERS];
    const float *h_final;                      /* (B, L, d) */
    float *xn_final, *rstd_final;              /* (B, L, d) (NULL in bf16), (B, L) */
    __nv_bfloat16 *xn_final16;                 /* (B, L, d) bf16 precision: xn_final rounded */
    float *logits;                             /* (B, L, V) (NULL in bf16) */
    __nv_bfloat16 *logits16;                   /* (B, L, V) bf16 precision: the logits */
    double *row_loss, *row_lse;                /* (B L) */
    double *loss_sum;                          /* (1) */
    int loss_count;
    int logits_valid;                          /* logits hold the last forward's values */
    int fuse_loss;                             /* the pass being run: a training forward
                                                  writes the loss gradient over them */
    int gradient_ready;                        /* the last forward did: the backward
                                                  starts from it */
    GpuScratch scratch;
    ObserveQueue observe_queue;                /* observed states being copied */
    float *probs_dev, *probs_host;             /* (B, H, n, n) one layer's attention, observer only */
    size_t probs_capacity;
    CudaUpdateFn update_fn;                    /* cuda_model_set_update_hook, or NULL */
    void *update_user;
    const unsigned char *update_iterations;    /* (n_iters) the iterations it is called for;
                                                  NULL: every one */
    float *hook_e, *hook_e_host;               /* (rows, d) an update; host: twice (the
                                                  update and its original) */
    int *hook_flag, *hook_flag_host;           /* (rows) the rows the hook changed */
    size_t hook_rows;                          /* rows the four buffers hold */
    int hooked;                                /* the last forward ran with a hook */
    int *present_count;                        /* (1) device copy of n_present */
    GraphSlot forward_graph, backward_graph;   /* cuda_graph.cu */
    int graphs_failed;                         /* a capture failed: eager from then on */
    long graph_launches;                       /* passes run as graph launches */
    void *blas_workspace;                      /* (BLAS_WORKSPACE_BYTES) cuBLAS's */
};

/* Whether the model runs in bf16 precision: its products take bf16
 * operands, kept by the layers (GpuLayerActs' *16 views) and params16,
 * and attention runs on the tensor cores (cuda_attention_mma.cu; fp32 and
 * TF32 use cuda_attention.cu). */
static inline int rounded_products(const CudaModel *model) {
    return model->options.precision == CUDA_BF16;
}

/* The bf16 copy of weight tensor w (a view into model->params). */
static inline const __nv_bfloat16 *weight16(const CudaModel *model, const float *w) {
    return model->params16 + (w - model->params);
}


/* A pass of the model (its device work only, no host waits); arg as given
 * to graph_run. */
typedef int (*GraphPass)(CudaModel *model, const void *arg);
/* Runs pass on the model's stream, eagerly or through slot's CUDA graph
 * (captured on the second run with the same key, replayed after); baked:
 * the host value the pass bakes into its launches, part of the key. */
int graph_run(CudaModel *model, GraphSlot *slot, int baked, GraphPass pass, const void *arg);
/* Destroys a slot's graph. */
void graph_slot_free(GraphSlot *slot);

/* Queues a copy of device_data (event->B x rows x cols floats) for the
 * observer; the event is handed over later, in order, with data pointing
 * at the pinned copy (observe_queue_flush at the latest). */
int observe_queue_push(CudaModel *model, const CudaObserver *observer,
                       const CudaObserveEvent *event, const float *device_data);
/* Hands every pending state to the observer, oldest first. */
int observe_queue_flush(CudaModel *model, const CudaObserver *observer);
/* Forgets the pending states (a pass that failed). */
void observe_queue_drop(CudaModel *model);
void observe_queue_free(ObserveQueue *queue);

/* Lays out (growing it when needed) the device arena of activations and
 * backward scratch for a forward + backward pass at (B, L). Returns 0 or
 * -1 (spiral_error). */
int cuda_model_ensure_arena(CudaModel *model, int B, int L);

#endif
