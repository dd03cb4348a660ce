/*
 * synth_rhm.c: the Random Hierarchy Model generator (see synth_rhm.h for the
 * grammar, the document layout, the labels and the exact prefix
 * probabilities).
 *
 * The generator draws each document top-down and reads it back left to
 * right through SynthRhmPrefix, which evaluates P(prefix) by the F/I
 * recursion of the header: true_nll is -log of the ratio of consecutive
 * prefix probabilities, computed from the tokens and the grammar only (the
 * derivation that produced the tokens is not consulted).
 */
#include "synth_rhm.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "mix.h"
#include "synth_common.h"

#define RHM_MAX_LEVELS 16
#define RHM_MAX_B 16
#define RHM_MAX_V 4096
#define RHM_MAX_RULES 65536L        /* m * v per level */
#define RHM_MAX_DOC 65536L          /* b^L level-0 tokens */
#define RHM_MAX_OFFSET 4096
#define RHM_MAX_DOCS 10000000L
#define RHM_MAX_TRAIN_TOKENS 10000000000LL
#define RHM_SHUFFLE_MAX (1L << 20)  /* v^b up to this: draw rules by partial shuffle */
/* defaults: documents of 2^7 symbols + EOS, so windows of 128 inputs at
 * document starts hold whole documents (README "Data") */
#define RHM_DEFAULT_LEVELS 7
#define RHM_DEFAULT_V 16
#define RHM_DEFAULT_M 4
#define RHM_DEFAULT_TRAIN 10000
#define RHM_DEFAULT_HELDOUT 500
#define RHM_MAX_REDRAWS 1000        /* consecutive held-out draws found in earlier splits */

/* ---- parameters ---- */

static const char *const rhm_fields[] = {"n_levels",     "b",       "v",     "m",     "offset",
                                         "grammar_seed", "n_train", "n_val", "n_test", "distinct",
                                         "train_tokens"};
#define RHM_N_FIELDS (sizeof rhm_fields / sizeof rhm_fields[0])

int synth_rhm_params(SynthRhmParams *params, const char *params_json) {
    SynthParams reader;
    if (synth_params_open(&reader, "rhm", rhm_fields, RHM_N_FIELDS, params_json)) return -1;
    long long n_levels = RHM_DEFAULT_LEVELS, b = 2, v = RHM_DEFAULT_V, m = RHM_DEFAULT_M;
    long long offset = 0, grammar_seed = 1;
    int distinct = 1;
    long long n_train = -1, n_val = RHM_DEFAULT_HELDOUT, n_test = RHM_DEFAULT_HELDOUT;
    long long train_tokens = 0;
    int status = (synth_params_int(&reader, "n_levels", 1, RHM_MAX_LEVELS, &n_levels) ||
                  synth_params_int(&reader, "b", 2, RHM_MAX_B, &b) ||
                  synth_params_int(&reader, "v", 1, RHM_MAX_V, &v) ||
                  synth_params_int(&reader, "m", 1, RHM_MAX_RULES, &m) ||
                  synth_params_int(&reader, "offset", 0, RHM_MAX_OFFSET, &offset) ||
                  synth_params_int(&reader, "grammar_seed", 0, LLONG_MAX, &grammar_seed) ||
                  synth_params_int(&reader, "n_train", 0, RHM_MAX_DOCS, &n_train) ||
                  synth_params_int(&reader, "n_val", 0, RHM_MAX_DOCS, &n_val) ||
                  synth_params_int(&reader, "n_test", 0, RHM_MAX_DOCS, &n_test) ||
                  synth_params_bool(&reader, "distinct", &distinct) ||
                  synth_params_int(&reader, "train_tokens", 1, RHM_MAX_TRAIN_TOKENS, &train_tokens))
                     ? -1 : 0;
    synth_params_close(&reader);
    if (status) return -1;
    long long tuples = synth_power_capped(v, (int)b, RHM_MAX_RULES);
    if (m * v > tuples)
        return spiral_error("rhm.m: expected m * v <= v^b = %lld (distinct rules, an unambiguous "
                            "grammar), got m = %lld, m * v = %lld", tuples, m, m * v);
    if (m * v > RHM_MAX_RULES)
        return spiral_error("rhm.m: expected m * v <= %ld rules per level, got m = %lld, "
                            "m * v = %lld", RHM_MAX_RULES, m, m * v);
    long long doc = synth_power_capped(b, (int)n_levels, RHM_MAX_DOC);
    if (doc > RHM_MAX_DOC)
        return spiral_error("rhm.n_levels: expected b^n_levels <= %ld tokens per document, got "
                            "%lld^%lld", RHM_MAX_DOC, b, n_levels);
    if (train_tokens && n_train >= 0)
        return spiral_error("rhm.train_tokens: give n_train or train_tokens, not both");
    if (train_tokens) {
        /* enough train documents that a budget of train_tokens tokens reads
         * none twice: ceil(train_tokens / document length) */
        long long length = offset + doc + 1;
        n_train = (train_tokens + length - 1) / length;
        if (n_train > RHM_MAX_DOCS)
            return spiral_error("rhm.train_tokens: expected at most %ld documents' worth (%lld "
                                "tokens each), got %lld tokens", RHM_MAX_DOCS, length, train_tokens);
    }
    if (n_train < 0) n_train = RHM_DEFAULT_TRAIN;
    *params = (SynthRhmParams){(int)n_levels, (int)b, (int)v, (int)m, (int)offset, grammar_seed,
                               (long)n_train, (long)n_val, (long)n_test, distinct};
    return 0;
}

