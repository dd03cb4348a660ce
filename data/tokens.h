/*
 * tokens.h: token sequences from files.
 *
 * A text file is read as bytes (the byte-level tokenizer: token = byte value,
 * vocabulary 256). A token file is a little-endian uint16 array.
 */
#ifndef SPIRAL_TOKENS_H
#define SPIRAL_TOKENS_H

#include <stddef.h>

/* Reads the bytes of path as tokens 0..255 into a malloc'd array. Returns 0
 * or -1 (unreadable file). An empty file gives *count = 0. */
int tokens_read_text(const char *path, int **tokens, size_t *count);

/* Reads a little-endian uint16 token file. Returns 0 or -1 (unreadable, or
 * an odd number of bytes). */
int tokens_read_u16(const char *path, int **tokens, size_t *count);

/* Returns 0 if every token is < vocab_size, else -1 with an error naming
 * the first bad position and value, and `source`. */
int tokens_check_vocab(const int *tokens, size_t count, int vocab_size, const char *source);

#endif
