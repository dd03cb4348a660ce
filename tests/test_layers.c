/*
 * test_layers.c: every building block of core/layers.c and core/scale.c
 * checked on its own, one static function per block.
 *
 * Gradient checks. For a block out = f(inputs) the test uses the scalar loss
 * L = sum_i out_i R_i with R a fixed random tensor (R has out's shape). The
 * analytic gradient is the block's backward called with dout = R into zeroed
 * buffers (every backward accumulates); the numeric gradient is the central
 * difference (L(x + eps) - L(x - eps)) / 2 eps of each input element, with L
 * summed in double. The error of one input tensor is
 * max |analytic - numeric| / max |gradient|, both maxima over the tensor, and
 * one line is printed per (function, input). Built twice, like
 * test_gradcheck.c: real = double (test_layers_f64: eps 1e-5, tolerance 1e-6)
 * and real = float (test_layers: eps 1e-2, tolerance 3e-2).
 *
 * Every accumulating backward is then called a second time to check that the
 * gradient doubles. Exact (non-finite-difference) checks pin the forward
 * passes to their definitions: chunk geometry against a brute force, chunk
 * means, copy == alloc with zero weights, the causal shift, causal softmax
 * rows, the RoPE round trip, cross-entropy against a direct sum, and each
 * forward against its equation evaluated directly in double.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
/* Only fixtures.h's random generator is used here, not its model fixtures. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "fixtures.h"
#pragma GCC diagnostic pop
#include "harness.h"
#include "layers.h"
#include "scale.h"

#ifdef SPIRAL_DOUBLE
static const double EPS = 1e-5, TOLERANCE = 1e-6;
/* Two computations of the same value that differ only by rounding agree to
 * ROUNDING (relative to the values' scale); a forward pass agrees with its
 * equation evaluated directly in double to REFERENCE. */
static const double ROUNDING = 1e-12, REFERENCE = 1e-11;
#else
static const double EPS = 1e-2, TOLERANCE = 3e-2;
static const double ROUNDING = 1e-6, REFERENCE = 1e-5;
#endif

static const double NORM_EPS = 1e-5, ROPE_BASE = 10000.0;

/* ---- helpers ---------------------------------------------------------- */

/* count zeroed reals; exits on allocation failure (the test cannot go on). */
static real *reals_new(size_t count) {
    real *p = calloc(count ? count : 1, sizeof(real));
    if (!p) {
        fprintf(stderr, "test_layers: out of memory\n");
        exit(2);
    }
    return p;
}

/* count reals of NaN: scratch a function must overwrite before reading. */
static real *scratch_of_nans(size_t count) {
    real *p = reals_new(count);
    for (size_t i = 0; i < count; i++) p[i] = (real)NAN;
    return p;
}

static real *reals_copy(const real *x, size_t count) {
    real *p = reals_new(count);
    memcpy(p, x, count * sizeof(real));
    return p;
}

static void reals_zero(real *x, size_t count) { memset(x, 0, count * sizeof(real)); }

/* x = scale * u, u uniform in [-1, 1) from the fixtures' generator. */
static void fill_uniform(real *x, size_t count, double scale) {
    for (size_t i = 0; i < count; i++) x[i] = (real)(scale * fixture_uniform());
}

/* sum_i a_i b_i in double. */
static double dot(const real *a, const real *b, size_t count) {
    double sum = 0;
    for (size_t i = 0; i < count; i++) sum += (double)a[i] * b[i];
    return sum;
}

