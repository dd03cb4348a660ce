/*
 * test_analysis.c: the pure numerical analysis functions (analysis/).
 *
 * loopdiag: relative update by hand; linear CKA equal to 1 for X against
 * itself, an orthogonal rotation, and a scaled and shifted copy, near 0 for
 * independent noise, symmetric, equal to the n x n Gram-matrix (HSIC) form
 * computed independently here, and the T x T matrix equal to pairwise CKA;
 * effective rank exact for equal-singular-value rank-r matrices (with and
 * without centering) and identity-like matrices.
 * headsel: a hand-built (n_heads, T) array under both change measures.
 * stats: a t interval against tabulated t quantiles, n = 1, bootstrap
 * reproducibility, interpolation on a line and outside the range.
 * matching: looped baseline parameter difference = d * sum (g_t - 1) under
 * alloc (0 under copy); dense baselines within half a layer of their targets
 * and no worse than any other n_loop, on several configurations.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_cblas.h> /* CBLAS prototypes; OpenBLAS provides the symbols (see loopdiag.c) */
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "config.h"
#include "cost.h"
#include "error.h"
#include "harness.h"
#include "headsel.h"
#include "loopdiag.h"
#include "matching.h"
#include "stats.h"
#include "steps.h"

/* ---- helpers ---------------------------------------------------------- */

/* x (n, d) with independent standard Gaussian entries. */
static double *gaussian_matrix(gsl_rng *rng, int n, int d) {
    double *x = malloc((size_t)n * d * sizeof *x);
    for (size_t k = 0; k < (size_t)n * d; k++) x[k] = gsl_ran_gaussian(rng, 1.0);
    return x;
}

/* q (n, n): the Q factor of a QR decomposition of a (n, n) matrix whose
 * first column is `first` (n) if not NULL, the rest Gaussian. Q is
 * orthogonal; with `first`, Q's column 0 is parallel to it and every other
 * column orthogonal to it. */
static double *orthogonal_matrix(gsl_rng *rng, int n, const double *first) {
    double *a = gaussian_matrix(rng, n, n);
    if (first)
        for (int i = 0; i < n; i++) a[(size_t)i * n] = first[i];
    double *q = malloc((size_t)n * n * sizeof *q);
    double *r = malloc((size_t)n * n * sizeof *r);
    double *tau = malloc((size_t)n * sizeof *tau);
    gsl_matrix_view a_view = gsl_matrix_view_array(a, n, n);
    gsl_matrix_view q_view = gsl_matrix_view_array(q, n, n);
    gsl_matrix_view r_view = gsl_matrix_view_array(r, n, n);
    gsl_vector_view tau_view = gsl_vector_view_array(tau, n);
    gsl_linalg_QR_decomp(&a_view.matrix, &tau_view.vector);
    gsl_linalg_QR_unpack(&a_view.matrix, &tau_view.vector, &q_view.matrix, &r_view.matrix);
    free(a);
    free(r);
    free(tau);
    return q;
}

/* c (m, n) = a (m, k) b (k, n). */
static void matmul_plain(double *c, const double *a, const double *b, int m, int n, int k) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0, a, k, b, n, 0.0, c, n);
}

/* CKA by its definition through n x n Gram matrices (Kornblith et al. 2019,
 * eq. 3 with linear kernels): K = X X^T, L = Y Y^T, H = I - 11^T/n,
 * HSIC(K, L) = tr(K H L H); CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)).
 * Independent of the library's column-centering route. */
static double cka_by_gram(const double *x, int d1, const double *y, int d2, int n) {
    double *k = calloc((size_t)n * n, sizeof *k), *l = calloc((size_t)n * n, sizeof *l);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            for (int a = 0; a < d1; a++) k[(size_t)i * n + j] += x[(size_t)i * d1 + a] * x[(size_t)j * d1 + a];
            for (int a = 0; a < d2; a++) l[(size_t)i * n + j] += y[(size_t)i * d2 + a] * y[(size_t)j * d2 + a];
        }
    /* Double-center both: K <- H K H. */
    double *mats[2] = {k, l};
    for (int m = 0; m < 2; m++) {
        double *g = mats[m], total = 0;
        double *row_mean = calloc((size_t)n, sizeof *row_mean);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) row_mean[i] += g[(size_t)i * n + j];
            total += row_mean[i];
            row_mean[i] /= n;
        }
        total /= (double)n * n;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) g[(size_t)i * n + j] += total - row_mean[i] - row_mean[j]; /* symmetric */
        free(row_mean);
    }
    double kl = 0, kk = 0, ll = 0;
    for (size_t e = 0; e < (size_t)n * n; e++) {
        kl += k[e] * l[e];
        kk += k[e] * k[e];
        ll += l[e] * l[e];
    }
    free(k);
    free(l);
    return kl / sqrt(kk * ll);
}

/* 1 if the last error message contains `part`. */
static int error_mentions(const char *part) {
    return strstr(spiral_last_error(), part) != NULL;
}

/* ---- loopdiag --------------------------------------------------------- */

