/*
 * synth_common.c: the random streams and the parameter reader shared by the
 * synthetic-language generators (see synth_common.h).
 *
 * The three generators once carried a copy each of this code; the copies
 * were identical but for the family name in the messages, which is now an
 * argument. The random-number algorithms are the reference ones, unchanged,
 * so datasets drawn before and after the merge are bit-identical.
 */
#include "synth_common.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "jsontext.h"
#include "mix.h"

/* ---- randomness: xoshiro256** seeded by splitmix64 ---- */

/* One splitmix64 step: advances *x and returns a well-mixed 64-bit value. */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t out = splitmix64_at(*x);
    *x += 0x9e3779b97f4a7c15ULL;
    return out;
}

void synth_rng_seed(SynthRng *rng, uint64_t seed, uint64_t stream) {
    uint64_t x = seed;
    x = splitmix64(&x) + stream;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

/* x rotated left by k bits, 0 < k < 64. */
static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman and Vigna). */
uint64_t synth_rng_next(SynthRng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Rejects draws at or above the largest multiple of n, so that x % n is
 * uniform. */
uint64_t synth_rng_below(SynthRng *rng, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = synth_rng_next(rng);
    while (x >= limit);
    return x % n;
}

/* (top 53 bits) * 2^-53. */
double synth_rng_uniform(SynthRng *rng) { return (double)(synth_rng_next(rng) >> 11) * 0x1.0p-53; }

/* (top 53 bits + 1/2) * 2^-53. */
double synth_rng_open01(SynthRng *rng) {
    return ((double)(synth_rng_next(rng) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* ---- parameters ---- */

/* Writes "a, b, c or d" (the n field names) into buf. */
static void list_fields(char *buf, size_t cap, const char *const *fields, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t f = 0; f < n && used < cap; f++) {
        const char *separator = f == 0 ? "" : f + 1 == n ? " or " : ", ";
        int written = snprintf(buf + used, cap - used, "%s%s", separator, fields[f]);
        if (written < 0) break;
        used += (size_t)written;
    }
}

/* Parses the JSON text into an object; NULL or "" is the empty object. */
static int parse_object(const char *family, const char *params_json, json_t **root) {
    json_error_t error;
    if (!params_json || !*params_json) {
        *root = json_object();
        return *root ? 0 : spiral_error("%s: out of memory", family);
    }
    *root = json_loads(params_json, JSON_REJECT_DUPLICATES, &error);
    if (!*root)
        return spiral_error("%s.params: expected a JSON object, got invalid JSON (line %d: %s)",
                            family, error.line, error.text);
    if (!json_is_object(*root)) {
        char got[64];
        spiral_error("%s.params: expected a JSON object, got %s", family,
                     json_describe(*root, got, sizeof got));
        json_decref(*root);
        return -1;
    }
    return 0;
}

/* Checks that every key of the object is one of the n fields. */
static int check_fields(const char *family, json_t *root, const char *const *fields, size_t n) {
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        size_t f = 0;
        while (f < n && strcmp(key, fields[f]) != 0) f++;
        if (f == n) {
            char expected[1024];
            list_fields(expected, sizeof expected, fields, n);
            return spiral_error("%s.%.100s: unknown field (expected %s)", family, key, expected);
        }
    }
    return 0;
}

int synth_params_open(SynthParams *params, const char *family, const char *const *fields,
                      size_t n_fields, const char *params_json) {
    json_t *root;
    params->family = family;
    params->root = NULL;
    if (parse_object(family, params_json, &root)) return -1;
    if (check_fields(family, root, fields, n_fields)) {
        json_decref(root);
        return -1;
    }
    params->root = root;
    return 0;
}

void synth_params_close(SynthParams *params) {
    json_decref(params->root);
    params->root = NULL;
}

int synth_params_int(const SynthParams *params, const char *name, long long min, long long max,
                     long long *out) {
    const json_t *value = json_object_get(params->root, name);
    char got[64];
    if (!value) return 0;
    if (!json_is_integer(value) || json_integer_value(value) < min ||
        json_integer_value(value) > max)
        return spiral_error("%s.%s: expected an integer in [%lld, %lld], got %s", params->family,
                            name, min, max, json_describe(value, got, sizeof got));
    *out = (long long)json_integer_value(value);
    return 0;
}

int synth_params_double(const SynthParams *params, const char *name, double min, int min_open,
                        double max, int max_open, double *out) {
    const json_t *value = json_object_get(params->root, name);
    char got[64];
    if (!value) return 0;
    double x = json_is_number(value) ? json_number_value(value) : NAN;
    int ok = json_is_number(value) && isfinite(x) && (min_open ? x > min : x >= min) &&
             (max_open ? x < max : x <= max);
    if (!ok)
        return spiral_error("%s.%s: expected a number in %c%g, %g%c, got %s", params->family,
                            name, min_open ? '(' : '[', min, max, max_open ? ')' : ']',
                            json_describe(value, got, sizeof got));
    *out = x;
    return 0;
}

int synth_params_bool(const SynthParams *params, const char *name, int *out) {
    const json_t *value = json_object_get(params->root, name);
    char got[64];
    if (!value) return 0;
    if (!json_is_boolean(value))
        return spiral_error("%s.%s: expected true or false, got %s", params->family, name,
                            json_describe(value, got, sizeof got));
    *out = json_is_true(value);
    return 0;
}

/* Multiplies up while x * base <= cap, checked by division first. */
long long synth_power_capped(long long base, int exponent, long long cap) {
    long long x = 1;
    for (int i = 0; i < exponent; i++) {
        if (x > cap / base) return cap + 1;
        x *= base;
    }
    return x;
}
