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
    o->budget_tolerance = 0.05;
    o->at_tokens = o->at_flops = NAN;
    o->interpolate = 0;
}

const char *compare_read_name(CompareReadKind kind) {
    switch (kind) {
    case COMPARE_READ_END: return "end";
    case COMPARE_READ_MID_SCHEDULE: return "mid-schedule";
    case COMPARE_READ_REFUSED: return "refused: mid-schedule";
    case COMPARE_READ_NOT_REACHED: return "not reached";
    case COMPARE_READ_MIXED: return "mixed";
    default: return "no evaluation";
    }
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
    r->finished = r->n_evals > 0 && r->val_step == r->train.steps;
    free(rows);
    return status;
}

/* Interpolates y(x) at x_at, NaN if outside the curve (not an error). */
static double interpolate_or_nan(const double *x, const double *y, int n, double x_at) {
    double value;
    if (n < 1 || isnan(x_at) || stats_interpolate(&value, x, y, n, x_at)) return NAN;
    return value;
}

CompareReading compare_read_curve(const double *x, const double *loss, int n, int finished, double budget,
                                  double tolerance, int interpolate) {
    CompareReading r = {NAN, NAN, COMPARE_READ_NONE};
    if (n < 1) return r;
    double end = x[n - 1];
    if (isnan(budget)) { /* each run at its own end */
        if (finished || interpolate) {
            r.loss = loss[n - 1];
            r.at = end;
            r.how = finished ? COMPARE_READ_END : COMPARE_READ_MID_SCHEDULE;
        } else {
            r.how = COMPARE_READ_REFUSED;
        }
        return r;
    }
    if (finished && fabs(end - budget) <= tolerance * budget) {
        r.loss = loss[n - 1];
        r.at = end;
        r.how = COMPARE_READ_END;
    } else if (budget > end) {
        r.how = COMPARE_READ_NOT_REACHED;
    } else if (interpolate) {
        r.loss = interpolate_or_nan(x, loss, n, budget);
        r.at = budget;
        r.how = isnan(r.loss) ? COMPARE_READ_NOT_REACHED : COMPARE_READ_MID_SCHEDULE;
        if (isnan(r.loss)) r.at = NAN; /* before the first evaluation: nothing to read */
    } else {
        r.how = COMPARE_READ_REFUSED;
    }
    return r;
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

/* The common kind of readings (MIXED if they differ) and the mean of
 * where they were taken (over the runs read; NaN if none). */
static void group_reading(CompareReadKind *how, double *at, const CompareGroup *group, const CompareRun *runs,
                          int flops) {
    int read = 0;
    *at = 0;
    for (int m = 0; m < group->n; m++) {
        const CompareReading *r = flops ? &runs[group->members[m]].at_flops : &runs[group->members[m]].at_tokens;
        if (m == 0) *how = r->how;
        else if (*how != r->how) *how = COMPARE_READ_MIXED;
        if (isfinite(r->loss)) {
            *at += r->at;
            read++;
        }
    }
    *at = read ? *at / read : NAN;
}

static void group_readings(CompareGroup *group, const CompareRun *runs) {
    group_reading(&group->how_tokens, &group->read_tokens, group, runs, 0);
    group_reading(&group->how_flops, &group->read_flops, group, runs, 1);
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
        group_readings(group, c->runs);
        for (int which = 0; which < 3 && status == 0; which++) {
            for (int m = 0; m < group->n; m++) {
                const CompareRun *r = &c->runs[group->members[m]];
                values[m] = which == 0 ? r->val_loss : which == 1 ? r->at_tokens.loss : r->at_flops.loss;
            }
            MeanInterval *out = which == 0 ? &group->val_loss : which == 1 ? &group->loss_at_tokens
                                                                            : &group->loss_at_flops;
            status = interval_of_finite(out, values, group->n, o->level, work);
        }
    }
    free(values);
    return status;
}

/* The quantity a set is cut on: 0 parameters, 1 tokens read, 2 FLOPs read. */
static double set_value(const CompareGroup *group, int what) {
    return what == 0 ? group->params_nonembedding : what == 1 ? group->read_tokens : group->read_flops;
}

/* Cuts the groups with a finite value, sorted by it, into sets within the
 * tolerance of each set's smallest; returns the number of sets (groups
 * without a value get -1). */
