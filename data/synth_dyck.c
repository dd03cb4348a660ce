/*
 * synth_dyck.c: the bounded Dyck-(k, m) generator (see synth_dyck.h for the
 * process, the exact next-token probabilities and the labels).
 *
 * One function, synth_dyck_next_probs, holds the law of the process; the
 * generator samples from it and records -log of the probability it sampled,
 * so true_nll is the law itself, not a second derivation of it. The tests
 * recompute the step probabilities independently from the tokens.
 */
#include "synth_dyck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "jsontext.h"
#include "synth_common.h"

#define DYCK_N_LABELS 4
#define DYCK_MAX_DOCS 10000000L
#define DYCK_MAX_MIN_LEN 100000
#define DYCK_MAX_MEAN_TRAIN 20000.0   /* mean document length, train process */
#define DYCK_MAX_MEAN_OOD 200000.0    /* mean document length, OOD process */

/* ---- sampling ---- */

/* Draws i with probability probs[i] (n entries summing to 1). A u beyond
 * the rounded cumulative sum falls on the last possible outcome. */
static int sample_categorical(SynthRng *rng, const double *probs, int n) {
    double u = synth_rng_uniform(rng), cumulative = 0;
    int last = 0;
    for (int i = 0; i < n; i++) {
        if (probs[i] <= 0) continue;
        cumulative += probs[i];
        last = i;
        if (u < cumulative) return i;
    }
    return last;
}

/* The expected document length as text for an error message: the number,
 * or a note when it is too large to compute (the recursion overflows). */
static void describe_mean(char *out, size_t size, double mean) {
    if (isfinite(mean)) snprintf(out, size, "%.4g", mean);
    else snprintf(out, size, "a length too large to compute");
}

/* ---- parameters ---- */

static const char *const dyck_fields[] = {"k",     "m",     "p_open", "p_end", "min_len",    "n_train",
                                          "n_val", "n_test", "n_ood", "m_ood", "min_len_ood"};
#define DYCK_N_FIELDS (sizeof dyck_fields / sizeof dyck_fields[0])

int synth_dyck_params(SynthDyckParams *params, const char *params_json) {
    SynthParams reader;
    if (synth_params_open(&reader, "dyck", dyck_fields, DYCK_N_FIELDS, params_json)) return -1;
    long long k = 3, m = 6, min_len = 2, n_train = 1000, n_val = 100, n_test = 100, n_ood = 100;
    double p_open = 0.5, p_end = 0.3;
    int status = (synth_params_int(&reader, "k", 1, SYNTH_DYCK_MAX_K, &k) ||
                  synth_params_int(&reader, "m", 1, SYNTH_DYCK_MAX_DEPTH, &m) ||
                  synth_params_double(&reader, "p_open", 0, 0, 1, 1, &p_open) ||
                  synth_params_double(&reader, "p_end", 0, 1, 1, 0, &p_end) ||
                  synth_params_int(&reader, "min_len", 0, DYCK_MAX_MIN_LEN, &min_len) ||
                  synth_params_int(&reader, "n_train", 0, DYCK_MAX_DOCS, &n_train) ||
                  synth_params_int(&reader, "n_val", 0, DYCK_MAX_DOCS, &n_val) ||
                  synth_params_int(&reader, "n_test", 0, DYCK_MAX_DOCS, &n_test) ||
                  synth_params_int(&reader, "n_ood", 0, DYCK_MAX_DOCS, &n_ood)) ? -1 : 0;
    long long m_ood = m + 4 <= SYNTH_DYCK_MAX_DEPTH ? m + 4 : SYNTH_DYCK_MAX_DEPTH;
    if (!status) status = synth_params_int(&reader, "m_ood", 1, SYNTH_DYCK_MAX_DEPTH, &m_ood);
    if (!status) {
        *params = (SynthDyckParams){(int)k, (int)m, p_open, p_end, (int)min_len, (long)n_train,
                                    (long)n_val, (long)n_test, (long)n_ood, (int)m_ood, 0};
        SynthDyckProcess train = synth_dyck_process(params, 0);
        double mean = synth_dyck_mean_length(&train);
        char got[64];
        describe_mean(got, sizeof got, mean);
        if (!(mean <= DYCK_MAX_MEAN_TRAIN))
            status = spiral_error("dyck.p_open, dyck.p_end, dyck.m: expected a mean document "
                                  "length <= %.0f tokens, got %s (p_open %g, p_end %g, m %lld)",
                                  DYCK_MAX_MEAN_TRAIN, got, p_open, p_end, m);
        long long min_len_ood = lround(4 * mean);
        if (min_len_ood > DYCK_MAX_MIN_LEN) min_len_ood = DYCK_MAX_MIN_LEN;
        if (!status)
            status = synth_params_int(&reader, "min_len_ood", 0, DYCK_MAX_MIN_LEN, &min_len_ood);
        params->min_len_ood = (int)min_len_ood;
    }
    if (!status) {
        SynthDyckProcess ood = synth_dyck_process(params, 1);
        double mean = synth_dyck_mean_length(&ood);
        char got[64];
        describe_mean(got, sizeof got, mean);
        if (!(mean <= DYCK_MAX_MEAN_OOD))
            status = spiral_error("dyck.m_ood, dyck.min_len_ood: expected a mean OOD document "
                                  "length <= %.0f tokens, got %s", DYCK_MAX_MEAN_OOD, got);
    }
    synth_params_close(&reader);
    return status;
}

