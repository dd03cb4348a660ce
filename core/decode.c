/*
 * decode.c: incremental decoding (see decode.h for the algorithm).
 *
 * One token's row goes through the same kernels as model_forward (layers.h
 * at M = 1); only attention differs: one query against the cached keys,
 * written here. The down- and up-scaling of a closing chunk follow scale.c
 * for one chunk, in the same order of operations.
 */
#include "decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "layers.h"
#include "matmul.h"
#include "mesh.h"
#include "reduce.h"
#include "vec.h"

/* ------------------------------------------------------------------------ */
/* Building                                                                 */

/* The geometry of level t at the decoder's capacity. */
static ChunkGeometry level_geometry(const SpiralConfig *cfg, int t, int capacity) {
    return chunk_geometry(capacity, &cfg->schedule[t]);
}

/* Hands out consecutive slices of one buffer; with base NULL it only
 * counts, so the same walk sizes the buffer and then carves it. */
typedef struct {
    real *base;
    size_t used;   /* reals handed out so far */
} Carver;

static real *carve(Carver *carver, size_t count) {
    real *slice = carver->base ? carver->base + carver->used : NULL;
    carver->used += count;
    return slice;
}

/* Walks the decoder's arrays for cfg at capacity in one fixed order and
 * points them (and the KVCache tables, when given) into base; with base
 * NULL it only sizes them. Returns the reals used. */
static size_t decoder_layout(Decoder *dec, const SpiralConfig *cfg, int capacity, real *base,
                             KVCache *tables) {
    size_t d = cfg->d_model, f = cfg->d_ff, V = cfg->vocab_size, cap = capacity;
    Carver carver = {base, 0};
    size_t table = 0;
    /* token-level caches: prelude then coda */
    for (int l = 0; l < cfg->n_pre + cfg->n_post; l++, table++) {
        real *k = carve(&carver, cap * d), *v = carve(&carver, cap * d);
        if (tables) tables[table] = (KVCache){k, v};
    }
    for (int t = 0; t < cfg->n_iters; t++) {
        ChunkGeometry geo = level_geometry(cfg, t, capacity);
        size_t J = geo.J, g = geo.g;
        for (int l = 0; l < cfg->n_loop; l++, table++) {
            real *k = carve(&carver, J * d), *v = carve(&carver, J * d);
            if (tables) tables[table] = (KVCache){k, v};
        }
        real *members = carve(&carver, g * d), *delta = carve(&carver, J * d);
        real *coef = cfg->up == UP_ALLOC ? carve(&carver, J * g) : NULL;
        dec->levels[t].members = members;
        dec->levels[t].delta = delta;
        dec->levels[t].coef = coef;
    }
    real **rows_d[] = {&dec->h0, &dec->h, &dec->z, &dec->work, &dec->xn, &dec->q, &dec->att,
                       &dec->e};
    real **rows_f[] = {&dec->a, &dec->c, &dec->m};
    for (size_t r = 0; r < sizeof rows_d / sizeof rows_d[0]; r++) {
        *rows_d[r] = carve(&carver, d);
    }
    for (size_t r = 0; r < sizeof rows_f / sizeof rows_f[0]; r++) {
        *rows_f[r] = carve(&carver, f);
    }
    size_t S = cfg->topology == TOPOLOGY_MESH ? (size_t)cfg->mesh_slots : 0;
    for (int b = 0; b < 2; b++) {
        dec->mesh_mem[b] = carve(&carver, S * d);
        dec->mesh_k[b] = carve(&carver, S ? d : 0);
    }
    dec->mesh_w = carve(&carver, S);
    dec->mesh_r = carve(&carver, S);
    dec->scores = carve(&carver, cap);
    dec->logits = carve(&carver, V);
    return carver.used;
}

/* KVCache tables: every prelude and coda layer, and n_loop per level. */
static size_t decoder_tables(const SpiralConfig *cfg) {
    return (size_t)cfg->n_pre + cfg->n_post + (size_t)cfg->n_iters * cfg->n_loop;
}

size_t decoder_bytes(const Model *model, int capacity) {
    const SpiralConfig *cfg = &model->cfg;
    Decoder sizing;
    return decoder_layout(&sizing, cfg, capacity, NULL, NULL) * sizeof(real) +
           decoder_tables(cfg) * sizeof(KVCache);
}

