/*
 * cuda_backward.cu: the CUDA engine's backward pass and optimizer step,
 * mirroring core/model.c and core/adamw.c (see cuda_engine.h).
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


/* ------------------------------------------------------------------------ */
/* Backward                                                                 */

static int zero(float *x, size_t count, cudaStream_t s) {
    CUDA_CHECK(cudaMemsetAsync(x, 0, count * sizeof(float), s));
    return 0;
}

/* layer_backward in bf16 precision: each product's output gradient is
 * rounded once by the kernel that computes it (dout by the layer after, as
 * dout16, or here into gc's keep buffer), its other operands are the
 * forward's bf16 activations and the rounded weights. With dx16 not NULL
 * (and accumulate 0), *dx16 gets dx rounded to bf16, in the keep buffer,
 * for the layer before. */
static int layer_backward_rounded(CudaModel *model, float *dx, int accumulate,
                                  const __nv_bfloat16 **dx16, GpuLayerWeights *dw,
                                  const float *dout, const __nv_bfloat16 *dout16,
                                  const GpuLayerActs *acts, const GpuLayerWeights *w) {
    const SpiralConfig *cfg = &model->cfg;
    const GpuScratch *sc = &model->scratch;
    int B = model->B, n = acts->n, d = cfg->d_model, f = cfg->d_ff, H = cfg->n_heads;
    int dh = d / H, M = B * n;
    cudaStream_t s = model->stream;
    GemmContext *gc = &model->gemm;
    size_t rows_d = (size_t)M * d;
    /* out = x2 + m w2^T */
    /* dm in bf16, over the fp32 scratch it would take (only the SwiGLU
     * backward reads it) */
    const __nv_bfloat16 *dy16 = dout16 ? dout16 : keep_bf16(gc, dout, rows_d);
    __nv_bfloat16 *dm16 = (__nv_bfloat16 *)sc->layer_dm;
    if (!dy16 ||
        linear_backward_rounded_out16(gc, M, d, f, dy16, weight16(model, w->w2), acts->m16,
                                      dm16, dw->w2))
        return -1;
    /* ac = xn2 [w1; w3]^T; dx2 = dout + the MLP's part, and its bf16 copy
     * for the next product */
    __nv_bfloat16 *dac16 = gemm_keep(gc, (size_t)M * 2 * f);
    if (!dac16 || swiglu_backward_bf16(dac16, dm16, acts->ac16, M, f, s) ||
        linear_backward_rounded(gc, M, 2 * f, d, dac16, weight16(model, w->w13), acts->xn2_16,
                                sc->layer_dxn, 0.0f, dw->w13))
        return -1;
    __nv_bfloat16 *dx2_16 = gemm_keep(gc, rows_d);
    if (!dx2_16 ||
        rmsnorm_backward_onto(sc->layer_dx2, dx2_16, dout, NULL, dw->mlp_norm, sc->norm_partial,
                              sc->layer_dxn, acts->x2, w->mlp_norm, acts->rstd2, M, d, s) ||
        /* x2 = x + att wo^T */
        linear_backward_rounded(gc, M, d, d, dx2_16, weight16(model, w->wo), acts->att16,
                                sc->layer_datt, 0.0f, dw->wo))
        return -1;
    /* qkv = RoPE(xn1 [wq; wk; wv]^T): the gradient rotated back and rounded
     * by the attention's own kernels, or by a pass of its own */
    __nv_bfloat16 *dqkv16 = gemm_keep(gc, 3 * rows_d);
    int unrotates = attention_mma_unrotates(dh);
    if (!dqkv16) return -1;
    profile_begin(gc->profile, PROFILE_ATTENTION_BACKWARD, s);
    if (attention_mma_backward_heads(gc, sc->layer_dqkv, unrotates ? dqkv16 : NULL, sc->rowdot,
                                     sc->layer_datt, acts->att16, acts->heads16, acts->lse,
                                     acts->rope_cos, acts->rope_sin, B, n, H, dh))
        return -1;
    profile_end(gc->profile, s);
    if ((!unrotates && rope_backward_bf16(dqkv16, sc->layer_dqkv, acts->rope_cos,
                                          acts->rope_sin, B, n, H, dh, s)) ||
        linear_backward_rounded(gc, M, 3 * d, d, dqkv16, weight16(model, w->wqkv), acts->xn1_16,
                                sc->layer_dxn, 0.0f, dw->wqkv))
        return -1;
    /* dx (+)= dx2 + the attention's part; its bf16 copy where the keep
     * buffer held dqkv16 (large enough: it does not move) */
    __nv_bfloat16 *rounded = NULL;
    if (dx16 && !(rounded = gemm_keep(gc, rows_d))) return -1;
    if (rmsnorm_backward_onto(dx, rounded, accumulate ? dx : sc->layer_dx2,
                              accumulate ? sc->layer_dx2 : NULL, dw->attn_norm, sc->norm_partial,
                              sc->layer_dxn, acts->x, w->attn_norm, acts->rstd1, M, d, s))
        return -1;
    if (dx16) *dx16 = rounded;
    return 0;
}

