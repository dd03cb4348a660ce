/*
 * corpus_text.c: the "text" and "kjv" dataset families (see corpus_text.h).
 *
 * Both read bytes, decide where documents start, assign splits by document
 * and compute labels one document at a time (a word never crosses a document
 * start, because documents start at the beginning of a line), so the only
 * whole-corpus arrays are the bytes themselves. The KJV is first rendered
 * into a byte buffer with, per byte, its verse number and verse-end flag;
 * the "word" label needs the word counts of the train split, so it is
 * computed after the splits.
 *
 * Parameters come as a JSON object checked against a small table of fields
 * (unknown fields, wrong types and out-of-range values are errors naming
 * "<family>.<field>"), and the resolved parameters plus the corpus sizes are
 * written back to params_json.
 */
#include "mix.h"
#include "corpus_text.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "error.h"
#include "fileio.h"
#include "jsontext.h"

enum {
    PARAM_STRING_CAP = 4096,  /* longest string parameter (a path) + 1 */
    WORD_POS_CLASSES = 16,
    VERSE_CLASSES = 64,       /* verse numbers 1 .. 63 (63 = 63 or later) */
    CHAPTER_CLASSES = 151,    /* chapter numbers 1 .. 150 */
    KJV_BOOKS = 66,
    KJV_FIRST_NEW_TESTAMENT_BOOK = 39  /* Matthew */
};

/* The arguments given to the program `bible` for the whole text, unwrapped. */
static const char *const bible_arguments = "-l100000 Gen1:1-Rev22:21";

/* The 66 book names exactly as `bible` prints them in chapter headers. */
static const char *const kjv_books[KJV_BOOKS] = {
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth",
    "1 Samuel", "2 Samuel", "1 Kings", "2 Kings", "1 Chronicles", "2 Chronicles", "Ezra",
    "Nehemiah", "Esther", "Job", "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon",
    "Isaiah", "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos",
    "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai", "Zechariah",
    "Malachi", "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "1 Corinthians",
    "2 Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians", "1 Thessalonians",
    "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus", "Philemon", "Hebrews", "James",
    "1 Peter", "2 Peter", "1 John", "2 John", "3 John", "Jude", "Revelation"};

/* ---------------------------------------------------------------- params */

typedef enum { PARAM_INT, PARAM_REAL, PARAM_STRING } ParamKind;

/* One accepted parameter: its JSON name, type, range and where it goes (an
 * int, a double, or a char[PARAM_STRING_CAP]). */
typedef struct {
    const char *name;
    ParamKind kind;
    double min, max;
    void *value;
} ParamField;


/* Reads one field's value; errors name "<family>.<field>". */
static int parse_field(const ParamField *field, const json_t *value, const char *family) {
    if (field->kind == PARAM_STRING) {
        if (!json_is_string(value))
            return spiral_error("%s.%s: expected a string, got %s", family, field->name,
                                json_type_name(value));
        if (json_string_length(value) >= PARAM_STRING_CAP)
            return spiral_error("%s.%s: longer than %d bytes", family, field->name,
                                PARAM_STRING_CAP - 1);
        snprintf(field->value, PARAM_STRING_CAP, "%s", json_string_value(value));
        return 0;
    }
    if (field->kind == PARAM_INT && !json_is_integer(value))
        return spiral_error("%s.%s: expected an integer in %.0f .. %.0f, got %s", family,
                            field->name, field->min, field->max, json_type_name(value));
    if (!json_is_number(value))
        return spiral_error("%s.%s: expected a number in %g .. %g, got %s", family, field->name,
                            field->min, field->max, json_type_name(value));
    double v = json_number_value(value);
    if (!(v >= field->min && v <= field->max)) {
        if (field->kind == PARAM_INT)
            return spiral_error("%s.%s: expected an integer in %.0f .. %.0f, got %.0f", family,
                                field->name, field->min, field->max, v);
        return spiral_error("%s.%s: expected a number in %g .. %g, got %g", family, field->name,
                            field->min, field->max, v);
    }
    if (field->kind == PARAM_INT)
        *(int *)field->value = (int)v;
    else
        *(double *)field->value = v;
    return 0;
}

/* Parses params_json (NULL or "" = all defaults) into the fields' values.
 * Unknown fields are errors listing the known ones. Returns 0 or -1. */
