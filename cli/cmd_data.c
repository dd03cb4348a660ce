/*
 * cmd_data.c: `spiral data make | list | show`: datasets in the store.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "dataset_family.h"
#include "error.h"
#include "eval_run.h"
#include "eval_targets.h"
#include "ngram.h"
#include "store.h"

static const char *help =
    "usage: spiral data make --store S.db --name NAME --family FAMILY [--seed N]\n"
    "                        [--params JSON] [--text FILE] [TARGETS]\n"
    "       spiral data list --store S.db\n"
    "       spiral data show --store S.db --name NAME [--doc D] [--max-tokens N]\n"
    "                        [--labels a,b,...]\n"
    "       spiral data floor --store S.db (--name NAME TARGETS | --run RUN)\n"
    "TARGETS: --seq-len L [--window document|random] [--windows N]\n"
    "\n"
    "make: generates a dataset (tokens, documents, train/val/test splits by\n"
    "document, gold labels) and saves it in the store. FAMILY is one of\n"
    "  pcfg   layered probabilistic context-free grammar (exact entropy floor)\n"
    "  dyck   bounded Dyck-(k, m) with deeper/longer held-out strings\n"
    "  rhm    Random Hierarchy Model (branching b over L levels)\n"
    "  text   any text file (--text FILE), byte-level\n"
    "  kjv    the King James Bible (Debian packages bible-kjv, bible-kjv-text)\n"
    "--params is a JSON object of the family's parameters (README \"Data\");\n"
    "the resolved parameters are stored with the dataset. make prints the\n"
    "splits, the true next-token entropy (where the process is known) and\n"
    "the unigram and bigram losses, so the room left for hierarchy is a number.\n"
    "list: the datasets of the store. show: one document with its labels.\n"
    "\n"
    "floor (and make with --seq-len): the entropy floor and the n-gram\n"
    "baselines over exactly the targets a validation loss is measured on: N\n"
    "windows (default 64 = 8 eval batches x 8) of L + 1 tokens of the val split,\n"
    "spread evenly, at document starts with --window document (the default\n"
    "random: anywhere). --run RUN takes L, the window and N (eval_batches x\n"
    "batch_size) from the run's train object, so the numbers are the ones its\n"
    "validation loss is read against.\n";

/* Prints the per-split sizes and the entropy/n-gram reference numbers. */
static void print_summary(const Dataset *ds) {
    printf("family %s, vocab %d, %zu tokens in %zu documents, %d labels\n", ds->family,
           ds->vocab_size, ds->n_tokens, ds->n_docs, ds->n_labels);
    for (int s = 0; s < SPLIT_COUNT; s++) {
        size_t docs = 0;
        for (size_t d = 0; d < ds->n_docs; d++) docs += ds->doc_split[d] == s;
        if (docs == 0) continue;
        size_t count;
        double floor = dataset_true_nll_mean(ds, s, &count);
        printf("  %-8s %9zu tokens %7zu docs", dataset_split_name(s), dataset_split_tokens(ds, s),
               docs);
        if (count) printf("   true next-token entropy %.4f nats/token (every token)", floor);
        printf("\n");
    }
    if (dataset_split_tokens(ds, SPLIT_TRAIN) && dataset_split_tokens(ds, SPLIT_VAL)) {
        printf("  val loss of n-gram baselines (trained on train, add-0.01): unigram %.4f, "
               "bigram %.4f, trigram %.4f nats/token\n",
               ngram_loss(ds, 1, SPLIT_TRAIN, SPLIT_VAL, 0.01),
               ngram_loss(ds, 2, SPLIT_TRAIN, SPLIT_VAL, 0.01),
               ngram_loss(ds, 3, SPLIT_TRAIN, SPLIT_VAL, 0.01));
    }
    printf("  labels:");
    for (int l = 0; l < ds->n_labels; l++)
        printf(" %s(%d)", ds->labels[l].name, ds->labels[l].n_classes);
    printf("\n");
}

/* Prints the floor and baselines over the validation targets of ref. */
static void print_reference(const EvalReference *ref) {
    printf("  on the validation targets (%zu windows of %d + 1 tokens, window \"%s\", %zu "
           "targets):\n", ref->n_windows, ref->L, eval_window_name(ref->window), ref->n_targets);
    if (isfinite(ref->floor)) printf("    entropy floor %.4f nats/token\n", ref->floor);
    else printf("    entropy floor unknown (the process is not known exactly)\n");
    printf("    n-gram baselines (trained on train, add-0.01): unigram %.4f, bigram %.4f, "
           "trigram %.4f nats/token\n", ref->unigram, ref->bigram, ref->trigram);
}

