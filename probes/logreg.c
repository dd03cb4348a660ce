/*
 * logreg.c: multinomial logistic regression with L2, fitted by L-BFGS
 * (see logreg.h for the model, the objective and the stopping rule).
 *
 * Parameters are one vector theta = [W (K, d) row-major, b (K)] of length
 * p = K d + K, which is also how the model stores them (b = W + K d).
 *
 * Evaluation of f and its gradient walks X in blocks of B rows:
 *   S   (B, d) = standardized rows, in double
 *   Z   (B, K) = S W^T + 1 b^T                        (cblas_dgemm)
 *   loss      += sum_i [ lse(z_i) - z_i,y_i ],  lse(z) = m + log sum exp(z - m), m = max z
 *   Z         <- (softmax(Z) - Y) / n                 (in place: dZ)
 *   gW  (K, d) += dZ^T S                              (cblas_dgemm)
 *   gb  (K)    += column sums of dZ
 * then f = loss / n + (lambda/2) ||W||^2 and gW += lambda W.
 *
 * The minimizer is lbfgs.h's L-BFGS (memory LBFGS_MEMORY, strong Wolfe line
 * search) on this objective, from theta = the warm start or the cold start
 * of logreg_fit_from.
 */
#include "logreg.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lbfgs.h"

/* Target size of one standardized block, in doubles (256 KB: it stays in
 * L2 between the two GEMMs that read it; 32 KB to 2 MB measured within
 * noise of each other at n = 100000, d = 256, K = 10). */
#define LOGREG_BLOCK_DOUBLES (1 << 15)

/* The data and workspace of one objective: everything problem_eval needs. */
typedef struct {
    const float *X;       /* (n, d) */
    const int *y;         /* (n) */
    int n, d, K;
    const double *mean;   /* (d) or NULL */
    const double *std;    /* (d) or NULL */
    double *inv_std;      /* (d) 1 / std, or NULL with mean and std */
    double lambda;
    int block_rows;
    double *S;            /* (block_rows, d) */
    double *Z;            /* (block_rows, K) */
} Problem;

/* Rows per block: about LOGREG_BLOCK_DOUBLES doubles, at least 16, at most n. */
static int block_rows_for(int n, int d) {
    int rows = LOGREG_BLOCK_DOUBLES / d;
    if (rows < 16) rows = 16;
    if (rows > n) rows = n;
    return rows;
}

/* Allocates the block buffers of a problem. */
static int problem_init(Problem *p, const float *X, const int *y, int n, int d, int K,
                        const double *mean, const double *std, double lambda) {
    memset(p, 0, sizeof *p);
    p->X = X;
    p->y = y;
    p->n = n;
    p->d = d;
    p->K = K;
    p->mean = mean;
    p->std = std;
    p->lambda = lambda;
    p->block_rows = block_rows_for(n, d);
    p->S = malloc((size_t)p->block_rows * d * sizeof *p->S);
    p->Z = malloc((size_t)p->block_rows * K * sizeof *p->Z);
    p->inv_std = mean ? malloc((size_t)d * sizeof *p->inv_std) : NULL;
    if (!p->S || !p->Z || (mean && !p->inv_std)) {
        free(p->S);
        free(p->Z);
        free(p->inv_std);
        return spiral_error("logreg: out of memory for a %d x %d block", p->block_rows, d);
    }
    if (mean)
        for (int j = 0; j < d; j++) p->inv_std[j] = 1.0 / std[j];
    return 0;
}

/* Frees the block buffers of a problem. */
static void problem_free(Problem *p) {
    free(p->S);
    free(p->Z);
    free(p->inv_std);
    p->S = p->Z = p->inv_std = NULL;
}

/* S (rows, d) = (X[row0 .. row0 + rows) - mean) * inv_std, or X itself
 * when mean is NULL. (restrict lets the compiler vectorize the loops: this
 * is a quarter of an evaluation otherwise.) */
static void standardize_block(double *restrict S, const float *restrict X, int row0, int rows,
                              int d, const double *restrict mean, const double *restrict inv_std) {
    for (int i = 0; i < rows; i++) {
        const float *restrict x = X + (size_t)(row0 + i) * d;
        double *restrict s = S + (size_t)i * d;
        if (mean) {
            for (int j = 0; j < d; j++) s[j] = ((double)x[j] - mean[j]) * inv_std[j];
        } else {
            for (int j = 0; j < d; j++) s[j] = x[j];
        }
    }
}

