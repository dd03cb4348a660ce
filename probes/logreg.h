/*
 * logreg.h: multinomial logistic regression with an L2 penalty, the linear
 * probe of spiral, fitted in double precision.
 *
 * Features x_i (d) arrive as float. They are standardized with the mean and
 * (population) standard deviation of each feature over the training rows,
 *   s_ij = (x_ij - mean_j) / std_j       (std_j = 1 for a constant feature;
 *                                        computed as a product with 1/std_j),
 * and the model, on standardized features, is
 *   z_i = W s_i + b,   p(k | x_i) = softmax(z_i)_k,   W (K, d), b (K).
 * The fit minimizes the mean negative log-likelihood plus a ridge on W (the
 * bias is not penalized):
 *   f(W, b) = (1/n) sum_i [ log sum_k exp(z_ik) - z_i,y_i ] + (lambda/2) ||W||_F^2
 * whose gradient, with P (n, K) the probabilities and Y (n, K) one-hot labels,
 *   df/dW = (1/n) (P - Y)^T S + lambda W,   df/db = (1/n) sum_i (p_i - y_i).
 * The penalty acts on the weights of the standardized features, so lambda
 * means the same thing for every feature scale.
 *
 * The fitter is L-BFGS (memory 10) with a line search satisfying the strong
 * Wolfe conditions (c1 = 1e-4, c2 = 0.9), lbfgs.h, on OpenBLAS. It was
 * chosen over GSL's gsl_multimin_fdfminimizer_vector_bfgs2 by measurement:
 * the cost is evaluations (each is two GEMMs over all rows), and on the same
 * objective, start and stopping rule GSL needed about 4 evaluations per
 * iteration (its line search brackets from a step guessed from the last
 * decrease) against 1.05 here, for similar iteration counts. Measured with
 * n = 20000, d = 64, K = 10, strongly correlated features, one thread, to
 * ||g||_inf <= 1e-6: lambda = 1e-4, GSL 2062 evaluations in 7.0 s, this
 * code 413 in 1.7 s; lambda = 1e-6, GSL 9390 in 34.7 s, this code 2269 in
 * 9.3 s (more than the default max_iter: such fits return converged = 0).
 * (GSL's bfgs2 also keeps a single (s, y) pair where L-BFGS keeps 10.) The
 * data term is evaluated in blocks of rows standardized into a small double
 * buffer (256 KB, kept in cache for the two GEMMs of the block), so the fit
 * never holds a double copy of X.
 *
 * Stopping: the fit has converged when the gradient's infinity norm (over W
 * and b) is <= tol, an ABSOLUTE tolerance (default 1e-6). The objective is a
 * mean over rows and the features are standardized, so the gradient's scale
 * does not depend on n or on the features' units, and an absolute tolerance
 * means the same at a cold and at a warm start. Otherwise the fit stops
 * after max_iter iterations (default 500) or when the line search can make
 * no more progress (rounding); converged is then 0 and the status is still
 * 0: the model is usable, the flag says how good it is.
 *
 * The fit is deterministic: no randomness, a fixed summation order.
 */
#ifndef SPIRAL_LOGREG_H
#define SPIRAL_LOGREG_H

#define LOGREG_DEFAULT_TOL 1e-6
#define LOGREG_DEFAULT_MAX_ITER 500

typedef struct {
    int d, K;
    double lambda;
    double *W;          /* (K, d), on standardized features; one allocation with b */
    double *b;          /* (K), = W + K * d */
    double *mean;       /* (d), training mean; one allocation with std */
    double *std;        /* (d), training std (1 for constant features), = mean + d */
    int iterations;     /* L-BFGS iterations of the last fit */
    int evaluations;    /* objective + gradient evaluations of the last fit */
    double objective;   /* f at the solution */
    double grad_norm;   /* infinity norm of the gradient at the solution */
    int converged;      /* grad_norm <= tol */
} LogReg;

/* Fits from W = 0 and b = the log class frequencies (the optimum of the
 * model without features). X (n, d) float row-major, y (n) in 0..K-1.
 * tol <= 0 and max_iter <= 0 select the defaults. m is overwritten (it must
 * not hold a model: free it first). Returns 0, or -1 with spiral_error for
 * n < 2, d < 1, K < 2, lambda < 0, labels out of range, a single class
 * present, non-finite features (naming row and column), out of memory. */
