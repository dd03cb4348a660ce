/*
 * corpus_kjv.c: the "kjv" family (see corpus_text.h): the King James Bible
 * as printed by the program `bible`, one document per chapter.
 *
 * The output of `bible` is first rendered into a byte buffer with, per
 * byte, its verse number and verse-end flag; splits are assigned by
 * chapter or book; the "word" label needs the word counts of the train
 * split (corpus_words.c), so it is computed after the splits. Labels are
 * computed one chapter at a time.
 */
#include "corpus_text.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "corpus_common.h"
#include "corpus_words.h"
#include "error.h"
#include "fileio.h"

enum {
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
    if (corpus_offsets_push(&k->chapter_start, k->n)) return -1;
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
    if (corpus_offsets_push(&k->chapter_start, k->n)) goto oom;  /* the end of the last chapter */
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
    if (corpus_parse_params(params_json, "kjv", fields, 6) ||
        corpus_check_fractions("kjv", val_fraction, test_fraction))
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
        if (corpus_assign_splits(KJV_BOOKS, val_fraction, test_fraction, seed, book_split))
            goto done;
        for (size_t c = 0; c < n_chapters; c++) chapter_split[c] = book_split[k.chapter_book[c]];
    } else if (corpus_assign_splits(n_chapters, val_fraction, test_fraction, seed,
                                    chapter_split)) {
        goto done;
    }
    if (corpus_words_rank(k.text, &k.chapter_start, chapter_split, top_words, &words,
                          words_json))
        goto oom;

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
        corpus_label_words(s, len, row[L_CHAR], row[L_WORD_POS], row[L_WORD_END]);
        corpus_words_label(&words, s, len, row[L_WORD_POS], row[L_WORD_END], top_words,
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
    status = corpus_set_params_json(out, params);
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
