/*
 * model_memory.c: where a forward and backward pass keep their numbers.
 *
 * One activation arena holds every view model_forward saves for
 * model_backward (LayerActs, IterActs, embedding, logits), an int arena the
 * token copies and positions, and one scratch buffer the backward pass's
 * temporaries (Scratch). The same planning functions first measure (a Bump
 * with no base only counts) and then lay out, so the sizes and the views
 * can never disagree; the buffers grow only when (B, L) grows.
 */
#include "model_memory.h"

#include <stdlib.h>
#include <sys/mman.h>

#include "error.h"
#include "layers.h"
#include "mesh.h"

/* A bump allocator over a buffer; with base == NULL it only counts, so the
 * same planning code measures the arena and then lays it out. */
typedef struct {
    real *base;
    size_t used;
    int *int_base;
    size_t int_used;
} Bump;

/* Views start on a 64-byte cache line (arena_alloc aligns the base), so
 * that threads writing neighbouring views never share a line; nor do
 * threads writing neighbouring heads' columns of one view, when a head's
 * width is a multiple of 64 bytes (16 floats). */
#define VIEW_ALIGN_REALS (64 / sizeof(real))

static real *take(Bump *bump, size_t count) {
    real *p = bump->base ? bump->base + bump->used : NULL;
    bump->used += (count + VIEW_ALIGN_REALS - 1) / VIEW_ALIGN_REALS * VIEW_ALIGN_REALS;
    return p;
}

static int *take_ints(Bump *bump, size_t count) {
    int *p = bump->int_base ? bump->int_base + bump->int_used : NULL;
    bump->int_used += count;
    return p;
}

/* Lays out one layer application at length n. */
static void plan_layer(LayerActs *acts, Bump *bump, const SpiralConfig *cfg, int B, int n,
                       const int *pos) {
    size_t rows = (size_t)B * n, d = (size_t)cfg->d_model, f = (size_t)cfg->d_ff;
    acts->n = n;
    acts->pos = pos;
    acts->xn1 = take(bump, rows * d);
    acts->rstd1 = take(bump, rows);
    acts->q = take(bump, rows * d);
    acts->k = take(bump, rows * d);
    acts->v = take(bump, rows * d);
    acts->probs = take(bump, (size_t)B * cfg->n_heads * n * n);
    acts->att = take(bump, rows * d);
    acts->x2 = take(bump, rows * d);
    acts->xn2 = take(bump, rows * d);
    acts->rstd2 = take(bump, rows);
    acts->a = take(bump, rows * f);
    acts->c = take(bump, rows * f);
    acts->m = take(bump, rows * f);
    acts->out = take(bump, rows * d);
}

/* Lays out (or, with empty bump bases, measures) every activation of a
 * forward pass at size (B, L). */
static void plan_activations(Model *model, Bump *bump, int B, int L) {
    const SpiralConfig *cfg = &model->cfg;
    size_t tokens = (size_t)B * L, d = (size_t)cfg->d_model;
    model->tokens = take_ints(bump, tokens);
    model->targets = take_ints(bump, tokens);
    model->token_pos = take_ints(bump, (size_t)L);
    model->emb = take(bump, tokens * d);
    for (int l = 0; l < cfg->n_pre; l++)
        plan_layer(&model->pre[l], bump, cfg, B, L, model->token_pos);
    for (int t = 0; t < cfg->n_iters; t++) {
        IterActs *it = &model->iters[t];
        const IterSpec *spec = &cfg->schedule[t];
        it->geo = chunk_geometry(L, spec);
        it->full_resolution = spec->g == 1 && spec->shift == 0;
        int J = it->geo.J;
        it->pos = take_ints(bump, (size_t)J);
        it->z = it->alpha = it->delta = it->coef = it->e = it->h_out = NULL;
        int residual = cfg->topology == TOPOLOGY_RESIDUAL;
        /* delta = z~ - z needs its own view except in the residual shortcut */
        if (cfg->topology != TOPOLOGY_ANCHOR && !(it->full_resolution && residual))
            it->delta = take(bump, (size_t)B * J * d);
        if (!it->full_resolution) {
            it->z = take(bump, (size_t)B * J * d);
            if (cfg->down == DOWN_SELFAGG) it->alpha = take(bump, tokens);
            if (cfg->up == UP_ALLOC) it->coef = take(bump, (size_t)B * J * spec->g);
            it->e = take(bump, tokens * d); /* at full resolution e aliases delta or z~ */
        }
        if (!(it->full_resolution && residual)) it->h_out = take(bump, tokens * d);
        it->mesh_mem = it->mesh_k = it->mesh_w = it->mesh_r = NULL;
        if (cfg->topology == TOPOLOGY_MESH) {
            size_t S = (size_t)cfg->mesh_slots;
            it->mesh_mem = take(bump, S * tokens * d);
            it->mesh_k = take(bump, tokens * d);
            it->mesh_w = take(bump, tokens * S);
            it->mesh_r = take(bump, tokens * S);
        }
        for (int l = 0; l < cfg->n_loop; l++) plan_layer(&it->layers[l], bump, cfg, B, J, it->pos);
    }
    for (int l = 0; l < cfg->n_post; l++)
        plan_layer(&model->post[l], bump, cfg, B, L, model->token_pos);
    model->xn_final = take(bump, tokens * d);
    model->rstd_final = take(bump, tokens);
    model->logits = take(bump, tokens * cfg->vocab_size);
}