/* The resolved parameters as malloc'd JSON text, every field present. */
static char *params_to_json(const SynthDyckParams *p) {
    char p_open[32], p_end[32];
    real_shortest(p_open, sizeof p_open, p->p_open);
    real_shortest(p_end, sizeof p_end, p->p_end);
    const char *fmt = "{\"k\": %d, \"m\": %d, \"p_open\": %s, \"p_end\": %s, \"min_len\": %d, "
                      "\"n_train\": %ld, \"n_val\": %ld, \"n_test\": %ld, \"n_ood\": %ld, "
                      "\"m_ood\": %d, \"min_len_ood\": %d}";
    int n = snprintf(NULL, 0, fmt, p->k, p->m, p_open, p_end, p->min_len, p->n_train, p->n_val,
                     p->n_test, p->n_ood, p->m_ood, p->min_len_ood);
    char *json = malloc((size_t)n + 1);
    if (json)
        snprintf(json, (size_t)n + 1, fmt, p->k, p->m, p_open, p_end, p->min_len, p->n_train,
                 p->n_val, p->n_test, p->n_ood, p->m_ood, p->min_len_ood);
    return json;
}

/* ---- the process ---- */

SynthDyckProcess synth_dyck_process(const SynthDyckParams *params, int ood) {
    SynthDyckProcess process = {params->k, ood ? params->m_ood : params->m, params->p_open,
                                params->p_end, ood ? params->min_len_ood : params->min_len};
    return process;
}

