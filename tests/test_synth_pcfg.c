/*
 * test_synth_pcfg.c: the layered PCFG generator (data/synth_pcfg*.c).
 *
 * Checked: determinism and the params round trip (same seed and params, the
 * same dataset; another seed or grammar_seed, another one; n_val does not
 * change the train sentences), dataset_validate, the document layout, and
 * every sentence's labels read back as a derivation of the grammar
 * (constituents from l<l>.end, symbols constant inside them, l<l>.pos
 * counting the children, each parent's children a rule of the parent).
 *
 * The exact probabilities are checked three ways, none of which uses the
 * library's dynamic program:
 *   - tiny grammars: every derivation is enumerated, and the prefix
 *     probabilities, every next-token probability (EOS included, impossible
 *     tokens exactly 0) and every sentence probability are compared with
 *     brute-force sums (1e-12 relative);
 *   - default and long grammars: sum of true_nll over a sentence against
 *     -log P(sentence) from an inside algorithm written here in log space
 *     (1e-9 relative), including sentences whose probability underflows a
 *     double; every next-token distribution sums to 1 (1e-9) and gives the
 *     stored true_nll;
 *   - Monte Carlo: over sampled sentences the count of each token at each
 *     position matches the sum of its predicted probabilities, true_nll
 *     matches the predicted entropy on average, and the mean length matches
 *     the exact expected length (all within 5 standard deviations).
 * Then a table of bad parameters. Prints the reference numbers of the
 * default dataset (vocabulary, mean length, entropy floor, unigram entropy,
 * generation time).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"
#include "error.h"
#include "data_fixtures.h"
#include "harness.h"
#include "ngram.h"
#include "synth_pcfg.h"

/* ---- helpers ---- */

/* Makes the dataset and its grammar, or records a failure. Returns 0/-1. */
static int make_with_grammar(Dataset *ds, SynthPcfgParams *p, SynthPcfgGrammar *g,
                             const char *params_json, unsigned long seed) {
    if (synth_pcfg_make(ds, params_json, seed)) {
        CHECK(0, "%s: make failed: %s", params_json ? params_json : "defaults",
              spiral_last_error());
        return -1;
    }
    if (synth_pcfg_params(p, ds->params_json) || synth_pcfg_grammar_build(g, p)) {
        CHECK(0, "%s: stored params %s: %s", params_json, ds->params_json, spiral_last_error());
        dataset_free(ds);
        return -1;
    }
    return 0;
}

