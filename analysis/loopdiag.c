/*
 * loopdiag.c: relative update size, linear CKA, singular-value spectrum and
 * effective rank of iteration states (equations and references in
 * loopdiag.h).
 *
 * Cross-products go through OpenBLAS (cblas_dsyrk, cblas_dgemm) in double
 * precision directly rather than base/matmul.h, whose element type follows
 * the library build (float or double): analysis is always double. The
 * prototypes come from <gsl/gsl_cblas.h> (gsl_linalg.h includes it, and it
 * cannot share a file with OpenBLAS's <cblas.h>: both define the CBLAS
 * enums); it is the standard CBLAS interface, and the symbols resolve to
 * OpenBLAS because the Makefile links -lopenblas and drops -lgslcblas. The QR
 * and SVD are GSL's, on views of malloc'd buffers (so out of memory is our
 * error, not GSL's). GSL's default error handler aborts; every size and
 * value GSL sees is checked first, so bad input never reaches it.
 */
#include "loopdiag.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>

#include "error.h"

/* Checks 1 <= n, 1 <= d and that n * d doubles fit in memory sizes. */
static int check_shape(const char *what, int n, int d) {
    if (n < 1 || d < 1) return spiral_error("%s: expected a matrix with n >= 1 rows and d >= 1 columns, got (%d, %d)",
                                            what, n, d);
    if ((size_t)n > ((size_t)-1 / sizeof(double)) / (size_t)d)
        return spiral_error("%s: matrix (%d, %d) is too large", what, n, d);
    return 0;
}

/* Fails naming the first non-finite entry of x (n, d). */
static int check_finite(const char *what, const double *x, int n, int d) {
    size_t count = (size_t)n * d;
    for (size_t k = 0; k < count; k++)
        if (!isfinite(x[k]))
            return spiral_error("%s: non-finite value at row %zu, column %zu", what, k / (size_t)d,
                                k % (size_t)d);
    return 0;
}

/* out (n, d) = x (n, d) with each column's mean over the n rows removed. */
static void center_columns(double *out, const double *x, int n, int d) {
    /* Row 0 of out holds the column means until it is overwritten last, so
     * no extra buffer is needed: out[j] = x[j] - out[j] reads the mean first. */
    memset(out, 0, (size_t)d * sizeof *out);
    double *mean = out;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) mean[j] += x[(size_t)i * d + j];
    for (int j = 0; j < d; j++) mean[j] /= n;
    /* Rows n-1 .. 1 first so that row 0, which holds the means, is last. */
    for (int i = n - 1; i >= 0; i--)
        for (int j = 0; j < d; j++) out[(size_t)i * d + j] = x[(size_t)i * d + j] - mean[j];
}

/* ||xc^T xc||_F for xc (n, d), using work (d, d). syrk fills the upper
 * triangle; the Frobenius norm counts off-diagonal entries twice. */
static double self_cross_norm(const double *xc, int n, int d, double *work) {
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0, xc, d, 0.0, work, d);
    double sum = 0;
    for (int a = 0; a < d; a++) {
        sum += work[(size_t)a * d + a] * work[(size_t)a * d + a];
        for (int b = a + 1; b < d; b++) sum += 2 * work[(size_t)a * d + b] * work[(size_t)a * d + b];
    }
    return sqrt(sum);
}

/* ||yc^T xc||_F^2 for xc (n, d1), yc (n, d2), using work (d2, d1). */
static double cross_norm_squared(const double *xc, int d1, const double *yc, int d2, int n, double *work) {
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d2, d1, n, 1.0, yc, d2, xc, d1, 0.0, work, d1);
    double sum = 0;
    size_t count = (size_t)d2 * d1;
    for (size_t k = 0; k < count; k++) sum += work[k] * work[k];
    return sum;
}

int loopdiag_relative_update(double *r, const double *h0, const double *h1, int n, int d) {
    if (check_shape("relative update", n, d)) return -1;
    if (check_finite("relative update: h0", h0, n, d) || check_finite("relative update: h1", h1, n, d)) return -1;
    double base = 0, diff = 0;
    size_t count = (size_t)n * d;
    for (size_t k = 0; k < count; k++) {
        base += h0[k] * h0[k];
        diff += (h1[k] - h0[k]) * (h1[k] - h0[k]);
    }
    if (base == 0) return spiral_error("relative update: ||h0||_F = 0, the ratio is undefined");
    *r = sqrt(diff) / sqrt(base);
    return 0;
}

