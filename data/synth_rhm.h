/*
 * synth_rhm.h: the Random Hierarchy Model (Cagnetta, Petrini, Tomasini,
 * Favero, Wyart, "How deep neural networks learn compositional data", 2024),
 * a fixed random context-free grammar of L levels with branching b.
 *
 * Grammar. Every level l = 1..L has v symbols 0..v-1 (level L is the root).
 * Each symbol of level l rewrites to one of m production rules, each a
 * b-tuple of level-(l-1) symbols; the m * v tuples of one level are distinct
 * (drawn uniformly without replacement from the v^b possible), so the
 * grammar is unambiguous: a string has at most one derivation. This needs
 * m * v <= v^b. The grammar is a pure function of (n_levels, b, v, m,
 * grammar_seed); level l is drawn before level l + 1, so a deeper grammar
 * extends a shallower one with the same seed.
 *
 * Documents. The root is uniform over the v symbols, then every node picks
 * one of its m rules uniformly, down to level 0: N = b^L symbols s_0..s_N-1
 * (tokens s + 1). A document is
 *   [FILLER x offset, s_0 + 1, .., s_{N-1} + 1, EOS]
 * with EOS = 0 and FILLER = v + 1 (vocabulary v + 1, or v + 2 if offset > 0).
 * Fillers are one fixed id in a fixed number, so constituents sit at
 * offset + multiples of b^j: shifted against the chunk boundaries of the
 * model when offset > 0 (with b = 2 and offset = 0 they line up with chunks
 * of size 2^j). Positions are within a document: a document is
 * offset + b^L + 1 tokens long, so in a stream of documents packed back to
 * back the alignment holds only for windows that start at a document.
 * The defaults (L 7, b 2, v 16, m 4) give documents of 128 symbols + EOS:
 * training windows of seq_len 128 with `"window": "document"` hold one
 * whole document each, and a level-j constituent covers exactly the chunk
 * of size 2^j of a g = 2^j iteration (offset 0). They allow v m^127
 * distinct documents.
 *
 * Held-out documents. With distinct (the default), a val document that
 * equals a train document is drawn again, and a test document that equals
 * a train or val one, so no held-out document was seen in training (a
 * split may repeat its own documents, as the process does). A grammar with
 * too few distinct documents for that is an error; true_nll stays the
 * process's own loss (with a grammar of many distinct documents the
 * redraws are vanishingly rare).
 *
 * Exact probabilities. For a prefix x_0..x_{n-1} of the level-0 string,
 *   P(x_<n) = sum_r (1/v) F_L(r),
 * where F_l(t) is the probability that symbol t at level l generates a
 * string whose first tokens match the prefix inside its span (the level-l
 * span containing position n-1). With j the child of that span containing
 * position n-1, I_{l-1}(c, i) the inside probability that c generates
 * completed child span i exactly, and children after j contributing 1:
 *   F_0(t)  = [x_{n-1} = t]
 *   F_l(t)  = (1/m) sum_{rules (c_0..c_{b-1}) of t}
 *                 prod_{i<j} I_{l-1}(c_i, i) * F_{l-1}(c_j)
 *   I_l(t)  = F_l(t) once the prefix covers the whole span.
 *   p(x_{n-1} | x_<n-1) = P(x_<n) / P(x_<n-1),   P(empty) = 1.
 * Each vector F_l, I_l is kept as exp(scale) * values with max(values) = 1
 * (all terms of one F_l share the same completed children, so the scales
 * factor out): documents of any length are exact without underflow, at
 * O(L v m b) multiply-adds per token. Fillers and the final EOS have
 * probability 1 under the process (their number and id are fixed), so their
 * true_nll is 0. Because the grammar is unambiguous,
 *   -log P(document) = log v + ((b^L - 1) / (b - 1)) log m
 * for every document; the sum of true_nll over a document equals it.
 *
 * Labels, for j = 1..L (-1 at fillers and EOS):
 *   l<j>.symbol  the token's level-j ancestor (n_classes v)
 *   l<j>.pos     index 0..b-1 of the token's level-(j-1) ancestor inside
 *                its level-j parent's tuple (n_classes b); for a token at
 *                level-0 position p, (p / b^(j-1)) mod b
 * in the order l1.symbol, l1.pos, l2.symbol, l2.pos, ...
 *
 * Parameters (a JSON object, every field optional):
 *   n_levels 7 (1..16), b 2 (2..16), v 16 (1..4096), m 4 (1..65536),
 *   offset 0 (0..4096), grammar_seed 1 (0..2^63 - 1), n_train 10000,
 *   n_val 500, n_test 500 (0..10^7 documents each), distinct true,
 *   train_tokens (instead of n_train: as many train documents as a
 *   training budget of that many tokens reads, ceil(train_tokens /
 *   document length), so that no document is read twice; the resolved
 *   parameters keep n_train),
 * with m * v <= v^b, m * v <= 65536 and b^n_levels <= 65536.
 *
 * Randomness: xoshiro256** seeded by splitmix64, the grammar from
 * (grammar_seed, stream 0) and each split's documents from (seed, split).
 */
