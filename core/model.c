/*
 * model.c: forward and backward of the whole backbone (see model.h).
 *
 * Layout of the work: model_forward walks embedding -> prelude -> T
 * iterations (the update e: down-scale, shared core, up-scale + shift;
 * then the topology's state update, mesh.c for mesh) -> coda ->
 * final norm -> head -> cross-entropy, saving every intermediate in the
 * arena. model_backward walks the same path in reverse. Because every layer
 * backward accumulates into the gradient buffer, the shared core's gradient
 * is the sum over iterations without any special code. Where the
 * activations and the backward scratch live: model_memory.c.
 */
#include "model.h"
#include "model_memory.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "layers.h"
#include "vec.h"

/* ------------------------------------------------------------------------ */
/* Weights                                                                  */

/* Pointer to the tensor `name` inside buffer, or NULL if the layout lacks it. */
static real *tensor_view(const Model *model, real *buffer, const char *name) {
    int index = param_layout_find(&model->layout, name);
    return index < 0 ? NULL : buffer + model->layout.tensors[index].offset;
}

/* Pointer to tensor "<block>.<l>.<suffix>" inside buffer. */
static real *layer_view(const Model *model, real *buffer, const char *block, int l,
                        const char *suffix) {
    char name[PARAM_NAME_CAP];
    snprintf(name, sizeof name, "%s.%d.%s", block, l, suffix);
    return tensor_view(model, buffer, name);
}

/* Binds the nine views of layer "<block>.<l>.". */
static void bind_layer(LayerWeights *lw, const Model *model, real *buffer, const char *block,
                       int l) {
    lw->attn_norm = layer_view(model, buffer, block, l, "attn_norm.weight");
    lw->wq = layer_view(model, buffer, block, l, "attn.wq.weight");
    lw->wk = layer_view(model, buffer, block, l, "attn.wk.weight");
    lw->wv = layer_view(model, buffer, block, l, "attn.wv.weight");
    lw->wo = layer_view(model, buffer, block, l, "attn.wo.weight");
    lw->mlp_norm = layer_view(model, buffer, block, l, "mlp_norm.weight");
    lw->w1 = layer_view(model, buffer, block, l, "mlp.w1.weight");
    lw->w3 = layer_view(model, buffer, block, l, "mlp.w3.weight");
    lw->w2 = layer_view(model, buffer, block, l, "mlp.w2.weight");
}

void model_bind_weights(ModelWeights *views, const Model *model, real *buffer) {
    const SpiralConfig *cfg = &model->cfg;
    char name[PARAM_NAME_CAP];
    memset(views, 0, sizeof *views);
    views->tok_emb = tensor_view(model, buffer, "tok_emb.weight");
    views->final_norm = tensor_view(model, buffer, "final_norm.weight");
    views->lm_head = cfg->tie_embeddings ? views->tok_emb
                                         : tensor_view(model, buffer, "lm_head.weight");
    views->pre = calloc((size_t)cfg->n_pre + 1, sizeof(LayerWeights));
    views->loop = calloc((size_t)cfg->n_loop + 1, sizeof(LayerWeights));
    views->post = calloc((size_t)cfg->n_post + 1, sizeof(LayerWeights));
    if (!views->pre || !views->loop || !views->post) return; /* model_build checks */
    for (int l = 0; l < cfg->n_pre; l++) bind_layer(&views->pre[l], model, buffer, "pre", l);
    for (int l = 0; l < cfg->n_loop; l++) bind_layer(&views->loop[l], model, buffer, "loop", l);
    for (int l = 0; l < cfg->n_post; l++) bind_layer(&views->post[l], model, buffer, "post", l);
    for (int t = 0; t < cfg->n_iters; t++) {
        snprintf(name, sizeof name, "iter.%d.down.score", t);
        views->down_score[t] = tensor_view(model, buffer, name);
        snprintf(name, sizeof name, "iter.%d.up.alloc", t);
        views->up_alloc[t] = tensor_view(model, buffer, name);
        MeshWeights *mesh = &views->mesh[t];
        snprintf(name, sizeof name, "iter.%d.mesh.write", t);
        mesh->write = tensor_view(model, buffer, name);
        snprintf(name, sizeof name, "iter.%d.mesh.write_bias", t);
        mesh->write_bias = tensor_view(model, buffer, name);
        snprintf(name, sizeof name, "iter.%d.mesh.read", t);
        mesh->read = tensor_view(model, buffer, name);
        snprintf(name, sizeof name, "iter.%d.mesh.read_bias", t);
        mesh->read_bias = tensor_view(model, buffer, name);
    }
}

