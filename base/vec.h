/*
 * vec.h: elementwise operations on long vectors (the residual stream, the
 * gradient buffers), split into chunks on the thread pool of parallel.h.
 * Each element's result is the same for any thread count.
 */
#ifndef SPIRAL_VEC_H
#define SPIRAL_VEC_H

#include <stddef.h>

#include "real.h"

/* x = 0. */
void vec_zero(real *x, size_t count);
/* dst = src. */
void vec_copy(real *dst, const real *src, size_t count);
/* dst += src. */
void vec_add(real *dst, const real *src, size_t count);
/* dst = a - b. */
void vec_sub(real *dst, const real *a, const real *b, size_t count);
/* dst = -src. */
void vec_negate(real *dst, const real *src, size_t count);
/* x *= scale. */
void vec_scale(real *x, real scale, size_t count);

/* Elements per chunk: below twice this, operations run on the caller. */
#define VEC_CHUNK 32768

#endif
