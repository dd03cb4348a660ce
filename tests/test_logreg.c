/*
 * test_logreg.c: the linear probe's numerical core (probes/logreg.c,
 * probes/lbfgs.c and probes/probe_stats.c).
 *
 * Checked:
 *   - L-BFGS alone on the Rosenbrock function from (-1.2, 1): reaches the
 *     minimum (1, 1) to ||grad||_inf <= 1e-8, counts its evaluations, stops
 *     at max_iter without claiming convergence, and reports a non-finite
 *     objective as an error;
 *   - the gradient of f against central finite differences (double, with
 *     and without standardization), relative error < 1e-6;
 *   - the fitted optimum: ||grad||_inf <= tol recomputed independently, and
 *     f does not decrease along random perturbations of W and b, for mild
 *     and for strongly correlated features; separable data with lambda = 0
 *     stays finite and stops;
 *   - Bayes accuracy: 3 Gaussian classes, identity covariance, d = 10,
 *     n = 20000, lambda chosen on a validation split; the probe's accuracy
 *     on a large independent sample is within 1 point of the Bayes rule's
 *     (argmin ||x - mu_k||, the exact posterior argmax) on the same sample;
 *     the selection keeps the best validation accuracy (ties: larger
 *     lambda) and its warm-started fit matches a cold fit;
 *   - pure noise with classes 60/30/10: test accuracy's bootstrap interval
 *     contains the majority baseline;
 *   - same data -> bit-identical W and b;
 *   - the L2 path: on correlated features it extends below 1e-4
 *     by factors of 10, exactly as the rule (weakest strictly best, down
 *     to the floor) replayed on its validation accuracies says, and keeps
 *     the best; a floor stops it; no floor, no extension;
 *   - the paired margin of two probes' per-sequence outcomes (hand value,
 *     degenerate interval for a constant difference, unpaired outcomes are
 *     an error); the lexical control's token types;
 *   - bad input: one class, out-of-range labels, NaN features, tiny sizes;
 *   - statistics: bootstrap interval contains the accuracy, shrinks with n,
 *     is deterministic, a group bootstrap with singleton groups equals the
 *     example bootstrap and clustered groups widen it; the control task is a
 *     function of the token type; the sequence permutation is a bijection
 *     among equal lengths; macro-F1, majority baseline and expected layer
 *     on hand-computed examples.
 * Prints (informational) the fit time and iterations for n = 100000,
 * d = 256, K = 10 (n = 10000, d = 64 under a sanitizer).
 */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "harness.h"
#include "lbfgs.h"
#include "logreg.h"
#include "probe_features.h"
#include "probe_stats.h"

/* 1 when built with AddressSanitizer (GCC or clang): the timing case shrinks. */
static int under_sanitizer(void) {
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 1;
#else
    return 0;
#endif
#else
    return 0;
#endif
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int contains(const char *haystack, const char *needle) {
    return strstr(haystack, needle) != NULL;
}

/* Records that a call returned -1 with a message containing needle (the
 * message is read here, after the call: CHECK's arguments have no order). */
static void check_error(int rc, const char *needle, const char *what) {
    const char *message = spiral_last_error();
    CHECK(rc == -1 && contains(message, needle), "%s: rc %d, message \"%s\", expected \"%s\"", what,
          rc, message, needle);
}

/* n rows of K Gaussian classes: y uniform in 0..K-1, x = means[y] + N(0, I).
 * means (K, d), X (n, d), y (n). */
static void gaussian_classes(gsl_rng *rng, int n, int d, int K, const double *means, float *X,
                             int *y) {
    for (int i = 0; i < n; i++) {
        y[i] = (int)gsl_rng_uniform_int(rng, (unsigned long)K);
        for (int j = 0; j < d; j++)
            X[(size_t)i * d + j] = (float)(means[(size_t)y[i] * d + j] + gsl_ran_gaussian(rng, 1.0));
    }
}

/* Central finite differences of f against the analytic gradient at random
 * W, b; returns max |fd - grad| / max |grad|. mean, std may be NULL. */
static double gradient_error(const float *X, const int *y, int n, int d, int K,
                             const double *mean, const double *std, double lambda, gsl_rng *rng) {
    int np = K * d + K;
    double *theta = calloc((size_t)np, sizeof *theta);
    double *grad = calloc((size_t)np, sizeof *grad);
    for (int i = 0; i < np; i++) theta[i] = gsl_ran_gaussian(rng, 0.7);
    double f;
    logreg_objective(X, y, n, d, K, mean, std, lambda, theta, theta + K * d, &f, grad,
                     grad + K * d);
    double max_err = 0, max_grad = 0;
    const double h = 1e-5;
    for (int i = 0; i < np; i++) {
        double saved = theta[i], f_plus, f_minus;
        theta[i] = saved + h;
        logreg_objective(X, y, n, d, K, mean, std, lambda, theta, theta + K * d, &f_plus, NULL,
                         NULL);
        theta[i] = saved - h;
        logreg_objective(X, y, n, d, K, mean, std, lambda, theta, theta + K * d, &f_minus, NULL,
                         NULL);
        theta[i] = saved;
        double fd = (f_plus - f_minus) / (2 * h);
        if (fabs(fd - grad[i]) > max_err) max_err = fabs(fd - grad[i]);
        if (fabs(grad[i]) > max_grad) max_grad = fabs(grad[i]);
    }
    free(theta);
    free(grad);
    return max_err / max_grad;
}

/* Rosenbrock, f = (1 - x)^2 + 100 (y - x^2)^2; ctx counts the calls (or,
 * when it points at -1, makes f infinite). */
static double rosenbrock(void *ctx, const double *v, double *grad) {
    int *calls = ctx;
    if (*calls < 0) return INFINITY;
    (*calls)++;
    double x = v[0], y = v[1], r = y - x * x;
    if (grad) {
        grad[0] = -2 * (1 - x) - 400 * x * r;
        grad[1] = 200 * r;
    }
    return (1 - x) * (1 - x) + 100 * r * r;
}

static void test_lbfgs(void) {
    double v[2] = {-1.2, 1.0};
    int calls = 0;
    LbfgsResult r;
    CHECK(lbfgs_minimize(rosenbrock, &calls, v, 2, 1e-8, 500, &r) == 0, "lbfgs: %s", spiral_last_error());
    CHECK(r.converged && r.grad_norm <= 1e-8 && fabs(v[0] - 1) < 1e-6 && fabs(v[1] - 1) < 1e-6,
          "rosenbrock: (%g, %g), |g| %g, converged %d", v[0], v[1], r.grad_norm, r.converged);
    CHECK(r.evaluations == calls && r.iterations > 10 && r.evaluations < 3 * r.iterations,
          "rosenbrock: %d evaluations (%d calls) for %d iterations", r.evaluations, calls, r.iterations);
    printf("lbfgs rosenbrock: %d iterations, %d evaluations, f %.3g\n", r.iterations, r.evaluations,
           r.objective);
    double w[2] = {-1.2, 1.0};
    calls = 0;
    CHECK(lbfgs_minimize(rosenbrock, &calls, w, 2, 1e-8, 3, &r) == 0 && r.iterations == 3 &&
              !r.converged && r.objective < 24.2,
          "max_iter 3: %d iterations, converged %d, f %g", r.iterations, r.converged, r.objective);
    calls = -1;
    check_error(lbfgs_minimize(rosenbrock, &calls, w, 2, 1e-8, 3, &r), "non-finite",
                "infinite objective");
}

static void test_gradient(void) {
    int n = 60, d = 5, K = 4;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 11);
    float *X = malloc((size_t)n * d * sizeof *X);
    int *y = malloc((size_t)n * sizeof *y);
    for (int i = 0; i < n * d; i++) X[i] = (float)(3.0 + 2.0 * gsl_ran_gaussian(rng, 1.0));
    for (int i = 0; i < n; i++) y[i] = (int)gsl_rng_uniform_int(rng, (unsigned long)K);
    double mean[5], std[5];
    int rc = logreg_standardization(X, n, d, mean, std);
    CHECK(rc == 0, "standardization: %s", spiral_last_error());
    double err_std = gradient_error(X, y, n, d, K, mean, std, 0.3, rng);
    double err_raw = gradient_error(X, y, n, d, K, NULL, NULL, 0.05, rng);
    double err_nopen = gradient_error(X, y, n, d, K, mean, std, 0.0, rng);
    printf("gradient vs central differences: rel. error %.2e (standardized), %.2e (raw), %.2e (lambda 0)\n",
           err_std, err_raw, err_nopen);
    CHECK(err_std < 1e-6, "gradient rel. error %.3e (standardized)", err_std);
    CHECK(err_raw < 1e-6, "gradient rel. error %.3e (raw)", err_raw);
    CHECK(err_nopen < 1e-6, "gradient rel. error %.3e (lambda 0)", err_nopen);

    /* the objective at W = 0, b = 0 is log K exactly */
    double W0[4 * 5] = {0}, b0[4] = {0}, f0;
    logreg_objective(X, y, n, d, K, mean, std, 0.3, W0, b0, &f0, NULL, NULL);
    CHECK(fabs(f0 - log(4.0)) < 1e-12, "f(0) = %.15g, expected log 4", f0);

    /* standardization: mean 0, std 1 after the transform; a constant column */
    for (int i = 0; i < n; i++) X[(size_t)i * d + 2] = 0.1f;
    logreg_standardization(X, n, d, mean, std);
    CHECK(mean[2] == (double)0.1f && std[2] == 1.0, "constant column: mean %.17g std %g", mean[2], std[2]);
    double m0 = 0, v0 = 0;
    for (int i = 0; i < n; i++) m0 += (X[(size_t)i * d] - mean[0]) / std[0];
    for (int i = 0; i < n; i++) {
        double s = (X[(size_t)i * d] - mean[0]) / std[0];
        v0 += s * s;
    }
    CHECK(fabs(m0 / n) < 1e-12 && fabs(v0 / n - 1) < 1e-12, "standardized column 0: mean %g var %g", m0 / n, v0 / n);
    free(X);
    free(y);
    gsl_rng_free(rng);
}

