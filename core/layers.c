/*
 * layers.c: forward and backward of the Transformer's building blocks (see
 * layers.h for the equations and the accumulate-into-gradients convention).
 *
 * Matrix products go through matmul() (OpenBLAS, one thread per call); the
 * rest are plain loops. Every function splits its work into tasks for the
 * pool of parallel.h: rows (or row blocks) when each output row depends on
 * its own input row only, columns when a gradient sums over rows (so each
 * element is still summed in row order), (batch, head) pairs in attention.
 * Reductions (sums of squares, log-sum-exp) accumulate in double so that the
 * float build loses no more than float rounding of the result.
 */
#include "layers.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastmath.h"
#include "matmul.h"
#include "parallel.h"
#include "reduce.h"

/* Elements per task of the elementwise loops: below this a second thread
 * costs more to wake than it saves. */
#define ELEMENTS_PER_TASK 16384

/* The number of tasks for `count` elements of `width` each, and the rows
 * (or columns) of task `part`. */
static int row_tasks(size_t rows, size_t width) {
    size_t per = ELEMENTS_PER_TASK / (width ? width : 1);
    return parallel_parts(rows, parallel_threads(), per ? per : 1);
}

static void row_range(size_t rows, size_t width, int part, size_t *begin, size_t *end) {
    size_t per = ELEMENTS_PER_TASK / (width ? width : 1);
    parallel_split(rows, parallel_threads(), per ? per : 1, part, begin, end);
}

/* Column tasks of a gradient summed over M rows of d columns: one per
 * thread in blocks of 16 columns, or one for all when M d is small. */
static int column_parts(int M, int d) {
    if ((size_t)M * d < ELEMENTS_PER_TASK) return 1;
    return parallel_parts((size_t)d, parallel_threads(), 16);
}

/* Columns [begin, end) of column task `part` of column_parts(M, d). */
static void column_range(int M, int d, int part, size_t *begin, size_t *end) {
    parallel_split((size_t)d, column_parts(M, d), 16, part, begin, end);
}


/* exp in the precision of real: libm's in double (the gradient checks),
 * exp_float (fastmath.h) in float. */
static inline real real_exp(real x) {
#ifdef SPIRAL_DOUBLE
    return exp(x);
#else
    return exp_float(x);
#endif
}

/* ------------------------------------------------------------------------ */
/* Embedding                                                                */

typedef struct {
    real *x, *dtable;
    const real *table, *dx;
    const int *tokens;
    int M, d;
} EmbeddingJob;

static void embedding_forward_task(void *ctx, int part, int thread) {
    const EmbeddingJob *j = ctx;
    size_t begin, end;
    row_range((size_t)j->M, (size_t)j->d, part, &begin, &end);
    for (size_t r = begin; r < end; r++)
        memcpy(j->x + r * j->d, j->table + (size_t)j->tokens[r] * j->d,
               (size_t)j->d * sizeof(real));
}

void embedding_forward(real *x, const int *tokens, const real *table, int M, int d) {
    EmbeddingJob job = {.x = x, .table = table, .tokens = tokens, .M = M, .d = d};
    parallel_for(row_tasks((size_t)M, (size_t)d), embedding_forward_task, &job);
}

/* Columns [begin, end) of dtable: rows sharing a token add up in row order. */
static void embedding_backward_task(void *ctx, int part, int thread) {
    const EmbeddingJob *j = ctx;
    size_t begin, end;
    column_range(j->M, j->d, part, &begin, &end);
    for (int r = 0; r < j->M; r++) {
        real *row = j->dtable + (size_t)j->tokens[r] * j->d;
        const real *g = j->dx + (size_t)r * j->d;
        for (size_t k = begin; k < end; k++) row[k] += g[k];
    }
}

void embedding_backward(real *dtable, const real *dx, const int *tokens, int M, int d) {
    EmbeddingJob job = {.dtable = dtable, .dx = dx, .tokens = tokens, .M = M, .d = d};
    parallel_for(column_parts(M, d), embedding_backward_task, &job);
}

/* ------------------------------------------------------------------------ */
/* Linear                                                                   */

void linear_forward(real *y, const real *x, const real *w, int M, int in, int out) {
    /* y (M, out) = x (M, in) W^T, W (out, in) */
    matmul_parallel(0, 1, M, out, in, 1, x, in, w, in, 0, y, out);
}

