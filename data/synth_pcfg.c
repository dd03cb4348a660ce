/*
 * synth_pcfg.c: the layered PCFG generator (see synth_pcfg.h for the
 * grammar family, the document layout and the labels).
 *
 * The generator samples a derivation top-down, records the labels along the
 * way, then reads the terminals back left to right through SynthPcfgParser,
 * which knows only the grammar and the tokens: true_nll is computed from the
 * probability law, not from the derivation that was sampled.
 *
 * The dynamic program. Positions are 0-based here: span (i, j) covers
 * x_i .. x_{j-1}, length d = j - i; D = levels. For a symbol B of level l
 * and a rule r = (c_0 .. c_{m-1}) of B with probability p_r (children of
 * level l + 1), three kinds of quantities:
 *
 *   I_l(B, i, j)  = P(B =>* x_i .. x_{j-1})                        (inside)
 *   R_rt(i, j)    = P(c_0 .. c_{t-1} =>* x_i .. x_{j-1}), t = 1..m-1 (partial)
 *   F_l(A, i)     = P(the sentence starts with x_0 .. x_{i-1}, and the
 *                     level-l node covering position i starts at i and
 *                     is A)                                         (forward)
 *
 * Inside, bottom-up (I_D(a, i, i+1) = [x_i = a] for terminals):
 *   R_r1(i, j)  = I_{l+1}(c_0, i, j)
 *   R_rt(i, j)  = sum_s R_r(t-1)(i, s) I_{l+1}(c_{t-1}, s, j)
 *   I_l(B,i,j)  = sum_r p_r sum_s R_r(m-1)(i, s) I_{l+1}(c_{m-1}, s, j)
 *                                                 (m = 1: I_{l+1}(c_0, i, j))
 * Forward, top-down (F_1(root, i) = [i = 0]):
 *   F_{l+1}(A, i) = sum_B sum_r p_r sum_{t: c_t = A} sum_{s <= i} F_l(B, s) R_rt(s, i)
 * with R_r0(s, i) = [s = i]. In a derivation whose first i leaves are
 * x_0 .. x_{i-1} and which has a leaf i, every level has exactly one node
 * covering position i; it is child t of the level-l node covering i, whose
 * earlier children cover x_s .. x_{i-1} exactly, and everything to its right
 * is free (those probabilities sum to 1). So each such derivation is counted
 * exactly once, whether or not position i is a constituent boundary (the
 * prefix x_<i ends exactly at a child boundary), and at the terminal level
 *   F_D(a, i) = P(the sentence starts with x_0 .. x_{i-1} a) = Prefix(i+1),
 *   p(x_i = a | x_<i) = F_D(a, i) / Prefix(i),
 *   p(EOS | x_0 .. x_{n-1}) = P(x) / Prefix(n) = I_1(root, 0, n) / Prefix(n),
 * with Prefix(i) = P(the sentence starts with x_0 .. x_{i-1}), Prefix(0) = 1.
 * The next-token distribution at i is the whole vector F_D(., i).
 *
 * Order. The partials ending at j use spans ending at j of the level below
 * and partials ending at s < j; so after reading x_{j-1}, column j (every
 * partial and inside value ending at j) is computed from the terminal up to
 * the root, then F(., j) from the root down, from partials ending at j and
 * forward values at s <= j. Only the partials R and the forward values F
 * are kept across columns; the inside values I of a column are scratch. A
 * level-l span is rule_min^(D-l) .. rule_max^(D-l) long and a partial of t
 * children t times that, so each partial is a band of lengths by end; root
 * partials start at 0, one value per end ("anchored").
 *
 * Scaling. Every partial or inside value of a span (i, j) is stored divided
 * by Prefix(j) / Prefix(i) = prod_{i <= t < j} p(x_t | x_<t), and F_l(A, i)
 * by Prefix(i). Products F(s) R(s, i) and R(i, s) I(s, j) then carry
 * exactly the scale of their result, so the recursions hold unchanged for
 * the stored values (written ~), and
 *   F~_D(a, i) = p(x_i = a | x_<i),   p(EOS | x) = I~_1(root, 0, n).
 * Column j is computed from the unscaled terminal x_{j-1}, then divided by
 * F~_D(x_{j-1}, j-1). F~ is a posterior probability (in [0, 1]) and a
 * partial is a span's probability over its conditional probability given
 * the prefix, so nothing underflows however long the sentence.
 *
 * Cost per token: for every rule and t, the lengths of the partial's band
 * times the lengths of a child's band (inside), plus the band (forward).
 */
#include "synth_pcfg.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "synth_common.h"

