/*
 * tokens.c: reading token sequences (see tokens.h).
 */
#include "tokens.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"

int tokens_read_text(const char *path, int **tokens, size_t *count) {
    unsigned char *bytes;
    size_t size;
    if (file_read_all(path, (char **)&bytes, &size)) return -1;
    int *out = malloc((size ? size : 1) * sizeof(int));
    if (!out) {
        free(bytes);
        return spiral_error("%s: out of memory", path);
    }
    for (size_t i = 0; i < size; i++) out[i] = bytes[i];
    free(bytes);
    *tokens = out;
    *count = size;
    return 0;
}

int tokens_read_u16(const char *path, int **tokens, size_t *count) {
    unsigned char *bytes;
    size_t size;
    if (file_read_all(path, (char **)&bytes, &size)) return -1;
    if (size % 2) {
        free(bytes);
        return spiral_error("%s: %zu bytes is not a whole number of uint16 tokens", path, size);
    }
    size_t n = size / 2;
    int *out = malloc((n ? n : 1) * sizeof(int));
    if (!out) {
        free(bytes);
        return spiral_error("%s: out of memory", path);
    }
    for (size_t i = 0; i < n; i++) out[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
    free(bytes);
    *tokens = out;
    *count = n;
    return 0;
}

int tokens_check_vocab(const int *tokens, size_t count, int vocab_size, const char *source) {
    for (size_t i = 0; i < count; i++)
        if (tokens[i] >= vocab_size)
            return spiral_error("%s: token %d at position %zu is outside the model's vocabulary "
                                "(vocab_size %d)", source, tokens[i], i, vocab_size);
    return 0;
}
