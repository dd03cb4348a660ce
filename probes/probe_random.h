/*
 * probe_random.h: the random-model control's states.
 *
 * A model of the run's config with seeded random initial weights
 * (model_init_weights) runs over the recorded windows; its states are
 * mapped to sites exactly as `spiral record` maps them (core/steps.h
 * event_site). Every site's states, float32 (n_seq, rows, d), go to one
 * temporary file (they can exceed memory: all sites of 500 windows), site
 * k at sites[k].random_offset floats.
 */
#ifndef SPIRAL_PROBE_RANDOM_H
#define SPIRAL_PROBE_RANDOM_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "probe_sites.h"

/* Computes the random model's (weights seed) states of every site over
 * tokens (n_seq, L) into *file (a temporary file the caller closes, set
 * even on failure), and sets each site's random_offset. Errors: a site the
 * forward pass does not produce, or of another shape than recorded. */
int probe_random_states(const SpiralConfig *cfg, SiteInfo *sites, int n_sites, const int *tokens,
                        int n_seq, int L, unsigned long seed, FILE **file);

/* Reads count floats at offset (in floats) of the file into out. */
int probe_random_read(FILE *file, float *out, size_t count, size_t offset);

#endif
