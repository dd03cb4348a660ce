/*
 * fastmath.h: e^x in float, written so that the compiler can vectorize the
 * loops that call it (softmax, the SwiGLU gate), which libm's expf, an
 * opaque call, prevents.
 */
#ifndef SPIRAL_FASTMATH_H
#define SPIRAL_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* e^x in float for vectorized loops: x = n ln2 + r with
 * |r| <= ln2 / 2, e^r by its Taylor polynomial to degree 7 (truncation
 * below 6e-9 relative), 2^n through the exponent bits. Relative error about
 * 2 float ulps; x is clamped to [-87.3, 88.3] (e^x stays normal and finite);
 * NaN stays NaN. */
static inline float exp_float(float x) {
    x = x < -87.3f ? -87.3f : x;
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
    return p * scale;
}

#endif
