/*
 * test_synth_dyck.c: the bounded Dyck-(k, m) generator (data/synth_dyck.c).
 *
 * Every document of several configurations is replayed by code written
 * independently of the generator: a naive matching-bracket scan, a stack for
 * depth and top, and the step probabilities of the process written out case
 * by case. Checked: determinism and the params round trip, dataset_validate,
 * labels against the tokens, every prefix's next-token distribution (sums to
 * 1, equals the independent one, gives true_nll), sum of true_nll =
 * -log P(document), depth bounds, the OOD split deeper and longer, the
 * analytic mean length against the sample mean, and a table of bad
 * parameters. Prints the reference numbers of the default dataset.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "error.h"
#include "data_fixtures.h"
#include "harness.h"
#include "ngram.h"
#include "synth_dyck.h"

/* p(token | depth, top type, tokens so far) of the process, written from
 * the table of synth_dyck.h without using the library. */
static double step_prob(const SynthDyckParams *p, int bound, int min_len, int depth, int top,
                        long length, int token) {
    int k = p->k;
    int is_open = token >= 1 && token <= k, is_close = token > k && token <= 2 * k;
    if (depth == 0) {
        int may_end = length >= min_len;
        if (token == 0) return may_end ? p->p_end : 0.0;
        if (is_open) return (may_end ? 1 - p->p_end : 1.0) / k;
        return 0.0;
    }
    if (token == 0) return 0.0;
    if (depth == bound) return is_close && token - 1 - k == top ? 1.0 : 0.0;
    if (is_open) return p->p_open / k;
    if (is_close && token - 1 - k == top) return 1 - p->p_open;
    return 0.0;
}

/* The index of the bracket matching position i of a document, found by a
 * naive scan that counts opens and closes (no stack). */
static size_t naive_match(const uint16_t *tokens, size_t n, size_t i, int k) {
    int is_open = tokens[i] <= k;
    long balance = 0;
    if (is_open) {
        for (size_t j = i; j < n; j++) {
            balance += tokens[j] >= 1 && tokens[j] <= k ? 1 : tokens[j] > k ? -1 : 0;
            if (balance == 0) return j;
        }
    } else {
        for (size_t j = i + 1; j-- > 0;) {
            balance += tokens[j] > k ? 1 : tokens[j] >= 1 ? -1 : 0;
            if (balance == 0) return j;
        }
    }
    return (size_t)-1;
}

/* Summary of one split used by the OOD checks. */
typedef struct {
    int max_depth;
    double mean_length;   /* tokens per document, EOS included */
    long min_brackets;    /* shortest document, EOS excluded */
} SplitStats;

/* Replays every document of ds independently of the generator and checks
 * labels, bounds and probabilities. Fills stats per split. */