int logreg_fit(LogReg *m, const float *X, const int *y, int n, int d, int K, double lambda,
               double tol, int max_iter);

/* As logreg_fit, but starts from the parameters of init (same d and K, its
 * W and b are on standardized features; NULL = the cold start). init may
 * not be m. Used to warm-start a path of lambdas. */
int logreg_fit_from(LogReg *m, const LogReg *init, const float *X, const int *y, int n, int d,
                    int K, double lambda, double tol, int max_iter);

/* Predicted class (argmax, ties to the smaller class) of each row of X
 * (n, d), standardized with the model's mean and std; proba (n, K) gets the
 * softmax probabilities unless NULL. Returns 0, or -1 for non-finite
 * features (naming row and column) or out of memory. */
int logreg_predict(const LogReg *m, const float *X, int n, int *pred, double *proba);

/* Fraction of rows of X (n, d) whose prediction equals y (n). */
int logreg_accuracy(const LogReg *m, const float *X, const int *y, int n, double *accuracy);

/* Frees the model's arrays and zeroes it (NULL and a zeroed model are fine). */
void logreg_free(LogReg *m);

/* Deep copy of src into dst (dst must not hold a model). */
int logreg_copy(LogReg *dst, const LogReg *src);

/* The per-feature training mean and std (n >= 1 rows), as the fit computes
 * them: std_j = sqrt((1/n) sum_i (x_ij - mean_j)^2), and a feature whose
 * values are all equal gets mean_j = that value and std_j = 1. mean (d),
 * std (d). Returns -1 for non-finite features (naming row and column). */
int logreg_standardization(const float *X, int n, int d, double *mean, double *std);

/* The objective f and its gradient at W (K, d), b (K) on features
 * standardized with mean (d) and std (d) (both NULL: raw features). grad_W
 * (K, d) and grad_b (K) may both be NULL (value only). y must be in 0..K-1
 * (not checked here beyond the range). Used by the fitter's tests. */
int logreg_objective(const float *X, const int *y, int n, int d, int K, const double *mean,
                     const double *std, double lambda, const double *W, const double *b,
                     double *value, double *grad_W, double *grad_b);

/* Chooses lambda on a validation split: fits each of lambdas (n_lambdas) in
 * the order given on the training rows, each warm-started from the previous
 * solution, and keeps in best the model of the highest validation accuracy
 * (ties: the larger lambda). val_acc (n_lambdas) gets every validation
 * accuracy unless NULL. Default tol and max_iter. best must not hold a
 * model. Returns -1 with spiral_error on any failed fit. */
int logreg_fit_select(LogReg *best, const float *Xtr, const int *ytr, int ntr, const float *Xva,
                      const int *yva, int nva, int d, int K, const double *lambdas,
                      int n_lambdas, double *val_acc);

/* The L2 path a fit walked: every lambda fitted, in order, with its
 * validation accuracy, whether its fit converged, and the total objective
 * evaluations. */
#define LOGREG_PATH_MAX 32
typedef struct {
    int n;                              /* lambdas fitted */
    double lambdas[LOGREG_PATH_MAX];
    double val_acc[LOGREG_PATH_MAX];
    int converged[LOGREG_PATH_MAX];
    int evaluations;
} LogRegPath;

/* logreg_fit_select with the fit's tol and max_iter (<= 0: the defaults),
 * and a grid that extends itself downward: after the n_lambdas given
 * (strongest first), while the best validation accuracy is held by the
 * weakest lambda fitted so far (ties go to the stronger, so the weakest
 * must be strictly best) and lambda / 10 >= lambda_floor (with a relative
 * slack of 1e-9), lambda / 10 is fitted next, warm-started like the rest.
 * lambda_floor <= 0: no extension. The path stops at LOGREG_PATH_MAX
 * lambdas. *path (unless NULL) gets what was fitted. The probes' L2 path
 * (probes/probe_fit.c). */
int logreg_fit_path(LogReg *best, const float *Xtr, const int *ytr, int ntr, const float *Xva,
                    const int *yva, int nva, int d, int K, const double *lambdas, int n_lambdas,
                    double lambda_floor, double tol, int max_iter, LogRegPath *path);

#endif
