/*
 * synth_pcfg_grammar.c: the parameters of a PCFG dataset and its grammar,
 * drawn from grammar_seed (synth_pcfg.h).
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


/* ---- the grammar ---- */

int synth_pcfg_level_size(const SynthPcfgGrammar *g, int level) {
    if (level == 1) return 1;
    return level == g->levels ? g->n_terminals : g->n_symbols;
}

const int32_t *synth_pcfg_rule(const SynthPcfgGrammar *g, int level, int symbol, int rule,
                               int *length) {
    size_t index = synth_pcfg_rule_index(g, level, symbol, rule);
    *length = g->rule_length[index];
    return g->rule_child + index * g->rule_max;
}

double synth_pcfg_rule_prob(const SynthPcfgGrammar *g, int level, int symbol, int rule) {
    return g->rule_prob[synth_pcfg_rule_index(g, level, symbol, rule)];
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
            size_t first = synth_pcfg_rule_index(g, l, s, 0);
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
