/*
 * test_corpus.c: real-text datasets (data/corpus_text.c) and the n-gram
 * baselines (data/ngram.c).
 *
 * What is proven here:
 *   - "text": documents are cut only at paragraph starts, hold at least
 *     min_doc_bytes, and laid back to back are the file; splits are by
 *     document, deterministic, change with the seed and respect the fractions
 *     on a larger synthetic text; every label is right on hand-checked bytes;
 *     missing / empty / blank files and bad parameters fail with messages
 *     naming the path or the field;
 *   - "kjv" from a hand-written file in the output format of `bible`: the
 *     exact rendered text (wrapped lines joined, runs of spaces collapsed),
 *     verse / verse_end / chapter / book / testament / word labels, and
 *     errors naming the file and line; a missing program asks for the Debian
 *     packages;
 *   - "kjv" from the real program when it is installed: 66 books, 1189
 *     chapters, 31102 verses, Genesis 1:1 labelled book 0 chapter 1 verse 1,
 *     consistent labels everywhere, whole books held out with split_by
 *     "book", the 80-column wrapped output read to the same bytes, made in
 *     under 3 seconds; prints bytes per split and the n-gram val losses;
 *   - n-grams: exact values (1e-12) against hand-computed formulas on a tiny
 *     case, for dense tables and hash maps, across document boundaries;
 *     against a brute-force counter on random data for orders 1..4; a cycle
 *     a b c gives a bigram loss -> 0, uniform i.i.d. tokens a unigram loss ->
 *     log V; error cases return NaN with a message.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "corpus_text.h"
#include "dataset.h"
#include "error.h"
#include "harness.h"
#include "ngram.h"

static char test_dir[64];

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* A path inside the test's temporary directory (static buffer per slot). */
static const char *temp_path(const char *name) {
    static char buffers[4][256];
    static int next;
    char *buf = buffers[next];
    next = (next + 1) % 4;
    snprintf(buf, sizeof buffers[0], "%s/%.180s", test_dir, name);
    return buf;
}

/* Writes n bytes to a file in the temp dir; returns its path. */
static const char *write_temp(const char *name, const char *bytes, size_t n) {
    const char *path = temp_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n) {
        fprintf(stderr, "test_corpus: cannot write %s\n", path);
        abort();
    }
    fclose(f);
    return path;
}

/* 1 if the last error message contains `part`. */
static int error_mentions(const char *part) { return strstr(spiral_last_error(), part) != NULL; }

/* The value of label `name` at token i (aborts if the label is missing). */
static int label_at(const Dataset *ds, const char *name, size_t i) {
    int l = dataset_find_label(ds, name);
    if (l < 0) {
        fprintf(stderr, "test_corpus: no label %s\n", name);
        abort();
    }
    return ds->labels[l].values[i];
}

/* 1 if tokens[first .. first+len) equal the C string s. */
static int tokens_equal(const Dataset *ds, size_t first, size_t len, const char *s) {
    if (strlen(s) != len) return 0;
    for (size_t i = 0; i < len; i++)
        if (ds->tokens[first + i] != (unsigned char)s[i]) return 0;
    return 1;
}

/* Offset of the first occurrence of the string s in the tokens, or SIZE_MAX. */
static size_t find_tokens(const Dataset *ds, const char *s) {
    size_t len = strlen(s);
    for (size_t i = 0; i + len <= ds->n_tokens; i++)
        if (tokens_equal(ds, i, len, s)) return i;
    return SIZE_MAX;
}