void model_free_weights(ModelWeights *views) {
    free(views->pre);
    free(views->loop);
    free(views->post);
    memset(views, 0, sizeof *views);
}

int model_build(Model *model, const SpiralConfig *cfg) {
    memset(model, 0, sizeof *model);
    if (config_validate(cfg)) return -1;
    model->cfg = *cfg;
    if (param_layout_build(&model->layout, cfg)) return -1;
    model->params = calloc(model->layout.n_params, sizeof(real));
    model->grads = calloc(model->layout.n_params, sizeof(real));
    model->pre = calloc((size_t)cfg->n_pre + 1, sizeof(LayerActs));
    model->post = calloc((size_t)cfg->n_post + 1, sizeof(LayerActs));
    model->loop_acts = calloc((size_t)cfg->n_iters * cfg->n_loop, sizeof(LayerActs));
    if (!model->params || !model->grads || !model->pre || !model->post || !model->loop_acts) {
        size_t n_params = model->layout.n_params;  /* model_free clears the layout */
        model_free(model);
        return spiral_error("out of memory allocating a model of %zu parameters (%.1f GB for "
                            "parameters and gradients)", n_params,
                            2.0 * (double)n_params * sizeof(real) / 1e9);
    }
    model_bind_weights(&model->w, model, model->params);
    model_bind_weights(&model->dw, model, model->grads);
    if (!model->w.pre || !model->w.loop || !model->w.post || !model->dw.pre ||
        !model->dw.loop || !model->dw.post) {
        model_free(model);
        return spiral_error("out of memory binding model weights");
    }
    for (int t = 0; t < cfg->n_iters; t++)
        model->iters[t].layers = model->loop_acts + (size_t)t * cfg->n_loop;
    return 0;
}

void model_free(Model *model) {
    free(model->params);
    free(model->grads);
    model_free_weights(&model->w);
    model_free_weights(&model->dw);
    free(model->pre);
    free(model->post);
    free(model->loop_acts);
    free(model->arena);
    free(model->int_arena);
    free(model->scratch);
    free(model->hook_buffers);
    param_layout_free(&model->layout);
    memset(model, 0, sizeof *model);
}

void model_zero_grad(Model *model) {
    vec_zero(model->grads, model->layout.n_params);
}

/* ------------------------------------------------------------------------ */
/* Forward                                                                  */

static void observe(const Observer *observer, ObserveEvent event) {
    if (observer && observer->fn) observer->fn(observer->user, &event);
}

/* One pre-norm layer: x2 = x + Attn(RMSNorm(x)); out = x2 + MLP(RMSNorm(x2)).
 * x (B, n, d) -> acts->out (B, n, d). */
static void layer_forward(LayerActs *acts, const LayerWeights *w, const real *x,
                          const SpiralConfig *cfg, int B) {
    int n = acts->n, d = cfg->d_model, f = cfg->d_ff, H = cfg->n_heads, dh = d / H;
    int M = B * n;
    size_t rows_d = (size_t)M * d;
    acts->x = (real *)x;
    rmsnorm_forward(acts->xn1, acts->rstd1, x, w->attn_norm, M, d, cfg->norm_eps);
    real *const qkv[3] = {acts->q, acts->k, acts->v};
    const real *const w_qkv[3] = {w->wq, w->wk, w->wv};
    linear_forward_shared(qkv, acts->xn1, w_qkv, 3, M, d, d);
    rope_forward(acts->q, acts->pos, B, n, H, dh, cfg->rope_base);
    rope_forward(acts->k, acts->pos, B, n, H, dh, cfg->rope_base);
    attention_forward(acts->att, acts->probs, acts->q, acts->k, acts->v, B, n, H, dh);
    linear_forward(acts->x2, acts->att, w->wo, M, d, d);
    vec_add(acts->x2, x, rows_d);
    rmsnorm_forward(acts->xn2, acts->rstd2, acts->x2, w->mlp_norm, M, d, cfg->norm_eps);
    real *const gate_up[2] = {acts->a, acts->c};
    const real *const w_gate_up[2] = {w->w1, w->w3};
    linear_forward_shared(gate_up, acts->xn2, w_gate_up, 2, M, d, f);
    swiglu_forward(acts->m, acts->a, acts->c, (size_t)M * f);
    linear_forward(acts->out, acts->m, w->w2, M, f, d);
    vec_add(acts->out, acts->x2, rows_d);
}