/* log(exp(a) + exp(b)) without overflow; -inf is the log of 0. */
static double log_add(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 1 if (children, m) is a rule of (level, symbol). */
static int is_rule(const SynthPcfgGrammar *g, int level, int symbol, const int32_t *children,
                   int m) {
    for (int r = 0; r < g->n_rules; r++) {
        int length;
        const int32_t *rule = synth_pcfg_rule(g, level, symbol, r, &length);
        if (length == m && memcmp(rule, children, (size_t)m * sizeof *rule) == 0) return 1;
    }
    return 0;
}

/* ---- the grammar itself ---- */

/* Rules in range, distinct per symbol, lengths in range, probs summing to 1. */
static void check_grammar(const SynthPcfgGrammar *g, const char *what) {
    long bad = 0;
    for (int l = 1; l < g->levels; l++)
        for (int s = 0; s < synth_pcfg_level_size(g, l); s++) {
            double total = 0;
            for (int r = 0; r < g->n_rules; r++) {
                int m, m2;
                const int32_t *rule = synth_pcfg_rule(g, l, s, r, &m);
                if (m < g->rule_min || m > g->rule_max) bad++;
                for (int i = 0; i < m; i++)
                    if (rule[i] < 0 || rule[i] >= synth_pcfg_level_size(g, l + 1)) bad++;
                for (int q = 0; q < r; q++) {
                    const int32_t *other = synth_pcfg_rule(g, l, s, q, &m2);
                    if (m2 == m && memcmp(rule, other, (size_t)m * sizeof *rule) == 0) bad++;
                }
                double p = synth_pcfg_rule_prob(g, l, s, r);
                if (!(p > 0)) bad++;
                total += p;
            }
            if (fabs(total - 1) > 1e-12) bad++;
        }
    CHECK(bad == 0, "%s: %ld problems in the grammar (ranges, repeats, probabilities)", what,
          bad);
}

/* ---- labels: every sentence read back as a derivation ---- */

/* A constituent: tokens [start, end) of a sentence and its symbol. */
typedef struct {
    int start, end, symbol;
} Segment;

/* The level-l constituents of the sentence at ds offset `at` of n terminals:
 * the whole sentence at level 1, single tokens at level D, else cut after
 * each l<l>.end = 1. Counts tokens whose symbol label changes inside a
 * constituent, or a sentence not closed by an end, in *bad. Returns the
 * number of segments. */
static int level_segments(const Dataset *ds, const SynthPcfgGrammar *g, size_t at, int n, int l,
                          Segment *out, long *bad) {
    if (l == 1) {
        out[0] = (Segment){0, n, 0};
        return 1;
    }
    if (l == g->levels) {
        for (int i = 0; i < n; i++) out[i] = (Segment){i, i + 1, ds->tokens[at + i] - 1};
        return n;
    }
    char name[DATASET_NAME_CAP];
    snprintf(name, sizeof name, "l%d.symbol", l);
    const int32_t *symbol = ds->labels[dataset_find_label(ds, name)].values + at;
    snprintf(name, sizeof name, "l%d.end", l);
    const int32_t *end = ds->labels[dataset_find_label(ds, name)].values + at;
    int count = 0, start = 0;
    for (int i = 0; i < n; i++) {
        if (symbol[i] != symbol[start]) (*bad)++;
        if (end[i] == 1) {
            out[count++] = (Segment){start, i + 1, symbol[start]};
            start = i + 1;
        } else if (end[i] != 0) {
            (*bad)++;
        }
    }
    if (start != n) (*bad)++;
    return count;
}

/* Reads every document's labels back as a derivation: the level-(l+1)
 * constituents nest inside the level-l ones, l<l>.pos numbers them 0, 1,
 * .. within their parent, and their symbols form a rule of the parent.
 * Also checks the layout: EOS last and only last, every label -1 at EOS and
 * defined elsewhere, lengths within rule_min^(D-1) .. rule_max^(D-1). */
static void check_labels(const Dataset *ds, const SynthPcfgGrammar *g, const char *what) {
    int D = g->levels, longest = 1, shortest = 1;
    for (int l = 1; l < D; l++) {
        longest *= g->rule_max;
        shortest *= g->rule_min;
    }
    Segment *parents = malloc((size_t)longest * sizeof *parents);   /* (longest) */
    Segment *children = malloc((size_t)longest * sizeof *children); /* (longest) */
    int32_t *symbols = malloc((size_t)g->rule_max * sizeof *symbols);
    long bad_layout = 0, bad_constant = 0, bad_nesting = 0, bad_pos = 0, bad_rule = 0;
    long constituents = 0;
    for (size_t d = 0; d < ds->n_docs; d++) {
        size_t at = ds->doc_start[d];
        int n = (int)(ds->doc_start[d + 1] - at) - 1;  /* terminals */
        if (n < shortest || n > longest) {
            bad_layout++;
            continue;
        }
        long layout = 0;
        for (int i = 0; i <= n; i++) {
            int eos = i == n, token = ds->tokens[at + i];
            if ((token == 0) != eos) layout++;
            for (int k = 0; k < ds->n_labels; k++)
                if ((ds->labels[k].values[at + i] == -1) != eos) layout++;
        }
        bad_layout += layout;
        if (layout) continue;
        for (int l = 1; l < D; l++) {
            int n_parents = level_segments(ds, g, at, n, l, parents, &bad_constant);
            int n_children = level_segments(ds, g, at, n, l + 1, children, &bad_constant);
            char name[DATASET_NAME_CAP];
            snprintf(name, sizeof name, "l%d.pos", l);
            const int32_t *pos = ds->labels[dataset_find_label(ds, name)].values + at;
            int c = 0;
            for (int q = 0; q < n_parents; q++) {
                int m = 0;
                while (c < n_children && children[c].end <= parents[q].end) {
                    if (children[c].start < parents[q].start) bad_nesting++;
                    for (int i = children[c].start; i < children[c].end; i++)
                        if (pos[i] != m) bad_pos++;
                    if (m < g->rule_max) symbols[m] = children[c].symbol;
                    m++;
                    c++;
                }
                if (c == 0 || children[c - 1].end != parents[q].end) bad_nesting++;
                if (m > g->rule_max || !is_rule(g, l, parents[q].symbol, symbols, m)) bad_rule++;
                constituents++;
            }
            if (c != n_children) bad_nesting++;
        }
    }
    CHECK(constituents > 0, "%s: no constituents checked", what);
    CHECK(bad_layout == 0, "%s: %ld layout problems (EOS, -1 labels, lengths)", what, bad_layout);
    CHECK(bad_constant == 0, "%s: %ld symbol changes inside constituents or unclosed sentences",
          what, bad_constant);
    CHECK(bad_nesting == 0, "%s: %ld constituents crossing their parent's boundary", what,
          bad_nesting);
    CHECK(bad_pos == 0, "%s: %ld l<l>.pos labels differ from the child's index", what, bad_pos);
    CHECK(bad_rule == 0, "%s: %ld of %ld constituents whose children are not a rule", what,
          bad_rule, constituents);
    free(parents);
    free(children);
    free(symbols);
}

/* ---- an independent inside algorithm, in log space ---- */

/* log P(sentence = tokens[0..n-1], terminal ids) by CKY in log space.
 * Level by level from the terminals up, inside(A, i, d) = log P(A =>* the
 * d tokens from i) for the lengths d a level-l symbol can have
 * (rule_min^(D-l) .. rule_max^(D-l)); each rule's children are placed left
 * to right by a forward pass over split points, chain[o] = log P(the
 * children so far =>* the o tokens from i). */
static double log_sentence_prob(const SynthPcfgGrammar *g, const int *tokens, int n) {
    int D = g->levels, vmax = g->n_symbols > g->n_terminals ? g->n_symbols : g->n_terminals;
    int lo[SYNTH_PCFG_MAX_LEVELS + 1], hi[SYNTH_PCFG_MAX_LEVELS + 1], width = 1;
    lo[D] = hi[D] = 1;
    for (int l = D - 1; l >= 1; l--) {
        lo[l] = lo[l + 1] * g->rule_min;
        hi[l] = hi[l + 1] * g->rule_max;
    }
    for (int l = 1; l <= D; l++) {
        if (hi[l] > n) hi[l] = n;
        if (hi[l] - lo[l] + 1 > width) width = hi[l] - lo[l] + 1;
    }
    /* below: level l+1, here: level l, each (vmax, n, width) */
    size_t size = (size_t)vmax * n * width;
    double *below = malloc(size * sizeof *below);
    double *here = malloc(size * sizeof *here);
    double *chain = malloc((size_t)(n + 1) * sizeof *chain);  /* (n + 1) */
    double *next = malloc((size_t)(n + 1) * sizeof *next);    /* (n + 1) */
    for (size_t k = 0; k < size; k++) below[k] = -INFINITY;
    for (int i = 0; i < n; i++) below[((size_t)tokens[i] * n + i) * width] = 0;
    for (int l = D - 1; l >= 1; l--) {
        int c = l + 1;
        for (size_t k = 0; k < size; k++) here[k] = -INFINITY;
        for (int A = 0; A < synth_pcfg_level_size(g, l); A++)
            for (int r = 0; r < g->n_rules; r++) {
                int m;
                const int32_t *rule = synth_pcfg_rule(g, l, A, r, &m);
                double log_p = log(synth_pcfg_rule_prob(g, l, A, r));
                for (int i = 0; i < n && (l > 1 || i == 0); i++) {  /* the root starts at 0 */
                    int span = n - i < hi[l] ? n - i : hi[l];
                    for (int o = 0; o <= span; o++) chain[o] = o == 0 ? 0 : -INFINITY;
                    for (int t = 0; t < m; t++) {
                        for (int o = 0; o <= span; o++) next[o] = -INFINITY;
                        for (int o = 0; o <= span; o++) {
                            if (chain[o] == -INFINITY) continue;
                            const double *in = below + ((size_t)rule[t] * n + i + o) * width;
                            for (int d = lo[c]; d <= hi[c] && o + d <= span; d++)
                                if (in[d - lo[c]] > -INFINITY)
                                    next[o + d] = log_add(next[o + d], chain[o] + in[d - lo[c]]);
                        }
                        memcpy(chain, next, (size_t)(span + 1) * sizeof *chain);
                    }
                    for (int d = lo[l]; d <= span; d++)
                        if (chain[d] > -INFINITY) {
                            double *cell = &here[((size_t)A * n + i) * width + d - lo[l]];
                            *cell = log_add(*cell, log_p + chain[d]);
                        }
                }
            }
        double *swap = below;
        below = here;
        here = swap;
    }
    /* the root (symbol 0) over (0, n) */
    double result = n >= lo[1] && n <= hi[1] ? below[(size_t)(n - lo[1])] : -INFINITY;
    free(below);
    free(here);
    free(chain);
    free(next);
    return result;
}

/* ---- the library's law replayed along the stored sentences ---- */

/* For up to max_docs documents of a split: at every prefix the next-token
 * distribution sums to 1 and gives the stored true_nll (EOS included), the
 * entropy function agrees with the distribution, and the sum of true_nll
 * equals -log P(sentence) from log_sentence_prob (1e-9 relative). */
static void check_chain_rule(const Dataset *ds, const SynthPcfgGrammar *g, int split,
                             long max_docs, const char *what) {
    SynthPcfgParser parser;
    if (synth_pcfg_parser_init(&parser, g)) {
        CHECK(0, "%s: parser init: %s", what, spiral_last_error());
        return;
    }
    int V = g->n_terminals + 1;
    double *probs = malloc((size_t)V * sizeof *probs);  /* (V) */
    int *sentence = malloc((size_t)parser.length_hi[1] * sizeof *sentence);
    long docs = 0, prefixes = 0, bad_sum = 0, bad_nll = 0, bad_total = 0, bad_entropy = 0;
    double worst_sum = 0, worst_total = 0, largest_total = 0;
    for (size_t d = 0; d < ds->n_docs && docs < max_docs; d++) {
        if (ds->doc_split[d] != split) continue;
        size_t at = ds->doc_start[d];
        int n = (int)(ds->doc_start[d + 1] - at) - 1;
        double total = 0;
        synth_pcfg_parser_reset(&parser);
        for (int i = 0; i <= n; i++) {
            int token = ds->tokens[at + i];
            synth_pcfg_next_probs(&parser, probs);
            double sum = 0, entropy = 0;
            for (int v = 0; v < V; v++) {
                sum += probs[v];
                if (probs[v] > 0) entropy -= probs[v] * log(probs[v]);
            }
            if (fabs(sum - 1) > worst_sum) worst_sum = fabs(sum - 1);
            if (fabs(sum - 1) > 1e-9) bad_sum++;
            if (fabs(entropy - synth_pcfg_next_entropy(&parser)) > 1e-12) bad_entropy++;
            if (fabs(-log(probs[token]) - ds->true_nll[at + i]) > 1e-12) bad_nll++;
            total += ds->true_nll[at + i];
            if (i < n) {
                sentence[i] = token - 1;
                if (fabs(synth_pcfg_parser_push(&parser, token - 1) + ds->true_nll[at + i]) >
                    1e-12)
                    bad_nll++;
            }
            prefixes++;
        }
        double independent = -log_sentence_prob(g, sentence, n);
        double gap = fabs(total - independent) / independent;
        if (gap > worst_total) worst_total = gap;
        if (!(gap <= 1e-9)) bad_total++;
        if (total > largest_total) largest_total = total;
        docs++;
    }
    CHECK(docs > 0, "%s: no documents checked", what);
    CHECK(bad_sum == 0, "%s: %ld of %ld next-token distributions do not sum to 1 (worst %.3g)",
          what, bad_sum, prefixes, worst_sum);
    CHECK(bad_nll == 0, "%s: %ld true_nll differ from -log p(token | prefix)", what, bad_nll);
    CHECK(bad_entropy == 0, "%s: %ld next-token entropies differ", what, bad_entropy);
    CHECK(bad_total == 0,
          "%s: %ld of %ld sentences: sum of true_nll != -log P(sentence) (worst rel %.3g)", what,
          bad_total, docs, worst_total);
    printf("  %s: chain rule on %ld sentences, %ld prefixes: worst |sum p - 1| %.2g, worst "
           "relative gap to -log P %.2g, largest -log P %.1f nats\n",
           what, docs, prefixes, worst_sum, worst_total, largest_total);
    free(probs);
    free(sentence);
    synth_pcfg_parser_free(&parser);
}

/* ---- brute force over every derivation of a tiny grammar ---- */

/* Every derivation: its sentence (terminal ids) and probability. */
typedef struct {
    long count, capacity;
    int max_len;
    int32_t *tokens;   /* (capacity, max_len) */
    int *lengths;      /* (capacity) */
    double *probs;     /* (capacity) */
} Derivations;

/* The most symbols pending at once: levels * rule_max at most. */
#define PENDING_CAP (SYNTH_PCFG_MAX_LEVELS * 16 + 1)

/* Expands the leftmost pending symbol in every way and recurses until only
 * terminals were left. pending_level/pending_symbol (top) is a stack whose
 * top, at top - 1, is the leftmost symbol; each call works on its own copy. */
static void enumerate(const SynthPcfgGrammar *g, Derivations *all, const int *pending_level,
                      const int *pending_symbol, int top, int32_t *sentence, int length,
                      double prob) {
    if (top == 0) {
        if (all->count == all->capacity) return;  /* checked by the caller */
        memcpy(all->tokens + all->count * all->max_len, sentence,
               (size_t)length * sizeof *sentence);
        all->lengths[all->count] = length;
        all->probs[all->count] = prob;
        all->count++;
        return;
    }
    int level = pending_level[top - 1], symbol = pending_symbol[top - 1];
    if (level == g->levels) {
        sentence[length] = symbol;
        enumerate(g, all, pending_level, pending_symbol, top - 1, sentence, length + 1, prob);
        return;
    }
    int levels[PENDING_CAP], symbols[PENDING_CAP];
    memcpy(levels, pending_level, (size_t)(top - 1) * sizeof *levels);
    memcpy(symbols, pending_symbol, (size_t)(top - 1) * sizeof *symbols);
    for (int r = 0; r < g->n_rules; r++) {
        int m;
        const int32_t *rule = synth_pcfg_rule(g, level, symbol, r, &m);
        for (int t = 0; t < m; t++) {  /* leftmost child on top */
            levels[top - 1 + t] = level + 1;
            symbols[top - 1 + t] = rule[m - 1 - t];
        }
        enumerate(g, all, levels, symbols, top - 1 + m, sentence, length,
                  prob * synth_pcfg_rule_prob(g, level, symbol, r));
    }
}

/* Sum of the probabilities of derivations whose sentence starts with
 * prefix[0..k-1] (exact = 0) or is exactly it (exact = 1). */
static double brute_sum(const Derivations *all, const int32_t *prefix, int k, int exact) {
    double total = 0;
    for (long q = 0; q < all->count; q++) {
        int length = all->lengths[q];
        if (length < k || (exact && length != k)) continue;
        if (memcmp(all->tokens + q * all->max_len, prefix, (size_t)k * sizeof *prefix) == 0)
            total += all->probs[q];
    }
    return total;
}

/* 1 if a and b agree within rel relative (both 0 counts as agreeing). */
static int close_rel(double a, double b, double rel) {
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b));
}