/* Z (rows, K) = S W^T + 1 b^T for S (rows, d), W (K, d), b (K). */
static void block_logits(double *Z, const double *S, int rows, int d, int K, const double *W,
                         const double *b) {
    for (int i = 0; i < rows; i++) memcpy(Z + (size_t)i * K, b, (size_t)K * sizeof *Z);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, K, d, 1.0, S, d, W, d, 1.0, Z, K);
}

/* Replaces z (K) by softmax(z) and returns log sum_k exp(z_k). */
static double softmax_in_place(double *z, int K) {
    double m = z[0];
    for (int k = 1; k < K; k++)
        if (z[k] > m) m = z[k];
    double sum = 0;
    for (int k = 0; k < K; k++) {
        z[k] = exp(z[k] - m);
        sum += z[k];
    }
    for (int k = 0; k < K; k++) z[k] /= sum;
    return m + log(sum);
}

/* f(theta) and, unless grad is NULL, its gradient grad (p), for theta =
 * [W (K, d), b (K)] (see the file comment). */
static double problem_eval(Problem *p, const double *theta, double *grad) {
    int n = p->n, d = p->d, K = p->K;
    const double *W = theta, *b = theta + (size_t)K * d;
    double *gW = grad, *gb = grad ? grad + (size_t)K * d : NULL;
    double loss = 0;
    if (grad) memset(grad, 0, ((size_t)K * d + K) * sizeof *grad);
    for (int row0 = 0; row0 < n; row0 += p->block_rows) {
        int rows = n - row0 < p->block_rows ? n - row0 : p->block_rows;
        standardize_block(p->S, p->X, row0, rows, d, p->mean, p->inv_std);
        block_logits(p->Z, p->S, rows, d, K, W, b);
        double block_loss = 0;
        for (int i = 0; i < rows; i++) {
            double *z = p->Z + (size_t)i * K;
            int label = p->y[row0 + i];
            double z_label = z[label];
            block_loss += softmax_in_place(z, K) - z_label;
            if (grad) {
                z[label] -= 1.0;
                for (int k = 0; k < K; k++) {
                    z[k] /= n;
                    gb[k] += z[k];
                }
            }
        }
        loss += block_loss;
        if (grad)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, d, rows, 1.0, p->Z, K, p->S,
                        d, 1.0, gW, d);
    }
    double w2 = cblas_ddot(K * d, W, 1, W, 1);
    if (grad) cblas_daxpy(K * d, p->lambda, W, 1, gW, 1);
    return loss / n + 0.5 * p->lambda * w2;
}

/* problem_eval as an LbfgsObjective: ctx is the Problem. */
static double problem_objective(void *ctx, const double *theta, double *grad) {
    return problem_eval(ctx, theta, grad);
}

/* Checks labels y (n) against 0..K-1 and counts them into counts (K). */
static int check_labels(const int *y, int n, int K, int *counts) {
    memset(counts, 0, (size_t)K * sizeof *counts);
    for (int i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= K)
            return spiral_error("logreg: label %d of row %d is out of range (expected 0..%d)", y[i],
                                i, K - 1);
        counts[y[i]]++;
    }
    return 0;
}

int logreg_standardization(const float *X, int n, int d, double *mean, double *std) {
    if (n < 1 || d < 1) return spiral_error("logreg: standardization needs n >= 1, d >= 1 (got n %d, d %d)", n, d);
    /* first pass: finiteness, mean, and whether a feature is constant */
    for (int j = 0; j < d; j++) mean[j] = 0;
    for (int i = 0; i < n; i++) {
        const float *x = X + (size_t)i * d;
        for (int j = 0; j < d; j++) {
            if (!isfinite(x[j]))
                return spiral_error("logreg: feature at row %d, column %d is not finite (%g)", i, j,
                                    (double)x[j]);
            mean[j] += x[j];
        }
    }
    for (int j = 0; j < d; j++) mean[j] /= n;
    /* second pass: sum of squared deviations (two passes: no cancellation) */
    for (int j = 0; j < d; j++) std[j] = 0;
    for (int i = 0; i < n; i++) {
        const float *x = X + (size_t)i * d;
        for (int j = 0; j < d; j++) {
            double dev = (double)x[j] - mean[j];
            std[j] += dev * dev;
        }
    }
    for (int j = 0; j < d; j++) {
        /* a constant column: exact mean, unit scale (a rounded mean would
         * leave a tiny nonzero std and blow the column up) */
        int constant = 1;
        for (int i = 1; i < n && constant; i++)
            if (X[(size_t)i * d + j] != X[j]) constant = 0;
        if (constant) {
            mean[j] = X[j];
            std[j] = 1.0;
        } else {
            std[j] = sqrt(std[j] / n);
        }
    }
    return 0;
}

