/*
 * corpus_text.c: the "text" family (see corpus_text.h): any file cut into
 * documents at paragraph starts, byte-level.
 *
 * The bytes are read, documents found, splits assigned by document and the
 * labels computed one document at a time (a word never crosses a document
 * start, because documents start at the beginning of a line), so the only
 * whole-corpus array is the bytes themselves. The "kjv" family is in
 * corpus_kjv.c; what both share in corpus_common.c.
 */
#include "corpus_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "corpus_common.h"
#include "error.h"
#include "fileio.h"

/* Cuts s[0 .. n) into documents (corpus_text.h): starts gets each
 * document's first offset, then n. *n_paragraphs gets the paragraph count.
 * Returns 0 or -1 (out of memory). */
static int text_documents(const uint16_t *s, size_t n, size_t min_doc_bytes, OffsetList *starts,
                          size_t *n_paragraphs) {
    size_t paragraphs = 0;
    int previous_blank = 1;  /* the file starts as if after a blank line */
    if (corpus_offsets_push(starts, 0)) return -1;
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
            if (paragraphs > 0 && i - doc_start >= min_doc_bytes && corpus_offsets_push(starts, i))
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
    return corpus_offsets_push(starts, n);
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
    if (corpus_parse_params(params_json, "text", fields, 4) ||
        corpus_check_fractions("text", val_fraction, test_fraction))
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
    if (corpus_assign_splits(n_docs, val_fraction, test_fraction, seed, splits)) goto done;

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
        corpus_label_words(doc, len, labels, labels + len, labels + 2 * len);
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
    status = corpus_set_params_json(out, params);
done:
    if (status) dataset_free(out);
    free(raw);
    free(bytes);
    free(starts.items);
    free(splits);
    free(labels);
    return status;
}
