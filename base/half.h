/*
 * half.h: float32 <-> IEEE binary16 (half precision), one value or whole
 * arrays: recordings stored in f16, safetensors files with F16 tensors.
 *
 * Both directions work on the bit patterns: a half has 1 sign bit, 5
 * exponent bits (bias 15) and 10 mantissa bits; a float 1, 8 (bias 127) and
 * 23. Each value takes one path chosen by a comparison (no branch on the
 * data), so loops over arrays vectorize; the element-by-element (_Float16)
 * cast is a library call per element on x86-64 without F16C (about 10 ns
 * each against 1.2 ns here), which made an f16 recording slower to store
 * than a float32 one.
 */
#ifndef SPIRAL_HALF_H
#define SPIRAL_HALF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The bits of a float, and the float of some bits. */
static inline uint32_t float_to_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static inline float float_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* One float to half, round to nearest even. With a = |x|'s bits:
 *   a >= 2^16 (0x47800000), inf or NaN: 0x7c00 (inf) or 0x7e00 (NaN);
 *   a >= 2^-14 (0x38800000), normal: rebias the exponent (127 - 15), then
 *     drop the 13 low mantissa bits rounding to even: add 0xfff plus the
 *     lowest kept bit, shift. A carry out of the mantissa raises the
 *     exponent, which is right, and from 65520 up reaches 0x7c00 (inf);
 *   a < 2^-14, subnormal or zero: a + 0.5 in float arithmetic rounds a to a
 *     multiple of 2^-24 (the float ulp on [0.5, 1), the half's subnormal
 *     step) by the hardware's round to nearest even; the bits above 0.5's
 *     are the half (0x400, the smallest normal, when it rounds up). */
static inline uint16_t float_to_half(float x) {
    uint32_t u = float_to_bits(x);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7fffffff;
    uint32_t special = a > 0x7f800000 ? 0x7e00 : 0x7c00;
    uint32_t normal = (a - ((127 - 15) << 23) + 0xfff + ((a >> 13) & 1)) >> 13;
    uint32_t small = float_to_bits(float_from_bits(a) + 0.5f) - 0x3f000000;
    uint32_t h = a >= 0x47800000 ? special : a >= 0x38800000 ? normal : small;
    return (uint16_t)(sign | h);
}

/* One half to float. With m = the half's exponent and mantissa bits moved
 * to a float's places (<< 13) and the exponent rebiased (+ 112 << 23):
 *   exponent 31 (inf, NaN): rebias once more, to the float's 255;
 *   exponent 0 (zero, subnormal): the bits read as 2^-14 * (1 + f / 1024)
 *     once the exponent is raised by one; subtracting 2^-14 leaves
 *     2^-14 * f / 1024, the half's value, exactly;
 *   otherwise m is the float. */
static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t m = (uint32_t)(h & 0x7fff) << 13;
    uint32_t exponent = m & 0x0f800000;
    m += (127 - 15) << 23;
    uint32_t special = m + ((128 - 16) << 23);
    float tiny = float_from_bits(m + (1u << 23)) - float_from_bits(113u << 23);
    uint32_t out = exponent == 0x0f800000 ? special : exponent == 0 ? float_to_bits(tiny) : m;
    return float_from_bits(sign | out);
}

/* dst[i] = float_to_half(src[i]): rounded to the nearest half, ties to
 * even; magnitudes from 65520 up become infinity, NaN a quiet NaN of the
 * same sign (its payload is not kept). Bit for bit the (_Float16) cast for
 * every non-NaN input. */
void halves_from_floats(uint16_t *dst, const float *src, size_t count);

/* dst[i] = half_to_float(src[i]), exact (NaN payloads kept). */
void floats_from_halves(float *dst, const uint16_t *src, size_t count);

#endif