int logreg_objective(const float *X, const int *y, int n, int d, int K, const double *mean,
                     const double *std, double lambda, const double *W, const double *b,
                     double *value, double *grad_W, double *grad_b) {
    if (n < 1 || d < 1 || K < 1)
        return spiral_error("logreg: objective needs n, d, K >= 1 (got %d, %d, %d)", n, d, K);
    if ((grad_W == NULL) != (grad_b == NULL))
        return spiral_error("logreg: objective needs both grad_W and grad_b, or neither");
    if ((mean == NULL) != (std == NULL))
        return spiral_error("logreg: objective needs both mean and std, or neither");
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= K)
            return spiral_error("logreg: label %d of row %d is out of range (expected 0..%d)", y[i],
                                i, K - 1);
    size_t np = (size_t)K * d + K;
    double *theta = malloc(np * sizeof *theta);
    double *grad = grad_W ? malloc(np * sizeof *grad) : NULL;
    Problem p;
    if (!theta || (grad_W && !grad) || problem_init(&p, X, y, n, d, K, mean, std, lambda)) {
        free(theta);
        free(grad);
        return spiral_error("logreg: out of memory for the objective");
    }
    memcpy(theta, W, (size_t)K * d * sizeof *theta);
    memcpy(theta + (size_t)K * d, b, (size_t)K * sizeof *theta);
    *value = problem_eval(&p, theta, grad);
    if (grad) {
        memcpy(grad_W, grad, (size_t)K * d * sizeof *grad);
        memcpy(grad_b, grad + (size_t)K * d, (size_t)K * sizeof *grad);
    }
    problem_free(&p);
    free(theta);
    free(grad);
    return 0;
}

void logreg_free(LogReg *m) {
    if (!m) return;
    free(m->W);
    free(m->mean);
    memset(m, 0, sizeof *m);
}

/* Allocates the model's two blocks for d features and K classes. */
static int logreg_alloc(LogReg *m, int d, int K) {
    memset(m, 0, sizeof *m);
    m->d = d;
    m->K = K;
    m->W = malloc(((size_t)K * d + K) * sizeof *m->W);
    m->mean = malloc((size_t)2 * d * sizeof *m->mean);
    if (!m->W || !m->mean) {
        logreg_free(m);
        return spiral_error("logreg: out of memory for a %d x %d model", K, d);
    }
    m->b = m->W + (size_t)K * d;
    m->std = m->mean + d;
    return 0;
}

int logreg_copy(LogReg *dst, const LogReg *src) {
    if (logreg_alloc(dst, src->d, src->K)) return -1;
    double *W = dst->W, *b = dst->b, *mean = dst->mean, *std = dst->std;
    *dst = *src;
    dst->W = W;
    dst->b = b;
    dst->mean = mean;
    dst->std = std;
    memcpy(W, src->W, ((size_t)src->K * src->d + src->K) * sizeof *W);
    memcpy(mean, src->mean, (size_t)2 * src->d * sizeof *mean);
    return 0;
}