/* The resolved parameters as malloc'd JSON text, every field present. */
static char *params_to_json(const SynthRhmParams *p) {
    const char *fmt = "{\"n_levels\": %d, \"b\": %d, \"v\": %d, \"m\": %d, \"offset\": %d, "
                      "\"grammar_seed\": %lld, \"n_train\": %ld, \"n_val\": %ld, \"n_test\": %ld, "
                      "\"distinct\": %s}";
    int n = snprintf(NULL, 0, fmt, p->n_levels, p->b, p->v, p->m, p->offset, p->grammar_seed,
                     p->n_train, p->n_val, p->n_test, p->distinct ? "true" : "false");
    char *json = malloc((size_t)n + 1);
    if (json)
        snprintf(json, (size_t)n + 1, fmt, p->n_levels, p->b, p->v, p->m, p->offset,
                 p->grammar_seed, p->n_train, p->n_val, p->n_test, p->distinct ? "true" : "false");
    return json;
}

/* ---- the grammar ---- */

/* Writes the b base-v digits of code (most significant first) to tuple. */
static void decode_tuple(uint64_t code, int b, int v, int32_t *tuple) {
    for (int i = b - 1; i >= 0; i--) {
        tuple[i] = (int32_t)(code % (uint64_t)v);
        code /= (uint64_t)v;
    }
}

/* Draws count distinct b-tuples over v symbols, uniformly without
 * replacement and in random order, into tuples (count, b), when v^b = n_codes
 * <= RHM_SHUFFLE_MAX: a partial Fisher-Yates shuffle of the codes 0..n-1. */
static int draw_tuples_shuffle(SynthRng *rng, int b, int v, long n_codes, long count,
                               int32_t *tuples) {
    uint32_t *codes = malloc((size_t)n_codes * sizeof *codes);  /* (n_codes) */
    if (!codes) return spiral_error("rhm: out of memory drawing the grammar");
    for (long i = 0; i < n_codes; i++) codes[i] = (uint32_t)i;
    for (long i = 0; i < count; i++) {
        long j = i + (long)synth_rng_below(rng, (uint64_t)(n_codes - i));
        uint32_t swap = codes[i];
        codes[i] = codes[j];
        codes[j] = swap;
        decode_tuple(codes[i], b, v, tuples + i * b);
    }
    free(codes);
    return 0;
}

/* The same when v^b > RHM_SHUFFLE_MAX >= 16 * count: draw tuples digit by
 * digit and reject repeats (found through a hash table of tuple indices);
 * at most one draw in 16 is rejected. */