/* Runs n_layers layers on x; returns the output (x itself if n_layers == 0). */
static const real *block_forward(LayerActs *acts, const LayerWeights *w, int n_layers,
                                 const real *x, const SpiralConfig *cfg, int B, BlockKind kind,
                                 int iteration, int g, const Observer *observer) {
    for (int l = 0; l < n_layers; l++) {
        layer_forward(&acts[l], &w[l], x, cfg, B);
        x = acts[l].out;
        ObserveEvent event = {.site = OBSERVE_ATTENTION, .iteration = iteration, .block = kind,
                              .layer = l, .g = g, .B = B, .rows = acts[l].n,
                              .cols = acts[l].n, .heads = cfg->n_heads, .pos = acts[l].pos,
                              .data = acts[l].probs};
        observe(observer, event);
        ObserveEvent output = {.site = OBSERVE_LAYER_OUT, .iteration = iteration, .block = kind,
                               .layer = l, .g = g, .B = B, .rows = acts[l].n,
                               .cols = cfg->d_model, .heads = 0, .pos = acts[l].pos,
                               .data = acts[l].out};
        observe(observer, output);
    }
    return x;
}

/* Observes a (B, rows, d) state. */
static void observe_state(const Observer *observer, ObserveSite site, int iteration, int g,
                          int B, int rows, int d, const int *pos, const real *data) {
    ObserveEvent event = {.site = site, .iteration = iteration, .block = BLOCK_LOOP,
                          .layer = -1, .g = g, .B = B, .rows = rows, .cols = d, .heads = 0,
                          .pos = pos, .data = data};
    observe(observer, event);
}

/* The update of iteration t from h(t) = h_in: down-scale, core, delta,
 * up-scale and shift, e (B, L, d) into it->e (see IterActs). Returns z~. */
static const real *update_forward(Model *model, int t, const real *h_in,
                                  const Observer *observer) {
    const SpiralConfig *cfg = &model->cfg;
    IterActs *it = &model->iters[t];
    int B = model->B, d = cfg->d_model, J = it->geo.J, g = it->geo.g;
    it->h_in = (real *)h_in;
    chunk_positions(it->pos, &it->geo);
    const real *z = h_in;
    if (!it->full_resolution) {
        downscale_forward(it->z, it->alpha, h_in, model->w.down_score[t], &it->geo, B, d,
                          cfg->down);
        z = it->z;
    }
    observe_state(observer, OBSERVE_LATENT_IN, t, g, B, J, d, it->pos, z);
    const real *z_out = block_forward(it->layers, model->w.loop, cfg->n_loop, z, cfg, B,
                                      BLOCK_LOOP, t, g, observer);
    observe_state(observer, OBSERVE_LATENT_OUT, t, g, B, J, d, it->pos, z_out);
    if (it->full_resolution && cfg->topology == TOPOLOGY_RESIDUAL) {
        it->e = NULL; /* the shortcut h(t+1) = z~ (IterActs) */
        return z_out;
    }
    /* delta = z~ - z (residual, mesh) or z~ (anchor) */
    const real *delta = z_out;
    if (cfg->topology != TOPOLOGY_ANCHOR) {
        vec_sub(it->delta, z_out, z, (size_t)B * J * d);
        delta = it->delta;
    }
    if (it->full_resolution)
        it->e = (real *)delta; /* g = 1, shift 0: e_i = delta_i */
    else
        upscale_forward(it->e, it->coef, NULL, delta, model->w.up_alloc[t], &it->geo, B, d,
                        cfg->up);
    return z_out;
}

/* The memory of iteration t (topology mesh): writes it->e into the slots
 * and corrects it->h_out (= h(t) + e, or z~ at full resolution) by the
 * read (mesh.h); the slots are observed after the write. */
