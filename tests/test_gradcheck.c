/*
 * test_gradcheck.c: the whole model's gradient against central finite
 * differences, for every fixture (spiral with every down/up/topology option,
 * g in {1,2,3,4,8} with offsets and no-overlap shifts, L = 19 a multiple of
 * none of them, looped and dense baselines, tied and untied head), and for
 * the mesh topology's fixtures with random non-zero routers.
 *
 * Built twice: with real = double (test_gradcheck_f64: every parameter is
 * checked, eps 1e-5, tolerance 1e-6) and real = float (test_gradcheck:
 * eps 1e-2, tolerance 3e-2, catching float-only mistakes). The error of a
 * tensor is max |analytic - numeric| / max |gradient|, the max taken over the
 * tensor (floored at 1e-3 of the model's largest gradient so that tensors with
 * almost no gradient do not divide by noise). It is printed for every tensor.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "fixtures.h"
#include "harness.h"
#include "model.h"

#ifdef SPIRAL_DOUBLE
static const double EPS = 1e-5, TOLERANCE = 1e-6;
#else
static const double EPS = 1e-2, TOLERANCE = 3e-2;
#endif

enum { BATCH = 2, LENGTH = 19 };

/* Loss of the model at its current parameters. */
static double loss_at(Model *m, const int *tokens, const int *targets) {
    if (model_forward(m, tokens, targets, BATCH, LENGTH, NULL)) {
        fprintf(stderr, "forward failed: %s\n", spiral_last_error());
        exit(2);
    }
    return m->loss;
}

static void check_fixture(const Fixture *fx) {
    Model m;
    int tokens[BATCH * LENGTH], targets[BATCH * LENGTH];
    CHECK(model_build(&m, &fx->cfg) == 0, "%s: build: %s", fx->name, spiral_last_error());
    fixture_random_weights(&m, 7);
    fixture_tokens(tokens, BATCH * LENGTH, fx->cfg.vocab_size, 11);
    for (int b = 0; b < BATCH; b++)
        for (int i = 0; i < LENGTH; i++)
            targets[b * LENGTH + i] = i + 1 < LENGTH ? tokens[b * LENGTH + i + 1] : -1;
    targets[5] = -1; /* an ignored position inside the sequence */

    loss_at(&m, tokens, targets);
    model_zero_grad(&m);
    CHECK(model_backward(&m) == 0, "%s: backward: %s", fx->name, spiral_last_error());
    real *analytic = malloc(m.layout.n_params * sizeof(real));
    memcpy(analytic, m.grads, m.layout.n_params * sizeof(real));
    double global_max = 0;
    for (size_t i = 0; i < m.layout.n_params; i++)
        global_max = fmax(global_max, fabs((double)analytic[i]));
    CHECK(global_max > 0, "%s: gradient is identically zero", fx->name);

    printf("%s\n", fx->name);
    double worst = 0;
    for (int ti = 0; ti < m.layout.n_tensors; ti++) {
        const ParamTensor *t = &m.layout.tensors[ti];
        double max_err = 0, max_grad = 0;
        for (size_t k = 0; k < t->numel; k++) {
            real *p = m.params + t->offset + k;
            real saved = *p;
            *p = (real)(saved + EPS);
            double plus = loss_at(&m, tokens, targets);
            *p = (real)(saved - EPS);
            double minus = loss_at(&m, tokens, targets);
            *p = saved;
            double numeric = (plus - minus) / (2 * EPS);
            double a = analytic[t->offset + k];
            max_err = fmax(max_err, fabs(a - numeric));
            max_grad = fmax(max_grad, fmax(fabs(a), fabs(numeric)));
        }
        double rel = max_err / fmax(max_grad, 1e-3 * global_max);
        worst = fmax(worst, rel);
        printf("  %-28s max rel error %.2e (max |grad| %.2e)\n", t->name, rel, max_grad);
        CHECK(rel <= TOLERANCE, "%s: %s: max relative error %.3e > %.1e", fx->name, t->name, rel,
              TOLERANCE);
    }
    printf("  worst %.2e\n", worst);
    free(analytic);
    model_free(&m);
}

int main(int argc, char **argv) {
    Fixture fixtures[FIXTURE_COUNT];
    int n = fixtures_all(fixtures);
    for (int i = 0; i < n; i++) check_fixture(&fixtures[i]);
    /* topology mesh, routers random and non-zero (fixture_random_weights):
     * the routers' gradients and every gradient that flows through the
     * memory, on spiral (offsets, no-overlap shifts, selfagg + alloc),
     * looped and dense schedules */
    Fixture mesh[FIXTURE_MESH_COUNT];
    n = fixtures_mesh(mesh);
    for (int i = 0; i < n; i++) check_fixture(&mesh[i]);
    return test_summary(argv[0]);
}