/* The validation targets a make or floor reports on. */
typedef struct {
    int given;           /* --seq-len was given */
    int L, window;
    size_t n_windows;
} TargetsOption;

/* Prints the floor and baselines of dataset ds over targets. */
static int print_targets(const Dataset *ds, const char *name, const TargetsOption *targets) {
    EvalReference ref;
    if (eval_reference(&ref, ds, SPLIT_VAL, targets->L, targets->window, targets->n_windows,
                       name))
        return -1;
    print_reference(&ref);
    return 0;
}

/* spiral data floor: the reference of a run or of a dataset and targets. */
static int data_floor(Store *store, const char *name, const char *run_name,
                      const TargetsOption *targets) {
    if (run_name) {
        RunRow run;
        if (store_run_find(store, run_name, &run)) return -1;
        EvalReference ref;
        int status = eval_run_reference(&ref, store, run.config, run_name);
        if (status == 0) {
            printf("run %s\n", run_name);
            print_reference(&ref);
        }
        store_run_free(&run);
        return status;
    }
    Dataset ds;
    if (store_dataset_load(store, name, &ds, NULL)) return -1;
    printf("dataset %s\n", name);
    int status = print_targets(&ds, name, targets);
    dataset_free(&ds);
    return status;
}

static int data_make(Store *store, const char *name, const char *family, const char *params,
                     unsigned long seed, const char *text_path, const TargetsOption *targets) {
    Dataset ds;
    if (dataset_make(&ds, family, params, seed, text_path)) return -1;
    int status = store_dataset_save(store, name, &ds, seed, NULL);
    if (status == 0) {
        printf("dataset %s saved in %s\n", name, store->path);
        print_summary(&ds);
        if (targets->given) status = print_targets(&ds, name, targets);
    }
    dataset_free(&ds);
    return status;
}

/* Prints the datasets of the store, one a line. */
static int data_list(Store *store) {
    DatasetRow *rows;
    int n_rows;
    if (store_dataset_list(store, &rows, &n_rows)) return -1;
    printf("%-24s %-6s %6s %11s %8s %6s %s\n", "name", "family", "vocab", "tokens", "docs",
           "seed", "created");
    for (int i = 0; i < n_rows; i++)
        printf("%-24s %-6s %6d %11lld %8lld %6lld %s\n", rows[i].name, rows[i].family,
               rows[i].vocab_size, rows[i].n_tokens, rows[i].n_docs, rows[i].seed,
               rows[i].created);
    store_dataset_list_free(rows, n_rows);
    return 0;
}

