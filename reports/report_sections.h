/*
 * report_sections.h: the sections of a report (report.h lists them), each
 * appended to both documents of a Doc with its anchor heading. A NULL
 * comparison means the runs could not be compared (compare_error says why).
 */
#ifndef SPIRAL_REPORT_SECTIONS_H
#define SPIRAL_REPORT_SECTIONS_H

#include "compare.h"
#include "figures.h"
#include "report_data.h"
#include "report_doc.h"

/* Runs: kind, dataset, parameters, steps, tokens, FLOPs, validation loss,
 * status, the recording used. */
void report_section_runs(Doc *doc, const ReportData *data, const Comparison *comparison);
/* Datasets with their entropy floors. */
void report_section_datasets(Doc *doc, const ReportData *data);
/* The comparison across runs and seeds (compare.h). */
void report_section_comparison(Doc *doc, const Comparison *comparison, const char *compare_error);
/* Every figure (its PNG and files) or the note saying why it was not drawn. */
void report_section_figures(Doc *doc, const FigureList *figures);
/* Probe results and summaries, per run. */
void report_section_probes(Doc *doc, const ReportData *data);
/* Each run's resolved config and command line. */
void report_section_configs(Doc *doc, const ReportData *data);

#endif