#define PCFG_MAX_SYMBOLS 256
#define PCFG_MAX_TERMINALS 65535
#define PCFG_MAX_RULES 64
#define PCFG_MAX_RULE_LENGTH 16
#define PCFG_MAX_DOCS 10000000L

/* ---- parameters ---- */

static const char *const pcfg_fields[] = {
    "levels",       "n_symbols",         "n_terminals", "n_rules", "rule_min", "rule_max",
    "grammar_seed", "random_rule_probs", "n_train",     "n_val",   "n_test"};
#define PCFG_N_FIELDS (sizeof pcfg_fields / sizeof pcfg_fields[0])

/* Number of distinct sequences of rule_min..rule_max symbols out of v,
 * saturated at cap + 1. */
static long long distinct_rules(long long v, int rule_min, int rule_max, long long cap) {
    long long total = 0;
    for (int length = rule_min; length <= rule_max; length++) {
        total += synth_power_capped(v, length, cap);
        if (total > cap) return cap + 1;
    }
    return total;
}

int synth_pcfg_params(SynthPcfgParams *params, const char *params_json) {
    SynthParams reader;
    if (synth_params_open(&reader, "pcfg", pcfg_fields, PCFG_N_FIELDS, params_json)) return -1;
    long long levels = 5, n_symbols = 3, n_terminals = 3, n_rules = 3, rule_min = 2, rule_max = 3;
    long long grammar_seed = 1, n_train = 4000, n_val = 500, n_test = 500;
    int random_rule_probs = 0;
    int status =
        (synth_params_int(&reader, "levels", 2, SYNTH_PCFG_MAX_LEVELS, &levels) ||
         synth_params_int(&reader, "n_symbols", 1, PCFG_MAX_SYMBOLS, &n_symbols) ||
         synth_params_int(&reader, "n_terminals", 1, PCFG_MAX_TERMINALS, &n_terminals) ||
         synth_params_int(&reader, "n_rules", 1, PCFG_MAX_RULES, &n_rules) ||
         synth_params_int(&reader, "rule_min", 1, PCFG_MAX_RULE_LENGTH, &rule_min)) ? -1 : 0;
    /* rule_max defaults to 3, or to rule_min if that is larger */
    if (rule_max < rule_min) rule_max = rule_min;
    if (!status)
        status = (synth_params_int(&reader, "rule_max", rule_min, PCFG_MAX_RULE_LENGTH,
                                   &rule_max) ||
                  synth_params_int(&reader, "grammar_seed", 0, LLONG_MAX, &grammar_seed) ||
                  synth_params_bool(&reader, "random_rule_probs", &random_rule_probs) ||
                  synth_params_int(&reader, "n_train", 0, PCFG_MAX_DOCS, &n_train) ||
                  synth_params_int(&reader, "n_val", 0, PCFG_MAX_DOCS, &n_val) ||
                  synth_params_int(&reader, "n_test", 0, PCFG_MAX_DOCS, &n_test)) ? -1 : 0;
    synth_params_close(&reader);
    if (status) return -1;
    long long longest = synth_power_capped(rule_max, (int)levels - 1, SYNTH_PCFG_MAX_SENTENCE);
    if (longest > SYNTH_PCFG_MAX_SENTENCE)
        return spiral_error("pcfg.levels: expected rule_max^(levels - 1) <= %d tokens per "
                            "sentence, got %lld^%lld", SYNTH_PCFG_MAX_SENTENCE, rule_max,
                            levels - 1);
    /* every nonterminal level needs n_rules distinct right sides */
    for (int l = 1; l < levels; l++) {
        long long v = l + 1 == levels ? n_terminals : n_symbols;
        long long available = distinct_rules(v, (int)rule_min, (int)rule_max, PCFG_MAX_RULES);
        if (available < n_rules)
            return spiral_error("pcfg.n_rules: expected at most %lld (the distinct sequences of "
                                "%lld..%lld out of %lld symbols of level %d), got %lld",
                                available, rule_min, rule_max, v, l + 1, n_rules);
    }
    *params = (SynthPcfgParams){(int)levels, (int)n_symbols, (int)n_terminals, (int)n_rules,
                                (int)rule_min, (int)rule_max, grammar_seed, random_rule_probs,
                                (long)n_train, (long)n_val, (long)n_test};
    return 0;
}

