/*
 * test_synth_rhm.c: the Random Hierarchy Model generator (data/synth_rhm.c).
 *
 * Checked: determinism and the params round trip, dataset_validate, the
 * grammar (distinct rules per level, seeded, deeper grammars extend shallower
 * ones, both drawing paths), the labels against a bottom-up parse of the
 * tokens with the grammar's rules, constituents at offset + multiples of
 * b^j, true_nll against a brute-force sum over every derivation of tiny
 * grammars (1e-12), next-token distributions summing to 1, the closed form
 * -log P(doc) = log v + #nodes log m on long documents (no underflow), and a
 * table of bad parameters. Prints the reference numbers of the defaults.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "error.h"
#include "data_fixtures.h"
#include "harness.h"
#include "ngram.h"
#include "synth_rhm.h"

/* b^e for small integers. */
static long ipow(long b, int e) {
    long x = 1;
    while (e-- > 0) x *= b;
    return x;
}

/* Internal nodes of a derivation: (b^L - 1) / (b - 1). */
static long internal_nodes(const SynthRhmParams *p) {
    return (ipow(p->b, p->n_levels) - 1) / (p->b - 1);
}

/* The level-l symbol whose rules contain the tuple, by a linear scan of the
 * grammar (the test's own parser), or -1. */
static int parse_tuple(const SynthRhmGrammar *g, int level, const int32_t *tuple) {
    int found = -1;
    for (int s = 0; s < g->v; s++)
        for (int r = 0; r < g->m; r++)
            if (memcmp(synth_rhm_rule(g, level, s, r), tuple, (size_t)g->b * sizeof *tuple) == 0)
                found = found == -1 ? s : -2;  /* -2: ambiguous */
    return found;
}

/* The tuple width for compare_tuples (qsort has no context argument). */
static int tuple_width;

