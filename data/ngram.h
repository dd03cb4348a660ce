/*
 * ngram.h: n-gram baselines for a dataset.
 *
 * They put a number on how much of a corpus is predictable from the last few
 * tokens alone: a model that beats the trigram loss by a wide margin has
 * learned something longer-range (a word, a verse, a bracket depth). Both
 * functions are exact: counts are integers, probabilities are formed from
 * them in double precision, nothing is sampled or approximated.
 *
 * The stream of a split is its documents laid back to back in dataset order,
 * as a model reading the split would see them; n-grams are counted and
 * scored across document boundaries of that stream.
 */
#ifndef SPIRAL_NGRAM_H
#define SPIRAL_NGRAM_H

#include "dataset.h"
#include "eval_targets.h"

/* Largest supported order: an n-gram of 16-bit tokens is packed in 64 bits. */
#define NGRAM_MAX_ORDER 4

/* Mean cross-entropy (nats per token) on the stream of eval_split of an
 * order-n model (1 = unigram, 2 = bigram, ...) fitted on the stream of
 * train_split with add-k smoothing:
 *
 *     p(x | c) = (count(c x) + k) / (count(c) + k V)
 *
 * where c is the n-1 tokens before x, count(c x) the number of times the
 * n-gram occurs in the train stream and count(c) = sum_x count(c x); V is
 * ds->vocab_size. An unseen context therefore gets the uniform 1/V.
 * Every token of the eval stream is scored; the first n-1 of them, which
 * have fewer than n-1 tokens before them, use the model of order (position
 * + 1) fitted the same way (token 0 the unigram, token 1 the bigram, ...).
 * With k = 0 an unseen n-gram costs +infinity.
 *
 * Returns NaN on error (order outside 1..NGRAM_MAX_ORDER, invalid split,
 * empty train or eval stream, k < 0, out of memory) with the reason in
 * spiral_last_error(). Memory: a dense count table when V^n <= 2^22, else
 * hash maps sized by the number of distinct n-grams. */
double ngram_loss(const Dataset *ds, int order, int train_split, int eval_split, double add_k);

/* The same model scored on the targets of validation windows
 * (eval_targets.h) instead of a whole split: mean over every target j of
 * every window of -log p(target | the min(n - 1, j + 1) window tokens
 * before it), fitted on the stream of train_split as ngram_loss is. The
 * context never reaches before the window's first token, as a model
 * reading the window sees nothing before it. NaN on error as ngram_loss. */
double ngram_window_loss(const Dataset *ds, int order, int train_split,
                         const EvalTargets *targets, double add_k);

/* Entropy (nats) of the empirical token distribution of a split,
 * -sum_x p(x) log p(x) with p(x) = count(x) / N: the loss of the maximum-
 * likelihood unigram model on the split it was fitted on. NaN on error
 * (invalid or empty split). */
double unigram_entropy(const Dataset *ds, int split);

#endif
