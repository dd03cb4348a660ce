/*
 * probe_fit.c: one probe, from per-position labels and a site's features
 * to its test metrics (see probe_fit.h and probe_run.h).
 */
#include "probe_fit.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "logreg.h"
#include "probe_rows.h"
#include "probe_stats.h"

#define PROBE_N_LAMBDAS 4

/* The L2 grid, strongest first: each fit warm-starts the next, and ties in
 * validation accuracy go to the stronger. While the weakest lambda fitted
 * is the best on validation, the grid goes on down by factors of 10 to
 * PROBE_L2_FLOOR (logreg_fit_path). */
static const double probe_lambdas[PROBE_N_LAMBDAS] = {1e-1, 1e-2, 1e-3, 1e-4};

/* ||grad f||_inf at the model's solution on the training rows, recomputed
 * from the objective (the fitter's claim checked independently). */
static int verified_grad_norm(const LogReg *m, const float *X, const int *y, int n,
                              double *norm) {
    size_t p = (size_t)m->K * m->d + m->K;
    double *grad = malloc(p * sizeof *grad), value;
    if (!grad) return spiral_error("out of memory for a gradient");
    int status = logreg_objective(X, y, n, m->d, m->K, m->mean, m->std, m->lambda, m->W, m->b,
                                  &value, grad, grad + (size_t)m->K * m->d);
    *norm = 0;
    for (size_t i = 0; status == 0 && i < p; i++) *norm = fmax(*norm, fabs(grad[i]));
    free(grad);
    return status;
}