static int draw_tuples_reject(SynthRng *rng, int b, int v, long count, int32_t *tuples) {
    size_t size = 1;
    while (size < 4 * (size_t)count) size *= 2;
    long *table = malloc(size * sizeof *table);  /* (size) tuple index or -1 */
    if (!table) return spiral_error("rhm: out of memory drawing the grammar");
    for (size_t i = 0; i < size; i++) table[i] = -1;
    for (long i = 0; i < count;) {
        int32_t *tuple = tuples + i * b;
        uint64_t hash = 0x84222325cbf29ce4ULL;
        for (int k = 0; k < b; k++) {
            tuple[k] = (int32_t)synth_rng_below(rng, (uint64_t)v);
            hash = (hash ^ (uint64_t)tuple[k]) * 0x100000001b3ULL;
        }
        size_t slot = (size_t)(hash ^ (hash >> 29)) & (size - 1);
        int repeat = 0;
        while (table[slot] >= 0 && !repeat) {
            repeat = memcmp(tuples + table[slot] * b, tuple, (size_t)b * sizeof *tuple) == 0;
            slot = (slot + 1) & (size - 1);
        }
        if (repeat) continue;
        table[slot] = i++;
    }
    free(table);
    return 0;
}

int synth_rhm_grammar_build(SynthRhmGrammar *grammar, const SynthRhmParams *params) {
    int L = params->n_levels, b = params->b, v = params->v, m = params->m;
    long per_level = (long)m * v;
    *grammar = (SynthRhmGrammar){L, b, v, m, NULL};
    grammar->rules = malloc((size_t)L * (size_t)per_level * (size_t)b * sizeof(int32_t));
    if (!grammar->rules) return spiral_error("rhm: out of memory for the grammar");
    long long n_codes = synth_power_capped(v, b, RHM_SHUFFLE_MAX);
    SynthRng rng;
    synth_rng_seed(&rng, (uint64_t)params->grammar_seed, 0);
    /* level l's m * v tuples in drawn order: symbol s gets tuples s*m .. s*m + m - 1 */
    for (int l = 1; l <= L; l++) {
        int32_t *level = grammar->rules + (size_t)(l - 1) * (size_t)per_level * (size_t)b;
        int status = n_codes <= RHM_SHUFFLE_MAX
                         ? draw_tuples_shuffle(&rng, b, v, (long)n_codes, per_level, level)
                         : draw_tuples_reject(&rng, b, v, per_level, level);
        if (status) {
            synth_rhm_grammar_free(grammar);
            return -1;
        }
    }
    return 0;
}

void synth_rhm_grammar_free(SynthRhmGrammar *grammar) {
    free(grammar->rules);
    grammar->rules = NULL;
}

const int32_t *synth_rhm_rule(const SynthRhmGrammar *grammar, int level, int symbol, int rule) {
    size_t index = ((size_t)(level - 1) * grammar->v + symbol) * grammar->m + rule;
    return grammar->rules + index * grammar->b;
}

/* ---- exact prefix probabilities ---- */

/* Every term of F_l shares the same completed children and the same F_{l-1},
 * so each vector is kept as exp(scale) * values with max(values) = 1: the
 * sums over rules are plain products and additions, and nothing underflows
 * however long the document. */

int synth_rhm_prefix_init(SynthRhmPrefix *prefix, const SynthRhmGrammar *grammar) {
    size_t L = (size_t)grammar->n_levels, b = (size_t)grammar->b, v = (size_t)grammar->v;
    prefix->grammar = grammar;
    prefix->inside = malloc(L * b * v * sizeof *prefix->inside);
    prefix->inside_scale = malloc(L * b * sizeof *prefix->inside_scale);
    prefix->frontier = malloc((L + 1) * v * sizeof *prefix->frontier);
    prefix->frontier_scale = malloc((L + 1) * sizeof *prefix->frontier_scale);
    if (!prefix->inside || !prefix->inside_scale || !prefix->frontier ||
        !prefix->frontier_scale) {
        synth_rhm_prefix_free(prefix);
        return spiral_error("rhm: out of memory");
    }
    synth_rhm_prefix_reset(prefix);
    return 0;
}

void synth_rhm_prefix_reset(SynthRhmPrefix *prefix) {
    prefix->n = 0;
    prefix->log_prefix = 0;
}

void synth_rhm_prefix_free(SynthRhmPrefix *prefix) {
    free(prefix->inside);
    free(prefix->inside_scale);
    free(prefix->frontier);
    free(prefix->frontier_scale);
    prefix->inside = prefix->inside_scale = prefix->frontier = prefix->frontier_scale = NULL;
}

/* Divides values (v) by their maximum and returns log of it (-inf if all
 * are 0, the vector then stays 0). */
static double normalize(double *values, int v) {
    double largest = 0;
    for (int t = 0; t < v; t++)
        if (values[t] > largest) largest = values[t];
    if (largest == 0) return -INFINITY;
    for (int t = 0; t < v; t++) values[t] /= largest;
    return log(largest);
}

