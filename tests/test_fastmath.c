/*
 * test_fastmath.c: the float e^x and log x of base/fastmath.h against
 * libm in double.
 *
 *  - exp_float: within 3 float ulps of exp on a grid of 2 million points
 *    over [-87, 88]; NaN stays NaN; 0 below -87.3 and +inf above 88.3;
 *    e^0 = 1 exactly;
 *  - log_float: within 2.5e-7 relative of log for every 16th float in
 *    [FLT_MIN, 1] (about 66 million values); log 1 = 0; 0 gives a finite
 *    value, so 0 log 0 = 0.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fastmath.h"
#include "harness.h"

static void test_exp_float(void) {
    double worst = 0, worst_x = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = (float)(-87.0 + 175.0 * i / 2000000.0);
        double exact = exp((double)x), got = exp_float(x);
        double ulps = fabs(got - exact) / (exact * 0x1p-23);
        if (ulps > worst) {
            worst = ulps;
            worst_x = x;
        }
    }
    printf("exp_float: worst %.2f ulp at x = %.6g over [-87, 88]\n", worst, worst_x);
    CHECK(worst <= 3, "exp_float: %.2f ulps from exp at x = %g", worst, worst_x);
    CHECK(isnan(exp_float(NAN)), "exp_float: NaN does not stay NaN");
    CHECK(exp_float(-87.4f) == 0 && exp_float(-1000.0f) == 0 && exp_float(-INFINITY) == 0,
          "exp_float below -87.3: %g, %g, %g, expected 0", exp_float(-87.4f),
          exp_float(-1000.0f), exp_float(-INFINITY));
    CHECK(isinf(exp_float(88.4f)) && isinf(exp_float(1000.0f)) && isinf(exp_float(INFINITY)),
          "exp_float above 88.3: %g, %g, %g, expected +inf", exp_float(88.4f),
          exp_float(1000.0f), exp_float(INFINITY));
    /* the case the out-of-range results exist for: 1 / (1 + e^x) at both ends */
    CHECK(1 / (1 + exp_float(1000.0f)) == 0 && 1 / (1 + exp_float(-1000.0f)) == 1,
          "sigmoid through exp_float at +-1000: %g, %g", 1 / (1 + exp_float(1000.0f)),
          1 / (1 + exp_float(-1000.0f)));
    CHECK(exp_float(0.0f) == 1.0f, "exp_float(0) = %.9g", exp_float(0.0f));
}

static void test_log_float(void) {
    uint32_t first, last;
    float lo = FLT_MIN, hi = 1.0f;
    memcpy(&first, &lo, sizeof first);
    memcpy(&last, &hi, sizeof last);
    double worst = 0, worst_x = 0;
    for (uint32_t bits = first; bits <= last; bits += 16) {
        float x;
        memcpy(&x, &bits, sizeof x);
        double exact = log((double)x);
        if (exact == 0) continue;
        double rel = fabs(log_float(x) - exact) / fabs(exact);
        if (rel > worst) {
            worst = rel;
            worst_x = x;
        }
    }
    printf("log_float: worst relative error %.3g at x = %.9g over [FLT_MIN, 1]\n", worst, worst_x);
    CHECK(worst <= 2.5e-7, "log_float: relative error %.3g at x = %.9g", worst, worst_x);
    CHECK(log_float(1.0f) == 0.0f, "log_float(1) = %.9g", log_float(1.0f));
    CHECK(isfinite(log_float(0.0f)) && 0.0f * log_float(0.0f) == 0.0f,
          "log_float(0) = %g: 0 log 0 must be 0", log_float(0.0f));
}

int main(int argc, char **argv) {
    test_exp_float();
    test_log_float();
    return test_summary("test_fastmath");
}
