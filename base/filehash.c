/*
 * filehash.c: SHA-256 of a file through nettle (see filehash.h).
 */
#include "filehash.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <nettle/sha2.h>

#include "error.h"

int file_sha256_hex(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return spiral_error("%s: cannot open: %s", path, strerror(errno));
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    unsigned char buffer[1 << 16];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, f)) > 0) sha256_update(&ctx, n, buffer);
    int failed = ferror(f);
    fclose(f);
    if (failed) return spiral_error("%s: read error", path);
    unsigned char digest[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return 0;
}

int file_sha256_verify(const char *path, const char *expected) {
    char actual[65];
    if (file_sha256_hex(path, actual)) return -1;
    if (strcmp(actual, expected) != 0)
        return spiral_error("%s: sha256 %s differs from the store's %s: the file was modified "
                            "or is corrupt", path, actual, expected);
    return 0;
}