double synth_rhm_prefix_extend(SynthRhmPrefix *prefix, int symbol) {
    const SynthRhmGrammar *g = prefix->grammar;
    int L = g->n_levels, b = g->b, v = g->v, m = g->m;
    double log_m = log((double)m);
    /* F_0(t) = [x_n = t] */
    for (int t = 0; t < v; t++) prefix->frontier[t] = t == symbol ? 1.0 : 0.0;
    prefix->frontier_scale[0] = 0;
    long span = 1;  /* b^(l-1) */
    for (int l = 1; l <= L; l++, span *= b) {
        int j = (int)((prefix->n / span) % b);  /* the child holding position n */
        const double *below = prefix->frontier + (size_t)(l - 1) * v;      /* F_{l-1} (v) */
        const double *inside = prefix->inside + (size_t)(l - 1) * b * v;  /* I_{l-1} (b, v) */
        double *out = prefix->frontier + (size_t)l * v;                    /* F_l (v) */
        /* F_l(t) = (1/m) sum_r prod_{i<j} I_{l-1}(c_i, i) F_{l-1}(c_j) */
        double scale = prefix->frontier_scale[l - 1] - log_m;
        for (int i = 0; i < j; i++) scale += prefix->inside_scale[(l - 1) * b + i];
        for (int t = 0; t < v; t++) {
            double total = 0;
            for (int r = 0; r < m; r++) {
                const int32_t *rule = synth_rhm_rule(g, l, t, r);
                double term = below[rule[j]];
                for (int i = 0; i < j && term != 0; i++) term *= inside[i * v + rule[i]];
                total += term;
            }
            out[t] = total;
        }
        prefix->frontier_scale[l] = scale + normalize(out, v);
    }
    /* P = (1/v) sum_r F_L(r) */
    double total = 0;
    for (int t = 0; t < v; t++) total += prefix->frontier[(size_t)L * v + t];
    return prefix->frontier_scale[L] + log(total) - log((double)v);
}

double synth_rhm_prefix_push(SynthRhmPrefix *prefix, int symbol) {
    const SynthRhmGrammar *g = prefix->grammar;
    int b = g->b, v = g->v;
    double log_new = synth_rhm_prefix_extend(prefix, symbol);
    double log_conditional = log_new - prefix->log_prefix;
    /* every span that position n completes (levels 0..L-1) becomes child j
     * of its parent: I_l(t, j) = F_l(t) */
    long span = 1;  /* b^l */
    for (int l = 0; l < g->n_levels && (prefix->n + 1) % span == 0; l++, span *= b) {
        int j = (int)((prefix->n / span) % b);
        memcpy(prefix->inside + ((size_t)l * b + j) * v, prefix->frontier + (size_t)l * v,
               (size_t)v * sizeof(double));
        prefix->inside_scale[l * b + j] = prefix->frontier_scale[l];
    }
    prefix->n++;
    prefix->log_prefix = log_new;
    return log_conditional;
}

void synth_rhm_next_probs(SynthRhmPrefix *prefix, double *probs) {
    for (int s = 0; s < prefix->grammar->v; s++)
        probs[s] = exp(synth_rhm_prefix_extend(prefix, s) - prefix->log_prefix);
}

/* ---- generation ---- */

/* One document under construction. */
typedef struct {
    size_t n;            /* offset + b^L + 1 */
    uint16_t *tokens;    /* (n) */
    double *nll;         /* (n) */
    int32_t *labels;     /* (2L, n) row by row: l1.symbol, l1.pos, l2.symbol, ... */
    int32_t *ancestors;  /* level l's b^(L-l) nodes at ancestors + level_start[l] */
    long level_start[RHM_MAX_LEVELS + 2];
} RhmDoc;

