/*
 * filehash.h: SHA-256 of a file (nettle), for checkpoint integrity.
 */
#ifndef SPIRAL_FILEHASH_H
#define SPIRAL_FILEHASH_H

/* Writes the lowercase hex SHA-256 of the file's bytes into hex (65 bytes
 * with the terminating NUL). Returns 0 or -1 naming the path. */
int file_sha256_hex(const char *path, char hex[65]);

/* Checks that the file's SHA-256 is `expected` (lowercase hex, as recorded in
 * the store). Returns 0, or -1 with an error naming the path and both
 * hashes ("... was modified or is corrupt"). */
int file_sha256_verify(const char *path, const char *expected);

#endif
