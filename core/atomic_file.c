/*
 * atomic_file.c: atomic file replacement (atomic_file.h): write to
 * "<path>.tmp.<pid>", then flush, fsync, close, rename over the path and
 * fsync the folder.
 */
#include "atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "safetensors_bytes.h"

/* Frees the names held by af. */
static void atomic_file_release(AtomicFile *af) {
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

int atomic_file_open(AtomicFile *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t cap = strlen(path) + 32;
    af->path = strdup(path);
    af->tmp_path = malloc(cap);
    if (!af->path || !af->tmp_path) {
        atomic_file_release(af);
        return spiral_error("cannot write %s: out of memory", path);
    }
    snprintf(af->tmp_path, cap, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        int saved_errno = errno;
        atomic_file_release(af);
        return spiral_error("cannot write %s: cannot create its temporary file: %s", path,
                            strerror(saved_errno));
    }
    return 0;
}

int atomic_file_write(AtomicFile *af, const void *bytes, size_t n) {
    if (n == 0) return 0;
    if (fwrite(bytes, 1, n, af->fp) != n)
        return spiral_error("cannot write %s: %s", af->path, strerror(errno));
    return 0;
}

int atomic_file_write_f32(AtomicFile *af, const float *data, int64_t numel) {
    unsigned char block[4 * 4096];
    int64_t done = 0;
    while (done < numel) {
        int64_t count = numel - done < 4096 ? numel - done : 4096;
        for (int64_t i = 0; i < count; i++) store_u32le(block + 4 * i, float_to_bits(data[done + i]));
        if (atomic_file_write(af, block, (size_t)count * 4)) return -1;
        done += count;
    }
    return 0;
}

int atomic_file_commit(AtomicFile *af) {
    /* fflush hands the bytes to the kernel, fsync puts them on disk; only
     * then may the rename make them visible under the final name. */
    if (fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0) {
        spiral_error("cannot write %s: %s", af->path, strerror(errno));
        atomic_file_abort(af);
        return -1;
    }
    int close_failed = fclose(af->fp);
    af->fp = NULL;
    if (close_failed) {
        spiral_error("cannot write %s: %s", af->path, strerror(errno));
        atomic_file_abort(af);
        return -1;
    }
    if (rename(af->tmp_path, af->path) != 0) {
        spiral_error("cannot write %s: renaming %s over it failed: %s", af->path, af->tmp_path,
                     strerror(errno));
        atomic_file_abort(af);
        return -1;
    }
    /* the rename lives in the folder: sync it so the new name survives a
     * power loss */
    int status = sync_parent_dir(af->path);
    atomic_file_release(af);
    return status;
}

void atomic_file_abort(AtomicFile *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) remove(af->tmp_path);
    atomic_file_release(af);
}