static void check_documents(const Dataset *ds, const SynthDyckParams *p, SplitStats *stats,
                            const char *what) {
    int k = p->k, vocab = 2 * k + 1;
    int l_depth = dataset_find_label(ds, "depth"), l_top = dataset_find_label(ds, "top");
    int l_match = dataset_find_label(ds, "match_dist"), l_open = dataset_find_label(ds, "is_open");
    CHECK(l_depth >= 0 && l_top >= 0 && l_match >= 0 && l_open >= 0, "%s: labels missing", what);
    if (l_depth < 0 || l_top < 0 || l_match < 0 || l_open < 0) return;
    const int32_t *depth_label = ds->labels[l_depth].values, *top_label = ds->labels[l_top].values;
    const int32_t *match_label = ds->labels[l_match].values;
    const int32_t *open_label = ds->labels[l_open].values;
    double *probs = malloc((size_t)vocab * sizeof *probs);  /* (vocab) */
    int *types = malloc(SYNTH_DYCK_MAX_DEPTH * sizeof *types);
    long bad_label = 0, bad_match = 0, bad_prob = 0, bad_sum = 0, bad_doc = 0, bad_chain = 0;
    double worst_sum = 0, worst_doc = 0;
    long docs[SPLIT_COUNT] = {0}, tokens[SPLIT_COUNT] = {0};
    for (int s = 0; s < SPLIT_COUNT; s++) stats[s] = (SplitStats){0, 0, -1};
    for (size_t d = 0; d < ds->n_docs; d++) {
        int split = ds->doc_split[d], ood = split == SPLIT_TEST_OOD;
        int bound = ood ? p->m_ood : p->m, min_len = ood ? p->min_len_ood : p->min_len;
        SynthDyckProcess process = synth_dyck_process(p, ood);
        SynthDyckState state;
        synth_dyck_state_init(&state);
        size_t start = ds->doc_start[d], n = ds->doc_start[d + 1] - start;
        const uint16_t *doc = ds->tokens + start;
        int depth = 0, ok = n >= 1 && doc[n - 1] == 0;
        double log_p = 0, nll_sum = 0;
        for (size_t i = 0; i < n && ok; i++) {
            int token = doc[i], top = depth ? types[depth - 1] : -1;
            /* the library's next-token law at this prefix */
            synth_dyck_next_probs(&process, &state, probs);
            double sum = 0;
            for (int t = 0; t < vocab; t++) {
                sum += probs[t];
                if (fabs(probs[t] - step_prob(p, bound, min_len, depth, top, (long)i, t)) > 1e-15)
                    bad_prob++;
            }
            if (fabs(sum - 1) > worst_sum) worst_sum = fabs(sum - 1);
            if (fabs(sum - 1) > 1e-9) bad_sum++;
            double q = step_prob(p, bound, min_len, depth, top, (long)i, token);
            if (!(q > 0)) ok = 0;
            log_p += log(q);
            nll_sum += ds->true_nll[start + i];
            if (fabs(ds->true_nll[start + i] + log(q)) > 1e-12 ||
                fabs(exp(-ds->true_nll[start + i]) - probs[token]) > 1e-12)
                bad_chain++;
            if (token == 0) {
                ok = i == n - 1 && depth == 0;
                if (depth_label[start + i] != -1 || top_label[start + i] != -1 ||
                    match_label[start + i] != -1 || open_label[start + i] != -1)
                    bad_label++;
                break;
            }
            if (token <= k) {
                if (depth >= bound) ok = 0;
                else types[depth++] = token - 1;
            } else {
                if (depth == 0 || types[depth - 1] != token - 1 - k) ok = 0;
                else depth--;
            }
            if (!ok) break;
            if (synth_dyck_state_push(&process, &state, token)) ok = 0;
            if (depth > stats[split].max_depth) stats[split].max_depth = depth;
            if (depth_label[start + i] != depth || top_label[start + i] != (depth ? types[depth - 1] : -1) ||
                open_label[start + i] != (token <= k))
                bad_label++;
            size_t j = naive_match(doc, n, i, k);
            if (j == (size_t)-1) {
                bad_match++;
                continue;
            }
            size_t distance = j > i ? j - i : i - j;
            int same_type = token <= k ? doc[j] == token + k : doc[j] == token - k;
            if (!same_type || match_label[start + i] != (int32_t)(distance < 63 ? distance : 63))
                bad_match++;
        }
        if (!ok || (long)n - 1 < min_len) bad_doc++;
        double gap = fabs(nll_sum + log_p);
        if (gap > worst_doc) worst_doc = gap;
        docs[split]++;
        tokens[split] += (long)n;
        if (stats[split].min_brackets < 0 || (long)n - 1 < stats[split].min_brackets)
            stats[split].min_brackets = (long)n - 1;
    }
    for (int s = 0; s < SPLIT_COUNT; s++)
        stats[s].mean_length = docs[s] ? (double)tokens[s] / docs[s] : 0;
    CHECK(bad_doc == 0, "%s: %ld documents break the grammar, a bound or min_len", what, bad_doc);
    CHECK(bad_label == 0, "%s: %ld depth/top/is_open labels disagree with the tokens", what,
          bad_label);
    CHECK(bad_match == 0, "%s: %ld match_dist labels do not point at the matching bracket", what,
          bad_match);
    CHECK(bad_prob == 0, "%s: %ld next-token probabilities differ from the process", what,
          bad_prob);
    CHECK(bad_sum == 0, "%s: %ld next-token distributions do not sum to 1 (worst %.3g)", what,
          bad_sum, worst_sum);
    CHECK(bad_chain == 0, "%s: %ld true_nll differ from -log p(token | prefix)", what, bad_chain);
    CHECK(worst_doc < 1e-9, "%s: sum of true_nll differs from -log P(doc) by %.3g", what,
          worst_doc);
    free(probs);
    free(types);
}