/* Compares the parser with brute force on every prefix of every derivation
 * of a tiny grammar, and the generated dataset's true_nll. Returns 1 if the
 * grammar is ambiguous (some sentence has two derivations). */
static int check_brute_force(const char *params_json) {
    Dataset ds;
    SynthPcfgParams p;
    SynthPcfgGrammar g;
    if (make_with_grammar(&ds, &p, &g, params_json, 11)) return 0;
    int longest = 1;
    for (int l = 1; l < g.levels; l++) longest *= g.rule_max;
    Derivations all = {0, 200000, longest, NULL, NULL, NULL};
    all.tokens = malloc((size_t)all.capacity * longest * sizeof *all.tokens);
    all.lengths = malloc((size_t)all.capacity * sizeof *all.lengths);
    all.probs = malloc((size_t)all.capacity * sizeof *all.probs);
    int root_level = 1, root_symbol = 0;
    int32_t *sentence = malloc((size_t)longest * sizeof *sentence);
    int32_t *extended = malloc((size_t)(longest + 1) * sizeof *extended);
    enumerate(&g, &all, &root_level, &root_symbol, 1, sentence, 0, 1.0);
    CHECK(all.count < all.capacity, "%s: more than %ld derivations, grammar not tiny",
          params_json, all.capacity);
    double total_prob = 0;
    for (long q = 0; q < all.count; q++) total_prob += all.probs[q];
    CHECK(fabs(total_prob - 1) < 1e-12, "%s: derivations sum to %.15g", params_json, total_prob);

    /* the law at every prefix of every derivation's sentence */
    SynthPcfgParser parser;
    synth_pcfg_parser_init(&parser, &g);
    int V = g.n_terminals + 1;
    double *probs = malloc((size_t)V * sizeof *probs);  /* (V) */
    long bad_prefix = 0, bad_next = 0, bad_zero = 0, bad_sentence = 0, checked = 0, ambiguous = 0;
    double worst = 0;
    for (long q = 0; q < all.count; q++) {
        const int32_t *x = all.tokens + q * all.max_len;
        int n = all.lengths[q];
        synth_pcfg_parser_reset(&parser);
        for (int k = 0; k <= n; k++) {
            double before = brute_sum(&all, x, k, 0);
            if (!close_rel(exp(parser.log_prefix), before, 1e-12)) bad_prefix++;
            synth_pcfg_next_probs(&parser, probs);
            memcpy(extended, x, (size_t)k * sizeof *extended);
            for (int v = 0; v < V; v++) {
                double want;
                if (v == 0) {
                    want = brute_sum(&all, x, k, 1) / before;
                } else {
                    extended[k] = v - 1;
                    want = brute_sum(&all, extended, k + 1, 0) / before;
                }
                double gap = fabs(probs[v] - want) / fmax(want, 1e-300);
                if (want > 0 && gap > worst) worst = gap;
                if (!close_rel(probs[v], want, 1e-12)) bad_next++;
                if ((want == 0) != (probs[v] == 0)) bad_zero++;
                checked++;
            }
            if (k < n) synth_pcfg_parser_push(&parser, x[k]);
        }
        double exact = brute_sum(&all, x, n, 1);
        if (!close_rel(parser.log_prefix + synth_pcfg_parser_log_end(&parser), log(exact),
                       1e-12))
            bad_sentence++;
        if (exact > all.probs[q] * (1 + 1e-9)) ambiguous++;
    }
    /* the stored true_nll of the generated documents */
    long bad_nll = 0;
    for (size_t d = 0; d < ds.n_docs; d++) {
        size_t at = ds.doc_start[d];
        int n = (int)(ds.doc_start[d + 1] - at) - 1;
        for (int i = 0; i < n; i++) sentence[i] = ds.tokens[at + i] - 1;
        for (int i = 0; i <= n; i++) {
            /* p(x_i | x_<i) = Prefix(i+1) / Prefix(i); p(EOS) = P(x) / Prefix(n) */
            double after = i < n ? brute_sum(&all, sentence, i + 1, 0)
                                  : brute_sum(&all, sentence, n, 1);
            double want = after / brute_sum(&all, sentence, i, 0);
            if (!close_rel(exp(-ds.true_nll[at + i]), want, 1e-12)) bad_nll++;
        }
    }
    CHECK(bad_prefix == 0, "%s: %ld prefix probabilities differ from brute force", params_json,
          bad_prefix);
    CHECK(bad_next == 0, "%s: %ld of %ld next-token probabilities differ (worst rel %.3g)",
          params_json, bad_next, checked, worst);
    CHECK(bad_zero == 0, "%s: %ld impossible tokens without probability exactly 0",
          params_json, bad_zero);
    CHECK(bad_sentence == 0, "%s: %ld sentence probabilities differ from brute force",
          params_json, bad_sentence);
    CHECK(ds.n_docs > 0 && bad_nll == 0, "%s: %ld stored true_nll differ from brute force",
          params_json, bad_nll);
    printf("  brute force %s: %ld derivations, %ld ambiguous, %ld probabilities, worst rel %.2g\n",
           params_json, all.count, ambiguous, checked, worst);
    free(probs);
    free(sentence);
    free(extended);
    free(all.tokens);
    free(all.lengths);
    free(all.probs);
    synth_pcfg_parser_free(&parser);
    synth_pcfg_grammar_free(&g);
    dataset_free(&ds);
    return ambiguous > 0;
}

