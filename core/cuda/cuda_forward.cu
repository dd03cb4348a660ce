/*
 * cuda_forward.cu: the CUDA engine's forward pass, mirroring core/model.c
 * (see cuda_engine.h and cuda_model.cuh).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.cuh"
#include "cuda_engine.h"
#include "cuda_model.cuh"
#include "cuda_kernels.cuh"

extern "C" {
#include "error.h"
#include "scale.h"
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

/* Queues a (B, rows, cols) device state for the observer: copied to
 * pinned memory while the GPU goes on, handed over in order
 * (cuda_observe.cu). */
static int observe_state(CudaModel *model, const CudaObserver *observer, ObserveSite site,
                         int iteration, BlockKind block, int layer, int g, int rows,
                         const int *pos, const float *data) {
    if (!observer || !observer->fn) return 0;
    CudaObserveEvent event = {site, iteration, block, layer, g, model->B, rows,
                              model->cfg.d_model, pos, NULL, 0, NULL, 0};
    return observe_queue_push(model, observer, &event, data);
}

/* Recomputes layer acts' attention probabilities (B, H, n, n), or with the
 * observer's distances only their statistics (B, H, n, 2 + distances),
 * copies them to the host and hands them on as an OBSERVE_ATTENTION event. */
static int observe_attention(CudaModel *model, const CudaObserver *observer,
                             const GpuLayerActs *acts, BlockKind block, int layer, int iteration,
                             int g, const int *pos) {
    int B = model->B, n = acts->n, H = model->cfg.n_heads, dh = model->cfg.d_model / H;
    int with_stats = observer->n_distances > 0, K = 2 + observer->n_distances;
    /* bf16 precision: q, k (after RoPE) and v as the attention read them,
     * from its heads, in the backward's scratch (free during a forward) */
    const float *qkv = acts->qkv;
    if (rounded_products(model)) {
        if (attention_mma_unpack(model->scratch.layer_dqkv, acts->heads16, B, n, H, dh,
                                 model->stream))
            return -1;
        qkv = model->scratch.layer_dqkv;
    }
    /* the states observed before this layer's attention go first */
    if (observe_queue_flush(model, observer)) return -1;
    /* statistics: (B, H, n, K) floats, then the n positions */
    size_t count = with_stats ? (size_t)B * H * n * K + (size_t)n : (size_t)B * H * n * n;
    if (with_stats && observer->n_distances > ATTENTION_MAX_DISTANCES)
        return spiral_error("cuda engine: %d attention distances, at most %d",
                            observer->n_distances, ATTENTION_MAX_DISTANCES);
    if (count > model->probs_capacity) {
        cudaFree(model->probs_dev);
        cudaFreeHost(model->probs_host);
        model->probs_dev = NULL;
        model->probs_host = NULL;
        model->probs_capacity = 0;
        CUDA_CHECK(cudaMalloc(&model->probs_dev, count * sizeof(float)));
        CUDA_CHECK(cudaMallocHost(&model->probs_host, count * sizeof(float)));
        model->probs_capacity = count;
    }
    if (with_stats) {
        AttentionDistances distances = {observer->n_distances, {0}};
        for (int k = 0; k < observer->n_distances; k++)
            distances.distance[k] = observer->distances[k];
        size_t stats_count = (size_t)B * H * n * K;
        int *pos_dev = (int *)(model->probs_dev + stats_count);
        CUDA_CHECK(cudaMemcpyAsync(pos_dev, pos, (size_t)n * sizeof(int), cudaMemcpyHostToDevice,
                                   model->stream));
        if (attention_stats(model->probs_dev, qkv, acts->lse, pos_dev, B, n, H, dh,
                            &distances, model->stream))
            return -1;
        CUDA_CHECK(cudaMemcpyAsync(model->probs_host, model->probs_dev,
                                   stats_count * sizeof(float), cudaMemcpyDeviceToHost,
                                   model->stream));
        CUDA_CHECK(cudaStreamSynchronize(model->stream));
        CudaObserveEvent event = {OBSERVE_ATTENTION, iteration, block, layer, g, B, n, n, pos,
                                  NULL, H, model->probs_host, K};
        observer->fn(observer->user, &event);
        return 0;
    }
    if (attention_probs(model->probs_dev, qkv, acts->lse, B, n, H, dh, model->stream))
        return -1;
    CUDA_CHECK(cudaMemcpyAsync(model->probs_host, model->probs_dev, count * sizeof(float),
                               cudaMemcpyDeviceToHost, model->stream));
    CUDA_CHECK(cudaStreamSynchronize(model->stream));
    CudaObserveEvent event = {OBSERVE_ATTENTION, iteration, block, layer, g, B, n, n, pos,
                              model->probs_host, H};
    observer->fn(observer->user, &event);
    return 0;
}