/* Makes a dataset from params and runs every document check on it. */
static void check_config(const char *params_json, unsigned long seed, SplitStats *stats) {
    const char *what = params_json ? params_json : "defaults";
    Dataset ds;
    SynthDyckParams p;
    int made = synth_dyck_make(&ds, params_json, seed);
    CHECK(made == 0, "%s: make failed: %s", what, spiral_last_error());
    if (made) return;
    CHECK(synth_dyck_params(&p, ds.params_json) == 0, "%s: stored params do not parse: %s",
          what, spiral_last_error());
    CHECK(dataset_validate(&ds) == 0, "%s: %s", what, spiral_last_error());
    CHECK(ds.vocab_size == 2 * p.k + 1, "%s: vocab %d", what, ds.vocab_size);
    size_t want_docs = (size_t)(p.n_train + p.n_val + p.n_test + p.n_ood);
    CHECK(ds.n_docs == want_docs, "%s: %zu documents, expected %zu", what, ds.n_docs,
          want_docs);
    check_documents(&ds, &p, stats, what);
    dataset_free(&ds);
}

static void test_defaults_and_determinism(void) {
    Dataset a, b, c, d;
    CHECK(synth_dyck_make(&a, NULL, 7) == 0, "default make: %s", spiral_last_error());
    CHECK(synth_dyck_make(&b, "{}", 7) == 0, "make {}: %s", spiral_last_error());
    CHECK(synth_dyck_make(&c, NULL, 8) == 0, "make seed 8: %s", spiral_last_error());
    CHECK(datasets_equal(&a, &b), "same params and seed give different datasets");
    CHECK(a.n_tokens != c.n_tokens || memcmp(a.tokens, c.tokens, a.n_tokens * 2) != 0,
          "seeds 7 and 8 give the same tokens");
    CHECK(strcmp(a.family, "dyck") == 0, "family %s", a.family);
    /* the stored params resolve every field and reproduce the dataset */
    json_t *root = json_loads(a.params_json, 0, NULL);
    CHECK(root && json_object_size(root) == 11, "params_json %s: expected 11 fields",
          a.params_json);
    SynthDyckParams p;
    CHECK(synth_dyck_params(&p, NULL) == 0, "default params");
    SynthDyckProcess train = synth_dyck_process(&p, 0);
    double mean = synth_dyck_mean_length(&train);
    CHECK(p.k == 3 && p.m == 6 && p.p_open == 0.5 && p.p_end == 0.3 && p.min_len == 2 &&
              p.m_ood == 10 && p.min_len_ood == (int)lround(4 * mean),
          "defaults k %d m %d p_open %g p_end %g min_len %d m_ood %d min_len_ood %d (mean %g)",
          p.k, p.m, p.p_open, p.p_end, p.min_len, p.m_ood, p.min_len_ood, mean);
    if (root) {
        CHECK(json_integer_value(json_object_get(root, "min_len_ood")) == p.min_len_ood &&
                  json_real_value(json_object_get(root, "p_end")) == 0.3,
              "params_json %s", a.params_json);
        json_decref(root);
    }
    CHECK(synth_dyck_make(&d, a.params_json, 7) == 0, "make from params_json: %s",
          spiral_last_error());
    CHECK(datasets_equal(&a, &d), "the stored params_json does not reproduce the dataset");
    int l = dataset_find_label(&a, "depth");
    CHECK(l >= 0 && a.labels[l].n_classes == 11, "depth n_classes must be max(m, m_ood) + 1 = 11");
    CHECK(dataset_find_label(&a, "top") >= 0 &&
              a.labels[dataset_find_label(&a, "top")].n_classes == 3 &&
              a.labels[dataset_find_label(&a, "match_dist")].n_classes == 64 &&
              a.labels[dataset_find_label(&a, "is_open")].n_classes == 2,
          "label classes");

    /* the numbers a reader needs: vocab, lengths, entropy floor, unigram */
    size_t count;
    double floor_val = dataset_true_nll_mean(&a, SPLIT_VAL, &count);
    double floor_ood = dataset_true_nll_mean(&a, SPLIT_TEST_OOD, NULL);
    size_t n_train_docs = 0, n_ood_docs = 0;
    for (size_t i = 0; i < a.n_docs; i++) {
        n_train_docs += a.doc_split[i] == SPLIT_TRAIN;
        n_ood_docs += a.doc_split[i] == SPLIT_TEST_OOD;
    }
    printf("dyck defaults %s\n", a.params_json);
    printf("  vocab %d, %zu train tokens, mean document length %.2f (train, EOS included; "
           "analytic %.2f), %.2f (ood)\n",
           a.vocab_size, dataset_split_tokens(&a, SPLIT_TRAIN),
           (double)dataset_split_tokens(&a, SPLIT_TRAIN) / n_train_docs, mean + 1,
           (double)dataset_split_tokens(&a, SPLIT_TEST_OOD) / n_ood_docs);
    printf("  mean true_nll on val %.4f nats/token (%zu tokens), on ood %.4f; unigram entropy "
           "of train %.4f nats\n",
           floor_val, count, floor_ood, unigram_entropy(&a, SPLIT_TRAIN));
    CHECK(floor_val > 0 && floor_val < unigram_entropy(&a, SPLIT_TRAIN),
          "entropy floor %g should be below the unigram entropy", floor_val);
    dataset_free(&a);
    dataset_free(&b);
    dataset_free(&c);
    dataset_free(&d);
}

