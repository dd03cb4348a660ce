/*
 * filehash.h: SHA-256 of a file (nettle), for checkpoint integrity.
 */
#ifndef SPIRAL_FILEHASH_H
#define SPIRAL_FILEHASH_H

/* Writes the lowercase hex SHA-256 of the file's bytes into hex (65 bytes
 * with the terminating NUL). Returns 0 or -1 naming the path. */
int file_sha256_hex(const char *path, char hex[65]);

#endif