static int parse_params(const char *json_text, const char *family, const ParamField *fields,
                        int n_fields) {
    if (!json_text || !*json_text) return 0;
    json_error_t syntax;
    json_t *root = json_loads(json_text, JSON_REJECT_DUPLICATES, &syntax);
    if (!root)
        return spiral_error("%s params: invalid JSON at line %d, column %d: %s", family,
                            syntax.line, syntax.column, syntax.text);
    int status = 0;
    if (!json_is_object(root)) {
        status = spiral_error("%s params: expected a JSON object, got %s", family,
                              json_type_name(root));
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (status) break;
        const ParamField *field = NULL;
        for (int f = 0; f < n_fields; f++)
            if (!strcmp(fields[f].name, key)) field = &fields[f];
        if (field) {
            status = parse_field(field, value, family);
            continue;
        }
        char known[512] = "";
        for (int f = 0; f < n_fields; f++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", f ? ", " : "",
                     fields[f].name);
        status = spiral_error("%s.%s: unknown field (known: %s)", family, key, known);
    }
    json_decref(root);
    return status;
}

/* Checks that the two split fractions fit together. */
static int check_fractions(const char *family, double val_fraction, double test_fraction) {
    if (val_fraction + test_fraction > 1)
        return spiral_error("%s.val_fraction + %s.test_fraction: %g + %g exceeds 1", family,
                            family, val_fraction, test_fraction);
    return 0;
}

/* ---------------------------------------------------------------- splits */


typedef struct {
    uint64_t hash;
    size_t index;
} SplitKey;

/* Orders split keys by hash, then index. */
static int compare_split_keys(const void *a, const void *b) {
    const SplitKey *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Assigns each of n units a split: ordered by hash(seed, index), the first
 * round(val_fraction n) go to val, the next round(test_fraction n) to test,
 * the rest to train. Returns 0 or -1 (out of memory). */
static int assign_splits(size_t n, double val_fraction, double test_fraction, int seed,
                         uint8_t *split) {
    SplitKey *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) return spiral_error("out of memory assigning %zu documents to splits", n);
    uint64_t salt = mix64((uint64_t)seed + 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i < n; i++) keys[i] = (SplitKey){mix64(salt ^ (uint64_t)i), i};
    qsort(keys, n, sizeof *keys, compare_split_keys);
    size_t n_val = (size_t)llround(val_fraction * (double)n);
    size_t n_test = (size_t)llround(test_fraction * (double)n);
    if (n_val > n) n_val = n;
    if (n_test > n - n_val) n_test = n - n_val;
    for (size_t r = 0; r < n; r++)
        split[keys[r].index] = r < n_val ? SPLIT_VAL : r < n_val + n_test ? SPLIT_TEST : SPLIT_TRAIN;
    free(keys);
    return 0;
}

/* ---------------------------------------------------------------- bytes and words */

/* 1 for the bytes words are made of: ASCII letters and digits, bytes >= 0x80. */
static int is_word_byte(unsigned b) {
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b >= 0x80;
}

/* 1 for the whitespace of char_class 2. */
static int is_space_byte(unsigned b) {
    return b == ' ' || b == '\n' || b == '\t' || b == '\r' || b == '\v' || b == '\f';
}

/* The char_class label of a byte (see corpus_text.h). */
static int char_class(unsigned b) {
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) return 0;
    if (b >= '0' && b <= '9') return 1;
    if (is_space_byte(b)) return 2;
    if (b > ' ' && b < 0x7f) return 3;
    return 4;
}

/* 1 if byte i of s[0 .. n) belongs to a word: a word byte, or an apostrophe
 * or hyphen between two word bytes. */
static int in_word(const uint16_t *s, size_t n, size_t i) {
    if (is_word_byte(s[i])) return 1;
    return (s[i] == '\'' || s[i] == '-') && i > 0 && i + 1 < n && is_word_byte(s[i - 1]) &&
           is_word_byte(s[i + 1]);
}

/* The char_class, word_pos and word_end labels of s[0 .. n), each (n). */
static void label_words(const uint16_t *s, size_t n, int32_t *char_cls, int32_t *word_pos,
                        int32_t *word_end) {
    size_t run = 0;  /* bytes of the current word so far */
    int here = n ? in_word(s, n, 0) : 0;
    for (size_t i = 0; i < n; i++) {
        int next = i + 1 < n ? in_word(s, n, i + 1) : 0;
        char_cls[i] = char_class(s[i]);
        if (here) {
            word_pos[i] = run < WORD_POS_CLASSES - 1 ? (int32_t)run : WORD_POS_CLASSES - 1;
            word_end[i] = !next;
            run++;
        } else {
            word_pos[i] = -1;
            word_end[i] = -1;
            run = 0;
        }
        here = next;
    }
}