/* Fits and verifies the optimum; correlated = 1 adds a strong common
 * component to every feature (Hessian condition number ~1e4 at lambda
 * 1e-4), which exercises the line search and the L-BFGS memory. */
static void test_optimum(int correlated) {
    int n = 500, d = 8, K = 3, np = K * d + K;
    double lambda = correlated ? 1e-4 : 1e-2, tol = 1e-7;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    double means[3 * 8] = {0};
    for (int k = 0; k < K; k++) means[k * d + k] = 1.0;
    float *X = malloc((size_t)n * d * sizeof *X);
    int *y = malloc((size_t)n * sizeof *y);
    gaussian_classes(rng, n, d, K, means, X, y);
    /* shift and scale some features: standardization must absorb it */
    for (int i = 0; i < n; i++) {
        X[(size_t)i * d + 1] = X[(size_t)i * d + 1] * 50.0f + 1000.0f;
        X[(size_t)i * d + 5] *= 0.01f;
    }
    if (correlated)
        for (int i = 0; i < n; i++) {
            double common = gsl_ran_gaussian(rng, 1.0);
            for (int j = 0; j < d; j++) X[(size_t)i * d + j] += (float)(8.0 * common);
        }
    LogReg m;
    int rc = logreg_fit(&m, X, y, n, d, K, lambda, tol, 0);
    CHECK(rc == 0, "fit: %s", spiral_last_error());
    if (rc) goto out;
    printf("small fit%s: %d iterations, %d evaluations, f %.10f, |g|_inf %.2e\n",
           correlated ? " (correlated)" : "", m.iterations, m.evaluations, m.objective, m.grad_norm);
    CHECK(m.converged && m.grad_norm <= tol, "converged %d, |g| %.3e > tol %g", m.converged, m.grad_norm, tol);
    double f, gW[3 * 8], gb[3];
    logreg_objective(X, y, n, d, K, m.mean, m.std, lambda, m.W, m.b, &f, gW, gb);
    double gmax = 0;
    for (int i = 0; i < K * d; i++) gmax = fmax(gmax, fabs(gW[i]));
    for (int k = 0; k < K; k++) gmax = fmax(gmax, fabs(gb[k]));
    CHECK(gmax <= tol, "recomputed |g|_inf %.3e > tol", gmax);
    CHECK(f == m.objective, "reported objective %.17g, recomputed %.17g", m.objective, f);
    /* the bias gradient is zero at the optimum: mean probabilities equal the
     * class frequencies (a property of the unpenalized intercept) */
    double *proba = malloc((size_t)n * K * sizeof *proba);
    int *pred = malloc((size_t)n * sizeof *pred);
    logreg_predict(&m, X, n, pred, proba);
    double worst = 0;
    for (int k = 0; k < K; k++) {
        double mean_p = 0, freq = 0;
        for (int i = 0; i < n; i++) {
            mean_p += proba[(size_t)i * K + k] / n;
            freq += (y[i] == k) / (double)n;
        }
        worst = fmax(worst, fabs(mean_p - freq));
    }
    CHECK(worst <= 2 * tol, "mean probability vs class frequency: %.3e", worst);
    int argmax_ok = 1;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++)
            if (proba[(size_t)i * K + k] > proba[(size_t)i * K + pred[i]]) argmax_ok = 0;
    CHECK(argmax_ok, "pred is the argmax of proba");
    /* random perturbations of all parameters never lower f */
    double *theta = malloc((size_t)np * sizeof *theta), *u = malloc((size_t)np * sizeof *u);
    int lowered = 0;
    double min_increase = INFINITY;
    for (int trial = 0; trial < 40; trial++) {
        double norm = 0;
        for (int i = 0; i < np; i++) {
            u[i] = gsl_ran_gaussian(rng, 1.0);
            norm += u[i] * u[i];
        }
        double eps = trial % 2 ? 1e-2 : 1e-3;
        for (int i = 0; i < np; i++) theta[i] = m.W[i] + eps * u[i] / sqrt(norm);
        double fp;
        logreg_objective(X, y, n, d, K, m.mean, m.std, lambda, theta, theta + K * d, &fp, NULL, NULL);
        if (fp < m.objective) lowered++;
        min_increase = fmin(min_increase, fp - m.objective);
    }
    CHECK(lowered == 0, "%d of 40 random perturbations lowered f (min change %.3e)", lowered, min_increase);
    free(theta);
    free(u);
    free(proba);
    free(pred);
    logreg_free(&m);