/* Reals of the scaling backward's scratch: the most any iteration needs. */
static size_t scale_scratch_max(const SpiralConfig *cfg, int B, int L) {
    size_t most = 0;
    for (int t = 0; t < cfg->n_iters; t++) {
        ChunkGeometry geo = chunk_geometry(L, &cfg->schedule[t]);
        size_t need = scale_scratch_size(&geo, B);
        if (need > most) most = need;
    }
    return most;
}


/* Lays the slices out over bump at size (B, L) (with a counting bump, only
 * measures them). */
static Scratch scratch_plan(Bump *bump, const SpiralConfig *cfg, int B, int L) {
    size_t tokens = (size_t)B * L, d = (size_t)cfg->d_model;
    size_t f = (size_t)cfg->d_ff;
    Scratch s;
    s.stream[0] = take(bump, tokens * d);
    s.stream[1] = take(bump, tokens * d);
    s.core[0] = take(bump, tokens * d);
    s.core[1] = take(bump, tokens * d);
    s.dh0 = take(bump, tokens * d);
    s.dz = take(bump, tokens * d);
    s.ddelta = take(bump, tokens * d);
    s.dxn = take(bump, tokens * d);
    s.layer_dxn1 = take(bump, tokens * d);
    s.layer_dq = take(bump, tokens * d);
    s.layer_dk = take(bump, tokens * d);
    s.layer_dv = take(bump, tokens * d);
    s.layer_datt = take(bump, tokens * d);
    s.layer_dx2 = take(bump, tokens * d);
    s.layer_dxn2 = take(bump, tokens * d);
    s.layer_da = take(bump, tokens * f);
    s.layer_dc = take(bump, tokens * f);
    s.layer_dm = take(bump, tokens * f);
    s.layer_dprobs = take(bump, attention_scratch_size(L));
    s.dlogits = take(bump, tokens * cfg->vocab_size);
    s.scale = take(bump, scale_scratch_max(cfg, B, L));
    s.mesh_dmem = s.mesh_de = s.mesh_dl = NULL;
    if (cfg->topology == TOPOLOGY_MESH) {
        s.mesh_dmem = take(bump, (size_t)cfg->mesh_slots * tokens * d);
        s.mesh_de = take(bump, tokens * d);
        s.mesh_dl = take(bump, mesh_scratch_size(B, L, cfg->mesh_slots));
    }
    return s;
}

/* The scratch slices over the model's scratch buffer at its last (B, L). */
Scratch model_scratch_slices(Model *model) {
    Bump bump = {model->scratch, 0, NULL, 0};
    return scratch_plan(&bump, &model->cfg, model->B, model->L);
}

/* Reals of the backward scratch at size (B, L). */
static size_t scratch_size(const SpiralConfig *cfg, int B, int L) {
    Bump measure = {0};
    scratch_plan(&measure, cfg, B, L);
    return measure.used;
}

size_t model_activation_bytes(Model *model, int B, int L) {
    Bump measure = {0};
    plan_activations(model, &measure, B, L);
    /* plan_activations pointed the views at nothing; lay them out again over
     * the current arena if there is one, so a later backward still works. */
    if (model->arena && model->B > 0) {
        Bump layout = {model->arena, 0, model->int_arena, 0};
        plan_activations(model, &layout, model->B, model->L);
    }
    return measure.used * sizeof(real) + measure.int_used * sizeof(int) +
           scratch_size(&model->cfg, B, L) * sizeof(real);
}

/* count reals for the activation arena or the backward scratch: aligned to
 * 2 MiB and marked for transparent huge pages, so that first touching them
 * takes one page fault per 2 MiB instead of one per 4 KiB (on a virtual
 * machine the first step of a run or recording spent about a third of its
 * time in those faults); below 2 MiB, aligned to a cache line. Freed with
 * free(). NULL if out of memory. */
static real *arena_alloc(size_t count) {
    size_t huge = (size_t)2 << 20, bytes = count * sizeof(real);
    void *p = NULL;
    if (bytes < huge) return posix_memalign(&p, 64, bytes ? bytes : 1) ? NULL : p;
    bytes = (bytes + huge - 1) / huge * huge;
    if (posix_memalign(&p, huge, bytes)) return NULL;
    madvise(p, bytes, MADV_HUGEPAGE); /* advice only: ignore a refusal */
    return p;
}

/* Makes sure the arena fits (B, L); allocates only when it grows. */
int model_ensure_activations(Model *model, int B, int L) {
    Bump measure = {0};
    plan_activations(model, &measure, B, L);
    if (measure.used > model->arena_capacity) {
        free(model->arena);
        model->arena = arena_alloc(measure.used);
        model->arena_capacity = model->arena ? measure.used : 0;
        if (!model->arena) return spiral_error("out of memory: activations for B=%d, L=%d need %.1f MB",
                                               B, L, measure.used * sizeof(real) / 1e6);
    }
    if (measure.int_used > model->int_arena_capacity) {
        free(model->int_arena);
        model->int_arena = malloc(measure.int_used * sizeof(int));
        model->int_arena_capacity = model->int_arena ? measure.int_used : 0;
        if (!model->int_arena) return spiral_error("out of memory: token buffers");
    }
    size_t scratch = scratch_size(&model->cfg, B, L);
    if (scratch > model->scratch_capacity) {
        free(model->scratch);
        model->scratch = arena_alloc(scratch);
        model->scratch_capacity = model->scratch ? scratch : 0;
        if (!model->scratch) return spiral_error("out of memory: backward scratch");
    }
    Bump layout = {model->arena, 0, model->int_arena, 0};
    plan_activations(model, &layout, B, L);
    model->B = B;
    model->L = L;
    return 0;
}