/* layer_forward in bf16 precision: the products take the bf16 activations
 * the kernels write and the rounded weights; attention on the tensor
 * cores. */
static int layer_forward_rounded(CudaModel *model, GpuLayerActs *acts, const GpuLayerWeights *w,
                                 const float *x) {
    const SpiralConfig *cfg = &model->cfg;
    int B = model->B, n = acts->n, d = cfg->d_model, f = cfg->d_ff, H = cfg->n_heads;
    int dh = d / H, M = B * n;
    cudaStream_t s = model->stream;
    GemmContext *gc = &model->gemm;
    /* each norm also copies its input into the residual sum that follows:
     * x2 starts as x, out as x2 */
    if (rmsnorm_forward_bf16(acts->xn1_16, acts->rstd1, acts->x2, x, w->attn_norm, M, d,
                             cfg->norm_eps, s) ||
        gemm_bf16_out16(gc, 0, 1, M, 3 * d, d, acts->xn1_16, d, weight16(model, w->wqkv), d,
                        acts->qkv16, 3 * d))
        return -1;
    /* RoPE on the way into the heads the attention reads, forward and backward */
    profile_begin(gc->profile, PROFILE_PACK, s);
    if (attention_mma_pack(acts->heads16, acts->qkv16, acts->rope_cos, acts->rope_sin, B, n, H,
                           dh, s))
        return -1;
    profile_end(gc->profile, s);
    profile_begin(gc->profile, PROFILE_ATTENTION_FORWARD, s);
    if (attention_mma_forward_heads(NULL, acts->att16, acts->lse, acts->heads16, B, n, H, dh, s))
        return -1;
    profile_end(gc->profile, s);
    /* x2 += att wo^T; out = x2, then out += m w2^T */
    if (gemm_bf16(gc, 0, 1, M, d, d, 1.0f, acts->att16, d, weight16(model, w->wo), d, 1.0f,
                  acts->x2, d) ||
        rmsnorm_forward_bf16(acts->xn2_16, acts->rstd2, acts->out, acts->x2, w->mlp_norm, M, d,
                             cfg->norm_eps, s) ||
        gemm_bf16_out16(gc, 0, 1, M, 2 * f, d, acts->xn2_16, d, weight16(model, w->w13), d,
                        acts->ac16, 2 * f) ||
        swiglu_forward_bf16(acts->m16, acts->ac16, M, f, s))
        return -1;
    return gemm_bf16(gc, 0, 1, M, d, f, 1.0f, acts->m16, f, weight16(model, w->w2), f, 1.0f,
                     acts->out, d);
}

/* One pre-norm layer: x2 = x + Attn(RMSNorm(x)); out = x2 + MLP(RMSNorm(x2)).
 * x (B, n, d) -> acts->out (B, n, d). */
static int layer_forward(CudaModel *model, GpuLayerActs *acts, const GpuLayerWeights *w,
                         const float *x) {
    acts->x = x;
    if (rounded_products(model)) return layer_forward_rounded(model, acts, w, x);
    const SpiralConfig *cfg = &model->cfg;
    int B = model->B, n = acts->n, d = cfg->d_model, f = cfg->d_ff, H = cfg->n_heads;
    int dh = d / H, M = B * n;
    cudaStream_t s = model->stream;
    GemmContext *gc = &model->gemm;
    size_t rows_d = (size_t)M * d;
    if (rmsnorm_forward(acts->xn1, acts->rstd1, x, w->attn_norm, M, d, cfg->norm_eps, s) ||
        /* qkv (M, 3 d) = xn1 [wq; wk; wv]^T */
        gemm(gc, 0, 1, M, 3 * d, d, 1.0f, acts->xn1, d, w->wqkv, d, 0.0f, acts->qkv,
             3 * d) ||
        rope_apply(acts->qkv, acts->rope_cos, acts->rope_sin, B, n, H, dh, 1, s))
        return -1;
    profile_begin(gc->profile, PROFILE_ATTENTION_FORWARD, s);
    if (attention_forward(acts->att, acts->lse, acts->qkv, B, n, H, dh, s)) return -1;
    profile_end(gc->profile, s);
    /* x2 = x + att wo^T */
    CUDA_CHECK(cudaMemcpyAsync(acts->x2, x, rows_d * sizeof(float), cudaMemcpyDeviceToDevice, s));
    if (gemm(gc, 0, 1, M, d, d, 1.0f, acts->att, d, w->wo, d, 1.0f, acts->x2, d) ||
        rmsnorm_forward(acts->xn2, acts->rstd2, acts->x2, w->mlp_norm, M, d, cfg->norm_eps, s) ||
        /* ac (M, 2 F) = xn2 [w1; w3]^T */
        gemm(gc, 0, 1, M, 2 * f, d, 1.0f, acts->xn2, d, w->w13, d, 0.0f, acts->ac,
             2 * f) ||
        swiglu_forward(acts->m, acts->ac, M, f, s))
        return -1;
    /* out = x2 + m w2^T */
    CUDA_CHECK(cudaMemcpyAsync(acts->out, acts->x2, rows_d * sizeof(float),
                               cudaMemcpyDeviceToDevice, s));
    return gemm(gc, 0, 1, M, d, f, 1.0f, acts->m, f, w->w2, f, 1.0f, acts->out, d);
}