static void mesh_state_update(Model *model, int t, const real *h0, const Observer *observer) {
    const SpiralConfig *cfg = &model->cfg;
    IterActs *it = &model->iters[t];
    const IterActs *before = t > 0 ? &model->iters[t - 1] : NULL;
    int B = model->B, L = model->L, d = cfg->d_model, S = cfg->mesh_slots;
    size_t tokens_d = (size_t)B * L * d;
    mesh_forward(it->h_out, it->mesh_mem, it->mesh_k, it->mesh_w, it->mesh_r, it->e,
                 before ? before->mesh_mem : NULL, h0, before ? before->mesh_k : NULL,
                 &model->w.mesh[t], B, L, d, S);
    for (int b = 0; b < S; b++) {
        ObserveEvent event = {.site = OBSERVE_MEMORY, .iteration = t, .block = BLOCK_LOOP,
                              .layer = b, .g = 1, .B = B, .rows = L, .cols = d, .heads = 0,
                              .pos = model->token_pos, .data = it->mesh_mem + b * tokens_d};
        observe(observer, event);
    }
}

/* The state update of iteration t under model->update_hook: the hook gets
 * a copy of e (formed as z~ - h(t) in the residual full-resolution
 * shortcut) and the state uses the changed copy; rows the hook left
 * bit-identical keep the state the iteration computes without a hook.
 * A state update that reads e in other ways (a memory written from e)
 * must read the changed copy too. */
static const real *hooked_state_update(Model *model, int t, const real *h_in, const real *h0,
                                       const real *z_out, const Observer *observer) {
    const SpiralConfig *cfg = &model->cfg;
    IterActs *it = &model->iters[t];
    int B = model->B, L = model->L, d = cfg->d_model;
    size_t rows = (size_t)B * L, tokens_d = rows * d;
    real *e = model->hook_buffers, *original = e + tokens_d;
    if (it->e) vec_copy(e, it->e, tokens_d);
    else vec_sub(e, z_out, h_in, tokens_d);
    vec_copy(original, e, tokens_d);
    model->update_hook->fn(model->update_hook->user, t, e, B, L, d);
    int mesh = cfg->topology == TOPOLOGY_MESH;
    const real *base = cfg->topology == TOPOLOGY_ANCHOR ? h0 : h_in;
    real *h_out = it->e ? it->h_out : original + (1 + t % 2) * tokens_d;
    for (size_t r = 0; r < rows; r++) {
        real *out = h_out + r * d;
        const real *er = e + r * d;
        int same = !memcmp(er, original + r * d, (size_t)d * sizeof(real));
        /* unchanged rows as without the hook: the residual shortcut's z~,
         * and mesh at full resolution starts from z~ too */
        if (same && (!it->e || (mesh && it->full_resolution)))
            vec_copy(out, z_out + r * d, (size_t)d);
        else {
            vec_copy(out, base + r * d, (size_t)d);
            vec_add(out, er, (size_t)d);
        }
    }
    it->h_out = h_out;
    if (mesh) {
        /* the memory is written from the changed e (no backward follows a
         * hooked forward, so e's buffer may be overwritten) */
        vec_copy(it->e, e, tokens_d);
        mesh_state_update(model, t, h0, observer);
    }
    return h_out;
}

/* Iteration t: h(t) = h_in -> h(t+1) (returned). h0 is the prelude output.
 * The update e(t), then the topology's state update:
 *   residual h(t+1) = h(t) + e,  anchor h(t+1) = h(0) + e,
 *   mesh: h(t) + e (z~ at full resolution) corrected by the memory's read
 *   (mesh.h; the slots are observed after the write). */
static const real *iteration_forward(Model *model, int t, const real *h_in, const real *h0,
                                     const Observer *observer) {
    const SpiralConfig *cfg = &model->cfg;
    IterActs *it = &model->iters[t];
    size_t tokens_d = (size_t)model->B * model->L * cfg->d_model;
    const real *z_out = update_forward(model, t, h_in, observer);
    const UpdateHook *hook = model->update_hook;
    if (hook && (!hook->iterations || hook->iterations[t]))
        return hooked_state_update(model, t, h_in, h0, z_out, observer);
    if (!it->e) {
        it->h_out = (real *)z_out; /* h(t+1) = h(t) + (z~ - h(t)) = z~ exactly */
        return z_out;
    }
    if (cfg->topology == TOPOLOGY_MESH && it->full_resolution) {
        vec_copy(it->h_out, z_out, tokens_d); /* h(t) + e = z~ */
    } else {
        vec_copy(it->h_out, cfg->topology == TOPOLOGY_ANCHOR ? h0 : h_in, tokens_d);
        vec_add(it->h_out, it->e, tokens_d);
    }
    if (cfg->topology == TOPOLOGY_MESH) mesh_state_update(model, t, h0, observer);
    return it->h_out;
}