int decoder_build(Decoder *dec, Model *model, int capacity) {
    const SpiralConfig *cfg = &model->cfg;
    memset(dec, 0, sizeof *dec);
    if (capacity < 1) return spiral_error("decoder: capacity %d; expected at least 1 token", capacity);
    size_t reals = decoder_layout(dec, cfg, capacity, NULL, NULL);
    size_t n_tables = decoder_tables(cfg);
    dec->buffer = calloc(reals, sizeof(real));
    dec->tables = calloc(n_tables + 1, sizeof(KVCache));
    if (!dec->buffer || !dec->tables) {
        decoder_free(dec);
        return spiral_error("out of memory building a decoder for %d tokens (%.1f MB)", capacity,
                            reals * sizeof(real) / 1e6);
    }
    dec->model = model;
    dec->capacity = capacity;
    KVCache *tables = dec->tables;
    decoder_layout(dec, cfg, capacity, dec->buffer, tables);
    dec->pre = tables;
    dec->post = tables + cfg->n_pre;
    KVCache *core = tables + cfg->n_pre + cfg->n_post;
    for (int t = 0; t < cfg->n_iters; t++) {
        DecodeLevel *level = &dec->levels[t];
        level->geo = level_geometry(cfg, t, capacity);
        level->full_resolution = level->geo.g == 1 && level->geo.s == 0;
        level->core = core + (size_t)t * cfg->n_loop;
    }
    return 0;
}

void decoder_free(Decoder *dec) {
    free(dec->buffer);
    free(dec->tables);
    memset(dec, 0, sizeof *dec);
}

void decoder_reset(Decoder *dec) { dec->n = 0; }

/* ------------------------------------------------------------------------ */
/* One row through a layer                                                  */

/* One query row against rows 0 .. n-1 of a cache, every head:
 *   p = softmax_r(q_h . k_{r,h} / sqrt(dh)),  att_h = sum_r p_r v_{r,h}.
 * q, att (d); cache rows (n, d). The two products are BLAS calls, as in
 * attention_forward; the softmax is its own (float exp, double sum). */
static void attention_step(real *att, real *scores, const real *q, const KVCache *cache, int n,
                           int H, int dh) {
    int d = H * dh;
    real scale = (real)(1.0 / sqrt((double)dh));
    for (int h = 0; h < H; h++) {
        /* scores (1, n) = scale q_h (1, dh) K_h^T, K_h (n, dh) with stride d */
        matmul(0, 1, 1, n, dh, scale, q + h * dh, dh, cache->k + h * dh, d, 0, scores, n);
        real max = max_real(scores, n);
        for (int r = 0; r < n; r++) scores[r] = (real)exp(scores[r] - max);
        real inv = (real)(1.0 / sum_double(scores, n));
        for (int r = 0; r < n; r++) scores[r] *= inv;
        /* att_h (1, dh) = p (1, n) V_h (n, dh) */
        matmul(0, 0, 1, dh, n, 1, scores, n, cache->v + h * dh, d, 0, att + h * dh, dh);
    }
}

/* One pre-norm layer for one row x (d), in place, at RoPE position pos; its
 * key and value go to cache row `row`, and the query attends to rows
 * 0 .. row:  x += Attn(RMSNorm(x));  x += MLP(RMSNorm(x)). */