out:
    free(X);
    free(y);
    gsl_rng_free(rng);
}

/* Separable classes with lambda = 0 have no minimizer (f -> 0 as ||W||
 * grows): the fit must stay finite, classify the training set perfectly
 * and stop (the gradient decays with f). */
static void test_separable(void) {
    int n = 200, d = 2, K = 2;
    float X[400];
    int y[200];
    for (int i = 0; i < n; i++) {
        y[i] = i % 2;
        X[2 * i] = (float)(y[i] ? 1 + 0.01 * i : -1 - 0.01 * i);
        X[2 * i + 1] = (float)((i * 37) % 11) - 5.0f;
    }
    LogReg m;
    int rc = logreg_fit(&m, X, y, n, d, K, 0.0, 0, 0);
    CHECK(rc == 0, "separable fit: %s", spiral_last_error());
    if (rc) return;
    double acc = 0;
    logreg_accuracy(&m, X, y, n, &acc);
    printf("separable, lambda 0: %d iterations, converged %d, f %.3e, |g|_inf %.2e, |W| %.1f\n",
           m.iterations, m.converged, m.objective, m.grad_norm, fabs(m.W[0]) + fabs(m.W[1]));
    CHECK(acc == 1.0 && isfinite(m.objective) && m.objective < 1e-4, "separable: acc %g f %g", acc,
          m.objective);
    logreg_free(&m);
}

static void test_bayes(void) {
    int d = 10, K = 3, ntr = 20000, nva = 5000, nte = 100000;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 2019);
    /* means a e_k: pairwise distance a sqrt(2) */
    double means[3 * 10] = {0}, a = 1.6;
    for (int k = 0; k < K; k++) means[k * d + k] = a;
    float *Xtr = malloc((size_t)ntr * d * sizeof *Xtr), *Xva = malloc((size_t)nva * d * sizeof *Xva);
    float *Xte = malloc((size_t)nte * d * sizeof *Xte);
    int *ytr = malloc((size_t)ntr * sizeof *ytr), *yva = malloc((size_t)nva * sizeof *yva);
    int *yte = malloc((size_t)nte * sizeof *yte), *pred = malloc((size_t)nte * sizeof *pred);
    gaussian_classes(rng, ntr, d, K, means, Xtr, ytr);
    gaussian_classes(rng, nva, d, K, means, Xva, yva);
    gaussian_classes(rng, nte, d, K, means, Xte, yte);
    /* Bayes rule with equal priors and identity covariance: nearest mean */
    long bayes_correct = 0;
    for (int i = 0; i < nte; i++) {
        int best = 0;
        double best_d2 = INFINITY;
        for (int k = 0; k < K; k++) {
            double d2 = 0;
            for (int j = 0; j < d; j++) {
                double diff = Xte[(size_t)i * d + j] - means[k * d + j];
                d2 += diff * diff;
            }
            if (d2 < best_d2) {
                best_d2 = d2;
                best = k;
            }
        }
        bayes_correct += best == yte[i];
    }
    double bayes = (double)bayes_correct / nte;
    double lambdas[4] = {1e-1, 1e-2, 1e-3, 1e-4}, val_acc[4] = {0};
    LogReg m;
    double t0 = now_seconds();
    int rc = logreg_fit_select(&m, Xtr, ytr, ntr, Xva, yva, nva, d, K, lambdas, 4, val_acc);
    double seconds = now_seconds() - t0;
    CHECK(rc == 0, "fit_select: %s", spiral_last_error());
    if (rc == 0) {
        logreg_predict(&m, Xte, nte, pred, NULL);
        double acc;
        probe_accuracy(yte, pred, nte, &acc);
        printf("Bayes: accuracy %.4f, probe %.4f (lambda %g chosen; val acc %.4f %.4f %.4f %.4f; %.2f s for 4 fits)\n",
               bayes, acc, m.lambda, val_acc[0], val_acc[1], val_acc[2], val_acc[3], seconds);
        CHECK(fabs(acc - bayes) < 0.01, "probe accuracy %.4f vs Bayes %.4f", acc, bayes);
        CHECK(m.converged, "selected fit did not converge (|g| %.3e)", m.grad_norm);
        double best_val = 0;
        int ok = 1;
        for (int l = 0; l < 4; l++) {
            best_val = fmax(best_val, val_acc[l]);
            ok &= val_acc[l] > 0.5 && val_acc[l] <= 1;
        }
        CHECK(ok, "validation accuracies filled");
        double chosen_val;
        logreg_accuracy(&m, Xva, yva, nva, &chosen_val);
        CHECK(chosen_val == best_val, "chosen model's val acc %.4f, best %.4f", chosen_val, best_val);
        /* ties go to the larger lambda */
        int largest_tied = -1;
        for (int l = 0; l < 4; l++)
            if (val_acc[l] == best_val && (largest_tied < 0 || lambdas[l] > lambdas[largest_tied]))
                largest_tied = l;
        CHECK(m.lambda == lambdas[largest_tied], "chosen lambda %g, expected %g", m.lambda,
              lambdas[largest_tied]);
        /* the warm-started path ends where a cold fit does (strongly convex) */
        LogReg cold;
        if (logreg_fit(&cold, Xtr, ytr, ntr, d, K, m.lambda, 0, 0) == 0) {
            double max_diff = 0;
            for (int i = 0; i < K * d + K; i++) max_diff = fmax(max_diff, fabs(cold.W[i] - m.W[i]));
            CHECK(fabs(cold.objective - m.objective) < 1e-10 && max_diff < 1e-3,
                  "warm vs cold: f %.12g vs %.12g, max |dW| %.3e", m.objective, cold.objective, max_diff);
            logreg_free(&cold);
        }
        logreg_free(&m);
    }
    free(Xtr);
    free(Xva);
    free(Xte);
    free(ytr);
    free(yva);
    free(yte);
    free(pred);
    gsl_rng_free(rng);
}

