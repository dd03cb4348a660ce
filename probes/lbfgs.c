/*
 * lbfgs.c: L-BFGS with a strong Wolfe line search (see lbfgs.h for the
 * method and the stopping rule). The line search keeps the trial point in
 * the workspace (xt, gt), so an accepted step costs no extra evaluation.
 */
#include "lbfgs.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define WOLFE_C1 1e-4
#define WOLFE_C2 0.9
#define LINE_SEARCH_MAX_EVALS 40

/* max_i |v_i| over v (len). */
static double inf_norm(const double *v, int len) {
    double m = 0;
    for (int i = 0; i < len; i++)
        if (fabs(v[i]) > m) m = fabs(v[i]);
    return m;
}

/* One point of the line search: step a, f, and the directional derivative. */
typedef struct {
    double a, f, slope;
} LinePoint;

/* The minimizer of the cubic through (lo, hi) with their values and slopes,
 * clamped into the middle 80% of the interval; bisection if the cubic has
 * no usable minimizer (Nocedal & Wright eq. 3.59). */
static double cubic_step(LinePoint lo, LinePoint hi) {
    double d1 = lo.slope + hi.slope - 3 * (lo.f - hi.f) / (lo.a - hi.a);
    double disc = d1 * d1 - lo.slope * hi.slope;
    double a;
    if (disc >= 0 && hi.a != lo.a) {
        double d2 = copysign(sqrt(disc), hi.a - lo.a);
        double denom = hi.slope - lo.slope + 2 * d2;
        a = denom != 0 ? hi.a - (hi.a - lo.a) * (hi.slope + d2 - d1) / denom : NAN;
    } else {
        a = NAN;
    }
    double left = lo.a < hi.a ? lo.a : hi.a, right = lo.a < hi.a ? hi.a : lo.a;
    double margin = 0.1 * (right - left);
    if (!isfinite(a) || a < left + margin || a > right - margin) a = 0.5 * (lo.a + hi.a);
    return a;
}

/* Workspace of a run: the objective, current point, trial point, the best
 * point of the zoom, the direction and the L-BFGS memory. */
typedef struct {
    LbfgsObjective f;
    void *ctx;
    int evaluations;
    int np;
    double *x, *g;          /* (np) current point and gradient */
    double *xt, *gt;        /* (np) trial point */
    double *xlo, *glo;      /* (np) low end of the zoom interval */
    double *q;              /* (np) search direction */
    double *s, *yv;         /* (LBFGS_MEMORY, np) pairs, circular */
    double rho[LBFGS_MEMORY], alpha[LBFGS_MEMORY];
    int n_pairs, newest;
} Lbfgs;

/* Evaluates the trial point x + a q into xt, gt; returns the line point. */
static LinePoint line_eval(Lbfgs *w, double a) {
    LinePoint pt;
    memcpy(w->xt, w->x, (size_t)w->np * sizeof *w->xt);
    cblas_daxpy(w->np, a, w->q, 1, w->xt, 1);
    pt.a = a;
    pt.f = w->f(w->ctx, w->xt, w->gt);
    w->evaluations++;
    pt.slope = cblas_ddot(w->np, w->gt, 1, w->q, 1);
    return pt;
}

/* Remembers the trial point as the zoom's low end. */
static void keep_low(Lbfgs *w) {
    memcpy(w->xlo, w->xt, (size_t)w->np * sizeof *w->xlo);
    memcpy(w->glo, w->gt, (size_t)w->np * sizeof *w->glo);
}

/* Strong Wolfe line search from x (value f0, slope0 = g.q < 0) along q,
 * first trial step a0. On success xt, gt hold the new point, *f_new its
 * value, and the return is 0. If no point meets the conditions within the
 * evaluation budget but some point decreased f sufficiently, that point is
 * taken (return 0); otherwise returns -1 (no progress possible). */
