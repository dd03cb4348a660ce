/*
 * cmd_sweep.c: `spiral sweep`: a whole study from one JSON file.
 *
 * A sweep file lists datasets, runs (each a run file and a list of seeds),
 * and what to do with the trained runs (record, probe, analyze, report):
 *
 *   {"datasets": [{"name": "pcfg", "family": "pcfg", "seed": 1, "params": {...}}],
 *    "runs": [{"name": "spiral", "config": "examples/demo/spiral.json", "seeds": [1, 2]}],
 *    "record": {"split": "test", "sequences": 100},
 *    "probe": {"labels": ["l2.symbol", "l3.symbol"]},
 *    "analyze": {},
 *    "report": {"out": "build/study/report"}}
 *
 * Each step runs this same binary as a child process (`spiral data make`,
 * `spiral train`, ...), so a sweep does exactly what the commands would do
 * by hand and every run records its own command line. Steps whose result the
 * store already has are skipped (a dataset that exists, a run that is done,
 * a recording that is done); an interrupted run is resumed. So an
 * interrupted sweep, started again, continues where it stopped. With -j N,
 * up to N independent runs train (and record) at once as separate
 * processes; each then uses one BLAS thread so the cores are not
 * oversubscribed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "error.h"
#include "store.h"

static const char *help =
    "usage: spiral sweep SWEEP.json --store S.db [-j N] [--dry-run]\n"
    "\n"
    "Runs a whole study: makes the datasets, trains every run with every seed\n"
    "(run name NAME-sSEED; the seed replaces train.seed), records each trained\n"
    "run on the first dataset's split, fits probes, analyzes and writes the\n"
    "report, as the sweep file says (format in the header of cli/cmd_sweep.c and\n"
    "in README \"Sweeps\"). What the store already has is skipped, so an\n"
    "interrupted sweep resumes. -j N trains N runs at once (separate\n"
    "processes, one BLAS thread each). --dry-run prints the commands only.\n";

/* One command to run: argv (NULL-terminated) and a label for messages. */
typedef struct {
    char *argv[32];
    int argc;
    char label[512];
} Command;

static void command_add(Command *c, const char *arg) {
    if (c->argc < 31) c->argv[c->argc++] = strdup(arg);
    c->argv[c->argc] = NULL;
}

static void command_free(Command *c) {
    for (int i = 0; i < c->argc; i++) free(c->argv[i]);
    c->argc = 0;
}

static void command_print(const Command *c) {
    for (int i = 0; i < c->argc; i++) printf("%s%s", i ? " " : "", c->argv[i]);
    printf("\n");
    fflush(stdout);
}

/* Starts a command as a child process; one thread (SPIRAL_THREADS=1) when
 * several run at once. */