/* The resolved parameters as malloc'd JSON text, every field present. */
static char *params_to_json(const SynthPcfgParams *p) {
    const char *fmt = "{\"levels\": %d, \"n_symbols\": %d, \"n_terminals\": %d, \"n_rules\": %d, "
                      "\"rule_min\": %d, \"rule_max\": %d, \"grammar_seed\": %lld, "
                      "\"random_rule_probs\": %s, \"n_train\": %ld, \"n_val\": %ld, "
                      "\"n_test\": %ld}";
    const char *random = p->random_rule_probs ? "true" : "false";
    int n = snprintf(NULL, 0, fmt, p->levels, p->n_symbols, p->n_terminals, p->n_rules,
                     p->rule_min, p->rule_max, p->grammar_seed, random, p->n_train, p->n_val,
                     p->n_test);
    char *json = malloc((size_t)n + 1);
    if (json)
        snprintf(json, (size_t)n + 1, fmt, p->levels, p->n_symbols, p->n_terminals, p->n_rules,
                 p->rule_min, p->rule_max, p->grammar_seed, random, p->n_train, p->n_val,
                 p->n_test);
    return json;
}

/* ---- the grammar ---- */

int synth_pcfg_level_size(const SynthPcfgGrammar *g, int level) {
    if (level == 1) return 1;
    return level == g->levels ? g->n_terminals : g->n_symbols;
}

/* Index of (level, symbol, rule) in rule_length and rule_prob. */
static size_t rule_index(const SynthPcfgGrammar *g, int level, int symbol, int rule) {
    return ((size_t)(level - 1) * g->n_symbols + symbol) * g->n_rules + rule;
}

const int32_t *synth_pcfg_rule(const SynthPcfgGrammar *g, int level, int symbol, int rule,
                               int *length) {
    size_t index = rule_index(g, level, symbol, rule);
    *length = g->rule_length[index];
    return g->rule_child + index * g->rule_max;
}

double synth_pcfg_rule_prob(const SynthPcfgGrammar *g, int level, int symbol, int rule) {
    return g->rule_prob[rule_index(g, level, symbol, rule)];
}

/* 1 if rule r of the symbol whose rules start at `first` equals an earlier
 * rule of the same symbol. */
static int rule_repeats(const SynthPcfgGrammar *g, size_t first, int r) {
    size_t index = first + (size_t)r;
    for (size_t q = first; q < index; q++)
        if (g->rule_length[q] == g->rule_length[index] &&
            memcmp(g->rule_child + q * g->rule_max, g->rule_child + index * g->rule_max,
                   (size_t)g->rule_length[index] * sizeof *g->rule_child) == 0)
            return 1;
    return 0;
}

int synth_pcfg_grammar_build(SynthPcfgGrammar *g, const SynthPcfgParams *p) {
    memset(g, 0, sizeof *g);
    g->levels = p->levels;
    g->n_symbols = p->n_symbols;
    g->n_terminals = p->n_terminals;
    g->n_rules = p->n_rules;
    g->rule_min = p->rule_min;
    g->rule_max = p->rule_max;
    size_t count = (size_t)(p->levels - 1) * p->n_symbols * p->n_rules;
    g->rule_length = calloc(count, sizeof *g->rule_length);
    g->rule_child = calloc(count * p->rule_max, sizeof *g->rule_child);
    g->rule_prob = calloc(count, sizeof *g->rule_prob);
    if (!g->rule_length || !g->rule_child || !g->rule_prob) {
        synth_pcfg_grammar_free(g);
        return spiral_error("pcfg: out of memory for the grammar");
    }
    SynthRng rng;
    synth_rng_seed(&rng, (uint64_t)p->grammar_seed, 0);
    uint64_t spread = (uint64_t)(p->rule_max - p->rule_min + 1);
    /* level by level, symbol by symbol: the rules, then their probabilities */
    for (int l = 1; l < p->levels; l++) {
        uint64_t v = (uint64_t)synth_pcfg_level_size(g, l + 1);
        for (int s = 0; s < synth_pcfg_level_size(g, l); s++) {
            size_t first = rule_index(g, l, s, 0);
            for (int r = 0; r < p->n_rules; r++) {
                size_t index = first + (size_t)r;
                int32_t *children = g->rule_child + index * p->rule_max;
                do {  /* params guarantee n_rules distinct sequences exist */
                    g->rule_length[index] = p->rule_min + (int32_t)synth_rng_below(&rng, spread);
                    for (int i = 0; i < g->rule_length[index]; i++)
                        children[i] = (int32_t)synth_rng_below(&rng, v);
                    for (int i = g->rule_length[index]; i < p->rule_max; i++) children[i] = -1;
                } while (rule_repeats(g, first, r));
            }
            /* Dirichlet(1, .., 1): normalized Exponential(1) weights */
            double total = 0;
            for (int r = 0; r < p->n_rules; r++) {
                double weight = p->random_rule_probs ? -log(synth_rng_open01(&rng)) : 1.0;
                g->rule_prob[first + r] = weight;
                total += weight;
            }
            for (int r = 0; r < p->n_rules; r++) g->rule_prob[first + r] /= total;
        }
    }
    return 0;
}

