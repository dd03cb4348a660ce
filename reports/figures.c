/*
 * figures.c: the figure list and every figure of a report in order (the
 * list and conventions in figures.h). The figures live one family a file:
 *   figure_training.c      training curves
 *   figure_comparison.c    validation loss across runs and seeds
 *   figure_probe_heatmap.c probe accuracy and selectivity heatmaps
 *   figure_probe_curves.c  probe accuracy vs iteration
 *   figure_series.c        attention and loop diagnostics per step
 *   figure_cka.c           CKA heatmaps, within a run and across runs
 *   figure_spectrum.c      singular-value spectra
 *   figure_ablation.c      an ablation study's differences to its base
 *   figure_lens.c          logit lens, test-time depth and ablations per iteration
 * with their shared helpers in figure_common.c.
 */
#include "figures.h"

#include <stdlib.h>
#include <string.h>

void figure_list_free(FigureList *list) {
    free(list->items);
    memset(list, 0, sizeof *list);
}

/* Every figure type in report order. */
int figures_draw_all(FigureList *list, Store *store, const ReportData *data,
                     const Comparison *comparison, const char *dir) {
    if (figure_training(list, store, data, comparison, dir) ||
        figure_comparison(list, data, comparison, dir) ||
        figure_ablation(list, comparison, dir) ||
        figure_probe_heatmap(list, data, dir, 0) ||
        figure_probe_heatmap(list, data, dir, 1) ||
        figure_probe_curves(list, data, dir) ||
        figure_attention(list, store, data, dir) ||
        figure_loop_update(list, store, data, dir) ||
        figure_cka(list, store, data, dir) ||
        figure_cka_cross(list, store, data, dir) ||
        figure_spectrum(list, store, data, dir) ||
        figure_lens(list, store, data, dir))
        return -1;
    return 0;
}
