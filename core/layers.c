/*
 * layers.c: forward and backward of the Transformer's building blocks (see
 * layers.h for the equations and the accumulate-into-gradients convention).
 *
 * Matrix products go through matmul() (OpenBLAS); the rest are plain loops.
 * Reductions (sums of squares, log-sum-exp) accumulate in double so that the
 * float build loses no more than float rounding of the result.
 */
#include "layers.h"

#include <math.h>
#include <string.h>

#include "matmul.h"

/* exp in the precision of real. */
static inline real real_exp(real x) {
#ifdef SPIRAL_DOUBLE
    return exp(x);
#else
    return expf(x);
#endif
}

void embedding_forward(real *x, const int *tokens, const real *table, int M, int d) {
    for (int r = 0; r < M; r++)
        memcpy(x + (size_t)r * d, table + (size_t)tokens[r] * d, (size_t)d * sizeof(real));
}

void embedding_backward(real *dtable, const real *dx, const int *tokens, int M, int d) {
    for (int r = 0; r < M; r++) {
        real *row = dtable + (size_t)tokens[r] * d;
        const real *g = dx + (size_t)r * d;
        for (int k = 0; k < d; k++) row[k] += g[k];
    }
}

void linear_forward(real *y, const real *x, const real *w, int M, int in, int out) {
    /* y (M, out) = x (M, in) W^T, W (out, in) */
    matmul(0, 1, M, out, in, 1, x, in, w, in, 0, y, out);
}

void linear_backward(real *dx, real *dw, const real *dy, const real *x, const real *w,
                     int M, int in, int out) {
    /* dx (M, in) += dy (M, out) W (out, in) */
    if (dx) matmul(0, 0, M, in, out, 1, dy, out, w, in, 1, dx, in);
    /* dW (out, in) += dy^T (out, M) x (M, in) */
    if (dw) matmul(1, 0, out, in, M, 1, dy, out, x, in, 1, dw, in);
}

void rmsnorm_forward(real *y, real *rstd, const real *x, const real *gain, int M, int d,
                     double eps) {
    for (int r = 0; r < M; r++) {
        const real *xr = x + (size_t)r * d;
        real *yr = y + (size_t)r * d;
        double sum_sq = 0;
        for (int k = 0; k < d; k++) sum_sq += (double)xr[k] * xr[k];
        real inv = (real)(1.0 / sqrt(sum_sq / d + eps));
        rstd[r] = inv;
        for (int k = 0; k < d; k++) yr[k] = xr[k] * inv * gain[k];
    }
}

void rmsnorm_backward(real *dx, real *dgain, const real *dy, const real *x, const real *gain,
                      const real *rstd, int M, int d) {
    for (int r = 0; r < M; r++) {
        const real *xr = x + (size_t)r * d, *dyr = dy + (size_t)r * d;
        real *dxr = dx + (size_t)r * d;
        real inv = rstd[r];
        double dot = 0; /* sum_m dy_m g_m x_m */
        for (int k = 0; k < d; k++) dot += (double)dyr[k] * gain[k] * xr[k];
        real coef = (real)(dot * inv * inv * inv / d);
        for (int k = 0; k < d; k++) {
            dxr[k] += inv * gain[k] * dyr[k] - coef * xr[k];
            dgain[k] += dyr[k] * xr[k] * inv;
        }
    }
}

/* Rotates every head of every row of x by angle sign * pos[i] * freq_m
 * (sign = +1 forward, -1 backward). */
static void rope_rotate(real *x, const int *pos, int B, int n, int H, int dh, double base,
                        double sign) {
    int half = dh / 2, D = H * dh;
    for (int i = 0; i < n; i++) {
        for (int m = 0; m < half; m++) {
            double angle = sign * (double)pos[i] * pow(base, -2.0 * m / dh);
            real c = (real)cos(angle), s = (real)sin(angle);
            for (int b = 0; b < B; b++) {
                real *row = x + ((size_t)b * n + i) * D;
                for (int h = 0; h < H; h++) {
                    real *x1 = row + h * dh + m, *x2 = row + h * dh + half + m;
                    real a = *x1, bb = *x2;
                    *x1 = a * c - bb * s;
                    *x2 = a * s + bb * c;
                }
            }
        }
    }
}

void rope_forward(real *x, const int *pos, int B, int n, int H, int dh, double base) {
    rope_rotate(x, pos, B, n, H, dh, base, 1.0);
}

void rope_backward(real *dx, const int *pos, int B, int n, int H, int dh, double base) {
    rope_rotate(dx, pos, B, n, H, dh, base, -1.0);
}