static int line_search(Lbfgs *w, double f0, double slope0, double a0, double *f_new) {
    LinePoint origin = {0, f0, slope0}, prev = origin, lo, hi;
    int have_low = 0, evals = 0;
    double a = a0;
    /* bracketing phase: grow a until the interval holds a Wolfe point */
    for (;;) {
        LinePoint cur = line_eval(w, a);
        evals++;
        int armijo = isfinite(cur.f) && cur.f <= f0 + WOLFE_C1 * a * slope0;
        if (!armijo || (prev.a > 0 && cur.f >= prev.f)) {
            lo = prev;
            hi = cur;
            break;
        }
        if (fabs(cur.slope) <= -WOLFE_C2 * slope0) {
            *f_new = cur.f;
            return 0;
        }
        keep_low(w);
        have_low = 1;
        if (cur.slope >= 0) {
            lo = cur;
            hi = prev;
            break;
        }
        if (evals >= LINE_SEARCH_MAX_EVALS) {
            memcpy(w->xt, w->xlo, (size_t)w->np * sizeof *w->xt);
            memcpy(w->gt, w->glo, (size_t)w->np * sizeof *w->gt);
            *f_new = cur.f;
            return 0;
        }
        prev = cur;
        a *= 4;
    }
    /* zoom phase: lo satisfies Armijo and has the lower f; the interval
     * between lo and hi contains a strong Wolfe point */
    while (evals < LINE_SEARCH_MAX_EVALS && fabs(hi.a - lo.a) > 1e-16 * fabs(lo.a + hi.a)) {
        double at;
        if (isfinite(hi.f) && isfinite(hi.slope))
            at = cubic_step(lo, hi);
        else
            at = 0.5 * (lo.a + hi.a);
        LinePoint cur = line_eval(w, at);
        evals++;
        int armijo = isfinite(cur.f) && cur.f <= f0 + WOLFE_C1 * at * slope0;
        if (!armijo || cur.f >= lo.f) {
            hi = cur;
        } else {
            if (fabs(cur.slope) <= -WOLFE_C2 * slope0) {
                *f_new = cur.f;
                return 0;
            }
            if (cur.slope * (hi.a - lo.a) >= 0) hi = lo;
            lo = cur;
            keep_low(w);
            have_low = 1;
        }
    }
    if (have_low && lo.a > 0 && lo.f < f0) {
        memcpy(w->xt, w->xlo, (size_t)w->np * sizeof *w->xt);
        memcpy(w->gt, w->glo, (size_t)w->np * sizeof *w->gt);
        *f_new = lo.f;
        return 0;
    }
    return -1;
}

/* q = -H g by the two-loop recursion over the stored pairs (q = -g when
 * there are none). */
static void lbfgs_direction(Lbfgs *w) {
    int np = w->np;
    for (int i = 0; i < np; i++) w->q[i] = -w->g[i];
    if (w->n_pairs == 0) return;
    int idx = w->newest;
    for (int k = 0; k < w->n_pairs; k++) {
        const double *s = w->s + (size_t)idx * np, *y = w->yv + (size_t)idx * np;
        w->alpha[idx] = w->rho[idx] * cblas_ddot(np, s, 1, w->q, 1);
        cblas_daxpy(np, -w->alpha[idx], y, 1, w->q, 1);
        idx = (idx + LBFGS_MEMORY - 1) % LBFGS_MEMORY;
    }
    const double *s_new = w->s + (size_t)w->newest * np, *y_new = w->yv + (size_t)w->newest * np;
    double gamma = cblas_ddot(np, s_new, 1, y_new, 1) / cblas_ddot(np, y_new, 1, y_new, 1);
    cblas_dscal(np, gamma, w->q, 1);
    /* idx is now the oldest pair's predecessor; walk oldest -> newest */
    for (int k = 0; k < w->n_pairs; k++) {
        idx = (idx + 1) % LBFGS_MEMORY;
        const double *s = w->s + (size_t)idx * np, *y = w->yv + (size_t)idx * np;
        double beta = w->rho[idx] * cblas_ddot(np, y, 1, w->q, 1);
        cblas_daxpy(np, w->alpha[idx] - beta, s, 1, w->q, 1);
    }
}

/* Stores the pair s = xt - x, y = gt - g if s.y > 0 (curvature), over the
 * oldest pair when the memory is full. xlo and glo serve as scratch. */