static void test_relative_update(void) {
    /* h0 = [[1, 2], [2, 4]]: ||h0||_F = sqrt(1 + 4 + 4 + 16) = 5.
     * h1 - h0 = [[3, 0], [0, 4]]: norm 5. r = 1. */
    double h0[4] = {1, 2, 2, 4}, h1[4] = {4, 2, 2, 8}, r = -1;
    CHECK(loopdiag_relative_update(&r, h0, h1, 2, 2) == 0, "relative update: %s", spiral_last_error());
    CHECK(fabs(r - 1.0) < 1e-15, "relative update: got %.17g, expected 1", r);
    /* h1 = h0 + 0.1 * h0 -> r = 0.1. */
    double h2[4] = {1.1, 2.2, 2.2, 4.4};
    CHECK(loopdiag_relative_update(&r, h0, h2, 2, 2) == 0, "relative update: %s", spiral_last_error());
    CHECK(fabs(r - 0.1) < 1e-14, "relative update: got %.17g, expected 0.1", r);
    /* (1, 3) rows: h0 = [3, 0, 4] (norm 5), h1 = [0, 0, 4]: diff norm 3. */
    double a[3] = {3, 0, 4}, b[3] = {0, 0, 4};
    CHECK(loopdiag_relative_update(&r, a, b, 1, 3) == 0 && fabs(r - 0.6) < 1e-15, "relative update: got %g, expected 0.6", r);
    double zero[4] = {0};
    CHECK(loopdiag_relative_update(&r, zero, h1, 2, 2) == -1 && error_mentions("h0"),
          "relative update from a zero state must fail naming h0: '%s'", spiral_last_error());
    double bad[4] = {1, NAN, 2, 3};
    CHECK(loopdiag_relative_update(&r, h0, bad, 2, 2) == -1 && error_mentions("row 0, column 1"),
          "relative update with NaN must fail naming its place: '%s'", spiral_last_error());
    CHECK(loopdiag_relative_update(&r, h0, h1, 0, 2) == -1, "relative update with n = 0 must fail");
}

static void test_cka(gsl_rng *rng) {
    int n = 300, d = 16;
    double *x = gaussian_matrix(rng, n, d);
    /* Give the columns different scales and a mean, so centering matters. */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) x[(size_t)i * d + j] = x[(size_t)i * d + j] * (1 + j) + 0.5 * j;
    double cka = -1;

    CHECK(loopdiag_cka(&cka, x, d, x, d, n) == 0, "CKA(X, X): %s", spiral_last_error());
    CHECK(fabs(cka - 1) < 1e-12, "CKA(X, X) = %.17g, expected 1", cka);

    double *q = orthogonal_matrix(rng, d, NULL);
    double *xq = malloc((size_t)n * d * sizeof *xq);
    matmul_plain(xq, x, q, n, d, d);
    CHECK(loopdiag_cka(&cka, x, d, xq, d, n) == 0 && fabs(cka - 1) < 1e-10, "CKA(X, XQ) = %.17g, expected 1", cka);

    double *xs = malloc((size_t)n * d * sizeof *xs);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) xs[(size_t)i * d + j] = -3.5 * x[(size_t)i * d + j] + 100.0 + 7.0 * j;
    CHECK(loopdiag_cka(&cka, x, d, xs, d, n) == 0 && fabs(cka - 1) < 1e-10,
          "CKA(X, cX + shift) = %.17g, expected 1", cka);

    /* Independent Gaussian noise, n = 2000, d = 32: E[CKA] is about d / n. */
    int big_n = 2000, big_d = 32;
    double *u = gaussian_matrix(rng, big_n, big_d), *v = gaussian_matrix(rng, big_n, big_d);
    CHECK(loopdiag_cka(&cka, u, big_d, v, big_d, big_n) == 0 && cka >= 0 && cka < 0.05,
          "CKA of independent noise = %g, expected < 0.05", cka);

    /* Symmetry and the n x n form, with different widths d1 != d2:
     * y (n, 7) = x W + noise. */
    int d2 = 7;
    double *w = gaussian_matrix(rng, d, d2), *y = gaussian_matrix(rng, n, d2);
    double *xw = malloc((size_t)n * d2 * sizeof *xw);
    matmul_plain(xw, x, w, n, d2, d);
    for (size_t k = 0; k < (size_t)n * d2; k++) y[k] += 0.3 * xw[k];
    double xy = -1, yx = -2;
    CHECK(loopdiag_cka(&xy, x, d, y, d2, n) == 0 && loopdiag_cka(&yx, y, d2, x, d, n) == 0, "CKA(X, Y): %s",
          spiral_last_error());
    CHECK(fabs(xy - yx) < 1e-14, "CKA not symmetric: %.17g vs %.17g", xy, yx);
    CHECK(xy > 0.05 && xy < 0.95, "CKA of a partly related pair = %g, expected strictly inside (0, 1)", xy);
    double reference = cka_by_gram(x, d, y, d2, n);
    CHECK(fabs(xy - reference) < 1e-10, "CKA %.15g differs from the n x n Gram form %.15g", xy, reference);

    /* A constant matrix has no centered variance: an error, not a NaN. */
    double *constant = malloc((size_t)n * d * sizeof *constant);
    for (size_t k = 0; k < (size_t)n * d; k++) constant[k] = 2.0;
    CHECK(loopdiag_cka(&cka, x, d, constant, d, n) == -1 && error_mentions("constant"),
          "CKA with a constant matrix must fail: '%s'", spiral_last_error());

    /* T x T matrix against pairwise CKA: states x, xq, z (x plus noise), xs. */
    double *z = gaussian_matrix(rng, n, d);
    for (size_t k = 0; k < (size_t)n * d; k++) z[k] += 0.5 * x[k];
    const double *states[4] = {x, xq, z, xs};
    double matrix[16];
    CHECK(loopdiag_cka_matrix(matrix, states, 4, n, d) == 0, "CKA matrix: %s", spiral_last_error());
    double worst = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double pair;
            loopdiag_cka(&pair, states[i], d, states[j], d, n);
            if (fabs(matrix[i * 4 + j] - pair) > worst) worst = fabs(matrix[i * 4 + j] - pair);
            if (i == j) CHECK(matrix[i * 4 + j] == 1.0, "CKA matrix diagonal [%d] = %.17g", i, matrix[i * 4 + j]);
            CHECK(matrix[i * 4 + j] == matrix[j * 4 + i], "CKA matrix not symmetric at (%d, %d)", i, j);
        }
    CHECK(worst < 1e-12, "CKA matrix differs from pairwise CKA by %g", worst);
    states[2] = constant;
    CHECK(loopdiag_cka_matrix(matrix, states, 4, n, d) == -1 && error_mentions("state 2"),
          "CKA matrix with a constant state must name it: '%s'", spiral_last_error());

    free(x), free(q), free(xq), free(xs), free(u), free(v), free(w), free(y), free(xw), free(constant), free(z);
}

