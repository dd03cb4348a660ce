/*
 * model_memory.h: the activation arena and backward scratch of a Model
 * (core/model_memory.c), internal to core/model.c.
 *
 * Shapes: B sequences of L tokens, d = d_model, F = d_ff, V = vocab_size.
 */
#ifndef SPIRAL_MODEL_MEMORY_H
#define SPIRAL_MODEL_MEMORY_H

#include "model.h"

/* Named slices of the backward scratch. */
typedef struct {
    real *stream[2];           /* (B, L, d) residual-stream gradients, ping-pong */
    real *core[2];             /* (B, L, d) gradients between core layers */
    real *dh0;                 /* (B, L, d) anchor: gradient reaching h(0) */
    real *dz, *ddelta;         /* (B, L, d) at most */
    real *dxn;                 /* (B, L, d) */
    real *layer_dxn1, *layer_dq, *layer_dk, *layer_dv, *layer_datt, *layer_dx2, *layer_dxn2;
    real *layer_da, *layer_dc, *layer_dm;  /* (B, L, F) */
    real *layer_dprobs;        /* attention_scratch_size(L) */
    real *dlogits;             /* (B, L, V) */
    real *scale;               /* scale_scratch_max: per-token scaling gradients */
    /* topology mesh only (S = mesh_slots), else NULL: */
    real *mesh_dmem;           /* (S, B, L, d) gradient of the memory slots, carried back */
    real *mesh_de;             /* (B, L, d) gradient of e through the memory */
    real *mesh_dl;             /* mesh_scratch_size: router logits' gradients */
} Scratch;

/* Makes sure the arena and the scratch fit (B, L), allocating only when
 * they grow, and points every activation view of model at its place. */
int model_ensure_activations(Model *model, int B, int L);

/* The backward scratch's slices at the size of the last forward pass. */
Scratch model_scratch_slices(Model *model);

#endif
