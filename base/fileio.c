/*
 * fileio.c: whole-file reads (see fileio.h).
 */
#include "fileio.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

int stream_read_all(FILE *f, const char *source, char **bytes, size_t *size) {
    /* the size of a regular file is a hint for the first allocation; the
     * loop reads to the end whatever it is, so pipes work too */
    size_t capacity = 1 << 16, used = 0;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
        (uint64_t)st.st_size < SIZE_MAX / 2)
        capacity = (size_t)st.st_size + 2;
    char *buffer = malloc(capacity);
    if (!buffer) return spiral_error("%s: out of memory reading it", source);
    for (;;) {
        used += fread(buffer + used, 1, capacity - used - 1, f);
        if (ferror(f)) {
            int err = errno;
            free(buffer);
            return spiral_error("%s: cannot read: %s", source, strerror(err));
        }
        if (feof(f)) break;
        if (capacity > SIZE_MAX / 2) {
            free(buffer);
            return spiral_error("%s: too large to read", source);
        }
        char *grown = realloc(buffer, capacity * 2);
        if (!grown) {
            free(buffer);
            return spiral_error("%s: out of memory reading it", source);
        }
        buffer = grown;
        capacity *= 2;
    }
    buffer[used] = 0;
    *bytes = buffer;
    *size = used;
    return 0;
}

int file_read_all(const char *path, char **bytes, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return spiral_error("%s: cannot open: %s", path, strerror(errno));
    int status = stream_read_all(f, path, bytes, size);
    fclose(f);
    return status;
}

void path_parent(const char *path, char *out, size_t size) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, size, ".");
    else if (slash == path) snprintf(out, size, "/");
    else snprintf(out, size, "%.*s", (int)(slash - path), path);
}

int sync_parent_dir(const char *path) {
    char dir[4096];
    path_parent(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return spiral_error("%s: cannot open folder to sync: %s", dir, strerror(errno));
    int status = fsync(fd) == 0 ? 0 : spiral_error("%s: fsync: %s", dir, strerror(errno));
    close(fd);
    return status;
}
