/*
 * vec.c: the elementwise operations of vec.h.
 */
#include "vec.h"

#include <string.h>

#include "parallel.h"

typedef enum { VEC_ZERO, VEC_COPY, VEC_ADD, VEC_SUB, VEC_NEGATE, VEC_SCALE } VecOp;

typedef struct {
    VecOp op;
    real *dst;
    const real *a, *b;
    real scale;
    size_t count;
} VecJob;

/* Chunk `part` of the job. */
static void vec_task(void *ctx, int part, int thread) {
    const VecJob *j = ctx;
    size_t begin, end;
    parallel_split(j->count, parallel_threads(), VEC_CHUNK, part, &begin, &end);
    real *dst = j->dst;
    const real *a = j->a, *b = j->b;
    switch (j->op) {
    case VEC_ZERO:
        memset(dst + begin, 0, (end - begin) * sizeof(real));
        break;
    case VEC_COPY:
        memcpy(dst + begin, a + begin, (end - begin) * sizeof(real));
        break;
    case VEC_ADD:
        for (size_t i = begin; i < end; i++) dst[i] += a[i];
        break;
    case VEC_SUB:
        for (size_t i = begin; i < end; i++) dst[i] = a[i] - b[i];
        break;
    case VEC_NEGATE:
        for (size_t i = begin; i < end; i++) dst[i] = -a[i];
        break;
    case VEC_SCALE:
        for (size_t i = begin; i < end; i++) dst[i] *= j->scale;
        break;
    }
}

/* Runs one operation over [0, count). */
static void vec_run(VecOp op, real *dst, const real *a, const real *b, real scale,
                    size_t count) {
    VecJob job = {op, dst, a, b, scale, count};
    parallel_for_work(parallel_parts(count, parallel_threads(), VEC_CHUNK), vec_task, &job,
                      (double)count);
}

void vec_zero(real *x, size_t count) { vec_run(VEC_ZERO, x, NULL, NULL, 0, count); }
void vec_copy(real *dst, const real *src, size_t count) { vec_run(VEC_COPY, dst, src, NULL, 0, count); }
void vec_add(real *dst, const real *src, size_t count) { vec_run(VEC_ADD, dst, src, NULL, 0, count); }
void vec_sub(real *dst, const real *a, const real *b, size_t count) {
    vec_run(VEC_SUB, dst, a, b, 0, count);
}
void vec_negate(real *dst, const real *src, size_t count) {
    vec_run(VEC_NEGATE, dst, src, NULL, 0, count);
}
void vec_scale(real *x, real scale, size_t count) {
    vec_run(VEC_SCALE, x, NULL, NULL, scale, count);
}