/* Lexicographic order of two b-tuples. */
static int compare_tuples(const void *a, const void *b) {
    const int32_t *x = a, *y = b;
    for (int i = 0; i < tuple_width; i++)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

/* Checks the grammar: children in range, the m * v tuples of each level
 * distinct (sorted, then neighbours compared). */
static void check_grammar(const SynthRhmGrammar *g, const char *what) {
    long bad = 0, count = (long)g->m * g->v;
    int b = g->b;
    int32_t *sorted = malloc((size_t)(count * b) * sizeof *sorted);  /* (m v, b) */
    for (int l = 1; l <= g->n_levels; l++) {
        const int32_t *level = synth_rhm_rule(g, l, 0, 0);
        for (long i = 0; i < count * b; i++)
            if (level[i] < 0 || level[i] >= g->v) bad++;
        memcpy(sorted, level, (size_t)(count * b) * sizeof *sorted);
        tuple_width = b;
        qsort(sorted, (size_t)count, (size_t)b * sizeof *sorted, compare_tuples);
        for (long i = 1; i < count; i++)
            if (compare_tuples(sorted + (i - 1) * b, sorted + i * b) == 0) bad++;
    }
    free(sorted);
    CHECK(bad == 0, "%s: %ld rules out of range or repeated", what, bad);
}

/* Parses every document bottom-up with the grammar and compares every
 * l<j>.symbol and l<j>.pos label; also the layout (fillers, EOS, -1
 * labels) and the closed form of -log P(doc). */
static void check_labels_and_total(const Dataset *ds, const SynthRhmParams *p,
                                   const SynthRhmGrammar *g, const char *what) {
    int L = p->n_levels, b = p->b;
    long leaves = ipow(b, L);
    int32_t *nodes = malloc((size_t)leaves * sizeof *nodes);  /* (b^L) current level */
    int32_t *next = malloc((size_t)leaves * sizeof *next);
    long bad_layout = 0, bad_symbol = 0, bad_pos = 0, bad_parse = 0;
    double worst_total = 0;
    double expected = log((double)p->v) + (double)internal_nodes(p) * log((double)p->m);
    for (size_t d = 0; d < ds->n_docs; d++) {
        size_t start = ds->doc_start[d], n = ds->doc_start[d + 1] - start;
        if (n != (size_t)(p->offset + leaves + 1)) {
            bad_layout++;
            continue;
        }
        double total = 0;
        for (size_t i = 0; i < n; i++) {
            int filler = (long)i < p->offset, eos = i == n - 1;
            int token = ds->tokens[start + i];
            total += ds->true_nll[start + i];
            if ((filler && token != p->v + 1) || (eos && token != 0) ||
                (!filler && !eos && (token < 1 || token > p->v)))
                bad_layout++;
            if ((filler || eos) && ds->true_nll[start + i] != 0) bad_layout++;
            for (int row = 0; row < 2 * L && (filler || eos); row++)
                if (ds->labels[row].values[start + i] != -1) bad_layout++;
        }
        if (fabs(total - expected) > 1e-9 * expected) {
            if (fabs(total - expected) > worst_total) worst_total = fabs(total - expected);
        }
        /* bottom-up parse: level j node k covers leaves k b^j .. (k+1) b^j - 1 */
        for (long q = 0; q < leaves; q++) nodes[q] = ds->tokens[start + p->offset + q] - 1;
        long count = leaves, below = 1;
        for (int j = 1; j <= L; j++, below *= b) {
            count /= b;
            for (long k = 0; k < count; k++) {
                next[k] = parse_tuple(g, j, nodes + k * b);
                if (next[k] < 0) bad_parse++;
            }
            memcpy(nodes, next, (size_t)count * sizeof *nodes);
            const int32_t *symbol = ds->labels[2 * (j - 1)].values + start + p->offset;
            const int32_t *pos = ds->labels[2 * (j - 1) + 1].values + start + p->offset;
            for (long q = 0; q < leaves; q++) {
                if (symbol[q] != nodes[q / (below * b)]) bad_symbol++;
                if (pos[q] != (q / below) % b) bad_pos++;
            }
        }
    }
    CHECK(bad_layout == 0, "%s: %ld layout problems (length, fillers, EOS, -1 labels)", what,
          bad_layout);
    CHECK(bad_parse == 0, "%s: %ld constituents are not the right side of any rule", what,
          bad_parse);
    CHECK(bad_symbol == 0, "%s: %ld l<j>.symbol labels differ from the bottom-up parse", what,
          bad_symbol);
    CHECK(bad_pos == 0, "%s: %ld l<j>.pos labels wrong", what, bad_pos);
    CHECK(worst_total == 0, "%s: sum of true_nll differs from log v + nodes log m = %.6f by %.3g",
          what, expected, worst_total);
    free(nodes);
    free(next);
}

/* Every level-j constituent starts where l1.pos .. lj.pos are all 0; it
 * must start at offset + a multiple of b^j, there must be b^(L-j) of them,
 * and l<j>.symbol must be constant from one start to the next. */
static void check_constituents(const Dataset *ds, const SynthRhmParams *p, const char *what) {
    int L = p->n_levels;
    long bad_start = 0, bad_count = 0, bad_constant = 0;
    for (size_t d = 0; d < ds->n_docs; d++) {
        size_t start = ds->doc_start[d], n = ds->doc_start[d + 1] - start;
        for (int j = 1; j <= L; j++) {
            long unit = ipow(p->b, j), starts = 0;
            int32_t current = -1;
            for (size_t i = 0; i < n; i++) {
                if (ds->labels[2 * (j - 1)].values[start + i] < 0) continue;
                int first = 1;
                for (int i2 = 1; i2 <= j; i2++)
                    if (ds->labels[2 * (i2 - 1) + 1].values[start + i] != 0) first = 0;
                if (first) {
                    starts++;
                    if ((long)i < p->offset || ((long)i - p->offset) % unit != 0) bad_start++;
                    current = ds->labels[2 * (j - 1)].values[start + i];
                } else if (ds->labels[2 * (j - 1)].values[start + i] != current) {
                    bad_constant++;
                }
            }
            if (starts != ipow(p->b, L - j)) bad_count++;
        }
    }
    CHECK(bad_start == 0, "%s: %ld constituents start off offset + multiples of b^j", what,
          bad_start);
    CHECK(bad_count == 0, "%s: %ld (document, level) pairs with a wrong constituent count", what,
          bad_count);
    CHECK(bad_constant == 0, "%s: %ld tokens change symbol inside a constituent", what,
          bad_constant);
}

/* At every prefix of every document: the library's next-symbol
 * distribution sums to 1 and gives the stored true_nll. */
static void check_next_probs(const Dataset *ds, const SynthRhmParams *p, const SynthRhmGrammar *g,
                             int split, const char *what) {
    SynthRhmPrefix prefix;
    if (synth_rhm_prefix_init(&prefix, g)) {
        CHECK(0, "%s: prefix init", what);
        return;
    }
    double *probs = malloc((size_t)p->v * sizeof *probs);  /* (v) */
    long leaves = ipow(p->b, p->n_levels), bad_sum = 0, bad_chain = 0, prefixes = 0;
    double worst = 0;
    for (size_t d = 0; d < ds->n_docs; d++) {
        if (ds->doc_split[d] != split) continue;
        size_t start = ds->doc_start[d] + (size_t)p->offset;
        synth_rhm_prefix_reset(&prefix);
        for (long q = 0; q < leaves; q++) {
            int symbol = ds->tokens[start + q] - 1;
            synth_rhm_next_probs(&prefix, probs);
            double sum = 0;
            for (int s = 0; s < p->v; s++) sum += probs[s];
            if (fabs(sum - 1) > worst) worst = fabs(sum - 1);
            if (fabs(sum - 1) > 1e-9) bad_sum++;
            double log_p = synth_rhm_prefix_push(&prefix, symbol);
            if (fabs(log_p + ds->true_nll[start + q]) > 1e-12 ||
                fabs(probs[symbol] - exp(-ds->true_nll[start + q])) > 1e-12)
                bad_chain++;
            prefixes++;
        }
    }
    CHECK(prefixes > 0, "%s: no prefixes checked", what);
    CHECK(bad_sum == 0, "%s: %ld of %ld next-token distributions do not sum to 1 (worst %.3g)",
          what, bad_sum, prefixes, worst);
    CHECK(bad_chain == 0, "%s: %ld true_nll differ from -log p(token | prefix)", what, bad_chain);
    free(probs);
    synth_rhm_prefix_free(&prefix);
}

/* Every derivation of a tiny grammar: strings (count, b^L) and their
 * probabilities (1/v) m^-nodes. */
typedef struct {
    long count, leaves;
    int32_t *strings;
    double *probs;
} Derivations;

/* Enumerates derivations by counting: index = root + v * (rule choices of
 * the internal nodes, breadth first, base m). */
static void enumerate_derivations(const SynthRhmGrammar *g, Derivations *all) {
    int L = g->n_levels, b = g->b, v = g->v, m = g->m;
    long nodes = (ipow(b, L) - 1) / (b - 1);
    all->leaves = ipow(b, L);
    all->count = v * ipow(m, (int)nodes);
    all->strings = malloc((size_t)(all->count * all->leaves) * sizeof *all->strings);
    all->probs = malloc((size_t)all->count * sizeof *all->probs);
    int32_t *tree = malloc((size_t)(nodes + all->leaves) * sizeof *tree);  /* breadth first */
    for (long index = 0; index < all->count; index++) {
        long rest = index / v;
        tree[0] = (int32_t)(index % v);
        /* node k at depth (level L - depth) has children k*b + 1 .. k*b + b */
        for (long k = 0; k < nodes; k++) {
            int level = L;
            for (long first = 0, width = 1; k >= first + width; first += width, width *= b) level--;
            int rule = (int)(rest % m);
            rest /= m;
            const int32_t *children = synth_rhm_rule(g, level, tree[k], rule);
            for (int i = 0; i < b; i++) tree[k * b + 1 + i] = children[i];
        }
        memcpy(all->strings + index * all->leaves, tree + nodes,
               (size_t)all->leaves * sizeof *tree);
        all->probs[index] = pow((double)m, -(double)nodes) / v;
    }
    free(tree);
}

/* P(prefix of length n) by summing over every derivation. */
static double brute_prefix(const Derivations *all, const int32_t *prefix, long n) {
    double total = 0;
    for (long index = 0; index < all->count; index++)
        if (memcmp(all->strings + index * all->leaves, prefix, (size_t)n * sizeof *prefix) == 0)
            total += all->probs[index];
    return total;
}

/* Compares true_nll of every document, the library's next-symbol law at
 * every prefix of every derivation, and -log P(doc), to brute force. */
static void check_brute_force(const char *params_json) {
    Dataset ds;
    SynthRhmParams p;
    SynthRhmGrammar g;
    if (synth_rhm_make(&ds, params_json, 5) || synth_rhm_params(&p, params_json) ||
        synth_rhm_grammar_build(&g, &p)) {
        CHECK(0, "%s: %s", params_json, spiral_last_error());
        return;
    }
    Derivations all;
    enumerate_derivations(&g, &all);
    double total_prob = 0;
    for (long i = 0; i < all.count; i++) total_prob += all.probs[i];
    CHECK(fabs(total_prob - 1) < 1e-12, "%s: derivations sum to %.15g", params_json, total_prob);
    long leaves = all.leaves, bad_token = 0, bad_doc = 0, bad_law = 0, bad_sum = 0;
    double worst = 0;
    int32_t *symbols = malloc((size_t)leaves * sizeof *symbols);
    for (size_t d = 0; d < ds.n_docs; d++) {
        size_t start = ds.doc_start[d] + (size_t)p.offset;
        double total = 0;
        for (long q = 0; q < leaves; q++) symbols[q] = ds.tokens[start + q] - 1;
        for (long q = 0; q < leaves; q++) {
            double ratio = brute_prefix(&all, symbols, q + 1) / brute_prefix(&all, symbols, q);
            double gap = fabs(ds.true_nll[start + q] + log(ratio));
            if (gap > worst) worst = gap;
            if (gap > 1e-12) bad_token++;
            total += ds.true_nll[start + q];
        }
        double full = brute_prefix(&all, symbols, leaves);
        if (fabs(total + log(full)) > 1e-12) bad_doc++;
    }
    /* the library's next-symbol law at every prefix of every derivation */
    SynthRhmPrefix prefix;
    double *probs = malloc((size_t)p.v * sizeof *probs);  /* (v) */
    int32_t *extended = malloc((size_t)leaves * sizeof *extended);
    for (long index = 0; index < all.count; index++) {
        const int32_t *string = all.strings + index * leaves;
        synth_rhm_prefix_init(&prefix, &g);
        for (long q = 0; q < leaves; q++) {
            synth_rhm_next_probs(&prefix, probs);
            double sum = 0, before = brute_prefix(&all, string, q);
            memcpy(extended, string, (size_t)q * sizeof *extended);
            for (int s = 0; s < p.v; s++) {
                extended[q] = s;
                double want = brute_prefix(&all, extended, q + 1) / before;
                if (fabs(probs[s] - want) > 1e-12) bad_law++;
                sum += probs[s];
            }
            if (fabs(sum - 1) > 1e-9) bad_sum++;
            synth_rhm_prefix_push(&prefix, string[q]);
        }
        synth_rhm_prefix_free(&prefix);
    }
    CHECK(ds.n_docs > 0 && bad_token == 0,
          "%s: %ld true_nll differ from brute force (worst %.3g)", params_json, bad_token, worst);
    CHECK(bad_doc == 0, "%s: %ld documents: sum of true_nll != -log P(doc) (brute force)",
          params_json, bad_doc);
    CHECK(bad_law == 0, "%s: %ld next-symbol probabilities differ from brute force", params_json,
          bad_law);
    CHECK(bad_sum == 0, "%s: %ld next-symbol distributions do not sum to 1", params_json, bad_sum);
    free(symbols);
    free(probs);
    free(extended);
    free(all.strings);
    free(all.probs);
    synth_rhm_grammar_free(&g);
    dataset_free(&ds);
}

/* Runs the label, constituent and probability checks on one configuration. */
static void check_config(const char *params_json, unsigned long seed) {
    const char *what = params_json ? params_json : "defaults";
    Dataset ds;
    SynthRhmParams p;
    SynthRhmGrammar g;
    if (synth_rhm_make(&ds, params_json, seed)) {
        CHECK(0, "%s: make failed: %s", what, spiral_last_error());
        return;
    }
    CHECK(synth_rhm_params(&p, ds.params_json) == 0, "%s: stored params %s", what,
          spiral_last_error());
    CHECK(dataset_validate(&ds) == 0, "%s: %s", what, spiral_last_error());
    CHECK(ds.vocab_size == p.v + (p.offset ? 2 : 1), "%s: vocab %d", what, ds.vocab_size);
    CHECK(ds.n_docs == (size_t)(p.n_train + p.n_val + p.n_test), "%s: %zu documents", what,
          ds.n_docs);
    if (synth_rhm_grammar_build(&g, &p) == 0) {
        check_grammar(&g, what);
        check_labels_and_total(&ds, &p, &g, what);
        check_constituents(&ds, &p, what);
        check_next_probs(&ds, &p, &g, SPLIT_VAL, what);
        synth_rhm_grammar_free(&g);
    }
    dataset_free(&ds);
}

static void test_defaults_and_determinism(void) {
    Dataset a, c, d;
    SynthRhmParams none, empty;
    CHECK(synth_rhm_make(&a, NULL, 7) == 0, "default make: %s", spiral_last_error());
    CHECK(synth_rhm_params(&none, NULL) == 0 && synth_rhm_params(&empty, "{}") == 0 &&
              none.n_levels == empty.n_levels && none.b == empty.b && none.v == empty.v &&
              none.m == empty.m && none.offset == empty.offset &&
              none.grammar_seed == empty.grammar_seed && none.n_train == empty.n_train &&
              none.n_val == empty.n_val && none.n_test == empty.n_test &&
              none.distinct == empty.distinct,
          "{} does not resolve to the defaults");
    CHECK(synth_rhm_make(&c, "{\"n_train\": 100}", 8) == 0, "make seed 8: %s", spiral_last_error());
    CHECK(synth_rhm_make(&d, a.params_json, 7) == 0, "make from params_json: %s",
          spiral_last_error());
    CHECK(datasets_equal(&a, &d), "the stored params_json (same seed) does not reproduce the dataset");
    CHECK(memcmp(a.tokens, c.tokens, c.n_tokens * sizeof *a.tokens) != 0,
          "seeds 7 and 8 give the same tokens");
    CHECK(strcmp(a.family, "rhm") == 0 && a.vocab_size == 17, "family %s vocab %d", a.family,
          a.vocab_size);
    json_t *root = json_loads(a.params_json, 0, NULL);
    CHECK(root && json_object_size(root) == 10, "params_json %s: expected 10 fields", a.params_json);
    json_decref(root);
    /* aligned by default: 2^7 symbols + EOS, so a window of 128 inputs at a
     * document start holds a whole document */
    CHECK(a.doc_start[1] - a.doc_start[0] == 129, "default document of %zu tokens, expected 129",
          a.doc_start[1] - a.doc_start[0]);
    CHECK(a.n_labels == 14, "%d labels", a.n_labels);
    for (int l = 0; l < 14 && l < a.n_labels; l++) {
        char want[32];
        snprintf(want, sizeof want, "l%d.%s", l / 2 + 1, l % 2 ? "pos" : "symbol");
        CHECK(strcmp(a.labels[l].name, want) == 0 && a.labels[l].n_classes == (l % 2 ? 2 : 16),
              "label %d is %s (%d), expected %s", l, a.labels[l].name, a.labels[l].n_classes,
              want);
    }

    SynthRhmParams p;
    synth_rhm_params(&p, NULL);
    size_t count;
    double floor_val = dataset_true_nll_mean(&a, SPLIT_VAL, &count);
    double doc_length = (double)a.n_tokens / a.n_docs;
    double analytic = (log(16.0) + 127 * log(4.0)) / doc_length;
    printf("rhm defaults %s\n", a.params_json);
    printf("  vocab %d, %zu train tokens, mean document length %.2f (EOS included), %.4g "
           "distinct documents possible\n",
           a.vocab_size, dataset_split_tokens(&a, SPLIT_TRAIN), doc_length,
           p.v * pow(p.m, (double)internal_nodes(&p)));
    printf("  mean true_nll on val %.4f nats/token (%zu tokens; analytic (log v + 127 log m) / 129 = "
           "%.4f), unigram entropy of train %.4f nats\n",
           floor_val, count, analytic, unigram_entropy(&a, SPLIT_TRAIN));
    CHECK(fabs(floor_val - analytic) < 1e-12, "val floor %.15g vs analytic %.15g", floor_val,
          analytic);
    dataset_free(&a);
    dataset_free(&c);
    dataset_free(&d);
}

static void test_grammar(void) {
    SynthRhmParams p1, p2, p3, p4;
    SynthRhmGrammar g1, g2, g3, g4;
    synth_rhm_params(&p1, "{\"n_levels\": 2, \"v\": 6, \"m\": 3, \"b\": 3}");
    synth_rhm_params(&p2, "{\"n_levels\": 4, \"v\": 6, \"m\": 3, \"b\": 3}");
    synth_rhm_params(&p3, "{\"n_levels\": 2, \"v\": 6, \"m\": 3, \"b\": 3, \"grammar_seed\": 2}");
    CHECK(synth_rhm_params(&p4, "{\"n_levels\": 2, \"v\": 100, \"m\": 40, \"b\": 4}") == 0,
          "sparse grammar params: %s", spiral_last_error());
    if (synth_rhm_grammar_build(&g1, &p1) || synth_rhm_grammar_build(&g2, &p2) ||
        synth_rhm_grammar_build(&g3, &p3) || synth_rhm_grammar_build(&g4, &p4)) {
        CHECK(0, "grammar build: %s", spiral_last_error());
        return;
    }
    size_t level_size = (size_t)p1.m * p1.v * p1.b * sizeof(int32_t);
    CHECK(memcmp(g1.rules, g2.rules, 2 * level_size) == 0,
          "a deeper grammar with the same seed must extend the shallower one");
    CHECK(memcmp(g1.rules, g3.rules, 2 * level_size) != 0, "grammar_seed 1 and 2 give one grammar");
    check_grammar(&g1, "v 6 m 3 b 3");
    check_grammar(&g2, "v 6 m 3 b 3 L 4");
    check_grammar(&g4, "v 100 m 40 b 4 (rejection path)");
    /* m * v = v^b: every tuple is a rule exactly once */
    SynthRhmParams full;
    SynthRhmGrammar gf;
    synth_rhm_params(&full, "{\"v\": 3, \"b\": 2, \"m\": 3}");
    if (synth_rhm_grammar_build(&gf, &full) == 0) {
        check_grammar(&gf, "m * v = v^b");
        int32_t tuple[2];
        long covered = 0;
        for (tuple[0] = 0; tuple[0] < 3; tuple[0]++)
            for (tuple[1] = 0; tuple[1] < 3; tuple[1]++) covered += parse_tuple(&gf, 1, tuple) >= 0;
        CHECK(covered == 9, "m * v = v^b: %ld of 9 tuples are rules", covered);
        synth_rhm_grammar_free(&gf);
    }
    synth_rhm_grammar_free(&g1);
    synth_rhm_grammar_free(&g2);
    synth_rhm_grammar_free(&g3);
    synth_rhm_grammar_free(&g4);
}

/* offset shifts every document by `offset` fillers and changes nothing
 * else: same derivations, labels and true_nll at shifted positions. */
static void test_offset_shift(void) {
    Dataset a, b;
    if (synth_rhm_make(&a, "{\"n_train\": 200, \"n_val\": 20, \"n_test\": 20}", 3) ||
        synth_rhm_make(&b, "{\"n_train\": 200, \"n_val\": 20, \"n_test\": 20, \"offset\": 3}", 3)) {
        CHECK(0, "offset make: %s", spiral_last_error());
        return;
    }
    long bad = 0;
    CHECK(a.n_docs == b.n_docs && b.n_tokens == a.n_tokens + 3 * a.n_docs, "offset lengths");
    for (size_t d = 0; d < a.n_docs && a.n_docs == b.n_docs; d++) {
        size_t sa = a.doc_start[d], sb = b.doc_start[d], n = a.doc_start[d + 1] - sa;
        for (size_t i = 0; i < n; i++) {
            if (a.tokens[sa + i] != b.tokens[sb + 3 + i] || a.true_nll[sa + i] != b.true_nll[sb + 3 + i])
                bad++;
            for (int l = 0; l < a.n_labels; l++)
                if (a.labels[l].values[sa + i] != b.labels[l].values[sb + 3 + i]) bad++;
        }
        for (int i = 0; i < 3; i++) bad += b.tokens[sb + i] != b.vocab_size - 1;
    }
    CHECK(bad == 0, "offset 3 is not the offset-0 dataset shifted by 3 fillers (%ld differences)",
          bad);
    dataset_free(&a);
    dataset_free(&b);
}

/* A bad parameter must fail with a message naming rhm.<field>. */
/* The number of documents of split `heldout` that equal a document of a
 * split listed in `earlier` (n_earlier of them). */
static long shared_documents(const Dataset *ds, int heldout, const int *earlier, int n_earlier) {
    long shared = 0;
    for (size_t d = 0; d < ds->n_docs; d++) {
        if (ds->doc_split[d] != heldout) continue;
        size_t n = ds->doc_start[d + 1] - ds->doc_start[d];
        int found = 0;
        for (size_t e = 0; e < ds->n_docs && !found; e++) {
            int listed = 0;
            for (int k = 0; k < n_earlier; k++) listed |= ds->doc_split[e] == earlier[k];
            found = listed && ds->doc_start[e + 1] - ds->doc_start[e] == n &&
                    memcmp(ds->tokens + ds->doc_start[d], ds->tokens + ds->doc_start[e],
                           n * sizeof *ds->tokens) == 0;
        }
        shared += found;
    }
    return shared;
}

/* distinct: no val document is a train document and no test document a
 * train or val one, on a grammar of 24 documents where the plain process
 * repeats them across splits; too few documents is an error. */
static void test_distinct_splits(void) {
    const char *small = "{\"n_levels\": 2, \"v\": 3, \"m\": 2, \"n_train\": 12, \"n_val\": 6, "
                        "\"n_test\": 5%s}";
    char with[256], without[256];
    snprintf(with, sizeof with, small, "");
    snprintf(without, sizeof without, small, ", \"distinct\": false");
    Dataset a, b;
    if (synth_rhm_make(&a, with, 3) || synth_rhm_make(&b, without, 3)) {
        CHECK(0, "distinct make: %s", spiral_last_error());
        return;
    }
    const int train[1] = {SPLIT_TRAIN}, train_val[2] = {SPLIT_TRAIN, SPLIT_VAL};
    long val_a = shared_documents(&a, SPLIT_VAL, train, 1);
    long test_a = shared_documents(&a, SPLIT_TEST, train_val, 2);
    long val_b = shared_documents(&b, SPLIT_VAL, train, 1);
    long test_b = shared_documents(&b, SPLIT_TEST, train_val, 2);
    printf("24-document grammar: documents shared with earlier splits: val %ld, test %ld "
           "(distinct false: %ld, %ld)\n", val_a, test_a, val_b, test_b);
    CHECK(val_a == 0 && test_a == 0, "distinct: %ld val and %ld test documents were seen before",
          val_a, test_a);
    CHECK(val_b + test_b > 0, "distinct false: the plain process shares no document here, so the "
                              "check above proves nothing");
    CHECK(a.n_docs == 23 && b.n_docs == 23, "document counts %zu and %zu", a.n_docs, b.n_docs);
    dataset_free(&a);
    dataset_free(&b);
    Dataset c;
    CHECK(synth_rhm_make(&c, "{\"n_levels\": 2, \"v\": 3, \"m\": 2, \"n_train\": 400}", 3) == -1 &&
              strstr(spiral_last_error(), "= 24 distinct documents") &&
              strstr(spiral_last_error(), "\"distinct\": false"),
          "too few documents: %s", spiral_last_error());
}

/* train_tokens: ceil(tokens / document length) train documents, stored
 * as n_train. */
static void test_train_tokens(void) {
    SynthRhmParams p = {0}, q = {0};
    CHECK(synth_rhm_params(&p, "{\"train_tokens\": 1000}") == 0 && p.n_train == 8,
          "1000 tokens of 129-token documents: n_train %ld, expected 8", p.n_train);
    CHECK(synth_rhm_params(&q, "{\"train_tokens\": 1032, \"offset\": 3}") == 0 && q.n_train == 8,
          "1032 tokens of 132-token documents: n_train %ld, expected 8", q.n_train);
    CHECK(synth_rhm_params(&q, "{\"train_tokens\": 1033, \"offset\": 3}") == 0 && q.n_train == 8,
          "1033 tokens of 132-token documents: n_train %ld, expected 8", q.n_train);
    CHECK(synth_rhm_params(&q, "{\"train_tokens\": 1057, \"offset\": 3}") == 0 && q.n_train == 9,
          "1057 tokens of 132-token documents: n_train %ld, expected 9", q.n_train);
    Dataset ds;
    if (synth_rhm_make(&ds, "{\"train_tokens\": 1000, \"n_val\": 3, \"n_test\": 2}", 1)) {
        CHECK(0, "train_tokens make: %s", spiral_last_error());
        return;
    }
    CHECK(dataset_split_tokens(&ds, SPLIT_TRAIN) == 8 * 129, "%zu train tokens",
          dataset_split_tokens(&ds, SPLIT_TRAIN));
    CHECK(strstr(ds.params_json, "\"n_train\": 8") && !strstr(ds.params_json, "train_tokens"),
          "stored params %s", ds.params_json);
    dataset_free(&ds);
}

static void test_bad_params(void) {
    const struct {
        const char *json, *field;
    } cases[] = {
        {"{\"n_levels\": 0}", "rhm.n_levels"},
        {"{\"n_levels\": 17}", "rhm.n_levels"},
        {"{\"n_levels\": 17, \"b\": 2}", "rhm.n_levels"},
        {"{\"n_levels\": 5, \"b\": 16}", "rhm.n_levels"},
        {"{\"n_levels\": \"3\"}", "rhm.n_levels"},
        {"{\"b\": 1}", "rhm.b"},
        {"{\"b\": 17}", "rhm.b"},
        {"{\"b\": 2.0}", "rhm.b"},
        {"{\"v\": 0}", "rhm.v"},
        {"{\"v\": 5000}", "rhm.v"},
        {"{\"m\": 0}", "rhm.m"},
        {"{\"v\": 8, \"m\": 9}", "rhm.m"},
        {"{\"distinct\": 1}", "rhm.distinct"},
        {"{\"train_tokens\": 1000, \"n_train\": 5}", "rhm.train_tokens"},
        {"{\"train_tokens\": 0}", "rhm.train_tokens"},
        {"{\"train_tokens\": 100000000000000}", "rhm.train_tokens"},
        {"{\"v\": 2, \"m\": 3}", "rhm.m"},
        {"{\"v\": 3, \"b\": 3, \"m\": 10}", "rhm.m"},
        {"{\"v\": 4096, \"b\": 4, \"m\": 17}", "rhm.m"},
        {"{\"offset\": -1}", "rhm.offset"},
        {"{\"offset\": 4097}", "rhm.offset"},
        {"{\"grammar_seed\": -1}", "rhm.grammar_seed"},
        {"{\"grammar_seed\": \"x\"}", "rhm.grammar_seed"},
        {"{\"n_train\": -1}", "rhm.n_train"},
        {"{\"n_val\": false}", "rhm.n_val"},
        {"{\"n_test\": [1]}", "rhm.n_test"},
        {"{\"L\": 3}", "rhm.L"},
        {"\"rhm\"", "rhm.params"},
        {"{,}", "rhm.params"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Dataset ds;
        spiral_error("%s", "");
        int status = synth_rhm_make(&ds, cases[c].json, 1);
        CHECK(status == -1, "%s: expected -1, got %d", cases[c].json, status);
        CHECK(strstr(spiral_last_error(), cases[c].field) != NULL,
              "%s: message \"%s\" does not name %s", cases[c].json, spiral_last_error(),
              cases[c].field);
        CHECK(ds.tokens == NULL && ds.params_json == NULL, "%s: failed make left memory",
              cases[c].json);
        dataset_free(&ds);
    }
    /* the boundary m * v = v^b is accepted */
    SynthRhmParams p;
    CHECK(synth_rhm_params(&p, "{\"v\": 2, \"m\": 2}") == 0, "m * v = v^b must be accepted: %s",
          spiral_last_error());
}

int main(int argc, char **argv) {
    (void)argc;
    test_defaults_and_determinism();
    test_grammar();
    test_offset_shift();
    check_config("{\"n_train\": 400}", 1);
    check_config("{\"offset\": 3, \"n_train\": 300}", 2);
    check_config("{\"b\": 3, \"n_levels\": 3, \"v\": 6, \"m\": 4, \"n_train\": 300}", 3);
    check_config("{\"b\": 3, \"n_levels\": 2, \"v\": 5, \"m\": 3, \"offset\": 1, \"n_train\": 100}",
                 4);
    check_config("{\"b\": 4, \"n_levels\": 2, \"v\": 3, \"m\": 27, \"n_train\": 100}", 9);
    /* long documents: 1024 tokens, P(doc) = 4^-1024 underflows a double */
    check_config("{\"b\": 2, \"n_levels\": 10, \"v\": 4, \"m\": 4, \"n_train\": 10, \"n_val\": 3, "
                 "\"n_test\": 2}",
                 5);
    check_config("{\"v\": 1, \"m\": 1, \"n_train\": 10, \"distinct\": false}", 6);
    check_brute_force("{\"n_levels\": 2, \"b\": 2, \"v\": 3, \"m\": 2, \"n_train\": 60, \"distinct\": false}");
    check_brute_force("{\"n_levels\": 3, \"b\": 2, \"v\": 2, \"m\": 2, \"offset\": 2, "
                      "\"n_train\": 60, \"distinct\": false}");
    check_brute_force("{\"n_levels\": 2, \"b\": 3, \"v\": 3, \"m\": 2, \"n_train\": 60, \"distinct\": false}");
    check_brute_force("{\"n_levels\": 1, \"b\": 3, \"v\": 4, \"m\": 5, \"n_train\": 30, \"distinct\": false}");
    test_distinct_splits();
    test_train_tokens();
    test_bad_params();
    return test_summary(argv[0]);
}