/* ---- Monte Carlo ---- */

/* Expected number of terminals under symbol A of level l:
 * E_D = 1, E_l(A) = sum_r p_r sum_t E_{l+1}(c_t). */
static double expected_length(const SynthPcfgGrammar *g, int level, int symbol) {
    if (level == g->levels) return 1;
    double total = 0;
    for (int r = 0; r < g->n_rules; r++) {
        int m;
        const int32_t *rule = synth_pcfg_rule(g, level, symbol, r, &m);
        double length = 0;
        for (int t = 0; t < m; t++) length += expected_length(g, level + 1, rule[t]);
        total += synth_pcfg_rule_prob(g, level, symbol, r) * length;
    }
    return total;
}

/* Over the documents of a split: for each token v, the number of times it
 * occurs equals the sum over positions of p(v | prefix) in expectation (a
 * martingale, variance sum p (1 - p)); the sum of true_nll equals the sum
 * of the predicted entropies in expectation; the mean sentence length is
 * the expected length. Each within 5 standard deviations. */
static void check_monte_carlo(const Dataset *ds, const SynthPcfgGrammar *g, int split,
                              const char *what) {
    SynthPcfgParser parser;
    if (synth_pcfg_parser_init(&parser, g)) return;
    int V = g->n_terminals + 1;
    double *probs = malloc((size_t)V * sizeof *probs);        /* (V) */
    double *excess = calloc((size_t)V, sizeof *excess);       /* (V) count - sum p */
    double *variance = calloc((size_t)V, sizeof *variance);   /* (V) sum p (1 - p) */
    double nll_gap = 0, nll_gap_sq = 0, length_sum = 0, length_sq = 0;
    long docs = 0, positions = 0;
    for (size_t d = 0; d < ds->n_docs; d++) {
        if (ds->doc_split[d] != split) continue;
        size_t at = ds->doc_start[d];
        int n = (int)(ds->doc_start[d + 1] - at) - 1;
        synth_pcfg_parser_reset(&parser);
        for (int i = 0; i <= n; i++) {
            int token = ds->tokens[at + i];
            synth_pcfg_next_probs(&parser, probs);
            for (int v = 0; v < V; v++) {
                excess[v] += (v == token) - probs[v];
                variance[v] += probs[v] * (1 - probs[v]);
            }
            double gap = ds->true_nll[at + i] - synth_pcfg_next_entropy(&parser);
            nll_gap += gap;
            nll_gap_sq += gap * gap;
            if (i < n) synth_pcfg_parser_push(&parser, token - 1);
            positions++;
        }
        length_sum += n;
        length_sq += (double)n * n;
        docs++;
    }
    long bad_token = 0;
    for (int v = 0; v < V; v++)
        if (fabs(excess[v]) > 5 * sqrt(variance[v]) + 1e-9) bad_token++;
    double mean = length_sum / docs, expected = expected_length(g, 1, 0);
    double sd_mean = sqrt((length_sq / docs - mean * mean) / docs);
    CHECK(bad_token == 0, "%s: %ld tokens whose count departs from the predicted sum by more "
          "than 5 sd over %ld positions", what, bad_token, positions);
    CHECK(fabs(nll_gap) <= 5 * sqrt(nll_gap_sq) + 1e-9,
          "%s: sum of true_nll - predicted entropy = %.3f over %ld positions (sd %.3f)", what,
          nll_gap, positions, sqrt(nll_gap_sq));
    CHECK(fabs(mean - expected) <= 5 * sd_mean + 1e-9,
          "%s: mean length %.3f, expected %.3f (sd of the mean %.3f)", what, mean, expected,
          sd_mean);
    printf("  %s: Monte Carlo over %ld sentences: mean length %.3f (exact %.3f), "
           "mean true_nll - entropy %.4f\n", what, docs, mean, expected, nll_gap / positions);
    free(probs);
    free(excess);
    free(variance);
    synth_pcfg_parser_free(&parser);
}