double synth_dyck_mean_length(const SynthDyckProcess *process) {
    int depth_max = process->max_depth;
    double p = process->p_open, p_end = process->p_end;
    double *upper = malloc(((size_t)depth_max + 1) * sizeof *upper);  /* (M + 1) c'_d */
    double *rhs = malloc(((size_t)depth_max + 1) * sizeof *rhs);      /* (M + 1) d'_d, then R_d */
    double *q = calloc((size_t)depth_max + 1, sizeof *q);             /* (M + 1) */
    double *q_next = calloc((size_t)depth_max + 1, sizeof *q_next);   /* (M + 1) */
    double mean = NAN;
    if (!upper || !rhs || !q || !q_next) goto done;
    /* R solves a_d R_{d-1} + R_d + c_d R_{d+1} = r_d (Thomas algorithm):
     *   d = 0:      c = -(1 - p_end),         r = 1 - p_end
     *   0 < d < M:  a = -(1 - p), c = -p,     r = 1
     *   d = M:      a = -1,                   r = 1 */
    upper[0] = -(1 - p_end);
    rhs[0] = 1 - p_end;
    for (int d = 1; d <= depth_max; d++) {
        double a = d < depth_max ? -(1 - p) : -1.0;
        double c = d < depth_max ? -p : 0.0;
        double denominator = 1 - a * upper[d - 1];
        upper[d] = c / denominator;
        rhs[d] = (1 - a * rhs[d - 1]) / denominator;
    }
    for (int d = depth_max - 1; d >= 0; d--) rhs[d] -= upper[d] * rhs[d + 1];
    /* q: the depth after the first L tokens, always opening at depth 0 */
    q[0] = 1;
    for (int t = 0; t < process->min_len; t++) {
        memset(q_next, 0, ((size_t)depth_max + 1) * sizeof *q_next);
        for (int d = 0; d <= depth_max; d++) {
            double open = d == 0 ? 1.0 : d == depth_max ? 0.0 : p;
            if (open > 0) q_next[d + 1] += open * q[d];
            if (open < 1) q_next[d - 1] += (1 - open) * q[d];
        }
        double *swap = q;
        q = q_next;
        q_next = swap;
    }
    mean = process->min_len;
    for (int d = 0; d <= depth_max; d++) mean += q[d] * rhs[d];
done:
    free(upper);
    free(rhs);
    free(q);
    free(q_next);
    return mean;
}

void synth_dyck_state_init(SynthDyckState *state) {
    state->depth = 0;
    state->length = 0;
}

void synth_dyck_next_probs(const SynthDyckProcess *process, const SynthDyckState *state,
                           double *probs) {
    int k = process->k, d = state->depth;
    memset(probs, 0, (size_t)(2 * k + 1) * sizeof *probs);
    double p_open_total, p_close;
    if (d == 0) {
        double p_eos = state->length >= process->min_len ? process->p_end : 0.0;
        probs[0] = p_eos;
        p_open_total = 1 - p_eos;
        p_close = 0;
    } else if (d >= process->max_depth) {
        p_open_total = 0;
        p_close = 1;
    } else {
        p_open_total = process->p_open;
        p_close = 1 - process->p_open;
    }
    for (int c = 0; c < k; c++) probs[1 + c] = p_open_total / k;
    if (d > 0) probs[1 + k + state->stack[d - 1]] = p_close;
}

int synth_dyck_state_push(const SynthDyckProcess *process, SynthDyckState *state, int token) {
    int k = process->k;
    if (token >= 1 && token <= k) {
        if (state->depth >= process->max_depth) return -1;
        state->stack[state->depth++] = token - 1;
    } else if (token > k && token <= 2 * k) {
        if (state->depth == 0 || state->stack[state->depth - 1] != token - 1 - k) return -1;
        state->depth--;
    } else {
        return -1;
    }
    state->length++;
    return 0;
}

/* ---- generation ---- */

/* One document under construction; arrays grow together. */
typedef struct {
    size_t n, capacity;
    uint16_t *tokens;   /* (capacity) */
    double *nll;        /* (capacity) */
    int32_t *labels;    /* (DYCK_N_LABELS, n) row by row, filled when the document ends */
    size_t *open_at;    /* (max depth) positions of the open brackets on the stack */
} DyckDoc;

/* Grows the token arrays of a document to hold n + 1 tokens. */
static int doc_reserve(DyckDoc *doc) {
    if (doc->n < doc->capacity) return 0;
    size_t capacity = doc->capacity ? 2 * doc->capacity : 256;
    uint16_t *tokens = realloc(doc->tokens, capacity * sizeof *tokens);
    if (tokens) doc->tokens = tokens;
    double *nll = realloc(doc->nll, capacity * sizeof *nll);
    if (nll) doc->nll = nll;
    int32_t *labels = realloc(doc->labels, DYCK_N_LABELS * capacity * sizeof *labels);
    if (labels) doc->labels = labels;
    if (!tokens || !nll || !labels) return spiral_error("dyck: out of memory");
    doc->capacity = capacity;
    return 0;
}

