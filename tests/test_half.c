/*
 * test_half.c: base/half.h's float <-> binary16 conversions against the
 * compiler's _Float16 casts (libgcc's soft-float routines on x86-64).
 *
 *  - floats_from_halves: every one of the 65536 halves gives the cast's float
 *    bit for bit (NaNs: a NaN of the same sign);
 *  - halves_from_floats: bit for bit the cast for every 509th float bit pattern
 *    (about 8 million, both signs), for every float where the rounding
 *    changes regime (the subnormal range down to below half the smallest
 *    subnormal, the normal range's bottom, the overflow threshold 65520),
 *    and for hand-picked values; every NaN input gives a NaN;
 *  - the round trip half -> float -> half is the identity on non-NaN halves;
 *  - an unaligned tail: arrays whose length is not a vector width.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "half.h"
#include "harness.h"

static uint16_t cast_half(float x) {
    _Float16 h = (_Float16)x;
    uint16_t u;
    memcpy(&u, &h, sizeof u);
    return u;
}

static int is_half_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

/* Counts the floats of bits first, first + stride, ... <= last whose half
 * differs from the cast's; reports the first. Converts in blocks through
 * halves_from_floats (the vectorized loop). */
static long mismatches(uint32_t first, uint32_t last, uint32_t stride, const char *what) {
    enum { BLOCK = 4099 };
    static float x[BLOCK];
    static uint16_t h[BLOCK];
    long bad = 0, seen = 0;
    uint64_t bits = first;
    while (bits <= last) {
        int n = 0;
        for (; n < BLOCK && bits <= last; n++, bits += stride) x[n] = float_from_bits((uint32_t)bits);
        halves_from_floats(h, x, (size_t)n);
        for (int i = 0; i < n; i++) {
            seen++;
            uint16_t want = cast_half(x[i]);
            int ok = isnan(x[i]) ? is_half_nan(h[i]) && (h[i] & 0x8000) == (want & 0x8000)
                                 : h[i] == want;
            if (!ok && bad++ == 0) {
                uint32_t u;
                memcpy(&u, &x[i], sizeof u);
                printf("  %s: float 0x%08x (%.9g): half 0x%04x, the cast gives 0x%04x\n", what,
                       u, x[i], h[i], want);
            }
        }
    }
    printf("halves_from_floats %s: %ld floats, %ld differ from the cast\n", what, seen, bad);
    return bad;
}

static void test_halves_from_floats(void) {
    CHECK(mismatches(0, 0xffffffffu, 509, "every 509th bit pattern") == 0, "strided sweep");
    /* subnormal halves and what rounds to them or to zero: |x| < 2^-14,
     * from 2^-26 (rounds to 0) up, both signs */
    CHECK(mismatches(0x32800000, 0x38800100, 29, "subnormal range") == 0, "subnormal range");
    CHECK(mismatches(0xb2800000, 0xb8800100, 29, "negative subnormal range") == 0,
          "negative subnormal range");
    CHECK(mismatches(0x477fe000, 0x47800100, 1, "overflow threshold") == 0, "overflow threshold");
    CHECK(mismatches(0xc77fe000, 0xc7800100, 1, "negative overflow threshold") == 0,
          "negative overflow threshold");
    CHECK(mismatches(0x7f800000, 0x7fffffff, 4093, "infinity and NaNs") == 0, "NaNs");
    const float values[] = {0.0f,      -0.0f,     1.0f,       -2.0f,        65504.0f,
                            65519.99f, 65520.0f,  1e9f,       0x1p-24f,     0x1p-25f,
                            0x1.8p-25f, 0x1.8p-24f, 0x1p-14f, 0x1.ff8p-15f, 0x1.ffcp-15f,
                            INFINITY,  -INFINITY, 0.1f,       3.14159265f};
    const uint16_t expected[] = {0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x7bff, 0x7c00, 0x7c00,
                                 0x0001, 0x0000, 0x0001, 0x0002, 0x0400, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x2e66,
                                 0x4248};
    int n = (int)(sizeof values / sizeof values[0]);
    uint16_t got[32];
    halves_from_floats(got, values, (size_t)n);
    for (int i = 0; i < n; i++)
        CHECK(got[i] == expected[i], "halves_from_floats(%.9g) = 0x%04x, expected 0x%04x",
              values[i], got[i], expected[i]);
}

static void test_floats_from_halves(void) {
    static uint16_t h[65536], back[65536];
    static float f[65536];
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    floats_from_halves(f, h, 65536);
    halves_from_floats(back, f, 65536);
    long bad = 0, trip = 0;
    for (int i = 0; i < 65536; i++) {
        _Float16 c;
        memcpy(&c, &h[i], sizeof c);
        float want = (float)c;
        int ok = is_half_nan(h[i]) ? isnan(f[i]) && signbit(f[i]) == signbit(want)
                                   : memcmp(&f[i], &want, sizeof want) == 0;
        if (!ok && bad++ == 0)
            printf("  floats_from_halves(0x%04x) = %.9g, the cast gives %.9g\n", h[i], f[i], want);
        if (!is_half_nan(h[i]) && back[i] != h[i] && trip++ == 0)
            printf("  round trip of 0x%04x gives 0x%04x\n", h[i], back[i]);
    }
    printf("floats_from_halves: 65536 halves, %ld differ from the cast, %ld round trips differ\n",
           bad, trip);
    CHECK(bad == 0, "floats_from_halves differs from the cast on %ld halves", bad);
    CHECK(trip == 0, "half -> float -> half changes %ld halves", trip);
    /* lengths that leave a tail after any vector width, at an odd offset */
    for (int n = 0; n < 40; n++) {
        float x[48], y[48];
        uint16_t hh[48];
        for (int i = 0; i < 48; i++) x[i] = (float)(i - 20) * 0.37f;
        memset(hh, 0xff, sizeof hh);
        halves_from_floats(hh + 1, x + 1, (size_t)n);
        floats_from_halves(y + 1, hh + 1, (size_t)n);
        CHECK(hh[0] == 0xffff && hh[n + 1] == 0xffff, "n = %d: wrote outside [1, %d]", n, n);
        for (int i = 1; i <= n; i++)
            CHECK(y[i] == (float)(_Float16)x[i], "n = %d, element %d: %g, expected %g", n, i,
                  y[i], (float)(_Float16)x[i]);
    }
}

int main(void) {
    test_halves_from_floats();
    test_floats_from_halves();
    return test_summary("test_half");
}
