/*
 * synth_common.h: what the synthetic-language generators (synth_dyck.c,
 * synth_rhm.c, synth_pcfg.c) share, so that each holds only its language.
 *
 * Randomness. SynthRng is xoshiro256** (Blackman and Vigna) seeded by
 * splitmix64 from a (seed, stream) pair: the seed is mixed first, the stream
 * added, and the four state words drawn from splitmix64. Each generator uses
 * one stream per split (and stream 0 of grammar_seed for a grammar), so
 * changing the size of one split leaves the documents of the others as they
 * were. Every stored dataset was drawn with exactly these algorithms and
 * seeding, so changing any of them changes every dataset.
 *
 * Parameters. Every family takes a JSON object of optional fields. A
 * SynthParams reads one: synth_params_open parses the text and rejects
 * unknown fields, synth_params_int / _double / _bool read one field each
 * with a range check (a missing field leaves the default in *out), and
 * synth_params_close frees it. Messages name the family and the field:
 *   "<family>.params: expected a JSON object, got ..."
 *   "<family>.<key>: unknown field (expected a, b or c)"
 *   "<family>.<field>: expected an integer in [min, max], got ..."
 */
#ifndef SPIRAL_SYNTH_COMMON_H
#define SPIRAL_SYNTH_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* ---- randomness ---- */

/* The state of one xoshiro256** stream. */
typedef struct {
    uint64_t s[4];
} SynthRng;

/* Seeds the stream of (seed, stream) through splitmix64, so that
 * neighbouring seeds and streams give unrelated states. */
void synth_rng_seed(SynthRng *rng, uint64_t seed, uint64_t stream);

/* The next 64 random bits. */
uint64_t synth_rng_next(SynthRng *rng);

/* A uniform integer in [0, n), n >= 1, without modulo bias (rejection). */
uint64_t synth_rng_below(SynthRng *rng, uint64_t n);

/* A uniform double in [0, 1): the top 53 bits of one draw. */
double synth_rng_uniform(SynthRng *rng);

/* A uniform double in (0, 1): the top 53 bits offset by half a step, so
 * log of it is finite. */
double synth_rng_open01(SynthRng *rng);

/* ---- parameters ---- */

/* A family's parameter object being read. */
typedef struct {
    const char *family;    /* "dyck": the prefix of every message */
    struct json_t *root;   /* the parsed object (jansson), NULL once closed */
} SynthParams;

/* Parses params_json (NULL or "" = {}) into *params and checks that every
 * key is one of fields (n_fields names, listed in this order in the
 * message). Returns 0, or -1 with a message (nothing to close then). */
int synth_params_open(SynthParams *params, const char *family, const char *const *fields,
                      size_t n_fields, const char *params_json);

/* Frees the parsed object. */
void synth_params_close(SynthParams *params);

/* Reads the integer field `name` in [min, max] into *out if present.
 * Returns 0 or -1 ("<family>.<name>: expected an integer in [min, max],
 * got ..."). */
int synth_params_int(const SynthParams *params, const char *name, long long min, long long max,
                     long long *out);

/* Reads the number field `name` into *out if present; it must be finite and
 * lie in [min, max], the lower bound excluded if min_open and the upper
 * bound excluded if max_open. Returns 0 or -1 ("<family>.<name>: expected a
 * number in [min, max), got ..."). */
int synth_params_double(const SynthParams *params, const char *name, double min, int min_open,
                        double max, int max_open, double *out);

/* Reads the boolean field `name` into *out (1 or 0) if present. Returns 0
 * or -1 ("<family>.<name>: expected true or false, got ..."). */
int synth_params_bool(const SynthParams *params, const char *name, int *out);

/* base^exponent for base >= 1, saturated at cap + 1 (so "> cap" stays
 * exact), for range checks that must not overflow. */
long long synth_power_capped(long long base, int exponent, long long cap);

#endif