/* Runs n_layers layers on x; *out gets the output (x if n_layers == 0). */
static int block_forward(CudaModel *model, const float **out, GpuLayerActs *acts,
                         const GpuLayerWeights *w, int n_layers, const float *x, BlockKind kind,
                         int iteration, int g, const int *pos_host,
                         const CudaObserver *observer) {
    for (int l = 0; l < n_layers; l++) {
        profile_begin(model->gemm.profile, PROFILE_LAYER, model->stream);
        if (layer_forward(model, &acts[l], &w[l], x)) return -1;
        profile_end(model->gemm.profile, model->stream);
        if (observer && observer->fn && observer->attention &&
            observe_attention(model, observer, &acts[l], kind, l, iteration, g, pos_host))
            return -1;
        x = acts[l].out;
        if (observe_state(model, observer, OBSERVE_LAYER_OUT, iteration, kind, l, g, acts[l].n,
                          pos_host, x))
            return -1;
    }
    *out = x;
    return 0;
}

/* The state update of iteration t under topology mesh, given delta:
 * e = shift(up(delta)) (delta itself at full resolution), h_out = h(t) + e
 * (z~ at full resolution), then the memory's write and read (mesh.h);
 * each slot is observed after the write. */
static int mesh_update(CudaModel *model, int t, const float *h_in, const float *h0,
                       const float *z_out, const float *delta, const CudaObserver *observer) {
    const SpiralConfig *cfg = &model->cfg;
    GpuIterActs *it = &model->iters[t];
    int B = model->B, L = model->L, d = cfg->d_model, S = cfg->mesh_slots;
    size_t tokens_d = (size_t)B * L * d;
    GpuGeometry geo = {it->geo.L, it->geo.g, it->geo.w, it->geo.s, it->geo.J};
    cudaStream_t s = model->stream;
    if (it->full_resolution) {
        /* e = delta (it->e is it->delta); h(t) + e = z~ */
        CUDA_CHECK(cudaMemcpyAsync(it->h_out, z_out, tokens_d * sizeof(float),
                                   cudaMemcpyDeviceToDevice, s));
    } else {
        if (upscale_forward(it->e, it->coef, model->scratch.zeros, delta, model->w.up_alloc[t],
                            geo, B, d, cfg->up == UP_ALLOC, &model->gemm, s))
            return -1;
        CUDA_CHECK(cudaMemcpyAsync(it->h_out, h_in, tokens_d * sizeof(float),
                                   cudaMemcpyDeviceToDevice, s));
        if (vector_add(it->h_out, it->e, tokens_d, s)) return -1;
    }
    const GpuIterActs *before = t > 0 ? &model->iters[t - 1] : NULL;
    if (mesh_forward(it->h_out, it->mesh_mem, it->mesh_k, it->mesh_w, it->mesh_r, it->e,
                     before ? before->mesh_mem : NULL, h0, before ? before->mesh_k : NULL,
                     &model->w.mesh[t], B, L, d, S, s))
        return -1;
    for (int b = 0; b < S; b++)
        if (observe_state(model, observer, OBSERVE_MEMORY, t, BLOCK_LOOP, b, 1, L,
                          model->token_pos_host, it->mesh_mem + b * tokens_d))
            return -1;
    return 0;
}