/* Labels 0/1/2 with probabilities 0.6/0.3/0.1, independent of anything. */
static int unbalanced_label(gsl_rng *rng) {
    double u = gsl_rng_uniform(rng);
    return u < 0.6 ? 0 : (u < 0.9 ? 1 : 2);
}

static void test_pure_noise(void) {
    int d = 10, K = 3, ntr = 3000, nte = 5000;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 42);
    float *Xtr = malloc((size_t)ntr * d * sizeof *Xtr), *Xte = malloc((size_t)nte * d * sizeof *Xte);
    int *ytr = malloc((size_t)ntr * sizeof *ytr), *yte = malloc((size_t)nte * sizeof *yte);
    int *pred = malloc((size_t)nte * sizeof *pred);
    for (int i = 0; i < ntr * d; i++) Xtr[i] = (float)gsl_ran_gaussian(rng, 1.0);
    for (int i = 0; i < nte * d; i++) Xte[i] = (float)gsl_ran_gaussian(rng, 1.0);
    for (int i = 0; i < ntr; i++) ytr[i] = unbalanced_label(rng);
    for (int i = 0; i < nte; i++) yte[i] = unbalanced_label(rng);
    LogReg m;
    int rc = logreg_fit(&m, Xtr, ytr, ntr, d, K, 1e-2, 0, 0);
    CHECK(rc == 0, "noise fit: %s", spiral_last_error());
    if (rc == 0) {
        logreg_predict(&m, Xte, nte, pred, NULL);
        double acc, majority, lo, hi;
        int majority_class;
        probe_accuracy(yte, pred, nte, &acc);
        probe_majority_baseline(ytr, ntr, yte, nte, K, &majority_class, &majority);
        probe_bootstrap_ci(yte, pred, nte, NULL, 1000, 1, &lo, &hi);
        printf("pure noise: probe %.4f [%.4f, %.4f], majority (class %d) %.4f\n", acc, lo, hi,
               majority_class, majority);
        CHECK(majority_class == 0, "majority class %d", majority_class);
        CHECK(lo <= majority && majority <= hi, "majority %.4f outside the probe's CI [%.4f, %.4f]",
              majority, lo, hi);
        CHECK(m.converged, "noise fit converged");
        logreg_free(&m);
    }
    free(Xtr);
    free(Xte);
    free(ytr);
    free(yte);
    free(pred);
    gsl_rng_free(rng);
}

static void test_determinism(void) {
    int n = 2000, d = 12, K = 4;
    float *X[2];
    int *y[2];
    LogReg m[2];
    int rc[2];
    for (int r = 0; r < 2; r++) {
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(rng, 99);
        double means[4 * 12] = {0};
        for (int k = 0; k < K; k++)
            for (int j = 0; j < d; j++) means[k * d + j] = gsl_ran_gaussian(rng, 0.5);
        X[r] = malloc((size_t)n * d * sizeof *X[r]);
        y[r] = malloc((size_t)n * sizeof *y[r]);
        gaussian_classes(rng, n, d, K, means, X[r], y[r]);
        rc[r] = logreg_fit(&m[r], X[r], y[r], n, d, K, 1e-3, 0, 0);
        gsl_rng_free(rng);
    }
    CHECK(rc[0] == 0 && rc[1] == 0, "determinism fits: %s", spiral_last_error());
    if (rc[0] == 0 && rc[1] == 0) {
        CHECK(memcmp(m[0].W, m[1].W, ((size_t)K * d + K) * sizeof(double)) == 0,
              "same seed: W and b differ");
        CHECK(memcmp(m[0].mean, m[1].mean, (size_t)2 * d * sizeof(double)) == 0,
              "same seed: standardization differs");
        CHECK(m[0].iterations == m[1].iterations && m[0].objective == m[1].objective,
              "same seed: %d vs %d iterations", m[0].iterations, m[1].iterations);
        /* a warm start from the solution converges at once */
        LogReg warm;
        int rcw = logreg_fit_from(&warm, &m[0], X[0], y[0], n, d, K, 1e-3, 0, 0);
        CHECK(rcw == 0 && warm.iterations == 0 && warm.converged,
              "warm start from the optimum: rc %d, %d iterations", rcw, warm.iterations);
        if (rcw == 0) logreg_free(&warm);
        rcw = logreg_fit_from(&warm, &m[0], X[0], y[0], n, d - 1, K, 1e-3, 0, 0);
        check_error(rcw, "warm start model is 4 x 12, expected 4 x 11", "warm start of another shape");
    }
    for (int r = 0; r < 2; r++) {
        if (rc[r] == 0) logreg_free(&m[r]);
        free(X[r]);
        free(y[r]);
    }
}