void linear_forward_shared(real *const *y, const real *x, const real *const *w, int count,
                           int M, int in, int out) {
    MatmulSpec products[4];
    if (count > 4) count = 4;
    for (int i = 0; i < count; i++)
        products[i] = (MatmulSpec){0, 1, M, out, in, 1, x, in, w[i], in, 0, y[i], out};
    matmul_parallel_many(products, count);
}

void linear_backward(real *dx, real *dw, const real *dy, const real *x, const real *w,
                     int M, int in, int out) {
    MatmulSpec products[2];
    int count = 0;
    /* dx (M, in) += dy (M, out) W (out, in) */
    if (dx) products[count++] = (MatmulSpec){0, 0, M, in, out, 1, dy, out, w, in, 1, dx, in};
    /* dW (out, in) += dy^T (out, M) x (M, in) */
    if (dw) products[count++] = (MatmulSpec){1, 0, out, in, M, 1, dy, out, x, in, 1, dw, in};
    matmul_parallel_many(products, count);
}

/* ------------------------------------------------------------------------ */
/* RMSNorm                                                                  */

typedef struct {
    real *y, *rstd, *dx, *dgain;
    const real *x, *gain, *dy, *saved_rstd;
    int M, d;
    double eps;
} NormJob;

static void rmsnorm_forward_task(void *ctx, int part, int thread) {
    const NormJob *j = ctx;
    int d = j->d;
    size_t begin, end;
    row_range((size_t)j->M, (size_t)d, part, &begin, &end);
    for (size_t r = begin; r < end; r++) {
        const real *xr = j->x + r * d;
        real *yr = j->y + r * d;
        double sum_sq = dot_double(xr, xr, d);
        real inv = (real)(1.0 / sqrt(sum_sq / d + j->eps));
        j->rstd[r] = inv;
        for (int k = 0; k < d; k++) yr[k] = xr[k] * inv * j->gain[k];
    }
}

void rmsnorm_forward(real *y, real *rstd, const real *x, const real *gain, int M, int d,
                     double eps) {
    NormJob job = {.y = y, .rstd = rstd, .x = x, .gain = gain, .M = M, .d = d, .eps = eps};
    parallel_for(row_tasks((size_t)M, (size_t)d), rmsnorm_forward_task, &job);
}

/* dx of rows [begin, end). */
static void rmsnorm_backward_rows(void *ctx, int part, int thread) {
    const NormJob *j = ctx;
    int d = j->d;
    size_t begin, end;
    row_range((size_t)j->M, (size_t)d, part, &begin, &end);
    for (size_t r = begin; r < end; r++) {
        const real *xr = j->x + r * d, *dyr = j->dy + r * d;
        real *dxr = j->dx + r * d;
        real inv = j->saved_rstd[r];
        double dot = 0; /* sum_m dy_m g_m x_m */
        for (int k = 0; k < d; k++) dot += (double)dyr[k] * j->gain[k] * xr[k];
        real coef = (real)(dot * inv * inv * inv / d);
        for (int k = 0; k < d; k++) dxr[k] += inv * j->gain[k] * dyr[k] - coef * xr[k];
    }
}

/* dgain of columns [begin, end), summed over rows in order. */
static void rmsnorm_backward_gain(void *ctx, int part, int thread) {
    const NormJob *j = ctx;
    size_t begin, end;
    column_range(j->M, j->d, part, &begin, &end);
    for (int r = 0; r < j->M; r++) {
        const real *xr = j->x + (size_t)r * j->d, *dyr = j->dy + (size_t)r * j->d;
        real inv = j->saved_rstd[r];
        for (size_t k = begin; k < end; k++) j->dgain[k] += dyr[k] * xr[k] * inv;
    }
}

void rmsnorm_backward(real *dx, real *dgain, const real *dy, const real *x, const real *gain,
                      const real *rstd, int M, int d) {
    NormJob job = {.dx = dx, .dgain = dgain, .x = x, .gain = gain, .dy = dy,
                   .saved_rstd = rstd, .M = M, .d = d};
    parallel_for(row_tasks((size_t)M, (size_t)d), rmsnorm_backward_rows, &job);
    parallel_for(column_parts(M, d), rmsnorm_backward_gain, &job);
}