/* ---- tests ---- */

/* Exact label names and classes of the defaults. */
static void check_label_names(const Dataset *ds, const SynthPcfgParams *p) {
    int expected = 1 + 3 * (p->levels - 2);
    CHECK(ds->n_labels == expected, "%d labels, expected %d", ds->n_labels, expected);
    CHECK(dataset_find_label(ds, "l1.pos") == 0, "l1.pos is not the first label");
    CHECK(ds->labels[0].n_classes == p->rule_max, "l1.pos has %d classes", ds->labels[0].n_classes);
    CHECK(dataset_find_label(ds, "l1.symbol") == -1 && dataset_find_label(ds, "l1.end") == -1,
          "constant root labels present");
    for (int l = 2; l < p->levels; l++) {
        static const char *const kinds[3] = {"symbol", "end", "pos"};
        int classes[3] = {p->n_symbols, 2, p->rule_max};
        for (int k = 0; k < 3; k++) {
            char name[DATASET_NAME_CAP];
            snprintf(name, sizeof name, "l%d.%s", l, kinds[k]);
            int index = dataset_find_label(ds, name);
            CHECK(index == 1 + 3 * (l - 2) + k, "label %s at %d", name, index);
            if (index >= 0)
                CHECK(ds->labels[index].n_classes == classes[k], "label %s has %d classes", name,
                      ds->labels[index].n_classes);
        }
    }
    CHECK(dataset_find_label(ds, "l5.symbol") == -1, "a label for the terminal level");
}

