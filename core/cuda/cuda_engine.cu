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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.cuh"
#include "cuda_engine.h"
#include "cuda_model.cuh"
#include "cuda_kernels.cuh"

extern "C" {
#include "error.h"
#include "safetensors_bytes.h"
#include "scale.h"
}


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
        GpuMeshWeights *mesh = &views->mesh[t];
        snprintf(name, sizeof name, "iter.%d.mesh.write", t);
        mesh->write = tensor_view(model, buffer, name);
        snprintf(name, sizeof name, "iter.%d.mesh.write_bias", t);
        mesh->write_bias = tensor_view(model, buffer, name);
        snprintf(name, sizeof name, "iter.%d.mesh.read", t);
        mesh->read = tensor_view(model, buffer, name);
        snprintf(name, sizeof name, "iter.%d.mesh.read_bias", t);
        mesh->read_bias = tensor_view(model, buffer, name);
        if (cfg->topology == TOPOLOGY_MESH &&
            (!mesh->write || !mesh->write_bias || !mesh->read || !mesh->read_bias))
            return spiral_error("cuda engine: iteration %d: mesh router tensors missing", t);
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
        return spiral_error("cuda engine: head dimension %d: the fused attention supports 2..128",
                            dh);
    model->cfg = *cfg;
    if (param_layout_build(&model->layout, cfg)) return -1;
    size_t bytes = model->layout.n_params * sizeof(float);
    CUDA_CHECK(cudaStreamCreate(&model->stream));
    CUDA_CHECK(cublasCreate(&model->blas));
    CUDA_CHECK(cublasSetStream(model->blas, model->stream));
    CUDA_CHECK(cublasSetMathMode(model->blas, model->options.precision == CUDA_FP32
                                                  ? CUBLAS_PEDANTIC_MATH
                                                  : CUBLAS_DEFAULT_MATH));
    /* a fixed cuBLAS workspace, so that captured products never allocate */
    CUDA_CHECK(cudaMalloc(&model->blas_workspace, BLAS_WORKSPACE_BYTES));
    CUDA_CHECK(cublasSetWorkspace(model->blas, model->blas_workspace, BLAS_WORKSPACE_BYTES));
    model->gemm.handle = model->blas;
    model->gemm.precision = model->options.precision;
    model->gemm.stream = model->stream;
    model->gemm.profile = profile_create();
    CUDA_CHECK(cudaMalloc(&model->params, bytes));
    CUDA_CHECK(cudaMalloc(&model->grads, bytes));
    CUDA_CHECK(cudaMalloc(&model->adam_m, bytes));
    CUDA_CHECK(cudaMalloc(&model->adam_v, bytes));
    CUDA_CHECK(cudaMemset(model->params, 0, bytes));
    CUDA_CHECK(cudaMemset(model->grads, 0, bytes));
    CUDA_CHECK(cudaMemset(model->adam_m, 0, bytes));
    CUDA_CHECK(cudaMemset(model->adam_v, 0, bytes));
    if (rounded_products(model))
        CUDA_CHECK(cudaMalloc(&model->params16, model->layout.n_params * sizeof(__nv_bfloat16)));
    model->params16_stale = 1;
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
    cudaFree(model->params16);
    cudaFree(model->tensor_end);
    cudaFree(model->tensor_decay);
    cudaFree(model->norm_partial);
    cudaFree(model->norm_total);
    cudaFree(model->arena);
    cudaFree(model->probs_dev);
    cudaFree(model->hook_e);
    cudaFree(model->hook_flag);
    free(model->hook_e_host);
    free(model->hook_flag_host);
    cudaFreeHost(model->probs_host);
    graph_slot_free(&model->forward_graph);
    graph_slot_free(&model->backward_graph);
    gemm_context_free(&model->gemm);
    if (model->blas) cublasDestroy(model->blas);
    cudaFree(model->blas_workspace);
    if (model->stream) cudaStreamDestroy(model->stream);
    free_weights(&model->w);
    free_weights(&model->dw);
    free(model->pre);
    free(model->post);
    free(model->loop_acts);
    free(model->host_ints);
    cudaFreeHost(model->upload_host);
    if (model->upload_done) cudaEventDestroy(model->upload_done);
    observe_queue_free(&model->observe_queue);
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
    model->params16_stale = 1;
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
    return 4 * model->layout.n_params * sizeof(float) +
           (model->params16 ? model->layout.n_params * sizeof(__nv_bfloat16) : 0) +
           model->arena_bytes +
           model->gemm.work_bytes + model->gemm.keep_bytes;
}

long cuda_model_graph_launches(const CudaModel *model) { return model->graph_launches; }

void cuda_model_profile_reset(CudaModel *model) { profile_reset(model->gemm.profile); }

int cuda_model_get_logits_rows(CudaModel *model, size_t first, size_t count, float *host) {
    size_t V = (size_t)model->cfg.vocab_size;
    if (!model->logits_valid)
        return spiral_error("cuda_model_get_logits_rows: no logits (no forward pass, a "
                            "training forward or the backward pass replaced them by their "
                            "gradient)");
    if (first + count > (size_t)model->B * model->L)
        return spiral_error("cuda_model_get_logits_rows: rows %zu..%zu, the last pass has %d",
                            first, first + count, model->B * model->L);
    CUDA_CHECK(cudaStreamSynchronize(model->stream));
    if (model->logits)
        return copy_buffer(host, model->logits + first * V, count * V, cudaMemcpyDeviceToHost,
                           "cuda_model_get_logits_rows: cudaMemcpy");
    /* bf16 precision: the bf16 logits widened on the host (exact) */
    size_t n = count * V;
    uint16_t *bits = (uint16_t *)malloc(n * sizeof(uint16_t) + 1);
    if (!bits) return spiral_error("cuda_model_get_logits_rows: out of memory (%zu logits)", n);
    if (cuda_status(cudaMemcpy(bits, model->logits16 + first * V, n * sizeof(uint16_t),
                               cudaMemcpyDeviceToHost),
                    "cuda_model_get_logits_rows: cudaMemcpy")) {
        free(bits);
        return -1;
    }
    for (size_t i = 0; i < n; i++) host[i] = bf16_to_float(bits[i]);
    free(bits);
    return 0;
}

int cuda_model_get_logits(CudaModel *model, float *host) {
    return cuda_model_get_logits_rows(model, 0, (size_t)model->B * model->L, host);
}