/* ------------------------------------------------------------------------ */
/* RoPE                                                                     */

typedef struct {
    real *x;
    const int *pos;
    int B, n, H, dh;
    double base, sign;
} RopeJob;

/* Rotates every head of every batch row at positions [begin, end) by angle
 * sign * pos[i] * freq_m, freq_m = base^(-2m / dh): the cosines and sines
 * of one position once, then each head's halves as contiguous vectors. */
static void rope_task(void *ctx, int part, int thread) {
    const RopeJob *j = ctx;
    int half = j->dh / 2, D = j->H * j->dh;
    double freq[half];
    real cos_m[half], sin_m[half];
    for (int m = 0; m < half; m++) freq[m] = pow(j->base, -2.0 * m / j->dh);
    size_t begin, end;
    row_range((size_t)j->n, (size_t)j->B * D, part, &begin, &end);
    for (size_t i = begin; i < end; i++) {
        for (int m = 0; m < half; m++) {
            double angle = j->sign * (double)j->pos[i] * freq[m];
            cos_m[m] = (real)cos(angle);
            sin_m[m] = (real)sin(angle);
        }
        for (int b = 0; b < j->B; b++) {
            real *row = j->x + ((size_t)b * j->n + i) * D;
            for (int h = 0; h < j->H; h++) {
                real *x1 = row + h * j->dh, *x2 = x1 + half;
                for (int m = 0; m < half; m++) {
                    real a = x1[m], bb = x2[m];
                    x1[m] = a * cos_m[m] - bb * sin_m[m];
                    x2[m] = a * sin_m[m] + bb * cos_m[m];
                }
            }
        }
    }
}

static void rope_rotate(real *x, const int *pos, int B, int n, int H, int dh, double base,
                        double sign) {
    RopeJob job = {x, pos, B, n, H, dh, base, sign};
    parallel_for(row_tasks((size_t)n, (size_t)B * H * dh), rope_task, &job);
}

void rope_forward(real *x, const int *pos, int B, int n, int H, int dh, double base) {
    rope_rotate(x, pos, B, n, H, dh, base, 1.0);
}

void rope_backward(real *dx, const int *pos, int B, int n, int H, int dh, double base) {
    rope_rotate(dx, pos, B, n, H, dh, base, -1.0);
}

/* ------------------------------------------------------------------------ */
/* Attention                                                                */

typedef struct {
    real *y, *probs, *dq, *dk, *dv, *scratch;
    const real *q, *k, *v, *dy, *saved_probs;
    int B, n, H, dh;
} AttentionJob;

size_t attention_scratch_size(int n) {
    int rows = n < ATTENTION_BLOCK ? n : ATTENTION_BLOCK;
    return (size_t)parallel_threads() * rows * n;
}

/* Head h of batch row b (task = b * H + h). Per block of query rows
 * [i0, i1): S = scale q k[0:i1]^T into P's rows, softmax over j <= i, zeros
 * beyond, y = P[:, 0:i1] v[0:i1]. */
static void attention_forward_task(void *ctx, int task, int thread) {
    const AttentionJob *j = ctx;
    int n = j->n, D = j->H * j->dh, b = task / j->H, h = task % j->H;
    real scale = (real)(1.0 / sqrt((double)j->dh));
    size_t col = (size_t)b * n * D + (size_t)h * j->dh;
    real *p = j->probs + (size_t)task * n * n; /* (n, n) */
    for (int i0 = 0; i0 < n; i0 += ATTENTION_BLOCK) {
        int i1 = i0 + ATTENTION_BLOCK < n ? i0 + ATTENTION_BLOCK : n;
        real *block = p + (size_t)i0 * n;
        matmul(0, 1, i1 - i0, i1, j->dh, scale, j->q + col + (size_t)i0 * D, D, j->k + col, D,
               0, block, n);
        for (int i = i0; i < i1; i++) {
            real *row = p + (size_t)i * n;
            real max = max_real(row, i + 1);
            for (int c = 0; c <= i; c++) row[c] = real_exp(row[c] - max);
            double sum = sum_double(row, i + 1);
            real inv = (real)(1.0 / sum);
            for (int c = 0; c <= i; c++) row[c] *= inv;
            memset(row + i + 1, 0, (size_t)(n - i - 1) * sizeof(real));
        }
        matmul(0, 0, i1 - i0, j->dh, i1, 1, block, n, j->v + col, D, 0,
               j->y + col + (size_t)i0 * D, D);
    }
}