static void test_documents_and_ood(void) {
    SplitStats stats[SPLIT_COUNT];
    SynthDyckParams p;
    synth_dyck_params(&p, NULL);
    check_config(NULL, 3, stats);
    /* no document exceeds its bound; the OOD split is deeper and longer */
    CHECK(stats[SPLIT_TRAIN].max_depth <= p.m && stats[SPLIT_VAL].max_depth <= p.m &&
              stats[SPLIT_TEST].max_depth <= p.m,
          "train/val/test reach depth %d/%d/%d > m", stats[0].max_depth, stats[1].max_depth,
          stats[2].max_depth);
    CHECK(stats[SPLIT_TEST_OOD].max_depth <= p.m_ood, "ood reaches depth %d > m_ood",
          stats[SPLIT_TEST_OOD].max_depth);
    CHECK(stats[SPLIT_TEST_OOD].max_depth > stats[SPLIT_TRAIN].max_depth,
          "ood max depth %d not deeper than train %d", stats[SPLIT_TEST_OOD].max_depth,
          stats[SPLIT_TRAIN].max_depth);
    CHECK(stats[SPLIT_TEST_OOD].mean_length > 3 * stats[SPLIT_TRAIN].mean_length,
          "ood mean length %.1f not much longer than train %.1f",
          stats[SPLIT_TEST_OOD].mean_length, stats[SPLIT_TRAIN].mean_length);
    CHECK(stats[SPLIT_TEST_OOD].min_brackets >= p.min_len_ood,
          "an ood document has %ld brackets < min_len_ood %d", stats[SPLIT_TEST_OOD].min_brackets,
          p.min_len_ood);
    printf("  depth reached: train %d, ood %d; mean length train %.2f, ood %.2f\n",
           stats[SPLIT_TRAIN].max_depth, stats[SPLIT_TEST_OOD].max_depth,
           stats[SPLIT_TRAIN].mean_length, stats[SPLIT_TEST_OOD].mean_length);

    /* corner cases: one type and depth 1 with empty documents allowed; a
     * shallower OOD split; long documents near the bound */
    check_config("{\"k\": 1, \"m\": 1, \"min_len\": 0, \"p_end\": 0.5, \"n_train\": 200, "
                 "\"n_val\": 10, \"n_test\": 10, \"n_ood\": 10, \"m_ood\": 1, \"min_len_ood\": 0}",
                 1, stats);
    CHECK(stats[SPLIT_TRAIN].min_brackets == 0 && stats[SPLIT_TRAIN].max_depth == 1,
          "k=1 m=1 min_len=0 p_end=0.5: shortest %ld, depth %d", stats[SPLIT_TRAIN].min_brackets,
          stats[SPLIT_TRAIN].max_depth);
    check_config("{\"k\": 5, \"m\": 3, \"p_open\": 0.8, \"p_end\": 0.05, \"min_len\": 7, "
                 "\"n_train\": 300, \"m_ood\": 2, \"min_len_ood\": 1}",
                 2, stats);
    CHECK(stats[SPLIT_TRAIN].max_depth == 3 && stats[SPLIT_TEST_OOD].max_depth <= 2,
          "bounds 3/2: depth %d/%d", stats[SPLIT_TRAIN].max_depth,
          stats[SPLIT_TEST_OOD].max_depth);
    check_config("{\"k\": 2, \"m\": 40, \"p_open\": 0.45}", 4, stats);
    check_config("{\"k\": 2, \"m\": 40, \"p_open\": 0, \"min_len\": 5, \"n_train\": 50}", 4, stats);
}