/* h (n, d) = c * U_r V_r^T: rank r, every nonzero singular value c. U_r: r
 * columns of an orthogonal (n, n) matrix (from column `skip` on), V_r: the
 * first r columns of an orthogonal (d, d) matrix. */
static double *equal_spectrum_matrix(gsl_rng *rng, int n, int d, int r, double c, const double *u_first,
                                     int skip) {
    double *u = orthogonal_matrix(rng, n, u_first), *v = orthogonal_matrix(rng, d, NULL);
    double *h = calloc((size_t)n * d, sizeof *h);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            for (int k = 0; k < r; k++) h[(size_t)i * d + j] += c * u[(size_t)i * n + skip + k] * v[(size_t)j * d + k];
    free(u);
    free(v);
    return h;
}

static void test_spectrum(gsl_rng *rng) {
    double erank = -1;
    /* Rank 5 of (60, 20), equal singular values 3: erank = 5, p = 1/5. */
    int n = 60, d = 20, r = 5;
    double *h = equal_spectrum_matrix(rng, n, d, r, 3.0, NULL, 0);
    double p[20], sigma[20];
    CHECK(loopdiag_spectrum(p, sigma, h, n, d, SPECTRUM_UNCENTERED) == 0, "spectrum: %s", spiral_last_error());
    for (int i = 0; i < d; i++) {
        double expected_p = i < r ? 1.0 / r : 0, expected_sigma = i < r ? 3.0 : 0;
        CHECK(fabs(p[i] - expected_p) < 1e-12 && fabs(sigma[i] - expected_sigma) < 1e-12,
              "spectrum[%d]: p %.17g sigma %.17g, expected %g and %g", i, p[i], sigma[i], expected_p, expected_sigma);
        if (i > 0) CHECK(p[i] <= p[i - 1], "spectrum not descending at %d", i);
    }
    CHECK(loopdiag_state_effective_rank(&erank, h, n, d, SPECTRUM_UNCENTERED) == 0 && fabs(erank - r) < 1e-9,
          "effective rank of a rank-%d equal-spectrum matrix = %.15g", r, erank);
    free(h);

    /* The same with more columns than rows (n < d): the transposed route. */
    h = equal_spectrum_matrix(rng, 12, 30, 4, 0.25, NULL, 0);
    CHECK(loopdiag_state_effective_rank(&erank, h, 12, 30, SPECTRUM_UNCENTERED) == 0 && fabs(erank - 4) < 1e-9,
          "effective rank of a (12, 30) rank-4 matrix = %.15g", erank);
    free(h);

    /* Identity-like (n, d): rows 0..d-1 the identity, the rest zero: erank d. */
    int rows[2] = {40, 12}, cols[2] = {12, 12};
    for (int c = 0; c < 2; c++) {
        double *id = calloc((size_t)rows[c] * cols[c], sizeof *id);
        for (int i = 0; i < cols[c]; i++) id[(size_t)i * cols[c] + i] = 1;
        CHECK(loopdiag_state_effective_rank(&erank, id, rows[c], cols[c], SPECTRUM_UNCENTERED) == 0 &&
                  fabs(erank - cols[c]) < 1e-9,
              "effective rank of identity-like (%d, %d) = %.15g", rows[c], cols[c], erank);
        free(id);
    }

    /* Centering: h = A + 1 m^T, A rank 3 with equal singular values and
     * columns orthogonal to 1 (so A is already centered). Centered erank = 3;
     * uncentered, the mean direction adds a fourth value. */
    n = 50, d = 10;
    double ones[50];
    for (int i = 0; i < n; i++) ones[i] = 1;
    double *a = equal_spectrum_matrix(rng, n, d, 3, 2.0, ones, 1);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) a[(size_t)i * d + j] += 5.0 + j;
    CHECK(loopdiag_state_effective_rank(&erank, a, n, d, SPECTRUM_CENTERED) == 0 && fabs(erank - 3) < 1e-9,
          "centered effective rank = %.15g, expected 3", erank);
    CHECK(loopdiag_state_effective_rank(&erank, a, n, d, SPECTRUM_DEFAULT) == 0 && erank > 1 && erank < 3.5 &&
              fabs(erank - 3) > 0.01,
          "uncentered effective rank = %.15g, expected != 3 (the mean direction dominates)", erank);
    free(a);

    /* Hand-computed spectra. */
    double half[2] = {0.5, 0.5}, one[2] = {1, 0}, thirds[3] = {0.5, 0.25, 0.25};
    CHECK(loopdiag_effective_rank(&erank, half, 2) == 0 && fabs(erank - 2) < 1e-15, "erank(1/2, 1/2) = %g", erank);
    CHECK(loopdiag_effective_rank(&erank, one, 2) == 0 && erank == 1, "erank(1, 0) = %g", erank);
    /* H = 0.5 ln 2 + 0.5 ln 4 = 1.5 ln 2 -> erank = 2^1.5 */
    CHECK(loopdiag_effective_rank(&erank, thirds, 3) == 0 && fabs(erank - pow(2, 1.5)) < 1e-14,
          "erank(1/2, 1/4, 1/4) = %.17g, expected 2^1.5", erank);
    double unnormalized[2] = {1, 1};
    CHECK(loopdiag_effective_rank(&erank, unnormalized, 2) == -1 && error_mentions("sums to"),
          "an unnormalized spectrum must fail: '%s'", spiral_last_error());

    /* Errors: a zero matrix, a constant matrix centered, a bad centering. */
    double zero[6] = {0}, constant[6] = {1, 2, 3, 1, 2, 3};
    CHECK(loopdiag_spectrum(p, NULL, zero, 2, 3, SPECTRUM_UNCENTERED) == -1 && error_mentions("zero"),
          "spectrum of a zero matrix must fail: '%s'", spiral_last_error());
    CHECK(loopdiag_spectrum(p, NULL, constant, 2, 3, SPECTRUM_CENTERED) == -1 && error_mentions("centered"),
          "centered spectrum of identical rows must fail: '%s'", spiral_last_error());
    CHECK(loopdiag_spectrum(p, NULL, constant, 2, 3, SPECTRUM_UNCENTERED) == 0 && fabs(p[0] - 1) < 1e-12,
          "uncentered spectrum of identical rows: p[0] = %g, expected 1", p[0]);
    CHECK(loopdiag_spectrum(p, NULL, constant, 2, 3, 7) == -1 && error_mentions("centering"),
          "an unknown centering must fail: '%s'", spiral_last_error());
}

