/*
 * sweep_plan.c: from a sweep file and the store to the list of `spiral`
 * commands still to run (sweep.h has the file format).
 *
 * What the store already has is left out: a dataset that exists, a run
 * whose status is "done". A run the store has in any other state (created,
 * running, interrupted, failed) is resumed with `spiral train --resume`.
 * Recording, probes, analysis and the report are always listed: those
 * commands themselves skip what is done.
 */
#include "sweep.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <jansson.h>

#include "error.h"
#include "matched_runs.h"
#include "names.h"
#include "store.h"

/* A growing list of strings (the sweep's run names). */
typedef struct {
    char **items;
    int n, capacity;
} NameList;

/* Appends a copy of name. */
static int names_add(NameList *list, const char *name) {
    if (list->n == list->capacity) {
        int capacity = list->capacity ? 2 * list->capacity : 16;
        char **grown = realloc(list->items, (size_t)capacity * sizeof *grown);
        if (!grown) return spiral_error("out of memory listing the sweep's runs");
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->n] = strdup(name);
    if (!list->items[list->n]) return spiral_error("out of memory listing the sweep's runs");
    list->n++;
    return 0;
}

static void names_free(NameList *list) {
    for (int i = 0; i < list->n; i++) free(list->items[i]);
    free(list->items);
    memset(list, 0, sizeof *list);
}

/* "a,b,c": the strings of items[0..n) (or of a JSON array of strings when
 * array is not NULL) joined by commas, malloc'd. */
static char *join_commas(char *const *items, int n, const json_t *array) {
    size_t size = 1;
    int count = array ? (int)json_array_size(array) : n;
    for (int i = 0; i < count; i++) {
        const char *s = array ? json_string_value(json_array_get(array, (size_t)i)) : items[i];
        if (s) size += strlen(s) + 1;
    }
    char *out = malloc(size);
    if (!out) {
        spiral_error("out of memory joining names");
        return NULL;
    }
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < count; i++) {
        const char *s = array ? json_string_value(json_array_get(array, (size_t)i)) : items[i];
        if (s) used += (size_t)snprintf(out + used, size - used, "%s%s", used ? "," : "", s);
    }
    return out;
}

/* Starts a new command of the plan, with no arguments yet (label
 * printf-style); NULL when out of memory. */