int logreg_fit_from(LogReg *m, const LogReg *init, const float *X, const int *y, int n, int d,
                    int K, double lambda, double tol, int max_iter) {
    memset(m, 0, sizeof *m);
    if (n < 2) return spiral_error("logreg: need at least 2 rows (got %d)", n);
    if (d < 1) return spiral_error("logreg: need at least 1 feature (got %d)", d);
    if (K < 2) return spiral_error("logreg: need at least 2 classes (got K = %d)", K);
    if (!(lambda >= 0) || !isfinite(lambda))
        return spiral_error("logreg: lambda must be finite and >= 0 (got %g)", lambda);
    if (init && (init == m || init->d != d || init->K != K || !init->W))
        return spiral_error("logreg: warm start model is %d x %d, expected %d x %d (and not the output)",
                            init->K, init->d, K, d);
    if (tol <= 0) tol = LOGREG_DEFAULT_TOL;
    if (max_iter <= 0) max_iter = LOGREG_DEFAULT_MAX_ITER;
    int *counts = malloc((size_t)K * sizeof *counts);
    if (!counts) return spiral_error("logreg: out of memory");
    if (check_labels(y, n, K, counts)) {
        free(counts);
        return -1;
    }
    int present = 0;
    for (int k = 0; k < K; k++) present += counts[k] > 0;
    if (present < 2) {
        free(counts);
        return spiral_error("logreg: label has one class (all %d rows are class %d)", n, y[0]);
    }
    if (logreg_alloc(m, d, K)) {
        free(counts);
        return -1;
    }
    m->lambda = lambda;
    if (logreg_standardization(X, n, d, m->mean, m->std)) {
        free(counts);
        logreg_free(m);
        return -1;
    }
    if (init) {
        memcpy(m->W, init->W, ((size_t)K * d + K) * sizeof *m->W);
    } else {
        /* W = 0, b_k = log(frequency_k) - mean over classes; an absent
         * class starts at log(0.5 / n) (its bias heads to -infinity) */
        memset(m->W, 0, (size_t)K * d * sizeof *m->W);
        double mean_b = 0;
        for (int k = 0; k < K; k++) {
            m->b[k] = log(counts[k] > 0 ? (double)counts[k] / n : 0.5 / n);
            mean_b += m->b[k] / K;
        }
        for (int k = 0; k < K; k++) m->b[k] -= mean_b;
    }
    free(counts);
    Problem p;
    if (problem_init(&p, X, y, n, d, K, m->mean, m->std, lambda)) {
        logreg_free(m);
        return -1;
    }
    LbfgsResult fit;
    int status = lbfgs_minimize(problem_objective, &p, m->W, K * d + K, tol, max_iter, &fit);
    problem_free(&p);
    m->iterations = fit.iterations;
    m->evaluations = fit.evaluations;
    m->objective = fit.objective;
    m->grad_norm = fit.grad_norm;
    m->converged = fit.converged;
    if (status) logreg_free(m);
    return status;
}

int logreg_fit(LogReg *m, const float *X, const int *y, int n, int d, int K, double lambda,
               double tol, int max_iter) {
    return logreg_fit_from(m, NULL, X, y, n, d, K, lambda, tol, max_iter);
}

int logreg_predict(const LogReg *m, const float *X, int n, int *pred, double *proba) {
    int d = m->d, K = m->K;
    if (!m->W) return spiral_error("logreg: predict with a model that was not fitted");
    if (n < 1) return 0;
    for (size_t i = 0; i < (size_t)n; i++)
        for (int j = 0; j < d; j++)
            if (!isfinite(X[i * d + j]))
                return spiral_error("logreg: feature at row %zu, column %d is not finite (%g)", i,
                                    j, (double)X[i * d + j]);
    int rows_max = block_rows_for(n, d);
    double *S = malloc((size_t)rows_max * d * sizeof *S);
    double *Z = malloc((size_t)rows_max * K * sizeof *Z);
    double *inv_std = malloc((size_t)d * sizeof *inv_std);
    if (!S || !Z || !inv_std) {
        free(S);
        free(Z);
        free(inv_std);
        return spiral_error("logreg: out of memory for prediction");
    }
    for (int j = 0; j < d; j++) inv_std[j] = 1.0 / m->std[j];
    for (int row0 = 0; row0 < n; row0 += rows_max) {
        int rows = n - row0 < rows_max ? n - row0 : rows_max;
        standardize_block(S, X, row0, rows, d, m->mean, inv_std);
        block_logits(Z, S, rows, d, K, m->W, m->b);
        for (int i = 0; i < rows; i++) {
            double *z = Z + (size_t)i * K;
            int best = 0;
            for (int k = 1; k < K; k++)
                if (z[k] > z[best]) best = k;
            pred[row0 + i] = best;
            if (proba) {
                softmax_in_place(z, K);
                memcpy(proba + (size_t)(row0 + i) * K, z, (size_t)K * sizeof *z);
            }
        }
    }
    free(S);
    free(Z);
    free(inv_std);
    return 0;
}