static void test_defaults_and_reference_numbers(void) {
    Dataset ds;
    SynthPcfgParams p;
    SynthPcfgGrammar g;
    double start = seconds_now();
    int status = synth_pcfg_make(&ds, NULL, 1);
    double elapsed = seconds_now() - start;
    CHECK(status == 0, "default make: %s", spiral_last_error());
    if (status) return;
    CHECK(strcmp(ds.family, "pcfg") == 0, "family %s", ds.family);
    CHECK(synth_pcfg_params(&p, ds.params_json) == 0, "stored params: %s", spiral_last_error());
    CHECK(p.levels == 5 && p.n_symbols == 3 && p.n_terminals == 3 && p.n_rules == 3 &&
              p.rule_min == 2 && p.rule_max == 3 && p.grammar_seed == 1 &&
              !p.random_rule_probs && p.n_train == 4000 && p.n_val == 500 && p.n_test == 500,
          "defaults changed: %s", ds.params_json);
    CHECK(dataset_validate(&ds) == 0, "defaults: %s", spiral_last_error());
    CHECK(ds.vocab_size == p.n_terminals + 1, "vocab %d", ds.vocab_size);
    CHECK(ds.n_docs == 5000, "%zu documents", ds.n_docs);
    long bad_split = 0;
    for (size_t d = 0; d < ds.n_docs; d++) {
        int want = d < 4000 ? SPLIT_TRAIN : d < 4500 ? SPLIT_VAL : SPLIT_TEST;
        if (ds.doc_split[d] != want) bad_split++;
    }
    CHECK(bad_split == 0, "%ld documents in the wrong split", bad_split);
    check_label_names(&ds, &p);
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
    CHECK(elapsed < 5.0, "default generation took %.2f s, budget 5 s", elapsed);
#endif
    if (synth_pcfg_grammar_build(&g, &p) == 0) {
        check_grammar(&g, "defaults");
        check_labels(&ds, &g, "defaults");
        check_chain_rule(&ds, &g, SPLIT_VAL, 60, "defaults");
        check_monte_carlo(&ds, &g, SPLIT_VAL, "defaults");
        synth_pcfg_grammar_free(&g);
    }
    /* reference numbers for the README */
    size_t count, train_tokens = dataset_split_tokens(&ds, SPLIT_TRAIN);
    double floor = dataset_true_nll_mean(&ds, SPLIT_VAL, &count);
    double mean_length = (double)ds.n_tokens / (double)ds.n_docs - 1;
    long shortest = 1 << 30, longest = 0;
    for (size_t d = 0; d < ds.n_docs; d++) {
        long n = (long)(ds.doc_start[d + 1] - ds.doc_start[d]) - 1;
        if (n < shortest) shortest = n;
        if (n > longest) longest = n;
    }
    double unigram = unigram_entropy(&ds, SPLIT_TRAIN);
    double bigram = ngram_loss(&ds, 2, SPLIT_TRAIN, SPLIT_VAL, 0.01);
    double trigram = ngram_loss(&ds, 3, SPLIT_TRAIN, SPLIT_VAL, 0.01);
    CHECK(floor > 0 && floor < unigram, "floor %.4f vs unigram entropy %.4f", floor, unigram);
    printf("pcfg defaults %s (seed 1):\n", ds.params_json);
    printf("  vocab %d (EOS + %d terminals), %zu sentences, %zu train tokens\n", ds.vocab_size,
           p.n_terminals, ds.n_docs, train_tokens);
    printf("  sentence length: mean %.2f terminals + EOS (min %ld, max %ld)\n", mean_length,
           shortest, longest);
    printf("  entropy floor (mean true_nll, val, EOS included): %.4f nats/token over %zu tokens\n",
           floor, count);
    printf("  unigram entropy (train): %.4f nats; bigram / trigram loss (val, add-0.01): "
           "%.4f / %.4f\n", unigram, bigram, trigram);
    printf("  generation time: %.3f s\n", elapsed);
    dataset_free(&ds);
}