static SweepCommand *command_new(SweepPlan *plan, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static SweepCommand *command_new(SweepPlan *plan, const char *fmt, ...) {
    if (plan->n_commands == plan->capacity) {
        int capacity = plan->capacity ? 2 * plan->capacity : 32;
        SweepCommand *grown = realloc(plan->commands, (size_t)capacity * sizeof *grown);
        if (!grown) {
            spiral_error("out of memory planning the sweep");
            return NULL;
        }
        plan->commands = grown;
        plan->capacity = capacity;
    }
    SweepCommand *c = &plan->commands[plan->n_commands++];
    memset(c, 0, sizeof *c);
    char label[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(label, sizeof label, fmt, ap);
    va_end(ap);
    c->label = strdup(label);
    c->argv = calloc(1, sizeof *c->argv);
    if (!c->label || !c->argv) {
        spiral_error("out of memory planning the sweep");
        return NULL;
    }
    return c;
}

/* Appends arguments (copies) to a command: the n strings of args. */
static int command_args(SweepCommand *c, const char *const *args, int n) {
    char **grown = realloc(c->argv, (size_t)(c->argc + n + 1) * sizeof *grown);
    if (!grown) return spiral_error("out of memory planning the sweep");
    c->argv = grown;
    for (int i = 0; i < n; i++) {
        c->argv[c->argc] = strdup(args[i]);
        if (!c->argv[c->argc]) return spiral_error("out of memory planning the sweep");
        c->argv[++c->argc] = NULL;
    }
    return 0;
}

/* Appends "OPTION VALUE" when value is not NULL. */
static int command_option(SweepCommand *c, const char *option, const char *value) {
    if (!value) return 0;
    const char *args[] = {option, value};
    return command_args(c, args, 2);
}

/* A new command with its arguments: argv = spiral_path, args[0..n). */
static SweepCommand *command_with(SweepPlan *plan, const char *spiral_path, const char *label,
                                  const char *const *args, int n) {
    SweepCommand *c = command_new(plan, "%s", label);
    if (!c || command_args(c, &spiral_path, 1) || command_args(c, args, n)) return NULL;
    return c;
}

/* Writes DIR/NAME.json: the run file with train.seed replaced. */
static int write_seeded_run(const char *dir, const char *name, const char *config_path, long seed,
                            char *out_path, size_t size) {
    json_error_t error;
    json_t *root = json_load_file(config_path, JSON_REJECT_DUPLICATES, &error);
    if (!root) return spiral_error("%s: line %d: %s", config_path, error.line, error.text);
    json_t *train = json_object_get(root, "train");
    if (!json_is_object(train)) {
        json_decref(root);
        return spiral_error("%s: expected a run file with a \"train\" object", config_path);
    }
    json_object_set_new(train, "seed", json_integer(seed));
    snprintf(out_path, size, "%s/%s.json", dir, name);
    int status = json_dump_file(root, out_path, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return status ? spiral_error("%s: cannot write", out_path) : 0;
}

/* Stage 1: `spiral data make` for each dataset the store does not have.
 * *first gets the first dataset's name (the one runs are recorded on). */
static int plan_datasets(SweepPlan *plan, const json_t *datasets, Store *store,
                         const SweepOptions *options, const char *sweep_path,
                         const char **first) {
    size_t i;
    json_t *item;
    *first = NULL;
    json_array_foreach(datasets, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        const char *family = json_string_value(json_object_get(item, "family"));
        if (!name || !family)
            return spiral_error("%s: datasets[%zu]: needs \"name\" and \"family\"", sweep_path, i);
        if (name_check("dataset", name))
            return spiral_error_prefix("%s: datasets[%zu]", sweep_path, i);
        if (!*first) *first = name;
        int exists = 0;
        if (store && store_dataset_exists(store, name, &exists)) return -1;
        if (exists) continue;
        char label[300], seed[32];
        snprintf(label, sizeof label, "dataset %s", name);
        snprintf(seed, sizeof seed, "%lld", (long long)json_integer_value(json_object_get(item, "seed")));
        const char *args[] = {"data", "make", "--store", options->store_path, "--name", name,
                              "--family", family, "--seed", seed};
        SweepCommand *c = command_with(plan, options->spiral_path, label, args, 10);
        if (!c) return -1;
        json_t *params = json_object_get(item, "params");
        if (params) {
            char *text = json_dumps(params, JSON_COMPACT);
            int status = text ? command_option(c, "--params", text)
                              : spiral_error("out of memory writing %s's params", name);
            free(text);
            if (status) return -1;
        }
        if (command_option(c, "--text", json_string_value(json_object_get(item, "text"))))
            return -1;
    }
    return 0;
}

/* The config path of the run item named `name` (for "match_flops"), or NULL. */
static const char *run_item_config(const json_t *runs, const char *name) {
    size_t i;
    json_t *item;
    json_array_foreach(runs, i, item) {
        const char *other = json_string_value(json_object_get(item, "name"));
        if (other && !strcmp(other, name)) return json_string_value(json_object_get(item, "config"));
    }
    return NULL;
}

/* Stage 2: runs x seeds. A run the store does not have is trained from its
 * seeded run file (with "match_flops": its steps rescaled to that run's
 * training FLOPs); one that is not done is resumed. Every run's name goes
 * to names (done or not). device, precision: "--device" and "--precision"
 * of every train command, or NULL. */
static int plan_runs(SweepPlan *plan, const json_t *runs, Store *store,
                     const SweepOptions *options, const char *sweep_path, const char *run_dir,
                     NameList *names, NameList *datasets, const char *first_dataset,
                     const char *device, const char *precision) {
    size_t i;
    json_t *item;
    json_array_foreach(runs, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        const char *config = json_string_value(json_object_get(item, "config"));
        json_t *seeds = json_object_get(item, "seeds");
        if (!name || !config)
            return spiral_error("%s: runs[%zu]: needs \"name\" and \"config\"", sweep_path, i);
        /* the dataset the run trains on: where it is recorded and probed */
        json_t *run_file = json_load_file(config, 0, NULL);
        const char *trained_on = json_string_value(
            json_object_get(json_object_get(run_file, "train"), "dataset"));
        char dataset[256];
        snprintf(dataset, sizeof dataset, "%s", trained_on ? trained_on : first_dataset);
        json_decref(run_file);
        const json_t *match = json_object_get(item, "match_flops");
        const char *match_config = NULL;
        if (match) {
            const char *target = json_string_value(match);
            match_config = target ? run_item_config(runs, target) : NULL;
            if (!match_config)
                return spiral_error("%s: runs[%zu].match_flops: expected the name of another run of the sweep",
                                    sweep_path, i);
        }
        size_t n_seeds = json_is_array(seeds) ? json_array_size(seeds) : 1;
        for (size_t s = 0; s < n_seeds; s++) {
            long seed = json_is_array(seeds) ? (long)json_integer_value(json_array_get(seeds, s)) : 0;
            char run_name[256], label[300], path[1600], status[32];
            if (json_is_array(seeds)) snprintf(run_name, sizeof run_name, "%s-s%ld", name, seed);
            else snprintf(run_name, sizeof run_name, "%.200s", name);
            if (name_check("run", run_name))
                return spiral_error_prefix("%s: runs[%zu]", sweep_path, i);
            status[0] = 0;
            if (names_add(names, run_name) || names_add(datasets, dataset) ||
                (store && store_run_status(store, run_name, status, sizeof status)))
                return -1;
            if (!strcmp(status, "done")) continue;
            snprintf(label, sizeof label, "run %s", run_name);
            if (status[0]) { /* created, running, interrupted or failed: resume */
                const char *args[] = {"train", "--resume", run_name, "--store",
                                      options->store_path, "--quiet"};
                SweepCommand *c = command_with(plan, options->spiral_path, label, args, 6);
                if (!c || command_option(c, "--device", device) ||
                    command_option(c, "--precision", precision))
                    return -1;
            } else {
                long steps;
                double mismatch;
                if (options->dry_run) snprintf(path, sizeof path, "%s/%s.json", run_dir, run_name);
                else if (write_seeded_run(run_dir, run_name, config, seed, path, sizeof path) ||
                         (match_config && matched_rewrite_equal_flops(path, match_config, &steps, &mismatch)))
                    return spiral_error_prefix("%s: runs[%zu]", sweep_path, i);
                const char *args[] = {"train", "--config", path, "--store", options->store_path,
                                      "--name", run_name, "--quiet"};
                SweepCommand *c = command_with(plan, options->spiral_path, label, args, 8);
                if (!c || command_option(c, "--device", device) ||
                    command_option(c, "--precision", precision))
                    return -1;
            }
        }
    }
    return 0;
}

/* The dataset run r is recorded, probed and analyzed on: record.data if
 * the sweep names one, else the dataset the run trains on. */
static const char *run_dataset(const json_t *record, const NameList *datasets, int r) {
    const char *given = json_string_value(json_object_get(record, "data"));
    return given ? given : datasets->items[r];
}

/* Stage 3: `spiral record` of every run (on run_dataset). */
static int plan_record(SweepPlan *plan, const json_t *record, const NameList *names,
                       const NameList *datasets, const SweepOptions *options) {
    const char *split = json_string_value(json_object_get(record, "split"));
    json_t *sequences = json_object_get(record, "sequences");
    for (int r = 0; r < names->n; r++) {
        char label[300];
        snprintf(label, sizeof label, "record %s", names->items[r]);
        const char *args[] = {"record", "--run", names->items[r], "--data",
                              run_dataset(record, datasets, r),
                              "--store", options->store_path, "--quiet"};
        SweepCommand *c = command_with(plan, options->spiral_path, label, args, 8);
        if (!c || command_option(c, "--split", split)) return -1;
        if (json_is_integer(sequences)) {
            char text[32];
            snprintf(text, sizeof text, "%lld", (long long)json_integer_value(sequences));
            if (command_option(c, "--sequences", text)) return -1;
        }
    }
    return 0;
}

/* Stage 4: probes per run, then one analysis per dataset over the runs
 * recorded on it (both need a recording), then the report. */
static int plan_finish(SweepPlan *plan, const json_t *sweep, const NameList *names,
                       const NameList *datasets, const SweepOptions *options) {
    const json_t *record = json_object_get(sweep, "record");
    const char *split = json_string_value(json_object_get(record, "split"));
    const json_t *probe = json_object_get(sweep, "probe");
    if (probe && record) {
        char *labels = join_commas(NULL, 0, json_object_get(probe, "labels"));
        if (!labels) return -1;
        for (int r = 0; r < names->n; r++) {
            char label[300];
            snprintf(label, sizeof label, "probe %s", names->items[r]);
            const char *args[] = {"probe", "--run", names->items[r], "--data",
                                  run_dataset(record, datasets, r),
                                  "--store", options->store_path, "--label", labels, "--quiet"};
            SweepCommand *c = command_with(plan, options->spiral_path, label, args, 10);
            if (!c || command_option(c, "--split", split)) {
                free(labels);
                return -1;
            }
        }
        free(labels);
    }
    for (int r = 0; json_object_get(sweep, "analyze") && record && r < names->n; r++) {
        const char *dataset = run_dataset(record, datasets, r);
        int first = 1;
        for (int q = 0; q < r && first; q++) first = strcmp(run_dataset(record, datasets, q), dataset) != 0;
        if (!first) continue;  /* analyzed with the first run on its dataset */
        NameList on = {0};
        for (int q = r; q < names->n; q++)
            if (!strcmp(run_dataset(record, datasets, q), dataset) && names_add(&on, names->items[q])) {
                names_free(&on);
                return -1;
            }
        char *runs = join_commas(on.items, on.n, NULL);
        names_free(&on);
        if (!runs) return -1;
        char label[300];
        snprintf(label, sizeof label, "analyze %s", dataset);
        const char *args[] = {"analyze", "--run", runs, "--data", dataset, "--store",
                              options->store_path};
        SweepCommand *c = command_with(plan, options->spiral_path, label, args, 7);
        free(runs);
        if (!c || command_option(c, "--split", split)) return -1;
    }
    const json_t *report = json_object_get(sweep, "report");
    if (report) {
        const char *out = json_string_value(json_object_get(report, "out"));
        char default_out[1300];
        snprintf(default_out, sizeof default_out, "%s.report", options->store_path);
        const char *args[] = {"report", "--store", options->store_path, "--out",
                              out ? out : default_out};
        SweepCommand *c = command_with(plan, options->spiral_path, "report", args, 5);
        if (!c ||
            command_option(c, "--probe-sites", json_string_value(json_object_get(report, "probe_sites"))) ||
            command_option(c, "--probe-iterations",
                           json_string_value(json_object_get(report, "probe_iterations"))))
            return -1;
    }
    return 0;
}

void sweep_plan_free(SweepPlan *plan) {
    for (int i = 0; i < plan->n_commands; i++) {
        SweepCommand *c = &plan->commands[i];
        for (int a = 0; a < c->argc; a++) free(c->argv[a]);
        free(c->argv);
        free(c->label);
    }
    free(plan->commands);
    memset(plan, 0, sizeof *plan);
}

int sweep_plan(SweepPlan *plan, const char *sweep_path, const SweepOptions *options) {
    memset(plan, 0, sizeof *plan);
    json_error_t error;
    json_t *sweep = json_load_file(sweep_path, JSON_REJECT_DUPLICATES, &error);
    if (!sweep)
        return spiral_error("%s: line %d, column %d: %s", sweep_path, error.line, error.column,
                            error.text);
    json_t *datasets = json_object_get(sweep, "datasets"), *runs = json_object_get(sweep, "runs");
    if (!json_is_array(datasets) || !json_is_array(runs) || json_array_size(datasets) == 0) {
        json_decref(sweep);
        return spiral_error("%s: expected \"datasets\" and \"runs\" arrays (datasets not empty)",
                            sweep_path);
    }
    /* a dry run reads the store if it exists and writes nothing */
    Store opened, *store = &opened;
    int failed = 0;
    if (!options->dry_run) failed = store_open(&opened, options->store_path, 1);
    else if (access(options->store_path, F_OK) == 0) failed = store_open_readonly(&opened, options->store_path);
    else store = NULL;
    if (failed) {
        json_decref(sweep);
        return -1;
    }
    char run_dir[1200];
    snprintf(run_dir, sizeof run_dir, "%s.sweep", options->store_path);
    if (!options->dry_run) mkdir(run_dir, 0777);

    NameList names = {0}, run_datasets = {0};
    const char *first_dataset;
    const json_t *record = json_object_get(sweep, "record");
    int status = plan_datasets(plan, datasets, store, options, sweep_path, &first_dataset);
    plan->stage_start[SWEEP_RUNS] = plan->n_commands;
    if (!status)
        status = plan_runs(plan, runs, store, options, sweep_path, run_dir, &names,
                           &run_datasets, first_dataset, json_string_value(json_object_get(sweep, "device")),
                           json_string_value(json_object_get(sweep, "precision")));
    plan->stage_start[SWEEP_RECORD] = plan->n_commands;
    if (!status && record) status = plan_record(plan, record, &names, &run_datasets, options);
    plan->stage_start[SWEEP_FINISH] = plan->n_commands;
    if (!status) status = plan_finish(plan, sweep, &names, &run_datasets, options);
    plan->stage_start[SWEEP_STAGE_COUNT] = plan->n_commands;
    names_free(&names);
    names_free(&run_datasets);
    if (store) store_close(store);
    json_decref(sweep);
    if (status) sweep_plan_free(plan);
    return status;
}