static int build_sets(Comparison *c, int what, double tolerance) {
    if (c->n_groups < 1) return 0;
    int *done = calloc((size_t)c->n_groups, sizeof *done);
    int n_sets = 0;
    for (int g = 0; g < c->n_groups; g++) {
        int *set = what == 0 ? &c->groups[g].param_set : what == 1 ? &c->groups[g].token_set : &c->groups[g].flop_set;
        *set = -1;
        if (done && !isfinite(set_value(&c->groups[g], what))) done[g] = 1;
    }
    if (!done) return 0;
    for (;;) {
        /* the smallest group not yet in a set starts the next set */
        int smallest = -1;
        for (int g = 0; g < c->n_groups; g++)
            if (!done[g] && (smallest < 0 || set_value(&c->groups[g], what) < set_value(&c->groups[smallest], what)))
                smallest = g;
        if (smallest < 0) break;
        double limit = set_value(&c->groups[smallest], what) * (1 + tolerance);
        for (int g = 0; g < c->n_groups; g++)
            if (!done[g] && set_value(&c->groups[g], what) <= limit) {
                done[g] = 1;
                if (what == 0) c->groups[g].param_set = n_sets;
                else if (what == 1) c->groups[g].token_set = n_sets;
                else c->groups[g].flop_set = n_sets;
            }
        n_sets++;
    }
    free(done);
    return n_sets;
}