static void test_errors(void) {
    int n = 10, d = 3, K = 3, rc;
    float X[30];
    int y[10], ones[10];
    for (int i = 0; i < n * d; i++) X[i] = (float)((i * 7) % 5);
    for (int i = 0; i < n; i++) y[i] = i % K;
    for (int i = 0; i < n; i++) ones[i] = 1;
    LogReg m;
    rc = logreg_fit(&m, X, ones, n, d, K, 0.1, 0, 0);
    check_error(rc, "label has one class", "one class");
    y[5] = 3;
    rc = logreg_fit(&m, X, y, n, d, K, 0.1, 0, 0);
    check_error(rc, "label 3 of row 5 is out of range", "label out of range");
    y[5] = -1;
    rc = logreg_fit(&m, X, y, n, d, K, 0.1, 0, 0);
    check_error(rc, "out of range", "negative label");
    y[5] = 5 % K;
    X[3 * d + 2] = NAN;
    rc = logreg_fit(&m, X, y, n, d, K, 0.1, 0, 0);
    check_error(rc, "row 3, column 2 is not finite", "NaN feature");
    X[3 * d + 2] = INFINITY;
    rc = logreg_fit(&m, X, y, n, d, K, 0.1, 0, 0);
    check_error(rc, "row 3, column 2 is not finite", "infinite feature");
    X[3 * d + 2] = 1;
    rc = logreg_fit(&m, X, y, 1, d, K, 0.1, 0, 0);
    check_error(rc, "at least 2 rows", "n = 1");
    rc = logreg_fit(&m, X, y, n, d, 1, 0.1, 0, 0);
    check_error(rc, "at least 2 classes", "K = 1");
    rc = logreg_fit(&m, X, y, n, d, K, -1, 0, 0);
    check_error(rc, "lambda", "negative lambda");
    /* a good fit, then prediction on a NaN row */
    rc = logreg_fit(&m, X, y, n, d, K, 0.1, 0, 0);
    CHECK(rc == 0, "tiny fit: %s", spiral_last_error());
    if (rc == 0) {
        float bad[6] = {0, 1, 2, 3, NAN, 5};
        int pred[2];
        rc = logreg_predict(&m, bad, 2, pred, NULL);
        check_error(rc, "row 1, column 1 is not finite", "predict NaN");
        logreg_free(&m);
    }
    /* a class absent from the training labels (K = 4, labels 0..2): its
     * bias heads to -infinity but the gradient still reaches tol */
    rc = logreg_fit(&m, X, y, n, d, 4, 0.1, 0, 0);
    CHECK(rc == 0, "absent class: %s", spiral_last_error());
    if (rc == 0) {
        CHECK(m.converged, "absent class: not converged, |g| %.3e", m.grad_norm);
        logreg_free(&m);
    }
    double lambdas[1] = {0.1};
    int yva[2] = {0, 7};
    rc = logreg_fit_select(&m, X, y, n, X, yva, 2, d, K, lambdas, 1, NULL);
    check_error(rc, "validation label 7 of row 1", "bad validation label");
    logreg_free(NULL);
}

static void test_bootstrap(void) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 3);
    int n_big = 40000, n_small = 400;
    int *y_true = malloc((size_t)n_big * sizeof *y_true), *y_pred = malloc((size_t)n_big * sizeof *y_pred);
    for (int i = 0; i < n_big; i++) {
        y_true[i] = (int)gsl_rng_uniform_int(rng, 4);
        y_pred[i] = gsl_rng_uniform(rng) < 0.7 ? y_true[i] : (y_true[i] + 1) % 4;
    }
    double acc_small, acc_big, lo_s, hi_s, lo_b, hi_b, lo2, hi2;
    probe_accuracy(y_true, y_pred, n_small, &acc_small);
    probe_accuracy(y_true, y_pred, n_big, &acc_big);
    CHECK(probe_bootstrap_ci(y_true, y_pred, n_small, NULL, 1000, 17, &lo_s, &hi_s) == 0, "bootstrap small");
    CHECK(probe_bootstrap_ci(y_true, y_pred, n_big, NULL, 1000, 17, &lo_b, &hi_b) == 0, "bootstrap big");
    printf("bootstrap: n %d acc %.4f [%.4f, %.4f]; n %d acc %.4f [%.4f, %.4f]\n", n_small, acc_small,
           lo_s, hi_s, n_big, acc_big, lo_b, hi_b);
    CHECK(lo_s <= acc_small && acc_small <= hi_s, "CI [%g, %g] misses %g", lo_s, hi_s, acc_small);
    CHECK(lo_b <= acc_big && acc_big <= hi_b, "CI [%g, %g] misses %g", lo_b, hi_b, acc_big);
    /* width ~ 2 * 1.96 sqrt(p (1 - p) / n): 10x narrower for 100x the data */
    double w_s = hi_s - lo_s, w_b = hi_b - lo_b;
    double w_expected = 2 * 1.96 * sqrt(0.7 * 0.3 / n_small);
    CHECK(w_b < w_s / 5, "CI width %g (n %d) vs %g (n %d)", w_b, n_big, w_s, n_small);
    CHECK(fabs(w_s - w_expected) < 0.25 * w_expected, "CI width %g, normal approximation %g", w_s, w_expected);
    probe_bootstrap_ci(y_true, y_pred, n_small, NULL, 1000, 17, &lo2, &hi2);
    CHECK(lo2 == lo_s && hi2 == hi_s, "same seed, different interval");
    probe_bootstrap_ci(y_true, y_pred, n_small, NULL, 1000, 18, &lo2, &hi2);
    CHECK(lo2 != lo_s || hi2 != hi_s, "another seed gave the identical interval");
    /* groups: singletons reproduce the example bootstrap exactly */
    int *groups = malloc((size_t)n_big * sizeof *groups);
    for (int i = 0; i < n_big; i++) groups[i] = 1000 + i;
    probe_bootstrap_ci(y_true, y_pred, n_small, groups, 1000, 17, &lo2, &hi2);
    CHECK(lo2 == lo_s && hi2 == hi_s, "singleton groups [%g, %g] vs examples [%g, %g]", lo2, hi2, lo_s, hi_s);
    /* clustered correctness: 200 sequences of 20 tokens, all right or all
     * wrong; the group interval must be ~sqrt(20) times wider, and group ids
     * need not be contiguous */
    int n_seq = 200, len = 20, n = n_seq * len;
    for (int s = 0; s < n_seq; s++) {
        int right = gsl_rng_uniform(rng) < 0.7;
        for (int t = 0; t < len; t++) {
            int i = t * n_seq + s; /* interleaved */
            groups[i] = 7 * s - 300;
            y_true[i] = t % 3;
            y_pred[i] = right ? y_true[i] : (y_true[i] + 1) % 3;
        }
    }
    double acc_g, lo_g, hi_g, lo_e, hi_e;
    probe_accuracy(y_true, y_pred, n, &acc_g);
    probe_bootstrap_ci(y_true, y_pred, n, groups, 0, 5, &lo_g, &hi_g);
    probe_bootstrap_ci(y_true, y_pred, n, NULL, 0, 5, &lo_e, &hi_e);
    printf("clustered: acc %.4f, group CI [%.4f, %.4f], example CI [%.4f, %.4f]\n", acc_g, lo_g, hi_g,
           lo_e, hi_e);
    CHECK(lo_g <= acc_g && acc_g <= hi_g, "group CI misses the accuracy");
    CHECK(hi_g - lo_g > 3 * (hi_e - lo_e), "group CI width %g vs example %g", hi_g - lo_g, hi_e - lo_e);
    CHECK(probe_bootstrap_ci(y_true, y_pred, 0, NULL, 0, 5, &lo_g, &hi_g) == -1, "bootstrap of 0 examples");
    free(groups);
    free(y_true);
    free(y_pred);
    gsl_rng_free(rng);
}

