/*
 * loopdiag.h: loop diagnostics on recorded iteration states (DESIGN.md
 * section 4, "Loop diagnostics"; paper.md, "Probing in the paper").
 *
 * The predecessor of SpiralFormer (MeSH, arXiv 2510.07739) diagnosed looped
 * models with three numbers per iteration, computed here on state matrices
 * H (n, d): n rows (tokens of the recorded sequences), d features.
 *
 *   relative update   r = ||H1 - H0||_F / ||H0||_F
 *
 *   linear CKA        (Kornblith et al. 2019, "Similarity of Neural Network
 *                     Representations Revisited", ICML, eq. for linear HSIC)
 *                     Xc, Yc = X, Y with each column centered (mean 0 over
 *                     the n rows);
 *                     CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)
 *                     computed from the (d2, d1), (d1, d1) and (d2, d2)
 *                     cross-products, never from n x n Gram matrices.
 *                     CKA is in [0, 1], symmetric, invariant to orthogonal
 *                     transforms and isotropic scaling of either argument and
 *                     (by the centering) to adding a constant row.
 *
 *   spectrum          sigma_1 >= ... >= sigma_k, k = min(n, d), the singular
 *                     values of H (or of Hc, columns centered);
 *                     p_i = sigma_i / sum_j sigma_j
 *   effective rank    (Roy & Vetterli 2007, "The effective rank: a measure
 *                     of effective dimensionality", EUSIPCO)
 *                     erank = exp(H(p)),  H(p) = -sum_i p_i log p_i
 *                     (0 log 0 = 0). A rank-r matrix with r equal singular
 *                     values has erank r; 1 <= erank <= k.
 *
 * Centering for the spectrum is a parameter. The default is
 * SPECTRUM_UNCENTERED: the state matrix as recorded, as MeSH reports "the
 * normalized singular-value spectrum of the state matrix". With
 * SPECTRUM_CENTERED the mean row is removed first; Transformer residual
 * streams often have a large common mean direction that otherwise takes the
 * top singular value, so report which one was used.
 *
 * All functions are pure: double precision in and out, no store access,
 * matrices row-major. They return 0, or -1 after spiral_error() on bad sizes,
 * non-finite input, an undefined result (a zero matrix) or out of memory.
 */
#ifndef SPIRAL_LOOPDIAG_H
#define SPIRAL_LOOPDIAG_H

enum { SPECTRUM_UNCENTERED = 0, SPECTRUM_CENTERED = 1 };

/* The documented default for the spectrum and the effective rank. */
enum { SPECTRUM_DEFAULT = SPECTRUM_UNCENTERED };

/* Relative update size r = ||h1 - h0||_F / ||h0||_F.
 * h0, h1 (n, d). Fails if ||h0||_F = 0. */
int loopdiag_relative_update(double *r, const double *h0, const double *h1, int n, int d);

/* Linear CKA between x (n, d1) and y (n, d2), rows paired (same tokens).
 * Fails if either matrix is constant over its rows (centered norm 0). */
int loopdiag_cka(double *cka, const double *x, int d1, const double *y, int d2, int n);

/* CKA between every pair of T state matrices: out (T, T), symmetric, with
 * out[t][t] = 1. states[t] points at a (n, d) matrix (e.g. h(t) for
 * t = 0..T-1). Uses two (n, d) work buffers, not T copies. */
int loopdiag_cka_matrix(double *out, const double *const *states, int T, int n, int d);

/* Normalized singular-value spectrum of h (n, d): p (k), k = min(n, d),
 * p_i = sigma_i / sum sigma, sorted descending. sigma (k) receives the raw
 * singular values if not NULL. centering: SPECTRUM_UNCENTERED (the default)
 * or SPECTRUM_CENTERED. Fails on a zero matrix (after centering).
 * Computed as a blocked Householder QR (gsl_linalg_QR_decomp_r, through
 * BLAS) of h or h^T, whichever is tall, then GSL's Golub-Reinsch SVD of the
 * (k, k) triangle R: O(n d k) in Level 3 BLAS plus O(k^3). */
int loopdiag_spectrum(double *p, double *sigma, const double *h, int n, int d, int centering);

/* Effective rank exp(-sum p_i log p_i) of a normalized spectrum p (k)
 * (p_i >= 0, sum 1 within 1e-9). */
int loopdiag_effective_rank(double *erank, const double *p, int k);

/* Effective rank of a state matrix h (n, d): loopdiag_spectrum then
 * loopdiag_effective_rank. */
int loopdiag_state_effective_rank(double *erank, const double *h, int n, int d, int centering);

#endif
