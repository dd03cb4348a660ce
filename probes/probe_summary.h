/*
 * probe_summary.h: per (label, site), the expected iteration and where the
 * label is encoded, from a report's rows (the rules are probe_run.h's).
 */
#ifndef SPIRAL_PROBE_SUMMARY_H
#define SPIRAL_PROBE_SUMMARY_H

#include "probe_run.h"

/* Fills report->summaries (at most one per (label, site), labels in the
 * order given, sites in the order of the rows) from report->results, which
 * must be sorted by label, site, iteration, scale and control. */
int probe_summarize(ProbeReport *report, const char *const *labels, int n_labels);

/* Fills report->verdicts: the verdict (probe_verdict.h) of each control
 * 'none' row of report->results, reading test counts from store. */
int probe_report_judge(ProbeReport *report, Store *store);

#endif
