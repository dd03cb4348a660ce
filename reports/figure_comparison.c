/*
 * figure_comparison.c: the comparison figure (figures.h): validation loss
 * vs non-embedding parameters and vs training FLOPs, a point with its t
 * interval per group of seeds (compare.h) and an open circle per seed.
 */
#include <math.h>
#include <string.h>

#include "figure_common.h"

/* The legend name of a group: its runs' names, and the number of seeds. */
static void group_label(char *out, size_t size, const Comparison *c, const CompareGroup *g) {
    size_t used = 0;
    out[0] = 0;
    for (int m = 0; m < g->n && used + 1 < size; m++) {
        const char *name = c->runs[g->members[m]].name;
        if (used + strlen(name) + 16 > 60 && m > 0) {
            used += (size_t)snprintf(out + used, size - used, ", ...");
            break;
        }
        used += (size_t)snprintf(out + used, size - used, "%s%s", m ? ", " : "", name);
    }
    if (g->n > 1 && used + 1 < size) snprintf(out + used, size - used, " (%d seeds)", g->n);
}

/* Validation loss vs parameters and vs FLOPs, groups of seeds with error bars. */
int figure_comparison(FigureList *list, const ReportData *data, const Comparison *c, const char *dir) {
    const char *title = "Validation loss vs parameters and vs training FLOPs (mean and 95% interval over seeds)";
    const char *caption = "One filled point per group of runs that differ only in their seed, with"
                          " the t interval of the mean over the seeds as error bars (a single seed"
                          " has none); open circles: each seed. Parameters exclude the embedding;"
                          " FLOPs are the analytic training count at the last step.";
    int n_groups = 0, longest = 20;
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {0, 0};
    char label[128];
    for (int g = 0; c && g < c->n_groups; g++) {
        const CompareGroup *group = &c->groups[g];
        if (group->val_loss.n == 0) continue;
        n_groups++;
        group_label(label, sizeof label, c, group);
        longest = max_int(longest, (int)strlen(label));
        double x[2] = {group->params_nonembedding, group->train_flops};
        for (int a = 0; a < 2; a++)
            for (int m = 0; m < group->n; m++) {
                const CompareRun *run = &c->runs[group->members[m]];
                double v = a == 0 ? run->params_nonembedding : run->train_flops;
                if (v > 0) {
                    lo[a] = fmin(lo[a], v);
                    hi[a] = fmax(hi[a], v);
                }
            }
        for (int a = 0; a < 2; a++)
            if (x[a] > 0) {
                lo[a] = fmin(lo[a], x[a]);
                hi[a] = fmax(hi[a], x[a]);
            }
    }
    if (!c)
        return figure_add(list, NULL, "comparison", title, caption,
                          "the runs could not be compared (see the comparison section)");
    if (n_groups == 0)
        return figure_add(list, NULL, "comparison", title, caption,
                          "no run has a validation loss yet (train with eval_every > 0)");
    int pw = 520, ph = 400, col = PAD_LEFT + pw + PAD_RIGHT + 20;
    int W = max_int(2 * col + 10, figure_title_width(title)), x_shift = (W - 2 * col) / 2;
    int key_px = plot_key_px(n_groups + 1, longest, W);
    int H = PLOT_TITLE_PX + PAD_TOP + ph + PAD_BOTTOM + key_px;
    Plot plot;
    if (plot_begin(&plot, dir, "comparison", W, H,
                   "level,group,name,runs,kind,n_seeds,params_nonembedding,params,train_flops,"
                   "val_loss,ci_lo,ci_hi"))
        return -1;
    plot.key_px = key_px;
    for (int g = 0; g < c->n_groups; g++) {
        const CompareGroup *group = &c->groups[g];
        const CompareRun *first = &c->runs[group->members[0]];
        char runs[1024];
        size_t used = 0;
        runs[0] = 0;
        for (int m = 0; m < group->n && used + 1 < sizeof runs; m++)
            used += (size_t)snprintf(runs + used, sizeof runs - used, "%s%s", m ? " " : "",
                                     c->runs[group->members[m]].name);
        group_label(label, sizeof label, c, group);
        const CsvField group_row[] = {
            csv_text("group"), csv_int(g), csv_text(label), csv_text(runs), csv_text(first->kind), csv_int(group->n),
            csv_num(group->params_nonembedding), csv_num(group->params), csv_num(group->train_flops),
            csv_num(group->val_loss.n ? group->val_loss.mean : NAN),
            csv_num(group->val_loss.n ? group->val_loss.lo : NAN),
            csv_num(group->val_loss.n ? group->val_loss.hi : NAN)};
        plot_csv_row(&plot, group_row, (int)(sizeof group_row / sizeof group_row[0]));
        for (int m = 0; m < group->n; m++) {
            const CompareRun *run = &c->runs[group->members[m]];
            const CsvField run_row[] = {csv_text("run"), csv_int(g), csv_text(run->name), csv_text(run->name),
                                        csv_text(run->kind), csv_int(1), csv_num(run->params_nonembedding),
                                        csv_num(run->params), csv_num(run->train_flops), csv_num(run->val_loss),
                                        csv_num(NAN), csv_num(NAN)};
            plot_csv_row(&plot, run_row, (int)(sizeof run_row / sizeof run_row[0]));
        }
    }
    Text *s = &plot.script;
    plot_multiplot(&plot, title);
    text_printf(s, "    unset key\n    set logscale x\n");
    for (int panel = 0; panel < 2; panel++) {
        int xcol = panel == 0 ? 7 : 9;
        /* a factor of 1.6 of room on both sides keeps the points off the border */
        double a = isfinite(lo[panel]) ? lo[panel] / 1.6 : 1, b = hi[panel] > 0 ? hi[panel] * 1.6 : 10;
        text_printf(s, "    # panel %d\n", panel + 1);
        plot_panel(&plot, x_shift + panel * col + PAD_LEFT, PLOT_TITLE_PX + PAD_TOP, pw, ph);
        text_printf(s, "    set xrange [%g:%g]\n", a, b);
        figure_log_tics(s, a, b);
        figure_gp_set(s, "title", panel == 0 ? "validation loss vs non-embedding parameters"
                                              : "validation loss vs training FLOPs");
        figure_gp_set(s, "xlabel", panel == 0 ? "non-embedding parameters (log scale)"
                                               : "training FLOPs, analytic (log scale)");
        figure_gp_set(s, "ylabel", "validation loss (nats/token)");
        text_printf(s, "    plot NaN notitle");
        for (int g = 0; g < c->n_groups; g++) {
            if (c->groups[g].val_loss.n == 0) continue;
            const ReportRun *run = figure_find_run(data, c->runs[c->groups[g].members[0]].name);
            int color = run ? run->color : g % PLOT_N_STYLES + 1;
            text_printf(s, ", \\\n        'comparison.csv' using (");
            plot_filter_eq(s, 1, "run");
            text_printf(s, " && $2 == %d ? $%d : NaN):10 with points lt %d pt %d ps 1.3 lw 1.5 notitle",
                        g, xcol, color, plot_point_type(color, 0));
            text_printf(s, ", \\\n        'comparison.csv' using (");
            plot_filter_eq(s, 1, "group");
            text_printf(s, " && $2 == %d ? $%d : NaN):10:11:12 with yerrorbars lt %d dt solid ps 1.6 lw 2"
                           " notitle", g, xcol, color);
        }
        text_printf(s, "\n");
    }
    for (int g = 0; g < c->n_groups; g++) {
        if (c->groups[g].val_loss.n == 0) continue;
        const ReportRun *run = figure_find_run(data, c->runs[c->groups[g].members[0]].name);
        char style[64];
        snprintf(style, sizeof style, "with points lt %d ps 1.6", run ? run->color : g % PLOT_N_STYLES + 1);
        group_label(label, sizeof label, c, &c->groups[g]);
        plot_key_entry(&plot, style, label);
    }
    plot_key_entry(&plot, "with points lc rgb '#555555' pt 6 ps 1.3", "one seed");
    return figure_finish(list, &plot, title, caption);
}