static pid_t command_start(const Command *c, int single_thread) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (single_thread) setenv("SPIRAL_THREADS", "1", 1);
        execv(c->argv[0], c->argv);
        fprintf(stderr, "spiral sweep: cannot run %s: %s\n", c->argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Runs commands with at most `jobs` at a time; stops starting new ones after
 * a failure. Returns 0 if all succeeded. */
static int run_commands(Command *commands, int n, int jobs, int dry_run) {
    int next = 0, running = 0, failed = 0;
    pid_t pids[64];
    int which[64];
    if (jobs > 64) jobs = 64;
    while (next < n || running > 0) {
        while (!failed && next < n && running < jobs) {
            printf("sweep: %s\n  ", commands[next].label);
            command_print(&commands[next]);
            if (dry_run) {
                next++;
                continue;
            }
            pid_t pid = command_start(&commands[next], jobs > 1);
            if (pid < 0) {
                fprintf(stderr, "spiral sweep: fork failed: %s\n", strerror(errno));
                failed = 1;
                break;
            }
            pids[running] = pid;
            which[running] = next++;
            running++;
        }
        if (running == 0) break;
        int status;
        pid_t done = wait(&status);
        for (int i = 0; i < running; i++) {
            if (pids[i] != done) continue;
            int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            if (!ok) {
                fprintf(stderr, "spiral sweep: step failed (%s, exit %d): %s\n",
                        commands[which[i]].label, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                        commands[which[i]].argv[1]);
                failed = 1;
            }
            pids[i] = pids[running - 1];
            which[i] = which[running - 1];
            running--;
            break;
        }
    }
    return failed ? -1 : 0;
}

/* One text value of a one-row SQL query, or "" (static buffer). */
static const char *query_text(Store *store, const char *sql, const char *arg) {
    static char value[256];
    sqlite3_stmt *stmt;
    value[0] = 0;
    if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK) return value;
    sqlite3_bind_text(stmt, 1, arg, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
        snprintf(value, sizeof value, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return value;
}

/* Writes DIR/NAME.json: the run file with train.seed replaced. */
static int write_seeded_run(const char *dir, const char *name, const char *config_path, long seed,
                            char *out_path, size_t size) {
    json_error_t error;
    json_t *root = json_load_file(config_path, JSON_REJECT_DUPLICATES, &error);
    if (!root)
        return spiral_error("%s: line %d: %s", config_path, error.line, error.text);
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

/* "a,b,c" from a JSON array of strings. */
static void join_strings(char *out, size_t size, const json_t *array) {
    size_t used = 0;
    size_t i;
    json_t *v;
    out[0] = 0;
    json_array_foreach(array, i, v)
        if (json_is_string(v) && used < size)
            used += (size_t)snprintf(out + used, size - used, "%s%s", used ? "," : "",
                                     json_string_value(v));
}

int cmd_sweep(int argc, char **argv) {
    const char *sweep_path = NULL, *store_path = NULL, *jobs_text = "1";
    int dry_run = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--store", &store_path, NULL},
        {"-j", &jobs_text, NULL},
        {"--dry-run", NULL, &dry_run},
    };
    if (cli_parse_options("sweep", argc, argv, table, (int)(sizeof table / sizeof table[0]),
                          &sweep_path))
        return 2;
    if (!sweep_path || !store_path) return cli_usage_error("sweep", "a sweep file and --store are required");
    long jobs;
    if (cli_parse_long("-j", jobs_text, 1, 64, &jobs)) return 2;

    json_error_t error;
    json_t *sweep = json_load_file(sweep_path, JSON_REJECT_DUPLICATES, &error);
    if (!sweep) {
        fprintf(stderr, "spiral sweep: %s: line %d, column %d: %s\n", sweep_path, error.line,
                error.column, error.text);
        return 1;
    }
    json_t *datasets = json_object_get(sweep, "datasets"), *runs = json_object_get(sweep, "runs");
    if (!json_is_array(datasets) || !json_is_array(runs) || json_array_size(datasets) == 0) {
        fprintf(stderr, "spiral sweep: %s: expected \"datasets\" and \"runs\" arrays (datasets not empty)\n",
                sweep_path);
        json_decref(sweep);
        return 1;
    }
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) snprintf(self, sizeof self, "%s", argv[-1] ? argv[-1] : "spiral");
    else self[len] = 0;
    Store store;
    if (store_open(&store, store_path, 1)) {
        json_decref(sweep);
        return cli_fail("sweep");
    }
    char run_dir[1200];
    snprintf(run_dir, sizeof run_dir, "%s.sweep", store_path);
    mkdir(run_dir, 0777);

    int status = 0;
    Command commands[256];
    int n = 0;
    size_t i;
    json_t *item;
    const char *first_dataset = NULL;
    /* 1. datasets */
    json_array_foreach(datasets, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        const char *family = json_string_value(json_object_get(item, "family"));
        if (!name || !family) {
            fprintf(stderr, "spiral sweep: %s: datasets[%zu]: needs \"name\" and \"family\"\n", sweep_path, i);
            status = 1;
            goto done;
        }
        if (!first_dataset) first_dataset = name;
        if (query_text(&store, "SELECT 1 FROM datasets WHERE name = ?", name)[0]) continue;
        Command *c = &commands[n++];
        memset(c, 0, sizeof *c);
        snprintf(c->label, sizeof c->label, "dataset %s", name);
        const char *args[] = {self, "data", "make", "--store", store_path, "--name", name, "--family", family};
        for (size_t a = 0; a < sizeof args / sizeof *args; a++) command_add(c, args[a]);
        char seed[32];
        snprintf(seed, sizeof seed, "%lld", (long long)json_integer_value(json_object_get(item, "seed")));
        command_add(c, "--seed");
        command_add(c, seed);
        json_t *params = json_object_get(item, "params");
        if (params) {
            char *text = json_dumps(params, JSON_COMPACT);
            command_add(c, "--params");
            command_add(c, text);
            free(text);
        }
        const char *text_path = json_string_value(json_object_get(item, "text"));
        if (text_path) {
            command_add(c, "--text");
            command_add(c, text_path);
        }
    }
    status = run_commands(commands, n, 1, dry_run);
    for (int k = 0; k < n; k++) command_free(&commands[k]);
    n = 0;
    if (status) goto done;

    /* 2. runs x seeds: train new runs, resume unfinished ones; -j N at once */
    char run_names[4096] = "";
    json_t *record = json_object_get(sweep, "record");
    json_array_foreach(runs, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        const char *config = json_string_value(json_object_get(item, "config"));
        json_t *seeds = json_object_get(item, "seeds");
        if (!name || !config) {
            fprintf(stderr, "spiral sweep: %s: runs[%zu]: needs \"name\" and \"config\"\n", sweep_path, i);
            status = 1;
            goto done;
        }
        size_t n_seeds = json_is_array(seeds) ? json_array_size(seeds) : 1;
        for (size_t s = 0; s < n_seeds && n < 250; s++) {
            long seed = json_is_array(seeds) ? (long)json_integer_value(json_array_get(seeds, s)) : 0;
            char run_name[256], path[1600];
            if (json_is_array(seeds)) snprintf(run_name, sizeof run_name, "%s-s%ld", name, seed);
            else snprintf(run_name, sizeof run_name, "%s", name);
            size_t used = strlen(run_names);
            snprintf(run_names + used, sizeof run_names - used, "%s%s", used ? "," : "", run_name);
            const char *run_status = query_text(&store, "SELECT status FROM runs WHERE name = ?", run_name);
            if (!strcmp(run_status, "done")) continue;
            Command *c = &commands[n++];
            memset(c, 0, sizeof *c);
            snprintf(c->label, sizeof c->label, "run %s", run_name);
            if (run_status[0]) { /* created, running, interrupted or failed: resume */
                const char *args[] = {self, "train", "--resume", run_name, "--store", store_path, "--quiet"};
                for (size_t a = 0; a < sizeof args / sizeof *args; a++) command_add(c, args[a]);
            } else {
                if (write_seeded_run(run_dir, run_name, config, seed, path, sizeof path)) {
                    fprintf(stderr, "spiral sweep: %s\n", spiral_last_error());
                    status = 1;
                    goto done;
                }
                const char *args[] = {self, "train", "--config", path, "--store", store_path,
                                      "--name", run_name, "--quiet"};
                for (size_t a = 0; a < sizeof args / sizeof *args; a++) command_add(c, args[a]);
            }
        }
    }
    status = run_commands(commands, n, (int)jobs, dry_run);
    for (int k = 0; k < n; k++) command_free(&commands[k]);
    n = 0;
    if (status) goto done;

    /* 3. record every run (`spiral record` itself skips recorded sequences) */
    if (record) {
        const char *split = json_string_value(json_object_get(record, "split"));
        json_t *sequences = json_object_get(record, "sequences");
        char names[4096];
        snprintf(names, sizeof names, "%s", run_names);
        for (char *run = strtok(names, ","); run && n < 250; run = strtok(NULL, ",")) {
            Command *c = &commands[n++];
            memset(c, 0, sizeof *c);
            snprintf(c->label, sizeof c->label, "record %s", run);
            const char *args[] = {self, "record", "--run", run, "--data", first_dataset, "--store",
                                  store_path, "--quiet"};
            for (size_t a = 0; a < sizeof args / sizeof *args; a++) command_add(c, args[a]);
            if (split) { command_add(c, "--split"); command_add(c, split); }
            if (json_is_integer(sequences)) {
                char text[32];
                snprintf(text, sizeof text, "%lld", (long long)json_integer_value(sequences));
                command_add(c, "--sequences");
                command_add(c, text);
            }
        }
        status = run_commands(commands, n, (int)jobs, dry_run);
        for (int k = 0; k < n; k++) command_free(&commands[k]);
        n = 0;
        if (status) goto done;
    }

    /* 4. probes, analysis, report: one command each over all runs */
    json_t *probe = json_object_get(sweep, "probe");
    if (probe && record) {
        char labels[2048];
        join_strings(labels, sizeof labels, json_object_get(probe, "labels"));
        char names[4096];
        snprintf(names, sizeof names, "%s", run_names);
        for (char *run = strtok(names, ","); run && n < 250; run = strtok(NULL, ",")) {
            Command *c = &commands[n++];
            memset(c, 0, sizeof *c);
            snprintf(c->label, sizeof c->label, "probe %s", run);
            const char *args[] = {self, "probe", "--run", run, "--data", first_dataset, "--store",
                                  store_path, "--label", labels, "--quiet"};
            for (size_t a = 0; a < sizeof args / sizeof *args; a++) command_add(c, args[a]);
            const char *split = json_string_value(json_object_get(record, "split"));
            if (split) { command_add(c, "--split"); command_add(c, split); }
        }
    }
    json_t *analyze = json_object_get(sweep, "analyze");
    if (analyze && record) {
        Command *c = &commands[n++];
        memset(c, 0, sizeof *c);
        snprintf(c->label, sizeof c->label, "analyze");
        const char *args[] = {self, "analyze", "--run", run_names, "--data", first_dataset,
                              "--store", store_path};
        for (size_t a = 0; a < sizeof args / sizeof *args; a++) command_add(c, args[a]);
        const char *split = json_string_value(json_object_get(record, "split"));
        if (split) { command_add(c, "--split"); command_add(c, split); }
    }
    json_t *report = json_object_get(sweep, "report");
    if (report) {
        const char *out = json_string_value(json_object_get(report, "out"));
        char default_out[1300];
        snprintf(default_out, sizeof default_out, "%s.report", store_path);
        Command *c = &commands[n++];
        memset(c, 0, sizeof *c);
        snprintf(c->label, sizeof c->label, "report");
        const char *args[] = {self, "report", "--store", store_path, "--out", out ? out : default_out};
        for (size_t a = 0; a < sizeof args / sizeof *args; a++) command_add(c, args[a]);
    }
    status = run_commands(commands, n, 1, dry_run);
    for (int k = 0; k < n; k++) command_free(&commands[k]);
    n = 0;
    if (status == 0) printf("sweep: done (%s)\n", store_path);
done:
    for (int k = 0; k < n; k++) command_free(&commands[k]);
    store_close(&store);
    json_decref(sweep);
    return status ? 1 : 0;
}
