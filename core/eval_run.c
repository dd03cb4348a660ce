/*
 * eval_run.c: a run's validation windows scored from its checkpoint, by
 * position and by chunk slot (see eval_run.h).
 */
#include "eval_run.h"
#include "run_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model.h"
#include "record.h"
#include "train_config.h"

int eval_run_reference(EvalReference *out, Store *store, const char *run_config_json,
                       const char *source) {
    TrainConfig tcfg;
    Dataset ds;
    if (train_config_parse(&tcfg, run_config_json, source)) return -1;
    if (store_dataset_load(store, tcfg.dataset, &ds, NULL)) return -1;
    int status = eval_reference(out, &ds, SPLIT_VAL, tcfg.seq_len, tcfg.window,
                                (size_t)tcfg.eval_batches * tcfg.batch_size, tcfg.dataset);
    dataset_free(&ds);
    return status;
}

int eval_run_same_targets(const char *config_a, const char *config_b) {
    TrainConfig a, b;
    if (train_config_parse(&a, config_a, "run") || train_config_parse(&b, config_b, "run"))
        return 0;
    return !strcmp(a.dataset, b.dataset) && a.seq_len == b.seq_len && a.window == b.window &&
           (long)a.eval_batches * a.batch_size == (long)b.eval_batches * b.batch_size;
}

/* -log softmax(logits)[target] in double: log sum_v exp(x_v - max) + max - x_target. */
static double token_nll(const real *logits, int V, int target) {
    double max = logits[0];
    for (int v = 1; v < V; v++)
        if (logits[v] > max) max = logits[v];
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)logits[v] - max);
    return log(sum) + max - (double)logits[target];
}

/* The distinct compressing levels (g > 1) of the schedule, first iteration
 * of each (g, offset), with zeroed slot groups. Returns 0 or -1. */
static int levels_init(EvalRunResult *r, const SpiralConfig *cfg) {
    for (int t = 0; t < cfg->n_iters; t++) {
        const IterSpec *it = &cfg->schedule[t];
        if (it->g <= 1) continue;
        int seen = 0;
        for (int k = 0; k < r->n_levels; k++)
            seen |= r->levels[k].g == it->g && r->levels[k].offset == it->offset;
        if (seen) continue;
        EvalLevel *level = &r->levels[r->n_levels++];
        level->iteration = t;
        level->g = it->g;
        level->offset = it->offset;
        level->slots = calloc((size_t)it->g, sizeof *level->slots);
        if (!level->slots) return spiral_error("out of memory for the slot losses");
    }
    return 0;
}

/* Adds one target's loss and floor to a group. */
static void group_add(EvalGroup *group, double loss, double floor) {
    group->loss_sum += loss;
    group->floor_sum += floor;
    group->count++;
}

/* The run's last stored validation loss. */
static int stored_val_loss(Store *store, const char *name, double *val_loss, long long *step) {
    RunListRow *rows;
    int n;
    *val_loss = NAN;
    *step = 0;
    if (store_run_list(store, &rows, &n)) return -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].name, name)) {
            *val_loss = rows[i].val_loss;
            *step = rows[i].step;
        }
    store_run_list_free(rows, n);
    return 0;
}

/* Scores every window batch by batch, filling the loss and the groups. */
static int score_windows(EvalRunResult *r, Model *model, const EvalTargets *t, const Dataset *ds,
                         int B) {
    int L = t->L, V = model->cfg.vocab_size;
    int *inputs = malloc((size_t)B * L * sizeof *inputs);   /* (B, L) */
    int *targets = malloc((size_t)B * L * sizeof *targets); /* (B, L) */
    if (!inputs || !targets) {
        free(inputs);
        free(targets);
        return spiral_error("out of memory for the evaluation batch");
    }
    int status = 0;
    double sum = 0;
    for (size_t first = 0; first < t->n_windows && status == 0; first += (size_t)B) {
        int n = t->n_windows - first < (size_t)B ? (int)(t->n_windows - first) : B;
        for (int b = 0; b < n; b++) {
            const int *window = t->stream.tokens + t->starts[first + b];  /* (L + 1) */
            memcpy(inputs + (size_t)b * L, window, (size_t)L * sizeof *inputs);
            memcpy(targets + (size_t)b * L, window + 1, (size_t)L * sizeof *targets);
        }
        status = model_forward(model, inputs, targets, n, L, NULL);
        for (int b = 0; b < n && status == 0; b++)
            for (int i = 0; i < L; i++) {
                double nll = token_nll(model->logits + ((size_t)b * L + i) * V, V,
                                       targets[(size_t)b * L + i]);
                double floor = ds->true_nll ? ds->true_nll[eval_target_index(t, first + b, i)]
                                            : NAN;
                sum += nll;
                group_add(&r->positions[i], nll, floor);
                for (int k = 0; k < r->n_levels; k++) {
                    EvalLevel *level = &r->levels[k];
                    group_add(&level->slots[(i + level->offset) % level->g], nll, floor);
                }
            }
    }
    r->loss = sum / ((double)t->n_windows * L);
    if (status == 0 && !isfinite(r->loss))
        status = spiral_error("the loss is %f: the weights produce non-finite logits", r->loss);
    free(inputs);
    free(targets);
    return status;
}

