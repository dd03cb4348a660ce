/*
 * reduce.h: sums, dot products and maxima of one row, written for speed
 * and accuracy. Each keeps four interleaved partials (element c goes to
 * partial c mod 4), combined at the end: one chain of dependent additions
 * would wait on the adder's latency at every element, and four chains let
 * the compiler vectorize. The sums accumulate in double, so a float build
 * loses no more than the rounding of the result. The order of additions
 * depends only on n, so results are reproducible.
 */
#ifndef SPIRAL_REDUCE_H
#define SPIRAL_REDUCE_H

#include "real.h"

/* sum_c x_c in double. */
static inline double sum_double(const real *x, int n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int c = 0;
    for (; c + 4 <= n; c += 4) {
        s0 += x[c];
        s1 += x[c + 1];
        s2 += x[c + 2];
        s3 += x[c + 3];
    }
    for (; c < n; c++) s0 += x[c];
    return (s0 + s1) + (s2 + s3);
}

/* sum_c a_c b_c in double. */
static inline double dot_double(const real *a, const real *b, int n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int c = 0;
    for (; c + 4 <= n; c += 4) {
        s0 += (double)a[c] * b[c];
        s1 += (double)a[c + 1] * b[c + 1];
        s2 += (double)a[c + 2] * b[c + 2];
        s3 += (double)a[c + 3] * b[c + 3];
    }
    for (; c < n; c++) s0 += (double)a[c] * b[c];
    return (s0 + s1) + (s2 + s3);
}

/* max_c x_c (n >= 1). */
static inline real max_real(const real *x, int n) {
    real m0 = x[0], m1 = x[0], m2 = x[0], m3 = x[0];
    int c = 0;
    for (; c + 4 <= n; c += 4) {
        m0 = x[c] > m0 ? x[c] : m0;
        m1 = x[c + 1] > m1 ? x[c + 1] : m1;
        m2 = x[c + 2] > m2 ? x[c + 2] : m2;
        m3 = x[c + 3] > m3 ? x[c + 3] : m3;
    }
    for (; c < n; c++) m0 = x[c] > m0 ? x[c] : m0;
    m0 = m1 > m0 ? m1 : m0;
    m2 = m3 > m2 ? m3 : m2;
    return m2 > m0 ? m2 : m0;
}

#endif
