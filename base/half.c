/*
 * half.c: float32 <-> binary16 conversion of arrays (see half.h).
 */
#include "half.h"

void halves_from_floats(uint16_t *dst, const float *src, size_t count) {
    for (size_t i = 0; i < count; i++) dst[i] = float_to_half(src[i]);
}

void floats_from_halves(float *dst, const uint16_t *src, size_t count) {
    for (size_t i = 0; i < count; i++) dst[i] = half_to_float(src[i]);
}
