/*
 * analyze_parts.h: the pieces of analyze_recording (analyze.h), one file
 * each, shared only among analysis/analyze*.c:
 *
 *   analyze_units.c      the layer applications of a run and where each
 *                        attention_stats row belongs
 *   analyze_attention.c  part (1): per-head statistics, head selection,
 *                        the selected heads per step
 *   analyze_loop.c       parts (2) and (3): update sizes, CKA, spectra of
 *                        the token states, and cross-run CKA
 *   analyze_print.c      the readable report
 *   analyze.c            the options, the recording checks, writing the rows
 *   analyze_runs.c       `spiral analyze`: several runs, side by side, pairs
 *
 * Array shapes: values (n_units, N, H, K) holds x_s(u, h, k), the per-head
 * means over query rows of sequence s (N sequences, H heads, K statistics).
 */
#ifndef SPIRAL_ANALYZE_PARTS_H
#define SPIRAL_ANALYZE_PARTS_H

#include "analyze.h"

/* "pre", "loop", "post" for BLOCK_PRE, BLOCK_LOOP, BLOCK_POST. */
const char *analyze_block_name(int block);

/* Lays out r's layer applications (r->units, r->step_g, r->n_steps,
 * r->layers_per_step) from r->cfg. Returns 0 or -1. */
int analyze_build_units(AnalyzeRun *r);
/* The unit of an attention_stats row, or -1 for a row analyze does not use. */
int analyze_unit_of_row(const AnalyzeRun *r, const char *block, int iteration, int layer);
/* Index of the unit (step t, layer l of the step) of the loop. */
int analyze_loop_unit(const AnalyzeRun *r, int t, int l);

/* Name of statistic k: "attn_distance", "attn_entropy", "attn_beyond_D16",
 * after an optional prefix ("selected_"). */
void analyze_stat_kind(char *out, size_t size, const char *prefix, int k, const int *distances);

/* Reads the attention statistics of the first N sequences into values
 * (n_units, N, H, K); present (n_units) gets 1 for the units recorded for
 * every sequence. Returns 0, or -1 (a missing or malformed row). */
int analyze_read_attention(Store *store, AnalyzeRun *r, double *values, unsigned char *present);
/* Part (1) from values: r->head_stats, the head selection, r->selected.
 * per_sequence (N) is work space. */
int analyze_attention_summary(AnalyzeRun *r, const AnalyzeOptions *o, const double *values,
                              const unsigned char *present, double *per_sequence);
/* y_s(t, k), the mean over the selected heads of x_s(step t, head, k), for
 * every sequence s: out (N). */
void analyze_selected_per_sequence(double *out, const AnalyzeRun *r, const double *values, int t, int k);

/* Part (2): r->update, r->cka, r->spectrum, r->effective_rank from the
 * token states; updates (n_states - 1, N) receives r_s(t). */
int analyze_loop_diagnostics(Store *store, AnalyzeRun *r, const AnalyzeOptions *o, double *updates);

/* Sends a progress report of task (e.g. "analyze spiral") to o->progress:
 * done of total units, seconds since started (seconds_now). */
void analyze_progress(const AnalyzeOptions *o, const char *task, const char *unit, long done, long total,
                      double started, const char *detail, int finished);

#endif
