/*
 * synth_pcfg.c: the layered PCFG generator (see synth_pcfg.h for the
 * grammar family, the document layout and the labels).
 *
 * The generator samples a derivation top-down, records the labels along the
 * way, then reads the terminals back left to right through SynthPcfgParser
 * (synth_pcfg_parser.c), which knows only the grammar and the tokens:
 * true_nll is computed from the probability law, not from the derivation
 * that was sampled. The parameters and the grammar are in
 * synth_pcfg_grammar.c.
 */
#include "synth_pcfg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "synth_common.h"

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
