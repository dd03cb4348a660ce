/*
 * probe_sites.h: the recorded sites a probe run walks, and the geometry of
 * their rows.
 *
 * Every recorded (site, iteration, scale) of a recording becomes one
 * SiteInfo: its chunk geometry from the run's config (core/steps.h
 * site_geometry) and the token position of each row (site_row_positions: a
 * latent row sits at its chunk's last member). Sites of one geometry (chunk
 * size, offset) share the position control, so each gets the index of its
 * geometry among the distinct ones.
 */
#ifndef SPIRAL_PROBE_SITES_H
#define SPIRAL_PROBE_SITES_H

#include <stddef.h>

#include "config.h"
#include "recording_store.h"

/* One recorded (site, iteration, scale) and the geometry of its rows. */
typedef struct {
    char site[16];
    int iteration, scale;
    int g, w;              /* chunk size and offset of the rows (1, 0 at token level) */
    int rows;              /* rows per sequence */
    int *pos;              /* (rows) token position of each row: a latent's last member */
    int geometry;          /* index of (g, w) among the distinct geometries */
    size_t random_offset;  /* first float of its random-model states (probe_random.h) */
    int lexical_window;    /* tokens k of its lexical control (probe_sites_lexical) */
    int lexical_key;       /* index of (geometry, lexical_window) among the distinct ones */
} SiteInfo;

/* Lists the recorded sites in the order token, latent_in, latent_out, coda,
 * then by iteration and scale, with their row geometry from cfg. *sites
 * (free with probe_sites_free), *n_sites, and *n_geometries distinct (g, w).
 * A recording without states is an error. */
int probe_sites_list(Store *store, const RecordingInfo *info, const SpiralConfig *cfg,
                     SiteInfo **sites, int *n_sites, int *n_geometries);

/* Sets each site's lexical_window: window if > 0, else the site's chunk
 * size g (the tokens a latent summarizes; 1 at token and coda sites, the
 * token itself, the same for every kind of model), at most L; and its
 * lexical_key among the *n_keys distinct (geometry, window) pairs (sites
 * of one key share the lexical control). */
void probe_sites_lexical(SiteInfo *sites, int n_sites, int L, int window, int *n_keys);

void probe_sites_free(SiteInfo *sites, int n_sites);

#endif
