/*
 * compare.c: runs compared at equal tokens, FLOPs and parameters, seeds
 * aggregated with t intervals (definitions in compare.h).
 */
#include "compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_store.h"
#include "cost.h"
#include "error.h"

void compare_options_default(CompareOptions *o) {
    o->group_by_config = 1;
    o->level = 0.95;
    o->param_tolerance = 0.05;
}

void compare_free(Comparison *c) {
    for (int i = 0; c->runs && i < c->n_runs; i++) {
        free(c->runs[i].group_key);
        free(c->runs[i].eval_tokens);
        free(c->runs[i].eval_flops);
        free(c->runs[i].eval_loss);
    }
    for (int g = 0; c->groups && g < c->n_groups; g++) free(c->groups[g].members);
    free(c->runs);
    free(c->groups);
    memset(c, 0, sizeof *c);
}

/* The group key: model and train JSON, resolved, with train.seed and
 * train.checkpoint_dir cleared (malloc'd, NULL if out of memory). */
static char *group_key(const CompareRun *r) {
    TrainConfig train = r->train;
    train.seed = 0;
    train.checkpoint_dir[0] = 0;
    char *model = config_to_json(&r->model), *trained = train_config_to_json(&train);
    char *key = NULL;
    if (model && trained && (key = malloc(strlen(model) + strlen(trained) + 2)))
        sprintf(key, "%s|%s", model, trained);
    free(model);
    free(trained);
    return key;
}

/* Reads the run's metrics: last row, and the validation curve. */
static int read_metrics(Store *store, CompareRun *r) {
    MetricRow *rows;
    int n;
    if (analysis_store_metrics(store, r->id, &rows, &n)) return -1;
    int status = 0;
    r->val_loss = NAN;
    r->eval_tokens = malloc((size_t)(n > 0 ? n : 1) * sizeof *r->eval_tokens);
    r->eval_flops = malloc((size_t)(n > 0 ? n : 1) * sizeof *r->eval_flops);
    r->eval_loss = malloc((size_t)(n > 0 ? n : 1) * sizeof *r->eval_loss);
    if (!r->eval_tokens || !r->eval_flops || !r->eval_loss)
        status = spiral_error("out of memory reading the metrics of run %s", r->name);
    for (int i = 0; i < n && status == 0; i++) {
        r->step = rows[i].step;
        r->tokens = (double)rows[i].tokens;
        r->train_flops = rows[i].flops;
        if (isnan(rows[i].val_loss)) continue;
        r->eval_tokens[r->n_evals] = r->tokens;
        r->eval_flops[r->n_evals] = r->train_flops;
        r->eval_loss[r->n_evals] = rows[i].val_loss;
        r->val_loss = rows[i].val_loss;
        r->val_step = r->step;
        r->n_evals++;
    }
    free(rows);
    return status;
}

/* Interpolates y(x) at x_at, NaN if outside the curve (not an error). */
static double interpolate_or_nan(const double *x, const double *y, int n, double x_at) {
    double value;
    if (n < 1 || isnan(x_at) || stats_interpolate(&value, x, y, n, x_at)) return NAN;
    return value;
}

/* Mean and t interval of the finite values among x (n); n = 0 if none. */
static int interval_of_finite(MeanInterval *out, const double *x, int n, double level, double *work) {
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) work[m++] = x[i];
    memset(out, 0, sizeof *out);
    out->mean = out->lo = out->hi = NAN;
    if (m == 0) return 0;
    return stats_mean_ci_t(out, work, m, level);
}