/* ---- headsel ---------------------------------------------------------- */

static void test_headsel(void) {
    /* stat (5, 4), one row per head, one column per iteration.
     *        range  population sd
     * h0:      0     0
     * h1:      9     sqrt(49/4)  = 3.5
     * h2:      8     sqrt(48/4)  = 3.4641
     * h3:      3     sqrt(5/4)   = 1.1180
     * h4:      9     sqrt(81/4)  = 4.5   (ties h1 on range) */
    const double stat[5 * 4] = {
        1, 1, 1, 1,
        10, 5, 2, 1,
        0, 8, 0, 0,
        3, 4, 5, 6,
        20, 11, 20, 11,
    };
    int order[5], n_selected = -1;
    double change[5];
    CHECK(headsel_select(order, &n_selected, change, stat, 5, 4, HEADSEL_DEFAULT_FRACTION, HEADSEL_RANGE) == 0,
          "head selection: %s", spiral_last_error());
    const int range_order[5] = {1, 4, 2, 3, 0};
    const double range_change[5] = {0, 9, 8, 3, 9};
    CHECK(n_selected == 2, "40%% of 5 heads: selected %d, expected 2", n_selected);
    for (int i = 0; i < 5; i++) {
        CHECK(order[i] == range_order[i], "range rank %d: head %d, expected %d", i, order[i], range_order[i]);
        CHECK(change[i] == range_change[i], "range of head %d: %g, expected %g", i, change[i], range_change[i]);
    }
    CHECK(headsel_select(order, &n_selected, change, stat, 5, 4, 0.4, HEADSEL_STDDEV) == 0, "head selection: %s",
          spiral_last_error());
    const int sd_order[5] = {4, 1, 2, 3, 0};
    const double sd_change[5] = {0, 3.5, sqrt(12.0), sqrt(1.25), 4.5};
    for (int i = 0; i < 5; i++) {
        CHECK(order[i] == sd_order[i], "sd rank %d: head %d, expected %d", i, order[i], sd_order[i]);
        CHECK(fabs(change[i] - sd_change[i]) < 1e-14, "sd of head %d: %g, expected %g", i, change[i], sd_change[i]);
    }
    CHECK(n_selected == 2 && order[0] == 4 && order[1] == 1, "sd selection: %d heads, %d %d", n_selected, order[0],
          order[1]);

    /* Counts: ceil(fraction * n), at least 1, forgiving 0.4 * 10 and 0.3 * 10. */
    const struct { int n_heads; double fraction; int expected; } counts[] = {
        {10, 0.4, 4}, {5, 0.4, 2}, {3, 0.4, 2}, {1, 0.4, 1}, {2, 0.1, 1},
        {7, 1.0, 7}, {10, 0.3, 3}, {12, 0.4, 5}, {32, 0.4, 13}, {100, 0.07, 7},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        int count = -1;
        CHECK(headsel_count(&count, counts[i].n_heads, counts[i].fraction) == 0 && count == counts[i].expected,
              "count(%d heads, %g) = %d, expected %d", counts[i].n_heads, counts[i].fraction, count,
              counts[i].expected);
    }
    int count;
    CHECK(headsel_count(&count, 5, 0) == -1 && headsel_count(&count, 5, 1.5) == -1 &&
              headsel_count(&count, 0, 0.4) == -1,
          "a fraction outside (0, 1] or no heads must fail");

    /* A single iteration: no change anywhere, ties keep row order. */
    const double flat[3] = {5, 1, 3};
    CHECK(headsel_select(order, &n_selected, NULL, flat, 3, 1, 1.0, HEADSEL_RANGE) == 0 && order[0] == 0 &&
              order[1] == 1 && order[2] == 2 && n_selected == 3,
          "T = 1: order %d %d %d", order[0], order[1], order[2]);

    double bad[4] = {1, 2, NAN, 4};
    CHECK(headsel_select(order, &n_selected, NULL, bad, 2, 2, 0.4, HEADSEL_RANGE) == -1 &&
              error_mentions("head 1 at iteration 0"),
          "NaN statistic must fail naming head and iteration: '%s'", spiral_last_error());
    CHECK(headsel_change(change, stat, 5, 4, 9) == -1 && error_mentions("measure"),
          "an unknown measure must fail: '%s'", spiral_last_error());
}