/* Adds the per-split document and byte counts to a params object. */
static int add_split_sizes(json_t *params, const Dataset *ds) {
    json_t *docs = json_object(), *bytes = json_object();
    if (!docs || !bytes) {
        json_decref(docs);
        json_decref(bytes);
        return -1;
    }
    for (int s = SPLIT_TRAIN; s <= SPLIT_TEST; s++) {
        size_t n_docs = 0;
        for (size_t d = 0; d < ds->n_docs; d++) n_docs += ds->doc_split[d] == s;
        json_object_set_new(docs, dataset_split_name(s), json_integer((json_int_t)n_docs));
        json_object_set_new(bytes, dataset_split_name(s),
                            json_integer((json_int_t)dataset_split_tokens(ds, s)));
    }
    json_object_set_new(params, "split_docs", docs);
    json_object_set_new(params, "split_bytes", bytes);
    return 0;
}

/* Serializes params into ds->params_json (takes the reference). */
static int set_params_json(Dataset *ds, json_t *params) {
    if (params && add_split_sizes(params, ds) == 0)
        ds->params_json = json_dumps(params, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(params);
    if (!ds->params_json) return spiral_error("%s: out of memory writing params_json", ds->family);
    return 0;
}

/* ---------------------------------------------------------------- text */

/* A growable array of offsets. */
typedef struct {
    size_t *items;
    size_t n, capacity;
} OffsetList;

/* Appends one offset. Returns 0 or -1. */
static int offsets_push(OffsetList *list, size_t value) {
    if (list->n == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 256;
        size_t *items = realloc(list->items, capacity * sizeof *items);
        if (!items) return -1;
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->n++] = value;
    return 0;
}

/* Cuts s[0 .. n) into documents (corpus_text.h): starts gets each
 * document's first offset, then n. *n_paragraphs gets the paragraph count.
 * Returns 0 or -1 (out of memory). */
static int text_documents(const uint16_t *s, size_t n, size_t min_doc_bytes, OffsetList *starts,
                          size_t *n_paragraphs) {
    size_t paragraphs = 0;
    int previous_blank = 1;  /* the file starts as if after a blank line */
    if (offsets_push(starts, 0)) return -1;
    for (size_t i = 0; i < n;) {
        size_t end = i;
        int blank = 1;
        while (end < n && s[end] != '\n') {
            if (!(s[end] == ' ' || s[end] == '\t' || s[end] == '\r' || s[end] == '\v' ||
                  s[end] == '\f'))
                blank = 0;
            end++;
        }
        if (!blank && previous_blank) {
            /* a paragraph starts at i; the first one stays with any blank
             * lines before it */
            size_t doc_start = starts->items[starts->n - 1];
            if (paragraphs > 0 && i - doc_start >= min_doc_bytes && offsets_push(starts, i))
                return -1;
            paragraphs++;
        }
        previous_blank = blank;
        i = end + 1;
    }
    /* a short (or 1-byte) remainder joins the document before it */
    size_t last = starts->items[starts->n - 1];
    if (starts->n > 1 && (n - last < min_doc_bytes || n - last < 2)) starts->n--;
    *n_paragraphs = paragraphs;
    return offsets_push(starts, n);
}

int corpus_text_make(Dataset *out, const char *path, const char *params_json) {
    memset(out, 0, sizeof *out);
    int min_doc_bytes = 2048, seed = 0;
    double val_fraction = 0.05, test_fraction = 0.05;
    const ParamField fields[] = {
        {"min_doc_bytes", PARAM_INT, 1, 2147483647.0, &min_doc_bytes},
        {"val_fraction", PARAM_REAL, 0, 1, &val_fraction},
        {"test_fraction", PARAM_REAL, 0, 1, &test_fraction},
        {"seed", PARAM_INT, 0, 2147483647.0, &seed},
    };
    if (parse_params(params_json, "text", fields, 4) ||
        check_fractions("text", val_fraction, test_fraction))
        return -1;
    if (!path) return spiral_error("text: no file path given");

    char *raw;
    size_t n;
    if (file_read_all(path, &raw, &n)) return spiral_error_prefix("text");
    if (n == 0) {
        free(raw);
        return spiral_error("text: %s: empty file", path);
    }
    int status = -1;
    uint16_t *bytes = malloc(n * sizeof *bytes);
    OffsetList starts = {0};
    uint8_t *splits = NULL;
    int32_t *labels = NULL;
    size_t n_paragraphs = 0;
    if (!bytes) {
        spiral_error("text: %s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++) bytes[i] = (unsigned char)raw[i];
    free(raw);
    raw = NULL;

    if (text_documents(bytes, n, (size_t)min_doc_bytes, &starts, &n_paragraphs)) {
        spiral_error("text: %s: out of memory", path);
        goto done;
    }
    size_t n_docs = starts.n - 1;
    if (n_paragraphs == 0 || n < 2) {
        spiral_error("text: %s: no document of >= 2 tokens (%zu bytes, %s)", path, n,
                     n_paragraphs ? "one byte" : "only blank lines");
        goto done;
    }
    splits = malloc(n_docs);
    if (!splits) {
        spiral_error("text: %s: out of memory", path);
        goto done;
    }
    if (assign_splits(n_docs, val_fraction, test_fraction, seed, splits)) goto done;

    static const char *const names[4] = {"char_class", "word_pos", "word_end", "line_start"};
    static const int n_classes[4] = {5, WORD_POS_CLASSES, 2, 2};
    if (dataset_init(out, "text", 256, 4, names, n_classes, 0)) goto done;
    size_t longest = 0;
    for (size_t d = 0; d < n_docs; d++)
        if (starts.items[d + 1] - starts.items[d] > longest)
            longest = starts.items[d + 1] - starts.items[d];
    labels = malloc(4 * longest * sizeof *labels);  /* (4, len) for one document */
    if (!labels) {
        spiral_error("text: %s: out of memory", path);
        goto done;
    }
    for (size_t d = 0; d < n_docs; d++) {
        size_t first = starts.items[d], len = starts.items[d + 1] - first;
        const uint16_t *doc = bytes + first;
        label_words(doc, len, labels, labels + len, labels + 2 * len);
        for (size_t i = 0; i < len; i++)
            labels[3 * len + i] = first + i == 0 || bytes[first + i - 1] == '\n';
        if (dataset_append(out, doc, len, labels, NULL, splits[d])) goto done;
    }

    json_t *params = json_object();
    if (params) {
        json_object_set_new(params, "path", json_string(path));
        json_object_set_new(params, "min_doc_bytes", json_integer(min_doc_bytes));
        json_object_set_new(params, "val_fraction", json_real(val_fraction));
        json_object_set_new(params, "test_fraction", json_real(test_fraction));
        json_object_set_new(params, "seed", json_integer(seed));
        json_object_set_new(params, "n_bytes", json_integer((json_int_t)n));
        json_object_set_new(params, "n_paragraphs", json_integer((json_int_t)n_paragraphs));
        json_object_set_new(params, "n_docs", json_integer((json_int_t)n_docs));
    }
    status = set_params_json(out, params);
done:
    if (status) dataset_free(out);
    free(raw);
    free(bytes);
    free(starts.items);
    free(splits);
    free(labels);
    return status;
}

/* ---------------------------------------------------------------- kjv */

/* The rendered Bible: bytes with per-byte verse labels, and chapters. */
typedef struct {
    uint16_t *text;        /* (n) */
    int8_t *verse;         /* (n) verse label, -1 on header lines */
    int8_t *verse_end;     /* (n) verse_end label, -1 on header lines */
    size_t n, capacity;
    OffsetList chapter_start;  /* first byte of each chapter (its header) */
    int *chapter_book;     /* (n_chapters) 0 .. 65 */
    int *chapter_number;   /* (n_chapters) 1, 2, ... */
    size_t chapter_capacity;
    size_t n_verses;
    int verse_open;        /* a verse has been started and not closed */
    int verse_number;
    size_t verse_text_start;
} KjvText;

/* Frees the rendered text and its chapter table. */
static void kjv_text_free(KjvText *k) {
    free(k->text);
    free(k->verse);
    free(k->verse_end);
    free(k->chapter_start.items);
    free(k->chapter_book);
    free(k->chapter_number);
    memset(k, 0, sizeof *k);
}

/* Appends one byte with its verse labels. Returns 0 or -1. */
static int kjv_emit(KjvText *k, unsigned byte, int verse, int verse_end) {
    if (k->n == k->capacity) {
        size_t capacity = k->capacity ? 2 * k->capacity : 1 << 20;
        uint16_t *text = realloc(k->text, capacity * sizeof *text);
        if (text) k->text = text;
        int8_t *verses = realloc(k->verse, capacity);
        if (verses) k->verse = verses;
        int8_t *ends = realloc(k->verse_end, capacity);
        if (ends) k->verse_end = ends;
        if (!text || !verses || !ends) return -1;
        k->capacity = capacity;
    }
    k->text[k->n] = (uint16_t)byte;
    k->verse[k->n] = (int8_t)verse;
    k->verse_end[k->n] = (int8_t)verse_end;
    k->n++;
    return 0;
}

/* Ends the open verse, if any: marks the last byte of its text and appends
 * its newline. Returns 0 or -1. */
static int kjv_close_verse(KjvText *k) {
    if (!k->verse_open) return 0;
    int label = k->verse_number < VERSE_CLASSES - 1 ? k->verse_number : VERSE_CLASSES - 1;
    int empty = k->n == k->verse_text_start;
    if (!empty) k->verse_end[k->n - 1] = 1;
    k->verse_open = 0;
    return kjv_emit(k, '\n', label, empty);
}

/* Appends verse text, collapsing runs of spaces (also across a wrapped
 * line: the caller passes the joining space first) and dropping spaces at
 * the start of the verse. Returns 0 or -1. */
static int kjv_emit_verse_text(KjvText *k, const char *text, size_t len) {
    int label = k->verse_number < VERSE_CLASSES - 1 ? k->verse_number : VERSE_CLASSES - 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' && (k->n == k->verse_text_start || k->text[k->n - 1] == ' ')) continue;
        if (kjv_emit(k, c, label, 0)) return -1;
    }
    return 0;
}

/* Starts a chapter: records it and appends its header line. Returns 0 or -1. */
static int kjv_start_chapter(KjvText *k, int book, int chapter) {
    if (kjv_close_verse(k)) return -1;
    size_t c = k->chapter_start.n;
    if (c == k->chapter_capacity) {
        size_t capacity = k->chapter_capacity ? 2 * k->chapter_capacity : 2048;
        int *books = realloc(k->chapter_book, capacity * sizeof *books);
        if (books) k->chapter_book = books;
        int *numbers = realloc(k->chapter_number, capacity * sizeof *numbers);
        if (numbers) k->chapter_number = numbers;
        if (!books || !numbers) return -1;
        k->chapter_capacity = capacity;
    }
    if (offsets_push(&k->chapter_start, k->n)) return -1;
    k->chapter_book[c] = book;
    k->chapter_number[c] = chapter;
    char header[64];
    int len = snprintf(header, sizeof header, "%s %d\n", kjv_books[book], chapter);
    for (int i = 0; i < len; i++)
        if (kjv_emit(k, (unsigned char)header[i], -1, -1)) return -1;
    return 0;
}

/* Parses a decimal number of 1 .. 6 digits from s[0 .. len) entirely. */
static int parse_number(const char *s, size_t len, int *value) {
    if (len == 0 || len > 6) return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = 10 * v + (s[i] - '0');
    }
    *value = v;
    return 0;
}

/* Renders the output of `bible` (raw[0 .. n)) into k. `source` names it in
 * errors ("<source>:<line>: ..."). Returns 0 or -1. */
static int kjv_parse(const char *raw, size_t n, const char *source, KjvText *k) {
    size_t line_number = 0;
    int after_blank = 1;
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && raw[end] != '\n') end++;
        const char *line = raw + i;
        size_t len = end - i;
        i = end + 1;
        line_number++;
        while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\r' || line[len - 1] == '\t'))
            len--;
        if (len == 0) {
            after_blank = 1;
            continue;
        }
        int was_after_blank = after_blank;
        after_blank = 0;
        if (line[0] == ' ') {
            /* a verse: spaces, its number, a space, its text */
            size_t p = 0;
            while (p < len && line[p] == ' ') p++;
            size_t digits = p;
            while (digits < len && line[digits] >= '0' && line[digits] <= '9') digits++;
            int number;
            if (parse_number(line + p, digits - p, &number) || number < 1 ||
                (digits < len && line[digits] != ' '))
                return spiral_error("kjv: %s:%zu: expected a verse \"  <number> <text>\", got "
                                    "\"%.60s\"", source, line_number, line);
            if (k->chapter_start.n == 0)
                return spiral_error("kjv: %s:%zu: a verse before any chapter header", source,
                                    line_number);
            if (kjv_close_verse(k)) goto oom;
            k->verse_open = 1;
            k->verse_number = number;
            k->verse_text_start = k->n;
            k->n_verses++;
            if (kjv_emit_verse_text(k, line + digits, len - digits)) goto oom;
            continue;
        }
        if (was_after_blank) {
            /* a chapter header: "<Book> <chapter>" */
            size_t space = len;
            while (space > 0 && line[space - 1] != ' ') space--;
            int chapter, book = -1;
            if (space < 2 || parse_number(line + space, len - space, &chapter) || chapter < 1)
                return spiral_error("kjv: %s:%zu: expected a chapter header \"<Book> <chapter>\", "
                                    "got \"%.60s\"", source, line_number, line);
            for (int b = 0; b < KJV_BOOKS; b++)
                if (strlen(kjv_books[b]) == space - 1 && !memcmp(kjv_books[b], line, space - 1))
                    book = b;
            if (book < 0)
                return spiral_error("kjv: %s:%zu: unknown book \"%.*s\" (expected Genesis .. "
                                    "Revelation as printed by bible)", source, line_number,
                                    (int)(space - 1 < 60 ? space - 1 : 60), line);
            if (kjv_start_chapter(k, book, chapter)) goto oom;
            continue;
        }
        /* the continuation of a verse wrapped by `bible` */
        if (!k->verse_open)
            return spiral_error("kjv: %s:%zu: text outside a verse: \"%.60s\"", source,
                                line_number, line);
        if (kjv_emit_verse_text(k, " ", 1) || kjv_emit_verse_text(k, line, len)) goto oom;
    }
    if (kjv_close_verse(k)) goto oom;
    if (k->chapter_start.n == 0)
        return spiral_error("kjv: %s: no chapter found (expected the output of `bible %s`)",
                            source, bible_arguments);
    if (offsets_push(&k->chapter_start, k->n)) goto oom;  /* the end of the last chapter */
    return 0;
