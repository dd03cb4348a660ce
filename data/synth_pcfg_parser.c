/*
 * synth_pcfg_parser.c: exact prefix probabilities of a layered PCFG
 * (SynthPcfgParser, synth_pcfg.h): p(next token | prefix) for every token
 * of a sentence read left to right.
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

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

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
                ps->partial_first[synth_pcfg_rule_index(g, l, s, r)] = ps->n_partials;
                ps->n_partials += g->rule_length[synth_pcfg_rule_index(g, l, s, r)] - 1;
            }
    ps->partials = calloc((size_t)ps->n_partials + 1, sizeof *ps->partials);
    if (!ps->partials) goto oom;
    for (int l = 1; l < D; l++)
        for (int s = 0; s < synth_pcfg_level_size(g, l); s++)
            for (int r = 0; r < g->n_rules; r++) {
                size_t index = synth_pcfg_rule_index(g, l, s, r);
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
                SynthPcfgSpans *partial = ps->partials + ps->partial_first[synth_pcfg_rule_index(g, l, s, r)];
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
                    ps->partials + ps->partial_first[synth_pcfg_rule_index(g, l, s, r)];
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