/* ---- stats ------------------------------------------------------------ */

/* Welch's interval on samples with known answers: a = {1,2,3}, b = {4,5,6}:
 * d = -3, se^2 = 1/3 + 1/3, nu = (2/3)^2 / (2 (1/3)^2 / 2) = 4, so the half
 * width is t_{0.975,4} sqrt(2/3) = 2.776445 * 0.816497; unequal spreads
 * give fractional degrees of freedom; one value or none of spread gives a
 * zero-width interval; bad input is refused. */
static void test_welch(void) {
    const double a[3] = {1, 2, 3}, b[3] = {4, 5, 6}, wide[3] = {0, 5, 10};
    MeanInterval d;
    CHECK(stats_diff_ci_welch(&d, a, 3, b, 3, 0.95) == 0, "welch: %s", spiral_last_error());
    double half = 2.776445 * sqrt(2.0 / 3);
    CHECK(d.mean == -3 && fabs(d.lo - (-3 - half)) < 1e-6 && fabs(d.hi - (-3 + half)) < 1e-6 && !d.zero_width,
          "welch [%.7f, %.7f], expected -3 -+ %.7f", d.lo, d.hi, half);
    /* var 1 and 25 over 3 each: se^2 = 26/3, nu = (26/3)^2 / ((1/9 + 625/9) / 2) = 2.1597 */
    CHECK(stats_diff_ci_welch(&d, wide, 3, a, 3, 0.95) == 0, "welch unequal: %s", spiral_last_error());
    double se = sqrt(26.0 / 3), nu = (26.0 / 3) * (26.0 / 3) / ((1.0 / 9 + 625.0 / 9) / 2);
    CHECK(fabs(d.sd - se) < 1e-12 && fabs(d.hi - d.mean - gsl_cdf_tdist_Pinv(0.975, nu) * se) < 1e-9 && d.mean == 3,
          "welch unequal: mean %g, half width %g (nu %g)", d.mean, d.hi - d.mean, nu);
    CHECK(stats_diff_ci_welch(&d, a, 1, b, 3, 0.95) == 0 && d.zero_width && d.mean == -4 && d.lo == d.hi,
          "one value: no interval (mean %g)", d.mean);
    const double same[2] = {2, 2};
    CHECK(stats_diff_ci_welch(&d, same, 2, same, 2, 0.95) == 0 && d.zero_width && d.mean == 0, "no spread");
    CHECK(stats_diff_ci_welch(&d, a, 0, b, 3, 0.95) == -1 && error_mentions("at least 1 value"),
          "empty sample refused: %s", spiral_last_error());
}