static void test_determinism(void) {
    const char *small = "{\"n_train\": 300, \"n_val\": 40, \"n_test\": 40}";
    Dataset a, b, c, d, e, f;
    CHECK(synth_pcfg_make(&a, small, 7) == 0, "make: %s", spiral_last_error());
    CHECK(synth_pcfg_make(&b, small, 7) == 0, "make again: %s", spiral_last_error());
    CHECK(synth_pcfg_make(&c, small, 8) == 0, "make seed 8: %s", spiral_last_error());
    CHECK(synth_pcfg_make(&d, a.params_json, 7) == 0, "make from params_json: %s",
          spiral_last_error());
    CHECK(synth_pcfg_make(&e, "{\"n_train\": 300, \"n_val\": 40, \"n_test\": 40, "
                              "\"grammar_seed\": 2}", 7) == 0,
          "make grammar_seed 2: %s", spiral_last_error());
    CHECK(synth_pcfg_make(&f, "{\"n_train\": 300, \"n_val\": 7, \"n_test\": 40}", 7) == 0,
          "make n_val 7: %s", spiral_last_error());
    CHECK(datasets_equal(&a, &b), "same params and seed give different datasets");
    CHECK(datasets_equal(&a, &d), "the stored params_json does not reproduce the dataset");
    CHECK(!datasets_equal(&a, &c) && (a.n_tokens != c.n_tokens ||
                                      memcmp(a.tokens, c.tokens, a.n_tokens * sizeof *a.tokens)),
          "seeds 7 and 8 give the same tokens");
    CHECK(a.n_tokens != e.n_tokens || memcmp(a.tokens, e.tokens, a.n_tokens * sizeof *a.tokens),
          "grammar seeds 1 and 2 give the same tokens");
    size_t train_a = a.doc_start[300], train_f = f.doc_start[300];
    CHECK(train_a == train_f && memcmp(a.tokens, f.tokens, train_a * sizeof *a.tokens) == 0 &&
              memcmp(a.true_nll, f.true_nll, train_a * sizeof *a.true_nll) == 0,
          "changing n_val changed the train sentences");
    Dataset dflt, empty;
    CHECK(synth_pcfg_make(&dflt, NULL, 3) == 0 && synth_pcfg_make(&empty, "{}", 3) == 0 &&
              strcmp(dflt.params_json, empty.params_json) == 0 &&
              dflt.n_tokens == empty.n_tokens &&
              memcmp(dflt.tokens, empty.tokens, dflt.n_tokens * sizeof *dflt.tokens) == 0,
          "NULL and {} differ");
    dataset_free(&dflt);
    dataset_free(&empty);
    dataset_free(&a);
    dataset_free(&b);
    dataset_free(&c);
    dataset_free(&d);
    dataset_free(&e);
    dataset_free(&f);
}

/* Labels, chain rule and Monte Carlo on other shapes of grammar. */
static void test_other_grammars(void) {
    const struct {
        const char *json;
        long chain_docs;
    } cases[] = {
        {"{\"random_rule_probs\": true, \"n_train\": 200, \"n_val\": 300, \"n_test\": 0}", 60},
        {"{\"levels\": 2, \"n_terminals\": 40, \"n_rules\": 9, \"rule_min\": 1, "
         "\"rule_max\": 6, \"n_train\": 100, \"n_val\": 300, \"n_test\": 10}", 300},
        {"{\"levels\": 7, \"n_symbols\": 2, \"n_terminals\": 2, \"n_rules\": 2, "
         "\"rule_min\": 1, \"rule_max\": 3, \"grammar_seed\": 5, \"n_train\": 50, "
         "\"n_val\": 300, \"n_test\": 0}", 20},
        {"{\"levels\": 4, \"n_symbols\": 5, \"n_terminals\": 6, \"n_rules\": 4, "
         "\"rule_min\": 3, \"grammar_seed\": 3, \"random_rule_probs\": true, "
         "\"n_train\": 10, \"n_val\": 300, \"n_test\": 0}", 40},
        /* 2048 terminals: P(sentence) far below the smallest double */
        {"{\"levels\": 12, \"rule_min\": 2, \"rule_max\": 2, \"n_train\": 0, \"n_val\": 3, "
         "\"n_test\": 0}", 3},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Dataset ds;
        SynthPcfgParams p;
        SynthPcfgGrammar g;
        if (make_with_grammar(&ds, &p, &g, cases[k].json, 21)) continue;
        CHECK(dataset_validate(&ds) == 0, "%s: %s", cases[k].json, spiral_last_error());
        check_grammar(&g, cases[k].json);
        check_labels(&ds, &g, cases[k].json);
        check_chain_rule(&ds, &g, SPLIT_VAL, cases[k].chain_docs, cases[k].json);
        if (p.n_val >= 100) check_monte_carlo(&ds, &g, SPLIT_VAL, cases[k].json);
        synth_pcfg_grammar_free(&g);
        dataset_free(&ds);
    }
}

static void test_brute_force(void) {
    const char *cases[] = {
        "{\"levels\": 2, \"n_terminals\": 3, \"n_rules\": 4, \"rule_min\": 1, \"rule_max\": 3, "
        "\"n_train\": 30, \"n_val\": 0, \"n_test\": 0}",
        "{\"levels\": 3, \"n_symbols\": 3, \"n_terminals\": 2, \"n_rules\": 3, \"rule_min\": 1, "
        "\"rule_max\": 2, \"grammar_seed\": 2, \"n_train\": 30, \"n_val\": 0, \"n_test\": 0}",
        "{\"levels\": 3, \"n_symbols\": 2, \"n_terminals\": 2, \"n_rules\": 3, \"rule_min\": 2, "
        "\"rule_max\": 3, \"random_rule_probs\": true, \"n_train\": 30, \"n_val\": 0, "
        "\"n_test\": 0}",
        "{\"levels\": 4, \"n_symbols\": 2, \"n_terminals\": 2, \"n_rules\": 2, \"rule_min\": 1, "
        "\"rule_max\": 2, \"grammar_seed\": 4, \"random_rule_probs\": true, \"n_train\": 30, "
        "\"n_val\": 0, \"n_test\": 0}",
        "{\"levels\": 4, \"n_symbols\": 2, \"n_terminals\": 2, \"n_rules\": 2, \"rule_min\": 2, "
        "\"rule_max\": 2, \"grammar_seed\": 7, \"n_train\": 30, \"n_val\": 0, \"n_test\": 0}",
    };
    int ambiguous = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        ambiguous += check_brute_force(cases[k]);
    CHECK(ambiguous > 0, "no tiny grammar is ambiguous: the brute-force test would not see "
          "derivations being summed");
}

/* The parser on its own: impossible tokens, the empty prefix, the longest
 * sentence. */