/* Samples a derivation top-down and fills tokens, labels and true_nll. */
static int doc_generate(RhmDoc *doc, const SynthRhmParams *p, const SynthRhmGrammar *g,
                        SynthRng *rng, SynthRhmPrefix *prefix) {
    int L = p->n_levels, b = p->b;
    size_t n = doc->n, leaves = n - (size_t)p->offset - 1;
    int32_t *anc = doc->ancestors;
    /* root uniform, then one uniform rule per node */
    anc[doc->level_start[L]] = (int32_t)synth_rng_below(rng, (uint64_t)p->v);
    long nodes = 1;
    for (int l = L; l >= 1; l--, nodes *= b)
        for (long k = 0; k < nodes; k++) {
            int symbol = anc[doc->level_start[l] + k];
            int r = (int)synth_rng_below(rng, (uint64_t)p->m);
            const int32_t *rule = synth_rhm_rule(g, l, symbol, r);
            for (int i = 0; i < b; i++) anc[doc->level_start[l - 1] + k * b + i] = rule[i];
        }
    /* fillers and EOS: probability 1, no labels */
    for (size_t i = 0; i < n; i++) {
        doc->tokens[i] = (uint16_t)(p->v + 1);
        doc->nll[i] = 0;
        for (int row = 0; row < 2 * L; row++) doc->labels[(size_t)row * n + i] = -1;
    }
    doc->tokens[n - 1] = 0;
    /* the level-0 symbols, read back through the exact prefix probability */
    synth_rhm_prefix_reset(prefix);
    for (size_t q = 0; q < leaves; q++) {
        size_t i = (size_t)p->offset + q;
        int symbol = anc[q];  /* level 0 starts at 0 */
        doc->tokens[i] = (uint16_t)(symbol + 1);
        doc->nll[i] = -synth_rhm_prefix_push(prefix, symbol);
        if (!isfinite(doc->nll[i]))
            return spiral_error("rhm: internal error, sampled token %zu has probability 0", q);
        size_t below = 1;  /* b^(j-1) */
        for (int j = 1; j <= L; j++, below *= (size_t)b) {
            doc->labels[(size_t)(2 * (j - 1)) * n + i] =
                anc[doc->level_start[j] + (long)(q / (below * b))];
            doc->labels[(size_t)(2 * (j - 1) + 1) * n + i] = (int32_t)((q / below) % (size_t)b);
        }
    }
    return 0;
}

/* ---- distinct documents across splits ---- */

/* A set of 64-bit document hashes (open addressing, hash 0 stored as 1;
 * a collision only makes a held-out document be drawn again), with the
 * hashes of the split being drawn kept aside until it is complete. */
typedef struct {
    uint64_t *slots;     /* (capacity) 0 = empty */
    size_t capacity;     /* a power of two >= 2 * documents */
    uint64_t *pending;   /* (documents) */
    size_t n_pending;
} DocSet;

/* An empty set for up to n documents. Returns 0 or -1 (out of memory). */
static int doc_set_init(DocSet *set, size_t n) {
    set->capacity = 16;
    while (set->capacity < 2 * n) set->capacity *= 2;
    set->slots = calloc(set->capacity, sizeof *set->slots);
    set->pending = malloc((n ? n : 1) * sizeof *set->pending);
    return set->slots && set->pending ? 0 : -1;
}

static void doc_set_free(DocSet *set) {
    free(set->slots);
    free(set->pending);
    memset(set, 0, sizeof *set);
}

/* The slot of hash, or the empty slot where it would go. */
static size_t doc_set_slot(const DocSet *set, uint64_t hash) {
    size_t mask = set->capacity - 1, i = (size_t)mix64(hash) & mask;
    while (set->slots[i] && set->slots[i] != hash) i = (i + 1) & mask;
    return i;
}

static int doc_set_has(const DocSet *set, uint64_t hash) {
    return set->slots[doc_set_slot(set, hash ? hash : 1)] != 0;
}

static void doc_set_add(DocSet *set, uint64_t hash) {
    if (!hash) hash = 1;
    set->slots[doc_set_slot(set, hash)] = hash;
}

/* A 64-bit hash of a document's tokens: h = mix64(h ^ token) per token. */
static uint64_t doc_hash(const uint16_t *tokens, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    for (size_t i = 0; i < n; i++) h = mix64(h ^ tokens[i]);
    return h;
}

/* The number of distinct documents, v m^(internal nodes), as a double. */
static double doc_count(const SynthRhmParams *p) {
    double internal = 0, nodes = 1;
    for (int l = 0; l < p->n_levels; l++, nodes *= p->b) internal += nodes;
    return p->v * pow(p->m, internal);
}

