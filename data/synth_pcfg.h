/*
 * synth_pcfg.h: a layered probabilistic context-free grammar in the style of
 * "Physics of Language Models, Part 1" (Allen-Zhu and Li, 2023), with the
 * exact next-token probabilities of the language it generates.
 *
 * Grammar. Levels 1..D (D = levels). Level 1 holds the root symbol alone,
 * levels 2..D-1 hold n_symbols nonterminals each, level D holds the
 * n_terminals terminals. Every nonterminal of level l < D has n_rules rules;
 * a rule is a sequence of rule_min..rule_max symbols of level l + 1, its
 * length uniform and its symbols uniform and independent, redrawn until the
 * rules of one symbol are distinct. Rule probabilities are 1/n_rules, or,
 * with random_rule_probs, Dirichlet(1, .., 1) per symbol. Symbols of
 * different parents may share rules, so the grammar is in general ambiguous:
 * a sentence can have several derivations. The grammar is a pure function of
 * (levels, n_symbols, n_terminals, n_rules, rule_min, rule_max,
 * random_rule_probs, grammar_seed).
 *
 * Sentences. Every leaf sits at depth D, so a sentence has between
 * rule_min^(D-1) and rule_max^(D-1) terminals; a span of a level-l symbol is
 * rule_min^(D-l) .. rule_max^(D-l) long. A document is
 *   [x_1 .. x_n, EOS],   EOS = token 0, terminal a = token a + 1,
 * vocabulary n_terminals + 1.
 *
 * Exact probabilities. Write Prefix(k) = P(x_1..x_k is a prefix of the
 * sentence), Prefix(0) = 1, and P(x) = P(sentence = x_1..x_n). Then
 *   p(x_k | x_<k) = Prefix(k) / Prefix(k-1),   p(EOS | x) = P(x) / Prefix(n),
 *   true_nll = -log of these, and sum of true_nll = -log P(x) (chain rule);
 * a forced token (p = 1 up to rounding) gets true_nll exactly 0.
 * One left-to-right pass over the sentence gives all of them (see
 * synth_pcfg_parser.c for the recursions): after each token, inside
 * probabilities of the spans ending there (bottom-up), then the
 * probability of each symbol at each level to start at the next position
 * given the prefix (top-down); at the terminal level that is the
 * next-token distribution.
 * Values are scaled by the conditionals already read, so nothing
 * underflows.
 *
 * Labels (one int per token, -1 at EOS), for each nonterminal level:
 *   l1.pos        index of the token's level-2 ancestor in the root's rule
 *                 (n_classes rule_max)
 *   l<l>.symbol   the token's level-l ancestor, l = 2..D-1 (n_symbols)
 *   l<l>.end      1 if the token is the last of its level-l constituent (2)
 *   l<l>.pos      index of the token's level-(l+1) ancestor (the token
 *                 itself at l = D-1) in its level-l ancestor's rule
 *                 (rule_max)
 * in the order l1.pos, l2.symbol, l2.end, l2.pos, l3.symbol, ... The root has
 * one symbol and always ends at the last token, so l1.symbol and l1.end
 * would be constant and are left out.
 *
 * Parameters (a JSON object, every field optional):
 *   levels 5 (2..16), n_symbols 3 (1..256), n_terminals 3 (1..65535),
 *   n_rules 3 (1..64), rule_min 2 (1..16),
 *   rule_max 3, or rule_min if that is larger (rule_min..16),
 *   grammar_seed 1 (0..2^63 - 1), random_rule_probs false,
 *   n_train 4000, n_val 500, n_test 500 (0..10^7 sentences each),
 * with rule_max^(levels-1) <= 4096 (the longest sentence) and, per level,
 * at least n_rules distinct sequences to draw from. The defaults allow
 * sentences of 16..81 terminals (mean 44.5 with grammar_seed 1). Reading a
 * sentence of n tokens costs about n * sum over rules of (rule length) x
 * (spread of its children's span lengths)^2: 0.4 s for the default dataset,
 * ~10 ms a sentence at levels 7 (sentences of ~280 tokens).
 *
 * Randomness: xoshiro256** seeded by splitmix64, the grammar from
 * (grammar_seed, stream 0) and each split's sentences from (seed, split).
 */
#ifndef SPIRAL_SYNTH_PCFG_H
#define SPIRAL_SYNTH_PCFG_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

#define SYNTH_PCFG_MAX_LEVELS 16
#define SYNTH_PCFG_MAX_SENTENCE 4096

/* The resolved parameters of a PCFG dataset. */
typedef struct {
    int levels, n_symbols, n_terminals, n_rules, rule_min, rule_max;
    long long grammar_seed;
    int random_rule_probs;
    long n_train, n_val, n_test;
} SynthPcfgParams;

/* The rules of every nonterminal. Level 1 uses symbol 0 only. */
typedef struct {
    int levels, n_symbols, n_terminals, n_rules, rule_min, rule_max;
    int32_t *rule_length;  /* (levels - 1, n_symbols, n_rules) */
    int32_t *rule_child;   /* (levels - 1, n_symbols, n_rules, rule_max) */
    double *rule_prob;     /* (levels - 1, n_symbols, n_rules) */
} SynthPcfgGrammar;

