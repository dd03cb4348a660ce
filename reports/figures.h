/*
 * figures.h: every figure of a report, drawn with gnuplot from data in the
 * store (DESIGN.md section 5). Each figure is DIR/NAME.png and NAME.svg,
 * drawn by NAME.gp from NAME.csv, which holds exactly the data shown
 * (plot.h). Runs keep one style in every figure and are named in the key.
 *
 *   training            loss vs tokens seen and vs training FLOPs: training
 *                       loss per step (thin), validation loss (points), the
 *                       entropy floor over the validation targets (dashed)
 *                       where known; runs that differ only in their seed
 *                       as one mean curve with a 95% t band and each
 *                       seed's points; earlier curves drawn wider, so one
 *                       that coincides with a later one shows around it
 *   comparison          validation loss vs non-embedding parameters and vs
 *                       training FLOPs; a point per group of seeds
 *                       (compare.h) with its t interval as error bars, each
 *                       seed as an open circle
 *   probe_heatmap_token test accuracy of the probes of each label (rows) at
 *                       each token state h(t) and the coda (columns), one
 *                       panel per run side by side (spiral beside its
 *                       baselines); below, selectivity = accuracy - control
 *                       task accuracy; * marks "encoded" (above all four
 *                       controls)
 *   probe_heatmap_latent the same for the latent sites z (latent_in) and z~
 *                       (latent_out), one panel per (run, site), columns
 *                       are iterations at their chunk size g
 *   probe_curves_<L>    accuracy vs iteration at the token states, one panel
 *                       per label of level L (the label name before its
 *                       first '.'), a line and 95% CI band per run, the
 *                       majority-class baseline dotted; at most 6 labels a
 *                       figure (probe_curves_<L>_2, ... for more)
 *   attention           the selected heads' mean attention distance and
 *                       entropy per loop step with CI bands (where the
 *                       paper's global-to-local pattern would show),
 *                       spiral vs baselines
 *   loop_update         relative update ||h(t+1) - h(t)|| / ||h(t)|| per
 *                       step with CI bands (log scale), and the effective
 *                       rank of h(t) out of d (rank / d when d differs)
 *   cka                 linear CKA between h(t) and h(u), a heatmap per run
 *   cka_cross           CKA between two runs' states, a heatmap per pair
 *   spectrum            normalized singular values of h(t), a panel per run
 *   lens                loss when the model exits after iteration t (with and
 *                       without the coda), loss vs iterations run (test-time
 *                       depth), loss change per ablated iteration: a line
 *                       and 95% band per run, a panel per measurement
 *   ablation            each variant's validation loss minus the base's at
 *                       equal FLOPs with its interval; only when the runs
 *                       form an ablation study (report_ablation.h), else
 *                       not listed at all
 * Runs keep one style everywhere (plot.h): 10 colors, then the same colors
 * dashed, dotted, dash-dotted, with point types that differ between
 * neighbours; panel figures wrap into rows; a band named in a key is drawn.
 *
 * A figure whose data is not in the store (no metrics, no probes, no
 * analysis yet) is listed with rendered = 0 and a note saying what to run;
 * that is not an error.
 */
#ifndef SPIRAL_FIGURES_H
#define SPIRAL_FIGURES_H

#include "compare.h"
#include "report_data.h"
#include "store.h"

typedef struct {
    char name[64];          /* file stem in the output directory */
    char title[256];        /* what is compared */
    char caption[512];      /* how to read it */
    int width, height;      /* PNG size in pixels */
    int rendered;           /* 1: NAME.{csv,gp,png,svg} written */
    long csv_rows;          /* data rows of NAME.csv */
    int warnings;           /* gnuplot printed messages, kept in NAME.log */
    char note[256];         /* why it was not drawn (rendered = 0) */
} Figure;

typedef struct {
    int n, cap;
    Figure *items;
} FigureList;

void figure_list_free(FigureList *list);

/* Draws every figure into dir (which exists). comparison may be NULL (no
 * comparison figure). Returns 0, or -1 on a store, file or gnuplot error;
 * figures without data are skipped, not errors. */
int figures_draw_all(FigureList *list, Store *store, const ReportData *data,
                     const Comparison *comparison, const char *dir);

/* The figure types, each appending its figure(s) to list. */
int figure_training(FigureList *list, Store *store, const ReportData *data, const Comparison *comparison,
                    const char *dir);
int figure_comparison(FigureList *list, const ReportData *data, const Comparison *comparison,
                      const char *dir);
int figure_probe_heatmap(FigureList *list, const ReportData *data, const char *dir, int latent);
int figure_probe_curves(FigureList *list, const ReportData *data, const char *dir);
int figure_attention(FigureList *list, Store *store, const ReportData *data, const char *dir);
int figure_loop_update(FigureList *list, Store *store, const ReportData *data, const char *dir);
int figure_cka(FigureList *list, Store *store, const ReportData *data, const char *dir);
int figure_cka_cross(FigureList *list, Store *store, const ReportData *data, const char *dir);
int figure_spectrum(FigureList *list, Store *store, const ReportData *data, const char *dir);
int figure_ablation(FigureList *list, const Comparison *comparison, const char *dir);
int figure_lens(FigureList *list, Store *store, const ReportData *data, const char *dir);

#endif