int model_forward(Model *model, const int *tokens, const int *targets, int B, int L,
                  const Observer *observer) {
    const SpiralConfig *cfg = &model->cfg;
    int d = cfg->d_model, V = cfg->vocab_size;
    if (B < 1 || L < 1) return spiral_error("model_forward: batch %d x length %d is empty", B, L);
    for (size_t i = 0; i < (size_t)B * L; i++) {
        if (tokens[i] < 0 || tokens[i] >= V)
            return spiral_error("token %d at position %zu is outside the vocabulary [0, %d)",
                                tokens[i], i, V);
        if (targets && (targets[i] < -1 || targets[i] >= V))
            return spiral_error("target %d at position %zu is outside the vocabulary [0, %d)",
                                targets[i], i, V);
    }
    if (model_ensure_activations(model, B, L)) return -1;
    size_t count = (size_t)B * L;
    model->hooked = model->update_hook != NULL;
    if (model->update_hook && model->hook_capacity < 4 * count * d) {
        real *grown = realloc(model->hook_buffers, 4 * count * d * sizeof(real));
        if (!grown) return spiral_error("out of memory for the update hook's buffers");
        model->hook_buffers = grown;
        model->hook_capacity = 4 * count * d;
    }
    memcpy(model->tokens, tokens, count * sizeof(int));
    for (size_t i = 0; i < count; i++) model->targets[i] = targets ? targets[i] : -1;
    for (int i = 0; i < L; i++) model->token_pos[i] = i;

    embedding_forward(model->emb, model->tokens, model->w.tok_emb, B * L, d);
    const real *h0 = block_forward(model->pre, model->w.pre, cfg->n_pre, model->emb, cfg, B,
                                   BLOCK_PRE, -1, 1, observer);
    observe_state(observer, OBSERVE_STATE, 0, 1, B, L, d, model->token_pos, h0);
    const real *h = h0;
    for (int t = 0; t < cfg->n_iters; t++) {
        h = iteration_forward(model, t, h, h0, observer);
        observe_state(observer, OBSERVE_STATE, t + 1, 1, B, L, d, model->token_pos, h);
    }
    h = block_forward(model->post, model->w.post, cfg->n_post, h, cfg, B, BLOCK_POST, -1, 1,
                      observer);
    model->h_final = (real *)h;
    observe_state(observer, OBSERVE_CODA, cfg->n_iters, 1, B, L, d, model->token_pos, h);
    rmsnorm_forward(model->xn_final, model->rstd_final, h, model->w.final_norm, B * L, d,
                    cfg->norm_eps);
    linear_forward(model->logits, model->xn_final, model->w.lm_head, B * L, d, V);
    model->loss = crossentropy_forward(model->logits, model->targets, B * L, V,
                                       &model->loss_count);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Backward                                                                 */

/* Backward of layer_forward: dx += dL/dx given dout = dL/d(out); weight
 * gradients accumulate into dw. */
static void layer_backward(real *dx, LayerWeights *dw, const real *dout, const LayerActs *acts,
                           const LayerWeights *w, const SpiralConfig *cfg, int B,
                           const Scratch *s) {
    int n = acts->n, d = cfg->d_model, f = cfg->d_ff, H = cfg->n_heads, dh = d / H;
    int M = B * n;
    size_t rows_d = (size_t)M * d, rows_f = (size_t)M * f;
    /* out = x2 + m w2^T */
    vec_copy(s->layer_dx2, dout, rows_d);
    vec_zero(s->layer_dm, rows_f);
    linear_backward(s->layer_dm, dw->w2, dout, acts->m, w->w2, M, f, d);
    vec_zero(s->layer_da, rows_f);
    vec_zero(s->layer_dc, rows_f);
    swiglu_backward(s->layer_da, s->layer_dc, s->layer_dm, acts->a, acts->c, rows_f);
    vec_zero(s->layer_dxn2, rows_d);
    linear_backward(s->layer_dxn2, dw->w1, s->layer_da, acts->xn2, w->w1, M, d, f);
    linear_backward(s->layer_dxn2, dw->w3, s->layer_dc, acts->xn2, w->w3, M, d, f);
    rmsnorm_backward(s->layer_dx2, dw->mlp_norm, s->layer_dxn2, acts->x2, w->mlp_norm,
                     acts->rstd2, M, d);
    /* x2 = x + att wo^T */
    vec_add(dx, s->layer_dx2, rows_d);
    vec_zero(s->layer_datt, rows_d);
    linear_backward(s->layer_datt, dw->wo, s->layer_dx2, acts->att, w->wo, M, d, d);
    vec_zero(s->layer_dq, rows_d);
    vec_zero(s->layer_dk, rows_d);
    vec_zero(s->layer_dv, rows_d);
    attention_backward(s->layer_dq, s->layer_dk, s->layer_dv, s->layer_dprobs, s->layer_datt,
                       acts->probs, acts->q, acts->k, acts->v, B, n, H, dh);
    rope_backward(s->layer_dq, acts->pos, B, n, H, dh, cfg->rope_base);
    rope_backward(s->layer_dk, acts->pos, B, n, H, dh, cfg->rope_base);
    vec_zero(s->layer_dxn1, rows_d);
    linear_backward(s->layer_dxn1, dw->wq, s->layer_dq, acts->xn1, w->wq, M, d, d);
    linear_backward(s->layer_dxn1, dw->wk, s->layer_dk, acts->xn1, w->wk, M, d, d);
    linear_backward(s->layer_dxn1, dw->wv, s->layer_dv, acts->xn1, w->wv, M, d, d);
    rmsnorm_backward(dx, dw->attn_norm, s->layer_dxn1, acts->x, w->attn_norm, acts->rstd1, M, d);
}

/* Backward through n_layers layers: dx += dL/dx given dout. pingpong holds
 * two buffers of the block's size for the gradients between layers; neither
 * may alias dx or dout. With n_layers == 0 the block is the identity. */
static void block_backward(real *dx, LayerWeights *dw, const real *dout, const LayerActs *acts,
                           const LayerWeights *w, int n_layers, const SpiralConfig *cfg, int B,
                           real *const pingpong[2], const Scratch *s) {
    const real *cur = dout;
    for (int l = n_layers - 1; l >= 0; l--) {
        real *target = l == 0 ? dx : pingpong[l % 2];
        if (l > 0) vec_zero(target, (size_t)B * acts[l].n * cfg->d_model);
        layer_backward(target, &dw[l], cur, &acts[l], &w[l], cfg, B, s);
        cur = target;
    }
}


/* Backward of update_forward: dh_in += dL/dh(t) given de = dL/de(t)
 * (B, L, d); the core's, score's and alloc's gradients accumulate. */
static void update_backward(Model *model, int t, real *dh_in, const real *de, const Scratch *s) {
    const SpiralConfig *cfg = &model->cfg;
    IterActs *it = &model->iters[t];
    int B = model->B, d = cfg->d_model, J = it->geo.J;
    size_t latents_d = (size_t)B * J * d;
    real *const core_pingpong[2] = {s->core[0], s->core[1]};
    int difference = cfg->topology != TOPOLOGY_ANCHOR; /* delta = z~ - z */
    if (it->full_resolution) {
        /* e = delta; z = h(t) */
        if (difference) vec_sub(dh_in, dh_in, de, latents_d);
        block_backward(dh_in, model->dw.loop, de, it->layers, model->w.loop, cfg->n_loop, cfg,
                       B, core_pingpong, s);
        return;
    }
    vec_zero(s->ddelta, latents_d);
    upscale_backward(s->ddelta, model->dw.up_alloc[t], s->scale, de,
                     difference ? it->delta : it->layers[cfg->n_loop - 1].out, it->coef,
                     model->w.up_alloc[t], &it->geo, B, d, cfg->up);
    /* delta = z~ - z (residual, mesh) or z~ (anchor) */
    if (difference)
        vec_negate(s->dz, s->ddelta, latents_d);
    else
        vec_zero(s->dz, latents_d);
    block_backward(s->dz, model->dw.loop, s->ddelta, it->layers, model->w.loop, cfg->n_loop, cfg,
                   B, core_pingpong, s);
    downscale_backward(dh_in, model->dw.down_score[t], s->scale, s->dz, it->h_in, it->alpha,
                       model->w.down_score[t], &it->geo, B, d, cfg->down);
}

/* Backward of iteration t: dh_in += dL/dh(t), dh0 += the part reaching h(0)
 * through the anchor, given dh_out = dL/dh(t+1). */
static void iteration_backward(Model *model, int t, real *dh_in, real *dh0, const real *dh_out,
                               const Scratch *s) {
    const SpiralConfig *cfg = &model->cfg;
    IterActs *it = &model->iters[t];
    size_t tokens_d = (size_t)model->B * model->L * cfg->d_model;
    if (!it->e) {
        /* residual at full resolution: h(t+1) = z~, z = h(t) */
        real *const core_pingpong[2] = {s->core[0], s->core[1]};
        block_backward(dh_in, model->dw.loop, dh_out, it->layers, model->w.loop, cfg->n_loop,
                       cfg, model->B, core_pingpong, s);
        return;
    }
    if (cfg->topology == TOPOLOGY_MESH) {
        /* h(t+1) = S sum_b r_b m_b, m_b = m_b(t) + w_b e: de, and s->mesh_dmem
         * becomes the gradient of the slots before the write; m_0(0) = h(0) */
        int S = cfg->mesh_slots;
        mesh_backward(s->mesh_de, s->mesh_dmem, &model->dw.mesh[t], s->mesh_dl, dh_out, it->e,
                      it->mesh_mem, it->mesh_w, it->mesh_r, &model->w.mesh[t], model->B,
                      model->L, cfg->d_model, S);
        if (t == 0) vec_add(dh0, s->mesh_dmem, tokens_d);
        update_backward(model, t, dh_in, s->mesh_de, s);
        return;
    }
    /* h(t+1) = base + e: the base's gradient is dh_out, and so is de */
    vec_add(cfg->topology == TOPOLOGY_RESIDUAL ? dh_in : dh0, dh_out, tokens_d);
    update_backward(model, t, dh_in, dh_out, s);
}

int model_backward(Model *model) {
    const SpiralConfig *cfg = &model->cfg;
    if (!model->arena || model->loss_count == 0)
        return spiral_error("model_backward: no forward pass with targets to differentiate");
    if (model->hooked)
        return spiral_error("model_backward: the forward pass ran with an update hook "
                            "(an intervention), which has no backward");
    int B = model->B, L = model->L, d = cfg->d_model, V = cfg->vocab_size, M = B * L;
    size_t tokens_d = (size_t)M * d;
    Scratch s = model_scratch_slices(model);
    real *const stream_pingpong[2] = {s.core[0], s.core[1]};

    /* loss = mean cross-entropy; logits = xn lm_head^T; xn = norm(h_final) */
    vec_zero(s.dlogits, (size_t)M * V);
    crossentropy_backward(s.dlogits, model->logits, model->targets, M, V,
                          (real)(1.0 / model->loss_count));
    vec_zero(s.dxn, tokens_d);
    linear_backward(s.dxn, model->dw.lm_head, s.dlogits, model->xn_final, model->w.lm_head, M, d,
                    V);
    real *dh = s.stream[0], *dh_next = s.stream[1];
    vec_zero(dh, tokens_d);
    rmsnorm_backward(dh, model->dw.final_norm, s.dxn, model->h_final, model->w.final_norm,
                     model->rstd_final, M, d);
    /* coda */
    if (cfg->n_post > 0) {
        vec_zero(dh_next, tokens_d);
        block_backward(dh_next, model->dw.post, dh, model->post, model->w.post, cfg->n_post, cfg,
                       B, stream_pingpong, &s);
        real *swap = dh; dh = dh_next; dh_next = swap;
    }
    /* iterations, last to first */
    vec_zero(s.dh0, tokens_d);
    if (cfg->topology == TOPOLOGY_MESH) vec_zero(s.mesh_dmem, cfg->mesh_slots * tokens_d);
    for (int t = cfg->n_iters - 1; t >= 0; t--) {
        vec_zero(dh_next, tokens_d);
        iteration_backward(model, t, dh_next, s.dh0, dh, &s);
        real *swap = dh; dh = dh_next; dh_next = swap;
    }
    vec_add(dh, s.dh0, tokens_d);
    /* prelude */
    if (cfg->n_pre > 0) {
        vec_zero(dh_next, tokens_d);
        block_backward(dh_next, model->dw.pre, dh, model->pre, model->w.pre, cfg->n_pre, cfg, B,
                       stream_pingpong, &s);
        dh = dh_next;
    }
    embedding_backward(model->dw.tok_emb, dh, model->tokens, M, d);
    return 0;
}