void attention_forward(real *y, real *probs, const real *q, const real *k, const real *v,
                       int B, int n, int H, int dh) {
    int D = H * dh;
    real scale = (real)(1.0 / sqrt((double)dh));
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            size_t col = (size_t)b * n * D + (size_t)h * dh;
            real *p = probs + ((size_t)b * H + h) * n * n; /* (n, n) */
            /* S = scale * q_h k_h^T */
            matmul(0, 1, n, n, dh, scale, q + col, D, k + col, D, 0, p, n);
            for (int i = 0; i < n; i++) {
                real *row = p + (size_t)i * n;
                real max = row[0];
                for (int j = 1; j <= i; j++) max = row[j] > max ? row[j] : max;
                double sum = 0;
                for (int j = 0; j <= i; j++) {
                    row[j] = real_exp(row[j] - max);
                    sum += row[j];
                }
                real inv = (real)(1.0 / sum);
                for (int j = 0; j <= i; j++) row[j] *= inv;
                for (int j = i + 1; j < n; j++) row[j] = 0;
            }
            /* y_h = P v_h */
            matmul(0, 0, n, dh, n, 1, p, n, v + col, D, 0, y + col, D);
        }
    }
}

void attention_backward(real *dq, real *dk, real *dv, real *scratch, const real *dy,
                        const real *probs, const real *q, const real *k, const real *v,
                        int B, int n, int H, int dh) {
    int D = H * dh;
    real scale = (real)(1.0 / sqrt((double)dh));
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            size_t col = (size_t)b * n * D + (size_t)h * dh;
            const real *p = probs + ((size_t)b * H + h) * n * n;
            real *ds = scratch; /* (n, n): first dP, then dS in place */
            /* dP = dy_h v_h^T */
            matmul(0, 1, n, n, dh, 1, dy + col, D, v + col, D, 0, ds, n);
            for (int i = 0; i < n; i++) {
                const real *prow = p + (size_t)i * n;
                real *drow = ds + (size_t)i * n;
                double dot = 0;
                for (int j = 0; j <= i; j++) dot += (double)prow[j] * drow[j];
                for (int j = 0; j <= i; j++) drow[j] = prow[j] * (drow[j] - (real)dot) * scale;
                for (int j = i + 1; j < n; j++) drow[j] = 0;
            }
            matmul(0, 0, n, dh, n, 1, ds, n, k + col, D, 1, dq + col, D); /* dq_h += dS k_h */
            matmul(1, 0, n, dh, n, 1, ds, n, q + col, D, 1, dk + col, D); /* dk_h += dS^T q_h */
            matmul(1, 0, n, dh, n, 1, p, n, dy + col, D, 1, dv + col, D); /* dv_h += P^T dy_h */
        }
    }
}

void swiglu_forward(real *m, const real *a, const real *c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        real s = 1 / (1 + real_exp(-a[i]));
        m[i] = a[i] * s * c[i];
    }
}

void swiglu_backward(real *da, real *dc, const real *dm, const real *a, const real *c,
                     size_t count) {
    for (size_t i = 0; i < count; i++) {
        real s = 1 / (1 + real_exp(-a[i]));
        real silu = a[i] * s;
        da[i] += dm[i] * c[i] * s * (1 + a[i] * (1 - s));
        dc[i] += dm[i] * silu;
    }
}

/* log(sum_j exp(row_j)) computed stably in double. */
static double log_sum_exp(const real *row, int V) {
    real max = row[0];
    for (int j = 1; j < V; j++) max = row[j] > max ? row[j] : max;
    double sum = 0;
    for (int j = 0; j < V; j++) sum += exp((double)row[j] - max);
    return max + log(sum);
}

double crossentropy_forward(const real *logits, const int *targets, int M, int V, int *count) {
    double total = 0;
    int n = 0;
    for (int r = 0; r < M; r++) {
        if (targets[r] < 0) continue;
        const real *row = logits + (size_t)r * V;
        total += log_sum_exp(row, V) - row[targets[r]];
        n++;
    }
    if (count) *count = n;
    return n ? total / n : 0;
}

void crossentropy_backward(real *dlogits, const real *logits, const int *targets, int M, int V,
                           real scale) {
    for (int r = 0; r < M; r++) {
        if (targets[r] < 0) continue;
        const real *row = logits + (size_t)r * V;
        real *drow = dlogits + (size_t)r * V;
        double lse = log_sum_exp(row, V);
        for (int j = 0; j < V; j++) drow[j] += scale * (real)exp((double)row[j] - lse);
        drow[targets[r]] -= scale;
    }
}