static void test_control_and_permutation(void) {
    int n = 5000;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 8);
    int *type = malloc((size_t)n * sizeof *type), *labels = malloc((size_t)n * sizeof *labels);
    int *control = malloc((size_t)n * sizeof *control), *control2 = malloc((size_t)n * sizeof *control2);
    for (int i = 0; i < n; i++) {
        type[i] = 3 * (int)gsl_rng_uniform_int(rng, 400) - 50;
        labels[i] = (int)gsl_rng_uniform_int(rng, 5) * 2; /* values 0, 2, .., 8 */
        if (i % 97 == 0) labels[i] = -1;                  /* unlabelled */
    }
    int rc = probe_control_labels(type, labels, n, 123, control);
    CHECK(rc == 0, "control: %s", spiral_last_error());
    /* a function of the type: the first control seen for each type */
    int *first = malloc(1200 * sizeof *first);
    for (int t = 0; t < 1200; t++) first[t] = -2;
    int function_ok = 1, values_ok = 1, unlabelled_ok = 1;
    long counts[10] = {0};
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0) {
            unlabelled_ok &= control[i] == -1;
            continue;
        }
        int slot = type[i] + 50;
        if (first[slot] == -2) first[slot] = control[i];
        function_ok &= control[i] == first[slot];
        values_ok &= control[i] >= 0 && control[i] <= 8 && control[i] % 2 == 0;
    }
    /* across types, the control labels follow the label distribution */
    int n_types = 0;
    for (int t = 0; t < 1200; t++)
        if (first[t] >= 0) {
            counts[first[t]]++;
            n_types++;
        }
    CHECK(function_ok, "control label is not a function of the token type");
    CHECK(values_ok, "control labels outside the label values");
    CHECK(unlabelled_ok, "unlabelled examples must get control -1");
    int spread_ok = 1;
    for (int v = 0; v <= 8; v += 2) spread_ok &= counts[v] > n_types / 10;
    CHECK(spread_ok, "control labels concentrated: %ld %ld %ld %ld %ld of %d types", counts[0],
          counts[2], counts[4], counts[6], counts[8], n_types);
    probe_control_labels(type, labels, n, 123, control2);
    CHECK(memcmp(control, control2, (size_t)n * sizeof *control) == 0, "control: same seed differs");
    probe_control_labels(type, labels, n, 124, control2);
    CHECK(memcmp(control, control2, (size_t)n * sizeof *control) != 0, "control: seeds 123 and 124 agree");

    /* permutation: 60 sequences with lengths 5, 6, 7 (20 each) and one of
     * length 9 (unpaired), examples shuffled in the arrays but in order
     * within each sequence; label = 100 * sequence + position */
    int n_seq = 61, total = 0, lengths[61];
    for (int s = 0; s < 60; s++) lengths[s] = 5 + s % 3;
    lengths[60] = 9;
    for (int s = 0; s < n_seq; s++) total += lengths[s];
    int *seq = malloc((size_t)total * sizeof *seq), *lab = malloc((size_t)total * sizeof *lab);
    int *perm = malloc((size_t)total * sizeof *perm), *perm2 = malloc((size_t)total * sizeof *perm2);
    int next[61] = {0}, filled = 0;
    while (filled < total) {
        int s = (int)gsl_rng_uniform_int(rng, (unsigned long)n_seq);
        if (next[s] == lengths[s]) continue;
        seq[filled] = 10 * s + 1;
        lab[filled] = 100 * s + next[s]++;
        filled++;
    }
    int unpaired = -1;
    rc = probe_permute_sequence_labels(seq, lab, total, 77, perm, &unpaired);
    CHECK(rc == 0, "permute: %s", spiral_last_error());
    CHECK(unpaired == 1, "unpaired sequences: %d", unpaired);
    int partner[61], used[61] = {0}, perm_ok = 1, moved = 0;
    for (int s = 0; s < n_seq; s++) partner[s] = -1;
    for (int i = 0; i < total; i++) {
        int s = (seq[i] - 1) / 10, p = perm[i] / 100, pos = perm[i] % 100;
        if (partner[s] < 0) partner[s] = p;
        perm_ok &= partner[s] == p && lengths[p] == lengths[s] && pos == lab[i] % 100;
    }
    for (int s = 0; s < n_seq; s++) {
        if (partner[s] >= 0) used[partner[s]]++;
        moved += partner[s] != s;
    }
    for (int s = 0; s < n_seq; s++) perm_ok &= used[s] == 1;
    CHECK(perm_ok, "permutation: not a length-preserving bijection of whole label vectors");
    CHECK(moved > 40 && partner[60] == 60, "permutation moved %d sequences, long one -> %d", moved, partner[60]);
    probe_permute_sequence_labels(seq, lab, total, 77, perm2, NULL);
    CHECK(memcmp(perm, perm2, (size_t)total * sizeof *perm) == 0, "permutation: same seed differs");
    free(seq);
    free(lab);
    free(perm);
    free(perm2);
    free(first);
    free(type);
    free(labels);
    free(control);
    free(control2);
    gsl_rng_free(rng);
}