static void test_stats(gsl_rng *rng) {
    /* x = 1..5: mean 3, sd sqrt(2.5), t_{0.975, 4} = 2.776445,
     * half width 2.776445 * sqrt(2.5 / 5) = 1.963243. */
    const double x[5] = {1, 2, 3, 4, 5};
    MeanInterval ci;
    CHECK(stats_mean_ci_t(&ci, x, 5, 0.95) == 0, "t interval: %s", spiral_last_error());
    double half = 2.776445 * sqrt(2.5 / 5);
    CHECK(ci.n == 5 && ci.mean == 3 && fabs(ci.sd - sqrt(2.5)) < 1e-15 && !ci.zero_width, "t interval: n %d mean %g sd %g",
          ci.n, ci.mean, ci.sd);
    CHECK(fabs(ci.lo - (3 - half)) < 1e-6 && fabs(ci.hi - (3 + half)) < 1e-6, "t interval [%.7f, %.7f], expected 3 -+ %.7f",
          ci.lo, ci.hi, half);
    /* n = 2: {0, 2}, sd sqrt(2), t_{0.975, 1} = 12.706205: half = 12.706205. */
    const double pair[2] = {0, 2};
    CHECK(stats_mean_ci_t(&ci, pair, 2, 0.95) == 0 && fabs(ci.hi - 1 - 12.706205) < 1e-5 &&
              fabs(1 - ci.lo - 12.706205) < 1e-5,
          "t interval n = 2: [%.7f, %.7f]", ci.lo, ci.hi);
    /* 90%: t_{0.95, 4} = 2.131847. */
    CHECK(stats_mean_ci_t(&ci, x, 5, 0.90) == 0 && fabs(ci.hi - 3 - 2.131847 * sqrt(0.5)) < 1e-6,
          "90%% t interval hi %.7f", ci.hi);
    const double single[1] = {4.25};
    CHECK(stats_mean_ci_t(&ci, single, 1, 0.95) == 0 && ci.zero_width && ci.lo == 4.25 && ci.hi == 4.25 && ci.sd == 0,
          "n = 1: zero-width interval flagged");
    CHECK(stats_mean_ci_t(&ci, x, 0, 0.95) == -1, "n = 0 must fail");
    CHECK(stats_mean_ci_t(&ci, x, 5, 1.0) == -1 && error_mentions("level"), "level 1 must fail: '%s'",
          spiral_last_error());

    /* Bootstrap: reproducible by seed, contains the mean, near the t
     * interval's width on a large Gaussian sample. */
    int n = 400;
    double *sample = malloc((size_t)n * sizeof *sample);
    for (int i = 0; i < n; i++) sample[i] = 10 + 2 * gsl_ran_gaussian(rng, 1.0);
    MeanInterval boot, again, other, t;
    CHECK(stats_mean_ci_bootstrap(&boot, sample, n, 0.95, 4000, 42) == 0 &&
              stats_mean_ci_bootstrap(&again, sample, n, 0.95, 4000, 42) == 0 &&
              stats_mean_ci_bootstrap(&other, sample, n, 0.95, 4000, 43) == 0,
          "bootstrap: %s", spiral_last_error());
    CHECK(boot.lo == again.lo && boot.hi == again.hi, "bootstrap not reproducible with the same seed");
    CHECK(boot.lo != other.lo || boot.hi != other.hi, "bootstrap identical under different seeds");
    CHECK(boot.lo < boot.mean && boot.mean < boot.hi && !boot.zero_width, "bootstrap [%g, %g] around %g", boot.lo,
          boot.hi, boot.mean);
    stats_mean_ci_t(&t, sample, n, 0.95);
    double ratio = (boot.hi - boot.lo) / (t.hi - t.lo);
    CHECK(ratio > 0.85 && ratio < 1.15, "bootstrap width / t width = %g, expected about 1", ratio);
    CHECK(stats_mean_ci_bootstrap(&boot, single, 1, 0.95, 100, 1) == 0 && boot.zero_width && boot.lo == 4.25,
          "bootstrap n = 1: zero-width interval flagged");
    CHECK(stats_mean_ci_bootstrap(&boot, x, 5, 0.95, 0, 1) == -1, "bootstrap with 0 resamples must fail");
    free(sample);

    /* Interpolation on the line y = 3x + 1: exact anywhere inside. */
    const double px[5] = {0, 1, 2.5, 4, 10}, py[5] = {1, 4, 8.5, 13, 31};
    const double queries[7] = {0, 0.3, 1, 2.5, 3.2, 7, 10};
    for (int i = 0; i < 7; i++) {
        double y = NAN;
        CHECK(stats_interpolate(&y, px, py, 5, queries[i]) == 0 && fabs(y - (3 * queries[i] + 1)) < 1e-13,
              "interpolate at %g: %.17g, expected %g", queries[i], y, 3 * queries[i] + 1);
    }
    double y;
    CHECK(stats_interpolate(&y, px, py, 5, -0.1) == -1 && error_mentions("outside"),
          "below the range must fail: '%s'", spiral_last_error());
    CHECK(stats_interpolate(&y, px, py, 5, 10.5) == -1 && error_mentions("outside"),
          "above the range must fail: '%s'", spiral_last_error());
    const double unsorted[3] = {0, 2, 1}, ys[3] = {0, 0, 0};
    CHECK(stats_interpolate(&y, unsorted, ys, 3, 0.5) == -1 && error_mentions("increasing"),
          "non-increasing x must fail: '%s'", spiral_last_error());
    const double lone_x[1] = {5}, lone_y[1] = {2};
    CHECK(stats_interpolate(&y, lone_x, lone_y, 1, 5) == 0 && y == 2, "one point, queried at itself");
}

/* ---- matching --------------------------------------------------------- */

/* Checks one dense baseline: kind, schedule, mismatch within half a layer of
 * the target, and no other n_loop in 1..200 closer. */
static void check_dense(const char *label, const MatchedBaseline *b, const MatchedBaselines *m, int flops) {
    double target = flops ? m->forward_flops : m->params_nonembedding;
    double achieved = flops ? b->forward_flops : b->params_nonembedding;
    double mismatch = flops ? b->flops_mismatch : b->params_mismatch;
    CHECK(model_kind(&b->cfg) == KIND_DENSE && b->cfg.n_iters == 1 && b->cfg.schedule[0].g == 1 &&
              b->cfg.schedule[0].shift == 0 && config_validate(&b->cfg) == 0,
          "%s: not a valid dense config", label);
    CHECK(b->cfg.n_pre == m->spiral.n_pre && b->cfg.n_post == m->spiral.n_post && b->cfg.d_model == m->spiral.d_model,
          "%s: prelude, coda or width changed", label);
    CHECK(fabs(mismatch - (achieved - target) / target) < 1e-15, "%s: mismatch %g inconsistent", label, mismatch);
    /* One layer, computed independently of the library. */
    double d = m->spiral.d_model, f = m->spiral.d_ff;
    double layer = flops ? layer_forward_flops(&m->spiral, m->L) : 2 * d + 4 * d * d + 3 * d * f;
    CHECK(b->step == layer, "%s: step %.0f, expected one layer = %.0f", label, b->step, layer);
    if (!b->clamped)
        CHECK(fabs(mismatch) <= layer / 2 / target + 1e-12,
              "%s: |mismatch| %g exceeds half a layer %g (n_loop %d)", label, fabs(mismatch), layer / 2 / target,
              b->cfg.n_loop);
    double best = fabs(achieved - target);
    for (int n_loop = 1; n_loop <= 200; n_loop++) {
        SpiralConfig other = b->cfg;
        other.n_loop = n_loop;
        ModelCost cost;
        model_cost(&cost, &other, m->L);
        double value = flops ? cost.forward_flops : cost.params_nonembedding;
        if (fabs(value - target) < best) {
            CHECK(0, "%s: n_loop %d is closer (%g) than the chosen %d (%g)", label, n_loop, fabs(value - target),
                  b->cfg.n_loop, best);
            break;
        }
    }
}