/* A small deterministic generator (64-bit LCG, high bits). */
static uint64_t rng_state = 12345;
static uint32_t rng_next(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* A dataset of the given documents (no labels). */
static void make_docs(Dataset *ds, int vocab_size, int n_docs, const uint16_t *const *docs,
                      const size_t *lengths, const int *splits) {
    if (dataset_init(ds, "test", vocab_size, 0, NULL, NULL, 0)) abort();
    for (int d = 0; d < n_docs; d++)
        if (dataset_append(ds, docs[d], lengths[d], NULL, NULL, splits[d])) abort();
}

/* A monotonic clock in seconds. */
static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* text                                                                     */
/* ------------------------------------------------------------------------ */

static const char small_text[] =
    "Hello, world 42!\n"
    "father's well-known caf\xc3\xa9.\n"
    "\n"
    " \t\n"
    "Next incomprehensibilities\n";

/* Labels of the small text, checked byte by byte where it matters. */
static void test_text_labels(void) {
    const char *path = write_temp("small.txt", small_text, sizeof small_text - 1);
    Dataset ds;
    CHECK(corpus_text_make(&ds, path, "{\"min_doc_bytes\": 1}") == 0, "make: %s",
          spiral_last_error());
    CHECK(dataset_validate(&ds) == 0, "validate: %s", spiral_last_error());
    CHECK(!strcmp(ds.family, "text") && ds.vocab_size == 256, "family %s vocab %d", ds.family,
          ds.vocab_size);
    CHECK(ds.n_tokens == sizeof small_text - 1, "n_tokens %zu", ds.n_tokens);
    CHECK(tokens_equal(&ds, 0, ds.n_tokens, small_text), "tokens are the file's bytes");
    /* two paragraphs; the blank lines stay with the first */
    size_t second = strlen("Hello, world 42!\nfather's well-known caf\xc3\xa9.\n\n \t\n");
    CHECK(ds.n_docs == 2 && ds.doc_start[1] == second, "docs %zu, second at %zu", ds.n_docs,
          ds.n_docs > 1 ? ds.doc_start[1] : 0);

    /* char_class: H letter, ',' punct, ' ' space, '4' digit, '\n' space, 0xc3 other */
    CHECK(label_at(&ds, "char_class", 0) == 0, "H");
    CHECK(label_at(&ds, "char_class", 5) == 3, ",");
    CHECK(label_at(&ds, "char_class", 6) == 2, "space");
    CHECK(label_at(&ds, "char_class", 13) == 1, "4");
    CHECK(label_at(&ds, "char_class", 16) == 2, "newline");
    size_t cafe = find_tokens(&ds, "caf\xc3\xa9");
    CHECK(label_at(&ds, "char_class", cafe + 3) == 4 && label_at(&ds, "char_class", cafe + 4) == 4,
          "UTF-8 bytes are class 4");
    CHECK(label_at(&ds, "char_class", second - 2) == 2, "tab is whitespace");

    /* word_pos / word_end on "Hello, world 42!" */
    static const int hello_pos[] = {0, 1, 2, 3, 4, -1, -1, 0, 1, 2, 3, 4, -1, 0, 1, -1, -1};
    static const int hello_end[] = {0, 0, 0, 0, 1, -1, -1, 0, 0, 0, 0, 1, -1, 0, 1, -1, -1};
    for (int i = 0; i < 17; i++) {
        CHECK(label_at(&ds, "word_pos", i) == hello_pos[i], "word_pos[%d] = %d, expected %d", i,
              label_at(&ds, "word_pos", i), hello_pos[i]);
        CHECK(label_at(&ds, "word_end", i) == hello_end[i], "word_end[%d] = %d, expected %d", i,
              label_at(&ds, "word_end", i), hello_end[i]);
    }
    /* an apostrophe and a hyphen inside words, UTF-8 letters in a word */
    size_t father = find_tokens(&ds, "father's");
    CHECK(label_at(&ds, "word_pos", father + 6) == 6 && label_at(&ds, "word_pos", father + 7) == 7 &&
              label_at(&ds, "word_end", father + 7) == 1 && label_at(&ds, "word_end", father + 5) == 0,
          "father's is one word");
    size_t well = find_tokens(&ds, "well-known");
    CHECK(label_at(&ds, "word_pos", well + 4) == 4 && label_at(&ds, "word_pos", well + 9) == 9 &&
              label_at(&ds, "word_end", well + 9) == 1,
          "well-known is one word");
    CHECK(label_at(&ds, "word_pos", cafe + 4) == 4 && label_at(&ds, "word_end", cafe + 4) == 1 &&
              label_at(&ds, "word_pos", cafe + 5) == -1,
          "café is one word of 5 bytes, '.' is outside");
    /* a 21-byte word: positions clamp at 15 */
    size_t incomp = find_tokens(&ds, "incomprehensibilities");
    CHECK(label_at(&ds, "word_pos", incomp + 14) == 14 && label_at(&ds, "word_pos", incomp + 15) == 15 &&
              label_at(&ds, "word_pos", incomp + 20) == 15 && label_at(&ds, "word_end", incomp + 20) == 1 &&
              label_at(&ds, "word_end", incomp + 19) == 0,
          "word_pos clamps at 15");

    /* line_start */
    size_t line_starts = 0;
    for (size_t i = 0; i < ds.n_tokens; i++) {
        int expected = i == 0 || small_text[i - 1] == '\n';
        line_starts += label_at(&ds, "line_start", i) == expected;
    }
    CHECK(line_starts == ds.n_tokens, "line_start right on %zu of %zu bytes", line_starts,
          ds.n_tokens);
    CHECK(label_at(&ds, "line_start", 17) == 1 && label_at(&ds, "line_start", second) == 1 &&
              label_at(&ds, "line_start", 1) == 0,
          "line_start at 'f', 'N', not at 'e'");

    /* params_json records the path and sizes */
    json_t *params = json_loads(ds.params_json, 0, NULL);
    CHECK(params && !strcmp(json_string_value(json_object_get(params, "path")), path) &&
              json_integer_value(json_object_get(params, "n_bytes")) == (json_int_t)ds.n_tokens &&
              json_integer_value(json_object_get(params, "min_doc_bytes")) == 1 &&
              json_real_value(json_object_get(params, "val_fraction")) == 0.05,
          "params_json %s", ds.params_json);
    json_decref(params);
    dataset_free(&ds);

    /* default min_doc_bytes: one document */
    CHECK(corpus_text_make(&ds, path, NULL) == 0 && ds.n_docs == 1 &&
              ds.n_tokens == sizeof small_text - 1 && ds.doc_split[0] == SPLIT_TRAIN,
          "default params: one train document (%s)", spiral_last_error());
    dataset_free(&ds);
}

/* Errors name the path or the field. */
static void test_text_errors(void) {
    Dataset ds;
    const char *missing = temp_path("no_such_file.txt");
    CHECK(corpus_text_make(&ds, missing, NULL) == -1 && error_mentions(missing) &&
              error_mentions("cannot open"),
          "missing file: %s", spiral_last_error());
    CHECK(ds.n_tokens == 0 && ds.tokens == NULL, "failed make leaves an empty dataset");
    dataset_free(&ds);
    const char *empty = write_temp("empty.txt", "", 0);
    CHECK(corpus_text_make(&ds, empty, NULL) == -1 && error_mentions(empty) &&
              error_mentions("empty file"),
          "empty file: %s", spiral_last_error());
    const char *blank = write_temp("blank.txt", "\n \n\t\n", 5);
    CHECK(corpus_text_make(&ds, blank, NULL) == -1 && error_mentions(blank) &&
              error_mentions("no document of >= 2 tokens"),
          "blank file: %s", spiral_last_error());
    const char *one = write_temp("one.txt", "a", 1);
    CHECK(corpus_text_make(&ds, one, NULL) == -1 && error_mentions(one) &&
              error_mentions("no document of >= 2 tokens"),
          "one-byte file: %s", spiral_last_error());
    const char *two = write_temp("two.txt", "ab", 2);
    CHECK(corpus_text_make(&ds, two, NULL) == 0 && ds.n_docs == 1 && ds.n_tokens == 2,
          "two-byte file is one document: %s", spiral_last_error());
    dataset_free(&ds);

    static const struct {
        const char *params, *expected;
    } bad[] = {
        {"{\"min_doc_bytes\": 0}", "text.min_doc_bytes"},
        {"{\"min_doc_bytes\": 1.5}", "text.min_doc_bytes"},
        {"{\"val_fraction\": \"x\"}", "text.val_fraction"},
        {"{\"test_fraction\": -0.1}", "text.test_fraction"},
        {"{\"val_fraction\": 0.7, \"test_fraction\": 0.6}", "text.val_fraction + text.test_fraction"},
        {"{\"seed\": -1}", "text.seed"},
        {"{\"minimum\": 3}", "text.minimum: unknown field"},
        {"{\"seed\": 1", "text params: invalid JSON"},
        {"[1]", "text params: expected a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int status = corpus_text_make(&ds, two, bad[i].params);
        CHECK(status == -1 && error_mentions(bad[i].expected), "params %s: %s", bad[i].params,
              spiral_last_error());
        if (status == 0) dataset_free(&ds);
    }
}

/* A larger synthetic text: document cuts, fractions, determinism. */
static void test_text_splits(void) {
    /* 4000 paragraphs of 1..4 lines of 5..80 bytes, separated by 1..3 blank lines */
    size_t cap = 4000 * 4 * 82 + 4000 * 4, n = 0;
    char *text = malloc(cap);
    rng_state = 7;
    for (int p = 0; p < 4000; p++) {
        int lines = 1 + rng_next() % 4;
        for (int l = 0; l < lines; l++) {
            int len = 5 + rng_next() % 76;
            for (int i = 0; i < len; i++) text[n++] = i % 6 == 5 ? ' ' : 'a' + rng_next() % 26;
            text[n++] = '\n';
        }
        int blanks = 1 + rng_next() % 3;
        for (int b = 0; b < blanks; b++) text[n++] = '\n';
    }
    const char *path = write_temp("synthetic.txt", text, n);
    Dataset a, b, c;
    const char *params = "{\"min_doc_bytes\": 300}";
    CHECK(corpus_text_make(&a, path, params) == 0, "make: %s", spiral_last_error());
    CHECK(corpus_text_make(&b, path, params) == 0, "make again: %s", spiral_last_error());
    CHECK(corpus_text_make(&c, path, "{\"min_doc_bytes\": 300, \"seed\": 1}") == 0,
          "make seed 1: %s", spiral_last_error());
    CHECK(dataset_validate(&a) == 0, "validate: %s", spiral_last_error());
    int bytes_same = a.n_tokens == n;
    for (size_t i = 0; bytes_same && i < n; i++) bytes_same = a.tokens[i] == (unsigned char)text[i];
    CHECK(bytes_same, "documents back to back are the file");
    /* every cut is at a paragraph start (after "\n\n"), every document >= 300 bytes */
    int cuts_ok = 1, sizes_ok = 1;
    for (size_t d = 1; d < a.n_docs; d++) {
        size_t s = a.doc_start[d];
        cuts_ok &= s >= 2 && text[s - 1] == '\n' && text[s - 2] == '\n' && text[s] != '\n';
    }
    for (size_t d = 0; d < a.n_docs; d++) sizes_ok &= a.doc_start[d + 1] - a.doc_start[d] >= 300;
    CHECK(cuts_ok, "documents start at paragraph starts");
    CHECK(sizes_ok, "documents hold >= min_doc_bytes");
    CHECK(a.n_docs > 500, "%zu documents", a.n_docs);
    /* fractions: exact in documents, close in bytes */
    size_t docs[SPLIT_COUNT] = {0};
    for (size_t d = 0; d < a.n_docs; d++) docs[a.doc_split[d]]++;
    size_t expected = (size_t)llround(0.05 * a.n_docs);
    CHECK(docs[SPLIT_VAL] == expected && docs[SPLIT_TEST] == expected &&
              docs[SPLIT_TEST_OOD] == 0,
          "docs per split %zu/%zu/%zu, expected %zu val and test", docs[0], docs[1], docs[2],
          expected);
    for (int s = SPLIT_VAL; s <= SPLIT_TEST; s++) {
        double fraction = (double)dataset_split_tokens(&a, s) / a.n_tokens;
        CHECK(fraction > 0.04 && fraction < 0.06, "%s byte fraction %.4f",
              dataset_split_name(s), fraction);
    }
    /* deterministic, and the seed changes the assignment */
    int same = a.n_docs == b.n_docs, differs = 0;
    for (size_t d = 0; same && d < a.n_docs; d++)
        same = a.doc_start[d] == b.doc_start[d] && a.doc_split[d] == b.doc_split[d];
    for (size_t d = 0; d < a.n_docs && d < c.n_docs; d++) differs += a.doc_split[d] != c.doc_split[d];
    CHECK(same, "same params give the same documents and splits");
    CHECK(c.n_docs == a.n_docs && differs > 0, "seed 1 assigns %d documents differently", differs);
    /* params_json: the split sizes */
    json_t *p = json_loads(a.params_json, 0, NULL);
    json_t *split_docs = p ? json_object_get(p, "split_docs") : NULL;
    CHECK(split_docs && json_integer_value(json_object_get(split_docs, "val")) == (json_int_t)docs[1] &&
              json_integer_value(json_object_get(p, "n_docs")) == (json_int_t)a.n_docs,
          "params_json %.200s", a.params_json);
    json_decref(p);
    /* everything in one split */
    dataset_free(&c);
    CHECK(corpus_text_make(&c, path, "{\"min_doc_bytes\": 300, \"test_fraction\": 0.95}") == 0 &&
              dataset_split_tokens(&c, SPLIT_TRAIN) == 0 && dataset_split_tokens(&c, SPLIT_VAL) > 0,
          "val 0.05 + test 0.95 leaves no train document: %s", spiral_last_error());
    dataset_free(&a);
    dataset_free(&b);
    dataset_free(&c);
    free(text);
}

/* ------------------------------------------------------------------------ */
/* kjv from a hand-written file                                             */
/* ------------------------------------------------------------------------ */

/* The output format of `bible` (a wrapped line, a double space, verse 70). */
static const char kjv_sample[] =
    "\n"
    "Genesis 1\n"
    "\n"
    "  1 In the beginning God created the heaven and the earth.\n"
    "  2 And the earth was without form, and void; and darkness was upon the face of\n"
    "the deep.\n"
    "  3 And God said,  Let there be light.\n"
    "\n"
    "Genesis 2\n"
    "\n"
    "  1 Thus the heavens and the earth were finished, and all the host of them.\n"
    "\n"
    "Matthew 1\n"
    "\n"
    "  1 The book of the generation of Jesus Christ, the son of David, the son of Abraham.\n"
    "  70 Seventy.\n";

static const char *kjv_sample_rendered[3] = {
    "Genesis 1\n"
    "In the beginning God created the heaven and the earth.\n"
    "And the earth was without form, and void; and darkness was upon the face of the deep.\n"
    "And God said, Let there be light.\n",
    "Genesis 2\n"
    "Thus the heavens and the earth were finished, and all the host of them.\n",
    "Matthew 1\n"
    "The book of the generation of Jesus Christ, the son of David, the son of Abraham.\n"
    "Seventy.\n"};

/* The hand-written sample: rendering and every label. */
static void test_kjv_sample(void) {
    const char *path = write_temp("kjv_sample.txt", kjv_sample, sizeof kjv_sample - 1);
    char params[512];
    snprintf(params, sizeof params,
             "{\"path\": \"%s\", \"top_words\": 3, \"val_fraction\": 0, \"test_fraction\": 0}",
             path);
    Dataset ds;
    CHECK(corpus_kjv_make(&ds, params) == 0, "make: %s", spiral_last_error());
    CHECK(dataset_validate(&ds) == 0, "validate: %s", spiral_last_error());
    CHECK(!strcmp(ds.family, "kjv") && ds.n_docs == 3, "family %s, %zu docs", ds.family, ds.n_docs);
    if (ds.n_docs != 3) {
        dataset_free(&ds);
        return;
    }
    for (int d = 0; d < 3; d++)
        CHECK(tokens_equal(&ds, ds.doc_start[d], ds.doc_start[d + 1] - ds.doc_start[d],
                           kjv_sample_rendered[d]),
              "chapter %d rendered exactly", d);
    /* header bytes: no verse; book, chapter, testament everywhere */
    CHECK(label_at(&ds, "verse", 0) == -1 && label_at(&ds, "verse_end", 0) == -1 &&
              label_at(&ds, "verse", 9) == -1 && label_at(&ds, "book", 0) == 0 &&
              label_at(&ds, "chapter", 0) == 1 && label_at(&ds, "testament", 0) == 0,
          "Genesis 1 header labels");
    size_t in = strlen("Genesis 1\n");
    CHECK(label_at(&ds, "verse", in) == 1 && label_at(&ds, "verse_end", in) == 0, "'In' is verse 1");
    size_t end1 = in + strlen("In the beginning God created the heaven and the earth.") - 1;
    CHECK(ds.tokens[end1] == '.' && label_at(&ds, "verse_end", end1) == 1 &&
              label_at(&ds, "verse", end1 + 1) == 1 && label_at(&ds, "verse_end", end1 + 1) == 0 &&
              label_at(&ds, "verse", end1 + 2) == 2,
          "verse 1 ends on its '.', its newline is verse 1, then verse 2");
    int verse_ends = 0;
    for (size_t i = 0; i < ds.n_tokens; i++) verse_ends += label_at(&ds, "verse_end", i) == 1;
    CHECK(verse_ends == 6, "6 verse ends, got %d", verse_ends);
    size_t seventy = find_tokens(&ds, "Seventy");
    CHECK(label_at(&ds, "verse", seventy) == 63, "verse 70 clamps to 63");
    size_t g2 = ds.doc_start[1], m1 = ds.doc_start[2];
    CHECK(label_at(&ds, "chapter", g2 + 12) == 2 && label_at(&ds, "book", g2) == 0 &&
              label_at(&ds, "verse", g2 + 12) == 1,
          "Genesis 2 labels");
    CHECK(label_at(&ds, "book", m1) == 39 && label_at(&ds, "testament", m1) == 1 &&
              label_at(&ds, "chapter", ds.n_tokens - 1) == 1 &&
              label_at(&ds, "book", ds.n_tokens - 1) == 39,
          "Matthew is book 39 of the New Testament");
    /* words: "the" 11, "of" 6, "and" 5 times in train (everything) */
    size_t the = find_tokens(&ds, " the ") + 1, of = find_tokens(&ds, " of ") + 1,
           and = find_tokens(&ds, " and ") + 1, The = find_tokens(&ds, "The ");
    CHECK(label_at(&ds, "word", the) == 0 && label_at(&ds, "word", the + 2) == 0 &&
              label_at(&ds, "word", the + 3) == -1,
          "'the' is word 0");
    CHECK(label_at(&ds, "word", of) == 1 && label_at(&ds, "word", and) == 2, "'of' 1, 'and' 2");
    CHECK(label_at(&ds, "word", The) == 3 && label_at(&ds, "word", 0) == 3,
          "'The' and 'Genesis' are other (3)");
    int word_classes = ds.labels[dataset_find_label(&ds, "word")].n_classes;
    CHECK(word_classes == 4, "word has top_words + 1 classes, got %d", word_classes);
    json_t *p = json_loads(ds.params_json, 0, NULL);
    json_t *words = p ? json_object_get(p, "words") : NULL;
    CHECK(words && json_array_size(words) == 3 &&
              !strcmp(json_string_value(json_array_get(words, 0)), "the") &&
              !strcmp(json_string_value(json_array_get(words, 1)), "of") &&
              !strcmp(json_string_value(json_array_get(words, 2)), "and") &&
              json_integer_value(json_object_get(p, "n_verses")) == 6 &&
              json_integer_value(json_object_get(p, "n_chapters")) == 3 &&
              json_integer_value(json_object_get(p, "n_books")) == 2,
          "params_json %s", ds.params_json);
    json_decref(p);
    dataset_free(&ds);

    /* CRLF line ends read the same */
    size_t n = sizeof kjv_sample - 1, m = 0;
    char *crlf = malloc(2 * n);
    for (size_t i = 0; i < n; i++) {
        if (kjv_sample[i] == '\n') crlf[m++] = '\r';
        crlf[m++] = kjv_sample[i];
    }
    const char *crlf_path = write_temp("kjv_crlf.txt", crlf, m);
    free(crlf);
    snprintf(params, sizeof params, "{\"path\": \"%s\"}", crlf_path);
    CHECK(corpus_kjv_make(&ds, params) == 0 && ds.n_docs == 3 &&
              tokens_equal(&ds, ds.doc_start[2], ds.doc_start[3] - ds.doc_start[2],
                           kjv_sample_rendered[2]),
          "CRLF file: %s", spiral_last_error());
    dataset_free(&ds);
}

/* Errors of the kjv family name the file and line, or the field. */
static void test_kjv_errors(void) {
    static const struct {
        const char *name, *text, *expected;
    } bad[] = {
        {"kjv_book.txt", "\nGenesys 1\n\n  1 In the beginning.\n", "kjv_book.txt:2: unknown book"},
        {"kjv_verse.txt", "  1 In the beginning.\n", "kjv_verse.txt:1: a verse before any chapter"},
        {"kjv_outside.txt", "\nGenesis 1\n\nIn the beginning.\n",
         "kjv_outside.txt:4: expected a chapter header"},
        {"kjv_outside2.txt", "Genesis 1\nIn the beginning.\n", "kjv_outside2.txt:2: text outside a verse"},
        {"kjv_number.txt", "\nGenesis 1\n\n  x In the beginning.\n", "kjv_number.txt:4: expected a verse"},
        {"kjv_empty.txt", "\n\n", "no chapter found"},
    };
    Dataset ds;
    char params[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = write_temp(bad[i].name, bad[i].text, strlen(bad[i].text));
        snprintf(params, sizeof params, "{\"path\": \"%s\"}", path);
        int status = corpus_kjv_make(&ds, params);
        CHECK(status == -1 && error_mentions(bad[i].expected), "%s: %s", bad[i].name,
              spiral_last_error());
        if (status == 0) dataset_free(&ds);
    }
    const char *missing = temp_path("kjv_missing.txt");
    snprintf(params, sizeof params, "{\"path\": \"%s\"}", missing);
    CHECK(corpus_kjv_make(&ds, params) == -1 && error_mentions(missing) && error_mentions("kjv.path"),
          "missing path: %s", spiral_last_error());
    static const struct {
        const char *params, *expected;
    } bad_params[] = {
        {"{\"split_by\": \"verse\"}", "kjv.split_by: expected \"chapter\" or \"book\""},
        {"{\"top_words\": 0}", "kjv.top_words"},
        {"{\"path\": 3}", "kjv.path: expected a string"},
        {"{\"val_fraction\": 2}", "kjv.val_fraction"},
        {"{\"words\": 3}", "kjv.words: unknown field"},
    };
    for (size_t i = 0; i < sizeof bad_params / sizeof bad_params[0]; i++) {
        int status = corpus_kjv_make(&ds, bad_params[i].params);
        CHECK(status == -1 && error_mentions(bad_params[i].expected), "params %s: %s",
              bad_params[i].params, spiral_last_error());
        if (status == 0) dataset_free(&ds);
    }
    /* no program in PATH: the message says what to install */
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("PATH", test_dir, 1);
    int status = corpus_kjv_make(&ds, NULL);
    CHECK(status == -1 && error_mentions("install the Debian packages bible-kjv and bible-kjv-text"),
          "no program: %s", spiral_last_error());
    if (status == 0) dataset_free(&ds);
    if (saved) {
        setenv("PATH", saved, 1);
        free(saved);
    } else {
        unsetenv("PATH");
    }
}

/* ------------------------------------------------------------------------ */
/* kjv from the program                                                     */
/* ------------------------------------------------------------------------ */

/* Chapters per book in the KJV, Genesis .. Revelation. */
static const int kjv_chapters[66] = {
    50, 40, 27, 36, 34, 24, 21, 4,  31, 24, 22, 25, 29, 36, 10, 13, 10, 42, 150, 31, 12, 8,
    66, 52, 5,  48, 12, 14, 3,  9,  1,  4,  7,  3,  3,  3,  2,  14, 4,  28, 16,  24, 21, 28,
    16, 16, 13, 6,  6,  4,  4,  5,  3,  6,  4,  3,  1,  13, 5,  5,  3,  5,  1,   1,  1,  22};

/* The whole Bible from /usr/bin/bible (skipped when it is not installed). */
static void test_kjv_program(void) {
    if (access("/usr/bin/bible", X_OK) != 0) {
        printf("kjv: /usr/bin/bible not installed, skipping the whole-Bible tests\n");
        return;
    }
    Dataset ds;
    double start = seconds_now();
    int status = corpus_kjv_make(&ds, NULL);
    double elapsed = seconds_now() - start;
    CHECK(status == 0, "make: %s", spiral_last_error());
    if (status) return;
#ifdef __SANITIZE_ADDRESS__
    double limit = 30;  /* sanitizers slow everything down */
#else
    double limit = 3;
#endif
    CHECK(elapsed < limit, "made in %.2f s (limit %.0f s)", elapsed, limit);
    CHECK(dataset_validate(&ds) == 0, "validate: %s", spiral_last_error());
    CHECK(ds.n_docs == 1189, "1189 chapters, got %zu", ds.n_docs);

    /* per chapter: book, chapter number and testament constant and in order */
    int l_book = dataset_find_label(&ds, "book"), l_chapter = dataset_find_label(&ds, "chapter");
    int l_testament = dataset_find_label(&ds, "testament"), l_verse = dataset_find_label(&ds, "verse");
    int l_end = dataset_find_label(&ds, "verse_end");
    int chapters_of[66] = {0}, constant = 1, ordered = 1, header_ok = 1, verses_ok = 1;
    int previous_book = 0, previous_chapter = 0;
    size_t verse_ends = 0;
    for (size_t d = 0; d < ds.n_docs; d++) {
        size_t first = ds.doc_start[d], last = ds.doc_start[d + 1];
        int book = ds.labels[l_book].values[first], chapter = ds.labels[l_chapter].values[first];
        for (size_t i = first; i < last; i++)
            constant &= ds.labels[l_book].values[i] == book &&
                        ds.labels[l_chapter].values[i] == chapter &&
                        ds.labels[l_testament].values[i] == (book >= 39);
        ordered &= book == previous_book ? chapter == previous_chapter + 1
                                         : book == previous_book + 1 && chapter == 1;
        previous_book = book;
        previous_chapter = chapter;
        if (book >= 0 && book < 66) chapters_of[book]++;
        /* the header names the chapter; verses count 1, 2, ... (clamped at 63) */
        char header[32];
        snprintf(header, sizeof header, " %d\n", chapter);
        size_t header_len = 0;
        while (ds.tokens[first + header_len] != '\n') header_len++;
        header_len++;
        header_ok &= header_len > strlen(header) &&
                     tokens_equal(&ds, first + header_len - strlen(header), strlen(header), header);
        int expected_verse = 1;
        for (size_t i = first + header_len; i < last; i++) {
            int clamped = expected_verse < 63 ? expected_verse : 63;
            verses_ok &= ds.labels[l_verse].values[i] == clamped;
            verse_ends += ds.labels[l_end].values[i] == 1;
            if (ds.tokens[i] == '\n') {
                verses_ok &= ds.labels[l_end].values[i - 1] == 1;
                expected_verse++;
            }
        }
    }
    int books = 0, chapters_right = 1;
    for (int b = 0; b < 66; b++) {
        books += chapters_of[b] > 0;
        chapters_right &= chapters_of[b] == kjv_chapters[b];
    }
    CHECK(books == 66, "66 books, got %d", books);
    CHECK(chapters_right, "chapters per book as in the KJV");
    CHECK(constant, "book, chapter and testament constant within each chapter");
    CHECK(ordered, "chapters in order Genesis 1 .. Revelation 22");
    CHECK(header_ok, "each chapter starts with its header line");
    CHECK(verses_ok, "verse labels count 1, 2, ... and each verse ends before its newline");
    CHECK(verse_ends == 31102, "31102 verses (verse_end count), got %zu", verse_ends);
    const char *genesis = "Genesis 1\nIn the beginning God created the heaven and the earth.\n";
    size_t verse1_end = strlen(genesis) - 2;  /* its '.' */
    CHECK(tokens_equal(&ds, 0, strlen(genesis), genesis), "Genesis 1:1 opens the text");
    int genesis_ok = 1;
    for (size_t i = 10; i <= verse1_end + 1; i++)
        genesis_ok &= label_at(&ds, "book", i) == 0 && label_at(&ds, "chapter", i) == 1 &&
                      label_at(&ds, "verse", i) == 1 && label_at(&ds, "testament", i) == 0 &&
                      label_at(&ds, "verse_end", i) == (i == verse1_end);
    CHECK(genesis_ok, "Genesis 1:1's bytes are book 0, chapter 1, verse 1, ending on its '.'");
    size_t last = ds.n_tokens - 1;
    CHECK(label_at(&ds, "book", last) == 65 && label_at(&ds, "chapter", last) == 22 &&
              label_at(&ds, "verse", last) == 21 && label_at(&ds, "testament", last) == 1,
          "the last byte is Revelation 22:21");
    size_t psalm119 = 0;
    for (size_t d = 0; d < ds.n_docs; d++)
        if (ds.labels[l_book].values[ds.doc_start[d]] == 18 &&
            ds.labels[l_chapter].values[ds.doc_start[d]] == 119)
            psalm119 = ds.doc_start[d + 1] - 2;
    CHECK(psalm119 && label_at(&ds, "verse", psalm119) == 63, "Psalm 119:176 clamps to 63");
    CHECK(ds.labels[l_chapter].n_classes == 151 && ds.labels[l_verse].n_classes == 64,
          "chapter 151 classes, verse 64");
    /* splits by chapter: round(0.05 * 1189) = 59 val and 59 test chapters */
    size_t docs[SPLIT_COUNT] = {0};
    for (size_t d = 0; d < ds.n_docs; d++) docs[ds.doc_split[d]]++;
    CHECK(docs[SPLIT_VAL] == 59 && docs[SPLIT_TEST] == 59 && docs[SPLIT_TRAIN] == 1071,
          "chapters per split %zu/%zu/%zu", docs[0], docs[1], docs[2]);
    /* the most frequent train word labels all its bytes */
    json_t *p = json_loads(ds.params_json, 0, NULL);
    const char *top = p ? json_string_value(json_array_get(json_object_get(p, "words"), 0)) : NULL;
    CHECK(top && json_array_size(json_object_get(p, "words")) == 64 &&
              json_integer_value(json_object_get(p, "n_verses")) == 31102,
          "params_json words and n_verses");
    if (top) {
        char pattern[64];
        snprintf(pattern, sizeof pattern, " %s ", top);
        size_t at = find_tokens(&ds, pattern);
        CHECK(at != SIZE_MAX && label_at(&ds, "word", at + 1) == 0 &&
                  label_at(&ds, "word", at + strlen(top)) == 0 && label_at(&ds, "word", at) == -1,
              "the top word '%s' is word 0", top);
        printf("kjv: the 8 most frequent train words:");
        for (int w = 0; w < 8; w++)
            printf(" %s", json_string_value(json_array_get(json_object_get(p, "words"), w)));
        printf("\n");
    }
    json_decref(p);

    /* the numbers for the README */
    printf("kjv: %zu bytes in %zu chapters, made in %.2f s\n", ds.n_tokens, ds.n_docs, elapsed);
    for (int s = SPLIT_TRAIN; s <= SPLIT_TEST; s++)
        printf("kjv: %-5s %8zu bytes %5zu chapters\n", dataset_split_name(s),
               dataset_split_tokens(&ds, s), docs[s]);
    double losses[4];
    start = seconds_now();
    for (int order = 1; order <= 3; order++)
        losses[order] = ngram_loss(&ds, order, SPLIT_TRAIN, SPLIT_VAL, 0.01);
    double ngram_time = seconds_now() - start;
    printf("kjv: val loss (nats/byte, trained on train, add-0.01): unigram %.4f, bigram %.4f, "
           "trigram %.4f (%.2f s); train unigram entropy %.4f\n",
           losses[1], losses[2], losses[3], ngram_time, unigram_entropy(&ds, SPLIT_TRAIN));
    CHECK(losses[1] > losses[2] && losses[2] > losses[3] && losses[3] > 1.0 && losses[1] < log(256),
          "n-gram losses decrease with the order");

    /* the 80-column wrapped output reads to the same bytes */
    const char *wrapped = temp_path("kjv_wrapped.txt");
    char command[512], params[512];
    snprintf(command, sizeof command, "/usr/bin/bible -l80 Gen1:1-Rev22:21 > '%s'", wrapped);
    CHECK(system(command) == 0, "%s", command);
    snprintf(params, sizeof params, "{\"path\": \"%s\"}", wrapped);
    Dataset w;
    status = corpus_kjv_make(&w, params);
    CHECK(status == 0, "wrapped: %s", spiral_last_error());
    if (status == 0) {
        int same = w.n_tokens == ds.n_tokens && w.n_docs == ds.n_docs &&
                   !memcmp(w.tokens, ds.tokens, ds.n_tokens * sizeof *ds.tokens);
        for (int l = 0; same && l < ds.n_labels; l++)
            same = !memcmp(w.labels[l].values, ds.labels[l].values,
                           ds.n_tokens * sizeof *ds.labels[l].values);
        CHECK(same, "wrapped output gives the same tokens and labels");
        dataset_free(&w);
    }
    dataset_free(&ds);

    /* whole books held out */
    status = corpus_kjv_make(&ds, "{\"split_by\": \"book\"}");
    CHECK(status == 0, "split_by book: %s", spiral_last_error());
    if (status) return;
    int book_split[66], whole = 1, held_books[SPLIT_COUNT] = {0};
    for (int b = 0; b < 66; b++) book_split[b] = -1;
    for (size_t d = 0; d < ds.n_docs; d++) {
        int b = ds.labels[l_book].values[ds.doc_start[d]];
        if (book_split[b] < 0) {
            book_split[b] = ds.doc_split[d];
            held_books[ds.doc_split[d]]++;
        }
        whole &= book_split[b] == ds.doc_split[d];
    }
    CHECK(whole, "every book lies in one split");
    CHECK(held_books[SPLIT_VAL] == 3 && held_books[SPLIT_TEST] == 3,
          "round(0.05 * 66) = 3 val and 3 test books, got %d and %d", held_books[SPLIT_VAL],
          held_books[SPLIT_TEST]);
    printf("kjv split_by book: val books");
    for (int b = 0; b < 66; b++)
        if (book_split[b] == SPLIT_VAL) printf(" %d", b);
    printf(", test books");
    for (int b = 0; b < 66; b++)
        if (book_split[b] == SPLIT_TEST) printf(" %d", b);
    printf("; val %zu bytes, bigram val loss %.4f\n", dataset_split_tokens(&ds, SPLIT_VAL),
           ngram_loss(&ds, 2, SPLIT_TRAIN, SPLIT_VAL, 0.01));
    dataset_free(&ds);
}

/* ------------------------------------------------------------------------ */
/* n-grams                                                                  */
/* ------------------------------------------------------------------------ */

/* The tiny hand-computed case: train stream 0 1 0 1 2 (two documents
 * 0 1 0 | 1 2), eval stream 0 1 0 2 (documents 0 1 | 0 2), add-k 0.5 over V
 * tokens. Counts: unigram 0:2 1:2 2:1 (N 5); bigram contexts 0:2 1:2 with
 * 01:2 10:1 12:1; trigram contexts 01:2 10:1 with 010:1 012:1 101:1.
 *   unigram: p(0) p(1) p(0) p(2)  = (2.5, 2.5, 2.5, 1.5) / (5 + 0.5 V)
 *   bigram:  p(0), p(1|0) = 2.5/(2+.5V), p(0|1) = 1.5/(2+.5V), p(2|0) = .5/(2+.5V)
 *   trigram: p(0), p(1|0), p(0|01) = 1.5/(2+.5V), p(2|10) = .5/(1+.5V) */
static void test_ngram_exact(void) {
    static const uint16_t train_a[] = {0, 1, 0}, train_b[] = {1, 2}, eval_a[] = {0, 1},
                          eval_b[] = {0, 2};
    const uint16_t *docs[4] = {train_a, eval_a, train_b, eval_b};
    const size_t lengths[4] = {3, 2, 2, 2};
    const int splits[4] = {SPLIT_TRAIN, SPLIT_VAL, SPLIT_TRAIN, SPLIT_VAL};
    /* V = 3: dense tables; 300: dense bigram, hashed trigram; 65536: hashed */
    static const int vocab_sizes[3] = {3, 300, 65536};
    for (int v = 0; v < 3; v++) {
        double V = vocab_sizes[v], k = 0.5;
        Dataset ds;
        make_docs(&ds, vocab_sizes[v], 4, docs, lengths, splits);
        double p0 = 2.5 / (5 + k * V);
        double unigram = -(3 * log(p0) + log(1.5 / (5 + k * V))) / 4;
        double bigram = -(log(p0) + log(2.5 / (2 + k * V)) + log(1.5 / (2 + k * V)) +
                          log(0.5 / (2 + k * V))) / 4;
        double trigram = -(log(p0) + log(2.5 / (2 + k * V)) + log(1.5 / (2 + k * V)) +
                           log(0.5 / (1 + k * V))) / 4;
        double expected[4] = {0, unigram, bigram, trigram};
        for (int order = 1; order <= 3; order++) {
            double got = ngram_loss(&ds, order, SPLIT_TRAIN, SPLIT_VAL, k);
            CHECK(fabs(got - expected[order]) < 1e-12, "V %d order %d: %.17g, expected %.17g",
                  vocab_sizes[v], order, got, expected[order]);
        }
        /* order 4: the last eval token has the context 0 1 0, which occurs
         * once in train (followed by 1): p(2 | 0 1 0) = (0 + .5)/(1 + .5V) */
        double fourgram = -(log(p0) + log(2.5 / (2 + k * V)) + log(1.5 / (2 + k * V)) +
                            log(0.5 / (1 + k * V))) / 4;
        double got = ngram_loss(&ds, 4, SPLIT_TRAIN, SPLIT_VAL, k);
        CHECK(fabs(got - fourgram) < 1e-12, "V %d order 4: %.17g, expected %.17g",
              vocab_sizes[v], got, fourgram);
        /* unigram entropy of the train split: counts 2 2 1 */
        double h = -(2 * 0.4 * log(0.4) + 0.2 * log(0.2));
        CHECK(fabs(unigram_entropy(&ds, SPLIT_TRAIN) - h) < 1e-12, "unigram entropy");
        /* the ML unigram on its own split equals the entropy (k = 0) */
        CHECK(fabs(ngram_loss(&ds, 1, SPLIT_TRAIN, SPLIT_TRAIN, 0) - h) < 1e-12,
              "unigram loss with k 0 on train = entropy");
        /* k = 0: the unseen bigram 0 2 costs infinity */
        CHECK(isinf(ngram_loss(&ds, 2, SPLIT_TRAIN, SPLIT_VAL, 0)), "k 0: unseen bigram is +inf");
        dataset_free(&ds);
    }
}

/* Brute force: -log p of eval[i] under the order-m add-k model of train. */
static double brute_nll(const uint16_t *train, size_t n_train, const uint16_t *eval, size_t i,
                        int order, double k, int V) {
    int m = (size_t)order <= i + 1 ? order : (int)i + 1;
    const uint16_t *gram = eval + i + 1 - m;
    double joint = 0, context = 0;
    for (size_t j = (size_t)m - 1; j < n_train; j++) {
        const uint16_t *g = train + j + 1 - m;
        if (memcmp(g, gram, (size_t)(m - 1) * sizeof *g)) continue;
        context++;
        joint += g[m - 1] == gram[m - 1];
    }
    return -log((joint + k) / (context + k * V));
}

/* Random streams: ngram_loss equals a brute-force counter for orders 1..4,
 * with dense tables (V 5) and hash maps (V 3000, tokens from a few values). */
static void test_ngram_brute_force(void) {
    static const int vocab_sizes[2] = {5, 3000};
    rng_state = 99;
    for (int v = 0; v < 2; v++) {
        int V = vocab_sizes[v];
        uint16_t docs_tokens[6][300];
        const uint16_t *docs[6];
        size_t lengths[6];
        int splits[6];
        for (int d = 0; d < 6; d++) {
            lengths[d] = 50 + rng_next() % 250;
            for (size_t i = 0; i < lengths[d]; i++)
                docs_tokens[d][i] = (uint16_t)(V == 5 ? rng_next() % 5 : 2990 + rng_next() % 6);
            docs[d] = docs_tokens[d];
            splits[d] = d % 3 == 2 ? SPLIT_TEST : SPLIT_TRAIN;
        }
        Dataset ds;
        make_docs(&ds, V, 6, docs, lengths, splits);
        uint16_t train[1800], eval[1800];
        size_t n_train = 0, n_eval = 0;
        for (int d = 0; d < 6; d++)
            for (size_t i = 0; i < lengths[d]; i++) {
                if (splits[d] == SPLIT_TRAIN) train[n_train++] = docs[d][i];
                else eval[n_eval++] = docs[d][i];
            }
        for (int order = 1; order <= 4; order++) {
            double k = order == 1 ? 0.3 : 0.01;
            double sum = 0;
            for (size_t i = 0; i < n_eval; i++) sum += brute_nll(train, n_train, eval, i, order, k, V);
            double expected = sum / n_eval, got = ngram_loss(&ds, order, SPLIT_TRAIN, SPLIT_TEST, k);
            CHECK(fabs(got - expected) < 1e-12, "V %d order %d: %.17g, brute force %.17g", V, order,
                  got, expected);
        }
        dataset_free(&ds);
    }
}

/* A cycle a b c: the bigram is certain after the first token; uniform
 * i.i.d. tokens: the unigram loss is log V. */
static void test_ngram_limits(void) {
    uint16_t cycle[300];
    for (int i = 0; i < 300; i++) cycle[i] = (uint16_t)('a' + i % 3);
    const uint16_t *docs[2] = {cycle, cycle};
    const size_t lengths[2] = {300, 300};
    const int splits[2] = {SPLIT_TRAIN, SPLIT_VAL};
    Dataset ds;
    make_docs(&ds, 256, 2, docs, lengths, splits);
    /* train counts: a->b 100, b->c 100, c->a 99; contexts a 100, b 100, c 99;
     * eval: 'a' by the unigram (100 + k)/(300 + 256 k), then 100 ab, 100 bc,
     * 99 ca */
    double k = 1e-9, V = 256;
    double expected = -(log((100 + k) / (300 + k * V)) + 200 * log((100 + k) / (100 + k * V)) +
                        99 * log((99 + k) / (99 + k * V))) / 300;
    double bigram = ngram_loss(&ds, 2, SPLIT_TRAIN, SPLIT_VAL, k);
    CHECK(fabs(bigram - expected) < 1e-12, "cycle bigram %.17g, expected %.17g", bigram, expected);
    CHECK(bigram < log(3) / 300 + 1e-6, "cycle bigram loss %.3g -> 0 (only the first token costs)",
          bigram);
    CHECK(ngram_loss(&ds, 3, SPLIT_TRAIN, SPLIT_VAL, k) < bigram + 1e-6, "cycle trigram <= bigram");
    CHECK(fabs(ngram_loss(&ds, 1, SPLIT_TRAIN, SPLIT_VAL, k) - log(3)) < 1e-6, "cycle unigram log 3");
    dataset_free(&ds);

    static uint16_t uniform[2][200000];
    rng_state = 5;
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 200000; i++) uniform[d][i] = (uint16_t)(rng_next() % 16);
    const uint16_t *udocs[2] = {uniform[0], uniform[1]};
    const size_t ulengths[2] = {200000, 200000};
    make_docs(&ds, 16, 2, udocs, ulengths, splits);
    double unigram = ngram_loss(&ds, 1, SPLIT_TRAIN, SPLIT_VAL, 1);
    CHECK(fabs(unigram - log(16)) < 1e-3, "uniform unigram %.6f, log 16 = %.6f", unigram, log(16));
    CHECK(fabs(unigram_entropy(&ds, SPLIT_VAL) - log(16)) < 1e-3, "uniform entropy %.6f",
          unigram_entropy(&ds, SPLIT_VAL));
    double bigram_uniform = ngram_loss(&ds, 2, SPLIT_TRAIN, SPLIT_VAL, 1);
    CHECK(fabs(bigram_uniform - log(16)) < 3e-3, "uniform bigram %.6f, log 16 = %.6f",
          bigram_uniform, log(16));
    dataset_free(&ds);
}

/* Bad arguments give NaN and a message. */
static void test_ngram_errors(void) {
    static const uint16_t tokens[] = {1, 2, 3};
    const uint16_t *docs[1] = {tokens};
    const size_t lengths[1] = {3};
    const int splits[1] = {SPLIT_TRAIN};
    Dataset ds;
    make_docs(&ds, 4, 1, docs, lengths, splits);
    CHECK(isnan(ngram_loss(&ds, 0, SPLIT_TRAIN, SPLIT_TRAIN, 1)) && error_mentions("order 0"),
          "order 0: %s", spiral_last_error());
    CHECK(isnan(ngram_loss(&ds, 5, SPLIT_TRAIN, SPLIT_TRAIN, 1)) && error_mentions("order 5"),
          "order 5: %s", spiral_last_error());
    CHECK(isnan(ngram_loss(&ds, 2, SPLIT_TRAIN, SPLIT_VAL, 1)) && error_mentions("val split is empty"),
          "empty eval: %s", spiral_last_error());
    CHECK(isnan(ngram_loss(&ds, 2, SPLIT_TEST, SPLIT_TRAIN, 1)) && error_mentions("test split is empty"),
          "empty train: %s", spiral_last_error());
    CHECK(isnan(ngram_loss(&ds, 2, SPLIT_TRAIN, 7, 1)) && error_mentions("eval_split 7"),
          "bad split: %s", spiral_last_error());
    CHECK(isnan(ngram_loss(&ds, 2, SPLIT_TRAIN, SPLIT_TRAIN, -1)) && error_mentions("add_k"),
          "negative k: %s", spiral_last_error());
    CHECK(isnan(unigram_entropy(&ds, SPLIT_VAL)) && error_mentions("val split is empty"),
          "empty entropy: %s", spiral_last_error());
    /* an eval stream shorter than the order: only lower orders are used */
    double got = ngram_loss(&ds, 4, SPLIT_TRAIN, SPLIT_TRAIN, 1);
    double expected = -(log(2.0 / 7) + log(2.0 / 5) + log(2.0 / 5)) / 3;
    CHECK(fabs(got - expected) < 1e-12, "short stream order 4: %.17g, expected %.17g", got,
          expected);
    dataset_free(&ds);
}

int main(int argc, char **argv) {
    snprintf(test_dir, sizeof test_dir, "/tmp/spiral_test_corpus_XXXXXX");
    if (!mkdtemp(test_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_text_labels();
    test_text_errors();
    test_text_splits();
    test_kjv_sample();
    test_kjv_errors();
    test_kjv_program();
    test_ngram_exact();
    test_ngram_brute_force();
    test_ngram_limits();
    test_ngram_errors();
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", test_dir);
    if (system(command) != 0) fprintf(stderr, "test_corpus: could not remove %s\n", test_dir);
    return test_summary(argv[0]);
}