int synth_rhm_make(Dataset *out, const char *params_json, unsigned long seed) {
    SynthRhmParams params;
    SynthRhmGrammar grammar = {0};
    SynthRhmPrefix prefix = {0};
    RhmDoc doc = {0};
    memset(out, 0, sizeof *out);
    if (synth_rhm_params(&params, params_json)) return -1;
    int L = params.n_levels, b = params.b;
    /* label names and classes: l<j>.symbol (v), l<j>.pos (b) */
    char names_buffer[2 * RHM_MAX_LEVELS][DATASET_NAME_CAP];
    const char *names[2 * RHM_MAX_LEVELS];
    int n_classes[2 * RHM_MAX_LEVELS];
    for (int j = 1; j <= L; j++) {
        snprintf(names_buffer[2 * j - 2], DATASET_NAME_CAP, "l%d.symbol", j);
        snprintf(names_buffer[2 * j - 1], DATASET_NAME_CAP, "l%d.pos", j);
        names[2 * j - 2] = names_buffer[2 * j - 2];
        names[2 * j - 1] = names_buffer[2 * j - 1];
        n_classes[2 * j - 2] = params.v;
        n_classes[2 * j - 1] = b;
    }
    int vocab = params.v + (params.offset > 0 ? 2 : 1);
    if (dataset_init(out, "rhm", vocab, 2 * L, names, n_classes, 1)) return -1;
    int status = synth_rhm_grammar_build(&grammar, &params);
    if (!status) status = synth_rhm_prefix_init(&prefix, &grammar);
    if (!status) {
        long leaves = 1, total = 0;
        for (int l = 0; l < L; l++) leaves *= b;
        /* level l has b^(L-l) nodes; level 0 first */
        for (int l = 0, nodes = (int)leaves; l <= L; l++, nodes /= b) {
            doc.level_start[l] = total;
            total += nodes;
        }
        doc.n = (size_t)params.offset + (size_t)leaves + 1;
        doc.tokens = malloc(doc.n * sizeof *doc.tokens);
        doc.nll = malloc(doc.n * sizeof *doc.nll);
        doc.labels = malloc(2 * (size_t)L * doc.n * sizeof *doc.labels);
        doc.ancestors = malloc((size_t)total * sizeof *doc.ancestors);
        out->params_json = params_to_json(&params);
        if (!doc.tokens || !doc.nll || !doc.labels || !doc.ancestors || !out->params_json)
            status = spiral_error("rhm: out of memory");
    }
    const long counts[3] = {params.n_train, params.n_val, params.n_test};
    DocSet seen = {0};
    if (!status && doc_set_init(&seen, (size_t)(counts[0] + counts[1] + counts[2])))
        status = spiral_error("rhm: out of memory for the document set");
    for (int split = 0; split < 3 && !status; split++) {
        SynthRng rng;
        synth_rng_seed(&rng, (uint64_t)seed, (uint64_t)split);
        /* a split's documents join the set once the split is done: repeats
         * within a split keep the process's distribution, repeats of an
         * earlier split are drawn again */
        size_t first_new = seen.n_pending = 0;
        for (long d = 0, redraws = 0; d < counts[split] && !status;) {
            status = doc_generate(&doc, &params, &grammar, &rng, &prefix);
            if (status) break;
            uint64_t hash = doc_hash(doc.tokens, doc.n);
            if (params.distinct && split > 0 && doc_set_has(&seen, hash)) {
                if (++redraws > RHM_MAX_REDRAWS)
                    status = spiral_error(
                        "rhm: the %s split needs documents that differ from the earlier splits' "
                        "and %d draws in a row found none: the grammar has only v m^((b^L - 1) / "
                        "(b - 1)) = %.4g distinct documents; raise n_levels or m, lower n_train, or set \"distinct\": false",
                        dataset_split_name(split), RHM_MAX_REDRAWS, doc_count(&params));
                continue;
            }
            redraws = 0;
            seen.pending[seen.n_pending++] = hash;
            status = dataset_append(out, doc.tokens, doc.n, doc.labels, doc.nll, split);
            d++;
        }
        for (size_t i = first_new; i < seen.n_pending; i++) doc_set_add(&seen, seen.pending[i]);
    }
    doc_set_free(&seen);
    free(doc.tokens);
    free(doc.nll);
    free(doc.labels);
    free(doc.ancestors);
    synth_rhm_prefix_free(&prefix);
    synth_rhm_grammar_free(&grammar);
    if (status) dataset_free(out);
    return status;
}