void attention_forward(real *y, real *probs, const real *q, const real *k, const real *v,
                       int B, int n, int H, int dh) {
    AttentionJob job = {.y = y, .probs = probs, .q = q, .k = k, .v = v,
                        .B = B, .n = n, .H = H, .dh = dh};
    parallel_for_work(B * H, attention_forward_task, &job, (double)B * H * n * n * (dh / 4.0 + 5));
}

/* Head h of batch row b, per block of query rows [i0, i1), in this thread's
 * scratch (rows, i1): dP = dy v[0:i1]^T, then dS in place; dq += dS k,
 * dk[0:i1] += dS^T q, dv[0:i1] += P^T dy. */
static void attention_backward_task(void *ctx, int task, int thread) {
    const AttentionJob *j = ctx;
    int n = j->n, D = j->H * j->dh, dh = j->dh, b = task / j->H, h = task % j->H;
    real scale = (real)(1.0 / sqrt((double)dh));
    size_t col = (size_t)b * n * D + (size_t)h * dh;
    const real *p = j->saved_probs + (size_t)task * n * n;
    int block_rows = n < ATTENTION_BLOCK ? n : ATTENTION_BLOCK;
    real *ds = j->scratch + (size_t)thread * block_rows * n; /* (rows, i1), leading dim i1 */
    for (int i0 = 0; i0 < n; i0 += ATTENTION_BLOCK) {
        int i1 = i0 + ATTENTION_BLOCK < n ? i0 + ATTENTION_BLOCK : n, rows = i1 - i0;
        const real *dy = j->dy + col + (size_t)i0 * D;
        const real *pb = p + (size_t)i0 * n;
        matmul(0, 1, rows, i1, dh, 1, dy, D, j->v + col, D, 0, ds, i1);
        for (int r = 0; r < rows; r++) {
            int i = i0 + r;
            const real *prow = pb + (size_t)r * n;
            real *drow = ds + (size_t)r * i1;
            double dot = dot_double(prow, drow, i + 1);
            for (int c = 0; c <= i; c++) drow[c] = prow[c] * (drow[c] - (real)dot) * scale;
            for (int c = i + 1; c < i1; c++) drow[c] = 0;
        }
        matmul(0, 0, rows, dh, i1, 1, ds, i1, j->k + col, D, 1, j->dq + col + (size_t)i0 * D, D);
        matmul(1, 0, i1, dh, rows, 1, ds, i1, j->q + col + (size_t)i0 * D, D, 1, j->dk + col, D);
        matmul(1, 0, i1, dh, rows, 1, pb, n, dy, D, 1, j->dv + col, D);
    }
}

void attention_backward(real *dq, real *dk, real *dv, real *scratch, const real *dy,
                        const real *probs, const real *q, const real *k, const real *v,
                        int B, int n, int H, int dh) {
    AttentionJob job = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .dy = dy,
                        .saved_probs = probs, .q = q, .k = k, .v = v,
                        .B = B, .n = n, .H = H, .dh = dh};
    parallel_for_work(B * H, attention_backward_task, &job, (double)B * H * n * n * (dh / 2.0 + 2));
}

/* ------------------------------------------------------------------------ */
/* SwiGLU                                                                   */

typedef struct {
    real *m, *da, *dc;
    const real *a, *c, *dm;
    size_t count;
} SwigluJob;

static void swiglu_forward_task(void *ctx, int part, int thread) {
    const SwigluJob *j = ctx;
    size_t begin, end;
    row_range(j->count, 1, part, &begin, &end);
    real *m = j->m;
    const real *a = j->a, *c = j->c;
    /* sigmoid first, then the products: written as a / (1 + e) * c, GCC
     * vectorizes the clamp of exp_float into four divisions, 4x slower */
    for (size_t i = begin; i < end; i++) {
        real s = 1 / (1 + real_exp(-a[i]));
        m[i] = a[i] * s * c[i];
    }
}

void swiglu_forward(real *m, const real *a, const real *c, size_t count) {
    SwigluJob job = {.m = m, .a = a, .c = c, .count = count};
    parallel_for(row_tasks(count, 1), swiglu_forward_task, &job);
}