/* The analytic E[n] against the sample mean of many documents. */
static void test_mean_length(void) {
    const char *configs[] = {
        "{\"n_train\": 20000, \"n_val\": 0, \"n_test\": 0, \"n_ood\": 0}",
        "{\"m\": 2, \"p_open\": 0.7, \"p_end\": 0.2, \"min_len\": 9, \"n_train\": 20000, "
        "\"n_val\": 0, \"n_test\": 0, \"n_ood\": 0}",
        "{\"m\": 1, \"min_len\": 0, \"p_end\": 0.5, \"n_train\": 20000, \"n_val\": 0, "
        "\"n_test\": 0, \"n_ood\": 0}",
    };
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        Dataset ds;
        SynthDyckParams p;
        if (synth_dyck_make(&ds, configs[c], 11) || synth_dyck_params(&p, configs[c])) {
            CHECK(0, "%s: %s", configs[c], spiral_last_error());
            continue;
        }
        SynthDyckProcess process = synth_dyck_process(&p, 0);
        double mean = synth_dyck_mean_length(&process), sum = 0, sum2 = 0;
        for (size_t d = 0; d < ds.n_docs; d++) {
            double n = (double)(ds.doc_start[d + 1] - ds.doc_start[d] - 1);
            sum += n;
            sum2 += n * n;
        }
        double sample = sum / ds.n_docs;
        double se = sqrt((sum2 / ds.n_docs - sample * sample) / ds.n_docs);
        CHECK(fabs(sample - mean) < 5 * se + 1e-12,
              "%s: sample mean length %.3f vs analytic %.3f (standard error %.3f)", configs[c],
              sample, mean, se);
        dataset_free(&ds);
    }
    /* m = 1, min_len 0: n = 2 G with G ~ Geometric(p_end) failures, E[n] = 2 (1 - p)/p */
    SynthDyckProcess simple = {3, 1, 0.5, 0.25, 0};
    CHECK(fabs(synth_dyck_mean_length(&simple) - 6.0) < 1e-12, "m=1 mean %.15g, expected 6",
          synth_dyck_mean_length(&simple));
}

/* A bad parameter must fail with a message naming dyck.<field>. */
static void test_bad_params(void) {
    const struct {
        const char *json, *field;
    } cases[] = {
        {"{\"k\": 0}", "dyck.k"},
        {"{\"k\": \"3\"}", "dyck.k"},
        {"{\"k\": 2.5}", "dyck.k"},
        {"{\"k\": true}", "dyck.k"},
        {"{\"k\": 1001}", "dyck.k"},
        {"{\"m\": 0}", "dyck.m"},
        {"{\"m\": 1001}", "dyck.m"},
        {"{\"p_open\": 1}", "dyck.p_open"},
        {"{\"p_open\": -0.1}", "dyck.p_open"},
        {"{\"p_open\": \"half\"}", "dyck.p_open"},
        {"{\"p_end\": 0}", "dyck.p_end"},
        {"{\"p_end\": 1.5}", "dyck.p_end"},
        {"{\"min_len\": -1}", "dyck.min_len"},
        {"{\"min_len\": 100001}", "dyck.min_len"},
        {"{\"n_train\": -5}", "dyck.n_train"},
        {"{\"n_val\": \"x\"}", "dyck.n_val"},
        {"{\"n_test\": null}", "dyck.n_test"},
        {"{\"n_ood\": 1e3}", "dyck.n_ood"},
        {"{\"m_ood\": 0}", "dyck.m_ood"},
        {"{\"min_len_ood\": 200001}", "dyck.min_len_ood"},
        {"{\"depth\": 4}", "dyck.depth"},
        {"{\"p_open\": 0.99, \"m\": 1000}", "dyck.p_open"},
        {"{\"p_end\": 1e-9}", "dyck.p_end"},
        {"[1, 2]", "dyck.params"},
        {"{\"k\": 3", "dyck.params"},
        {"{\"k\": 3, \"k\": 4}", "dyck.params"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Dataset ds;
        spiral_error("%s", "");
        int status = synth_dyck_make(&ds, cases[c].json, 1);
        CHECK(status == -1, "%s: expected -1, got %d", cases[c].json, status);
        CHECK(strstr(spiral_last_error(), cases[c].field) != NULL,
              "%s: message \"%s\" does not name %s", cases[c].json, spiral_last_error(),
              cases[c].field);
        CHECK(ds.tokens == NULL && ds.params_json == NULL, "%s: failed make left memory",
              cases[c].json);
        dataset_free(&ds);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    test_defaults_and_determinism();
    test_documents_and_ood();
    test_mean_length();
    test_bad_params();
    return test_summary(argv[0]);
}