/* Makes the update hook's buffers hold rows rows of d. */
static int hook_reserve(CudaModel *model, size_t rows, int d) {
    if (rows <= model->hook_rows) return 0;
    cudaFree(model->hook_e);
    cudaFree(model->hook_flag);
    free(model->hook_e_host);
    free(model->hook_flag_host);
    model->hook_e = NULL;
    model->hook_flag = NULL;
    model->hook_rows = 0;
    model->hook_e_host = (float *)malloc(2 * rows * d * sizeof(float));
    model->hook_flag_host = (int *)malloc(rows * sizeof(int));
    if (!model->hook_e_host || !model->hook_flag_host)
        return spiral_error("cuda engine: out of memory for an update hook's rows");
    CUDA_CHECK(cudaMalloc(&model->hook_e, rows * d * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&model->hook_flag, rows * sizeof(int)));
    model->hook_rows = rows;
    return 0;
}

/* Iteration t under the update hook, after h_out = base + e was computed:
 * e (B, L, d), the update (z~ - h(t) in the residual full-resolution
 * shortcut, else shift(up(delta)) as the up-scaling adds it), goes to the
 * host, the hook may change it, and the rows it changed become base + e'
 * (core/model.c's hooked update); the others keep h_out as computed. An
 * iteration the hook is not called for keeps it too, with no copy. */