static void lbfgs_remember(Lbfgs *w) {
    int np = w->np;
    double *s = w->xlo, *y = w->glo;
    for (int i = 0; i < np; i++) {
        s[i] = w->xt[i] - w->x[i];
        y[i] = w->gt[i] - w->g[i];
    }
    double sy = cblas_ddot(np, s, 1, y, 1), yy = cblas_ddot(np, y, 1, y, 1);
    if (!(sy > 1e-300) || !(yy > 0)) return;
    int slot = w->n_pairs == 0 ? 0 : (w->newest + 1) % LBFGS_MEMORY;
    memcpy(w->s + (size_t)slot * np, s, (size_t)np * sizeof *s);
    memcpy(w->yv + (size_t)slot * np, y, (size_t)np * sizeof *y);
    w->rho[slot] = 1.0 / sy;
    w->newest = slot;
    if (w->n_pairs < LBFGS_MEMORY) w->n_pairs++;
}

/* Frees the L-BFGS workspace (both allocations). */
static void lbfgs_free(Lbfgs *w) {
    free(w->x);
    free(w->s);
}

/* Allocates the L-BFGS workspace for np parameters (two allocations). */
static int lbfgs_init(Lbfgs *w, int np) {
    memset(w, 0, sizeof *w);
    w->np = np;
    w->x = malloc((size_t)7 * np * sizeof *w->x);
    w->s = malloc((size_t)2 * LBFGS_MEMORY * np * sizeof *w->s);
    if (!w->x || !w->s) {
        lbfgs_free(w);
        return spiral_error("L-BFGS: out of memory (%d parameters)", np);
    }
    w->g = w->x + np;
    w->xt = w->x + 2 * (size_t)np;
    w->gt = w->x + 3 * (size_t)np;
    w->xlo = w->x + 4 * (size_t)np;
    w->glo = w->x + 5 * (size_t)np;
    w->q = w->x + 6 * (size_t)np;
    w->yv = w->s + (size_t)LBFGS_MEMORY * np;
    return 0;
}

int lbfgs_minimize(LbfgsObjective objective, void *ctx, double *theta, int np, double tol,
                   int max_iter, LbfgsResult *result) {
    Lbfgs w;
    if (lbfgs_init(&w, np)) return -1;
    w.f = objective;
    w.ctx = ctx;
    memcpy(w.x, theta, (size_t)np * sizeof *w.x);
    double f = objective(ctx, w.x, w.g);
    w.evaluations++;
    double gnorm = inf_norm(w.g, np);
    int iter = 0;
    while (gnorm > tol && iter < max_iter && isfinite(f)) {
        lbfgs_direction(&w);
        double slope = cblas_ddot(np, w.g, 1, w.q, 1);
        if (!(slope < 0)) {
            /* not a descent direction (should not happen with s.y > 0):
             * forget the memory and go downhill */
            w.n_pairs = 0;
            lbfgs_direction(&w);
            slope = cblas_ddot(np, w.g, 1, w.q, 1);
        }
        double a0 = 1.0;
        if (w.n_pairs == 0) {
            double qnorm = cblas_dnrm2(np, w.q, 1);
            if (qnorm > 1) a0 = 1.0 / qnorm;
        }
        double f_new;
        if (line_search(&w, f, slope, a0, &f_new)) {
            if (w.n_pairs == 0) break; /* steepest descent failed: rounding floor */
            w.n_pairs = 0;             /* retry once from a fresh memory */
            continue;
        }
        lbfgs_remember(&w);
        memcpy(w.x, w.xt, (size_t)np * sizeof *w.x);
        memcpy(w.g, w.gt, (size_t)np * sizeof *w.g);
        f = f_new;
        gnorm = inf_norm(w.g, np);
        iter++;
    }
    memcpy(theta, w.x, (size_t)np * sizeof *theta);
    result->iterations = iter;
    result->evaluations = w.evaluations;
    result->objective = f;
    result->grad_norm = gnorm;
    result->converged = gnorm <= tol;
    lbfgs_free(&w);
    if (!isfinite(f)) return spiral_error("L-BFGS: the objective became non-finite (%g)", f);
    return 0;
}