static void layer_step(Decoder *dec, real *x, KVCache *cache, int row, int pos,
                       const LayerWeights *w) {
    const SpiralConfig *cfg = &dec->model->cfg;
    int d = cfg->d_model, f = cfg->d_ff, H = cfg->n_heads, dh = d / H;
    real rstd;
    real *k = cache->k + (size_t)row * d, *v = cache->v + (size_t)row * d;
    rmsnorm_forward(dec->xn, &rstd, x, w->attn_norm, 1, d, cfg->norm_eps);
    real *const qkv[3] = {dec->q, k, v};
    const real *const w_qkv[3] = {w->wq, w->wk, w->wv};
    linear_forward_shared(qkv, dec->xn, w_qkv, 3, 1, d, d);
    rope_forward(dec->q, &pos, 1, 1, H, dh, cfg->rope_base);
    rope_forward(k, &pos, 1, 1, H, dh, cfg->rope_base);
    attention_step(dec->att, dec->scores, dec->q, cache, row + 1, H, dh);
    linear_forward(dec->work, dec->att, w->wo, 1, d, d);
    vec_add(x, dec->work, (size_t)d);
    rmsnorm_forward(dec->xn, &rstd, x, w->mlp_norm, 1, d, cfg->norm_eps);
    real *const gate_up[2] = {dec->a, dec->c};
    const real *const w_gate_up[2] = {w->w1, w->w3};
    linear_forward_shared(gate_up, dec->xn, w_gate_up, 2, 1, d, f);
    swiglu_forward(dec->m, dec->a, dec->c, (size_t)f);
    linear_forward(dec->work, dec->m, w->w2, 1, f, d);
    vec_add(x, dec->work, (size_t)d);
}

/* ------------------------------------------------------------------------ */
/* One chunk's down- and up-scaling                                         */

/* z (d) from the members of the closing chunk, slots first_slot .. g-1 of
 * members (g, d):  mean: z = average;  selfagg: c_r = score . h_r,
 * alpha = softmax(c), z = sum alpha_r h_r. */
static void chunk_down(real *z, const real *members, int first_slot, int g, const real *score,
                       int d, int mode) {
    memset(z, 0, (size_t)d * sizeof(real));
    if (mode == DOWN_MEAN) {
        for (int r = first_slot; r < g; r++)
            for (int k = 0; k < d; k++) z[k] += members[(size_t)r * d + k];
        real count = (real)(g - first_slot);
        for (int k = 0; k < d; k++) z[k] /= count;
        return;
    }
    real alpha[g];
    double max = -INFINITY;
    for (int r = first_slot; r < g; r++) {
        double c = dot_double(score, members + (size_t)r * d, d);
        alpha[r] = (real)c;
        if (c > max) max = c;
    }
    double sum = 0;
    for (int r = first_slot; r < g; r++) {
        alpha[r] = (real)exp(alpha[r] - max);
        sum += alpha[r];
    }
    for (int r = first_slot; r < g; r++) {
        alpha[r] = (real)(alpha[r] / sum);
        for (int k = 0; k < d; k++) z[k] += alpha[r] * members[(size_t)r * d + k];
    }
}

/* ------------------------------------------------------------------------ */
/* One token                                                                */

/* Runs the shared core for the latent in dec->z (d), in place, as latent
 * row j of level t at RoPE position pos. */
static void core_step(Decoder *dec, DecodeLevel *level, int j, int pos) {
    const Model *model = dec->model;
    for (int l = 0; l < model->cfg.n_loop; l++)
        layer_step(dec, dec->z, &level->core[l], j, pos, &model->w.loop[l]);
}

/* Topology mesh, iteration t of one token: dec->h holds h(t) + e (z~ at
 * full resolution) and becomes h(t+1), read from the token's memory after
 * e = dec->e is written to it (mesh.h at B = L = 1). */
static void mesh_step(Decoder *dec, int t) {
    const Model *model = dec->model;
    const SpiralConfig *cfg = &model->cfg;
    int now = (t + 1) % 2, before = t % 2;
    mesh_forward(dec->h, dec->mesh_mem[now], dec->mesh_k[now], dec->mesh_w, dec->mesh_r, dec->e,
                 t > 0 ? dec->mesh_mem[before] : NULL, dec->h0,
                 t > 0 ? dec->mesh_k[before] : NULL, &model->w.mesh[t], 1, 1, cfg->d_model,
                 cfg->mesh_slots);
}