int logreg_accuracy(const LogReg *m, const float *X, const int *y, int n, double *accuracy) {
    if (n < 1) return spiral_error("logreg: accuracy of 0 rows");
    int *pred = malloc((size_t)n * sizeof *pred);
    if (!pred) return spiral_error("logreg: out of memory for %d predictions", n);
    if (logreg_predict(m, X, n, pred, NULL)) {
        free(pred);
        return -1;
    }
    long correct = 0;
    for (int i = 0; i < n; i++) correct += pred[i] == y[i];
    free(pred);
    *accuracy = (double)correct / n;
    return 0;
}

int logreg_fit_path(LogReg *best, const float *Xtr, const int *ytr, int ntr, const float *Xva,
                    const int *yva, int nva, int d, int K, const double *lambdas, int n_lambdas,
                    double lambda_floor, double tol, int max_iter, LogRegPath *path) {
    LogRegPath local;
    if (!path) path = &local;
    memset(path, 0, sizeof *path);
    memset(best, 0, sizeof *best);
    if (n_lambdas < 1 || n_lambdas > LOGREG_PATH_MAX)
        return spiral_error("logreg: %d lambdas to select from (expected 1..%d)", n_lambdas,
                            LOGREG_PATH_MAX);
    if (nva < 1) return spiral_error("logreg: empty validation split");
    for (int i = 0; i < nva; i++)
        if (yva[i] < 0 || yva[i] >= K)
            return spiral_error("logreg: validation label %d of row %d is out of range (expected 0..%d)",
                                yva[i], i, K - 1);
    LogReg prev = {0};
    double best_acc = -1, best_lambda = 0;
    for (int l = 0; l < LOGREG_PATH_MAX; l++) {
        double lambda;
        if (l < n_lambdas) {
            lambda = lambdas[l];
        } else {
            /* extend downward only while the weakest so far is strictly best */
            double weakest = path->lambdas[l - 1];
            lambda = weakest / 10;
            if (!(lambda_floor > 0) || best_lambda != weakest ||
                lambda < lambda_floor * (1 - 1e-9))
                break;
        }
        LogReg cur;
        if (logreg_fit_from(&cur, l > 0 ? &prev : NULL, Xtr, ytr, ntr, d, K, lambda, tol,
                            max_iter)) {
            logreg_free(&prev);
            logreg_free(best);
            return spiral_error_prefix("logreg: lambda %g", lambda);
        }
        path->evaluations += cur.evaluations;
        double acc;
        if (logreg_accuracy(&cur, Xva, yva, nva, &acc)) {
            logreg_free(&cur);
            logreg_free(&prev);
            logreg_free(best);
            return spiral_error_prefix("logreg: validation");
        }
        path->lambdas[path->n] = lambda;
        path->val_acc[path->n] = acc;
        path->converged[path->n] = cur.converged;
        path->n++;
        if (acc > best_acc || (acc == best_acc && lambda > best_lambda)) {
            logreg_free(best);
            if (logreg_copy(best, &cur)) {
                logreg_free(&cur);
                logreg_free(&prev);
                return -1;
            }
            best_acc = acc;
            best_lambda = lambda;
        }
        logreg_free(&prev);
        prev = cur;
    }
    logreg_free(&prev);
    return 0;
}

int logreg_fit_select(LogReg *best, const float *Xtr, const int *ytr, int ntr, const float *Xva,
                      const int *yva, int nva, int d, int K, const double *lambdas,
                      int n_lambdas, double *val_acc) {
    LogRegPath path;
    int status = logreg_fit_path(best, Xtr, ytr, ntr, Xva, yva, nva, d, K, lambdas, n_lambdas, 0,
                                 0, 0, &path);
    if (status == 0 && val_acc) memcpy(val_acc, path.val_acc, (size_t)path.n * sizeof *val_acc);
    return status;
}