static void test_matching(void) {
    /* Configurations: the default (8, 4, 2, 1; selfagg/alloc), a wider
     * untied one with offsets and a no-overlap shift, and mean/copy. */
    SpiralConfig configs[3];
    int lengths[3] = {256, 512, 1024};
    config_default(&configs[0]);
    config_default(&configs[1]);
    configs[1].d_model = 128, configs[1].n_heads = 4, configs[1].d_ff = 344;
    configs[1].n_pre = 2, configs[1].n_loop = 3, configs[1].n_post = 2, configs[1].tie_embeddings = 0;
    configs[1].n_iters = 5;
    const IterSpec schedule1[5] = {{16, 3, 15}, {8, 0, 8}, {4, 1, 3}, {2, 0, 1}, {1, 0, 0}};
    memcpy(configs[1].schedule, schedule1, sizeof schedule1);
    config_default(&configs[2]);
    configs[2].down = DOWN_MEAN, configs[2].up = UP_COPY, configs[2].n_loop = 4;

    for (int c = 0; c < 3; c++) {
        char label[64];
        MatchedBaselines m;
        CHECK(config_validate(&configs[c]) == 0, "config %d invalid: %s", c, spiral_last_error());
        CHECK(matching_derive(&m, &configs[c], lengths[c]) == 0, "matching config %d: %s", c, spiral_last_error());
        ModelCost cost;
        model_cost(&cost, &configs[c], lengths[c]);
        CHECK(m.params_nonembedding == cost.params_nonembedding && m.forward_flops == cost.forward_flops &&
                  m.params == cost.params,
              "config %d: targets differ from model_cost", c);

        /* Looped: same fields, every g = 1; parameters differ only by the
         * alloc tensors (g_t, d) -> (1, d). */
        const SpiralConfig *looped = &m.looped.cfg;
        CHECK(model_kind(looped) == KIND_LOOPED && looped->n_iters == configs[c].n_iters &&
                  looped->n_loop == configs[c].n_loop && looped->n_pre == configs[c].n_pre,
              "config %d: looped baseline is %s with T %d", c, model_kind_name(model_kind(looped)), looped->n_iters);
        for (int t = 0; t < looped->n_iters; t++)
            CHECK(looped->schedule[t].g == 1 && looped->schedule[t].offset == 0 && looped->schedule[t].shift == 0,
                  "config %d: looped schedule[%d] not full resolution", c, t);
        double expected_difference = 0;
        if (configs[c].up == UP_ALLOC)
            for (int t = 0; t < configs[c].n_iters; t++)
                expected_difference += (double)configs[c].d_model * (configs[c].schedule[t].g - 1);
        CHECK(m.looped_param_difference == expected_difference && m.params - m.looped.params == expected_difference,
              "config %d: looped has %.0f fewer params, expected d * sum(g_t - 1) = %.0f", c,
              m.looped_param_difference, expected_difference);
        CHECK(fabs(m.looped.params_mismatch + expected_difference / m.params_nonembedding) < 1e-15,
              "config %d: looped params mismatch %g", c, m.looped.params_mismatch);
        CHECK(m.looped.flops_mismatch > 0, "config %d: looped FLOPs should exceed the spiral's", c);
        CHECK((expected_difference == 0) == (strstr(m.looped.rule, "fewer parameters") == NULL),
              "config %d: looped rule must report a parameter difference iff there is one: '%s'", c, m.looped.rule);

        snprintf(label, sizeof label, "config %d dense (params)", c);
        check_dense(label, &m.dense_params, &m, 0);
        snprintf(label, sizeof label, "config %d dense (FLOPs)", c);
        check_dense(label, &m.dense_flops, &m, 1);
        CHECK(!m.dense_params.clamped && !m.dense_flops.clamped, "config %d: unexpected clamping", c);

        char text[4096];
        CHECK(matching_format(text, sizeof text, &m) == 0 && strstr(text, "dense (FLOPs)") && strstr(text, "spiral"),
              "config %d: format: %s", c, spiral_last_error());
        CHECK(matching_format(text, 40, &m) == -1 && error_mentions("does not fit"),
              "a too-small buffer must fail: '%s'", spiral_last_error());
    }

    /* The default: the spiral's iteration tensors (4 scores d, allocs
     * (8 + 4 + 2 + 1) d = 1216) exceed the dense model's (2 d = 128) by
     * 1088, far below half a layer (49536 / 2): dense n_loop stays 2. */
    MatchedBaselines m;
    matching_derive(&m, &configs[0], 256);
    CHECK(m.dense_params.cfg.n_loop == 2, "default: dense (params) n_loop %d, expected 2", m.dense_params.cfg.n_loop);

    /* Clamping: one coarse iteration of a one-layer core costs less than
     * any dense model with a core layer at full length. */
    SpiralConfig coarse;
    config_default(&coarse);
    coarse.n_loop = 1, coarse.n_iters = 1;
    coarse.schedule[0] = (IterSpec){8, 0, 7};
    CHECK(matching_derive(&m, &coarse, 512) == 0 && m.dense_flops.clamped && m.dense_flops.cfg.n_loop == 1 &&
              strstr(m.dense_flops.rule, "minimum"),
          "coarse: dense (FLOPs) should be clamped at n_loop 1: '%s'", m.dense_flops.rule);

    /* Errors: an invalid spiral, L = 0. */
    SpiralConfig bad;
    config_default(&bad);
    bad.n_heads = 3;
    CHECK(matching_derive(&m, &bad, 256) == -1 && error_mentions("n_heads"), "invalid spiral must fail: '%s'",
          spiral_last_error());
    CHECK(matching_derive(&m, &configs[0], 0) == -1 && error_mentions("L >= 1"), "L = 0 must fail: '%s'",
          spiral_last_error());
}