/* Iteration t for the token at position p: dec->h = h(t)_p -> h(t+1)_p. */
static void level_step(Decoder *dec, int t, int p) {
    const Model *model = dec->model;
    const SpiralConfig *cfg = &model->cfg;
    DecodeLevel *level = &dec->levels[t];
    int d = cfg->d_model, g = level->geo.g, w = level->geo.w, s = level->geo.s;
    int topology = cfg->topology;
    size_t bytes = (size_t)d * sizeof(real);
    if (level->full_resolution) {
        /* z = h(t)_p; residual: h(t+1) = z~; anchor: h(0) + z~; mesh: z~
         * corrected by the memory, with e = z~ - z */
        memcpy(dec->z, dec->h, bytes);
        core_step(dec, level, p, p);
        if (topology == TOPOLOGY_MESH) vec_sub(dec->e, dec->z, dec->h, (size_t)d);
        memcpy(dec->h, dec->z, bytes);
        if (topology == TOPOLOGY_ANCHOR) vec_add(dec->h, dec->h0, (size_t)d);
        if (topology == TOPOLOGY_MESH) mesh_step(dec, t);
        return;
    }
    memcpy(level->members + (size_t)((p + w) % g) * d, dec->h, bytes);
    if ((p + w + 1) % g == 0) {
        /* chunk j closes at p */
        int j = (p + w) / g, first = j * g - w < 0 ? 0 : j * g - w;
        chunk_down(dec->z, level->members, (first + w) % g, g, model->w.down_score[t], d,
                   cfg->down);
        real *delta = level->delta + (size_t)j * d;
        memcpy(delta, dec->z, bytes);
        core_step(dec, level, j, p);
        /* delta = z~ - z (residual, mesh) or z~ (anchor) */
        if (topology != TOPOLOGY_ANCHOR)
            vec_sub(delta, dec->z, delta, (size_t)d);
        else
            memcpy(delta, dec->z, bytes);
        if (cfg->up == UP_ALLOC)
            alloc_coefficients(level->coef + (size_t)j * g, delta, model->w.up_alloc[t], g, d);
    }
    /* e = u_{p-s} (0 for p < s); h(t+1) = base + e, base = h(0) (anchor)
     * or h(t); mesh then corrects it by the memory */
    memset(dec->e, 0, bytes);
    if (p >= s) {
        int src = p - s, j = (src + w) / g, slot = (src + w) % g;
        const real *delta = level->delta + (size_t)j * d;
        if (cfg->up == UP_COPY) {
            memcpy(dec->e, delta, bytes);
        } else {
            real coef = level->coef[(size_t)j * g + slot];
            for (int k = 0; k < d; k++) dec->e[k] = coef * delta[k];
        }
    }
    if (topology == TOPOLOGY_ANCHOR) memcpy(dec->h, dec->h0, bytes);
    vec_add(dec->h, dec->e, (size_t)d);
    if (topology == TOPOLOGY_MESH) mesh_step(dec, t);
}

/* The logits (V) of the coda's output h (d). */
static void head_step(Decoder *dec) {
    const Model *model = dec->model;
    const SpiralConfig *cfg = &model->cfg;
    real rstd;
    rmsnorm_forward(dec->xn, &rstd, dec->h, model->w.final_norm, 1, cfg->d_model, cfg->norm_eps);
    linear_forward(dec->logits, dec->xn, model->w.lm_head, 1, cfg->d_model, cfg->vocab_size);
}