static void swiglu_backward_task(void *ctx, int part, int thread) {
    const SwigluJob *j = ctx;
    size_t begin, end;
    row_range(j->count, 1, part, &begin, &end);
    real *da = j->da, *dc = j->dc;
    const real *dm = j->dm, *a = j->a, *c = j->c;
    for (size_t i = begin; i < end; i++) {
        real s = 1 / (1 + real_exp(-a[i]));
        real silu = a[i] * s;
        da[i] += dm[i] * c[i] * s * (1 + a[i] * (1 - s));
        dc[i] += dm[i] * silu;
    }
}

void swiglu_backward(real *da, real *dc, const real *dm, const real *a, const real *c,
                     size_t count) {
    SwigluJob job = {.da = da, .dc = dc, .dm = dm, .a = a, .c = c, .count = count};
    parallel_for(row_tasks(count, 1), swiglu_backward_task, &job);
}

/* ------------------------------------------------------------------------ */
/* Cross-entropy                                                            */

/* Row parts of the loss: a fixed number, so that the sum of their partial
 * sums (taken in order) is the same for any thread count. */
#define CROSSENTROPY_PARTS 32

typedef struct {
    real *dlogits;
    const real *logits;
    const int *targets;
    int M, V;
    real scale;
    double part_loss[CROSSENTROPY_PARTS];
    int part_count[CROSSENTROPY_PARTS];
} CrossEntropyJob;

/* log(sum_j exp(row_j)) = max + log(sum_j exp(row_j - max)): the
 * exponentials in the precision of real, 64 at a time (real_exp
 * vectorizes), their sum in double. */
static double log_sum_exp(const real *row, int V) {
    real max = max_real(row, V);
    real e[64];
    double sum = 0;
    for (int c0 = 0; c0 < V; c0 += 64) {
        int count = V - c0 < 64 ? V - c0 : 64;
        for (int c = 0; c < count; c++) e[c] = real_exp(row[c0 + c] - max);
        sum += sum_double(e, count);
    }
    return max + log(sum);
}

static void crossentropy_forward_task(void *ctx, int part, int thread) {
    CrossEntropyJob *j = ctx;
    size_t begin, end;
    parallel_split((size_t)j->M, CROSSENTROPY_PARTS, 1, part, &begin, &end);
    double total = 0;
    int n = 0;
    for (size_t r = begin; r < end; r++) {
        if (j->targets[r] < 0) continue;
        const real *row = j->logits + r * j->V;
        total += log_sum_exp(row, j->V) - row[j->targets[r]];
        n++;
    }
    j->part_loss[part] = total;
    j->part_count[part] = n;
}

double crossentropy_forward(const real *logits, const int *targets, int M, int V, int *count) {
    CrossEntropyJob job = {.logits = logits, .targets = targets, .M = M, .V = V};
    int parts = parallel_parts((size_t)M, CROSSENTROPY_PARTS, 1);
    parallel_for_work(parts, crossentropy_forward_task, &job, 12.0 * M * V);
    double total = 0;
    int n = 0;
    for (int p = 0; p < parts; p++) {
        total += job.part_loss[p];
        n += job.part_count[p];
    }
    if (count) *count = n;
    return n ? total / n : 0;
}

static void crossentropy_backward_task(void *ctx, int part, int thread) {
    const CrossEntropyJob *j = ctx;
    size_t begin, end;
    row_range((size_t)j->M, (size_t)j->V, part, &begin, &end);
    for (size_t r = begin; r < end; r++) {
        if (j->targets[r] < 0) continue;
        const real *row = j->logits + r * j->V;
        real *drow = j->dlogits + r * j->V;
        double lse = log_sum_exp(row, j->V);
        for (int c = 0; c < j->V; c++) drow[c] += j->scale * real_exp((real)(row[c] - lse));
        drow[j->targets[r]] -= j->scale;
    }
}

void crossentropy_backward(real *dlogits, const real *logits, const int *targets, int M, int V,
                           real scale) {
    CrossEntropyJob job = {.dlogits = dlogits, .logits = logits, .targets = targets, .M = M,
                           .V = V, .scale = scale};
    parallel_for(row_tasks((size_t)M, (size_t)V), crossentropy_backward_task, &job);
}