void synth_pcfg_grammar_free(SynthPcfgGrammar *g) {
    free(g->rule_length);
    free(g->rule_child);
    free(g->rule_prob);
    g->rule_length = g->rule_child = NULL;
    g->rule_prob = NULL;
}

/* ---- the parser: exact prefix probabilities (top of this file) ---- */

/* Lengths stored per end in a span table. */
static int spans_width(const SynthPcfgSpans *t) { return t->anchored ? 1 : t->hi - t->lo + 1; }

int synth_pcfg_parser_init(SynthPcfgParser *ps, const SynthPcfgGrammar *g) {
    memset(ps, 0, sizeof *ps);
    ps->grammar = g;
    int D = g->levels;
    /* span lengths of level l: rule_min^(D-l) .. rule_max^(D-l) */
    for (int l = D; l >= 1; l--) {
        ps->length_lo[l] = l == D ? 1 : ps->length_lo[l + 1] * g->rule_min;
        ps->length_hi[l] = l == D ? 1 : ps->length_hi[l + 1] * g->rule_max;
    }
    size_t inside_total = 0;
    for (int l = 1; l <= D; l++) {
        ps->inside_offset[l] = inside_total;
        inside_total += (size_t)(ps->length_hi[l] - ps->length_lo[l] + 1) *
                        (size_t)synth_pcfg_level_size(g, l);
    }
    /* one partial table per (rule, t = 1..m-1) */
    size_t n_rules = (size_t)(D - 1) * g->n_symbols * g->n_rules;
    ps->partial_first = malloc(n_rules * sizeof *ps->partial_first);
    ps->inside_now = malloc(inside_total * sizeof *ps->inside_now);
    if (!ps->partial_first || !ps->inside_now) goto oom;
    for (int l = 1; l < D; l++)
        for (int s = 0; s < synth_pcfg_level_size(g, l); s++)
            for (int r = 0; r < g->n_rules; r++) {
                ps->partial_first[rule_index(g, l, s, r)] = ps->n_partials;
                ps->n_partials += g->rule_length[rule_index(g, l, s, r)] - 1;
            }
    ps->partials = calloc((size_t)ps->n_partials + 1, sizeof *ps->partials);
    if (!ps->partials) goto oom;
    for (int l = 1; l < D; l++)
        for (int s = 0; s < synth_pcfg_level_size(g, l); s++)
            for (int r = 0; r < g->n_rules; r++) {
                size_t index = rule_index(g, l, s, r);
                for (int t = 1; t < g->rule_length[index]; t++) {
                    SynthPcfgSpans *table = &ps->partials[ps->partial_first[index] + t - 1];
                    table->lo = t * ps->length_lo[l + 1];
                    table->hi = t * ps->length_hi[l + 1];
                    table->anchored = l == 1;
                }
            }
    if (synth_pcfg_parser_reserve(ps, 64)) {
        synth_pcfg_parser_free(ps);
        return -1;
    }
    synth_pcfg_parser_reset(ps);
    return 0;
oom:
    synth_pcfg_parser_free(ps);
    return spiral_error("pcfg: out of memory for the parser");
}

void synth_pcfg_parser_free(SynthPcfgParser *ps) {
    if (ps->partials)
        for (int k = 0; k < ps->n_partials; k++) free(ps->partials[k].values);
    free(ps->partials);
    free(ps->partial_first);
    free(ps->inside_now);
    for (int l = 0; l <= SYNTH_PCFG_MAX_LEVELS; l++) free(ps->forward[l]);
    memset(ps, 0, sizeof *ps);
}

int synth_pcfg_parser_reserve(SynthPcfgParser *ps, int n) {
    int longest = ps->length_hi[1];
    if (n > longest) n = longest;
    if (n <= ps->capacity && ps->forward[1]) return 0;
    int capacity = ps->capacity ? ps->capacity : 16;
    while (capacity < n) capacity *= 2;
    if (capacity > longest) capacity = longest;
    size_t ends = (size_t)capacity + 1;
    for (int k = 0; k < ps->n_partials; k++) {
        SynthPcfgSpans *table = &ps->partials[k];
        double *values = realloc(table->values, ends * spans_width(table) * sizeof *values);
        if (!values) goto oom;
        table->values = values;
    }
    for (int l = 1; l <= ps->grammar->levels; l++) {
        size_t v = (size_t)synth_pcfg_level_size(ps->grammar, l);
        double *forward = realloc(ps->forward[l], ends * v * sizeof *forward);
        if (!forward) goto oom;
        ps->forward[l] = forward;
    }
    ps->capacity = capacity;
    return 0;
oom:
    return spiral_error("pcfg: out of memory for the parser of sentences of %d tokens", capacity);
}

