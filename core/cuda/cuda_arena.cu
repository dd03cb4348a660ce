/*
 * cuda_arena.cu: the CUDA engine's activation arena: one device allocation laid out
 * by the same planning code that measures it (see cuda_model.cuh).
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

/* A product's input or output of (count) values: fp32 into *full, or
 * (rounded) bf16 into *half; the other view is NULL. */
static void take_input(float **full, __nv_bfloat16 **half, Bump *bump, size_t count,
                       int rounded) {
    *full = rounded ? NULL : take<float>(bump, count);
    *half = rounded ? take<__nv_bfloat16>(bump, count) : NULL;
}

static void plan_layer(GpuLayerActs *acts, Bump *bump, const SpiralConfig *cfg, int B, int n,
                       const float *rope_cos, const float *rope_sin, int rounded) {
    size_t rows = (size_t)B * n, d = (size_t)cfg->d_model, f = (size_t)cfg->d_ff;
    acts->n = n;
    acts->rope_cos = rope_cos;
    acts->rope_sin = rope_sin;
    take_input(&acts->xn1, &acts->xn1_16, bump, rows * d, rounded);
    acts->rstd1 = take<float>(bump, rows);
    take_input(&acts->qkv, &acts->qkv16, bump, 3 * rows * d, rounded);
    int dh = cfg->d_model / cfg->n_heads;
    acts->heads16 =
        rounded ? take<__nv_bfloat16>(bump, attention_mma_heads(B, n, cfg->n_heads, dh)) : NULL;
    acts->lse = take<float>(bump, (size_t)B * cfg->n_heads * n);
    take_input(&acts->att, &acts->att16, bump, rows * d, rounded);
    acts->x2 = take<float>(bump, rows * d);
    take_input(&acts->xn2, &acts->xn2_16, bump, rows * d, rounded);
    acts->rstd2 = take<float>(bump, rows);
    take_input(&acts->ac, &acts->ac16, bump, 2 * rows * f, rounded);
    take_input(&acts->m, &acts->m16, bump, rows * f, rounded);
    acts->out = take<float>(bump, rows * d);
}

/* Lays out (or measures) every activation and the scratch at (B, L). */
static void plan_arena(CudaModel *model, Bump *bump, int B, int L) {
    const SpiralConfig *cfg = &model->cfg;
    size_t tokens = (size_t)B * L, d = (size_t)cfg->d_model, f = (size_t)cfg->d_ff;
    size_t half = (size_t)(cfg->d_model / cfg->n_heads / 2);
    int rounded = rounded_products(model);
    model->tokens = take<int>(bump, tokens);
    model->targets = take<int>(bump, tokens);
    model->token_pos = take<int>(bump, (size_t)L);
    model->present = take<int>(bump, tokens);
    model->token_start = take<int>(bump, tokens + 1);
    model->present_count = take<int>(bump, 1);
    model->rows_by_token = take<int>(bump, tokens);
    model->token_pos_host = take_host(bump, (size_t)L);
    model->token_cos = take<float>(bump, (size_t)L * half);
    model->token_sin = take<float>(bump, (size_t)L * half);
    model->emb = take<float>(bump, tokens * d);
    for (int l = 0; l < cfg->n_pre; l++)
        plan_layer(&model->pre[l], bump, cfg, B, L, model->token_cos, model->token_sin,
                   rounded);
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
        it->e = it->mesh_mem = it->mesh_k = it->mesh_w = it->mesh_r = NULL;
        int mesh = cfg->topology == TOPOLOGY_MESH;
        if (!it->full_resolution) {
            it->z = take<float>(bump, (size_t)B * J * d);
            if (cfg->down == DOWN_SELFAGG) it->alpha = take<float>(bump, tokens);
            if (cfg->topology != TOPOLOGY_ANCHOR) it->delta = take<float>(bump, (size_t)B * J * d);
            if (cfg->up == UP_ALLOC) it->coef = take<float>(bump, (size_t)B * J * spec->g);
        }
        if (mesh) {
            size_t S = (size_t)cfg->mesh_slots;
            /* at full resolution e is delta = z~ - z itself */
            if (it->full_resolution) it->e = it->delta = take<float>(bump, tokens * d);
            else it->e = take<float>(bump, tokens * d);
            it->mesh_mem = take<float>(bump, S * tokens * d);
            it->mesh_k = take<float>(bump, tokens * d);
            it->mesh_w = take<float>(bump, tokens * S);
            it->mesh_r = take<float>(bump, tokens * S);
        }
        if (!(it->full_resolution && cfg->topology == TOPOLOGY_RESIDUAL))
            it->h_out = take<float>(bump, tokens * d);
        for (int l = 0; l < cfg->n_loop; l++)
            plan_layer(&it->layers[l], bump, cfg, B, (int)J, it->rope_cos, it->rope_sin,
                       rounded);
    }
    for (int l = 0; l < cfg->n_post; l++)
        plan_layer(&model->post[l], bump, cfg, B, L, model->token_cos, model->token_sin,
                   rounded);
    take_input(&model->xn_final, &model->xn_final16, bump, tokens * d, rounded);
    model->rstd_final = take<float>(bump, tokens);
    take_input(&model->logits, &model->logits16, bump, tokens * cfg->vocab_size, rounded);
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
    s->layer_dac = rounded ? NULL : take<float>(bump, 2 * tokens * f);
    s->rowdot = take<float>(bump, (size_t)B * cfg->n_heads * L);
    s->norm_partial = take<float>(bump, rmsnorm_partial_count((int)tokens, (int)d));
    s->scale_dot = take<double>(bump, scale_most);
    s->scale_float = take<float>(bump, scale_most);
    s->mesh_dmem = s->mesh_de = s->mesh_dl = s->zeros = NULL;
    if (cfg->topology == TOPOLOGY_MESH) {
        size_t S = (size_t)cfg->mesh_slots;
        s->mesh_dmem = take<float>(bump, S * tokens * d);
        s->mesh_de = take<float>(bump, tokens * d);
        s->mesh_dl = take<float>(bump, 2 * tokens * S);
        s->zeros = take<float>(bump, tokens * d);
    }
}

/* Makes sure the arena fits (B, L) and lays it out; allocates only when it
 * grows. With poisoning on, fills it with NaN. */
int cuda_model_ensure_arena(CudaModel *model, int B, int L) {
    Bump measure = {0};
    plan_arena(model, &measure, B, L);
    int grown = measure.used > model->arena_bytes;
    if (grown) {
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
    Bump layout = {model->arena, 0, model->host_ints, 0};
    plan_arena(model, &layout, B, L);
    if (grown || B != model->B || L != model->L || model->poison) model->positions_ready = 0;
    model->B = B;
    model->L = L;
    /* the pinned mirror of the inputs' device region (upload_inputs) */
    size_t tokens = (size_t)B * L;
    size_t upload = (size_t)((char *)(model->rows_by_token + tokens) - (char *)model->tokens);
    if (upload > model->upload_capacity) {
        if (!model->upload_done)
            CUDA_CHECK(cudaEventCreateWithFlags(&model->upload_done, cudaEventDisableTiming));
        CUDA_CHECK(cudaEventSynchronize(model->upload_done));
        CUDA_CHECK(cudaFreeHost(model->upload_host));
        model->upload_host = NULL;
        model->upload_capacity = 0;
        CUDA_CHECK(cudaMallocHost(&model->upload_host, upload));
        model->upload_capacity = upload;
        model->positions_ready = 0;
    }
    if (model->poison &&
        vector_fill_nan((float *)model->arena, model->arena_bytes / sizeof(float), model->stream))
        return -1;
    return 0;
}
