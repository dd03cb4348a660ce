/*
 * params.h: the table of parameter tensors of a configuration.
 *
 * All parameters live in one contiguous buffer (and the gradients in a second
 * buffer of the same layout), like llm.c: a tensor is a name, a shape and an
 * offset into that buffer. The names and [out, in] layout are those of
 * docs/model.md (and of torch.nn.Linear), so a safetensors file maps one to one:
 *
 *   tok_emb.weight (V,d)       final_norm.weight (d)   lm_head.weight (V,d) if untied
 *   {pre|loop|post}.{l}.attn_norm.weight (d)   .attn.wq|wk|wv|wo.weight (d,d)
 *   {pre|loop|post}.{l}.mlp_norm.weight (d)    .mlp.w1|w3.weight (F,d)  .mlp.w2.weight (d,F)
 *   iter.{t}.down.score (d)    (selfagg only)
 *   iter.{t}.up.alloc (g_t,d)  (alloc only)
 *   iter.{t}.mesh.write (S,d)  .mesh.write_bias (S)  .mesh.read (S,d)  .mesh.read_bias (S)
 *                              (topology mesh only, S = mesh_slots)
 *
 * The loop core's layers appear once, however many iterations run.
 */
#ifndef SPIRAL_PARAMS_H
#define SPIRAL_PARAMS_H

#include <stddef.h>

#include "config.h"

#define PARAM_NAME_CAP 64

typedef struct {
    char name[PARAM_NAME_CAP];
    int ndim;          /* 1 or 2 */
    int shape[2];      /* shape[1] unused when ndim == 1 */
    size_t offset;     /* in elements, into the parameter buffer */
    size_t numel;
    int decay;         /* 1: weight decay applies (matrices); 0: gains, scores */
} ParamTensor;

typedef struct {
    int n_tensors;
    ParamTensor *tensors;
    size_t n_params;   /* total elements */
} ParamLayout;

/* Builds the table for cfg (which must be valid). Returns 0 or -1. */
int param_layout_build(ParamLayout *layout, const SpiralConfig *cfg);
void param_layout_free(ParamLayout *layout);

/* Index of the tensor with this name, or -1. */
int param_layout_find(const ParamLayout *layout, const char *name);

#endif