/* sum over d2 = d2_lo..d2_hi of table(end j - d2, length d - d2) * x[d2],
 * where x[d2] = child[(d2 - child_first) * child_stride]: a partial
 * followed by one more child whose span ends at j, with d2 the child's
 * length. The d2 range is clipped to the table's band, after which the
 * table is read with a constant stride (one end and one length less). */
static inline double band_dot(const SynthPcfgSpans *table, int j, int d, int d2_lo, int d2_hi,
                              const double *child, int child_first, int child_stride) {
    if (d2_lo < d - table->hi) d2_lo = d - table->hi;
    if (d2_hi > d - table->lo) d2_hi = d - table->lo;
    if (d2_lo > d2_hi) return 0;
    /* anchored: the value of (j - d2, j - d2) is values[j - d2] (d = j) */
    size_t width = (size_t)spans_width(table);
    size_t step = table->anchored ? 1 : width + 1;
    const double *x = table->values + (size_t)(j - d2_lo) * width +
                      (table->anchored ? 0 : (size_t)(d - d2_lo - table->lo));
    const double *y = child + (size_t)(d2_lo - child_first) * child_stride;
    double total = 0;
    for (int d2 = d2_lo; d2 <= d2_hi; d2++, x -= step, y += child_stride) total += *x * *y;
    return total;
}

/* Computes column j = n + 1 with terminal a as x_{j-1}, from the terminal up
 * to the root: the partials R of every rule ending at j (into the tables)
 * and the inside values I of every level ending at j (into inside_now), all
 * still unscaled in x_{j-1}. Needs j <= capacity. */
static void compute_inside_column(SynthPcfgParser *ps, int terminal) {
    const SynthPcfgGrammar *g = ps->grammar;
    int D = g->levels, j = ps->n + 1;
    double *inside_term = ps->inside_now + ps->inside_offset[D];  /* (1, n_terminals) */
    for (int a = 0; a < g->n_terminals; a++) inside_term[a] = a == terminal;
    for (int l = D - 1; l >= 1; l--) {
        int c = l + 1, vl = synth_pcfg_level_size(g, l), vc = synth_pcfg_level_size(g, c);
        int lo_l = ps->length_lo[l], hi_l = ps->length_hi[l];
        int lo_c = ps->length_lo[c], hi_c = ps->length_hi[c];
        const double *inside_c = ps->inside_now + ps->inside_offset[c];  /* (hi_c-lo_c+1, vc) */
        double *inside_l = ps->inside_now + ps->inside_offset[l];        /* (hi_l-lo_l+1, vl) */
        memset(inside_l, 0, (size_t)(hi_l - lo_l + 1) * vl * sizeof *inside_l);
        /* lengths d of the complete spans ending at j (the root's: d = j) */
        int full_lo = l == 1 ? (j > lo_l ? j : lo_l) : lo_l;
        int full_hi = hi_l < j ? hi_l : j;
        for (int s = 0; s < vl; s++)
            for (int r = 0; r < g->n_rules; r++) {
                int m;
                const int32_t *ch = synth_pcfg_rule(g, l, s, r, &m);
                double p = synth_pcfg_rule_prob(g, l, s, r);
                SynthPcfgSpans *partial = ps->partials + ps->partial_first[rule_index(g, l, s, r)];
                /* R_rt(j - d, j) for every length d of the band of t:
                 * R_r1 = I_c(c_0), R_rt = R_r(t-1) followed by I_c(c_{t-1}) */
                for (int t = 1; t < m; t++) {
                    SynthPcfgSpans *table = &partial[t - 1];
                    int width = spans_width(table);
                    double *column = table->values + (size_t)j * width;  /* (width) */
                    for (int k = 0; k < width; k++) {
                        int d = table->anchored ? j : table->lo + k;
                        double value;
                        if (d < table->lo || d > table->hi || d > j)
                            value = 0;  /* outside the band or before position 0 */
                        else if (t == 1)
                            value = inside_c[(d - lo_c) * vc + ch[0]];
                        else
                            value = band_dot(table - 1, j, d, lo_c, hi_c, inside_c + ch[t - 1],
                                             lo_c, vc);
                        column[k] = value;
                    }
                }
                /* I_l(s, j - d, j) += p R_r(m-1) followed by I_c(c_{m-1}) */
                for (int d = full_lo; d <= full_hi; d++) {
                    double value;
                    if (m == 1)
                        value = d >= lo_c && d <= hi_c ? inside_c[(d - lo_c) * vc + ch[0]] : 0;
                    else
                        value = band_dot(&partial[m - 2], j, d, lo_c, hi_c, inside_c + ch[m - 1],
                                         lo_c, vc);
                    inside_l[(d - lo_l) * vl + s] += p * value;
                }
            }
    }
}

