/*
 * depth.h: test-time depth. A trained model run with another schedule over
 * the same weights: more iterations, fewer, or any sequence of chunk sizes.
 *
 * Shared weights (embedding, prelude, core, coda, head) are used as they
 * are. Per-iteration parameters (iter.{t}.down.score, iter.{t}.up.alloc)
 * and the iteration's offset and shift come from one trained iteration,
 * its source:
 *   1. the trained iteration at the same index t, if it has the same g;
 *   2. else the last trained iteration with that g;
 *   3. else none: the iteration takes offset 0 and shift g - 1, which is
 *      allowed only when it needs no learned per-iteration parameter
 *      (down `mean` and up `copy`); otherwise it is an error.
 * So a schedule equal to the trained one maps every iteration to itself
 * and gives the trained model's logits bit for bit.
 */
#ifndef SPIRAL_DEPTH_H
#define SPIRAL_DEPTH_H

#include "model.h"

/* Parses a schedule "8,4,2,1" (chunk sizes g >= 1, 1 .. SPIRAL_MAX_ITERS of
 * them) into g (SPIRAL_MAX_ITERS) and *n. Errors name `flag` and the
 * offending entry. Returns 0 or -1. */
int depth_parse_schedule(const char *flag, const char *text, int *g, int *n);

/* source[t] for the new schedule g (n iterations) against the trained
 * config: the trained iteration it takes its parameters from, or -1 (none,
 * see above). Returns 0, or -1 with an error naming the iteration and g
 * when one needs parameters no trained iteration with that g has. */
int depth_sources(int *source, const SpiralConfig *trained, const int *g, int n);

/* Builds *out: trained's configuration with the schedule g (n iterations)
 * and trained's weights mapped as above. Returns 0 or -1 (spiral_error). */
int depth_model_build(Model *out, const Model *trained, const int *g, int n);

/* Builds *out, the model that exits after iteration t (0 <= t <= T):
 * logits = head(norm(f_post(h(t)))) with the coda (with_coda), or
 * head(norm(h(t))) without it, over trained's weights (the logit lens).
 * For t >= 1 it is trained with its first t iterations; for t = 0 one
 * identity iteration stands in (one core layer of zero weights at full
 * resolution: h(1) = h(0) exactly). With t = T and the coda it is the
 * trained model itself. Returns 0 or -1. */
int depth_exit_model_build(Model *out, const Model *trained, int t, int with_coda);

#endif