#ifndef SPIRAL_SYNTH_RHM_H
#define SPIRAL_SYNTH_RHM_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

/* The resolved parameters of an RHM dataset. */
typedef struct {
    int n_levels, b, v, m, offset;
    long long grammar_seed;
    long n_train, n_val, n_test;
    int distinct;     /* val and test documents differ from every earlier split's */
} SynthRhmParams;

/* The production rules of every level. */
typedef struct {
    int n_levels, b, v, m;
    int32_t *rules;   /* (n_levels, v, m, b): child i of rule r of symbol s at level l is
                         rules[(((l - 1) * v + s) * m + r) * b + i] */
} SynthRhmGrammar;

/* The exact prefix probability of a level-0 string being read. */
typedef struct {
    const SynthRhmGrammar *grammar;
    long n;              /* level-0 symbols read, 0 .. b^L */
    double log_prefix;   /* log P(x_0 .. x_{n-1}) */
    /* a vector x is stored as exp(scale) * values, max(values) = 1 */
    double *inside;          /* (n_levels, b, v) I_l(t, i), the completed children i of the
                                current level-(l+1) span */
    double *inside_scale;    /* (n_levels, b) */
    double *frontier;        /* (n_levels + 1, v) F_l(t) of the last extension */
    double *frontier_scale;  /* (n_levels + 1) */
} SynthRhmPrefix;

/* Parses params_json (NULL = all defaults) into *params. Returns 0 or -1
 * with "rhm.<field>: expected ..., got ...". */
int synth_rhm_params(SynthRhmParams *params, const char *params_json);

/* Draws the grammar of params (from grammar_seed). Returns 0 or -1. */
int synth_rhm_grammar_build(SynthRhmGrammar *grammar, const SynthRhmParams *params);
void synth_rhm_grammar_free(SynthRhmGrammar *grammar);

/* The address of rule r of symbol s at level l (1..L): b child symbols. */
const int32_t *synth_rhm_rule(const SynthRhmGrammar *grammar, int level, int symbol, int rule);

/* An empty prefix (n = 0, log_prefix = 0). Returns 0 or -1. */
int synth_rhm_prefix_init(SynthRhmPrefix *prefix, const SynthRhmGrammar *grammar);
/* Back to the empty prefix, for the next document. */
void synth_rhm_prefix_reset(SynthRhmPrefix *prefix);
void synth_rhm_prefix_free(SynthRhmPrefix *prefix);

/* log P(prefix followed by level-0 symbol s), leaving the prefix unchanged
 * except for the frontier scratch. Needs n < b^L. */
double synth_rhm_prefix_extend(SynthRhmPrefix *prefix, int symbol);

/* Appends level-0 symbol s and returns log p(s | prefix) (-inf if the
 * prefix becomes impossible). Needs n < b^L. */
double synth_rhm_prefix_push(SynthRhmPrefix *prefix, int symbol);

/* probs (v) = p(next level-0 symbol | prefix), for n < b^L. */
void synth_rhm_next_probs(SynthRhmPrefix *prefix, double *probs);

/* Generates the dataset: n_train, n_val, n_test documents (SPLIT_TRAIN,
 * SPLIT_VAL, SPLIT_TEST) with labels and true_nll; out->params_json gets
 * every resolved parameter. Returns 0 or -1 (bad parameters: "rhm.<field>:
 * expected ..., got ..."; out of memory). */
int synth_rhm_make(Dataset *out, const char *params_json, unsigned long seed);

#endif