/* A mesh spiral's baselines: the looped one keeps the memory (topology
 * and slots; it loses only the alloc tensors' size), the dense ones are
 * plain residual Transformers matched on the spiral's counts, which
 * include the routers (model_cost). */
static void test_matching_mesh(void) {
    SpiralConfig spiral;
    config_default(&spiral);
    spiral.topology = TOPOLOGY_MESH;
    spiral.mesh_slots = 6;
    MatchedBaselines m;
    CHECK(matching_derive(&m, &spiral, 256) == 0, "mesh matching: %s", spiral_last_error());
    ModelCost cost;
    model_cost(&cost, &spiral, 256);
    CHECK(m.params_nonembedding == cost.params_nonembedding && m.forward_flops == cost.forward_flops,
          "mesh: targets differ from model_cost");
    const SpiralConfig *looped = &m.looped.cfg;
    CHECK(model_kind(looped) == KIND_LOOPED && looped->topology == TOPOLOGY_MESH && looped->mesh_slots == 6,
          "mesh: looped baseline is %s, topology %s, %d slots", model_kind_name(model_kind(looped)),
          config_topology_name(looped->topology), looped->mesh_slots);
    double expected_difference = 0;
    for (int t = 0; t < spiral.n_iters; t++) expected_difference += (double)spiral.d_model * (spiral.schedule[t].g - 1);
    CHECK(m.looped_param_difference == expected_difference, "mesh: looped has %.0f fewer params, expected %.0f",
          m.looped_param_difference, expected_difference);
    CHECK(m.dense_params.cfg.topology == TOPOLOGY_RESIDUAL && m.dense_flops.cfg.topology == TOPOLOGY_RESIDUAL &&
              m.dense_flops.cfg.mesh_slots == SPIRAL_DEFAULT_MESH_SLOTS,
          "mesh: dense baselines must be residual Transformers");
    check_dense("mesh dense (params)", &m.dense_params, &m, 0);
    check_dense("mesh dense (FLOPs)", &m.dense_flops, &m, 1);
}

/* steps.h's attention keys: spiral and looped rows are keyed (step, layer),
 * a dense core layer l is (l + 1, 0), as event_attention_key records them;
 * attention_key_step inverts step_attention_key and rejects other keys. */
static void test_attention_keys(void) {
    SpiralConfig spiral, looped, dense;
    config_default(&spiral); /* schedule 8, 4, 2, 1 */
    spiral.n_loop = 2;
    looped = spiral;
    for (int t = 0; t < looped.n_iters; t++) looped.schedule[t] = (IterSpec){1, 0, 0};
    dense = looped;
    dense.n_iters = 1, dense.n_loop = 3;
    const SpiralConfig *configs[3] = {&spiral, &looped, &dense};
    for (int c = 0; c < 3; c++) {
        const SpiralConfig *cfg = configs[c];
        int is_dense = model_kind(cfg) == KIND_DENSE;
        CHECK(is_dense == (c == 2), "config %d: kind %s", c, model_kind_name(model_kind(cfg)));
        for (int t = 0; t < loop_steps(cfg); t++)
            for (int l = 0; l < loop_layers_per_step(cfg); l++) {
                int key_step, key_layer, step = -1, layer = -1;
                step_attention_key(cfg, t, l, &key_step, &key_layer);
                CHECK(key_step == (is_dense ? t + 1 : t) && key_layer == (is_dense ? 0 : l),
                      "config %d step %d layer %d: key (%d, %d)", c, t, l, key_step, key_layer);
                /* the forward pass's event of that layer gets the same key */
                ObserveEvent event = {.site = OBSERVE_ATTENTION, .block = BLOCK_LOOP,
                                      .iteration = is_dense ? 0 : t, .layer = is_dense ? t : l};
                int event_step, event_layer;
                event_attention_key(&event, cfg, &event_step, &event_layer);
                CHECK(event_step == key_step && event_layer == key_layer,
                      "config %d step %d layer %d: event key (%d, %d), step key (%d, %d)", c, t, l, event_step,
                      event_layer, key_step, key_layer);
                CHECK(attention_key_step(cfg, key_step, key_layer, &step, &layer) == 1 && step == t && layer == l,
                      "config %d: key (%d, %d) maps back to (%d, %d), expected (%d, %d)", c, key_step, key_layer,
                      step, layer, t, l);
            }
        int step, layer;
        CHECK(!attention_key_step(cfg, loop_steps(cfg) + 1, 0, &step, &layer) &&
                  !attention_key_step(cfg, -1, 0, &step, &layer) &&
                  !attention_key_step(cfg, 1, loop_layers_per_step(cfg), &step, &layer),
              "config %d: keys of no loop layer must be rejected", c);
    }
    int step, layer;
    CHECK(!attention_key_step(&dense, 0, 0, &step, &layer), "dense: key (0, 0) names no core layer");
}

int main(int argc, char **argv) {
    (void)argc;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 20260211);
    test_relative_update();
    test_cka(rng);
    test_spectrum(rng);
    test_headsel();
    test_stats(rng);
    test_matching();
    test_welch();
    test_matching_mesh();
    test_attention_keys();
    gsl_rng_free(rng);
    return test_summary(argv[0]);
}
