/*
 * synth_dyck.h: bounded Dyck-(k, m), a bracket language whose only hidden
 * state is a stack, with a deeper and longer held-out split.
 *
 * Tokens (vocabulary 2k + 1):
 *   0           EOS, the end of a document
 *   1 + c       opens bracket type c   (c = 0 .. k-1)
 *   1 + k + c   closes bracket type c
 * A document is [x1 .. xn, EOS] with n even and every bracket matched.
 *
 * The generating process is a Markov chain on the stack. With depth d (stack
 * height before the next token), t tokens emitted so far, a depth bound M and
 * a minimum length L, the next token has probability
 *
 *   d = 0, t <  L:   p(open c) = 1/k                       (no EOS yet)
 *   d = 0, t >= L:   p(EOS) = p_end,  p(open c) = (1 - p_end)/k
 *   0 < d < M:       p(open c) = p_open/k,  p(close top) = 1 - p_open
 *   d = M:           p(close top) = 1
 *
 * and every other token has probability 0. The prefix of a document fixes
 * the stack, so these are the exact conditionals of the process, and
 *   true_nll[i] = -log p(x_i | x_<i),   -log P(doc) = sum_i true_nll[i],
 * defined at every token including x1 and EOS. Train, val and test use
 * (M, L) = (m, min_len); the held-out split SPLIT_TEST_OOD uses
 * (m_ood, min_len_ood), deeper and longer by default.
 *
 * Mean length (used for the min_len_ood default): with R_d the expected
 * number of tokens still to come (EOS excluded) from depth d once t >= L,
 *   R_0 = (1 - p_end)(1 + R_1)
 *   R_d = 1 + p_open R_{d+1} + (1 - p_open) R_{d-1}     0 < d < M
 *   R_M = 1 + R_{M-1}
 * (a tridiagonal system), and with q(d) the distribution of the depth after
 * the first L tokens (forced opens at depth 0), E[n] = L + sum_d q(d) R_d.
 *
 * Labels (all -1 at EOS):
 *   depth       stack height after the token (n_classes max(m, m_ood) + 1)
 *   top         type on top of the stack after the token, -1 if empty (k)
 *   match_dist  tokens to the matching bracket, forward for an opener and
 *               backward for a closer, clamped to 63 (64)
 *   is_open     1 for an opener, 0 for a closer (2)
 *
 * Parameters (a JSON object, every field optional):
 *   k 3 (1..1000), m 6 (1..1000), p_open 0.5 ([0, 1)), p_end 0.3 ((0, 1]),
 *   min_len 2 (0..100000), n_train 1000, n_val 100, n_test 100, n_ood 100
 *   (0..10^7 documents each), m_ood m + 4 (1..1000),
 *   min_len_ood round(4 E[n]) of the train process (0..100000).
 * The mean document length of either process must be at most 20000 tokens.
 *
 * Randomness: xoshiro256** seeded by splitmix64 from (seed, split), one
 * stream per split, so changing n_val does not change the train documents.
 */
#ifndef SPIRAL_SYNTH_DYCK_H
#define SPIRAL_SYNTH_DYCK_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

#define SYNTH_DYCK_MAX_K 1000
#define SYNTH_DYCK_MAX_DEPTH 1000
#define SYNTH_DYCK_MATCH_CLAMP 63

/* The resolved parameters of a Dyck dataset. */
typedef struct {
    int k, m;
    double p_open, p_end;
    int min_len;
    long n_train, n_val, n_test, n_ood;
    int m_ood, min_len_ood;
} SynthDyckParams;

/* One bracket process: the parameters that set the next-token law. */
typedef struct {
    int k;
    int max_depth;   /* M */
    double p_open, p_end;
    int min_len;     /* L */
} SynthDyckProcess;

/* The state of a document being read: its stack and its length so far. */
typedef struct {
    int depth;
    long length;                        /* tokens x1.. consumed (EOS excluded) */
    int stack[SYNTH_DYCK_MAX_DEPTH];    /* (depth) bracket types, top at depth - 1 */
} SynthDyckState;

/* Parses params_json (NULL = all defaults) into *params, applying defaults
 * and checking types and ranges. Returns 0 or -1 with "dyck.<field>: ...". */
int synth_dyck_params(SynthDyckParams *params, const char *params_json);

/* The process of train/val/test (ood = 0) or of the OOD split (ood = 1). */
SynthDyckProcess synth_dyck_process(const SynthDyckParams *params, int ood);

/* E[n], the expected number of brackets of a document (EOS excluded), from
 * the equations of the header comment. */
double synth_dyck_mean_length(const SynthDyckProcess *process);

/* An empty document: depth 0, length 0. */
void synth_dyck_state_init(SynthDyckState *state);

/* probs (2k + 1) = p(next token | state) under process (see the table in the
 * header comment). */
void synth_dyck_next_probs(const SynthDyckProcess *process, const SynthDyckState *state,
                           double *probs);

/* Consumes a bracket token (not EOS). Returns 0, or -1 if the token is not
 * possible in this state (wrong closer, closer at depth 0, open at the
 * bound, out of the vocabulary). */
int synth_dyck_state_push(const SynthDyckProcess *process, SynthDyckState *state, int token);

/* Generates the dataset: n_train, n_val, n_test documents of the train
 * process, then n_ood of the OOD process in SPLIT_TEST_OOD, with labels and
 * true_nll. out->params_json gets every resolved parameter. Returns 0 or -1
 * (bad parameters: "dyck.<field>: expected ..., got ..."; out of memory). */
int synth_dyck_make(Dataset *out, const char *params_json, unsigned long seed);

#endif