/* A table of values over spans (end j, length d) of one sentence, lengths
 * lo..hi; an anchored table holds only spans that start at 0 (d = j). */
typedef struct {
    int lo, hi;
    int anchored;
    double *values;  /* (capacity + 1, hi - lo + 1), or (capacity + 1) if anchored */
} SynthPcfgSpans;

/* The exact prefix probabilities of a sentence being read left to right. */
typedef struct {
    const SynthPcfgGrammar *grammar;
    int n;                 /* terminals read */
    int capacity;          /* positions 0..capacity are allocated in the tables */
    int impossible;        /* 1 once the prefix has probability 0 */
    double log_prefix;     /* log Prefix(n) */
    double end_prob;       /* p(EOS | x_1..x_n), 0 at n = 0 */
    int length_lo[SYNTH_PCFG_MAX_LEVELS + 1];  /* shortest span of a level-l symbol */
    int length_hi[SYNTH_PCFG_MAX_LEVELS + 1];  /* longest span of a level-l symbol */
    int *partial_first;    /* (levels - 1, n_symbols, n_rules) index in partials of the
                              rule's first partial, t = 1 */
    int n_partials;
    SynthPcfgSpans *partials;  /* (n_partials) R_r[t], t = 1..m-1 for each rule r */
    double *inside_now;    /* per level l = 1..D at inside_offset[l]:
                              (length_hi - length_lo + 1, V_l), I~_l of the spans ending at
                              the column being computed, by length (scratch) */
    size_t inside_offset[SYNTH_PCFG_MAX_LEVELS + 1];
    double *forward[SYNTH_PCFG_MAX_LEVELS + 1];  /* per level l = 1..D: (capacity + 1, V_l)
                                                    F~_l(A, i); F~_D(a, n) = p(a | prefix) */
} SynthPcfgParser;

/* Parses params_json (NULL = all defaults) into *params. Returns 0 or -1
 * with "pcfg.<field>: expected ..., got ...". */
int synth_pcfg_params(SynthPcfgParams *params, const char *params_json);

/* Draws the grammar of params (from grammar_seed). Returns 0 or -1. */
int synth_pcfg_grammar_build(SynthPcfgGrammar *grammar, const SynthPcfgParams *params);
void synth_pcfg_grammar_free(SynthPcfgGrammar *grammar);

/* Number of symbols of level l (1..levels): 1, n_symbols or n_terminals. */
int synth_pcfg_level_size(const SynthPcfgGrammar *grammar, int level);

/* Rule r of symbol s at nonterminal level l (1..levels-1): its children
 * (symbols of level l + 1), *length of them. */
const int32_t *synth_pcfg_rule(const SynthPcfgGrammar *grammar, int level, int symbol, int rule,
                               int *length);
double synth_pcfg_rule_prob(const SynthPcfgGrammar *grammar, int level, int symbol, int rule);

/* Index of (level, symbol, rule) in rule_length and rule_prob (in
 * rule_child: times rule_max). Inline: the parser's inner loops use it. */
static inline size_t synth_pcfg_rule_index(const SynthPcfgGrammar *grammar, int level, int symbol,
                                           int rule) {
    return ((size_t)(level - 1) * grammar->n_symbols + symbol) * grammar->n_rules + rule;
}

/* An empty prefix (n = 0). Returns 0 or -1 (out of memory). */
int synth_pcfg_parser_init(SynthPcfgParser *parser, const SynthPcfgGrammar *grammar);
/* Back to the empty prefix, for the next sentence. */
void synth_pcfg_parser_reset(SynthPcfgParser *parser);
void synth_pcfg_parser_free(SynthPcfgParser *parser);

/* Makes room for sentences of n terminals (push also grows the tables as
 * needed). Returns 0 or -1 (out of memory). */
int synth_pcfg_parser_reserve(SynthPcfgParser *parser, int n);

/* log p(terminal a | prefix), leaving the prefix unchanged (-inf if the
 * extended prefix is impossible). */
double synth_pcfg_parser_extend(const SynthPcfgParser *parser, int terminal);

/* Appends terminal a (token a + 1) and returns log p(a | prefix): -inf if
 * the prefix becomes impossible (the parser then stays impossible), NaN on
 * out of memory (message set). */
double synth_pcfg_parser_push(SynthPcfgParser *parser, int terminal);

/* log p(EOS | prefix) = log P(sentence = prefix) - log Prefix(n). */
double synth_pcfg_parser_log_end(const SynthPcfgParser *parser);

/* probs (n_terminals + 1) = p(next token | prefix) in token order: EOS at 0,
 * terminal a at a + 1. All 0 if the prefix is impossible. */
void synth_pcfg_next_probs(const SynthPcfgParser *parser, double *probs);

/* Entropy (nats) of the next-token distribution after the prefix (0 if the
 * prefix is impossible). */
double synth_pcfg_next_entropy(const SynthPcfgParser *parser);

/* Generates the dataset: n_train, n_val, n_test sentences (SPLIT_TRAIN,
 * SPLIT_VAL, SPLIT_TEST) with labels and true_nll; out->family "pcfg",
 * out->params_json every resolved parameter. Returns 0 or -1 (bad
 * parameters: "pcfg.<field>: expected ..., got ..."; out of memory). */
int synth_pcfg_make(Dataset *out, const char *params_json, unsigned long seed);

#endif