static double max_abs(const real *x, size_t count) {
    double m = 0;
    for (size_t i = 0; i < count; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

static double max_abs_diff(const real *a, const real *b, size_t count) {
    double m = 0;
    for (size_t i = 0; i < count; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* A block under test: runs its forward pass on the inputs that `block`
 * points to and returns the loss sum_i out_i R_i. */
typedef double (*BlockLoss)(void *block);

/* Compares `analytic` (count) with central differences of loss(block) in
 * each element of x (count), an input that loss() reads; x is perturbed in
 * place and restored. Prints one line, records one CHECK and returns the
 * relative error max |analytic - numeric| / max |gradient|. */
static double gradcheck_input(const char *function, const char *input, BlockLoss loss,
                              void *block, real *x, const real *analytic, size_t count) {
    double max_err = 0, max_grad = 0;
    for (size_t k = 0; k < count; k++) {
        real saved = x[k];
        real up = (real)(saved + EPS), down = (real)(saved - EPS);
        x[k] = up;
        double plus = loss(block);
        x[k] = down;
        double minus = loss(block);
        x[k] = saved;
        /* divide by the step actually taken: in float, up - down != 2 eps */
        double numeric = (plus - minus) / ((double)up - (double)down);
        max_err = fmax(max_err, fabs(analytic[k] - numeric));
        max_grad = fmax(max_grad, fmax(fabs((double)analytic[k]), fabs(numeric)));
    }
    /* max_grad == 0 means both gradients are identically 0 (the input does not
     * reach the output), which is exact agreement */
    double rel = max_grad > 0 ? max_err / max_grad : 0;
    printf("  %-40s d%-6s max rel error %.2e  (max |grad| %.2e)\n", function, input, rel,
           max_grad);
    CHECK(rel <= TOLERANCE, "%s: d%s: max relative error %.3e > %.1e", function, input, rel,
          TOLERANCE);
    return rel;
}

/* A second backward call into a buffer that already held `once` (the first
 * call's gradient) must add the same gradient again: twice == 2 once. */
static void check_accumulates(const char *function, const char *input, const real *twice,
                              const real *once, size_t count) {
    double err = 0;
    for (size_t k = 0; k < count; k++) err = fmax(err, fabs((double)twice[k] - 2.0 * once[k]));
    CHECK(err <= ROUNDING * max_abs(once, count),
          "%s: d%s: a second backward call gives %.3e away from twice the gradient "
          "(backward must accumulate)", function, input, err);
}

/* ---- embedding -------------------------------------------------------- */

typedef struct {
    const int *tokens;  /* (M) */
    const real *table;  /* (V, d) */
    real *x;            /* output (M, d) */
    const real *R;      /* (M, d) */
    int M, d;
} EmbeddingBlock;

static double embedding_loss(void *arg) {
    EmbeddingBlock *e = arg;
    embedding_forward(e->x, e->tokens, e->table, e->M, e->d);
    return dot(e->x, e->R, (size_t)e->M * e->d);
}

/* embedding: x_r is exactly table[tokens_r]; d/dtable with repeated tokens
 * (0 and 2 three times each), and the never-used row 3 gets exactly 0. */
static void test_embedding(void) {
    enum { V = 5, D = 3, M = 8 };
    int tokens[M] = {0, 2, 2, 4, 0, 2, 1, 0};
    real table[V * D], dtable[V * D]; /* (V, d) */
    real x[M * D], R[M * D];          /* (M, d) */
    fixture_seed(101);
    fill_uniform(table, V * D, 1);
    fill_uniform(R, M * D, 1);
    EmbeddingBlock e = {tokens, table, x, R, M, D};

    embedding_loss(&e);
    int rows_equal = 1;
    for (int r = 0; r < M; r++)
        rows_equal &= memcmp(x + r * D, table + tokens[r] * D, D * sizeof(real)) == 0;
    CHECK(rows_equal, "embedding: forward rows differ from table[tokens]");

    reals_zero(dtable, V * D);
    embedding_backward(dtable, R, tokens, M, D);
    gradcheck_input("embedding", "table", embedding_loss, &e, table, dtable, V * D);
    CHECK(max_abs(dtable + 3 * D, D) == 0, "embedding: unused row 3 has a gradient");

    real *once = reals_copy(dtable, V * D);
    embedding_backward(dtable, R, tokens, M, D);
    check_accumulates("embedding", "table", dtable, once, V * D);
    free(once);
}

/* ---- linear ----------------------------------------------------------- */

typedef struct {
    const real *x, *w; /* x (M, in), w (out, in) */
    real *y;           /* output (M, out) */
    const real *R;     /* (M, out) */
    int M, in, out;
} LinearBlock;

static double linear_loss(void *arg) {
    LinearBlock *l = arg;
    linear_forward(l->y, l->x, l->w, l->M, l->in, l->out);
    return dot(l->y, l->R, (size_t)l->M * l->out);
}

/* linear: y = x W^T against a direct sum; dx and dW; a NULL dx or dW skips
 * that gradient and leaves the other bit-identical. */
static void test_linear(void) {
    enum { M = 3, IN = 4, OUT = 5 };
    real x[M * IN], dx[M * IN];    /* (M, in) */
    real w[OUT * IN], dw[OUT * IN]; /* (out, in) */
    real y[M * OUT], R[M * OUT];    /* (M, out) */
    fixture_seed(102);
    fill_uniform(x, M * IN, 1);
    fill_uniform(w, OUT * IN, 1);
    fill_uniform(R, M * OUT, 1);
    LinearBlock l = {x, w, y, R, M, IN, OUT};

    linear_loss(&l);
    double err = 0;
    for (int r = 0; r < M; r++)
        for (int o = 0; o < OUT; o++) {
            double sum = 0;
            for (int k = 0; k < IN; k++) sum += (double)x[r * IN + k] * w[o * IN + k];
            err = fmax(err, fabs(y[r * OUT + o] - sum));
        }
    CHECK(err <= REFERENCE, "linear: forward differs from x W^T by %.3e", err);

    reals_zero(dx, M * IN);
    reals_zero(dw, OUT * IN);
    linear_backward(dx, dw, R, x, w, M, IN, OUT);
    gradcheck_input("linear", "x", linear_loss, &l, x, dx, M * IN);
    gradcheck_input("linear", "W", linear_loss, &l, w, dw, OUT * IN);

    real only[OUT * IN]; /* big enough for either gradient */
    reals_zero(only, M * IN);
    linear_backward(only, NULL, R, x, w, M, IN, OUT);
    CHECK(memcmp(only, dx, sizeof dx) == 0, "linear: dx with dW = NULL differs");
    reals_zero(only, OUT * IN);
    linear_backward(NULL, only, R, x, w, M, IN, OUT);
    CHECK(memcmp(only, dw, sizeof dw) == 0, "linear: dW with dx = NULL differs");

    real *dx_once = reals_copy(dx, M * IN), *dw_once = reals_copy(dw, OUT * IN);
    linear_backward(dx, dw, R, x, w, M, IN, OUT);
    check_accumulates("linear", "x", dx, dx_once, M * IN);
    check_accumulates("linear", "W", dw, dw_once, OUT * IN);
    free(dx_once);
    free(dw_once);
}

/* ---- rmsnorm ---------------------------------------------------------- */

typedef struct {
    const real *x, *gain; /* x (M, d), gain (d) */
    real *y, *rstd;       /* outputs: y (M, d), rstd (M) */
    const real *R;        /* (M, d) */
    int M, d;
} RmsnormBlock;

static double rmsnorm_loss(void *arg) {
    RmsnormBlock *n = arg;
    rmsnorm_forward(n->y, n->rstd, n->x, n->gain, n->M, n->d, NORM_EPS);
    return dot(n->y, n->R, (size_t)n->M * n->d);
}

/* rmsnorm: y and rstd against the equation; dx and dgain. */
static void test_rmsnorm(void) {
    enum { M = 3, D = 6 };
    real x[M * D], dx[M * D], y[M * D], R[M * D]; /* (M, d) */
    real gain[D], dgain[D];                       /* (d) */
    real rstd[M];                                 /* (M) */
    fixture_seed(103);
    fill_uniform(x, M * D, 1);
    for (int k = 0; k < D; k++) gain[k] = (real)(1 + 0.2 * fixture_uniform());
    fill_uniform(R, M * D, 1);
    RmsnormBlock n = {x, gain, y, rstd, R, M, D};

    rmsnorm_loss(&n);
    double err = 0;
    for (int r = 0; r < M; r++) {
        double sum_sq = 0;
        for (int k = 0; k < D; k++) sum_sq += (double)x[r * D + k] * x[r * D + k];
        double inv = 1 / sqrt(sum_sq / D + NORM_EPS);
        err = fmax(err, fabs(rstd[r] - inv) / inv);
        for (int k = 0; k < D; k++)
            err = fmax(err, fabs(y[r * D + k] - x[r * D + k] * inv * gain[k]));
    }
    CHECK(err <= REFERENCE, "rmsnorm: forward differs from its equation by %.3e", err);

    reals_zero(dx, M * D);
    reals_zero(dgain, D);
    rmsnorm_backward(dx, dgain, R, x, gain, rstd, M, D);
    gradcheck_input("rmsnorm", "x", rmsnorm_loss, &n, x, dx, M * D);
    gradcheck_input("rmsnorm", "gain", rmsnorm_loss, &n, gain, dgain, D);

    real *dx_once = reals_copy(dx, M * D), *dgain_once = reals_copy(dgain, D);
    rmsnorm_backward(dx, dgain, R, x, gain, rstd, M, D);
    check_accumulates("rmsnorm", "x", dx, dx_once, M * D);
    check_accumulates("rmsnorm", "gain", dgain, dgain_once, D);
    free(dx_once);
    free(dgain_once);
}

/* ---- rope ------------------------------------------------------------- */

enum { ROPE_B = 2, ROPE_H = 2, ROPE_DH = 8 };

typedef struct {
    const real *x;  /* (B, n, H*dh) */
    real *out;      /* output (B, n, H*dh): rope_forward of a copy of x */
    const int *pos; /* (n) */
    const real *R;  /* (B, n, H*dh) */
    int n;
} RopeBlock;

static double rope_loss(void *arg) {
    RopeBlock *r = arg;
    size_t count = (size_t)ROPE_B * r->n * ROPE_H * ROPE_DH;
    memcpy(r->out, r->x, count * sizeof(real));
    rope_forward(r->out, r->pos, ROPE_B, r->n, ROPE_H, ROPE_DH, ROPE_BASE);
    return dot(r->out, r->R, count);
}

/* rope at positions pos (n): the forward against the rotation formula; dx,
 * where the gradient is rope_backward applied in place to R (it is a
 * transform, not an accumulation); rope_backward(rope_forward(x)) == x. */
static void test_rope(const char *label, const int *pos, int n) {
    int D = ROPE_H * ROPE_DH, half = ROPE_DH / 2;
    size_t count = (size_t)ROPE_B * n * D;
    real *x = reals_new(count), *out = reals_new(count), *R = reals_new(count); /* (B, n, D) */
    fixture_seed(104);
    fill_uniform(x, count, 1);
    fill_uniform(R, count, 1);
    RopeBlock r = {x, out, pos, R, n};

    rope_loss(&r);
    double err = 0;
    for (int b = 0; b < ROPE_B; b++)
        for (int i = 0; i < n; i++)
            for (int h = 0; h < ROPE_H; h++)
                for (int m = 0; m < half; m++) {
                    size_t at = ((size_t)b * n + i) * D + h * ROPE_DH + m;
                    double angle = pos[i] * pow(ROPE_BASE, -2.0 * m / ROPE_DH);
                    double x1 = x[at], x2 = x[at + half];
                    err = fmax(err, fabs(out[at] - (x1 * cos(angle) - x2 * sin(angle))));
                    err = fmax(err, fabs(out[at + half] - (x1 * sin(angle) + x2 * cos(angle))));
                }
    CHECK(err <= REFERENCE, "%s: forward differs from the rotation by %.3e", label, err);

    real *dx = reals_copy(R, count);
    rope_backward(dx, pos, ROPE_B, n, ROPE_H, ROPE_DH, ROPE_BASE);
    gradcheck_input(label, "x", rope_loss, &r, x, dx, count);

    /* round trip; the gradcheck left out at the last perturbation of x */
    rope_loss(&r);
    rope_backward(out, pos, ROPE_B, n, ROPE_H, ROPE_DH, ROPE_BASE);
    double round_trip = max_abs_diff(out, x, count);
    CHECK(round_trip <= ROUNDING, "%s: rope_backward(rope_forward(x)) is %.3e away from x",
          label, round_trip);
    free(x);
    free(out);
    free(R);
    free(dx);
}

/* rope at consecutive positions, at the latent positions of g = 4 over 13
 * tokens (which must be {3, 7, 11, 12}), and at large, unordered ones. */
static void test_rope_positions(void) {
    int consecutive[5] = {0, 1, 2, 3, 4};
    test_rope("rope pos 0..4", consecutive, 5);

    IterSpec spec = {4, 0, 3};
    ChunkGeometry geo = chunk_geometry(13, &spec);
    int latent[4] = {0}, expected[4] = {3, 7, 11, 12};
    CHECK(geo.J == 4, "chunk_geometry(g=4, L=13): J = %d, expected 4", geo.J);
    if (geo.J == 4) chunk_positions(latent, &geo);
    CHECK(memcmp(latent, expected, sizeof latent) == 0,
          "chunk_positions(g=4, L=13) = {%d, %d, %d, %d}, expected {3, 7, 11, 12}", latent[0],
          latent[1], latent[2], latent[3]);
    test_rope("rope pos {3,7,11,12}", latent, 4);

    int large[4] = {900, 5, 4095, 2};
    test_rope("rope pos {900,5,4095,2}", large, 4);
}

/* ---- attention -------------------------------------------------------- */

typedef struct {
    int B, n, H, dh, D;    /* D = H * dh */
    const real *q, *k, *v; /* (B, n, H*dh) */
    real *y, *probs;       /* outputs: y (B, n, H*dh), probs (B, H, n, n) */
    const real *R;         /* (B, n, H*dh) */
} AttentionBlock;

static double attention_loss(void *arg) {
    AttentionBlock *a = arg;
    attention_forward(a->y, a->probs, a->q, a->k, a->v, a->B, a->n, a->H, a->dh);
    return dot(a->y, a->R, (size_t)a->B * a->n * a->D);
}

/* Every row of probs (B, H, n, n) sums to 1 and is exactly 0 above the
 * diagonal (keys after the query). */
static void check_causal_rows(const char *label, const AttentionBlock *a, const real *probs) {
    double worst_sum = 0;
    int nonzero_future = 0, n = a->n;
    for (int bh = 0; bh < a->B * a->H; bh++)
        for (int i = 0; i < n; i++) {
            const real *row = probs + ((size_t)bh * n + i) * n;
            double sum = 0;
            for (int j = 0; j <= i; j++) sum += row[j];
            worst_sum = fmax(worst_sum, fabs(sum - 1));
            for (int j = i + 1; j < n; j++) nonzero_future += row[j] != 0;
        }
    CHECK(worst_sum <= ROUNDING, "%s: a probability row sums to 1 %+.3e", label, worst_sum);
    CHECK(nonzero_future == 0, "%s: %d probabilities above the diagonal are not exactly 0",
          label, nonzero_future);
}

/* attention at (B, n, H, dh): y and probs against a direct evaluation in
 * double; causal rows (also with logits ~ +-100, where an unstabilised
 * softmax overflows in float); dq, dk, dv by finite differences, and that
 * backward accumulates. With n > ATTENTION_BLOCK the query rows run in
 * several causal blocks, the last one partial. */
static void test_attention_at(int B, int n, int H, int dh) {
    int D = H * dh;
    size_t count = (size_t)B * n * D, n_probs = (size_t)B * H * n * n;
    real *q = reals_new(count), *k = reals_new(count), *v = reals_new(count);
    real *y = reals_new(count), *R = reals_new(count);
    real *dq = reals_new(count), *dk = reals_new(count), *dv = reals_new(count);
    real *probs = reals_new(n_probs);
    real *scratch = reals_new(attention_scratch_size(n));
    char label[64];
    snprintf(label, sizeof label, "attention B=%d n=%d H=%d dh=%d", B, n, H, dh);
    fixture_seed(105 + n);
    fill_uniform(q, count, 1);
    fill_uniform(k, count, 1);
    fill_uniform(v, count, 1);
    fill_uniform(R, count, 1);
    AttentionBlock a = {B, n, H, dh, D, q, k, v, y, probs, R};

    attention_loss(&a);
    double err = 0;
    double *p = malloc((size_t)n * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < n; i++) {
                double max = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) {
                    double s = 0;
                    for (int c = 0; c < dh; c++)
                        s += (double)q[((size_t)b * n + i) * D + h * dh + c] *
                             k[((size_t)b * n + j) * D + h * dh + c];
                    p[j] = s / sqrt((double)dh);
                    max = fmax(max, p[j]);
                }
                for (int j = 0; j <= i; j++) {
                    p[j] = exp(p[j] - max);
                    sum += p[j];
                }
                const real *prow = probs + (((size_t)b * H + h) * n + i) * n;
                for (int j = 0; j <= i; j++) err = fmax(err, fabs(prow[j] - p[j] / sum));
                for (int c = 0; c < dh; c++) {
                    double out = 0;
                    for (int j = 0; j <= i; j++)
                        out += p[j] / sum * v[((size_t)b * n + j) * D + h * dh + c];
                    err = fmax(err, fabs(y[((size_t)b * n + i) * D + h * dh + c] - out));
                }
            }
    free(p);
    CHECK(err <= REFERENCE, "%s: forward differs from softmax(q k^T / sqrt(dh)) v by %.3e",
          label, err);
    check_causal_rows(label, &a, probs);

    reals_zero(dq, count);
    reals_zero(dk, count);
    reals_zero(dv, count);
    attention_backward(dq, dk, dv, scratch, R, probs, q, k, v, B, n, H, dh);
    gradcheck_input(label, "q", attention_loss, &a, q, dq, count);
    gradcheck_input(label, "k", attention_loss, &a, k, dk, count);
    gradcheck_input(label, "v", attention_loss, &a, v, dv, count);

    real *dq_once = reals_copy(dq, count), *dk_once = reals_copy(dk, count),
         *dv_once = reals_copy(dv, count);
    attention_loss(&a); /* the gradchecks left probs at the last perturbation */
    attention_backward(dq, dk, dv, scratch, R, probs, q, k, v, B, n, H, dh);
    check_accumulates(label, "q", dq, dq_once, count);
    check_accumulates(label, "k", dk, dk_once, count);
    check_accumulates(label, "v", dv, dv_once, count);
    free(dq_once);
    free(dk_once);
    free(dv_once);

    /* large logits: scores up to dh * 200 * 1 / sqrt(dh) */
    real *q_large = reals_new(count);
    for (size_t i = 0; i < count; i++) q_large[i] = 200 * q[i];
    attention_forward(y, probs, q_large, k, v, B, n, H, dh);
    int finite = 1;
    for (size_t i = 0; i < n_probs; i++) finite &= isfinite(probs[i]) != 0;
    for (size_t i = 0; i < count; i++) finite &= isfinite(y[i]) != 0;
    CHECK(finite, "%s: logits ~ 400 give non-finite probabilities or outputs", label);
    snprintf(label, sizeof label, "attention n=%d, logits ~ 400", n);
    check_causal_rows(label, &a, probs);
    free(q_large);
    free(q);
    free(k);
    free(v);
    free(y);
    free(R);
    free(dq);
    free(dk);
    free(dv);
    free(probs);
    free(scratch);
}

static void test_attention(void) {
    test_attention_at(2, 5, 2, 4);
    /* three blocks of query rows (64 + 64 + 22) */
    test_attention_at(1, 2 * ATTENTION_BLOCK + 22, 2, 4);
}

/* ---- swiglu ----------------------------------------------------------- */

enum { SWIGLU_COUNT = 14 };

typedef struct {
    const real *a, *c; /* (count) */
    real *m;           /* output (count) */
    const real *R;     /* (count) */
} SwigluBlock;

static double swiglu_loss(void *arg) {
    SwigluBlock *s = arg;
    swiglu_forward(s->m, s->a, s->c, SWIGLU_COUNT);
    return dot(s->m, s->R, SWIGLU_COUNT);
}

/* swiglu: m = silu(a) c against the equation; da and dc, with a spanning
 * 0, small values, +-8, +-20 and +-30 (where the sigmoid saturates). */
static void test_swiglu(void) {
    real a[SWIGLU_COUNT] = {-8, 8, -3, 3, 0, 0.5, -0.5, 20, -20, 1.5, -1.2, 5, 30, -30};
    real c[SWIGLU_COUNT], m[SWIGLU_COUNT], R[SWIGLU_COUNT];
    real da[SWIGLU_COUNT], dc[SWIGLU_COUNT];
    fixture_seed(106);
    fill_uniform(c, SWIGLU_COUNT, 1);
    fill_uniform(R, SWIGLU_COUNT, 1);
    SwigluBlock s = {a, c, m, R};

    swiglu_loss(&s);
    double err = 0;
    for (int i = 0; i < SWIGLU_COUNT; i++) {
        double silu = a[i] / (1 + exp(-(double)a[i]));
        err = fmax(err, fabs(m[i] - silu * c[i]) / fmax(1, fabs(silu * c[i])));
    }
    CHECK(err <= REFERENCE, "swiglu: forward differs from silu(a) c by %.3e (relative)", err);

    reals_zero(da, SWIGLU_COUNT);
    reals_zero(dc, SWIGLU_COUNT);
    swiglu_backward(da, dc, R, a, c, SWIGLU_COUNT);
    gradcheck_input("swiglu", "a", swiglu_loss, &s, a, da, SWIGLU_COUNT);
    gradcheck_input("swiglu", "c", swiglu_loss, &s, c, dc, SWIGLU_COUNT);

    real *da_once = reals_copy(da, SWIGLU_COUNT), *dc_once = reals_copy(dc, SWIGLU_COUNT);
    swiglu_backward(da, dc, R, a, c, SWIGLU_COUNT);
    check_accumulates("swiglu", "a", da, da_once, SWIGLU_COUNT);
    check_accumulates("swiglu", "c", dc, dc_once, SWIGLU_COUNT);
    free(da_once);
    free(dc_once);
}

/* ---- crossentropy ----------------------------------------------------- */

enum { CE_M = 6, CE_V = 7 };

typedef struct {
    const real *logits; /* (M, V) */
    const int *targets; /* (M), -1 = ignored */
    double r;           /* the loss is r * crossentropy, r a random scalar */
} CrossentropyBlock;

static double crossentropy_loss(void *arg) {
    CrossentropyBlock *e = arg;
    int count;
    return e->r * crossentropy_forward(e->logits, e->targets, CE_M, CE_V, &count);
}

/* Mean cross-entropy of the rows with a target, computed directly:
 * -(1/N) sum_r log(exp(l_t) / sum_j exp(l_j)), shifted by the row max. */
static double crossentropy_direct(const real *logits, const int *targets, int M, int V) {
    double total = 0;
    int n = 0;
    for (int r = 0; r < M; r++) {
        if (targets[r] < 0) continue;
        const real *row = logits + (size_t)r * V;
        double max = row[0], sum = 0;
        for (int j = 1; j < V; j++) max = fmax(max, row[j]);
        for (int j = 0; j < V; j++) sum += exp(row[j] - max);
        total += -log(exp(row[targets[r]] - max) / sum);
        n++;
    }
    return n ? total / n : 0;
}

/* crossentropy (M=6, V=7, two ignored rows): count and loss against a
 * direct computation; dlogits with scale = r / N (exactly 0 on ignored rows,
 * summing to 0 on the others); all rows ignored gives 0 and count 0; logits
 * around 100 (exp overflows float) give the direct value. */
static void test_crossentropy(void) {
    real logits[CE_M * CE_V], dlogits[CE_M * CE_V]; /* (M, V) */
    int targets[CE_M] = {3, -1, 0, 6, -1, 2};
    fixture_seed(107);
    fill_uniform(logits, CE_M * CE_V, 2);
    CrossentropyBlock e = {logits, targets, 0.5 + 0.5 * fixture_uniform()};

    int count = -7;
    double loss = crossentropy_forward(logits, targets, CE_M, CE_V, &count);
    double direct = crossentropy_direct(logits, targets, CE_M, CE_V);
    CHECK(count == 4, "crossentropy: count = %d, expected 4", count);
    CHECK(fabs(loss - direct) <= ROUNDING * fabs(direct),
          "crossentropy: loss %.17g, direct computation %.17g", loss, direct);

    reals_zero(dlogits, CE_M * CE_V);
    crossentropy_backward(dlogits, logits, targets, CE_M, CE_V, (real)(e.r / 4));
    gradcheck_input("crossentropy", "logits", crossentropy_loss, &e, logits, dlogits,
                    CE_M * CE_V);
    double ignored = 0, row_sum = 0;
    for (int r = 0; r < CE_M; r++) {
        if (targets[r] < 0) {
            ignored = fmax(ignored, max_abs(dlogits + r * CE_V, CE_V));
            continue;
        }
        double sum = 0;
        for (int j = 0; j < CE_V; j++) sum += dlogits[r * CE_V + j];
        row_sum = fmax(row_sum, fabs(sum));
    }
    CHECK(ignored == 0, "crossentropy: an ignored row has gradient %.3e", ignored);
    CHECK(row_sum <= ROUNDING, "crossentropy: a gradient row sums to %.3e, not 0", row_sum);

    real *once = reals_copy(dlogits, CE_M * CE_V);
    crossentropy_backward(dlogits, logits, targets, CE_M, CE_V, (real)(e.r / 4));
    check_accumulates("crossentropy", "logits", dlogits, once, CE_M * CE_V);
    free(once);

    int none[CE_M] = {-1, -1, -1, -1, -1, -1};
    count = -7;
    loss = crossentropy_forward(logits, none, CE_M, CE_V, &count);
    CHECK(count == 0 && loss == 0, "crossentropy: no targets gives count %d, loss %g", count,
          loss);

    real large[CE_M * CE_V];
    for (int i = 0; i < CE_M * CE_V; i++) large[i] = (real)(100 + logits[i]);
    loss = crossentropy_forward(large, targets, CE_M, CE_V, &count);
    direct = crossentropy_direct(large, targets, CE_M, CE_V);
    CHECK(isfinite(loss) && fabs(loss - direct) <= ROUNDING * fabs(direct),
          "crossentropy: logits ~ 100 give loss %.17g, direct computation %.17g", loss, direct);

    /* a vocabulary of 150 (two blocks of 64 exponentials and a partial one)
     * with logits spread over [-40, 40]: loss against the direct value, and
     * each gradient row is softmax - onehot (sums to 0, at most 1 in size) */
    enum { WIDE_M = 3, WIDE_V = 150 };
    real wide[WIDE_M * WIDE_V], dwide[WIDE_M * WIDE_V];
    int wide_targets[WIDE_M] = {0, 77, 149};
    fill_uniform(wide, WIDE_M * WIDE_V, 40);
    loss = crossentropy_forward(wide, wide_targets, WIDE_M, WIDE_V, &count);
    direct = crossentropy_direct(wide, wide_targets, WIDE_M, WIDE_V);
    CHECK(count == WIDE_M && fabs(loss - direct) <= ROUNDING * fabs(direct),
          "crossentropy V=150: loss %.17g, direct computation %.17g", loss, direct);
    reals_zero(dwide, WIDE_M * WIDE_V);
    crossentropy_backward(dwide, wide, wide_targets, WIDE_M, WIDE_V, 1);
    double worst = 0;
    for (int r = 0; r < WIDE_M; r++) {
        const real *row = wide + r * WIDE_V;
        double max = row[0], sum = 0;
        for (int j = 1; j < WIDE_V; j++) max = fmax(max, row[j]);
        for (int j = 0; j < WIDE_V; j++) sum += exp(row[j] - max);
        for (int j = 0; j < WIDE_V; j++) {
            double expected = exp(row[j] - max) / sum - (j == wide_targets[r]);
            worst = fmax(worst, fabs(dwide[r * WIDE_V + j] - expected));
        }
    }
    CHECK(worst <= 4 * ROUNDING, "crossentropy V=150: gradient off softmax - onehot by %.3e",
          worst);
}

/* ---- chunk geometry --------------------------------------------------- */

/* chunk_geometry, chunk_first, chunk_last and chunk_positions against a
 * brute force from the definitions: pi(i) = floor((i + w) / g),
 * J = pi(L - 1) + 1, chunk j = {i : pi(i) = j}, its position = its last
 * member. For every g in 1..9, w in 0..g-1, L in 1..20 (one CHECK each):
 * each token lies in chunk_first(j)..chunk_last(j) for exactly j = pi(i). */
static void test_chunk_geometry(void) {
    for (int g = 1; g <= 9; g++)
        for (int w = 0; w < g; w++)
            for (int L = 1; L <= 20; L++) {
                IterSpec spec = {g, w, g - 1 + L % 3};
                ChunkGeometry geo = chunk_geometry(L, &spec);
                int J = (L - 1 + w) / g + 1; /* pi(L - 1) + 1 */
                char why[200] = "";
                if (geo.L != L || geo.g != g || geo.w != w || geo.s != spec.shift || geo.J != J) {
                    snprintf(why, sizeof why, "geometry {L=%d g=%d w=%d s=%d J=%d}, expected J=%d",
                             geo.L, geo.g, geo.w, geo.s, geo.J, J);
                } else {
                    int pos[20];
                    chunk_positions(pos, &geo);
                    for (int j = 0; j < J && !why[0]; j++) {
                        int first = -1, last = -1;
                        for (int i = 0; i < L; i++)
                            if ((i + w) / g == j) {
                                if (first < 0) first = i;
                                last = i;
                            }
                        if (chunk_first(&geo, j) != first || chunk_last(&geo, j) != last ||
                            pos[j] != last)
                            snprintf(why, sizeof why,
                                     "chunk %d: first %d last %d position %d, expected %d %d %d",
                                     j, chunk_first(&geo, j), chunk_last(&geo, j), pos[j], first,
                                     last, last);
                    }
                    for (int i = 0; i < L && !why[0]; i++)
                        for (int j = 0; j < J && !why[0]; j++) {
                            int inside = chunk_first(&geo, j) <= i && i <= chunk_last(&geo, j);
                            if (inside != ((i + w) / g == j))
                                snprintf(why, sizeof why, "token %d %s chunk %d's range", i,
                                         inside ? "wrongly in" : "missing from", j);
                        }
                }
                CHECK(!why[0], "chunk geometry g=%d w=%d L=%d: %s", g, w, L, why);
            }
}

/* ---- down- and up-scaling --------------------------------------------- */

enum { SCALE_B = 2, SCALE_D = 3 };

/* The iteration geometries every scale test runs: (g, offset, shift) and L. */
typedef struct {
    IterSpec spec;
    int L;
} Geometry;

static const Geometry GEOMETRIES[] = {
    {{1, 0, 0}, 7},  {{2, 1, 1}, 7}, {{3, 2, 2}, 10}, {{4, 1, 3}, 9}, {{8, 3, 7}, 13},
    {{3, 0, 4}, 10}, /* no-overlap shift s > g - 1 */
    {{8, 5, 7}, 5},  /* L < g: two partial chunks; s >= L, so up-scaling adds nothing */
};
enum { GEOMETRY_COUNT = sizeof GEOMETRIES / sizeof GEOMETRIES[0] };

typedef struct {
    const ChunkGeometry *geo;
    int mode;
    const real *h, *score; /* h (B, L, d), score (d) */
    real *z, *alpha;       /* outputs: z (B, J, d), alpha (B, L) */
    const real *R;         /* (B, J, d) */
} DownscaleBlock;

static double downscale_loss(void *arg) {
    DownscaleBlock *s = arg;
    downscale_forward(s->z, s->alpha, s->h, s->score, s->geo, SCALE_B, SCALE_D, s->mode);
    return dot(s->z, s->R, (size_t)SCALE_B * s->geo->J * SCALE_D);
}

/* downscale (B=2, d=3) in `mode` over one geometry: dh, and dscore for
 * DOWN_SELFAGG (score and alpha are NULL for DOWN_MEAN). */
static void test_downscale_gradients(const Geometry *geometry, int mode) {
    ChunkGeometry geo = chunk_geometry(geometry->L, &geometry->spec);
    int selfagg = mode == DOWN_SELFAGG;
    size_t tokens = (size_t)SCALE_B * geo.L * SCALE_D, latents = (size_t)SCALE_B * geo.J * SCALE_D;
    real *h = reals_new(tokens), *dh = reals_new(tokens);           /* (B, L, d) */
    real *z = reals_new(latents), *R = reals_new(latents);          /* (B, J, d) */
    real *alpha = selfagg ? reals_new((size_t)SCALE_B * geo.L) : NULL; /* (B, L) */
    real score[SCALE_D], dscore[SCALE_D];                            /* (d) */
    real *scratch = scratch_of_nans(scale_scratch_size(&geo, SCALE_B));
    fixture_seed(200 + geo.g);
    fill_uniform(h, tokens, 1);
    fill_uniform(score, SCALE_D, 1);
    fill_uniform(R, latents, 1);
    DownscaleBlock s = {&geo, mode, h, selfagg ? score : NULL, z, alpha, R};
    char label[80];
    snprintf(label, sizeof label, "downscale %s g=%d w=%d s=%d L=%d", selfagg ? "selfagg" : "mean",
             geo.g, geo.w, geo.s, geo.L);

    downscale_loss(&s);
    reals_zero(dscore, SCALE_D);
    downscale_backward(dh, selfagg ? dscore : NULL, scratch, R, h, alpha, s.score, &geo, SCALE_B,
                       SCALE_D, mode);
    gradcheck_input(label, "h", downscale_loss, &s, h, dh, tokens);
    if (selfagg) gradcheck_input(label, "score", downscale_loss, &s, score, dscore, SCALE_D);

    real *dh_once = reals_copy(dh, tokens), *dscore_once = reals_copy(dscore, SCALE_D);
    downscale_loss(&s); /* the gradchecks left alpha at the last perturbation */
    downscale_backward(dh, selfagg ? dscore : NULL, scratch, R, h, alpha, s.score, &geo, SCALE_B,
                       SCALE_D, mode);
    check_accumulates(label, "h", dh, dh_once, tokens);
    if (selfagg) check_accumulates(label, "score", dscore, dscore_once, SCALE_D);
    free(dh_once);
    free(dscore_once);
    free(h);
    free(dh);
    free(z);
    free(R);
    free(alpha);
    free(scratch);
}

/* downscale against its definition over one geometry: DOWN_MEAN is the
 * arithmetic mean of each chunk's members {i : pi(i) = j}; DOWN_SELFAGG with
 * score = 0 (a uniform softmax) is the same mean; with a random score, alpha
 * sums to 1 over each chunk. */
static void test_downscale_exact(const Geometry *geometry) {
    ChunkGeometry geo = chunk_geometry(geometry->L, &geometry->spec);
    int L = geo.L, J = geo.J, g = geo.g, w = geo.w;
    size_t tokens = (size_t)SCALE_B * L * SCALE_D, latents = (size_t)SCALE_B * J * SCALE_D;
    real *h = reals_new(tokens);                                   /* (B, L, d) */
    real *z_mean = reals_new(latents), *z_self = reals_new(latents); /* (B, J, d) */
    real *alpha = reals_new((size_t)SCALE_B * L);                  /* (B, L) */
    real score[SCALE_D] = {0};                                     /* (d) */
    fixture_seed(300 + g);
    fill_uniform(h, tokens, 1);

    downscale_forward(z_mean, NULL, h, NULL, &geo, SCALE_B, SCALE_D, DOWN_MEAN);
    downscale_forward(z_self, alpha, h, score, &geo, SCALE_B, SCALE_D, DOWN_SELFAGG);
    double err_mean = 0, err_self = 0;
    for (int b = 0; b < SCALE_B; b++)
        for (int j = 0; j < J; j++)
            for (int k = 0; k < SCALE_D; k++) {
                double sum = 0;
                int members = 0;
                for (int i = 0; i < L; i++)
                    if ((i + w) / g == j) {
                        sum += h[((size_t)b * L + i) * SCALE_D + k];
                        members++;
                    }
                size_t at = ((size_t)b * J + j) * SCALE_D + k;
                err_mean = fmax(err_mean, fabs(z_mean[at] - sum / members));
                err_self = fmax(err_self, fabs(z_self[at] - sum / members));
            }
    double scale = max_abs(h, tokens);
    CHECK(err_mean <= ROUNDING * scale,
          "downscale mean g=%d w=%d L=%d: differs from the members' mean by %.3e", g, w, L,
          err_mean);
    CHECK(err_self <= ROUNDING * scale,
          "downscale selfagg, score 0, g=%d w=%d L=%d: differs from the mean by %.3e", g, w, L,
          err_self);

    fill_uniform(score, SCALE_D, 1);
    downscale_forward(z_self, alpha, h, score, &geo, SCALE_B, SCALE_D, DOWN_SELFAGG);
    double err_sum = 0;
    for (int b = 0; b < SCALE_B; b++)
        for (int j = 0; j < J; j++) {
            double sum = 0;
            for (int i = chunk_first(&geo, j); i <= chunk_last(&geo, j); i++)
                sum += alpha[(size_t)b * L + i];
            err_sum = fmax(err_sum, fabs(sum - 1));
        }
    CHECK(err_sum <= ROUNDING, "downscale selfagg g=%d w=%d L=%d: alpha sums to 1 %+.3e", g, w,
          L, err_sum);
    free(h);
    free(z_mean);
    free(z_self);
    free(alpha);
}

typedef struct {
    const ChunkGeometry *geo;
    int mode;
    const real *base, *delta, *alloc; /* base (B, L, d), delta (B, J, d), alloc (g, d) */
    real *h_out, *coef;               /* outputs: h_out (B, L, d), coef (B, J, g) */
    const real *R;                    /* (B, L, d) */
} UpscaleBlock;

static double upscale_loss(void *arg) {
    UpscaleBlock *u = arg;
    upscale_forward(u->h_out, u->coef, u->base, u->delta, u->alloc, u->geo, SCALE_B, SCALE_D,
                    u->mode);
    return dot(u->h_out, u->R, (size_t)SCALE_B * u->geo->L * SCALE_D);
}

/* upscale (B=2, d=3) in `mode` over one geometry: ddelta, dalloc for
 * UP_ALLOC (coef, alloc, dalloc are NULL for UP_COPY), and dbase, which is
 * the caller's business: it must be dh_out = R itself. */
static void test_upscale_gradients(const Geometry *geometry, int mode) {
    ChunkGeometry geo = chunk_geometry(geometry->L, &geometry->spec);
    int allocating = mode == UP_ALLOC;
    size_t tokens = (size_t)SCALE_B * geo.L * SCALE_D, latents = (size_t)SCALE_B * geo.J * SCALE_D;
    size_t weights = (size_t)geo.g * SCALE_D;
    /* base, h_out, R (B, L, d); delta, ddelta (B, J, d); alloc, dalloc (g, d); coef (B, J, g) */
    real *base = reals_new(tokens), *h_out = reals_new(tokens), *R = reals_new(tokens);
    real *delta = reals_new(latents), *ddelta = reals_new(latents);
    real *alloc = allocating ? reals_new(weights) : NULL;
    real *dalloc = allocating ? reals_new(weights) : NULL;
    real *coef = allocating ? reals_new((size_t)SCALE_B * geo.J * geo.g) : NULL;
    real *scratch = scratch_of_nans(scale_scratch_size(&geo, SCALE_B));
    fixture_seed(400 + geo.g);
    fill_uniform(base, tokens, 1);
    fill_uniform(delta, latents, 1);
    if (allocating) fill_uniform(alloc, weights, 0.5);
    fill_uniform(R, tokens, 1);
    UpscaleBlock u = {&geo, mode, base, delta, alloc, h_out, coef, R};
    char label[80];
    snprintf(label, sizeof label, "upscale %s g=%d w=%d s=%d L=%d", allocating ? "alloc" : "copy",
             geo.g, geo.w, geo.s, geo.L);

    upscale_loss(&u);
    upscale_backward(ddelta, dalloc, scratch, R, delta, coef, alloc, &geo, SCALE_B, SCALE_D, mode);
    gradcheck_input(label, "delta", upscale_loss, &u, delta, ddelta, latents);
    if (allocating) gradcheck_input(label, "alloc", upscale_loss, &u, alloc, dalloc, weights);
    gradcheck_input(label, "base", upscale_loss, &u, base, R, tokens);

    real *ddelta_once = reals_copy(ddelta, latents);
    real *dalloc_once = allocating ? reals_copy(dalloc, weights) : NULL;
    upscale_loss(&u); /* the gradchecks left coef at the last perturbation */
    upscale_backward(ddelta, dalloc, scratch, R, delta, coef, alloc, &geo, SCALE_B, SCALE_D, mode);
    check_accumulates(label, "delta", ddelta, ddelta_once, latents);
    if (allocating) check_accumulates(label, "alloc", dalloc, dalloc_once, weights);
    free(ddelta_once);
    free(dalloc_once);
    free(base);
    free(h_out);
    free(R);
    free(delta);
    free(ddelta);
    free(alloc);
    free(dalloc);
    free(coef);
    free(scratch);
}

/* upscale against its definition over one geometry, both modes:
 *  - UP_COPY is exactly base_i (i < s) and base_i + delta_{pi(i - s)} (i >= s);
 *  - UP_ALLOC's coef is g softmax(W delta_j), h_out_i = base_i +
 *    coef_{pi(i-s), rho(i-s)} delta_{pi(i-s)}, and with W = 0 the output is
 *    bit-identical to UP_COPY;
 *  - in place (h_out == base) is bit-identical to out of place;
 *  - causal shift: changing delta of chunk c of sequence 0 changes exactly
 *    the tokens i >= s of sequence 0 with pi(i - s) = c; tokens i < s stay
 *    exactly base_i. */
static void test_upscale_exact(const Geometry *geometry) {
    ChunkGeometry geo = chunk_geometry(geometry->L, &geometry->spec);
    int L = geo.L, J = geo.J, g = geo.g, w = geo.w, s = geo.s, d = SCALE_D;
    size_t tokens = (size_t)SCALE_B * L * d, latents = (size_t)SCALE_B * J * d;
    size_t row = (size_t)d * sizeof(real);
    real *base = reals_new(tokens), *copy = reals_new(tokens);     /* (B, L, d) */
    real *out = reals_new(tokens), *changed = reals_new(tokens);   /* (B, L, d) */
    real *delta = reals_new(latents), *delta2 = reals_new(latents); /* (B, J, d) */
    real *alloc = reals_new((size_t)g * d);                        /* (g, d), zero */
    real *coef = reals_new((size_t)SCALE_B * J * g);               /* (B, J, g) */
    fixture_seed(500 + g);
    fill_uniform(base, tokens, 1);
    fill_uniform(delta, latents, 1);
    char label[80];
    snprintf(label, sizeof label, "upscale g=%d w=%d s=%d L=%d", g, w, s, L);

    upscale_forward(copy, NULL, base, delta, NULL, &geo, SCALE_B, d, UP_COPY);
    int wrong = 0;
    for (int b = 0; b < SCALE_B; b++)
        for (int i = 0; i < L; i++)
            for (int k = 0; k < d; k++) {
                real expected = base[((size_t)b * L + i) * d + k];
                if (i >= s) expected += delta[((size_t)b * J + (i - s + w) / g) * d + k];
                wrong += copy[((size_t)b * L + i) * d + k] != expected;
            }
    CHECK(wrong == 0, "%s copy: %d values differ from base_i + delta_pi(i-s)", label, wrong);

    upscale_forward(out, coef, base, delta, alloc, &geo, SCALE_B, d, UP_ALLOC);
    CHECK(memcmp(out, copy, tokens * sizeof(real)) == 0,
          "%s: alloc with zero weights differs from copy", label);

    fill_uniform(alloc, (size_t)g * d, 0.5);
    upscale_forward(out, coef, base, delta, alloc, &geo, SCALE_B, d, UP_ALLOC);
    double err = 0;
    for (int b = 0; b < SCALE_B; b++)
        for (int j = 0; j < J; j++) {
            double logits[8], max = -INFINITY, sum = 0; /* g <= 8 here */
            for (int r = 0; r < g; r++) {
                logits[r] = dot(alloc + (size_t)r * d, delta + ((size_t)b * J + j) * d, d);
                max = fmax(max, logits[r]);
            }
            for (int r = 0; r < g; r++) sum += exp(logits[r] - max);
            for (int r = 0; r < g; r++)
                err = fmax(err, fabs(coef[((size_t)b * J + j) * g + r] -
                                     g * exp(logits[r] - max) / sum));
        }
    CHECK(err <= REFERENCE * g, "%s alloc: coef differs from g softmax(W delta) by %.3e", label,
          err);
    err = 0;
    for (int b = 0; b < SCALE_B; b++)
        for (int i = s; i < L; i++) {
            int j = (i - s + w) / g, slot = (i - s + w) % g; /* pi(i - s), rho(i - s) */
            double c = coef[((size_t)b * J + j) * g + slot];
            for (int k = 0; k < d; k++) {
                size_t at = ((size_t)b * L + i) * d + k;
                double expected = base[at] + c * delta[((size_t)b * J + j) * d + k];
                err = fmax(err, fabs(out[at] - expected));
            }
        }
    CHECK(err <= REFERENCE * g,
          "%s alloc: h_out differs from base_i + coef_{pi(i-s), rho(i-s)} delta by %.3e", label,
          err);

    for (int mode = UP_COPY; mode <= UP_ALLOC; mode++) {
        const char *name = mode == UP_ALLOC ? "alloc" : "copy";
        upscale_forward(out, coef, base, delta, alloc, &geo, SCALE_B, d, mode);
        real *in_place = reals_copy(base, tokens);
        upscale_forward(in_place, coef, in_place, delta, alloc, &geo, SCALE_B, d, mode);
        CHECK(memcmp(in_place, out, tokens * sizeof(real)) == 0,
              "%s %s: in place (h_out == base) differs from out of place", label, name);
        free(in_place);

        int early_wrong = 0, leaks = 0, missed = 0;
        for (int b = 0; b < SCALE_B; b++)
            for (int i = 0; i < L && i < s; i++)
                early_wrong += memcmp(out + ((size_t)b * L + i) * d,
                                      base + ((size_t)b * L + i) * d, row) != 0;
        for (int c = 0; c < J; c++) {
            memcpy(delta2, delta, latents * sizeof(real));
            fill_uniform(delta2 + (size_t)c * d, d, 1); /* sequence 0, chunk c */
            upscale_forward(changed, coef, base, delta2, alloc, &geo, SCALE_B, d, mode);
            for (int b = 0; b < SCALE_B; b++)
                for (int i = 0; i < L; i++) {
                    int same = memcmp(changed + ((size_t)b * L + i) * d,
                                      out + ((size_t)b * L + i) * d, row) == 0;
                    int reads_c = b == 0 && i >= s && (i - s + w) / g == c;
                    leaks += !reads_c && !same;
                    missed += reads_c && same;
                }
        }
        CHECK(early_wrong == 0, "%s %s: %d tokens i < s are not exactly base_i", label, name,
              early_wrong);
        CHECK(leaks == 0 && missed == 0,
              "%s %s: changing delta of one chunk changed %d tokens that do not read it and "
              "left %d that do unchanged", label, name, leaks, missed);
    }
    free(base);
    free(copy);
    free(out);
    free(changed);
    free(delta);
    free(delta2);
    free(alloc);
    free(coef);
}

int main(int argc, char **argv) {
    printf("gradients (eps %.0e, tolerance %.0e)\n", EPS, TOLERANCE);
    test_embedding();
    test_linear();
    test_rmsnorm();
    test_rope_positions();
    test_attention();
    test_swiglu();
    test_crossentropy();
    for (int i = 0; i < GEOMETRY_COUNT; i++) {
        test_downscale_gradients(&GEOMETRIES[i], DOWN_MEAN);
        test_downscale_gradients(&GEOMETRIES[i], DOWN_SELFAGG);
        test_upscale_gradients(&GEOMETRIES[i], UP_COPY);
        test_upscale_gradients(&GEOMETRIES[i], UP_ALLOC);
    }
    test_chunk_geometry();
    for (int i = 0; i < GEOMETRY_COUNT; i++) {
        test_downscale_exact(&GEOMETRIES[i]);
        test_upscale_exact(&GEOMETRIES[i]);
    }
    return test_summary(argv[0]);
}