/* Fills the label rows (depth, top, match_dist, is_open) of a finished
 * document by replaying its tokens on a stack. */
static void doc_labels(DyckDoc *doc, int k) {
    size_t n = doc->n;
    int32_t *depth = doc->labels, *top = doc->labels + n, *match = doc->labels + 2 * n;
    int32_t *is_open = doc->labels + 3 * n;
    int types[SYNTH_DYCK_MAX_DEPTH];  /* (height) bracket types on the stack */
    int height = 0;
    for (size_t i = 0; i < n; i++) {
        int token = doc->tokens[i];
        if (token == 0) {
            depth[i] = top[i] = match[i] = is_open[i] = -1;
            continue;
        }
        if (token <= k) {
            types[height] = token - 1;
            doc->open_at[height++] = i;
            is_open[i] = 1;
        } else {
            size_t j = doc->open_at[--height];
            size_t distance = i - j < SYNTH_DYCK_MATCH_CLAMP ? i - j : SYNTH_DYCK_MATCH_CLAMP;
            match[i] = match[j] = (int32_t)distance;
            is_open[i] = 0;
        }
        depth[i] = height;
        top[i] = height ? types[height - 1] : -1;
    }
}

/* Samples one document of the process into doc. */
static int doc_generate(DyckDoc *doc, const SynthDyckProcess *process, SynthRng *rng,
                        double *probs /* (2k + 1) */) {
    SynthDyckState state;
    synth_dyck_state_init(&state);
    int vocab = 2 * process->k + 1;
    doc->n = 0;
    for (;;) {
        if (doc_reserve(doc)) return -1;
        synth_dyck_next_probs(process, &state, probs);
        int token = sample_categorical(rng, probs, vocab);
        doc->tokens[doc->n] = (uint16_t)token;
        doc->nll[doc->n] = -log(probs[token]);
        doc->n++;
        if (token == 0) break;
        if (synth_dyck_state_push(process, &state, token))
            return spiral_error("dyck: internal error, sampled an impossible token %d", token);
    }
    /* the label rows are (4, n): lay them out now that n is known */
    doc_labels(doc, process->k);
    return 0;
}

int synth_dyck_make(Dataset *out, const char *params_json, unsigned long seed) {
    SynthDyckParams params;
    memset(out, 0, sizeof *out);
    if (synth_dyck_params(&params, params_json)) return -1;
    int depth_bound = params.m > params.m_ood ? params.m : params.m_ood;
    const char *names[DYCK_N_LABELS] = {"depth", "top", "match_dist", "is_open"};
    int n_classes[DYCK_N_LABELS] = {depth_bound + 1, params.k, SYNTH_DYCK_MATCH_CLAMP + 1, 2};
    if (dataset_init(out, "dyck", 2 * params.k + 1, DYCK_N_LABELS, names, n_classes, 1))
        return -1;
    DyckDoc doc = {0};
    double *probs = malloc((size_t)(2 * params.k + 1) * sizeof *probs);  /* (2k + 1) */
    doc.open_at = malloc((size_t)depth_bound * sizeof *doc.open_at);
    out->params_json = params_to_json(&params);
    int status = probs && doc.open_at && out->params_json ? 0 : spiral_error("dyck: out of memory");
    const long counts[SPLIT_COUNT] = {params.n_train, params.n_val, params.n_test, params.n_ood};
    for (int split = 0; split < SPLIT_COUNT && !status; split++) {
        SynthDyckProcess process = synth_dyck_process(&params, split == SPLIT_TEST_OOD);
        SynthRng rng;
        synth_rng_seed(&rng, seed, (uint64_t)split);
        for (long d = 0; d < counts[split] && !status; d++) {
            status = doc_generate(&doc, &process, &rng, probs);
            if (!status)
                status = dataset_append(out, doc.tokens, doc.n, doc.labels, doc.nll, split);
        }
    }
    free(doc.tokens);
    free(doc.nll);
    free(doc.labels);
    free(doc.open_at);
    free(probs);
    if (status) dataset_free(out);
    return status;
}
