/*
 * half.h: arrays of float32 to IEEE binary16 (half precision) and back, for
 * recordings stored in f16.
 *
 * The conversions are written with integer and float operations that the
 * compiler vectorizes; the element-by-element (_Float16) cast goes through
 * a library call per element on x86-64 without F16C (about 10 ns each),
 * which made an f16 recording slower to store than a float32 one.
 */
#ifndef SPIRAL_HALF_H
#define SPIRAL_HALF_H

#include <stddef.h>
#include <stdint.h>

/* dst[i] = src[i] rounded to the nearest half, ties to even; magnitudes from
 * 65520 up become infinity, NaN becomes a quiet NaN of the same sign (its
 * payload is not kept). Bit for bit the (_Float16) cast for every non-NaN
 * input. */
void half_from_float(uint16_t *dst, const float *src, size_t count);

/* dst[i] = src[i] widened to float (exact; NaN payloads kept). */
void float_from_half(float *dst, const uint16_t *src, size_t count);

#endif