static int hooked_update(CudaModel *model, int t, float *h_out, const float *base,
                         const float *h_in, const float *z_out, const float *delta) {
    const SpiralConfig *cfg = &model->cfg;
    GpuIterActs *it = &model->iters[t];
    int B = model->B, L = model->L, d = cfg->d_model;
    size_t rows = (size_t)B * L, tokens_d = rows * d;
    cudaStream_t s = model->stream;
    if (model->update_iterations && !model->update_iterations[t]) return 0; /* as unhooked */
    if (hook_reserve(model, rows, d)) return -1;
    float *e = model->hook_e, *host = model->hook_e_host, *original = host + tokens_d;
    if (it->full_resolution && cfg->topology == TOPOLOGY_RESIDUAL) {
        if (vector_sub(e, z_out, h_in, tokens_d, s)) return -1;
    } else {
        GpuGeometry geo = {it->geo.L, it->geo.g, it->geo.w, it->geo.s, it->geo.J};
        int use_alloc = !it->full_resolution && cfg->up == UP_ALLOC;
        if (upscale_forward(e, it->coef, NULL, delta, model->w.up_alloc[t], geo, B, d, use_alloc,
                            &model->gemm, s))
            return -1;
    }
    CUDA_CHECK(cudaMemcpyAsync(host, e, tokens_d * sizeof(float), cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    memcpy(original, host, tokens_d * sizeof(float));
    model->update_fn(model->update_user, t, host, B, L, d);
    size_t changed = 0;
    for (size_t r = 0; r < rows; r++) {
        model->hook_flag_host[r] = memcmp(host + r * d, original + r * d, d * sizeof(float)) != 0;
        changed += model->hook_flag_host[r];
    }
    if (changed == 0) return 0;
    CUDA_CHECK(cudaMemcpyAsync(e, host, tokens_d * sizeof(float), cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaMemcpyAsync(model->hook_flag, model->hook_flag_host, rows * sizeof(int),
                               cudaMemcpyHostToDevice, s));
    return rows_add_where(h_out, base, e, model->hook_flag, rows, d, s);
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
        return model->update_fn ? hooked_update(model, t, it->h_out, h_in, h_in, z_out, NULL) : 0;
    }
    /* delta = z~ - z (residual, mesh) or z~ (anchor) */
    const float *delta = z_out;
    if (cfg->topology != TOPOLOGY_ANCHOR) {
        if (vector_sub(it->delta, z_out, z, (size_t)B * J * d, s)) return -1;
        delta = it->delta;
    }
    if (cfg->topology == TOPOLOGY_MESH) {
        if (mesh_update(model, t, h_in, h0, z_out, delta, observer)) return -1;
        *h_next = it->h_out;
        return 0;
    }
    const float *base = cfg->topology == TOPOLOGY_RESIDUAL ? h_in : h0;
    int use_alloc = !it->full_resolution && cfg->up == UP_ALLOC;
    if (upscale_forward(it->h_out, it->coef, base, delta, model->w.up_alloc[t], geo, B, d,
                        use_alloc, &model->gemm, s))
        return -1;
    *h_next = it->h_out;
    return model->update_fn ? hooked_update(model, t, it->h_out, base, h_in, z_out, delta) : 0;
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

/* Where device input p (a view between model->tokens and the end of
 * model->rows_by_token) lies in the pinned mirror upload_host. */
static int *mirror_of(CudaModel *model, const int *p) {
    return (int *)((char *)model->upload_host + ((const char *)p - (const char *)model->tokens));
}

/* Uploads tokens, targets and the token groups in one asynchronous copy
 * from the pinned mirror of their device region (no wait for the GPU: the
 * copy runs after the work already queued on the stream). The positions
 * and the RoPE tables of every position set depend only on the layout:
 * they are built again only when it changes. */
static int upload_inputs(CudaModel *model, const int *tokens, const int *targets) {
    const SpiralConfig *cfg = &model->cfg;
    int B = model->B, L = model->L, M = B * L, dh = cfg->d_model / cfg->n_heads;
    cudaStream_t s = model->stream;
    /* the previous upload has left the mirror (long done in a training loop) */
    CUDA_CHECK(cudaEventSynchronize(model->upload_done));
    int *target_host = mirror_of(model, model->targets);
    model->loss_count = 0;
    for (int i = 0; i < M; i++) {
        target_host[i] = targets ? targets[i] : -1;
        if (target_host[i] >= 0) model->loss_count++;
    }
    memcpy(mirror_of(model, model->tokens), tokens, (size_t)M * sizeof(int));
    model->n_present = group_rows_by_token(mirror_of(model, model->present),
                                           mirror_of(model, model->token_start),
                                           mirror_of(model, model->rows_by_token), tokens, M,
                                           cfg->vocab_size);
    if (model->n_present < 0) return spiral_error("cuda engine: out of memory (token groups)");
    *mirror_of(model, model->present_count) = model->n_present;
    if (!model->positions_ready)
        for (int i = 0; i < L; i++)
            model->token_pos_host[i] = mirror_of(model, model->token_pos)[i] = i;
    size_t bytes = (size_t)((char *)(model->rows_by_token + M) - (char *)model->tokens);
    CUDA_CHECK(cudaMemcpyAsync(model->tokens, model->upload_host, bytes, cudaMemcpyHostToDevice,
                               s));
    CUDA_CHECK(cudaEventRecord(model->upload_done, s));
    if (model->positions_ready) return 0;
    if (rope_table(model->token_cos, model->token_sin, model->token_pos, L, dh, cfg->rope_base, s))
        return -1;
    for (int t = 0; t < cfg->n_iters; t++) {
        GpuIterActs *it = &model->iters[t];
        chunk_positions(it->pos_host, &it->geo);
        CUDA_CHECK(cudaMemcpyAsync(it->pos, it->pos_host, (size_t)it->geo.J * sizeof(int),
                                   cudaMemcpyHostToDevice, s));
        if (rope_table(it->rope_cos, it->rope_sin, it->pos, it->geo.J, dh, cfg->rope_base, s))
            return -1;
    }
    model->positions_ready = 1;
    return 0;
}

/* logits (M, V) = xn lm_head^T, xn = RMSNorm(h) (B, L, d); in bf16 in
 * bf16 precision (logits16). */
static int head_logits(CudaModel *model, const float *h) {
    const SpiralConfig *cfg = &model->cfg;
    int d = cfg->d_model, V = cfg->vocab_size, M = model->B * model->L;
    cudaStream_t s = model->stream;
    if (rounded_products(model))
        return rmsnorm_forward_bf16(model->xn_final16, model->rstd_final, NULL, h,
                                    model->w.final_norm, M, d, cfg->norm_eps, s) ||
               gemm_bf16_out16(&model->gemm, 0, 1, M, V, d, model->xn_final16, d,
                               weight16(model, model->w.lm_head), d, model->logits16, V);
    return rmsnorm_forward(model->xn_final, model->rstd_final, h, model->w.final_norm, M, d,
                           cfg->norm_eps, s) ||
           gemm(&model->gemm, 0, 1, M, V, d, 1.0f, model->xn_final, d, model->w.lm_head, d,
                0.0f, model->logits, V);
}

/* Everything the forward enqueues after the inputs are uploaded: from the
 * embedding to the logits and, with targets, the loss sums (a GraphPass;
 * arg: the observer or NULL). */
static int forward_pass(CudaModel *model, const void *arg) {
    const CudaObserver *observer = (const CudaObserver *)arg;
    const SpiralConfig *cfg = &model->cfg;
    int d = cfg->d_model, V = cfg->vocab_size, B = model->B, L = model->L, M = B * L;
    cudaStream_t s = model->stream;
    if (cfg->topology == TOPOLOGY_MESH)
        CUDA_CHECK(cudaMemsetAsync(model->scratch.zeros, 0, (size_t)M * d * sizeof(float), s));
    if (embedding_forward(model->emb, model->tokens, model->w.tok_emb, M, d, s)) return -1;
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
        head_logits(model, h))
        return -1;
    profile_begin(model->gemm.profile, PROFILE_LOSS, s);
    int status;
    if (model->fuse_loss)
        status = crossentropy_train(model->loss_sum, model->row_loss, model->row_lse,
                                    model->logits16, model->targets, M, V,
                                    (float)(1.0 / model->loss_count), s);
    else if (model->logits16)
        status = crossentropy_forward(model->loss_sum, model->row_loss, model->row_lse,
                                      model->logits16, model->targets, M, V, s);
    else
        status = crossentropy_forward(model->loss_sum, model->row_loss, model->row_lse,
                                      model->logits, model->targets, M, V, s);
    if (status) return -1;
    profile_end(model->gemm.profile, s);
    return 0;
}

/* train: fuse the loss gradient into the cross-entropy pass where the
 * precision and vocabulary allow (crossentropy_train). */
static int forward_inside(CudaModel *model, const int *tokens, const int *targets, int B, int L,
                          const CudaObserver *observer, double *loss, int train) {
    cudaStream_t s = model->stream;
    if (check_inputs(model, tokens, targets, B, L) || cuda_model_ensure_arena(model, B, L) ||
        upload_inputs(model, tokens, targets))
        return -1;
    model->fuse_loss = train && targets && !observer && !model->update_fn && model->logits16 &&
                       model->loss_count > 0 && crossentropy_train_supports(model->cfg.vocab_size);
    /* bf16 precision: the weights rounded once after they change (AdamW
     * rounds them itself), outside the captured pass */
    if (model->params16 && model->params16_stale) {
        if (round_bf16(model->params16, model->params, model->layout.n_params, s)) return -1;
        model->params16_stale = 0;
    }
    model->hooked = model->update_fn != NULL;
    if (observer || model->update_fn) { /* eagerly: host work inside the pass */
        int status = forward_pass(model, observer);
        if (status == 0 && observer) status = observe_queue_flush(model, observer);
        if (status) {
            observe_queue_drop(model);
            return -1;
        }
    } else {
        /* baked: whether there are targets, and a fused pass's loss scale */
        int baked = !targets ? 0 : model->fuse_loss ? 2 + model->loss_count : 1;
        if (graph_run(model, &model->forward_graph, baked, forward_pass, NULL)) return -1;
    }
    model->logits_valid = !model->fuse_loss;
    model->gradient_ready = model->fuse_loss;
    if (loss) {
        double sum = 0;
        CUDA_CHECK(cudaMemcpyAsync(&sum, model->loss_sum, sizeof(double), cudaMemcpyDeviceToHost, s));
        CUDA_CHECK(cudaStreamSynchronize(s));
        *loss = model->loss_count ? sum / model->loss_count : 0.0;
    }
    return 0;
}

int cuda_model_set_update_hook(CudaModel *model, CudaUpdateFn fn, void *user,
                               const unsigned char *iterations) {
    if (fn && model->cfg.topology == TOPOLOGY_MESH)
        return spiral_error("cuda engine: interventions on the updates are not implemented for "
                            "the mesh topology on the GPU (run them on the CPU)");
    model->update_fn = fn;
    model->update_user = user;
    model->update_iterations = fn ? iterations : NULL;
    return 0;
}

int cuda_model_forward(CudaModel *model, const int *tokens, const int *targets, int B, int L,
                       const CudaObserver *observer, double *loss) {
    model->logits_valid = model->gradient_ready = 0;
    if (forward_inside(model, tokens, targets, B, L, observer, loss, 0))
        return spiral_error_prefix("cuda_model_forward");
    return 0;
}

int cuda_model_forward_train(CudaModel *model, const int *tokens, const int *targets, int B,
                             int L, double *loss) {
    model->logits_valid = model->gradient_ready = 0;
    if (forward_inside(model, tokens, targets, B, L, NULL, loss, 1))
        return spiral_error_prefix("cuda_model_forward_train");
    return 0;
}