int loopdiag_cka(double *cka, const double *x, int d1, const double *y, int d2, int n) {
    if (check_shape("CKA: x", n, d1) || check_shape("CKA: y", n, d2)) return -1;
    if (check_finite("CKA: x", x, n, d1) || check_finite("CKA: y", y, n, d2)) return -1;
    int dmax = d1 > d2 ? d1 : d2;
    double *xc = malloc((size_t)n * d1 * sizeof *xc);
    double *yc = malloc((size_t)n * d2 * sizeof *yc);
    double *work = malloc((size_t)dmax * dmax * sizeof *work); /* (d2, d1) fits in (dmax, dmax) */
    int status = 0;
    if (!xc || !yc || !work) {
        status = spiral_error("CKA: out of memory for (%d, %d) and (%d, %d) matrices", n, d1, n, d2);
        goto done;
    }
    center_columns(xc, x, n, d1);
    center_columns(yc, y, n, d2);
    double norm_x = self_cross_norm(xc, n, d1, work);
    double norm_y = self_cross_norm(yc, n, d2, work);
    if (norm_x == 0 || norm_y == 0) {
        status = spiral_error("CKA: %s is constant over its %d rows (zero after centering); CKA is undefined",
                              norm_x == 0 ? "x" : "y", n);
        goto done;
    }
    *cka = cross_norm_squared(xc, d1, yc, d2, n, work) / (norm_x * norm_y);
done:
    free(xc);
    free(yc);
    free(work);
    return status;
}

int loopdiag_cka_matrix(double *out, const double *const *states, int T, int n, int d) {
    if (T < 1) return spiral_error("CKA matrix: expected T >= 1 states, got %d", T);
    if (check_shape("CKA matrix", n, d)) return -1;
    for (int t = 0; t < T; t++) {
        if (!states[t]) return spiral_error("CKA matrix: state %d is NULL", t);
        if (check_finite("CKA matrix", states[t], n, d)) return spiral_error_prefix("state %d", t);
    }
    double *a = malloc((size_t)n * d * sizeof *a);
    double *b = malloc((size_t)n * d * sizeof *b);
    double *work = malloc((size_t)d * d * sizeof *work);
    double *norms = malloc((size_t)T * sizeof *norms); /* ||Xc_t^T Xc_t||_F (T) */
    int status = 0;
    if (!a || !b || !work || !norms) {
        status = spiral_error("CKA matrix: out of memory for %d states of (%d, %d)", T, n, d);
        goto done;
    }
    for (int t = 0; t < T; t++) {
        center_columns(a, states[t], n, d);
        norms[t] = self_cross_norm(a, n, d, work);
        if (norms[t] == 0) {
            status = spiral_error("CKA matrix: state %d is constant over its %d rows; CKA is undefined", t, n);
            goto done;
        }
    }
    /* Center state i once, then each later state j; O(T^2 n d) centering
     * against O(T^2 n d^2) for the products. */
    for (int i = 0; i < T; i++) {
        out[(size_t)i * T + i] = 1.0;
        center_columns(a, states[i], n, d);
        for (int j = i + 1; j < T; j++) {
            center_columns(b, states[j], n, d);
            double value = cross_norm_squared(a, d, b, d, n, work) / (norms[i] * norms[j]);
            out[(size_t)i * T + j] = value;
            out[(size_t)j * T + i] = value;
        }
    }
done:
    free(a);
    free(b);
    free(work);
    free(norms);
    return status;
}

