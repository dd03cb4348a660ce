/*
 * analyze_runs.c: the analyses of `spiral analyze` over several runs: each
 * run's recording, then the runs side by side and every pair's cross-run
 * CKA (analyze.h).
 */
#include <stdlib.h>
#include <string.h>

#include "analyze.h"
#include "error.h"

void analyze_summary_free(AnalyzeSummary *summary) {
    free(summary->rows_written);
    memset(summary, 0, sizeof *summary);
}

int analyze_runs(Store *store, const char *const *run_names, int n_runs, const char *dataset,
                 const AnalyzeOptions *o, FILE *out, AnalyzeSummary *summary) {
    memset(summary, 0, sizeof *summary);
    if (n_runs < 1) return spiral_error("analyze: expected at least one run");
    AnalyzeRun *runs = calloc((size_t)n_runs, sizeof *runs);
    summary->rows_written = calloc((size_t)n_runs, sizeof *summary->rows_written);
    int status = runs && summary->rows_written ? 0 : spiral_error("out of memory analyzing %d runs", n_runs);
    for (int i = 0; i < n_runs && status == 0; i++) {
        status = analyze_recording(store, run_names[i], dataset, o, &runs[i]);
        if (status) break;
        summary->rows_written[summary->n_runs++] = runs[i].rows_written;
        analyze_print_run(out, &runs[i]);
    }
    if (status == 0 && n_runs > 1) analyze_print_side_by_side(out, runs, n_runs);
    for (int a = 0; a < n_runs && status == 0; a++)
        for (int b = a + 1; b < n_runs && status == 0; b++) {
            AnalyzeCross cross;
            status = analyze_cross(store, &runs[a], &runs[b], o, &cross);
            if (status) break;
            summary->n_pairs++;
            summary->cross_rows += cross.rows_written;
            analyze_print_cross(out, &cross);
            analyze_cross_free(&cross);
        }
    for (int i = 0; runs && i < n_runs; i++) analyze_run_free(&runs[i]);
    free(runs);
    return status;
}
