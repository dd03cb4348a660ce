/*
 * clock.h: wall-clock seconds for rates, ETAs and benchmarks.
 */
#ifndef SPIRAL_CLOCK_H
#define SPIRAL_CLOCK_H

#include <time.h>

/* Seconds on the monotonic clock (differences only: its origin is
 * arbitrary). */
static inline double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#endif
