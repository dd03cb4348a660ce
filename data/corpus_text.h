/*
 * corpus_text.h: real text as datasets (byte-level: token = byte, vocab 256).
 *
 * Two families:
 *
 * "text": any file (UTF-8 or any bytes). The file is cut into documents at
 * paragraph starts (a paragraph is a block of non-blank lines; a blank line
 * holds only spaces, tabs or CR): a document closes at the first paragraph
 * start once it holds min_doc_bytes bytes, and a short remainder at the end
 * joins the document before it. Every byte of the file, blank lines
 * included, is in exactly one document, in order, so the documents laid back
 * to back are the file.
 *
 * "kjv": the King James Bible as printed by the program `bible` of the
 * Debian packages bible-kjv and bible-kjv-text. One document per chapter
 * (1189), rendered as a header line "<Book> <chapter>\n" (e.g. "Genesis 1\n",
 * "Song of Solomon 2\n") followed by one line per verse holding the verse's
 * text and "\n". Verse numbers are not in the text: where a verse starts is
 * visible (a new line), which verse it is has to be counted. Runs of spaces
 * inside a verse are collapsed to one (two verses of the packaged text hold
 * a double space), so the wrapped and unwrapped outputs of `bible` give the
 * same bytes.
 *
 * Splits are by document, never by token, and deterministic: the units (text
 * documents, KJV chapters, or KJV books with split_by "book") are ordered by
 * a hash of (seed, unit index); the first round(val_fraction * n) are val,
 * the next round(test_fraction * n) test, the rest train.
 *
 * Words (labels of both families): a word is a maximal run of word bytes,
 * i.e. ASCII letters and digits and every byte >= 0x80 (so UTF-8 letters
 * are word bytes), where an apostrophe or hyphen between two word bytes is
 * part of the word ("father's", "well-known").
 *
 * Labels of "text" (defined on every byte unless said otherwise):
 *   char_class  (5)  0 ASCII letter, 1 digit, 2 whitespace (space, \n, \t,
 *                    \r, \v, \f), 3 ASCII punctuation, 4 other (control
 *                    bytes and bytes >= 0x80)
 *   word_pos   (16)  position of the byte in its word, 0, 1, ..., clamped to
 *                    15; -1 outside words
 *   word_end    (2)  1 on the last byte of a word (the next byte ends it), 0
 *                    on its other bytes; -1 outside words
 *   line_start  (2)  1 on the first byte of a line
 * Labels of "kjv": char_class, word_pos, word_end as above, and
 *   word (top_words + 1)  the word the byte belongs to: 0 .. top_words - 1
 *                    for the top_words most frequent words of the train
 *                    split (case-sensitive, by decreasing count, ties by
 *                    byte order; the list is in params_json "words"),
 *                    top_words for any other word; -1 outside words
 *   verse      (64)  the verse number (1, 2, ...; clamped to 63) on the bytes
 *                    of a verse's text and on its newline; -1 on header lines
 *   verse_end   (2)  1 on the last byte of a verse's text (the byte before its
 *                    newline; the newline itself if the text is empty), 0 on
 *                    the verse's other bytes; -1 on header lines
 *   chapter   (151)  the chapter number 1 .. 150 (class 0 is unused), on every
 *                    byte of the chapter, header included
 *   book       (66)  0 Genesis .. 65 Revelation, on every byte
 *   testament   (2)  0 Old (Genesis .. Malachi), 1 New (Matthew .. Revelation)
 */
#ifndef SPIRAL_CORPUS_TEXT_H
#define SPIRAL_CORPUS_TEXT_H

#include "dataset.h"

/* Makes a "text" dataset from the file at path. params_json (NULL, "" or a
 * JSON object) may set
 *   min_doc_bytes  (int >= 1, default 2048)
 *   val_fraction, test_fraction  (each in [0, 1], sum <= 1; default 0.05)
 *   seed           (int >= 0, default 0: changes the split assignment)
 * out->params_json records these, the path, the file size and the documents
 * and bytes per split. Errors name the path (missing, unreadable or empty
 * file, no document of >= 2 bytes) or the field ("text.<field>: ..."). On
 * failure *out is left empty (safe to dataset_free). Returns 0 or -1. */
int corpus_text_make(Dataset *out, const char *path, const char *params_json);

/* Makes the "kjv" dataset. params_json may set
 *   path        a saved copy of the output of `bible -l100000 Gen1:1-Rev22:21`
 *               (default: run that program, found in PATH, with popen); the
 *               default 80-column wrapped output is read as well
 *   split_by    "chapter" (default) or "book" (whole books held out)
 *   top_words   (int 1 .. 65535, default 64) see the "word" label
 *   val_fraction, test_fraction, seed  as for "text"
 * The input may be any run of chapters of the bible output format: blank
 * lines, then a header "<Book> <chapter>", then verse lines "  <n> text"
 * (lines that start with neither continue the verse before them). Errors
 * name the source and line; a missing program says to install the Debian
 * packages bible-kjv and bible-kjv-text. Returns 0 or -1. */
int corpus_kjv_make(Dataset *out, const char *params_json);

#endif