static void test_parser_edges(void) {
    SynthPcfgParams p;
    SynthPcfgGrammar g;
    SynthPcfgParser parser;
    if (synth_pcfg_params(&p, "{\"levels\": 3, \"rule_min\": 2, \"rule_max\": 2}") ||
        synth_pcfg_grammar_build(&g, &p)) {
        CHECK(0, "params: %s", spiral_last_error());
        return;
    }
    CHECK(synth_pcfg_parser_init(&parser, &g) == 0, "init: %s", spiral_last_error());
    CHECK(synth_pcfg_parser_log_end(&parser) == -INFINITY, "the empty sentence is possible");
    CHECK(synth_pcfg_parser_extend(&parser, -1) == -INFINITY &&
              synth_pcfg_parser_extend(&parser, p.n_terminals) == -INFINITY,
          "out-of-range terminals have a probability");
    /* every sentence has exactly 4 terminals: p(EOS) is 0 before and 1 after */
    double probs[4];
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        synth_pcfg_next_probs(&parser, probs);
        if (probs[0] != 0) bad++;
        int a = 0;
        while (a < p.n_terminals && probs[a + 1] == 0) a++;
        if (synth_pcfg_parser_push(&parser, a) == -INFINITY) bad++;
    }
    synth_pcfg_next_probs(&parser, probs);
    CHECK(bad == 0 && fabs(probs[0] - 1) < 1e-12, "fixed-length sentences: p(EOS) %.17g, %ld "
          "problems", probs[0], bad);
    CHECK(synth_pcfg_parser_push(&parser, 0) == -INFINITY && parser.impossible,
          "a fifth terminal is possible");
    CHECK(synth_pcfg_parser_log_end(&parser) == -INFINITY && synth_pcfg_next_entropy(&parser) == 0,
          "an impossible prefix still has a law");
    synth_pcfg_parser_reset(&parser);
    CHECK(parser.n == 0 && !parser.impossible && parser.log_prefix == 0, "reset");
    synth_pcfg_parser_free(&parser);
    synth_pcfg_grammar_free(&g);
}

static void test_bad_params(void) {
    const struct {
        const char *json, *field;
    } cases[] = {
        {"{\"levels\": 1}", "pcfg.levels"},
        {"{\"levels\": 17}", "pcfg.levels"},
        {"{\"levels\": 9, \"rule_max\": 3}", "pcfg.levels"},
        {"{\"levels\": \"5\"}", "pcfg.levels"},
        {"{\"n_symbols\": 0}", "pcfg.n_symbols"},
        {"{\"n_symbols\": 257}", "pcfg.n_symbols"},
        {"{\"n_symbols\": 3.0}", "pcfg.n_symbols"},
        {"{\"n_terminals\": 0}", "pcfg.n_terminals"},
        {"{\"n_terminals\": 65536}", "pcfg.n_terminals"},
        {"{\"n_rules\": 0}", "pcfg.n_rules"},
        {"{\"n_rules\": 65}", "pcfg.n_rules"},
        {"{\"n_symbols\": 1, \"rule_min\": 1, \"rule_max\": 2, \"n_rules\": 3}", "pcfg.n_rules"},
        {"{\"n_terminals\": 1, \"rule_min\": 2, \"rule_max\": 2, \"n_rules\": 2}", "pcfg.n_rules"},
        {"{\"rule_min\": 0}", "pcfg.rule_min"},
        {"{\"rule_min\": 17}", "pcfg.rule_min"},
        {"{\"rule_min\": null}", "pcfg.rule_min"},
        {"{\"rule_max\": 1}", "pcfg.rule_max"},
        {"{\"rule_min\": 3, \"rule_max\": 2}", "pcfg.rule_max"},
        {"{\"rule_max\": 17}", "pcfg.rule_max"},
        {"{\"grammar_seed\": -1}", "pcfg.grammar_seed"},
        {"{\"grammar_seed\": \"x\"}", "pcfg.grammar_seed"},
        {"{\"random_rule_probs\": 1}", "pcfg.random_rule_probs"},
        {"{\"random_rule_probs\": \"yes\"}", "pcfg.random_rule_probs"},
        {"{\"n_train\": -1}", "pcfg.n_train"},
        {"{\"n_train\": 10000001}", "pcfg.n_train"},
        {"{\"n_val\": false}", "pcfg.n_val"},
        {"{\"n_test\": [1]}", "pcfg.n_test"},
        {"{\"depth\": 3}", "pcfg.depth"},
        {"\"pcfg\"", "pcfg.params"},
        {"[]", "pcfg.params"},
        {"{,}", "pcfg.params"},
        {"{\"levels\": 3, \"levels\": 4}", "pcfg.params"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Dataset ds;
        spiral_error("%s", "");
        int status = synth_pcfg_make(&ds, cases[c].json, 1);
        CHECK(status == -1, "%s: expected -1, got %d", cases[c].json, status);
        CHECK(strstr(spiral_last_error(), cases[c].field) != NULL,
              "%s: message \"%s\" does not name %s", cases[c].json, spiral_last_error(),
              cases[c].field);
        CHECK(ds.tokens == NULL && ds.params_json == NULL, "%s: failed make left memory",
              cases[c].json);
        dataset_free(&ds);
    }
    /* the edges that are allowed */
    Dataset ds;
    CHECK(synth_pcfg_make(&ds, "{\"rule_min\": 4, \"levels\": 3, \"n_train\": 5, \"n_val\": 0, "
                               "\"n_test\": 0}", 1) == 0,
          "rule_min above the default rule_max: %s", spiral_last_error());
    if (ds.params_json)
        CHECK(strstr(ds.params_json, "\"rule_max\": 4") != NULL, "rule_max did not follow "
              "rule_min: %s", ds.params_json);
    dataset_free(&ds);
    CHECK(synth_pcfg_make(&ds, "{\"n_train\": 0, \"n_val\": 0, \"n_test\": 0}", 1) == 0 &&
              ds.n_docs == 0 && dataset_validate(&ds) == 0,
          "an empty dataset: %s", spiral_last_error());
    dataset_free(&ds);
}

int main(int argc, char **argv) {
    (void)argc;
    test_defaults_and_reference_numbers();
    test_determinism();
    test_brute_force();
    test_other_grammars();
    test_parser_edges();
    test_bad_params();
    return test_summary(argv[0]);
}
