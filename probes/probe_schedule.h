/*
 * probe_schedule.h: which probes a run still has to fit, and fitting them
 * on spiral's thread pool.
 *
 * The probes are walked per site and per feature source (recorded,
 * position, random: probe_features.h); for each, every (label, control)
 * whose row is not yet in the store becomes a job. The jobs of one (site,
 * source) share its features and run as one parallel_for (base/parallel.h),
 * one task per probe, each fit on one thread; the calling thread then
 * writes their rows in one transaction. Tasks never touch the store, and
 * each writes only its own result, so the rows do not depend on the number
 * of threads.
 *
 * The position control depends only on the rows' positions, so it is
 * fitted once per (label, geometry) and copied to every other site of that
 * geometry (with seconds = 0); likewise the lexical control, once per
 * (label, lexical_key) (probe_sites.h).
 */
#ifndef SPIRAL_PROBE_SCHEDULE_H
#define SPIRAL_PROBE_SCHEDULE_H

#include "probe_features.h"
#include "probe_fit.h"
#include "probe_labels.h"
#include "probe_sites.h"
#include "progress.h"

/* What the walk over a run's probes reads. */
typedef struct {
    Store *store;
    long long recording_id;
    const SiteInfo *sites;
    int n_sites, n_geometries, n_lexical_keys;
    const LabelData *labels;
    int n_labels;
    int controls;                /* PROBE_CONTROL_* bits */
    unsigned long seed;
    const ProbeShared *shared;
    FeatureReader *features;
    const Progress *progress;    /* "probe" progress in "probes", or NULL */
} ProbeSchedule;

/* The number of probes (with controls) of the schedule not yet stored. */
int probe_schedule_count(const ProbeSchedule *schedule, int *pending);

/* Fits the probes not yet stored and writes them; *fitted (malloc'd,
 * *n_fitted) gets every row written now, *skipped counts the rows already
 * stored. total (from probe_schedule_count) is progress's total. Returns
 * -1 with the first failed probe's error, naming it. */
int probe_schedule_run(const ProbeSchedule *schedule, int total, ProbeResult **fitted,
                       int *n_fitted, int *skipped);

#endif