/* Backward of layer_forward: dx += dL/dx given dout (accumulate), or dx =
 * dL/dx (dx's contents ignored); weight gradients accumulate into dw. In
 * bf16 precision dout16 and dx16 pass the gradient's bf16 copy from layer
 * to layer (layer_backward_rounded); fp32 and TF32 ignore them. */
static int layer_backward(CudaModel *model, float *dx, int accumulate, const __nv_bfloat16 **dx16,
                          GpuLayerWeights *dw, const float *dout, const __nv_bfloat16 *dout16,
                          const GpuLayerActs *acts, const GpuLayerWeights *w) {
    if (rounded_products(model))
        return layer_backward_rounded(model, dx, accumulate, dx16, dw, dout, dout16, acts, w);
    const SpiralConfig *cfg = &model->cfg;
    const GpuScratch *sc = &model->scratch;
    int B = model->B, n = acts->n, d = cfg->d_model, f = cfg->d_ff, H = cfg->n_heads;
    int dh = d / H, M = B * n;
    cudaStream_t s = model->stream;
    GemmContext *gc = &model->gemm;
    size_t rows_d = (size_t)M * d;
    if (!accumulate && zero(dx, rows_d, s)) return -1;
    /* out = x2 + m w2^T */
    CUDA_CHECK(cudaMemcpyAsync(sc->layer_dx2, dout, rows_d * sizeof(float),
                               cudaMemcpyDeviceToDevice, s));
    if (linear_backward(gc, M, d, f, dout, w->w2, acts->m, sc->layer_dm, 0.0f, dw->w2) ||
        swiglu_backward(sc->layer_dac, sc->layer_dm, acts->ac, M, f, s) ||
        /* ac = xn2 [w1; w3]^T */
        linear_backward(gc, M, 2 * f, d, sc->layer_dac, w->w13, acts->xn2, sc->layer_dxn, 0.0f,
                        dw->w13) ||
        rmsnorm_backward(sc->layer_dx2, dw->mlp_norm, sc->norm_partial, sc->layer_dxn, acts->x2,
                         w->mlp_norm, acts->rstd2, M, d, s) ||
        /* x2 = x + att wo^T */
        vector_add(dx, sc->layer_dx2, rows_d, s) ||
        linear_backward(gc, M, d, d, sc->layer_dx2, w->wo, acts->att, sc->layer_datt, 0.0f,
                        dw->wo))
        return -1;
    profile_begin(gc->profile, PROFILE_ATTENTION_BACKWARD, s);
    if (attention_backward(sc->layer_dqkv, sc->rowdot, sc->layer_datt, acts->att, acts->qkv,
                           acts->lse, B, n, H, dh, s))
        return -1;
    profile_end(gc->profile, s);
    if (rope_apply(sc->layer_dqkv, acts->rope_cos, acts->rope_sin, B, n, H, dh, -1, s) ||
        /* qkv = xn1 [wq; wk; wv]^T */
        linear_backward(gc, M, 3 * d, d, sc->layer_dqkv, w->wqkv, acts->xn1, sc->layer_dxn, 0.0f,
                        dw->wqkv) ||
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
    const __nv_bfloat16 *cur16 = NULL; /* cur in bf16, when the layer after rounded it */
    for (int l = n_layers - 1; l >= 0; l--) {
        /* the first layer adds onto dx; the others write a fresh buffer,
         * and its bf16 copy for the layer before */
        float *target = l == 0 ? dx : pingpong[l % 2];
        const __nv_bfloat16 *target16 = NULL;
        profile_begin(model->gemm.profile, PROFILE_LAYER, model->stream);
        if (layer_backward(model, target, l == 0, l > 0 ? &target16 : NULL, &dw[l], cur, cur16,
                           &acts[l], &w[l]))
            return -1;
        cur16 = target16;
        profile_end(model->gemm.profile, model->stream);
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
    int residual = cfg->topology == TOPOLOGY_RESIDUAL, mesh = cfg->topology == TOPOLOGY_MESH;
    int difference = cfg->topology != TOPOLOGY_ANCHOR; /* delta = z~ - z */
    /* de = dL/de: dh_out itself (h(t+1) = base + e), or through the memory */
    const float *de = dh_out;
    if (mesh) {
        /* h(t+1) = S sum_b r_b m_b, m_b = m_b(t) + w_b e: sc->mesh_dmem becomes the
         * gradient of the slots before the write; m_0(0) = h(0) */
        if (mesh_backward(sc->mesh_de, sc->mesh_dmem, &model->dw.mesh[t], sc->mesh_dl, dh_out,
                          it->e, it->mesh_mem, it->mesh_w, it->mesh_r, &model->w.mesh[t], B, L,
                          d, cfg->mesh_slots, &model->gemm, s) ||
            (t == 0 && vector_add(dh0, sc->mesh_dmem, tokens_d, s)))
            return -1;
        de = sc->mesh_de;
    }
    if (it->full_resolution) {
        /* residual: h(t+1) = z~; anchor: h(t+1) = h(0) + z~; mesh: e = z~ - z;
         * z = h(t) */
        if (mesh ? vector_sub(dh_in, dh_in, de, tokens_d, s)
                 : !residual && vector_add(dh0, dh_out, tokens_d, s))
            return -1;
        return block_backward(model, dh_in, model->dw.loop, de, it->layers, model->w.loop,
                              cfg->n_loop, core_pingpong);
    }
    /* h(t+1) = base + shift(up(delta)) (mesh: the memory's input e) */
    if ((!mesh && vector_add(residual ? dh_in : dh0, dh_out, tokens_d, s)) ||
        zero(sc->ddelta, latents_d, s) ||
        upscale_backward(sc->ddelta, model->dw.up_alloc[t], sc->scale_dot, sc->scale_float,
                         de, difference ? it->delta : it->layers[cfg->n_loop - 1].out,
                         it->coef, model->w.up_alloc[t], geo, B, d, cfg->up == UP_ALLOC,
                         &model->gemm, s))
        return -1;
    /* delta = z~ - z (residual, mesh) or z~ (anchor) */
    if (difference ? vector_negate(sc->dz, sc->ddelta, latents_d, s) : zero(sc->dz, latents_d, s))
        return -1;
    if (block_backward(model, sc->dz, model->dw.loop, sc->ddelta, it->layers, model->w.loop,
                       cfg->n_loop, core_pingpong))
        return -1;
    return downscale_backward(dh_in, model->dw.down_score[t], sc->scale_dot, sc->scale_float,
                              sc->dz, it->h_in, it->alpha, model->w.down_score[t], geo, B, d,
                              cfg->down == DOWN_SELFAGG, &model->gemm, s);
}

/* Everything the backward enqueues (a GraphPass; arg unused). */
static int backward_pass(CudaModel *model, const void *arg) {
    const SpiralConfig *cfg = &model->cfg;
    const GpuScratch *sc = &model->scratch;
    int B = model->B, L = model->L, d = cfg->d_model, V = cfg->vocab_size, M = B * L;
    size_t tokens_d = (size_t)M * d;
    cudaStream_t s = model->stream;
    float *const pingpong[2] = {sc->core[0], sc->core[1]};
    /* loss = mean cross-entropy; logits = xn lm_head^T; xn = norm(h_final) */
    GemmContext *gc = &model->gemm;
    float scale = (float)(1.0 / model->loss_count);
    if (gc->precision == CUDA_BF16) {
        /* the gradient overwrites the bf16 logits (here, or already in a
         * training forward) and feeds both products */
        __nv_bfloat16 *dlogits16 = model->logits16;
        profile_begin(gc->profile, PROFILE_LOSS, s);
        if (!model->gradient_ready &&
            crossentropy_backward(dlogits16, model->row_lse, model->targets, M, V, scale, s))
            return -1;
        profile_end(gc->profile, s);
        if (linear_backward_rounded(gc, M, V, d, dlogits16, weight16(model, model->w.lm_head),
                                    model->xn_final16, sc->dxn, 0.0f, model->dw.lm_head))
            return -1;
    } else {
        float *dlogits = model->logits;
        profile_begin(gc->profile, PROFILE_LOSS, s);
        if (crossentropy_backward(dlogits, model->row_lse, model->targets, M, V, scale, s))
            return -1;
        profile_end(gc->profile, s);
        if (linear_backward(gc, M, V, d, dlogits, model->w.lm_head, model->xn_final, sc->dxn,
                            0.0f, model->dw.lm_head))
            return -1;
    }
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
    if (cfg->topology == TOPOLOGY_MESH &&
        zero(sc->mesh_dmem, (size_t)cfg->mesh_slots * tokens_d, s))
        return -1;
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
    /* at most min(V, M) distinct tokens; the count itself is read on the device */
    return embedding_backward(model->dw.tok_emb, dh, model->present, model->token_start,
                              model->rows_by_token, model->present_count, V < M ? V : M, d, s);
}

static int backward_inside(CudaModel *model) {
    if (model->hooked)
        return spiral_error("the last forward pass ran with an update hook: no backward");
    if (!(model->logits_valid || model->gradient_ready) || model->loss_count == 0)
        return spiral_error("no forward pass with targets to differentiate");
    /* baked: the loss scale 1 / loss_count (a kernel argument), and
     * whether the forward already wrote the loss gradient (negative) */
    int baked = model->gradient_ready ? -model->loss_count : model->loss_count;
    int status = graph_run(model, &model->backward_graph, baked, backward_pass, NULL);
    model->logits_valid = model->gradient_ready = 0;
    return status;
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
    profile_begin(model->gemm.profile, PROFILE_OPTIMIZER, model->stream);
    if (grad_sum_squares(model->norm_total, model->norm_partial, model->grads, n, model->stream))
        return spiral_error_prefix("cuda_model_clip_grad_norm");
    profile_end(model->gemm.profile, model->stream);
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

int cuda_model_scale_grads(CudaModel *model, float scale) {
    if (vector_scale(model->grads, scale, model->layout.n_params, model->stream))
        return spiral_error_prefix("cuda_model_scale_grads");
    return 0;
}

int cuda_model_adamw_step(CudaModel *model, const AdamWSettings *settings, long t) {
    double correction1 = 1 - pow(settings->beta1, (double)t);
    double correction2 = 1 - pow(settings->beta2, (double)t);
    profile_begin(model->gemm.profile, PROFILE_OPTIMIZER, model->stream);
    if (adamw_update(model->params, model->params16, model->adam_m, model->adam_v, model->grads,
                     model->tensor_end, model->tensor_decay, model->layout.n_tensors,
                     model->layout.n_params, (float)settings->beta1, (float)settings->beta2,
                     (float)settings->eps, (float)(settings->lr / correction1),
                     (float)(1 / sqrt(correction2)),
                     (float)(1 - settings->lr * settings->weight_decay), model->stream))
        return spiral_error_prefix("cuda_model_adamw_step");
    model->params16_stale = 0; /* AdamW wrote the rounded weights too */
    profile_end(model->gemm.profile, model->stream);
    return 0;
}