int loopdiag_spectrum(double *p, double *sigma, const double *h, int n, int d, int centering) {
    if (check_shape("spectrum", n, d)) return -1;
    if (centering != SPECTRUM_UNCENTERED && centering != SPECTRUM_CENTERED)
        return spiral_error("spectrum: centering must be %d (uncentered) or %d (centered), got %d",
                            SPECTRUM_UNCENTERED, SPECTRUM_CENTERED, centering);
    if (check_finite("spectrum", h, n, d)) return -1;
    /* Decompose h (n >= d) or h^T (n < d), a (rows, cols) with rows >= cols;
     * both have the same singular values. Two steps keep a tall matrix fast
     * and accurate: a blocked Householder QR, a = Q R (GSL's recursive
     * gsl_linalg_QR_decomp_r, Level 3 BLAS), then the Golub-Reinsch SVD of
     * the (cols, cols) triangle R, whose singular values are a's. */
    int rows = n >= d ? n : d, cols = n >= d ? d : n;
    double *source = n >= d ? NULL : malloc((size_t)n * d * sizeof *source); /* (n, d) if n < d */
    double *a = malloc((size_t)n * d * sizeof *a);                            /* (rows, cols) */
    double *t = malloc((size_t)cols * cols * sizeof *t);  /* (cols, cols) QR block reflector */
    double *r = malloc((size_t)cols * cols * sizeof *r);  /* (cols, cols) R, then U */
    double *v = malloc((size_t)cols * cols * sizeof *v);  /* (cols, cols) right singular vectors */
    double *s = malloc((size_t)cols * sizeof *s);         /* (cols) singular values */
    double *work = malloc((size_t)cols * sizeof *work);   /* (cols) */
    int status = 0;
    if ((n < d && !source) || !a || !t || !r || !v || !s || !work) {
        status = spiral_error("spectrum: out of memory for a (%d, %d) matrix", n, d);
        goto done;
    }
    double *oriented = n >= d ? a : source; /* h or h centered, (n, d) */
    if (centering == SPECTRUM_CENTERED)
        center_columns(oriented, h, n, d);
    else
        memcpy(oriented, h, (size_t)n * d * sizeof *oriented);
    if (n < d) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) a[(size_t)j * n + i] = source[(size_t)i * d + j];
    }
    gsl_matrix_view a_view = gsl_matrix_view_array(a, rows, cols);
    gsl_matrix_view t_view = gsl_matrix_view_array(t, cols, cols);
    gsl_matrix_view r_view = gsl_matrix_view_array(r, cols, cols);
    gsl_matrix_view v_view = gsl_matrix_view_array(v, cols, cols);
    gsl_vector_view s_view = gsl_vector_view_array(s, cols);
    gsl_vector_view work_view = gsl_vector_view_array(work, cols);
    if (gsl_linalg_QR_decomp_r(&a_view.matrix, &t_view.matrix)) {
        status = spiral_error("spectrum: QR decomposition of a (%d, %d) matrix failed", n, d);
        goto done;
    }
    /* R is the upper triangle of a's first cols rows. */
    for (int i = 0; i < cols; i++)
        for (int j = 0; j < cols; j++) r[(size_t)i * cols + j] = j >= i ? a[(size_t)i * cols + j] : 0;
    if (gsl_linalg_SV_decomp(&r_view.matrix, &v_view.matrix, &s_view.vector, &work_view.vector)) {
        status = spiral_error("spectrum: SVD of a (%d, %d) matrix failed", n, d);
        goto done;
    }
    /* GSL returns non-negative values in decreasing order; sort anyway
     * (insertion sort, k is small) so the contract does not rest on it. */
    for (int i = 1; i < cols; i++) {
        double value = fabs(s[i]);
        int j = i - 1;
        while (j >= 0 && fabs(s[j]) < value) {
            s[j + 1] = s[j];
            j--;
        }
        s[j + 1] = value;
    }
    double total = 0;
    for (int i = 0; i < cols; i++) total += fabs(s[i]);
    if (total == 0) {
        status = spiral_error("spectrum: the %smatrix (%d, %d) is zero; the normalized spectrum is undefined",
                              centering == SPECTRUM_CENTERED ? "centered " : "", n, d);
        goto done;
    }
    for (int i = 0; i < cols; i++) {
        if (sigma) sigma[i] = fabs(s[i]);
        p[i] = fabs(s[i]) / total;
    }
done:
    free(source);
    free(a);
    free(t);
    free(r);
    free(v);
    free(s);
    free(work);
    return status;
}

int loopdiag_effective_rank(double *erank, const double *p, int k) {
    if (k < 1) return spiral_error("effective rank: expected k >= 1 values, got %d", k);
    double sum = 0, entropy = 0;
    for (int i = 0; i < k; i++) {
        if (!(p[i] >= 0) || !isfinite(p[i]))
            return spiral_error("effective rank: p[%d] = %g is not a finite value >= 0", i, p[i]);
        sum += p[i];
        if (p[i] > 0) entropy -= p[i] * log(p[i]);
    }
    if (fabs(sum - 1) > 1e-9)
        return spiral_error("effective rank: the spectrum sums to %.12g, expected 1 (normalize it first)", sum);
    *erank = exp(entropy);
    return 0;
}

int loopdiag_state_effective_rank(double *erank, const double *h, int n, int d, int centering) {
    if (check_shape("effective rank", n, d)) return -1;
    int k = n < d ? n : d;
    double *p = malloc((size_t)k * sizeof *p);
    if (!p) return spiral_error("effective rank: out of memory");
    int status = loopdiag_spectrum(p, NULL, h, n, d, centering);
    if (status == 0) status = loopdiag_effective_rank(erank, p, k);
    free(p);
    return status;
}