/* 1 if `name` is in the comma-separated list (or the list is NULL). */
static int selected(const char *list, const char *name) {
    if (!list) return 1;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/* Column width of a label: its name, at least 6. */
static int label_width(const DatasetLabel *label) {
    int n = (int)strlen(label->name);
    return n > 6 ? n : 6;
}

/* Prints one document, a token per line with its labels in columns. */
static int data_show(Store *store, const char *name, long doc, long max_tokens,
                     const char *labels) {
    Dataset ds;
    if (store_dataset_load(store, name, &ds, NULL)) return -1;
    if (doc < 0 || (size_t)doc >= ds.n_docs) {
        spiral_error("--doc: dataset %s has documents 0..%zu, got %ld", name, ds.n_docs - 1, doc);
        dataset_free(&ds);
        return -1;
    }
    if (labels) {
        /* every requested label must exist */
        char buffer[1024];
        snprintf(buffer, sizeof buffer, "%s", labels);
        for (char *tok = strtok(buffer, ","); tok; tok = strtok(NULL, ","))
            if (dataset_find_label(&ds, tok) < 0) {
                spiral_error("--labels: dataset %s has no label '%s'", name, tok);
                dataset_free(&ds);
                return -1;
            }
    }
    size_t first = ds.doc_start[doc], last = ds.doc_start[doc + 1];
    printf("dataset %s (%s), document %ld of %zu, split %s, %zu tokens\n", name, ds.family, doc,
           ds.n_docs, dataset_split_name(ds.doc_split[doc]), last - first);
    printf("%6s %6s %4s", "pos", "token", "char");
    if (ds.true_nll) printf(" %8s", "true_nll");
    for (int l = 0; l < ds.n_labels; l++)
        if (selected(labels, ds.labels[l].name)) printf(" %*s", label_width(&ds.labels[l]), ds.labels[l].name);
    printf("\n");
    for (size_t i = first; i < last && (long)(i - first) < max_tokens; i++) {
        int t = ds.tokens[i];
        char shown[8] = "";
        if (!strcmp(ds.family, "text") || !strcmp(ds.family, "kjv")) {
            if (t == '\n') snprintf(shown, sizeof shown, "\\n");
            else if (t < 128 && isprint(t)) snprintf(shown, sizeof shown, "'%c'", t);
        }
        printf("%6zu %6d %4s", i - first, t, shown);
        if (ds.true_nll) printf(" %8.4f", ds.true_nll[i]);
        for (int l = 0; l < ds.n_labels; l++)
            if (selected(labels, ds.labels[l].name))
                printf(" %*d", label_width(&ds.labels[l]), ds.labels[l].values[i]);
        printf("\n");
    }
    if ((long)(last - first) > max_tokens)
        printf("... %zu more tokens (--max-tokens)\n", last - first - (size_t)max_tokens);
    dataset_free(&ds);
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *action = argv[1];
    const char *store_path = NULL, *name = NULL, *family = NULL, *params = NULL;
    const char *text_path = NULL, *seed_text = "0", *doc_text = "0", *max_text = "80";
    const char *labels = NULL, *run_name = NULL, *seq_len_text = NULL, *window_text = "random";
    const char *windows_text = "64";
    CliOption table[] = {
        {"--store", &store_path, NULL},
        {"--name", &name, NULL},
        {"--family", &family, NULL},
        {"--params", &params, NULL},
        {"--text", &text_path, NULL},
        {"--seed", &seed_text, NULL},
        {"--doc", &doc_text, NULL},
        {"--max-tokens", &max_text, NULL},
        {"--labels", &labels, NULL},
        {"--run", &run_name, NULL},
        {"--seq-len", &seq_len_text, NULL},
        {"--window", &window_text, NULL},
        {"--windows", &windows_text, NULL},
    };
    if (cli_parse_options("data", argc - 1, argv + 1, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!store_path) return cli_usage_error("data", "--store is required");
    int is_make = !strcmp(action, "make"), is_list = !strcmp(action, "list"),
        is_show = !strcmp(action, "show"), is_floor = !strcmp(action, "floor");
    if (!is_make && !is_list && !is_show && !is_floor)
        return cli_usage_error("data", "unknown action '%s' (make, list, show, floor)", action);
    if ((is_make || is_show) && !name) return cli_usage_error("data", "--name is required");
    if (is_floor && !name == !run_name)
        return cli_usage_error("data", "floor takes --name NAME (with --seq-len) or --run RUN");
    if (is_floor && name && !seq_len_text)
        return cli_usage_error("data", "floor --name needs --seq-len L (the window's targets)");
    TargetsOption targets = {seq_len_text != NULL, 0, WINDOW_RANDOM, 0};
    long seq_len = 0, n_windows;
    if ((seq_len_text && cli_parse_long("--seq-len", seq_len_text, 1, 1L << 20, &seq_len)) ||
        cli_parse_long("--windows", windows_text, 1, 1L << 24, &n_windows))
        return 2;
    if (!strcmp(window_text, "document")) targets.window = WINDOW_DOCUMENT;
    else if (strcmp(window_text, "random"))
        return cli_usage_error("data", "--window: expected document or random, got '%s'",
                               window_text);
    targets.L = (int)seq_len;
    targets.n_windows = (size_t)n_windows;
    if (is_make && !family) return cli_usage_error("data", "--family is required");
    long seed, doc, max_tokens;
    if (cli_parse_long("--seed", seed_text, 0, 2147483647L, &seed) ||
        cli_parse_long("--doc", doc_text, 0, 2147483647L, &doc) ||
        cli_parse_long("--max-tokens", max_text, 1, 2147483647L, &max_tokens))
        return 2;
    Store store;
    int opened = is_make ? store_open(&store, store_path, 1) : store_open_readonly(&store, store_path);
    if (opened) return cli_fail("data");
    int status = is_make ? data_make(&store, name, family, params, (unsigned long)seed, text_path,
                                     &targets)
                 : is_floor ? data_floor(&store, name, run_name, &targets)
                 : is_list ? data_list(&store)
                           : data_show(&store, name, doc, max_tokens, labels);
    store_close(&store);
    return status ? cli_fail("data") : 0;
}
