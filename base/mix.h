/*
 * mix.h: a 64-bit integer hash for seeds, data order and hash tables.
 */
#ifndef SPIRAL_MIX_H
#define SPIRAL_MIX_H

#include <stdint.h>

/* The splitmix64 finalizer: a bijection of 64-bit integers whose output
 * bits all depend on every input bit.
 *   x ^= x >> 30; x *= 0xbf58476d1ce4e5b9; x ^= x >> 27;
 *   x *= 0x94d049bb133111eb; x ^= x >> 31 */
static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* The splitmix64 generator's output for state x: mix64 of x advanced by
 * the golden-ratio increment 0x9e3779b97f4a7c15. */
static inline uint64_t splitmix64_at(uint64_t x) {
    return mix64(x + 0x9e3779b97f4a7c15ULL);
}

#endif