int probe_fit_one(const ProbeShared *sh, const Features *f, const int *labels, ProbeResult *res) {
    int n_rows = sh->n_seq * f->rows, d = f->d, status = -1;
    size_t *rows = malloc((size_t)n_rows * sizeof *rows);  /* by split: train, val, test */
    size_t *chosen = NULL;
    int *y = NULL, *pred = NULL, *groups = NULL, *class_of = NULL;
    float *X = NULL;
    LogReg model = {0};
    gsl_rng *rng = NULL;
    if (!rows) return spiral_error("out of memory for %d rows", n_rows);
    /* labelled rows of each split, in (sequence, row) order */
    int count[3] = {0, 0, 0}, max_value = -1;
    for (int pass = 0; pass < 2; pass++) {
        int fill[3] = {0, count[0], count[0] + count[1]};
        for (int s = 0; s < sh->n_seq; s++) {
            int split = sh->seq_split[s];
            for (int r = 0; r < f->rows; r++) {
                int v = row_label(labels, sh->L, f->pos, s, r);
                if (v < 0) continue;
                if (pass == 0) {
                    count[split]++;
                    if (v > max_value) max_value = v;
                } else {
                    rows[fill[split]++] = (size_t)s * f->rows + r;
                }
            }
        }
    }
    if (count[0] < 1 || count[1] < 1 || count[2] < 1) {
        spiral_error("too few labelled rows: %d train, %d validation, %d test (record more "
                     "sequences)", count[0], count[1], count[2]);
        goto done;
    }
    /* a subsample of the training rows, order kept */
    int ntr = count[0], nva = count[1], nte = count[2];
    size_t *train = rows, *val = rows + count[0], *test = val + count[1];
    if (ntr > sh->max_train) {
        chosen = malloc((size_t)sh->max_train * sizeof *chosen);
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!chosen || !rng) {
            spiral_error("out of memory subsampling %d rows", ntr);
            goto done;
        }
        gsl_rng_set(rng, sh->seed + 1);
        gsl_ran_choose(rng, chosen, (size_t)sh->max_train, train, (size_t)ntr, sizeof *train);
        train = chosen;
        ntr = sh->max_train;
    }
    /* classes renumbered 0..K-1 over the values the rows hold */
    class_of = malloc(((size_t)max_value + 1) * sizeof *class_of);
    int n = ntr + nva + nte;
    y = malloc((size_t)n * sizeof *y);
    pred = malloc((size_t)nte * sizeof *pred);
    groups = malloc((size_t)nte * sizeof *groups);
    X = malloc((size_t)n * d * sizeof *X);
    if (!class_of || !y || !pred || !groups || !X) {
        spiral_error("out of memory for %d rows x %d features", n, d);
        goto done;
    }
    for (int v = 0; v <= max_value; v++) class_of[v] = -1;
    size_t *parts[3] = {train, val, test};
    int sizes[3] = {ntr, nva, nte};
    for (int p = 0, at = 0; p < 3; p++)
        for (int i = 0; i < sizes[p]; i++, at++) {
            size_t row = parts[p][i];
            y[at] = row_label(labels, sh->L, f->pos, (int)(row / f->rows), (int)(row % f->rows));
            class_of[y[at]] = 0;
        }
    int K = 0;
    for (int v = 0; v <= max_value; v++)
        if (class_of[v] == 0) class_of[v] = K++;
    for (int i = 0; i < n; i++) y[i] = class_of[y[i]];
    for (int i = 0; i < nte; i++) groups[i] = (int)(test[i] / f->rows);
    float *Xtr = X, *Xva = X + (size_t)ntr * d, *Xte = Xva + (size_t)nva * d;
    int *ytr = y, *yva = y + ntr, *yte = yva + nva;
    probe_features_gather(Xtr, f, train, ntr);
    probe_features_gather(Xva, f, val, nva);
    probe_features_gather(Xte, f, test, nte);

    int train_classes = 0, first = ytr[0];
    for (int i = 0; i < ntr && train_classes < 2; i++) train_classes = ytr[i] != first ? 2 : 1;
    if (train_classes < 2) {
        /* one training class: the likelihood has no finite optimum; the
         * probe is the constant predictor of that class */
        for (int i = 0; i < nte; i++) pred[i] = first;
        res->l2 = NAN;
        res->iterations = 0;
        res->evaluations = 0;
        res->grad_norm = 0;
        res->converged = 1;
    } else {
        LogRegPath path;
        if (logreg_fit_path(&model, Xtr, ytr, ntr, Xva, yva, nva, d, K, probe_lambdas,
                            PROBE_N_LAMBDAS, PROBE_L2_FLOOR, sh->tol, sh->max_iter, &path))
            goto done;
        res->evaluations = path.evaluations;
        if (logreg_predict(&model, Xte, nte, pred, NULL) ||
            logreg_predict(&model, Xte, nte, pred, NULL) ||
            verified_grad_norm(&model, Xtr, ytr, ntr, &res->grad_norm))
            goto done;
        res->l2 = model.lambda;
        res->iterations = model.iterations;
        res->converged = res->grad_norm <= sh->tol;
    }
    if (probe_accuracy(yte, pred, nte, &res->accuracy) ||
        probe_macro_f1(yte, pred, nte, K, &res->macro_f1) ||
        probe_majority_baseline(ytr, ntr, yte, nte, K, NULL, &res->majority) ||
        probe_bootstrap_ci(yte, pred, nte, groups, 0, sh->seed + 4, &res->ci_lo, &res->ci_hi))
        goto done;
    /* the outcome per test sequence (rows are in sequence order) */
    int n_groups = 0;
    for (int i = 0; i < nte; i++) n_groups += i == 0 || groups[i] != groups[i - 1];
    int *counts = calloc((size_t)n_groups * 3, sizeof *counts);
    if (!counts) {
        spiral_error("out of memory for %d test sequences", n_groups);
        goto done;
    }
    for (int i = 0, g = -1; i < nte; i++) {
        if (i == 0 || groups[i] != groups[i - 1]) counts[3 * ++g] = groups[i];
        counts[3 * g + 1] += pred[i] == yte[i];
        counts[3 * g + 2]++;
    }
    res->test_counts = counts;
    res->n_test_groups = n_groups;
    res->n_train = ntr;
    res->n_val = nva;
    res->n_test = nte;
    res->n_classes = K;
    res->n_features = d;
    status = 0;
done:
    logreg_free(&model);
    if (rng) gsl_rng_free(rng);
    free(rows);
    free(chosen);
    free(y);
    free(pred);
    free(groups);
    free(class_of);
    free(X);
    return status;
}