/* sum over the lengths d of a partial's band (d <= j) of
 * forward[(j - d) * stride] * R(j - d, j): the partial's parent started at
 * j - d with probability forward and its first t children cover the rest. */
static inline double forward_band_dot(const SynthPcfgSpans *table, int j, const double *forward,
                                      int stride) {
    if (table->anchored)  /* the root starts at 0 */
        return j >= table->lo && j <= table->hi ? forward[0] * table->values[j] : 0;
    int hi = table->hi < j ? table->hi : j;
    const double *x = table->values + (size_t)j * (size_t)(table->hi - table->lo + 1);
    double total = 0;
    for (int d = table->lo; d <= hi; d++)
        total += forward[(size_t)(j - d) * stride] * x[d - table->lo];
    return total;
}

/* Computes F~_l(., j) for every level from the root down, from the forward
 * values of earlier positions and the partials ending at j (already
 * scaled). Needs j <= capacity. */
static void compute_forward(SynthPcfgParser *ps, int j) {
    const SynthPcfgGrammar *g = ps->grammar;
    ps->forward[1][j] = j == 0 ? 1.0 : 0.0;
    for (int l = 1; l < g->levels; l++) {
        int vl = synth_pcfg_level_size(g, l), vc = synth_pcfg_level_size(g, l + 1);
        const double *above = ps->forward[l];            /* (capacity + 1, vl) */
        double *below = ps->forward[l + 1] + (size_t)j * vc;  /* (vc) at position j */
        memset(below, 0, (size_t)vc * sizeof *below);
        for (int s = 0; s < vl; s++)
            for (int r = 0; r < g->n_rules; r++) {
                int m;
                const int32_t *ch = synth_pcfg_rule(g, l, s, r, &m);
                double p = synth_pcfg_rule_prob(g, l, s, r);
                const SynthPcfgSpans *partial =
                    ps->partials + ps->partial_first[rule_index(g, l, s, r)];
                /* t = 0: the parent itself starts at j */
                below[ch[0]] += p * above[(size_t)j * vl + s];
                for (int t = 1; t < m; t++)
                    below[ch[t]] += p * forward_band_dot(&partial[t - 1], j, above + s, vl);
            }
    }
}

/* I~_1(root, 0, j) of the column just computed, unscaled in x_{j-1}. */
static double column_root_inside(const SynthPcfgParser *ps, int j) {
    if (j < ps->length_lo[1] || j > ps->length_hi[1]) return 0;
    return ps->inside_now[ps->inside_offset[1] + (size_t)(j - ps->length_lo[1])];
}

void synth_pcfg_parser_reset(SynthPcfgParser *ps) {
    ps->n = 0;
    ps->impossible = 0;
    ps->log_prefix = 0;
    ps->end_prob = 0;  /* sentences are not empty */
    compute_forward(ps, 0);
}

double synth_pcfg_parser_extend(const SynthPcfgParser *ps, int terminal) {
    const SynthPcfgGrammar *g = ps->grammar;
    if (ps->impossible || terminal < 0 || terminal >= g->n_terminals) return -INFINITY;
    return log(ps->forward[g->levels][(size_t)ps->n * g->n_terminals + terminal]);
}

double synth_pcfg_parser_push(SynthPcfgParser *ps, int terminal) {
    double log_p = synth_pcfg_parser_extend(ps, terminal);
    if (log_p == -INFINITY) {
        ps->impossible = 1;
        ps->n++;
        return log_p;
    }
    int j = ps->n + 1;
    if (synth_pcfg_parser_reserve(ps, j)) return NAN;
    compute_inside_column(ps, terminal);
    /* complete the scaling of column j: divide by p(x_{j-1} | x_<j-1) */
    double step = exp(log_p);
    for (int k = 0; k < ps->n_partials; k++) {
        SynthPcfgSpans *table = &ps->partials[k];
        int width = spans_width(table);
        double *column = table->values + (size_t)j * width;  /* (width) */
        for (int i = 0; i < width; i++) column[i] /= step;
    }
    ps->end_prob = column_root_inside(ps, j) / step;
    ps->log_prefix += log_p;
    ps->n = j;
    compute_forward(ps, j);
    return log_p;
}