int eval_run(EvalRunResult *r, Store *store, const char *run_name, long long max_step) {
    memset(r, 0, sizeof *r);
    RunRow run;
    if (store_run_find(store, run_name, &run)) return -1;
    char source[1400];
    snprintf(source, sizeof source, "%s: run %s", store->path, run_name);
    SpiralConfig cfg;
    TrainConfig tcfg;
    Dataset ds = {0};
    EvalTargets t = {0};
    Model model = {0};
    int status = config_parse(&cfg, run.config, source) ||
                 train_config_parse(&tcfg, run.config, source) ||
                 stored_val_loss(store, run_name, &r->stored_val_loss, &r->stored_val_step) ||
                 store_dataset_load(store, tcfg.dataset, &ds, NULL) ? -1 : 0;
    if (status == 0 && ds.vocab_size > cfg.vocab_size)
        status = spiral_error("dataset %s has vocabulary %d but run %s's model has vocab_size %d",
                              tcfg.dataset, ds.vocab_size, run_name, cfg.vocab_size);
    if (status == 0)
        status = eval_reference(&r->ref, &ds, SPLIT_VAL, tcfg.seq_len, tcfg.window,
                                (size_t)tcfg.eval_batches * tcfg.batch_size, tcfg.dataset);
    if (status == 0)
        status = eval_targets_build(&t, &ds, SPLIT_VAL, tcfg.seq_len, tcfg.window,
                                    (size_t)tcfg.eval_batches * tcfg.batch_size, tcfg.dataset);
    if (status == 0) status = run_model_load(store, &run, &cfg, max_step, &model,
                                                &r->checkpoint_step);
    /* the stored loss is the last evaluation's: no comparison for an earlier checkpoint */
    if (status == 0 && r->checkpoint_step != r->stored_val_step) r->stored_val_loss = NAN;
    if (status == 0) {
        r->L = tcfg.seq_len;
        r->positions = calloc((size_t)r->L, sizeof *r->positions);
        if (!r->positions) status = spiral_error("out of memory for the position losses");
    }
    if (status == 0) status = levels_init(r, &cfg);
    if (status == 0) status = score_windows(r, &model, &t, &ds, tcfg.batch_size);
    model_free(&model);
    eval_targets_free(&t);
    dataset_free(&ds);
    store_run_free(&run);
    if (status) eval_run_result_free(r);
    return status;
}

void eval_run_result_free(EvalRunResult *r) {
    free(r->positions);
    for (int k = 0; k < r->n_levels; k++) free(r->levels[k].slots);
    memset(r, 0, sizeof *r);
}

/* "%.4f" of the group's mean loss, floor and gap into a line. */
static void print_group(FILE *out, const char *name, const EvalGroup *g) {
    double loss = g->loss_sum / (double)g->count, floor = g->floor_sum / (double)g->count;
    fprintf(out, "  %-10s %8lld %9.4f", name, g->count, loss);
    if (isfinite(floor)) fprintf(out, " %9.4f %9.4f\n", floor, loss - floor);
    else fprintf(out, " %9s %9s\n", "-", "-");
}

void eval_run_print(FILE *out, const EvalRunResult *r, const char *run_name, int per_position) {
    const EvalReference *ref = &r->ref;
    fprintf(out, "run %s, checkpoint of step %lld: val loss %.6f nats over %zu targets "
                 "(%zu windows of %d, window \"%s\")\n",
            run_name, r->checkpoint_step, r->loss, ref->n_targets, ref->n_windows, ref->L,
            eval_window_name(ref->window));
    if (isfinite(r->stored_val_loss))
        fprintf(out, "  stored val loss %.6f (last evaluation of training)\n", r->stored_val_loss);
    if (isfinite(ref->floor))
        fprintf(out, "  entropy floor on these targets %.6f, gap to the floor %.6f nats/token\n",
                ref->floor, r->loss - ref->floor);
    else
        fprintf(out, "  entropy floor unknown (the dataset has no exact next-token loss)\n");
    fprintf(out, "  n-gram baselines on these targets (fitted on train, add-0.01): unigram %.4f, "
                 "bigram %.4f, trigram %.4f\n", ref->unigram, ref->bigram, ref->trigram);
    if (!per_position) return;
    for (int k = 0; k < r->n_levels; k++) {
        const EvalLevel *level = &r->levels[k];
        fprintf(out, "by slot rho = (i + %d) mod %d of iteration %d's chunks (i: input position)\n",
                level->offset, level->g, level->iteration);
        fprintf(out, "  %-10s %8s %9s %9s %9s\n", "slot", "targets", "loss", "floor", "gap");
        for (int s = 0; s < level->g; s++) {
            char name[32];
            snprintf(name, sizeof name, "%d", s);
            print_group(out, name, &level->slots[s]);
        }
    }
    fprintf(out, "by target position j (input position; predicts window token j + 1%s)\n",
            ref->window == WINDOW_DOCUMENT ? ", document position j + 1" : "");
    fprintf(out, "  %-10s %8s %9s %9s %9s\n", "position", "targets", "loss", "floor", "gap");
    for (int j = 0; j < r->L; j++) {
        char name[32];
        snprintf(name, sizeof name, "%d", j);
        print_group(out, name, &r->positions[j]);
    }
}