/* Groups runs by key (or one group per run) and computes their intervals. */
static int build_groups(Comparison *c, const CompareOptions *o) {
    c->groups = calloc((size_t)c->n_runs, sizeof *c->groups);
    double *values = malloc((size_t)c->n_runs * 2 * sizeof *values); /* (n_runs) values, (n_runs) work */
    double *work = values ? values + c->n_runs : NULL;
    if (!c->groups || !values) {
        free(values);
        return spiral_error("out of memory");
    }
    for (int i = 0; i < c->n_runs; i++) {
        CompareRun *r = &c->runs[i];
        r->group = -1;
        for (int g = 0; o->group_by_config && g < c->n_groups && r->group < 0; g++)
            if (!strcmp(c->runs[c->groups[g].members[0]].group_key, r->group_key)) r->group = g;
        if (r->group < 0) {
            r->group = c->n_groups++;
            c->groups[r->group].members = malloc((size_t)c->n_runs * sizeof(int));
            if (!c->groups[r->group].members) {
                free(values);
                return spiral_error("out of memory");
            }
        }
        CompareGroup *group = &c->groups[r->group];
        group->members[group->n++] = i;
    }
    int status = 0;
    for (int g = 0; g < c->n_groups && status == 0; g++) {
        CompareGroup *group = &c->groups[g];
        const CompareRun *first = &c->runs[group->members[0]];
        group->params = first->params;
        group->params_nonembedding = first->params_nonembedding;
        for (int m = 0; m < group->n; m++) {
            group->tokens += c->runs[group->members[m]].tokens / group->n;
            group->train_flops += c->runs[group->members[m]].train_flops / group->n;
        }
        for (int which = 0; which < 3 && status == 0; which++) {
            for (int m = 0; m < group->n; m++) {
                const CompareRun *r = &c->runs[group->members[m]];
                values[m] = which == 0 ? r->val_loss : which == 1 ? r->loss_at_tokens : r->loss_at_flops;
            }
            MeanInterval *out = which == 0 ? &group->val_loss : which == 1 ? &group->loss_at_tokens
                                                                            : &group->loss_at_flops;
            status = interval_of_finite(out, values, group->n, o->level, work);
        }
    }
    free(values);
    return status;
}

/* Cuts the groups, sorted by non-embedding parameters, into sets within
 * the tolerance of each set's smallest. */
static void build_param_sets(Comparison *c, double tolerance) {
    int *done = calloc((size_t)c->n_groups, sizeof *done);
    c->n_param_sets = 0;
    if (!done) return;
    for (;;) {
        /* the smallest group not yet in a set starts the next set */
        int smallest = -1;
        for (int g = 0; g < c->n_groups; g++)
            if (!done[g] && (smallest < 0 || c->groups[g].params_nonembedding < c->groups[smallest].params_nonembedding))
                smallest = g;
        if (smallest < 0) break;
        double limit = c->groups[smallest].params_nonembedding * (1 + tolerance);
        for (int g = 0; g < c->n_groups; g++)
            if (!done[g] && c->groups[g].params_nonembedding <= limit) {
                done[g] = 1;
                c->groups[g].param_set = c->n_param_sets;
            }
        c->n_param_sets++;
    }
    free(done);
}