int decoder_step(Decoder *dec, int token) {
    const Model *model = dec->model;
    const SpiralConfig *cfg = &model->cfg;
    int d = cfg->d_model, p = dec->n;
    if (token < 0 || token >= cfg->vocab_size)
        return spiral_error("token %d at position %d is outside the vocabulary [0, %d)", token, p,
                            cfg->vocab_size);
    if (p >= dec->capacity)
        return spiral_error("the context is full: %d tokens, the most this decoder holds",
                            dec->capacity);
    memcpy(dec->h, model->w.tok_emb + (size_t)token * d, (size_t)d * sizeof(real));
    for (int l = 0; l < cfg->n_pre; l++)
        layer_step(dec, dec->h, &dec->pre[l], p, p, &model->w.pre[l]);
    memcpy(dec->h0, dec->h, (size_t)d * sizeof(real));
    for (int t = 0; t < cfg->n_iters; t++) level_step(dec, t, p);
    for (int l = 0; l < cfg->n_post; l++)
        layer_step(dec, dec->h, &dec->post[l], p, p, &model->w.post[l]);
    head_step(dec);
    dec->n = p + 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Prefill                                                                  */

/* Copies rows 0 .. rows-1 of a layer's saved keys and values (B = 1). */
static void cache_fill(KVCache *cache, const LayerActs *acts, int rows, int d) {
    memcpy(cache->k, acts->k, (size_t)rows * d * sizeof(real));
    memcpy(cache->v, acts->v, (size_t)rows * d * sizeof(real));
}

int decoder_prefill(Decoder *dec, const int *tokens, int n) {
    Model *model = dec->model;
    const SpiralConfig *cfg = &model->cfg;
    int d = cfg->d_model, V = cfg->vocab_size;
    size_t bytes = (size_t)d * sizeof(real);
    if (dec->n != 0)
        return spiral_error("decoder_prefill: the decoder already holds %d tokens", dec->n);
    if (n < 1 || n > dec->capacity)
        return spiral_error("a prompt of %d tokens does not fit a context of %d tokens", n,
                            dec->capacity);
    if (model_forward(model, tokens, NULL, 1, n, NULL)) return -1;
    for (int l = 0; l < cfg->n_pre; l++) cache_fill(&dec->pre[l], &model->pre[l], n, d);
    for (int l = 0; l < cfg->n_post; l++) cache_fill(&dec->post[l], &model->post[l], n, d);
    for (int t = 0; t < cfg->n_iters; t++) {
        DecodeLevel *level = &dec->levels[t];
        const IterActs *it = &model->iters[t];
        int g = level->geo.g, w = level->geo.w;
        int closed = (n + w) / g; /* chunks whose last member is < n */
        for (int l = 0; l < cfg->n_loop; l++)
            cache_fill(&level->core[l], &it->layers[l], closed, d);
        if (level->full_resolution) continue;
        /* the open chunk's members: h(t) of the last g tokens, by slot */
        for (int i = n - g < 0 ? 0 : n - g; i < n; i++)
            memcpy(level->members + (size_t)((i + w) % g) * d, it->h_in + (size_t)i * d, bytes);
        /* delta_j = z~_j - z_j (residual, mesh) or z~_j (anchor) of the closed chunks */
        const real *z_out = cfg->n_loop > 0 ? it->layers[cfg->n_loop - 1].out : it->z;
        for (int j = 0; j < closed; j++) {
            real *delta = level->delta + (size_t)j * d;
            const real *zo = z_out + (size_t)j * d;
            if (cfg->topology != TOPOLOGY_ANCHOR)
                vec_sub(delta, zo, it->z + (size_t)j * d, (size_t)d);
            else
                memcpy(delta, zo, bytes);
        }
        if (cfg->up == UP_ALLOC)
            memcpy(level->coef, it->coef, (size_t)closed * g * sizeof(real));
    }
    memcpy(dec->logits, model->logits + (size_t)(n - 1) * V, (size_t)V * sizeof(real));
    dec->n = n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* FLOPs                                                                    */

/* One layer for one row attending to `keys` cached rows. */
static double layer_step_flops(const SpiralConfig *cfg, int keys) {
    double d = cfg->d_model, f = cfg->d_ff;
    return 4 * 2 * d * d + 3 * 2 * d * f + 4 * d * keys;
}

double decoder_step_flops(const SpiralConfig *cfg, int p) {
    double d = cfg->d_model, V = cfg->vocab_size;
    double flops = (cfg->n_pre + cfg->n_post) * layer_step_flops(cfg, p + 1) + 2 * d * V;
    for (int t = 0; t < cfg->n_iters; t++) {
        const IterSpec *spec = &cfg->schedule[t];
        int g = spec->g, w = spec->offset;
        if (cfg->topology == TOPOLOGY_MESH) flops += 8.0 * cfg->mesh_slots * d; /* cost.h */
        if (g == 1 && spec->shift == 0) {
            flops += cfg->n_loop * layer_step_flops(cfg, p + 1);
            continue;
        }
        /* per token: its share of down- and up-scaling (cost.h) */
        flops += cfg->down == DOWN_SELFAGG ? 4 * d : d;
        flops += cfg->up == UP_ALLOC ? 2 * d : d;
        if ((p + w + 1) % g == 0) {
            int j = (p + w) / g;
            flops += cfg->n_loop * layer_step_flops(cfg, j + 1);
            if (cfg->up == UP_ALLOC) flops += 2.0 * g * d;
        }
    }
    return flops;
}
