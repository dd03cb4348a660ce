/*
 * checkpoint.h: model weights (and gradients) <-> safetensors files.
 *
 * A checkpoint is one safetensors file holding every tensor of the
 * configuration's parameter table (params.h), in table order, as float32,
 * with the model configuration as JSON in __metadata__["config"] and
 * "format": "pt" (what PyTorch's loaders expect). The file is therefore
 * self-describing: weights_load rebuilds the configuration and the layout
 * from it, and the same file opens in Python with safetensors.torch.
 *
 * In memory the parameters are one contiguous buffer of `real` (float, or
 * double with -DSPIRAL_DOUBLE); the file is always float32, converted element
 * by element. Gradient files use the same functions with the gradient buffer.
 */
#ifndef SPIRAL_CHECKPOINT_H
#define SPIRAL_CHECKPOINT_H

#include "config.h"
#include "params.h"
#include "real.h"

/* Writes values (layout->n_params elements, laid out by `layout`, which must
 * be the layout of cfg) to path, atomically (temporary file + rename).
 * Returns 0 or -1 (spiral_error naming the path). */
int weights_save(const char *path, const SpiralConfig *cfg, const ParamLayout *layout,
                 const real *values);

/* Reads a checkpoint: parses __metadata__["config"] into *cfg, builds
 * *layout with param_layout_build and sets *values to a malloc'd buffer of
 * layout->n_params elements filled from the file (the caller frees it and
 * calls param_layout_free). Every tensor of the layout must be present with
 * its exact shape; any other tensor is an error, except optimizer state
 * ("adam.*") and, in a tied model, an "lm_head.weight" equal to
 * "tok_emb.weight". On failure (-1, spiral_error naming the file and the
 * tensor) nothing is allocated: *values is NULL and *layout is empty.
 * Tensors stored as F16, BF16 or F64 are converted like any other. */
int weights_load(const char *path, SpiralConfig *cfg, ParamLayout *layout, real **values);

#endif
