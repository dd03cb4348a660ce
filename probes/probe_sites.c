/*
 * probe_sites.c: the sites of a recording and their row geometry (see
 * probe_sites.h).
 */
#include "probe_sites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "steps.h"

#define MAX_GEOMETRIES 64

/* Fills s's geometry and row positions from cfg; *n_geometries distinct
 * (g, w) pairs so far in geo_g, geo_w (MAX_GEOMETRIES). */
static int site_info(SiteInfo *s, const SpiralConfig *cfg, int L, int *geo_g, int *geo_w,
                     int *n_geometries) {
    ChunkGeometry geo;
    if (site_geometry(cfg, s->site, s->iteration, s->scale, L, &geo)) return -1;
    s->g = geo.g;
    s->w = geo.w;
    s->rows = geo.J;
    s->pos = malloc((size_t)geo.J * sizeof *s->pos);
    if (!s->pos) return spiral_error("out of memory listing sites");
    site_row_positions(&geo, s->pos);
    s->geometry = -1;
    for (int k = 0; k < *n_geometries; k++)
        if (geo_g[k] == s->g && geo_w[k] == s->w) s->geometry = k;
    if (s->geometry >= 0) return 0;
    if (*n_geometries == MAX_GEOMETRIES)
        return spiral_error("more than %d distinct chunk geometries", MAX_GEOMETRIES);
    geo_g[*n_geometries] = s->g;
    geo_w[*n_geometries] = s->w;
    s->geometry = (*n_geometries)++;
    return 0;
}

int probe_sites_list(Store *store, const RecordingInfo *info, const SpiralConfig *cfg,
                     SiteInfo **sites, int *n_sites, int *n_geometries) {
    RecordedSite *keys;
    int n_keys, geo_g[MAX_GEOMETRIES], geo_w[MAX_GEOMETRIES];
    *sites = NULL;
    *n_sites = 0;
    *n_geometries = 0;
    if (recording_list_sites(store, info, &keys, &n_keys)) return -1;
    if (n_keys == 0) {
        free(keys);
        return spiral_error("the recording holds no states");
    }
    *sites = calloc((size_t)n_keys, sizeof **sites);
    if (!*sites) {
        free(keys);
        return spiral_error("out of memory listing sites");
    }
    int status = 0;
    for (int k = 0; k < n_keys && status == 0; k++) {
        SiteInfo *s = &(*sites)[k];
        snprintf(s->site, sizeof s->site, "%s", keys[k].site);
        s->iteration = keys[k].step;
        s->scale = keys[k].scale;
        status = site_info(s, cfg, info->seq_len, geo_g, geo_w, n_geometries);
        (*n_sites)++;
    }
    free(keys);
    return status;
}

void probe_sites_lexical(SiteInfo *sites, int n_sites, int L, int window, int *n_keys) {
    *n_keys = 0;
    for (int k = 0; k < n_sites; k++) {
        SiteInfo *s = &sites[k];
        int w = window > 0 ? window : s->g;
        s->lexical_window = w < 1 ? 1 : w > L ? L : w;
        s->lexical_key = -1;
        for (int j = 0; j < k && s->lexical_key < 0; j++)
            if (sites[j].geometry == s->geometry && sites[j].lexical_window == s->lexical_window)
                s->lexical_key = sites[j].lexical_key;
        if (s->lexical_key < 0) s->lexical_key = (*n_keys)++;
    }
}

void probe_sites_free(SiteInfo *sites, int n_sites) {
    for (int k = 0; k < n_sites; k++) free(sites[k].pos);
    free(sites);
}