oom:
    return spiral_error("kjv: %s: out of memory", source);
}

/* Finds an executable `name` in PATH; *out gets its path. Returns 0 or -1. */
static int find_program(const char *name, char *out, size_t cap) {
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len == 0)
            snprintf(out, cap, "./%s", name);
        else
            snprintf(out, cap, "%.*s/%s", (int)len, p, name);
        if (access(out, X_OK) == 0) return 0;
        if (!colon) return -1;
        p = colon + 1;
    }
}

/* Runs `bible` and reads its whole output. *command gets the command line
 * (for messages). Returns 0 or -1 (with the install hint). */
static int kjv_run_bible(char **output, size_t *size, char *command, size_t command_cap) {
    static const char *const hint = "install the Debian packages bible-kjv and bible-kjv-text "
                                    "(apt-get install bible-kjv bible-kjv-text), or set kjv.path "
                                    "to a saved copy of the output of `bible";
    char program[PARAM_STRING_CAP];
    if (find_program("bible", program, sizeof program))
        return spiral_error("kjv: the program bible was not found in PATH; %s %s`", hint,
                            bible_arguments);
    if (strchr(program, '\''))
        return spiral_error("kjv: cannot run %s (a quote in its path)", program);
    snprintf(command, command_cap, "%s %s", program, bible_arguments);
    char shell_command[PARAM_STRING_CAP + 128];
    snprintf(shell_command, sizeof shell_command, "'%s' %s 2>/dev/null </dev/null", program,
             bible_arguments);
    FILE *pipe = popen(shell_command, "r");
    if (!pipe) return spiral_error("kjv: cannot run %s: %s", command, strerror(errno));
    int status = stream_read_all(pipe, command, output, size);
    int exit_status = pclose(pipe);
    if (status) return -1;
    if (exit_status == -1 || !WIFEXITED(exit_status) || WEXITSTATUS(exit_status) != 0) {
        free(*output);
        return spiral_error("kjv: `%s` failed (exit status %d); %s %s`", command,
                            exit_status == -1 || !WIFEXITED(exit_status)
                                ? -1
                                : WEXITSTATUS(exit_status),
                            hint, bible_arguments);
    }
    return 0;
}

