/*
 * probe_features.h: the design matrices of the probes: the features of one
 * site for every recorded window, from one of three sources.
 *
 *   recorded   the recorded states, (n_seq, rows, d) floats read from the
 *              store
 *   position   the one-hot of the row's index in its window, pooled into
 *              PROBE_POSITION_BUCKETS buckets for longer windows; never
 *              materialized: probe_features_gather builds it row by row
 *   random     the states of a randomly initialized model of the run's
 *              config on the same windows (probe_random.h), computed once
 *              for every site on first use
 *   lexical    the one-hot of the tokens at the row's position p and the
 *              k - 1 before it (k = the site's lexical_window): columns
 *              m * types + c(token at p - m) for m = 0..k-1, where c maps a
 *              token to its type (probe_lexical_types); a lag before the
 *              window start has no column set. Built row by row like
 *              position features.
 */
#ifndef SPIRAL_PROBE_FEATURES_H
#define SPIRAL_PROBE_FEATURES_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "probe_sites.h"
#include "recording_store.h"

#define PROBE_POSITION_BUCKETS 1024

/* Feature sources, in the order a site processes them. */
enum { SOURCE_RECORDED = 0, SOURCE_POSITION = 1, SOURCE_RANDOM = 2, SOURCE_LEXICAL = 3,
       SOURCE_COUNT = 4 };

/* At most this many lexical feature columns (window x types): the types
 * are cut to fit (probe_lexical_types). */
#define PROBE_LEXICAL_MAX_COLUMNS 2048

/* The features of one site for every sequence. */
typedef struct {
    const float *X;       /* (n_seq, rows, d), or NULL: one-hot features built per row */
    int rows, d;
    const int *pos;       /* (rows) token position of each row */
    const int *codes;     /* (n_seq, L) token type of each position: lexical features; or NULL */
    int L, window, types; /* lexical: window length, types (d = window * types) */
} Features;

/* Where features come from: the recording, and what the random model
 * needs. */
typedef struct {
    Store *store;
    const RecordingInfo *info;
    const SpiralConfig *cfg;
    const int *tokens;       /* (n_seq, L) the recorded windows */
    int n_seq, L;
    unsigned long random_seed;
    const int *codes;        /* (n_seq, L) token types for lexical features (probe_lexical_types) */
    int types;               /* number of token types */
    SiteInfo *sites;         /* every site: the random model's states are computed for all */
    int n_sites;
    FILE *random_file;       /* the random model's states, once computed */
} FeatureReader;

/* Loads the features of site from one source into *f; *X (caller frees)
 * holds them, (n_seq, rows, d) floats, or NULL for position features. */
int probe_features_load(FeatureReader *reader, const SiteInfo *site, int source, Features *f,
                        float **X);

/* The token types of the lexical control: the n_types most frequent tokens
 * of tokens (n) keep a type each (ties: the smaller token id), in order of
 * frequency; when more distinct tokens occur, n_types - 1 keep one and the
 * rest share type n_types - 1. n_types = min(distinct tokens,
 * max_types), at least 1. codes (n) gets each token's type. */
int probe_lexical_types(int *codes, int *n_types, const int *tokens, size_t n, int max_types);

/* Closes the reader's temporary file. */
void probe_features_close(FeatureReader *reader);

/* Copies the features of the given rows (index s * rows + r, n of them)
 * into out (n, f->d): recorded rows, the one-hot of the row's bucket, or
 * the one-hot of its lexical window. */
void probe_features_gather(float *out, const Features *f, const size_t *rows, int n);

#endif
