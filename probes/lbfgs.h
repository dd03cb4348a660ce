/*
 * lbfgs.h: unconstrained minimization by L-BFGS with a strong Wolfe line
 * search (Nocedal & Wright, Numerical Optimization, 2nd ed., Alg. 7.4, 7.5,
 * 3.5 and 3.6), in double precision on OpenBLAS vector kernels.
 *
 * The direction q = -H g comes from the two-loop recursion over the last
 * LBFGS_MEMORY pairs s = x' - x, y = g' - g (pairs with s.y <= 0 are not
 * stored), H0 = (s.y / y.y) I from the newest pair. The step satisfies
 *   f(x + a q) <= f(x) + c1 a g.q,     |g(x + a q).q| <= c2 |g.q|
 * (c1 = 1e-4, c2 = 0.9), found by bracketing and zooming with safeguarded
 * cubic interpolation. The first step of a run (no pairs yet) tries
 * a = 1 / ||q||_2 (capped at 1), later ones a = 1. logreg.h says why this
 * fitter and not GSL's bfgs2 (about 1.05 evaluations per iteration against
 * 4 there).
 *
 * Stopping: ||g||_inf <= tol (absolute), or max_iter iterations, or a line
 * search that can make no more progress even from a fresh memory (the
 * rounding floor). Only the first is `converged`; the others still return
 * 0 with the best point. The run is deterministic.
 */
#ifndef SPIRAL_LBFGS_H
#define SPIRAL_LBFGS_H

#define LBFGS_MEMORY 10

/* f(x) and, unless grad is NULL, its gradient grad (n) at x (n). */
typedef double (*LbfgsObjective)(void *ctx, const double *x, double *grad);

typedef struct {
    int iterations;     /* L-BFGS iterations taken */
    int evaluations;    /* objective + gradient evaluations */
    double objective;   /* f at the returned point */
    double grad_norm;   /* ||grad||_inf there */
    int converged;      /* grad_norm <= tol */
} LbfgsResult;

/* Minimizes f from x (n), in place, and fills *result. Returns 0, or -1
 * with spiral_error when out of memory or when f becomes non-finite. */
int lbfgs_minimize(LbfgsObjective f, void *ctx, double *x, int n, double tol, int max_iter,
                   LbfgsResult *result);

#endif