/* One distinct word of the rendered text and its train count. */
typedef struct {
    const uint16_t *bytes;  /* an occurrence in the text */
    uint32_t length;
    uint32_t rank;   /* 0 = most frequent; set after counting */
    uint64_t count;  /* occurrences in train chapters; 0 = empty slot */
    uint64_t hash;
} WordEntry;

/* The distinct words of a text, open addressing keyed by the bytes. */
typedef struct {
    WordEntry *entries;
    size_t capacity, used;
} WordTable;

/* FNV-1a over a word's bytes. */
static uint64_t word_hash(const uint16_t *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

/* The slot of the word s[0 .. len) (hash h), or the empty slot for it. */
static size_t word_slot(const WordTable *t, const uint16_t *s, size_t len, uint64_t h) {
    size_t mask = t->capacity - 1, i = (size_t)h & mask;
    for (;; i = (i + 1) & mask) {
        const WordEntry *e = &t->entries[i];
        if (!e->count) return i;
        if (e->hash == h && e->length == len && !memcmp(e->bytes, s, len * sizeof *s))
            return i;
    }
}

/* Counts one occurrence of the word s[0 .. len). Returns 0 or -1. */
static int word_add(WordTable *t, const uint16_t *s, size_t len) {
    uint64_t h = word_hash(s, len);
    size_t i = word_slot(t, s, len, h);
    if (t->entries[i].count) {
        t->entries[i].count++;
        return 0;
    }
    if (2 * (t->used + 1) > t->capacity) {
        WordTable bigger = {calloc(2 * t->capacity, sizeof(WordEntry)), 2 * t->capacity,
                            t->used};
        if (!bigger.entries) return -1;
        for (size_t j = 0; j < t->capacity; j++) {
            const WordEntry *e = &t->entries[j];
            if (e->count) bigger.entries[word_slot(&bigger, e->bytes, e->length, e->hash)] = *e;
        }
        free(t->entries);
        *t = bigger;
        i = word_slot(t, s, len, h);
    }
    t->entries[i] = (WordEntry){s, (uint32_t)len, 0, 1, h};
    t->used++;
    return 0;
}

/* Orders word entries by decreasing count, then by their bytes. */
static int compare_words(const void *a, const void *b) {
    const WordEntry *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    size_t len = x->length < y->length ? x->length : y->length;
    for (size_t i = 0; i < len; i++) {
        if (x->bytes[i] != y->bytes[i]) return x->bytes[i] < y->bytes[i] ? -1 : 1;
    }
    return (x->length > y->length) - (x->length < y->length);
}

/* Counts the words of the train chapters and ranks them (entry.rank).
 * words_json gets the top_words most frequent as strings. Returns 0 or -1. */
static int kjv_rank_words(const KjvText *k, const uint8_t *chapter_split, int top_words,
                          WordTable *table, json_t *words_json) {
    table->capacity = 1 << 15;
    table->used = 0;
    table->entries = calloc(table->capacity, sizeof *table->entries);
    if (!table->entries) return -1;
    size_t n_chapters = k->chapter_start.n - 1;
    for (size_t c = 0; c < n_chapters; c++) {
        if (chapter_split[c] != SPLIT_TRAIN) continue;
        size_t first = k->chapter_start.items[c], last = k->chapter_start.items[c + 1];
        const uint16_t *s = k->text + first;
        size_t n = last - first;
        for (size_t i = 0; i < n;) {
            if (!in_word(s, n, i)) {
                i++;
                continue;
            }
            size_t j = i + 1;
            while (j < n && in_word(s, n, j)) j++;
            if (word_add(table, s + i, j - i)) return -1;
            i = j;
        }
    }
    WordEntry *sorted = malloc((table->used ? table->used : 1) * sizeof *sorted);
    if (!sorted) return -1;
    size_t m = 0;
    for (size_t i = 0; i < table->capacity; i++)
        if (table->entries[i].count) sorted[m++] = table->entries[i];
    qsort(sorted, m, sizeof *sorted, compare_words);
    for (size_t r = 0; r < m; r++) {
        WordEntry *e = &table->entries[word_slot(table, sorted[r].bytes, sorted[r].length,
                                                 sorted[r].hash)];
        e->rank = (uint32_t)r;
        if (r < (size_t)top_words) {
            char word[256];
            size_t len = sorted[r].length < sizeof word - 1 ? sorted[r].length : sizeof word - 1;
            for (size_t i = 0; i < len; i++) word[i] = (char)sorted[r].bytes[i];
            json_t *string = json_stringn(word, len);
            json_array_append_new(words_json, string ? string : json_string("?"));
        }
    }
    free(sorted);
    return 0;
}

/* The "word" label of one chapter s[0 .. n) whose word_pos / word_end rows
 * are already computed. */
static void kjv_label_word_ids(const WordTable *table, const uint16_t *s, size_t n,
                               const int32_t *word_pos, const int32_t *word_end, int top_words,
                               int32_t *word) {
    for (size_t i = 0; i < n;) {
        if (word_pos[i] < 0) {
            word[i++] = -1;
            continue;
        }
        size_t j = i;
        while (!word_end[j]) j++;  /* j = the word's last byte */
        size_t len = j + 1 - i;
        uint64_t h = word_hash(s + i, len);
        const WordEntry *e = &table->entries[word_slot(table, s + i, len, h)];
        int id = e->count && e->rank < (uint32_t)top_words ? (int)e->rank : top_words;
        for (; i <= j; i++) word[i] = id;
    }
}

int corpus_kjv_make(Dataset *out, const char *params_json) {
    memset(out, 0, sizeof *out);
    char path[PARAM_STRING_CAP] = "", split_by[PARAM_STRING_CAP] = "chapter";
    int top_words = 64, seed = 0;
    double val_fraction = 0.05, test_fraction = 0.05;
    const ParamField fields[] = {
        {"path", PARAM_STRING, 0, 0, path},
        {"split_by", PARAM_STRING, 0, 0, split_by},
        {"top_words", PARAM_INT, 1, 65535, &top_words},
        {"val_fraction", PARAM_REAL, 0, 1, &val_fraction},
        {"test_fraction", PARAM_REAL, 0, 1, &test_fraction},
        {"seed", PARAM_INT, 0, 2147483647.0, &seed},
    };
    if (parse_params(params_json, "kjv", fields, 6) ||
        check_fractions("kjv", val_fraction, test_fraction))
        return -1;
    int by_book = !strcmp(split_by, "book");
    if (!by_book && strcmp(split_by, "chapter"))
        return spiral_error("kjv.split_by: expected \"chapter\" or \"book\", got \"%s\"",
                            split_by);

    char *raw = NULL, source[PARAM_STRING_CAP + 64];
    size_t raw_n;
    if (path[0]) {
        snprintf(source, sizeof source, "%s", path);
        if (file_read_all(path, &raw, &raw_n)) return spiral_error_prefix("kjv.path");
    } else if (kjv_run_bible(&raw, &raw_n, source, sizeof source)) {
        return -1;
    }

    int status = -1;
    KjvText k = {0};
    WordTable words = {0};
    uint8_t *chapter_split = NULL;
    int32_t *labels = NULL;
    json_t *params = json_object(), *words_json = json_array();
    if (kjv_parse(raw, raw_n, source, &k)) goto done;
    size_t n_chapters = k.chapter_start.n - 1;

    /* splits: per chapter, or per book (every chapter of a book together) */
    chapter_split = malloc(n_chapters);
    uint8_t book_split[KJV_BOOKS];
    if (!chapter_split || !params || !words_json) goto oom;
    if (by_book) {
        if (assign_splits(KJV_BOOKS, val_fraction, test_fraction, seed, book_split)) goto done;
        for (size_t c = 0; c < n_chapters; c++) chapter_split[c] = book_split[k.chapter_book[c]];
    } else if (assign_splits(n_chapters, val_fraction, test_fraction, seed, chapter_split)) {
        goto done;
    }
    if (kjv_rank_words(&k, chapter_split, top_words, &words, words_json)) goto oom;

    enum { L_CHAR, L_WORD_POS, L_WORD_END, L_WORD, L_VERSE, L_VERSE_END, L_CHAPTER, L_BOOK,
           L_TESTAMENT, N_LABELS };
    const char *const names[N_LABELS] = {"char_class", "word_pos", "word_end", "word", "verse",
                                         "verse_end", "chapter", "book", "testament"};
    const int n_classes[N_LABELS] = {5, WORD_POS_CLASSES, 2, top_words + 1, VERSE_CLASSES, 2,
                                     CHAPTER_CLASSES, KJV_BOOKS, 2};
    if (dataset_init(out, "kjv", 256, N_LABELS, names, n_classes, 0)) goto done;
    size_t longest = 0;
    int n_books = 0, book_seen[KJV_BOOKS] = {0};
    for (size_t c = 0; c < n_chapters; c++) {
        size_t len = k.chapter_start.items[c + 1] - k.chapter_start.items[c];
        if (len > longest) longest = len;
        if (!book_seen[k.chapter_book[c]]++) n_books++;
    }
    labels = malloc((size_t)N_LABELS * longest * sizeof *labels);  /* (N_LABELS, len) */
    if (!labels) goto oom;
    for (size_t c = 0; c < n_chapters; c++) {
        size_t first = k.chapter_start.items[c], len = k.chapter_start.items[c + 1] - first;
        const uint16_t *s = k.text + first;
        int32_t *row[N_LABELS];
        for (int l = 0; l < N_LABELS; l++) row[l] = labels + (size_t)l * len;
        label_words(s, len, row[L_CHAR], row[L_WORD_POS], row[L_WORD_END]);
        kjv_label_word_ids(&words, s, len, row[L_WORD_POS], row[L_WORD_END], top_words,
                           row[L_WORD]);
        int book = k.chapter_book[c];
        int chapter = k.chapter_number[c] < CHAPTER_CLASSES - 1 ? k.chapter_number[c]
                                                                : CHAPTER_CLASSES - 1;
        for (size_t i = 0; i < len; i++) {
            row[L_VERSE][i] = k.verse[first + i];
            row[L_VERSE_END][i] = k.verse_end[first + i];
            row[L_CHAPTER][i] = chapter;
            row[L_BOOK][i] = book;
            row[L_TESTAMENT][i] = book >= KJV_FIRST_NEW_TESTAMENT_BOOK;
        }
        if (dataset_append(out, s, len, labels, NULL, chapter_split[c])) goto done;
    }

    json_object_set_new(params, path[0] ? "path" : "command", json_string(source));
    json_object_set_new(params, "split_by", json_string(split_by));
    json_object_set_new(params, "top_words", json_integer(top_words));
    json_object_set_new(params, "val_fraction", json_real(val_fraction));
    json_object_set_new(params, "test_fraction", json_real(test_fraction));
    json_object_set_new(params, "seed", json_integer(seed));
    json_object_set_new(params, "n_bytes", json_integer((json_int_t)k.n));
    json_object_set_new(params, "n_books", json_integer(n_books));
    json_object_set_new(params, "n_chapters", json_integer((json_int_t)n_chapters));
    json_object_set_new(params, "n_verses", json_integer((json_int_t)k.n_verses));
    json_object_set_new(params, "words", words_json);
    words_json = NULL;
    status = set_params_json(out, params);
    params = NULL;
    goto done;
oom:
    spiral_error("kjv: %s: out of memory", source);
done:
    if (status) dataset_free(out);
    json_decref(params);
    json_decref(words_json);
    free(raw);
    kjv_text_free(&k);
    free(words.entries);
    free(chapter_split);
    free(labels);
    return status;
}
