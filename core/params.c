/*
 * params.c: builds the parameter table of a configuration (see params.h).
 * The order of tensors is the order of the forward pass; it is also the order
 * in which safetensors files are written.
 */
#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Appends one tensor; returns 0 or -1 on allocation failure. */
static int layout_add(ParamLayout *layout, int *capacity, const char *name,
                      int ndim, int rows, int cols, int decay) {
    if (layout->n_tensors == *capacity) {
        int new_capacity = *capacity ? 2 * *capacity : 64;
        ParamTensor *grown = realloc(layout->tensors, (size_t)new_capacity * sizeof *grown);
        if (!grown) return spiral_error("out of memory building the parameter table");
        layout->tensors = grown;
        *capacity = new_capacity;
    }
    ParamTensor *t = &layout->tensors[layout->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = rows;
    t->shape[1] = ndim == 2 ? cols : 0;
    t->numel = (size_t)rows * (ndim == 2 ? (size_t)cols : 1);
    t->offset = layout->n_params;
    t->decay = decay;
    layout->n_params += t->numel;
    return 0;
}

/* Appends the nine tensors of one Transformer layer "<block>.<l>.". */
static int layout_add_layer(ParamLayout *layout, int *capacity, const char *block,
                            int l, int d, int f) {
    static const char *square[4] = {"attn.wq", "attn.wk", "attn.wv", "attn.wo"};
    char name[PARAM_NAME_CAP];
    snprintf(name, sizeof name, "%s.%d.attn_norm.weight", block, l);
    if (layout_add(layout, capacity, name, 1, d, 0, 0)) return -1;
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%d.%s.weight", block, l, square[i]);
        if (layout_add(layout, capacity, name, 2, d, d, 1)) return -1;
    }
    snprintf(name, sizeof name, "%s.%d.mlp_norm.weight", block, l);
    if (layout_add(layout, capacity, name, 1, d, 0, 0)) return -1;
    snprintf(name, sizeof name, "%s.%d.mlp.w1.weight", block, l);
    if (layout_add(layout, capacity, name, 2, f, d, 1)) return -1;
    snprintf(name, sizeof name, "%s.%d.mlp.w3.weight", block, l);
    if (layout_add(layout, capacity, name, 2, f, d, 1)) return -1;
    snprintf(name, sizeof name, "%s.%d.mlp.w2.weight", block, l);
    if (layout_add(layout, capacity, name, 2, d, f, 1)) return -1;
    return 0;
}

int param_layout_build(ParamLayout *layout, const SpiralConfig *cfg) {
    int capacity = 0;
    int d = cfg->d_model, f = cfg->d_ff;
    char name[PARAM_NAME_CAP];
    memset(layout, 0, sizeof *layout);
    if (layout_add(layout, &capacity, "tok_emb.weight", 2, cfg->vocab_size, d, 1)) goto fail;
    for (int l = 0; l < cfg->n_pre; l++)
        if (layout_add_layer(layout, &capacity, "pre", l, d, f)) goto fail;
    for (int l = 0; l < cfg->n_loop; l++)
        if (layout_add_layer(layout, &capacity, "loop", l, d, f)) goto fail;
    for (int t = 0; t < cfg->n_iters; t++) {
        if (cfg->down == DOWN_SELFAGG) {
            snprintf(name, sizeof name, "iter.%d.down.score", t);
            if (layout_add(layout, &capacity, name, 1, d, 0, 0)) goto fail;
        }
        if (cfg->up == UP_ALLOC) {
            snprintf(name, sizeof name, "iter.%d.up.alloc", t);
            if (layout_add(layout, &capacity, name, 2, cfg->schedule[t].g, d, 0)) goto fail;
        }
        if (cfg->topology == TOPOLOGY_MESH) {
            static const char *const router[2] = {"write", "read"};
            for (int k = 0; k < 2; k++) {
                snprintf(name, sizeof name, "iter.%d.mesh.%s", t, router[k]);
                if (layout_add(layout, &capacity, name, 2, cfg->mesh_slots, d, 0)) goto fail;
                snprintf(name, sizeof name, "iter.%d.mesh.%s_bias", t, router[k]);
                if (layout_add(layout, &capacity, name, 1, cfg->mesh_slots, 0, 0)) goto fail;
            }
        }
    }
    for (int l = 0; l < cfg->n_post; l++)
        if (layout_add_layer(layout, &capacity, "post", l, d, f)) goto fail;
    if (layout_add(layout, &capacity, "final_norm.weight", 1, d, 0, 0)) goto fail;
    if (!cfg->tie_embeddings &&
        layout_add(layout, &capacity, "lm_head.weight", 2, cfg->vocab_size, d, 1)) goto fail;
    return 0;
fail:
    param_layout_free(layout);
    return -1;
}

void param_layout_free(ParamLayout *layout) {
    free(layout->tensors);
    memset(layout, 0, sizeof *layout);
}

int param_layout_find(const ParamLayout *layout, const char *name) {
    for (int i = 0; i < layout->n_tensors; i++)
        if (strcmp(layout->tensors[i].name, name) == 0) return i;
    return -1;
}