int compare_runs(Comparison *out, Store *store, const char *const *names, int n, const CompareOptions *o) {
    Comparison c;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    if (n < 1) return spiral_error("compare: expected at least one run");
    if (!(o->level > 0 && o->level < 1) || !(o->param_tolerance >= 0))
        return spiral_error("compare: level must be in (0, 1) and the parameter tolerance >= 0");
    c.level = o->level;
    c.param_tolerance = o->param_tolerance;
    c.runs = calloc((size_t)n, sizeof *c.runs);
    if (!c.runs) return spiral_error("out of memory");
    c.n_runs = n;
    int status = 0;
    for (int i = 0; i < n && status == 0; i++) {
        CompareRun *r = &c.runs[i];
        RunRow row;
        if (store_run_find(store, names[i], &row)) {
            status = -1;
            break;
        }
        char source[1400];
        snprintf(source, sizeof source, "%s: run %s", store->path, names[i]);
        snprintf(r->name, sizeof r->name, "%s", row.name);
        snprintf(r->kind, sizeof r->kind, "%s", row.kind);
        r->id = row.id;
        status = config_parse(&r->model, row.config, source) || train_config_parse(&r->train, row.config, source)
                     ? -1 : 0;
        store_run_free(&row);
        if (status) break;
        for (int j = 0; j < i; j++)
            if (c.runs[j].id == r->id) {
                status = spiral_error("compare: run %s is given twice", r->name);
                break;
            }
        if (status) break;
        ModelCost cost;
        model_cost(&cost, &r->model, r->train.seq_len);
        r->params = cost.params;
        r->params_nonembedding = cost.params_nonembedding;
        r->forward_flops = cost.forward_flops;
        r->group_key = group_key(r);
        if (!r->group_key) status = spiral_error("out of memory");
        if (status == 0) status = read_metrics(store, r);
    }
    if (status) {
        compare_free(&c);
        return -1;
    }
    /* the budgets: every evaluated run reaches them */
    c.equal_tokens = c.equal_flops = NAN;
    for (int i = 0; i < n; i++) {
        const CompareRun *r = &c.runs[i];
        if (r->n_evals == 0) continue;
        double tokens = r->eval_tokens[r->n_evals - 1], flops = r->eval_flops[r->n_evals - 1];
        if (isnan(c.equal_tokens) || tokens < c.equal_tokens) c.equal_tokens = tokens;
        if (isnan(c.equal_flops) || flops < c.equal_flops) c.equal_flops = flops;
    }
    for (int i = 0; i < n; i++) {
        CompareRun *r = &c.runs[i];
        r->loss_at_tokens = interpolate_or_nan(r->eval_tokens, r->eval_loss, r->n_evals, c.equal_tokens);
        r->loss_at_flops = interpolate_or_nan(r->eval_flops, r->eval_loss, r->n_evals, c.equal_flops);
    }
    if (build_groups(&c, o)) {
        compare_free(&c);
        return -1;
    }
    build_param_sets(&c, o->param_tolerance);
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

/* "1.2345" or "-" for NaN. */
static void format_value(char *out, size_t size, double value, int decimals) {
    if (isnan(value)) snprintf(out, size, "-");
    else snprintf(out, size, "%.*f", decimals, value);
}

/* "1.2345 [1.2000, 1.2600]", "1.2345 (1 seed)" or "-"; exp_of: exp of each. */
static void format_group_interval(char *out, size_t size, const MeanInterval *m, int exp_of) {
    if (m->n == 0 || isnan(m->mean)) {
        snprintf(out, size, "-");
        return;
    }
    double mean = exp_of ? exp(m->mean) : m->mean, lo = exp_of ? exp(m->lo) : m->lo;
    double hi = exp_of ? exp(m->hi) : m->hi;
    if (m->n == 1) snprintf(out, size, "%.4f (1 seed)", mean);
    else snprintf(out, size, "%.4f [%.4f, %.4f]", mean, lo, hi);
}

void compare_print(FILE *f, const Comparison *c) {
    char a[64], b[64], t[64], fl[64];
    fprintf(f, "runs (params at train.seq_len; tokens and training FLOPs at the last step; validation loss at the "
               "last evaluation)\n");
    fprintf(f, "%-20s %-7s %5s %10s %10s %11s %11s %7s %9s %10s %12s %12s\n", "run", "kind", "seed", "params",
            "non-emb", "train FLOPs", "tokens", "step", "val loss", "perplexity", "@eq. tokens", "@eq. FLOPs");
    for (int i = 0; i < c->n_runs; i++) {
        const CompareRun *r = &c->runs[i];
        format_value(a, sizeof a, r->val_loss, 4);
        format_value(b, sizeof b, isnan(r->val_loss) ? NAN : exp(r->val_loss), 3);
        format_value(t, sizeof t, r->loss_at_tokens, 4);
        format_value(fl, sizeof fl, r->loss_at_flops, 4);
        fprintf(f, "%-20s %-7s %5ld %10.0f %10.0f %11.4g %11.0f %7lld %9s %10s %12s %12s\n", r->name, r->kind,
                r->train.seed, r->params, r->params_nonembedding, r->train_flops, r->tokens, r->step, a, b, t, fl);
    }
    fprintf(f, "\nequal tokens: %.0f; equal FLOPs: %.4g (the smallest budget at any run's last evaluation; "
               "validation curves interpolated linearly)\n",
            c->equal_tokens, c->equal_flops);
    fprintf(f, "\ngroups (run files equal but for train.seed; mean and %.0f%% t-interval over seeds)\n",
            100 * c->level);
    fprintf(f, "%-20s %-7s %3s %10s %-28s %-28s %-28s %s\n", "group", "kind", "n", "non-emb", "val loss",
            "perplexity", "loss @ equal tokens", "loss @ equal FLOPs");
    for (int g = 0; g < c->n_groups; g++) {
        const CompareGroup *group = &c->groups[g];
        const CompareRun *first = &c->runs[group->members[0]];
        char loss[64], ppl[64], at_tokens[64], at_flops[64];
        format_group_interval(loss, sizeof loss, &group->val_loss, 0);
        format_group_interval(ppl, sizeof ppl, &group->val_loss, 1);
        format_group_interval(at_tokens, sizeof at_tokens, &group->loss_at_tokens, 0);
        format_group_interval(at_flops, sizeof at_flops, &group->loss_at_flops, 0);
        fprintf(f, "%-20s %-7s %3d %10.0f %-28s %-28s %-28s %s\n", first->name, first->kind, group->n,
                group->params_nonembedding, loss, ppl, at_tokens, at_flops);
        if (group->n > 1) {
            fprintf(f, "  runs:");
            for (int m = 0; m < group->n; m++)
                fprintf(f, "%s %s (seed %ld)", m ? "," : "", c->runs[group->members[m]].name,
                        c->runs[group->members[m]].train.seed);
            fputc('\n', f);
        }
    }
    fprintf(f, "\nequal parameters (non-embedding parameters within %.0f%% of the set's smallest):\n",
            100 * c->param_tolerance);
    for (int s = 0; s < c->n_param_sets; s++) {
        fprintf(f, "  set %d:", s + 1);
        for (int g = 0; g < c->n_groups; g++) {
            const CompareGroup *group = &c->groups[g];
            if (group->param_set != s) continue;
            char loss[64];
            format_group_interval(loss, sizeof loss, &group->loss_at_tokens, 0);
            fprintf(f, "  %s (%s, %.0f params): %s", c->runs[group->members[0]].name,
                    c->runs[group->members[0]].kind, group->params_nonembedding, loss);
        }
        fputc('\n', f);
    }
    fprintf(f, "  (loss at equal tokens)\n");
}

/* Writes a number, or nothing for NaN, after a comma. */
static void csv_number(FILE *f, double value) {
    if (isnan(value)) fputs(",", f);
    else fprintf(f, ",%.10g", value);
}

int compare_write_csv(const char *path, const Comparison *c) {
    FILE *f = fopen(path, "w");
    if (!f) return spiral_error("%s: cannot write the CSV file", path);
    fprintf(f, "level,name,kind,n,seed,params,params_nonembedding,forward_flops,train_flops,tokens,step,"
               "val_loss,val_loss_lo,val_loss_hi,perplexity,loss_at_tokens,loss_at_tokens_lo,loss_at_tokens_hi,"
               "loss_at_flops,loss_at_flops_lo,loss_at_flops_hi,equal_tokens,equal_flops,param_set\n");
    for (int i = 0; i < c->n_runs; i++) {
        const CompareRun *r = &c->runs[i];
        fprintf(f, "run,%s,%s,1,%ld", r->name, r->kind, r->train.seed);
        double row[] = {r->params, r->params_nonembedding, r->forward_flops, r->train_flops, r->tokens,
                        (double)r->step, r->val_loss, r->val_loss, r->val_loss, exp(r->val_loss),
                        r->loss_at_tokens, r->loss_at_tokens, r->loss_at_tokens, r->loss_at_flops,
                        r->loss_at_flops, r->loss_at_flops, c->equal_tokens, c->equal_flops,
                        (double)c->groups[r->group].param_set + 1};
        for (size_t k = 0; k < sizeof row / sizeof row[0]; k++) csv_number(f, row[k]);
        fputc('\n', f);
    }
    for (int g = 0; g < c->n_groups; g++) {
        const CompareGroup *group = &c->groups[g];
        const CompareRun *first = &c->runs[group->members[0]];
        fprintf(f, "group,%s,%s,%d,", first->name, first->kind, group->n);
        double row[] = {group->params, group->params_nonembedding, first->forward_flops, group->train_flops,
                        group->tokens, NAN, group->val_loss.mean, group->val_loss.lo, group->val_loss.hi,
                        exp(group->val_loss.mean), group->loss_at_tokens.mean, group->loss_at_tokens.lo,
                        group->loss_at_tokens.hi, group->loss_at_flops.mean, group->loss_at_flops.lo,
                        group->loss_at_flops.hi, c->equal_tokens, c->equal_flops, (double)group->param_set + 1};
        for (size_t k = 0; k < sizeof row / sizeof row[0]; k++) csv_number(f, row[k]);
        fputc('\n', f);
    }
    if (fclose(f) != 0) return spiral_error("%s: error writing the CSV file", path);
    return 0;
}