static void test_hand_examples(void) {
    int rc;
    /* macro-F1: class 0 P = R = 1/2 (F1 1/2), class 1 P = 2/3 R = 1 (F1 4/5),
     * class 2 P = 1 R = 1/2 (F1 2/3): mean 59/90 */
    int t1[6] = {0, 0, 1, 1, 2, 2}, p1[6] = {0, 1, 1, 1, 0, 2};
    double f1 = -1;
    rc = probe_macro_f1(t1, p1, 6, 3, &f1);
    CHECK(rc == 0 && fabs(f1 - 59.0 / 90.0) < 1e-15, "macro-F1 %.15f, expected 59/90", f1);
    /* class 3 is predicted but absent from y_true: not averaged; class 0
     * P = 1 R = 1/2 (F1 2/3), class 1 F1 1 */
    int t2[4] = {0, 0, 1, 1}, p2[4] = {0, 3, 1, 1};
    rc = probe_macro_f1(t2, p2, 4, 4, &f1);
    CHECK(rc == 0 && fabs(f1 - 5.0 / 6.0) < 1e-15, "macro-F1 with an absent class %.15f, expected 5/6", f1);
    int t3[2] = {0, 1}, p3[2] = {1, 0};
    rc = probe_macro_f1(t3, p3, 2, 2, &f1);
    CHECK(rc == 0 && f1 == 0.0, "macro-F1 all wrong %g (P + R = 0 gives F1 0)", f1);
    rc = probe_macro_f1(t2, p2, 4, 3, &f1);
    check_error(rc, "y_pred[1] = 3 is out of range", "macro-F1 range");
    /* accuracy 4/6 */
    double acc = -1;
    rc = probe_accuracy(t1, p1, 6, &acc);
    CHECK(rc == 0 && acc == 4.0 / 6.0, "accuracy %g, expected 2/3", acc);
    /* majority: train [0 1 1 2] -> class 1, test [1 1 0 2 2] -> 2/5 */
    int ytr[4] = {0, 1, 1, 2}, yte[5] = {1, 1, 0, 2, 2}, cls = -1;
    rc = probe_majority_baseline(ytr, 4, yte, 5, 3, &cls, &acc);
    CHECK(rc == 0 && cls == 1 && acc == 0.4, "majority class %d accuracy %g, expected 1, 0.4", cls, acc);
    int tie[2] = {2, 0};
    rc = probe_majority_baseline(tie, 2, yte, 5, 3, &cls, &acc);
    CHECK(rc == 0 && cls == 0 && acc == 0.2, "majority tie: class %d accuracy %g, expected 0, 0.2", cls, acc);
    /* expected layer: acc 0.5 0.6 0.8 0.75 0.9, deltas .1 .2 -.05 .15:
     * as is (1(.1) + 2(.2) - 3(.05) + 4(.15)) / .4 = .95 / .4 = 2.375;
     * clipped (.1 + .4 + .6) / .45 = 22/9 */
    double curve[5] = {0.5, 0.6, 0.8, 0.75, 0.9}, e = -1;
    rc = probe_expected_layer(curve, 4, 0, &e);
    CHECK(rc == 0 && fabs(e - 2.375) < 1e-12, "expected layer %.15f, expected 2.375", e);
    rc = probe_expected_layer(curve, 4, 1, &e);
    CHECK(rc == 0 && fabs(e - 22.0 / 9.0) < 1e-12, "expected layer clipped %.15f, expected 22/9", e);
    double flat[3] = {0.7, 0.7, 0.6};
    rc = probe_expected_layer(flat, 2, 1, &e);
    check_error(rc, "undefined", "expected layer of a flat curve");
    CHECK(isnan(e), "flat curve: E = %g, expected NaN", e);
    double step[3] = {0.2, 0.2, 0.9};
    rc = probe_expected_layer(step, 2, 0, &e);
    CHECK(rc == 0 && e == 2.0, "all gain at t = 2: E = %g", e);
}

/* Informational: fit time for random Gaussian data with a linear signal. */
static void timing(void) {
    int n = 100000, d = 256, K = 10;
    if (under_sanitizer()) {
        n = 10000;
        d = 64;
    }
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 256);
    float *X = malloc((size_t)n * d * sizeof *X);
    int *y = malloc((size_t)n * sizeof *y);
    double *Wtrue = malloc((size_t)K * d * sizeof *Wtrue);
    for (int i = 0; i < K * d; i++) Wtrue[i] = gsl_ran_gaussian_ziggurat(rng, 1.0) / sqrt(d);
    for (size_t i = 0; i < (size_t)n * d; i++) X[i] = (float)gsl_ran_gaussian_ziggurat(rng, 1.0);
    /* y = argmax_k (2 Wtrue x + Gumbel noise): a softmax model */
    for (int i = 0; i < n; i++) {
        int best = 0;
        double best_z = -INFINITY;
        for (int k = 0; k < K; k++) {
            double z = 0;
            for (int j = 0; j < d; j++) z += Wtrue[k * d + j] * X[(size_t)i * d + j];
            z = 2 * z - log(-log(gsl_rng_uniform_pos(rng)));
            if (z > best_z) {
                best_z = z;
                best = k;
            }
        }
        y[i] = best;
    }
    LogReg m;
    double t0 = now_seconds();
    int rc = logreg_fit(&m, X, y, n, d, K, 1e-4, 0, 0);
    double seconds = now_seconds() - t0;
    CHECK(rc == 0, "timing fit: %s", spiral_last_error());
    if (rc == 0) {
        double acc;
        logreg_accuracy(&m, X, y, n, &acc);
        printf("timing: n %d, d %d, K %d, lambda 1e-4: %.2f s, %d iterations, %d evaluations, "
               "converged %d, |g|_inf %.2e, f %.6f, train acc %.4f\n",
               n, d, K, seconds, m.iterations, m.evaluations, m.converged, m.grad_norm, m.objective, acc);
        logreg_free(&m);
    }
    free(X);
    free(y);
    free(Wtrue);
    gsl_rng_free(rng);
}


/* The rule of logreg_fit_path's downward extension replayed on the
 * validation accuracies it reports: how many lambdas it must have fitted
 * (ties go to the stronger, so an extension needs the weakest strictly
 * best). */
static int replay_path_length(const LogRegPath *path, int n_given, double floor) {
    int best = 0;
    for (int l = 1; l < n_given; l++)
        if (path->val_acc[l] > path->val_acc[best]) best = l;
    int n = n_given;
    while (n < path->n + 1 && n < LOGREG_PATH_MAX && best == n - 1 &&
           path->lambdas[n - 1] / 10 >= floor * (1 - 1e-9)) {
        if (n == path->n) return n + 1;  /* the rule wanted one more than was fitted */
        if (path->val_acc[n] > path->val_acc[best]) best = n;
        n++;
    }
    return n;
}

/* The L2 grid extends itself while its weakest lambda is strictly best on
 * validation, down to the floor. A problem that wants weak penalties: d =
 * 10 features sharing a common factor, x_j = 3 c + e_j, and 3 classes by
 * the small difference e_0 - e_1 (below -0.1, between, above 0.1); ridge
 * shrinks that low-variance direction hardest. */