int compare_runs(Comparison *out, Store *store, const char *const *names, int n, const CompareOptions *o) {
    Comparison c;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    if (n < 1) return spiral_error("compare: expected at least one run");
    if (!(o->level > 0 && o->level < 1) || !(o->param_tolerance >= 0) || !(o->budget_tolerance >= 0))
        return spiral_error("compare: level must be in (0, 1) and the tolerances >= 0");
    if (!isnan(o->at_tokens) && !(o->at_tokens > 0)) return spiral_error("compare: --at-tokens must be > 0");
    if (!isnan(o->at_flops) && !(o->at_flops > 0)) return spiral_error("compare: --at-flops must be > 0");
    c.level = o->level;
    c.param_tolerance = o->param_tolerance;
    c.budget_tolerance = o->budget_tolerance;
    c.at_tokens = o->at_tokens;
    c.at_flops = o->at_flops;
    c.interpolate = o->interpolate;
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
    /* each run read at the budgets on its own: another run listed never moves it */
    for (int i = 0; i < n; i++) {
        CompareRun *r = &c.runs[i];
        r->at_tokens = compare_read_curve(r->eval_tokens, r->eval_loss, r->n_evals, r->finished, c.at_tokens,
                                          c.budget_tolerance, c.interpolate);
        r->at_flops = compare_read_curve(r->eval_flops, r->eval_loss, r->n_evals, r->finished, c.at_flops,
                                         c.budget_tolerance, c.interpolate);
    }
    if (build_groups(&c, o)) {
        compare_free(&c);
        return -1;
    }
    c.n_param_sets = build_sets(&c, 0, c.param_tolerance);
    c.n_token_sets = build_sets(&c, 1, c.budget_tolerance);
    c.n_flop_sets = build_sets(&c, 2, c.budget_tolerance);
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

/* "0.9376 [0.9300, 0.9450] (end)", or the reason there is no value. */
static void format_reading(char *out, size_t size, const MeanInterval *m, CompareReadKind how) {
    if (m->n == 0 || isnan(m->mean)) {
        snprintf(out, size, "- (%s)", compare_read_name(how));
        return;
    }
    char value[96];
    format_group_interval(value, sizeof value, m, 0);
    snprintf(out, size, "%s (%s)", value, compare_read_name(how));
}

/* The line saying how one budget was read. */
static void print_budget_rule(FILE *f, const Comparison *c, const char *axis, double budget) {
    if (isnan(budget))
        fprintf(f, "  %s: each run at the end of its own schedule (its last evaluation, at train.steps)%s\n", axis,
                c->interpolate ? "; an unfinished run at its last evaluation, labelled mid-schedule"
                               : "; an unfinished run is refused");
    else
        fprintf(f, "  %s: at %.4g: a finished run ending within %.0f%% of it is read at its end; one that passes"
                   " it mid-schedule is %s; one that ends before it is not reached (never extrapolated)\n",
                axis, budget, 100 * c->budget_tolerance,
                c->interpolate ? "interpolated linearly there, labelled mid-schedule" : "refused (--interpolate reads it)");
}

/* The groups of budget set `set` (what: 1 tokens, 2 FLOPs), restricted to
 * parameter set param_set unless it is -1: "name: loss (how)", separated by
 * "; ", with each group's deviation from the set's first where it is not 0.
 * Returns the number printed. */
static int print_set_members(FILE *f, const Comparison *c, int what, int set, int param_set) {
    int printed = 0;
    double first = NAN;
    for (int g = 0; g < c->n_groups; g++) {
        const CompareGroup *group = &c->groups[g];
        int in = what == 1 ? group->token_set == set : group->flop_set == set;
        if (!in || (param_set >= 0 && group->param_set != param_set)) continue;
        double at = what == 1 ? group->read_tokens : group->read_flops;
        if (isnan(first)) first = at;
        char loss[160], deviation[48] = "";
        format_reading(loss, sizeof loss, what == 1 ? &group->loss_at_tokens : &group->loss_at_flops,
                       what == 1 ? group->how_tokens : group->how_flops);
        if (at != first) snprintf(deviation, sizeof deviation, " [%+.2f%%]", 100 * (at - first) / first);
        fprintf(f, "%s %s (%s%s): %s", printed ? ";" : "", c->runs[group->members[0]].name,
                c->runs[group->members[0]].kind, deviation, loss);
        printed++;
    }
    return printed;
}

/* Each equal-token or equal-FLOPs set (what 1 or 2) on a line. */
static void print_budget_sets(FILE *f, const Comparison *c, int what) {
    const char *axis = what == 1 ? "tokens" : "FLOPs";
    fprintf(f, "\nequal %s (groups read at %s within %.0f%% of each other; [+x%%]: where a group was read"
               " against the set's first)\n", axis, axis, 100 * c->budget_tolerance);
    int n_sets = what == 1 ? c->n_token_sets : c->n_flop_sets;
    if (n_sets == 0) fprintf(f, "  none: no group has a reading\n");
    for (int s = 0; s < n_sets; s++) {
        double at = NAN;
        for (int g = 0; g < c->n_groups && isnan(at); g++)
            if ((what == 1 ? c->groups[g].token_set : c->groups[g].flop_set) == s)
                at = what == 1 ? c->groups[g].read_tokens : c->groups[g].read_flops;
        fprintf(f, "  set %d at %.4g %s:", s + 1, at, axis);
        print_set_members(f, c, what, s, -1);
        fputc('\n', f);
    }
}

void compare_print(FILE *f, const Comparison *c) {
    char a[64], b[64], steps[48];
    fprintf(f, "runs (params at train.seq_len; tokens and training FLOPs at the last step; validation loss at the "
               "last evaluation)\n");
    fprintf(f, "%-20s %-7s %5s %10s %10s %11s %11s %13s %9s %10s\n", "run", "kind", "seed", "params", "non-emb",
            "train FLOPs", "tokens", "step / steps", "val loss", "perplexity");
    for (int i = 0; i < c->n_runs; i++) {
        const CompareRun *r = &c->runs[i];
        format_value(a, sizeof a, r->val_loss, 4);
        format_value(b, sizeof b, isnan(r->val_loss) ? NAN : exp(r->val_loss), 3);
        snprintf(steps, sizeof steps, "%lld / %ld", r->step, r->train.steps);
        fprintf(f, "%-20s %-7s %5ld %10.0f %10.0f %11.4g %11.0f %13s %9s %10s\n", r->name, r->kind, r->train.seed,
                r->params, r->params_nonembedding, r->train_flops, r->tokens, steps, a, b);
    }
    fprintf(f, "\nbudgets (a curve read before its learning rate has decayed is not a fair value):\n");
    print_budget_rule(f, c, "tokens", c->at_tokens);
    print_budget_rule(f, c, "FLOPs", c->at_flops);
    fprintf(f, "\ngroups (run files equal but for train.seed; mean and %.0f%% t-interval over seeds)\n",
            100 * c->level);
    fprintf(f, "%-20s %-7s %3s %10s %-28s %-28s %-38s %s\n", "group", "kind", "n", "non-emb", "val loss",
            "perplexity", "loss @ tokens (how read)", "loss @ FLOPs (how read)");
    for (int g = 0; g < c->n_groups; g++) {
        const CompareGroup *group = &c->groups[g];
        const CompareRun *first = &c->runs[group->members[0]];
        char loss[64], ppl[64], at_tokens[160], at_flops[160];
        format_group_interval(loss, sizeof loss, &group->val_loss, 0);
        format_group_interval(ppl, sizeof ppl, &group->val_loss, 1);
        format_reading(at_tokens, sizeof at_tokens, &group->loss_at_tokens, group->how_tokens);
        format_reading(at_flops, sizeof at_flops, &group->loss_at_flops, group->how_flops);
        fprintf(f, "%-20s %-7s %3d %10.0f %-28s %-28s %-38s %s\n", first->name, first->kind, group->n,
                group->params_nonembedding, loss, ppl, at_tokens, at_flops);
        if (group->n > 1) {
            fprintf(f, "  runs:");
            for (int m = 0; m < group->n; m++)
                fprintf(f, "%s %s (seed %ld)", m ? "," : "", c->runs[group->members[m]].name,
                        c->runs[group->members[m]].train.seed);
            fputc('\n', f);
        }
    }
    print_budget_sets(f, c, 1);
    print_budget_sets(f, c, 2);
    fprintf(f, "\nequal parameters (non-embedding parameters within %.0f%% of the set's smallest), each at equal"
               " tokens and at equal FLOPs:\n", 100 * c->param_tolerance);
    for (int s = 0; s < c->n_param_sets; s++) {
        fprintf(f, "  set %d:", s + 1);
        int n = 0;
        for (int g = 0; g < c->n_groups; g++) {
            const CompareGroup *group = &c->groups[g];
            if (group->param_set != s) continue;
            fprintf(f, "%s %s (%s, %.0f)", n++ ? "," : "", c->runs[group->members[0]].name,
                    c->runs[group->members[0]].kind, group->params_nonembedding);
        }
        fputc('\n', f);
        for (int what = 1; what <= 2; what++) {
            int n_sets = what == 1 ? c->n_token_sets : c->n_flop_sets;
            for (int b = 0; b < n_sets; b++) {
                int members = 0;
                for (int g = 0; g < c->n_groups; g++)
                    members += c->groups[g].param_set == s &&
                               (what == 1 ? c->groups[g].token_set : c->groups[g].flop_set) == b;
                if (members < 2) continue; /* nothing to compare with at this budget */
                fprintf(f, "    at equal %s:", what == 1 ? "tokens" : "FLOPs");
                print_set_members(f, c, what, b, s);
                fputc('\n', f);
            }
        }
    }
}

/* A 1-based set number for the CSV, NaN (empty) for none. */
static double set_number(int set) { return set >= 0 ? set + 1.0 : NAN; }

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
               "loss_at_flops,loss_at_flops_lo,loss_at_flops_hi,read_tokens,read_flops,param_set,token_set,"
               "flop_set,how_tokens,how_flops\n");
    for (int i = 0; i < c->n_runs; i++) {
        const CompareRun *r = &c->runs[i];
        const CompareGroup *group = &c->groups[r->group];
        fprintf(f, "run,%s,%s,1,%ld", r->name, r->kind, r->train.seed);
        double row[] = {r->params, r->params_nonembedding, r->forward_flops, r->train_flops, r->tokens,
                        (double)r->step, r->val_loss, r->val_loss, r->val_loss, exp(r->val_loss),
                        r->at_tokens.loss, r->at_tokens.loss, r->at_tokens.loss, r->at_flops.loss,
                        r->at_flops.loss, r->at_flops.loss, r->at_tokens.at, r->at_flops.at,
                        (double)group->param_set + 1, set_number(group->token_set), set_number(group->flop_set)};
        for (size_t k = 0; k < sizeof row / sizeof row[0]; k++) csv_number(f, row[k]);
        fprintf(f, ",%s,%s\n", compare_read_name(r->at_tokens.how), compare_read_name(r->at_flops.how));
    }
    for (int g = 0; g < c->n_groups; g++) {
        const CompareGroup *group = &c->groups[g];
        const CompareRun *first = &c->runs[group->members[0]];
        fprintf(f, "group,%s,%s,%d,", first->name, first->kind, group->n);
        double row[] = {group->params, group->params_nonembedding, first->forward_flops, group->train_flops,
                        group->tokens, NAN, group->val_loss.mean, group->val_loss.lo, group->val_loss.hi,
                        exp(group->val_loss.mean), group->loss_at_tokens.mean, group->loss_at_tokens.lo,
                        group->loss_at_tokens.hi, group->loss_at_flops.mean, group->loss_at_flops.lo,
                        group->loss_at_flops.hi, group->read_tokens, group->read_flops,
                        (double)group->param_set + 1, set_number(group->token_set), set_number(group->flop_set)};
        for (size_t k = 0; k < sizeof row / sizeof row[0]; k++) csv_number(f, row[k]);
        fprintf(f, ",%s,%s\n", compare_read_name(group->how_tokens), compare_read_name(group->how_flops));
    }
    if (fclose(f) != 0) return spiral_error("%s: error writing the CSV file", path);
    return 0;
}