double synth_pcfg_parser_log_end(const SynthPcfgParser *ps) {
    return ps->impossible ? -INFINITY : log(ps->end_prob);
}

void synth_pcfg_next_probs(const SynthPcfgParser *ps, double *probs) {
    const SynthPcfgGrammar *g = ps->grammar;
    probs[0] = ps->impossible ? 0 : ps->end_prob;
    for (int a = 0; a < g->n_terminals; a++)
        probs[a + 1] =
            ps->impossible ? 0 : ps->forward[g->levels][(size_t)ps->n * g->n_terminals + a];
}

double synth_pcfg_next_entropy(const SynthPcfgParser *ps) {
    const SynthPcfgGrammar *g = ps->grammar;
    if (ps->impossible) return 0;
    const double *next = ps->forward[g->levels] + (size_t)ps->n * g->n_terminals;  /* (V) */
    double entropy = ps->end_prob > 0 ? -ps->end_prob * log(ps->end_prob) : 0;
    for (int a = 0; a < g->n_terminals; a++)
        if (next[a] > 0) entropy -= next[a] * log(next[a]);
    return entropy;
}

/* ---- generation ---- */

/* One sentence under construction: the derivation path of the current
 * node, and the tokens and labels emitted so far. */
typedef struct {
    const SynthPcfgGrammar *grammar;
    SynthRng *rng;
    int n;                                    /* terminals emitted */
    int n_labels;
    uint16_t *tokens;                         /* (max_len + 1) */
    int32_t *token_labels;                    /* (max_len + 1, n_labels) token by token */
    int path_symbol[SYNTH_PCFG_MAX_LEVELS + 1];   /* ancestor symbol at each level */
    int path_pos[SYNTH_PCFG_MAX_LEVELS + 1];      /* child index taken at each level */
    int path_length[SYNTH_PCFG_MAX_LEVELS + 1];   /* length of the rule used at each level */
} PcfgSentence;

/* Column of a label: l1.pos is 0; level l >= 2 has symbol, end, pos at
 * 1 + 3 (l - 2) + 0, 1, 2. */
static int label_column(int level, int which) {
    return level == 1 ? 0 : 1 + 3 * (level - 2) + which;
}

/* Emits the terminal at the end of the current path with its labels. */
static void emit_terminal(PcfgSentence *sen, int terminal) {
    int D = sen->grammar->levels;
    int32_t *row = sen->token_labels + (size_t)sen->n * sen->n_labels;
    sen->tokens[sen->n] = (uint16_t)(terminal + 1);
    row[label_column(1, 2)] = sen->path_pos[1];
    /* the token ends its level-l constituent if it is the last child at
     * every level from l down */
    int last = 1;
    for (int l = D - 1; l >= 2; l--) {
        last = last && sen->path_pos[l] == sen->path_length[l] - 1;
        row[label_column(l, 0)] = sen->path_symbol[l];
        row[label_column(l, 1)] = last;
        row[label_column(l, 2)] = sen->path_pos[l];
    }
    sen->n++;
}

/* Picks a rule of (level, symbol) with the rule probabilities. */
static int draw_rule(const SynthPcfgGrammar *g, SynthRng *rng, int level, int symbol) {
    double u = synth_rng_open01(rng), cumulative = 0;
    for (int r = 0; r < g->n_rules - 1; r++) {
        cumulative += synth_pcfg_rule_prob(g, level, symbol, r);
        if (u < cumulative) return r;
    }
    return g->n_rules - 1;
}

/* Expands a symbol of `level` top-down, left to right, emitting its
 * terminals (recursion depth <= levels). */
static void expand(PcfgSentence *sen, int level, int symbol) {
    const SynthPcfgGrammar *g = sen->grammar;
    if (level == g->levels) {
        emit_terminal(sen, symbol);
        return;
    }
    int m;
    int rule = draw_rule(g, sen->rng, level, symbol);
    const int32_t *children = synth_pcfg_rule(g, level, symbol, rule, &m);
    sen->path_symbol[level] = symbol;
    sen->path_length[level] = m;
    for (int t = 0; t < m; t++) {
        sen->path_pos[level] = t;
        expand(sen, level + 1, children[t]);
    }
}

/* Samples one sentence and fills tokens, labels (n_labels, n + 1) and
 * true_nll (n + 1) of the document [x_1 .. x_n, EOS]; *length = n + 1. */