static void test_l2_extension(void) {
    int d = 10, ntr = 2000, nva = 4000, K = 3;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 31);
    float *Xtr = malloc((size_t)ntr * d * sizeof *Xtr), *Xva = malloc((size_t)nva * d * sizeof *Xva);
    int *ytr = malloc((size_t)ntr * sizeof *ytr), *yva = malloc((size_t)nva * sizeof *yva);
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? nva : ntr;
        float *X = pass ? Xva : Xtr;
        int *y = pass ? yva : ytr;
        for (int i = 0; i < n; i++) {
            double c = gsl_ran_gaussian(rng, 1.0);
            for (int j = 0; j < d; j++)
                X[(size_t)i * d + j] = (float)(3 * c + gsl_ran_gaussian(rng, 1.0));
            double z = X[(size_t)i * d] - X[(size_t)i * d + 1];
            y[i] = z > 0.1 ? 2 : z < -0.1 ? 0 : 1;
        }
    }
    const double grid[4] = {1e-1, 1e-2, 1e-3, 1e-4};
    LogReg m;
    LogRegPath path;
    int rc = logreg_fit_path(&m, Xtr, ytr, ntr, Xva, yva, nva, d, K, grid, 4, 1e-8, 1e-4, 2000, &path);
    CHECK(rc == 0, "path: %s", spiral_last_error());
    if (rc == 0) {
        printf("L2 path, correlated features:");
        for (int l = 0; l < path.n; l++) printf(" %g:%.4f%s", path.lambdas[l], path.val_acc[l], path.converged[l] ? "" : "(nc)");
        printf("; chosen %g\n", m.lambda);
        CHECK(path.n > 4, "the grid did not extend below 1e-4 (%d lambdas)", path.n);
        CHECK(path.n == replay_path_length(&path, 4, 1e-8), "path of %d lambdas, the rule wants %d", path.n,
              replay_path_length(&path, 4, 1e-8));
        CHECK(path.lambdas[path.n - 1] >= 1e-8 * (1 - 1e-9), "below the floor: %g", path.lambdas[path.n - 1]);
        for (int l = 1; l < path.n; l++)
            CHECK(fabs(path.lambdas[l] * 10 / path.lambdas[l - 1] - 1) < 1e-12, "factors of 10");
        double best = 0;
        for (int l = 0; l < path.n; l++) best = fmax(best, path.val_acc[l]);
        double chosen;
        logreg_accuracy(&m, Xva, yva, nva, &chosen);
        CHECK(chosen == best, "chosen lambda %g has val acc %.4f, best %.4f", m.lambda, chosen, best);
        logreg_free(&m);
    }
    /* a floor at 1e-5 stops after one extension at most; no floor, none */
    rc = logreg_fit_path(&m, Xtr, ytr, ntr, Xva, yva, nva, d, K, grid, 4, 1e-5, 1e-4, 2000, &path);
    CHECK(rc == 0 && path.n == 5 && path.n == replay_path_length(&path, 4, 1e-5), "floor 1e-5: %d lambdas", path.n);
    logreg_free(&m);
    rc = logreg_fit_path(&m, Xtr, ytr, ntr, Xva, yva, nva, d, K, grid, 4, 0, 1e-4, 2000, &path);
    CHECK(rc == 0 && path.n == 4, "no floor: %d lambdas", path.n);
    logreg_free(&m);
    /* labels independent of the features: the weak end is not strictly best
     * for long; whatever happens, the path follows the rule */
    for (int i = 0; i < ntr; i++) ytr[i] = (int)gsl_rng_uniform_int(rng, K);
    for (int i = 0; i < nva; i++) yva[i] = (int)gsl_rng_uniform_int(rng, K);
    rc = logreg_fit_path(&m, Xtr, ytr, ntr, Xva, yva, nva, d, K, grid, 4, 1e-8, 1e-4, 2000, &path);
    CHECK(rc == 0 && path.n == replay_path_length(&path, 4, 1e-8), "noise: path of %d lambdas", path.n);
    logreg_free(&m);
    free(Xtr);
    free(Xva);
    free(ytr);
    free(yva);
    gsl_rng_free(rng);
}

/* The paired margin: hand-computed value, an interval that contains it,
 * zero width when the two probes agree on every sequence's count, and an
 * error for outcomes of different test rows. */
static void test_paired_margin(void) {
    /* (sequence, correct, rows): a gets 8 + 9 + 7 = 24 of 30, b 5 + 6 + 7 = 18 */
    int a[9] = {2, 8, 10, 5, 9, 10, 7, 7, 10}, b[9] = {2, 5, 10, 5, 6, 10, 7, 7, 10};
    double m, lo, hi;
    int rc = probe_paired_margin_ci(a, b, 3, 500, 1, &m, &lo, &hi);
    CHECK(rc == 0 && fabs(m - 6.0 / 30) < 1e-15 && lo <= m && m <= hi && lo >= 0 && hi <= 0.3 + 1e-12,
          "margin %g [%g, %g], expected 0.2 inside and within the per-sequence range [0, 0.3]", m, lo, hi);
    /* the same shift of 3 on every sequence: every resample gives 0.3 */
    int c[9] = {2, 8, 10, 5, 8, 10, 7, 9, 10}, e[9] = {2, 5, 10, 5, 5, 10, 7, 6, 10};
    rc = probe_paired_margin_ci(c, e, 3, 500, 1, &m, &lo, &hi);
    CHECK(rc == 0 && fabs(m - 0.3) < 1e-15 && fabs(lo - 0.3) < 1e-15 && fabs(hi - 0.3) < 1e-15,
          "constant difference: %g [%g, %g]", m, lo, hi);
    double lo2, hi2, m2;
    probe_paired_margin_ci(a, b, 3, 500, 1, &m2, &lo2, &hi2);
    probe_paired_margin_ci(a, b, 3, 500, 1, &m, &lo, &hi);
    CHECK(lo == lo2 && hi == hi2, "deterministic for a seed");
    int other[9] = {2, 5, 10, 6, 6, 10, 7, 7, 10};
    rc = probe_paired_margin_ci(a, other, 3, 500, 1, &m, &lo, &hi);
    check_error(rc, "not paired", "different test sequences");
    int fewer[9] = {2, 5, 10, 5, 6, 9, 7, 7, 10};
    rc = probe_paired_margin_ci(a, fewer, 3, 500, 1, &m, &lo, &hi);
    check_error(rc, "not paired", "different row counts");
}

/* Lexical token types: by frequency (ties: smaller id), the rest in "other". */
static void test_lexical_types(void) {
    /* counts: token 5 x4, token 2 x3, token 9 x3, token 0 x1, token 7 x1 */
    int tokens[12] = {5, 2, 9, 5, 2, 9, 5, 2, 9, 5, 0, 7}, codes[12], n_types;
    int rc = probe_lexical_types(codes, &n_types, tokens, 12, 3);
    /* 3 types: 5 -> 0, 2 -> 1, everything else -> 2 ("other") */
    int want3[12] = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 2, 2}, same = 1;
    for (int i = 0; i < 12; i++) same &= codes[i] == want3[i];
    CHECK(rc == 0 && n_types == 3 && same, "3 types: %d types, codes differ %d", n_types, !same);
    rc = probe_lexical_types(codes, &n_types, tokens, 12, 100);
    /* every token its own type: 5, 2, 9, 0, 7 */
    int want5[12] = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 3, 4};
    same = 1;
    for (int i = 0; i < 12; i++) same &= codes[i] == want5[i];
    CHECK(rc == 0 && n_types == 5 && same, "all types: %d types, codes differ %d", n_types, !same);
}

int main(int argc, char **argv) {
    test_lbfgs();
    test_gradient();
    test_optimum(0);
    test_optimum(1);
    test_separable();
    test_bayes();
    test_pure_noise();
    test_determinism();
    test_errors();
    test_bootstrap();
    test_control_and_permutation();
    test_hand_examples();
    test_l2_extension();
    test_paired_margin();
    test_lexical_types();
    timing();
    return test_summary(argv[0]);
}
