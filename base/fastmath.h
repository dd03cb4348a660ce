/*
 * fastmath.h: e^x and log x in float, written so that the compiler can
 * vectorize the loops that call them (softmax, the SwiGLU gate, the entropy
 * of attention rows), which libm's expf and logf, opaque calls, prevent.
 */
#ifndef SPIRAL_FASTMATH_H
#define SPIRAL_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^x in float for vectorized loops: x = n ln2 + r with |r| <= ln2 / 2,
 * e^r by its Taylor polynomial to degree 7 (truncation below 6e-9
 * relative), 2^n through the exponent bits. Within 1 float ulp of e^x on
 * [-87.3, 88.3]; 0 below (where e^x < 1.2e-38), +inf above; NaN stays NaN.
 * The out-of-range results are chosen after the polynomial, from the
 * argument, so that a compiler that evaluates each case of the clamp
 * separately (GCC does, when vectorizing) meets only 0 and inf there: a
 * clamped value such as e^88.3 would turn 1 / (1 + e^x) into a subnormal,
 * which costs x86 about a hundred cycles per operation. */
static inline float exp_float(float x_in) {
    float x = x_in < -87.3f ? -87.3f : x_in;
    x = x > 88.3f ? 88.3f : x;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504f + shifter;
    float n = t - shifter;
    float r = x - n * 0.693359375f; /* ln 2 in two parts (Cody and Waite) */
    r = r - n * -2.12194440e-4f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t t_bits, scale_bits;
    memcpy(&t_bits, &t, sizeof t_bits);
    scale_bits = (t_bits - 0x4B400000u + 127u) << 23; /* (n + 127) << 23 */
    float scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    float result = p * scale;
    result = x_in < -87.3f ? 0.0f : result;
    return x_in > 88.3f ? INFINITY : result;
}

/* log x for a probability 0 < x <= 1 in float, within 2.1e-7 relative of
 * log x (about 2 float ulps; checked against log for every float in
 * [FLT_MIN, 1]): with x = 2^e z, z in [0.6992, 1.3984),
 *   log x = e log 2 + 2 atanh(s),  s = (z - 1) / (z + 1),  |s| < 0.18,
 *   2 atanh(s) = 2 (s + s^3/3 + s^5/5 + s^7/7 + s^9/9) + O(s^11).
 * e and z come from the bits: subtracting the bits of 0.6992 (0x3f330000)
 * leaves e in the exponent field (arithmetic shift, as GCC and Clang do), and
 * removing that exponent from x leaves z. x = 0 gives -88.03 (finite, so
 * 0 log 0 = 0); a subnormal x gives about -88 (its p log p is below 1e-36). */
static inline float log_float(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint32_t offset = bits - 0x3f330000u;
    int32_t e = (int32_t)offset >> 23;
    uint32_t z_bits = bits - (offset & 0xff800000u);
    float z;
    memcpy(&z, &z_bits, sizeof z);
    float s = (z - 1.0f) / (z + 1.0f), s2 = s * s;
    float series = s * (2.0f + s2 * (2.0f / 3 + s2 * (2.0f / 5 + s2 * (2.0f / 7 + s2 * (2.0f / 9)))));
    return (float)e * 0.6931471806f + series;
}

#endif