static int sentence_generate(PcfgSentence *sen, SynthPcfgParser *parser, int32_t *labels,
                             double *nll, size_t *length) {
    sen->n = 0;
    expand(sen, 1, 0);
    int n = sen->n;
    size_t doc = (size_t)n + 1;
    sen->tokens[n] = 0;  /* EOS */
    for (int k = 0; k < sen->n_labels; k++) {
        for (int i = 0; i < n; i++)
            labels[(size_t)k * doc + i] = sen->token_labels[(size_t)i * sen->n_labels + k];
        labels[(size_t)k * doc + n] = -1;
    }
    /* true_nll from the tokens and the grammar alone */
    synth_pcfg_parser_reset(parser);
    if (synth_pcfg_parser_reserve(parser, n)) return -1;
    for (int i = 0; i < n; i++) {
        nll[i] = -synth_pcfg_parser_push(parser, sen->tokens[i] - 1);
        if (nll[i] < 0) nll[i] = 0;  /* a forced token: p = 1 up to rounding */
        if (!isfinite(nll[i]))
            return spiral_error("pcfg: internal error, p(token %d of a sampled sentence) = %g", i,
                                exp(-nll[i]));
    }
    nll[n] = -synth_pcfg_parser_log_end(parser);
    if (nll[n] < 0) nll[n] = 0;
    if (!isfinite(nll[n]))
        return spiral_error("pcfg: internal error, p(EOS) = %g after a sampled sentence",
                            exp(-nll[n]));
    *length = doc;
    return 0;
}

int synth_pcfg_make(Dataset *out, const char *params_json, unsigned long seed) {
    SynthPcfgParams params;
    SynthPcfgGrammar grammar = {0};
    SynthPcfgParser parser = {0};
    PcfgSentence sen = {0};
    int32_t *labels = NULL;
    double *nll = NULL;
    memset(out, 0, sizeof *out);
    if (synth_pcfg_params(&params, params_json)) return -1;
    int D = params.levels;
    /* labels: l1.pos (rule_max), then l<l>.symbol (n_symbols), .end (2), .pos (rule_max) */
    int n_labels = 1 + 3 * (D - 2);
    char names_buffer[1 + 3 * SYNTH_PCFG_MAX_LEVELS][DATASET_NAME_CAP];
    const char *names[1 + 3 * SYNTH_PCFG_MAX_LEVELS];
    int n_classes[1 + 3 * SYNTH_PCFG_MAX_LEVELS];
    snprintf(names_buffer[0], DATASET_NAME_CAP, "l1.pos");
    n_classes[0] = params.rule_max;
    for (int l = 2; l < D; l++) {
        static const char *const kinds[3] = {"symbol", "end", "pos"};
        int classes[3] = {params.n_symbols, 2, params.rule_max};
        for (int which = 0; which < 3; which++) {
            int k = label_column(l, which);
            snprintf(names_buffer[k], DATASET_NAME_CAP, "l%d.%s", l, kinds[which]);
            n_classes[k] = classes[which];
        }
    }
    for (int k = 0; k < n_labels; k++) names[k] = names_buffer[k];
    if (dataset_init(out, "pcfg", params.n_terminals + 1, n_labels, names, n_classes, 1))
        return -1;
    int status = synth_pcfg_grammar_build(&grammar, &params);
    if (!status) status = synth_pcfg_parser_init(&parser, &grammar);
    if (!status) {
        size_t longest = (size_t)parser.length_hi[1] + 1;  /* terminals + EOS */
        sen.grammar = &grammar;
        sen.n_labels = n_labels;
        sen.tokens = malloc(longest * sizeof *sen.tokens);
        sen.token_labels = malloc(longest * n_labels * sizeof *sen.token_labels);
        labels = malloc(longest * n_labels * sizeof *labels);
        nll = malloc(longest * sizeof *nll);
        out->params_json = params_to_json(&params);
        if (!sen.tokens || !sen.token_labels || !labels || !nll || !out->params_json)
            status = spiral_error("pcfg: out of memory");
    }
    const long counts[3] = {params.n_train, params.n_val, params.n_test};
    for (int split = 0; split < 3 && !status; split++) {
        SynthRng rng;
        synth_rng_seed(&rng, (uint64_t)seed, (uint64_t)split);
        sen.rng = &rng;
        for (long d = 0; d < counts[split] && !status; d++) {
            size_t length = 0;
            status = sentence_generate(&sen, &parser, labels, nll, &length);
            if (!status) status = dataset_append(out, sen.tokens, length, labels, nll, split);
        }
    }
    free(sen.tokens);
    free(sen.token_labels);
    free(labels);
    free(nll);
    synth_pcfg_parser_free(&parser);
    synth_pcfg_grammar_free(&grammar);
    if (status) dataset_free(out);
    return status;
}
